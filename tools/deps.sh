#!/usr/bin/env bash
# Installs the Debian packages ztagent needs to build, test, demo and bench,
# and nothing else. Installs only what is missing; safe to run again.
set -euo pipefail

pkgs=(
	# build
	make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
	libcbor-dev libssl-dev libpq-dev libyaml-dev libmicrohttpd-dev libcmocka-dev
	libcurl4-openssl-dev libjson-c-dev
	linux-libc-dev clang-format
	# fuzzing (make fuzz): clang's libFuzzer and sanitizer runtimes
	libclang-rt-14-dev
	# lab, tests and demo (ethtool: GRO on the lab's veths for native XDP;
	# curl: the metrics endpoint; openssl: test certificates)
	iproute2 iputils-ping netcat-openbsd procps python3 util-linux postgresql prometheus
	ethtool curl openssl
	# mTLS tunnel test: the capture that shows only TLS 1.3 records (tshark); a path
	# that drops a connection's packets silently on the router (iptables: this kernel
	# has no tc flower or gact to drop with)
	tshark iptables
	# CNI test: ztagent-cni chained after the real ptp and host-local plugins
	containernetworking-plugins
	# bench peers
	xdp-tools iperf3 sockperf
	# model training (tools/train): the trainer, and the lab traffic it learns from
	# (benign: iperf3 wrk ab dig dnsmasq curl; attacks: nmap nping masscan hping3
	# slowhttptest hydra)
	python3-sklearn python3-cbor2 python3-numpy
	wrk apache2-utils dnsmasq-base bind9-dnsutils
	nmap masscan hping3 slowhttptest hydra
	# brute force against SSH: a real SSH server run by the test itself
	# (dropbear-bin: the binaries alone, no service of its own)
	dropbear-bin
	# brute force on one keep-alive connection: ncrack (tests/integration/detect_respond.sh)
	ncrack
	# Kubernetes: the watch client's real-client checks (python3-kubernetes;
	# kubectl is not packaged in Debian 12: the test uses it when the machine
	# has it), the manifests' checks (yamllint, jq, node for the npm schema
	# validators in tests/k8s/validate, installed below with npm ci)
	python3-kubernetes yamllint jq nodejs
	# compliance report: its HTML page rendered in a real headless browser
	chromium
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
# Debian's nodejs comes without npm (NodeSource's has it built in).
if ! command -v npm >/dev/null 2>&1 &&
	! dpkg-query -W -f='${Status}' npm 2>/dev/null | grep -q 'install ok installed'; then
	missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages: ${missing[*]}" >&2
		echo "deps: run as root (or: apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# A fresh machine has no package lists yet; refresh them once per day at most.
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
		apt-get update -qq
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages for the manifests' schema checks, exactly as locked; again
# only when the lock file changed since the last install. Tests never fetch.
val="$(dirname "$0")/../tests/k8s/validate"
lock_sum=$(sha256sum "$val/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$val/node_modules/.ztagent-lock" 2>/dev/null)" != "$lock_sum" ]; then
	echo "deps: npm ci in tests/k8s/validate"
	(cd "$val" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
	echo "$lock_sum" >"$val/node_modules/.ztagent-lock"
fi
