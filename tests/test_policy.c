/* SPDX-License-Identifier: MIT */
/*
 * Eviction policies and the trace simulator, without the kernel: small
 * traces worked out by hand, each policy against a naive model written
 * straight from its paper, Belady's MIN, and the policies under the
 * runtime's view (uses seen only after a cleared bit, clears declined,
 * frames freed without eviction).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lazypage/lazypage.h"
#include "policy.h"
#include "policy/ghost.h"
#include "sim.h"
#include "workload.h"

static const struct lp_policy_ops *ops_of(const char *name)
{
	const struct lp_policy_ops *ops = policy_find(name);

	cr_assert(ops, "no policy %s", name);
	return ops;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The hits (H) and misses (M) of a trace of letters, one page per letter,
 * under the simulator's exact host. */
static void hm(const char *policy, uint32_t frames, const char *letters,
	       char *out)
{
	size_t n = strlen(letters);
	uint64_t pages[64];
	uint8_t missed[64];
	struct lp_trace t;
	struct lp_sim_opts o = { .missed = missed, .seed = 1 };
	struct lp_sim_result r;

	cr_assert_lt(n, 64);
	for (size_t i = 0; i < n; i++)
		pages[i] = (uint64_t)letters[i];
	cr_assert_eq(lp_trace_prepare(&t, pages, n), 0);
	if (!strcmp(policy, "min"))
		cr_assert_eq(lp_sim_min(&t, frames, missed, &r), 0);
	else
		cr_assert_eq(lp_sim_run(&t, ops_of(policy), frames, &o, &r), 0);
	for (size_t i = 0; i < n; i++)
		out[i] = missed[i] ? 'M' : 'H';
	out[n] = 0;
	lp_trace_release(&t);
}

#define EXPECT_HM(policy, frames, letters, want)                              \
	do {                                                                  \
		char got_[64];                                                \
		hm(policy, frames, letters, got_);                            \
		cr_assert_str_eq(got_, want, "%s, %u frames, %s", policy,     \
				 (unsigned)(frames), letters);                \
	} while (0)

/*
 * FIFO, 3 frames:  A B C fill;  A hit;  D evicts A -> B C D;  B hit;
 * E evicts B -> C D E;  A evicts C -> D E A.
 * LRU, 3 frames:  A B C fill;  A hit -> B C A;  D evicts B -> C A D;
 * B evicts C -> A D B;  E evicts A -> D B E;  A evicts D.
 */
Test(hand, fifo_and_lru)
{
	EXPECT_HM("fifo", 3, "ABCADBEA", "MMMHMHMM");
	EXPECT_HM("lru", 3, "ABCADBEA", "MMMHMMMM");
}

/*
 * CLOCK, 3 frames, reference bit set on load: A B C fill (bits 1, hand
 * at A);  A hit;  D: the hand clears A, B, C, comes back to A: evicted,
 * D goes behind the hand, which is at B;  B hit (bit 1);  E: B cleared,
 * C evicted;  A missed.
 */
Test(hand, clock)
{
	EXPECT_HM("clock", 3, "ABCADBEA", "MMMHMHMM");
}

/*
 * SIEVE, 3 frames; queue oldest..newest, * = visited, ^ = hand.
 *  A B C        A B C, hand at none
 *  A hit        A* B C
 *  D            hand from the oldest: A* cleared, B evicted;
 *               hand on the next newer, C:     A C^ D
 *  B            C evicted, hand on D:          A D^ B
 *  E            D evicted, hand on B:          A B^ E
 *  A hit        A* B^ E
 *  F            B evicted, hand on E:          A* E^ F
 *  A hit;  E hit:                              A* E*^ F
 *  G            E* cleared, F evicted, no newer: hand at none
 *                                              A* E G
 *  H            from the oldest: A* cleared, E evicted, hand on G
 *                                              A G^ H
 *  A hit.  A stayed throughout: LRU would have dropped it at E.
 */
Test(hand, sieve)
{
	EXPECT_HM("sieve", 3, "ABCADBEAFAEGHA", "MMMHMMMHMHHMMH");
	EXPECT_HM("lru", 3, "ABCADBEAFAEGHA", "MMMHMMMMMHHMMM");
}

/*
 * S3-FIFO, 3 frames: S holds 1 (10%, at least one), M 2, G 2 keys.  S and
 * M may exceed their sizes while the cache is not full.  freq in ().
 *   A B C          S = A B C
 *   D              M (0) <= 2, S not empty: from S: A(0) to G = [A];
 *                  S = B C D
 *   A              A is on G: taken off, then from S: B(0) to G = [B];
 *                  A to M = [A]; S = C D
 *   C C hits       C(2)
 *   E              from S: C(2) >= 2 moves to M = [A C] (freq reset),
 *                  D(0) to G = [B D]; S = E
 *   B              on G, taken off (G = [D]); from S: E to G = [D E];
 *                  B to M = [A C B]; S empty
 *   F              M = 3 > 2: from M: A(0) evicted; S = F
 *   C hit          C(1)
 *   D              on G (G = [E]); from S: F to G = [E F]; M = [C B D]
 *   X              M > 2: C(1) goes round as C(0), B(0) evicted:
 *                  M = [D C]; S = X
 *   B              not on G (it went to M, then out of M without a
 *                  ghost); from S: X to G, full: E dropped, G = [F X];
 *                  S = B
 *   C hit          C(1)
 *   F              on G (G = [X]); from S: B to G = [X B]; M = [D C F]
 *   Y              M > 2: D(0) evicted; M = [C F]; S = Y
 *   D              not on G; from S: Y to G, X dropped; S = D
 *   C F D          hits
 *
 * One use in S is not enough to move to M:
 *   A B C, A hit   S = A(1) B C
 *   D              A(1) < 2: to G; S = B C D
 *   A              on G: to M; B to G
 *   B              on G: to M; C to G
 */
Test(hand, s3fifo)
{
	EXPECT_HM("s3fifo", 3, "ABCDACCEBFCDXBCFYDCFD",
		  "MMMMMHHMMMHMMMHMMMHHH");
	EXPECT_HM("s3fifo", 3, "ABCADAB", "MMMHMMM");
}

/*
 * 2Q, 4 frames: Kin = 1, Kout = 2.
 *   A B            A1in = A B
 *   A hit          in A1in: nothing changes
 *   C D            A1in = A B C D
 *   E              A1in > Kin: A out, A1out = [A]; A1in = B C D E
 *   A              on A1out; B out, A1out = [A B]; A to Am, off A1out
 *   F              C out, A1out = [B C]; A1in = D E F
 *   B              on A1out, looked up before the reclaim: D out,
 *                  A1out over Kout drops its oldest, B itself: [C D];
 *                  B still goes to Am = [A B]
 *   A hit          Am = [B A]
 *   G              E out, A1out = [D E]; A1in = F G
 *   C              not on A1out: F out, A1out = [E F]; A1in = G C
 *   E              on A1out; G out, E dropped; Am = [B A E]; A1in = C
 *   H              A1in = 1, not > Kin: Am's LRU, B, out (no ghost)
 *   B              not on A1out [F G]: C out; A1in = H B
 *   A E hits       in Am
 */
Test(hand, twoq)
{
	EXPECT_HM("2q", 4, "ABACDEAFBAGCEHBAE", "MMHMMMMMMHMMMMMHH");
}

/*
 * ARC, c = 3, Figure 4; lists LRU first, p the target size of T1.
 *   A B C          T1 = A B C
 *   A hit          T1 = B C, T2 = A
 *   D              IV: |L1| = 2 < 3, total 3 >= c: REPLACE, |T1| 2 > p 0:
 *                  B to B1.  T1 = C D
 *   B              in B1 (II): p = 0 + max(1, 0/1) = 1; REPLACE: |T1| 2 > 1:
 *                  C to B1 = [B C]; B to T2 = A B; T1 = D; B1 = [C]
 *   E              IV: |L1| = 2, total 4: REPLACE, |T1| 1 = p, E not in
 *                  B2: A to B2.  T1 = D E, T2 = B
 *   A              in B2 (III): p = 1 - max(1, 1/1) = 0; REPLACE: D to
 *                  B1 = [C D].  T1 = E, T2 = B A
 *   F              IV: |L1| = 1 + 2 = 3 = c, |T1| < c: C off B1; REPLACE:
 *                  E to B1 = [D E].  T1 = F
 *   B hit          T2 = A B
 *   D              II: p = 0 + max(1, 0/2) = 1; REPLACE: |T1| 1 = p: A to
 *                  B2.  T2 = B D, B1 = [E], B2 = [A]
 *   A              III: p = 1 - 1 = 0; REPLACE: F to B1 = [E F].
 *                  T1 empty, T2 = B D A
 *   G              IV: |L1| 2, total 5: REPLACE, T1 empty: B to B2.
 *                  T1 = G, T2 = D A
 *   E              II: p = 0 + max(1, 1/2) = 1; REPLACE: D to B2 = [B D].
 *                  T2 = A E, B1 = [F]
 *   B              III: p = 1 - max(1, 1/2) = 0; REPLACE: G to B1 = [F G].
 *                  T2 = A E B, B2 = [D]
 *   F              II: p = 1; REPLACE: A to B2 = [D A].  T2 = E B F
 *   G              II: p = 1 + max(1, 2/1) = 3; REPLACE: E to B2 = [D A E].
 *                  T2 = B F G, B1 empty
 *   H              IV: |L1| 0, total 6 = 2c: D off B2; REPLACE: B to B2
 *                  = [A E B].  T1 = H, T2 = F G
 *   I              IV: total 6: A off B2; REPLACE, |T1| 1 < p 3: F to B2
 *                  = [E B F].  T1 = H I, T2 = G
 *   E              III: p = 3 - max(1, 0/3) = 2; REPLACE: E in B2 and
 *                  |T1| = 2 = p: T1's LRU, H, goes (without that rule,
 *                  |T1| > p fails and G would go).  T2 = G E
 *   G hit
 */
Test(hand, arc)
{
	EXPECT_HM("arc", 3, "ABCADBEAFBDAGEBFGHIEG",
		  "MMMHMMMMMHMMMMMMMMMMH");
}

/*
 * CAR, c = 3, Figure 2; clocks head (hand) first, reference bit after the
 * page; ghosts LRU first.
 *   A B C          T1 = A0 B0 C0
 *   A hit          A1
 *   D              replace: |T1| 3 >= max(1, p 0): A1 cleared, to T2;
 *                  B0 to B1.  No directory trim (|T1|+|B1| = 2, total 3).
 *                  T1 = C0 D0, T2 = A0, B1 = [B]
 *   B              replace: C0 to B1 = [B C]; B in B1: p = 0 + max(1, 0/2)
 *                  = 1; B to T2 = A0 B0, B1 = [C].  T1 = D0
 *   E              replace: |T1| 1 >= 1: D0 to B1 = [C D]; T1 = E0
 *   A hit          A1
 *   C              replace: E0 to B1 = [C D E]; C in B1: p = 1 + 1 = 2;
 *                  T2 = A1 B0 C0, B1 = [D E]
 *   F              replace: |T1| 0 < 2: T2: A1 cleared, to the tail; B0
 *                  to B2 = [B].  T2 = C0 A0; T1 = F0
 *   B              replace: |T1| 1 < 2: C0 to B2 = [B C]; B in B2: p = 2 -
 *                  max(1, 2/2) = 1; T2 = A0 B0, B2 = [C]
 *   F hit          F1
 *   G              replace: |T1| 1 >= 1: F1 cleared, to T2; |T1| 0: T2: A0
 *                  to B2 = [C A].  Trim: total 0+2+2+2 = 6 = 2c: C off B2.
 *                  T1 = G0, T2 = B0 F0
 *   C              replace: G0 to B1 = [D E G]; trim: |T1|+|B1| = 3 = c: D
 *                  off B1.  T1 = C0
 *   A              replace: C0 to B1 = [E G C]; A in B2: p = 1 - max(1,
 *                  3/1) = 0; T2 = B0 F0 A0
 *   B F hits       B1 F1
 *   D              replace: |T1| 0: T2: B1, F1 cleared, to the tail; A0 to
 *                  B2.  Trim: |T1|+|B1| = 3: E off B1.  T1 = D0
 *   B F hits
 */
Test(hand, car)
{
	EXPECT_HM("car", 3, "ABCADBEACFBFGCABFDBF", "MMMHMMMHMMMHMMMHHMHH");
}

/*
 * LIRS, 3 frames: Lhirs = 1, Llirs = 2.  S bottom first; r = resident
 * HIR, n = non-resident HIR, L = LIR.
 *   A B            warm-up: AL BL
 *   C              C HIR: S = AL BL Cr, Q = C
 *   D              Q's front C evicted, stays in S: AL BL Cn Dr; Q = D
 *   C              D evicted (Dn); C in S: LIR, bottom LIR A to Q; pruned:
 *                  S = BL Dn CL, Q = A
 *   B hit          LIR at the bottom: to the top, prune Dn: S = CL BL
 *   A hit          resident HIR, not in S: S = CL BL Ar, Q = A
 *   A hit          in S: LIR; C to Q, pruned: S = BL AL, Q = C
 *   E              C evicted (not in S); S = BL AL Er, Q = E
 *   C              E evicted (En); S = BL AL En Cr, Q = C
 *   E              C evicted (Cn); E in S: LIR, B to Q, pruned:
 *                  S = AL Cn EL, Q = B
 *   A hit          to the top, Cn pruned: S = EL AL
 *   B hit          resident HIR, not in S: S = EL AL Br, Q = B
 *   C              B evicted (Bn); S = EL AL Bn Cr, Q = C
 *   E hit          S = AL Bn Cr EL
 *   B              C evicted (Cn); B in S: LIR, A to Q, A and Cn pruned:
 *                  S = EL BL, Q = A
 *   A hit          S = EL BL Ar
 *   D              A evicted (An); S = EL BL An Dr, Q = D
 *   E B hits
 */
Test(hand, lirs)
{
	EXPECT_HM("lirs", 3, "ABCDCBAAECEABCEBADEB", "MMMMMHHHMMMHHMHMHMHH");
}

/*
 * MIN, 3 frames:  A B C fill;  D: next uses A@5, B@6, C@9 -> C goes;
 * A B hits;  E: next uses A@10, B@11, D never -> D goes;  C: A@10, B@11,
 * E never -> E goes;  A B hits.
 */
Test(hand, min)
{
	EXPECT_HM("min", 3, "ABCDABECAB", "MMMMHHMMHH");
}

/* The classic demonstration of Belady's anomaly: more frames, more
 * misses, under FIFO (Belady, Nelson and Shedler, CACM 1969). */
Test(hand, fifo_belady_anomaly)
{
	EXPECT_HM("fifo", 3, "123412512345", "MMMMMMMHHMMH");
	EXPECT_HM("fifo", 4, "123412512345", "MMMMHHMMMMMM");
}

Test(hand, random_is_seeded_and_uniform)
{
	const struct lp_policy_ops *ops = ops_of("random");
	struct lp_policy_host h = { 0 };
	enum { N = 16, ROUNDS = 160000 };
	uint32_t count[N] = { 0 }, seq[2][64];
	void *st;

	for (int run = 0; run < 2; run++) {
		cr_assert_eq(policy_create(ops, &st, N, &h, 42), 0);
		for (uint32_t f = 0; f < N; f++)
			ops->insert(st, f, f);
		for (int i = 0; i < ROUNDS; i++) {
			uint32_t f;
			cr_assert_eq(ops->evict(st, &f), 0);
			cr_assert_lt(f, N);
			if (i < 64)
				seq[run][i] = f;
			if (run == 0)
				count[f]++;
			ops->insert(st, f, f);
		}
		policy_destroy(ops, st);
	}
	cr_assert_arr_eq(seq[0], seq[1], sizeof(seq[0]), "not reproducible");
	/* Chi-square with 15 degrees of freedom: 37.7 is p = 0.001. */
	double chi = 0, e = (double)ROUNDS / N;
	for (int f = 0; f < N; f++)
		chi += (count[f] - e) * (count[f] - e) / e;
	cr_assert_lt(chi, 37.7, "not uniform: chi2 %.1f", chi);
}

/* --------------------------------------------------------------------
 * Naive models, one per policy, written from the papers' pseudo-code with
 * arrays and linear searches: too slow for use, easy to check by eye.
 */

#define CAP 512

struct arr {
	uint64_t k[CAP];
	uint8_t v[CAP];
	int n;
};

static int find(const struct arr *a, uint64_t k)
{
	for (int i = 0; i < a->n; i++)
		if (a->k[i] == k)
			return i;
	return -1;
}

static void del(struct arr *a, int i)
{
	memmove(a->k + i, a->k + i + 1, (size_t)(a->n - i - 1) * sizeof(a->k[0]));
	memmove(a->v + i, a->v + i + 1, (size_t)(a->n - i - 1));
	a->n--;
}

static void push(struct arr *a, uint64_t k, uint8_t v)
{
	cr_assert_lt(a->n, CAP);
	a->k[a->n] = k;
	a->v[a->n++] = v;
}

static int imax(int a, int b)
{
	return a > b ? a : b;
}

static int imin(int a, int b)
{
	return a < b ? a : b;
}

struct model {
	int c;                /* frames */
	struct arr a, b;      /* resident lists */
	struct arr g, h;      /* ghosts */
	int p, hand, nlir;
	bool (*access)(struct model *m, uint64_t x); /* true: a hit */
};

static bool m_lru(struct model *m, uint64_t x)
{
	int i = find(&m->a, x);

	if (i >= 0)
		del(&m->a, i);
	else if (m->a.n == m->c)
		del(&m->a, 0);
	push(&m->a, x, 0);
	return i >= 0;
}

/* a: oldest first, v = visited; hand = index, -1 for none. */
static bool m_sieve(struct model *m, uint64_t x)
{
	int i = find(&m->a, x);

	if (i >= 0) {
		m->a.v[i] = 1;
		return true;
	}
	if (m->a.n == m->c) {
		int o = m->hand < 0 ? 0 : m->hand;
		while (m->a.v[o]) {
			m->a.v[o] = 0;
			if (++o == m->a.n)
				o = 0;
		}
		del(&m->a, o);
		m->hand = o < m->a.n ? o : -1;
	}
	push(&m->a, x, 0);
	return false;
}

/* a = S, b = M, g = G; v = freq. */
static bool m_s3fifo(struct model *m, uint64_t x)
{
	int s_size = imax(m->c / 10, 1), m_size = imax(m->c - s_size, 0);
	int gcap = imax(m_size, 1), i;

	if ((i = find(&m->a, x)) >= 0 || (i = find(&m->b, x)) >= 0) {
		struct arr *q = find(&m->a, x) >= 0 ? &m->a : &m->b;
		q->v[i] = (uint8_t)imin(q->v[i] + 1, 3);
		return true;
	}
	bool ghost = (i = find(&m->g, x)) >= 0;
	if (ghost)
		del(&m->g, i);
	if (m->a.n + m->b.n == m->c) {
		bool done = false;
		if (m->b.n <= m_size && m->a.n) {
			while (!done && m->a.n) { /* evictS */
				uint64_t t = m->a.k[0];
				int f = m->a.v[0];
				del(&m->a, 0);
				if (f >= 2) {
					push(&m->b, t, 0);
				} else {
					if (m->g.n == gcap)
						del(&m->g, 0);
					push(&m->g, t, 0);
					done = true;
				}
			}
		}
		while (!done) { /* evictM */
			uint64_t t = m->b.k[0];
			int f = m->b.v[0];
			del(&m->b, 0);
			if (f > 0)
				push(&m->b, t, (uint8_t)(f - 1));
			else
				done = true;
		}
	}
	push(ghost ? &m->b : &m->a, x, 0);
	return false;
}

/* a = A1in, b = Am (LRU first), g = A1out. */
static bool m_2q(struct model *m, uint64_t x)
{
	int kin = imax(m->c / 4, 1), kout = imax(m->c / 2, 1), i;

	if ((i = find(&m->b, x)) >= 0) {
		del(&m->b, i);
		push(&m->b, x, 0);
		return true;
	}
	if (find(&m->a, x) >= 0)
		return true;
	bool out = find(&m->g, x) >= 0;
	if (m->a.n + m->b.n == m->c) { /* reclaimfor(x) */
		if (m->a.n > kin || !m->b.n) {
			push(&m->g, m->a.k[0], 0);
			del(&m->a, 0);
			if (m->g.n > kout)
				del(&m->g, 0);
		} else {
			del(&m->b, 0);
		}
	}
	if (out) {
		if ((i = find(&m->g, x)) >= 0)
			del(&m->g, i);
		push(&m->b, x, 0);
	} else {
		push(&m->a, x, 0);
	}
	return false;
}

/* a = T1, b = T2, g = B1, h = B2, all LRU first. */
static void arc_replace(struct model *m, bool in_b2)
{
	if (m->a.n >= 1 && ((in_b2 && m->a.n == m->p) || m->a.n > m->p)) {
		push(&m->g, m->a.k[0], 0);
		del(&m->a, 0);
	} else {
		push(&m->h, m->b.k[0], 0);
		del(&m->b, 0);
	}
}

static bool m_arc(struct model *m, uint64_t x)
{
	int c = m->c, i;

	if ((i = find(&m->a, x)) >= 0 || (i = find(&m->b, x)) >= 0) {
		del(find(&m->a, x) >= 0 ? &m->a : &m->b, i);
		push(&m->b, x, 0);
		return true;
	}
	if ((i = find(&m->g, x)) >= 0) {
		m->p = imin(m->p + imax(m->h.n / m->g.n, 1), c);
		arc_replace(m, false);
		del(&m->g, i);
		push(&m->b, x, 0);
		return false;
	}
	if ((i = find(&m->h, x)) >= 0) {
		m->p = imax(m->p - imax(m->g.n / m->h.n, 1), 0);
		arc_replace(m, true);
		del(&m->h, find(&m->h, x));
		push(&m->b, x, 0);
		return false;
	}
	int total = m->a.n + m->b.n + m->g.n + m->h.n;
	if (m->a.n + m->g.n == c) {
		if (m->a.n < c) {
			del(&m->g, 0);
			arc_replace(m, false);
		} else {
			del(&m->a, 0);
		}
	} else if (total >= c) {
		if (total == 2 * c)
			del(&m->h, 0);
		arc_replace(m, false);
	}
	push(&m->a, x, 0);
	return false;
}

/* a = T1, b = T2 (hand first, v = reference bit), g = B1, h = B2. */
static bool m_car(struct model *m, uint64_t x)
{
	int c = m->c, i;

	if ((i = find(&m->a, x)) >= 0) {
		m->a.v[i] = 1;
		return true;
	}
	if ((i = find(&m->b, x)) >= 0) {
		m->b.v[i] = 1;
		return true;
	}
	bool in_b1 = find(&m->g, x) >= 0, in_b2 = find(&m->h, x) >= 0;
	if (m->a.n + m->b.n == c) {
		for (bool found = false; !found;) { /* replace() */
			if (m->a.n >= imax(1, m->p)) {
				uint64_t y = m->a.k[0];
				found = !m->a.v[0];
				del(&m->a, 0);
				push(found ? &m->g : &m->b, y, 0);
			} else {
				uint64_t y = m->b.k[0];
				found = !m->b.v[0];
				del(&m->b, 0);
				push(found ? &m->h : &m->b, y, 0);
			}
		}
		if (!in_b1 && !in_b2 && m->a.n + m->g.n == c)
			del(&m->g, 0);
		else if (m->a.n + m->b.n + m->g.n + m->h.n == 2 * c &&
			 !in_b1 && !in_b2)
			del(&m->h, 0);
	}
	if (in_b1) {
		m->p = imin(m->p + imax(1, m->h.n / m->g.n), c);
		del(&m->g, find(&m->g, x));
		push(&m->b, x, 0);
	} else if (in_b2) {
		m->p = imax(m->p - imax(1, m->g.n / m->h.n), 0);
		del(&m->h, find(&m->h, x));
		push(&m->b, x, 0);
	} else {
		push(&m->a, x, 0);
	}
	return false;
}

/* a = S (bottom first, v = status), b = Q (front first), unbounded S. */
enum { LIR = 1, HIR_R, HIR_N };

static void lirs_prune(struct model *m)
{
	while (m->a.n && m->a.v[0] != LIR)
		del(&m->a, 0);
}

static void lirs_demote(struct model *m)
{
	for (int i = 0; i < m->a.n; i++) {
		if (m->a.v[i] == LIR) {
			m->a.v[i] = HIR_R;
			push(&m->b, m->a.k[i], 0);
			m->nlir--;
			break;
		}
	}
	lirs_prune(m);
}

static bool m_lirs(struct model *m, uint64_t x)
{
	int lhirs = imax(m->c / 100, 1), llirs = imax(m->c - lhirs, 0);
	int si = find(&m->a, x), qi = find(&m->b, x);

	if (si >= 0 && m->a.v[si] == LIR) {
		del(&m->a, si);
		push(&m->a, x, LIR);
		lirs_prune(m);
		return true;
	}
	if (qi >= 0) {
		del(&m->b, qi);
		if (si >= 0) {
			del(&m->a, si);
			push(&m->a, x, LIR);
			if (++m->nlir > llirs)
				lirs_demote(m);
		} else {
			push(&m->a, x, HIR_R);
			push(&m->b, x, 0);
		}
		return true;
	}
	if (m->nlir + m->b.n == m->c) { /* evict Q's front */
		int yi = find(&m->a, m->b.k[0]);
		if (yi >= 0)
			m->a.v[yi] = HIR_N;
		del(&m->b, 0);
	}
	if (si >= 0)
		del(&m->a, si);
	if (m->nlir < llirs || si >= 0) {
		push(&m->a, x, LIR);
		if (++m->nlir > llirs)
			lirs_demote(m);
	} else {
		push(&m->a, x, HIR_R);
		push(&m->b, x, 0);
	}
	return false;
}

static const struct {
	const char *name;
	bool (*access)(struct model *m, uint64_t x);
} models[] = {
	{ "lru", m_lru },   { "sieve", m_sieve }, { "s3fifo", m_s3fifo },
	{ "2q", m_2q },     { "arc", m_arc },     { "car", m_car },
	{ "lirs", m_lirs },
};

/* MIN the slow way: look ahead for each resident page. */
static uint64_t naive_min(const uint64_t *t, size_t n, int c, uint8_t *missed)
{
	struct arr res = { .n = 0 };
	uint64_t misses = 0;

	for (size_t i = 0; i < n; i++) {
		missed[i] = find(&res, t[i]) < 0;
		if (!missed[i])
			continue;
		misses++;
		if (res.n == c) {
			int victim = 0;
			size_t far = 0;
			for (int r = 0; r < res.n; r++) {
				size_t j = i + 1;
				while (j < n && t[j] != res.k[r])
					j++;
				if (j > far) {
					far = j;
					victim = r;
				}
			}
			del(&res, victim);
		}
		push(&res, t[i], 0);
	}
	return misses;
}

/* Random traces over 3*frames keys (within the bound LIRS keeps on its
 * non-resident entries): uniform, skewed, and loops mixed with either. */
static void random_trace(uint64_t *t, size_t n, int c, int kind, uint64_t seed)
{
	uint64_t s = seed, keys = 3 * (uint64_t)c;

	for (size_t i = 0; i < n; i++) {
		uint64_t r = rng_next(&s);
		switch (kind) {
		case 0:
			t[i] = r % keys;
			break;
		case 1: /* 80% of accesses on 20% of the keys */
			t[i] = (r >> 32) % 10 < 8 ? r % (keys / 5 + 1) : r % keys;
			break;
		default: /* loops of c+1 keys, broken by random keys */
			t[i] = (r >> 32) % 4 ? i % (uint64_t)(c + 1) : r % keys;
			break;
		}
		t[i] = t[i] * 7919 + 13; /* any page numbers */
	}
}

#define TLEN 3000

Test(model, every_policy_matches_its_paper)
{
	static const int frames[] = { 1, 2, 3, 4, 5, 7, 10, 16, 33 };
	static uint64_t t[TLEN];
	static uint8_t got[TLEN];
	static struct model m;

	for (size_t p = 0; p < sizeof(models) / sizeof(models[0]); p++) {
		const struct lp_policy_ops *ops = ops_of(models[p].name);
		for (size_t k = 0; k < sizeof(frames) / sizeof(frames[0]); k++)
			for (int kind = 0; kind < 3; kind++)
				for (uint64_t seed = 1; seed <= 4; seed++) {
			struct lp_trace tr;
			struct lp_sim_opts o = { .missed = got };
			struct lp_sim_result r;
			random_trace(t, TLEN, frames[k], kind, seed);
			cr_assert_eq(lp_trace_prepare(&tr, t, TLEN), 0);
			cr_assert_eq(lp_sim_run(&tr, ops, (uint32_t)frames[k],
						&o, &r), 0);
			lp_trace_release(&tr);
			memset(&m, 0, sizeof(m));
			m.c = frames[k];
			m.hand = -1;
			for (size_t i = 0; i < TLEN; i++) {
				bool hit = models[p].access(&m, t[i]);
				cr_assert_eq(got[i], !hit,
					     "%s, %d frames, trace %d/%lu: "
					     "access %zu (page %lu) %s, the "
					     "model %s", models[p].name,
					     frames[k], kind, seed, i, t[i],
					     got[i] ? "missed" : "hit",
					     hit ? "hit" : "missed");
			}
		}
	}
}

Test(min, matches_the_naive_min)
{
	static uint64_t t[TLEN];
	static uint8_t got[TLEN], want[TLEN];

	for (int c = 1; c <= 40; c += 3)
		for (int kind = 0; kind < 3; kind++) {
			struct lp_trace tr;
			struct lp_sim_result r;
			random_trace(t, TLEN, c, kind, (uint64_t)c);
			uint64_t misses = naive_min(t, TLEN, c, want);
			cr_assert_eq(lp_trace_prepare(&tr, t, TLEN), 0);
			cr_assert_eq(lp_sim_min(&tr, (uint32_t)c, got, &r), 0);
			lp_trace_release(&tr);
			cr_assert_eq(r.misses, misses, "%d frames", c);
			cr_assert_arr_eq(got, want, TLEN, "%d frames", c);
		}
}

/*
 * On a loop of L pages with C < L frames, MIN misses (L - C) of every
 * L - 1 accesses once warm: after a miss it keeps the C - 1 pages needed
 * next and loses the rest of each round.
 */
Test(min, loop_miss_ratio)
{
	static const int lc[][2] = {
		{ 10, 3 }, { 10, 9 }, { 50, 10 }, { 101, 50 }, { 256, 32 },
	};

	for (size_t k = 0; k < sizeof(lc) / sizeof(lc[0]); k++) {
		int L = lc[k][0], C = lc[k][1];
		size_t warm = (size_t)L * (size_t)L, periods = 200;
		size_t n = warm + periods * (size_t)(L - 1);
		uint64_t *t = malloc(n * sizeof(*t));
		uint8_t *missed = malloc(n);
		struct lp_trace tr;
		struct lp_sim_result r;
		cr_assert(t && missed);
		for (size_t i = 0; i < n; i++)
			t[i] = i % (size_t)L;
		cr_assert_eq(lp_trace_prepare(&tr, t, n), 0);
		cr_assert_eq(lp_sim_min(&tr, (uint32_t)C, missed, &r), 0);
		/* The last accesses see no future: count whole periods
		 * well before the end. */
		size_t m = 0, from = warm - (size_t)L * 2;
		size_t to = from + (periods - 4) * (size_t)(L - 1);
		for (size_t i = from; i < to; i++)
			m += missed[i];
		cr_assert_eq(m, (periods - 4) * (size_t)(L - C),
			     "L %d C %d: %zu misses in %zu accesses, want "
			     "(L-C)/(L-1)", L, C, m, to - from);
		lp_trace_release(&tr);
		free(t);
		free(missed);
	}
}

Test(min, never_worse_than_any_policy)
{
	static const char *const wl[] = { "uniform", "zipf0.8", "zipf1.2",
					   "loop", "hotscan", "shift" };
	const char *const *names = lp_policy_names();

	for (size_t w = 0; w < sizeof(wl) / sizeof(wl[0]); w++) {
		struct lp_workload_params wp = { .pages = 300, .length = 20000,
						 .seed = w + 1 };
		uint64_t *t;
		struct lp_trace tr;
		cr_assert_eq(lp_workload_trace(wl[w], &wp, &t), 0);
		cr_assert_eq(lp_trace_prepare(&tr, t, wp.length), 0);
		for (uint32_t frames = 16; frames <= 400; frames *= 3) {
			struct lp_sim_result best, r;
			cr_assert_eq(lp_sim_min(&tr, frames, NULL, &best), 0);
			for (int host = 0; host < 2; host++)
				for (size_t p = 0; names[p]; p++) {
					struct lp_sim_opts o = {
						.host = host ? LP_SIM_SAMPLED :
							       LP_SIM_EXACT,
						.seed = 7 };
					cr_assert_eq(lp_sim_run(&tr,
						ops_of(names[p]), frames, &o,
						&r), 0, "%s", names[p]);
					cr_assert_leq(best.misses, r.misses,
						"%s beats MIN on %s, %u frames",
						names[p], wl[w], frames);
				}
		}
		lp_trace_release(&tr);
		free(t);
	}
}

/* --------------------------------------------------------------------
 * The runtime's view: a use is reported only after a cleared bit, clears
 * are refused at random, frames are freed without eviction, evictions
 * come early and fail back (the page inserted again into its frame).
 */

struct fake {
	struct lp_policy_host h;
	uint8_t ref[64];
	const bool *used;
	bool stray;           /* a free frame's bit was cleared */
	uint64_t s;
};

static bool fake_clear(struct lp_policy_host *h, uint32_t f)
{
	struct fake *fk = h->ctx;

	if (fk->used && !fk->used[f])
		fk->stray = true;
	if (rng_next(&fk->s) % 3 == 0)
		return false;
	h->ref[f] = 0;
	return true;
}

static void runtime_view(const struct lp_policy_ops *ops, uint32_t n,
			 uint64_t seed)
{
	struct fake fk = { .s = seed };
	uint64_t key[64];
	bool used[64] = { false };
	uint32_t nused = 0, f;
	void *st;

	cr_assert_leq(n, 64);
	fk.used = used;
	fk.h.ref = fk.ref;
	fk.h.clear_ref = fake_clear;
	fk.h.ctx = &fk;
	cr_assert_eq(policy_create(ops, &st, n, &fk.h, seed), 0);
	cr_assert_eq(ops->evict(st, &f), -ENOENT, "%s: evicts from nothing",
		     ops->name);

	for (int step = 0; step < 20000; step++) {
		uint64_t r = rng_next(&fk.s), k = (r >> 8) % (4 * n);
		unsigned what = r % 100;
		if (what < 70) { /* an access */
			for (f = 0; f < n && !(used[f] && key[f] == k); f++)
				;
			if (f < n) {
				if (!fk.ref[f]) {
					fk.ref[f] = 1;
					if (ops->hit)
						ops->hit(st, f);
				}
				continue;
			}
			if (nused == n) {
				cr_assert_eq(ops->evict(st, &f), 0, "%s",
					     ops->name);
				cr_assert(f < n && used[f],
					  "%s evicted a free frame", ops->name);
				used[f] = false;
				nused--;
			}
			for (f = 0; used[f]; f++)
				;
			used[f] = true;
			key[f] = k;
			nused++;
			fk.ref[f] = 1;
			ops->insert(st, f, k);
		} else if (what < 80 && nused) { /* unmapped */
			do
				f = (uint32_t)(rng_next(&fk.s) % n);
			while (!used[f]);
			ops->remove(st, f);
			used[f] = false;
			nused--;
		} else if (what < 90 && nused) { /* evicted early */
			cr_assert_eq(ops->evict(st, &f), 0, "%s", ops->name);
			cr_assert(f < n && used[f], "%s evicted a free frame",
				  ops->name);
			used[f] = false;
			nused--;
		} else if (nused) { /* the eviction failed: back in */
			cr_assert_eq(ops->evict(st, &f), 0, "%s", ops->name);
			cr_assert(f < n && used[f], "%s evicted a free frame",
				  ops->name);
			fk.ref[f] = 1;
			ops->insert(st, f, key[f]);
		}
	}
	/* Every frame still in use comes out exactly once, then none. */
	while (nused) {
		cr_assert_eq(ops->evict(st, &f), 0, "%s lost %u frames",
			     ops->name, nused);
		cr_assert(f < n && used[f], "%s evicted a free frame",
			  ops->name);
		used[f] = false;
		nused--;
	}
	cr_assert_eq(ops->evict(st, &f), -ENOENT, "%s evicts a free frame",
		     ops->name);
	cr_assert_not(fk.stray, "%s cleared the bit of a free frame",
		      ops->name);
	policy_destroy(ops, st);
}

Test(runtime_view, no_policy_loses_a_frame)
{
	for (const char *const *name = lp_policy_names(); *name; name++)
		for (uint32_t n = 1; n <= 64; n = n * 2 + 1)
			for (uint64_t seed = 1; seed <= 3; seed++)
				runtime_view(ops_of(*name), n, seed);
}

/* Frames freed in the middle of each policy's lists are forgotten, the
 * others still evictable once each. */
Test(runtime_view, remove_in_the_middle)
{
	for (const char *const *name = lp_policy_names(); *name; name++) {
		const struct lp_policy_ops *ops = ops_of(*name);
		struct fake fk = { .s = 5 };
		bool left[16];
		uint32_t f;
		void *st;

		fk.h.ref = fk.ref;
		fk.h.clear_ref = fake_clear;
		fk.h.ctx = &fk;
		fk.h.all_uses = true;
		cr_assert_eq(policy_create(ops, &st, 16, &fk.h, 1), 0);
		for (f = 0; f < 16; f++) {
			fk.ref[f] = 1;
			ops->insert(st, f, 100 + f);
			left[f] = true;
		}
		for (f = 0; f < 16; f += 3) /* some move to other lists */
			if (ops->hit)
				ops->hit(st, f);
		for (f = 4; f < 12; f += 2) {
			ops->remove(st, f);
			left[f] = false;
		}
		for (int k = 0; k < 12; k++) {
			cr_assert_eq(ops->evict(st, &f), 0, "%s", *name);
			cr_assert(f < 16 && left[f], "%s: frame %u twice or "
				  "removed", *name, f);
			left[f] = false;
		}
		cr_assert_eq(ops->evict(st, &f), -ENOENT, "%s", *name);
		policy_destroy(ops, st);
	}
}

/*
 * What the runtime shows a policy is enough for it to beat FIFO, which
 * uses nothing: on Zipf, the policies that use hits or bits; with scans
 * of a hot set, the scan-resistant ones beat LRU; on a loop larger than
 * memory, LIRS beats LRU (which misses every time) even though the
 * runtime evicts in bursts larger than LIRS's HIR set.
 */
Test(runtime_view, sampled_policies_still_pay)
{
	static const char *const zipf_better[] = {
		"clock", "lru", "sieve", "s3fifo", "2q", "arc", "car", "lirs",
	};
	static const char *const scan_resistant[] = {
		"sieve", "s3fifo", "2q", "arc", "car", "lirs",
	};
	struct lp_sim_opts o = { .host = LP_SIM_SAMPLED, .seed = 1 };
	struct lp_workload_params wp = { .pages = 1024, .length = 200000,
					 .seed = 1 };
	struct lp_sim_result base, r;
	struct lp_trace tr;
	uint64_t *t;

	cr_assert_eq(lp_workload_trace("zipf1.0", &wp, &t), 0);
	cr_assert_eq(lp_trace_prepare(&tr, t, wp.length), 0);
	cr_assert_eq(lp_sim_run(&tr, ops_of("fifo"), 256, &o, &base), 0);
	for (size_t p = 0; p < sizeof(zipf_better) / sizeof(*zipf_better); p++) {
		cr_assert_eq(lp_sim_run(&tr, ops_of(zipf_better[p]), 256, &o,
					&r), 0);
		cr_assert_lt(r.misses * 100, base.misses * 95,
			     "%s: %lu misses, fifo %lu", zipf_better[p],
			     r.misses, base.misses);
	}
	lp_trace_release(&tr);
	free(t);

	cr_assert_eq(lp_workload_trace("hotscan", &wp, &t), 0);
	cr_assert_eq(lp_trace_prepare(&tr, t, wp.length), 0);
	cr_assert_eq(lp_sim_run(&tr, ops_of("lru"), 1536, &o, &base), 0);
	for (size_t p = 0; p < sizeof(scan_resistant) / sizeof(*scan_resistant);
	     p++) {
		cr_assert_eq(lp_sim_run(&tr, ops_of(scan_resistant[p]), 1536,
					&o, &r), 0);
		cr_assert_lt(r.misses * 100, base.misses * 70,
			     "%s: %lu misses, lru %lu", scan_resistant[p],
			     r.misses, base.misses);
	}
	lp_trace_release(&tr);
	free(t);

	wp.pages = 512;
	cr_assert_eq(lp_workload_trace("loop", &wp, &t), 0);
	cr_assert_eq(lp_trace_prepare(&tr, t, wp.length), 0);
	cr_assert_eq(lp_sim_run(&tr, ops_of("lru"), 256, &o, &base), 0);
	cr_assert_eq(lp_sim_run(&tr, ops_of("lirs"), 256, &o, &r), 0);
	cr_assert_lt(r.misses * 100, base.misses * 80,
		     "lirs: %lu misses, lru %lu", r.misses, base.misses);
	lp_trace_release(&tr);
	free(t);
}

/* The simulator catches a policy that breaks its contract. */
static int bad_init(void *s, uint32_t n, struct lp_policy_host *h,
		    uint64_t seed)
{
	(void)s;
	(void)n;
	(void)h;
	(void)seed;
	return 0;
}

static void bad_fini(void *s)
{
	(void)s;
}

static void bad_insert(void *s, uint32_t f, uint64_t k)
{
	(void)s;
	(void)f;
	(void)k;
}

static void bad_hit(void *s, uint32_t f)
{
	(void)s;
	(void)f;
}

static int bad_evict(void *s, uint32_t *f)
{
	(void)s;
	*f = 0; /* always frame 0, resident or not */
	return 0;
}

Test(sim, rejects_a_policy_that_evicts_twice)
{
	static const struct lp_policy_ops bad = {
		.name = "bad", .size = 1, .init = bad_init, .fini = bad_fini,
		.insert = bad_insert, .hit = bad_hit, .remove = bad_hit,
		.evict = bad_evict,
	};
	uint64_t t[] = { 1, 2, 3, 1 };
	struct lp_trace tr;
	struct lp_sim_result r;

	cr_assert_eq(lp_trace_prepare(&tr, t, 4), 0);
	cr_assert_eq(lp_sim_run(&tr, &bad, 2, NULL, &r), -EPROTO);
	lp_trace_release(&tr);
}

Test(sim, sampled_host_reports_uses_after_clears_only)
{
	struct lp_workload_params wp = { .pages = 64, .length = 5000,
					 .seed = 3 };
	struct lp_sim_opts o = { .host = LP_SIM_SAMPLED, .ref_scan = 4 };
	struct lp_sim_result fifo, lru;
	struct lp_trace tr;
	uint64_t *t;

	cr_assert_eq(lp_workload_trace("zipf1.0", &wp, &t), 0);
	cr_assert_eq(lp_trace_prepare(&tr, t, wp.length), 0);
	cr_assert_eq(lp_sim_run(&tr, ops_of("fifo"), 16, &o, &fifo), 0);
	cr_assert_eq(lp_sim_run(&tr, ops_of("lru"), 16, &o, &lru), 0);
	/* FIFO clears nothing, so is told of no use. */
	cr_assert_eq(fifo.clears, 0);
	cr_assert_eq(fifo.hits_seen, 0);
	cr_assert_gt(lru.clears, 0);
	cr_assert_leq(lru.hits_seen, lru.clears);
	cr_assert_leq(lru.clears, 4 * lru.misses);
	lp_trace_release(&tr);
	free(t);
}

Test(ghost, bounded_map)
{
	struct ghost g;
	uint32_t s[4];

	cr_assert_eq(ghost_init(&g, 4), 0);
	/* Keys that differ only in high bits share buckets often. */
	for (uint64_t k = 0; k < 4; k++) {
		s[k] = ghost_add(&g, k << 60);
		cr_assert_neq(s[k], FL_NIL);
	}
	cr_assert(ghost_full(&g));
	cr_assert_eq(ghost_add(&g, 99), FL_NIL, "grew past its size");
	for (uint64_t k = 0; k < 4; k++)
		cr_assert_eq(ghost_find(&g, k << 60), s[k]);
	ghost_del(&g, s[1]);
	cr_assert_eq(ghost_find(&g, 1ull << 60), FL_NIL);
	cr_assert_eq(ghost_find(&g, 2ull << 60), s[2]);
	cr_assert_eq(ghost_find(&g, 3ull << 60), s[3]);
	cr_assert_eq(ghost_add(&g, 99), s[1], "a freed slot is reused");
	cr_assert_eq(ghost_find(&g, 99), s[1]);
	ghost_fini(&g);
}

Test(workload, seeded_and_within_footprint)
{
	for (const char *const *name = lp_workload_names(); *name; name++) {
		struct lp_workload_params wp = { .pages = 100, .length = 5000,
						 .seed = 9 };
		struct lp_workload *w;
		uint64_t *a, *b;
		cr_assert_eq(lp_workload_trace(*name, &wp, &a), 0);
		cr_assert_eq(lp_workload_trace(*name, &wp, &b), 0);
		cr_assert_arr_eq(a, b, wp.length * sizeof(*a), "%s", *name);
		cr_assert_eq(lp_workload_create(&w, *name, &wp), 0);
		uint64_t bound = lp_workload_footprint(w);
		for (size_t i = 0; i < wp.length; i++)
			cr_assert_lt(a[i], bound, "%s: page %lu >= %lu", *name,
				     a[i], bound);
		lp_workload_destroy(w);
		free(b);
		wp.seed = 10;
		cr_assert_eq(lp_workload_trace(*name, &wp, &b), 0);
		if (strcmp(*name, "seq") && strcmp(*name, "loop"))
			cr_assert(memcmp(a, b, wp.length * sizeof(*a)),
				  "%s ignores the seed", *name);
		free(a);
		free(b);
	}
}

/* Zipf: the most popular page is used about 1/H(n, alpha) of the time and
 * is not page 0 but wherever the permutation put it. */
Test(workload, zipf_popularity)
{
	struct lp_workload_params wp = { .pages = 1000, .length = 200000,
					 .seed = 4 };
	static uint32_t count[1000];
	uint64_t *t, top = 0;
	double h = 0;

	for (int r = 1; r <= 1000; r++)
		h += 1.0 / r;
	cr_assert_eq(lp_workload_trace("zipf1.0", &wp, &t), 0);
	for (size_t i = 0; i < wp.length; i++)
		count[t[i]]++;
	for (uint64_t p = 1; p < 1000; p++)
		if (count[p] > count[top])
			top = p;
	double share = (double)count[top] / wp.length;
	cr_assert(share > 0.9 / h && share < 1.1 / h, "top share %.4f", share);
	cr_assert_neq(top, 0, "popularity follows addresses");
	struct lp_workload *w;
	cr_assert_eq(lp_workload_create(&w, "zipf0", &wp), -EINVAL);
	cr_assert_eq(lp_workload_create(&w, "nope", &wp), -EINVAL);
	free(t);
}
