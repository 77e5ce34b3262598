/* SPDX-License-Identifier: MIT */
/*
 * Configuration: defaults and the LAZYPAGE_* environment variables, read
 * through one table (after mimalloc's options).  Each variable is
 * documented in the README; `lp_config_init` applies them, `lp_vm_create`
 * reports a malformed one.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int lp_parse_size(const char *s, uint64_t *out)
{
	char *end;
	uint64_t mult = 1;

	if (!s || !out || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	bool big = errno == ERANGE; /* well formed or not: said below */
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = 1ull << 10; end++; break;
	case 'M': mult = 1ull << 20; end++; break;
	case 'G': mult = 1ull << 30; end++; break;
	case 'T': mult = 1ull << 40; end++; break;
	default: break;
	}
	if (mult > 1 && *end == 'i')
		end++;
	if (*end == 'B' || (mult == 1 && *end == 'b'))
		end++;
	if (*end)
		return -EINVAL;
	if (big || v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "1") || !strcasecmp(s, "yes") || !strcasecmp(s, "true") ||
	    !strcasecmp(s, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "0") || !strcasecmp(s, "no") || !strcasecmp(s, "false") ||
	    !strcasecmp(s, "off")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int opt_frames(const char *v, struct lp_config *c)
{
	uint64_t n;
	int rc = parse_uint(v, UINT32_MAX / 2, &n);

	if (!rc)
		c->frames = (size_t)n;
	return rc;
}

static int opt_mem(const char *v, struct lp_config *c)
{
	uint64_t b;
	int rc = lp_parse_size(v, &b);

	if (!rc && b / LP_PAGE_SIZE > UINT32_MAX / 2)
		rc = -ERANGE;
	if (!rc)
		c->frames = (size_t)(b / LP_PAGE_SIZE);
	/* Less than a page is a cap too small to run (lp_vm_create refuses
	 * it), never "unlimited" (frames = 0); vmrun --mem does the same. */
	if (!rc && b && !c->frames)
		c->frames = 1;
	return rc;
}

static int opt_swap(const char *v, struct lp_config *c)
{
	c->swap_path = v;
	return 0;
}

static int opt_remote(const char *v, struct lp_config *c)
{
	c->remote = *v ? v : NULL;
	return 0;
}

static int opt_remote_replicas(const char *v, struct lp_config *c)
{
	uint64_t n;
	int rc = parse_uint(v, 16, &n);

	if (!rc)
		c->remote_replicas = (unsigned)n;
	return rc;
}

static int opt_swap_max(const char *v, struct lp_config *c)
{
	uint64_t b;
	int rc = lp_parse_size(v, &b);

	/* Below one page (but not 0, no limit) holds no page at all. */
	if (!rc && b && b < LP_PAGE_SIZE)
		rc = -EINVAL;
	if (!rc)
		c->swap_max = b;
	return rc;
}

static int opt_threads(const char *v, struct lp_config *c)
{
	uint64_t n;
	int rc = parse_uint(v, LP_MAX_THREADS, &n);

	if (!rc)
		c->threads = (unsigned)n;
	return rc;
}

static int opt_policy(const char *v, struct lp_config *c)
{
	c->policy = v;
	return 0;
}

static int opt_ref_scan(const char *v, struct lp_config *c)
{
	uint64_t n;
	int rc = parse_uint(v, LP_MAX_REF_SCAN, &n);

	if (!rc)
		c->ref_scan = (unsigned)n;
	return rc;
}

static int opt_tier(const char *v, struct lp_config *c)
{
	static const char *const names[] = { [LP_TIER_NONE] = "none",
					     [LP_TIER_LZ4] = "lz4",
					     [LP_TIER_ZSTD] = "zstd" };

	for (unsigned t = 0; t < sizeof(names) / sizeof(names[0]); t++)
		if (!strcmp(v, names[t])) {
			c->tier = t;
			return 0;
		}
	return -EINVAL;
}

static int opt_tier_share(const char *v, struct lp_config *c)
{
	uint64_t n;
	int rc = parse_uint(v, 90, &n);

	if (!rc && !n)
		rc = -EINVAL;
	if (!rc)
		c->tier_share = (unsigned)n;
	return rc;
}

static int opt_flag(const char *v, struct lp_config *c, unsigned flag, bool set_on)
{
	bool b;
	int rc = parse_bool(v, &b);

	if (rc)
		return rc;
	if (b == set_on)
		c->flags |= flag;
	else
		c->flags &= ~flag;
	return 0;
}

static int opt_stats(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_STATS_AT_EXIT, true);
}

static int opt_readahead(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_NO_READAHEAD, false);
}

static int opt_pin(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_NO_PIN, false);
}

static int opt_encrypt(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_ENCRYPT_SWAP, true);
}

static int opt_verify(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_VERIFY, true);
}

static int opt_sync_reads(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_SYNC_READS, true);
}

static int opt_sync_evict(const char *v, struct lp_config *c)
{
	return opt_flag(v, c, LP_CFG_SYNC_EVICT, true);
}

const struct lp_option lp_options[] = {
	{ "LAZYPAGE_FRAMES", "resident budget in 4 KiB frames (0 = unlimited)", opt_frames },
	{ "LAZYPAGE_MEM", "resident budget as a size, e.g. 64M (overrides FRAMES)", opt_mem },
	{ "LAZYPAGE_SWAP", "directory for the swap file, or a new file's path", opt_swap },
	{ "LAZYPAGE_SWAP_MAX", "largest swap file, e.g. 4G (0 = no limit)", opt_swap_max },
	{ "LAZYPAGE_THREADS", "fault-handler threads (0 = one per CPU)", opt_threads },
	{ "LAZYPAGE_POLICY", "eviction policy (clock, fifo, ...)", opt_policy },
	{ "LAZYPAGE_TIER", "compressed tier in front of swap: none, lz4, zstd", opt_tier },
	{ "LAZYPAGE_TIER_SHARE", "the tier's largest share of the budget, percent (1..90)", opt_tier_share },
	{ "LAZYPAGE_REMOTE", "Redis servers in the swap file's place: redis://host:port,...", opt_remote },
	{ "LAZYPAGE_REMOTE_REPLICAS", "copies of each remote page (0 = 2)", opt_remote_replicas },
	{ "LAZYPAGE_REF_SCAN", "pages unmapped per eviction to sample reference bits", opt_ref_scan },
	{ "LAZYPAGE_SYNC_READS", "1: each handler reads one swapped page at a time (0.2)", opt_sync_reads },
	{ "LAZYPAGE_SYNC_EVICT", "1: a fault waits for the evictor's choice of victims (repeatable misses)", opt_sync_evict },
	{ "LAZYPAGE_STATS", "1: print statistics to stderr at lp_vm_destroy", opt_stats },
	{ "LAZYPAGE_READAHEAD", "0: no readahead nor fill-around", opt_readahead },
	{ "LAZYPAGE_SWAP_ENCRYPT", "1: encrypt swapped pages", opt_encrypt },
	{ "LAZYPAGE_PIN", "0: do not pin fault handlers to CPUs", opt_pin },
	{ "LAZYPAGE_VERIFY", "1: checksum pages out and in, report mismatches", opt_verify },
	{ NULL, NULL, NULL },
};

int config_env_from(struct lp_config *cfg, const char **bad,
		    const char *(*get)(const char *name, void *arg), void *arg)
{
	int rc = 0;

	/* FRAMES first so that MEM, later in the table, wins. */
	for (const struct lp_option *o = lp_options; o->name; o++) {
		const char *v = get(o->name, arg);
		if (!v)
			continue;
		int e = o->apply(v, cfg);
		if (e && !rc) {
			rc = -EINVAL;
			if (bad)
				*bad = o->name;
		}
	}
	return rc;
}

static const char *get_env(const char *name, void *arg)
{
	(void)arg;
	return getenv(name);
}

int config_env(struct lp_config *cfg, const char **bad)
{
	return config_env_from(cfg, bad, get_env, NULL);
}

void lp_config_init(struct lp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->policy = "clock";
	(void)config_env(cfg, NULL);
}
