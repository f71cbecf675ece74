#!/usr/bin/env bash
# Integration: the same policy everywhere. The real agent in the namespace
# lab writes its row of the nodes table (migration 005) with the SHA-256 of
# the canonical form of its policy and each policy's canonical form; rows of
# other nodes (one that agrees, one that runs something else, one silent)
# sit beside it. `ztctl cluster status` shows who disagrees and who is
# stale; `ztctl policy diff` compares this node with another node, and two
# directories (a promotion): 0 equal, 1 different (and what), 2 error.
# Real PostgreSQL (tools/pg.sh). TAP.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"
. "$(dirname "$0")/../../tools/pg.sh"

lab_init clus
trap 'pg_cleanup; lab_cleanup' EXIT
if ! pg_start; then
	tap_fail "PostgreSQL starts"
	exit 1
fi
tap_ok "PostgreSQL starts"
q() { pg_sql -c "$1" 2>/dev/null; }

POL="$LAB_DIR/policies"
STAGING="$LAB_DIR/staging"
PROD="$LAB_DIR/production"
mkdir -p "$POL" "$STAGING" "$PROD"
cat >"$POL/10-shop.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: frontend}}}]
      ports: [{protocol: TCP, port: 8080}]
---
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - action: deny
      from: [{podSelector: {matchLabels: {app: frontend}}}]
    - action: allow
      from: [{podSelector: {matchLabels: {app: backend}}}]
      ports: [{protocol: TCP, port: 5432}]
EOF
# The same two policies, in two files, the other way round, another layout.
cat >"$STAGING/a-db.yaml" <<'EOF'
# db first
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata:
  namespace: shop
  name: db
spec:
  ingress:
  - action: allow
    ports:
    - port: 5432
      protocol: TCP
    from:
    - podSelector:
        matchLabels: {app: backend}
  - action: deny
    from:
    - podSelector:
        matchLabels: {app: frontend}
  podSelector:
    matchLabels: {app: db}
EOF
cat >"$STAGING/b-backend.yaml" <<'EOF'
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata: {namespace: shop, name: backend}
spec:
  ingress:
  - ports: [{port: 8080, protocol: TCP}]
    from: [{podSelector: {matchLabels: {app: frontend}}}]
  podSelector: {matchLabels: {app: backend}}
EOF
cp "$STAGING"/*.yaml "$PROD/"

LAB_DB_URL=$PG_CONN
lab_write_config
if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"
ztctl endpoint add --ifname uplink0 --ip 198.18.0.2 --labels app=backend --namespace shop \
	--name node >/dev/null 2>&1 || true

wait_row() { # SQL-CONDITION SECONDS: a nodes row of lab-node meets it
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ "$(q "SELECT count(*) FROM nodes WHERE node = 'lab-node' AND ($1)")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
check "the agent writes its nodes row (within 3 s of start)" wait_row "policy_sha256 IS NOT NULL" 3
row=$(q "SELECT version, policies, policy_generation > 0, last_heartbeat > now() - interval '15 s' FROM nodes WHERE node = 'lab-node'")
echo "# nodes row: $row"
check "version, 2 policies, a generation, a fresh heartbeat" eval '[[ "$row" == *"|2|t|t" ]]'
check "node_policies holds both policies' canonical forms" \
	test "$(q "SELECT string_agg(policy_key, ',' ORDER BY policy_key) FROM node_policies WHERE node = 'lab-node'")" = \
	"NetworkPolicy/shop/backend,ZeroTrustPolicy/shop/db"
SHA=$(q "SELECT policy_sha256 FROM nodes WHERE node = 'lab-node'")
hb0=$(q "SELECT extract(epoch FROM last_heartbeat) FROM nodes WHERE node = 'lab-node'")
check "the heartbeat moves (within 12 s)" wait_row "extract(epoch FROM last_heartbeat) > $hb0" 12
check "the heartbeat counts the endpoint" wait_row "endpoints = 1" 12

# The canonical hash: the same policies in other files, order and layout hash alike.
staging_sha=$(ztctl -o json policy diff "$STAGING" --against "$POL" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["first_sha256"] if d["equal"] else "differ")')
check "staging (reordered, reformatted) has the agent's hash" test "$staging_sha" = "$SHA"

# Other nodes: one agrees (the same rows), one runs another port, one is silent.
q "INSERT INTO nodes (node, version, started_at, last_heartbeat, policy_sha256, policy_generation, policies, endpoints)
   SELECT 'lab-node-2', version, now(), now(), policy_sha256, 7, policies, 3 FROM nodes WHERE node = 'lab-node';
   INSERT INTO node_policies SELECT 'lab-node-2', policy_key, sha256, canonical FROM node_policies WHERE node = 'lab-node';
   INSERT INTO nodes (node, version, started_at, last_heartbeat, policy_sha256, policy_generation, policies, endpoints)
   VALUES ('lab-node-3', 'old', now(), now(), repeat('ab', 32), 3, 2, 1);
   INSERT INTO node_policies SELECT 'lab-node-3', policy_key, repeat('cd', 32), replace(canonical, '\"port\":8080,\"endPort\":8080', '\"port\":8081,\"endPort\":8081') FROM node_policies WHERE node = 'lab-node';
   INSERT INTO nodes (node, version, started_at, last_heartbeat, policy_sha256, policies)
   SELECT 'lab-node-4', version, now() - interval '1 hour', now() - interval '5 minutes', policy_sha256, policies FROM nodes WHERE node = 'lab-node'" >/dev/null
out=$(ztctl --socket "$LAB_SOCK" cluster status 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "cluster status exits 1 (a node disagrees, one is stale)" test $rc = 1
check "cluster status names lab-node-3 as disagreeing" eval 'grep -q "lab-node-3 runs abababababab" <<<"$out"'
check "lab-node-3's policy is marked, the others are not" eval 'grep -q "^lab-node-3 .* ababababab.. !" <<<"$out" && ! grep -q "^lab-node-2 .*!" <<<"$out"'
check "lab-node-4 is stale" eval 'grep -q "^lab-node-4 .*STALE" <<<"$out"'
js=$(ztctl -o json cluster status)
check "-o json: lab-node-3 disagrees, lab-node and lab-node-2 agree, one stale" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
by = {n["node"]: n for n in d["nodes"]}
assert not d["policy_agree"] and d["stale"] == 1
assert by["lab-node"]["policy_agrees"] and by["lab-node-2"]["policy_agrees"]
assert not by["lab-node-3"]["policy_agrees"] and by["lab-node-4"]["stale"]
assert by["lab-node"]["policy_sha256"] == d["policy_reference"]' "$js"

# policy diff against nodes (the first side: this node's policy in force).
ztctl policy diff --against lab-node-2 >/dev/null 2>&1
check "policy diff --against lab-node-2 (agrees): exit 0" test $? = 0
out=$(ztctl policy diff --against lab-node-3 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "policy diff --against lab-node-3: exit 1" test $rc = 1
check "... names the changed policy and the rules removed and added" eval \
	'grep -q "^~ NetworkPolicy/shop/backend" <<<"$out" && grep -q "^    - ingress rule: .*\"port\":8080" <<<"$out" && grep -q "^    + ingress rule: .*\"port\":8081" <<<"$out"'
ztctl policy diff --against lab-node-9 >/dev/null 2>&1
check "policy diff --against an unknown node: exit 2" test $? = 2

# A promotion: staging against production.
ztctl policy diff "$STAGING" --against "$PROD" >/dev/null
check "promotion diff, equal directories: exit 0" test $? = 0
sed -i 's/port: 5432/port: 5433/' "$PROD/a-db.yaml"
cat >"$PROD/c-cache.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cache, namespace: shop}
spec: {podSelector: {matchLabels: {app: cache}}}
EOF
out=$(ztctl policy diff "$STAGING" --against "$PROD" 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "promotion diff, production differs: exit 1" test $rc = 1
check "... the new policy and the changed rule" eval \
	'grep -q "^+ NetworkPolicy/shop/cache" <<<"$out" && grep -q "^~ ZeroTrustPolicy/shop/db" <<<"$out" && grep -q "+ ingress rule: .*5433" <<<"$out"'
js=$(ztctl -o json policy diff "$STAGING" --against "$PROD")
check "-o json: added and changed listed" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert not d["equal"] and d["added"] == ["NetworkPolicy/shop/cache"] and d["removed"] == []
assert [c["policy"] for c in d["changed"]] == ["ZeroTrustPolicy/shop/db"]
assert {c["what"] for c in d["changed"][0]["changes"]} == {"rule added", "rule removed"}' "$js"
printf 'kind: NetworkPolicy\nmetadata: {name: [broken\n' >"$PROD/d-bad.yaml"
out=$(ztctl policy diff "$STAGING" --against "$PROD" 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "a file that does not parse: exit 2, with the file named" eval '[ $rc = 2 ] && grep -q "d-bad.yaml" <<<"$out"'

# A live change on the agent: its row follows, and it now disagrees with lab-node-2.
sed -i 's/port: 8080/port: 9090/' "$POL/10-shop.yaml"
check "a policy change reaches the nodes row (within 3 s)" wait_row "policy_sha256 <> '$SHA'" 3
ztctl policy diff --against lab-node-2 >/dev/null 2>&1
check "this node now differs from lab-node-2: exit 1" test $? = 1
check "the agent's canonical rows follow (port 9090)" \
	test "$(q "SELECT count(*) FROM node_policies WHERE node = 'lab-node' AND canonical LIKE '%\"port\":9090%'")" = 1
check "the agent is still running" kill -0 "$LAB_AGENT_PID"
# --- a second real agent: its own namespaces, pins and socket, the same PostgreSQL ---
# It runs the staging policies (port 8080); this node now runs 9090.
q "DELETE FROM nodes WHERE node IN ('lab-node-2', 'lab-node-3', 'lab-node-4')" >/dev/null
N2="${LAB_ID}-n2"
N2E="${LAB_ID}-n2e"
N2DIR="$LAB_DIR/node5"
A2_PID=
a2_cleanup() {
	if [ -n "$A2_PID" ]; then
		kill -TERM "$A2_PID" 2>/dev/null
		wait "$A2_PID" 2>/dev/null
	fi
	ip netns exec "$N2" ip link set dev uplink0 xdp off 2>/dev/null
	mountpoint -q "$N2DIR/bpffs" && umount "$N2DIR/bpffs"
}
trap 'a2_cleanup; pg_cleanup; lab_cleanup' EXIT
mkdir -p "$N2DIR/bpffs" "$N2DIR/policies"
mount -t bpf bpf "$N2DIR/bpffs"
cp "$STAGING"/*.yaml "$N2DIR/policies/"
ip netns add "$N2"
ip netns add "$N2E"
LAB_PODS+=("$N2" "$N2E") # deleted by lab_cleanup
ip link add ext0 netns "$N2E" type veth peer name uplink0 netns "$N2"
ip -n "$N2E" link set ext0 up
ip -n "$N2" link set uplink0 up
ip -n "$N2" link set lo up
ip netns exec "$N2E" ethtool -K ext0 gro on >/dev/null
sed -e "s|^node: lab-node$|node: lab-node-5|" -e "s|$LAB_BPFFS/ztagent|$N2DIR/bpffs/ztagent|" \
	-e "s|$LAB_SOCK|$N2DIR/api.sock|" -e "s|$LAB_DIR/state|$N2DIR/state|" \
	-e "s|$LAB_DIR/policies|$N2DIR/policies|" -e "s|$LAB_DIR/spool|$N2DIR/spool|" \
	"$LAB_CONF" >"$N2DIR/ztagent.yaml"
ip netns exec "$N2" "$ZTAGENT" --config "$N2DIR/ztagent.yaml" >>"$N2DIR/ztagent.log" 2>&1 &
A2_PID=$!
a2_up() {
	local i
	for i in $(seq 1 100); do
		"$ZTCTL_BIN" --socket "$N2DIR/api.sock" status >/dev/null 2>&1 && return 0
		kill -0 "$A2_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
check "a second agent (lab-node-5) starts in namespace $N2" a2_up
row5() { # the second agent's own row, fresh, with the staging hash
	local i
	for i in $(seq 1 30); do
		[ "$(q "SELECT count(*) FROM nodes WHERE node = 'lab-node-5' AND policy_sha256 = '$SHA' AND last_heartbeat > now() - interval '15 s' AND started_at > now() - interval '1 minute'")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
check "lab-node-5 writes its own nodes row (the staging hash, a fresh heartbeat)" row5
out=$(ztctl cluster status 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "cluster status (two real agents): exit 1, they disagree" test $rc = 1
js=$(ztctl -o json cluster status)
check "-o json: both agents listed, fresh, with different hashes (9090 here, 8080 there)" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
by = {n["node"]: n for n in d["nodes"]}
assert set(by) == {"lab-node", "lab-node-5"}, by.keys()
assert not d["policy_agree"] and d["stale"] == 0
assert by["lab-node-5"]["policy_sha256"] == sys.argv[2] != by["lab-node"]["policy_sha256"]' "$js" "$SHA"
out=$(ztctl policy diff --against lab-node-5 2>&1)
rc=$?
echo "$out" | sed 's/^/#   /'
check "policy diff --against lab-node-5: exit 1, port 9090 here and 8080 there" eval \
	'[ $rc = 1 ] && grep -q "^~ NetworkPolicy/shop/backend" <<<"$out" && grep -q "\"port\":8080" <<<"$out" && grep -q "\"port\":9090" <<<"$out"'
sed -i 's/port: 8080/port: 9090/' "$N2DIR/policies/b-backend.yaml"
agree() {
	local i
	for i in $(seq 1 30); do
		"$ZTCTL_BIN" --socket "$N2DIR/api.sock" cluster status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
check "lab-node-5 takes port 9090 too: cluster status (from lab-node-5's ztctl) exits 0" agree
check "the second agent is still running" kill -0 "$A2_PID"

echo "1..$TAP_N"
