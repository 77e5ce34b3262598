/* SPDX-License-Identifier: MIT */
/*
 * Trace simulator: replays a trace of page numbers under an eviction policy
 * (runtime/policy.h) with a fixed number of frames, or under Belady's MIN,
 * and counts the misses.  A library for the benchmark and the tests, and
 * the engine of lp-sim.
 *
 * The simulator is a policy host.  With LP_SIM_EXACT it sees every access:
 * it sets the frame's reference bit and calls hit() on each use of a
 * resident page, announces each miss (miss()), calls evict() only when
 * every frame is used, then insert(); clearing a bit always succeeds.
 * With LP_SIM_SAMPLED it behaves as the runtime does: a use is reported
 * only when the frame's bit was cleared (the runtime's re-reference fault);
 * frames are freed ahead, in bursts, when fewer than a low watermark are
 * free, up to a high one (frame.c's reserve); and a policy may clear at
 * most ref_scan bits per frame freed in the burst (the runtime's sampling
 * budget), none outside evict().
 */
#ifndef LP_SIM_H
#define LP_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* A trace ready for replay: its pages numbered densely, each access
 * knowing the next access to the same page. */
struct lp_trace {
	const uint64_t *page; /* the page numbers, not copied */
	uint32_t n;           /* accesses */
	uint32_t npages;      /* distinct pages */
	uint32_t *id;         /* per access: the page's dense number */
	uint32_t *next;       /* per access: the next access to its page, or n */
};

/* Prepare page[0..n).  0, -E2BIG (n >= 2^32 - 1) or -ENOMEM; the trace
 * refers to page until lp_trace_release(). */
int lp_trace_prepare(struct lp_trace *t, const uint64_t *page, size_t n);
void lp_trace_release(struct lp_trace *t);

enum lp_sim_host {
	LP_SIM_EXACT,
	LP_SIM_SAMPLED,
};

struct lp_sim_opts {
	enum lp_sim_host host;
	unsigned ref_scan;    /* LP_SIM_SAMPLED: clears per eviction; 0 = 4 */
	uint64_t seed;        /* for the policy */
	uint8_t *missed;      /* optional, per access: set to 1 on a miss, 0 on a hit */
};

struct lp_sim_result {
	uint64_t accesses;
	uint64_t misses;
	uint64_t hits_seen;   /* hit() calls; sampled: the runtime's minor faults */
	uint64_t clears;      /* reference bits cleared */
	uint64_t declined;    /* clears refused (sampled: budget spent) */
};

/*
 * Replay t under ops with `frames` frames (o NULL: LP_SIM_EXACT, seed 0).
 * At the end the resident frames are evicted one by one, which checks that
 * the policy still knows each of them exactly once.  0, -EINVAL (no frames),
 * -ENOMEM, the policy's create() error, or -EPROTO when the policy broke
 * its contract (evicted a frame not resident, or none while some are, or
 * cleared the reference bit of a frame not resident).
 */
int lp_sim_run(const struct lp_trace *t, const struct lp_policy_ops *ops,
	       uint32_t frames, const struct lp_sim_opts *o,
	       struct lp_sim_result *r);

/* The free frames the runtime keeps, as frames_init() in runtime/frame.c
 * sets them: when a miss finds fewer than low + 1 free, frames are freed
 * up to high. */
void lp_sim_reserve(uint32_t frames, uint32_t *low, uint32_t *high);

/* Belady's MIN: on a miss with every frame used, evict the page whose next
 * use is farthest (never used again counts as farthest).  O(log frames) per
 * access.  missed as in lp_sim_opts.  0, -EINVAL or -ENOMEM. */
int lp_sim_min(const struct lp_trace *t, uint32_t frames, uint8_t *missed,
	       struct lp_sim_result *r);

#endif /* LP_SIM_H */
