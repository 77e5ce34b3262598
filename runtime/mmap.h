/* SPDX-License-Identifier: MIT */
/*
 * The program's memory system calls, served inside the runtime (mmap.c),
 * for the program host (host.c).  Each has the kernel call's semantics and
 * result (an address, 0, or -errno).  Called from one host thread.
 */
#ifndef LP_MMAP_H
#define LP_MMAP_H

#include "core.h"

/* Whether any managed region overlaps [addr, addr+len). */
bool vm_overlaps(struct lp_vm *vm, uintptr_t addr, size_t len);
/* mmap(2) of private memory, managed: anonymous (file NULL, init NULL), a
 * private file mapping (file referenced; taken even on failure), or lazily
 * initialised pages (init). */
long vm_mmap(struct lp_vm *vm, uintptr_t addr, size_t len, int prot, int flags,
	     struct lp_file *file, uint64_t off, const struct lp_initializer *init);
/* munmap(2): managed pages are destroyed, everything is unmapped. */
int vm_munmap(struct lp_vm *vm, uintptr_t addr, size_t len);
/* madvise(MADV_DONTNEED): managed pages come back as their region makes
 * them (zero; file bytes).  advice: also drop the page-table entries with
 * it (MADV_DONTNEED, or MADV_DONTNEED_LOCKED for locked memory: our own
 * address space); 0: not (a forked child's kernel call does it itself). */
int vm_discard(struct lp_vm *vm, uintptr_t addr, size_t len, int advice);
/* The program asked madvise(MADV_WIPEONFORK) of managed memory (the
 * kernel does it): its forked children must then get zeros there, not our
 * copies of its pages (fork.c reads which mappings at each fork). */
void vm_wipe_on_fork(struct lp_vm *vm);
/* mlock2(2) of a range with managed memory, and mlockall(2), made by the
 * program's pager (its address space): the kernel checks and locks, on
 * fault only; then managed memory and our own areas are unlocked again,
 * since we page them (a populate would wait on our registered areas for
 * ever, and a locked page can neither be dropped nor moved out).
 * MCL_FUTURE locks on fault (a populate at mmap would fill managed
 * memory behind our back): regions made later are unlocked likewise.
 * 0 or -errno. */
long vm_mlock(struct lp_vm *vm, uintptr_t addr, size_t len, unsigned flags);
long vm_mlockall(struct lp_vm *vm, int flags);
/* mremap(2) (MREMAP_DONTUNMAP is refused on managed memory). */
long vm_mremap(struct lp_vm *vm, uintptr_t old, size_t oldlen, size_t newlen,
	       int flags, uintptr_t want);
/* A forked child's munmap (or mapping over) [start, start+len), before the
 * kernel acts: its pages and regions leave our table (nothing unmapped). */
void vm_child_forget(struct lp_vm *vm, uintptr_t start, size_t len);
/* A forked child's mremap of [old, old+oldlen), before the kernel acts
 * (it is not served by us), and a growth in place, if that is what the
 * kernel does, known to the child's regions.  With table (the host holds
 * the mover until it returns: vm_child_move_drop() if it did not move),
 * a move takes our table along at its event (vm_child_move_table());
 * without, every page is made present for the kernel's move, and the
 * moved mapping is the kernel's. */
int vm_child_mremap_prep(struct lp_vm *vm, struct lp_handler *h, uintptr_t old,
			 size_t oldlen, size_t newlen, int flags, bool table);
/* Child vm c may have new memory: its evictor looks at the child's maps
 * at once, and again for a while (fork.c, "Memory a child maps"). */
void vm_child_look_soon(struct lp_vm *c);
/* The kernel moved a forked child's mapping of note m (its
 * UFFD_EVENT_REMAP) to `to`, the table noted to go with it: the regions
 * and page structs go there (the vm frozen meanwhile). */
void vm_child_move_table(struct lp_vm *vm, const struct lp_remap_note *m, uintptr_t to);
/* The kernel moved a forked child's memory to [to, to + len) (its
 * UFFD_EVENT_REMAP, read by handler h): the moved mapping is the kernel's,
 * but the evictor may have taken it as new memory meanwhile (adopt, in
 * fork.c, reading the child's maps between the move and the event) and
 * evicted pages of it, whose faults would no longer come to us once it is
 * unregistered: those pages come back first, then the range leaves our
 * table.  The range it left, [from, from + left), leaves it too (its pages
 * left at the prep: vm_child_mremap_prep()), and new memory mapped there
 * is looked for. */
void vm_child_moved(struct lp_vm *vm, struct lp_handler *h, uintptr_t from, size_t left,
		    uintptr_t to, size_t len);

#endif /* LP_MMAP_H */
