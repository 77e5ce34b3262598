/* SPDX-License-Identifier: MIT */
/*
 * The compressed tier (runtime/zpool.c, lp_config.tier): pages evicted
 * into it come back intact, with both codecs; a page that does not
 * compress goes to the swap file; a tier past its share writes its oldest
 * pages on to the swap file and they still come back; the budget holds
 * with the tier's memory counted; a corrupt block gives SIGBUS at the
 * page's address, never its bytes.  White-box (links the internal library)
 * for the last one: the test corrupts blocks in place.
 */
#include <setjmp.h>
#include <signal.h>

#include "common.h"
#include "vm.h"
#include "zpool.h"

#define FRAMES 64
#define PAGES 1024 /* 16 times the budget */

/* Page i, generation g: 16-byte records (i, g) and a counter, which
 * compress well (to a few hundred bytes). */
static void fill_z(unsigned char *p, size_t i, uint64_t g)
{
	uint64_t *q = (uint64_t *)(p + i * PG);
	for (unsigned w = 0; w < PG / 8; w += 2) {
		q[w] = stamp(i, g);
		q[w + 1] = w / 64;
	}
}

static long check_z(const unsigned char *p, size_t i, uint64_t g)
{
	const uint64_t *q = (const uint64_t *)(p + i * PG);
	for (unsigned w = 0; w < PG / 8; w += 2)
		if (q[w] != stamp(i, g) || q[w + 1] != w / 64)
			return w;
	return -1;
}

/* Page i of random bytes (xorshift seeded by i): no codec shrinks it. */
static void fill_rand(uint64_t *p, size_t i, bool check, size_t *bad)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
	for (unsigned w = 0; w < PG / 8; w++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (!check)
			p[i * (PG / 8) + w] = x;
		else if (p[i * (PG / 8) + w] != x)
			(*bad)++;
	}
}

static struct lp_vm *tier_vm(unsigned tier, unsigned share, unsigned flags)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(FRAMES);
	c.tier = tier;
	c.tier_share = share;
	c.flags |= flags;
	int rc = lp_vm_create(&vm, &c);
	if (rc == -ENOTSUP)
		cr_skip_test("this build has no such codec (or no libsodium)");
	if (rc && userfaultfd_refused())
		cr_skip_test("userfaultfd refused here");
	cr_assert_eq(rc, 0, "lp_vm_create: %s", strerror(-rc));
	return vm;
}

/* Two generations written over PAGES pages and read back, in order and
 * scattered: every page intact, the tier used both ways. */
static void round_trip(unsigned tier)
{
	struct lp_vm *vm = tier_vm(tier, 0, 0);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (size_t i = 0; i < PAGES; i++)
		fill_z(p, i, 1);
	for (size_t k = 0; k < PAGES; k++) {
		size_t i = (k * 389) % PAGES;
		cr_assert_eq(check_z(p, i, 1), -1, "page %zu, first pass", i);
		fill_z(p, i, 2);
	}
	for (size_t i = 0; i < PAGES; i++)
		cr_assert_eq(check_z(p, i, 2), -1, "page %zu, second pass", i);
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.tier_stores, PAGES / 2, "%lu stored", (unsigned long)st.tier_stores);
	/* (How many come back from the tier, rather than from swap, depends
	 * on when the evictor ran: 63 of 1024 under an ASan build on a
	 * machine at load 20, over 100 at rest.) */
	cr_assert_gt(st.tier_loads, PAGES / 32, "%lu read back", (unsigned long)st.tier_loads);
	cr_assert_gt(st.faults[LP_FAULT_TIER], 0);
	/* Pages come back soon after they left: every one is admitted. */
	cr_assert_eq(st.tier_bypasses, 0, "%lu not taken", (unsigned long)st.tier_bypasses);
	cr_assert_eq(st.io_errors, 0);
	cr_assert_eq(st.last_error, 0);
	/* The budget holds, the tier's frames counted in it. */
	cr_assert_leq(st.peak_frames, FRAMES, "peak %lu frames", (unsigned long)st.peak_frames);
	/* ... and the tier never grows past its share (50 %). */
	cr_assert_leq(st.tier_peak_frames, FRAMES / 2, "tier peak %lu frames",
		      (unsigned long)st.tier_peak_frames);
	cr_assert_leq(st.tier_limit_frames, FRAMES / 2);
	lp_vm_destroy(vm);
}

Test(tier, lz4_round_trip_under_eviction, .timeout = 120)
{
	round_trip(LP_TIER_LZ4);
}

Test(tier, zstd_round_trip_under_eviction, .timeout = 120)
{
	round_trip(LP_TIER_ZSTD);
}

Test(tier, a_page_that_does_not_compress_goes_to_swap, .timeout = 120)
{
	struct lp_vm *vm = tier_vm(LP_TIER_LZ4, 0, 0);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	size_t bad = 0;
	for (size_t i = 0; i < PAGES; i++)
		fill_rand(p, i, false, &bad);
	for (size_t i = 0; i < PAGES; i++) {
		fill_rand(p, i, true, &bad);
		cr_assert_eq(bad, 0, "page %zu", i);
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.tier_rejects, PAGES / 2, "%lu refused", (unsigned long)st.tier_rejects);
	cr_assert_gt(st.swap_outs, PAGES / 2);
	cr_assert_eq(st.io_errors, 0);
	lp_vm_destroy(vm);
}

Test(tier, a_full_tier_writes_on_to_swap_and_loses_nothing, .timeout = 120)
{
	/* 10 % of 64 frames: 6 pages of tier for 1024 pages. */
	struct lp_vm *vm = tier_vm(LP_TIER_LZ4, 10, 0);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (int g = 1; g <= 3; g++) {
		for (size_t i = 0; i < PAGES; i++) {
			if (g > 1)
				cr_assert_eq(check_z(p, i, (uint64_t)g - 1), -1,
					     "page %zu, generation %d", i, g - 1);
			fill_z(p, i, (uint64_t)g);
		}
	}
	for (size_t i = 0; i < PAGES; i++)
		cr_assert_eq(check_z(p, i, 3), -1, "page %zu at the end", i);
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.tier_writebacks, 0, "the tier never wrote on");
	cr_assert_gt(st.faults[LP_FAULT_SWAPIN], 0, "nothing came back from swap");
	cr_assert_leq(st.tier_peak_frames, 6, "tier peak %lu frames",
		      (unsigned long)st.tier_peak_frames);
	cr_assert_leq(st.peak_frames, FRAMES);
	cr_assert_eq(st.io_errors, 0);
	lp_vm_destroy(vm);
}

Test(tier, a_corrupt_block_is_refused_with_sigbus, .timeout = 120)
{
	struct lp_vm *vm = tier_vm(LP_TIER_LZ4, 0, 0);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (size_t i = 0; i < PAGES; i++)
		fill_z(p, i, 1);
	/* Corrupt every block the tier holds now (pages it writes on to
	 * swap later are not: those read back intact). */
	struct zpool *zp = zpool_of_store(vm->swap->chain.s[0]);
	cr_assert_not_null(zp);
	size_t bad = 0;
	for (uint64_t s = 0; s < vm->swap->nslots; s++)
		bad += zpool_corrupt(zp, s) == 0;
	cr_assert_gt(bad, 0, "the tier held nothing");

	struct sigaction sa = { 0 }, old;
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, &old);
	size_t sigbus = 0;
	for (size_t i = 0; i < PAGES; i++) {
		uint64_t w = 0;
		if (touch_bus((const uint64_t *)p, i, &w)) {
			sigbus++;
			cr_assert_eq((uintptr_t)bus_addr, (uintptr_t)(p + i * PG),
				     "SIGBUS at %p for page %zu", bus_addr, i);
			continue;
		}
		/* Read without SIGBUS: then its own bytes, never another's. */
		cr_assert_eq(w, stamp(i, 1), "page %zu read wrong", i);
	}
	sigaction(SIGBUS, &old, NULL);
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(sigbus, 0, "no SIGBUS for %zu corrupt blocks", bad);
	cr_assert_gt(st.fill_errors, 0);
	cr_assert_eq(st.last_error, -EBADMSG, "last_error %d", st.last_error);
	lp_vm_destroy(vm);
}

Test(tier, a_codec_this_build_lacks_or_a_bad_share_is_refused)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(FRAMES);
	c.tier = 3;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
	c.tier = LP_TIER_LZ4;
	c.tier_share = 91;
	cr_assert_eq(lp_vm_create(&vm, &c), -EINVAL);
}

Test(tier, pages_written_on_to_an_encrypted_swap_come_back, .timeout = 120)
{
	/* The tier writes its oldest pages on sealed, as the evictor does;
	 * they are opened when read back. */
	struct lp_vm *vm = tier_vm(LP_TIER_LZ4, 10, LP_CFG_ENCRYPT_SWAP);
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (size_t i = 0; i < PAGES; i++)
		fill_z(p, i, 5);
	for (size_t k = 0; k < PAGES; k++) {
		size_t i = (k * 389) % PAGES;
		cr_assert_eq(check_z(p, i, 5), -1, "page %zu", i);
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_gt(st.tier_writebacks, 0);
	cr_assert_gt(st.faults[LP_FAULT_SWAPIN], 0);
	cr_assert_eq(st.io_errors, 0);
	cr_assert_eq(st.last_error, 0);
	lp_vm_destroy(vm);
}

Test(tier, its_share_grows_while_pages_it_wrote_on_are_read_back, .timeout = 120)
{
	/* The share starts at a quarter of the 50 % asked for (8 frames of
	 * 64).  4096 pages that compress ~20x, read at random: the pool is far
	 * too small, pages it wrote on are read back from disk soon after,
	 * and each such read is worth a step more of share. */
	struct lp_vm *vm = tier_vm(LP_TIER_LZ4, 0, 0);
	size_t big = 4096;
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, big * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	struct lp_stats a = stats_of(vm);
	for (size_t i = 0; i < big; i++)
		fill_z(p, i, 1);
	for (int pass = 0; pass < 3; pass++)
		for (size_t k = 0; k < big; k++) {
			size_t i = (k * 389 + (size_t)pass * 7) % big;
			cr_assert_eq(check_z(p, i, 1), -1, "page %zu", i);
		}
	struct lp_stats b = stats_of(vm);
	cr_assert_gt(b.faults[LP_FAULT_SWAPIN], 0);
	cr_assert_gt(b.tier_limit_frames, a.tier_limit_frames,
		     "the share stayed at %lu frames while reads went to disk",
		     (unsigned long)b.tier_limit_frames);
	cr_assert_leq(b.tier_limit_frames, FRAMES / 2);
	cr_assert_leq(b.tier_peak_frames, FRAMES / 2);
	cr_assert_eq(b.io_errors, 0);
	lp_vm_destroy(vm);
}

/* Sequential passes over a region 128 times the budget: a page comes back
 * only after the whole region has gone past, long after the pool would
 * have written it on.  After 16 windows of 2048 offers with nothing back,
 * the pool stops taking pages (but a sample), which go to swap as they
 * are; then a small set of pages used over and over (back within a few
 * dozen evictions) is taken again, and served from the pool. */
Test(tier, pages_that_never_come_back_bypass_it_and_reuse_brings_it_back,
     .timeout = 240)
{
	struct lp_vm *vm = tier_vm(LP_TIER_LZ4, 0, 0);
	size_t big = 8192;
	unsigned char *p;
	cr_assert_eq(lp_map_anon(vm, big * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (uint64_t g = 1; g <= 6; g++)
		for (size_t i = 0; i < big; i++) {
			if (g > 1)
				cr_assert_eq(check_z(p, i, g - 1), -1, "page %zu, pass %lu", i,
					     (unsigned long)g);
			fill_z(p, i, g);
		}
	struct lp_stats a = stats_of(vm);
	cr_assert_gt(a.tier_bypasses, a.swap_outs / 4,
		     "%lu of %lu evictions to swap went past the pool",
		     (unsigned long)a.tier_bypasses, (unsigned long)a.swap_outs);
	cr_assert_lt(a.tier_stores, a.swap_outs * 3 / 4, "%lu stored of %lu",
		     (unsigned long)a.tier_stores, (unsigned long)a.swap_outs);
	/* 96 pages over 64 frames, rewritten in turn: each comes back ~32
	 * evictions after it left. */
	for (uint64_t g = 7; g < 7 + 200; g++)
		for (size_t i = 0; i < 96; i++) {
			cr_assert_eq(check_z(p, i, g - 1), -1, "page %zu, round %lu", i,
				     (unsigned long)g);
			fill_z(p, i, g);
		}
	struct lp_stats b = stats_of(vm);
	cr_assert_gt(b.tier_stores - a.tier_stores, 2000, "%lu stored after the loop",
		     (unsigned long)(b.tier_stores - a.tier_stores));
	cr_assert_gt(b.tier_loads - a.tier_loads, 1000, "%lu read back after the loop",
		     (unsigned long)(b.tier_loads - a.tier_loads));
	for (size_t i = 96; i < big; i++)
		cr_assert_eq(check_z(p, i, 6), -1, "page %zu at the end", i);
	cr_assert_eq(b.io_errors, 0);
	cr_assert_leq(b.peak_frames, FRAMES);
	lp_vm_destroy(vm);
}
