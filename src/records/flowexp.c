// SPDX-License-Identifier: GPL-2.0-only
/* The flow exporter: conntrack entries to flow records (see flowexp.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "guard/datapath.h"
#include "records/flowexp.h"
#include "agent/log.h"
#include "agent/util.h"

struct zt_flowexp {
	int fd; /* flow_export */
	uint64_t active_ns;
	char node[ZT_FR_NODE_MAX];
	struct zt_flowexp_names names;
	struct zt_flowexp_stats st;
	struct zt_ct_key *keys; /* sweep scratch */
	size_t cap;
	struct zt_flow_record *recs;
	size_t n_recs, cap_recs;
	struct export_op *ops; /* what the sweep records in flow_export, after the sink */
	size_t n_ops, cap_ops;
};

/* An update of flow_export (and conntrack) that waits until the sink has the records. */
struct export_op {
	struct zt_ct_key k, other;
	struct zt_flow_export ex;
	bool del, del_other, mark;
};

static int map_shape_ok(int fd, uint32_t max_entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return 0;
	return info.type == BPF_MAP_TYPE_LRU_HASH && info.key_size == sizeof(struct zt_ct_key) &&
	       info.value_size == sizeof(struct zt_flow_export) && info.max_entries == max_entries;
}

int zt_flowexp_open(const char *pin_dir, uint32_t max_entries, uint64_t active_timeout_ns,
		    const char *node, const struct zt_flowexp_names *names, struct zt_flowexp **out,
		    char *err, size_t errlen)
{
	struct zt_flowexp *x;
	char path[4200];
	int fd;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, ZT_PIN_FLOW_EXPORT);
	fd = bpf_obj_get(path);
	if (fd >= 0 && !map_shape_ok(fd, max_entries)) {
		log_warn(
			"flow_export_recreated",
			"pin=%s why=\"the pinned map has another shape (conntrack size changed?)\"",
			path);
		close(fd);
		unlink(path);
		fd = -1;
	}
	if (fd < 0) {
		fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "flow_export", sizeof(struct zt_ct_key),
				    sizeof(struct zt_flow_export), max_entries, NULL);
		if (fd < 0) {
			snprintf(err, errlen, "cannot create the flow_export map: %s",
				 strerror(errno));
			return -errno;
		}
		if (bpf_obj_pin(fd, path) < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot pin %s: %s", path, strerror(e));
			close(fd);
			return -e;
		}
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->fd = fd;
	x->active_ns = active_timeout_ns ? active_timeout_ns : 60ULL * 1000000000ULL;
	snprintf(x->node, sizeof(x->node), "%s", node ? node : "");
	if (names)
		x->names = *names;
	*out = x;
	return 0;
}

void zt_flowexp_close(struct zt_flowexp *x)
{
	if (!x)
		return;
	if (x->fd >= 0)
		close(x->fd);
	free(x->keys);
	free(x->recs);
	free(x->ops);
	free(x);
}

void zt_flowexp_get_stats(const struct zt_flowexp *x, struct zt_flowexp_stats *st)
{
	*st = x->st;
}

static struct zt_flow_record *rec_new(struct zt_flowexp *x)
{
	if (zt_grow((void **)&x->recs, &x->cap_recs, x->n_recs + 1, sizeof(*x->recs)) < 0)
		return NULL;
	return &x->recs[x->n_recs++];
}

/* The verdict of a flow: from its own entry, or the destination's when that one denied. */
struct verdict {
	uint8_t verdict, audit, reason;
	uint32_t gen, rule_id;
};

static void fill_record(struct zt_flowexp *x, struct zt_flow_record *r, const struct zt_ct_key *k,
			const struct zt_ct_val *v, const struct verdict *vd,
			const struct zt_flow_export *ex, int64_t boot_to_unix_ns)
{
	char local[ZT_FR_WORKLOAD_MAX], peer[ZT_FR_WORKLOAD_MAX], buf[ZT_FR_POLICY_MAX];
	uint64_t start_ns = ex->last_ns ? ex->last_ns : v->first_ns;
	uint64_t end_ns = v->last_ns > start_ns ? v->last_ns : start_ns;
	bool ingress = v->dir == ZT_DIR_INGRESS;

	zt_flowrec_init(r);
	r->kind = ZT_FLOW_KIND_FLOW;
	r->family = k->family == 6 ? AF_INET6 : AF_INET;
	memcpy(r->source_ip, k->saddr, 16);
	memcpy(r->dest_ip, k->daddr, 16);
	r->source_port = k->sport;
	r->dest_port = k->dport;
	r->present |= ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT | ZT_FR_HAS_SID | ZT_FR_HAS_DID;
	if (!zt_proto_has_ports(k->proto))
		r->present &= ~(uint32_t)(ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT);
	r->protocol = k->proto;
	r->packets_sent = (int64_t)(v->packets[0] - ex->packets[0]);
	r->packets_received = (int64_t)(v->packets[1] - ex->packets[1]);
	r->bytes_sent = (int64_t)(v->bytes[0] - ex->bytes[0]);
	r->bytes_received = (int64_t)(v->bytes[1] - ex->bytes[1]);
	r->packet_count = r->packets_sent + r->packets_received;
	r->tcp_flags = k->proto == IPPROTO_TCP ? (uint8_t)(v->flags_seen[0] | v->flags_seen[1]) : 0;
	r->start_time_us = ((int64_t)start_ns + boot_to_unix_ns) / 1000;
	r->end_time_us = ((int64_t)end_ns + boot_to_unix_ns) / 1000;
	r->duration_ms = (r->end_time_us - r->start_time_us) / 1000;
	if (r->duration_ms < 0)
		r->duration_ms = 0;
	r->source_identity = ingress ? v->peer_id : v->local_id;
	r->dest_identity = ingress ? v->local_id : v->peer_id;
	local[0] = peer[0] = '\0';
	if (x->names.workload) {
		x->names.workload(x->names.ctx, v->local_id, v->ep_id, local, sizeof(local));
		x->names.workload(x->names.ctx, v->peer_id, v->peer_ep_id, peer, sizeof(peer));
	}
	zt_flowrec_set_text(r->source_workload, sizeof(r->source_workload), ingress ? peer : local);
	zt_flowrec_set_text(r->dest_workload, sizeof(r->dest_workload), ingress ? local : peer);
	if (vd->verdict == ZT_VERDICT_DENY) {
		zt_flowrec_set_text(r->verdict, sizeof(r->verdict), "denied");
		r->blocked = true;
	} else {
		zt_flowrec_set_text(r->verdict, sizeof(r->verdict),
				    vd->audit ? "audit" : "allowed");
	}
	if (vd->verdict == ZT_VERDICT_DENY || vd->audit)
		zt_flowrec_set_text(r->drop_reason, sizeof(r->drop_reason),
				    zt_tc_reason_name(vd->reason));
	buf[0] = '\0';
	if (x->names.rule)
		x->names.rule(x->names.ctx, vd->gen, vd->rule_id, vd->reason, buf, sizeof(buf));
	zt_flowrec_set_text(r->policy, sizeof(r->policy),
			    buf[0] ? buf : zt_tc_reason_name(vd->reason));
	zt_flowrec_set_text(r->node, sizeof(r->node), x->node);
	if (!(x->names.ifname && x->names.ifname(x->names.ctx, (int)k->ifindex, buf, sizeof(buf))))
		zt_ifname(k->ifindex, buf, sizeof(buf));
	zt_flowrec_set_text(r->interface, sizeof(r->interface), buf);
	zt_flowrec_set_text(r->direction, sizeof(r->direction), ingress ? "ingress" : "egress");
}

static bool has_delta(const struct zt_ct_val *v, const struct zt_flow_export *ex)
{
	return v->packets[0] != ex->packets[0] || v->packets[1] != ex->packets[1];
}

static void mark(struct zt_flow_export *ex, const struct zt_ct_val *v, bool final)
{
	ex->first_ns = v->first_ns;
	ex->packets[0] = v->packets[0];
	ex->packets[1] = v->packets[1];
	ex->bytes[0] = v->bytes[0];
	ex->bytes[1] = v->bytes[1];
	ex->last_ns = v->last_ns;
	ex->final = final;
}

static void delete_entry(struct zt_flowexp *x, int ct_fd, const struct zt_ct_key *k)
{
	if (bpf_map_delete_elem(ct_fd, k) == 0)
		x->st.entries_deleted++;
	bpf_map_delete_elem(x->fd, k);
}

int zt_flowexp_sweep(struct zt_flowexp *x, int ct_fd, uint64_t now, zt_flow_sink_fn sink,
		     void *sink_ctx)
{
	struct zt_ct_key next, *prev = NULL;
	int64_t off = zt_boot_to_unix_ns();
	size_t n = 0;
	int emitted = 0;

	x->st.sweeps++;
	x->n_recs = 0;
	x->n_ops = 0;
	/* Keys first: deleting while walking would restart the walk. */
	while (bpf_map_get_next_key(ct_fd, prev, &next) == 0) {
		if (zt_grow((void **)&x->keys, &x->cap, n + 1, sizeof(*x->keys)) < 0)
			return -ENOMEM;
		x->keys[n] = next;
		prev = &x->keys[n];
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		const struct zt_ct_key *k = &x->keys[i];
		struct zt_ct_key other = *k;
		struct zt_ct_val v, ov;
		struct zt_flow_export ex = {};
		struct verdict vd;
		bool alive, idle, closed, denied_quiet, have_other = false, final = false;
		bool emit = false, del = false;
		uint64_t quiet;

		if (bpf_map_lookup_elem(ct_fd, k, &v) < 0)
			continue;
		/* Absent, or an earlier flow's on a reused key: nothing recorded yet. */
		if (bpf_map_lookup_elem(x->fd, k, &ex) < 0 || ex.first_ns != v.first_ns)
			memset(&ex, 0, sizeof(ex));
		vd = (struct verdict){ .verdict = v.verdict,
				       .audit = v.audit,
				       .reason = v.reason,
				       .gen = v.gen,
				       .rule_id = v.rule_id };
		/* Local to local: find the entry on the other endpoint's veth. */
		if (v.peer_ep_id && x->names.ep_ifindex) {
			int oif = x->names.ep_ifindex(x->names.ctx, v.peer_ep_id);

			if (oif > 0 && (uint32_t)oif != k->ifindex) {
				other.ifindex = (uint32_t)oif;
				have_other = bpf_map_lookup_elem(ct_fd, &other, &ov) == 0;
			}
		}
		if (have_other && v.dir == ZT_DIR_INGRESS && ov.dir == ZT_DIR_EGRESS) {
			/* The destination's entry: the source's records this flow. */
			x->st.deduplicated++;
			continue;
		}
		if (have_other && ov.dir == ZT_DIR_INGRESS && v.verdict != ZT_VERDICT_DENY &&
		    (ov.verdict == ZT_VERDICT_DENY || (ov.audit && !v.audit)))
			vd = (struct verdict){ .verdict = ov.verdict,
					       .audit = ov.audit,
					       .reason = ov.reason,
					       .gen = ov.gen,
					       .rule_id = ov.rule_id };
		/* The source's veth sees both directions: its entry's counts are the flow's. */
		quiet = now > v.last_ns ? now - v.last_ns : 0;
		alive = !x->names.is_endpoint ||
			x->names.is_endpoint(x->names.ctx, (int)k->ifindex);
		idle = quiet > zt_ct_timeout(k->proto, v.state);
		closed = k->proto == IPPROTO_TCP && v.state == ZT_CT_CLOSED &&
			 quiet >= ZT_FLOWEXP_CLOSE_GRACE_NS;
		denied_quiet = vd.verdict == ZT_VERDICT_DENY && quiet >= ZT_FLOWEXP_DENY_QUIET_NS;
		if (!alive || idle || denied_quiet) {
			del = true;
			final = true;
			emit = has_delta(&v, &ex) || !ex.last_ns;
		} else if (closed) {
			final = true;
			emit = !ex.final && (has_delta(&v, &ex) || !ex.last_ns);
		} else if (!ex.final && has_delta(&v, &ex) &&
			   v.last_ns - (ex.last_ns ? ex.last_ns : v.first_ns) >= x->active_ns) {
			/* The packets not yet recorded span active_timeout: a long flow. */
			emit = true;
		}
		if (emit && sink) {
			struct zt_flow_record *r = rec_new(x);

			if (r) {
				fill_record(x, r, k, &v, &vd, &ex, off);
				emitted++;
				if (final)
					x->st.records_final++;
				else
					x->st.records_interim++;
			}
		}
		if (del || (emit && sink)) {
			struct export_op *op;

			if (zt_grow((void **)&x->ops, &x->cap_ops, x->n_ops + 1, sizeof(*x->ops)) <
			    0)
				continue; /* neither marked nor deleted: recorded again next sweep */
			op = &x->ops[x->n_ops++];
			*op = (struct export_op){ .k = *k, .other = other, .del = del };
			op->del_other = del && have_other && ov.dir == ZT_DIR_INGRESS;
			op->mark = !del;
			if (op->mark) {
				op->ex = ex;
				mark(&op->ex, &v, final);
			}
		}
	}
	/*
	 * The sink first (the daemon's makes the records durable before it
	 * returns), then what they cover is marked recorded, or the entry
	 * deleted: a SIGKILL in between records those deltas again, never
	 * loses them.
	 */
	if (sink && x->n_recs)
		sink(sink_ctx, x->recs, x->n_recs);
	for (size_t i = 0; i < x->n_ops; i++) {
		const struct export_op *op = &x->ops[i];

		if (op->del) {
			delete_entry(x, ct_fd, &op->k);
			if (op->del_other)
				delete_entry(x, ct_fd, &op->other);
		} else if (bpf_map_update_elem(x->fd, &op->k, &op->ex, BPF_ANY) < 0) {
			log_warn(
				"flow_export_update",
				"error=\"%s\" why=\"a restart may record this flow's counts again\"",
				strerror(errno));
		}
	}
	x->n_ops = 0;
	return emitted;
}
