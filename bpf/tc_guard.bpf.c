// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_guard: xdp_guard on an uplink's TC ingress hook, for devices where XDP
 * costs the traffic it passes (xdp.mode tc; auto on a veth). One source,
 * built twice: see the head of xdp_guard.bpf.c.
 */
#define ZT_GUARD_TC 1
#include "xdp_guard.bpf.c"
