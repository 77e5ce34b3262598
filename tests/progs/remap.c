/* mremap on anonymous and private file memory, every page's content
 * checked.  Its output under vmrun must equal its native output.
 *
 *   move [PAGES]     grow a mapping page by page with MREMAP_MAYMOVE, a
 *                    blocker page reserved after its end so that every grow
 *                    moves it; each page written when it is added and
 *                    rewritten later (so that its swap writes are in flight
 *                    while it moves); every page checked at the end
 *   realloc [PAGES]  the same through glibc realloc (mremap of its mmapped
 *                    chunks), with a second block grown alongside
 *   inplace          grow in place three times (no MAYMOVE), then shrink
 *                    and grow again; the grown parts must work as one
 *   fixed            MREMAP_FIXED onto managed and unmanaged ranges, and an
 *                    unmanaged mapping moved onto a managed range
 *   part             move (and grow) a part from the middle of a mapping
 *   file             grow a private file mapping (moved and in place)
 *   threads [PAGES]  move, while four threads read another mapping, twice
 *                    the cap, page after random page (under vmrun: swap-ins
 *                    in flight while each mremap freezes the pager)
 *   pagewise         move a mapping's pages one by one (MREMAP_FIXED) next
 *                    to each other into another, its moved pages swapped
 *                    out between moves (the kernel merged each move with
 *                    the one before and dropped the registration of both:
 *                    all but the last page read zeros)
 *   fork             a forked child moves (grows) a mapping its parent
 *                    wrote, much of it swapped out, and grows another in
 *                    place; the parent's pages stay its own
 *   multi            a range of several mappings (split by mprotect, or
 *                    with a hole): a growth and a shrinking MREMAP_FIXED
 *                    are refused (EFAULT) and leave the destination whole;
 *                    a move of the same length moves each mapping (Linux
 *                    6.17+), the hole's destination kept; swapped out and
 *                    back in between
 *   neighbour [N]    move the end of a mapping away and back N times
 *                    (default 400), while four threads
 *                    read that other one, twice the cap, page after random
 *                    page (the kernel merges the two: the merged whole
 *                    lost its registration, and a read of one of the
 *                    neighbour's swapped-out pages before we registered it
 *                    again read zeros)
 *   replace          mappings the kernel keeps (MAP_GROWSDOWN, shared) moved or
 *                    mapped with MAP_FIXED over paged memory: their pages
 *                    stay theirs while everything else is swapped out
 *
 * Prints one line per check; exits 1 when a page is wrong.  A mismatch
 * also prints the first bad pages on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PG 4096ul

static unsigned long bad_total;

static uint64_t word(uint64_t page, uint64_t gen, unsigned w)
{
	return (page * 0x9e3779b97f4a7c15ull) ^ (gen << 48) ^ ((uint64_t)w << 20) ^
	       0x5a5au;
}

static void fill(unsigned char *base, uint64_t page, uint64_t gen)
{
	uint64_t *q = (uint64_t *)(base + page * PG);

	for (unsigned w = 0; w < PG / 8; w++)
		q[w] = word(page, gen, w);
}

/* Whether page `page` at base holds generation gen; reports on stderr. */
static bool check(const char *what, const unsigned char *base, uint64_t page,
		  uint64_t gen)
{
	const uint64_t *q = (const uint64_t *)(base + page * PG);

	for (unsigned w = 0; w < PG / 8; w++) {
		if (q[w] == word(page, gen, w))
			continue;
		if (bad_total++ < 10) {
			bool zero = true;
			for (unsigned k = 0; k < PG / 8 && zero; k++)
				zero = q[k] == 0;
			fprintf(stderr, "%s: page %llu word %u: %#llx, want %#llx%s\n",
				what, (unsigned long long)page, w,
				(unsigned long long)q[w],
				(unsigned long long)word(page, gen, w),
				zero ? " (page all zero)" : "");
		}
		return false;
	}
	return true;
}

static bool zero_page(const unsigned char *p)
{
	for (size_t i = 0; i < PG; i++)
		if (p[i])
			return false;
	return true;
}

static sigjmp_buf jb;
static volatile sig_atomic_t got;

static void on_fault(int sig)
{
	got = sig;
	siglongjmp(jb, 1);
}

/* The signal a read of p raises (0: none). */
static int probe(const volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = on_fault }, o1, o2;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &o1);
	sigaction(SIGBUS, &sa, &o2);
	got = 0;
	if (!sigsetjmp(jb, 1))
		(void)*p;
	sigaction(SIGSEGV, &o1, NULL);
	sigaction(SIGBUS, &o2, NULL);
	return got;
}

static const char *sig_name(int s)
{
	return s == 0 ? "ok" : s == SIGSEGV ? "SIGSEGV" : s == SIGBUS ? "SIGBUS" : "signal";
}

static void *map_anon(void *at, size_t len, int extra)
{
	return mmap(at, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
}

/* Grow by one page at a time with MREMAP_MAYMOVE; a page reserved right
 * after the end forces every grow to move the mapping.  Each step writes
 * the new page, rewrites an older one (dirty again: written out again
 * while the mapping moves) and checks a third. */
static int move(size_t pages)
{
	unsigned char *p = map_anon(NULL, PG, 0);
	uint8_t *gen = calloc(pages, 1);
	size_t moves = 0, len = PG;
	unsigned long bad = 0;

	if (p == MAP_FAILED || !gen) {
		perror("mmap");
		return 2;
	}
	fill(p, 0, gen[0] = 1);
	for (size_t n = 1; n < pages; n++) {
		void *blk = map_anon(p + len, PG, MAP_FIXED_NOREPLACE);
		unsigned char *q = mremap(p, len, len + PG, MREMAP_MAYMOVE);
		if (q == MAP_FAILED) {
			perror("mremap");
			return 2;
		}
		if (blk != MAP_FAILED)
			munmap(blk, PG);
		moves += q != p;
		p = q;
		len += PG;
		fill(p, n, gen[n] = 1);
		fill(p, n / 2, ++gen[n / 2]);
		bad += !check("move (during)", p, n / 3, gen[n / 3]);
	}
	for (size_t k = 0; k < pages; k++)
		bad += !check("move", p, k, gen[k]);
	printf("move: %zu pages, moved %s, %lu bad\n", pages,
	       moves >= pages / 2 ? "mostly" : "rarely", bad);
	munmap(p, len);
	free(gen);
	return bad ? 1 : 0;
}

#define READERS 4
#define READ_PAGES 2048u

struct readers {
	unsigned char *a;
	atomic_bool stop;
	atomic_ulong bad;
};

static void *read_pages(void *arg)
{
	struct readers *r = arg;
	uint64_t x = (uint64_t)(uintptr_t)&x;

	while (!atomic_load(&r->stop)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (!check("threads (reader)", r->a, x % READ_PAGES, 1))
			atomic_fetch_add(&r->bad, 1);
	}
	return NULL;
}

static int threads(size_t pages)
{
	struct readers r = { .a = map_anon(NULL, READ_PAGES * PG, 0) };
	pthread_t t[READERS];

	if (r.a == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < READ_PAGES; k++)
		fill(r.a, k, 1);
	for (int i = 0; i < READERS; i++)
		if (pthread_create(&t[i], NULL, read_pages, &r)) {
			perror("pthread_create");
			return 2;
		}
	int rc = move(pages);
	atomic_store(&r.stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	unsigned long bad = atomic_load(&r.bad);
	for (size_t k = 0; k < READ_PAGES; k++)
		bad += !check("threads", r.a, k, 1);
	printf("threads: %d readers of %u pages, %lu bad\n", READERS,
	       READ_PAGES, bad);
	return rc ? rc : bad ? 1 : 0;
}

/* The same through glibc realloc: blocks beyond the mmap threshold are
 * mmapped chunks that realloc grows with mremap(MREMAP_MAYMOVE).  Two
 * blocks grow in turn, each in the other's way. */
static int grow_realloc(size_t pages)
{
	size_t base = 64; /* 256 KiB: beyond glibc's mmap threshold */
	unsigned char *blk[2] = { NULL, NULL };
	uint8_t *gen[2];
	unsigned long bad = 0;

	for (int b = 0; b < 2; b++) {
		blk[b] = malloc(base * PG);
		gen[b] = calloc(pages + base, 1);
		if (!blk[b] || !gen[b]) {
			perror("malloc");
			return 2;
		}
		for (size_t k = 0; k < base; k++)
			fill(blk[b], k, gen[b][k] = 1);
	}
	for (size_t n = base; n < base + pages / 2; n++) {
		for (int b = 0; b < 2; b++) {
			unsigned char *q = realloc(blk[b], (n + 1) * PG);
			if (!q) {
				perror("realloc");
				return 2;
			}
			blk[b] = q;
			fill(q, n, gen[b][n] = 1);
			fill(q, n / 2, ++gen[b][n / 2]);
			bad += !check("realloc (during)", q, n / 3, gen[b][n / 3]);
		}
	}
	size_t total = base + pages / 2;
	for (int b = 0; b < 2; b++) {
		for (size_t k = 0; k < total; k++)
			bad += !check("realloc", blk[b], k, gen[b][k]);
		free(blk[b]);
		free(gen[b]);
	}
	printf("realloc: 2 blocks of %zu pages, %lu bad\n", total, bad);
	return bad ? 1 : 0;
}

/* Check pages [from, to) of p against generation gen; print the result. */
static unsigned long check_range(const char *what, const unsigned char *p,
				 size_t from, size_t to, uint64_t gen)
{
	unsigned long bad = 0;

	for (size_t k = from; k < to; k++)
		bad += !check(what, p, k, gen);
	return bad;
}

/* A mapping with `room` free pages after its first `pages`. */
static unsigned char *with_room(size_t pages, size_t room)
{
	unsigned char *p = map_anon(NULL, (pages + room) * PG, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p + pages * PG, room * PG);
	return p;
}

/* Grow in place (no MREMAP_MAYMOVE) three times, the grown parts used as
 * one mapping; then shrink, grow in place again, and move the whole. */
static int inplace(void)
{
	unsigned char *p = with_room(1, 8);
	unsigned long bad = 0;

	if (!p) {
		perror("mmap");
		return 2;
	}
	fill(p, 0, 1);
	for (size_t i = 1; i <= 3; i++) {
		void *q = mremap(p, i * PG, (i + 1) * PG, 0);
		printf("grow %zu -> %zu pages in place: %s\n", i, i + 1,
		       q == MAP_FAILED ? strerror(errno) : q == p ? "ok" : "moved");
		if (q != p)
			return 1;
		fill(p, i, 1);
		bad += check_range("inplace", p, 0, i + 1, 1);
	}
	/* the whole as one: rewrite it, move it with a grow */
	for (size_t k = 0; k < 4; k++)
		fill(p, k, 2);
	void *blk = map_anon(p + 4 * PG, PG, MAP_FIXED_NOREPLACE);
	unsigned char *q = mremap(p, 4 * PG, 6 * PG, MREMAP_MAYMOVE);
	printf("grow the 4 pages to 6 (moving): %s\n",
	       q == MAP_FAILED ? strerror(errno) : q == p ? "in place" : "moved");
	if (q == MAP_FAILED)
		return 1;
	if (blk != MAP_FAILED)
		munmap(blk, PG);
	p = q;
	bad += check_range("inplace moved", p, 0, 4, 2);
	printf("new pages zero: %s\n",
	       zero_page(p + 4 * PG) && zero_page(p + 5 * PG) ? "yes" : "no");
	/* shrink, then grow in place again: what was cut off comes back zero */
	fill(p, 4, 2);
	q = mremap(p, 6 * PG, 2 * PG, 0);
	printf("shrink 6 -> 2 pages: %s\n", q == p ? "ok" : strerror(errno));
	bad += check_range("shrunk", p, 0, 2, 2);
	printf("past the end after shrink: %s\n", sig_name(probe(p + 2 * PG)));
	q = mremap(p, 2 * PG, 6 * PG, 0);
	printf("grow 2 -> 6 pages in place: %s\n",
	       q == MAP_FAILED ? strerror(errno) : q == p ? "ok" : "moved");
	if (q == p) {
		bad += check_range("regrown", p, 0, 2, 2);
		printf("regrown pages zero: %s\n",
		       zero_page(p + 2 * PG) && zero_page(p + 4 * PG) ? "yes" : "no");
		munmap(p, 6 * PG);
	}
	printf("inplace: %lu bad\n", bad);
	return bad ? 1 : 0;
}

/* MREMAP_FIXED onto managed and unmanaged ranges.  Everything is carved
 * out of one shared (unmanaged) arena, so that no range can overlap
 * another, whatever the layout. */
static int fixed(void)
{
	unsigned long bad = 0;
	unsigned char *ar = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (ar == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	unsigned char *a = map_anon(ar, 8 * PG, MAP_FIXED);
	unsigned char *b = map_anon(ar + 10 * PG, 8 * PG, MAP_FIXED);
	unsigned char *u = ar + 20 * PG; /* 12 pages of the arena: shared */
	unsigned char *c = map_anon(ar + 34 * PG, 8 * PG, MAP_FIXED);
	unsigned char *s = ar + 44 * PG; /* 4 pages of the arena */
	if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < 12; k++) {
		fill(a, k & 7, 1);
		fill(b, k & 7, 5);
		fill(u, k, 7);
		fill(c, k & 7, 9);
		fill(s, k & 3, 11);
	}
	/* private onto private: b's pages are replaced by a's */
	void *q = mremap(a, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, b);
	printf("fixed onto a private mapping: %s\n",
	       q == b ? "ok" : q == MAP_FAILED ? strerror(errno) : "elsewhere");
	bad += check_range("fixed onto private", b, 0, 8, 1);
	/* Gone: unmapped (SIGSEGV), or, under vmrun, reused by the pager,
	 * which shares the address space (an ASan build's allocator took it
	 * in 1 of 40 runs), but never holding the moved pages. */
	int sig = probe(a);
	printf("old range after the move: %s\n",
	       sig == SIGSEGV || (sig == 0 && *(uint64_t *)a != word(0, 1, 0)) ? "gone"
									     : sig_name(sig));
	/* private onto the shared arena, growing */
	q = mremap(b, 8 * PG, 10 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, u);
	printf("fixed onto a shared mapping, growing: %s\n",
	       q == u ? "ok" : q == MAP_FAILED ? strerror(errno) : "elsewhere");
	bad += check_range("fixed onto shared", u, 0, 8, 1);
	printf("grown part zero: %s\n",
	       zero_page(u + 8 * PG) && zero_page(u + 9 * PG) ? "yes" : "no");
	bad += check_range("arena beyond", u, 10, 12, 7);
	for (size_t k = 0; k < 10; k++)
		fill(u, k, 3);
	bad += check_range("rewritten", u, 0, 10, 3);
	/* the shared arena onto half of a private mapping */
	q = mremap(s, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, c);
	printf("shared onto a private mapping: %s\n",
	       q == c ? "ok" : q == MAP_FAILED ? strerror(errno) : "elsewhere");
	bad += check_range("shared over private", c, 0, 4, 11);
	bad += check_range("private beside", c, 4, 8, 9);
	for (size_t k = 0; k < 8; k++)
		fill(c, k, 13);
	bad += check_range("both rewritten", c, 0, 8, 13);
	/* a fresh private mapping where all this was reads zero */
	unsigned char *d = map_anon(ar, 64 * PG, MAP_FIXED);
	bool z = d == ar;
	for (size_t k = 0; k < 64 && z; k++)
		z = zero_page(d + k * PG);
	printf("fresh mapping over it all zero: %s\n", z ? "yes" : "no");
	for (size_t k = 0; k < 64; k++)
		fill(d, k, 15);
	bad += check_range("fresh mapping", d, 0, 64, 15);
	munmap(d, 64 * PG);
	printf("fixed: %lu bad\n", bad);
	return bad ? 1 : 0;
}

/* Pages moved one by one into a second mapping, side by side; 16 MiB
 * touched between moves, so that under a cap the moved ones are out. */
static int pagewise(void)
{
	enum { N = 48, BIG = 16 << 20 };
	unsigned long bad = 0;
	unsigned char *a = map_anon(NULL, N * PG, 0), *b = map_anon(NULL, N * PG, 0);
	unsigned char *big = map_anon(NULL, BIG, 0);

	if (a == MAP_FAILED || b == MAP_FAILED || big == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < N; k++)
		fill(a, k, 17);
	for (size_t k = 0; k < N; k++) {
		void *q = mremap(a + k * PG, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, b + k * PG);
		if (q != b + k * PG) {
			printf("pagewise: move %zu: %s\n", k,
			       q == MAP_FAILED ? strerror(errno) : "elsewhere");
			return 1;
		}
		if (k % 8 == 7)
			for (size_t i = 0; i < BIG; i += PG)
				big[i] = (unsigned char)(k + i);
	}
	bad += check_range("pagewise", b, 0, N, 17);
	printf("pagewise: %lu bad\n", bad);
	munmap(b, N * PG);
	munmap(big, BIG);
	return bad ? 1 : 0;
}

/* Move a part out of the middle of a mapping (growing it). */
static int part(void)
{
	unsigned long bad = 0;
	unsigned char *m = map_anon(NULL, 16 * PG, 0);

	if (m == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < 16; k++)
		fill(m, k, 1);
	unsigned char *q = mremap(m + 4 * PG, 4 * PG, 8 * PG, MREMAP_MAYMOVE);
	printf("middle part moved: %s\n",
	       q == MAP_FAILED ? strerror(errno) : q == m + 4 * PG ? "in place" : "ok");
	if (q == MAP_FAILED)
		return 1;
	/* the part keeps its pages (page k of m is page k - 4 of q) */
	for (size_t k = 0; k < 4; k++)
		bad += !check("part", q - 4 * PG, k + 4, 1);
	printf("part grown: zero %s\n",
	       zero_page(q + 4 * PG) && zero_page(q + 7 * PG) ? "yes" : "no");
	printf("hole left: %s\n", sig_name(probe(m + 5 * PG)));
	bad += check_range("before the hole", m, 0, 4, 1);
	bad += check_range("after the hole", m, 8, 16, 1);
	for (size_t k = 0; k < 8; k++)
		fill(q, k, 2);
	bad += check_range("part rewritten", q, 0, 8, 2);
	/* shrink a part of the rest (its tail goes) */
	void *r = mremap(m + 8 * PG, 8 * PG, 2 * PG, 0);
	printf("tail shrunk: %s; beyond: %s\n", r == m + 8 * PG ? "ok" : strerror(errno),
	       sig_name(probe(m + 11 * PG)));
	bad += check_range("shrunk tail", m, 8, 10, 1);
	munmap(m, 10 * PG);
	munmap(q, 8 * PG);
	printf("part: %lu bad\n", bad);
	return bad ? 1 : 0;
}

/* Grow a private file mapping: the new pages are the file's next pages. */
static int file(void)
{
	char path[] = "/tmp/lp-remap-XXXXXX";
	int fd = mkstemp(path);
	unsigned long bad = 0;

	if (fd < 0) {
		perror("mkstemp");
		return 2;
	}
	unlink(path);
	unsigned char *buf = malloc(16 * PG);
	for (size_t k = 0; k < 16; k++)
		fill(buf, k, 20);
	if (write(fd, buf, 16 * PG) != (ssize_t)(16 * PG)) {
		perror("write");
		return 2;
	}
	/* 4 pages with room for 4 more */
	unsigned char *f = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	munmap(f + 4 * PG, 4 * PG);
	bad += check_range("file", f, 0, 4, 20);
	fill(f, 0, 21);
	void *q = mremap(f, 4 * PG, 8 * PG, 0);
	printf("file grown in place: %s\n", q == f ? "ok" : strerror(errno));
	if (q != f)
		return 1;
	bad += !check("file page 0", f, 0, 21);
	bad += check_range("file grown", f, 1, 8, 20);
	fill(f, 5, 22);
	void *blk = map_anon(f + 8 * PG, PG, MAP_FIXED_NOREPLACE);
	unsigned char *g = mremap(f, 8 * PG, 12 * PG, MREMAP_MAYMOVE);
	printf("file grown, moving: %s\n",
	       g == MAP_FAILED ? strerror(errno) : g == f ? "in place" : "moved");
	if (g == MAP_FAILED)
		return 1;
	if (blk != MAP_FAILED)
		munmap(blk, PG);
	bad += !check("file page 0 moved", g, 0, 21);
	bad += !check("file page 5 moved", g, 5, 22);
	bad += check_range("file 1-4", g, 1, 5, 20);
	bad += check_range("file 6-11", g, 6, 12, 20);
	/* private: the file keeps its bytes */
	if (pread(fd, buf, 16 * PG, 0) != (ssize_t)(16 * PG)) {
		perror("pread");
		return 2;
	}
	bad += check_range("file itself", buf, 0, 16, 20);
	munmap(g, 12 * PG);
	close(fd);
	free(buf);
	printf("file: %lu bad\n", bad);
	return bad ? 1 : 0;
}

/* mremap in a forked child (its vm is the pager's child vm). */
static int forked(size_t pages)
{
	unsigned long bad = 0;
	unsigned char *m = map_anon(NULL, pages * PG, 0);
	unsigned char *g = with_room(2, 8);

	if (m == MAP_FAILED || !g) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < pages; k++)
		fill(m, k, 1);
	fill(g, 0, 1);
	fill(g, 1, 1);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		void *blk = map_anon(m + pages * PG, PG, MAP_FIXED_NOREPLACE);
		unsigned char *q = mremap(m, pages * PG, (pages + 4) * PG, MREMAP_MAYMOVE);
		if (q == MAP_FAILED) {
			printf("child: mremap: %s\n", strerror(errno));
			_exit(1);
		}
		if (blk != MAP_FAILED)
			munmap(blk, PG);
		unsigned long cbad = check_range("child moved", q, 0, pages, 1);
		bool z = zero_page(q + pages * PG) && zero_page(q + (pages + 3) * PG);
		for (size_t k = 0; k < pages; k += 7)
			fill(q, k, 9); /* must not reach the parent */
		cbad += check_range("child rewritten", q, 0, 1, 9);
		void *r = mremap(g, 2 * PG, 4 * PG, 0);
		printf("child: moved %s, grown part zero %s, grow in place %s\n",
		       q == m ? "no" : "yes", z ? "yes" : "no",
		       r == g ? "ok" : strerror(errno));
		if (r == g) {
			cbad += check_range("child grown in place", g, 0, 2, 1);
			fill(g, 3, 5);
			cbad += !check("child grown page", g, 3, 5);
			printf("child: grown page written: %s\n", zero_page(g + 2 * PG) ? "ok" : "no");
		}
		printf("child: %lu bad\n", cbad);
		fflush(stdout);
		_exit(cbad ? 1 : 0);
	}
	int st;
	waitpid(pid, &st, 0);
	bad += check_range("parent", m, 0, pages, 1);
	bad += check_range("parent g", g, 0, 2, 1);
	printf("fork: child %s, parent %lu bad\n",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "failed", bad);
	return bad || !WIFEXITED(st) || WEXITSTATUS(st) ? 1 : 0;
}

/* Touch 16 MiB: under a cap, every other page goes out. */
static void squeeze(void)
{
	size_t len = 16ul << 20;
	unsigned char *big = map_anon(NULL, len, 0);

	if (big == MAP_FAILED)
		return;
	for (size_t i = 0; i < len; i += PG)
		big[i] = (unsigned char)(i >> 12);
	munmap(big, len);
}

static const char *result(void *q, void *want)
{
	return q == MAP_FAILED ? strerror(errno) : q == want ? "ok" : "elsewhere";
}

/* A range of several mappings moved, or refused. */
static int multi(void)
{
	unsigned long bad = 0;
	/* carved out of one reservation: no range overlaps another */
	unsigned char *ar = mmap(NULL, 48 * PG, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *m = map_anon(ar, 16 * PG, MAP_FIXED);
	unsigned char *d = map_anon(ar + 24 * PG, 16 * PG, MAP_FIXED);

	if (ar == MAP_FAILED || m == MAP_FAILED || d == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < 16; k++) {
		fill(m, k, 21);
		fill(d, k, 23);
	}
	mprotect(m + 4 * PG, 4 * PG, PROT_READ); /* three mappings */
	squeeze();
	void *q = mremap(m, 16 * PG, 20 * PG, MREMAP_MAYMOVE);
	printf("grow across mappings: %s\n", result(q, m));
	q = mremap(m, 16 * PG, 12 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	printf("shrinking fixed move across mappings: %s\n", result(q, d));
	q = mremap(m, 16 * PG, 20 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	printf("growing fixed move across mappings: %s\n", result(q, d));
	bad += check_range("refused: source", m, 0, 16, 21);
	bad += check_range("refused: destination", d, 0, 16, 23);
	squeeze();
	q = mremap(m, 16 * PG, 16 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	printf("fixed move across mappings: %s\n", result(q, d));
	if (q == d) {
		bad += check_range("moved", d, 0, 16, 21);
		printf("old range: %s\n", sig_name(probe(m)));
		squeeze();
		bad += check_range("moved, after swapping", d, 0, 16, 21);
		for (size_t k = 0; k < 16; k++)
			if (k < 4 || k >= 8)
				fill(d, k, 22);
		squeeze();
		for (size_t k = 0; k < 16; k++)
			bad += !check("moved, rewritten", d, k, k < 4 || k >= 8 ? 22 : 21);
	}
	/* a hole in the range: what the destination holds there stays */
	unsigned char *g = map_anon(NULL, 8 * PG, 0), *e = map_anon(NULL, 8 * PG, 0);
	if (g == MAP_FAILED || e == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < 8; k++) {
		fill(g, k, 25);
		fill(e, k, 27);
	}
	munmap(g + 3 * PG, PG);
	squeeze();
	q = mremap(g, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, e);
	printf("fixed move over a hole: %s\n", result(q, e));
	if (q == e) {
		squeeze();
		for (size_t k = 0; k < 8; k++)
			bad += !check("over a hole", e, k, k == 3 ? 27 : 25);
		for (size_t k = 0; k < 8; k++)
			fill(e, k, 28);
		squeeze();
		bad += check_range("over a hole, rewritten", e, 0, 8, 28);
	}
	/* a range that starts in a hole is refused, the destination kept */
	munmap(g, 8 * PG);
	q = mremap(g + 3 * PG, 5 * PG, 5 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d);
	printf("fixed move from a hole: %s\n", result(q, d));
	bad += check_range("destination of a refused move", d, 0, 4, 22);
	printf("multi: %lu bad\n", bad);
	return bad ? 1 : 0;
}

/* Mappings the kernel keeps, put over paged memory. */
static int replace(void)
{
	unsigned long bad = 0;
	unsigned char *d = map_anon(NULL, 8 * PG, 0);
	unsigned char *l = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);

	if (d == MAP_FAILED || l == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	for (size_t k = 0; k < 8; k++)
		fill(d, k, 31);
	for (size_t k = 0; k < 4; k++)
		fill(l, k, 29);
	squeeze();
	void *q = mremap(l, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, d + 2 * PG);
	printf("growsdown mapping moved over paged memory: %s\n", result(q, d + 2 * PG));
	for (int round = 0; round < 2; round++) {
		squeeze();
		for (size_t k = 0; k < 8; k++)
			bad += k >= 2 && k < 6 ? !check("moved over", d + 2 * PG, k - 2, 29)
					       : !check("moved over", d, k, 31);
	}
	/* mapped over it: shared, and private MAP_GROWSDOWN */
	unsigned char *s = mmap(d, 2 * PG, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	unsigned char *t = mmap(d + 6 * PG, 2 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
	printf("shared mapped over paged memory: %s\n", result(s, d));
	printf("growsdown mapped over paged memory: %s\n", result(t, d + 6 * PG));
	bool z = zero_page(d) && zero_page(d + PG) && zero_page(d + 6 * PG) &&
		 zero_page(d + 7 * PG);
	printf("mapped over: zero %s\n", z ? "yes" : "no");
	for (size_t k = 0; k < 8; k++)
		if (k < 2 || k >= 6)
			fill(d, k, 33);
	for (int round = 0; round < 2; round++) {
		squeeze();
		for (size_t k = 0; k < 8; k++)
			bad += k >= 2 && k < 6 ? !check("mapped over", d + 2 * PG, k - 2, 29)
					       : !check("mapped over", d, k, 33);
	}
	munmap(d, 8 * PG);
	printf("replace: %lu bad\n", bad);
	return bad ? 1 : 0;
}

static int neighbour(size_t times)
{
	enum { M = 16 };
	size_t nlen = READ_PAGES * PG, mlen = M * PG;
	/* [reader's pages][hole for M][guard] and [guard][M's home][guard]:
	 * the guards (PROT_NONE) keep the home from merging with anything. */
	unsigned char *a = map_anon(NULL, nlen + mlen + PG, 0);
	unsigned char *home = map_anon(NULL, mlen + 2 * PG, 0);
	struct readers r = { .a = a };
	pthread_t t[READERS];
	unsigned long bad = 0;

	if (a == MAP_FAILED || home == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	unsigned char *hole = a + nlen, *m = home + PG;
	/* M is carved from the reader's mapping (their anonymous memory
	 * one), so that moving it back where it was merges the two. */
	for (size_t k = 0; k < READ_PAGES; k++)
		fill(a, k, 1);
	for (size_t k = 0; k < M; k++)
		fill(hole, k, 3);
	mprotect(hole + mlen, PG, PROT_NONE);
	mprotect(home, PG, PROT_NONE);
	mprotect(m + mlen, PG, PROT_NONE);
	if (mremap(hole, mlen, mlen, MREMAP_MAYMOVE | MREMAP_FIXED, m) != m) {
		perror("mremap");
		return 2;
	}
	for (int i = 0; i < READERS; i++)
		if (pthread_create(&t[i], NULL, read_pages, &r)) {
			perror("pthread_create");
			return 2;
		}
	for (size_t n = 0; n < times; n++) {
		if (mremap(m, mlen, mlen, MREMAP_MAYMOVE | MREMAP_FIXED, hole) != hole ||
		    mremap(hole, mlen, mlen, MREMAP_MAYMOVE | MREMAP_FIXED, m) != m) {
			perror("mremap");
			return 2;
		}
		bad += !check("neighbour (moved)", m, n % M, 3);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	bad += atomic_load(&r.bad);
	bad += check_range("neighbour", a, 0, READ_PAGES, 1);
	bad += check_range("neighbour (moved)", m, 0, M, 3);
	printf("neighbour: %zu moves beside %u pages read by %d threads, %lu bad\n",
	       times, READ_PAGES, READERS, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "move";
	size_t pages = argc > 2 ? strtoul(argv[2], NULL, 0) : 4096;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "move"))
		return move(pages);
	if (!strcmp(mode, "realloc"))
		return grow_realloc(pages);
	if (!strcmp(mode, "inplace"))
		return inplace();
	if (!strcmp(mode, "fixed"))
		return fixed();
	if (!strcmp(mode, "part"))
		return part();
	if (!strcmp(mode, "pagewise"))
		return pagewise();
	if (!strcmp(mode, "file"))
		return file();
	if (!strcmp(mode, "threads"))
		return threads(argc > 2 ? pages : 1024);
	if (!strcmp(mode, "fork"))
		return forked(argc > 2 ? pages : 2048);
	if (!strcmp(mode, "multi"))
		return multi();
	if (!strcmp(mode, "replace"))
		return replace();
	if (!strcmp(mode, "neighbour"))
		return neighbour(argc > 2 ? pages : 400);
	fprintf(stderr, "remap: unknown mode %s\n", mode);
	return 2;
}
