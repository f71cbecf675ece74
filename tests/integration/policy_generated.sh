#!/usr/bin/env bash
# Integration: policies generated from metadata with the real daemon. Pods
# in three namespaces, real TCP connections; ztagent.io/isolation on a
# namespace and ztagent.io/talks-to on a pod (set with ztctl, as the
# Kubernetes watch would) allow and deny accordingly within 1 s; changing
# or removing an annotation recomputes; an explicit ZeroTrustPolicy deny
# stays in force over a declared call; a bad annotation is refused and
# changes nothing; annotations survive a restart. Prints TAP lines.
set -uo pipefail
. "$(dirname "$0")/../../tools/lab.sh"

LAB_POLICY_DEFAULT=allow
lab_init gen
POL="$LAB_DIR/policies"
mkdir -p "$POL"

WEB=198.18.3.10
BE=198.18.3.20
LEDGER=198.18.3.30
X=198.18.3.40
lab_pod web $WEB
lab_pod backend $BE
lab_pod ledger $LEDGER
lab_pod x $X
for l in "backend $BE 8080" "ledger $LEDGER 5432" "web $WEB 80" "x $X 80"; do
	set -- $l
	ip netns exec "${LAB_ID}-$1" nc -lk "$2" "$3" >/dev/null 2>&1 &
	LAB_PIDS+=($!)
done

tcp() { in_pod "$1" nc -z -w1 "$2" "$3" >/dev/null 2>&1; }
no_tcp() { ! tcp "$@"; }
# within1 CMD...: CMD succeeds on an attempt started within 1 s (polling);
# says when that attempt started (a denial attempt itself takes nc's 1 s).
within1() {
	local t0=$(date +%s%N) ts
	while :; do
		ts=$((($(date +%s%N) - t0) / 1000000))
		[ $ts -gt 1000 ] && return 1
		if "$@"; then
			echo "# '$*': the attempt started ${ts} ms after the change succeeded"
			return 0
		fi
		sleep 0.05
	done
}

if ! lab_agent_start; then
	tap_fail "ztagent starts"
	exit 1
fi
tap_ok "ztagent starts"
check "endpoint add web with --annotation ztagent.io/talks-to" \
	ztctl endpoint add --ifname v-web --ip $WEB --labels app=web --namespace shop --name web \
	--annotation 'ztagent.io/talks-to=backend:8080/TCP, ns=payments/app=ledger:5432'
check "endpoint add backend" ztctl endpoint add --ifname v-backend --ip $BE --labels app=backend \
	--namespace shop --name backend
check "endpoint add ledger" ztctl endpoint add --ifname v-ledger --ip $LEDGER --labels app=ledger \
	--namespace payments --name ledger
check "endpoint add x" ztctl endpoint add --ifname v-x --ip $X --labels app=x --namespace open --name x

# Nothing isolated yet (policy.default allow, no annotations on namespaces).
check "before: x -> backend:8080 passes" tcp x $BE 8080
check "before: backend -> ledger:5432 passes" tcp backend $LEDGER 5432

# --- namespace isolation ---
check "namespace annotate shop ztagent.io/isolation=namespace" \
	ztctl namespace annotate shop ztagent.io/isolation=namespace
check "x -> backend:8080 denied within 1 s (from outside shop)" within1 no_tcp x $BE 8080
check "web -> backend:8080 passes (inside shop)" tcp web $BE 8080
check "backend -> web:80 passes (inside shop)" tcp backend $WEB 80
check "x -> web:80 denied" no_tcp x $WEB 80
check "backend -> x:80 passes (egress of shop is not isolated by namespace)" tcp backend $X 80

pl=$(ztctl -o json policy list)
check "policy list shows the generated policy with origin generated" \
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if any(p["origin"] == "generated" and p["name"] == "ztgen.isolation" and p["namespace"] == "shop" for p in d["policies"]) else 1)' "$pl"
ex=$(ztctl policy explain --from open/x --to shop/backend --port 8080/TCP 2>&1)
echo "# explain: $ex"
check "policy explain names the generated policy" grep -q "ztgen.isolation" <<<"$ex"
check "the log says generated_policy_applied" grep -q "generated_policy_applied" "$LAB_LOG"

# --- a declared call from outside ---
check "endpoint annotate open/x ztagent.io/talks-to=ns=shop/app=backend:8080" \
	ztctl endpoint annotate open/x 'ztagent.io/talks-to=ns=shop/app=backend:8080'
check "x -> backend:8080 passes within 1 s (declared by x)" within1 tcp x $BE 8080
check "x -> web:80 still denied (not declared)" no_tcp x $WEB 80

# --- strict ---
check "namespace annotate payments ztagent.io/isolation=strict" \
	ztctl namespace annotate payments ztagent.io/isolation=strict
check "backend -> ledger:5432 denied within 1 s (not declared)" within1 no_tcp backend $LEDGER 5432
check "web -> ledger:5432 passes (declared by web with --annotation)" tcp web $LEDGER 5432
check "ledger -> x:80 denied (strict egress)" no_tcp ledger $X 80

# --- the annotation changes: recomputed ---
check "endpoint annotate shop/web: talks-to without ledger" \
	ztctl endpoint annotate shop/web 'ztagent.io/talks-to=backend:8080/TCP'
check "web -> ledger:5432 denied within 1 s after the change" within1 no_tcp web $LEDGER 5432
check "endpoint annotate shop/web: ledger again, on another port" \
	ztctl endpoint annotate shop/web 'ztagent.io/talks-to=ns=payments/app=ledger:5400-5500'
check "web -> ledger:5432 passes within 1 s (in 5400-5500)" within1 tcp web $LEDGER 5432

# --- a bad annotation: refused, nothing changes ---
gen() { ztctl -o json policy list | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
# gen_moved GEN: the generation in force is no longer GEN, within 5 s (a
# change to the policy directory is applied after the watch's debounce).
gen_moved() {
	local i
	for i in $(seq 100); do
		[ "$(gen)" != "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
gen0=$(gen)
err=$(ztctl endpoint annotate shop/web 'ztagent.io/talks-to=ns=payments/app=ledger:99999' 2>&1)
rc=$?
echo "# $err"
check "a bad talks-to is refused (exit 1)" test $rc -eq 1
check "... naming the annotation, entry and column" \
	grep -q "ztagent.io/talks-to: entry 1 (column 1) 'ns=payments/app=ledger:99999': ports are 1-65535" <<<"$err"
err=$(ztctl namespace annotate shop ztagent.io/isolation=total 2>&1)
check "a bad isolation is refused" grep -q "'total' is not one of none, namespace, strict" <<<"$err"
gen1=$(gen)
check "... and the generation in force is unchanged" test "$gen0" = "$gen1"
check "web -> ledger:5432 still passes" tcp web $LEDGER 5432

# --- an explicit deny is never weakened ---
cat >"$POL/10-deny.yaml" <<'EOF'
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: no-open-to-backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
    - action: deny
      from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: open}}}]
EOF
check "x -> backend:8080 denied within 1 s by the explicit deny, talks-to notwithstanding" \
	within1 no_tcp x $BE 8080
check "web -> backend:8080 still passes" tcp web $BE 8080
# The removal is timed from when the agent applied it: a SYN sent before
# that is dropped, and nc's one attempt then takes its whole 1 s.
g=$(gen)
rm -f "$POL/10-deny.yaml"
check "the deny's removal is applied (generation $g moved on within 5 s)" gen_moved "$g"
check "deny removed: x -> backend:8080 passes again" within1 tcp x $BE 8080

# --- annotations survive a restart ---
check "the agent stops" lab_agent_stop
if ! lab_agent_start; then
	tap_fail "the agent starts again"
	exit 1
fi
tap_ok "the agent starts again"
check "after the restart: x -> web:80 denied (shop still isolated)" no_tcp x $WEB 80
check "after the restart: x -> backend:8080 passes (x's talks-to kept)" tcp x $BE 8080
check "after the restart: backend -> ledger:5432 denied (payments still strict)" \
	no_tcp backend $LEDGER 5432

# --- isolation none, and a removed endpoint's annotations go with it ---
check "namespace annotate shop ztagent.io/isolation=none" \
	ztctl namespace annotate shop ztagent.io/isolation=none
check "x -> web:80 passes within 1 s (shop open again)" within1 tcp x $WEB 80
check "namespace annotate payments ztagent.io/isolation-" \
	ztctl namespace annotate payments ztagent.io/isolation-
check "backend -> ledger:5432 passes within 1 s" within1 tcp backend $LEDGER 5432
check "endpoint del open/x" ztctl endpoint del open/x
check "its annotation is gone from state_dir/annotations" \
	bash -c "! grep -q '^open	x	' '$LAB_DIR/state/annotations'"
check "the namespace's is gone too, shop's isolation none is kept" \
	bash -c "! grep -q '^payments	' '$LAB_DIR/state/annotations' && grep -q '^shop		ztagent.io/isolation	none' '$LAB_DIR/state/annotations'"

echo "1..$TAP_N"
