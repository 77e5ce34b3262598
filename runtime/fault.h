/* SPDX-License-Identifier: MIT */
/*
 * The fault path (fault.c): handler threads that read the userfaultfd and
 * serve each fault, and handler contexts for other threads.
 */
#ifndef LP_FAULT_H
#define LP_FAULT_H

#include "core.h"

/* Tests (white-box): fn runs in a handler about to zero-fill a missing
 * fault on a page it takes for mapped (a stale message, most often), to
 * widen the window a preempted handler leaves there.  NULL: none. */
void fault_set_stale_hook(void (*fn)(uintptr_t addr));
/* Tests (white-box): fn runs in a handler that has just installed a
 * faulting page at addr and let it go, before it fills ahead or around
 * it: the window in which the page's region can be unmapped.  NULL: none. */
void fault_set_handoff_hook(void (*fn)(uintptr_t addr));
int handlers_start(struct lp_vm *vm);
void handlers_stop(struct lp_vm *vm);


/* A handler context for a thread of the host, and a fault served
 * on its behalf. */
struct lp_handler *handler_new(struct lp_vm *vm);
void handler_free(struct lp_handler *h);
void vm_fault_in(struct lp_handler *h, uintptr_t addr);

/* Pin the page at addr of h's vm: make it resident and writable and keep
 * it so (the evictor passes it by) until vm_unpin().  For what the kernel
 * writes where it cannot fault: an exiting thread's clear of its tid word.
 * From a thread that is no handler of the vm (h: a handler context of its
 * own).  0, -ENOENT (not in a managed region), -EAGAIN (could not). */
int vm_pin(struct lp_handler *h, uintptr_t addr);
void vm_unpin(struct lp_vm *vm, uintptr_t addr);

#endif /* LP_FAULT_H */
