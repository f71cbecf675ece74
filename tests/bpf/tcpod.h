/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One pod behind tc_endpoint for the BPF tests that look at one decision
 * (test_ioc, test_tc_block): the skeleton loaded without pins, its ring
 * buffer, the pod's endpoint entry, ipcache entries, the policy generation,
 * and one packet run through BPF_PROG_TEST_RUN. Include after cmocka.h,
 * pktgen.h and tc_endpoint.skel.h.
 */
#ifndef ZT_TESTS_BPF_TCPOD_H
#define ZT_TESTS_BPF_TCPOD_H

#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ztagent.h"

struct tcpod {
	struct tc_endpoint *skel;
	struct ring_buffer *rb;
	__u32 ifindex; /* the pod's (a veth of the test's namespace) */
	int n_cpus;
};

static inline void tcpod_addr(const char *s, __u8 out[16])
{
	memset(out, 0, 16);
	assert_int_equal(inet_pton(strchr(s, ':') ? AF_INET6 : AF_INET, s, out), 1);
}

/*
 * The skeleton loaded (no pins, small maps), events to on_event(ctx), the
 * endpoint at ifindex with ep_id and identity. 0 or -1.
 */
static inline int tcpod_open(struct tcpod *p, __u32 ifindex, __u32 ep_id, __u32 identity,
			     ring_buffer_sample_fn on_event, void *ctx)
{
	struct zt_endpoint_info ep = { .ep_id = ep_id, .identity = identity };
	struct bpf_map *map;

	p->ifindex = ifindex;
	p->n_cpus = libbpf_num_possible_cpus();
	p->skel = tc_endpoint__open();
	if (!p->skel)
		return -1;
	bpf_object__for_each_map (map, p->skel->obj)
		bpf_map__set_pin_path(map, NULL);
	bpf_map__set_max_entries(p->skel->maps.conntrack, 1024);
	bpf_map__set_max_entries(p->skel->maps.policy, 1024);
	bpf_map__set_max_entries(p->skel->maps.events, 1 << 16);
	if (tc_endpoint__load(p->skel))
		return -1;
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events), on_event, ctx, NULL);
	if (!p->rb)
		return -1;
	return bpf_map_update_elem(bpf_map__fd(p->skel->maps.endpoints), &p->ifindex, &ep, 0) ? -1 :
												0;
}

static inline void tcpod_close(struct tcpod *p)
{
	ring_buffer__free(p->rb);
	tc_endpoint__destroy(p->skel);
}

static inline void tcpod_set_gen(struct tcpod *p, __u32 gen)
{
	struct zt_pol_state st = { .gen = gen };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(p->skel->maps.pol_state), &zero, &st, 0),
			 0);
}

/* An ipcache entry of slot for a/plen: identity id, endpoint ep (0: not local). */
static inline void tcpod_ipc_add(struct tcpod *p, __u8 slot, const char *a, int plen, __u32 id,
				 __u32 ep)
{
	struct zt_ipcache_val v = { .identity = id, .ep_id = ep };

	if (strchr(a, ':')) {
		struct zt_ipcache_key6 k = { .prefixlen = 8 + (__u32)plen, .slot = slot };

		tcpod_addr(a, k.addr);
		assert_int_equal(
			bpf_map_update_elem(bpf_map__fd(p->skel->maps.ipcache_v6), &k, &v, 0), 0);
	} else {
		struct zt_ipcache_key4 k = { .prefixlen = 8 + (__u32)plen, .slot = slot };
		__u8 b[16];

		tcpod_addr(a, b);
		memcpy(k.addr, b, 4);
		assert_int_equal(
			bpf_map_update_elem(bpf_map__fd(p->skel->maps.ipcache_v4), &k, &v, 0), 0);
	}
}

/*
 * One packet src -> dst (proto, ports, 10 bytes of payload; TCP with
 * tcp_flags) through prog on the pod's interface, then the events read.
 * The program's verdict.
 */
static inline int tcpod_run(struct tcpod *p, struct bpf_program *prog, const char *src,
			    const char *dst, int proto, int sport, int dport, __u8 tcp_flags)
{
	struct pg_spec g = { .family = strchr(src, ':') ? 6 : 4,
			     .src = src,
			     .dst = dst,
			     .proto = (uint8_t)proto,
			     .sport = (uint16_t)sport,
			     .dport = (uint16_t)dport,
			     .payload = 10 };
	struct pg_pkt pk;
	struct __sk_buff ctx = { .ifindex = p->ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(pg_build(&g, &pk), 0);
	if (proto == IPPROTO_TCP)
		pk.buf[pk.off[PG_L4] + 13] = tcp_flags;
	o.data_in = pk.buf;
	o.data_size_in = (__u32)pk.len;
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &o), 0);
	ring_buffer__consume(p->rb);
	return (int)o.retval;
}

/* The sum over CPUs of the packets counted in slot of a per-CPU zt_counter array. */
static inline __u64 tcpod_counter(struct tcpod *p, struct bpf_map *map, __u32 slot)
{
	struct zt_counter v[p->n_cpus];
	__u64 sum = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(map), &slot, v), 0);
	for (int i = 0; i < p->n_cpus; i++)
		sum += v[i].packets;
	return sum;
}

#endif /* ZT_TESTS_BPF_TCPOD_H */
