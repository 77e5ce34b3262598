/* SPDX-License-Identifier: MIT */
/*
 * Eviction policies.  One file per policy under policy/, each defining one
 * const struct lp_policy_ops.  The same policy code runs in two drivers
 * ("hosts"): the runtime, where a policy sees faults and the reference bits
 * the runtime emulates by unmapping pages, and the trace simulator
 * (bench/), where every access is visible.
 *
 * Frames are numbered 0..nframes-1; a policy keeps whatever per-frame data
 * it needs in arrays indexed by frame.  The host owns the reference bits:
 * ref[f] is set by the host whenever it observes a use of frame f (the
 * access that brought the page in counts), and a policy clears it through
 * ref_clear(), after which the host arranges to observe the next use.
 * The runtime reports a use through hit() only then, when a cleared bit is
 * set again (a "re-reference fault"); the simulator reports every use and
 * says so in all_uses.  policy/window.h is how a policy copes with the
 * runtime's view.
 *
 * Calls into a policy are serialised by the host (the runtime holds its
 * frame lock); a policy needs no locking of its own and must not block.
 *
 * A policy's state is one struct of ops->size bytes: policy_create()
 * allocates it zeroed and has ops->init() fill it in, policy_destroy()
 * has ops->fini() free what init() allocated and frees the struct.  The
 * optional ops (miss, hit) may be NULL: the host checks before it calls.
 */
#ifndef LP_POLICY_H
#define LP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lp_policy_host {
	uint8_t *ref; /* reference bit per frame, maintained by the host */
	/* Clear ref[f] and observe f's next use.  Returns false (and leaves
	 * the bit set) when the host declines: in the runtime, once the
	 * sampling budget for this eviction is spent. */
	bool (*clear_ref)(struct lp_policy_host *h, uint32_t f);
	void *ctx;
	/* Every use of a resident frame is reported through hit(), whatever
	 * its reference bit (the simulator).  False in the runtime. */
	bool all_uses;
};

static inline bool ref_test(const struct lp_policy_host *h, uint32_t f)
{
	return h->ref[f] != 0;
}

static inline bool ref_clear(struct lp_policy_host *h, uint32_t f)
{
	return h->clear_ref(h, f);
}

struct lp_policy_ops {
	const char *name;
	const char *summary;
	bool uses_ref;  /* reads reference bits (sampling cost in the runtime) */
	bool uses_hits; /* wants every hit: exact only in the simulator */
	size_t size;    /* of the state */
	/* Set up the zeroed state for nframes frames; seed for randomness.
	 * 0 or -errno; fini() is called either way, on what init() left. */
	int (*init)(void *state, uint32_t nframes, struct lp_policy_host *h,
		    uint64_t seed);
	/* Free what init() allocated (the state itself is the host's). */
	void (*fini)(void *state);
	/* Page key (its page number) was brought into frame f: a miss. */
	void (*insert)(void *state, uint32_t f, uint64_t key);
	/* Optional (NULL: a use changes nothing but the reference bit, which
	 * the host sets).  An observed use of resident frame f. */
	void (*hit)(void *state, uint32_t f);
	/* Optional (NULL: not needed).  A miss on key is being served: the
	 * next calls are evict() when no frame is free, then insert() of
	 * key.  Only a host that evicts on demand calls it (the simulator);
	 * the runtime evicts ahead of misses and never does. */
	void (*miss)(void *state, uint64_t key);
	/* Frame f was freed without eviction (unmapped). */
	void (*remove)(void *state, uint32_t f);
	/* Choose a victim among the resident frames and forget it; -ENOENT
	 * when none is resident. */
	int (*evict)(void *state, uint32_t *f);
};

/* NULL-terminated, in the order lp_policy_names() lists them. */
extern const struct lp_policy_ops *const lp_policy_table[];

const struct lp_policy_ops *policy_find(const char *name);

/* A state of ops's policy for nframes frames, in *state: 0, -ENOMEM, or
 * init()'s error (nothing is left allocated then). */
int policy_create(const struct lp_policy_ops *ops, void **state,
		  uint32_t nframes, struct lp_policy_host *h, uint64_t seed);
/* Frees a state of policy_create(); NULL does nothing. */
void policy_destroy(const struct lp_policy_ops *ops, void *state);

#endif /* LP_POLICY_H */
