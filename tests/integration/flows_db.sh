#!/usr/bin/env bash
# Integration: flow records, the audit trail and metrics with the real
# agent and a real PostgreSQL (its own initdb in a temporary directory).
# K real TCP connections between pod namespaces give exactly K rows whose
# byte counts match what the endpoints' own IP counters say they sent and
# received; the database stopped mid-run and restarted loses and duplicates
# nothing; the agent killed with SIGKILL loses nothing it had spooled;
# hostile input is refused or stored safely; the audit chain verifies and
# shows tampering; Prometheus scrapes the agent. Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

lab_init fdb
# Both cleanups on every exit: lab_cleanup ends with exit.
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts (initdb in a temporary directory)"
	exit 1
fi
tap_ok "PostgreSQL starts (initdb in a temporary directory)"
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

POL="$LAB_DIR/policies"
mkdir -p "$POL"
FE=198.18.2.10
BE=198.18.2.20
lab_pod frontend $FE
lab_pod backend $BE
METRICS_PORT=$((20000 + RANDOM % 20000))
LAB_DB_URL=$DB
LAB_METRICS="127.0.0.1:$METRICS_PORT"
lab_write_config
cat >>"$LAB_CONF" <<EOF
flows:
  active_timeout: 60s
EOF

# --- migrations ---
out=$("$ZTAGENT" --config "$LAB_CONF" --migrate-only 2>&1)
rc=$?
echo "# $out"
check "ztagent --migrate-only applies the migrations" test $rc -eq 0
out=$("$ZTAGENT" --config "$LAB_CONF" --migrate-only 2>&1)
check "a second --migrate-only applies nothing (idempotent)" grep -q "^database: 0 migration" <<<"$out"
coltype() { q "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = 'network_flows'::regclass AND a.attname = '$1' AND NOT a.attisdropped"; }
bad_cols=
for ct in id:uuid source_ip:inet dest_ip:inet source_port:integer dest_port:integer \
	protocol:smallint bytes_sent:bigint bytes_received:bigint packet_count:integer \
	duration_ms:integer "flags:text[]" "start_time:timestamp with time zone" \
	"end_time:timestamp with time zone" anomaly_score:real "threat_type:character varying(50)" \
	blocked:boolean "created_at:timestamp with time zone" protocol_name:text; do
	c=${ct%%:*}
	t=${ct#*:}
	got=$(coltype "$c")
	[ "$got" = "$t" ] || bad_cols="$bad_cols $c=$got(want $t)"
done
[ -n "$bad_cols" ] && echo "# columns:$bad_cols"
check "network_flows has every column of the specification, typed as it says" test -z "$bad_cols"
check "network_flows is range-partitioned on start_time" \
	test "$(q "SELECT pg_get_partkeydef('network_flows'::regclass)")" = "RANGE (start_time)"
check "its primary key is (id, start_time)" \
	test "$(q "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'network_flows'::regclass AND contype = 'p'")" = "PRIMARY KEY (id, start_time)"
check "partitions exist ahead (this month and 2 more)" \
	test "$(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'network_flows'::regclass")" -ge 3
for t in alerts blocks audit_log schema_migrations; do
	check "table $t exists" test "$(q "SELECT to_regclass('$t') IS NOT NULL")" = t
done

# --- the agent, two pods, one policy ---
cat >"$POL/10-shop.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{protocol: TCP, port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: backend}}}]
EOF
if ! lab_agent_start; then
	tap_fail "ztagent starts with database.url"
	exit 1
fi
tap_ok "ztagent starts with database.url"
check "endpoint add frontend" ztctl endpoint add --ifname v-frontend --ip $FE --labels app=frontend \
	--namespace shop --name frontend
check "endpoint add backend" ztctl endpoint add --ifname v-backend --ip $BE --labels app=backend \
	--namespace shop --name backend

# A server in backend: reads what the client sends until EOF, answers with
# as many bytes as the client's first line asks for, closes.
cat >"$LAB_DIR/server.py" <<'EOF'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
def serve(c):
    with c:
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
        n = int(data.split(b"\n", 1)[0] or b"0")
        c.sendall(b"r" * n)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
# A client: COUNT connections to HOST:PORT, connection i sends 1000*i+17
# bytes and asks for 700*i+5 back; prints "ok N" when all completed.
cat >"$LAB_DIR/client.py" <<'EOF'
import socket, sys
host, port, count, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
done = 0
for i in range(base, base + count):
    c = socket.create_connection((host, port), timeout=5)
    want = 700 * i + 5
    msg = (str(want) + "\n").encode()
    c.sendall(msg + b"x" * (1000 * i + 17 - len(msg)))
    c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    c.close()
    if got == want:
        done += 1
print("ok", done)
EOF
lab_bg_in "${LAB_ID}-backend" python3 "$LAB_DIR/server.py" $BE 8080
sleep 0.3

# The frontend namespace's own IP counters (IpExt InOctets/OutOctets).
ipext() { # NAME FIELD
	in_pod "$1" awk -v f="$2" '/^IpExt:/ { if (!h) { for (i = 1; i <= NF; i++) idx[$i] = i; h = 1 } else print $idx[f] }' /proc/net/netstat
}
rows() { # WHERE-clause: prints the count of matching flow rows
	q "SELECT count(*) FROM network_flows WHERE flow_kind = 'flow' AND $1"
}
wait_rows() { # N WHERE [SECONDS]: waits until exactly N rows match
	local n=$1 where=$2 t=${3:-10}
	for _ in $(seq 1 $((t * 10))); do
		[ "$(rows "$where")" -ge "$n" ] && break
		sleep 0.1
	done
	[ "$(rows "$where")" -eq "$n" ]
}
FEBE="source_ip = '$FE' AND dest_ip = '$BE' AND dest_port = 8080"

K=20
out0=$(ipext frontend OutOctets)
in0=$(ipext frontend InOctets)
t0=$(date +%s%N)
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $K 1)
check "$K connections frontend -> backend:8080 complete" test "$res" = "ok $K"
out1=$(ipext frontend OutOctets)
in1=$(ipext frontend InOctets)
check "exactly $K rows arrive" wait_rows $K "$FEBE" 10
t1=$(date +%s%N)
echo "# $K rows in the database $(((t1 - t0) / 1000000)) ms after the first connection started"
echo "# flow end (last packet) to row in the database: $(q "SELECT 'median ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - end_time))::numeric, 3) || ' s, max ' || round(max(extract(epoch FROM created_at - end_time))::numeric, 3) || ' s' FROM network_flows WHERE flow_kind = 'flow' AND $FEBE")"
sums=$(q "SELECT sum(bytes_sent), sum(bytes_received) FROM network_flows WHERE flow_kind = 'flow' AND $FEBE" | tr '|' ' ')
echo "# rows: sent+received = $sums; frontend's IP counters: out $((out1 - out0)) in $((in1 - in0))"
check "bytes_sent of the $K rows = what frontend's IP stack sent" test "${sums% *}" = "$((out1 - out0))"
check "bytes_received of the $K rows = what frontend's IP stack received" test "${sums#* }" = "$((in1 - in0))"
check "each row's packet_count = packets_sent + packets_received > 0" \
	test "$(rows "$FEBE AND (packet_count <> packets_sent + packets_received OR packets_sent = 0 OR packets_received = 0)")" = 0
check "rows carry SYN and FIN in flags, verdict allowed, not blocked" \
	test "$(rows "$FEBE AND 'SYN' = ANY(flags) AND 'FIN' = ANY(flags) AND verdict = 'allowed' AND NOT blocked")" = $K
check "rows name both workloads, identities, node, interface and direction" \
	test "$(rows "$FEBE AND source_workload = 'shop/frontend' AND dest_workload = 'shop/backend' AND source_identity IS NOT NULL AND dest_identity IS NOT NULL AND node = 'lab-node' AND interface = 'v-frontend' AND direction = 'egress'")" = $K
check "rows name the deciding policy" \
	test "$(rows "$FEBE AND policy LIKE 'NetworkPolicy shop/frontend spec.egress[0]%'")" = $K
check "start <= end, duration_ms = end - start, protocol 6 (tcp)" \
	test "$(rows "$FEBE AND start_time <= end_time AND duration_ms = floor(extract(epoch FROM end_time - start_time) * 1000) AND protocol = 6 AND protocol_name = 'tcp'")" = $K
check "ids are UUIDv7 (version 7)" \
	test "$(rows "$FEBE AND substr(id::text, 15, 1) = '7'")" = $K
# Larger payloads: bytes_sent of connection i is its 1000*i+17 payload plus headers.
check "a bigger connection has more bytes_sent (per-row counts are per connection)" \
	test "$(q "SELECT count(DISTINCT bytes_sent) FROM network_flows WHERE flow_kind = 'flow' AND $FEBE")" = $K

# A denied flow is on record too, with its reason.
in_pod backend nc -z -w1 $FE 80 >/dev/null 2>&1
check "a denied connection backend -> frontend:80 gets a row, blocked, with its reason" \
	wait_rows 1 "source_ip = '$BE' AND dest_ip = '$FE' AND dest_port = 80 AND verdict = 'denied' AND blocked AND drop_reason IS NOT NULL" 15

# --- the database goes away mid-run ---
M=15
pg_down
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $M 101)
check "$M more connections while PostgreSQL is down" test "$res" = "ok $M"
# Segments waiting for replay (not the write-ahead copies of records being written).
spooled() {
	ztctl -o json status | python3 -c 'import json,sys; d=json.load(sys.stdin)["database"]; sys.exit(0 if d["spool_segments"] > 0 and d["queue"] == 0 else 1)'
}
for _ in $(seq 1 100); do spooled && break; sleep 0.1; done
check "the records go to the spool while the database is down" spooled
pg_up
check "after the restart all $((K + M)) rows are there, none twice" wait_rows $((K + M)) "$FEBE" 20
check "no duplicate ids" test "$(q "SELECT count(*) - count(DISTINCT id) FROM network_flows")" = 0

# --- a quick server restart while the agent idles: stale connections ---
M3=5
n0=$(wc -l <"$LAB_LOG")
pg_down
pg_up
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $M3 151)
check "$M3 connections after a quick server restart" test "$res" = "ok $M3"
check "their rows arrive ($((K + M + M3)) in all)" wait_rows $((K + M + M3)) "$FEBE" 20
nothing_spooled() {
	ztctl -o json status | python3 -c 'import json,sys; d=json.load(sys.stdin)["database"]; sys.exit(0 if d["spool_segments"] == 0 else 1)' &&
		! tail -n +$((n0 + 1)) "$LAB_LOG" | grep -q dbw_write_failed
}
check "... on new connections: nothing spooled, no write failure logged" nothing_spooled

# --- SIGKILL with records in the spool ---
M2=10
pg_down
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $M2 201)
check "$M2 more connections while PostgreSQL is down" test "$res" = "ok $M2"
for _ in $(seq 1 100); do spooled && break; sleep 0.1; done
check "they are spooled" spooled
kill -KILL "$LAB_AGENT_PID"
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=
check "spool segments survive SIGKILL on disk" test -n "$(ls "$LAB_DIR/spool"/seg-*.zsp 2>/dev/null)"
# Records in the journal when the agent died, among them two the server
# refuses in part or whole: replayed at start as one batch, the refused one
# is found row by row and the others are written.
python3 - "$LAB_DIR/state/audit/audit.journal" <<'PYREC'
import struct, sys, time, uuid, zlib

def rec(kind, subject, detail):
    body = b"".join(struct.pack("<I", len(f)) + f for f in
                    (kind.encode(), b"it", subject.encode(), detail.encode()))
    ts = struct.pack("<Q", int(time.time() * 1e6))
    return struct.pack("<II", 16 + len(body), zlib.crc32(ts + body)) + ts + body

us = int(time.time() * 1e6)
bad_alert = ('{"verdict":"denied","src":"not-an-address","dst":"198.18.1.2","dport":1,'
             '"protocol":"TCP","event_id":"%s","event_unix_us":%d}' % (uuid.uuid4(), us))
with open(sys.argv[1], "ab") as f:
    f.write(rec("it.replay", "first", '{"n":1}'))
    f.write(rec("it.replay", "refused", '{"n": not json'))
    f.write(rec("policy.violation", "bad alert", bad_alert))
    f.write(rec("it.replay", "last", '{"n":3}'))
PYREC
pg_up
lab_agent_start
check "ztagent restarts after SIGKILL" ztctl status
check "after the restart all $((K + M + M3 + M2)) rows are there, none twice" wait_rows $((K + M + M3 + M2)) "$FEBE" 20
check "still no duplicate ids" test "$(q "SELECT count(*) - count(DISTINCT id) FROM network_flows")" = 0
for _ in $(seq 1 100); do
	[ "$(q "SELECT count(*) FROM audit_log WHERE actor = 'it'")" -ge 3 ] && break
	sleep 0.1
done
check "the records around a refused one are written, in order" \
	test "$(q "SELECT string_agg(subject, ',' ORDER BY seq) FROM audit_log WHERE actor = 'it'")" = "first,bad alert,last"
check "the refused record is logged with its content" \
	grep -q 'audit_row_refused.*kind=it.replay.*subject=refused' "$LAB_LOG"
check "a violation whose alert row is refused keeps its audit row, and says so" \
	grep -q 'audit_side_row_refused.*kind=policy.violation.*subject="bad alert"' "$LAB_LOG"

# --- XDP drops: a flood becomes a handful of rows ---
# Packets the XDP guard dropped as blocklisted, from its per-CPU counters.
blocklist_drops() {
	ztctl -o json status | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(c["packets"] for c in d["counters"] if c["action"]=="drop" and c["reason"]=="blocklist"))' 2>/dev/null || echo 0
}
ztctl block add $LAB_EXT_IP --kind scan --reason "it flood" >/dev/null
drops0=$(blocklist_drops)
in_ext ping -q -n -i 0.002 -c 2000 -W 1 -I $LAB_EXT_IP $LAB_NODE_IP >/dev/null 2>&1
drops1=$(blocklist_drops)
AGG="flow_kind = 'xdp_drop_aggregate' AND source_ip = '$LAB_EXT_IP'"
# Intervals are 10 s: the flood's drops are in the database within about 12 s.
for _ in $(seq 1 250); do
	[ "$(q "SELECT coalesce(sum(aggregate_count), 0) * 100 FROM network_flows WHERE $AGG")" -ge "$(((drops1 - drops0) * 95))" ] && break
	sleep 0.1
done
agg=$(q "SELECT count(*), coalesce(sum(aggregate_count), 0) FROM network_flows WHERE $AGG" | tr '|' ' ')
echo "# $((drops1 - drops0)) ICMP packets dropped by the XDP guard; rows and drops recorded: $agg"
check "2000 dropped packets become at most 3 rows" test "${agg% *}" -ge 1 -a "${agg% *}" -le 3
check "the rows count the drops (at least 95% of them; the rest wait for the next event)" \
	test "$((${agg#* } * 100))" -ge "$(((drops1 - drops0) * 95))" -a "${agg#* }" -le "$((drops1 - drops0))"
check "the rows say blocklist, the block's kind, icmp (1, ports 0), dropped" \
	test "$(q "SELECT count(*) FROM network_flows WHERE $AGG AND drop_reason = 'blocklist:scan' AND threat_type = 'scan' AND protocol = 1 AND protocol_name = 'icmp' AND source_port = 0 AND dest_port = 0 AND verdict = 'dropped' AND blocked AND interface = 'uplink0'")" = "${agg% *}"
# Stopped within an interval: its rows go through the aggregator's worker
# at the stop (SIGTERM), not lost with the process.
sum0=$(q "SELECT coalesce(sum(aggregate_count), 0) FROM network_flows WHERE $AGG")
drops2=$(blocklist_drops)
in_ext ping -q -n -i 0.002 -c 500 -W 1 -I $LAB_EXT_IP $LAB_NODE_IP >/dev/null 2>&1
drops3=$(blocklist_drops)
lab_agent_stop
lab_agent_start
for _ in $(seq 1 100); do
	[ "$((($(q "SELECT coalesce(sum(aggregate_count), 0) FROM network_flows WHERE $AGG") - sum0) * 100))" -ge "$(((drops3 - drops2) * 95))" ] && break
	sleep 0.1
done
sum1=$(q "SELECT coalesce(sum(aggregate_count), 0) FROM network_flows WHERE $AGG")
echo "# stopped within the interval: $((drops3 - drops2)) drops, $((sum1 - sum0)) recorded at the stop"
check "an agent stopped within the interval records its drops at the stop (at least 95%)" \
	test "$(((sum1 - sum0) * 100))" -ge "$(((drops3 - drops2) * 95))"
ztctl block del $LAB_EXT_IP >/dev/null

# --- hostile input ---
bad=$(ztctl endpoint add --ifname v-backend --ip 198.18.2.99 --labels $'app=x"y\nz' --namespace shop --name evil 2>&1)
check "a label value with a quote and a newline is refused with a clear message" \
	grep -q "label" <<<"$bad"
bad=$(ztctl endpoint add --ifname v-backend --ip 198.18.2.99 --labels "app=$(head -c 300 /dev/zero | tr '\0' a)" --namespace shop 2>&1)
check "a 300-byte label value is refused" grep -q "label" <<<"$bad"
bad=$(ztctl endpoint add --ifname v-backend --ip 198.18.2.99 --labels $'app=\xff\xfe' --namespace shop 2>&1)
check "a non-UTF-8 label value is refused" grep -q "label" <<<"$bad"
# Text that does reach the database unvalidated: a policy file's name.
HOSTILE=$'we"ird\'; DROP TABLE network_flows;--\xff.yaml'
mv "$POL/10-shop.yaml" "$POL/$HOSTILE"
sleep 0.5
in_pod backend nc -z -w1 $FE 81 >/dev/null 2>&1
check "a flow decided under a hostile policy file name is stored" \
	wait_rows 1 "source_ip = '$BE' AND dest_ip = '$FE' AND dest_port = 81" 15
check "network_flows is intact" test "$(q "SELECT to_regclass('network_flows') IS NOT NULL")" = t

# --- the audit trail ---
check "the audit trail has the configuration, policy and endpoint events" \
	test "$(q "SELECT count(DISTINCT kind) FROM audit_log WHERE kind IN ('config.load', 'policy.apply', 'endpoint.add')")" = 3
check "every policy violation is in the audit trail" \
	test "$(q "SELECT count(*) FROM audit_log WHERE kind = 'policy.violation' AND subject LIKE '%$BE:%-> $FE:80'")" -ge 1
ztctl block add 198.18.0.77 --reason "it test" >/dev/null
ztctl block del 198.18.0.77 >/dev/null
for _ in $(seq 1 50); do
	[ "$(q "SELECT count(*) FROM audit_log WHERE kind IN ('block.add', 'block.del') AND subject = '198.18.0.77/32'")" = 2 ] && break
	sleep 0.1
done
check "block and unblock are in the audit trail" \
	test "$(q "SELECT count(*) FROM audit_log WHERE kind IN ('block.add', 'block.del') AND subject = '198.18.0.77/32'")" = 2
check "the denial is an alert (policy-deny, warning, with its 5-tuple)" \
	test "$(q "SELECT count(*) FROM alerts WHERE kind = 'policy-deny' AND severity = 'warning' AND source_ip = '$BE' AND dest_ip = '$FE' AND dest_port = 80 AND protocol = 'tcp' AND node = 'lab-node'")" -ge 1
check "block and unblock are rows of blocks" \
	test "$(q "SELECT string_agg(action, ',' ORDER BY at) FROM blocks WHERE cidr = '198.18.0.77/32'")" = "block,unblock"
# --- a denial storm: every violation on record, in batched transactions ---
NS=1000
t0=$(date +%s%N)
in_pod backend python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in range(31000, 31000 + int(sys.argv[2])):
    s.sendto(b"x", (sys.argv[1], p))' $FE $NS
STORM="kind = 'policy-deny' AND source_ip = '$BE' AND dest_ip = '$FE' AND protocol = 'udp' AND dest_port BETWEEN 31000 AND $((31000 + NS - 1))"
for _ in $(seq 1 300); do
	[ "$(q "SELECT count(*) FROM alerts WHERE $STORM")" -ge $NS ] && break
	sleep 0.1
done
echo "# $NS denied UDP flows: all alerts and audit rows in the database after $((($(date +%s%N) - t0) / 1000000)) ms"
check "$NS denials in a burst: $NS alerts, none twice" \
	test "$(q "SELECT count(*), count(DISTINCT dest_port) FROM alerts WHERE $STORM")" = "$NS|$NS"
check "... and $NS policy.violation rows in the audit trail" \
	test "$(q "SELECT count(*) FROM audit_log WHERE kind = 'policy.violation' AND subject LIKE 'UDP $BE:% -> $FE:31%'")" = $NS

check "policy.apply rows carry the content hash" \
	test "$(q "SELECT count(*) FROM audit_log WHERE kind = 'policy.apply' AND length(detail->>'sha256') = 64")" -ge 1
out=$(ztctl audit verify 2>&1)
echo "# $out"
check "ztctl audit verify: chain intact (database.url from the agent)" grep -q "chain intact" <<<"$out"
mid=$(q "SELECT seq FROM audit_log ORDER BY seq LIMIT 1 OFFSET 2")
q "SET session_replication_role = replica; UPDATE audit_log SET subject = subject || ' (edited)' WHERE seq = $mid" >/dev/null
out=$(ztctl audit verify --db "$DB" 2>&1)
rc=$?
echo "# $out"
check "a changed row is found and named (row $mid), exit 1" \
	test $rc -eq 1 -a -n "$(grep "row $mid changed" <<<"$out")"

# --- metrics, scraped by a real Prometheus inside the node namespace ---
mt=$(in_node curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null ||
	in_node python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/metrics').read().decode())")
lint=$(promtool check metrics <<<"$mt" 2>&1)
rc=$?
[ -n "$lint" ] && sed 's/^/# promtool: /' <<<"$lint"
check "the agent's /metrics passes promtool check metrics" test $rc -eq 0
written=$(sed -n 's/^ztagent_db_flow_rows_written_total \([0-9]*\)$/\1/p' <<<"$mt")
check "ztagent_db_flow_rows_written_total counts rows this process wrote (${written:-none})" \
	test "${written:-0}" -ge 1
check "ztagent_tc_packets_total and ztagent_tc_flow_verdicts_total are exposed" \
	grep -q '^ztagent_tc_flow_verdicts_total{verdict="denied"} [1-9]' <<<"$mt"
check "tc packets and bytes by verdict: established traffic counted in both" \
	bash -c 'grep -q "^ztagent_tc_packets_total{verdict=\"allowed-established\"} [1-9]" <<<"$1" &&
		grep -q "^ztagent_tc_bytes_total{verdict=\"allowed-established\"} [1-9]" <<<"$1"' _ "$mt"
check "the audit trail's events are counted: written > 0, none dropped, pending exposed" \
	bash -c 'grep -q "^ztagent_audit_events_written_total [1-9]" <<<"$1" &&
		grep -q "^ztagent_audit_events_dropped_total 0$" <<<"$1" &&
		grep -q "^ztagent_audit_events_pending [0-9]" <<<"$1"' _ "$mt"
PROM_PORT=$((METRICS_PORT + 1))
cat >"$LAB_DIR/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ztagent
    static_configs: [{targets: ['127.0.0.1:$METRICS_PORT']}]
EOF
lab_bg_in "$LAB_NODE" prometheus --config.file="$LAB_DIR/prometheus.yml" \
	--storage.tsdb.path="$LAB_DIR/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT" \
	--log.level=warn
promq() {
	in_node python3 - "http://127.0.0.1:$PROM_PORT" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    r = json.loads(urllib.request.urlopen(url, timeout=2).read().decode())["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")
PY
}
val=
for _ in $(seq 1 60); do
	val=$(promq 'ztagent_tc_flow_verdicts_total{verdict="denied"}')
	[ -n "$val" ] && break
	sleep 0.5
done
check "Prometheus scraped the agent: ztagent_tc_flow_verdicts_total{verdict=denied} = ${val:-none}" \
	test -n "$val" -a "${val:-0}" != 0
val=$(promq 'ztagent_build_info')
check "Prometheus answers ztagent_build_info = 1" test "$val" = 1
check "deploy/prometheus/ztagent-rules.yml passes promtool check rules" \
	promtool check rules "$LAB_ROOT/deploy/prometheus/ztagent-rules.yml"
# Every query of the Grafana dashboard is valid PromQL over families the agent exports.
dash_ok() {
	in_node python3 - "http://127.0.0.1:$PROM_PORT" "$LAB_ROOT/deploy/dashboards/ztagent.json" <<'PY'
import json, re, sys, urllib.parse, urllib.request
base, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
bad = []
for p in d["panels"]:
    for t in p["targets"]:
        q = t["expr"].replace("$instance", ".*")
        url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
        try:
            r = json.loads(urllib.request.urlopen(url, timeout=5).read().decode())
        except Exception as e:
            bad.append((p["title"], str(e)))
            continue
        if r.get("status") != "success" or not r["data"]["result"]:
            bad.append((p["title"], q))
for b in bad:
    print("# dashboard query without data:", b)
sys.exit(1 if bad else 0)
PY
}
# rate() needs two scrapes (1 s apart here).
for _ in $(seq 1 40); do
	[ -n "$(promq 'count(rate(ztagent_tc_packets_total[1m]))')" ] && break
	sleep 0.5
done
check "every Grafana dashboard query is valid and has data from the agent" dash_ok

echo "1..$TAP_N"
