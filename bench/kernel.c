/* SPDX-License-Identifier: MIT */
/* The kernel's own paging as a baseline: a swap file and a memory cgroup. */
#include "kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define V1_ROOT "/sys/fs/cgroup/memory"
#define V2_ROOT "/sys/fs/cgroup"

struct kpage {
	bool v2;
	bool swap_on;
	bool shared_swap;       /* a swap area that was on before us */
	pid_t child;            /* running child, killed by the cleanup */
	char cg[128];           /* the cgroup's directory, "" when none */
	char swap[PATH_MAX];    /* the swap file, "" when none */
};

/* The kpage of this process, for the cleanup on a signal or at exit: a
 * signal handler has no other way to find it. */
static struct kpage *volatile active;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int fail(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return err;
}

/* Async-signal-safe: system calls only. */
static void undo(struct kpage *k)
{
	if (k->child > 0) {
		kill(k->child, SIGKILL);
		waitpid(k->child, NULL, 0);
		k->child = 0;
	}
	if (k->cg[0]) {
		/* The cgroup empties a moment after its last task exits. */
		for (int i = 0; i < 200; i++) {
			if (rmdir(k->cg) == 0 || errno == ENOENT)
				break;
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		k->cg[0] = 0;
	}
	if (k->swap_on) {
		swapoff(k->swap);
		k->swap_on = false;
	}
	if (k->swap[0]) {
		unlink(k->swap);
		k->swap[0] = 0;
	}
}

static void on_signal(int sig)
{
	struct kpage *k = active;

	if (k)
		undo(k);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_exit_undo(void)
{
	struct kpage *k = active;

	if (k)
		undo(k);
}

static void guard(struct kpage *k)
{
	static bool installed;
	struct sigaction sa = { .sa_handler = on_signal };

	active = k;
	if (installed)
		return;
	installed = true;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	atexit(on_exit_undo);
}

/* In a child: the parent's cleanup is not ours. */
static void unguard(void)
{
	active = NULL;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
}

static int put(const char *dir, const char *file, const char *fmt, ...)
{
	char path[PATH_MAX + 64], buf[64];
	va_list ap;
	int fd, n, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n)
		rc = -errno;
	close(fd);
	return rc;
}

static int get_u64(const char *dir, const char *file, uint64_t *v)
{
	char path[PATH_MAX + 64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	*v = strtoull(buf, NULL, 10); /* v2 "max" reads as 0 */
	return 0;
}

/* pswpin and pswpout of /proc/vmstat. */
static void vmstat_swap(uint64_t *in, uint64_t *out)
{
	char line[128];
	FILE *f = fopen("/proc/vmstat", "re");

	*in = *out = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;
		if (sscanf(line, "pswpin %llu", &v) == 1)
			*in = v;
		else if (sscanf(line, "pswpout %llu", &v) == 1)
			*out = v;
	}
	fclose(f);
}

static bool has_word(const char *path, const char *word)
{
	char buf[512];
	FILE *f = fopen(path, "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fscanf(f, "%511s", buf) == 1)
		found = !strcmp(buf, word);
	fclose(f);
	return found;
}

/* Free swap space, in bytes, over every swap area that is on. */
static uint64_t swap_free(void)
{
	char line[512];
	FILE *f = fopen("/proc/swaps", "re");
	uint64_t total = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long size, used;
		if (sscanf(line, "%*s %*s %llu %llu", &size, &used) == 2 &&
		    size > used)
			total += (size - used) * 1024;
	}
	fclose(f);
	return total;
}

static int write_zeros(const char *path, uint64_t bytes)
{
	static char zero[1 << 20];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return -errno;
	for (uint64_t done = 0; done < bytes && !rc; done += sizeof(zero))
		if (write(fd, zero, sizeof(zero)) != (ssize_t)sizeof(zero))
			rc = errno ? -errno : -EIO;
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

static int mkswap(const char *path)
{
	char *argv[] = { "mkswap", (char *)path, NULL };
	posix_spawn_file_actions_t fa;
	int status, rc;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, "mkswap", &fa, NULL, argv, NULL);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int kpage_open(struct kpage **out, const char *swap_dir, uint64_t swap_bytes,
	       char *why, size_t whylen)
{
	struct kpage *k;
	const char *root;
	int rc;

	*out = NULL;
	if (geteuid() != 0)
		return fail(why, whylen, -EPERM,
			    "needs root (swapon, a memory cgroup)");
	bool v2 = false;
	if (access(V1_ROOT "/memory.limit_in_bytes", W_OK) == 0) {
		root = V1_ROOT;
	} else if (has_word(V2_ROOT "/cgroup.controllers", "memory")) {
		root = V2_ROOT;
		v2 = true;
		if (!has_word(V2_ROOT "/cgroup.subtree_control", "memory") &&
		    (rc = put(V2_ROOT, "cgroup.subtree_control", "+memory")))
			return fail(why, whylen, rc,
				    "cannot enable the memory controller in "
				    V2_ROOT ": %s", strerror(-rc));
	} else {
		return fail(why, whylen, -ENOENT,
			    "no memory cgroup (neither v1 at " V1_ROOT
			    " nor v2 with the memory controller)");
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return fail(why, whylen, -ENOMEM, "out of memory");
	k->v2 = v2;
	guard(k);

	/* The kernel frees a page's swap copy when it swaps it in once swap
	 * is half full (vm_swap_full()), and writes it again at the next
	 * eviction: with four times what the run needs, that never happens,
	 * as on a machine with ordinary swap. */
	swap_bytes = 4 * swap_bytes + (16 << 20);
	if (swap_free() >= swap_bytes) {
		/* Swap is on already (bench/run turns on one for the run). */
		k->shared_swap = true;
		goto cgroup;
	}
	snprintf(k->swap, sizeof(k->swap), "%s/lp-bench-swap.%d", swap_dir,
		 (int)getpid());
	/* Whole MiB, and one more for the header. */
	rc = write_zeros(k->swap, ((swap_bytes >> 20) + 2) << 20);
	if (rc) {
		fail(why, whylen, rc, "%s: %s", k->swap, strerror(-rc));
		if (rc == -EEXIST)
			k->swap[0] = 0; /* not ours */
		goto err;
	}
	rc = mkswap(k->swap);
	if (rc) {
		fail(why, whylen, rc, "mkswap %s failed", k->swap);
		goto err;
	}
	if (swapon(k->swap, SWAP_FLAG_PREFER |
		   ((32767 << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK))) {
		rc = -errno;
		fail(why, whylen, rc, "swapon %s: %s (a filesystem that takes "
		     "swap files? --swap-dir)", k->swap, strerror(errno));
		goto err;
	}
	k->swap_on = true;
cgroup:
	snprintf(k->cg, sizeof(k->cg), "%s/lp-bench.%d", root, (int)getpid());
	if (mkdir(k->cg, 0755)) {
		rc = -errno;
		fail(why, whylen, rc, "%s: %s", k->cg, strerror(errno));
		if (rc == -EEXIST)
			k->cg[0] = 0;
		goto err;
	}
	*out = k;
	return 0;
err:
	kpage_close(k);
	return rc;
}

bool kpage_own_swap(const struct kpage *k)
{
	return !k->shared_swap;
}

void kpage_close(struct kpage *k)
{
	if (!k)
		return;
	undo(k);
	if (active == k)
		active = NULL;
	free(k);
}

static int set_limit(struct kpage *k, uint64_t bytes)
{
	if (k->v2)
		return bytes ? put(k->cg, "memory.max", "%llu",
				   (unsigned long long)bytes)
			     : put(k->cg, "memory.max", "max");
	return put(k->cg, "memory.limit_in_bytes", "%lld",
		   bytes ? (long long)bytes : -1LL);
}

static uint64_t usage(struct kpage *k)
{
	uint64_t v = 0;

	(void)get_u64(k->cg, k->v2 ? "memory.current" : "memory.usage_in_bytes",
		      &v);
	return v;
}

static uint64_t peak(struct kpage *k)
{
	uint64_t v = 0;

	(void)get_u64(k->cg, k->v2 ? "memory.peak" : "memory.max_usage_in_bytes",
		      &v);
	return v;
}

static void reset_peak(struct kpage *k)
{
	/* v2's memory.peak resets per open file only (6.12+): left alone. */
	if (!k->v2)
		(void)put(k->cg, "memory.max_usage_in_bytes", "0");
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (ssize_t)done;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* The child of kpage_run_access: what it sends back. */
struct child_msg {
	struct kpage_result r;
	int err;                /* -errno of a failed step, or 0 */
	char why[256];
};

struct child_sync {
	int ready_w, go_r;
	struct rusage ru0;
	uint64_t in0, out0;
};

/* In the child, every thread waiting: tell the parent, wait for go. */
static int child_ready(void *arg)
{
	struct child_sync *s = arg;
	char c = 'r';

	if (write(s->ready_w, &c, 1) != 1 || read_full(s->go_r, &c, 1) != 1 ||
	    c != 'g')
		return -ECANCELED;
	vmstat_swap(&s->in0, &s->out0);
	getrusage(RUSAGE_SELF, &s->ru0);
	return 0;
}

static void child_access(struct kpage *k, struct bench_access *a,
			 struct child_sync *s, int res_w)
{
	struct child_msg m = { 0 };
	size_t len = (size_t)a->npages * BENCH_PG;
	unsigned char *vec = NULL;
	struct rusage ru1;
	uint64_t in1, out1;
	void *mem;
	int rc;

	unguard();
	rc = put(k->cg, "cgroup.procs", "%d", (int)getpid());
	if (rc) {
		m.err = rc;
		snprintf(m.why, sizeof(m.why), "joining %s: %s", k->cg,
			 strerror(-rc));
		goto out;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	vec = malloc(a->npages ? a->npages : 1);
	if (mem == MAP_FAILED || !vec) {
		m.err = -ENOMEM;
		snprintf(m.why, sizeof(m.why), "no memory for the region");
		goto out;
	}
	/* Base pages, as the runtime's are: no transparent huge pages. */
	(void)madvise(mem, len, MADV_NOHUGEPAGE);
	a->base = mem;
	/* Charge our own bookkeeping now, before the parent measures it. */
	memset(a->seen, 0, a->npages);
	memset(vec, 0, a->npages);
	a->ready = child_ready;
	a->ready_arg = s;
	struct bench_access_result ar;
	rc = bench_access_run(a, &ar);
	if (rc) {
		m.err = rc;
		snprintf(m.why, sizeof(m.why), "the run did not start: %s",
			 strerror(-rc));
		goto out;
	}
	getrusage(RUSAGE_SELF, &ru1);
	vmstat_swap(&in1, &out1);
	m.r.ns = ar.ns;
	m.r.lat = ar.lat;
	m.r.majflt = (uint64_t)(ru1.ru_majflt - s->ru0.ru_majflt);
	m.r.minflt = (uint64_t)(ru1.ru_minflt - s->ru0.ru_minflt);
	m.r.pswpin = in1 - s->in0;
	m.r.pswpout = out1 - s->out0;
	if (mincore(mem, len, vec) == 0)
		for (uint64_t p = 0; p < a->npages; p++)
			m.r.resident += vec[p] & 1;
	m.r.bad = ar.bad + bench_access_verify(a);
out:
	(void)!write(res_w, &m, sizeof(m));
	_exit(0);
}

/* What the ready child really uses.  The cgroup's usage counts pages
 * charged ahead per CPU (up to 64 each) that nobody uses yet.  A limit
 * below the usage makes the kernel take them back (on other CPUs a moment
 * later, or reclaim a page when there were none): until the usage holds
 * still, it is then what the child really has. */
static uint64_t settled_usage(struct kpage *k)
{
	uint64_t u = usage(k);

	for (int i = 0; i < 4 && u > BENCH_PG; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		(void)set_limit(k, u - BENCH_PG);
		nanosleep(&ts, NULL);
		uint64_t now = usage(k);
		bool still = now + 2 * BENCH_PG >= u;
		u = now;
		if (still)
			break;
	}
	return u;
}

int kpage_run_access(struct kpage *k, struct bench_access *a, uint64_t budget,
		     struct kpage_result *r, char *why, size_t whylen)
{
	int ready[2] = { -1, -1 }, go[2] = { -1, -1 }, res[2] = { -1, -1 };
	struct child_msg m;
	struct rusage ru;
	int rc, status;
	pid_t pid;
	char c;

	memset(r, 0, sizeof(*r));
	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC) ||
	    pipe2(res, O_CLOEXEC)) {
		rc = fail(why, whylen, -errno, "pipe: %s", strerror(errno));
		goto out;
	}
	rc = set_limit(k, 0);
	if (rc) {
		fail(why, whylen, rc, "%s: cannot lift the limit: %s", k->cg,
		     strerror(-rc));
		goto out;
	}
	reset_peak(k);
	pid = fork();
	if (pid < 0) {
		rc = fail(why, whylen, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		struct child_sync s = { .ready_w = ready[1], .go_r = go[0] };
		close(ready[0]);
		close(go[1]);
		close(res[0]);
		child_access(k, a, &s, res[1]);
	}
	k->child = pid;
	close(ready[1]);
	close(go[0]);
	close(res[1]);
	ready[1] = go[0] = res[1] = -1;

	if (read_full(ready[0], &c, 1) == 1) {
		r->base_bytes = settled_usage(k);
		r->limit_bytes = r->base_bytes + budget;
		rc = set_limit(k, r->limit_bytes);
		c = rc ? 'a' : 'g';
		(void)!write(go[1], &c, 1);
		if (rc)
			fail(why, whylen, rc, "%s: cannot set the limit: %s",
			     k->cg, strerror(-rc));
	}
	ssize_t got = read_full(res[0], &m, sizeof(m));
	if (wait4(pid, &status, 0, &ru) < 0)
		status = 0;
	k->child = 0;
	r->status = status;
	r->maxrss_kb = (uint64_t)ru.ru_maxrss;
	r->peak_bytes = peak(k);
	if (rc)
		goto out;
	if (got != (ssize_t)sizeof(m)) {
		rc = fail(why, whylen, -ECHILD, "the child died (%s %d)%s",
			  WIFSIGNALED(status) ? "signal" : "status",
			  WIFSIGNALED(status) ? WTERMSIG(status)
					      : WEXITSTATUS(status),
			  WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ?
			  ": out of memory in its cgroup?" : "");
		goto out;
	}
	if (m.err) {
		rc = fail(why, whylen, m.err, "%s", m.why);
		goto out;
	}
	m.r.base_bytes = r->base_bytes;
	m.r.limit_bytes = r->limit_bytes;
	m.r.peak_bytes = r->peak_bytes;
	m.r.maxrss_kb = r->maxrss_kb;
	m.r.status = status;
	*r = m.r;
out:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (go[i] >= 0)
			close(go[i]);
		if (res[i] >= 0)
			close(res[i]);
	}
	return rc;
}

/* Programs: killed after this many seconds (0: never). */
static unsigned prog_timeout_s;

void kpage_set_timeout(unsigned seconds)
{
	prog_timeout_s = seconds;
}

/* Only interrupts wait4(). */
static void on_alarm(int sig)
{
	(void)sig;
}

static int run_prog(struct kpage *k, char *const argv[], uint64_t limit,
		    int out_fd, int err_fd, struct kpage_result *r, char *why,
		    size_t whylen)
{
	int go[2], rc = 0, status;
	struct rusage ru;
	uint64_t in0, out0, in1, out1, t0, t1;
	pid_t pid;
	char c = 'g';

	memset(r, 0, sizeof(*r));
	if (pipe2(go, O_CLOEXEC))
		return fail(why, whylen, -errno, "pipe: %s", strerror(errno));
	if (k) {
		rc = set_limit(k, 0);
		if (rc) {
			close(go[0]);
			close(go[1]);
			return fail(why, whylen, rc, "%s: %s", k->cg,
				    strerror(-rc));
		}
		reset_peak(k);
	}
	pid = fork();
	if (pid < 0) {
		rc = fail(why, whylen, -errno, "fork: %s", strerror(errno));
		close(go[0]);
		close(go[1]);
		return rc;
	}
	if (pid == 0) {
		unguard();
		close(go[1]);
		/* Its own process group: a timeout kills all of it (vmrun
		 * and its program). */
		(void)setpgid(0, 0);
		if (read_full(go[0], &c, 1) != 1 || c != 'g')
			_exit(126);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		if (err_fd >= 0)
			dup2(err_fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(go[0]);
	if (k) {
		k->child = pid;
		rc = put(k->cg, "cgroup.procs", "%d", (int)pid);
		if (!rc && limit)
			rc = set_limit(k, limit);
		if (rc) {
			fail(why, whylen, rc, "%s: %s", k->cg, strerror(-rc));
			c = 'a';
		}
		r->limit_bytes = limit;
	}
	vmstat_swap(&in0, &out0);
	t0 = now_ns();
	(void)!write(go[1], &c, 1);
	close(go[1]);
	struct sigaction sa = { .sa_handler = on_alarm }, old_sa;
	if (prog_timeout_s) {
		sigaction(SIGALRM, &sa, &old_sa);
		alarm(prog_timeout_s);
	}
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
		if (prog_timeout_s &&
		    now_ns() - t0 >= (uint64_t)prog_timeout_s * 1000000000u) {
			(void)kill(-pid, SIGKILL);
			(void)kill(pid, SIGKILL);
			r->timed_out = 1;
		}
	}
	t1 = now_ns();
	if (prog_timeout_s) {
		alarm(0);
		sigaction(SIGALRM, &old_sa, NULL);
		if (r->timed_out)
			(void)kill(-pid, SIGKILL); /* what is left of it */
	}
	vmstat_swap(&in1, &out1);
	if (k) {
		k->child = 0;
		r->peak_bytes = peak(k);
	}
	r->ns = t1 - t0;
	r->status = status;
	r->majflt = (uint64_t)ru.ru_majflt;
	r->minflt = (uint64_t)ru.ru_minflt;
	r->maxrss_kb = (uint64_t)ru.ru_maxrss;
	r->pswpin = in1 - in0;
	r->pswpout = out1 - out0;
	if (!rc && WIFEXITED(status) && WEXITSTATUS(status) == 127)
		rc = fail(why, whylen, -ENOENT, "%s: cannot execute", argv[0]);
	return rc;
}

int kpage_run_prog(struct kpage *k, char *const argv[], uint64_t limit,
		   int out_fd, int err_fd, struct kpage_result *r, char *why,
		   size_t whylen)
{
	return run_prog(k, argv, limit, out_fd, err_fd, r, why, whylen);
}

int kpage_run_native(char *const argv[], int out_fd, int err_fd,
		     struct kpage_result *r, char *why, size_t whylen)
{
	return run_prog(NULL, argv, 0, out_fd, err_fd, r, why, whylen);
}
