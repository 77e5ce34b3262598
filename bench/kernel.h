/* SPDX-License-Identifier: MIT */
/*
 * The kernel's own paging, as a baseline: the same accesses on plain
 * anonymous memory (no transparent huge pages), or a whole program, in a
 * child process inside a memory cgroup limited to the budget, with a swap
 * file enabled only for the run.
 *
 * kpage_open() creates the cgroup (v1: memory.limit_in_bytes; v2:
 * memory.max) and, unless swap with room enough is on already (bench/run
 * turns on one swap file for its whole run), writes a swap file of zeros
 * (as dd would), formats it with mkswap and enables it with swapon(2) at
 * the highest priority.  kpage_close() removes
 * the cgroup, disables and deletes the swap file.  It also runs on SIGINT,
 * SIGTERM, SIGHUP and at exit, so an interrupted run leaves nothing behind
 * (a SIGKILL does: bench/run cleans its own swap directory).
 *
 * Accesses: the limit is what the child has charged once it is ready to run
 * (stack, threads, its bookkeeping; measured, see kpage_result.base_bytes)
 * plus the budget, so that the region gets the budget, as a lazypage region
 * does.  A program: the limit is the budget.
 */
#ifndef LP_BENCH_KERNEL_H
#define LP_BENCH_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "access.h"

struct kpage;

struct kpage_result {
	uint64_t ns;            /* accesses: measured by the child; program: wall */
	uint64_t bad;           /* accesses: content errors */
	uint64_t majflt, minflt;/* the child's page faults (getrusage) */
	uint64_t pswpin, pswpout; /* /proc/vmstat deltas: system-wide pages */
	uint64_t base_bytes;    /* accesses: charged before the run */
	uint64_t limit_bytes;
	uint64_t peak_bytes;    /* the cgroup's most charged (v1 max_usage) */
	uint64_t resident;      /* accesses: region pages resident at the end */
	uint64_t maxrss_kb;     /* the child's peak RSS */
	int status;             /* the child's wait status */
	int timed_out;          /* program: killed at the timeout */
	struct bench_lat lat;   /* accesses: per-access latency */
};

/*
 * Prepare a swap file of swap_bytes in swap_dir and a memory cgroup.
 * 0, or -errno with a one-line reason in why: -EPERM not root, -ENOENT no
 * memory cgroup, or what failed.
 */
int kpage_open(struct kpage **out, const char *swap_dir, uint64_t swap_bytes,
	       char *why, size_t whylen);
/* Whether k made its own swap file (rather than use swap that was on). */
bool kpage_own_swap(const struct kpage *k);

/* Undo kpage_open.  NULL is accepted. */
void kpage_close(struct kpage *k);

/* Run a's accesses in a child in the cgroup, the region limited to budget
 * bytes; a->base is the child's.  0 or -errno (why says it). */
int kpage_run_access(struct kpage *k, struct bench_access *a, uint64_t budget,
		     struct kpage_result *r, char *why, size_t whylen);

/* Run argv (execvp) in the cgroup limited to limit bytes (0: unlimited),
 * its stdout to out_fd, stderr to err_fd.  0 or -errno. */
int kpage_run_prog(struct kpage *k, char *const argv[], uint64_t limit,
		   int out_fd, int err_fd, struct kpage_result *r, char *why,
		   size_t whylen);

/* Kill the programs of kpage_run_prog() and kpage_run_native() (their
 * whole process group) after seconds of wall time, and say so in
 * kpage_result.timed_out; 0 (the default): never. */
void kpage_set_timeout(unsigned seconds);

/* Run argv without a cgroup or swap (native), timed the same way. */
int kpage_run_native(char *const argv[], int out_fd, int err_fd,
		     struct kpage_result *r, char *why, size_t whylen);

#endif /* LP_BENCH_KERNEL_H */
