/* SPDX-License-Identifier: MIT */
/*
 * vmrun: run an unmodified program with its memory paged by lazypage.
 * A thin front end over lp_spawn()/lp_wait(): options, errors, the exit
 * status, signals, and the statistics at the end.
 */
#include <errno.h>
#include <lazypage/lazypage.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmrun_opts.h"

static volatile sig_atomic_t pending[65];

/* A signal sent to vmrun itself (kill, not the terminal) goes on to the
 * program; the terminal's reach the program directly (same group). */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (si->si_code == SI_USER || si->si_code == SI_QUEUE)
		pending[sig] = 1;
}

static int spawn_status(int kind)
{
	switch (kind) {
	case LP_SPAWN_NOT_FOUND: return EX_NOTFOUND;
	case LP_SPAWN_NO_ACCESS: return EX_NOEXEC;
	case LP_SPAWN_NOT_ELF: return EX_NOTELF;
	case LP_SPAWN_BAD_ARCH: return EX_ARCH;
	case LP_SPAWN_CORRUPT: return EX_CORRUPT_;
	case LP_SPAWN_NO_INTERP: return EX_NOINTERP;
	case LP_SPAWN_CAP: return EX_CAP;
	case LP_SPAWN_UNSUPPORTED: return EX_NOUFFD;
	case LP_SPAWN_SWAP: return EX_SWAP;
	case LP_SPAWN_CONFIG: return EX_USAGE_;
	default: return EX_INTERNAL;
	}
}

static void report(struct lp_proc *p, int stats, const char *json)
{
	struct lp_stats st;

	if ((!stats && !json) || lp_proc_stats(p, &st))
		return;
	if (stats)
		lp_stats_print(&st, stderr, 0);
	if (json) {
		FILE *f = fopen(json, "w");
		if (!f || lp_stats_print(&st, f, 1) || fclose(f)) {
			fprintf(stderr, "vmrun: %s: %s\n", json, strerror(errno));
			if (f)
				fclose(f);
		}
	}
}

int main(int argc, char **argv)
{
	struct vmrun_opts o;
	int ex = vmrun_check_privilege(stderr, getauxval(AT_SECURE), getuid(),
				       geteuid(), getgid(), getegid());

	if (ex < 0)
		ex = vmrun_parse(argc, argv, &o, stdout, stderr);
	if (ex >= 0)
		return ex;
	struct lp_config cfg = o.cfg;
	const char *json = o.json;
	int stats = o.stats;

	/* Signals sent to vmrun go to the program; those it starts with
	 * ignored stay ignored (for it and for the program). */
	static const int fwd[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1,
				   SIGUSR2, SIGALRM, SIGWINCH, SIGCONT };
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
		struct sigaction old, sa;
		if (sigaction(fwd[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_signal;
		sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: lp_wait returns */
		sigaction(fwd[i], &sa, NULL);
	}

	struct lp_proc *p;
	struct lp_spawn_err err;
	int rc = lp_spawn(&p, argv[o.prog], argv + o.prog, NULL, &cfg, &err);
	if (rc) {
		fprintf(stderr, "vmrun: %s\n", err.msg[0] ? err.msg : strerror(-rc));
		return spawn_status(err.kind);
	}

	int status = 0;
	for (;;) {
		rc = lp_wait(p, &status, WUNTRACED | WCONTINUED);
		for (int s = 1; s <= 64; s++) {
			if (pending[s]) {
				pending[s] = 0;
				lp_proc_kill(p, s);
			}
		}
		if (rc == -EINTR || (rc == 1 && WIFCONTINUED(status)))
			continue;
		if (rc == 1 && WIFSTOPPED(status)) {
			/* Stopped (^Z): so are we, for the shell to see. */
			raise(SIGSTOP);
			continue;
		}
		break;
	}
	if (rc != 1) {
		fprintf(stderr, "vmrun: lost the program: %s\n",
			rc == -EPIPE ? "the pager died" : strerror(-rc));
		lp_proc_free(p);
		return EX_INTERNAL;
	}
	report(p, stats, json);
	lp_proc_free(p);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	/* Died of a signal: die of it too, so that our parent sees the same
	 * (the shell prints it and sets $? to 128 + N), without a core of
	 * our own. */
	int sig = WTERMSIG(status);
	struct rlimit none = { 0, 0 };
	setrlimit(RLIMIT_CORE, &none);
	signal(sig, SIG_DFL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	raise(sig);
	return 128 + sig;
}
