/* A heap far larger than the cap: malloc of small and large blocks (brk
 * and mmap), realloc growth (mremap), free and reuse; every byte checked. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1024 * 1024)

int main(int argc, char **argv)
{
	size_t total = (argc > 1 ? (size_t)atoi(argv[1]) : 48) * MB;
	size_t nsmall = total / 2 / 4096, nbig = total / 2 / MB;
	unsigned char **small = malloc(nsmall * sizeof(*small));
	unsigned char **big = malloc(nbig * sizeof(*big));
	uint64_t sum = 0, check = 0;

	for (size_t i = 0; i < nsmall; i++) {
		small[i] = malloc(4000);
		memset(small[i], (int)(i * 7), 4000);
	}
	for (size_t i = 0; i < nbig; i++) {
		big[i] = malloc(MB);
		for (size_t j = 0; j < MB; j += 64)
			big[i][j] = (unsigned char)(i + j / 64);
	}
	/* grow some big blocks: realloc moves or extends them */
	for (size_t i = 0; i < nbig; i += 4) {
		big[i] = realloc(big[i], 3 * MB);
		memset(big[i] + MB, (int)i, 2 * MB);
	}
	for (size_t i = 0; i < nsmall; i += 2) {
		free(small[i]);
		small[i] = NULL;
	}
	for (size_t i = 0; i < nsmall; i++)
		if (small[i])
			for (size_t j = 0; j < 4000; j += 100)
				sum += small[i][j], check += (unsigned char)(i * 7);
	for (size_t i = 0; i < nbig; i++) {
		for (size_t j = 0; j < MB; j += 64) {
			sum += big[i][j];
			check += (unsigned char)(i + j / 64);
		}
		if (i % 4 == 0)
			for (size_t j = MB; j < 3 * MB; j += 4096)
				sum += big[i][j], check += (unsigned char)i;
	}
	printf("heap %zu MiB: %s (%llu)\n", total / MB, sum == check ? "ok" : "BAD",
	       (unsigned long long)sum);
	return sum == check ? 0 : 1;
}
