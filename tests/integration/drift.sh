#!/usr/bin/env bash
# Integration: drift repaired. The real agent in the namespace lab with a
# policy, two pods, a blocklist entry and a CNI conflist; then someone
# changes the kernel behind its back: XDP off the uplink, a tc filter
# deleted, policy / ipcache / endpoints / blocklist entries added, changed
# and deleted with bpftool, a pin removed, ztagent-cni taken out of the
# conflist. Each must be put back within 1 s, with its effect checked
# (packets blocked or denied again), counted in
# ztagent_drift_repairs_total{kind} and written to audit_log (drift.repair,
# with what differed). Writes to the policy, ipcache, endpoints and
# blocklist maps and block_notes are repaired by the drift watch (the log
# names bpftool as the writer). A connection that a forged policy entry
# let in is revoked once the entry is repaired (a generation follows the
# repair, so established flows are evaluated again). A loop that keeps
# removing the XDP program, or deleting one blocklist entry, raises a
# drift-flapping alert naming the object (alerts row, log) and the agent
# backs off that object instead of repairing in a loop; six different
# entries fixed within 10 s raise none.
# Real PostgreSQL (tools/pg.sh). TAP.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

lab_init drift
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
tap_ok "PostgreSQL starts"
q() { pg_sql -c "$1" 2>/dev/null; }

POL="$LAB_DIR/policies"
PINS="$LAB_BPFFS/ztagent"
CONFLIST="$LAB_DIR/cni/10-zt.conflist"
mkdir -p "$POL" "$LAB_DIR/cni"
A=198.18.3.10
B=198.18.3.20
lab_pod a $A
lab_pod b $B
ip netns exec "${LAB_ID}-b" nc -lk $B 8080 >/dev/null 2>&1 &
LAB_PIDS+=($!)
ip netns exec "${LAB_ID}-b" nc -lk $B 9090 >/dev/null 2>&1 &
LAB_PIDS+=($!)
in_ext nc -lk $LAB_EXT_IP 7000 >/dev/null 2>&1 &
LAB_PIDS+=($!)
cat >"$POL/10-ab.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: shop}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: a}}}]
      ports: [{protocol: TCP, port: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: shop}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: b}}}]
EOF
cat >"$CONFLIST" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "lab",
  "plugins": [
    { "type": "ptp", "ipam": { "type": "host-local", "ranges": [[{ "subnet": "198.18.9.0/24" }]] } },
    { "type": "ztagent-cni", "socket": "$LAB_SOCK", "state_dir": "$LAB_DIR/state" }
  ]
}
EOF

METRICS_PORT=$((20000 + RANDOM % 20000))
LAB_DB_URL=$PG_CONN
LAB_METRICS="127.0.0.1:$METRICS_PORT"
lab_write_config
cat >>"$LAB_CONF" <<EOF
drift:
  cni_conflist: $CONFLIST
EOF
if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"
ztctl endpoint add --ifname v-a --ip $A --labels app=a --namespace shop --name a >/dev/null &&
	ztctl endpoint add --ifname v-b --ip $B --labels app=b --namespace shop --name b >/dev/null
check "two endpoints registered" test $? = 0

tcp() { in_pod "$1" nc -z -w1 "$2" "$3" >/dev/null 2>&1; }
ztctl block add $LAB_EXT_IP/32 --reason "drift test" --kind scan --ttl 2h >/dev/null
check "a -> b:8080 allowed" tcp a $B 8080
check "a -> b:9090 denied by policy" eval '! tcp a $B 9090'
check "198.18.0.1 blocked at the uplink" eval "! in_ext ping -c1 -W1 -I $LAB_EXT_IP $LAB_NODE_IP >/dev/null 2>&1"

metric() { # KIND: ztagent_drift_repairs_total{kind=KIND}
	in_node curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk -v k="ztagent_drift_repairs_total{kind=\"$1\"}" '$1 == k { print $2 }'
}
# repaired KIND CMD...: runs the injection, then polls the agent's log for
# its repair of KIND (cheap: the content checks after it take longer than
# the agent); ok when it comes within 1 s. Prints the time taken.
n_repaired() { grep -c "event=drift_repaired kind=$1 " "$LAB_LOG"; }
repaired_in() { # MS KIND CMD...: a repair of KIND logged within MS of CMD
	local ms=$1 kind=$2 n0 t0 t
	shift 2
	n0=$(n_repaired "$kind")
	"$@" || return 1
	t0=$(date +%s%N) # from when the change is in place (python alone can take 2 s here)
	while :; do
		if [ "$(n_repaired "$kind")" -gt "$n0" ]; then
			t=$((($(date +%s%N) - t0) / 1000000))
			echo "# $kind: repaired after ${t} ms"
			[ $t -le "$ms" ]
			return
		fi
		[ $(($(date +%s%N) - t0)) -gt $((ms * 1000000)) ] && return 1
		sleep 0.01
	done
}
repaired() { repaired_in 1000 "$@"; } # KIND CMD...: within 1 s
audited() { # KIND: a drift.repair row of that kind in audit_log (written within 5 s)
	local i
	for i in $(seq 1 50); do
		[ "$(q "SELECT count(*) FROM audit_log WHERE kind = 'drift.repair' AND detail::jsonb->>'kind' = '$1'")" -ge 1 ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
counted() { # KIND N: the counter reached N
	local v
	v=$(metric "$1")
	[ "${v:-0}" -ge "$2" ] 2>/dev/null
}

# --- XDP removed from the uplink ---
xdp_ours() { in_node ip -d link show dev uplink0 | grep -q "prog/xdp id $XDP_ID"; }
XDP_ID=$(in_node ip -d link show dev uplink0 | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1)
check "xdp_guard runs on uplink0 (id $XDP_ID)" test -n "$XDP_ID"
check "XDP removed with 'ip link set xdp off': repaired within 1 s" repaired xdp in_node ip link set dev uplink0 xdp off
check "xdp_guard is on uplink0 again" xdp_ours
check "the blocked source is blocked again" eval "! in_ext ping -c1 -W1 -I $LAB_EXT_IP $LAB_NODE_IP >/dev/null 2>&1"
check "xdp repair counted" counted xdp 1
check "xdp repair audited with what differed" audited xdp

# --- a tc filter deleted ---
tc_ours() { in_node tc filter show dev v-b ingress | grep -q tc_from_pod && in_node tc filter show dev v-b egress | grep -q tc_to_pod; }
check "tc_endpoint on v-b" tc_ours
check "tc filter deleted with 'tc filter del': repaired within 1 s" repaired tc in_node tc filter del dev v-b egress
check "tc_endpoint on v-b again" tc_ours
check "a -> b:9090 denied again" eval '! tcp a $B 9090'
check "tc repair counted" counted tc 1
check "tc repair audited" audited tc

# --- map entries changed with bpftool ---
# dump MAP: "key-hex|value-hex" lines
dump() {
	bpftool -j map dump pinned "$PINS/$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    k, v = e.get("key"), e.get("value")
    if k is None: continue
    print(" ".join(x[2:] for x in k) + "|" + " ".join(x[2:] for x in v))'
}
entries() { dump "$1" | wc -l; }
# The policy generation's slot in force (pol_state.gen & 1). Policy and
# ipcache keys carry their slot in byte 4.
active_slot() {
	bpftool -j map lookup pinned "$PINS/pol_state" key 0 0 0 0 |
		python3 -c 'import json, sys; print(int(json.load(sys.stdin)["value"][0], 16) & 1)'
}
# in_force MAP: dump's lines of the entries in force: for policy and
# ipcache, those of the slot in force.
in_force() {
	case $1 in
	policy | ipcache_v4 | ipcache_v6)
		dump "$1" | awk -v s="$(printf %02x "$(active_slot)")" '{ split($0, k, " "); if (k[5] == s) print }'
		;;
	*) dump "$1" ;;
	esac
}
# live MAP: in_force with the slot written "s". A repair of these maps is
# followed by a generation (why=drift-repair) with the same content in the
# other slot, so what is in force compares across it.
live() {
	case $1 in
	policy | ipcache_v4 | ipcache_v6) in_force "$1" | awk '{ $5 = "s"; print }' ;;
	*) dump "$1" ;;
	esac
}
same_dump() { [ "$(live "$1" | sort)" = "$2" ]; }

for m in policy ipcache_v4 endpoints; do
	kind=$m
	[ $m = ipcache_v4 ] && kind=ipcache
	before=$(live $m | sort)
	n=$(wc -l <<<"$before")
	check "$m has entries ($n)" test "$n" -ge 1
	first=$(in_force $m | sort | head -1)
	key=${first%%|*}
	# deleted
	check "$m: entry deleted with bpftool: repaired within 1 s" repaired $kind \
		bpftool map delete pinned "$PINS/$m" key hex $key
	check "$m: the entry is back" same_dump $m "$before"
	# changed: the last byte of the value flipped (in the slot now in force)
	first=$(in_force $m | sort | head -1)
	key=${first%%|*}
	val=${first#*|}
	last=${val##* }
	newval="${val% *} $(printf %02x $((0x$last ^ 0x5a)))"
	check "$m: entry changed with bpftool: repaired within 1 s" repaired $kind \
		bpftool map update pinned "$PINS/$m" key hex $key value hex $newval
	check "$m: the entry has its value again" same_dump $m "$before"
	check "$m: both repairs name the writer (bpftool, from the drift watch, not the 200 ms check)" \
		test "$(grep -c "event=drift_repaired kind=$kind subject=\"$m .*written by bpftool (pid [0-9]*)" "$LAB_LOG")" -ge 2
	check "$m: repairs counted" counted $kind 2
	check "$m: repair audited" audited $kind
done
# added: a policy entry for an identity pair nobody has, an endpoints entry for the uplink
pkey=$(in_force policy | head -1)
pkey=${pkey%%|*}
# another local identity (key byte 9, inside every prefix): a key the agent did not write
read -ra kb <<<"$pkey"
kb[9]=$(printf %02x $((0x${kb[9]} ^ 0x77)))
addkey="${kb[*]}"
before=$(live policy | sort)
pval=$(head -1 <<<"$before")
pval=${pval#*|}
check "policy: entry added with bpftool: repaired within 1 s" repaired policy \
	bpftool map update pinned "$PINS/policy" key hex $addkey value hex $pval
check "policy: the added entry is gone" same_dump policy "$before"
before=$(live endpoints | sort)
upidx=$(in_node cat /sys/class/net/uplink0/ifindex)
check "endpoints: entry added for the uplink: repaired within 1 s" repaired endpoints \
	bpftool map update pinned "$PINS/endpoints" key $((upidx & 255)) $(((upidx >> 8) & 255)) 0 0 \
	value 99 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0
check "endpoints: the added entry is gone" same_dump endpoints "$before"
check "policy and endpoints: the added entries' repairs name bpftool (the drift watch)" eval \
	'[ "$(grep -Ec "event=drift_repaired kind=(policy|endpoints) .*entry( for no endpoint)? added.*written by bpftool" "$LAB_LOG")" -ge 2 ]'

# --- a connection that a forged entry let in, cut when the entry is repaired ---
# b's ingress entry for a on tcp/8080, copied to 9090 in the slot in force
# while the agent is stopped (its watch's report waits in the ring), lets a
# stream from a to b:9090 in. Once the agent runs again, the watch repairs
# the entry and a generation follows (why=drift-repair): the stream's next
# packets are evaluated again and denied on b's side, its flow revoked.
# Without that generation the stream would go on, the repair notwithstanding.
slot=$(printf %02x "$(active_slot)")
rule=$(dump policy | awk -v s="$slot" '{ split($0, k, " ");
	if (k[1] == "68" && k[5] == s && k[6] == "00" && k[15] == "06" && k[16] == "1f" && k[17] == "90") { print; exit } }')
check "policy: b's ingress entry for a on tcp/8080 (slot $slot)" test -n "$rule"
read -ra kb <<<"${rule%%|*}"
kb[15]=23 kb[16]=82 # port 9090
fkey="${kb[*]}"
fval=${rule#*|}
n_gen0=$(grep -c 'event=policy_applied .*why=drift-repair' "$LAB_LOG")
kill -STOP "$LAB_AGENT_PID"
bpftool map update pinned "$PINS/policy" key hex $fkey value hex $fval
# (sh -c: a command run with & reads /dev/null unless its own redirection says otherwise)
lab_bg_in "${LAB_ID}-a" sh -c "exec nc $B 9090 </dev/zero >/dev/null 2>&1"
fstream=$LAB_BG_PID
sleep 0.5
streaming=false
kill -0 "$fstream" 2>/dev/null && streaming=true
kill -CONT "$LAB_AGENT_PID"
check "a -> b:9090 streams through the forged entry while the agent is stopped" $streaming
lab_wait 30 lab_revoked $A $B 9090 ingress shop/b
revoked=$?
check "the forged entry repaired (the drift watch names bpftool)" \
	grep -q "event=drift_repaired kind=policy subject=\"policy ${fkey// /}\" .*written by bpftool" "$LAB_LOG"
check "a generation follows the repair (why=drift-repair)" \
	test "$(grep -c 'event=policy_applied .*why=drift-repair' "$LAB_LOG")" -gt "$n_gen0"
check "the stream is revoked on b's side (a -> b:9090 is denied again)" test $revoked = 0
kill "$fstream" 2>/dev/null
wait "$fstream" 2>/dev/null
check "a new connection a -> b:9090 is denied" eval '! tcp a $B 9090'
check "a -> b:8080 still allowed" tcp a $B 8080

# --- blocklist entries ---
# The entry as 'ztctl block list' shows it, text and JSON, all but the
# expiry (the text's "in 1h59m38s (...)" and the JSON's expires_unix are computed
# at each listing), which bl_same_meta compares apart, to the second.
bl_text() { ztctl block list --limit 0 | awk '$1 == "198.18.0.1/32"' | sed 's/ *in [0-9dhms]* (.*$//'; }
bl_json() {
	ztctl block list --limit 0 -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]:
    if e.get("cidr") == "198.18.0.1/32":
        exp = e.pop("expires_unix", 0)
        print(json.dumps(e, sort_keys=True) + "|" + str(exp))'
}
bl_same_meta() {
	local t j
	t=$(bl_text)
	j=$(bl_json)
	[ "$t" = "$BL_TEXT" ] || { echo "# text now: $t"; echo "# was:      $BL_TEXT"; return 1; }
	[ "${j%|*}" = "${BL_JSON%|*}" ] || { echo "# json now: ${j%|*}"; echo "# was:      ${BL_JSON%|*}"; return 1; }
	[ $((${j##*|} - ${BL_JSON##*|})) -le 1 ] && [ $((${BL_JSON##*|} - ${j##*|})) -le 1 ]
}
echo "# $(grep -o 'event=drift_watch_.*' "$LAB_LOG" | head -1)"
BL_TEXT=$(bl_text)
BL_JSON=$(bl_json)
echo "# listed: $BL_TEXT"
check "blocklist: 198.18.0.1 listed with kind scan, reason 'drift test', source manual, an expiry" \
	eval 'grep -Eq "scan +manual +drift test" <<<"$BL_TEXT" && [ "${BL_JSON##*|}" -gt $(date +%s) ]'
before=$(dump blocklist_v4 | sort)
check "blocklist_v4 holds 198.18.0.1" grep -q "^20 00 00 00 c6 12 00 01|" <<<"$before"
bl_back() { dump blocklist_v4 | grep -q "^20 00 00 00 c6 12 00 01|"; }
check "blocklist: entry deleted with bpftool: repaired within 1 s" repaired blocklist \
	bpftool map delete pinned "$PINS/blocklist_v4" key hex 20 00 00 00 c6 12 00 01
check "blocklist: the entry is back" bl_back
check "blocklist: the entry put back is listed as before (kind, source, reason, added, expiry)" \
	bl_same_meta
check "198.18.0.1 blocked again" eval "! in_ext ping -c1 -W1 -I $LAB_EXT_IP $LAB_NODE_IP >/dev/null 2>&1"
# changed: its kind (bytes 16-17 of the value) and note (bytes 24-27) overwritten
read -ra bv <<<"$(dump blocklist_v4 | grep "^20 00 00 00 c6 12 00 01|" | cut -d'|' -f2)"
bv[16]=01 bv[17]=00 bv[24]=00 bv[25]=00 bv[26]=00 bv[27]=00
check "blocklist: kind and reason of the entry changed with bpftool: repaired within 1 s" \
	repaired blocklist bpftool map update pinned "$PINS/blocklist_v4" \
	key hex 20 00 00 00 c6 12 00 01 value hex ${bv[*]}
check "blocklist: the entry is listed as before again" bl_same_meta
check "blocklist: the kernel holds the value it had" same_dump blocklist_v4 "$before"
bl_gone() { ! dump blocklist_v4 | grep -q "^20 00 00 00 c6 12 00 03|"; }
blval=$(dump blocklist_v4 | head -1 | cut -d'|' -f2)
check "blocklist: entry for 198.18.0.3 added with bpftool: repaired within 1 s" repaired blocklist \
	bpftool map update pinned "$PINS/blocklist_v4" key hex 20 00 00 00 c6 12 00 03 value hex $blval
check "blocklist: the added entry is gone" bl_gone
check "198.18.0.3 is not blocked" eval "in_ext ping -c1 -W1 -I $LAB_EXT_IP2 $LAB_NODE_IP >/dev/null"
check "blocklist repairs counted" counted blocklist 3
# The drift watch saw the writes as they happened (not a later whole read).
check "blocklist: each repair names the writer (bpftool, from the drift watch)" \
	test "$(grep -c 'event=drift_repaired kind=blocklist .*written by bpftool (pid [0-9]*)' "$LAB_LOG")" -ge 3
check "blocklist repair audited" audited blocklist

# --- writes the drift watch cannot see ---
# Another BPF program's write (dw_bpfwrite.c: a socket filter that deletes
# the key from inside the kernel) makes no map-write syscall: the whole
# reads of the blocklist hash maps find it, every 10 s while the watch
# runs. Writes the watch saw but could not report (its ring full: dw_lost
# in its .bss, bumped here as the BPF side does) start a read at once.
DWP=$LAB_DIR/dw_bpfwrite
cc -O2 -Wall -Werror -o "$DWP" tests/integration/dw_bpfwrite.c -lbpf
check "dw_bpfwrite builds" test -x "$DWP"
before=$(dump blocklist_v4 | sort)
check "blocklist: entry deleted by another BPF program (unseen by the watch): repaired by a whole read within 25 s" \
	repaired_in 25000 blocklist "$DWP" "$PINS/blocklist_v4" 20 00 00 00 c6 12 00 01
check "blocklist: the kernel holds the value it had (after the whole read)" same_dump blocklist_v4 "$before"
check "blocklist: that repair names no writer (the watch did not see it)" \
	eval 'grep "event=drift_repaired kind=blocklist " "$LAB_LOG" | tail -1 | grep -vq "written by"'
bss_lost() { # the watch's .bss (dw_n_pending, dw_lost): dw_lost + 1
	local id v
	# the one the agent holds (its fds' map_id), bpftool here lists no pids
	id=$(bpftool -j map show | python3 -c '
import glob, json, sys
held = set()
for p in glob.glob("/proc/%s/fdinfo/*" % sys.argv[1]):
    try:
        for l in open(p):
            if l.startswith("map_id:"):
                held.add(int(l.split()[1]))
    except OSError:
        pass
for m in json.load(sys.stdin):
    if m.get("name") == "drift_wa.bss" and m["id"] in held:
        print(m["id"]); break' "$LAB_AGENT_PID")
	[ -n "$id" ] || return 1
	read -ra v <<<"$(bpftool -j map lookup id "$id" key 0 0 0 0 | python3 -c '
import json, sys
print(" ".join(x[2:] for x in json.load(sys.stdin)["value"]))')"
	[ ${#v[@]} -ge 16 ] || return 1
	v[8]=$(printf %02x $(((0x${v[8]} + 1) & 255)))
	bpftool map update id "$id" key 0 0 0 0 value hex "${v[@]}"
}
lost_write() { "$DWP" "$PINS/blocklist_v4" 20 00 00 00 c6 12 00 01 && bss_lost; }
check "blocklist: an unseen delete while the watch lost writes: repaired within 1.5 s" \
	repaired_in 1500 blocklist lost_write
check "blocklist: the entry is back" same_dump blocklist_v4 "$before"
check "the lost writes are logged (drift_watch_lost)" grep -q "event=drift_watch_lost writes=1 " "$LAB_LOG"

# --- block_notes: the reason text an entry points to ---
note_id=$(dump blocklist_v4 | grep "^20 00 00 00 c6 12 00 01|" | cut -d'|' -f2 | cut -d' ' -f25-28)
echo "# note id of 198.18.0.1 (hex, LE): $note_id"
note_hex() { dump block_notes | awk -F'|' -v k="$note_id" '$1 == k { print $2 }'; }
note0=$(note_hex)
check "block_notes holds the entry's note" test -n "$note0"
bad_note=$(printf 'hijacked%056d' 0 | od -v -An -tx1 | tr -s ' \n' ' ')
check "block_notes: the note changed with bpftool: repaired within 1 s" repaired blocklist \
	bpftool map update pinned "$PINS/block_notes" key hex $note_id value hex $bad_note
check "block_notes: the note has its text again" test "$(note_hex)" = "$note0"
check "block_notes: the note deleted with bpftool: repaired within 1 s" repaired blocklist \
	bpftool map delete pinned "$PINS/block_notes" key hex $note_id
check "block_notes: the note is back; the entry is listed with its reason" \
	eval '[ "$(note_hex)" = "$note0" ] && bl_same_meta'
check "block_notes: the repairs name the note and the writer" \
	test "$(grep -c 'event=drift_repaired kind=blocklist subject="block_notes id [0-9]*" .*written by bpftool' "$LAB_LOG")" -ge 2

# --- the flapping guard counts per object ---
# Six different entries fixed by hand within 10 s: six repairs, no alert.
for i in 10 11 12 13 14 15; do ztctl block add 198.18.0.$i/32 --reason "hand $i" --kind scan --ttl 2h >/dev/null; done
t_six=$(date +%s%N)
six_ok=0
for i in 10 11 12 13 14 15; do
	k="20 00 00 00 c6 12 00 $(printf %02x $i)"
	repaired blocklist bpftool map delete pinned "$PINS/blocklist_v4" key hex $k && six_ok=$((six_ok + 1))
	sleep 0.25 # each in a tick of its own
done
echo "# six entries deleted and repaired in $((($(date +%s%N) - t_six) / 1000000)) ms"
check "six different blocklist entries deleted within 10 s: each repaired within 1 s ($six_ok of 6)" test $six_ok = 6
check "six different entries: no drift_flapping" eval '! grep -q "event=drift_flapping" "$LAB_LOG"'
# One entry fought over: the alert names it and its writer; other entries are still repaired.
lab_bg_in "$LAB_NODE" bash -c "while :; do bpftool map delete pinned '$PINS/blocklist_v4' key hex 20 00 00 00 c6 12 00 0a 2>/dev/null; sleep 0.05; done"
BL_FIGHTER=$LAB_BG_PID
bl_flapped() { grep -q 'event=drift_flapping kind=blocklist scope=object subject="blocklist_v4 198.18.0.10/32" writer="bpftool (pid [0-9]*)"' "$LAB_LOG"; }
wait_bl_flap() {
	local i
	for i in $(seq 1 60); do bl_flapped && return 0; sleep 0.1; done
	return 1
}
check "one entry deleted in a loop: drift_flapping names blocklist_v4 198.18.0.10/32 and bpftool" wait_bl_flap
check "meanwhile another entry deleted: still repaired within 1 s (only the fought entry backs off)" \
	repaired blocklist bpftool map delete pinned "$PINS/blocklist_v4" key hex 20 00 00 00 c6 12 00 0b
bl_alert_row() {
	local i
	for i in $(seq 1 50); do
		[ "$(q "SELECT count(*) FROM alerts WHERE kind = 'drift-flapping' AND detail->>'object' = 'blocklist_v4 198.18.0.10/32' AND detail->>'writer' LIKE 'bpftool (pid %'")" -ge 1 ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "an alerts row naming the entry and its writer" bl_alert_row
kill "$BL_FIGHTER" 2>/dev/null
wait "$BL_FIGHTER" 2>/dev/null
bl10_back() {
	local i
	for i in $(seq 1 80); do
		dump blocklist_v4 | grep -q "^20 00 00 00 c6 12 00 0a|" && return 0
		sleep 0.1
	done
	return 1
}
check "fighter gone: 198.18.0.10 back after the back-off" bl10_back

# --- a pin removed ---
pin_back() { [ -e "$PINS/ipcache_v4" ] && bpftool map show pinned "$PINS/ipcache_v4" >/dev/null 2>&1; }
check "pin ipcache_v4 removed: repaired within 1 s" repaired pin rm -f "$PINS/ipcache_v4"
check "the pin is there again" pin_back
check "the pin is the map in use (a -> b:8080 still allowed)" tcp a $B 8080
check "pin repair counted and audited" eval 'counted pin 1 && audited pin'
pins_before=$(ls "$PINS")
npins=$(wc -l <<<"$pins_before")
check "the pin directory removed ($npins pins): repaired within 1 s" repaired pin rm -rf "$PINS"
all_pins() {
	[ "$(ls "$PINS" 2>/dev/null | wc -l)" = "$npins" ] && return 0
	echo "# missing: $(comm -23 <(sort <<<"$pins_before") <(ls "$PINS" | sort) | tr '\n' ' ')"
	return 1
}
sleep 0.3
check "all $npins pins are back" all_pins

# --- ztagent-cni taken out of the conflist ---
cni_remove() { # the primary alone, written whole (rename), as an installer would
	cat >"$CONFLIST.new" <<EOF
{ "cniVersion": "1.0.0", "name": "lab",
  "plugins": [ { "type": "ptp", "ipam": { "type": "host-local", "ranges": [[{ "subnet": "198.18.9.0/24" }]] } } ] }
EOF
	mv "$CONFLIST.new" "$CONFLIST"
}
cni_back() {
	python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if [p["type"] for p in c["plugins"]] == ["ptp", "ztagent-cni"] else 1)' "$CONFLIST" 2>/dev/null
}
check "ztagent-cni removed from the conflist: repaired within 1 s" repaired cni cni_remove
check "the conflist lists ptp then ztagent-cni again" cni_back
check "cni repair counted and audited" eval 'counted cni 1 && audited cni'

# --- something fighting the agent ---
n0=$(metric xdp)
lab_bg_in "$LAB_NODE" bash -c 'while :; do ip link set dev uplink0 xdp off; sleep 0.05; done'
FIGHTER=$LAB_BG_PID
flapped() { grep -q 'drift_flapping.*kind=xdp' "$LAB_LOG"; }
wait_flap() {
	local i
	for i in $(seq 1 50); do flapped && return 0; sleep 0.1; done
	return 1
}
check "a loop removing XDP: drift_flapping logged" wait_flap
n1=$(metric xdp)
sleep 2
n2=$(metric xdp)
echo "# xdp repairs: before the fight $n0, at the alert $n1, 2 s later $n2"
check "backing off: no repair in the 2 s after the alert ($n1 -> $n2)" test "$n1" = "$n2"
alert_row() {
	local i
	for i in $(seq 1 50); do
		[ "$(q "SELECT count(*) FROM alerts WHERE kind = 'drift-flapping' AND detail->>'kind' = 'xdp'")" -ge 1 ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "an alerts row (kind drift-flapping, severity critical)" alert_row
flap_gauge() {
	local m
	m=$(in_node curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep "^ztagent_drift_flapping{kind=\"xdp\"}")
	[ "$m" = 'ztagent_drift_flapping{kind="xdp"} 1' ] && return 0
	echo "# got: $m"
	return 1
}
check "flapping gauge is 1" flap_gauge
kill "$FIGHTER" 2>/dev/null
wait "$FIGHTER" 2>/dev/null
in_node ip link set dev uplink0 xdp off 2>/dev/null
wait_back() { # the back-off (5 s) ends, then a repair within 1 s
	local i
	for i in $(seq 1 80); do xdp_ours && return 0; sleep 0.1; done
	return 1
}
check "fighter gone: XDP back after the back-off" wait_back
check "audit chain intact" eval 'ztctl audit verify --db "$PG_CONN" >/dev/null'
check "the agent is still running" kill -0 "$LAB_AGENT_PID"
[ -n "${DRIFT_DEBUG:-}" ] && grep -E 'drift_|error' "$LAB_LOG" | sed 's/^/# /'
echo "1..$TAP_N"
