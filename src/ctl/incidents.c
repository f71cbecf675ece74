// SPDX-License-Identifier: GPL-2.0-only
/* ztctl incidents: what the detectors found, what was done, where the packets are. */
#include "ctl/ctl.h"

static const char *bytes_str(uint64_t b, char *buf, size_t n)
{
	if (b >= (1ULL << 30))
		snprintf(buf, n, "%.1fG", (double)b / (1ULL << 30));
	else if (b >= (1ULL << 20))
		snprintf(buf, n, "%.1fM", (double)b / (1ULL << 20));
	else if (b >= 1024)
		snprintf(buf, n, "%.1fK", (double)b / 1024);
	else
		snprintf(buf, n, "%llu", (unsigned long long)b);
	return buf;
}

static int run_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "ID",     "THREAT", "STATE",   "SOURCE",
					     "TARGET", "FLOWS",	 "PACKETS", "BYTES",
					     "SCORE",  "ACTION", "FIRST",   "LAST" };
	static const bool right[12] = { false, false, false, false, false, true,
					true,  true,  true,  false, false, false };
	struct table t = { .ncols = 12, .heads = heads, .right = right };
	const cbor_item_t *d, *list;
	cbor_item_t *req = request(ZT_OP_INCIDENTS_LIST), *reply;
	int r;

	put_str(req, "state", o->state ? o->state : "all");
	put_u64(req, "limit", o->limit);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	list = zt_cbor_get(d, "incidents");
	if (ctl->json) {
		print_json(d);
	} else if (!arr_len(list)) {
		printf("no incidents (%s)\n", o->state ? o->state : "open or recently closed");
	} else {
		for (size_t i = 0; i < arr_len(list); i++) {
			const cbor_item_t *e = arr_at(list, i);
			char id[40], th[32], sub[32], st[12], src[64], dst[64], wl[128], tgt[140],
				thr[72], fl[24], pk[24], by[24], sc[16], act[16], f[32], l[32];

			str_of(e, "id", id, sizeof(id), "?");
			/* The last 8 digits (UUIDv7's random part) are enough for 'show'. */
			if (strlen(id) == 36)
				memmove(id, id + 28, 9);
			str_of(e, "threat_type", th, sizeof(th), "?");
			str_of(e, "subtype", sub, sizeof(sub), "");
			snprintf(thr, sizeof(thr), "%s%s%s", th, sub[0] ? "/" : "", sub);
			str_of(e, "state", st, sizeof(st), "?");
			str_of(e, "src", src, sizeof(src), "");
			str_of(e, "dst", dst, sizeof(dst), "");
			str_of(e, "workload", wl, sizeof(wl), "");
			if (wl[0])
				snprintf(tgt, sizeof(tgt), "%s", wl);
			else if (u64_of(e, "dport"))
				snprintf(tgt, sizeof(tgt), "%s:%llu", dst[0] ? dst : "*",
					 (unsigned long long)u64_of(e, "dport"));
			else
				snprintf(tgt, sizeof(tgt), "%s", dst[0] ? dst : "-");
			snprintf(fl, sizeof(fl), "%llu", (unsigned long long)u64_of(e, "flows"));
			snprintf(pk, sizeof(pk), "%llu", (unsigned long long)u64_of(e, "packets"));
			snprintf(sc, sizeof(sc), "%.2f", (double)u64_of(e, "score") / 1000);
			str_of(e, "action", act, sizeof(act), "?");
			table_add(&t, id, thr, st, src[0] ? src : "-", tgt, fl, pk,
				  bytes_str(u64_of(e, "bytes"), by, sizeof(by)), sc, act,
				  iso_time(u64_of(e, "first_unix"), f, sizeof(f)),
				  iso_time(u64_of(e, "last_unix"), l, sizeof(l)));
		}
		table_print(&t);
		table_free(&t);
		printf("%llu open; 'ztctl incidents show ID' for the evidence and the capture\n",
		       (unsigned long long)u64_of(d, "open"));
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_show(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req = request(ZT_OP_INCIDENTS_SHOW), *reply;
	char id[40], th[32], sub[32], st[12], src[64], dst[64], wl[256], ev[600], act[16], why[80],
		mode[12], blk[80], cap[600], q[600], cr[40], t1[32], t2[32], t3[32], by[24],
		ttl[32];
	int r;

	put_str(req, "id", o->args[0]);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	str_of(d, "id", id, sizeof(id), "?");
	str_of(d, "threat_type", th, sizeof(th), "?");
	str_of(d, "subtype", sub, sizeof(sub), "");
	str_of(d, "state", st, sizeof(st), "?");
	str_of(d, "src", src, sizeof(src), "");
	str_of(d, "dst", dst, sizeof(dst), "");
	str_of(d, "workload", wl, sizeof(wl), "");
	str_of(d, "evidence", ev, sizeof(ev), "");
	str_of(d, "action", act, sizeof(act), "?");
	str_of(d, "action_reason", why, sizeof(why), "");
	str_of(d, "mode", mode, sizeof(mode), "?");
	str_of(d, "blocked", blk, sizeof(blk), "");
	str_of(d, "capture", cap, sizeof(cap), "");
	str_of(d, "flows_query", q, sizeof(q), "");
	str_of(d, "close_reason", cr, sizeof(cr), "");
	printf("incident   %s\n", id);
	printf("threat     %s%s%s (score %.3f, %llu decisions)\n", th, sub[0] ? ", " : "", sub,
	       (double)u64_of(d, "score") / 1000, (unsigned long long)u64_of(d, "decisions"));
	printf("state      %s%s%s\n", st, cr[0] ? ", " : "", cr);
	if (wl[0])
		printf("workload   %s\n", wl);
	printf("source     %s\n", src[0] ? src : "- (a victim: many sources)");
	if (dst[0] || u64_of(d, "dport"))
		printf("target     %s%s%.0llu\n", dst[0] ? dst : "*", u64_of(d, "dport") ? ":" : "",
		       (unsigned long long)u64_of(d, "dport"));
	printf("seen       %s .. %s (evidence from %s)\n",
	       iso_time(u64_of(d, "first_unix"), t1, sizeof(t1)),
	       iso_time(u64_of(d, "last_unix"), t2, sizeof(t2)),
	       iso_time(u64_of(d, "window_start_unix"), t3, sizeof(t3)));
	printf("counts     %llu flows, %llu packets, %s bytes, %llu packets dropped by the block\n",
	       (unsigned long long)u64_of(d, "flows"), (unsigned long long)u64_of(d, "packets"),
	       bytes_str(u64_of(d, "bytes"), by, sizeof(by)),
	       (unsigned long long)u64_of(d, "drops"));
	printf("evidence   %s\n", ev);
	printf("action     %s (mode %s)%s%s\n", act, mode, why[0] ? ": " : "", why);
	if (!strcmp(act, "block") || !strcmp(act, "already"))
		printf("block      %s for %s (offence %llu), until %s, written %.3f ms after the "
		       "decision\n",
		       blk, duration_s(u64_of(d, "block_ttl_s"), ttl, sizeof(ttl)),
		       (unsigned long long)u64_of(d, "offence"),
		       iso_time(u64_of(d, "blocked_until_unix"), t1, sizeof(t1)),
		       (double)u64_of(d, "block_us") / 1000);
	else if (!strcmp(act, "refused"))
		printf("block      refused for %s: %s is never blocked\n", blk, why);
	printf("capture    %s (%llu file%s)\n", cap[0] ? cap : "-",
	       (unsigned long long)u64_of(d, "capture_files"),
	       u64_of(d, "capture_files") == 1 ? "" : "s");
	if (cap[0])
		printf("           tshark -r '%s'\n", cap);
	printf("flows      %s\n", q);
	cbor_decref(&reply);
	return EXIT_OK;
}

const struct cmd ctl_incidents_cmds[] = {
	{ "incidents list", "ztctl incidents list [--state open|closed|all] [--limit N] [-o json]",
	  "Lists the incidents of this node, newest first: one per (source, threat type)\n"
	  "while it is active, with its counts (they grow as the attack goes on), the best\n"
	  "score, and what was done (block, alert, refused). The daemon keeps the open ones\n"
	  "and the last 1024 closed; the incidents table in PostgreSQL keeps all of them.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl incidents list --state open\n",
	  OPT_STATE | OPT_LIMIT, 0, 0, NULL, run_list },
	{ "incidents show", "ztctl incidents show ID [-o json]",
	  "Shows one incident: what the detector saw (counts, window, threshold), the\n"
	  "block it led to (TTL, offence, decision-to-map time) or why it was refused, its\n"
	  "forensic capture (read it with tshark) and the query for its flows. ID is the\n"
	  "whole id or a part of it at its start or end (at least 4 characters), like the\n"
	  "8 characters 'incidents list', 'alerts' and 'block list' show.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl incidents show 7d26afb8\n",
	  0, 1, 1, "ID", run_show },
};
const size_t ctl_incidents_ncmds = ZT_ARRAY_SIZE(ctl_incidents_cmds);
