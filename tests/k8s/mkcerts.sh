#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# A throw-away CA for the test API server: DIR/ca.pem, DIR/server.{pem,key}
# (127.0.0.1 and localhost), DIR/client.{pem,key} (CN=system:node:test,
# for kubeconfig client-certificate auth) and DIR/other-ca.pem (a CA that
# signed nothing here, to check that verification is on). An optional
# second argument adds subjectAltNames to the server's ("IP:198.18.100.254").
set -euo pipefail
dir=$1
extra=${2:-}
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=ztagent-test-ca" -keyout ca.key -out ca.pem
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=some-other-ca" -keyout other-ca.key -out other-ca.pem
cat >ext.cnf <<X
[srv]
subjectAltName = IP:127.0.0.1, DNS:localhost${extra:+, $extra}
extendedKeyUsage = serverAuth
[cli]
extendedKeyUsage = clientAuth
X
q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
	-keyout server.key -out server.csr
q openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile ext.cnf -extensions srv -out server.pem
q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/O=system:nodes/CN=system:node:test" -keyout client.key -out client.csr
q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
	-extfile ext.cnf -extensions cli -out client.pem
chmod 600 ./*.key
rm -f ./*.csr ext.cnf ca.srl
