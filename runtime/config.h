/* SPDX-License-Identifier: MIT */
/* The LAZYPAGE_* environment variables (config.c). */
#ifndef LP_CONFIG_H
#define LP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lazypage/lazypage.h"

#define LP_MAX_THREADS 64u
#define LP_MAX_REF_SCAN 64u
#define LP_DEFAULT_REF_SCAN 4u

struct lp_option {
	const char *name;
	const char *doc;
	int (*apply)(const char *value, struct lp_config *cfg);
};

/* NULL-terminated table of every variable. */
extern const struct lp_option lp_options[];

/* Apply the environment to cfg.  -EINVAL when a variable is malformed (its
 * name in *bad); the others are applied all the same. */
int config_env(struct lp_config *cfg, const char **bad);

/* The same, with the values from get(name, arg) instead of getenv(): how
 * the fuzzer (fuzz/fuzz_config.c) feeds it. */
int config_env_from(struct lp_config *cfg, const char **bad,
		    const char *(*get)(const char *name, void *arg), void *arg);

#endif /* LP_CONFIG_H */
