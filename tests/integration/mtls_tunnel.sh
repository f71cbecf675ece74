#!/usr/bin/env bash
# The mTLS tunnel end to end, in network namespaces (TAP). The real tunnel
# code (src/mtls/) runs in a small driver (mtls_peer.c, built here) as the
# client agent on node A and the server agent on node B, with a router
# between them and an echo server in a pod behind B:
#
#   ns A (client node)        ns R (router, capture)       ns B (server node)     ns P (pod)
#   pod client -> 127.0.0.1   198.18.10.254 | 198.18.20.254  198.18.20.1/.2:15008   198.18.30.2:7000 echo
#   agent 198.18.10.1  ==TLS 1.3==========================>  agent ------------->  (sees 198.18.40.5)
#
# Checks: data flows with half-close; the capture shows only TLS 1.3 and
# never the canary; the pod sees the client pod's address; each hostile
# peer (another CA, expired, not yet valid, wrong service account, two URI
# SANs, a CA:TRUE leaf, TLS 1.2 client and server, plaintext client and
# server, a self-signed man in the middle on the router, a relay flipping a
# byte) is refused with nothing delivered and its reason counted; a refusal
# resets the pod's connection; SVIDs with a 10 s TTL renew under a running
# iperf3 without breaking it.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ZTCTL="$ROOT/build/ztctl"
ID="ztm$$"
A="$ID-a" R="$ID-r" B="$ID-b" P="$ID-p"
DIR=$(mktemp -d /tmp/ztagent-mtls.XXXXXX)
PIDS=()
TD=cluster.local
WEB="spiffe://$TD/ns/prod/sa/web"
DB="spiffe://$TD/ns/prod/sa/db"
n=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "$A" "$R" "$B" "$P"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "${MTLS_KEEP:-}" ]; then echo "# kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() {
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fi
}
bail() {
	echo "Bail out! $*"
	exit 1
}
bg() { # bg NS CMD...: run in a namespace, remember the PID
	local ns=$1
	shift
	ip netns exec "$ns" "$@" &
	PIDS+=($!)
	LAST=$!
}
# stat FILE KEY: a counter from a driver's stats file
stat() { awk -v k="$2" '$1 == k { print $2 }' "$1" 2>/dev/null || echo 0; }
# gt FILE KEY N: the counter is above N now (re-read on each call, for wait_for)
gt() { test "$(stat "$1" "$2")" -gt "$3"; }
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

for tool in tshark openssl python3 iperf3 nc iptables; do
	command -v $tool >/dev/null || bail "$tool is missing: run 'make deps'"
done
[ -x "$ZTCTL" ] && [ -f "$ROOT/build/libzt.a" ] || bail "build first: make"

# --- the driver ---
PKGS="libbpf libelf zlib libcbor openssl libpq yaml-0.1 libmicrohttpd"
PEER="$DIR/mtls_peer"
# shellcheck disable=SC2046
if ! "${CC:-gcc}" -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wformat=2 -Wshadow \
	-fno-strict-aliasing -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/build" \
	$(pkg-config --cflags $PKGS) -o "$PEER" "$ROOT/tests/integration/mtls_peer.c" \
	"$ROOT/build/libzt.a" $(pkg-config --libs $PKGS) -lpthread 2>"$DIR/cc.log"; then
	sed 's/^/# /' "$DIR/cc.log"
	bail "mtls_peer builds"
fi
check "the driver builds with the project's flags" true

# --- certificates: the trust domain, two nodes, and another CA ---
"$ZTCTL" ca init --trust-domain $TD --out "$DIR/ca" >/dev/null &&
	"$ZTCTL" ca issue-node node-a --ca "$DIR/ca" --out "$DIR/node-a" --days 2 >/dev/null &&
	"$ZTCTL" ca node-key node-b --out "$DIR/node-b" >/dev/null &&
	"$ZTCTL" ca issue-node node-b --csr "$DIR/node-b/node.csr" --ca "$DIR/ca" --out "$DIR/node-b" \
		--days 2 >/dev/null &&
	"$ZTCTL" ca init --trust-domain $TD --out "$DIR/evil" >/dev/null &&
	"$ZTCTL" ca issue-node evil --ca "$DIR/evil" --out "$DIR/evil-node" --days 2 >/dev/null ||
	bail "ztctl ca makes the certificates"
check "ztctl ca init, issue-node and node-key + issue-node --csr (node B) make the trust domain's files" \
	test -s "$DIR/node-a/node.pem" -a -s "$DIR/node-b/node.key" -a -s "$DIR/ca/bundle.pem"
mk() { # mk NAME KIND ID [ISSUER-DIR]: a certificate and key under DIR/NAME.{pem,key}
	local issuer=${4:-$DIR/node-a}
	"$PEER" mkcert --kind "$2" --id "$3" --issuer-cert "$issuer/node.pem" \
		--issuer-key "$issuer/node.key" --cert "$DIR/$1.pem" --key "$DIR/$1.key"
}
mk other good "$WEB" "$DIR/evil-node" && mk expired expired "$WEB" && mk future not-yet-valid "$WEB" &&
	mk intruder good "spiffe://$TD/ns/prod/sa/intruder" && mk twosans two-sans "$WEB" &&
	mk caleaf ca-leaf "$WEB" && mk selfsigned self-signed "$DB" || bail "mkcert"

# --- the namespaces ---
for ns in "$A" "$R" "$B" "$P"; do ip netns add "$ns" && ip -n "$ns" link set lo up; done
ip link add vA netns "$A" type veth peer name rA netns "$R"
ip link add rB netns "$R" type veth peer name vB netns "$B"
ip link add vP netns "$B" type veth peer name eth0 netns "$P"
ip -n "$A" addr add 198.18.10.1/24 dev vA
ip -n "$R" addr add 198.18.10.254/24 dev rA
ip -n "$R" addr add 198.18.20.254/24 dev rB
ip -n "$B" addr add 198.18.20.1/24 dev vB
ip -n "$B" addr add 198.18.20.2/24 dev vB
ip -n "$B" addr add 198.18.30.1/24 dev vP
ip -n "$P" addr add 198.18.30.2/24 dev eth0
for l in "$A vA" "$R rA" "$R rB" "$B vB" "$B vP" "$P eth0"; do
	set -- $l
	ip -n "$1" link set "$2" up
done
ip -n "$A" route add default via 198.18.10.254
ip -n "$B" route add default via 198.18.20.254
ip -n "$P" route add default via 198.18.30.1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
# B delivers the pod's answers to the client pod's address (198.18.40.0/24,
# on node A) to its own transparent sockets, as the TPROXY datapath will.
ip -n "$B" rule add from 198.18.30.2 to 198.18.40.0/24 lookup 100
ip -n "$B" route add local 0.0.0.0/0 dev lo table 100
ip netns exec "$A" ping -c1 -W2 198.18.20.1 >/dev/null || bail "A reaches B through R"

# --- the pod's echo server: logs each connection's peer and every byte ---
cat >"$DIR/echo.py" <<'PY'
import socket, socketserver, sys, threading
log = open(sys.argv[1] + ".conns", "a", buffering=1)
data = open(sys.argv[1] + ".data", "ab", buffering=0)
lock = threading.Lock()
class H(socketserver.BaseRequestHandler):
    def handle(self):
        with lock:
            log.write("%s\n" % self.client_address[0])
        while True:
            b = self.request.recv(65536)
            if not b:
                break
            with lock:
                data.write(b)
            self.request.sendall(b)
        self.request.shutdown(socket.SHUT_WR)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("198.18.30.2", 7000), H).serve_forever()
PY
# A pod client: sends CANARY + N random bytes, half-closes, reads the echo to EOF.
cat >"$DIR/pod.py" <<'PY'
import os, socket, sys
port, canary, n = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
out = canary + os.urandom(n)
try:
    # a quick refusal can reset the connection before connect() has returned
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(out)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except (ConnectionResetError, BrokenPipeError):
    print("reset"); sys.exit(0)
except socket.timeout:
    print("timeout"); sys.exit(0)
except Exception as e:
    print("error-%s" % type(e).__name__); sys.exit(0)
print("echoed" if got == out else "eof-after-%d" % len(got))
PY
# A relay on the router that flips one byte in the client's third TLS record.
cat >"$DIR/flip.py" <<'PY'
import socket, sys, threading
lst = socket.socket(); lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind((sys.argv[1], 15008)); lst.listen(8)
def pipe(a, b, flip):
    buf, rec, done = b"", 0, False
    try:
        while True:
            d = a.recv(65536)
            if not d:
                b.shutdown(socket.SHUT_WR); return
            if flip and not done:
                buf += d
                out = b""
                while len(buf) >= 5 and not done:
                    ln = 5 + int.from_bytes(buf[3:5], "big")
                    if len(buf) < ln:
                        break
                    r = bytearray(buf[:ln])
                    if rec == 2:
                        r[5 + (ln - 5) // 2] ^= 0x01; done = True
                    out += bytes(r); buf = buf[ln:]; rec += 1
                if done:
                    out += buf; buf = b""
                d = out
            if d:
                b.sendall(d)
    except OSError:
        pass
while True:
    c, _ = lst.accept()
    u = socket.create_connection((sys.argv[2], 15008))
    threading.Thread(target=pipe, args=(c, u, True), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, False), daemon=True).start()
PY

ECHO="$DIR/echo"
bg "$P" python3 "$DIR/echo.py" "$ECHO"
bg "$P" iperf3 -s -B 198.18.30.2 -p 5201 -1
ns_listens() { ip netns exec "$1" ss -Htln "sport = :$2" | grep -q .; }
wait_for 5 ns_listens "$P" 7000 || bail "the echo server listens"

# --- the agents (SVID TTL 10 s: renewed every 5 s all along) ---
COMMON=(--bundle "$DIR/ca/bundle.pem" --td $TD --ttl 10)
bg "$B" "$PEER" server "${COMMON[@]}" --node-cert "$DIR/node-b/node.pem" --node-key "$DIR/node-b/node.key" \
	--listen 0.0.0.0:15008 --host 198.18.30.2=prod/db --allow "$WEB" --transparent \
	--stats "$DIR/b.stats" 2>"$DIR/b.log"
client() { # client PORT DSTPORT EXPECT STATS TTL: a client agent for one destination
	bg "$A" "$PEER" client "${COMMON[@]}" --ttl "$5" --node-cert "$DIR/node-a/node.pem" \
		--node-key "$DIR/node-a/node.key" --listen "127.0.0.1:$1" --peer 198.18.20.1:15008 \
		--dst "198.18.30.2:$2" --src-addr 198.18.40.5:0 --src-id "$WEB" \
		--host 198.18.40.5=prod/web --expect "$3" --stats "$DIR/$4" 2>>"$DIR/a.log"
}
client 9000 7000 "$DB" a.stats 3600
client 9001 5201 "$DB" a2.stats 10
client 9002 7000 "spiffe://$TD/ns/prod/sa/someone-else" a3.stats 3600
wait_for 5 ns_listens "$B" 15008 && wait_for 5 ns_listens "$A" 9000 && wait_for 5 ns_listens "$A" 9002 ||
	bail "the agents listen ($(cat "$DIR/b.log" "$DIR/a.log"))"
wait_for 5 test -s "$DIR/a.stats" || bail "stats"

# --- 1. data flows, and the wire shows TLS 1.3 only ---
CAP="$DIR/cap.pcap"
ip netns exec "$R" tshark -i rA -w "$CAP" -f "tcp port 15008" >"$DIR/tshark.log" 2>&1 &
TSHARK=$!
PIDS+=($TSHARK)
wait_for 10 grep -q "Capturing on" "$DIR/tshark.log" || bail "tshark captures ($(cat "$DIR/tshark.log"))"
CANARY="ZTCANARY-$RANDOM$RANDOM-plaintext"
out=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 "$CANARY" 1000000)
check "1 MB and a canary go through the tunnel and come back whole, half-close included" \
	test "$out" = echoed
out=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 "$CANARY-2" 1000)
check "a second connection too" test "$out" = echoed
sleep 0.5
kill -INT $TSHARK
wait $TSHARK 2>/dev/null
check "the destination pod received the canary (delivered)" grep -q "$CANARY" "$ECHO.data"
check "the destination pod sees the client pod's address (198.18.40.5) as source" \
	grep -qx 198.18.40.5 "$ECHO.conns"
check "the capture holds packets of the tunnel" \
	test "$(tshark -r "$CAP" -Y 'tcp.len > 0' 2>/dev/null | wc -l)" -gt 10
check "the canary never appears on the wire" \
	test "$(tshark -r "$CAP" -Y "frame contains \"$CANARY\"" 2>/dev/null | wc -l)" -eq 0
check "... nor in the raw capture bytes" bash -c "! grep -aq '$CANARY' '$CAP'"
vers=$(tshark -r "$CAP" -Y 'tls.handshake.type == 2' -T fields \
	-e tls.handshake.extensions.supported_version 2>/dev/null | sort -u | tr '\n' ' ')
check "every ServerHello selects TLS 1.3 (0x0304): '$vers'" test "$vers" = "0x0304 "
# Each direction of each TCP stream, reassembled, must be TLS records end to end.
cat >"$DIR/records.py" <<'PY'
import sys
bad, n = 0, 0
for stream in sys.stdin.read().split("===================================================================")[1:]:
    dirs = {0: b"", 1: b""}
    for line in stream.splitlines():
        if not line.strip() or ":" in line or line.startswith("Follow") or line.startswith("Filter") or line.startswith("Node"):
            continue
        d = 1 if line.startswith("\t") else 0
        dirs[d] += bytes.fromhex(line.strip())
    for d, b in dirs.items():
        i = 0
        while i + 5 <= len(b):
            t, v, ln = b[i], b[i+1:i+3], int.from_bytes(b[i+3:i+5], "big")
            if t not in (20, 21, 22, 23) or v not in (b"\x03\x01", b"\x03\x03") or ln > 16384 + 256:
                bad += 1; break
            i += 5 + ln; n += 1
        if i != len(b) and not bad:
            bad += 1  # a trailing partial record is fine only if the capture cut it
print(n, bad)
PY
streams=$(tshark -r "$CAP" -T fields -e tcp.stream 2>/dev/null | sort -un)
recs=$(for s in $streams; do tshark -r "$CAP" -q -z "follow,tcp,raw,$s" 2>/dev/null; done | python3 "$DIR/records.py")
check "every byte on the tunnel port, each direction reassembled, is a TLS record ($recs: records, bad)" \
	bash -c "[ '${recs#* }' = 0 ] && [ '${recs% *}' -gt 10 ]"
# TLS 1.3 hides the real type of encrypted records behind the opaque type 23
types=$(tshark -r "$CAP" -T fields -e tls.record.content_type -e tls.record.opaque_type 2>/dev/null |
	tr ',\t' '\n\n' | grep . | sort -u | tr '\n' ' ')
check "only handshake, change_cipher_spec (compatibility) and encrypted records: '$types'" \
	bash -c "[[ '$types' =~ ^(20 )?22\ 23\ $ ]]"
check "the ciphersuite is one of the three allowed" \
	bash -c "tshark -r '$CAP' -Y 'tls.handshake.type == 2' -T fields -e tls.handshake.ciphersuite 2>/dev/null |
		grep -qvE '^0x130[123]$' && exit 1 || exit 0"
check "the second connection resumed its session" test "$(stat "$DIR/a.stats" handshakes_resumed)" -ge 1
check "the server counted its handshakes" test "$(stat "$DIR/b.stats" handshakes_full)" -ge 1
check "both tunnels ended cleanly (close_notify both ways)" \
	wait_for 3 bash -c "[ \$(awk '\$1 == \"closed\" { print \$2 }' '$DIR/a.stats') -ge 2 ] &&
		[ \$(awk '\$1 == \"reset\" { print \$2 }' '$DIR/a.stats') -eq 0 ]"

# --- 1b. a ready spare on a path that went silent: the pod's connection is dialled afresh ---
# After a connection relayed, client 9000 keeps ready spares (handshake done). The router
# now drops their packets both ways (by their ports), as a path does that died without a
# reset. The next pod connection takes one; its header is never acknowledged, so it is
# given up well before the 3 s handshake timeout and the pod's connection dialled afresh.
out=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 warm 10)
wait_for 3 gt "$DIR/a.stats" pool_made 0
sleep 0.5 # the spares' handshakes
spare_ports=$(ip netns exec "$A" ss -Htn state established "dport = :15008" | awk '{ sub(/.*:/, "", $3); print $3 }')
for p in $spare_ports; do
	ip netns exec "$R" iptables -I FORWARD -p tcp --sport "$p" -j DROP
	ip netns exec "$R" iptables -I FORWARD -p tcp --dport "$p" -j DROP
done
failed0=$(stat "$DIR/a.stats" pool_failed) ready0=$(stat "$DIR/a.stats" pool_ready)
t0=$(date +%s%N)
out=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 "$CANARY-silent" 100)
ms=$((($(date +%s%N) - t0) / 1000000))
check "a spare on a silent path (ports: $(echo $spare_ports)): the pod's connection is echoed in ${ms} ms ($out)" \
	bash -c "[ '$out' = echoed ] && [ $ms -lt 2000 ]"
check "... it took a ready spare, which counts as failed" \
	wait_for 2 bash -c "[ \$(awk '\$1 == \"pool_ready\" { print \$2 }' '$DIR/a.stats') -gt $ready0 ] &&
		[ \$(awk '\$1 == \"pool_failed\" { print \$2 }' '$DIR/a.stats') -gt $failed0 ]"
ip netns exec "$R" iptables -F FORWARD

# --- 2. hostile clients at B: refused, nothing delivered, the reason counted ---
conns_before=$(wc -l <"$ECHO.conns")
hostile() { # hostile NAME CERT REASON [CHAIN]
	local name=$1 cert=$2 reason=$3 chain=${4:-} before after res
	before=$(stat "$DIR/b.stats" "refused_$reason")
	res=$(ip netns exec "$A" "$PEER" hostile-client --connect 198.18.20.1:15008 --dst 198.18.30.2:7000 \
		--cert "$DIR/$cert.pem" --key "$DIR/$cert.key" ${chain:+--chain "$chain"} --id "$WEB" \
		--canary "CANARY-$name" 2>&1)
	wait_for 3 gt "$DIR/b.stats" "refused_$reason" "$before"
	after=$(stat "$DIR/b.stats" "refused_$reason")
	check "$name: refused as $reason (client saw: $res)" test "$after" -gt "$before"
	check "$name: nothing delivered" bash -c "! grep -aq 'CANARY-$name' '$ECHO.data'"
}
hostile another-ca other unknown_ca "$DIR/evil-node/node.pem"
hostile expired expired expired "$DIR/node-a/node.pem"
hostile not-yet-valid future not_yet_valid "$DIR/node-a/node.pem"
hostile two-uri-sans twosans bad_san "$DIR/node-a/node.pem"
hostile ca-leaf caleaf bad_profile "$DIR/node-a/node.pem"
hostile self-signed selfsigned unknown_ca
# right CA, wrong service account: authenticated, then refused by policy with a reason frame
before=$(stat "$DIR/b.stats" refused_wrong_identity)
res=$(ip netns exec "$A" "$PEER" hostile-client --connect 198.18.20.1:15008 --dst 198.18.30.2:7000 \
	--cert "$DIR/intruder.pem" --key "$DIR/intruder.key" --chain "$DIR/node-a/node.pem" \
	--id "spiffe://$TD/ns/prod/sa/intruder" --canary CANARY-intruder 2>&1)
check "wrong service account: the client is told 'refused wrong_identity' ($res)" \
	test "$res" = "refused wrong_identity"
check "wrong service account: counted" \
	wait_for 3 gt "$DIR/b.stats" refused_wrong_identity "$before"
check "wrong service account: nothing delivered" bash -c "! grep -aq CANARY-intruder '$ECHO.data'"
# the right certificate, but a header claiming another identity
before=$(stat "$DIR/b.stats" refused_wrong_identity)
res=$(ip netns exec "$A" "$PEER" hostile-client --connect 198.18.20.1:15008 --dst 198.18.30.2:7000 \
	--cert "$DIR/intruder.pem" --key "$DIR/intruder.key" --chain "$DIR/node-a/node.pem" \
	--id "$WEB" --canary CANARY-spoof 2>&1)
check "a header naming another identity than the certificate's is refused ($res)" \
	test "$res" = "refused wrong_identity"
check "... with nothing delivered" bash -c "! grep -aq CANARY-spoof '$ECHO.data'"
# TLS 1.2 only
before=$(stat "$DIR/b.stats" refused_version)
echo CANARY-tls12 | ip netns exec "$A" timeout 5 openssl s_client -tls1_2 -connect 198.18.20.1:15008 \
	-servername v4-c612001e.ztagent -cert "$DIR/node-a/node.pem" -key "$DIR/node-a/node.key" \
	>"$DIR/s_client.out" 2>&1
check "openssl s_client -tls1_2: refused as version" \
	wait_for 3 gt "$DIR/b.stats" refused_version "$before"
check "openssl s_client -tls1_2: no session was established" \
	grep -qE 'no protocols available|alert protocol version|Cipher is \(NONE\)' "$DIR/s_client.out"
# plaintext on the tunnel port
before=$(stat "$DIR/b.stats" refused_plaintext)
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nCANARY-plain' | ip netns exec "$A" timeout 3 nc -q1 198.18.20.1 15008 >/dev/null 2>&1
check "a plaintext client: refused as plaintext" \
	wait_for 3 gt "$DIR/b.stats" refused_plaintext "$before"
check "a plaintext client: nothing delivered" bash -c "! grep -aq CANARY-plain '$ECHO.data'"
check "no hostile client ever reached the pod" test "$(wc -l <"$ECHO.conns")" -eq "$conns_before"

# --- 3. hostile servers: the router takes B's address (a man in the middle) ---
intercept() { ip -n "$R" addr add 198.18.20.1/32 dev lo; }
release() { ip -n "$R" addr del 198.18.20.1/32 dev lo 2>/dev/null; }
hostile_server() { # hostile_server NAME REASON CMD...: CMD listens on 198.18.20.1:15008 in R
	local name=$1 reason=$2 before res
	shift 2
	intercept
	bg "$R" "$@"
	local srv=$LAST
	wait_for 5 ns_listens "$R" 15008
	before=$(stat "$DIR/a.stats" "refused_$reason")
	res=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 "CANARY-$name" 100 2>&1 | tail -n1)
	check "$name: the pod's connection is reset ($res)" test "$res" = reset
	check "$name: refused as $reason" \
		wait_for 3 gt "$DIR/a.stats" "refused_$reason" "$before"
	# everything in R now is this server (and what its shell started)
	for p in $(ip netns pids "$R"); do kill -TERM "$p" 2>/dev/null; done
	wait "$srv" 2>/dev/null
	release
	check "$name: the canary never reached it" bash -c "! grep -aq 'CANARY-$name' '$DIR/$name.out' 2>/dev/null"
}
hostile_server self-signed-mitm unknown_ca bash -c "openssl s_server -accept 198.18.20.1:15008 -tls1_3 \
	-cert '$DIR/selfsigned.pem' -key '$DIR/selfsigned.key' -quiet >'$DIR/self-signed-mitm.out' 2>&1"
hostile_server other-ca-server unknown_ca bash -c "openssl s_server -accept 198.18.20.1:15008 -tls1_3 \
	-cert '$DIR/other.pem' -key '$DIR/other.key' -cert_chain '$DIR/evil-node/node.pem' -quiet \
	>'$DIR/other-ca-server.out' 2>&1"
hostile_server tls12-server version bash -c "openssl s_server -accept 198.18.20.1:15008 -tls1_2 \
	-cert '$DIR/selfsigned.pem' -key '$DIR/selfsigned.key' -quiet >'$DIR/tls12-server.out' 2>&1"
hostile_server plaintext-server plaintext python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('198.18.20.1', 15008)); s.listen(1)
c, _ = s.accept(); c.sendall(b'HTTP/1.1 400 Bad Request\r\n\r\n')
open('$DIR/plaintext-server.out', 'wb').write(c.recv(65536))
c.close()"
# the relay flips a byte of the client's third record on its way to the real B (198.18.20.2)
before_a=$(stat "$DIR/a.stats" refused_tampered)
before_b=$(stat "$DIR/b.stats" refused_tampered)
before_data=$(wc -c <"$ECHO.data")
intercept
bg "$R" python3 "$DIR/flip.py" 198.18.20.1 198.18.20.2
FLIP=$LAST
wait_for 5 ns_listens "$R" 15008
res=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 CANARY-flip 100)
check "flipped byte: the pod's connection is reset ($res)" test "$res" = reset
tampered() { test $(($(stat "$DIR/a.stats" refused_tampered) + $(stat "$DIR/b.stats" refused_tampered))) -gt $((before_a + before_b)); }
check "flipped byte: counted as tampered (client or server)" wait_for 3 tampered
check "flipped byte: nothing delivered" test "$(wc -c <"$ECHO.data")" -eq "$before_data"
for p in $(ip netns pids "$R"); do kill -TERM "$p" 2>/dev/null; done
wait $FLIP 2>/dev/null
release

# --- 4. the client side refuses a server whose identity policy does not expect ---
before=$(stat "$DIR/a3.stats" refused_wrong_identity)
before_data=$(wc -c <"$ECHO.data")
res=$(ip netns exec "$A" python3 "$DIR/pod.py" 9002 CANARY-unexpected 100)
check "an unexpected server identity resets the pod's connection ($res)" test "$res" = reset
check "... counted as wrong_identity on the client" \
	wait_for 3 gt "$DIR/a3.stats" refused_wrong_identity "$before"
check "... and nothing delivered" test "$(wc -c <"$ECHO.data")" -eq "$before_data"

# --- 5. rotation: 10 s SVIDs renew every 5 s under a 20 s iperf3 ---
serial0=$(awk '$1 == "svid" { print $3 }' "$DIR/a2.stats")
minted_a=$(stat "$DIR/a2.stats" minted)
minted_b=$(stat "$DIR/b.stats" minted)
ip netns exec "$A" iperf3 -c 127.0.0.1 -p 9001 -t 20 -J >"$DIR/iperf.json" 2>&1
rc=$?
check "iperf3 ran 20 s through the tunnel without a broken connection (exit $rc)" test $rc -eq 0
check "the client agent minted new SVIDs meanwhile" test "$(stat "$DIR/a2.stats" minted)" -ge $((minted_a + 3))
check "the server agent too" test "$(stat "$DIR/b.stats" minted)" -ge $((minted_b + 3))
check "the source's SVID serial changed" test "$(awk '$1 == "svid" { print $3 }' "$DIR/a2.stats")" != "$serial0"
out=$(ip netns exec "$A" python3 "$DIR/pod.py" 9000 CANARY-after 1000)
check "a new connection after the renewals works" test "$out" = echoed
bps=$(python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$DIR/iperf.json" 2>/dev/null)
cpu=$(stat "$DIR/b.stats" relay_cpu_s)
echo "# iperf3 through the tunnel: ${bps:-?} Gbit/s; server relay CPU ${cpu:-?} s"
awk '$1 ~ /^refused_/ && $2 > 0 { printf "# server %s\n", $0 }' "$DIR/b.stats"
awk '$1 ~ /^refused_/ && $2 > 0 { printf "# client %s\n", $0 }' "$DIR/a.stats"
