/* SPDX-License-Identifier: MIT */
/*
 * The first instructions of the program's process (trampoline.c).  The
 * pager clones the process with CLONE_VM; the new process starts here, on a
 * small stack of the pager's, with the pager's TLS register: it may only make
 * raw system calls.  It installs the seccomp filter, hands its listener to
 * the pager, undoes what execve() would have undone (descriptors marked
 * close-on-exec, caught signals, the signal mask, the alternate stack, the
 * TLS register), and jumps to the program's entry with its initial stack.
 */
#ifndef LP_TRAMPOLINE_H
#define LP_TRAMPOLINE_H

#include <linux/filter.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* TR_PREP and TR_NATIVE: host_exec_main's process waits while the pager
 * prepares, then runs tramp_main (TR_START) or the program natively. */
enum { TR_PREP = -1, TR_START = 0, TR_LISTENER, TR_GO, TR_RUNNING, TR_FAILED,
       TR_NATIVE };

struct lp_tramp {
	atomic_int stage;          /* futex, TR_* */
	int listener;              /* the listener fd, in the program's table */
	int err;                   /* TR_FAILED: -errno of the failed step */
	const struct sock_fprog *filter;
	const struct sock_fprog *guard; /* installed first; no listener */
	unsigned filter_flags;
	bool no_new_privs;         /* needed for seccomp without CAP_SYS_ADMIN */
	const int *close_fds;      /* close-on-exec descriptors to close */
	int nclose;
	uint8_t ignored[65];       /* signals the program starts ignoring */
	uint64_t sigmask;          /* the program's initial signal mask */
	char comm[16];
	pid_t pager;
	bool own_parent;           /* the pager is our child (host_exec_main) */
	uintptr_t sp, entry;
};

/* The entry of the cloned process (glibc clone() calls it).  Never
 * returns: jumps to the program, or exits 127 after TR_FAILED. */
int tramp_main(void *arg);

#endif /* LP_TRAMPOLINE_H */
