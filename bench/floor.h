/* SPDX-License-Identifier: MIT */
/*
 * The bare userfaultfd floor: what the mechanism alone costs.  One handler
 * thread resolves each missing fault of a region with UFFDIO_COPY from a
 * zero page and nothing else: no page table, no policy, no I/O.  Under the
 * budget it evicts the oldest pages (FIFO) with MADV_DONTNEED, ahead and in
 * bursts between the same watermarks as the runtime (runtime/frame.c), in
 * one batched call (process_madvise where the kernel has it), so that it
 * misses exactly as the simulator's sampled host does under FIFO.  Evicted
 * content is lost: pages come back as zeros.
 */
#ifndef LP_BENCH_FLOOR_H
#define LP_BENCH_FLOOR_H

#include <stdint.h>

#include "access.h"

struct floor_result {
	uint64_t faults;        /* pages filled */
	uint64_t evictions;     /* pages dropped */
	uint64_t p50_ns, p99_ns;/* fault service: read to filled */
	uint64_t peak;          /* most pages resident */
};

/*
 * Map a->npages pages, serve them with `frames` frames, run a's accesses
 * (a->base is set here; a->keep must be false) and unmap.  0, or -EPERM /
 * -EACCES / -ENOSYS when userfaultfd is refused, -ENOMEM, -errno.
 */
int floor_run(struct bench_access *a, uint32_t frames,
	      struct bench_access_result *ar, struct floor_result *fr);

#endif /* LP_BENCH_FLOOR_H */
