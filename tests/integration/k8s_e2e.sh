#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# End to end: ztagent with kubernetes.enabled, watching the test API server
# (tests/k8s/apiserver.py, TLS with its own CA, a token file), and pods made
# by ztagent-cni chained after Debian's ptp + host-local as a runtime does.
# Checked, with the verdicts of real connections:
#   - /readyz: 503 before the watches have synced (API server down), 200
#     after; /healthz 200 while the loop turns
#   - a pod created through the CNI plugin and announced by the API server
#     reaches its allowed peer and is denied elsewhere within 1 s
#   - a pod of another node (an address reached through the uplink) is
#     matched by its labels, not as the world
#   - a NetworkPolicy added then deleted through the API server changes the
#     verdict within 1 s each way; policy list names it k8s:Kind/ns/name
#   - an invalid object is refused alone; a ZeroTrustPolicy deny rule added
#     and deleted likewise; a sandbox made before its pod is announced is
#     pending, then takes its labels from the watch
#   - a restart while the API server lists slowly lets no denied connection
#     through (the objects last applied are kept in state_dir)
#   - relabelling a pod, and a namespace, re-evaluates within 1 s
#   - the agent killed with SIGKILL, changes made while it is down, and a
#     restart: it converges on them
# Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

CNI_BIN_DIR=${CNI_BIN_DIR:-/usr/lib/cni}
if [ ! -x "$CNI_BIN_DIR/ptp" ] || [ ! -x "$CNI_BIN_DIR/host-local" ]; then
	echo "# $CNI_BIN_DIR/ptp or host-local is missing: install containernetworking-plugins (make deps)"
	tap_fail "containernetworking-plugins installed"
	echo "1..$TAP_N"
	exit 1
fi

SRV_PID=
e2e_cleanup() {
	[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
	lab_cleanup
}

LAB_POLICY_DEFAULT=allow
LAB_METRICS=127.0.0.1:9470
lab_init k8se
trap e2e_cleanup EXIT # after lab_init, which sets its own
mkdir -p "$LAB_DIR/policies" "$LAB_DIR/cni-bin" "$LAB_DIR/ipam" "$LAB_DIR/cache"
ln -s "$CNI_BIN_DIR/ptp" "$CNI_BIN_DIR/host-local" "$LAB_DIR/cni-bin/"
ln -s "$LAB_ROOT/build/ztagent-cni" "$LAB_DIR/cni-bin/ztagent-cni"
export CNI_PATH="$LAB_DIR/cni-bin"
PODNET=198.18.20.0/24
REMOTE_IP=198.18.0.50 # a pod of node-2, reached through the uplink

# ---- the test API server, in the node's namespace (the agent's 127.0.0.1) ----
bash "$LAB_ROOT/tests/k8s/mkcerts.sh" "$LAB_DIR/pki" || {
	tap_fail "test CA and certificates"
	exit 1
}
API_PORT=0
start_api() {
	rm -f "$LAB_DIR/ports"
	ip netns exec "$LAB_NODE" python3 "$LAB_ROOT/tests/k8s/apiserver.py" --port "$API_PORT" \
		--ctl-port "${CTL_PORT:-0}" --cert "$LAB_DIR/pki/server.pem" \
		--key "$LAB_DIR/pki/server.key" --token-file "$LAB_DIR/token" \
		--state "$LAB_DIR/k8s-state.json" --port-file "$LAB_DIR/ports" \
		>>"$LAB_DIR/apiserver.log" 2>&1 &
	SRV_PID=$!
	for _ in $(seq 100); do
		[ -s "$LAB_DIR/ports" ] && break
		sleep 0.05
	done
	read -r API_PORT CTL_PORT <"$LAB_DIR/ports"
}
stop_api() {
	kill "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}
start_api
if [ -z "${API_PORT:-}" ] || [ "$API_PORT" = 0 ]; then
	tap_fail "the test API server starts"
	exit 1
fi
tap_ok "the test API server listens on https://127.0.0.1:$API_PORT (node namespace)"
cat >"$LAB_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: lab
contexts: [{name: lab, context: {cluster: lab, user: agent}}]
clusters: [{name: lab, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$LAB_DIR/pki/ca.pem"}}]
users: [{name: agent, user: {tokenFile: "$LAB_DIR/token"}}]
EOF
cat >>"$LAB_CONF" <<EOF
kubernetes:
  enabled: true
  kubeconfig: $LAB_DIR/kubeconfig
  node_name: lab-node
  pending_posture: deny
EOF

ctl() { in_node curl -sf -X POST "http://127.0.0.1:$CTL_PORT/$1" -d "$2" >/dev/null; }
ns_obj() { # NAME LABELS_JSON
	ctl apply "{\"resource\": \"namespaces\", \"object\": {\"metadata\": {\"name\": \"$1\", \"labels\": $2}}}"
}
uid_of() { printf '5c0ffee0-0b5d-4e8a-9c61-%012d' "$(cksum <<<"$1" | cut -c1-9)"; }
pod_obj() { # NAME NODE IP LABELS_JSON: a pod of namespace lab (IP "" while unassigned)
	local ips=
	[ -n "$3" ] && ips=", \"podIP\": \"$3\", \"podIPs\": [{\"ip\": \"$3\"}]"
	ctl apply "{\"resource\": \"pods\", \"object\": {\"metadata\": {\"name\": \"$1\",
		\"namespace\": \"lab\", \"uid\": \"$(uid_of "$1")\", \"labels\": $4},
		\"spec\": {\"nodeName\": \"$2\", \"serviceAccountName\": \"sa-$1\",
		\"containers\": [{\"name\": \"main\", \"image\": \"busybox\",
		\"ports\": [{\"name\": \"http\", \"containerPort\": 8080}]}]},
		\"status\": {\"phase\": \"Running\"$ips}}}"
}
netpol() { # NAME SPEC_JSON
	ctl apply "{\"resource\": \"networkpolicies\", \"object\": {\"metadata\": {\"name\": \"$1\", \"namespace\": \"lab\"}, \"spec\": $2}}"
}
delnetpol() { ctl delete "{\"resource\": \"networkpolicies\", \"namespace\": \"lab\", \"name\": \"$1\"}"; }

# What libcni does (see cni.sh): ADD through each plugin, prevResult on; DEL in reverse.
CONFLIST="$LAB_DIR/10-ztlab.conflist"
cat >"$CONFLIST" <<EOF
{"cniVersion": "1.0.0", "name": "ztlab", "plugins": [
  {"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local",
   "ranges": [[{"subnet": "$PODNET"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$LAB_DIR/ipam"}},
  {"type": "ztagent-cni", "socket": "$LAB_SOCK", "state_dir": "$LAB_DIR/state", "timeout": "3s"}]}
EOF
cat >"$LAB_DIR/cnidrv.py" <<'EOF'
import json, os, subprocess, sys
cmd, conflist, cid, netns, ifname, args, cache = sys.argv[1:8]
conf = json.load(open(conflist))
cached = cache + "/" + cid + ".json"
def run(p, command, prev):
    net = dict(p, cniVersion=conf["cniVersion"], name=conf["name"])
    if prev is not None:
        net["prevResult"] = prev
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns,
               CNI_IFNAME=ifname, CNI_ARGS=args)
    r = subprocess.run([os.path.join(os.environ["CNI_PATH"], p["type"])],
                       input=json.dumps(net).encode(), env=env, capture_output=True, timeout=60)
    if r.returncode != 0:
        sys.stdout.write(r.stdout.decode(errors="replace"))
        sys.exit(r.returncode)
    return r.stdout
if cmd == "ADD":
    prev = None
    for p in conf["plugins"]:
        prev = json.loads(run(p, "ADD", prev))
    json.dump(prev, open(cached, "w"))
else:
    prev = json.load(open(cached)) if os.path.exists(cached) else None
    for p in reversed(conf["plugins"]):
        run(p, "DEL", prev)
EOF
cni() { # ADD|DEL POD
	ip netns exec "$LAB_NODE" python3 "$LAB_DIR/cnidrv.py" "$1" "$CONFLIST" "cid-$2" \
		"/var/run/netns/${LAB_ID}-$2" eth0 \
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=lab;K8S_POD_NAME=$2;K8S_POD_INFRA_CONTAINER_ID=cid-$2;K8S_POD_UID=$(uid_of "$2")" \
		"$LAB_DIR/cache"
}
cpod_new() { # NAME: the sandbox's network namespace, as a runtime makes it
	ip netns add "${LAB_ID}-$1"
	LAB_PODS+=("${LAB_ID}-$1")
	ip -n "${LAB_ID}-$1" link set lo up
}
pod_ip() { ip -n "${LAB_ID}-$1" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }

# Connections: each attempt gives up after 0.3 s (a dropped SYN is not answered).
conn() { in_pod "$1" timeout 0.3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
conn_ext() { in_ext timeout 0.3 nc -s "$1" -z "$2" "$3" >/dev/null 2>&1; }
# within SECONDS want(ok|denied) CMD...: polls until CMD gives the wanted result;
# prints the time it took (ms) on stdout-free fd 3 via $WITHIN_MS.
WITHIN_MS=
within() {
	local limit=$1 want=$2 t0 now
	shift 2
	t0=$(date +%s%N)
	while :; do
		if "$@"; then [ "$want" = ok ] && break; else [ "$want" = denied ] && break; fi
		now=$(date +%s%N)
		if [ $(((now - t0) / 1000000)) -gt $((limit * 1000)) ]; then
			WITHIN_MS=timeout
			return 1
		fi
		sleep 0.02
	done
	WITHIN_MS=$((($(date +%s%N) - t0) / 1000000))
	return 0
}
# stays SECONDS want CMD...: the result holds for the whole time
stays() {
	local limit=$1 want=$2 end
	shift 2
	end=$(($(date +%s) + limit))
	while [ "$(date +%s)" -lt "$end" ]; do
		if "$@"; then [ "$want" = ok ] || return 1; else [ "$want" = denied ] || return 1; fi
		sleep 0.1
	done
	return 0
}
probe() { in_node curl -s -o /dev/null -w '%{http_code}' "http://$LAB_METRICS$1"; }
timing() { echo "# $1: ${WITHIN_MS} ms"; }

# ---- the cluster before the agent starts ----
ns_obj lab '{"team": "a"}'
ns_obj other '{"team": "b"}'
# client -> server:8080 only; server <- client:8080 only (policy.default: allow).
netpol server '{"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
	"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
	"ports": [{"protocol": "TCP", "port": 8080}]}]}'
netpol client '{"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
	"egress": [{"to": [{"podSelector": {"matchLabels": {"app": "server"}}}],
	"ports": [{"protocol": "TCP", "port": 8080}]}]}'
pod_obj remote node-2 "$REMOTE_IP" '{"app": "client"}'
in_ext ip addr add "$REMOTE_IP/24" dev ext0
in_ext ip route add "$PODNET" via "$LAB_NODE_IP"

# ---- readiness: not before the watches synced ----
stop_api
lab_agent_start || {
	tap_fail "ztagent starts (kubernetes.enabled)"
	exit 1
}
tap_ok "ztagent starts with kubernetes.enabled while the API server is down"
sleep 0.6
check "/healthz answers 200 while the loop turns" test "$(probe /healthz)" = 200
check "/readyz answers 503 before the watches have synced" test "$(probe /readyz)" = 503
start_api
check "/readyz answers 200 once every watch has synced (within 10 s)" \
	within 10 ok eval '[ "$(probe /readyz)" = 200 ]'
timing "ready after the API server came up"
check "the log says which kinds synced" \
	test "$(grep -c 'k8s_synced' "$LAB_LOG")" -ge 4

# ---- pods through the CNI plugin, announced by the API server ----
for p in server client other; do
	pod_obj "$p" lab-node "" "{\"app\": \"$p\"}" # scheduled to this node, no address yet
done
sleep 0.3
for p in server client other; do
	cpod_new "$p"
	if ! cni ADD "$p" >"$LAB_DIR/add-$p.out" 2>&1; then
		tap_fail "CNI ADD $p"
		cat "$LAB_DIR/add-$p.out" | sed 's/^/# /'
	fi
done
SERVER=$(pod_ip server)
CLIENT=$(pod_ip client)
OTHER=$(pod_ip other)
check "ptp + host-local gave the three pods addresses in $PODNET" \
	test -n "$SERVER" -a -n "$CLIENT" -a -n "$OTHER"
for p in server other; do
	lab_bg_in "${LAB_ID}-$p" nc -lk "$(pod_ip $p)" 8080
done
ep_labels() { ztctl endpoint list -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["endpoints"]:
    if e["name"] == sys.argv[1]:
        print(e.get("origin"), e.get("pending"), ",".join("%s=%s" % (k, v) for k, v in sorted(e.get("labels", {}).items())) if isinstance(e.get("labels"), dict) else e.get("labels"))' "$1"; }
echo "# endpoint server: $(ep_labels server)"
check "the CNI endpoint started with its labels from the watch (origin cni, not pending)" \
	eval '[[ "$(ep_labels server)" == "cni False app=server" || "$(ep_labels server)" == cni\ False* ]]'
# The API server announces the addresses (as the kubelet reports podIPs).
for p in server client other; do
	pod_obj "$p" lab-node "$(pod_ip $p)" "{\"app\": \"$p\"}"
done
check "client -> server:8080 allowed (within 1 s of the announcement)" \
	within 1 ok conn client "$SERVER" 8080
timing "client -> server allowed"
check "client -> other:8080 denied (client's egress is only to app=server)" \
	within 1 denied conn client "$OTHER" 8080
check "other -> server:8080 denied (server's ingress is only from app=client)" \
	within 1 denied conn other "$SERVER" 8080
check "the node still reaches the server pod" in_node timeout 1 bash -c "exec 3<>/dev/tcp/$SERVER/8080"

# ---- a sandbox before the API server announced its pod: pending, then its labels ----
cpod_new late
cni ADD late >"$LAB_DIR/add-late.out" 2>&1 || sed 's/^/# /' "$LAB_DIR/add-late.out"
LATE=$(pod_ip late)
echo "# endpoint late: $(ep_labels late)"
check "a CNI ADD for a pod the watch does not know yet registers it pending" \
	eval '[[ "$(ep_labels late)" == "cni True"* ]]'
check "... and its first connection is denied (pending posture: deny)" \
	within 1 denied conn late "$SERVER" 8080
pod_obj late lab-node "$LATE" '{"app": "client"}'
check "announced (app=client): late -> server:8080 allowed within 1 s" \
	within 1 ok conn late "$SERVER" 8080
timing "pending -> labelled and allowed"
check "... its endpoint has left pending with the pod's labels" \
	eval '[ "$(ep_labels late)" = "cni False app=client" ]'

# ---- a pod of another node, matched by its labels ----
check "remote pod $REMOTE_IP (node-2, app=client) -> server:8080 allowed by its labels" \
	within 1 ok conn_ext "$REMOTE_IP" "$SERVER" 8080
check "the world ($LAB_EXT_IP, same link, no pod) -> server:8080 denied" \
	within 1 denied conn_ext "$LAB_EXT_IP" "$SERVER" 8080
check "client -> remote pod: egress to app=client is not allowed (denied, as its identity says)" \
	within 1 denied conn client "$REMOTE_IP" 8080

# ---- policy objects through the API server ----
check "ztctl policy list names the objects k8s:NetworkPolicy/lab/server" \
	eval 'ztctl policy list -o json | grep -q "k8s:NetworkPolicy/lab/server"'
netpol server-from-other '{"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
	"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "other"}}}],
	"ports": [{"protocol": "TCP", "port": 8080}]}]}'
check "NetworkPolicy server-from-other added: other -> server allowed within 1 s" \
	within 1 ok conn other "$SERVER" 8080
timing "NetworkPolicy add -> allowed"
delnetpol server-from-other
check "NetworkPolicy server-from-other deleted: other -> server denied within 1 s" \
	within 1 denied conn other "$SERVER" 8080
timing "NetworkPolicy delete -> denied"
check "policy explain names the deciding object" \
	eval 'ztctl policy explain --from lab/client --to lab/server --port 8080/TCP | grep -q "k8s:NetworkPolicy/lab/server"'
# A bad object is refused alone; the others stay in force.
netpol broken '{"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Sideways"]}'
sleep 0.3
check "an invalid NetworkPolicy is refused and logged with its kind/namespace/name" \
	grep -q 'k8s_policy_rejected object=k8s:NetworkPolicy/lab/broken' "$LAB_LOG"
check "... and the others stay in force (client -> server allowed, other -> server denied)" \
	eval 'conn client "$SERVER" 8080 && ! conn other "$SERVER" 8080'
delnetpol broken

# A ZeroTrustPolicy (the CRD) through the same path: a deny rule wins over the NetworkPolicy's allow.
ctl apply '{"resource": "zerotrustpolicies", "object": {"metadata": {"name": "no-client", "namespace": "lab"},
	"spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
	"ingress": [{"action": "deny", "from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}}}'
check "ZeroTrustPolicy no-client added: client -> server denied within 1 s (deny wins)" \
	within 1 denied conn client "$SERVER" 8080
check "... and policy list names it k8s:ZeroTrustPolicy/lab/no-client" \
	eval 'ztctl policy list -o json | grep -q "k8s:ZeroTrustPolicy/lab/no-client"'
ctl delete '{"resource": "zerotrustpolicies", "namespace": "lab", "name": "no-client"}'
check "ZeroTrustPolicy deleted: client -> server allowed again within 1 s" \
	within 1 ok conn client "$SERVER" 8080

# ---- relabelling ----
pod_obj other lab-node "$OTHER" '{"app": "client"}'
check "pod other relabelled app=client: other -> server allowed within 1 s" \
	within 1 ok conn other "$SERVER" 8080
timing "pod relabel -> allowed"
pod_obj other lab-node "$OTHER" '{"app": "other"}'
check "relabelled back: other -> server denied within 1 s" \
	within 1 denied conn other "$SERVER" 8080
netpol server-from-team-x '{"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
	"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}],
	"ports": [{"protocol": "TCP", "port": 8080}]}]}'
check "with a namespaceSelector team=x, other (namespace lab, team=a) is still denied" \
	stays 1 denied conn other "$SERVER" 8080
ns_obj lab '{"team": "x"}'
check "namespace lab relabelled team=x: other -> server allowed within 1 s" \
	within 1 ok conn other "$SERVER" 8080
timing "namespace relabel -> allowed"
ns_obj lab '{"team": "a"}'
check "namespace relabelled back: other -> server denied within 1 s" \
	within 1 denied conn other "$SERVER" 8080
delnetpol server-from-team-x

# ---- a restart: the cluster's policies are in force from its first generation ----
# Pollers try other -> server (denied by NetworkPolicy server) through the
# whole restart; without the kept objects the first generation would have
# no NetworkPolicy and let them through until the watches listed again.
gap_poll() {
	local n=0
	while [ ! -e "$LAB_DIR/gap.stop" ]; do
		in_pod other timeout 0.1 bash -c "exec 3<>/dev/tcp/$SERVER/8080" 2>/dev/null && n=$((n + 1))
	done
	echo "$n" >"$LAB_DIR/gap.$1"
}
# The API server answers each LIST page 1 s late: the agent's wait for the
# cluster's view is long enough for the pollers to see any gap.
ctl set '{"list_delay": 1.0}'
rm -f "$LAB_DIR"/gap.*
GAP_PIDS=()
for i in 1 2 3; do
	gap_poll "$i" &
	GAP_PIDS+=($!)
	sleep 0.03
done
lab_agent_stop
lab_agent_start || tap_fail "ztagent restarts"
within 10 ok eval '[ "$(probe /readyz)" = 200 ]'
sleep 0.5
touch "$LAB_DIR/gap.stop"
wait "${GAP_PIDS[@]}"
ctl set '{"list_delay": 0}'
gaps=$(cat "$LAB_DIR"/gap.[123] 2>/dev/null | paste -sd+ | bc)
echo "# connections other -> server that got through during the restart: ${gaps:-?}"
check "a restart lets no denied connection through (the kept objects are in its first generation)" \
	test "${gaps:-1}" = 0
check "the log says the kept Kubernetes policies were loaded" grep -q k8s_policy_cache_loaded "$LAB_LOG"

# ---- SIGKILL, changes while down, restart ----
kill -KILL "$LAB_AGENT_PID"
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=
check "after SIGKILL the enforcement stays (other -> server denied, client -> server allowed)" \
	eval '! conn other "$SERVER" 8080 && conn client "$SERVER" 8080'
pod_obj other lab-node "$OTHER" '{"app": "client"}'                 # other may now reach server
pod_obj remote node-2 "$REMOTE_IP" '{"app": "batch"}'               # the remote pod is no client now
netpol server-from-other '{"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
	"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "batch"}}}],
	"ports": [{"protocol": "TCP", "port": 9999}]}]}'
delnetpol client # client's egress is no longer restricted
sleep 0.3
check "while the agent is down, the kernel still has the old verdicts (other -> server denied)" \
	eval '! conn other "$SERVER" 8080'
lab_agent_start || tap_fail "ztagent restarts"
check "restarted: other (now app=client) -> server allowed (within 5 s)" \
	within 5 ok conn other "$SERVER" 8080
timing "restart -> converged (pod relabel)"
check "restarted: the remote pod (now app=batch) -> server denied" \
	within 2 denied conn_ext "$REMOTE_IP" "$SERVER" 8080
check "the denial names the pod of the other node (src_workload=lab/remote), not the world" \
	within 2 ok grep -q "src=$REMOTE_IP .*src_workload=lab/remote " "$LAB_LOG"
check "restarted: the deleted NetworkPolicy client is gone (client -> other:8080 allowed)" \
	within 2 ok conn client "$OTHER" 8080
check "restarted: /readyz 200" within 5 ok eval '[ "$(probe /readyz)" = 200 ]'
check "the CNI endpoints were adopted (4 endpoints, none pending)" \
	eval '[ "$(ztctl endpoint list -o json | python3 -c "import json,sys; e=json.load(sys.stdin)[\"endpoints\"]; print(len(e), sum(1 for x in e if x.get(\"pending\")))")" = "4 0" ]'

# ---- a pod removed ----
cni DEL other >/dev/null 2>&1
ctl delete '{"resource": "pods", "namespace": "lab", "name": "other"}'
check "CNI DEL removes the endpoint" \
	eval '! ztctl endpoint list -o json | grep -q "\"name\": *\"other\""'
check "the agent is still running" kill -0 "$LAB_AGENT_PID"
check "no error in the agent's log" eval '! grep -E "level=error" "$LAB_LOG" | grep -v k8s_policy_rejected | grep -q .'
grep -E "level=(error|warn)" "$LAB_LOG" | head -20 | sed 's/^/# /'
echo "1..$TAP_N"
