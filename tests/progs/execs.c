/* SPDX-License-Identifier: MIT */
/*
 * Guest for execve under vmrun (tests/test_exec.c).  Lines starting with
 * "note:" differ natively (the peak resident size).
 *
 *   execs touch MIB         write every page of MIB MiB, print a checksum
 *                           and (note) this process's VmHWM in KiB
 *   execs thread PROG ARG.. a second thread executes PROG while the first
 *                           sleeps (exec from a multithreaded program)
 *   execs chain N PID       execute itself N more times; each checks that
 *                           its pid is still PID; the last touches 64 MiB
 *   execs fail PATH         execv(PATH): print the errno, go on
 *   execs hold MIB FILE [PAD]  write every page of MIB MiB, write its pid
 *                           to FILE, sleep (until killed: 60 s at most)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long hwm_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static int touch(long mib, const char *then)
{
	size_t len = (size_t)mib << 20;
	unsigned char *p = malloc(len);
	unsigned long sum = 0;

	if (!p)
		return 2;
	for (size_t i = 0; i < len; i += 4096)
		p[i] = (unsigned char)(i >> 12) * 7 + 1;
	for (size_t i = 0; i < len; i += 4096)
		sum = sum * 31 + p[i];
	printf("touch %ld MiB: sum %lx\n", mib, sum);
	printf("note: hwm %ld\n", hwm_kib());
	if (then) {
		FILE *f = fopen(then, "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
		sleep(60);
	}
	free(p);
	return 0;
}

static char **targv;

static void *execer(void *arg)
{
	(void)arg;
	execv(targv[0], targv);
	printf("exec from a thread failed: %s\n", strerror(errno));
	exit(3);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "touch"))
		return touch(atol(argv[2]), NULL);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "hold"))
		return touch(atol(argv[2]), argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "thread")) {
		pthread_t t;
		targv = argv + 2;
		pthread_create(&t, NULL, execer, NULL);
		sleep(30);
		printf("the exec did not happen\n");
		return 4;
	}
	if (argc == 4 && !strcmp(argv[1], "chain")) {
		int n = atoi(argv[2]);
		long pid = atol(argv[3]);
		char num[16], pids[32];
		if (pid && pid != (long)getpid()) {
			printf("chain %d: pid changed\n", n);
			return 5;
		}
		printf("chain %d: same pid\n", n);
		if (n == 0)
			return touch(64, NULL);
		snprintf(num, sizeof num, "%d", n - 1);
		snprintf(pids, sizeof pids, "%ld", (long)getpid());
		execl("/proc/self/exe", argv[0], "chain", num, pids, (char *)NULL);
		printf("chain %d: exec failed: %s\n", n, strerror(errno));
		return 6;
	}
	if (argc == 3 && !strcmp(argv[1], "fail")) {
		char *av[] = { argv[2], NULL };
		execv(argv[2], av);
		printf("exec %s: %s\n", argv[2], strerror(errno));
		return 0;
	}
	fprintf(stderr, "usage: execs touch MIB | thread PROG ARG... | "
			"chain N PID | fail PATH | hold MIB FILE\n");
	return 64;
}
