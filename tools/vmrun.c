/* SPDX-License-Identifier: MIT */
/*
 * vmrun: run an unmodified program with its memory paged by lazypage.
 * A thin front end over lp_spawn()/lp_wait(): options, errors, the exit
 * status, signals, and the statistics at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <lazypage/lazypage.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* vmrun's own exit statuses (the program's status otherwise). */
enum {
	EX_USAGE_ = 64,     /* bad command line */
	EX_NOTELF = 65,     /* not an ELF program (nor a #! script) */
	EX_CORRUPT_ = 66,   /* truncated or corrupt ELF headers */
	EX_ARCH = 67,       /* ELF for another architecture */
	EX_NOINTERP = 68,   /* the ELF interpreter is missing or unusable */
	EX_CAP = 69,        /* the memory cap is too small to run at all */
	EX_NOUFFD = 70,     /* userfaultfd or seccomp refused here */
	EX_INTERNAL = 71,   /* the pager failed (out of memory, ...) */
	EX_NOEXEC = 126,    /* the program cannot be read or executed */
	EX_NOTFOUND = 127,  /* the program does not exist */
};

static const char usage_text[] =
	"usage: vmrun [OPTIONS] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Run PROGRAM with its memory paged by lazypage: code, data, stack,\n"
	"heap and private mappings are loaded lazily, held under a resident\n"
	"cap and evicted to a swap file.  The program behaves as when run\n"
	"natively: same output, exit status and signals.\n"
	"\n"
	"Options:\n"
	"  -m, --mem SIZE         resident cap, e.g. 32M (K, M, G suffixes)\n"
	"  -f, --frames N         resident cap in 4 KiB frames\n"
	"  -p, --policy NAME      eviction policy (%s)\n"
	"  -s, --swap PATH        swap file, or directory for an unlinked one\n"
	"      --swap-max SIZE    largest swap file\n"
	"      --encrypt-swap     encrypt swapped pages (random key per run)\n"
	"  -t, --threads N        fault-handler threads (default: one per CPU)\n"
	"      --stats            print statistics on stderr at exit\n"
	"      --stats-json FILE  write statistics as JSON to FILE at exit\n"
	"  -h, --help             this help\n"
	"  -V, --version          version\n"
	"\n"
	"LAZYPAGE_* environment variables set defaults (see the README).\n"
	"\n"
	"Exit status: the program's (128 + N when it died of signal N, which\n"
	"vmrun then raises on itself), or one of vmrun's own:\n"
	"   64  bad command line             69  memory cap too small to run\n"
	"   65  not an ELF program           70  userfaultfd/seccomp refused\n"
	"   66  corrupt or truncated ELF     71  internal error of the pager\n"
	"   67  ELF for another machine     126  program not readable/executable\n"
	"   68  interpreter missing or bad  127  program not found\n";

static void usage(FILE *f)
{
	char names[256] = "";
	for (const char *const *n = lp_policy_names(); *n; n++) {
		if (names[0])
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
		strncat(names, *n, sizeof(names) - strlen(names) - 1);
	}
	fprintf(f, usage_text, names);
}

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
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "frames", required_argument, NULL, 'f' },
		{ "policy", required_argument, NULL, 'p' },
		{ "swap", required_argument, NULL, 's' },
		{ "swap-max", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "stats", no_argument, NULL, 'x' },
		{ "encrypt-swap", no_argument, NULL, 'E' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct lp_config cfg;
	const char *json = NULL;
	int stats = 0, c;
	uint64_t v;
	char *end;

	lp_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "+m:f:p:s:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (lp_parse_size(optarg, &v) || v / LP_PAGE_SIZE > UINT32_MAX / 2) {
				fprintf(stderr, "vmrun: bad size for --mem: '%s'\n", optarg);
				return EX_USAGE_;
			}
			cfg.frames = (size_t)(v / LP_PAGE_SIZE);
			if (v && !cfg.frames)
				cfg.frames = 1; /* too small: said below */
			break;
		case 'f':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v > UINT32_MAX / 2) {
				fprintf(stderr, "vmrun: bad number for --frames: '%s'\n", optarg);
				return EX_USAGE_;
			}
			cfg.frames = (size_t)v;
			break;
		case 'p':
			cfg.policy = optarg;
			break;
		case 's':
			cfg.swap_path = optarg;
			break;
		case 'S':
			if (lp_parse_size(optarg, &cfg.swap_max)) {
				fprintf(stderr, "vmrun: bad size for --swap-max: '%s'\n", optarg);
				return EX_USAGE_;
			}
			break;
		case 't':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v > 64) {
				fprintf(stderr, "vmrun: bad number for --threads: '%s'\n", optarg);
				return EX_USAGE_;
			}
			cfg.threads = (unsigned)v;
			break;
		case 'x':
			stats = 1;
			break;
		case 'E':
			cfg.flags |= LP_CFG_ENCRYPT_SWAP;
			break;
		case 'j':
			json = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vmrun (lazypage) %s\n", lp_version());
			return 0;
		default:
			usage(stderr);
			return EX_USAGE_;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "vmrun: no program given (vmrun --help)\n");
		return EX_USAGE_;
	}
	bool known = false;
	for (const char *const *n = lp_policy_names(); *n; n++)
		known |= !strcmp(*n, cfg.policy);
	if (!known) {
		fprintf(stderr, "vmrun: unknown policy '%s' (vmrun --help lists them)\n",
			cfg.policy);
		return EX_USAGE_;
	}

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
	int rc = lp_spawn(&p, argv[optind], argv + optind, NULL, &cfg, &err);
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
