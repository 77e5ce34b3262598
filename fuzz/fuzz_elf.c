/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the ELF loader: parse any bytes as a program; when
 * they are accepted, the description must be consistent, the layout sane,
 * and pages must fill with exactly the bytes a byte-by-byte model of the
 * image gives.  The same bytes opened as a file must give the same verdict,
 * message and image.  A broken invariant aborts, which the fuzzer reports
 * like a crash.  Rejections must come with a code and a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loader/elf.h"
#include "fuzz.h"

/* The same bytes as a file (a memfd, opened again by path), so that the
 * pread path and libelf's file reader are fuzzed too. */
static int file_of(const uint8_t *data, size_t size, char *path, size_t n)
{
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
		CHECK(fd >= 0);
	}
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	snprintf(path, n, "/proc/self/fd/%d", fd);
	return fd;
}

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
	/* The page where each segment's file bytes end (.data/.bss), when
	 * it is the segment's: a segment whose file bytes fill it to a page
	 * boundary ends there, and the next page may be a hole. */
	for (unsigned i = 0; i < e->nseg && i < 64; i++) {
		uint64_t fend = e->seg[i].vaddr + e->seg[i].filesz;
		uint64_t pg = fend & ~(uint64_t)(LP_ELF_PAGE - 1);

		if (pg < e->hi && pg < e->seg[i].vaddr + e->seg[i].memsz)
			check_page(e, data, pg, full++ < 16);
	}
	CHECK(lp_elf_fill_page(e, e->lo + 1, buf) == -EINVAL);
	CHECK(lp_elf_fill_page(e, e->hi, buf) == -EFAULT);
	free(r);
}

/* The file and the buffer give the same verdict and the same image. */
static void check_file(const struct lp_elf *m, int rc, const char *msg,
		       const uint8_t *data, size_t size)
{
	static uint8_t a[LP_ELF_PAGE], b[LP_ELF_PAGE];
	struct lp_elf *f = (struct lp_elf *)1;
	char path[64], fmsg[160] = "";

	file_of(data, size, path, sizeof(path));
	CHECK(lp_elf_open(path, &f, fmsg, sizeof(fmsg)) == rc);
	CHECK(strcmp(msg, fmsg) == 0);
	if (rc) {
		CHECK(f == NULL);
		return;
	}
	CHECK(f->fd >= 0 && f->nseg == m->nseg && f->entry == m->entry);
	for (unsigned i = 0; i < m->nseg; i++)
		CHECK(f->seg[i].vaddr == m->seg[i].vaddr &&
		      f->seg[i].memsz == m->seg[i].memsz &&
		      f->seg[i].offset == m->seg[i].offset &&
		      f->seg[i].filesz == m->seg[i].filesz &&
		      f->seg[i].prot == m->seg[i].prot);
	CHECK(f->lo == m->lo && f->hi == m->hi);
	CHECK(f->phdr_vaddr == m->phdr_vaddr);
	CHECK((!f->interp && !m->interp) ||
	      (f->interp && m->interp && !strcmp(f->interp, m->interp)));
	for (unsigned i = 0; i < m->nseg && i < 8; i++) {
		uint64_t pg = m->seg[i].vaddr & ~(uint64_t)(LP_ELF_PAGE - 1);

		CHECK(lp_elf_fill_page(m, pg, a) == 0);
		CHECK(lp_elf_fill_page(f, pg, b) == 0);
		CHECK(memcmp(a, b, LP_ELF_PAGE) == 0);
	}
	lp_elf_close(f);
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
	} else {
		CHECK(e != NULL);
		check_image(e, data, size);
	}
	check_file(e, rc, msg, data, size);
	lp_elf_close(e);
	return 0;
}
