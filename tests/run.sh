#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed".
#  - unit tests (cmocka, built with ASan/UBSan): build/tests/unit/*
#  - BPF tests (cmocka, BPF_PROG_TEST_RUN):      build/tests/bpf/*
#  - integration tests (TAP from shell):         tests/integration/*.sh
# A suite that crashes or exits non-zero without reporting a failure counts
# as one failure, so nothing fails silently.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failed_suites=()
logdir=build/test-logs
mkdir -p "$logdir"

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
run_cmocka() {
	local bin=$1 name log rc p f
	name=$(basename "$bin")
	log="$logdir/$name.log"
	echo "== $name"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		timeout 300 "$bin" >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test.*/\1/p' "$log" | tail -n1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test.*/\1/p' "$log" | tail -n1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failed_suites+=("$name")
		grep -E '^\[  (FAILED|ERROR) |ERROR: AddressSanitizer|runtime error|Failure!' "$log" | head -n 20
		echo "   (full log: $log, exit $rc)"
	fi
	echo "   $p passed, $f failed"
}

# Integration scripts print TAP lines: "ok N - what" / "not ok N - what".
run_tap() {
	local script=$1 name log rc p f
	name=$(basename "$script" .sh)
	log="$logdir/$name.log"
	echo "== $name"
	timeout 600 bash "$script" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "   suite exited $rc without reporting a failure"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failed_suites+=("$name")
		grep -E '^not ok |^# ' "$log" | head -n 30
		echo "   (full log: $log, exit $rc)"
	fi
	echo "   $p passed, $f failed"
}

for t in build/tests/unit/*/test_* build/tests/bpf/test_*; do
	[ -x "$t" ] && run_cmocka "$t"
done
for t in tests/integration/*.sh; do
	[ -f "$t" ] && run_tap "$t"
done

if [ ${#failed_suites[@]} -gt 0 ]; then
	echo "failing suites: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
