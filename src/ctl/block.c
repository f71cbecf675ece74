// SPDX-License-Identifier: GPL-2.0-only
/* ztctl block and allow: the XDP guard's blocklist and allowlist, and bulk import. */
#include "ctl/ctl.h"
#include "ctl/import.h"

static int run_block_add(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char cidr[ZT_CIDR_STRLEN], shown[ZT_CIDR_STRLEN], t[32], dur[32];
	uint64_t expires;
	int r = cidr_arg(o->cmd, o->args[0], cidr, sizeof(cidr));

	if (r)
		return r;
	req = request(ZT_OP_BLOCK_ADD);
	put_str(req, "cidr", cidr);
	put_u64(req, "ttl_s", o->ttl_s);
	if (o->reason)
		put_str(req, "reason", o->reason);
	if (o->kind)
		put_str(req, "kind", o->kind);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
	} else {
		expires = u64_of(d, "expires_unix");
		str_of(d, "cidr", shown, sizeof(shown), cidr);
		if (o->ttl_s)
			printf("blocked %s (expires in %s, at %s)%s\n", shown,
			       duration_s(o->ttl_s, dur, sizeof(dur)),
			       iso_time(expires, t, sizeof(t)),
			       bool_of(d, "replaced") ? "; it replaced the previous entry" : "");
		else
			printf("blocked %s (never expires; 'ztctl block del %s' removes it)%s\n",
			       shown, shown,
			       bool_of(d, "replaced") ? "; it replaced the previous entry" : "");
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

/* Prints "<before> CIDR<after>" when done. */
static int run_del(struct ctl *ctl, struct opts *o, const char *op, const char *before,
		   const char *after)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char cidr[ZT_CIDR_STRLEN], shown[ZT_CIDR_STRLEN];
	int r = cidr_arg(o->cmd, o->args[0], cidr, sizeof(cidr));

	if (r)
		return r;
	req = request(op);
	put_str(req, "cidr", cidr);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("%s %s%s\n", before, str_of(d, "cidr", shown, sizeof(shown), cidr), after);
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_block_del(struct ctl *ctl, struct opts *o)
{
	return run_del(ctl, o, ZT_OP_BLOCK_DEL, "unblocked", "");
}

/*
 * A listing the daemon answers in pages (block.list, allow.list): asks for
 * the next page with the previous one's "next" until there is none or want
 * (0 = all) entries are out, and prints as it goes, so neither side holds
 * the whole list. -o json is still one document: {"total": N, "entries": [...]}.
 */
struct listing {
	const char *op;
	const char *feed; /* block.list: only this feed's entries */
	const char *empty; /* printed when there is nothing */
	bool has_total;
	struct table t;
	void (*row)(struct table *t, const cbor_item_t *e);
};

/* Asks for up to limit (0 = a full page) entries after cursor (none: from the start). */
static int list_ask(struct ctl *ctl, const struct listing *l, uint64_t limit, const uint8_t *cursor,
		    size_t cursor_len)
{
	cbor_item_t *req = request(l->op);

	put_u64(req, "limit", limit);
	if (l->feed)
		put_str(req, "feed", l->feed);
	if (cursor_len) {
		cbor_item_t *b = cbor_build_bytestring(cursor, cursor_len);

		if (!b || zt_cbor_put(req, "cursor", b))
			die_nomem();
	}
	return call_send(ctl, req);
}

static int list_paged(struct ctl *ctl, struct listing *l, uint64_t want, uint64_t *total,
		      uint64_t *shown)
{
	size_t w[16] = { 0 };
	bool headed = false, first = true;
	uint8_t cursor[64];
	size_t cursor_len = 0;
	int r;

	*total = *shown = 0;
	r = list_ask(ctl, l, want, NULL, 0);
	while (!r) {
		cbor_item_t *reply;
		const cbor_item_t *d, *entries, *next;
		bool more;
		size_t n;

		r = call_recv(ctl, &reply, &d);
		if (r)
			break;
		entries = zt_cbor_get(d, "entries");
		n = arr_len(entries);
		if (want && n > want - *shown)
			n = want - *shown;
		next = zt_cbor_get(d, "next");
		cursor_len = 0;
		if (next && cbor_isa_bytestring(next) && cbor_bytestring_is_definite(next) &&
		    cbor_bytestring_length(next) <= sizeof(cursor)) {
			cursor_len = cbor_bytestring_length(next);
			memcpy(cursor, cbor_bytestring_handle(next), cursor_len);
		}
		/*
		 * The next page is asked for before this one is printed: the
		 * daemon looks it up while ztctl prints (a million entries take
		 * about as long to print as to look up).
		 */
		more = cursor_len && (!want || *shown + n < want);
		if (more)
			r = list_ask(ctl, l, want ? want - *shown - n : 0, cursor, cursor_len);
		if (first) {
			*total = u64_of(d, "total");
			if (ctl->json) {
				printf("{\n");
				if (l->has_total)
					printf("  \"total\": %llu,\n", (unsigned long long)*total);
				printf("  \"entries\": [");
			}
		}
		for (size_t i = 0; i < n; i++) {
			if (ctl->json) {
				fputs(*shown + i ? ",\n    " : "\n    ", stdout);
				print_json_at(arr_at(entries, i), 2);
			} else {
				l->row(&l->t, arr_at(entries, i));
			}
		}
		if (!ctl->json && l->t.rows)
			table_print_page(&l->t, w, &headed);
		*shown += n;
		first = false;
		cbor_decref(&reply);
		if (!more)
			break;
	}
	/* A listing cut short stays an unfinished document: no reader takes it for whole. */
	if (ctl->json && !first && !r)
		printf("%s]\n}\n", *shown ? "\n  " : "");
	else if (!ctl->json && !first && !*shown)
		printf("%s\n", l->empty);
	table_free(&l->t);
	return r;
}

static void block_row(struct table *t, const cbor_item_t *e)
{
	char cidr[64], kind[32], src[64], reason[ZT_NOTE_LEN * 2], added[32], exp[80];

	str_of(e, "source", src, sizeof(src), "?");
	if (strcmp(src, "feed") == 0)
		snprintf(src, sizeof(src), "feed:%llu", (unsigned long long)u64_of(e, "feed_id"));
	str_of(e, "reason", reason, sizeof(reason), "");
	table_add(t, str_of(e, "cidr", cidr, sizeof(cidr), "?"),
		  str_of(e, "kind", kind, sizeof(kind), "?"), src, reason[0] ? reason : "-",
		  iso_time(u64_of(e, "created_unix"), added, sizeof(added)),
		  expiry(u64_of(e, "expires_unix"), bool_of(e, "expired"), exp, sizeof(exp)));
}

static int run_block_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = {
		"CIDR", "KIND", "SOURCE", "REASON", "ADDED", "EXPIRES"
	};
	static const bool right[6] = { false };
	struct listing l = {
		.op = ZT_OP_BLOCK_LIST,
		.feed = o->feed,
		.empty = o->feed ? "the feed has no entries in the blocklist" :
				   "the blocklist is empty",
		.has_total = !o->feed,
		.t = { .ncols = 6, .heads = heads, .right = right },
		.row = block_row,
	};
	uint64_t total, shown;
	int r = list_paged(ctl, &l, o->limit, &total, &shown);

	if (r)
		return r;
	/* Entries may also expire between count and listing: only a limit truncates. */
	if (o->limit && total > shown && !o->feed)
		fprintf(ctl->json ? stderr : stdout, "... and %llu more (use --limit 0 for all)\n",
			(unsigned long long)(total - shown));
	return EXIT_OK;
}

static int run_allow_add(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char cidr[ZT_CIDR_STRLEN], shown[ZT_CIDR_STRLEN];
	int r = cidr_arg(o->cmd, o->args[0], cidr, sizeof(cidr));

	if (r)
		return r;
	req = request(ZT_OP_ALLOW_ADD);
	put_str(req, "cidr", cidr);
	if (o->reason)
		put_str(req, "reason", o->reason);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("allowed %s (its traffic passes the XDP guard, even when blocklisted)\n",
		       str_of(d, "cidr", shown, sizeof(shown), cidr));
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_allow_del(struct ctl *ctl, struct opts *o)
{
	return run_del(ctl, o, ZT_OP_ALLOW_DEL, "removed", " from the allowlist");
}

static void allow_row(struct table *t, const cbor_item_t *e)
{
	char cidr[64], reason[ZT_NOTE_LEN * 2], added[32];

	str_of(e, "reason", reason, sizeof(reason), "");
	table_add(t, str_of(e, "cidr", cidr, sizeof(cidr), "?"), reason[0] ? reason : "-",
		  iso_time(u64_of(e, "created_unix"), added, sizeof(added)));
}

static int run_allow_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "CIDR", "REASON", "ADDED" };
	static const bool right[3] = { false };
	struct listing l = {
		.op = ZT_OP_ALLOW_LIST,
		.empty = "the allowlist is empty",
		.t = { .ncols = 3, .heads = heads, .right = right },
		.row = allow_row,
	};
	uint64_t total, shown;

	(void)o;
	return list_paged(ctl, &l, 0, &total, &shown);
}

/* ---- block import ---- */

/*
 * Two request buffers: while the daemon applies the one sent (in flight),
 * the next is parsed into the other; it goes once the first is answered,
 * and only if that was accepted. Parsing a million lines takes about as
 * long as the daemon takes to apply them.
 */
struct import_buf {
	uint8_t *packed; /* ZT_PACKED_CIDR_LEN bytes per CIDR */
	size_t *lines; /* FILE line of each of its cidrs */
	size_t n;
};

struct import {
	struct ctl *ctl;
	struct opts *o;
	const char *file; /* as named on the command line */
	struct import_buf buf[2];
	struct import_buf *fill; /* the request being filled */
	struct import_buf *sent; /* the request in flight, or NULL */
	uint64_t added, replaced, invalid, requests;
	size_t reported;
};

static void report_bad(struct import *im, const struct zt_import_line *l)
{
	im->invalid++;
	if (im->reported++ >= REPORT_MAX)
		return;
	fprintf(stderr, "ztctl: %s:%zu: '%s': %s\n", im->file, l->lineno, l->shown, l->why);
}

/*
 * The daemon's errors name the record of its request ("packed record 7: why",
 * "item 7: '...': why"): give them the FILE:LINE they came from.
 */
static void report_daemon_error(struct import *im, const struct import_buf *b, const char *msg)
{
	unsigned long long item;
	int consumed = 0;

	if (im->reported++ >= REPORT_MAX)
		return;
	if (((sscanf(msg, "packed record %llu: %n", &item, &consumed) == 1 && consumed > 0) ||
	     (sscanf(msg, "item %llu: %n", &item, &consumed) == 1 && consumed > 0)) &&
	    item < b->n)
		fprintf(stderr, "ztctl: %s:%zu: %s\n", im->file, b->lines[item], msg + consumed);
	else
		fprintf(stderr, "ztctl: %s: %s\n", im->file, msg);
}

/* Waits for the answer to the request in flight, if any. */
static int import_wait(struct import *im)
{
	struct import_buf *b = im->sent;
	const cbor_item_t *d, *errs;
	cbor_item_t *reply;
	char msg[512];
	int r;

	if (!b)
		return EXIT_OK;
	im->sent = NULL;
	r = call_recv(im->ctl, &reply, &d);
	if (r) {
		if (r == EXIT_FAIL)
			fprintf(stderr,
				"ztctl: %s: the request with lines %zu to %zu was refused as a whole%s\n",
				im->file, b->lines[0], b->lines[b->n - 1],
				im->requests ? "; earlier lines were imported" : "");
		return r;
	}
	im->requests++;
	im->added += u64_of(d, "added");
	im->replaced += u64_of(d, "replaced");
	im->invalid += u64_of(d, "invalid");
	errs = zt_cbor_get(d, "errors");
	for (size_t i = 0; i < arr_len(errs); i++)
		if (zt_cbor_str(arr_at(errs, i), msg, sizeof(msg)) == 0) {
			clean(msg);
			report_daemon_error(im, b, msg);
		}
	cbor_decref(&reply);
	b->n = 0;
	return EXIT_OK;
}

/*
 * Sends the request being filled once the one in flight is answered (and
 * accepted), without waiting for its own answer: the next lines are parsed
 * meanwhile. import_wait takes the last answer.
 */
static int import_flush(struct import *im)
{
	const struct opts *o = im->o;
	struct import_buf *b = im->fill;
	cbor_item_t *req;
	int r;

	if (!b->n)
		return EXIT_OK;
	r = import_wait(im);
	if (r)
		return r;
	req = request(ZT_OP_BLOCK_IMPORT);
	/* Binary records: the daemon decodes no CBOR item per CIDR. */
	if (zt_cbor_put(req, "packed", cbor_build_bytestring(b->packed, b->n * ZT_PACKED_CIDR_LEN)))
		die_nomem();
	put_u64(req, "ttl_s", o->ttl_s);
	if (o->reason)
		put_str(req, "reason", o->reason);
	if (o->kind)
		put_str(req, "kind", o->kind);
	if (o->source)
		put_str(req, "source", o->source);
	if (o->has_feed_id)
		put_u64(req, "feed_id", o->feed_id);
	r = call_send(im->ctl, req);
	if (r)
		return r;
	im->sent = b;
	im->fill = b == &im->buf[0] ? &im->buf[1] : &im->buf[0];
	return EXIT_OK;
}

static int run_block_import(struct ctl *ctl, struct opts *o)
{
	struct import im = { .ctl = ctl, .o = o, .file = o->args[0] };
	bool from_stdin = strcmp(im.file, "-") == 0;
	struct zt_import_reader rd;
	struct zt_import_line l;
	int r = EXIT_OK;
	FILE *f;

	f = from_stdin ? stdin : fopen(im.file, "re");
	if (!f) {
		fprintf(stderr, "ztctl: cannot open %s: %s\n", im.file, strerror(errno));
		return EXIT_FAIL;
	}
	if (from_stdin)
		im.file = "<stdin>";
	for (int i = 0; i < 2; i++) {
		im.buf[i].lines = malloc(IMPORT_CHUNK * sizeof(*im.buf[i].lines));
		im.buf[i].packed = malloc((size_t)IMPORT_CHUNK * ZT_PACKED_CIDR_LEN);
		if (!im.buf[i].lines || !im.buf[i].packed)
			die_nomem();
	}
	im.fill = &im.buf[0];
	zt_import_init(&rd, f);
	while ((r = zt_import_next(&rd, &l)) > 0) {
		struct import_buf *b = im.fill;
		uint8_t *rec;

		if (!l.ok) {
			report_bad(&im, &l);
			continue;
		}
		rec = b->packed + b->n * ZT_PACKED_CIDR_LEN;
		rec[0] = l.cidr.family == AF_INET ? 4 : 6;
		rec[1] = l.cidr.prefixlen;
		memcpy(rec + 2, l.cidr.addr, 16);
		b->lines[b->n++] = l.lineno;
		if (b->n == IMPORT_CHUNK) {
			r = import_flush(&im);
			if (r)
				goto out;
		}
	}
	if (r < 0) {
		fprintf(stderr, "ztctl: reading %s: %s\n", im.file, strerror(-r));
		/* What was sent is still answered: its lines may have been imported. */
		import_wait(&im);
		r = EXIT_FAIL;
		goto out;
	}
	r = import_flush(&im);
	if (!r)
		r = import_wait(&im);
	if (r)
		goto out;
	if (im.reported > REPORT_MAX)
		fprintf(stderr, "ztctl: %s: ... %zu more problems not shown\n", im.file,
			im.reported - REPORT_MAX);
	if (ctl->json)
		printf("{\n  \"added\": %llu,\n  \"replaced\": %llu,\n  \"invalid\": %llu\n}\n",
		       (unsigned long long)im.added, (unsigned long long)im.replaced,
		       (unsigned long long)im.invalid);
	else if (!im.requests && !im.invalid)
		printf("%s has no CIDRs: nothing imported\n", im.file);
	else
		printf("imported %s: %llu added, %llu replaced, %llu invalid%s\n", im.file,
		       (unsigned long long)im.added, (unsigned long long)im.replaced,
		       (unsigned long long)im.invalid,
		       im.invalid ? " (skipped; see the messages above)" : "");
	r = im.invalid ? EXIT_FAIL : EXIT_OK;
out:
	for (int i = 0; i < 2; i++) {
		free(im.buf[i].packed);
		free(im.buf[i].lines);
	}
	if (!from_stdin)
		fclose(f);
	return r;
}

const struct cmd ctl_block_cmds[] = {
	{ "block add", "ztctl block add CIDR [--ttl DURATION] [--reason TEXT] [--kind KIND]",
	  "Drops every packet whose source address is inside CIDR, at the node's uplinks,\n"
	  "before the kernel's network stack sees it. Takes effect at once. Adding a CIDR\n"
	  "that is already blocked replaces its TTL, reason and kind. Sources on the\n"
	  "allowlist are never dropped.\n"
	  "\n"
	  "  CIDR             198.51.100.7 (one host), 203.0.113.0/24, 2001:db8:bad::/48;\n"
	  "                   host bits are cleared (203.0.113.9/24 -> 203.0.113.0/24)\n"
	  "  --ttl DURATION   remove the block after DURATION: 90s, 10m, 1h30m, 2d;\n"
	  "                   1s or more, rounded up to whole seconds; 0 = never (default)\n"
	  "  --reason TEXT    why, for whoever reads 'ztctl block list' (63 bytes at most)\n"
	  "  --kind KIND      operator (default), threat-intel, scan, flood, anomaly,\n"
	  "                   policy\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl block add 203.0.113.9 --ttl 1h --reason \"ssh brute force, ticket 4711\"\n"
	  "  ztctl block add 2001:db8:bad::/48 --kind threat-intel\n",
	  OPT_TTL | OPT_REASON | OPT_KIND, 1, 1, "CIDR", run_block_add },
	{ "block del", "ztctl block del CIDR",
	  "Removes the blocklist entry for exactly CIDR (as 'ztctl block list' shows it);\n"
	  "traffic from it flows again at once. Entries inside or around CIDR stay.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl block del 203.0.113.0/24\n",
	  0, 1, 1, "CIDR", run_block_del },
	{ "block list", "ztctl block list [--limit N] [--feed NAME] [-o json]",
	  "Lists the blocklist: CIDR, kind, source (manual, feed:ID, detector), reason,\n"
	  "when it was added and when it expires (UTC). The order is the daemon's (by a\n"
	  "hash of the entry, the same from one call to the next), not by address. The\n"
	  "entries come from the daemon in pages of 2048 and are printed as they come,\n"
	  "so a list of millions costs neither side much memory.\n"
	  "\n"
	  "  --limit N   show at most N entries (default 10000; 0 = all)\n"
	  "  --feed NAME only the entries threat-intel feed NAME lists inbound (the daemon\n"
	  "              filters; an entry several feeds list shows under each)\n"
	  "  -o json     one JSON document {\"total\": N, \"entries\": [...]}, for scripts\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl block list | grep 203.0.113.\n"
	  "  ztctl block list --limit 0 -o json > blocklist.json\n"
	  "  ztctl block list --feed spamhaus-drop --limit 20\n",
	  OPT_LIMIT | OPT_FEED, 0, 0, NULL, run_block_list },
	{ "block import",
	  "ztctl block import FILE [--ttl D] [--reason T] [--kind K] [--source S]\n"
	  "                          [--feed-id N]",
	  "Blocks every CIDR in FILE, one per line; '#' starts a comment, blank lines are\n"
	  "skipped, and FILE '-' reads standard input. Lines that are not a CIDR are\n"
	  "reported as FILE:LINE and skipped, the others are imported, and the exit code\n"
	  "is then 1. CIDRs go to the daemon 262144 at a time; each batch is applied\n"
	  "whole or, when the maps are full, not at all, and a refused batch ends the\n"
	  "import (the next one is read meanwhile, but not sent).\n"
	  "\n"
	  "  --ttl D        entries expire after D: 90s, 10m, 1h30m, 2d (default: never)\n"
	  "  --reason T     free text stored with every entry (63 bytes at most)\n"
	  "  --kind K       operator (default), threat-intel, scan, flood, anomaly, policy\n"
	  "  --source S     manual (default), feed, detector\n"
	  "  --feed-id N    with --source feed: which feed (shown as feed:N)\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl block import /var/lib/feeds/drop.txt --kind threat-intel \\\n"
	  "        --source feed --feed-id 3 --ttl 1d\n"
	  "  grep -v '^10\\.' scanners.txt | ztctl block import - --kind scan --ttl 6h\n",
	  OPT_TTL | OPT_REASON | OPT_KIND | OPT_SOURCE | OPT_FEED_ID, 1, 1, "FILE",
	  run_block_import },
	{ "allow add", "ztctl allow add CIDR [--reason TEXT]",
	  "Lets every packet whose source is inside CIDR through the XDP guard, even when\n"
	  "the source is also blocklisted: the allowlist wins. Use it for monitoring,\n"
	  "your own scanners, or to unblock part of a blocked range.\n"
	  "\n"
	  "  --reason TEXT   why, 63 bytes at most\n"
	  "\n"
	  "Example:\n"
	  "  ztctl allow add 198.51.100.0/28 --reason \"monitoring probes\"\n",
	  OPT_REASON, 1, 1, "CIDR", run_allow_add },
	{ "allow del", "ztctl allow del CIDR",
	  "Removes the allowlist entry for exactly CIDR; blocks that cover it apply again.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl allow del 198.51.100.0/28\n",
	  0, 1, 1, "CIDR", run_allow_del },
	{ "allow list", "ztctl allow list [-o json]",
	  "Lists the allowlist: CIDR, reason, when it was added (UTC), in the order of\n"
	  "its LPM trie (more specific prefixes first). -o json gives one document\n"
	  "{\"entries\": [...]}.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl allow list -o json\n",
	  0, 0, 0, NULL, run_allow_list },
};
const size_t ctl_block_ncmds = ZT_ARRAY_SIZE(ctl_block_cmds);
