/* SPDX-License-Identifier: MIT */
/* Each kind of mapping gives the bytes a user expects, lazily. */
#include <pthread.h>
#include <stdatomic.h>

#include "common.h"

/* Whether the page at p is mapped in the page table now. */
static int present(const void *p)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &e, 8, (off_t)((uintptr_t)p / PG * 8)), 8);
	close(fd);
	return (int)(e >> 63);
}

Test(map, anon_pages_are_lazy_and_zero)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, 64 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	cr_assert_eq((uintptr_t)p % PG, 0);
	for (int i = 0; i < 64; i++)
		cr_assert_eq(present(p + i * PG), 0, "page %d present before touch", i);
	for (int i = 0; i < 64 * (int)PG; i += 997)
		cr_assert_eq(p[i], 0);
	struct lp_stats st = stats_of(vm);
	cr_assert_geq(st.faults[LP_FAULT_ZERO], 1);
	cr_assert_leq(st.faults[LP_FAULT_ZERO], 64);
	cr_assert_eq(present(p + 63 * PG), 1);
	p[5 * PG + 3] = 42;
	cr_assert_eq(p[5 * PG + 3], 42);
	lp_vm_destroy(vm);
}

Test(map, length_is_rounded_to_pages)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, 1, PROT_READ | PROT_WRITE, (void **)&p), 0);
	p[PG - 1] = 1; /* the whole page is ours */
	cr_assert_eq(lp_unmap(vm, p, PG), 0);
	lp_vm_destroy(vm);
}

Test(map, file_private_reads_file_and_keeps_writes_private)
{
	char path[64];
	size_t n = 10 * PG + 123; /* a partial last page */
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(4);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 0, 12 * PG, PROT_READ | PROT_WRITE,
				 LP_MAP_PRIVATE, (void **)&p), 0);
	close(fd); /* the mapping keeps its own descriptor */
	for (size_t i = 0; i < 12 * PG; i++) {
		unsigned char want = i < n ? file_byte(i) : 0;
		cr_assert_eq(p[i], want, "byte %zu: %u, want %u", i, p[i], want);
	}
	/* Private writes survive eviction (4 frames, 12 pages) ... */
	for (size_t i = 0; i < 12; i++)
		p[i * PG + 1] = (unsigned char)(200 + i);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 12; i++)
			cr_assert_eq(p[i * PG + 1], 200 + i, "page %zu", i);
	/* ... and never reach the file. */
	fd = open(path, O_RDONLY);
	unsigned char b;
	for (size_t i = 0; i < 10; i++) {
		cr_assert_eq(pread(fd, &b, 1, (off_t)(i * PG + 1)), 1);
		cr_assert_eq(b, file_byte(i * PG + 1));
	}
	struct stat st;
	fstat(fd, &st);
	cr_assert_eq((size_t)st.st_size, n, "file size changed");
	close(fd);
	struct lp_stats s = stats_of(vm);
	cr_assert_geq(s.faults[LP_FAULT_FILE], 12);
	cr_assert_eq(s.file_writebacks, 0);
	lp_vm_destroy(vm);
	unlink(path);
}

Test(map, file_at_an_offset)
{
	char path[64];
	int fd = temp_file(8 * PG, path, sizeof path);
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 3 * PG, 2 * PG, PROT_READ,
				 LP_MAP_PRIVATE, (void **)&p), 0);
	for (size_t i = 0; i < 2 * PG; i++)
		cr_assert_eq(p[i], file_byte(3 * PG + i));
	lp_vm_destroy(vm);
	close(fd);
	unlink(path);
}

static atomic_int fills;

static int fill_index(void *page, void *buf, void *aux)
{
	uintptr_t base = (uintptr_t)aux;
	uint64_t *w = buf;

	(void)base;
	atomic_fetch_add(&fills, 1);
	w[0] = (uintptr_t)page;
	w[1] = 0xfeedface;
	return 0;
}

Test(map, lazy_initializer_runs_once_per_page)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	VM_OR_SKIP(&vm, &c);
	struct lp_initializer init = { fill_index, NULL, 0 };
	uint64_t *p;
	atomic_store(&fills, 0);
	cr_assert_eq(lp_map_lazy(vm, 32 * PG, PROT_READ | PROT_WRITE, &init,
				 (void **)&p), 0);
	cr_assert_eq(atomic_load(&fills), 0, "filled before any touch");
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 32; i++) {
			uint64_t *q = p + i * (PG / 8);
			cr_assert_eq(q[0], (uintptr_t)q);
			cr_assert_eq(q[1], 0xfeedface);
		}
	/* 32 pages through 8 frames, three times: swapped, never refilled. */
	cr_assert_eq(atomic_load(&fills), 32);
	/* In order: after the first faults, pages come in ahead of them
	 * (filled once all the same). */
	struct lp_stats st = stats_of(vm);
	cr_assert_geq(st.faults[LP_FAULT_INIT], 1);
	cr_assert_leq(st.faults[LP_FAULT_INIT], 32);
	cr_assert_geq(st.swap_outs, 1);
	lp_vm_destroy(vm);
}

Test(map, lazy_refill_drops_unwritten_pages_without_swap)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(8);
	VM_OR_SKIP(&vm, &c);
	struct lp_initializer init = { fill_index, NULL, LP_INIT_REFILL };
	uint64_t *p;
	atomic_store(&fills, 0);
	cr_assert_eq(lp_map_lazy(vm, 32 * PG, PROT_READ, &init, (void **)&p), 0);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 32; i++)
			cr_assert_eq(p[i * (PG / 8)], (uintptr_t)(p + i * (PG / 8)));
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(atomic_load(&fills), 32, "pages were not refilled");
	cr_assert_eq(st.swap_outs, 0, "clean refillable pages went to swap");
	cr_assert_gt(st.clean_drops, 0);
	lp_vm_destroy(vm);
}

static int fill_fail(void *page, void *buf, void *aux)
{
	(void)page;
	(void)buf;
	(void)aux;
	return -EIO;
}

Test(map, failed_fill_is_sigbus, .signal = SIGBUS)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	struct lp_initializer init = { fill_fail, NULL, 0 };
	volatile char *p;
	cr_assert_eq(lp_map_lazy(vm, PG, PROT_READ, &init, (void **)&p), 0);
	(void)p[0];
	cr_assert_fail("read of a page that cannot be filled returned");
}

Test(map, unmapped_range_is_segv, .signal = SIGSEGV)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	volatile char *p;
	cr_assert_eq(lp_map_anon(vm, 4 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	p[0] = 1;
	cr_assert_eq(lp_unmap(vm, (void *)p, 4 * PG), 0);
	p[PG] = 1;
	cr_assert_fail("write to an unmapped range succeeded");
}

Test(map, partial_unmap_keeps_the_rest)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(4);
	VM_OR_SKIP(&vm, &c);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, 16 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (int i = 0; i < 16; i++)
		fill_page(p, i, 1);
	/* cut a hole in the middle: two regions remain */
	cr_assert_eq(lp_unmap(vm, p + 4 * (PG / 8), 8 * PG), 0);
	for (int i = 0; i < 16; i++) {
		if (i >= 4 && i < 12)
			continue;
		cr_assert_eq(check_page(p, i, 1), -1, "page %d", i);
	}
	cr_assert_eq(lp_unmap(vm, p + 4 * (PG / 8), PG), -EINVAL, "unmapped twice");
	cr_assert_eq(lp_unmap(vm, p, 4 * PG), 0);
	cr_assert_eq(lp_unmap(vm, p + 12 * (PG / 8), 4 * PG), 0);
	struct lp_stats st = stats_of(vm);
	cr_assert_eq(st.resident_frames, 0);
	cr_assert_eq(st.swap_slots_used, 0, "slots leaked by unmap");
	lp_vm_destroy(vm);
}

Test(map, read_only_region_write_is_segv, .signal = SIGSEGV)
{
	struct lp_vm *vm;
	VM_OR_SKIP(&vm, NULL);
	volatile char *p;
	cr_assert_eq(lp_map_anon(vm, PG, PROT_READ, (void **)&p), 0);
	cr_assert_eq(p[0], 0);
	p[0] = 1;
	cr_assert_fail("write to a read-only region succeeded");
}
