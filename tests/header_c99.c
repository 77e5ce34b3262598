/* The public header compiles alone as strict C99 (see meson.build). */
#include <lazypage/lazypage.h>
#include <string.h>

static int fill(void *page, void *buf, void *aux)
{
	(void)page;
	(void)aux;
	memset(buf, 0, LP_PAGE_SIZE);
	return 0;
}

int main(void)
{
	struct lp_config cfg;
	struct lp_stats st;
	struct lp_initializer init = { fill, NULL, 0 };

	lp_config_init(&cfg);
	memset(&st, 0, sizeof(st));
	/* The library serves what this header describes. */
	return LP_VERSION_CHECK() != 0 || LP_PAGE_SIZE != 4096 ||
	       lp_policy_names()[0] == NULL || init.reserved[0] != 0 ||
	       sizeof(st.faults) / sizeof(st.faults[0]) != LP_FAULT_KINDS_MAX;
}
