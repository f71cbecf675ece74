#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Workload mTLS peers learned from the cluster (TAP): two real agents with
# kubernetes.enabled and NO mtls.peers watch the test API server's Node
# objects (tests/k8s/apiserver.py, on the router) and map each node's
# spec.podCIDRs to its InternalIP. Checked with real connections:
#   - before node b's podCIDR covers the server pod, a requireMutualAuth
#     connection is refused (no_route, counted) and nothing is delivered
#   - node b's podCIDR changed to cover it: the connection goes through the
#     tunnel at once (no mtls.peers configured); ztctl mtls status names the
#     peer, its node and source k8s, and this node as self
#   - a node whose podCIDR overlaps node b's is refused (both named in the
#     log) and node b's mapping is kept (the connection still works)
#   - node b moves away: the waiting node takes the CIDR (re-routed: the
#     tunnel now goes to its address, where no agent listens: reset)
#   - node b deleted: flows to its pods fail closed (reset, no_route
#     counted, nothing delivered); re-added: they work again
#   - a pod outside every node's podCIDR is routed to its node's agent by
#     the pod watch (spec.nodeName), and refused again once it is deleted
#   - IPv6 pods (2001:2::/48): node b's IPv6 podCIDR maps to its IPv4
#     InternalIP (the agents meet over IPv4); refused before it covers the
#     pod, through the tunnel after, delivered from the client's IPv6 address
#   - a pod outside every podCIDR with IPv4 and IPv6 status.podIPs (pod sx,
#     198.18.12.10 and 2001:2:0:12::10): both addresses routed to its node's
#     agent; with node a in mtls.mode strict, its traffic that no rule marks
#     (port 7001) is carried by the tunnel too (node b, in mode policy,
#     keeps the pod's replies for its agent), and is no longer once the pod
#     is deleted, also when it is deleted while node a's agent is away (the
#     pinned strict set is swept of it at the restart)
#   - IPv6-only nodes (InternalIPs 2001:2:0:100::1, 2001:2:0:101::1, node
#     a's IPv4 route to node b prohibited): the agents meet over IPv6, IPv4
#     and IPv6 pods alike; dual-stack nodes keep meeting over IPv4
#
#   ns A (node-a, ztagent)        ns R (router, API server)       ns B (node-b, ztagent)
#   pod cl 198.18.1.10 ─ v-cl   uplink 198.18.100.1 ═ .254 | .254 ═ 198.18.101.1 uplink   v-sv ─ pod sv 198.18.2.10
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/integration/twonode.bash"
ZTAGENT="$ROOT/build/ztagent"
ZTCTL="$ROOT/build/ztctl"
ID="ztmk$$"
A="$ID-a" R="$ID-r" B="$ID-b"
PODS=("$ID-cl" "$ID-sv" "$ID-sx")
DIR=$(mktemp -d /tmp/ztagent-mtlsk8s.XXXXXX)
PIDS=()
TD=cluster.local
API_IP=198.18.100.254 # the router's address on node a's link (twonode.bash)
n=0

cleanup() {
	set +e
	twonode_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in python3 openssl curl; do
	command -v $tool >/dev/null || bail "$tool is missing: run 'make deps'"
done
[ -x "$ZTAGENT" ] && [ -x "$ZTCTL" ] || bail "build first: make"
PY=$(python3 -c 'import sys; print(sys.executable)')

# --- certificates: the trust domain, and the API server's ---
"$ZTCTL" ca init --trust-domain $TD --out "$DIR/ca" >/dev/null &&
	"$ZTCTL" ca issue-node node-a --ca "$DIR/ca" --out "$DIR/node-a" --days 2 >/dev/null &&
	"$ZTCTL" ca issue-node node-b --ca "$DIR/ca" --out "$DIR/node-b" --days 2 >/dev/null ||
	bail "ztctl ca makes the certificates"
bash "$ROOT/tests/k8s/mkcerts.sh" "$DIR/pki" "IP:$API_IP" || bail "the API server's certificates"

# --- namespaces: the two-node lab (tests/integration/twonode.bash) ---
twonode_make
pod "$A" cl 198.18.1.10 2001:2:0:1::10
pod "$B" sv 198.18.2.10 2001:2:0:2::10
# sx: addresses in no node's podCIDR, ever (a CNI's own IPAM pool)
pod "$B" sx 198.18.12.10 2001:2:0:12::10
ip -n "$R" route add 198.18.12.0/24 via 198.18.101.1
ip -n "$R" -6 route add 2001:2:0:12::/64 via 2001:2:0:101::1

# --- the API server on the router, reachable from both nodes ---
bg "$R" "$PY" "$ROOT/tests/k8s/apiserver.py" --address $API_IP --port 0 --ctl-port 0 \
	--cert "$DIR/pki/server.pem" --key "$DIR/pki/server.key" --token-file "$DIR/token" \
	--port-file "$DIR/ports" >"$DIR/apiserver.log" 2>&1
wait_for 10 test -s "$DIR/ports" || bail "the API server starts ($(cat "$DIR/apiserver.log"))"
read -r API_PORT CTL_PORT <"$DIR/ports"
ctl() { ip netns exec "$R" curl -sf -X POST "http://127.0.0.1:$CTL_PORT/$1" -d "$2" >/dev/null; }
node_obj() { # node_obj NAME PODCIDR INTERNAL_IP [PODCIDR6 [INTERNAL_IP2]]
	local ip2=""
	[ -n "${5:-}" ] && ip2=", {\"type\": \"InternalIP\", \"address\": \"$5\"}"
	ctl apply "{\"resource\": \"nodes\", \"object\": {\"metadata\": {\"name\": \"$1\"},
		\"spec\": {\"podCIDR\": \"$2\", \"podCIDRs\": [\"$2\"${4:+, \"$4\"}]},
		\"status\": {\"addresses\": [{\"type\": \"Hostname\", \"address\": \"$1\"},
		{\"type\": \"InternalIP\", \"address\": \"$3\"}$ip2]}}}"
}
del_node() { ctl delete "{\"resource\": \"nodes\", \"name\": \"$1\"}"; }
cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: lab
contexts: [{name: lab, context: {cluster: lab, user: agent}}]
clusters: [{name: lab, cluster: {server: "https://$API_IP:$API_PORT", certificate-authority: "$DIR/pki/ca.pem"}}]
users: [{name: agent, user: {tokenFile: "$DIR/token"}}]
EOF
node_obj node-a 198.18.1.0/24 198.18.100.1 2001:2:0:1::/64 &&
	node_obj node-b 198.18.9.0/24 198.18.101.1 || bail "the Node objects"

# --- agents: kubernetes on, mtls.peers NOT set ---
conf() { # conf NODE
	mkdir -p "$DIR/bpffs-$1" "$DIR/pol-$1"
	mountpoint -q "$DIR/bpffs-$1" || mount -t bpf bpf "$DIR/bpffs-$1"
	cat >"$DIR/$1.yaml" <<EOC
node: node-$1
bpffs: $DIR/bpffs-$1/ztagent
api_socket: $DIR/$1.sock
state_dir: $DIR/state-$1
policy:
  dir: $DIR/pol-$1
  default: allow
xdp:
  interfaces: [uplink]
  mode: generic
kubernetes:
  enabled: true
  kubeconfig: $DIR/kubeconfig
  node_name: node-$1
  pending_posture: allow
mtls:
  mode: policy
  trust_domain: $TD
  ca_bundle: $DIR/node-$1/bundle.pem
  node_cert: $DIR/node-$1/node.pem
  node_key: $DIR/node-$1/node.key
  port: 15008
EOC
}
conf a
conf b
cat >"$DIR/pol-a/client.yaml" <<'EOF'
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: client-to-server, namespace: shop}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
    - action: allow
      to: [{ipBlock: {cidr: 198.18.2.0/24}}, {ipBlock: {cidr: "2001:2:0:2::/64"}},
           {ipBlock: {cidr: 198.18.12.0/24}}, {ipBlock: {cidr: "2001:2:0:12::/64"}}]
      ports: [{protocol: TCP, port: 7000}]
      requireMutualAuth: true
    - action: allow
      to: [{ipBlock: {cidr: 0.0.0.0/0}}, {ipBlock: {cidr: "::/0"}}]
EOF
cat >"$DIR/pol-b/server.yaml" <<'EOF'
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: server-mtls, namespace: shop}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - action: allow
      from: [{ipBlock: {cidr: 198.18.0.0/15}}, {ipBlock: {cidr: "2001:2::/48"}}]
      ports: [{protocol: TCP, port: 7000}]
      requireMutualAuth: true
    - action: allow
      from: [{ipBlock: {cidr: 198.18.0.0/15}}, {ipBlock: {cidr: "2001:2::/48"}}]
      ports: [{protocol: TCP, port: 7001}]
EOF
grep -q peers "$DIR/a.yaml" "$DIR/b.yaml" && bail "the configurations must not name mtls.peers"
start_agent() { # start_agent a|b
	local ns=$A
	[ "$1" = b ] && ns=$B
	bg "$ns" "$ZTAGENT" --config "$DIR/$1.yaml"
	eval "AGENT_${1^^}=$LAST"
	wait_for 15 "ztctl_$1" status >/dev/null 2>&1
}
start_agent a >>"$DIR/a.log" 2>&1 || bail "agent a starts: $(cat "$DIR/a.log")"
start_agent b >>"$DIR/b.log" 2>&1 || bail "agent b starts: $(cat "$DIR/b.log")"
ztctl_a endpoint add --ifname v-cl --ip 198.18.1.10,2001:2:0:1::10 --labels app=client --namespace shop \
	--name client --service-account web >/dev/null &&
	ztctl_b endpoint add --ifname v-sv --ip 198.18.2.10,2001:2:0:2::10 --labels app=server --namespace shop \
		--name server --service-account db >/dev/null &&
	ztctl_b endpoint add --ifname v-sx --ip 198.18.12.10,2001:2:0:12::10 --labels app=server \
		--namespace shop --name server-x --service-account db >/dev/null || bail "endpoints"

bg "$ID-sv" "$PY" "$ROOT/tests/integration/mtls_echo.py" 7000 "$DIR/sv.peers"
bg "$ID-sv" "$PY" "$ROOT/tests/integration/mtls_echo.py" 7000 "$DIR/sv.peers6" 6
bg "$ID-sx" "$PY" "$ROOT/tests/integration/mtls_echo.py" 7000 "$DIR/sx.peers"
bg "$ID-sx" "$PY" "$ROOT/tests/integration/mtls_echo.py" 7000 "$DIR/sx.peers6" 6
bg "$ID-sx" "$PY" "$ROOT/tests/integration/mtls_echo.py" 7001 "$DIR/sx7001.peers"
bg "$ID-sx" "$PY" "$ROOT/tests/integration/mtls_echo.py" 7001 "$DIR/sx7001.peers6" 6
touch "$DIR/sv.peers" "$DIR/sv.peers6" "$DIR/sx.peers" "$DIR/sx.peers6"
sayx() { # sayx DST PORT TEXT: cl -> pod sx
	ip netns exec "$ID-cl" timeout 10 "$PY" "$ROOT/tests/integration/mtls_say.py" "$1" "$2" "$3" 2>>"$DIR/say.err"
}
echoesx() { test "$(sayx "$1" "$2" "$3")" = "$3"; }
say6() { ip netns exec "$ID-cl" timeout 10 "$PY" "$ROOT/tests/integration/mtls_say.py" 2001:2:0:2::10 7000 "$1" 2>>"$DIR/say.err"; }
echoes6() { test "$(say6 "$1")" = "$1"; }
refused6() { ! echoes6 "$1"; }
say() { ip netns exec "$ID-cl" timeout 10 "$PY" "$ROOT/tests/integration/mtls_say.py" 198.18.2.10 7000 "$1" 2>>"$DIR/say.err"; }
echoes() { test "$(say "$1")" = "$1"; }
refused() { ! echoes "$1"; }
delivered() { wc -l <"$DIR/sv.peers"; }
has_peer() { # has_peer NODE CIDR AGENT SOURCE K8S-NODE
	js "$1" "any(p['cidr']=='$2' and p['agent']=='$3' and p['source']=='$4' and p['node']=='$5' and not p['problem'] for p in d['peers'])" |
		grep -q True
}
synced() { grep -q 'k8s_synced kind=Node' "$DIR/$1.log"; }
check "both agents list the Node objects (no mtls.peers in their configuration)" \
	wait_for 15 eval 'synced a && synced b'

has_svid() { js "$1" "any(s['id']=='spiffe://$TD/ns/shop/sa/$2' for s in d['svids'])" | grep -q True; }
# The agents take their workloads into the tunnel's view once a second: before that a pod's
# connection is refused as steered_no_source, not for want of a peer.
check "node a holds the client's SVID, node b the server's" \
	wait_for 10 eval 'has_svid a web && has_svid b db'

# --- 1. node b's podCIDR does not hold the server pod yet: no agent speaks for it ---
nr0=$(js a "d['traffic']['steered_no_route']")
d0=$(delivered)
check "before node b's podCIDR holds 198.18.2.10: the connection is refused" \
	refused before-1
check "... counted as steered_no_route on node a" \
	test "$(js a "d['traffic']['steered_no_route']")" -gt "${nr0:-0}"
check "... and nothing was delivered" test "$(delivered)" -eq "$d0"
nr0=$(js a "d['traffic']['steered_no_route']")
check "over IPv6 too (2001:2:0:2::10 in no node's podCIDRs): refused" refused6 before6
check "... counted as steered_no_route on node a" \
	test "$(js a "d['traffic']['steered_no_route']")" -gt "${nr0:-0}"
check "... and nothing was delivered over IPv6" test "$(wc -l <"$DIR/sv.peers6")" -eq 0

# --- 2. the podCIDR changes: routed at once, mtls.peers still empty ---
t0=$(date +%s%3N)
node_obj node-b 198.18.2.0/24 198.18.101.1 2001:2:0:2::/64
check "node a learns 198.18.2.0/24 -> node-b's agent 198.18.101.1 from the Node (source k8s)" \
	wait_for 5 has_peer a 198.18.2.0/24 198.18.101.1 k8s node-b
check "a cross-node requireMutualAuth connection works with no mtls.peers" echoes "learned-$$"
check "node a learns 2001:2:0:2::/64 -> node-b's IPv4 agent 198.18.101.1 from the same Node" \
	has_peer a 2001:2:0:2::/64 198.18.101.1 k8s node-b
check "an IPv6 requireMutualAuth connection works through the tunnel with no mtls.peers" \
	echoes6 "learned6-$$"
check "... the server pod sees the client pod's IPv6 address" \
	grep -qx "peer=2001:2:0:1::10" "$DIR/sv.peers6"
t1=$("$PY" -c 'import sys, datetime
for l in open(sys.argv[1]):
    if "event=mtls_peer_set node=node-b cidr=198.18.2.0/24" in l:
        ts = l.split()[0][3:].rstrip("Z")
        print(int(datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)); break' "$DIR/a.log")
echo "# the Node change was in node a's peer table $((${t1:-0} - t0)) ms after the API server was asked"
check "the server pod sees the client pod's address" grep -q "peer=198.18.1.10" "$DIR/sv.peers"
check "node b completed the handshake (the tunnel was used)" \
	test "$(js b "d['handshakes']['full']+d['handshakes']['resumed']")" -gt 0
check "node a recognises its own node (self, no tunnel to itself)" \
	test "$(js a "sorted(set(p['self'] for p in d['peers'] if p['node']=='node-a'))")" = "[True]"
ztctl_a mtls status >"$DIR/status.txt" 2>&1
check "ztctl mtls status shows the peers with their source and node" \
	grep -qE '198\.18\.2\.0/24 +198\.18\.101\.1:15008 +k8s +node-b' "$DIR/status.txt"
sed -n '1,8p' "$DIR/status.txt" | sed 's/^/# /'

# --- 3. an overlapping node: refused, both named, node b's mapping kept ---
node_obj node-c 198.18.2.0/25 $API_IP
check "a node whose podCIDR overlaps node b's is reported, naming both" \
	wait_for 5 grep -qE 'mtls_peer_overlap node=node-c cidr=198\.18\.2\.0/25 other_node=node-b other_cidr=198\.18\.2\.0/24' "$DIR/a.log"
check "... and node b's mapping is kept: the connection still works" echoes "kept-$$"
check "... status counts the refused overlap" test "$(js a "d['peer_overlaps']")" -ge 1

# --- 4. node b moves away: node c's waiting CIDR applies, flows go to node c's address ---
node_obj node-b 198.18.3.0/24 198.18.101.1
check "node b's podCIDR change re-routes: 198.18.2.0/25 now goes to node-c ($API_IP)" \
	wait_for 5 has_peer a 198.18.2.0/25 $API_IP k8s node-c
d0=$(delivered)
check "... where no agent listens: the pod's connection is reset" refused rerouted
check "... and nothing reached the server pod" test "$(delivered)" -eq "$d0"

# --- 5. node deleted: its pods' flows fail closed ---
del_node node-c
node_obj node-b 198.18.2.0/24 198.18.101.1
check "node c deleted, node b back on 198.18.2.0/24: works again" \
	wait_for 5 eval 'has_peer a 198.18.2.0/24 198.18.101.1 k8s node-b && echoes back-$$'
nr0=$(js a "d['traffic']['steered_no_route']")
d0=$(delivered)
del_node node-b
check "node b deleted: its peer entry is gone" \
	wait_for 5 eval "test \"\$(js a \"[p for p in d['peers'] if p['node']=='node-b']\")\" = '[]'"
check "... a flow to its pod fails closed (refused)" refused deleted
check "... counted as steered_no_route" test "$(js a "d['traffic']['steered_no_route']")" -gt "${nr0:-0}"
check "... nothing delivered" test "$(delivered)" -eq "$d0"
node_obj node-b 198.18.2.0/24 198.18.101.1
check "node b re-added: the connection works again" wait_for 5 echoes "readded-$$"

# --- 6. a pod outside every podCIDR (a CNI with its own IPAM pools): its node from the pod watch ---
node_obj node-b 198.18.9.0/24 198.18.101.1
check "node b's podCIDR no longer holds the server pod: refused" \
	wait_for 5 eval '! echoes outside-$$'
ctl apply '{"resource": "namespaces", "object": {"metadata": {"name": "shop"}}}'
ctl apply '{"resource": "pods", "object": {"metadata": {"name": "server-api", "namespace": "shop"},
	"spec": {"nodeName": "node-b", "containers": [{"name": "main", "image": "busybox"}]},
	"status": {"phase": "Running", "podIP": "198.18.2.10", "podIPs": [{"ip": "198.18.2.10"}]}}}'
check "the pod watch says 198.18.2.10 is a pod of node-b: the tunnel goes to node b's agent" \
	wait_for 5 echoes "by-pod-$$"
check "... status counts the pod addresses known" test "$(js a "d['peer_pod_addresses']")" -ge 1
ctl delete '{"resource": "pods", "namespace": "shop", "name": "server-api"}'
check "the pod deleted: refused again" wait_for 5 eval '! echoes pod-gone-$$'
# --- 7. pod sx, outside every podCIDR, known by the pod watch with both families of podIPs ---
nr0=$(js a "d['traffic']['steered_no_route']")
check "before the pod watch knows pod sx: [2001:2:0:12::10]:7000 is refused" \
	eval '! echoesx 2001:2:0:12::10 7000 sx-before6'
check "... counted as steered_no_route" test "$(js a "d['traffic']['steered_no_route']")" -gt "${nr0:-0}"
pod_sx() {
	ctl apply '{"resource": "pods", "object": {"metadata": {"name": "server-x", "namespace": "shop",
		"labels": {"app": "server"}},
	"spec": {"nodeName": "node-b", "serviceAccountName": "db",
		"containers": [{"name": "main", "image": "busybox"}]},
	"status": {"phase": "Running", "podIP": "198.18.12.10",
		"podIPs": [{"ip": "198.18.12.10"}, {"ip": "2001:2:0:12::10"}]}}}'
}
pod_sx
check "the pod watch gives pod sx to node-b: 198.18.12.10:7000 goes through the tunnel" \
	wait_for 5 echoesx 198.18.12.10 7000 sx-by-pod-$$
check "... status counts both of its addresses" test "$(js a "d['peer_pod_addresses']")" -ge 2
check "its IPv6 podIP too: [2001:2:0:12::10]:7000 goes through the tunnel" \
	echoesx 2001:2:0:12::10 7000 sx-by-pod6-$$
check "... delivered from the client pod's IPv6 address" grep -qx "peer=2001:2:0:1::10" "$DIR/sx.peers6"

# --- 8. mtls.mode strict on node a: pod sx's traffic that no rule marks is carried too ---
# (Node b stays in mode policy with no requirement on 7001: the flow is still the agent's there,
# as its agent delivered it, so the pod's replies go back to the agent.)
kill -TERM "$AGENT_A"
wait "$AGENT_A" 2>/dev/null
sed -i 's/^  mode: policy$/  mode: strict/' "$DIR/a.yaml"
start_agent a >>"$DIR/a.log" 2>&1 || bail "agent a restarts in mode strict"
pod_addrs() { js a "d['peer_pod_addresses']"; }
check "node a runs in mode strict and knows pod sx's addresses again" \
	wait_for 15 eval 'test "$(pod_addrs)" -ge 2 && has_svid a web'
strict_via_tunnel() { # strict_via_tunnel DST TEXT LOG PEER
	local st0 op0
	st0=$(js a "d['datapath']['steered']") op0=$(js b "d['traffic']['tunnels_opened']")
	echoesx "$1" 7001 "$2" && grep -qx "peer=$4" "$3" &&
		test "$(js a "d['datapath']['steered']")" -gt "$st0" &&
		test "$(js b "d['traffic']['tunnels_opened']")" -gt "$op0"
}
check "strict: 198.18.12.10:7001 (no rule asks for mTLS) is steered and carried by the tunnel" \
	wait_for 5 strict_via_tunnel 198.18.12.10 sx-strict-$$ "$DIR/sx7001.peers" 198.18.1.10
check "strict: [2001:2:0:12::10]:7001 too" \
	wait_for 5 strict_via_tunnel 2001:2:0:12::10 sx-strict6-$$ "$DIR/sx7001.peers6" 2001:2:0:1::10
ctl delete '{"resource": "pods", "namespace": "shop", "name": "server-x"}'
gone() { test "$(pod_addrs)" -eq 0; }
in_clear() { # in_clear DST TEXT: answers, and node a did not steer it
	local st0
	st0=$(js a "d['datapath']['steered']")
	echoesx "$1" 7001 "$2" && test "$(js a "d['datapath']['steered']")" -eq "$st0"
}
check "pod sx deleted: its addresses leave node a's strict set (7001 answers, not steered)" \
	eval 'wait_for 5 gone && in_clear 198.18.12.10 sx-gone-$$ && in_clear 2001:2:0:12::10 sx-gone6-$$'
# The strict set is pinned and outlives the agent: a pod deleted while agent a is away must
# not leave its addresses behind when it comes back.
pod_sx
check "pod sx again: steered in strict mode" \
	wait_for 5 strict_via_tunnel 198.18.12.10 sx-again-$$ "$DIR/sx7001.peers" 198.18.1.10
kill -TERM "$AGENT_A"
wait "$AGENT_A" 2>/dev/null
ctl delete '{"resource": "pods", "namespace": "shop", "name": "server-x"}'
start_agent a >>"$DIR/a.log" 2>&1 || bail "agent a restarts"
check "pod sx deleted while agent a was away: its addresses leave the strict set at its restart" \
	eval 'wait_for 15 has_svid a web && wait_for 5 in_clear 198.18.12.10 sx-away-$$ &&
		in_clear 2001:2:0:12::10 sx-away6-$$'
check "... and the sweep is logged" grep -q 'mtls_peer_pods_swept.*removed=2' "$DIR/a.log"

# --- 9. IPv6-only nodes: the agents meet over IPv6 ---
# Node a's IPv4 route to node b's address prohibited: only IPv6 joins the agents.
ip -n "$A" route add prohibit 198.18.101.1/32
node_obj node-a 198.18.1.0/24 2001:2:0:100::1 2001:2:0:1::/64
node_obj node-b 198.18.2.0/24 2001:2:0:101::1 2001:2:0:2::/64
check "IPv6-only nodes: node a maps 198.18.2.0/24 to node b's IPv6 InternalIP" \
	wait_for 5 has_peer a 198.18.2.0/24 2001:2:0:101::1 k8s node-b
check "... and 2001:2:0:2::/64 too" has_peer a 2001:2:0:2::/64 2001:2:0:101::1 k8s node-b
check "an IPv4 pod connection crosses through the tunnel over the IPv6 node network" \
	echoes "v6nodes-$$"
check "an IPv6 pod connection too" echoes6 "v6nodes6-$$"
ztctl_a mtls status >"$DIR/status6.txt" 2>&1
check "ztctl mtls status writes the IPv6 agent in brackets" \
	grep -qE '198\.18\.2\.0/24 +\[2001:2:0:101::1\]:15008 +k8s +node-b' "$DIR/status6.txt"
node_obj node-a 198.18.1.0/24 198.18.100.1 2001:2:0:1::/64 2001:2:0:100::1
node_obj node-b 198.18.2.0/24 2001:2:0:101::1 2001:2:0:2::/64 198.18.101.1
check "dual-stack nodes keep meeting over IPv4 (node b's IPv4 InternalIP, listed second)" \
	wait_for 5 has_peer a 198.18.2.0/24 198.18.101.1 k8s node-b
ip -n "$A" route del prohibit 198.18.101.1/32
check "... and the connection goes through over IPv4" echoes "dual-$$"
check "no error in the agents' logs but the overlap" \
	bash -c "! grep -h 'level=error' '$DIR/a.log' '$DIR/b.log' | grep -v mtls_peer_overlap | grep -q ."
grep -h 'level=error' "$DIR/a.log" "$DIR/b.log" | grep -v mtls_peer_overlap | head -5 | sed 's/^/# /'
echo "1..$n"
