/* SPDX-License-Identifier: MIT */
/*
 * prim: the thin layer over the kernel calls lazypage makes (after
 * mimalloc's prim.c).  Every function returns 0 (or a count) or -errno and
 * leaves errno as it found it; none allocates or locks.
 *
 * The userfaultfd fill functions share one contract: -EEXIST means the page
 * is already there (another thread filled it: not an error for callers that
 * then wake), -EAGAIN means the mm is changing under a non-cooperative event
 * and the call must be retried later, -ENOENT/-EINVAL/-EFAULT mean the
 * target range is no longer a registered mapping.
 */
#ifndef LP_PRIM_H
#define LP_PRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "compat.h"
#include "page.h" /* LP_PAGE_SHIFT, LP_PG */

/* Open a userfaultfd that also sees faults taken inside system calls (no
 * UFFD_USER_MODE_ONLY), O_CLOEXEC|O_NONBLOCK: the syscall first, then
 * /dev/userfaultfd.  -EPERM when both are refused. */
int prim_uffd_open(int *fd);

/* Features the kernel offers (probed on a scratch descriptor). */
int prim_uffd_features(uint64_t *features);

/* The UFFDIO_API handshake with the features wanted (a subset of
 * prim_uffd_features()). */
int prim_uffd_api(int fd, uint64_t features);

int prim_uffd_register(int fd, uintptr_t start, size_t len, uint64_t mode);
int prim_uffd_unregister(int fd, uintptr_t start, size_t len);

/* Fill [dst, dst+len) from src; wp installs the pages write-protected. */
int prim_uffd_copy(int fd, uintptr_t dst, const void *src, size_t len, bool wp);
/* The same with UFFDIO_COPY's mode bits (UFFDIO_COPY_MODE_DONTWAKE: the
 * faulting threads stay asleep until prim_uffd_wake()). */
int prim_uffd_copy_mode(int fd, uintptr_t dst, const void *src, size_t len,
			uint64_t mode);
/* Write-protect (wp) or unprotect and wake [start, start+len). */
int prim_uffd_wp(int fd, uintptr_t start, size_t len, bool wp);
/* len bytes of zeros for the runtime's own tables, that a child of fork()
 * does not inherit (MADV_DONTFORK): vmrun's pager shares its address space
 * with the program, so each of the program's forks write-protected the
 * pager's tables, and every page of them it wrote next took a copy-on-write
 * fault (a copy and a TLB shootdown of the other CPU).  Populated at once
 * with zeroed pages (MAP_POPULATE): nothing to clear, and no page mapped
 * from the zero page on a read, to fault again at the write after it.
 * NULL when out of memory.
 * Only for memory no API call in a child touches (the vm itself is not:
 * a child's calls look at its owner). */
void *prim_private_alloc(size_t len);
void prim_private_free(void *p, size_t len);
/* An area of len bytes for the runtime's own pages (kva slots, runs of
 * evicted pages): anonymous, never huge, not inherited by children,
 * registered with fd in mode (fd < 0: not registered).  0 and *addr, or
 * -errno (nothing mapped). */
int prim_uffd_area(int fd, size_t len, uint64_t mode, uintptr_t *addr);
void prim_uffd_area_free(int fd, uintptr_t addr, size_t len);
/* Move the pages of [src, src+len) to [dst, dst+len) without copying. */
int prim_uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len);
/* Move as much of [src, src+len) to [dst, ...) as the kernel will, in
 * order: 0 when all of it moved, else the error that stopped it (-EBUSY:
 * a page pinned for I/O or shared with a forked child), *moved the bytes
 * moved before it.  (Not seen by the move hook.) */
int prim_uffd_move_some(int fd, uintptr_t dst, uintptr_t src, size_t len, size_t *moved);
/* Tests: fn sees each UFFDIO_MOVE's answer and returns the one to give
 * (to play a kernel that answers wrongly); NULL removes it. */
void prim_set_move_hook(int (*fn)(uintptr_t dst, uintptr_t src, int rc));
int prim_uffd_wake(int fd, uintptr_t start, size_t len);
/* Map the zero page at [start, start+len) (read-only until written). */
int prim_uffd_zeropage(int fd, uintptr_t start, size_t len);
/* Mark [start, start+len) poisoned: the faulting thread gets SIGBUS. */
int prim_uffd_poison(int fd, uintptr_t start, size_t len);

/* Drop the pages of n ranges of the calling process's mm (MADV_DONTNEED),
 * batched into one TLB flush where the kernel can (process_madvise on
 * 6.13+), one madvise() per range otherwise.  pidfd: of the calling process,
 * or -1. */
int prim_zap(int pidfd, const struct iovec *iov, size_t n);
/* Whether the page at addr is in this process's page table (mincore():
 * never faults, whatever is registered there). */
bool prim_mapped(uintptr_t addr);

/* Whether the page at addr is present and mapped once only in this
 * process's mm (/proc/self/pagemap, PM_MMAP_EXCLUSIVE): 1, 0, or -errno.
 * A present, exclusive page that UFFDIO_MOVE refuses (-EBUSY) is pinned. */
int prim_page_exclusive(uintptr_t addr);
/* The number after key ("VmPin:", "Tgid:", "CapEff:") in /proc/TID/status
 * (tid 0: /proc/self), in base: 0 and *v, or -errno (-ENOENT: no such
 * line).  errno is kept. */
int prim_status_field(pid_t tid, const char *key, int base, uint64_t *v);
/* The pages of process pid's mm (0: ours) pinned for the long term
 * (io_uring's registered buffers, RDMA: VmPin of /proc/PID/status), in
 * KiB, or -errno. */
long prim_pinned_kib(pid_t pid);

/* A pidfd for the calling process, or -errno. */
int prim_pidfd_self(void);

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait(). */
struct timespec;
void prim_deadline(struct timespec *ts, int ms);

/* Monotonic time in nanoseconds. */
uint64_t prim_now_ns(void);

/* Online CPUs (at least 1). */
unsigned prim_ncpus(void);
/* The CPUs this thread may run on, in order, up to max: how many. */
int prim_allowed_cpus(int *cpus, int max);
/* The process (thread group) of thread tid, from /proc; tid if unknown. */
pid_t prim_tgid_of(pid_t tid);
/* Process pid's state letter and parent, from /proc/PID/stat: 0, or -1
 * (gone, or unreadable). */
int prim_proc_stat(pid_t pid, char *state, pid_t *ppid);
/* Whether process pid lives: 1 (*start: when it started, in clock ticks
 * since boot, which tells it from a later process given the same pid), 0
 * if it is gone or a zombie, -errno if that cannot be told. */
int prim_proc_start(pid_t pid, uint64_t *start);
/* /proc/TID/stat of thread tid (of any process) opened: an fd or -errno;
 * the CPU it last ran on, read through that fd, or -1. */
int prim_thread_stat_open(pid_t tid);
int prim_thread_cpu(int fd);
/* Keep the calling thread on one CPU (best effort: 0 or -errno). */
int prim_pin_self(int cpu);

/* A 128-bit digest of one page (XXH3, seeded): equal digests stand for
 * equal content (a chance of 2^-128 otherwise; the seed is random per run,
 * so a program cannot aim for a collision it cannot compute). */
void prim_page_digest(const void *page, uint64_t seed, uint64_t out[2]);

/* Block every signal in the calling thread; old mask saved in *old. */
int prim_block_signals(void *old_sigset);
int prim_restore_signals(const void *old_sigset);

/* mlock2(2), munlock(2), mlockall(2) as system calls: sanitizers make the
 * libc functions do nothing, and a lock we make must be undone by us.
 * 0 or -errno. */
int prim_mlock2(uintptr_t addr, size_t len, unsigned flags);
int prim_munlock(const void *addr, size_t len);
int prim_mlockall(int flags);

#endif /* LP_PRIM_H */
