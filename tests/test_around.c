/* SPDX-License-Identifier: MIT */
/*
 * Fill-around (runtime/fault.c): a first touch brings in its neighbours
 * that were never touched — in order, the pages after it; with no budget,
 * the rest of its 64 KiB block.  What a program must not notice: the
 * content (zeros, the file's bytes), its own writes, and a shared file's
 * pages it never wrote, which must never be written back over what others
 * wrote to the file meanwhile.
 */
#include <inttypes.h>

#include "common.h"

#define BLOCK 16 /* pages: ZA_BLOCK */

/* The page numbers 0..n-1 in an order that is never ascending: each
 * fault out of order (the in-order window never opens). */
static size_t scatter(size_t i, size_t n)
{
	return (i * 37 + 11) % n; /* 37 prime to n */
}

Test(around, anon_random_first_touches_fill_their_block)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(0);
	VM_OR_SKIP(&vm, &c);
	size_t pages = 256;
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (size_t i = 0; i < pages; i++) {
		size_t k = scatter(i, pages);
		for (size_t b = 0; b < PG; b += 512)
			cr_assert_eq(p[k * PG + b], 0, "page %zu byte %zu not zero", k, b);
		p[k * PG + (k % PG)] = (unsigned char)(k | 1);
	}
	for (size_t k = 0; k < pages; k++)
		cr_assert_eq(p[k * PG + (k % PG)], (unsigned char)(k | 1), "page %zu lost its write", k);
	struct lp_stats st = stats_of(vm);
	/* One fault per 64 KiB block, give or take a block split in two runs. */
	cr_assert_leq(st.faults[LP_FAULT_ZERO], 2 * pages / BLOCK,
		      "%" PRIu64 " zero faults for %zu pages", st.faults[LP_FAULT_ZERO], pages);
	cr_assert_eq(st.faults[LP_FAULT_WP], 0, "writes to zero-filled pages fault again");
	lp_vm_destroy(vm);
}

Test(around, budget_keeps_one_fault_per_random_touch)
{
	/* Under a budget, a random first touch brings nothing around: frames
	 * are not spent on guesses. */
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(512);
	VM_OR_SKIP(&vm, &c);
	size_t pages = 256;
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (size_t i = 0; i < pages; i++)
		p[scatter(i, pages) * PG] = 1;
	struct lp_stats st = stats_of(vm);
	for (int k = 0; k < 100 && st.faults[LP_FAULT_ZERO] < pages; k++) {
		usleep(10000);
		st = stats_of(vm);
	}
	cr_assert_eq(st.faults[LP_FAULT_ZERO], pages);
	lp_vm_destroy(vm);
}

Test(around, private_file_random_reads_see_the_file)
{
	char path[64];
	size_t pages = 200, n = pages * PG + 100; /* a partial last page */
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(0);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	size_t len = (pages + 1) * PG;
	cr_assert_eq(lp_map_file(vm, fd, 0, len, PROT_READ | PROT_WRITE, LP_MAP_PRIVATE,
				 (void **)&p), 0);
	for (size_t i = 0; i < pages + 1; i++) {
		size_t k = scatter(i, pages + 1);
		for (size_t b = 0; b < PG; b += 97) {
			size_t off = k * PG + b;
			unsigned char want = off < n ? file_byte(off) : 0;
			cr_assert_eq(p[off], want, "offset %zu: %u want %u", off, p[off], want);
		}
		p[k * PG] ^= 0xff; /* private: never reaches the file */
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_lt(st.faults[LP_FAULT_FILE], pages / 4, "%" PRIu64 " file faults",
		     st.faults[LP_FAULT_FILE]);
	lp_vm_destroy(vm);
	unsigned char b;
	for (size_t k = 0; k < pages; k++) {
		cr_assert_eq(pread(fd, &b, 1, (off_t)(k * PG)), 1);
		cr_assert_eq(b, file_byte(k * PG), "private write reached the file at page %zu", k);
	}
	close(fd);
	unlink(path);
}

/* A shared mapping with no budget: a page filled around a touch but never
 * written is not dirty, so another writer's bytes in the file survive
 * lp_sync() and the unmap; the page the program wrote is written back. */
static void shared_neighbours(size_t frames)
{
	char path[64];
	size_t pages = 32, n = pages * PG;
	int fd = temp_file(n, path, sizeof path);
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(frames);
	VM_OR_SKIP(&vm, &c);
	unsigned char *p;
	cr_assert_eq(lp_map_file(vm, fd, 0, n, PROT_READ | PROT_WRITE, LP_MAP_SHARED,
				 (void **)&p), 0);
	/* Touches in order, then out of order: both kinds of fill-around. */
	for (size_t k = 0; k < 4; k++)
		cr_assert_eq(p[k * PG + 1], file_byte(k * PG + 1));
	cr_assert_eq(p[20 * PG + 1], file_byte(20 * PG + 1));
	p[20 * PG] = 0x5a;
	/* Someone else writes the file behind pages never touched here. */
	unsigned char other[PG];
	memset(other, 0xee, sizeof other);
	for (size_t k = 4; k < pages; k++)
		if (k != 20)
			cr_assert_eq(pwrite(fd, other, PG, (off_t)(k * PG)), (ssize_t)PG);
	cr_assert_eq(lp_sync(vm, p, n), 0);
	cr_assert_eq(lp_unmap(vm, p, n), 0);
	lp_vm_destroy(vm);
	unsigned char b[PG];
	for (size_t k = 4; k < pages; k++) {
		cr_assert_eq(pread(fd, b, PG, (off_t)(k * PG)), (ssize_t)PG);
		if (k == 20) {
			cr_assert_eq(b[0], 0x5a, "the program's write was lost");
			continue;
		}
		for (size_t i = 0; i < PG; i++)
			cr_assert_eq(b[i], 0xee, "page %zu byte %zu: the other writer's data "
				     "was overwritten by a page we never wrote", k, i);
	}
	close(fd);
	unlink(path);
}

Test(around, shared_file_pages_never_written_are_not_written_back)
{
	shared_neighbours(0);
}

Test(around, shared_file_with_budget_too)
{
	shared_neighbours(64);
}

/* Sequential passes under a budget: pages come back by swap readahead,
 * those written during their last residency writable (keeping their swap
 * copy and its digest, PGF_MAYBE), the others write-protected.  At
 * eviction the digest tells a page written (rewritten) from one only read
 * (dropped clean: pass 4 reads only, pass 5 must see pass 3's data).  Every pass must see the previous
 * pass's writes, whichever way the page came in; with and without
 * encryption (whose readahead authenticates each page). */
static void passes(unsigned flags)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(64);
	c.flags |= LP_CFG_VERIFY | flags;
	VM_OR_SKIP(&vm, &c);
	size_t pages = 1024;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	uint64_t last = 0; /* the pass that wrote last */
	for (uint64_t pass = 1; pass <= 5; pass++) {
		for (size_t k = 0; k < pages; k++) {
			uint64_t *q = p + k * (PG / 8) + k % (PG / 8);
			uint64_t want = last ? last << 32 | k : 0;
			cr_assert_eq(*q, want, "pass %" PRIu64 " page %zu: %#" PRIx64
				     " want %#" PRIx64, pass, k, *q, want);
			/* Pass 4 only reads: the pages turn clean again. */
			if (pass != 4)
				*q = pass << 32 | k;
		}
		if (pass != 4)
			last = pass;
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.readahead_pages, pages, "readahead did not run");
	cr_assert_geq(st.clean_drops, pages / 2,
		      "pages only read were rewritten: %" PRIu64 " clean drops",
		      st.clean_drops);
	cr_assert_lt(st.faults[LP_FAULT_WP], 4 * pages,
		     "every page came back write-protected: %" PRIu64 " write faults",
		     st.faults[LP_FAULT_WP]);
	cr_assert_eq(st.verify_mismatches, 0);
	lp_vm_destroy(vm);
}

Test(around, readahead_written_pages_come_back_right)
{
	passes(0);
}

Test(around, readahead_written_pages_come_back_right_encrypted)
{
	passes(LP_CFG_ENCRYPT_SWAP);
}
