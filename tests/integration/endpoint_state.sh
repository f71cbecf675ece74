#!/usr/bin/env bash
# Integration: what the daemon reads back at start is input, and an endpoint
# is its interface. Endpoint adds log no warning; endpoints whose veth was
# deleted and created again under the same name (even with the same ifindex)
# while the agent was down are dropped, not re-adopted with the old pod's
# labels and identity; a damaged or hostile endpoints.cbor is moved aside
# with a log line and the agent starts; a NUL byte in a block import file
# costs its own line only. Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

lab_init eps
mkdir -p "$LAB_DIR/policies"
STATE="$LAB_DIR/state/endpoints.cbor"
lab_pod keep 198.18.3.10
lab_pod same 198.18.3.20
lab_pod gone 198.18.3.30

if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"

log_from() { tail -n +"$(($1 + 1))" "$LAB_LOG"; }
log_lines() { wc -l <"$LAB_LOG"; }
n_eps() { ztctl endpoint list -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["endpoints"]))'; }
attached() { # IFNAME HOOK
	in_node tc filter show dev "$1" "$2" 2>/dev/null | grep -q "tc_"
}
both_attached() { attached "$1" ingress && attached "$1" egress; }
none_attached() { ! attached "$1" ingress && ! attached "$1" egress; }

# --- every endpoint add without a warning (libbpf "Exclusivity flag on") ---
mark=$(log_lines)
ep_add() { ztctl endpoint add --ifname "v-$1" --ip "$2" --labels "app=$1" --namespace lab --name "$1" >/dev/null; }
check "endpoint add keep" ep_add keep 198.18.3.10
check "endpoint add same" ep_add same 198.18.3.20
check "endpoint add gone" ep_add gone 198.18.3.30
# Again on an interface that already has its clsact qdisc (del, then add).
check "endpoint del keep" ztctl endpoint del lab/keep
check "endpoint add keep again (its clsact qdisc is already there)" ep_add keep 198.18.3.10
check "tc_endpoint attached on v-keep, both hooks" both_attached v-keep
no_warning() {
	local w
	w=$(log_from "$mark" | grep 'level=warn')
	[ -z "$w" ] || {
		echo "# warnings logged during endpoint add/del:"
		sed 's/^/#   /' <<<"$w"
		return 1
	}
}
check "endpoint add and del log no warning" no_warning
check "the adds are logged at info" grep -q 'level=info event=endpoint_added.*lab/keep' "$LAB_LOG"

# --- block import: a NUL byte costs its own line, not the next one ---
printf '198.18.9.1\0junk\n198.18.9.2\n198.18.9.3\n' >"$LAB_DIR/feed.txt"
out=$(ztctl block import "$LAB_DIR/feed.txt" 2>&1)
rc=$?
echo "# import: $(tr '\n' ' ' <<<"$out")"
check "import with a NUL byte exits 1 (one bad line)" test "$rc" = 1
check "the bad line is named as line 1" grep -q "feed.txt:1: .*NUL byte" <<<"$out"
blocked() { ztctl block list | grep -q "^$1/32 "; }
check "the line after the NUL byte is imported (198.18.9.2)" blocked 198.18.9.2
check "and the one after it (198.18.9.3)" blocked 198.18.9.3
check "import reports 2 added, 1 invalid" grep -q "2 added, 0 replaced, 1 invalid" <<<"$out"

# --- interfaces recreated while the agent is down ---
lab_agent_stop
# v-keep's entry in the endpoints map, as "key bytes|value bytes" in hex.
ep_entry() {
	local idx
	idx=$(in_node cat /sys/class/net/v-keep/ifindex)
	bpftool -j map lookup pinned "$LAB_BPFFS/ztagent/endpoints" key $((idx & 255)) $(((idx >> 8) & 255)) \
		$(((idx >> 16) & 255)) 0 | python3 -c '
import json, sys
e = json.load(sys.stdin)
print(" ".join(x[2:] for x in e["key"]) + "|" + " ".join(x[2:] for x in e["value"]))'
}
# Its identity changed while the agent is down (as one numbered anew at
# start would be): the restored entry comes after the start's generation.
keep_entry=$(ep_entry)
read -ra kv <<<"${keep_entry#*|}"
kv[4]=$(printf %02x $((0x${kv[4]} ^ 0x5a)))
bpftool map update pinned "$LAB_BPFFS/ztagent/endpoints" key hex ${keep_entry%|*} value hex ${kv[*]}
check "v-keep's endpoints entry says another identity while the agent is down" \
	test "$(ep_entry)" != "$keep_entry"
idx_same=$(in_node cat /sys/class/net/v-same/ifindex)
# v-same: deleted and created again with the same name AND the same ifindex
# (as `ip link add ... index N` or an ifindex reused after wrapping gives).
ip -n "$LAB_NODE" link del v-same
ip -n "$LAB_NODE" link add v-same index "$idx_same" type veth peer name v-same-pod
ip -n "$LAB_NODE" link set v-same up
# v-gone: deleted and created again under the same name (a new ifindex).
ip -n "$LAB_NODE" link del v-gone
ip -n "$LAB_NODE" link add v-gone type veth peer name v-gone-pod
check "the recreated v-same has the old ifindex $idx_same" \
	test "$(in_node cat /sys/class/net/v-same/ifindex)" = "$idx_same"
mark=$(log_lines)
if lab_agent_start; then tap_ok "ztagent restarts"; else tap_fail "ztagent restarts"; fi
check "only the untouched endpoint is re-adopted" test "$(n_eps)" = 1
listed() { ztctl endpoint list | grep -q "^lab/$1 "; }
check "lab/keep is back" listed keep
not_listed() { ! ztctl endpoint list | grep -q "^lab/$1 "; }
check "lab/same (same name, same ifindex, new link) is not" not_listed same
check "the drop of lab/same is logged as a recreated interface" \
	grep -q 'event=endpoint_removed endpoint=lab/same ifname=v-same.*why=interface-recreated-while-stopped' "$LAB_LOG"
check "the drop of lab/gone is logged" \
	grep -q 'event=endpoint_removed endpoint=lab/gone ifname=v-gone.*why=interface-gone-while-stopped' "$LAB_LOG"
check "no program was attached to the new v-same" none_attached v-same
check "v-keep still carries tc_endpoint" both_attached v-keep
check "v-keep's endpoints entry is the endpoint's again" test "$(ep_entry)" = "$keep_entry"
restore_gen() { # a generation published after lab/keep's entry was written back
	log_from "$mark" | sed -n '/event=endpoint_restored endpoint=lab\/keep/,$p' |
		grep -q 'event=policy_applied .*why=endpoint-restore'
}
check "a generation follows the restored entry (flows evaluated meanwhile are evaluated again)" restore_gen
saved() { # the state file names exactly the endpoints listed
	python3 - "$STATE" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
sys.exit(0 if b"v-keep" in b and b"v-same" not in b and b"v-gone" not in b else 1)
PY
}
check "the dropped endpoints are gone from endpoints.cbor" saved
check "the new v-same can be registered as a new endpoint" ep_add same 198.18.3.20
check "... and gets programs" both_attached v-same

# --- hostile state files: moved aside, logged, the agent starts ---
hostile() { # NAME FILE-CONTENT-FROM
	local name=$1 src=$2
	lab_agent_stop
	rm -f "$STATE.damaged"
	cp "$src" "$STATE"
	mark=$(log_lines)
	if ! lab_agent_start; then
		echo "# the agent did not start with the $name state file"
		return 1
	fi
	log_from "$mark" | grep -q "event=endpoint_state_unreadable .*moved_to=$STATE.damaged" &&
		cmp -s "$src" "$STATE.damaged" && test "$(n_eps)" = 0
}
FZ=$LAB_ROOT/tests/fuzz/regress/endpoint_state
check "a 5-byte state file declaring 2^27 items: moved aside, agent up" \
	hostile array-header "$FZ/array-header-1gib"
check "a state file with 47 oversized named ports: moved aside, agent up" \
	hostile ports-overflow "$FZ/ports-overflow-heap"
printf 'garbage' >"$LAB_DIR/garbage"
check "a garbage state file: moved aside, agent up" hostile garbage "$LAB_DIR/garbage"
peak_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$LAB_AGENT_PID/status")
echo "# agent peak RSS after the hostile state files: ${peak_kb:-?} kB"

echo "1..$TAP_N"
