/* SPDX-License-Identifier: MIT */
/*
 * Regions: the address ranges a vm manages (the vm_area_structs of
 * lazypage).  A region is immutable once published; splitting one (partial
 * lp_unmap) publishes new regions and retires the old.  Regions are
 * reference counted: the vm's table holds one reference, a fault handler or
 * the evictor holds one while it works on a page of the region.
 */
#ifndef LP_REGION_H
#define LP_REGION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lazypage/lazypage.h"
#include "page.h"

_Static_assert(LP_PG == LP_PAGE_SIZE, "the runtime's page is the header's");

enum lp_region_kind { RK_ANON, RK_FILE, RK_LAZY };

/* A file shared by the regions that map it. */
struct lp_file {
	int fd;            /* our own duplicate, O_CLOEXEC */
	atomic_uint refs;
	atomic_uint_least64_t size; /* last size seen (st_size) */
};

/*
 * The sequential streams of faults in a region, for filling ahead
 * (fault.c): each the page its faults reached last and its window.
 * Several at once: threads that each scan their own part, or one scan
 * shared by threads that drift apart (one thread's pages come in by
 * another's readahead, so it runs ahead).  A fault near no stream starts
 * one in place of the oldest started (first touches use s[0] only).
 */
#define LP_STREAMS 8u

struct lp_stream {
	atomic_uint_least64_t last;
	atomic_uint win;
};

struct lp_streams {
	struct lp_stream s[LP_STREAMS];
	atomic_uint next;     /* the one a new stream replaces, mod LP_STREAMS */
};

struct lp_region {
	uintptr_t start, end; /* page aligned, end exclusive */
	int prot;
	uint8_t kind;         /* enum lp_region_kind */
	bool shared;          /* RK_FILE: write-back to the file */
	struct lp_file *file; /* RK_FILE */
	uint64_t off;         /* RK_FILE: file offset of start */
	struct lp_initializer init; /* RK_LAZY */
	atomic_uint refs;
	/* Taken out of the table (unmapped, moved, split, replaced): set
	 * under map_lock (write) before any of its pages is torn down.  A
	 * handler that still holds r after letting its page go must not
	 * claim more pages by it (ahead_claim): another region may be
	 * mapped at the same addresses by then. */
	atomic_bool retired;
	/* sequential-fault detectors (racy by design): for swap readahead,
	 * and for first touches of anonymous pages (zero fill-around) */
	struct lp_streams ra, za;
};

struct lp_region *region_new(uintptr_t start, uintptr_t end, int prot,
			     enum lp_region_kind kind);
static inline void region_get(struct lp_region *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}
void region_put(struct lp_region *r);
/* A copy of r restricted to [start, end), sharing its file. */
struct lp_region *region_clone(const struct lp_region *r, uintptr_t start,
			       uintptr_t end);

/* A file of our own descriptor fd (closed with the last reference; taken
 * even on failure), size bytes long when opened.  NULL: out of memory. */
struct lp_file *file_new(int fd, uint64_t size);
struct lp_file *file_get(struct lp_file *f);
void file_put(struct lp_file *f);

/* File offset of page vpn of region r. */
static inline uint64_t region_file_off(const struct lp_region *r, uint64_t vpn)
{
	return r->off + ((vpn << LP_PAGE_SHIFT) - r->start);
}

/* The region table of a vm: sorted, non-overlapping. */
struct lp_regions {
	struct lp_region **v;
	size_t n, cap;
};

/* Under map_lock (read): the region containing addr, or NULL. */
struct lp_region *regions_find(const struct lp_regions *t, uintptr_t addr);
/* Under map_lock (write): insert r (takes the caller's reference). */
int regions_insert(struct lp_regions *t, struct lp_region *r);
/*
 * Under map_lock (write): remove [start, end) from the table, splitting
 * regions at the edges.  Every region removed or cut is returned in
 * (*gone, *ngone), each with the reference the table held, restricted to
 * the removed part (for write-back).  -EINVAL when part of the range is not
 * covered; the table is then unchanged.
 */
int regions_remove(struct lp_regions *t, uintptr_t start, uintptr_t end,
		   struct lp_region ***gone, size_t *ngone);
/* Under map_lock (write): as regions_remove(), but [start, end) may hold
 * gaps: whatever regions cover of it is removed (none: *ngone = 0). */
int regions_take(struct lp_regions *t, uintptr_t start, uintptr_t end,
		 struct lp_region ***gone, size_t *ngone);
/* Whether [start, end) is fully covered by regions. */
bool regions_cover(const struct lp_regions *t, uintptr_t start, uintptr_t end);
void regions_fini(struct lp_regions *t);

#endif /* LP_REGION_H */
