// SPDX-License-Identifier: GPL-2.0-only
/* The block and allow lists' API operations: add, del, list, import. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/log.h"
#include "guard/blocklist_int.h"
#include "records/auditq.h"

/* ---- API ---- */

static int req_cidr(const cbor_item_t *req, struct zt_cidr *c, char *err, size_t errlen)
{
	char s[128];
	bool host_bits = false;
	int r = zt_cbor_get_str(req, "cidr", s, sizeof(s));

	if (r < 0) {
		snprintf(err, errlen, "field 'cidr': %s", r == -ENOENT ? "missing" : "not a text");
		return -EINVAL;
	}
	if (zt_cidr_parse(s, c, &host_bits) < 0) {
		char q[160];
		snprintf(err, errlen, "'%s' is not an IPv4/IPv6 address or prefix",
			 zt_log_quote(q, sizeof(q), s));
		return -EINVAL;
	}
	return 0;
}

static int req_block(const cbor_item_t *req, struct zt_block_req *br, char *note, size_t notelen,
		     char *err, size_t errlen)
{
	char kind[32], source[32];
	uint64_t ttl = 0, feed = 0;
	int r;

	memset(br, 0, sizeof(*br));
	br->reason = ZT_BR_OPERATOR;
	br->source = ZT_BS_MANUAL;
	r = zt_cbor_get_u64(req, "ttl_s", &ttl);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "field 'ttl_s': expected a whole number of seconds");
		return -EINVAL;
	}
	if (ttl > 100ULL * 365 * 86400) {
		snprintf(err, errlen, "field 'ttl_s': %llu s is more than 100 years",
			 (unsigned long long)ttl);
		return -ERANGE;
	}
	br->ttl_ns = ttl * 1000000000ULL;
	note[0] = '\0';
	r = zt_cbor_get_str(req, "reason", note, notelen);
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "field 'reason': %s",
			 r == -E2BIG ? "longer than 63 bytes or contains NUL" : "not a text");
		return -EINVAL;
	}
	r = zt_cbor_get_str(req, "kind", kind, sizeof(kind));
	if (r == 0 && zt_block_reason_parse(kind, &br->reason) < 0) {
		snprintf(
			err, errlen,
			"field 'kind': expected operator, threat-intel, scan, flood, anomaly or policy");
		return -EINVAL;
	}
	r = zt_cbor_get_str(req, "source", source, sizeof(source));
	if (r == 0 && zt_block_source_parse(source, &br->source) < 0) {
		snprintf(err, errlen, "field 'source': expected manual, feed or detector");
		return -EINVAL;
	}
	if (zt_cbor_get_u64(req, "feed_id", &feed) == 0) {
		if (feed > UINT32_MAX) {
			snprintf(err, errlen, "field 'feed_id': larger than %u", UINT32_MAX);
			return -ERANGE;
		}
		br->feed_id = feed;
	}
	br->note = note;
	return 0;
}

static uint64_t expires_unix(uint64_t expires_ns)
{
	uint64_t now = zt_now_boot_ns();

	if (!expires_ns)
		return 0;
	if (expires_ns <= now)
		return zt_now_unix();
	return zt_now_unix() + (expires_ns - now + 999999999ULL) / 1000000000ULL;
}

static int op_block_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	struct zt_block_req br;
	struct zt_cidr c;
	char note[ZT_NOTE_LEN], cidr[ZT_CIDR_STRLEN], q[ZT_NOTE_LEN * 4];
	bool replaced = false;
	int r;

	if ((r = req_cidr(req, &c, err, errlen)) < 0 ||
	    (r = req_block(req, &br, note, sizeof(note), err, errlen)) < 0)
		return r;
	r = zt_blocklist_add(bl, &c, &br, &replaced, err, errlen);
	if (r < 0)
		return r;
	zt_cidr_format(&c, cidr, sizeof(cidr));
	log_info("block_add", "cidr=%s ttl_s=%llu kind=%s source=%s reason=%s replaced=%d", cidr,
		 (unsigned long long)(br.ttl_ns / 1000000000ULL), zt_block_reason_name(br.reason),
		 zt_block_source_name(br.source), zt_log_quote(q, sizeof(q), note), replaced);
	zt_json_escape(note, q, sizeof(q));
	bl_audit(
		bl, "block.add", cidr,
		"{\"ttl_s\":%llu,\"kind\":\"%s\",\"source\":\"%s\",\"reason\":\"%s\",\"replaced\":%s}",
		(unsigned long long)(br.ttl_ns / 1000000000ULL), zt_block_reason_name(br.reason),
		zt_block_source_name(br.source), q, replaced ? "true" : "false");
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "cidr", cidr) ||
	    zt_cbor_put_u64(*data, "expires_unix",
			    br.ttl_ns ? zt_now_unix() + br.ttl_ns / 1000000000ULL : 0) ||
	    zt_cbor_put_bool(*data, "replaced", replaced))
		return -ENOMEM;
	return 0;
}

/* block.del and allow.del: WHAT is "block" or "allow" (its list, ztctl verb and events). */
static int del_op(struct zt_blocklist *bl, const cbor_item_t *req, cbor_item_t **data, char *err,
		  size_t errlen, const char *what,
		  int (*del)(struct zt_blocklist *, const struct zt_cidr *))
{
	struct zt_cidr c;
	char cidr[ZT_CIDR_STRLEN], ev[16];
	int r;

	if ((r = req_cidr(req, &c, err, errlen)) < 0)
		return r;
	zt_cidr_format(&c, cidr, sizeof(cidr));
	r = del(bl, &c);
	if (r == -ENOENT) {
		snprintf(err, errlen, "%s is not on the %slist (see 'ztctl %s list')", cidr, what,
			 what);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot remove %s: %s", cidr, strerror(-r));
		return r;
	}
	snprintf(ev, sizeof(ev), "%s_del", what);
	log_info(ev, "cidr=%s", cidr);
	snprintf(ev, sizeof(ev), "%s.del", what);
	bl_audit(bl, ev, cidr, "{}");
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "cidr", cidr))
		return -ENOMEM;
	return 0;
}

static int op_block_del(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			size_t errlen)
{
	return del_op(ctx, req, data, err, errlen, "block", zt_blocklist_del);
}

/*
 * Listings come in pages of at most LIST_PAGE entries: a page's CBOR tree is
 * a few MiB whatever the size of the list. A reply carries "next" when more
 * may follow; the request that sends it back as "cursor" gets the entries
 * after it. Entries present during the whole walk are listed exactly once.
 */
#define LIST_PAGE 2048
/*
 * A page also ends once its entries took this long to look up and encode
 * (at least LIST_PAGE_MIN of them, so a walk always moves on): the loop
 * that serves the API is held for a few ms per page even when the machine
 * is busy, and ztctl's loop asks for the rest.
 */
#define LIST_PAGE_BUDGET_NS 10000000ULL
#define LIST_PAGE_MIN 64

static int put_bytes(cbor_item_t *m, const char *key, const uint8_t *b, size_t n)
{
	cbor_item_t *v = cbor_build_bytestring(b, n);

	if (!v || zt_cbor_put(m, key, v) < 0) {
		if (v)
			cbor_decref(&v);
		return -ENOMEM;
	}
	return 0;
}

static int req_page(const cbor_item_t *req, uint64_t *limit, const cbor_item_t **cursor, char *err,
		    size_t errlen)
{
	const cbor_item_t *c = zt_cbor_get(req, "cursor");

	*limit = 0;
	if (zt_cbor_get_u64(req, "limit", limit) == -EINVAL) {
		snprintf(err, errlen, "field 'limit': expected a whole number");
		return -EINVAL;
	}
	if (!*limit || *limit > LIST_PAGE)
		*limit = LIST_PAGE;
	if (c && (!cbor_isa_bytestring(c) || !cbor_bytestring_is_definite(c))) {
		snprintf(err, errlen,
			 "field 'cursor': expected the bytes of an earlier reply's 'next'");
		return -EINVAL;
	}
	*cursor = c;
	return 0;
}

#define FEED_SCAN_PAGES 32 /* pages looked through for one filtered page, at most */

/*
 * Keeps the entries of page (*n of them) that feed owns and fills up from
 * later pages until limit are kept or FEED_SCAN_PAGES were looked through.
 * *last is the last entry looked at, kept or not: the next page starts
 * after it, so a short (even empty) page with *more set is normal.
 */
static int filter_feed(const struct zt_blocklist *bl, const char *feed, struct bl_pos *page,
		       ssize_t *n, size_t limit, bool *more, struct bl_pos *last)
{
	size_t kept = 0, base = 0;
	ssize_t got = *n;

	for (int scans = 0;; scans++) {
		for (ssize_t i = 0; i < got; i++) {
			struct zt_cidr c;
			int m;

			bl_key_cidr(&page[base + i].k, &c);
			m = bl->feed_match(bl->feed_match_ctx, feed, &c);
			if (m < 0)
				return m;
			*last = page[base + i];
			if (m)
				page[kept++] = page[base + i];
		}
		if (kept >= limit || !*more || scans + 1 >= FEED_SCAN_PAGES || !got)
			break;
		/* The next candidates land right after those kept. */
		base = kept;
		got = bl_list_page(bl, last, page + base, limit - kept, more);
		if (got < 0)
			return (int)got;
	}
	*n = (ssize_t)kept;
	return 0;
}

static int op_block_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			 size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	uint64_t limit, now = zt_now_boot_ns(), t0 = zt_now_mono_ns();
	const cbor_item_t *cur;
	struct bl_pos after, *page = NULL, last;
	cbor_item_t *arr = NULL;
	char feed[ZT_FEED_NAME_MAX] = "";
	ssize_t n;
	bool more, truncated = false;
	int r;

	if ((r = req_page(req, &limit, &cur, err, errlen)) < 0)
		return r;
	if (cur &&
	    bl_pos_decode(cbor_bytestring_handle(cur), cbor_bytestring_length(cur), &after) < 0) {
		snprintf(
			err, errlen,
			"field 'cursor': not a block list position (%zu bytes; expected the 'next' of an earlier reply)",
			cbor_bytestring_length(cur));
		return -EINVAL;
	}
	if (zt_cbor_get_str(req, "feed", feed, sizeof(feed)) == -EINVAL) {
		snprintf(err, errlen, "field 'feed': expected a feed name (text)");
		return -EINVAL;
	}
	if (feed[0] && !bl->feed_match) {
		snprintf(err, errlen, "no feeds are configured (feeds: in the configuration)");
		return -ENOENT;
	}
	page = malloc(limit * sizeof(*page));
	if (!page)
		goto nomem;
	n = bl_list_page(bl, cur ? &after : NULL, page, limit, &more);
	if (n < 0)
		goto nomem;
	if (feed[0]) {
		r = filter_feed(bl, feed, page, &n, limit, &more, &last);
		if (r == -ENOENT) {
			free(page);
			snprintf(err, errlen,
				 "no feed named '%s' (ztctl feeds list shows the configured ones)",
				 feed);
			return r;
		}
		if (r < 0)
			goto nomem;
	}
	*data = zt_cbor_map();
	arr = zt_cbor_array();
	if (!*data || !arr)
		goto nomem;
	for (ssize_t i = 0; i < n; i++) {
		const struct bl_key *k = &page[i].k;
		struct zt_cidr c;
		uint8_t key[sizeof(struct zt_ip6_key)];
		struct zt_block_entry e;
		char cidr[ZT_CIDR_STRLEN], note[ZT_NOTE_LEN];
		cbor_item_t *m;

		if (i >= LIST_PAGE_MIN && !(i & 15) &&
		    zt_now_mono_ns() - t0 >= LIST_PAGE_BUDGET_NS) {
			/* Over budget: the next page starts after the last entry listed. */
			n = i;
			more = true;
			truncated = true;
			break;
		}
		bl_key_cidr(k, &c);
		bl_make_key(k->fam, k->plen, k->addr, key);
		if (bpf_map_lookup_elem(bl_entry_fd(bl, k->fam, k->in_trie), key, &e) < 0)
			continue; /* deleted meanwhile */
		zt_cidr_format(&c, cidr, sizeof(cidr));
		bl_note_text(bl, e.note_id, note, sizeof(note));
		m = zt_cbor_map();
		if (!m || zt_cbor_put_str(m, "cidr", cidr) ||
		    zt_cbor_put_str(m, "kind", zt_block_reason_name(e.reason)) ||
		    zt_cbor_put_str(m, "source", zt_block_source_name(e.source)) ||
		    zt_cbor_put_u64(m, "feed_id", e.feed_id) ||
		    zt_cbor_put_str(m, "reason", note) ||
		    zt_cbor_put_u64(m, "created_unix", e.created_unix) ||
		    zt_cbor_put_u64(m, "expires_unix", expires_unix(e.expires_ns)) ||
		    zt_cbor_put_bool(m, "expired", e.expires_ns && e.expires_ns <= now) ||
		    zt_cbor_push(arr, m)) {
			if (m)
				cbor_decref(&m);
			goto nomem;
		}
	}
	if (zt_cbor_put_u64(*data, "total", bl_total(bl)) || zt_cbor_put(*data, "entries", arr))
		goto nomem;
	arr = NULL;
	if (more) {
		uint8_t w[BL_POS_WIRE];

		bl_pos_encode(feed[0] && !truncated ? &last : &page[n - 1], w);
		if (put_bytes(*data, "next", w, sizeof(w)) < 0)
			goto nomem;
	}
	free(page);
	return 0;
nomem:
	if (arr)
		cbor_decref(&arr);
	free(page);
	snprintf(err, errlen, "out of memory listing the blocklist");
	return -ENOMEM;
}

/* Adds a text to an array; on failure the text is freed, the array unchanged. */
static void push_msg(cbor_item_t *arr, const char *msg)
{
	cbor_item_t *t = cbor_build_string(msg);

	if (t && zt_cbor_push(arr, t) < 0)
		cbor_decref(&t);
}

#define IMPORT_MAX 1048576
#define IMPORT_ERRORS 10

static int op_block_import(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	cbor_item_t *list = zt_cbor_get(req, "cidrs"), *packed = zt_cbor_get(req, "packed");
	cbor_item_t *errs = NULL;
	struct zt_block_req br;
	struct zt_cidr *cs = NULL;
	char note[ZT_NOTE_LEN];
	size_t n, nc = 0, invalid = 0, added = 0, replaced = 0, npacked;
	int r;

	if (packed && (!cbor_isa_bytestring(packed) || !cbor_bytestring_is_definite(packed) ||
		       cbor_bytestring_length(packed) % ZT_PACKED_CIDR_LEN)) {
		snprintf(err, errlen, "field 'packed': expected bytes, a multiple of %d long",
			 ZT_PACKED_CIDR_LEN);
		return -EINVAL;
	}
	if (list && !cbor_isa_array(list)) {
		snprintf(err, errlen, "field 'cidrs': expected an array of texts");
		return -EINVAL;
	}
	if (!list && !packed) {
		snprintf(err, errlen, "give 'cidrs' (texts) or 'packed' (bytes)");
		return -EINVAL;
	}
	npacked = packed ? cbor_bytestring_length(packed) / ZT_PACKED_CIDR_LEN : 0;
	n = (list ? cbor_array_size(list) : 0) + npacked;
	if (n > IMPORT_MAX) {
		snprintf(err, errlen, "field 'cidrs': %zu items, at most %d per request", n,
			 IMPORT_MAX);
		return -E2BIG;
	}
	if ((r = req_block(req, &br, note, sizeof(note), err, errlen)) < 0)
		return r;
	cs = malloc((n ? n : 1) * sizeof(*cs));
	errs = zt_cbor_array();
	if (!cs || !errs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < npacked; i++) {
		const uint8_t *rec = cbor_bytestring_handle(packed) + i * ZT_PACKED_CIDR_LEN;
		struct zt_cidr *c = &cs[nc];

		c->family = rec[0] == 4 ? AF_INET : rec[0] == 6 ? AF_INET6 : 0;
		c->prefixlen = rec[1];
		memcpy(c->addr, rec + 2, 16);
		if (!c->family || c->prefixlen > (rec[0] == 4 ? 32 : 128)) {
			if (invalid++ < IMPORT_ERRORS) {
				char msg[96];

				snprintf(
					msg, sizeof(msg),
					"packed record %zu: family %u / prefix length %u is invalid",
					i, rec[0], rec[1]);
				push_msg(errs, msg);
			}
			continue;
		}
		zt_cidr_mask(c);
		nc++;
	}
	for (size_t i = 0; list && i < cbor_array_size(list); i++) {
		cbor_item_t *it = cbor_array_get(list, i);
		char s[128];

		if (zt_cbor_str(it, s, sizeof(s)) == 0 && zt_cidr_parse(s, &cs[nc], NULL) == 0) {
			nc++;
		} else {
			if (invalid++ < IMPORT_ERRORS) {
				char msg[256], q[160];

				if (zt_cbor_str(it, s, sizeof(s)) < 0)
					snprintf(s, sizeof(s), "(not a short text)");
				snprintf(msg, sizeof(msg),
					 "item %zu: '%s': not an IPv4/IPv6 address or prefix", i,
					 zt_log_quote(q, sizeof(q), s));
				push_msg(errs, msg);
			}
		}
		cbor_decref(&it);
	}
	r = zt_blocklist_import(bl, cs, nc, &br, &added, &replaced, err, errlen);
	if (r < 0)
		goto out;
	log_info("block_import", "added=%zu replaced=%zu invalid=%zu kind=%s source=%s feed_id=%u",
		 added, replaced, invalid, zt_block_reason_name(br.reason),
		 zt_block_source_name(br.source), br.feed_id);
	/* Every entry written is a change: the blocks rows come from these events' CIDRs. */
	{
		char subj[64], head[512], q[ZT_NOTE_LEN * 4];

		snprintf(subj, sizeof(subj), "import source=%s feed_id=%u",
			 zt_block_source_name(br.source), br.feed_id);
		zt_json_escape(note, q, sizeof(q));
		snprintf(head, sizeof(head),
			 "\"added\":%zu,\"replaced\":%zu,\"invalid\":%zu,\"ttl_s\":%llu,"
			 "\"kind\":\"%s\",\"source\":\"%s\",\"feed_id\":%u,\"reason\":\"%s\"",
			 added, replaced, invalid, (unsigned long long)(br.ttl_ns / 1000000000ULL),
			 zt_block_reason_name(br.reason), zt_block_source_name(br.source),
			 br.feed_id, q);
		bl_audit_cidrs(bl, "block.import", subj, head, cs, nc);
	}
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_u64(*data, "added", added) ||
	    zt_cbor_put_u64(*data, "replaced", replaced) ||
	    zt_cbor_put_u64(*data, "invalid", invalid) || zt_cbor_put(*data, "errors", errs)) {
		r = -ENOMEM;
		goto out;
	}
	errs = NULL;
out:
	if (errs)
		cbor_decref(&errs);
	free(cs);
	return r;
}

static int op_allow_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	struct zt_cidr c;
	char note[ZT_NOTE_LEN] = "", cidr[ZT_CIDR_STRLEN], q[ZT_NOTE_LEN * 4];
	int r;

	if ((r = req_cidr(req, &c, err, errlen)) < 0)
		return r;
	r = zt_cbor_get_str(req, "reason", note, sizeof(note));
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "field 'reason': longer than 63 bytes or not a text");
		return -EINVAL;
	}
	zt_cidr_format(&c, cidr, sizeof(cidr));
	r = zt_allowlist_add(bl, &c, note);
	if (r < 0) {
		snprintf(err, errlen, "cannot add %s to the allowlist: %s%s", cidr, strerror(-r),
			 r == -ENOSPC || r == -E2BIG ? " (xdp.allowlist_max reached)" : "");
		return r;
	}
	log_info("allow_add", "cidr=%s reason=%s", cidr, zt_log_quote(q, sizeof(q), note));
	zt_json_escape(note, q, sizeof(q));
	bl_audit(bl, "allow.add", cidr, "{\"reason\":\"%s\"}", q);
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "cidr", cidr))
		return -ENOMEM;
	return 0;
}

static int op_allow_del(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			size_t errlen)
{
	return del_op(ctx, req, data, err, errlen, "allow", zt_allowlist_del);
}

/*
 * The order in which the kernel walks an LPM trie (postorder: the 0 branch,
 * the 1 branch, then the node), so that a listing can resume after a key
 * that was deleted between two pages.
 */
static int trie_order(const uint8_t *a, uint32_t la, const uint8_t *b, uint32_t lb)
{
	uint32_t m = la < lb ? la : lb;

	for (uint32_t i = 0; i < m; i++) {
		int ba = a[i / 8] >> (7 - i % 8) & 1, bb = b[i / 8] >> (7 - i % 8) & 1;

		if (ba != bb)
			return ba - bb;
	}
	return la == lb ? 0 : la > lb ? -1 : 1;
}

#define ALLOW_POS_WIRE 18 /* family, prefix length, address[16] */

/*
 * Sets *prev to where the walk of a trie resumes after the cursor key:
 * the key itself when it still exists, else the last key before it in walk
 * order (NULL: from the start). *prev points into buf.
 */
static void allow_resume(int fd, const uint8_t *ckey, uint8_t *buf, void **prev)
{
	uint8_t next[sizeof(struct zt_ip6_key)], val[sizeof(struct zt_allow_entry)];
	uint32_t cl, nl;
	void *p = NULL;

	memcpy(buf, ckey, sizeof(struct zt_ip6_key));
	if (bpf_map_lookup_elem(fd, buf, val) == 0) {
		*prev = buf;
		return;
	}
	memcpy(&cl, ckey, sizeof(cl));
	*prev = NULL;
	while (bpf_map_get_next_key(fd, p, next) == 0) {
		memcpy(&nl, next, sizeof(nl));
		if (trie_order(next + 4, nl, ckey + 4, cl) > 0)
			return;
		memcpy(buf, next, sizeof(next));
		p = *prev = buf;
	}
}

static int op_allow_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			 size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	const cbor_item_t *cur;
	cbor_item_t *arr = NULL;
	uint8_t ckey[sizeof(struct zt_ip6_key)] = {}, last[ALLOW_POS_WIRE];
	uint64_t limit, n = 0;
	int fam0 = FAM_V4, r;
	bool more = false;

	if ((r = req_page(req, &limit, &cur, err, errlen)) < 0)
		return r;
	if (cur) {
		const uint8_t *b = cbor_bytestring_handle(cur);

		if (cbor_bytestring_length(cur) != ALLOW_POS_WIRE || b[0] > FAM_V6 ||
		    b[1] > (b[0] == FAM_V4 ? 32 : 128)) {
			snprintf(
				err, errlen,
				"field 'cursor': not an allowlist position (expected the 'next' of an earlier reply)");
			return -EINVAL;
		}
		fam0 = b[0];
		bl_make_key(fam0, b[1], b + 2, ckey);
	}
	*data = zt_cbor_map();
	arr = zt_cbor_array();
	if (!*data || !arr)
		goto nomem;
	for (int fam = fam0; fam < 2 && !more; fam++) {
		uint8_t key[sizeof(struct zt_ip6_key)], next[sizeof(struct zt_ip6_key)];
		void *prev = NULL;

		if (cur && fam == fam0)
			allow_resume(bl->fd_allow[fam], ckey, key, &prev);
		while (bpf_map_get_next_key(bl->fd_allow[fam], prev, next) == 0) {
			struct zt_allow_entry v;
			struct zt_cidr c = { .family = fam == FAM_V4 ? AF_INET : AF_INET6 };
			char cidr[ZT_CIDR_STRLEN], note[ZT_NOTE_LEN];
			uint32_t plen;
			cbor_item_t *m;

			if (n == limit) {
				more = true;
				break;
			}
			memcpy(key, next, sizeof(key));
			prev = key;
			if (bpf_map_lookup_elem(bl->fd_allow[fam], key, &v) < 0)
				continue;
			memcpy(&plen, key, sizeof(plen));
			c.prefixlen = plen;
			memcpy(c.addr, key + sizeof(uint32_t), addr_len(fam));
			zt_cidr_format(&c, cidr, sizeof(cidr));
			bl_note_text(bl, v.note_id, note, sizeof(note));
			m = zt_cbor_map();
			if (!m || zt_cbor_put_str(m, "cidr", cidr) ||
			    zt_cbor_put_str(m, "reason", note) ||
			    zt_cbor_put_u64(m, "created_unix", v.created_unix) ||
			    zt_cbor_push(arr, m)) {
				if (m)
					cbor_decref(&m);
				goto nomem;
			}
			n++;
			last[0] = (uint8_t)fam;
			last[1] = (uint8_t)plen;
			memset(last + 2, 0, 16);
			memcpy(last + 2, c.addr, addr_len(fam));
		}
	}
	if (zt_cbor_put(*data, "entries", arr))
		goto nomem;
	arr = NULL;
	if (more && put_bytes(*data, "next", last, sizeof(last)) < 0)
		goto nomem;
	return 0;
nomem:
	if (arr)
		cbor_decref(&arr);
	snprintf(err, errlen, "out of memory listing the allowlist");
	return -ENOMEM;
}

int zt_blocklist_register_api(struct zt_blocklist *bl, struct zt_api *api)
{
	static const struct {
		const char *op;
		zt_api_handler fn;
	} ops[] = {
		{ ZT_OP_BLOCK_ADD, op_block_add },   { ZT_OP_BLOCK_DEL, op_block_del },
		{ ZT_OP_BLOCK_LIST, op_block_list }, { ZT_OP_BLOCK_IMPORT, op_block_import },
		{ ZT_OP_ALLOW_ADD, op_allow_add },   { ZT_OP_ALLOW_DEL, op_allow_del },
		{ ZT_OP_ALLOW_LIST, op_allow_list },
	};
	for (size_t i = 0; i < ZT_ARRAY_SIZE(ops); i++) {
		int r = zt_api_register(api, ops[i].op, ops[i].fn, bl);
		if (r < 0)
			return r;
	}
	return 0;
}
