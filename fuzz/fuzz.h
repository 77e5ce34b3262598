/* SPDX-License-Identifier: MIT */
/*
 * What every harness here shares: the entry point that libFuzzer, or
 * replay.c in the normal build, calls with each input, and CHECK, which
 * aborts on a broken invariant (libFuzzer reports an abort like a crash; a
 * replay test fails).
 */
#ifndef LP_FUZZ_H
#define LP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
	do {                                                                  \
		if (!(x))                                                     \
			abort();                                              \
	} while (0)

#endif /* LP_FUZZ_H */
