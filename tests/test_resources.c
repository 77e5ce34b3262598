/* SPDX-License-Identifier: MIT */
/* What the library takes it gives back; what it writes is ours only. */
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>

#include "common.h"

static void exercise(struct lp_vm *vm)
{
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, 128 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (int i = 0; i < 128; i++)
		fill_page(p, i, 1);
	for (int i = 0; i < 128; i++)
		cr_assert_eq(check_page(p, i, 1), -1);
}

Test(resources, destroy_leaves_no_thread_or_descriptor)
{
	int fds = count_dir("/proc/self/fd"), tasks = count_dir("/proc/self/task");
	for (int k = 0; k < 3; k++) {
		struct lp_vm *vm;
		struct lp_config c = cfg_frames(16);
		VM_OR_SKIP(&vm, &c);
		cr_assert_gt(count_dir("/proc/self/task"), tasks, "no threads started?");
		exercise(vm);
		lp_vm_destroy(vm);
		cr_assert_eq(count_dir("/proc/self/fd"), fds, "descriptors leaked");
		cr_assert_eq(count_dir("/proc/self/task"), tasks, "threads left behind");
	}
}

/* The descriptor of the swap file among ours: the one that is unlinked. */
static int find_swap_fd(char *target, size_t n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	while ((e = readdir(d))) {
		char link[300];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, n - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		if (strstr(target, "(deleted)") && strncmp(target, "/tmp", 4) == 0)
			found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

Test(resources, default_swap_file_is_unlinked_and_private)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	setenv("TMPDIR", "/tmp", 1);
	VM_OR_SKIP(&vm, &c);
	exercise(vm);
	char target[PATH_MAX];
	int fd = find_swap_fd(target, sizeof target);
	cr_assert_geq(fd, 0, "no unlinked swap file found");
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "swap file mode %o", st.st_mode & 0777);
	cr_assert_eq(st.st_nlink, 0, "swap file has a name");
	cr_assert_gt(st.st_size, 0);
	lp_vm_destroy(vm);
}

Test(resources, named_swap_file_has_no_name_while_running)
{
	/* The name goes as soon as the file is made: a run that is killed
	 * (or whose teardown is cut short) leaves nothing behind. */
	char dir[] = "/tmp/lp-test-swap-XXXXXX", path[64];
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/swap", dir);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	c.swap_path = path;
	VM_OR_SKIP(&vm, &c);
	exercise(vm);
	int fd = -1;
	for (int i = 0; i < 1024 && fd < 0; i++) {
		char link[64], target[PATH_MAX];
		snprintf(link, sizeof link, "/proc/self/fd/%d", i);
		ssize_t len = readlink(link, target, sizeof target - 1);
		if (len > 0 && (target[len] = 0, strstr(target, dir)))
			fd = i;
	}
	cr_assert_geq(fd, 0, "no swap file of %s open", dir);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "swap file mode %o", st.st_mode & 0777);
	cr_assert_gt(st.st_size, 0);
	cr_assert_eq(count_dir(dir), 2, "the swap file has a name while running");
	lp_vm_destroy(vm);
	cr_assert_eq(rmdir(dir), 0);
}

Test(resources, swap_directory_gets_an_unlinked_file)
{
	char dir[] = "/tmp/lp-test-dir-XXXXXX";
	cr_assert(mkdtemp(dir));
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	c.swap_path = dir;
	VM_OR_SKIP(&vm, &c);
	exercise(vm);
	cr_assert_eq(count_dir(dir), 2, "directory is not empty while running");
	lp_vm_destroy(vm);
	cr_assert_eq(rmdir(dir), 0);
}

/* Pages of a recognisable text, enough of them to go to swap. */
static void fill_text(char *p, size_t pages)
{
	static const char word[] = "LAZYPAGE-PLAINTEXT-";
	for (size_t i = 0; i < pages * PG; i++)
		p[i] = word[i % (sizeof(word) - 1)];
}

/* How many pages of the swap file show the text. */
static size_t text_in_swap(void)
{
	char target[PATH_MAX];
	int fd = find_swap_fd(target, sizeof target);
	cr_assert_geq(fd, 0, "no swap file found");
	struct stat st;
	fstat(fd, &st);
	void *buf = aligned_alloc(PG, PG); /* the descriptor may be O_DIRECT */
	size_t hits = 0;
	for (off_t off = 0; off < st.st_size; off += PG)
		if (pread(fd, buf, PG, off) == (ssize_t)PG &&
		    memmem(buf, PG, "LAZYPAGE-PLAINTEXT-", 19))
			hits++;
	free(buf);
	return hits;
}

static struct lp_vm *swap_text(bool encrypt, char **pp, size_t pages)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	if (encrypt)
		c.flags |= LP_CFG_ENCRYPT_SWAP;
	int rc = lp_vm_create(&vm, &c);
	if (rc == -ENOTSUP)
		cr_skip_test("built without libsodium");
	if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS)
		cr_skip_test("userfaultfd refused here");
	cr_assert_eq(rc, 0);
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)pp), 0);
	fill_text(*pp, pages);
	return vm;
}

Test(resources, plain_swap_holds_the_text)
{
	char *p;
	struct lp_vm *vm = swap_text(false, &p, 64);
	cr_assert_gt(text_in_swap(), 0, "the scan finds nothing even unencrypted");
	lp_vm_destroy(vm);
}

Test(resources, encrypted_swap_holds_nothing_readable)
{
	char *p;
	struct lp_vm *vm = swap_text(true, &p, 64);
	cr_assert_gt(stats_of(vm).swap_outs, 32);
	cr_assert_eq(text_in_swap(), 0, "plaintext found in the encrypted swap file");
	/* and every page comes back right */
	static const char word[] = "LAZYPAGE-PLAINTEXT-";
	for (size_t i = 0; i < 64 * PG; i += 97)
		cr_assert_eq(p[i], word[i % (sizeof(word) - 1)], "byte %zu", i);
	lp_vm_destroy(vm);
}

Test(resources, altered_encrypted_page_is_sigbus_not_data, .signal = SIGBUS)
{
	char *p;
	struct lp_vm *vm = swap_text(true, &p, 64);
	char target[PATH_MAX];
	int fd = find_swap_fd(target, sizeof target);
	struct stat st;
	fstat(fd, &st);
	/* Flip one byte of every page of the file behind lazypage's back
	 * (an O_DIRECT descriptor wants aligned buffers). */
	void *buf = aligned_alloc(PG, PG);
	for (off_t off = 0; off < st.st_size; off += PG) {
		if (pread(fd, buf, PG, off) != (ssize_t)PG)
			break;
		((unsigned char *)buf)[100] ^= 0x5a;
		cr_assert_eq(pwrite(fd, buf, PG, off), (ssize_t)PG);
	}
	/* The first pages were swapped out long ago: reading them must not
	 * return what the disk now holds. */
	volatile char c = p[0];
	(void)c;
	cr_assert_fail("an altered page was returned");
	lp_vm_destroy(vm);
}
