/* SPDX-License-Identifier: MIT */
/*
 * The address-space object and the public API: create/destroy, mapping and
 * unmapping regions, sync, statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "prim.h"
#include "vm.h"
#include "fork.h"
#include "fault.h"
#include "evict.h"
#include "pagelife.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *lp_version(void)
{
	return STR(LP_VERSION_MAJOR) "." STR(LP_VERSION_MINOR) "." STR(
		LP_VERSION_PATCH);
}

/* 0.2 is the first release whose structs later minor releases keep (see
 * the header); 0.1's lp_stats and lp_initializer were laid out otherwise. */
#define LP_ABI_FIRST_MINOR 2

int lp_version_check(int major, int minor)
{
	if (major < 0 || minor < 0)
		return -EINVAL;
	if (major != LP_VERSION_MAJOR || minor > LP_VERSION_MINOR)
		return -ENOTSUP;
	if (major == 0 && minor < LP_ABI_FIRST_MINOR)
		return -ENOTSUP;
	return 0;
}

static int check_config(const struct lp_config *c)
{
	if (c->frames && (c->frames < LP_MIN_FRAMES || c->frames > UINT32_MAX / 2))
		return -EINVAL;
	if (c->threads > LP_MAX_THREADS || c->ref_scan > LP_MAX_REF_SCAN)
		return -EINVAL;
	if (c->swap_max && c->swap_max < LP_PAGE_SIZE)
		return -EINVAL; /* room for no page at all */
	if (c->flags &
	    ~(LP_CFG_STATS_AT_EXIT | LP_CFG_NO_READAHEAD | LP_CFG_ENCRYPT_SWAP |
	      LP_CFG_NO_PIN | LP_CFG_VERIFY | LP_CFG_SYNC_READS))
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]); i++)
		if (c->reserved[i])
			return -EINVAL;
	return 0;
}

static int open_uffd(struct lp_vm *vm)
{
	uint64_t have = 0;
	int rc = prim_uffd_features(&have);

	if (rc)
		return rc == -ENOSYS ? -ENOSYS : rc;
	if (!(have & UFFD_FEATURE_PAGEFAULT_FLAG_WP))
		return -ENOSYS; /* dirty tracking needs write-protect faults */
	uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_THREAD_ID;
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

int lp_vm_create(struct lp_vm **out, const struct lp_config *cfg)
{
	return vm_create(out, cfg, 0);
}

/* Locks and descriptors every vm has, before anything can fail. */
void vm_init_common(struct lp_vm *vm)
{
	pthread_rwlockattr_t ra;

	vm->uffd = vm->pidfd = vm->stop_fd = vm->ev.wake_fd = vm->thaw_fd = -1;
	vm->owner = getpid();
	pthread_rwlock_init(&vm->map_lock, NULL);
	pthread_mutex_init(&vm->api_lock, NULL);
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
}

void vm_fini_common(struct lp_vm *vm)
{
	if (vm->thaw_fd >= 0)
		close(vm->thaw_fd);
	free(vm->deferred);
	free(vm->kids);
	pthread_rwlock_destroy(&vm->map_lock);
	pthread_mutex_destroy(&vm->api_lock);
	pthread_rwlock_destroy(&vm->freeze_lock);
	pthread_mutex_destroy(&vm->defer_lock);
	pthread_mutex_destroy(&vm->kids_lock);
	pthread_cond_destroy(&vm->kids_cond);
}

int vm_create(struct lp_vm **out, const struct lp_config *cfg, unsigned vmflags)
{
	return vm_create_why(out, cfg, vmflags, NULL);
}

int vm_create_why(struct lp_vm **out, const struct lp_config *cfg,
		  unsigned vmflags, struct vm_failure *why)
{
	struct vm_failure ignored;
	struct lp_config defaults, scratch;
	const char *bad = NULL;
	int rc;

	if (!why)
		why = &ignored;
	why->part = VM_PART_CONFIG;
	why->env = NULL;
	if (!out)
		return -EINVAL;
	*out = NULL;
	/* A malformed LAZYPAGE_* variable is an error, not a silent default. */
	memset(&scratch, 0, sizeof(scratch));
	if (config_env(&scratch, &bad)) {
		why->part = VM_PART_ENV;
		why->env = bad;
		return -EINVAL;
	}
	if (!cfg) {
		lp_config_init(&defaults);
		cfg = &defaults;
	}
	rc = check_config(cfg);
	if (rc)
		return rc;
	const char *policy = cfg->policy ? cfg->policy : "clock";
	if (!policy_find(policy))
		return -ENOENT;
	why->part = VM_PART_SYSTEM;

	struct lp_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm_init_common(vm);
	vm->vmflags = vmflags;
	vm->swap_max = cfg->swap_max;
	vm->nthreads = cfg->threads ? cfg->threads : prim_ncpus();
	if (vm->nthreads > LP_MAX_THREADS)
		vm->nthreads = LP_MAX_THREADS;
	vm->flags = cfg->flags;
	vm->ref_scan = cfg->ref_scan ? cfg->ref_scan : LP_DEFAULT_REF_SCAN;
	vm->policy_name = strdup(policy);
	if (!vm->policy_name) {
		rc = -ENOMEM;
		goto fail;
	}
	vm->zero = aligned_alloc(LP_PG, LP_PG);
	if (!vm->zero) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(vm->zero, 0, LP_PG);
	/* Never written: reading it maps the kernel's zero page, no memory. */
	vm->zeros = mmap(NULL, (size_t)LP_RA_MAX << LP_PAGE_SHIFT, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->zeros == MAP_FAILED) {
		vm->zeros = NULL;
		rc = -ENOMEM;
		goto fail;
	}

	why->part = VM_PART_UFFD;
	rc = open_uffd(vm);
	if (rc)
		goto fail;
	why->part = VM_PART_SYSTEM;
	rc = prim_pidfd_self();
	vm->pidfd = rc >= 0 ? rc : -1;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->thaw_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0 || vm->thaw_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = spt_init(&vm->spt);
	if (!rc)
		rc = verify_create(vm);
	if (rc)
		goto fail;
	vm->fr_up = true;
	rc = frames_init(&vm->fr, &(struct lp_frames_cfg){
		.n = (uint32_t)cfg->frames, .policy = policy,
		.seed = (uint64_t)prim_now_ns(), .ra_max = LP_RA_MAX,
		.uffd = vm->uffd, .stopping = &vm->stopping,
		.freezing = &vm->freezing, .st = &vm->ev.st });
	if (rc)
		goto fail;
	why->part = VM_PART_SWAP;
	rc = swap_open(&vm->swap, cfg->swap_path, cfg->swap_max);
	if (rc)
		goto fail;
	why->part = VM_PART_SYSTEM;
	if ((cfg->flags & LP_CFG_ENCRYPT_SWAP) && (rc = swap_encrypt_enable(vm->swap)))
		goto fail;
	if (vmflags & VMF_FORK) {
		/* A page every child inherits, registered: a fill of it tells
		 * whether the child's address space still exists. */
		void *p = mmap(NULL, LP_PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED) {
			rc = -ENOMEM;
			goto fail;
		}
		vm->probe = (uintptr_t)p;
		rc = prim_uffd_register(vm->uffd, vm->probe, LP_PG,
					UFFDIO_REGISTER_MODE_MISSING);
		if (rc)
			goto fail;
	}
	rc = io_setup(&vm->api_io, 8);
	if (rc)
		goto fail;
	rc = handlers_start(vm);
	if (rc)
		goto fail;
	rc = evictor_start(vm);
	if (rc)
		goto fail;
	vm->ready = true;
	why->part = VM_PART_NONE;
	*out = vm;
	return 0;
fail:
	lp_vm_destroy(vm);
	return rc;
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
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
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

		bool wake = false;
		s = spt_lock(&vm->spt, vpns[i]);
		if (!rc) {
			pg->flags &= (uint16_t)~PGF_DIRTY;
			if (was == PG_RESIDENT)
				pg->flags |= PGF_WP;
		} else if (!first) {
			first = rc;
		}
		page_set_state(pg, was);
		if (page_take_waiters(pg)) {
			pthread_cond_broadcast(&s->settle);
			wake = true;
		}
		uintptr_t addr = page_addr(pg); /* pg may be reused once unlocked */
		spt_unlock(s);
		if (wake)
			page_wake(vm, addr);
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
			if (pg->state == PG_RESIDENT || pg->state == PG_PARKED)
				frame_release(&vm->fr, pg->frame);
			page_remove(vm, pg);
		}
		spt_unlock(s);
	}
	free(vpns);
}

int vm_teardown_range(struct lp_vm *vm, struct lp_region *const *gone,
		      size_t ngone)
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
		munmap((void *)gone[i]->start, gone[i]->end - gone[i]->start);
		region_put(gone[i]);
	}
	return rc;
}

void lp_vm_destroy(struct lp_vm *vm)
{
	/* In a child of fork(): every descriptor and lock of vm is the
	 * parent's (vm_foreign).  Nothing is touched; the child's copies of
	 * the memory and of the close-on-exec descriptors go with its exit
	 * or execve. */
	if (!vm || vm_foreign(vm))
		return;
	if ((vm->flags & LP_CFG_STATS_AT_EXIT) && vm->ready) {
		struct lp_stats st;
		if (lp_stats_get(vm, &st) == 0)
			lp_stats_print(&st, stderr, 0);
	}
	pthread_rwlock_wrlock(&vm->map_lock);
	struct lp_regions all = vm->regions;
	memset(&vm->regions, 0, sizeof(vm->regions));
	pthread_rwlock_unlock(&vm->map_lock);
	if (all.n)
		(void)vm_teardown_range(vm, all.v, all.n);
	free(all.v);

	atomic_store(&vm->stopping, true);
	if (vm->fr_up) {
		pthread_mutex_lock(&vm->fr.lock);
		pthread_cond_broadcast(&vm->fr.cond);
		pthread_mutex_unlock(&vm->fr.lock);
	}
	evictor_stop(vm);
	handlers_stop(vm);
	vm_reap_kids(vm, true);
	if (vm->probe) {
		(void)prim_uffd_unregister(vm->uffd, vm->probe, LP_PG);
		munmap((void *)vm->probe, LP_PG);
	}
	io_teardown(&vm->api_io);
	if (vm->fr_up)
		frames_fini(&vm->fr);
	swap_close(vm->swap);
	if (vm->uffd >= 0)
		close(vm->uffd);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	verify_destroy(vm);
	if (vm->spt.bucket)
		spt_fini(&vm->spt);
	regions_fini(&vm->regions);
	vm_fini_common(vm);
	free(vm->policy_name);
	free(vm->zero);
	if (vm->zeros)
		munmap(vm->zeros, (size_t)LP_RA_MAX << LP_PAGE_SHIFT);
	free(vm);
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

int lp_map_anon(struct lp_vm *vm, size_t len, int prot, void **addr)
{
	if (vm && vm_foreign(vm))
		return -ECHILD;
	return vm_map_region(vm, 0, 0, len, prot, RK_ANON, NULL, 0, false, NULL,
			     addr);
}

int lp_map_lazy(struct lp_vm *vm, size_t len, int prot,
		const struct lp_initializer *init, void **addr)
{
	if (vm && vm_foreign(vm))
		return -ECHILD;
	if (!init || !init->fill || (init->flags & ~LP_INIT_REFILL) ||
	    init->reserved_int)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(init->reserved) / sizeof(init->reserved[0]); i++)
		if (init->reserved[i])
			return -EINVAL;
	return vm_map_region(vm, 0, 0, len, prot, RK_LAZY, NULL, 0, false, init,
			     addr);
}

int lp_map_file(struct lp_vm *vm, int fd, off_t off, size_t len, int prot,
		int flags, void **addr)
{
	struct stat st;

	if (vm && vm_foreign(vm))
		return -ECHILD;
	if (!vm || !addr || len == 0 || check_prot(prot) || off < 0 ||
	    (off & (off_t)(LP_PG - 1)) ||
	    (flags != LP_MAP_PRIVATE && flags != LP_MAP_SHARED))
		return -EINVAL;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -EBADF;
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if (flags == LP_MAP_SHARED && (prot & PROT_WRITE) &&
	    (fl & O_ACCMODE) != O_RDWR)
		return -EACCES;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -ENODEV;

	struct lp_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (f->fd < 0) {
		int e = -errno;
		free(f);
		return e;
	}
	atomic_init(&f->refs, 1);
	atomic_init(&f->size, (uint64_t)st.st_size);
	return vm_map_region(vm, 0, 0, len, prot, RK_FILE, f, (uint64_t)off,
			     flags == LP_MAP_SHARED, NULL, addr);
}

int lp_unmap(struct lp_vm *vm, void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr;
	struct lp_region **gone;
	size_t ngone;

	if (vm && vm_foreign(vm))
		return -ECHILD;
	if (!vm || len == 0 || (start & (LP_PG - 1)) || (len & (LP_PG - 1)) ||
	    start + len < start)
		return -EINVAL;
	pthread_rwlock_wrlock(&vm->map_lock);
	int rc = regions_remove(&vm->regions, start, start + len, &gone, &ngone);
	pthread_rwlock_unlock(&vm->map_lock);
	if (rc)
		return rc;
	rc = vm_teardown_range(vm, gone, ngone);
	free(gone);
	return rc;
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

int lp_sync(struct lp_vm *vm, void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr;

	if (!vm)
		return -EINVAL;
	if (vm_foreign(vm))
		return -ECHILD;
	if (!addr && len == 0)
		return vm_sync_range(vm, 0, UINTPTR_MAX);
	if (len == 0 || (start & (LP_PG - 1)) || (len & (LP_PG - 1)) ||
	    start + len < start)
		return -EINVAL;
	pthread_rwlock_rdlock(&vm->map_lock);
	bool ok = regions_cover(&vm->regions, start, start + len);
	pthread_rwlock_unlock(&vm->map_lock);
	if (!ok)
		return -EINVAL;
	return vm_sync_range(vm, start, start + len);
}

int lp_stats_get(struct lp_vm *vm, struct lp_stats *st)
{
	struct lp_tstats *blocks[LP_MAX_THREADS + 2];
	unsigned n = 0;

	if (!vm || !st || !vm->ready)
		return -EINVAL;
	if (vm_foreign(vm))
		return -ECHILD;
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < vm->nh; i++)
		blocks[n++] = &vm->h[i].st;
	blocks[n++] = &vm->ev.st;
	blocks[n++] = &vm->api_st;
	st_sum(blocks, n, st);

	pthread_mutex_lock(&vm->fr.lock);
	st->resident_frames = vm->fr.used;
	st->peak_frames = vm->fr.peak;
	st->budget_frames = vm->fr.n;
	pthread_mutex_unlock(&vm->fr.lock);
	pthread_mutex_lock(&vm->swap->lock);
	st->swap_slots_used = vm->swap->inuse;
	st->swap_slots_peak = vm->swap->peak;
	pthread_mutex_unlock(&vm->swap->lock);
	st->last_error = atomic_load(&vm->last_error);
	verify_stats(vm, st);
	return 0;
}
