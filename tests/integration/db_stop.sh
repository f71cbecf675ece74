#!/usr/bin/env bash
# Stopping and dying with a frozen database, with the real agent, real
# TCP flows between pod namespaces and a real PostgreSQL whose processes
# are stopped with SIGSTOP (a server that accepts nothing and answers
# nothing, as a hung host or a partition looks to the agent):
#  - SIGTERM returns within 5 s, every record of the flows seen so far is
#    in the spool, and after a restart each is a row, once;
#  - SIGKILL while records wait for the frozen server loses none: after a
#    restart the rows add up to what the pods' own IP counters say.
# The server is resumed (SIGCONT) and removed whatever happens. TAP output.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

DBTOOL=${DBTOOL:-$LAB_ROOT/build/tools/dbtool}
if [ ! -x "$DBTOOL" ]; then
	make -s --no-print-directory -C "$LAB_ROOT" build/tools/dbtool >&2 || {
		echo "not ok 1 - build dbtool"
		exit 1
	}
fi

PG_FROZEN=
pg_freeze() {
	PG_FROZEN="$PG_PID $(ps -o pid= --ppid "$PG_PID" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	kill -STOP $PG_FROZEN
}
pg_thaw() {
	# shellcheck disable=SC2086
	[ -n "$PG_FROZEN" ] && kill -CONT $PG_FROZEN 2>/dev/null
	PG_FROZEN=
}

lab_init dbst
# Resume the server before anything else stops it; lab_cleanup ends with exit.
trap 'pg_thaw; pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts (initdb in a temporary directory)"
	exit 1
fi
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

POL="$LAB_DIR/policies"
mkdir -p "$POL"
FE=198.18.2.10
BE=198.18.2.20
lab_pod frontend $FE
lab_pod backend $BE
LAB_DB_URL=$DB
lab_write_config
cat >"$POL/10-shop.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{protocol: TCP, port: 8080}]
EOF
LAB_POLICY_DEFAULT=allow
lab_write_config
if ! lab_agent_start; then
	tap_fail "ztagent starts with database.url"
	exit 1
fi
tap_ok "ztagent starts with database.url"
endpoints() {
	ztctl endpoint add --ifname v-frontend --ip $FE --labels app=frontend --namespace shop \
		--name frontend >/dev/null &&
		ztctl endpoint add --ifname v-backend --ip $BE --labels app=backend --namespace shop \
			--name backend >/dev/null
}
check "endpoints frontend and backend" endpoints

cat >"$LAB_DIR/server.py" <<'EOF'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
def serve(c):
    with c:
        while c.recv(65536):
            pass
        c.sendall(b"r" * 3000)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
# COUNT connections, connection i sending 1000*i+17 bytes; "ok N" when all completed.
cat >"$LAB_DIR/client.py" <<'EOF'
import socket, sys
host, port, count, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
done = 0
for i in range(base, base + count):
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(b"x" * (1000 * i + 17))
    c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    c.close()
    done += got == 3000
print("ok", done)
EOF
lab_bg_in "${LAB_ID}-backend" python3 "$LAB_DIR/server.py" $BE 8080
sleep 0.3

ipext() { # NAME FIELD: the pod's own IP byte counter
	in_pod "$1" awk -v f="$2" '/^IpExt:/ { if (!h) { for (i = 1; i <= NF; i++) idx[$i] = i; h = 1 } else print $idx[f] }' /proc/net/netstat
}
FEBE="flow_kind = 'flow' AND source_ip = '$FE' AND dest_ip = '$BE' AND dest_port = 8080"
rows() { q "SELECT count(*) FROM network_flows WHERE $FEBE"; }
wait_rows() { # N SECONDS: until exactly N rows
	for _ in $(seq 1 $(($2 * 10))); do
		[ "$(rows)" -ge "$1" ] && break
		sleep 0.1
	done
	[ "$(rows)" -eq "$1" ]
}
submitted() {
	ztctl -o json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["database"]["rows_submitted"])' 2>/dev/null || echo 0
}
wait_submitted() { # N: until the writer has been given at least N records
	for _ in $(seq 1 100); do
		[ "$(submitted)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
out0=$(ipext frontend OutOctets)
in0=$(ipext frontend InOctets)

K=5
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $K 1)
check "$K connections while the database answers" test "$res" = "ok $K"
check "their $K rows arrive" wait_rows $K 15

# --- SIGTERM while the database is frozen ---
M=20
s0=$(submitted)
pg_freeze
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $M 101)
check "$M connections while PostgreSQL is frozen (SIGSTOP)" test "$res" = "ok $M"
check "the agent has their records (rows_submitted grew by $M or more)" wait_submitted $((s0 + M))
# flush_ms (1 s) passes: a lane sends the batch and waits on the frozen server.
sleep 1.5
t0=$(date +%s%N)
kill -TERM "$LAB_AGENT_PID"
for _ in $(seq 1 300); do
	kill -0 "$LAB_AGENT_PID" 2>/dev/null || break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
if kill -0 "$LAB_AGENT_PID" 2>/dev/null; then
	tap_fail "SIGTERM with the database frozen: the agent exits within 5 s (still running after $ms ms)"
	kill -KILL "$LAB_AGENT_PID"
else
	check "SIGTERM with the database frozen: the agent exits within 5 s ($ms ms)" test "$ms" -lt 5000
fi
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=
echo "# SIGTERM to exit with PostgreSQL frozen: $ms ms"
check "the stop says it gave up on the database (dbw_stop_abandoned)" \
	grep -q 'event=dbw_stop_abandoned' "$LAB_LOG"
"$DBTOOL" spool-ids "$LAB_DIR/spool" >"$LAB_DIR/spooled.txt"
nsp=$(grep -c " $FE $BE:8080 6\$" "$LAB_DIR/spooled.txt")
check "all $M records of those flows are in the spool ($nsp), each once" \
	test "$nsp" = "$M" -a "$(cut -d' ' -f1 "$LAB_DIR/spooled.txt" | sort | uniq -d | wc -l)" = 0
pg_thaw

if ! lab_agent_start; then
	tap_fail "ztagent starts again"
	exit 1
fi
tap_ok "ztagent starts again"
check "after the restart all $((K + M)) rows are there" wait_rows $((K + M)) 20
check "no id twice" test "$(q "SELECT count(*) - count(DISTINCT id) FROM network_flows")" = 0

# --- SIGKILL while records wait for the frozen database ---
M2=15
s0=$(submitted)
pg_freeze
res=$(in_pod frontend python3 "$LAB_DIR/client.py" $BE 8080 $M2 201)
check "$M2 more connections while PostgreSQL is frozen" test "$res" = "ok $M2"
check "the agent has their records (rows_submitted grew by $M2 or more)" wait_submitted $((s0 + M2))
sleep 1.5
kill -KILL "$LAB_AGENT_PID"
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=
pg_thaw
out1=$(ipext frontend OutOctets)
in1=$(ipext frontend InOctets)
if ! lab_agent_start; then
	tap_fail "ztagent starts after SIGKILL"
	exit 1
fi
tap_ok "ztagent starts after SIGKILL"
check "after SIGKILL and restart all $((K + M + M2)) rows are there (none lost)" \
	wait_rows $((K + M + M2)) 20
check "no id twice" test "$(q "SELECT count(*) - count(DISTINCT id) FROM network_flows")" = 0
sums=$(q "SELECT sum(bytes_sent), sum(bytes_received) FROM network_flows WHERE $FEBE" | tr '|' ' ')
echo "# rows: sent+received = $sums; frontend's IP counters: out $((out1 - out0)) in $((in1 - in0))"
check "bytes_sent of all rows = what frontend's IP stack sent (nothing lost or counted twice)" \
	test "${sums% *}" = "$((out1 - out0))"
check "bytes_received of all rows = what frontend's IP stack received" \
	test "${sums#* }" = "$((in1 - in0))"

echo "1..$TAP_N"
