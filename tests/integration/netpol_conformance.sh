#!/usr/bin/env bash
# Integration: Kubernetes' NetworkPolicy conformance model against the real
# daemon and datapath. Namespaces x, y, z with pods a, b, c each (labels
# pod=<name>, namespace labels ns=<namespace>), every pod serving TCP and UDP
# on 80 and 81 (named serve-80-tcp ...), every pod probing every pod on all
# four after each policy change, in parallel; each scenario's expected
# reachability matrix (tests/integration/netpol/scenarios.py, written after
# upstream's test/e2e/network/netpol cases) must be what is observed. A
# mismatch prints both matrices. Prints TAP lines.
#
# NETPOL_ONLY=text runs the scenarios whose name holds text;
# NETPOL_TIMEOUT=seconds sets the probe timeout (default 1).
set -uo pipefail
# shellcheck source=tools/lab.sh
. "$(dirname "$0")/../../tools/lab.sh"
NETPOL="$(cd "$(dirname "$0")" && pwd)/netpol/netpol.py"

lab_init netpol
# Kubernetes' semantics: a pod no policy selects accepts everything.
# shellcheck disable=SC2034 # read by lab_write_config
LAB_POLICY_DEFAULT=allow
lab_write_config
POL="$LAB_DIR/policies"
mkdir -p "$POL"

ready=0
for ns in x y z; do
	case $ns in x) net=1 ;; y) net=2 ;; z) net=3 ;; esac
	for pod in a b c; do
		case $pod in a) host=10 ;; b) host=11 ;; c) host=12 ;; esac
		ip="198.19.$net.$host"
		lab_pod "$ns$pod" "$ip"
		ip netns exec "${LAB_ID}-$ns$pod" python3 -u "$NETPOL" serve "$ip" \
			>"$LAB_DIR/serve-$ns$pod.out" 2>&1 &
		LAB_PIDS+=($!)
	done
done
for _ in $(seq 1 100); do
	ready=$(cat "$LAB_DIR"/serve-*.out 2>/dev/null | grep -c '^ready$')
	[ "$ready" -eq 9 ] && break
	sleep 0.05
done
check "9 pods serve TCP and UDP on 80 and 81" test "$ready" -eq 9

if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"

LAB_ID=$LAB_ID ZTCTL_BIN=$ZTCTL_BIN LAB_SOCK=$LAB_SOCK POL_DIR=$POL \
	python3 -u "$NETPOL" run "$TAP_N"
rc=$?
if grep -q 'level=error' "$LAB_LOG"; then
	echo "# errors in the agent's log:"
	grep 'level=error' "$LAB_LOG" | head -n 10 | sed 's/^/#   /'
fi
exit $rc
