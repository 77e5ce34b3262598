/* SPDX-License-Identifier: MIT */
/* Supplemental page table (see spt.h). */
#include "spt.h"

#include "prim.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SPT_CHUNK 32u

/*
 * Page structs are never returned to malloc before spt_fini(), and a struct
 * is recycled only within the stripe of the page number it had last: a
 * stale pointer therefore still leads to the right stripe lock (that of its
 * vpn, read atomically), under which its holder re-validates it (the
 * evictor does, see evict.c).  spt_move() changes a struct's page number
 * (mremap) only while the vm is frozen, when nobody holds such a pointer
 * between two looks.
 */
struct spt_chunk {
	struct lp_page pages[SPT_CHUNK];
};

/* Chunks are cut from blocks of the runtime's own memory (prim.h: not
 * copied into the program's forked children, populated when mapped),
 * SPT_BLOCK bytes each.  A page struct is set whole by spt_insert() (its
 * digest only with the flag that says it has one): a block used before
 * needs no clearing. */
#define SPT_BLOCK (256u << 10)

struct spt_block {
	struct spt_block *next;
	size_t used; /* bytes cut from the block, this header included */
};

/*
 * Blocks of ended tables are kept for the next (a forked child's table is
 * built and dropped for each subshell of a shell script: a fresh block
 * costs a mapping and 64 zeroed pages).  Not copied into a child of
 * fork(): a child starts with none (cache_after_fork).
 */
#define SPT_CACHE 8u
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spt_block *cache;
static unsigned ncache;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_after_fork(void)
{
	pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	cache_lock = fresh;
	cache = NULL;
	ncache = 0;
}

static void cache_init(void)
{
	(void)pthread_atfork(NULL, NULL, cache_after_fork);
}

static struct spt_block *block_new(void)
{
	struct spt_block *b = NULL;

	(void)pthread_once(&cache_once, cache_init);
	pthread_mutex_lock(&cache_lock);
	if (cache) {
		b = cache;
		cache = b->next;
		ncache--;
	}
	pthread_mutex_unlock(&cache_lock);
	return b ? b : prim_private_alloc(SPT_BLOCK);
}

static void block_free(struct spt_block *b)
{
	pthread_mutex_lock(&cache_lock);
	if (ncache < SPT_CACHE) {
		b->next = cache;
		cache = b;
		ncache++;
		b = NULL;
	}
	pthread_mutex_unlock(&cache_lock);
	prim_private_free(b, SPT_BLOCK);
}

/* The bucket array of n chains: the runtime's own memory too. */
static struct lp_page **buckets_new(size_t n)
{
	return prim_private_alloc(n * sizeof(struct lp_page *));
}

static void buckets_free(struct lp_page **b, size_t n)
{
	prim_private_free(b, n * sizeof(*b));
}

int spt_init(struct lp_spt *spt)
{
	memset(spt, 0, sizeof(*spt));
	spt->nbucket = SPT_STRIPES * 16;
	spt->bucket = buckets_new(spt->nbucket);
	if (!spt->bucket)
		return -ENOMEM;
	pthread_mutex_init(&spt->chunk_lock, NULL);
	for (unsigned i = 0; i < SPT_STRIPES; i++) {
		pthread_mutex_init(&spt->stripe[i].lock, NULL);
		pthread_cond_init(&spt->stripe[i].settle, NULL);
	}
	return 0;
}

void spt_fini(struct lp_spt *spt)
{
	struct spt_block *b = spt->blocks;

	while (b) {
		struct spt_block *n = b->next;
		block_free(b);
		b = n;
	}
	spt->blocks = NULL;
	buckets_free(spt->bucket, spt->nbucket);
	spt->bucket = NULL;
	pthread_mutex_destroy(&spt->chunk_lock);
	for (unsigned i = 0; i < SPT_STRIPES; i++) {
		pthread_mutex_destroy(&spt->stripe[i].lock);
		pthread_cond_destroy(&spt->stripe[i].settle);
	}
}

struct spt_stripe *spt_lock(struct lp_spt *spt, uint64_t vpn)
{
	struct spt_stripe *s = spt_stripe_of(spt, vpn);

	pthread_mutex_lock(&s->lock);
	return s;
}

static struct lp_page **chain(struct lp_spt *spt, uint64_t vpn)
{
	return &spt->bucket[spt_hash(vpn) & (spt->nbucket - 1)];
}

struct lp_page *spt_find(struct lp_spt *spt, uint64_t vpn)
{
	for (struct lp_page *pg = *chain(spt, vpn); pg; pg = pg->next)
		if (pg->vpn == vpn)
			return pg;
	return NULL;
}

/* A new chunk of page structs (not cleared: above), or NULL. */
static struct spt_chunk *chunk_new(struct lp_spt *spt)
{
	const size_t head = (sizeof(struct spt_block) + 63) & ~(size_t)63;
	struct spt_chunk *c = NULL;

	pthread_mutex_lock(&spt->chunk_lock);
	struct spt_block *b = spt->blocks;
	if (!b || b->used + sizeof(*c) > SPT_BLOCK) {
		b = block_new();
		if (b) {
			b->next = spt->blocks;
			b->used = head;
			spt->blocks = b;
		}
	}
	if (b) {
		c = (struct spt_chunk *)((char *)b + b->used);
		b->used += sizeof(*c);
	}
	pthread_mutex_unlock(&spt->chunk_lock);
	return c;
}

static int refill(struct lp_spt *spt, struct spt_stripe *s)
{
	struct spt_chunk *c = chunk_new(spt);

	if (!c)
		return -ENOMEM;
	for (unsigned i = 0; i < SPT_CHUNK; i++) {
		c->pages[i].next = s->free;
		s->free = &c->pages[i];
	}
	return 0;
}

struct lp_page *spt_insert(struct lp_spt *spt, uint64_t vpn,
			   const struct lp_page_ops *ops)
{
	struct spt_stripe *s = spt_stripe_of(spt, vpn);
	struct lp_page *pg;

	if (!s->free && refill(spt, s))
		return NULL;
	pg = s->free;
	s->free = pg->next;
	__atomic_store_n(&pg->vpn, vpn, __ATOMIC_RELAXED);
	pg->ops = ops;
	pg->state = PG_UNINIT;
	pg->backing = BK_NONE;
	pg->flags = spt->vf_flags;
	pg->frame = LP_NO_FRAME;
	pg->slot = LP_NO_SLOT;
	struct lp_page **head = chain(spt, vpn);
	pg->next = *head;
	*head = pg;
	atomic_fetch_add_explicit(&spt->count, 1, memory_order_relaxed);
	return pg;
}

void spt_remove(struct lp_spt *spt, struct lp_page *pg)
{
	struct spt_stripe *s = spt_stripe_of(spt, pg->vpn);

	assert(pg->state == PG_DEAD);
	for (struct lp_page **pp = chain(spt, pg->vpn); *pp; pp = &(*pp)->next) {
		if (*pp == pg) {
			*pp = pg->next;
			break;
		}
	}
	pg->frame = LP_NO_FRAME;
	pg->next = s->free;
	s->free = pg;
	atomic_fetch_sub_explicit(&spt->count, 1, memory_order_relaxed);
}

int spt_move(struct lp_spt *spt, struct lp_page *pg, uint64_t to)
{
	struct spt_stripe *s = spt_lock(spt, to);
	bool taken = spt_find(spt, to) != NULL;

	spt_unlock(s);
	if (taken)
		return -EEXIST;
	s = spt_lock(spt, pg->vpn);
	for (struct lp_page **pp = chain(spt, pg->vpn); *pp; pp = &(*pp)->next) {
		if (*pp == pg) {
			*pp = pg->next;
			break;
		}
	}
	__atomic_store_n(&pg->vpn, to, __ATOMIC_RELAXED);
	spt_unlock(s);
	s = spt_lock(spt, to);
	struct lp_page **head = chain(spt, to);
	pg->next = *head;
	*head = pg;
	spt_unlock(s);
	return 0;
}

void spt_maybe_grow(struct lp_spt *spt)
{
	size_t count = atomic_load_explicit(&spt->count, memory_order_relaxed);

	if (count <= __atomic_load_n(&spt->nbucket, __ATOMIC_RELAXED) * 2)
		return;
	for (unsigned i = 0; i < SPT_STRIPES; i++)
		pthread_mutex_lock(&spt->stripe[i].lock);
	if (atomic_load(&spt->count) > spt->nbucket * 2) {
		size_t n = spt->nbucket * 4;
		struct lp_page **nb = buckets_new(n);
		if (nb) {
			for (size_t b = 0; b < spt->nbucket; b++) {
				struct lp_page *pg = spt->bucket[b];
				while (pg) {
					struct lp_page *next = pg->next;
					struct lp_page **h =
						&nb[spt_hash(pg->vpn) & (n - 1)];
					pg->next = *h;
					*h = pg;
					pg = next;
				}
			}
			buckets_free(spt->bucket, spt->nbucket);
			spt->bucket = nb;
			__atomic_store_n(&spt->nbucket, n, __ATOMIC_RELAXED);
		}
	}
	for (unsigned i = SPT_STRIPES; i-- > 0;)
		pthread_mutex_unlock(&spt->stripe[i].lock);
}

int spt_collect(struct lp_spt *spt, uint64_t lo, uint64_t hi, uint64_t **out,
		size_t *n)
{
	size_t cap = 64, len = 0;
	uint64_t *v = malloc(cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	/* Few pages in the range: look each up; many: walk the table. */
	size_t count = atomic_load_explicit(&spt->count, memory_order_relaxed);
	if (hi - lo <= count) {
		for (uint64_t vpn = lo; vpn < hi; vpn++) {
			struct spt_stripe *s = spt_lock(spt, vpn);
			bool have = spt_find(spt, vpn) != NULL;
			spt_unlock(s);
			if (!have)
				continue;
			if (len == cap) {
				uint64_t *nv = realloc(v, 2 * cap * sizeof(*v));
				if (!nv)
					goto nomem;
				v = nv;
				cap *= 2;
			}
			v[len++] = vpn;
		}
	} else {
		for (unsigned i = 0; i < SPT_STRIPES; i++) {
			struct spt_stripe *s = &spt->stripe[i];
			pthread_mutex_lock(&s->lock);
			for (size_t b = i; b < spt->nbucket; b += SPT_STRIPES) {
				for (struct lp_page *pg = spt->bucket[b]; pg;
				     pg = pg->next) {
					if (pg->vpn < lo || pg->vpn >= hi)
						continue;
					if (len == cap) {
						uint64_t *nv = realloc(
							v, 2 * cap * sizeof(*v));
						if (!nv) {
							pthread_mutex_unlock(
								&s->lock);
							goto nomem;
						}
						v = nv;
						cap *= 2;
					}
					v[len++] = pg->vpn;
				}
			}
			pthread_mutex_unlock(&s->lock);
		}
	}
	*out = v;
	*n = len;
	return 0;
nomem:
	free(v);
	return -ENOMEM;
}
