/* SPDX-License-Identifier: MIT */
/* Bad arguments get the documented error, never a crash. */
#include "common.h"

Test(args, create_rejects_bad_configuration)
{
	struct lp_vm *vm = (struct lp_vm *)0x1;
	struct lp_config c;

	cr_assert_eq(lp_vm_create(NULL, NULL), -EINVAL);
	lp_config_init(&c);
	c.frames = LP_MIN_FRAMES - 1;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	cr_assert_null(vm, "out not cleared on failure");
	lp_config_init(&c);
	c.policy = "no-such-policy";
	cr_assert_eq(lp_vm_create(&vm, &c), -ENOENT);
	lp_config_init(&c);
	c.threads = 100000;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	lp_config_init(&c);
	c.reserved[3] = 1;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	lp_config_init(&c);
	c.flags = 0x80000000u;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
}

Test(args, unusable_swap_path_is_an_error_at_create)
{
	struct lp_vm *vm;
	struct lp_config c;
	int rc;

	lp_config_init(&c);
	c.swap_path = "/nonexistent-dir/lazypage/swap";
	rc = lp_vm_create(&vm, &c);
	if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS)
		cr_skip_test("userfaultfd refused here");
	cr_assert_eq(rc, -ENOENT, "got %s", strerror(-rc));
	c.swap_path = "/dev/null/swap";
	cr_assert_eq(lp_vm_create(&vm, &c), -ENOTDIR);
	c.swap_path = "/proc/lazypage-swap";
	rc = lp_vm_create(&vm, &c);
	cr_assert_lt(rc, 0, "a swap file in /proc was accepted");
}

Test(args, malformed_environment_is_reported)
{
	struct lp_vm *vm;
	struct lp_config c;

	setenv("LAZYPAGE_MEM", "lots", 1);
	lp_config_init(&c);
	cr_assert_eq(c.frames, 0, "malformed value applied");
	cr_assert_eq(lp_vm_create(&vm, NULL), -EINVAL);
	setenv("LAZYPAGE_MEM", "2M", 1);
	setenv("LAZYPAGE_POLICY", "fifo", 1);
	setenv("LAZYPAGE_THREADS", "3", 1);
	lp_config_init(&c);
	cr_assert_eq(c.frames, 512);
	cr_assert_str_eq(c.policy, "fifo");
	cr_assert_eq(c.threads, 3);
	setenv("LAZYPAGE_THREADS", "-1", 1);
	cr_assert_eq(lp_vm_create(&vm, NULL), -EINVAL);
	unsetenv("LAZYPAGE_THREADS");
	setenv("LAZYPAGE_STATS", "maybe", 1);
	cr_assert_eq(lp_vm_create(&vm, NULL), -EINVAL);
}

/* Regression (fuzz-config, tests/fuzz-regressions/config/mem-below-a-page):
 * LAZYPAGE_MEM under one page gave frames = 0, an unlimited budget, where
 * a cap was asked for.  Now it is a cap too small, refused at create. */
Test(args, tiny_mem_from_environment_is_not_unlimited)
{
	struct lp_vm *vm = (struct lp_vm *)1;
	struct lp_config c;

	setenv("LAZYPAGE_MEM", "100", 1);
	lp_config_init(&c);
	cr_assert_neq(c.frames, 0, "LAZYPAGE_MEM=100 became unlimited");
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	cr_assert_null(vm);
	unsetenv("LAZYPAGE_MEM");
}

Test(args, parse_size)
{
	uint64_t v;

	cr_assert_eq(lp_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(lp_parse_size("64K", &v), 0);
	cr_assert_eq(v, 64 << 10);
	cr_assert_eq(lp_parse_size("32M", &v), 0);
	cr_assert_eq(v, 32 << 20);
	cr_assert_eq(lp_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(lp_parse_size("1t", &v), 0);
	cr_assert_eq(v, 1ull << 40);
	cr_assert_eq(lp_parse_size("", &v), -EINVAL);
	cr_assert_eq(lp_parse_size("-5M", &v), -EINVAL);
	cr_assert_eq(lp_parse_size("5X", &v), -EINVAL);
	cr_assert_eq(lp_parse_size("1.5G", &v), -EINVAL);
	cr_assert_eq(lp_parse_size("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(lp_parse_size("100000000T", &v), -ERANGE);
	cr_assert_eq(lp_parse_size(NULL, &v), -EINVAL);
}

/* Issue 9 point 13: a number beyond 64 bits is -ERANGE (as the header
 * says), not -EINVAL, whatever its suffix; malformed stays -EINVAL; a NULL
 * result pointer is -EINVAL, not a crash; *bytes is left alone on error. */
Test(args, parse_size_overflow_and_null)
{
	uint64_t v = 7;

	cr_assert_eq(lp_parse_size("18446744073709551616", &v), -ERANGE);
	cr_assert_eq(lp_parse_size("99999999999999999999", &v), -ERANGE);
	cr_assert_eq(lp_parse_size("99999999999999999999KiB", &v), -ERANGE);
	cr_assert_eq(lp_parse_size("99999999999999999999X", &v), -EINVAL);
	cr_assert_eq(lp_parse_size("16777216T", &v), -ERANGE);
	cr_assert_eq(v, 7, "result written on error");
	cr_assert_eq(lp_parse_size("1", NULL), -EINVAL);
	cr_assert_eq(lp_parse_size("1M", NULL), -EINVAL);
}

/* A swap_max below one page holds no page: refused at create (and from
 * LAZYPAGE_SWAP_MAX), before anything is opened. */
Test(args, swap_max_below_a_page_is_refused)
{
	struct lp_vm *vm = (struct lp_vm *)1;
	struct lp_config c;

	lp_config_init(&c);
	c.swap_max = 1;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	c.swap_max = LP_PAGE_SIZE - 1;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	setenv("LAZYPAGE_SWAP_MAX", "1", 1);
	lp_config_init(&c);
	cr_assert_eq(c.swap_max, 0, "LAZYPAGE_SWAP_MAX=1 applied");
	cr_assert_eq(lp_vm_create(&vm, NULL), -EINVAL);
	unsetenv("LAZYPAGE_SWAP_MAX");
}

Test(args, map_rejects_bad_arguments)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	void *p;
	char path[64];
	int fd = temp_file(4 * PG, path, sizeof path);

	cr_assert_eq(lp_map_anon(NULL, PG, PROT_READ, &p), -EINVAL);
	cr_assert_eq(lp_map_anon(vm, 0, PROT_READ, &p), -EINVAL);
	cr_assert_eq(lp_map_anon(vm, PG, 0x100, &p), -EINVAL);
	cr_assert_eq(lp_map_anon(vm, PG, PROT_READ, NULL), -EINVAL);
	cr_assert_eq(lp_map_anon(vm, SIZE_MAX, PROT_READ, &p), -ENOMEM);

	cr_assert_eq(lp_map_file(vm, -1, 0, PG, PROT_READ, LP_MAP_PRIVATE, &p), -EBADF);
	cr_assert_eq(lp_map_file(vm, 999, 0, PG, PROT_READ, LP_MAP_PRIVATE, &p), -EBADF);
	cr_assert_eq(lp_map_file(vm, fd, 100, PG, PROT_READ, LP_MAP_PRIVATE, &p), -EINVAL);
	cr_assert_eq(lp_map_file(vm, fd, -(off_t)PG, PG, PROT_READ, LP_MAP_PRIVATE, &p), -EINVAL);
	cr_assert_eq(lp_map_file(vm, fd, 0, 0, PROT_READ, LP_MAP_PRIVATE, &p), -EINVAL);
	cr_assert_eq(lp_map_file(vm, fd, 0, PG, PROT_READ, 0, &p), -EINVAL);
	cr_assert_eq(lp_map_file(vm, fd, 0, PG, PROT_READ,
				 LP_MAP_PRIVATE | LP_MAP_SHARED, &p), -EINVAL);
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
	cr_assert_eq(lp_map_file(vm, dir, 0, PG, PROT_READ, LP_MAP_PRIVATE, &p), -ENODEV);
	close(dir);
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(lp_map_file(vm, fds[0], 0, PG, PROT_READ, LP_MAP_PRIVATE, &p), -ENODEV);
	close(fds[0]);
	close(fds[1]);
	int wo = open(path, O_WRONLY);
	cr_assert_eq(lp_map_file(vm, wo, 0, PG, PROT_READ, LP_MAP_PRIVATE, &p), -EACCES);
	close(wo);

	struct lp_initializer none = { NULL, NULL, 0 };
	cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, NULL, &p), -EINVAL);
	cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, &none, &p), -EINVAL);

	lp_vm_destroy(vm);
	close(fd);
	unlink(path);
}

Test(args, unmap_and_sync_reject_bad_ranges)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	char *p;
	cr_assert_eq(lp_map_anon(vm, 4 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);

	cr_assert_eq(lp_unmap(vm, p + 1, PG), -EINVAL);
	cr_assert_eq(lp_unmap(vm, p, PG + 1), -EINVAL);
	cr_assert_eq(lp_unmap(vm, p, 0), -EINVAL);
	cr_assert_eq(lp_unmap(vm, p, 8 * PG), -EINVAL, "range beyond the region");
	cr_assert_eq(lp_unmap(NULL, p, PG), -EINVAL);
	char stack[2 * PG];
	void *aligned = (void *)(((uintptr_t)stack + PG - 1) & ~(uintptr_t)(PG - 1));
	cr_assert_eq(lp_unmap(vm, aligned, PG), -EINVAL, "memory not ours");

	cr_assert_eq(lp_sync(vm, p + 1, PG), -EINVAL);
	cr_assert_eq(lp_sync(vm, aligned, PG), -EINVAL);
	cr_assert_eq(lp_sync(vm, p, 4 * PG), 0, "sync of anonymous memory");
	cr_assert_eq(lp_sync(NULL, NULL, 0), -EINVAL);

	/* Failed calls changed nothing. */
	p[3 * PG] = 9;
	cr_assert_eq(p[3 * PG], 9);
	cr_assert_eq(lp_unmap(vm, p, 4 * PG), 0);

	struct lp_stats st;
	cr_assert_eq(lp_stats_get(NULL, &st), -EINVAL);
	cr_assert_eq(lp_stats_get(vm, NULL), -EINVAL);
	lp_vm_destroy(vm);
	lp_vm_destroy(NULL);
}

Test(args, stats_print_formats)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(0);
	c.flags |= LP_CFG_NO_READAHEAD; /* no fill-around: one fault each */
	VM_OR_SKIP(&vm, &c);
	char *p;
	cr_assert_eq(lp_map_anon(vm, 64 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (int i = 0; i < 64; i++)
		p[(i * 37 % 64) * PG] = 1;
	/* A handler counts a fault just after it has let the thread go. */
	struct lp_stats st = stats_of(vm);
	for (int k = 0; k < 100 && st.faults[LP_FAULT_ZERO] < 64; k++) {
		usleep(10000);
		st = stats_of(vm);
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(lp_stats_print(&st, f, 1), 0);
	fclose(f);
	cr_assert(strstr(buf, "\"budget_frames\":0"), "%s", buf);
	cr_assert(strstr(buf, "\"zero\":{\"count\":64"), "%s", buf);
	cr_assert_eq(buf[0], '{');
	free(buf);
	f = open_memstream(&buf, &len);
	cr_assert_eq(lp_stats_print(&st, f, 0), 0);
	fclose(f);
	cr_assert(strstr(buf, "budget          unlimited"), "%s", buf);
	free(buf);
	cr_assert_eq(lp_stats_print(NULL, stdout, 0), -EINVAL);
	cr_assert_str_eq(lp_fault_kind_name(LP_FAULT_SWAPIN), "swapin");
	cr_assert_str_eq(lp_fault_kind_name((enum lp_fault_kind)99), "?");
	lp_vm_destroy(vm);
}
