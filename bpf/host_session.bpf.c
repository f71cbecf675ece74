// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Host sessions: the TCP sessions a service of the node itself accepted
 * (a service in the node's own network namespace, hostNetwork: sshd, a
 * database, an ingress), sent to the daemon when they close, for the
 * brute-force detector. tc_endpoint sees the sessions of endpoints on
 * their veths; a session that ends in the node's own stack crosses only
 * the uplink, where nothing keeps flows. The kernel's socket state
 * changes say it all (the inet_sock_set_state tracepoint, raw: 4.17+):
 * a socket that goes from SYN_RECV to ESTABLISHED was accepted (a passive
 * open; an active one comes from SYN_SENT), and its move to CLOSE ends the
 * session, whatever closed it (both FINs, a reset, a timeout). The socket
 * then still holds its counters: payload bytes received and acknowledged,
 * segments in and out (tcp_sock, RFC 4898's names); what the service
 * answered (an HTTP success, logins refused) tc_uplink has kept by
 * connection (lib/hostreply.h).
 *
 * Only sockets of the network namespace the daemon runs in (cfg_netns):
 * an endpoint's sockets are in namespaces of their own, and tc_endpoint
 * has their sessions already. Loopback and the node talking to itself are
 * left out. Written while probe events are on (guard_cfg), within
 * probe_rate a second per CPU in the session bucket tc_endpoint's session
 * ends use too (its clock: CLOCK_MONOTONIC, read finely here, where a
 * tracing program may not read it coarsely).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "ztagent.h"
#include "lib/events.h"
#include "lib/guard.h"
#include "lib/hostreply.h"
#include "lib/parse.h" /* ZT_AF_INET, ZT_AF_INET6 */

#define ZT_TCP_ESTABLISHED 1
#define ZT_TCP_SYN_RECV 3
#define ZT_TCP_CLOSE 7

/* As much of the kernel's structs as the session needs; CO-RE finds the offsets. */
struct ns_common___zt {
	unsigned int inum;
} __attribute__((preserve_access_index));
struct net___zt {
	struct ns_common___zt ns;
} __attribute__((preserve_access_index));
struct possible_net_t___zt {
	struct net___zt *net;
} __attribute__((preserve_access_index));
struct in6_addr___zt {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));
struct sock_common___zt {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct possible_net_t___zt skc_net;
	struct in6_addr___zt skc_v6_daddr;
	struct in6_addr___zt skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));
struct sock___zt {
	struct sock_common___zt __sk_common;
} __attribute__((preserve_access_index));
struct tcp_sock___zt {
	__u32 segs_in;
	__u32 segs_out;
	__u64 bytes_received;
	__u64 bytes_acked;
	__u32 data_segs_in;
	__u32 data_segs_out;
} __attribute__((preserve_access_index));

/* Set by the daemon before load: the inode number of its network namespace. */
const volatile __u32 cfg_netns = 0;

/* An accepted socket of that namespace, as it was when its handshake completed. */
struct zt_accepted {
	__u64 first_ns; /* CLOCK_BOOTTIME */
	/*
	 * The service's port: by the move to CLOSE the socket has given its
	 * port back (inet_put_port zeroes inet_num before the tracepoint).
	 */
	__u16 port;
	__u16 _pad[3];
};

/*
 * By socket. An LRU: a node that holds more accepted sockets at once
 * loses the oldest ones' ends, never a new one's.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct zt_accepted);
} host_accepted SEC(".maps");

/* An IPv4 address the node talks to itself on: 127/8, 0/8. */
static __always_inline int zt_local4(__u32 a)
{
	__u8 b = (__u8)(bpf_ntohl(a) >> 24);

	return b == 127 || b == 0;
}

static __always_inline int zt_session_fill(struct zt_ev_host_session *e, struct sock___zt *sk)
{
	struct tcp_sock___zt *tp = (void *)sk;
	unsigned short fam = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (fam == ZT_AF_INET) {
		__u32 s = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		if (zt_local4(s) || s == d)
			return -1;
		e->family = 4;
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else if (fam == ZT_AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		/* An IPv4 client of a dual-stack socket (::ffff:a.b.c.d) is an IPv4 one. */
		if (!(e->saddr[0] | e->saddr[1] | e->saddr[2] | e->saddr[3] | e->saddr[4] |
		      e->saddr[5] | e->saddr[6] | e->saddr[7] | e->saddr[8] | e->saddr[9]) &&
		    e->saddr[10] == 0xff && e->saddr[11] == 0xff) {
			__u32 s, d;

			__builtin_memcpy(&s, &e->saddr[12], 4);
			__builtin_memcpy(&d, &e->daddr[12], 4);
			if (zt_local4(s) || s == d)
				return -1;
			__builtin_memset(e->saddr, 0, 16);
			__builtin_memset(e->daddr, 0, 16);
			__builtin_memcpy(e->saddr, &s, 4);
			__builtin_memcpy(e->daddr, &d, 4);
			e->family = 4;
		} else {
			__u32 a[4], b[4];

			/* ::1, or the node's own address on both ends. */
			__builtin_memcpy(a, e->saddr, 16);
			__builtin_memcpy(b, e->daddr, 16);
			if (a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3])
				return -1;
			if (!(e->saddr[0] | e->saddr[1] | e->saddr[2] | e->saddr[3] | e->saddr[4] |
			      e->saddr[5] | e->saddr[6] | e->saddr[7] | e->saddr[8] | e->saddr[9] |
			      e->saddr[10] | e->saddr[11] | e->saddr[12] | e->saddr[13] |
			      e->saddr[14]) &&
			    e->saddr[15] == 1)
				return -1;
			e->family = 6;
		}
	} else {
		return -1;
	}
	e->sport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/*
	 * The counters run in sequence space: a FIN takes one number, so a
	 * connection closed without a byte either way (a TCP health check,
	 * nc -z) reads 1 and 1, a request without an answer. Payload is
	 * there only where a segment carried data; where it did, the FIN's
	 * one is left in.
	 */
	e->bytes_in = BPF_CORE_READ(tp, data_segs_in) ? BPF_CORE_READ(tp, bytes_received) : 0;
	e->bytes_out = BPF_CORE_READ(tp, data_segs_out) ? BPF_CORE_READ(tp, bytes_acked) : 0;
	e->segs_in = BPF_CORE_READ(tp, segs_in);
	e->segs_out = BPF_CORE_READ(tp, segs_out);
	return 0;
}

/* What tc_uplink read of the service's answers on this connection (lib/hostreply.h), taken. */
static __always_inline void zt_session_replies(struct zt_ev_host_session *e, __u32 data_segs_out)
{
	struct zt_host_reply_key k = {};
	struct zt_host_reply *v;

	zt_host_reply_key(&k, e->family, e->dport, e->sport, e->daddr, e->saddr);
	v = bpf_map_lookup_elem(&host_replies, &k);
	if (!v)
		return;
	e->served = v->served;
	/* Those reported as they were (ZT_EV_REFUSED) apart: the end adds the rest. */
	if (v->last_refused) {
		e->refused = v->refused - v->ssh.clear_live;
		e->refused_live = v->ssh.clear_live;
	}
	e->challenged = zt_host_reply_challenged(v, data_segs_out);
	e->ssh_fails = zt_ssh_auth_failed(&v->ssh);
	e->ssh_live = zt_ssh_auth_live(&v->ssh);
	bpf_map_delete_elem(&host_replies, &k);
}

SEC("raw_tracepoint/inet_sock_set_state")
int host_session(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock___zt *sk = (void *)ctx->args[0];
	int oldstate = (int)ctx->args[1], newstate = (int)ctx->args[2];
	struct zt_ev_host_session s = {}, *e;
	struct zt_accepted a = {}, *acc;
	struct zt_guard_cfg *cfg;
	__u64 key = (__u64)(long)sk;

	if (newstate != ZT_TCP_CLOSE &&
	    !(oldstate == ZT_TCP_SYN_RECV && newstate == ZT_TCP_ESTABLISHED))
		return 0;
	if (!cfg_netns || BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) != cfg_netns)
		return 0;
	if (newstate == ZT_TCP_ESTABLISHED) {
		a.first_ns = bpf_ktime_get_boot_ns();
		a.port = BPF_CORE_READ(sk, __sk_common.skc_num);
		bpf_map_update_elem(&host_accepted, &key, &a, BPF_ANY);
		return 0;
	}
	acc = bpf_map_lookup_elem(&host_accepted, &key);
	if (!acc)
		return 0;
	a = *acc;
	bpf_map_delete_elem(&host_accepted, &key);
	s.dport = a.port;
	cfg = zt_guard_cfg_get();
	if (!cfg || !(cfg->flags & ZT_GCF_PROBES) || zt_session_fill(&s, sk) < 0)
		return 0;
	zt_session_replies(&s, BPF_CORE_READ((struct tcp_sock___zt *)sk, data_segs_out));
	if (!zt_act_rate_ok(ZT_AR_SESSION, cfg->probe_rate, bpf_ktime_get_ns()))
		return 0;
	e = zt_event_begin(ZT_EV_HOST_SESSION, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memcpy((char *)e + sizeof(e->hdr), (char *)&s + sizeof(s.hdr),
			 sizeof(s) - sizeof(s.hdr));
	e->first_ns = a.first_ns;
	zt_event_end(e);
	zt_act_stat(ZT_AS_HOST_SESSIONS);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
