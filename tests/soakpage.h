/* SPDX-License-Identifier: MIT */
/*
 * The page the soak programs write and check, test_soak.c in its own vm and
 * progs/soakfork.c under vmrun: {magic, page index, sequence number,
 * checksum, payload}, one 4 KiB page; each program has its own magic.
 */
#ifndef LP_TEST_SOAKPAGE_H
#define LP_TEST_SOAKPAGE_H

#include <stdint.h>

#define WORDS (4096 / 8 - 4)

struct page {
	uint64_t magic, idx, seq, sum;
	uint64_t payload[WORDS];
};

static inline uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* FNV-1a over the payload, seeded with the header (sum aside). */
static inline uint64_t checksum(const struct page *p)
{
	uint64_t h = 0xcbf29ce484222325ull ^ p->magic ^ (p->idx << 1) ^ (p->seq << 7);
	for (unsigned w = 0; w < WORDS; w++)
		h = (h ^ p->payload[w]) * 0x100000001b3ull;
	return h;
}

#endif
