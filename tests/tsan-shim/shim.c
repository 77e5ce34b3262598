/* SPDX-License-Identifier: MIT */
/* The main of the Criterion stand-in (criterion/criterion.h): run every
 * registered test in a forked child, as Criterion does. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define MAXTESTS 64
#define SKIP_STATUS 77

static struct {
	const char *suite, *name;
	void (*fn)(void);
	const struct shim_opts *opts;
} tests[MAXTESTS];
static int ntests;

void shim_register(const char *suite, const char *name, void (*fn)(void),
		   const struct shim_opts *opts)
{
	if (ntests == MAXTESTS)
		abort();
	tests[ntests].suite = suite;
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	tests[ntests++].opts = opts;
}

void shim_check(bool ok, const char *where, const char *expr, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	fprintf(stderr, "%s: assertion failed: %s", where, expr);
	if (fmt[0]) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	fflush(stderr);
	_exit(1);
}

void shim_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("skipped: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(SKIP_STATUS);
}

int main(void)
{
	int passed = 0, failed = 0, skipped = 0;

	for (int i = 0; i < ntests; i++) {
		const struct shim_opts *o = tests[i].opts;
		int st, ok;

		if (o->disabled)
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			alarm(o->timeout > 0 ? (unsigned)o->timeout : 300);
			tests[i].fn();
			fflush(NULL);
			_exit(0);
		}
		while (waitpid(pid, &st, 0) < 0)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_STATUS) {
			printf("[SKIP] %s::%s\n", tests[i].suite, tests[i].name);
			skipped++;
			continue;
		}
		if (o->signal)
			ok = WIFSIGNALED(st) && WTERMSIG(st) == o->signal;
		else
			ok = WIFEXITED(st) && WEXITSTATUS(st) == o->exit_code;
		printf("[%s] %s::%s", ok ? "PASS" : "FAIL", tests[i].suite,
		       tests[i].name);
		if (!ok && WIFSIGNALED(st))
			printf(" (killed by signal %d)", WTERMSIG(st));
		else if (!ok)
			printf(" (exit status %d)", WEXITSTATUS(st));
		putchar('\n');
		ok ? passed++ : failed++;
	}
	printf("Synthesis: Tested: %d | Passing: %d | Failing: %d | Skipped: %d\n",
	       passed + failed, passed, failed, skipped);
	if (failed)
		return 1;
	return passed == 0 && skipped > 0 ? SKIP_STATUS : 0;
}
