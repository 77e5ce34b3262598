#!/usr/bin/env bash
# Real-program stress (issue 9): perl, python3, lua5.4, sqlite3, xz and zstd
# run again and again under vmrun at caps of 2-8 MiB, with every policy,
# with and without --verify; each run's stdout and exit status must be the
# native run's, --verify must count 0 mismatches, the cap must hold.
#   stress-programs.sh VMRUN [RUNS]
# RUNS (default $LAZYPAGE_STRESS_RUNS, else 80: two minutes or so): run i
# is workload i % 8 in block b = i / 8, with policy (i + b) % P, --verify
# when (b + b / P) is odd, and the workload's caps in turn (b % caps): 80
# runs give each workload every policy (P = 10), half of them verified;
# 160 runs every workload x policy x verify.  A run that takes longer than
# $LAZYPAGE_STRESS_TIMEOUT seconds (default 300) is a hang.  Failed runs'
# stderr and statistics are kept in $LAZYPAGE_STRESS_KEEP (a directory)
# when set.  Exit 77 (skipped) when none of the programs is installed.
set -u
vmrun=$1
runs=${2:-${LAZYPAGE_STRESS_RUNS:-80}}
limit=${LAZYPAGE_STRESS_TIMEOUT:-300}
keep=${LAZYPAGE_STRESS_KEEP:-}
work=$(mktemp -d /tmp/lp-stress-XXXXXX)
trap 'rm -rf "$work"' EXIT

. "$(dirname "$0")/real-workloads.sh"
all=(perl-hash python-churn lua-table sqlite-index xz-c xz-d zstd-c zstd-d)
read -r -a policies <<< "$("$vmrun" --help | sed -n 's/.*eviction policy (\(.*\))/\1/p' | tr -d ,)"
if [ "${#policies[@]}" -eq 0 ]; then
	echo "cannot read the policies from $vmrun --help"
	exit 2
fi

# Native runs, once per workload.
names=()
for name in "${all[@]}"; do
	real_workload "$name" "$work" || exit 2
	if [ ! -x "$prog" ]; then
		echo "skip $name: $prog not installed (tools/setup installs it)"
		continue
	fi
	"$prog" "${args[@]}" > "$work/$name.native" 2> /dev/null
	echo $? > "$work/$name.status"
	names+=("$name")
done
if [ "${#names[@]}" -eq 0 ]; then
	echo "SKIP: none of the programs is installed"
	exit 77
fi

nw=${#all[@]} np=${#policies[@]}
declare -A per_prog_runs per_prog_bad
crashes=0 hangs=0 diffs=0 mism=0 over=0 done_runs=0 checks=0
for ((i = 0; i < runs; i++)); do
	name=${all[i % nw]}
	[ -f "$work/$name.status" ] || continue
	b=$((i / nw))
	policy=${policies[(i + b) % np]}
	verify=$(( (b + b / np) % 2 ))
	real_workload "$name" "$work"
	read -r -a cl <<< "$caps"
	cap=${cl[b % ${#cl[@]}]}
	opts=(--mem "$cap" --policy "$policy" --stats-json "$work/stats.json")
	((verify)) && opts+=(--verify)
	rm -f "$work/stats.json"
	start=$(date +%s.%N)
	timeout -k 10 "$limit" "$vmrun" "${opts[@]}" "$prog" "${args[@]}" \
		> "$work/out" 2> "$work/err"
	status=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	done_runs=$((done_runs + 1))
	per_prog_runs[$name]=$(( ${per_prog_runs[$name]:-0} + 1 ))
	native=$(cat "$work/$name.status")
	what=()
	if [ "$status" = 124 ] || [ "$status" = 137 ]; then
		what+=("HANG (killed after ${limit}s)")
		hangs=$((hangs + 1))
	elif [ "$status" != "$native" ]; then
		what+=("status $status, native $native")
		[ "$status" -ge 128 ] && crashes=$((crashes + 1))
	fi
	if ! cmp -s "$work/out" "$work/$name.native"; then
		what+=("output differs")
		diffs=$((diffs + 1))
	fi
	if [ -s "$work/stats.json" ]; then
		m=$(sed 's/.*"verify_mismatches":\([0-9]*\).*/\1/' "$work/stats.json")
		c=$(sed 's/.*"verify_checks":\([0-9]*\).*/\1/' "$work/stats.json")
		peak=$(sed 's/.*"peak_frames":\([0-9]*\).*/\1/' "$work/stats.json")
		budget=$(sed 's/.*"budget_frames":\([0-9]*\).*/\1/' "$work/stats.json")
		checks=$((checks + c))
		if [ "$m" != 0 ]; then
			what+=("verify: $m mismatches")
			mism=$((mism + m))
		fi
		if [ "$peak" -gt "$budget" ]; then
			what+=("peak $peak frames above the budget $budget")
			over=$((over + 1))
		fi
		swapins=$(sed 's/.*"swapin":{"count":\([0-9]*\).*/\1/' "$work/stats.json")
		if ((verify)) && [ "$c" = 0 ] && [ "$swapins" != 0 ]; then
			what+=("verify checked none of $swapins swap-ins")
		fi
	elif [ "$status" = "$native" ]; then
		what+=("no statistics written")
	fi
	line="run $i: $name --mem $cap --policy $policy$( ((verify)) && echo ' --verify'): status $status, ${secs}s"
	if [ "${#what[@]}" -eq 0 ]; then
		echo "$line"
		continue
	fi
	per_prog_bad[$name]=$(( ${per_prog_bad[$name]:-0} + 1 ))
	echo "$line: FAIL: ${what[*]}"
	diff <(head -c 2000 "$work/$name.native") <(head -c 2000 "$work/out") | head -5
	head -40 "$work/err"
	if [ -n "$keep" ]; then
		mkdir -p "$keep"
		cp "$work/err" "$keep/run$i-$name-$policy.err"
		cp "$work/out" "$keep/run$i-$name-$policy.out"
		[ -f "$work/stats.json" ] && cp "$work/stats.json" "$keep/run$i-$name-$policy.json"
	fi
done

echo
for name in "${names[@]}"; do
	echo "  $name: ${per_prog_runs[$name]:-0} runs, ${per_prog_bad[$name]:-0} failed"
done
echo "stress: $done_runs runs over ${#policies[@]} policies: $crashes crashes," \
	"$hangs hangs, $diffs output differences, $mism verify mismatches" \
	"($checks pages checked), $over over the cap"
failed=0
for name in "${names[@]}"; do
	failed=$((failed + ${per_prog_bad[$name]:-0}))
done
[ "$failed" -eq 0 ]
