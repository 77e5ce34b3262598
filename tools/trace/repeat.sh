#!/bin/bash
# Rerun one lp-bench case with new seeds until it fails or a trace dump
# appears (tools/trace/page-trace.patch writes /tmp/dbg-dump.txt), e.g.
#   LAZYPAGE_VERIFY=1 N=65536 F=16384 EXTRA="-t 3 -R" tools/trace/repeat.sh
# Run two or three at once (START=1000, 2000, ...): the failure needs load.
# Touch /tmp/lp-repeat-stop to stop.
cd "$(dirname "$0")/../.." || exit 1
i=${START:-0}
while [ ! -e /tmp/lp-repeat-stop ] && [ ! -s /tmp/dbg-dump.txt ]; do
	i=$((i + 1))
	out=$(timeout 300 build/bench/lp-bench -w "${W:-zipf1.0}" -n "${N:-16384}" \
		-f "${F:-4096}" -m rmw -S -p "${P:-clock}" -s "$i" $EXTRA 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || grep -q error <<<"$out"; then
		echo "RUN $i rc=$rc"
		echo "$out"
	fi
	echo "run $i" >&2
done
