#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# SIGHUP reloads (TAP), one agent in the namespace lab:
#   - a live key (mtls.peers, log_level) changed in the file applies at once;
#     a restart-only key (flows.active_timeout) is named in one log line and
#     its running value stays
#   - mTLS credentials moved to new files (a new trust domain root and node
#     certificate, new paths) are read at once: the pod's SVID is re-minted
#     by the new issuer
#   - the policy directory is read again
#   - a configuration that does not parse: the agent keeps running and
#     enforcing (a blocked source stays blocked, the peers stay), the log
#     names the file and line
#   - mTLS that could not start (its credentials did not exist yet) starts
#     on the SIGHUP after they are made: tunnel listener up, SVID minted
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

LAB_POLICY_DEFAULT=allow
lab_init reld
ZTCTL_CA="$LAB_ROOT/build/ztctl"
TD=cluster.local
"$ZTCTL_CA" ca init --trust-domain $TD --out "$LAB_DIR/ca1" >/dev/null &&
	"$ZTCTL_CA" ca issue-node lab-node --ca "$LAB_DIR/ca1" --out "$LAB_DIR/node1" --days 2 >/dev/null &&
	"$ZTCTL_CA" ca init --trust-domain $TD --out "$LAB_DIR/ca2" >/dev/null &&
	"$ZTCTL_CA" ca issue-node lab-node --ca "$LAB_DIR/ca2" --out "$LAB_DIR/node2" --days 2 >/dev/null || {
	tap_fail "ztctl ca makes two sets of credentials"
	echo "1..$TAP_N"
	exit 1
}
mkdir -p "$LAB_DIR/policies"
BASE=$(cat "$LAB_CONF")
write_conf() { # write_conf CREDS-DIR PEERS LOG-LEVEL ACTIVE-TIMEOUT
	printf '%s\n' "$BASE" | sed "s/^log_level: .*/log_level: $3/" >"$LAB_CONF.tmp"
	cat >>"$LAB_CONF.tmp" <<EOF
flows:
  active_timeout: $4
mtls:
  mode: policy
  trust_domain: $TD
  ca_bundle: $LAB_DIR/$1/bundle.pem
  node_cert: $LAB_DIR/$1/node.pem
  node_key: $LAB_DIR/$1/node.key
  peers: [$2]
EOF
	mv "$LAB_CONF.tmp" "$LAB_CONF"
}
write_conf node1 "" info 60s
check "the agent starts" lab_agent_start
lab_pod web 198.18.5.10
ztctl endpoint add --ifname v-web --ip 198.18.5.10 --labels app=web --namespace shop \
	--name web --service-account web >/dev/null
js() { ztctl mtls status -o json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }
serial() { js "[s['serial'] for s in d['svids'] if s['id']=='spiffe://$TD/ns/shop/sa/web'][0]"; }
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
has_serial() { test -n "$(serial)"; }
check "the pod's SVID is minted by the first node certificate" wait_for 5 has_serial
serial1=$(serial)
pings() { in_ext ping -n -q -c1 -W1 -I "$1" "$LAB_NODE_IP" >/dev/null 2>&1; }
no_ping() { ! pings "$1"; }
check "a source to block passes first" pings 198.18.0.3
check "ztctl block add 198.18.0.3" eval 'ztctl block add 198.18.0.3 --reason "reload test" >/dev/null' 
check "a blocked source is dropped before any reload" no_ping 198.18.0.3
check "... the other passes" pings 198.18.0.1
lines() { wc -l <"$LAB_LOG"; }
since() { tail -n +"$(($1 + 1))" "$LAB_LOG"; }
hup() { # hup: SIGHUP and wait for its reload_done line; MARK is where this reload's lines start
	MARK=$(lines)
	kill -HUP "$LAB_AGENT_PID"
	wait_for 10 eval 'since $MARK | grep -q "event=reload_done"'
}

# --- 1. live keys, a restart key, new credential paths ---
write_conf node2 '"198.18.7.0/24=198.18.0.1"' debug 30s
check "SIGHUP: the agent reloads (reload_done logged)" hup
check "the changed live keys are named as applied" \
	eval 'since $MARK | grep -q "event=reload_config .*applied=log_level,mtls.ca_bundle,mtls.node_cert,mtls.node_key,mtls.peers"'
check "the restart-only key is named in one line, running value kept" \
	eval 'test "$(since $MARK | grep -c "event=reload_restart_needed keys=flows.active_timeout kept=running")" = 1'
check "mtls.peers applied: ztctl mtls status lists 198.18.7.0/24 (source config)" \
	test "$(js "[p['agent'] for p in d['peers'] if p['cidr']=='198.18.7.0/24' and p['source']=='config']")" = "['198.18.0.1']"
check "log_level debug applied (debug lines follow)" \
	wait_for 5 eval 'since $MARK | grep -q "level=debug"'
check "the credentials at the new paths were read at once (node certificate reissued)" \
	eval 'since $MARK | grep -q "event=mtls_credentials_reloaded .*node_certificate=reissued bundle=$LAB_DIR/node2/bundle.pem"'
new_serial() { s=$(serial) && [ -n "$s" ] && [ "$s" != "$serial1" ]; }
check "the pod's SVID was re-minted by the new issuer" wait_for 5 new_serial
check "the policy directory was read again, feeds none" \
	eval 'since $MARK | grep -q "event=reload_done config=applied mtls_credentials=reloaded policy=reloaded feeds=none"'

# --- 2. a second SIGHUP with nothing changed: nothing applied, nothing to restart ---
check "SIGHUP with the file unchanged" hup
check "... reports nothing changed" \
	eval 'since $MARK | grep -q "event=reload_config .*changed_live=0 changed_restart=1"'

# --- 3. a broken file: kept running, enforcing, the line named ---
printf '%s\n' "$BASE" >"$LAB_CONF.tmp"
printf 'xdp_typo: [\n' >>"$LAB_CONF.tmp"
mv "$LAB_CONF.tmp" "$LAB_CONF"
bad_line=$(wc -l <"$LAB_CONF")
check "SIGHUP with a configuration that does not parse" hup
check "... the log names the file and a line of it" \
	eval 'since $MARK | grep -qE "event=reload_config_invalid file=$LAB_CONF error=\"$LAB_CONF:[0-9]+"'
since "$MARK" | grep reload_config_invalid | sed 's/^/# /'
check "... kept the running configuration" \
	eval 'since $MARK | grep -q "event=reload_done config=kept_running"'
check "... the agent still runs and answers" eval 'kill -0 $LAB_AGENT_PID && ztctl status >/dev/null'
check "... the blocked source is still dropped" no_ping 198.18.0.3
check "... the other still passes" pings 198.18.0.1
check "... the running peers stay" \
	test "$(js "[p['cidr'] for p in d['peers'] if p['source']=='config']")" = "['198.18.7.0/24']"
check "no error in the log but the refused file" \
	bash -c "! grep 'level=error' '$LAB_LOG' | grep -v reload_config_invalid | grep -q ."
# --- 4. mTLS that could not start: started by SIGHUP once its credentials exist ---
lab_agent_stop
write_conf node3 '"198.18.7.0/24=198.18.0.1"' info 30s
check "the agent starts while mtls.ca_bundle, node_cert and node_key do not exist yet" lab_agent_start
ztctl endpoint add --ifname v-web --ip 198.18.5.10 --labels app=web --namespace shop \
	--name web --service-account web >/dev/null 2>&1
tunnel_listens() { in_node ss -Htln "sport = :15008" | grep -q .; }
check "... mTLS is not running and says why (mtls_unavailable, ztctl mtls status)" \
	eval 'grep -q "event=mtls_unavailable" "$LAB_LOG" && test "$(js "d['"'"'state'"'"']")" != running'
check "... no tunnel listener, no SVID" eval '! tunnel_listens && ! has_serial'
"$ZTCTL_CA" ca issue-node lab-node --ca "$LAB_DIR/ca2" --out "$LAB_DIR/node3" --days 2 >/dev/null ||
	tap_fail "ztctl ca issue-node makes the missing credentials"
check "SIGHUP once the credentials exist" hup
check "... mTLS started (reload_done mtls_credentials=started)" \
	eval 'since $MARK | grep -q "event=reload_done .*mtls_credentials=started"'
check "... ztctl mtls status: running" test "$(js "d['state']")" = running
check "... the tunnel listens on 15008" tunnel_listens
check "... the pod's SVID is minted by the new node certificate" wait_for 5 has_serial
check "a second SIGHUP reloads the running mTLS as before" hup
check "... (reload_done mtls_credentials=reloaded)" \
	eval 'since $MARK | grep -q "event=reload_done .*mtls_credentials=reloaded"'
echo "1..$TAP_N"
