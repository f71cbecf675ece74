#!/usr/bin/env bash
# The metrics endpoint end to end: a small driver (metrics_demo.c, built here
# against build/libzt.a) serves ztagent's families on 127.0.0.1; promtool
# lints the text and a real Prometheus scrapes it and answers a query.
# Everything stays on 127.0.0.1. Prints TAP lines.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/ztagent-metrics.XXXXXX)
PIDS=()
VERSION=1.2.3-it

cleanup() {
	local rc=$? p
	set +e
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$DIR"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n=0
check() {
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fi
}
bail() {
	echo "not ok $((n + 1)) - $*"
	exit 1
}

# http METHOD URL: prints the status code, then the Content-Type, then the body.
http() {
	python3 - "$1" "$2" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[2], method=sys.argv[1])
try:
    r = urllib.request.urlopen(req, timeout=5)
except urllib.error.HTTPError as e:
    r = e
print(r.status)
print(r.headers.get("Content-Type", ""))
sys.stdout.write(r.read().decode())
PY
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
	local p
	for _ in 1 2 3 4 5; do
		p=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
		if [ -z "$(ss -Htln "sport = :$p")" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Starts the driver on $1; DEMO_PID and DEMO_PORT (empty if it failed).
demo_start() {
	local out=$DIR/demo.$RANDOM
	"$DIR/metrics_demo" "$1" "$VERSION" >"$out" 2>"$out.err" &
	DEMO_PID=$!
	PIDS+=("$DEMO_PID")
	DEMO_PORT=
	for _ in $(seq 1 100); do
		DEMO_PORT=$(sed -n 's/^port //p' "$out")
		[ -n "$DEMO_PORT" ] && return 0
		kill -0 "$DEMO_PID" 2>/dev/null || break
		sleep 0.05
	done
	DEMO_ERR=$(cat "$out.err")
	return 1
}

# --- the driver ---
[ -f "$ROOT/build/libzt.a" ] || bail "build/libzt.a is missing (run make first)"
PKGS="libbpf libelf zlib libcbor openssl libpq yaml-0.1 libmicrohttpd"
# shellcheck disable=SC2046
if ! "${CC:-gcc}" -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wformat=2 -Wshadow \
	-fno-strict-aliasing -D_GNU_SOURCE -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/build" \
	$(pkg-config --cflags $PKGS) -o "$DIR/metrics_demo" "$ROOT/tests/integration/metrics_demo.c" \
	"$ROOT/build/libzt.a" $(pkg-config --libs $PKGS) -lpthread -lm 2>"$DIR/cc.log"; then
	sed 's/^/# /' "$DIR/cc.log"
	bail "metrics_demo builds"
fi
check "metrics_demo builds with the project's flags" true

demo_start 127.0.0.1:0 || bail "metrics_demo starts on 127.0.0.1:0 ($DEMO_ERR)"
check "the driver listens on 127.0.0.1 (port $DEMO_PORT)" \
	test -n "$(ss -Htln "src 127.0.0.1 and sport = :$DEMO_PORT")"
URL="http://127.0.0.1:$DEMO_PORT"

resp=$(http GET "$URL/metrics")
status=$(sed -n 1p <<<"$resp")
ctype=$(sed -n 2p <<<"$resp")
sed 1,2d <<<"$resp" >"$DIR/metrics.txt"
check "GET /metrics answers 200" test "$status" = 200
check "with Content-Type text/plain; version=0.0.4" \
	test "$ctype" = "text/plain; version=0.0.4; charset=utf-8"
for fam in ztagent_xdp_packets_total ztagent_xdp_bytes_total ztagent_tc_packets_total \
	ztagent_tc_flow_verdicts_total ztagent_policy_denials_total ztagent_blocklist_entries \
	ztagent_ringbuf_lost_events_total ztagent_db_flow_rows_written_total \
	ztagent_db_flow_rows_refused_total ztagent_spool_bytes ztagent_spool_dropped_records_total \
	ztagent_policy_apply_seconds ztagent_build_info; do
	grep -q "^# TYPE $fam " "$DIR/metrics.txt" || echo "$fam" >>"$DIR/missing"
done
check "all 13 ztagent families are exposed" test ! -e "$DIR/missing"
# Each family's help says what it counts (ztagent_flows_total said "recorded" but counted verdicts).
check "no family by a name that misstated what it counted" \
	test -z "$(grep -E '^# TYPE (ztagent_flows_total|ztagent_db_rows_(written|failed)_total) ' "$DIR/metrics.txt")"
check "ztagent_tc_flow_verdicts_total's help says it counts verdicts on new flows, per interface" \
	grep -q '^# HELP ztagent_tc_flow_verdicts_total Policy verdicts the TC program reported .*one per new flow on each endpoint interface' "$DIR/metrics.txt"
check "ztagent_build_info carries the version" \
	grep -qx "ztagent_build_info{version=\"$VERSION\"} 1" "$DIR/metrics.txt"

lint=$(promtool check metrics <"$DIR/metrics.txt" 2>&1)
rc=$?
[ -n "$lint" ] && sed 's/^/# promtool: /' <<<"$lint"
check "promtool check metrics passes" test $rc -eq 0
check "promtool reports no lint warnings" test -z "$lint"

check "GET / is 404" test "$(http GET "$URL/" | sed -n 1p)" = 404
check "POST /metrics is 405" test "$(http POST "$URL/metrics" | sed -n 1p)" = 405
check "HEAD /metrics is 200" test "$(http HEAD "$URL/metrics" | sed -n 1p)" = 200

first_pid=$DEMO_PID
first_port=$DEMO_PORT
demo_start "127.0.0.1:$first_port"
check "a second server on the same port fails, naming the address" \
	grep -q "metrics.listen 127.0.0.1:$first_port: cannot bind: Address already in use" \
	<<<"${DEMO_ERR:-}"
DEMO_PID=$first_pid
DEMO_PORT=$first_port

# --- a real Prometheus scrapes it ---
PROM_PORT=$(free_port) || bail "a free port for Prometheus"
cat >"$DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ztagent
    static_configs:
      - targets: ['127.0.0.1:$DEMO_PORT']
EOF
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS+=("$PROM_PID")
PROM="http://127.0.0.1:$PROM_PORT"

query() { # query PROMQL: prints the JSON answer (or nothing)
	python3 - "$PROM" "$1" <<'PY'
import sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    print(urllib.request.urlopen(url, timeout=2).read().decode())
except Exception:
    pass
PY
}

ans=
for _ in $(seq 1 60); do
	kill -0 "$PROM_PID" 2>/dev/null || break
	ans=$(query ztagent_build_info)
	grep -q '"result":\[{' <<<"$ans" && break
	sleep 0.5
done
if ! grep -q '"result":\[{' <<<"$ans"; then
	echo "# prometheus log:"
	sed 's/^/#   /' "$DIR/prometheus.log"
fi
# value is [timestamp, "1"]; the labels are the scrape's plus version.
val=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])["data"]["result"]
print(len(r), r[0]["metric"].get("version"), r[0]["metric"].get("job"), r[0]["value"][1])
' "$ans" 2>/dev/null)
check "Prometheus scraped the driver and answers ztagent_build_info" test -n "$val"
check "ztagent_build_info{job=ztagent,version=$VERSION} is 1 ($val)" \
	test "$val" = "1 $VERSION ztagent 1"
# As many (action, reason) series as the agent exports (each pair once).
nxdp=$(grep -c '^ztagent_xdp_packets_total{' "$DIR/metrics.txt")
ans=$(query 'count(ztagent_xdp_packets_total)')
check "Prometheus has all $nxdp xdp (action, reason) series" \
	grep -q "\"value\":\\[[0-9.]*,\"$nxdp\"\\]" <<<"$ans"
ans=$(query 'ztagent_policy_apply_seconds_count')
check "the histogram arrives (_count 2)" grep -q '"value":\[[0-9.]*,"2"\]' <<<"$ans"
ans=$(query 'up{job="ztagent"}')
check "the target is up" grep -q '"value":\[[0-9.]*,"1"\]' <<<"$ans"
