/* SPDX-License-Identifier: MIT */
/*
 * Soak: races between faults, evictions, unmaps, remaps and fork, for
 * LAZYPAGE_SOAK_SECONDS (default 20).
 *
 * Library part: one vm with a budget of 64 frames and 3 fault handlers,
 * SLOTS regions of 1 MiB each (16 times the budget in all).  Every page
 * carries {magic of the region's incarnation, page index, sequence number,
 * checksum, payload}.  WORKERS threads do random read-modify-writes, each
 * checking the page it touches against the sequence number it must hold
 * (per-page locks, so the expected value is exact).  Meanwhile:
 *   - a churn thread takes one region at a time away from the workers (a
 *     writer-preferring rwlock per region) and unmaps it — whole, or in two
 *     halves (a split), after a full check or straight away while the
 *     evictor is writing its pages out — and maps a fresh one in its slot:
 *     anonymous, a shared file (write-back checked with pread() after
 *     lp_unmap() and after lp_sync()) or a private file (the file must stay
 *     untouched).  Faults and evictions of the other regions go on;
 *   - a fork thread forks the process: regions are MADV_DONTFORK, so the
 *     child touching any of them must get SIGSEGV, never data;
 *   - a monitor samples the resident frames: never above the budget.
 *
 * vmrun part, at the same time: tests/progs/soakfork (16 MiB of checked
 * pages, two writer threads) under a 2 MiB cap, forking every 50 ms with
 * every page lock held; each child checks its whole snapshot.
 *
 *   LAZYPAGE_SOAK_SECONDS=600 meson test -C build --suite soak --timeout-multiplier 0
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "common.h"
#include "soakpage.h"

#ifdef SOAK_IO_FAULTS
#include "io.h"
#endif

#define SLOTS 4
#define RPAGES 256             /* 1 MiB per region */
#define BUDGET 64              /* frames */
#define HANDLERS 3
#define WORKERS 6
#define STRIPES 32
#define GUEST_CAP (2u << 20)
#define MAGIC 0x4c50534f414b0000ull

enum kind { K_ANON, K_SHARED, K_PRIVATE, K_KINDS };
static const char *const kind_name[] = { "anon", "shared", "private" };

struct slot {
	pthread_rwlock_t lock;          /* workers read, churn writes */
	pthread_mutex_t stripe[STRIPES];
	enum kind kind;
	struct page *p;
	uint64_t magic;                 /* this incarnation's */
	uint64_t expect[RPAGES];        /* sequence number of each page */
	int fd;                         /* the file of a file region */
	char path[32];                  /* its name, removed at unmap */
};

static struct {
	struct lp_vm *vm;
	struct slot slot[SLOTS];
	atomic_bool stop;
	atomic_ulong ops, pages, mismatches, forks, fork_bad;
	atomic_ulong remaps[K_KINDS], splits, syncs, hot_unmaps;
	atomic_ulong max_resident, samples;
	atomic_ulong incarnation;
	uint64_t seed;
} S;

/* Criterion's assertions belong to the test's thread: elsewhere a failure
 * is reported and aborts (a core to look at). */
#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "soak: FAILED: " __VA_ARGS__);        \
			fputc('\n', stderr);                                  \
			abort();                                              \
		}                                                             \
	} while (0)

#define CHECK_EQ(a, b, ...) CHECK((a) == (b), __VA_ARGS__)

static bool all_zero(const struct page *p)
{
	const uint64_t *q = (const uint64_t *)p;
	for (unsigned w = 0; w < PG / 8; w++)
		if (q[w])
			return false;
	return true;
}

/* Page i of slot s, as seen at q, holds what it must.  Sequence 0 is the
 * page as mapped: zero for anonymous memory, the formatted page of the
 * file otherwise. */
static bool page_ok(const struct slot *s, const struct page *q, uint64_t i,
		    uint64_t seq)
{
	if (seq == 0 && s->kind == K_ANON)
		return all_zero(q);
	return q->magic == s->magic && q->idx == i && q->seq == seq &&
	       q->sum == checksum(q);
}

static void mismatch(const struct slot *s, const struct page *q, uint64_t i,
		     uint64_t seq, const char *where)
{
	unsigned long n = atomic_fetch_add(&S.mismatches, 1);
	if (n < 20)
		fprintf(stderr,
			"soak: MISMATCH (%s) slot %ld %s page %lu at %p: want seq %lu "
			"magic %#lx; have magic %#lx idx %lu seq %lu sum %s%s\n",
			where, (long)(s - S.slot), kind_name[s->kind], (unsigned long)i,
			(const void *)q, (unsigned long)seq, (unsigned long)s->magic,
			(unsigned long)q->magic, (unsigned long)q->idx,
			(unsigned long)q->seq, q->sum == checksum(q) ? "ok" : "BAD",
			all_zero(q) ? " (all zero)" : "");
}

static void format_page(struct page *q, uint64_t magic, uint64_t i, uint64_t seq,
			uint64_t *x)
{
	q->magic = magic;
	q->idx = i;
	q->seq = seq;
	for (unsigned k = 0; k < 8; k++)
		q->payload[xorshift(x) % WORDS] = xorshift(x);
	q->sum = checksum(q);
}

/* ---- regions ----------------------------------------------------------- */

/* A fresh region in slot s (its lock held for writing, or no thread yet). */
static void map_slot(struct slot *s, enum kind k, uint64_t *x)
{
	s->kind = k;
	s->magic = MAGIC | (atomic_fetch_add(&S.incarnation, 1) & 0xffff);
	memset(s->expect, 0, sizeof s->expect);
	if (k == K_ANON) {
		int rc = lp_map_anon(S.vm, RPAGES * PG, PROT_READ | PROT_WRITE,
				     (void **)&s->p);
		CHECK_EQ(rc, 0, "lp_map_anon: %s", strerror(-rc));
	} else {
		/* a formatted file, sequence 0 on every page */
		/* linked while mapped: the swap file is the only unlinked
		 * file the runtime writes (test-soak-faults fails its writes) */
		snprintf(s->path, sizeof s->path, "/tmp/lp-soak-XXXXXX");
		s->fd = mkstemp(s->path);
		CHECK(s->fd >= 0, "mkstemp: %s", strerror(errno));
		struct page *buf = malloc(PG);
		memset(buf, 0, PG);
		for (uint64_t i = 0; i < RPAGES; i++) {
			format_page(buf, s->magic, i, 0, x);
			CHECK_EQ(pwrite(s->fd, buf, PG, (off_t)(i * PG)), (ssize_t)PG, "pwrite: %s", strerror(errno));
		}
		free(buf);
		int rc = lp_map_file(S.vm, s->fd, 0, RPAGES * PG, PROT_READ | PROT_WRITE,
				     k == K_SHARED ? LP_MAP_SHARED : LP_MAP_PRIVATE,
				     (void **)&s->p);
		CHECK_EQ(rc, 0, "lp_map_file: %s", strerror(-rc));
	}
	atomic_fetch_add(&S.remaps[k], 1);
}

/* The file of slot s as it must be: the latest sequence of every page for
 * a shared file (after lp_sync or lp_unmap), sequence 0 for a private one. */
static void check_file(struct slot *s, const char *where)
{
	struct page *q = malloc(PG);
	for (uint64_t i = 0; i < RPAGES; i++) {
		CHECK_EQ(pread(s->fd, q, PG, (off_t)(i * PG)), (ssize_t)PG, "pread: %s", strerror(errno));
		uint64_t seq = s->kind == K_SHARED ? s->expect[i] : 0;
		if (!page_ok(s, q, i, seq))
			mismatch(s, q, i, seq, where);
	}
	atomic_fetch_add(&S.pages, RPAGES);
	free(q);
}

/* Every page of slot s through the region (lock held for writing). */
static void check_region(struct slot *s, const char *where)
{
	for (uint64_t i = 0; i < RPAGES; i++)
		if (!page_ok(s, &s->p[i], i, s->expect[i]))
			mismatch(s, &s->p[i], i, s->expect[i], where);
	atomic_fetch_add(&S.pages, RPAGES);
}

static void unmap_slot(struct slot *s, bool split)
{
	int rc;
	if (split) {
		rc = lp_unmap(S.vm, s->p + RPAGES / 2, RPAGES / 2 * PG);
		CHECK_EQ(rc, 0, "lp_unmap (upper half): %s", strerror(-rc));
		rc = lp_unmap(S.vm, s->p, RPAGES / 2 * PG);
		CHECK_EQ(rc, 0, "lp_unmap (lower half): %s", strerror(-rc));
		atomic_fetch_add(&S.splits, 1);
	} else {
		rc = lp_unmap(S.vm, s->p, RPAGES * PG);
		CHECK_EQ(rc, 0, "lp_unmap: %s", strerror(-rc));
	}
	s->p = NULL;
	if (s->kind != K_ANON) {
		check_file(s, "file after lp_unmap");
		close(s->fd);
		unlink(s->path);
		s->fd = -1;
	}
}

/* ---- threads ----------------------------------------------------------- */

static void *worker(void *arg)
{
	uint64_t x = S.seed ^ (0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1));

	while (!atomic_load(&S.stop)) {
		struct slot *s = &S.slot[xorshift(&x) % SLOTS];
		pthread_rwlock_rdlock(&s->lock);
		for (int k = 0; k < 32; k++) {
			uint64_t i = xorshift(&x) % RPAGES;
			pthread_mutex_t *m = &s->stripe[i % STRIPES];
			pthread_mutex_lock(m);
			struct page *q = &s->p[i];
			if (!page_ok(s, q, i, s->expect[i]))
				mismatch(s, q, i, s->expect[i], "worker");
			format_page(q, s->magic, i, ++s->expect[i], &x);
			pthread_mutex_unlock(m);
			atomic_fetch_add(&S.ops, 1);
		}
		pthread_rwlock_unlock(&s->lock);
	}
	return NULL;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void *churn(void *arg)
{
	(void)arg;
	uint64_t x = S.seed ^ 0xc0ffee;

	while (!atomic_load(&S.stop)) {
		nap_ms(10 + (unsigned)(xorshift(&x) % 40));
		struct slot *s = &S.slot[xorshift(&x) % SLOTS];
		pthread_rwlock_wrlock(&s->lock);
		switch (xorshift(&x) % 5) {
		case 0: /* check, then unmap */
			check_region(s, "before lp_unmap");
			unmap_slot(s, false);
			break;
		case 1: /* unmap at once, pages in flight to swap or file */
			unmap_slot(s, false);
			atomic_fetch_add(&S.hot_unmaps, 1);
			break;
		case 2: /* two halves: the region is split first */
			unmap_slot(s, true);
			atomic_fetch_add(&S.hot_unmaps, 1);
			break;
		default: /* a shared file is synced and read back; others checked */
			if (s->kind == K_SHARED) {
				int rc = lp_sync(S.vm, s->p, RPAGES * PG);
				CHECK_EQ(rc, 0, "lp_sync: %s", strerror(-rc));
				check_file(s, "file after lp_sync");
				atomic_fetch_add(&S.syncs, 1);
			} else {
				check_region(s, "region sweep");
			}
			break;
		}
		if (!s->p)
			map_slot(s, (enum kind)(xorshift(&x) % K_KINDS), &x);
		pthread_rwlock_unlock(&s->lock);
	}
	return NULL;
}

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

/* In a forked child: each region must be absent (SIGSEGV), never data. */
static int child_checks_regions(void)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_segv;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	for (int k = 0; k < SLOTS; k++) {
		volatile const uint64_t *q = (volatile const uint64_t *)S.slot[k].p;
		if (!q)
			continue;
		if (!sigsetjmp(segv_jmp, 1)) {
			(void)q[0];
			return 1; /* read something */
		}
	}
	return 0;
}

static void *forker(void *arg)
{
	(void)arg;
	while (!atomic_load(&S.stop)) {
		nap_ms(100);
		/* no region goes away across the fork (evictions and faults go on) */
		for (int k = 0; k < SLOTS; k++)
			pthread_rwlock_rdlock(&S.slot[k].lock);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_checks_regions());
		for (int k = 0; k < SLOTS; k++)
			pthread_rwlock_unlock(&S.slot[k].lock);
		CHECK(pid > 0, "fork: %s", strerror(errno));
		int st;
		CHECK_EQ(waitpid(pid, &st, 0), pid, "waitpid: %s", strerror(errno));
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			atomic_fetch_add(&S.fork_bad, 1);
		atomic_fetch_add(&S.forks, 1);
	}
	return NULL;
}

static double now_s(void);

static void *monitor(void *arg)
{
	(void)arg;
	unsigned long last_ops = 0;
	double last_progress = now_s();

	while (!atomic_load(&S.stop)) {
		struct lp_stats st;
		if (lp_stats_get(S.vm, &st) == 0) {
			if (st.resident_frames > atomic_load(&S.max_resident))
				atomic_store(&S.max_resident, st.resident_frames);
			atomic_fetch_add(&S.samples, 1);
		}
		nap_ms(5);
		/* a hang is a finding: no progress for 60 s, abort for a core */
		unsigned long ops = atomic_load(&S.ops);
		if (ops != last_ops) {
			last_ops = ops;
			last_progress = now_s();
		} else if (now_s() - last_progress > 60) {
			fprintf(stderr, "soak: no progress for 60 s, aborting\n");
			lp_stats_print(&st, stderr, 0);
			abort();
		}
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double soak_seconds(void)
{
	const char *env = getenv("LAZYPAGE_SOAK_SECONDS");
	double secs = env ? atof(env) : 20;
	return secs > 0 ? secs : 20;
}

static void soak_seed(double secs, const char *what)
{
	const char *env = getenv("LAZYPAGE_SOAK_SEED");
	S.seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	fprintf(stderr, "%s: %.0f s, seed %#lx (LAZYPAGE_SOAK_SEED)\n", what, secs,
		(unsigned long)S.seed);
}

static pthread_t soak_th[WORKERS + 3];

/* The regions and the threads on S.vm. */
static void soak_start(void)
{
	uint64_t x = S.seed | 1;
	for (int k = 0; k < SLOTS; k++) {
		struct slot *s = &S.slot[k];
		pthread_rwlockattr_t a;
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&s->lock, &a);
		pthread_rwlockattr_destroy(&a);
		for (int m = 0; m < STRIPES; m++)
			pthread_mutex_init(&s->stripe[m], NULL);
		s->fd = -1;
		map_slot(s, (enum kind)(k % K_KINDS), &x);
	}
	pthread_create(&soak_th[0], NULL, monitor, NULL);
	pthread_create(&soak_th[1], NULL, churn, NULL);
	pthread_create(&soak_th[2], NULL, forker, NULL);
	for (uintptr_t i = 0; i < WORKERS; i++)
		pthread_create(&soak_th[3 + i], NULL, worker, (void *)i);
}

static void soak_join(void)
{
	atomic_store(&S.stop, true);
	for (int i = 0; i < WORKERS + 3; i++)
		pthread_join(soak_th[i], NULL);
}

/* Every page of every region once more, each region unmapped and each
 * file read back. */
static void soak_sweep(void)
{
	for (int k = 0; k < SLOTS; k++) {
		check_region(&S.slot[k], "final sweep");
		unmap_slot(&S.slot[k], false);
	}
}

static void print_library(const char *what, const struct lp_stats *st)
{
	fprintf(stderr,
		"%s: library: %lu ops, %lu pages checked, %lu forks (%lu saw a "
		"region), remaps anon %lu shared %lu private %lu, split unmaps %lu, "
		"unmaps under eviction %lu, syncs %lu, swap-ins %lu, evictions %lu, "
		"io_errors %lu, last_error %d, peak %lu (sampled max %lu in %lu "
		"samples)/%lu frames\n",
		what, atomic_load(&S.ops), atomic_load(&S.pages), atomic_load(&S.forks),
		atomic_load(&S.fork_bad), atomic_load(&S.remaps[K_ANON]),
		atomic_load(&S.remaps[K_SHARED]), atomic_load(&S.remaps[K_PRIVATE]),
		atomic_load(&S.splits), atomic_load(&S.hot_unmaps),
		atomic_load(&S.syncs), (unsigned long)st->faults[LP_FAULT_SWAPIN],
		(unsigned long)st->evictions, (unsigned long)st->io_errors,
		st->last_error, (unsigned long)st->peak_frames,
		atomic_load(&S.max_resident), atomic_load(&S.samples),
		(unsigned long)st->budget_frames);
	if (st->tier_stores || st->tier_rejects)
		fprintf(stderr,
			"%s: tier: %lu stored, %lu refused, %lu read back, %lu "
			"written on, peak %lu frames\n",
			what, (unsigned long)st->tier_stores,
			(unsigned long)st->tier_rejects,
			(unsigned long)st->tier_loads,
			(unsigned long)st->tier_writebacks,
			(unsigned long)st->tier_peak_frames);
}

#ifdef SOAKFORK
Test(soak, races_unmap_remap_fork_under_eviction, .timeout = 0)
{
	double secs = soak_seconds();
	soak_seed(secs, "soak");
	struct lp_config c = cfg_frames(BUDGET);
	c.threads = HANDLERS;
	VM_OR_SKIP(&S.vm, &c);

	/* the guest: fork during eviction under vmrun */
	char out[] = "/tmp/lp-soakfork-XXXXXX";
	int ofd = mkstemp(out);
	cr_assert(ofd >= 0);
	close(ofd);
	char secs_arg[32];
	snprintf(secs_arg, sizeof secs_arg, "%.3f", secs);
	char *gargv[] = { (char *)SOAKFORK, secs_arg, out, NULL };
	/* Why the guest's tree went beyond its cap, if it did (the pager
	 * inherits our environment). */
	char trace[] = "/tmp/lp-soaktrace-XXXXXX";
	int tfd = mkstemp(trace);
	cr_assert(tfd >= 0);
	close(tfd);
	setenv("LAZYPAGE_BUDGET_TRACE", trace, 1);
	struct lp_config gc = cfg_frames(GUEST_CAP / PG);
	struct lp_proc *guest;
	struct lp_spawn_err err;
	int rc = lp_spawn(&guest, SOAKFORK, gargv, NULL, &gc, &err);
	unsetenv("LAZYPAGE_BUDGET_TRACE");
	cr_assert_eq(rc, 0, "lp_spawn: %s (%s)", strerror(-rc), err.msg);

	double t0 = now_s();
	soak_start();
	while (now_s() - t0 < secs)
		nap_ms(100);
	soak_join();
	soak_sweep();
	double took = now_s() - t0;
	struct lp_stats st = stats_of(S.vm);

	int gst;
	cr_assert_eq(lp_wait(guest, &gst, 0), 1);
	struct lp_stats gs;
	cr_assert_eq(lp_proc_stats(guest, &gs), 0);
	lp_proc_free(guest);
	unsigned long gops = 0, gpages = 0, gforks = 0, gbad = 0, gfinal = 0;
	int gfailed = 0;
	FILE *f = fopen(out, "r");
	int got = f ? fscanf(f, "ops %lu pages %lu forks %lu bad %lu failed_children %d final_bad %lu",
			     &gops, &gpages, &gforks, &gbad, &gfailed, &gfinal)
		    : 0;
	if (f)
		fclose(f);
	unlink(out);
	char why[1024] = "";
	f = fopen(trace, "r");
	if (f) {
		why[fread(why, 1, sizeof why - 1, f)] = 0;
		fclose(f);
	}
	unlink(trace);

	unsigned long ops = atomic_load(&S.ops), pages = atomic_load(&S.pages);
	unsigned long bad = atomic_load(&S.mismatches) + atomic_load(&S.fork_bad) +
			    gbad + (unsigned long)gfailed + gfinal;
	print_library("soak", &st);
	fprintf(stderr,
		"soak: vmrun guest (16 MiB under %u KiB): status %d, %lu ops, %lu pages "
		"checked, %lu forks (%d children failed), %lu bad, %lu bad at the end, "
		"swap-ins %lu, evictions %lu, peak %lu/%lu frames\n",
		GUEST_CAP >> 10, gst, gops, gpages, gforks, gfailed, gbad, gfinal,
		(unsigned long)gs.faults[LP_FAULT_SWAPIN], (unsigned long)gs.evictions,
		(unsigned long)gs.peak_frames, (unsigned long)gs.budget_frames);
	fprintf(stderr,
		"soak: %.0f s, %lu ops verified, %lu pages verified, %lu forks, "
		"%lu mismatches, swap-ins %lu, evictions %lu\n",
		took, ops + gops, pages + gpages, atomic_load(&S.forks) + gforks, bad,
		(unsigned long)(st.faults[LP_FAULT_SWAPIN] + gs.faults[LP_FAULT_SWAPIN]),
		(unsigned long)(st.evictions + gs.evictions));

	const char *tier = getenv("LAZYPAGE_TIER");
	if (tier && strcmp(tier, "none")) {
		/* soak with the tier: it must have been used both ways */
		cr_assert_gt(st.tier_stores, 0, "the tier stored nothing");
		cr_assert_gt(st.tier_loads, 0, "nothing came back from the tier");
	}
	if (getenv("LAZYPAGE_VERIFY")) {
		/* soak-verify: every page that came back was checked. */
		fprintf(stderr, "soak: verify: library %lu pages checked, %lu "
			"mismatches; guest %lu checked, %lu mismatches\n",
			(unsigned long)st.verify_checks,
			(unsigned long)st.verify_mismatches,
			(unsigned long)gs.verify_checks,
			(unsigned long)gs.verify_mismatches);
		cr_assert_eq(st.verify_mismatches + gs.verify_mismatches, 0);
		cr_assert_gt(st.verify_checks, 0);
		cr_assert_gt(gs.verify_checks, 0);
	}
	cr_assert_eq(atomic_load(&S.mismatches), 0, "%lu pages wrong",
		     atomic_load(&S.mismatches));
	cr_assert_eq(atomic_load(&S.fork_bad), 0,
		     "%lu forked children read a region", atomic_load(&S.fork_bad));
	cr_assert_eq(got, 6, "the guest wrote no counts (status %#x)", gst);
	cr_assert(WIFEXITED(gst) && WEXITSTATUS(gst) == 0,
		  "the guest ended with status %#x", gst);
	cr_assert_eq(gbad + gfinal, 0, "guest: %lu pages wrong", gbad + gfinal);
	cr_assert_eq(gfailed, 0, "guest: %d children saw a wrong snapshot", gfailed);
	cr_assert_gt(gforks, 0);
	cr_assert_gt(atomic_load(&S.forks), 0);
	cr_assert_eq(st.io_errors, 0);
	cr_assert_gt(st.evictions, 0);
	cr_assert_leq(st.peak_frames, BUDGET, "peak %lu frames, budget %d",
		      (unsigned long)st.peak_frames, BUDGET);
	cr_assert_leq(atomic_load(&S.max_resident), BUDGET);
	/* (The guest and its forked child, one at a time, under one cap:
	 * each may pass it by BUDGET_MIN_FRAMES, 32, while it holds fewer:
	 * README, execve.) */
	cr_assert_leq(gs.peak_frames, GUEST_CAP / PG + 2 * 32,
		      "guest peak %lu frames, cap %u; the first steps beyond "
		      "(LAZYPAGE_BUDGET_TRACE):\n%s",
		      (unsigned long)gs.peak_frames, GUEST_CAP / PG, why);
	lp_vm_destroy(S.vm);
}
#endif

#ifdef SOAK_IO_FAULTS
/* One swap write in five fails with EIO (the swap file is the only
 * unlinked file written: region files stay linked while mapped). */
static atomic_bool inj_on;
static atomic_ulong inj_calls, inj_done;

static long swap_eio(void *ctx, enum lp_io_op op, int fd, uint64_t off, size_t len)
{
	(void)ctx;
	(void)off;
	(void)len;
	struct stat st;
	if (!atomic_load(&inj_on) || op != LP_IO_WRITE || fstat(fd, &st) ||
	    st.st_nlink != 0)
		return 0;
	if (atomic_fetch_add(&inj_calls, 1) % 5)
		return 0;
	atomic_fetch_add(&inj_done, 1);
	return -EIO;
}

/* The same races while one swap write in five fails: no page may be lost,
 * and the budget holds — writes that fail among good ones are retried, they
 * do not let faults beyond the budget (README, "Errors": only when nothing
 * can be evicted).  (It rose to the whole working set, 1024/64 frames,
 * before evict.c told a failing write from writes that keep failing.) */
Test(soak, races_while_swap_writes_fail, .timeout = 0)
{
	double secs = soak_seconds() / 4;
	soak_seed(secs, "soak-faults");
	struct lp_config c = cfg_frames(BUDGET);
	c.threads = HANDLERS;
	VM_OR_SKIP(&S.vm, &c);
	io_set_fault_hook(swap_eio, NULL);
	atomic_store(&inj_on, true);

	double t0 = now_s();
	soak_start();
	while (now_s() - t0 < secs)
		nap_ms(100);
	atomic_store(&inj_on, false);
	soak_join();
	double took = now_s() - t0;

	/* back within the budget once writes work, regions still mapped */
	struct lp_stats st = stats_of(S.vm);
	uint64_t peak_resident = st.resident_frames;
	for (int i = 0; i < 1000 && st.resident_frames > BUDGET; i++) {
		nap_ms(10);
		st = stats_of(S.vm);
	}
	uint64_t after = st.resident_frames;
	soak_sweep();
	st = stats_of(S.vm);
	print_library("soak-faults", &st);
	fprintf(stderr,
		"soak-faults: %.0f s, %lu ops verified, %lu pages verified, %lu forks, "
		"%lu mismatches, %lu swap writes failed (EIO, 1 in 5), io_errors %lu, "
		"last_error %d, peak %lu/%d frames, resident %lu at the end of the "
		"fault, %lu once writes work\n",
		took, atomic_load(&S.ops), atomic_load(&S.pages), atomic_load(&S.forks),
		atomic_load(&S.mismatches) + atomic_load(&S.fork_bad),
		atomic_load(&inj_done), (unsigned long)st.io_errors, st.last_error,
		(unsigned long)st.peak_frames, BUDGET, (unsigned long)peak_resident,
		(unsigned long)after);
	cr_assert_eq(atomic_load(&S.mismatches), 0, "%lu pages wrong",
		     atomic_load(&S.mismatches));
	cr_assert_eq(atomic_load(&S.fork_bad), 0);
	cr_assert_gt(atomic_load(&inj_done), 0, "nothing injected");
	cr_assert_gt(st.io_errors, 0, "failed writes not counted");
	cr_assert_eq(st.last_error, -EIO);
	cr_assert_leq(st.peak_frames, BUDGET, "peak %lu frames, budget %d",
		      (unsigned long)st.peak_frames, BUDGET);
	cr_assert_leq(atomic_load(&S.max_resident), BUDGET);
	cr_assert_leq(after, BUDGET,
		      "%lu frames resident 10 s after the fault, budget %d",
		      (unsigned long)after, BUDGET);
	io_set_fault_hook(NULL, NULL);
	lp_vm_destroy(S.vm);
}
#endif
