/* SPDX-License-Identifier: MIT */
/*
 * The pager: the process that runs a program with its memory managed
 * (lp_spawn).  It loads the program into its own address space, clones the
 * program's process sharing that address space, and then serves it: page
 * faults (the runtime's threads), and the memory system calls the seccomp
 * filter sends it (seccomp.c).
 */
#ifndef LP_HOST_H
#define LP_HOST_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lazypage/lazypage.h"
#include "core.h"
#include "frame.h"

struct lp_vm;
struct lp_handler;
struct lp_elf;

/* Shared by the caller of lp_spawn and the pager (one MAP_SHARED page). */
enum { SH_STARTING, SH_RUNNING, SH_FAILED };
/* The pager's phase once the program runs: serving it; serving only
 * children it forked (it stays for them); ending (within a second, see
 * host.c). */
enum { SH_P_SERVING, SH_P_KIDS, SH_P_TEARDOWN };

#define SH_NSTAT 64

struct lp_shared {
	atomic_uint state;      /* SH_* */
	atomic_uint events;     /* futex: bumped at every change */
	int err;                /* SH_FAILED: -errno */
	struct lp_spawn_err why;
	pid_t pid;              /* the program */
	pid_t pager;
	atomic_uint nstat;      /* wait statuses published so far */
	int stat[SH_NSTAT];     /* the last SH_NSTAT of them */
	atomic_uint phase;      /* SH_P_* */
	atomic_uint seq;        /* seqlock over stats */
	struct lp_stats stats;
	char comm[16];          /* the program's name (its file's) */
};

/*
 * The process tree's page (a memfd: lp_spawn's caller maps it, every pager
 * of the tree opens it through /proc/PID/fd of the pager that executed its
 * program).  The first program's lp_shared first; then the configuration
 * every program the tree executes is run with; then one lp_shared per such
 * program running (TREE_SLOTS at once at most: more run natively).
 */
#define TREE_SLOTS 64

struct tree_config {
	struct lp_config cfg;   /* its pointers NULL: the strings below */
	char policy[64];
	char swap_path[4096];
	char remote[1024];
	bool has_policy, has_swap, has_remote;
};

/*
 * A process has one seccomp listener at most in its filter chain, so the
 * programs the tree executes keep the first program's: its pager (the top
 * pager) receives every notification of the tree and passes on those of
 * an address space another pager serves, through that pager's ring.
 */
#define FWD_LEN 64

struct fwd_ring {
	atomic_uint head;       /* futex: next to write (the top pager) */
	atomic_uint tail;       /* next to read (the slot's pager) */
	struct seccomp_notif e[FWD_LEN];
};

/*
 * Forked children of programs the tree executed, each with the slot whose
 * pager serves it (its child vm): published by that pager once it knows
 * the child's pid (do_fork), withdrawn once the child is not its own any
 * more.  The top pager routes by them before it looks at ancestry: a
 * child forked before its parent executed another program keeps the pager
 * of the image it was forked from, which the parent's pid no longer tells.
 */
#define TREE_KIDS 1024

struct tree_kid {
	atomic_int pid;         /* 0: free; -1: being written */
	atomic_int slot;
};

struct lp_tree {
	struct lp_shared top;
	struct tree_config config;
	pid_t top_pager;        /* its listener: the tree's */
	int top_listener;
	atomic_uint execs;      /* programs executed managed, so far */
	atomic_int used[TREE_SLOTS]; /* taken by a pager, until it ends */
	atomic_int live[TREE_SLOTS]; /* its pager serves (0: not yet, or ended) */
	/* The shared budget (config.cfg.frames, unless LP_CFG_MEM_PER_PROCESS):
	 * each pager's frames in use ([TREE_SLOTS]: the top pager's), and
	 * the largest sum any pager saw. */
	atomic_ulong resident[TREE_SLOTS + 1];
	struct frame_share share; /* the sum of them, its peak, the cap */
	_Atomic uint64_t held[TREE_SLOTS + 1]; /* each pager's part of share.used */
	/* When each slot's pager started (prim_proc_start; 0: not yet): a
	 * pager killed before it could leave is found by the others, which
	 * give its frames and its slot back (budget_reap). */
	atomic_ullong pager_start[TREE_SLOTS];
	/* Statistics: each slot's until its pager ends, when they are folded
	 * into done (under lock: a spin lock); one record per process. */
	atomic_int lock;
	atomic_int counted[TREE_SLOTS]; /* slot[i].stats not folded yet */
	struct lp_stats done;
	atomic_uint nlog;
	struct lp_proc_info log[LP_PROC_TREE_MAX];
	struct lp_shared slot[TREE_SLOTS];
	struct fwd_ring ring[TREE_SLOTS];
	struct tree_kid forked[TREE_KIDS];
};

/* One loaded ELF image. */
struct lp_image {
	struct lp_elf *elf;
	uintptr_t bias;         /* load address - link address */
	uintptr_t lo, hi;       /* mapped extent */
};

struct notif_queue;

struct lp_host {
	struct lp_vm *vm;
	struct lp_shared *sh;
	pid_t pid;              /* the program */
	int pidfd;
	int listener;           /* seccomp notifications */
	int stop_fd;
	pthread_t notify;
	bool notify_up;
	pthread_mutex_t lock;   /* notifications vs the main loop's reaping */
	struct notif_queue *queue; /* received, not yet served (seccomp.c) */
	/* The one child's mmap handed over at a time (seccomp.c,
	 * vm_child_hand_over()): here, for the host outlives its vms, whose
	 * evictors may look at it after the queue is gone. */
	struct lp_handoff hand;
	struct lp_handler *h;   /* fills pages for a forked child's ranges */
	struct lp_image prog, interp;
	/* The program's process is our parent (a program the tree executed,
	 * started by lp_exec_main), not our child. */
	bool own_parent;
	struct lp_tree *tree;   /* the tree's page, or NULL */
	int slot;               /* own_parent: ours in tree (or -1) */
	int logi;               /* our program's record in tree->log, or -1 */
	/* What forked children that went on to execute a program counted
	 * before (in our record: theirs is the program's, kid_ended()). */
	_Atomic uint64_t kid_faults, kid_evictions;
	int top_fd;             /* own_parent: a pidfd of the top pager */
	atomic_int *go;         /* own_parent: TR_START tells it to start */
	pthread_t budget;       /* the tree's shared budget (host.c) */
	bool budget_up;
	atomic_bool budget_stop;
	/* The program executed another: nothing of ours runs in our address
	 * space any more (seccomp.c sets it, the main loop acts). */
	atomic_bool program_left;
	atomic_bool slot_left;  /* our tree slot given back (once) */
	bool ended;             /* our program ended (its last statistics) */
};

/* seccomp.c */
/* The filter the program's process installs.  brk is left to the kernel
 * for arguments 0 and >= first_brk (the program's first break); below it,
 * the pager answers.  Not thread-safe (one filter per pager). */
const struct sock_fprog *lp_seccomp_build(uintptr_t first_brk);
void *notify_main(void *host);
/* A thread serving the program's calls could not start (err): the
 * program is killed, the reason said on stderr. */
void notify_cannot_start(struct lp_host *H, int err);
/* A pager of a program the tree executed: withdraw the children it
 * published that it no longer serves (all of them: at its end). */
void tree_kids_sweep(struct lp_host *H, bool all);

/* load.c */
int image_load(struct lp_vm *vm, struct lp_image *img, uintptr_t extra);

/* host.c */
/* The pager's main, in the process lp_spawn forked; caller_fd: a pidfd of
 * the caller (the program and its children are killed if the caller dies,
 * and the pager ends).  Returns the pager's exit status. */
int host_main(const char *path, char *const argv[], char *const envp[],
	      const struct lp_config *cfg, struct lp_shared *sh, int caller_fd,
	      int tree_fd);
void host_fail(struct lp_shared *sh, int err, int kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void host_publish_stats(struct lp_host *H);
/* The tree's spin lock; adding one process's statistics to a sum. */
void tree_lock(struct lp_tree *T);
void tree_unlock(struct lp_tree *T);
void stats_fold(struct lp_stats *sum, const struct lp_stats *st);

/* The helper run of lp_exec_main(), in the process that executed a
 * program (see exec.h): start a pager sharing this address space and jump
 * into the program exe (argv, envp, execfn: AT_EXECFN).  Returns only if
 * it cannot be run managed: the caller executes it natively. */
void host_exec_main(const char *tree_path, const char *exe, const char *execfn,
		    char *const argv[], char *const envp[]);

#endif /* LP_HOST_H */
