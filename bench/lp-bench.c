/* SPDX-License-Identifier: MIT */
/*
 * lp-bench: one benchmark case.  A generated workload (bench/workload.h)
 * is played on real memory — a lazypage region under a policy, plain
 * anonymous memory paged by the kernel in a memory cgroup, or the bare
 * userfaultfd floor — with the same budget, and replayed in the simulator
 * (exact and sampled hosts, Belady's MIN) on the same trace.  One CSV line
 * per case; bench/README.md explains every column.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lazypage/lazypage.h"
#include "access.h"
#include "floor.h"
#include "kernel.h"
#include "sim.h"
#include "workload.h"
#include "config.h" /* config_env_from: -z as LAZYPAGE_TIER */

static const char usage[] =
"usage: lp-bench [options]\n"
"Play one generated workload on real memory and print one CSV line:\n"
"paged by lazypage under a policy, by the kernel (memory cgroup + swap\n"
"file), or by the bare userfaultfd floor, with the simulator's misses and\n"
"Belady's MIN on the same trace.  Columns: bench/README.md.\n"
"\n"
"  -w NAME      workload: seq, loop, uniform, zipf0.8, zipf1.0, zipf1.2,\n"
"               hotscan, shift, or zipfA for any A > 0 (default zipf1.0)\n"
"  -n PAGES     working set of the workload (default 4096)\n"
"  -l LEN       accesses (default 20 * PAGES)\n"
"  -s SEED      seed of the workload and of the policies (default 1)\n"
"  -p TARGET    a lazypage policy (%s),\n"
"               kernel, or uffd (default clock)\n"
"  -b FRACTION  budget: this fraction of the pages the trace touches\n"
"               (default 0.25)\n"
"  -f FRAMES    budget in 4 KiB frames (instead of -b)\n"
"  -t THREADS   access threads; thread k makes accesses k, k + THREADS, ...\n"
"               of the one trace (default 1)\n"
"  -m MODE      read: the first touch of a page writes it, later ones read;\n"
"               rmw: every access also increments a word (default read)\n"
"  -r REF_SCAN  lazypage: reference-bit sampling per eviction (default: the\n"
"               runtime's, LAZYPAGE_REF_SCAN or 4)\n"
"  -R           lazypage: swap readahead on (default off, so that misses\n"
"               compare with the simulator's)\n"
"  -d DIR       directory of the swap files, lazypage's and the kernel's\n"
"               (default /var/tmp; must take swap files: ext4, xfs)\n"
"  -i REP       repetition number, copied to the rep column (default 1)\n"
"  -c RATIO     page content that compresses about RATIO to 1 (its first\n"
"               4096/RATIO bytes random, the rest zeros); default: zeros\n"
"               beyond the words the run checks (~60 to 1)\n"
"  -z TIER      lazypage: compressed tier lz4, zstd or none (default: the\n"
"               runtime's, LAZYPAGE_TIER or none)\n"
"  -Y SERVERS   lazypage: the remote store on Redis servers in the swap\n"
"               file's place, redis://host:port,... (default: LAZYPAGE_REMOTE)\n"
"  -S           leave the simulator columns empty (faster)\n"
"  -o FILE      also write the trace (little-endian uint64 page numbers,\n"
"               as lp-sim -t reads) and go on\n"
"  -H           print the CSV header first; alone: only the header\n"
"  -P, -W       list the policies, the default workloads, and exit\n"
"  -D           print the runtime's default policy (lp_config_init) and exit\n"
"  -h           this help\n"
"\n"
"Exit status: 0 the case ran (status ok), 77 skipped here (status skip,\n"
"e.g. kernel without root), 1 failed (status error), 2 bad usage.\n";

/* Attempts at a kernel case the OOM killer ends. */
#define KERNEL_TRIES 3

static const char header[] =
	"workload,pages,length,seed,distinct,target,frames,budget,threads,"
	"mode,readahead,ref_scan,rep,status,wall_s,accesses_per_s,misses,"
	"zero_faults,swapin_faults,reref_faults,wp_faults,readahead_pages,"
	"evictions,clean_drops,swap_outs,swap_read_bytes,swap_write_bytes,"
	"swapins_per_s,zero_p50_us,zero_p99_us,swapin_p50_us,swapin_p99_us,"
	"reref_p50_us,reref_p99_us,ref_sweeps,frame_waits,peak_frames,majflt,"
	"pswpin,pswpout,cg_base_kib,resident_end,sim_exact,sim_sampled,min,"
	"bad,ooms,obs_zero_p50_us,obs_zero_p99_us,obs_miss_p50_us,"
	"obs_miss_p99_us,obs_slow,queue_p50_us,device_p50_us,install_p50_us,"
	"handler_p50_us,queue_p99_us,device_p99_us,install_p99_us,"
	"handler_p99_us,content,tier,tier_faults,tier_stores,tier_writebacks,"
	"tier_bypasses,store,note";

struct opts {
	const char *workload, *target, *swap_dir, *dump, *mode;
	struct lp_workload_params wp;
	double budget;
	uint64_t frames;
	unsigned threads, ref_scan, rep, ratio;
	const char *tier, *remote;
	bool readahead, sim, header;
};

enum col {
	C_WORKLOAD, C_PAGES, C_LENGTH, C_SEED, C_DISTINCT, C_TARGET, C_FRAMES,
	C_BUDGET, C_THREADS, C_MODE, C_READAHEAD, C_REF_SCAN, C_REP, C_STATUS,
	C_WALL, C_APS, C_MISSES, C_ZERO, C_SWAPIN, C_REREF, C_WP, C_RA,
	C_EVICT, C_CLEAN, C_SWAPOUTS, C_SRB, C_SWB, C_SIPS, C_ZP50, C_ZP99,
	C_SP50, C_SP99, C_RP50, C_RP99, C_SWEEPS, C_WAITS, C_PEAK, C_MAJFLT,
	C_PSWPIN, C_PSWPOUT, C_CGBASE, C_RESIDENT, C_SIMX, C_SIMS, C_MIN,
	C_BAD, C_OOMS, C_OZP50, C_OZP99, C_OMP50, C_OMP99, C_OSLOW,
	C_PH50, C_PH99 = C_PH50 + LP_PHASES_MAX,
	C_CONTENT = C_PH99 + LP_PHASES_MAX, C_TIER, C_TFAULTS, C_TSTORES,
	C_TWB, C_TBYPASS, C_STORE, C_NCOLS
};

/* One value per column (empty stays empty in the CSV), and the note. */
struct row {
	char v[C_NCOLS][48];
	char note[256];
};

static void set(struct row *r, enum col c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set(struct row *r, enum col c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->v[c], sizeof(r->v[c]), fmt, ap);
	va_end(ap);
}

static void setu(struct row *r, enum col c, uint64_t v)
{
	set(r, c, "%" PRIu64, v);
}

static void setus(struct row *r, enum col c, uint64_t ns)
{
	set(r, c, "%.1f", (double)ns / 1000.0);
}

/* A later access at least this slow is counted in obs_slow: a cross-check
 * of the miss count, not what the quantiles use (see set_observed). */
#define SLOW_NS 20000.0

/*
 * The program-observed latencies.  Zero fills: every first touch (each is
 * one, for every target).  Misses: the `misses` slowest later accesses,
 * misses being the swap-ins the pager counted (the runtime's swap-in
 * faults, the kernel's major faults).  A swap-in waits for the device
 * (tens of microseconds at least) where every other later access is a hit
 * or a fault served from memory (a re-reference, a page read ahead, the
 * kernel's swap cache), so the slowest ones are the misses; no threshold
 * to guess per device, and exactly as many as the pager says.  (A thread
 * that waits for another thread's swap-in of the same page is one more
 * slow access than faults: the quantiles lean a little to the slow side
 * with threads.)
 */
static void set_observed(struct row *r, const struct bench_lat *l,
			 uint64_t misses)
{
	double npt = l->ns_per_tick;

	set(r, C_OZP50, "%.1f", bench_lat_quantile(l->first, npt, 0, 0.5) / 1e3);
	set(r, C_OZP99, "%.1f", bench_lat_quantile(l->first, npt, 0, 0.99) / 1e3);
	if (misses) {
		set(r, C_OMP50, "%.1f",
		    bench_lat_quantile(l->again, npt, misses, 0.5) / 1e3);
		set(r, C_OMP99, "%.1f",
		    bench_lat_quantile(l->again, npt, misses, 0.99) / 1e3);
	}
	setu(r, C_OSLOW, bench_lat_above(l->again, npt, SLOW_NS));
}

static void print_row(const struct row *r)
{
	for (int c = 0; c < C_NCOLS; c++)
		printf("%s,", r->v[c]);
	/* The note is free text: keep it one CSV field. */
	putchar('"');
	for (const char *s = r->note; *s; s++)
		putchar(*s == '"' ? '\'' : *s == '\n' ? ' ' : *s);
	printf("\"\n");
}

static int bad_usage(const char *what)
{
	fprintf(stderr, "lp-bench: %s (lp-bench -h for help)\n", what);
	return 2;
}

static int number(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end || *s == '-' ? -EINVAL : 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The simulator's columns: the target's policy (FIFO for the floor) on the
 * exact and sampled hosts, and MIN. */
static int simulate(const struct opts *o, const struct lp_trace *t,
		    uint32_t frames, unsigned ref_scan, struct row *r)
{
	const struct lp_policy_ops *ops = policy_find(o->target);
	struct lp_sim_result res;
	int rc;

	if (!strcmp(o->target, "uffd"))
		ops = policy_find("fifo");
	if (ops) {
		struct lp_sim_opts so = { .host = LP_SIM_EXACT,
					  .seed = o->wp.seed };
		rc = lp_sim_run(t, ops, frames, &so, &res);
		if (rc)
			return rc;
		setu(r, C_SIMX, res.misses);
		so.host = LP_SIM_SAMPLED;
		so.ref_scan = ref_scan;
		rc = lp_sim_run(t, ops, frames, &so, &res);
		if (rc)
			return rc;
		setu(r, C_SIMS, res.misses);
	}
	rc = lp_sim_min(t, frames, NULL, &res);
	if (rc)
		return rc;
	setu(r, C_MIN, res.misses);
	return 0;
}

static void common_rates(struct row *r, uint64_t n, uint64_t ns,
			 uint64_t swapped_in)
{
	double s = (double)ns / 1e9;

	set(r, C_WALL, "%.4f", s);
	set(r, C_APS, "%.0f", s > 0 ? (double)n / s : 0.0);
	set(r, C_SIPS, "%.0f", s > 0 ? (double)swapped_in / s : 0.0);
}

static bool refused(int rc)
{
	return rc == -EPERM || rc == -EACCES || rc == -ENOSYS;
}

/* A lazypage region under the policy. */
static int run_lazypage(const struct opts *o, struct bench_access *a,
			uint32_t frames, struct lp_config *cfg, struct row *r)
{
	struct bench_access_result ar;
	struct lp_stats st;
	struct lp_vm *vm;
	void *mem;
	int rc;

	cfg->frames = frames;
	cfg->policy = o->target;
	cfg->swap_path = o->swap_dir;
	rc = lp_vm_create(&vm, cfg);
	if (rc) {
		snprintf(r->note, sizeof(r->note), "lp_vm_create: %s%s",
			 strerror(-rc), refused(rc) ? " (userfaultfd refused "
			 "here: needs CAP_SYS_PTRACE or /dev/userfaultfd)" : "");
		return refused(rc) ? 77 : 1;
	}
	rc = lp_map_anon(vm, (size_t)a->npages * BENCH_PG,
			 PROT_READ | PROT_WRITE, &mem);
	if (rc) {
		snprintf(r->note, sizeof(r->note), "lp_map_anon: %s",
			 strerror(-rc));
		lp_vm_destroy(vm);
		return 1;
	}
	a->base = mem;
	rc = bench_access_run(a, &ar);
	if (rc) {
		snprintf(r->note, sizeof(r->note), "access threads: %s",
			 strerror(-rc));
		lp_vm_destroy(vm);
		return 1;
	}
	/* A fault is counted just after its thread was let go. */
	sleep_ms(2);
	lp_stats_get(vm, &st);
	uint64_t bad = ar.bad + bench_access_verify(a);
	lp_vm_destroy(vm);

	const uint64_t *f = st.faults;
	const struct lp_latency *l = st.latency;
	setu(r, C_MISSES, f[LP_FAULT_ZERO] + f[LP_FAULT_SWAPIN]);
	setu(r, C_ZERO, f[LP_FAULT_ZERO]);
	setu(r, C_SWAPIN, f[LP_FAULT_SWAPIN]);
	setu(r, C_REREF, f[LP_FAULT_REREF]);
	setu(r, C_WP, f[LP_FAULT_WP]);
	setu(r, C_RA, st.readahead_pages);
	setu(r, C_EVICT, st.evictions);
	setu(r, C_CLEAN, st.clean_drops);
	setu(r, C_SWAPOUTS, st.swap_outs);
	setu(r, C_SRB, st.swap_read_bytes);
	setu(r, C_SWB, st.swap_write_bytes);
	setus(r, C_ZP50, l[LP_FAULT_ZERO].p50_ns);
	setus(r, C_ZP99, l[LP_FAULT_ZERO].p99_ns);
	setus(r, C_SP50, l[LP_FAULT_SWAPIN].p50_ns);
	setus(r, C_SP99, l[LP_FAULT_SWAPIN].p99_ns);
	setus(r, C_RP50, l[LP_FAULT_REREF].p50_ns);
	setus(r, C_RP99, l[LP_FAULT_REREF].p99_ns);
	setu(r, C_SWEEPS, st.ref_sweeps);
	setu(r, C_WAITS, st.frame_waits);
	setu(r, C_PEAK, st.peak_frames);
	if (cfg->tier) {
		setu(r, C_TFAULTS, f[LP_FAULT_TIER]);
		setu(r, C_TSTORES, st.tier_stores);
		setu(r, C_TWB, st.tier_writebacks);
		setu(r, C_TBYPASS, st.tier_bypasses);
	}
	setu(r, C_BAD, bad);
	set_observed(r, &ar.lat, f[LP_FAULT_SWAPIN]);
	/* Zero until the fault path measures its phases: printed anyway. */
	for (int p = 0; p < LP_PHASES_MAX; p++) {
		setus(r, C_PH50 + p, st.miss_phase_p50_ns[p]);
		setus(r, C_PH99 + p, st.miss_phase_p99_ns[p]);
	}
	common_rates(r, a->n, ar.ns, st.swap_read_bytes / BENCH_PG);
	if (st.io_errors || st.swap_full || st.fill_errors)
		snprintf(r->note, sizeof(r->note),
			 "io_errors %" PRIu64 " swap_full %" PRIu64
			 " fill_errors %" PRIu64, st.io_errors, st.swap_full,
			 st.fill_errors);
	if (st.move_fixups)
		fprintf(stderr, "lp-bench: %s %s: %" PRIu64 " kernel moves "
				"corrected (lp_stats.move_fixups)\n",
			o->workload, o->target, st.move_fixups);
	if (bad) {
		snprintf(r->note, sizeof(r->note),
			 "%" PRIu64 " content errors: pages lost or mixed up",
			 bad);
		return 1;
	}
	return 0;
}

static int run_kernel(const struct opts *o, struct bench_access *a,
		      uint32_t frames, uint64_t distinct, struct row *r)
{
	struct kpage_result kr;
	struct kpage *k;
	int rc;

	rc = kpage_open(&k, o->swap_dir, a->npages * BENCH_PG, r->note,
			sizeof(r->note));
	if (rc)
		return rc == -EPERM || rc == -ENOENT ? 77 : 1;
	/* Under a tight limit the kernel's memory cgroup sometimes kills a
	 * child that swaps (its swap readahead cannot charge a page): try
	 * again, and say how often. */
	unsigned ooms = 0;
	for (;;) {
		rc = kpage_run_access(k, a, (uint64_t)frames * BENCH_PG, &kr,
				      r->note, sizeof(r->note));
		if (rc != -ECHILD || !WIFSIGNALED(kr.status) ||
		    WTERMSIG(kr.status) != SIGKILL || ++ooms == KERNEL_TRIES)
			break;
	}
	setu(r, C_OOMS, ooms);
	bool own = kpage_own_swap(k);
	kpage_close(k);
	if (rc)
		return 1;
	/* First touches are the kernel's zero fills, as lazypage's. */
	setu(r, C_MISSES, distinct + kr.majflt);
	setu(r, C_ZERO, distinct);
	setu(r, C_SWAPIN, kr.majflt);
	setu(r, C_RA, kr.pswpin > kr.majflt ? kr.pswpin - kr.majflt : 0);
	setu(r, C_SWAPOUTS, kr.pswpout);
	setu(r, C_SRB, kr.pswpin * BENCH_PG);
	setu(r, C_SWB, kr.pswpout * BENCH_PG);
	setu(r, C_MAJFLT, kr.majflt);
	setu(r, C_PSWPIN, kr.pswpin);
	setu(r, C_PSWPOUT, kr.pswpout);
	setu(r, C_CGBASE, kr.base_bytes / 1024);
	setu(r, C_RESIDENT, kr.resident);
	setu(r, C_BAD, kr.bad);
	set_observed(r, &kr.lat, kr.majflt);
	common_rates(r, a->n, kr.ns, kr.pswpin);
	snprintf(r->note, sizeof(r->note),
		 "cgroup limit %" PRIu64 " KiB, peak %" PRIu64 " KiB; %s%s",
		 kr.limit_bytes / 1024, kr.peak_bytes / 1024,
		 own ? "own swap file" : "swap on already",
		 ooms ? "; OOM-killed before, tried again" : "");
	if (kr.bad) {
		snprintf(r->note, sizeof(r->note), "%" PRIu64 " content errors",
			 kr.bad);
		return 1;
	}
	return 0;
}

static int run_floor(struct bench_access *a, uint32_t frames, struct row *r)
{
	struct bench_access_result ar;
	struct floor_result fr;
	int rc;

	a->keep = false;
	rc = floor_run(a, frames, &ar, &fr);
	if (rc) {
		snprintf(r->note, sizeof(r->note), "userfaultfd floor: %s%s",
			 strerror(-rc), refused(rc) ? " (userfaultfd refused "
			 "here)" : "");
		return refused(rc) ? 77 : 1;
	}
	setu(r, C_MISSES, fr.faults);
	setu(r, C_ZERO, fr.faults);
	setu(r, C_SWAPIN, 0);
	setu(r, C_EVICT, fr.evictions);
	setu(r, C_CLEAN, fr.evictions);
	setus(r, C_ZP50, fr.p50_ns);
	setus(r, C_ZP99, fr.p99_ns);
	setu(r, C_PEAK, fr.peak);
	setu(r, C_BAD, ar.bad);
	set_observed(r, &ar.lat, 0);
	common_rates(r, a->n, ar.ns, 0);
	return 0;
}

static const char *tier_value(const char *name, void *arg)
{
	return strcmp(name, "LAZYPAGE_TIER") ? NULL : arg;
}

/* -z NAME into cfg as LAZYPAGE_TIER=NAME would: the runtime's own names.
 * 0 or -EINVAL. */
static int tier_apply(const char *name, struct lp_config *cfg)
{
	return config_env_from(cfg, NULL, tier_value, (void *)name);
}

static int parse(int argc, char **argv, struct opts *o)
{
	uint64_t v;
	int c;

	*o = (struct opts){
		.workload = "zipf1.0", .target = "clock",
		.swap_dir = "/var/tmp", .mode = "read",
		.wp = { .pages = 4096, .seed = 1 },
		.budget = 0.25, .threads = 1, .rep = 1, .sim = true,
	};
	while ((c = getopt(argc, argv, "w:n:l:s:p:b:f:t:m:r:Rd:i:c:z:Y:So:HPWDh")) != -1) {
		switch (c) {
		case 'w': o->workload = optarg; break;
		case 'p': o->target = optarg; break;
		case 'm': o->mode = optarg; break;
		case 'd': o->swap_dir = optarg; break;
		case 'o': o->dump = optarg; break;
		case 'z': {
			struct lp_config t;
			lp_config_init(&t);
			o->tier = optarg;
			if (tier_apply(optarg, &t))
				return bad_usage("-z takes lz4, zstd or none");
			break;
		}
		case 'Y': o->remote = optarg; break;
		case 'R': o->readahead = true; break;
		case 'S': o->sim = false; break;
		case 'H': o->header = true; break;
		case 'b': {
			char *end;
			o->budget = strtod(optarg, &end);
			if (end == optarg || *end || !(o->budget > 0) ||
			    o->budget > 1)
				return bad_usage("-b takes a fraction in (0, 1]");
			break;
		}
		case 'n': case 'l': case 's': case 'f': case 't': case 'r':
		case 'i': case 'c':
			if (number(optarg, &v))
				return bad_usage("a number expected");
			if (c == 'n')
				o->wp.pages = v;
			else if (c == 'l')
				o->wp.length = v;
			else if (c == 's')
				o->wp.seed = v;
			else if (c == 'f')
				o->frames = v;
			else if (c == 't')
				o->threads = (unsigned)v;
			else if (c == 'r')
				o->ref_scan = (unsigned)v;
			else if (c == 'c')
				o->ratio = (unsigned)(v ? v : 1);
			else
				o->rep = (unsigned)v;
			break;
		case 'D': {
			struct lp_config dc;
			lp_config_init(&dc);
			printf("%s\n", dc.policy ? dc.policy : "clock");
			exit(0);
		}
		case 'P':
		case 'W': {
			const char *const *n = c == 'P' ? lp_policy_names()
							: lp_workload_names();
			for (; *n; n++)
				printf("%s\n", *n);
			exit(0);
		}
		case 'h': {
			char names[256] = "";
			for (const char *const *n = lp_policy_names(); *n; n++) {
				if (names[0])
					strncat(names, ", ", sizeof(names) -
						strlen(names) - 1);
				strncat(names, *n, sizeof(names) -
					strlen(names) - 1);
			}
			printf(usage, names);
			exit(0);
		}
		default:
			return 2;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected arguments");
	if (strcmp(o->mode, "read") && strcmp(o->mode, "rmw"))
		return bad_usage("-m is read or rmw");
	if (o->threads < 1 || o->threads > BENCH_MAX_THREADS)
		return bad_usage("-t is 1 to 64");
	if (strcmp(o->target, "kernel") && strcmp(o->target, "uffd") &&
	    !policy_find(o->target))
		return bad_usage("unknown -p target (a policy, kernel or uffd)");
	if (o->frames && (o->frames < LP_MIN_FRAMES || o->frames >= UINT32_MAX))
		return bad_usage("-f out of range");
	if (!o->wp.length)
		o->wp.length = 20 * o->wp.pages;
	if (o->wp.length >= UINT32_MAX)
		return bad_usage("-l too large");
	return 0;
}

/* The row's columns that say what runs: the case, before any result. */
static void describe(struct row *r, const struct opts *o,
		     const struct lp_trace *t, uint32_t frames,
		     const struct lp_config *cfg, unsigned ref_scan,
		     bool lazypage)
{
	memset(r, 0, sizeof(*r));
	set(r, C_WORKLOAD, "%s", o->workload);
	setu(r, C_PAGES, o->wp.pages);
	setu(r, C_LENGTH, o->wp.length);
	setu(r, C_SEED, o->wp.seed);
	setu(r, C_DISTINCT, t->npages);
	set(r, C_TARGET, "%s", o->target);
	setu(r, C_FRAMES, frames);
	set(r, C_BUDGET, "%.4f", (double)frames / (double)t->npages);
	setu(r, C_THREADS, o->threads);
	set(r, C_MODE, "%s", o->mode);
	set(r, C_READAHEAD, "%s", !lazypage ? "" :
	    cfg->flags & LP_CFG_NO_READAHEAD ? "off" : "on");
	if (lazypage)
		setu(r, C_REF_SCAN, ref_scan);
	setu(r, C_REP, o->rep);
	if (o->ratio)
		setu(r, C_CONTENT, o->ratio);
	if (lazypage)
		set(r, C_TIER, "%s", cfg->tier == LP_TIER_LZ4 ? "lz4" :
		    cfg->tier == LP_TIER_ZSTD ? "zstd" : "none");
	if (lazypage)
		set(r, C_STORE, "%s", cfg->remote ? "remote" : "file");
}

int main(int argc, char **argv)
{
	struct opts o;
	struct row r;
	struct lp_trace t;
	uint64_t *pages = NULL;
	uint32_t *trace = NULL;
	uint8_t *seen = NULL;
	int rc = parse(argc, argv, &o), status = 1;

	if (rc)
		return rc;
	if (o.header) {
		printf("%s\n", header);
		if (argc == 2)
			return 0;
	}
	rc = lp_workload_trace(o.workload, &o.wp, &pages);
	if (rc)
		return bad_usage(rc == -EINVAL ? "unknown -w workload, or -n out "
				 "of range" : "no memory for the trace");
	if (o.dump && (rc = lp_trace_save(o.dump, pages, o.wp.length))) {
		fprintf(stderr, "lp-bench: %s: %s\n", o.dump, strerror(-rc));
		free(pages);
		return 1;
	}
	rc = lp_trace_prepare(&t, pages, o.wp.length);
	if (rc) {
		fprintf(stderr, "lp-bench: trace: %s\n", strerror(-rc));
		free(pages);
		return 1;
	}
	uint64_t npages = 0;
	trace = malloc(o.wp.length * sizeof(*trace));
	for (uint64_t i = 0; trace && i < o.wp.length; i++) {
		trace[i] = (uint32_t)pages[i];
		if (pages[i] >= npages)
			npages = pages[i] + 1;
	}
	seen = calloc(npages ? npages : 1, 1);
	if (!trace || !seen || npages >= UINT32_MAX) {
		fprintf(stderr, "lp-bench: no memory for the trace\n");
		goto out;
	}
	uint32_t frames = o.frames ? (uint32_t)o.frames :
		(uint32_t)llround(o.budget * (double)t.npages);
	if (frames < LP_MIN_FRAMES)
		frames = LP_MIN_FRAMES;

	struct lp_config cfg;
	lp_config_init(&cfg);
	if (o.ref_scan)
		cfg.ref_scan = o.ref_scan;
	if (o.tier)
		(void)tier_apply(o.tier, &cfg);
	if (o.remote)
		cfg.remote = o.remote;
	if (!o.readahead)
		cfg.flags |= LP_CFG_NO_READAHEAD;
	unsigned ref_scan = cfg.ref_scan ? cfg.ref_scan : 4;
	bool lazypage = policy_find(o.target) != NULL;

	describe(&r, &o, &t, frames, &cfg, ref_scan, lazypage);
	if (o.sim && (rc = simulate(&o, &t, frames, ref_scan, &r))) {
		fprintf(stderr, "lp-bench: simulator: %s\n", strerror(-rc));
		goto out;
	}

	struct bench_access a = {
		.npages = npages, .trace = trace, .n = o.wp.length,
		.threads = o.threads, .rmw = !strcmp(o.mode, "rmw"),
		.keep = true, .seen = seen, .ratio = o.ratio,
	};
	if (lazypage)
		status = run_lazypage(&o, &a, frames, &cfg, &r);
	else if (!strcmp(o.target, "kernel"))
		status = run_kernel(&o, &a, frames, t.npages, &r);
	else
		status = run_floor(&a, frames, &r);
	set(&r, C_STATUS, "%s", status == 0 ? "ok" :
	    status == 77 ? "skip" : "error");
	print_row(&r);
	if (status)
		fprintf(stderr, "lp-bench: %s %s: %s\n", o.workload, o.target,
			r.note);
out:
	lp_trace_release(&t);
	free(pages);
	free(trace);
	free(seen);
	return status;
}
