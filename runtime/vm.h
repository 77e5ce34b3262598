/* SPDX-License-Identifier: MIT */
/*
 * The life of an lp_vm (vm.c): creation and destruction, mapping a region
 * and tearing one down, writing back shared pages.  The state itself is
 * struct lp_vm (core.h).
 */
#ifndef LP_VM_H
#define LP_VM_H

#include "core.h"

int vm_create(struct lp_vm **out, const struct lp_config *cfg,
	      unsigned vmflags);
/* Which part of vm_create failed, for a message that names the cause. */
struct vm_failure {
	enum {
		VM_PART_NONE,   /* it did not fail */
		VM_PART_CONFIG, /* cfg refused (check_config, policy) */
		VM_PART_ENV,    /* env: the malformed LAZYPAGE_* variable */
		VM_PART_UFFD,   /* userfaultfd missing or refused */
		VM_PART_SWAP,   /* the swap file (cfg->swap_path) */
		VM_PART_SYSTEM, /* anything else: memory, threads, io_uring */
	} part;
	const char *env;
};
int vm_create_why(struct lp_vm **out, const struct lp_config *cfg,
		  unsigned vmflags, struct vm_failure *why);
/* The locks and descriptors of an lp_vm (vm.c), for child vms too. */
void vm_init_common(struct lp_vm *vm);
void vm_fini_common(struct lp_vm *vm);

/* Unmap and destroy the pages of [start, end) of the regions in gone[]:
 * write back shared dirty pages, wait for owners, free frames and slots
 * (vm.c; also used by destroy). */
int vm_teardown_range(struct lp_vm *vm, struct lp_region *const *gone,
		      size_t ngone);

/* Reserve len bytes at `at` (a hint, or with mflags MAP_FIXED* the place),
 * register them and publish a region (takes the file reference, even on
 * failure).  *addr gets the address.  0 or -errno. */
int vm_map_region(struct lp_vm *vm, uintptr_t at, int mflags, size_t len,
		  int prot, enum lp_region_kind kind, struct lp_file *file,
		  uint64_t off, bool shared, const struct lp_initializer *init,
		  void **addr);
/* Destroy every page struct of [start, end), waiting for their owners:
 * frames and slots are released; the mapping itself is left alone. */
void vm_destroy_pages(struct lp_vm *vm, uintptr_t start, uintptr_t end);

/* Write back the dirty pages of shared file regions in [start, end). */
int vm_sync_range(struct lp_vm *vm, uintptr_t start, uintptr_t end);

#endif /* LP_VM_H */
