/* SPDX-License-Identifier: MIT */
/*
 * fork (Pintos' supplemental_page_table_copy).  With VMF_FORK the
 * userfaultfd asks for UFFD_FEATURE_EVENT_FORK: when the process forks, the
 * kernel copies the address space — registrations included — and hands us a
 * new userfaultfd for the child in a UFFD_EVENT_FORK message.  The fork
 * waits until a handler has read that message.
 *
 * The child must see exactly its parent's memory at the fork:
 *   - pages mapped in the parent are in the child too (copied on write by
 *     the kernel, write-protect bits included): the child vm marks them
 *     RESIDENT with the same flags;
 *   - pages on swap are shared: the child takes a reference on the slot;
 *   - pages never touched stay UNINIT: the child fills them from the same
 *     region initializer (file, zero, loader image);
 *   - pages parked in the parent's kva slots are copied into the child at
 *     once (the kva area is not inherited).
 * For this copy to be exact the pages must hold still while the kernel
 * duplicates the page tables and while we copy our table: the host freezes
 * the vm (vm_freeze, vm.c) before it lets a fork go ahead.  Faults read
 * while frozen are deferred; the evictor waits.
 *
 * A vm that serves forks has vm_fork_event as its fork_event hook: a fault
 * handler (fault.c) that reads UFFD_EVENT_FORK calls it, knowing nothing of
 * this file.  A child vm is allocated, started, stopped and freed as every
 * vm is (vm.h); here are what it copies from its parent, the parent's
 * bookkeeping of its children, and reaping them.
 *
 * A child vm has its own handler thread, and an evictor with its parent's
 * budget and policy when the parent could prepare one (evict.c, "A forked
 * child's pages": the child's own thread drops its pages), drawing on the
 * budget its parent draws on; it adopts the memory the child maps (below),
 * and shares the swap file.  It notices that its process is gone (exit or
 * execve) when filling its probe page — a page registered in the parent and
 * inherited — fails with ESRCH.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "config.h"
#include "evict.h"
#include "fork.h"
#include "mmap.h"
#include "verify.h"
#include "prim.h"
#include "vm.h"

/*
 * A page struct new in the child's table (under its stripe lock): a copy of
 * the parent's pg, born in state `st` (EVICTED or RESIDENT).  The struct is
 * made in that state, as spt_insert() makes one UNINIT: it is no change of
 * state of a living page (page_set_state checks those), the child never
 * had the page in any other.  NULL when out of memory.
 */
static struct lp_page *page_born(struct lp_vm *c, const struct lp_page *pg,
				 enum lp_page_state st)
{
	struct lp_page *cp = spt_insert(&c->spt, pg->vpn, pg->ops);

	if (!cp)
		return NULL;
	cp->state = (uint8_t)st;
	cp->backing = pg->backing;
	cp->flags |= pg->flags & (PGF_WP | PGF_DIRTY | PGF_WASDIRTY | PGF_MAYBE);
	cp->slot = pg->slot;
	cp->sum[0] = pg->sum[0]; /* the child's digests have the same seed */
	cp->sum[1] = pg->sum[1];
	if (cp->slot != LP_NO_SLOT)
		swap_ref(c->swap, cp->slot);
	return cp;
}

/* Copy one page of the parent (stripe locked) into the child's table.
 * Returns the parent's frame when the page is parked and must be copied
 * into the child once the lock is dropped, else LP_NO_FRAME; *err: -ENOMEM
 * when the child's table could not take the page (the child would fill it
 * anew: zeros, or its region's initial content, in place of its own). */
static uint32_t copy_page(struct lp_vm *c, const struct lp_page *pg, int *err)
{
	enum lp_page_state st = (enum lp_page_state)pg->state;

	/* Not frozen (a child vm forking): a page being loaded is not in
	 * the new address space unless the copy beat the fork; its source
	 * is intact either way, so the child loads it again. */
	if (st == PG_LOADING)
		st = pg->ops == &lp_uninit_ops ? PG_UNINIT : PG_EVICTED;
	if (st != PG_EVICTED && st != PG_RESIDENT && st != PG_PARKED)
		return LP_NO_FRAME;

	struct spt_stripe *s = spt_lock(&c->spt, pg->vpn);
	struct lp_page *cp = page_born(c, pg,
				       st == PG_EVICTED ? PG_EVICTED : PG_RESIDENT);
	if (cp && c->vf && cp->state == PG_EVICTED)
		verify_inherit(c, pg->vpn);
	if (cp && cp->state == PG_RESIDENT && c->fr.n) {
		/* The parent's memory still (copied on write): not counted
		 * until the child writes it (it is write-protected below) or
		 * its evictor adopts it into a frame, to evict it. */
		cp->flags |= PGF_SHARED_IN | PGF_WP;
		frame_overflow_note(&c->fr, cp->vpn);
	} else if (cp && cp->state == PG_RESIDENT) {
		uint32_t f;
		(void)frame_get(&c->fr, &f, NULL); /* no budget: counts it */
	}
	spt_unlock(s);
	if (!cp) {
		vm_error(c, -ENOMEM);
		*err = -ENOMEM;
	}
	return cp && st == PG_PARKED ? pg->frame : LP_NO_FRAME;
}

/* The mappings of ours marked MADV_WIPEONFORK ("wf" in the VmFlags of
 * /proc/self/smaps: the kernel's own record, whatever was moved or
 * unmapped since), into *out (n of them); the child gets none of their
 * pages, as natively.  Read only once the program asked for it. */
struct wipe {
	uint64_t lo, hi; /* page numbers */
};

static size_t wipe_ranges(struct lp_vm *p, struct wipe **out)
{
	*out = NULL;
	if (!atomic_load(&p->wipe_seen) || p->parent)
		return 0;
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0, n = 0, room = 0;
	unsigned long s = 0, e = 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			s = a;
			e = b;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) || !strstr(line, " wf"))
			continue;
		if (n == room) {
			room = room ? 2 * room : 8;
			struct wipe *w = realloc(*out, room * sizeof(*w));
			if (!w)
				break;
			*out = w;
		}
		(*out)[n++] = (struct wipe){ s >> LP_PAGE_SHIFT, e >> LP_PAGE_SHIFT };
	}
	free(line);
	fclose(f);
	return n;
}

static bool wiped(const struct wipe *w, size_t n, uint64_t vpn)
{
	for (size_t i = 0; i < n; i++)
		if (vpn >= w[i].lo && vpn < w[i].hi)
			return true;
	return false;
}

static int copy_table(struct lp_vm *p, struct lp_vm *c)
{
	struct parked {
		uint64_t vpn;
		uint32_t f;
		bool clean;
	} *todo = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct wipe *w;
	size_t nw = wipe_ranges(p, &w);

	for (unsigned i = 0; i < SPT_STRIPES; i++) {
		struct spt_stripe *s = &p->spt.stripe[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = i; b < p->spt.nbucket; b += SPT_STRIPES) {
			for (struct lp_page *pg = p->spt.bucket[b]; pg; pg = pg->next) {
				/* (Left out: the child's page is made anew, zero.) */
				if (nw && wiped(w, nw, pg->vpn))
					continue;
				uint32_t f = copy_page(c, pg, &rc);
				if (f == LP_NO_FRAME)
					continue;
				if (n == cap) {
					cap = cap ? 2 * cap : 64;
					void *t = realloc(todo, cap * sizeof(*todo));
					if (!t) {
						rc = -ENOMEM;
						continue;
					}
					todo = t;
				}
				todo[n++] = (struct parked){
					pg->vpn, f, !(pg->flags & PGF_DIRTY) };
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	/* Parked pages live in our kva slots, which the child has not got:
	 * give it a copy now (the parent is frozen: the slots hold still). */
	for (size_t k = 0; k < n; k++) {
		if (p->vf)
			verify_peek(p, todo[k].vpn, (const void *)kva_of(&p->fr, todo[k].f),
				    VF_FORK);
		int e = prim_uffd_copy(c->uffd, (uintptr_t)todo[k].vpn << LP_PAGE_SHIFT,
				       (const void *)kva_of(&p->fr, todo[k].f),
				       LP_PG, todo[k].clean);
		if (e && e != -EEXIST) {
			vm_error(c, e);
			rc = e;
		}
	}
	free(todo);
	free(w);
	return rc;
}

/*
 * ---- Memory a child maps ----
 *
 * A forked child's own mmap calls are made by the kernel (we cannot make
 * a call in another process's address space), so its new anonymous
 * memory is not registered.  The child vm takes it afterwards: the seccomp
 * host tells it of each anonymous private mmap (vm_child_mapped()), and
 * its evictor, at once (again for 20 ms until it is there) and every 250 ms after, reads
 * the child's mappings and adopts each anonymous private writable range
 * that is new: registered, a region of its own, its pages already there
 * resident beyond the budget (adopted into frames and evicted as any).
 * New means outside every mapping the child had when it first mapped
 * memory (old_maps, read while that call waited for us): that excludes
 * our own memory, which the child inherited with the rest of the address
 * space and never touches, and what the kernel keeps (the break).
 */
#define ADOPT_RETRY_NS 20000000ull
#define ADOPT_EVERY_NS 250000000ull

/* The anonymous private ranges of /proc/TID/maps (writable only, when
 * `writable`), or all of its ranges (`all`), into *out. */
static size_t read_maps(pid_t tid, bool all, struct lp_range **out)
{
	char path[48];
	snprintf(path, sizeof path, "/proc/%d/maps", tid);
	FILE *f = fopen(path, "re");
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t lcap = 0;

	*out = NULL;
	if (!f)
		return 0;
	while (getline(&line, &lcap, f) > 0) {
		unsigned long lo, hi, ino;
		char perms[8] = "", name[16] = "";
		if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu %15s", &lo, &hi, perms, &ino,
			   name) < 4)
			continue;
		if (!all && (ino || name[0] || perms[1] != 'w' || perms[3] != 'p'))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct lp_range *v = realloc(*out, cap * sizeof(*v));
			if (!v)
				break;
			*out = v;
		}
		(*out)[n++] = (struct lp_range){ lo, hi };
	}
	free(line);
	fclose(f);
	return n;
}

bool vm_child_range_mapped(pid_t tid, uintptr_t lo, uintptr_t hi)
{
	struct lp_range *v = NULL;
	size_t n = read_maps(tid, true, &v);
	uintptr_t at = lo;

	/* (in address order: a range past `at` is a hole) */
	for (size_t i = 0; i < n && at < hi && v[i].lo <= at; i++)
		if (v[i].hi > at)
			at = v[i].hi;
	free(v);
	return !n || at >= hi;
}

bool vm_child_adopts(const struct lp_vm *c)
{
	return c->parent && c->fr.n && c->adopt;
}

void vm_child_maps_before(struct lp_vm *c, pid_t tid)
{
	if (!vm_child_adopts(c))
		return;
	pthread_mutex_lock(&c->maps_lock);
	if (!c->maps_known) {
		c->nold = read_maps(tid, true, &c->old_maps);
		c->maps_known = c->nold > 0;
	}
	pthread_mutex_unlock(&c->maps_lock);
}

void vm_child_mapped(struct lp_vm *c, pid_t tid)
{
	if (!vm_child_adopts(c))
		return;
	vm_child_maps_before(c, tid);
	vm_child_look_soon(c);
}

/* The pages of [lo, hi) the child has (mapped, or on the kernel's swap),
 * taken as resident, dirty pages of the new region: beyond the budget
 * until the evictor adopts them.  Pages a fault brought in meanwhile are
 * known already. */
static void adopt_present(struct lp_vm *c, int pm, uintptr_t lo, uintptr_t hi)
{
	uint64_t e[512];

	for (uintptr_t at = lo; at < hi;) {
		size_t n = (hi - at) >> LP_PAGE_SHIFT;
		if (n > 512)
			n = 512;
		ssize_t got = pread(pm, e, n * 8, (off_t)(at >> LP_PAGE_SHIFT) * 8);
		if (got <= 0)
			return;
		n = (size_t)got / 8;
		for (size_t i = 0; i < n; i++) {
			if (!(e[i] >> 62))
				continue;
			uint64_t vpn = (at >> LP_PAGE_SHIFT) + i;
			struct spt_stripe *s = spt_lock(&c->spt, vpn);
			struct lp_page *pg = spt_find(&c->spt, vpn) ? NULL
					   : spt_insert(&c->spt, vpn, &lp_anon_ops);
			if (pg) {
				pg->state = PG_RESIDENT;
				pg->backing = BK_ZERO;
				pg->flags |= PGF_DIRTY;
				frame_overflow(&c->fr, 1);
				frame_overflow_note(&c->fr, vpn);
			}
			spt_unlock(s);
		}
		at += n << LP_PAGE_SHIFT;
	}
}

/* Adopt [lo, hi) of the child: 0 or -errno (nothing taken). */
static int adopt_range(struct lp_vm *c, int pm, uintptr_t lo, uintptr_t hi)
{
	struct lp_region *r = region_new(lo, hi, PROT_READ | PROT_WRITE, RK_ANON);

	if (!r)
		return -ENOMEM;
	int rc = prim_uffd_register(c->uffd, lo, hi - lo,
				    UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
	if (!rc) {
		pthread_rwlock_wrlock(&c->map_lock);
		rc = regions_insert(&c->regions, r);
		pthread_rwlock_unlock(&c->map_lock);
		if (rc)
			(void)prim_uffd_unregister(c->uffd, lo, hi - lo);
	}
	if (rc) {
		region_put(r);
		return rc;
	}
	adopt_present(c, pm, lo, hi);
	return 0;
}

static int by_lo(const void *a, const void *b)
{
	const struct lp_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Adopt the runs of [at, end) that no region of c has yet (a new mapping
 * may have merged with one): how many. */
static unsigned adopt_free_runs(struct lp_vm *c, int pm, uintptr_t at, uintptr_t end)
{
	unsigned took = 0;

	while (at < end) {
		uintptr_t s = at;
		while (s < end && vm_overlaps(c, s, LP_PG))
			s += LP_PG;
		uintptr_t e = s;
		while (e < end && !vm_overlaps(c, e, LP_PG))
			e += LP_PG;
		if (e > s && adopt_range(c, pm, s, e) == 0)
			took++;
		at = e;
	}
	return took;
}

/* Adopt the parts of [lo, hi) outside what the child had and outside its
 * regions: how many. */
static unsigned adopt_new_parts(struct lp_vm *c, int pm, uintptr_t lo, uintptr_t hi)
{
	struct lp_range *b = malloc((c->nold + 1) * sizeof(*b));
	size_t nb = 0;
	unsigned took = 0;

	if (!b)
		return 0;
	for (size_t i = 0; i < c->nold; i++)
		if (c->old_maps[i].lo < hi && lo < c->old_maps[i].hi)
			b[nb++] = c->old_maps[i];
	qsort(b, nb, sizeof(*b), by_lo);
	uintptr_t at = lo;
	for (size_t i = 0; i <= nb && at < hi; i++) {
		uintptr_t end = i < nb ? (b[i].lo > lo ? b[i].lo : lo) : hi;
		/* [at, end) is new */
		if (at < end) {
			took += adopt_free_runs(c, pm, at, end);
			at = end;
		}
		if (i < nb && b[i].hi > at)
			at = b[i].hi;
	}
	free(b);
	return took;
}

/* Whether [lo, hi) is all inside one region of c (adopted or inherited:
 * nothing to look at page by page). */
static bool meets_region(struct lp_vm *c, uintptr_t lo, uintptr_t hi)
{
	pthread_rwlock_rdlock(&c->map_lock);
	struct lp_region *r = regions_find(&c->regions, lo);
	bool in = r && r->end >= hi;
	pthread_rwlock_unlock(&c->map_lock);
	return in;
}

/* Adopt what is new in thread tid's mappings (pm: its pagemap): how many
 * ranges, or -EAGAIN while a move is handed to the kernel (a move's
 * destination is not new memory until then). */
static int adopt_scan(struct lp_vm *c, pid_t tid, int pm)
{
	struct lp_range *v;
	size_t n = read_maps(tid, false, &v);
	int took = 0;

	pthread_mutex_lock(&c->maps_lock);
	if (c->moving)
		took = -EAGAIN;
	for (size_t i = 0; i < n && took >= 0; i++) {
		if (!meets_region(c, v[i].lo, v[i].hi))
			took += (int)adopt_new_parts(c, pm, v[i].lo, v[i].hi);
	}
	pthread_mutex_unlock(&c->maps_lock);
	free(v);
	return took;
}

/* The evictor's hook (vm->adopt). */
static void adopt_new_maps(struct lp_vm *c)
{
	uint64_t noted = atomic_load(&c->maps_noted), now = prim_now_ns();

	if (!noted || c->pagemap_fd < 0 || !c->pid)
		return;
	if (noted == c->maps_scanned && now - c->scan_ns < ADOPT_EVERY_NS)
		return;
	c->scan_ns = now;
	int took = adopt_scan(c, c->pid, c->pagemap_fd);
	if (took < 0)
		return; /* (looked at again next round) */
	/* The call we were told of may not be made yet (we are told
	 * before the kernel makes it): looked at again soon, for a while. */
	if (took || now - atomic_load(&c->note_ns) >= ADOPT_RETRY_NS)
		c->maps_scanned = noted;
}

/* The child's pagemap: its evictor's, which it opens once it can reach
 * the child (a first mapping may come before), or opened now (tid is
 * held stopped: the pid is not reused meanwhile). */
static int kid_pagemap_fd(struct lp_vm *c, pid_t tid)
{
	char path[48];

	if (c->pagemap_fd >= 0)
		return c->pagemap_fd;
	snprintf(path, sizeof path, "/proc/%d/pagemap", tid);
	int pm = open(path, O_RDONLY | O_CLOEXEC);
	return pm < 0 ? -errno : pm;
}

/* After an adoption by the host: the evictor's look every ADOPT_EVERY_NS,
 * for memory made writable later, starts with the first mapping; nothing
 * to look for now. */
static void adopted_by_host(struct lp_vm *c)
{
	uint64_t none = 0;

	if (atomic_compare_exchange_strong(&c->maps_noted, &none, 1))
		atomic_store(&c->note_ns, 0);
}

int vm_child_adopt_now(struct lp_vm *c, pid_t tid, uintptr_t lo, size_t len)
{
	uintptr_t hi = lo + ((len + LP_PG - 1) & ~(uintptr_t)(LP_PG - 1));

	if (!vm_child_adopts(c))
		return -ENOTSUP;
	if (lo & (LP_PG - 1) || hi <= lo)
		return -EINVAL;
	int pm = kid_pagemap_fd(c, tid); /* (MAP_POPULATE's pages are there) */
	if (pm < 0)
		return pm;
	pthread_mutex_lock(&c->maps_lock);
	unsigned took = adopt_free_runs(c, pm, lo, hi);
	pthread_mutex_unlock(&c->maps_lock);
	if (pm != c->pagemap_fd)
		close(pm);
	adopted_by_host(c);
	return took ? 0 : -ENOMEM;
}

int vm_child_adopt_scan(struct lp_vm *c, pid_t tid)
{
	if (!vm_child_adopts(c))
		return -ENOTSUP;
	int pm = kid_pagemap_fd(c, tid);
	if (pm < 0)
		return pm;
	int took = adopt_scan(c, tid, pm);
	if (pm != c->pagemap_fd)
		close(pm);
	adopted_by_host(c);
	return took > 0 ? 0 : took < 0 ? took : -ENOMEM;
}

/*
 * A handed-over mmap.  The host holds a child's thread as its mmap returns
 * by attaching to it (seccomp.c, hold_call()); when this vm's evictor
 * traces the thread already (a drop, or its look at the rseq area: its
 * stop comes as the call returns), the host cannot, and the thread used
 * to run on into its new memory until the host could attach, or the
 * evictor's look found the mapping (forks fill, four children filling
 * 8 MiB each under 4M: 1800-2200 frames of 1024 at the peak, one run in
 * ten under ASan).  The evictor, told of the stop (inject's `stopped`),
 * adopts the range then, before it lets the thread go.
 */
bool vm_child_hand_over(struct lp_vm *c, struct lp_handoff *h, pid_t tid, size_t len)
{
	if (!vm_child_adopts(c) || (atomic_load(&h->word) & 3) != HAND_NONE)
		return false;
	h->len = len;
	h->ret = 0;
	atomic_store(&c->hand, h);
	atomic_store(&h->word, (int64_t)tid << 2 | HAND_POSTED);
	return true;
}

int vm_child_hand_poll(struct lp_handoff *h, bool withdraw)
{
	for (;;) {
		int64_t w = atomic_load(&h->word);
		switch (w & 3) {
		case HAND_NONE:
			return 0;
		case HAND_DONE:
			atomic_store(&h->word, HAND_NONE);
			return 1;
		case HAND_POSTED:
			if (!withdraw)
				return -EAGAIN;
			if (atomic_compare_exchange_strong(&h->word, &w, HAND_NONE))
				return 0;
			break; /* taken meanwhile */
		default: /* taken: the evictor adopts it now */
			if (!withdraw)
				return -EAGAIN;
			sched_yield();
		}
	}
}

/* inject's `stopped` hook of a child vm's evictor: the thread handed over
 * stopped as its mmap returned `ret`; the range adopted before it goes.
 * (Our interrupt's stop comes first on its way back, before a signal's
 * frame: the call's number and result are still there.) */
static void kid_stopped(void *ctx, pid_t tid, long nr, long ret)
{
	struct lp_vm *c = ctx;
	struct lp_handoff *h = atomic_load(&c->hand);
	int64_t want = (int64_t)tid << 2 | HAND_POSTED;

	if (!h || nr != SYS_mmap || !atomic_compare_exchange_strong(&h->word, &want,
						  (int64_t)tid << 2 | HAND_TAKEN))
		return;
	int rc = ret < 0 && ret > -4096 ? 0 /* failed: nothing new */
		 : vm_child_adopt_now(c, tid, (uintptr_t)ret, h->len);
	if (rc)
		vm_child_mapped(c, tid);
	h->ret = ret;
	atomic_store(&h->word, (int64_t)tid << 2 | HAND_DONE);
}

/* A child vm with a budget draws on the budget its parent draws on (the
 * tree's, in vmrun), with the same floor; else its budget is its own. */
static void join_share(struct lp_vm *p, struct lp_vm *c)
{
	if (!c->fr.n)
		return;
	pthread_mutex_lock(&p->fr.lock);
	struct frame_share *share = p->fr.share;
	_Atomic uint64_t *mine = p->fr.share_mine;
	uint64_t floor = p->fr.share_floor;
	pthread_mutex_unlock(&p->fr.lock);
	if (share)
		evict_share(c, share, mine, floor);
}

/* With a budget, what the child inherited resident is write-protected, so
 * that its first write is seen (PGF_SHARED_IN).  (A range registered
 * without write protection refuses: its writes go unseen.) */
static void protect_inherited(struct lp_vm *c)
{
	if (!c->fr.n)
		return;
	pthread_rwlock_rdlock(&c->map_lock);
	for (size_t i = 0; i < c->regions.n; i++) {
		const struct lp_region *r = c->regions.v[i];
		(void)prim_uffd_wp(c->uffd, r->start, r->end - r->start, true);
	}
	pthread_rwlock_unlock(&c->map_lock);
}

static int copy_regions(struct lp_vm *p, struct lp_vm *c)
{
	int rc = 0;

	pthread_rwlock_rdlock(&p->map_lock);
	for (size_t i = 0; i < p->regions.n && !rc; i++) {
		struct lp_region *r = p->regions.v[i];
		region_get(r);
		rc = regions_insert(&c->regions, r);
		if (rc)
			region_put(r);
	}
	pthread_rwlock_unlock(&p->map_lock);
	return rc;
}

/*
 * Count a fork event as served and, c not NULL, make c one of p's child
 * vms, the newest: in one hold of kids_lock, so that the host the count
 * wakes (vm_wait_fork) finds the child vm.  -ENOMEM: c could not be added
 * (the event is counted all the same).
 */
static int served(struct lp_vm *p, struct lp_vm *c)
{
	int rc = 0;

	pthread_mutex_lock(&p->kids_lock);
	if (c && p->nkids == p->capkids) {
		unsigned cap = p->capkids ? 2 * p->capkids : 8;
		struct lp_vm **k = realloc(p->kids, cap * sizeof(*k));
		if (k) {
			p->kids = k;
			p->capkids = cap;
		}
	}
	if (c && p->nkids < p->capkids) {
		p->kids[p->nkids++] = c;
		p->newest = c;
		c->fork_seq = p->forks_served + 1;
	} else if (c) {
		rc = -ENOMEM;
	}
	p->forks_served++;
	pthread_cond_broadcast(&p->kids_cond);
	pthread_mutex_unlock(&p->kids_lock);
	return rc;
}

void vm_fork_event(struct lp_vm *p, int ufd)
{
	struct lp_vm *c = NULL;

	/* The forking thread goes on as soon as the event is read: say that
	 * a child vm is being built, so that the vm stays frozen for it. */
	pthread_mutex_lock(&p->kids_lock);
	p->forks_started++;
	pthread_cond_broadcast(&p->kids_cond);
	pthread_mutex_unlock(&p->kids_lock);

	/* A copy of the child's userfaultfd, in case its vm cannot be built
	 * (RLIMIT_DATA: the pager's memory is the program's): closed, the
	 * kernel would unregister the child's ranges and every page not
	 * copied yet — code, file data, pages on swap — would read as zeros.
	 * Kept open, the child's faults wait until the host kills it. */
	int keep = fcntl(ufd, F_DUPFD_CLOEXEC, 3);
	int rc = vm_alloc(&c, &(struct vm_spec){ .parent = p, .ufd = ufd },
			  NULL);
	if (!rc) {
		/* The child may fork in turn: its vm serves that too. */
		c->fork_event = vm_fork_event;
		if (c->fr.n) {
			c->adopt = adopt_new_maps;
			c->inj.stopped = kid_stopped;
			c->inj.stopped_ctx = c;
			c->moved = vm_child_moved;
			c->move_table = vm_child_move_table;
		}
		join_share(p, c);
		rc = copy_regions(p, c);
	}
	if (!rc)
		rc = copy_table(p, c);
	if (!rc)
		protect_inherited(c);
	if (!rc)
		rc = vm_start(c);
	bool counted = !rc;
	if (!rc)
		rc = served(p, c);
	if (rc) {
		vm_error(p, rc);
		vm_child_destroy(c);
		pthread_mutex_lock(&p->kids_lock);
		if (p->unserved_ufd >= 0)
			close(p->unserved_ufd);
		p->unserved_ufd = keep;
		pthread_mutex_unlock(&p->kids_lock);
		keep = -1;
	}
	if (keep >= 0)
		close(keep);
	if (!counted)
		(void)served(p, NULL);
}

int vm_fork_unserved(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->kids_lock);
	int ufd = vm->unserved_ufd;
	vm->unserved_ufd = -1;
	pthread_mutex_unlock(&vm->kids_lock);
	return ufd;
}

uint64_t vm_forks_read(struct lp_vm *vm)
{
	return atomic_load(&vm->forks_read);
}

bool vm_fork_unread(struct lp_vm *vm, uint64_t seen)
{
	return atomic_load(&vm->uffd_readers) == 0 && atomic_load(&vm->forks_read) == seen;
}

bool vm_fork_started(struct lp_vm *vm, uint64_t seen)
{
	pthread_mutex_lock(&vm->kids_lock);
	bool started = vm->forks_started > seen;
	pthread_mutex_unlock(&vm->kids_lock);
	return started;
}

int vm_wait_fork(struct lp_vm *vm, uint64_t seen, int timeout_us)
{
	struct timespec ts;
	int rc = 0;

	prim_deadline(&ts, timeout_us / 1000);
	ts.tv_nsec += (long)(timeout_us % 1000) * 1000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&vm->kids_lock);
	while (vm->forks_served <= seen && rc == 0)
		rc = pthread_cond_timedwait(&vm->kids_cond, &vm->kids_lock, &ts);
	pthread_mutex_unlock(&vm->kids_lock);
	return rc ? -ETIMEDOUT : 0;
}

/* Free a child vm: its process is gone (or we are), nothing to unmap. */
/* The top vm's kid_ended, if any: told of every descendant (NULL:
 * nobody asks). */
static const struct lp_vm *kid_asker(const struct lp_vm *c)
{
	while (c->parent)
		c = c->parent;
	return c->kid_ended ? c : NULL;
}

/* c ended: what its process alone counted (own: its blocks, folded as
 * they go) to whoever asked the top vm. */
static void kid_report(struct lp_vm *c, struct lp_tstats *own)
{
	const struct lp_vm *top = kid_asker(c);
	struct lp_stats st;

	/* (One never named, its pid not found after its fork, is told of
	 * as pid 0: its figures joined the tree's, and the lines must still
	 * add up to them.) */
	if (!top || !own)
		return;
	memset(&st, 0, sizeof st);
	st_sum(&own, 1, &st);
	pthread_mutex_lock(&c->fr.lock);
	st.peak_frames = c->fr.peak;
	st.budget_frames = c->fr.n;
	pthread_mutex_unlock(&c->fr.lock);
	top->kid_ended(top->kid_ended_ctx, c->pid > 0 ? c->pid : 0, &st);
}

void vm_child_destroy(struct lp_vm *c)
{
	if (!c)
		return;
	/* What it counted joins its parent's figures (lp_stats_get()), and
	 * its own line (kid_report()); its handlers' blocks go with them
	 * (its process is gone: they count nothing more). */
	struct lp_tstats *own = kid_asker(c) ? calloc(1, sizeof *own) : NULL;
	for (unsigned i = 0; c->parent && i < c->nh; i++) {
		st_fold(&c->parent->kids_st, &c->h[i].st);
		if (own)
			st_fold(own, &c->h[i].st);
	}
	vm_stop(c);
	vm_reap_kids(c, true);
	if (c->parent) {
		st_fold(&c->parent->kids_st, &c->ev.st);
		st_fold(&c->parent->kids_st, &c->api_st);
		st_fold(&c->parent->kids_st, &c->kids_st);
	}
	if (own) {
		st_fold(own, &c->ev.st);
		st_fold(own, &c->api_st);
		kid_report(c, own);
		free(own);
	}
	vm_free(c);
}

void vm_note_gone_kids(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids; i++) {
		struct lp_vm *k = vm->kids[i];
		pid_t pid = __atomic_load_n(&k->pid, __ATOMIC_ACQUIRE);
		uint64_t start;
		if (pid > 0 && !atomic_load(&k->dead) && prim_proc_start(pid, &start) == 0) {
			atomic_store(&k->dead, true);
			frames_share(&k->fr, NULL, NULL); /* (as its handler) */
		}
		vm_note_gone_kids(k);
	}
	pthread_mutex_unlock(&vm->kids_lock);
}

void vm_reap_kids(struct lp_vm *vm, bool all)
{
	for (;;) {
		struct lp_vm *gone = NULL;
		pthread_mutex_lock(&vm->kids_lock);
		for (unsigned i = 0; i < vm->nkids; i++) {
			if (all || atomic_load(&vm->kids[i]->dead)) {
				gone = vm->kids[i];
				vm->kids[i] = vm->kids[--vm->nkids];
				if (vm->newest == gone)
					vm->newest = NULL;
				break;
			}
		}
		pthread_mutex_unlock(&vm->kids_lock);
		if (!gone)
			break;
		vm_child_destroy(gone);
	}
	/* Grandchildren of the children that live on. */
	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids; i++)
		vm_reap_kids(vm->kids[i], false);
	pthread_mutex_unlock(&vm->kids_lock);
}

/*
 * ---- What the host asks about a vm's forked children ----
 *
 * The host (loader/) never takes kids_lock nor reads the bookkeeping of
 * forks: it asks through these.
 */

void vm_fork_counts(struct lp_vm *vm, uint64_t *served, uint64_t *started)
{
	pthread_mutex_lock(&vm->kids_lock);
	*served = vm->forks_served;
	*started = vm->forks_started;
	pthread_mutex_unlock(&vm->kids_lock);
}

bool vm_kid_named(struct lp_vm *vm, pid_t pid)
{
	bool named = false;

	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids && !named; i++)
		named = vm->kids[i]->pid == pid;
	pthread_mutex_unlock(&vm->kids_lock);
	return named;
}

bool vm_kid_unnamed(struct lp_vm *vm, uint64_t seq)
{
	bool unnamed = false;

	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids; i++) {
		struct lp_vm *k = vm->kids[i];
		if (k->fork_seq == seq)
			unnamed = !k->pid && !atomic_load(&k->dead);
	}
	pthread_mutex_unlock(&vm->kids_lock);
	return unnamed;
}

int vm_name_kid(struct lp_vm *vm, uint64_t seq, pid_t pid)
{
	struct lp_vm *mine = NULL;
	int rc = -ENOENT;

	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids; i++) {
		struct lp_vm *k = vm->kids[i];
		if (k->pid == pid) {
			rc = -EEXIST;
			break;
		}
		if (k->fork_seq == seq)
			mine = k;
	}
	if (rc != -EEXIST && mine) {
		rc = mine->pid ? -EEXIST : 0;
		if (!rc)
			__atomic_store_n(&mine->pid, pid, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->kids_lock);
	return rc;
}

struct lp_vm *vm_find_kid(struct lp_vm *vm,
			  bool (*match)(pid_t pid, void *arg), void *arg)
{
	struct lp_vm *found = NULL;

	pthread_mutex_lock(&vm->kids_lock);
	for (unsigned i = 0; i < vm->nkids && !found; i++) {
		struct lp_vm *k = vm->kids[i];
		if (atomic_load(&k->dead))
			continue;
		found = k->pid && match(k->pid, arg) ? k
						     : vm_find_kid(k, match, arg);
		/* The same process after an execve is not ours any more. */
		if (found == k && !vm_alive(k)) {
			atomic_store(&k->dead, true);
			frames_share(&k->fr, NULL, NULL);
			found = NULL;
		}
	}
	pthread_mutex_unlock(&vm->kids_lock);
	return found;
}

unsigned vm_kids_count(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->kids_lock);
	unsigned n = vm->nkids;
	pthread_mutex_unlock(&vm->kids_lock);
	return n;
}

void vm_signal_kids(struct lp_vm *vm, int sig)
{
	if (!vm)
		return;
	/* A lock held by a stuck thread is not waited for long (100 ms). */
	for (int i = 0; pthread_mutex_trylock(&vm->kids_lock); i++) {
		if (i == 50)
			return;
		usleep(2000);
	}
	for (unsigned i = 0; i < vm->nkids; i++) {
		if (vm->kids[i]->pid > 0)
			kill(vm->kids[i]->pid, sig);
		vm_signal_kids(vm->kids[i], sig);
	}
	pthread_mutex_unlock(&vm->kids_lock);
}
