/* SPDX-License-Identifier: MIT */
/*
 * vmrun runs a program exactly as natively: each guest program (built
 * static, static-pie and dynamic) under three caps — unlimited, 4 MiB and
 * 512 KiB — prints the same stdout and ends with the same wait status as
 * its native run.  Lines starting with "note:" differ natively and are
 * checked on their own.
 */
#include <spawn.h>
#include <sys/wait.h>

#include "common.h"

#ifndef VMRUN
#error "VMRUN (path of vmrun) must be defined by the build"
#endif
#ifndef GUESTS
#error "GUESTS (directory of the guest programs) must be defined by the build"
#endif

extern char **environ;

struct result {
	int status;
	char *out;
	size_t len;
	char *err;
	size_t errlen;
};

static void slurp(int fd, char **buf, size_t *len)
{
	size_t cap = 4096;
	*buf = malloc(cap);
	*len = 0;
	for (;;) {
		if (*len + 1 >= cap)
			*buf = realloc(*buf, cap *= 2);
		ssize_t n = read(fd, *buf + *len, cap - *len - 1);
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	(*buf)[*len] = 0;
}

/* Run argv with stdout and stderr captured (stderr to a temp file). */
static struct result run(char *const argv[])
{
	struct result r = { 0 };
	int out[2];
	char errpath[] = "/tmp/lp-vmrun-err-XXXXXX";
	int errfd = mkstemp(errpath);
	unlink(errpath);
	cr_assert_eq(pipe(out), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0,
		     "cannot run %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	slurp(out[0], &r.out, &r.len);
	close(out[0]);
	cr_assert_eq(waitpid(pid, &r.status, 0), pid);
	lseek(errfd, 0, SEEK_SET);
	slurp(errfd, &r.err, &r.errlen);
	close(errfd);
	return r;
}

/* stdout without the "note:" lines. */
static char *strip_notes(const char *s)
{
	char *o = malloc(strlen(s) + 1), *w = o;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s + 1) : strlen(s);
		if (strncmp(s, "note:", 5)) {
			memcpy(w, s, n);
			w += n;
		}
		s += n;
	}
	*w = 0;
	return o;
}

static bool userfaultfd_refused(void)
{
	struct lp_vm *vm;
	int rc = lp_vm_create(&vm, NULL);
	if (rc)
		return rc == -EPERM || rc == -EACCES || rc == -ENOSYS;
	lp_vm_destroy(vm);
	return false;
}

static const char *const variants[] = { "static", "static-pie", "dynamic" };
static const char *const caps[] = { NULL, "4M", "512K" };

/* Native versus vmrun for one program with one argument list; returns the
 * vmrun outputs of the last case for further checks. */
static void compare(const char *prog, const char *arg, const char *need_in_notes)
{
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here: vmrun cannot run");
	for (size_t v = 0; v < 3; v++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s-%s", GUESTS, prog, variants[v]);
		if (access(path, X_OK))
			continue; /* static-pie not supported by this toolchain */
		char *nargv[] = { path, (char *)arg, NULL };
		struct result n = run(nargv);
		char *nout = strip_notes(n.out);
		for (size_t c = 0; c < 3; c++) {
			char *vargv[8];
			int k = 0;
			vargv[k++] = (char *)VMRUN;
			if (caps[c]) {
				vargv[k++] = (char *)"--mem";
				vargv[k++] = (char *)caps[c];
			}
			vargv[k++] = path;
			vargv[k++] = (char *)arg;
			vargv[k] = NULL;
			struct result m = run(vargv);
			char *mout = strip_notes(m.out);
			cr_expect_eq(m.status, n.status,
				     "%s %s cap %s: status %#x, natively %#x\nstderr: %s",
				     path, arg ? arg : "", caps[c] ? caps[c] : "none",
				     m.status, n.status, m.err);
			cr_expect_str_eq(mout, nout, "%s %s cap %s: stdout differs\nstderr: %s",
					 path, arg ? arg : "", caps[c] ? caps[c] : "none", m.err);
			if (need_in_notes)
				cr_expect(strstr(m.out, need_in_notes),
					  "%s cap %s: '%s' not in:\n%s", path,
					  caps[c] ? caps[c] : "none", need_in_notes, m.out);
			free(mout);
			free(m.out);
			free(m.err);
		}
		free(nout);
		free(n.out);
		free(n.err);
	}
}

Test(vmrun, lazy_data_bss_and_code, .timeout = 300)
{
	/* Under vmrun no page of the three arrays is present before use. */
	compare("lazy", NULL, "note: before: data 0 bss 0 rodata 0");
}

Test(vmrun, stack_grows_by_recursion_and_by_read, .timeout = 300)
{
	compare("stack", NULL, NULL);
}

Test(vmrun, write_to_code_is_sigsegv, .timeout = 300)
{
	compare("crash", "code", NULL);
}

Test(vmrun, wild_address_is_sigsegv, .timeout = 300)
{
	compare("crash", "wild", NULL);
}

Test(vmrun, abort_and_exit_status, .timeout = 300)
{
	compare("crash", "abort", NULL);
	compare("crash", "exit", NULL);
}

Test(vmrun, heap_far_larger_than_the_cap, .timeout = 600)
{
	compare("heap", "48", NULL);
}

Test(vmrun, fork_sees_lazy_resident_and_swapped_pages, .timeout = 600)
{
	compare("forks", NULL, NULL);
}

Test(vmrun, threads_signals_and_exit_from_a_thread, .timeout = 300)
{
	compare("threads", NULL, NULL);
	compare("threads", "exit-from-thread", NULL);
}
