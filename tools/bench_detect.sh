#!/usr/bin/env bash
# tools/bench.sh detect: issue 11's benign-traffic figures, side by side in
# one run, in the namespace lab (tools/lab.sh; 198.18.0.0/15 only):
#  1. iperf3 TCP throughput from the external namespace to a pod, without
#     the agent and with it (detection on, the default detectors), in
#     BENCH_DETECT_ROUNDS (5) interleaved pairs of BENCH_DETECT_SECS (5) s:
#     the agent started for each run with it and taken down after, so
#     drift on a shared machine hits both sides alike (one pair of single
#     runs gave 79-93 % on this VM);
#  2. a benign client's requests (curl every 50 ms, 3 s timeout) answered
#     during an hping3 --flood SYN flood from another source, without the
#     agent and with it.
# Prints the figures and their ratios; exits non-zero only when a run did
# not happen (no iperf3 result, no request made).
set -uo pipefail
. "$(dirname "$0")/lab.sh"

for t in iperf3 hping3 curl; do
	command -v $t >/dev/null || {
		echo "bench detect: $t is missing (make deps)" >&2
		exit 1
	}
done
PY=/usr/bin/python3
WEB=198.18.2.40
BENIGN=$LAB_EXT_IP2
ATTACKER=$LAB_EXT_IP
SECS=${BENCH_DETECT_SECS:-5}

lab_init bdet
lab_pod web $WEB
ip -n "$LAB_EXT" route add 198.18.2.0/24 via "$LAB_NODE_IP"
mkdir -p "$LAB_DIR/policies" "$LAB_DIR/www"
lab_policy_open web.yaml web 198.18.0.0/15 5201/TCP 8080/TCP
echo "<p>the lab's page</p>" >"$LAB_DIR/www/index.html"
ip netns exec "${LAB_ID}-web" iperf3 -s -B $WEB -p 5201 >/dev/null 2>&1 &
LAB_PIDS+=($!)
(cd "$LAB_DIR/www" && exec ip netns exec "${LAB_ID}-web" "$PY" -m http.server 8080 --bind $WEB) \
	>/dev/null 2>&1 &
LAB_PIDS+=($!)
sleep 1

iperf() { # prints Gbit/s received
	in_ext iperf3 -c $WEB -p 5201 -B $BENIGN -t "$SECS" -J 2>/dev/null |
		"$PY" -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}
cat >"$LAB_DIR/benign.sh" <<EOF
ok=0 n=0
end=\$((\$(date +%s) + \$1))
while [ \$(date +%s) -lt \$end ]; do
	n=\$((n + 1))
	curl -s -o /dev/null -m 3 -w '%{http_code}\n' --interface $BENIGN "http://$WEB:8080/" | grep -q 200 && ok=\$((ok + 1))
	sleep 0.05
done
echo "\$ok \$n"
EOF
during_flood() { # prints "ok n"
	local f
	# Not through in_ext: $! would be the function's subshell, and a kill
	# would leave timeout and hping3 running.
	ip netns exec "$LAB_EXT" timeout $((SECS + 1)) hping3 -q -S -p 8080 --flood -a $ATTACKER $WEB \
		>/dev/null 2>&1 &
	f=$!
	LAB_PIDS+=($f)
	sleep 0.5
	in_ext bash "$LAB_DIR/benign.sh" "$SECS"
	wait $f 2>/dev/null
}

# The agent's default attach mode (auto: the guard on TC ingress of the lab's veth uplink).
agent_up() {
	LAB_XDP_MODE=${BENCH_DETECT_XDP_MODE:-auto} lab_write_config
	cat >>"$LAB_CONF" <<EOF
response:
  block_ttl: 60s
forensics:
  dir: $LAB_DIR/pcap
EOF
	# BENCH_DETECT_RT=N: the event consumer under SCHED_FIFO at N (detection.realtime_priority).
	[ -n "${BENCH_DETECT_RT:-}" ] && printf 'detection:\n  realtime_priority: %s\n' "$BENCH_DETECT_RT" >>"$LAB_CONF"
	lab_agent_start || return 1
	ztctl endpoint add --ifname v-web --ip $WEB --labels app=web --namespace lab --name web >/dev/null
}
# No agent at all: SIGTERM leaves enforcement in place, so its programs and pins go too.
agent_down() {
	ztctl endpoint del --ifname v-web >/dev/null 2>&1
	lab_agent_remove
}

ROUNDS=${BENCH_DETECT_ROUNDS:-5}
echo "-- benign iperf3, ${SECS}s a run, $ROUNDS rounds: without the agent, then with it (detection on)"
T0S="" T1S="" TICKS=0
for r in $(seq 1 "$ROUNDS"); do
	t0=$(iperf)
	agent_up || exit 1
	sleep 1
	[ "$r" = 1 ] && echo "   with the agent: uplink0 $(in_node ip link show uplink0 | grep -o 'xdp[a-z]*' | head -1)$(in_node tc filter show dev uplink0 ingress | grep -o tc_guard | head -1)"
	c0=$(lab_agent_ticks)
	t1=$(iperf)
	c1=$(lab_agent_ticks)
	agent_down
	if [ -z "$t0" ] || [ -z "$t1" ]; then
		echo "bench detect: no iperf3 figure in round $r" >&2
		exit 1
	fi
	echo "   round $r: without $t0, with $t1 Gbit/s"
	T0S+="$t0 " T1S+="$t1 " TICKS=$((TICKS + ${c1:-0} - ${c0:-0}))
done
"$PY" - "$T0S" "$T1S" <<'PY'
import statistics as st, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
pairs = sorted(y / x for x, y in zip(a, b))
print("  iperf3 without the agent %.2f / %.2f / %.2f, with it %.2f / %.2f / %.2f Gbit/s (min / median / max)"
      % (min(a), st.median(a), max(a), min(b), st.median(b), max(b)))
print("  benign iperf3 with detection / without the agent: %.1f%% (medians; the rounds' own ratios %s; target >= 98%%)"
      % (100 * st.median(b) / st.median(a), " ".join("%.0f%%" % (100 * p) for p in pairs)))
PY
awk -v c="$TICKS" -v hz="$(getconf CLK_TCK)" -v s="$((SECS * ROUNDS))" 'BEGIN {
	printf "  the agent'"'"'s CPU during its iperf3 runs: %.2f s in %d s (%.1f%% of one core)\n", c / hz, s, 100 * c / hz / s }'

# Not read < <(during_flood): read returns with benign.sh's line while the
# flood's hping3 still runs its last half second, into the agent's start
# (an incident and a capture then). $() returns once it has ended.
R0=$(during_flood)
read -r OK0 N0 <<<"$R0"
echo "-- requests during the flood without the agent: ${OK0:-0}/${N0:-0}"
agent_up || exit 1
sleep 1
R1=$(during_flood)
read -r OK1 N1 <<<"$R1"
echo "-- requests during the flood with the agent: ${OK1:-0}/${N1:-0}"
ztctl block list | grep "$ATTACKER/" | sed 's/^/  /'
ztctl block list | grep -q "$BENIGN/" && echo "  NOTE: the benign client was blocked"

[ "${N0:-0}" -gt 0 ] && [ "${N1:-0}" -gt 0 ] || exit 1
awk -v o1="$OK1" -v n1="$N1" -v o0="$OK0" -v n0="$N0" 'BEGIN {
	printf "  benign requests answered during a SYN flood: with the agent %.1f%%, without %.1f%%\n", 100 * o1 / n1, 100 * o0 / n0 }'

# Detection -> block: single-source SYN floods in turn, a new source each,
# every one until it is on the blocklist. The agent logs per block the time
# from the detector's decision to the map write and from the packet that
# crossed the threshold to the map write.
BLOCKS=${BENCH_DETECT_BLOCKS:-20}
echo "-- detection -> block: $BLOCKS SYN floods in turn (hping3 --flood, a new source each)"
for i in $(seq 1 "$BLOCKS"); do
	src=198.18.0.$((100 + i))
	ip netns exec "$LAB_EXT" timeout 5 hping3 -q -S -p 8080 --flood -a "$src" $WEB >/dev/null 2>&1 &
	f=$! # timeout itself (ip netns exec execs it): a kill ends hping3 with it
	LAB_PIDS+=($f)
	for _ in $(seq 1 400); do
		ztctl block list | grep -q "^$src/" && break
		sleep 0.01
	done
	kill "$f" 2>/dev/null
	wait "$f" 2>/dev/null
done
# BENCH_DETECT_RECFLOOD=SECS: a SYN flood from a new random source of
# 198.19.0.0/16 every packet (BENCH_DETECT_RECFLOOD_PPS a second, 50000
# unless told), many records for the event consumer: are the node's other
# threads still served? The loop (ztctl status round trips), the benign
# client's requests, the records read and the consumer's pauses.
if [ -n "${BENCH_DETECT_RECFLOOD:-}" ]; then
	TOOL="$LAB_DIR/synflood_tool"
	# shellcheck disable=SC2046
	gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$LAB_ROOT/include" $(pkg-config --cflags libbpf libelf zlib) \
		-o "$TOOL" "$LAB_ROOT/tests/integration/synflood_tool.c" \
		$(pkg-config --libs libbpf libelf zlib) || exit 1
	RS=$BENCH_DETECT_RECFLOOD
	ev_field() { ztctl status | grep -o "$1 [0-9]*" | head -1 | awk '{ print $NF }'; }
	R0=$(ev_field received)
	echo "-- records flood: SYNs from random sources of 198.19.0.0/16, ${BENCH_DETECT_RECFLOOD_PPS:-50000}/s for ${RS}s"
	in_ext "$TOOL" randflood $WEB 8080 198.19.0.0/16 "${BENCH_DETECT_RECFLOOD_PPS:-50000}" "$RS" >"$LAB_DIR/recflood.out" 2>&1 &
	f=$!
	LAB_PIDS+=("$f")
	in_ext bash "$LAB_DIR/benign.sh" "$RS" >"$LAB_DIR/recflood.benign" &
	b=$!
	LAB_PIDS+=("$b")
	: >"$LAB_DIR/recflood.rtt"
	while kill -0 "$f" 2>/dev/null; do
		t0=$(date +%s%N)
		ztctl status >/dev/null 2>&1
		echo $((($(date +%s%N) - t0) / 1000)) >>"$LAB_DIR/recflood.rtt"
		sleep 0.05
	done
	wait "$b" 2>/dev/null
	read -r OKR NR <"$LAB_DIR/recflood.benign"
	R1=$(ev_field received)
	sort -n "$LAB_DIR/recflood.rtt" | awk '{ v[NR] = $1 } END {
		printf "  ztctl status (the loop) during it: %d round trips, p50 %.1f ms, max %.1f ms\n",
			NR, v[int(NR / 2) + 1] / 1000, v[NR] / 1000 }'
	echo "  benign requests answered during it: ${OKR:-0}/${NR:-0}; records read: $((${R1:-0} - ${R0:-0}))"
	ztctl status | grep -E "consumer|read late" | sed 's/^ */  /'
fi
# BENCH_DETECT_LOG=FILE keeps the agent's log (the lab's directory goes at exit).
[ -n "${BENCH_DETECT_LOG:-}" ] && cp "$LAB_LOG" "$BENCH_DETECT_LOG"
"$PY" - "$LAB_LOG" "$BLOCKS" <<'PY' || exit 1
import re, sys
want = {"198.18.0.%d/32" % (100 + i) for i in range(1, int(sys.argv[2]) + 1)}
dec, pkt, p2d, d2w, paths = [], [], [], [], {}
for line in open(sys.argv[1], errors="replace"):
    if "event=detector_block " not in line:
        continue
    m = re.search(r"cidr=(\S+) .*decision_to_map_ms=([0-9.]+) packet_to_map_ms=([0-9.]+)", line)
    if m and m.group(1) in want:
        dec.append(float(m.group(2)))
        pkt.append(float(m.group(3)))
        m = re.search(r"packet_to_decision_ms=([0-9.]+) decision_to_write_ms=([0-9.]+) path=(\S+)", line)
        if m:
            p2d.append(float(m.group(1)))
            d2w.append(float(m.group(2)))
            paths[m.group(3)] = paths.get(m.group(3), 0) + 1
if not dec:
    print("  no flood source was blocked")
    sys.exit(1)
def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print("  %d of %d sources blocked" % (len(dec), len(want)))
print("  decision -> map write: p50 %.3f ms, p99 %.3f ms (target p99 <= 10 ms: %s)"
      % (q(dec, .5), q(dec, .99), "met" if q(dec, .99) <= 10 else "NOT met"))
print("  packet over the threshold -> map write: p50 %.3f ms, p99 %.3f ms" % (q(pkt, .5), q(pkt, .99)))
if p2d:
    print("    of which packet -> decision (ring buffer, consumer): p50 %.3f ms, p99 %.3f ms"
          % (q(p2d, .5), q(p2d, .99)))
    print("    decision -> write start (the engine's lock released; the write waits for the blocklist's): p50 %.3f ms, p99 %.3f ms"
          % (q(d2w, .5), q(d2w, .99)))
    print("    written: %s" % ", ".join("%s %d" % kv for kv in sorted(paths.items())))
PY
