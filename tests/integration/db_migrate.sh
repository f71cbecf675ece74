#!/usr/bin/env bash
# Migration 003 on a database filled by the schema before it: a real
# PostgreSQL 15 (tools/pg.sh) gets only migrations 001-002, rows in the
# format the writer used then (protocol text, NULL ports, BIGINT counts,
# long threat types) over several monthly partitions, and a spool segment
# written by the encoder of then (tests/data/spool-v1.zsp). Then the
# agent's migrations run: every row is kept once and converted, the table
# is the one a new database gets, new records land right, and the old
# spool replays into the new schema. TAP output.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
# shellcheck source=tools/lab.sh
. tools/lab.sh # TAP helpers only
# shellcheck source=tools/pg.sh
. tools/pg.sh

DBTOOL=${DBTOOL:-$ROOT/build/tools/dbtool}
if [ ! -x "$DBTOOL" ]; then
	make -s --no-print-directory build/tools/dbtool >&2 || {
		echo "not ok 1 - build dbtool"
		exit 1
	}
fi

T=$(mktemp -d /tmp/ztagent-dbmig.XXXXXX)
cleanup() {
	local rc=$?
	set +e
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
for db in old fresh bad; do
	pg_sql -c "CREATE DATABASE $db" >/dev/null
done
OLD="host=$PG_DIR port=$PG_PORT user=postgres dbname=old"
FRESH="host=$PG_DIR port=$PG_PORT user=postgres dbname=fresh"
BAD="host=$PG_DIR port=$PG_PORT user=postgres dbname=bad"
q() { psql "$1" -X -q -A -t -v ON_ERROR_STOP=1 -c "$2"; }

# --- the schema of before: migrations 001 and 002 only ---
mkdir -p "$T/sql-old"
cp deploy/sql/001_init.sql deploy/sql/002_partitions.sql "$T/sql-old/"
check "migrations 001-002 alone apply to an empty database" \
	test "$("$DBTOOL" migrate "$OLD" "$T/sql-old" 2>&1)" = "migrate: applied 2"
check "... where protocol is still text" \
	test "$(q "$OLD" "SELECT data_type FROM information_schema.columns WHERE table_name = 'network_flows' AND column_name = 'protocol'")" = text

# Rows as the writer of then wrote them: protocol names (or the number, or
# 'any' for a folded drop aggregate), NULL ports without ports, counts past
# INT32_MAX, threat types past 50 characters, in four monthly partitions.
cat >"$T/fill.sql" <<'EOF'
SELECT zt_flows_ensure_partitions(now() - interval '3 months', now());
INSERT INTO network_flows (id, source_ip, dest_ip, source_port, dest_port, protocol,
	bytes_sent, bytes_received, packet_count, duration_ms, flags, start_time, end_time,
	anomaly_score, threat_type, blocked, created_at, packets_sent, packets_received,
	verdict, drop_reason, policy, source_identity, dest_identity, source_workload,
	dest_workload, node, interface, direction, flow_kind, aggregate_count)
SELECT gen_random_uuid(),
	('198.18.' || (g / 250 % 250) || '.' || (g % 250 + 1))::inet,
	CASE WHEN g % 4 = 3 THEN '2001:db8::' || to_hex(g) ELSE '198.19.0.' || (g % 200 + 1) END::inet,
	CASE WHEN g % 9 IN (2, 3, 6) THEN NULL ELSE 1024 + g % 60000 END,
	CASE WHEN g % 9 IN (2, 3, 6) THEN NULL ELSE (ARRAY[443, 53, 0, 8080])[g % 4 + 1] END,
	(ARRAY['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', '47', 'any', 'tcp', 'udp'])[g % 9 + 1],
	g * 1500, g * 700 + (CASE WHEN g % 13 = 0 THEN 1::bigint << 40 ELSE 0 END),
	CASE WHEN g % 101 = 0 THEN 3000000000 + g ELSE g % 1000 + 2 END,
	CASE WHEN g % 103 = 0 THEN 2500000000 ELSE g % 60000 END,
	CASE WHEN g % 2 = 0 THEN '{SYN,ACK,FIN}'::text[] ELSE '{}'::text[] END,
	date_trunc('month', now()) - make_interval(months => g % 4) + make_interval(secs => g),
	date_trunc('month', now()) - make_interval(months => g % 4) + make_interval(secs => g + 2),
	CASE WHEN g % 3 = 0 THEN (g % 8) / 8.0 END,
	CASE WHEN g % 50 = 0 THEN repeat('port-scan/', 7) WHEN g % 10 = 0 THEN 'port-scan' END,
	g % 5 = 0, now() - make_interval(secs => g), g % 1000 + 1, g % 1000 + 1,
	(ARRAY['allowed', 'denied', 'audit', 'dropped'])[g % 4 + 1],
	CASE WHEN g % 4 = 1 THEN 'policy-deny' END, 'ns/pol/rule-' || g % 7,
	CASE WHEN g % 3 <> 1 THEN g % 5000 END, CASE WHEN g % 3 <> 1 THEN 7 END,
	'default/web-' || g % 40, 'default/api-0', 'old-agent', 'v-web' || g % 3,
	CASE WHEN g % 2 = 0 THEN 'egress' ELSE 'ingress' END,
	CASE WHEN g % 9 = 6 THEN 'xdp_drop_aggregate' ELSE 'flow' END,
	CASE WHEN g % 9 = 6 THEN g % 500 + 2 ELSE 1 END
FROM generate_series(1, 20000) g;
-- What the conversion must give, kept beside the table.
CREATE TABLE before_003 AS SELECT * FROM network_flows;
EOF
q "$OLD" "$(cat "$T/fill.sql")" >/dev/null
nold=$(q "$OLD" "SELECT count(*) FROM network_flows")
nparts=$(q "$OLD" "SELECT count(DISTINCT tableoid) FROM network_flows")
check "20000 rows in the old format over $nparts monthly partitions" test "$nold" = 20000 -a "$nparts" -ge 4

# --- the agent's migrations ---
t0=$(date +%s%N)
out=$("$DBTOOL" migrate "$OLD" 2>&1)
echo "# migration 003 over 20000 rows: $((($(date +%s%N) - t0) / 1000000)) ms"
NLATER=$(($(ls deploy/sql/[0-9][0-9][0-9]_*.sql | wc -l) - 2))
check "the agent applies migration 003 and the later ones only ($out)" test "$out" = "migrate: applied $NLATER"
check "schema_migrations lists every migration with its sha256" \
	test "$(q "$OLD" "SELECT string_agg(name || ':' || sha256, ' ' ORDER BY version) FROM schema_migrations")" = \
	"$(for f in deploy/sql/[0-9][0-9][0-9]_*.sql; do printf '%s:%s ' "$(basename "$f" .sql)" "$(sha256sum "$f" | cut -d' ' -f1)"; done | sed 's/ $//')"
check "every row kept, none twice (20000 rows, 20000 ids)" \
	test "$(q "$OLD" "SELECT count(*) || ' ' || count(DISTINCT id) FROM network_flows")" = "20000 20000"
check "each row is still in its month's partition" \
	test "$(q "$OLD" "SELECT count(*) FROM network_flows f WHERE tableoid::regclass::text <> 'network_flows_p' || to_char(start_time AT TIME ZONE 'UTC', 'YYYYMM')")" = 0
# Row by row against the copy taken before: converted where the
# specification changed the type, equal everywhere else.
mism=$(q "$OLD" "SELECT count(*) FROM before_003 b LEFT JOIN network_flows f USING (id, start_time)
	WHERE f.id IS NULL
	   OR f.protocol IS DISTINCT FROM (CASE b.protocol WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 WHEN 'icmp' THEN 1
		WHEN 'icmpv6' THEN 58 WHEN 'sctp' THEN 132 WHEN 'any' THEN 255 ELSE b.protocol::int END)
	   OR f.protocol_name IS DISTINCT FROM b.protocol
	   OR f.source_port IS DISTINCT FROM coalesce(b.source_port, 0)
	   OR f.dest_port IS DISTINCT FROM coalesce(b.dest_port, 0)
	   OR f.packet_count IS DISTINCT FROM least(b.packet_count, 2147483647)
	   OR f.duration_ms IS DISTINCT FROM least(b.duration_ms, 2147483647)
	   OR f.threat_type IS DISTINCT FROM left(b.threat_type, 50)
	   OR (f.source_ip, f.dest_ip, f.bytes_sent, f.bytes_received, f.flags, f.end_time,
	       f.anomaly_score, f.blocked, f.created_at, f.packets_sent, f.packets_received,
	       f.verdict, f.drop_reason, f.policy, f.source_identity, f.dest_identity,
	       f.source_workload, f.dest_workload, f.node, f.interface, f.direction, f.flow_kind,
	       f.aggregate_count)
	      IS DISTINCT FROM
	      (b.source_ip, b.dest_ip, b.bytes_sent, b.bytes_received, b.flags, b.end_time,
	       b.anomaly_score, b.blocked, b.created_at, b.packets_sent, b.packets_received,
	       b.verdict, b.drop_reason, b.policy, b.source_identity, b.dest_identity,
	       b.source_workload, b.dest_workload, b.node, b.interface, b.direction, b.flow_kind,
	       b.aggregate_count)")
check "every row converted: protocol text -> number, NULL ports -> 0, counts saturated, threat_type cut; all else equal ($mism differ)" \
	test "$mism" = 0
check "the conversion had work to do (NULL ports, big counts, long threat types were there)" \
	test "$(q "$OLD" "SELECT count(*) FILTER (WHERE source_port IS NULL) > 0 AND count(*) FILTER (WHERE packet_count > 2147483647) > 0 AND count(*) FILTER (WHERE duration_ms > 2147483647) > 0 AND count(*) FILTER (WHERE length(threat_type) > 50) > 0 FROM before_003")" = t
check "WHERE protocol = 6 works and finds the tcp rows" \
	test "$(q "$OLD" "SELECT count(*) FROM network_flows WHERE protocol = 6")" = \
	"$(q "$OLD" "SELECT count(*) FROM before_003 WHERE protocol = 'tcp'")"

# The migrated table is the one a new database gets: columns (name, type,
# nullability, default, generation), constraints, indexes.
"$DBTOOL" migrate "$FRESH" >/dev/null 2>&1
shape() {
	q "$1" "SELECT string_agg(column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '') || ' ' || is_nullable || ' ' || coalesce(column_default, '-') || ' ' || coalesce(generation_expression, '-'), E'\n' ORDER BY column_name) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'network_flows'"
	q "$1" "SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), E'\n' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'network_flows'::regclass"
	q "$1" "SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'network_flows'"
}
shape "$OLD" >"$T/shape.old"
shape "$FRESH" >"$T/shape.fresh"
diff "$T/shape.fresh" "$T/shape.old" | sed 's/^/# /'
check "the migrated network_flows has the columns, constraints and indexes of a new database" \
	cmp -s "$T/shape.fresh" "$T/shape.old"

# --- the writer into the converted table ---
"$DBTOOL" write "$OLD" "$T/spool" 3000 "$T/new.exp" >"$T/w1.out" 2>"$T/w1.err"
check "3000 records written by the agent's writer land, each value as the new types say" \
	"$DBTOOL" check "$OLD" "$T/new.exp" --where "node <> 'old-agent' AND node <> 'fixture-node'"
check "old and new rows side by side: 23000, no id twice" \
	test "$(q "$OLD" "SELECT count(*) || ' ' || count(DISTINCT id) FROM network_flows")" = "23000 23000"

# --- a spool segment written before 003 (format 1: the protocol as text) ---
mkdir -p "$T/spool"
cp tests/data/spool-v1.zsp "$T/spool/seg-00000000000000000001.zsp"
"$DBTOOL" write "$OLD" "$T/spool" 0 "$T/empty.exp" --wait-empty 30 >"$T/w2.out" 2>"$T/w2.err"
check "the old segment is replayed and removed" \
	test -z "$(ls "$T/spool" | grep -E '^(seg|bad-seg|rejected)-')"
FIX="node = 'fixture-node'"
check "its 8 records are rows, protocols as numbers (tcp udp icmp icmpv6 sctp 47 any tcp)" \
	test "$(q "$OLD" "SELECT string_agg(protocol::text, ' ' ORDER BY id) FROM network_flows WHERE $FIX")" = "6 17 1 58 132 47 255 6"
check "... names for people: tcp udp icmp icmpv6 sctp 47 any tcp" \
	test "$(q "$OLD" "SELECT string_agg(protocol_name, ' ' ORDER BY id) FROM network_flows WHERE $FIX")" = "tcp udp icmp icmpv6 sctp 47 any tcp"
check "... ports 0 where it had none, its own elsewhere" \
	test "$(q "$OLD" "SELECT string_agg(source_port || ':' || dest_port, ' ' ORDER BY id) FROM network_flows WHERE $FIX")" = "40001:8080 5353:53 0:0 0:0 3868:3868 0:0 0:0 1:443"
check "... packet_count and duration_ms saturated, packets_sent exact" \
	test "$(q "$OLD" "SELECT packet_count || ' ' || duration_ms || ' ' || packets_sent FROM network_flows WHERE $FIX AND id = '01900000-0000-7000-8000-000000000008'")" = "2147483647 2147483647 3000000000"
check "... threat types and the drop aggregate as they were" \
	test "$(q "$OLD" "SELECT string_agg(coalesce(threat_type, '-') || '/' || flow_kind || '/' || aggregate_count, ' ' ORDER BY id) FROM network_flows WHERE $FIX")" = \
	'-/flow/1 dns-tunnel/flow/1 -/flow/1 -/flow/1 -/flow/1 bad\xff utf8/flow/1 -/xdp_drop_aggregate/321 -/flow/1'

# --- a row the conversion cannot read stops it, named, and nothing changes ---
"$DBTOOL" migrate "$BAD" "$T/sql-old" >/dev/null 2>&1
q "$BAD" "INSERT INTO network_flows (id, source_ip, dest_ip, protocol, start_time, end_time, node)
	VALUES ('01900000-0000-7000-8000-0000000000aa', '198.18.0.1', '198.18.0.2', 'gre', now(), now(), 'n'),
	       (gen_random_uuid(), '198.18.0.1', '198.18.0.2', 'tcp', now(), now(), 'n')" >/dev/null
err=$("$DBTOOL" migrate "$BAD" 2>&1)
echo "# $err"
check "a protocol text that is neither a name nor a number: migration refused, the row named" \
	grep -q "applying 003_flow_columns.*01900000-0000-7000-8000-0000000000aa.*'gre'" <<<"$err"
check "... and nothing changed (protocol text, 2 migrations, 2 rows)" \
	test "$(q "$BAD" "SELECT data_type FROM information_schema.columns WHERE table_name = 'network_flows' AND column_name = 'protocol'") $(q "$BAD" "SELECT count(*) FROM schema_migrations") $(q "$BAD" "SELECT count(*) FROM network_flows")" = "text 2 2"
q "$BAD" "UPDATE network_flows SET protocol = '47' WHERE protocol = 'gre'" >/dev/null
check "once the row is corrected the migration applies" \
	test "$("$DBTOOL" migrate "$BAD" 2>&1)" = "migrate: applied $NLATER"

echo "1..$TAP_N"
