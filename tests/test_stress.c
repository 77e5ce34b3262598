/* SPDX-License-Identifier: MIT */
/*
 * Stress: 4 threads doing 10^6 random read-modify-writes over a 64 MiB
 * region under a 4 MiB budget.  Each page carries its own index and one
 * counter per thread; every thread checks its counter against what it
 * wrote last time before incrementing it, so a lost write or a stale page
 * is seen at once.  A monitor samples the page table throughout: the pages
 * mapped in the region never exceed the budget.
 *
 * LAZYPAGE_STRESS_OPS scales the run (the soak suite uses it).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define THREADS 4
#define REGION (64u << 20)
#define BUDGET (4u << 20)
#define NPAGES (REGION / PG)

struct shared {
	uint64_t *p;
	uint64_t ops;          /* per thread */
	atomic_bool done;
	atomic_ulong mismatches;
	atomic_ulong max_present;
	atomic_ulong samples;
};

struct worker {
	struct shared *s;
	int id;
	uint32_t *expect;      /* this thread's count per page */
};

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t *p = w->s->p, x = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);

	for (uint64_t k = 0; k < w->s->ops; k++) {
		uint64_t i = xorshift(&x) % NPAGES;
		volatile uint64_t *q = p + i * (PG / 8);
		/* Word 0 (the page's number) is written by every thread:
		 * atomically, relaxed; each thread's counter is its own. */
		uint64_t id = __atomic_load_n(&q[0], __ATOMIC_RELAXED), c = q[1 + w->id];
		if ((id != 0 && id != i + 1) || c != w->expect[i])
			atomic_fetch_add(&w->s->mismatches, 1);
		__atomic_store_n(&q[0], i + 1, __ATOMIC_RELAXED);
		q[1 + w->id] = c + 1;
		w->expect[i] = (uint32_t)(c + 1);
	}
	return NULL;
}

static void *monitor(void *arg)
{
	struct shared *s = arg;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t *e = malloc(NPAGES * 8);
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	while (!atomic_load(&s->done)) {
		off_t off = (off_t)((uintptr_t)s->p / PG * 8);
		if (pread(fd, e, NPAGES * 8, off) == (ssize_t)(NPAGES * 8)) {
			unsigned long n = 0;
			for (size_t i = 0; i < NPAGES; i++)
				n += e[i] >> 63;
			if (n > atomic_load(&s->max_present))
				atomic_store(&s->max_present, n);
			atomic_fetch_add(&s->samples, 1);
		}
		nanosleep(&ts, NULL);
	}
	free(e);
	close(fd);
	return NULL;
}

Test(stress, random_rmw_4_threads_64m_over_4m, .timeout = 900)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(BUDGET / PG);
	VM_OR_SKIP(&vm, &c);
	struct shared s = { 0 };
	const char *ops = getenv("LAZYPAGE_STRESS_OPS");
	uint64_t total = ops ? strtoull(ops, NULL, 10) : 1000000;
	s.ops = total / THREADS;
	cr_assert_eq(lp_map_anon(vm, REGION, PROT_READ | PROT_WRITE, (void **)&s.p), 0);

	pthread_t th[THREADS], mon;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct worker w[THREADS];
	pthread_create(&mon, NULL, monitor, &s);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ &s, i, calloc(NPAGES, sizeof(uint32_t)) };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	atomic_store(&s.done, true);
	pthread_join(mon, NULL);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	/* Every counter of every page, once more, after all the churn. */
	unsigned long final_bad = 0;
	for (size_t i = 0; i < NPAGES; i++) {
		const uint64_t *q = s.p + i * (PG / 8);
		for (int t = 0; t < THREADS; t++)
			if (q[1 + t] != w[t].expect[i])
				final_bad++;
	}
	struct lp_stats st = stats_of(vm);
	lp_stats_print(&st, stderr, 0);
	fprintf(stderr, "stress: %lu ops, %lu samples, max %lu pages mapped (budget %u)\n",
		(unsigned long)(s.ops * THREADS), atomic_load(&s.samples),
		atomic_load(&s.max_present), BUDGET / PG);
	fprintf(stderr, "stress: %.1f s, %.0f ops/s, %.0f swap-in faults/s, "
		"%.0f pages/s read from swap, %.0f pages/s written\n",
		secs, (double)(s.ops * THREADS) / secs,
		(double)st.faults[LP_FAULT_SWAPIN] / secs,
		(double)st.swap_read_bytes / 4096 / secs, (double)st.swap_outs / secs);
	cr_assert_eq(atomic_load(&s.mismatches), 0, "%lu mismatches",
		     atomic_load(&s.mismatches));
	cr_assert_eq(final_bad, 0, "%lu counters wrong at the end", final_bad);
	cr_assert_gt(atomic_load(&s.samples), 0);
	cr_assert_leq(atomic_load(&s.max_present), BUDGET / PG,
		      "%lu pages mapped, budget %u", atomic_load(&s.max_present),
		      BUDGET / PG);
	cr_assert_leq(st.peak_frames, BUDGET / PG);
	cr_assert_gt(st.swap_outs, 0);
	cr_assert_eq(st.io_errors, 0);
	for (int i = 0; i < THREADS; i++)
		free(w[i].expect);
	lp_vm_destroy(vm);
}
