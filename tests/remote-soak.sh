#!/usr/bin/env bash
# The soak (tests/test_soak.c: races of faults, evictions, unmaps, remaps
# and forks, in the library and in a vmrun guest) with every evicted page on
# three redis-server shards (LAZYPAGE_REMOTE, two copies each) and verify
# mode on, while the shards misbehave: one is frozen (SIGSTOP) for two
# seconds, one killed, then started again empty on its port.  The soak's
# own checks (no page wrong, verify mismatches 0) must pass, and no key of
# the run may be left on the shards at the end.
#   tests/remote-soak.sh TEST-SOAK
# Skips (77) where redis-server is not installed.
set -uo pipefail
soak=$1
command -v redis-server >/dev/null || { echo "SKIP: redis-server is not installed (tools/setup)"; exit 77; }
command -v redis-cli >/dev/null || { echo "SKIP: redis-cli is not installed (tools/setup)"; exit 77; }
dir=$(mktemp -d /tmp/lp-remote-soak.XXXXXX)
pids=() ports=()
start() { # INDEX PORT
	redis-server --port "$2" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$dir" --logfile "$dir/$2.log" &
	pids[$1]=$!
	for _ in $(seq 200); do
		redis-cli -p "$2" ping >/dev/null 2>&1 && return 0
		sleep 0.02
	done
	echo "redis-server on port $2 did not start" >&2
	return 1
}
cleanup() {
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 30000))
for i in 0 1 2; do
	while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
	ports[$i]=$port
	start "$i" "$port" || exit 1
	port=$((port + 1))
done
export LAZYPAGE_REMOTE="redis://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
export LAZYPAGE_VERIFY=1
secs=${LAZYPAGE_SOAK_SECONDS:-20}
"$soak" --jobs=1 &
run=$!
# The trouble, spread over the soak's first half.
step=$(awk -v s="$secs" 'BEGIN { printf "%.2f", s / 10 }')
sleep "$step"
kill -STOP "${pids[2]}"
sleep "$step"
kill -CONT "${pids[2]}"
sleep "$step"
kill -9 "${pids[1]}"
wait "${pids[1]}" 2>/dev/null
sleep "$step"
start 1 "${ports[1]}" || { kill "$run"; exit 1; }
wait "$run"
rc=$?
echo "remote-soak: the soak ended with status $rc"
# (The guest's pager ends after its program: give it a few seconds.)
for _ in $(seq 50); do
	left=0
	for p in "${ports[@]}"; do
		n=$(redis-cli -p "$p" dbsize 2>/dev/null || echo 0)
		left=$((left + n))
	done
	[ "$left" -eq 0 ] && break
	sleep 0.1
done
if [ "$left" -ne 0 ]; then
	echo "remote-soak: $left keys left on the shards after the run" >&2
	[ $rc -ne 0 ] || rc=1
fi
if [ -n "${DUMP_KEYS:-}" ]; then for p in "${ports[@]}"; do redis-cli -p "$p" --scan | cut -d: -f1-2 | sort | uniq -c; done; fi
exit $rc
