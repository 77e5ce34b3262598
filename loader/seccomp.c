/* SPDX-License-Identifier: MIT */
/*
 * The program's memory system calls, through seccomp user notification.
 *
 * The filter (installed by the trampoline in the program's process, and
 * inherited by everything it forks or executes) sends to the pager: brk,
 * munmap, mremap, mmap of private memory, madvise(DONTNEED/FREE), and
 * fork-like clones.  The pager performs the call itself — it shares the
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
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compat.h"
#include "loader/host.h"
#include "mmap.h"
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

enum { L_MMAP = 13, L_MADV = 16, L_CLONE = 21, L_NOTIFY = 24, L_ALLOW = 25 };
#define TO(label, at) ((label) - (at) - 1)

static struct sock_filter filter[] = {
	/* 0 */ LD(offsetof(struct seccomp_data, arch)),
	/* 1 */ JEQ(AUDIT_ARCH_X86_64, 0, TO(L_ALLOW, 1)),
	/* 2 */ LD(offsetof(struct seccomp_data, nr)),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, TO(L_ALLOW, 3), 0),
	/* 4 */ JEQ(SYS_brk, TO(L_NOTIFY, 4), 0),
	/* 5 */ JEQ(SYS_munmap, TO(L_NOTIFY, 5), 0),
	/* 6 */ JEQ(SYS_mremap, TO(L_NOTIFY, 6), 0),
	/* 7 */ JEQ(SYS_fork, TO(L_NOTIFY, 7), 0),
	/* 8 */ JEQ(SYS_clone3, TO(L_NOTIFY, 8), 0),
	/* 9 */ JEQ(SYS_mmap, TO(L_MMAP, 9), 0),
	/* 10 */ JEQ(SYS_madvise, TO(L_MADV, 10), 0),
	/* 11 */ JEQ(SYS_clone, TO(L_CLONE, 11), 0),
	/* 12 */ BPF_JUMP(BPF_JMP | BPF_JA, TO(L_ALLOW, 12), 0, 0),
	/* mmap: private mappings only (MAP_TYPE == MAP_PRIVATE) */
	/* 13 */ LD(ARG(3)),
	/* 14 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf),
	/* 15 */ JEQ(MAP_PRIVATE, TO(L_NOTIFY, 15), TO(L_ALLOW, 15)),
	/* madvise: the advice that drops pages */
	/* 16 */ LD(ARG(2)),
	/* 17 */ JEQ(MADV_DONTNEED, TO(L_NOTIFY, 17), 0),
	/* 18 */ JEQ(MADV_FREE, TO(L_NOTIFY, 18), 0),
	/* 19 */ JEQ(MADV_DONTNEED_LOCKED, TO(L_NOTIFY, 19), 0),
	/* 20 */ BPF_JUMP(BPF_JMP | BPF_JA, TO(L_ALLOW, 20), 0, 0),
	/* clone: fork-like only (no CLONE_VM) */
	/* 21 */ LD(ARG(0)),
	/* 22 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, CLONE_VM),
	/* 23 */ JEQ(0, TO(L_NOTIFY, 23), TO(L_ALLOW, 23)),
	/* 24 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	/* 25 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

const struct sock_fprog lp_seccomp_filter = {
	.len = sizeof(filter) / sizeof(filter[0]),
	.filter = filter,
};

static bool same_mm(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0;
}

/* The vm serving tid's address space, or NULL.  Under H->lock. */
static struct lp_vm *find_vm(struct lp_vm *vm, pid_t tid, pid_t self)
{
	if (self && same_mm(self, tid))
		return vm;
	struct lp_vm *found = NULL;
	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids && !found; i++) {
		struct lp_vm *k = vm->kids[i];
		if (atomic_load(&k->dead))
			continue;
		found = find_vm(k, tid, k->pid);
		/* The same process after an execve is not ours any more. */
		if (found == k && !vm_alive(k)) {
			atomic_store(&k->dead, true);
			found = NULL;
		}
	}
	pthread_mutex_unlock(&vm->kids_lock);
	return found;
}

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = tid;

	snprintf(path, sizeof path, "/proc/%d/status", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* Our own descriptor for fd of thread tid's process, or -errno. */
static int steal_fd(pid_t tid, int fd)
{
	int pfd = (int)syscall(SYS_pidfd_open, tgid_of(tid), 0);

	if (pfd < 0)
		return -errno;
	int mine = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	int rc = mine < 0 ? -errno : mine;
	close(pfd);
	if (rc >= 0)
		(void)fcntl(rc, F_SETFD, FD_CLOEXEC);
	return rc;
}

/* mmap of private memory.  1: answered in *res; 0: let the kernel do it. */
static int do_mmap(struct lp_host *H, const struct seccomp_notif *req, long *res)
{
	const __u64 *a = req->data.args;
	int prot = (int)a[2], flags = (int)a[3], fd = (int)a[4];
	struct lp_file *file = NULL;

	if (flags & (MAP_HUGETLB | MAP_LOCKED | MAP_GROWSDOWN) ||
	    prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return 0;
	if (!(flags & MAP_ANONYMOUS)) {
		struct stat st;
		int mine = steal_fd(req->pid, fd);
		if (mine < 0)
			return 0; /* the kernel says what is wrong with fd */
		int acc = fcntl(mine, F_GETFL) & O_ACCMODE;
		if (fstat(mine, &st) < 0 || acc == O_WRONLY) {
			close(mine);
			return 0;
		}
		if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
		    minor(st.st_rdev) == 5) {
			close(mine); /* /dev/zero: anonymous memory */
		} else if (S_ISREG(st.st_mode)) {
			file = calloc(1, sizeof(*file));
			if (!file) {
				close(mine);
				return 0;
			}
			file->fd = mine;
			atomic_init(&file->refs, 1);
			atomic_init(&file->size, (uint64_t)st.st_size);
		} else {
			close(mine);
			return 0;
		}
	}
	*res = vm_mmap(H->vm, a[0], a[1], prot, flags, file, a[5], NULL);
	return 1;
}

static bool is_fork(const struct seccomp_notif *req, struct lp_vm *vm, bool ours)
{
	uint64_t flags = 0;

	if (req->data.nr == SYS_fork)
		return true;
	if (req->data.nr == SYS_clone)
		return !(req->data.args[0] & CLONE_VM);
	/* clone3: the flags are the first field of the caller's struct. */
	if (ours) {
		memcpy(&flags, (const void *)req->data.args[0], sizeof(flags));
	} else {
		struct iovec l = { &flags, sizeof(flags) };
		struct iovec r = { (void *)req->data.args[0], sizeof(flags) };
		if (process_vm_readv(req->pid, &l, 1, &r, 1, 0) != sizeof(flags))
			return false;
	}
	(void)vm;
	return !(flags & CLONE_VM);
}

/* The children of thread tid, as listed by /proc: up to n of them. */
static size_t children_of(pid_t tid, pid_t *out, size_t n)
{
	char path[96];
	size_t k = 0;

	snprintf(path, sizeof path, "/proc/%d/task/%d/children", tgid_of(tid), tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int pid;
	while (k < n && fscanf(f, "%d", &pid) == 1)
		out[k++] = pid;
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
};

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

	snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", tgid_of(tid), tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true; /* gone */
	bool left = fscanf(f, "%ld", &nr) == 1 && nr != SYS_clone &&
		    nr != SYS_fork && nr != SYS_clone3;
	fclose(f);
	return left;
}

/*
 * Wait for the fork event of a fork let go.  A fork can fail after it was
 * let go — a signal arrived (the kernel restarts it: a new notification
 * from the same thread), or a limit — and then no event comes: stop
 * waiting when the thread asks again or is seen in another call.
 */
static int wait_fork_event(struct lp_host *H, struct lp_vm *vm, uint64_t seen,
			   uint64_t seen_started, pid_t tid)
{
	for (int ms = 0;; ms++) {
		if (vm_wait_fork(vm, seen, 1) == 0)
			return 0;
		if (vm_fork_started(vm, seen_started))
			break; /* the child vm is being built: wait for it */
		if (ms >= 2000)
			return -ETIMEDOUT;
		if ((H->queue && queued_from(H->queue, tid)) || left_fork(tid)) {
			/* Out of the call: its event, if any, was read (the
			 * caller waits for that); it is counted a moment
			 * later. */
			for (int k = 0; k < 20 && !vm_fork_started(vm, seen_started); k++)
				usleep(1000);
			if (!vm_fork_started(vm, seen_started))
				return -ECHILD; /* failed: no event */
			break;
		}
	}
	/* A child vm is being built from our table: it must not change
	 * meanwhile, however long that takes. */
	for (int s = 0; s < 60; s++)
		if (vm_wait_fork(vm, seen, 1000) == 0)
			return 0;
	return -ETIMEDOUT;
}

/*
 * A fork of a process whose memory vm serves.  The pages must hold still
 * while the kernel copies the page tables and while the child vm copies
 * ours: freeze, let the fork go, wait for its UFFD_EVENT_FORK to be served,
 * thaw.  Then find the child's pid, which the child vm needs to be found
 * again (its own memory calls) and tells it apart.
 */
static void do_fork(struct lp_host *H, struct lp_vm *vm,
		    const struct seccomp_notif *req,
		    struct seccomp_notif_resp *resp)
{
	pid_t before[256];
	size_t nb = children_of(req->pid, before, 256);

	pthread_mutex_lock(&vm->kids_lock);
	uint64_t seen = vm->forks_served, seen_started = vm->forks_started;
	pthread_mutex_unlock(&vm->kids_lock);

	vm_freeze(vm);
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	int sent = send_resp(H, resp);
	/* No event comes when the fork fails before copying memory. */
	int rc = sent ? -ENOENT : wait_fork_event(H, vm, seen, seen_started, req->pid);
	vm_thaw(vm);
	if (rc)
		return;

	/* The kernel links the child into our caller's children before it
	 * sends the fork event, so it is listed now unless it has been
	 * reaped already; a few tries cover a listing that missed it. */
	for (int tries = 0; tries < 4; tries++) {
		pid_t now[256];
		size_t nn = children_of(req->pid, now, 256);
		for (size_t i = 0; i < nn; i++) {
			bool old = false;
			for (size_t j = 0; j < nb && !old; j++)
				old = now[i] == before[j];
			if (old)
				continue;
			pthread_mutex_lock(&vm->kids_lock);
			if (vm->newest && !vm->newest->pid)
				vm->newest->pid = now[i];
			pthread_mutex_unlock(&vm->kids_lock);
			return;
		}
		usleep(200);
	}
	/* Gone already (it exited and was reaped): its vm finds out alone. */
}

static void serve(struct lp_host *H, const struct seccomp_notif *req,
		  struct seccomp_notif_resp *resp)
{
	const __u64 *a = req->data.args;
	long res = 0;
	int handled = 1;

	memset(resp, 0, sizeof(*resp));
	resp->id = req->id;

	pthread_mutex_lock(&H->lock);
	struct lp_vm *vm = find_vm(H->vm, req->pid, getpid());
	bool ours = vm == H->vm;
	if (!vm) {
		handled = 0; /* an address space we do not serve */
	} else if (req->data.nr == SYS_fork || req->data.nr == SYS_clone ||
		   req->data.nr == SYS_clone3) {
		if (is_fork(req, vm, ours)) {
			do_fork(H, vm, req, resp);
			pthread_mutex_unlock(&H->lock);
			return;
		}
		handled = 0;
	} else if (!ours && req->data.nr == SYS_brk) {
		res = host_brk(vm, a[0], false);
	} else if (!ours) {
		/* A forked child: prepare our table, then the kernel acts. */
		switch (req->data.nr) {
		case SYS_munmap:
		case SYS_madvise:
			if (vm_overlaps(vm, a[0], a[1]))
				(void)vm_discard(vm, a[0] & ~(LP_PG - 1), a[1], false);
			break;
		case SYS_mremap:
			/* The kernel moves the mapping out of our reach: make
			 * every page present so that it takes their content;
			 * or grows it in place, registered: know the growth. */
			if (vm_overlaps(vm, a[0], a[1]) && H->h)
				(void)vm_child_mremap_prep(vm, H->h, a[0], a[1],
							   a[2], (int)a[3]);
			break;
		}
		handled = 0;
	} else {
		switch (req->data.nr) {
		case SYS_brk:
			res = host_brk(vm, a[0], true);
			break;
		case SYS_mmap:
			handled = do_mmap(H, req, &res);
			break;
		case SYS_munmap:
			if ((handled = vm_overlaps(vm, a[0], a[1])))
				res = vm_munmap(vm, a[0], a[1]);
			break;
		case SYS_mremap:
			if ((handled = vm_overlaps(vm, a[0], a[1] ? a[1] : LP_PG)))
				res = vm_mremap(vm, a[0], a[1], a[2], (int)a[3], a[4]);
			break;
		case SYS_madvise:
			if ((handled = vm_overlaps(vm, a[0], a[1])))
				res = vm_discard(vm, a[0], a[1], true);
			break;
		default:
			handled = 0;
		}
	}
	pthread_mutex_unlock(&H->lock);
	if (!handled) {
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	} else if (res < 0 && res > -4096) {
		resp->error = (int)res;
	} else {
		resp->val = res;
	}
	(void)send_resp(H, resp);
}

/*
 * Notifications are received by one thread and served in order by another.
 * A caller is interruptible until its notification is received
 * (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV makes it killable only after):
 * a signal meanwhile fails the call with EINTR, which fork, mmap or brk
 * never return natively.  So the receiver never waits on anything but the
 * next notification, while serving may (a fork waits for its event).
 */
static void *serve_main(void *arg)
{
	struct notif_queue *q = arg;
	struct seccomp_notif_resp *resp = calloc(1, q->resp_size);

	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (!q->head && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		struct notif_item *it = q->head;
		if (it) {
			q->head = it->next;
			if (!q->head)
				q->tail = &q->head;
		}
		pthread_mutex_unlock(&q->lock);
		if (!it)
			break; /* stopped, all served */
		if (resp)
			serve(q->H, &it->req, resp);
		free(it);
	}
	free(resp);
	return NULL;
}

struct receiver {
	struct notif_queue *q;
	size_t req_size;
	int cpu;
	pthread_t thread;
};

static void *receive_main(void *arg)
{
	struct receiver *r = arg;
	struct notif_queue *q = r->q;
	struct lp_host *H = q->H;
	struct pollfd pfd[2] = {
		{ .fd = H->listener, .events = POLLIN },
		{ .fd = H->stop_fd, .events = POLLIN },
	};

	if (r->cpu >= 0) {
		/* The caller's CPU goes idle as it waits: its own receiver
		 * runs there at once, instead of one woken on another CPU
		 * tens of microseconds later. */
		(void)prim_pin_self(r->cpu);
	}
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLHUP | POLLERR) && !(pfd[0].revents & POLLIN))
			break; /* nobody has the filter any more */
		struct notif_item *it = calloc(1, offsetof(struct notif_item, req) + r->req_size);
		if (!it) {
			usleep(1000); /* the caller waits; try again */
			continue;
		}
		/* Another receiver may have taken it: RECV then waits for
		 * the next one, as poll would. */
		if (ioctl(H->listener, SECCOMP_IOCTL_NOTIF_RECV, &it->req) < 0) {
			int e = errno;
			free(it);
			if (e == EINTR || e == ENOENT)
				continue;
			break;
		}
		pthread_mutex_lock(&q->lock);
		*q->tail = it;
		q->tail = &it->next;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->lock);
	}
	return NULL;
}

#define MAX_RECEIVERS 8

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
	pthread_cond_init(&q.cond, NULL);
	pthread_t server;
	if (pthread_create(&server, NULL, serve_main, &q))
		return NULL;
	H->queue = &q;

	/* One receiver per CPU we may run on (this thread is the first).
	 * Linux 6.6+ also wakes the receiver on the caller's CPU. */
	struct receiver rs[MAX_RECEIVERS];
	unsigned nr = 0;
	size_t req_size = sz.seccomp_notif > sizeof(struct seccomp_notif)
				  ? sz.seccomp_notif
				  : sizeof(struct seccomp_notif);
	(void)ioctl(H->listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS,
		    SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	int cpus[MAX_RECEIVERS];
	int ncpu = prim_allowed_cpus(cpus, MAX_RECEIVERS);
	for (int i = 0; ncpu > 1 && i < ncpu; i++)
		rs[nr++] = (struct receiver){ &q, req_size, cpus[i], 0 };
	if (nr == 0)
		rs[nr++] = (struct receiver){ &q, req_size, -1, 0 };
	unsigned started = 1;
	for (unsigned i = 1; i < nr; i++) {
		if (pthread_create(&rs[i].thread, NULL, receive_main, &rs[i]))
			break;
		started++;
	}
	receive_main(&rs[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(rs[i].thread, NULL);

	pthread_mutex_lock(&q.lock);
	q.stop = true;
	pthread_cond_signal(&q.cond);
	pthread_mutex_unlock(&q.lock);
	pthread_join(server, NULL);
	H->queue = NULL;
	pthread_mutex_destroy(&q.lock);
	pthread_cond_destroy(&q.cond);
	return NULL;
}
