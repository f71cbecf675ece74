#!/usr/bin/env bash
# Integration: policies from traffic. The real agent records real TCP
# connections between lab pods in a real PostgreSQL (policy.default allow:
# a learning period); `ztctl policy suggest` reads network_flows and
# writes policies; loaded into policy.dir, a replay of every flow the
# database holds passes with zero denials, while flows it never saw (and a
# rare one below --min-flows) are denied. --mode audit: the same flows pass,
# an unseen one passes as audit (would deny). Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

LAB_POLICY_DEFAULT=allow
lab_init sug
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
tap_ok "PostgreSQL starts"
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

POL="$LAB_DIR/policies"
mkdir -p "$POL"
CLIENT=198.18.4.10
WEB=198.18.4.20
DBP=198.18.4.30
INTRUDER=198.18.4.40
declare -A POD_OF=([$CLIENT]=client [$WEB]=web [$DBP]=db [$INTRUDER]=intruder)
lab_pod client $CLIENT
lab_pod web $WEB
lab_pod db $DBP
lab_pod intruder $INTRUDER
LAB_DB_URL=$DB
lab_write_config
for l in "web $WEB 8080" "web $WEB 8081" "web $WEB 8082" "web $WEB 8083" "db $DBP 5432"; do
	set -- $l
	ip netns exec "${LAB_ID}-$1" nc -lk "$2" "$3" >/dev/null 2>&1 &
	LAB_PIDS+=($!)
done
tcp() { in_pod "$1" nc -z -w1 "$2" "$3" >/dev/null 2>&1; }
no_tcp() { ! tcp "$@"; }

if ! lab_agent_start; then
	tap_fail "ztagent starts with database.url"
	exit 1
fi
tap_ok "ztagent starts with database.url"
check "endpoint add client" ztctl endpoint add --ifname v-client --ip $CLIENT \
	--labels app=client,tier=edge --namespace shop --name client
check "endpoint add web" ztctl endpoint add --ifname v-web --ip $WEB --labels app=web \
	--namespace shop --name web
check "endpoint add db" ztctl endpoint add --ifname v-db --ip $DBP --labels app=db \
	--namespace data --name db
check "endpoint add intruder" ztctl endpoint add --ifname v-intruder --ip $INTRUDER \
	--labels app=intruder --namespace shop --name intruder

# --- the learning period: traffic, recorded ---
ok=1
for spec in "client $WEB 8080 4" "client $WEB 8081 3" "client $WEB 8082 2" "web $DBP 5432 3" \
	"client $DBP 5432 1"; do
	set -- $spec
	for _ in $(seq 1 "$4"); do tcp "$1" "$2" "$3" || ok=0; done
done
check "13 connections (4 + 3 + 2 + 3 + 1) pass while nothing is isolated" test $ok = 1
rows() { q "SELECT count(*) FROM network_flows WHERE flow_kind = 'flow' AND dest_port IN (8080, 8081, 8082, 5432)"; }
for _ in $(seq 1 200); do [ "$(rows)" -ge 13 ] && break; sleep 0.1; done
check "their 13 rows are in network_flows" test "$(rows)" = 13
check "rows carry workloads, not labels (labels come from the agent's endpoints)" \
	test "$(q "SELECT count(*) FROM network_flows WHERE source_workload = 'shop/client' AND dest_workload = 'shop/web'")" = 9

# --- suggest ---
out="$LAB_DIR/suggested.yaml"
ztctl policy suggest --since 1h --min-flows 2 --db "$DB" >"$out" 2>"$LAB_DIR/suggest.err"
rc=$?
sed 's/^/#   /' "$out"
check "ztctl policy suggest exits 0" test $rc -eq 0
check "ztctl policy validate accepts it" ztctl policy validate "$out"
check "it holds one policy per workload seen (client, web, db)" \
	test "$(grep -c '^kind: NetworkPolicy' "$out")" = 3
check "by labels, never by pod address" bash -c "! grep -q '198\.18\.4\.' '$out'"
check "ports merged into a range only where exact (8080-8082 all seen)" \
	grep -q '{protocol: TCP, port: 8080, endPort: 8082}' "$out"
check "comments say which flows a rule covers and how often" \
	grep -q '# shop/web -> data/db 5432/TCP: 3 flows' "$out"
check "DNS egress is included" grep -q 'k8s-app.: .kube-dns' "$out"
check "the rare flow (1 < --min-flows 2) is listed, not dropped silently" \
	grep -q '#   shop/client -> data/db 5432/TCP: 1 flow; seen fewer than --min-flows times' "$out"
ztctl policy suggest --since 1h --min-flows 2 --namespace data --db "$DB" >"$LAB_DIR/data.yaml" 2>/dev/null
check "--namespace data: only data's policy" \
	bash -c "test \"\$(grep -c '^kind:' '$LAB_DIR/data.yaml')\" = 1 && grep -q 'name: suggested-db' '$LAB_DIR/data.yaml'"
err=$(ztctl policy suggest --mode strict --db "$DB" 2>&1)
check "--mode must be enforce or audit" grep -q "not enforce or audit" <<<"$err"

# --- load it, replay what the database saw ---
cp "$out" "$POL/50-suggested.yaml"
loaded() { ztctl -o json policy list | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(p["name"].startswith("suggested-") for p in d["policies"]) == 3 else 1)'; }
for _ in $(seq 1 50); do loaded && break; sleep 0.1; done
check "the agent loads the suggestion from policy.dir" loaded
# ztctl flows -o json: one verdict per line.
denied() { ztctl -o json flows --verdict denied --limit 10000 | grep -c '"verdict"'; }
d0=$(denied)
replay_fail=0
replayed=0
while IFS='|' read -r src dst port n; do
	[ -n "$src" ] || continue
	[ "$n" -ge 2 ] || continue # below --min-flows: held out on purpose
	pod=${POD_OF[$src]:-}
	[ -n "$pod" ] || continue
	if ! tcp "$pod" "$dst" "$port"; then
		echo "# replay $pod -> $dst:$port failed"
		replay_fail=$((replay_fail + 1))
	fi
	replayed=$((replayed + 1))
done < <(q "SELECT host(source_ip), host(dest_ip), dest_port, count(*) FROM network_flows WHERE flow_kind = 'flow' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
echo "# replayed $replayed distinct flows from network_flows"
check "every seen flow (4 distinct) replays and connects" test "$replayed" = 4 -a "$replay_fail" = 0
check "zero denials during the replay" test "$(denied)" = "$d0"
check "held out: the rare client -> db:5432 is denied" no_tcp client $DBP 5432
check "held out: unseen intruder -> web:8080 is denied" no_tcp intruder $WEB 8080
check "held out: unseen port client -> web:8083 is denied" no_tcp client $WEB 8083
check "held out: web -> client (the other way) is denied" no_tcp web $CLIENT 8080
check "the held-out flows are on record as denials" test "$(denied)" -ge $((d0 + 4))

# --- audit mode ---
ztctl policy suggest --since 1h --min-flows 2 --mode audit --db "$DB" >"$LAB_DIR/audit.yaml" 2>/dev/null
check "--mode audit writes ZeroTrustPolicy in mode audit" \
	bash -c "test \"\$(grep -c '^kind: ZeroTrustPolicy' '$LAB_DIR/audit.yaml')\" = 3 && test \"\$(grep -c '^  mode: audit' '$LAB_DIR/audit.yaml')\" = 3"
rm -f "$POL/50-suggested.yaml"
cp "$LAB_DIR/audit.yaml" "$POL/50-suggested.yaml"
audit_loaded() { ztctl -o json policy list | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(p["mode"] == "audit" for p in d["policies"]) == 3 else 1)'; }
for _ in $(seq 1 50); do audit_loaded && break; sleep 0.1; done
check "the audit-mode suggestion is in force" audit_loaded
check "audit: a seen flow passes" tcp client $WEB 8081
check "audit: unseen intruder -> web:8080 passes" tcp intruder $WEB 8080
audits() { ztctl -o json flows --verdict audit --limit 10000 | python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if l.strip() and json.loads(l)["dst"] == sys.argv[1] and json.loads(l)["dport"] == 8080), end="")' "$WEB"; }
check "... reported as audit (would deny)" test "$(audits)" -ge 1

# --- a pod of another node: named by the labels the Kubernetes watch gave the agent ---
REMOTE_IP=198.18.0.50 # a pod of node-2, reached through the uplink
in_ext ip addr add "$REMOTE_IP/24" dev ext0
in_ext ip route add 198.18.4.0/24 via "$LAB_NODE_IP" 2>/dev/null
in_ext nc -lk "$REMOTE_IP" 9000 >/dev/null 2>&1 &
LAB_PIDS+=($!)
rm -f "$POL/50-suggested.yaml"
ztctl policy reload >/dev/null
ok=1
for _ in 1 2 3; do tcp client "$REMOTE_IP" 9000 || ok=0; done
check "client -> the other node's pod $REMOTE_IP:9000: 3 connections" test $ok = 1
rrows() { q "SELECT count(*) FROM network_flows WHERE flow_kind = 'flow' AND dest_port = 9000"; }
for _ in $(seq 1 200); do [ "$(rrows)" -ge 3 ] && break; sleep 0.1; done
check "their rows are in network_flows" test "$(rrows)" -ge 3
ztctl policy suggest --since 1h --db "$DB" >"$LAB_DIR/remote0.yaml" 2>/dev/null
check "before the watch knows the pod: an ipBlock of $REMOTE_IP/32 (all the agent can say)" \
	grep -Eq "cidr: \"?$REMOTE_IP/32\"?" "$LAB_DIR/remote0.yaml"

SRV_PID=
trap '[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; pg_cleanup; lab_cleanup' EXIT
bash "$LAB_ROOT/tests/k8s/mkcerts.sh" "$LAB_DIR/pki" >/dev/null 2>&1
ip netns exec "$LAB_NODE" python3 "$LAB_ROOT/tests/k8s/apiserver.py" --port 0 --ctl-port 0 \
	--cert "$LAB_DIR/pki/server.pem" --key "$LAB_DIR/pki/server.key" \
	--token-file "$LAB_DIR/token" --state "$LAB_DIR/k8s-state.json" \
	--port-file "$LAB_DIR/ports" >>"$LAB_DIR/apiserver.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 100); do [ -s "$LAB_DIR/ports" ] && break; sleep 0.05; done
read -r API_PORT CTL_PORT <"$LAB_DIR/ports"
check "the test API server starts" test -n "$API_PORT" -a "$API_PORT" != 0
kctl() { in_node curl -sf -X POST "http://127.0.0.1:$CTL_PORT/$1" -d "$2" >/dev/null; }
kctl apply '{"resource": "namespaces", "object": {"metadata": {"name": "api", "labels": {"team": "api"}}}}'
kctl apply "{\"resource\": \"pods\", \"object\": {\"metadata\": {\"name\": \"remote-api\",
	\"namespace\": \"api\", \"uid\": \"5c0ffee0-0b5d-4e8a-9c61-000000000050\", \"labels\": {\"app\": \"remote-api\"}},
	\"spec\": {\"nodeName\": \"node-2\", \"containers\": [{\"name\": \"main\", \"image\": \"busybox\"}]},
	\"status\": {\"phase\": \"Running\", \"podIP\": \"$REMOTE_IP\", \"podIPs\": [{\"ip\": \"$REMOTE_IP\"}]}}}"
cat >"$LAB_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: lab
contexts: [{name: lab, context: {cluster: lab, user: agent}}]
clusters: [{name: lab, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$LAB_DIR/pki/ca.pem"}}]
users: [{name: agent, user: {tokenFile: "$LAB_DIR/token"}}]
KC
cat >>"$LAB_CONF" <<KC
kubernetes:
  enabled: true
  kubeconfig: $LAB_DIR/kubeconfig
  node_name: lab-node
KC
lab_agent_stop
if lab_agent_start; then
	remote_known() { ztctl -o json endpoint list 2>/dev/null | grep -q remote-api; }
	for _ in $(seq 1 100); do remote_known && break; sleep 0.1; done
	check "the agent knows api/remote-api of node-2 from the watch" remote_known
	ztctl policy suggest --since 1h --db "$DB" >"$LAB_DIR/remote1.yaml" 2>"$LAB_DIR/remote1.err"
	sed 's/^/#   /' "$LAB_DIR/remote1.yaml" | grep -B3 -A8 "remote-api" | head -30
	egress_to_remote() { # the client's egress names the pod by labels and namespace, not its address
		python3 - "$LAB_DIR/remote1.yaml" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or d["metadata"].get("namespace") != "shop":
        continue
    for r in d["spec"].get("egress", []):
        for t in r.get("to", []):
            if t.get("podSelector", {}).get("matchLabels") == {"app": "remote-api"} and \
               t.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "api" and \
               [p.get("port") for p in r.get("ports", [])] == [9000]:
                sys.exit(0)
sys.exit(1)
PY
	}
	check "after: the client's egress to 9000 selects app=remote-api in namespace api" egress_to_remote
	check "after: no ipBlock of $REMOTE_IP" eval "! grep -Eq 'cidr: \"?$REMOTE_IP/32' '$LAB_DIR/remote1.yaml'"
else
	tap_fail "ztagent starts with kubernetes.enabled"
fi

echo "1..$TAP_N"
