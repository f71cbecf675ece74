#!/usr/bin/env bash
# `make demo`: ztagent on a lab of network namespaces, narrated. Everything it
# creates (namespaces, veths, bpffs mount, processes) is removed on exit.
set -euo pipefail
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/pg.sh"

B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
[ -t 1 ] || B='' D='' N=''
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
run() { printf '%s$ %s%s\n' "$D" "$*" "$N"; "$@"; }
ping_once() {
	if in_ext ping -n -c1 -W1 -I "$1" "$LAB_NODE_IP" >/dev/null 2>&1; then
		echo "   ping from $1 to the node: replied"
	else
		echo "   ping from $1 to the node: no reply (dropped)"
	fi
}
# Compliance posture (issue 15): the report as text, and the HTML page kept in build/.
demo_compliance() {
	local html="$LAB_ROOT/build/compliance-report.html" rc=0
	step "Compliance posture: every check with its evidence and the requirement it serves"
	# Beside the agent, in the node's namespace as on a node: its metrics listen on 127.0.0.1 there.
	printf '%s$ ztctl compliance report --since 30d%s\n' "$D" "$N"
	in_node "$ZTCTL_BIN" --socket "$LAB_SOCK" compliance report --since 30d | sed 's/^/   /' || rc=$?
	echo "   exit code $rc (0: nothing failed, 1: a check failed, 2: no report)"
	printf '%s$ ztctl compliance report --format html -o %s%s\n' "$D" "$html" "$N"
	in_node "$ZTCTL_BIN" --socket "$LAB_SOCK" compliance report --format html -o "$html" 2>&1 |
		sed 's/^/   /' || true
	echo "   open file://$html in a browser: one self-contained page, a chart of denials and incidents"
}

demo_attack() {
	local scanner=$LAB_EXT_IP flooder=198.18.0.11 inc cap
	step "Attacks: an nmap scan and an hping3 SYN flood against the node, detected and blocked live"
	ip -n "$LAB_EXT" addr add $flooder/24 dev ext0
	printf '%s$ nmap -n -Pn -sS -p 1-300 --max-rate 300 %s   (from %s)%s\n' "$D" "$LAB_NODE_IP" "$scanner" "$N"
	in_ext timeout 20 nmap -n -Pn -sS -p 1-300 --max-rate 300 "$LAB_NODE_IP" 2>&1 | tail -n 3 | sed 's/^/   /' || true
	# -i u100 sends ~2000 SYNs/s in its first 100 ms here, the limit itself:
	# decided or not by a few SYNs. -i u50: ~10k/s over 3 s (hping3's count).
	printf '%s$ hping3 -S -p 22 -i u50 -a %s %s   (~10k SYN/s for 5 s)%s\n' "$D" "$flooder" "$LAB_NODE_IP" "$N"
	in_ext timeout 5 hping3 -q -S -p 22 -i u50 -a $flooder "$LAB_NODE_IP" >/dev/null 2>&1 || true
	run ztctl block list
	run ztctl incidents list
	inc=$(ztctl incidents list -o json | python3 -c '
import json, sys
for i in json.load(sys.stdin).get("incidents", []):
    if i.get("threat_type") == "flood":
        print(i["id"]); break')
	[ -n "$inc" ] || { echo "   (no flood incident: see $LAB_LOG)"; return 0; }
	run ztctl incidents show "$inc"
	cap=$(ztctl incidents show "$inc" -o json | sed -n 's/.*"capture": "\([^"]*\)".*/\1/p')
	if [ -s "$cap" ]; then
		# The capture is still open: it is a complete gzip stream after each
		# flush (about every second); wait for the one after the flood's last packet.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			tshark -n -r "$cap" -q >/dev/null 2>&1 && break
			sleep 0.5
		done
		printf '%s$ tshark -r %s -q -z io,phs%s\n' "$D" "$cap" "$N"
		tshark -n -r "$cap" -q -z io,phs 2>/dev/null | sed 's/^/   /'
		printf '%s$ tshark -r %s -c 5%s\n' "$D" "$cap" "$N"
		tshark -n -r "$cap" -c 5 2>/dev/null | sed 's/^/   /'
	fi
	sleep 3
	dbq "SELECT host(source_ip) AS source, flow_kind, coalesce(threat_type, '-') AS threat, blocked, count(*) AS rows, round(max(anomaly_score)::numeric, 3) AS max_score FROM network_flows WHERE start_time > now() - interval '2 minutes' GROUP BY 1, 2, 3, 4 ORDER BY 1"
	dbq "SELECT to_char(at, 'HH24:MI:SS') AS at, kind, host(source_ip) AS source, count, severity FROM alerts WHERE kind IN ('scan', 'flood') ORDER BY at"
}

step "Building the lab: an external namespace and a node namespace joined by a veth"
lab_init demo
trap 'pg_cleanup; lab_cleanup' EXIT
step "Starting a throw-away PostgreSQL 15 for the flow records and the audit trail"
pg_start
psql "$PG_CONN" -X -q -c "CREATE DATABASE ztagent"
DEMO_DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
echo "   initdb in $PG_DIR, unix socket only; database ztagent"
LAB_DB_URL=$DEMO_DB
DEMO_METRICS_PORT=$((20000 + RANDOM % 20000))
LAB_METRICS="127.0.0.1:$DEMO_METRICS_PORT"
lab_write_config
# Two threat-intel feeds read from files (https:// works the same way; see tests/integration/feeds.sh).
FEED_BAD=198.18.0.7 FEED_C2=198.18.0.9
mkdir -p "$LAB_DIR/feeds"
printf '; demo DROP list\n%s/32 ; SBL-DEMO-1\n203.0.113.0/24 ; SBL-DEMO-2\n' "$FEED_BAD" >"$LAB_DIR/feeds/drop.txt"
printf '# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n"2024-01-17 07:44:46","%s","8080","online","2024-02-19","Dridex"\n' \
	"$FEED_C2" >"$LAB_DIR/feeds/feodo.csv"
cat >>"$LAB_CONF" <<EOF
feeds:
  - name: demo-drop
    url: file://$LAB_DIR/feeds/drop.txt
    format: cidr
    direction: both
  - name: feodo
    url: file://$LAB_DIR/feeds/feodo.csv
    format: feodo-csv
    direction: destination
    action: block
forensics:
  dir: $LAB_DIR/pcap
EOF
dbq() { # SQL: a psql table
	printf '%s$ psql -c "%s"%s\n' "$D" "$1" "$N"
	psql "$DEMO_DB" -X -P pager=off -c "$1" | sed 's/^/   /'
}
echo "   external $LAB_EXT: ext0 $LAB_EXT_IP, $LAB_EXT_IP2"
echo "   node     $LAB_NODE: uplink0 $LAB_NODE_IP  <- ztagent guards this uplink with XDP"
echo "   configuration ($LAB_CONF):"
sed 's/^/     /' "$LAB_CONF"

step "Checking the configuration, applying the database schema, then starting ztagent on the node"
run "$ZTAGENT" --check-config --config "$LAB_CONF"
run "$ZTAGENT" --migrate-only --config "$LAB_CONF"
lab_agent_start
sed 's/^/   /' "$LAB_LOG"

step "Traffic passes while nothing is blocked"
ping_once "$LAB_EXT_IP"
ping_once "$LAB_EXT_IP2"

step "An operator blocks $LAB_EXT_IP with ztctl"
run ztctl block add "$LAB_EXT_IP" --reason "demo: suspicious scanner" --ttl 10m
ping_once "$LAB_EXT_IP"
ping_once "$LAB_EXT_IP2"
in_ext ping -n -q -c 20 -i 0.01 -W1 -I "$LAB_EXT_IP" "$LAB_NODE_IP" >/dev/null 2>&1 || true
run ztctl block list

step "The drop counters (per-CPU in the kernel, summed by the daemon)"
run ztctl status

step "The same state, straight from the pinned map with bpftool"
run bpftool map dump pinned "$LAB_BPFFS/ztagent/blocklist_v4"
run bpftool map dump pinned "$LAB_BPFFS/ztagent/blocklist_prefixes"

step "A restart keeps the block: SIGTERM leaves enforcement in place"
lab_agent_stop
echo "   (agent stopped)"
ping_once "$LAB_EXT_IP"
lab_agent_start
echo "   (agent started again: it took over the pinned maps and replaced its program atomically)"
tail -n 3 "$LAB_LOG" | sed 's/^/   /'
ping_once "$LAB_EXT_IP"

step "Unblocking"
run ztctl block del "$LAB_EXT_IP"
ping_once "$LAB_EXT_IP"

step "Micro-segmentation: three pods behind the node, zero trust by default"
FE=198.18.1.10 BE=198.18.1.20 DB=198.18.1.30
lab_pod frontend $FE
lab_pod backend $BE
lab_pod db $DB
for l in "backend $BE 8080" "db $DB 5432" "frontend $FE 80"; do
	set -- $l
	ip netns exec "${LAB_ID}-$1" nc -lk "$2" "$3" >/dev/null 2>&1 &
	LAB_PIDS+=($!)
done
echo "   pods: frontend $FE, backend $BE (listens 8080), db $DB (listens 5432)"
conn() { # FROM DST PORT LABEL
	if in_pod "$1" nc -z -w1 "$2" "$3" >/dev/null 2>&1; then
		echo "   $1 -> $4:$3  connected"
	else
		echo "   $1 -> $4:$3  refused (dropped by tc_endpoint)"
	fi
}
mkdir -p "$LAB_DIR/policies"
cat >"$LAB_DIR/policies/shop.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: backend}}}]
      ports: [{protocol: TCP, port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{protocol: TCP, port: 8080}]
  egress:
    - to: [{podSelector: {matchLabels: {app: db}}}]
      ports: [{protocol: TCP, port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: backend}}}]
      ports: [{protocol: TCP, port: 5432}]
EOF
echo "   policy store $LAB_DIR/policies (watched; policy.default: deny):"
sed 's/^/     /' "$LAB_DIR/policies/shop.yaml"
sleep 0.2
run ztctl policy list
run ztctl endpoint add --ifname v-frontend --ip $FE --labels app=frontend --namespace shop --name frontend
run ztctl endpoint add --ifname v-backend --ip $BE --labels app=backend --namespace shop --name backend
run ztctl endpoint add --ifname v-db --ip $DB --labels app=db --namespace shop --name db
run ztctl endpoint list
echo "   (denial alerts stream to 'ztctl flows --follow --verdict denied'; shown below)"
"$ZTCTL_BIN" --socket "$LAB_SOCK" flows --follow --verdict denied >"$LAB_DIR/follow.out" 2>&1 &
FOLLOW_PID=$!
LAB_PIDS+=($FOLLOW_PID)
conn frontend $BE 8080 backend
conn backend $DB 5432 db
conn frontend $DB 5432 db
conn db $FE 80 frontend
run ztctl policy explain --from shop/frontend --to shop/backend --port 8080/TCP
run ztctl policy explain --from shop/frontend --to shop/db --port 5432/TCP

step "A live policy change: let frontend reach db (a new file in the store)"
cat >"$LAB_DIR/policies/frontend-db.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-to-db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: db}}}]
      ports: [{port: 5432}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{port: 5432}]
EOF
sleep 0.2
grep policy_applied "$LAB_LOG" | tail -n1 | sed 's/^/   /'
conn frontend $DB 5432 db
run ztctl policy explain --from shop/frontend --to shop/db --port 5432/TCP

step "An invalid file is refused; the policy in force stays"
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n    - ports: [{port: "5432"}]\n' >"$LAB_DIR/policies/broken.yaml"
sleep 0.3
grep policy_rejected "$LAB_LOG" | tail -n1 | sed 's/^/   /'
conn frontend $DB 5432 db
echo "   (removing both files: the permission is revoked)"
rm -f "$LAB_DIR/policies/broken.yaml" "$LAB_DIR/policies/frontend-db.yaml"
sleep 0.3
conn frontend $DB 5432 db

step "Threat-intelligence feeds: a DROP list (inbound and outbound) and Feodo C2 servers (outbound)"
run ztctl feeds list
for a in $FEED_BAD $FEED_C2; do ip -n "$LAB_EXT" addr add "$a/24" dev ext0; done
ip -n "$LAB_EXT" route add 198.18.1.0/24 via "$LAB_NODE_IP"
echo "   inbound, at the uplink (XDP): $FEED_BAD is on demo-drop"
ping_once "$FEED_BAD"
ping_once "$LAB_EXT_IP2"
run ztctl block list --feed demo-drop
echo "   outbound: frontend may reach 198.18.0.0/24:8080 by policy; $FEED_C2 is a Feodo C2"
cat >"$LAB_DIR/policies/frontend-ext.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-ext, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 198.18.0.0/24}}]
      ports: [{protocol: TCP, port: 8080}]
EOF
for a in $LAB_EXT_IP2 $FEED_C2; do
	ip netns exec "$LAB_EXT" nc -lk "$a" 8080 >/dev/null 2>&1 &
	LAB_PIDS+=($!)
done
sleep 0.4
conn frontend $LAB_EXT_IP2 8080 "$LAB_EXT_IP2 (unlisted)"
conn frontend $FEED_C2 8080 "$FEED_C2 (Feodo C2)"
echo "   the hit, as logged, and the incident it opened (threat ioc; alerts table, kind ioc, below):"
sleep 0.3
grep 'event=ioc_hit' "$LAB_LOG" | tail -n1 | sed 's/^/   /'
run ztctl incidents list
echo "   a live update: demo-drop now lists $LAB_EXT_IP2 instead of $FEED_BAD"
printf '; demo DROP list, next version\n%s/32 ; SBL-DEMO-3\n203.0.113.0/24 ; SBL-DEMO-2\n' "$LAB_EXT_IP2" >"$LAB_DIR/feeds/drop.txt.new"
mv "$LAB_DIR/feeds/drop.txt.new" "$LAB_DIR/feeds/drop.txt"
sleep 0.6
grep 'event=feed_applied feed=demo-drop' "$LAB_LOG" | tail -n1 | sed 's/^/   /'
ping_once "$FEED_BAD"
ping_once "$LAB_EXT_IP2"
run ztctl feeds show demo-drop
rm -f "$LAB_DIR/policies/frontend-ext.yaml"

step "The denial alerts that 'ztctl flows --follow --verdict denied' streamed"
sleep 0.3
kill "$FOLLOW_PID" 2>/dev/null || true
wait "$FOLLOW_PID" 2>/dev/null || true
sed 's/^/   /' "$LAB_DIR/follow.out"
run ztctl status

step "What ztagent recorded in PostgreSQL"
echo "   (flows end on FIN/RST or idle timeout; the writer batches by size and time)"
sleep 3
dbq "SELECT to_char(start_time, 'HH24:MI:SS') AS start, source_workload AS src, dest_workload AS dst, host(dest_ip) || ':' || dest_port AS to, protocol_name AS proto, bytes_sent AS sent, bytes_received AS rcvd, packet_count AS pkts, verdict, left(coalesce(policy, ''), 46) AS policy FROM network_flows WHERE flow_kind = 'flow' ORDER BY start_time DESC LIMIT 12"
dbq "SELECT host(source_ip) AS source, host(dest_ip) AS dest, protocol_name AS protocol, aggregate_count AS drops, bytes_sent AS bytes, drop_reason, to_char(start_time, 'HH24:MI:SS') || '-' || to_char(end_time, 'HH24:MI:SS') AS interval FROM network_flows WHERE flow_kind = 'xdp_drop_aggregate' ORDER BY start_time"
dbq "SELECT to_char(at, 'HH24:MI:SS') AS at, severity, kind, host(source_ip) AS source, host(dest_ip) || ':' || dest_port AS dest, protocol, coalesce(detail->>'rule', CASE WHEN kind = 'ioc' THEN (detail->>'workload') || ' -> ' || (detail->>'dst') || ' on feed ' || (detail->>'subtype') || ', x' || count END, detail->>'evidence') AS rule FROM alerts ORDER BY at DESC LIMIT 6"
dbq "SELECT to_char(at, 'HH24:MI:SS') AS at, action, cidr, reason FROM blocks ORDER BY at"
dbq "SELECT seq, to_char(at, 'HH24:MI:SS') AS at, kind, left(subject, 40) AS subject, left(encode(hash, 'hex'), 16) || '..' AS hash FROM audit_log ORDER BY seq DESC LIMIT 12"
run ztctl audit verify

step "The metrics endpoint (Prometheus text format, $LAB_METRICS in the node)"
printf '%s$ curl http://%s/metrics | grep -v "^#" | grep -E "flows|denials|db_rows|spool|apply_seconds_count|build"%s\n' "$D" "$LAB_METRICS" "$N"
in_node python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://$LAB_METRICS/metrics').read().decode())" |
	grep -v '^#' | grep -E 'flows|denials|db_rows|spool|apply_seconds_count|build' | sed 's/^/   /'

# Kubernetes: ztagent-cni run as a container runtime runs it (after Debian's
# ptp + host-local), the test API server (tests/k8s/apiserver.py) as the
# cluster: a pod appears, is enforced, gets its policy from a NetworkPolicy
# object, and is removed.
demo_k8s() {
	local cni_dir=/usr/lib/cni port ctl_port web cl
	step "Kubernetes: a pod from the CNI plugin, its policy from a NetworkPolicy object"
	if [ ! -x "$cni_dir/ptp" ] || [ ! -x "$cni_dir/host-local" ]; then
		echo "   (skipped: containernetworking-plugins is not installed; make deps)"
		return 0
	fi
	bash "$LAB_ROOT/tests/k8s/mkcerts.sh" "$LAB_DIR/pki"
	ip netns exec "$LAB_NODE" python3 "$LAB_ROOT/tests/k8s/apiserver.py" \
		--cert "$LAB_DIR/pki/server.pem" --key "$LAB_DIR/pki/server.key" \
		--token-file "$LAB_DIR/token" --port-file "$LAB_DIR/k8s-ports" >"$LAB_DIR/apiserver.log" 2>&1 &
	LAB_PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$LAB_DIR/k8s-ports" ] && break
		sleep 0.05
	done
	read -r port ctl_port <"$LAB_DIR/k8s-ports"
	echo "   the test API server: https://127.0.0.1:$port in the node (TLS, its own CA, a bearer token)"
	k8s() { in_node curl -sf -X POST "http://127.0.0.1:$ctl_port/$1" -d "$2" >/dev/null; }
	k8s_pod() { # NAME LABELS IP UID-DIGIT
		local ips=
		[ -n "$3" ] && ips=", \"podIP\": \"$3\", \"podIPs\": [{\"ip\": \"$3\"}]"
		k8s apply "{\"resource\": \"pods\", \"object\": {\"metadata\": {\"name\": \"$1\",
			\"namespace\": \"k8s-demo\", \"uid\": \"00000000-0000-4000-8000-00000000000$4\",
			\"labels\": $2}, \"spec\": {\"nodeName\": \"lab-node\", \"containers\": [{\"name\": \"c\",
			\"image\": \"busybox\"}]}, \"status\": {\"phase\": \"Running\"$ips}}}"
	}
	printf 'apiVersion: v1\nkind: Config\ncurrent-context: lab\n' >"$LAB_DIR/kubeconfig"
	printf 'contexts: [{name: lab, context: {cluster: lab, user: agent}}]\n' >>"$LAB_DIR/kubeconfig"
	printf 'clusters: [{name: lab, cluster: {server: "https://127.0.0.1:%s", certificate-authority: "%s"}}]\n' \
		"$port" "$LAB_DIR/pki/ca.pem" >>"$LAB_DIR/kubeconfig"
	printf 'users: [{name: agent, user: {tokenFile: "%s"}}]\n' "$LAB_DIR/token" >>"$LAB_DIR/kubeconfig"
	printf 'kubernetes:\n  enabled: true\n  kubeconfig: %s\n  node_name: lab-node\n  pending_posture: deny\n' \
		"$LAB_DIR/kubeconfig" >>"$LAB_CONF"
	echo "   the agent restarts with (appended to its configuration):"
	sed -n '/^kubernetes:/,$p' "$LAB_CONF" | sed 's/^/     /'
	lab_agent_stop || true
	lab_agent_start
	for _ in $(seq 100); do
		[ "$(in_node curl -s -o /dev/null -w '%{http_code}' "http://$LAB_METRICS/readyz")" = 200 ] && break
		sleep 0.1
	done
	printf '%s$ curl http://%s/readyz%s\n' "$D" "$LAB_METRICS" "$N"
	in_node curl -s "http://$LAB_METRICS/readyz" | sed 's/^/   /'
	grep -E 'k8s_(watching|ready)' "$LAB_LOG" | tail -n 2 | sed 's/^/   /'

	mkdir -p "$LAB_DIR/cni-bin" "$LAB_DIR/ipam" "$LAB_DIR/cni-cache"
	ln -sf "$cni_dir/ptp" "$cni_dir/host-local" "$LAB_ROOT/build/ztagent-cni" "$LAB_DIR/cni-bin/"
	printf '{"cniVersion": "1.0.0", "name": "demo", "plugins": [\n' >"$LAB_DIR/10-demo.conflist"
	printf '  {"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.21.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "%s"}},\n' \
		"$LAB_DIR/ipam" >>"$LAB_DIR/10-demo.conflist"
	printf '  {"type": "ztagent-cni", "socket": "%s", "state_dir": "%s"}]}\n' "$LAB_SOCK" \
		"$LAB_DIR/state" >>"$LAB_DIR/10-demo.conflist"
	echo "   the node's conflist: ptp + host-local, then ztagent-cni"
	sed 's/^/     /' "$LAB_DIR/10-demo.conflist"
	# What libcni does: ADD through each plugin, each result the next one's prevResult; DEL in reverse.
	printf '%s\n' 'import json, os, subprocess, sys' \
		'cmd, conflist, netns, cid, args, cache = sys.argv[1:7]' \
		'conf = json.load(open(conflist))' \
		'prev = json.load(open(cache)) if cmd == "DEL" and os.path.exists(cache) else None' \
		'for p in (conf["plugins"] if cmd == "ADD" else list(reversed(conf["plugins"]))):' \
		'    net = dict(p, cniVersion=conf["cniVersion"], name=conf["name"])' \
		'    if prev is not None: net["prevResult"] = prev' \
		'    env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID=cid, CNI_NETNS=netns, CNI_IFNAME="eth0", CNI_ARGS=args)' \
		'    r = subprocess.run([os.path.join(os.environ["CNI_PATH"], p["type"])], input=json.dumps(net).encode(), env=env, capture_output=True)' \
		'    if r.returncode: sys.exit("%s %s: %s" % (p["type"], cmd, r.stdout.decode()))' \
		'    if cmd == "ADD": prev = json.loads(r.stdout)' \
		'if cmd == "ADD": json.dump(prev, open(cache, "w"))' >"$LAB_DIR/cnidrv.py"
	cni_run() { # ADD|DEL POD UID-DIGIT
		CNI_PATH="$LAB_DIR/cni-bin" ip netns exec "$LAB_NODE" python3 "$LAB_DIR/cnidrv.py" "$1" \
			"$LAB_DIR/10-demo.conflist" "/var/run/netns/${LAB_ID}-$2" "demo-$2" \
			"IgnoreUnknown=1;K8S_POD_NAMESPACE=k8s-demo;K8S_POD_NAME=$2;K8S_POD_UID=00000000-0000-4000-8000-00000000000$3" \
			"$LAB_DIR/cni-cache/$2.json"
	}
	echo "   the cluster: namespace k8s-demo; pods web (app=web) and client (app=client) on lab-node"
	k8s apply '{"resource": "namespaces", "object": {"metadata": {"name": "k8s-demo", "labels": {"env": "demo"}}}}'
	k8s_pod web '{"app": "web"}' "" 1
	k8s_pod client '{"app": "client"}' "" 2
	for p in web client; do
		ip netns add "${LAB_ID}-$p"
		LAB_PODS+=("${LAB_ID}-$p")
		ip -n "${LAB_ID}-$p" link set lo up
	done
	printf '%s$ CNI_COMMAND=ADD: ptp, then ztagent-cni (web, then client)%s\n' "$D" "$N"
	cni_run ADD web 1
	cni_run ADD client 2
	web=$(ip -n "${LAB_ID}-web" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
	cl=$(ip -n "${LAB_ID}-client" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
	k8s_pod web '{"app": "web"}' "$web" 1
	k8s_pod client '{"app": "client"}' "$cl" 2
	ip netns exec "${LAB_ID}-web" nc -lk "$web" 8080 >/dev/null 2>&1 &
	LAB_PIDS+=($!)
	sleep 0.2
	run ztctl endpoint list
	echo "   enforced from its first packet: no policy allows client -> web yet (policy.default: deny)"
	conn client "$web" 8080 web
	echo "   NetworkPolicy objects through the API server (what kubectl apply sends):"
	k8s apply '{"resource": "networkpolicies", "object": {"metadata": {"name": "web", "namespace": "k8s-demo"},
		"spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector":
		{"matchLabels": {"app": "client"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}]}}}'
	k8s apply '{"resource": "networkpolicies", "object": {"metadata": {"name": "client", "namespace": "k8s-demo"},
		"spec": {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"], "egress": [{"to":
		[{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}]}}}'
	sleep 0.2
	grep k8s_policies_applied "$LAB_LOG" | tail -n1 | sed 's/^/   /'
	conn client "$web" 8080 web
	run ztctl policy list
	run ztctl policy explain --from k8s-demo/client --to k8s-demo/web --port 8080/TCP
	echo "   the pod is removed: CNI DEL (ztagent-cni, then ptp), and the API server deletes it"
	cni_run DEL web 1
	k8s delete '{"resource": "pods", "namespace": "k8s-demo", "name": "web"}'
	run ztctl endpoint list
}

demo_k8s
# Drift repaired live: someone removes the XDP program and a tc filter behind
# the agent's back; within a second both are back, logged, counted, audited.
demo_drift() {
	step "Drift repaired live: enforcement removed behind the agent's back comes back within 1 s"
	xdp() { in_node ip -d link show dev uplink0 | sed -n 's/.*prog\/xdp id \([0-9]*\).*/xdp_guard id \1/p' | head -1; }
	echo "   uplink0 runs: $(xdp)"
	echo "   removed at $(date -u +%T.%3N) (the agent's log below says when it put it back)"
	run in_node ip link set dev uplink0 xdp off
	sleep 0.5
	echo "   0.5 s later: $(xdp)"
	echo "   v-frontend egress: $(in_node tc filter show dev v-frontend egress | grep -o 'tc_to_pod[^ ]*' | head -1 || true); removed at $(date -u +%T.%3N)"
	run in_node tc filter del dev v-frontend egress
	sleep 0.5
	echo "   0.5 s later: $(in_node tc filter show dev v-frontend egress | grep -o 'tc_to_pod[^ ]*' | head -1 || true)"
	echo "   agent log:"
	grep 'event=drift_' "$LAB_LOG" | tail -n 2 | sed 's/^/   /' || true
	dbq "SELECT seq, to_char(at, 'HH24:MI:SS') AS at, kind, subject, detail::jsonb->>'differed' AS differed FROM audit_log WHERE kind LIKE 'drift.%' ORDER BY seq"
	in_node python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://$LAB_METRICS/metrics').read().decode())" |
		grep '^ztagent_drift_repairs_total' | grep -v ' 0$' | sed 's/^/   /' || true
	run ztctl cluster status || true
}

demo_mtls() { # two nodes of their own: workload mTLS end to end (tests/integration/mtls_agent.sh)
	step "Workload mTLS on two more nodes: requireMutualAuth traffic goes through TLS 1.3 between the agents"
	echo "   node a (pods client, rogue) and node b (pods server, local) behind a router running tshark;"
	echo "   policy marks client -> server:7000 requireMutualAuth; rogue has no such rule on node a"
	MTLS_DEMO=1 bash "$LAB_ROOT/tests/integration/mtls_agent.sh" 2>/dev/null | grep -v '^ok .*SVID' | sed 's/^/   /'
}
demo_mtls
demo_attack
demo_drift
demo_compliance

step "Detaching: programs and pins removed, the agent exits"
run ztctl detach
wait "$LAB_AGENT_PID" 2>/dev/null || true
LAB_AGENT_PID=
echo "   agent log:"
tail -n 8 "$LAB_LOG" | sed 's/^/   /'

step "Removing the lab"
