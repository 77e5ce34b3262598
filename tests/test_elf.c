/* SPDX-License-Identifier: MIT */
/*
 * The ELF loader: real programs described and paged exactly as the kernel
 * maps them, crafted images for the page rules, and one crafted file per
 * rule that must be refused.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elfimg.h"
#include "loader/elf.h"

#define PAGE LP_ELF_PAGE

static struct lp_elf *parse_ok(const struct img *m)
{
	struct lp_elf *e = NULL;
	char msg[256] = "";
	int rc = lp_elf_parse_mem(m->b, m->len, &e, msg, sizeof(msg));

	cr_assert_eq(rc, 0, "rejected (%d): %s", rc, msg);
	cr_assert_not_null(e);
	return e;
}

static void accept(const struct img *m)
{
	lp_elf_close(parse_ok(m));
}

/* m is refused with code and a message containing part. */
static void reject(const struct img *m, int code, const char *part)
{
	struct lp_elf *e = (struct lp_elf *)1;
	char msg[256] = "";
	int rc = lp_elf_parse_mem(m->b, m->len, &e, msg, sizeof(msg));

	cr_assert_eq(rc, code, "got %d (%s), want %d", rc, msg, code);
	cr_assert_null(e, "out not cleared on failure");
	cr_assert(strstr(msg, part), "message \"%s\" lacks \"%s\"", msg, part);
}

static void reject_exactly(const struct img *m, int code, const char *want)
{
	struct lp_elf *e;
	char msg[256] = "";
	int rc = lp_elf_parse_mem(m->b, m->len, &e, msg, sizeof(msg));

	cr_assert_eq(rc, code, "got %d (%s), want %d", rc, msg, code);
	cr_assert_str_eq(msg, want);
}

static char *write_temp(const void *buf, size_t len)
{
	char *path = strdup("/tmp/lp-elf-XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	return path;
}

/* ---- Description of crafted programs ---- */

Test(elf, crafted_static_program_is_described)
{
	static struct img m;
	struct lp_elf *e;

	img_static(&m);
	e = parse_ok(&m);
	cr_assert_eq(e->type, ET_EXEC);
	cr_assert_eq(e->entry, 0x401000);
	cr_assert_eq(e->phnum, 4);
	cr_assert_eq(e->phentsize, sizeof(Elf64_Phdr));
	cr_assert_eq(e->nseg, 3);
	cr_assert_eq(e->seg[0].vaddr, 0x400000);
	cr_assert_eq(e->seg[0].prot, PROT_READ);
	cr_assert_eq(e->seg[1].prot, PROT_READ | PROT_EXEC);
	cr_assert_eq(e->seg[2].vaddr, 0x403100);
	cr_assert_eq(e->seg[2].memsz, 0x1f00);
	cr_assert_eq(e->seg[2].offset, 0x2100);
	cr_assert_eq(e->seg[2].filesz, 0x100);
	cr_assert_eq(e->seg[2].prot, PROT_READ | PROT_WRITE);
	cr_assert_null(e->interp);
	cr_assert_eq(e->lo, 0x400000);
	cr_assert_eq(e->hi, 0x405000);
	cr_assert_eq(e->phdr_vaddr, 0x400040, "phdrs are in the first PT_LOAD");
	cr_assert_not(e->exec_stack);
	cr_assert_eq(e->file_size, 0x3000);
	cr_assert_eq(e->align, 0x1000);
	cr_assert_eq(e->fd, -1);
	lp_elf_close(e);
}

Test(elf, crafted_pie_is_described)
{
	static struct img m;
	struct lp_elf *e;

	img_pie(&m);
	e = parse_ok(&m);
	cr_assert_eq(e->type, ET_DYN);
	cr_assert_str_eq(e->interp, IMG_INTERP);
	cr_assert_eq(e->phdr_vaddr, 64);
	cr_assert(e->exec_stack, "no PT_GNU_STACK means an executable stack");
	cr_assert_eq(e->lo, 0);
	cr_assert_eq(e->hi, 0x4000);
	cr_assert_eq(e->nseg, 3);
	lp_elf_close(e);
}

Test(elf, phdr_address_comes_from_pt_phdr_else_the_covering_load)
{
	static struct img m;
	struct lp_elf *e;

	img_pie(&m);
	img_ph(&m, 0)->p_vaddr = 0x240;
	e = parse_ok(&m);
	cr_assert_eq(e->phdr_vaddr, 0x240, "PT_PHDR is believed");
	lp_elf_close(e);

	/* No PT_PHDR and no PT_LOAD holding the table: not mapped. */
	img_init(&m, ET_EXEC, 0x2000);
	img_add(&m, PT_LOAD, PF_R | PF_X, 0x1000, 0x401000, 0x1000, 0x1000);
	img_eh(&m)->e_entry = 0x401000;
	e = parse_ok(&m);
	cr_assert_eq(e->phdr_vaddr, 0);
	lp_elf_close(e);
}

Test(elf, exec_stack_follows_pt_gnu_stack)
{
	static struct img m;
	struct lp_elf *e;

	img_static(&m);
	img_ph(&m, 3)->p_flags = PF_R | PF_W | PF_X;
	e = parse_ok(&m);
	cr_assert(e->exec_stack);
	lp_elf_close(e);
	img_eh(&m)->e_phnum = 3; /* drop PT_GNU_STACK */
	e = parse_ok(&m);
	cr_assert(e->exec_stack);
	lp_elf_close(e);
}

Test(elf, align_is_the_largest_power_of_two_p_align)
{
	static struct img m;
	struct lp_elf *e;

	img_pie(&m);
	img_ph(&m, 3)->p_align = 0x200000;
	img_ph(&m, 4)->p_align = 0x300000; /* not a power of two: ignored */
	e = parse_ok(&m);
	cr_assert_eq(e->align, 0x200000);
	lp_elf_close(e);
}

/* ---- Layout and page contents of crafted images ---- */

Test(elf, layout_gives_a_shared_page_to_the_later_segment)
{
	static struct img m;
	struct lp_elf_range *r;
	struct lp_elf *e;
	unsigned n;

	/* text ends inside page 0x402000 where data begins */
	img_init(&m, ET_EXEC, 0x4000);
	img_add(&m, PT_LOAD, PF_R | PF_X, 0x1000, 0x401000, 0x1800, 0x1800);
	img_add(&m, PT_LOAD, PF_R | PF_W, 0x2800, 0x402800, 0x100, 0x2000);
	img_eh(&m)->e_entry = 0x401000;
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_layout(e, &r, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(r[0].start, 0x401000);
	cr_assert_eq(r[0].end, 0x402000);
	cr_assert_eq(r[0].prot, PROT_READ | PROT_EXEC);
	cr_assert_eq(r[1].start, 0x402000);
	cr_assert_eq(r[1].end, 0x405000);
	cr_assert_eq(r[1].prot, PROT_READ | PROT_WRITE);
	free(r);
	lp_elf_close(e);

	/* A segment wholly inside a page it shares with the next owns no
	 * page at all. */
	img_init(&m, ET_EXEC, 0x4000);
	img_add(&m, PT_LOAD, PF_R | PF_X, 0x1000, 0x401000, 0x1400, 0x1400);
	img_add(&m, PT_LOAD, PF_R, 0x2400, 0x402400, 0x400, 0x400);
	img_add(&m, PT_LOAD, PF_R | PF_W, 0x2800, 0x402800, 0x100, 0x800);
	img_eh(&m)->e_entry = 0x401000;
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_layout(e, &r, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(r[0].end, 0x402000);
	cr_assert_eq(r[1].start, 0x402000);
	cr_assert_eq(r[1].end, 0x403000);
	cr_assert_eq(r[1].prot, PROT_READ | PROT_WRITE);
	free(r);

	/* ... but its bytes are still there. */
	unsigned char pg[PAGE];
	cr_assert_eq(lp_elf_fill_page(e, 0x402000, pg), 0);
	for (unsigned i = 0; i < PAGE; i++) {
		unsigned char want = i < 0x900 ? img_pat(0x2000 + i) : 0;

		cr_assert_eq(pg[i], want, "byte 0x%x: 0x%x, want 0x%x", i,
			     pg[i], want);
	}
	lp_elf_close(e);
}

Test(elf, bss_on_the_last_file_page_reads_zero)
{
	static struct img m;
	unsigned char pg[PAGE];
	struct lp_elf *e;

	/* .data is file [0x2100, 0x2200) at 0x403100; the file goes on with
	 * nonzero bytes to 0x3000, which must not show. */
	img_static(&m);
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_fill_page(e, 0x403000, pg), 0);
	for (unsigned i = 0; i < PAGE; i++) {
		unsigned char want = i >= 0x100 && i < 0x200 ?
					     img_pat(0x2000 + i) : 0;

		cr_assert_eq(pg[i], want, "byte 0x%x: 0x%x, want 0x%x", i,
			     pg[i], want);
	}
	cr_assert_eq(lp_elf_fill_page(e, 0x404000, pg), 0);
	for (unsigned i = 0; i < PAGE; i++)
		cr_assert_eq(pg[i], 0, "pure .bss page byte 0x%x", i);
	cr_assert_eq(lp_elf_fill_page(e, 0x400000, pg), 0);
	cr_assert_eq(memcmp(pg, m.b, PAGE), 0, "header page");
	cr_assert_eq(lp_elf_fill_page(e, 0x401000, pg), 0);
	cr_assert_eq(memcmp(pg, m.b + 0x1000, 0x800), 0, "text");
	for (unsigned i = 0x800; i < PAGE; i++)
		cr_assert_eq(pg[i], 0, "past the text, byte 0x%x", i);
	lp_elf_close(e);
}

Test(elf, later_segment_wins_its_byte_range)
{
	static struct img m;
	unsigned char pg[PAGE];
	struct lp_elf *e;

	/* A: file 0x100 bytes at 0x401000, zeros to 0x401a00.
	 * B: file bytes at [0x401800, 0x401900): over A's zeros.
	 * C: file [0x401c00, 0x401c10), zeros to 0x401d00. */
	img_init(&m, ET_EXEC, 0x3000);
	img_add(&m, PT_LOAD, PF_R | PF_W, 0x1000, 0x401000, 0x100, 0xa00);
	img_add(&m, PT_LOAD, PF_R, 0x1800, 0x401800, 0x100, 0x100);
	img_add(&m, PT_LOAD, PF_R | PF_W, 0x2c00, 0x401c00, 0x10, 0x100);
	img_eh(&m)->e_entry = 0x401000;
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_fill_page(e, 0x401000, pg), 0);
	for (unsigned i = 0; i < PAGE; i++) {
		unsigned char want = 0;

		if (i < 0x100)
			want = img_pat(0x1000 + i);
		else if (i >= 0x800 && i < 0x900)
			want = img_pat(0x1000 + i);
		else if (i >= 0xc00 && i < 0xc10)
			want = img_pat(0x2000 + i);
		cr_assert_eq(pg[i], want, "byte 0x%x: 0x%x, want 0x%x", i,
			     pg[i], want);
	}
	lp_elf_close(e);

	/* The later segment's zeros win over the earlier one's file bytes. */
	img_init(&m, ET_EXEC, 0x3000);
	img_add(&m, PT_LOAD, PF_R, 0x1000, 0x401000, 0x800, 0x800);
	img_add(&m, PT_LOAD, PF_R | PF_W, 0x1400, 0x401400, 0x10, 0x100);
	img_eh(&m)->e_entry = 0x401000;
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_fill_page(e, 0x401000, pg), 0);
	for (unsigned i = 0; i < PAGE; i++) {
		unsigned char want = i < 0x800 ? img_pat(0x1000 + i) : 0;

		if (i >= 0x410 && i < 0x500)
			want = 0;
		cr_assert_eq(pg[i], want, "byte 0x%x: 0x%x, want 0x%x", i,
			     pg[i], want);
	}
	lp_elf_close(e);
}

Test(elf, fill_page_refuses_what_is_not_an_image_page)
{
	static struct img m;
	unsigned char pg[PAGE];
	struct lp_elf *e;

	img_static(&m);
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_fill_page(e, 0x401001, pg), -EINVAL);
	cr_assert_eq(lp_elf_fill_page(e, 0x3ff000, pg), -EFAULT);
	cr_assert_eq(lp_elf_fill_page(e, 0x402000, pg), -EFAULT, "gap");
	cr_assert_eq(lp_elf_fill_page(e, 0x405000, pg), -EFAULT);
	cr_assert_eq(lp_elf_fill_page(e, ~(uint64_t)0xfff, pg), -EFAULT);
	lp_elf_close(e);
}

Test(elf, fill_page_reports_a_file_that_shrank)
{
	static struct img m;
	unsigned char pg[PAGE];
	struct lp_elf *e;
	char msg[256];
	char *path;

	img_static(&m);
	path = write_temp(m.b, m.len);
	cr_assert_eq(lp_elf_open(path, &e, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_geq(e->fd, 0);
	cr_assert_eq(fcntl(e->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(fcntl(e->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	cr_assert_eq(lp_elf_fill_page(e, 0x401000, pg), 0);
	cr_assert_eq(memcmp(pg, m.b + 0x1000, 0x800), 0);
	cr_assert_eq(truncate(path, 0x1000), 0);
	errno = 1234;
	cr_assert_eq(lp_elf_fill_page(e, 0x401000, pg), -EIO);
	cr_assert_eq(errno, 1234, "errno changed");
	cr_assert_eq(lp_elf_fill_page(e, 0x400000, pg), 0);
	lp_elf_close(e);
	unlink(path);
	free(path);
}

/* ---- Real programs ---- */

/* What a program's own headers say, read without libelf. */
struct raw {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[64];
	char interp[PATH_MAX];
};

static void raw_read(const char *path, struct raw *r)
{
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, &r->eh, sizeof(r->eh), 0), sizeof(r->eh));
	cr_assert_leq(r->eh.e_phnum, 64);
	cr_assert_eq(pread(fd, r->ph, r->eh.e_phnum * sizeof(Elf64_Phdr),
			   r->eh.e_phoff),
		     (ssize_t)(r->eh.e_phnum * sizeof(Elf64_Phdr)));
	r->interp[0] = '\0';
	for (unsigned i = 0; i < r->eh.e_phnum; i++)
		if (r->ph[i].p_type == PT_INTERP)
			cr_assert_eq(pread(fd, r->interp, r->ph[i].p_filesz,
					   r->ph[i].p_offset),
				     (ssize_t)r->ph[i].p_filesz);
	close(fd);
}

/* lp_elf_open(path) agrees with the raw headers. */
static struct lp_elf *open_and_compare(const char *path)
{
	struct lp_elf *e;
	struct raw r;
	char msg[256];
	unsigned k = 0;
	int rc;

	rc = lp_elf_open(path, &e, msg, sizeof(msg));
	cr_assert_eq(rc, 0, "%s: %s", path, msg);
	raw_read(path, &r);
	cr_assert_eq(e->type, r.eh.e_type);
	cr_assert_eq(e->entry, r.eh.e_entry);
	cr_assert_eq(e->phnum, r.eh.e_phnum);
	bool stack = false, have_phdr = false;
	for (unsigned i = 0; i < r.eh.e_phnum; i++) {
		const Elf64_Phdr *p = &r.ph[i];

		if (p->p_type == PT_GNU_STACK) {
			stack = true;
			cr_assert_eq(e->exec_stack, !!(p->p_flags & PF_X));
		}
		if (p->p_type == PT_PHDR) {
			have_phdr = true;
			cr_assert_eq(e->phdr_vaddr, p->p_vaddr);
		}
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		cr_assert_lt(k, e->nseg);
		cr_assert_eq(e->seg[k].vaddr, p->p_vaddr);
		cr_assert_eq(e->seg[k].memsz, p->p_memsz);
		cr_assert_eq(e->seg[k].offset, p->p_offset);
		cr_assert_eq(e->seg[k].filesz, p->p_filesz);
		k++;
	}
	cr_assert_eq(k, e->nseg);
	if (!stack)
		cr_assert(e->exec_stack);
	if (!have_phdr)
		cr_assert_eq(e->phdr_vaddr, e->seg[0].vaddr + r.eh.e_phoff -
						    e->seg[0].offset);
	if (r.interp[0])
		cr_assert_str_eq(e->interp, r.interp);
	else
		cr_assert_null(e->interp);
	cr_assert_eq(e->lo, e->seg[0].vaddr & ~(uint64_t)0xfff);
	return e;
}

#define SKIP_IF_NONE(path)                                                    \
	do {                                                                  \
		if (!(path)[0])                                               \
			cr_skip_test("the toolchain cannot link -static or "  \
				     "-static-pie here (libc6-dev?)");        \
	} while (0)

Test(elf, dynamic_pie_from_the_system)
{
	struct lp_elf *e = open_and_compare("/bin/true");

	cr_assert_eq(e->type, ET_DYN);
	cr_assert_not_null(e->interp);
	lp_elf_close(e);
	e = open_and_compare("/lib64/ld-linux-x86-64.so.2");
	cr_assert_eq(e->type, ET_DYN);
	cr_assert_null(e->interp);
	lp_elf_close(e);
}

Test(elf, static_test_programs)
{
	struct lp_elf *e;

	SKIP_IF_NONE(LP_HELLO_STATIC);
	e = open_and_compare(LP_HELLO_STATIC);
	cr_assert_eq(e->type, ET_EXEC);
	cr_assert_null(e->interp);
	cr_assert_eq(e->lo, 0x400000);
	lp_elf_close(e);
	SKIP_IF_NONE(LP_HELLO_STATIC_PIE);
	e = open_and_compare(LP_HELLO_STATIC_PIE);
	cr_assert_eq(e->type, ET_DYN);
	cr_assert_null(e->interp);
	cr_assert_eq(e->lo, 0);
	lp_elf_close(e);
}

struct mapping {
	uint64_t start, end;
	int prot;
};

static size_t read_maps(pid_t pid, struct mapping *m, size_t max)
{
	char path[64], line[512], perms[8];
	unsigned long long s, e;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (n < max && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %7s", &s, &e, perms) != 3)
			continue;
		m[n++] = (struct mapping){
			s, e,
			(perms[0] == 'r' ? PROT_READ : 0) |
				(perms[1] == 'w' ? PROT_WRITE : 0) |
				(perms[2] == 'x' ? PROT_EXEC : 0)
		};
	}
	fclose(f);
	return n;
}

static bool covered(const struct lp_elf *e, uint64_t x)
{
	for (unsigned i = 0; i < e->nseg; i++)
		if (x >= e->seg[i].vaddr && x - e->seg[i].vaddr < e->seg[i].memsz)
			return true;
	return false;
}

/* Every page of e's layout, placed at bias, has in the memory (memfd, an
 * open /proc/PID/mem) and maps of a process the bytes and protection that
 * lp_elf gives.  Bytes outside every segment are not compared (the kernel
 * shows the file's bytes there, lp_elf zeros). */
static void compare_pages(const struct lp_elf *e, uint64_t bias, int memfd,
			  const struct mapping *maps, size_t nmaps,
			  const char *what)
{
	static unsigned char mine[PAGE], theirs[PAGE];
	struct lp_elf_range *r;
	unsigned n, pages = 0;

	cr_assert_eq(lp_elf_layout(e, &r, &n), 0);
	for (unsigned i = 0; i < n; i++) {
		for (uint64_t pg = r[i].start; pg < r[i].end; pg += PAGE) {
			size_t k = 0;

			cr_assert_eq(lp_elf_fill_page(e, pg, mine), 0);
			cr_assert_eq(pread(memfd, theirs, PAGE,
					   (off_t)(bias + pg)),
				     PAGE, "%s: page 0x%llx not readable", what,
				     (unsigned long long)pg);
			for (unsigned b = 0; b < PAGE; b++) {
				if (!covered(e, pg + b)) {
					cr_assert_eq(mine[b], 0);
					continue;
				}
				cr_assert_eq(mine[b], theirs[b],
					     "%s: byte at 0x%llx: 0x%x, kernel "
					     "0x%x", what,
					     (unsigned long long)(pg + b),
					     mine[b], theirs[b]);
			}
			while (k < nmaps && !(maps[k].start <= bias + pg &&
					      bias + pg < maps[k].end))
				k++;
			cr_assert_lt(k, nmaps, "%s: page 0x%llx not mapped",
				     what, (unsigned long long)pg);
			cr_assert_eq(maps[k].prot, r[i].prot,
				     "%s: page 0x%llx prot %d, kernel %d", what,
				     (unsigned long long)pg, r[i].prot,
				     maps[k].prot);
			pages++;
		}
	}
	cr_assert_gt(pages, 0);
	free(r);
}

static uint64_t auxv_get(const uint64_t *av, size_t n, uint64_t type)
{
	for (size_t i = 0; i + 1 < n && av[i] != AT_NULL; i += 2)
		if (av[i] == type)
			return av[i + 1];
	cr_assert_fail("no auxv entry %llu", (unsigned long long)type);
	return 0;
}

/* Start path stopped right after execve (nothing of it has run yet) and
 * compare its image, and its interpreter's, with what lp_elf says. */
static void compare_with_exec(const char *path)
{
	static struct mapping maps[512];
	uint64_t av[256] = { 0 };
	struct lp_elf *e;
	char file[64];
	ssize_t len;
	size_t nmaps;
	int st, fd, memfd;
	pid_t pid;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char *const argv[] = { (char *)path, NULL };

		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
			_exit(126);
		execv(path, argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 126)
		cr_skip_test("ptrace refused here");
	cr_assert(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP,
		  "%s did not stop at exec (status 0x%x)", path, st);

	snprintf(file, sizeof(file), "/proc/%d/auxv", (int)pid);
	fd = open(file, O_RDONLY);
	cr_assert_geq(fd, 0);
	len = read(fd, av, sizeof(av) - 16);
	cr_assert_gt(len, 0);
	close(fd);
	snprintf(file, sizeof(file), "/proc/%d/mem", (int)pid);
	memfd = open(file, O_RDONLY);
	cr_assert_geq(memfd, 0, "%s: %s", file, strerror(errno));
	nmaps = read_maps(pid, maps, 512);

	e = open_and_compare(path);
	uint64_t bias = auxv_get(av, 256, AT_ENTRY) - e->entry;
	if (e->type == ET_EXEC)
		cr_assert_eq(bias, 0);
	cr_assert_eq(bias % e->align, 0);
	cr_assert_eq(auxv_get(av, 256, AT_PHDR), bias + e->phdr_vaddr);
	cr_assert_eq(auxv_get(av, 256, AT_PHNUM), e->phnum);
	cr_assert_eq(auxv_get(av, 256, AT_PHENT), e->phentsize);
	compare_pages(e, bias, memfd, maps, nmaps, path);
	if (e->interp) {
		struct lp_elf *ld = open_and_compare(e->interp);
		uint64_t base = auxv_get(av, 256, AT_BASE);

		cr_assert_eq(ld->type, ET_DYN);
		compare_pages(ld, base - ld->lo, memfd, maps, nmaps, e->interp);
		lp_elf_close(ld);
	} else {
		cr_assert_eq(auxv_get(av, 256, AT_BASE), 0);
	}
	lp_elf_close(e);
	close(memfd);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

Test(elf, pages_match_the_kernel_static, .timeout = 60)
{
	SKIP_IF_NONE(LP_HELLO_STATIC);
	compare_with_exec(LP_HELLO_STATIC);
}

Test(elf, pages_match_the_kernel_static_pie, .timeout = 60)
{
	SKIP_IF_NONE(LP_HELLO_STATIC_PIE);
	compare_with_exec(LP_HELLO_STATIC_PIE);
}

Test(elf, pages_match_the_kernel_dynamic_pie, .timeout = 60)
{
	compare_with_exec("/bin/true");
}

/* A byte of this program's mapped image, which need not belong to a C
 * object (AddressSanitizer would call the gaps between globals overflows). */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize_address)
__attribute__((no_sanitize_address))
#endif
#endif
__attribute__((noinline)) static unsigned char peek(const unsigned char *p)
{
	return *(volatile const unsigned char *)p;
}

/* The read-only pages of this very program, as mapped and relocated while
 * it runs: nothing writes them, so they are still the image's bytes. */
Test(elf, pages_match_this_running_program)
{
	static unsigned char mine[PAGE];
	struct lp_elf_range *r;
	struct lp_elf *e;
	unsigned n, pages = 0;
	char msg[256];
	uint64_t bias;

	cr_assert_eq(lp_elf_open("/proc/self/exe", &e, msg, sizeof(msg)), 0,
		     "%s", msg);
	cr_assert_neq(e->phdr_vaddr, 0);
	bias = getauxval(AT_PHDR) - e->phdr_vaddr;
	cr_assert_eq(getauxval(AT_ENTRY), bias + e->entry);
	cr_assert_eq(lp_elf_layout(e, &r, &n), 0);
	for (unsigned i = 0; i < n; i++) {
		if (r[i].prot & PROT_WRITE)
			continue;
		for (uint64_t pg = r[i].start; pg < r[i].end; pg += PAGE) {
			const unsigned char *live =
				(const unsigned char *)(uintptr_t)(bias + pg);

			cr_assert_eq(lp_elf_fill_page(e, pg, mine), 0);
			for (unsigned b = 0; b < PAGE; b++)
				if (covered(e, pg + b))
					cr_assert_eq(mine[b], peek(live + b),
						     "byte at 0x%llx",
						     (unsigned long long)(pg + b));
			pages++;
		}
	}
	cr_assert_gt(pages, 2);
	free(r);
	lp_elf_close(e);
}

struct fill_job {
	const struct lp_elf *e;
	const struct lp_elf_range *r;
	unsigned n;
	const unsigned char *want; /* all pages of r, in order */
	int bad;
};

static void *fill_all(void *arg)
{
	struct fill_job *j = arg;
	unsigned char pg[PAGE];

	for (int round = 0; round < 20; round++) {
		size_t at = 0;

		for (unsigned i = 0; i < j->n; i++)
			for (uint64_t p = j->r[i].start; p < j->r[i].end;
			     p += PAGE, at += PAGE)
				if (lp_elf_fill_page(j->e, p, pg) ||
				    memcmp(pg, j->want + at, PAGE))
					j->bad++;
	}
	return NULL;
}

Test(elf, concurrent_fills_agree)
{
	struct fill_job jobs[4];
	pthread_t t[4];
	struct lp_elf_range *r;
	struct lp_elf *e;
	unsigned char *want;
	unsigned n;
	size_t total = 0, at = 0;
	char msg[256];

	cr_assert_eq(lp_elf_open("/bin/true", &e, msg, sizeof(msg)), 0);
	cr_assert_eq(lp_elf_layout(e, &r, &n), 0);
	for (unsigned i = 0; i < n; i++)
		total += r[i].end - r[i].start;
	want = malloc(total);
	for (unsigned i = 0; i < n; i++)
		for (uint64_t p = r[i].start; p < r[i].end; p += PAGE, at += PAGE)
			cr_assert_eq(lp_elf_fill_page(e, p, want + at), 0);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct fill_job){ e, r, n, want, 0 };
		pthread_create(&t[i], NULL, fill_all, &jobs[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(jobs[i].bad, 0);
	}
	free(want);
	free(r);
	lp_elf_close(e);
}

/* ---- Files that are not programs ---- */

static void open_fails(const char *path, int code, const char *part)
{
	struct lp_elf *e = (struct lp_elf *)1;
	char msg[256] = "";
	int rc = lp_elf_open(path, &e, msg, sizeof(msg));

	cr_assert_eq(rc, code, "%s: got %d (%s), want %d", path, rc, msg, code);
	cr_assert_null(e);
	cr_assert(strstr(msg, part), "%s: message \"%s\" lacks \"%s\"", path,
		  msg, part);
}

Test(elf, open_reports_why_a_file_is_not_loadable, .timeout = 30)
{
	char fifo[64] = "/tmp/lp-elf-fifo-XXXXXX"; /* room for "/p" */
	char *path;

	open_fails("/nonexistent/program", LP_ELF_ENOENT, "No such file");
	open_fails("/", LP_ELF_EACCES, "directory");
	open_fails("/dev/null", LP_ELF_EACCES, "not a regular file");
	cr_assert_not_null(mkdtemp(fifo));
	strcat(fifo, "/p");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	open_fails(fifo, LP_ELF_EACCES, "not a regular file"); /* no hang */
	unlink(fifo);
	*strrchr(fifo, '/') = '\0';
	rmdir(fifo);

	path = write_temp("hello, world\n", 13);
	open_fails(path, LP_ELF_NOTELF, "not an ELF file");
	char sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/x", path);
	open_fails(sub, LP_ELF_ENOENT, "Not a directory");
	unlink(path);
	free(path);
	path = write_temp("#!/bin/sh\necho hi\n", 18);
	open_fails(path, LP_ELF_NOTELF, "script");
	unlink(path);
	free(path);
	path = write_temp("", 0);
	open_fails(path, LP_ELF_NOTELF, "not an ELF file");
	unlink(path);
	free(path);
	open_fails("/etc/passwd", LP_ELF_NOTELF, "not an ELF file");
}

Test(elf, unreadable_file_is_eacces)
{
	static struct img m;
	char *path;
	int st;
	pid_t pid;

	img_static(&m);
	path = write_temp(m.b, m.len);
	cr_assert_eq(chmod(path, 0), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct lp_elf *e;
		char msg[256];

		/* root reads anything: be nobody */
		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(3);
		_exit(lp_elf_open(path, &e, msg, sizeof(msg)) == LP_ELF_EACCES &&
			      strstr(msg, "Permission denied") ?
		      0 : 1);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	unlink(path);
	free(path);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		cr_skip_test("cannot drop root privileges here");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "unreadable file not reported as LP_ELF_EACCES");
}

Test(elf, bad_arguments)
{
	static struct img m;
	struct lp_elf *e;
	struct lp_elf_range *r;
	unsigned n;

	cr_assert_eq(lp_elf_open(NULL, &e, NULL, 0), -EINVAL);
	cr_assert_eq(lp_elf_open("/bin/true", NULL, NULL, 0), -EINVAL);
	cr_assert_eq(lp_elf_parse_mem(NULL, 10, &e, NULL, 0), -EINVAL);
	cr_assert_eq(lp_elf_parse_mem("junk", 4, &e, NULL, 0), LP_ELF_NOTELF,
		     "msg may be NULL");
	cr_assert_eq(lp_elf_layout(NULL, &r, &n), -EINVAL);
	img_static(&m);
	e = parse_ok(&m);
	cr_assert_eq(lp_elf_fill_page(e, 0x400000, NULL), -EINVAL);
	lp_elf_close(e);
	lp_elf_close(NULL);
}

/* ---- One rule, one refused file ---- */

Test(elf, rejects_files_that_are_not_elf)
{
	static struct img m;

	img_static(&m);
	accept(&m);
	m.b[1] = 'F';
	reject(&m, LP_ELF_NOTELF, "not an ELF file");
	img_static(&m);
	m.len = 3;
	reject(&m, LP_ELF_NOTELF, "not an ELF file");
}

Test(elf, rejects_a_truncated_elf_header)
{
	static struct img m;

	img_static(&m);
	m.len = 12;
	reject(&m, LP_ELF_CORRUPT, "identification");
	m.len = 63;
	reject_exactly(&m, LP_ELF_CORRUPT,
		       "truncated: the 63-byte file is shorter than the "
		       "64-byte ELF header");
}

Test(elf, rejects_elfclass32)
{
	static struct img m;

	img_static(&m);
	m.b[EI_CLASS] = ELFCLASS32;
	reject(&m, LP_ELF_CLASS, "32-bit");
	m.b[EI_CLASS] = 7;
	reject(&m, LP_ELF_CLASS, "class 7");
}

Test(elf, rejects_other_machines)
{
	static struct img m;

	img_static(&m);
	img_eh(&m)->e_machine = EM_AARCH64;
	reject_exactly(&m, LP_ELF_ARCH, "ELF for ARM aarch64, not x86-64");
	img_eh(&m)->e_machine = 9999;
	reject(&m, LP_ELF_ARCH, "machine 9999");
}

Test(elf, rejects_big_endian)
{
	static struct img m;

	img_static(&m);
	m.b[EI_DATA] = ELFDATA2MSB;
	img_eh(&m)->e_machine = __builtin_bswap16(EM_X86_64);
	reject(&m, LP_ELF_ARCH, "big-endian");
	img_eh(&m)->e_machine = __builtin_bswap16(EM_PPC64);
	reject(&m, LP_ELF_ARCH, "PowerPC64 (big-endian)");
	m.b[EI_DATA] = 0;
	reject(&m, LP_ELF_CORRUPT, "data encoding");
}

Test(elf, rejects_objects_and_core_dumps)
{
	static struct img m;

	img_static(&m);
	img_eh(&m)->e_type = ET_REL;
	reject(&m, LP_ELF_TYPE, "ET_REL");
	img_eh(&m)->e_type = ET_CORE;
	reject(&m, LP_ELF_TYPE, "ET_CORE");
	img_eh(&m)->e_type = ET_NONE;
	reject(&m, LP_ELF_TYPE, "not a program");
}

Test(elf, rejects_bad_phentsize)
{
	static struct img m;

	img_static(&m);
	img_eh(&m)->e_phentsize = 32;
	reject(&m, LP_ELF_CORRUPT, "program header size 32");
	img_eh(&m)->e_phentsize = 64;
	reject(&m, LP_ELF_CORRUPT, "program header size 64");
}

Test(elf, rejects_no_or_absurdly_many_program_headers)
{
	static struct img m;

	img_static(&m);
	img_eh(&m)->e_phnum = 0;
	reject(&m, LP_ELF_CORRUPT, "no program headers");
	img_eh(&m)->e_phnum = 1025;
	m.len = IMG_MAX; /* they would fit in the file */
	reject(&m, LP_ELF_CORRUPT, "1025 program headers");
	img_eh(&m)->e_phnum = PN_XNUM;
	reject(&m, LP_ELF_CORRUPT, "65535 program headers");

	/* 1024 is fine (all PT_NULL but ours) */
	img_static(&m);
	m.len = IMG_MAX;
	memset(img_ph(&m, 4), 0, (1024 - 4) * sizeof(Elf64_Phdr));
	img_eh(&m)->e_phnum = 1024;
	accept(&m);
}

Test(elf, rejects_program_headers_beyond_the_file)
{
	static struct img m;

	img_static(&m);
	m.len = 200; /* headers end at 64 + 4 * 56 = 288 */
	reject_exactly(&m, LP_ELF_CORRUPT,
		       "truncated: program header 2 ends at 232 beyond the "
		       "200-byte file");
	img_static(&m);
	img_eh(&m)->e_phoff = 0x2fe0;
	reject_exactly(&m, LP_ELF_CORRUPT,
		       "truncated: program header 0 ends at 12312 beyond the "
		       "12288-byte file");
	img_eh(&m)->e_phoff = ~(uint64_t)7;
	reject(&m, LP_ELF_CORRUPT, "beyond the file");
	img_eh(&m)->e_phoff = 0;
	reject(&m, LP_ELF_CORRUPT, "offset 0");
}

Test(elf, rejects_filesz_beyond_memsz)
{
	static struct img m;

	img_static(&m);
	img_ph(&m, 2)->p_filesz = 0x1f01;
	reject(&m, LP_ELF_CORRUPT, "exceeds memory size");
}

Test(elf, rejects_file_bytes_beyond_the_file)
{
	static struct img m;

	img_static(&m);
	img_ph(&m, 2)->p_filesz = 0xf01; /* 0x2100 + 0xf01 = 0x3001 */
	reject(&m, LP_ELF_CORRUPT, "beyond the 12288-byte file");
	img_static(&m);
	img_ph(&m, 2)->p_offset = 0xfffffffffffff100; /* + filesz wraps */
	img_ph(&m, 2)->p_filesz = 0x1000;
	reject(&m, LP_ELF_CORRUPT, "truncated");
	img_static(&m);
	img_ph(&m, 2)->p_filesz = 0xf00; /* exactly to the end: fine */
	accept(&m);
}

Test(elf, rejects_address_and_offset_not_congruent)
{
	static struct img m;

	img_static(&m);
	img_ph(&m, 2)->p_offset = 0x2108;
	reject(&m, LP_ELF_CORRUPT, "modulo the page size");
}

Test(elf, rejects_address_overflow_and_kernel_addresses)
{
	static struct img m;

	img_static(&m);
	img_ph(&m, 2)->p_vaddr = 0xfffffffffffff100;
	reject(&m, LP_ELF_CORRUPT, "overflows");
	/* ending exactly at the top of user space is fine */
	img_static(&m);
	img_ph(&m, 2)->p_vaddr = 0x7fffffffd100;
	accept(&m);
	img_ph(&m, 2)->p_memsz = 0x1f01;
	reject(&m, LP_ELF_CORRUPT, "beyond user space");
	img_ph(&m, 2)->p_vaddr = 0xffff800000000100;
	img_ph(&m, 2)->p_memsz = 0x100;
	reject(&m, LP_ELF_CORRUPT, "beyond user space");
}

Test(elf, rejects_descending_loads)
{
	static struct img m;

	img_static(&m);
	Elf64_Phdr t = *img_ph(&m, 1);
	*img_ph(&m, 1) = *img_ph(&m, 2);
	*img_ph(&m, 2) = t;
	reject(&m, LP_ELF_CORRUPT, "below the one before");
}

Test(elf, rejects_loads_overlapping_beyond_a_shared_page)
{
	static struct img m;

	img_static(&m);
	img_ph(&m, 1)->p_memsz = 0x2800; /* to 0x403800: shares 0x403000 */
	accept(&m);
	img_ph(&m, 1)->p_memsz = 0x3100; /* to 0x404100: overlaps beyond */
	reject(&m, LP_ELF_CORRUPT, "overlaps");
}

Test(elf, rejects_no_load)
{
	static struct img m;

	img_static(&m);
	for (unsigned i = 0; i < 3; i++)
		img_ph(&m, i)->p_type = PT_NOTE;
	reject(&m, LP_ELF_CORRUPT, "no loadable segment");
	/* empty PT_LOADs do not count */
	img_static(&m);
	for (unsigned i = 0; i < 3; i++)
		img_ph(&m, i)->p_memsz = img_ph(&m, i)->p_filesz = 0;
	reject(&m, LP_ELF_CORRUPT, "no loadable segment");
}

Test(elf, rejects_entry_outside_every_load)
{
	static struct img m;

	img_static(&m);
	img_eh(&m)->e_entry = 0x404fff; /* last .bss byte: inside */
	accept(&m);
	img_eh(&m)->e_entry = 0x402000; /* the gap */
	reject(&m, LP_ELF_CORRUPT, "entry point 0x402000");
	img_eh(&m)->e_entry = 0x405000;
	reject(&m, LP_ELF_CORRUPT, "entry point");
	img_eh(&m)->e_entry = 0;
	reject(&m, LP_ELF_CORRUPT, "entry point");
}

Test(elf, pie_may_start_above_zero_but_not_span_more_than_1tib)
{
	static struct img m;
	struct lp_elf *e;

	img_pie(&m);
	for (unsigned i = 0; i < 5; i++)
		img_ph(&m, i)->p_vaddr += 0x10000000;
	img_eh(&m)->e_entry += 0x10000000;
	e = parse_ok(&m);
	cr_assert_eq(e->lo, 0x10000000);
	lp_elf_close(e);

	img_pie(&m);
	img_ph(&m, 4)->p_vaddr = (1ull << 40) - 0x1000;
	img_ph(&m, 4)->p_memsz = 0x1000; /* ends exactly at 1 TiB */
	accept(&m);
	img_ph(&m, 4)->p_memsz = 0x1001;
	reject(&m, LP_ELF_CORRUPT, "more than 1 TiB");
	img_eh(&m)->e_type = ET_EXEC; /* a fixed-address program may */
	accept(&m);
}

Test(elf, rejects_interp_not_nul_terminated)
{
	static struct img m;

	img_pie(&m);
	m.b[0x200 + sizeof(IMG_INTERP) - 1] = 'x';
	reject(&m, LP_ELF_CORRUPT, "not NUL-terminated");
}

Test(elf, rejects_empty_interp)
{
	static struct img m;

	img_pie(&m);
	img_ph(&m, 1)->p_filesz = 1;
	m.b[0x200] = '\0';
	reject(&m, LP_ELF_CORRUPT, "empty interpreter");
	img_ph(&m, 1)->p_filesz = 0;
	reject(&m, LP_ELF_CORRUPT, "empty interpreter");
	img_ph(&m, 1)->p_filesz = sizeof(IMG_INTERP);
	reject(&m, LP_ELF_CORRUPT, "empty interpreter");
}

Test(elf, rejects_interp_longer_than_path_max)
{
	static struct img m;
	struct lp_elf *e;

	img_pie(&m);
	memset(m.b + 0x1000, 'a', PATH_MAX - 1);
	m.b[0x1000] = '/';
	m.b[0x1000 + PATH_MAX - 1] = '\0';
	img_ph(&m, 1)->p_offset = 0x1000;
	img_ph(&m, 1)->p_filesz = PATH_MAX;
	e = parse_ok(&m);
	cr_assert_eq(strlen(e->interp), PATH_MAX - 1);
	lp_elf_close(e);
	m.b[0x1000 + PATH_MAX - 1] = 'a';
	m.b[0x1000 + PATH_MAX] = '\0';
	img_ph(&m, 1)->p_filesz = PATH_MAX + 1;
	reject(&m, LP_ELF_CORRUPT, "longer than PATH_MAX");
}

Test(elf, rejects_interp_beyond_the_file)
{
	static struct img m;

	img_pie(&m);
	img_ph(&m, 1)->p_offset = 0x3000 - 10;
	reject(&m, LP_ELF_CORRUPT, "beyond the 12288-byte file");
	img_ph(&m, 1)->p_offset = ~(uint64_t)0;
	reject(&m, LP_ELF_CORRUPT, "interpreter");
}

Test(elf, rejects_two_interps)
{
	static struct img m;

	img_pie(&m);
	img_add(&m, PT_INTERP, PF_R, 0x200, 0x200, sizeof(IMG_INTERP),
		sizeof(IMG_INTERP));
	reject(&m, LP_ELF_CORRUPT, "more than one PT_INTERP");
}

/* ---- Inputs the fuzzer found (or that were hard on a parser) ---- */

Test(elf, regression_inputs_fail_cleanly)
{
	DIR *d = opendir(LP_ELF_REGRESSIONS);
	struct dirent *de;
	unsigned files = 0;

	cr_assert_not_null(d, "%s: %s", LP_ELF_REGRESSIONS, strerror(errno));
	while ((de = readdir(d))) {
		char path[PATH_MAX], msg[256] = "", msg2[256] = "";
		static unsigned char buf[1 << 20];
		struct lp_elf *e = (struct lp_elf *)1;
		ssize_t len;
		int fd, rc;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".md"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", LP_ELF_REGRESSIONS,
			 de->d_name);
		fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0);
		len = read(fd, buf, sizeof(buf));
		close(fd);
		cr_assert_geq(len, 0);
		rc = lp_elf_parse_mem(buf, (size_t)len, &e, msg, sizeof(msg));
		cr_assert_gt(rc, 0, "%s: accepted or odd result %d", path, rc);
		cr_assert_null(e);
		cr_assert_neq(msg[0], '\0', "%s: no reason", path);
		cr_assert_eq(lp_elf_open(path, &e, msg2, sizeof(msg2)), rc,
			     "%s: the file and the buffer disagree", path);
		cr_assert_str_eq(msg, msg2);
		files++;
	}
	closedir(d);
	cr_assert_gt(files, 0, "no regression inputs found");
}
