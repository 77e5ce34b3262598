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
 * the vm (vm_freeze) before it lets a fork go ahead.  Faults read while
 * frozen are deferred; the evictor waits.
 *
 * A child vm has its own handler thread and no budget (the kernel offers no
 * way to unmap a page of another process's address space without it), and
 * shares the swap file.  It notices that its process is gone (exit or
 * execve) when filling its probe page — a page registered in the parent and
 * inherited — fails with ESRCH.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fork.h"
#include "prim.h"
#include "vm.h"
#include "fault.h"

void vm_freeze(struct lp_vm *vm)
{
	/* A handler waiting for a frame holds the freeze lock for reading
	 * and waits for the evictor, which waits for us: tell it to give up
	 * (its fault is deferred). */
	atomic_store(&vm->freezing, true);
	if (vm->fr_up) {
		pthread_mutex_lock(&vm->fr.lock);
		pthread_cond_broadcast(&vm->fr.cond);
		pthread_mutex_unlock(&vm->fr.lock);
	}
	pthread_rwlock_wrlock(&vm->freeze_lock);
}

void vm_thaw(struct lp_vm *vm)
{
	uint64_t one = 1;

	atomic_store(&vm->freezing, false);
	pthread_rwlock_unlock(&vm->freeze_lock);
	(void)!write(vm->thaw_fd, &one, sizeof(one));
}

bool vm_alive(struct lp_vm *vm)
{
	return prim_uffd_zeropage(vm->uffd, vm->probe, LP_PG) != -ESRCH;
}

/* Copy one page of the parent (stripe locked) into the child's table.
 * Returns the parent's frame when the page is parked and must be copied
 * into the child once the lock is dropped, else LP_NO_FRAME. */
static uint32_t copy_page(struct lp_vm *c, const struct lp_page *pg)
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
	struct lp_page *cp = spt_insert(&c->spt, pg->vpn, pg->ops);
	if (cp) {
		cp->backing = pg->backing;
		cp->flags |= pg->flags & (PGF_WP | PGF_DIRTY | PGF_WASDIRTY);
		cp->slot = pg->slot;
		if (cp->slot != LP_NO_SLOT)
			swap_ref(c->swap, cp->slot);
		cp->state = st == PG_EVICTED ? PG_EVICTED : PG_RESIDENT;
		if (c->vf && cp->state == PG_EVICTED)
			verify_inherit(c, pg->vpn);
		if (cp->state == PG_RESIDENT) {
			uint32_t f;
			(void)frame_get(&c->fr, &f); /* no budget: counts it */
		}
	}
	spt_unlock(s);
	if (!cp)
		vm_error(c, -ENOMEM);
	return cp && st == PG_PARKED ? pg->frame : LP_NO_FRAME;
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

	for (unsigned i = 0; i < SPT_STRIPES; i++) {
		struct spt_stripe *s = &p->spt.stripe[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = i; b < p->spt.nbucket; b += SPT_STRIPES) {
			for (struct lp_page *pg = p->spt.bucket[b]; pg; pg = pg->next) {
				uint32_t f = copy_page(c, pg);
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
		int e = prim_uffd_copy(c->uffd, (uintptr_t)todo[k].vpn << 12,
				       (const void *)kva_of(&p->fr, todo[k].f),
				       LP_PG, todo[k].clean);
		if (e && e != -EEXIST) {
			vm_error(c, e);
			rc = e;
		}
	}
	free(todo);
	return rc;
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

void vm_fork_event(struct lp_vm *p, int ufd)
{
	/* The forking thread goes on as soon as the event is read: say that
	 * a child vm is being built, so that the vm stays frozen for it. */
	pthread_mutex_lock(&p->kids_lock);
	p->forks_started++;
	pthread_cond_broadcast(&p->kids_cond);
	pthread_mutex_unlock(&p->kids_lock);

	struct lp_vm *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (!c) {
		close(ufd);
		vm_error(p, -ENOMEM);
		return;
	}
	vm_init_common(c);
	c->vmflags = p->vmflags;
	c->parent = p;
	c->uffd = ufd;
	c->features = p->features;
	c->have_move = p->have_move;
	c->have_poison = p->have_poison;
	c->flags = p->flags;
	c->ref_scan = p->ref_scan;
	c->nthreads = 1;
	c->probe = p->probe;
	c->swap = swap_get(p->swap);
	c->zero = aligned_alloc(LP_PG, LP_PG);
	c->zeros = p->zeros; /* the parent's: read only, outlives us */
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->thaw_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!c->zero || c->stop_fd < 0 || c->thaw_fd < 0)
		goto fail;
	memset(c->zero, 0, LP_PG);
	if ((rc = spt_init(&c->spt)) || (rc = verify_create(c)))
		goto fail;
	c->fr_up = true;
	if ((rc = frames_init(&c->fr, &(struct lp_frames_cfg){ .n = 0 })))
		goto fail;
	if ((rc = io_setup(&c->api_io, 4)))
		goto fail;
	if ((rc = copy_regions(p, c)))
		goto fail;
	(void)copy_table(p, c); /* errors are kept in the child's stats */
	if ((rc = handlers_start(c)))
		goto fail;
	c->ready = true;

	pthread_mutex_lock(&p->kids_lock);
	if (p->nkids == p->capkids) {
		unsigned cap = p->capkids ? 2 * p->capkids : 8;
		struct lp_vm **k = realloc(p->kids, cap * sizeof(*k));
		if (k) {
			p->kids = k;
			p->capkids = cap;
		}
	}
	if (p->nkids < p->capkids) {
		p->kids[p->nkids++] = c;
		p->newest = c;
	} else {
		rc = -ENOMEM;
	}
	p->forks_served++;
	pthread_cond_broadcast(&p->kids_cond);
	pthread_mutex_unlock(&p->kids_lock);
	if (!rc)
		return;
fail:
	/* The child runs on without us: its untouched pages would read as
	 * zeros.  Make that loud rather than silent. */
	vm_error(p, rc ? rc : -ENOMEM);
	vm_child_destroy(c);
	pthread_mutex_lock(&p->kids_lock);
	p->forks_served++;
	pthread_cond_broadcast(&p->kids_cond);
	pthread_mutex_unlock(&p->kids_lock);
}

bool vm_fork_started(struct lp_vm *vm, uint64_t seen)
{
	pthread_mutex_lock(&vm->kids_lock);
	bool started = vm->forks_started > seen;
	pthread_mutex_unlock(&vm->kids_lock);
	return started;
}

int vm_wait_fork(struct lp_vm *vm, uint64_t seen, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
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
void vm_child_destroy(struct lp_vm *c)
{
	if (!c)
		return;
	atomic_store(&c->stopping, true);
	handlers_stop(c);
	vm_reap_kids(c, true);
	io_teardown(&c->api_io);
	for (unsigned i = 0; c->spt.bucket && i < SPT_STRIPES; i++) {
		for (size_t b = i; b < c->spt.nbucket; b += SPT_STRIPES) {
			struct lp_page *pg = c->spt.bucket[b];
			while (pg) {
				struct lp_page *next = pg->next;
				page_drop_backing(c, pg);
				pg = next;
			}
		}
	}
	verify_destroy(c);
	if (c->spt.bucket)
		spt_fini(&c->spt);
	if (c->fr_up)
		frames_fini(&c->fr);
	regions_fini(&c->regions);
	swap_close(c->swap);
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	vm_fini_common(c);
	free(c->zero);
	free(c);
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

void vm_name_newest_kid(struct lp_vm *vm, pid_t pid)
{
	pthread_mutex_lock(&vm->kids_lock);
	if (vm->newest && !vm->newest->pid)
		vm->newest->pid = pid;
	pthread_mutex_unlock(&vm->kids_lock);
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
