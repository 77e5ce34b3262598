#!/bin/bash
cd /work/main
i=${START:-0}
while [ ! -e /tmp/zh/stop ] && [ ! -s /tmp/dbg-dump.txt ]; do
  i=$((i+1))
  out=$(timeout 300 build/bench/lp-bench -w ${W:-zipf1.0} -n ${N:-16384} -f ${F:-4096} -m rmw -S -p clock -s $i $EXTRA 2>&1)
  rc=$?
  if [ $rc -ne 0 ] || echo "$out" | grep -q "error"; then echo "RUN $i rc=$rc"; echo "$out"; fi
  echo "$i" > /tmp/zh/rcount.$$
done
