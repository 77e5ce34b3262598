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
		char link[300], t[PATH_MAX];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, t, sizeof t - 1);
		if (len < 0)
			continue;
		t[len] = 0;
		if (strstr(t, "(deleted)") && strncmp(t, "/tmp", 4) == 0) {
			found = atoi(e->d_name);
			snprintf(target, n, "%s", t);
		}
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

/* A swap path that does not exist is created new, 0600, and its name is
 * removed at once: nothing of it is left to find, however the run ends. */
Test(resources, named_swap_file_is_private_and_nameless)
{
	char dir[] = "/tmp/lp-test-named-XXXXXX", path[64];
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/swap", dir);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	c.swap_path = path;
	VM_OR_SKIP(&vm, &c);
	exercise(vm);
	struct stat st;
	cr_assert_eq(lstat(path, &st), -1, "the swap file keeps its name");
	cr_assert_eq(count_dir(dir), 2, "directory is not empty while running");
	char target[PATH_MAX];
	int fd = find_swap_fd(target, sizeof target);
	cr_assert_geq(fd, 0, "no unlinked swap file found");
	cr_assert(strstr(target, path), "swap file is %s, not at %s", target, path);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "swap file mode %o", st.st_mode & 0777);
	cr_assert_eq(st.st_nlink, 0);
	cr_assert_gt(st.st_size, 0);
	lp_vm_destroy(vm);
	cr_assert_eq(rmdir(dir), 0, "something left in %s", dir);
}

/* What a swap path names, when it exists and is no directory, is never
 * opened, truncated, chmod'ed or removed: lp_vm_create says -EEXIST and
 * every fixture is as it was (issue 9: a symlink's target was truncated
 * and made 0600 and the link removed; a device node chmod'ed and
 * unlinked). */
struct fixture {
	const char *name;
	struct stat st;
	char link[256];
};

static void fixture_snap(const char *dir, struct fixture *f)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, f->name);
	cr_assert_eq(lstat(p, &f->st), 0, "%s: %s", p, strerror(errno));
	f->link[0] = 0;
	if (S_ISLNK(f->st.st_mode)) {
		ssize_t n = readlink(p, f->link, sizeof f->link - 1);
		cr_assert_gt(n, 0);
		f->link[n] = 0;
	}
}

static void expect_content(const char *path, const char *want)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	cr_assert_str_eq(n > 0 ? buf : "", want, "%s changed", path);
}

Test(resources, existing_swap_paths_are_never_touched)
{
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here");
	char dir[] = "/tmp/lp-test-hostile-XXXXXX", p[PATH_MAX];
	cr_assert(mkdtemp(dir));
	static const char text[] = "keep me\n";
	const char *files[] = { "file", "target" };
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
		close(fd);
		chmod(p, 0644);
	}
	snprintf(p, sizeof p, "%s/link", dir);
	cr_assert_eq(symlink("target", p), 0);
	snprintf(p, sizeof p, "%s/dangling", dir);
	cr_assert_eq(symlink("nowhere", p), 0);
	snprintf(p, sizeof p, "%s/fifo", dir);
	cr_assert_eq(mkfifo(p, 0644), 0);
	/* A device node: a copy of /dev/null's (as root only). */
	struct stat null;
	cr_assert_eq(stat("/dev/null", &null), 0);
	snprintf(p, sizeof p, "%s/null", dir);
	bool dev = mknod(p, S_IFCHR | 0666, null.st_rdev) == 0;
	if (dev)
		chmod(p, 0666);
	snprintf(p, sizeof p, "%s/devlink", dir);
	cr_assert_eq(symlink(dev ? "null" : "fifo", p), 0);

	struct fixture fx[] = { { "file" }, { "target" }, { "link" },
				{ "dangling" }, { "fifo" }, { "devlink" },
				{ "null" } };
	size_t nfx = sizeof fx / sizeof fx[0] - (dev ? 0 : 1);
	for (size_t i = 0; i < nfx; i++)
		fixture_snap(dir, &fx[i]);
	for (size_t i = 0; i < nfx; i++) {
		if (!strcmp(fx[i].name, "target"))
			continue;
		struct lp_vm *vm = (struct lp_vm *)1;
		struct lp_config c = cfg_frames(8);
		snprintf(p, sizeof p, "%s/%s", dir, fx[i].name);
		c.swap_path = p;
		int rc = lp_vm_create(&vm, &c);
		cr_expect_eq(rc, -EEXIST, "--swap %s: %s", p, strerror(-rc));
		if (rc == 0)
			lp_vm_destroy(vm);
	}
	for (size_t i = 0; i < nfx; i++) {
		struct fixture now = { fx[i].name };
		fixture_snap(dir, &now);
		cr_expect_eq(now.st.st_ino, fx[i].st.st_ino, "%s replaced", fx[i].name);
		cr_expect_eq(now.st.st_mode, fx[i].st.st_mode, "%s: mode %o, was %o",
			     fx[i].name, now.st.st_mode, fx[i].st.st_mode);
		cr_expect_eq(now.st.st_size, fx[i].st.st_size, "%s: size changed",
			     fx[i].name);
		cr_expect_eq(now.st.st_rdev, fx[i].st.st_rdev);
		cr_expect_str_eq(now.link, fx[i].link);
	}
	snprintf(p, sizeof p, "%s/file", dir);
	expect_content(p, text);
	snprintf(p, sizeof p, "%s/link", dir);
	expect_content(p, text);
	snprintf(p, sizeof p, "%s/nowhere", dir);
	struct stat st;
	cr_expect_eq(lstat(p, &st), -1, "a dangling symlink's target was created");
	cr_expect_eq(count_dir(dir), 2 + (int)nfx, "files appeared or went");

	/* A symlink to a directory is that directory: an unnamed file in it. */
	char sub[PATH_MAX];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	snprintf(p, sizeof p, "%s/sublink", dir);
	cr_assert_eq(symlink("sub", p), 0);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	c.swap_path = p;
	cr_assert_eq(lp_vm_create(&vm, &c), 0);
	exercise(vm);
	cr_expect_eq(count_dir(sub), 2, "a named file in the directory");
	lp_vm_destroy(vm);
	cr_expect_eq(count_dir(sub), 2);

	const char *all[] = { "file", "target", "link", "dangling", "fifo",
			      "null", "devlink", "sublink" };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, all[i]);
		unlink(p);
	}
	rmdir(sub);
	cr_expect_eq(rmdir(dir), 0, "%s not empty", dir);
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
