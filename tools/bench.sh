#!/usr/bin/env bash
# `make bench`: figures measured side by side in one run and printed as
# ratios (absolute times drift on shared machines), with their targets
# beside them. Asserts only correctness: a wrong verdict, a failed load or
# a failed import makes it exit non-zero.
#
#   tools/bench.sh           both parts
#   tools/bench.sh xdp       1. only: the XDP guard per packet (build/tools/bench_xdp)
#   tools/bench.sh daemon    2. only: 1M entries through ztctl and the daemon
#
# Uses only what `make deps` installs. Part 2 runs the agent in the lab's
# network namespaces (tools/lab.sh), which its EXIT trap removes; the
# blocklist entries are map data only, and no packet is sent anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

parts=${1:-all}
case $parts in
all | xdp | daemon) ;;
*)
	echo "usage: tools/bench.sh [xdp|daemon]" >&2
	exit 2
	;;
esac
for bin in build/tools/bench_xdp build/ztagent build/ztctl; do
	if [ ! -x "$bin" ]; then
		echo "bench: $bin is missing: run 'make bench'" >&2
		exit 1
	fi
done
rc=0

if [ "$parts" != daemon ]; then
	echo "== 1. XDP guard per packet, beside an empty program and xdp-filter"
	build/tools/bench_xdp || rc=$?
	[ $rc -eq 0 ] || echo "bench: bench_xdp failed (exit $rc)" >&2
	[ "$parts" = xdp ] && exit $rc
	echo
fi

echo "== 2. 1M entries through the daemon: ztctl block import, end to end"
# shellcheck source=tools/lab.sh
. tools/lab.sh
lab_init bench
LAB_BLOCKLIST_MAX=2097152 # room for two 1M sets at once
lab_write_config
lab_agent_start

# Two disjoint sets of 1,000,000 distinct entries each, in documentation and
# benchmarking ranges: set A is every IPv4 /32 of 198.18.0.0/15 (131072)
# and 868928 random IPv6 /128s in 2001:db8::/32; set B is 1000000 other
# random IPv6 /128s in 2001:db8::/32.
feed_a="$LAB_DIR/feed-a.txt"
feed_b="$LAB_DIR/feed-b.txt"
python3 - "$feed_a" "$feed_b" <<'PY'
import random, sys

rng = random.SystemRandom()
seen = set()

def v6(n):
    out = []
    while len(out) < n:
        v = rng.getrandbits(96)
        if v not in seen:
            seen.add(v)
            h = f"{(0x20010db8 << 96) | v:032x}"
            out.append(":".join(h[i:i + 4] for i in range(0, 32, 4)))
    return out

with open(sys.argv[1], "w") as f:
    for i in range(131072):
        f.write(f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}\n")
    f.write("\n".join(v6(1000000 - 131072)) + "\n")
with open(sys.argv[2], "w") as f:
    f.write("\n".join(v6(1000000)) + "\n")
PY

# Runs one import; prints its line and sets SECS and ADDED.
timed_import() {
	local file=$1 out t0 t1
	t0=$EPOCHREALTIME
	out=$(ztctl block import "$file" --kind threat-intel --source feed --feed-id 1)
	t1=$EPOCHREALTIME
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	ADDED=$(sed -n 's/.*: \([0-9]*\) added.*/\1/p' <<<"$out")
	echo "  ztctl: $out"
}

report() {
	local what=$1 n=$2
	awk -v w="$what" -v s="$SECS" -v n="$n" 'BEGIN {
		printf "  %-34s %7.2f s  %6.2f M entries/s   (target < 2 s: %s)\n",
			w, s, n / s / 1e6, s < 2 ? "met" : "NOT met" }'
}

timed_import "$feed_a"
if [ "$ADDED" != 1000000 ]; then
	echo "bench: the first import added ${ADDED:-nothing}, not 1000000 entries" >&2
	exit 1
fi
report "import 1M new entries (set A):" 1000000
echo "  ztctl block list --limit 1:"
ztctl block list --limit 1 | sed 's/^/    /'

timed_import "$feed_b"
if [ "$ADDED" != 1000000 ]; then
	echo "bench: the second import added ${ADDED:-nothing}, not 1000000 entries" >&2
	exit 1
fi
report "import 1M more (set B, 2M in all):" 1000000

t0=$EPOCHREALTIME
lab_agent_stop
t1=$EPOCHREALTIME
lab_agent_start
t2=$EPOCHREALTIME
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
	printf "  %-34s %7.2f s\n  %-34s %7.2f s   (until the API answers again)\n",
		"agent stop with 2M entries:", b - a, "agent restart over 2M pinned:", c - b }'
ztctl status | grep -E '^ *blocklist_v[46] ' | sed 's/^ */  map /' || true
exit $rc
