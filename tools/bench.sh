#!/usr/bin/env bash
# `make bench`: figures measured side by side in one run, printed as ratios
# (absolute times drift on shared machines). Asserts only correctness:
# a wrong verdict or a failed load makes it exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== 1. XDP guard per packet, against an empty program and xdp-filter"
build/tools/bench_xdp 2> >(grep -v 'skipping unrecognized data section' >&2)

echo
echo "== 2. 1M entries through the daemon: ztctl block import, end to end"
. tools/lab.sh
LAB_BLOCKLIST_MAX=2097152
lab_init bench
lab_write_config
lab_agent_start
feed="$LAB_DIR/feed.txt"
# 131072 IPv4 /32s in 198.18.0.0/15 and 868928 IPv6 /128s in 2001:db8::/32:
# map data only, no packet is sent to them.
python3 - "$feed" <<'PY'
import random, sys
random.seed()
with open(sys.argv[1], "w") as f:
    for i in range(131072):
        f.write(f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}\n")
    seen = set()
    while len(seen) < 1000000 - 131072:
        seen.add(random.getrandbits(96))
    for v in seen:
        h = f"{(0x20010db8 << 96) | v:032x}"
        f.write(":".join(h[i:i + 4] for i in range(0, 32, 4)) + "\n")
PY
t0=$(date +%s.%N)
ztctl block import "$feed" --kind threat-intel --source feed --feed-id 1 >/dev/null
t1=$(date +%s.%N)
ztctl block import "$feed" --kind threat-intel --source feed --feed-id 1 >/dev/null
t2=$(date +%s.%N)
lab_agent_stop
t3=$(date +%s.%N)
lab_agent_start
t4=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import sys
t0, t1, t2, t3, t4 = map(float, sys.argv[1:])
print(f"import 1M new entries:            {t1 - t0:6.2f} s   (target < 2 s: {'met' if t1 - t0 < 2 else 'NOT met'})")
print(f"import the same 1M again:         {t2 - t1:6.2f} s   (all replaced)")
print(f"restart over 1M pinned entries:   {t4 - t3:6.2f} s   (until the API answers)")
PY
grep -c . "$feed" >/dev/null
ztctl status | grep -E '^blocklist_v[46] '
