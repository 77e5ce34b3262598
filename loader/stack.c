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

/* Where everything goes (see stack.h), computed top down and checked
 * before anything is written. */
struct layout {
	char *const *argv;      /* in->argv, or { "" } for an empty one */
	uint64_t argc, envc;
	uint64_t naux;          /* auxv entries of the caller's we keep */
	uint64_t execfn, u_platform, u_random;
	struct lp_stack_out out;
};

/* The strings, top down from *p: the end marker, execfn, the environment,
 * the arguments. */
static int place_strings(struct layout *l, const struct lp_stack_in *in,
			 uint64_t *p, uint64_t base)
{
	size_t len;
	int rc;

	if ((rc = take(p, 8, base)))
		return rc;
	len = strnlen(in->execfn, LP_STACK_MAX_STRLEN) + 1;
	if (len > LP_STACK_MAX_STRLEN || (rc = take(p, len, base)))
		return -E2BIG;
	l->execfn = *p;
	for (uint64_t i = l->envc; i-- > 0;) {
		len = strnlen(in->envp[i], LP_STACK_MAX_STRLEN) + 1;
		if (len > LP_STACK_MAX_STRLEN || take(p, len, base))
			return -E2BIG;
	}
	l->out.env_start = *p;
	l->out.env_end = l->execfn;
	for (uint64_t i = l->argc; i-- > 0;) {
		len = strnlen(l->argv[i], LP_STACK_MAX_STRLEN) + 1;
		if (len > LP_STACK_MAX_STRLEN || take(p, len, base))
			return -E2BIG;
	}
	l->out.arg_start = *p;
	l->out.arg_end = l->out.env_start;
	return 0;
}

/* The whole layout within [base, top): 0 or -E2BIG. */
static int place(struct layout *l, const struct lp_stack_in *in, uint64_t top,
		 uint64_t base)
{
	static char *const empty_argv[] = { "", NULL };
	uint64_t p = top, words;
	int rc;

	memset(l, 0, sizeof(*l));
	l->argv = in->argv;
	l->argc = (uint64_t)in->argc;
	/* Since Linux 5.18 an empty argv becomes { "" }. */
	if (l->argc == 0) {
		l->argv = empty_argv;
		l->argc = 1;
	}
	while (in->envp && in->envp[l->envc])
		l->envc++;
	for (const uint64_t *a = in->auxv; a && a[0] != AT_NULL; a += 2)
		l->naux += !is_ours(a[0]);

	if ((rc = place_strings(l, in, &p, base)))
		return rc;
	/* arch_align_stack() without its random offset. */
	if ((rc = take(&p, p & 15, base)))
		return rc;
	if ((rc = take(&p, sizeof(platform), base)))
		return rc;
	l->u_platform = p;
	if ((rc = take(&p, 16, base)))
		return rc;
	l->u_random = p;
	/* The auxv with our three entries and AT_NULL, then argc, argv[],
	 * NULL, envp[], NULL, rounded down to 16 (STACK_ROUND). */
	words = 2 * (l->naux + 4) + l->argc + 1 + l->envc + 1 + 1;
	if (words > (p - base) / 8)
		return -E2BIG;
	l->out.sp = (p - words * 8) & ~(uint64_t)15;
	if (l->out.sp < base)
		return -E2BIG;
	return 0;
}

/* The strings and the random bytes, where place() put them. */
static void write_strings(const struct cursor *c, const struct layout *l,
			  const struct lp_stack_in *in, const unsigned char rnd[16])
{
	uint64_t q = l->out.arg_start;
	size_t len;

	for (uint64_t i = 0; i < l->argc; i++) {
		len = strlen(l->argv[i]) + 1;
		put(c, q, l->argv[i], len);
		q += len;
	}
	for (uint64_t i = 0; i < l->envc; i++) {
		len = strlen(in->envp[i]) + 1;
		put(c, q, in->envp[i], len);
		q += len;
	}
	put(c, l->execfn, in->execfn, strlen(in->execfn) + 1);
	put(c, l->u_platform, platform, sizeof(platform));
	put(c, l->u_random, rnd, 16);
}

/* argc, argv[], NULL, envp[], NULL and the auxv, up from sp. */
static void write_tables(const struct cursor *c, struct layout *l,
			 const struct lp_stack_in *in)
{
	uint64_t q = l->out.sp;

	put64(c, q, l->argc);
	q += 8;
	for (uint64_t i = 0, s = l->out.arg_start; i < l->argc; i++, q += 8) {
		put64(c, q, s);
		s += strlen(l->argv[i]) + 1;
	}
	put64(c, q, 0);
	q += 8;
	for (uint64_t i = 0, s = l->out.env_start; i < l->envc; i++, q += 8) {
		put64(c, q, s);
		s += strlen(in->envp[i]) + 1;
	}
	put64(c, q, 0);
	q += 8;
	l->out.auxv = q;
	l->out.auxv_bytes = put_auxv(c, q, in->auxv, l->execfn, l->u_platform,
				     l->u_random);
}

static int build(void *buf, uint64_t top, size_t size,
		 const struct lp_stack_in *in, struct lp_stack_out *res)
{
	uint64_t base = top - size;
	struct cursor c = { buf, base };
	unsigned char rnd[16];
	struct layout l;

	int rc = place(&l, in, top, base);
	if (rc)
		return rc;
	rc = fill_random(rnd);
	if (rc < 0)
		return rc;
	memset(c.buf + (l.out.sp - base), 0, top - l.out.sp);
	write_strings(&c, &l, in, rnd);
	write_tables(&c, &l, in);
	*res = l.out;
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
