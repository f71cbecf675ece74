#!/usr/bin/env bash
# tools/bench.sh detect: issue 11's benign-traffic figures, side by side in
# one run, in the namespace lab (tools/lab.sh; 198.18.0.0/15 only):
#  1. iperf3 TCP throughput from the external namespace to a pod, without
#     the agent and with it (detection on, the default detectors);
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
	in_ext timeout $((SECS + 1)) hping3 -q -S -p 8080 --flood -a $ATTACKER $WEB >/dev/null 2>&1 &
	f=$!
	LAB_PIDS+=($f)
	sleep 0.5
	in_ext bash "$LAB_DIR/benign.sh" "$SECS"
	wait $f 2>/dev/null
}

echo "-- without the agent"
T0=$(iperf)
read -r OK0 N0 < <(during_flood)
echo "  iperf3 ${T0:-?} Gbit/s; requests during the flood ${OK0:-0}/${N0:-0}"

# The agent's default attach mode (auto: generic on the lab's veth uplink).
LAB_XDP_MODE=${BENCH_DETECT_XDP_MODE:-auto} lab_write_config
cat >>"$LAB_CONF" <<EOF
response:
  block_ttl: 60s
forensics:
  dir: $LAB_DIR/pcap
EOF
lab_agent_start || exit 1
ztctl endpoint add --ifname v-web --ip $WEB --labels app=web --namespace lab --name web >/dev/null
sleep 1
echo "-- with the agent (detection on; uplink0: $(in_node ip link show uplink0 | grep -o 'xdp[a-z]*' | head -1))"
T1=$(iperf)
read -r OK1 N1 < <(during_flood)
echo "  iperf3 ${T1:-?} Gbit/s; requests during the flood ${OK1:-0}/${N1:-0}"
ztctl block list | grep "$ATTACKER/" | sed 's/^/  /'
ztctl block list | grep -q "$BENIGN/" && echo "  NOTE: the benign client was blocked"

[ -n "$T0" ] && [ -n "$T1" ] && [ "${N0:-0}" -gt 0 ] && [ "${N1:-0}" -gt 0 ] || exit 1
awk -v a="$T1" -v b="$T0" 'BEGIN { printf "  benign iperf3 with detection / without the agent: %.1f%% (target >= 98%%)\n", 100 * a / b }'
awk -v o1="$OK1" -v n1="$N1" -v o0="$OK0" -v n0="$N0" 'BEGIN {
	printf "  benign requests answered during a SYN flood: with the agent %.1f%%, without %.1f%%\n", 100 * o1 / n1, 100 * o0 / n0 }'
