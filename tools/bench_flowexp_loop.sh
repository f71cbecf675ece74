#!/usr/bin/env bash
# The daemon's loop under a flow load with the database on: the longest
# loop step (ztagent_loop_step_max_seconds, scraped every 0.5 s) and the
# API's latency while a client pod opens short TCP connections to a server
# pod as fast as it can, so that every conntrack sweep tick records flows
# (and the spool is written and fsynced for them). Runs each binary in
# BENCH_AGENTS (default: build/ztagent) BENCH_ROUNDS times, interleaved,
# BENCH_SECONDS of load each, against one PostgreSQL; after each round the
# agent is stopped with SIGTERM and the rows are counted against the
# connections made. Prints one line per round.
#   BENCH_AGENTS="/tmp/before/build/ztagent build/ztagent" tools/bench_flowexp_loop.sh
set -uo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/pg.sh"

ROUNDS=${BENCH_ROUNDS:-2}
SECS=${BENCH_SECONDS:-10}
AGENTS=${BENCH_AGENTS:-$LAB_ROOT/build/ztagent}

lab_init fxl
trap 'pg_cleanup; lab_cleanup' EXIT
pg_start || exit 1
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

POL="$LAB_DIR/policies"
mkdir -p "$POL"
CL=198.18.3.10
SV=198.18.3.20
lab_pod client $CL
lab_pod server $SV
METRICS_PORT=$((20000 + RANDOM % 20000))
LAB_DB_URL=$DB
LAB_METRICS="127.0.0.1:$METRICS_PORT"
LAB_XDP_MODE=auto
lab_write_config
cat >"$POL/10-bench.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server, namespace: bench}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{protocol: TCP, port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client, namespace: bench}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: server}}}]
EOF
cat >"$LAB_DIR/server.py" <<'EOF'
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080))
s.listen(1024)
def serve(c):
    with c:
        while c.recv(65536):
            pass
        c.sendall(b"ok")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
cat >"$LAB_DIR/client.py" <<'EOF'
import socket, sys, threading, time
host, secs, nthr = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
end = time.monotonic() + secs
ok = [0] * nthr
def run(i):
    while time.monotonic() < end:
        try:
            c = socket.create_connection((host, 8080), timeout=5)
            c.sendall(b"x" * 200)
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
            c.close()
            ok[i] += 1
        except OSError:
            pass
ts = [threading.Thread(target=run, args=(i,)) for i in range(nthr)]
[t.start() for t in ts]
[t.join() for t in ts]
print(sum(ok))
EOF
lab_bg_in "${LAB_ID}-server" python3 "$LAB_DIR/server.py" $SV

scrape() {
	in_node python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$METRICS_PORT/metrics').read().decode())" 2>/dev/null |
		awk '$1 == "ztagent_loop_step_max_seconds" {print $2}'
}

for round in $(seq 1 "$ROUNDS"); do
	for agent in $AGENTS; do
		ZTAGENT=$agent
		: >"$LAB_LOG"
		q "TRUNCATE network_flows" >/dev/null 2>&1
		lab_agent_start || exit 1
		ztctl endpoint add --ifname v-client --ip $CL --labels app=client --namespace bench \
			--name client >/dev/null 2>&1
		ztctl endpoint add --ifname v-server --ip $SV --labels app=server --namespace bench \
			--name server >/dev/null 2>&1
		sleep 1
		scrape >/dev/null # resets the maximum: start-up is not measured
		rm -f "$LAB_DIR/stop"
		lab_api_probe "$LAB_DIR/stop" >"$LAB_DIR/probe" &
		probe=$!
		in_pod client python3 "$LAB_DIR/client.py" $SV "$SECS" 16 >"$LAB_DIR/conns" &
		client=$!
		max=0
		while kill -0 $client 2>/dev/null; do
			v=$(scrape)
			[ -n "$v" ] && max=$(awk -v a="$max" -v b="$v" 'BEGIN {print (b > a ? b : a)}')
			sleep 0.5
		done
		wait $client
		sleep 1.5 # the last flows' close grace and a few sweeps
		v=$(scrape)
		[ -n "$v" ] && max=$(awk -v a="$max" -v b="$v" 'BEGIN {print (b > a ? b : a)}')
		touch "$LAB_DIR/stop"
		wait $probe
		lab_agent_stop
		sleep 1 # the writer's last COPY
		conns=$(cat "$LAB_DIR/conns")
		rows=$(q "SELECT coalesce(sum(aggregate_count), 0) FROM network_flows WHERE dest_port = 8080 AND protocol = 6")
		printf '%s round=%d conns=%s flow_rows=%s loop_step_max_ms=%.1f api_%s %s\n' \
			"$(basename "$(dirname "$(dirname "$agent")")")" "$round" "$conns" "$rows" \
			"$(awk -v m="$max" 'BEGIN {print m * 1000}')" "$(cat "$LAB_DIR/probe")" \
			"$(grep -o 'sweeps=.*' "$LAB_LOG" | tail -1)"
	done
done
