#!/usr/bin/env bash
# Runs each cmocka test binary and ends with one summary line ("N passed, N failed,
# N skipped") so a reader, and CI, see the total; fails when any binary fails.
set -uo pipefail
passed=0 failed=0 skipped=0 failed_bins=()
for bin in "$@"; do
	out=$("$bin" 2>&1)
	rc=$?
	echo "$out"
	p=$(grep -oE '\[  PASSED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
	f=$(grep -oE '\[  FAILED  \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
	s=$(grep -oE '\[  SKIPPED \] [0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo 0)
	passed=$((passed + ${p:-0}))
	skipped=$((skipped + ${s:-0}))
	if [ $rc -ne 0 ]; then
		failed=$((failed + (${f:-0} > 0 ? ${f:-0} : 1)))
		failed_bins+=("$bin")
	fi
done
# A skip prints its reason (what the machine lacks) above, with the test's name.
echo "unit: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || { echo "failing: ${failed_bins[*]}" >&2; exit 1; }
