/* SPDX-License-Identifier: MIT */
/* lp_spawn / lp_wait: running a program under a cap from a library call. */
#include <signal.h>
#include <sys/wait.h>

#include "common.h"

#ifndef GUESTS
#error "GUESTS must be defined by the build"
#endif

#define SKIP_IF_REFUSED()                                                     \
	do {                                                                  \
		if (userfaultfd_refused())                                                \
			cr_skip_test("userfaultfd refused here");             \
	} while (0)

static char *guest(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", GUESTS, name);
	return path;
}

Test(spawn, runs_a_program_under_a_cap_and_reports)
{
	SKIP_IF_REFUSED();
	struct lp_config c = cfg_frames(256); /* 1 MiB */
	char *argv[] = { guest("heap-static"), (char *)"16", NULL };
	struct lp_proc *p;
	struct lp_spawn_err err;
	int rc = lp_spawn(&p, argv[0], argv, NULL, &c, &err);
	cr_assert_eq(rc, 0, "lp_spawn: %s (%s)", strerror(-rc), err.msg);
	cr_assert_gt(lp_proc_pid(p), 0);
	struct lp_stats s;
	cr_assert_eq(lp_proc_stats(p, &s), 0);
	cr_assert_eq(s.fault_kinds, LP_FAULT_KINDS, "stats read at once");
	int st;
	cr_assert_eq(lp_wait(p, &st, 0), 1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
	cr_assert_eq(lp_proc_stats(p, &s), 0);
	cr_assert_eq(s.fault_kinds, LP_FAULT_KINDS);
	cr_assert_eq(s.budget_frames, 256);
	cr_assert_leq(s.peak_frames, 256);
	cr_assert_gt(s.swap_outs, 0, "16 MiB through 1 MiB without swapping?");
	cr_assert_eq(lp_wait(p, &st, 0), -ECHILD, "exit reported twice");
	lp_proc_free(p);
}

Test(spawn, exit_status_and_death_by_signal)
{
	SKIP_IF_REFUSED();
	char *a1[] = { guest("crash-dynamic"), (char *)"exit", NULL };
	char *a2[] = { guest("crash-dynamic"), (char *)"wild", NULL };
	struct lp_proc *p;
	int st;
	cr_assert_eq(lp_spawn(&p, a1[0], a1, NULL, NULL, NULL), 0);
	cr_assert_eq(lp_wait(p, &st, 0), 1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 42, "status %#x", st);
	lp_proc_free(p);
	cr_assert_eq(lp_spawn(&p, a2[0], a2, NULL, NULL, NULL), 0);
	cr_assert_eq(lp_wait(p, &st, 0), 1);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x", st);
	lp_proc_free(p);
}

Test(spawn, kill_stop_and_continue)
{
	SKIP_IF_REFUSED();
	char *argv[] = { (char *)"/bin/sleep", (char *)"30", NULL };
	struct lp_proc *p;
	int st;
	cr_assert_eq(lp_spawn(&p, argv[0], argv, NULL, NULL, NULL), 0);
	cr_assert_eq(lp_wait(p, &st, WNOHANG), 0, "sleep ended at once");
	cr_assert_eq(lp_proc_kill(p, SIGSTOP), 0);
	cr_assert_eq(lp_wait(p, &st, WUNTRACED), 1);
	cr_assert(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "status %#x", st);
	cr_assert_eq(lp_proc_kill(p, SIGCONT), 0);
	cr_assert_eq(lp_wait(p, &st, WCONTINUED), 1);
	cr_assert(WIFCONTINUED(st), "status %#x", st);
	cr_assert_eq(lp_proc_kill(p, SIGTERM), 0);
	cr_assert_eq(lp_wait(p, &st, 0), 1);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %#x", st);
	lp_proc_free(p);
}

Test(spawn, environment_and_path_lookup)
{
	SKIP_IF_REFUSED();
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"exit $LP_TEST_CODE", NULL };
	char *envp[] = { (char *)"LP_TEST_CODE=17", (char *)"PATH=/bin:/usr/bin", NULL };
	struct lp_proc *p;
	int st;
	cr_assert_eq(lp_spawn(&p, "sh", argv, envp, NULL, NULL), 0);
	cr_assert_eq(lp_wait(p, &st, 0), 1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 17, "status %#x", st);
	lp_proc_free(p);
}

Test(spawn, errors_say_what_is_wrong)
{
	struct lp_proc *p = (struct lp_proc *)1;
	struct lp_spawn_err err;
	char *argv[] = { (char *)"x", NULL };

	cr_assert_eq(lp_spawn(NULL, "x", argv, NULL, NULL, &err), -EINVAL);
	cr_assert_eq(lp_spawn(&p, "/nonexistent/x", argv, NULL, NULL, &err), -ENOENT);
	cr_assert_null(p);
	cr_assert_eq(err.kind, LP_SPAWN_NOT_FOUND);
	cr_assert(strstr(err.msg, "/nonexistent/x"), "%s", err.msg);
	char path[64];
	int fd = temp_file(100, path, sizeof path); /* 0600: not executable */
	close(fd);
	cr_assert_eq(lp_spawn(&p, path, argv, NULL, NULL, &err), -EACCES);
	cr_assert_eq(err.kind, LP_SPAWN_NO_ACCESS);
	chmod(path, 0700);
	cr_assert_eq(lp_spawn(&p, path, argv, NULL, NULL, &err), -ENOEXEC);
	cr_assert_eq(err.kind, LP_SPAWN_NOT_ELF);
	unlink(path);
	struct lp_config c = cfg_frames(LP_PROC_MIN_FRAMES - 1);
	c.frames = LP_PROC_MIN_FRAMES - 1 >= LP_MIN_FRAMES ? LP_PROC_MIN_FRAMES - 1 : 0;
	if (c.frames) {
		cr_assert_eq(lp_spawn(&p, "/bin/true", argv, NULL, &c, &err), -EINVAL);
		cr_assert_eq(err.kind, LP_SPAWN_CAP);
	}
	lp_proc_free(NULL);
}

/* Issue 9 point 13: a swap path that cannot be used is LP_SPAWN_SWAP with
 * the path and the cause, not "userfaultfd needs root"; a malformed
 * LAZYPAGE_* variable is LP_SPAWN_CONFIG naming it. */
Test(spawn, swap_and_environment_errors_name_the_cause)
{
	SKIP_IF_REFUSED();
	struct lp_proc *p = (struct lp_proc *)1;
	struct lp_spawn_err err;
	char *argv[] = { (char *)"true", NULL };
	struct lp_config c = cfg_frames(0);
	c.swap_path = "/dev/null";
	cr_assert_eq(lp_spawn(&p, "/bin/true", argv, NULL, &c, &err), -EEXIST);
	cr_assert_eq(err.kind, LP_SPAWN_SWAP, "kind %d: %s", err.kind, err.msg);
	cr_assert(strstr(err.msg, "/dev/null") && strstr(err.msg, "File exists"),
		  "%s", err.msg);
	c.swap_path = "/sys/kernel";
	cr_assert_eq(lp_spawn(&p, "/bin/true", argv, NULL, &c, &err), -EACCES);
	cr_assert_eq(err.kind, LP_SPAWN_SWAP, "kind %d: %s", err.kind, err.msg);
	cr_assert(strstr(err.msg, "/sys/kernel"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "userfaultfd"), "%s", err.msg);
	setenv("LAZYPAGE_THREADS", "many", 1);
	c.swap_path = NULL;
	int rc = lp_spawn(&p, "/bin/true", argv, NULL, &c, &err);
	unsetenv("LAZYPAGE_THREADS");
	cr_assert_eq(rc, -EINVAL);
	cr_assert_eq(err.kind, LP_SPAWN_CONFIG, "kind %d: %s", err.kind, err.msg);
	cr_assert(strstr(err.msg, "LAZYPAGE_THREADS=many"), "%s", err.msg);
}

Test(spawn, no_descriptor_or_zombie_left_in_the_caller)
{
	SKIP_IF_REFUSED();
	int fds = count_dir("/proc/self/fd");
	for (int i = 0; i < 3; i++) {
		char *argv[] = { (char *)"/bin/true", NULL };
		struct lp_proc *p;
		int st;
		cr_assert_eq(lp_spawn(&p, argv[0], argv, NULL, NULL, NULL), 0);
		cr_assert_eq(lp_wait(p, &st, 0), 1);
		lp_proc_free(p);
	}
	cr_assert_eq(count_dir("/proc/self/fd"), fds, "descriptors leaked");
	/* Neither the program nor its pager is our child. */
	cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1);
	cr_assert_eq(errno, ECHILD);
}
