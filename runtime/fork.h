/* SPDX-License-Identifier: MIT */
/*
 * Forked children (fork.c): with VMF_FORK a vm serves the copy of its
 * address space that fork() gives a child process, through a child vm of
 * its own; the vm keeps its child vms, counts the forks it has served, and
 * answers the host's questions about them (the host never takes their
 * lock).  Freezing the pages while the copy is taken is vm.c's
 * (vm_freeze).
 */
#ifndef LP_FORK_H
#define LP_FORK_H

#include "core.h"

/* Serve a UFFD_EVENT_FORK: build, start and keep a child vm for the new
 * address space behind ufd (taken).  A vm that serves forks has it as its
 * fork_event hook.  Context: a handler of vm. */
void vm_fork_event(struct lp_vm *vm, int ufd);
/* Wait (up to timeout_us) until vm has served more than `seen` forks. */
int vm_wait_fork(struct lp_vm *vm, uint64_t seen, int timeout_us);
/* The fork events read so far from vm's userfaultfd; and, once a forker
 * has left its call, whether it certainly sent none (no read since
 * `seen` of these, and none half done): its fork failed. */
uint64_t vm_forks_read(struct lp_vm *vm);
bool vm_fork_unread(struct lp_vm *vm, uint64_t seen);
/* Whether a fork event beyond `seen` (forks_started) was taken. */
bool vm_fork_started(struct lp_vm *vm, uint64_t seen);
/* A forked child (child vm c) made an anonymous private mmap, which the
 * kernel makes (tid: its calling thread, waiting for the seccomp host's
 * answer): its evictor adopts the new memory soon ("Memory a child maps",
 * fork.c).  Nothing for a child vm without a budget. */
void vm_child_mapped(struct lp_vm *c, pid_t tid);
/* Whether child vm c adopts memory its child maps (it has a budget). */
bool vm_child_adopts(const struct lp_vm *c);
/* The exact way (the host holds the calling thread, seccomp.c).  Before
 * the call is let go: what the child has mapped (once), as
 * vm_child_mapped() reads it.  Then, the call made (thread tid held
 * stopped as it returns): the anonymous private writable mapping of len
 * bytes at lo it made, not touched yet, is adopted now, what no region
 * has of it.  0; -ENOTSUP (c adopts nothing), -EINVAL, -errno, or -ENOMEM
 * (nothing taken).  On an error the caller falls back on
 * vm_child_mapped(). */
void vm_child_maps_before(struct lp_vm *c, pid_t tid);
int vm_child_adopt_now(struct lp_vm *c, pid_t tid, uintptr_t lo, size_t len);
/* The same once the thread has run on a little (held later, its result
 * lost): whatever is new in its mappings, its pages touched meanwhile
 * beyond the budget until the evictor takes them in.  0, -ENOTSUP,
 * -errno, -EAGAIN (a move is handed over meanwhile), or -ENOMEM (nothing
 * new). */
int vm_child_adopt_scan(struct lp_vm *c, pid_t tid);
/* When the host cannot hold the thread because c's evictor traces it:
 * the mmap (of len bytes, thread tid) is handed over, h the host's own
 * (it outlives c), one at a time; c's evictor adopts the range at the
 * thread's stop, before it lets it go.  false: not handed over (c adopts
 * nothing, or h is in use). */
bool vm_child_hand_over(struct lp_vm *c, struct lp_handoff *h, pid_t tid, size_t len);
/* The host's look at h: 1 the evictor took it (done; h->ret the call's
 * result, h free again), 0 nothing handed over, -EAGAIN not done yet.
 * `withdraw`: not taken yet, it is withdrawn (0); taken, waited for (1).
 * Context: any thread, no lock. */
int vm_child_hand_poll(struct lp_handoff *h, bool withdraw);
/* Whether [lo, hi) of process tid is mapped without a hole (the kernel's
 * mlock refuses a hole with ENOMEM); when its mappings cannot be read,
 * true: the caller cannot tell. */
bool vm_child_range_mapped(pid_t tid, uintptr_t lo, uintptr_t hi);
/* Child vms (and theirs) whose process has ended (gone, or a zombie:
 * its memory is) are marked so at once, without waiting for their
 * evictor to notice: the next vm_reap_kids() frees them. */
void vm_note_gone_kids(struct lp_vm *vm);
/* Free the child vms of vm whose process is gone (all: every one), and
 * the gone ones among the children of those that live on. */
void vm_reap_kids(struct lp_vm *vm, bool all);
/* Stop and free a child vm, and its own children: its process is gone (or
 * we are), nothing to unmap. */
void vm_child_destroy(struct lp_vm *vm);

/*
 * What the host asks about the forked children of vm (loader/), instead of
 * taking kids_lock itself.
 */
/* The fork events vm has finished (served) and taken (started) so far:
 * the `seen` of vm_wait_fork() and vm_fork_started(). */
void vm_fork_counts(struct lp_vm *vm, uint64_t *served, uint64_t *started);
/* pid is the process of the child vm of fork event number seq (the
 * served count before it, plus one; the host finds the process in /proc
 * after the fork).  0; -EEXIST when pid names another child vm already
 * (a child /proc did not list before the fork: not ours) or that one is
 * named; -ENOENT without such a child vm.  (Not "the newest": once the
 * vm thaws, the program may fork again before the host has named the
 * first child, and that name went to the second child's vm.) */
int vm_name_kid(struct lp_vm *vm, uint64_t seq, pid_t pid);
/* Whether a child vm of vm is named for process pid. */
bool vm_kid_named(struct lp_vm *vm, pid_t pid);
/* Whether the child vm of fork event number seq is there, unnamed, and
 * its address space not known gone: the host may still find its pid. */
bool vm_kid_unnamed(struct lp_vm *vm, uint64_t seq);
/* The last fork served could not get a child vm: the child's userfaultfd,
 * kept open so that its faults wait (the caller kills the child, then
 * closes it), or -1.  Taken: the next call returns -1. */
int vm_fork_unserved(struct lp_vm *vm);
/* The child vm, at any depth below vm, whose process match() accepts
 * (called with each named child's pid, under its parent's kids_lock), or
 * NULL.  A child found whose address space is gone (its process executed
 * another program) is marked dead and not returned.  Children of a dead
 * one are not searched. */
struct lp_vm *vm_find_kid(struct lp_vm *vm,
			  bool (*match)(pid_t pid, void *arg), void *arg);
/* How many child vms vm holds: with vm_reap_kids(vm, false) first, how
 * many of its forked children still need their memory served. */
unsigned vm_kids_count(struct lp_vm *vm);
/* Send sig to the process of every child vm below vm (NULL: none).  A
 * kids_lock held by a stuck thread is waited for at most 100 ms, and its
 * subtree is then skipped: this also runs on the way out. */
void vm_signal_kids(struct lp_vm *vm, int sig);

#endif /* LP_FORK_H */
