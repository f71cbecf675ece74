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

static int op_block_del(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	struct zt_cidr c;
	char cidr[ZT_CIDR_STRLEN];
	int r;

	if ((r = req_cidr(req, &c, err, errlen)) < 0)
		return r;
	zt_cidr_format(&c, cidr, sizeof(cidr));
	r = zt_blocklist_del(bl, &c);
	if (r == -ENOENT) {
		snprintf(err, errlen, "%s is not on the blocklist (see 'ztctl block list')", cidr);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot remove %s: %s", cidr, strerror(-r));
		return r;
	}
	log_info("block_del", "cidr=%s", cidr);
	bl_audit(bl, "block.del", cidr, "{}");
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "cidr", cidr))
		return -ENOMEM;
	return 0;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct bl_slot *x = *(const struct bl_slot *const *)a;
	const struct bl_slot *y = *(const struct bl_slot *const *)b;
	int r;

	if (x->fam != y->fam)
		return x->fam - y->fam;
	r = memcmp(x->addr, y->addr, addr_len(x->fam));
	return r ? r : x->plen - y->plen;
}

static int op_block_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			 size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	uint64_t limit = 0, now = zt_now_boot_ns();
	struct bl_slot **v;
	cbor_item_t *arr;
	size_t n = 0;
	int r = 0;

	zt_cbor_get_u64(req, "limit", &limit);
	v = malloc((bl->tab.n ? bl->tab.n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < bl->tab.cap; i++)
		if (bl->tab.slots[i].used)
			v[n++] = &bl->tab.slots[i];
	qsort(v, n, sizeof(*v), slot_cmp);
	if (limit && limit < n)
		n = limit;
	*data = zt_cbor_map();
	arr = zt_cbor_array();
	if (!*data || !arr) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct zt_cidr c = { .family = v[i]->fam == FAM_V4 ? AF_INET : AF_INET6,
				     .prefixlen = v[i]->plen };
		uint8_t key[sizeof(struct zt_ip6_key)];
		struct zt_block_entry e;
		char cidr[ZT_CIDR_STRLEN], note[ZT_NOTE_LEN];
		cbor_item_t *m;

		memcpy(c.addr, v[i]->addr, addr_len(v[i]->fam));
		bl_make_key(v[i]->fam, v[i]->plen, v[i]->addr, key);
		if (bpf_map_lookup_elem(bl_entry_fd(bl, v[i]->fam, v[i]->in_trie), key, &e) < 0)
			continue; /* expired and swept meanwhile */
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
			r = -ENOMEM;
			goto out;
		}
	}
	if (zt_cbor_put_u64(*data, "total", bl->tab.n) || zt_cbor_put(*data, "entries", arr)) {
		r = -ENOMEM;
		goto out;
	}
	arr = NULL;
out:
	if (arr)
		cbor_decref(&arr);
	free(v);
	if (r < 0)
		snprintf(err, errlen, "out of memory listing %zu entries", n);
	return r;
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
	{
		char subj[64];

		snprintf(subj, sizeof(subj), "import source=%s feed_id=%u",
			 zt_block_source_name(br.source), br.feed_id);
		bl_audit(bl, "block.import", subj,
			 "{\"added\":%zu,\"replaced\":%zu,\"invalid\":%zu,\"kind\":\"%s\"}", added,
			 replaced, invalid, zt_block_reason_name(br.reason));
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
	struct zt_blocklist *bl = ctx;
	struct zt_cidr c;
	char cidr[ZT_CIDR_STRLEN];
	int r;

	if ((r = req_cidr(req, &c, err, errlen)) < 0)
		return r;
	zt_cidr_format(&c, cidr, sizeof(cidr));
	r = zt_allowlist_del(bl, &c);
	if (r == -ENOENT) {
		snprintf(err, errlen, "%s is not on the allowlist (see 'ztctl allow list')", cidr);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot remove %s: %s", cidr, strerror(-r));
		return r;
	}
	log_info("allow_del", "cidr=%s", cidr);
	bl_audit(bl, "allow.del", cidr, "{}");
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "cidr", cidr))
		return -ENOMEM;
	return 0;
}

static int op_allow_list(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			 size_t errlen)
{
	struct zt_blocklist *bl = ctx;
	cbor_item_t *arr = zt_cbor_array();

	*data = zt_cbor_map();
	if (!*data || !arr)
		goto nomem;
	for (int fam = 0; fam < 2; fam++) {
		uint8_t key[sizeof(struct zt_ip6_key)], next[sizeof(struct zt_ip6_key)];
		void *prev = NULL;

		while (bpf_map_get_next_key(bl->fd_allow[fam], prev, next) == 0) {
			struct zt_allow_entry v;
			struct zt_cidr c = { .family = fam == FAM_V4 ? AF_INET : AF_INET6 };
			char cidr[ZT_CIDR_STRLEN], note[ZT_NOTE_LEN];
			uint32_t plen;
			cbor_item_t *m;

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
		}
	}
	if (zt_cbor_put(*data, "entries", arr))
		goto nomem;
	return 0;
nomem:
	if (arr)
		cbor_decref(&arr);
	snprintf(err, errlen, "out of memory");
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
