/* SPDX-License-Identifier: MIT */
/*
 * Replay inputs through a libFuzzer harness without libFuzzer: the normal
 * build links each harness of the parsers with this main, and a meson test
 * ('fuzz-replay-NAME') feeds it the seed corpus fuzz/corpus/NAME/ and the
 * crashes found so far, tests/fuzz-regressions/NAME/.  A broken invariant
 * aborts (a failed test).  Usage: replay DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	unsigned n = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *de;

		if (!d)
			continue; /* no regressions yet */
		while ((de = readdir(d))) {
			char path[4096];
			FILE *f;

			if (de->d_name[0] == '.' || de->d_type == DT_DIR)
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (!(f = fopen(path, "rb"))) {
				perror(path);
				return 1;
			}
			size_t len = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			printf("%s\n", path);
			fflush(stdout);
			LLVMFuzzerTestOneInput(buf, len);
			n++;
		}
		closedir(d);
	}
	printf("%u inputs replayed\n", n);
	return n ? 0 : 1;
}
