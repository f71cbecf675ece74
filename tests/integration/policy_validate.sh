#!/usr/bin/env bash
# ztctl policy validate: offline, with the daemon's parser. Prints TAP lines.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ZTCTL="$ROOT/build/ztctl"
DIR=$(mktemp -d /tmp/ztagent-policy.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
n=0
check() {
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fi
}

mkdir "$DIR/good" "$DIR/bad"
cat >"$DIR/good/10-db.yaml" <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-backend, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: backend}}}]
      ports: [{protocol: TCP, port: 5432}]
---
apiVersion: ztagent.io/v1
kind: ZeroTrustPolicy
metadata: {name: no-ssh, namespace: prod}
spec:
  podSelector: {}
  ingress:
    - action: deny
      ports: [{protocol: TCP, port: 22}]
Y
cp "$DIR/good/10-db.yaml" "$DIR/bad/10-db.yaml"
cat >"$DIR/bad/20-typo.yaml" <<'Y'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - ports: [{protocol: TCP, port: 80, endPort: 70}]
Y

out=$("$ZTCTL" policy validate "$DIR/good" 2>&1)
check "a valid directory passes (exit 0)" test $? -eq 0
check "it counts both documents" grep -q "valid: 2 policies in 1 file" <<<"$out"
out=$("$ZTCTL" policy validate "$DIR/bad" 2>&1)
check "one bad file fails the directory (exit 1)" test $? -eq 1
check "the message names file:line:column and the field" \
	grep -q "20-typo.yaml:7:.*spec.ingress\[0\].ports\[0\]" <<<"$out"
out=$("$ZTCTL" -o json policy validate "$DIR/bad" 2>&1)
check "-o json reports valid: false" grep -q '"valid": false' <<<"$out"
"$ZTCTL" policy validate >/dev/null 2>&1
check "a missing PATH is a usage error (exit 2)" test $? -eq 2
"$ZTCTL" policy validate "$DIR/nope" >/dev/null 2>"$DIR/err"
check "a missing path fails with its name" grep -q "$DIR/nope" "$DIR/err"
