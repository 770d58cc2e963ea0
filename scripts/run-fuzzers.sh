#!/usr/bin/env bash
# Runs each libFuzzer binary for the given seconds with its own corpus under
# build/fuzz/, and prints one line per target: executions, coverage, crashes.
# Seeds kept in the tree (tests/fuzz/corpus/<target>/: inputs that once crashed,
# small) are read too; new inputs go to build/fuzz/ only. A target's dictionary,
# tests/fuzz/<target>.dict, is used when there is one.
set -uo pipefail
seconds=$1
shift
status=0
for bin in "$@"; do
	name=$(basename "$bin")
	corpus="build/fuzz/corpus-${name#fuzz_}"
	mkdir -p "$corpus" "build/fuzz/crashes"
	more=()
	[ -d "tests/fuzz/corpus/$name" ] && more=("tests/fuzz/corpus/$name")
	[ -f "tests/fuzz/$name.dict" ] && more+=("-dict=tests/fuzz/$name.dict")
	log=$(mktemp)
	"$bin" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 \
		-artifact_prefix="build/fuzz/crashes/${name}-" "$corpus" ${more[@]+"${more[@]}"} >"$log" 2>&1
	rc=$?
	execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
	if [ $rc -ne 0 ]; then
		status=1
		echo "$name: FAILED (exit $rc) after ${execs:-?} executions; log tail:"
		tail -30 "$log"
	else
		echo "$name: ${execs:-?} executions in ${seconds}s, ${cov:-cov: ?}, no crash"
	fi
	rm -f "$log"
done
exit $status
