/* SPDX-License-Identifier: MIT */
/*
 * lp-demo: a region much larger than its memory budget, used for real.
 *
 *   lp-demo [--mem SIZE] [--size SIZE] [--policy NAME] [--ops N] [--json]
 *
 * Maps --size bytes (default 256M) with a resident budget of --mem (default
 * 16M), writes every page, does --ops random read-modify-writes checking
 * each page's content, reads everything back, and prints lazypage's
 * statistics to stderr.  Exit status 0 when every check passed, 1 when data
 * was wrong, 2 on a usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, getopt_long */
#endif
#include <errno.h>
#include <getopt.h>
#include <lazypage/lazypage.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lp-demo [--mem SIZE] [--size SIZE] [--policy NAME] "
		   "[--ops N] [--json]\n");
}

int main(int argc, char **argv)
{
	uint64_t mem = 16 << 20, size = 256 << 20, ops = 200000;
	const char *policy = NULL;
	int json = 0, c;
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ "policy", required_argument, NULL, 'p' },
		{ "ops", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((c = getopt_long(argc, argv, "m:s:p:o:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
		case 's':
			if (lp_parse_size(optarg, c == 'm' ? &mem : &size)) {
				fprintf(stderr, "lp-demo: bad size '%s'\n", optarg);
				return 2;
			}
			break;
		case 'p': policy = optarg; break;
		case 'o': ops = strtoull(optarg, NULL, 10); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}

	struct lp_config cfg;
	lp_config_init(&cfg);
	cfg.frames = mem / LP_PAGE_SIZE;
	if (policy)
		cfg.policy = policy;
	struct lp_vm *vm;
	int rc = lp_vm_create(&vm, &cfg);
	if (rc) {
		fprintf(stderr, "lp-demo: cannot start lazypage: %s%s\n", strerror(-rc),
			rc == -EPERM ? " (userfaultfd needs root or /dev/userfaultfd access)" : "");
		return 2;
	}
	uint64_t *p;
	rc = lp_map_anon(vm, size, PROT_READ | PROT_WRITE, (void **)&p);
	if (rc) {
		fprintf(stderr, "lp-demo: cannot map %llu bytes: %s\n",
			(unsigned long long)size, strerror(-rc));
		lp_vm_destroy(vm);
		return 2;
	}
	uint64_t pages = size / LP_PAGE_SIZE, words = LP_PAGE_SIZE / 8, bad = 0;
	fprintf(stderr, "lp-demo: %llu MiB region, %llu MiB budget, policy %s\n",
		(unsigned long long)(size >> 20), (unsigned long long)(mem >> 20),
		cfg.policy);

	double t0 = now();
	for (uint64_t i = 0; i < pages; i++) { /* every page: index + counter */
		p[i * words] = i;
		p[i * words + 1] = 0;
	}
	double t1 = now();
	uint64_t *count = calloc(pages, sizeof(*count)), x = 88172645463325252ull;
	for (uint64_t k = 0; k < ops; k++) {
		uint64_t i = next(&x) % pages;
		uint64_t *q = p + i * words;
		if (q[0] != i || q[1] != count[i])
			bad++;
		q[1] = ++count[i];
	}
	double t2 = now();
	for (uint64_t i = 0; i < pages; i++)
		if (p[i * words] != i || p[i * words + 1] != count[i])
			bad++;
	double t3 = now();
	free(count);

	fprintf(stderr, "lp-demo: write %.2fs, %llu random read-modify-writes %.2fs, "
			"read back %.2fs: %s\n",
		t1 - t0, (unsigned long long)ops, t2 - t1, t3 - t2,
		bad ? "DATA MISMATCH" : "all data verified");
	struct lp_stats st;
	lp_stats_get(vm, &st);
	lp_stats_print(&st, stderr, json);
	lp_vm_destroy(vm);
	return bad ? 1 : 0;
}
