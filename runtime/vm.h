/* SPDX-License-Identifier: MIT */
/*
 * The life of an lp_vm (vm.c): allocating one and freeing it, starting and
 * stopping its threads, mapping a region and tearing regions down, writing
 * back shared pages, freezing its pages.  The state itself is struct lp_vm
 * (core.h); the public entry points that compose these are api.c's, the
 * forked children fork.c's.
 *
 * A vm's life, for a vm of its own (api.c) and a forked child's (fork.c)
 * alike:  vm_alloc -> (VMF_FORK: set vm->fork_event) -> vm_start -> ...
 * -> vm_stop -> (its child vms reaped: fork.c) -> vm_free.
 */
#ifndef LP_VM_H
#define LP_VM_H

#include <time.h>

#include "core.h"

/* Which part of creating a vm failed, for a message that names the cause. */
struct vm_failure {
	enum {
		VM_PART_NONE,   /* it did not fail */
		VM_PART_CONFIG, /* cfg refused (check_config, policy) */
		VM_PART_ENV,    /* env: the malformed LAZYPAGE_* variable */
		VM_PART_UFFD,   /* userfaultfd missing or refused */
		VM_PART_SWAP,   /* the swap file (cfg->swap_path) */
		VM_PART_REMOTE, /* the remote store (cfg->remote) */
		VM_PART_SYSTEM, /* anything else: memory, threads, io_uring */
	} part;
	const char *env;
};

/* What vm_alloc() makes a vm of: a configuration (a vm of its own), or a
 * parent and the userfaultfd the kernel gave for its forked child (a child
 * vm: the parent's configuration, its budget when it prepared one for its
 * children (evict_kids_prepare()), the parent's swap file, zero pages and
 * probe, which the parent outlives). */
struct vm_spec {
	const struct lp_config *cfg; /* checked, policy named (NULL: a child) */
	unsigned vmflags;            /* VMF_* (a child: the parent's) */
	struct lp_vm *parent;        /* a child vm: the vm it was forked from */
	int ufd;                     /* a child vm: its userfaultfd (taken,
				      * even on failure) */
};

/* A new vm with every resource of its own (userfaultfd, page and frame
 * tables, swap, API ring) and no thread.  0, or -errno and why->part (why
 * may be NULL) names what failed; nothing is left behind. */
int vm_alloc(struct lp_vm **out, const struct vm_spec *spec,
	     struct vm_failure *why);
/* Start vm's fault handlers and (a vm of its own) its evictor; vm is then
 * ready.  On failure the caller stops and frees it. */
int vm_start(struct lp_vm *vm);
/* Stop vm's threads (whatever vm_start started; no-op for the rest). */
void vm_stop(struct lp_vm *vm);
/* Free vm, its threads stopped and its child vms gone: its regions, pages,
 * tables, descriptors, and the shares it took (a child: of its parent's). */
void vm_free(struct lp_vm *vm);

/* Stop every fault service and evictor round (faults read meanwhile are
 * deferred) until vm_thaw(): the pages hold still (a fork copies them, an
 * mremap moves them). */
void vm_freeze(struct lp_vm *vm);
void vm_thaw(struct lp_vm *vm);

/* Reserve len bytes at `at` (a hint, or with mflags MAP_FIXED* the place),
 * register them and publish a region (takes the file reference, even on
 * failure).  *addr gets the address.  0 or -errno. */
int vm_map_region(struct lp_vm *vm, uintptr_t at, int mflags, size_t len,
		  int prot, enum lp_region_kind kind, struct lp_file *file,
		  uint64_t off, bool shared, const struct lp_initializer *init,
		  void **addr);
/* Unmap and destroy the pages of [start, end) of the regions in gone[]:
 * write back shared dirty pages, wait for owners, free frames and slots.
 * hold: leave each range reserved (PROT_NONE) rather than unmapped, for a
 * kernel call of the caller's that replaces or unmaps it next. */
int vm_teardown_range(struct lp_vm *vm, struct lp_region *const *gone,
		      size_t ngone, bool hold);
/* Take the regions of [start, end) out of the table and tear them down
 * (vm_teardown_range).  gaps: the range may hold gaps, else it must be
 * covered wholly (-EINVAL, nothing done); gaps is the program's call
 * (munmap, MAP_FIXED, MREMAP_FIXED), which the kernel makes next over the
 * whole range: the regions are held until then (hold). */
int vm_unmap(struct lp_vm *vm, uintptr_t start, uintptr_t end, bool gaps);
/* Tear every region of vm down (destroy). */
void vm_unmap_all(struct lp_vm *vm);
/* Whether regions cover [start, end) wholly. */
bool vm_covered(struct lp_vm *vm, uintptr_t start, uintptr_t end);
/* Destroy every page struct of [start, end), waiting for their owners:
 * frames and slots are released; the mapping itself is left alone. */
void vm_destroy_pages(struct lp_vm *vm, uintptr_t start, uintptr_t end);

/* Write back the dirty pages of shared file regions in [start, end). */
int vm_sync_range(struct lp_vm *vm, uintptr_t start, uintptr_t end);

#endif /* LP_VM_H */
