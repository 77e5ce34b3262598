/* SPDX-License-Identifier: MIT */
/*
 * lp-bench-prog: run a program natively, or under the kernel's paging in a
 * memory cgroup limited to a cap (with swap on), timed, and print one CSV
 * line.  bench/run uses it for the real-program part, and to time vmrun
 * the same way as the native run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lazypage/lazypage.h"
#include "kernel.h"

#define KERNEL_TRIES 3

static const char usage[] =
"usage: lp-bench-prog [options] -- PROGRAM [ARGS...]\n"
"Run PROGRAM and print one CSV line:\n"
"  wall_s,status,maxrss_kib,majflt,minflt,pswpin,pswpout,ooms,timed_out\n"
"status is the exit status, or 128 + N after signal N.\n"
"\n"
"  -k CAP     run it in a memory cgroup limited to CAP (e.g. 32M), with\n"
"             swap on (the kernel's paging; needs root)\n"
"  -d DIR     directory for a swap file when none is on (default /var/tmp)\n"
"  -o FILE    the program's stdout (default /dev/null)\n"
"  -e FILE    the program's stderr (default: inherited)\n"
"  -T SECS    kill the program (its process group) after SECS seconds;\n"
"             timed_out says so, wall_s is then the time it was given\n"
"  -H         print the CSV header first\n"
"\n"
"Exit status: 0 ran (whatever its status), 77 -k refused here, 1 failed.\n";

int main(int argc, char **argv)
{
	const char *out = "/dev/null", *err = NULL, *dir = "/var/tmp";
	uint64_t cap = 0;
	char why[256] = "";
	int c, rc, out_fd, err_fd = -1;

	while ((c = getopt(argc, argv, "+k:d:o:e:T:Hh")) != -1) {
		switch (c) {
		case 'k':
			if (lp_parse_size(optarg, &cap) || !cap) {
				fprintf(stderr, "lp-bench-prog: bad -k %s\n",
					optarg);
				return 2;
			}
			break;
		case 'd': dir = optarg; break;
		case 'T': {
			char *end;
			unsigned long t = strtoul(optarg, &end, 10);
			if (end == optarg || *end || t > 86400) {
				fprintf(stderr, "lp-bench-prog: bad -T %s\n",
					optarg);
				return 2;
			}
			kpage_set_timeout((unsigned)t);
			break;
		}
		case 'o': out = optarg; break;
		case 'e': err = optarg; break;
		case 'H':
			printf("wall_s,status,maxrss_kib,majflt,minflt,pswpin,"
			       "pswpout,ooms,timed_out\n");
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (err)
		err_fd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);
	if (out_fd < 0 || (err && err_fd < 0)) {
		fprintf(stderr, "lp-bench-prog: %s: %s\n",
			out_fd < 0 ? out : err, strerror(errno));
		return 1;
	}

	struct kpage_result r;
	unsigned ooms = 0;
	if (!cap) {
		rc = kpage_run_native(argv + optind, out_fd, err_fd, &r, why,
				      sizeof(why));
	} else {
		struct kpage *k;
		/* Swap for everything the program could hold. */
		rc = kpage_open(&k, dir, 2 * cap, why, sizeof(why));
		if (rc) {
			fprintf(stderr, "lp-bench-prog: kernel paging: %s\n",
				why);
			return rc == -EPERM || rc == -ENOENT ? 77 : 1;
		}
		for (;;) {
			rc = kpage_run_prog(k, argv + optind, cap, out_fd,
					    err_fd, &r, why, sizeof(why));
			/* The memory cgroup's OOM killer: try again. */
			if (rc || r.timed_out || !WIFSIGNALED(r.status) ||
			    WTERMSIG(r.status) != SIGKILL ||
			    ++ooms == KERNEL_TRIES)
				break;
			if (lseek(out_fd, 0, SEEK_SET) == 0)
				(void)!ftruncate(out_fd, 0);
		}
		kpage_close(k);
	}
	if (rc) {
		fprintf(stderr, "lp-bench-prog: %s\n", why);
		return 1;
	}
	int status = WIFEXITED(r.status) ? WEXITSTATUS(r.status)
					 : 128 + WTERMSIG(r.status);
	printf("%.4f,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
	       ",%" PRIu64 ",%u,%d\n", (double)r.ns / 1e9, status, r.maxrss_kb,
	       r.majflt, r.minflt, r.pswpin, r.pswpout, ooms, r.timed_out);
	return 0;
}
