/* SPDX-License-Identifier: MIT */
/* Shared file mappings: what is written reaches the file. */
#include "common.h"

static void expect_file(const char *path, size_t n, unsigned char (*want)(size_t))
{
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0);
	struct stat st;
	fstat(fd, &st);
	cr_assert_eq((size_t)st.st_size, n, "file size %ld, want %zu", st.st_size, n);
	unsigned char *buf = malloc(n);
	cr_assert_eq(pread(fd, buf, n, 0), (ssize_t)n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(buf[i], want(i), "byte %zu: %u want %u", i, buf[i], want(i));
	free(buf);
	close(fd);
}

static unsigned char written(size_t i)
{
	return (unsigned char)(i % 4096 < 8 ? 0xa0 + (i / 4096) % 32 : file_byte(i));
}

static void dirty_all(unsigned char *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		memset(p + i * PG, 0xa0 + (int)(i % 32), 8);
}

Test(file, shared_writes_reach_file_on_sync)
{
	char path[64];
	size_t pages = 40, n = pages * PG;
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(64);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 0, n, PROT_READ | PROT_WRITE, LP_MAP_SHARED,
				 (void **)&p), 0);
	dirty_all(p, pages);
	cr_assert_eq(lp_sync(vm, p, n), 0);
	expect_file(path, n, written);
	struct lp_stats st = stats_of(vm);
	cr_assert_eq(st.file_writebacks, pages);
	/* A second sync has nothing left to write. */
	cr_assert_eq(lp_sync(vm, NULL, 0), 0);
	cr_assert_eq(stats_of(vm).file_writebacks, pages);
	lp_vm_destroy(vm);
	close(fd);
	unlink(path);
}

Test(file, shared_writes_reach_file_on_eviction)
{
	char path[64];
	size_t pages = 64, n = pages * PG;
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(4);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 0, n, PROT_READ | PROT_WRITE, LP_MAP_SHARED,
				 (void **)&p), 0);
	dirty_all(p, pages);
	/* Read the middle of the file behind lazypage's back: pages that left
	 * memory are on the file already. */
	struct lp_stats st = stats_of(vm);
	cr_assert_geq(st.file_writebacks, pages - 8, "evictions did not write back");
	cr_assert_eq(st.swap_outs, 0, "shared file pages went to swap");
	for (size_t i = 0; i < pages; i++)
		cr_assert_eq(p[i * PG], 0xa0 + i % 32, "page %zu reread", i);
	lp_vm_destroy(vm); /* writes back the rest */
	expect_file(path, n, written);
	close(fd);
	unlink(path);
}

Test(file, unmap_writes_back_and_waits_for_io)
{
	char path[64];
	size_t pages = 128, n = pages * PG;
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 0, n, PROT_READ | PROT_WRITE, LP_MAP_SHARED,
				 (void **)&p), 0);
	dirty_all(p, pages);
	/* Evictions are in flight right now; unmap must not lose them. */
	cr_assert_eq(lp_unmap(vm, p, n), 0);
	expect_file(path, n, written);
	lp_vm_destroy(vm);
	close(fd);
	unlink(path);
}

Test(file, past_end_of_file_reads_zero_and_file_is_not_extended)
{
	char path[64];
	size_t n = 2 * PG + 100;
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(4);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 0, 6 * PG, PROT_READ | PROT_WRITE,
				 LP_MAP_SHARED, (void **)&p), 0);
	for (size_t i = n; i < 6 * PG; i++)
		cr_assert_eq(p[i], 0, "byte %zu past EOF", i);
	memset(p, 0x11, 6 * PG); /* writes past EOF stay in memory only */
	cr_assert_eq(lp_sync(vm, NULL, 0), 0);
	struct stat st;
	fstat(fd, &st);
	cr_assert_eq((size_t)st.st_size, n, "file extended to %ld", st.st_size);
	unsigned char buf[256];
	cr_assert_eq(pread(fd, buf, 100, 2 * PG), 100);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(buf[i], 0x11);
	lp_vm_destroy(vm);
	close(fd);
	unlink(path);
}

Test(file, read_only_descriptor_cannot_map_shared_writable)
{
	char path[64];
	int fd = temp_file(PG, path, sizeof path);
	int ro = open(path, O_RDONLY);
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	void *p;
	cr_assert_eq(lp_map_file(vm, ro, 0, PG, PROT_READ | PROT_WRITE, LP_MAP_SHARED, &p),
		     -EACCES);
	cr_assert_eq(lp_map_file(vm, ro, 0, PG, PROT_READ, LP_MAP_SHARED, &p), 0);
	cr_assert_eq(lp_map_file(vm, ro, 0, PG, PROT_READ | PROT_WRITE, LP_MAP_PRIVATE, &p), 0);
	lp_vm_destroy(vm);
	close(ro);
	close(fd);
	unlink(path);
}
