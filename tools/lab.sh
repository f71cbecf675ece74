# shellcheck shell=bash
# The network-namespace lab used by the integration tests, the demo and the
# bench. Source it, call lab_init, and every namespace, veth, mount and
# process it creates is removed by lab_cleanup (installed as an EXIT trap),
# also when the caller fails.
#
# Topology (addresses from the benchmarking range 198.18.0.0/15 only):
#
#   ns $LAB_EXT                       ns $LAB_NODE (runs ztagent)
#   ext0 198.18.0.1/24  <== veth ==>  uplink0 198.18.0.2/24  (XDP guard)
#   ext0 198.18.0.3/24 (second source, never blocked unless a test says so)
#
# lab_pod NAME IP adds a pod: namespace $LAB_ID-NAME with eth0 IP/32, and
# its veth's host side "v-NAME" in the node (routed, proxy ARP, as
# Calico does), so pods reach each other through the node.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZTAGENT=${ZTAGENT:-$LAB_ROOT/build/ztagent}
ZTCTL_BIN=${ZTCTL_BIN:-$LAB_ROOT/build/ztctl}
LAB_EXT_IP=198.18.0.1
LAB_EXT_IP2=198.18.0.3
LAB_NODE_IP=198.18.0.2
LAB_PIDS=()
LAB_AGENT_PID=
LAB_PODS=()

lab_init() {
	local tag=${1:-lab}
	LAB_ID="zt${tag:0:4}$$"
	LAB_NODE="${LAB_ID}-node"
	LAB_EXT="${LAB_ID}-ext"
	LAB_DIR=$(mktemp -d "/tmp/ztagent-$tag.XXXXXX")
	LAB_BPFFS="$LAB_DIR/bpffs"
	LAB_SOCK="$LAB_DIR/api.sock"
	LAB_CONF="$LAB_DIR/ztagent.yaml"
	LAB_LOG="$LAB_DIR/ztagent.log"
	trap lab_cleanup EXIT
	trap 'exit 130' INT TERM

	# A bpffs of our own, outside /sys: `ip netns exec` remounts /sys, and
	# the pins must outlive each agent process for the restart checks.
	mkdir -p "$LAB_BPFFS"
	mount -t bpf bpf "$LAB_BPFFS"

	ip netns add "$LAB_NODE"
	ip netns add "$LAB_EXT"
	ip link add ext0 netns "$LAB_EXT" type veth peer name uplink0 netns "$LAB_NODE"
	ip -n "$LAB_EXT" addr add "$LAB_EXT_IP/24" dev ext0
	ip -n "$LAB_EXT" addr add "$LAB_EXT_IP2/24" dev ext0
	ip -n "$LAB_NODE" addr add "$LAB_NODE_IP/24" dev uplink0
	ip -n "$LAB_EXT" link set ext0 up
	ip -n "$LAB_NODE" link set uplink0 up
	ip -n "$LAB_EXT" link set lo up
	ip -n "$LAB_NODE" link set lo up
	# Native XDP on a veth wants GRO-capable peers; this keeps both paths real.
	command -v ethtool >/dev/null || {
		echo "# lab_init: ethtool is missing; run 'make deps'" >&2
		return 1
	}
	ip netns exec "$LAB_EXT" ethtool -K ext0 gro on >/dev/null
	lab_write_config
}

lab_write_config() {
	cat >"$LAB_CONF" <<EOC
node: lab-node
bpffs: $LAB_BPFFS/ztagent
api_socket: $LAB_SOCK
log_level: ${LAB_LOG_LEVEL:-info}
state_dir: $LAB_DIR/state
policy:
  dir: $LAB_DIR/policies
  default: ${LAB_POLICY_DEFAULT:-deny}
  conntrack_max: ${LAB_CT_MAX:-262144}
database:
  url: "${LAB_DB_URL:-}"
  spool_dir: $LAB_DIR/spool
metrics:
  listen: "${LAB_METRICS:-}"
xdp:
  interfaces: [uplink0]
  mode: ${LAB_XDP_MODE:-native}
  malformed: drop
  blocklist_max: ${LAB_BLOCKLIST_MAX:-65536}
  expiry_interval: 200ms
EOC
}

# lab_policy_open FILE APP CIDR PORT/PROTO...: writes policies/FILE, a
# NetworkPolicy that admits CIDR to the pods labelled app=APP (namespace
# lab) on the ports given, e.g. 8080/TCP 9999/UDP.
lab_policy_open() {
	local file=$1 app=$2 cidr=$3 p ports=
	shift 3
	for p; do ports+="${ports:+, }{protocol: ${p#*/}, port: ${p%/*}}"; done
	mkdir -p "$LAB_DIR/policies"
	cat >"$LAB_DIR/policies/$file" <<EOP
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: $app, namespace: lab}
spec:
  podSelector: {matchLabels: {app: $app}}
  ingress:
    - from: [{ipBlock: {cidr: $cidr}}]
      ports: [$ports]
EOP
}

# lab_pod NAME IP: a pod namespace behind the node (see the top of this file).
lab_pod() {
	local name=$1 ip=$2 ns="${LAB_ID}-$1"
	ip netns add "$ns"
	LAB_PODS+=("$ns")
	ip link add eth0 netns "$ns" type veth peer name "v-$name" netns "$LAB_NODE"
	ip -n "$ns" addr add "$ip/32" dev eth0
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default dev eth0
	# Name lookups stay in the pod (ip netns exec mounts this over
	# /etc/resolv.conf): the host's resolver is no address of the lab's, and
	# a server's lookup of its own address (Python's http.server does one as
	# it binds) would send its query out of the default route and wait
	# seconds for an answer that never comes.
	mkdir -p "/etc/netns/$ns"
	echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
	ip -n "$LAB_NODE" link set "v-$name" up
	ip netns exec "$LAB_NODE" sysctl -qw "net.ipv4.conf.v-$name.proxy_arp=1"
	# Proxy ARP answers after a random delay of up to 0.8 s by default; a
	# pod's first connection must not wait for it.
	ip netns exec "$LAB_NODE" sysctl -qw "net.ipv4.neigh.v-$name.proxy_delay=0"
	ip netns exec "$LAB_NODE" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$LAB_NODE" route add "$ip/32" dev "v-$name"
}
in_pod() {
	local name=$1
	shift
	ip netns exec "${LAB_ID}-$name" "$@"
}

in_node() { ip netns exec "$LAB_NODE" "$@"; }
in_ext() { ip netns exec "$LAB_EXT" "$@"; }
# The program id of tc_guard on uplink0's TC ingress; empty when none.
lab_tc_guard_id() {
	in_node tc -j filter show dev uplink0 ingress | python3 -c '
import json, sys
for f in json.load(sys.stdin):
    o = f.get("options", {})
    if o.get("bpf_name", "").startswith("tc_guard"):
        print(o["prog"]["id"])' 2>/dev/null
}
ztctl() { "$ZTCTL_BIN" --socket "$LAB_SOCK" "$@"; }
# Probes the agent's API with `status` every 5 ms until the file $1 exists (a
# long-running test's "done"); prints "max_ms N count N p99_ms N": the longest
# answer is the longest the main loop was held.
lab_api_probe() {
	python3 - "$LAB_SOCK" "$1" <<'PY'
import os, socket, struct, sys, time
req = b"\xa1\x62op\x66status"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
def recvn(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
lat = []
while not os.path.exists(sys.argv[2]):
    t = time.monotonic()
    s.sendall(struct.pack(">I", len(req)) + req)
    recvn(struct.unpack(">I", recvn(4))[0])
    lat.append(time.monotonic() - t)
    time.sleep(0.005)
lat.sort()
print("max_ms %d count %d p99_ms %d" % (lat[-1] * 1000, len(lat), lat[len(lat) * 99 // 100] * 1000))
PY
}

# lab_build_tool OUT: builds the suites' packet and map helper
# (tests/integration/synflood_tool.c) into OUT with the project's flags;
# on failure prints the compiler's messages as comments and returns 1.
lab_build_tool() {
	local out=$1 pkgs="libbpf libelf zlib"
	# shellcheck disable=SC2046
	"${CC:-gcc}" -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow \
		-fno-strict-aliasing -D_GNU_SOURCE -I"$LAB_ROOT/include" $(pkg-config --cflags $pkgs) \
		-o "$out" "$LAB_ROOT/tests/integration/synflood_tool.c" $(pkg-config --libs $pkgs) \
		2>"$out.cc.log" && return 0
	sed 's/^/# /' "$out.cc.log"
	return 1
}

# Starts the agent in the node namespace and waits until its API answers.
lab_agent_start() {
	ip netns exec "$LAB_NODE" "$ZTAGENT" --config "$LAB_CONF" >>"$LAB_LOG" 2>&1 &
	LAB_AGENT_PID=$!
	LAB_PIDS+=("$LAB_AGENT_PID")
	for _ in $(seq 1 100); do
		if ztctl status >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$LAB_AGENT_PID" 2>/dev/null; then
			echo "# ztagent exited during start; its log:" >&2
			sed 's/^/#   /' "$LAB_LOG" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "# ztagent did not answer on $LAB_SOCK within 5 s" >&2
	return 1
}

# Stops the agent with SIGTERM (enforcement stays) and waits for it.
lab_agent_stop() {
	[ -n "$LAB_AGENT_PID" ] || return 0
	kill -TERM "$LAB_AGENT_PID" 2>/dev/null
	wait "$LAB_AGENT_PID" 2>/dev/null
	local rc=$?
	LAB_AGENT_PID=
	return $rc
}

# Stops the agent and takes what it leaves in force down too (SIGTERM keeps
# its programs and pins): the node as if no agent had run, for a bench's row.
lab_agent_remove() {
	local ns
	lab_agent_stop
	in_node ip link set dev uplink0 xdp off 2>/dev/null
	in_node ip link set dev uplink0 xdpgeneric off 2>/dev/null
	for ns in "${LAB_PODS[@]}"; do
		in_node tc qdisc del dev "v-${ns#"$LAB_ID"-}" clsact 2>/dev/null
	done
	in_node tc qdisc del dev uplink0 clsact 2>/dev/null
	umount "$LAB_BPFFS" && mount -t bpf bpf "$LAB_BPFFS"
}

# The running agent's user + system CPU in clock ticks; nothing when no agent runs.
lab_agent_ticks() {
	[ -n "$LAB_AGENT_PID" ] && [ -r "/proc/$LAB_AGENT_PID/stat" ] &&
		sed 's/^.*) //' "/proc/$LAB_AGENT_PID/stat" | awk '{print $12 + $13}'
}

# lab_wait TRIES CMD...: runs CMD until it succeeds, at most TRIES times
# 0.1 s apart; 0 once it did, 1 when it never did.
lab_wait() {
	local lab_wait_left=$1 # a name of its own: CMD sees the locals of its callers
	shift
	while :; do
		"$@" && return 0
		lab_wait_left=$((lab_wait_left - 1))
		[ "$lab_wait_left" -gt 0 ] || return 1
		sleep 0.1
	done
}

# lab_revoked SRC DST DPORT DIR WORKLOAD: ztctl flows has a denied record of
# SRC -> DST:DPORT whose permission was revoked on WORKLOAD's side ("ns/name"):
# DIR egress, the source's; ingress, the destination's.
lab_revoked() {
	ztctl flows -o json --verdict denied | python3 -c '
import json, sys
src, dst, dport, d, wl = sys.argv[1:6]
side = "src_workload" if d == "egress" else "dst_workload"
for line in sys.stdin:
    f = json.loads(line)
    if f["src"] == src and f["dst"] == dst and f["dport"] == int(dport) \
       and f["revoked"] and f["direction"] == d and f[side] == wl:
        sys.exit(0)
sys.exit(1)' "$@"
}

# Runs a command in a namespace in the background; LAB_BG_PID is its PID
# (ip netns exec execs the command, so it is the command's own PID).
lab_bg_in() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@" &
	LAB_BG_PID=$!
	LAB_PIDS+=("$LAB_BG_PID")
}

lab_cleanup() {
	local rc=$?
	local p ns
	set +e # best effort from here on: every step runs even if one fails
	for p in "${LAB_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${LAB_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	# Anything still running inside our namespaces was started by us.
	for ns in ${LAB_NODE:-} ${LAB_EXT:-} "${LAB_PODS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
	done
	if [ -n "${LAB_NODE:-}" ]; then
		ip netns exec "$LAB_NODE" ip link set dev uplink0 xdp off 2>/dev/null
		ip netns exec "$LAB_NODE" ip link set dev uplink0 xdpgeneric off 2>/dev/null
		ip netns del "$LAB_NODE" 2>/dev/null
	fi
	[ -n "${LAB_EXT:-}" ] && ip netns del "$LAB_EXT" 2>/dev/null
	for ns in "${LAB_PODS[@]}"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	if [ -n "${LAB_BPFFS:-}" ] && mountpoint -q "$LAB_BPFFS"; then
		umount "$LAB_BPFFS"
	fi
	[ -n "${LAB_DIR:-}" ] && rm -rf "$LAB_DIR"
	exit $rc
}

# --- TAP helpers for the integration tests ---
TAP_N=0
tap_ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}
tap_fail() {
	TAP_N=$((TAP_N + 1))
	echo "not ok $TAP_N - $*"
}
# check "description" command...: ok when the command succeeds.
check() {
	local what=$1
	shift
	if "$@"; then tap_ok "$what"; else tap_fail "$what"; fi
}
