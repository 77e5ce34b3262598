/* SPDX-License-Identifier: MIT */
/*
 * inject: drop pages of another process's address space (a forked child's,
 * which a child vm serves from the pager) by making one of its threads
 * call process_madvise(MADV_DONTNEED) on itself.  The kernel offers no
 * call that frees pages of another mm: process_madvise() on another
 * process takes only advice that frees nothing (COLD, PAGEOUT, WILLNEED).
 *
 * How: attach to a thread of the process (PTRACE_SEIZE, then
 * PTRACE_INTERRUPT: it stops at its next return to user mode, out of a
 * page fault or a blocking call alike), write the ranges to a scratch
 * area it inherited from us, point it at a `syscall` instruction of its
 * vDSO with process_madvise(PIDFD_SELF_THREAD, ranges, n, MADV_DONTNEED),
 * let it make that one call, then give it back its registers.  A call it
 * was blocked in is restarted by the kernel exactly as after a stop: its
 * registers go back at a second stop, before the kernel's restart logic
 * runs (a bare restore at the syscall-exit stop would skip that logic and
 * return -ERESTARTSYS to the program).  Signals that come meanwhile are
 * delivered as they come; a signal that comes before our call is made
 * ends the attempt (registers restored, the signal delivered).
 *
 * Refused (-ENOTSUP, never tried again on that process): a process in
 * 32-bit mode, or whose scratch area or vDSO no longer holds what we left
 * there (it mapped something else over them, or executed another image).
 * A stopped process (SIGSTOP, ^Z) is left alone (-EAGAIN).
 *
 * One thread calls these for a given struct lp_inject (ptrace requests
 * come from the tracer thread only).  The thread stopped is told nothing:
 * a stop of ~100-300 µs.
 */
#ifndef LP_INJECT_H
#define LP_INJECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Ranges per injected call (the scratch area holds them). */
#define INJ_MAXV 256u

/* What a process that forks needs for its children to be injectable: made
 * by the parent before it forks (inject_scratch_new), inherited by every
 * child at the same address. */
struct inj_scratch {
	uintptr_t addr;     /* INJ_SCRATCH_LEN bytes, private, never registered */
	uint64_t cookie;    /* its first word */
	uintptr_t sysinsn;  /* a syscall instruction of our vDSO */
};

struct lp_inject {
	struct inj_scratch sc;
	pid_t pid;          /* the process; 0: not known yet */
	int pidfd;          /* the process, opened by inject_attach_pid */
	pid_t seized;       /* a thread attached whose stop is not seen yet */
	/* A thread let go towards our call that did not reach it in time
	 * (it faulted on its way back to user mode, and the fault waited):
	 * the call's ranges are emptied, and its registers (mid_regs, a
	 * struct user_regs_struct) go back at its next stop, seen by a later
	 * call.  Never left attached and stopped for good. */
	pid_t mid;
	unsigned long long mid_regs[27];
	bool refused;       /* -ENOTSUP once: never again */
	uint64_t calls, pages, failed, ns; /* statistics */
	pid_t rseq_tid;     /* the thread whose rseq area is known, or 0 */
	uintptr_t rseq;     /* its rseq area (0: none registered) */
	/* Told (on) when we begin to wait for thread tid to stop or to
	 * reach our call, and (!on) when we stop waiting: a fault of that
	 * thread meanwhile may be what keeps it from stopping.  NULL:
	 * nobody to tell. */
	void (*waiting)(void *ctx, pid_t tid, bool on);
	void *waiting_ctx;
	/* Told of each stop of a thread we interrupted, before anything is
	 * done there (the thread stays stopped meanwhile): nr and ret, the
	 * call our interrupt came in and what it returned (orig_rax, rax;
	 * nr -1: none).  NULL: nobody to tell. */
	void (*stopped)(void *ctx, pid_t tid, long nr, long ret);
	void *stopped_ctx;
};

/* Whether this kernel runs process_madvise(PIDFD_SELF_THREAD,
 * MADV_DONTNEED) (6.15+), and ptrace: checked once. */
bool inject_supported(void);

/* Make the scratch area (once per process that forks).  0 or -errno. */
int inject_scratch_new(struct inj_scratch *sc);
void inject_scratch_free(struct inj_scratch *sc);

/* Start for process pid (a child of the scratch's owner).  */
void inject_init(struct lp_inject *in, const struct inj_scratch *sc);
/* Name the process (pidfd_open now: a pid reused later is not it).  0 or
 * -errno. */
int inject_attach_pid(struct lp_inject *in, pid_t pid);

/*
 * Drop the n ranges iov (addresses of the process) with one injected
 * call (n <= INJ_MAXV).  Waits up to wait_ms for a thread to stop, and
 * gives up earlier once *stop is set (stop may be NULL): -EAGAIN, the
 * thread stays attached and is let go by a later call (or
 * inject_release).  0 when every byte was dropped; -ESRCH (the process is
 * gone), -ENOTSUP, -EINTR (a signal came first), -EAGAIN, or the call's
 * own error.  Nothing is dropped unless 0 is returned, except by the call
 * itself on a partial failure (reported as -EIO).
 */
int inject_zap(struct lp_inject *in, const struct iovec *iov, size_t n,
	       int wait_ms, const atomic_bool *stop);
/* Whether a thread is attached or on its way to an abandoned call: a
 * later inject_zap() (or inject_release()) must look at it soon. */
bool inject_pending(const struct lp_inject *in);
/*
 * Learn the rseq area of the thread a drop would stop (in->rseq_tid,
 * in->rseq): the kernel writes it as the thread returns to user mode to
 * make the call, so a page there must be in place (not being taken away
 * by the caller) for the call to be made.  0 or -errno (-EAGAIN: no stop
 * within wait_ms).  Once per thread: 0 at once when it is known.
 */
int inject_learn_rseq(struct lp_inject *in, int wait_ms);
/* Let go of a thread still attached (waiting up to wait_ms for its stop),
 * close the pidfd. */
void inject_release(struct lp_inject *in, int wait_ms);

/*
 * Hold a thread in a system call whose result must be known before the
 * program runs on (a forked child's mmap: its new memory must be
 * registered before the child touches it).  Independent of any struct
 * lp_inject; the thread that holds must be the one that asks and lets
 * go (ptrace requests come from the tracer thread).
 *
 * inject_hold: thread tid, in a call that is not answered yet, is seized
 * and interrupted: it stops as it returns to user mode, before it runs
 * one instruction more.  0, or -errno: -EAGAIN when a thread of this
 * process traces it already (a drop on its way: try again once it lets
 * go), -EPERM when another does (a debugger).  inject_zap() and
 * inject_learn_rseq() likewise return -EAGAIN for a thread held so.
 */
int inject_hold(pid_t tid);
/*
 * The held thread's first stop (of process pid), waited for up to
 * wait_ms: 1, with *ret the result of the call it returned from (a stop
 * comes as the thread returns to user mode, before a signal's handler
 * is set up) and *sig the signal it stopped to take, if any (passed on by
 * inject_unhold()); it stays stopped until inject_unhold().  0: gone.
 * -EAGAIN: not stopped yet (still held: ask again later).
 */
int inject_held(pid_t pid, pid_t tid, long *ret, int *sig, int wait_ms);
/* Let a stopped held thread go on, with the signal inject_held() saw
 * (one that stopped it, ^Z, leaves it stopped, as without us). */
void inject_unhold(pid_t tid, int sig);

#endif /* LP_INJECT_H */
