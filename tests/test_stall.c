/* SPDX-License-Identifier: MIT */
/*
 * A fault waiting for a frame while the evictor's round finds nothing it
 * may evict (white-box: the internal library).  Every frame is held: the
 * free ones by the test (as handlers loading pages hold theirs), the used
 * ones by pages owned by somebody else for a moment (lp_sync() writing a
 * page back, a handler restoring a parked one), which a round skips.  Then
 * the owners let go, which kicks nobody: the evictor must come back by
 * itself and free a frame for the waiting fault.  (It used to sleep without
 * a timeout after a round that freed nothing, and the fault waited for
 * good: test-swap's round trips hung once under heavy load.)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"
#include "pagelife.h"
#include "vm.h"

#define NFRAMES 4u
#define NPAGES 256u /* the last one far from the others: not filled ahead */
#define NFILL 6u

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Wait (at most ms) for cond(); returns it. */
#define WAIT_FOR(cond, ms)                                                    \
	({                                                                    \
		long left_ = (ms);                                            \
		while (!(cond) && left_-- > 0)                                \
			sleep_ms(1);                                          \
		(cond);                                                       \
	})

struct toucher {
	uint64_t *p;
	atomic_bool done;
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	fill_page(t->p, NPAGES - 1, 1); /* a new page: needs a frame */
	atomic_store(&t->done, true);
	return NULL;
}

static unsigned waiting(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->fr.lock);
	unsigned w = vm->fr.waiting;
	pthread_mutex_unlock(&vm->fr.lock);
	return w;
}

/* What the test owns: pages taken from the evictor, frames from the pool. */
struct held {
	struct lp_page *pg[NFRAMES];
	enum lp_page_state was[NFRAMES];
	unsigned npg;
	uint32_t f[NFRAMES];
	unsigned nf;
};

/* With the runtime quiet (no round, no fault service, no write in flight),
 * take every page holding a frame into an owned state and every free frame
 * out of the pool. */
static bool hold_everything(struct lp_vm *vm, struct held *h)
{
	pthread_rwlock_wrlock(&vm->freeze_lock);
	if (__atomic_load_n(&vm->ev.pending, __ATOMIC_RELAXED)) {
		pthread_rwlock_unlock(&vm->freeze_lock);
		return false;
	}
	struct lp_page *pgs[NFRAMES];
	unsigned n = 0;
	pthread_mutex_lock(&vm->fr.lock);
	for (uint32_t f = 0; f < vm->fr.n; f++)
		if (vm->fr.tab[f].page)
			pgs[n++] = vm->fr.tab[f].page;
	pthread_mutex_unlock(&vm->fr.lock);
	for (unsigned i = 0; i < n; i++) {
		struct lp_page *pg = pgs[i];
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		enum lp_page_state to = PG_NSTATES;
		if (pg->state == PG_RESIDENT)
			to = PG_SYNCING;   /* as lp_sync() writing it back */
		else if (pg->state == PG_PARKED)
			to = PG_RESTORING; /* as a handler mapping it back */
		if (to != PG_NSTATES) {
			h->was[h->npg] = pg->state;
			page_set_state(pg, to);
			h->pg[h->npg++] = pg;
		}
		spt_unlock(s);
	}
	for (;;) {
		pthread_mutex_lock(&vm->fr.lock);
		bool any = vm->fr.nfree > 0;
		pthread_mutex_unlock(&vm->fr.lock);
		if (!any)
			break;
		cr_assert_eq(frame_get(&vm->fr, &h->f[h->nf], NULL), 0);
		h->nf++;
	}
	pthread_rwlock_unlock(&vm->freeze_lock);
	return true;
}

/* The owners let go, as they do: no kick. */
static void let_pages_go(struct lp_vm *vm, struct held *h)
{
	for (unsigned i = 0; i < h->npg; i++) {
		struct lp_page *pg = h->pg[i];
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		page_handoff(vm, s, pg, (enum lp_page_state)h->was[i]);
	}
}

Test(stall, fault_waiting_while_every_victim_is_owned, .timeout = 120)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(NFRAMES);
	c.policy = "clock";
	VM_OR_SKIP(&vm, &c);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, NPAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (unsigned i = 0; i < NFILL; i++)
		fill_page(p, i, 1);

	struct held h = { .npg = 0 };
	cr_assert(WAIT_FOR(hold_everything(vm, &h), 10000),
		  "swap writes never settled");
	cr_assert_eq(h.npg + h.nf, NFRAMES, "pages %u + free frames %u",
		     h.npg, h.nf);

	struct toucher t = { .p = p };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, touch, &t), 0);
	cr_assert(WAIT_FOR(waiting(vm) > 0, 10000), "the fault never waited");
	/* The evictor saw it wait, and why it could free nothing. */
	cr_assert(WAIT_FOR(atomic_load(&vm->ev.barren) > 0, 10000),
		  "no round found the frames held");
	cr_assert_eq(vm->ev.last_why, h.npg ? EVW_OWNED : EVW_NO_VICTIM);
	cr_assert(!atomic_load(&t.done));

	let_pages_go(vm, &h);
	/* The frames the test holds stay held: only the evictor can serve
	 * the fault now. */
	bool served = WAIT_FOR(atomic_load(&t.done), 20000);
	cr_assert(served, "the fault still waits for a frame (waiting %u, "
		  "rounds %lu)", waiting(vm), atomic_load(&vm->ev.rounds));
	pthread_join(th, NULL);

	for (unsigned i = 0; i < h.nf; i++)
		frame_put(&vm->fr, h.f[i]);
	for (unsigned i = 0; i < NFILL; i++)
		cr_assert_eq(check_page(p, i, 1), -1, "page %u", i);
	cr_assert_eq(check_page(p, NPAGES - 1, 1), -1);
	lp_vm_destroy(vm);
}
