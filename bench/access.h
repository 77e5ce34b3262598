/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's access loop: touches real memory, one page per access of
 * a trace, the same way for every memory under test (a lazypage region,
 * plain anonymous memory paged by the kernel, the bare userfaultfd floor),
 * so that their times compare.
 *
 * An access to page p reads the page's first word, which holds a signature
 * of p once the page was first touched; the first touch writes it (so every
 * page is dirty once and its first eviction writes it out).  In rmw mode
 * every access also increments the page's second word.  With threads > 1,
 * thread k makes accesses k, k + threads, k + 2 * threads, ... of the one
 * trace: the threads go through the sequence together, in roughly its
 * order, and the misses stay comparable with the simulator's.
 */
#ifndef LP_BENCH_ACCESS_H
#define LP_BENCH_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#define BENCH_PG 4096u
#define BENCH_MAX_THREADS 64

struct bench_access {
	char *base;             /* the memory: npages pages */
	uint64_t npages;
	const uint32_t *trace;  /* page index per access, each < npages */
	uint64_t n;             /* accesses */
	unsigned threads;       /* 1 .. BENCH_MAX_THREADS */
	bool rmw;               /* read-modify-write every access */
	/* Content must survive (false for the floor, whose evicted pages
	 * come back as zeros): a touched page that reads back as zeros, or
	 * with another page's signature, is counted in bad. */
	bool keep;
	uint8_t *seen;          /* npages bytes, zeroed: signature written */
	/* Content of a page beyond its two words: 0, zeros (compresses ~60x);
	 * r >= 1, its first PG / r bytes random (seeded by the page), the
	 * rest zeros: compresses about r to 1 (lp-bench -c). */
	unsigned ratio;
	/* Called by the main thread once every access thread is created and
	 * waits to start (NULL: none), e.g. to let a parent measure memory
	 * before the run.  Nonzero aborts the run with that value. */
	int (*ready)(void *arg);
	void *ready_arg;
};

/*
 * What each access took, as the program sees it: the time from the end of
 * the previous access of the same thread to the end of this one (one clock
 * read per access: the TSC on x86-64, calibrated against CLOCK_MONOTONIC
 * over the run; CLOCK_MONOTONIC elsewhere).  A hit costs the loop's few
 * nanoseconds; a fault costs its whole round trip: the kernel's delivery,
 * the service, the wake-up.  Log-linear buckets: exact below
 * BENCH_LAT_SUB ticks, then BENCH_LAT_SUB per power of two (12 % wide).
 * first[] counts first touches (every one a zero-fill fault, for the
 * kernel as for lazypage), again[] every later access (hits, swap-ins,
 * minor faults).
 */
#define BENCH_LAT_SUB 8
#define BENCH_LAT_BUCKETS (64 * BENCH_LAT_SUB)

struct bench_lat {
	double ns_per_tick;
	uint64_t first[BENCH_LAT_BUCKETS];
	uint64_t again[BENCH_LAT_BUCKETS];
};

struct bench_access_result {
	uint64_t ns;            /* wall time of the accesses, all threads */
	uint64_t bad;           /* content errors seen by the accesses */
	struct bench_lat lat;   /* per-access latency, all threads */
};

/* The q-quantile (0..1) in ns of the `top` largest values of histogram h
 * (top 0 or above the total: of all of them); 0 when empty. */
double bench_lat_quantile(const uint64_t h[BENCH_LAT_BUCKETS],
			  double ns_per_tick, uint64_t top, double q);

/* Values of h at or above ns. */
uint64_t bench_lat_above(const uint64_t h[BENCH_LAT_BUCKETS],
			 double ns_per_tick, double ns);

/* Run the accesses.  0, or -errno when threads cannot be created, or the
 * ready callback's value. */
int bench_access_run(const struct bench_access *a,
		     struct bench_access_result *r);

/* After a run: check the signatures of touched pages and, in rmw mode,
 * that the increments add up to n.  rmw mode reads every page (faults on
 * them); read mode, whose accesses checked every page they touched, reads
 * 256 pages spread over the region: enough to see pages lost on swap that
 * the run never read back, without paging the whole region in again.
 * Returns the number of errors. */
uint64_t bench_access_verify(const struct bench_access *a);

#endif /* LP_BENCH_ACCESS_H */
