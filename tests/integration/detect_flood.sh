#!/usr/bin/env bash
# Integration: floods recognised from the kernel's activity events and cut
# in XDP, with the real agent in the namespace lab and a real PostgreSQL:
#  - hping3 SYN flood from 198.18.0.1 against a pod's web server, and a UDP
#    flood from 198.18.0.9: each source blocked by the flood detector
#    (ztctl block list: detector, flood), and cut <= 100 ms after its first
#    packet, measured per packet (dumpcap on both sides of the node); an
#    ACK flood (198.18.0.10) at the pod the same way, and a PSH/ACK flood
#    (198.18.0.11) at the node, both blocked as flood/out-of-state; a
#    FIN/ACK flood (198.18.0.12) and an RST flood (198.18.0.13) at the pod,
#    blocked and cut the same way (segments of no connection, counted as
#    they reach the pod: the pod's resets to the first the policy keeps in,
#    and nothing answers the second); an RST flood at the node
#    (198.18.0.14), blocked as flood/out-of-state from the guard's count of
#    the resets no socket of the node's owns;
#  - a benign client (198.18.0.3) requesting the page during both floods
#    still gets >= 99% of its answers;
#  - the incident's pcap is read by tshark and holds the attacker's packets;
#  - an ICMP flood in 802.1Q frames is blocked and its pcap shows every
#    packet with its VLAN tag (which the kernel holds beside the frame at
#    the TC hooks), the captured and the rebuilt from drop events alike;
#  - every network_flows row is scored (anomaly_score not NULL), the
#    attacker's rows carry threat_type flood, its dropped packets blocked.
# Prints TAP lines and the measured latencies as comments.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for tool in hping3 tshark curl; do
	if ! command -v $tool >/dev/null; then
		echo "not ok 1 - $tool is installed (make deps)"
		exit 1
	fi
done

lab_init flood
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
wait_for() {
	local cmd=$1 n=${2:-100}
	for _ in $(seq 1 "$n"); do
		eval "$cmd" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
now_ms() { date +%s%3N; }
# The issue's budget from a flood's first packet to its block.
CUT_MS=${DETECT_FLOOD_CUT_MS:-100}

WEB=198.18.2.40
BENIGN=$LAB_EXT_IP2
SYNSRC=$LAB_EXT_IP
UDPSRC=198.18.0.9
ACKSRC=198.18.0.10 # an ACK flood at the pod
NACKSRC=198.18.0.11 # ... and at the node itself
FINSRC=198.18.0.12 # a FIN/ACK flood at the pod
RSTSRC=198.18.0.13 # an RST flood at the pod
NRSTSRC=198.18.0.14 # ... and at the node itself
lab_pod web $WEB
for a in $UDPSRC $ACKSRC $NACKSRC $FINSRC $RSTSRC $NRSTSRC; do ip -n "$LAB_EXT" addr add $a/24 dev ext0; done
ip -n "$LAB_EXT" route add 198.18.2.0/24 via $LAB_NODE_IP src $LAB_EXT_IP
mkdir -p "$LAB_DIR/policies" "$LAB_DIR/www"
lab_policy_open 10-lab.yaml web 0.0.0.0/0 8080/TCP 9999/UDP
for i in $(seq 1 60); do echo "<p>line $i of the lab's page</p>"; done >"$LAB_DIR/www/index.html"
LAB_DB_URL=$DB
lab_write_config
# The UDP limit is a quarter of the default: hping3 reaches 20k datagrams/s
# only on an idle machine, and a slower sender is not a flood by the
# configuration's own measure (the detector follows the kernel's limit).
cat >>"$LAB_CONF" <<EOF
ratelimit:
  udp: 5000
response:
  block_ttl: 60s
forensics:
  dir: $LAB_DIR/pcap
  max_bytes: 64MiB
EOF
if ! lab_agent_start; then
	tap_fail "ztagent starts with detection on"
	exit 1
fi
check "ztagent starts with detection on" grep -q "event=detection_on.*mode=block" "$LAB_LOG"
ztctl endpoint add --ifname v-web --ip $WEB --labels app=web --namespace lab --name web >/dev/null
(cd "$LAB_DIR/www" && exec ip netns exec "${LAB_ID}-web" "$PY" -m http.server 8080 --bind $WEB) \
	>/dev/null 2>&1 &
LAB_PIDS+=($!)
check "the web server listens" \
	wait_for "in_pod web ss -Hltn 'sport = :8080' | grep -q LISTEN" 150
check "benign: the page before the floods" \
	in_ext curl -s -o /dev/null -m 3 --interface $BENIGN "http://$WEB:8080/"

# The benign client: one request every 50 ms for the whole run, each counted.
cat >"$LAB_DIR/benign.sh" <<EOF
ok=0 n=0
end=\$((\$(date +%s) + \$1))
while [ \$(date +%s) -lt \$end ]; do
	n=\$((n + 1))
	curl -s -o /dev/null -m 3 -w '%{http_code}\n' --interface $BENIGN "http://$WEB:8080/" | grep -q 200 && ok=\$((ok + 1))
	sleep 0.05
done
echo "benign \$ok \$n"
EOF
in_ext bash "$LAB_DIR/benign.sh" 24 >"$LAB_DIR/benign.out" 2>&1 &
BENIGN_PID=$!
LAB_PIDS+=($BENIGN_PID)
sleep 2

blocked() { ztctl block list -o json | grep -q "\"cidr\": \"$1/32\""; }
# Polls every 10 ms; prints the milliseconds from $2 until $1 is blocked.
block_after() {
	local a=$1 t0=$2
	for _ in $(seq 1 1500); do
		if blocked "$a"; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.01
	done
	return 1
}

# Per packet: the attacker's packets as they leave its namespace (ext0)
# and as they reach the pod (eth0), timestamped by the kernel on the same
# clock. From the flood's first packet to the last one the pod got: the
# time until the blocklist cut it (before that only its token bucket,
# which lets the limit's worth a second through).
cap_start() { # NS IF HOST OUT: sets CAP_PID once dumpcap captures
	ip netns exec "$1" dumpcap -q -i "$2" -f "src host $3" -w "$4" 2>"$4.log" &
	CAP_PID=$!
	LAB_PIDS+=($CAP_PID)
	wait_for "grep -q 'Capturing on' '$4.log'" 100
}
cap_stop() { # PID...
	kill -INT "$@" 2>/dev/null
	wait "$@" 2>/dev/null
}
cap_first() { tshark -n -r "$1" -T fields -e frame.time_epoch 2>/dev/null | head -n 1; }
cap_last() { tshark -n -r "$1" -T fields -e frame.time_epoch 2>/dev/null | tail -n 1; }
cap_n() { tshark -n -r "$1" -T fields -e frame.time_epoch 2>/dev/null | wc -l; }
# cut_ms NAME HOST: reports and prints the ms from the first packet sent to the last delivered.
cut_ms() {
	local s0 s1 d1 ms sent rate
	s0=$(cap_first "$LAB_DIR/$1.ext.pcap")
	s1=$(cap_last "$LAB_DIR/$1.ext.pcap")
	d1=$(cap_last "$LAB_DIR/$1.pod.pcap")
	[ -n "$s0" ] && [ -n "$d1" ] || return 1
	ms=$(awk -v a="$s0" -v b="$d1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
	sent=$(cap_n "$LAB_DIR/$1.ext.pcap")
	rate=$(awk -v a="$s0" -v b="$s1" -v n="$sent" 'BEGIN { printf "%.0f", (b > a) ? n / (b - a) : 0 }')
	echo "# $1 flood from $2 at $rate packets/s: first packet sent $s0, last delivered to the pod $d1: cut after $ms ms ($(cap_n "$LAB_DIR/$1.pod.pcap") of $sent packets delivered)" >&2
	echo "$ms"
}

# flood_cut NAME LABEL SRC AS SECS HPING3-ARGS...: hping3 --flood from SRC at
# the pod for SECS; SRC blocked (ztctl block list says AS), cut per packet.
flood_cut() {
	local name=$1 label=$2 src=$3 as=$4 secs=$5 c1 c2 t0 ms cut
	shift 5
	cap_start "$LAB_EXT" ext0 $src "$LAB_DIR/$name.ext.pcap"
	c1=$CAP_PID
	cap_start "${LAB_ID}-web" eth0 $src "$LAB_DIR/$name.pod.pcap"
	c2=$CAP_PID
	t0=$(now_ms)
	lab_bg_in "$LAB_EXT" timeout "$secs" hping3 -q "$@" --flood -a $src $WEB
	ms=$(block_after $src "$t0")
	check "$label: $src blocked (${ms:-never} ms after hping3 started)" test -n "$ms"
	check "$label: ztctl block list says the flood detector blocked it ($as)" \
		grep -q "$src/32.*detector.*$as" <<<"$(ztctl block list)"
	sleep 1
	cap_stop $c1 $c2
	cut=$(cut_ms "$name" $src)
	check "$label: cut by the blocklist <= $CUT_MS ms after its first packet (${cut:-?} ms)" \
		awk -v v="${cut:-99999}" -v b=$CUT_MS 'BEGIN { exit !(v <= b) }'
}

# --- SYN flood: as fast as hping3 goes from one source (tens of thousands a second) ---
flood_cut syn "SYN flood" $SYNSRC flood 8 -S -p 8080
# --- UDP flood: as fast as hping3 goes (over 5k datagrams/s, the configured limit) ---
flood_cut udp "UDP flood" $UDPSRC flood 6 --udp -p 9999 -d 64
# --- ACK flood: TCP segments of no connection, no SYN among them ---
# Every packet passes the guard's limits (none is a SYN, all packets have
# no limit by default) and the pod answers each with a reset: tc_uplink
# counts the resets the node sends back to the source.
flood_cut ack "ACK flood" $ACKSRC flood/out-of-state 6 -A -p 8080
# PSH/ACK segments with data at the node's own address (its kernel answers them).
lab_bg_in "$LAB_EXT" timeout 6 hping3 -q -P -A -d 100 -p 22 --flood -a $NACKSRC $LAB_NODE_IP
nack_ms=$(block_after $NACKSRC "$(now_ms)")
check "PSH/ACK flood at the node: $NACKSRC blocked as flood/out-of-state (${nack_ms:-never} ms)" \
	grep -q "$NACKSRC/32.*detector.*flood/out-of-state" <<<"$(ztctl block list)"
# --- FIN/ACK and RST floods: segments that open no flow and find none ---
# The pod answers a FIN/ACK of no connection with a reset, which its
# egress policy (none here) keeps in, so tc_uplink never sees it; nothing
# answers an RST. tc_endpoint counts both as they arrive.
flood_cut fin "FIN/ACK flood" $FINSRC flood/out-of-state 6 -F -A -p 8080
flood_cut rst "RST flood" $RSTSRC flood/out-of-state 6 -R -p 8080
# Resets at the node's own address: its kernel answers none, and no socket
# of its owns them; the guard counts each as it passes (xdp_guard.bpf.c,
# guard_rst_stray).
lab_bg_in "$LAB_EXT" timeout 6 hping3 -q -R -p 22 --flood -a $NRSTSRC $LAB_NODE_IP
nrst_ms=$(block_after $NRSTSRC "$(now_ms)")
check "RST flood at the node: $NRSTSRC blocked as flood/out-of-state (${nrst_ms:-never} ms)" \
	grep -q "$NRSTSRC/32.*detector.*flood/out-of-state" <<<"$(ztctl block list)"
ztctl block list | grep -E "$SYNSRC/|$UDPSRC/|$ACKSRC/|$NACKSRC/|$FINSRC/|$RSTSRC/|$NRSTSRC/" | sed 's/^/# /'

wait $BENIGN_PID
read -r _ ok n <"$LAB_DIR/benign.out"
echo "# benign requests during the floods: ${ok:-0} of ${n:-0} answered"
check "benign: >= 99% of its requests during the floods answered (${ok:-0}/${n:-0})" \
	test "${n:-0}" -ge 20 -a $((${ok:-0} * 100)) -ge $((${n:-1} * 99))
not_blocked() { ! blocked "$1"; }
check "benign: $BENIGN is not blocked" not_blocked $BENIGN

# --- the incident, its block latency and its pcap ---
inc=$(ztctl incidents list -o json | "$PY" -c '
import json, sys
for i in json.load(sys.stdin).get("incidents", []):
    if i.get("threat_type") == "flood" and i.get("src") == sys.argv[1]:
        print(i["id"]); break' $SYNSRC)
ev=$(ztctl incidents show "${inc:-none}" -o json 2>/dev/null)
"$PY" -c '
import json, sys
e = json.loads(sys.argv[1])
e = e.get("incident", e) if isinstance(e, dict) else e[0]
print("# SYN flood: decision to map write %.3f ms" % (e["block_us"] / 1000))
' "$ev" 2>&1 | tail -n 1 | sed 's/^\([^#]\)/# (no timing: \1/'
echo "# SYN flood: attacker flows recorded before the block (they passed): $(q "SELECT count(*) FROM network_flows WHERE host(source_ip) = '$SYNSRC' AND flow_kind = 'flow' AND threat_type IS NULL" 2>/dev/null)"
ztctl incidents show "${inc:-none}" 2>&1 | sed 's/^/# /'
cap=$(sed -n 's/.*"capture": "\([^"]*\)".*/\1/p' <<<"$ev")
check "forensics: the SYN flood's capture file is there (${cap:-none})" test -s "$cap"
npk=$(tshark -n -r "$cap" -Y "ip.src == $SYNSRC && tcp.flags.syn == 1" 2>/dev/null | wc -l)
check "forensics: tshark reads it and it holds the attacker's SYNs ($npk)" test "$npk" -gt 0

# --- a flood on a VLAN: its capture keeps the tag ---
# The kernel takes a VLAN tag out of the frame before the TC hooks
# (skb->vlan_tci); the capture record carries it beside the frame and the
# daemon puts it back, so the pcap shows the frame as it was on the wire.
# The lab's kernel has no 8021q module (no VLAN devices): the flood is
# ICMP echo requests in 802.1Q frames of VLAN 101 written to ext0 by a
# packet socket; uplink0's receive path takes the tag out all the same.
VLSRC=198.18.101.2
cat >"$LAB_DIR/vlanflood.py" <<'EOF'
import socket, struct, sys, time
src, dst, dmac, secs = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(":", "")), float(sys.argv[4])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("ext0", 0))
smac = s.getsockname()[4]
end, seq, n = time.time() + secs, 0, 0
while time.time() < end:
    for _ in range(200):
        seq = (seq + 1) & 0xffff
        icmp = struct.pack("!BBHHH", 8, 0, 0, 0x5a5a, seq) + b"z" * 32
        icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(dmac + smac + struct.pack("!HHH", 0x8100, 101, 0x0800) + ip + icmp)
        n += 1
print("sent", n)
EOF
umac=$(in_node cat /sys/class/net/uplink0/address)
lab_bg_in "$LAB_EXT" timeout 10 "$PY" "$LAB_DIR/vlanflood.py" $VLSRC $LAB_NODE_IP "$umac" 4
VLPID=$LAB_BG_PID
vl_ms=$(block_after $VLSRC "$(now_ms)")
check "ICMP flood over VLAN 101: $VLSRC blocked (${vl_ms:-never} ms)" test -n "$vl_ms"
wait $VLPID 2>/dev/null
sleep 2 # the capture's flush (about a second)
vinc=$(ztctl incidents list -o json | "$PY" -c '
import json, sys
for i in json.load(sys.stdin).get("incidents", []):
    if i.get("threat_type") == "flood" and i.get("src") == sys.argv[1]:
        print(i["id"]); break' $VLSRC)
vcap=$(ztctl incidents show "${vinc:-none}" -o json 2>/dev/null | sed -n 's/.*"capture": "\([^"]*\)".*/\1/p')
# Read while the file is open: a gzip member per flush (pcapng.gz).
vids=$(tshark -n -r "$vcap" -Y "ip.src == $VLSRC && icmp" -T fields -e vlan.id 2>/dev/null)
vall=$(grep -c . <<<"$vids")
vtag=$(grep -cx 101 <<<"$vids")
check "forensics: the VLAN flood's capture shows every packet with its tag, VLAN 101 ($vtag of $vall)" \
	test "$vtag" -gt 0 -a "$vtag" -eq "$vall"

# --- every row scored ---
scored() {
	test "$(q "SELECT count(*) FROM network_flows")" -gt 0 &&
		test "$(q "SELECT count(*) FROM network_flows WHERE anomaly_score IS NULL")" = 0 &&
		test "$(q "SELECT count(*) FROM network_flows WHERE host(source_ip) IN ('$SYNSRC', '$UDPSRC') AND threat_type = 'flood' AND anomaly_score > 0")" -gt 0 &&
		test "$(q "SELECT count(*) FROM network_flows WHERE host(source_ip) IN ('$SYNSRC', '$UDPSRC') AND blocked")" -gt 0
}
check "database: every flow row scored, the attackers' rows flood and blocked" wait_for scored 300
q "SELECT host(source_ip), flow_kind, threat_type, blocked, count(*), round(max(anomaly_score)::numeric, 3)
   FROM network_flows GROUP BY 1, 2, 3, 4 ORDER BY 1" | sed 's/^/# /'
check "the agent logged no scoring or capture failure" \
	bash -c "! grep -qE 'event=(capture_watch_failed|capture_not_started|model_refused)' '$LAB_LOG'"
echo "1..$TAP_N"
