/* SPDX-License-Identifier: MIT */
/* Swap area: the swap file and its slot allocator (see swap.h). */
#include "swap.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "prim.h"

#ifdef LP_HAVE_SODIUM
#include <sodium.h>

struct swap_crypt {
	unsigned char *key;       /* sodium_malloc: guarded, locked */
	uint64_t next;            /* nonces handed out (under sw->lock) */
	uint64_t *ctr;            /* per slot: the nonce of its last write */
	unsigned char (*tag)[16]; /* per slot: its authentication tag */
	uint64_t cap;
};
#endif

/* The file grows by this many slots (16 MiB) at a time, or by only what is
 * needed when the filesystem has less room left. */
#define GROW_SLOTS 4096u

/* Remove name (in dfd) if it is still the file open at fd: what we remove
 * is only ever the file we have just created. */
static int unlink_ours(int dfd, const char *name, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return -errno;
	if (fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EEXIST; /* replaced meanwhile: not ours to remove */
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

/* Create name in dfd, new (O_EXCL: never an existing file, never through
 * a symlink), 0600, and remove its name at once.  fd or -errno. */
static int create_unlinked(int dfd, const char *name)
{
	int f = openat(dfd, name,
		       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (f < 0)
		return -errno;
	int rc = unlink_ours(dfd, name, f);
	if (rc) {
		close(f);
		return rc;
	}
	return f;
}

/* An unnamed file in the directory dfd: O_TMPFILE, or where the
 * filesystem has none, a fresh unique name created and removed at once. */
static int create_in_dir(int dfd)
{
	int f = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (f >= 0)
		return f;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	for (int tries = 0; tries < 64; tries++) {
		uint64_t r;
		char name[48];
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = prim_now_ns() * 0x9e3779b97f4a7c15ull + (uint64_t)tries;
		snprintf(name, sizeof(name), "lazypage-swap.%016llx",
			 (unsigned long long)r);
		f = create_unlinked(dfd, name);
		if (f != -EEXIST)
			return f;
	}
	return -EEXIST;
}

/*
 * The swap file's descriptor, a regular file this call created and whose
 * name is gone: nothing that existed before is opened, changed or removed.
 *   NULL or "": an unnamed file in $TMPDIR (or /tmp);
 *   a directory (or a symlink to one): an unnamed file in it;
 *   anything else: created new at path (O_EXCL | O_NOFOLLOW), then its
 *     name removed at once; -EEXIST when path exists (a file, a device,
 *     a symlink, ...).
 */
static int swap_create(const char *path)
{
	const char *dir = path;
	int fd;

	if (!path || !*path) {
		dir = getenv("TMPDIR");
		if (!dir || !*dir)
			dir = "/tmp";
	}
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fd = create_in_dir(dfd);
		close(dfd);
		return fd;
	}
	if (dir != path || (errno != ENOTDIR && errno != ENOENT))
		return -errno;
	/* Not a directory: the name of a new file. */
	int e = errno;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!*base)
		return -e; /* "dir/": a directory that is not there */
	char *parent = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
			     : strdup(".");
	if (!parent)
		return -ENOMEM;
	dfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(parent);
	if (dfd < 0)
		return -errno;
	fd = create_unlinked(dfd, base);
	close(dfd);
	return fd;
}

static int crypt_tables(struct lp_swap *sw, uint64_t cap);

static int tables(struct lp_swap *sw, uint64_t cap)
{
	if (cap <= sw->cap)
		return 0;
	if (sw->crypt && crypt_tables(sw, cap))
		return -ENOMEM;
	uint64_t words = (cap + 63) / 64, oldw = (sw->cap + 63) / 64;
	uint64_t *used = realloc(sw->used, words * sizeof(*used));
	if (!used)
		return -ENOMEM;
	sw->used = used;
	memset(used + oldw, 0, (words - oldw) * sizeof(*used));
	uint16_t *refs = realloc(sw->refs, cap * sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	sw->refs = refs;
	memset(refs + sw->cap, 0, (cap - sw->cap) * sizeof(*refs));
	uint64_t *owner = realloc(sw->owner, cap * sizeof(*owner));
	if (!owner)
		return -ENOMEM;
	sw->owner = owner;
	memset(owner + sw->cap, 0, (cap - sw->cap) * sizeof(*owner));
	sw->cap = cap;
	return 0;
}

/* ---- the file as the chain's last store (store.h) --------------------- */

static struct lp_swap *swap_of(struct lp_store *s)
{
	return (struct lp_swap *)((char *)s - offsetof(struct lp_swap, file));
}

static int file_write(struct lp_store *s, struct lp_io *io,
		      struct lp_io_req *req, uint64_t slot0)
{
	req->fd = swap_of(s)->fd;
	req->off = swap_off(slot0);
	return io_submit_write(io, req);
}

static int file_read(struct lp_store *s, struct lp_io *io,
		     struct lp_io_req *req, uint64_t slot0)
{
	req->fd = swap_of(s)->fd;
	req->off = swap_off(slot0);
	return io_submit_read(io, req);
}

static long file_read_sync(struct lp_store *s, struct lp_io *io,
			   uint64_t slot0, const struct iovec *iov, int n)
{
	return io_preadv(io, swap_of(s)->fd, iov, n, swap_off(slot0));
}

static void file_read_many(struct lp_store *s, struct lp_io *io,
			   struct lp_io_read *rd, int n)
{
	for (int i = 0; i < n; i++)
		rd[i].off = swap_off(rd[i].off);
	io_read_many(io, swap_of(s)->fd, rd, n);
}

static int file_finish_read(struct lp_store *s, uint64_t slot, void *page)
{
	struct lp_swap *sw = swap_of(s);

	return swap_encrypted(sw) && swap_unseal(sw, slot, page) ? -EIO : 0;
}

static bool file_forget(struct lp_store *s, uint64_t slot)
{
	(void)s;
	(void)slot;
	return false; /* (a write in flight is its writer's: evict.c) */
}

static void file_stats(struct lp_store *s, struct lp_store_stats *out)
{
	struct lp_swap *sw = swap_of(s);

	memset(out, 0, sizeof(*out));
	out->entries = __atomic_load_n(&sw->inuse, __ATOMIC_RELAXED);
	out->bytes = out->entries << LP_PAGE_SHIFT;
}

static void file_destroy(struct lp_store *s)
{
	(void)s; /* the area's: swap_close() */
}

static const struct lp_store_ops swap_file_ops = {
	.name = "file",
	.write = file_write,
	.read = file_read,
	.read_sync = file_read_sync,
	.read_many = file_read_many,
	.finish_read = file_finish_read,
	.forget = file_forget,
	.stats = file_stats,
	.destroy = file_destroy,
};

/* ---- the file, then a store beyond it (swap_spill_to()) ------------- */

#define SPILL_BATCH 64 /* runs handed to one store's read_many at once */

static bool spill(struct lp_swap *sw);

static struct lp_swap *spill_of(struct lp_store *s)
{
	return (struct lp_swap *)((char *)s - offsetof(struct lp_swap, spill));
}

/* The store that holds slot. */
static struct lp_store *holder(struct lp_swap *sw, uint64_t slot)
{
	return slot < __atomic_load_n(&sw->spill_from, __ATOMIC_RELAXED) ? &sw->file
									 : sw->beyond;
}

static int spill_write(struct lp_store *s, struct lp_io *io,
		       struct lp_io_req *req, uint64_t slot0)
{
	struct lp_store *h = holder(spill_of(s), slot0);

	return h->ops->write(h, io, req, slot0);
}

static int spill_read(struct lp_store *s, struct lp_io *io,
		      struct lp_io_req *req, uint64_t slot0)
{
	struct lp_store *h = holder(spill_of(s), slot0);

	return h->ops->read(h, io, req, slot0);
}

static long spill_read_sync(struct lp_store *s, struct lp_io *io,
			    uint64_t slot0, const struct iovec *iov, int n)
{
	struct lp_store *h = holder(spill_of(s), slot0);

	return h->ops->read_sync(h, io, slot0, iov, n);
}

/* The runs (none spans both: swap_run_joins()) on each store, each store's
 * at once. */
static void spill_read_many(struct lp_store *s, struct lp_io *io,
			    struct lp_io_read *rd, int n)
{
	struct lp_swap *sw = spill_of(s);
	struct lp_io_read part[SPILL_BATCH];
	int idx[SPILL_BATCH];

	for (int pass = 0; pass < 2; pass++) {
		struct lp_store *h = pass ? sw->beyond : &sw->file;
		for (int i = 0; i < n;) {
			int k = 0;
			for (; i < n && k < SPILL_BATCH; i++)
				if (holder(sw, rd[i].off) == h) {
					idx[k] = i;
					part[k++] = rd[i];
				}
			if (k)
				h->ops->read_many(h, io, part, k);
			for (int j = 0; j < k; j++)
				rd[idx[j]].res = part[j].res;
		}
	}
}

static int spill_finish_read(struct lp_store *s, uint64_t slot, void *page)
{
	struct lp_store *h = holder(spill_of(s), slot);

	return h->ops->finish_read(h, slot, page);
}

static bool spill_forget(struct lp_store *s, uint64_t slot)
{
	struct lp_store *h = holder(spill_of(s), slot);

	return h->ops->forget(h, slot);
}

/* The store beyond's (what the file holds is the area's slots in use). */
static void spill_stats(struct lp_store *s, struct lp_store_stats *out)
{
	struct lp_store *b = spill_of(s)->beyond;

	b->ops->stats(b, out);
}

static void spill_destroy(struct lp_store *s)
{
	struct lp_store *b = spill_of(s)->beyond;

	b->ops->destroy(b);
}

static const struct lp_store_ops swap_spill_ops = {
	.name = "file+remote",
	.write = spill_write,
	.read = spill_read,
	.read_sync = spill_read_sync,
	.read_many = spill_read_many,
	.finish_read = spill_finish_read,
	.forget = spill_forget,
	.stats = spill_stats,
	.destroy = spill_destroy,
};

void swap_spill_to(struct lp_swap *sw, struct lp_store *beyond)
{
	pthread_mutex_lock(&sw->lock);
	sw->beyond = beyond;
	sw->spill.ops = &swap_spill_ops;
	/* Full already (the file could not grow, or swap_max is reached):
	 * from the next slot on. */
	if (sw->cannot_grow || (sw->max_slots && sw->nslots >= sw->max_slots))
		(void)spill(sw);
	(void)chain_set_last(&sw->chain, &sw->spill);
	pthread_mutex_unlock(&sw->lock);
}

int swap_open(struct lp_swap **out, const char *path, uint64_t max_bytes)
{
	struct lp_swap *sw = calloc(1, sizeof(*sw));
	int rc, fd;

	if (!sw)
		return -ENOMEM;
	pthread_mutex_init(&sw->lock, NULL);
	sw->max_slots = max_bytes / LP_PG;
	rc = max_bytes && sw->max_slots == 0 ? -EINVAL : 0;
	fd = rc ? rc : swap_create(path);
	if (fd < 0) {
		pthread_mutex_destroy(&sw->lock);
		free(sw);
		return fd;
	}
	/* Direct I/O where the filesystem has it (set here rather than at
	 * open: an O_CREAT|O_DIRECT open refused with EINVAL may have
	 * created the file already). */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_DIRECT);
	sw->fd = fd;
	sw->spill_from = UINT64_MAX;
	sw->file.ops = &swap_file_ops;
	(void)chain_add(&sw->chain, &sw->file);
	atomic_init(&sw->users, 1);
	sw->direct = (fcntl(fd, F_GETFL) & O_DIRECT) != 0;
	*out = sw;
	return 0;
}

struct lp_swap *swap_get(struct lp_swap *sw)
{
	atomic_fetch_add(&sw->users, 1);
	return sw;
}

void swap_close(struct lp_swap *sw)
{
	if (!sw || atomic_fetch_sub(&sw->users, 1) != 1)
		return;
	/* Leave nothing of the pages behind: drop every block first (the
	 * file is ours and has no name: nothing else to remove). */
	(void)!ftruncate(sw->fd, 0);
	close(sw->fd);
	chain_destroy(&sw->chain);
	free(sw->used);
	free(sw->refs);
	free(sw->owner);
#ifdef LP_HAVE_SODIUM
	if (sw->crypt) {
		sodium_free(sw->crypt->key);
		free(sw->crypt->ctr);
		free(sw->crypt->tag);
		free(sw->crypt);
	}
#endif
	pthread_mutex_destroy(&sw->lock);
	free(sw);
}

#ifdef LP_HAVE_SODIUM
static int crypt_tables(struct lp_swap *sw, uint64_t cap)
{
	struct swap_crypt *k = sw->crypt;
	uint64_t *ctr = realloc(k->ctr, cap * sizeof(*ctr));
	if (!ctr)
		return -ENOMEM;
	k->ctr = ctr;
	unsigned char(*tag)[16] = realloc(k->tag, cap * sizeof(*tag));
	if (!tag)
		return -ENOMEM;
	k->tag = tag;
	k->cap = cap;
	return 0;
}

int swap_encrypt_enable(struct lp_swap *sw)
{
	if (sodium_init() < 0)
		return -ENOTSUP;
	struct swap_crypt *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
	if (!k->key) {
		free(k);
		return -ENOMEM;
	}
	crypto_aead_xchacha20poly1305_ietf_keygen(k->key);
	pthread_mutex_lock(&sw->lock);
	sw->crypt = k;
	int rc = sw->cap ? crypt_tables(sw, sw->cap) : 0;
	if (rc)
		sw->crypt = NULL;
	pthread_mutex_unlock(&sw->lock);
	if (rc) {
		sodium_free(k->key);
		free(k);
	}
	return rc;
}

static void nonce_of(uint64_t ctr, uint64_t slot,
		     unsigned char n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(n, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	memcpy(n, &ctr, sizeof(ctr));
	memcpy(n + 8, &slot, sizeof(slot));
}

void swap_seal(struct lp_swap *sw, uint64_t slot, const void *page, void *out)
{
	struct swap_crypt *k = sw->crypt;
	unsigned char n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], tag[16];

	pthread_mutex_lock(&sw->lock);
	uint64_t ctr = ++k->next;
	pthread_mutex_unlock(&sw->lock);
	nonce_of(ctr, slot, n);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		out, tag, NULL, page, LP_PG, (const unsigned char *)&slot,
		sizeof(slot), NULL, n, k->key);
	pthread_mutex_lock(&sw->lock);
	if (slot < k->cap) {
		k->ctr[slot] = ctr;
		memcpy(k->tag[slot], tag, sizeof(tag));
	}
	pthread_mutex_unlock(&sw->lock);
}

int swap_unseal(struct lp_swap *sw, uint64_t slot, void *buf)
{
	struct swap_crypt *k = sw->crypt;
	unsigned char n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], tag[16];
	uint64_t ctr = 0;

	pthread_mutex_lock(&sw->lock);
	if (slot < k->cap) {
		ctr = k->ctr[slot];
		memcpy(tag, k->tag[slot], sizeof(tag));
	}
	pthread_mutex_unlock(&sw->lock);
	if (!ctr)
		return -EBADMSG;
	nonce_of(ctr, slot, n);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		    buf, NULL, buf, LP_PG, tag, (const unsigned char *)&slot,
		    sizeof(slot), n, k->key))
		return -EBADMSG;
	return 0;
}
#else
static int crypt_tables(struct lp_swap *sw, uint64_t cap)
{
	(void)sw;
	(void)cap;
	return 0;
}

int swap_encrypt_enable(struct lp_swap *sw)
{
	(void)sw;
	return -ENOTSUP;
}

void swap_seal(struct lp_swap *sw, uint64_t slot, const void *page, void *out)
{
	(void)sw;
	(void)slot;
	memcpy(out, page, LP_PG);
}

int swap_unseal(struct lp_swap *sw, uint64_t slot, void *buf)
{
	(void)sw;
	(void)slot;
	(void)buf;
	return 0;
}
#endif

/* Under sw->lock: the file is full; with a store beyond it, the slots
 * from here on are that store's.  Whether there is one. */
static bool spill(struct lp_swap *sw)
{
	if (!sw->beyond)
		return false;
	if (sw->spill_from == UINT64_MAX)
		__atomic_store_n(&sw->spill_from, sw->nslots, __ATOMIC_RELAXED);
	return true;
}

/* Grow the file (or, past it, the slots of the store beyond it) by at
 * least `want` slots (a multiple of 64).  0 or -errno. */
static int grow(struct lp_swap *sw, uint64_t want)
{
	bool beyond = sw->spill_from != UINT64_MAX;

	/* A file that failed to grow is retried once a second: space may
	 * have been freed on the filesystem since. */
	if (!beyond && sw->cannot_grow && prim_now_ns() - sw->grow_fail_ns < 1000000000u)
		return sw->grow_error;
	__atomic_store_n(&sw->cannot_grow, false, __ATOMIC_RELAXED);
	uint64_t need = (want + 63) / 64 * 64;
	uint64_t add = need > GROW_SLOTS ? need : GROW_SLOTS;
	if (sw->max_slots && !beyond) {
		if (sw->nslots >= sw->max_slots && !(beyond = spill(sw)))
			return -ENOSPC;
		if (!beyond && sw->nslots + add > sw->max_slots)
			add = sw->max_slots - sw->nslots;
		if (need > add)
			need = add;
	}
	int rc = tables(sw, sw->nslots + add);
	if (rc)
		return rc;
	off_t from = (off_t)(sw->nslots * LP_PG), len = (off_t)(add * LP_PG);
	/* (The file holds nothing when another store took its place, nor
	 * past the point where the store beyond it took over.) */
	bool file = chain_last(&sw->chain) == &sw->file || (sw->beyond && !beyond);
	if (file && fallocate(sw->fd, 0, from, len) < 0) {
		rc = -errno;
		/* Less room than a whole step: take what is needed now. */
		if (rc == -ENOSPC && add > need) {
			add = need;
			len = (off_t)(add * LP_PG);
			rc = fallocate(sw->fd, 0, from, len) < 0 ? -errno : 0;
		}
		if (rc == -EOPNOTSUPP) {
			rc = ftruncate(sw->fd, from + len) < 0 ? -errno : 0;
		}
		if (rc && spill(sw)) {
			rc = 0; /* the file is full: on to the store beyond */
		} else if (rc) {
			/* Full (or refused): no more growth until slots free. */
			__atomic_store_n(&sw->cannot_grow, true, __ATOMIC_RELAXED);
			sw->grow_error = rc;
			sw->grow_fail_ns = prim_now_ns();
			return rc;
		}
	}
	sw->nslots += add;
	return 0;
}

static void take(struct lp_swap *sw, uint64_t s)
{
	sw->used[s / 64] |= 1ull << (s % 64);
	sw->refs[s] = 1;
	sw->owner[s] = 0;
	__atomic_store_n(&sw->inuse, sw->inuse + 1, __ATOMIC_RELAXED); /* swap_scarce() reads it unlocked */
}

/* Start of a run of k free words, next-fit from the hint, or UINT64_MAX. */
static uint64_t free_words(struct lp_swap *sw, uint64_t k)
{
	uint64_t words = sw->nslots / 64, run = 0;

	for (uint64_t i = 0; i < words; i++) {
		uint64_t w = (sw->hint + i) % words;
		if (w == 0)
			run = 0; /* runs do not wrap */
		run = sw->used[w] == 0 ? run + 1 : 0;
		if (run == k)
			return w + 1 - k;
	}
	return UINT64_MAX;
}

/* Whether the n slots from s on are all free (and exist, on one store). */
static bool run_free(const struct lp_swap *sw, uint64_t s, unsigned n)
{
	if (s + n > sw->nslots || (s < sw->spill_from && s + n > sw->spill_from))
		return false;
	for (uint64_t i = s; i < s + n; i++)
		if (sw->used[i / 64] & (1ull << (i % 64)))
			return false;
	return true;
}

unsigned swap_alloc(struct lp_swap *sw, unsigned n, uint64_t *slots, int *err)
{
	unsigned got = 0;
	uint64_t k = (n + 63) / 64, at = UINT64_MAX;

	*err = 0;
	pthread_mutex_lock(&sw->lock);
	/* Continue right after the previous allocation when we can, so that
	 * successive batches land next to each other (and read ahead). */
	if (run_free(sw, sw->next, n)) {
		at = sw->next;
	} else {
		uint64_t w = free_words(sw, k);
		/* No free cluster: grow while the file is mostly used; below
		 * that, reuse scattered slots rather than grow without end. */
		if (w == UINT64_MAX && (sw->inuse + n) * 4 > sw->nslots * 3) {
			uint64_t end = sw->nslots;
			int rc = grow(sw, k * 64);
			if (rc == 0 && sw->nslots >= end + k * 64)
				w = end / 64;
			else if (rc)
				*err = rc;
		}
		if (w != UINT64_MAX)
			at = w * 64;
	}
	if (at != UINT64_MAX) {
		for (; got < n; got++) {
			slots[got] = at + got;
			take(sw, slots[got]);
		}
		sw->next = at + n;
		sw->hint = sw->next / 64;
	} else {
		uint64_t words = sw->nslots / 64;
		for (uint64_t i = 0; i < words && got < n; i++) {
			uint64_t wi = (sw->hint + i) % words;
			uint64_t freebits = ~sw->used[wi];
			while (freebits && got < n) {
				unsigned b = (unsigned)__builtin_ctzll(freebits);
				freebits &= freebits - 1;
				slots[got] = wi * 64 + b;
				take(sw, slots[got++]);
			}
			if (got == n) {
				sw->hint = wi;
				sw->next = slots[got - 1] + 1;
			}
		}
		if (got < n && !*err)
			*err = sw->cannot_grow ? sw->grow_error : -ENOSPC;
	}
	if (sw->inuse > sw->peak)
		sw->peak = sw->inuse;
	pthread_mutex_unlock(&sw->lock);
	return got;
}

void swap_ref(struct lp_swap *sw, uint64_t slot)
{
	pthread_mutex_lock(&sw->lock);
	if (slot < sw->nslots && sw->refs[slot] < UINT16_MAX)
		sw->refs[slot]++;
	pthread_mutex_unlock(&sw->lock);
}

/* Under sw->lock: slot (no references left) is free. */
static void slot_clear(struct lp_swap *sw, uint64_t slot)
{
	sw->used[slot / 64] &= ~(1ull << (slot % 64));
	sw->owner[slot] = 0;
	__atomic_store_n(&sw->inuse, sw->inuse - 1, __ATOMIC_RELAXED);
}

void swap_free(struct lp_swap *sw, uint64_t slot)
{
	pthread_mutex_lock(&sw->lock);
	if (slot < sw->nslots && sw->refs[slot] && --sw->refs[slot] == 0 &&
	    !chain_forget(&sw->chain, slot))
		slot_clear(sw, slot);
	pthread_mutex_unlock(&sw->lock);
}

void swap_release(struct lp_swap *sw, uint64_t slot)
{
	pthread_mutex_lock(&sw->lock);
	if (slot < sw->nslots && !sw->refs[slot] &&
	    (sw->used[slot / 64] & (1ull << (slot % 64))))
		slot_clear(sw, slot);
	pthread_mutex_unlock(&sw->lock);
}

void swap_set_owner(struct lp_swap *sw, uint64_t slot, uint64_t vpn)
{
	pthread_mutex_lock(&sw->lock);
	if (slot < sw->nslots)
		sw->owner[slot] = vpn + 1;
	pthread_mutex_unlock(&sw->lock);
}

uint64_t swap_owner(struct lp_swap *sw, uint64_t slot)
{
	uint64_t v = UINT64_MAX;

	pthread_mutex_lock(&sw->lock);
	if (slot < sw->nslots && sw->owner[slot])
		v = sw->owner[slot] - 1;
	pthread_mutex_unlock(&sw->lock);
	return v;
}
