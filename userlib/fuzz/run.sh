#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#
# A bounded libFuzzer run of heap_fuzz, reported like the other tests.
#
#   fuzz/run.sh FUZZER SEEDS WORKDIR SECONDS MIN_EXECS [libFuzzer options]
#
# New inputs go to WORKDIR/corpus (the committed SEEDS directory is only
# read), crash inputs to WORKDIR/crash-*, the log to WORKDIR/last.log.
# Passes when libFuzzer exits 0 (no crash, leak or timeout) after at least
# MIN_EXECS executions; prints the executions, the rate and the operations
# the inputs ran, then "1 passed, 0 failed" or "0 passed, 1 failed".
set -u

fuzzer=$1 seeds=$2 work=$3 secs=$4 min=$5
shift 5
mkdir -p "$work/corpus"
log=$work/last.log

HEAP_FUZZ_STATS=1 "$fuzzer" "$work/corpus" "$seeds" \
	-max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=2560 \
	-print_final_stats=1 -artifact_prefix="$work/" "$@" >"$log" 2>&1
rc=$?

runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" |
	tail -n 1)
took=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" |
	tail -n 1)
units=$(ls "$work/corpus" | wc -l)
runs=${runs:-0}
took=${took:-0}
if [ "$took" -gt 0 ]; then
	rate=$((runs / took))
else
	rate=$runs
fi
echo "fuzz: $runs executions in $took s ($rate/s), exit status $rc," \
	"$units inputs in $work/corpus"
grep '^heap_fuzz: .* operations executed' "$log" | tail -n 1
grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' \
	"$log" | sed 's/^/fuzz: /'
if [ "$rc" = 0 ] && [ "$runs" -ge "$min" ]; then
	echo "ok 1 - libFuzzer ran $runs inputs (at least $min) without a" \
		"crash"
	echo "1 passed, 0 failed"
	exit 0
fi
grep -E 'ERROR|heap_fuzz:|SUMMARY|Test unit written|runtime error' "$log" |
	head -n 20
echo "not ok 1 - libFuzzer: exit status $rc, $runs executions (minimum" \
	"$min); log: $log"
echo "0 passed, 1 failed"
exit 1
