/* SPDX-License-Identifier: MIT */
/*
 * Forked children (fork.c): a child vm serves the copy of an address space
 * that fork() gave a child process; and freezing a vm while that copy is
 * taken.
 */
#ifndef LP_FORK_H
#define LP_FORK_H

#include "core.h"

/* Stop every fault service and evictor round (faults read meanwhile are
 * deferred) until vm_thaw(): the pages hold still. */
void vm_freeze(struct lp_vm *vm);
void vm_thaw(struct lp_vm *vm);
/* Serve a UFFD_EVENT_FORK: a child vm for the new address space behind
 * ufd.  Context: a handler of vm.  */
void vm_fork_event(struct lp_vm *vm, int ufd);
/* Wait (up to timeout_ms) until vm has served more than `seen` forks. */
int vm_wait_fork(struct lp_vm *vm, uint64_t seen, int timeout_ms);
/* Whether a fork event beyond `seen` (forks_started) was taken. */
bool vm_fork_started(struct lp_vm *vm, uint64_t seen);
/* The child vms of vm, joined and freed when their process is gone. */
void vm_reap_kids(struct lp_vm *vm, bool all);
/* Whether a child vm's address space still exists. */
bool vm_alive(struct lp_vm *vm);
void vm_child_destroy(struct lp_vm *vm);

#endif /* LP_FORK_H */
