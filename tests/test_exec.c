/* SPDX-License-Identifier: MIT */
/*
 * vmrun caps the whole process tree: programs executed by the program (and
 * by the processes it forks) run managed, at the same pid, under one
 * budget, with the output and exit status of their native run.  Each test
 * compares a run under vmrun with the same command run natively; "note:"
 * lines (a process's peak resident size) are checked on their own.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* The whole of a file, NUL-terminated (to free()), or NULL. */
static char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t len = 0;

	if (fd < 0)
		return NULL;
	slurp(fd, &buf, &len);
	close(fd);
	return buf;
}

#ifndef VMRUN
#error "VMRUN (path of vmrun) must be defined by the build"
#endif
#ifndef GUESTS
#error "GUESTS (directory of the guest programs) must be defined by the build"
#endif

#define G GUESTS "/execs-dynamic"

/* A program touching 64 MiB peaks above 64 MiB natively; managed under a
 * 4 MiB cap, at the cap plus its pager's own memory: ~10 MiB, ~26 MiB
 * when the pager is built with ASan. */
#define HWM_MAX (48 * 1024)

/* stdout without the "note:" lines; the largest "note: hwm N" in *hwm. */
static char *strip_notes(const char *s, long *hwm)
{
	char *o = malloc(strlen(s) + 1), *w = o;
	*hwm = 0;
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s + 1) : strlen(s);
		long v;
		if (strncmp(s, "note:", 5)) {
			memcpy(w, s, n);
			w += n;
		} else if (sscanf(s, "note: hwm %ld", &v) == 1 && v > *hwm) {
			*hwm = v;
		}
		s += n;
	}
	*w = 0;
	return o;
}

static void skip_without_uffd(void)
{
	if (userfaultfd_refused())
		cr_skip_test("userfaultfd refused here: vmrun cannot run");
}

/* How long one run may take before it is killed as stuck: sanitizers
 * slow the pagers down several times (under ASan the tree of shells below
 * took 130-250 s on a shared 2-CPU machine, and was killed at 120 s). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RUN_MS 360000
#else
#define RUN_MS 120000
#endif

/* A memory limit around a sanitized vmrun: its shadow memory alone is
 * terabytes of address space. */
static void skip_under_sanitizers(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	cr_skip_test("a sanitizer's shadow memory alone exceeds the limit");
#endif
}

/* Run the shell command natively and under vmrun --mem cap (extra: one
 * more vmrun option or NULL); outputs and statuses must be equal.  The
 * largest VmHWM any process noted under vmrun (KiB) is returned. */
static long compare_sh(const char *cmd, const char *cap, const char *extra)
{
	char *nargv[] = { (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
	char *vargv[10];
	int k = 0;
	vargv[k++] = (char *)VMRUN;
	vargv[k++] = (char *)"--mem";
	vargv[k++] = (char *)cap;
	if (extra)
		vargv[k++] = (char *)extra;
	vargv[k++] = (char *)"/bin/sh";
	vargv[k++] = (char *)"-c";
	vargv[k++] = (char *)cmd;
	vargv[k] = NULL;

	struct run_result n = run_captured(nargv, NULL, RUN_MS);
	struct run_result m = run_captured(vargv, NULL, RUN_MS);
	long nh, mh;
	char *no = strip_notes(n.out, &nh), *mo = strip_notes(m.out, &mh);
	cr_expect_eq(m.status, n.status, "%s: status %#x, natively %#x\nstderr: %s",
		     cmd, m.status, n.status, m.err);
	cr_expect_str_eq(mo, no, "%s: output differs\nvmrun:\n%s\nnatively:\n%s",
			 cmd, mo, no);
	free(no);
	free(mo);
	run_result_free(&n);
	run_result_free(&m);
	return mh;
}

Test(exec, a_pipeline_of_programs_each_far_beyond_the_cap_pages_out, .timeout = 300)
{
	skip_without_uffd();
	/* Each touches 64 MiB under a 4 MiB cap (HWM_MAX). */
	long hwm = compare_sh(G " touch 64 | cat; " G " touch 64 && " G
			      " touch 48 | cat; exit 7", "4M", NULL);
	cr_expect(hwm > 0 && hwm < HWM_MAX,
		  "a program the shell executed peaked at %ld KiB under a 4 MiB cap "
		  "(it ran unmanaged?)", hwm);
}

/* Regression: the pager shares the program's address space, and its
 * mappings count against the program's RLIMIT_AS: glibc reserved 64 MiB
 * per malloc arena of the pager (one per thread) and 8 MiB per thread
 * stack, 480 MiB in all, and a program under `ulimit -v` that runs
 * natively crashed or failed.  The pager keeps to about 30 MiB. */
Test(exec, a_program_under_ulimit_v_runs_as_natively, .timeout = 300)
{
	skip_without_uffd();
	skip_under_sanitizers();
	/* 48 MiB touched under a 100 MiB limit of address space */
	compare_sh("ulimit -v 102400 && " G " touch 48; echo status $?", "8M", NULL);
}

/* Regression: vmrun loaded a set-user-ID program itself and ran it with
 * the caller's identity (`id -u` of a copy owned by nobody said 0 under
 * root; natively 65534).  It runs natively now, as an exec'd one does. */
Test(exec, a_set_user_id_program_runs_with_its_owner_as_natively, .timeout = 120)
{
	skip_without_uffd();
	if (geteuid() != 0)
		cr_skip_test("needs root: a set-user-ID copy owned by another user");
	char dir[] = "suid-XXXXXX", path[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/id", dir);
	int in = open("/usr/bin/id", O_RDONLY | O_CLOEXEC);
	int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	cr_assert(in >= 0 && out >= 0, "copy of /usr/bin/id");
	char buf[65536];
	for (ssize_t n; (n = read(in, buf, sizeof buf)) > 0;)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	cr_assert_eq(chown(path, 65534, 65534), 0);
	cr_assert_eq(chmod(path, 04755), 0);
	char *nargv[] = { path, (char *)"-u", NULL };
	char *vargv[] = { (char *)VMRUN, (char *)"--mem", (char *)"4M", path,
			  (char *)"-u", NULL };
	struct run_result n = run_captured(nargv, NULL, 60000);
	struct run_result m = run_captured(vargv, NULL, 60000);
	unlink(path);
	rmdir(dir);
	if (n.out && !strcmp(n.out, "0\n"))
		cr_skip_test("set-user-ID bits are ignored here (nosuid mount?)");
	cr_expect_eq(m.status, n.status);
	cr_expect_str_eq(m.out, n.out, "effective user under vmrun: %s, natively: %s",
			 m.out, n.out);
	cr_expect_not_null(strstr(m.err, "runs natively"), "stderr: %s", m.err);
	run_result_free(&n);
	run_result_free(&m);
}

/* Regression: under `ulimit -d` a forked child's pager state could not be
 * built; the pager closed the child's userfaultfd and the child ran on,
 * its pages not copied yet read as zeros (bash of pyenv's python3 shim
 * died executing a zero page of its own code).  The child is killed with
 * a reason now (or the fork refused), never run on zeros. */
Test(exec, a_forked_child_the_pager_cannot_serve_never_reads_zeros, .timeout = 300)
{
	skip_without_uffd();
	skip_under_sanitizers();
	char *argv[] = { (char *)"/bin/sh", (char *)"-c",
			 (char *)"ulimit -d 78125 && exec " VMRUN " --mem 16M "
				 GUESTS "/forks-dynamic starved /bin/sh",
			 NULL };
	struct run_result r = run_captured(argv, NULL, 240000);
	cr_expect_eq(r.status, 0, "status %#x\nstdout: %s\nstderr: %s", r.status,
		     r.out, r.err);
	cr_expect_not_null(strstr(r.out, "0 wrong"), "stdout: %s", r.out);
	run_result_free(&r);
}

/* Regression: sixty shells at once under one 4 MiB budget with the
 * compressed tier made no progress (none of the first twenty done in
 * 90 s; 9 s without the tier): each process's pool kept a share of the
 * whole budget, together more than the budget, and left no frame to run
 * on.  A pool now holds only its part of what the tree lends it. */
Test(exec, a_tree_of_shells_with_a_compressed_tier_makes_progress, .timeout = 900)
{
	skip_without_uffd();
#ifndef LP_HAVE_LZ4
	cr_skip_test("this build has no lz4 (liblz4-dev)");
#endif
	const char *cmd = "for i in $(seq 1 60); do (x=$(seq 1 $((i*100)) | tail -1); "
			  "echo \"$i $x\") & if [ $((i % 20)) = 0 ]; then wait; fi; done "
			  "| sort -n | md5sum; wait; echo done";
	compare_sh(cmd, "4M", "--tier=lz4");
	/* What the tree holds at the end is what its living processes hold:
	 * the sum once added the last count of every one that ended (14245
	 * frames "now" under a budget of 1024). */
	char json[] = "/tmp/lp-exec-json-XXXXXX";
	int fd = mkstemp(json);
	cr_assert(fd >= 0);
	close(fd);
	char *js[] = { (char *)VMRUN, (char *)"--mem", (char *)"4M", (char *)"--stats-json",
		       json, (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
	struct run_result r = run_captured(js, NULL, RUN_MS);
	char *text = read_file(json);
	unlink(json);
	cr_assert(text, "no statistics");
	const char *rf = strstr(text, "\"resident_frames\":");
	unsigned long now = rf ? strtoul(rf + 18, NULL, 10) : ~0ul;
	cr_expect(now <= 1024, "the tree holds %lu frames at its end under a budget of 1024",
		  now);
	free(text);
	run_result_free(&r);
}

/* Regression: the pager of an executed program was named "3" (the helper
 * is executed as /proc/PID/fd/3): ps and top showed processes named by a
 * number.  No process of the tree is named so, as natively.  (Only the
 * shell's descendants count: another test's program starting up at the
 * same time is named so for a moment, and the native run saw it.) */
Test(exec, no_process_of_the_tree_is_named_by_a_number, .timeout = 300)
{
	skip_without_uffd();
	compare_sh("sleep 1 & sleep 0.2; for d in /proc/[0-9]*; do "
		   "read c < $d/comm 2>/dev/null || continue; "
		   "case $c in *[!0-9]*) continue;; esac; a=${d#/proc/}; "
		   "while [ \"$a\" -gt 1 ] && [ \"$a\" != $$ ]; do n=; "
		   "while read k v; do [ \"$k\" = PPid: ] && n=$v && break; "
		   "done < /proc/$a/status 2>/dev/null; a=${n:-0}; done; "
		   "[ \"$a\" = $$ ] && echo \"named $c\"; done; wait",
		   "8M", NULL);
}

Test(exec, same_pid_through_a_chain_of_execs, .timeout = 300)
{
	skip_without_uffd();
	long hwm = compare_sh("exec " G " chain 5 0", "4M", NULL);
	cr_expect(hwm > 0 && hwm < HWM_MAX, "the last image peaked at %ld KiB", hwm);
}

Test(exec, failed_execs_fail_as_natively, .timeout = 300)
{
	skip_without_uffd();
	/* A missing program, a directory, a file without execute
	 * permission, a file that is no program: the caller goes on with
	 * the kernel's errno. */
	char junk[] = "/tmp/lp-exec-noelf-XXXXXX", cmd[1024];
	int fd = mkstemp(junk);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "garbage\n", 8), 8);
	fchmod(fd, 0755);
	close(fd);
	snprintf(cmd, sizeof cmd,
		 G " fail /nonexistent; " G " fail /tmp; " G " fail /etc/passwd; "
		 G " fail %s; /nonexistent; echo $?", junk);
	compare_sh(cmd, "4M", NULL);
	unlink(junk);
}

Test(exec, scripts_run_their_interpreter_managed, .timeout = 300)
{
	skip_without_uffd();
	/* A #! script that executes a program (as a version manager's shim
	 * does): both run managed. */
	char dir[] = "/tmp/lp-exec-XXXXXX";
	cr_assert(mkdtemp(dir));
	char script[128], cmd[512];
	snprintf(script, sizeof script, "%s/shim", dir);
	FILE *f = fopen(script, "w");
	cr_assert(f);
	fprintf(f, "#!/bin/sh\necho \"shim $# args\"\nexec " G " \"$@\"\n");
	fclose(f);
	chmod(script, 0755);
	snprintf(cmd, sizeof cmd, "%s touch 64; %s chain 1 0; echo $?", script, script);
	long hwm = compare_sh(cmd, "4M", NULL);
	cr_expect(hwm > 0 && hwm < HWM_MAX, "peaked at %ld KiB under 4 MiB", hwm);
	unlink(script);
	rmdir(dir);
}

Test(exec, exec_from_a_multithreaded_program, .timeout = 300)
{
	skip_without_uffd();
	long hwm = compare_sh(G " thread " G " touch 64; echo $?", "4M", NULL);
	cr_expect(hwm > 0 && hwm < HWM_MAX, "peaked at %ld KiB under 4 MiB", hwm);
}

Test(exec, forked_children_exit_and_exec_at_once, .timeout = 300)
{
	skip_without_uffd();
	/* 40 children of the shell, each executing a program that touches
	 * 8 MiB, 4 at a time, under a cap of 4 MiB for all of them. */
	compare_sh("i=0; while [ $i -lt 10 ]; do for j in 1 2 3 4; do " G
		   " touch 8 & done; wait; i=$((i+1)); done | grep -v note | sort | uniq -c",
		   "4M", NULL);
}

/* Regression: a subshell that ends before its shell forks the next one
 * (dash's `(...)` in a loop) held that next fork for half a second: the
 * pager, naming the child it had let go, found it reaped and waited for
 * its vm to see it gone, while the shell was asking for its next fork
 * already (200 subshells: 95 s, against 0.2 s natively, 2.3 s now and
 * 4.4 s under ASan).  Not a timing of speed (bench/ times
 * vmrun's overhead): the bound is far above any run without the stall. */
Test(exec, a_shells_subshells_one_after_another_are_not_held, .timeout = 300)
{
	skip_without_uffd();
	const char *cmd = "i=0; while [ $i -lt 200 ]; do (:); i=$((i+1)); done; "
			  "echo $i $(echo done)";
	/* Uncapped: under a cap the ended child's vm often saw it gone
	 * sooner. */
	char *argv[] = { (char *)VMRUN, (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	struct run_result r = run_captured(argv, NULL, RUN_MS);
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_expect(r.status == 0 && strcmp(r.out, "200 done\n") == 0,
		  "status %#x, output \"%s\" (natively 0 and \"200 done\")\nstderr: %s",
		  r.status, r.out, r.err);
	run_result_free(&r);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	cr_expect(s < 12.0, "200 subshells, one after another, took %.1f s under vmrun "
		  "(natively 0.2 s, 2-5 s here under ASan): forks are held", s);
}

/* The most resident memory that processes named execs-dynamic held at
 * once, sampled every millisecond while argv runs (KiB). */
static long sample_tree_rss(char *const argv[], int *status)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	long most = 0;
	for (;;) {
		if (waitpid(pid, status, WNOHANG) == pid)
			break;
		long sum = 0;
		DIR *d = opendir("/proc");
		struct dirent *de;
		while (d && (de = readdir(d))) {
			char path[300], line[256], comm[64] = "";
			snprintf(path, sizeof path, "/proc/%s/comm", de->d_name);
			FILE *f = fopen(path, "r");
			if (!f)
				continue;
			if (!fgets(comm, sizeof comm, f))
				comm[0] = 0;
			fclose(f);
			if (strncmp(comm, "execs-dynamic", 13))
				continue;
			snprintf(path, sizeof path, "/proc/%s/status", de->d_name);
			f = fopen(path, "r");
			long v = 0;
			while (f && fgets(line, sizeof line, f))
				if (sscanf(line, "VmRSS: %ld", &v) == 1)
					break;
			if (f)
				fclose(f);
			sum += v;
		}
		if (d)
			closedir(d);
		if (sum > most)
			most = sum;
		usleep(1000);
	}
	return most;
}

Test(exec, one_budget_holds_for_the_tree, .timeout = 300)
{
	skip_without_uffd();
	/* Three programs touching 96 MiB each at once under a 32 MiB cap:
	 * shared, what they hold at once stays near one cap; with a cap per
	 * process, near three. */
	const char *cmd = G " touch 96 & " G " touch 96 & " G " touch 96 & wait";
	char *shared[] = { (char *)VMRUN, (char *)"--mem", (char *)"32M",
			   (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
	char *each[] = { (char *)VMRUN, (char *)"--mem", (char *)"32M",
			 (char *)"--mem-per-process", (char *)"/bin/sh", (char *)"-c",
			 (char *)cmd, NULL };
	int st1, st2;
	long s = sample_tree_rss(shared, &st1);
	long e = sample_tree_rss(each, &st2);
	cr_expect(WIFEXITED(st1) && WEXITSTATUS(st1) == 0, "status %#x", st1);
	cr_expect(WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "status %#x", st2);
	/* (Each process also holds its pager's own memory: ~8 MiB, far more
	 * under a sanitizer; so the two runs are compared, and the frames
	 * the budget counts are checked below.) */
	cr_expect(s > 0 && e - s > 24 * 1024,
		  "the tree held %ld KiB at once under a shared 32 MiB cap, "
		  "%ld KiB with 32 MiB per process", s, e);
	/* --stats-json: the tree's processes, and its peak within the cap
	 * (plus the slack of newcomers below their share). */
	char json[] = "/tmp/lp-exec-json-XXXXXX";
	int fd = mkstemp(json);
	cr_assert(fd >= 0);
	close(fd);
	char *js[] = { (char *)VMRUN, (char *)"--mem", (char *)"32M",
		       (char *)"--stats-json", json, (char *)"/bin/sh", (char *)"-c",
		       (char *)cmd, NULL };
	struct run_result r = run_captured(js, NULL, 120000);
	cr_expect_eq(r.status, 0);
	char *text = read_file(json);
	unlink(json); /* before any assertion can end the test */
	cr_assert(text);
	int procs = 0;
	for (const char *p = text; (p = strstr(p, "\"program\": \"execs-dynamic\"")); p++)
		procs++;
	cr_expect_eq(procs, 3, "3 processes of execs-dynamic in %s", text);
	const char *pk = strstr(text, "\"peak_frames\":");
	unsigned long peak = pk ? strtoul(pk + 14, NULL, 10) : 0;
	cr_expect(peak > 0 && peak <= 8192 + 4 * 32, /* BUDGET_MIN_FRAMES each */
		  "tree peak %lu frames under a cap of 8192", peak);
	free(text);
	run_result_free(&r);
}

Test(exec, python_subprocess_and_multiprocessing, .timeout = 600)
{
	skip_without_uffd();
	if (access("/usr/bin/python3", X_OK))
		cr_skip_test("python3 is not installed (tools/setup installs it)");
	/* subprocess (vfork and exec: the child interpreter runs managed)
	 * and multiprocessing (4 workers, each building a large list). */
	compare_sh("/usr/bin/python3 -c 'import subprocess,sys; "
		   "r=subprocess.run([sys.executable,\"-c\",\"x=[i*2 for i in "
		   "range(400000)]; print(sum(x))\"],capture_output=True); "
		   "print(r.stdout.decode().strip(), r.returncode)'", "16M", NULL);
	/* (The workers' memory is paged under the cap too: four lists of
	 * ~12 MiB and the parent's ~10 MiB under 16 MiB.  The idle parent
	 * gives its frames up to the workers below their fair part: ~3 s
	 * here; 30 s, and more than 120 s under the suite's load, while
	 * each worker could evict only its own pages — README, Limits.) */
	compare_sh("/usr/bin/python3 -c 'import multiprocessing as mp\n"
		   "def w(i): return sum([j*i for j in range(300000)])\n"
		   "if __name__==\"__main__\":\n"
		   "  with mp.Pool(4) as p: print(p.map(w, range(8)))'",
		   "16M", NULL);
}

/* Live single-threaded processes whose command line is "sleep ARG". */
static int count_sleepers(const char *arg)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	char want[64];
	int wl = snprintf(want, sizeof want, "sleep%c%s", 0, arg) + 1;

	while (d && (de = readdir(d))) {
		char path[300], buf[128];
		snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof buf);
		close(fd);
		/* (Its pager shows the same command line, sharing its
		 * memory, but runs several threads.) */
		char status[300];
		snprintf(status, sizeof status, "/proc/%s/status", de->d_name);
		char *st = read_file(status);
		bool counts = st && !strstr(st, "State:\tZ") && strstr(st, "Threads:\t1\n");
		free(st);
		if (len == wl && !memcmp(buf, want, (size_t)wl) && counts)
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

Test(exec, killing_vmrun_ends_the_programs_it_executed, .timeout = 120)
{
	skip_without_uffd();
	/* A background child and the shell itself execute sleep; vmrun is
	 * killed: both die with it (their memory calls come to its pager). */
	char arg[32], cmd[128];
	snprintf(arg, sizeof arg, "30.%d", (int)getpid()); /* ours alone */
	snprintf(cmd, sizeof cmd, "sleep %s & exec sleep %s", arg, arg);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(VMRUN, VMRUN, "--mem", "4M", "/bin/sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int n = 0;
	for (int i = 0; i < 500 && (n = count_sleepers(arg)) < 2; i++)
		usleep(10000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_expect_eq(n, 2, "the two sleeps never ran (%d)", n);
	for (int i = 0; i < 300 && (n = count_sleepers(arg)) > 0; i++)
		usleep(10000);
	cr_expect_eq(n, 0, "%d sleep(s) the run executed outlived vmrun's SIGKILL by 3 s", n);
}

Test(exec, a_program_killed_with_its_pager_gives_its_frames_back, .timeout = 300)
{
	skip_without_uffd();
	/* A program holding 48 MiB under a 16 MiB cap is killed together
	 * with its pager, as the OOM killer kills every process of an
	 * address space: neither can leave the shared budget.  The program
	 * the shell runs next must get the cap, not what the dead one left
	 * of it (it got 298 frames of 4096 when nobody gave them back). */
	char dir[] = "/tmp/lp-exec-kill-XXXXXX";
	cr_assert(mkdtemp(dir));
	char json[128], cmd[1024];
	snprintf(json, sizeof json, "%s/stats.json", dir);
	snprintf(cmd, sizeof cmd,
		 G " hold 48 %s/held > /dev/null & p=$!; "
		 "while [ ! -e %s/held ]; do sleep 0.02; done; "
		 "kill -9 $p $(cat /proc/$p/task/*/children); wait $p; echo killed $?; "
		 G " touch 64",
		 dir, dir);
	char *argv[] = { (char *)VMRUN, (char *)"--mem", (char *)"16M",
			 (char *)"--stats-json", json, (char *)"/bin/sh", (char *)"-c",
			 cmd, NULL };
	struct run_result r = run_captured(argv, NULL, 120000);
	char *text = read_file(json);
	unlink(json);
	char held[160];
	snprintf(held, sizeof held, "%s/held", dir);
	unlink(held);
	rmdir(dir);
	cr_expect_eq(r.status, 0, "status %#x\nstderr: %s", r.status, r.err);
	cr_expect(strstr(r.out, "killed 137\ntouch 64 MiB: sum "), "output: %s", r.out);
	cr_assert(text, "no statistics (stderr: %s)", r.err);
	/* The processes in the order they started: the last execs-dynamic
	 * is the one after the kill. */
	const char *last = NULL;
	for (const char *p = text; (p = strstr(p, "\"program\": \"execs-dynamic\"")); p++)
		last = p;
	const char *pk = last ? strstr(last, "\"peak_frames\":") : NULL;
	unsigned long peak = pk ? strtoul(pk + 14, NULL, 10) : 0;
	cr_expect(peak >= 3072, "the program after the kill peaked at %lu frames "
		  "of a 4096-frame cap\n%s", peak, text);
	free(text);
	run_result_free(&r);
}
