#!/usr/bin/env bash
# mTLS tunnel against the bare path, side by side in one run, on a two-node
# lab whose inter-node link is shaped to 1 Gbit/s with tbf (this kernel has
# no netem), so that throughput is link-bound, not CPU-bound:
#   - iperf3 throughput (tunnel / bare), shaped and unshaped
#   - each agent's CPU during the shaped tunnel run (cores, from /proc/PID/stat),
#     its relay thread's (the task named zt-relay), and each agent's when idle
#   - request/response latency p50/p99 (sockperf ping-pong, full RTT)
#   - connect-to-first-byte of a new connection p50/p99
# The same pods and policy carry both paths: TCP 5201/7000/7003 is
# requireMutualAuth (through the agents), 5202/7001/7004 is allowed in clear.
#
#   ns A (node a, ztagent)          ns R (router, tbf)             ns B (node b, ztagent)
#   pod client 198.18.1.10 ─ v-cl    up 198.18.100.1 ═ .254 | .254 ═ 198.18.101.1 up ─ v-sv ─ pod server 198.18.2.10
#
# Usage: tools/bench_mtls_lab.sh [SECONDS per throughput run, default 8]
# Environment: ZTAGENT=PATH another build; CTFB_N connections a path in
# the connect-to-first-byte run (1000; tunnel and bare in turns);
# CTFB_ONLY=1 that run alone.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/integration/twonode.bash"
ZTAGENT=${ZTAGENT:-"$ROOT/build/ztagent"} # another build to compare: ZTAGENT=PATH
ZTCTL="$ROOT/build/ztctl"
T=${1:-8}
ID="ztmb$$"
A="$ID-a" R="$ID-r" B="$ID-b" CL="$ID-cl" SV="$ID-sv"
PODS=("$CL" "$SV")
DIR=$(mktemp -d /tmp/ztagent-mtlsbench.XXXXXX)
PIDS=()
TD=cluster.local

cleanup() {
	set +e
	twonode_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() {
	echo "bench_mtls_lab: $*" >&2
	exit 1
}
for tool in iperf3 sockperf python3; do
	command -v $tool >/dev/null || die "$tool is missing: run tools/deps.sh"
done
[ -x "$ZTAGENT" ] && [ -x "$ZTCTL" ] || die "build first: make"
PY=$(python3 -c 'import sys; print(sys.executable)')

"$ZTCTL" ca init --trust-domain $TD --out "$DIR/ca" >/dev/null &&
	"$ZTCTL" ca issue-node node-a --ca "$DIR/ca" --out "$DIR/node-a" --days 2 >/dev/null &&
	"$ZTCTL" ca issue-node node-b --ca "$DIR/ca" --out "$DIR/node-b" --days 2 >/dev/null ||
	die "ztctl ca could not make the certificates"

# The two-node lab of the mTLS tests (tests/integration/twonode.bash; the
# bench uses only its IPv4 addresses).
twonode_make
pod "$A" cl 198.18.1.10 2001:2:0:1::10
pod "$B" sv 198.18.2.10 2001:2:0:2::10

conf() { # conf NODE PEER
	mkdir -p "$DIR/bpffs-$1" "$DIR/pol-$1"
	mount -t bpf bpf "$DIR/bpffs-$1"
	cat >"$DIR/$1.yaml" <<EOC
node: node-$1
bpffs: $DIR/bpffs-$1/ztagent
api_socket: $DIR/$1.sock
state_dir: $DIR/state-$1
log_level: warn
policy:
  dir: $DIR/pol-$1
  default: allow
xdp:
  interfaces: [uplink]
  mode: generic
mtls:
  mode: policy
  trust_domain: $TD
  ca_bundle: $DIR/node-$1/bundle.pem
  node_cert: $DIR/node-$1/node.pem
  node_key: $DIR/node-$1/node.key
  port: 15008
  peers: ["$2"]
# The connect-to-first-byte run's one-byte sessions are brute force by
# the detector's measure (it blocked the client pod midway); the bench
# measures the tunnel, so detections only alert here.
response:
  mode: alert
EOC
}
conf a 198.18.2.0/24=198.18.101.1
conf b 198.18.1.0/24=198.18.100.1
cat >"$DIR/pol-a/client.yaml" <<'EOF'
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: client, namespace: bench}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
    - action: allow
      to: [{ipBlock: {cidr: 198.18.2.0/24}}]
      ports: [{protocol: TCP, port: 5201}, {protocol: TCP, port: 7000}, {protocol: TCP, port: 7003}]
      requireMutualAuth: true
    - action: allow
      to: [{ipBlock: {cidr: 0.0.0.0/0}}]
EOF
cat >"$DIR/pol-b/server.yaml" <<'EOF'
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: server, namespace: bench}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
    - action: allow
      from: [{ipBlock: {cidr: 198.18.0.0/15}}]
      ports: [{protocol: TCP, port: 5201}, {protocol: TCP, port: 7000}, {protocol: TCP, port: 7003}]
      requireMutualAuth: true
    - action: allow
      from: [{ipBlock: {cidr: 198.18.0.0/15}}]
EOF
bg "$A" "$ZTAGENT" --config "$DIR/a.yaml" >"$DIR/a.log" 2>&1
AGENT_A=$LAST
bg "$B" "$ZTAGENT" --config "$DIR/b.yaml" >"$DIR/b.log" 2>&1
AGENT_B=$LAST
wait_for 10 "$ZTCTL" --socket "$DIR/a.sock" status >/dev/null 2>&1 || die "agent a: $(cat "$DIR/a.log")"
wait_for 10 "$ZTCTL" --socket "$DIR/b.sock" status >/dev/null 2>&1 || die "agent b: $(cat "$DIR/b.log")"
"$ZTCTL" --socket "$DIR/a.sock" endpoint add --ifname v-cl --ip 198.18.1.10 --labels app=client \
	--namespace bench --name client --service-account web >/dev/null &&
	"$ZTCTL" --socket "$DIR/b.sock" endpoint add --ifname v-sv --ip 198.18.2.10 \
		--labels app=server --namespace bench --name server --service-account db >/dev/null ||
	die "endpoints"

# --- servers ---
for p in 5201 5202; do bg "$SV" iperf3 -s -p $p >/dev/null 2>&1; done
for p in 7000 7001; do bg "$SV" sockperf sr --tcp -i 198.18.2.10 -p $p >/dev/null 2>&1; done
cat >"$DIR/echo.py" <<'EOF'
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1])))
ls.listen(256)
def serve(c):
    try:
        while True:
            b = c.recv(4096)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
for p in 7003 7004; do bg "$SV" "$PY" "$DIR/echo.py" $p; done
cat >"$DIR/ctfb.py" <<'EOF'
# New connections, one byte each way: connect-to-first-byte in ms, p50 and
# p99, for the tunnel's port and the bare path's taken in turns, 50 at a
# time: a stall of the shared machine falls on both alike, and what the
# tunnel's connections leave to do (its spares' handshakes) falls on the
# tunnel's. The first WARM connections of each path are timed apart: the
# very first one (the tunnel's: no spare yet, a full handshake on its
# path) is reported as the cold figure, and the warm pool has grown to the
# rate of new connections before the measured ones start.
import socket, sys, time
host, n, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
lat, fail = {p: [] for p in ports}, {p: 0 for p in ports}
cold = {}
BLOCK, WARM = 50, 50
def one(port):
    t0 = time.perf_counter()
    c = socket.create_connection((host, port), timeout=1)
    try:
        c.sendall(b"x")
        if c.recv(1) != b"x":
            raise OSError
        return (time.perf_counter() - t0) * 1000
    finally:
        c.close()
for port in ports:
    for k in range(WARM):
        try:
            ms = one(port)
        except OSError:
            ms = float("nan")
        if k == 0:
            cold[port] = ms
for i in range(0, n, BLOCK):
    for port in ports:
        for _ in range(min(BLOCK, n - i)):
            try:
                lat[port].append(one(port))
            except OSError:
                fail[port] += 1
out = []
for port in ports:
    l = sorted(lat[port])
    if not l:
        out.append("nan nan %d" % fail[port])
    else:
        out.append("%.3f %.3f %d" % (l[len(l) // 2], l[min(len(l) - 1, len(l) * 99 // 100)], fail[port]))
print(" ".join(out + ["%.3f" % cold[p] for p in ports]))
EOF
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
relay_ticks() { # relay_ticks PID: CPU ticks of the agent's relay thread (named zt-relay)
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = zt-relay ] && awk '{print $14 + $15}' "$t/stat" && return
	done
	echo 0
}
HZ=$(getconf CLK_TCK)
iperf() { # iperf PORT: Mbit/s received
	ip netns exec "$CL" iperf3 -c 198.18.2.10 -p "$1" -t "$T" -J 2>/dev/null |
		"$PY" -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' 2>/dev/null ||
		echo 0
}
ratio() { "$PY" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else 'n/a')" "$1" "$2"; }
shape() { # shape on|off
	local d
	for d in ra rb; do
		ip netns exec "$R" tc qdisc del dev $d root 2>/dev/null
		[ "$1" = on ] && ip netns exec "$R" tc qdisc add dev $d root tbf rate 1gbit burst 1mb latency 20ms
	done
	return 0
}

# CTFB_ONLY=1: only the connect-to-first-byte run (side-by-side repeats of it).
if [ -z "${CTFB_ONLY:-}" ]; then
echo "== mTLS tunnel against the bare path (two nodes, same pods; ${T}s per throughput run)"
for mode in on off; do
	shape $mode
	ip netns exec "$CL" iperf3 -c 198.18.2.10 -p 5201 -t 1 >/dev/null 2>&1 # warm: tunnel up
	a0=$(cpu_ticks $AGENT_A) b0=$(cpu_ticks $AGENT_B) t0=$(date +%s%N)
	ra0=$(relay_ticks $AGENT_A) rb0=$(relay_ticks $AGENT_B)
	tun=$(iperf 5201)
	a1=$(cpu_ticks $AGENT_A) b1=$(cpu_ticks $AGENT_B) t1=$(date +%s%N)
	ra1=$(relay_ticks $AGENT_A) rb1=$(relay_ticks $AGENT_B)
	bare=$(iperf 5202)
	label="link shaped to 1 Gbit/s (tbf)"
	[ $mode = off ] && label="unshaped (veth, CPU-bound)"
	echo "throughput, $label: tunnel $tun Mbit/s, bare $bare Mbit/s, ratio $(ratio "$tun" "$bare") (target >= 0.95 shaped)"
	"$PY" -c "import sys; a, b, ra, rb, t, hz = map(float, sys.argv[1:]); print('agent CPU during the tunnel run: node a %.3f core (relay thread %.3f), node b %.3f core (relay thread %.3f) (target <= 0.15 shaped)' % (a / hz / t, ra / hz / t, b / hz / t, rb / hz / t))" \
		$((a1 - a0)) $((b1 - b0)) $((ra1 - ra0)) $((rb1 - rb0)) "$(((t1 - t0) / 1000000))e-3" "$HZ"
done
# What the agents spend with no traffic (their other threads' timers and
# map walks): the part of the figures above that is not the relay's.
a0=$(cpu_ticks $AGENT_A) b0=$(cpu_ticks $AGENT_B)
sleep 5
a1=$(cpu_ticks $AGENT_A) b1=$(cpu_ticks $AGENT_B)
"$PY" -c "import sys; a, b, hz = map(float, sys.argv[1:]); print('agent CPU idle (5 s, no traffic): node a %.3f core, node b %.3f core' % (a / hz / 5, b / hz / 5))" \
	$((a1 - a0)) $((b1 - b0)) "$HZ"
fi
shape on
if [ -z "${CTFB_ONLY:-}" ]; then
pp() { # pp PORT: p50 p99 in ms (full round trip)
	ip netns exec "$CL" sockperf pp --tcp -i 198.18.2.10 -p "$1" -t 5 --full-rtt 2>&1 |
		awk '/percentile 50.000/{p50=$NF} /percentile 99.000/{p99=$NF} END{printf "%.3f %.3f\n", p50/1000, p99/1000}'
}
read -r tp50 tp99 <<<"$(pp 7000)"
read -r bp50 bp99 <<<"$(pp 7001)"
echo "request/response RTT (sockperf, shaped): tunnel p50 $tp50 ms p99 $tp99 ms; bare p50 $bp50 ms p99 $bp99 ms; added p50 $("$PY" -c "print('%.3f' % ($tp50 - $bp50))") ms p99 $("$PY" -c "print('%.3f' % ($tp99 - $bp99))") ms (targets 0.2 / 1 ms)"
fi
read -r cp50 cp99 cfail dp50 dp99 dfail ccold dcold <<<"$(ip netns exec "$CL" "$PY" "$DIR/ctfb.py" 198.18.2.10 ${CTFB_N:-1000} 7003 7004)"
echo "connect-to-first-byte, ${CTFB_N:-1000} new connections a path after 50 unmeasured, 50 at a time in turns: tunnel p50 $cp50 ms p99 $cp99 ms ($cfail failed); bare p50 $dp50 ms p99 $dp99 ms ($dfail failed); added p99 $("$PY" -c "print('%.3f' % (float('$cp99') - float('$dp99')))") ms (target 2 ms)"
echo "connect-to-first-byte of the very first connection (tunnel: no spare yet, its own full handshake): tunnel $ccold ms, bare $dcold ms"
# How the tunnel's new connections were served: a ready spare of the warm
# pool, one still in its handshake, or none (a handshake of their own).
"$ZTCTL" --socket "$DIR/a.sock" mtls status 2>/dev/null | grep '^warm pool' | sed 's/^/node a /'
echo "full handshakes per CPU-second: tools/bench.sh mtls (build/tools/bench_mtls)"
