/* The public header compiles alone as strict C99 (see meson.build). */
#include <lazypage/lazypage.h>
#include <string.h>

int main(void)
{
	struct lp_config cfg;
	struct lp_stats st;

	lp_config_init(&cfg);
	memset(&st, 0, sizeof(st));
	/* The library answers in its own version. */
	return strcmp(lp_version(), "0.1.0") != 0 || LP_PAGE_SIZE != 4096 ||
	       lp_policy_names()[0] == NULL;
}
