/* SPDX-License-Identifier: MIT */
/*
 * The program's own memory calls, served by the runtime (Pintos' mmap and
 * munmap, plus what real programs need besides: mremap and MADV_DONTNEED;
 * brk is the kernel's, or answered by the host).  The program host
 * (loader/) intercepts these system calls and calls here; every function
 * has the kernel call's semantics on the managed part of the range and
 * leaves the rest to the kernel, in the same address space.  Results are
 * the kernel's: an address, 0, or -errno.  Built on vm.c (regions, pages,
 * freezing the vm while an mremap moves pages).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mmap.h"
#include "verify.h"
#include "prim.h"
#include "vm.h"
#include "evict.h"
#include "fault.h"
#include "pagelife.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static bool aligned(uintptr_t a)
{
	return (a & (LP_PG - 1)) == 0;
}

static size_t round_len(size_t len)
{
	return len > SIZE_MAX - LP_PG ? 0 : (len + LP_PG - 1) & ~(LP_PG - 1);
}

bool vm_overlaps(struct lp_vm *vm, uintptr_t addr, size_t len)
{
	bool any = false;

	pthread_rwlock_rdlock(&vm->map_lock);
	const struct lp_regions *t = &vm->regions;
	for (size_t i = 0; i < t->n && !any; i++)
		any = t->v[i]->start < addr + len && t->v[i]->end > addr;
	pthread_rwlock_unlock(&vm->map_lock);
	return any;
}

/* Take the managed part of [addr, addr+len) out: pages destroyed, range
 * unmapped (the caller maps something else there, or nothing). */
static int take_out(struct lp_vm *vm, uintptr_t addr, size_t len)
{
	return vm_unmap(vm, addr, addr + len, true);
}

long vm_mmap(struct lp_vm *vm, uintptr_t addr, size_t len, int prot, int flags,
	     struct lp_file *file, uint64_t off, const struct lp_initializer *init)
{
	enum lp_region_kind kind = file ? RK_FILE : init ? RK_LAZY : RK_ANON;
	int keep = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_32BIT | MAP_STACK);
	void *p;

	len = round_len(len);
	if (!len || ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && !aligned(addr)) ||
	    !aligned((uintptr_t)off)) {
		file_put(file);
		return -EINVAL;
	}
	/* MAP_FIXED replaces what is there: managed pages go first. */
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE) &&
	    vm_overlaps(vm, addr, len)) {
		int rc = take_out(vm, addr, len);
		if (rc) {
			file_put(file);
			return rc;
		}
	}
	int rc = vm_map_region(vm, addr, keep, len, prot, kind, file, off, false,
			       init, &p);
	return rc ? rc : (long)(uintptr_t)p;
}

int vm_munmap(struct lp_vm *vm, uintptr_t addr, size_t len)
{
	len = round_len(len);
	if (!aligned(addr) || !len || addr + len < addr)
		return -EINVAL;
	int rc = take_out(vm, addr, len);
	if (munmap((void *)addr, len) < 0 && !rc)
		rc = -errno;
	return rc;
}

int vm_discard(struct lp_vm *vm, uintptr_t addr, size_t len, int advice)
{
	len = round_len(len);
	if (!aligned(addr) || addr + len < addr)
		return -EINVAL;
	/* The pages come back as their region makes them: zero, or the file
	 * bytes for a private file mapping — what MADV_DONTNEED gives. */
	vm_destroy_pages(vm, addr, addr + len);
	if (advice && len && madvise((void *)addr, len, advice) < 0)
		return -errno;
	return 0;
}

void vm_wipe_on_fork(struct lp_vm *vm)
{
	atomic_store(&vm->wipe_seen, true);
}

/*
 * Move the page structs vpns[0..n) (collected in [from, from+len)) to
 * [to, to+len) (mremap).  Each struct moves itself (spt_move) rather than
 * being copied into a new one: a swap write in flight completes on the
 * struct it was made for (evict.c, write_done), and must find it — with its
 * frame, its PGF_IO and its waiters — at the page's new address.  Copying
 * the fields (as this once did) left the completion on the old, recycled
 * struct and PGF_IO on the new one for ever: pages came back as another
 * page's data or zeros, and lp_vm_destroy() waited for that write.  The
 * frame table points at the same structs, so it needs no change.
 * The vm is frozen: no page is owned, no write completes meanwhile.
 */
static void rekey(struct lp_vm *vm, const uint64_t *vpns, size_t n,
		  uintptr_t from, uintptr_t to)
{
	int64_t delta = ((int64_t)to - (int64_t)from) >> LP_PAGE_SHIFT;

	for (size_t i = 0; i < n; i++) {
		uint64_t nvpn = (uint64_t)((int64_t)vpns[i] + delta);
		struct spt_stripe *s = spt_lock(&vm->spt, vpns[i]);
		struct lp_page *pg = spt_find(&vm->spt, vpns[i]);
		spt_unlock(s);
		if (!pg)
			continue;
		/* A struct left at the destination (it cannot be reached:
		 * the range had no region) goes first, unless busy. */
		s = spt_lock(&vm->spt, nvpn);
		struct lp_page *stale = spt_find(&vm->spt, nvpn);
		if (stale && !page_owned(stale) && !(stale->flags & PGF_IO)) {
			if ((stale->state == PG_RESIDENT || stale->state == PG_PARKED) &&
			    !(stale->flags & PGF_SHARED_IN))
				frame_release(&vm->fr, stale->frame);
			page_remove(vm, stale);
		}
		spt_unlock(s);
		if (spt_move(&vm->spt, pg, nvpn)) {
			vm_error(vm, -EEXIST); /* cannot happen; keep it */
			continue;
		}
		s = spt_lock(&vm->spt, nvpn);
		if (pg->backing == BK_SLOT && pg->slot != LP_NO_SLOT)
			swap_set_owner(vm->swap, pg->slot, nvpn);
		/* A frameless page (beyond the budget) is adopted by number. */
		if (pg->state == PG_RESIDENT && pg->frame == LP_NO_FRAME && vm->fr.n)
			frame_overflow_note(&vm->fr, nvpn);
		bool poisoned = pg->flags & PGF_POISONED;
		pg->flags &= (uint16_t)~PGF_POISONED;
		spt_unlock(s);
		if (poisoned) {
			/* Its SIGBUS marker moved with the page table; the
			 * handler would clear it at the old address: clear
			 * it here, the next touch reads the page again. */
			struct iovec iov = { (void *)(uintptr_t)(nvpn << LP_PAGE_SHIFT), LP_PG };
			(void)prim_zap(vm->pidfd, &iov, 1);
		}
	}
}

/* One mapping of the kernel's (a VMA), clipped to a range. */
struct span {
	uintptr_t s, e;
};

/* The kernel's mappings in [lo, hi), clipped, in address order: the
 * runtime shares the program's address space, so /proc/self/maps is the
 * program's.  0, or -errno. */
static int kernel_spans(uintptr_t lo, uintptr_t hi, struct span **out, size_t *n)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL;
	size_t cap = 0, k = 0;
	struct span *v = NULL;
	int rc = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) != 2 || e <= lo)
			continue;
		if (s >= hi)
			break;
		struct span *nv = realloc(v, (k + 1) * sizeof(*nv));
		if (!nv) {
			rc = -ENOMEM;
			break;
		}
		v = nv;
		v[k].s = s > lo ? s : lo;
		v[k++].e = e < hi ? e : hi;
	}
	free(line);
	fclose(f);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = k;
	return 0;
}

/*
 * What the kernel checks of a MREMAP_FIXED move's source before it
 * touches the destination: the source starts in a mapping; a range of
 * several mappings (Linux 6.17 moves them one by one, gaps left as they
 * are, what the destination holds there kept) is moved only without a
 * resize.  *spans: the mappings of the range, or NULL when one mapping
 * covers it all.  0, or -errno (nothing done).
 */
static int fixed_source(uintptr_t old, size_t oldlen, size_t newlen,
			struct span **spans, size_t *n)
{
	*spans = NULL;
	*n = 0;
	if (!oldlen)
		return 0; /* a duplicate of a shared mapping: the kernel's */
	struct span *v = NULL;
	size_t k = 0;
	if (kernel_spans(old, old + oldlen, &v, &k))
		return 0; /* not known: the kernel decides */
	int rc = 0;
	if (!k || v[0].s != old)
		rc = -EFAULT;
	else if ((k > 1 || v[0].e != old + oldlen) && newlen != oldlen)
		rc = -EFAULT;
	if (rc || (k == 1 && v[0].e == old + oldlen)) {
		free(v);
		return rc;
	}
	*spans = v;
	*n = k;
	return 0;
}

/* Take the managed pages out where the spans of [old, ...) land at want
 * (all of [want, want+len) without spans). */
static int take_out_landing(struct lp_vm *vm, uintptr_t old, uintptr_t want,
			    size_t len, const struct span *spans, size_t n)
{
	const struct span whole = { old, old + len };

	if (!spans) {
		spans = &whole;
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		uintptr_t at = want + (spans[i].s - old);
		size_t l = spans[i].e - spans[i].s;
		int rc = vm_overlaps(vm, at, l) ? take_out(vm, at, l) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

/* An unmanaged mapping moved onto [want, want+len) (MREMAP_FIXED): the
 * managed pages there go first, as the kernel unmaps them.  Checks what
 * the kernel would refuse before it touches anything. */
static long mremap_unmanaged(struct lp_vm *vm, uintptr_t old, size_t oldlen,
			     size_t newlen, int flags, uintptr_t want)
{
	size_t len = round_len(oldlen);

	if ((flags & MREMAP_FIXED) && aligned(old) && aligned(want) &&
	    want + newlen > want && old + len >= old && (flags & MREMAP_MAYMOVE) &&
	    vm_overlaps(vm, want, newlen) &&
	    (want + newlen <= old || want >= old + len)) {
		struct span *spans;
		size_t n;
		int rc = fixed_source(old, len, newlen, &spans, &n);
		if (!rc)
			rc = take_out_landing(vm, old, want, newlen, spans, n);
		free(spans);
		if (rc)
			return rc;
	}
	void *p = mremap((void *)old, oldlen, newlen, flags, (void *)want);
	return p == MAP_FAILED ? -errno : (long)(uintptr_t)p;
}

/* A move or growth of managed memory, prepared before the kernel acts so
 * that nothing fails after it. */
struct remap {
	uintptr_t old;
	size_t oldlen, newlen;
	struct span *spans;        /* a MREMAP_FIXED move of several mappings:
				    * each (fixed_source), else NULL */
	size_t nspans;
	struct lp_region *grown;   /* the last region grown, if in place */
	struct lp_region **pieces; /* the regions of the range, cloned to be
				    * moved (the last one takes the growth) */
	size_t npieces;
	uint64_t *vpns;            /* the pages of the range (spt_collect) */
	size_t nvpns;
};

/* The checks of an mremap of managed memory [rp->old, +rp->oldlen), and
 * what the kernel does first: a shrink in place, the managed pages at a
 * MREMAP_FIXED destination taken out, the tail of a shrinking move
 * unmapped (rp->oldlen becomes newlen).  0: the range is to be moved or
 * grown; else the call's result (-errno, or the address of a shrink). */
static long remap_trim(struct lp_vm *vm, struct remap *rp, int flags, uintptr_t want)
{
	uintptr_t old = rp->old;
	size_t len = rp->oldlen, newlen = rp->newlen;

	if (!len)
		return -EINVAL; /* a duplicate needs a shared mapping */
	if (old + len < old)
		return -EFAULT;
	if (flags & MREMAP_DONTUNMAP)
		return -EINVAL; /* not supported on managed memory */
	if (!(flags & MREMAP_FIXED) && newlen <= len) {
		int rc = newlen < len ? vm_munmap(vm, old + newlen, len - newlen) : 0;
		return rc ? rc : (long)old;
	}
	if (flags & MREMAP_FIXED) {
		if (!aligned(want) || want + newlen < want ||
		    (want < old + len && old < want + newlen))
			return -EINVAL;
		/* A source the kernel refuses leaves the destination as it
		 * is: checked before anything there goes. */
		int rc = fixed_source(old, len, newlen, &rp->spans, &rp->nspans);
		if (!rc)
			rc = take_out_landing(vm, old, want, newlen, rp->spans,
					      rp->nspans);
		if (rc)
			return rc;
	} else if (!vm_covered(vm, old, old + len)) {
		return -EFAULT; /* a growth of more than one mapping */
	}
	/* Shrinking while moving: the kernel unmaps the tail first. */
	if (newlen < len) {
		int rc = vm_munmap(vm, old + newlen, len - newlen);
		if (rc)
			return rc;
		rp->oldlen = newlen;
	}
	return 0;
}

/* The regions the range becomes: moved (pieces) or grown in place. */
static int remap_plan(struct lp_vm *vm, struct remap *rp)
{
	uintptr_t old = rp->old, end = rp->old + rp->oldlen;
	int rc = 0;

	pthread_rwlock_rdlock(&vm->map_lock);
	const struct lp_regions *t = &vm->regions;
	struct lp_region *last = regions_find(t, end - 1);
	if (rp->newlen > rp->oldlen && last && last->end == end &&
	    !(rp->grown = region_clone(last, last->start, old + rp->newlen)))
		rc = -ENOMEM;
	for (size_t i = 0; i < t->n && !rc; i++) {
		struct lp_region *r = t->v[i];
		if (r->end <= old || r->start >= end)
			continue;
		struct lp_region **np =
			realloc(rp->pieces, (rp->npieces + 1) * sizeof(*np));
		if (!np) {
			rc = -ENOMEM;
			break;
		}
		rp->pieces = np;
		uintptr_t s = r->start > old ? r->start : old;
		uintptr_t e = r->end < end ? r->end : end;
		if (e == end)
			e = old + rp->newlen; /* the last one takes the growth */
		if (!(rp->pieces[rp->npieces] = region_clone(r, s, e)))
			rc = -ENOMEM;
		else
			rp->npieces++;
	}
	pthread_rwlock_unlock(&vm->map_lock);
	return rc;
}

/* The kernel grew the mapping in place (the vm frozen; thawed here): it
 * extended it with its protection and registration; its region grows with
 * it, so that the next mremap finds one mapping, as the kernel does. */
static long remap_grown(struct lp_vm *vm, struct remap *rp)
{
	uintptr_t old = rp->old;
	struct lp_region **gone = NULL;
	size_t ngone = 0;

	(void)prim_uffd_register(vm->uffd, old + rp->oldlen,
				 rp->newlen - rp->oldlen,
				 UFFDIO_REGISTER_MODE_MISSING |
					 UFFDIO_REGISTER_MODE_WP);
	pthread_rwlock_wrlock(&vm->map_lock);
	if (!rp->grown || regions_take(&vm->regions, rp->grown->start,
				       old + rp->oldlen, &gone, &ngone) ||
	    regions_insert(&vm->regions, rp->grown)) {
		vm_error(vm, -ENOMEM);
	} else {
		rp->grown = NULL; /* the table's now */
	}
	pthread_rwlock_unlock(&vm->map_lock);
	vm_thaw(vm);
	for (size_t i = 0; i < ngone; i++)
		region_put(gone[i]);
	free(gone);
	return (long)old;
}

/* The kernel moved the mapping to `to` with its pages (the vm frozen;
 * thawed here): the regions and the page structs move with it. */
static long remap_moved(struct lp_vm *vm, struct remap *rp, uintptr_t to)
{
	uintptr_t old = rp->old;
	struct lp_region **gone = NULL;
	size_t ngone = 0;

	/* The new mappings kept their registration and their pages'
	 * write-protect bits (EVENT_REMAP), and so did a neighbour the
	 * kernel merged them with.  (Without it the kernel dropped the
	 * registration of the merged whole: the neighbour's pages that were
	 * out read zeros when another thread touched them before we could
	 * register them again: tests/progs/remap.c, neighbour.) */
	pthread_rwlock_wrlock(&vm->map_lock);
	if (regions_take(&vm->regions, old, old + rp->oldlen, &gone, &ngone))
		vm_error(vm, -ENOMEM);
	for (size_t i = 0; i < rp->npieces; i++) {
		struct lp_region *r = rp->pieces[i];
		r->start = r->start - old + to;
		r->end = r->end - old + to;
		if (regions_insert(&vm->regions, r)) {
			region_put(r);
			vm_error(vm, -ENOMEM);
		}
	}
	rp->npieces = 0;
	pthread_rwlock_unlock(&vm->map_lock);
	rekey(vm, rp->vpns, rp->nvpns, old, to);
	if (vm->vf)
		verify_move(vm, old, to, rp->oldlen); /* after rekey: it drops
						     * stale pages at to */
	vm_thaw(vm);
	/* A thread blocked on a page of the old range (its owner would have
	 * woken it there) faults again: the range is gone, as natively. */
	(void)prim_uffd_wake(vm->uffd, old, rp->oldlen);
	for (size_t i = 0; i < ngone; i++)
		region_put(gone[i]);
	free(gone);
	return (long)to;
}

/* What a struct remap holds, let go (the regions the table did not take). */
static void remap_release(struct remap *rp)
{
	for (size_t i = 0; i < rp->npieces; i++)
		region_put(rp->pieces[i]);
	free(rp->pieces);
	region_put(rp->grown);
	free(rp->vpns);
	free(rp->spans);
}

/* The kernel's move: one call, or, for a range of several mappings, one
 * call per mapping (a registered range of several is refused by the
 * kernel, which moves them only when none is registered); a failure
 * midway moves back what had moved. */
static void *kernel_move(struct lp_vm *vm, const struct remap *rp, int flags,
			 uintptr_t want)
{
	if (!rp->spans)
		return mremap((void *)rp->old, rp->oldlen, rp->newlen, flags,
			      (void *)want);
	for (size_t i = 0; i < rp->nspans; i++) {
		const struct span *sp = &rp->spans[i];
		size_t l = sp->e - sp->s;
		void *to = (void *)(want + (sp->s - rp->old));
		if (mremap((void *)sp->s, l, l, MREMAP_MAYMOVE | MREMAP_FIXED, to) !=
		    MAP_FAILED)
			continue;
		int err = errno;
		while (i--) {
			sp = &rp->spans[i];
			l = sp->e - sp->s;
			to = (void *)(want + (sp->s - rp->old));
			if (mremap(to, l, l, MREMAP_MAYMOVE | MREMAP_FIXED,
				   (void *)sp->s) == MAP_FAILED)
				vm_error(vm, -errno);
		}
		errno = err;
		return MAP_FAILED;
	}
	return (void *)want;
}

/* munlock what of [lo, hi) is ours: managed regions and the areas the
 * evictor moves pages between (UFFDIO_MOVE wants both ends locked or
 * neither) or that must stay empty (the probe page). */
static void unlock_ours(struct lp_vm *vm, uintptr_t lo, uintptr_t hi)
{
	pthread_rwlock_rdlock(&vm->map_lock);
	for (size_t i = 0; i < vm->regions.n; i++) {
		const struct lp_region *r = vm->regions.v[i];
		uintptr_t s = r->start > lo ? r->start : lo, e = r->end < hi ? r->end : hi;
		if (s < e)
			(void)prim_munlock((void *)s, e - s);
	}
	pthread_rwlock_unlock(&vm->map_lock);
	if (lo || hi != UINTPTR_MAX)
		return;
	if (vm->ev.runs)
		(void)prim_munlock((void *)vm->ev.runs, vm->ev.runs_len);
	if (vm->fr.kva)
		(void)prim_munlock((void *)vm->fr.kva, (size_t)vm->fr.n << LP_PAGE_SHIFT);
	if (vm->zeros)
		(void)prim_munlock(vm->zeros, (size_t)LP_ZA_MAX << LP_PAGE_SHIFT);
	if (vm->probe)
		(void)prim_munlock((void *)vm->probe, LP_PG);
}

long vm_mlock(struct lp_vm *vm, uintptr_t addr, size_t len, unsigned flags)
{
	int rc = prim_mlock2(addr, len, flags | MLOCK_ONFAULT);
	if (rc)
		return rc;
	uintptr_t s = addr & ~(LP_PG - 1), e = addr + len;
	unlock_ours(vm, s, e < s ? UINTPTR_MAX - LP_PG + 1 : e);
	return 0;
}

long vm_mlockall(struct lp_vm *vm, int flags)
{
	/* (Bad flags stay bad with MCL_ONFAULT added: the kernel's EINVAL.) */
	int rc = prim_mlockall(flags | MCL_ONFAULT);
	if (rc)
		return rc;
	if (flags & MCL_FUTURE) /* (until munlockall, which we do not see) */
		atomic_store(&vm->lock_future, true);
	unlock_ours(vm, 0, UINTPTR_MAX);
	return 0;
}

long vm_mremap(struct lp_vm *vm, uintptr_t old, size_t oldlen, size_t newlen,
	       int flags, uintptr_t want)
{
	size_t rawold = oldlen;

	oldlen = round_len(oldlen);
	newlen = round_len(newlen);
	if (!aligned(old) || !newlen ||
	    (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) ||
	    ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && !(flags & MREMAP_MAYMOVE)))
		return -EINVAL;
	if (!vm_overlaps(vm, old, oldlen ? oldlen : LP_PG))
		return mremap_unmanaged(vm, old, rawold, newlen, flags, want);

	/*
	 * Everything that could fail is prepared before the kernel acts:
	 * the regions the range becomes, moved or grown in place, and the
	 * pages to move.  The kernel grows the mapping in place or moves it
	 * with its pages (keeping the protection the program gave it); we
	 * move our table with it, the vm frozen so that no page is owned.
	 * Writes of pages in the range may be in flight: they complete on the
	 * same page structs, moved (rekey).
	 */
	struct remap rp = { .old = old, .oldlen = oldlen, .newlen = newlen };
	long rc = remap_trim(vm, &rp, flags, want);
	if (rc) {
		free(rp.spans);
		return rc;
	}
	rc = remap_plan(vm, &rp);
	vm_freeze(vm);
	if (!rc)
		rc = spt_collect(&vm->spt, old >> LP_PAGE_SHIFT,
				 (old + rp.oldlen) >> LP_PAGE_SHIFT, &rp.vpns,
				 &rp.nvpns);
	void *p = MAP_FAILED;
	if (!rc) {
		/* (Each move waits until a handler reads its event: they read
		 * while we are frozen, deferring faults.) */
		atomic_store(&vm->remaps_own, true);
		p = kernel_move(vm, &rp, flags, want);
		if (p == MAP_FAILED)
			rc = -errno;
	}
	if (rc)
		vm_thaw(vm);
	else if ((uintptr_t)p == old)
		rc = remap_grown(vm, &rp);
	else
		rc = remap_moved(vm, &rp, (uintptr_t)p);
	remap_release(&rp);
	return rc;
}

void vm_child_forget(struct lp_vm *vm, uintptr_t start, size_t len)
{
	uintptr_t end = start + round_len(len);
	struct lp_region **gone = NULL;
	size_t n = 0;

	if (!aligned(start) || end < start)
		return;
	vm_destroy_pages(vm, start, end);
	pthread_rwlock_wrlock(&vm->map_lock);
	int rc = regions_take(&vm->regions, start, end, &gone, &n);
	pthread_rwlock_unlock(&vm->map_lock);
	for (size_t i = 0; !rc && i < n; i++)
		region_put(gone[i]);
	free(gone);
}

/* Make every page we know in [addr, addr + len) present and keep it so
 * (vm_pin(): an eviction under way ends first, and none begins after);
 * untouched anonymous pages are zero either way.  h is the host's handler
 * context, made for the parent vm: it serves the faults of this vm (a
 * child's) meanwhile.  The pages come in beyond the budget: both callers
 * hand them to the kernel next (and in a move's prep the child's thread
 * waits for us, unable to stop for the evictor's drops). */
static void pin_range(struct lp_vm *vm, struct lp_handler *h, uintptr_t addr,
		      size_t len)
{
	struct lp_vm *hv = h->vm;
	h->vm = vm;
	frames_beyond(true);
	for (uintptr_t a = addr; a < addr + len; a += LP_PG) {
		pthread_rwlock_rdlock(&vm->map_lock);
		struct lp_region *r = regions_find(&vm->regions, a);
		bool sparse = r && r->kind == RK_ANON;
		pthread_rwlock_unlock(&vm->map_lock);
		if (!r)
			continue;
		uint64_t vpn = a >> LP_PAGE_SHIFT;
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		bool known = spt_find(&vm->spt, vpn) != NULL;
		spt_unlock(s);
		if ((known || !sparse) && vm_pin(h, a) == -EAGAIN)
			vm_error(vm, -EAGAIN);
	}
	frames_beyond(false);
	h->vm = hv;
}

void vm_child_look_soon(struct lp_vm *c)
{
	atomic_store(&c->note_ns, prim_now_ns());
	atomic_fetch_add(&c->maps_noted, 1);
	evict_poke(c);
}

void vm_child_moved(struct lp_vm *vm, struct lp_handler *h, uintptr_t from, size_t left,
		    uintptr_t to, size_t len)
{
	len = round_len(len);
	if (aligned(to) && len && to + len > to && vm_overlaps(vm, to, len)) {
		pin_range(vm, h, to, len);
		vm_child_forget(vm, to, len);
	}
	/* The region the prep left for faults during the move: stale now,
	 * and a mapping made there since would never be taken (forks
	 * refill: 2048 of 2048 pages resident, 1 run in 20 under ASan).
	 * (A move onto itself leaves nothing.) */
	if (!left || !vm_overlaps(vm, from, left) || (from < to + len && to < from + left))
		return;
	vm_child_forget(vm, from, left);
	vm_child_look_soon(vm);
}

void vm_child_move_table(struct lp_vm *vm, const struct lp_remap_note *m, uintptr_t to)
{
	uintptr_t from = m->old;
	size_t oldlen = m->oldlen, newlen = m->newlen;

	/* A MREMAP_FIXED move that shrinks: the kernel unmapped the tail. */
	if (newlen < oldlen) {
		vm_child_forget(vm, from + newlen, oldlen - newlen);
		oldlen = newlen;
	}
	/* Grown in place ahead of the kernel: the region is that long. */
	if (m->grown && newlen > oldlen)
		oldlen = newlen;
	/* The destination is the moved mapping's now: whatever our table
	 * still had there is stale (a region a move we could not hold for
	 * left behind), and would keep the moved regions out. */
	if (vm_overlaps(vm, to, newlen) && !(to < from + oldlen && from < to + newlen))
		vm_child_forget(vm, to, newlen);
	struct remap rp = { .old = from, .oldlen = oldlen, .newlen = newlen };
	int rc = remap_plan(vm, &rp);
	vm_freeze(vm);
	if (!rc)
		rc = spt_collect(&vm->spt, from >> LP_PAGE_SHIFT,
				 (from + oldlen) >> LP_PAGE_SHIFT, &rp.vpns, &rp.nvpns);
	if (rc) {
		/* (No memory: the pages stay at the old place, which is
		 * unmapped; their faults never come.  Said in last_error.) */
		vm_thaw(vm);
		vm_error(vm, rc);
	} else {
		(void)remap_moved(vm, &rp, to);
	}
	remap_release(&rp);
}

int vm_child_mremap_prep(struct lp_vm *vm, struct lp_handler *h, uintptr_t old,
			 size_t oldlen, size_t newlen, int flags, bool table)
{
	oldlen = round_len(oldlen);
	newlen = round_len(newlen);
	if (!aligned(old) || !oldlen || old + oldlen < old)
		return -EINVAL;
	if (!(flags & MREMAP_MAYMOVE) || (flags & MREMAP_DONTUNMAP))
		table = false;
	if (table) {
		/* The table moves with the mapping at the move's event
		 * (vm_child_move_table()): pages on swap stay there, none
		 * comes in for the move.  From the note on, the evictor
		 * passes the range by; the freeze lets a round that took
		 * pages of it before the note end first (a page it
		 * moved out is parked, one it could not drop is resident:
		 * either way where the move finds it). */
		vm_child_move_note(vm, old, oldlen, newlen, true);
		vm_freeze(vm);
		vm_thaw(vm);
	} else {
		/* A move: the kernel takes what is present; its event
		 * (vm_remap_event()) hands the new mapping to the kernel. */
		/* (Its only thread may wait for us in this call, unable to
		 * stop for the evictor's drops: the pages come in beyond the
		 * budget.) */
		/* Each page held present (vm_pin()), not merely faulted in:
		 * a page the evictor had copied and write-protected is still
		 * mapped, and its drop could come after us, just before the
		 * move: missing there, it read as zero in the kernel's new
		 * mapping (busybox's sort, its array moved by realloc at
		 * --mem 512K, 1 run in 10). */
		pin_range(vm, h, old, oldlen);
		/* Where the kernel moves it, the old range is no longer
		 * ours: its pages must not stay in our table (a forked
		 * child's evictor would take a page of whatever is mapped
		 * there next).  Forgotten now, present: a growth in place or
		 * a failed move keeps them, correct, merely unknown to us
		 * (never evicted).  The region stays: a fault there must
		 * still find one. */
		if (flags & MREMAP_MAYMOVE)
			vm_destroy_pages(vm, old, old + oldlen);
		if ((flags & MREMAP_MAYMOVE) && !(flags & MREMAP_DONTUNMAP))
			vm_child_move_note(vm, old, oldlen, newlen, false);
	}
	if (newlen <= oldlen || (flags & MREMAP_FIXED) || old + newlen < old)
		return 0;
	/* Growing in place keeps the registration: faults on the growth come
	 * to this vm, which must know the range.  Where the kernel moves it
	 * instead, the range is free or holds an unregistered mapping, whose
	 * faults never come here. */
	int rc = 0;
	bool moved_on = false;
	pthread_rwlock_wrlock(&vm->map_lock);
	struct lp_region *last = regions_find(&vm->regions, old + oldlen - 1);
	bool room = true;
	for (size_t i = 0; i < vm->regions.n && room; i++)
		room = vm->regions.v[i]->end <= old + oldlen ||
		       vm->regions.v[i]->start >= old + newlen;
	if (last && last->end == old + oldlen && room) {
		struct lp_region *grown = region_clone(last, last->start, old + newlen);
		struct lp_region **gone = NULL;
		size_t ngone = 0;
		if (!grown || regions_take(&vm->regions, last->start, last->end,
					   &gone, &ngone)) {
			rc = -ENOMEM;
		} else if (regions_insert(&vm->regions, grown)) {
			rc = -ENOMEM;
		} else {
			grown = NULL;
			moved_on = true;
		}
		region_put(grown);
		for (size_t i = 0; i < ngone; i++)
			region_put(gone[i]);
		free(gone);
	}
	pthread_rwlock_unlock(&vm->map_lock);
	if (moved_on)
		vm_child_move_grown(vm, old);
	if (rc)
		vm_error(vm, rc);
	return rc;
}
