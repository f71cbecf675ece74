// SPDX-License-Identifier: GPL-2.0-only
/* ztctl alerts: incidents as they open, grow and close, and aggregated policy denials. */
#include "ctl/ctl.h"

static void print_alert(struct ctl *ctl, const cbor_item_t *a)
{
	char t[40], kind[32], ev[12], sev[16], id[40], subj[300], act[16], det[600];

	if (ctl->json) {
		zt_cbor_to_json(a, stdout, false);
		printf("\n");
		return;
	}
	str_of(a, "time", t, sizeof(t), "?");
	str_of(a, "kind", kind, sizeof(kind), "?");
	str_of(a, "event", ev, sizeof(ev), "?");
	str_of(a, "severity", sev, sizeof(sev), "?");
	str_of(a, "id", id, sizeof(id), "");
	str_of(a, "subject", subj, sizeof(subj), "?");
	str_of(a, "action", act, sizeof(act), "?");
	str_of(a, "detail", det, sizeof(det), "");
	/* The last 8 digits: UUIDv7's random part ('incidents show' takes them). */
	if (strlen(id) == 36)
		memmove(id, id + 28, 9);
	printf("%s %-8s %-12s %-6s %s count=%llu action=%s", t, sev, kind, ev, subj,
	       (unsigned long long)u64_of(a, "count"), act);
	if (u64_of(a, "score"))
		printf(" score=%.2f", (double)u64_of(a, "score") / 1000);
	if (id[0])
		printf(" id=%s", id);
	if (det[0])
		printf(": %s", det);
	printf("\n");
}

static int run_alerts(struct ctl *ctl, struct opts *o)
{
	static const struct ring_stream rs = {
		.op = ZT_OP_ALERTS_RECENT,
		.list_key = "alerts",
		.what = "alerts",
		.default_limit = 4096,
		.interval_us = 200000,
		.print = print_alert,
	};

	return stream_ring(ctl, o, &rs);
}

const struct cmd ctl_alerts_cmds[] = {
	{ "alerts", "ztctl alerts [--follow] [--limit N] [-o json]",
	  "Shows the alerts of this node, oldest first (the daemon keeps the last 4096): an\n"
	  "incident when it opens, each time its counts are updated and when it closes,\n"
	  "and policy denials once per source, destination, port and rule and window\n"
	  "(response.denial_window) with their count. --follow (-f) keeps streaming until\n"
	  "Ctrl-C; -o json prints one JSON object per line.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl alerts --follow\n",
	  OPT_FOLLOW | OPT_LIMIT, 0, 0, NULL, run_alerts },
};
const size_t ctl_alerts_ncmds = ZT_ARRAY_SIZE(ctl_alerts_cmds);
