/* SPDX-License-Identifier: MIT */
/*
 * The program's own memory calls, served by the runtime (Pintos' mmap and
 * munmap, plus what real programs need besides: mremap, MADV_DONTNEED and
 * brk).  The program host (host.c) intercepts these system calls and calls
 * here; every function has the kernel call's semantics on the managed part
 * of the range and leaves the rest to the kernel, in the same address
 * space.  Results are the kernel's: an address, 0, or -errno.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mmap.h"
#include "prim.h"

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
	struct lp_region **gone;
	size_t n;

	pthread_rwlock_wrlock(&vm->map_lock);
	int rc = regions_take(&vm->regions, addr, addr + len, &gone, &n);
	pthread_rwlock_unlock(&vm->map_lock);
	if (rc || !n)
		return rc;
	rc = vm_teardown_range(vm, gone, n);
	free(gone);
	return rc;
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

int vm_discard(struct lp_vm *vm, uintptr_t addr, size_t len, bool zap)
{
	len = round_len(len);
	if (!aligned(addr) || addr + len < addr)
		return -EINVAL;
	/* The pages come back as their region makes them: zero, or the file
	 * bytes for a private file mapping — what MADV_DONTNEED gives. */
	vm_destroy_pages(vm, addr, addr + len);
	if (zap && len && madvise((void *)addr, len, MADV_DONTNEED) < 0)
		return -errno;
	return 0;
}

/* Move the page structs of [from, from+len) to [to, to+len) (mremap).
 * The vm is frozen: no page is owned. */
static void rekey(struct lp_vm *vm, uintptr_t from, uintptr_t to, size_t len)
{
	uint64_t *vpns;
	size_t n;

	if (spt_collect(&vm->spt, from >> LP_PAGE_SHIFT,
			(from + len) >> LP_PAGE_SHIFT, &vpns, &n))
		return; /* out of memory: those pages refill from their region */
	int64_t delta = ((int64_t)to - (int64_t)from) >> LP_PAGE_SHIFT;
	for (size_t i = 0; i < n; i++) {
		struct spt_stripe *s = spt_lock(&vm->spt, vpns[i]);
		struct lp_page *pg = spt_find(&vm->spt, vpns[i]);
		struct lp_page old;
		if (!pg) {
			spt_unlock(s);
			continue;
		}
		old = *pg;
		spt_remove(&vm->spt, pg);
		spt_unlock(s);

		uint64_t nvpn = (uint64_t)((int64_t)old.vpn + delta);
		s = spt_lock(&vm->spt, nvpn);
		struct lp_page *np = spt_find(&vm->spt, nvpn);
		if (!np)
			np = spt_insert(&vm->spt, nvpn);
		if (np) {
			np->ops = old.ops;
			np->state = old.state;
			np->backing = old.backing;
			np->flags = old.flags & (uint16_t)~PGF_WAITERS;
			np->frame = old.frame;
			np->slot = old.slot;
			frame_set_page(vm, old.frame, np);
		} else {
			/* No memory for the struct: give the page up. */
			if (old.state == PG_RESIDENT || old.state == PG_PARKED)
				frame_release(vm, old.frame);
			if (old.slot != LP_NO_SLOT)
				swap_free(vm->swap, old.slot);
			vm_error(vm, -ENOMEM);
		}
		spt_unlock(s);
	}
	free(vpns);
}

long vm_mremap(struct lp_vm *vm, uintptr_t old, size_t oldlen, size_t newlen,
	       int flags, uintptr_t want)
{
	oldlen = round_len(oldlen);
	newlen = round_len(newlen);
	if (!aligned(old) || !newlen ||
	    (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)))
		return -EINVAL;

	pthread_rwlock_rdlock(&vm->map_lock);
	struct lp_region *r = regions_find(&vm->regions, old);
	if (r)
		region_get(r);
	bool inside = r && old + oldlen <= r->end;
	pthread_rwlock_unlock(&vm->map_lock);
	if (!r && !vm_overlaps(vm, old, oldlen ? oldlen : LP_PG)) {
		void *p = mremap((void *)old, oldlen, newlen, flags, (void *)want);
		return p == MAP_FAILED ? -errno : (long)(uintptr_t)p;
	}
	if (!inside || !oldlen) {
		region_put(r);
		return -EFAULT; /* one mapping only, as the kernel wants */
	}
	if (flags & MREMAP_DONTUNMAP) {
		region_put(r);
		return -EINVAL; /* not supported on managed memory */
	}
	long rc;
	if (!(flags & MREMAP_FIXED) && newlen <= oldlen) {
		rc = newlen < oldlen ? vm_munmap(vm, old + newlen, oldlen - newlen) : 0;
		region_put(r);
		return rc ? rc : (long)old;
	}
	if (flags & MREMAP_FIXED) {
		if (!aligned(want)) {
			region_put(r);
			return -EINVAL;
		}
		(void)take_out(vm, want, newlen);
	}

	/* The kernel grows the mapping in place or moves it with its pages
	 * (keeping the protection the program gave it); we move our table with
	 * it, the vm frozen so that no page is in flight. */
	vm_freeze(vm);
	void *p = mremap((void *)old, oldlen, newlen, flags, (void *)want);
	if (p == MAP_FAILED) {
		rc = -errno;
		vm_thaw(vm);
		region_put(r);
		return rc;
	}
	uintptr_t to = (uintptr_t)p;
	size_t kept = newlen < oldlen ? newlen : oldlen;
	if (to == old) {
		/* Grown in place: the kernel extended the mapping with its
		 * protection and registration; the table gets the new part. */
		struct lp_region *ext = region_clone(r, r->start, r->end);
		(void)prim_uffd_register(vm->uffd, old + oldlen, newlen - oldlen,
					 UFFDIO_REGISTER_MODE_MISSING |
						 UFFDIO_REGISTER_MODE_WP);
		if (ext) {
			ext->off = r->off + (old + oldlen - r->start);
			ext->start = old + oldlen;
			ext->end = old + newlen;
			pthread_rwlock_wrlock(&vm->map_lock);
			if (regions_insert(&vm->regions, ext)) {
				region_put(ext);
				ext = NULL;
			}
			pthread_rwlock_unlock(&vm->map_lock);
		}
		if (!ext)
			vm_error(vm, -ENOMEM);
		vm_thaw(vm);
		region_put(r);
		return (long)old;
	}
	/* The new mapping lost its registration and its write-protect bits
	 * (no EVENT_REMAP): register it again and protect every page, so
	 * that clean pages stay clean (dirty ones fault once, harmlessly). */
	(void)prim_uffd_register(vm->uffd, to, newlen,
				 UFFDIO_REGISTER_MODE_MISSING |
					 UFFDIO_REGISTER_MODE_WP);
	(void)prim_uffd_wp(vm->uffd, to, kept, true);

	struct lp_region **gone = NULL;
	size_t ngone = 0;
	struct lp_region *moved = region_clone(r, r->start, r->end);
	pthread_rwlock_wrlock(&vm->map_lock);
	rc = regions_take(&vm->regions, old, old + oldlen, &gone, &ngone);
	if (moved) {
		moved->off = r->off + (old - r->start);
		moved->start = to;
		moved->end = to + newlen;
		if (regions_insert(&vm->regions, moved)) {
			region_put(moved);
			moved = NULL;
		}
	}
	pthread_rwlock_unlock(&vm->map_lock);
	if (!moved)
		vm_error(vm, -ENOMEM);
	if (kept < oldlen)
		vm_destroy_pages(vm, old + kept, old + oldlen);
	if (vm->vf)
		verify_move(vm, old, to, kept); /* before rekey forgets them */
	rekey(vm, old, to, kept);
	vm_thaw(vm);
	for (size_t i = 0; i < ngone; i++)
		region_put(gone[i]);
	free(gone);
	region_put(r);
	return (long)to;
}

int vm_populate(struct lp_vm *vm, struct lp_handler *h, uintptr_t addr,
		size_t len)
{
	len = round_len(len);
	for (uintptr_t a = addr; a < addr + len; a += LP_PG) {
		pthread_rwlock_rdlock(&vm->map_lock);
		struct lp_region *r = regions_find(&vm->regions, a);
		bool sparse = r && r->kind == RK_ANON;
		pthread_rwlock_unlock(&vm->map_lock);
		if (!r)
			continue;
		uint64_t vpn = a >> LP_PAGE_SHIFT;
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		bool want = pg ? pg->state != PG_RESIDENT : !sparse;
		spt_unlock(s);
		/* Untouched anonymous pages are zero either way. */
		if (want)
			vm_fault_in(h, a);
	}
	return 0;
}
