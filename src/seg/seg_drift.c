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
		fix = may(h, "tc");
		r = fix ? zt_datapath_tc_attach(s->dp, ep->ifindex, err, sizeof(err)) : 0;
		h->report(h->ctx, "tc", ep->ifname, what, fix && r == 0, r);
	}
}

static void check_endpoints(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	int fd = bpf_map__fd(s->dp->tc->maps.endpoints);
	bool fix = may(h, "endpoints"), first = true;
	__u32 key = 0, next;
	size_t seen = 0;

	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		struct zt_endpoint_info v, want = { 0 };
		const struct zt_ep *ep = zt_ep_table_by_ifindex(&s->eps, (int)next);
		char subj[32], what[160];
		int r = 0;

		first = false;
		key = next;
		snprintf(subj, sizeof(subj), "ifindex %u", next);
		if (!ep) {
			if (fix && bpf_map_delete_elem(fd, &key) < 0)
				r = -errno;
			if (fix && r == 0)
				first = true; /* the walk's place is gone: start over */
			h->report(h->ctx, "endpoints", subj, "entry for no endpoint added", fix, r);
			continue;
		}
		seen++;
		want.ep_id = ep->id;
		want.identity = ep->identity;
		if (bpf_map_lookup_elem(fd, &key, &v) < 0 || !memcmp(&v, &want, sizeof(v)))
			continue;
		snprintf(what, sizeof(what), "entry changed: ep_id %u identity %u, expected %u %u",
			 v.ep_id, v.identity, want.ep_id, want.identity);
		if (fix && bpf_map_update_elem(fd, &key, &want, BPF_ANY) < 0)
			r = -errno;
		h->report(h->ctx, "endpoints", ep->ifname, what, fix && r == 0, r);
	}
	if (seen == s->eps.n)
		return;
	for (size_t i = 0; i < s->eps.n; i++) {
		const struct zt_ep *ep = s->eps.v[i];
		struct zt_endpoint_info v, want = { .ep_id = ep->id, .identity = ep->identity };
		int r = 0;

		key = (__u32)ep->ifindex;
		if (bpf_map_lookup_elem(fd, &key, &v) == 0)
			continue;
		if (fix && bpf_map_update_elem(fd, &key, &want, BPF_ANY) < 0)
			r = -errno;
		h->report(h->ctx, "endpoints", ep->ifname, "entry deleted", fix && r == 0, r);
	}
}

static void check_policy(struct zt_seg *s, const struct zt_drift_hooks *h)
{
	static const char *const kinds[2] = { "policy", "ipcache" };
	static const char *const maps[2] = { ZT_PIN_POLICY "," ZT_PIN_POL_ISOLATION,
					     ZT_PIN_IPCACHE_V4 "," ZT_PIN_IPCACHE_V6 };
	struct zt_polapply_drift d;
	bool fix = may(h, "policy") && may(h, "ipcache");
	int r = zt_polapply_verify(s->applier, fix, &d);

	for (int k = 0; k < 2; k++) {
		char what[320];

		if (!d.extra[k] && !d.changed[k] && !d.missing[k] && !(k == 0 && d.gen_changed))
			continue;
		snprintf(what, sizeof(what),
			 "%zu entries added, %zu changed, %zu deleted%s; first: %s", d.extra[k],
			 d.changed[k], d.missing[k],
			 k == 0 && d.gen_changed ? ", published generation changed" : "", d.first);
		h->report(h->ctx, kinds[k], maps[k], what, fix && r == 0, r);
	}
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
	if (!may(h, "pin")) {
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
