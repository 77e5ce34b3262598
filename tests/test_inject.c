/* SPDX-License-Identifier: MIT */
/*
 * inject: pages of a forked child dropped by a call the child makes for
 * us (runtime/inject.h).  What a careless or hostile child can be doing at
 * that moment — computing, sleeping, blocked in a read, taking signals
 * with and without SA_RESTART, stopped by SIGSTOP, exiting, mapping over
 * the scratch area — must not change what it sees: only the pages named
 * are dropped (they read as zeros afterwards), every other byte and every
 * call it was in behave as natively.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"

#define PAGES 8
#define PG 4096

static struct inj_scratch sc;
static unsigned char *mem;
static int pipe_in[2], pipe_out[2];
static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void setup(void)
{
	if (!inject_supported())
		cr_skip_test("this kernel has no process_madvise(PIDFD_SELF_THREAD) "
			     "(6.15+) or ptrace is refused");
	cr_assert_eq(inject_scratch_new(&sc), 0);
	mem = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(mem != MAP_FAILED);
	cr_assert_eq(pipe(pipe_in), 0);
	cr_assert_eq(pipe(pipe_out), 0);
}

static void teardown(void)
{
	inject_scratch_free(&sc);
}

/* The child's report: which pages read as zeros, and how its call ended. */
struct report {
	unsigned zeros;      /* bit i: page i reads as zeros */
	long ret;            /* the blocking call's result */
	int err;
	int alarms;
	int intact;          /* every non-zero page holds its pattern */
};

static void child_report(long ret, int err)
{
	struct report r = { .ret = ret, .err = err, .alarms = alarms, .intact = 1 };
	for (int i = 0; i < PAGES; i++) {
		bool zero = true, pattern = true;
		for (int k = 0; k < PG; k++) {
			zero &= mem[i * PG + k] == 0;
			pattern &= mem[i * PG + k] == (unsigned char)(i + 1);
		}
		if (zero)
			r.zeros |= 1u << i;
		else if (!pattern)
			r.intact = 0;
	}
	(void)!write(pipe_out[1], &r, sizeof r);
	_exit(0);
}

enum what { COMPUTE, SLEEP, READ, READ_SIGNAL, READ_RESTART };

static pid_t start(enum what w)
{
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c)
		return c;
	for (int i = 0; i < PAGES; i++)
		memset(mem + i * PG, i + 1, PG);
	(void)!write(pipe_out[1], "r", 1);
	long ret = 0;
	int err = 0;
	char b;
	struct sigaction sa = { .sa_handler = on_alarm };
	switch (w) {
	case COMPUTE: {
		volatile unsigned long x = 0;
		/* Until told (a byte in the pipe, read without blocking). */
		(void)fcntl(pipe_in[0], F_SETFL, O_NONBLOCK);
		for (;;) {
			for (int i = 0; i < 1000000; i++)
				x += (unsigned long)i;
			if (read(pipe_in[0], &b, 1) == 1)
				break;
		}
		break;
	}
	case SLEEP: {
		struct timespec ts = { 0, 300 * 1000000L };
		ret = nanosleep(&ts, NULL);
		err = ret ? errno : 0;
		break;
	}
	case READ_SIGNAL:
	case READ_RESTART:
		sa.sa_flags = w == READ_RESTART ? SA_RESTART : 0;
		sigaction(SIGALRM, &sa, NULL);
		/* fall through */
	case READ:
		ret = read(pipe_in[0], &b, 1);
		err = ret < 0 ? errno : 0;
		break;
	}
	child_report(ret, err);
	return 0;
}

static struct report finish(pid_t c, bool poke)
{
	struct report r;
	if (poke)
		cr_assert_eq(write(pipe_in[1], "x", 1), 1);
	cr_assert_eq(read(pipe_out[0], &r, sizeof r), (ssize_t)sizeof r);
	int st;
	cr_assert_eq(waitpid(c, &st, 0), c);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	return r;
}

static int zap(pid_t c, unsigned mask)
{
	struct lp_inject in;
	struct iovec v[PAGES];
	size_t n = 0;

	inject_init(&in, &sc);
	cr_assert_eq(inject_attach_pid(&in, c), 0);
	for (int i = 0; i < PAGES; i++)
		if (mask & (1u << i))
			v[n++] = (struct iovec){ mem + i * PG, PG };
	int rc = inject_zap(&in, v, n, 1000, NULL);
	inject_release(&in, 1000);
	return rc;
}

static pid_t started(enum what w)
{
	pid_t c = start(w);
	char b;
	cr_assert_eq(read(pipe_out[0], &b, 1), 1);
	usleep(50000); /* in its call */
	return c;
}

TestSuite(inject, .init = setup, .fini = teardown, .timeout = 30);

Test(inject, drops_only_the_pages_named_from_a_computing_child)
{
	pid_t c = started(COMPUTE);
	cr_assert_eq(zap(c, 0x05), 0);
	struct report r = finish(c, true);
	cr_assert_eq(r.zeros, 0x05u);
	cr_assert(r.intact);
}

Test(inject, a_sleep_it_was_in_goes_on_to_its_end)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t c = started(SLEEP);
	cr_assert_eq(zap(c, 0x80), 0);
	struct report r = finish(c, false);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(r.ret, 0, "nanosleep: %ld errno %d", r.ret, r.err);
	cr_assert_eq(r.zeros, 0x80u);
	cr_assert(r.intact);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert(s >= 0.3, "slept %.3f s of 0.3", s);
}

Test(inject, a_blocked_read_is_restarted_not_failed)
{
	pid_t c = started(READ);
	cr_assert_eq(zap(c, 0x02), 0);
	struct report r = finish(c, true);
	cr_assert_eq(r.ret, 1, "read: %ld errno %d", r.ret, r.err);
	cr_assert_eq(r.zeros, 0x02u);
}

/* A signal caught without SA_RESTART after our visit fails the read with
 * EINTR, as natively; with SA_RESTART the read goes on. */
static void signal_after(enum what w)
{
	pid_t c = started(w);
	cr_assert_eq(zap(c, 0x01), 0);
	kill(c, SIGALRM);
	usleep(20000);
	struct report r = finish(c, w == READ_RESTART);
	cr_assert_eq(r.alarms, 1);
	cr_assert_eq(r.zeros, 0x01u);
	if (w == READ_RESTART)
		cr_assert_eq(r.ret, 1, "read: %ld errno %d", r.ret, r.err);
	else
		cr_assert(r.ret == -1 && r.err == EINTR, "read: %ld errno %d",
			  r.ret, r.err);
}

Test(inject, a_signal_without_sa_restart_afterwards_fails_the_read_as_natively)
{
	signal_after(READ_SIGNAL);
}

Test(inject, a_signal_with_sa_restart_afterwards_restarts_the_read)
{
	signal_after(READ_RESTART);
}

Test(inject, a_stopped_child_is_left_stopped_and_untouched)
{
	pid_t c = started(READ);
	kill(c, SIGSTOP);
	int st;
	cr_assert_eq(waitpid(c, &st, WUNTRACED), c);
	cr_assert(WIFSTOPPED(st));
	cr_assert_eq(zap(c, 0x01), -EAGAIN);
	kill(c, SIGCONT);
	struct report r = finish(c, true);
	cr_assert_eq(r.zeros, 0u);
	cr_assert(r.intact);
}

Test(inject, a_child_that_mapped_over_the_scratch_area_is_refused)
{
	pid_t c = fork();
	cr_assert(c >= 0);
	if (!c) {
		for (int i = 0; i < PAGES; i++)
			memset(mem + i * PG, i + 1, PG);
		/* Its own data where our scratch was: never written by us. */
		void *p = mmap((void *)sc.addr, 2 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		memset(p, 0x5a, 2 * PG);
		(void)!write(pipe_out[1], "r", 1);
		char b;
		(void)!read(pipe_in[0], &b, 1);
		const unsigned char *q = p;
		for (int k = 0; k < 2 * PG; k++)
			if (q[k] != 0x5a)
				_exit(3);
		child_report(0, 0);
	}
	char b;
	cr_assert_eq(read(pipe_out[0], &b, 1), 1);
	usleep(20000);
	cr_assert_eq(zap(c, 0x01), -ENOTSUP);
	struct report r = finish(c, true);
	cr_assert_eq(r.zeros, 0u);
}

Test(inject, a_child_gone_is_reported_and_its_exit_stays_ours)
{
	pid_t c = fork();
	cr_assert(c >= 0);
	if (!c)
		_exit(7);
	/* Gone, not reaped (a fixed sleep was too short on a loaded CI). */
	siginfo_t si;
	cr_assert_eq(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT), 0);
	cr_assert_eq(zap(c, 0x01), -ESRCH);
	int st;
	cr_assert_eq(waitpid(c, &st, 0), c);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}
