#!/usr/bin/env bash
# `make demo`: ztagent on a lab of network namespaces, narrated. Everything it
# creates (namespaces, veths, bpffs mount, processes) is removed on exit.
set -euo pipefail
. "$(dirname "$0")/lab.sh"

B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
[ -t 1 ] || B='' D='' N=''
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
run() { printf '%s$ %s%s\n' "$D" "$*" "$N"; "$@"; }
ping_once() {
	if in_ext ping -n -c1 -W1 -I "$1" "$LAB_NODE_IP" >/dev/null 2>&1; then
		echo "   ping from $1 to the node: replied"
	else
		echo "   ping from $1 to the node: no reply (dropped)"
	fi
}

step "Building the lab: an external namespace and a node namespace joined by a veth"
lab_init demo
echo "   external $LAB_EXT: ext0 $LAB_EXT_IP, $LAB_EXT_IP2"
echo "   node     $LAB_NODE: uplink0 $LAB_NODE_IP  <- ztagent guards this uplink with XDP"
echo "   configuration ($LAB_CONF):"
sed 's/^/     /' "$LAB_CONF"

step "Checking the configuration, then starting ztagent on the node"
run "$ZTAGENT" --check-config --config "$LAB_CONF"
lab_agent_start
sed 's/^/   /' "$LAB_LOG"

step "Traffic passes while nothing is blocked"
ping_once "$LAB_EXT_IP"
ping_once "$LAB_EXT_IP2"

step "An operator blocks $LAB_EXT_IP with ztctl"
run ztctl block add "$LAB_EXT_IP" --reason "demo: suspicious scanner" --ttl 10m
ping_once "$LAB_EXT_IP"
ping_once "$LAB_EXT_IP2"
in_ext ping -n -q -c 20 -i 0.01 -W1 -I "$LAB_EXT_IP" "$LAB_NODE_IP" >/dev/null 2>&1 || true
run ztctl block list

step "The drop counters (per-CPU in the kernel, summed by the daemon)"
run ztctl status

step "The same state, straight from the pinned map with bpftool"
run bpftool map dump pinned "$LAB_BPFFS/ztagent/blocklist_v4"
run bpftool map dump pinned "$LAB_BPFFS/ztagent/blocklist_prefixes"

step "A restart keeps the block: SIGTERM leaves enforcement in place"
lab_agent_stop
echo "   (agent stopped)"
ping_once "$LAB_EXT_IP"
lab_agent_start
echo "   (agent started again: it took over the pinned maps and replaced its program atomically)"
tail -n 3 "$LAB_LOG" | sed 's/^/   /'
ping_once "$LAB_EXT_IP"

step "Unblocking"
run ztctl block del "$LAB_EXT_IP"
ping_once "$LAB_EXT_IP"

step "Detaching: programs and pins removed, the agent exits"
run ztctl detach
wait "$LAB_AGENT_PID" 2>/dev/null || true
LAB_AGENT_PID=
echo "   agent log:"
tail -n 8 "$LAB_LOG" | sed 's/^/   /'

step "Removing the lab"
