# The real-program workloads, shared by tests/real-programs.sh (identical
# output under vmrun) and bench/run (timing under each policy).
#   real_workload NAME WORKDIR
# sets prog (the program's path), cap (the memory cap the test uses) and
# args (an array); returns 2 for an unknown NAME.  May write into WORKDIR.
# (The body is not indented: it holds a Python program and a here-document.)
real_workload() {
local name=$1 work=$2
case $name in
busybox)
	prog=/bin/busybox
	cap=512K
	args=(sh -c 'i=0; while [ $i -lt 3000 ]; do echo "line $((i * 7919 % 10007))"; i=$((i + 1)); done | sort | md5sum
		seq 1 200000 | sort -rn | head -3
		seq 1 50000 | awk "{ s += \$1 } END { print s }"
		echo hello | gzip | gzip -d
		x=$(seq 1 1000 | wc -l); echo "subshell $x"
		sleep 0.1 & wait; echo "background job done"
		exit 3')
	;;
dash)
	# Debian's /bin/sh: a script of short processes, as configure scripts
	# and shell loops run them: subshells and command substitutions one
	# after another (each a fork that ends at once), pipelines of
	# programs it executes, a background job.
	prog=/bin/dash
	cap=1M
	args=(-c 'i=0; while [ $i -lt 150 ]; do (echo $i) > /dev/null; x=$(echo $((i * 7))); i=$((i + 1)); done; echo "last $x"
		seq 1 20000 | sort -rn | head -2
		for w in a b c d e f g h; do echo $w; done | tr a-h A-H | sort -r | tr -d "\n"; echo
		n=0; for k in 1 2 3 4 5 6 7 8 9 10; do n=$((n + $(seq 1 $k | wc -l))); done; echo "sum $n"
		(sleep 0.05; echo "background job done") & wait
		exit 4')
	;;
python3)
	prog=/usr/bin/python3
	cap=24M
	args=(-c '
import os, subprocess, threading
d = {i: str(i) * 3 for i in range(600000)}
l = [bytes(range(256)) * 4 for _ in range(40000)]
print(len(d), sum(len(v) for v in d.values()), len(l), sum(x[7] for x in l))
t = [threading.Thread(target=lambda k=k: d.__setitem__(-k, k)) for k in range(8)]
[x.start() for x in t]; [x.join() for x in t]
print(sorted(k for k in d if k < 0))
print(subprocess.run(["/bin/echo", "child"], capture_output=True).stdout)
os.closerange(3, 1024)
print(sum(range(10**6)))
')
	;;
sqlite3)
	prog=/usr/bin/sqlite3
	cap=12M
	cat > "$work/q.sql" <<'SQL'
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000)
INSERT INTO t SELECT x, printf('%08x-%d', (x * 2654435761) % 4294967296, x % 977), x * 0.5 FROM n;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(a), sum(c) FROM t;
SELECT a, b FROM t WHERE b >= 'ffff' ORDER BY b LIMIT 3;
SELECT count(DISTINCT substr(b, 1, 3)) FROM t;
SQL
	args=(-cmd ".read $work/q.sql" :memory: .quit)
	;;
# The stress suite's workloads (tests/stress-programs.sh): each pages
# hard at the caps in $caps (a few MiB) and prints a digest, in a second
# or so; below those caps some take minutes.
perl-hash)
	prog=/usr/bin/perl
	caps="3M 4M 6M"
	args=(-e 'my %h; $h{"k$_"} = $_ * 2 for 1 .. 30000; my $s = 0;
$s += $h{$_} for keys %h; delete $h{"k$_"} for grep { $_ % 3 == 0 } 1 .. 30000;
my @k = sort keys %h; print scalar(@k), " $s $k[0] $k[-1] ", join(",", @k[100 .. 104]), "\n";')
	;;
python-churn)
	prog=/usr/bin/python3
	caps="2M 4M 8M"
	args=(-c '
import hashlib
d, l = {}, []
for i in range(60000):
    d[i] = str(i) * 3
    if i % 3 == 0:
        l.append(bytes([i % 256]) * 64)
    if i % 7 == 0 and i // 2 in d:
        del d[i // 2]
h = hashlib.md5(repr(sorted(d.items())[::97]).encode()).hexdigest()
print(len(d), sum(len(v) for v in d.values()), len(l), sum(x[0] for x in l), h)
')
	;;
lua-table)
	prog=/usr/bin/lua5.4
	caps="4M 5M 6M"
	args=(-e 'local t = {}
for i = 1, 40000 do t[i] = i * 3; t["k" .. i] = i end
for i = 1, 40000, 4 do t["k" .. i] = nil end
local s, n = 0, 0
for k, v in pairs(t) do s = s + v; n = n + 1 end
print(#t, n, s)')
	;;
sqlite-index)
	prog=/usr/bin/sqlite3
	caps="2M 3M 4M"
	args=(:memory: "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60000)
INSERT INTO t SELECT x, printf('%08x-%d', (x * 2654435761) % 4294967296, x % 977), x * 0.5 FROM n;
CREATE INDEX tb ON t(b);
DELETE FROM t WHERE a % 5 = 0;
SELECT count(*), sum(a), sum(c), min(b), max(b) FROM t;
SELECT a, b FROM t WHERE b >= 'ffff' ORDER BY b LIMIT 3;")
	;;
xz-c|xz-d|zstd-c|zstd-d)
	# Text made the same way every time (natively): 400 KB to compress,
	# 4 MB compressed to decompress.
	[ -s "$work/text" ] || seq 1 10000 | awk '{ printf "%d lorem ipsum %d dolor %x sit %d\n",
		$1 * 7919 % 100003, $1 % 97, $1 * 31, $1 % 1013 }' > "$work/text"
	case $name in
	xz-c) prog=/usr/bin/xz; caps="8M"; args=(-9 -T1 -c "$work/text") ;;
	zstd-c) prog=/usr/bin/zstd; caps="8M"; args=(-12 -q -c "$work/text") ;;
	*)
		[ -s "$work/big" ] || seq 1 100000 | awk '{ printf "%d lorem ipsum %d dolor %x sit %d\n",
			$1 * 7919 % 100003, $1 % 97, $1 * 31, $1 % 1013 }' > "$work/big"
		if [ "$name" = xz-d ]; then
			prog=/usr/bin/xz; caps="2M 4M"; args=(-dc "$work/big.xz")
			[ -s "$work/big.xz" ] || xz -9 -T1 -c "$work/big" > "$work/big.xz"
		else
			prog=/usr/bin/zstd; caps="2M 4M"; args=(-dqc "$work/big.zst")
			[ -s "$work/big.zst" ] || zstd -12 -q -c "$work/big" > "$work/big.zst"
		fi
		;;
	esac
	;;
*)
	return 2
	;;
esac
}
