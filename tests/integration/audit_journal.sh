#!/usr/bin/env bash
# Integration: the audit queue (src/records/auditq.c) on a real PostgreSQL
# (tools/pg.sh), driven by auditq_drive.c (built here against the ASan
# library, so a double free aborts the driver):
#  - an empty database (no --migrate-only before): the writer applies the
#    migrations, every event is in audit_log, the chain verifies;
#  - the database down at start: events wait in the journal, then arrive;
#  - the fuzzing report's journal (a valid empty record, then one whose
#    first field claims 0xffff bytes): no crash, the bad record quarantined,
#    the empty one (not JSON) in deadletter.jsonl;
#  - rows the server refuses for their content go to deadletter.jsonl;
#  - a missing relation (42P01) is retried, never a reason to drop;
#  - every cursor write failing after the journal drained: later events
#    still arrive, and nothing is sent twice once the cursor is written;
#  - at 10k violations/s the journal's files stay within max_bytes.
# Prints TAP lines.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tools/lab.sh
. tools/lab.sh # TAP helpers only (no lab_init: no namespaces needed)
# shellcheck source=tools/pg.sh
. tools/pg.sh

T=$(mktemp -d /tmp/ztagent-auditq.XXXXXX)
BG_PIDS=()
cleanup() {
	local rc=$? p
	set +e
	for p in "${BG_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	pg_cleanup
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bail() {
	tap_fail "$*"
	echo "1..$TAP_N"
	exit 1
}

# --- the driver ---
LIB=${AUDITQ_LIB:-build/libzt-san.a} # AUDITQ_LIB=... runs against another build
[ -f "$LIB" ] || bail "$LIB is missing (make test-bins)"
PKGS="libbpf libelf zlib libcbor openssl libpq yaml-0.1 libmicrohttpd"
SAN=
[[ "$LIB" == *san* ]] && SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"
# shellcheck disable=SC2046,SC2086
if ! "${CC:-gcc}" -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE $SAN \
	-I"$(dirname "$LIB")/../src" -I"$ROOT/src" -I"$ROOT/include" -I"$ROOT/build" \
	$(pkg-config --cflags $PKGS) -o "$T/auditq_drive" tests/integration/auditq_drive.c "$LIB" \
	$(pkg-config --libs $PKGS) -lpthread 2>"$T/cc.log"; then
	sed 's/^/# /' "$T/cc.log"
	bail "auditq_drive builds"
fi
tap_ok "auditq_drive builds against $LIB"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
DRIVE=$T/auditq_drive
ZTCTL=${ZTCTL_BIN:-$ROOT/build/ztctl}

pg_start || bail "PostgreSQL starts"
db() { echo "host=$PG_DIR port=$PG_PORT user=postgres dbname=$1"; }
qdb() { psql "$(db "$1")" -X -q -A -t -v ON_ERROR_STOP=1 -c "$2"; }
nmig=$(ls deploy/sql/[0-9][0-9][0-9]_*.sql | wc -l)
# wait_line FILE REGEX [SECONDS]: until a line of FILE matches
wait_line() {
	for _ in $(seq 1 $((${3:-60} * 10))); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# deadletter DIR PYTHON-EXPR: the expression over `lines` (the parsed JSON lines) is true
deadletter() {
	python3 - "$1/deadletter.jsonl" "$2" <<'PY'
import json, sys
try:
    lines = [json.loads(l) for l in open(sys.argv[1])]
except Exception as e:
    print("# deadletter.jsonl:", e)
    sys.exit(1)
for l in lines:
    print("# dead letter:", json.dumps(l)[:300])
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# --- an empty database, nothing migrated ---
pg_sql -c "CREATE DATABASE fresh" >/dev/null
out=$(AUDITQ_TAG=fresh "$DRIVE" "$(db fresh)" "$T/q1" 0 post:30:config.load post:5:endpoint.add \
	post:5:policy.violation drain:30000 stats 2>"$T/q1.err")
echo "# ${out//$'\n'/; }"
check "on an empty database every event is in audit_log (40 rows)" \
	test "$(qdb fresh "SELECT count(*) FROM audit_log WHERE actor = 'fresh'")" = 40
check "... and their 5 alerts rows" \
	test "$(qdb fresh "SELECT count(*) FROM alerts WHERE detail->>'tag' = 'fresh'")" = 5
check "... the audit writer applied the $nmig migrations itself" \
	test "$(qdb fresh "SELECT count(*) FROM schema_migrations")" = "$nmig"
check "... nothing refused, dropped or pending" grep -q "refused=0 dropped=0 pending=0" <<<"$out"
check "... no 'relation does not exist' on the way" \
	bash -c '! grep -q "does not exist" "$1"' _ "$T/q1.err"
v=$("$ZTCTL" audit verify --db "$(db fresh)" 2>&1)
check "ztctl audit verify: $v" test "$v" = "audit: 40 rows verified, chain intact"

# --- the database down at start, up later ---
pg_sql -c "CREATE DATABASE late" >/dev/null
pg_down
AUDITQ_TAG=late "$DRIVE" "$(db late)" "$T/q2" 0 post:20:endpoint.add drain:1500 stats \
	"wait-file:$T/q2.go" drain:60000 stats >"$T/q2.out" 2>"$T/q2.err" &
BG_PIDS+=($!)
q2=$!
wait_line "$T/q2.out" '^stats' 30
sed 's/^/# /' "$T/q2.out"
check "database down: the 20 events wait in the journal (none written, refused or dropped)" \
	grep -q "^stats posted=20 written=0 refused=0 dropped=0 pending=20" "$T/q2.out"
pg_up || bail "PostgreSQL starts again"
touch "$T/q2.go"
wait "$q2"
check "the driver exits cleanly" test $? = 0
sed -n '3,$s/^/# /p' "$T/q2.out"
check "database up: the migrations are applied on the first connection" \
	test "$(qdb late "SELECT count(*) FROM schema_migrations")" = "$nmig"
check "... then all 20 events are appended, in order" \
	test "$(qdb late "SELECT string_agg(subject, ',' ORDER BY seq) FROM audit_log")" = \
	"$(seq 0 19 | sed 's/^/late endpoint.add /' | paste -sd,)"
check "... and the chain verifies" "$ZTCTL" audit verify --db "$(db late)"

# The rest on a database migrated beforehand (by dbtool, not by the queue), so
# that each check below stands on its own.
DBTOOL=${DBTOOL:-$ROOT/build/tools/dbtool}
pg_sql -c "CREATE DATABASE main" >/dev/null
"$DBTOOL" migrate "$(db main)" >/dev/null || bail "dbtool migrate"

# --- the fuzzing report's journal ---
mkdir -p "$T/q3"
python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' \
	2000000007afe422010000000000000000000000000000000000000000000000200000007d1ae3b20000000000000000ffff0000000000000000000000000000 \
	>"$T/q3/audit.journal"
out=$("$DRIVE" "$(db main)" "$T/q3" 0 drain:20000 stats 2>"$T/q3.err")
rc=$?
echo "# ${out//$'\n'/; } (exit $rc)"
grep -E 'ERROR: AddressSanitizer|double free' "$T/q3.err" | head -n 3 | sed 's/^/# /'
check "a valid empty record then one claiming a 0xffff-byte field: the writer survives (exit 0)" \
	test $rc = 0
check "... the damaged record is in quarantine/, whole (32 bytes)" \
	test "$(cat "$T"/q3/quarantine/audit-*.damaged 2>/dev/null | wc -c)" = 32
check "... the empty one, which the server refuses (detail is not JSON), is in deadletter.jsonl" \
	deadletter "$T/q3" 'len(lines) == 1 and lines[0]["what"] == "audit_log" and lines[0]["sqlstate"] == "22P02" and lines[0]["event"]["kind"] == "" and lines[0]["event"]["time_unix_us"] == 1'
check "... and counted as refused, nothing pending" grep -q "refused=1 dropped=0 pending=0" <<<"$out"

# --- rows refused for their content: set aside with the reason ---
out=$(AUDITQ_TAG=dl "$DRIVE" "$(db main)" "$T/q4" 0 'raw:it.dl:first:{"n":1}' \
	'raw:it.dl:refused:{"n": not json' \
	'raw:policy.violation:bad alert:{"verdict":"denied","src":"not-an-address","dst":"198.18.1.2","dport":1,"protocol":"TCP"}' \
	'raw:it.dl:last:{"n":3}' drain:20000 stats 2>"$T/q4.err")
echo "# ${out//$'\n'/; }"
check "the records around the refused one are written, in order" \
	test "$(qdb main "SELECT string_agg(subject, ',' ORDER BY seq) FROM audit_log WHERE actor = 'dl'")" = "first,bad alert,last"
seq_bad=$(qdb main "SELECT seq FROM audit_log WHERE actor = 'dl' AND subject = 'bad alert'")
check "the refused row is in deadletter.jsonl: audit_log, SQLSTATE 22P02, its detail and reason" \
	deadletter "$T/q4" 'any(l["what"] == "audit_log" and l["sqlstate"] == "22P02" and l["event"]["subject"] == "refused" and l["event"]["detail"].startswith("{\"n\": not json") and "json" in l["reason"] and l["at"].endswith("Z") for l in lines)'
check "the violation whose alert is refused: audit row written, alert row in deadletter.jsonl with audit_seq $seq_bad" \
	deadletter "$T/q4" "len(lines) == 2 and any(l['what'] == 'alerts' and l['sqlstate'] == '22P02' and l.get('audit_seq') == ${seq_bad:-0} for l in lines)"

# --- a missing relation is retried, never a reason to drop ---
qdb main "ALTER TABLE alerts RENAME TO alerts_away"
AUDITQ_TAG=moved "$DRIVE" "$(db main)" "$T/q5" 0 post:5:policy.violation drain:3000 stats \
	"wait-file:$T/q5.go" drain:30000 stats >"$T/q5.out" 2>"$T/q5.err" &
BG_PIDS+=($!)
q5=$!
wait_line "$T/q5.out" '^stats' 30
sed 's/^/# /' "$T/q5.out"
check "alerts missing (42P01): the 5 violations stay pending, none written, refused or dropped" \
	grep -q "^stats posted=5 written=0 refused=0 dropped=0 pending=5" "$T/q5.out"
qdb main "ALTER TABLE alerts_away RENAME TO alerts"
touch "$T/q5.go"
wait "$q5"
check "alerts back: all 5 audit rows and their 5 alerts rows are written" \
	test "$(qdb main "SELECT count(*) FROM audit_log WHERE actor = 'moved'")|$(qdb main "SELECT count(*) FROM alerts WHERE detail->>'tag' = 'moved'")" = "5|5"
check "the retry was logged with the reason" grep -q 'audit_append_retrying.*42P01' "$T/q5.err"

# --- every cursor write fails after the journal drained ---
mkdir -p "$T/q6/audit.cursor.tmp" # open(O_CREAT) of the temp cursor fails: EISDIR
AUDITQ_TAG=cur "$DRIVE" "$(db main)" "$T/q6" 0 post:5000:policy.violation drain:120000 \
	post:100:block.add drain:60000 stats "wait-file:$T/q6.go" post:1:it.after drain:30000 stats \
	>"$T/q6.out" 2>"$T/q6.err" &
BG_PIDS+=($!)
q6=$!
wait_line "$T/q6.out" '^stats' 180
sed 's/^/# /' "$T/q6.out"
check "cursor writes failing: 5000 violations (1.3 MB of journal), then 100 block.add, all in audit_log" \
	test "$(qdb main "SELECT count(*) FILTER (WHERE kind = 'policy.violation') || '|' || count(*) FILTER (WHERE kind = 'block.add') FROM audit_log WHERE actor = 'cur'")" = "5000|100"
check "... the 100 blocks rows too" \
	test "$(qdb main "SELECT count(*) FROM blocks WHERE reason LIKE 'cur %'")" = 100
check "... the failure is logged once, with what happens" \
	test "$(grep -c 'audit_cursor_write.*retrying' "$T/q6.err")" = 1
rmdir "$T/q6/audit.cursor.tmp"
touch "$T/q6.go"
wait "$q6"
sed -n '4,$s/^/# /p' "$T/q6.out"
segs=$(ls "$T"/q6/audit-*.journal 2>/dev/null | wc -l)
check "once the cursor is written the segments before it go: $segs segment left" test "$segs" = 1
out=$(AUDITQ_TAG=cur "$DRIVE" "$(db main)" "$T/q6" 0 drain:5000 stats 2>>"$T/q6.err")
echo "# restart: $out"
check "a restart sends nothing twice (5101 rows, none written now)" \
	bash -c 'grep -q "written=0 .*pending=0" <<<"$1" && test "$2" = 5101' _ "$out" \
	"$(qdb main "SELECT count(*) FROM audit_log WHERE actor = 'cur'")"

# --- the journal's files are bounded while the writer drains ---
out=$(AUDITQ_TAG=rate "$DRIVE" "$(db main)" "$T/q7" 1048576 rate:30000:10000:policy.violation \
	drain:120000 stats 2>"$T/q7.err")
echo "# ${out//$'\n'/; }"
maxd=$(sed -n 's/^rate .*max_disk=\([0-9]*\).*/\1/p' <<<"$out")
acc=$(sed -n 's/^rate .*accepted=\([0-9]*\).*/\1/p' <<<"$out")
check "30000 violations at 10k/s, max_bytes 1 MiB: the journal's files held at most 1 MiB (${maxd:-?} bytes)" \
	test "${maxd:-99999999}" -le 1048576
check "... every accepted event (${acc:-?}) is in audit_log" \
	test "$(qdb main "SELECT count(*) FROM audit_log WHERE actor = 'rate'")" = "${acc:--1}"

v=$("$ZTCTL" audit verify --db "$(db main)" 2>&1)
check "ztctl audit verify over all of it: $v" grep -q "chain intact" <<<"$v"

echo "1..$TAP_N"
