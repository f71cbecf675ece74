// SPDX-License-Identifier: GPL-2.0-only
/* ztctl flows: policy verdicts on new flows, once or followed. */
#include "ctl/ctl.h"

static void print_flow(struct ctl *ctl, const cbor_item_t *f)
{
	char t[40], v[16], p[16], sa[64], da[64], sw[300], dw[300], rule[300], dir[16], ifn[32];

	if (ctl->json) {
		zt_cbor_to_json(f, stdout, false);
		printf("\n");
		return;
	}
	str_of(f, "time", t, sizeof(t), "?");
	str_of(f, "verdict", v, sizeof(v), "?");
	str_of(f, "protocol", p, sizeof(p), "?");
	str_of(f, "src", sa, sizeof(sa), "?");
	str_of(f, "dst", da, sizeof(da), "?");
	str_of(f, "src_workload", sw, sizeof(sw), "?");
	str_of(f, "dst_workload", dw, sizeof(dw), "?");
	str_of(f, "rule", rule, sizeof(rule), "?");
	str_of(f, "direction", dir, sizeof(dir), "?");
	str_of(f, "interface", ifn, sizeof(ifn), "?");
	printf("%s %-7s %s %s:%llu (%s, id %llu) -> %s:%llu (%s, id %llu) %s on %s%s: %s\n", t, v,
	       p, sa, (unsigned long long)u64_of(f, "sport"), sw,
	       (unsigned long long)u64_of(f, "src_identity"), da,
	       (unsigned long long)u64_of(f, "dport"), dw,
	       (unsigned long long)u64_of(f, "dst_identity"), dir, ifn,
	       bool_of(f, "revoked") ? " (revoked)" : "", rule);
}

static void flow_filters(cbor_item_t *req, const struct opts *o)
{
	if (o->verdict)
		put_str(req, "verdict", o->verdict);
}

static int run_flows(struct ctl *ctl, struct opts *o)
{
	static const struct ring_stream rs = {
		.op = ZT_OP_FLOWS_RECENT,
		.list_key = "flows",
		.what = "verdicts",
		.default_limit = 10000,
		.interval_us = 100000,
		.add_filters = flow_filters,
		.print = print_flow,
	};

	return stream_ring(ctl, o, &rs);
}

const struct cmd ctl_flows_cmds[] = {
	{ "flows", "ztctl flows [--follow] [--verdict allowed|denied|audit] [--limit N] [-o json]",
	  "Shows policy verdicts on new flows (the daemon keeps the last 16384): time,\n"
	  "verdict, 5-tuple, both workloads and identities, direction, interface and the\n"
	  "rule or default-deny that decided. --follow (-f) keeps streaming until Ctrl-C;\n"
	  "-o json prints one JSON object per line.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl flows --follow --verdict denied\n",
	  OPT_FOLLOW | OPT_VERDICT | OPT_LIMIT, 0, 0, NULL, run_flows },
};
const size_t ctl_flows_ncmds = ZT_ARRAY_SIZE(ctl_flows_cmds);
