/* SPDX-License-Identifier: MIT */
/*
 * The public API (lazypage.h): creating and destroying a vm, mapping and
 * unmapping regions, sync, statistics.  The top layer of the runtime: each
 * entry point checks its arguments and composes the modules below (vm.c
 * for a vm's life and its regions, fork.c for the child vms of a vm that
 * serves forks); nothing below calls up here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "verify.h"
#include "config.h"
#include "store.h"
#include "fork.h"
#include "policy.h"
#include "prim.h"
#include "vm.h"

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
	if (c->tier > LP_TIER_ZSTD || c->tier_share > 90)
		return -EINVAL;
	if (c->remote_replicas > 16 || c->reserved_int)
		return -EINVAL;
	if (c->flags &
	    ~(LP_CFG_STATS_AT_EXIT | LP_CFG_NO_READAHEAD | LP_CFG_ENCRYPT_SWAP |
	      LP_CFG_NO_PIN | LP_CFG_VERIFY | LP_CFG_SYNC_READS |
	      LP_CFG_MEM_PER_PROCESS | LP_CFG_SYNC_EVICT))
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(c->reserved) / sizeof(c->reserved[0]); i++)
		if (c->reserved[i])
			return -EINVAL;
	return 0;
}

/* The configuration a vm is made of, into *use: cfg (NULL: the defaults)
 * checked, its policy named.  The environment is checked too: a malformed
 * LAZYPAGE_* variable is an error, not a silent default. */
static int take_config(const struct lp_config *cfg, struct lp_config *use,
		       struct vm_failure *why)
{
	struct lp_config scratch;
	const char *bad = NULL;

	memset(&scratch, 0, sizeof(scratch));
	if (config_env(&scratch, &bad)) {
		why->part = VM_PART_ENV;
		why->env = bad;
		return -EINVAL;
	}
	if (cfg)
		*use = *cfg;
	else
		lp_config_init(use);
	int rc = check_config(use);
	if (rc)
		return rc;
	if (!use->policy)
		use->policy = "clock";
	return policy_find(use->policy) ? 0 : -ENOENT;
}

int vm_create_why(struct lp_vm **out, const struct lp_config *cfg,
		  unsigned vmflags, struct vm_failure *why)
{
	struct vm_failure ignored;
	struct lp_config use;
	struct lp_vm *vm;

	if (!why)
		why = &ignored;
	why->part = VM_PART_CONFIG;
	why->env = NULL;
	if (!out)
		return -EINVAL;
	*out = NULL;
	int rc = take_config(cfg, &use, why);
	if (rc)
		return rc;
	rc = vm_alloc(&vm, &(struct vm_spec){ .cfg = &use, .vmflags = vmflags },
		      why);
	if (rc)
		return rc;
	if (vmflags & VMF_FORK)
		vm->fork_event = vm_fork_event;
	rc = vm_start(vm);
	if (rc) {
		why->part = VM_PART_SYSTEM;
		lp_vm_destroy(vm);
		return rc;
	}
	*out = vm;
	return 0;
}

int vm_create(struct lp_vm **out, const struct lp_config *cfg, unsigned vmflags)
{
	return vm_create_why(out, cfg, vmflags, NULL);
}

int lp_vm_create(struct lp_vm **out, const struct lp_config *cfg)
{
	return vm_create(out, cfg, 0);
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
	vm_unmap_all(vm);
	vm_stop(vm);
	vm_reap_kids(vm, true);
	vm_free(vm);
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
	if (!vm || !addr || len == 0 || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) || off < 0 ||
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

	int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0)
		return -errno;
	struct lp_file *f = file_new(mine, (uint64_t)st.st_size);
	if (!f)
		return -ENOMEM;
	return vm_map_region(vm, 0, 0, len, prot, RK_FILE, f, (uint64_t)off,
			     flags == LP_MAP_SHARED, NULL, addr);
}

int lp_unmap(struct lp_vm *vm, void *addr, size_t len)
{
	uintptr_t start = (uintptr_t)addr;

	if (vm && vm_foreign(vm))
		return -ECHILD;
	if (!vm || len == 0 || (start & (LP_PG - 1)) || (len & (LP_PG - 1)) ||
	    start + len < start)
		return -EINVAL;
	return vm_unmap(vm, start, start + len, false);
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
	if (!vm_covered(vm, start, start + len))
		return -EINVAL;
	return vm_sync_range(vm, start, start + len);
}

/* lp_stats_get(), with the forked children that ended (kids) or only
 * what this vm counted itself. */
static int stats_get(struct lp_vm *vm, struct lp_stats *st, bool kids)
{
	struct lp_tstats *blocks[LP_MAX_THREADS + 3];
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
	if (kids)
		blocks[n++] = &vm->kids_st; /* (the forked children that ended) */
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
	/* The memory stores of the chain (the compressed pool). */
	const struct lp_chain *c = &vm->swap->chain;
	for (unsigned i = 0; i + 1 < c->n; i++) {
		struct lp_store_stats z;
		c->s[i]->ops->stats(c->s[i], &z);
		st->tier_stores += z.stores;
		st->tier_rejects += z.rejects;
		st->tier_bypasses += z.bypasses;
		st->tier_loads += z.loads;
		st->tier_writebacks += z.flushed;
		st->tier_pages += z.entries;
		st->tier_bytes += z.bytes;
		st->tier_frames += z.pages;
		st->tier_peak_frames += z.peak_pages;
		st->tier_limit_frames += z.limit_pages;
	}
	/* The last store, when it is (or ends with) the remote one. */
	const struct lp_store *last = chain_last(c);
	if (last && strstr(last->ops->name, "remote")) {
		struct lp_store_stats z;
		last->ops->stats((struct lp_store *)last, &z);
		st->remote_pages = z.entries;
		st->remote_errors = z.rejects;
	}
	st->last_error = atomic_load(&vm->last_error);
	verify_stats(vm, st);
	return 0;
}

int lp_stats_get(struct lp_vm *vm, struct lp_stats *st)
{
	return stats_get(vm, st, true);
}

int vm_stats_own(struct lp_vm *vm, struct lp_stats *st)
{
	return stats_get(vm, st, false);
}
