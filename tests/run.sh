#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed".
#  - the house style: make check-format (clang-format, .clang-format)
#  - unit tests (cmocka, built with ASan/UBSan): build/tests/unit/*
#  - BPF tests (cmocka, BPF_PROG_TEST_RUN):      build/tests/bpf/*
#  - integration tests (TAP from shell):         tests/integration/*.sh
#  - fuzz corpora and regression inputs, replayed through each harness
#    (build/tests/fuzz/replay_*, ASan/UBSan): one test per corpus, one per
#    regression input (tests/fuzz/regress/<harness>/<input>)
# A suite that crashes or exits non-zero without reporting a failure counts
# as one failure, so nothing fails silently. With --tsan it runs the unit and
# BPF tests built with ThreadSanitizer (build/tests/tsan/, `make tsan`) only.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failed_suites=()
logdir=build/test-logs
mkdir -p "$logdir"

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
# A ThreadSanitizer build (--tsan) exits 66 after any report: one failure.
run_cmocka() {
	local bin=$1 name log rc p f
	name=${2:-}$(basename "$bin")
	log="$logdir/$name.log"
	echo "== $name"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
		timeout 300 "$bin" >"$log" 2>&1
	rc=$?
	# A binary may run several groups: each prints its own lines.
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test.*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		failed_suites+=("$name")
		grep -E -A 24 '^\[  (FAILED|ERROR) |ERROR: AddressSanitizer|runtime error|Failure!|WARNING: ThreadSanitizer' \
			"$log" | head -n 60
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

# A fuzz harness replays inputs; a crash or a violated property aborts it.
run_replay() {
	local name=$1 what=$2 log rc
	shift 2
	log="$logdir/fuzz-$name-$what.log"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		timeout 300 "build/tests/fuzz/replay_$name" "$@" >"$log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		return 0
	fi
	failed=$((failed + 1))
	failed_suites+=("fuzz:$name/$what")
	echo "   FAILED: $name $what (exit $rc)"
	grep -E 'property violated|ERROR: AddressSanitizer|runtime error|^replay: ' "$log" | tail -n 5
	echo "   (full log: $log)"
}

run_fuzz_replays() {
	local bin name p0 f0 r
	# Files the harnesses write; removed here, also after a crash.
	ZT_FUZZ_TMP=$(mktemp -d /dev/shm/zt-fuzz-test.XXXXXX 2>/dev/null || mktemp -d)
	export ZT_FUZZ_TMP
	for bin in build/tests/fuzz/replay_*; do
		[ -x "$bin" ] || continue
		name=${bin##*/replay_}
		echo "== fuzz $name"
		p0=$passed
		f0=$failed
		[ -d "tests/fuzz/corpus/$name" ] && run_replay "$name" corpus "tests/fuzz/corpus/$name"
		for r in "tests/fuzz/regress/$name"/*; do
			[ -f "$r" ] && run_replay "$name" "${r##*/}" "$r"
		done
		echo "   $((passed - p0)) passed, $((failed - f0)) failed"
	done
	rm -rf "$ZT_FUZZ_TMP"
	unset ZT_FUZZ_TMP
}

# The house style (.clang-format, kernel style) over every C source: one test.
run_format() {
	local log="$logdir/format.log"
	echo "== format"
	if make --no-print-directory -s check-format >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "   1 passed, 0 failed"
	else
		failed=$((failed + 1))
		failed_suites+=("format")
		grep -E 'error:' "$log" | head -n 10
		echo "   (full log: $log; make format fixes it)"
		echo "   0 passed, 1 failed"
	fi
}

if [ "${1:-}" = --tsan ]; then
	# make tsan: the unit and BPF tests built with ThreadSanitizer, nothing else.
	for t in build/tests/tsan/*/test_*; do
		[ -x "$t" ] && run_cmocka "$t" tsan-
	done
else
	run_format
	for t in build/tests/unit/*/test_* build/tests/bpf/test_*; do
		[ -x "$t" ] && run_cmocka "$t"
	done
	run_fuzz_replays
	for t in tests/integration/*.sh; do
		[ -f "$t" ] && run_tap "$t"
	done
fi

if [ ${#failed_suites[@]} -gt 0 ]; then
	echo "failing suites: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
