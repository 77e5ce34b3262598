/* SPDX-License-Identifier: MIT */
/* The table of eviction policies, and the life of a policy's state. */
#include "policy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lazypage/lazypage.h"

extern const struct lp_policy_ops lp_policy_fifo;
extern const struct lp_policy_ops lp_policy_clock;
extern const struct lp_policy_ops lp_policy_random;
extern const struct lp_policy_ops lp_policy_lru;
extern const struct lp_policy_ops lp_policy_sieve;
extern const struct lp_policy_ops lp_policy_s3fifo;
extern const struct lp_policy_ops lp_policy_2q;
extern const struct lp_policy_ops lp_policy_arc;
extern const struct lp_policy_ops lp_policy_car;
extern const struct lp_policy_ops lp_policy_lirs;

const struct lp_policy_ops *const lp_policy_table[] = {
	&lp_policy_clock,
	&lp_policy_fifo,
	&lp_policy_random,
	&lp_policy_lru,
	&lp_policy_sieve,
	&lp_policy_s3fifo,
	&lp_policy_2q,
	&lp_policy_arc,
	&lp_policy_car,
	&lp_policy_lirs,
	NULL,
};

const struct lp_policy_ops *policy_find(const char *name)
{
	for (unsigned i = 0; lp_policy_table[i]; i++)
		if (!strcmp(lp_policy_table[i]->name, name))
			return lp_policy_table[i];
	return NULL;
}

int policy_create(const struct lp_policy_ops *ops, void **state,
		  uint32_t nframes, struct lp_policy_host *h, uint64_t seed)
{
	void *p = calloc(1, ops->size);
	int rc;

	if (!p)
		return -ENOMEM;
	rc = ops->init(p, nframes, h, seed);
	if (rc) {
		policy_destroy(ops, p);
		return rc;
	}
	*state = p;
	return 0;
}

void policy_destroy(const struct lp_policy_ops *ops, void *state)
{
	if (!state)
		return;
	ops->fini(state);
	free(state);
}

static const char *names[sizeof(lp_policy_table) / sizeof(lp_policy_table[0])];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_fill(void)
{
	for (unsigned i = 0; lp_policy_table[i]; i++)
		names[i] = lp_policy_table[i]->name;
}

const char *const *lp_policy_names(void)
{
	pthread_once(&names_once, names_fill);
	return names;
}
