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

. "$(dirname "$0")/real-workloads.sh"
if ! real_workload "$name" "$work"; then
	echo "unknown program $name" >&2
	exit 2
fi

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
# The cap held for the tree: its peak (the first peak_frames, the tree's;
# each process has its own later) never more than the budget and the
# slack the README documents, 32 frames per process.
first() { grep -o "\"$1\": *[0-9]*" "$work/stats.json" | head -1 | grep -o '[0-9]*$'; }
peak=$(first peak_frames)
budget=$(first budget_frames)
procs=$(grep -o '"pid": *[0-9]*' "$work/stats.json" | wc -l)
[ "$procs" -gt 0 ] || procs=1
if [ -z "$peak" ] || [ -z "$budget" ]; then
	echo "no peak or budget in the statistics"
	exit 1
fi
if [ "$peak" -gt $((budget + 32 * procs)) ]; then
	echo "peak $peak frames above the budget of $budget and $procs processes' slack"
	exit 1
fi
echo "identical output, peak $peak of $budget frames ($procs processes)"
