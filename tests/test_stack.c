/* SPDX-License-Identifier: MIT */
/*
 * The initial stack: byte for byte what the kernel builds for the same
 * strings and auxv (a probe program dumps its own, started with address
 * randomization off), the same shape as this process's own stack, and the
 * builder's contract (fit, bounds, auxv order).
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loader/stack.h"

#define TOP 0x7ffffffff000ull

/* A stack buffer standing for [TOP - size, TOP). */
struct stk {
	unsigned char *buf;
	size_t size;
	struct lp_stack_out out;
};

static uint64_t rd64(const struct stk *s, uint64_t addr)
{
	uint64_t v;

	cr_assert(addr >= TOP - s->size && addr + 8 <= TOP,
		  "0x%llx outside the stack", (unsigned long long)addr);
	memcpy(&v, s->buf + (addr - (TOP - s->size)), 8);
	return v;
}

static const char *str_at(const struct stk *s, uint64_t addr)
{
	cr_assert(addr >= TOP - s->size && addr < TOP);
	return (const char *)s->buf + (addr - (TOP - s->size));
}

static int build(struct stk *s, size_t size, const struct lp_stack_in *in)
{
	s->size = size;
	s->buf = malloc(size);
	memset(s->buf, 0xaa, size);
	return lp_stack_build(s->buf, TOP, size, in, &s->out);
}

/* The auxv types of s, in order, AT_NULL included; returns the count. */
static unsigned aux_types(const struct stk *s, uint64_t *types, unsigned max)
{
	unsigned n = 0;

	for (uint64_t a = s->out.auxv; n < max; a += 16) {
		types[n++] = rd64(s, a);
		if (rd64(s, a) == AT_NULL)
			break;
	}
	cr_assert_eq(n * 16, s->out.auxv_bytes);
	return n;
}

static uint64_t aux_val(const struct stk *s, uint64_t type)
{
	for (uint64_t a = s->out.auxv; rd64(s, a) != AT_NULL; a += 16)
		if (rd64(s, a) == type)
			return rd64(s, a + 8);
	cr_assert_fail("no auxv entry %llu", (unsigned long long)type);
	return 0;
}

Test(stack, layout_from_the_top_down)
{
	char *argv[] = { "prog", "one", "", "three" };
	char *envp[] = { "A=1", "PATH=/bin", NULL };
	uint64_t auxv[] = { AT_PAGESZ, 4096, AT_SECURE, 0, AT_NULL, 0 };
	struct lp_stack_in in = { 4, argv, envp, "/usr/bin/prog", auxv };
	struct stk s;
	uint64_t sp, p;

	cr_assert_eq(build(&s, 1 << 16, &in), 0);
	sp = s.out.sp;
	cr_assert_eq(sp % 16, 0, "sp not 16-byte aligned");
	cr_assert_eq(rd64(&s, TOP - 8), 0, "end marker");
	cr_assert_str_eq(str_at(&s, TOP - 8 - 14), "/usr/bin/prog");
	cr_assert_eq(aux_val(&s, AT_EXECFN), TOP - 8 - 14);
	cr_assert_eq(s.out.env_end, TOP - 8 - 14);
	cr_assert_eq(s.out.env_start, s.out.env_end - 4 - 10);
	cr_assert_eq(s.out.arg_end, s.out.env_start);
	cr_assert_eq(s.out.arg_start, s.out.arg_end - 5 - 4 - 1 - 6);
	/* argc, argv[], NULL, envp[], NULL, auxv */
	cr_assert_eq(rd64(&s, sp), 4);
	p = s.out.arg_start;
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(rd64(&s, sp + 8 + 8 * i), p);
		cr_assert_str_eq(str_at(&s, p), argv[i]);
		p += strlen(argv[i]) + 1;
	}
	cr_assert_eq(rd64(&s, sp + 8 + 32), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(rd64(&s, sp + 48 + 8 * i), p);
		cr_assert_str_eq(str_at(&s, p), envp[i]);
		p += strlen(envp[i]) + 1;
	}
	cr_assert_eq(rd64(&s, sp + 48 + 16), 0);
	cr_assert_eq(s.out.auxv, sp + 72);
	cr_assert_eq(s.out.auxv_bytes, 6 * 16);
	/* platform right below the strings rounded to 16, random below it */
	uint64_t plat = aux_val(&s, AT_PLATFORM), rnd = aux_val(&s, AT_RANDOM);
	cr_assert_eq(plat, (s.out.arg_start & ~15ull) - 7);
	cr_assert_str_eq(str_at(&s, plat), "x86_64");
	cr_assert_eq(rnd, plat - 16);
	cr_assert_geq(rnd, s.out.auxv + s.out.auxv_bytes);
	cr_assert_lt(rnd - (s.out.auxv + s.out.auxv_bytes), 16,
		     "more padding than alignment needs");
	free(s.buf);
}

Test(stack, auxv_entries_go_where_the_kernel_puts_them)
{
	uint64_t t[16];
	char *argv[] = { "p" };
	uint64_t kernelish[] = { AT_SYSINFO_EHDR, 1, AT_HWCAP, 2, AT_SECURE, 0,
				 AT_RANDOM, 99, AT_HWCAP2, 3, AT_EXECFN, 98,
				 AT_PLATFORM, 97, 27, 28, 28, 32, AT_NULL, 0 };
	uint64_t want1[] = { AT_SYSINFO_EHDR, AT_HWCAP, AT_SECURE, AT_RANDOM,
			     AT_HWCAP2, AT_EXECFN, AT_PLATFORM, 27, 28, AT_NULL };
	uint64_t no_hwcap2[] = { AT_HWCAP, 2, AT_SECURE, 0, 27, 28, AT_NULL, 0 };
	uint64_t want2[] = { AT_HWCAP, AT_SECURE, AT_RANDOM, AT_EXECFN,
			     AT_PLATFORM, 27, AT_NULL };
	uint64_t no_secure[] = { AT_PAGESZ, 4096, AT_NULL, 0 };
	uint64_t want3[] = { AT_PAGESZ, AT_RANDOM, AT_EXECFN, AT_PLATFORM,
			     AT_NULL };
	uint64_t want4[] = { AT_RANDOM, AT_EXECFN, AT_PLATFORM, AT_NULL };
	struct lp_stack_in in = { 1, argv, NULL, "p", kernelish };
	struct stk s;
	unsigned n;

	cr_assert_eq(build(&s, 1 << 16, &in), 0);
	n = aux_types(&s, t, 16);
	cr_assert_eq(n, 10);
	cr_assert_arr_eq(t, want1, sizeof(want1));
	cr_assert_neq(aux_val(&s, AT_RANDOM), 99, "caller's AT_RANDOM kept");
	cr_assert_str_eq(str_at(&s, aux_val(&s, AT_EXECFN)), "p");
	cr_assert_eq(aux_val(&s, 28), 32, "values are kept");
	free(s.buf);

	in.auxv = no_hwcap2;
	cr_assert_eq(build(&s, 1 << 16, &in), 0);
	n = aux_types(&s, t, 16);
	cr_assert_eq(n, 7);
	cr_assert_arr_eq(t, want2, sizeof(want2));
	free(s.buf);

	in.auxv = no_secure;
	cr_assert_eq(build(&s, 1 << 16, &in), 0);
	n = aux_types(&s, t, 16);
	cr_assert_eq(n, 5);
	cr_assert_arr_eq(t, want3, sizeof(want3));
	free(s.buf);

	in.auxv = NULL;
	cr_assert_eq(build(&s, 1 << 16, &in), 0);
	n = aux_types(&s, t, 16);
	cr_assert_eq(n, 4);
	cr_assert_arr_eq(t, want4, sizeof(want4));
	free(s.buf);
}

Test(stack, random_bytes_are_random)
{
	char *argv[] = { "p" };
	struct lp_stack_in in = { 1, argv, NULL, "p", NULL };
	struct stk a, b;

	cr_assert_eq(build(&a, 4096, &in), 0);
	cr_assert_eq(build(&b, 4096, &in), 0);
	cr_assert_eq(aux_val(&a, AT_RANDOM), aux_val(&b, AT_RANDOM));
	cr_assert_neq(memcmp(str_at(&a, aux_val(&a, AT_RANDOM)),
			     str_at(&b, aux_val(&b, AT_RANDOM)), 16),
		      0);
	free(a.buf);
	free(b.buf);
}

Test(stack, exact_fit_and_e2big)
{
	char *argv[] = { "prog", "arg" };
	char *envp[] = { "X=y", NULL };
	struct lp_stack_in in = { 2, argv, envp, "/prog", NULL };
	struct stk s;
	size_t need;

	struct stk t;
	uint64_t rnd;

	cr_assert_eq(build(&s, 1 << 16, &in), 0);
	need = TOP - s.out.sp;
	rnd = aux_val(&s, AT_RANDOM);
	/* Below sp is left alone; [sp, top) is all written: the same bytes
	 * whatever the buffer held (but for the random ones). */
	t.size = 1 << 16;
	t.buf = malloc(t.size);
	memset(t.buf, 0x55, t.size);
	cr_assert_eq(lp_stack_build(t.buf, TOP, t.size, &in, &t.out), 0);
	for (size_t i = 0; i < (1 << 16) - need; i++)
		cr_assert(s.buf[i] == 0xaa && t.buf[i] == 0x55,
			  "byte %zu below sp written", i);
	for (size_t i = (1 << 16) - need; i < (1 << 16); i++) {
		uint64_t at = TOP - (1 << 16) + i;

		if (at < rnd || at >= rnd + 16)
			cr_assert_eq(s.buf[i], t.buf[i],
				     "byte at top-%zu not written",
				     (1 << 16) - i);
	}
	free(t.buf);
	free(s.buf);

	cr_assert_eq(build(&s, need, &in), 0);
	cr_assert_eq(s.out.sp, TOP - need);
	free(s.buf);
	struct lp_stack_out before = { .sp = 12345 };
	s.out = before;
	cr_assert_eq(build(&s, need - 1, &in), -E2BIG);
	cr_assert_eq(s.out.sp, 12345, "out written on failure");
	free(s.buf);
	cr_assert_eq(build(&s, 16, &in), -E2BIG);
	free(s.buf);
}

Test(stack, strings_longer_than_max_arg_strlen_are_e2big)
{
	char *big = malloc(LP_STACK_MAX_STRLEN + 1);
	char *argv[] = { "p", big };
	struct lp_stack_in in = { 2, argv, NULL, "p", NULL };
	struct stk s;

	memset(big, 'x', LP_STACK_MAX_STRLEN);
	big[LP_STACK_MAX_STRLEN - 1] = '\0'; /* NUL included: just fits */
	cr_assert_eq(build(&s, 1 << 20, &in), 0);
	free(s.buf);
	big[LP_STACK_MAX_STRLEN - 1] = 'x';
	big[LP_STACK_MAX_STRLEN] = '\0';
	cr_assert_eq(build(&s, 1 << 20, &in), -E2BIG);
	free(s.buf);
	char *envp[] = { big, NULL };
	argv[1] = "ok";
	in.envp = envp;
	cr_assert_eq(build(&s, 1 << 20, &in), -E2BIG);
	free(s.buf);
	in.envp = NULL;
	in.execfn = big;
	cr_assert_eq(build(&s, 1 << 20, &in), -E2BIG);
	free(s.buf);
	free(big);
}

Test(stack, empty_argv_becomes_one_empty_string)
{
	struct lp_stack_in in = { 0, NULL, NULL, "/p", NULL };
	struct stk s;

	cr_assert_eq(build(&s, 4096, &in), 0);
	cr_assert_eq(rd64(&s, s.out.sp), 1);
	cr_assert_str_eq(str_at(&s, rd64(&s, s.out.sp + 8)), "");
	cr_assert_eq(rd64(&s, s.out.sp + 16), 0);
	free(s.buf);
}

Test(stack, bad_arguments)
{
	char *argv[] = { "p" };
	struct lp_stack_in in = { 1, argv, NULL, "p", NULL };
	struct lp_stack_out out;
	unsigned char buf[512];

	cr_assert_eq(lp_stack_build(NULL, TOP, 512, &in, &out), -EINVAL);
	cr_assert_eq(lp_stack_build(buf, TOP, 512, NULL, &out), -EINVAL);
	cr_assert_eq(lp_stack_build(buf, TOP, 512, &in, NULL), -EINVAL);
	cr_assert_eq(lp_stack_build(buf, 100, 512, &in, &out), -EINVAL);
	in.argc = -1;
	cr_assert_eq(lp_stack_build(buf, TOP, 512, &in, &out), -EINVAL);
	in.argc = 2;
	in.argv = NULL;
	cr_assert_eq(lp_stack_build(buf, TOP, 512, &in, &out), -EINVAL);
	in = (struct lp_stack_in){ 1, argv, NULL, NULL, NULL };
	cr_assert_eq(lp_stack_build(buf, TOP, 512, &in, &out), -EINVAL);
	in.execfn = "p";
	errno = 4321;
	cr_assert_eq(lp_stack_build(buf, TOP, 512, &in, &out), 0);
	cr_assert_eq(errno, 4321);
}

/* ---- Against the kernel ---- */

struct probe {
	uint64_t sp, top;
	unsigned char bytes[1 << 16];
	size_t len;
};

/* Run the probe with argv and envp and address randomization off; false
 * if personality() is refused here. */
static bool run_probe(char *const argv[], char *const envp[], struct probe *p)
{
	int fds[2], st;
	size_t got = 0;
	pid_t pid;
	ssize_t n;
	static unsigned char raw[16 + (1 << 16)];

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int cur = personality(0xffffffff);

		close(fds[0]);
		dup2(fds[1], 1);
		if (cur < 0 || personality(cur | ADDR_NO_RANDOMIZE) < 0)
			_exit(126);
		execve(LP_STACK_PROBE, argv, envp);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], raw + got, sizeof(raw) - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
		return false;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "probe failed (status 0x%x)", st);
	cr_assert_gt(got, 16);
	memcpy(&p->sp, raw, 8);
	memcpy(&p->top, raw + 8, 8);
	p->len = got - 16;
	cr_assert_eq(p->len, p->top - p->sp);
	memcpy(p->bytes, raw + 16, p->len);
	return true;
}

static uint64_t probe64(const struct probe *p, uint64_t addr)
{
	uint64_t v;

	cr_assert(addr >= p->sp && addr + 8 <= p->top);
	memcpy(&v, p->bytes + (addr - p->sp), 8);
	return v;
}

/* The kernel's stack for (argv, envp) and ours from the same strings and
 * the kernel's auxv are the same bytes, but for the 16 random ones. */
static void same_as_kernel(char *const argv[], int argc, char *const envp[])
{
	static struct probe p;
	uint64_t auxv[128], a, rnd = 0;
	unsigned envc = 0, n = 0;
	struct lp_stack_in in;
	struct lp_stack_out out;
	unsigned char *mine;

	if (!run_probe(argv, envp, &p))
		cr_skip_test("personality(ADDR_NO_RANDOMIZE) refused here");
	while (envp[envc])
		envc++;
	uint64_t kargc = probe64(&p, p.sp);
	cr_assert_eq(kargc, argc ? (uint64_t)argc : 1);
	a = p.sp + 8 * (kargc + 1 + envc + 1 + 1);
	do {
		cr_assert_lt(n, 126);
		auxv[n] = probe64(&p, a + 8 * n);
		auxv[n + 1] = probe64(&p, a + 8 * n + 8);
		if (auxv[n] == AT_RANDOM)
			rnd = auxv[n + 1];
		n += 2;
	} while (auxv[n - 2] != AT_NULL);
	cr_assert_neq(rnd, 0);

	in = (struct lp_stack_in){ argc, argv, envp, LP_STACK_PROBE, auxv };
	mine = malloc(p.len);
	cr_assert_eq(lp_stack_build(mine, p.top, p.len, &in, &out), 0,
		     "does not fit where the kernel's did");
	cr_assert_eq(out.sp, p.sp, "sp 0x%llx, kernel 0x%llx",
		     (unsigned long long)out.sp, (unsigned long long)p.sp);
	cr_assert_eq(out.auxv, a);
	cr_assert_eq(out.auxv_bytes, n * 8);
	for (size_t i = 0; i < p.len; i++) {
		if (p.sp + i >= rnd && p.sp + i < rnd + 16)
			continue;
		cr_assert_eq(mine[i], p.bytes[i],
			     "byte at top-%zu: 0x%02x, kernel 0x%02x",
			     p.len - i, mine[i], p.bytes[i]);
	}
	free(mine);
}

Test(stack, same_bytes_as_the_kernel, .timeout = 60)
{
	char *argv1[] = { LP_STACK_PROBE, NULL };
	char *env1[] = { "A=1", NULL };
	char *argv2[] = { "probe", "a", "bb", "", "dddd", NULL };
	char *env2[] = { "HOME=/root", "PATH=/usr/bin:/bin", "X=", NULL };
	char *argv3[] = { "probe", "a", NULL };
	char *none[] = { NULL };

	same_as_kernel(argv1, 1, env1);
	same_as_kernel(argv2, 5, env2);
	same_as_kernel(argv3, 2, none);
	same_as_kernel(none, 0, env1); /* the kernel makes argv { "" } */
}

Test(stack, same_bytes_as_the_kernel_for_every_alignment, .timeout = 120)
{
	char arg[64], env[64];
	char *argv[] = { "probe", arg, NULL };
	char *envp[] = { env, NULL };

	/* Every string length mod 16 and both parities of the table size. */
	for (int i = 0; i < 32; i++) {
		memset(arg, 'a', (size_t)i);
		arg[i] = '\0';
		snprintf(env, sizeof(env), "E=%d", i / 16);
		same_as_kernel(argv, 2, envp);
		envp[0] = NULL; /* one env string fewer: other parity */
		same_as_kernel(argv, 2, envp);
		envp[0] = env;
	}
}

/* This process's own stack, as the kernel laid it out (randomized): our
 * builder puts the strings at the same places from the top, and the rest
 * in the same order with the same alignment. */
Test(stack, same_shape_as_this_process)
{
	unsigned long long f[52] = { 0 };
	char buf[4096], *s;
	uint64_t execfn, top, rnd, plat, sp, argc = 0, envc = 0;
	static char *argv[256], *envp[4096];
	uint64_t auxv[256];
	ssize_t n;
	int fd;

	fd = open("/proc/self/stat", O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	s = strrchr(buf, ')') + 2;
	for (int i = 3; i <= 51 && s; i++) {
		if (i != 3)
			f[i] = strtoull(s, NULL, 10);
		s = strchr(s, ' ');
		s = s ? s + 1 : NULL;
	}
	sp = f[28];
	execfn = getauxval(AT_EXECFN);
	rnd = getauxval(AT_RANDOM);
	plat = getauxval(AT_PLATFORM);
	top = execfn + strlen((char *)execfn) + 1 + 8;

	/* The kernel's own layout. */
	cr_assert_eq(top % 4096, 0, "top 0x%llx", (unsigned long long)top);
	cr_assert_eq(*(uint64_t *)(top - 8), 0);
	cr_assert_eq(f[51], execfn, "env_end is AT_EXECFN");
	cr_assert_eq(f[50], f[49], "env_start is arg_end");
	cr_assert_str_eq((char *)plat, "x86_64");
	cr_assert_eq(rnd + 16, plat, "random bytes right below platform");
	cr_assert_leq(plat + 7, f[48], "platform below the argv strings");
	cr_assert_eq(sp % 16, 0);
	for (uint64_t p = f[48]; p < f[49]; p += strlen((char *)p) + 1)
		argv[argc++] = (char *)p;
	for (uint64_t p = f[50]; p < f[51]; p += strlen((char *)p) + 1)
		envp[envc++] = (char *)p;
	cr_assert_eq(*(uint64_t *)sp, argc);
	for (uint64_t i = 0; i < argc; i++)
		cr_assert_eq(((char **)sp)[1 + i], argv[i]);
	uint64_t *kaux = (uint64_t *)sp + 1 + argc + 1 + envc + 1;
	fd = open("/proc/self/auxv", O_RDONLY);
	n = read(fd, auxv, sizeof(auxv));
	close(fd);
	cr_assert_eq(memcmp(kaux, auxv, (size_t)n), 0,
		     "auxv not right after envp");
	cr_assert_lt(rnd - ((uint64_t)(uintptr_t)kaux + (uint64_t)n), 16,
		     "more padding than alignment between auxv and random");
	cr_assert_lt(f[48] - (plat + 7), 16 + 8192,
		     "more than alignment and randomization below argv");

	/* Ours, from the same strings and auxv at the same top. */
	struct lp_stack_in in = { (int)argc, argv, envp, (char *)execfn, auxv };
	struct lp_stack_out out;
	size_t size = top - sp + 4096;
	unsigned char *mine = malloc(size);
	uint64_t base = top - size;

	cr_assert_eq(lp_stack_build(mine, top, size, &in, &out), 0);
	cr_assert_eq(out.arg_start, f[48]);
	cr_assert_eq(out.arg_end, f[49]);
	cr_assert_eq(out.env_start, f[50]);
	cr_assert_eq(out.env_end, f[51]);
	cr_assert_eq(memcmp(mine + (f[48] - base), (void *)f[48], top - f[48]),
		     0, "strings differ");
	cr_assert_eq(out.sp % 16, 0);
	cr_assert_geq(out.sp, sp, "ours has no random gap, so it is higher");
	cr_assert_eq(out.auxv_bytes, (size_t)n);
	for (ssize_t i = 0; i < n / 8; i += 2) {
		uint64_t t, v;

		memcpy(&t, mine + (out.auxv - base) + 8 * i, 8);
		memcpy(&v, mine + (out.auxv - base) + 8 * i + 8, 8);
		cr_assert_eq(t, auxv[i], "auxv order differs at %zd", i / 2);
		if (t == AT_RANDOM) {
			cr_assert_eq(v + 16, (out.arg_start & ~15ull) - 7);
		} else if (t == AT_PLATFORM) {
			cr_assert_eq(v, (out.arg_start & ~15ull) - 7);
		} else {
			cr_assert_eq(v, auxv[i + 1]);
		}
	}
	free(mine);
}
