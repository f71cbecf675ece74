#!/usr/bin/env bash
# Integration: the agent's audit trail on a database nobody prepared.
#  1. The agent starts against an empty database (no --migrate-only first):
#     every event of its first seconds (config.load, endpoint.add,
#     block.add, block.del, policy.apply) is in audit_log, nothing refused
#     or dropped, no "relation does not exist", and the chain verifies.
#  2. The agent starts while its database is down: the events wait in the
#     journal; when the database comes up the migrations are applied on the
#     first connection and the events are appended, chain intact.
# Real agent in the namespace lab, real PostgreSQL (tools/pg.sh). TAP.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

lab_init afdb
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts (initdb in a temporary directory)"
	exit 1
fi
tap_ok "PostgreSQL starts (initdb in a temporary directory)"
pg_sql -c "CREATE DATABASE fresh" >/dev/null
pg_sql -c "CREATE DATABASE late" >/dev/null
db() { echo "host=$PG_DIR port=$PG_PORT user=postgres dbname=$1"; }
q() { psql "$(db "$1")" -X -q -A -t -v ON_ERROR_STOP=1 -c "$2" 2>/dev/null; }
NMIG=$(ls "$LAB_ROOT"/deploy/sql/[0-9][0-9][0-9]_*.sql | wc -l)

POL="$LAB_DIR/policies"
mkdir -p "$POL"
cat >"$POL/10-shop.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{protocol: TCP, port: 8080}]
EOF
lab_pod frontend 198.18.2.10
lab_pod backend 198.18.2.20

# audit.FIELD of `ztctl status`
audit_stat() {
	ztctl -o json status 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["audit"][sys.argv[1]])' "$1" 2>/dev/null
}
# The agent's first seconds: its own events, then endpoints and a block.
first_seconds() {
	ztctl endpoint add --ifname v-frontend --ip 198.18.2.10 --labels app=frontend \
		--namespace shop --name frontend >/dev/null &&
		ztctl endpoint add --ifname v-backend --ip 198.18.2.20 --labels app=backend \
			--namespace shop --name backend >/dev/null &&
		ztctl block add 198.18.0.77 --reason "it fresh" >/dev/null &&
		ztctl block del 198.18.0.77 >/dev/null &&
		cat >"$POL/20-frontend.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: backend}}}]
EOF
}
# wait_written N SECONDS: until the agent says N events are written
wait_written() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ "$(audit_stat written)" = "$1" ] && [ "$(audit_stat pending)" = 0 ] && return 0
		sleep 0.2
	done
	return 1
}

# --- 1. an empty database ---
LAB_DB_URL=$(db fresh)
lab_write_config
n0=0
if ! lab_agent_start; then
	tap_fail "ztagent starts on an empty database"
	exit 1
fi
tap_ok "ztagent starts on an empty database (no --migrate-only before)"
check "endpoints added, a block added and removed, a policy file added in its first second" \
	first_seconds
sleep 1
posted=$(audit_stat posted)
echo "# audit events posted by the agent in its first seconds: $posted"
check "the agent's first events are all written (posted $posted)" wait_written "$posted" 20
kinds=$(q fresh "SELECT string_agg(kind, ',' ORDER BY seq) FROM audit_log")
echo "# audit_log: $kinds"
check "audit_log holds every one of them ($posted rows)" \
	test "$(q fresh "SELECT count(*) FROM audit_log")" = "$posted"
for k in config.load policy.apply endpoint.add block.add block.del; do
	check "... among them $k" grep -q "\b$k\b" <<<"$kinds"
done
check "nothing refused or dropped" \
	test "$(audit_stat refused)|$(audit_stat dropped)" = "0|0"
check "no 'relation does not exist' in the agent's log" \
	bash -c '! tail -n +$(($1 + 1)) "$2" | grep -q "does not exist"' _ "$n0" "$LAB_LOG"
check "no dead letters" test ! -s "$LAB_DIR/state/audit/deadletter.jsonl"
out=$(ztctl audit verify 2>&1)
check "ztctl audit verify: $out" test "$out" = "audit: $posted rows verified, chain intact"
lab_agent_stop

# --- 2. the database down when the agent starts ---
pg_down
LAB_DB_URL=$(db late)
lab_write_config
if ! lab_agent_start; then
	tap_fail "ztagent starts while its database is down"
	exit 1
fi
tap_ok "ztagent starts while its database is down"
ztctl block add 198.18.0.78 --reason "it late" >/dev/null
ztctl block del 198.18.0.78 >/dev/null
sleep 1
posted=$(audit_stat posted)
check "the events wait in the journal ($posted posted, $(audit_stat pending) pending, none written)" \
	test "$(audit_stat pending)|$(audit_stat written)|$(audit_stat dropped)" = "$posted|0|0"
pg_up || exit 1
check "database up: the $posted events are written" wait_written "$posted" 30
check "... after the migrations, applied on the first connection" \
	test "$(q late "SELECT count(*) FROM schema_migrations")" = "$NMIG"
check "... all of them in audit_log, in the order posted (config.load first, block.del last)" \
	test "$(q late "SELECT count(*) || ':' || (array_agg(kind ORDER BY seq))[1] || ':' || (array_agg(kind ORDER BY seq DESC))[1] FROM audit_log")" = "$posted:config.load:block.del"
check "... with their blocks rows" \
	test "$(q late "SELECT string_agg(action, ',' ORDER BY at) FROM blocks WHERE cidr = '198.18.0.78/32'")" = "block,unblock"
out=$(ztctl audit verify 2>&1)
check "ztctl audit verify: $out" test "$out" = "audit: $posted rows verified, chain intact"

echo "1..$TAP_N"
