/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the LAZYPAGE_* environment (runtime/config.c,
 * config_env_from): the input is an environment, "NAME=VALUE" entries
 * separated by NUL or newline bytes (the first of a name wins, as getenv
 * does).  Checked: the verdict is 0 or -EINVAL naming a variable that is
 * set; every field stays within what lp_vm_create() accepts (frames, threads,
 * ref_scan, flags, reserved); the strings are the given values; a nonzero
 * LAZYPAGE_MEM never yields an unlimited budget; parsing is deterministic;
 * a valid variable alone is accepted alone, a malformed one refused alone.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define MAXVARS 64

struct env {
	char *name[MAXVARS], *value[MAXVARS];
	unsigned n;
	const char *only; /* when set: see only this variable */
};

static const char *get(const char *name, void *arg)
{
	struct env *e = arg;

	if (e->only && strcmp(e->only, name))
		return NULL;
	for (unsigned i = 0; i < e->n; i++)
		if (!strcmp(e->name[i], name))
			return e->value[i];
	return NULL;
}

static void init(struct lp_config *c)
{
	memset(c, 0, sizeof(*c));
	c->policy = "clock";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	struct env e = { .n = 0 };
	struct lp_config a, b;
	const char *bad = NULL, *bad2 = NULL;

	CHECK(buf);
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *p = buf, *next; p < buf + size && e.n < MAXVARS; p = next) {
		size_t len = strcspn(p, "\n");
		next = p + len + 1;
		p[len] = '\0';
		char *eq = strchr(p, '=');
		if (!eq)
			continue;
		*eq = '\0';
		e.name[e.n] = p;
		e.value[e.n++] = eq + 1;
	}

	init(&a);
	int rc = config_env_from(&a, &bad, get, &e);
	CHECK(rc == 0 || rc == -EINVAL);
	CHECK((rc == 0) == (bad == NULL));
	if (bad)
		CHECK(get(bad, &e) != NULL);
	CHECK(a.frames <= UINT32_MAX / 2);
	CHECK(a.threads <= LP_MAX_THREADS);
	CHECK(a.ref_scan <= LP_MAX_REF_SCAN);
	CHECK((a.flags & ~(LP_CFG_STATS_AT_EXIT | LP_CFG_NO_READAHEAD |
			   LP_CFG_ENCRYPT_SWAP | LP_CFG_NO_PIN | LP_CFG_VERIFY |
			   LP_CFG_SYNC_READS | LP_CFG_SYNC_EVICT)) == 0);
	CHECK(a.tier <= LP_TIER_ZSTD && a.tier_share <= 90);
	for (unsigned i = 0; i < sizeof(a.reserved) / sizeof(a.reserved[0]); i++)
		CHECK(a.reserved[i] == 0);
	CHECK(a.policy != NULL);
	if (get("LAZYPAGE_POLICY", &e))
		CHECK(a.policy == get("LAZYPAGE_POLICY", &e));
	if (get("LAZYPAGE_SWAP", &e))
		CHECK(a.swap_path == get("LAZYPAGE_SWAP", &e));
	else
		CHECK(a.swap_path == NULL);

	/* A cap asked for is a cap: LAZYPAGE_MEM=100 is not "unlimited". */
	const char *mem = get("LAZYPAGE_MEM", &e);
	uint64_t bytes;
	if (mem && lp_parse_size(mem, &bytes) == 0 && bytes > 0 &&
	    bytes / LP_PAGE_SIZE <= UINT32_MAX / 2)
		CHECK(a.frames > 0);

	/* Deterministic. */
	init(&b);
	CHECK(config_env_from(&b, &bad2, get, &e) == rc);
	CHECK(bad2 == bad && memcmp(&a, &b, sizeof(a)) == 0);

	/* Each variable alone: the first malformed one is the one named. */
	const char *first_bad = NULL;
	for (const struct lp_option *o = lp_options; o->name; o++) {
		if (!get(o->name, &e))
			continue;
		e.only = o->name;
		init(&b);
		bad2 = NULL;
		int r = config_env_from(&b, &bad2, get, &e);
		CHECK(r == 0 || (r == -EINVAL && bad2 == o->name));
		if (r && !first_bad)
			first_bad = o->name;
		e.only = NULL;
	}
	CHECK(first_bad == bad);
	free(buf);
	return 0;
}
