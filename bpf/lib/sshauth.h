/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SSH servers' answers, read by their sizes (include/ztagent.h, struct
 * zt_ssh_auth): what the TC programs need of the packet for it, the first
 * bytes of a server's first payload.
 */
#ifndef ZT_BPF_SSHAUTH_H
#define ZT_BPF_SSHAUTH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/refusal.h" /* ZT_REFUSAL_MAX_OFF: where a payload can start */
#include "lib/events.h"
#include "lib/guard.h"

/* 1 when the payload at off (payload bytes) begins an SSH identification string ("SSH-"). */
static __always_inline int zt_ssh_banner_skb(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	__u8 b[4];

	if (payload < sizeof(b) || off > ZT_REFUSAL_MAX_OFF ||
	    bpf_skb_load_bytes(skb, off, b, sizeof(b)))
		return 0;
	return zt_ssh_banner(b, sizeof(b));
}

/*
 * A guess the server refused (zt_ssh_auth_seg returned 1) out to the
 * brute-force detector (ZT_EV_SSH_REFUSED): the client (saddr, sport) and
 * the server (daddr, dport), addresses as in the maps' keys (16 bytes,
 * IPv4 in the first 4). 1 once written, and then counted in a->live, which
 * the session's end leaves out; 0 (a full ring) leaves it to that end.
 * The caller has taken the rate's token.
 */
static __always_inline int zt_ssh_refused_emit(__u8 origin, __u8 family, const __u8 *saddr,
					       const __u8 *daddr, __u16 sport, __u16 dport,
					       __u64 first_ns, struct zt_ssh_auth *a)
{
	struct zt_ev_ssh_refused *e = zt_event_begin(ZT_EV_SSH_REFUSED, sizeof(*e));

	if (!e)
		return 0;
	if (a->live < 255)
		a->live++;
	e->family = family;
	e->origin = origin;
	e->refused = a->live;
	e->sport = sport;
	e->dport = dport;
	__builtin_memcpy(e->saddr, saddr, 16);
	__builtin_memcpy(e->daddr, daddr, 16);
	e->first_ns = first_ns;
	zt_event_end(e);
	zt_act_stat(ZT_AS_SSH_REFUSED);
	return 1;
}

#endif /* ZT_BPF_SSHAUTH_H */
