/* SPDX-License-Identifier: MIT */
/* Synthetic workloads, and trace files of page numbers. */
#include "workload.h"

#include <endian.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum kind { SEQ, LOOP, UNIFORM, ZIPF, HOTSCAN, SHIFT };

struct lp_workload {
	enum kind kind;
	uint64_t pages, length;
	uint64_t i;           /* accesses so far */
	uint64_t s[4];        /* xoshiro256** */
	double *cdf;          /* ZIPF: cdf[r] = P(rank <= r) */
	uint32_t *perm;       /* ZIPF: rank -> page */
	uint64_t scanned;     /* HOTSCAN: scan pages handed out */
};

static const char *const names[] = {
	"seq", "loop", "uniform", "zipf0.8", "zipf1.0", "zipf1.2",
	"hotscan", "shift", NULL,
};

const char *const *lp_workload_names(void)
{
	return names;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next64(struct lp_workload *w)
{
	uint64_t *s = w->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, n), n < 2^32, without modulo bias. */
static uint64_t below(struct lp_workload *w, uint64_t n)
{
	uint64_t m = (next64(w) >> 32) * n;

	if ((uint32_t)m < n) {
		uint32_t t = (uint32_t)(-(uint32_t)n % (uint32_t)n);
		while ((uint32_t)m < t)
			m = (next64(w) >> 32) * n;
	}
	return m >> 32;
}

static double unit(struct lp_workload *w)
{
	return (double)(next64(w) >> 11) * 0x1.0p-53;
}

static void seed(struct lp_workload *w, uint64_t x)
{
	for (int k = 0; k < 4; k++) { /* splitmix64 */
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		w->s[k] = z ^ (z >> 31);
	}
}

static int zipf_init(struct lp_workload *w, double alpha)
{
	uint64_t n = w->pages;
	double sum = 0;

	w->cdf = malloc(n * sizeof(*w->cdf));
	w->perm = malloc(n * sizeof(*w->perm));
	if (!w->cdf || !w->perm)
		return -ENOMEM;
	for (uint64_t r = 0; r < n; r++) {
		sum += pow((double)(r + 1), -alpha);
		w->cdf[r] = sum;
	}
	for (uint64_t r = 0; r < n; r++)
		w->cdf[r] /= sum;
	w->cdf[n - 1] = 1.0;
	for (uint64_t r = 0; r < n; r++)
		w->perm[r] = (uint32_t)r;
	for (uint64_t r = n - 1; r > 0; r--) { /* Fisher-Yates */
		uint64_t j = below(w, r + 1);
		uint32_t x = w->perm[r];
		w->perm[r] = w->perm[j];
		w->perm[j] = x;
	}
	return 0;
}

static uint64_t zipf_next(struct lp_workload *w)
{
	double u = unit(w);
	uint64_t lo = 0, hi = w->pages - 1;

	while (lo < hi) { /* first rank whose cdf exceeds u */
		uint64_t mid = lo + (hi - lo) / 2;
		if (w->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return w->perm[lo];
}

int lp_workload_create(struct lp_workload **out, const char *name,
		       const struct lp_workload_params *p)
{
	static const struct { const char *name; enum kind kind; } kinds[] = {
		{ "seq", SEQ }, { "loop", LOOP }, { "uniform", UNIFORM },
		{ "hotscan", HOTSCAN }, { "shift", SHIFT },
	};
	struct lp_workload *w;
	double alpha = 0;
	int kind = -1;

	*out = NULL;
	if (!p->pages || p->pages >= UINT32_MAX)
		return -EINVAL;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (!strcmp(name, kinds[k].name))
			kind = kinds[k].kind;
	if (kind < 0 && !strncmp(name, "zipf", 4)) {
		char *end;
		alpha = strtod(name + 4, &end);
		if (end != name + 4 && !*end && alpha > 0 && alpha < 100)
			kind = ZIPF;
	}
	if (kind < 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->kind = (enum kind)kind;
	w->pages = p->pages;
	w->length = p->length;
	seed(w, p->seed);
	if (kind == ZIPF && zipf_init(w, alpha)) {
		lp_workload_destroy(w);
		return -ENOMEM;
	}
	*out = w;
	return 0;
}

void lp_workload_destroy(struct lp_workload *w)
{
	if (!w)
		return;
	free(w->cdf);
	free(w->perm);
	free(w);
}

uint64_t lp_workload_next(struct lp_workload *w)
{
	uint64_t i = w->i++, n = w->pages;

	switch (w->kind) {
	case SEQ:
		return i;
	case LOOP:
		return i % n;
	case UNIFORM:
		return below(w, n);
	case ZIPF:
		return zipf_next(w);
	case HOTSCAN:
		/* Cycles of 2n hot accesses, then n scan pages, numbered
		 * from n on so that none is ever used again. */
		if (i % (3 * n) < 2 * n)
			return below(w, n);
		return n + w->scanned++;
	case SHIFT:
		return (i / (8 * n)) * (n / 2) + below(w, n);
	}
	return 0;
}

uint64_t lp_workload_footprint(const struct lp_workload *w)
{
	uint64_t n = w->pages, len = w->length;

	switch (w->kind) {
	case SEQ:
		return len;
	case HOTSCAN: {
		uint64_t tail = len % (3 * n);
		return n + len / (3 * n) * n + (tail > 2 * n ? tail - 2 * n : 0);
	}
	case SHIFT:
		return len ? (len - 1) / (8 * n) * (n / 2) + n : n;
	default:
		return n;
	}
}

int lp_workload_trace(const char *name, const struct lp_workload_params *p,
		      uint64_t **out)
{
	struct lp_workload *w;
	uint64_t *t;
	int rc;

	*out = NULL;
	rc = lp_workload_create(&w, name, p);
	if (rc)
		return rc;
	t = malloc((p->length ? p->length : 1) * sizeof(*t));
	if (!t) {
		lp_workload_destroy(w);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < p->length; i++)
		t[i] = lp_workload_next(w);
	lp_workload_destroy(w);
	*out = t;
	return 0;
}

int lp_trace_save(const char *path, const uint64_t *page, size_t n)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (!f)
		return -errno;
	for (size_t i = 0; i < n && !rc; i++) {
		uint64_t le = htole64(page[i]);

		/* -EIO, not -errno: fwrite need not set errno. */
		if (fwrite(&le, sizeof(le), 1, f) != 1)
			rc = -EIO;
	}
	if (fclose(f) && !rc)
		rc = -errno;
	return rc;
}

int lp_trace_load(const char *path, uint64_t **out, size_t *n)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint64_t *t;
	size_t len;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st)) {
		fclose(f);
		return -errno;
	}
	if (st.st_size % sizeof(*t)) {
		fclose(f);
		return -EINVAL; /* not a whole number of page numbers */
	}
	len = (size_t)st.st_size / sizeof(*t);
	t = malloc((len ? len : 1) * sizeof(*t));
	if (!t) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(t, sizeof(*t), len, f) != len) {
		free(t);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	for (size_t i = 0; i < len; i++)
		t[i] = le64toh(t[i]);
	*out = t;
	*n = len;
	return 0;
}
