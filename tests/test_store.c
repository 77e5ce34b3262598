/* SPDX-License-Identifier: MIT */
/*
 * The backing-store interface (runtime/store.h): the chain's order, what
 * each memory store takes and gives back, forgetting a slot; the pool and
 * the swap file through the same operations the runtime uses.  White-box:
 * no vm, no userfaultfd.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "store.h"
#include "swap.h"
#include "zpool.h"

/* A memory store that admits batches or not, takes the slots `takes`
 * says, and holds what it took in a small table. */
struct fake {
	struct lp_store base;
	bool admit, corrupt, busy;
	bool (*takes)(uint64_t slot);
	uint64_t held[64];
	unsigned nheld, forgets, gets;
};

static struct fake *fake_of(struct lp_store *s)
{
	return (struct fake *)s;
}

static int held_at(struct fake *f, uint64_t slot)
{
	for (unsigned i = 0; i < f->nheld; i++)
		if (f->held[i] == slot)
			return (int)i;
	return -1;
}

static bool fk_admit(struct lp_store *s, const uint64_t *slots, unsigned n)
{
	(void)slots;
	(void)n;
	return fake_of(s)->admit;
}

static int fk_put(struct lp_store *s, uint64_t slot, const void *page)
{
	struct fake *f = fake_of(s);

	(void)page;
	cr_assert_lt(held_at(f, slot), 0, "slot %lu offered twice", slot);
	if (!f->takes(slot))
		return -E2BIG;
	f->held[f->nheld++] = slot;
	return 0;
}

static int fk_get(struct lp_store *s, uint64_t slot, void *buf)
{
	struct fake *f = fake_of(s);
	int i = held_at(f, slot);

	f->gets++;
	if (i < 0)
		return 0;
	if (f->corrupt)
		return -EBADMSG;
	memset(buf, (int)(slot & 0xff), LP_PG);
	f->held[i] = f->held[--f->nheld]; /* it leaves the store */
	return 1;
}

static bool fk_holds(struct lp_store *s, uint64_t slot)
{
	return held_at(fake_of(s), slot) >= 0;
}

static bool fk_forget(struct lp_store *s, uint64_t slot)
{
	struct fake *f = fake_of(s);
	int i = held_at(f, slot);

	f->forgets++;
	if (i >= 0)
		f->held[i] = f->held[--f->nheld];
	return f->busy;
}

static void fk_destroy(struct lp_store *s)
{
	(void)s;
}

static const struct lp_store_ops fake_ops = {
	.name = "fake", .admit = fk_admit, .put = fk_put, .get = fk_get,
	.holds = fk_holds, .forget = fk_forget, .destroy = fk_destroy,
};

static bool even(uint64_t slot)
{
	return slot % 2 == 0;
}

static bool any(uint64_t slot)
{
	(void)slot;
	return true;
}

#define N 8

/* A chain A, B in front of last; pages for slots 0..N-1 offered. */
static void offer(struct lp_chain *c, bool *taken)
{
	static char page[LP_PG];
	uint64_t slots[N];
	const void *pages[N];

	for (unsigned k = 0; k < N; k++) {
		slots[k] = k;
		pages[k] = page;
	}
	chain_offer(c, slots, pages, N, taken);
}

static void make(struct lp_chain *c, struct fake *a, struct fake *b,
		 struct fake *last)
{
	memset(c, 0, sizeof(*c));
	*a = (struct fake){ .base.ops = &fake_ops, .admit = true, .takes = even };
	*b = (struct fake){ .base.ops = &fake_ops, .admit = true, .takes = any };
	*last = (struct fake){ .base.ops = &fake_ops, .takes = any };
	cr_assert_eq(chain_add(c, &last->base), 0);
	cr_assert_eq(chain_add(c, &a->base), 0);
	cr_assert_eq(chain_add(c, &b->base), 0);
}

Test(store, memory_stores_go_in_front_of_the_last_in_the_order_added)
{
	struct lp_chain c;
	struct fake a, b, last, extra;

	make(&c, &a, &b, &last);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(c.s[0], &a.base);
	cr_assert_eq(c.s[1], &b.base);
	cr_assert_eq(chain_last(&c), &last.base);
	cr_assert(chain_has_memory(&c));
	extra = (struct fake){ .base.ops = &fake_ops };
	cr_assert_eq(chain_add(&c, &extra.base), 0);
	cr_assert_eq(chain_add(&c, &extra.base), -ENOSPC, "more than %d stores",
		     LP_STORES_MAX);
	cr_assert_eq(chain_last(&c), &last.base);
}

Test(store, each_page_goes_to_the_first_memory_store_that_takes_it)
{
	struct lp_chain c;
	struct fake a, b, last;
	bool taken[N];

	make(&c, &a, &b, &last);
	offer(&c, taken);
	for (unsigned k = 0; k < N; k++) {
		cr_assert(taken[k], "page %u taken by no memory store", k);
		cr_assert_eq(fk_holds(&a.base, k), k % 2 == 0, "slot %u", k);
		cr_assert_eq(fk_holds(&b.base, k), k % 2 == 1, "slot %u", k);
		cr_assert(chain_in_memory(&c, k));
	}
	cr_assert_eq(last.nheld, 0, "the last store is never offered a page");
	/* Back from whichever holds it, and then it is held no more. */
	char buf[LP_PG];
	for (unsigned k = 0; k < N; k++) {
		cr_assert_eq(chain_get(&c, k, buf), 1);
		cr_assert_eq(buf[LP_PG - 1], (char)k);
		cr_assert(!chain_in_memory(&c, k));
		cr_assert_eq(chain_get(&c, k, buf), 0, "slot %u given twice", k);
	}
	cr_assert_eq(last.gets, 0, "get asked of the last store");
}

Test(store, a_store_that_admits_nothing_now_is_passed_by)
{
	struct lp_chain c;
	struct fake a, b, last;
	bool taken[N];

	make(&c, &a, &b, &last);
	b.admit = false;
	offer(&c, taken);
	for (unsigned k = 0; k < N; k++)
		cr_assert_eq(taken[k], k % 2 == 0, "page %u", k);
	cr_assert_eq(b.nheld, 0);
	a.admit = false;
	for (unsigned k = 0; k < N; k++)
		fk_forget(&a.base, k);
	offer(&c, taken);
	for (unsigned k = 0; k < N; k++)
		cr_assert(!taken[k], "page %u taken while nothing admits", k);
}

Test(store, a_corrupt_page_is_refused_not_looked_for_further)
{
	struct lp_chain c;
	struct fake a, b, last;
	bool taken[N];
	char buf[LP_PG];

	make(&c, &a, &b, &last);
	offer(&c, taken);
	a.corrupt = true;
	cr_assert_eq(chain_get(&c, 2, buf), -EBADMSG);
	cr_assert_eq(b.gets, 0, "a lost page was looked for in the next store");
}

Test(store, forget_tells_every_store_and_says_whether_a_write_is_under_way)
{
	struct lp_chain c;
	struct fake a, b, last;
	bool taken[N];

	make(&c, &a, &b, &last);
	offer(&c, taken);
	cr_assert(!chain_forget(&c, 3));
	cr_assert(!chain_in_memory(&c, 3));
	cr_assert_eq(a.forgets + b.forgets + last.forgets, 3);
	last.busy = true;
	cr_assert(chain_forget(&c, 4), "the last store's write under way lost");
}

/* The compressed pool through the operations the runtime calls. */
Test(store, the_pool_as_a_memory_store)
{
	struct zpool *zp;
	int rc = zpool_new(&zp, ZP_LZ4, 64, 48);
	if (rc == -ENOTSUP)
		cr_skip_test("built without LZ4");
	cr_assert_eq(rc, 0);
	struct lp_store *s = zpool_as_store(zp);
	cr_assert_eq(zpool_of_store(s), zp);
	unsigned char *page = calloc(1, LP_PG), *back = malloc(LP_PG);
	cr_assert(page && back);
	memcpy(page, "lazypage", 8);
	cr_assert(s->ops->admit(s, (uint64_t[]){ 7 }, 1));
	cr_assert_eq(s->ops->put(s, 7, page), 0);
	cr_assert(s->ops->holds(s, 7));
	struct lp_store_stats st;
	s->ops->stats(s, &st);
	cr_assert_eq(st.stores, 1);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(s->ops->get(s, 7, back), 1);
	cr_assert_eq(memcmp(page, back, LP_PG), 0);
	/* Random bytes do not compress: refused, for the next store. */
	for (unsigned i = 0; i < LP_PG; i++)
		page[i] = (unsigned char)(rand() >> 7);
	cr_assert_eq(s->ops->put(s, 8, page), -E2BIG);
	cr_assert(!s->ops->holds(s, 8));
	cr_assert(!s->ops->forget(s, 8));
	s->ops->destroy(s);
	free(page);
	free(back);
}

/* The swap file as the last store: a run written through the ring, read
 * back by every read operation, and (sealed swap) a page altered on disk
 * refused by finish_read. */
Test(store, the_swap_file_as_the_last_store)
{
	struct lp_swap *sw;
	struct lp_io io;
	enum { RUN = 3 };
	uint64_t slots[RUN];
	int err = 0;

	cr_assert_eq(swap_open(&sw, NULL, 0), 0);
	bool sealed = swap_encrypt_enable(sw) == 0;
	cr_assert_eq(io_setup(&io, 8), 0);
	cr_assert_eq(swap_alloc(sw, RUN, slots, &err), RUN);
	cr_assert_eq(slots[2], slots[0] + 2, "a fresh area gives a run");
	struct lp_store *s = chain_last(&sw->chain);
	cr_assert_str_eq(s->ops->name, "file");
	unsigned char *pages = aligned_alloc(LP_PG, RUN * LP_PG);
	unsigned char *out = aligned_alloc(LP_PG, RUN * LP_PG);
	unsigned char *back = aligned_alloc(LP_PG, RUN * LP_PG);
	cr_assert(pages && out && back);
	for (unsigned i = 0; i < RUN * LP_PG; i++)
		pages[i] = (unsigned char)(i * 7 + i / LP_PG);
	struct lp_io_req w = { .niov = RUN };
	for (unsigned k = 0; k < RUN; k++) {
		unsigned char *p = pages + k * LP_PG, *o = out + k * LP_PG;
		if (sealed)
			swap_seal(sw, slots[k], p, o);
		else
			memcpy(o, p, LP_PG);
		w.iov[k] = (struct iovec){ o, LP_PG };
	}
	cr_assert_eq(s->ops->write(s, &io, &w, slots[0]), 0);
	struct lp_io_req *done[1];
	cr_assert_eq(io_reap(&io, done, 1, -1), 1);
	cr_assert_eq(done[0], &w);
	cr_assert_eq(w.res, 0, "write: %d", w.res);

	/* One run at once... */
	struct lp_io_read rd = { .buf = back, .len = RUN * LP_PG,
				 .off = slots[0] };
	s->ops->read_many(s, &io, &rd, 1);
	cr_assert_eq(rd.res, (long)(RUN * LP_PG));
	for (unsigned k = 0; k < RUN; k++)
		cr_assert_eq(s->ops->finish_read(s, slots[k], back + k * LP_PG), 0);
	cr_assert_eq(memcmp(back, pages, RUN * LP_PG), 0);
	/* ...one page now, and one through the ring. */
	struct iovec iov = { back, LP_PG };
	cr_assert_eq(s->ops->read_sync(s, &io, slots[1], &iov, 1), LP_PG);
	cr_assert_eq(s->ops->finish_read(s, slots[1], back), 0);
	cr_assert_eq(memcmp(back, pages + LP_PG, LP_PG), 0);
	struct lp_io_req r = { .niov = 1, .iov = { { back, LP_PG } } };
	cr_assert_eq(s->ops->read(s, &io, &r, slots[2]), 0);
	cr_assert_eq(io_reap(&io, done, 1, -1), 1);
	cr_assert_eq(r.res, 0);
	cr_assert_eq(s->ops->finish_read(s, slots[2], back), 0);
	cr_assert_eq(memcmp(back, pages + 2 * LP_PG, LP_PG), 0);

	if (sealed) {
		/* A byte altered on disk: refused, never returned. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", sw->fd);
		int fd = open(path, O_RDWR); /* (not O_DIRECT: one byte) */
		cr_assert_geq(fd, 0);
		unsigned char x = 0x5a;
		cr_assert_eq(pwrite(fd, &x, 1, (off_t)swap_off(slots[1]) + 100), 1);
		close(fd);
		cr_assert_eq(s->ops->read_sync(s, &io, slots[1], &iov, 1), LP_PG);
		cr_assert_eq(s->ops->finish_read(s, slots[1], back), -EIO);
	}
	for (unsigned k = 0; k < RUN; k++)
		swap_free(sw, slots[k]);
	io_teardown(&io);
	swap_close(sw);
	free(pages);
	free(out);
	free(back);
}

/* Plugged (the fault path's batches: runtime/fault.c, read_faults), reads
 * queue and nothing reaches the kernel; unplugged, they go together, and
 * each comes back with its own page. */
#define NP 4
Test(store, plugged_reads_go_together_at_the_unplug)
{
	char path[] = "/tmp/lp-plug-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	unlink(path);
	unsigned char *pages = aligned_alloc(LP_PG, NP * LP_PG);
	unsigned char *back = aligned_alloc(LP_PG, NP * LP_PG);
	cr_assert(pages && back);
	for (unsigned i = 0; i < NP * LP_PG; i++)
		pages[i] = (unsigned char)(i / LP_PG * 31 + i);
	cr_assert_eq(pwrite(fd, pages, NP * LP_PG, 0), (ssize_t)(NP * LP_PG));
	memset(back, 0, NP * LP_PG);

	struct lp_io io;
	cr_assert_eq(io_setup(&io, 8), 0);
	struct lp_io_req r[NP];
	io_plug(&io);
	for (unsigned k = 0; k < NP; k++) {
		/* in reverse order, each into its own buffer */
		unsigned p = NP - 1 - k;
		r[k] = (struct lp_io_req){ .fd = fd, .off = (uint64_t)p * LP_PG,
					   .niov = 1,
					   .iov = { { back + p * LP_PG, LP_PG } } };
		cr_assert_eq(io_submit_read(&io, &r[k]), 0);
	}
	struct lp_io_req *done[NP];
	cr_assert_eq(io.queued, NP, "plugged: %u queued", io.queued);
	cr_assert_eq(io_uring_sq_ready(&io.ring), NP, "nothing submitted yet");
	io_unplug(&io);
	cr_assert_eq(io.queued, 0u);
	cr_assert_eq(io_uring_sq_ready(&io.ring), 0u, "all submitted at once");
	int got = 0;
	while (got < NP) {
		int n = io_reap(&io, done + got, NP - got, 1000);
		cr_assert_gt(n, 0, "reads lost after the unplug (%d of %d back)", got, NP);
		got += n;
	}
	for (unsigned k = 0; k < NP; k++)
		cr_assert_eq(r[k].res, 0, "read %u: %d", k, r[k].res);
	cr_assert_eq(memcmp(back, pages, NP * LP_PG), 0);
	io_teardown(&io);
	close(fd);
	free(pages);
	free(back);
}
