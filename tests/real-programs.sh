#!/usr/bin/env bash
# Real programs from Debian's packages, run natively and under vmrun with a
# memory cap far below their footprint: stdout and exit status must match.
#   real-programs.sh VMRUN busybox|python3|sqlite3
# Exit 77 (skipped) when the program is not installed.
set -u
vmrun=$1
name=$2
work=$(mktemp -d /tmp/lp-real-XXXXXX)
trap 'rm -rf "$work"' EXIT

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
	echo "unknown program $name" >&2
	exit 2
	;;
esac

if [ ! -x "$prog" ]; then
	echo "SKIP: $prog is not installed (apt-get install ${name/busybox/busybox-static})"
	exit 77
fi

"$prog" "${args[@]}" > "$work/native" 2>&1
native=$?
"$vmrun" --mem "$cap" --stats-json "$work/stats.json" "$prog" "${args[@]}" > "$work/managed" 2> "$work/err"
managed=$?
echo "$name: native status $native, under vmrun --mem $cap status $managed"
cat "$work/stats.json"
if [ "$native" != "$managed" ] || ! cmp -s "$work/native" "$work/managed"; then
	echo "MISMATCH"
	diff "$work/native" "$work/managed" | head -20
	cat "$work/err"
	exit 1
fi
# The cap held: never more frames than the budget.
peak=$(sed 's/.*"peak_frames":\([0-9]*\).*/\1/' "$work/stats.json")
budget=$(sed 's/.*"budget_frames":\([0-9]*\).*/\1/' "$work/stats.json")
if [ "$peak" -gt "$budget" ]; then
	echo "peak $peak frames above the budget of $budget"
	exit 1
fi
echo "identical output, peak $peak of $budget frames"
