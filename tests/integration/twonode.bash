# SPDX-License-Identifier: GPL-2.0-only
# The two-node lab of the mTLS tests (sourced; not a test itself: run.sh
# runs *.sh). The caller sets ID, A, R, B (node, router, node namespaces),
# PODS (the pods' namespaces), DIR (its scratch directory), PIDS=() and
# n=0, then calls twonode_make and pod, and twonode_cleanup from its EXIT
# trap.
#
#   ns A (node-a)                 ns R (router)                 ns B (node-b)
#   pods 198.18.1.x          uplink 198.18.100.1 ═ .254 | .254 ═ 198.18.101.1 uplink          pods 198.18.2.x
#   IPv6 (2001:2::/48, benchmarking): pods 2001:2:0:1::/64 on node a and
#   2001:2:0:2::/64 on node b (each pod's default route: fe80::1 on its
#   veth), links 2001:2:0:100::/64 and :101::/64. twonode_v6only takes the
#   links' IPv4 off (an IPv6-only node network).

# Processes (PIDS, then whatever is left in the namespaces), namespaces,
# the agents' bpffs mounts and DIR (kept with MTLS_KEEP=1).
twonode_cleanup() {
	local p ns m
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "$A" "$R" "$B" "${PODS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for ns in "$A" "$R" "$B" "${PODS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for m in "$DIR/bpffs-a" "$DIR/bpffs-b"; do mountpoint -q "$m" && umount "$m"; done
	if [ "${twonode_failed:-0}" -gt 0 ] && [ -d "${ROOT:-.}/build" ]; then
		# A failed check: the agents' and tools' logs go beside the test's own, so a run
		# in a clean clone says why (the scratch directory itself is removed).
		local keep
		keep="${ROOT:-.}/build/test-logs/$(basename "$0" .sh).d"
		rm -rf "$keep" && mkdir -p "$keep" &&
			find "$DIR" -maxdepth 1 -type f \( -name '*.log' -o -name '*.err' -o -name '*.json' -o -name '*.yaml' -o -name '*.out' \) \
				-exec cp {} "$keep/" \; && echo "# $twonode_failed failed: logs kept in $keep"
	fi
	if [ -n "${MTLS_KEEP:-}" ]; then echo "# kept $DIR"; else rm -rf "$DIR"; fi
}

check() {
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		twonode_failed=$((${twonode_failed:-0} + 1))
	fi
}
bail() {
	echo "Bail out! $*"
	twonode_failed=$((${twonode_failed:-0} + 1))
	exit 1
}
bg() { # bg NS CMD...: LAST is the PID
	local ns=$1
	shift
	ip netns exec "$ns" "$@" &
	PIDS+=($!)
	LAST=$!
}
wait_for() { # wait_for SECONDS CMD...
	local t=$(($1 * 10))
	shift
	while [ $t -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		t=$((t - 1))
	done
	return 1
}
ztctl_a() { "$ZTCTL" --socket "$DIR/a.sock" "$@"; }
ztctl_b() { "$ZTCTL" --socket "$DIR/b.sock" "$@"; }
# jq-less JSON reads: js NODE EXPR (python over `ztctl mtls status -o json`)
js() {
	"ztctl_$1" mtls status -o json 2>/dev/null |
		"$PY" -c "import json,sys; d=json.load(sys.stdin); print($2)" 2>/dev/null
}

# The namespaces, the links and routes of both families, forwarding on.
twonode_make() {
	local ns
	for ns in "$A" "$R" "$B" "${PODS[@]}"; do
		ip netns add "$ns" && ip -n "$ns" link set lo up
		# No duplicate address detection: addresses are usable at once.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0
	done
	ip link add uplink netns "$A" type veth peer name ra netns "$R"
	ip link add rb netns "$R" type veth peer name uplink netns "$B"
	ip -n "$A" addr add 198.18.100.1/24 dev uplink
	ip -n "$R" addr add 198.18.100.254/24 dev ra
	ip -n "$R" addr add 198.18.101.254/24 dev rb
	ip -n "$B" addr add 198.18.101.1/24 dev uplink
	ip -n "$A" link set uplink up
	ip -n "$R" link set ra up
	ip -n "$R" link set rb up
	ip -n "$B" link set uplink up
	ip -n "$A" route add default via 198.18.100.254
	ip -n "$B" route add default via 198.18.101.254
	ip -n "$R" route add 198.18.1.0/24 via 198.18.100.1
	ip -n "$R" route add 198.18.2.0/24 via 198.18.101.1
	for ns in "$A" "$R" "$B"; do
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	done
	ip -n "$A" addr add 2001:2:0:100::1/64 dev uplink nodad
	ip -n "$R" addr add 2001:2:0:100::fe/64 dev ra nodad
	ip -n "$R" addr add 2001:2:0:101::fe/64 dev rb nodad
	ip -n "$B" addr add 2001:2:0:101::1/64 dev uplink nodad
	ip -n "$A" -6 route add default via 2001:2:0:100::fe
	ip -n "$B" -6 route add default via 2001:2:0:101::fe
	ip -n "$R" -6 route add 2001:2:0:1::/64 via 2001:2:0:100::1
	ip -n "$R" -6 route add 2001:2:0:2::/64 via 2001:2:0:101::1
}

# The node network IPv6 only: the IPv4 addresses (and with them the IPv4
# routes) off the node links. The pods keep their IPv4 addresses, which then
# cross between the nodes only inside the agents' tunnel.
twonode_v6only() {
	ip -n "$A" -4 addr flush dev uplink
	ip -n "$R" -4 addr flush dev ra
	ip -n "$R" -4 addr flush dev rb
	ip -n "$B" -4 addr flush dev uplink
}

pod() { # pod NODE-NS NAME IP IP6: the pod's namespace is $ID-NAME, its veth v-NAME
	local node=$1 ns="$ID-$2" ip=$3 ip6=$4
	ip link add eth0 netns "$ns" type veth peer name "v-$2" netns "$node"
	ip -n "$ns" addr add "$ip/32" dev eth0
	ip -n "$ns" addr add "$ip6/128" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default dev eth0
	ip -n "$node" addr add fe80::1/64 dev "v-$2" nodad
	ip -n "$node" link set "v-$2" up
	ip -n "$ns" -6 route add default via fe80::1 dev eth0
	ip netns exec "$node" sysctl -qw "net.ipv4.conf.v-$2.proxy_arp=1"
	ip netns exec "$node" sysctl -qw "net.ipv4.neigh.v-$2.proxy_delay=0"
	ip -n "$node" route add "$ip/32" dev "v-$2"
	ip -n "$node" -6 route add "$ip6/128" dev "v-$2"
}
