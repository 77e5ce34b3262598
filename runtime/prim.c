/* SPDX-License-Identifier: MIT */
#include "prim.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
/* libxxhash, header only (no library to link): XXH3 is a well-kept,
 * vectorised hash, ~20 GB/s here, where ours would be a fraction. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "page.h"

void prim_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void prim_page_digest(const void *page, uint64_t seed, uint64_t out[2])
{
	XXH128_hash_t h = XXH3_128bits_withSeed(page, LP_PG, seed);

	out[0] = h.low64;
	out[1] = h.high64;
}

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* errno-preserving ioctl: returns 0 or -errno. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int saved = errno, rc = 0;

	if (ioctl(fd, req, arg) < 0)
		rc = -errno;
	errno = saved;
	return rc;
}

int prim_uffd_open(int *out)
{
	int saved = errno, fd, rc = 0;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		/* /dev/userfaultfd admits users of its group without
		 * CAP_SYS_PTRACE, for faults from user and kernel mode alike. */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	errno = saved;
	if (fd < 0)
		return rc;
	*out = fd;
	return 0;
}

int prim_uffd_features(uint64_t *features)
{
	int fd, rc = prim_uffd_open(&fd);

	if (rc)
		return rc;
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	rc = xioctl(fd, UFFDIO_API, &api);
	close(fd);
	if (rc)
		return rc;
	*features = api.features;
	return 0;
}

int prim_uffd_api(int fd, uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	return xioctl(fd, UFFDIO_API, &api);
}

int prim_uffd_register(int fd, uintptr_t start, size_t len, uint64_t mode)
{
	struct uffdio_register r = { .range = { start, len }, .mode = mode };

	return xioctl(fd, UFFDIO_REGISTER, &r);
}

int prim_uffd_unregister(int fd, uintptr_t start, size_t len)
{
	struct uffdio_range r = { start, len };

	return xioctl(fd, UFFDIO_UNREGISTER, &r);
}

int prim_uffd_copy(int fd, uintptr_t dst, const void *src, size_t len, bool wp)
{
	return prim_uffd_copy_mode(fd, dst, src, len,
				   wp ? UFFDIO_COPY_MODE_WP : 0);
}

int prim_uffd_copy_mode(int fd, uintptr_t dst, const void *src, size_t len,
			uint64_t mode)
{
	size_t done = 0;

	while (done < len) {
		struct uffdio_copy c = {
			.dst = dst + done,
			.src = (uintptr_t)src + done,
			.len = len - done,
			.mode = mode,
		};
		int rc = xioctl(fd, UFFDIO_COPY, &c);
		if (c.copy > 0)
			done += (size_t)c.copy;
		if (rc == 0)
			return 0;
		/* A partial copy reports its progress; go on from there. */
		if (c.copy > 0 && rc == -EAGAIN)
			continue;
		return rc;
	}
	return 0;
}

int prim_uffd_wp(int fd, uintptr_t start, size_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { start, len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return xioctl(fd, UFFDIO_WRITEPROTECT, &w);
}

static int move_once(int fd, uintptr_t dst, uintptr_t src, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct uffdio_move m = {
			.dst = dst + done,
			.src = src + done,
			.len = len - done,
			.mode = 0,
		};
		int rc = xioctl(fd, UFFDIO_MOVE, &m);
		if (m.move > 0)
			done += (size_t)m.move;
		if (rc == 0)
			return 0;
		if (m.move > 0 && rc == -EAGAIN)
			continue;
		return rc;
	}
	return 0;
}

void *prim_private_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_DONTFORK);
	return p;
}

void prim_private_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

int prim_uffd_area(int fd, size_t len, uint64_t mode, uintptr_t *addr)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	(void)madvise(p, len, MADV_NOHUGEPAGE);
	(void)madvise(p, len, MADV_DONTFORK);
	int rc = fd < 0 ? 0 : prim_uffd_register(fd, (uintptr_t)p, len, mode);
	if (rc) {
		munmap(p, len);
		return rc;
	}
	*addr = (uintptr_t)p;
	return 0;
}

void prim_uffd_area_free(int fd, uintptr_t addr, size_t len)
{
	if (fd >= 0)
		(void)prim_uffd_unregister(fd, addr, len);
	munmap((void *)addr, len);
}

int prim_uffd_move_some(int fd, uintptr_t dst, uintptr_t src, size_t len, size_t *moved)
{
	*moved = 0;
	while (*moved < len) {
		struct uffdio_move m = {
			.dst = dst + *moved,
			.src = src + *moved,
			.len = len - *moved,
			.mode = 0,
		};
		int rc = xioctl(fd, UFFDIO_MOVE, &m);
		if (m.move > 0)
			*moved += (size_t)m.move;
		if (rc == 0)
			*moved = len;
		if (rc == 0 || !(m.move > 0 && rc == -EAGAIN))
			return rc;
	}
	return 0;
}

static _Atomic(int (*)(uintptr_t, uintptr_t, int)) move_hook;

void prim_set_move_hook(int (*fn)(uintptr_t dst, uintptr_t src, int rc))
{
	atomic_store(&move_hook, fn);
}

int prim_uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len)
{
	int (*hook)(uintptr_t, uintptr_t, int) =
		atomic_load_explicit(&move_hook, memory_order_relaxed);
	int rc = move_once(fd, dst, src, len);

	return hook ? hook(dst, src, rc) : rc;
}

int prim_uffd_wake(int fd, uintptr_t start, size_t len)
{
	struct uffdio_range r = { start, len };

	return xioctl(fd, UFFDIO_WAKE, &r);
}

int prim_uffd_zeropage(int fd, uintptr_t start, size_t len)
{
	struct uffdio_zeropage z = { .range = { start, len }, .mode = 0 };

	return xioctl(fd, UFFDIO_ZEROPAGE, &z);
}

int prim_uffd_poison(int fd, uintptr_t start, size_t len)
{
	struct uffdio_poison p = { .range = { start, len }, .mode = 0 };

	return xioctl(fd, UFFDIO_POISON, &p);
}

int prim_page_exclusive(uintptr_t addr)
{
	int saved = errno;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;
	int rc;

	if (fd < 0) {
		rc = -errno;
	} else {
		ssize_t n = pread(fd, &e, sizeof e, (off_t)(addr >> LP_PAGE_SHIFT) * 8);
		rc = n == (ssize_t)sizeof e ? (int)((e >> 63 & 1) && (e >> 56 & 1)) : -EIO;
		close(fd);
	}
	errno = saved;
	return rc;
}

int prim_status_field(pid_t tid, const char *key, int base, uint64_t *v)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	int saved = errno, rc = -ENOENT;

	if (tid)
		snprintf(path, sizeof path, "/proc/%d/status", tid);
	else
		snprintf(path, sizeof path, "/proc/self/status");
	FILE *f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		errno = saved;
		return rc;
	}
	while (rc && fgets(line, sizeof line, f))
		if (!strncmp(line, key, kl)) {
			*v = strtoull(line + kl, NULL, base);
			rc = 0;
		}
	fclose(f);
	errno = saved;
	return rc;
}

long prim_pinned_kib(pid_t pid)
{
	uint64_t kib;
	int rc = prim_status_field(pid, "VmPin:", 10, &kib);
	return rc ? rc : (long)kib;
}

bool prim_mapped(uintptr_t addr)
{
	unsigned char vec = 0;
	int saved = errno;
	bool there = mincore((void *)addr, LP_PG, &vec) == 0 && (vec & 1);

	errno = saved;
	return there;
}

int prim_zap(int pidfd, const struct iovec *iov, size_t n)
{
	int saved = errno, rc = 0;
	size_t i = 0;

	if (pidfd >= 0) {
		while (i < n) {
			size_t chunk = n - i > 512 ? 512 : n - i;
			size_t want = 0;
			for (size_t k = 0; k < chunk; k++)
				want += iov[i + k].iov_len;
			long r = syscall(SYS_process_madvise, pidfd, iov + i,
					 chunk, MADV_DONTNEED, 0);
			if (r < 0 || (size_t)r != want)
				break; /* old kernel or partial: finish below */
			i += chunk;
		}
	}
	for (; i < n; i++) {
		if (madvise(iov[i].iov_base, iov[i].iov_len, MADV_DONTNEED) < 0 &&
		    rc == 0)
			rc = -errno;
	}
	errno = saved;
	return rc;
}

int prim_pidfd_self(void)
{
	int saved = errno;
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	int rc = fd < 0 ? -errno : fd;

	if (fd >= 0)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	errno = saved;
	return rc;
}

uint64_t prim_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

unsigned prim_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1u;
}

int prim_allowed_cpus(int *cpus, int max)
{
	cpu_set_t allowed;
	int n = 0;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[n++] = c;
	return n;
}

int prim_pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int prim_block_signals(void *old)
{
	sigset_t all;

	sigfillset(&all);
	return -pthread_sigmask(SIG_SETMASK, &all, (sigset_t *)old);
}

int prim_restore_signals(const void *old)
{
	return -pthread_sigmask(SIG_SETMASK, (const sigset_t *)old, NULL);
}

pid_t prim_tgid_of(pid_t tid)
{
	uint64_t tgid;
	return prim_status_field(tid, "Tgid:", 10, &tgid) ? tid : (pid_t)tgid;
}

int prim_thread_stat_open(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%d/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* /proc/PID/stat (fd open, or -1: open it) into buf, NUL-terminated; the
 * text after the command's last ')', or NULL. */
static const char *stat_fields(pid_t pid, int fd, char *buf, size_t len)
{
	bool own = fd < 0;

	if (own && (fd = prim_thread_stat_open(pid)) < 0)
		return NULL;
	ssize_t n = pread(fd, buf, len - 1, 0);
	if (own)
		close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	/* The command may hold spaces and parentheses: after the last ')'. */
	const char *p = strrchr(buf, ')');
	return p ? p + 1 : NULL;
}

int prim_thread_cpu(int fd)
{
	char buf[1024];
	const char *p = stat_fields(0, fd, buf, sizeof buf);

	/* Field 39 (processor); p is at field 3 (state). */
	for (int field = 3; p && field < 39; field++)
		p = strchr(p + 1, ' ');
	int cpu;
	return p && sscanf(p, " %d", &cpu) == 1 ? cpu : -1;
}

int prim_proc_start(pid_t pid, uint64_t *start)
{
	char buf[1024];
	int fd = prim_thread_stat_open(pid);

	if (fd == -ENOENT || fd == -ESRCH)
		return 0;
	if (fd < 0)
		return fd;
	errno = 0;
	const char *p = stat_fields(pid, fd, buf, sizeof buf);
	int err = errno;
	close(fd);
	if (!p)
		return err == ESRCH ? 0 : -EIO; /* (it ended after the open) */
	/* Field 22 (starttime); p is at field 3 (state). */
	if (p[1] == 'Z' || p[1] == 'X')
		return 0;
	for (int field = 3; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	unsigned long long t;
	if (!p || sscanf(p, " %llu", &t) != 1)
		return -EIO;
	*start = t;
	return 1;
}

int prim_proc_stat(pid_t pid, char *state, pid_t *ppid)
{
	char buf[1024];
	const char *p = stat_fields(pid, -1, buf, sizeof buf);
	int pp = 0;
	char st = 0;

	if (!p || sscanf(p, " %c %d", &st, &pp) != 2)
		return -1;
	*state = st;
	*ppid = pp;
	return 0;
}

int prim_mlock2(uintptr_t addr, size_t len, unsigned flags)
{
	return syscall(SYS_mlock2, addr, len, flags) ? -errno : 0;
}

int prim_munlock(const void *addr, size_t len)
{
	return syscall(SYS_munlock, addr, len) ? -errno : 0;
}

int prim_mlockall(int flags)
{
	return syscall(SYS_mlockall, flags) ? -errno : 0;
}
