/* SPDX-License-Identifier: MIT */
/* What the library takes it gives back; what it writes is ours only. */
#include <limits.h>
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

Test(resources, named_swap_file_is_private_and_removed)
{
	char path[] = "/tmp/lp-test-swap-XXXXXX";
	int tmp = mkstemp(path);
	close(tmp);
	chmod(path, 0666);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	c.swap_path = path;
	VM_OR_SKIP(&vm, &c);
	exercise(vm);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "swap file mode %o", st.st_mode & 0777);
	cr_assert_gt(st.st_size, 0);
	lp_vm_destroy(vm);
	cr_assert_eq(stat(path, &st), -1, "swap file left behind");
	cr_assert_eq(errno, ENOENT);
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
