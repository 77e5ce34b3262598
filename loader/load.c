/* SPDX-License-Identifier: MIT */
/*
 * Loading a program into managed memory (Pintos' load_segment and
 * lazy_load_segment): each PT_LOAD range becomes a region of lazily
 * initialised pages whose first touch reads the file bytes and zero-fills
 * the rest (lp_elf_fill_page), with the segment's protection.  Those pages
 * are refillable: unwritten code and data are dropped on eviction and read
 * again, written data goes to swap.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "loader/elf.h"
#include "loader/host.h"
#include "mmap.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

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
