/* SPDX-License-Identifier: MIT */
/*
 * Frame table: the resident budget.  A frame is the right to keep one page
 * in memory; the budget is the number of frames.  A page holds a frame from
 * the moment a handler starts filling it until it is evicted or unmapped,
 * whether it is mapped (RESIDENT) or parked in the frame's kva slot
 * (PARKED).
 *
 * kva: a registered, otherwise untouched anonymous area with one page-sized
 * slot per frame, where the evictor parks a page it unmaps (Pintos' kernel
 * virtual address of a frame).  The runtime reads a kva slot only while it
 * holds content; slots are released (MADV_DONTNEED) by the evictor, in
 * batches, before the slot is used again.
 *
 * The table is an object of its own (struct lp_frames): it knows nothing of
 * the vm that owns it.  What it needs from around it comes in at
 * frames_init() (struct lp_frames_cfg: the stop and freeze flags that end a
 * wait for a frame, the statistics block that counts the waits, the
 * userfaultfd the kva area is registered on), and whoever frees frames (the
 * evictor) installs a wake callback with frames_set_wake(): the table calls
 * it, without its lock, when frames run short.
 *
 * Everything here is protected by frames.lock (taken after a stripe lock,
 * never before one), except the kva slot contents, owned as page.h says.
 */
#ifndef LP_FRAME_H
#define LP_FRAME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "page.h"
#include "policy.h"
#include "stats.h"

enum lp_kva_state {
	KVA_EMPTY,   /* no page behind the slot */
	KVA_FULL,    /* holds the content of the frame's parked page */
	KVA_RELEASE, /* to be released by the evictor before reuse */
};

struct lp_frame {
	struct lp_page *page; /* holder, or NULL when free */
	uint8_t busy;         /* the evictor works on this frame */
	uint8_t kva;          /* enum lp_kva_state */
	uint8_t in_policy;    /* the policy knows it */
};

#define FR_OPEN_MAX 4

struct lp_frames {
	uint32_t n;               /* budget; 0 = unlimited (no table) */
	struct lp_frame *tab;
	uint32_t *free;           /* stack of free frames */
	uint32_t nfree;
	uint32_t low, high;       /* evict when nfree < low, up to high */
	uint8_t *ref;             /* reference bits (policy.h) */
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* a frame was freed / a busy frame let go */
	uint32_t waiting;         /* handlers waiting for a free frame */
	uint64_t rounds_begun;    /* the evictor's choices of victims so far */
	uint64_t rounds_done;     /* of them, the first this many evicted */
	uint32_t awaiting;        /* handlers in frame_await_victims() */
	bool stuck;               /* the evictor cannot make room (swap full);
				   * any frame freed ends it (push_free) */
	/* Threads of the program whose faults may go beyond the budget
	 * meanwhile (frames_open()), with counts; open_any: opened with the
	 * table full, for every fault. */
	struct { pid_t tid; uint32_t n; } open[FR_OPEN_MAX];
	uint32_t open_any;
	const struct lp_policy_ops *pops;
	void *pol;
	struct lp_policy_host host;
	uint32_t *parkq;          /* frames whose reference bit was cleared */
	uint32_t nparkq;
	uint32_t sweep_left;      /* clears the policy may still make */
	uint32_t *relq;           /* kva slots to release */
	uint32_t nrelq;
	uintptr_t kva;            /* base of the kva area */
	uint64_t used, peak;      /* frames held (+ frameless overflow pages) */
	uint32_t *held;           /* frames kept out of use: the compressed
				   * pool's pages count inside the budget */
	uint32_t nheld;
	uint32_t nheld_counted;   /* of them, counted in used (the tier's) */
	struct frame_share *share; /* a budget shared with other tables, or NULL */
	_Atomic uint64_t *share_mine; /* our part of share->used (beside it) */
	uint64_t share_floor;     /* our use below which share never stops us */
	uint64_t last_take_ns;    /* when a fault last took a frame (idle:
				   * FR_IDLE_MS ago, frames_excess()) */
	uint64_t overflow;        /* resident pages without a frame (swap full) */
	uint64_t *ovq;            /* page numbers of overflow pages, to adopt */
	uint32_t nov, capov;
	/* From the owner, at frames_init() (struct lp_frames_cfg). */
	int uffd;
	const atomic_bool *stopping, *freezing;
	struct lp_tstats *st;
	/* frames_set_wake(): asks for frames to be freed; NULL: nobody to
	 * ask.  Called without the lock. */
	void (*wake)(void *ctx);
	void *wake_ctx;
	struct lp_frames *reg_next; /* this process's tables with a wake */
};

/*
 * A budget several frame tables (in several processes: vmrun's tree) draw
 * on, in shared memory: used is the sum of their frames in use (counted as
 * each table's used), peak its largest value.  A table whose own use is at
 * least floor gets no frame while the sum is at cap: its faults wait for
 * its evictor, as when its own table is full.
 */
struct frame_share {
	_Atomic uint64_t used, peak;
	uint64_t cap;
	/* Tables drawing on it, and their faults waiting for room while
	 * their table holds less than its fair part (cap / members): tables
	 * beyond theirs then give frames up (frames_excess()).  waiters:
	 * all faults waiting for room (idle tables give way to them). */
	_Atomic uint32_t members, short_waiters, waiters;
};

/* What the owner of a frame table tells frames_init().  With n == 0 only
 * the accounting of frame_get()/frame_put() is used: the rest may be 0. */
struct lp_frames_cfg {
	uint32_t n;                  /* budget in frames; 0: unlimited */
	const char *policy;          /* its name; NULL: "clock" */
	uint64_t seed;               /* the policy's randomness */
	uint32_t ra_max;             /* largest readahead window, in frames:
				      * two of them are kept free */
	int uffd;                    /* the kva area is registered on it;
				      * -1: plain memory (a child vm) */
	const atomic_bool *stopping; /* set: a wait ends, -ESHUTDOWN */
	const atomic_bool *freezing; /* set: a wait ends, -EAGAIN */
	struct lp_tstats *st;        /* counts C_FRAME_WAIT */
};

/* 0, -ENOENT (no such policy), -ENOMEM, or the registration's error;
 * frames_fini() either way (the lock and condition exist from the start). */
int frames_init(struct lp_frames *fr, const struct lp_frames_cfg *cfg);
void frames_fini(struct lp_frames *fr);
/* Install (or, wake NULL, remove) the callback that asks for frames to be
 * freed: when a frame_get() is about to wait, when free frames fall under
 * the low watermark, and when a frame becomes a candidate while a fault
 * waits.  wake(ctx) must not block; it is called without fr->lock. */
void frames_set_wake(struct lp_frames *fr, void (*wake)(void *ctx),
		     void *ctx);

static inline uintptr_t kva_of(const struct lp_frames *fr, uint32_t f)
{
	return fr->kva + ((uintptr_t)f << LP_PAGE_SHIFT);
}

/*
 * Take a free frame for a page about to be filled, waiting for the evictor
 * (the wake callback) when none is free.  *f = LP_NO_FRAME with return 0
 * when the budget is unlimited, or when the evictor cannot make room (swap
 * full, fr->stuck): the page is then kept without a frame and counted as
 * overflow.  A wait ends with -ESHUTDOWN once *stopping is set, -EAGAIN
 * once *freezing is set; the owner broadcasts fr->cond after setting them.
 */
int frame_get(struct lp_frames *fr, uint32_t *f, uint64_t *ticket);
/* A free frame without waiting, for readahead: only while another one stays
 * free for a fault and nobody waits.  0 or -EAGAIN.  For both, *ticket
 * (unless NULL) tells frame_await_victims() which round to wait for. */
int frame_try_get(struct lp_frames *fr, uint32_t *f, uint64_t *ticket);
/* After taking a frame that left fewer than the low watermark free (a
 * ticket from frame_get()/frame_try_get(); 0: nothing to wait for), wait
 * until the evictor has chosen the victims that refill the reserve and
 * evicted them, no write left in flight (LP_CFG_SYNC_EVICT): victims are
 * then chosen at the same point of the program's accesses on every run,
 * whatever the disk's speed.  Bounded (1 s), and ends early when stopping
 * or freezing. */
void frame_await_victims(struct lp_frames *fr, uint64_t ticket);
/* The evictor, under fr->lock, as it chooses victims (or sees no need):
 * the round's ticket, for frame_round_done() once no write of it (nor of
 * an earlier round) is in flight. */
uint64_t frame_round_begin(struct lp_frames *fr);
void frame_round_done(struct lp_frames *fr, uint64_t ticket);
/* Keep want frames out of use (the compressed pool holds that many pages
 * of memory; a shared budget lends us fewer), taking free ones or giving
 * back: returns how many are kept, fewer than want while too few are free
 * (the evictor frees more, as for any shortage).  The first counted of
 * them are counted in used and peak (memory the pool holds), the rest not
 * (frames we may not use). */
uint32_t frames_hold(struct lp_frames *fr, uint32_t want, uint32_t counted);
/* Draw on share (NULL: stop; our use leaves its sum), never beyond it
 * while our use is floor or more (frames_share_floor).  *mine (in the
 * share's memory) follows our part of its sum, so that a member that died
 * without leaving can be taken out of it (frame_share_drop). */
void frames_share(struct lp_frames *fr, struct frame_share *share,
		  _Atomic uint64_t *mine);
/* A member of share died (its process was killed) holding frames: its
 * part (*mine, which it no longer changes) leaves the sum.  Once. */
void frame_share_drop(struct frame_share *share, _Atomic uint64_t *mine);
void frames_share_floor(struct lp_frames *fr, uint64_t floor);
/* The frames we may count on now: our budget, or, drawing on a share,
 * our use and what the share has left (at most our budget). */
uint64_t frames_lent(struct lp_frames *fr);
/* How many more frames we may count now: within our budget and within
 * what the share has left. */
uint64_t frames_room(struct lp_frames *fr);
/* Under fr->lock: what the share has left (UINT64_MAX without one). */
uint64_t frames_share_room(const struct lp_frames *fr);
/* Wait, as frame_get() does, while the shared budget is spent and we use
 * our floor or more, for our evictor to make room; without taking a frame
 * (a forked child about to write a page it shares with its parent: the
 * kernel's copy is new memory). */
void frames_wait_room(struct lp_frames *fr);
/* While open for thread tid of the program (calls with true outnumber
 * those with false), the faults of that thread (frames_serving()) take no
 * frame and never wait for one: the page is kept beyond the budget (as
 * when stuck), to be adopted later.  For whoever waits for that thread to
 * do something that a fault of its own waiting for a frame may stand in
 * the way of: the evictor waiting for a forked child's thread to stop and
 * drop pages (evict.c).  Other threads' faults wait as ever: only the
 * thread waited for may pass the budget, and only meanwhile. */
void frames_open(struct lp_frames *fr, pid_t tid, bool open);
/* The calling thread of ours serves a fault of the program's thread tid
 * (0: none), until called again: frames_open() lets it through. */
void frames_serving(pid_t tid);
/* The thread named by the calling thread's last frames_serving(). */
pid_t frames_served(void);
/* While on (calls with true outnumber those with false), the calling
 * thread's own frame_get() calls go beyond the budget rather than wait:
 * for takes on behalf of a thread that waits for us and so cannot let
 * pages go meanwhile (a forked child's mremap, mmap.c). */
void frames_beyond(bool on);
/* What our table should give up now, as far as our use above our floor
 * can make up for it (0: nothing, or no share): with beyond_cap, how far
 * the share's sum is beyond its cap (a forked child's part: what it
 * inherited counts at once); while a member below its fair part waits for
 * room, what we hold beyond ours; and while any member waits for room and
 * no fault of ours took a frame for FR_IDLE_MS, all but a quarter of our
 * floor. */
uint64_t frames_excess(struct lp_frames *fr, bool beyond_cap);
/* Give back a frame taken by frame_get() and never installed. */
void frame_put(struct lp_frames *fr, uint32_t f);
/* Under pg's stripe lock: pg now holds frame f and is resident: tell the
 * policy (a miss). */
void frame_install(struct lp_frames *fr, uint32_t f, struct lp_page *pg);
/* Under pg's stripe lock: an observed re-use of pg's frame (a hit). */
void frame_touch(struct lp_frames *fr, uint32_t f);
/*
 * Under pg's stripe lock: pg lets go of frame f (unmapped or evicted).
 * When the frame's kva slot holds content it is queued for release.  If the
 * evictor is busy with f, the frame is freed when it lets go (frame_idle).
 * Never waits.
 */
void frame_release(struct lp_frames *fr, uint32_t f);
/* The evictor lets go of busy frame f: back to the policy when a page still
 * holds it, to the free list when it was released meanwhile. */
void frame_idle(struct lp_frames *fr, uint32_t f);
/* Under the page's stripe lock: the kva slot of f no longer holds needed
 * content; the evictor releases it. */
void frame_kva_release(struct lp_frames *fr, uint32_t f);
/* Under the page's stripe lock: frame f now belongs to page struct pg (the
 * page moved: mremap). */
void frame_set_page(struct lp_frames *fr, uint32_t f, struct lp_page *pg);
/* Count a frameless resident page in or out. */
void frame_overflow(struct lp_frames *fr, int delta);
/* Under pg's stripe lock: page vpn came in without a frame (frame_get gave
 * LP_NO_FRAME under a budget): remember it, to adopt it later. */
void frame_overflow_note(struct lp_frames *fr, uint64_t vpn);
/* Page number of a frameless page to adopt, while frames are free again
 * (nfree >= low, nobody waits): 0 or -EAGAIN. */
int frame_overflow_next(struct lp_frames *fr, uint64_t *vpn);
/* Under pg's stripe lock: frameless resident pg takes a free frame and
 * joins the policy (the budget holds again).  0 or -EAGAIN (none free). */
int frame_adopt(struct lp_frames *fr, struct lp_page *pg);
/* Whether the evictor has overflow pages to adopt. */
bool frame_overflow_pending(struct lp_frames *fr);

#endif /* LP_FRAME_H */
