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
*)
	return 2
	;;
esac
}
