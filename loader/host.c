/* SPDX-License-Identifier: MIT */
/*
 * The pager's life (see host.h): resolve and load the program, build its
 * stack, give the address space the program's identity, start the program's
 * process, serve it, report its state changes and statistics to the caller,
 * and stay until every process that still needs its memory served is gone.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "fault.h"
#include "evict.h"
#include "fork.h"
#include "loader/elf.h"
#include "loader/exec.h"
#include "loader/host.h"
#include "mmap.h"
#include "prim.h"
#include "loader/stack.h"
#include "loader/trampoline.h"
#include "vm.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif

/* The program's break is the kernel's (brk is never sent to the pager: a
 * call waiting for the pager can be interrupted, and an interrupted brk
 * crashes glibc); it may grow BRK_MAX, unmanaged, up to a guard, then brk
 * fails and malloc takes managed mmap memory instead. */
#define BRK_MAX ((size_t)256 << 10)
#define BRK_GUARD ((size_t)64 << 10)
#define STACK_GUARD ((size_t)1 << 20)
#define STACK_MAX ((size_t)4 << 30)
#define TRAMP_STACK (64u << 10)
#define MAX_SCRIPT_DEPTH 4

static void futex_wake(atomic_uint *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* Something on the shared page changed: wake the caller's waits. */
static void sh_changed(struct lp_shared *sh)
{
	atomic_fetch_add(&sh->events, 1);
	futex_wake(&sh->events);
}

void host_fail(struct lp_shared *sh, int err, int kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sh->why.msg, sizeof(sh->why.msg), fmt, ap);
	va_end(ap);
	sh->why.kind = kind;
	sh->err = err;
	atomic_store(&sh->state, SH_FAILED);
	sh_changed(sh);
}

/* vm_create failed: say which part, naming the path or variable. */
static void vm_create_failed(struct lp_shared *sh, int rc,
			     const struct vm_failure *why,
			     const struct lp_config *cfg)
{
	const char *swap = cfg->swap_path, *tmp = getenv("TMPDIR");

	if (!swap || !*swap)
		swap = tmp && *tmp ? tmp : "/tmp";
	switch (why->part) {
	case VM_PART_SWAP:
		host_fail(sh, rc, LP_SPAWN_SWAP, "swap %s: %s%s", swap,
			  strerror(-rc), rc == -EEXIST
				? " (give a directory, or a path that does not exist yet)"
				: "");
		return;
	case VM_PART_REMOTE:
		host_fail(sh, rc, LP_SPAWN_SWAP, "remote store %s: %s%s", cfg->remote,
			  strerror(-rc),
			  rc == -ECONNREFUSED ? " (fewer servers answer than --replicas)"
			  : rc == -EACCES ? " (set LAZYPAGE_REMOTE_AUTH or LAZYPAGE_REMOTE_AUTH_FILE)"
			  : rc == -ENOTSUP ? " (built without hiredis)"
			  : rc == -EINVAL ? " (redis://host:port,host:port,...; at most "
					    "16 servers, --replicas at most their number)"
			  : "");
		return;
	case VM_PART_ENV:
		host_fail(sh, rc, LP_SPAWN_CONFIG, "%s=%s is malformed (see the README)",
			  why->env, getenv(why->env) ? getenv(why->env) : "");
		return;
	case VM_PART_CONFIG:
		host_fail(sh, rc, LP_SPAWN_CONFIG, "bad configuration: %s",
			  strerror(-rc));
		return;
	case VM_PART_UFFD:
		if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS) {
			host_fail(sh, rc, LP_SPAWN_UNSUPPORTED,
				  "cannot start lazypage: %s (userfaultfd needs "
				  "root, CAP_SYS_PTRACE or access to "
				  "/dev/userfaultfd)", strerror(-rc));
			return;
		}
		break;
	default:
		break;
	}
	host_fail(sh, rc, LP_SPAWN_SYSTEM, "cannot start lazypage: %s",
		  strerror(-rc));
}

void tree_lock(struct lp_tree *T)
{
	int free_ = 0;

	while (!atomic_compare_exchange_weak(&T->lock, &free_, 1)) {
		free_ = 0;
		sched_yield();
	}
}

void tree_unlock(struct lp_tree *T)
{
	atomic_store(&T->lock, 0);
}

/* Latencies cannot be summed: the busiest process's stand for the sum. */
static void latency_fold(struct lp_latency *sum, const struct lp_latency *l)
{
	uint64_t n = sum->count + l->count;
	uint64_t mean = n ? (sum->mean_ns * sum->count + l->mean_ns * l->count) / n : 0;
	uint64_t max = sum->max_ns > l->max_ns ? sum->max_ns : l->max_ns;

	if (l->count > sum->count) {
		sum->p50_ns = l->p50_ns;
		sum->p90_ns = l->p90_ns;
		sum->p99_ns = l->p99_ns;
	}
	sum->count = n;
	sum->mean_ns = mean;
	sum->max_ns = max;
}

void stats_fold(struct lp_stats *sum, const struct lp_stats *st)
{
	/* Percentiles do not add up: those of the process with the most
	 * swap-ins stand for the tree's, as in latency_fold(). */
	if (st->faults[LP_FAULT_SWAPIN] > sum->faults[LP_FAULT_SWAPIN]) {
		memcpy(sum->miss_phase_p50_ns, st->miss_phase_p50_ns,
		       sizeof sum->miss_phase_p50_ns);
		memcpy(sum->miss_phase_p99_ns, st->miss_phase_p99_ns,
		       sizeof sum->miss_phase_p99_ns);
	}
	for (unsigned k = 0; k < LP_FAULT_KINDS_MAX; k++) {
		sum->faults[k] += st->faults[k];
		latency_fold(&sum->latency[k], &st->latency[k]);
	}
#define ADD(f) sum->f += st->f
	ADD(readahead_pages); ADD(evictions); ADD(clean_drops); ADD(swap_outs);
	ADD(file_writebacks); ADD(ref_sweeps); ADD(swap_read_bytes);
	ADD(swap_write_bytes); ADD(file_read_bytes); ADD(file_write_bytes);
	ADD(io_errors); ADD(swap_full); ADD(fill_errors); ADD(frame_waits);
	ADD(resident_frames); ADD(peak_frames); ADD(swap_slots_used);
	ADD(swap_slots_peak); ADD(verify_checks); ADD(verify_mismatches);
	ADD(tier_stores); ADD(tier_rejects); ADD(tier_bypasses); ADD(tier_loads); ADD(tier_writebacks);
	ADD(tier_pages); ADD(tier_bytes); ADD(tier_frames); ADD(tier_peak_frames);
	ADD(move_fixups); ADD(remote_pages); ADD(remote_errors);
#undef ADD
	if (st->last_error)
		sum->last_error = st->last_error;
	if (st->fault_kinds > sum->fault_kinds)
		sum->fault_kinds = st->fault_kinds;
}

/* The statistics of a process that ended join sum: what it counted, not
 * what it held (its frames, slots and pool are gone with it). */
static void stats_fold_ended(struct lp_stats *sum, const struct lp_stats *st)
{
	struct lp_stats end = *st;

	end.resident_frames = 0;
	end.swap_slots_used = 0;
	end.tier_pages = end.tier_bytes = end.tier_frames = 0;
	stats_fold(sum, &end);
}

/* Our program's record in the tree's log. */
static void tree_log(struct lp_host *H, const struct lp_stats *st, bool running)
{
	if (!H->tree || H->logi < 0)
		return;
	struct lp_proc_info *e = &H->tree->log[H->logi];
	uint64_t faults = 0;
	for (unsigned k = 0; k < LP_FAULT_KINDS_MAX; k++)
		faults += st->faults[k];
	e->pid = H->pid;
	memcpy(e->program, H->sh->comm, sizeof e->program);
	e->faults = faults + atomic_load(&H->kid_faults);
	e->evictions = st->evictions + atomic_load(&H->kid_evictions);
	e->peak_frames = st->peak_frames;
	atomic_thread_fence(memory_order_release);
	__atomic_store_n(&e->running, running ? 1 : 0, __ATOMIC_RELEASE);
}

/* A forked child of our program (or of its children) ended: a record of
 * its own in the tree's log, its figures those of its process alone (the
 * program's record has its own: host_publish_stats()).  One that went on
 * to execute a program managed has that program's record (its pager
 * wrote it at the exec, before the child's vm found its memory gone):
 * what it counted before goes into ours, so that the records still add
 * up to the tree's figures and a script's forks do not take two each. */
static void kid_ended(void *ctx, pid_t pid, const struct lp_stats *own)
{
	struct lp_host *H = ctx;

	if (!H->tree)
		return;
	uint64_t faults = 0;
	for (unsigned k = 0; k < LP_FAULT_KINDS_MAX; k++)
		faults += own->faults[k];
	unsigned n = atomic_load(&H->tree->nlog);
	/* (A child never named, pid 0: its figures go into ours.) */
	bool ours = pid <= 0;
	for (unsigned j = 0; j < n && j < LP_PROC_TREE_MAX && !ours; j++)
		ours = H->tree->log[j].pid == pid;
	if (ours) {
		atomic_fetch_add(&H->kid_faults, faults);
		atomic_fetch_add(&H->kid_evictions, own->evictions);
		return;
	}
	unsigned i = atomic_fetch_add(&H->tree->nlog, 1);
	if (i >= LP_PROC_TREE_MAX)
		return;
	struct lp_proc_info *e = &H->tree->log[i];
	e->pid = pid;
	memcpy(e->program, H->sh->comm, sizeof e->program);
	e->faults = faults;
	e->evictions = own->evictions;
	e->peak_frames = own->peak_frames;
	__atomic_store_n(&e->running, 0, __ATOMIC_RELEASE);
}

void host_publish_stats(struct lp_host *H)
{
	struct lp_stats st;

	if (lp_stats_get(H->vm, &st))
		return;
	atomic_fetch_add(&H->sh->seq, 1);
	atomic_thread_fence(memory_order_release);
	H->sh->stats = st;
	atomic_thread_fence(memory_order_release);
	atomic_fetch_add(&H->sh->seq, 1);
	if (!vm_stats_own(H->vm, &st))
		tree_log(H, &st, !H->ended);
}

static void publish_status(struct lp_shared *sh, int status)
{
	unsigned n = atomic_load(&sh->nstat);

	sh->stat[n % SH_NSTAT] = status;
	atomic_store(&sh->nstat, n + 1);
	sh_changed(sh);
}

/* ---- finding and opening the program ---- */

struct prog {
	char path[PATH_MAX];      /* what was opened */
	char *argv_buf[4];        /* #! interpreter, its argument, the script */
	int nextra;
};

/*
 * Opening a file to run it, as the kernel's open_exec() does for the
 * program, each #! interpreter and the ELF interpreter: the path must name
 * a regular file (a directory, FIFO, socket or device is EACCES, and is
 * never opened: a FIFO would block, a device would see an open), executable
 * by us (X_OK with the effective ids), on a mount without noexec.  The
 * checks are made on one inode (O_PATH), which is then reopened for reading
 * through /proc/self/fd, so a path changed meanwhile cannot substitute
 * another file.  Returns a read-only descriptor or -errno.
 */
static int exec_open(const char *path)
{
	struct stat st;
	struct statfs sfs;
	char self[64];

	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	int rc = 0;
	if (fstat(pfd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EACCES;
	else if (faccessat(pfd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) < 0)
		rc = -errno;
	else if (fstatfs(pfd, &sfs) == 0 && (sfs.f_flags & ST_NOEXEC))
		rc = -EACCES;
	if (rc) {
		close(pfd);
		return rc;
	}
	snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
	int fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno == ENOENT) {
		/* No /proc: by path, then it must be the inode checked. */
		struct stat now;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd >= 0 && (fstat(fd, &now) < 0 || now.st_dev != st.st_dev ||
				now.st_ino != st.st_ino)) {
			close(fd);
			fd = -1;
			errno = EAGAIN;
		}
	}
	rc = fd < 0 ? -errno : fd;
	close(pfd);
	if (fd >= 0)
		(void)fcntl(fd, F_SETFL, 0);
	return rc;
}

/* bash's statuses: 127 when the program is not found, 126 when it is found
 * but cannot run (ELOOP, ENAMETOOLONG, ENOTDIR, EACCES, a directory...). */
static int open_kind(int err)
{
	return err == -ENOENT ? LP_SPAWN_NOT_FOUND : LP_SPAWN_NO_ACCESS;
}

/* What execve would return: a directory is EACCES (EISDIR only names it). */
static int exec_errno(int err)
{
	return err == -EISDIR ? -EACCES : err;
}

/* The program to run, opened by exec_open: name with a '/' as is, else
 * the first PATH entry where it can run.  As bash searches: entries where
 * it is missing, unreachable or a directory are skipped, and if it was
 * found only where it cannot run, that is EACCES.  Returns the descriptor
 * and the path in out, or -errno. */
static int resolve(const char *name, char *out, size_t len)
{
	if (strchr(name, '/') || !*name) {
		if (snprintf(out, len, "%s", name) >= (int)len)
			return -ENAMETOOLONG;
		return exec_open(out);
	}
	const char *path = getenv("PATH");
	int rc = -ENOENT;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchrnul(path, ':');
		int n = (int)(end - path);
		path = *end ? end + 1 : end;
		if (snprintf(out, len, "%.*s%s%s", n, end - n, n ? "/" : "", name) >= (int)len)
			continue;
		int fd = exec_open(out);
		if (fd >= 0)
			return fd;
		if (fd == -EACCES || fd == -EPERM)
			rc = -EACCES; /* a directory is skipped, as bash does */
	}
	return rc;
}

static int elf_kind(int e)
{
	switch (e) {
	case LP_ELF_ENOENT: return LP_SPAWN_NOT_FOUND;
	case LP_ELF_EACCES: return LP_SPAWN_NO_ACCESS;
	case LP_ELF_NOTELF: return LP_SPAWN_NOT_ELF;
	case LP_ELF_CLASS:
	case LP_ELF_ARCH: return LP_SPAWN_BAD_ARCH;
	case LP_ELF_TYPE:
	case LP_ELF_CORRUPT: return LP_SPAWN_CORRUPT;
	default: return LP_SPAWN_SYSTEM;
	}
}

static int elf_errno(int e)
{
	switch (e) {
	case LP_ELF_ENOENT: return -ENOENT;
	case LP_ELF_EACCES: return -EACCES;
	case LP_ELF_NOMEM: return -ENOMEM;
	case LP_ELF_IO: return -EIO;
	default: return -ENOEXEC;
	}
}

/* A "#!interp arg" first line of the file open as fd: *interp and *arg
 * point into line. */
static bool shebang(int fd, char *line, size_t len, char **interp, char **arg)
{
	ssize_t n = pread(fd, line, len - 1, 0);
	if (n < 3 || line[0] != '#' || line[1] != '!')
		return false;
	line[n] = 0;
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = 0;
	char *p = line + 2;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return false;
	*interp = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	*arg = NULL;
	if (*p) {
		*p++ = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		char *e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = 0;
		if (*p)
			*arg = p;
	}
	return true;
}

/* lp_elf_open of a file already open as fd (by exec_open): through its
 * /proc/self/fd link, the same inode whatever its path names now (without
 * /proc, by path). */
static int elf_open_fd(int fd, const char *path, struct lp_elf **out, char *msg,
		       size_t msglen)
{
	char self[64];

	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	return lp_elf_open(access(self, F_OK) == 0 ? self : path, out, msg, msglen);
}

/* ---- the stack ---- */

/* Where the program's stack goes: below the pager's own, as the kernel
 * would place it, else anywhere. */
static long stack_map(struct lp_vm *vm, size_t size, int prot, uintptr_t *top)
{
	uintptr_t ours = 0;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	while (f && fgets(line, sizeof line, f)) {
		unsigned long s, e;
		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			ours = s;
	}
	if (f)
		fclose(f);
	struct rlimit rl;
	getrlimit(RLIMIT_STACK, &rl);
	size_t gap = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > STACK_MAX
			     ? STACK_MAX
			     : (rl.rlim_cur > (8u << 20) ? rl.rlim_cur : (8u << 20));
	if (ours > gap + size + 2 * STACK_GUARD) {
		uintptr_t t = (ours - gap - STACK_GUARD) & ~(uintptr_t)(LP_PG - 1);
		void *g = mmap((void *)(t - size - STACK_GUARD), STACK_GUARD, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				       MAP_FIXED_NOREPLACE, -1, 0);
		if (g != MAP_FAILED) {
			long r = vm_mmap(vm, t - size, size, prot, MAP_FIXED_NOREPLACE,
					 NULL, 0, NULL);
			if (r >= 0) {
				*top = t;
				return r;
			}
			munmap(g, STACK_GUARD);
		}
	}
	void *g = mmap(NULL, size + STACK_GUARD, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g == MAP_FAILED)
		return -ENOMEM;
	long r = vm_mmap(vm, (uintptr_t)g + STACK_GUARD, size, prot, MAP_FIXED,
			 NULL, 0, NULL);
	if (r >= 0)
		*top = (uintptr_t)g + STACK_GUARD + size;
	return r;
}

/* The auxiliary vector for the program: ours, with the program's values. */
static size_t build_auxv(uint64_t *out, size_t max, const struct lp_image *prog,
			 const struct lp_image *interp)
{
	uint64_t aux[256];
	size_t n = 0, k = 0;
	int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t r = read(fd, aux, sizeof(aux) - 16);
		n = r > 0 ? (size_t)r / 16 : 0;
		close(fd);
	}
	const struct lp_elf *e = prog->elf;
	uint64_t set[][2] = {
		{ AT_PHDR, prog->bias + e->phdr_vaddr },
		{ AT_PHENT, e->phentsize },
		{ AT_PHNUM, e->phnum },
		{ AT_BASE, interp->elf ? interp->bias + interp->elf->lo : 0 },
		{ AT_FLAGS, 0 },
		{ AT_ENTRY, prog->bias + e->entry },
		{ AT_SECURE, 0 },
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]) && k + 2 < max; i++) {
		out[k++] = set[i][0];
		out[k++] = set[i][1];
	}
	for (size_t i = 0; i < n && k + 2 < max; i++) {
		uint64_t t = aux[2 * i], v = aux[2 * i + 1];
		if (t == AT_NULL)
			break;
		bool mine = t == AT_EXECFN || t == AT_RANDOM || t == AT_PLATFORM ||
			    t == AT_EXECFD || t == AT_BASE_PLATFORM;
		for (size_t j = 0; j < sizeof(set) / sizeof(set[0]); j++)
			mine |= set[j][0] == t;
		if (mine)
			continue;
		out[k++] = t;
		out[k++] = v;
	}
	out[k++] = AT_NULL;
	out[k++] = 0;
	return k;
}

/* ---- the address space's identity ---- */

/*
 * /proc/self/exe must name the program (busybox and others re-execute
 * themselves through it), and the kernel changes it only while no mapping
 * of the old file remains.  Our executable's mappings are replaced by
 * anonymous copies (identical bytes: running code goes on), then
 * PR_SET_MM_MAP describes the program: its file, code, data, break, stack,
 * arguments, environment and auxiliary vector.  Without CAP_SYS_RESOURCE it
 * is refused and /proc/self/exe keeps naming the caller's executable.
 */
/* A byte-for-byte copy of mapped memory that is not one C object (the
 * whole of an executable's mapping, globals and the gaps between them):
 * AddressSanitizer would call reading the gaps an overflow, so the copy is
 * not instrumented, nor turned into an (intercepted) memcpy call. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize_address)
__attribute__((no_sanitize_address))
#endif
#endif
__attribute__((noinline)) static void copy_mapping(void *dst, const void *src,
						   size_t len)
{
	volatile const uint64_t *s = src;
	uint64_t *d = dst;

	for (size_t i = 0; i < len / 8; i++)
		d[i] = s[i];
}

static void unmap_own_exe(void)
{
	char exe[PATH_MAX], line[PATH_MAX + 128];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	FILE *f = fopen("/proc/self/maps", "re");
	struct { uintptr_t s, e; int prot; } m[32];
	int nm = 0;

	if (n <= 0 || !f) {
		if (f)
			fclose(f);
		return;
	}
	exe[n] = 0;
	while (nm < 32 && fgets(line, sizeof line, f)) {
		unsigned long s, e;
		char perms[8], path[PATH_MAX];
		path[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %s", &s, &e, perms, path) < 3)
			continue;
		if (strcmp(path, exe))
			continue;
		int prot = (perms[0] == 'r' ? PROT_READ : 0) |
			   (perms[1] == 'w' ? PROT_WRITE : 0) |
			   (perms[2] == 'x' ? PROT_EXEC : 0);
		m[nm].s = s;
		m[nm].e = e;
		m[nm++].prot = prot;
	}
	fclose(f);
	for (int i = 0; i < nm; i++) {
		size_t len = m[i].e - m[i].s;
		void *copy = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (copy == MAP_FAILED)
			return;
		if (m[i].prot & PROT_READ)
			copy_mapping(copy, (void *)m[i].s, len);
		mprotect(copy, len, m[i].prot);
		mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)m[i].s);
	}
}

static void set_identity(struct lp_host *H, int exe_fd, uintptr_t top,
			 const struct lp_stack_out *so)
{
	const struct lp_elf *e = H->prog.elf;
	uintptr_t cs = 0, ce = 0, ds = 0, de = 0;

	for (unsigned i = 0; i < e->nseg; i++) {
		uintptr_t s = H->prog.bias + e->seg[i].vaddr;
		uintptr_t t = s + e->seg[i].memsz;
		if ((e->seg[i].prot & PROT_EXEC) && !cs) {
			cs = s;
			ce = t;
		} else if (e->seg[i].prot & PROT_WRITE) {
			if (!ds)
				ds = s;
			de = t;
		}
	}
	if (!cs) {
		cs = H->prog.lo;
		ce = H->prog.hi;
	}
	if (!ds) {
		ds = ce;
		de = ce;
	}
	unmap_own_exe();
	/* The break becomes the program's: it goes on from ours, where
	 * nothing else is placed (an mmap without an address goes to the
	 * top of the address space); the pager's malloc must never move it
	 * again (two libcs cannot share one break): see own_break_off(). */
	uintptr_t start_brk = (uintptr_t)sbrk(0);
	FILE *f = fopen("/proc/self/stat", "re");
	if (f) {
		unsigned long v = 0;
		/* field 47 is start_brk; the command may hold spaces: skip
		 * to the last ')' first */
		char buf[1024];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		for (int field = 2; p && field < 47; field++)
			p = strchr(p + 1, ' ');
		if (p && sscanf(p + 1, "%lu", &v) == 1 && v)
			start_brk = v;
		fclose(f);
	}
	struct prctl_mm_map map = {
		.start_code = cs, .end_code = ce,
		.start_data = ds, .end_data = de,
		.start_brk = start_brk, .brk = (uintptr_t)sbrk(0),
		.start_stack = top,
		.arg_start = so->arg_start, .arg_end = so->arg_end,
		.env_start = so->env_start, .env_end = so->env_end,
		.auxv = (__u64 *)(uintptr_t)so->auxv,
		.auxv_size = (uint32_t)so->auxv_bytes,
		.exe_fd = (uint32_t)exe_fd,
	};
	(void)prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0);
}

/*
 * The break, from here on the program's: the pager's glibc never calls brk
 * again (its cached break is set where any growth overflows: sbrk fails
 * without a system call, and malloc takes mmap memory, as when the break
 * cannot grow), and the program may grow it BRK_MAX, up to a guard.
 * Returns the program's first break; a brk below it is not the kernel's
 * (lp_seccomp_build): it would shrink into the pager's heap.
 */
extern void *__curbrk;

static uintptr_t own_break_off(void)
{
	__curbrk = (void *)UINTPTR_MAX;
	uintptr_t brk = (uintptr_t)syscall(SYS_brk, 0);
	uintptr_t g = ((brk + LP_PG - 1) & ~(uintptr_t)(LP_PG - 1)) + BRK_MAX;
	/* If the place is taken, what is there stops the break. */
	(void)mmap((void *)g, BRK_GUARD, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
		   -1, 0);
	return brk;
}

/* ---- starting the program's process ---- */

static bool died(pid_t pid, int pidfd)
{
	siginfo_t si = { 0 };
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	if (pidfd >= 0)
		return poll(&p, 1, 0) > 0;
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid == pid;
}

static int wait_stage(struct lp_tramp *t, int from, pid_t pid, int pidfd)
{
	while (atomic_load(&t->stage) == from) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		syscall(SYS_futex, &t->stage, FUTEX_WAIT, from, &ts, NULL, 0);
		if (atomic_load(&t->stage) == from && died(pid, pidfd))
			return -ECHILD; /* died on the way */
	}
	return atomic_load(&t->stage);
}

/* The program's process: a clone of ours sharing our address space, or
 * (H->own_parent) our parent, waiting in host_exec_main for t->stage to
 * leave TR_PREP.  Either runs tramp_main(t). */
static int start_program(struct lp_host *H, struct lp_tramp *t,
			 unsigned char *stk)
{
	pid_t pid = H->pid;
	if (H->own_parent) {
		atomic_store(&t->stage, TR_START);
		atomic_store(H->go, TR_START);
		syscall(SYS_futex, H->go, FUTEX_WAKE, 1, NULL, NULL, 0);
	} else {
		pid = clone(tramp_main, stk + TRAMP_STACK, CLONE_VM | SIGCHLD, t);
		if (pid < 0)
			return -errno;
		H->pid = pid;
	}
	int st = wait_stage(t, TR_START, pid, H->pidfd);
	int rc = 0;
	if (st == TR_LISTENER) {
		if (H->pidfd < 0)
			H->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (!H->own_parent) /* (else the tree's, which we hold) */
			H->listener = H->pidfd < 0 ? -1
						  : (int)syscall(SYS_pidfd_getfd, H->pidfd,
								 t->listener, 0);
		if (H->listener < 0) {
			rc = -errno;
			kill(pid, SIGKILL);
		} else {
			(void)fcntl(H->listener, F_SETFD, FD_CLOEXEC);
			atomic_store(&t->stage, TR_GO);
			syscall(SYS_futex, &t->stage, FUTEX_WAKE, 1, NULL, NULL, 0);
			st = wait_stage(t, TR_GO, pid, H->pidfd);
		}
	}
	if (!rc && st != TR_RUNNING)
		rc = st == TR_FAILED ? t->err : -ECHILD;
	if (rc && !H->own_parent) {
		waitpid(pid, NULL, 0);
		H->pid = 0;
	}
	return rc;
}

/* ---- the pager's end ---- */

/*
 * The pager ends with its program, whatever happens (see host.h): a guard
 * thread watches the caller from the very start and bounds the teardown.
 *  - The caller dies while we load: nothing runs yet, we leave at once.
 *  - The caller dies while the program runs: the program and the children
 *    it forked are killed (they cannot run without us), and we end within
 *    GUARD_MS.
 *  - The program and its children are gone: the teardown gets GUARD_MS; if
 *    it is stuck (a bug), we leave anyway.  Nothing is lost by leaving: the
 *    statistics and the last status are published before, the swap file
 *    has no name (the kernel frees it with us), and the program's own
 *    descriptors were never ours to flush.
 */
#define GUARD_MS 1000

enum { G_LOADING, G_RUNNING, G_TEARDOWN };

struct guard {
	struct lp_host *H;
	int caller_fd;
	int ev;                 /* eventfd: the phase changed */
	atomic_int phase;       /* G_* */
	pthread_t th;
	bool up;
	pthread_mutex_t vm_lock; /* H->vm is there while !vm_gone */
	bool vm_gone;
};

/* SIGKILL to the children of our vm, unless the teardown freed it (an
 * exec'd pager tearing down when the top pager went: the guard read the
 * freed vm's lock, and the pager died of SIGSEGV at the end of runs). */
static void guard_kill_kids(struct guard *g)
{
	pthread_mutex_lock(&g->vm_lock);
	if (!g->vm_gone)
		vm_signal_kids(g->H->vm, SIGKILL);
	pthread_mutex_unlock(&g->vm_lock);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A pager whose program is its parent (host_exec_main) leaves only after
 * it: its exit would kill the program (its exit signal is SIGKILL), or,
 * once the program executed another, leave it a child to reap. */
static void wait_parent_gone(struct lp_host *H)
{
	if (!H->own_parent)
		return;
	struct pollfd p = { .fd = H->pidfd, .events = POLLIN };
	while (H->pidfd >= 0 && poll(&p, 1, -1) <= 0)
		;
	while (getppid() == H->pid)
		usleep(1000); /* the exit reaches its children a little later */
	/* Once: the guard thread may get here too, and by then the slot may
	 * be another program's. */
	if (H->tree && H->slot >= 0 && !atomic_exchange(&H->slot_left, true)) {
		atomic_store(&H->tree->pager_start[H->slot], 0);
		atomic_store(&H->tree->used[H->slot], 0);
	}
}

/* The run ends (its caller died): the programs the tree executed die too
 * (their memory calls come to us: without us they would wait for ever). */
static void tree_kill(struct lp_host *H)
{
	if (!H->tree || H->own_parent)
		return;
	for (int i = 0; i < TREE_SLOTS; i++)
		if (atomic_load(&H->tree->live[i]) && H->tree->slot[i].pid > 0)
			kill(H->tree->slot[i].pid, SIGKILL);
}

static void guard_set(struct guard *g, int phase)
{
	uint64_t one = 1;

	atomic_store(&g->phase, phase);
	(void)!write(g->ev, &one, sizeof one);
}

static void *guard_main(void *arg)
{
	struct guard *g = arg;
	long deadline = -1;
	bool orphan = false;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = g->ev, .events = POLLIN },
			{ .fd = orphan ? -1 : g->caller_fd, .events = POLLIN },
			{ .fd = g->H->own_parent ? g->H->top_fd : -1, .events = POLLIN },
		};
		long left = deadline < 0 ? -1 : deadline - now_ms();
		if (poll(p, 3, deadline < 0 ? -1 : (int)(left > 0 ? left : 0)) < 0 &&
		    errno != EINTR)
			usleep(10000);
		if (p[2].revents) {
			/* The top pager is gone: it received our program's
			 * memory calls, and ours too (we have its filters):
			 * nothing can be served, nor torn down, any more.  The
			 * program and its children die; so do we, at once. */
			if (g->H->pid > 0)
				kill(g->H->pid, SIGKILL);
			guard_kill_kids(g);
			wait_parent_gone(g->H);
			_exit(0);
		}
		if (p[0].revents & POLLIN) {
			uint64_t v;
			(void)!read(g->ev, &v, sizeof v);
		}
		int phase = atomic_load(&g->phase);
		if (p[1].revents && atomic_load(&g->H->sh->phase) == SH_P_KIDS) {
			/* The program ended and the caller returned its
			 * status, as a shell does: the children it forked (or
			 * the tree executed) go on, as natively, and we serve
			 * them until they end.  (Taking this for the caller's
			 * death killed them.) */
			orphan = true;
		} else if (p[1].revents) {
			/* The caller died: so does the run. */
			orphan = true;
			if (phase == G_LOADING)
				_exit(1); /* a program cloned just now dies with us */
			if (g->H->pid > 0)
				kill(g->H->pid, SIGKILL);
			guard_kill_kids(g);
			tree_kill(g->H);
			if (deadline < 0)
				deadline = now_ms() + GUARD_MS;
		}
		if (phase == G_TEARDOWN && deadline < 0)
			deadline = now_ms() + GUARD_MS;
		if (deadline >= 0 && now_ms() >= deadline) {
			guard_kill_kids(g);
			wait_parent_gone(g->H);
			_exit(0);
		}
	}
	return NULL;
}

static void guard_start(struct guard *g, struct lp_host *H, int caller_fd)
{
	sigset_t all, old;

	g->H = H;
	g->caller_fd = caller_fd;
	atomic_init(&g->phase, G_LOADING);
	pthread_mutex_init(&g->vm_lock, NULL);
	g->ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g->ev < 0)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	g->up = pthread_create(&g->th, NULL, guard_main, g) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the caller's descriptors ---- */

/*
 * We are a fork of the caller and hold everything it had open: its pipes,
 * sockets, the program's stdin/stdout/stderr.  A pipeline reading the
 * program's output ends when the last writer is gone, so we must not be
 * one.  Those marked close-on-exec go at once (nobody gets them); the
 * others only once the program's process holds its own copy.
 */
static int list_fds(int **out, int keep, bool cloexec_only, bool keep_exec)
{
	DIR *d = opendir("/proc/self/fd");
	int *v = NULL, n = 0, cap = 0;
	struct dirent *de;

	*out = NULL;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd == dirfd(d) || fd == keep ||
		    (keep_exec && exec_keeps_fd(fd)))
			continue;
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || (cloexec_only && !(fl & FD_CLOEXEC)))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			int *nv = realloc(v, (size_t)cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = fd;
	}
	closedir(d);
	*out = v;
	return n;
}

static void close_list(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
}

/* The program runs with its copy: ours go.  0, 1 and 2 become /dev/null so
 * that nothing of ours lands there.  A sanitizer's report on stderr is kept
 * (the watchdog bounds how long we hold it). */
static void drop_program_fds(int *fds, int n)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	for (int i = 0; i < n; i++)
		if (fds[i] == 2)
			fds[i] = -1;
#endif
	close_list(fds, n);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd <= 2 && null >= 0; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			dup2(null, fd);
	if (null > 2)
		close(null);
}

/* ---- the pager's signals ---- */

/*
 * The program may not signal its pager: kill, tkill, tgkill,
 * rt_(tg)sigqueueinfo and pidfd_open naming our pid (or our process group,
 * which is ours alone) fail with EPERM.  A second filter, stacked under the
 * one that sends memory calls to us; inherited by the program's children.
 */
static struct sock_filter guard_code[] = {
	/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 16),
	/* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kill, 5, 0),
	/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tkill, 4, 0),
	/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 3, 0),
	/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigqueueinfo, 2, 0),
	/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_tgsigqueueinfo, 1, 0),
	/* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 3, 9),
	/* 9: the signals: their pid */
	/* 9 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
	/* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* pager, set below */, 8, 0),
	/* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* -pager */, 7, 6),
	/* 12: pidfd_open: of the pager, only with EXEC_MAGIC in its unused
	 * third argument (the pager of a program the tree executed takes
	 * the tree's listener so: host_exec_main) */
	/* 12 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
	/* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0 /* pager */, 0, 4),
	/* 14 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
	/* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)EXEC_MAGIC, 0, 3),
	/* 16 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]) + 4),
	/* 17 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(EXEC_MAGIC >> 32), 0, 1),
	/* 18 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	/* 19 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
};

static const struct sock_fprog *guard_filter(pid_t pager)
{
	static struct sock_fprog prog;

	guard_code[10].k = (uint32_t)pager;
	guard_code[11].k = (uint32_t)-pager;
	guard_code[13].k = (uint32_t)pager;
	prog.len = sizeof(guard_code) / sizeof(guard_code[0]);
	prog.filter = guard_code;
	return &prog;
}

/* ---- loading the program ---- */

/*
 * #! scripts run their interpreter: argv becomes interp [arg] script
 * args..., as execve() makes it.  fd (open on path) is followed down the
 * chain, to the file that is not a script, and path with it; av has room
 * for MAX_SCRIPT_DEPTH interpreters, *n counts it.  0 or -errno (said).
 */
static int follow_scripts(struct lp_host *H, char **av, int *n, char *path,
			  size_t pathlen, int *fd, const char *execfn)
{
	static char line[256];

	for (int depth = 0;; depth++) {
		char *ip, *arg, *copy = strdup(path);
		if (!copy || !shebang(*fd, line, sizeof line, &ip, &arg)) {
			free(copy);
			return 0;
		}
		if (depth == MAX_SCRIPT_DEPTH) {
			/* The kernel's ELOOP (BINPRM_MAX_RECURSION). */
			close(*fd);
			host_fail(H->sh, -ELOOP, LP_SPAWN_NO_ACCESS,
				  "%s: too many levels of #! interpreters", copy);
			return -ELOOP;
		}
		int shift = arg ? 2 : 1;
		memmove(av + shift + 1, av + 1, (size_t)*n * sizeof(*av));
		av[0] = strdup(ip);
		if (arg)
			av[1] = strdup(arg);
		av[shift] = copy;
		*n += shift;
		snprintf(path, pathlen, "%s", ip);
		close(*fd);
		*fd = exec_open(path);
		if (*fd < 0) {
			host_fail(H->sh, exec_errno(*fd), open_kind(*fd),
				  "%s: interpreter %s: %s", execfn, path,
				  strerror(-*fd));
			return exec_errno(*fd);
		}
	}
}

/* The ELF interpreter the program (at path) names.  The kernel opens it as
 * it opens the program: EACCES (126) when it cannot run; missing or
 * unusable stays NO_INTERP.  0 or -errno (said). */
static int open_interp(struct lp_host *H, const char *path)
{
	char interp_path[PATH_MAX], msg[200];
	int rc;

	snprintf(interp_path, sizeof interp_path, "%s", H->prog.elf->interp);
	int fd = exec_open(interp_path);
	if (fd < 0 && fd != -ENOENT) {
		host_fail(H->sh, exec_errno(fd), LP_SPAWN_NO_ACCESS,
			  "%s: interpreter %s: %s", path, interp_path, strerror(-fd));
		return exec_errno(fd);
	}
	rc = fd < 0 ? LP_ELF_ENOENT
		    : elf_open_fd(fd, interp_path, &H->interp.elf, msg, sizeof msg);
	if (fd < 0)
		snprintf(msg, sizeof msg, "%s", strerror(ENOENT));
	else
		close(fd);
	if (rc || H->interp.elf->interp || H->interp.elf->type != ET_DYN) {
		host_fail(H->sh, rc ? elf_errno(rc) : -ENOEXEC, LP_SPAWN_NO_INTERP,
			  "%s: interpreter %s: %s", path, interp_path,
			  rc ? msg : "not a shared object without interpreter");
		return rc ? elf_errno(rc) : -ENOEXEC;
	}
	return 0;
}

/* Whether the kernel would give the program at fd privileges (what makes
 * AT_SECURE): a set-user-ID file of another owner, a set-group-ID one of
 * another group, file capabilities for a caller other than root; not on
 * a nosuid mount, nor under no_new_privs.  What, or NULL. */
static const char *privileged(int fd)
{
	struct stat st;
	struct statvfs vfs;

	if (fstat(fd, &st) || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ||
	    (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_NOSUID)))
		return NULL;
	if ((st.st_mode & S_ISUID) && st.st_uid != geteuid())
		return "set-user-ID";
	if ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) && st.st_gid != getegid())
		return "set-group-ID";
	if (geteuid() != 0 && fgetxattr(fd, "security.capability", NULL, 0) > 0)
		return "given file capabilities";
	return NULL;
}

/* Find the program, follow its #! lines, open it and its ELF interpreter:
 * *pargv is the program's argv (after the interpreters), *execfn the path
 * it was found at.  0 or -errno (said). */
static int load_program(struct lp_host *H, const char *name, char *const argv[],
			char ***pargv, char **execfn)
{
	char path[PATH_MAX], msg[200];
	int argc = 0, rc;

	while (argv[argc])
		argc++;
	char **av = calloc((size_t)argc + 2 * MAX_SCRIPT_DEPTH + 1, sizeof(*av));
	if (!av)
		return -ENOMEM;
	memcpy(av, argv, (size_t)argc * sizeof(*av));
	int n = argc;

	int fd = resolve(name, path, sizeof path);
	if (fd < 0) {
		/* The reason must fit in the message: a name too long is
		 * shortened. */
		int keep = strlen(name) > 160 ? 150 : 160;
		host_fail(H->sh, exec_errno(fd), open_kind(fd), "%.*s%s: %s", keep, name,
			  strlen(name) > 160 ? "..." : "", strerror(-fd));
		return exec_errno(fd);
	}
	*execfn = strdup(path);
	rc = follow_scripts(H, av, &n, path, sizeof path, &fd, *execfn);
	if (rc)
		return rc;
	*pargv = av;
	const char *why = privileged(fd);
	if (why) {
		close(fd);
		host_fail(H->sh, -EPERM, LP_SPAWN_PRIVILEGED,
			  "%s is %s: the kernel would run it with privileges "
			  "lazypage cannot give", path, why);
		return -EPERM;
	}

	rc = elf_open_fd(fd, path, &H->prog.elf, msg, sizeof msg);
	close(fd);
	if (rc) {
		host_fail(H->sh, elf_errno(rc), elf_kind(rc), "%s: %s", path, msg);
		return elf_errno(rc);
	}
	return H->prog.elf->interp ? open_interp(H, path) : 0;
}

/* ---- the pager's main, step by step ---- */

/* The state of the pager's run, which host_main's steps share.  It lives
 * in host_main's frame: the guard and notification threads hold &H. */
struct run {
	struct lp_host H;
	struct lp_tramp *t;        /* what the program's process starts from */
	struct lp_config vcfg;     /* the vm's: cfg without STATS_AT_EXIT */
	int stats_fd;              /* LAZYPAGE_STATS: our stderr, or -1 */
	int *inherited;            /* the caller's descriptors we still hold */
	int ninherited;
	char **av, *execfn;        /* the program's argv (after #!), its path */
	uintptr_t top;             /* the program's stack: its top */
	struct lp_stack_out so;    /* its contents */
	unsigned char *tstack;     /* the trampoline's stack */
};

static void ignore_terminal_signals(void)
{
	static const int sigs[] = { SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU,
				    SIGHUP, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2 };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_IGN);
}

/*
 * Setup, before the guard starts: the host's state; what the program
 * inherits, as across execve() (the mask and the signals ignored now),
 * before we ignore the terminal's signals; the caller's descriptors (see
 * list_fds); LAZYPAGE_STATS, printed once, when the program ends (not at
 * our destroy, which may come much later or be cut short).
 */
static int run_setup(struct run *R, const struct lp_config *cfg,
		     struct lp_shared *sh, int caller_fd)
{
	struct lp_tramp *t = calloc(1, sizeof(*t));
	sigset_t mask;

	memset(R, 0, sizeof(*R));
	R->t = t;
	R->stats_fd = -1;
	R->H.sh = sh;
	R->H.pidfd = R->H.listener = R->H.stop_fd = R->H.top_fd = -1;
	pthread_mutex_init(&R->H.lock, NULL);
	if (!t) {
		host_fail(sh, -ENOMEM, LP_SPAWN_SYSTEM, "out of memory");
		return -ENOMEM;
	}
	sigprocmask(SIG_BLOCK, NULL, &mask);
	for (int sig = 1; sig <= 64; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			t->ignored[sig] = 1;
	}
	memcpy(&t->sigmask, &mask, sizeof(t->sigmask));
	ignore_terminal_signals();

	int *fds = NULL, nfds = list_fds(&fds, caller_fd, true, true);
	close_list(fds, nfds);
	R->ninherited = list_fds(&R->inherited, caller_fd, false, true);
	R->vcfg = *cfg;
	if (R->vcfg.flags & LP_CFG_STATS_AT_EXIT) {
		R->vcfg.flags &= ~LP_CFG_STATS_AT_EXIT;
		R->stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	}
	return 0;
}

/* Load: the program (and its interpreters) opened, the vm created, the
 * images placed in it.  0 or -errno (said). */
static int run_load(struct run *R, const char *name, char *const argv[],
		    const struct lp_config *cfg)
{
	struct lp_host *H = &R->H;
	struct vm_failure why;

	int rc = load_program(H, name, argv, &R->av, &R->execfn);
	if (rc)
		return rc;
	rc = vm_create_why(&H->vm, &R->vcfg, VMF_FORK, &why);
	if (rc) {
		vm_create_failed(H->sh, rc, &why, cfg);
		return rc;
	}
	H->vm->kid_ended = kid_ended;
	H->vm->kid_ended_ctx = H;
	rc = image_load(H->vm, &H->prog, 0);
	if (!rc && H->interp.elf)
		rc = image_load(H->vm, &H->interp, 0);
	if (rc)
		host_fail(H->sh, rc, LP_SPAWN_SYSTEM, "%s: cannot place the image: %s",
			  R->execfn, strerror(-rc));
	return rc;
}

/* The stack: the stack limit's worth, lazily; its top written now (the
 * strings and tables, served as faults).  0 or -errno (said). */
static int run_stack(struct run *R, char *const envp[])
{
	struct lp_host *H = &R->H;
	struct rlimit rl;

	getrlimit(RLIMIT_STACK, &rl);
	size_t ssize = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > STACK_MAX
			       ? STACK_MAX
			       : rl.rlim_cur < (128u << 10) ? (128u << 10)
							   : rl.rlim_cur;
	ssize &= ~(size_t)(LP_PG - 1);
	int sprot = PROT_READ | PROT_WRITE | (H->prog.elf->exec_stack ? PROT_EXEC : 0);
	long sr = stack_map(H->vm, ssize, sprot, &R->top);
	if (sr < 0) {
		host_fail(H->sh, (int)sr, LP_SPAWN_SYSTEM, "cannot map the stack: %s",
			  strerror((int)-sr));
		return (int)sr;
	}
	uint64_t auxv[128];
	build_auxv(auxv, 128, &H->prog, &H->interp);
	int argc = 0;
	while (R->av[argc])
		argc++;
	struct lp_stack_in in = { argc, R->av, envp, R->execfn, auxv };
	size_t blen = ssize < (2u << 20) ? ssize : (2u << 20);
	unsigned char *sbuf = calloc(1, blen);
	int rc = sbuf ? lp_stack_build(sbuf, R->top, blen, &in, &R->so) : -ENOMEM;
	if (rc) {
		host_fail(H->sh, rc, LP_SPAWN_SYSTEM, "%s: arguments and environment "
			  "do not fit the stack: %s", R->execfn, strerror(-rc));
		return rc;
	}
	size_t used = R->top - R->so.sp;
	memcpy((void *)R->so.sp, sbuf + blen - used, used); /* served as faults */
	free(sbuf);
	return 0;
}

/* Start the program's process: the filters it installs (our break is
 * given up to it here), the descriptors it closes, where it starts.  From
 * here on our own threads never take the program's signals.  0 or -errno
 * (said). */
static int run_start(struct run *R)
{
	struct lp_host *H = &R->H;
	struct lp_tramp *t = R->t;
	int *fds = NULL;
	sigset_t all;

	H->stop_fd = eventfd(0, EFD_CLOEXEC);
	/* Our descriptors marked close-on-exec: the program must not have
	 * them. */
	int nfds = list_fds(&fds, -1, true, false);
	t->filter = lp_seccomp_build(own_break_off());
	if (H->own_parent)
		t->filter = NULL; /* it has the tree's (one listener at most) */
	t->guard = guard_filter(getpid());
	t->filter_flags = SECCOMP_FILTER_FLAG_NEW_LISTENER |
			  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
	t->no_new_privs = geteuid() != 0 && !H->own_parent;
	t->close_fds = fds;
	t->nclose = nfds > 0 ? nfds : 0;
	const char *base = strrchr(R->execfn, '/');
	snprintf(t->comm, sizeof t->comm, "%s", base ? base + 1 : R->execfn);
	memcpy(H->sh->comm, t->comm, sizeof H->sh->comm);
	t->pager = getpid();
	t->own_parent = H->own_parent;
	t->sp = R->so.sp;
	t->entry = H->interp.elf ? H->interp.bias + H->interp.elf->entry
				 : H->prog.bias + H->prog.elf->entry;
	sigfillset(&all);
	sigdelset(&all, SIGCHLD);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	/* The trampoline's stack stays allocated for good: the program's
	 * process is on it until its very last instruction there, after it
	 * told us it runs. */
	R->tstack = malloc(TRAMP_STACK);
	int rc = R->tstack ? start_program(H, t, R->tstack) : -ENOMEM;
	free(fds);
	if (rc)
		host_fail(H->sh, rc, rc == -EPERM || rc == -EACCES || rc == -ENOSYS
					     ? LP_SPAWN_UNSUPPORTED : LP_SPAWN_SYSTEM,
			  "cannot start the program: %s%s", strerror(-rc),
			  rc == -EACCES || rc == -EPERM ? " (seccomp refused)" : "");
	return rc;
}

/* ---- the tree's budget ---- */

/*
 * Every pager of the tree draws on one budget of frames (the cap): each
 * publishes how many it uses, and lends its vm the cap less what the
 * others use, but never less than an equal share of it (so a newcomer
 * always gets room: a vm whose faults wait below its share claims all of
 * it, and the others shrink to make room), looked at every BUDGET_MS.  The
 * sum itself is kept exact (struct frame_share): a vm that uses more than
 * BUDGET_MIN_FRAMES gets no frame while the sum is at the cap, so the tree
 * passes the cap by BUDGET_MIN_FRAMES per process at most.
 */
#define BUDGET_MS 2
#define BUDGET_ALONE_MS 10
#define BUDGET_MIN_FRAMES 32
/* How often a budget thread looks for pagers killed without leaving. */
#define BUDGET_REAP_MS 20

/*
 * A pager killed (its program dies with it: its exit signal is SIGKILL)
 * leaves its frames in the shared sum and its slot taken: the rest of the
 * tree would stay held below the cap for good (seen: a program started
 * after one was killed got 298 frames of a 4096-frame cap, and ran 6 times
 * slower).  Its frames, its claim and its slot are given back, and its
 * statistics join those of the pagers that ended.  A pager is dead when
 * its pid is gone, a zombie, or a later process's (another start time).
 */
static void budget_reap(struct lp_tree *T, int me)
{
	for (int j = 0; j < TREE_SLOTS; j++) {
		/* (The start after the pid is written: it names that pid.) */
		uint64_t start = atomic_load(&T->pager_start[j]), now = 0;
		if (j == me || !start)
			continue;
		pid_t pager = __atomic_load_n(&T->slot[j].pager, __ATOMIC_ACQUIRE);
		int alive = pager > 0 ? prim_proc_start(pager, &now) : -1;
		if (alive < 0 || (alive && now == start))
			continue;
		/* Ours to reap, once: the others' budget threads look too. */
		if (!atomic_compare_exchange_strong(&T->pager_start[j], &start, 0))
			continue;
		frame_share_drop(&T->share, &T->held[j]);
		atomic_store(&T->resident[j], 0);
		atomic_store(&T->live[j], 0);
		/* (Its forked children, which live on unmanaged: its
		 * userfaultfds closed with it, are routed by their
		 * ancestry, not to the slot's next pager.) */
		for (int k = 0; k < TREE_KIDS; k++) {
			int kid = atomic_load(&T->forked[k].pid);
			if (kid > 0 && atomic_load(&T->forked[k].slot) == j)
				atomic_compare_exchange_strong(&T->forked[k].pid, &kid, 0);
		}
		tree_lock(T);
		if (atomic_exchange(&T->counted[j], 0))
			stats_fold_ended(&T->done, &T->slot[j].stats);
		tree_unlock(T);
		atomic_store(&T->used[j], 0);
	}
}

/* Our index in the tree's resident[] and held[]: our slot, or the top
 * pager's place after them. */
static int budget_index(const struct lp_host *H)
{
	return H->own_parent ? H->slot : TREE_SLOTS;
}

static void *budget_main(void *arg)
{
	struct lp_host *H = arg;
	struct lp_tree *T = H->tree;
	int me = budget_index(H);
	uint64_t cap = T->config.cfg.frames;
	long reaped = 0;

	while (!atomic_load(&H->budget_stop)) {
		long now = now_ms();
		if (now - reaped >= BUDGET_REAP_MS) {
			budget_reap(T, H->own_parent ? H->slot : -1);
			reaped = now;
		}
		uint64_t others = 0, n = 1;
		for (int j = 0; j <= TREE_SLOTS; j++) {
			uint64_t r = atomic_load(&T->resident[j]);
			if (j == me || !r)
				continue;
			others += r;
			n++;
		}
		uint64_t fair = cap / n < BUDGET_MIN_FRAMES ? BUDGET_MIN_FRAMES : cap / n;
		/* What we claim: what we use, or our fair share while our
		 * faults wait for frames below it (the others then shrink
		 * to make room: their limits count our claim). */
		uint64_t mine = evict_resident(H->vm);
		uint64_t claim = mine < fair && evict_waiting(H->vm) ? fair : mine;
		atomic_store(&T->resident[me], claim ? claim : 1);
		if (n == 1) {
			/* Alone (the common case: nothing executed, or all
			 * of it ended): our own table is the budget.  Still
			 * counted in the sum, so that a newcomer's first
			 * frames find it there: detached, we kept our whole
			 * table until our next look, 10 ms on, while the
			 * newcomer took 188 frames past the cap. */
			evict_set_hold(H->vm, 0);
			evict_share(H->vm, &T->share, &T->held[me], BUDGET_MIN_FRAMES);
			struct timespec ts = { 0, BUDGET_ALONE_MS * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		uint64_t limit = cap > others ? cap - others : 0;
		if (limit < fair)
			limit = fair;
		if (limit > cap)
			limit = cap;
		evict_set_hold(H->vm, (uint32_t)(cap - limit));
		evict_share(H->vm, &T->share, &T->held[me], BUDGET_MIN_FRAMES);
		/* Idle while another pager's faults wait: our pages go
		 * first (frame.c, idle members), though no fault of theirs
		 * can wake our evictor. */
		if (atomic_load(&T->share.waiters))
			evict_nudge(H->vm);
		struct timespec ts = { 0, BUDGET_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	evict_share(H->vm, NULL, NULL, 0);
	atomic_store(&T->resident[me], 0);
	return NULL;
}

static void budget_start(struct lp_host *H)
{
	struct lp_tree *T = H->tree;

	if (!T || !T->config.cfg.frames ||
	    (T->config.cfg.flags & LP_CFG_MEM_PER_PROCESS) ||
	    (H->own_parent && H->slot < 0))
		return;
	/* In the sum before the program runs: its first frames count. */
	evict_share(H->vm, &T->share, &T->held[budget_index(H)], BUDGET_MIN_FRAMES);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	H->budget_up = pthread_create(&H->budget, NULL, budget_main, H) == 0;
	if (!H->budget_up)
		evict_share(H->vm, NULL, NULL, 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void budget_stop(struct lp_host *H)
{
	if (!H->budget_up)
		return;
	atomic_store(&H->budget_stop, true);
	pthread_join(H->budget, NULL);
	H->budget_up = false;
}

/*
 * Other processes read the program's arguments and environment
 * (/proc/PID/cmdline, environ: ps, pgrep -f) through the kernel, which
 * cannot fault a page of ours in for them: the read came back empty once
 * the page was out (20 of 20 reads of a program paging under 2 MiB).  So
 * their pages stay resident, pinned as the tid words' are (vm_pin): the
 * arguments, then the environment, each only if it fits in what is left
 * of PIN_PAGES and of an eighth of the budget (pinned frames are never
 * evicted: the program needs the rest).
 */
#define PIN_PAGES 16

static uint64_t pages_of(uint64_t from, uint64_t to)
{
	return to > from ? ((to + LP_PG - 1) >> LP_PAGE_SHIFT) - (from >> LP_PAGE_SHIFT) : 0;
}

static void pin_range(struct lp_host *H, uint64_t from, uint64_t to)
{
	for (uint64_t a = from & ~(uint64_t)(LP_PG - 1); a < to; a += LP_PG)
		(void)vm_pin(H->h, (uintptr_t)a);
}

static void pin_arguments(struct run *R)
{
	struct lp_host *H = &R->H;
	uint64_t room = PIN_PAGES;

	if (!H->h)
		return;
	if (R->vcfg.frames && R->vcfg.frames / 8 < room)
		room = R->vcfg.frames / 8;
	uint64_t na = pages_of(R->so.arg_start, R->so.arg_end);
	uint64_t ne = pages_of(R->so.env_start, R->so.env_end);
	if (na <= room) {
		pin_range(H, R->so.arg_start, R->so.arg_end);
		room -= na;
	}
	if (ne <= room)
		pin_range(H, R->so.env_start, R->so.env_end);
}

/* The program runs: the guard is told; the program holds its own copies
 * of the caller's descriptors now, so ours go; signals sent to its process
 * group (the terminal's, kill 0) are not for us; its memory calls are
 * served from here on; and the caller is told. */
static void run_started(struct run *R, struct guard *G)
{
	struct lp_host *H = &R->H;

	guard_set(G, G_RUNNING);
	/* SIGCHLD is taken from a signalfd (run_serve()): blocked before
	 * any thread starts, or the kernel hands it to a thread that has it
	 * unblocked, which drops it (its default action). */
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);
	drop_program_fds(R->inherited, R->ninherited);
	(void)setpgid(0, 0);
	H->h = handler_new(H->vm);
	pin_arguments(R);
	if (H->tree && !H->own_parent) {
		H->tree->top_listener = H->listener;
		H->tree->top_pager = getpid();
	}
	H->logi = -1;
	if (H->tree) {
		unsigned i = atomic_fetch_add(&H->tree->nlog, 1);
		if (i < LP_PROC_TREE_MAX)
			H->logi = (int)i;
		if (H->own_parent)
			atomic_store(&H->tree->counted[H->slot], 1);
	}
	int err = pthread_create(&H->notify, NULL, notify_main, H);
	if (err == 0)
		H->notify_up = true;
	else
		notify_cannot_start(H, err);
	budget_start(H);
	H->sh->pid = H->pid;
	atomic_store(&H->sh->state, SH_RUNNING);
	sh_changed(H->sh);
}

/* A wait status, as waitpid() gives it, from waitid()'s report. */
static int wait_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED: return (si->si_status & 0xff) << 8;
	case CLD_KILLED: return si->si_status;
	case CLD_DUMPED: return si->si_status | 0x80;
	case CLD_STOPPED:
	case CLD_TRAPPED: return (si->si_status << 8) | 0x7f;
	case CLD_CONTINUED: return 0xffff;
	}
	return 0;
}

/* Whether a forked child still has memory of ours to be served (the child
 * vms of those gone are freed). */
static bool kids_remain(struct lp_host *H)
{
	pthread_mutex_lock(&H->lock);
	vm_reap_kids(H->vm, false);
	unsigned kids = vm_kids_count(H->vm);
	pthread_mutex_unlock(&H->lock);
	return kids != 0;
}

/* The program ended: its last statistics are published, and printed if
 * LAZYPAGE_STATS asked. */
/* Whether the process of a record that says it runs has ended (gone, or
 * a zombie): its pager is about to publish its last figures. */
static bool ended_unsaid(const struct lp_proc_info *e)
{
	uint64_t start;

	return __atomic_load_n(&e->running, __ATOMIC_ACQUIRE) &&
	       prim_proc_start(e->pid, &start) == 0;
}

/* The first program ended: the pagers of the images it executed, and of
 * those the tree executed that ended before it (the last command of a
 * script: its pager may still be taking in its forked children), publish
 * their last statistics before its exit is reported (a second at most). */
static void wait_exec_stats(struct lp_host *H)
{
	if (!H->tree || H->own_parent)
		return;
	for (long end = now_ms() + 1000; now_ms() < end; usleep(1000)) {
		bool busy = false;
		unsigned n = atomic_load(&H->tree->nlog);
		for (unsigned i = 1; i < n && i < LP_PROC_TREE_MAX; i++) {
			const struct lp_proc_info *e = &H->tree->log[i];
			busy |= e->pid == H->pid
					? __atomic_load_n(&e->running, __ATOMIC_ACQUIRE) != 0
					: ended_unsaid(e);
		}
		if (!busy)
			return;
	}
}

static void program_ended(struct run *R)
{
	R->H.ended = true;
	wait_exec_stats(&R->H);
	/* The forked children that ended join the figures (their vms are
	 * freed now: before, a child that ended before its parent was
	 * missing from them, its evictions too). */
	vm_note_gone_kids(R->H.vm);
	(void)kids_remain(&R->H);
	host_publish_stats(&R->H);
	if (R->stats_fd < 0)
		return;
	struct lp_stats st;
	FILE *f = fdopen(R->stats_fd, "w");
	if (f && !lp_stats_get(R->H.vm, &st))
		lp_stats_print(&st, f, 0);
	if (f)
		fclose(f);
	else
		close(R->stats_fd);
	R->stats_fd = -1;
}

/* Report each state change of the program waiting to be collected.
 * Returns whether it still runs (running: whether it did). */
static bool report_program(struct run *R, bool running)
{
	pid_t pid = R->H.pid;

	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		/* A ptrace stop is exec.c's, which follows the program's
		 * exec: left for it. */
		if (waitid(P_PID, (id_t)pid, &si,
			   WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) ||
		    si.si_pid != pid || si.si_code == CLD_TRAPPED)
			break;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)pid, &si,
			   WEXITED | WSTOPPED | WCONTINUED | WNOHANG) ||
		    si.si_pid != pid)
			break;
		if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED ||
		    si.si_code == CLD_DUMPED) {
			running = false;
			program_ended(R);
		}
		publish_status(R->H.sh, wait_status(&si));
	}
	return running;
}


/* Whether pagers of programs the tree executed still serve, or still
 * end (the top pager receives their notifications: it stays for them;
 * and once it ends, theirs end at once: one still tearing down would
 * leave what it had to clean up, a remote store's keys). */
static bool tree_serving(struct lp_host *H)
{
	if (!H->tree || H->own_parent)
		return false;
	for (unsigned i = 0; i < TREE_SLOTS; i++) {
		bool live = atomic_load(&H->tree->live[i]);
		if (!live && !atomic_load(&H->tree->used[i]))
			continue;
		pid_t pager = __atomic_load_n(&H->tree->slot[i].pager, __ATOMIC_ACQUIRE);
		uint64_t start;
		if (pager > 0 && prim_proc_start(pager, &start) != 0)
			return true; /* (alive, or cannot tell) */
		if (live)
			atomic_store(&H->tree->live[i], 0); /* it died */
	}
	return false;
}

/* How often the host looks whether forked children are gone, once the
 * program is. */
#define KIDS_POLL_MS 10
#define PUBLISH_MS 200

/* Serve: report state changes, publish statistics, and stay while a
 * forked child still has memory of ours to be served.  (The caller's death
 * is the guard's.) */
static void run_serve(struct run *R)
{
	struct lp_shared *sh = R->H.sh;
	sigset_t chld;
	bool running = true, left = false;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	long next_pub = 0;
	/* (Blocked since run_started(), in every thread.) */
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	/* Look before the first wait: a program that ended before SIGCHLD
	 * was blocked here left no signal behind (it cost every short
	 * program 200 ms).  While only forked children remain, which are
	 * not ours and send us nothing, look every KIDS_POLL_MS. */
	for (int wait_ms = 0;; ) {
		/* The pidfd too: it says the program ended even if its
		 * SIGCHLD was lost. */
		struct pollfd p[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = running ? R->H.pidfd : -1, .events = POLLIN },
		};
		if (wait_ms)
			(void)poll(p, 2, wait_ms);
		if (p[0].revents) {
			struct signalfd_siginfo ssi;
			while (read(sfd, &ssi, sizeof ssi) > 0)
				;
		}
		if (R->H.own_parent) {
			/* Not our child: its end is its pidfd's. */
			if (running && (p[1].revents || died(R->H.pid, R->H.pidfd))) {
				running = false;
				program_ended(R);
			}

		} else {
			running = report_program(R, running);
		}
		if (atomic_load(&R->H.program_left) && !left) {
			/* It executed another program: its memory here is
			 * nobody's now; a pager of its own serves the new one
			 * (or the kernel does).  Our parent is gone from us. */
			left = true;
			program_ended(R);
			pthread_mutex_lock(&R->H.lock);
			vm_unmap_all(R->H.vm);
			pthread_mutex_unlock(&R->H.lock);
			budget_stop(&R->H);
			if (R->H.own_parent)
				running = false;
		}
		tree_kids_sweep(&R->H, false);
		if (running) {
			/* Every PUBLISH_MS, whatever wakes us: a forked child
			 * our evictors stop to drop its pages sends us a
			 * SIGCHLD for each stop (busybox's sort at 512K: 55 %
			 * of a CPU spent publishing, the sort slowed down). */
			long now = now_ms();
			if (now >= next_pub) {
				host_publish_stats(&R->H);
				/* (and the vms of forked children that ended
				 * are freed: their figures join ours) */
				(void)kids_remain(&R->H);
				next_pub = now + PUBLISH_MS;
			}
			wait_ms = (int)(next_pub - now);
			continue;
		}
		if (!kids_remain(&R->H) && !tree_serving(&R->H))
			break;
		if (atomic_load(&sh->phase) != SH_P_KIDS) {
			atomic_store(&sh->phase, SH_P_KIDS);
			sh_changed(sh);
		}
		wait_ms = KIDS_POLL_MS;
	}
}

/* The end: bounded by the guard (GUARD_MS). */
static void run_teardown(struct run *R, struct guard *G)
{
	struct lp_host *H = &R->H;

	atomic_store(&H->sh->phase, SH_P_TEARDOWN);
	sh_changed(H->sh);
	if (H->own_parent && H->slot >= 0) {
		atomic_store(&H->tree->live[H->slot], 0);
		tree_kids_sweep(H, true);
		/* Our statistics join the tree's sum of those that ended. */
		tree_lock(H->tree);
		if (atomic_exchange(&H->tree->counted[H->slot], 0))
			stats_fold_ended(&H->tree->done, &H->sh->stats);
		tree_unlock(H->tree);
	}
	guard_set(G, G_TEARDOWN);
	budget_stop(H);
	if (H->notify_up) {
		uint64_t one = 1;
		(void)!write(H->stop_fd, &one, sizeof one);
		pthread_join(H->notify, NULL);
	}
	handler_free(H->h);
	pthread_mutex_lock(&G->vm_lock);
	G->vm_gone = true;
	pthread_mutex_unlock(&G->vm_lock);
	lp_vm_destroy(H->vm);
	free(R->tstack); /* the program is gone */
	free(R->t);
}

/* ---- a program the tree executed (lp_exec_main) ---- */

struct exec_start {
	struct lp_tree *tree;
	int slot;                  /* ours in tree, or -1 */
	struct tree_config *config;
	struct lp_shared *sh;
	const char *exe, *execfn;
	char *const *argv, *const *envp;
	pid_t parent;
	struct lp_tramp *t;        /* the pager's, once it has one */
	atomic_int stage;          /* TR_PREP, then TR_START or TR_NATIVE */
};

static struct lp_config config_of(struct tree_config *c)
{
	struct lp_config cfg = c->cfg;

	cfg.policy = c->has_policy ? c->policy : NULL;
	cfg.swap_path = c->has_swap ? c->swap_path : NULL;
	cfg.remote = c->has_remote ? c->remote : NULL;
	return cfg;
}

/* The pager of a program the tree executed: our parent is the program's
 * process, waiting for es->stage.  Mirrors host_main. */
static int exec_pager(void *arg)
{
	struct exec_start *es = arg;
	static struct guard G;
	static struct run R;
	struct lp_config cfg = config_of(es->config);
	int pidfd = -1;

	/* Named in our slot before our first call the top pager sees
	 * (tree_route: ours are the kernel's). */
	__atomic_store_n(&es->sh->pager, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	/* Then who we are beyond the pid, for the others to see us die
	 * (budget_reap: never before the pid, so it is always ours). */
	uint64_t started = 0;
	if (prim_proc_start(getpid(), &started) == 1)
		atomic_store(&es->tree->pager_start[es->slot], started);
	/* (The pidfd after run_setup, which closes our close-on-exec
	 * descriptors.) */
	if (run_setup(&R, &cfg, es->sh, -1) ||
	    (pidfd = (int)syscall(SYS_pidfd_open, es->parent, 0)) < 0)
		goto native;
	R.H.own_parent = true;
	R.H.pid = es->parent;
	R.H.pidfd = pidfd;
	R.H.go = &es->stage;
	R.H.tree = es->tree;
	R.H.slot = es->slot;
	/* The tree's listener: our program's notifications come to the top
	 * pager, which passes them on to us (through our ring). */
	int top = (int)syscall(SYS_pidfd_open, es->tree->top_pager, 0, EXEC_MAGIC);
	R.H.listener = top < 0 ? -1
			       : (int)syscall(SYS_pidfd_getfd, top,
					      es->tree->top_listener, 0);
	R.H.top_fd = top;
	if (R.H.listener < 0 || es->slot < 0)
		goto native;
	(void)fcntl(R.H.listener, F_SETFD, FD_CLOEXEC);
	guard_start(&G, &R.H, -1);
	if (run_load(&R, es->exe, es->argv, &cfg))
		goto native;
	free(R.execfn);
	R.execfn = strdup(es->execfn);
	if (!R.execfn || run_stack(&R, es->envp))
		goto native;
	set_identity(&R.H, R.H.prog.elf->fd, R.top, &R.so);
	es->t = R.t;
	atomic_store(&es->tree->live[es->slot], 1);
	if (run_start(&R)) {
		atomic_store(&es->tree->live[es->slot], 0);
		/* Too late to run it natively (its process takes its own
		 * way out, status 127): say why on its stderr. */
		fprintf(stderr, "vmrun: %s: %s\n", es->execfn, es->sh->why.msg);
		goto lost;
	}
	run_started(&R, &G);
	run_serve(&R);
	run_teardown(&R, &G);
lost:
	wait_parent_gone(&R.H);
	/* The whole process: returning would end this thread only, and the
	 * guard's would give our slot back a second time a second later,
	 * when it may be another program's (whose pager's own calls were
	 * then taken for its program's: the ASan suite saw such a pager
	 * hang). */
	_exit(0);
native:
	/* Nothing was changed that the program can see: it runs natively. */
	R.H.own_parent = true;
	R.H.pidfd = pidfd;
	R.H.pid = es->parent;
	R.H.tree = es->tree;
	R.H.slot = es->slot;
	atomic_store(&es->stage, TR_NATIVE);
	syscall(SYS_futex, &es->stage, FUTEX_WAKE, 1, NULL, NULL, 0);
	wait_parent_gone(&R.H);
	_exit(0);
}

#define EXEC_PAGER_STACK ((size_t)8 << 20)

__attribute__((no_stack_protector, noinline))
static void exec_wait(struct exec_start *es)
{
	/* Raw system calls only from here: the pager runs with our TLS. */
	for (;;) {
		int st = atomic_load(&es->stage);
		if (st == TR_NATIVE)
			return;
		if (st == TR_START)
			tramp_main(es->t); /* never returns */
		long r;
		register long r10 __asm__("r10") = 0;
		__asm__ volatile("syscall"
				 : "=a"(r)
				 : "a"(SYS_futex), "D"(&es->stage), "S"(FUTEX_WAIT),
				   "d"(st), "r"(r10)
				 : "rcx", "r11", "memory");
		(void)r;
	}
}

void host_exec_main(const char *tree_path, const char *exe, const char *execfn,
		    char *const argv[], char *const envp[])
{
	static struct exec_start es;
	int fd = open(tree_path, O_RDWR | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) || (size_t)st.st_size < sizeof(struct lp_tree)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct lp_tree *tree = mmap(NULL, sizeof *tree, PROT_READ | PROT_WRITE,
				    MAP_SHARED, fd, 0);
	int self = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (tree == MAP_FAILED || self < 0) {
		close(fd);
		return;
	}
	int slot = -1;
	for (int i = 0; i < TREE_SLOTS && slot < 0; i++) {
		int free_ = 0;
		if (atomic_compare_exchange_strong(&tree->used[i], &free_, 1))
			slot = i;
	}
	if (slot < 0)
		return; /* TREE_SLOTS programs run managed already */
	struct lp_shared *sh = &tree->slot[slot];
	memset(sh, 0, sizeof *sh);
	tree->ring[slot].head = tree->ring[slot].tail = 0;
	void *stack = mmap(NULL, EXEC_PAGER_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
			   -1, 0);
	if (!sh || stack == MAP_FAILED)
		return;
	sh->stats.fault_kinds = LP_FAULT_KINDS;
	exec_set_helper(self, fd);
	es = (struct exec_start){
		.tree = tree, .slot = slot,
		.config = &tree->config, .sh = sh, .exe = exe, .execfn = execfn,
		.argv = argv, .envp = envp, .parent = getpid(),
	};
	atomic_init(&es.stage, TR_PREP);
	/* Its exit signal is SIGKILL: if the pager dies, so do we (without
	 * it our faults would never be served). */
	pid_t pager = clone(exec_pager, (char *)stack + EXEC_PAGER_STACK,
			    CLONE_VM | SIGKILL, &es);
	if (pager < 0)
		return;
	/* (sh->pager: the pager's own first store, exec_pager.) */
	sh->pid = getpid();
	exec_wait(&es);
	/* TR_NATIVE: the pager lives on (idle) until we are gone. */
}

/* The steps in their order: each failure is said on the shared page (and
 * the guard, started once nothing but our own state exists, ends a run
 * whose caller dies, from then on). */
int host_main(const char *name, char *const argv[], char *const envp[],
	      const struct lp_config *cfg, struct lp_shared *sh, int caller_fd,
	      int tree_fd)
{
	/* The programs ours executes run managed if our caller is a helper
	 * (lp_exec_main) and the tree has its page. */
	if (exec_helper() >= 0 && tree_fd >= 0)
		exec_set_helper(exec_helper(), tree_fd);
	else
		exec_set_helper(-1, -1);
	static struct guard G;
	struct run R;

	if (run_setup(&R, cfg, sh, caller_fd))
		return 1;
	R.H.tree = tree_fd >= 0 ? (struct lp_tree *)sh : NULL; /* top: first */
	R.H.slot = -1;
	guard_start(&G, &R.H, caller_fd);
	if (run_load(&R, name, argv, cfg) || run_stack(&R, envp))
		return 1;
	set_identity(&R.H, R.H.prog.elf->fd, R.top, &R.so);
	if (run_start(&R))
		return 1;
	run_started(&R, &G);
	run_serve(&R);
	run_teardown(&R, &G);
	return 0;
}
