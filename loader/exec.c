/* SPDX-License-Identifier: MIT */
/*
 * A managed program's execve runs managed too (see exec.h).
 *
 * The pager learns of an execve from its seccomp notification, while the
 * calling thread waits in it.  It attaches to the thread (PTRACE_SEIZE:
 * no signal, the thread keeps running), asks it to stop at its next
 * return to user mode (PTRACE_INTERRUPT), and lets the kernel do the call
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE).  Two outcomes:
 *
 *  - the exec fails: the thread returns with the kernel's errno and stops
 *    for the interrupt; we let go (PTRACE_DETACH), nothing else changed;
 *  - it succeeds: the thread stops at PTRACE_EVENT_EXEC, the new image
 *    loaded but not one of its instructions run.  Unless the kernel made
 *    the image privileged (AT_SECURE), we write an argument vector for
 *    the helper below its stack pointer — the helper's mark, the tree's
 *    page, the program the kernel chose (/proc/PID/exe: interpreters of
 *    #! scripts and binfmt handlers already applied), its AT_EXECFN, then
 *    the program's own argv — and point its first instruction at a
 *    `syscall` of the vDSO with execve's registers.  Its environment is
 *    the program's own, on its stack.  When that exec succeeds too we let
 *    go: the helper starts a pager sharing the new address space and jumps
 *    into the program, at the same pid.  If it fails, the registers the
 *    kernel gave the program come back and it runs natively.
 *
 * Signals that come while we are attached are passed on as they stop the
 * thread.  A group stop meanwhile makes us let go (the exec runs natively
 * if it was not done).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader/exec.h"
#include "prim.h"

/* The code segment of 64-bit user mode on x86-64. */
#define USER64_CS 0x33

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

static int helper = -1, tree = -1;
static atomic_ulong n_managed, n_native;

void exec_set_helper(int helper_fd, int tree_fd)
{
	helper = helper_fd;
	tree = tree_fd;
}

int exec_helper(void)
{
	return helper;
}

bool exec_keeps_fd(int fd)
{
	return fd >= 0 && (fd == helper || fd == tree);
}

void exec_counts(unsigned long *managed, unsigned long *native)
{
	*managed = atomic_load(&n_managed);
	*native = atomic_load(&n_native);
}

/* Whether pid still runs (not gone, not a zombie). */
static bool alive(pid_t pid)
{
	char state;
	pid_t ppid;

	return !prim_proc_stat(pid, &state, &ppid) && state != 'Z' && state != 'X';
}

/*
 * The next ptrace stop of the thread we follow: tid until its exec, which
 * makes it tgid when tid was not the leader.  Only trapped stops are
 * collected (an exit of a child of ours stays for whoever waits for it).
 * Returns the wait status, with *who the id it came under; 0 if the
 * thread is gone.
 */
static int next_stop(pid_t tid, pid_t tgid, pid_t *who)
{
	long ns = 20000;

	for (;;) {
		pid_t ids[2] = { tid, tgid };
		for (int i = 0; i < (tid == tgid ? 1 : 2); i++) {
			siginfo_t si;
			memset(&si, 0, sizeof si);
			if (waitid(P_PID, (id_t)ids[i], &si,
				   WSTOPPED | WNOHANG | WNOWAIT | __WALL) ||
			    si.si_pid != ids[i] || si.si_code != CLD_TRAPPED)
				continue;
			memset(&si, 0, sizeof si);
			if (waitid(P_PID, (id_t)ids[i], &si, WSTOPPED | WNOHANG | __WALL) ||
			    si.si_pid != ids[i])
				continue;
			*who = ids[i];
			return (si.si_status << 8) | 0x7f;
		}
		if (!alive(tid) && !alive(tgid))
			return 0;
		struct timespec ts = { 0, ns };
		nanosleep(&ts, NULL);
		if (ns < 1000000)
			ns *= 2;
	}
}

static int event_of(int st)
{
	return st >> 16;
}

/* A stop that is not ours (a signal to deliver): the signal to pass on,
 * or 0. */
static int signal_of(int st)
{
	int sig = WSTOPSIG(st);

	if (event_of(st) || sig == (SIGTRAP | 0x80))
		return 0;
	return sig;
}

/* ---- the new image, stopped at its exec ---- */

struct image {
	pid_t pid;
	int mem;                  /* /proc/PID/mem */
	struct user_regs_struct regs;  /* at the exec event */
	struct user_regs_struct helper; /* the helper's execve */
	uint64_t vdso, execfn;
	bool secure;
};

static int read_auxv(struct image *im)
{
	char path[64];
	uint64_t av[2 * 64];

	snprintf(path, sizeof path, "/proc/%d/auxv", im->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, av, sizeof av);
	close(fd);
	if (n <= 0)
		return -EIO;
	for (ssize_t i = 0; i + 1 < n / 8; i += 2) {
		if (av[i] == AT_SYSINFO_EHDR)
			im->vdso = av[i + 1];
		else if (av[i] == AT_EXECFN)
			im->execfn = av[i + 1];
		else if (av[i] == AT_SECURE)
			im->secure = av[i + 1] != 0;
	}
	return 0;
}

/* The address of a `syscall` instruction in the vDSO, or 0. */
static uint64_t find_syscall(const struct image *im)
{
	unsigned char buf[16384];

	if (!im->vdso)
		return 0;
	ssize_t n = pread(im->mem, buf, sizeof buf, (off_t)im->vdso);
	if (n <= 0) /* a one-page vDSO: try its first page alone */
		n = pread(im->mem, buf, 4096, (off_t)im->vdso);
	for (ssize_t i = 0; i + 1 < n; i++)
		if (buf[i] == 0x0f && buf[i + 1] == 0x05)
			return im->vdso + (uint64_t)i;
	return 0;
}

/* Count the pointers of a NULL-ended vector at addr, at most max. */
static long count_vec(const struct image *im, uint64_t addr, long max)
{
	for (long n = 0; n <= max; n++) {
		uint64_t p;
		if (pread(im->mem, &p, 8, (off_t)(addr + 8 * (uint64_t)n)) != 8)
			return -EFAULT;
		if (!p)
			return n;
	}
	return -E2BIG;
}

/*
 * Build the helper's execve in the stopped image: strings and vectors
 * below its stack pointer, registers at a vDSO `syscall`.  0 or -errno
 * (the image untouched but its unused stack).
 */
static int aim_at_helper(struct image *im, pid_t pager)
{
	char hpath[64], tpath[64], exe[PATH_MAX];
	char epath[64];

	uint64_t sys = find_syscall(im);
	if (!sys)
		return -ENOSYS;
	snprintf(epath, sizeof epath, "/proc/%d/exe", im->pid);
	ssize_t el = readlink(epath, exe, sizeof exe - 1);
	if (el <= 0 || el >= (ssize_t)sizeof exe - 1)
		return -ENOENT;
	exe[el] = 0;
	/* The helper opens the program by its path: a program whose file
	 * is gone already runs natively.  (One replaced at that path between
	 * the exec and the helper's open would be run in its place: a window
	 * of a few milliseconds.) */
	struct stat now, ran;
	if ((el > 10 && !strcmp(exe + el - 10, " (deleted)")) || stat(exe, &now) ||
	    stat(epath, &ran) || now.st_dev != ran.st_dev || now.st_ino != ran.st_ino)
		return -ENOENT;
	snprintf(hpath, sizeof hpath, "/proc/%d/fd/%d", pager, helper);
	snprintf(tpath, sizeof tpath, "/proc/%d/fd/%d", pager, tree);

	uint64_t sp = im->regs.rsp, argc;
	if (pread(im->mem, &argc, 8, (off_t)sp) != 8 || argc > (1u << 20))
		return -EFAULT;
	uint64_t argv = sp + 8, envp = argv + 8 * (argc + 1);
	long envc = count_vec(im, envp, 1 << 20);
	if (envc < 0)
		return (int)envc;

	/* Below the stack pointer (the kernel leaves 128 KiB of the stack
	 * mapped there): the strings, then the helper's argv, then its
	 * envp (the program's pointers, copied). */
	const char *mine[] = { EXEC_MARK, tpath, exe };
	size_t slen = 0;
	for (int i = 0; i < 3; i++)
		slen += strlen(mine[i]) + 1;
	size_t nargv = 4 + argc + 1, nenvp = (size_t)envc + 1;
	size_t total = slen + 8 * (nargv + nenvp) + 64;
	if (total > (96u << 10))
		return -E2BIG;
	uint64_t base = (sp - 4096 - total) & ~(uint64_t)15;
	char *buf = calloc(1, total);
	if (!buf)
		return -ENOMEM;
	uint64_t *vec = (uint64_t *)buf; /* argv, then envp */
	char *str = buf + 8 * (nargv + nenvp);
	uint64_t at = base + 8 * (nargv + nenvp);
	size_t k = 0;
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(mine[i]) + 1;
		memcpy(str, mine[i], l);
		vec[k++] = at;
		str += l;
		at += l;
	}
	vec[k++] = im->execfn ? im->execfn : 0;
	int rc = 0;
	if (!im->execfn)
		rc = -EINVAL;
	if (!rc && pread(im->mem, vec + k, 8 * (argc + 1), (off_t)argv) !=
			   (ssize_t)(8 * (argc + 1)))
		rc = -EFAULT;
	k += argc + 1;
	if (!rc && pread(im->mem, vec + k, 8 * nenvp, (off_t)envp) != (ssize_t)(8 * nenvp))
		rc = -EFAULT;
	if (!rc && pwrite(im->mem, buf, total - 64, (off_t)base) != (ssize_t)(total - 64))
		rc = -EFAULT;
	free(buf);
	if (rc)
		return rc;

	struct user_regs_struct *r = &im->helper;
	*r = im->regs;
	r->rip = sys;
	r->rsi = base;
	r->rdx = base + 8 * nargv;
	r->r10 = EXEC_MAGIC;
	/* The helper's path, below the rest; the stack pointer below it. */
	uint64_t hp = (base - 256) & ~(uint64_t)15;
	if (pwrite(im->mem, hpath, strlen(hpath) + 1, (off_t)hp) !=
	    (ssize_t)(strlen(hpath) + 1))
		return -EFAULT;
	r->rdi = hp;
	r->rsp = hp;
	return 0;
}

/*
 * Run the helper's exec in the image stopped at its own exec event: the
 * kernel's execve first returns (its syscall-exit stop: the registers the
 * program starts with, which we keep, and replace with the helper's
 * execve); then the helper's exec enters, and either reaches its exec
 * event (done: let go) or returns (it failed: the program's registers
 * back, let go: it runs natively).
 */
static enum exec_result run_helper(struct image *im)
{
	enum { RETURNING, ENTERING, EXECUTING } phase = RETURNING;
	pid_t who;

	if (ptrace(PTRACE_SYSCALL, im->pid, 0, 0))
		return EXEC_GONE;
	for (;;) {
		int st = next_stop(im->pid, im->pid, &who);
		if (!st)
			return EXEC_GONE;
		if (event_of(st) == PTRACE_EVENT_EXEC && phase == EXECUTING) {
			ptrace(PTRACE_DETACH, im->pid, 0, 0);
			return EXEC_MANAGED;
		}
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			if (phase == RETURNING) {
				struct user_regs_struct r;
				if (ptrace(PTRACE_GETREGS, im->pid, 0, &r))
					return EXEC_GONE;
				im->regs = r;
				im->helper.rax = SYS_execve;
				im->helper.orig_rax = r.orig_rax;
				im->helper.eflags = r.eflags;
				if (ptrace(PTRACE_SETREGS, im->pid, 0, &im->helper))
					return EXEC_GONE;
				phase = ENTERING;
			} else if (phase == ENTERING) {
				phase = EXECUTING;
			} else {
				/* The helper's exec returned: it failed. */
				ptrace(PTRACE_SETREGS, im->pid, 0, &im->regs);
				ptrace(PTRACE_DETACH, im->pid, 0, 0);
				return EXEC_NATIVE;
			}
		} else if (event_of(st) == PTRACE_EVENT_STOP && WSTOPSIG(st) != SIGTRAP) {
			/* A group stop: let go, the program runs natively
			 * once continued. */
			if (phase != RETURNING)
				ptrace(PTRACE_SETREGS, im->pid, 0, &im->regs);
			ptrace(PTRACE_DETACH, im->pid, 0, 0);
			return EXEC_NATIVE;
		}
		int sig = signal_of(st);
		if (phase != RETURNING &&
		    (sig == SIGILL || sig == SIGSEGV || sig == SIGBUS)) {
			/* Our instruction faulted: the program's registers
			 * back, the signal dropped; it runs natively. */
			ptrace(PTRACE_SETREGS, im->pid, 0, &im->regs);
			ptrace(PTRACE_DETACH, im->pid, 0, 0);
			return EXEC_NATIVE;
		}
		if (ptrace(PTRACE_SYSCALL, im->pid, 0, (void *)(long)sig))
			return EXEC_GONE;
	}
}

/* The kernel's exec succeeded; pid stopped at its exec event. */
static enum exec_result exec_done(pid_t pid)
{
	struct image im = { .pid = pid, .mem = -1 };
	char path[64];
	enum exec_result res = EXEC_NATIVE;

	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	im.mem = open(path, O_RDWR | O_CLOEXEC);
	/* (A 32-bit image has no `syscall` to point at: it runs natively.) */
	if (im.mem >= 0 && !ptrace(PTRACE_GETREGS, pid, 0, &im.regs) &&
	    im.regs.cs == USER64_CS && !read_auxv(&im) && !im.secure &&
	    !aim_at_helper(&im, getpid()))
		res = run_helper(&im);
	else
		ptrace(PTRACE_DETACH, pid, 0, 0);
	if (im.mem >= 0)
		close(im.mem);
	return res;
}

enum exec_result exec_serve(int listener, const struct seccomp_notif *req)
{
	struct seccomp_notif_resp resp = {
		.id = req->id,
		.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE,
	};
	pid_t tid = (pid_t)req->pid, tgid = prim_tgid_of(tid), who;
	bool traced = helper >= 0 && tree >= 0 &&
		      ptrace(PTRACE_SEIZE, tid, 0,
			     PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD |
				     PTRACE_O_EXITKILL) == 0;

	if (traced && ptrace(PTRACE_INTERRUPT, tid, 0, 0)) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		traced = false;
	}
	/* The pid we looked at is the caller's only while it still waits. */
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &resp.id) ||
	    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp)) {
		if (traced)
			ptrace(PTRACE_DETACH, tid, 0, 0);
		return EXEC_GONE;
	}
	if (!traced) {
		atomic_fetch_add(&n_native, 1);
		return EXEC_CONTINUED;
	}
	for (;;) {
		int st = next_stop(tid, tgid, &who);
		if (!st)
			return EXEC_GONE;
		if (event_of(st) == PTRACE_EVENT_EXEC) {
			enum exec_result r = exec_done(who);
			atomic_fetch_add(r == EXEC_MANAGED ? &n_managed : &n_native, 1);
			return r;
		}
		if (event_of(st) == PTRACE_EVENT_STOP) {
			/* Our interrupt: the exec returned, failed.  (Or a
			 * group stop: it stays stopped without us.) */
			ptrace(PTRACE_DETACH, who, 0, 0);
			return EXEC_FAILED;
		}
		if (ptrace(PTRACE_CONT, who, 0, (void *)(long)signal_of(st)))
			return EXEC_GONE;
	}
}
