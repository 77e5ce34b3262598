/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for lp_parse_size (sizes in LAZYPAGE_MEM,
 * LAZYPAGE_SWAP_MAX, vmrun --mem and --swap-max): any bytes as a string.
 * The result must match an independent model of the documented grammar,
 *   DIGITS [K|M|G|T (either case) [i]] [B]   or   DIGITS [b]
 * in powers of 1024: accepted exactly when the model accepts, with the
 * model's value; -ERANGE exactly when the value does not fit in 64 bits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lazypage/lazypage.h>
#include "fuzz.h"

/* 0 with *v, -EINVAL, or -ERANGE, by hand. */
static int model(const char *s, unsigned __int128 *v)
{
	unsigned __int128 n = 0, lim = (unsigned __int128)UINT64_MAX;
	unsigned shift = 0;
	int big = 0;

	if (!(*s >= '0' && *s <= '9'))
		return -EINVAL;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (unsigned)(*s++ - '0');
		if (n > lim) {
			big = 1; /* too many digits: -ERANGE if well formed */
			n = lim + 1;
		}
	}
	switch (*s) {
	case 'k': case 'K': shift = 10; s++; break;
	case 'm': case 'M': shift = 20; s++; break;
	case 'g': case 'G': shift = 30; s++; break;
	case 't': case 'T': shift = 40; s++; break;
	default: break;
	}
	if (shift && *s == 'i')
		s++;
	if (*s == 'B' || (!shift && *s == 'b'))
		s++;
	if (*s)
		return -EINVAL;
	if (big)
		return -ERANGE;
	n <<= shift;
	if (n > lim)
		return -ERANGE;
	*v = n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	unsigned __int128 want = 0;
	uint64_t got = 0x5a5a5a5a5a5a5a5aull;

	CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	int rc = lp_parse_size(s, &got);
	int mrc = model(s, &want);
	CHECK(rc == mrc);
	if (rc == 0)
		CHECK(got == (uint64_t)want);
	else
		CHECK(got == 0x5a5a5a5a5a5a5a5aull); /* untouched on error */
	CHECK(lp_parse_size(NULL, &got) == -EINVAL);
	CHECK(lp_parse_size(s, NULL) == -EINVAL);
	free(s);
	return 0;
}
