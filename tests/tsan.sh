#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `make tsan`: runs the tests built with ThreadSanitizer (build/tests/tsan/),
# one after another. A test fails when it fails or when ThreadSanitizer
# reports anything (a data race, a lock order inversion, a mutex misused);
# the report is printed. Ends with one line "N passed, N failed".
# The BPF tests need root, as in `make test`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

logdir=$(mktemp -d /tmp/ztagent-tsan.XXXXXX)
passed=0
failed=0
failed_tests=()
# exitcode 66: a report fails the test even when its asserts passed.
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

for t in "$@"; do
	[ -x "$t" ] || continue
	name=${t#build/tests/tsan/}
	log="$logdir/${name//\//_}.log"
	timeout 900 "$t" >"$log" 2>&1
	rc=$?
	reports=$(grep -c 'WARNING: ThreadSanitizer' "$log")
	if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		failed_tests+=("$name")
		echo "FAIL $name (exit $rc, $reports ThreadSanitizer reports; log $log)"
		grep -A 24 'WARNING: ThreadSanitizer' "$log" | head -n 60
		grep -E '^\[  (ERROR|FAILED) ' "$log" | head -n 10
	fi
done
[ ${#failed_tests[@]} -gt 0 ] && echo "failing: ${failed_tests[*]}"
[ "$failed" -eq 0 ] && rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
