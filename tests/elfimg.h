/* SPDX-License-Identifier: MIT */
/*
 * Small ELF images built in memory for the loader tests: an x86-64 ELF
 * header, program headers right after it, and file bytes filled with a
 * nonzero pattern so that zeroing shows.
 */
#ifndef LP_TEST_ELFIMG_H
#define LP_TEST_ELFIMG_H

#include <elf.h>
#include <stdint.h>
#include <string.h>

#define IMG_MAX (64u * 1024u)

struct img {
	_Alignas(8) unsigned char b[IMG_MAX];
	size_t len;
};

static inline Elf64_Ehdr *img_eh(struct img *m)
{
	return (Elf64_Ehdr *)m->b;
}

static inline Elf64_Phdr *img_ph(struct img *m, unsigned i)
{
	return (Elf64_Phdr *)(m->b + sizeof(Elf64_Ehdr) +
			      i * sizeof(Elf64_Phdr));
}

/* The nonzero byte the pattern has at file offset off. */
static inline unsigned char img_pat(size_t off)
{
	return (unsigned char)(off * 7 + 1) | 0x80;
}

/* A file of len bytes (pattern-filled) starting with an x86-64 ELF header
 * of type t with no program headers yet. */
static inline void img_init(struct img *m, uint16_t type, size_t len)
{
	Elf64_Ehdr *eh = img_eh(m);

	m->len = len;
	for (size_t i = 0; i < IMG_MAX; i++)
		m->b[i] = img_pat(i);
	memset(eh, 0, sizeof(*eh));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = type;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
}

/* Append a program header; returns its index. */
static inline unsigned img_add(struct img *m, uint32_t type, uint32_t flags,
			       uint64_t off, uint64_t vaddr, uint64_t filesz,
			       uint64_t memsz)
{
	unsigned i = img_eh(m)->e_phnum++;
	Elf64_Phdr *ph = img_ph(m, i);

	*ph = (Elf64_Phdr){
		.p_type = type,
		.p_flags = flags,
		.p_offset = off,
		.p_vaddr = vaddr,
		.p_paddr = vaddr,
		.p_filesz = filesz,
		.p_memsz = memsz,
		.p_align = type == PT_LOAD ? 0x1000 : 8,
	};
	return i;
}

/* A valid static program at 0x400000, 3 pages of file:
 *   0: LOAD R   file [0, 0x1000)      headers
 *   1: LOAD R X file [0x1000, 0x1800) entry 0x401000
 *   2: LOAD RW  file [0x2100, 0x2200) at 0x403100, memory to 0x405000
 *   3: GNU_STACK RW */
static inline void img_static(struct img *m)
{
	img_init(m, ET_EXEC, 0x3000);
	img_add(m, PT_LOAD, PF_R, 0, 0x400000, 0x1000, 0x1000);
	img_add(m, PT_LOAD, PF_R | PF_X, 0x1000, 0x401000, 0x800, 0x800);
	img_add(m, PT_LOAD, PF_R | PF_W, 0x2100, 0x403100, 0x100, 0x1f00);
	img_add(m, PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0);
	img_eh(m)->e_entry = 0x401000;
}

#define IMG_INTERP "/lib64/ld-linux-x86-64.so.2"

/* A valid position-independent program with PT_PHDR and PT_INTERP:
 *   0: PHDR
 *   1: INTERP   at file 0x200
 *   2: LOAD R   file [0, 0x1000) at 0
 *   3: LOAD R X file [0x1000, 0x2000) at 0x1000, entry 0x1100
 *   4: LOAD RW  file [0x2000, 0x2080) at 0x3000, memory to 0x3800 */
static inline void img_pie(struct img *m)
{
	img_init(m, ET_DYN, 0x3000);
	img_add(m, PT_PHDR, PF_R, 64, 64, 5 * sizeof(Elf64_Phdr),
		5 * sizeof(Elf64_Phdr));
	img_add(m, PT_INTERP, PF_R, 0x200, 0x200, sizeof(IMG_INTERP),
		sizeof(IMG_INTERP));
	memcpy(m->b + 0x200, IMG_INTERP, sizeof(IMG_INTERP));
	img_add(m, PT_LOAD, PF_R, 0, 0, 0x1000, 0x1000);
	img_add(m, PT_LOAD, PF_R | PF_X, 0x1000, 0x1000, 0x1000, 0x1000);
	img_add(m, PT_LOAD, PF_R | PF_W, 0x2000, 0x3000, 0x80, 0x800);
	img_eh(m)->e_entry = 0x1100;
}

#endif
