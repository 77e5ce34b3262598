/* SPDX-License-Identifier: MIT */
/*
 * ELF programs (Pintos' load() and load_segment): libelf reads the headers,
 * and every offset, size and address it hands back is checked here before
 * use, because libelf checks only what it needs itself.  The rules follow
 * the kernel's load_elf_binary where it has one, and are stricter where a
 * lenient kernel would map nonsense (overlapping or descending segments,
 * an entry point outside the image).
 *
 * After parsing, the object keeps only its own copy of what it needs (no
 * libelf handle), so lp_elf_fill_page is a pure function of the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf.h"

#define PAGE_MASK ((uint64_t)LP_ELF_PAGE - 1)

static inline uint64_t page_down(uint64_t a)
{
	return a & ~PAGE_MASK;
}

/* a must be at most LP_ELF_USER_END (no overflow). */
static inline uint64_t page_up(uint64_t a)
{
	return (a + PAGE_MASK) & ~PAGE_MASK;
}

__attribute__((format(printf, 4, 5)))
static int fail(char *msg, size_t msglen, int err, const char *fmt, ...)
{
	va_list ap;

	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Read n bytes at off from e's file or buffer: 0, -EIO if they are not all
 * there (the file shrank), or pread's -errno. */
static int elf_read(const struct lp_elf *e, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	if (e->fd < 0) {
		if (off > e->memlen || n > e->memlen - off)
			return -EIO;
		memcpy(buf, (const char *)e->mem + off, n);
		return 0;
	}
	while (done < n) {
		ssize_t r = pread(e->fd, (char *)buf + done, n - done,
				  (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386: return "Intel 80386";
	case EM_ARM: return "ARM";
	case EM_AARCH64: return "ARM aarch64";
	case EM_RISCV: return "RISC-V";
	case EM_PPC: return "PowerPC";
	case EM_PPC64: return "PowerPC64";
	case EM_S390: return "IBM S/390";
	case EM_MIPS: return "MIPS";
	case EM_SPARCV9: return "SPARC v9";
	case EM_IA_64: return "Intel IA-64";
	case EM_LOONGARCH: return "LoongArch";
	case EM_BPF: return "eBPF";
	case EM_NONE: return "no machine (EM_NONE)";
	default: return NULL;
	}
}

/* The identification bytes, before libelf sees the file: libelf refuses a
 * file it cannot handle without saying which of these is wrong. */
static int check_ident(const struct lp_elf *e, char *msg, size_t msglen)
{
	unsigned char id[EI_NIDENT];
	size_t n = e->file_size < EI_NIDENT ? (size_t)e->file_size : EI_NIDENT;
	int rc = elf_read(e, id, n, 0);

	if (rc < 0)
		return fail(msg, msglen, LP_ELF_IO, "cannot read: %s",
			    strerror(-rc));
	if (n >= 2 && id[0] == '#' && id[1] == '!')
		return fail(msg, msglen, LP_ELF_NOTELF,
			    "a script (#!), not an ELF file");
	if (n < SELFMAG || memcmp(id, ELFMAG, SELFMAG) != 0)
		return fail(msg, msglen, LP_ELF_NOTELF, "not an ELF file");
	if (n < EI_NIDENT)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "truncated: the %zu-byte file ends inside the ELF "
			    "identification", n);
	if (id[EI_CLASS] == ELFCLASS32)
		return fail(msg, msglen, LP_ELF_CLASS,
			    "32-bit ELF (ELFCLASS32), not x86-64");
	if (id[EI_CLASS] != ELFCLASS64)
		return fail(msg, msglen, LP_ELF_CLASS, "invalid ELF class %u",
			    id[EI_CLASS]);
	if (id[EI_DATA] != ELFDATA2LSB && id[EI_DATA] != ELFDATA2MSB)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "invalid ELF data encoding %u", id[EI_DATA]);
	if (e->file_size < sizeof(Elf64_Ehdr))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "truncated: the %llu-byte file is shorter than the "
			    "%zu-byte ELF header",
			    (unsigned long long)e->file_size,
			    sizeof(Elf64_Ehdr));
	return 0;
}

static int check_ehdr(const GElf_Ehdr *eh, char *msg, size_t msglen)
{
	bool big = eh->e_ident[EI_DATA] == ELFDATA2MSB;

	if (eh->e_machine != EM_X86_64) {
		const char *name = machine_name(eh->e_machine);

		if (name)
			return fail(msg, msglen, LP_ELF_ARCH,
				    "ELF for %s%s, not x86-64", name,
				    big ? " (big-endian)" : "");
		return fail(msg, msglen, LP_ELF_ARCH,
			    "ELF for machine %u%s, not x86-64", eh->e_machine,
			    big ? " (big-endian)" : "");
	}
	if (big)
		return fail(msg, msglen, LP_ELF_ARCH,
			    "big-endian ELF, x86-64 is little-endian");
	switch (eh->e_type) {
	case ET_EXEC:
	case ET_DYN:
		break;
	case ET_REL:
		return fail(msg, msglen, LP_ELF_TYPE,
			    "relocatable object (ET_REL), not a program");
	case ET_CORE:
		return fail(msg, msglen, LP_ELF_TYPE,
			    "core dump (ET_CORE), not a program");
	default:
		return fail(msg, msglen, LP_ELF_TYPE,
			    "ELF type 0x%x, not a program", eh->e_type);
	}
	if (eh->e_phnum == 0)
		return fail(msg, msglen, LP_ELF_CORRUPT, "no program headers");
	if (eh->e_phnum > LP_ELF_MAX_PHNUM)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "%u program headers, at most %u accepted",
			    eh->e_phnum, LP_ELF_MAX_PHNUM);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header size %u, expected %zu",
			    eh->e_phentsize, sizeof(Elf64_Phdr));
	return 0;
}

/* The program header table lies inside the file. */
static int check_phdr_table(const GElf_Ehdr *eh, uint64_t size, char *msg,
			    size_t msglen)
{
	uint64_t phoff = eh->e_phoff, fit, end;

	if (phoff == 0)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header table at offset 0");
	fit = phoff > size ? 0 : (size - phoff) / sizeof(Elf64_Phdr);
	if (fit >= eh->e_phnum)
		return 0;
	/* Header number fit is the first that does not fit. */
	if (__builtin_add_overflow(phoff, (fit + 1) * sizeof(Elf64_Phdr), &end))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header table offset 0x%llx is beyond the "
			    "file", (unsigned long long)phoff);
	return fail(msg, msglen, LP_ELF_CORRUPT,
		    "truncated: program header %llu ends at %llu beyond the "
		    "%llu-byte file", (unsigned long long)fit,
		    (unsigned long long)end, (unsigned long long)size);
}

static int prot_of(uint32_t flags)
{
	return (flags & PF_R ? PROT_READ : 0) |
	       (flags & PF_W ? PROT_WRITE : 0) |
	       (flags & PF_X ? PROT_EXEC : 0);
}

static int add_load(struct lp_elf *e, unsigned i, const GElf_Phdr *ph,
		    char *msg, size_t msglen)
{
	const struct lp_elf_seg *prev = e->nseg ? &e->seg[e->nseg - 1] : NULL;
	unsigned long long va = ph->p_vaddr, off = ph->p_offset;
	uint64_t end, fend;

	if (ph->p_filesz > ph->p_memsz)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header %u (PT_LOAD): file size %llu "
			    "exceeds memory size %llu", i,
			    (unsigned long long)ph->p_filesz,
			    (unsigned long long)ph->p_memsz);
	if (ph->p_filesz &&
	    (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &fend) ||
	     fend > e->file_size))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "truncated: program header %u (PT_LOAD) has file "
			    "bytes at %llu+%llu beyond the %llu-byte file", i,
			    off, (unsigned long long)ph->p_filesz,
			    (unsigned long long)e->file_size);
	if ((ph->p_vaddr & PAGE_MASK) != (ph->p_offset & PAGE_MASK))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header %u (PT_LOAD): address 0x%llx and "
			    "offset 0x%llx differ modulo the page size", i, va,
			    off);
	if (__builtin_add_overflow(ph->p_vaddr, ph->p_memsz, &end))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header %u (PT_LOAD): address 0x%llx + "
			    "size 0x%llx overflows", i, va,
			    (unsigned long long)ph->p_memsz);
	if (end > LP_ELF_USER_END)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header %u (PT_LOAD) ends at 0x%llx, beyond "
			    "user space (0x%llx)", i, (unsigned long long)end,
			    LP_ELF_USER_END);
	if (ph->p_memsz == 0)
		return 0; /* maps nothing */
	if (prev && ph->p_vaddr < prev->vaddr)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header %u (PT_LOAD) at 0x%llx is below the "
			    "one before at 0x%llx", i, va,
			    (unsigned long long)prev->vaddr);
	if (prev && page_down(ph->p_vaddr) <
			    page_down(prev->vaddr + prev->memsz - 1))
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "program header %u (PT_LOAD) at 0x%llx overlaps the "
			    "one before (0x%llx-0x%llx) beyond a shared page", i,
			    va, (unsigned long long)prev->vaddr,
			    (unsigned long long)(prev->vaddr + prev->memsz));
	if (ph->p_align >= e->align && ph->p_align <= (1u << 30) &&
	    (ph->p_align & (ph->p_align - 1)) == 0)
		e->align = ph->p_align;
	e->seg[e->nseg++] = (struct lp_elf_seg){
		.vaddr = ph->p_vaddr,
		.memsz = ph->p_memsz,
		.offset = ph->p_offset,
		.filesz = ph->p_filesz,
		.prot = prot_of(ph->p_flags),
	};
	return 0;
}

static int read_interp(struct lp_elf *e, const GElf_Phdr *ph, char *msg,
		       size_t msglen)
{
	uint64_t end;
	char *s;
	int rc;

	if (e->interp)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "more than one PT_INTERP");
	/* Like the kernel: the size counts the NUL, 2..PATH_MAX bytes. */
	if (ph->p_filesz < 2)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "empty interpreter path (PT_INTERP)");
	if (ph->p_filesz > PATH_MAX)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "interpreter path of %llu bytes, longer than "
			    "PATH_MAX", (unsigned long long)ph->p_filesz);
	if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &end) ||
	    end > e->file_size)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "truncated: interpreter path at %llu+%llu beyond "
			    "the %llu-byte file",
			    (unsigned long long)ph->p_offset,
			    (unsigned long long)ph->p_filesz,
			    (unsigned long long)e->file_size);
	s = malloc(ph->p_filesz);
	if (!s)
		return fail(msg, msglen, LP_ELF_NOMEM, "out of memory");
	rc = elf_read(e, s, ph->p_filesz, ph->p_offset);
	if (rc < 0) {
		free(s);
		return fail(msg, msglen, LP_ELF_IO,
			    "cannot read the interpreter path: %s",
			    strerror(-rc));
	}
	e->interp = s;
	if (s[ph->p_filesz - 1] != '\0')
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "interpreter path is not NUL-terminated");
	if (s[0] == '\0')
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "empty interpreter path (PT_INTERP)");
	return 0;
}

/* Where the program headers are mapped, when no PT_PHDR says so: inside
 * the segment whose file bytes hold the whole table. */
static uint64_t phdr_in_load(const struct lp_elf *e, uint64_t phoff)
{
	uint64_t len = (uint64_t)e->phnum * sizeof(Elf64_Phdr);

	for (unsigned i = 0; i < e->nseg; i++) {
		const struct lp_elf_seg *s = &e->seg[i];

		if (s->offset <= phoff && phoff - s->offset <= s->filesz &&
		    len <= s->filesz - (phoff - s->offset))
			return s->vaddr + (phoff - s->offset);
	}
	return 0;
}

static int check_image(struct lp_elf *e, char *msg, size_t msglen)
{
	const struct lp_elf_seg *last = &e->seg[e->nseg - 1];
	bool inside = false;

	e->lo = page_down(e->seg[0].vaddr);
	e->hi = page_up(last->vaddr + last->memsz);
	if (e->type == ET_DYN && e->hi - e->lo > LP_ELF_MAX_SPAN)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "position-independent image spans 0x%llx bytes, "
			    "more than 1 TiB",
			    (unsigned long long)(e->hi - e->lo));
	for (unsigned i = 0; i < e->nseg && !inside; i++)
		inside = e->entry >= e->seg[i].vaddr &&
			 e->entry - e->seg[i].vaddr < e->seg[i].memsz;
	if (!inside)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "entry point 0x%llx is outside every PT_LOAD",
			    (unsigned long long)e->entry);
	return 0;
}

/* Validate what elf describes into e (whose fd or mem and file_size are
 * set).  0 or a positive lp_elf_error with msg. */
static int parse(struct lp_elf *e, Elf *elf, char *msg, size_t msglen)
{
	GElf_Ehdr eh;
	GElf_Phdr ph;
	bool have_phdr = false, have_stack = false;
	int rc;

	if (elf_kind(elf) != ELF_K_ELF)
		return fail(msg, msglen, LP_ELF_NOTELF, "not an ELF file");
	if (!gelf_getehdr(elf, &eh))
		return fail(msg, msglen, LP_ELF_CORRUPT, "bad ELF header: %s",
			    elf_errmsg(-1));
	rc = check_ehdr(&eh, msg, msglen);
	if (rc)
		return rc;
	rc = check_phdr_table(&eh, e->file_size, msg, msglen);
	if (rc)
		return rc;
	e->type = eh.e_type;
	e->entry = eh.e_entry;
	e->phnum = eh.e_phnum;
	e->phentsize = eh.e_phentsize;
	e->align = LP_ELF_PAGE;
	e->seg = calloc(eh.e_phnum, sizeof(*e->seg));
	if (!e->seg)
		return fail(msg, msglen, LP_ELF_NOMEM, "out of memory");

	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (!gelf_getphdr(elf, (int)i, &ph))
			return fail(msg, msglen, LP_ELF_CORRUPT,
				    "cannot read program header %u: %s", i,
				    elf_errmsg(-1));
		switch (ph.p_type) {
		case PT_LOAD:
			rc = add_load(e, i, &ph, msg, msglen);
			break;
		case PT_INTERP:
			rc = read_interp(e, &ph, msg, msglen);
			break;
		case PT_PHDR:
			if (!have_phdr)
				e->phdr_vaddr = ph.p_vaddr;
			have_phdr = true;
			break;
		case PT_GNU_STACK:
			have_stack = true;
			e->exec_stack = ph.p_flags & PF_X;
			break;
		}
		if (rc)
			return rc;
	}
	if (!have_stack)
		e->exec_stack = true;
	if (e->nseg == 0)
		return fail(msg, msglen, LP_ELF_CORRUPT,
			    "no loadable segment (PT_LOAD)");
	rc = check_image(e, msg, msglen);
	if (rc)
		return rc;
	if (!have_phdr)
		e->phdr_vaddr = phdr_in_load(e, eh.e_phoff);
	return 0;
}

/* Parse e, whose source (fd or mem) and file_size are set.  Consumes e:
 * on failure it is closed. */
static int load(struct lp_elf *e, struct lp_elf **out, char *msg,
		size_t msglen)
{
	Elf *elf;
	int rc;

	rc = check_ident(e, msg, msglen);
	if (rc)
		goto fail;
	elf_version(EV_CURRENT);
	if (e->fd >= 0)
		elf = elf_begin(e->fd, ELF_C_READ, NULL);
	else
		elf = elf_memory((char *)e->mem, e->memlen);
	if (!elf) {
		rc = fail(msg, msglen, LP_ELF_CORRUPT, "libelf: %s",
			  elf_errmsg(-1));
		goto fail;
	}
	rc = parse(e, elf, msg, msglen);
	elf_end(elf);
	if (rc)
		goto fail;
	*out = e;
	return 0;
fail:
	lp_elf_close(e);
	return rc;
}

static int open_error(int err, char *msg, size_t msglen)
{
	int code;

	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
	case ELOOP:
		code = LP_ELF_ENOENT;
		break;
	case EACCES:
	case EPERM:
		code = LP_ELF_EACCES;
		break;
	case ENOMEM:
		code = LP_ELF_NOMEM;
		break;
	default:
		code = LP_ELF_IO;
		break;
	}
	return fail(msg, msglen, code, "cannot open: %s", strerror(err));
}

int lp_elf_open(const char *path, struct lp_elf **out, char *msg,
		size_t msglen)
{
	int saved = errno, rc, fd;
	struct lp_elf *e;
	struct stat st;

	if (!out || !path)
		return -EINVAL;
	*out = NULL;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = open_error(errno, msg, msglen);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = fail(msg, msglen, LP_ELF_IO, "cannot stat: %s",
			  strerror(errno));
		close(fd);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(msg, msglen, LP_ELF_EACCES, "%s",
			  S_ISDIR(st.st_mode) ? "is a directory" :
						"not a regular file");
		close(fd);
		goto out;
	}
	(void)fcntl(fd, F_SETFL, 0);
	e = calloc(1, sizeof(*e));
	if (!e) {
		rc = fail(msg, msglen, LP_ELF_NOMEM, "out of memory");
		close(fd);
		goto out;
	}
	e->fd = fd;
	e->file_size = (uint64_t)st.st_size;
	rc = load(e, out, msg, msglen);
out:
	errno = saved;
	return rc;
}

int lp_elf_parse_mem(const void *buf, size_t len, struct lp_elf **out,
		     char *msg, size_t msglen)
{
	int saved = errno, rc;
	struct lp_elf *e;

	if (!out || (!buf && len))
		return -EINVAL;
	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e) {
		rc = fail(msg, msglen, LP_ELF_NOMEM, "out of memory");
	} else {
		e->fd = -1;
		e->mem = buf;
		e->memlen = len;
		e->file_size = len;
		rc = load(e, out, msg, msglen);
	}
	errno = saved;
	return rc;
}

void lp_elf_close(struct lp_elf *e)
{
	if (!e)
		return;
	if (e->fd >= 0) {
		int saved = errno;

		close(e->fd);
		errno = saved;
	}
	free(e->seg);
	free(e->interp);
	free(e);
}

int lp_elf_layout(const struct lp_elf *e, struct lp_elf_range **out,
		  unsigned *n)
{
	struct lp_elf_range *r;
	unsigned k = 0;

	if (!e || !out || !n || e->nseg == 0)
		return -EINVAL;
	r = malloc(e->nseg * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (unsigned i = 0; i < e->nseg; i++) {
		const struct lp_elf_seg *s = &e->seg[i];
		uint64_t start = page_down(s->vaddr);

		/* The later segment takes the pages it shares. */
		while (k > 0 && r[k - 1].end > start) {
			if (r[k - 1].start >= start)
				k--;
			else
				r[k - 1].end = start;
		}
		r[k++] = (struct lp_elf_range){
			.start = start,
			.end = page_up(s->vaddr + s->memsz),
			.prot = s->prot,
		};
	}
	*out = r;
	*n = k;
	return 0;
}

int lp_elf_fill_page(const struct lp_elf *e, uint64_t page, void *buf)
{
	int saved = errno, rc = -EFAULT;
	unsigned char *b = buf;

	if (!e || !buf || (page & PAGE_MASK))
		return -EINVAL;
	memset(buf, 0, LP_ELF_PAGE);
	if (page < e->lo || page >= e->hi)
		return -EFAULT;
	for (unsigned i = 0; i < e->nseg; i++) {
		const struct lp_elf_seg *s = &e->seg[i];
		uint64_t pend = page + LP_ELF_PAGE, end = s->vaddr + s->memsz;
		uint64_t fend = s->vaddr + s->filesz, a, z;

		if (end <= page || s->vaddr >= pend)
			continue;
		rc = 0;
		a = s->vaddr > page ? s->vaddr : page;
		z = end < pend ? end : pend;
		/* File bytes [a, min(z, fend)), zeros up to z. */
		if (a < fend) {
			uint64_t fz = fend < z ? fend : z;

			rc = elf_read(e, b + (a - page), fz - a,
				      s->offset + (a - s->vaddr));
			if (rc < 0)
				break;
			a = fz;
		}
		if (a < z)
			memset(b + (a - page), 0, z - a);
	}
	errno = saved;
	return rc;
}
