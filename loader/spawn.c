/* SPDX-License-Identifier: MIT */
/*
 * lp_spawn and friends: the caller's side of running a program (see the
 * header).  The pager is forked twice (so that it is nobody's zombie: the
 * caller waits for the program through the shared page, not through
 * waitpid), and reports through one shared page: whether the program
 * started, its state changes as wait statuses, and its statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader/exec.h"
#include "loader/host.h"

extern char **environ;

struct lp_proc {
	struct lp_shared *sh;  /* the first program's: &tree->top */
	struct lp_tree *tree;
	int tree_fd;
	pid_t pid;
	int pager_fd;          /* pidfd of the pager */
	unsigned consumed;     /* statuses reported so far */
	bool exited;
	pid_t owner;           /* the caller of lp_spawn (a fork child is not) */
};

/* p used in a child of fork() of its owner: the program is not ours to
 * wait for, signal or kill there. */
static bool foreign(const struct lp_proc *p)
{
	return getpid() != p->owner;
}

static void set_err(struct lp_spawn_err *err, int kind, const char *msg)
{
	if (!err)
		return;
	memset(err, 0, sizeof(*err)); /* its reserved fields too */
	err->kind = kind;
	snprintf(err->msg, sizeof(err->msg), "%s", msg);
}

static int futex_wait(atomic_uint *w, unsigned val, int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (syscall(SYS_futex, w, FUTEX_WAIT, val, &ts, NULL, 0) < 0)
		return -errno;
	return 0;
}

static bool pager_gone(const struct lp_proc *p)
{
	struct pollfd pf = { .fd = p->pager_fd, .events = POLLIN };

	return poll(&pf, 1, 0) > 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* The pager's own watchdog ends it within a second of its teardown; past
 * END_MS we end it ourselves. */
#define END_MS 3000

/*
 * Wait until the pager is gone, or stays for children the program forked
 * (natively they would outlive it too).  Signals do not cut this short:
 * once it returns, nothing of the run holds the program's descriptors, a
 * swap file or a process, apart from such children and their pager.
 */
static void end_pager(struct lp_proc *p)
{
	if (p->pager_fd < 0)
		return;
	long end = now_ms() + END_MS;
	for (;;) {
		struct pollfd pf = { .fd = p->pager_fd, .events = POLLIN };
		long left = end - now_ms();
		if (atomic_load(&p->sh->phase) == SH_P_KIDS)
			return;
		if (left <= 0)
			break;
		if (poll(&pf, 1, left < 20 ? (int)left : 20) > 0)
			return;
	}
	syscall(SYS_pidfd_send_signal, p->pager_fd, SIGKILL, NULL, 0);
	struct pollfd pf = { .fd = p->pager_fd, .events = POLLIN };
	while (poll(&pf, 1, 1000) < 0 && errno == EINTR)
		;
}

/* A memory cap too small to run anything is refused at once: 0 or
 * -EINVAL (said in err). */
static int check_cap(const struct lp_config *cfg, struct lp_spawn_err *err)
{
	char m[128];

	if (!cfg->frames || cfg->frames >= LP_PROC_MIN_FRAMES)
		return 0;
	snprintf(m, sizeof m, "memory cap of %zu KiB is too small: a program "
			      "needs at least %u KiB",
		 cfg->frames * 4, LP_PROC_MIN_FRAMES * 4);
	set_err(err, LP_SPAWN_CAP, m);
	return -EINVAL;
}

/* The configuration the tree's executed programs run with: cfg's, its
 * strings copied into the page. */
static void tree_config_set(struct tree_config *c, const struct lp_config *cfg)
{
	c->cfg = *cfg;
	c->cfg.policy = NULL;
	c->cfg.swap_path = NULL;
	c->cfg.remote = NULL;
	c->cfg.flags &= ~LP_CFG_STATS_AT_EXIT;
	if (cfg->remote)
		c->has_remote = snprintf(c->remote, sizeof c->remote, "%s",
					 cfg->remote) < (int)sizeof c->remote;
	if (cfg->policy)
		c->has_policy = snprintf(c->policy, sizeof c->policy, "%s",
					 cfg->policy) < (int)sizeof c->policy;
	if (cfg->swap_path)
		c->has_swap = snprintf(c->swap_path, sizeof c->swap_path, "%s",
				       cfg->swap_path) < (int)sizeof c->swap_path;
}

/* A new lp_proc with the tree's shared page (a memfd: the pagers of
 * programs the tree executes open it), or NULL (said in err). */
static struct lp_proc *proc_new(const struct lp_config *cfg,
				struct lp_spawn_err *err)
{
	struct lp_proc *p = calloc(1, sizeof(*p));
	int fd = (int)syscall(SYS_memfd_create, "lazypage-tree", MFD_CLOEXEC);
	struct lp_tree *t = MAP_FAILED;

	if (fd >= 0 && ftruncate(fd, sizeof(*t)) == 0)
		t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!p || t == MAP_FAILED) {
		free(p);
		if (fd >= 0)
			close(fd);
		set_err(err, LP_SPAWN_SYSTEM, "out of memory");
		return NULL;
	}
	p->tree = t;
	p->tree_fd = fd;
	p->sh = &t->top;
	p->sh->stats.fault_kinds = LP_FAULT_KINDS; /* all zero until published */
	for (unsigned i = 0; i < TREE_SLOTS; i++)
		t->slot[i].stats.fault_kinds = LP_FAULT_KINDS;
	tree_config_set(&t->config, cfg);
	t->share.cap = cfg->frames;
	p->pager_fd = -1;
	p->owner = getpid();
	return p;
}

/* Fork the pager, through an intermediate that leaves at once; the pager
 * left its pid on the shared page, p->pager_fd is its pidfd.  0 or -errno
 * (said in err). */
static int fork_pager(struct lp_proc *p, const char *path, char *const argv[],
		      char *const envp[], const struct lp_config *cfg,
		      struct lp_spawn_err *err)
{
	struct lp_shared *sh = p->sh;
	int caller = (int)syscall(SYS_pidfd_open, getpid(), 0);
	pid_t mid = fork();
	int st;

	if (mid < 0) {
		int e = -errno;
		close(caller);
		set_err(err, LP_SPAWN_SYSTEM, "fork failed");
		return e;
	}
	if (mid == 0) {
		/* The intermediate: fork the pager and leave at once. */
		pid_t pager = fork();
		if (pager > 0)
			sh->pager = pager;
		if (pager == 0) {
			_exit(host_main(path, argv, envp ? envp : environ, cfg, sh,
					caller, p->tree_fd));
		}
		_exit(pager < 0 ? 1 : 0);
	}
	close(caller);
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		set_err(err, LP_SPAWN_SYSTEM, "cannot fork the pager");
		return -EAGAIN;
	}
	p->pager_fd = (int)syscall(SYS_pidfd_open, sh->pager, 0);
	return 0;
}

/* Wait until the pager says whether the program started: 0, or -errno
 * with the pager's reason in err. */
static int wait_started(struct lp_proc *p, struct lp_spawn_err *err)
{
	struct lp_shared *sh = p->sh;

	for (;;) {
		unsigned ev = atomic_load(&sh->events);
		if (atomic_load(&sh->state) != SH_STARTING)
			break;
		if (p->pager_fd < 0 || pager_gone(p)) {
			if (atomic_load(&sh->state) != SH_STARTING)
				break;
			set_err(err, LP_SPAWN_SYSTEM, "the pager died while starting");
			return -EPIPE;
		}
		/* (Not interrupted by signals: a timed futex wait returns
		 * EINTR for any handler, SA_RESTART or not.) */
		futex_wait(&sh->events, ev, 100);
	}
	if (atomic_load(&sh->state) == SH_FAILED) {
		if (err)
			*err = sh->why;
		return sh->err ? sh->err : -EIO;
	}
	return 0;
}

int lp_spawn(struct lp_proc **out, const char *path, char *const argv[],
	     char *const envp[], const struct lp_config *cfg,
	     struct lp_spawn_err *err)
{
	struct lp_config defaults;
	int rc;

	set_err(err, LP_SPAWN_OK, "");
	if (!out || !path || !*path || !argv || !argv[0]) {
		set_err(err, LP_SPAWN_SYSTEM, "invalid argument");
		return -EINVAL;
	}
	*out = NULL;
	if (!cfg) {
		lp_config_init(&defaults);
		cfg = &defaults;
	}
	if ((rc = check_cap(cfg, err)))
		return rc;
	struct lp_proc *p = proc_new(cfg, err);
	if (!p)
		return -ENOMEM;
	rc = fork_pager(p, path, argv, envp, cfg, err);
	if (!rc)
		rc = wait_started(p, err);
	if (rc) {
		lp_proc_free(p);
		return rc;
	}
	p->pid = p->sh->pid;
	*out = p;
	return 0;
}

pid_t lp_proc_pid(const struct lp_proc *p)
{
	return p ? p->pid : -1;
}

int lp_wait(struct lp_proc *p, int *status, int options)
{
	if (!p || !status || (options & ~(WNOHANG | WUNTRACED | WCONTINUED)))
		return -EINVAL;
	if (foreign(p))
		return -ECHILD;
	for (;;) {
		unsigned ev = atomic_load(&p->sh->events);
		unsigned n = atomic_load(&p->sh->nstat);
		while (p->consumed < n) {
			int s = p->sh->stat[p->consumed % SH_NSTAT];
			p->consumed++;
			if (WIFSTOPPED(s) && !(options & WUNTRACED))
				continue;
			if (WIFCONTINUED(s) && !(options & WCONTINUED))
				continue;
			if (WIFEXITED(s) || WIFSIGNALED(s))
				p->exited = true;
			*status = s;
			return 1;
		}
		if (p->exited)
			return -ECHILD;
		if (p->pager_fd >= 0 && pager_gone(p) &&
		    atomic_load(&p->sh->nstat) == n)
			return -EPIPE;
		if (options & WNOHANG)
			return 0;
		if (futex_wait(&p->sh->events, ev, 200) == -EINTR)
			return -EINTR;
	}
}

/* One pager's statistics (its seqlock): 0, or -EPIPE if it was killed
 * while it wrote them (gone says whether it is). */
static int read_stats(const struct lp_shared *sh, struct lp_stats *st,
		      bool (*gone)(const struct lp_proc *), const struct lp_proc *p)
{
	for (unsigned i = 1;; i++) {
		unsigned a = atomic_load(&sh->seq);
		atomic_thread_fence(memory_order_acquire);
		*st = sh->stats;
		atomic_thread_fence(memory_order_acquire);
		if (!(a & 1) && atomic_load(&sh->seq) == a)
			return 0;
		/* A pager killed while it wrote leaves the seqlock odd. */
		if (i % 1024 == 0 && gone(p) && atomic_load(&sh->seq) == a)
			return -EPIPE;
		sched_yield();
	}
}

static bool top_gone(const struct lp_proc *p)
{
	return p->pager_fd >= 0 && pager_gone(p);
}

static bool never(const struct lp_proc *p)
{
	(void)p;
	return true; /* a pager of the tree: give up on a torn copy */
}

int lp_proc_stats(struct lp_proc *p, struct lp_stats *st)
{
	if (!p || !st)
		return -EINVAL;
	if (foreign(p))
		return -ECHILD;
	int rc = read_stats(p->sh, st, top_gone, p);
	if (rc)
		return rc;
	/* The programs it executed: those that ended, those that run. */
	struct lp_tree *T = p->tree;
	uint64_t peaks = st->peak_frames;
	tree_lock(T);
	stats_fold(st, &T->done);
	peaks += T->done.peak_frames;
	for (unsigned i = 0; i < TREE_SLOTS; i++) {
		struct lp_stats one;
		if (!atomic_load(&T->counted[i]) ||
		    read_stats(&T->slot[i], &one, never, p))
			continue;
		stats_fold(st, &one);
		peaks += one.peak_frames;
	}
	tree_unlock(T);
	/* Under the shared budget, the largest sum seen at once. */
	uint64_t peak = atomic_load(&T->share.peak);
	st->peak_frames = peak ? peak : peaks;
	return 0;
}

int lp_proc_tree(struct lp_proc *p, struct lp_proc_info *out, unsigned max)
{
	if (!p || (!out && max))
		return -EINVAL;
	if (foreign(p))
		return -ECHILD;
	unsigned n = atomic_load(&p->tree->nlog);
	if (n > LP_PROC_TREE_MAX)
		n = LP_PROC_TREE_MAX;
	for (unsigned i = 0; i < n && i < max; i++) {
		struct lp_proc_info *e = &p->tree->log[i];
		int running = __atomic_load_n(&e->running, __ATOMIC_ACQUIRE);
		out[i] = *e;
		out[i].running = running;
		memset(out[i].reserved, 0, sizeof out[i].reserved);
		out[i].program[sizeof out[i].program - 1] = 0;
	}
	return (int)n;
}

int lp_proc_kill(struct lp_proc *p, int sig)
{
	if (p && foreign(p))
		return -ECHILD;
	if (!p || p->exited)
		return -ESRCH;
	return kill(p->pid, sig) ? -errno : 0;
}

void lp_proc_free(struct lp_proc *p)
{
	if (!p)
		return;
	if (foreign(p)) {
		/* A fork child's copy: release the memory only (the pidfd
		 * is close-on-exec; its number may be reused by now). */
		munmap(p->tree, sizeof(*p->tree));
		free(p);
		return;
	}
	if (p->pid > 0 && !p->exited)
		kill(p->pid, SIGKILL);
	end_pager(p);
	if (p->pager_fd >= 0)
		close(p->pager_fd);
	close(p->tree_fd);
	munmap(p->tree, sizeof(*p->tree));
	free(p);
}

int lp_exec_main(int argc, char **argv, char **envp)
{
	if (argc < 5 || !argv || !argv[0] || strcmp(argv[0], EXEC_MARK)) {
		/* An ordinary run: we can be the helper of our pagers. */
		if (exec_helper() < 0)
			exec_set_helper(open("/proc/self/exe", O_PATH | O_CLOEXEC), -1);
		return 0;
	}
	/* argv: mark, the tree's page, the program, its AT_EXECFN, then its
	 * own argv; envp is its own.  We were executed as /proc/PID/fd/N:
	 * our name would be "N"; a pager is named as the binary it is. */
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		const char *base = strrchr(self, '/');
		prctl(PR_SET_NAME, base ? base + 1 : self, 0, 0, 0);
	}
	host_exec_main(argv[1], argv[2], argv[3], argv + 4, envp);
	/* It cannot run managed: as the kernel would run it. */
	syscall(SYS_execve, argv[2], argv + 4, envp, EXEC_MAGIC);
	_exit(127);
}
