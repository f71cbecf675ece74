// SPDX-License-Identifier: GPL-2.0-only
/* The flow exporter: conntrack entries to flow records (see flowexp.h). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "guard/activity.h"
#include "guard/datapath.h"
#include "agent/loop.h"
#include "records/flowexp.h"
#include "agent/log.h"
#include "agent/util.h"

/* The verdict of a flow: from its own entry, or the destination's when that one denied. */
struct verdict {
	uint8_t verdict, audit, reason;
	uint32_t gen, rule_id;
};

/* A half-open TCP flow that ended in this call (see flush_half_open). */
struct half_open {
	struct zt_ct_key k;
	struct zt_ct_val v;
	struct verdict vd;
};

/*
 * What flow_export holds for an entry, as this sweep last read or wrote it:
 * lets may_be_due skip the entries whose next step is only their timeout
 * (a closed flow already recorded waits for its close timeout, several
 * seconds of sweeps) without reading flow_export again. A set-associative
 * cache by the key's hash (FX_MEMO_WAYS slots a set, a newer entry takes
 * one); a slot whose first_ns differs (a reused key) is not used. Only a
 * shortcut: without a slot an entry is looked up as before.
 */
#define FX_MEMO_SETS 16384u
#define FX_MEMO_WAYS 4u

struct fx_memo {
	uint64_t kh; /* the key's hash, 0: empty */
	uint64_t first_ns; /* the flow's, as recorded */
	uint64_t last_ns; /* flow_export's last_ns */
	bool final;
};

struct zt_flowexp {
	int fd; /* flow_export */
	uint64_t active_ns;
	char node[ZT_FR_NODE_MAX];
	struct zt_flowexp_names names;
	struct zt_flowexp_stats st;
	uint64_t entries; /* atomic: entries the last complete rotation saw */
	/* The batch being worked through: keys[pos..n) are still to look at. */
	struct zt_ct_key *keys;
	struct zt_ct_val *vals;
	uint32_t slice, due_max;
	uint32_t n, pos;
	uint32_t cursor; /* the next bucket; valid with mid_rotation */
	bool mid_rotation;
	bool last_batch; /* the batch in keys[] ends the rotation */
	uint64_t rot_min_ns; /* zt_flowexp_set_rotation_min */
	uint64_t rot_start; /* now of the current (or last) rotation's first read */
	bool rot_started;
	uint64_t rot_seen; /* entries read in the rotation under way */
	int alive_if; /* last is_endpoint answer, for runs of one interface */
	struct fx_memo *memo; /* see may_be_due; NULL without memory */
	bool alive_val;
	struct zt_flow_record *recs;
	size_t n_recs, cap_recs;
	struct half_open *half;
	size_t n_half, cap_half;
	struct export_op *ops; /* what the sweep records in flow_export, after the sink */
	size_t n_ops, cap_ops;
	/*
	 * The worker (zt_flowexp_start_worker): while busy it owns recs[] and
	 * ops[] and the loop's sweeps wait their turn (deferred), so no entry
	 * is acted on twice before flow_export says what was recorded.
	 */
	bool worker;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy, stop;
	zt_flowexp_prep_fn prep;
	void *prep_ctx;
	zt_flow_sink_fn job_sink;
	void *job_ctx;
	int job_ct_fd;
};

/* An update of flow_export (and conntrack) that waits until the sink has the records. */
struct export_op {
	struct zt_ct_key k, other;
	struct zt_flow_export ex;
	bool del, del_other, had_ex, mark;
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
	x->slice = ZT_FLOWEXP_SLICE;
	x->due_max = ZT_FLOWEXP_DUE_MAX;
	x->keys = calloc(x->slice, sizeof(*x->keys));
	x->vals = calloc(x->slice, sizeof(*x->vals));
	x->memo = calloc(FX_MEMO_SETS * FX_MEMO_WAYS, sizeof(*x->memo));
	if (!x->keys || !x->vals) {
		zt_flowexp_close(x);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
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
	if (x->worker) {
		/* The sweep handed over is finished first: its records sunk, flow_export updated. */
		pthread_mutex_lock(&x->mu);
		x->stop = true;
		pthread_cond_broadcast(&x->cv);
		pthread_mutex_unlock(&x->mu);
		pthread_join(x->thr, NULL);
		pthread_mutex_destroy(&x->mu);
		pthread_cond_destroy(&x->cv);
	}
	if (x->st.sweeps)
		log_info("flow_export_stopped",
			 "sweeps=%llu deferred=%llu records=%llu loop_max_us=%llu "
			 "loop_cpu_max_us=%llu prep_max_us=%llu worker_max_us=%llu",
			 (unsigned long long)x->st.sweeps, (unsigned long long)x->st.deferred,
			 (unsigned long long)(x->st.records_final + x->st.records_interim),
			 (unsigned long long)(x->st.loop_ns_max / 1000),
			 (unsigned long long)(x->st.loop_cpu_ns_max / 1000),
			 (unsigned long long)(x->st.prep_ns_max / 1000),
			 (unsigned long long)(x->st.worker_ns_max / 1000));
	if (x->fd >= 0)
		close(x->fd);
	free(x->keys);
	free(x->vals);
	free(x->memo);
	free(x->recs);
	free(x->half);
	free(x->ops);
	free(x);
}

void zt_flowexp_get_stats(const struct zt_flowexp *x, struct zt_flowexp_stats *st)
{
	*st = x->st;
	st->entries = zt_flowexp_entries(x);
	st->entries_deleted = __atomic_load_n(&x->st.entries_deleted, __ATOMIC_RELAXED);
	st->worker_ns_max = __atomic_load_n(&x->st.worker_ns_max, __ATOMIC_RELAXED);
}

uint64_t zt_flowexp_entries(const struct zt_flowexp *x)
{
	return x ? __atomic_load_n(&x->entries, __ATOMIC_RELAXED) : 0;
}

void zt_flowexp_set_rotation_min(struct zt_flowexp *x, uint64_t min_ns)
{
	if (x)
		x->rot_min_ns = min_ns;
}

int zt_flowexp_set_slice(struct zt_flowexp *x, uint32_t slice, uint32_t due_max)
{
	struct zt_ct_key *k;
	struct zt_ct_val *v;

	if (slice < ZT_FLOWEXP_SLICE_MIN || !due_max)
		return -EINVAL;
	k = calloc(slice, sizeof(*k));
	v = calloc(slice, sizeof(*v));
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	free(x->keys);
	free(x->vals);
	x->keys = k;
	x->vals = v;
	x->slice = slice;
	x->due_max = due_max;
	/* What was read and not yet looked at is read again by the next rotation. */
	x->n = x->pos = 0;
	x->mid_rotation = false;
	x->rot_seen = 0;
	return 0;
}

/* The identity source (zt_flowexp_set_identity_source): set and cleared under ids_lock. */
static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;
static zt_flowexp_ids_fn ids_fn;
static void *ids_ctx;

void zt_flowexp_set_identity_source(zt_flowexp_ids_fn fn, void *ctx)
{
	pthread_mutex_lock(&ids_lock);
	ids_fn = fn;
	ids_ctx = ctx;
	pthread_mutex_unlock(&ids_lock);
}

static bool ids_lookup(const struct zt_ct_key *k, char *src, char *dst, size_t n)
{
	bool ok = false;

	pthread_mutex_lock(&ids_lock);
	if (ids_fn)
		ok = ids_fn(ids_ctx, k, src, dst, n);
	pthread_mutex_unlock(&ids_lock);
	return ok && src[0] && dst[0];
}

static struct zt_flow_record *rec_new(struct zt_flowexp *x)
{
	if (zt_grow((void **)&x->recs, &x->cap_recs, x->n_recs + 1, sizeof(*x->recs)) < 0)
		return NULL;
	return &x->recs[x->n_recs++];
}

static void fill_record(struct zt_flowexp *x, struct zt_flow_record *r, const struct zt_ct_key *k,
			const struct zt_ct_val *v, const struct verdict *vd,
			const struct zt_flow_export *ex, int64_t boot_to_unix_ns)
{
	char local[ZT_FR_WORKLOAD_MAX], peer[ZT_FR_WORKLOAD_MAX], buf[ZT_FR_POLICY_MAX];
	uint64_t start_ns = ex->last_ns ? ex->last_ns : v->first_ns;
	uint64_t last_ns = zt_ct_last_ns(v), end_ns = last_ns > start_ns ? last_ns : start_ns;
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
	r->packets_sent = (int64_t)(v->d[0].packets - ex->packets[0]);
	r->packets_received = (int64_t)(v->d[1].packets - ex->packets[1]);
	r->bytes_sent = (int64_t)(v->d[0].bytes - ex->bytes[0]);
	r->bytes_received = (int64_t)(v->d[1].bytes - ex->bytes[1]);
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
	/* Tunnelled: its packets went through the agent (not only required to: bypass drops). */
	r->mtls = (v->mtls & ZT_CT_MTLS_VIA) && vd->verdict == ZT_VERDICT_ALLOW &&
		  !(v->mtls & ZT_CT_TLS_BAD);
	if (r->mtls) {
		char src[ZT_FR_SPIFFE_MAX], dst[ZT_FR_SPIFFE_MAX];

		if (ids_lookup(k, src, dst, sizeof(src))) {
			zt_flowrec_set_text(r->source_spiffe_id, sizeof(r->source_spiffe_id), src);
			zt_flowrec_set_text(r->dest_spiffe_id, sizeof(r->dest_spiffe_id), dst);
		}
	}
	/* Sizes, gaps and flags as the datapath keeps them, for the scorer (features.h). */
	zt_ct_flowstats(v, &r->flowstats);
	r->has_flowstats = true;
}

static bool has_delta(const struct zt_ct_val *v, const struct zt_flow_export *ex)
{
	return v->d[0].packets != ex->packets[0] || v->d[1].packets != ex->packets[1];
}

static void mark(struct zt_flow_export *ex, const struct zt_ct_val *v, bool final)
{
	ex->first_ns = v->first_ns;
	ex->packets[0] = v->d[0].packets;
	ex->packets[1] = v->d[1].packets;
	ex->bytes[0] = v->d[0].bytes;
	ex->bytes[1] = v->d[1].bytes;
	ex->last_ns = zt_ct_last_ns(v);
	ex->final = final;
}

static void delete_entry(struct zt_flowexp *x, int ct_fd, const struct zt_ct_key *k, bool had_ex)
{
	/* On the worker when there is one, while the loop may read the stats. */
	if (bpf_map_delete_elem(ct_fd, k) == 0)
		__atomic_fetch_add(&x->st.entries_deleted, 1, __ATOMIC_RELAXED);
	if (had_ex)
		bpf_map_delete_elem(x->fd, k);
}

static bool alive(struct zt_flowexp *x, uint32_t ifindex)
{
	if (!x->names.is_endpoint)
		return true;
	/* Entries of one interface come in runs: ask once per run. */
	if (x->alive_if != (int)ifindex) {
		x->alive_if = (int)ifindex;
		x->alive_val = x->names.is_endpoint(x->names.ctx, (int)ifindex);
	}
	return x->alive_val;
}

static uint64_t key_hash(const struct zt_ct_key *k)
{
	uint64_t w[sizeof(*k) / 8 + 1] = { 0 }, h = 0x9E3779B97F4A7C15ULL;

	memcpy(w, k, sizeof(*k));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		h = zt_mix64(h ^ w[i]);
	return h ? h : 1;
}

/* The entry's slot in its set, or (want_free) the one it may take; NULL without the cache. */
static struct fx_memo *memo_slot(const struct zt_flowexp *x, uint64_t kh, bool want_free)
{
	struct fx_memo *set;

	if (!x->memo)
		return NULL;
	set = &x->memo[(kh & (FX_MEMO_SETS - 1)) * FX_MEMO_WAYS];
	for (unsigned int i = 0; i < FX_MEMO_WAYS; i++)
		if (set[i].kh == kh)
			return &set[i];
	if (!want_free)
		return NULL;
	for (unsigned int i = 0; i < FX_MEMO_WAYS; i++)
		if (!set[i].kh)
			return &set[i];
	return &set[(kh >> 32) % FX_MEMO_WAYS];
}

/* The entry's slot when it holds this flow (same key hash, same first packet). */
static const struct fx_memo *memo_get(const struct zt_flowexp *x, const struct zt_ct_key *k,
				      uint64_t first_ns)
{
	const struct fx_memo *m = memo_slot(x, key_hash(k), false);

	return m && m->first_ns == first_ns ? m : NULL;
}

static void memo_put(struct zt_flowexp *x, const struct zt_ct_key *k,
		     const struct zt_flow_export *ex)
{
	uint64_t kh = key_hash(k);
	struct fx_memo *m = memo_slot(x, kh, true);

	if (m)
		*m = (struct fx_memo){ .kh = kh,
				       .first_ns = ex->first_ns,
				       .last_ns = ex->last_ns,
				       .final = ex->final };
}

static void memo_drop(struct zt_flowexp *x, const struct zt_ct_key *k)
{
	struct fx_memo *m = memo_slot(x, key_hash(k), false);

	if (m)
		m->kh = 0;
}

/*
 * Whether anything can be due for an entry, from its values alone. Most
 * entries of a big table (live flows younger than the active timeout) are
 * not, and cost no syscall; the rest are read again and decided on.
 */
static bool may_be_due(struct zt_flowexp *x, const struct zt_ct_key *k, const struct zt_ct_val *v,
		       uint64_t now)
{
	uint64_t last_ns = zt_ct_last_ns(v), quiet = now > last_ns ? now - last_ns : 0;
	const struct fx_memo *m;
	bool closed, long_flow;

	if (!alive(x, k->ifindex) || quiet > zt_ct_timeout(k->proto, v->state))
		return true;
	/* Denied by its own entry, or perhaps by the destination's (a local peer). */
	if (quiet >= ZT_FLOWEXP_DENY_QUIET_NS && (v->verdict == ZT_VERDICT_DENY || v->peer_ep_id))
		return true;
	closed = k->proto == IPPROTO_TCP && v->state == ZT_CT_CLOSED &&
		 quiet >= ZT_FLOWEXP_CLOSE_GRACE_NS;
	long_flow = last_ns > v->first_ns && last_ns - v->first_ns >= x->active_ns;
	if (!closed && !long_flow)
		return false;
	/*
	 * A closed flow past its grace, or a long one: due unless flow_export
	 * says it is recorded final (only its timeout is left), or that its
	 * unrecorded packets do not span active_timeout yet (sweep_entry).
	 */
	m = memo_get(x, k, v->first_ns);
	if (!m)
		return true;
	if (m->final)
		return false;
	return closed || last_ns - (m->last_ns ? m->last_ns : v->first_ns) >= x->active_ns;
}

static bool half_open(const struct zt_ct_key *k, const struct zt_ct_val *v)
{
	return k->proto == IPPROTO_TCP && (v->state == ZT_CT_NEW || v->state == ZT_CT_SYN_RECV);
}

/* One due entry: read again, decided on, recorded and deleted as it says. */
static void sweep_entry(struct zt_flowexp *x, int ct_fd, const struct zt_ct_key *k, uint64_t now,
			int64_t off, bool recording, int *emitted)
{
	struct zt_ct_key other = *k;
	struct zt_ct_val v, ov;
	struct zt_flow_export ex = {};
	struct verdict vd;
	bool alive_now, idle, closed, denied_quiet, have_other = false, final = false, had_ex;
	bool emit = false, del = false;
	uint64_t quiet, last_ns;

	if (bpf_map_lookup_elem(ct_fd, k, &v) < 0)
		return; /* gone since the batch was read */
	had_ex = bpf_map_lookup_elem(x->fd, k, &ex) == 0;
	/* Absent, or an earlier flow's on a reused key: nothing recorded yet. */
	if (!had_ex || ex.first_ns != v.first_ns)
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
		return;
	}
	if (have_other && ov.dir == ZT_DIR_INGRESS && v.verdict != ZT_VERDICT_DENY &&
	    (ov.verdict == ZT_VERDICT_DENY || (ov.audit && !v.audit)))
		vd = (struct verdict){ .verdict = ov.verdict,
				       .audit = ov.audit,
				       .reason = ov.reason,
				       .gen = ov.gen,
				       .rule_id = ov.rule_id };
	/* The source's veth sees both directions: its entry's counts are the flow's. */
	last_ns = zt_ct_last_ns(&v);
	quiet = now > last_ns ? now - last_ns : 0;
	alive_now = alive(x, k->ifindex);
	idle = quiet > zt_ct_timeout(k->proto, v.state);
	closed = k->proto == IPPROTO_TCP && v.state == ZT_CT_CLOSED &&
		 quiet >= ZT_FLOWEXP_CLOSE_GRACE_NS;
	denied_quiet = vd.verdict == ZT_VERDICT_DENY && quiet >= ZT_FLOWEXP_DENY_QUIET_NS;
	if (!alive_now || idle || denied_quiet) {
		del = true;
		final = true;
		emit = has_delta(&v, &ex) || !ex.last_ns;
	} else if (closed) {
		final = true;
		emit = !ex.final && (has_delta(&v, &ex) || !ex.last_ns);
	} else if (!ex.final && has_delta(&v, &ex) &&
		   last_ns - (ex.last_ns ? ex.last_ns : v.first_ns) >= x->active_ns) {
		/* The packets not yet recorded span active_timeout: a long flow. */
		emit = true;
	}
	if (emit && recording) {
		if (final && !ex.last_ns && half_open(k, &v)) {
			/* Recorded with its like at the end of the call. */
			if (zt_grow((void **)&x->half, &x->cap_half, x->n_half + 1,
				    sizeof(*x->half)) == 0)
				x->half[x->n_half++] =
					(struct half_open){ .k = *k, .v = v, .vd = vd };
		} else {
			struct zt_flow_record *r = rec_new(x);

			if (r) {
				fill_record(x, r, k, &v, &vd, &ex, off);
				(*emitted)++;
				if (final)
					x->st.records_final++;
				else
					x->st.records_interim++;
			}
		}
	}
	/* Nothing to do now: what flow_export holds spares the next sweeps a read (may_be_due). */
	if (!del && !(emit && recording) && had_ex && ex.first_ns == v.first_ns)
		memo_put(x, k, &ex);
	if (del || (emit && recording)) {
		struct export_op *op;

		if (zt_grow((void **)&x->ops, &x->cap_ops, x->n_ops + 1, sizeof(*x->ops)) < 0)
			return; /* neither marked nor deleted: recorded again next sweep */
		op = &x->ops[x->n_ops++];
		*op = (struct export_op){ .k = *k, .other = other, .del = del, .had_ex = had_ex };
		op->del_other = del && have_other && ov.dir == ZT_DIR_INGRESS;
		op->mark = !del;
		if (op->mark) {
			op->ex = ex;
			mark(&op->ex, &v, final);
		}
	}
}

/*
 * After the sink (the daemon's makes the records durable before it
 * returns), what they cover is marked recorded, or the entry deleted: a
 * SIGKILL in between records those deltas again, never loses them.
 */
static void apply_ops(struct zt_flowexp *x, int ct_fd)
{
	uint64_t yielded = 0;

	for (size_t i = 0; i < x->n_ops; i++) {
		const struct export_op *op = &x->ops[i];

		if (i % 32 == 31)
			zt_yield_due(&yielded);
		if (op->del) {
			delete_entry(x, ct_fd, &op->k, op->had_ex);
			memo_drop(x, &op->k);
			if (op->del_other) {
				delete_entry(x, ct_fd, &op->other, true);
				memo_drop(x, &op->other);
			}
		} else if (bpf_map_update_elem(x->fd, &op->k, &op->ex, BPF_ANY) < 0) {
			log_warn(
				"flow_export_update",
				"error=\"%s\" why=\"a restart may record this flow's counts again\"",
				strerror(errno));
			memo_drop(x, &op->k);
		} else {
			memo_put(x, &op->k, &op->ex);
		}
	}
	x->n_ops = 0;
}

/* What makes two half-open flows one row: everything but the client's port. */
static int half_cmp(const void *pa, const void *pb)
{
	const struct half_open *a = pa, *b = pb;
	int c;

#define HALF_CMP(f)                                  \
	do {                                         \
		if (a->f != b->f)                    \
			return a->f < b->f ? -1 : 1; \
	} while (0)
	HALF_CMP(k.ifindex);
	HALF_CMP(k.family);
	c = memcmp(a->k.saddr, b->k.saddr, sizeof(a->k.saddr));
	if (c)
		return c;
	c = memcmp(a->k.daddr, b->k.daddr, sizeof(a->k.daddr));
	if (c)
		return c;
	HALF_CMP(k.dport);
	HALF_CMP(v.dir);
	HALF_CMP(vd.verdict);
	HALF_CMP(vd.audit);
	HALF_CMP(vd.reason);
	HALF_CMP(vd.gen);
	HALF_CMP(vd.rule_id);
	HALF_CMP(v.local_id);
	HALF_CMP(v.peer_id);
	HALF_CMP(v.ep_id);
	HALF_CMP(v.peer_ep_id);
	HALF_CMP(k.sport);
#undef HALF_CMP
	return 0;
}

static bool half_same_row(const struct half_open *a, const struct half_open *b)
{
	struct half_open t = *b;

	t.k.sport = a->k.sport;
	return half_cmp(a, &t) == 0;
}

/*
 * Half-open TCP flows that ended (timed out, denied, or their interface
 * went) become rows: one per (interface, source, destination, port,
 * verdict) among those ending in this call, with aggregate_count flows and
 * their summed packets and bytes, so a SYN flood from a few sources is a
 * few rows a tick, not one per spoofed connection. A row of one flow is
 * the flow's ordinary record; a row of several has no source port.
 */
static void flush_half_open(struct zt_flowexp *x, int64_t off, int *emitted)
{
	size_t i = 0;

	qsort(x->half, x->n_half, sizeof(*x->half), half_cmp);
	while (i < x->n_half) {
		const struct half_open *h = &x->half[i];
		struct zt_flow_export none = {};
		struct zt_ct_val sum = h->v;
		struct zt_flow_record *r;
		size_t j = i + 1;

		for (; j < x->n_half && half_same_row(h, &x->half[j]); j++) {
			const struct zt_ct_val *w = &x->half[j].v;

			for (int d = 0; d < 2; d++) {
				sum.d[d].packets += w->d[d].packets;
				sum.d[d].bytes += w->d[d].bytes;
				sum.flags_seen[d] |= w->flags_seen[d];
				if (w->d[d].last_ns > sum.d[d].last_ns)
					sum.d[d].last_ns = w->d[d].last_ns;
			}
			if (w->first_ns < sum.first_ns)
				sum.first_ns = w->first_ns;
		}
		r = rec_new(x);
		if (r) {
			fill_record(x, r, &h->k, &sum, &h->vd, &none, off);
			r->aggregate_count = (int64_t)(j - i);
			if (j - i > 1) {
				r->source_port = 0;
				r->present &= ~(uint32_t)ZT_FR_HAS_SPORT;
				/* The first flow's statistics do not describe the sum. */
				r->has_flowstats = false;
			}
			(*emitted)++;
			x->st.records_final++;
			x->st.halfopen_rows++;
			x->st.halfopen_flows += j - i;
		}
		i = j;
	}
	x->n_half = 0;
}

/*
 * How many entries a batch read asks for. Paced by the daemon (a rotation
 * at most every rot_min_ns, a call every ZT_FLOWEXP_TICK_NS), a table that
 * fits in fewer ticks than a rotation's is read in as many pieces as the
 * pace allows (the last rotation's size, a quarter to spare): one read of
 * 8192 entries holds its CPU ~2 ms in the kernel, which a task woken there
 * waits out. A bigger table gets the whole slice: its rotations take
 * longer, never its pieces. So does a table that outgrew the last count.
 */
static uint32_t read_count(const struct zt_flowexp *x)
{
	uint64_t n = __atomic_load_n(&x->entries, __ATOMIC_RELAXED);

	/*
	 * Not paced, or the table's size not known: the first rotation, or one
	 * that has read more than the last one saw (the table grew: 250000
	 * flows filled in at once behind a rotation of one read 1024 a tick, a
	 * rotation of 12 s).
	 */
	if (x->rot_min_ns <= ZT_FLOWEXP_TICK_NS || !n || x->rot_seen > n)
		return x->slice;
	n = n * ZT_FLOWEXP_TICK_NS / x->rot_min_ns;
	n += n / 4 + 1;
	if (n < ZT_FLOWEXP_READ_MIN)
		n = ZT_FLOWEXP_READ_MIN;
	return n < x->slice ? (uint32_t)n : x->slice;
}

/* Reads the next batch of the rotation into keys[]. Returns 0 or -errno. */
static int read_batch(struct zt_flowexp *x, int ct_fd, uint64_t now)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = read_count(x), next = 0;
	int r;

	if (!x->mid_rotation) {
		x->rot_start = now;
		x->rot_started = true;
	}
	r = bpf_map_lookup_batch(ct_fd, x->mid_rotation ? &x->cursor : NULL, &next, x->keys,
				 x->vals, &n, &opts);
	if (r < 0 && r != -ENOENT) {
		x->n = x->pos = 0;
		return r;
	}
	x->n = n;
	x->pos = 0;
	x->last_batch = r == -ENOENT;
	x->cursor = next;
	x->mid_rotation = !x->last_batch;
	x->rot_seen += n;
	return 0;
}

/*
 * CLOCK_BOOTTIME to unix time, to the millisecond. Read afresh the offset
 * jitters by some ns between calls (and exporters: a restart), enough to
 * date a flow's next record a microsecond off the end of its previous
 * one; rounded, it is the same value until the wall clock really moves.
 */
static int64_t boot_offset(void)
{
	return (zt_boot_to_unix_ns() + 500000) / 1000000 * 1000000;
}

/* The sink and the map updates of a gathered sweep: on the caller's thread, or the worker's. */
static void finish(struct zt_flowexp *x, int ct_fd, zt_flow_sink_fn sink, void *sink_ctx)
{
	if (sink && x->n_recs)
		sink(sink_ctx, x->recs, x->n_recs);
	apply_ops(x, ct_fd);
	x->n_recs = 0;
}

static void *worker_main(void *arg)
{
	struct zt_flowexp *x = arg;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		while (!x->busy && !x->stop)
			pthread_cond_wait(&x->cv, &x->mu);
		if (!x->busy)
			break; /* stop, nothing handed over */
		pthread_mutex_unlock(&x->mu);
		{
			uint64_t t0 = zt_now_mono_ns(), dt;

			finish(x, x->job_ct_fd, x->job_sink, x->job_ctx);
			dt = zt_now_mono_ns() - t0;
			if (dt > __atomic_load_n(&x->st.worker_ns_max, __ATOMIC_RELAXED))
				__atomic_store_n(&x->st.worker_ns_max, dt, __ATOMIC_RELAXED);
		}
		pthread_mutex_lock(&x->mu);
		x->busy = false;
		pthread_cond_broadcast(&x->cv);
	}
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

int zt_flowexp_start_worker(struct zt_flowexp *x, zt_flowexp_prep_fn prep, void *prep_ctx)
{
	int r;

	if (x->worker)
		return -EALREADY;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	x->prep = prep;
	x->prep_ctx = prep_ctx;
	r = pthread_create(&x->thr, NULL, worker_main, x);
	if (r) {
		pthread_mutex_destroy(&x->mu);
		pthread_cond_destroy(&x->cv);
		return -r;
	}
	pthread_setname_np(x->thr, "zt-flowexp");
	x->worker = true;
	return 0;
}

void zt_flowexp_flush(struct zt_flowexp *x)
{
	if (!x || !x->worker)
		return;
	pthread_mutex_lock(&x->mu);
	while (x->busy)
		pthread_cond_wait(&x->cv, &x->mu);
	pthread_mutex_unlock(&x->mu);
}

static bool worker_busy(struct zt_flowexp *x)
{
	bool b;

	if (!x->worker)
		return false;
	pthread_mutex_lock(&x->mu);
	b = x->busy;
	pthread_mutex_unlock(&x->mu);
	return b;
}

static int sweep_gather(struct zt_flowexp *x, int ct_fd, uint64_t now, bool recording);

int zt_flowexp_sweep(struct zt_flowexp *x, int ct_fd, uint64_t now, zt_flow_sink_fn sink,
		     void *sink_ctx)
{
	uint64_t t0 = zt_now_mono_ns(), c0 = zt_thread_cpu_ns(), tp = 0, dt;
	int r;

	if (worker_busy(x)) {
		/* The previous sweep's records are still being written: this tick waits. */
		x->st.deferred++;
		return 0;
	}
	r = sweep_gather(x, ct_fd, now, sink != NULL);
	if (r >= 0 && x->prep && sink && x->n_recs) {
		tp = zt_now_mono_ns();
		x->prep(x->prep_ctx, x->recs, x->n_recs);
		tp = zt_now_mono_ns() - tp;
	}
	if (r >= 0 && x->worker && (x->n_recs || x->n_ops)) {
		pthread_mutex_lock(&x->mu);
		x->job_sink = sink;
		x->job_ctx = sink_ctx;
		x->job_ct_fd = ct_fd;
		x->busy = true;
		pthread_cond_signal(&x->cv);
		pthread_mutex_unlock(&x->mu);
	} else if (r >= 0) {
		finish(x, ct_fd, sink, sink_ctx);
	}
	dt = zt_now_mono_ns() - t0;
	if (dt > x->st.loop_ns_max)
		x->st.loop_ns_max = dt;
	if (tp > x->st.prep_ns_max)
		x->st.prep_ns_max = tp;
	dt = zt_thread_cpu_ns() - c0;
	if (dt > x->st.loop_cpu_ns_max)
		x->st.loop_cpu_ns_max = dt;
	return r;
}

static int sweep_gather(struct zt_flowexp *x, int ct_fd, uint64_t now, bool recording)
{
	int64_t off = boot_offset();
	uint32_t looked = 0, due = 0;
	uint64_t yielded = 0;
	int emitted = 0, r = 0;

	x->st.sweeps++;
	x->n_recs = 0;
	x->n_half = 0;
	x->n_ops = 0;
	x->alive_if = -1;
	/*
	 * A bounded slice: at most `slice` entries looked at and `due_max` of
	 * them acted on (each of those costs a few syscalls), then back to the
	 * loop. What is left of the batch waits for the next call.
	 */
	if (x->pos >= x->n) {
		/* Between rotations, paced: nothing is read before the next may start. */
		if (!x->mid_rotation && x->rot_min_ns && x->rot_started && now >= x->rot_start &&
		    now - x->rot_start < x->rot_min_ns)
			return 0;
		r = read_batch(x, ct_fd, now);
		if (r < 0)
			return r;
	}
	while (x->pos < x->n && looked < x->slice && due < x->due_max) {
		const struct zt_ct_key *k = &x->keys[x->pos];
		const struct zt_ct_val *v = &x->vals[x->pos];

		x->pos++;
		looked++;
		if (looked % 64 == 0)
			zt_yield_due(&yielded);
		if (!may_be_due(x, k, v, now))
			continue;
		due++;
		x->st.rechecked++;
		sweep_entry(x, ct_fd, k, now, off, recording, &emitted);
		if (due % 16 == 0)
			zt_yield_due(&yielded);
	}
	if (x->pos >= x->n && x->last_batch) {
		__atomic_store_n(&x->entries, x->rot_seen, __ATOMIC_RELAXED);
		x->rot_seen = 0;
		x->last_batch = false;
		x->st.rotations++;
	}
	if (looked > x->st.slice_max)
		x->st.slice_max = looked;
	if (x->n_half)
		flush_half_open(x, off, &emitted);
	return emitted;
}

int zt_flowexp_fd(const struct zt_flowexp *x)
{
	return x ? x->fd : -1;
}
