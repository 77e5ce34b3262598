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
	/* Called by the main thread once every access thread is created and
	 * waits to start (NULL: none), e.g. to let a parent measure memory
	 * before the run.  Nonzero aborts the run with that value. */
	int (*ready)(void *arg);
	void *ready_arg;
};

struct bench_access_result {
	uint64_t ns;            /* wall time of the accesses, all threads */
	uint64_t bad;           /* content errors seen by the accesses */
};

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
