/* SPDX-License-Identifier: MIT */
/* Many threads at once: each page is filled once, nothing is lost. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define NT 8
#define NPAGES 32

static atomic_int fill_count[NPAGES];
/* Written by the test, read by a fault-handler thread started before it:
 * what orders the two is the fault passing through the kernel, which
 * ThreadSanitizer (and the C memory model) cannot see: atomic. */
static _Atomic uintptr_t base;

static int slow_fill(void *page, void *buf, void *aux)
{
	size_t i = ((uintptr_t)page - atomic_load_explicit(&base, memory_order_relaxed)) / PG;
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	(void)aux;
	atomic_fetch_add(&fill_count[i], 1);
	nanosleep(&ts, NULL); /* widen the window for a second filler */
	memset(buf, (int)(i + 1), PG);
	return 0;
}

struct toucher {
	pthread_barrier_t *bar;
	volatile unsigned char *p;
	int bad;
};

static void *touch_all(void *arg)
{
	struct toucher *t = arg;

	for (int i = 0; i < NPAGES; i++) {
		pthread_barrier_wait(t->bar);
		/* All threads fault on page i at the same moment. */
		if (t->p[i * PG + 17] != (unsigned char)(i + 1))
			t->bad++;
	}
	return NULL;
}

Test(concurrency, first_touch_by_many_threads_fills_once)
{
	struct lp_vm *vm;
	struct lp_config c;
	lp_config_init(&c);
	c.threads = 4;
	VM_OR_SKIP(&vm, &c);
	struct lp_initializer init = { slow_fill, NULL, 0 };
	unsigned char *p;
	for (int i = 0; i < NPAGES; i++)
		atomic_store(&fill_count[i], 0);
	cr_assert_eq(lp_map_lazy(vm, NPAGES * PG, PROT_READ, &init, (void **)&p), 0);
	atomic_store(&base, (uintptr_t)p);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, NT);
	pthread_t th[NT];
	struct toucher t[NT];
	for (int i = 0; i < NT; i++) {
		t[i] = (struct toucher){ &bar, p, 0 };
		pthread_create(&th[i], NULL, touch_all, &t[i]);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(t[i].bad, 0, "thread %d saw wrong bytes", i);
	}
	for (int i = 0; i < NPAGES; i++)
		cr_assert_eq(atomic_load(&fill_count[i]), 1, "page %d filled %d times",
			     i, atomic_load(&fill_count[i]));
	pthread_barrier_destroy(&bar);
	lp_vm_destroy(vm);
}

struct worker {
	uint64_t *p;
	size_t pages;
	int id, nthreads;
	int bad;
};

/* Each thread owns the pages i with i % nthreads == id and rewrites them in
 * generations, checking the previous generation each time. */
static void *own_pages(void *arg)
{
	struct worker *w = arg;

	for (uint64_t g = 1; g <= 4; g++)
		for (size_t i = (size_t)w->id; i < w->pages; i += (size_t)w->nthreads) {
			if (g > 1 && check_page(w->p, i, g - 1) != -1)
				w->bad++;
			fill_page(w->p, i, g);
		}
	return NULL;
}

Test(concurrency, threads_share_a_small_budget)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(32);
	VM_OR_SKIP(&vm, &c);
	size_t pages = 512;
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	pthread_t th[NT];
	struct worker w[NT];
	for (int i = 0; i < NT; i++) {
		w[i] = (struct worker){ p, pages, i, NT, 0 };
		pthread_create(&th[i], NULL, own_pages, &w[i]);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].bad, 0, "thread %d: %d pages lost a write", i, w[i].bad);
	}
	for (size_t i = 0; i < pages; i++)
		cr_assert_eq(check_page(p, i, 4), -1, "page %zu", i);
	cr_assert_leq(stats_of(vm).peak_frames, 32);
	lp_vm_destroy(vm);
}

struct mapper {
	struct lp_vm *vm;
	int rounds;
	int bad;
};

/* Map, use, unmap, again: regions come and go under other threads' faults. */
static void *map_churn(void *arg)
{
	struct mapper *m = arg;

	for (int r = 0; r < m->rounds; r++) {
		uint64_t *p;
		size_t pages = 16 + (size_t)(r % 5) * 8;
		if (lp_map_anon(m->vm, pages * PG, PROT_READ | PROT_WRITE, (void **)&p)) {
			m->bad++;
			continue;
		}
		for (size_t i = 0; i < pages; i++)
			fill_page(p, i, (uint64_t)r);
		for (size_t i = 0; i < pages; i++)
			if (check_page(p, i, (uint64_t)r) != -1)
				m->bad++;
		if (lp_unmap(m->vm, p, pages * PG))
			m->bad++;
	}
	return NULL;
}

Test(concurrency, map_and_unmap_while_others_fault)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(24);
	VM_OR_SKIP(&vm, &c);
	pthread_t th[4];
	struct mapper m[4];
	for (int i = 0; i < 4; i++) {
		m[i] = (struct mapper){ vm, 40, 0 };
		pthread_create(&th[i], NULL, map_churn, &m[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(m[i].bad, 0, "mapper %d: %d errors", i, m[i].bad);
	}
	struct lp_stats st = stats_of(vm);
	cr_assert_eq(st.resident_frames, 0, "frames leaked: %lu", st.resident_frames);
	cr_assert_eq(st.swap_slots_used, 0, "slots leaked: %lu", st.swap_slots_used);
	lp_vm_destroy(vm);
}
