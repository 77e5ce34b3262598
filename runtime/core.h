/* SPDX-License-Identifier: MIT */
/*
 * struct lp_vm: the state of one managed address space (Pintos' supplemental
 * page table owner plus everything around it), shared by the modules that
 * serve it.  This header holds data, and three one-line helpers (vm_error,
 * vm_foreign, vm_alive): each module's functions are declared in its own
 * header (fault.h, evict.h, vm.h, fork.h, ...), so that a module includes
 * the headers of the modules it stands on and no others.
 * No globals: every function reaches the state through its vm.
 *
 * Lock order (outer first; never take an earlier one while holding a later):
 *
 *   vm->map_lock (rwlock: the region table)
 *     -> SPT stripe lock (the pages of the stripe)
 *       -> vm->fr.lock (frame table, policy)
 *         -> vm->swap->lock (slot allocator)
 *
 * No lock is held across I/O or across waiting for another thread, with one
 * exception: a fault handler holds a page's stripe lock across the single
 * UFFDIO_WRITEPROTECT that unprotects it (so that the evictor never parks a
 * page whose protection is changing).  Page ownership (page.h) is what spans
 * I/O.
 *
 * Threads: `threads` fault handlers (fault.c) reading the userfaultfd, and
 * one evictor (evict.c) that keeps free frames between two watermarks.
 * Both block every signal, never touch the caller's file descriptors and
 * allocate only in the slow paths.
 */
#ifndef LP_CORE_H
#define LP_CORE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "lazypage/lazypage.h"
#include "compat.h"
#include "frame.h"
#include "inject.h"
#include "io.h"
#include "page.h"
#include "prim.h"
#include "region.h"
#include "spt.h"
#include "stats.h"
#include "swap.h"

/* Largest readahead window, in pages (also the handler's buffer size): a
 * sequential stream reads 1 MiB at a time.  A window takes only frames
 * that are free (frame_try_get()): the evictor keeps two windows of
 * LP_RA_FREE free, not of LP_RA_MAX, so that the budget's resident set is
 * not cut for windows that random access never opens. */
#define LP_RA_MAX 256u
#define LP_RA_FREE 32u
/* Largest zero fill-around window, with no budget (what transparent huge
 * pages give a heap growing natively: a first touch maps up to 1 MiB). */
#define LP_ZA_MAX 256u

/* Swap-ins a handler keeps in flight at once (fault.c). */
#define LP_INFLIGHT 32

struct lp_region;
struct lp_page;
struct lp_verify;
/* A load: a page (LOADING) being filled for a fault (fault.c). */
struct load {
	struct lp_region *r;
	struct lp_page *pg;        /* LOADING, the handler's */
	uint32_t f;                /* its frame */
	bool write, wasdirty;
	pid_t tid;
	uint64_t t0, t_sub, t_comp; /* fault read; read submitted; read done */
};

/* A swap-in in flight: page pg (LOADING, the handler's) waits for the read
 * of its slot into the handler's abuf (fault.c). */
struct lp_pending {
	struct lp_io_req req;      /* the read; req.owner is this */
	struct load ld;            /* the page, its frame, its fault (fault.c);
				    * ld.r is referenced */
	uint64_t slot;
};

struct lp_handler {
	struct lp_vm *vm;
	pthread_t tid;
	pid_t ktid;                /* kernel thread id */
	int cpu;                   /* pinned to it, or -1 */
	int kick_fd;               /* eventfd: poll the userfaultfd again
				    * (solo serving ended), or -1 */
	atomic_uint_least64_t nread; /* faults read (for tests) */
	bool started;
	struct lp_io io;           /* reads of swap and files */
	unsigned char *buf;        /* LP_RA_MAX pages, page aligned */
	struct lp_tstats st;
	/* faults whose fill met -EAGAIN (the mm was changing): retried */
	uintptr_t retry[64];
	uint8_t retry_write[64];
	pid_t retry_tid[64];       /* the faulting thread (frames_serving()) */
	unsigned nretry;
	/* pages answered with SIGBUS (UFFDIO_POISON), oldest first: their
	 * marker is cleared after LP_POISON_MS so that a later touch reads
	 * them again (fault.c) */
	uintptr_t poisoned[16];
	uint64_t poisoned_ns[16];
	unsigned npoisoned;
	/* Swap-ins in flight (a handler thread of its own vm: async).  While
	 * any is, the handler holds a read reference of vm->freeze_lock, so
	 * that a freeze waits for them to end. */
	bool async;
	struct lp_io aio;          /* their reads */
	unsigned char *abuf;       /* LP_INFLIGHT pages, page aligned */
	struct lp_pending *pend;   /* LP_INFLIGHT entries */
	unsigned freep[LP_INFLIGHT]; /* free entries */
	unsigned nfreep;
};

struct ev_item;

/* Why a round freed nothing while faults waited (lp_evictor.last_why). */
enum {
	EVW_NONE,
	EVW_NO_VICTIM,   /* the policy had no frame: all held by handlers
			  * loading pages, or by writes in flight */
	EVW_OWNED,       /* every victim's page was owned (a handler
			  * restoring it, lp_sync(), an unmap) */
	EVW_PARK_FAILED, /* victims could not be parked or evicted */
};

struct lp_evictor {
	pthread_t tid;
	_Atomic pid_t ktid;
	bool started;
	int wake_fd;               /* eventfd: frames are short, or stop */
	atomic_bool kicked;
	struct lp_io io;
	struct lp_io_req poll;     /* the wait on wake_fd, through the ring */
	unsigned pending;          /* victims whose write is in flight */
	unsigned tier_wb;          /* pool pages being written on to swap */
	atomic_uint ext_hold;      /* frames its owner keeps out of use
				    * (evict_set_hold: a budget shared with
				    * other vms) */
	bool hold_short;           /* fewer held than wanted: evict on */
	bool failing;              /* writes keep failing: retry slowly */
	unsigned fail_streak;      /* writes failed since one succeeded */
	uint64_t last_ok_ns;       /* when a write last succeeded */
	/* Rounds, and rounds that freed nothing while faults waited for a
	 * frame ("barren"), with the reason of the last one (EVW_*). */
	atomic_ulong rounds, barren;
	bool waited;               /* this round: faults waited */
	uint64_t ticket;           /* this round's (frame_round_begin()) */
	int why, last_why;
	struct ev_item *items;     /* scratch for one round */
	struct iovec *iov;         /* scratch for zaps */
	uintptr_t runs;            /* where runs of pages are moved out
				    * (EV_BATCH + EV_PARKS pages, registered),
				    * or 0 */
	size_t runs_len;
	bool pinned;               /* the mm has long-term pins: every page
				    * leaves by UFFDIO_MOVE (evict.c) */
	uint64_t pinned_ns;        /* when that was last looked at */
	uint64_t excess;           /* a child vm, this round: frames_excess() */
	struct lp_io_req kid_poll; /* a child vm: its process's pidfd, polled */
	bool kid_polled;
	uint64_t kid_miss_ns;      /* a child vm: out of reach since, or 0 */
	struct lp_tstats st;
};

/*
 * A forked child's mmap handed over (fork.c, vm_child_hand_over()): the
 * host could not hold the calling thread as the call returns because the
 * child vm's evictor traces it, and so stops it there first.  word is
 * tid << 2 | HAND_*; len the call's length, ret what it returned.
 */
enum { HAND_NONE, HAND_POSTED, HAND_TAKEN, HAND_DONE };
struct lp_handoff {
	_Atomic int64_t word;
	size_t len;
	long ret;
};

/* vm flags (internal: vm_create(), struct vm_spec) */
#define VMF_FORK 0x1u /* serve forked children: EVENT_FORK, regions inherited */

struct lp_vm {
	/* configuration (copied) */
	unsigned vmflags;          /* VMF_* */
	pid_t owner;               /* the process that created it (getpid) */
	uint64_t swap_max;
	unsigned nthreads;
	unsigned flags;            /* LP_CFG_* */
	unsigned ref_scan;
	char *policy_name;
	char *swap_path;

	/* kernel */
	int uffd;
	int pidfd;                 /* ours, for batched zaps; -1 without */
	int stop_fd;               /* eventfd: handlers stop */
	uint64_t features;         /* UFFD_FEATURE_* negotiated */
	bool have_move, have_poison;
	atomic_bool wipe_seen;     /* the program asked MADV_WIPEONFORK (fork.c) */
	/* mremap (mmap.c): a move keeps its registration and sends an
	 * UFFD_EVENT_REMAP, which the mover waits for us to read (a read
	 * ends the wait: the event may be handled after the mover went on).
	 * remaps_own: our vm_mremap() makes every move of this vm (vmrun's
	 * program: its memory calls come to us), so no event is news;
	 * remaps: a forked child's moves about to happen (their lengths),
	 * under defer_lock; those whose table moves with them (table: the
	 * host holds the mover, vm_child_mremap_prep()) number table_moves,
	 * and their pages are no victims until the move's event.  grown:
	 * the last region was grown in place ahead of the kernel. */
	atomic_bool remaps_own;
	atomic_bool lock_future;   /* mlockall(MCL_FUTURE): new regions are
				    * unlocked (vm_mlockall()) */
	struct lp_remap_note {
		uintptr_t old;
		size_t oldlen, newlen;
		bool table, grown;
	} remaps[8];
	unsigned nremaps;
	atomic_uint table_moves;

	pthread_rwlock_t map_lock;
	struct lp_regions regions;

	struct lp_spt spt;
	struct lp_frames fr;
	struct lp_swap *swap;
	struct lp_verify *vf;      /* verify mode (verify.h), else NULL */

	struct lp_handler *h;
	unsigned nh;
	/* Solo serving (fault.c): while one thread faults, only the handler
	 * of its CPU polls the userfaultfd (solo, its index; -1: all do).
	 * solo_tid faulted solo_run times in a row; solo_ok: handlers are
	 * pinned, one per CPU; solo_ends counts the ends (for tests). */
	bool solo_ok;
	atomic_int solo;
	atomic_int solo_tid;
	atomic_uint solo_run;
	atomic_uint solo_ends;
	pthread_mutex_t solo_lock; /* the one looking: */
	int solo_fd;               /* /proc/solo_tid/stat, or -1 */
	pid_t solo_fd_tid;
	struct lp_evictor ev;
	struct lp_tstats kids_st;  /* what its child vms counted, as each ended */
	/* Set on a vm that serves forks by its owner (the host): told of
	 * each descendant child vm that ends, with its process's pid and
	 * what that process alone counted (a line of its own in the tree's
	 * statistics), by the thread that frees it; pid 0: its process was
	 * never named (its figures count all the same).  NULL: nobody asks. */
	void (*kid_ended)(void *ctx, pid_t pid, const struct lp_stats *own);
	void *kid_ended_ctx;

	/* API callers (lp_sync, lp_unmap, destroy): one ring, one lock */
	pthread_mutex_t api_lock;
	struct lp_io api_io;
	struct lp_tstats api_st;

	/* fork (fork.c): a child vm serves the copy of this address space that
	 * fork() gave a child process; it shares the swap file.  fork_event
	 * (VMF_FORK) serves a UFFD_EVENT_FORK, the new address space's
	 * userfaultfd taken: set by whoever creates the vm (to fork.c's
	 * vm_fork_event), called by a fault handler, which knows no fork.c */
	void (*fork_event)(struct lp_vm *vm, int ufd);
	struct lp_vm *parent;      /* set in a child vm */
	pid_t pid;                 /* a child vm: its process, once known */
	uintptr_t probe;           /* VMF_FORK: a registered page, for liveness */
	/*
	 * Forked children under the budget (evict.c, "A forked child's
	 * pages"): made by a vm that serves forks with a budget, inherited
	 * by every child vm (and by the child processes, at the same
	 * addresses).  kid_park == 0: children run without a budget.
	 */
	struct inj_scratch kid_scratch; /* for injected drops */
	uintptr_t kid_park;        /* registered, inherited, never touched by
				    * the parent: a child's pages leave to it */
	/* A child vm with a budget (its evictor's): */
	struct lp_inject inj;      /* drops pages in the child process */
	int pagemap_fd;            /* /proc/PID/pagemap, or -1 */
	bool park_dirty;           /* kid_park may hold pages: drop it first */
	/* A child vm's new mappings (fork.c, "Memory a child maps"): its
	 * evictor calls adopt(vm) each round; the mappings the child had
	 * before its first anonymous mmap (old_maps, nold) are never taken. */
	void (*adopt)(struct lp_vm *vm);
	/* A child vm's move of memory (the kernel's, UFFD_EVENT_REMAP), to
	 * [to, to + len), leaving [from, from + left) (0: nothing known to
	 * be left): what of it adopt() took meanwhile comes back and leaves
	 * our table (mmap.c).  Called by a fault handler, h. */
	void (*moved)(struct lp_vm *vm, struct lp_handler *h, uintptr_t from, size_t left,
		      uintptr_t to, size_t len);
	/* One whose table goes along (vm_child_move_table(), mmap.c). */
	void (*move_table)(struct lp_vm *vm, const struct lp_remap_note *m, uintptr_t to);
	/* An mmap of the child's handed over by the host, which could not
	 * hold its thread because this vm's evictor traces it (fork.c,
	 * vm_child_hand_over()); the host's, which outlives the vm. */
	struct lp_handoff *_Atomic hand;
	_Atomic uint64_t maps_noted, note_ns; /* anonymous mmaps seen (seccomp) */
	uint64_t maps_scanned, scan_ns;       /* (the evictor's) */
	pthread_mutex_t maps_lock;            /* old_maps, moving */
	struct lp_range { uintptr_t lo, hi; } *old_maps;
	size_t nold;
	bool maps_known;
	/* Moves being handed to the kernel (remap_event(), fault.c): no
	 * adoption meanwhile, or one between its look at the table and the
	 * unregistering of the range would leave pages in our table over
	 * memory that is no longer registered, free to be parked away (read
	 * back as zeros). */
	unsigned moving;
	pthread_rwlock_t freeze_lock; /* held for reading by each fault service
				    * and evictor round; vm_freeze() writes */
	atomic_bool freezing;      /* a freeze waits: faults give up waiting
				    * for frames (they are deferred) */
	int thaw_fd;               /* eventfd: deferred faults can go on */
	pthread_mutex_t defer_lock;
	struct uffd_msg *deferred; /* faults read while frozen */
	unsigned ndeferred, capdeferred;
	pthread_mutex_t kids_lock;
	pthread_cond_t kids_cond;  /* a fork event was served */
	struct lp_vm **kids;       /* child vms */
	struct lp_vm *newest;      /* the child vm of the last fork served */
	uint64_t fork_seq;         /* a child vm: its fork event's number in
				    * its parent's forks_served (1, 2, ...) */
	unsigned nkids, capkids;
	uint64_t forks_started;  /* fork events taken (under kids_lock) */
	/* A handler's read of the userfaultfd ends a forker's wait before the
	 * handler takes the event: uffd_readers counts the handlers between
	 * a read and the count of the fork events it returned (forks_read),
	 * so that none in there and no new count means no event was read. */
	atomic_int uffd_readers;
	atomic_ulong forks_read;
	uint64_t forks_served;   /* fork events done: child vm built or failed */
	int unserved_ufd;          /* the userfaultfd of the last forked child
				    * whose vm could not be built, kept open
				    * (its faults wait) until the host kills it;
				    * -1 (under kids_lock) */
	atomic_bool dead;          /* a child vm whose process is gone */

	bool fr_up;                /* frames_init() ran (its locks exist) */
	bool ready;                /* fully created */
	atomic_bool stopping;
	atomic_int last_error;
	/* page writes in flight (page_io_begin/end): a page flagged PGF_IO
	 * while none is in flight has a stale flag that no completion will
	 * clear (vm.c, settle) */
	atomic_uint io_pages;
	uint64_t sum_seed;         /* of page digests (PGF_MAYBE); a child's is its parent's */
	unsigned char *zero;       /* one zeroed page, read only */
	void *zeros;               /* LP_ZA_MAX pages that read as zero */
};

/* Record a background error (first and last are kept: last wins). */
static inline void vm_error(struct lp_vm *vm, int err)
{
	if (err)
		atomic_store_explicit(&vm->last_error, err,
				      memory_order_relaxed);
}

/*
 * Whether the caller is not the process that created vm: a child of fork()
 * holding a copy of the vm's memory.  Its descriptors (userfaultfd,
 * eventfds, io_uring rings, swap file) are the creator's open file
 * descriptions, and its locks may be copies of locks held at the fork by
 * threads the child does not have: through any of them the child would
 * act on the creator's vm (unregister its regions, stop its threads, take
 * its I/O completions) or hang.  Public entry points refuse (-ECHILD) and
 * lp_vm_destroy() touches nothing there.
 */
static inline bool vm_foreign(const struct lp_vm *vm)
{
	return getpid() != vm->owner;
}

/* Whether a child vm's address space still exists: a fill of its probe
 * page (registered in the parent, inherited) fails with ESRCH once the
 * process has exited or exec'd. */
static inline bool vm_alive(struct lp_vm *vm)
{
	return prim_uffd_zeropage(vm->uffd, vm->probe, LP_PG) != -ESRCH;
}

#endif /* LP_CORE_H */
