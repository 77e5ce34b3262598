/* SPDX-License-Identifier: MIT */
/*
 * struct lp_page: one page of a managed region (Pintos' struct page).
 *
 * Life cycle (every change goes through page_set_state(), which checks it
 * against the table in pagelife.c):
 *
 *   UNINIT ──fault──> LOADING ──> RESIDENT ──evict──> PARKING ──> PARKED
 *                        ^            ^  │                          │  │
 *                        │            │  └─sync─> SYNCING ──┘       │  │
 *   EVICTED <────────────┴── fault    └──── RESTORING <──fault──────┘  │
 *      ^                                                               │
 *      └─────────────── dropped / written out ─────────────────────────┘
 *
 *   Any state except the owned ones ends in DEAD when the page is unmapped
 *   (page_remove(), pagelife.h).
 *
 * Ownership.  LOADING and RESTORING are owned by the fault handler that set
 * them, PARKING by the evictor, SYNCING by the lp_sync() caller.  Only the
 * owner may touch the page's address or its kva slot, and only the owner
 * moves the page out of an owned state.  Others who need the page set
 * PGF_WAITERS and return; the owner wakes them (UFFDIO_WAKE for faulting
 * threads, the stripe condition variable for lp_unmap()/lp_sync()).
 *
 * Every field is protected by the page's stripe lock (spt.h), except vpn,
 * which changes only when mremap moves the page (spt_move(), the vm
 * frozen) and is otherwise read without a lock.
 */
#ifndef LP_PAGE_H
#define LP_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The page, spelled one way in the runtime: LP_PG bytes (the public
 * header's LP_PAGE_SIZE), page number = address >> LP_PAGE_SHIFT. */
#define LP_PAGE_SHIFT 12
#define LP_PG ((size_t)1 << LP_PAGE_SHIFT)

struct lp_vm;
struct lp_page;
struct lp_handler;

enum lp_page_state {
	PG_UNINIT,    /* never filled; the region says how to create it */
	PG_EVICTED,   /* not resident; content is in its backing */
	PG_LOADING,   /* owned by a handler filling it */
	PG_RESIDENT,  /* mapped in the process, holds a frame */
	PG_PARKING,   /* owned by the evictor: moving into its kva slot */
	PG_PARKED,    /* unmapped, content in the kva slot of its frame */
	PG_RESTORING, /* owned by a handler mapping it back from kva */
	PG_SYNCING,   /* owned by lp_sync(): written back while write-protected */
	PG_DEAD,      /* unmapped; freed by whoever lets go of it last */
	PG_NSTATES
};

enum lp_page_type { LP_PT_UNINIT, LP_PT_ANON, LP_PT_FILE };

/* Where the content lives when the page is not resident (or, for a clean
 * resident page, the copy that lets it be dropped without I/O). */
enum lp_backing {
	BK_NONE,   /* UNINIT: nothing yet */
	BK_ZERO,   /* all zero */
	BK_SLOT,   /* page->slot of the swap file */
	BK_FILE,   /* its offset in the region's file */
	BK_REFILL, /* the region's deterministic initializer */
};

#define PGF_WP 0x01        /* installed write-protected: a write faults to us */
#define PGF_DIRTY 0x02     /* content differs from the backing copy */
#define PGF_WAITERS 0x04   /* someone waits for the owner to let go */
#define PGF_WASDIRTY 0x08  /* dirty during its last residency: map writable */
#define PGF_IO 0x10        /* the evictor writes its kva slot right now */
#define PGF_POISONED 0x20  /* content could not be produced (SIGBUS) */
/* Mapped writable on a prediction (it was written during its last
 * residency) while its swap slot still holds the content it came in with,
 * whose digest is in sum: at eviction the digest of what it holds then
 * says whether it was written (dirty: rewrite) or not (clean: drop, the
 * slot is still good).  No write fault is taken to find out. */
#define PGF_MAYBE 0x40
#define PGF_PINNED 0x80    /* kept resident and writable: never a victim (vm_pin) */
/* A forked child's page resident as it inherited it, frameless: the same
 * memory as its parent's copy (copied on write by the kernel), so not
 * counted in the budget (a cgroup counts such a page once) until the child
 * writes it (service_wp()) or its evictor takes it into a frame
 * (frame_adopt()).  Write-protected at the fork to see that write. */
#define PGF_SHARED_IN 0x100 /* (bits 9..15: verify.h) */

#define LP_NO_FRAME UINT32_MAX
#define LP_NO_SLOT UINT64_MAX

/* What a fill produced (swap_in's result, applied by the caller under the
 * stripe lock when the page becomes resident). */
struct lp_fill {
	int kind;                      /* enum lp_fault_kind served */
	const struct lp_page_ops *ops; /* the page's type from now on */
	uint8_t backing;               /* enum lp_backing from now on */
	bool clean;                    /* content equals the backing copy */
};

/*
 * Page operations, one const table per type (uninit.c, anon.c, file.c).
 *
 * swap_in: produce the page's content for a fault into buf (LP_PG bytes,
 *   zeroed) and say what it is in *out.  Context: a handler thread that owns
 *   the page (LOADING); no lock held; r is referenced.  Returns 0, or -errno:
 *   the faulting thread then gets SIGBUS.  An uninit page transmutes here
 *   (out->ops).
 * swap_out: where a dirty page goes when it leaves memory: 0 = a swap slot;
 *   1 = its file, at *off for *len bytes (*len 0: the page lies wholly past
 *   the end of the file and has nothing to write).  Context: the evictor or
 *   lp_sync() owning the page.  NULL for a type whose pages are never in
 *   memory (uninit: a page transmutes as it is filled).
 * destroy: release what the page holds outside memory (its swap slot).
 *   Context: the page is being unmapped, nobody owns it.  NULL when the type
 *   holds nothing: call it through page_drop_backing().
 *
 * The types stand in layers: backing.c reads content (swap, file,
 * initializer); anon.c and file.c read through it; uninit.c becomes one of
 * them.
 */
struct lp_region;
struct lp_page_ops {
	enum lp_page_type type;
	int (*swap_in)(struct lp_handler *h, const struct lp_page *pg,
		       struct lp_region *r, void *buf, struct lp_fill *out);
	int (*swap_out)(const struct lp_page *pg, struct lp_region *r,
			uint64_t *off, uint32_t *len);
	void (*destroy)(struct lp_vm *vm, struct lp_page *pg);
};

extern const struct lp_page_ops lp_uninit_ops;
extern const struct lp_page_ops lp_anon_ops;
extern const struct lp_page_ops lp_file_ops;

struct lp_page {
	uint64_t vpn;                  /* address >> LP_PAGE_SHIFT; changed by spt_move() */
	struct lp_page *next;          /* hash chain (spt.c) */
	const struct lp_page_ops *ops; /* current type */
	uint8_t state;                 /* enum lp_page_state */
	uint8_t backing;               /* enum lp_backing */
	uint16_t flags;                /* PGF_* */
	uint32_t frame;                /* while it holds a frame, else LP_NO_FRAME */
	uint64_t slot;                 /* BK_SLOT: swap slot, else LP_NO_SLOT */
	uint64_t sum[2];               /* PGF_MAYBE: digest of the slot's content */
};

static inline uintptr_t page_addr(const struct lp_page *pg)
{
	return (uintptr_t)pg->vpn << LP_PAGE_SHIFT;
}

/* Release what pg holds outside memory (its type's destroy, if any). */
static inline void page_drop_backing(struct lp_vm *vm, struct lp_page *pg)
{
	if (pg->ops->destroy)
		pg->ops->destroy(vm, pg);
}

static inline bool page_owned(const struct lp_page *pg)
{
	return pg->state == PG_LOADING || pg->state == PG_PARKING ||
	       pg->state == PG_RESTORING || pg->state == PG_SYNCING;
}

static inline const char *page_state_name(enum lp_page_state s)
{
	static const char *const names[PG_NSTATES] = {
		"uninit", "evicted", "loading", "resident", "parking",
		"parked", "restoring", "syncing", "dead",
	};
	return s < PG_NSTATES ? names[s] : "?";
}

#endif /* LP_PAGE_H */
