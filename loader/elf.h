/* SPDX-License-Identifier: MIT */
/*
 * The loader's view of an x86-64 ELF program (internal to lazypage): open
 * and validate the file, describe its PT_LOAD image, and produce the content
 * of any page of that image (Pintos' load_segment / lazy_load_segment).
 * Nothing here maps memory; addresses are unrelocated (an ET_DYN image is
 * placed by adding a load bias to all of them).
 *
 * Include as "loader/elf.h": this header shadows the system <elf.h> if
 * loader/ itself is ever put on the include path.
 */
#ifndef LP_LOADER_ELF_H
#define LP_LOADER_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_ELF_PAGE 4096u
/* The end of x86-64 user space with 4-level page tables (TASK_SIZE): the
 * last page below 2^47 is never mappable. */
#define LP_ELF_USER_END 0x7ffffffff000ull
/* Most program headers accepted. */
#define LP_ELF_MAX_PHNUM 1024u
/* Largest span lo..hi of a position-independent (ET_DYN) image. */
#define LP_ELF_MAX_SPAN (1ull << 40)

/* One PT_LOAD with p_memsz > 0. */
struct lp_elf_seg {
	uint64_t vaddr, memsz;  /* memory range [vaddr, vaddr + memsz) */
	uint64_t offset, filesz; /* file bytes at [vaddr, vaddr + filesz) */
	int prot;               /* PROT_READ/WRITE/EXEC from p_flags */
};

struct lp_elf {
	int fd;                 /* owned, O_RDONLY|O_CLOEXEC; -1 for in-memory parses */
	const void *mem;        /* in-memory parses: the caller's buffer, which */
	size_t memlen;          /* must outlive this object; NULL/0 otherwise */
	uint16_t type;          /* ET_EXEC or ET_DYN */
	uint64_t entry;         /* e_entry, unrelocated; inside some segment */
	uint16_t phnum, phentsize; /* for AT_PHNUM / AT_PHENT */
	/* Where the program headers are in memory: PT_PHDR's p_vaddr, else the
	 * address of e_phoff inside the PT_LOAD whose file bytes hold the whole
	 * table; 0 if they are not mapped. */
	uint64_t phdr_vaddr;
	/* The PT_LOADs with p_memsz > 0, ascending; each starts no lower than
	 * the last page of the one before (they may share that page). */
	struct lp_elf_seg *seg;
	unsigned nseg;          /* >= 1 */
	char *interp;           /* PT_INTERP path, or NULL */
	uint64_t lo, hi;        /* page-aligned extent of the PT_LOADs */
	/* Largest p_align of the PT_LOADs that is a power of two of at most
	 * 1 GiB, and at least LP_ELF_PAGE: an ET_DYN image's load bias should
	 * be a multiple of it, as the kernel's is. */
	uint64_t align;
	/* PT_GNU_STACK has PF_X, or there is none.  Note: Linux on x86-64
	 * (since 5.8) gives a program without PT_GNU_STACK a non-executable
	 * stack all the same; the launcher decides. */
	bool exec_stack;
	uint64_t file_size;     /* at open, or the buffer length */
};

/* Positive results of lp_elf_open / lp_elf_parse_mem. */
enum lp_elf_error {
	LP_ELF_ENOENT = 1, /* no such file (or a path component is missing) */
	LP_ELF_EACCES,     /* permission denied, or not a regular file */
	LP_ELF_NOTELF,     /* no ELF magic */
	LP_ELF_CLASS,      /* not ELFCLASS64 */
	LP_ELF_ARCH,       /* not x86-64, or big-endian */
	LP_ELF_TYPE,       /* not ET_EXEC or ET_DYN (ET_REL, ET_CORE, ...) */
	LP_ELF_CORRUPT,    /* headers inconsistent, truncated or out of range */
	LP_ELF_NOMEM,
	LP_ELF_IO,         /* a read failed */
};

/* Open path read-only and validate it as an x86-64 program.  Returns 0 and
 * a new object in *out (free with lp_elf_close), or a positive
 * lp_elf_error with *out = NULL and a one-line reason without the path in
 * msg (msg may be NULL when msglen is 0), or -EINVAL if path or out is
 * NULL.  Never prints, never aborts, leaves errno alone; no allocation is
 * sized by a header field beyond 1024 program headers and one PATH_MAX
 * interpreter string.  Does not check execute permission. */
int lp_elf_open(const char *path, struct lp_elf **out, char *msg, size_t msglen);

/* The same for the ELF image buf[0, len), which is not copied: it must stay
 * valid and unchanged until lp_elf_close.  -EINVAL if out is NULL, or buf
 * is NULL and len is not 0. */
int lp_elf_parse_mem(const void *buf, size_t len, struct lp_elf **out,
		     char *msg, size_t msglen);

/* Close the file and free e.  NULL is fine. */
void lp_elf_close(struct lp_elf *e);

/* A page-aligned part of the image with one protection. */
struct lp_elf_range {
	uint64_t start, end; /* [start, end), unrelocated */
	int prot;
};

/* The image as page ranges: one per segment that still owns a page, in
 * ascending order, not overlapping.  Each page belongs to the last segment
 * that covers any byte of it (a page shared by two segments takes the
 * later one's protection, as the kernel's MAP_FIXED of the later segment
 * does).  Gaps between segments are not covered.  *out is allocated with
 * malloc (free() it), *n >= 1.  0, -EINVAL or -ENOMEM. */
int lp_elf_layout(const struct lp_elf *e, struct lp_elf_range **out,
		  unsigned *n);

/* Produce the image page at unrelocated, page-aligned address page into buf
 * (LP_ELF_PAGE bytes): zeros, then for each segment in order that overlaps
 * the page, its file bytes for [vaddr, vaddr + filesz) and zeros for
 * [vaddr + filesz, vaddr + memsz): later segments win for their range, so
 * .bss bytes in the last file page of .data read as zero.  Bytes of the page
 * outside every segment read as zero (the kernel shows the file's bytes
 * there).  Thread-safe (pread).  0, -EINVAL (page not aligned), -EFAULT
 * (no segment overlaps the page), -EIO (the file has shrunk since it was
 * opened), or the -errno of pread. */
int lp_elf_fill_page(const struct lp_elf *e, uint64_t page, void *buf);

#endif
