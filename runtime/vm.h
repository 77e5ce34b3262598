/* SPDX-License-Identifier: MIT */
/*
 * struct lp_vm: one managed address space (Pintos' supplemental page table
 * owner plus everything around it).  No globals: every function reaches the
 * state through its vm.
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
#ifndef LP_VM_H
#define LP_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "lazypage/lazypage.h"
#include "compat.h"
#include "frame.h"
#include "io.h"
#include "page.h"
#include "region.h"
#include "spt.h"
#include "stats.h"
#include "swap.h"
#include "verify.h"

/* Largest readahead window, in pages (also the handler's buffer size). */
#define LP_RA_MAX 32u

struct lp_handler {
	struct lp_vm *vm;
	pthread_t tid;
	pid_t ktid;                /* kernel thread id */
	int cpu;                   /* pinned to it, or -1 */
	bool started;
	struct lp_io io;           /* reads of swap and files */
	unsigned char *buf;        /* LP_RA_MAX pages, page aligned */
	struct lp_tstats st;
	/* faults whose fill met -EAGAIN (the mm was changing): retried */
	uintptr_t retry[64];
	uint8_t retry_write[64];
	unsigned nretry;
	/* pages answered with SIGBUS (UFFDIO_POISON), oldest first: their
	 * marker is cleared after LP_POISON_MS so that a later touch reads
	 * them again (fault.c) */
	uintptr_t poisoned[16];
	uint64_t poisoned_ns[16];
	unsigned npoisoned;
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
	bool failing;              /* writes keep failing: retry slowly */
	unsigned fail_streak;      /* writes failed since one succeeded */
	uint64_t last_ok_ns;       /* when a write last succeeded */
	/* Rounds, and rounds that freed nothing while faults waited for a
	 * frame ("barren"), with the reason of the last one (EVW_*). */
	atomic_ulong rounds, barren;
	bool waited;               /* this round: faults waited */
	int why, last_why;
	struct ev_item *items;     /* scratch for one round */
	struct iovec *iov;         /* scratch for zaps */
	struct lp_tstats st;
};

/* vm_create() flags (internal) */
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

	pthread_rwlock_t map_lock;
	struct lp_regions regions;

	struct lp_spt spt;
	struct lp_frames fr;
	struct lp_swap *swap;
	struct lp_verify *vf;      /* verify mode (verify.h), else NULL */

	struct lp_handler *h;
	unsigned nh;
	struct lp_evictor ev;

	/* API callers (lp_sync, lp_unmap, destroy): one ring, one lock */
	pthread_mutex_t api_lock;
	struct lp_io api_io;
	struct lp_tstats api_st;

	/* fork (fork.c): a child vm serves the copy of this address space that
	 * fork() gave a child process; it shares the swap file */
	struct lp_vm *parent;      /* set in a child vm */
	pid_t pid;                 /* a child vm: its process, once known */
	uintptr_t probe;           /* VMF_FORK: a registered page, for liveness */
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
	unsigned nkids, capkids;
	uint64_t forks_started;  /* fork events taken (under kids_lock) */
	uint64_t forks_served;   /* fork events done: child vm built or failed */
	/* The program's break, emulated by the host (loader/load.c); a child
	 * vm inherits it */
	uintptr_t brk_start, brk_limit, brk_cur, brk_end;
	atomic_bool dead;          /* a child vm whose process is gone */

	bool fr_up;                /* frames_init() ran (its locks exist) */
	bool ready;                /* fully created */
	atomic_bool stopping;
	atomic_int last_error;
	/* page writes in flight (page_io_begin/end): a page flagged PGF_IO
	 * while none is in flight has a stale flag that no completion will
	 * clear (vm.c, settle) */
	atomic_uint io_pages;
	unsigned char *zero;       /* one zeroed page, read only */
	void *zeros;               /* LP_RA_MAX pages that read as zero */
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

int vm_create(struct lp_vm **out, const struct lp_config *cfg,
	      unsigned vmflags);
/* Which part of vm_create failed, for a message that names the cause. */
struct vm_failure {
	enum {
		VM_PART_NONE,   /* it did not fail */
		VM_PART_CONFIG, /* cfg refused (check_config, policy) */
		VM_PART_ENV,    /* env: the malformed LAZYPAGE_* variable */
		VM_PART_UFFD,   /* userfaultfd missing or refused */
		VM_PART_SWAP,   /* the swap file (cfg->swap_path) */
		VM_PART_SYSTEM, /* anything else: memory, threads, io_uring */
	} part;
	const char *env;
};
int vm_create_why(struct lp_vm **out, const struct lp_config *cfg,
		  unsigned vmflags, struct vm_failure *why);
/* The locks and descriptors of an lp_vm (vm.c), for child vms too. */
void vm_init_common(struct lp_vm *vm);
void vm_fini_common(struct lp_vm *vm);

/* fork.c */
/* Stop every fault service and evictor round (faults read meanwhile are
 * deferred) until vm_thaw(): the pages hold still. */
void vm_freeze(struct lp_vm *vm);
void vm_thaw(struct lp_vm *vm);
/* Serve a UFFD_EVENT_FORK: a child vm for the new address space behind
 * ufd.  Context: a handler of vm.  */
void vm_fork_event(struct lp_vm *vm, int ufd);
/* Wait (up to timeout_ms) until vm has served more than `seen` forks. */
int vm_wait_fork(struct lp_vm *vm, uint64_t seen, int timeout_ms);
/* Whether a fork event beyond `seen` (forks_started) was taken. */
bool vm_fork_started(struct lp_vm *vm, uint64_t seen);
/* The child vms of vm, joined and freed when their process is gone. */
void vm_reap_kids(struct lp_vm *vm, bool all);
/* Whether a child vm's address space still exists. */
bool vm_alive(struct lp_vm *vm);
void vm_child_destroy(struct lp_vm *vm);

/* fault.c */
/* Tests (white-box): fn runs in a handler about to zero-fill a missing
 * fault on a page it takes for mapped (a stale message, most often), to
 * widen the window a preempted handler leaves there.  NULL: none. */
void fault_set_stale_hook(void (*fn)(uintptr_t addr));
int handlers_start(struct lp_vm *vm);
void handlers_stop(struct lp_vm *vm);

/* evict.c */
int evictor_start(struct lp_vm *vm);
void evictor_stop(struct lp_vm *vm);
/* Ask the evictor to make room (cheap when already asked). */
void evictor_kick(struct lp_vm *vm);

/*
 * Page life-cycle helpers shared by the fault path, the evictor and the API
 * (page.c).  All take the page's stripe lock themselves unless they say so.
 */

/* Under the stripe lock: wake threads waiting on pg (faulting threads via
 * UFFDIO_WAKE after the lock is dropped: returns whether to wake). */
bool page_take_waiters(struct lp_page *pg);
/* Wake faulting threads blocked on the page at addr. */
void page_wake(struct lp_vm *vm, uintptr_t addr);
/* Under pg's stripe lock: the evictor starts / ends writing pg's kva slot
 * (PGF_IO).  vm->io_pages counts the calls, not the flags: each begin has
 * exactly one end, on the same struct (the frame is busy meanwhile, so the
 * page cannot be handed to a second write before the first ends). */
void page_io_begin(struct lp_vm *vm, struct lp_page *pg);
void page_io_end(struct lp_vm *vm, struct lp_page *pg);

/* Read one page of content from swap slot into buf (LP_PG bytes). */
int swap_read_page(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
		   void *buf, struct lp_tstats *st);

/* Unmap and destroy the pages of [start, end) of the regions in gone[]:
 * write back shared dirty pages, wait for owners, free frames and slots
 * (vm.c; also used by destroy). */
int vm_teardown_range(struct lp_vm *vm, struct lp_region *const *gone,
		      size_t ngone);

/* Reserve len bytes at `at` (a hint, or with mflags MAP_FIXED* the place),
 * register them and publish a region (takes the file reference, even on
 * failure).  *addr gets the address.  0 or -errno. */
int vm_map_region(struct lp_vm *vm, uintptr_t at, int mflags, size_t len,
		  int prot, enum lp_region_kind kind, struct lp_file *file,
		  uint64_t off, bool shared, const struct lp_initializer *init,
		  void **addr);
/* Destroy every page struct of [start, end), waiting for their owners:
 * frames and slots are released; the mapping itself is left alone. */
void vm_destroy_pages(struct lp_vm *vm, uintptr_t start, uintptr_t end);

/* Write back the dirty pages of shared file regions in [start, end). */
int vm_sync_range(struct lp_vm *vm, uintptr_t start, uintptr_t end);

#endif /* LP_VM_H */
