/* SPDX-License-Identifier: MIT */
/*
 * The program's memory system calls, through seccomp user notification.
 *
 * The filter (installed by the trampoline in the program's process, and
 * inherited by everything it forks or executes) sends to the pager: munmap,
 * mremap, mmap of private memory, madvise(DONTNEED/FREE), fork-like clones,
 * and a brk below the program's first break (brk is otherwise the
 * kernel's: host.c).  The pager performs the call itself — it shares the
 * address space — on the managed regions, and answers with the kernel's
 * result; anything it does not manage it lets the kernel do (CONTINUE).
 *
 * Notifications may come from processes with another address space: a
 * forked child (whose regions a child vm serves: its discards and moves are
 * prepared, then done by the kernel), or a program the child executed
 * (nothing of ours: CONTINUE).  Processes are told apart with kcmp(KCMP_VM).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compat.h"
#include "fault.h"
#include "fork.h"
#include "inject.h"
#include "loader/exec.h"
#include "loader/host.h"
#include "mmap.h"
#include "pagelife.h"
#include "prim.h"
#include "vm.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

#define ARG(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#define LD(off) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))

/*
 * The filter.  brk is the kernel's (see lp_seccomp_build), except a brk
 * below the program's first break, which would otherwise let the kernel
 * shrink a break that is not the program's (without CAP_SYS_RESOURCE the
 * address space keeps the pager's break): that one comes to the pager.
 */
enum {
	L_BRK = 20, L_MMAP = 29, L_MADV = 35, L_CLONE = 41, L_EXEC = 44,
	L_NOTIFY = 48, L_ALLOW = 49, L_LEN
};
#define TO(label, at) ((label) - (at) - 1)
#define ARG_LO(n) ARG(n)
#define ARG_HI(n) (ARG(n) + 4)

static struct sock_filter filter[L_LEN] = {
	/* 0 */ LD(offsetof(struct seccomp_data, arch)),
	/* 1 */ JEQ(AUDIT_ARCH_X86_64, 0, TO(L_ALLOW, 1)),
	/* 2 */ LD(offsetof(struct seccomp_data, nr)),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, TO(L_ALLOW, 3), 0),
	/* 4 */ JEQ(SYS_brk, TO(L_BRK, 4), 0),
	/* 5 */ JEQ(SYS_munmap, TO(L_NOTIFY, 5), 0),
	/* 6 */ JEQ(SYS_mremap, TO(L_NOTIFY, 6), 0),
	/* 7 */ JEQ(SYS_fork, TO(L_NOTIFY, 7), 0),
	/* 8 */ JEQ(SYS_clone3, TO(L_NOTIFY, 8), 0),
	/* 9 */ JEQ(SYS_mmap, TO(L_MMAP, 9), 0),
	/* 10 */ JEQ(SYS_madvise, TO(L_MADV, 10), 0),
	/* 11 */ JEQ(SYS_clone, TO(L_CLONE, 11), 0),
	/* a thread's tid word and its exit (tid words, below) */
	/* 12 */ JEQ(SYS_exit, TO(L_NOTIFY, 12), 0),
	/* 13 */ JEQ(SYS_set_tid_address, TO(L_NOTIFY, 13), 0),
	/* executing a program (exec.c) */
	/* 14 */ JEQ(SYS_execve, TO(L_EXEC, 14), 0),
	/* 15 */ JEQ(SYS_execveat, TO(L_NOTIFY, 15), 0),
	/* locking memory (serve_own: vm_mlock; serve_child) */
	/* 16 */ JEQ(SYS_mlock, TO(L_NOTIFY, 16), 0),
	/* 17 */ JEQ(SYS_mlock2, TO(L_NOTIFY, 17), 0),
	/* 18 */ JEQ(SYS_mlockall, TO(L_NOTIFY, 18), 0),
	/* 19 */ BPF_JUMP(BPF_JMP | BPF_JA, TO(L_ALLOW, 19), 0, 0),
	/* brk: 0 or at least the first break (filled in by lp_seccomp_build
	 * at 25, 26 and 28) is the kernel's */
	/* 20 */ LD(ARG_LO(0)),
	/* 21 */ JEQ(0, 0, TO(24, 21)),
	/* 22 */ LD(ARG_HI(0)),
	/* 23 */ JEQ(0, TO(L_ALLOW, 23), 0),
	/* 24 */ LD(ARG_HI(0)),
	/* 25 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0, TO(L_ALLOW, 25), 0),
	/* 26 */ JEQ(0, 0, TO(L_NOTIFY, 26)),
	/* 27 */ LD(ARG_LO(0)),
	/* 28 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0, TO(L_ALLOW, 28), TO(L_NOTIFY, 28)),
	/* mmap: private mappings (MAP_TYPE == MAP_PRIVATE), and any other
	 * with MAP_FIXED (it may replace managed memory: host.c) */
	/* 29 */ LD(ARG(3)),
	/* 30 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
	/* 31 */ JEQ(MAP_PRIVATE, TO(L_NOTIFY, 31), 0),
	/* 32 */ LD(ARG(3)),
	/* 33 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, MAP_FIXED),
	/* 34 */ JEQ(0, TO(L_ALLOW, 34), TO(L_NOTIFY, 34)),
	/* madvise: the advice that drops pages, and MADV_WIPEONFORK (fork.c
	 * then reads which mappings the children get zeros in) */
	/* 35 */ LD(ARG(2)),
	/* 36 */ JEQ(MADV_DONTNEED, TO(L_NOTIFY, 36), 0),
	/* 37 */ JEQ(MADV_FREE, TO(L_NOTIFY, 37), 0),
	/* 38 */ JEQ(MADV_DONTNEED_LOCKED, TO(L_NOTIFY, 38), 0),
	/* 39 */ JEQ(MADV_WIPEONFORK, TO(L_NOTIFY, 39), 0),
	/* 40 */ BPF_JUMP(BPF_JMP | BPF_JA, TO(L_ALLOW, 40), 0, 0),
	/* clone: fork-like (no CLONE_VM), or a thread with a tid word */
	/* 41 */ LD(ARG(0)),
	/* 42 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, CLONE_VM | CLONE_CHILD_CLEARTID),
	/* 43 */ JEQ(CLONE_VM, TO(L_ALLOW, 43), TO(L_NOTIFY, 43)),
	/* execve: the helper's own (exec.c: its unused fourth argument holds
	 * EXEC_MAGIC) is the kernel's; any other comes to us */
	/* 44 */ LD(ARG_LO(3)),
	/* 45 */ JEQ((uint32_t)EXEC_MAGIC, 0, TO(L_NOTIFY, 45)),
	/* 46 */ LD(ARG_HI(3)),
	/* 47 */ JEQ((uint32_t)(EXEC_MAGIC >> 32), TO(L_ALLOW, 47), TO(L_NOTIFY, 47)),
	/* 48 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	/* 49 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

static const struct sock_fprog fprog = {
	.len = L_LEN,
	.filter = filter,
};

const struct sock_fprog *lp_seccomp_build(uintptr_t first_brk)
{
	/* 25: hi > first's hi: allow; 26: hi == first's hi: compare lo;
	 * 28: lo >= first's lo: allow. */
	filter[25].k = (uint32_t)((uint64_t)first_brk >> 32);
	filter[26].k = filter[25].k;
	filter[28].k = (uint32_t)first_brk;
	return &fprog;
}

static bool same_mm(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0;
}

/* Whether a and b share a table of descriptors (a pager's threads: no
 * other process shares a pager's). */
static bool same_files(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

static bool same_mm_as(pid_t pid, void *tid)
{
	return same_mm(pid, *(const pid_t *)tid);
}

/* The vm serving tid's address space (ours, or a forked child's), or
 * NULL.  Under H->lock. */
static struct lp_vm *find_vm(struct lp_vm *vm, pid_t tid)
{
	/* (vm->owner: our pid, without a getpid() per notification.) */
	if (same_mm(vm->owner, tid))
		return vm;
	return vm_find_kid(vm, same_mm_as, &tid);
}

/* ---- the tree's forked children (host.h: struct tree_kid) ---- */

/* The slot that published pid as a child it serves, or -1. */
static int tree_kid_slot(struct lp_tree *T, pid_t pid)
{
	for (int k = 0; k < TREE_KIDS; k++) {
		if (atomic_load(&T->forked[k].pid) != pid)
			continue;
		int i = atomic_load(&T->forked[k].slot);
		if (i >= 0 && i < TREE_SLOTS && atomic_load(&T->live[i]))
			return i;
	}
	return -1;
}

/* Publish pid as a child our pager serves (nothing if the table is full:
 * it is routed by its ancestry). */
static void tree_kid_add(struct lp_host *H, pid_t pid)
{
	struct lp_tree *T = H->tree;

	if (!T || !H->own_parent || H->slot < 0 || pid <= 0)
		return;
	for (int k = 0; k < TREE_KIDS; k++) {
		int free_ = 0;
		if (!atomic_compare_exchange_strong(&T->forked[k].pid, &free_, -1))
			continue;
		atomic_store(&T->forked[k].slot, H->slot);
		atomic_store(&T->forked[k].pid, pid);
		return;
	}
}

void tree_kids_sweep(struct lp_host *H, bool all)
{
	struct lp_tree *T = H->tree;

	if (!T || !H->own_parent || H->slot < 0)
		return;
	for (int k = 0; k < TREE_KIDS; k++) {
		pid_t pid = atomic_load(&T->forked[k].pid);
		if (pid <= 0 || atomic_load(&T->forked[k].slot) != H->slot)
			continue;
		bool gone = all;
		if (!gone) {
			pthread_mutex_lock(&H->lock);
			struct lp_vm *vm = find_vm(H->vm, pid);
			gone = !vm || vm == H->vm;
			pthread_mutex_unlock(&H->lock);
		}
		if (gone)
			atomic_compare_exchange_strong(&T->forked[k].pid, &pid, 0);
	}
}

/* Whether notification id is still pending: its caller is still blocked
 * in the call, so the pid it names is still that caller.  Checked after
 * anything read about the caller (its memory, its descriptors, /proc)
 * and before acting on it, as seccomp_unotify(2) prescribes: the pid may
 * have been reused meanwhile. */
static bool notif_valid(const struct lp_host *H, __u64 id)
{
	return ioctl(H->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Copy len bytes at the caller's address addr: 0, -EFAULT (not mapped,
 * or not readable), or -ESRCH (the caller is gone).  The copy is made
 * by the kernel (process_vm_readv), never by dereferencing the caller's
 * pointer here: the address space may be ours, and a bad pointer must
 * fail the call, not kill the pager. */
static int read_caller(const struct lp_host *H, const struct seccomp_notif *req,
		       void *dst, uint64_t addr, size_t len)
{
	struct iovec l = { dst, len };
	struct iovec r = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_readv((pid_t)req->pid, &l, 1, &r, 1, 0);

	if (n < 0 && errno != EFAULT)
		return -ESRCH;
	if (n != (ssize_t)len)
		return -EFAULT;
	return notif_valid(H, req->id) ? 0 : -ESRCH;
}

/* Our own descriptor for fd of the caller's process, or -errno (-ESRCH:
 * the caller is gone). */
static int steal_fd(const struct lp_host *H, const struct seccomp_notif *req, int fd)
{
	int pfd = (int)syscall(SYS_pidfd_open, prim_tgid_of((pid_t)req->pid), 0);

	if (pfd < 0)
		return -errno;
	/* The pidfd names the caller's process only if the caller was still
	 * waiting after it was opened (else the pid may be another's). */
	if (!notif_valid(H, req->id)) {
		close(pfd);
		return -ESRCH;
	}
	int mine = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	int rc = mine < 0 ? -errno : mine;
	close(pfd);
	if (rc >= 0)
		(void)fcntl(rc, F_SETFD, FD_CLOEXEC);
	return rc;
}

/* Whether an mmap with these flags replaces what is at its address. */
static bool replaces(uint64_t flags)
{
	return (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE);
}

/*
 * mmap of private memory.  1: answered in *res; 0: let the kernel do it.
 * A file mapping is checked as the kernel's do_mmap checks it: the
 * descriptor must be open for reading (O_PATH: EBADF, O_WRONLY: EACCES),
 * and PROT_EXEC is refused on a noexec mount (EPERM).
 */
static int mmap_ours(struct lp_host *H, const struct seccomp_notif *req, long *res)
{
	const __u64 *a = req->data.args;
	int prot = (int)a[2], flags = (int)a[3], fd = (int)a[4];
	struct lp_file *file = NULL;

	if (flags & (MAP_HUGETLB | MAP_LOCKED | MAP_GROWSDOWN) ||
	    prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return 0;
	if (!(flags & MAP_ANONYMOUS)) {
		struct stat st;
		struct statvfs vfs;
		int mine = steal_fd(H, req, fd);
		if (mine < 0)
			return 0; /* the kernel says what is wrong with fd */
		int fl = fcntl(mine, F_GETFL);
		if (fl < 0 || fstat(mine, &st) < 0 ||
		    (!(fl & O_PATH) && (fl & O_ACCMODE) == O_WRONLY)) {
			close(mine);
			return 0;
		}
		if (fl & O_PATH) {
			close(mine);
			*res = -EBADF; /* the kernel's fget refuses O_PATH */
			return 1;
		}
		if ((prot & PROT_EXEC) && fstatvfs(mine, &vfs) == 0 &&
		    (vfs.f_flag & ST_NOEXEC)) {
			close(mine);
			*res = -EPERM;
			return 1;
		}
		if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
		    minor(st.st_rdev) == 5) {
			close(mine); /* /dev/zero: anonymous memory */
		} else if (S_ISREG(st.st_mode)) {
			file = file_new(mine, (uint64_t)st.st_size);
			if (!file)
				return 0;
		} else {
			close(mine);
			return 0;
		}
	}
	*res = vm_mmap(H->vm, a[0], a[1], prot, flags, file, a[5], NULL);
	return 1;
}

/* An mmap of the program's.  One the kernel makes (shared, locked, huge,
 * a device...) with MAP_FIXED over managed memory replaces it: the pages
 * there go first, as the kernel would unmap them, or our table would go
 * on paging what is now another mapping. */
static int do_mmap(struct lp_host *H, const struct seccomp_notif *req, long *res)
{
	const __u64 *a = req->data.args;

	if ((a[3] & 0xf) == MAP_PRIVATE && mmap_ours(H, req, res))
		return 1;
	if (replaces(a[3]) && !(a[0] & (LP_PG - 1)) && vm_overlaps(H->vm, a[0], a[1]))
		(void)vm_munmap(H->vm, a[0], a[1]);
	return 0;
}

/* clone3's struct: the kernel's bounds on its size (clone3(2)). */
#define CLONE_ARGS_MIN 64

/*
 * Whether a fork-like call makes a new address space: 1 yes, 0 no, or
 * -errno to answer the call with; *ctid: the new thread's tid word
 * (CLONE_CHILD_CLEARTID), or 0.  clone3's flags are read from the
 * caller's memory; a size or a pointer the kernel would refuse is
 * answered as the kernel answers it (E2BIG, EINVAL, EFAULT).
 */
static int is_fork(const struct lp_host *H, const struct seccomp_notif *req,
		   uint64_t *ctid)
{
	uint64_t flags = 0;

	*ctid = 0;
	if (req->data.nr == SYS_fork)
		return 1;
	if (req->data.nr == SYS_clone) {
		if (req->data.args[0] & CLONE_CHILD_CLEARTID)
			*ctid = req->data.args[3];
		return !(req->data.args[0] & CLONE_VM);
	}
	uint64_t size = req->data.args[1];
	if (size > (uint64_t)sysconf(_SC_PAGESIZE))
		return -E2BIG;
	if (size < CLONE_ARGS_MIN)
		return -EINVAL;
	/* All of it, as the kernel copies it: a struct that is only partly
	 * readable is EFAULT, not a fork. */
	uint64_t args[4096 / sizeof(uint64_t)];
	int rc = read_caller(H, req, args, req->data.args[0], (size_t)size);
	if (rc)
		return rc;
	flags = args[0];
	if (flags & CLONE_CHILD_CLEARTID)
		*ctid = args[2]; /* clone_args.child_tid */
	return !(flags & CLONE_VM);
}

/* The children of thread tid, as listed by /proc: up to n of them. */
static size_t children_of(pid_t tid, pid_t **out)
{
	char path[96];
	size_t k = 0, cap = 0;

	*out = NULL;
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", prim_tgid_of(tid), tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int pid;
	while (fscanf(f, "%d", &pid) == 1) {
		if (k == cap) {
			pid_t *more = realloc(*out, (cap = cap ? 2 * cap : 64) * sizeof *more);
			if (!more)
				break; /* (what was read: a new child may go unseen) */
			*out = more;
		}
		(*out)[k++] = pid;
	}
	fclose(f);
	return k;
}

static int send_resp(struct lp_host *H, struct seccomp_notif_resp *resp)
{
	if (ioctl(H->listener, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0)
		return -errno; /* ENOENT: the caller went away meanwhile */
	return 0;
}

struct notif_item {
	struct notif_item *next;
	struct seccomp_notif req; /* sz.seccomp_notif bytes */
};

struct notif_queue {
	struct lp_host *H;
	size_t resp_size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct notif_item *head, **tail;
	bool stop;
	atomic_bool stop_recv; /* receivers: stop */
	/* Fills the tree's rings (tree_pass): the serving thread and, for
	 * calls they pass at once, the receivers. */
	pthread_mutex_t pass_lock;
	/* The threads' tid words (below); under H->lock. */
	struct tid_word *tw;
	size_t ntw, captw;
	size_t npinned;
	/* A forked child's thread held in its mmap or mremap until the
	 * call returns (hold_call()), and the call; the serving thread's
	 * alone (the tracer). */
	pid_t held;
	struct seccomp_data held_call;
	bool held_seized; /* seized and interrupted: its stop is awaited */
	bool held_late;   /* held after our evictor: the call's result lost */
	bool held_hand;   /* handed to our evictor (H->hand) */
	bool held_taken;  /* and adopted by it */
};

/*
 * Tid words.  A thread's exit clears its tid word and wakes the futex
 * there (CLONE_CHILD_CLEARTID, set_tid_address; pthread_join waits on it)
 * from the kernel's exit path, where a userfault is not allowed: it fails
 * at once, without a message, so a word whose page is not mapped (evicted,
 * parked by a reference sweep, being read in) or is write-protected loses
 * the write and the wake, and the join waits for ever.  So the filter
 * sends us each thread's word (clone, clone3, set_tid_address) and each
 * thread's exit: there the word's page is pinned (vm_pin: resident,
 * writable, passed by by the evictor) before the thread goes on, and let
 * go once the thread is gone (the clear comes before: mm_release).  A
 * word from clone is matched with its thread by the id the kernel writes
 * there (CLONE_PARENT_SETTID on the same word, as glibc and musl do).
 * Our own address space's threads only; from the serving thread, under
 * H->lock.
 */
#define TW_MAX 4096   /* words remembered at most */
#define TW_MISSES 8   /* reads of a word that held no id before it goes */

struct tid_word {
	uintptr_t addr;
	pid_t tid;      /* 0: not known yet (read from the word) */
	uint8_t misses; /* reads that found no id there */
	bool pinned;    /* for its thread's exit */
};

static void tw_drop(struct notif_queue *q, size_t i)
{
	q->tw[i] = q->tw[--q->ntw];
}

/* Thread tid (0: not known yet) has its tid word at addr. */
static void tw_remember(struct notif_queue *q, uintptr_t addr, pid_t tid)
{
	/* A word reused (glibc's cached stacks) or a thread's new word
	 * replaces the old one; a word pinned stays until its thread is
	 * gone. */
	for (size_t i = q->ntw; i-- > 0;)
		if (!q->tw[i].pinned &&
		    (q->tw[i].addr == addr || (tid && q->tw[i].tid == tid)))
			tw_drop(q, i);
	if (q->ntw == q->captw) {
		size_t cap = q->captw ? 2 * q->captw : 64;
		struct tid_word *v = cap <= TW_MAX ? realloc(q->tw, cap * sizeof(*v)) : NULL;
		if (v) {
			q->tw = v;
			q->captw = cap;
		}
	}
	for (size_t i = 0; i < q->ntw && q->ntw == q->captw; i++)
		if (!q->tw[i].pinned)
			tw_drop(q, i); /* full: forget one */
	if (q->ntw < q->captw)
		q->tw[q->ntw++] = (struct tid_word){ .addr = addr, .tid = tid };
}

/* The index of thread tid's word, or -1; words whose thread is not known
 * yet are read (process_vm_readv: a page that is not resident is faulted
 * in by the handlers, never by this thread). */
static ssize_t tw_find(struct notif_queue *q, pid_t tid)
{
	for (size_t i = 0; i < q->ntw; i++)
		if (q->tw[i].tid == tid)
			return (ssize_t)i;
	ssize_t found = -1;
	for (size_t i = q->ntw; i-- > 0;) {
		struct tid_word *w = &q->tw[i];
		if (w->tid)
			continue;
		int v = 0;
		struct iovec l = { &v, sizeof v };
		struct iovec r = { (void *)w->addr, sizeof v };
		if (process_vm_readv(q->H->pid, &l, 1, &r, 1, 0) == sizeof v && v > 0)
			w->tid = v;
		else if (++w->misses >= TW_MISSES)
			tw_drop(q, i);
		if (found < 0 && i < q->ntw && q->tw[i].tid == tid)
			found = (ssize_t)i;
	}
	return found;
}

/* Thread tid is about to exit: pin its word's page for the clear. */
static void tw_exit(struct notif_queue *q, pid_t tid)
{
	ssize_t i = tw_find(q, tid);

	if (i < 0 || q->tw[i].pinned || !q->H->h)
		return;
	if (vm_pin(q->H->h, q->tw[i].addr) == 0) {
		q->tw[i].pinned = true;
		q->npinned++;
	} else { /* not managed (the kernel's memory), or could not */
		tw_drop(q, (size_t)i);
	}
}

/* Let go of the words of the threads that are gone. */
static void tw_collect(struct notif_queue *q)
{
	for (size_t i = q->ntw; i-- > 0;) {
		struct tid_word *w = &q->tw[i];
		if (!w->pinned || syscall(SYS_tgkill, q->H->pid, w->tid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		uintptr_t page = w->addr & ~(LP_PG - 1);
		tw_drop(q, i);
		q->npinned--;
		bool shared = false;
		for (size_t j = 0; j < q->ntw && !shared; j++)
			shared = q->tw[j].pinned &&
				 (q->tw[j].addr & ~(LP_PG - 1)) == page;
		if (!shared)
			vm_unpin(q->H->vm, page);
	}
}

/* Whether a notification from thread tid waits to be served. */
static bool queued_from(struct notif_queue *q, pid_t tid)
{
	bool found = false;

	pthread_mutex_lock(&q->lock);
	for (struct notif_item *it = q->head; it && !found; it = it->next)
		found = (pid_t)it->req.pid == tid;
	pthread_mutex_unlock(&q->lock);
	return found;
}

/* Whether thread tid has certainly left its fork-like call: it is gone,
 * or blocked in another system call.  A thread "running" may be copying
 * the address space in the kernel still: not known to have left. */
static bool left_fork(pid_t tid)
{
	char path[96];
	long nr = -1;

	snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", prim_tgid_of(tid), tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true; /* gone */
	bool left = fscanf(f, "%ld", &nr) == 1 && nr != SYS_clone &&
		    nr != SYS_fork && nr != SYS_clone3;
	fclose(f);
	return left;
}

/* The same, or tid has asked us again (its next call waits in our queue:
 * blocked in a fork-like call again, which left_fork cannot tell from the
 * one we let go). */
static bool out_of_fork(struct lp_host *H, pid_t tid)
{
	return (H->queue && queued_from(H->queue, tid)) || left_fork(tid);
}

/*
 * Wait for the fork event of a fork let go.  A fork can fail after it was
 * let go — a signal arrived (the kernel restarts it: a new notification
 * from the same thread), or a limit — and then no event comes: stop
 * waiting when the thread asks again or is seen in another call.
 */
static int wait_fork_event(struct lp_host *H, struct lp_vm *vm, uint64_t seen,
			   uint64_t seen_started, uint64_t seen_read, pid_t tid)
{
	/* (Looked at every 50 us: a fork restarted by a signal is back here
	 * within microseconds, and the sooner it is let go again the less
	 * likely the next tick of a timer restarts it again.) */
	for (int k = 0;; k++) {
		if (vm_wait_fork(vm, seen, 50) == 0)
			return 0;
		if (vm_fork_started(vm, seen_started))
			break; /* the child vm is being built: wait for it */
		if (k >= 40000)
			return -ETIMEDOUT;
		if ((H->queue && queued_from(H->queue, tid)) || (k % 20 == 19 && left_fork(tid))) {
			/* Out of the call: its event, if any, was read (the
			 * caller waits for that) and is taken a moment later.
			 * A fork a signal restarts (one pending when it
			 * begins) sends none, and must be let go at once: a
			 * timer firing while we wait restarted every one
			 * (1 to 10 ms timers: 50 forks never ended). */
			for (int j = 0; j < 1000 && !vm_fork_started(vm, seen_started); j++) {
				if (vm_fork_unread(vm, seen_read))
					return -ECHILD; /* failed: no event */
				usleep(20);
			}
			if (!vm_fork_started(vm, seen_started))
				return -ECHILD;
			break;
		}
	}
	/* A child vm is being built from our table: it must not change
	 * meanwhile, however long that takes. */
	for (int s = 0; s < 60; s++)
		if (vm_wait_fork(vm, seen, 1000000) == 0)
			return 0;
	return -ETIMEDOUT;
}

/* A message on the standard error of the process behind pidfd (ours is
 * /dev/null once the program runs), or on ours when that cannot be had. */
__attribute__((format(printf, 2, 3)))
static void say_on_stderr_of(int pidfd, const char *fmt, ...)
{
	int fd = pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pidfd, 2, 0) : -1;
	va_list ap;

	va_start(ap, fmt);
	vdprintf(fd >= 0 ? fd : 2, fmt, ap);
	va_end(ap);
	if (fd >= 0)
		close(fd);
}

/*
 * A forked child whose vm could not be built (the pager's memory is the
 * program's: RLIMIT_DATA): nobody can serve its memory, and its pages not
 * copied yet must never read as zeros.  Its userfaultfd (ufd) was kept
 * open, so its faults wait; it is killed, the reason said on its standard
 * error, and the userfaultfd closed only once it is dead.
 */
static void kill_unserved(pid_t pid, int ufd)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pfd >= 0)
		say_on_stderr_of(pfd, "vmrun: cannot serve the memory of a forked "
				      "child (pid %d): %s (the pager shares the "
				      "program's limits: ulimit -d); the child is "
				      "killed\n",
				 pid, strerror(ENOMEM));
	if (pfd >= 0 && syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) == 0) {
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		(void)poll(&p, 1, 1000); /* readable once it has exited */
	}
	if (pfd >= 0)
		close(pfd);
	close(ufd);
}

/*
 * A fork of a process whose memory vm serves.  The pages must hold still
 * while the kernel copies the page tables and while the child vm copies
 * ours: freeze, let the fork go, wait for its UFFD_EVENT_FORK to be served,
 * thaw.  Then find the child's pid, which the child vm needs to be found
 * again (its own memory calls) and tells it apart.
 */
/* A child of thread tid neither listed in before[nb] nor named for a
 * child vm of vm already, or 0. */
static pid_t new_child(struct lp_vm *vm, pid_t tid, const pid_t *before, size_t nb)
{
	pid_t *now, kid = 0;
	size_t nn = children_of(tid, &now);

	for (size_t i = 0; i < nn && !kid; i++) {
		bool old = false;
		for (size_t j = 0; j < nb && !old; j++)
			old = now[i] == before[j];
		if (!old && !vm_kid_named(vm, now[i]))
			kid = now[i];
	}
	free(now);
	return kid;
}

/* Name the child vm of fork event number seq after the child that thread
 * tid's fork made (before[nb]: tid's children before the fork), or kill
 * that child when its vm could not be made (unserved >= 0: the child's
 * userfaultfd, closed here). */
static void name_child(struct lp_host *H, struct lp_vm *vm, pid_t tid,
		       const pid_t *before, size_t nb, uint64_t seq, int unserved)
{
	/* The fork event comes from copying the address space, before the
	 * kernel gives the child its pid and links it into our caller's
	 * children: a caller preempted there (two CPUs, fifty busy children)
	 * lists it only milliseconds later.  Looked for until it is listed,
	 * or the caller was seen out of its fork (no longer "running" in it,
	 * which /proc cannot look into) before a listing without it (it was
	 * reaped, or the fork failed after the copy; a shell's
	 * next subshell, asking us already, waited half a second here for
	 * its last one's vm to see it gone), or its vm
	 * is gone, or 2 s.  The listing may also have missed an older child
	 * before the fork (/proc's children file skips entries while the
	 * list changes): a child some vm is named for already is not ours. */
	uint64_t t0 = prim_now_ns();
	for (unsigned tries = 0;; tries++) {
		bool left = tries >= 1 && out_of_fork(H, tid);
		pid_t kid = new_child(vm, tid, before, nb);
		if (kid > 0) {
			if (unserved >= 0) {
				kill_unserved(kid, unserved);
				return;
			}
			if (vm_name_kid(vm, seq, kid) == 0)
				tree_kid_add(H, kid);
			return;
		}
		if (left || (unserved < 0 && !vm_kid_unnamed(vm, seq)) ||
		    prim_now_ns() - t0 > 2000000000ull)
			break;
		usleep(tries < 20 ? 200 : 1000);
	}
	/* Gone already (it exited and was reaped): its vm finds out alone. */
	if (unserved >= 0)
		close(unserved);
}

static void do_fork(struct lp_host *H, struct lp_vm *vm,
		    const struct seccomp_notif *req,
		    struct seccomp_notif_resp *resp)
{
	pid_t *before;
	size_t nb = children_of(req->pid, &before);

	/* (The counts under the freeze: no other fork of this vm is served
	 * from here until the thaw, so the first event after them is ours,
	 * and its child vm the one named below.) */
	vm_freeze(vm);
	uint64_t seen, seen_started;
	vm_fork_counts(vm, &seen, &seen_started);
	uint64_t seen_read = vm_forks_read(vm);
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	int sent = send_resp(H, resp);
	/* No event comes when the fork fails before copying memory. */
	int rc = sent ? -ENOENT : wait_fork_event(H, vm, seen, seen_started, seen_read, req->pid);
	vm_thaw(vm);
	int unserved = vm_fork_unserved(vm);
	if (rc) {
		if (unserved >= 0)
			close(unserved);
		free(before);
		return;
	}
	name_child(H, vm, req->pid, before, nb, seen + 1, unserved);
	free(before);
}

/* What serving a notification decided. */
enum serve_how {
	SV_ANSWER,   /* answer with the result: the call was served here */
	SV_CONTINUE, /* let the kernel do the call */
	SV_DONE,     /* answered already, or the caller is gone: no answer */
	SV_EXEC,     /* an exec from an address space we serve: exec.c */
	SV_EXEC_OURS, /* the same, from the program itself */
};

/* A fork-like call (fork, clone, clone3) from an address space vm
 * serves. */
static enum serve_how serve_fork(struct lp_host *H, struct lp_vm *vm,
				 const struct seccomp_notif *req,
				 struct seccomp_notif_resp *resp, long *res)
{
	uint64_t ctid;
	int fork_like = is_fork(H, req, &ctid);

	if (fork_like == -ESRCH)
		return SV_DONE;
	if (fork_like > 0) {
		do_fork(H, vm, req, resp);
		return SV_DONE;
	}
	if (fork_like < 0) {
		*res = fork_like;
		return SV_ANSWER;
	}
	/* CLONE_VM: no new address space; a thread of ours has a tid word */
	if (ctid && vm == H->vm)
		tw_remember(H->queue, (uintptr_t)ctid, 0);
	return SV_CONTINUE;
}

/* A number from /proc/TID/status ("VmLck:", in KiB; "CapEff:", hex), 0
 * when there is none. */
static uint64_t status_field(pid_t tid, const char *key, int base)
{
	uint64_t v = 0;
	return prim_status_field(tid, key, base, &v) ? 0 : v;
}

/*
 * The kernel's checks of mlock and mlockall (mm/mlock.c), with the
 * caller's capability and RLIMIT_MEMLOCK: the pager makes the call with
 * its own, which a program that dropped privileges (setuid, a lower
 * limit) no longer has.  bytes: what the call would lock (mlockall:
 * MCL_CURRENT's whole address space, ours in it).  0 or -errno.
 */
static int lock_check(pid_t tid, uint64_t bytes)
{
	/* (/proc/TID/limits, not prlimit(): a caller that changed its uids
	 * refuses prlimit to a pager without CAP_SYS_RESOURCE) */
	char path[64], line[256], cur[32] = "";
	snprintf(path, sizeof path, "/proc/%d/limits", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0; /* cannot tell: the kernel decides */
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Max locked memory %31s", cur) == 1)
			break;
	fclose(f);
	if (!cur[0] || !strcmp(cur, "unlimited") ||
	    (status_field(tid, "CapEff:", 16) >> CAP_IPC_LOCK) & 1)
		return 0;
	uint64_t limit = strtoull(cur, NULL, 10);
	if (limit == 0)
		return -EPERM;
	return bytes > limit ? -ENOMEM : 0;
}

/* Flags mlockall (a) or mlock2 (!a) refuses with EINVAL. */
static bool lock_flags_bad(const struct seccomp_notif *req)
{
	const __u64 *a = req->data.args;

	if (req->data.nr == SYS_mlockall)
		return !a[0] || (a[0] & ~(uint64_t)(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) ||
		       a[0] == MCL_ONFAULT;
	return req->data.nr == SYS_mlock2 && (a[2] & ~(uint64_t)MLOCK_ONFAULT);
}

/* The kernel's checks of a lock call (mlock, mlock2, mlockall), in its
 * order: the flags (EINVAL), then the caller's right (lock_check()). */
static int lock_call_check(const struct seccomp_notif *req)
{
	const __u64 *a = req->data.args;
	pid_t tid = (pid_t)req->pid;

	if (lock_flags_bad(req))
		return -EINVAL;
	if (req->data.nr != SYS_mlockall)
		return lock_check(tid, a[1] + status_field(tid, "VmLck:", 10) * 1024);
	if (!(a[0] & MCL_CURRENT))
		return lock_check(tid, 0);
	return lock_check(tid, status_field(tid, "VmSize:", 10) * 1024);
}

/*
 * A forked child's new anonymous memory, taken before the child touches
 * it (and after a move, the range it left: held_moved()): the calling
 * thread is held (ptrace: seized and interrupted while it waits for our
 * answer; WAIT_KILLABLE_RECV keeps the interrupt from ending that wait),
 * so it stops as the kernel's mmap returns, before one more instruction;
 * the range the call returned is adopted, then the thread goes on
 * (finish_hold()).  Without it the child touched its new
 * memory natively until its evictor found the mapping, a millisecond or
 * more later: pages beyond the cap (four children mapping and filling
 * 8 MiB each under 4M: 1300-3500 frames of 1024 at the peak, 1053-1058
 * now).
 *
 * When the child vm's evictor traces the thread already (a drop, or its
 * look at the rseq area, whose stop comes as this call returns), an mmap
 * is handed over to it, and it adopts the range at that stop
 * (vm_child_hand_over()).  One it did not take (it had let go just then),
 * or a mremap, is held as soon as the evictor lets go, and what is new in
 * its mappings is adopted then (the pages it touched meanwhile count
 * beyond the budget).  A thread traced by a debugger takes the evictor's
 * look, a few milliseconds later.  One hold at a time.
 */
static bool hold_call(struct lp_host *H, struct lp_vm *vm,
		      const struct seccomp_notif *req)
{
	struct notif_queue *q = H->queue;

	if (!q || q->held || !vm_child_adopts(vm))
		return false;
	vm_child_maps_before(vm, (pid_t)req->pid);
	int rc = inject_hold((pid_t)req->pid);
	if (rc && rc != -EAGAIN)
		return false;
	q->held = (pid_t)req->pid;
	q->held_call = req->data;
	q->held_seized = !rc;
	q->held_late = rc != 0;
	q->held_taken = false;
	q->held_hand = rc && req->data.nr == SYS_mmap &&
		       vm_child_hand_over(vm, &H->hand, q->held, req->data.args[1]);
	return true;
}

/* A held mmap of len bytes returned ret (held: its thread stopped; late:
 * after it ran on a little): its new memory adopted. */
static void held_mapped(struct lp_vm *vm, pid_t tid, size_t len, bool held,
			bool late, long ret)
{
	int rc = -ENOTSUP; /* not held: the evictor's look at its mappings */

	if (held && late)
		rc = vm_child_adopt_scan(vm, tid);
	else if (held)
		rc = ret < 0 && ret > -4096 ? 0 /* failed: nothing new */
		     : vm_child_adopt_now(vm, tid, (uintptr_t)ret, len);
	if (rc)
		vm_child_mapped(vm, tid);
}

/* A held mremap of thread tid returned ret (-EINTR: not known).  Its prep
 * noted that our table moves with the mapping, at the move's event
 * (vm_child_mremap_prep()): a move that did not happen (grown in place,
 * failed) ends the note here, and the range's pages are victims again.
 * Not known (the thread ran on before our hold): it moved unless the
 * range is still mapped.  Returns whether it moved, known: the thread
 * waits for the move's event then (moved_wait()).  (One held late ran on
 * already: the range it left is forgotten at the event, and what it
 * mapped there since is looked for then, vm_child_moved().) */
static bool held_moved(struct lp_vm *vm, pid_t tid, const struct seccomp_data *call,
		       long ret)
{
	uintptr_t old = (uintptr_t)call->args[0];
	size_t oldlen = (call->args[1] + LP_PG - 1) & ~(LP_PG - 1);
	size_t newlen = (call->args[2] + LP_PG - 1) & ~(LP_PG - 1);
	bool known = ret != -EINTR;
	bool failed = ret < 0 && ret > -4096;
	bool stayed = known ? !failed && (uintptr_t)ret == old
			    : vm_child_range_mapped(tid, old, old + (newlen < oldlen ? newlen : oldlen));

	if (failed || stayed)
		vm_child_move_drop(vm, old);
	/* Shrunk in place (realloc of a smaller size): the tail the kernel
	 * unmapped leaves our table, as a munmap's range does. */
	if (stayed && newlen < oldlen &&
	    (known || !vm_child_range_mapped(tid, old + newlen, old + oldlen)))
		vm_child_forget(vm, old + newlen, oldlen - newlen);
	return known && !failed && !stayed;
}

/* A thread held at once whose mremap moved its range: its event moves our
 * table (the child's handler, which read it before the mover returned;
 * the note holds vm->moving until then); the thread goes on once that is
 * done, up to 200 ms, so that what it maps where the range was finds the
 * range gone from our table (else it was never taken: forks refill,
 * under ASan, 2048 of 2048 pages resident).  H->lock is taken for each
 * look alone (the vm may end meanwhile). */
static void moved_wait(struct lp_host *H, pid_t tid)
{
	for (int i = 0; i < 4000; i++) {
		pthread_mutex_lock(&H->lock);
		struct lp_vm *vm = find_vm(H->vm, tid);
		bool pending = vm && vm_child_moves_pending(vm);
		pthread_mutex_unlock(&H->lock);
		if (!pending)
			return;
		usleep(50);
	}
}

/* The held thread seized once our evictor has let it go (its stop comes
 * as the call returns, and ends within its wait for it), trying for up to
 * wait_ms: 0, -EAGAIN (not yet), or another -errno; or 1: handed over,
 * the evictor adopted its mapping at that stop. */
static int hold_late(struct notif_queue *q, int wait_ms)
{
	uint64_t t0 = prim_now_ns();

	for (;;) {
		if (q->held_hand && vm_child_hand_poll(&q->H->hand, false) == 1)
			return 1;
		int rc = inject_hold(q->held);
		if (rc != -EAGAIN || prim_now_ns() - t0 >= (uint64_t)wait_ms * 1000000)
			return rc;
		usleep(20);
	}
}

/* The held thread's stop, waited for up to wait_ms (else looked at again
 * later: serve_main()): its new mapping adopted, it goes on. */
static void finish_hold(struct lp_host *H, int wait_ms)
{
	struct notif_queue *q = H->queue;
	pid_t tid = q->held;
	long ret = 0;
	int sig = 0, st = 0;

	if (!q->held_seized && !q->held_taken) {
		int rc = hold_late(q, wait_ms);
		if (rc == -EAGAIN && wait_ms == 0)
			return;
		q->held_seized = !rc;
		/* Not taken by then: withdrawn (or taken just now, before the
		 * evictor let go: our own stop is then waited for). */
		q->held_taken = rc == 1 || (q->held_hand && vm_child_hand_poll(&q->H->hand, true) == 1);
	}
	if (q->held_seized) {
		st = inject_held(prim_tgid_of(tid), tid, &ret, &sig, wait_ms);
		if (st == -EAGAIN)
			return;
	}
	pthread_mutex_lock(&H->lock);
	struct lp_vm *vm = find_vm(H->vm, tid);
	bool moved = false;
	if (vm && q->held_call.nr == SYS_mremap)
		moved = held_moved(vm, tid, &q->held_call,
				   st == 1 && !q->held_late ? ret : -EINTR);
	else if (vm && !q->held_taken)
		held_mapped(vm, tid, q->held_call.args[1], st == 1, q->held_late, ret);
	pthread_mutex_unlock(&H->lock);
	if (moved && st == 1) /* (stopped: else it runs on anyway) */
		moved_wait(H, tid);
	if (st == 1)
		inject_unhold(tid, sig);
	q->held = 0;
}

/* A memory call of a forked child, whose child vm is vm: prepare our
 * table, then the kernel acts. */
static enum serve_how serve_child(struct lp_host *H, struct lp_vm *vm,
				  const struct seccomp_notif *req, long *res)
{
	const __u64 *a = req->data.args;

	switch (req->data.nr) {
	case SYS_mmap:
		/* new anonymous memory: the child vm adopts it as the call
		 * returns, or soon after */
		if ((a[3] & MAP_ANONYMOUS) && (a[3] & MAP_TYPE) == MAP_PRIVATE &&
		    (a[2] & PROT_WRITE) && !hold_call(H, vm, req))
			vm_child_mapped(vm, (pid_t)req->pid);
		/* a mapping over the child's managed memory replaces it */
		if (replaces(a[3]) && vm_overlaps(vm, a[0], a[1]))
			vm_child_forget(vm, a[0] & ~(LP_PG - 1), a[1]);
		break;
	case SYS_munmap:
		/* (its pages and regions: a mapping made there later is new) */
		if (vm_overlaps(vm, a[0], a[1]))
			vm_child_forget(vm, a[0], a[1]);
		break;
	case SYS_madvise:
		if (req->data.nr == SYS_madvise && a[2] == MADV_WIPEONFORK)
			break; /* (a child's own forks: README, Limits) */
		if (vm_overlaps(vm, a[0], a[1]))
			(void)vm_discard(vm, a[0] & ~(LP_PG - 1), a[1], 0);
		break;
	case SYS_mremap:
		/* The kernel moves the mapping out of our reach: make every
		 * page present so that it takes their content; or grows it
		 * in place, registered: know the growth. */
		if (vm_overlaps(vm, a[0], a[1]) && H->h) {
			/* Held, its table moves with it (what it did:
			 * held_moved()).  Only a hold that stops the thread
			 * as the call returns: one that comes later (our
			 * evictor traces the thread now) lets it go on first,
			 * and it could map new memory where the range shrank
			 * before we knew, over our stale pages there (forks
			 * shuffle read a page back as zeros). */
			bool held = (a[3] & MREMAP_MAYMOVE) && !(a[3] & MREMAP_DONTUNMAP) &&
				    hold_call(H, vm, req) && H->queue->held_seized;
			(void)vm_child_mremap_prep(vm, H->h, a[0], a[1], a[2],
						   (int)a[3], held);
		}
		/* and what it lands on is replaced */
		if ((a[3] & MREMAP_FIXED) && vm_overlaps(vm, a[4], a[2]))
			(void)vm_discard(vm, a[4] & ~(LP_PG - 1), a[2], 0);
		break;
	case SYS_mlockall:
		/* Its populate would wait for ever on the child's probe page
		 * (fork.c), and locked pages could not leave: the child's
		 * memory is ours to page.  Checked as the kernel does, then
		 * not done (README, Limits). */
		*res = lock_call_check(req);
		return SV_ANSWER;
	case SYS_mlock:
	case SYS_mlock2:
		if (vm_overlaps(vm, a[0], a[1])) {
			*res = lock_call_check(req);
			/* (then, as the kernel: a hole in the range) */
			uintptr_t lo = a[0] & ~(uintptr_t)(LP_PG - 1);
			if (!*res && a[1] &&
			    !vm_child_range_mapped((pid_t)req->pid, lo,
						   (a[0] + a[1] + LP_PG - 1) & ~(uintptr_t)(LP_PG - 1)))
				*res = -ENOMEM;
			return SV_ANSWER;
		}
		break;
	}
	return SV_CONTINUE;
}

/* A memory call of the program itself: served here when it touches
 * managed memory (the kernel's result in *res). */
static enum serve_how serve_own(struct lp_host *H, struct lp_vm *vm,
				const struct seccomp_notif *req, long *res)
{
	const __u64 *a = req->data.args;
	int handled = 0;

	switch (req->data.nr) {
	case SYS_mmap:
		handled = do_mmap(H, req, res);
		break;
	case SYS_munmap:
		if ((handled = vm_overlaps(vm, a[0], a[1])))
			*res = vm_munmap(vm, a[0], a[1]);
		break;
	case SYS_mremap:
		/* ours to move, or a move onto ours (MREMAP_FIXED) */
		if ((handled = vm_overlaps(vm, a[0], a[1] ? a[1] : LP_PG) ||
			       ((a[3] & MREMAP_FIXED) && vm_overlaps(vm, a[4], a[2]))))
			*res = vm_mremap(vm, a[0], a[1], a[2], (int)a[3], a[4]);
		break;
	case SYS_mlock:
	case SYS_mlock2:
		/* locked on fault by the kernel, then unlocked where we page */
		if ((handled = vm_overlaps(vm, a[0], a[1])) &&
		    (*res = lock_call_check(req)) == 0)
			*res = vm_mlock(vm, a[0], a[1],
					req->data.nr == SYS_mlock2 ? (unsigned)a[2] : 0);
		break;
	case SYS_mlockall:
		handled = 1;
		if ((*res = lock_call_check(req)) == 0)
			*res = vm_mlockall(vm, (int)a[0]);
		break;
	case SYS_madvise:
		if (a[2] == MADV_WIPEONFORK) {
			/* The kernel marks the mapping; our forks read it. */
			if (vm_overlaps(vm, a[0], a[1]))
				vm_wipe_on_fork(vm);
			break;
		}
		/* (MADV_FREE is taken as MADV_DONTNEED: it may be.) */
		if ((handled = vm_overlaps(vm, a[0], a[1])))
			*res = vm_discard(vm, a[0], a[1],
					  a[2] == MADV_DONTNEED_LOCKED ? MADV_DONTNEED_LOCKED
								       : MADV_DONTNEED);
		break;
	}
	return handled ? SV_ANSWER : SV_CONTINUE;
}

/* ---- the tree: notifications of programs it executed ---- */

static pid_t ppid_of(pid_t pid)
{
	char state;
	pid_t ppid;

	return prim_proc_stat(pid, &state, &ppid) ? 0 : ppid;
}

/* The live slot whose program has pid p: the one whose pager shares its
 * address space (its current image), else one that served an image it
 * left (whose pager may still serve children forked from it). */
static int tree_program_slot(struct lp_tree *T, pid_t p)
{
	int other = -1;

	for (int i = 0; i < TREE_SLOTS; i++) {
		if (!atomic_load(&T->live[i]) || T->slot[i].pid != p)
			continue;
		if (same_mm(T->slot[i].pager, p))
			return i;
		other = i;
	}
	return other;
}

/*
 * The slot of the pager that serves tid's address space, or -1: the pager
 * of a program the tree executed that shares it (the program itself); the
 * one that published it, or one of its ancestors, as its forked child
 * (served by that pager's child vms); else the pager of its nearest
 * executed ancestor.  Top pager only.
 */
#define ROUTE_PAGER (-2)

/* The slot whose live pager shares tid's address space, ROUTE_PAGER when
 * tid is a pager's own thread, or -1: neither. */
static int tree_slot_route(struct lp_tree *T, pid_t tid)
{
	/* A pager's own calls (it has its program's filters) are the
	 * kernel's, from its first: it names itself in its slot before it
	 * makes one (exec_pager), long before the slot is live.  (Seen only
	 * through its parent, the program, it would be taken for a child of
	 * that program's previous image, whose pager may be ending: a call
	 * passed there was never answered.)  Its threads are told by their
	 * table of descriptors, which no other process shares (the program's
	 * is its own): one kcmp, not a read of /proc per call.  Else the
	 * program a live slot's pager shares its address space with. */
	for (int i = 0; i < TREE_SLOTS; i++) {
		pid_t pager = __atomic_load_n(&T->slot[i].pager, __ATOMIC_ACQUIRE);
		bool live = atomic_load(&T->live[i]);
		if (pager > 0 && (live || atomic_load(&T->used[i])) &&
		    (pager == tid || same_files(pager, tid)))
			return ROUTE_PAGER;
		if (live && same_mm(pager, tid))
			return i;
	}
	return -1;
}

static int tree_route(struct lp_host *H, pid_t tid)
{
	struct lp_tree *T = H->tree;

	if (!T || H->own_parent)
		return -1;
	int at = tree_slot_route(T, tid);
	if (at != -1)
		return at < 0 ? -1 : at;
	pid_t p = prim_tgid_of(tid);
	/* (A program whose own exec ran natively shares no pager's address
	 * space: its calls are the kernel's, not its old pager's.) */
	for (int depth = 0; depth < 32 && p > 1 && p != H->pid; depth++) {
		int i = tree_kid_slot(T, p);
		if (i < 0 && depth > 0)
			i = tree_program_slot(T, p);
		if (i >= 0)
			return i;
		p = ppid_of(p);
	}
	return -1;
}

/*
 * Pass req on to the pager of slot i: it serves it and answers, unless
 * it ended meanwhile (false: the kernel's, then).  Its end stores live 0
 * before it drains its ring for the last time (ring_main), and we
 * look at live after our store of head: one of us sees the other's (a
 * call answered twice is refused the second time, harmlessly).
 */
static int tree_pass_some(struct lp_host *H, int i, const struct seccomp_notif *req,
			  bool wait)
{
	struct fwd_ring *r = &H->tree->ring[i];
	pthread_mutex_t *lock = &H->queue->pass_lock;

	pthread_mutex_lock(lock);
	unsigned h = atomic_load(&r->head);
	while (h - atomic_load(&r->tail) >= FWD_LEN) {
		if (!atomic_load(&H->tree->live[i]) || !wait) {
			pthread_mutex_unlock(lock);
			return atomic_load(&H->tree->live[i]) ? -EAGAIN : 0;
		}
		pthread_mutex_unlock(lock);
		usleep(50);
		pthread_mutex_lock(lock);
		h = atomic_load(&r->head);
	}
	memcpy(&r->e[h % FWD_LEN], req, sizeof(*req));
	atomic_store(&r->head, h + 1);
	pthread_mutex_unlock(lock);
	syscall(SYS_futex, &r->head, FUTEX_WAKE, 1, NULL, NULL, 0);
	return atomic_load(&H->tree->live[i]) != 0;
}

static bool tree_pass(struct lp_host *H, int i, const struct seccomp_notif *req)
{
	return tree_pass_some(H, i, req, true) == 1;
}

/* Serve one notification, under H->lock: who called (which vm serves its
 * address space), then what it called. */
static enum serve_how serve_locked(struct lp_host *H,
				   const struct seccomp_notif *req,
				   struct seccomp_notif_resp *resp, long *res)
{
	struct lp_vm *vm = find_vm(H->vm, (pid_t)req->pid);
	bool ours = vm == H->vm;

	if (!notif_valid(H, req->id))
		return SV_DONE; /* gone: the pid kcmp compared may be another's */
	if (!vm) {
		int slot = tree_route(H, (pid_t)req->pid);
		if (slot < 0)
			return SV_CONTINUE; /* an address space nobody serves */
		return tree_pass(H, slot, req) ? SV_DONE : SV_CONTINUE;
	}
	if (req->data.nr == SYS_execve || req->data.nr == SYS_execveat)
		return ours ? SV_EXEC_OURS : SV_EXEC;
	if (req->data.nr == SYS_fork || req->data.nr == SYS_clone ||
	    req->data.nr == SYS_clone3)
		return serve_fork(H, vm, req, resp, res);
	if (req->data.nr == SYS_set_tid_address && ours)
		tw_remember(H->queue, (uintptr_t)req->data.args[0], (pid_t)req->pid);
	if (req->data.nr == SYS_exit && ours)
		tw_exit(H->queue, (pid_t)req->pid);
	if (req->data.nr == SYS_exit || req->data.nr == SYS_set_tid_address)
		return SV_CONTINUE;
	if (req->data.nr == SYS_brk) {
		/* Below the program's first break: ours cannot go there (the
		 * break the kernel keeps is the program's alone), so the
		 * answer is the break, unchanged, as the kernel answers a brk
		 * below its start.  Another address space's is its own. */
		if (!ours)
			return SV_CONTINUE;
		*res = syscall(SYS_brk, 0);
		return SV_ANSWER;
	}
	return ours ? serve_own(H, vm, req, res) : serve_child(H, vm, req, res);
}

static void serve(struct lp_host *H, const struct seccomp_notif *req,
		  struct seccomp_notif_resp *resp)
{
	long res = 0;

	memset(resp, 0, sizeof(*resp));
	resp->id = req->id;
	pthread_mutex_lock(&H->lock);
	enum serve_how how = serve_locked(H, req, resp, &res);
	pthread_mutex_unlock(&H->lock);
	if (how == SV_DONE)
		return;
	if (how == SV_EXEC || how == SV_EXEC_OURS) {
		/* Not under the lock: the exec may take its time, and the
		 * kernel reads its arguments from memory we serve. */
		enum exec_result r = exec_serve(H->listener, req);
		/* The program left our address space, unless the caller was
		 * another process in it (vfork) and the program is still
		 * here. */
		if (how == SV_EXEC_OURS && (r == EXEC_MANAGED || r == EXEC_NATIVE) &&
		    !same_mm(getpid(), H->pid))
			atomic_store(&H->program_left, true);
		return;
	}
	if (how == SV_CONTINUE)
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	else if (res < 0 && res > -4096)
		resp->error = (int)res;
	else
		resp->val = res;
	(void)send_resp(H, resp);
	/* (Answered: the held thread returns from its mmap at once.) */
	if (H->queue && H->queue->held)
		finish_hold(H, 200);
}

/*
 * Notifications are received by one thread and served in order by another.
 * A caller is interruptible until its notification is received
 * (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV makes it killable only after):
 * a signal meanwhile fails the call with EINTR, which fork, mmap or munmap
 * never return natively.  So the receiver never waits on anything but the
 * next notification, while serving may (a fork waits for its event).
 */
static void *serve_main(void *arg)
{
	struct notif_queue *q = arg;
	struct seccomp_notif_resp *resp = calloc(1, q->resp_size);

	for (;;) {
		/* Words pinned for exits (this thread's alone): let go of
		 * those whose threads are gone, every millisecond meanwhile. */
		if (q->npinned) {
			pthread_mutex_lock(&q->H->lock);
			tw_collect(q);
			pthread_mutex_unlock(&q->H->lock);
		}
		/* A held thread that had not stopped by then. */
		if (q->held)
			finish_hold(q->H, 0);
		pthread_mutex_lock(&q->lock);
		while (!q->head && !q->stop && !q->npinned && !q->held)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->head && !q->stop) {
			struct timespec ts;
			prim_deadline(&ts, 1);
			pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		}
		struct notif_item *it = q->head;
		if (it) {
			q->head = it->next;
			if (!q->head)
				q->tail = &q->head;
		}
		bool stop = q->stop;
		pthread_mutex_unlock(&q->lock);
		if (!it && stop)
			break; /* stopped, all served */
		if (!it)
			continue;
		if (resp)
			serve(q->H, &it->req, resp);
		free(it);
	}
	free(resp);
	free(q->tw);
	return NULL;
}

struct receiver {
	struct notif_queue *q;
	size_t req_size;
	int cpu;
	pthread_t thread;
	atomic_bool done;
};

/* Receivers wait in SECCOMP_IOCTL_NOTIF_RECV itself; this signal (never
 * the program's: its signals are its own) ends the wait when they stop. */
#define RECV_WAKE SIGURG

static void recv_wake(int sig)
{
	(void)sig;
}

/*
 * In a receiver of the top pager: a call from a pager's own thread (the
 * kernel's) or from a program whose pager is live (passed to it) needs
 * nothing the serving thread holds (H->lock, the order of its queue):
 * answered or passed here, without waking that thread, and without
 * waiting behind a fork it serves (milliseconds; a tree's every
 * executed program waited there for each of its memory calls).  Our own
 * address space is the serving thread's, and so is everything else (our
 * forked children, routes by ancestry).  A forked child that executed a
 * program shares no address space with its old vm any more (vm_alive):
 * its calls are its new pager's either way.  true: done with req.
 */
static bool pass_at_once(struct lp_host *H, const struct seccomp_notif *req,
			 struct seccomp_notif_resp *resp)
{
	pid_t tid = (pid_t)req->pid;

	if (!H->tree || H->own_parent || !resp || !H->vm || same_mm(H->vm->owner, tid))
		return false;
	int i = tree_slot_route(H->tree, tid);
	if (i == -1)
		return false;
	if (!notif_valid(H, req->id))
		return true; /* gone: the pid kcmp compared may be another's */
	if (i >= 0) {
		int rc = tree_pass_some(H, i, req, false);
		if (rc == 1)
			return true;
		if (rc == -EAGAIN)
			return false; /* its ring is full: the serving thread waits */
	}
	memset(resp, 0, H->queue->resp_size);
	resp->id = req->id;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	(void)send_resp(H, resp);
	return true;
}

/*
 * A receiver blocks in RECV, in the kernel: woken by the caller (on the
 * caller's CPU with SYNC_WAKE_UP), it takes the notification at once,
 * without first returning from poll() and entering RECV.  At real-time
 * priority where allowed (it only takes
 * notifications, and queues them or passes them on: pass_at_once),
 * it runs before anything else waiting for that CPU: the window in which a
 * signal can interrupt the caller is then its wake-up alone.
 */
static void *receive_main(void *arg)
{
	struct receiver *r = arg;
	struct notif_queue *q = r->q;
	struct lp_host *H = q->H;
	struct notif_item *it = NULL;
	struct seccomp_notif_resp *resp = calloc(1, q->resp_size);
	sigset_t wake;

	if (r->cpu >= 0) {
		/* The caller's CPU goes idle as it waits: its own receiver
		 * runs there at once, instead of one woken on another CPU
		 * tens of microseconds later. */
		(void)prim_pin_self(r->cpu);
	}
	struct sched_param sp = { .sched_priority = 1 };
	(void)pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	sigemptyset(&wake);
	sigaddset(&wake, RECV_WAKE);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	while (!atomic_load(&q->stop_recv)) {
		if (!it)
			it = calloc(1, offsetof(struct notif_item, req) + r->req_size);
		if (!it) {
			usleep(1000); /* the caller waits; try again */
			continue;
		}
		memset(&it->req, 0, r->req_size);
		if (ioctl(H->listener, SECCOMP_IOCTL_NOTIF_RECV, &it->req) < 0) {
			int e = errno;
			if (e == EINTR)
				continue; /* woken to stop, or a stray signal */
			if (e == ENOENT) {
				/* The caller went away before we took it, or
				 * nobody has the filter any more. */
				struct pollfd pfd = { .fd = H->listener, .events = POLLIN };
				if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP) &&
				    !(pfd.revents & POLLIN))
					break;
				continue;
			}
			break;
		}
		if (pass_at_once(H, &it->req, resp))
			continue;
		pthread_mutex_lock(&q->lock);
		*q->tail = it;
		q->tail = &it->next;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->lock);
		it = NULL;
	}
	free(it);
	free(resp);
	atomic_store(&r->done, true);
	return NULL;
}

#define MAX_RECEIVERS 8

/* A pager of a program the tree executed receives from its ring, which
 * the top pager fills (tree_pass). */
static void *ring_main(void *arg)
{
	struct receiver *r = arg;
	struct notif_queue *q = r->q;
	struct fwd_ring *ring = &q->H->tree->ring[q->H->slot];

	/* Until told to stop, and then once more to the end of the ring: our
	 * slot is not live any more (run_teardown), and what the top pager
	 * passed before it could see that is ours to answer (tree_pass). */
	for (bool last = false;;) {
		if (!last && atomic_load(&q->stop_recv))
			last = true;
		unsigned h = atomic_load(&ring->head), t = atomic_load(&ring->tail);
		if (h == t && last)
			break;
		if (h == t) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			syscall(SYS_futex, &ring->head, FUTEX_WAIT, h, &ts, NULL, 0);
			continue;
		}
		struct notif_item *it =
			calloc(1, offsetof(struct notif_item, req) + r->req_size);
		if (!it) {
			usleep(1000);
			continue;
		}
		memcpy(&it->req, &ring->e[t % FWD_LEN], sizeof(it->req));
		atomic_store(&ring->tail, t + 1);
		pthread_mutex_lock(&q->lock);
		*q->tail = it;
		q->tail = &it->next;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->lock);
	}
	atomic_store(&r->done, true);
	return NULL;
}

/* A thread that serves the program's calls could not start (RLIMIT_DATA,
 * RLIMIT_NPROC, memory): its first call would wait for ever.  It is
 * killed instead, and the reason said on its standard error (ours is
 * /dev/null by now). */
void notify_cannot_start(struct lp_host *H, int err)
{
	say_on_stderr_of(H->pidfd, "vmrun: cannot start a thread to serve the "
				   "program's system calls: %s (the pager shares "
				   "the program's limits: ulimit -d, -u); the "
				   "program is killed\n",
			 strerror(err));
	if (H->pid > 0)
		(void)kill(H->pid, SIGKILL);
}

void *notify_main(void *arg)
{
	struct lp_host *H = arg;
	struct seccomp_notif_sizes sz;

	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) < 0)
		return NULL;
	struct notif_queue q = {
		.H = H,
		.resp_size = sz.seccomp_notif_resp > sizeof(struct seccomp_notif_resp)
				     ? sz.seccomp_notif_resp
				     : sizeof(struct seccomp_notif_resp),
	};
	q.tail = &q.head;
	pthread_mutex_init(&q.lock, NULL);
	pthread_mutex_init(&q.pass_lock, NULL);
	pthread_cond_init(&q.cond, NULL);
	pthread_t server;
	int err = pthread_create(&server, NULL, serve_main, &q);
	if (err) {
		notify_cannot_start(H, err);
		return NULL;
	}
	H->queue = &q;

	/* One receiver per CPU we may run on; this thread waits for the end.
	 * Linux 6.6+ also wakes the receiver on the caller's CPU. */
	struct receiver rs[MAX_RECEIVERS];
	unsigned nr = 0;
	size_t req_size = sz.seccomp_notif > sizeof(struct seccomp_notif)
				  ? sz.seccomp_notif
				  : sizeof(struct seccomp_notif);
	(void)ioctl(H->listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
		    SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	int cpus[MAX_RECEIVERS];
	int ncpu = H->own_parent ? 1 : prim_allowed_cpus(cpus, MAX_RECEIVERS);
	for (int i = 0; ncpu > 1 && i < ncpu; i++)
		rs[nr++] = (struct receiver){ &q, req_size, cpus[i], 0 };
	if (nr == 0)
		rs[nr++] = (struct receiver){ &q, req_size, -1, 0 };
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = recv_wake; /* no SA_RESTART: RECV returns EINTR */
	sigaction(RECV_WAKE, &sa, NULL);
	unsigned started = 0;
	for (unsigned i = 0; i < nr; i++) {
		atomic_init(&rs[i].done, false);
		if ((err = pthread_create(&rs[i].thread, NULL,
					  H->own_parent ? ring_main : receive_main, &rs[i])))
			break;
		started++;
	}
	if (!started)
		notify_cannot_start(H, err); /* (and on to the end) */
	/* Until told to stop, or nobody has the filter any more (HUP). */
	struct pollfd pfd[2] = {
		{ .fd = H->listener, .events = 0 },
		{ .fd = H->stop_fd, .events = POLLIN },
	};
	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents || (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL)))
			break;
	}
	atomic_store(&q.stop_recv, true);
	for (unsigned i = 0; i < started; i++) {
		/* A receiver between its check and RECV misses one signal:
		 * repeat until it is out. */
		while (!atomic_load(&rs[i].done)) {
			pthread_kill(rs[i].thread, RECV_WAKE);
			usleep(1000);
		}
		pthread_join(rs[i].thread, NULL);
	}

	pthread_mutex_lock(&q.lock);
	q.stop = true;
	pthread_cond_signal(&q.cond);
	pthread_mutex_unlock(&q.lock);
	pthread_join(server, NULL);
	H->queue = NULL;
	pthread_mutex_destroy(&q.lock);
	pthread_mutex_destroy(&q.pass_lock);
	pthread_cond_destroy(&q.cond);
	return NULL;
}
