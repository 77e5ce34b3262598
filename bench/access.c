/* SPDX-License-Identifier: MIT */
/* The benchmark's access loop. */
#include "access.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The clock of the per-access latencies: cheap (about 10 ns), monotonic
 * per thread; its rate is measured over the run. */
static inline uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return now_ns();
#endif
}

static unsigned lat_bucket(uint64_t t)
{
	if (t < BENCH_LAT_SUB)
		return (unsigned)t;
	unsigned e = 63u - (unsigned)__builtin_clzll(t);  /* >= 3 */
	unsigned sub = (unsigned)(t >> (e - 3)) & (BENCH_LAT_SUB - 1);
	unsigned b = (e - 2) * BENCH_LAT_SUB + sub;
	return b < BENCH_LAT_BUCKETS ? b : BENCH_LAT_BUCKETS - 1;
}

/* Bounds of bucket b, in ticks: [lo, hi). */
static void lat_bounds(unsigned b, double *lo, double *hi)
{
	if (b < BENCH_LAT_SUB) {
		*lo = b;
		*hi = b + 1;
		return;
	}
	unsigned e = b / BENCH_LAT_SUB + 2, sub = b % BENCH_LAT_SUB;
	double unit = (double)(1ull << (e - 3));
	*lo = (BENCH_LAT_SUB + sub) * unit;
	*hi = *lo + unit;
}

double bench_lat_quantile(const uint64_t h[BENCH_LAT_BUCKETS],
			  double ns_per_tick, uint64_t top, double q)
{
	uint64_t total = 0;

	for (unsigned b = 0; b < BENCH_LAT_BUCKETS; b++)
		total += h[b];
	if (!total)
		return 0;
	if (!top || top > total)
		top = total;
	/* Rank (0-based, from the smallest) of the quantile among the top. */
	uint64_t rank = total - top + (uint64_t)(q * (double)(top - 1) + 0.5);
	uint64_t seen = 0;
	for (unsigned b = 0; b < BENCH_LAT_BUCKETS; b++) {
		if (seen + h[b] > rank) {
			double lo, hi;
			lat_bounds(b, &lo, &hi);
			/* Linear within the bucket. */
			double f = ((double)(rank - seen) + 0.5) / (double)h[b];
			return (lo + f * (hi - lo)) * ns_per_tick;
		}
		seen += h[b];
	}
	return 0;
}

uint64_t bench_lat_above(const uint64_t h[BENCH_LAT_BUCKETS],
			 double ns_per_tick, double ns)
{
	uint64_t n = 0;

	for (unsigned b = 0; b < BENCH_LAT_BUCKETS; b++) {
		double lo, hi;
		lat_bounds(b, &lo, &hi);
		if (lo * ns_per_tick >= ns)
			n += h[b];
	}
	return n;
}

/* Never zero, different for every page. */
static inline uint64_t signature(uint64_t p)
{
	return (p + 1) * 0x9e3779b97f4a7c15ull | 1;
}

/* The threads start together: each says it is there, then waits for go
 * (or abort, when not every thread could be created). */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned arrived;
	int state;              /* 0 wait, 1 go, -1 abort */
};

struct worker {
	const struct bench_access *a;
	struct gate *g;
	unsigned k;
	uint64_t end, bad;
	struct bench_lat *lat;  /* this thread's, merged after the run */
	pthread_t tid;
};

static int gate_pass(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->arrived++;
	pthread_cond_broadcast(&g->cond);
	while (!g->state)
		pthread_cond_wait(&g->cond, &g->lock);
	int state = g->state;
	pthread_mutex_unlock(&g->lock);
	return state;
}

/* Wait until n threads are at the gate. */
static void gate_wait(struct gate *g, unsigned n)
{
	pthread_mutex_lock(&g->lock);
	while (g->arrived < n)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g, int state)
{
	pthread_mutex_lock(&g->lock);
	g->state = state;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Page p's content beyond its words 0 and 1, written once at its first
 * touch: a->ratio says how well it compresses. */
static void fill_content(const struct bench_access *a, uint32_t p, uint64_t *w)
{
	size_t n = a->ratio ? BENCH_PG / a->ratio / 8 : 0;
	uint64_t x = signature(p) ^ 0x5851f42d4c957f2dull;

	for (size_t i = 2; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

static uint64_t touch(const struct bench_access *a, uint32_t p, bool *first)
{
	uint64_t *w = (uint64_t *)(a->base + (size_t)p * BENCH_PG);
	uint64_t sig = signature(p), bad = 0, z = 0;

	/* seen before the word: a page seen must show its signature. */
	*first = !__atomic_load_n(&a->seen[p], __ATOMIC_ACQUIRE);
	if (*first) {
		/* First touch: a write, as a program's first use of fresh
		 * memory; once, however many threads come. */
		if (__atomic_compare_exchange_n(&w[0], &z, sig, false,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			fill_content(a, p, w);
		else if (z != sig)
			bad++;
		__atomic_store_n(&a->seen[p], 1, __ATOMIC_RELEASE);
	} else {
		uint64_t v = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
		if (v == 0 && !a->keep) {
			/* The floor dropped it: it comes back as zeros. */
			(void)__atomic_compare_exchange_n(&w[0], &z, sig, false,
							  __ATOMIC_RELAXED,
							  __ATOMIC_RELAXED);
		} else if (v != sig) {
			bad++;
		}
	}
	if (a->rmw)
		__atomic_fetch_add(&w[1], 1, __ATOMIC_RELAXED);
	return bad;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	const struct bench_access *a = wk->a;
	struct bench_lat *lat = wk->lat;
	uint64_t bad = 0;
	bool first;

	/* Touched now, before the run (and before a kernel child's memory
	 * is measured). */
	memset(lat, 0, sizeof(*lat));
	if (gate_pass(wk->g) < 0)
		return NULL;
	uint64_t t = ticks();
	for (uint64_t i = wk->k; i < a->n; i += a->threads) {
		bad += touch(a, a->trace[i], &first);
		uint64_t t1 = ticks();
		uint64_t d = t1 > t ? t1 - t : 0;
		if (first)
			lat->first[lat_bucket(d)]++;
		else
			lat->again[lat_bucket(d)]++;
		t = t1;
	}
	wk->end = now_ns();
	wk->bad = bad;
	return NULL;
}

int bench_access_run(const struct bench_access *a,
		     struct bench_access_result *r)
{
	struct worker wk[BENCH_MAX_THREADS];
	struct gate g = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	unsigned started = 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (a->threads < 1 || a->threads > BENCH_MAX_THREADS)
		return -EINVAL;
	for (; started < a->threads; started++) {
		wk[started] = (struct worker){ .a = a, .g = &g, .k = started,
			.lat = malloc(sizeof(struct bench_lat)) };
		if (!wk[started].lat) {
			rc = -ENOMEM;
			break;
		}
		rc = -pthread_create(&wk[started].tid, NULL, worker_main,
				     &wk[started]);
		if (rc) {
			free(wk[started].lat);
			break;
		}
	}
	if (!rc && a->ready) {
		/* Every thread exists and waits (its stack is touched). */
		gate_wait(&g, started);
		rc = a->ready(a->ready_arg);
	}
	gate_wait(&g, started);
	uint64_t t0 = now_ns(), end = t0, k0 = ticks();
	gate_open(&g, rc ? -1 : 1);
	for (unsigned k = 0; k < started; k++) {
		pthread_join(wk[k].tid, NULL);
		if (wk[k].end > end)
			end = wk[k].end;
		r->bad += wk[k].bad;
		for (unsigned b = 0; !rc && b < BENCH_LAT_BUCKETS; b++) {
			r->lat.first[b] += wk[k].lat->first[b];
			r->lat.again[b] += wk[k].lat->again[b];
		}
		free(wk[k].lat);
	}
	uint64_t t1 = now_ns(), k1 = ticks();
	r->lat.ns_per_tick = k1 > k0 ? (double)(t1 - t0) / (double)(k1 - k0)
				     : 1.0;
	r->ns = end - t0;
	pthread_mutex_destroy(&g.lock);
	pthread_cond_destroy(&g.cond);
	return rc;
}

uint64_t bench_access_verify(const struct bench_access *a)
{
	uint64_t bad = 0, sum = 0;
	uint64_t step = a->rmw || a->npages < 256 ? 1 : a->npages / 256;

	for (uint64_t p = 0; p < a->npages; p += step) {
		const uint64_t *w = (const uint64_t *)(a->base + p * BENCH_PG);
		if (!a->seen[p])
			continue;
		if (w[0] != signature(p))
			bad++;
		sum += w[1];
	}
	if (a->rmw && sum != a->n)
		bad++;
	return bad;
}
