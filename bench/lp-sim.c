/* SPDX-License-Identifier: MIT */
/*
 * lp-sim: replay page traces under eviction policies and print CSV,
 *   workload,policy,frames,accesses,misses,miss_ratio
 * one line per workload, policy and frame count.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lazypage/lazypage.h"
#include "sim.h"
#include "workload.h"

#define MAXN 64

static const char usage[] =
"usage: lp-sim [options]\n"
"Replay page traces under eviction policies; print CSV\n"
"  workload,policy,frames,accesses,misses,miss_ratio\n"
"\n"
"  -w LIST    generated workloads, comma-separated (default: all of\n"
"             seq,loop,uniform,zipf0.8,zipf1.0,zipf1.2,hotscan,shift;\n"
"             zipfA takes any exponent A > 0)\n"
"  -t FILE    a trace: little-endian uint64 page numbers (repeatable);\n"
"             replaces the generated workloads\n"
"  -p LIST    policies, comma-separated; min is Belady's MIN; all (default)\n"
"             is every policy and min\n"
"  -f LIST    frame counts, comma-separated (default: 1/8, 1/4 and 1/2 of\n"
"             the distinct pages of each trace)\n"
"  -n PAGES   working set of the generated workloads (default 4096)\n"
"  -l LEN     accesses per generated workload (default 20 * PAGES)\n"
"  -s SEED    seed of the workloads and policies (default 1)\n"
"  -H HOST    exact (default): the policy sees every access; sampled: the\n"
"             runtime's view (uses seen only after a cleared reference bit,\n"
"             REF_SCAN clears per eviction, frames freed ahead in bursts\n"
"             above a reserve); adds the columns hits_seen,clears\n"
"  -r REF_SCAN  clears per eviction with -H sampled (default 4)\n"
"  -o FILE    write the generated workload (one -w) as a trace and exit\n"
"  -h         this help\n";

struct opts {
	const char *wl[MAXN];
	const char *trace[MAXN];
	const char *pol[MAXN];
	uint32_t frames[MAXN];
	unsigned nwl, ntrace, npol, nframes;
	struct lp_workload_params wp;
	struct lp_sim_opts so;
	const char *dump;
};

static int die(const char *what, int err)
{
	fprintf(stderr, "lp-sim: %s: %s\n", what, strerror(err));
	return 1;
}

/* Split a comma-separated list in place. */
static int split(char *s, const char **v, unsigned *n)
{
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (*n == MAXN)
			return -E2BIG;
		v[(*n)++] = tok;
	}
	return 0;
}

static int number(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end || *s == '-' ? -EINVAL : 0;
}

static int run(const struct opts *o, const char *name, const uint64_t *pages,
	       size_t n)
{
	struct lp_trace t;
	uint32_t dflt[3], *frames = (uint32_t *)o->frames;
	unsigned nframes = o->nframes;
	int rc = lp_trace_prepare(&t, pages, n);

	if (rc)
		return die(name, -rc);
	if (!nframes) {
		for (unsigned k = 0; k < 3; k++)
			dflt[k] = t.npages >> (3 - k) ? t.npages >> (3 - k) : 1;
		frames = dflt;
		nframes = 3;
	}
	for (unsigned p = 0; p < o->npol; p++) {
		for (unsigned k = 0; k < nframes; k++) {
			struct lp_sim_result r;
			if (!strcmp(o->pol[p], "min"))
				rc = lp_sim_min(&t, frames[k], NULL, &r);
			else
				rc = lp_sim_run(&t, policy_find(o->pol[p]),
						frames[k], &o->so, &r);
			if (rc) {
				lp_trace_release(&t);
				return die(o->pol[p], -rc);
			}
			printf("%s,%s,%" PRIu32 ",%" PRIu64 ",%" PRIu64 ",%.6f",
			       name, o->pol[p], frames[k], r.accesses,
			       r.misses, r.accesses ?
			       (double)r.misses / (double)r.accesses : 0.0);
			if (o->so.host == LP_SIM_SAMPLED)
				printf(",%" PRIu64 ",%" PRIu64, r.hits_seen,
				       r.clears);
			printf("\n");
		}
	}
	lp_trace_release(&t);
	return 0;
}

/* The command line into o, defaults filled in: -1 to go on, else the exit
 * status (usage, or -h). */
static int parse(int argc, char **argv, struct opts *o)
{
	uint64_t v;
	int c;

	while ((c = getopt(argc, argv, "w:t:p:f:n:l:s:H:r:o:h")) != -1) {
		switch (c) {
		case 'w':
			if (split(optarg, o->wl, &o->nwl))
				return die("-w", E2BIG);
			break;
		case 't':
			if (o->ntrace == MAXN)
				return die("-t", E2BIG);
			o->trace[o->ntrace++] = optarg;
			break;
		case 'p':
			if (split(optarg, o->pol, &o->npol))
				return die("-p", E2BIG);
			break;
		case 'f': {
			const char *f[MAXN];
			unsigned nf = 0;
			if (split(optarg, f, &nf))
				return die("-f", E2BIG);
			for (unsigned k = 0; k < nf; k++) {
				if (number(f[k], &v) || !v || v >= UINT32_MAX)
					return die(f[k], EINVAL);
				o->frames[o->nframes++] = (uint32_t)v;
			}
			break;
		}
		case 'n':
		case 'l':
		case 's':
		case 'r':
			if (number(optarg, &v))
				return die(optarg, EINVAL);
			if (c == 'n')
				o->wp.pages = v;
			else if (c == 'l')
				o->wp.length = v;
			else if (c == 's')
				o->wp.seed = o->so.seed = v;
			else
				o->so.ref_scan = (unsigned)v;
			break;
		case 'H':
			if (!strcmp(optarg, "sampled"))
				o->so.host = LP_SIM_SAMPLED;
			else if (strcmp(optarg, "exact"))
				return die(optarg, EINVAL);
			break;
		case 'o':
			o->dump = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (!o->so.seed)
		o->so.seed = o->wp.seed;
	if (!o->wp.length)
		o->wp.length = 20 * o->wp.pages;
	if (!o->nwl)
		for (const char *const *n = lp_workload_names(); *n; n++)
			o->wl[o->nwl++] = *n;
	return -1;
}

/* -o: write the one workload's trace. */
static int dump(const struct opts *o)
{
	uint64_t *t;
	int rc;

	if (o->nwl != 1)
		return die("-o needs exactly one -w workload", EINVAL);
	rc = lp_workload_trace(o->wl[0], &o->wp, &t);
	if (rc)
		return die(o->wl[0], -rc);
	rc = lp_trace_save(o->dump, t, o->wp.length);
	free(t);
	return rc ? die(o->dump, -rc) : 0;
}

/* The policies ("all" or none: every one and MIN) and the workloads
 * known: 0, or 1 with a message. */
static int check_names(struct opts *o)
{
	const char *const *names;

	if (!o->npol || (o->npol == 1 && !strcmp(o->pol[0], "all"))) {
		o->npol = 0;
		for (names = lp_policy_names(); *names; names++)
			o->pol[o->npol++] = *names;
		o->pol[o->npol++] = "min";
	}
	for (unsigned p = 0; p < o->npol; p++) {
		if (strcmp(o->pol[p], "min") && !policy_find(o->pol[p])) {
			fprintf(stderr, "lp-sim: unknown policy %s; known:",
				o->pol[p]);
			for (names = lp_policy_names(); *names; names++)
				fprintf(stderr, " %s", *names);
			fprintf(stderr, " min\n");
			return 1;
		}
	}
	for (unsigned k = 0; k < o->nwl && !o->ntrace; k++) {
		struct lp_workload *w;
		if (lp_workload_create(&w, o->wl[k], &o->wp)) {
			fprintf(stderr, "lp-sim: unknown workload %s, or -n out "
				"of range\n", o->wl[k]);
			return 1;
		}
		lp_workload_destroy(w);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .wp = { .pages = 4096, .seed = 1 } };
	int rc = parse(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (o.dump)
		return dump(&o);
	if (check_names(&o))
		return 1;

	printf("workload,policy,frames,accesses,misses,miss_ratio%s\n",
	       o.so.host == LP_SIM_SAMPLED ? ",hits_seen,clears" : "");
	for (unsigned k = 0; k < o.ntrace; k++) {
		uint64_t *t = NULL;
		size_t n = 0;

		rc = lp_trace_load(o.trace[k], &t, &n);
		if (rc)
			return die(o.trace[k], -rc);
		const char *base = strrchr(o.trace[k], '/');
		rc = run(&o, base ? base + 1 : o.trace[k], t, n);
		free(t);
		if (rc)
			return rc;
	}
	for (unsigned k = 0; k < o.nwl && !o.ntrace; k++) {
		uint64_t *t;

		rc = lp_workload_trace(o.wl[k], &o.wp, &t);
		if (rc)
			return die(o.wl[k], -rc);
		rc = run(&o, o.wl[k], t, o.wp.length);
		free(t);
		if (rc)
			return rc;
	}
	return 0;
}
