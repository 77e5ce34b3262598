/* SPDX-License-Identifier: MIT */
/*
 * Statistics: counters and fault-latency histograms kept per thread (one
 * block per handler, one for the evictor, one shared by API callers) and
 * summed by lp_stats_get().  Updates are relaxed atomics: exact counts, no
 * ordering, no locks.
 */
#ifndef LP_STATS_H
#define LP_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "lazypage/lazypage.h"

enum lp_counter {
	C_READAHEAD,
	C_EVICT,
	C_CLEAN_DROP,
	C_SWAP_OUT,
	C_FILE_WB,
	C_REF_SWEEP,
	C_SWAP_RB,
	C_SWAP_WB,
	C_FILE_RB,
	C_FILE_WBB,
	C_IO_ERR,
	C_SWAP_FULL,
	C_FILL_ERR,
	C_FRAME_WAIT,
	C_MOVE_FIXUP,
	C_NCOUNTERS
};

/* Log-linear histogram: 16 buckets per power of two from 16 ns to ~1100 s. */
#define HIST_SUB 16u
#define HIST_BUCKETS (16u + 37u * HIST_SUB)

struct lp_tstats {
	atomic_uint_least64_t c[C_NCOUNTERS];
	atomic_uint_least64_t faults[LP_FAULT_KINDS];
	atomic_uint_least64_t lat_sum[LP_FAULT_KINDS];
	atomic_uint_least64_t lat_max[LP_FAULT_KINDS];
	atomic_uint_least64_t hist[LP_FAULT_KINDS][HIST_BUCKETS];
	/* swap-ins: the time of each phase (lp_stats.miss_phase_*) */
	atomic_uint_least64_t phase[LP_PHASES_MAX][HIST_BUCKETS];
};

static inline void st_add(struct lp_tstats *t, enum lp_counter c, uint64_t v)
{
	atomic_fetch_add_explicit(&t->c[c], v, memory_order_relaxed);
}

/* Add what block `from` counted to block `into` (maxima: the larger). */
void st_fold(struct lp_tstats *into, const struct lp_tstats *from);

unsigned hist_bucket(uint64_t ns);
uint64_t hist_value(unsigned bucket);

/* Count one fault of kind served in ns nanoseconds. */
void st_fault(struct lp_tstats *t, enum lp_fault_kind kind, uint64_t ns);

/* Count ns spent in phase of one swap-in. */
static inline void st_phase(struct lp_tstats *t, enum lp_miss_phase phase,
			    uint64_t ns)
{
	atomic_fetch_add_explicit(&t->phase[phase][hist_bucket(ns)], 1,
				  memory_order_relaxed);
}

/* Sum n blocks into st (counters and latency summaries). */
void st_sum(struct lp_tstats *const *blocks, unsigned n, struct lp_stats *st);

#endif /* LP_STATS_H */
