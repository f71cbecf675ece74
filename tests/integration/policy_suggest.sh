#!/usr/bin/env bash
# Integration: policies from traffic. The real agent records real TCP
# connections between lab pods in a real PostgreSQL (policy.default allow:
# a learning period); `ztctl policy suggest` reads network_flows and
# writes policies; loaded into policy.dir, a replay of every flow the
# database holds passes with zero denials, while flows it never saw (and a
# rare one below --min-flows) are denied. --mode audit: the same flows pass,
# an unseen one passes as audit (would deny). Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

LAB_POLICY_DEFAULT=allow
lab_init sug
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
tap_ok "PostgreSQL starts"
pg_sql -c "CREATE DATABASE ztagent" >/dev/null
DB="host=$PG_DIR port=$PG_PORT user=postgres dbname=ztagent"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

POL="$LAB_DIR/policies"
mkdir -p "$POL"
CLIENT=198.18.4.10
WEB=198.18.4.20
DBP=198.18.4.30
INTRUDER=198.18.4.40
declare -A POD_OF=([$CLIENT]=client [$WEB]=web [$DBP]=db [$INTRUDER]=intruder)
lab_pod client $CLIENT
lab_pod web $WEB
lab_pod db $DBP
lab_pod intruder $INTRUDER
LAB_DB_URL=$DB
lab_write_config
for l in "web $WEB 8080" "web $WEB 8081" "web $WEB 8082" "web $WEB 8083" "db $DBP 5432"; do
	set -- $l
	ip netns exec "${LAB_ID}-$1" nc -lk "$2" "$3" >/dev/null 2>&1 &
	LAB_PIDS+=($!)
done
tcp() { in_pod "$1" nc -z -w1 "$2" "$3" >/dev/null 2>&1; }
no_tcp() { ! tcp "$@"; }

if ! lab_agent_start; then
	tap_fail "ztagent starts with database.url"
	exit 1
fi
tap_ok "ztagent starts with database.url"
check "endpoint add client" ztctl endpoint add --ifname v-client --ip $CLIENT \
	--labels app=client,tier=edge --namespace shop --name client
check "endpoint add web" ztctl endpoint add --ifname v-web --ip $WEB --labels app=web \
	--namespace shop --name web
check "endpoint add db" ztctl endpoint add --ifname v-db --ip $DBP --labels app=db \
	--namespace data --name db
check "endpoint add intruder" ztctl endpoint add --ifname v-intruder --ip $INTRUDER \
	--labels app=intruder --namespace shop --name intruder

# --- the learning period: traffic, recorded ---
ok=1
for spec in "client $WEB 8080 4" "client $WEB 8081 3" "client $WEB 8082 2" "web $DBP 5432 3" \
	"client $DBP 5432 1"; do
	set -- $spec
	for _ in $(seq 1 "$4"); do tcp "$1" "$2" "$3" || ok=0; done
done
check "13 connections (4 + 3 + 2 + 3 + 1) pass while nothing is isolated" test $ok = 1
rows() { q "SELECT count(*) FROM network_flows WHERE flow_kind = 'flow' AND dest_port IN (8080, 8081, 8082, 5432)"; }
for _ in $(seq 1 200); do [ "$(rows)" -ge 13 ] && break; sleep 0.1; done
check "their 13 rows are in network_flows" test "$(rows)" = 13
check "rows carry workloads, not labels (labels come from the agent's endpoints)" \
	test "$(q "SELECT count(*) FROM network_flows WHERE source_workload = 'shop/client' AND dest_workload = 'shop/web'")" = 9

# --- suggest ---
out="$LAB_DIR/suggested.yaml"
ztctl policy suggest --since 1h --min-flows 2 --db "$DB" >"$out" 2>"$LAB_DIR/suggest.err"
rc=$?
sed 's/^/#   /' "$out"
check "ztctl policy suggest exits 0" test $rc -eq 0
check "ztctl policy validate accepts it" ztctl policy validate "$out"
check "it holds one policy per workload seen (client, web, db)" \
	test "$(grep -c '^kind: NetworkPolicy' "$out")" = 3
check "by labels, never by pod address" bash -c "! grep -q '198\.18\.4\.' '$out'"
check "ports merged into a range only where exact (8080-8082 all seen)" \
	grep -q '{protocol: TCP, port: 8080, endPort: 8082}' "$out"
check "comments say which flows a rule covers and how often" \
	grep -q '# shop/web -> data/db 5432/TCP: 3 flows' "$out"
check "DNS egress is included" grep -q 'k8s-app.: .kube-dns' "$out"
check "the rare flow (1 < --min-flows 2) is listed, not dropped silently" \
	grep -q '#   shop/client -> data/db 5432/TCP: 1 flow; seen fewer than --min-flows times' "$out"
ztctl policy suggest --since 1h --min-flows 2 --namespace data --db "$DB" >"$LAB_DIR/data.yaml" 2>/dev/null
check "--namespace data: only data's policy" \
	bash -c "test \"\$(grep -c '^kind:' '$LAB_DIR/data.yaml')\" = 1 && grep -q 'name: suggested-db' '$LAB_DIR/data.yaml'"
err=$(ztctl policy suggest --mode strict --db "$DB" 2>&1)
check "--mode must be enforce or audit" grep -q "not enforce or audit" <<<"$err"

# --- load it, replay what the database saw ---
cp "$out" "$POL/50-suggested.yaml"
loaded() { ztctl -o json policy list | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(p["name"].startswith("suggested-") for p in d["policies"]) == 3 else 1)'; }
for _ in $(seq 1 50); do loaded && break; sleep 0.1; done
check "the agent loads the suggestion from policy.dir" loaded
# ztctl flows -o json: one verdict per line.
denied() { ztctl -o json flows --verdict denied --limit 10000 | grep -c '"verdict"'; }
d0=$(denied)
replay_fail=0
replayed=0
while IFS='|' read -r src dst port n; do
	[ -n "$src" ] || continue
	[ "$n" -ge 2 ] || continue # below --min-flows: held out on purpose
	pod=${POD_OF[$src]:-}
	[ -n "$pod" ] || continue
	if ! tcp "$pod" "$dst" "$port"; then
		echo "# replay $pod -> $dst:$port failed"
		replay_fail=$((replay_fail + 1))
	fi
	replayed=$((replayed + 1))
done < <(q "SELECT host(source_ip), host(dest_ip), dest_port, count(*) FROM network_flows WHERE flow_kind = 'flow' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
echo "# replayed $replayed distinct flows from network_flows"
check "every seen flow (4 distinct) replays and connects" test "$replayed" = 4 -a "$replay_fail" = 0
check "zero denials during the replay" test "$(denied)" = "$d0"
check "held out: the rare client -> db:5432 is denied" no_tcp client $DBP 5432
check "held out: unseen intruder -> web:8080 is denied" no_tcp intruder $WEB 8080
check "held out: unseen port client -> web:8083 is denied" no_tcp client $WEB 8083
check "held out: web -> client (the other way) is denied" no_tcp web $CLIENT 8080
check "the held-out flows are on record as denials" test "$(denied)" -ge $((d0 + 4))

# --- audit mode ---
ztctl policy suggest --since 1h --min-flows 2 --mode audit --db "$DB" >"$LAB_DIR/audit.yaml" 2>/dev/null
check "--mode audit writes ZeroTrustPolicy in mode audit" \
	bash -c "test \"\$(grep -c '^kind: ZeroTrustPolicy' '$LAB_DIR/audit.yaml')\" = 3 && test \"\$(grep -c '^  mode: audit' '$LAB_DIR/audit.yaml')\" = 3"
rm -f "$POL/50-suggested.yaml"
cp "$LAB_DIR/audit.yaml" "$POL/50-suggested.yaml"
audit_loaded() { ztctl -o json policy list | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if sum(p["mode"] == "audit" for p in d["policies"]) == 3 else 1)'; }
for _ in $(seq 1 50); do audit_loaded && break; sleep 0.1; done
check "the audit-mode suggestion is in force" audit_loaded
check "audit: a seen flow passes" tcp client $WEB 8081
check "audit: unseen intruder -> web:8080 passes" tcp intruder $WEB 8080
audits() { ztctl -o json flows --verdict audit --limit 10000 | python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if l.strip() and json.loads(l)["dst"] == sys.argv[1] and json.loads(l)["dport"] == 8080), end="")' "$WEB"; }
check "... reported as audit (would deny)" test "$(audits)" -ge 1

echo "1..$TAP_N"
