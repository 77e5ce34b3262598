#!/usr/bin/env python3
"""Read the ring that tools/trace/page-trace.patch dumps (/tmp/dbg-ring.bin,
/tmp/dbg-dump.txt): the last events of the missing page P and of its kva
slot K, then every event near either (3 pages) since K's zap before the
failed park.  Usage: tools/trace/ring.py [RING] [DUMP]"""
import re
import struct
import sys

ring = sys.argv[1] if len(sys.argv) > 1 else '/tmp/dbg-ring.bin'
dumpf = sys.argv[2] if len(sys.argv) > 2 else '/tmp/dbg-dump.txt'
N = 1 << 23
rec = struct.Struct('<QQIbxhh6x')  # vpn, ns, tid, event, a, b
names = {1: 'state', 2: 'copy-dst', 3: 'move-src', 4: 'zap', 5: 'wp',
         6: 'copy-src', 7: 'move-dst', 8: 'process_madvise', 9: 'park',
         10: 'madvise-fallback',
         11: 'pagemap',  # a: pfn bits 0-14, b: bits 15-29 (-32768: absent)
         12: 'words'}    # a: word 1 bits 0-14, b: word 0 bits 0-14
with open(ring, 'rb') as f:
    end = struct.unpack('<Q', f.read(8))[0]
    data = f.read()
dump = open(dumpf).read()
P = int(re.search(r'absent vpn (0x[0-9a-f]+)', dump).group(1), 16)
K = int(re.search(r'its kva vpn (0x[0-9a-f]+)', dump).group(1), 16)
evs = [(k,) + rec.unpack_from(data, (k % N) * rec.size)
       for k in range(max(0, end - N), end)]
mine = [e for e in evs if e[1] in (P, K)]
print('page P', hex(P), 'kva slot K', hex(K))
for k, v, ns, t, ev, a, b in mine[-40:]:
    print(k, 'P' if v == P else 'K', ns, t, names.get(ev, ev), a, b)
zaps = [e[0] for e in mine if e[1] == K and e[4] == 4]
start = zaps[-2] if len(zaps) > 1 else 0
print('--- near P or K since', start)
for k, v, ns, t, ev, a, b in evs:
    if k >= start and v not in (P, K) and (abs(v - P) <= 3 or abs(v - K) <= 3):
        tag = 'P%+d' % (v - P) if abs(v - P) <= 3 else 'K%+d' % (v - K)
        print(k, tag, ns, t, names.get(ev, ev), a, b)
