/* SPDX-License-Identifier: MIT */
/*
 * The library in a child of fork() (issue 9 point 8).  The child holds a
 * copy of the vm's memory but the parent's descriptors (userfaultfd,
 * eventfds, io_uring rings, swap file) and copies of locks the parent's
 * threads may hold: every lp_* call on the parent's vm or lp_proc there
 * returns -ECHILD, lp_vm_destroy() and lp_proc_free() touch nothing of the
 * parent's, and the parent goes on with every page intact.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "common.h"

#define PAGES 256
#define FRAMES 16
#define RES_MAX 32

static struct lp_vm *at_exit_vm;
static volatile int in_child;

/* LeakSanitizer's hook, called at exit: the child's copy of the parent's
 * vm is not freed there by design (its threads are not in the child, and
 * freeing would walk structures they may have been changing at the
 * fork), so a child's exit is no leak check. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return in_child;
}

static void destroy_at_exit(void)
{
	lp_vm_destroy(at_exit_vm);
}

static int fill_one(void *page, void *buf, void *aux)
{
	(void)page;
	(void)aux;
	memset(buf, 1, PG);
	return 0;
}

#define OWN_PAGES 64

/* What went wrong in the child's own vm: the call that failed, or the
 * first wrong page, the word that differs, what it held and whose that
 * content was (page and generation of the test pattern, or zero). */
enum { OWN_OK, OWN_CREATE, OWN_MAP, OWN_PAGE };
struct own_report {
	int stage;
	int page, word;
	int held_page, held_gen; /* -1: not a pattern word; -2: zero */
	int last_error, io_errors;
	int verify_checks, verify_mismatches; /* pages checked on return */
	uint32_t held_lo, held_hi;
};
#define OWN_REPORT_INTS ((int)(sizeof(struct own_report) / sizeof(int)))

static void own_bad_page(struct own_report *why, const uint64_t *o, size_t i,
			 int w)
{
	uint64_t v = o[i * (PG / 8) + (unsigned)w];
	why->stage = OWN_PAGE;
	why->page = (int)i;
	why->word = w;
	why->held_lo = (uint32_t)v;
	why->held_hi = (uint32_t)(v >> 32);
	why->held_page = v ? -1 : -2;
	for (uint64_t j = 0; v && j < OWN_PAGES; j++)
		for (uint64_t g = 0; g < 8; g++)
			if (v == stamp(j, g) + (uint64_t)w) {
				why->held_page = (int)j;
				why->held_gen = (int)g;
			}
}

/* Every public call on the parent's vm and its region, from the child:
 * each result, in order, into res[] (destroy last: 0 once it returned);
 * then, if own_vm, a vm of the child's own (its result 0 if not tried). */
static int child_calls(struct lp_vm *vm, uint64_t *p, int *res, bool own_vm)
{
	struct lp_stats st;
	struct lp_initializer init = { fill_one, NULL, 0 };
	void *q = NULL;
	int n = 0;

	res[n++] = lp_stats_get(vm, &st);
	res[n++] = lp_map_anon(vm, PG, PROT_READ | PROT_WRITE, &q);
	res[n++] = lp_map_lazy(vm, PG, PROT_READ, &init, &q);
	res[n++] = lp_map_file(vm, 0, 0, PG, PROT_READ, LP_MAP_PRIVATE, &q);
	res[n++] = lp_sync(vm, NULL, 0);
	res[n++] = lp_sync(vm, p, PG);
	res[n++] = lp_unmap(vm, p, PAGES * PG);
	lp_vm_destroy(vm);
	res[n++] = 0;
	/* A vm of the child's own works there.  What failed, if anything,
	 * goes into res[9..15] (struct own_report) for the parent to say. */
	struct own_report *why = (struct own_report *)&res[n + 1];
	memset(why, 0, sizeof(*why));
	struct lp_vm *own;
	struct lp_config c = cfg_frames(FRAMES);
	/* Verify mode: a page that comes back wrong is reported on stderr
	 * with its history (where it was, by which path it came back). */
	c.flags |= LP_CFG_VERIFY;
	uint64_t *o;
	int rc = own_vm ? lp_vm_create(&own, &c) : 0;
	if (!own_vm) {
		/* not tried */
	} else if (rc) {
		why->stage = OWN_CREATE;
	} else {
		rc = lp_map_anon(own, OWN_PAGES * PG, PROT_READ | PROT_WRITE, (void **)&o);
		if (rc)
			why->stage = OWN_MAP;
		for (size_t i = 0; !rc && i < OWN_PAGES; i++)
			fill_page(o, i, 5);
		for (size_t i = 0; !rc && i < OWN_PAGES; i++) {
			int w = check_page(o, i, 5);
			if (w != -1) {
				rc = -EIO;
				own_bad_page(why, o, i, w);
			}
		}
		struct lp_stats ost;
		if (lp_stats_get(own, &ost) == 0) {
			why->last_error = ost.last_error;
			why->io_errors = (int)ost.io_errors;
			why->verify_checks = (int)ost.verify_checks;
			why->verify_mismatches = (int)ost.verify_mismatches;
		}
		lp_vm_destroy(own);
	}
	res[n++] = rc;
	return n + OWN_REPORT_INTS;
}

/* Run child_calls in a child of fork(); the child ends by exit(), with
 * lp_vm_destroy registered by atexit() as an application would.  Returns
 * how many results were read into res[]. */
static int fork_and_call(struct lp_vm *vm, uint64_t *p, int *res, bool own_vm)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int r[RES_MAX];
		in_child = 1;
		/* A child that hangs must not outlive the test (and hold
		 * its output open for the harness to wait on). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		int n = child_calls(vm, p, r, own_vm);
		(void)!write(fds[1], r, (size_t)n * sizeof(int));
		at_exit_vm = vm;
		atexit(destroy_at_exit);
		exit(0);
	}
	close(fds[1]);
	int n = 0;
	ssize_t got;
	while ((got = read(fds[0], (char *)res + n, RES_MAX * sizeof(int) - (size_t)n)) > 0)
		n += (int)got;
	close(fds[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child ended with status %#x", status);
	return n / (int)sizeof(int);
}

static void expect_refused(const int *res, int n)
{
	static const char *const what[] = {
		"lp_stats_get", "lp_map_anon", "lp_map_lazy", "lp_map_file",
		"lp_sync(all)", "lp_sync(range)", "lp_unmap", "lp_vm_destroy",
	};
	cr_assert_eq(n, 9 + OWN_REPORT_INTS, "the child reported %d results", n);
	for (int i = 0; i < 7; i++)
		cr_expect_eq(res[i], -ECHILD, "%s in the child: %d (%s)", what[i],
			     res[i], strerror(-res[i]));
	struct own_report why;
	memcpy(&why, &res[9], sizeof(why));
	static const char *const stage[] = { "", "lp_vm_create", "lp_map_anon",
					     "a page read back wrong" };
	uint64_t v = (uint64_t)why.held_hi << 32 | why.held_lo;
	cr_expect_eq(res[8], 0,
		     "a vm of the child's own: %s: %s; page %d of %d, word %d "
		     "held %#llx (pattern of page %d gen %d; -1 none, -2 zero); "
		     "its last_error %d, io_errors %d, verify: %d of %d pages "
		     "came back changed (report on stderr)",
		     strerror(-res[8]), stage[why.stage < 4 ? why.stage : 0],
		     why.page, OWN_PAGES, why.word, (unsigned long long)v,
		     why.held_page, why.held_gen, why.last_error, why.io_errors,
		     why.verify_mismatches, why.verify_checks);
}

static void check_all(const uint64_t *p, uint64_t g, const char *when)
{
	size_t bad = 0, first = SIZE_MAX;
	for (size_t i = 0; i < PAGES; i++)
		if (check_page(p, i, g) != -1 && bad++ == 0)
			first = i;
	cr_assert_eq(bad, 0, "%s: %zu of %u pages wrong (first %zu)", when, bad,
		     PAGES, first);
}

/* The scenario: the parent's pages mostly on swap, a child that
 * ends by exit() with lp_vm_destroy registered by atexit().  It used to
 * unregister the parent's regions and stop its handlers (the parent then
 * read 252 of 256 pages as zero). */
Test(forkchild, exit_with_destroy_at_exit_leaves_the_parent_intact)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(FRAMES);
	VM_OR_SKIP(&vm, &c);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	for (size_t i = 0; i < PAGES; i++)
		fill_page(p, i, 1);
	int res[RES_MAX];
	int n = fork_and_call(vm, p, res, true);
	expect_refused(res, n);
	check_all(p, 1, "after the child");
	/* Still served: faults, evictions, a new region, statistics. */
	for (size_t i = 0; i < PAGES; i++)
		fill_page(p, i, 2);
	check_all(p, 2, "rewritten after the child");
	void *q;
	cr_assert_eq(lp_map_anon(vm, PG, PROT_READ | PROT_WRITE, &q), 0);
	struct lp_stats st;
	cr_assert_eq(lp_stats_get(vm, &st), 0);
	cr_assert_gt(st.faults[LP_FAULT_SWAPIN], 0);
	cr_assert_leq(st.peak_frames, FRAMES);
	lp_vm_destroy(vm);
}

/* Writers keep pages moving to and from swap while the parent forks over
 * and over: I/O is in flight at the forks.  No child and no parent may
 * hang, every child's call is refused, every page stays intact.
 *
 * The child also makes a vm of its own, which allocates, and so relies
 * on malloc being usable in the child of a multithreaded process, as
 * glibc's is (it takes its arena locks around fork()).  ASan's allocator
 * in GCC 12 does not: when a handler of the parent was allocating at the
 * fork, the child's first allocation of that size waits forever (seen in
 * CI, 1 run in ~200).  Under ASan the churned child leaves that part to
 * the test above, whose parent is idle at the fork. */
#ifdef __SANITIZE_ADDRESS__
#define OWN_VM_UNDER_CHURN false
#else
#define OWN_VM_UNDER_CHURN true
#endif
struct churn {
	struct lp_vm *vm;
	uint64_t *p;
	atomic_bool stop;
	atomic_uint_fast64_t rounds;
	int bad_word;      /* at a wrong page: the first wrong word, */
	uint64_t bad_held; /* what it held */
};

static void *churn_main(void *arg)
{
	struct churn *ch = arg;
	while (!atomic_load(&ch->stop)) {
		for (size_t i = 0; i < PAGES; i++)
			fill_page(ch->p, i, 1);
		for (size_t i = 0; i < PAGES; i++) {
			int w = check_page(ch->p, i, 1);
			if (w != -1) {
				ch->bad_word = w;
				ch->bad_held = ch->p[i * (PG / 8) + (unsigned)w];
				/* No more rounds: the forking loop must not
				 * wait for one. */
				atomic_store(&ch->stop, true);
				return (void *)(uintptr_t)(i + 1);
			}
		}
		atomic_fetch_add(&ch->rounds, 1);
	}
	return NULL;
}

Test(forkchild, fork_with_io_in_flight_hangs_nobody, .timeout = 120)
{
	struct lp_vm *vm;
	struct lp_config c = cfg_frames(FRAMES);
	VM_OR_SKIP(&vm, &c);
	struct churn ch = { .vm = vm };
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&ch.p), 0);
	atomic_init(&ch.stop, false);
	atomic_init(&ch.rounds, 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, churn_main, &ch), 0);
	struct lp_stats a, b;
	for (int k = 0; k < 20 && !atomic_load(&ch.stop); k++) {
		int res[RES_MAX];
		/* A round of the writers between forks: pages keep going
		 * out and coming back while each child lives. */
		uint64_t r0 = atomic_load(&ch.rounds);
		while (atomic_load(&ch.rounds) == r0 && !atomic_load(&ch.stop))
			sched_yield();
		cr_assert_eq(lp_stats_get(vm, &a), 0);
		int n = fork_and_call(vm, ch.p, res, OWN_VM_UNDER_CHURN);
		cr_assert_eq(lp_stats_get(vm, &b), 0);
		expect_refused(res, n);
	}
	atomic_store(&ch.stop, true);
	void *bad;
	pthread_join(t, &bad);
	cr_assert_null(bad, "page %zu wrong in the churn (round %llu): word %d held %#llx",
		       (size_t)(uintptr_t)bad - 1,
		       (unsigned long long)atomic_load(&ch.rounds), ch.bad_word,
		       (unsigned long long)ch.bad_held);
	check_all(ch.p, 1, "after 20 forks");
	cr_assert_gt(b.swap_outs, 0, "nothing went to swap: no I/O to be in flight");
	lp_vm_destroy(vm);
}

/* An lp_proc in a child: not the child's to wait for, signal or kill;
 * lp_proc_free() there must not kill the parent's program (as it kills a
 * running program in its owner). */
Test(forkchild, proc_calls_in_a_child_leave_the_program_alone, .timeout = 120)
{
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here");
	struct lp_proc *proc;
	struct lp_spawn_err err;
	char *argv[] = { (char *)"sleep", (char *)"120", NULL };
	int rc = lp_spawn(&proc, "/bin/sleep", argv, NULL, NULL, &err);
	cr_assert_eq(rc, 0, "lp_spawn: %s", err.msg);
	pid_t prog = lp_proc_pid(proc);

	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int r[4], status;
		struct lp_stats st;
		r[0] = lp_wait(proc, &status, WNOHANG);
		r[1] = lp_proc_stats(proc, &st);
		r[2] = lp_proc_kill(proc, SIGKILL);
		lp_proc_free(proc);
		r[3] = lp_proc_pid(NULL) == -1 ? 0 : -1;
		(void)!write(fds[1], r, sizeof r);
		_exit(0);
	}
	close(fds[1]);
	int r[4], status;
	cr_assert_eq(read(fds[0], r, sizeof r), (ssize_t)sizeof r);
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect_eq(r[0], -ECHILD, "lp_wait in the child: %d", r[0]);
	cr_expect_eq(r[1], -ECHILD, "lp_proc_stats in the child: %d", r[1]);
	cr_expect_eq(r[2], -ECHILD, "lp_proc_kill in the child: %d", r[2]);
	/* The program runs on, and is still ours to signal and wait for. */
	cr_assert_eq(kill(prog, 0), 0, "the child's lp_proc_free killed the program");
	cr_assert_eq(lp_wait(proc, &status, WNOHANG), 0, "the program ended");
	cr_assert_eq(lp_proc_kill(proc, SIGTERM), 0);
	do
		rc = lp_wait(proc, &status, 0);
	while (rc == -EINTR);
	cr_assert_eq(rc, 1);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
		  "status %#x", status);
	lp_proc_free(proc);
}
