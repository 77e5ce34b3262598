/* SPDX-License-Identifier: MIT */
/*
 * vmrun: run an unmodified program with its memory paged by lazypage.
 * A thin front end over lp_spawn()/lp_wait(): options, errors, the exit
 * status, signals, and the statistics at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <lazypage/lazypage.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmrun_opts.h"

/*
 * Signals.  Those sent to vmrun (kill, not the terminal: the terminal's
 * reach the program directly, it is in our process group) go on to the
 * program: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1 (unless --stats),
 * SIGUSR2, SIGALRM, SIGWINCH, SIGCONT.
 *
 * While the program starts, a signal that would end the program ends
 * vmrun at once, as it would have ended the program (the pager, seeing us
 * gone, leaves too: nothing runs yet).  Dying in the handler, not after
 * lp_spawn returns: a signal that comes between two of its waits would not
 * interrupt it, and a start can hang.  Once it runs, a thread of ours
 * takes them with sigwaitinfo (none is lost between two waits) and
 * forwards them, or prints interim statistics (SIGUSR1 with --stats, every
 * --stats-interval seconds).
 */
static const int fwd[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1,
			   SIGUSR2, SIGALRM, SIGWINCH, SIGCONT };
static volatile sig_atomic_t pending[65], starting = 1;
static sigset_t fwd_set;       /* the ones we handle (not ignored at start) */
static int stats_usr1;         /* SIGUSR1 asks for statistics */
static _Atomic pid_t waker;    /* continues us with the program (stop_with) */

/* The state letter of process pid (/proc/PID/stat), or 0 if it is gone. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * The program stopped: we stop too, for the shell that runs us to see the
 * job stopped.  A shell's fg continues us both (one process group), but a
 * SIGCONT sent to the program alone (kill -CONT PID) continues only it, and
 * we stayed stopped for ever, the run never ending.  So a small watcher
 * continues us as soon as the program runs again while we are stopped,
 * and goes once we both run.
 */
static void stop_with(pid_t prog)
{
	pid_t me = getpid(), w = fork();

	if (w > 0)
		atomic_store(&waker, w);
	if (w == 0) {
		for (;;) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			char ps = proc_state(prog), ms = proc_state(me);
			bool prog_stopped = ps == 'T' || ps == 't';
			if (!ms || getppid() != me)
				_exit(0);
			if (ms != 'T' && ms != 't') {
				if (!prog_stopped)
					_exit(0);
				continue;
			}
			if (!prog_stopped) {
				kill(me, SIGCONT);
				_exit(0);
			}
		}
	}
	raise(SIGSTOP);
	if (w > 0) {
		kill(w, SIGKILL);
		waitpid(w, NULL, 0);
	}
	/* (waker stays set: its SIGCONT may be taken after this.) */
}

static bool ends_program(int sig)
{
	return sig != SIGWINCH && sig != SIGCONT && !(sig == SIGUSR1 && stats_usr1);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGUSR1 && stats_usr1)
		return;
	if (starting && ends_program(sig)) {
		/* Default action, delivered once we return (sig is blocked
		 * while its handler runs). */
		signal(sig, SIG_DFL);
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);
		raise(sig);
		return;
	}
	if (si->si_code == SI_USER || si->si_code == SI_QUEUE)
		pending[sig] = 1;
}

struct watcher {
	struct lp_proc *p;
	double interval;
	struct timespec t0;
	pthread_mutex_t lock;   /* over done and stderr's statistics */
	bool done;              /* the final report is out (or coming) */
};

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The statistics so far, as at the end, marked interim. */
static void interim(struct watcher *w)
{
	static const char head[] = "lazypage statistics\n";
	struct lp_stats st;
	char *buf = NULL;
	size_t len = 0;

	if (lp_proc_stats(w->p, &st))
		return;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return;
	lp_stats_print(&st, m, 0);
	fclose(m);
	pthread_mutex_lock(&w->lock);
	if (!w->done) {
		const char *rest = buf;
		if (!strncmp(buf, head, sizeof head - 1))
			rest += sizeof head - 1;
		fprintf(stderr, "lazypage statistics (interim, after %.1f s)\n%s",
			since(&w->t0), rest);
		fflush(stderr);
	}
	pthread_mutex_unlock(&w->lock);
	free(buf);
}

static void *watch_main(void *arg)
{
	struct watcher *w = arg;
	double next = w->interval;

	for (;;) {
		siginfo_t si;
		int sig;
		if (w->interval > 0) {
			double left = next - since(&w->t0);
			if (left < 0)
				left = 0;
			struct timespec ts = { (time_t)left,
					       (long)((left - (double)(time_t)left) * 1e9) };
			sig = sigtimedwait(&fwd_set, &si, &ts);
			if (sig < 0 && errno == EAGAIN) {
				interim(w);
				while (next <= since(&w->t0))
					next += w->interval;
				continue;
			}
		} else {
			sig = sigwaitinfo(&fwd_set, &si);
		}
		if (sig <= 0)
			continue;
		if (si.si_code != SI_USER && si.si_code != SI_QUEUE)
			continue;
		/* (Our waker's SIGCONT: the program runs already.) */
		if (sig == SIGCONT && si.si_pid && si.si_pid == atomic_load(&waker))
			continue;
		if (sig == SIGUSR1 && stats_usr1) {
			interim(w);
			continue;
		}
		pthread_mutex_lock(&w->lock);
		if (!w->done)
			lp_proc_kill(w->p, sig);
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

/* Die of sig as the program did (or would have), without a core of our
 * own, so that our parent sees the same (the shell prints it and sets $?
 * to 128 + N). */
static int die_of(int sig)
{
	struct rlimit none = { 0, 0 };
	setrlimit(RLIMIT_CORE, &none);
	signal(sig, SIG_DFL);
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	raise(sig);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	return 128 + sig;
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

/*
 * The --stats-json file, opened before the program starts (so that a bad
 * path fails at once, and the program cannot swap the path meanwhile): "-"
 * is our stdout; otherwise a path that is no symbolic link, naming a
 * regular file (created 0644, or truncated once it is known to be one), a
 * FIFO or a character device.  A descriptor, or -1 with the reason
 * printed: as root, a link planted at a predictable path must not make us
 * truncate what it points at.
 */
static int open_json(const char *path)
{
	if (!strcmp(path, "-"))
		return fcntl(1, F_DUPFD_CLOEXEC, 3);
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
		      0644);
	struct stat st;
	const char *why = NULL;

	if (fd < 0)
		why = errno == ELOOP ? "a symbolic link: refused" : strerror(errno);
	else if (fstat(fd, &st))
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		why = "not a regular file, FIFO or character device";
	else if (S_ISREG(st.st_mode) && ftruncate(fd, 0))
		why = strerror(errno);
	else if (fcntl(fd, F_SETFL, 0))
		why = strerror(errno);
	if (why) {
		fprintf(stderr, "vmrun: --stats-json %s: %s\n", path, why);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The processes of the run, when the program executed others: a table
 * after the statistics (which are their sums), or a JSON array. */
static void print_tree(struct lp_proc *p, FILE *f, int json)
{
	static struct lp_proc_info pi[LP_PROC_TREE_MAX];
	int n = lp_proc_tree(p, pi, LP_PROC_TREE_MAX);

	if (json) {
		fprintf(f, "\"processes\": [");
		for (int i = 0; i < n; i++) {
			/* (A program name is a file name: escape what JSON
			 * cannot hold as is.) */
			fprintf(f, "%s{\"pid\": %d, \"program\": \"", i ? ", " : "",
				pi[i].pid);
			for (const char *c = pi[i].program; *c; c++)
				fprintf(f, (unsigned char)*c < 0x20 || *c == '"' || *c == '\\'
						   ? "\\u%04x" : "%c",
					(unsigned char)*c);
			fprintf(f, "\", \"faults\": %llu, \"evictions\": %llu, "
				   "\"peak_frames\": %llu}",
				(unsigned long long)pi[i].faults,
				(unsigned long long)pi[i].evictions,
				(unsigned long long)pi[i].peak_frames);
		}
		fprintf(f, "]");
		return;
	}
	if (n < 2)
		return;
	fprintf(f, "  processes       %d (the figures above are their sums)\n"
		   "    %8s  %-16s %10s %10s %11s\n", n, "pid", "program", "faults",
		"evictions", "peak frames");
	for (int i = 0; i < n; i++)
		fprintf(f, "    %8d  %-16s %10llu %10llu %11llu\n", pi[i].pid,
			pi[i].program, (unsigned long long)pi[i].faults,
			(unsigned long long)pi[i].evictions,
			(unsigned long long)pi[i].peak_frames);
}

/* The statistics as JSON, with the processes: lp_stats_print's object
 * with one more member. */
static int print_json(struct lp_proc *p, const struct lp_stats *st, FILE *f)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m || lp_stats_print(st, m, 1) || fclose(m))
		return -1;
	char *end = strrchr(buf, '}');
	if (!end) {
		free(buf);
		return -1;
	}
	fprintf(f, "%.*s, ", (int)(end - buf), buf);
	print_tree(p, f, 1);
	fprintf(f, "}\n");
	free(buf);
	return ferror(f) ? -1 : 0;
}

static void report(struct lp_proc *p, int stats, const char *json, int json_fd)
{
	struct lp_stats st;

	if ((!stats && json_fd < 0) || lp_proc_stats(p, &st)) {
		if (json_fd >= 0)
			close(json_fd);
		return;
	}
	if (stats) {
		lp_stats_print(&st, stderr, 0);
		print_tree(p, stderr, 0);
	}
	if (json_fd >= 0) {
		FILE *f = fdopen(json_fd, "w");
		if (!f || print_json(p, &st, f) || fclose(f)) {
			fprintf(stderr, "vmrun: %s: %s\n", json, strerror(errno));
			if (f)
				fclose(f);
			else
				close(json_fd);
		}
	}
}

/*
 * The pager shares the program's address space, so its mappings count
 * against the program's RLIMIT_AS and RLIMIT_DATA (ulimit -v, -d).  glibc
 * would reserve 64 MiB of address space per malloc arena (one per thread)
 * and give each thread an 8 MiB stack: 480 MiB of address space and 80 MiB
 * of data for a pager of ten threads, and python3 under `ulimit -v 100000`
 * crashed (natively it runs).  One arena, and stacks of 1 MiB (our deepest
 * is a few pages): about 30 MiB in all.
 */
static void lean_pager(void)
{
	pthread_attr_t a;

	(void)mallopt(M_ARENA_MAX, 1);
	if (pthread_attr_init(&a) == 0) {
		(void)pthread_attr_setstacksize(&a, 1u << 20);
		(void)pthread_setattr_default_np(&a);
		pthread_attr_destroy(&a);
	}
}

int main(int argc, char **argv, char **envp)
{
	lean_pager();
	/* A program our program executed starts here (and never returns). */
	lp_exec_main(argc, argv, envp);
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

	/* Those vmrun starts with ignored stay ignored (for it and for the
	 * program); SIGUSR1 asks for statistics with --stats. */
	stats_usr1 = stats;
	if (cfg.flags & LP_CFG_STATS_AT_EXIT) {
		/* LAZYPAGE_STATS=1: as --stats, printed once, by us. */
		cfg.flags &= ~LP_CFG_STATS_AT_EXIT;
		stats = 1;
	}
	sigemptyset(&fwd_set);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
		struct sigaction old, sa;
		if (sigaction(fwd[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_signal;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigaction(fwd[i], &sa, NULL);
		sigaddset(&fwd_set, fwd[i]);
	}

	int json_fd = json ? open_json(json) : -1;
	if (json && json_fd < 0)
		return EX_USAGE_;
	struct lp_proc *p;
	struct lp_spawn_err err;
	int rc = lp_spawn(&p, argv[o.prog], argv + o.prog, NULL, &cfg, &err);
	if (rc && err.kind == LP_SPAWN_PRIVILEGED) {
		/* As a program we run executes one (README, Limits). */
		fprintf(stderr, "vmrun: note: %s; it runs natively, unmanaged\n", err.msg);
		execvp(argv[o.prog], argv + o.prog);
		fprintf(stderr, "vmrun: %s: %s\n", argv[o.prog], strerror(errno));
		return errno == ENOENT ? EX_NOTFOUND : EX_NOEXEC;
	}
	if (rc) {
		fprintf(stderr, "vmrun: %s\n", err.msg[0] ? err.msg : strerror(-rc));
		return spawn_status(err.kind);
	}

	/* It runs: from now on the watcher takes our signals.  Those that
	 * came in the meantime go on first. */
	static struct watcher w;
	w.p = p;
	w.interval = o.stats_interval;
	clock_gettime(CLOCK_MONOTONIC, &w.t0);
	pthread_mutex_init(&w.lock, NULL);
	pthread_sigmask(SIG_BLOCK, &fwd_set, NULL);
	starting = 0;
	for (int s = 1; s <= 64; s++) {
		if (pending[s]) {
			pending[s] = 0;
			lp_proc_kill(p, s);
		}
	}
	pthread_t th;
	if (pthread_create(&th, NULL, watch_main, &w)) {
		fprintf(stderr, "vmrun: cannot start a thread: %s\n", strerror(errno));
		lp_proc_free(p);
		return EX_INTERNAL;
	}

	int status = 0;
	for (;;) {
		rc = lp_wait(p, &status, WUNTRACED | WCONTINUED);
		if (rc == -EINTR || (rc == 1 && WIFCONTINUED(status)))
			continue;
		if (rc == 1 && WIFSTOPPED(status)) {
			/* Stopped (^Z): so are we, for the shell to see. */
			stop_with(lp_proc_pid(p));
			continue;
		}
		break;
	}
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_mutex_unlock(&w.lock);
	if (rc != 1) {
		fprintf(stderr, "vmrun: lost the program: %s\n",
			rc == -EPIPE ? "the pager died" : strerror(-rc));
		lp_proc_free(p);
		return EX_INTERNAL;
	}
	report(p, stats, json, json_fd);
	/* Returns once the pager is gone (or stays for children the program
	 * forked): nothing of the run is left behind us. */
	lp_proc_free(p);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return die_of(WTERMSIG(status));
}
