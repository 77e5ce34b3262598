# The demo's program: builds about 130 MiB of Python objects, uses them,
# prints what it computed.  Run natively and under vmrun: same output.
import hashlib

table = {i: str(i) * 3 for i in range(600000)}
blocks = [bytes(range(256)) * 4 for _ in range(40000)]
digest = hashlib.sha256()
for k in range(0, 600000, 997):
    digest.update(table[k].encode())
for b in blocks[::101]:
    digest.update(b)
print("entries:", len(table), "blocks:", len(blocks))
print("sha256:", digest.hexdigest())
