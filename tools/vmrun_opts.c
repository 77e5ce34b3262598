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
	"      --mem-per-process  the cap is each process's (default: the cap is\n"
	"                         shared by every program the run executes)\n"
	"  -p, --policy NAME      eviction policy (%s)\n"
	"  -s, --swap PATH        directory for the swap file, or the path of a new\n"
	"                         file (an existing non-directory is refused); the\n"
	"                         file is unnamed at once, nothing is left behind\n"
	"      --swap-max SIZE    largest swap file\n"
	"      --tier NAME        compressed tier in front of swap, inside the cap:\n"
	"                         lz4, zstd or none\n"
	"      --tier-share PCT   the tier's largest share of the cap (default 50)\n"
	"      --remote URLS      Redis servers in the swap file's place, or behind\n"
	"                         it with --swap-max (once the file is full):\n"
	"                         redis://host:port,host:port,... (password from\n"
	"                         LAZYPAGE_REMOTE_AUTH or LAZYPAGE_REMOTE_AUTH_FILE)\n"
	"      --replicas N       copies of each remote page (default 2)\n"
	"      --encrypt-swap     encrypt swapped pages (random key per run)\n"
	"      --verify           checksum pages out and in, report mismatches\n"
	"  -t, --threads N        fault-handler threads (default: one per CPU)\n"
	"      --stats            print statistics on stderr at exit (and on SIGUSR1)\n"
	"      --stats-interval S also every S seconds while the program runs\n"
	"      --stats-json FILE  write statistics as JSON to FILE at exit (- : stdout;\n"
	"                         a symbolic link is refused)\n"
	"  -h, --help             this help\n"
	"  -V, --version          version\n"
	"\n"
	"LAZYPAGE_* environment variables set defaults (see the README).\n"
	"\n"
	"Exit status: the program's (128 + N when it died of signal N, which\n"
	"vmrun then raises on itself), or one of vmrun's own:\n"
	"   64  bad command line or LAZYPAGE_* variable\n"
	"   65  not an ELF program           71  internal error of the pager\n"
	"   66  corrupt or truncated ELF     73  swap file or remote store unusable\n"
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

static const struct option opts[] = {
	{ "mem", required_argument, NULL, 'm' },
	{ "frames", required_argument, NULL, 'f' },
	{ "policy", required_argument, NULL, 'p' },
	{ "swap", required_argument, NULL, 's' },
	{ "swap-max", required_argument, NULL, 'S' },
	{ "threads", required_argument, NULL, 't' },
	{ "stats", no_argument, NULL, 'x' },
	{ "encrypt-swap", no_argument, NULL, 'E' },
	{ "tier", required_argument, NULL, 'T' },
	{ "tier-share", required_argument, NULL, 'P' },
	{ "verify", no_argument, NULL, 'v' },
	{ "remote", required_argument, NULL, 'R' },
	{ "replicas", required_argument, NULL, 'Q' },
	{ "mem-per-process", no_argument, NULL, 'M' },
	{ "stats-json", required_argument, NULL, 'j' },
	{ "stats-interval", required_argument, NULL, 'I' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* A whole number of at most max for --name: 0, or -1 after a message. */
static int parse_count(const char *name, const char *arg, uint64_t max,
		       uint64_t *v, FILE *err)
{
	char *end;

	errno = 0;
	*v = strtoull(arg, &end, 10);
	if (errno || *end || arg[0] == '-' || *v > max) {
		fprintf(err, "vmrun: bad number for --%s: '%s'\n", name, arg);
		return -1;
	}
	return 0;
}

/* The sizes: --mem into frames, --swap-max.  0, or -1 after a message. */
static int parse_size(int c, const char *arg, struct lp_config *cfg, FILE *err)
{
	uint64_t v;

	if (c == 'm') {
		if (lp_parse_size(arg, &v) || v / LP_PAGE_SIZE > UINT32_MAX / 2) {
			fprintf(err, "vmrun: bad size for --mem: '%s'\n", arg);
			return -1;
		}
		cfg->frames = (size_t)(v / LP_PAGE_SIZE);
		if (v && !cfg->frames)
			cfg->frames = 1; /* too small: said by lp_spawn */
		return 0;
	}
	if (lp_parse_size(arg, &cfg->swap_max)) {
		fprintf(err, "vmrun: bad size for --swap-max: '%s'\n", arg);
		return -1;
	}
	if (cfg->swap_max && cfg->swap_max < LP_PAGE_SIZE) {
		fprintf(err, "vmrun: --swap-max %s is less than one "
			"page (4K); 0 means no limit\n", arg);
		return -1;
	}
	return 0;
}

/* One option (getopt_long's c, for argv[at]) into o: -1 to go on, else
 * what vmrun_parse returns. */
static int parse_option(int c, char **argv, int at, struct vmrun_opts *o,
			FILE *out, FILE *err)
{
	uint64_t v;
	char *end;

	switch (c) {
	case 'm':
	case 'S':
		return parse_size(c, optarg, &o->cfg, err) ? EX_USAGE_ : -1;
	case 'f':
		if (parse_count("frames", optarg, UINT32_MAX / 2, &v, err))
			return EX_USAGE_;
		o->cfg.frames = (size_t)v;
		return -1;
	case 't':
		if (parse_count("threads", optarg, 64, &v, err))
			return EX_USAGE_;
		o->cfg.threads = (unsigned)v;
		return -1;
	case 'p':
		o->cfg.policy = optarg;
		return -1;
	case 's':
		o->cfg.swap_path = optarg;
		return -1;
	case 'x':
		o->stats = 1;
		return -1;
	case 'E':
		o->cfg.flags |= LP_CFG_ENCRYPT_SWAP;
		return -1;
	case 'T':
		if (!strcmp(optarg, "none"))
			o->cfg.tier = LP_TIER_NONE;
		else if (!strcmp(optarg, "lz4"))
			o->cfg.tier = LP_TIER_LZ4;
		else if (!strcmp(optarg, "zstd"))
			o->cfg.tier = LP_TIER_ZSTD;
		else {
			fprintf(err, "vmrun: unknown tier '%s' (lz4, zstd or "
				     "none)\n", optarg);
			return EX_USAGE_;
		}
		return -1;
	case 'P':
		if (parse_count("tier-share", optarg, 90, &v, err))
			return EX_USAGE_;
		if (!v) {
			fprintf(err, "vmrun: --tier-share is a percentage "
				     "from 1 to 90\n");
			return EX_USAGE_;
		}
		o->cfg.tier_share = (unsigned)v;
		return -1;
	case 'v':
		o->cfg.flags |= LP_CFG_VERIFY;
		return -1;
	case 'R':
		o->cfg.remote = *optarg ? optarg : NULL;
		return -1;
	case 'Q':
		if (parse_count("replicas", optarg, 16, &v, err))
			return EX_USAGE_;
		o->cfg.remote_replicas = (unsigned)v;
		return -1;
	case 'M':
		o->cfg.flags |= LP_CFG_MEM_PER_PROCESS;
		return -1;
	case 'j':
		o->json = optarg;
		return -1;
	case 'I':
		errno = 0;
		o->stats_interval = strtod(optarg, &end);
		if (errno || *end || end == optarg ||
		    !(o->stats_interval > 0 && o->stats_interval <= 1e6)) {
			fprintf(err, "vmrun: bad number of seconds for "
				     "--stats-interval: '%s'\n", optarg);
			return EX_USAGE_;
		}
		o->stats = 1;
		return -1;
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

int vmrun_parse(int argc, char **argv, struct vmrun_opts *o, FILE *out,
		FILE *err)
{
	struct vmrun_opts n = { 0 }; /* o is left alone unless it runs */
	bool known = false;
	int c, rc;

	lp_config_init(&n.cfg);
	optind = 0; /* glibc: start afresh */
	opterr = 0; /* our own one-line messages (bad_option) */
	for (;;) {
		int at = optind ? optind : 1; /* the argument getopt looks at */
		if ((c = getopt_long(argc, argv, "+:m:f:p:s:t:hV", opts, NULL)) == -1)
			break;
		if ((rc = parse_option(c, argv, at, &n, out, err)) >= 0)
			return rc;
	}
	if (optind >= argc) {
		fprintf(err, "vmrun: no program given; try 'vmrun --help'\n");
		return EX_USAGE_;
	}
	for (const char *const *p = lp_policy_names(); *p; p++)
		known |= !strcmp(*p, n.cfg.policy);
	if (!known) {
		fprintf(err, "vmrun: unknown policy '%s' (vmrun --help lists them)\n",
			n.cfg.policy);
		return EX_USAGE_;
	}
	n.prog = optind;
	*o = n;
	return -1;
}
