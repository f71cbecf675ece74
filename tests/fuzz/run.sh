#!/usr/bin/env bash
# `make fuzz`: runs each named harness (build/fuzz/fuzz_<name>) for
# FUZZ_SECONDS, one at a time (the machine is shared), starting from the
# checked-in seeds (tests/fuzz/corpus/<name>) plus what earlier runs found
# (build/fuzz/corpus/<name>, not checked in). Prints execs and coverage per
# harness; a crash leaves its input in build/fuzz/artifacts/ and makes the
# run fail. Add such an input to tests/fuzz/regress/<name>/ with the fix.
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out/artifacts" "$out/logs"
# Harnesses that need files keep them here; removed even after a crash.
ZT_FUZZ_TMP=$(mktemp -d /dev/shm/zt-fuzz-run.XXXXXX 2>/dev/null || mktemp -d)
export ZT_FUZZ_TMP
trap 'rm -rf "$ZT_FUZZ_TMP"' EXIT
crashed=()
printf '%-16s %10s %8s %8s %8s %6s %6s  %s\n' harness execs exec/s cov ft corpus rss result
for name in "$@"; do
	bin=$out/fuzz_$name
	log=$out/logs/$name.log
	mkdir -p "$out/corpus/$name"
	# Per-harness options: the API harness writes whole streams of frames.
	maxlen=4096
	case $name in api_frame | policy | config | endpoint_state) maxlen=65536 ;; esac
	ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -max_len=$maxlen \
		-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$name-" \
		"$out/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
	result=ok
	if [ "$rc" -ne 0 ]; then
		result="CRASH (exit $rc; see $log)"
		crashed+=("$name")
	fi
	printf '%-16s %10s %8s %8s %8s %6s %6s  %s\n' "$name" "${execs:-?}" "${speed:-?}" \
		"${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$result"
done
if [ ${#crashed[@]} -gt 0 ]; then
	echo "crashes in: ${crashed[*]} (inputs: $out/artifacts/)"
	exit 1
fi
