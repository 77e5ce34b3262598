/* SPDX-License-Identifier: MIT */
/* Frame table: the resident budget, the policy behind it, kva slots. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "prim.h"
#include "core.h"
#include "evict.h"

/* The policy clears a reference bit: unmap the page (through the evictor)
 * so that its next use faults and sets the bit again.  Under fr->lock. */
static bool host_clear_ref(struct lp_policy_host *h, uint32_t f)
{
	struct lp_vm *vm = h->ctx;
	struct lp_frames *fr = &vm->fr;
	struct lp_frame *fe = &fr->tab[f];

	if (!fe->page) {
		fr->ref[f] = 0;
		return true;
	}
	if (fr->sweep_left == 0)
		return false;
	fr->sweep_left--;
	fr->ref[f] = 0;
	if (!fe->busy && fr->nparkq < fr->n) {
		fe->busy = 1; /* the evictor parks it; it stays in the policy */
		fr->parkq[fr->nparkq++] = f;
	}
	return true;
}

int frames_init(struct lp_vm *vm, uint32_t n, const char *policy, uint64_t seed)
{
	struct lp_frames *fr = &vm->fr;
	int rc;

	memset(fr, 0, sizeof(*fr));
	pthread_mutex_init(&fr->lock, NULL);
	pthread_cond_init(&fr->cond, NULL);
	fr->n = n;
	if (!n)
		return 0;
	fr->pops = policy_find(policy ? policy : "clock");
	if (!fr->pops)
		return -ENOENT;
	fr->tab = calloc(n, sizeof(*fr->tab));
	fr->free = malloc(n * sizeof(*fr->free));
	fr->ref = calloc(n, 1);
	fr->parkq = malloc(n * sizeof(*fr->parkq));
	fr->relq = malloc(2 * (size_t)n * sizeof(*fr->relq));
	if (!fr->tab || !fr->free || !fr->ref || !fr->parkq || !fr->relq)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		fr->free[i] = n - 1 - i;
	fr->nfree = n;
	/* Keep free 1/32 of the budget, at least two readahead windows,
	 * at most 256 frames and at most a quarter of the budget. */
	fr->high = n / 32 > 2 * LP_RA_MAX ? n / 32 : 2 * LP_RA_MAX;
	if (fr->high > 256)
		fr->high = 256;
	if (fr->high > n / 4)
		fr->high = n / 4 ? n / 4 : 1;
	fr->low = fr->high / 2 ? fr->high / 2 : 1;
	fr->host.ref = fr->ref;
	fr->host.clear_ref = host_clear_ref;
	fr->host.ctx = vm;
	rc = policy_create(fr->pops, &fr->pol, n, &fr->host, seed);
	if (rc)
		return rc;

	size_t len = (size_t)n << LP_PAGE_SHIFT;
	void *kva = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (kva == MAP_FAILED)
		return -ENOMEM;
	fr->kva = (uintptr_t)kva;
	(void)madvise(kva, len, MADV_NOHUGEPAGE);
	(void)madvise(kva, len, MADV_DONTFORK);
	/* Registered like the regions (same protection bits), so that pages
	 * can be moved in and out without a copy. */
	return prim_uffd_register(vm->uffd, fr->kva, len,
				  UFFDIO_REGISTER_MODE_MISSING |
					  UFFDIO_REGISTER_MODE_WP);
}

void frames_fini(struct lp_vm *vm)
{
	struct lp_frames *fr = &vm->fr;

	if (fr->pol)
		policy_destroy(fr->pops, fr->pol);
	if (fr->kva) {
		size_t len = (size_t)fr->n << LP_PAGE_SHIFT;
		(void)prim_uffd_unregister(vm->uffd, fr->kva, len);
		munmap((void *)fr->kva, len);
	}
	free(fr->tab);
	free(fr->free);
	free(fr->ref);
	free(fr->parkq);
	free(fr->relq);
	free(fr->ovq);
	pthread_mutex_destroy(&fr->lock);
	pthread_cond_destroy(&fr->cond);
	memset(fr, 0, sizeof(*fr));
}

static void account(struct lp_frames *fr, int delta)
{
	fr->used = (uint64_t)((int64_t)fr->used + delta);
	if (fr->used > fr->peak)
		fr->peak = fr->used;
}

int frame_get(struct lp_vm *vm, uint32_t *f)
{
	struct lp_frames *fr = &vm->fr;
	bool waited = false, kick = false;

	*f = LP_NO_FRAME;
	pthread_mutex_lock(&fr->lock);
	if (!fr->n) {
		account(fr, 1);
		pthread_mutex_unlock(&fr->lock);
		return 0;
	}
	while (fr->nfree == 0) {
		if (atomic_load(&vm->stopping)) {
			pthread_mutex_unlock(&fr->lock);
			return -ESHUTDOWN;
		}
		if (atomic_load(&vm->freezing)) {
			pthread_mutex_unlock(&fr->lock);
			return -EAGAIN;
		}
		if (fr->stuck) {
			/* Nothing can be evicted (swap full, writes failing):
			 * keep the page anyway, beyond the budget, rather
			 * than lose data or stop the program. */
			fr->overflow++;
			account(fr, 1);
			pthread_mutex_unlock(&fr->lock);
			return 0;
		}
		if (!waited) {
			waited = true;
			st_add(&vm->ev.st, C_FRAME_WAIT, 1);
		}
		fr->waiting++;
		pthread_mutex_unlock(&fr->lock);
		evictor_kick(vm);
		pthread_mutex_lock(&fr->lock);
		if (fr->nfree == 0 && !fr->stuck && !atomic_load(&vm->stopping) &&
		    !atomic_load(&vm->freezing))
			pthread_cond_wait(&fr->cond, &fr->lock);
		fr->waiting--;
	}
	*f = fr->free[--fr->nfree];
	account(fr, 1);
	kick = fr->nfree < fr->low;
	pthread_mutex_unlock(&fr->lock);
	if (kick)
		evictor_kick(vm);
	return 0;
}

int frame_try_get(struct lp_vm *vm, uint32_t *f)
{
	struct lp_frames *fr = &vm->fr;
	int rc = -EAGAIN;

	pthread_mutex_lock(&fr->lock);
	if (!fr->n) {
		*f = LP_NO_FRAME;
		account(fr, 1);
		rc = 0;
	} else if (fr->nfree > 1 && !fr->waiting) {
		/* Leave one for a fault; the evictor refills behind us. */
		*f = fr->free[--fr->nfree];
		account(fr, 1);
		rc = 0;
	}
	bool kick = fr->n && fr->nfree < fr->low;
	pthread_mutex_unlock(&fr->lock);
	if (kick)
		evictor_kick(vm);
	return rc;
}

void frame_kva_release(struct lp_vm *vm, uint32_t f)
{
	struct lp_frames *fr = &vm->fr;

	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	if (fr->tab[f].kva == KVA_FULL) {
		fr->tab[f].kva = KVA_RELEASE;
		fr->relq[fr->nrelq++] = f;
	}
	pthread_mutex_unlock(&fr->lock);
}

void frame_put(struct lp_vm *vm, uint32_t f)
{
	struct lp_frames *fr = &vm->fr;

	pthread_mutex_lock(&fr->lock);
	if (f == LP_NO_FRAME) {
		if (fr->n && fr->overflow)
			fr->overflow--;
	} else {
		fr->free[fr->nfree++] = f;
		pthread_cond_broadcast(&fr->cond);
	}
	account(fr, -1);
	pthread_mutex_unlock(&fr->lock);
}

void frame_install(struct lp_vm *vm, uint32_t f, struct lp_page *pg)
{
	struct lp_frames *fr = &vm->fr;

	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	fr->tab[f].page = pg;
	fr->ref[f] = 1;
	fr->pops->insert(fr->pol, f, pg->vpn);
	fr->tab[f].in_policy = 1;
	/* A fault waiting for a frame: the evictor may have found nothing to
	 * evict a moment ago (this frame was held while it was being filled,
	 * readahead): tell it there is a candidate now. */
	bool kick = fr->waiting > 0;
	pthread_mutex_unlock(&fr->lock);
	if (kick)
		evictor_kick(vm);
}

void frame_touch(struct lp_vm *vm, uint32_t f)
{
	struct lp_frames *fr = &vm->fr;

	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	fr->ref[f] = 1;
	/* hit is optional: a policy that reads the bits needs no call. */
	if (fr->tab[f].in_policy && fr->pops->hit)
		fr->pops->hit(fr->pol, f);
	pthread_mutex_unlock(&fr->lock);
}

void frame_release(struct lp_vm *vm, uint32_t f)
{
	struct lp_frames *fr = &vm->fr;

	if (f == LP_NO_FRAME) {
		frame_put(vm, f);
		return;
	}
	pthread_mutex_lock(&fr->lock);
	struct lp_frame *fe = &fr->tab[f];
	if (fe->in_policy) {
		fr->pops->remove(fr->pol, f);
		fe->in_policy = 0;
	}
	fe->page = NULL;
	fr->ref[f] = 0;
	if (fe->kva == KVA_FULL) {
		fe->kva = KVA_RELEASE;
		fr->relq[fr->nrelq++] = f;
	}
	if (!fe->busy) {
		fr->free[fr->nfree++] = f;
		pthread_cond_broadcast(&fr->cond);
	}
	account(fr, -1);
	pthread_mutex_unlock(&fr->lock);
}

void frame_idle(struct lp_vm *vm, uint32_t f)
{
	struct lp_frames *fr = &vm->fr;

	pthread_mutex_lock(&fr->lock);
	struct lp_frame *fe = &fr->tab[f];
	fe->busy = 0;
	if (!fe->page) {
		fr->free[fr->nfree++] = f;
		pthread_cond_broadcast(&fr->cond);
	} else if (!fe->in_policy) {
		fr->ref[f] = 1;
		fr->pops->insert(fr->pol, f, fe->page->vpn);
		fe->in_policy = 1;
	}
	pthread_mutex_unlock(&fr->lock);
}

void frame_overflow(struct lp_vm *vm, int delta)
{
	struct lp_frames *fr = &vm->fr;

	pthread_mutex_lock(&fr->lock);
	fr->overflow = (uint64_t)((int64_t)fr->overflow + delta);
	account(fr, delta);
	pthread_mutex_unlock(&fr->lock);
}

void frame_set_page(struct lp_vm *vm, uint32_t f, struct lp_page *pg)
{
	struct lp_frames *fr = &vm->fr;

	if (f == LP_NO_FRAME)
		return;
	pthread_mutex_lock(&fr->lock);
	fr->tab[f].page = pg;
	pthread_mutex_unlock(&fr->lock);
}

void frame_overflow_note(struct lp_vm *vm, uint64_t vpn)
{
	struct lp_frames *fr = &vm->fr;

	pthread_mutex_lock(&fr->lock);
	if (fr->nov == fr->capov) {
		uint32_t cap = fr->capov ? 2 * fr->capov : 64;
		uint64_t *q = realloc(fr->ovq, cap * sizeof(*q));
		if (q) {
			fr->ovq = q;
			fr->capov = cap;
		}
	}
	/* No memory: that page stays beyond the budget until unmapped. */
	if (fr->nov < fr->capov)
		fr->ovq[fr->nov++] = vpn;
	pthread_mutex_unlock(&fr->lock);
}

int frame_overflow_next(struct lp_vm *vm, uint64_t *vpn)
{
	struct lp_frames *fr = &vm->fr;
	int rc = -EAGAIN;

	pthread_mutex_lock(&fr->lock);
	if (fr->nov && !fr->stuck && !fr->waiting && fr->nfree >= fr->low &&
	    fr->nfree > 0) {
		*vpn = fr->ovq[--fr->nov];
		rc = 0;
	}
	pthread_mutex_unlock(&fr->lock);
	return rc;
}

int frame_adopt(struct lp_vm *vm, struct lp_page *pg)
{
	struct lp_frames *fr = &vm->fr;
	int rc = -EAGAIN;

	pthread_mutex_lock(&fr->lock);
	if (fr->nfree) {
		uint32_t f = fr->free[--fr->nfree];
		/* Counted in `used` since it came in: only the kind changes. */
		if (fr->overflow)
			fr->overflow--;
		fr->tab[f].page = pg;
		fr->ref[f] = 1;
		fr->pops->insert(fr->pol, f, pg->vpn);
		fr->tab[f].in_policy = 1;
		pg->frame = f;
		rc = 0;
	}
	pthread_mutex_unlock(&fr->lock);
	return rc;
}

bool frame_overflow_pending(struct lp_vm *vm)
{
	struct lp_frames *fr = &vm->fr;

	pthread_mutex_lock(&fr->lock);
	bool any = fr->nov > 0;
	pthread_mutex_unlock(&fr->lock);
	return any;
}
