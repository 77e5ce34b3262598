/* SPDX-License-Identifier: MIT */
/* Statistics: per-thread blocks, histograms, and the printer. */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

unsigned hist_bucket(uint64_t ns)
{
	if (ns < 16)
		return (unsigned)ns;
	unsigned exp = 63u - (unsigned)__builtin_clzll(ns); /* >= 4 */
	unsigned sub = (unsigned)(ns >> (exp - 4)) & (HIST_SUB - 1);
	unsigned b = 16u + (exp - 4) * HIST_SUB + sub;
	return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* A representative value of a bucket: the middle of its range. */
uint64_t hist_value(unsigned b)
{
	if (b < 16)
		return b;
	unsigned exp = (b - 16) / HIST_SUB + 4, sub = (b - 16) % HIST_SUB;
	uint64_t lo = ((uint64_t)(HIST_SUB + sub)) << (exp - 4);
	uint64_t width = (uint64_t)1 << (exp - 4);
	return lo + width / 2;
}

void st_fault(struct lp_tstats *t, enum lp_fault_kind kind, uint64_t ns)
{
	atomic_fetch_add_explicit(&t->faults[kind], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->lat_sum[kind], ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->hist[kind][hist_bucket(ns)], 1,
				  memory_order_relaxed);
	uint64_t m = atomic_load_explicit(&t->lat_max[kind], memory_order_relaxed);
	while (ns > m && !atomic_compare_exchange_weak_explicit(
				 &t->lat_max[kind], &m, ns, memory_order_relaxed,
				 memory_order_relaxed))
		;
}

static uint64_t ld(const atomic_uint_least64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static uint64_t pct(const uint64_t *h, uint64_t count, double q)
{
	uint64_t want = (uint64_t)((double)count * q + 0.5), seen = 0;

	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += h[b];
		if (seen >= want)
			return hist_value(b);
	}
	return 0;
}

/* lp_stats has room for LP_FAULT_KINDS_MAX kinds: a kind beyond it would
 * change the public struct's layout (see the header). */
_Static_assert(LP_FAULT_KINDS <= LP_FAULT_KINDS_MAX,
	       "lp_stats has no room for another fault kind");

static void add_to(atomic_uint_least64_t *to, const atomic_uint_least64_t *from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_fetch_add_explicit(&to[i], ld(&from[i]), memory_order_relaxed);
}

void st_fold(struct lp_tstats *into, const struct lp_tstats *from)
{
	add_to(into->c, from->c, C_NCOUNTERS);
	add_to(into->faults, from->faults, LP_FAULT_KINDS);
	add_to(into->lat_sum, from->lat_sum, LP_FAULT_KINDS);
	for (unsigned k = 0; k < LP_FAULT_KINDS; k++) {
		uint64_t m = ld(&from->lat_max[k]), cur = ld(&into->lat_max[k]);
		while (m > cur && !atomic_compare_exchange_weak(&into->lat_max[k], &cur, m))
			;
		add_to(into->hist[k], from->hist[k], HIST_BUCKETS);
	}
	for (unsigned p = 0; p < LP_PHASES_MAX; p++)
		add_to(into->phase[p], from->phase[p], HIST_BUCKETS);
}

void st_sum(struct lp_tstats *const *blocks, unsigned n, struct lp_stats *st)
{
	uint64_t c[C_NCOUNTERS] = { 0 };
	uint64_t sum[LP_FAULT_KINDS] = { 0 };
	uint64_t local[HIST_BUCKETS];

	st->fault_kinds = LP_FAULT_KINDS;
	for (unsigned k = 0; k < LP_FAULT_KINDS; k++) {
		uint64_t count = 0, max = 0;
		memset(local, 0, sizeof(local));
		for (unsigned i = 0; i < n; i++) {
			const struct lp_tstats *t = blocks[i];
			count += ld(&t->faults[k]);
			sum[k] += ld(&t->lat_sum[k]);
			uint64_t m = ld(&t->lat_max[k]);
			if (m > max)
				max = m;
			for (unsigned b = 0; b < HIST_BUCKETS; b++)
				local[b] += ld(&t->hist[k][b]);
		}
		st->faults[k] = count;
		struct lp_latency *l = &st->latency[k];
		l->count = count;
		l->mean_ns = count ? sum[k] / count : 0;
		l->p50_ns = count ? pct(local, count, 0.50) : 0;
		l->p90_ns = count ? pct(local, count, 0.90) : 0;
		l->p99_ns = count ? pct(local, count, 0.99) : 0;
		l->max_ns = max;
	}
	for (unsigned p = 0; p < LP_PHASES_MAX; p++) {
		uint64_t count = 0;
		memset(local, 0, sizeof(local));
		for (unsigned i = 0; i < n; i++)
			for (unsigned b = 0; b < HIST_BUCKETS; b++)
				local[b] += ld(&blocks[i]->phase[p][b]);
		for (unsigned b = 0; b < HIST_BUCKETS; b++)
			count += local[b];
		st->miss_phase_p50_ns[p] = count ? pct(local, count, 0.50) : 0;
		st->miss_phase_p99_ns[p] = count ? pct(local, count, 0.99) : 0;
	}
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < C_NCOUNTERS; k++)
			c[k] += ld(&blocks[i]->c[k]);
	st->readahead_pages = c[C_READAHEAD];
	st->evictions = c[C_EVICT];
	st->clean_drops = c[C_CLEAN_DROP];
	st->swap_outs = c[C_SWAP_OUT];
	st->file_writebacks = c[C_FILE_WB];
	st->ref_sweeps = c[C_REF_SWEEP];
	st->swap_read_bytes = c[C_SWAP_RB];
	st->swap_write_bytes = c[C_SWAP_WB];
	st->file_read_bytes = c[C_FILE_RB];
	st->file_write_bytes = c[C_FILE_WBB];
	st->io_errors = c[C_IO_ERR];
	st->swap_full = c[C_SWAP_FULL];
	st->fill_errors = c[C_FILL_ERR];
	st->frame_waits = c[C_FRAME_WAIT];
	st->move_fixups = c[C_MOVE_FIXUP];
}

static const char *const kind_names[LP_FAULT_KINDS] = {
	"zero", "file", "init", "swapin", "reref", "wp", "tier",
};

const char *lp_fault_kind_name(enum lp_fault_kind kind)
{
	return (unsigned)kind < LP_FAULT_KINDS ? kind_names[kind] : "?";
}

static void human(char *out, size_t n, uint64_t bytes)
{
	const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void us(char *out, size_t n, uint64_t ns)
{
	if (ns < 10000)
		snprintf(out, n, "%.2f", (double)ns / 1000);
	else
		snprintf(out, n, "%.0f", (double)ns / 1000);
}

static const char *const phase_names[LP_PHASES_MAX] = {
	"queue", "device", "install", "handler",
};

static int print_text(const struct lp_stats *st, FILE *f)
{
	char a[32], b[32], c[32], d[32], e[32];
	uint64_t total = 0;

	for (unsigned k = 0; k < LP_FAULT_KINDS; k++)
		total += st->faults[k];
	fprintf(f, "lazypage statistics\n");
	if (st->budget_frames)
		fprintf(f, "  budget          %" PRIu64 " frames (%" PRIu64
			   " KiB)\n",
			st->budget_frames, st->budget_frames * 4);
	else
		fprintf(f, "  budget          unlimited\n");
	fprintf(f, "  resident        %" PRIu64 " frames now, %" PRIu64
		   " peak\n",
		st->resident_frames, st->peak_frames);
	fprintf(f, "  faults          %" PRIu64 " total\n", total);
	fprintf(f, "    %-8s %10s %9s %9s %9s %9s %9s  (us)\n", "kind", "count",
		"mean", "p50", "p90", "p99", "max");
	for (unsigned k = 0; k < LP_FAULT_KINDS; k++) {
		const struct lp_latency *l = &st->latency[k];
		us(a, sizeof a, l->mean_ns);
		us(b, sizeof b, l->p50_ns);
		us(c, sizeof c, l->p90_ns);
		us(d, sizeof d, l->p99_ns);
		us(e, sizeof e, l->max_ns);
		fprintf(f, "    %-8s %10" PRIu64 " %9s %9s %9s %9s %9s\n",
			kind_names[k], st->faults[k], a, b, c, d, e);
	}
	if (st->faults[LP_FAULT_SWAPIN]) {
		fprintf(f, "  swap-in phases  p50/p99 us:");
		for (unsigned p = 0; p < LP_PHASES_MAX; p++) {
			us(a, sizeof a, st->miss_phase_p50_ns[p]);
			us(b, sizeof b, st->miss_phase_p99_ns[p]);
			fprintf(f, " %s %s/%s", phase_names[p], a, b);
		}
		fputc('\n', f);
	}
	fprintf(f, "  readahead       %" PRIu64 " pages\n", st->readahead_pages);
	fprintf(f, "  evictions       %" PRIu64 " (%" PRIu64
		   " clean drops, %" PRIu64 " to swap, %" PRIu64
		   " to file)\n",
		st->evictions, st->clean_drops, st->swap_outs,
		st->file_writebacks);
	fprintf(f, "  ref sweeps      %" PRIu64 " pages unmapped to sample use\n",
		st->ref_sweeps);
	human(a, sizeof a, st->swap_read_bytes);
	human(b, sizeof b, st->swap_write_bytes);
	fprintf(f, "  swap I/O        %s read, %s written\n", a, b);
	human(a, sizeof a, st->file_read_bytes);
	human(b, sizeof b, st->file_write_bytes);
	fprintf(f, "  file I/O        %s read, %s written\n", a, b);
	fprintf(f, "  swap slots      %" PRIu64 " in use, %" PRIu64 " peak\n",
		st->swap_slots_used, st->swap_slots_peak);
	if (st->tier_stores || st->tier_rejects) {
		human(a, sizeof a, st->tier_bytes);
		fprintf(f, "  tier            %" PRIu64 " stored, %" PRIu64
			   " refused, %" PRIu64 " not taken, %" PRIu64
			   " read back, %" PRIu64 " written on\n"
			   "                  %" PRIu64 " pages now in %s (ratio %.2f),"
			   " %" PRIu64 " frames, %" PRIu64 " peak, %" PRIu64 " its share now\n",
			st->tier_stores, st->tier_rejects, st->tier_bypasses,
			st->tier_loads,
			st->tier_writebacks, st->tier_pages, a,
			st->tier_bytes ? (double)st->tier_pages * 4096 / (double)st->tier_bytes : 0.0,
			st->tier_frames, st->tier_peak_frames, st->tier_limit_frames);
	}
	if (st->remote_pages || st->remote_errors)
		fprintf(f, "  remote          %" PRIu64 " pages held, %" PRIu64
			   " failed requests\n", st->remote_pages, st->remote_errors);
	fprintf(f, "  frame waits     %" PRIu64 "\n", st->frame_waits);
	fprintf(f, "  errors          %" PRIu64 " I/O, %" PRIu64
		   " swap full, %" PRIu64 " SIGBUS",
		st->io_errors, st->swap_full, st->fill_errors);
	if (st->last_error)
		fprintf(f, " (last: %s)", strerror(-st->last_error));
	fputc('\n', f);
	if (st->move_fixups)
		fprintf(f, "  kernel fixups   %" PRIu64 " moves that failed although"
			   " the page moved (taken as moved)\n",
			st->move_fixups);
	if (st->verify_checks || st->verify_mismatches)
		fprintf(f, "  verify          %" PRIu64 " pages checked, %" PRIu64
			   " mismatches\n",
			st->verify_checks, st->verify_mismatches);
	return 0;
}

static int print_json(const struct lp_stats *st, FILE *f)
{
	fprintf(f, "{\"budget_frames\":%" PRIu64 ",\"resident_frames\":%" PRIu64
		   ",\"peak_frames\":%" PRIu64 ",\"faults\":{",
		st->budget_frames, st->resident_frames, st->peak_frames);
	for (unsigned k = 0; k < LP_FAULT_KINDS; k++) {
		const struct lp_latency *l = &st->latency[k];
		fprintf(f, "%s\"%s\":{\"count\":%" PRIu64 ",\"mean_ns\":%" PRIu64
			   ",\"p50_ns\":%" PRIu64 ",\"p90_ns\":%" PRIu64
			   ",\"p99_ns\":%" PRIu64 ",\"max_ns\":%" PRIu64 "}",
			k ? "," : "", kind_names[k], st->faults[k], l->mean_ns,
			l->p50_ns, l->p90_ns, l->p99_ns, l->max_ns);
	}
	fprintf(f, "},\"readahead_pages\":%" PRIu64 ",\"evictions\":%" PRIu64
		   ",\"clean_drops\":%" PRIu64 ",\"swap_outs\":%" PRIu64
		   ",\"file_writebacks\":%" PRIu64 ",\"ref_sweeps\":%" PRIu64
		   ",\"swap_read_bytes\":%" PRIu64 ",\"swap_write_bytes\":%" PRIu64
		   ",\"file_read_bytes\":%" PRIu64 ",\"file_write_bytes\":%" PRIu64
		   ",\"io_errors\":%" PRIu64 ",\"swap_full\":%" PRIu64
		   ",\"fill_errors\":%" PRIu64 ",\"frame_waits\":%" PRIu64
		   ",\"swap_slots_used\":%" PRIu64 ",\"swap_slots_peak\":%" PRIu64
		   ",\"last_error\":%d,\"verify_checks\":%" PRIu64
		   ",\"verify_mismatches\":%" PRIu64 ",\"tier\":{\"stores\":%" PRIu64
		   ",\"rejects\":%" PRIu64 ",\"bypasses\":%" PRIu64
		   ",\"loads\":%" PRIu64
		   ",\"writebacks\":%" PRIu64 ",\"pages\":%" PRIu64
		   ",\"bytes\":%" PRIu64 ",\"frames\":%" PRIu64
		   ",\"peak_frames\":%" PRIu64 ",\"limit_frames\":%" PRIu64
		   "},\"move_fixups\":%" PRIu64 ",\"remote\":{\"pages\":%" PRIu64
		   ",\"errors\":%" PRIu64 "},\"miss_phases\":{",
		st->readahead_pages, st->evictions, st->clean_drops,
		st->swap_outs, st->file_writebacks, st->ref_sweeps,
		st->swap_read_bytes, st->swap_write_bytes, st->file_read_bytes,
		st->file_write_bytes, st->io_errors, st->swap_full,
		st->fill_errors, st->frame_waits, st->swap_slots_used,
		st->swap_slots_peak, st->last_error, st->verify_checks,
		st->verify_mismatches, st->tier_stores, st->tier_rejects,
		st->tier_bypasses, st->tier_loads, st->tier_writebacks, st->tier_pages,
		st->tier_bytes, st->tier_frames, st->tier_peak_frames,
		st->tier_limit_frames, st->move_fixups, st->remote_pages, st->remote_errors);
	for (unsigned p = 0; p < LP_PHASES_MAX; p++)
		fprintf(f, "%s\"%s\":{\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64
			   "}",
			p ? "," : "", phase_names[p], st->miss_phase_p50_ns[p],
			st->miss_phase_p99_ns[p]);
	fprintf(f, "}}\n");
	return 0;
}

int lp_stats_print(const struct lp_stats *st, FILE *f, int json)
{
	if (!st || !f)
		return -EINVAL;
	if (json)
		print_json(st, f);
	else
		print_text(st, f);
	return ferror(f) ? -EIO : 0;
}
