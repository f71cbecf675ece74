// SPDX-License-Identifier: GPL-2.0-only
/* ztctl status and detach: what the daemon runs and enforces, and taking it all down. */
#include "ctl/ctl.h"

static int run_status(struct ctl *ctl, struct opts *o)
{
	static const char *const if_heads[] = { "INTERFACE", "MODE", "PROG ID", "ATTACHED" };
	static const bool if_right[] = { false, false, true, false };
	static const char *const map_heads[] = { "MAP", "ENTRIES", "MAX" };
	static const bool map_right[] = { false, true, true };
	static const char *const ctr_heads[] = { "ACTION", "REASON", "PACKETS", "BYTES" };
	static const bool ctr_right[] = { false, false, true, true };
	const cbor_item_t *d, *a, *ev;
	cbor_item_t *reply;
	char b1[256], b2[64], b3[32], b4[32];
	int r = call(ctl, request(ZT_OP_STATUS), &reply, &d);

	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	printf("node:       %s\n", str_of(d, "node", b1, sizeof(b1), "-"));
	printf("agent:      ztagent %s, pid %llu, up %s\n",
	       str_of(d, "version", b2, sizeof(b2), "?"), (unsigned long long)u64_of(d, "pid"),
	       duration_s(u64_of(d, "uptime_s"), b3, sizeof(b3)));
	printf("bpffs:      %s\n", str_of(d, "bpffs", b1, sizeof(b1), "-"));
	a = zt_cbor_get(d, "programs");
	printf("programs:  ");
	for (size_t i = 0; i < arr_len(a); i++)
		printf(" %s (id %llu)%s", str_of(arr_at(a, i), "name", b1, sizeof(b1), "?"),
		       (unsigned long long)u64_of(arr_at(a, i), "id"),
		       i + 1 < arr_len(a) ? "," : "");
	printf("%s\n", arr_len(a) ? "" : " none loaded");

	a = zt_cbor_get(d, "interfaces");
	printf("\n");
	if (!arr_len(a)) {
		printf("interfaces: none (set xdp.interfaces in the configuration)\n");
	} else {
		struct table t = { .ncols = 4, .heads = if_heads, .right = if_right };

		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *it = arr_at(a, i);

			snprintf(b3, sizeof(b3), "%llu", (unsigned long long)u64_of(it, "prog_id"));
			table_add(&t, str_of(it, "name", b1, sizeof(b1), "?"),
				  str_of(it, "mode", b2, sizeof(b2), "?"), b3,
				  bool_of(it, "attached") ? "yes" : "NO (see the daemon's log)");
		}
		table_print(&t);
		table_free(&t);
	}

	a = zt_cbor_get(d, "maps");
	if (arr_len(a)) {
		struct table t = { .ncols = 3, .heads = map_heads, .right = map_right };

		printf("\n");
		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *it = arr_at(a, i);

			snprintf(b3, sizeof(b3), "%llu", (unsigned long long)u64_of(it, "entries"));
			snprintf(b4, sizeof(b4), "%llu",
				 (unsigned long long)u64_of(it, "max_entries"));
			table_add(&t, str_of(it, "name", b1, sizeof(b1), "?"), b3, b4);
		}
		table_print(&t);
		table_free(&t);
	}

	a = zt_cbor_get(d, "counters");
	printf("\n");
	if (!arr_len(a)) {
		printf("counters:   no packets seen yet\n");
	} else {
		struct table t = { .ncols = 4, .heads = ctr_heads, .right = ctr_right };

		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *it = arr_at(a, i);

			snprintf(b3, sizeof(b3), "%llu", (unsigned long long)u64_of(it, "packets"));
			snprintf(b4, sizeof(b4), "%llu", (unsigned long long)u64_of(it, "bytes"));
			table_add(&t, str_of(it, "action", b2, sizeof(b2), "?"),
				  str_of(it, "reason", b1, sizeof(b1), "?"), b3, b4);
		}
		table_print(&t);
		table_free(&t);
	}

	ev = zt_cbor_get(d, "events");
	printf("\nevents:     emitted %llu, lost %llu, suppressed %llu, received %llu\n",
	       (unsigned long long)u64_of(ev, "emitted"), (unsigned long long)u64_of(ev, "lost"),
	       (unsigned long long)u64_of(ev, "suppressed"),
	       (unsigned long long)u64_of(ev, "received"));
	printf("            read late (>= 10 ms) %llu; deferred %llu (at most %llu waiting, queue full %llu times)\n",
	       (unsigned long long)u64_of(ev, "read_late"),
	       (unsigned long long)u64_of(ev, "deferred"),
	       (unsigned long long)u64_of(ev, "deferred_high"),
	       (unsigned long long)u64_of(ev, "deferred_full_waits"));
	printf("            consumer %s (paused for a flood %llu times)\n",
	       u64_of(ev, "realtime") ? "under SCHED_FIFO" : "at its nice",
	       (unsigned long long)u64_of(ev, "realtime_pauses"));
	cbor_decref(&reply);
	return EXIT_OK;
}

/* ---- block / allow ---- */

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int run_detach(struct ctl *ctl, struct opts *o)
{
	struct timeval tv = { .tv_sec = DETACH_WAIT_S };
	const cbor_item_t *d;
	cbor_item_t *reply;
	char bpffs[PATH_MAX], pin[PATH_MAX + 32], buf[256];
	bool pinned;
	ssize_t n;
	int r = call(ctl, request(ZT_OP_DETACH), &reply, &d);

	if (r)
		return r;
	str_of(d, "bpffs", bpffs, sizeof(bpffs), "");
	cbor_decref(&reply);
	if (!ctl->json) {
		printf("ztagent is detaching: it removes its XDP programs from every interface,\n"
		       "then its pinned maps (every block and allow entry) under\n"
		       "%s, and exits.\n",
		       bpffs[0] ? bpffs : "its bpffs directory");
		fflush(stdout);
	}
	/* The daemon closes the connection as it leaves its loop... */
	setsockopt(ctl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	do
		n = read(ctl->fd, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		fprintf(stderr,
			"ztctl: ztagent is still running %d s after accepting the detach; check its log\n",
			DETACH_WAIT_S);
		return EXIT_FAIL;
	}
	/* ...and removes its pins after that. */
	snprintf(pin, sizeof(pin), "%s/%s", bpffs, ZT_PIN_BLOCK_V4);
	pinned = bpffs[0] && exists(pin);
	for (int i = 0; pinned && i < DETACH_WAIT_S * 10; i++) {
		usleep(100000);
		pinned = exists(pin);
	}
	if (pinned) {
		fprintf(stderr,
			"ztctl: ztagent exited but %s is still pinned after %d s; check its log, or run 'ztagent --detach'\n",
			pin, DETACH_WAIT_S);
		return EXIT_FAIL;
	}
	if (ctl->json) {
		cbor_item_t *m = zt_cbor_map();

		if (!m || zt_cbor_put_bool(m, "detached", true) ||
		    zt_cbor_put_str(m, "bpffs", bpffs))
			die_nomem();
		print_json(m);
		cbor_decref(&m);
	} else {
		printf("done: ztagent has detached and exited; nothing is enforced on this node\n"
		       "until it starts again.\n");
	}
	return EXIT_OK;
}

const struct cmd ctl_status_cmds[] = {
	{ "status", "ztctl status [-o json]",
	  "Shows the node, the daemon (version, pid, uptime), the XDP program and the\n"
	  "interfaces it is attached to, how full each map is, the packet counters by\n"
	  "action and reason (non-zero ones), and the drop-event counters.\n"
	  "\n"
	  "A reason you did not expect (e.g. malformed-ipv4) is counted, never silent:\n"
	  "'drop blocklist' packets came from blocked sources, 'pass block-expired'\n"
	  "from blocks whose TTL ran out before the daemon swept them.\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl status\n"
	  "  ztctl status -o json | jq '.counters'\n",
	  0, 0, 0, NULL, run_status },
	{ "detach", "ztctl detach",
	  "Asks the daemon to remove its XDP programs from every interface, delete its\n"
	  "pinned maps (every block and allow entry) and exit. Nothing is enforced on the\n"
	  "node afterwards. Stopping the daemon (SIGTERM) instead keeps enforcement in\n"
	  "place. ztctl waits until the daemon is done.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl detach\n",
	  0, 0, 0, NULL, run_detach },
};
const size_t ctl_status_ncmds = ZT_ARRAY_SIZE(ctl_status_cmds);
