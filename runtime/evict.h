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
/* A vm that serves forks, with a budget: make what its forked children
 * need to be under one (the park area and the injection scratch, evict.c:
 * "A forked child's pages"), inherited by them; nothing if the kernel
 * cannot (vm->kid_park stays 0: children run without a budget).  Released
 * by evict_kids_release() when the vm is freed. */
void evict_kids_prepare(struct lp_vm *vm);
void evict_kids_release(struct lp_vm *vm);
/* Wake the evictor of vm for a round soon (it has something to look at). */
void evict_poke(struct lp_vm *vm);
/* Keep frames out of use (evicting to free them): a budget this vm shares
 * with others (vmrun's process tree) lends it only its table less these.
 * Wakes the evictor. */
void evict_set_hold(struct lp_vm *vm, uint32_t frames);
/* Draw on a budget shared with other vms (frames_share; NULL: stop), our
 * part of its sum kept in *mine, and our use below which it never stops
 * us. */
struct frame_share;
void evict_share(struct lp_vm *vm, struct frame_share *share, _Atomic uint64_t *mine,
		 uint64_t floor);
/* Whether faults wait for a frame now. */
bool evict_waiting(struct lp_vm *vm);
/* Frames in use now (resident pages and the tier's). */
uint64_t evict_resident(struct lp_vm *vm);
/* What the vm should give up for the budget it shares (frames_excess():
 * an idle vm while another's faults wait for room): its evictor starts
 * on it now.  For the pager of a program executed, whose faults wake no
 * evictor of another process. */
void evict_nudge(struct lp_vm *vm);

#endif /* LP_EVICT_H */
