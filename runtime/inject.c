/* SPDX-License-Identifier: MIT */
/* Dropping pages of a forked child's address space: see inject.h. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "prim.h"

#define INJ_SCRATCH_LEN (2 * LP_PG)
#define INJ_VEC_OFF 64          /* the ranges, after the cookie */
#define INJ_PIDFD_SELF_THREAD (-10000L) /* linux/pidfd.h, 6.15 */
#define INJ_USER64_CS 0x33
#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

_Static_assert(INJ_VEC_OFF + INJ_MAXV * sizeof(struct iovec) <= INJ_SCRATCH_LEN,
	       "the scratch area holds INJ_MAXV ranges");
_Static_assert(sizeof(((struct lp_inject *)0)->mid_regs) == sizeof(struct user_regs_struct),
	       "mid_regs holds a struct user_regs_struct");
/* No deadline: until the thread stops or is gone. */
#define INJ_FOREVER UINT64_MAX

static uint64_t now_ns(void)
{
	return prim_now_ns();
}

/* The deadline wait_ms from now. */
static uint64_t after_ms(int wait_ms)
{
	return now_ns() + (uint64_t)wait_ms * 1000000ull;
}

static bool supported;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

/* process_madvise on our own mm through PIDFD_SELF_THREAD. */
static void probe(void)
{
	int saved = errno;
	char *p = mmap(NULL, LP_PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED) {
		p[0] = 1;
		struct iovec v = { p, LP_PG };
		long r = syscall(SYS_process_madvise, INJ_PIDFD_SELF_THREAD, &v,
				 1, MADV_DONTNEED, 0);
		supported = r == LP_PG && p[0] == 0;
		munmap(p, LP_PG);
	}
	errno = saved;
}

bool inject_supported(void)
{
	pthread_once(&probe_once, probe);
	return supported;
}

static uintptr_t find_sysinsn(void)
{
	const unsigned char *v = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);

	for (size_t i = 0; v && i + 1 < LP_PG; i++)
		if (v[i] == 0x0f && v[i + 1] == 0x05)
			return (uintptr_t)v + i;
	return 0;
}

int inject_scratch_new(struct inj_scratch *sc)
{
	memset(sc, 0, sizeof(*sc));
	if (!inject_supported())
		return -ENOTSUP;
	uintptr_t insn = find_sysinsn();
	if (!insn)
		return -ENOTSUP;
	int saved = errno;
	void *p = mmap(NULL, INJ_SCRATCH_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = saved;
		return -ENOMEM;
	}
	uint64_t cookie = now_ns() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	memcpy(p, &cookie, sizeof cookie);
	sc->addr = (uintptr_t)p;
	sc->cookie = cookie;
	sc->sysinsn = insn;
	return 0;
}

void inject_scratch_free(struct inj_scratch *sc)
{
	if (sc->addr)
		munmap((void *)sc->addr, INJ_SCRATCH_LEN);
	memset(sc, 0, sizeof(*sc));
}

void inject_init(struct lp_inject *in, const struct inj_scratch *sc)
{
	memset(in, 0, sizeof(*in));
	in->pidfd = -1;
	if (sc)
		in->sc = *sc;
}

int inject_attach_pid(struct lp_inject *in, pid_t pid)
{
	if (in->pidfd >= 0 || pid <= 0)
		return in->pidfd >= 0 ? 0 : -EINVAL;
	int saved = errno;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	int rc = fd < 0 ? -errno : 0;
	errno = saved;
	if (rc)
		return rc;
	in->pid = pid;
	in->pidfd = fd;
	return 0;
}

/* The process still runs (its pidfd is not readable: not exited). */
static bool alive(const struct lp_inject *in)
{
	struct pollfd p = { .fd = in->pidfd, .events = POLLIN };

	return in->pidfd >= 0 && poll(&p, 1, 0) == 0;
}

/* (/proc/TID/stat is the thread's own.) */
static bool thread_alive(pid_t tid)
{
	char state;
	pid_t parent;

	return !prim_proc_stat(tid, &state, &parent) && state != 'Z' && state != 'X';
}

/* PTRACE_SEIZE of tid: 0 or -errno; -EAGAIN when a thread of ours
 * traces it already (inject_hold(), for a moment), not a debugger. */
static int seize(pid_t tid, long opts)
{
	int err = 0;

	/* (Tried twice: a tracer of ours that let go between the refusal
	 * and our look at TracerPid leaves 0 there, no debugger; seen as a
	 * hold refused with EPERM, the thread let run on.) */
	for (int i = 0; i < 2; i++) {
		if (!ptrace(PTRACE_SEIZE, tid, 0, opts))
			return 0;
		err = errno;
		uint64_t tracer = 0;
		if (err != EPERM || prim_status_field(tid, "TracerPid:", 10, &tracer))
			break;
		if (tracer)
			return prim_tgid_of((pid_t)tracer) == getpid() ? -EAGAIN : -EPERM;
	}
	return -err;
}

/* A live thread of the process: its leader unless that one has exited. */
static pid_t pick_thread(pid_t pid)
{
	if (thread_alive(pid))
		return pid;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	pid_t tid = 0;
	for (struct dirent *e; d && !tid && (e = readdir(d));) {
		pid_t t = (pid_t)atoi(e->d_name);
		if (t > 0 && thread_alive(t))
			tid = t;
	}
	if (d)
		closedir(d);
	return tid;
}

/* The thread is gone: take its exit from the tracer's side (a traced
 * task's exit is reported to its tracer first; its parent hears of it
 * once we have seen it). */
static void reap(pid_t pid, pid_t tid)
{
	siginfo_t si;
	char state;
	pid_t parent = 0;

	/* Our own child's exit is for our own wait (a test's, an embedder's). */
	if (tid == pid && !prim_proc_stat(pid, &state, &parent) &&
	    parent == getpid())
		return;
	memset(&si, 0, sizeof si);
	(void)waitid(P_PID, (id_t)tid, &si, WEXITED | WNOHANG | __WALL);
}

/*
 * The next ptrace stop of tid, waiting until deadline_ns (0: a second)
 * or *stop: a wait status, 0 when the thread is gone (reaped), -1 when
 * the wait ended first.  Only trapped stops are collected.
 */
static int next_stop(pid_t pid, pid_t tid, uint64_t deadline_ns,
		     const atomic_bool *stop)
{
	long ns = 10000;

	if (!deadline_ns)
		deadline_ns = now_ns() + 1000000000ull;
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (!waitid(P_PID, (id_t)tid, &si,
			    WSTOPPED | WEXITED | WNOHANG | WNOWAIT | __WALL) &&
		    si.si_pid == tid) {
			if (si.si_code != CLD_TRAPPED) {
				reap(pid, tid);
				return 0;
			}
			memset(&si, 0, sizeof si);
			if (!waitid(P_PID, (id_t)tid, &si, WSTOPPED | WNOHANG | __WALL) &&
			    si.si_pid == tid)
				return (si.si_status << 8) | 0x7f;
		}
		if (!thread_alive(tid)) {
			reap(pid, tid);
			return 0;
		}
		if ((stop && atomic_load(stop)) || now_ns() >= deadline_ns)
			return -1;
		struct timespec ts = { 0, ns };
		nanosleep(&ts, NULL);
		if (ns < 500000)
			ns *= 2;
	}
}

static int event_of(int st)
{
	return st >> 16;
}

static bool group_stop(int st)
{
	int sig = WSTOPSIG(st);

	return event_of(st) == PTRACE_EVENT_STOP && sig != SIGTRAP;
}

/* A signal-delivery stop: its signal (to pass on), else 0. */
static int signal_of(int st)
{
	int sig = WSTOPSIG(st);

	if (event_of(st) || sig == (SIGTRAP | 0x80))
		return 0;
	return sig;
}

/*
 * The process exited.  A thread still attached (its stop did not come in
 * time, then it exited) is a zombie whose exit is reported to us first:
 * taken now, or its parent's wait would never see it (a program waiting
 * for its children hung so).  -ESRCH.
 */
static int gone(struct lp_inject *in)
{
	if (in->seized) {
		reap(in->pid, in->seized);
		in->seized = 0;
	}
	if (in->mid) {
		reap(in->pid, in->mid);
		in->mid = 0;
	}
	return -ESRCH;
}

/* next_stop(), the owner told meanwhile (in->waiting). */
static int await_stop(struct lp_inject *in, pid_t tid, uint64_t deadline,
		      const atomic_bool *stop)
{
	if (in->waiting)
		in->waiting(in->waiting_ctx, tid, true);
	int st = next_stop(in->pid, tid, deadline, stop);
	if (in->waiting)
		in->waiting(in->waiting_ctx, tid, false);
	return st;
}

/* Wait for our interrupt's stop: 1 stopped, 0 gone, -1 not yet. */
static int wait_interrupt(struct lp_inject *in, pid_t tid, uint64_t deadline,
			  const atomic_bool *stop)
{
	for (;;) {
		int st = await_stop(in, tid, deadline, stop);
		if (st <= 0)
			return st;
		if (event_of(st) == PTRACE_EVENT_STOP && !group_stop(st))
			return 1;
		if (group_stop(st)) {
			/* Stopped by a signal (^Z): left so, without us. */
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -2;
		}
		/* A signal on its way: delivered; our stop comes after. */
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)signal_of(st)))
			return 0;
	}
}

/* Whether the scratch area and the vDSO still hold what we left. */
static bool scratch_ok(const struct lp_inject *in, pid_t tid)
{
	uint64_t cookie = 0;
	unsigned char insn[2] = { 0, 0 };
	struct iovec l[2] = { { &cookie, sizeof cookie }, { insn, 2 } };
	struct iovec r[2] = { { (void *)in->sc.addr, sizeof cookie },
			      { (void *)in->sc.sysinsn, 2 } };

	return process_vm_readv(tid, l, 2, r, 2, 0) == (ssize_t)(sizeof cookie + 2) &&
	       cookie == in->sc.cookie && insn[0] == 0x0f && insn[1] == 0x05;
}

/*
 * Give the stopped thread its registers back and let it go.  At a
 * syscall-exit stop, a call it was blocked in must be restarted by the
 * kernel: the registers go back at a second stop, before that logic.
 */
static void give_back(pid_t pid, pid_t tid, const struct user_regs_struct *saved,
		      bool at_exit, int sig)
{
	(void)ptrace(PTRACE_SETREGS, tid, 0, saved);
	long err = (long)saved->rax;
	bool restart = (long)saved->orig_rax >= 0 &&
		       (err == -512 || err == -513 || err == -514 || err == -516);
	if (at_exit && restart && !ptrace(PTRACE_INTERRUPT, tid, 0, 0) &&
	    !ptrace(PTRACE_CONT, tid, 0, 0)) {
		for (;;) {
			/* (It comes before the thread returns to user mode:
			 * nothing it waits for is ours.) */
			int st = next_stop(pid, tid, INJ_FOREVER, NULL);
			if (st <= 0)
				return;
			if (event_of(st) == PTRACE_EVENT_STOP)
				break;
			/* A signal before the stop: it finds our registers
			 * (the restart logic runs with them); pass it. */
			if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)signal_of(st)))
				return;
		}
		sig = 0;
	}
	(void)ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig);
}

/*
 * The thread, let go towards our call, did not reach it by the deadline:
 * on its way back to user mode it may write its rseq area or take a
 * signal's frame, and a fault there waits for its vm's handler, which may
 * wait for whatever holds the caller (a fork's freeze of the vm waits
 * for the evictor's round, and the handler behind it: seen in a run that
 * then left the child stopped for good).  The ranges are emptied (the
 * kernel reads them only once the call is made), the registers kept: the
 * thread is given back at its next stop, by a later call.
 */
static long abandon_call(struct lp_inject *in, pid_t tid,
			 const struct user_regs_struct *saved, size_t n)
{
	struct iovec none[INJ_MAXV];
	memset(none, 0, n * sizeof(*none));
	struct iovec l = { none, n * sizeof(*none) };
	struct iovec r = { (void *)(in->sc.addr + INJ_VEC_OFF), n * sizeof(*none) };
	(void)process_vm_writev(tid, &l, 1, &r, 1, 0);
	memcpy(in->mid_regs, saved, sizeof(*saved));
	in->mid = tid;
	return -EAGAIN;
}

/*
 * Wait for tid's way through our call (entered: its entry stop was seen)
 * and give it back: the call's result, -EINTR (a signal came first: not
 * made), -ESRCH, or -EAGAIN (not at the call by deadline: abandon_call()).
 * Once in the call, the wait has no deadline: the call itself waits for
 * nothing of ours (the scratch area is never registered).
 */
static long finish_call(struct lp_inject *in, pid_t tid,
			const struct user_regs_struct *saved, size_t n,
			uint64_t deadline, const atomic_bool *stop)
{
	bool entered = false;
	for (;;) {
		/* (In the call, it waits for nothing of ours.) */
		int st = entered ? next_stop(in->pid, tid, INJ_FOREVER, NULL)
				 : await_stop(in, tid, deadline, stop);
		if (st == 0)
			return -ESRCH;
		if (st < 0)
			return abandon_call(in, tid, saved, n);
		if (WSTOPSIG(st) == (SIGTRAP | 0x80) && !event_of(st)) {
			if (entered) {
				struct user_regs_struct out;
				long res = ptrace(PTRACE_GETREGS, tid, 0, &out)
						   ? -ESRCH : (long)out.rax;
				give_back(in->pid, tid, saved, true, 0);
				return res;
			}
			entered = true;
			if (ptrace(PTRACE_SYSCALL, tid, 0, 0))
				return -ESRCH;
			continue;
		}
		/* A signal (or a stop) before our call: the program's state
		 * back, the signal delivered; our call is not made. */
		int sig = signal_of(st);
		give_back(in->pid, tid, saved, false, group_stop(st) ? 0 : sig);
		return -EINTR;
	}
}

/* A thread left on its way to an abandoned call: given back now if it
 * stopped by deadline (0, or -ESRCH), else -EAGAIN. */
static int finish_mid(struct lp_inject *in, uint64_t deadline, const atomic_bool *stop)
{
	if (!in->mid)
		return 0;
	pid_t tid = in->mid;
	struct user_regs_struct saved;
	memcpy(&saved, in->mid_regs, sizeof(saved));
	in->mid = 0;
	long rc = finish_call(in, tid, &saved, INJ_MAXV, deadline, stop);
	return rc == -EAGAIN ? -EAGAIN : rc == -ESRCH ? -ESRCH : 0;
}

bool inject_pending(const struct lp_inject *in)
{
	return in->seized || in->mid;
}

/* Run the call on stopped thread tid: as finish_call(). */
static long run_call(struct lp_inject *in, pid_t tid,
		     const struct user_regs_struct *saved, size_t n,
		     uint64_t deadline, const atomic_bool *stop)
{
	struct user_regs_struct r = *saved;

	r.rip = in->sc.sysinsn;
	r.orig_rax = (unsigned long long)-1; /* no restart of what it was in */
	r.rax = SYS_process_madvise;
	r.rdi = (unsigned long long)INJ_PIDFD_SELF_THREAD;
	r.rsi = in->sc.addr + INJ_VEC_OFF;
	r.rdx = n;
	r.r10 = MADV_DONTNEED;
	r.r8 = 0;
	if (ptrace(PTRACE_SETREGS, tid, 0, &r) || ptrace(PTRACE_SYSCALL, tid, 0, 0)) {
		give_back(in->pid, tid, saved, false, 0);
		return -ESRCH;
	}
	return finish_call(in, tid, saved, n, deadline, stop);
}

int inject_zap(struct lp_inject *in, const struct iovec *iov, size_t n,
	       int wait_ms, const atomic_bool *stop)
{
	if (in->refused || !in->sc.addr || !in->sc.sysinsn || n > INJ_MAXV)
		return -ENOTSUP;
	if (!n)
		return 0;
	if (!alive(in))
		return gone(in);
	int saved_errno = errno;
	uint64_t t0 = now_ns(), deadline = after_ms(wait_ms);
	pid_t tid = in->seized;
	long rc = finish_mid(in, deadline, stop);

	if (rc == -EAGAIN || rc == -ESRCH)
		goto out;
	if (!tid) {
		tid = pick_thread(in->pid);
		if (!tid || (rc = seize(tid, PTRACE_O_TRACESYSGOOD))) {
			rc = tid ? rc : -ESRCH;
			goto out;
		}
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
			rc = -ESRCH;
			goto out;
		}
		in->seized = tid;
	}
	int w = wait_interrupt(in, tid, deadline, stop);
	if (w == -1) {
		rc = -EAGAIN; /* still attached: a later call lets it go */
		goto out;
	}
	in->seized = 0;
	if (w == 0 || w == -2) {
		rc = w ? -EAGAIN : -ESRCH;
		goto out;
	}
	/* Stopped.  Still the process we were given (a pid reused between
	 * its death and our attach is not), in 64-bit mode, with our
	 * scratch area and vDSO where they were? */
	struct user_regs_struct regs;
	if (!alive(in) || ptrace(PTRACE_GETREGS, tid, 0, &regs)) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		rc = -ESRCH;
		goto out;
	}
	if (regs.cs != INJ_USER64_CS || !scratch_ok(in, tid)) {
		in->refused = true;
		ptrace(PTRACE_DETACH, tid, 0, 0);
		rc = -ENOTSUP;
		goto out;
	}
	if (in->stopped)
		in->stopped(in->stopped_ctx, tid, (long)regs.orig_rax, (long)regs.rax);
	size_t want = 0;
	for (size_t i = 0; i < n; i++)
		want += iov[i].iov_len;
	struct iovec l = { (void *)iov, n * sizeof(*iov) };
	struct iovec r = { (void *)(in->sc.addr + INJ_VEC_OFF), n * sizeof(*iov) };
	if (process_vm_writev(tid, &l, 1, &r, 1, 0) != (ssize_t)l.iov_len) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		rc = -EFAULT;
		goto out;
	}
	/* (From the stop: as long again for the call to be reached.) */
	rc = run_call(in, tid, &regs, n, after_ms(wait_ms), stop);
	if (rc >= 0)
		rc = (size_t)rc == want ? 0 : -EIO;
out:
	if (rc == 0) {
		in->calls++;
		in->pages += n;
	} else if (rc != -EAGAIN) {
		in->failed++;
	}
	in->ns += now_ns() - t0;
	errno = saved_errno;
	return (int)rc;
}

#define HOLD_SPIN_NS 300000ull

int inject_hold(pid_t tid)
{
	int saved = errno, rc = seize(tid, 0);

	if (!rc && ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		rc = -ESRCH; /* gone meanwhile: its exit is reported to us */
		reap(prim_tgid_of(tid), tid);
	}
	errno = saved;
	return rc;
}

int inject_held(pid_t pid, pid_t tid, long *ret, int *sig, int wait_ms)
{
	int saved = errno;
	uint64_t t0 = now_ns(), deadline = after_ms(wait_ms);
	struct user_regs_struct r;
	int st;

	/* (The stop comes within tens of microseconds, as the thread wakes
	 * up from the call: looked for without sleeping that long first;
	 * next_stop()'s sleeps, from 10 us doubling, doubled the cost.) */
	while ((st = next_stop(pid, tid, t0 + 1, NULL)) < 0 &&
	       now_ns() - t0 < HOLD_SPIN_NS && now_ns() < deadline)
		sched_yield();
	if (st < 0)
		st = next_stop(pid, tid, deadline, NULL);

	errno = saved;
	if (st < 0)
		return -EAGAIN;
	if (!st)
		return 0;
	/* (Our interrupt's stop, a signal's delivery stop or a ^Z's: each
	 * as it returns to user mode, the call's result still in rax.) */
	*sig = group_stop(st) ? 0 : signal_of(st);
	if (ptrace(PTRACE_GETREGS, tid, 0, &r)) {
		reap(pid, tid); /* (killed meanwhile) */
		errno = saved;
		return 0;
	}
	*ret = (long)r.rax;
	return 1;
}

void inject_unhold(pid_t tid, int sig)
{
	int saved = errno;
	(void)ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig);
	errno = saved;
}

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

struct rseq_config { /* struct ptrace_rseq_configuration */
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size, signature, flags, pad;
};

int inject_learn_rseq(struct lp_inject *in, int wait_ms)
{
	if (in->refused)
		return -ENOTSUP;
	if (!alive(in))
		return gone(in);
	int mrc = finish_mid(in, after_ms(wait_ms), NULL);
	if (mrc)
		return mrc;
	pid_t tid = in->seized ? in->seized : pick_thread(in->pid);
	if (tid && tid == in->rseq_tid)
		return 0;
	if (!tid)
		return -ESRCH;
	int saved = errno, rc = 0;
	if (!in->seized) {
		if ((rc = seize(tid, PTRACE_O_TRACESYSGOOD)) ||
		    (ptrace(PTRACE_INTERRUPT, tid, 0, 0) && (rc = -errno))) {
			errno = saved;
			return rc;
		}
		in->seized = tid;
	}
	int w = wait_interrupt(in, tid, after_ms(wait_ms), NULL);
	if (w == -1) {
		errno = saved;
		return -EAGAIN; /* still attached: a later call lets it go */
	}
	in->seized = 0;
	if (w != 1) {
		errno = saved;
		return w ? -EAGAIN : -ESRCH;
	}
	struct user_regs_struct regs;
	if (in->stopped && !ptrace(PTRACE_GETREGS, tid, 0, &regs))
		in->stopped(in->stopped_ctx, tid, (long)regs.orig_rax, (long)regs.rax);
	struct rseq_config c = { 0 };
	long n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof c, &c);
	if (n >= 0 || errno == EIO || errno == EINVAL) { /* (no rseq: none to know) */
		in->rseq_tid = tid;
		in->rseq = n >= 0 ? (uintptr_t)c.rseq_abi_pointer : 0;
	} else {
		rc = -errno;
	}
	ptrace(PTRACE_DETACH, tid, 0, 0);
	errno = saved;
	return rc;
}

void inject_release(struct lp_inject *in, int wait_ms)
{
	/* (One still on its way to an abandoned call after wait_ms, blocked
	 * in a fault all that time, is let go by the kernel as we exit, and
	 * would return from the empty call with our registers.) */
	(void)finish_mid(in, after_ms(wait_ms), NULL);
	if (in->seized) {
		pid_t tid = in->seized;
		uint64_t deadline = after_ms(wait_ms);
		if (wait_interrupt(in, tid, deadline, NULL) == 1)
			ptrace(PTRACE_DETACH, tid, 0, 0);
		in->seized = 0;
	}
	if (in->pidfd >= 0)
		close(in->pidfd);
	in->pidfd = -1;
}
