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
	"  -s, --swap PATH        directory for the swap file, or the path of a new\n"
	"                         file (an existing non-directory is refused); the\n"
	"                         file is unnamed at once, nothing is left behind\n"
	"      --swap-max SIZE    largest swap file\n"
	"      --encrypt-swap     encrypt swapped pages (random key per run)\n"
	"      --verify           checksum pages out and in, report mismatches\n"
	"  -t, --threads N        fault-handler threads (default: one per CPU)\n"
	"      --stats            print statistics on stderr at exit (and on SIGUSR1)\n"
	"      --stats-interval S also every S seconds while the program runs\n"
	"      --stats-json FILE  write statistics as JSON to FILE at exit\n"
	"  -h, --help             this help\n"
	"  -V, --version          version\n"
	"\n"
	"LAZYPAGE_* environment variables set defaults (see the README).\n"
	"\n"
	"Exit status: the program's (128 + N when it died of signal N, which\n"
	"vmrun then raises on itself), or one of vmrun's own:\n"
	"   64  bad command line or LAZYPAGE_* variable\n"
	"   65  not an ELF program           71  internal error of the pager\n"
	"   66  corrupt or truncated ELF     73  swap file cannot be created\n"
	"   67  ELF for another machine      77  run set-user-ID/set-group-ID\n"
	"   68  interpreter missing or bad  126  program not readable/executable\n"
	"   69  memory cap too small to run 127  program not found\n"
	"   70  userfaultfd/seccomp refused\n";

/* getopt_long's '?' or ':' for the argument at argv[at], as one line and a
 * hint: glibc's own messages are several lines, and go to stderr only. */
static void bad_option(FILE *err, char **argv, int at, int c,
		       const struct option *opts)
{
	const char *a = argv[at];

	if (a && !strncmp(a, "--", 2)) {
		int n = (int)strcspn(a + 2, "="), hits = 0;
		for (const struct option *o = opts; o->name; o++) {
			if (strncmp(o->name, a + 2, (size_t)n))
				continue;
			if (strlen(o->name) == (size_t)n) {
				hits = 1; /* exact: no ambiguity */
				break;
			}
			hits++;
		}
		if (c == ':')
			fprintf(err, "vmrun: option '--%.*s' needs an argument", n, a + 2);
		else if (hits > 1)
			fprintf(err, "vmrun: ambiguous option '--%.*s'", n, a + 2);
		else if (hits == 1 && a[2 + n] == '=')
			fprintf(err, "vmrun: option '--%.*s' takes no argument", n, a + 2);
		else
			fprintf(err, "vmrun: unknown option '--%.*s'", n, a + 2);
	} else if (c == ':') {
		fprintf(err, "vmrun: option '-%c' needs an argument", optopt);
	} else {
		fprintf(err, "vmrun: unknown option '-%c'", optopt);
	}
	fprintf(err, "; try 'vmrun --help'\n");
}

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

int vmrun_check_privilege(FILE *err, unsigned long secure, uid_t uid,
			  uid_t euid, gid_t gid, gid_t egid)
{
	if (!secure && uid == euid && gid == egid)
		return -1;
	fprintf(err, "vmrun: refusing to run set-user-ID, set-group-ID or with "
		     "file capabilities (it creates files at the paths it is "
		     "given and runs any program): run it as its user\n");
	return EX_PRIVILEGED;
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
		{ "stats-interval", required_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct lp_config cfg;
	const char *json = NULL;
	int stats = 0, c;
	double interval = 0;
	uint64_t v;
	char *end;

	lp_config_init(&cfg);
	optind = 0; /* glibc: start afresh */
	opterr = 0; /* our own one-line messages (bad_option) */
	for (;;) {
		int at = optind ? optind : 1; /* the argument getopt looks at */
		if ((c = getopt_long(argc, argv, "+:m:f:p:s:t:hV", opts, NULL)) == -1)
			break;
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
			if (cfg.swap_max && cfg.swap_max < LP_PAGE_SIZE) {
				fprintf(err, "vmrun: --swap-max %s is less than one "
					"page (4K); 0 means no limit\n", optarg);
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
		case 'I':
			errno = 0;
			interval = strtod(optarg, &end);
			if (errno || *end || end == optarg ||
			    !(interval > 0 && interval <= 1e6)) {
				fprintf(err, "vmrun: bad number of seconds for "
					     "--stats-interval: '%s'\n", optarg);
				return EX_USAGE_;
			}
			stats = 1;
			break;
		case 'h':
			usage(out);
			return 0;
		case 'V':
			fprintf(out, "vmrun (lazypage) %s\n", lp_version());
			return 0;
		default:
			bad_option(err, argv, at, c, opts);
			return EX_USAGE_;
		}
	}
	if (optind >= argc) {
		fprintf(err, "vmrun: no program given; try 'vmrun --help'\n");
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
	o->stats_interval = interval;
	o->prog = optind;
	return -1;
}
