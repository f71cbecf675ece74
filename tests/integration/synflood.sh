#!/usr/bin/env bash
# Integration: a spoofed-source SYN flood against a listening pod, with the
# conntrack table holding 250k live flows. Checks the four things the flood
# used to break:
#  1. established means the handshake completed: the flood's answered SYNs
#     stay half-open (never established), a real client's connection made
#     during the flood is established;
#  2. half-open entries time out after ZT_CT_TCP_SYN_TIMEOUT_NS (10 s) and
#     are recorded when they do: the attack is in network_flows, a few
#     aggregated rows whose aggregate_count adds up to the SYNs delivered;
#     the 250k live flows are all still there (the flood did not fill the
#     table nor evict them);
#  3. the sweep costs the daemon little with the table full and idle;
#  4. ztctl status and ztctl block list answer in <= 50 ms p99 while the
#     table holds 250k entries and the flood runs.
# Traffic stays inside the lab's namespaces: the flood is sent from the
# external namespace, its sources are in 198.19.200.0/24 (routed back to
# the external namespace, which drops the SYN-ACKs), the filled flows are
# in 198.18.200.0/24. Runs in about a minute. Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

ROOT=$LAB_ROOT
WEB=198.18.3.10
FLOOD_NET=198.19.200.0/24
FLOOD_BASE=198.19.200.1
FLOOD_SRCS=16
FLOOD_PPS=${SYNFLOOD_PPS:-8000}
FLOOD_S=10
FILL_NET=198.18.200.0/24
FILL_BASE=198.18.200.1
FILL_N=250000
CT_MAX=524288
API_P99_MAX_MS=50

lab_init syn
trap 'pg_cleanup; lab_cleanup' EXIT
bail() {
	tap_fail "$*"
	exit 1
}

# --- the helper: flood sender, conntrack filler and counter ---
TOOL="$LAB_DIR/synflood_tool"
if ! lab_build_tool "$TOOL"; then
	bail "synflood_tool builds"
fi
tap_ok "synflood_tool builds with the project's flags"

pg_start || bail "PostgreSQL starts (initdb in a temporary directory)"
tap_ok "PostgreSQL starts"
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# --- the lab: one listening pod, reached from the external namespace ---
lab_pod web $WEB
ip -n "$LAB_EXT" route add 198.18.3.0/24 via "$LAB_NODE_IP"
# Answers to the spoofed sources go back out to the external namespace,
# which is not them and does not forward: they are dropped there.
ip -n "$LAB_NODE" route add "$FLOOD_NET" via "$LAB_EXT_IP"
# One SYN-ACK retransmission at most: a queued request's entry is not kept
# alive for a minute by retransmissions (conntrack counts them as traffic).
in_pod web sysctl -qw net.ipv4.tcp_synack_retries=1
in_pod web sysctl -qw net.ipv4.tcp_syncookies=1
lab_policy_open web.yaml web 198.18.0.0/15 80/TCP
LAB_DB_URL=$DB
LAB_CT_MAX=$CT_MAX
lab_write_config
lab_agent_start || bail "ztagent starts"
tap_ok "ztagent starts (conntrack_max $CT_MAX, database.url set)"
check "endpoint add web" ztctl endpoint add --ifname v-web --ip $WEB --labels app=web \
	--namespace lab --name web
CT_PIN="$LAB_BPFFS/ztagent/conntrack"
IFINDEX=$(ip -n "$LAB_NODE" -o link show v-web | awk -F': ' '{print $1}')

# A server that accepts and holds connections; a small backlog, so the
# flood soon gets SYN cookies.
cat >"$LAB_DIR/server.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 80))
s.listen(16)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
EOF
# A real client: connects, sends a line, holds the connection.
cat >"$LAB_DIR/client.py" <<'EOF'
import socket, sys, time
c = socket.create_connection((sys.argv[1], 80), timeout=10)
c.sendall(b"hello\n")
print("connected", flush=True)
time.sleep(float(sys.argv[2]))
EOF
lab_bg_in "${LAB_ID}-web" python3 "$LAB_DIR/server.py" $WEB
sleep 0.3

counts() { "$TOOL" count "$CT_PIN" "$FLOOD_NET" "$FILL_NET"; }
count_of() { counts | awk -v k="$1" '$1 == k { print $2 }'; }
status_ct_entries() {
	ztctl -o json status | python3 -c 'import json,sys
print(next(m["entries"] for m in json.load(sys.stdin)["maps"] if m["name"] == "conntrack"))'
}
# Daemon CPU time (user + system), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$LAB_AGENT_PID/stat"; }
HZ=$(getconf CLK_TCK)
# api_sample FILE SECONDS: the API calls behind `ztctl status` and `ztctl
# block list` in turn, 2 ms apart, each on its own connection, timed from connect to
# the whole answer (synflood_tool api: without ztctl's own start-up, which
# on a loaded 2-core machine is tens of ms by itself). One "op us" line per
# call; the tool fails when an answer is not ok.
api_sample() { "$TOOL" api "$LAB_SOCK" "$2" 2000 "$1"; }
p99_ms() { # FILE [OP]: the 99th percentile (of OP's calls), in ms
	awk -v op="${2:-}" 'op == "" || $1 == op { print $2 }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; printf "%.3f", v[i] / 1000 }'
}
max_ms() { awk '{ print $2 }' "$1" | sort -n | tail -n1 | awk '{ printf "%.3f", $1 / 1000 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
# ztctl itself, start-up included (reported, not checked): ms of N calls.
ztctl_ms() {
	local i t0 t1 all=""
	for i in $(seq 1 "$1"); do
		t0=$EPOCHREALTIME
		ztctl status >/dev/null 2>&1
		t1=$EPOCHREALTIME
		all="$all $(((${t1/./} - ${t0/./}) / 1000))"
	done
	echo "$all"
}

# --- a real connection, before anything else ---
lab_bg_in "$LAB_EXT" python3 "$LAB_DIR/client.py" $WEB 120
REAL1=$LAB_BG_PID
for _ in $(seq 1 50); do
	[ "$(count_of other_established)" -ge 1 ] && break
	sleep 0.1
done
check "a real client's connection (handshake completed) is established" \
	test "$(count_of other_established)" -ge 1

# --- 250k live flows in the table ---
"$TOOL" fill "$CT_PIN" "$IFINDEX" $WEB 80 $FILL_BASE $FILL_N || bail "conntrack filled"
check "conntrack holds the $FILL_N filled flows" test "$(count_of fill_total)" -eq $FILL_N
n=0
for _ in $(seq 1 50); do
	n=$(status_ct_entries)
	[ "$n" -ge $FILL_N ] && break
	sleep 0.1
done
check "ztctl status counts the $FILL_N entries ($n)" test "$n" -ge $FILL_N

# --- 3. the sweep with the table full and no traffic ---
# Its CPU time (reported; contention on a busy machine only lowers it) and
# what matters: the loop is never held for long, so a call that reads no
# map (block list) answers at once. The old sweep held it ~1 s a second.
c0=$(cpu_ticks)
sleep 3
c1=$(cpu_ticks)
idle_pct=$(((c1 - c0) * 100 / HZ / 3))
echo "# daemon CPU with $FILL_N entries and no traffic: ${idle_pct}% of a core over 3 s"
check "the sweep costs the idle daemon < 20% of a core with $FILL_N entries (${idle_pct}%)" \
	test "$idle_pct" -lt 20
api_sample "$LAB_DIR/api_idle" 2
api_idle_rc=$?
bl99=$(p99_ms "$LAB_DIR/api_idle" block.list)
echo "# API with $FILL_N entries, no flood: $(wc -l <"$LAB_DIR/api_idle") calls, p99 $(p99_ms "$LAB_DIR/api_idle") ms (block list $bl99 ms), max $(max_ms "$LAB_DIR/api_idle") ms"
idle_ok=0
[ "$api_idle_rc" -eq 0 ] && [ "$(wc -l <"$LAB_DIR/api_idle")" -ge 20 ] && le "$bl99" $API_P99_MAX_MS && idle_ok=1
check "the sweep never holds the loop: block list p99 <= ${API_P99_MAX_MS} ms with $FILL_N idle entries ($bl99 ms)" \
	test $idle_ok -eq 1
echo "# ztctl status, start-up included, no flood (ms):$(ztctl_ms 5)"

# --- the flood ---
lab_bg_in "$LAB_EXT" sh -c "exec '$TOOL' flood $WEB 80 $FLOOD_BASE $FLOOD_SRCS $FLOOD_PPS $FLOOD_S >'$LAB_DIR/flood.out'"
FLOOD_PID=$LAB_BG_PID
sleep 1
# A real client connecting while the flood runs gets through and is established.
lab_bg_in "$LAB_EXT" python3 "$LAB_DIR/client.py" $WEB 120
c0=$(cpu_ticks)
sleep 2
c1=$(cpu_ticks)
flood_pct=$(((c1 - c0) * 100 / HZ / 2))
echo "# daemon CPU during the flood (flow events, sweep, records): ${flood_pct}% of a core"
api_sample "$LAB_DIR/api_flood" 6
api_rc=$?
echo "# ztctl status, start-up included, during the flood (ms):$(ztctl_ms 5)"
mid=$(counts)
echo "$mid" | sed 's/^/# mid-flood conntrack: /'
get() { awk -v k="$1" '$1 == k { print $2 }' <<<"$mid"; }

# --- 4. API latency under flood with a full table ---
n_api=$(wc -l <"$LAB_DIR/api_flood")
p99=$(p99_ms "$LAB_DIR/api_flood")
echo "# API during the flood with $(get total) entries: $n_api calls, p99 $p99 ms, max $(max_ms "$LAB_DIR/api_flood") ms"
check "API calls all answered ok during the flood ($n_api calls)" \
	test "$n_api" -ge 20 -a "$api_rc" -eq 0
check "ztctl status / block list p99 <= ${API_P99_MAX_MS} ms during the flood (${p99} ms)" \
	le "$p99" $API_P99_MAX_MS

# --- 1. established means the handshake completed ---
check "the flood's connections are half-open in conntrack ($(get flood_half_open) entries)" \
	test "$(get flood_half_open)" -gt 1000
check "none of the flood's connections is established" test "$(get flood_established)" -eq 0
check "both real clients' connections are established" test "$(get other_established)" -ge 2

wait "$FLOOD_PID"
t_end=$SECONDS
sent=$(awk '/^sent/ { print $2 }' "$LAB_DIR/flood.out")
echo "# the flood sent ${sent:-?} spoofed SYNs in $FLOOD_S s from $FLOOD_SRCS sources"
check "the flood ran (${sent:-0} SYNs sent)" test "${sent:-0}" -gt $((FLOOD_PPS * FLOOD_S / 2))
check "the table never filled: the $FILL_N live flows are all there, none evicted" \
	test "$(count_of fill_total)" -eq $FILL_N

# --- 2. half-open entries time out and are recorded ---
left=-1
for _ in $(seq 1 250); do
	left=$(count_of flood_total)
	[ "$left" -eq 0 ] && break
	sleep 0.1
done
echo "# the flood's entries were gone $((SECONDS - t_end)) s after it stopped (half-open timeout 10 s)"
check "every half-open entry of the flood is gone within 25 s of its end ($left left)" \
	test "$left" -eq 0
FROWS="source_ip << '$FLOOD_NET'"
# The writer sends a batch at least every second: wait until the count holds still.
rows=0
flows=0
prev=-1
for _ in $(seq 1 20); do
	read -r rows flows < <(q "SELECT count(*), coalesce(sum(aggregate_count), 0) FROM network_flows WHERE $FROWS" | tr '|' ' ')
	[ "$flows" -gt 0 ] && [ "$flows" -eq "$prev" ] && break
	prev=$flows
	sleep 1.1
done
new_syn=$(ztctl -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["segmentation"]["flows_allowed"])')
echo "# network_flows: $rows rows stand for $flows flood flows; the daemon saw $new_syn new allowed flows in all"
check "the attack is in network_flows ($rows rows, $flows flows)" test "$flows" -gt 0
check "its rows are aggregated: a tenth as many rows as flows or fewer" test "$((rows * 10))" -le "$flows"
# Every flood SYN was a new tuple, so flows = SYNs that reached the pod's veth.
check "the rows account for the flood: $flows flows of ${sent:-0} SYNs sent (>= 90%, <= all)" \
	test "$((flows * 10))" -ge "$((${sent:-0} * 9))" -a "$flows" -le "${sent:-0}"
check "the rows say what happened: tcp to web:80, SYN seen, allowed, ingress on v-web" \
	test "$(q "SELECT count(*) FROM network_flows WHERE $FROWS AND NOT (protocol = 6 AND dest_ip = '$WEB' AND dest_port = 80 AND 'SYN' = ANY(flags) AND verdict = 'allowed' AND direction = 'ingress' AND interface = 'v-web')")" -eq 0
check "an aggregated row has source port 0, a per-flow one has its own" \
	test "$(q "SELECT count(*) FROM network_flows WHERE $FROWS AND ((aggregate_count > 1) = (source_port <> 0))")" -eq 0

kill "$REAL1" 2>/dev/null
echo "# ran in $SECONDS s"
echo "1..$TAP_N"
