/* SPDX-License-Identifier: MIT */
/*
 * Verify mode (LP_CFG_VERIFY, LAZYPAGE_VERIFY=1, vmrun --verify): a
 * checksum of every page taken when its content leaves memory (parked into
 * its kva slot: the first step of every eviction) and checked when the
 * content comes back (swap-in, zero fill, file read, un-park, readahead,
 * the copy of a parked page into a fork child).  At a mismatch: a report on
 * stderr (the address, the page's last state changes, where the content
 * came from and by which path) and a count in lp_stats.verify_mismatches;
 * the page is installed as read, the program goes on.
 *
 * Cost: nothing when off (a NULL test of vm->vf at each hook; page_set_state
 * and spt_remove test bits of pg->flags that are zero).  When on: one
 * xxh64 of 4 KiB (~0.3 us) per park and per check, and a side table keyed
 * by page number (struct lp_page stays 40 bytes) with a ring of the last
 * VF_RING state changes of each page.
 *
 * What is checked: content that must come back identical.  Not checked:
 * pages refilled by an LP_INIT_REFILL initializer (vmrun's program image:
 * a file that changes underneath legitimately changes them), and a file
 * page whose file changed since the page left (mtime/ctime) or that does
 * not lie wholly inside its file (bytes past the end are not kept).
 *
 * Locks: the table's stripe locks are leaves (taken under the SPT stripe
 * lock, nothing taken under them).
 */
#ifndef LP_VERIFY_H
#define LP_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "lazypage/lazypage.h"

struct lp_vm;
struct lp_page;
struct lp_region;
struct lp_verify;

/* Paths that bring content back: enum lp_fault_kind for load(), and: */
enum {
	VF_RESTORE = LP_FAULT_KINDS, /* un-park from the kva slot */
	VF_READAHEAD,                /* swap readahead */
	VF_FORK,                     /* parked page copied into a fork child */
};

/* pg->flags bits 9..15: the page's verify table (an index into a table of
 * tables), so that page_set_state() can find it without a vm.  (Bit 8 is
 * PGF_SHARED_IN.) */
#define PGF_VF_SHIFT 9
#define PGF_VF_MASK 0xfe00u

/* Create vm->vf when vm->flags has LP_CFG_VERIFY (a child vm: shares its
 * root's counters).  0 or -ENOMEM. */
int verify_create(struct lp_vm *vm);
/* After every page of vm is gone (or no thread can touch one). */
void verify_destroy(struct lp_vm *vm);

/* Under pg's stripe lock: pg's content, now at `content`, leaves memory. */
void verify_left(struct lp_vm *vm, const struct lp_page *pg,
		 const void *content);
/* Under pg's stripe lock: pg came back with `content` by `path`: check it
 * against what left (if anything was recorded and not yet checked).  r:
 * the page's region for a file page (its file's times), else NULL. */
void verify_back(struct lp_vm *vm, const struct lp_page *pg,
		 const void *content, int path, struct lp_region *r);
/* The content of parked page vpn, about to be copied into a fork child:
 * check it, the parent's record staying (the page is still parked). */
void verify_peek(struct lp_vm *vm, uint64_t vpn, const void *content,
		 int path);
/* Child vm c takes over its parent's record of evicted page vpn (fork). */
void verify_inherit(struct lp_vm *c, uint64_t vpn);
/* mremap: records of [from, from+len) move to [to, to+len).  Call before
 * the page structs are moved (spt_remove() forgets a page's record). */
void verify_move(struct lp_vm *vm, uintptr_t from, uintptr_t to, size_t len);

/* Hooks of page_set_state() and spt_remove(), through pg->flags. */
void verify_note(const struct lp_page *pg, unsigned from, unsigned to);
void verify_forget(const struct lp_page *pg);

/* The counters, into st. */
void verify_stats(struct lp_vm *vm, struct lp_stats *st);

/* xxh64 of one page (exposed for tests). */
uint64_t verify_sum(const void *page);

#endif /* LP_VERIFY_H */
