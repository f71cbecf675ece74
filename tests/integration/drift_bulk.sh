#!/usr/bin/env bash
# Integration: drift in a 1M-entry blocklist map. The real agent in the
# namespace lab with 1M IPv4 /32s on its blocklist; then entries are
# deleted, changed and added with bpftool, one at a time at random places
# in the map. Each must be repaired within BOUND_MS (1.5 s by default; the
# issue's 1 s is what the drift watch gives when it sees the write: it
# reports each bpftool write as it happens, 12-392 ms measured here; a write
# it misses waits for the whole reads, 1.4-4.3 s). The map must end equal
# to what the agent wrote, and the API must keep answering meanwhile (the
# main loop is not held). Prints the idle daemon's CPU with the 1M entries
# (from /proc/PID/stat) and the longest API stall. Then batch deletes and
# updates of BATCH_N entries each by a process of its own (dw_batch.c: no
# bpftool), each repaired within BOUND_MS with the keys the watch reports.
# The rounds run back to back: the flapping guard counts per entry. TAP.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

lab_init dbulk
trap 'lab_cleanup' EXIT
PINS="$LAB_BPFFS/ztagent"
M=${DRIFT_BULK_N:-1000000}
ROUNDS=${DRIFT_BULK_ROUNDS:-3}
BOUND_MS=${DRIFT_BULK_BOUND_MS:-1500}

LAB_DB_URL=
LAB_BLOCKLIST_MAX=2097152
lab_write_config
if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"

python3 - "$LAB_DIR/1m.txt" "$M" <<'PY'
import sys
path, n, base = sys.argv[1], int(sys.argv[2]), 10 << 24
with open(path, "w") as f:
    for a in range(base, base + n):
        f.write("%d.%d.%d.%d\n" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255))
PY
out=$(ztctl block import "$LAB_DIR/1m.txt" 2>&1)
check "$M entries imported ($out)" grep -q ": $M added" <<<"$out"

# The CPU the idle agent uses over 10 s, in percent of one CPU.
cpu_pct() {
	local a b hz
	hz=$(getconf CLK_TCK)
	a=$(awk '{print $14 + $15}' "/proc/$LAB_AGENT_PID/stat")
	sleep 10
	b=$(awk '{print $14 + $15}' "/proc/$LAB_AGENT_PID/stat")
	echo $(((b - a) * 100 / hz / 10))
}
sleep 2 # the import's own work settles
echo "# idle agent with $M blocklist entries: $(cpu_pct)% of a CPU (10 s)"


n_repaired() { grep -c "event=drift_repaired kind=blocklist " "$LAB_LOG"; }
TIMES=()
# repaired WHAT CMD...: the injection, then a blocklist repair within BOUND_MS.
repaired() {
	local what=$1 n0 t0 t
	shift
	n0=$(n_repaired)
	"$@" >/dev/null || return 1
	t0=$(date +%s%N)
	while :; do
		if [ "$(n_repaired)" -gt "$n0" ]; then
			t=$((($(date +%s%N) - t0) / 1000000))
			TIMES+=("$what:$t")
			echo "# $what: repaired after ${t} ms"
			[ $t -le "$BOUND_MS" ]
			return
		fi
		if [ $(($(date +%s%N) - t0)) -gt $((BOUND_MS * 2000000)) ]; then
			echo "# $what: not repaired within $((BOUND_MS * 2)) ms"
			return 1
		fi
		sleep 0.01
	done
}
keyhex() { # an int address -> the map key's hex (prefixlen 32, then the address)
	printf '20 00 00 00 %02x %02x %02x %02x' $(($1 >> 24)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255))
}
valhex() { # KEYHEX: the entry's value as hex bytes, "" when absent
	bpftool -j map lookup pinned "$PINS/blocklist_v4" key hex $1 2>/dev/null |
		python3 -c 'import json,sys; print(" ".join(b[2:] for b in json.load(sys.stdin)["value"]))' 2>/dev/null
}
expires_of() { # VALHEX: its first 8 bytes (expires_ns, little-endian) as hex
	cut -d' ' -f1-8 <<<"$1"
}

lab_api_probe "$LAB_DIR/stop" >"$LAB_DIR/probe.out" 2>&1 &
probe_pid=$!
LAB_PIDS+=("$probe_pid")
for r in $(seq 1 "$ROUNDS"); do
	# Back to back: the flapping guard counts repairs per entry, and every
	# write here is to a different entry (the agent must not back off).
	a=$(((10 << 24) + RANDOM * 30 % M))
	k=$(keyhex $a)
	v0=$(valhex "$k")
	check "round $r: 10.x entry $a is in the map" test -n "$v0"
	check "round $r: entry deleted with bpftool: repaired within $BOUND_MS ms" \
		repaired delete bpftool map delete pinned "$PINS/blocklist_v4" key hex $k
	check "round $r: the deleted entry is back" test -n "$(valhex "$k")"

	a=$(((10 << 24) + (RANDOM * 30 + 7) % M))
	k=$(keyhex $a)
	v0=$(valhex "$k")
	nv="ff ff ff ff 00 00 00 00 $(cut -d' ' -f9- <<<"$v0")"
	check "round $r: entry changed with bpftool (expires_ns): repaired within $BOUND_MS ms" \
		repaired change bpftool map update pinned "$PINS/blocklist_v4" key hex $k value hex $nv
	check "round $r: the changed entry has its expiry back" \
		test "$(expires_of "$(valhex "$k")")" = "$(expires_of "$v0")"

	a=$(((11 << 24) + RANDOM))
	k=$(keyhex $a)
	check "round $r: entry added with bpftool: repaired within $BOUND_MS ms" \
		repaired add bpftool map update pinned "$PINS/blocklist_v4" key hex $k value hex $v0
	check "round $r: the added entry is gone" test -z "$(valhex "$k")"
done

# --- batch writes by another process (no bpftool: it has no batch verbs) ---
# The watch reports a batch's keys (up to 256 a call), so each is compared
# and repaired at once instead of waiting for a whole read of the 1M map.
DWB=$LAB_DIR/dw_batch
cc -O2 -Wall -Werror -Iinclude -o "$DWB" tests/integration/dw_batch.c -lbpf
check "dw_batch builds" test -x "$DWB"
BATCH_N=${DRIFT_BULK_BATCH_N:-200}
n_batch_ok() { # the sampled keys (BATCH_K) present with their expiry (BATCH_V0)
	local i=0 k
	for k in "${BATCH_K[@]}"; do
		[ "$(expires_of "$(valhex "$k")")" = "${BATCH_V0[$i]}" ] || return 1
		i=$((i + 1))
	done
}
# batch_repaired WHAT CMD...: N repairs logged within BOUND_MS of the call's return.
batch_repaired() {
	local what=$1 n0 t0 t
	shift
	n0=$(n_repaired)
	"$@" || return 1
	t0=$(date +%s%N)
	while :; do
		if [ "$(n_repaired)" -ge $((n0 + BATCH_N)) ]; then
			t=$((($(date +%s%N) - t0) / 1000000))
			TIMES+=("$what:$t")
			echo "# $what: $BATCH_N entries repaired after ${t} ms"
			[ $t -le "$BOUND_MS" ]
			return
		fi
		if [ $(($(date +%s%N) - t0)) -gt $((BOUND_MS * 4000000)) ]; then
			echo "# $what: $(($(n_repaired) - n0)) of $BATCH_N repaired within $((BOUND_MS * 4)) ms"
			return 1
		fi
		sleep 0.01
	done
}
for r in 1 2; do
	first=$(((10 << 24) + 1000 + r * 100000 + RANDOM))
	BATCH_K=()
	BATCH_V0=()
	for i in 0 5 $((BATCH_N - 1)); do
		BATCH_K+=("$(keyhex $((first + i * 997)))")
		BATCH_V0+=("$(expires_of "$(valhex "${BATCH_K[-1]}")")")
	done
	check "batch $r: $BATCH_N entries deleted in one BPF_MAP_DELETE_BATCH: repaired within $BOUND_MS ms" \
		batch_repaired batch-delete "$DWB" "$PINS/blocklist_v4" delete $BATCH_N $first 997
	check "batch $r: the deleted entries are back (first, 6th, last)" n_batch_ok
	check "batch $r: $BATCH_N expiries rewritten in one BPF_MAP_UPDATE_BATCH: repaired within $BOUND_MS ms" \
		batch_repaired batch-update "$DWB" "$PINS/blocklist_v4" expire $BATCH_N $first 997
	check "batch $r: the rewritten entries have their expiry back (first, 6th, last)" n_batch_ok
done
check "the batch repairs name the writer (dw_batch, from the watch's keys)" \
	test "$(grep -c 'event=drift_repaired kind=blocklist .*written by dw_batch (pid' "$LAB_LOG")" -ge $((4 * BATCH_N))
check "no drift_flapping: every write was to another entry" eval '! grep -q event=drift_flapping "$LAB_LOG"'

touch "$LAB_DIR/stop"
wait "$probe_pid"
echo "# API while the drift was repaired: $(cat "$LAB_DIR/probe.out")"
echo "# repair times (ms): ${TIMES[*]}"
check "the map holds $M entries, as the agent wrote" \
	test "$("$DWB" "$PINS/blocklist_v4" count)" = "$M"
grep -E 'drift_bl|drift_scan|drift_watch' "$LAB_LOG" | tail -5 | sed 's/^/# /'
# --- a runaway writer: thousands of different entries within 10 s ---
# Past the per-kind ceiling (2000 repairs of one kind in 10 s) the whole
# kind backs off (5 s) with an alert, then repairs resume. (What was
# deleted meanwhile is left to the whole reads, at most 8192 look-ups
# each: slow at 1M, so this round runs last.)
RUN_N=256
first=$(((10 << 24) + 500000))
for i in $(seq 0 8); do
	"$DWB" "$PINS/blocklist_v4" delete $RUN_N $((first + i * RUN_N)) 1 || break
done
kind_flap() {
	local i
	for i in $(seq 1 50); do
		grep -q 'event=drift_flapping kind=blocklist scope=kind' "$LAB_LOG" && return 0
		sleep 0.1
	done
	return 1
}
check "9 batches of $RUN_N different entries: drift_flapping scope=kind (the per-kind ceiling)" kind_flap
sleep 5.5
a=$(((10 << 24) + 900000 + RANDOM))
check "after the kind's back-off: an entry deleted with bpftool is repaired within $BOUND_MS ms" \
	repaired resume bpftool map delete pinned "$PINS/blocklist_v4" key hex $(keyhex $a)
check "the agent is still running" kill -0 "$LAB_AGENT_PID"
echo "1..$TAP_N"
