#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz/fuzz_elf.c into fuzz/corpus/elf/.

Small crafted x86-64 programs shaped like what gcc and ld produce (static,
static-pie, dynamic PIE with PT_INTERP, shared pages, .bss tails), a few
that break one rule each, and truncated copies of the valid ones.  Each file
is well under 16 KiB.  Rerun after changing this script and commit the
result: the corpus is data, this is how it was made.
"""
import os
import struct
import sys

PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 0, 1, 2, 3, 4, 6, 7
PT_GNU_EH_FRAME, PT_GNU_STACK, PT_GNU_RELRO = 0x6474E550, 0x6474E551, 0x6474E552
PF_X, PF_W, PF_R = 1, 2, 4
ET_EXEC, ET_DYN = 2, 3
INTERP = b"/lib64/ld-linux-x86-64.so.2\0"


def image(etype, entry, phdrs, size, extra=()):
    """phdrs: (type, flags, offset, vaddr, filesz, memsz[, align])."""
    buf = bytearray((i * 7 + 1) & 0xFF | 0x80 for i in range(size))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    buf[0:64] = ident + struct.pack("<HHIQQQIHHHHHH", etype, 62, 1, entry,
                                    64, 0, 0, 64, 56, len(phdrs), 0, 0, 0)
    for i, p in enumerate(phdrs):
        t, fl, off, va, fs, ms = p[:6]
        al = p[6] if len(p) > 6 else (0x1000 if t == PT_LOAD else 8)
        buf[64 + 56 * i:120 + 56 * i] = struct.pack("<IIQQQQQQ", t, fl, off, va, va, fs, ms, al)
    for off, data in extra:
        buf[off:off + len(data)] = data
    return bytes(buf)


def valid():
    yield "static", image(ET_EXEC, 0x401000, [
        (PT_LOAD, PF_R, 0, 0x400000, 0x200, 0x200),
        (PT_LOAD, PF_R | PF_X, 0x1000, 0x401000, 0x100, 0x100),
        (PT_LOAD, PF_R | PF_W, 0x1180, 0x402180, 0x40, 0x1e80),
        (PT_TLS, PF_R, 0x1180, 0x402180, 0x10, 0x20),
        (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
    ], 0x1200)
    yield "static-pie", image(ET_DYN, 0x1010, [
        (PT_LOAD, PF_R, 0, 0, 0x300, 0x300),
        (PT_LOAD, PF_R | PF_X, 0x1000, 0x1000, 0x80, 0x80),
        (PT_LOAD, PF_R | PF_W, 0x1100, 0x2100, 0x100, 0x900),
        (PT_DYNAMIC, PF_R | PF_W, 0x1180, 0x2180, 0x40, 0x40),
        (PT_TLS, PF_R, 0x1100, 0x2100, 0x8, 0x18),
        (PT_GNU_RELRO, PF_R, 0x1100, 0x2100, 0x80, 0x80, 1),
        (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
    ], 0x1200)
    yield "dynamic-pie", image(ET_DYN, 0x1020, [
        (PT_PHDR, PF_R, 64, 64, 56 * 8, 56 * 8),
        (PT_INTERP, PF_R, 0x260, 0x260, len(INTERP), len(INTERP), 1),
        (PT_LOAD, PF_R, 0, 0, 0x300, 0x300),
        (PT_LOAD, PF_R | PF_X, 0x1000, 0x1000, 0x100, 0x100),
        (PT_LOAD, PF_R | PF_W, 0x1d70, 0x2d70, 0x90, 0x208),
        (PT_DYNAMIC, PF_R | PF_W, 0x1dd8, 0x2dd8, 0x20, 0x20),
        (PT_GNU_EH_FRAME, PF_R, 0x280, 0x280, 0x10, 0x10, 4),
        (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
    ], 0x1e00, [(0x260, INTERP)])
    # text and data share a page; the data's .bss covers file bytes
    yield "shared-page", image(ET_EXEC, 0x401000, [
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x1800, 0x1800),
        (PT_LOAD, PF_R | PF_W, 0x1800, 0x401800, 0x10, 0x1000),
    ], 0x1a00)
    # a segment wholly inside a shared page, and one at 2 MiB alignment
    yield "three-in-a-page", image(ET_DYN, 0x10, [
        (PT_LOAD, PF_R | PF_X, 0, 0, 0x400, 0x400, 0x200000),
        (PT_LOAD, PF_R, 0x400, 0x400, 0x100, 0x100),
        (PT_LOAD, PF_R | PF_W, 0x600, 0x600, 0x100, 0x3000),
    ], 0x800)
    # headers not in any PT_LOAD, no PT_GNU_STACK, exec stack
    yield "unmapped-phdrs", image(ET_EXEC, 0x10000, [
        (PT_LOAD, PF_R | PF_W | PF_X, 0x1000, 0x10000, 0x20, 0x20),
    ], 0x1020)


def invalid():
    ok = dict(valid())
    yield "bad-two-interps", image(ET_DYN, 0x1000, [
        (PT_INTERP, PF_R, 0x200, 0x200, len(INTERP), len(INTERP)),
        (PT_INTERP, PF_R, 0x200, 0x200, len(INTERP), len(INTERP)),
        (PT_LOAD, PF_R | PF_X, 0, 0, 0x1100, 0x1100),
    ], 0x1100, [(0x200, INTERP)])
    yield "bad-overlap", image(ET_EXEC, 0x400000, [
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x2000, 0x2000),
        (PT_LOAD, PF_R | PF_W, 0x800, 0x400800, 0x10, 0x10),
    ], 0x2000)
    yield "bad-filesz", image(ET_EXEC, 0x400000, [
        (PT_LOAD, PF_R | PF_X, 0, 0x400000, 0x200, 0x100),
    ], 0x200)
    yield "bad-kernel-address", image(ET_EXEC, 0x7ffffffff000, [
        (PT_LOAD, PF_R | PF_X, 0, 0x7ffffffff000, 0x100, 0x100),
    ], 0x200)
    s = bytearray(ok["static"])
    s[4] = 1  # ELFCLASS32
    yield "bad-class32", bytes(s)
    s = bytearray(ok["static"])
    s[18:20] = struct.pack("<H", 183)  # aarch64
    yield "bad-aarch64", bytes(s)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "elf")
    os.makedirs(out, exist_ok=True)
    files = {}
    for name, data in valid():
        files[name] = data
        for cut in (16, 64, 100, 200, 0x300, len(data) // 2, len(data) - 1):
            if cut < len(data):
                files["%s-cut%d" % (name, cut)] = data[:cut]
    files.update(invalid())
    for name, data in sorted(files.items()):
        assert len(data) < 16 * 1024, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d files in %s" % (len(files), out), file=sys.stderr)


if __name__ == "__main__":
    main()
