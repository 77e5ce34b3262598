/* SPDX-License-Identifier: MIT */
/*
 * The top of the runtime (api.c): the public lp_* entry points of
 * lazypage.h, composed from the modules below, and the internal way to
 * create a vm that the loader uses (a vm that serves forks, a failure that
 * names its cause).
 */
#ifndef LP_API_H
#define LP_API_H

#include "vm.h"

/* lp_vm_create() with VMF_* flags (VMF_FORK: forked children are served,
 * fork.c); why (may be NULL) names the part that failed. */
int vm_create(struct lp_vm **out, const struct lp_config *cfg,
	      unsigned vmflags);
int vm_create_why(struct lp_vm **out, const struct lp_config *cfg,
		  unsigned vmflags, struct vm_failure *why);

/* lp_stats_get() without the figures of the forked children that ended
 * (each has its own: vm->kid_ended). */
int vm_stats_own(struct lp_vm *vm, struct lp_stats *st);

#endif /* LP_API_H */
