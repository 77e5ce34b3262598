/* SPDX-License-Identifier: MIT */
/*
 * The evictor (evict.c): one thread per vm that keeps free frames between
 * two watermarks by parking and writing out victims.
 */
#ifndef LP_EVICT_H
#define LP_EVICT_H

#include "core.h"

int evictor_start(struct lp_vm *vm);
void evictor_stop(struct lp_vm *vm);
/* Ask the evictor to make room (cheap when already asked). */
void evictor_kick(struct lp_vm *vm);

#endif /* LP_EVICT_H */
