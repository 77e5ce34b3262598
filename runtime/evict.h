/* SPDX-License-Identifier: MIT */
/*
 * The evictor (evict.c): one thread per vm that keeps free frames between
 * two watermarks by parking and writing out victims.  It is asked for room
 * by the frame table only, through the wake callback evictor_start()
 * installs (frames_set_wake()); evictor_stop() removes it.
 */
#ifndef LP_EVICT_H
#define LP_EVICT_H

#include "core.h"

/* Start the evictor of vm, when it has a budget (vm->fr.n): 0 or -errno;
 * evictor_stop() either way. */
int evictor_start(struct lp_vm *vm);
/* Stop it, once its writes in flight are done (vm->stopping set). */
void evictor_stop(struct lp_vm *vm);

#endif /* LP_EVICT_H */
