// SPDX-License-Identifier: GPL-2.0-only
/* ztctl feeds: threat-intelligence feeds, their state, and a fetch on demand. */
#include "ctl/ctl.h"

static const char *age_text(int64_t age, char *buf, size_t n)
{
	if (age < 0)
		return "never";
	return duration_s((uint64_t)age, buf, n);
}

static int run_feeds_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "FEED",  "FORMAT",	 "DIRECTION",  "ACTION",
					     "STATE", "ENTRIES", "SUBTRACTED", "BAD",
					     "AGE",   "NEXT",	 "ERRORS",     "LAST ERROR" };
	static const bool right[12] = { false, false, false, false, false, true,
					true,  true,  true,  true,  true,  false };
	struct table t = { .ncols = 12, .heads = heads, .right = right };
	const cbor_item_t *d, *feeds;
	cbor_item_t *reply;
	uint64_t now = zt_now_unix();
	int r = call(ctl, request(ZT_OP_FEEDS_LIST), &reply, &d);

	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	feeds = zt_cbor_get(d, "feeds");
	for (size_t i = 0; i < arr_len(feeds); i++) {
		const cbor_item_t *f = arr_at(feeds, i);
		char name[80], fmt[32], dir[16], act[16], state[16], ent[48], sub[24], bad[24],
			age[32], next[32], errs[24], err[600], fmtd[64];
		uint64_t nx = u64_of(f, "next_refresh_unix");

		str_of(f, "format", fmt, sizeof(fmt), "?");
		if (!strcmp(fmt, "policy"))
			snprintf(ent, sizeof(ent), "%llu advisories",
				 (unsigned long long)u64_of(f, "advisories"));
		else
			snprintf(ent, sizeof(ent), "%llu in/%llu out",
				 (unsigned long long)u64_of(f, "inbound"),
				 (unsigned long long)u64_of(f, "outbound"));
		snprintf(sub, sizeof(sub), "%llu", (unsigned long long)u64_of(f, "subtracted"));
		snprintf(bad, sizeof(bad), "%llu", (unsigned long long)u64_of(f, "bad"));
		snprintf(errs, sizeof(errs), "%llu", (unsigned long long)u64_of(f, "fetch_errors"));
		if (nx > now)
			duration_s(nx - now, next, sizeof(next));
		else
			snprintf(next, sizeof(next), "%s", nx ? "now" : "-");
		str_of(f, "last_error", err, sizeof(err), "");
		if (strlen(err) > 60)
			memcpy(err + 57, "...", 4);
		snprintf(fmtd, sizeof(fmtd), "%s", fmt);
		table_add(&t, str_of(f, "name", name, sizeof(name), "?"), fmtd,
			  str_of(f, "direction", dir, sizeof(dir), "-")[0] ? dir : "-",
			  str_of(f, "action", act, sizeof(act), "-")[0] ? act : "-",
			  str_of(f, "state", state, sizeof(state), "?"), ent, sub, bad,
			  age_text(i64_of(f, "age_s"), age, sizeof(age)), next, errs,
			  err[0] ? err : "-");
	}
	if (t.rows)
		table_print(&t);
	else
		printf("no feeds are configured (feeds: in the agent's configuration)\n");
	table_free(&t);
	cbor_decref(&reply);
	return EXIT_OK;
}

static void line_u64(const char *label, const cbor_item_t *f, const char *key)
{
	printf("  %-22s %llu\n", label, (unsigned long long)u64_of(f, key));
}

static void line_time(const char *label, const cbor_item_t *f, const char *key)
{
	char t[40];
	uint64_t v = u64_of(f, key);

	printf("  %-22s %s\n", label, v ? iso_time(v, t, sizeof(t)) : "never");
}

static int run_feeds_show(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *f, *a;
	cbor_item_t *req = request(ZT_OP_FEEDS_SHOW), *reply;
	char buf[1200], age[32], next[32];
	uint64_t now = zt_now_unix(), nx;
	int r;

	put_str(req, "name", o->args[0]);
	r = call(ctl, req, &reply, &f);
	if (r)
		return r;
	if (ctl->json) {
		print_json(f);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	printf("feed %s\n", str_of(f, "name", buf, sizeof(buf), "?"));
	printf("  %-22s %s\n", "url", str_of(f, "url", buf, sizeof(buf), "?"));
	printf("  %-22s %s\n", "format", str_of(f, "format", buf, sizeof(buf), "?"));
	if (str_of(f, "direction", buf, sizeof(buf), "")[0]) {
		printf("  %-22s %s\n", "direction", buf);
		printf("  %-22s %s\n", "action", str_of(f, "action", buf, sizeof(buf), "?"));
	}
	printf("  %-22s %s\n", "state", str_of(f, "state", buf, sizeof(buf), "?"));
	printf("  %-22s %s\n", "sha256 in force", str_of(f, "sha256", buf, sizeof(buf), "-"));
	line_u64("entries (parsed)", f, "entries");
	line_u64("inbound prefixes", f, "inbound");
	line_u64("outbound prefixes", f, "outbound");
	line_u64("advisories", f, "advisories");
	line_u64("items looked at", f, "items");
	line_u64("bad lines", f, "bad");
	line_u64("ignored", f, "ignored");
	line_u64("expired", f, "expired");
	line_u64("duplicates", f, "duplicates");
	line_u64("subtracted", f, "subtracted");
	line_time("last success", f, "last_success_unix");
	line_time("last attempt", f, "last_attempt_unix");
	line_time("last change applied", f, "last_change_unix");
	line_time("content fetched", f, "content_fetched_unix");
	printf("  %-22s %s\n", "age", age_text(i64_of(f, "age_s"), age, sizeof(age)));
	nx = u64_of(f, "next_refresh_unix");
	printf("  %-22s %s\n", "next refresh",
	       nx > now ? duration_s(nx - now, next, sizeof(next)) :
	       nx	? "now" :
			  "-");
	line_u64("consecutive failures", f, "failures");
	line_u64("fetch errors", f, "fetch_errors");
	line_u64("versions applied", f, "versions");
	line_u64("apply ms", f, "apply_ms");
	line_u64("parse ms", f, "parse_ms");
	line_u64("bytes", f, "bytes");
	line_u64("IOC hits", f, "ioc_hits");
	line_u64("HTTP status", f, "http_status");
	printf("  %-22s %s\n", "last error",
	       str_of(f, "last_error_any", buf, sizeof(buf), "")[0] ? buf : "-");
	a = zt_cbor_get(f, "problems");
	if (arr_len(a)) {
		printf("\nbad or notable lines (the first %zu):\n", arr_len(a));
		for (size_t i = 0; i < arr_len(a); i++) {
			snprintf(buf, sizeof(buf), "%s",
				 cbor_isa_string(arr_at(a, i)) ?
					 (const char *)cbor_string_handle(arr_at(a, i)) :
					 "?");
			buf[cbor_isa_string(arr_at(a, i)) &&
					    cbor_string_length(arr_at(a, i)) < sizeof(buf) ?
				    cbor_string_length(arr_at(a, i)) :
				    sizeof(buf) - 1] = '\0';
			clean(buf);
			printf("  %s\n", buf);
		}
	}
	a = zt_cbor_get(f, "subtractions");
	if (arr_len(a)) {
		printf("\nnever blocked, taken out (the first %zu):\n", arr_len(a));
		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *s = arr_at(a, i);
			size_t n = cbor_isa_string(s) ? cbor_string_length(s) : 0;

			if (n >= sizeof(buf))
				n = sizeof(buf) - 1;
			memcpy(buf, n ? (const char *)cbor_string_handle(s) : "", n);
			buf[n] = '\0';
			clean(buf);
			printf("  %s\n", buf);
		}
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_feeds_refresh(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req = request(ZT_OP_FEEDS_REFRESH), *reply;
	int r;

	put_str(req, "name", o->nargs ? o->args[0] : "");
	if (o->force)
		zt_cbor_put_bool(req, "force", true);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("refresh of %s scheduled%s; 'ztctl feeds show' tells the outcome\n",
		       o->nargs ? o->args[0] : "every feed", o->force ? " (unconditional)" : "");
	cbor_decref(&reply);
	return EXIT_OK;
}

const struct cmd ctl_feeds_cmds[] = {
	{ "feeds list", "ztctl feeds list [-o json]",
	  "Lists the threat-intelligence feeds of the configuration (feeds:) and what\n"
	  "each has in force: prefixes blocked inbound (XDP blocklist) and outbound\n"
	  "(pods' new flows), or advisories for format policy; what was subtracted\n"
	  "(special-purpose ranges, the allowlist, the node's addresses), bad lines,\n"
	  "the age of the content (since its source last delivered or confirmed it),\n"
	  "the next fetch, and the last error.\n"
	  "\n"
	  "STATE: ok; applying (a new version is going into the kernel); failing (the\n"
	  "last fetch failed, the last good content stays in force); stale (no\n"
	  "confirmation for over twice the refresh interval: check the source and\n"
	  "'ztctl feeds show NAME'); pending (no content yet).\n"
	  "\n"
	  "Example:\n"
	  "  ztctl feeds list\n",
	  0, 0, 0, NULL, run_feeds_list },
	{ "feeds show", "ztctl feeds show NAME [-o json]",
	  "Shows one feed in detail: counts of its last version, timestamps, the first\n"
	  "bad lines (feed, file, line, reason) and what was subtracted from it.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl feeds show spamhaus-drop\n",
	  0, 1, 1, "NAME", run_feeds_show },
	{ "feeds refresh", "ztctl feeds refresh [NAME] [--force] [-o json]",
	  "Fetches feed NAME (every feed without NAME) now instead of at its next\n"
	  "refresh. The request is conditional (ETag, Last-Modified, file\n"
	  "fingerprint) unless --force: then the content is read and parsed again.\n"
	  "\n"
	  "Options:\n"
	  "  --force    download and parse even when the source says unchanged\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl feeds refresh feodo\n"
	  "  ztctl feeds refresh --force\n",
	  OPT_FORCE, 0, 1, "NAME", run_feeds_refresh },
};
const size_t ctl_feeds_ncmds = ZT_ARRAY_SIZE(ctl_feeds_cmds);
