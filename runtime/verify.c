/* SPDX-License-Identifier: MIT */
/* Verify mode: checksums of pages that leave memory, checked when they
 * come back (see verify.h). */
#include "verify.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prim.h"
#include "core.h"

#define VF_STRIPES 64u
#define VF_RING 8u      /* state changes kept per page */
#define VF_REPORTS 4u   /* full reports on stderr; then counted only */
#define VF_IDS 128u

enum vf_ev {
	EV_STATE,   /* from -> to */
	EV_LEFT,    /* checksum taken: content left memory */
	EV_OK,      /* checked, equal (from = path) */
	EV_BAD,     /* checked, different (from = path) */
	EV_MOVED,   /* mremap: slot = the old page number */
	EV_INHERIT, /* a fork child took the parent's record */
	EV_SKIP,    /* different, but its file changed meanwhile */
};

struct vf_rec {
	uint32_t ms;     /* since the table was created */
	uint8_t from, to, backing, ev;
	uint32_t frame;
	uint16_t flags;
	uint64_t slot;
};

struct vf_ent {
	struct vf_ent *next;
	uint64_t vpn;
	uint64_t sum;     /* of the content that left */
	uint64_t left_ns; /* CLOCK_REALTIME when it left (file times) */
	uint8_t valid;    /* sum is of content not yet back */
	uint8_t n, head;  /* records held, next to write */
	struct vf_rec rec[VF_RING];
};

struct vf_stripe {
	pthread_mutex_t lock;
	struct vf_ent **b;
	size_t nb, n;
} __attribute__((aligned(64)));

struct vf_counts {
	atomic_uint_least64_t checks, bad;
	atomic_uint reports;
	atomic_uint refs;
};

struct lp_verify {
	struct lp_vm *vm;
	unsigned id;
	uint64_t t0;      /* monotonic ns at creation */
	uint64_t zero_sum;
	struct vf_counts *cnt;
	struct vf_stripe s[VF_STRIPES];
};

/* id -> table, for page_set_state()/spt_remove(), which know only the
 * page: its flags carry the id.  Set before the first page with the id
 * exists, cleared after the last is gone. */
static struct lp_verify *_Atomic reg[VF_IDS];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- xxh64 of one page -------------------------------------------------- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t xround(uint64_t acc, uint64_t in)
{
	return rotl(acc + in * P2, 31) * P1;
}

static inline uint64_t xmerge(uint64_t h, uint64_t v)
{
	h ^= xround(0, v);
	return h * P1 + P4;
}

uint64_t verify_sum(const void *page)
{
	const unsigned char *p = page;
	uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = (uint64_t)0 - P1;

	for (size_t i = 0; i < LP_PG; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, sizeof(w));
		v1 = xround(v1, w[0]);
		v2 = xround(v2, w[1]);
		v3 = xround(v3, w[2]);
		v4 = xround(v4, w[3]);
	}
	uint64_t h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
	h = xmerge(h, v1);
	h = xmerge(h, v2);
	h = xmerge(h, v3);
	h = xmerge(h, v4);
	h += LP_PG;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

/* ---- the table ------------------------------------------------------------ */

static struct vf_stripe *stripe_of(struct lp_verify *vf, uint64_t vpn)
{
	return &vf->s[spt_hash(vpn) & (VF_STRIPES - 1)];
}

static struct vf_ent **bucket(struct vf_stripe *s, uint64_t vpn)
{
	return &s->b[(spt_hash(vpn) >> 6) & (s->nb - 1)];
}

static void grow(struct vf_stripe *s)
{
	size_t nb = s->nb ? 4 * s->nb : 64;
	struct vf_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	struct vf_ent **old = s->b;
	size_t onb = s->nb;
	s->b = b;
	s->nb = nb;
	for (size_t i = 0; i < onb; i++) {
		struct vf_ent *e = old[i];
		while (e) {
			struct vf_ent *next = e->next, **h = bucket(s, e->vpn);
			e->next = *h;
			*h = e;
			e = next;
		}
	}
	free(old);
}

/* Under s->lock: vpn's record, created if asked (NULL: none, or no
 * memory). */
static struct vf_ent *find(struct vf_stripe *s, uint64_t vpn, bool create)
{
	if (s->nb) {
		for (struct vf_ent *e = *bucket(s, vpn); e; e = e->next)
			if (e->vpn == vpn)
				return e;
	}
	if (!create)
		return NULL;
	if (s->n >= 2 * s->nb)
		grow(s);
	if (!s->nb)
		return NULL;
	struct vf_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->vpn = vpn;
	struct vf_ent **h = bucket(s, vpn);
	e->next = *h;
	*h = e;
	s->n++;
	return e;
}

static struct vf_ent *unlink_ent(struct vf_stripe *s, uint64_t vpn)
{
	if (!s->nb)
		return NULL;
	for (struct vf_ent **pp = bucket(s, vpn); *pp; pp = &(*pp)->next) {
		if ((*pp)->vpn == vpn) {
			struct vf_ent *e = *pp;
			*pp = e->next;
			s->n--;
			return e;
		}
	}
	return NULL;
}

static void insert_ent(struct vf_stripe *s, struct vf_ent *e)
{
	free(unlink_ent(s, e->vpn)); /* a stale record of the target */
	if (s->n >= 2 * s->nb)
		grow(s);
	if (!s->nb) {
		free(e);
		return;
	}
	struct vf_ent **h = bucket(s, e->vpn);
	e->next = *h;
	*h = e;
	s->n++;
}

static void push(struct lp_verify *vf, struct vf_ent *e, enum vf_ev ev,
		 unsigned from, unsigned to, const struct lp_page *pg,
		 uint64_t slot)
{
	struct vf_rec *r = &e->rec[e->head];

	r->ms = (uint32_t)((prim_now_ns() - vf->t0) / 1000000u);
	r->ev = (uint8_t)ev;
	r->from = (uint8_t)from;
	r->to = (uint8_t)to;
	r->backing = pg ? pg->backing : 0xff;
	r->frame = pg ? pg->frame : LP_NO_FRAME;
	r->flags = pg ? (uint16_t)(pg->flags & 0xff) : 0;
	r->slot = pg ? pg->slot : slot;
	e->head = (uint8_t)((e->head + 1) % VF_RING);
	if (e->n < VF_RING)
		e->n++;
}

/* ---- life of a table ------------------------------------------------------ */

int verify_create(struct lp_vm *vm)
{
	static const unsigned char zero[LP_PG] __attribute__((aligned(64)));

	if (!(vm->flags & LP_CFG_VERIFY))
		return 0;
	struct lp_verify *vf = calloc(1, sizeof(*vf));
	if (!vf)
		return -ENOMEM;
	vf->vm = vm;
	vf->t0 = prim_now_ns();
	vf->zero_sum = verify_sum(zero);
	for (unsigned i = 0; i < VF_STRIPES; i++)
		pthread_mutex_init(&vf->s[i].lock, NULL);
	struct lp_verify *root = vm->parent ? vm->parent->vf : NULL;
	if (root) {
		vf->cnt = root->cnt;
		atomic_fetch_add(&vf->cnt->refs, 1);
	} else {
		vf->cnt = calloc(1, sizeof(*vf->cnt));
		if (!vf->cnt) {
			free(vf);
			return -ENOMEM;
		}
		atomic_init(&vf->cnt->refs, 1);
	}
	pthread_mutex_lock(&reg_lock);
	for (unsigned id = 1; id < VF_IDS && !vf->id; id++) {
		if (!atomic_load(&reg[id])) {
			vf->id = id;
			atomic_store(&reg[id], vf);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (!vf->id) {
		/* 127 vms verified at once (fork children): without an id a
		 * page's record would outlive the page; this vm goes
		 * unverified. */
		if (atomic_fetch_sub(&vf->cnt->refs, 1) == 1)
			free(vf->cnt);
		free(vf);
		return 0;
	}
	vm->spt.vf_flags = (uint16_t)(vf->id << PGF_VF_SHIFT);
	vm->vf = vf;
	return 0;
}

void verify_destroy(struct lp_vm *vm)
{
	struct lp_verify *vf = vm->vf;

	if (!vf)
		return;
	vm->vf = NULL;
	vm->spt.vf_flags = 0;
	if (vf->id) {
		pthread_mutex_lock(&reg_lock);
		atomic_store(&reg[vf->id], NULL);
		pthread_mutex_unlock(&reg_lock);
	}
	for (unsigned i = 0; i < VF_STRIPES; i++) {
		struct vf_stripe *s = &vf->s[i];
		for (size_t b = 0; b < s->nb; b++) {
			struct vf_ent *e = s->b[b];
			while (e) {
				struct vf_ent *next = e->next;
				free(e);
				e = next;
			}
		}
		free(s->b);
		pthread_mutex_destroy(&s->lock);
	}
	if (atomic_fetch_sub(&vf->cnt->refs, 1) == 1)
		free(vf->cnt);
	free(vf);
}

void verify_stats(struct lp_vm *vm, struct lp_stats *st)
{
	struct lp_verify *vf = vm->vf;

	if (!vf)
		return;
	st->verify_checks = atomic_load(&vf->cnt->checks);
	st->verify_mismatches = atomic_load(&vf->cnt->bad);
}

/* ---- the report ----------------------------------------------------------- */

struct out {
	char buf[6144];
	size_t n;
};

__attribute__((format(printf, 2, 3)))
static void say(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->n >= sizeof(o->buf))
		return;
	va_start(ap, fmt);
	int k = vsnprintf(o->buf + o->n, sizeof(o->buf) - o->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->n += (size_t)k;
	if (o->n > sizeof(o->buf))
		o->n = sizeof(o->buf);
}

static const char *path_name(int path)
{
	switch (path) {
	case LP_FAULT_ZERO: return "zero fill";
	case LP_FAULT_FILE: return "file read";
	case LP_FAULT_INIT: return "initializer";
	case LP_FAULT_SWAPIN: return "swap-in";
	case LP_FAULT_TIER: return "compressed tier";
	case VF_RESTORE: return "un-park (kva slot)";
	case VF_READAHEAD: return "swap readahead";
	case VF_FORK: return "fork copy of a parked page";
	default: return "?";
	}
}

static const char *backing_name(unsigned b)
{
	static const char *const n[] = { "none", "zero", "swap", "file",
					 "refill" };
	return b < sizeof(n) / sizeof(n[0]) ? n[b] : "-";
}

static void say_flags(struct out *o, unsigned f)
{
	static const char *const n[] = { "wp", "dirty", "waiters", "wasdirty",
					 "io", "poisoned" };
	bool any = false;

	for (unsigned i = 0; i < 6; i++) {
		if (f & (1u << i)) {
			say(o, "%s%s", any ? "," : "", n[i]);
			any = true;
		}
	}
	if (!any)
		say(o, "-");
}

static void say_history(struct out *o, const struct vf_ent *e)
{
	say(o, "  last %u changes of the page (oldest first; ms since verify began):\n",
	    e->n);
	for (unsigned k = 0; k < e->n; k++) {
		const struct vf_rec *r =
			&e->rec[(e->head + VF_RING - e->n + k) % VF_RING];
		say(o, "    %8" PRIu32 " ms  ", r->ms);
		switch (r->ev) {
		case EV_STATE:
			say(o, "%-9s -> %-9s", page_state_name(r->from),
			    page_state_name(r->to));
			break;
		case EV_LEFT: say(o, "%-22s", "content left (sum)"); break;
		case EV_OK: say(o, "checked ok: %-10s", path_name(r->from)); break;
		case EV_BAD: say(o, "MISMATCH: %-12s", path_name(r->from)); break;
		case EV_MOVED:
			say(o, "moved by mremap from 0x%" PRIx64 "\n",
			    r->slot << LP_PAGE_SHIFT);
			continue;
		case EV_INHERIT: say(o, "%-22s", "record taken at fork"); break;
		case EV_SKIP: say(o, "%-22s", "file changed: skipped"); break;
		default: say(o, "?"); break;
		}
		if (r->backing == 0xff) {
			say(o, "\n");
			continue;
		}
		say(o, "  backing %-9s", backing_name(r->backing));
		if (r->slot != LP_NO_SLOT)
			say(o, " slot %" PRIu64, r->slot);
		if (r->frame != LP_NO_FRAME)
			say(o, " frame %" PRIu32, r->frame);
		say(o, " flags ");
		say_flags(o, r->flags);
		say(o, "\n");
	}
}

static bool all_zero(const void *p)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < LP_PG / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Whose content is this?  Records whose last content had this sum. */
static void say_whose(struct out *o, struct lp_verify *vf, uint64_t sum,
		      uint64_t self)
{
	unsigned found = 0;

	for (unsigned i = 0; i < VF_STRIPES && found < 4; i++) {
		struct vf_stripe *s = &vf->s[i];
		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b < s->nb && found < 4; b++) {
			for (struct vf_ent *e = s->b[b]; e && found < 4; e = e->next) {
				if (e->sum != sum || e->vpn == self)
					continue;
				say(o, "  the content is what page 0x%" PRIx64
				       " held when it last left memory (%s)\n",
				    e->vpn << LP_PAGE_SHIFT,
				    e->valid ? "still away" : "since back");
				found++;
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (!found)
		say(o, "  no other page's last content has this checksum\n");
}

struct snap {
	uint64_t vpn, slot;
	uint32_t frame;
	uint8_t state, backing;
	uint16_t flags;
	bool have;
};

static void report(struct lp_verify *vf, const struct snap *pg,
		   const struct vf_ent *e, uint64_t got, const void *content,
		   int path, struct lp_region *r, uint64_t nbad)
{
	unsigned k = atomic_fetch_add(&vf->cnt->reports, 1);
	struct out *o;

	if (k > VF_REPORTS)
		return;
	if (k == VF_REPORTS) {
		static const char m[] = "lazypage verify: further mismatches are "
					"counted only (lp_stats.verify_mismatches)\n";
		(void)!write(2, m, sizeof(m) - 1);
		return;
	}
	o = malloc(sizeof(*o));
	if (!o)
		return;
	o->n = 0;
	uintptr_t addr = (uintptr_t)pg->vpn << LP_PAGE_SHIFT;
	say(o, "lazypage verify: MISMATCH #%" PRIu64 " at 0x%" PRIxPTR
	       ": page came back by %s with other content than it left with%s\n",
	    nbad, addr, path_name(path), vf->vm->parent ? " (fork child's vm)" : "");
	say(o, "  expected sum %016" PRIx64 ", got %016" PRIx64 "%s\n", e->sum,
	    got, got == vf->zero_sum ? " (all zero)" : "");
	if (content && !all_zero(content)) {
		const unsigned char *c = content;
		say(o, "  got bytes:");
		for (unsigned i = 0; i < 32; i++)
			say(o, " %02x", c[i]);
		say(o, " ...\n");
	}
	if (pg->have) {
		say(o, "  page now: state %s, backing %s", page_state_name(pg->state),
		    backing_name(pg->backing));
		if (pg->backing == BK_SLOT && pg->slot != LP_NO_SLOT)
			say(o, " slot %" PRIu64 " (offset %#" PRIx64 ")", pg->slot,
			    swap_off(pg->slot));
		if (pg->backing == BK_FILE && r)
			say(o, " (offset %#" PRIx64 ")", region_file_off(r, pg->vpn));
		if (pg->frame != LP_NO_FRAME)
			say(o, ", frame %" PRIu32, pg->frame);
		say(o, ", flags ");
		say_flags(o, pg->flags);
		say(o, "\n");
	}
	say_history(o, e);
	if (got != vf->zero_sum)
		say_whose(o, vf, got, pg->vpn);
	(void)!write(2, o->buf, o->n);
	free(o);
}

/* ---- the hooks ------------------------------------------------------------ */

/* The verify table of pg's vm, found through the id in its flags (NULL:
 * verify is off there). */
static struct lp_verify *vf_of(const struct lp_page *pg)
{
	unsigned id = (pg->flags & PGF_VF_MASK) >> PGF_VF_SHIFT;

	return atomic_load_explicit(&reg[id], memory_order_acquire);
}

void verify_note(const struct lp_page *pg, unsigned from, unsigned to)
{
	struct lp_verify *vf = vf_of(pg);

	if (!vf)
		return;
	struct vf_stripe *s = stripe_of(vf, pg->vpn);
	pthread_mutex_lock(&s->lock);
	struct vf_ent *e = find(s, pg->vpn, true);
	if (e) {
		if (from == PG_UNINIT)
			e->valid = 0; /* a new page, or never filled */
		push(vf, e, EV_STATE, from, to, pg, 0);
	}
	pthread_mutex_unlock(&s->lock);
}

void verify_forget(const struct lp_page *pg)
{
	struct lp_verify *vf = vf_of(pg);

	if (!vf)
		return;
	struct vf_stripe *s = stripe_of(vf, pg->vpn);
	pthread_mutex_lock(&s->lock);
	free(unlink_ent(s, pg->vpn));
	pthread_mutex_unlock(&s->lock);
}

void verify_left(struct lp_vm *vm, const struct lp_page *pg, const void *content)
{
	struct lp_verify *vf = vm->vf;
	uint64_t sum = verify_sum(content);
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	struct vf_stripe *s = stripe_of(vf, pg->vpn);
	pthread_mutex_lock(&s->lock);
	struct vf_ent *e = find(s, pg->vpn, true);
	if (e) {
		e->sum = sum;
		e->valid = 1;
		e->left_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		push(vf, e, EV_LEFT, 0, 0, pg, 0);
	}
	pthread_mutex_unlock(&s->lock);
}

/* A file page whose file changed after it left, or that does not lie
 * wholly inside its file, may legitimately come back different. */
static bool file_moved_on(struct lp_region *r, uint64_t vpn, uint64_t left_ns)
{
	struct stat st;

	if (!r || !r->file || fstat(r->file->fd, &st))
		return true;
	uint64_t m = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
	uint64_t c = (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
	/* File times may be as coarse as a tick: 20 ms of slack. */
	uint64_t since = left_ns > 20000000u ? left_ns - 20000000u : 0;
	return m >= since || c >= since ||
	       region_file_off(r, vpn) + LP_PG > (uint64_t)st.st_size;
}

static void check(struct lp_vm *vm, const struct lp_page *pg, uint64_t vpn,
		  const void *content, int path, struct lp_region *r,
		  bool consume)
{
	struct lp_verify *vf = vm->vf;
	struct vf_stripe *s = stripe_of(vf, vpn);

	pthread_mutex_lock(&s->lock);
	struct vf_ent *e = find(s, vpn, false);
	if (!e || !e->valid) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (consume)
		e->valid = 0;
	if (path == LP_FAULT_INIT) {
		/* Refilled by a deterministic initializer: its source (vmrun:
		 * the program's file) may change underneath. */
		pthread_mutex_unlock(&s->lock);
		return;
	}
	uint64_t got = verify_sum(content);
	if (got == e->sum) {
		push(vf, e, EV_OK, (unsigned)path, 0, pg, 0);
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add_explicit(&vf->cnt->checks, 1, memory_order_relaxed);
		return;
	}
	if (path == LP_FAULT_FILE && file_moved_on(r, vpn, e->left_ns)) {
		push(vf, e, EV_SKIP, (unsigned)path, 0, pg, 0);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	push(vf, e, EV_BAD, (unsigned)path, 0, pg, 0);
	struct vf_ent copy = *e;
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add_explicit(&vf->cnt->checks, 1, memory_order_relaxed);
	uint64_t nbad = atomic_fetch_add(&vf->cnt->bad, 1) + 1;

	struct snap sn = { .vpn = vpn, .slot = LP_NO_SLOT, .frame = LP_NO_FRAME };
	if (pg) {
		sn = (struct snap){ .vpn = vpn, .slot = pg->slot, .frame = pg->frame,
				    .state = pg->state, .backing = pg->backing,
				    .flags = pg->flags, .have = true };
	}
	report(vf, &sn, &copy, got, content, path, r, nbad);
}

void verify_back(struct lp_vm *vm, const struct lp_page *pg,
		 const void *content, int path, struct lp_region *r)
{
	check(vm, pg, pg->vpn, content, path, r, true);
}

void verify_peek(struct lp_vm *vm, uint64_t vpn, const void *content, int path)
{
	check(vm, NULL, vpn, content, path, NULL, false);
}

void verify_inherit(struct lp_vm *c, uint64_t vpn)
{
	struct lp_verify *pv = c->parent ? c->parent->vf : NULL, *cv = c->vf;

	if (!pv || !cv)
		return;
	struct vf_stripe *s = stripe_of(pv, vpn);
	struct vf_ent copy;
	bool have = false;
	pthread_mutex_lock(&s->lock);
	struct vf_ent *e = find(s, vpn, false);
	if (e && e->valid) {
		copy = *e;
		have = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (!have)
		return;
	s = stripe_of(cv, vpn);
	pthread_mutex_lock(&s->lock);
	e = find(s, vpn, true);
	if (e) {
		struct vf_ent *next = e->next;
		*e = copy;
		e->next = next;
		push(cv, e, EV_INHERIT, 0, 0, NULL, LP_NO_SLOT);
	}
	pthread_mutex_unlock(&s->lock);
}

void verify_move(struct lp_vm *vm, uintptr_t from, uintptr_t to, size_t len)
{
	struct lp_verify *vf = vm->vf;
	uint64_t lo = from >> LP_PAGE_SHIFT, hi = (from + len) >> LP_PAGE_SHIFT;
	int64_t delta = ((int64_t)to - (int64_t)from) >> LP_PAGE_SHIFT;
	struct vf_ent *moved = NULL;
	size_t total = 0;

	if (lo == hi || !delta)
		return;
	for (unsigned i = 0; i < VF_STRIPES; i++)
		total += __atomic_load_n(&vf->s[i].n, __ATOMIC_RELAXED);
	/* Take the records of the range out (few pages: look each up; many:
	 * walk the table), then put them back at their new page numbers. */
	if (hi - lo <= total) {
		for (uint64_t vpn = lo; vpn < hi; vpn++) {
			struct vf_stripe *s = stripe_of(vf, vpn);
			pthread_mutex_lock(&s->lock);
			struct vf_ent *e = unlink_ent(s, vpn);
			pthread_mutex_unlock(&s->lock);
			if (e) {
				e->next = moved;
				moved = e;
			}
		}
	} else {
		for (unsigned i = 0; i < VF_STRIPES; i++) {
			struct vf_stripe *s = &vf->s[i];
			pthread_mutex_lock(&s->lock);
			for (size_t b = 0; b < s->nb; b++) {
				struct vf_ent **pp = &s->b[b];
				while (*pp) {
					struct vf_ent *e = *pp;
					if (e->vpn >= lo && e->vpn < hi) {
						*pp = e->next;
						s->n--;
						e->next = moved;
						moved = e;
					} else {
						pp = &e->next;
					}
				}
			}
			pthread_mutex_unlock(&s->lock);
		}
	}
	while (moved) {
		struct vf_ent *e = moved;
		moved = e->next;
		uint64_t old = e->vpn;
		e->vpn = (uint64_t)((int64_t)old + delta);
		push(vf, e, EV_MOVED, 0, 0, NULL, old);
		struct vf_stripe *s = stripe_of(vf, e->vpn);
		pthread_mutex_lock(&s->lock);
		insert_ent(s, e);
		pthread_mutex_unlock(&s->lock);
	}
}
