/* SPDX-License-Identifier: MIT */
/* System calls that touch region memory are served, not failed with EFAULT. */
#include <sys/uio.h>

#include "common.h"

Test(kernel, read_into_untouched_buffer)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	char *p;
	cr_assert_eq(lp_map_anon(vm, 4 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	const char msg[] = "kernel-mode fault served";
	cr_assert_eq(write(fds[1], msg, sizeof msg), (ssize_t)sizeof msg);
	/* The first touch of this page is the kernel's copy_to_user. */
	ssize_t n = read(fds[0], p + 2 * PG + 100, sizeof msg);
	cr_assert_eq(n, (ssize_t)sizeof msg, "read: %s", n < 0 ? strerror(errno) : "short");
	cr_assert_str_eq(p + 2 * PG + 100, msg);
	close(fds[0]);
	close(fds[1]);
	lp_vm_destroy(vm);
}

Test(kernel, file_read_and_write_through_evicted_pages)
{
	char path[64];
	size_t pages = 64, n = pages * PG;
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(4);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, n, PROT_READ | PROT_WRITE, (void **)&p), 0);
	/* One read(2) spanning 64 pages through 4 frames. */
	cr_assert_eq(pread(fd, p, n, 0), (ssize_t)n);
	for (size_t i = 0; i < n; i += 61)
		cr_assert_eq(p[i], file_byte(i), "byte %zu", i);
	/* And back out with write(2), from pages that are on swap now. */
	char out[64] = "/tmp/lp-test-out-XXXXXX";
	int ofd = mkstemp(out);
	cr_assert_eq(write(ofd, p, n), (ssize_t)n);
	unsigned char b;
	for (size_t i = 0; i < n; i += 4093) {
		cr_assert_eq(pread(ofd, &b, 1, (off_t)i), 1);
		cr_assert_eq(b, file_byte(i));
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.swap_outs, 0);
	close(ofd);
	unlink(out);
	lp_vm_destroy(vm);
	close(fd);
	unlink(path);
}

Test(kernel, readv_into_many_regions)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	VM_OR_SKIP(&vm, &c);
	char *a, *b;
	cr_assert_eq(lp_map_anon(vm, 3 * PG, PROT_READ | PROT_WRITE, (void **)&a), 0);
	cr_assert_eq(lp_map_anon(vm, 3 * PG, PROT_READ | PROT_WRITE, (void **)&b), 0);
	char path[64];
	int fd = temp_file(6 * PG, path, sizeof path);
	struct iovec iov[2] = { { a, 3 * PG }, { b, 3 * PG } };
	cr_assert_eq(preadv(fd, iov, 2, 0), (ssize_t)(6 * PG));
	for (size_t i = 0; i < 3 * PG; i += 97) {
		cr_assert_eq((unsigned char)a[i], file_byte(i));
		cr_assert_eq((unsigned char)b[i], file_byte(3 * PG + i));
	}
	close(fd);
	unlink(path);
	lp_vm_destroy(vm);
}
