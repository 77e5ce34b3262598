/* SPDX-License-Identifier: MIT */
/*
 * The initial stack, after the kernel's do_execveat_common (strings) and
 * create_elf_tables (platform, random bytes, tables).  Addresses are
 * computed first, all in uint64_t relative to top, then written through
 * one offset into the caller's buffer.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "stack.h"

static const char platform[] = "x86_64";

struct cursor {
	unsigned char *buf;
	uint64_t base; /* the address of buf[0] */
};

static void put(const struct cursor *c, uint64_t at, const void *src,
		size_t n)
{
	memcpy(c->buf + (at - c->base), src, n);
}

static void put64(const struct cursor *c, uint64_t at, uint64_t v)
{
	put(c, at, &v, sizeof(v));
}

/* Move *p down by n bytes, staying at or above base. */
static int take(uint64_t *p, uint64_t n, uint64_t base)
{
	if (*p - base < n)
		return -E2BIG;
	*p -= n;
	return 0;
}

static int is_ours(uint64_t type)
{
	return type == AT_RANDOM || type == AT_EXECFN || type == AT_PLATFORM;
}

/* The auxv in kernel order (see stack.h) at q; returns its size. */
static size_t put_auxv(const struct cursor *c, uint64_t q, const uint64_t *in,
		       uint64_t execfn, uint64_t u_platform, uint64_t u_random)
{
	uint64_t at = q;
	int have_random = 0, have_execfn = 0;

#define EMIT(t, v) (put64(c, at, (t)), put64(c, at + 8, (v)), at += 16)
	for (const uint64_t *a = in; a && a[0] != AT_NULL; a += 2) {
		if (is_ours(a[0]))
			continue;
		if (have_random && !have_execfn && a[0] != AT_HWCAP2) {
			EMIT(AT_EXECFN, execfn);
			EMIT(AT_PLATFORM, u_platform);
			have_execfn = 1;
		}
		EMIT(a[0], a[1]);
		if (a[0] == AT_SECURE && !have_random) {
			EMIT(AT_RANDOM, u_random);
			have_random = 1;
		} else if (a[0] == AT_HWCAP2 && have_random && !have_execfn) {
			EMIT(AT_EXECFN, execfn);
			EMIT(AT_PLATFORM, u_platform);
			have_execfn = 1;
		}
	}
	if (!have_random)
		EMIT(AT_RANDOM, u_random);
	if (!have_execfn) {
		EMIT(AT_EXECFN, execfn);
		EMIT(AT_PLATFORM, u_platform);
	}
	EMIT(AT_NULL, 0);
#undef EMIT
	return (size_t)(at - q);
}

static int fill_random(unsigned char r[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(r + got, 16 - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

static int build(void *buf, uint64_t top, size_t size,
		 const struct lp_stack_in *in, struct lp_stack_out *res)
{
	struct lp_stack_out o, *out = &o;
	static char *const empty_argv[] = { "", NULL };
	char *const *argv = in->argv;
	uint64_t argc = (uint64_t)in->argc, envc = 0, naux = 0, words;
	uint64_t base = top - size, p = top, execfn, u_platform, u_random;
	uint64_t sp, q;
	unsigned char rnd[16];
	struct cursor c = { buf, base };
	size_t len;
	int rc;

	/* Since Linux 5.18 an empty argv becomes { "" }. */
	if (argc == 0) {
		argv = empty_argv;
		argc = 1;
	}
	while (in->envp && in->envp[envc])
		envc++;
	for (const uint64_t *a = in->auxv; a && a[0] != AT_NULL; a += 2)
		naux += !is_ours(a[0]);

	/* The strings, top down, checked before anything is written. */
	if ((rc = take(&p, 8, base)))
		return rc;
	len = strnlen(in->execfn, LP_STACK_MAX_STRLEN) + 1;
	if (len > LP_STACK_MAX_STRLEN || (rc = take(&p, len, base)))
		return -E2BIG;
	execfn = p;
	for (uint64_t i = envc; i-- > 0;) {
		len = strnlen(in->envp[i], LP_STACK_MAX_STRLEN) + 1;
		if (len > LP_STACK_MAX_STRLEN || take(&p, len, base))
			return -E2BIG;
	}
	out->env_start = p;
	out->env_end = execfn;
	for (uint64_t i = argc; i-- > 0;) {
		len = strnlen(argv[i], LP_STACK_MAX_STRLEN) + 1;
		if (len > LP_STACK_MAX_STRLEN || take(&p, len, base))
			return -E2BIG;
	}
	out->arg_start = p;
	out->arg_end = out->env_start;

	/* arch_align_stack() without its random offset. */
	if ((rc = take(&p, p & 15, base)))
		return rc;
	if ((rc = take(&p, sizeof(platform), base)))
		return rc;
	u_platform = p;
	if ((rc = take(&p, 16, base)))
		return rc;
	u_random = p;
	/* The auxv with our three entries and AT_NULL, then argc, argv[],
	 * NULL, envp[], NULL, rounded down to 16 (STACK_ROUND). */
	words = 2 * (naux + 4) + argc + 1 + envc + 1 + 1;
	if (words > (p - base) / 8)
		return -E2BIG;
	sp = (p - words * 8) & ~(uint64_t)15;
	if (sp < base)
		return -E2BIG;

	rc = fill_random(rnd);
	if (rc < 0)
		return rc;
	memset(c.buf + (sp - base), 0, top - sp);
	q = out->arg_start;
	for (uint64_t i = 0; i < argc; i++) {
		len = strlen(argv[i]) + 1;
		put(&c, q, argv[i], len);
		q += len;
	}
	for (uint64_t i = 0; i < envc; i++) {
		len = strlen(in->envp[i]) + 1;
		put(&c, q, in->envp[i], len);
		q += len;
	}
	put(&c, execfn, in->execfn, strlen(in->execfn) + 1);
	put(&c, u_platform, platform, sizeof(platform));
	put(&c, u_random, rnd, sizeof(rnd));

	q = sp;
	put64(&c, q, argc);
	q += 8;
	for (uint64_t i = 0, s = out->arg_start; i < argc; i++, q += 8) {
		put64(&c, q, s);
		s += strlen(argv[i]) + 1;
	}
	put64(&c, q, 0);
	q += 8;
	for (uint64_t i = 0, s = out->env_start; i < envc; i++, q += 8) {
		put64(&c, q, s);
		s += strlen(in->envp[i]) + 1;
	}
	put64(&c, q, 0);
	q += 8;
	out->auxv = q;
	out->auxv_bytes = put_auxv(&c, q, in->auxv, execfn, u_platform,
				   u_random);
	out->sp = sp;
	*res = o;
	return 0;
}

int lp_stack_build(void *buf, uint64_t top, size_t size,
		   const struct lp_stack_in *in, struct lp_stack_out *out)
{
	int saved = errno, rc;

	if (!buf || !in || !out || !in->execfn || in->argc < 0 ||
	    (in->argc > 0 && !in->argv) || top < size)
		return -EINVAL;
	rc = build(buf, top, size, in, out);
	errno = saved;
	return rc;
}
