/* SPDX-License-Identifier: MIT */
/*
 * Loading a program into managed memory (Pintos' load_segment and
 * lazy_load_segment): each PT_LOAD range becomes a region of lazily
 * initialised pages whose first touch reads the file bytes and zero-fills
 * the rest (lp_elf_fill_page), with the segment's protection.  Those pages
 * are refillable: unwritten code and data are dropped on eviction and read
 * again, written data goes to swap.  Also the program's break, emulated on
 * a reserved range after the image.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "loader/elf.h"
#include "loader/host.h"
#include "mmap.h"
#include "prim.h"
#include "vm.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static uintptr_t page_up(uintptr_t a)
{
	return (a + LP_PG - 1) & ~(uintptr_t)(LP_PG - 1);
}

static int image_fill(void *page, void *buf, void *aux)
{
	const struct lp_image *img = aux;

	return lp_elf_fill_page(img->elf, (uintptr_t)page - img->bias, buf);
}

int image_load(struct lp_vm *vm, struct lp_image *img, uintptr_t extra)
{
	const struct lp_elf *e = img->elf;
	struct lp_elf_range *rg = NULL;
	unsigned n = 0;
	size_t span = e->hi - e->lo;
	void *p;

	int rc = lp_elf_layout(e, &rg, &n);
	if (rc)
		return rc;
	/* Reserve the whole image (and what follows it) first: the gaps
	 * between segments stay inaccessible, as the kernel leaves them. */
	if (e->type == ET_EXEC)
		p = mmap((void *)e->lo, span + extra, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				 MAP_FIXED_NOREPLACE, -1, 0);
	else
		p = mmap(NULL, span + extra, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		free(rg);
		return errno == EEXIST ? -EADDRINUSE : -ENOMEM;
	}
	img->bias = (uintptr_t)p - e->lo;
	img->lo = (uintptr_t)p;
	img->hi = (uintptr_t)p + span;

	struct lp_initializer init = { image_fill, img, LP_INIT_REFILL };
	for (unsigned i = 0; i < n && !rc; i++) {
		long r = vm_mmap(vm, img->bias + rg[i].start, rg[i].end - rg[i].start,
				 rg[i].prot, MAP_FIXED, NULL, 0, &init);
		if (r < 0)
			rc = (int)r;
	}
	free(rg);
	return rc;
}

int heap_reserve(struct lp_vm *vm, uintptr_t at, size_t len)
{
	vm->brk_start = page_up(at);
	vm->brk_limit = vm->brk_start + len;
	vm->brk_cur = vm->brk_end = vm->brk_start;
	return 0;
}

/*
 * brk(2): the break moves within the range reserved after the program
 * image; pages up to it are managed anonymous memory, made region by region
 * as it grows.  Failure leaves the break where it was and returns it, as
 * the kernel does (malloc then uses mmap).
 *
 * In a forked child the break cannot grow (we cannot map into its address
 * space, and the kernel's own break there is the pager's, far from the
 * program's): it moves only within what the child inherited.  The kernel
 * must never see such a brk: it would "shrink" its break from the pager's
 * down to the program's, unmapping everything between.
 */
long host_brk(struct lp_vm *vm, uintptr_t want, bool ours)
{
	if (!want || want < vm->brk_start || want > vm->brk_limit)
		return (long)vm->brk_cur;
	uintptr_t end = page_up(want);
	if (!ours) {
		if (end > vm->brk_end)
			return (long)vm->brk_cur;
		vm->brk_cur = want;
		return (long)want;
	}
	if (end > vm->brk_end) {
		long r = vm_mmap(vm, vm->brk_end, end - vm->brk_end,
				 PROT_READ | PROT_WRITE, MAP_FIXED, NULL, 0, NULL);
		if (r < 0)
			return (long)vm->brk_cur;
	} else if (end < vm->brk_end) {
		if (vm_munmap(vm, end, vm->brk_end - end))
			return (long)vm->brk_cur;
		/* Keep the range ours for the next growth. */
		(void)mmap((void *)end, vm->brk_end - end, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
			   -1, 0);
	}
	vm->brk_end = end;
	vm->brk_cur = want;
	return (long)want;
}
