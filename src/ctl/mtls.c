// SPDX-License-Identifier: GPL-2.0-only
/* ztctl mtls: the workload mTLS tunnel's certificates, tunnels, handshakes and refusals. */
#include "ctl/ctl.h"

/* "key n, key n" of a map's non-zero counters; "none" when all are zero. */
static void counters_line(const char *label, const cbor_item_t *m)
{
	struct cbor_pair *p = m && cbor_isa_map(m) ? cbor_map_handle(m) : NULL;
	size_t n = m && cbor_isa_map(m) ? cbor_map_size(m) : 0, shown = 0;
	char k[64];

	printf("%-12s", label);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = cbor_isa_uint(p[i].value) ? cbor_get_int(p[i].value) : 0;

		if (!v || zt_cbor_str(p[i].key, k, sizeof(k)) < 0)
			continue;
		printf("%s%s %llu", shown++ ? ", " : " ", k, (unsigned long long)v);
	}
	printf("%s\n", shown ? "" : " none");
}

static int run_mtls_status(struct ctl *ctl, struct opts *o)
{
	static const char *const sh[] = { "SPIFFE ID", "PODS", "NOT AFTER", "EXPIRES IN",
					  "SERIAL" };
	static const bool sr[5] = { false, true, false, true, false };
	static const char *const th[] = { "ROLE", "SRC", "DST", "PEER", "PEER ID", "OUT", "IN" };
	static const bool tr[7] = { false, false, false, false, false, true, true };
	struct table st = { .ncols = 5, .heads = sh, .right = sr };
	struct table tt = { .ncols = 7, .heads = th, .right = tr };
	static const char *const ph[] = { "POD CIDR", "AGENT", "SOURCE", "NODE", "NOTE" };
	static const bool pr[5] = { false };
	struct table pt = { .ncols = 5, .heads = ph, .right = pr };
	const cbor_item_t *d, *a;
	cbor_item_t *reply;
	uint64_t now = zt_now_unix();
	char b1[2100], b2[64], b3[64], b4[64], b5[2100], b6[32], b7[32];
	int r = call(ctl, request(ZT_OP_MTLS_STATUS), &reply, &d);

	(void)o;
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	printf("mode %s, trust domain %s, %s\n", str_of(d, "mode", b2, sizeof(b2), "?"),
	       str_of(d, "trust_domain", b1, sizeof(b1), "?"),
	       str_of(d, "state", b5, sizeof(b5), "?"));
	printf("tunnel port %llu, steer port %llu\n\n",
	       (unsigned long long)u64_of(d, "tunnel_port"),
	       (unsigned long long)u64_of(d, "steer_port"));
	/* Where each destination's agent is: mtls.peers (config) or the cluster's Nodes (k8s). */
	a = zt_cbor_get(d, "peers");
	for (size_t i = 0; i < arr_len(a); i++) {
		const cbor_item_t *p = arr_at(a, i);
		char cidr[64], agent[80], src[16], node[256], note[600];

		str_of(p, "agent", b2, sizeof(b2), "?");
		snprintf(agent, sizeof(agent), strchr(b2, ':') ? "[%s]:%llu" : "%s:%llu", b2,
			 (unsigned long long)u64_of(p, "port"));
		str_of(p, "problem", note, sizeof(note), "");
		if (bool_of(p, "self"))
			snprintf(note, sizeof(note), "this node (local delivery)");
		table_add(&pt, str_of(p, "cidr", cidr, sizeof(cidr), "-")[0] ? cidr : "-",
			  bool_of(p, "self") ? "-" : agent,
			  str_of(p, "source", src, sizeof(src), "?"),
			  str_of(p, "node", node, sizeof(node), "")[0] ? node : "-",
			  note[0] ? note : "");
	}
	if (pt.rows)
		table_print(&pt);
	else
		printf("no peers (mtls.peers is empty and no Node with a podCIDR is known)\n");
	if (u64_of(d, "peer_overlaps"))
		printf("node pod CIDR overlaps refused: %llu (see the log: mtls_peer_overlap)\n",
		       (unsigned long long)u64_of(d, "peer_overlaps"));
	printf("\n");
	a = zt_cbor_get(d, "svids");
	for (size_t i = 0; i < arr_len(a); i++) {
		const cbor_item_t *s = arr_at(a, i);
		int64_t na = i64_of(s, "not_after");

		snprintf(b6, sizeof(b6), "%llu", (unsigned long long)u64_of(s, "pods"));
		table_add(&st, str_of(s, "id", b1, sizeof(b1), "?"), b6,
			  iso_time((uint64_t)na, b2, sizeof(b2)),
			  na > (int64_t)now ? duration_s((uint64_t)na - now, b3, sizeof(b3)) :
					      "EXPIRED",
			  str_of(s, "serial", b4, sizeof(b4), "?"));
	}
	if (st.rows)
		table_print(&st);
	else
		printf("no workload certificates (no pods hosted here, or mTLS is not running)\n");
	if (u64_of(d, "svid_mint_failures"))
		printf("certificate mints that failed: %llu (kept the current ones while valid; "
		       "see the log: svid_renew_failed)\n",
		       (unsigned long long)u64_of(d, "svid_mint_failures"));
	printf("\n");
	a = zt_cbor_get(d, "tunnels");
	for (size_t i = 0; i < arr_len(a); i++) {
		const cbor_item_t *t = arr_at(a, i);
		char src[64], dst[64], peer[64];

		snprintf(b6, sizeof(b6), "%llu", (unsigned long long)u64_of(t, "bytes_out"));
		snprintf(b7, sizeof(b7), "%llu", (unsigned long long)u64_of(t, "bytes_in"));
		table_add(&tt,
			  bool_of(t, "local") ? "local" : str_of(t, "role", b2, sizeof(b2), "?"),
			  str_of(t, "src", src, sizeof(src), "?"),
			  str_of(t, "dst", dst, sizeof(dst), "?"),
			  str_of(t, "peer", peer, sizeof(peer), "?"),
			  str_of(t, "peer_id", b1, sizeof(b1), "")[0] ? b1 : "(handshake)", b6, b7);
	}
	if (tt.rows)
		table_print(&tt);
	else
		printf("no open tunnels\n");
	printf("\n");
	a = zt_cbor_get(d, "handshakes");
	printf("handshakes   full %llu, resumed %llu\n", (unsigned long long)u64_of(a, "full"),
	       (unsigned long long)u64_of(a, "resumed"));
	counters_line("refusals", zt_cbor_get(d, "refusals"));
	counters_line("traffic", zt_cbor_get(d, "traffic"));
	counters_line("warm pool", zt_cbor_get(d, "pool"));
	counters_line("datapath", zt_cbor_get(d, "datapath"));
	table_free(&st);
	table_free(&tt);
	table_free(&pt);
	cbor_decref(&reply);
	return EXIT_OK;
}

const struct cmd ctl_mtls_cmds[] = {
	{ "mtls status", "ztctl mtls status [-o json]",
	  "Shows workload mTLS on this node: the mode and trust domain, the peers (which\n"
	  "node's agent each pod CIDR goes to, from mtls.peers or the cluster's Nodes), the workload\n"
	  "certificates (X.509-SVIDs) in use with their expiry, open tunnels with the\n"
	  "authenticated peer identity, handshakes, refusals by reason (unknown_ca,\n"
	  "expired, wrong_identity, version, plaintext, tampered, ...), bytes relayed,\n"
	  "the warm pool of ready tunnel connections (spares made, taken ready or still\n"
	  "handshaking, missed, failed, discarded unused),\n"
	  "and the datapath's counters: packets steered to the agent, and dropped because\n"
	  "no agent was there (fail closed) or because clear text went around the tunnel.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl mtls status\n",
	  0, 0, 0, NULL, run_mtls_status },
};
const size_t ctl_mtls_ncmds = ZT_ARRAY_SIZE(ctl_mtls_cmds);
