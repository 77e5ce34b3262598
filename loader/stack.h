/* SPDX-License-Identifier: MIT */
/*
 * The initial stack of a program started by the launcher (internal to
 * lazypage): argc, argv, envp and the auxiliary vector laid out exactly as
 * the x86-64 kernel's execve and create_elf_tables do, given the same
 * strings and auxv entries, with address randomization off (the kernel also
 * moves the tables down by a random 0..8191 bytes unless ADDR_NO_RANDOMIZE).
 *
 * From top (exclusive) down:
 *   8 zero bytes (end marker)
 *   execfn string                      AT_EXECFN
 *   envp strings, envp[0] lowest       env_start .. env_end
 *   argv strings, argv[0] lowest       arg_start .. arg_end
 *   (down to a multiple of 16)
 *   "x86_64\0"                         AT_PLATFORM
 *   16 random bytes                    AT_RANDOM
 *   (padding, so that sp is a multiple of 16)
 *   auxv pairs ending with AT_NULL     auxv .. auxv + auxv_bytes
 *   envp[], NULL
 *   argv[], NULL
 *   argc (8 bytes)                     sp
 */
#ifndef LP_LOADER_STACK_H
#define LP_LOADER_STACK_H

#include <stddef.h>
#include <stdint.h>

/* Longest argument or environment string, NUL included (the kernel's
 * MAX_ARG_STRLEN): a longer one fails with -E2BIG, as in execve. */
#define LP_STACK_MAX_STRLEN (32u * 4096u)

struct lp_stack_in {
	int argc;
	char *const *argv;      /* argc strings */
	char *const *envp;      /* NULL-terminated; NULL for none */
	const char *execfn;     /* the path as given to execve */
	/* (type, value) pairs ending with AT_NULL; NULL for none.  Entries of
	 * type AT_RANDOM, AT_EXECFN and AT_PLATFORM are dropped: the builder
	 * inserts its own where the kernel puts them (AT_RANDOM after
	 * AT_SECURE, AT_EXECFN and AT_PLATFORM after AT_HWCAP2 or AT_RANDOM;
	 * at the end if there is no AT_SECURE).  The rest keeps its order. */
	const uint64_t *auxv;
};

struct lp_stack_out {
	uint64_t sp;                 /* initial %rsp: points at argc */
	uint64_t arg_start, arg_end; /* argv strings (PR_SET_MM_MAP's fields) */
	uint64_t env_start, env_end; /* envp strings */
	uint64_t auxv;               /* the auxv on the stack */
	size_t auxv_bytes;           /* its size, AT_NULL pair included */
};

/* Build the stack into buf, which stands for the addresses
 * [top - size, top): bytes [sp, top) are written (gaps zeroed), bytes
 * below sp are left alone.  The 16 AT_RANDOM bytes come from getrandom().
 * 0 and *out; -E2BIG if it does not fit in size or a string is longer than
 * LP_STACK_MAX_STRLEN; -EINVAL for a NULL buf, in, out or execfn, argc < 0
 * or argv NULL with argc > 0, or top < size; -errno of getrandom.  errno is
 * left alone. */
int lp_stack_build(void *buf, uint64_t top, size_t size,
		   const struct lp_stack_in *in, struct lp_stack_out *out);

#endif
