/* SPDX-License-Identifier: MIT */
/* Dropping pages of a forked child's address space: see inject.h. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

static uint64_t now_ns(void)
{
	return prim_now_ns();
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

/* Wait for our interrupt's stop: 1 stopped, 0 gone, -1 not yet. */
static int wait_interrupt(struct lp_inject *in, pid_t tid, uint64_t deadline,
			  const atomic_bool *stop)
{
	for (;;) {
		int st = next_stop(in->pid, tid, deadline, stop);
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
			int st = next_stop(pid, tid, 0, NULL);
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

/* Run the call on stopped thread tid: its result, or -EINTR/-ESRCH. */
static long run_call(struct lp_inject *in, pid_t tid,
		     const struct user_regs_struct *saved, size_t n)
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
	bool entered = false;
	for (;;) {
		int st = next_stop(in->pid, tid, 0, NULL);
		if (st <= 0)
			return -ESRCH;
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

int inject_zap(struct lp_inject *in, const struct iovec *iov, size_t n,
	       int wait_ms, const atomic_bool *stop)
{
	if (in->refused || !in->sc.addr || !in->sc.sysinsn || n > INJ_MAXV)
		return -ENOTSUP;
	if (!n)
		return 0;
	if (!alive(in))
		return -ESRCH;
	int saved_errno = errno;
	uint64_t t0 = now_ns();
	pid_t tid = in->seized;
	long rc;

	if (!tid) {
		tid = pick_thread(in->pid);
		if (!tid || ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD)) {
			rc = tid ? -errno : -ESRCH;
			goto out;
		}
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
			rc = -ESRCH;
			goto out;
		}
		in->seized = tid;
	}
	int w = wait_interrupt(in, tid, t0 + (uint64_t)wait_ms * 1000000ull, stop);
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
	rc = run_call(in, tid, &regs, n);
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

void inject_release(struct lp_inject *in, int wait_ms)
{
	if (in->seized) {
		pid_t tid = in->seized;
		uint64_t deadline = now_ns() + (uint64_t)wait_ms * 1000000ull;
		if (wait_interrupt(in, tid, deadline, NULL) == 1)
			ptrace(PTRACE_DETACH, tid, 0, 0);
		in->seized = 0;
	}
	if (in->pidfd >= 0)
		close(in->pidfd);
	in->pidfd = -1;
}
