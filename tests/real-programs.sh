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
# The cap held: never more frames than the budget.
peak=$(sed 's/.*"peak_frames":\([0-9]*\).*/\1/' "$work/stats.json")
budget=$(sed 's/.*"budget_frames":\([0-9]*\).*/\1/' "$work/stats.json")
if [ "$peak" -gt "$budget" ]; then
	echo "peak $peak frames above the budget of $budget"
	exit 1
fi
echo "identical output, peak $peak of $budget frames"
