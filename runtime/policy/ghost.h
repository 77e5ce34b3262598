/* SPDX-License-Identifier: MIT */
/*
 * Ghost entries: the keys (page numbers) of pages no longer resident that a
 * policy still remembers.  A fixed pool of cap slots and a chained hash from
 * key to slot; nothing grows after ghost_init().  The order of the entries
 * is the policy's: it links slots into lists over g->l (flist.h), on which
 * a slot must no longer be when it is deleted.
 */
#ifndef LP_GHOST_H
#define LP_GHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "flist.h"

struct ghost {
	struct flinks l;      /* per slot: the policy's lists */
	uint64_t *key;        /* per slot */
	uint32_t *chain;      /* per slot: next in its bucket, or free */
	uint32_t *bucket;     /* first slot per bucket, FL_NIL when empty */
	uint32_t bits;        /* log2 of the bucket count */
	uint32_t cap, used;
	uint32_t free;        /* first free slot */
};

/* Room for cap >= 1 keys.  0 or -ENOMEM; ghost_fini() either way. */
int ghost_init(struct ghost *g, uint32_t cap);
void ghost_fini(struct ghost *g);

/* The slot holding key, or FL_NIL. */
uint32_t ghost_find(const struct ghost *g, uint64_t key);

/* A slot for key, which must not be present; FL_NIL when all are used. */
uint32_t ghost_add(struct ghost *g, uint64_t key);

void ghost_del(struct ghost *g, uint32_t slot);

struct wlinks;

/*
 * What the policies that remember evicted keys keep besides: window links
 * (window.h) over n frames, the key of each frame (*key), and cap ghost
 * entries.  -EINVAL when cap slots cannot be numbered below FL_NIL (nothing
 * allocated), else 0 or -ENOMEM; ghost_frames_fini() either way.
 */
int ghost_frames_init(struct ghost *g, uint64_t cap, struct wlinks *w,
		      uint64_t **key, uint32_t n);
void ghost_frames_fini(struct ghost *g, struct wlinks *w, uint64_t *key);

static inline bool ghost_full(const struct ghost *g)
{
	return g->used == g->cap;
}

#endif /* LP_GHOST_H */
