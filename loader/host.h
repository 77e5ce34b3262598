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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lazypage/lazypage.h"

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
	struct lp_handler *h;   /* fills pages for a forked child's ranges */
	struct lp_image prog, interp;
};

/* seccomp.c */
/* The filter the program's process installs.  brk is left to the kernel
 * for arguments 0 and >= first_brk (the program's first break); below it,
 * the pager answers.  Not thread-safe (one filter per pager). */
const struct sock_fprog *lp_seccomp_build(uintptr_t first_brk);
void *notify_main(void *host);

/* load.c */
int image_load(struct lp_vm *vm, struct lp_image *img, uintptr_t extra);

/* host.c */
/* The pager's main, in the process lp_spawn forked; caller_fd: a pidfd of
 * the caller (the program and its children are killed if the caller dies,
 * and the pager ends).  Returns the pager's exit status. */
int host_main(const char *path, char *const argv[], char *const envp[],
	      const struct lp_config *cfg, struct lp_shared *sh, int caller_fd);
void host_fail(struct lp_shared *sh, int err, int kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void host_publish_stats(struct lp_host *H);

#endif /* LP_HOST_H */
