/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the ELF loader: parse any bytes as a program; when
 * they are accepted, the description must be consistent, the layout sane,
 * and pages must fill with exactly the bytes a byte-by-byte model of the
 * image gives.  A broken invariant aborts, which the fuzzer reports like a
 * crash.  Rejections must come with a code and a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loader/elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
	do {                                                                  \
		if (!(x))                                                     \
			abort();                                              \
	} while (0)

/* The content of image byte x by the contract of lp_elf_fill_page: the last
 * segment covering x decides. */
static uint8_t model_byte(const struct lp_elf *e, const uint8_t *data,
			  uint64_t x)
{
	for (unsigned i = e->nseg; i-- > 0;) {
		const struct lp_elf_seg *s = &e->seg[i];

		if (x < s->vaddr || x - s->vaddr >= s->memsz)
			continue;
		if (x - s->vaddr < s->filesz)
			return data[s->offset + (x - s->vaddr)];
		return 0;
	}
	return 0;
}

static void check_page(const struct lp_elf *e, const uint8_t *data,
		       uint64_t page, int full)
{
	static uint8_t buf[LP_ELF_PAGE];

	CHECK(lp_elf_fill_page(e, page, buf) == 0);
	if (!full)
		return;
	for (unsigned i = 0; i < LP_ELF_PAGE; i++)
		CHECK(buf[i] == model_byte(e, data, page + i));
}

static void check_image(const struct lp_elf *e, const uint8_t *data,
			size_t size)
{
	struct lp_elf_range *r;
	static uint8_t buf[LP_ELF_PAGE];
	unsigned n, full = 0;

	CHECK(e->type == 2 || e->type == 3); /* ET_EXEC, ET_DYN */
	CHECK(e->nseg >= 1 && e->nseg <= e->phnum);
	CHECK(e->lo % LP_ELF_PAGE == 0 && e->hi % LP_ELF_PAGE == 0);
	CHECK(e->lo < e->hi && e->hi <= LP_ELF_USER_END);
	CHECK(e->file_size == size);
	CHECK(!e->interp || e->interp[0]);
	for (unsigned i = 0; i < e->nseg; i++) {
		const struct lp_elf_seg *s = &e->seg[i];

		CHECK(s->memsz > 0 && s->filesz <= s->memsz);
		CHECK(s->filesz == 0 || s->offset + s->filesz <= size);
		CHECK(s->vaddr >= e->lo && s->vaddr + s->memsz <= e->hi);
		CHECK(i == 0 || s->vaddr >= s[-1].vaddr);
		CHECK((s->prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) == 0);
	}

	CHECK(lp_elf_layout(e, &r, &n) == 0);
	CHECK(n >= 1 && n <= e->nseg);
	CHECK(r[0].start == e->lo && r[n - 1].end == e->hi);
	for (unsigned i = 0; i < n; i++) {
		CHECK(r[i].start % LP_ELF_PAGE == 0);
		CHECK(r[i].end % LP_ELF_PAGE == 0);
		CHECK(r[i].start < r[i].end);
		CHECK(i == 0 || r[i].start >= r[i - 1].end);
	}
	/* Both ends of every range, fully checked for the first few. */
	for (unsigned i = 0; i < n && i < 64; i++) {
		check_page(e, data, r[i].start, full++ < 8);
		check_page(e, data, r[i].end - LP_ELF_PAGE, full++ < 8);
	}
	/* The page where each segment's file bytes end (.data/.bss). */
	for (unsigned i = 0; i < e->nseg && i < 64; i++) {
		uint64_t fend = e->seg[i].vaddr + e->seg[i].filesz;
		uint64_t pg = fend & ~(uint64_t)(LP_ELF_PAGE - 1);

		if (pg < e->hi)
			check_page(e, data, pg, full++ < 16);
	}
	CHECK(lp_elf_fill_page(e, e->lo + 1, buf) == -EINVAL);
	CHECK(lp_elf_fill_page(e, e->hi, buf) == -EFAULT);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[160];
	struct lp_elf *e = (struct lp_elf *)1;
	int rc;

	msg[0] = '\0';
	rc = lp_elf_parse_mem(data, size, &e, msg, sizeof(msg));
	if (rc) {
		CHECK(rc >= LP_ELF_ENOENT && rc <= LP_ELF_IO);
		CHECK(e == NULL && msg[0] != '\0');
		return 0;
	}
	CHECK(e != NULL);
	check_image(e, data, size);
	lp_elf_close(e);
	return 0;
}
