/* SPDX-License-Identifier: MIT */
/*
 * Swap area: one file of page-sized slots (Pintos' swap disk and its slot
 * bitmap).  The file is always one this process created, 0600, and without
 * a name from the moment it exists (see swap_open); it grows in chunks as slots are needed, up to swap_max.  Slots are
 * reference counted so that address spaces copied at fork can share them.
 * Allocation looks for contiguous runs so that a batch of evictions becomes
 * one sequential write.  All fields are protected by swap.lock, which is
 * taken last (after stripe and frame locks).
 */
#ifndef LP_SWAP_H
#define LP_SWAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "page.h"
#include "store.h"

struct lp_swap {
	atomic_uint users;    /* vms sharing it (fork) */
	int fd;
	bool direct;          /* opened O_DIRECT */
	pthread_mutex_t lock;
	uint64_t nslots;      /* slots the file holds now */
	uint64_t max_slots;   /* 0 = no limit but the filesystem */
	uint64_t cap;         /* slots the tables below can describe */
	uint64_t *used;       /* bitmap: slot allocated */
	uint16_t *refs;       /* references of each allocated slot */
	uint64_t *owner;      /* slot -> page number + 1 (0 = none), for readahead */
	uint64_t hint;        /* next-fit position (a word index) */
	uint64_t next;        /* the slot after the last allocation */
	uint64_t inuse, peak;
	bool cannot_grow;     /* the file failed to grow (retried after 1 s) */
	int grow_error;       /* the error that stopped growth */
	uint64_t grow_fail_ns;
	struct swap_crypt *crypt; /* NULL: pages are stored as they are */
	/* Where the slots' content lives (store.h): the memory stores (the
	 * compressed pool) in front of the file, the last store.  Shared as
	 * the slots are; destroyed with the area. */
	struct lp_chain chain;
	struct lp_store file;     /* the file as a store (its last) */
	/* The file, then a store behind it (swap_spill_to()): slots from
	 * spill_from on (UINT64_MAX until the file is full) are beyond's. */
	struct lp_store *beyond;
	uint64_t spill_from;
	struct lp_store spill;    /* the two as the chain's last store */
};

/*
 * Open the swap area, a new file nothing else can open:
 *   path NULL or "": an unnamed file (O_TMPFILE) in $TMPDIR, else /tmp;
 *   a directory (a symlink to one is followed): an unnamed file in it;
 *   any other path: a file created there new (O_CREAT | O_EXCL |
 *     O_NOFOLLOW, 0600) whose name is removed at once.
 * Where the filesystem has no O_TMPFILE, a fresh random name is created the
 * same exclusive way and removed at once.  An existing file, device node or
 * symlink at path is never opened, changed or removed (-EEXIST), and
 * nothing is left to remove at close, however the process ends.
 * max_bytes 0 = no limit; 1..4095 = -EINVAL.  Errors from creation:
 * -EEXIST, -EACCES, -ENOENT, -EROFS, -ENOTDIR, -ENOSPC, -ENOMEM ...
 */
int swap_open(struct lp_swap **out, const char *path, uint64_t max_bytes);
/* One more vm shares the area. */
struct lp_swap *swap_get(struct lp_swap *sw);
/* Drop a vm's reference; the last one truncates and closes the file. */
void swap_close(struct lp_swap *sw);

/*
 * Allocate up to n slots into slots[], as few contiguous runs as possible,
 * growing the file when needed.  Returns how many were allocated (0..n);
 * fewer than n means the area is full (swap_max reached or the filesystem
 * refused to grow: *err then says why).
 */
unsigned swap_alloc(struct lp_swap *sw, unsigned n, uint64_t *slots, int *err);
/* One more reference to an allocated slot (fork). */
void swap_ref(struct lp_swap *sw, uint64_t slot);
/* Drop a reference; the slot is free when the last goes (unless the pool
 * is writing it back: then swap_release() frees it when the write ends). */
void swap_free(struct lp_swap *sw, uint64_t slot);
/* A slot without references whose pool write-back ended: free it. */
void swap_release(struct lp_swap *sw, uint64_t slot);
/* Record which page a slot holds (readahead), 0 = none. */
void swap_set_owner(struct lp_swap *sw, uint64_t slot, uint64_t vpn);
/* The page a slot holds, or UINT64_MAX; racy hint for readahead. */
uint64_t swap_owner(struct lp_swap *sw, uint64_t slot);

struct swap_crypt;

/*
 * Encryption of swapped pages (swap.c, with libsodium): a key drawn at
 * random for this run and kept in locked memory; each page written is
 * sealed with XChaCha20-Poly1305 under a nonce never used before (a counter)
 * and its slot number as associated data; the counter and the tag stay in
 * memory, so a page read back is authenticated: one altered on disk (or
 * put in another slot) is refused, never returned.
 */
/* -ENOTSUP when built without libsodium. */
int swap_encrypt_enable(struct lp_swap *sw);
static inline bool swap_encrypted(const struct lp_swap *sw)
{
	return sw->crypt != NULL;
}
/* The sealed form of page (LP_PG bytes) for slot into out. */
void swap_seal(struct lp_swap *sw, uint64_t slot, const void *page, void *out);
/* Open the sealed page in buf, in place: 0, or -EBADMSG (altered). */
int swap_unseal(struct lp_swap *sw, uint64_t slot, void *buf);

/*
 * The file first, then beyond (a remote store) once the file is full:
 * swap_max reached, or the filesystem refusing to grow it.  Slots from
 * there on live in beyond, those before in the file, for good; a run of
 * slots never spans both (swap_run_joins()).  beyond is destroyed with
 * the area.
 */
void swap_spill_to(struct lp_swap *sw, struct lp_store *beyond);

/* Whether slot b continues a run that ends at slot a (one write or read
 * of contiguous slots: b = a + 1, on the same store). */
static inline bool swap_run_joins(const struct lp_swap *sw, uint64_t a, uint64_t b)
{
	uint64_t from = __atomic_load_n(&sw->spill_from, __ATOMIC_RELAXED);

	return b == a + 1 && !(a < from && b >= from);
}

/* Whether slots run short: more than half of swap_max in use, or the file
 * could not grow (never with a store beyond the file).  A racy hint: resident pages then give up the swap copies
 * they keep (PGF_MAYBE), as the kernel frees its swap cache when swap is
 * half full. */
static inline bool swap_scarce(const struct lp_swap *sw)
{
	uint64_t max = __atomic_load_n(&sw->max_slots, __ATOMIC_RELAXED);

	if (sw->beyond)
		return false;
	return __atomic_load_n(&sw->cannot_grow, __ATOMIC_RELAXED) ||
	       (max && __atomic_load_n(&sw->inuse, __ATOMIC_RELAXED) * 2 > max);
}

static inline uint64_t swap_off(uint64_t slot)
{
	return slot << LP_PAGE_SHIFT;
}

#endif /* LP_SWAP_H */
