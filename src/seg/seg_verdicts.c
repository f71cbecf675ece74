// SPDX-License-Identifier: GPL-2.0-only
/*
 * Verdict events from tc_endpoint (on the ring-buffer thread): the recent-flows
 * ring for `ztctl flows`, rate-limited logs, policy-violation audit events, and
 * the names (workloads, rules, interfaces) that events and flow records carry.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "agent/util.h"
#include "records/auditq.h"
#include "seg/seg_int.h"

const char *const seg_verdict_names[3] = { "allowed", "denied", "audit" };

static void name_identity(const struct zt_seg *s, const struct gen_rec *g, uint32_t id,
			  uint32_t ep_id, char *buf, size_t n)
{
	if (ep_id) {
		for (size_t i = 0; i < s->eps.n; i++)
			if (s->eps.v[i]->id == ep_id) {
				snprintf(buf, n, "%s", s->eps.v[i]->qname);
				return;
			}
		snprintf(buf, n, "endpoint:%u", ep_id);
		return;
	}
	if (id == ZT_ID_HOST) {
		snprintf(buf, n, "host");
		return;
	}
	if (id == ZT_ID_PENDING) {
		snprintf(buf, n, "pending");
		return;
	}
	if (id == ZT_ID_WORLD_V4 || id == ZT_ID_WORLD_V6) {
		snprintf(buf, n, "world");
		return;
	}
	/* A pod of another node (the Kubernetes watch): one of the pods with that identity. */
	for (size_t i = 0; id >= ZT_ID_FIRST_LABELS && id < ZT_ID_FIRST_CIDR && i < s->n_remote;
	     i++)
		if (s->remote[i].identity == id) {
			snprintf(buf, n, "%s", s->remote[i].qname);
			return;
		}
	if (g && g->c && id >= ZT_ID_FIRST_CIDR) {
		for (size_t i = 0; i < g->c->n_cidr_ids; i++)
			if (g->c->cidr_ids[i].identity == id) {
				char c[ZT_CIDR_STRLEN];

				zt_cidr_format(&g->c->cidr_ids[i].cidr, c, sizeof(c));
				snprintf(buf, n, "cidr:%s", c);
				return;
			}
	}
	snprintf(buf, n, "identity:%u", id);
}

static const struct gen_rec *gen_find(const struct zt_seg *s, uint32_t gen)
{
	for (size_t i = 0; i < GENS_KEPT; i++)
		if (s->gens[i].c && s->gens[i].gen == gen)
			return &s->gens[i];
	return NULL;
}

/* An endpoint's interface name from the table: if_indextoname() is a socket and an ioctl. */
bool seg_fx_ifname(void *ctx, int ifindex, char *buf, size_t n)
{
	const struct zt_ep *ep = zt_ep_table_by_ifindex(&((struct zt_seg *)ctx)->eps, ifindex);

	if (!ep)
		return false;
	snprintf(buf, n, "%s", ep->ifname);
	return true;
}

/* The rule text of alerts and flow records: the rule, "default-deny: ...", or the reason. */
static void describe_rule(const struct gen_rec *g, uint32_t gen, uint32_t rule_id, uint8_t reason,
			  char *buf, size_t n)
{
	if (rule_id && g && reason == ZT_REASON_NO_RULE) {
		/* The policy that isolates the endpoint; no rule of any policy allowed. */
		char pol[192];

		zt_polc_rule_describe(g->c, rule_id, pol, sizeof(pol));
		snprintf(buf, n, "default-deny: isolated by %.191s, no rule allows", pol);
	} else if (rule_id && g) {
		zt_polc_rule_describe(g->c, rule_id, buf, n);
	} else if (rule_id) {
		snprintf(buf, n, "rule %u of generation %u", rule_id, gen);
	} else if (reason == ZT_REASON_NO_RULE || reason == ZT_REASON_DEFAULT_DENY) {
		/* No rule allowed it: the zero-trust default decided ("reason" says why). */
		snprintf(buf, n, "default-deny");
	} else {
		snprintf(buf, n, "%s", zt_tc_reason_name(reason));
	}
}

/* Every denial and audit-mode would-deny goes to the audit trail. */
static void audit_violation(struct zt_seg *s, const struct flow_rec *f)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN], subj[160], sw[600], dw[600], rule[600],
		d[2400], ifn[100];
	int fam = f->family == 6 ? AF_INET6 : AF_INET;

	inet_ntop(fam, f->saddr, sa, sizeof(sa));
	inet_ntop(fam, f->daddr, da, sizeof(da));
	snprintf(subj, sizeof(subj), "%s %s:%u -> %s:%u", zt_pol_proto_name(f->proto), sa, f->sport,
		 da, f->dport);
	zt_json_escape(f->src_wl, sw, sizeof(sw));
	zt_json_escape(f->dst_wl, dw, sizeof(dw));
	zt_json_escape(f->rule, rule, sizeof(rule));
	zt_json_escape(f->ifname, ifn, sizeof(ifn));
	snprintf(
		d, sizeof(d),
		"{\"verdict\":\"%s\",\"reason\":\"%s\",\"rule\":\"%s\",\"protocol\":\"%s\",\"src\":\"%s\",\"sport\":%u,\"dst\":\"%s\",\"dport\":%u,\"direction\":\"%s\",\"src_identity\":%u,\"dst_identity\":%u,\"src_workload\":\"%s\",\"dst_workload\":\"%s\",\"interface\":\"%s\",\"revoked\":%s}",
		seg_verdict_names[f->verdict], zt_tc_reason_name(f->reason), rule,
		zt_pol_proto_name(f->proto), sa, f->sport, da, f->dport,
		f->dir == ZT_DIR_INGRESS ? "ingress" : "egress", f->src_id, f->dst_id, sw, dw, ifn,
		f->revoked ? "true" : "false");
	s->audit(s->audit_ctx, "policy.violation", subj, d);
}

void seg_on_policy_event(void *ctx, const void *rec, size_t len)
{
	struct zt_seg *s = ctx;
	const struct zt_ev_policy *e = rec;
	const struct gen_rec *g = NULL;
	struct flow_rec *f;
	char local[sizeof(f->src_wl)], peer[sizeof(f->src_wl)];
	uint64_t now = zt_now_mono_ns();
	bool log_it;

	/* events.c passes only records of at least sizeof(*e). */
	pthread_mutex_lock(&s->lock);
	g = gen_find(s, e->gen);
	f = &s->ring[s->next_seq % FLOW_RING];
	memset(f, 0, sizeof(*f));
	f->seq = s->next_seq++;
	f->unix_ms = (uint64_t)zt_now_unix() * 1000; /* refined below */
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		f->unix_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	f->verdict = e->verdict == ZT_VERDICT_DENY ? 1 : e->audit ? 2 : 0;
	f->reason = e->reason;
	f->dir = e->dir;
	f->proto = e->proto;
	f->family = e->family;
	f->revoked = e->revoked;
	memcpy(f->saddr, e->saddr, 16);
	memcpy(f->daddr, e->daddr, 16);
	f->sport = e->sport;
	f->dport = e->dport;
	name_identity(s, g, e->local_id, e->ep_id, local, sizeof(local));
	name_identity(s, g, e->peer_id, e->peer_ep_id, peer, sizeof(peer));
	if (e->dir == ZT_DIR_INGRESS) {
		f->src_id = e->peer_id;
		f->dst_id = e->local_id;
		snprintf(f->src_wl, sizeof(f->src_wl), "%s", peer);
		snprintf(f->dst_wl, sizeof(f->dst_wl), "%s", local);
	} else {
		f->src_id = e->local_id;
		f->dst_id = e->peer_id;
		snprintf(f->src_wl, sizeof(f->src_wl), "%s", local);
		snprintf(f->dst_wl, sizeof(f->dst_wl), "%s", peer);
	}
	describe_rule(g, e->gen, e->rule_id, e->reason, f->rule, sizeof(f->rule));
	/* Only the pending posture isolates ZT_ID_PENDING (polcompile.h). */
	if (e->local_id == ZT_ID_PENDING && !e->rule_id &&
	    (e->reason == ZT_REASON_DEFAULT_DENY || e->reason == ZT_REASON_NO_RULE))
		snprintf(
			f->rule, sizeof(f->rule),
			"pending-posture: labels not known yet (kubernetes.pending_posture: deny)");
	if (!seg_fx_ifname(s, (int)e->ifindex, f->ifname, sizeof(f->ifname)))
		zt_ifname(e->ifindex, f->ifname, sizeof(f->ifname));
	s->st.verdicts[f->verdict]++;
	if (e->revoked)
		s->st.revoked++;
	/* Denials and audits are logged at once, up to LOG_VERDICTS_PER_S a second. */
	log_it = f->verdict != 0;
	if (log_it) {
		if (now - s->log_window_ns >= 1000000000ULL) {
			if (s->log_suppressed)
				log_warn("flow_verdicts_suppressed", "count=%llu per_s=%d",
					 (unsigned long long)s->log_suppressed, LOG_VERDICTS_PER_S);
			s->log_window_ns = now;
			s->log_in_window = 0;
			s->log_suppressed = 0;
		}
		if (s->log_in_window++ >= LOG_VERDICTS_PER_S) {
			s->log_suppressed++;
			log_it = false;
		}
	}
	if (log_it) {
		char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN], q[600];
		int fam = f->family == 6 ? AF_INET6 : AF_INET;

		inet_ntop(fam, f->saddr, sa, sizeof(sa));
		inet_ntop(fam, f->daddr, da, sizeof(da));
		log_warn(
			f->verdict == 1 ? "flow_denied" : "flow_audit",
			"proto=%s src=%s sport=%u dst=%s dport=%u src_workload=%s dst_workload=%s src_identity=%u dst_identity=%u direction=%s iface=%s revoked=%u reason=%s rule=%s",
			zt_pol_proto_name(f->proto), sa, f->sport, da, f->dport, f->src_wl,
			f->dst_wl, f->src_id, f->dst_id,
			f->dir == ZT_DIR_INGRESS ? "ingress" : "egress", f->ifname, f->revoked,
			zt_tc_reason_name(f->reason), zt_log_quote(q, sizeof(q), f->rule));
	}
	/*
	 * A flow to a threat-intel IOC is the feeds' incident (ioc.hit), one of
	 * a blocked address the block's (its detector's incident, the operator's
	 * or the feed's entry): not policy violations.
	 */
	bool policy = f->reason != ZT_REASON_IOC && f->reason != ZT_REASON_BLOCKED;

	if (f->verdict != 0 && policy && s->violation) {
		/* Aggregated by the sink (per source, destination, port, rule), not one row each. */
		struct flow_rec v = *f;
		zt_seg_violation_fn fn = s->violation;
		void *fctx = s->violation_ctx;
		struct zt_seg_violation sv = {
			.verdict = v.verdict,
			.reason = v.reason,
			.dir = v.dir,
			.proto = v.proto,
			.family = v.family == 6 ? 6 : 4,
			.revoked = v.revoked,
			.sport = v.sport,
			.dport = v.dport,
			.src_id = v.src_id,
			.dst_id = v.dst_id,
			.ts_ns = e->hdr.ts_ns,
			.verdict_name = seg_verdict_names[v.verdict],
			.reason_name = zt_tc_reason_name(v.reason),
			.protocol_name = zt_pol_proto_name(v.proto),
			.rule = v.rule,
			.src_wl = v.src_wl,
			.dst_wl = v.dst_wl,
			.ifname = v.ifname,
		};

		memcpy(sv.saddr, v.saddr, 16);
		memcpy(sv.daddr, v.daddr, 16);
		pthread_mutex_unlock(&s->lock);
		fn(fctx, &sv);
		return;
	}
	if (f->verdict != 0 && s->audit && policy) {
		struct flow_rec v = *f;

		pthread_mutex_unlock(&s->lock);
		audit_violation(s, &v);
		return;
	}
	pthread_mutex_unlock(&s->lock);
}

int zt_seg_register_events(struct zt_seg *s, struct zt_events *ev)
{
	return zt_events_on(ev, ZT_EV_POLICY, seg_on_policy_event, s);
}

void zt_seg_endpoint_name(struct zt_seg *s, uint32_t ep_id, char *buf, size_t n)
{
	buf[0] = '\0';
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->eps.n; i++)
		if (s->eps.v[i]->id == ep_id) {
			snprintf(buf, n, "%s", s->eps.v[i]->qname);
			break;
		}
	pthread_mutex_unlock(&s->lock);
}

void seg_fx_workload(void *ctx, uint32_t identity, uint32_t ep_id, char *buf, size_t n)
{
	struct zt_seg *s = ctx;

	name_identity(s, s->gens[0].c ? &s->gens[0] : NULL, identity, ep_id, buf, n);
}

void seg_fx_rule(void *ctx, uint32_t gen, uint32_t rule_id, uint8_t reason, char *buf, size_t n)
{
	struct zt_seg *s = ctx;

	describe_rule(gen_find(s, gen), gen, rule_id, reason, buf, n);
}

void zt_seg_set_violation_sink(struct zt_seg *s, zt_seg_violation_fn fn, void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->violation = fn;
	s->violation_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}
