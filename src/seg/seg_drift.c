// SPDX-License-Identifier: GPL-2.0-only
/*
 * Drift of segmentation's kernel state: each endpoint's tc filters, the
 * endpoints map and the policy generation (zt_polapply_verify). On the loop
 * thread, like every other writer of that state, so a check never meets a
 * half-done apply.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "guard/drift.h"
#include "seg/seg_int.h"
#include "tc_endpoint.skel.h"

static bool may(const struct zt_drift_hooks *h, const char *kind)
{
	return !h->may || h->may(h->ctx, kind);
}

static void check_tc(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	for (size_t i = 0; i < s->eps.n; i++) {
		const struct zt_ep *ep = s->eps.v[i];
		uint32_t found[2];
		char what[192], err[256];
		bool fix;
		int r = zt_datapath_tc_check(s->dp, ep->ifindex, found);

		if (r != 0)
			continue; /* in place, or the link went (the link watcher removes it) */
		snprintf(what, sizeof(what),
			 "tc filters: ingress prog %u, egress prog %u (ours missing or replaced)",
			 found[0], found[1]);
		fix = zt_drift_may(h, "tc", ep->ifname);
		r = fix ? zt_datapath_tc_attach(s->dp, ep->ifindex, err, sizeof(err)) : 0;
		h->report(h->ctx, "tc", ep->ifname, what, fix && r == 0, r);
	}
}

/* The object an endpoints repair is about: "endpoints ifindex 7 (v-b)". */
static void ep_subject(const struct zt_ep *ep, __u32 ifindex, char *subj, size_t n)
{
	if (ep)
		snprintf(subj, n, "%s ifindex %u (%s)", ZT_PIN_ENDPOINTS, ifindex, ep->ifname);
	else
		snprintf(subj, n, "%s ifindex %u", ZT_PIN_ENDPOINTS, ifindex);
}

/*
 * One key of the endpoints map against the endpoint table: 1 when an entry
 * was deleted (a walk's place is gone), else 0. kind_fix: the kind may be
 * repaired; whether this entry may is asked here.
 */
static int ep_check_key(struct zt_seg *s, const struct zt_drift_hooks *h, int fd, __u32 key,
			bool kind_fix)
{
	const struct zt_ep *ep = zt_ep_table_by_ifindex(&s->eps, (int)key);
	struct zt_endpoint_info v, want = { 0 };
	char subj[96], what[160];
	bool fix;
	int r = 0;

	ep_subject(ep, key, subj, sizeof(subj));
	if (!ep) {
		if (bpf_map_lookup_elem(fd, &key, &v) < 0)
			return 0;
		fix = kind_fix && zt_drift_may(h, "endpoints", subj);
		if (fix && bpf_map_delete_elem(fd, &key) < 0)
			r = -errno;
		h->report(h->ctx, "endpoints", subj, "entry for no endpoint added", fix && r == 0,
			  r);
		return fix && r == 0;
	}
	want.ep_id = ep->id;
	want.identity = ep->identity;
	if (bpf_map_lookup_elem(fd, &key, &v) < 0) {
		fix = kind_fix && zt_drift_may(h, "endpoints", subj);
		if (fix && bpf_map_update_elem(fd, &key, &want, BPF_ANY) < 0)
			r = -errno;
		h->report(h->ctx, "endpoints", subj, "entry deleted", fix && r == 0, r);
		return 0;
	}
	if (!memcmp(&v, &want, sizeof(v)))
		return 0;
	snprintf(what, sizeof(what), "entry changed: ep_id %u identity %u, expected %u %u", v.ep_id,
		 v.identity, want.ep_id, want.identity);
	fix = kind_fix && zt_drift_may(h, "endpoints", subj);
	if (fix && bpf_map_update_elem(fd, &key, &want, BPF_ANY) < 0)
		r = -errno;
	h->report(h->ctx, "endpoints", subj, what, fix && r == 0, r);
	return 0;
}

static void check_endpoints(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	int fd = bpf_map__fd(s->dp->tc->maps.endpoints);
	bool fix = may(h, "endpoints"), first = true;
	__u32 key = 0, next;
	size_t seen = 0;

	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = false;
		key = next;
		if (zt_ep_table_by_ifindex(&s->eps, (int)next))
			seen++;
		if (ep_check_key(s, h, fd, key, fix))
			first = true; /* the walk's place is gone: start over */
	}
	if (seen == s->eps.n)
		return;
	for (size_t i = 0; i < s->eps.n; i++) {
		struct zt_endpoint_info v;

		key = (__u32)s->eps.v[i]->ifindex;
		if (bpf_map_lookup_elem(fd, &key, &v) < 0)
			ep_check_key(s, h, fd, key, fix);
	}
}

/* A policy or ipcache entry's object: "policy 200000000100000005..." (the key's bytes). */
static void pol_subject(const struct zt_polapply_diff *df, char *subj, size_t n)
{
	size_t o = (size_t)snprintf(subj, n, "%s%s", df->map, df->ksz ? " " : "");

	for (size_t i = 0; i < df->ksz && o + 3 < n; i++)
		o += (size_t)snprintf(subj + o, n - o, "%02x", df->key[i]);
}

static const char *const pol_kinds[2] = { "policy", "ipcache" };

static bool pol_may(void *ctx, const struct zt_polapply_diff *df)
{
	const struct zt_drift_hooks *h = ctx;
	char subj[128];

	pol_subject(df, subj, sizeof(subj));
	return zt_drift_may(h, pol_kinds[df->kind], subj);
}

static void pol_done(void *ctx, const struct zt_polapply_diff *df, bool repaired, int err)
{
	const struct zt_drift_hooks *h = ctx;
	char subj[128];

	pol_subject(df, subj, sizeof(subj));
	h->report(h->ctx, pol_kinds[df->kind], subj, df->what, repaired, err);
}

/* Each difference reported (and repaired, when allowed) as its own object. */
static void check_policy(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	struct zt_polapply_drift_cb cb = { pol_may, pol_done, (void *)h };
	struct zt_polapply_drift d;

	zt_polapply_verify_cb(s->applier, &cb, &d);
}

/* flow_export is pinned by the flow exporter, not libbpf: its pin is checked here. */
static void check_flowexp_pin(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	char path[4200];
	struct stat st;
	int fd = zt_flowexp_fd(s->fx), r = 0;

	if (fd < 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", s->cfg->bpffs, ZT_PIN_FLOW_EXPORT);
	if (stat(path, &st) == 0)
		return;
	if (!zt_drift_may(h, "pin", path)) {
		h->report(h->ctx, "pin", path, "pin removed", false, 0);
		return;
	}
	if (bpf_obj_pin(fd, path) < 0)
		r = -errno; /* the directory itself goes first: the daemon's check makes it again */
	if (r != -ENOENT)
		h->report(h->ctx, "pin", path, "pin removed", r == 0, r);
}

void zt_seg_drift_check(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	if (!s || !h || !h->report)
		return;
	check_flowexp_pin(s, h);
	check_tc(s, h);
	check_endpoints(s, h);
	check_policy(s, h);
}

int zt_seg_drift_check_key(struct zt_seg *s, const char *map, const uint8_t *key, size_t ksz,
			   const struct zt_drift_hooks *h)
{
	struct zt_polapply_drift_cb cb = { pol_may, pol_done, (void *)h };
	__u32 ifindex;

	if (!s || !h || !h->report)
		return -EINVAL;
	if (!strcmp(map, ZT_PIN_ENDPOINTS)) {
		if (ksz != sizeof(ifindex))
			return -EINVAL;
		memcpy(&ifindex, key, sizeof(ifindex));
		ep_check_key(s, h, bpf_map__fd(s->dp->tc->maps.endpoints), ifindex,
			     may(h, "endpoints"));
		return 0;
	}
	return zt_polapply_check_key(s->applier, map, key, ksz, &cb);
}
