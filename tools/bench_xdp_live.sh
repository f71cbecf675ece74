#!/usr/bin/env bash
# tools/bench.sh xdplive: what XDP on the lab's uplink costs a benign TCP
# stream, side by side in one run and as ratios to the bare path. iperf3
# from the external namespace through the node (uplink0, forwarded) to a
# pod, rounds interleaved so drift on a shared machine hits every row alike:
#   bare            no XDP program, no agent
#   empty:MODE      an XDP program that passes everything (build/bpf/xdp_empty.bpf.o);
#                   empty:tc a TC program that does (build/bpf/tc_empty.bpf.o) on
#                   uplink0's ingress
#   xdp-filter:MODE xdp-tools' xdp-filter (no entries), a peer
#   agent:MODE      ztagent: the guard with detection on, TC on the pod's veth;
#                   agent:tc has the guard on uplink0's TC ingress (tc_guard);
#                   agent:auto is the agent's default (xdp.mode auto: tc on a veth)
#   agent-bpf:MODE  the agent's programs and maps as a stopped agent leaves them
#                   (SIGTERM keeps enforcement): the datapath without the daemon
#   agent-xdp:MODE  agent-bpf without tc_endpoint and tc_uplink (the pod veth's clsact
#                   removed, uplink0's egress filter deleted): the guard alone, in XDP,
#                   or tc_guard on uplink0's TC ingress in tc mode (auto on a veth)
#   old:MODE        the agent row with another build: BENCH_LIVE_OLD=DIR holding its
#                   ztagent and ztctl (a before/after comparison in one run)
# agent-bpf against agent tells what the daemon's own CPU costs the stream,
# agent-xdp against empty what the guard costs, agent-bpf against agent-xdp
# what tc_endpoint and tc_uplink cost. For agent rows the daemon's CPU
# during the runs is printed (cores, from /proc/PID/stat).
# MODE native, generic or tc. A native XDP program on a veth strips GSO
# from its peer (the kernel's veth_fix_features: ext0 shows "tso off"), so
# every segment crosses the node alone; generic mode sees the peer's
# batches but copies every paged skb; TC ingress sees them as they are.
# BENCH_LIVE_GRO="off on" repeats the rows with GRO on uplink0 too.
# Prints Gbit/s min/median/max per row and the median ratio to bare.
# Exits non-zero only when a run produced no figure.
set -uo pipefail
. "$(dirname "$0")/lab.sh"

for t in iperf3 ethtool xdp-filter; do
	command -v $t >/dev/null || {
		echo "bench xdplive: $t is missing (make deps)" >&2
		exit 1
	}
done
case " ${BENCH_LIVE_ROWS:-} " in
*" old:"* | *" old "*)
	[ -x "${BENCH_LIVE_OLD:-}/ztagent" ] && [ -x "$BENCH_LIVE_OLD/ztctl" ] || {
		echo "bench xdplive: the old row wants BENCH_LIVE_OLD=DIR with ztagent and ztctl" >&2
		exit 1
	}
	;;
esac
EMPTY=$LAB_ROOT/build/bpf/xdp_empty.bpf.o
TC_EMPTY=$LAB_ROOT/build/bpf/tc_empty.bpf.o
for f in "$EMPTY" "$TC_EMPTY"; do
	[ -f "$f" ] || {
		echo "bench xdplive: $f is missing: run 'make'" >&2
		exit 1
	}
done
PY=/usr/bin/python3
WEB=198.18.2.40
SECS=${BENCH_LIVE_SECS:-3}
ROUNDS=${BENCH_LIVE_ROUNDS:-3}
MODE=${BENCH_LIVE_MODE:-native}
ROWS=${BENCH_LIVE_ROWS:-"bare empty:native empty:generic empty:tc xdp-filter:native agent:native agent:generic agent:auto"}
GROS=${BENCH_LIVE_GRO:-off}
# Every ratio is to the bare path: it runs whatever rows were asked for.
case " $ROWS " in
*" bare "*) ;;
*) ROWS="bare $ROWS" ;;
esac

lab_init blive
lab_pod web $WEB
ip -n "$LAB_EXT" route add 198.18.2.0/24 via "$LAB_NODE_IP"
lab_policy_open web.yaml web 198.18.0.0/15 5201/TCP
ip netns exec "${LAB_ID}-web" iperf3 -s -B $WEB -p 5201 >/dev/null 2>&1 &
LAB_PIDS+=($!)
sleep 0.5

# libxdp (xdp-filter) keeps its dispatcher's pins in a bpffs; `ip netns
# exec` remounts /sys, so it gets the lab's own.
export LIBXDP_BPFFS=$LAB_BPFFS
# A row is NAME or NAME:MODE (native | generic | tc | auto, agent only; MODE by default).
rmode() { [ "${1#*:}" != "$1" ] && echo "${1#*:}" || echo "$MODE"; }
xdpflag() { [ "$(rmode "$1")" = generic ] && echo xdpgeneric || echo xdpdrv; }
setup() { # ROW: attach what the row measures
	case ${1%%:*} in
	bare) ;;
	empty)
		if [ "$(rmode "$1")" = tc ]; then
			in_node tc qdisc add dev uplink0 clsact &&
				in_node tc filter add dev uplink0 ingress bpf da obj "$TC_EMPTY" sec tc
		else
			in_node ip link set dev uplink0 "$(xdpflag "$1")" obj "$EMPTY" sec xdp
		fi
		;;
	xdp-filter) in_node xdp-filter load -m "$([ "$(rmode "$1")" = generic ] && echo skb || echo native)" uplink0 ;;
	agent | agent-bpf | agent-xdp | old)
		LAB_XDP_MODE=$(rmode "$1") lab_write_config
		if [ "${1%%:*}" = old ]; then
			ZTAGENT=$BENCH_LIVE_OLD/ztagent ZTCTL_BIN=$BENCH_LIVE_OLD/ztctl lab_agent_start ||
				return 1
		else
			lab_agent_start || return 1
		fi
		ztctl endpoint add --ifname v-web --ip $WEB --labels app=web --namespace lab \
			--name web >/dev/null || return 1
		[ "${1%%:*}" = agent ] || [ "${1%%:*}" = old ] && return 0
		lab_agent_stop
		[ "${1%%:*}" = agent-xdp ] || return 0
		in_node tc qdisc del dev v-web clsact 2>/dev/null
		# Not uplink0's clsact: in tc mode its ingress holds the guard.
		in_node tc filter del dev uplink0 egress 2>/dev/null
		;;
	esac
}
teardown() {
	case ${1%%:*} in
	empty)
		if [ "$(rmode "$1")" = tc ]; then
			in_node tc qdisc del dev uplink0 clsact
		else
			in_node ip link set dev uplink0 "$(xdpflag "$1")" off
		fi
		;;
	xdp-filter) in_node xdp-filter unload uplink0 >/dev/null 2>&1 ;;
	agent | agent-bpf | agent-xdp | old)
		[ -n "$LAB_AGENT_PID" ] && ztctl endpoint del --ifname v-web >/dev/null 2>&1
		# SIGTERM leaves enforcement in place: take it down for the next row.
		lab_agent_remove
		;;
	esac
}
iperf() { # prints Gbit/s received
	in_ext iperf3 -c $WEB -p 5201 -t "$SECS" -J 2>/dev/null |
		"$PY" -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

declare -A R C
HZ=$(getconf CLK_TCK)
echo "-- iperf3 ext -> node (uplink0, XDP $MODE) -> pod, ${SECS}s a run, $ROUNDS rounds interleaved"
for gro in $GROS; do
	in_node ethtool -K uplink0 gro "$gro" >/dev/null
	for r in $(seq 1 "$ROUNDS"); do
		for row in $ROWS; do
			setup "$row" || {
				echo "bench xdplive: $row did not start" >&2
				exit 1
			}
			[ "$r" = 1 ] && [ "$row" != bare ] &&
				echo "   $row (gro $gro): uplink0 $(in_node ip link show uplink0 | grep -o 'xdp[a-z]*' | head -1) $(in_node ip link show uplink0 | grep -o 'prog/xdp id [0-9]*') tc ingress: $(in_node tc filter show dev uplink0 ingress 2>/dev/null | grep -o 'tc_guard\|tc_empty' | head -1); ext0 tso $(in_ext ethtool -k ext0 | awk '/tcp-segmentation-offload/ {print $2}')"
			t0=$(lab_agent_ticks)
			v=$(iperf)
			t1=$(lab_agent_ticks)
			[ -n "$t0" ] && [ -n "$t1" ] && C[$gro/$row]+="$(((t1 - t0) * 1000 / HZ)) "
			teardown "$row"
			[ -n "$v" ] || {
				echo "bench xdplive: no iperf3 figure for $row" >&2
				exit 1
			}
			R[$gro/$row]+="$v "
		done
	done
done
echo "   row               gro   Gbit/s min / median / max    median x bare"
for gro in $GROS; do
	for row in $ROWS; do
		echo "$gro $row ${R[$gro/$row]} | ${R[$gro/bare]} | ${C[$gro/$row]:-}"
	done
done | "$PY" -c '
import sys, statistics as st
secs = float(sys.argv[1])
for line in sys.stdin:
    a, b, c = line.split("|")
    gro, row, *v = a.split()
    v = [float(x) for x in v]
    base = st.median([float(x) for x in b.split()])
    cpu = ""
    if c.split():
        cpu = "   daemon %.3f cores" % (st.median([float(x) for x in c.split()]) / 1000 / secs)
    print("   %-17s %-4s %8.2f / %6.2f / %6.2f   %8.2fx%s" % (row, gro, min(v), st.median(v), max(v), st.median(v) / base, cpu))
' "$SECS"
