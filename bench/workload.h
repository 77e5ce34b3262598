/* SPDX-License-Identifier: MIT */
/*
 * Synthetic workloads: seeded, endless streams of page numbers, for the
 * simulator and to drive real memory in the benchmark.  The same name,
 * parameters and seed give the same stream.
 *
 *   seq       a sequential scan, every page used once: 0, 1, 2, ...
 *   loop      0 .. pages-1, over and over
 *   uniform   uniformly random pages among `pages`
 *   zipfA     Zipf popularity with exponent A among `pages` (zipf0.8,
 *             zipf1.0, zipf1.2, or any A > 0), the ranks scattered over
 *             the pages by a random permutation
 *   hotscan   a hot set of `pages` pages used uniformly, 2*pages accesses
 *             at a time, between scans of `pages` pages never used again
 *   shift     phases of 8*pages accesses, uniform over a window of
 *             `pages` pages that moves by pages/2 at each phase
 *
 * A trace file keeps such a stream (lp_trace_save, lp_trace_load).
 */
#ifndef LP_WORKLOAD_H
#define LP_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

struct lp_workload;

struct lp_workload_params {
	uint64_t pages;       /* working set, in pages (>= 1) */
	uint64_t length;      /* accesses, for footprint and trace */
	uint64_t seed;
};

/* NULL-terminated: the names lp-sim runs by default. */
const char *const *lp_workload_names(void);

/* 0, -EINVAL (unknown name, pages 0, pages >= 2^32) or -ENOMEM. */
int lp_workload_create(struct lp_workload **out, const char *name,
		       const struct lp_workload_params *p);
void lp_workload_destroy(struct lp_workload *w);

uint64_t lp_workload_next(struct lp_workload *w);

/* Every page of the first p->length accesses is below this. */
uint64_t lp_workload_footprint(const struct lp_workload *w);

/* The first p->length pages of the stream, in a new array to free(). */
int lp_workload_trace(const char *name, const struct lp_workload_params *p,
		      uint64_t **out);

/* Trace files (lp-sim -t and -o, lp-bench -o): little-endian uint64 page
 * numbers, nothing else.  lp_trace_save writes page[0..n): 0 or -errno
 * (-EIO: a short write).  lp_trace_load reads a whole file into a new array
 * to free(): 0, -errno, -EINVAL (not a whole number of page numbers),
 * -ENOMEM or -EIO (a short read). */
int lp_trace_save(const char *path, const uint64_t *page, size_t n);
int lp_trace_load(const char *path, uint64_t **out, size_t *n);

#endif /* LP_WORKLOAD_H */
