#!/usr/bin/env bash
# Integration: threat-intelligence feeds with the real agent, a real HTTPS
# server and a real PostgreSQL. The test makes its own CA and serves feeds
# that change from an external namespace (python3 http.server over TLS);
# the agent fetches them with conditional requests (304s in the server's
# log), drops listed sources at the uplink (XDP), drops a pod's connection
# to a listed C2 address and raises an incident naming pod, IOC, feed and the
# feed's reference (one per pod and IOC, its count growing on repeat),
# keeps the last good content through a server outage
# (and reports it stale), swaps a 1M-entry feed while allowed traffic flows
# without a loss, and applies and withdraws an advisory policy feed.
# Prints TAP lines; timings are printed as comments.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

LAB_POLICY_DEFAULT=allow
LAB_BLOCKLIST_MAX=2097152
lab_init feed
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

SRV=198.18.0.5      # the feed server (external namespace)
BAD=198.18.0.1      # a source the feed lists
BAD2=198.18.0.4     # listed by the next version
C2=198.18.0.9       # a C2 address the Feodo feed lists
POD=198.18.1.10
FEEDS="$LAB_DIR/feeds"
WWW="$LAB_DIR/www"
PKI="$LAB_DIR/pki"
mkdir -p "$FEEDS/advisories" "$WWW" "$PKI" "$LAB_DIR/policies"
for a in $SRV $BAD2 $C2; do
	ip -n "$LAB_EXT" addr add "$a/24" dev ext0
done
lab_pod client $POD
ip -n "$LAB_EXT" route add 198.18.1.0/24 via "$LAB_NODE_IP"

# --- a CA of our own and the server's certificate (IP SAN) ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj "/CN=ztagent feeds test CA" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SRV" \
	-keyout "$PKI/srv.key" -out "$PKI/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$SRV" >"$PKI/ext.cnf"
openssl x509 -req -in "$PKI/srv.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
	-days 1 -extfile "$PKI/ext.cnf" -out "$PKI/srv.pem" 2>/dev/null
check "test CA and server certificate made" test -s "$PKI/srv.pem"

cat >"$LAB_DIR/server.py" <<'EOF'
import http.server, os, ssl, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *a):
        sys.stderr.write((fmt % a) + "\n")
        sys.stderr.flush()
os.chdir(sys.argv[1])
srv = http.server.ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[4], sys.argv[5])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
EOF
SRV_PID=
server_start() {
	ip netns exec "$LAB_EXT" python3 "$LAB_DIR/server.py" "$WWW" $SRV 8443 "$PKI/srv.pem" \
		"$PKI/srv.key" 2>>"$LAB_DIR/server.log" &
	SRV_PID=$!
	LAB_PIDS+=("$SRV_PID")
	for _ in $(seq 1 50); do
		ip netns exec "$LAB_EXT" bash -c "exec 3<>/dev/tcp/$SRV/8443" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
server_stop() {
	kill -TERM "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
}

# Content with explicit, increasing modification times (Last-Modified has whole seconds).
MT=$(($(date +%s) - 1000))
put() { # FILE CONTENT
	printf '%s' "$2" >"$WWW/$1.tmp"
	MT=$((MT + 10))
	touch -d "@$MT" "$WWW/$1.tmp"
	mv "$WWW/$1.tmp" "$WWW/$1"
}
put drop.txt "; test DROP list
$BAD/32 ; SBL100001
203.0.113.0/24 ; SBL100002
192.0.2.0/24 ; SBL100003
"
put feodo.csv "# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware
\"2024-01-17 07:44:46\",\"$C2\",\"8080\",\"online\",\"2024-02-19\",\"Dridex\"
"
check "feed server answers over TLS" server_start

# The 1M-entry file feed: hosts of 100.64.0.0/10 from index FROM, N of them.
gen_hosts() { # FROM N OUT
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
a, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = (100 << 24) | (64 << 16)
with open(out + ".tmp", "w") as f:
    f.write("# generated\n")
    f.write("".join("%d.%d.%d.%d\n" % ((x >> 24) & 255, (x >> 16) & 255, (x >> 8) & 255, x & 255)
                    for x in range(base + a, base + a + n)))
EOF
}
gen_hosts 0 1000000 "$FEEDS/big.txt" && mv "$FEEDS/big.txt.tmp" "$FEEDS/big.txt"
# mid: one host (100.92.253.224) at first; 100k others later (100.94.132.128 on), clear of big's.
gen_hosts 1900000 1 "$FEEDS/mid.txt" && mv "$FEEDS/mid.txt.tmp" "$FEEDS/mid.txt"

METRICS_PORT=$((20000 + RANDOM % 20000))
LAB_DB_URL=$DB
LAB_METRICS="127.0.0.1:$METRICS_PORT"
lab_write_config
cat >>"$LAB_CONF" <<EOF
detection:
  protected:
    - 192.0.2.64/26
feeds:
  - name: web
    url: https://$SRV:8443/drop.txt
    format: cidr
    refresh: 2s
    retries: 0
    direction: source
    ca_bundle: $PKI/ca.pem
  - name: c2
    url: https://$SRV:8443/feodo.csv
    format: feodo-csv
    refresh: 1h
    direction: destination
    action: block
    ca_bundle: $PKI/ca.pem
  - name: big
    url: file://$FEEDS/big.txt
    format: cidr
    refresh: 1h
    direction: source
    max_entries: 2000000
  - name: mid
    url: file://$FEEDS/mid.txt
    format: cidr
    refresh: 1h
    direction: source
  - name: advisories
    url: $FEEDS/advisories
    format: policy
    refresh: 1h
EOF
echo "# none yet" >"$FEEDS/advisories/00-none.yaml"
check "agent starts with five feeds" lab_agent_start
check "the pod is an endpoint of namespace lab" \
	ztctl endpoint add --ifname v-client --name client --ip $POD --labels app=client --namespace lab

feed_json() { ztctl feeds show "$1" -o json 2>/dev/null; }
feed_field() { # FEED KEY
	feed_json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null
}
wait_for() { # SECONDS COMMAND...: polls every 0.1 s
	local t=$1 i
	shift
	for ((i = 0; i < t * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
versions_at_least() { [ "$(feed_field "$1" versions)" -ge "$2" ] 2>/dev/null; }
web_and_c2() { versions_at_least web 1 && versions_at_least c2 1; }
check "web and c2 are fetched over HTTPS and applied" wait_for 20 web_and_c2
check "big (1M entries) is applied" wait_for 60 versions_at_least big 1
# --- 100k entries from a changed file to the kernel (the spec: 1 s; bound generous for CI) ---
check "mid (1 entry) is applied" wait_for 30 versions_at_least mid 1
# Polled in the agent's log (its feed_applied line), not with ztctl: cheaper under load.
mid_lines() { grep -c 'feed_applied feed=mid ' "$LAB_LOG"; }
mid_applied() { [ "$(mid_lines)" -gt "$1" ]; }
v=$(mid_lines)
gen_hosts 2000000 100000 "$FEEDS/mid.txt"
t0=$(date +%s%N)
mv "$FEEDS/mid.txt.tmp" "$FEEDS/mid.txt"
check "a 100k-entry version is applied within 5 s of the file's change" wait_for 5 mid_applied "$v"
echo "# 100k: file rename to 'applied' seen by the test: $((($(date +%s%N) - t0) / 1000000)) ms (polling every 100 ms)"
line=$(grep 'feed_applied feed=mid' "$LAB_LOG" | tail -1)
echo "# mid: $(grep -o ' ms=[0-9.]* work_ms=[0-9.]* steps=[0-9]*' <<<"$line") $(grep -o 'in_force_ms=[0-9.]* cpu_ms=[0-9.]*' <<<"$line")"
mid_in() { # the first and last new hosts are in the kernel, the old one is gone
	local l
	l=$(ztctl block list --feed mid --limit 0 -o json | grep '"cidr"')
	[ "$(wc -l <<<"$l")" = 100000 ] && grep -q '"100.94.132.128/32"' <<<"$l" &&
		grep -q '"100.96.11.31/32"' <<<"$l" && ! grep -q '"100.92.253.224/32"' <<<"$l" && return 0
	echo "# mid: $(wc -l <<<"$l") entries listed: $(head -2 <<<"$l" | tr -d ' \n') ... $(tail -1 <<<"$l" | tr -d ' ')"
	return 1
}
check "mid holds exactly its 100k new entries" mid_in
list_big() { ztctl feeds list | grep -q '^big .*1000000 in/0 out'; }
check "feeds list shows every feed" list_big
[ "$(feed_field web state)" = ok ] && tap_ok "web: state ok" || tap_fail "web: state ok ($(feed_field web state))"

ping_from() { # SRC: one echo from the external namespace with that source
	in_ext ping -c 1 -W 1 -I "$1" "$LAB_NODE_IP" >/dev/null 2>&1
}
no_ping_from() { ! ping_from "$@"; }
check "inbound: a listed source ($BAD) is dropped at the uplink" no_ping_from $BAD
check "inbound: an unlisted source (198.18.0.3) passes" ping_from 198.18.0.3
list_web() {
	local out
	out=$(ztctl block list --feed web) || return 1
	grep -q "$BAD/32" <<<"$out" && grep -q '203.0.113.0/24' <<<"$out" && ! grep -q '100\.64\.' <<<"$out"
}
check "block list --feed web lists the feed's entries (and only them)" list_web
list_big3() { ztctl block list --feed big --limit 3 | grep -q '100\.6[4-9]\.'; }
check "block list --feed big holds 100.64.x entries" list_big3
no_list_nope() { ! ztctl block list --feed nope 2>/dev/null; }
check "block list --feed of an unknown feed is refused" no_list_nope
src_feed() { ztctl block list --feed web -o json | grep -q '"source": "feed"'; }
check "the blocklist entry says source feed" src_feed
# detection.protected (192.0.2.64/26) is subtracted from feeds too: the
# listed 192.0.2.0/24 is split around it and the subtraction is reported.
protected_split() {
	local out
	out=$(ztctl block list --feed web) || return 1
	grep -q '192\.0\.2\.0/26' <<<"$out" && grep -q '192\.0\.2\.128/25' <<<"$out" &&
		! grep -q '192\.0\.2\.0/24' <<<"$out" && ! grep -q '192\.0\.2\.64/26' <<<"$out"
}
check "a protected CIDR (detection.protected) is never blocked by a feed: the /24 is split around it" \
	protected_split
protected_reported() {
	ztctl feeds show web | grep -q '192\.0\.2\.0/24 meets 192\.0\.2\.64/26 (protected): split around it'
}
check "feeds show reports the protected subtraction" protected_reported

# --- conditional requests ---
n304=$(grep -c '"GET /drop.txt HTTP/1.1" 304' "$LAB_DIR/server.log")
sleep 3 # at least one more refresh (2 s)
check "conditional requests: the unchanged feed is answered 304" \
	test "$(grep -c '"GET /drop.txt HTTP/1.1" 304' "$LAB_DIR/server.log")" -gt "$n304"
v=$(feed_field web versions)
ztctl feeds refresh web >/dev/null
sleep 1
check "a 304 applies nothing new (versions stay $v)" test "$(feed_field web versions)" = "$v"

# --- the feed changes: $BAD2 in, $BAD out ---
put drop.txt "; test DROP list, next version
$BAD2/32 ; SBL100003
203.0.113.0/24 ; SBL100002
"
check "a changed feed is applied at its next refresh" wait_for 10 versions_at_least web $((v + 1))
check "the new source ($BAD2) is dropped" no_ping_from $BAD2
check "the source the feed dropped ($BAD) passes again" ping_from $BAD

# --- outbound: the pod calls a C2 address ---
lab_bg_in "$LAB_EXT" nc -lk $C2 8080
lab_bg_in "$LAB_EXT" nc -lk 198.18.0.3 8080
sleep 0.3
check "outbound: the pod reaches an unlisted address" in_pod client nc -z -w2 198.18.0.3 8080
no_tcp_pod() { ! in_pod client nc -z -w2 "$@"; }
check "outbound: the pod's connection to the listed C2 ($C2:8080) is dropped" no_tcp_pod $C2 8080
check "the IOC hit is logged with pod, IOC, feed and reference" \
	wait_for 5 grep -q "ioc_hit pod=lab/client ioc=$C2/32 feed=c2 reference=\"Dridex\" action=block dropped=1" "$LAB_LOG"
flows_ioc() { ztctl flows --verdict denied -o json | tr -d '\n ' | grep -q "\"reason\":\"ioc\"[^}]*\"dst\":\"$C2\""; }
check "ztctl flows shows the flow denied with reason ioc" flows_ioc
# The hit is an incident of threat ioc: one per (pod, IOC), its counts growing.
ioc_incident() { # prints "id flows drops" of the pod's ioc incident toward $C2 (one line per incident)
	ztctl incidents list -o json | python3 -c '
import json, sys
for i in json.load(sys.stdin)["incidents"]:
    if i["threat_type"] == "ioc" and i["src"] == sys.argv[1] and i["dst"] == sys.argv[2]:
        print(i["id"], i["flows"], i["drops"])' "$POD" "$C2"
}
has_ioc_incident() { [ -n "$(ioc_incident)" ]; }
check "the IOC hit is an incident (ztctl incidents list: threat ioc, the pod to $C2)" \
	wait_for 5 has_ioc_incident
read -r inc flows1 _ <<<"$(ioc_incident | head -1)"
inc_fields() {
	ztctl incidents show "${inc:-none}" -o json | python3 -c '
import json, sys
i = json.load(sys.stdin)
i = i.get("incident", i)
ok = (i["threat_type"] == "ioc" and i["workload"] == "lab/client" and i["subtype"] == "c2"
      and i["dport"] == 8080 and i["action"] == "block" and i["blocked"] == sys.argv[1] + "/32"
      and sys.argv[1] + "/32 on feed c2 (reference: Dridex)" in i["evidence"])
sys.exit(0 if ok else 1)' "$C2"
}
check "incidents show: pod (workload lab/client), IOC, feed (c2) and its reference (Dridex), action block" \
	inc_fields
no_tcp_pod $C2 8080
no_tcp_pod $C2 8080
grown() {
	local id f d
	read -r id f d <<<"$(ioc_incident | head -1)"
	[ "$id" = "$inc" ] && [ "$f" -ge $((flows1 + 2)) ] && [ "$d" -ge $((flows1 + 2)) ] &&
		[ "$(ioc_incident | wc -l)" = 1 ]
}
check "a repeat grows the same incident (flows $flows1 -> $(ioc_incident | awk '{print $2}')), no second one" \
	wait_for 5 grown
inc_row() {
	[ "$(q "SELECT count(*) FROM incidents WHERE id = '$inc' AND threat_type = 'ioc'
		AND workload = 'lab/client' AND dest_ip = '$C2' AND dest_port = 8080 AND subtype = 'c2'
		AND evidence->>'evidence' LIKE '%Dridex%' AND flows >= $((flows1 + 2))")" = 1 ] 2>/dev/null
}
check "database: the incidents row (threat_type ioc, migration 006) with the grown count" \
	wait_for 20 inc_row
alert_row() {
	[ "$(q "SELECT count(*) FROM alerts WHERE kind = 'ioc' AND incident_id = '$inc' AND dest_ip = '$C2'
		AND dest_port = 8080 AND severity = 'critical' AND count >= $((flows1 + 2))")" = 1 ] 2>/dev/null
}
check "one alerts row (kind ioc) for the incident, its count grown" wait_for 20 alert_row
check "no policy-deny alert doubles it" \
	test "$(q "SELECT count(*) FROM alerts WHERE kind = 'policy-deny' AND dest_ip = '$C2'")" = 0
metrics() { in_node curl -s "http://127.0.0.1:$METRICS_PORT/metrics"; }
ioc_metric() {
	local m
	m=$(metrics)
	grep -q '^ztagent_ioc_flows_total{action="block"} [1-9]' <<<"$m" && return 0
	echo "# metrics said: $(grep '^ztagent_ioc_flows_total' <<<"$m" | tr '\n' ' ')"
	return 1
}
check "metrics: ztagent_ioc_flows_total{action=\"block\"} counts it" ioc_metric

# --- advisories: a policy feed ---
lab_bg_in "${LAB_ID}-client" nc -lk $POD 9000
sleep 0.3
check "before the advisory: ext -> pod:9000 works" in_ext nc -z -w2 $POD 9000
cat >"$FEEDS/advisories/cve-2099-0001.yaml" <<'EOF'
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: cve-2099-0001, namespace: lab}
spec:
  podSelector: {matchLabels: {app: client}}
  ingress:
    - action: deny
      ports: [{protocol: TCP, port: 9000}]
EOF
t0=$(date +%s%N)
no_ext_tcp() { ! in_ext nc -z -w1 "$@"; }
check "the advisory is applied within a second or so" wait_for 3 no_ext_tcp $POD 9000
echo "# advisory file to enforcement: $((($(date +%s%N) - t0) / 1000000)) ms (including the probe)"
pol_list() { ztctl policy list | grep 'lab/cve-2099-0001' | grep -q 'feed:advisories/cve-2099-0001.yaml'; }
check "policy list shows the advisory with the feed as its source" pol_list
bad_advisory() {
	printf 'kind: ZeroTrustPolicy\nnot: [valid\n' >"$FEEDS/advisories/zz-broken.yaml"
	sleep 1.5
	no_ext_tcp $POD 9000 && grep -q 'feed_fetch_failed feed=advisories' "$LAB_LOG"
}
check "an invalid advisory version is refused, the last good stays" bad_advisory
rm -f "$FEEDS/advisories/zz-broken.yaml" "$FEEDS/advisories/cve-2099-0001.yaml"
check "the advisory withdrawn: ext -> pod:9000 works again" wait_for 3 in_ext nc -z -w1 $POD 9000
adv_rows() {
	[ "$(q "SELECT count(*) FROM audit_log WHERE kind = 'policy.advisory.apply' AND subject = 'cve-2099-0001'")" -ge 1 ] &&
		[ "$(q "SELECT count(*) FROM audit_log WHERE kind = 'policy.advisory.withdraw' AND subject = 'cve-2099-0001'")" -ge 1 ]
}
check "audit rows for the advisory applied and withdrawn, with its id" wait_for 10 adv_rows

# --- outage: the last good stays, the feed goes stale ---
server_stop
fetch_errors() { [ "$(feed_field web fetch_errors)" -ge 1 ] 2>/dev/null; }
check "outage: fetches fail and are counted" wait_for 10 fetch_errors
check "outage: the last good content stays in force ($BAD2 still dropped)" no_ping_from $BAD2
web_stale() { [ "$(feed_field web state)" = stale ] && [ -n "$(feed_field web last_error)" ]; }
check "outage: feeds show reports the feed stale with its error" wait_for 15 web_stale
stale_metrics() {
	local m
	m=$(metrics)
	grep -q '^ztagent_feed_stale{feed="web"} 1' <<<"$m" &&
		grep -q '^ztagent_feed_fetch_errors_total{feed="web"} [1-9]' <<<"$m" &&
		grep -q '^ztagent_feed_entries{feed="big",direction="inbound"} 1000000' <<<"$m"
}
check "metrics: ztagent_feed_stale{feed=\"web\"} 1, fetch errors and entries" stale_metrics
server_start >/dev/null

# --- a 1M-entry swap while allowed traffic flows ---
v=$(feed_field big versions)
in_ext ping -i 0.005 -c 1200 -W 1 -I 198.18.0.3 "$LAB_NODE_IP" >"$LAB_DIR/ping.out" 2>&1 &
PING_PID=$!
LAB_PIDS+=("$PING_PID")
sleep 1
gen_hosts 500000 1000000 "$FEEDS/big.txt"
t0=$(date +%s%N)
mv "$FEEDS/big.txt.tmp" "$FEEDS/big.txt"
check "the 1M-entry swap is applied" wait_for 60 versions_at_least big $((v + 1))
t1=$(date +%s%N)
wait "$PING_PID"
tx=$(grep -o '[0-9]* packets transmitted' "$LAB_DIR/ping.out" | cut -d' ' -f1)
rx=$(grep -o '[0-9]* received' "$LAB_DIR/ping.out" | cut -d' ' -f1)
check "no allowed packet was lost during the swap ($rx of $tx echoes answered)" test "${rx:-0}" = "${tx:-x}"
line=$(grep 'feed_applied feed=big' "$LAB_LOG" | tail -1)
echo "# 1M swap: file rename to 'applied' seen by the test: $(((t1 - t0) / 1000000)) ms (polling every 100 ms)"
echo "# $(grep -o 'added=[0-9]*.*removed=[0-9]*' <<<"$line" | head -1)"
echo "# $(grep -o ' ms=[0-9.]* work_ms=[0-9.]* steps=[0-9]* longest_step_ms=[0-9.]*' <<<"$line")"
echo "# $(grep -o 'in_force_ms=[0-9.]* cpu_ms=[0-9.]* longest_step_cpu_ms=[0-9.]*' <<<"$line")"
grep 'feed_fetched feed=big' "$LAB_LOG" | tail -1 | grep -o 'parse_ms=[0-9.]*' | sed 's/^/# big: /'
check "after the swap: the feed has 1M prefixes inbound" test "$(feed_field big inbound)" = 1000000
swapped() {
	local l
	l=$(ztctl block list --feed big --limit 0 -o json | grep '"cidr"') || return 1
	[ "$(wc -l <<<"$l")" = 1000000 ] && grep -q '"100.71.161.32/32"' <<<"$l" &&
		! grep -q '"100.64.0.5/32"' <<<"$l"
}
check "the blocklist holds exactly the new version (listed server-side by feed)" swapped
audit_versions() {
	[ "$(q "SELECT count(*) FROM audit_log WHERE kind = 'feed.apply' AND subject = 'big'
		AND detail->>'sha256' ~ '^[0-9a-f]{64}$'")" -ge 2 ] 2>/dev/null
}
check "an audit row for every applied version, with its sha256" wait_for 10 audit_versions
# The loop's longest hold per applied version (a figure, not a check: it follows the VM's load).
echo "# longest apply step per version (ms): $(grep -o 'feed_applied feed=[a-z0-9]*.*longest_step_ms=[0-9.]*' "$LAB_LOG" |
	sed 's/feed_applied feed=\([a-z0-9]*\).*longest_step_ms=\([0-9.]*\)/\1:\2/' | tr '\n' ' ')"

# The drift check's whole-map reads overlap the swaps: what the agent released meanwhile is no drift.
check "no drift repair failed or 'added outside' blocklist entry during the swaps" \
	bash -c "! grep -E 'drift_repair_failed|drift_repaired kind=blocklist' '$LAB_LOG' | grep -q ."

lab_agent_stop
check "the agent stops cleanly" test $? -eq 0
if grep -q 'ERROR: AddressSanitizer\|level=error' "$LAB_LOG"; then
	grep 'level=error' "$LAB_LOG" | head -5 | sed 's/^/# /'
fi
[ -n "${FEEDS_TEST_LOG:-}" ] && cp "$LAB_LOG" "$FEEDS_TEST_LOG"
echo "1..$TAP_N"
