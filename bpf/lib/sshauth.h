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
 * Logins a server refused in a session still open, out to the brute-force
 * detector (ZT_EV_REFUSED): the client (saddr, sport) and the server
 * (daddr, dport), addresses as in the maps' keys (16 bytes, IPv4 in the
 * first 4); count of them, kind ZT_REFUSED_SSH or _CLEAR, refused: the
 * session's so reported, these included. 1 once written. The caller has
 * taken the rate's token.
 */
static __always_inline int zt_refused_emit(__u8 origin, __u8 kind, __u8 count, __u8 refused,
					   __u8 family, const __u8 *saddr, const __u8 *daddr,
					   __u16 sport, __u16 dport, __u64 first_ns)
{
	struct zt_ev_refused *e = zt_event_begin(ZT_EV_REFUSED, sizeof(*e));

	if (!e)
		return 0;
	e->family = family;
	e->origin = origin;
	e->kind = kind;
	e->count = count;
	e->refused = refused;
	e->sport = sport;
	e->dport = dport;
	__builtin_memcpy(e->saddr, saddr, 16);
	__builtin_memcpy(e->daddr, daddr, 16);
	e->first_ns = first_ns;
	zt_event_end(e);
	zt_act_stat(kind == ZT_REFUSED_SSH ? ZT_AS_SSH_REFUSED : ZT_AS_CLEAR_REFUSED);
	return 1;
}

/*
 * A guess the SSH server refused (zt_ssh_auth_seg returned 1), reported:
 * then counted in a->live, which the session's end leaves out; 0 (a full
 * ring) leaves it to that end. The caller has taken the rate's token.
 */
static __always_inline int zt_ssh_refused_emit(__u8 origin, __u8 family, const __u8 *saddr,
					       const __u8 *daddr, __u16 sport, __u16 dport,
					       __u64 first_ns, struct zt_ssh_auth *a)
{
	__u8 n = a->live < 255 ? a->live + 1 : 255;

	if (!zt_refused_emit(origin, ZT_REFUSED_SSH, 1, n, family, saddr, daddr, sport, dport,
			     first_ns))
		return 0;
	a->live = n;
	return 1;
}

/*
 * 1 when a session's run of refused logins in the clear (refused, since
 * its last response that served) has some to report as it grows:
 * ZT_REFUSED_LIVE_FROM of them or more, not all reported yet (clear_live).
 */
static __always_inline int zt_clear_refused_due(__u8 refused, __u8 clear_live)
{
	return refused >= ZT_REFUSED_LIVE_FROM && refused > clear_live && refused < 255;
}

/*
 * The run's refusals not reported yet, reported (zt_clear_refused_due):
 * then counted in *clear_live, which the session's end leaves out.
 */
static __always_inline int zt_clear_refused_emit(__u8 origin, __u8 family, const __u8 *saddr,
						 const __u8 *daddr, __u16 sport, __u16 dport,
						 __u64 first_ns, __u8 refused, __u8 *clear_live)
{
	if (!zt_refused_emit(origin, ZT_REFUSED_CLEAR, refused - *clear_live, refused, family,
			     saddr, daddr, sport, dport, first_ns))
		return 0;
	*clear_live = refused;
	return 1;
}

#endif /* ZT_BPF_SSHAUTH_H */
