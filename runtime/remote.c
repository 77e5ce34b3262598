/* SPDX-License-Identifier: MIT */
/*
 * The remote store on Redis shards (remote.h says what it promises).
 */
#include "remote.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prim.h"

#ifdef LP_HAVE_HIREDIS
#include <hiredis/hiredis.h>

#define WORKERS 4
#define CLUSTER_SHIFT 4 /* 16 slots (64 KiB) share their shards */
#define TRASH_BATCH 256
#define DOWN_NS 1000000000ull
#define KEYLEN 64

/* What the store knows of a slot: the generation of its content (a part
 * of its key) and the shards that acknowledged it. */
struct slot_meta {
	uint32_t gen;
	uint16_t where;
};

struct shard {
	char host[256];
	int port;
	_Atomic uint64_t down_until; /* left out until then (ns) */
};

/* A request: a run of pages from slot0, async (req on the ring ring_fd)
 * or waited for (done, a futex). */
struct rop {
	struct rop *next;
	bool write;
	uint64_t slot0;
	unsigned n;
	void *page[LP_IO_MAXV];
	struct lp_io_req *req;
	int ring_fd;
	atomic_int done;
	int res;
};

struct worker {
	struct remote *rm;
	pthread_t thr;
	bool up;
	redisContext *c[LP_REMOTE_SHARDS_MAX];
	struct io_uring ring; /* posts completions */
	bool ring_up;
};

struct remote {
	struct lp_store st;
	struct lp_swap *sw;
	unsigned n, r;
	struct shard shard[LP_REMOTE_SHARDS_MAX];
	char prefix[40];
	char user[128], pass[256];
	/* The queue of requests, and what the workers wait on. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rop *head, *tail;
	bool stop;
	/* Slot metadata (under meta_mu), grown on demand. */
	pthread_mutex_t meta_mu;
	struct slot_meta *meta;
	uint64_t cap;
	/* Keys to delete: slot, generation, holders. */
	struct { uint64_t slot; uint32_t gen; uint16_t where; } trash[TRASH_BATCH];
	unsigned ntrash;
	struct worker w[WORKERS];
	/* Shards that went down, whose pages are to get their copies back
	 * elsewhere (one worker at a time: remaking, under mu). */
	atomic_uint lost;
	bool remaking;
	_Atomic uint64_t stores, loads, failures, entries, remade;
};

static struct remote *of(struct lp_store *s)
{
	return (struct remote *)s;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

/* The first shard of slot's ring order. */
static unsigned base_of(const struct remote *rm, uint64_t slot)
{
	return (unsigned)(mix64(slot >> CLUSTER_SHIFT) % rm->n);
}

static bool shard_up(struct remote *rm, unsigned i)
{
	return atomic_load(&rm->shard[i].down_until) <= prim_now_ns();
}

static void key_of(const struct remote *rm, uint64_t slot, uint32_t gen, char *k)
{
	snprintf(k, KEYLEN, "%s%llx:%x", rm->prefix, (unsigned long long)slot, gen);
}

/* ---- connections ---- */

static void drop_conn(struct worker *w, unsigned i, bool fail)
{
	if (w->c[i]) {
		redisFree(w->c[i]);
		w->c[i] = NULL;
	}
	if (fail) {
		uint64_t now = prim_now_ns();
		/* Newly down: its pages' copies are made again elsewhere
		 * (a worker sees it before it waits again). */
		if (atomic_exchange(&w->rm->shard[i].down_until, now + DOWN_NS) <= now)
			atomic_fetch_or(&w->rm->lost, 1u << i);
	}
}

/* A connection to shard i: the worker's, or a new one; NULL while the
 * shard is left out (unless force: a last resort) or does not answer. */
static redisContext *conn_to(struct worker *w, unsigned i, bool force)
{
	struct remote *rm = w->rm;
	struct timeval tv = { 0, LP_REMOTE_TIMEOUT_MS * 1000 };

	if (w->c[i])
		return w->c[i];
	if (!force && !shard_up(rm, i))
		return NULL;
	redisContext *c = redisConnectWithTimeout(rm->shard[i].host, rm->shard[i].port, tv);
	if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
		if (c)
			redisFree(c);
		drop_conn(w, i, true);
		return NULL;
	}
	if (rm->pass[0]) {
		redisReply *rp = rm->user[0]
			? redisCommand(c, "AUTH %s %s", rm->user, rm->pass)
			: redisCommand(c, "AUTH %s", rm->pass);
		bool ok = rp && rp->type == REDIS_REPLY_STATUS;
		if (rp)
			freeReplyObject(rp);
		if (!ok) {
			redisFree(c);
			drop_conn(w, i, true);
			return NULL;
		}
	}
	w->c[i] = c;
	return c;
}

static redisContext *conn(struct worker *w, unsigned i)
{
	return conn_to(w, i, false);
}

/* ---- metadata ---- */

static int meta_grow(struct remote *rm, uint64_t slot)
{
	if (slot < rm->cap)
		return 0;
	uint64_t cap = rm->cap ? rm->cap : 1024;
	while (cap <= slot)
		cap *= 2;
	struct slot_meta *m = realloc(rm->meta, cap * sizeof(*m));
	if (!m)
		return -ENOMEM;
	memset(m + rm->cap, 0, (cap - rm->cap) * sizeof(*m));
	rm->meta = m;
	rm->cap = cap;
	return 0;
}

/* ---- serving a request ---- */

/* Send the commands of one round, shard by shard, then read every reply.
 * cmd[i] >= 0: page i goes to (or comes from) shard cmd[i] in this round;
 * ok[i] comes back true for a page the shard stored (SET) or answered in
 * full (GET: copied into its page). */
static void round_trip(struct worker *w, struct rop *op, const int *cmd,
		       const uint32_t *gen, bool *ok, bool force)
{
	struct remote *rm = w->rm;
	char key[LP_IO_MAXV][KEYLEN];
	unsigned sent[LP_REMOTE_SHARDS_MAX] = { 0 }, idx[LP_REMOTE_SHARDS_MAX][LP_IO_MAXV];
	redisContext *c[LP_REMOTE_SHARDS_MAX] = { NULL };

	/* Every shard's commands out first, so that their round trips
	 * overlap; then the replies. */
	for (unsigned s = 0; s < rm->n; s++) {
		for (unsigned i = 0; i < op->n; i++) {
			if (cmd[i] != (int)s)
				continue;
			if (!c[s] && !(c[s] = conn_to(w, s, force)))
				break;
			key_of(rm, op->slot0 + i, gen[i], key[i]);
			const char *argv[3] = { op->write ? "SET" : "GET", key[i], op->page[i] };
			size_t len[3] = { 3, strlen(key[i]), LP_PG };
			if (redisAppendCommandArgv(c[s], op->write ? 3 : 2, argv, len) != REDIS_OK)
				break;
			idx[s][sent[s]++] = i;
		}
		int done = 0;
		while (sent[s] && !done)
			if (redisBufferWrite(c[s], &done) != REDIS_OK) {
				drop_conn(w, s, true);
				sent[s] = 0;
			}
	}
	for (unsigned s = 0; s < rm->n; s++)
		for (unsigned k = 0; k < sent[s]; k++) {
			redisReply *rp = NULL;
			if (redisGetReply(c[s], (void **)&rp) != REDIS_OK || !rp) {
				drop_conn(w, s, true); /* error or timeout */
				break;
			}
			unsigned i = idx[s][k];
			if (force)
				atomic_store(&rm->shard[s].down_until, 0); /* it answers */
			if (op->write) {
				ok[i] = rp->type == REDIS_REPLY_STATUS;
			} else if (rp->type == REDIS_REPLY_STRING && rp->len == LP_PG) {
				memcpy(op->page[i], rp->str, LP_PG);
				ok[i] = true;
			}
			freeReplyObject(rp);
		}
}

/* The next shard of slot's ring order, from the *next-th on, that answers
 * now and is one of among (a mask); -1 when none is left. */
static int next_shard(struct remote *rm, uint64_t slot, unsigned *next, uint16_t among)
{
	unsigned b = base_of(rm, slot);

	/* *next counts two passes: the shards that answer now, then, as a
	 * last resort, those left out (a shard only slow, on a loaded
	 * machine, is taken for down: its pages must not be lost for it). */
	while (*next < 2 * rm->n) {
		unsigned k = (*next)++;
		unsigned s = (b + k % rm->n) % rm->n;
		bool up = shard_up(rm, s);
		if ((among >> s & 1) && (k < rm->n ? up : !up))
			return (int)s;
	}
	return -1;
}

/* The next round of a request: cmd[i], the shard page i goes to (or
 * comes from), for each page still wanted, among the shards its mask
 * allows; -1 for the others.  *force: a shard left out is asked (last
 * resort).  False when no page has a shard left to try. */
static bool plan_round(struct remote *rm, const struct rop *op, const bool *want,
		       const uint16_t *among, unsigned *next, int *cmd, bool *force)
{
	bool any = false;

	*force = false;
	for (unsigned i = 0; i < op->n; i++) {
		cmd[i] = want[i] ? next_shard(rm, op->slot0 + i, &next[i], among[i]) : -1;
		any |= cmd[i] >= 0;
		*force |= cmd[i] >= 0 && next[i] > rm->n;
	}
	return any;
}

/* Each page on r live shards; 0 or -EIO (fewer than r took a page). */
static int serve_write(struct worker *w, struct rop *op)
{
	struct remote *rm = w->rm;
	uint32_t gen[LP_IO_MAXV];
	uint16_t where[LP_IO_MAXV] = { 0 };
	unsigned next[LP_IO_MAXV] = { 0 }, have[LP_IO_MAXV] = { 0 };

	pthread_mutex_lock(&rm->meta_mu);
	int rc = meta_grow(rm, op->slot0 + op->n - 1);
	for (unsigned i = 0; !rc && i < op->n; i++)
		gen[i] = ++rm->meta[op->slot0 + i].gen;
	pthread_mutex_unlock(&rm->meta_mu);
	if (rc)
		return rc;
	/* Rounds: each page goes to its next shard in ring order until r
	 * took it or every shard was tried. */
	for (;;) {
		int cmd[LP_IO_MAXV];
		bool ok[LP_IO_MAXV] = { false }, want[LP_IO_MAXV], force;
		uint16_t among[LP_IO_MAXV];
		for (unsigned i = 0; i < op->n; i++) {
			want[i] = have[i] < rm->r;
			among[i] = (uint16_t)~where[i]; /* never one shard twice */
		}
		if (!plan_round(rm, op, want, among, next, cmd, &force))
			break;
		round_trip(w, op, cmd, gen, ok, force);
		for (unsigned i = 0; i < op->n; i++)
			if (cmd[i] >= 0 && ok[i]) {
				have[i]++;
				where[i] |= (uint16_t)(1u << cmd[i]);
			}
	}
	for (unsigned i = 0; i < op->n; i++)
		if (have[i] < rm->r)
			return -EIO;
	pthread_mutex_lock(&rm->meta_mu);
	for (unsigned i = 0; i < op->n; i++) {
		struct slot_meta *m = &rm->meta[op->slot0 + i];
		if (m->gen == gen[i]) {
			if (!m->where)
				atomic_fetch_add(&rm->entries, 1);
			m->where = where[i];
		}
	}
	pthread_mutex_unlock(&rm->meta_mu);
	atomic_fetch_add(&rm->stores, op->n);
	return 0;
}

/* Each page from the first holder that answers; 0 or -EIO (a page no
 * live holder gave back). */
static int serve_read(struct worker *w, struct rop *op)
{
	struct remote *rm = w->rm;
	uint32_t gen[LP_IO_MAXV];
	uint16_t where[LP_IO_MAXV];
	unsigned next[LP_IO_MAXV] = { 0 };
	bool got[LP_IO_MAXV] = { false };

	pthread_mutex_lock(&rm->meta_mu);
	for (unsigned i = 0; i < op->n; i++) {
		uint64_t s = op->slot0 + i;
		gen[i] = s < rm->cap ? rm->meta[s].gen : 0;
		where[i] = s < rm->cap ? rm->meta[s].where : 0;
	}
	pthread_mutex_unlock(&rm->meta_mu);
	for (;;) {
		int cmd[LP_IO_MAXV];
		bool want[LP_IO_MAXV], force;
		for (unsigned i = 0; i < op->n; i++)
			want[i] = !got[i];
		if (!plan_round(rm, op, want, where, next, cmd, &force))
			break;
		round_trip(w, op, cmd, gen, got, force);
	}
	for (unsigned i = 0; i < op->n; i++)
		if (!got[i])
			return -EIO;
	atomic_fetch_add(&rm->loads, op->n);
	return 0;
}

/* Delete the keys of freed slots (best effort: a shard down now keeps
 * them until the run's end, when every key of the run goes). */
static void serve_trash(struct worker *w)
{
	struct remote *rm = w->rm;
	unsigned n;
	__typeof__(rm->trash[0]) t[TRASH_BATCH];

	pthread_mutex_lock(&rm->mu);
	n = rm->ntrash;
	memcpy(t, rm->trash, n * sizeof(t[0]));
	rm->ntrash = 0;
	pthread_mutex_unlock(&rm->mu);
	for (unsigned s = 0; s < rm->n; s++) {
		redisContext *c = NULL;
		unsigned sent = 0;
		for (unsigned i = 0; i < n; i++) {
			if (!(t[i].where >> s & 1) || (!c && !(c = conn(w, s))))
				continue;
			char key[KEYLEN];
			key_of(rm, t[i].slot, t[i].gen, key);
			if (redisAppendCommand(c, "DEL %s", key) == REDIS_OK)
				sent++;
		}
		for (unsigned k = 0; k < sent; k++) {
			redisReply *rp = NULL;
			if (redisGetReply(c, (void **)&rp) != REDIS_OK) {
				drop_conn(w, s, true);
				break;
			}
			freeReplyObject(rp);
		}
	}
}

/* Copies of slot on shards that answer now. */
static unsigned live_copies(struct remote *rm, uint16_t where)
{
	unsigned n = 0;
	for (unsigned s = 0; s < rm->n; s++)
		n += (where >> s & 1) && shard_up(rm, s);
	return n;
}

/* One slot whose copies fell below r (those on the shards of lost do not
 * count): read a copy, write it to the next shards in ring order that
 * answer and do not hold it.  Once r copies are elsewhere, the lost
 * shards are no longer taken for holders. */
static void remake_one(struct worker *w, uint64_t slot, uint32_t gen, uint16_t where,
		       uint16_t lost)
{
	struct remote *rm = w->rm;
	char key[KEYLEN];
	redisReply *val = NULL;
	unsigned b = base_of(rm, slot);

	key_of(rm, slot, gen, key);
	for (unsigned k = 0; k < rm->n && !val; k++) {
		unsigned s = (b + k) % rm->n;
		redisContext *c = (where >> s & 1) ? conn(w, s) : NULL;
		redisReply *rp = c ? redisCommand(c, "GET %s", key) : NULL;
		if (!rp && c)
			drop_conn(w, s, true);
		if (rp && rp->type == REDIS_REPLY_STRING && rp->len == LP_PG)
			val = rp;
		else if (rp)
			freeReplyObject(rp);
	}
	if (!val)
		return; /* no copy answers: its reads will say so */
	uint16_t added = 0, kept = (uint16_t)(where & ~lost);
	for (unsigned k = 0; k < rm->n && live_copies(rm, kept | added) < rm->r; k++) {
		unsigned s = (b + k) % rm->n;
		redisContext *c = (where | added) >> s & 1 ? NULL : conn(w, s);
		redisReply *rp = c ? redisCommand(c, "SET %s %b", key, val->str, (size_t)LP_PG) : NULL;
		if (!rp && c)
			drop_conn(w, s, true);
		if (rp && rp->type == REDIS_REPLY_STATUS)
			added |= (uint16_t)(1u << s);
		if (rp)
			freeReplyObject(rp);
	}
	freeReplyObject(val);
	pthread_mutex_lock(&rm->meta_mu);
	struct slot_meta *m = &rm->meta[slot];
	if (m->gen == gen && m->where) { /* (not freed or rewritten since) */
		m->where |= added;
		if (live_copies(rm, kept | added) >= rm->r)
			m->where &= (uint16_t)~lost;
		atomic_fetch_add(&rm->remade, (uint64_t)__builtin_popcount(added));
	}
	pthread_mutex_unlock(&rm->meta_mu);
}

/*
 * The pages that had a copy on a shard of lost get r live copies again,
 * 64 slots at a time (requests go first: another worker serves them).
 * The shards of lost do not count as holders for the whole pass, whether
 * they answer again or not: a shard that failed may have restarted empty
 * (its connections broke; it answers at once, without our keys).  When
 * it was counted again as soon as it answered (a second), a table too
 * large to go through in that time kept copies that were gone for its
 * later slots: 3031 of 32768 pages were lost with a second shard.  A
 * shard that only stalled keeps copies no longer counted; its keys go at
 * the run's end.
 */
static void serve_remake(struct worker *w, unsigned lost)
{
	struct remote *rm = w->rm;
	uint64_t at = 0;
	bool more = true;

	while (more && !__atomic_load_n(&rm->stop, __ATOMIC_RELAXED)) {
		uint64_t slot[64];
		uint32_t gen[64];
		uint16_t where[64];
		unsigned n = 0;
		pthread_mutex_lock(&rm->meta_mu);
		for (; at < rm->cap && n < 64; at++) {
			struct slot_meta m = rm->meta[at];
			if ((m.where & lost) &&
			    live_copies(rm, (uint16_t)(m.where & ~lost)) < rm->r) {
				slot[n] = at;
				gen[n] = m.gen;
				where[n++] = m.where;
			}
		}
		more = at < rm->cap;
		pthread_mutex_unlock(&rm->meta_mu);
		for (unsigned i = 0; i < n; i++)
			remake_one(w, slot[i], gen[i], where[i], (uint16_t)lost);
	}
}

static void complete(struct worker *w, struct rop *op, int res)
{
	if (!op->req) {
		op->res = res;
		atomic_store(&op->done, 1);
		syscall(SYS_futex, &op->done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		return;
	}
	if (res)
		atomic_fetch_add(&w->rm->failures, 1);
	/* (A ring that cannot post is a ring being torn down: its owner
	 * no longer waits for the request.) */
	(void)io_post_remote(&w->ring, op->ring_fd, op->req, res);
	free(op);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct remote *rm = w->rm;

	pthread_mutex_lock(&rm->mu);
	for (;;) {
		while (!rm->head && rm->ntrash < TRASH_BATCH && !rm->stop &&
		       (rm->remaking || !atomic_load(&rm->lost)))
			pthread_cond_wait(&rm->cv, &rm->mu);
		struct rop *op = rm->head;
		if (op) {
			rm->head = op->next;
			if (!rm->head)
				rm->tail = NULL;
			pthread_mutex_unlock(&rm->mu);
			complete(w, op, op->write ? serve_write(w, op) : serve_read(w, op));
		} else if (rm->ntrash >= TRASH_BATCH) {
			pthread_mutex_unlock(&rm->mu);
			serve_trash(w);
		} else if (!rm->stop && !rm->remaking && atomic_load(&rm->lost)) {
			rm->remaking = true;
			pthread_mutex_unlock(&rm->mu);
			serve_remake(w, atomic_exchange(&rm->lost, 0));
			pthread_mutex_lock(&rm->mu);
			rm->remaking = false;
			pthread_mutex_unlock(&rm->mu);
		} else {
			break; /* stopping, nothing left */
		}
		pthread_mutex_lock(&rm->mu);
	}
	pthread_mutex_unlock(&rm->mu);
	return NULL;
}

static void enqueue(struct remote *rm, struct rop *op)
{
	pthread_mutex_lock(&rm->mu);
	op->next = NULL;
	if (rm->tail)
		rm->tail->next = op;
	else
		rm->head = op;
	rm->tail = op;
	pthread_cond_signal(&rm->cv);
	pthread_mutex_unlock(&rm->mu);
}

/* A request for req's run; NULL if its pages are not whole pages. */
static struct rop *op_of(bool write, uint64_t slot0, const struct iovec *iov, int niov)
{
	struct rop *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->write = write;
	op->slot0 = slot0;
	for (int k = 0; k < niov; k++) {
		if (iov[k].iov_len % LP_PG)
			goto bad;
		for (size_t off = 0; off < iov[k].iov_len; off += LP_PG) {
			if (op->n == LP_IO_MAXV)
				goto bad;
			op->page[op->n++] = (char *)iov[k].iov_base + off;
		}
	}
	if (op->n)
		return op;
bad:
	free(op);
	return NULL;
}

static int start(struct lp_store *s, struct lp_io *io, struct lp_io_req *req,
		 uint64_t slot0, bool write)
{
	struct rop *op = op_of(write, slot0, req->iov, req->niov);

	if (!op)
		return -EINVAL;
	req->fd = -1;
	req->off = slot0;
	op->req = req;
	op->ring_fd = io_ring_fd(io);
	io_expect_remote(io, req, write ? LP_IOR_WRITE : LP_IOR_READ);
	enqueue(of(s), op);
	return 0;
}

static int remote_write(struct lp_store *s, struct lp_io *io, struct lp_io_req *req,
			uint64_t slot0)
{
	return start(s, io, req, slot0, true);
}

static int remote_read(struct lp_store *s, struct lp_io *io, struct lp_io_req *req,
		       uint64_t slot0)
{
	return start(s, io, req, slot0, false);
}

/* Queue ops[0..n) and wait for them all. */
static void wait_all(struct remote *rm, struct rop **ops, int n)
{
	for (int i = 0; i < n; i++)
		if (ops[i])
			enqueue(rm, ops[i]);
	for (int i = 0; i < n; i++)
		while (ops[i] && !atomic_load(&ops[i]->done))
			syscall(SYS_futex, &ops[i]->done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static long remote_read_sync(struct lp_store *s, struct lp_io *io, uint64_t slot0,
			     const struct iovec *iov, int n)
{
	(void)io;
	struct rop *op = op_of(false, slot0, iov, n);
	if (!op)
		return -EINVAL;
	wait_all(of(s), &op, 1);
	long rc = op->res ? (long)op->res : (long)(op->n * LP_PG);
	free(op);
	return rc;
}

static void remote_read_many(struct lp_store *s, struct lp_io *io,
			     struct lp_io_read *rd, int n)
{
	struct rop *ops[LP_IO_MAXV];
	int of_run[LP_IO_MAXV];
	const size_t most = (size_t)LP_IO_MAXV * LP_PG;

	(void)io;
	for (int i = 0; i < n; i++)
		rd[i].res = 0;
	/* Requests of at most LP_IO_MAXV pages (a run may be longer), at
	 * most LP_IO_MAXV of them at a time. */
	int i = 0;
	size_t done = 0;
	while (i < n) {
		int k = 0;
		while (k < LP_IO_MAXV && i < n) {
			size_t len = rd[i].len - done < most ? rd[i].len - done : most;
			struct iovec v = { (char *)rd[i].buf + done, len };
			of_run[k] = i;
			ops[k++] = op_of(false, rd[i].off + done / LP_PG, &v, 1);
			done += len;
			if (done == rd[i].len) {
				i++;
				done = 0;
			}
		}
		wait_all(of(s), ops, k);
		for (int j = 0; j < k; j++) {
			struct lp_io_read *r = &rd[of_run[j]];
			long res = !ops[j] ? -EINVAL : ops[j]->res;
			if (res < 0 && r->res >= 0)
				r->res = res;
			free(ops[j]);
		}
	}
	for (int j = 0; j < n; j++)
		if (rd[j].res >= 0)
			rd[j].res = (long)rd[j].len;
}

static int remote_finish_read(struct lp_store *s, uint64_t slot, void *page)
{
	struct lp_swap *sw = of(s)->sw;

	return swap_encrypted(sw) && swap_unseal(sw, slot, page) ? -EIO : 0;
}

static bool remote_forget(struct lp_store *s, uint64_t slot)
{
	struct remote *rm = of(s);
	struct slot_meta m = { 0, 0 };

	pthread_mutex_lock(&rm->meta_mu);
	if (slot < rm->cap) {
		m = rm->meta[slot];
		rm->meta[slot].where = 0;
	}
	pthread_mutex_unlock(&rm->meta_mu);
	if (!m.where)
		return false;
	atomic_fetch_sub(&rm->entries, 1);
	pthread_mutex_lock(&rm->mu);
	if (rm->ntrash < TRASH_BATCH) {
		rm->trash[rm->ntrash].slot = slot;
		rm->trash[rm->ntrash].gen = m.gen;
		rm->trash[rm->ntrash].where = m.where;
		if (++rm->ntrash == TRASH_BATCH)
			pthread_cond_signal(&rm->cv);
	}
	pthread_mutex_unlock(&rm->mu);
	return false; /* (a write in flight is its writer's: evict.c) */
}

static void remote_stats(struct lp_store *s, struct lp_store_stats *out)
{
	struct remote *rm = of(s);

	memset(out, 0, sizeof(*out));
	out->stores = atomic_load(&rm->stores);
	out->loads = atomic_load(&rm->loads);
	out->rejects = atomic_load(&rm->failures);
	out->entries = atomic_load(&rm->entries);
	out->flushed = atomic_load(&rm->remade); /* copies made again */
	out->bytes = out->entries * rm->r * LP_PG;
}

/* Every key of the run, on every shard that answers (SCAN, DEL). */
static void delete_all(struct remote *rm)
{
	struct worker w = { .rm = rm };
	char match[64];

	snprintf(match, sizeof match, "%s*", rm->prefix);
	for (unsigned s = 0; s < rm->n; s++) {
		atomic_store(&rm->shard[s].down_until, 0);
		redisContext *c = conn(&w, s);
		char cursor[32] = "0";
		for (int guard = 0; c && guard < 1000000; guard++) {
			redisReply *rp = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, match);
			if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != 2) {
				if (rp)
					freeReplyObject(rp);
				break;
			}
			snprintf(cursor, sizeof cursor, "%s", rp->element[0]->str);
			redisReply *keys = rp->element[1];
			for (size_t k = 0; k < keys->elements; k++)
				redisAppendCommand(c, "DEL %b", keys->element[k]->str,
						   keys->element[k]->len);
			bool ok = true;
			for (size_t k = 0; k < keys->elements && ok; k++) {
				redisReply *d = NULL;
				ok = redisGetReply(c, (void **)&d) == REDIS_OK;
				if (d)
					freeReplyObject(d);
			}
			freeReplyObject(rp);
			if (!ok || !strcmp(cursor, "0"))
				break;
		}
		drop_conn(&w, s, false);
	}
}

static void remote_destroy(struct lp_store *s)
{
	struct remote *rm = of(s);

	pthread_mutex_lock(&rm->mu);
	__atomic_store_n(&rm->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&rm->cv);
	pthread_mutex_unlock(&rm->mu);
	for (unsigned k = 0; k < WORKERS; k++) {
		struct worker *w = &rm->w[k];
		if (w->up)
			pthread_join(w->thr, NULL);
		for (unsigned i = 0; i < rm->n; i++)
			drop_conn(w, i, false);
		if (w->ring_up)
			io_uring_queue_exit(&w->ring);
	}
	delete_all(rm);
	free(rm->meta);
	pthread_mutex_destroy(&rm->mu);
	pthread_mutex_destroy(&rm->meta_mu);
	pthread_cond_destroy(&rm->cv);
	explicit_bzero(rm->pass, sizeof rm->pass);
	free(rm);
}

static const struct lp_store_ops remote_ops = {
	.name = "remote",
	.write = remote_write,
	.read = remote_read,
	.read_sync = remote_read_sync,
	.read_many = remote_read_many,
	.finish_read = remote_finish_read,
	.forget = remote_forget,
	.stats = remote_stats,
	.destroy = remote_destroy,
};

/* ---- setup ---- */

static int parse_spec(struct remote *rm, const char *spec)
{
	if (!strncmp(spec, "redis://", 8))
		spec += 8;
	while (*spec) {
		if (rm->n == LP_REMOTE_SHARDS_MAX)
			return -EINVAL;
		if (!strncmp(spec, "redis://", 8))
			spec += 8;
		struct shard *sh = &rm->shard[rm->n];
		const char *end = strchr(spec, ',');
		size_t len = end ? (size_t)(end - spec) : strlen(spec);
		const char *colon = memrchr(spec, ':', len);
		if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof sh->host)
			return -EINVAL;
		const char *h = spec;
		size_t hl = (size_t)(colon - spec);
		if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		memcpy(sh->host, h, hl);
		sh->host[hl] = 0;
		char *stop;
		long port = strtol(colon + 1, &stop, 10);
		if (stop != spec + len || port <= 0 || port > 65535)
			return -EINVAL;
		sh->port = (int)port;
		rm->n++;
		spec += len + (end ? 1 : 0);
	}
	return rm->n ? 0 : -EINVAL;
}

/* The password: LAZYPAGE_REMOTE_AUTH, or the first line of the file
 * LAZYPAGE_REMOTE_AUTH_FILE; "user password" or "password". */
static int read_auth(struct remote *rm)
{
	char line[400] = "";
	const char *v = getenv("LAZYPAGE_REMOTE_AUTH");
	const char *path = getenv("LAZYPAGE_REMOTE_AUTH_FILE");

	if (v && *v) {
		snprintf(line, sizeof line, "%s", v);
	} else if (path && *path) {
		FILE *f = fopen(path, "re");
		if (!f)
			return -errno;
		if (!fgets(line, sizeof line, f))
			line[0] = 0;
		fclose(f);
		line[strcspn(line, "\r\n")] = 0;
	}
	char *sp = strchr(line, ' ');
	if (sp) {
		*sp = 0;
		snprintf(rm->user, sizeof rm->user, "%s", line);
		snprintf(rm->pass, sizeof rm->pass, "%s", sp + 1);
	} else {
		snprintf(rm->pass, sizeof rm->pass, "%s", line);
	}
	explicit_bzero(line, sizeof line);
	return 0;
}

/* Whether enough shards answer now (a PING each), and AUTH is taken. */
static int probe(struct remote *rm)
{
	struct worker w = { .rm = rm };
	unsigned live = 0;
	bool refused = false;

	for (unsigned i = 0; i < rm->n; i++) {
		redisContext *c = conn(&w, i);
		redisReply *rp = c ? redisCommand(c, "PING") : NULL;
		if (rp && rp->type == REDIS_REPLY_ERROR && strstr(rp->str, "NOAUTH"))
			refused = true;
		else if (rp && rp->type == REDIS_REPLY_STATUS)
			live++;
		if (rp)
			freeReplyObject(rp);
		drop_conn(&w, i, false);
	}
	if (live >= rm->r)
		return 0;
	return refused || (rm->pass[0] && live == 0) ? -EACCES : -ECONNREFUSED;
}

int remote_new(struct remote **out, const char *spec, unsigned replicas,
	       struct lp_swap *sw)
{
	struct remote *rm = calloc(1, sizeof(*rm));
	int rc;

	if (!rm)
		return -ENOMEM;
	rm->st.ops = &remote_ops;
	rm->sw = sw;
	pthread_mutex_init(&rm->mu, NULL);
	pthread_mutex_init(&rm->meta_mu, NULL);
	pthread_cond_init(&rm->cv, NULL);
	uint64_t id = 0;
	if ((rc = parse_spec(rm, spec ? spec : "")))
		goto fail;
	rm->r = replicas ? replicas : 2;
	if (rm->r > rm->n) {
		rc = -EINVAL;
		goto fail;
	}
	if (getrandom(&id, sizeof id, 0) != sizeof id) {
		rc = -errno;
		goto fail;
	}
	snprintf(rm->prefix, sizeof rm->prefix, "lp:%016llx:", (unsigned long long)id);
	if ((rc = read_auth(rm)) || (rc = probe(rm)))
		goto fail;
	/* Workers take no signal of the program's. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned k = 0; k < WORKERS && !rc; k++) {
		struct worker *w = &rm->w[k];
		w->rm = rm;
		if (io_uring_queue_init(16, &w->ring, 0) < 0)
			rc = -ENOMEM;
		else if (!(w->ring_up = true) || pthread_create(&w->thr, NULL, worker_main, w))
			rc = -EAGAIN;
		else
			w->up = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		remote_destroy(&rm->st);
		return rc;
	}
	*out = rm;
	return 0;
fail:
	pthread_mutex_destroy(&rm->mu);
	pthread_mutex_destroy(&rm->meta_mu);
	pthread_cond_destroy(&rm->cv);
	explicit_bzero(rm->pass, sizeof rm->pass);
	free(rm);
	return rc;
}

struct lp_store *remote_as_store(struct remote *rm)
{
	return &rm->st;
}

#else /* no hiredis */

int remote_new(struct remote **out, const char *spec, unsigned replicas,
	       struct lp_swap *sw)
{
	(void)out;
	(void)spec;
	(void)replicas;
	(void)sw;
	return -ENOTSUP;
}

struct lp_store *remote_as_store(struct remote *rm)
{
	(void)rm;
	return NULL;
}

#endif
