#!/usr/bin/env bash
# Integration: tests/integration/xdp_guard.sh with the agent's default
# xdp.mode (auto), which on the lab's veth uplink runs the guard on TC
# ingress (tc_guard): the same blocks, expiries, restart and detach.
LAB_XDP_MODE=auto XDP_GUARD_LAB=xdptc exec bash "$(dirname "$0")/xdp_guard.sh"
