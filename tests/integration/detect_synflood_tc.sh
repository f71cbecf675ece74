#!/usr/bin/env bash
# Integration: tests/integration/detect_synflood.sh with the agent's default
# xdp.mode (auto), which on the lab's veth uplink runs the guard on TC
# ingress (tc_guard): its challenges go back out with bpf_redirect.
LAB_XDP_MODE=auto DETECT_SYNFLOOD_LAB=rsyntc exec bash "$(dirname "$0")/detect_synflood.sh"
