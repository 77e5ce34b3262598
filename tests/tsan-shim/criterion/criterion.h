/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the part of Criterion the concurrency tests use, for the
 * ThreadSanitizer build only: Criterion itself cannot start under TSan (its
 * inheritable arena cannot be mapped where TSan's layout allows,
 * https://github.com/Snaipe/Criterion/issues/274).  Each Test() runs in a
 * forked child as in Criterion, with .signal and .timeout; shim.c is the
 * main.  Exit status: 0 all passed, 1 some failed, 77 all skipped.
 */
#ifndef LP_TSAN_SHIM_CRITERION_H
#define LP_TSAN_SHIM_CRITERION_H

#include <stdbool.h>

#pragma GCC diagnostic ignored "-Wformat-zero-length"

struct shim_opts {
	int dummy_;
	int signal;
	int exit_code;
	double timeout;
	const char *description;
	bool disabled;
};

void shim_register(const char *suite, const char *name, void (*fn)(void),
		   const struct shim_opts *opts);
__attribute__((format(printf, 4, 5))) void shim_check(bool ok, const char *where,
	const char *expr, const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2))) void shim_skip(const char *fmt, ...);

#define SHIM_STR2_(x) #x
#define SHIM_STR_(x) SHIM_STR2_(x)
#define SHIM_WHERE_ __FILE__ ":" SHIM_STR_(__LINE__)

#define Test(suite, name, ...)                                                \
	static void suite##_##name##_impl(void);                              \
	static const struct shim_opts suite##_##name##_opts = {              \
		.dummy_ = 0, __VA_ARGS__                                      \
	};                                                                    \
	__attribute__((constructor)) static void suite##_##name##_reg(void)  \
	{                                                                     \
		shim_register(#suite, #name, suite##_##name##_impl,           \
			      &suite##_##name##_opts);                        \
	}                                                                     \
	static void suite##_##name##_impl(void)

#define cr_assert(c, ...) shim_check(!!(c), SHIM_WHERE_, #c, "" __VA_ARGS__)
#define cr_assert_not(c, ...) shim_check(!(c), SHIM_WHERE_, "!(" #c ")", "" __VA_ARGS__)
#define cr_assert_fail(...) shim_check(false, SHIM_WHERE_, "fail", "" __VA_ARGS__)
#define cr_assert_eq(a, b, ...) shim_check((a) == (b), SHIM_WHERE_, #a " == " #b, "" __VA_ARGS__)
#define cr_assert_neq(a, b, ...) shim_check((a) != (b), SHIM_WHERE_, #a " != " #b, "" __VA_ARGS__)
#define cr_assert_lt(a, b, ...) shim_check((a) < (b), SHIM_WHERE_, #a " < " #b, "" __VA_ARGS__)
#define cr_assert_leq(a, b, ...) shim_check((a) <= (b), SHIM_WHERE_, #a " <= " #b, "" __VA_ARGS__)
#define cr_assert_gt(a, b, ...) shim_check((a) > (b), SHIM_WHERE_, #a " > " #b, "" __VA_ARGS__)
#define cr_assert_geq(a, b, ...) shim_check((a) >= (b), SHIM_WHERE_, #a " >= " #b, "" __VA_ARGS__)
#define cr_assert_null(p, ...) shim_check((p) == NULL, SHIM_WHERE_, #p " == NULL", "" __VA_ARGS__)
#define cr_assert_not_null(p, ...) shim_check((p) != NULL, SHIM_WHERE_, #p " != NULL", "" __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) shim_check(!strcmp((a), (b)), SHIM_WHERE_, #a " equals " #b, "" __VA_ARGS__)
#define cr_skip_test(...) shim_skip("" __VA_ARGS__)

#endif
