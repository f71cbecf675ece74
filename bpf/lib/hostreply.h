/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the node's own TCP services answered, by connection (ZT_PIN
 * host_replies): tc_uplink reads the first bytes of each segment a socket
 * of the node sends out through an uplink (lib/refusal.h: an HTTP success or
 * a DNS answer,
 * a login refused), and host_session.bpf.c takes the connection's entry
 * when its socket closes, into the session it reports. So a session of a
 * service in the host network is judged as an endpoint's is: a health
 * check a 200 answered is an exchange, a 401 or a 530 a refused login.
 * Without per-connection state at the uplink, every segment is read as if
 * it began a response (a body that happens to start with "HTTP/1.1 200"
 * is read as one too). Only a segment whose first bytes say something
 * looks its connection up (and an SSH server's: its identification makes
 * the entry, its small segments after it are counted by size, struct
 * zt_ssh_auth): the rest of a bulk transfer pays no lookup, and
 * whether anything followed a challenge the socket's own count of data
 * segments tells at the close.
 */
#ifndef ZT_BPF_HOSTREPLY_H
#define ZT_BPF_HOSTREPLY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/refusal.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct zt_host_reply_key);
	__type(value, struct zt_host_reply);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} host_replies SEC(".maps");

/* A connection's key: the node's end, the client's; addresses 16 bytes (IPv4 first, rest zero). */
static __always_inline void zt_host_reply_key(struct zt_host_reply_key *k, __u8 family,
					      __u16 node_port, __u16 client_port, const void *node,
					      const void *client)
{
	k->family = family;
	k->node_port = node_port;
	k->client_port = client_port;
	__builtin_memcpy(k->node, node, sizeof(k->node));
	__builtin_memcpy(k->client, client, sizeof(k->client));
}

/*
 * What reply r (lib/refusal.h, not 0) of a segment tells of connection v;
 * segs: the socket's data_segs_out with that segment.
 */
static __always_inline void zt_host_reply_apply(struct zt_host_reply *v, int r, __u32 segs)
{
	v->challenged = r == ZT_REPLY_CHALLENGE;
	if (r == ZT_REPLY_CHALLENGE) {
		v->chal_segs = segs;
	} else if (zt_reply_served(r, v->refused)) {
		/* A run of refusals ends (zt_ct_val.refused): a login's challenges, or one got in. */
		v->served = 1;
		v->last_refused = 0;
		v->refused = 0;
		v->ssh.clear_live = 0;
	} else if (r == ZT_REPLY_REFUSED) {
		if (v->refused < 255)
			v->refused++;
		v->last_refused = 1;
	}
	/* Anything else (a +PONG after a refusal) leaves the refusal standing. */
}

/*
 * At the close: the session ended on the question when the socket sent no
 * data segment after the challenge's (data_segs_out then).
 */
static __always_inline int zt_host_reply_challenged(const struct zt_host_reply *v,
						    __u32 data_segs_out)
{
	return v->challenged && v->chal_segs == data_segs_out;
}

#endif /* ZT_BPF_HOSTREPLY_H */
