/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the TC programs share about an skb (lib/parse.h, which userspace
 * tests compile too, calls no helper).
 */
#ifndef ZT_BPF_SKB_H
#define ZT_BPF_SKB_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"

#define ZT_TCP_OFF_SEQ 4 /* the TCP header's sequence number */
#define ZT_TCP_OFF_ACK 8 /* ... its acknowledgment number */

/* The TCP header's 32-bit word at off (ZT_TCP_OFF_*) into *v, host order; -1 when unreadable. */
static __always_inline int zt_skb_tcp_word(struct __sk_buff *skb, const struct zt_pkt *p, __u32 off,
					   __u32 *v)
{
	__u32 be;

	if (bpf_skb_load_bytes(skb, (__u32)p->l4_off + off, &be, sizeof(be)))
		return -1;
	*v = bpf_ntohl(be);
	return 0;
}

/*
 * After a parse that ended with r: 1 when it is to run again, because a
 * header it found cut at the end of the linear part of a longer skb was
 * not malformed yet, and the headers are now pulled in. The pass path never
 * gets here (a stack's or a NIC's skb has its headers linear). The pull
 * moves skb->data: the caller reads the packet's pointers again.
 */
static __always_inline int zt_skb_pull_headers(struct __sk_buff *skb, __u32 r)
{
	__u32 len = skb->len;

	if (r == ZT_XR_OK || r == ZT_XR_NOT_IP || len <= (__u32)(skb->data_end - skb->data))
		return 0;
	return bpf_skb_pull_data(skb, len < ZT_MAX_HDR_OFF ? len : ZT_MAX_HDR_OFF) == 0;
}

/*
 * The VLAN tag the kernel took out of the frame before the TC hooks
 * (skb->vlan_tci: a NIC's or a veth's offload), for a record that carries
 * it beside the frame: *proto in network order (__sk_buff.vlan_proto is
 * big-endian) and *tci; left as they are when the skb holds none.
 */
static __always_inline void zt_skb_vlan_tag(struct __sk_buff *skb, __u16 *proto, __u16 *tci)
{
	if (skb->vlan_present) {
		*proto = (__u16)skb->vlan_proto;
		*tci = (__u16)skb->vlan_tci;
	}
}

#endif /* ZT_BPF_SKB_H */
