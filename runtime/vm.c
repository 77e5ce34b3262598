/* SPDX-License-Identifier: MIT */
/*
 * The life of an lp_vm: allocating one (a vm of its own, or a forked
 * child's) and freeing it, starting and stopping its threads, mapping a
 * region and tearing regions down, writing back shared pages, freezing the
 * pages while an address space is copied.  The public entry points that
 * compose these are in api.c; the forked children in fork.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "verify.h"
#include "prim.h"
#include "vm.h"
#include "fault.h"
#include "evict.h"
#include "pagelife.h"
#include "remote.h"
#include "zpool.h"

static int open_uffd(struct lp_vm *vm)
{
	uint64_t have = 0;
	int rc = prim_uffd_features(&have);

	if (rc)
		return rc == -ENOSYS ? -ENOSYS : rc;
	if (!(have & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		return -ENOSYS; /* dirty tracking needs write-protect faults */
	/* (4.11, older than write-protect faults: always there with them) */
	if (!(have & UFFD_FEATURE_EVENT_REMAP))
		return -ENOSYS; /* an mremap would drop its neighbours' registration */
	uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_THREAD_ID |
			UFFD_FEATURE_EVENT_REMAP;
	if (vm->vmflags & VMF_FORK) {
		if (!(have & UFFD_FEATURE_EVENT_FORK))
			return -ENOSYS;
		want |= UFFD_FEATURE_EVENT_FORK;
	}
	want |= have & (UFFD_FEATURE_MOVE | UFFD_FEATURE_POISON);
	rc = prim_uffd_open(&vm->uffd);
	if (rc)
		return rc;
	rc = prim_uffd_api(vm->uffd, want);
	if (rc)
		return rc;
	vm->features = want;
	vm->have_move = want & UFFD_FEATURE_MOVE;
	vm->have_poison = want & UFFD_FEATURE_POISON;
	return 0;
}

/* A zeroed vm with the locks every vm has, before anything can fail.
 * A vm is 200 KiB, most of it counters: populated with zeroed pages
 * rather than cleared by calloc (the heap's pages, write-protected by the
 * program's last fork, each took a copy-on-write fault for each fork's
 * child vm).  Not prim_private_alloc(): a child of fork() reads its owner
 * (api.c). */
static struct lp_vm *vm_new(void)
{
	struct lp_vm *vm = mmap(NULL, sizeof(*vm), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	pthread_rwlockattr_t ra;

	if (vm == MAP_FAILED)
		return NULL;
	vm->uffd = vm->pidfd = vm->stop_fd = vm->ev.wake_fd = vm->thaw_fd = -1;
	vm->unserved_ufd = vm->pagemap_fd = -1;
	vm->owner = getpid();
	pthread_rwlock_init(&vm->map_lock, NULL);
	pthread_mutex_init(&vm->api_lock, NULL);
	pthread_mutex_init(&vm->maps_lock, NULL);
	/* Writer-preferring: a freeze must not starve behind new faults. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vm->freeze_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&vm->defer_lock, NULL);
	pthread_mutex_init(&vm->kids_lock, NULL);
	pthread_cond_init(&vm->kids_cond, NULL);
	atomic_init(&vm->stopping, false);
	atomic_init(&vm->last_error, 0);
	atomic_init(&vm->dead, false);
	atomic_init(&vm->io_pages, 0);
	return vm;
}

/* A vm of its own: its configuration, its zero pages and its userfaultfd
 * (why->part names what failed). */
static int own_config(struct lp_vm *vm, const struct lp_config *cfg,
		      unsigned vmflags, struct vm_failure *why)
{
	vm->vmflags = vmflags;
	vm->swap_max = cfg->swap_max;
	vm->nthreads = cfg->threads ? cfg->threads : prim_ncpus();
	if (vm->nthreads > LP_MAX_THREADS)
		vm->nthreads = LP_MAX_THREADS;
	vm->flags = cfg->flags;
	vm->ref_scan = cfg->ref_scan ? cfg->ref_scan : LP_DEFAULT_REF_SCAN;
	if (getrandom(&vm->sum_seed, sizeof(vm->sum_seed), 0) != sizeof(vm->sum_seed))
		vm->sum_seed = prim_now_ns() ^ (uint64_t)(uintptr_t)vm;
	vm->policy_name = strdup(cfg->policy);
	if (!vm->policy_name)
		return -ENOMEM;
	/* Never written: reading it maps the kernel's zero page, no memory. */
	vm->zeros = mmap(NULL, (size_t)LP_ZA_MAX << LP_PAGE_SHIFT, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->zeros == MAP_FAILED) {
		vm->zeros = NULL;
		return -ENOMEM;
	}
	why->part = VM_PART_UFFD;
	int rc = open_uffd(vm);
	if (rc)
		return rc;
	why->part = VM_PART_SYSTEM;
	rc = prim_pidfd_self();
	vm->pidfd = rc >= 0 ? rc : -1;
	return 0;
}

/* The evictor waits for a thread of child vm ctx to stop for a drop
 * (inject.h): a fault of that thread meanwhile goes beyond the budget.
 * The kernel writes its rseq area (or a signal frame) as it returns to
 * user mode, a page we may have evicted; that fault needs a frame only
 * the waiting evictor can free (without this, both waited a second). */
static void kid_waiting(void *ctx, pid_t tid, bool on)
{
	struct lp_vm *vm = ctx;

	frames_open(&vm->fr, tid, on);
}

/* A child vm: the userfaultfd of the child process, the parent's
 * configuration, and what it shares with the parent (swap file, zero pages,
 * probe), which the parent outlives. */
static void inherit(struct lp_vm *c, struct lp_vm *p, int ufd)
{
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
	c->zeros = p->zeros; /* read only */
	c->sum_seed = p->sum_seed; /* the digests of copied pages hold */
	/* The child process has the parent's copies of these, at the same
	 * addresses; a grandchild's park area may hold its parent's pages. */
	c->kid_scratch = p->kid_scratch;
	c->kid_park = p->kid_park;
	c->park_dirty = p->parent != NULL;
	inject_init(&c->inj, &c->kid_scratch);
	c->inj.waiting = kid_waiting;
	c->inj.waiting_ctx = c;
}

/* What every vm has: a zero page, its eventfds, its page table, its verify
 * records and its frame table (n frames of policy; 0: no budget). */
static int common_parts(struct lp_vm *vm, uint32_t n, const char *policy,
			uint64_t seed)
{
	vm->zero = aligned_alloc(LP_PG, LP_PG);
	if (!vm->zero)
		return -ENOMEM;
	memset(vm->zero, 0, LP_PG);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->thaw_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0 || vm->thaw_fd < 0)
		return -errno;
	int rc = spt_init(&vm->spt);
	if (!rc)
		rc = verify_create(vm);
	if (rc)
		return rc;
	vm->fr_up = true;
	/* (A child vm's kva slots are ours, its pages another process's.) */
	return frames_init(&vm->fr, &(struct lp_frames_cfg){
		.n = n, .policy = policy, .seed = seed, .ra_max = LP_RA_FREE,
		.uffd = vm->parent ? -1 : vm->uffd, .stopping = &vm->stopping,
		.freezing = &vm->freezing, .st = &vm->ev.st });
}

/* The compressed tier in front of the swap file: at most tier_share
 * percent of the budget (frames), its arena a quarter larger for the room
 * partly used slabs take.  Nothing to keep without a budget. */
static int own_tier(struct lp_vm *vm, const struct lp_config *cfg)
{
	static const enum zp_algo algo[] = { [LP_TIER_LZ4] = ZP_LZ4,
					     [LP_TIER_ZSTD] = ZP_ZSTD };
	unsigned share = cfg->tier_share ? cfg->tier_share : LP_TIER_SHARE_DEFAULT;

	if (!zpool_algo_built(algo[cfg->tier]))
		return -ENOTSUP;
	if (!cfg->frames)
		return 0;
	uint32_t limit = (uint32_t)(cfg->frames * share / 100);
	if (!limit)
		return 0;
	struct zpool *zp;
	int rc = zpool_new(&zp, algo[cfg->tier], limit + limit / 4 + 16, limit);
	if (rc)
		return rc;
	rc = chain_add(&vm->swap->chain, zpool_as_store(zp));
	if (rc)
		zpool_free(zp);
	return rc;
}

/* The remote store in the file's place, or, with a largest swap file,
 * behind it: the file first, the remote store once it is full. */
static int own_remote(struct lp_vm *vm, const struct lp_config *cfg)
{
	struct remote *rm;
	int rc = remote_new(&rm, cfg->remote, cfg->remote_replicas, vm->swap);

	if (rc)
		return rc;
	if (cfg->swap_max)
		swap_spill_to(vm->swap, remote_as_store(rm));
	else
		(void)chain_set_last(&vm->swap->chain, remote_as_store(rm));
	return 0;
}

/* A vm of its own: its swap file (why->part names what failed) and, when it
 * serves forks, its probe page. */
static int own_swap(struct lp_vm *vm, const struct lp_config *cfg,
		    struct vm_failure *why)
{
	why->part = VM_PART_SWAP;
	int rc = swap_open(&vm->swap, cfg->swap_path, cfg->swap_max);
	if (rc)
		return rc;
	why->part = VM_PART_SYSTEM;
	if ((cfg->flags & LP_CFG_ENCRYPT_SWAP) &&
	    (rc = swap_encrypt_enable(vm->swap)))
		return rc;
	why->part = VM_PART_REMOTE;
	if (cfg->remote && (rc = own_remote(vm, cfg)))
		return rc;
	why->part = VM_PART_SYSTEM;
	if (cfg->tier && (rc = own_tier(vm, cfg)))
		return rc;
	if (!(vm->vmflags & VMF_FORK))
		return 0;
	/* A page every child inherits, registered: a fill of it tells
	 * whether the child's address space still exists (vm_alive). */
	void *p = mmap(NULL, LP_PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	vm->probe = (uintptr_t)p;
	rc = prim_uffd_register(vm->uffd, vm->probe, LP_PG,
				UFFDIO_REGISTER_MODE_MISSING);
	/* Its forked children under the budget, where the kernel lets us
	 * drop their pages (otherwise they run without one). */
	if (!rc && cfg->frames)
		evict_kids_prepare(vm);
	return rc;
}

int vm_alloc(struct lp_vm **out, const struct vm_spec *spec,
	     struct vm_failure *why)
{
	struct vm_failure ignored;
	const struct lp_config *cfg = spec->cfg;
	int rc;

	if (!why)
		why = &ignored;
	why->part = VM_PART_SYSTEM;
	*out = NULL;
	struct lp_vm *vm = vm_new();
	if (!vm) {
		if (spec->parent)
			close(spec->ufd);
		return -ENOMEM;
	}
	if (spec->parent) {
		struct lp_vm *p = spec->parent;
		inherit(vm, p, spec->ufd);
		/* The parent's budget and policy, when its children can
		 * have one (evict_kids_prepare()). */
		rc = common_parts(vm, p->kid_park ? p->fr.n : 0,
				  p->kid_park ? p->fr.pops->name : NULL,
				  (uint64_t)prim_now_ns());
	} else {
		rc = own_config(vm, cfg, spec->vmflags, why);
		if (!rc)
			rc = common_parts(vm, (uint32_t)cfg->frames,
					  cfg->policy, (uint64_t)prim_now_ns());
		if (!rc)
			rc = own_swap(vm, cfg, why);
	}
	if (!rc)
		rc = io_setup(&vm->api_io, spec->parent ? 4 : 8);
	if (rc) {
		vm_free(vm);
		return rc;
	}
	why->part = VM_PART_NONE;
	*out = vm;
	return 0;
}

int vm_start(struct lp_vm *vm)
{
	int rc = handlers_start(vm);

	if (!rc)
		rc = evictor_start(vm);
	if (!rc)
		vm->ready = true;
	return rc;
}

/* Wake the handlers that wait for a frame: they look again at stopping
 * and freezing, which end the wait. */
static void wake_frame_waiters(struct lp_vm *vm)
{
	if (vm->fr_up) {
		pthread_mutex_lock(&vm->fr.lock);
		pthread_cond_broadcast(&vm->fr.cond);
		pthread_mutex_unlock(&vm->fr.lock);
	}
}

void vm_stop(struct lp_vm *vm)
{
	atomic_store(&vm->stopping, true);
	wake_frame_waiters(vm);
	evictor_stop(vm);
	handlers_stop(vm);
}

/* Release what the page structs still in the table hold outside memory
 * (their swap slots): a child vm's pages, which nobody unmaps. */
static void drop_pages(struct lp_vm *vm)
{
	for (unsigned i = 0; vm->spt.bucket && i < SPT_STRIPES; i++) {
		for (size_t b = i; b < vm->spt.nbucket; b += SPT_STRIPES) {
			struct lp_page *pg = vm->spt.bucket[b];
			while (pg) {
				struct lp_page *next = pg->next;
				page_drop_backing(vm, pg);
				pg = next;
			}
		}
	}
}

void vm_free(struct lp_vm *vm)
{
	if (!vm)
		return;
	io_teardown(&vm->api_io);
	drop_pages(vm);
	verify_destroy(vm);
	if (vm->spt.bucket)
		spt_fini(&vm->spt);
	if (vm->fr_up) {
		/* (A child vm's frames leave the budget it shared.) */
		frames_share(&vm->fr, NULL, NULL);
		frames_fini(&vm->fr); /* before the userfaultfd closes: kva */
	}
	regions_fini(&vm->regions);
	swap_close(vm->swap);
	if (vm->probe && !vm->parent) {
		(void)prim_uffd_unregister(vm->uffd, vm->probe, LP_PG);
		munmap((void *)vm->probe, LP_PG);
	}
	if (vm->zeros && !vm->parent)
		munmap(vm->zeros, (size_t)LP_ZA_MAX << LP_PAGE_SHIFT);
	if (!vm->parent)
		evict_kids_release(vm);
	if (vm->pagemap_fd >= 0)
		close(vm->pagemap_fd);
	if (vm->uffd >= 0)
		close(vm->uffd);
	if (vm->unserved_ufd >= 0)
		close(vm->unserved_ufd);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->thaw_fd >= 0)
		close(vm->thaw_fd);
	free(vm->deferred);
	free(vm->kids);
	pthread_rwlock_destroy(&vm->map_lock);
	pthread_mutex_destroy(&vm->api_lock);
	pthread_mutex_destroy(&vm->maps_lock);
	free(vm->old_maps);
	pthread_rwlock_destroy(&vm->freeze_lock);
	pthread_mutex_destroy(&vm->defer_lock);
	pthread_mutex_destroy(&vm->kids_lock);
	pthread_cond_destroy(&vm->kids_cond);
	free(vm->policy_name);
	free(vm->zero);
	munmap(vm, sizeof(*vm));
}

void vm_freeze(struct lp_vm *vm)
{
	/* A handler waiting for a frame holds the freeze lock for reading
	 * and waits for the evictor, which waits for us: tell it to give up
	 * (its fault is deferred). */
	atomic_store(&vm->freezing, true);
	wake_frame_waiters(vm);
	pthread_rwlock_wrlock(&vm->freeze_lock);
}

void vm_thaw(struct lp_vm *vm)
{
	uint64_t one = 1;

	atomic_store(&vm->freezing, false);
	pthread_rwlock_unlock(&vm->freeze_lock);
	(void)!write(vm->thaw_fd, &one, sizeof(one));
}

/* Wait (stripe s held) until nobody owns pg and no write of it is in
 * flight.  Returns the page again: it cannot go away meanwhile, since only
 * the unmapper of its range removes it.
 *
 * A write in flight always completes (the evictor reaps every write before
 * it stops), and its completion finds the page wherever mremap moved it
 * (spt_move).  Should a bug ever leave PGF_IO on a page whose write is not
 * in flight, nothing would clear it and lp_vm_destroy() would wait
 * forever: so the wait looks again every 100 ms, and a flagged page while
 * no page is counted in flight (vm->io_pages) has a stale flag.  Its
 * content is still in its frame (mapped, or in its kva slot), so dropping
 * the flag loses nothing; the event is reported as -EIO in last_error. */
static void settle(struct lp_vm *vm, struct spt_stripe *s, struct lp_page *pg)
{
	while (page_owned(pg) || (pg->flags & PGF_IO)) {
		if (!page_owned(pg) &&
		    atomic_load_explicit(&vm->io_pages, memory_order_relaxed) == 0) {
			pg->flags &= (uint16_t)~PGF_IO;
			vm_error(vm, -EIO);
			break;
		}
		pg->flags |= PGF_WAITERS;
		struct timespec ts;
		prim_deadline(&ts, 100);
		pthread_cond_timedwait(&s->settle, &s->lock, &ts);
	}
}

/* Write back one dirty page of shared file region r, owned as SYNCING.
 * from: where its content is now (the page, or its kva slot). */
static int write_back(struct lp_vm *vm, struct lp_region *r,
		      struct lp_page *pg, const void *from)
{
	uint64_t off;
	uint32_t len;

	if (pg->ops->swap_out(pg, r, &off, &len) != 1 || len == 0)
		return 0;
	struct iovec iov = { (void *)from, len };
	pthread_mutex_lock(&vm->api_lock);
	int rc = io_pwritev(&vm->api_io, r->file->fd, &iov, 1, off);
	pthread_mutex_unlock(&vm->api_lock);
	if (rc) {
		st_add(&vm->api_st, C_IO_ERR, 1);
		vm_error(vm, rc);
	} else {
		st_add(&vm->api_st, C_FILE_WB, 1);
		st_add(&vm->api_st, C_FILE_WBB, len);
	}
	return rc;
}

/* Write back the dirty pages of shared file region r within [start, end). */
static int sync_region(struct lp_vm *vm, struct lp_region *r, uintptr_t start,
		       uintptr_t end)
{
	uint64_t *vpns;
	size_t n;
	int rc = spt_collect(&vm->spt, start >> LP_PAGE_SHIFT,
			     end >> LP_PAGE_SHIFT, &vpns, &n);
	int first = 0;

	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct spt_stripe *s = spt_lock(&vm->spt, vpns[i]);
		struct lp_page *pg = spt_find(&vm->spt, vpns[i]);
		if (pg)
			settle(vm, s, pg);
		if (!pg || !(pg->flags & PGF_DIRTY) ||
		    (pg->state != PG_RESIDENT && pg->state != PG_PARKED)) {
			spt_unlock(s);
			continue;
		}
		enum lp_page_state was = (enum lp_page_state)pg->state;
		bool wp = pg->flags & PGF_WP;
		page_set_state(pg, PG_SYNCING);
		spt_unlock(s);

		const void *from = (const void *)page_addr(pg);
		if (was == PG_PARKED)
			from = (const void *)kva_of(&vm->fr, pg->frame);
		else if (!wp)
			/* Stop writers while the page is being written: the
			 * file gets one consistent version of it. */
			rc = prim_uffd_wp(vm->uffd, page_addr(pg), LP_PG, true);
		if (!rc)
			rc = write_back(vm, r, pg, from);

		s = spt_lock(&vm->spt, vpns[i]);
		if (!rc) {
			pg->flags &= (uint16_t)~PGF_DIRTY;
			if (was == PG_RESIDENT)
				pg->flags |= PGF_WP;
		} else if (!first) {
			first = rc;
		}
		page_handoff(vm, s, pg, was);
		rc = 0;
	}
	free(vpns);
	return first;
}

void vm_destroy_pages(struct lp_vm *vm, uintptr_t start, uintptr_t end)
{
	uint64_t *vpns;
	size_t n;

	if (spt_collect(&vm->spt, start >> LP_PAGE_SHIFT, end >> LP_PAGE_SHIFT,
			&vpns, &n))
		return; /* out of memory: the structs stay until destroy */
	for (size_t i = 0; i < n; i++) {
		struct spt_stripe *s = spt_lock(&vm->spt, vpns[i]);
		struct lp_page *pg = spt_find(&vm->spt, vpns[i]);
		if (pg) {
			settle(vm, s, pg);
			if ((pg->state == PG_RESIDENT || pg->state == PG_PARKED) &&
			    !(pg->flags & PGF_SHARED_IN)) /* (never counted) */
				frame_release(&vm->fr, pg->frame);
			page_remove(vm, pg);
		}
		spt_unlock(s);
	}
	free(vpns);
}

/*
 * The program shares our address space: a range it is giving up must not
 * become a hole before its own call does so.  A hole is free for any of
 * our threads (malloc, an io_uring ring, a kva area) and the program's
 * munmap, MAP_FIXED or MREMAP_FIXED that follows would then destroy what
 * landed there (the likely cause of an evictor's ring read after its
 * memory was unmapped, which ASan saw on the fork-budget branch).  A
 * PROT_NONE mapping holds the place instead, replaced or unmapped by that
 * call.
 */
static void unmap_region(struct lp_region *r, bool hold)
{
	size_t len = r->end - r->start;

	if (hold && mmap((void *)r->start, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
			 -1, 0) != MAP_FAILED)
		return;
	munmap((void *)r->start, len);
}

int vm_teardown_range(struct lp_vm *vm, struct lp_region *const *gone,
		      size_t ngone, bool hold)
{
	int rc = 0;

	for (size_t i = 0; i < ngone; i++) {
		struct lp_region *r = gone[i];
		if (r->kind == RK_FILE && r->shared) {
			int e = sync_region(vm, r, r->start, r->end);
			if (e && !rc)
				rc = e;
		}
	}
	for (size_t i = 0; i < ngone; i++) {
		struct lp_region *r = gone[i];
		/* Wakes any thread blocked on the range: it faults again,
		 * outside lazypage, and (once unmapped) gets SIGSEGV. */
		(void)prim_uffd_unregister(vm->uffd, r->start, r->end - r->start);
	}
	for (size_t i = 0; i < ngone; i++)
		vm_destroy_pages(vm, gone[i]->start, gone[i]->end);
	for (size_t i = 0; i < ngone; i++) {
		unmap_region(gone[i], hold);
		region_put(gone[i]);
	}
	return rc;
}

void vm_unmap_all(struct lp_vm *vm)
{
	pthread_rwlock_wrlock(&vm->map_lock);
	struct lp_regions all = vm->regions;
	memset(&vm->regions, 0, sizeof(vm->regions));
	for (size_t i = 0; i < all.n; i++)
		atomic_store(&all.v[i]->retired, true);
	pthread_rwlock_unlock(&vm->map_lock);
	if (all.n)
		(void)vm_teardown_range(vm, all.v, all.n, false);
	free(all.v);
}

int vm_unmap(struct lp_vm *vm, uintptr_t start, uintptr_t end, bool gaps)
{
	struct lp_region **gone;
	size_t n;

	pthread_rwlock_wrlock(&vm->map_lock);
	int rc = gaps ? regions_take(&vm->regions, start, end, &gone, &n)
		      : regions_remove(&vm->regions, start, end, &gone, &n);
	pthread_rwlock_unlock(&vm->map_lock);
	if (rc || !n)
		return rc;
	rc = vm_teardown_range(vm, gone, n, gaps);
	free(gone);
	return rc;
}

bool vm_covered(struct lp_vm *vm, uintptr_t start, uintptr_t end)
{
	pthread_rwlock_rdlock(&vm->map_lock);
	bool ok = regions_cover(&vm->regions, start, end);
	pthread_rwlock_unlock(&vm->map_lock);
	return ok;
}

static int check_prot(int prot)
{
	return prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC) ? -EINVAL : 0;
}

int vm_map_region(struct lp_vm *vm, uintptr_t at, int mflags, size_t len,
		  int prot, enum lp_region_kind kind, struct lp_file *file,
		  uint64_t off, bool shared, const struct lp_initializer *init,
		  void **addr)
{
	if (!vm || !addr || len == 0 || check_prot(prot)) {
		file_put(file);
		return -EINVAL;
	}
	if (len > SIZE_MAX - LP_PG) {
		file_put(file);
		return -ENOMEM;
	}
	len = (len + LP_PG - 1) & ~(LP_PG - 1);

	void *p = mmap((void *)at, len, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | mflags, -1, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		file_put(file);
		return e;
	}
	uintptr_t start = (uintptr_t)p;
	struct lp_region *r = region_new(start, start + len, prot, kind);
	int rc = r ? 0 : -ENOMEM;
	if (!rc) {
		r->file = file;
		file = NULL;
		r->off = off;
		r->shared = shared;
		if (init)
			r->init = *init;
		/* Our pages are 4 KiB each; a child of fork() must not see
		 * them half-served (see the header). */
		(void)madvise(p, len, MADV_NOHUGEPAGE);
		if (!(vm->vmflags & VMF_FORK))
			(void)madvise(p, len, MADV_DONTFORK);
		if (atomic_load(&vm->lock_future))
			(void)prim_munlock(p, len);
		rc = prim_uffd_register(vm->uffd, start, len,
					UFFDIO_REGISTER_MODE_MISSING |
						UFFDIO_REGISTER_MODE_WP);
	}
	if (!rc) {
		pthread_rwlock_wrlock(&vm->map_lock);
		rc = regions_insert(&vm->regions, r);
		pthread_rwlock_unlock(&vm->map_lock);
		if (rc)
			(void)prim_uffd_unregister(vm->uffd, start, len);
	}
	if (rc) {
		if (r)
			region_put(r);
		file_put(file);
		munmap(p, len);
		return rc;
	}
	*addr = p;
	return 0;
}

int vm_sync_range(struct lp_vm *vm, uintptr_t start, uintptr_t end)
{
	struct lp_region *todo[64];
	int first = 0;

	/* Regions are taken a few at a time: a sync never holds the map lock
	 * across I/O. */
	for (uintptr_t at = start; at < end;) {
		size_t n = 0;
		pthread_rwlock_rdlock(&vm->map_lock);
		for (size_t i = 0; i < vm->regions.n && n < 64; i++) {
			struct lp_region *r = vm->regions.v[i];
			if (r->end <= at || r->start >= end)
				continue;
			if (r->kind == RK_FILE && r->shared) {
				region_get(r);
				todo[n++] = r;
			}
		}
		pthread_rwlock_unlock(&vm->map_lock);
		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			struct lp_region *r = todo[i];
			uintptr_t s = r->start > at ? r->start : at;
			uintptr_t e = r->end < end ? r->end : end;
			int rc = sync_region(vm, r, s, e);
			if (rc && !first)
				first = rc;
			if (r->end > at)
				at = r->end;
			region_put(r);
		}
	}
	return first;
}
