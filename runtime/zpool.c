/* SPDX-License-Identifier: MIT */
/*
 * The compressed tier: see zpool.h.
 *
 * Codecs, from Debian's packages rather than code of our own: LZ4 (liblz4,
 * ~1 us to compress a page, well under to decompress) and zstd (libzstd at
 * level 1: a few points of ratio more for ~3x the time).  bench/run
 * compares them; neither is required to build.
 *
 * Layout.  Entries are found by slot in a two-level table (ZP_CHUNK entries
 * per chunk, chunks made on demand).  A block of class c is (c + 1) *
 * ZP_GRAIN bytes, in a slab of its class of one to four pages (geom[]); a
 * block may straddle two of them, and is then copied through a buffer to
 * be decompressed.  A class keeps a list of its slabs with a free block.  Slab pages come from the arena (mmap of
 * max_pages pages, untouched until used); a slab that empties gives its
 * page back (MADV_DONTNEED), so the pool's memory is what it says.  The
 * order of stores is a ring of (slot, generation): writing back takes from
 * its head, skipping what was forgotten since.
 */
#include "zpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef LP_HAVE_LZ4
#include <lz4.h>
#endif
#ifdef LP_HAVE_ZSTD
#include <zstd.h>
#endif

#include "prim.h"

#define ZP_GRAIN 64u
#define ZP_MAXBLK (LP_PG / 8 * 7) /* larger: stored on disk instead */
#define ZP_CLASSES (ZP_MAXBLK / ZP_GRAIN)
#define ZP_MAXK 4u /* pages of a slab, at most */
#define ZP_CHUNK 4096u
#define ZP_ZSTD_LEVEL 1

/* ZE_GHOST: not held, the page offered for the slot was sent straight to
 * disk by admission (zpool_admit()); its next read tells whether storing it
 * would have paid. */
enum { ZE_HELD = 1, ZE_WRITING = 2, ZE_DEAD = 4, ZE_GHOST = 8 };

struct zslab {
	unsigned char *pg[ZP_MAXK]; /* its pages of the arena (any order):
				     * a block may straddle two */
	uint64_t used;         /* bitmap of blocks in use */
	uint8_t cls, nblk, nused, npg;
	struct zslab *prev, *next; /* the class's list of slabs with room */
	bool listed;
};

struct zent {
	struct zslab *sl;
	uint64_t sum[2];       /* digest of the page */
	uint32_t wbseq;        /* not held: when it was written on (0: not) */
	uint32_t oseq;         /* when its page was last offered */
	uint32_t gen;
	uint16_t clen;
	uint8_t idx;
	uint8_t flags;         /* ZE_* */
};

struct zring_item {
	uint64_t slot;
	uint32_t gen;
};

struct zpool {
	struct lp_store store;  /* first: the pool as a store (store.h) */
	pthread_mutex_t lock;
	enum zp_algo algo;
	unsigned char *arena;
	uint32_t max_pages, limit_pages;
	uint32_t limit_max, limit_min; /* where adapt() moves limit_pages */
	uint32_t ceiling;      /* at most this many pages whatever the limit:
				* the part of a shared budget lent to us
				* (zpool_lend()) */
	/* adapt(): reads of slots since the last step, and of them: hits on
	 * the youngest entries (young), on the oldest (old), disk reads of
	 * pages written on lately (late) */
	uint32_t win_reads, win_young, win_old, win_late;
	uint32_t wbseq;                /* entries written on, ever */
	/* Admission (zpool_admit()): pages offered, ever; in the current
	 * window, offers and those that came back while they would still
	 * have been held (hits, and reads of pages sent past the pool in
	 * time: ghosts); windows in a row with too few; bypassing. */
	uint32_t oseq, aw_offers, aw_useful;
	uint32_t useless, abatch;
	bool bypass;
	uint32_t ratio16;              /* entries per pool page x 16, last seen */
	uint32_t *free_pages;  /* stack of arena pages not in a slab */
	uint32_t nfree_pages;
	struct zslab *room[ZP_CLASSES];
	struct zent **dir;     /* chunks of ZP_CHUNK entries, by slot */
	size_t ndir;
	struct zring_item *ring; /* stores, oldest first from head */
	size_t rhead, rlen, rcap;
	uint32_t gen;
	struct zpool_stats st;
};

/* Under zp->lock: the limit in force (adapt()'s, within the ceiling). */
static uint32_t limit_now(const struct zpool *zp)
{
	return zp->limit_pages < zp->ceiling ? zp->limit_pages : zp->ceiling;
}


/* ---- codecs ---------------------------------------------------------- */

#ifdef LP_HAVE_ZSTD
/* One context of each kind per thread (evictors compress, handlers
 * decompress), freed with the thread. */
static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

struct zstd_ctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static void zstd_ctx_free(void *p)
{
	struct zstd_ctx *z = p;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zstd_key_make(void)
{
	(void)pthread_key_create(&zstd_key, zstd_ctx_free);
}

static struct zstd_ctx *zstd_ctx(void)
{
	(void)pthread_once(&zstd_once, zstd_key_make);
	struct zstd_ctx *z = pthread_getspecific(zstd_key);
	if (z)
		return z;
	z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	z->c = ZSTD_createCCtx();
	z->d = ZSTD_createDCtx();
	if (!z->c || !z->d || pthread_setspecific(zstd_key, z)) {
		zstd_ctx_free(z);
		return NULL;
	}
	return z;
}
#endif

bool zpool_algo_built(enum zp_algo algo)
{
	switch (algo) {
#ifdef LP_HAVE_LZ4
	case ZP_LZ4:
		return true;
#endif
#ifdef LP_HAVE_ZSTD
	case ZP_ZSTD:
		return true;
#endif
	default:
		return false;
	}
}

/* page compressed into out (cap bytes): its size, or 0 if it does not fit. */
static size_t compress_page(enum zp_algo algo, const void *page, void *out,
			    size_t cap)
{
	switch (algo) {
#ifdef LP_HAVE_LZ4
	case ZP_LZ4: {
		int n = LZ4_compress_default(page, out, (int)LP_PG, (int)cap);
		return n > 0 ? (size_t)n : 0;
	}
#endif
#ifdef LP_HAVE_ZSTD
	case ZP_ZSTD: {
		struct zstd_ctx *z = zstd_ctx();
		if (!z)
			return 0;
		size_t n = ZSTD_compressCCtx(z->c, out, cap, page, LP_PG,
					     ZP_ZSTD_LEVEL);
		return ZSTD_isError(n) ? 0 : n;
	}
#endif
	default:
		(void)page;
		(void)out;
		(void)cap;
		return 0;
	}
}

/* Block in (len bytes) decompressed into page: 0, or -EBADMSG. */
static int decompress_page(enum zp_algo algo, const void *in, size_t len,
			   void *page)
{
	switch (algo) {
#ifdef LP_HAVE_LZ4
	case ZP_LZ4:
		return LZ4_decompress_safe(in, page, (int)len, (int)LP_PG) ==
				       (int)LP_PG
			       ? 0
			       : -EBADMSG;
#endif
#ifdef LP_HAVE_ZSTD
	case ZP_ZSTD: {
		struct zstd_ctx *z = zstd_ctx();
		if (!z)
			return -ENOMEM;
		size_t n = ZSTD_decompressDCtx(z->d, page, LP_PG, in, len);
		return !ZSTD_isError(n) && n == LP_PG ? 0 : -EBADMSG;
	}
#endif
	default:
		(void)in;
		(void)len;
		(void)page;
		return -EBADMSG;
	}
}

/* ---- the table of entries -------------------------------------------- */

/* Under the lock: slot's entry, made room for when make (NULL: none). */
static struct zent *ent(struct zpool *zp, uint64_t slot, bool make)
{
	size_t d = slot / ZP_CHUNK;

	if (d >= zp->ndir) {
		if (!make)
			return NULL;
		size_t n = zp->ndir ? zp->ndir : 16;
		while (n <= d)
			n *= 2;
		struct zent **nd = realloc(zp->dir, n * sizeof(*nd));
		if (!nd)
			return NULL;
		memset(nd + zp->ndir, 0, (n - zp->ndir) * sizeof(*nd));
		zp->dir = nd;
		zp->ndir = n;
	}
	if (!zp->dir[d]) {
		if (!make)
			return NULL;
		zp->dir[d] = calloc(ZP_CHUNK, sizeof(struct zent));
		if (!zp->dir[d])
			return NULL;
	}
	return &zp->dir[d][slot % ZP_CHUNK];
}

static struct zent *held(struct zpool *zp, uint64_t slot)
{
	struct zent *e = ent(zp, slot, false);

	return e && (e->flags & ZE_HELD) ? e : NULL;
}

/* The slab geometry of each class: pages per slab (1..ZP_MAXK) and blocks
 * per slab, chosen for the least room left over (zsmalloc's idea): a block
 * of 1600 bytes fills 78 % of one page, 98 % of three. */
static struct {
	uint8_t npg, nblk;
} geom[ZP_CLASSES];
static pthread_once_t geom_once = PTHREAD_ONCE_INIT;

static void geom_make(void)
{
	for (unsigned c = 0; c < ZP_CLASSES; c++) {
		size_t size = (c + 1) * ZP_GRAIN;
		double best = 0;
		for (unsigned k = 1; k <= ZP_MAXK; k++) {
			size_t n = k * LP_PG / size;
			if (n > 64)
				n = 64; /* the bitmap */
			double use = (double)(n * size) / (double)(k * LP_PG);
			if (use > best + 0.01) {
				best = use;
				geom[c].npg = (uint8_t)k;
				geom[c].nblk = (uint8_t)n;
			}
		}
	}
}

/* Bytes [off, off+len) of slab s, copied out into buf (dir 0) or in from
 * buf (dir 1), across its pages. */
static void slab_copy(struct zslab *s, size_t off, void *buf, size_t len,
		      int dir)
{
	unsigned char *b = buf;

	while (len) {
		size_t in = off & (LP_PG - 1), n = LP_PG - in;
		unsigned char *at = s->pg[off >> LP_PAGE_SHIFT] + in;
		if (n > len)
			n = len;
		if (dir)
			memcpy(at, b, n);
		else
			memcpy(b, at, n);
		b += n;
		off += n;
		len -= n;
	}
}

static size_t block_off(const struct zent *e)
{
	return (size_t)e->idx * (e->sl->cls + 1u) * ZP_GRAIN;
}

/* ---- slabs ------------------------------------------------------------ */

static void unlist(struct zpool *zp, struct zslab *s)
{
	if (!s->listed)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		zp->room[s->cls] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->listed = false;
}

static void list(struct zpool *zp, struct zslab *s)
{
	s->prev = NULL;
	s->next = zp->room[s->cls];
	if (s->next)
		s->next->prev = s;
	zp->room[s->cls] = s;
	s->listed = true;
}

/* A new slab of class cls, or NULL (arena full, no memory). */
static struct zslab *slab_new(struct zpool *zp, unsigned cls)
{
	unsigned k = geom[cls].npg;

	/* Never past the limit: the page goes to disk instead, and the
	 * evictor makes room by writing the oldest entries on. */
	if (zp->nfree_pages < k || zp->st.pages + k > limit_now(zp))
		return NULL;
	struct zslab *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	for (unsigned i = 0; i < k; i++) {
		uint32_t pg = zp->free_pages[--zp->nfree_pages];
		s->pg[i] = zp->arena + ((size_t)pg << LP_PAGE_SHIFT);
	}
	s->npg = (uint8_t)k;
	s->cls = (uint8_t)cls;
	s->nblk = geom[cls].nblk;
	zp->st.pages += k;
	if (zp->st.pages > zp->st.peak_pages)
		zp->st.peak_pages = zp->st.pages;
	list(zp, s);
	return s;
}

static void slab_free(struct zpool *zp, struct zslab *s)
{
	unlist(zp, s);
	for (unsigned i = 0; i < s->npg; i++) {
		(void)madvise(s->pg[i], LP_PG, MADV_DONTNEED);
		zp->free_pages[zp->nfree_pages++] =
			(uint32_t)((size_t)(s->pg[i] - zp->arena) >> LP_PAGE_SHIFT);
	}
	zp->st.pages -= s->npg;
	free(s);
}

/* A block of class cls: its slab and index, or NULL. */
static struct zslab *block_alloc(struct zpool *zp, unsigned cls, uint8_t *idx)
{
	struct zslab *s = zp->room[cls];

	if (!s && !(s = slab_new(zp, cls)))
		return NULL;
	unsigned i = (unsigned)__builtin_ctzll(~s->used); /* nblk <= 64 */
	s->used |= 1ull << i;
	if (++s->nused == s->nblk)
		unlist(zp, s);
	*idx = (uint8_t)i;
	return s;
}

static void block_free(struct zpool *zp, struct zslab *s, unsigned idx)
{
	s->used &= ~(1ull << idx);
	if (--s->nused == 0) {
		slab_free(zp, s);
		return;
	}
	if (!s->listed)
		list(zp, s);
}

/* Under the lock: e's block goes, and e with it. */
static void drop(struct zpool *zp, struct zent *e)
{
	block_free(zp, e->sl, e->idx);
	zp->st.entries--;
	zp->st.bytes -= e->clen;
	memset(e, 0, sizeof(*e));
}

/* ---- the ring of stores ----------------------------------------------- */

static void ring_compact(struct zpool *zp)
{
	size_t n = 0;

	for (size_t i = 0; i < zp->rlen; i++) {
		struct zring_item it = zp->ring[(zp->rhead + i) % zp->rcap];
		struct zent *e = held(zp, it.slot);
		if (e && e->gen == it.gen)
			zp->ring[n++] = it;
	}
	zp->rhead = 0;
	zp->rlen = n;
}

static int ring_push(struct zpool *zp, uint64_t slot, uint32_t gen)
{
	if (zp->rlen == zp->rcap && zp->rlen > 4 * zp->st.entries + 64)
		ring_compact(zp);
	if (zp->rlen == zp->rcap) {
		size_t nc = zp->rcap ? 2 * zp->rcap : 1024;
		struct zring_item *nr = malloc(nc * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		for (size_t i = 0; i < zp->rlen; i++)
			nr[i] = zp->ring[(zp->rhead + i) % zp->rcap];
		free(zp->ring);
		zp->ring = nr;
		zp->rcap = nc;
		zp->rhead = 0;
	}
	zp->ring[(zp->rhead + zp->rlen) % zp->rcap] =
		(struct zring_item){ slot, gen };
	zp->rlen++;
	return 0;
}

/* ---- the pool --------------------------------------------------------- */

/*
 * The share adapts to what a step of it is worth (a marginal-value test,
 * as ARC's ghost lists do it).  Moving `step` frames from resident pages
 * to the pool costs the faults on the pages that would have stayed
 * resident: the hits on the `step` youngest entries (young), each a tier
 * fault.  It gains room for step * ratio more pages: the disk reads of
 * pages the pool wrote on within that many write-backs (late) would have
 * been tier faults instead.  Shrinking by a step gives back the resident
 * pages (young again) and loses the oldest step * ratio entries, whose hits
 * (old) become disk reads.  A disk read costs ZP_DISK_COST tier faults
 * (~80 us against ~20 us with its eviction, measured here).  Every
 * ZP_WINDOW reads of slots the limit moves one step, between an eighth of
 * the share asked for and the share, or stays.
 */
#define ZP_WINDOW 2048u
#define ZP_DISK_COST 4u

static uint32_t step_of(const struct zpool *zp)
{
	return zp->limit_max / 16 ? zp->limit_max / 16 : 1;
}

/* Entries that fit in n pages at the current ratio. */
static uint64_t entries_in(const struct zpool *zp, uint32_t n)
{
	return zp->st.pages ? (uint64_t)n * zp->st.entries / zp->st.pages : n;
}

/*
 * Admission.  A page stored and written on unread cost a compression and
 * a decompression for nothing, and its room in the pool: a loop over more
 * than the budget and the pool can hold, a table being built.  So the pool
 * watches, per window of ZP_AWIN offers, how many pages came back while the
 * pool would still have held them: hits, and disk reads of pages it was not
 * offered to keep (ghosts, ZE_GHOST) within reach() offers.  After
 * ZP_AUSELESS windows in a row with fewer than 1 in ZP_AUSEFUL, it keeps
 * only 1 batch of offers in ZP_ASAMPLE (so that hits keep being seen; whole
 * batches, so that the runs of slots written and read back stay whole) and
 * sends the rest to disk uncompressed; the first window with enough (hits
 * on the sample and ghosts together: an estimate over all offers) admits
 * all again.  The thresholds are strict because what a quiet phase evicts
 * last is often what the next phase reads first (python3 building a dict:
 * nothing back for 17 windows, then ~3000 a window); looser ones (4
 * windows under 1 in 32) took python3 from 2.3 s to 3.6 s, ghosts or not.
 */
#define ZP_AWIN 2048u
#define ZP_AUSEFUL 256u
#define ZP_AUSELESS 16u
#define ZP_ASAMPLE 16u

/* How many offers back a page would still be held: the pool's limit in
 * entries at the ratio last seen (the pool may be nearly empty while it
 * bypasses). */
static uint32_t reach(const struct zpool *zp)
{
	uint32_t r = zp->ratio16 ? zp->ratio16 : 16;

	return (uint32_t)((uint64_t)limit_now(zp) * r / 16);
}

static void admit_window(struct zpool *zp)
{
	if (zp->st.pages)
		zp->ratio16 = (uint32_t)(zp->st.entries * 16 / zp->st.pages);
	if (zp->aw_useful * ZP_AUSEFUL >= zp->aw_offers) {
		zp->useless = 0;
		zp->bypass = false;
	} else if (++zp->useless >= ZP_AUSELESS) {
		zp->bypass = true;
	}
	zp->aw_offers = zp->aw_useful = 0;
}

bool zpool_admit(struct zpool *zp, const uint64_t *slots, unsigned n)
{
	pthread_mutex_lock(&zp->lock);
	bool in = !zp->bypass || zp->abatch++ % ZP_ASAMPLE == 0;
	for (unsigned k = 0; k < n; k++) {
		struct zent *e = ent(zp, slots[k], true);
		zp->oseq++;
		if (!e)
			continue;
		e->oseq = zp->oseq;
		if (!in && !(e->flags & ZE_HELD))
			e->flags |= ZE_GHOST;
	}
	if (!in)
		zp->st.bypasses += n;
	zp->aw_offers += n;
	if (zp->aw_offers >= ZP_AWIN)
		admit_window(zp);
	pthread_mutex_unlock(&zp->lock);
	return in;
}

/* A read of a slot: e its entry if held (a hit), else the slot's entry
 * record (NULL: none), for adapt(). */
static void note_read(struct zpool *zp, struct zent *e, bool hit)
{
	uint32_t step = step_of(zp);

	zp->win_reads++;
	if (e && (hit || (e->flags & ZE_GHOST))) {
		/* Back within reach of its offer: storing it paid, or would
		 * have.  (An older entry's hit says the pool's content is
		 * worth keeping, not that more should be admitted.) */
		if (zp->oseq - e->oseq < reach(zp))
			zp->aw_useful++;
		e->flags &= (uint8_t)~ZE_GHOST;
	}
	if (hit) {
		uint32_t age = zp->gen - e->gen; /* stores since */
		if (age < step)
			zp->win_young++;
		else if (age + entries_in(zp, step) >= zp->st.entries)
			zp->win_old++;
	} else if (e && e->wbseq &&
		   zp->wbseq - e->wbseq < entries_in(zp, step)) {
		zp->win_late++;
	}
}

static void adapt(struct zpool *zp)
{
	if (zp->win_reads < ZP_WINDOW)
		return;
	uint32_t step = step_of(zp);
	uint64_t cost_d = (uint64_t)(ZP_DISK_COST - 1); /* disk over tier */
	if (zp->win_late * cost_d > zp->win_young &&
	    zp->limit_pages < zp->limit_max)
		zp->limit_pages = zp->limit_pages + step < zp->limit_max
					  ? zp->limit_pages + step
					  : zp->limit_max;
	else if (zp->win_old * cost_d < zp->win_young &&
		 zp->limit_pages > zp->limit_min)
		zp->limit_pages = zp->limit_pages > zp->limit_min + step
					  ? zp->limit_pages - step
					  : zp->limit_min;
	zp->st.limit_pages = limit_now(zp);
	zp->win_reads = zp->win_young = zp->win_old = zp->win_late = 0;
}

int zpool_new(struct zpool **out, enum zp_algo algo, uint32_t max_pages,
	      uint32_t limit_pages)
{
	*out = NULL;
	if (!zpool_algo_built(algo))
		return -ENOTSUP;
	if (!max_pages || limit_pages > max_pages)
		return -EINVAL;
	(void)pthread_once(&geom_once, geom_make);
	struct zpool *zp = calloc(1, sizeof(*zp));
	if (!zp)
		return -ENOMEM;
	zp->algo = algo;
	zp->max_pages = max_pages;
	/* From a quarter of the share: it grows on evidence (adapt()), so
	 * that a program whose evicted pages do not come back soon (a
	 * stream) pays little for the tier. */
	zp->limit_max = limit_pages;
	zp->ceiling = limit_pages;
	zp->limit_min = limit_pages / 8;
	zp->limit_pages = limit_pages / 4 > zp->limit_min ? limit_pages / 4
							   : limit_pages;
	zp->st.limit_pages = zp->limit_pages;
	zp->free_pages = malloc((size_t)max_pages * sizeof(uint32_t));
	void *a = mmap(NULL, (size_t)max_pages << LP_PAGE_SHIFT,
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!zp->free_pages || a == MAP_FAILED) {
		free(zp->free_pages);
		free(zp);
		return -ENOMEM;
	}
	zp->arena = a;
	for (uint32_t i = 0; i < max_pages; i++) /* lowest first */
		zp->free_pages[i] = max_pages - 1 - i;
	zp->nfree_pages = max_pages;
	pthread_mutex_init(&zp->lock, NULL);
	*out = zp;
	return 0;
}

void zpool_free(struct zpool *zp)
{
	if (!zp)
		return;
	for (size_t d = 0; d < zp->ndir; d++) {
		for (size_t i = 0; zp->dir[d] && i < ZP_CHUNK; i++)
			if (zp->dir[d][i].flags & ZE_HELD)
				drop(zp, &zp->dir[d][i]);
		free(zp->dir[d]);
	}
	free(zp->dir);
	free(zp->ring);
	munmap(zp->arena, (size_t)zp->max_pages << LP_PAGE_SHIFT);
	free(zp->free_pages);
	pthread_mutex_destroy(&zp->lock);
	free(zp);
}

int zpool_store(struct zpool *zp, uint64_t slot, const void *page)
{
	unsigned char out[ZP_MAXBLK];
	size_t n = compress_page(zp->algo, page, out, sizeof out);
	uint64_t sum[2];
	int rc = 0;

	if (!n) {
		pthread_mutex_lock(&zp->lock);
		zp->st.rejects++;
		pthread_mutex_unlock(&zp->lock);
		return -E2BIG;
	}
	prim_page_digest(page, 0, sum);
	unsigned cls = (unsigned)((n + ZP_GRAIN - 1) / ZP_GRAIN) - 1;
	pthread_mutex_lock(&zp->lock);
	struct zent *e = ent(zp, slot, true);
	uint8_t idx = 0;
	struct zslab *s = NULL;
	if (!e || (e->flags & ZE_HELD)) {
		rc = e ? -EEXIST : -ENOMEM;
	} else if (!(s = block_alloc(zp, cls, &idx))) {
		rc = -ENOSPC;
	} else if (ring_push(zp, slot, zp->gen + 1)) {
		block_free(zp, s, idx);
		rc = -ENOMEM;
	} else {
		*e = (struct zent){ .sl = s, .sum = { sum[0], sum[1] },
				    .oseq = e->oseq, .gen = ++zp->gen,
				    .clen = (uint16_t)n, .idx = idx,
				    .flags = ZE_HELD };
		slab_copy(s, block_off(e), out, n, 1);
		zp->st.stores++;
		zp->st.entries++;
		zp->st.bytes += n;
	}
	pthread_mutex_unlock(&zp->lock);
	return rc;
}

/* Under the lock: e's page into buf, checked.  0 or -EBADMSG. */
static int unpack(struct zpool *zp, const struct zent *e, void *buf)
{
	uint64_t sum[2];
	unsigned char in[ZP_MAXBLK];
	size_t off = block_off(e);
	const void *blk = in;

	if ((off & (LP_PG - 1)) + e->clen <= LP_PG) /* within one page */
		blk = e->sl->pg[off >> LP_PAGE_SHIFT] + (off & (LP_PG - 1));
	else
		slab_copy(e->sl, off, in, e->clen, 0);
	if (decompress_page(zp->algo, blk, e->clen, buf))
		return -EBADMSG;
	prim_page_digest(buf, 0, sum);
	return sum[0] == e->sum[0] && sum[1] == e->sum[1] ? 0 : -EBADMSG;
}

/* The block is copied out under the lock and decompressed after it, so
 * that handlers reading the tier do not wait on one another's codec. */
int zpool_load(struct zpool *zp, uint64_t slot, void *buf)
{
	unsigned char in[ZP_MAXBLK];
	uint64_t want[2], sum[2];
	size_t len = 0;

	pthread_mutex_lock(&zp->lock);
	struct zent *e = held(zp, slot);
	if (e) {
		len = e->clen;
		want[0] = e->sum[0];
		want[1] = e->sum[1];
		slab_copy(e->sl, block_off(e), in, len, 0);
		note_read(zp, e, true);
	} else {
		note_read(zp, ent(zp, slot, false), false);
	}
	adapt(zp);
	pthread_mutex_unlock(&zp->lock);
	if (!e)
		return 0;
	int rc = decompress_page(zp->algo, in, len, buf);
	if (!rc) {
		prim_page_digest(buf, 0, sum);
		rc = sum[0] == want[0] && sum[1] == want[1] ? 1 : -EBADMSG;
	}
	pthread_mutex_lock(&zp->lock);
	if (rc == 1)
		zp->st.loads++;
	else if (rc == -EBADMSG)
		zp->st.corrupt++;
	pthread_mutex_unlock(&zp->lock);
	return rc; /* (-ENOMEM: no codec context; the entry stays) */
}

bool zpool_holds(struct zpool *zp, uint64_t slot)
{
	pthread_mutex_lock(&zp->lock);
	bool h = held(zp, slot) != NULL;
	if (!h) { /* the caller reads the disk: a miss, as in zpool_load() */
		note_read(zp, ent(zp, slot, false), false);
		adapt(zp);
	}
	pthread_mutex_unlock(&zp->lock);
	return h;
}

bool zpool_forget(struct zpool *zp, uint64_t slot)
{
	bool busy = false;

	pthread_mutex_lock(&zp->lock);
	struct zent *e = held(zp, slot);
	if (e && (e->flags & ZE_WRITING)) {
		e->flags |= ZE_DEAD;
		busy = true;
	} else if (e) {
		drop(zp, e);
	} else if ((e = ent(zp, slot, false))) {
		/* the slot goes: its page was not written on, nor sent
		 * past the pool */
		e->wbseq = 0;
		e->flags &= (uint8_t)~ZE_GHOST;
	}
	pthread_mutex_unlock(&zp->lock);
	return busy;
}

uint32_t zpool_pages(struct zpool *zp)
{
	pthread_mutex_lock(&zp->lock);
	uint32_t n = (uint32_t)zp->st.pages;
	pthread_mutex_unlock(&zp->lock);
	return n;
}

void zpool_lend(struct zpool *zp, uint64_t lent, uint64_t budget)
{
	pthread_mutex_lock(&zp->lock);
	/* The square of the part lent: a process lent a sixtieth of the
	 * budget (sixty of them at once) keeps no pool, where a pool of half
	 * its few frames left it too few to run on (a tree of 60 shells at
	 * 4M: 27-30 s against 8.7 s with no tier; 8-10 s so); one lent most
	 * of it keeps most of its pool. */
	uint64_t c = zp->limit_max;
	if (budget && lent < budget)
		c = c * lent / budget * lent / budget;
	zp->ceiling = (uint32_t)c;
	zp->st.limit_pages = limit_now(zp);
	pthread_mutex_unlock(&zp->lock);
}

bool zpool_over(struct zpool *zp)
{
	pthread_mutex_lock(&zp->lock);
	/* Room for a round of stores is kept free: writing on starts a
	 * sixteenth (at least 4 pages) short of the limit. */
	uint32_t limit = limit_now(zp);
	uint32_t room = limit / 16 > 4 ? limit / 16 : 4;
	bool over = zp->st.pages + room > limit;
	pthread_mutex_unlock(&zp->lock);
	return over;
}

unsigned zpool_wb_take(struct zpool *zp, unsigned n, uint64_t *slots,
		       void *bufs)
{
	unsigned k = 0;

	pthread_mutex_lock(&zp->lock);
	while (k < n && zp->rlen) {
		struct zring_item it = zp->ring[zp->rhead];
		zp->rhead = (zp->rhead + 1) % zp->rcap;
		zp->rlen--;
		struct zent *e = held(zp, it.slot);
		if (!e || e->gen != it.gen || (e->flags & ZE_WRITING))
			continue; /* forgotten (or stored again) since */
		void *buf = (unsigned char *)bufs + ((size_t)k << LP_PAGE_SHIFT);
		if (unpack(zp, e, buf)) {
			/* Kept: its reader gets SIGBUS, as for a corrupt
			 * slot on disk; writing it out would hide that. */
			zp->st.corrupt++;
			continue;
		}
		e->flags |= ZE_WRITING;
		slots[k++] = it.slot;
	}
	pthread_mutex_unlock(&zp->lock);
	return k;
}

unsigned zpool_wb_done(struct zpool *zp, const uint64_t *slots, unsigned n,
		       int res, uint64_t *dead)
{
	unsigned nd = 0;

	pthread_mutex_lock(&zp->lock);
	for (unsigned i = 0; i < n; i++) {
		struct zent *e = held(zp, slots[i]);
		if (!e)
			continue;
		bool gone = e->flags & ZE_DEAD;
		if (gone)
			dead[nd++] = slots[i];
		if (!res || gone) {
			drop(zp, e);
			if (!res && !gone) {
				zp->st.writebacks++;
				e->wbseq = ++zp->wbseq ? zp->wbseq : ++zp->wbseq;
			}
		} else {
			e->flags &= (uint8_t)~ZE_WRITING;
			(void)ring_push(zp, slots[i], e->gen);
		}
	}
	pthread_mutex_unlock(&zp->lock);
	return nd;
}

void zpool_stats(struct zpool *zp, struct zpool_stats *out)
{
	pthread_mutex_lock(&zp->lock);
	*out = zp->st;
	pthread_mutex_unlock(&zp->lock);
}

int zpool_corrupt(struct zpool *zp, uint64_t slot)
{
	pthread_mutex_lock(&zp->lock);
	struct zent *e = held(zp, slot);
	if (e) {
		unsigned char b;
		slab_copy(e->sl, block_off(e) + e->clen - 1u, &b, 1, 0);
		b ^= 0x5a;
		slab_copy(e->sl, block_off(e) + e->clen - 1u, &b, 1, 1);
	}
	pthread_mutex_unlock(&zp->lock);
	return e ? 0 : -ENOENT;
}

/* ---- the pool as a memory store (store.h) ----------------------------- */

static struct zpool *zp_of(struct lp_store *s)
{
	return (struct zpool *)s; /* (its first member) */
}

static bool zs_admit(struct lp_store *s, const uint64_t *slots, unsigned n)
{
	return zpool_admit(zp_of(s), slots, n);
}

static int zs_put(struct lp_store *s, uint64_t slot, const void *page)
{
	return zpool_store(zp_of(s), slot, page);
}

static int zs_get(struct lp_store *s, uint64_t slot, void *buf)
{
	return zpool_load(zp_of(s), slot, buf);
}

static bool zs_holds(struct lp_store *s, uint64_t slot)
{
	return zpool_holds(zp_of(s), slot);
}

static uint32_t zs_pages(struct lp_store *s)
{
	return zpool_pages(zp_of(s));
}

static bool zs_over(struct lp_store *s)
{
	return zpool_over(zp_of(s));
}

static void zs_lend(struct lp_store *s, uint64_t lent, uint64_t budget)
{
	zpool_lend(zp_of(s), lent, budget);
}

static unsigned zs_flush_take(struct lp_store *s, unsigned n,
			      uint64_t *slots, void *pages)
{
	return zpool_wb_take(zp_of(s), n, slots, pages);
}

static unsigned zs_flush_done(struct lp_store *s, const uint64_t *slots,
			      unsigned n, int res, uint64_t *dead)
{
	return zpool_wb_done(zp_of(s), slots, n, res, dead);
}

static bool zs_forget(struct lp_store *s, uint64_t slot)
{
	return zpool_forget(zp_of(s), slot);
}

static void zs_stats(struct lp_store *s, struct lp_store_stats *out)
{
	struct zpool_stats z;

	zpool_stats(zp_of(s), &z);
	*out = (struct lp_store_stats){
		.stores = z.stores, .rejects = z.rejects,
		.bypasses = z.bypasses, .loads = z.loads,
		.corrupt = z.corrupt, .flushed = z.writebacks,
		.entries = z.entries, .bytes = z.bytes, .pages = z.pages,
		.peak_pages = z.peak_pages, .limit_pages = z.limit_pages,
	};
}

static void zs_destroy(struct lp_store *s)
{
	zpool_free(zp_of(s));
}

static const struct lp_store_ops zpool_store_ops = {
	.name = "pool",
	.admit = zs_admit,
	.put = zs_put,
	.get = zs_get,
	.holds = zs_holds,
	.pages = zs_pages,
	.over = zs_over,
	.lend = zs_lend,
	.flush_take = zs_flush_take,
	.flush_done = zs_flush_done,
	.forget = zs_forget,
	.stats = zs_stats,
	.destroy = zs_destroy,
};

struct lp_store *zpool_as_store(struct zpool *zp)
{
	zp->store.ops = &zpool_store_ops;
	return &zp->store;
}

struct zpool *zpool_of_store(struct lp_store *s)
{
	return s && s->ops == &zpool_store_ops ? zp_of(s) : NULL;
}
