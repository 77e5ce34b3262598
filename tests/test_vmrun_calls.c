/* SPDX-License-Identifier: MIT */
/*
 * vmrun given what a careless or hostile user or program gives it, compared
 * with the same run natively:
 *
 *  - programs that cannot run (a #! line naming a FIFO, a symlink loop, a
 *    path through a file, a name too long, a directory, an interpreter or
 *    a #! interpreter without the exec bit, a program on a noexec mount)
 *    end with bash's status (127 not found, 126 found but cannot run), at
 *    once, with one line on stderr;
 *  - memory calls with bad arguments get the kernel's answer: clone3 with a
 *    bad pointer (EFAULT: it once killed the pager), mmap of an O_PATH
 *    descriptor (EBADF: it once mapped and then SIGBUSed), PROT_EXEC on a
 *    noexec mount (EPERM).
 */
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common.h"

#ifndef VMRUN
#error "VMRUN (path of vmrun) must be defined by the build"
#endif
#ifndef GUESTS
#error "GUESTS (directory of the guest programs) must be defined by the build"
#endif

/* Run argv (PATH set to path if not NULL), stdout and stderr captured;
 * killed after 20 s (status 128 + SIGKILL: it hung).  The result is kept
 * until the next run. */
static struct run_result *run(char *const argv[], const char *path)
{
	static struct run_result r;

	free(r.out);
	free(r.err);
	r = run_captured(argv, path, 20000);
	r.status = WIFEXITED(r.status) ? WEXITSTATUS(r.status) :
					 128 + WTERMSIG(r.status);
	return &r;
}

static char dir[] = "/tmp/lp-calls-XXXXXX";
static char nx[600];
static bool nx_mounted;

static void setup(void)
{
	cr_assert(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	snprintf(nx, sizeof nx, "%s/nx", dir);
	mkdir(nx, 0755);
	nx_mounted = mount("tmpfs", nx, "tmpfs", MS_NOEXEC | MS_NOSUID, "size=4m") == 0;
}

static void teardown(void)
{
	if (nx_mounted)
		umount2(nx, MNT_DETACH);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	(void)!system(cmd);
}

static char *at(const char *name)
{
	static char p[8][700];
	static int k;
	char *s = p[k++ % 8];
	snprintf(s, 700, "%s/%s", dir, name);
	return s;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY);
	cr_assert(in >= 0, "%s: %s", from, strerror(errno));
	struct stat st;
	fstat(in, &st);
	char *buf = malloc((size_t)st.st_size);
	cr_assert_eq(read(in, buf, (size_t)st.st_size), st.st_size);
	close(in);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert(out >= 0, "%s: %s", to, strerror(errno));
	cr_assert_eq(write(out, buf, (size_t)st.st_size), st.st_size);
	close(out);
	chmod(to, mode);
	free(buf);
}

/* prog run by bash natively and by vmrun: the same status, and vmrun's
 * stderr is one line naming the problem. */
static void same_status(const char *prog, const char *path, const char *words)
{
	char *nargv[] = { (char *)"/bin/bash", (char *)"-c", (char *)"\"$0\"", (char *)prog, NULL };
	struct run_result *n = run(nargv, path);
	int native = n->status;
	char nerr[8192];
	snprintf(nerr, sizeof nerr, "%s", n->err);
	char *vargv[] = { (char *)VMRUN, (char *)prog, NULL };
	struct run_result *v = run(vargv, path);
	cr_expect_eq(v->status, native, "%s: vmrun status %d, natively %d\nvmrun: %snative: %s",
		     prog, v->status, native, v->err, nerr);
	cr_expect(native == 126 || native == 127, "%s: native status %d: %s", prog, native, nerr);
	char *nl = strchr(v->err, '\n');
	cr_expect(!strncmp(v->err, "vmrun: ", 7) && nl && !nl[1], "stderr: [%s]", v->err);
	cr_expect(strstr(v->err, words), "'%s' not in: %s", words, v->err);
}

TestSuite(vmrun_exec, .init = setup, .fini = teardown, .timeout = 120);

/* Regression: vmrun opened a FIFO named by a #! line to read it, and
 * waited forever for a writer; the kernel refuses to execute anything but
 * a regular file (EACCES, 126). */
Test(vmrun_exec, fifo_as_interpreter_or_program_is_126_at_once)
{
	cr_assert_eq(mkfifo(at("fifo"), 0755), 0);
	char line[800];
	snprintf(line, sizeof line, "#!%s\n", at("fifo"));
	write_file(at("script"), line, 0755);
	same_status(at("script"), NULL, "Permission denied");
	/* The FIFO itself as the program: bash would hang reading it to say
	 * why the kernel refused it; the kernel's answer is EACCES. */
	pid_t pid = fork();
	if (pid == 0) {
		char *a[] = { at("fifo"), NULL };
		execv(a[0], a);
		_exit(errno == EACCES ? 126 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 126, "execve of a FIFO: not EACCES");
	char *v[] = { (char *)VMRUN, at("fifo"), NULL };
	struct run_result *r = run(v, NULL);
	cr_expect_eq(r->status, 126, "status %d: %s", r->status, r->err);
	cr_expect(strstr(r->err, "Permission denied"), "%s", r->err);
}

/* Regression: a symlink loop gave 127 (not found); natively 126. */
Test(vmrun_exec, unusable_paths_have_bash_statuses)
{
	cr_assert_eq(symlink("loop", at("loop")), 0);
	same_status(at("loop"), NULL, "symbolic links");
	write_file(at("file"), "x", 0755);
	same_status(at("file/prog"), NULL, "Not a directory");
	char longname[400];
	memset(longname, 'a', 300);
	longname[300] = 0;
	same_status(at(longname), NULL, "too long");
	mkdir(at("adir"), 0755);
	same_status(at("adir"), NULL, "directory");
	same_status(at("missing"), NULL, "No such file");
	/* In PATH: a directory of the name is skipped (127), a file that
	 * cannot run is found (126). */
	mkdir(at("path1"), 0755);
	mkdir(at("path1/tool"), 0755);
	mkdir(at("path2"), 0755);
	char path[1400];
	snprintf(path, sizeof path, "%s:/usr/bin:/bin", at("path1"));
	same_status("tool", path, "No such file");
	write_file(at("path2/tool"), "#!/bin/sh\n", 0644);
	snprintf(path, sizeof path, "%s:/usr/bin:/bin", at("path2"));
	same_status("tool", path, "Permission denied");
}

/* Regression: an ELF interpreter or a #! interpreter without the exec bit
 * ran; the kernel opens both as it opens the program (EACCES, 126). */
Test(vmrun_exec, interpreters_need_the_exec_bit)
{
	char dyn[600];
	snprintf(dyn, sizeof dyn, "%s/calls-dynamic", GUESTS);
	/* A copy of the dynamic guest whose PT_INTERP names a copy of the
	 * system's ld.so, mode 0644. */
	const char *sys_ld = "/lib64/ld-linux-x86-64.so.2";
	char ld[600];
	snprintf(ld, sizeof ld, "%s/ld", dir);
	cr_assert_leq(strlen(ld), strlen(sys_ld), "temp dir name too long");
	copy_file(sys_ld, ld, 0644);
	int in = open(dyn, O_RDONLY);
	struct stat st;
	fstat(in, &st);
	char *buf = malloc((size_t)st.st_size);
	cr_assert_eq(read(in, buf, (size_t)st.st_size), st.st_size);
	close(in);
	char *p = memmem(buf, (size_t)st.st_size, sys_ld, strlen(sys_ld));
	cr_assert(p, "no %s in %s", sys_ld, dyn);
	memset(p, 0, strlen(sys_ld));
	memcpy(p, ld, strlen(ld));
	int out = open(at("prog"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
	cr_assert_eq(write(out, buf, (size_t)st.st_size), st.st_size);
	close(out);
	free(buf);
	same_status(at("prog"), NULL, "Permission denied");

	char line[800];
	snprintf(line, sizeof line, "#!%s\n", at("notexec"));
	copy_file("/bin/true", at("notexec"), 0644);
	write_file(at("script"), line, 0755);
	same_status(at("script"), NULL, "Permission denied");

	/* With the bit, both run (the test above is not failing for
	 * another reason). */
	chmod(ld, 0755);
	chmod(at("notexec"), 0755);
	char *a[] = { (char *)VMRUN, at("prog"), (char *)"clone3", NULL };
	cr_expect_eq(run(a, NULL)->status, 0, "%s", run(a, NULL)->err);
	char *b[] = { (char *)VMRUN, at("script"), NULL };
	cr_expect_eq(run(b, NULL)->status, 0);
}

Test(vmrun_exec, program_on_a_noexec_mount_is_126)
{
	if (!nx_mounted)
		cr_skip_test("cannot mount a noexec tmpfs here (needs root)");
	char prog[700];
	snprintf(prog, sizeof prog, "%s/true", nx);
	copy_file("/bin/true", prog, 0755);
	same_status(prog, NULL, "Permission denied");
}

/* ---- memory calls with bad arguments ---- */

static const char *const variants[] = { "static", "static-pie", "dynamic" };

/* calls ARGS natively and under vmrun, per variant: same stdout, same
 * status. */
static void same_output(char *const args[], size_t nargs)
{
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here: vmrun cannot run");
	for (size_t v = 0; v < 3; v++) {
		char prog[600];
		snprintf(prog, sizeof prog, "%s/calls-%s", GUESTS, variants[v]);
		if (access(prog, X_OK))
			continue;
		char *nargv[8], *vargv[10];
		size_t k = 0;
		nargv[0] = prog;
		vargv[k++] = (char *)VMRUN;
		vargv[k++] = (char *)"--mem";
		vargv[k++] = (char *)"1M";
		vargv[k++] = prog;
		for (size_t i = 0; i < nargs; i++) {
			nargv[1 + i] = args[i];
			vargv[k++] = args[i];
		}
		nargv[1 + nargs] = NULL;
		vargv[k] = NULL;
		struct run_result *n = run(nargv, NULL);
		int nst = n->status;
		char *nout = strdup(n->out);
		struct run_result *m = run(vargv, NULL);
		cr_expect_eq(m->status, nst, "%s %s: status %d, natively %d\nstderr: %s",
			     prog, args[0], m->status, nst, m->err);
		cr_expect_str_eq(m->out, nout, "%s %s: output differs\nstderr: %s", prog,
				 args[0], m->err);
		free(nout);
	}
}

/* Regression: clone3(NULL, 88) killed the pager (it read the flags through
 * the program's pointer), vmrun exited 71; natively EFAULT. */
Test(vmrun_calls, clone3_with_bad_pointers_and_sizes)
{
	char *args[] = { (char *)"clone3" };
	same_output(args, 1);
}

/* Regression: mmap of an O_PATH descriptor succeeded and the first touch
 * was SIGBUS (natively EBADF); PROT_EXEC of a file on a noexec mount
 * succeeded (natively EPERM). */
Test(vmrun_calls, file_mappings_checked_as_the_kernel_does, .init = setup,
     .fini = teardown)
{
	if (!nx_mounted)
		cr_skip_test("cannot mount a noexec tmpfs here (needs root)");
	char f[700], g[700];
	snprintf(f, sizeof f, "%s/data", dir);
	snprintf(g, sizeof g, "%s/data", nx);
	write_file(f, "some bytes\n", 0644);
	write_file(g, "some bytes\n", 0644);
	char *args[] = { (char *)"mmap", f, g };
	same_output(args, 3);
}

/* Regression: brk was served by the pager through a seccomp notification,
 * which a signal caught without SA_RESTART interrupts before the pager
 * receives it: 2 442 of 200 000 raw brk calls failed with EINTR, which
 * glibc took for the new break (python3 with setitimer then crashed).
 * brk is now the kernel's: it cannot be interrupted.  (mmap and munmap
 * still can: README, Limits.) */
Test(vmrun_calls, brk_is_never_interrupted)
{
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here: vmrun cannot run");
	const char *n = getenv("LAZYPAGE_BRK_CALLS");
	char *count = (char *)(n && *n ? n : "20000");
	for (size_t v = 0; v < 3; v++) {
		char prog[600];
		snprintf(prog, sizeof prog, "%s/calls-%s", GUESTS, variants[v]);
		if (access(prog, X_OK))
			continue;
		char *nargv[] = { prog, (char *)"interrupt", count, NULL };
		struct run_result *r = run(nargv, NULL);
		char want[200];
		snprintf(want, sizeof want, "%.*s", (int)strcspn(r->out, "\n"), r->out);
		cr_assert_str_eq(want, "brk: 0 interrupted, 0 wrong", "natively: %s", r->out);
		char *vargv[] = { (char *)VMRUN, (char *)"--mem", (char *)"1M", prog,
				  (char *)"interrupt", count, NULL };
		r = run(vargv, NULL);
		cr_expect_eq(r->status, 0, "%s: status %d: %s", prog, r->status, r->err);
		cr_expect(!strncmp(r->out, want, strlen(want)) && r->out[strlen(want)] == '\n',
			  "%s under vmrun: %s", prog, r->out);
	}
}
