#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# deploy/k8s, offline: yamllint; every manifest against the Kubernetes
# OpenAPI schemas (npm kubernetes-models, installed by tools/deps.sh with
# `npm ci`, nothing fetched here); the CRD's schema structural; the RBAC
# least privilege and the DaemonSet's contract; every ZeroTrustPolicy
# example of the repository through the CRD's schema and `ztctl policy
# validate` alike (and broken variants refused by both); the CNI installer
# on sample conflists. Prints TAP.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/ztagent-k8sman.XXXXXX)
KEEPER=
trap '[ -n "$KEEPER" ] && kill "$KEEPER" 2>/dev/null; rm -rf "$T"' EXIT
VAL="$ROOT/tests/k8s/validate"
ZTCTL="$ROOT/build/ztctl"
K8S="$ROOT/deploy/k8s"
n=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
nok() {
	n=$((n + 1))
	echo "not ok $n - $1"
}
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}
node_ok=1
if [ ! -d "$VAL/node_modules/kubernetes-models" ] || ! command -v node >/dev/null; then
	node_ok=0
	nok "node and $VAL/node_modules are there (tools/deps.sh runs npm ci)"
fi
manifests=("$K8S"/[0-9]*.yaml)
json() { node "$VAL/validate.mjs" json "$@"; }

# ---- lint and schemas ----------------------------------------------------------
check "yamllint: deploy/k8s is clean" yamllint -s -c "$K8S/.yamllint" "$K8S"
if [ "$node_ok" -eq 1 ]; then
	node "$VAL/validate.mjs" manifests "${manifests[@]}" >"$T/schemas" 2>&1
	rc=$?
	while read -r verdict what; do
		if [ "$verdict" = OK ]; then ok "schema: ${what#"$ROOT"/}"; else nok "schema: ${what#"$ROOT"/}"; fi
	done <"$T/schemas"
	check "the schema check exits 0" test $rc -eq 0
	check "it checked 10 documents" test "$(grep -c '^OK ' "$T/schemas")" -eq 10

	# The validators can fail: broken copies must be refused.
	json "$K8S/40-daemonset.yaml" | jq '.spec.template.spec.containers[0].image = 5' >"$T/bad-ds.json"
	node "$VAL/validate.mjs" manifests "$T/bad-ds.json" >"$T/out" 2>&1
	check "a DaemonSet whose image is a number is refused" grep -q 'FAIL .*image must be string' "$T/out"
	json "$K8S/10-crd-zerotrustpolicies.yaml" |
		jq '.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.mode |= del(.type)' \
			>"$T/bad-crd.json"
	node "$VAL/validate.mjs" manifests "$T/bad-crd.json" >"$T/out" 2>&1
	check "a CRD schema with an untyped field is not structural" grep -q 'FAIL .*spec.properties.mode: type is missing' "$T/out"
	json "$K8S/10-crd-zerotrustpolicies.yaml" |
		jq '.spec.versions[0].schema.openAPIV3Schema.properties.spec.additionalProperties = false' \
			>"$T/bad-crd2.json"
	node "$VAL/validate.mjs" manifests "$T/bad-crd2.json" >"$T/out" 2>&1
	check "additionalProperties: false (not allowed in a structural schema) is refused" \
		grep -q 'FAIL .*additionalProperties' "$T/out"

	# ---- RBAC: get/list/watch on five resources, nothing else -------------------
	json "$K8S/20-rbac.yaml" | jq -r 'select(.kind == "ClusterRole") | .rules[] |
		. as $r | .resources[] | "\($r.apiGroups | join(",")):\(.) \($r.verbs | sort | join(","))"' |
		sort >"$T/rules"
	printf '%s\n' ":namespaces get,list,watch" ":nodes get,list,watch" ":pods get,list,watch" \
		"networking.k8s.io:networkpolicies get,list,watch" \
		"ztagent.io:zerotrustpolicies get,list,watch" >"$T/rules.want"
	check "ClusterRole: get/list/watch on pods, namespaces, nodes, networkpolicies, zerotrustpolicies only" \
		cmp -s "$T/rules" "$T/rules.want"
	check "the binding gives that role to the agent's ServiceAccount" \
		test "$(json "$K8S/20-rbac.yaml" | jq -r 'select(.kind == "ClusterRoleBinding") |
			"\(.roleRef.name) \(.subjects[0].kind) \(.subjects[0].name) \(.subjects[0].namespace)"')" \
		= "ztagent ServiceAccount ztagent ztagent-system"

	# ---- the DaemonSet's contract ---------------------------------------------------
	json "$K8S/40-daemonset.yaml" >"$T/ds.json"
	q() { jq -r "$1" "$T/ds.json"; }
	check "DaemonSet: host network, system-node-critical, the agent's ServiceAccount" \
		test "$(q '.spec.template.spec | "\(.hostNetwork) \(.priorityClassName) \(.serviceAccountName)"')" \
		= "true system-node-critical ztagent"
	C='.spec.template.spec.containers[] | select(.name == "ztagent")'
	check "NODE_NAME comes from the downward API (spec.nodeName)" \
		test "$(q "$C"' | .env[] | select(.name == "NODE_NAME") | .valueFrom.fieldRef.fieldPath')" = spec.nodeName
	check "not privileged: capabilities BPF, PERFMON, NET_ADMIN, SYS_ADMIN, SYS_RESOURCE, SYS_NICE, all others dropped" \
		test "$(q "$C"' | .securityContext | "\(.privileged) \(.capabilities.drop | join(",")) \(.capabilities.add | sort | join(","))"')" \
		= "false ALL BPF,NET_ADMIN,PERFMON,SYS_ADMIN,SYS_NICE,SYS_RESOURCE"
	check "probes: startup and liveness on /healthz, readiness on /readyz, on the metrics port" \
		test "$(q "$C"' | "\(.startupProbe.httpGet.path) \(.livenessProbe.httpGet.path) \(.readinessProbe.httpGet.path) \(.readinessProbe.httpGet.port)"')" \
		= "/healthz /healthz /readyz metrics"
	check "host paths: bpffs, /run/ztagent, /var/lib/ztagent, the CNI directories" \
		test "$(q '[.spec.template.spec.volumes[] | select(.hostPath) | .hostPath.path] | sort | join(" ")')" \
		= "/etc/cni/net.d /opt/cni/bin /run/ztagent /sys/fs/bpf /var/lib/ztagent"
	check "an init container installs the CNI plugin; a sidecar keeps it chained" \
		test "$(q '[.spec.template.spec.initContainers[].command[1], (.spec.template.spec.containers[] | select(.name == "cni-keeper") | .command[1])] | join(" ")')" \
		= "install watch"
	check "the metrics Service and the ServiceMonitor name the same port" \
		test "$(json "$K8S/50-metrics.yaml" | jq -r 'if .kind == "Service" then .spec.ports[0].name else .spec.endpoints[0].port end' | sort -u)" = metrics

	# ---- every ZeroTrustPolicy example: the CRD schema and ztctl alike ------------------
	cnt=$(python3 "$ROOT/tests/k8s/extract_ztp.py" "$ROOT" "$T/ex")
	check "ZeroTrustPolicy examples found in README, deploy/, tests/, src/seg/policy.h ($cnt)" test "$cnt" -ge 6
	# Broken variants of the first deploy example: both must refuse each.
	first=$(awk -F'\t' '$2 ~ /^deploy\// {print $1; exit}' "$T/ex/index.tsv")
	mutate() {
		json "$first" | jq "$2" >"$T/ex/bad-$1.json"
		printf '%s\t%s\n' "$T/ex/bad-$1.json" "broken: $1" >>"$T/ex/index.tsv"
	}
	mutate unknown-action '.spec.ingress[0].action = "drop"'
	mutate unknown-field '.spec.ingress[0].fromm = []'
	mutate tls-on-deny '.spec.ingress[0].requireTLS = true'
	mutate bad-port-name '.spec.ingress[1].ports[0].port = "Postgres"'
	mutate port-zero '.spec.ingress[1].ports[0].port = 0'
	mutate bad-mode '.spec.mode = "strict"'
	mutate ipblock-and-selector '.spec.ingress[0].from[0].ipBlock = {cidr: "10.0.0.0/8"}'
	mutate no-spec 'del(.spec)'
	mutate no-action 'del(.spec.ingress[0].action)'
	mutate bad-name '.metadata.name = "Protect_DB"'
	mutate bad-protocol '.spec.ingress[1].ports[0].protocol = "tcp"'
	mutate bad-policy-type '.spec.policyTypes = ["ingress"]'
	node "$VAL/validate.mjs" ztp "$K8S/10-crd-zerotrustpolicies.yaml" $(cut -f1 "$T/ex/index.tsv") \
		>"$T/crdres" 2>&1
	while IFS=$'\t' read -r f where; do
		crd=$(jq -r --arg f "$f" 'select(.file == $f) | .valid' "$T/crdres")
		if [ "${f##*.}" = json ]; then
			# ztctl reads YAML: JSON is YAML.
			cp "$f" "${f%.json}.yaml"
			f2=${f%.json}.yaml
		else
			f2=$f
		fi
		"$ZTCTL" policy validate "$f2" >"$T/ztctl.out" 2>&1
		case $? in
		0) zt=true ;;
		1) zt=false ;;
		*) zt="error($(head -c 200 "$T/ztctl.out"))" ;;
		esac
		if [[ $where == broken:* ]]; then
			check "$where: refused by the CRD schema ($crd) and ztctl ($zt) alike" \
				test "$crd" = false -a "$zt" = false
		else
			check "$where: the CRD schema ($crd) and ztctl ($zt) agree it is valid" \
				test "$crd" = true -a "$zt" = true
		fi
		[ "$crd" = false ] && jq -r --arg f "$f" 'select(.file == $f) | "#   crd: " + (.errors | join("; "))' "$T/crdres"
		[ "$zt" = false ] && sed 's/^/#   ztctl: /' "$T/ztctl.out" | head -n 2
	done <"$T/ex/index.tsv"
fi

# ---- the CNI installer on sample conflists -------------------------------------------
INST="$K8S/cni-install.sh"
SAMPLES="$ROOT/tests/k8s/cni"
net() {
	rm -rf "$T/net" "$T/bin"
	mkdir -p "$T/net" "$T/bin"
	for f in "$@"; do cp "$SAMPLES/$f" "$T/net/"; done
}
inst() {
	CNI_NET_DIR=$T/net CNI_BIN_DIR=$T/bin ZTAGENT_CNI_BIN=$T/ztagent-cni CNI_INSTALL_TIMEOUT=2 \
		sh "$INST" "$@" 2>>"$T/inst.log"
}
printf '#!/bin/sh\necho plugin\n' >"$T/ztagent-cni"
net 10-calico.conflist
inst install
check "cni-install: the plugin is appended to the primary's list, the rest untouched" \
	test "$(jq -c '[.name, .cniVersion, [.plugins[].type], .plugins[0].ipam]' "$T/net/10-calico.conflist")" \
	= '["k8s-pod-network","0.3.1",["calico","portmap","bandwidth","ztagent-cni"],{"type":"calico-ipam"}]'
check "cni-install: the binary is installed, executable" test -x "$T/bin/ztagent-cni"
ino=$(stat -c %i "$T/net/10-calico.conflist")
inst install
check "cni-install: a second run changes nothing (same file, not rewritten)" \
	test "$(stat -c %i "$T/net/10-calico.conflist")" = "$ino" -a \
	"$(jq '[.plugins[] | select(.type == "ztagent-cni")] | length' "$T/net/10-calico.conflist")" = 1
net 10-bridge.conf
inst install
check "cni-install: a single-plugin .conf becomes a .conflist [bridge, ztagent-cni]" \
	test ! -e "$T/net/10-bridge.conf" -a \
	"$(jq -c '[.cniVersion, .name, [.plugins[].type], .plugins[0].bridge, has("type")]' "$T/net/10-bridge.conflist" 2>/dev/null)" \
	= '["0.4.0","bridge-net",["bridge","ztagent-cni"],"cni0",false]'
net 05-chained.conflist 10-flannel.conflist
cp "$T/net/05-chained.conflist" "$T/orig"
inst install
check "cni-install: a list that already chains it is left byte for byte" cmp -s "$T/orig" "$T/net/05-chained.conflist"
check "cni-install: only the primary (first by name) is touched" \
	cmp -s "$SAMPLES/10-flannel.conflist" "$T/net/10-flannel.conflist"
net 01-broken.conflist 10-flannel.conflist
inst install
check "cni-install: a primary that is not JSON makes install fail after its timeout" test $? -ne 0
check "cni-install: ... and nothing is written" \
	cmp -s "$SAMPLES/01-broken.conflist" "$T/net/01-broken.conflist"
check "cni-install: ... and the log says which file" grep -q 'cni_conf_unusable file=.*01-broken.conflist' "$T/inst.log"
net
(sleep 0.5 && cp "$SAMPLES/10-flannel.conflist" "$T/net/") &
inst install
check "cni-install: with no configuration yet it waits for the primary, then chains" \
	test "$(jq -c '[.plugins[].type]' "$T/net/10-flannel.conflist")" = '["flannel","portmap","ztagent-cni"]'
# The primary rewrites its configuration: the keeper puts the plugin back.
CNI_NET_DIR=$T/net CNI_BIN_DIR=$T/bin ZTAGENT_CNI_BIN=$T/ztagent-cni CNI_WATCH_INTERVAL=0.2 \
	sh "$INST" watch 2>>"$T/inst.log" &
KEEPER=$!
cp "$SAMPLES/10-flannel.conflist" "$T/net/10-flannel.conflist"
back=0
for _ in $(seq 50); do
	if [ "$(jq -c '[.plugins[].type]' "$T/net/10-flannel.conflist" 2>/dev/null)" = '["flannel","portmap","ztagent-cni"]' ]; then
		back=1
		break
	fi
	sleep 0.1
done
check "cni-install watch: a rewrite by the primary is chained again" test $back -eq 1
kill "$KEEPER"
wait "$KEEPER" 2>/dev/null
KEEPER=
inst uninstall
check "cni-install uninstall: the plugin leaves the list and the binary goes" \
	test "$(jq -c '[.plugins[].type]' "$T/net/10-flannel.conflist")" = '["flannel","portmap"]' -a ! -e "$T/bin/ztagent-cni"
echo "1..$n"
