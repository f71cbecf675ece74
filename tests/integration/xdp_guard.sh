#!/usr/bin/env bash
# Integration: the real ztagent on a lab node's uplink; real ICMP, UDP and
# TCP from an external namespace; ztctl blocks, unblocks, expires; the
# daemon restarts without a gap. Prints TAP lines. The guard runs in XDP
# (LAB_XDP_MODE, native by default) or, with LAB_XDP_MODE tc or auto (the
# lab's uplink is a veth), on the uplink's TC ingress (tc_guard): the
# checks are the same (tests/integration/xdp_guard_tc.sh runs them so).
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

lab_init "${XDP_GUARD_LAB:-xdp}"
case ${LAB_XDP_MODE:-native} in
tc | auto) HOOK=tc ;;
*) HOOK=xdp ;;
esac
# The id of the guard's program on uplink0, in its hook; empty when none.
guard_prog() {
	if [ "$HOOK" = tc ]; then
		lab_tc_guard_id
	else
		in_node ip -j link show uplink0 | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])' 2>/dev/null
	fi
}
# Neither xdp_guard nor tc_guard is on uplink0.
no_guard() {
	! in_node ip link show uplink0 | grep -q 'prog/xdp' &&
		! in_node tc filter show dev uplink0 ingress | grep -q tc_guard
}

pings() { # SRC: one ping, 1 s timeout
	in_ext ping -n -q -c1 -W1 -I "$1" "$LAB_NODE_IP" >/dev/null 2>&1
}
no_ping() { ! pings "$1"; }

TCP_PORT=5002
lab_bg_in "$LAB_NODE" nc -lk "$LAB_NODE_IP" "$TCP_PORT"
tcp_ok() { in_ext nc -z -w1 -s "$1" "$LAB_NODE_IP" "$TCP_PORT" >/dev/null 2>&1; }
no_tcp() { ! tcp_ok "$1"; }

UDP_PORT=6000
udp_ok() { # SRC: a datagram from SRC reaches a listener on the node
	local port=$((UDP_PORT++)) out="$LAB_DIR/udp.$UDP_PORT"
	ip netns exec "$LAB_NODE" timeout 2 nc -u -l "$LAB_NODE_IP" "$port" >"$out" 2>/dev/null &
	local lp=$!
	sleep 0.2
	for i in 1 2 3 4 5; do
		in_ext bash -c "exec 3>/dev/udp/$LAB_NODE_IP/$port; printf 'token-$i\n' >&3" 2>/dev/null
		sleep 0.05
	done
	wait $lp 2>/dev/null
	grep -q token "$out"
}
no_udp() { ! udp_ok "$1"; }

counter() { # REASON: packets dropped for that reason, from ztctl status -o json
	ztctl status -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(c["packets"] for c in d["counters"] if c["action"] == "drop" and c["reason"] == sys.argv[1]))' "$1"
}

if ! lab_agent_start; then
	tap_fail "ztagent starts on the lab uplink"
	exit 1
fi
tap_ok "ztagent starts on the lab uplink"
attached() {
	ztctl status -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(i["name"] == "uplink0" and i["attached"] for i in d["interfaces"]) else 1)'
}
listed() {
	local out
	out=$(ztctl block list)
	grep -q "$1" <<<"$out"
}
not_listed() { ! listed "$1"; }
check "status shows the guard attached to uplink0 ($HOOK)" attached
check "the guard's program is on uplink0's $HOOK hook (id $(guard_prog))" test -n "$(guard_prog)"
check "pins exist under the configured bpffs" test -e "$LAB_BPFFS/ztagent/blocklist_v4"

check "ICMP passes before any block" pings "$LAB_EXT_IP"
check "UDP passes before any block" udp_ok "$LAB_EXT_IP"
check "TCP passes before any block" tcp_ok "$LAB_EXT_IP"

# --- block stops traffic within 100 ms ---
pinglog="$LAB_DIR/ping.log"
# A ping every 10 ms, 150 of them (it ends by itself), blocked half-way.
ip netns exec "$LAB_EXT" ping -n -D -i 0.01 -c 150 -w 3 -I "$LAB_EXT_IP" "$LAB_NODE_IP" >"$pinglog" 2>&1 &
ping_pid=$!
LAB_PIDS+=("$ping_pid")
sleep 0.5
t0=$(date +%s.%N)
ztctl block add "$LAB_EXT_IP/32" --reason "integration test" >/dev/null
rc=$?
wait "$ping_pid" 2>/dev/null
check "ztctl block add succeeds" test "$rc" -eq 0
last=$(grep -o '^\[[0-9.]*\] [0-9]* bytes from' "$pinglog" | tail -n1 | sed 's/^\[\([0-9.]*\)\].*/\1/')
if [ -n "$last" ] && python3 -c "import sys; sys.exit(0 if float('$last') - float('$t0') < 0.1 else 1)"; then
	tap_ok "traffic stops within 100 ms of block add (last reply $(python3 -c "print(round((float('$last')-float('$t0'))*1000,1))") ms after)"
else
	tap_fail "traffic stops within 100 ms of block add (t0=$t0 last=$last)"
fi
check "blocked: ICMP dropped" no_ping "$LAB_EXT_IP"
check "blocked: UDP dropped" no_udp "$LAB_EXT_IP"
check "blocked: TCP dropped" no_tcp "$LAB_EXT_IP"
check "another source still passes" pings "$LAB_EXT_IP2"
drops=$(counter blocklist)
check "blocklist drops are counted ($drops)" test "${drops:-0}" -gt 0
check "block list shows the entry with its reason" listed "$LAB_EXT_IP/32.*integration test"
bpftool_sees() { # no "| grep -q" under pipefail: bpftool would die of SIGPIPE
	local out
	out=$(bpftool map dump pinned "$LAB_BPFFS/ztagent/blocklist_v4")
	grep -q '"prefixlen": 32' <<<"$out" && grep -q '198,18,0,1' <<<"$out"
}
check "bpftool sees the pinned entry" bpftool_sees

# --- unblock ---
ztctl block del "$LAB_EXT_IP/32" >/dev/null
check "block del restores ICMP" pings "$LAB_EXT_IP"
check "block del restores UDP" udp_ok "$LAB_EXT_IP"
check "block del restores TCP" tcp_ok "$LAB_EXT_IP"

# --- prefixes ---
ztctl block add 198.18.0.0/24 >/dev/null
check "a /24 blocks the first source inside it" no_ping "$LAB_EXT_IP"
check "a /24 blocks the second source inside it" no_ping "$LAB_EXT_IP2"
ztctl allow add "$LAB_EXT_IP2/32" --reason "trusted scanner" >/dev/null
check "the allowlist wins over the blocklist" pings "$LAB_EXT_IP2"
check "a blocked source beside it stays blocked" no_ping "$LAB_EXT_IP"
ztctl allow del "$LAB_EXT_IP2/32" >/dev/null
ztctl block del 198.18.0.0/24 >/dev/null
check "all clear again" pings "$LAB_EXT_IP"
absent() { # LIST CIDR: deleting it fails and the message names the list
	local out
	out=$(ztctl "$1" del "$2" 2>&1) && return 1
	grep -q "$2 is not on the ${1}list (see 'ztctl $1 list')" <<<"$out"
}
check "allow del of an entry not there fails, naming the allowlist" absent allow "$LAB_EXT_IP2/32"
check "block del of an entry not there fails, naming the blocklist" absent block 198.18.0.0/24

# --- TTL ---
ztctl block add "$LAB_EXT_IP" --ttl 1s >/dev/null
check "a TTL block drops at once" no_ping "$LAB_EXT_IP"
sleep 1.2
check "a TTL block lapses after its TTL" pings "$LAB_EXT_IP"
sleep 0.5
check "the daemon removes the expired entry" not_listed "$LAB_EXT_IP/32"

# --- restart keeps blocks, with no gap ---
ztctl block add "$LAB_EXT_IP/32" --reason restart >/dev/null
old_prog=$(guard_prog)
# Both ping every 10 ms, 300 times, ending by themselves, across the restart.
ip netns exec "$LAB_EXT" ping -n -D -i 0.01 -c 300 -w 5 -I "$LAB_EXT_IP" "$LAB_NODE_IP" >"$LAB_DIR/blocked.log" 2>&1 &
p1=$!
ip netns exec "$LAB_EXT" ping -n -D -i 0.01 -c 300 -w 5 -I "$LAB_EXT_IP2" "$LAB_NODE_IP" >"$LAB_DIR/allowed.log" 2>&1 &
p2=$!
LAB_PIDS+=("$p1" "$p2")
sleep 0.3
lab_agent_stop
check "SIGTERM stops the daemon cleanly" test $? -eq 0
check "enforcement stays while no daemon runs" no_ping "$LAB_EXT_IP"
check "the pins stay while no daemon runs" test -e "$LAB_BPFFS/ztagent/blocklist_v4"
lab_agent_start
check "the daemon starts again over its pins" test $? -eq 0
wait "$p1" "$p2" 2>/dev/null
new_prog=$(guard_prog)
check "the restarted daemon replaced its program ($old_prog -> $new_prog)" \
	test -n "$new_prog" -a "$new_prog" != "$old_prog"
check "no reply from the blocked source at any moment of the restart" \
	test "$(grep -c 'bytes from' "$LAB_DIR/blocked.log")" -eq 0
sent=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$LAB_DIR/allowed.log")
set -- $sent
check "allowed traffic flowed through the restart (sent/received: $sent)" \
	test "${1:-0}" -gt 0 -a $((${1:-0} - ${2:-0})) -le 1
check "the block survived the restart" no_ping "$LAB_EXT_IP"
check "block list after restart still has it" listed "$LAB_EXT_IP/32"

# --- operator errors ---
ztctl block add 198.18.0.300 >/dev/null 2>"$LAB_DIR/err"
check "a bad CIDR is refused with exit 2" test $? -eq 2
check "the message names the bad value" grep -q '198.18.0.300' "$LAB_DIR/err"
"$ZTCTL_BIN" --socket "$LAB_DIR/nope.sock" status >/dev/null 2>"$LAB_DIR/err"
check "no daemon: exit 3" test $? -eq 3
check "no daemon: the message says where it looked" grep -q "nope.sock" "$LAB_DIR/err"
printf 'xdp:\n  mode: fast\n' >"$LAB_DIR/bad.yaml"
"$ZTAGENT" --check-config --config "$LAB_DIR/bad.yaml" >/dev/null 2>"$LAB_DIR/err"
check "--check-config refuses a bad file with exit 2" test $? -eq 2
check "--check-config names file, line and key" grep -q "bad.yaml:2:.*xdp.mode" "$LAB_DIR/err"
"$ZTAGENT" --check-config --config "$LAB_CONF" >/dev/null 2>&1
check "--check-config accepts the lab file" test $? -eq 0

# --- detach ---
ztctl detach >/dev/null
check "ztctl detach succeeds" test $? -eq 0
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=
check "after detach no guard program is on the uplink" no_guard
check "after detach the pins are gone" test ! -e "$LAB_BPFFS/ztagent"
check "after detach traffic passes" pings "$LAB_EXT_IP"

# --- ztagent --detach with no daemon running ---
lab_agent_start
ztctl block add "$LAB_EXT_IP/32" >/dev/null
lab_agent_stop
check "with the daemon stopped, the block still holds" no_ping "$LAB_EXT_IP"
in_node "$ZTAGENT" --detach --config "$LAB_CONF" >"$LAB_DIR/detach.out" 2>&1
check "ztagent --detach succeeds without a daemon" test $? -eq 0
check "ztagent --detach says what it removed" grep -q "removed the pins" "$LAB_DIR/detach.out"
check "after ztagent --detach no guard program is on the uplink" no_guard
check "after ztagent --detach the pins are gone" test ! -e "$LAB_BPFFS/ztagent"
check "after ztagent --detach traffic passes" pings "$LAB_EXT_IP"
