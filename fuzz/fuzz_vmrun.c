/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for vmrun's command line (tools/vmrun_opts.c): the
 * input is argv after "vmrun", arguments separated by NUL bytes.  Checked:
 * the verdict is run (-1), done (0, help or version) or usage (64); usage
 * comes with a message; a run names a program inside argv, a known
 * policy, and a configuration lp_vm_create() would not refuse as
 * malformed (budget, threads, flags, swap_max); a --mem cap asked for is never
 * unlimited; parsing the same argv again gives the same result.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "vmrun_opts.h"
#include "fuzz.h"

#define MAXARGS 64

static const struct {
	const char *name;
	int arg;
} longopts[] = {
	{ "mem", 1 }, { "frames", 1 }, { "policy", 1 }, { "swap", 1 },
	{ "swap-max", 1 }, { "threads", 1 }, { "stats", 0 },
	{ "encrypt-swap", 0 }, { "stats-json", 1 }, { "help", 0 },
	{ "version", 0 },
};

/* The value of the last --mem when it comes after every --frames (NULL
 * otherwise), by reading argv[1..prog) as getopt_long does. */
static const char *last_budget(char **argv, int prog)
{
	const char *mem = NULL;

	for (int i = 1; i < prog; i++) {
		const char *a = argv[i], *val = NULL;
		char opt = 0;

		if (!strcmp(a, "--"))
			break;
		if (!strncmp(a, "--", 2)) {
			size_t n = strcspn(a + 2, "=");
			int hit = -1, hits = 0;
			for (unsigned k = 0; k < sizeof(longopts) / sizeof(longopts[0]); k++) {
				if (strncmp(longopts[k].name, a + 2, n))
					continue;
				if (strlen(longopts[k].name) == n) {
					hit = (int)k, hits = 1;
					break;
				}
				hit = (int)k, hits++;
			}
			if (hits != 1)
				return NULL; /* glibc resolved it somehow: no claim */
			if (longopts[hit].arg)
				val = a[2 + n] == '=' ? a + 3 + n : argv[++i];
			if (!strcmp(longopts[hit].name, "mem"))
				opt = 'm';
			else if (!strcmp(longopts[hit].name, "frames"))
				opt = 'f';
		} else {
			for (const char *c = a + 1; *c; c++) {
				if (!strchr("mfpst", *c))
					continue;
				val = c[1] ? c + 1 : argv[++i];
				opt = *c;
				break;
			}
		}
		if (opt == 'm')
			mem = val;
		else if (opt == 'f')
			mem = NULL;
	}
	return mem;
}

static FILE *sink(char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);

	CHECK(f);
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[MAXARGS + 2], *argv2[MAXARGS + 2];
	char *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, elen = 0;
	struct vmrun_opts o, o2;
	int argc = 1;

	CHECK(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[0] = "vmrun";
	for (char *p = copy; p <= copy + size && argc <= MAXARGS;
	     p += strlen(p) + 1) {
		if (p == copy + size && size > 0)
			break;
		argv[argc++] = p;
	}
	argv[argc] = NULL;
	memcpy(argv2, argv, sizeof(argv));

	FILE *out = sink(&obuf, &olen), *err = sink(&ebuf, &elen);
	memset(&o, 0x5a, sizeof(o));
	int ex = vmrun_parse(argc, argv, &o, out, err);
	fclose(out);
	fclose(err);
	CHECK(ex == -1 || ex == 0 || ex == EX_USAGE_);
	if (ex == EX_USAGE_)
		CHECK(elen > 0);
	if (ex == 0)
		CHECK(olen > 0 && elen == 0);
	if (ex == -1) {
		CHECK(elen == 0 && olen == 0);
		CHECK(o.prog >= 1 && o.prog < argc);
		CHECK(o.cfg.policy && policy_find(o.cfg.policy));
		CHECK(o.cfg.frames <= UINT32_MAX / 2);
		CHECK(o.cfg.threads <= LP_MAX_THREADS);
		CHECK(o.cfg.swap_max == 0 || o.cfg.swap_max >= LP_PAGE_SIZE);
		CHECK((o.cfg.flags & ~(LP_CFG_STATS_AT_EXIT | LP_CFG_NO_READAHEAD |
				       LP_CFG_ENCRYPT_SWAP | LP_CFG_NO_PIN |
				       LP_CFG_VERIFY | LP_CFG_SYNC_READS |
				       LP_CFG_MEM_PER_PROCESS |
				       LP_CFG_SYNC_EVICT)) == 0);
		CHECK(o.stats == 0 || o.stats == 1);
		/* A cap asked for is never "unlimited". */
		const char *mem = last_budget(argv2, o.prog);
		uint64_t bytes;
		if (mem && lp_parse_size(mem, &bytes) == 0 && bytes)
			CHECK(o.cfg.frames > 0);
	}
	free(obuf);
	free(ebuf);

	/* Again, on a fresh copy of argv: the same verdict and options. */
	obuf = ebuf = NULL;
	out = sink(&obuf, &olen);
	err = sink(&ebuf, &elen);
	memset(&o2, 0x5a, sizeof(o2));
	char *argv3[MAXARGS + 2];
	memcpy(argv3, argv2, sizeof(argv3));
	int ex2 = vmrun_parse(argc, argv3, &o2, out, err);
	fclose(out);
	fclose(err);
	CHECK(ex2 == ex);
	if (ex == -1)
		CHECK(o2.prog == o.prog && o2.cfg.frames == o.cfg.frames &&
		      o2.cfg.threads == o.cfg.threads &&
		      o2.cfg.flags == o.cfg.flags && o2.cfg.swap_max == o.cfg.swap_max &&
		      o2.cfg.policy == o.cfg.policy && o2.stats == o.stats &&
		      o2.json == o.json);
	free(obuf);
	free(ebuf);
	free(copy);
	return 0;
}
