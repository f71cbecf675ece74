#!/usr/bin/env bash
# Integration: the guard on the uplink's TC ingress (tc_guard), what is its
# own beyond xdp_guard_tc.sh's blocks: xdp.mode auto choosing it on the
# lab's veth uplink (and saying why), the hook moved at a restart both ways
# with the other one taken off (never both, never none), drift repair of
# its filter and of the clsact qdisc under it, a SYN challenge sent back
# out of the uplink to a real client (whose connection still succeeds),
# and the benign stream through it. Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

lab_init tcg
TCP_PORT=5002
lab_bg_in "$LAB_NODE" nc -lk "$LAB_NODE_IP" "$TCP_PORT"
tcp_ok() { in_ext nc -z -w2 -s "$1" "$LAB_NODE_IP" "$TCP_PORT" >/dev/null 2>&1; }
pings() { in_ext ping -n -q -c1 -W1 -I "$1" "$LAB_NODE_IP" >/dev/null 2>&1; }
no_ping() { ! pings "$1"; }

# uplink0's entry in ztctl status: FIELD
iface() {
	ztctl status -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
i = [i for i in d["interfaces"] if i["name"] == "uplink0"][0]
v = i[sys.argv[1]]
print(str(v).lower() if isinstance(v, bool) else v)' "$1"
}
counter() { # ACTION REASON: packets, from ztctl status -o json
	ztctl status -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(c["packets"] for c in d["counters"] if c["action"] == sys.argv[1] and c["reason"] == sys.argv[2]))' "$1" "$2"
}
has_tc_guard() { [ -n "$(lab_tc_guard_id)" ]; }
no_tc_guard() { ! has_tc_guard; }
has_xdp() { in_node ip link show uplink0 | grep -q 'prog/xdp'; }
no_xdp() { ! has_xdp; }
egress_uplink() { in_node tc filter show dev uplink0 egress | grep -q tc_uplink; }
wait_for() { # TRIES CMD...: CMD every 100 ms until it succeeds
	local n=$1
	shift
	for _ in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# --- auto: TC ingress on a veth ---
LAB_XDP_MODE=auto lab_write_config
lab_agent_start || {
	tap_fail "ztagent starts (xdp.mode auto)"
	exit 1
}
tap_ok "ztagent starts (xdp.mode auto)"
check "auto chose TC ingress on the veth and said why" \
	grep -q 'event=xdp_mode_auto iface=uplink0 mode=tc reason=".*veth' "$LAB_LOG"
check "status: uplink0's mode is tc" test "$(iface mode)" = tc
check "status: the guard is attached" test "$(iface attached)" = true
check "status: prog_id is tc_guard's ($(iface prog_id))" test "$(iface prog_id)" = "$(lab_tc_guard_id)"
check "tc_guard is on uplink0's TC ingress" has_tc_guard
check "no XDP program is on uplink0" no_xdp
check "tc_uplink is on uplink0's TC egress" egress_uplink
check "TCP passes" tcp_ok "$LAB_EXT_IP"
ztctl block add "$LAB_EXT_IP/32" --reason tc-hook >/dev/null
check "a block drops at TC ingress" no_ping "$LAB_EXT_IP"
check "counted under blocklist ($(counter drop blocklist))" test "$(counter drop blocklist)" -gt 0
ztctl block del "$LAB_EXT_IP/32" >/dev/null
check "unblocked: passes again" pings "$LAB_EXT_IP"

# --- drift: the filter, then the qdisc under it ---
repaired() { grep -c 'event=drift_repaired kind=xdp subject=uplink0' "$LAB_LOG"; }
rep0=$(repaired)
in_node tc filter del dev uplink0 ingress pref $((0x7a74)) handle 0x7a74 bpf
# The agent hears of the deletion at once and may have repaired it before a
# look (tc and a parse, tens of ms) sees the gap: then its log says so.
gone_or_repaired() { no_tc_guard || [ "$(repaired)" -gt "$rep0" ]; }
check "the filter deleted by hand is gone (or already repaired)" gone_or_repaired
check "drift repair puts tc_guard back within 3 s" wait_for 30 has_tc_guard
check "drift repair is logged" wait_for 30 eval '[ "$(repaired)" -gt "$rep0" ]'
ztctl block add "$LAB_EXT_IP/32" --reason after-drift >/dev/null
check "the repaired filter enforces" no_ping "$LAB_EXT_IP"
ztctl block del "$LAB_EXT_IP/32" >/dev/null
in_node tc qdisc del dev uplink0 clsact
check "drift repair recreates clsact and tc_guard within 3 s" wait_for 30 has_tc_guard
check "drift repair puts tc_uplink back on egress too" wait_for 30 egress_uplink
check "that repair is logged" grep -q 'event=drift_repaired kind=tc subject=uplink0' "$LAB_LOG"

# --- a SYN challenge sent back out of the uplink ---
lab_agent_stop
LAB_XDP_MODE=tc lab_write_config
cat >>"$LAB_CONF" <<EOC
ratelimit:
  dst_syn: 3
EOC
lab_agent_start || tap_fail "ztagent starts (xdp.mode tc, ratelimit.dst_syn 3)"
ok=0
for i in $(seq 1 30); do
	tcp_ok "$LAB_EXT_IP" && ok=$((ok + 1))
done
chal=$(counter tx syn-challenge)
ver=$(counter pass syn-verified)
echo "# 30 connections from one client with dst_syn 3/s: $ok made; syn-challenge $chal, syn-verified $ver"
check "the bucket ran out: SYNs were challenged from TC ($chal)" test "${chal:-0}" -gt 0
check "the client answered a challenge and was verified ($ver)" test "${ver:-0}" -gt 0
check "every connection of the real client was made ($ok/30)" test "$ok" -eq 30

# --- the hook moves at a restart, with no gap and never twice ---
lab_agent_stop
LAB_XDP_MODE=native lab_write_config
ztctl_blocked() { ztctl block add "$LAB_EXT_IP/32" --reason hook-move >/dev/null; }
ip netns exec "$LAB_EXT" ping -n -D -i 0.01 -c 300 -w 5 -I "$LAB_EXT_IP2" "$LAB_NODE_IP" >"$LAB_DIR/allowed.log" 2>&1 &
p2=$!
LAB_PIDS+=("$p2")
lab_agent_start
check "restarted with xdp.mode native" test "$(iface mode)" = native
check "xdp_guard is on uplink0" has_xdp
check "tc_guard was taken off (logged)" grep -q 'event=tc_guard_detached iface=uplink0' "$LAB_LOG"
check "tc_guard is no longer on uplink0's ingress" no_tc_guard
ztctl_blocked
check "the XDP guard enforces" no_ping "$LAB_EXT_IP"
lab_agent_stop
LAB_XDP_MODE=tc lab_write_config
lab_agent_start
check "restarted with xdp.mode tc" test "$(iface mode)" = tc
check "tc_guard is back on uplink0's ingress" has_tc_guard
check "xdp_guard was taken off" no_xdp
check "the block held through both moves" no_ping "$LAB_EXT_IP"
wait "$p2" 2>/dev/null
sent=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$LAB_DIR/allowed.log")
set -- $sent
check "allowed traffic flowed through the moves (sent/received: $sent)" \
	test "${1:-0}" -gt 0 -a $((${1:-0} - ${2:-0})) -le 2
ztctl block del "$LAB_EXT_IP/32" >/dev/null

# --- detach ---
ztctl detach >/dev/null
wait "$LAB_AGENT_PID" 2>/dev/null
LAB_AGENT_PID=
check "after detach tc_guard is gone" no_tc_guard
check "after detach tc_uplink is gone" bash -c "! ip netns exec $LAB_NODE tc filter show dev uplink0 egress | grep -q tc_uplink"
check "after detach traffic passes" pings "$LAB_EXT_IP"
echo "1..$TAP_N"
