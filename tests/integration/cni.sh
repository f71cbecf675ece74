#!/usr/bin/env bash
# Integration: ztagent-cni exactly as a container runtime runs it, chained
# after Debian's real containernetworking-plugins (ptp + host-local) in the
# lab's node namespace. A small driver does what libcni does: ADD through
# each plugin in order, passing each result on as prevResult; CHECK and DEL
# (in reverse order) with the cached result. Checked: ADD registers the pod
# (origin cni, pod UID) and echoes the primary's result byte for byte; the
# pod's first packet is enforced (pending posture: a connection right after
# ADD is dropped, and the verdict names the pending posture; the node still
# reaches the pod); its labels arriving let it reach its allowed peer;
# CHECK; DEL twice; DEL with the daemon down, applied at its next start;
# ADD with the daemon down fails with CNI error 11; a prevResult without the
# host interface is resolved through the pod's namespace (the peer of eth0).
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

lab_init cni
POL="$LAB_DIR/policies"
mkdir -p "$POL" "$LAB_DIR/cni-bin" "$LAB_DIR/ipam" "$LAB_DIR/cache"
ln -s "$CNI_BIN_DIR/ptp" "$CNI_BIN_DIR/host-local" "$LAB_DIR/cni-bin/"
ln -s "$LAB_ROOT/build/ztagent-cni" "$LAB_DIR/cni-bin/ztagent-cni"
export CNI_PATH="$LAB_DIR/cni-bin"

SERVER=198.18.3.10
lab_pod server $SERVER
ip netns exec "${LAB_ID}-server" nc -lk $SERVER 8080 >/dev/null 2>&1 &
LAB_PIDS+=($!)

# The node's conflist: ptp with host-local IPAM, then ztagent-cni.
CONFLIST="$LAB_DIR/10-ztlab.conflist"
cat >"$CONFLIST" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "ztlab",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "198.18.20.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$LAB_DIR/ipam"
      }
    },
    {
      "type": "ztagent-cni",
      "socket": "$LAB_SOCK",
      "state_dir": "$LAB_DIR/state",
      "timeout": "3s"
    }
  ]
}
EOF

# What libcni does for ADD, CHECK and DEL of a network list (libcni/api.go):
# each plugin gets the list's cniVersion and name; ADD passes each result on
# as the next plugin's prevResult and caches the last one; CHECK (in order)
# and DEL (in reverse order) give every plugin the cached result. DRV_ONLY=last
# runs only the last plugin (a DEL the runtime could not finish: it stopped at
# the primary). Per-plugin stdin/stdout of the last run are kept in the cache
# directory. Exit status and stdout: the failing plugin's, else 0 and the result.
cat >"$LAB_DIR/cnidrv.py" <<'EOF'
import json, os, subprocess, sys
cmd, conflist, cid, netns, ifname, args, cache = sys.argv[1:8]
conf = json.load(open(conflist))
plugins = conf["plugins"]
cached = cache + "/" + cid + "-" + ifname + ".json"
steps = cache + "/" + cid + "-" + cmd
only_last = os.environ.get("DRV_ONLY") == "last"

def run(i, p, command, prev):
    net = dict(p)
    net["cniVersion"] = conf["cniVersion"]
    net["name"] = conf["name"]
    if prev is not None:
        net["prevResult"] = prev
    stdin = json.dumps(net).encode()
    env = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns,
               CNI_IFNAME=ifname, CNI_ARGS=args)
    exe = os.path.join(os.environ["CNI_PATH"], p["type"])
    r = subprocess.run([exe], input=stdin, env=env, capture_output=True, timeout=60)
    open("%s.%d.in" % (steps, i), "wb").write(stdin)
    open("%s.%d.out" % (steps, i), "wb").write(r.stdout)
    if r.stderr:
        sys.stderr.write(r.stderr.decode(errors="replace"))
    if r.returncode != 0:
        sys.stdout.write(r.stdout.decode(errors="replace"))
        sys.exit(r.returncode)
    return r.stdout

if cmd == "ADD":
    prev = None
    for i, p in enumerate(plugins):
        prev = json.loads(run(i, p, "ADD", prev))
    json.dump(prev, open(cached, "w"))
    print(json.dumps(prev))
elif cmd in ("CHECK", "DEL"):
    prev = json.load(open(cached)) if os.path.exists(cached) else None
    order = list(enumerate(plugins))
    if cmd == "DEL":
        order.reverse()
    if only_last:
        order = [order[0] if cmd == "DEL" else order[-1]]
    for i, p in order:
        run(i, p, cmd, prev)
    if cmd == "DEL" and not only_last and os.path.exists(cached):
        os.unlink(cached)
EOF

CPODS=()
cpod_new() { # NAME: an empty network namespace, as a runtime makes for a sandbox
	ip netns add "${LAB_ID}-$1"
	LAB_PODS+=("${LAB_ID}-$1")
	ip -n "${LAB_ID}-$1" link set lo up
}
cni() { # COMMAND POD [ARGS]: runs the chain in the node namespace (the host)
	local cmd=$1 pod=$2
	local args=${3:-"IgnoreUnknown=1;K8S_POD_NAMESPACE=lab;K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=cid-$pod;K8S_POD_UID=$(uid_of "$pod")"}
	ip netns exec "$LAB_NODE" python3 "$LAB_DIR/cnidrv.py" "$cmd" "$CONFLIST" "cid-$pod" \
		"/var/run/netns/${LAB_ID}-$pod" eth0 "$args" "$LAB_DIR/cache"
}
uid_of() { printf '3f2a7c1e-0b5d-4e8a-9c61-%012d' "$(cksum <<<"$1" | cut -c1-9)"; }
pod_ip() { ip -n "${LAB_ID}-$1" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }
host_veth() { # the ptp veth of a pod, from the cached result
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print([i["name"] for i in r["interfaces"] if not i.get("sandbox")][0])' \
		"$LAB_DIR/cache/cid-$1-eth0.json"
}
ep_json() { # POD: the endpoint as endpoint list -o json has it, or nothing
	ztctl endpoint list -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["endpoints"]:
    if e["namespace"] == "lab" and e["name"] == sys.argv[1]:
        print(json.dumps(e))' "$1"
}
ep_field() { ep_json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"; }
tcp() { in_pod "$1" nc -z -w1 "$2" "$3" >/dev/null 2>&1; }
no_tcp() { ! tcp "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
attached() { in_node tc filter show dev "$1" ingress 2>/dev/null | grep -q "tc_"; }
spool_files() { ls "$LAB_DIR/state/cni-pending" 2>/dev/null | grep -c '\.del$'; }
err_code() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["code"])'; }

cat >"$POL/10-lab.yaml" <<'EOF'
# client -> server:8080; nothing else (policy.default: deny).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server, namespace: lab}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{protocol: TCP, port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client, namespace: lab}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: server}}}]
      ports: [{protocol: TCP, port: 8080}]
EOF

if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"
check "ztctl endpoint add (operator, origin api) still works" \
	quiet ztctl endpoint add --ifname v-server --ip $SERVER --labels app=server --namespace lab --name server
check "... and is listed with origin api" test "$(ep_field server origin)" = api

# --- ADD, and the first packet ---
cpod_new client-1
out=$(cni ADD client-1)
rc=$?
echo "# ADD: $out"
check "ADD through ptp + ztagent-cni exits 0" test "$rc" = 0
CIP=$(pod_ip client-1)
check "ptp gave the pod an address in 198.18.20.0/24 ($CIP)" grep -q '^198\.18\.20\.' <<<"$CIP"
# Right after ADD, before anything else: the pod's first connection.
check "the pod's first connection (to the server, right after ADD) is dropped" \
	no_tcp client-1 $SERVER 8080
echoed() { # the last plugin's stdout is exactly the prevResult it was given
	python3 - "$LAB_DIR/cache/cid-client-1-ADD" <<'EOF'
import json, sys
base = sys.argv[1]
sent = json.loads(open(base + ".1.in", "rb").read())["prevResult"]
got = open(base + ".1.out", "rb").read()
ptp = open(base + ".0.out", "rb").read()
# Byte for byte the prevResult text the runtime wrote; and ptp's result, unchanged.
ok = got.rstrip(b"\n") == json.dumps(sent).encode() and json.loads(got) == json.loads(ptp)
sys.exit(0 if ok else 1)
EOF
}
check "ADD prints prevResult unchanged (byte for byte what the runtime sent)" echoed
VETH=$(host_veth client-1)
check "tc_endpoint is on the pod's host-side veth $VETH" attached "$VETH"
check "the endpoint is registered with origin cni" test "$(ep_field client-1 origin)" = cni
check "... the pod UID from CNI_ARGS" test "$(ep_field client-1 pod_uid)" = "$(uid_of client-1)"
check "... the container id and interface" \
	test "$(ep_field client-1 container_id)/$(ep_field client-1 cni_ifname)" = cid-client-1/eth0
check "... pending (labels not known yet), identity 4" \
	test "$(ep_field client-1 pending)/$(ep_field client-1 identity)" = True/4
listed() { ztctl endpoint list | grep -E "^lab/client-1 +$VETH +$CIP +pending +cni +$(uid_of client-1) " >/dev/null; }
check "endpoint list (table) shows origin cni and the pod UID" listed
pending_flow() {
	ztctl flows -o json --verdict denied | python3 -c '
import json, sys
for line in sys.stdin:
    f = json.loads(line)
    if f["src"] == sys.argv[1] and f["dst"] == sys.argv[2] and f["dport"] == 8080 \
       and "pending" in f["rule"] and f["src_workload"] == "lab/client-1":
        sys.exit(0)
sys.exit(1)' "$CIP" $SERVER || {
		ztctl flows -o json --verdict denied | tail -n 3 | sed 's/^/# flow: /'
		return 1
	}
}
check "the denial is streamed as the pending posture's" pending_flow
check "the daemon logs it (rule pending-posture)" \
	grep -q "flow_denied.*src=$CIP.*rule=\"pending-posture" "$LAB_LOG"
# What the node needs to run the pod: the host (kubelet probes) still reaches it.
ip netns exec "${LAB_ID}-client-1" nc -lk "$CIP" 8081 >/dev/null 2>&1 &
LAB_PIDS+=($!)
sleep 0.2
check "the node (kubelet probes) still reaches the pending pod" in_node nc -z -w1 "$CIP" 8081
check "another pod does not (pending: isolated)" no_tcp server "$CIP" 8081
explain_pending() {
	ztctl policy explain --from lab/client-1 --to lab/server --port 8080/TCP | grep -q "pending_posture"
}
check "policy explain says the pending posture denies" explain_pending

# --- CHECK ---
out=$(cni CHECK client-1)
rc=$?
[ -n "$out" ] && echo "# CHECK: $out"
check "CHECK exits 0 for the registered, enforced pod" test "$rc" = 0

# --- the labels arrive (what the Kubernetes watch does: ztctl endpoint meta) ---
t0=$(date +%s%N)
check "endpoint meta sets the pod's labels" quiet ztctl endpoint meta lab/client-1 --labels app=client
connected=false
for _ in $(seq 1 20); do
	if tcp client-1 $SERVER 8080; then
		connected=true
		break
	fi
done
t1=$(date +%s%N)
echo "# labels -> first allowed connection: $(((t1 - t0) / 1000000)) ms"
check "with its labels the pod reaches its allowed peer (server:8080)" $connected
check "the endpoint left the pending state (a label identity)" \
	test "$(ep_field client-1 pending)" = False -a "$(ep_field client-1 identity)" -ge 256
check "the move is logged (was_pending=true)" \
	grep -q "event=endpoint_labels endpoint=lab/client-1 .*was_pending=true" "$LAB_LOG"
check "still denied where policy does not allow (server:8081)" no_tcp client-1 $SERVER 8081
check "CHECK still exits 0" cni CHECK client-1

# --- a relabel takes effect on the pod's established flows, a busy one included ---
# A stream to the server at full speed, then labels no policy allows: its
# next packets are denied on the pod's own side, by its new identity (one
# event, revoked), whichever of them met the generation published before the
# endpoints map held that identity. (The server's side denies it too, by the
# address's identity in the ipcache; a peer off the node would not.)
# (sh -c: a command run with & reads /dev/null unless its own redirection says otherwise)
lab_bg_in "${LAB_ID}-client-1" sh -c "exec nc $SERVER 8080 </dev/zero >/dev/null 2>&1"
stream_pid=$LAB_BG_PID
sleep 0.5
check "a stream from the pod to server:8080 runs" kill -0 "$stream_pid"
check "endpoint meta relabels the streaming pod app=other" quiet ztctl endpoint meta lab/client-1 --labels app=other
check "the stream is revoked on the pod's side (app=other may not reach the server)" \
	lab_wait 20 lab_revoked "$CIP" $SERVER 8080 egress lab/client-1
check "endpoint meta gives the pod its labels back (app=client)" quiet ztctl endpoint meta lab/client-1 --labels app=client
kill "$stream_pid" 2>/dev/null
wait "$stream_pid" 2>/dev/null
check "the pod reaches the server again" tcp client-1 $SERVER 8080

# --- DEL, twice ---
out=$(cni DEL client-1)
rc=$?
check "DEL exits 0" test "$rc" = 0
check "the endpoint is gone" test -z "$(ep_json client-1)"
check "DEL again (idempotent) exits 0" cni DEL client-1
out=$(DRV_ONLY=last cni DEL client-1)
check "ztagent-cni's DEL alone, again, exits 0" test $? = 0
# CHECK of a container the daemon does not know: ztagent-cni alone, with the last result.
printf '%s' "$(cat "$LAB_DIR/cache/cid-client-1-ADD.1.in")" >"$LAB_DIR/check-in.json"
out=$(ip netns exec "$LAB_NODE" env CNI_COMMAND=CHECK CNI_CONTAINERID=cid-client-1 \
	CNI_NETNS=/var/run/netns/${LAB_ID}-client-1 CNI_IFNAME=eth0 CNI_PATH="$CNI_PATH" \
	"$LAB_ROOT/build/ztagent-cni" <"$LAB_DIR/check-in.json")
rc=$?
echo "# CHECK after DEL: $out"
check "CHECK of a deleted pod fails with code 101 (not enforced)" \
	test "$rc" != 0 -a "$(err_code <<<"$out")" = 101

# --- DEL with the daemon down, applied at its next start ---
cpod_new client-2
cpod_new client-3
check "ADD client-2" quiet cni ADD client-2
check "ADD client-3" quiet cni ADD client-3
V3=$(host_veth client-3)
lab_agent_stop
out=$(cni DEL client-2 2>"$LAB_DIR/del2.err")
rc=$?
check "DEL with the daemon down exits 0 (the whole chain)" test "$rc" = 0
check "... and says it queued the deletion" grep -q "event=cni_del_queued container_id=cid-client-2" "$LAB_DIR/del2.err"
# The runtime's DEL of client-3 got no further than ztagent-cni (the primary failed
# and will be retried): its veth, with our filter, is still there.
out=$(DRV_ONLY=last cni DEL client-3 2>/dev/null)
check "DEL of client-3 (ztagent-cni only) with the daemon down exits 0" test $? = 0
check "two deletions wait in state_dir/cni-pending" test "$(spool_files)" = 2
check "client-3's veth still carries tc_endpoint while the daemon is down" attached "$V3"
if lab_agent_start; then tap_ok "ztagent restarts"; else tap_fail "ztagent restarts"; fi
check "the queued DEL of client-2 is applied and logged" \
	grep -q "event=cni_del_applied container_id=cid-client-2 ifname=eth0 pod=lab/client-2" "$LAB_LOG"
check "the queued DEL of client-3 removes its endpoint" \
	grep -q "event=cni_del_applied container_id=cid-client-3 .*endpoint=lab/client-3" "$LAB_LOG"
check "neither endpoint is back" test -z "$(ep_json client-2)$(ep_json client-3)"
not_attached() { ! attached "$@"; }
check "client-3's veth no longer carries tc_endpoint" not_attached "$V3"
check "the queue is empty" test "$(spool_files)" = 0
check "the runtime's retry of client-3's DEL exits 0" cni DEL client-3

# --- ADD with the daemon down: CNI error 11 ---
lab_agent_stop
cpod_new client-4
out=$(cni ADD client-4 2>/dev/null)
rc=$?
echo "# ADD with the daemon down: $out"
check "ADD with the daemon down fails" test "$rc" != 0
check "... with CNI error code 11 (try again later)" test "$(err_code <<<"$out")" = 11
check "... and a message that says so" grep -q '"msg":"the ztagent daemon is not reachable; try again later' <<<"$out"
# The runtime cleans the failed sandbox up with DEL (queued: the daemon is still down).
check "the runtime's DEL after the failed ADD exits 0" quiet cni DEL client-4
if lab_agent_start; then tap_ok "ztagent starts again"; else tap_fail "ztagent starts again"; fi
check "client-4 was never an endpoint" test -z "$(ep_json client-4)"
check "its queued DEL is applied (nothing to remove)" \
	grep -q "event=cni_del_applied container_id=cid-client-4 .*endpoint=none" "$LAB_LOG"
check "ADD of client-4 works once the daemon is back" quiet cni ADD client-4
check "and the endpoint is there, pending" test "$(ep_field client-4 pending)" = True
check "DEL client-4" cni DEL client-4

# --- a primary that reports only the container's side: the peer found inside CNI_NETNS ---
cpod_new client-5
check "ADD client-5" quiet cni ADD client-5
V5=$(host_veth client-5)
del_last() { DRV_ONLY=last cni DEL "$1"; }
check "ztagent-cni's DEL alone (the veth stays)" quiet del_last client-5
check "... the endpoint is gone" test -z "$(ep_json client-5)"
python3 - "$LAB_DIR/cache/cid-client-5-ADD.1.in" >"$LAB_DIR/nohost.json" <<'EOF'
import json, sys
conf = json.load(open(sys.argv[1]))
r = conf["prevResult"]
keep = [i for i, f in enumerate(r["interfaces"]) if f.get("sandbox")]
r["interfaces"] = [r["interfaces"][i] for i in keep]
for ip in r["ips"]:
    ip["interface"] = keep.index(ip["interface"])
print(json.dumps(conf))
EOF
nohost_add() {
	ip netns exec "$LAB_NODE" env CNI_COMMAND=ADD CNI_CONTAINERID=cid-client-5 \
		CNI_NETNS=/var/run/netns/${LAB_ID}-client-5 CNI_IFNAME=eth0 CNI_PATH="$CNI_PATH" \
		CNI_ARGS="K8S_POD_NAMESPACE=lab;K8S_POD_NAME=client-5" \
		"$LAB_ROOT/build/ztagent-cni" <"$LAB_DIR/nohost.json" >"$LAB_DIR/nohost.out"
}
check "prevResult without a host interface: ADD exits 0" nohost_add
check "... the endpoint is on ptp's veth $V5, the peer of the pod's eth0" \
	test "$(ep_field client-5 ifname)" = "$V5"
check "... which carries tc_endpoint" attached "$V5"
check "DEL client-5" quiet cni DEL client-5

echo "1..$TAP_N"
