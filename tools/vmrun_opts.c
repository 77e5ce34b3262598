/* SPDX-License-Identifier: MIT */
/*
 * vmrun's command line: options into a configuration, the usage text.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmrun_opts.h"

static const char usage_text[] =
	"usage: vmrun [OPTIONS] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Run PROGRAM with its memory paged by lazypage: code, data, stack,\n"
	"heap and private mappings are loaded lazily, held under a resident\n"
	"cap and evicted to a swap file.  The program behaves as when run\n"
	"natively: same output, exit status and signals.\n"
	"\n"
	"Options:\n"
	"  -m, --mem SIZE         resident cap, e.g. 32M (K, M, G suffixes)\n"
	"  -f, --frames N         resident cap in 4 KiB frames\n"
	"  -p, --policy NAME      eviction policy (%s)\n"
	"  -s, --swap PATH        swap file, or directory for an unlinked one\n"
	"      --swap-max SIZE    largest swap file\n"
	"      --encrypt-swap     encrypt swapped pages (random key per run)\n"
	"      --verify           checksum pages out and in, report mismatches\n"
	"  -t, --threads N        fault-handler threads (default: one per CPU)\n"
	"      --stats            print statistics on stderr at exit\n"
	"      --stats-json FILE  write statistics as JSON to FILE at exit\n"
	"  -h, --help             this help\n"
	"  -V, --version          version\n"
	"\n"
	"LAZYPAGE_* environment variables set defaults (see the README).\n"
	"\n"
	"Exit status: the program's (128 + N when it died of signal N, which\n"
	"vmrun then raises on itself), or one of vmrun's own:\n"
	"   64  bad command line             69  memory cap too small to run\n"
	"   65  not an ELF program           70  userfaultfd/seccomp refused\n"
	"   66  corrupt or truncated ELF     71  internal error of the pager\n"
	"   67  ELF for another machine     126  program not readable/executable\n"
	"   68  interpreter missing or bad  127  program not found\n";

static void usage(FILE *f)
{
	char names[256] = "";
	for (const char *const *n = lp_policy_names(); *n; n++) {
		if (names[0])
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
		strncat(names, *n, sizeof(names) - strlen(names) - 1);
	}
	fprintf(f, usage_text, names);
}

int vmrun_parse(int argc, char **argv, struct vmrun_opts *o, FILE *out,
		FILE *err)
{
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "frames", required_argument, NULL, 'f' },
		{ "policy", required_argument, NULL, 'p' },
		{ "swap", required_argument, NULL, 's' },
		{ "swap-max", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 't' },
		{ "stats", no_argument, NULL, 'x' },
		{ "encrypt-swap", no_argument, NULL, 'E' },
		{ "verify", no_argument, NULL, 'v' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct lp_config cfg;
	const char *json = NULL;
	int stats = 0, c;
	uint64_t v;
	char *end;

	lp_config_init(&cfg);
	optind = 0; /* glibc: start afresh */
	opterr = err == stderr;
	while ((c = getopt_long(argc, argv, "+m:f:p:s:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (lp_parse_size(optarg, &v) || v / LP_PAGE_SIZE > UINT32_MAX / 2) {
				fprintf(err, "vmrun: bad size for --mem: '%s'\n", optarg);
				return EX_USAGE_;
			}
			cfg.frames = (size_t)(v / LP_PAGE_SIZE);
			if (v && !cfg.frames)
				cfg.frames = 1; /* too small: said below */
			break;
		case 'f':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v > UINT32_MAX / 2) {
				fprintf(err, "vmrun: bad number for --frames: '%s'\n", optarg);
				return EX_USAGE_;
			}
			cfg.frames = (size_t)v;
			break;
		case 'p':
			cfg.policy = optarg;
			break;
		case 's':
			cfg.swap_path = optarg;
			break;
		case 'S':
			if (lp_parse_size(optarg, &cfg.swap_max)) {
				fprintf(err, "vmrun: bad size for --swap-max: '%s'\n", optarg);
				return EX_USAGE_;
			}
			break;
		case 't':
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || v > 64) {
				fprintf(err, "vmrun: bad number for --threads: '%s'\n", optarg);
				return EX_USAGE_;
			}
			cfg.threads = (unsigned)v;
			break;
		case 'x':
			stats = 1;
			break;
		case 'E':
			cfg.flags |= LP_CFG_ENCRYPT_SWAP;
			break;
		case 'v':
			cfg.flags |= LP_CFG_VERIFY;
			break;
		case 'j':
			json = optarg;
			break;
		case 'h':
			usage(out);
			return 0;
		case 'V':
			fprintf(out, "vmrun (lazypage) %s\n", lp_version());
			return 0;
		default:
			usage(err);
			return EX_USAGE_;
		}
	}
	if (optind >= argc) {
		fprintf(err, "vmrun: no program given (vmrun --help)\n");
		return EX_USAGE_;
	}
	bool known = false;
	for (const char *const *n = lp_policy_names(); *n; n++)
		known |= !strcmp(*n, cfg.policy);
	if (!known) {
		fprintf(err, "vmrun: unknown policy '%s' (vmrun --help lists them)\n",
			cfg.policy);
		return EX_USAGE_;
	}
	o->cfg = cfg;
	o->json = json;
	o->stats = stats;
	o->prog = optind;
	return -1;
}
