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

/* 1 when the payload at off (payload bytes) begins an SSH identification string ("SSH-"). */
static __always_inline int zt_ssh_banner_skb(struct __sk_buff *skb, __u32 off, __u32 payload)
{
	__u8 b[4];

	if (payload < sizeof(b) || off > ZT_REFUSAL_MAX_OFF ||
	    bpf_skb_load_bytes(skb, off, b, sizeof(b)))
		return 0;
	return zt_ssh_banner(b, sizeof(b));
}

#endif /* ZT_BPF_SSHAUTH_H */
