/* SPDX-License-Identifier: MIT */
/*
 * Prints its own initial stack as the kernel built it, for test_stack.c:
 * the addresses sp (where argc is) and top (just above the 8-byte end
 * marker that follows the AT_EXECFN string), then the bytes [sp, top).
 * Runs before anything could change them: glibc's start-up reads them only.
 */
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static int put(const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(1, c, n);

		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t sp = (uint64_t)(uintptr_t)argv - 8;
	const char *execfn = (const char *)getauxval(AT_EXECFN);
	uint64_t top;

	if (!execfn || *(long *)(uintptr_t)sp != argc)
		return 2;
	top = (uint64_t)(uintptr_t)execfn + strlen(execfn) + 1 + 8;
	if (put(&sp, 8) || put(&top, 8) ||
	    put((const void *)(uintptr_t)sp, top - sp))
		return 3;
	return 0;
}
