#!/usr/bin/env bash
# The database path against a real PostgreSQL 15 started here (tools/pg.sh):
# migrations, the binary COPY writer, the spool through a database outage
# and a SIGKILL, hostile text, retention, the audit chain. TAP output.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tools/lab.sh
. tools/lab.sh # TAP helpers only (no lab_init: no namespaces needed)
# shellcheck source=tools/pg.sh
. tools/pg.sh

DBTOOL=${DBTOOL:-$ROOT/build/tools/dbtool} # DBTOOL=... runs another build (e.g. ASan)
if [ ! -x "$DBTOOL" ]; then
	make -s --no-print-directory build/tools/dbtool >&2 || {
		echo "not ok 1 - build dbtool"
		exit 1
	}
fi

T=$(mktemp -d /tmp/ztagent-dbtest.XXXXXX)
BG_PIDS=()
# The server's processes stopped with SIGSTOP (a frozen database), resumed
# by pg_thaw and, whatever happens, by cleanup.
PG_FROZEN=
pg_freeze() {
	PG_FROZEN="$PG_PID $(ps -o pid= --ppid "$PG_PID" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	kill -STOP $PG_FROZEN
}
pg_thaw() {
	# shellcheck disable=SC2086
	[ -n "$PG_FROZEN" ] && kill -CONT $PG_FROZEN 2>/dev/null
	PG_FROZEN=
}
cleanup() {
	local rc=$?
	set +e
	pg_thaw
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
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
C=$PG_CONN
SPOOL=$T/spool

# --- schema ---
out1=$("$DBTOOL" migrate "$C" 2>&1)
out2=$("$DBTOOL" migrate "$C" 2>&1)
nmig=$(ls deploy/sql/[0-9][0-9][0-9]_*.sql | wc -l)
check "migrations apply once ($out1), then nothing ($out2)" \
	test "$out1" = "migrate: applied $nmig" -a "$out2" = "migrate: applied 0"
want=""
for f in deploy/sql/[0-9][0-9][0-9]_*.sql; do
	b=$(basename "$f" .sql)
	want+="$((10#${b%%_*}))|$b|$(sha256sum "$f" | cut -d' ' -f1)"$'\n'
done
got=$(pg_sql -c "SELECT version, name, sha256 FROM schema_migrations ORDER BY version")
check "schema_migrations lists each file with its sha256" test "$got" = "${want%$'\n'}"
check "one applied_at for both runs (second run applied nothing)" \
	test "$(pg_sql -c 'SELECT count(DISTINCT applied_at) FROM schema_migrations')" = 1

# The specification's columns, as information_schema describes them:
# name|type|nullable|default (compliance queries and SIEMs rely on these).
spec_cols="id|uuid|NO|gen_random_uuid()
source_ip|inet|NO|
dest_ip|inet|NO|
source_port|integer|NO|
dest_port|integer|NO|
protocol|smallint|NO|
bytes_sent|bigint|NO|0
bytes_received|bigint|NO|0
packet_count|integer|NO|0
start_time|timestamp with time zone|NO|
end_time|timestamp with time zone|YES|
duration_ms|integer|NO|0
flags|text[]|YES|
anomaly_score|real|YES|
threat_type|character varying(50)|YES|
blocked|boolean|YES|false"
spec_names=$(cut -d'|' -f1 <<<"$spec_cols" | sed "s/.*/'&'/" | paste -sd,)
cols=$(pg_sql -c "SELECT column_name || '|' ||
		CASE WHEN data_type = 'ARRAY' THEN ltrim(udt_name, '_') || '[]'
		     WHEN character_maximum_length IS NOT NULL THEN data_type || '(' || character_maximum_length || ')'
		     ELSE data_type END || '|' || is_nullable || '|' || coalesce(column_default, '')
	FROM information_schema.columns
	WHERE table_schema = 'public' AND table_name = 'network_flows' AND column_name IN ($spec_names)
	ORDER BY array_position(ARRAY[$spec_names]::text[], column_name::text)")
[ "$cols" != "$spec_cols" ] && diff <(echo "$spec_cols") <(echo "$cols") | sed 's/^/# /'
check "network_flows: the specified columns with their types, nullability and defaults" \
	test "$cols" = "$spec_cols"
meta="created_at timestamp with time zone, packets_sent bigint, packets_received bigint, verdict text, drop_reason text, policy text, source_identity bigint, dest_identity bigint, source_workload text, dest_workload text, node text, interface text, direction text, flow_kind text, aggregate_count bigint, protocol_name text, mtls boolean, source_spiffe_id text, dest_spiffe_id text"
check "the metadata columns beside them, protocol_name generated from protocol" test \
	"$(pg_sql -c "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'network_flows' AND column_name NOT IN ($spec_names)")|$(pg_sql -c "SELECT generation_expression FROM information_schema.columns WHERE table_name = 'network_flows' AND column_name = 'protocol_name'")" \
	= "$meta|zt_protocol_name(protocol)"
check "WHERE protocol = 6 is a valid query; zt_protocol_name(6) = tcp" \
	test "$(pg_sql -c "SELECT count(*) FROM network_flows WHERE protocol = 6")|$(pg_sql -c "SELECT zt_protocol_name(6::smallint)")" = "0|tcp"
check "range-partitioned on start_time, primary key (id, start_time)" test \
	"$(pg_sql -c "SELECT pg_get_partkeydef('network_flows'::regclass) || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'network_flows'::regclass AND contype = 'p'")" \
	= "RANGE (start_time) PRIMARY KEY (id, start_time)"
months=$(pg_sql -c "SELECT string_agg(to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g), 'YYYYMM'), ' ' ORDER BY g) FROM generate_series(0, 2) g")
have=0
for m in $months; do
	[ "$(pg_sql -c "SELECT to_regclass('network_flows_p$m') IS NOT NULL")" = t ] && have=$((have + 1))
done
check "partitions for this month and the next two exist ($months)" test $have = 3
idx=$(pg_sql -c "SELECT string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY 1) FROM pg_index WHERE indrelid = 'network_flows'::regclass AND NOT indisprimary")
check "investigator indexes: (source_ip,start_time) (dest_ip,start_time) (verdict,start_time)" \
	bash -c "grep -q 'btree (source_ip, start_time)' <<<'$idx' && grep -q 'btree (dest_ip, start_time)' <<<'$idx' && grep -q 'btree (verdict, start_time)' <<<'$idx'"
check "partial index (threat_type, start_time) WHERE threat_type IS NOT NULL" \
	grep -q 'btree (threat_type, start_time) WHERE (threat_type IS NOT NULL)' <<<"$idx"
check "tables alerts, blocks, audit_log, schema_migrations" test \
	"$(pg_sql -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('alerts', 'blocks', 'audit_log', 'schema_migrations')")" = 4

# --- connection defaults: a silent server must not hold a call forever ---
ci=$("$DBTOOL" conninfo "$C" 2>&1)
check "connections get timeouts by default ($ci)" test "$ci" = \
	"connect_timeout=10 keepalives=1 keepalives_idle=30 keepalives_interval=10 keepalives_count=3 tcp_user_timeout=30000 statement_timeout=1min work_mem=4MB"
ci=$("$DBTOOL" conninfo "$C connect_timeout=3 keepalives_idle=5 tcp_user_timeout=7000 options='-c statement_timeout=5s'" 2>&1)
check "the URL's own settings win ($ci)" test "$ci" = \
	"connect_timeout=3 keepalives=1 keepalives_idle=5 keepalives_interval=10 keepalives_count=3 tcp_user_timeout=7000 statement_timeout=5s work_mem=4MB"
ci=$("$DBTOOL" conninfo "postgresql:///postgres?host=$PG_DIR&port=$PG_PORT&user=postgres&options=-c%20work_mem%3D8MB" 2>&1)
check "a URL with other options keeps them and gets statement_timeout ($ci)" \
	grep -q 'connect_timeout=10 .*statement_timeout=1min work_mem=8MB$' <<<"$ci"
pg_freeze
t0=$(date +%s%N)
ci=$(timeout 30 "$DBTOOL" conninfo "$C connect_timeout=2" 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
pg_thaw
check "connecting to a frozen server gives up after connect_timeout (2 s: ${ms} ms, exit $rc: $ci)" \
	bash -c "test $rc = 1 && test $ms -lt 5000 && grep -q 'connect_timeout' <<<'$ci'"

# Two agents starting together on an empty database: each migration once.
pg_sql -c "CREATE DATABASE zt2" && pg_sql -c "CREATE DATABASE zt3"
C2="host=$PG_DIR port=$PG_PORT user=postgres dbname=zt2"
"$DBTOOL" migrate "$C2" >"$T/m1.out" 2>&1 &
m1=$!
"$DBTOOL" migrate "$C2" >"$T/m2.out" 2>&1
m2rc=$?
wait $m1
m1rc=$?
check "concurrent migrate: both succeed, one applies $nmig, the other 0 ($(cat "$T/m1.out") / $(cat "$T/m2.out"))" \
	bash -c "test $m1rc = 0 -a $m2rc = 0 && sort '$T/m1.out' '$T/m2.out' | tr '\n' ' ' | grep -qx 'migrate: applied 0 migrate: applied $nmig '"
# From the directory instead of the binary: same checksums, so nothing to do.
check "migrations from deploy/sql match the embedded ones (applied 0)" \
	test "$("$DBTOOL" migrate "$C2" deploy/sql 2>&1)" = "migrate: applied 0"
# A migration edited after it was applied is refused, naming it; nothing changes.
mkdir -p "$T/sql"
cp deploy/sql/*.sql "$T/sql/"
echo "-- edited" >>"$T/sql/001_init.sql"
merr=$("$DBTOOL" migrate "$C2" "$T/sql" 2>&1)
check "edited migration refused: $merr" grep -q '001_init.*changed after it was applied' <<<"$merr"
# A new migration in the directory is applied on top, once.
# After the highest number (a branch may hold 007 without 006).
mlast=$(ls deploy/sql/[0-9][0-9][0-9]_*.sql | sed 's|.*/||' | sort | tail -n 1)
printf -v mnext '%03d' $((10#${mlast%%_*} + 1))
printf -v mbroken '%03d' $((10#${mlast%%_*} + 2))
printf 'CREATE TABLE zt_test_extra (x int);\n' >"$T/sql/${mnext}_extra.sql"
cp deploy/sql/001_init.sql "$T/sql/001_init.sql"
check "a new migration $mnext is applied once" \
	test "$("$DBTOOL" migrate "$C2" "$T/sql" 2>&1),$("$DBTOOL" migrate "$C2" "$T/sql" 2>&1)" = "migrate: applied 1,migrate: applied 0"
# A migration that fails leaves nothing behind (one transaction).
C3="host=$PG_DIR port=$PG_PORT user=postgres dbname=zt3"
printf 'CREATE TABLE broken (;\n' >"$T/sql/${mbroken}_broken.sql"
merr=$("$DBTOOL" migrate "$C3" "$T/sql" 2>&1)
check "a failing migration names itself and rolls back everything: $merr" \
	bash -c "grep -q 'applying ${mbroken}_broken' <<<'$merr' && test \"\$(psql '$C3' -XAtqc \"SELECT to_regclass('network_flows') IS NULL AND to_regclass('schema_migrations') IS NULL\")\" = t"

# --- writing ---
"$DBTOOL" write "$C" "$SPOOL" 5000 "$T/main.exp" >"$T/w1.out" 2>"$T/w1.err"
check "5000 records submitted -> exactly 5000 rows with the right values" \
	"$DBTOOL" check "$C" "$T/main.exp"
"$DBTOOL" resubmit "$C" "$SPOOL" "$T/main.exp" >"$T/re.out" 2>&1
check "submitting the same 5000 records again inserts none (written=0 duplicate=5000)" \
	grep -q 'written=0 duplicate=5000' "$T/re.out"
check "... and the table still holds each once" "$DBTOOL" check "$C" "$T/main.exp"

# --- latency: the writer's timer alone (no drain) brings a record in within 2 s ---
before=$(pg_sql -c "SELECT count(*) FROM network_flows")
"$DBTOOL" write "$C" "$SPOOL" 1 "$T/main.exp" --first 90000 --hold >"$T/wl.out" 2>"$T/wl.err" &
W=$!
BG_PIDS+=("$W")
for _ in $(seq 1 100); do
	grep -q submitted "$T/wl.out" && break
	sleep 0.05
done
t0=$(date +%s%N)
lat=
for _ in $(seq 1 60); do
	if [ "$(pg_sql -c "SELECT count(*) FROM network_flows")" != "$before" ]; then
		lat=$((($(date +%s%N) - t0) / 1000000))
		break
	fi
	sleep 0.05
done
kill -TERM "$W"
wait "$W" 2>/dev/null
check "one record reaches the database within 2 s of submit without a flush (${lat:-never} ms)" \
	test -n "$lat" -a "${lat:-9999}" -lt 2000
check "... once (5001)" "$DBTOOL" check "$C" "$T/main.exp"

# --- the database goes away mid-run and comes back ---
"$DBTOOL" write "$C" "$SPOOL" 6000 "$T/main.exp" --first 100000 --rate 1500 --wait-empty 60 \
	>"$T/w2.out" 2>"$T/w2.err" &
W=$!
BG_PIDS+=("$W")
sleep 1.2
pg_down
sleep 2.5
nseg=$(ls "$SPOOL" | grep -c '^seg-')
check "database down: records keep coming and go to the spool ($nseg segments)" test "$nseg" -gt 0
pg_up
wait "$W"
wrc=$?
check "writer finished after the database came back (exit $wrc)" test $wrc = 0
check "spool empty after replay" test "$(ls "$SPOOL" | grep -c '^seg-')" = 0
check "outage logged once ($(grep -c 'event=dbw_write_failed' "$T/w2.err") dbw_write_failed), reconnect logged" \
	bash -c "test \$(grep -c 'event=dbw_write_failed' '$T/w2.err') = 1 && test \$(grep -c 'event=dbw_db_unavailable' '$T/w2.err') -le 1 && grep -q 'event=dbw_connected' '$T/w2.err'"
check "after the outage every record is there exactly once (11001)" \
	"$DBTOOL" check "$C" "$T/main.exp"
sed -n 's/^/# /p' "$T/w2.out"

# --- SIGKILL with records in the spool ---
pg_down
"$DBTOOL" write "$C" "$SPOOL" 3000 "$T/main.exp" --first 200000 --linger >"$T/w3.out" 2>"$T/w3.err" &
W=$!
BG_PIDS+=("$W")
for _ in $(seq 1 200); do
	grep -q lingering "$T/w3.out" && break
	sleep 0.1
done
nseg=$(ls "$SPOOL" | grep -c '^seg-')
check "database down: 3000 records in the spool ($nseg segments) before SIGKILL" \
	grep -q 'spool_records_written=3000 ' "$T/w3.out"
kill -KILL "$W"
wait "$W" 2>/dev/null
# A segment write cut short by the kill would leave a temp file: one is planted.
head -c 100 "$SPOOL/$(ls "$SPOOL" | grep '^seg-' | head -n 1)" >"$SPOOL/.tmp-seg-99999999999999999999.zsp"
pg_up
"$DBTOOL" write "$C" "$SPOOL" 0 "$T/empty.exp" --wait-empty 60 >"$T/w4.out" 2>"$T/w4.err"
check "restarted writer replays the spool (spool empty)" test "$(ls "$SPOOL" | grep -c '^seg-')" = 0
check "partial temp segment reported and removed, not read" \
	bash -c "grep -q 'event=dbw_spool_partial_removed' '$T/w4.err' && ! ls -A '$SPOOL' | grep -q '^.tmp-'"
check "after SIGKILL + restart: every record exactly once (14001)" \
	"$DBTOOL" check "$C" "$T/main.exp"

# --- a corrupt segment in the spool: reported, moved aside, the rest replayed ---
pg_down
"$DBTOOL" write "$C" "$SPOOL" 10 "$T/lost.exp" --first 250000 >/dev/null 2>&1
"$DBTOOL" write "$C" "$SPOOL" 10 "$T/main.exp" --first 260000 >/dev/null 2>&1
seg=$(ls "$SPOOL" | grep '^seg-' | head -n 1)
printf '\x00\x00' | dd of="$SPOOL/$seg" bs=1 seek=40 conv=notrunc status=none
pg_up
"$DBTOOL" write "$C" "$SPOOL" 0 "$T/empty.exp" --wait-empty 30 >"$T/wc.out" 2>"$T/wc.err"
check "corrupt segment reported (dbw_spool_corrupt naming it) and moved aside as bad-$seg" \
	bash -c "grep -q 'event=dbw_spool_corrupt.*$seg.*moved aside' '$T/wc.err' && test -f '$SPOOL/bad-$seg'"
check "... the other segment replayed: every expected record once (14011)" \
	"$DBTOOL" check "$C" "$T/main.exp"
rm -f "$SPOOL/bad-$seg"

# --- spool bound ---
pg_down
"$DBTOOL" write "$C" "$T/spool-small" 20000 "$T/dropped.exp" --spool-max 300000 >"$T/w5.out" 2>"$T/w5.err"
check "spool full: new records dropped, counted in stats and logged" \
	bash -c "grep -q 'spool_dropped=[1-9]' '$T/w5.out' && grep -q 'event=dbw_spool_drop' '$T/w5.err'"
sed -n 's/^/# /p' "$T/w5.out"
check "spool stays within its bound ($(du -sb "$T/spool-small" | cut -f1) bytes on disk incl. directory, bound 300000)" \
	test "$(cat "$T"/spool-small/*.zsp 2>/dev/null | wc -c)" -le 300000
rm -rf "$T/spool-small"
pg_up

# --- hostile text ---
"$DBTOOL" write "$C" "$SPOOL" 400 "$T/main.exp" --first 300000 --hostile >"$T/w6.out" 2>"$T/w6.err"
check "hostile text (quotes, newlines, backslashes, \\N, 10 KB, non-UTF-8, CJK) stored exactly" \
	"$DBTOOL" check "$C" "$T/main.exp"
check "non-UTF-8 bytes stored as \\xNN text" test \
	"$(pg_sql -c "SELECT count(*) > 0 FROM network_flows WHERE threat_type = E'bad\\\\xff\\\\xfe utf8 \\\\xc3('")" = t
check "10 KB text cut to the field size at a character boundary" test \
	"$(pg_sql -c "SELECT max(octet_length(policy)) || ' ' || max(octet_length(source_workload)) FROM network_flows")" = "255 254"
check "SQL in text stays text" test \
	"$(pg_sql -c "SELECT count(*) > 0 FROM network_flows WHERE threat_type = 'it''s \"quoted\" '', DROP TABLE network_flows;--'")" = t

# --- retention ---
"$DBTOOL" write "$C" "$SPOOL" 50 "$T/old.exp" --first 400000 --months-ago 14 >/dev/null 2>"$T/w7.err"
oldm=$(pg_sql -c "SELECT to_char(min(start_time) AT TIME ZONE 'UTC', 'YYYYMM') FROM network_flows")
check "a record 14 months old gets its partition on demand (network_flows_p$oldm)" \
	test "$(pg_sql -c "SELECT to_regclass('network_flows_p$oldm') IS NOT NULL")" = t
mout=$("$DBTOOL" maintain "$C" 12)
gone() {
	grep -q "network_flows_p$oldm" <<<"$mout" &&
		[ "$(pg_sql -c "SELECT to_regclass('network_flows_p$oldm') IS NULL")" = t ] &&
		[ "$(pg_sql -c "SELECT count(*) FROM network_flows WHERE start_time < now() - interval '13 months'")" = 0 ]
}
check "retention 12 months drops it ($mout)" gone
check "recent rows untouched by retention (14011 + 400)" "$DBTOOL" check "$C" "$T/main.exp"

# --- audit ---
"$DBTOOL" audit-append "$C" 20 >/dev/null
v=$("$DBTOOL" audit-verify "$C")
check "audit verify: 20 rows, chain intact, exit 0 ($v)" \
	test "$v" = "audit: 20 rows verified, chain intact"
refused() {
	local e
	e=$(pg_sql -c "$1" 2>&1) && return 1
	echo "# $1: ${e//$'\n'/ }"
	grep -q 'append-only' <<<"$e"
}
check "audit_log refuses UPDATE in normal use" refused "UPDATE audit_log SET actor = 'x' WHERE seq = 3"
check "audit_log refuses DELETE in normal use" refused "DELETE FROM audit_log WHERE seq = 3"
check "audit_log refuses TRUNCATE in normal use" refused "TRUNCATE audit_log"
pg_sql -c "CREATE TABLE audit_backup AS SELECT * FROM audit_log"
restore() {
	pg_sql -c "SET session_replication_role = replica; DELETE FROM audit_log;
		INSERT INTO audit_log SELECT * FROM audit_backup"
}
verify_says() {
	local want=$1 out rc
	out=$("$DBTOOL" audit-verify "$C")
	rc=$?
	echo "# $(head -n 1 <<<"$out") (exit $rc)"
	[ $rc = 1 ] && [ "$(head -n 1 <<<"$out")" = "$want" ]
}
pg_sql -c "SET session_replication_role = replica; UPDATE audit_log SET detail = '{\"ttl\": 0}' WHERE seq = 7"
check "UPDATE (superuser, trigger off) detected: row 7 changed, exit 1" \
	verify_says "audit: row 7 changed (hash mismatch)"
restore
check "restored: intact again" "$DBTOOL" audit-verify "$C"
pg_sql -c "SET session_replication_role = replica; DELETE FROM audit_log WHERE seq = 12"
check "DELETE detected: row 12 deleted, exit 1" \
	verify_says "audit: row 12 deleted (gap in seq before 13)"
restore
pg_sql -c "INSERT INTO audit_log SELECT 21, now(), 'block_del', 'intruder', 'x', '{}', decode(repeat('ab', 32), 'hex'), sha256('forged')"
check "INSERT detected: row 21 inserted, exit 1" \
	verify_says "audit: row 21 inserted (chain break: prev_hash is not the hash of row 20)"
"$DBTOOL" audit-verify >/dev/null 2>&1
check "audit verify without a database: exit 2" test $? = 2

echo "1..$TAP_N"
