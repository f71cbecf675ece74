// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: identities, the policy compiler and the applier.
 *
 * - exact compiler output for small inputs (port blocks, named ports,
 *   ipBlock except, deny baking, audit, isolation, default deny, host);
 * - a differential test: random endpoints, random NetworkPolicies and
 *   ZeroTrustPolicies (YAML through the real parser) and random
 *   connections; a userspace model of tc_endpoint's lookups (ipcache LPM,
 *   two policy LPM lookups, the combination rules of ztagent.h, isolation)
 *   over the compiled entries must give zt_policy_eval_ex's per-side result;
 * - the applier against real kernel maps (needs CAP_BPF; skipped without).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <cmocka.h>

#include "seg/polcompile.h"
#include "seg/policy.h"
#include "seg/policy_eval.h"
#include "agent/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define FULL ZT_POL_PLEN_FULL
#define PROTO ZT_POL_PLEN_PROTO
#define ANYP ZT_POL_PLEN_ANY_PROTO
#define ING ZT_DIR_INGRESS
#define EGR ZT_DIR_EGRESS

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- a world: endpoints, host, policies ---- */

#define MAX_EPS 256

struct world {
	struct zt_eval_endpoint ev[MAX_EPS];
	struct zt_polc_endpoint pe[MAX_EPS];
	struct zt_label lab[MAX_EPS][3];
	struct zt_label nsl[MAX_EPS][2];
	struct zt_ep_addr addr[MAX_EPS][2];
	struct zt_named_port ports[MAX_EPS][3];
	char names[MAX_EPS][16];
	size_t n;
	struct zt_ep_addr host[2];
	size_t n_host;
	struct zt_identities *ids;
	struct zt_policy_set *set;
	enum zt_pol_default def;
	bool pending_isolated; /* zt_polc_input.pending_isolated */
	struct zt_compiled *c;
};

static void addr_parse(const char *s, struct zt_ep_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, s, a->addr) == 1)
		a->family = AF_INET6;
	else
		fail_msg("bad address %s", s);
}

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(zt_identities_new(&w->ids), 0);
}

/* labels: "k=v,k=v"; nsl: "env=prod" or ""; addrs "a[,b]"; ports "name/proto/port,..." */
static size_t add_ep(struct world *w, const char *ns, const char *labels, const char *nsl,
		     const char *addrs, const char *ports)
{
	size_t i = w->n++;
	struct zt_eval_endpoint *e = &w->ev[i];
	char buf[256], *save, *tok;

	assert_true(i < MAX_EPS);
	snprintf(w->names[i], sizeof(w->names[i]), "ep%zu", i);
	e->name = w->names[i];
	e->ls.namespace = strdup(ns);
	snprintf(buf, sizeof(buf), "%s", labels);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		*eq = '\0';
		w->lab[i][e->ls.labels.n].key = strdup(tok);
		w->lab[i][e->ls.labels.n].value = strdup(eq + 1);
		e->ls.labels.n++;
	}
	e->ls.labels.v = w->lab[i];
	snprintf(buf, sizeof(buf), "%s", nsl);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		*eq = '\0';
		w->nsl[i][e->ls.ns_labels.n].key = strdup(tok);
		w->nsl[i][e->ls.ns_labels.n].value = strdup(eq + 1);
		e->ls.ns_labels.n++;
	}
	e->ls.ns_labels.v = w->nsl[i];
	snprintf(buf, sizeof(buf), "%s", addrs);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		addr_parse(tok, &w->addr[i][e->n_addrs++]);
	e->addrs = w->addr[i];
	snprintf(buf, sizeof(buf), "%s", ports);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct zt_named_port *np = &w->ports[i][e->n_ports++];
		char *s1 = strchr(tok, '/'), *s2;

		*s1 = '\0';
		s2 = strchr(s1 + 1, '/');
		*s2 = '\0';
		np->name = strdup(tok);
		np->protocol = strcmp(s1 + 1, "UDP") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
		np->port = (uint16_t)atoi(s2 + 1);
	}
	e->ports = w->ports[i];
	w->pe[i].ep_id = (uint32_t)i + 1;
	w->pe[i].ev = e;
	assert_int_equal(zt_identities_get(w->ids, &e->ls, 0, &w->pe[i].identity), 0);
	return i;
}

static void add_host(struct world *w, const char *a)
{
	addr_parse(a, &w->host[w->n_host++]);
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct zt_eval_endpoint *e = &w->ev[i];

		zt_identities_put(w->ids, w->pe[i].identity);
		free((char *)e->ls.namespace);
		for (size_t j = 0; j < e->ls.labels.n; j++) {
			free((char *)w->lab[i][j].key);
			free((char *)w->lab[i][j].value);
		}
		for (size_t j = 0; j < e->ls.ns_labels.n; j++) {
			free((char *)w->nsl[i][j].key);
			free((char *)w->nsl[i][j].value);
		}
		for (size_t j = 0; j < e->n_ports; j++)
			free((char *)w->ports[i][j].name);
	}
	zt_compiled_free(w->c);
	zt_policy_set_free(w->set);
	zt_identities_free(w->ids);
	memset(w, 0, sizeof(*w));
}

static int world_compile(struct world *w, const char *yaml, enum zt_pol_default def)
{
	char err[512];
	struct zt_polc_input in;
	int r;

	zt_compiled_free(w->c);
	w->c = NULL;
	zt_policy_set_free(w->set);
	w->set = NULL;
	r = zt_policy_parse_buf(yaml, strlen(yaml), "t.yaml", &w->set, err, sizeof(err));
	if (r < 0) {
		print_error("parse: %s\n%s\n", err, yaml);
		return r;
	}
	w->def = def;
	in = (struct zt_polc_input){ .set = w->set, .def = def, .eps = w->pe, .n_eps = w->n };
	in.host_addrs = w->host;
	in.n_host_addrs = w->n_host;
	in.pending_isolated = w->pending_isolated;
	r = zt_polc_compile(&in, &w->c, err, sizeof(err));
	if (r < 0)
		print_error("compile: %s\n", err);
	return r;
}

static uint32_t idof(const struct world *w, size_t ep)
{
	return w->pe[ep].identity;
}

/* ---- the model of the kernel's lookups ---- */

static bool entry_holds(const struct zt_polc_pol_entry *e, uint8_t proto, uint16_t port)
{
	uint32_t size;

	if (e->prefixlen == ANYP)
		return true;
	if (e->proto != proto)
		return false;
	size = 1u << (FULL - e->prefixlen);
	return port >= e->port && port < e->port + size;
}

static const struct zt_polc_pol_entry *model_lpm(const struct zt_compiled *c, uint8_t dir,
						 uint32_t local, uint32_t peer, uint8_t proto,
						 uint16_t port)
{
	const struct zt_polc_pol_entry *best = NULL;

	for (size_t i = 0; i < c->n_pol; i++) {
		const struct zt_polc_pol_entry *e = &c->pol[i];

		if (e->dir != dir || e->local_id != local || e->peer_id != peer ||
		    !entry_holds(e, proto, port))
			continue;
		if (!best || e->prefixlen > best->prefixlen)
			best = e;
	}
	return best;
}

static const struct zt_polc_iso_entry *model_iso(const struct zt_compiled *c, uint8_t dir,
						 uint32_t id)
{
	for (size_t i = 0; i < c->n_iso; i++)
		if (c->iso[i].dir == dir && c->iso[i].identity == id)
			return &c->iso[i];
	return NULL;
}

static const struct zt_polc_ipc_entry *model_ipcache(const struct zt_compiled *c,
						     const struct zt_ep_addr *a)
{
	const struct zt_polc_ipc_entry *best = NULL;

	for (size_t i = 0; i < c->n_ipc; i++) {
		const struct zt_polc_ipc_entry *e = &c->ipc[i];
		struct zt_cidr p = { .family = e->family, .prefixlen = e->plen };

		if (e->family != a->family)
			continue;
		memcpy(p.addr, e->addr, 16);
		if (zt_cidr_contains(&p, a->addr) && (!best || e->plen > best->plen))
			best = e;
	}
	return best;
}

struct mside {
	bool allowed;
	enum zt_pol_reason reason;
	uint32_t rule; /* rule id or isolating policy id */
	uint8_t flags;
};

/* Lower rule id wins; 0 (the host entry) only when nothing else. */
static uint32_t pick(uint32_t a, uint32_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

/*
 * peers[0]: the peer's identity; [1] and [2]: its ipcache cidr_id and
 * port_class (0: none). Looked up with ZT_ID_ANY as well.
 */
static void model_side(const struct zt_compiled *c, uint8_t dir, uint32_t local,
		       const uint32_t peers[3], uint8_t proto, uint16_t port, bool audit,
		       struct mside *out)
{
	const struct zt_polc_pol_entry *l[4] = {
		model_lpm(c, dir, local, peers[0], proto, port),
		model_lpm(c, dir, local, ZT_ID_ANY, proto, port),
		peers[1] ? model_lpm(c, dir, local, peers[1], proto, port) : NULL,
		peers[2] ? model_lpm(c, dir, local, peers[2], proto, port) : NULL,
	};
	const struct zt_polc_iso_entry *iso;
	uint32_t deny = 0, allow = 0;
	bool any_deny = false, any_allow = false;
	uint8_t flags = 0;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 4; i++) {
		uint8_t v;
		uint32_t rid;

		if (!l[i])
			continue;
		v = audit ? l[i]->val.audit_verdict : l[i]->val.verdict;
		rid = audit ? l[i]->val.audit_rule_id : l[i]->val.rule_id;
		if (v == ZT_VERDICT_DENY) {
			any_deny = true;
			deny = pick(deny, rid);
		} else if (v == ZT_VERDICT_ALLOW) {
			any_allow = true;
			allow = pick(allow, rid);
			flags |= l[i]->val.flags;
		}
	}
	if (any_deny) {
		out->reason = ZT_PR_RULE_DENY;
		out->rule = deny;
		return;
	}
	if (any_allow) {
		out->allowed = true;
		out->reason = allow ? ZT_PR_RULE_ALLOW : ZT_PR_HOST;
		out->rule = allow;
		out->flags = flags;
		return;
	}
	iso = model_iso(c, dir, local);
	if (iso && (audit ? iso->val.audit_isolated : iso->val.isolated)) {
		uint32_t rid = audit ? iso->val.audit_rule_id : iso->val.rule_id;

		out->reason = rid ? ZT_PR_NO_RULE : ZT_PR_DEFAULT_DENY;
		if (!audit)
			assert_int_equal(iso->val.by_default, rid == 0);
		out->rule = rid;
		return;
	}
	out->allowed = true;
	out->reason = ZT_PR_NOT_ISOLATED;
}

/* Compares the model's side with zt_policy_eval's; returns false (with a message) on mismatch. */
static bool same_side(const struct zt_compiled *c, const struct mside *m,
		      const struct zt_eval_side *s, bool check_flags, char *why, size_t n)
{
	const struct zt_polc_rule *r = m->rule < c->n_rules ? &c->rules[m->rule] : NULL;
	char d1[256] = "-", d2[256] = "-";

	if (s->policy)
		zt_policy_describe(s->policy, s->rule, d1, sizeof(d1));
	zt_polc_rule_describe(c, m->rule, d2, sizeof(d2));
	snprintf(why, n, "eval %s/%s by %s; model %s/%s by %s (rule %u)",
		 s->allowed ? "allow" : "deny", zt_pol_reason_name(s->reason), d1,
		 m->allowed ? "allow" : "deny", zt_pol_reason_name(m->reason), d2, m->rule);
	if (s->allowed != m->allowed || s->reason != m->reason || !r)
		return false;
	switch (s->reason) {
	case ZT_PR_RULE_ALLOW:
		if (check_flags && (s->require_tls != !!(m->flags & ZT_POL_F_REQUIRE_TLS) ||
				    s->require_mutual_auth != !!(m->flags & ZT_POL_F_REQUIRE_MTLS)))
			return false;
		/* fallthrough */
	case ZT_PR_RULE_DENY:
		return r->policy == s->policy && r->rule == s->rule && r->rule;
	case ZT_PR_NO_RULE:
		return r->policy == s->policy && !r->rule;
	default:
		return m->rule == 0;
	}
}

struct end {
	struct zt_ep_addr a;
	uint32_t id; /* from the model's ipcache */
	uint32_t ep_id;
	uint32_t cidr_id;
	uint32_t port_class;
};

static void resolve_end(const struct zt_compiled *c, const struct zt_ep_addr *a, struct end *e)
{
	const struct zt_polc_ipc_entry *ipc = model_ipcache(c, a);

	assert_non_null(ipc); /* 0/0 is always there */
	e->a = *a;
	e->id = ipc->val.identity;
	e->ep_id = ipc->val.ep_id;
	e->cidr_id = ipc->val.cidr_id;
	e->port_class = ipc->val.port_class;
	/* Only endpoint addresses carry the extra identities. */
	if (!e->ep_id)
		assert_true(!e->cidr_id && !e->port_class);
}

/* What the differential test covered: per side reason, verdicts, TLS flags. */
static struct {
	size_t reason[ZT_PR_HOST + 1];
	size_t verdict[3];
	size_t tls;
	size_t named_allow; /* allowed by a rule with a named port */
	size_t ipblock_peer; /* a side whose peer is a CIDR identity */
	size_t by_cidr_id; /* an endpoint peer's cidr_id lookup changed the side */
	size_t by_port_class; /* ... its port_class lookup */
} cov;

/* One connection, both sides, both verdicts; returns the number of mismatches. */
static int check_conn(const struct world *w, const struct zt_ep_addr *src,
		      const struct zt_ep_addr *dst, uint8_t proto, uint16_t port, bool verbose)
{
	struct zt_eval_opts opts = { .host_addrs = w->host, .n_host_addrs = w->n_host };
	struct zt_eval_conn conn = { 0 };
	struct zt_eval_result res;
	struct end s, d;
	int bad = 0;

	conn.src.addr = *src;
	conn.dst.addr = *dst;
	conn.protocol = proto;
	conn.port = port;
	assert_int_equal(zt_policy_eval_ex(w->set, w->def, w->ev, w->n, &opts, &conn, &res), 0);
	resolve_end(w->c, src, &s);
	resolve_end(w->c, dst, &d);
	/* The ipcache must resolve ends as the evaluator does. */
	assert_int_equal(s.ep_id != 0, res.src_ep != NULL);
	assert_int_equal(d.ep_id != 0, res.dst_ep != NULL);
	assert_int_equal(s.id == ZT_ID_HOST, res.src_host);
	assert_int_equal(d.id == ZT_ID_HOST, res.dst_host);
	cov.verdict[res.verdict]++;
	cov.tls += res.require_tls || res.require_mutual_auth;
	for (int dir = 0; dir < ZT_DIR_MAX; dir++) {
		const struct zt_eval_side *es = &res.side[dir];

		cov.reason[es->reason]++;
		if (es->reason == ZT_PR_RULE_ALLOW)
			for (size_t i = 0; i < es->rule->n_ports; i++)
				cov.named_allow += es->rule->ports[i].name != NULL;
		cov.ipblock_peer += (dir == EGR ? d.id : s.id) >= ZT_ID_FIRST_CIDR &&
				    (dir == EGR ? s.ep_id : d.ep_id);
	}
	for (int audit = 0; audit < 2; audit++)
		for (int dir = 0; dir < ZT_DIR_MAX; dir++) {
			const struct end *local = dir == EGR ? &s : &d,
					 *peer = dir == EGR ? &d : &s;
			const struct zt_eval_side *es = audit ? &res.audit[dir] : &res.side[dir];
			uint32_t peers[3] = { peer->id, peer->cidr_id, peer->port_class };
			struct mside m, m_no_pc, m_id;
			char why[1024];

			if (!local->ep_id) {
				assert_int_equal(es->reason, ZT_PR_EXTERNAL);
				continue;
			}
			model_side(w->c, (uint8_t)dir, local->id, peers, proto, port, audit, &m);
			/* Coverage: sides that the extra lookups decided. */
			peers[2] = 0;
			model_side(w->c, (uint8_t)dir, local->id, peers, proto, port, audit,
				   &m_no_pc);
			peers[1] = 0;
			model_side(w->c, (uint8_t)dir, local->id, peers, proto, port, audit, &m_id);
			cov.by_cidr_id +=
				m_no_pc.allowed != m_id.allowed || m_no_pc.reason != m_id.reason;
			cov.by_port_class +=
				m.allowed != m_no_pc.allowed || m.reason != m_no_pc.reason;
			if (!same_side(w->c, &m, es, !audit, why, sizeof(why))) {
				char sa[64], da[64];

				inet_ntop(src->family, src->addr, sa, sizeof(sa));
				inet_ntop(dst->family, dst->addr, da, sizeof(da));
				if (verbose || bad == 0)
					print_error(
						"MISMATCH %s %s -> %s proto %u port %u %s: %s\n",
						audit ? "audit" : "enforce", sa, da, proto, port,
						dir == EGR ? "egress" : "ingress", why);
				bad++;
			}
		}
	return bad;
}

/* ---- exact output helpers ---- */

static const struct zt_polc_pol_entry *find_pol(const struct zt_compiled *c, uint8_t dir,
						uint32_t local, uint32_t peer, uint8_t proto,
						uint16_t port, uint32_t plen)
{
	for (size_t i = 0; i < c->n_pol; i++) {
		const struct zt_polc_pol_entry *e = &c->pol[i];

		if (e->dir == dir && e->local_id == local && e->peer_id == peer &&
		    e->proto == proto && e->port == port && e->prefixlen == plen)
			return e;
	}
	return NULL;
}

static size_t count_pol(const struct zt_compiled *c, uint8_t dir, uint32_t local, uint32_t peer)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_pol; i++)
		n += c->pol[i].dir == dir && c->pol[i].local_id == local &&
		     c->pol[i].peer_id == peer;
	return n;
}

/* The rule id of spec.<dir>[idx] of the policy named name. */
static uint32_t rule_id(const struct zt_compiled *c, const char *name, int dir, unsigned int idx)
{
	for (uint32_t i = 1; i < c->n_rules; i++) {
		const struct zt_polc_rule *r = &c->rules[i];

		if (!strcmp(r->policy->name, name) &&
		    (idx == ~0u ? !r->rule :
				  r->rule && (int)r->rule->dir == dir && r->rule->index == idx))
			return i;
	}
	fail_msg("no rule %s %d %u", name, dir, idx);
	return 0;
}

static uint32_t cidr_id(const struct zt_compiled *c, const char *s)
{
	struct zt_cidr p;

	assert_int_equal(zt_cidr_parse(s, &p, NULL), 0);
	for (size_t i = 0; i < c->n_cidr_ids; i++)
		if (c->cidr_ids[i].cidr.family == p.family &&
		    c->cidr_ids[i].cidr.prefixlen == p.prefixlen &&
		    !memcmp(c->cidr_ids[i].cidr.addr, p.addr, 16))
			return c->cidr_ids[i].identity;
	fail_msg("no CIDR identity for %s", s);
	return 0;
}

#define NP_HDR(name)                                                                    \
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " name \
	", namespace: prod}\nspec:\n"
#define ZTP_HDR(name)                                                              \
	"apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\nmetadata: {name: " name \
	", namespace: prod}\nspec:\n"
#define SEP "---\n"

/* ---- identities ---- */

static void test_identities(void **state)
{
	struct zt_identities *ids;
	const struct zt_label l1[] = { { "app", "web" }, { "tier", "fe" } };
	const struct zt_label l2[] = { { "tier", "fe" }, { "app", "web" } };
	const struct zt_label nsl[] = { { "env", "prod" } };
	const struct zt_label nsl_named[] = { { ZT_NS_NAME_LABEL, "prod" }, { "env", "prod" } };
	struct zt_label_set a = { "prod", { l1, 2 }, { nsl, 1 } };
	struct zt_label_set b = { "prod", { l2, 2 }, { nsl_named, 2 } };
	struct zt_label_set c = { "dev", { l1, 2 }, { nsl, 1 } };
	struct zt_label_set d = { "prod", { l1, 1 }, { nsl, 1 } };
	uint32_t ia, ib, ic, id, ix;
	const struct zt_label_set *got;

	(void)state;
	assert_int_equal(zt_identities_new(&ids), 0);
	assert_int_equal(zt_identities_get(ids, &a, 0, &ia), 0);
	assert_int_equal(ia, ZT_ID_FIRST_LABELS);
	/* Label order and the implied namespace name label do not matter. */
	assert_int_equal(zt_identities_get(ids, &b, 0, &ib), 0);
	assert_int_equal(ib, ia);
	assert_int_equal(zt_identities_get(ids, &c, 0, &ic), 0);
	assert_int_equal(ic, ZT_ID_FIRST_LABELS + 1);
	assert_int_equal(zt_identities_get(ids, &d, 0, &id), 0);
	assert_int_equal(id, ZT_ID_FIRST_LABELS + 2);
	got = zt_identities_labels(ids, ia);
	assert_non_null(got);
	assert_string_equal(got->namespace, "prod");
	assert_int_equal(got->labels.n, 2);
	assert_string_equal(got->labels.v[0].key, "app"); /* sorted */
	assert_string_equal(got->labels.v[1].key, "tier");
	assert_int_equal(got->ns_labels.n, 1);
	/* Refcounts: a has two references. */
	zt_identities_put(ids, ia);
	assert_non_null(zt_identities_labels(ids, ia));
	zt_identities_put(ids, ia);
	assert_null(zt_identities_labels(ids, ia));
	/* The lowest free id is reused. */
	assert_int_equal(zt_identities_get(ids, &c, 0, &ix), 0); /* existing */
	assert_int_equal(ix, ic);
	assert_int_equal(zt_identities_get(ids, &a, 0, &ix), 0);
	assert_int_equal(ix, ZT_ID_FIRST_LABELS);
	zt_identities_put(ids, ix);
	/* want: restore a specific id; taken by another set -> -EEXIST. */
	assert_int_equal(zt_identities_get(ids, &a, ic, &ix), -EEXIST);
	assert_int_equal(zt_identities_get(ids, &a, 1000, &ix), 0);
	assert_int_equal(ix, 1000);
	assert_int_equal(zt_identities_get(ids, &a, 1001, &ix), -EEXIST); /* has 1000 */
	assert_int_equal(zt_identities_get(ids, &a, 1000, &ix), 0);
	assert_int_equal(zt_identities_get(ids, &a, 5, &ix), -ERANGE);
	/* New sets still get the lowest free id. */
	{
		struct zt_label_set e = { "other", { l1, 2 }, { NULL, 0 } };

		assert_int_equal(zt_identities_get(ids, &e, 0, &ix), 0);
		assert_int_equal(ix, ZT_ID_FIRST_LABELS);
	}
	zt_identities_free(ids);
}

/* ---- exact compiler output ---- */

static void test_port_blocks(void **state)
{
	struct world w;
	size_t db, web;
	uint32_t r0;
	const struct zt_polc_pol_entry *e;

	(void)state;
	world_init(&w);
	db = add_ep(&w, "prod", "app=db", "", "10.0.0.1", "");
	web = add_ep(&w, "prod", "app=web", "", "10.0.0.2", "");
	assert_int_equal(
		world_compile(
			&w,
			NP_HDR("db") "  podSelector: {matchLabels: {app: db}}\n"
				     "  ingress:\n"
				     "  - from: [{podSelector: {matchLabels: {app: web}}}]\n"
				     "    ports: [{port: 80, endPort: 90}, {protocol: UDP}]\n",
			ZT_POL_DEFAULT_ALLOW),
		0);
	r0 = rule_id(w.c, "db", ING, 0);
	/* 80-90 = 80/8 + 88/2 + 90/1 */
	e = find_pol(w.c, ING, idof(&w, db), idof(&w, web), IPPROTO_TCP, 80, FULL - 3);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(e->val.rule_id, r0);
	assert_int_equal(e->val.audit_verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(e->val.audit_rule_id, r0);
	assert_non_null(find_pol(w.c, ING, idof(&w, db), idof(&w, web), IPPROTO_TCP, 88, FULL - 1));
	assert_non_null(find_pol(w.c, ING, idof(&w, db), idof(&w, web), IPPROTO_TCP, 90, FULL));
	/* {protocol: UDP}: every UDP port */
	e = find_pol(w.c, ING, idof(&w, db), idof(&w, web), IPPROTO_UDP, 0, PROTO);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW);
	/* 4 entries + the host's */
	assert_int_equal(count_pol(w.c, ING, idof(&w, db), idof(&w, web)), 4);
	assert_int_equal(count_pol(w.c, ING, idof(&w, db), ZT_ID_ANY), 0);
	/* Isolation: db ingress only, by this policy. */
	assert_non_null(model_iso(w.c, ING, idof(&w, db)));
	assert_int_equal(model_iso(w.c, ING, idof(&w, db))->val.rule_id,
			 rule_id(w.c, "db", ING, ~0u));
	assert_int_equal(model_iso(w.c, ING, idof(&w, db))->val.by_default, 0);
	assert_null(model_iso(w.c, EGR, idof(&w, db)));
	assert_null(model_iso(w.c, ING, idof(&w, web)));
	/* The whole range: one block; 1-65535 is 16 blocks. */
	assert_int_equal(world_compile(&w,
				       NP_HDR("db") "  podSelector: {matchLabels: {app: db}}\n"
						    "  ingress:\n"
						    "  - ports: [{port: 1, endPort: 65535}]\n",
				       ZT_POL_DEFAULT_ALLOW),
			 0);
	assert_int_equal(count_pol(w.c, ING, idof(&w, db), ZT_ID_ANY), 16);
	assert_non_null(find_pol(w.c, ING, idof(&w, db), ZT_ID_ANY, IPPROTO_TCP, 32768, PROTO + 1));
	assert_non_null(find_pol(w.c, ING, idof(&w, db), ZT_ID_ANY, IPPROTO_TCP, 1, FULL));
	assert_null(find_pol(w.c, ING, idof(&w, db), ZT_ID_ANY, IPPROTO_TCP, 0, FULL));
	world_free(&w);
}

static void test_named_ports(void **state)
{
	struct world w;
	size_t db1, db2, web, cli;
	const struct zt_polc_pol_entry *e;

	(void)state;
	world_init(&w);
	/* db1 and db2 share a label set: their named ports are united. */
	db1 = add_ep(&w, "prod", "app=db", "", "10.0.0.1", "sql/TCP/5432");
	db2 = add_ep(&w, "prod", "app=db", "", "10.0.0.2", "sql/TCP/5433,dns/UDP/53");
	web = add_ep(&w, "prod", "app=web", "", "10.0.0.3", "http/TCP/8080");
	cli = add_ep(&w, "prod", "app=cli", "", "10.0.0.4", "");
	assert_int_equal(idof(&w, db1), idof(&w, db2));
	assert_int_equal(
		world_compile(
			&w,
			NP_HDR("db") "  podSelector: {matchLabels: {app: db}}\n"
				     "  ingress:\n"
				     "  - ports: [{port: sql}, {port: http}]\n" SEP NP_HDR(
					     "cli") "  podSelector: {matchLabels: {app: cli}}\n"
						    "  policyTypes: [Egress]\n"
						    "  egress:\n"
						    "  - ports: [{port: http}, {port: dns, protocol: UDP}]\n"
						    "  - to: [{podSelector: {matchLabels: {app: db}}}]\n"
						    "    ports: [{port: sql}]\n",
			ZT_POL_DEFAULT_ALLOW),
		0);
	/* Ingress: against the local endpoints: 5432 and 5433, no http on db. */
	assert_non_null(find_pol(w.c, ING, idof(&w, db1), ZT_ID_ANY, IPPROTO_TCP, 5432, FULL));
	assert_non_null(find_pol(w.c, ING, idof(&w, db1), ZT_ID_ANY, IPPROTO_TCP, 5433, FULL));
	assert_int_equal(count_pol(w.c, ING, idof(&w, db1), ZT_ID_ANY), 2);
	/* Egress without peers: per destination identity that has the port. */
	e = find_pol(w.c, EGR, idof(&w, cli), idof(&w, web), IPPROTO_TCP, 8080, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.rule_id, rule_id(w.c, "cli", EGR, 0));
	assert_non_null(find_pol(w.c, EGR, idof(&w, cli), idof(&w, db1), IPPROTO_UDP, 53, FULL));
	assert_int_equal(count_pol(w.c, EGR, idof(&w, cli), ZT_ID_ANY), 0);
	/* Egress to db: sql on db's endpoints, rule 1; dns from rule 0. */
	e = find_pol(w.c, EGR, idof(&w, cli), idof(&w, db1), IPPROTO_TCP, 5433, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.rule_id, rule_id(w.c, "cli", EGR, 1));
	assert_int_equal(count_pol(w.c, EGR, idof(&w, cli), idof(&w, db1)), 3);
	assert_int_equal(count_pol(w.c, EGR, idof(&w, cli), idof(&w, web)), 1);
	world_free(&w);
}

static void test_ipblock_except(void **state)
{
	struct world w;
	size_t db;
	uint32_t r0, r1;
	struct zt_ep_addr a;
	const struct zt_polc_ipc_entry *ipc;

	(void)state;
	world_init(&w);
	db = add_ep(&w, "prod", "app=db", "", "10.1.2.3", "");
	add_host(&w, "10.1.2.1");
	assert_int_equal(
		world_compile(
			&w,
			NP_HDR("db") "  podSelector: {}\n"
				     "  policyTypes: [Egress]\n"
				     "  egress:\n"
				     "  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]\n"
				     "  - to: [{ipBlock: {cidr: 10.1.2.0/24}}, {ipBlock: {cidr: "
				     "10.2.0.0/16}}, {ipBlock: {cidr: '::/0', except: ['fd00::/8']}}]\n"
				     "    ports: [{port: 443}]\n",
			ZT_POL_DEFAULT_ALLOW),
		0);
	r0 = rule_id(w.c, "db", EGR, 0);
	r1 = rule_id(w.c, "db", EGR, 1);
	/* Prefixes in sorted order: IPv4 first, then IPv6. */
	assert_int_equal(w.c->n_cidr_ids, 5);
	assert_int_equal(cidr_id(w.c, "10.0.0.0/8"), ZT_ID_FIRST_CIDR);
	assert_int_equal(cidr_id(w.c, "10.1.0.0/16"), ZT_ID_FIRST_CIDR + 1);
	assert_int_equal(cidr_id(w.c, "10.1.2.0/24"), ZT_ID_FIRST_CIDR + 2);
	assert_int_equal(cidr_id(w.c, "10.2.0.0/16"), ZT_ID_FIRST_CIDR + 3);
	assert_int_equal(cidr_id(w.c, "fd00::/8"), ZT_ID_FIRST_CIDR + 4);
	/* Rule 0: 10/8 and 10.2/16, not 10.1/16 nor 10.1.2/24 inside it. */
	assert_non_null(find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "10.0.0.0/8"), 0, 0, ANYP));
	assert_non_null(find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "10.2.0.0/16"), 0, 0, ANYP));
	assert_null(find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "10.1.0.0/16"), 0, 0, ANYP));
	assert_null(find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "10.1.2.0/24"), 0, 0, ANYP));
	/* Rule 1: 10.1.2/24, 10.2/16 (port 443) and the IPv6 world. */
	assert_int_equal(find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "10.1.2.0/24"), IPPROTO_TCP,
				  443, FULL)
				 ->val.rule_id,
			 r1);
	/* 10.2/16:443 is inside rule 0's any-protocol entry: the lower rule id wins. */
	assert_int_equal(find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "10.2.0.0/16"), IPPROTO_TCP,
				  443, FULL)
				 ->val.rule_id,
			 r0);
	assert_non_null(find_pol(w.c, EGR, idof(&w, db), ZT_ID_WORLD_V6, IPPROTO_TCP, 443, FULL));
	assert_null(
		find_pol(w.c, EGR, idof(&w, db), cidr_id(w.c, "fd00::/8"), IPPROTO_TCP, 443, FULL));
	assert_null(find_pol(w.c, EGR, idof(&w, db), ZT_ID_WORLD_V4, 0, 0, ANYP));
	/* ipcache: the endpoint wins in 10.1.2/24, the host has its own identity. */
	addr_parse("10.1.2.3", &a);
	ipc = model_ipcache(w.c, &a);
	assert_int_equal(ipc->val.identity, idof(&w, db));
	assert_int_equal(ipc->val.ep_id, w.pe[db].ep_id);
	addr_parse("10.1.2.1", &a);
	assert_int_equal(model_ipcache(w.c, &a)->val.identity, ZT_ID_HOST);
	addr_parse("10.1.2.9", &a);
	assert_int_equal(model_ipcache(w.c, &a)->val.identity, cidr_id(w.c, "10.1.2.0/24"));
	addr_parse("10.1.3.9", &a);
	assert_int_equal(model_ipcache(w.c, &a)->val.identity, cidr_id(w.c, "10.1.0.0/16"));
	addr_parse("11.0.0.1", &a);
	assert_int_equal(model_ipcache(w.c, &a)->val.identity, ZT_ID_WORLD_V4);
	addr_parse("2001:db8::1", &a);
	assert_int_equal(model_ipcache(w.c, &a)->val.identity, ZT_ID_WORLD_V6);
	/* 2 worlds + 5 prefixes + host + endpoint */
	assert_int_equal(w.c->n_ipc, 9);
	world_free(&w);
}

/* The ipcache entry of an endpoint address (exact /32 or /128). */
static const struct zt_polc_ipc_entry *ipc_of(const struct zt_compiled *c, const char *s)
{
	struct zt_ep_addr a;
	const struct zt_polc_ipc_entry *e;

	addr_parse(s, &a);
	e = model_ipcache(c, &a);
	assert_non_null(e);
	assert_int_equal(e->plen, a.family == AF_INET ? 32 : 128);
	return e;
}

static void conn_ok(const struct world *w, const char *src, const char *dst, uint16_t port)
{
	struct zt_ep_addr s, d;

	addr_parse(src, &s);
	addr_parse(dst, &d);
	assert_int_equal(check_conn(w, &s, &d, IPPROTO_TCP, port, true), 0);
}

/*
 * ipBlock matches endpoint addresses too: endpoint ipcache entries carry
 * the CIDR identity they lie in (and a port class for named ports), but
 * only where a policy entry names it, so other flows pay nothing.
 */
static void test_ipblock_endpoints(void **state)
{
	struct world w;
	size_t cli, srv, srv2, far;
	uint32_t c19, pc;
	const struct zt_polc_ipc_entry *ipc;
	const struct zt_polc_pol_entry *e;

	(void)state;
	world_init(&w);
	cli = add_ep(&w, "prod", "app=cli", "", "198.19.0.5", "");
	srv = add_ep(&w, "prod", "app=srv", "", "198.19.1.7", "http/TCP/8080");
	srv2 = add_ep(&w, "prod", "app=srv", "", "198.18.3.3", "http/TCP/8080");
	far = add_ep(&w, "prod", "app=far", "", "198.18.0.9", "");
	(void)srv;
	assert_int_equal(
		world_compile(&w,
			      NP_HDR("cli") "  podSelector: {matchLabels: {app: cli}}\n"
					    "  policyTypes: [Egress]\n"
					    "  egress:\n"
					    "  - to: [{ipBlock: {cidr: 198.19.0.0/16, except: "
					    "[198.19.2.0/24]}}]\n"
					    "    ports: [{port: 80}]\n"
					    "  - to: [{ipBlock: {cidr: 198.18.0.0/16}}]\n"
					    "    ports: [{port: http}]\n",
			      ZT_POL_DEFAULT_ALLOW),
		0);
	c19 = cidr_id(w.c, "198.19.0.0/16");
	/* Endpoints keep their identity and get the CIDR identity they lie in. */
	ipc = ipc_of(w.c, "198.19.1.7");
	assert_int_equal(ipc->val.identity, idof(&w, srv));
	assert_int_equal(ipc->val.cidr_id, c19);
	assert_int_equal(ipc->val.port_class, 0);
	assert_int_equal(ipc_of(w.c, "198.19.0.5")->val.cidr_id, c19);
	/* 198.18/16 has only a named port: no entry for the CIDR identity itself... */
	assert_int_equal(count_pol(w.c, EGR, idof(&w, cli), cidr_id(w.c, "198.18.0.0/16")), 0);
	ipc = ipc_of(w.c, "198.18.3.3");
	assert_int_equal(ipc->val.cidr_id, 0);
	/* ... but one for srv's port class in it, at srv's port named http. */
	pc = ipc->val.port_class;
	assert_true(pc >= ZT_ID_FIRST_PORT_CLASS);
	e = find_pol(w.c, EGR, idof(&w, cli), pc, IPPROTO_TCP, 8080, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(e->val.rule_id, rule_id(w.c, "cli", EGR, 1));
	assert_int_equal(count_pol(w.c, EGR, idof(&w, cli), pc), 1);
	/* far has no port named http: nothing to look up. */
	ipc = ipc_of(w.c, "198.18.0.9");
	assert_int_equal(ipc->val.identity, idof(&w, far));
	assert_int_equal(ipc->val.cidr_id, 0);
	assert_int_equal(ipc->val.port_class, 0);
	/* The evaluator agrees, connection by connection. */
	conn_ok(&w, "198.19.0.5", "198.19.1.7", 80); /* endpoint in the block */
	conn_ok(&w, "198.19.0.5", "198.19.1.7", 8080);
	conn_ok(&w, "198.19.0.5", "198.19.9.9", 80); /* not an endpoint */
	conn_ok(&w, "198.19.0.5", "198.19.2.1", 80); /* in the except */
	conn_ok(&w, "198.19.0.5", "198.18.3.3", 8080); /* srv2: named port in 198.18/16 */
	conn_ok(&w, "198.19.0.5", "198.18.3.3", 80);
	conn_ok(&w, "198.19.0.5", "198.18.0.9", 8080);
	conn_ok(&w, "198.19.0.5", "198.18.7.7", 8080); /* outside: no named ports */

	/* Without ipBlock rules, endpoint entries carry nothing extra. */
	assert_int_equal(world_compile(&w,
				       NP_HDR("sel") "  podSelector: {}\n"
						     "  ingress:\n"
						     "  - from: [{podSelector: {}}]\n",
				       ZT_POL_DEFAULT_ALLOW),
			 0);
	for (size_t i = 0; i < w.c->n_ipc; i++)
		assert_true(w.c->ipc[i].val.cidr_id == 0 && w.c->ipc[i].val.port_class == 0);
	(void)srv2;
	world_free(&w);
}

static void test_deny_baking_audit(void **state)
{
	struct world w;
	size_t db, web;
	uint32_t allow, deny, adeny, aallow, iso;
	const struct zt_polc_pol_entry *e;
	const struct zt_polc_iso_entry *ie;
	char d[256];

	(void)state;
	world_init(&w);
	db = add_ep(&w, "prod", "app=db", "", "10.0.0.1", "");
	web = add_ep(&w, "prod", "app=web", "", "10.0.0.2", "");
	assert_int_equal(
		world_compile(
			&w,
			ZTP_HDR("allow") "  podSelector: {matchLabels: {app: db}}\n"
					 "  ingress:\n"
					 "  - action: allow\n"
					 "    from: [{podSelector: {matchLabels: {app: web}}}]\n"
					 "    ports: [{protocol: TCP}]\n"
					 "    requireTLS: true\n"
					 "  - action: allow\n"
					 "    ports: [{port: 8000, endPort: 8003}]\n"
					 "    requireMutualAuth: true\n" SEP ZTP_HDR(
						 "deny") "  podSelector: {}\n"
							 "  ingress:\n"
							 "  - action: deny\n"
							 "    ports: [{port: 8002}]\n" SEP ZTP_HDR(
								 "audit") "  podSelector: {}\n"
									  "  mode: audit\n"
									  "  ingress:\n"
									  "  - action: deny\n"
									  "    ports: [{port: 8001}]\n"
									  "  egress:\n"
									  "  - action: allow\n"
									  "    ports: [{port: 53, protocol: UDP}]\n",
			ZT_POL_DEFAULT_ALLOW),
		0);
	allow = rule_id(w.c, "allow", ING, 0);
	deny = rule_id(w.c, "deny", ING, 0);
	adeny = rule_id(w.c, "audit", ING, 0);
	aallow = rule_id(w.c, "audit", EGR, 0);
	(void)allow;
	/* Peer web: all TCP allowed with TLS, but 8002 denied (baked from ANY? no: per peer). */
	e = find_pol(w.c, ING, idof(&w, db), idof(&w, web), IPPROTO_TCP, 0, PROTO);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(e->val.flags, ZT_POL_F_REQUIRE_TLS);
	/* ANY peer: 8000-8003 allow with mTLS; 8002 deny; 8001 audit deny. */
	e = find_pol(w.c, ING, idof(&w, db), ZT_ID_ANY, IPPROTO_TCP, 8000, FULL - 2);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(e->val.flags, ZT_POL_F_REQUIRE_MTLS);
	e = find_pol(w.c, ING, idof(&w, db), ZT_ID_ANY, IPPROTO_TCP, 8002, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_DENY);
	assert_int_equal(e->val.rule_id, deny);
	assert_int_equal(e->val.flags, 0);
	assert_int_equal(e->val.audit_verdict, ZT_VERDICT_DENY);
	assert_int_equal(e->val.audit_rule_id, deny);
	e = find_pol(w.c, ING, idof(&w, db), ZT_ID_ANY, IPPROTO_TCP, 8001, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW); /* baked from 8000/2 */
	assert_int_equal(e->val.flags, ZT_POL_F_REQUIRE_MTLS);
	assert_int_equal(e->val.audit_verdict, ZT_VERDICT_DENY);
	assert_int_equal(e->val.audit_rule_id, adeny);
	/* web has no allow: the deny rules still apply (not isolated). */
	e = find_pol(w.c, ING, idof(&w, web), ZT_ID_ANY, IPPROTO_TCP, 8001, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_NONE);
	assert_int_equal(e->val.rule_id, 0);
	assert_int_equal(e->val.audit_verdict, ZT_VERDICT_DENY);
	/* Audit allow on egress: enforce NONE, audit ALLOW; audit-isolated only. */
	e = find_pol(w.c, EGR, idof(&w, web), ZT_ID_ANY, IPPROTO_UDP, 53, FULL);
	assert_non_null(e);
	assert_int_equal(e->val.verdict, ZT_VERDICT_NONE);
	assert_int_equal(e->val.audit_verdict, ZT_VERDICT_ALLOW);
	assert_int_equal(e->val.audit_rule_id, aallow);
	ie = model_iso(w.c, EGR, idof(&w, web));
	assert_non_null(ie);
	assert_int_equal(ie->val.isolated, 0);
	assert_int_equal(ie->val.audit_isolated, 1);
	assert_int_equal(ie->val.rule_id, 0);
	assert_int_equal(ie->val.audit_rule_id, rule_id(w.c, "audit", 0, ~0u));
	/* db ingress isolated by "allow" (deny-only "deny" does not isolate). */
	iso = rule_id(w.c, "allow", 0, ~0u);
	ie = model_iso(w.c, ING, idof(&w, db));
	assert_int_equal(ie->val.isolated, 1);
	assert_int_equal(ie->val.rule_id, iso);
	assert_int_equal(ie->val.audit_rule_id, iso);
	assert_null(model_iso(w.c, ING, idof(&w, web)));
	/* Descriptions. */
	assert_int_equal(zt_polc_rule_describe(w.c, deny, d, sizeof(d)), 0);
	assert_string_equal(d, "ZeroTrustPolicy prod/deny spec.ingress[0] (t.yaml:21:5)");
	assert_int_equal(zt_polc_rule_describe(w.c, iso, d, sizeof(d)), 0);
	assert_string_equal(d, "ZeroTrustPolicy prod/allow (t.yaml:1:1)");
	assert_int_equal(zt_polc_rule_describe(w.c, 0, d, sizeof(d)), 0);
	assert_string_equal(d, "none");
	assert_int_equal(zt_polc_rule_describe(w.c, 100000, d, sizeof(d)), -ENOENT);
	world_free(&w);
}

static void test_default_and_host(void **state)
{
	struct world w;
	size_t a, b;
	const struct zt_polc_iso_entry *ie;
	const struct zt_polc_pol_entry *e;
	struct zt_ep_addr h;

	(void)state;
	world_init(&w);
	a = add_ep(&w, "prod", "app=a", "", "10.0.0.1,fd00::1", "");
	b = add_ep(&w, "dev", "app=b", "", "10.0.0.2", "");
	add_host(&w, "192.0.2.1");
	add_host(&w, "2001:db8::1");
	/* No policy, default deny: every identity isolated both ways, by default. */
	assert_int_equal(world_compile(&w, "", ZT_POL_DEFAULT_DENY), 0);
	assert_int_equal(w.c->n_iso, 4);
	for (int d = 0; d < ZT_DIR_MAX; d++) {
		ie = model_iso(w.c, (uint8_t)d, idof(&w, b));
		assert_non_null(ie);
		assert_int_equal(ie->val.isolated, 1);
		assert_int_equal(ie->val.audit_isolated, 1);
		assert_int_equal(ie->val.by_default, 1);
		assert_int_equal(ie->val.rule_id, 0);
	}
	/* Host entries: both ways, every identity, allow, rule 0. */
	assert_int_equal(w.c->n_pol, 4);
	for (int d = 0; d < ZT_DIR_MAX; d++) {
		e = find_pol(w.c, (uint8_t)d, idof(&w, a), ZT_ID_HOST, 0, 0, ANYP);
		assert_non_null(e);
		assert_int_equal(e->val.verdict, ZT_VERDICT_ALLOW);
		assert_int_equal(e->val.audit_verdict, ZT_VERDICT_ALLOW);
		assert_int_equal(e->val.rule_id, 0);
	}
	addr_parse("2001:db8::1", &h);
	assert_int_equal(model_ipcache(w.c, &h)->val.identity, ZT_ID_HOST);
	assert_int_equal(model_ipcache(w.c, &h)->plen, 128);
	addr_parse("fd00::1", &h);
	assert_int_equal(model_ipcache(w.c, &h)->val.identity, idof(&w, a));
	assert_int_equal(w.c->n_ipc, 2 + 2 + 3);
	/* Default deny but a policy isolates: by_default 0, its id. */
	assert_int_equal(world_compile(&w,
				       NP_HDR("p") "  podSelector: {}\n"
						   "  policyTypes: [Egress]\n",
				       ZT_POL_DEFAULT_DENY),
			 0);
	ie = model_iso(w.c, EGR, idof(&w, a));
	assert_int_equal(ie->val.by_default, 0);
	assert_int_equal(ie->val.rule_id, rule_id(w.c, "p", 0, ~0u));
	ie = model_iso(w.c, ING, idof(&w, a));
	assert_int_equal(ie->val.by_default, 1);
	/* Default allow: only the policy's. */
	assert_int_equal(world_compile(&w,
				       NP_HDR("p") "  podSelector: {}\n"
						   "  policyTypes: [Egress]\n",
				       ZT_POL_DEFAULT_ALLOW),
			 0);
	assert_int_equal(w.c->n_iso, 1);
	assert_null(model_iso(w.c, ING, idof(&w, a)));
	/* The host is allowed through isolation and the model agrees with eval. */
	{
		struct zt_ep_addr src, dst;

		addr_parse("10.0.0.1", &src);
		addr_parse("192.0.2.1", &dst);
		assert_int_equal(check_conn(&w, &src, &dst, IPPROTO_TCP, 80, true), 0);
		assert_int_equal(check_conn(&w, &dst, &src, IPPROTO_TCP, 80, true), 0);
	}
	world_free(&w);
}

/* ---- pending endpoints (CNI, labels not known yet) ---- */

/* One side as the kernel would decide it: ends resolved through the model's ipcache. */
static struct mside side_of(const struct world *w, const char *src, const char *dst, int dir,
			    uint16_t port)
{
	struct zt_ep_addr sa, da;
	struct end s, d;
	struct mside m;
	const struct end *local, *peer;

	addr_parse(src, &sa);
	addr_parse(dst, &da);
	resolve_end(w->c, &sa, &s);
	resolve_end(w->c, &da, &d);
	local = dir == EGR ? &s : &d;
	peer = dir == EGR ? &d : &s;
	{
		uint32_t peers[3] = { peer->id, peer->cidr_id, peer->port_class };

		model_side(w->c, (uint8_t)dir, local->id, peers, IPPROTO_TCP, port, false, &m);
	}
	return m;
}

static void make_pending(struct world *w, size_t i)
{
	zt_identities_put(w->ids, w->pe[i].identity);
	w->pe[i].identity = ZT_ID_PENDING;
}

/*
 * A pending endpoint: its address has ZT_ID_PENDING, no selector matches it
 * (not even podSelector: {}), with pending_isolated it is isolated both ways
 * with the host still allowed; then its labels arrive (the generation seg.c
 * publishes for the transition still isolates ZT_ID_PENDING), and a later
 * relabel compiles the old label identity beside the new one.
 */
static void test_pending(void **state)
{
	static const char *const yaml = NP_HDR(
		"same-ns") "  podSelector: {}\n"
			   "  policyTypes: [Ingress, Egress]\n"
			   "  ingress: [{from: [{podSelector: {}}]}]\n"
			   "  egress: [{to: [{podSelector: {}}]}]\n" SEP ZTP_HDR(
				   "solo-web") "  podSelector: {matchLabels: {app: solo}}\n"
					       "  egress:\n"
					       "  - action: allow\n"
					       "    to: [{podSelector: {matchLabels: {app: web}}}]\n"
					       "    ports: [{port: 80, protocol: TCP}]\n";
	struct world w;
	size_t a, b, p, q;
	const struct zt_polc_ipc_entry *ipc;
	const struct zt_polc_iso_entry *ie;
	struct zt_ep_addr x;
	struct mside m;

	(void)state;
	world_init(&w);
	a = add_ep(&w, "prod", "app=web", "", "10.0.0.1", "");
	b = add_ep(&w, "prod", "app=client", "", "10.0.0.2", "");
	p = add_ep(&w, "prod", "", "", "10.0.0.9", ""); /* the CNI's, pending */
	q = add_ep(&w, "prod", "app=solo", "", "10.0.0.10", "");
	make_pending(&w, p);
	add_host(&w, "192.0.2.1");
	w.pending_isolated = true;
	assert_int_equal(world_compile(&w, yaml, ZT_POL_DEFAULT_ALLOW), 0);

	/* Its address: ZT_ID_PENDING, still its endpoint's. */
	addr_parse("10.0.0.9", &x);
	ipc = model_ipcache(w.c, &x);
	assert_int_equal(ipc->val.identity, ZT_ID_PENDING);
	assert_int_equal(ipc->val.ep_id, w.pe[p].ep_id);
	/* Isolated both ways by the posture (default-deny, no rule), host allowed. */
	for (int d = 0; d < ZT_DIR_MAX; d++) {
		ie = model_iso(w.c, (uint8_t)d, ZT_ID_PENDING);
		assert_non_null(ie);
		assert_true(ie->val.isolated && ie->val.audit_isolated && ie->val.by_default);
		assert_int_equal(ie->val.rule_id, 0);
		assert_non_null(find_pol(w.c, (uint8_t)d, ZT_ID_PENDING, ZT_ID_HOST, 0, 0, ANYP));
		/* Nothing but the host entry: no policy selects it, nothing names it as a peer. */
		for (size_t i = 0; i < w.c->n_pol; i++)
			assert_true(w.c->pol[i].peer_id != ZT_ID_PENDING &&
				    (w.c->pol[i].local_id != ZT_ID_PENDING ||
				     w.c->pol[i].peer_id == ZT_ID_HOST));
	}
	/* Its first packet: denied both ways (the pending side), the host allowed. */
	m = side_of(&w, "10.0.0.9", "10.0.0.1", EGR, 80);
	assert_false(m.allowed);
	assert_int_equal(m.reason, ZT_PR_DEFAULT_DENY);
	m = side_of(&w, "10.0.0.1", "10.0.0.9", ING, 80);
	assert_false(m.allowed);
	m = side_of(&w, "10.0.0.9", "192.0.2.1", EGR, 80);
	assert_true(m.allowed);
	assert_int_equal(m.reason, ZT_PR_HOST);
	m = side_of(&w, "192.0.2.1", "10.0.0.9", ING, 10250);
	assert_true(m.allowed);
	/* podSelector: {} in its namespace does not take it in: web's ingress denies it. */
	m = side_of(&w, "10.0.0.9", "10.0.0.1", ING, 80);
	assert_false(m.allowed);
	assert_int_equal(m.reason, ZT_PR_NO_RULE);
	m = side_of(&w, "10.0.0.2", "10.0.0.1", ING, 80);
	assert_true(m.allowed); /* client -> web, as before */

	/* Posture allow: not isolated; the peers' policies still decide their side. */
	w.pending_isolated = false;
	assert_int_equal(world_compile(&w, yaml, ZT_POL_DEFAULT_ALLOW), 0);
	assert_null(model_iso(w.c, EGR, ZT_ID_PENDING));
	m = side_of(&w, "10.0.0.9", "10.0.0.1", EGR, 80);
	assert_true(m.allowed);
	assert_int_equal(m.reason, ZT_PR_NOT_ISOLATED);
	m = side_of(&w, "10.0.0.9", "10.0.0.1", ING, 80);
	assert_false(m.allowed);

	/*
	 * Labels arrive (app=client: client's identity). The transition's
	 * generation: the endpoints map may still say ZT_ID_PENDING, so its
	 * isolation stays; the address already has the new identity.
	 */
	w.pe[p].identity = idof(&w, b);
	w.ev[p].ls.labels = w.ev[b].ls.labels;
	w.pending_isolated = true;
	assert_int_equal(world_compile(&w, yaml, ZT_POL_DEFAULT_ALLOW), 0);
	assert_int_equal(model_ipcache(w.c, &x)->val.identity, idof(&w, b));
	assert_non_null(model_iso(w.c, EGR, ZT_ID_PENDING));
	m = side_of(&w, "10.0.0.9", "10.0.0.1", EGR, 80);
	assert_true(m.allowed);
	assert_int_equal(m.reason, ZT_PR_RULE_ALLOW);
	m = side_of(&w, "10.0.0.9", "10.0.0.1", ING, 80);
	assert_true(m.allowed);
	w.ev[p].ls.labels = (struct zt_labels){ 0 };
	w.pe[p].identity = ZT_ID_PENDING;

	/*
	 * Relabel of q (app=solo -> app=web): seg.c compiles the old identity as
	 * a second entry without addresses, so its entries stay for packets the
	 * endpoints map still gives the old identity.
	 */
	{
		uint32_t solo = idof(&w, q), web = idof(&w, a);
		struct zt_eval_endpoint ghost = w.ev[q];
		struct zt_polc_endpoint pe[MAX_EPS];
		struct zt_polc_input in = { 0 };
		struct zt_compiled *c = NULL;
		char err[256];

		assert_non_null(find_pol(w.c, EGR, solo, web, IPPROTO_TCP, 80, FULL));
		memcpy(pe, w.pe, w.n * sizeof(pe[0]));
		ghost.addrs = NULL;
		ghost.n_addrs = 0;
		pe[q].identity = web;
		pe[q].ev = &w.ev[a]; /* labels app=web (its addresses are q's below) */
		pe[w.n] = (struct zt_polc_endpoint){ .ep_id = w.pe[q].ep_id,
						     .identity = solo,
						     .ev = &ghost };
		in = (struct zt_polc_input){ .set = w.set,
					     .def = ZT_POL_DEFAULT_DENY,
					     .eps = pe,
					     .n_eps = w.n + 1,
					     .host_addrs = w.host,
					     .n_host_addrs = w.n_host,
					     .pending_isolated = true };
		assert_int_equal(zt_polc_compile(&in, &c, err, sizeof(err)), 0);
		assert_non_null(find_pol(c, EGR, solo, web, IPPROTO_TCP, 80, FULL));
		assert_non_null(model_iso(c, EGR, solo));
		addr_parse("10.0.0.10", &x);
		/* Without the second entry, the old identity's entries are gone. */
		zt_compiled_free(c);
		in.n_eps = w.n;
		assert_int_equal(zt_polc_compile(&in, &c, err, sizeof(err)), 0);
		assert_null(find_pol(c, EGR, solo, web, IPPROTO_TCP, 80, FULL));
		assert_null(model_iso(c, EGR, solo));
		zt_compiled_free(c);
	}
	world_free(&w);
}

/* Same input twice: same entries, same order. */
static void test_deterministic(void **state)
{
	struct world w;
	struct zt_compiled *first;
	const char *y = NP_HDR("p") "  podSelector: {}\n"
				    "  ingress:\n"
				    "  - from: [{ipBlock: {cidr: 10.0.0.0/8}}, {podSelector: {}}]\n"
				    "    ports: [{port: 10, endPort: 300}]\n";

	(void)state;
	world_init(&w);
	add_ep(&w, "prod", "app=a", "", "10.0.0.1", "");
	add_ep(&w, "prod", "app=b", "", "10.0.0.2", "");
	assert_int_equal(world_compile(&w, y, ZT_POL_DEFAULT_ALLOW), 0);
	first = w.c;
	w.c = NULL;
	{
		struct zt_polc_input in = { .set = w.set, .eps = w.pe, .n_eps = w.n };
		char err[256];

		assert_int_equal(zt_polc_compile(&in, &w.c, err, sizeof(err)), 0);
	}
	assert_int_equal(first->n_pol, w.c->n_pol);
	assert_memory_equal(first->pol, w.c->pol, first->n_pol * sizeof(*first->pol));
	assert_int_equal(first->n_ipc, w.c->n_ipc);
	assert_memory_equal(first->ipc, w.c->ipc, first->n_ipc * sizeof(*first->ipc));
	assert_int_equal(first->n_iso, w.c->n_iso);
	assert_memory_equal(first->iso, w.c->iso, first->n_iso * sizeof(*first->iso));
	zt_compiled_free(first);
	world_free(&w);
}

static void test_compile_errors(void **state)
{
	struct world w;
	struct zt_polc_input in = { 0 };
	struct zt_compiled *c = (struct zt_compiled *)0x1;
	char err[256], d[8];
	uint32_t id;

	(void)state;
	world_init(&w);
	add_ep(&w, "prod", "app=a", "", "10.0.0.1", "");
	id = idof(&w, 0);
	assert_int_equal(world_compile(&w, "", ZT_POL_DEFAULT_ALLOW), 0);
	assert_int_equal(zt_polc_compile(&in, &c, err, sizeof(err)), -EINVAL); /* no set */
	assert_ptr_equal(c, (struct zt_compiled *)0x1);
	in.set = w.set;
	in.eps = w.pe;
	in.n_eps = w.n;
	w.pe[0].identity = 7; /* not a label identity */
	assert_int_equal(zt_polc_compile(&in, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "endpoint 0 (ep_id 1)"));
	assert_ptr_equal(c, (struct zt_compiled *)0x1);
	w.pe[0].identity = id;
	w.addr[0][0].family = 99;
	assert_int_equal(zt_polc_compile(&in, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not IPv4/IPv6"));
	w.addr[0][0].family = AF_INET;
	assert_int_equal(zt_polc_compile(&in, &c, err, sizeof(err)), 0);
	assert_int_equal(zt_polc_rule_describe(c, 0, d, sizeof(d)), 0);
	assert_int_equal(zt_polc_rule_describe(c, 0, d, 3), -ENOSPC);
	zt_compiled_free(c);
	world_free(&w);
}

/* The evaluator's host semantics, with expected verdicts written out. */
static void test_eval_host(void **state)
{
	struct world w;
	size_t db;
	struct zt_eval_opts opts;
	struct zt_eval_conn conn = { 0 };
	struct zt_eval_result res;
	char buf[1024];

	(void)state;
	world_init(&w);
	db = add_ep(&w, "prod", "app=db", "", "10.0.0.1", "");
	add_host(&w, "10.0.0.254");
	opts = (struct zt_eval_opts){ .host_addrs = w.host, .n_host_addrs = w.n_host };
	conn.src.addr = w.host[0];
	conn.dst.addr = w.ev[db].addrs[0];
	conn.protocol = IPPROTO_TCP;
	conn.port = 80;
	/* Isolated, no rule allows, an ipBlock deny covering the host: the host passes. */
	assert_int_equal(
		world_compile(
			&w,
			NP_HDR("iso") "  podSelector: {}\n"
				      "  policyTypes: [Ingress, Egress]\n" SEP ZTP_HDR(
					      "d") "  podSelector: {}\n"
						   "  ingress:\n"
						   "  - action: deny\n"
						   "    from: [{ipBlock: {cidr: 0.0.0.0/0}}]\n",
			ZT_POL_DEFAULT_DENY),
		0);
	assert_int_equal(zt_policy_eval_ex(w.set, w.def, w.ev, w.n, &opts, &conn, &res), 0);
	assert_int_equal(res.verdict, ZT_PV_ALLOW);
	assert_true(res.src_host);
	assert_int_equal(res.side[ZT_POL_INGRESS].reason, ZT_PR_HOST);
	assert_int_equal(res.side[ZT_POL_EGRESS].reason, ZT_PR_EXTERNAL);
	assert_int_equal(zt_eval_format(&res, &conn, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "10.0.0.254 (host)"));
	assert_non_null(strstr(buf, "the host is always allowed"));
	assert_string_equal(zt_pol_reason_name(ZT_PR_HOST), "host");
	/* Without the option the same address is an outside address: denied. */
	assert_int_equal(zt_policy_eval(w.set, w.def, w.ev, w.n, &conn, &res), 0);
	assert_int_equal(res.verdict, ZT_PV_DENY);
	assert_false(res.src_host);
	/* Pod -> host on egress: allowed by the host rule, too. */
	conn.src.addr = w.ev[db].addrs[0];
	conn.dst.addr = w.host[0];
	assert_int_equal(zt_policy_eval_ex(w.set, w.def, w.ev, w.n, &opts, &conn, &res), 0);
	assert_int_equal(res.verdict, ZT_PV_ALLOW);
	assert_int_equal(res.side[ZT_POL_EGRESS].reason, ZT_PR_HOST);
	/* A deny rule for every peer (no from) also denies the host. */
	conn.src.addr = w.host[0];
	conn.dst.addr = w.ev[db].addrs[0];
	assert_int_equal(world_compile(&w,
				       ZTP_HDR("d") "  podSelector: {}\n"
						    "  ingress:\n"
						    "  - action: deny\n"
						    "    ports: [{port: 80}]\n",
				       ZT_POL_DEFAULT_ALLOW),
			 0);
	assert_int_equal(zt_policy_eval_ex(w.set, w.def, w.ev, w.n, &opts, &conn, &res), 0);
	assert_int_equal(res.verdict, ZT_PV_DENY);
	assert_int_equal(res.side[ZT_POL_INGRESS].reason, ZT_PR_RULE_DENY);
	conn.port = 81;
	assert_int_equal(zt_policy_eval_ex(w.set, w.def, w.ev, w.n, &opts, &conn, &res), 0);
	assert_int_equal(res.side[ZT_POL_INGRESS].reason, ZT_PR_HOST);
	/* An allow rule for every peer is reported as the rule. */
	assert_int_equal(world_compile(&w,
				       NP_HDR("a") "  podSelector: {}\n"
						   "  ingress:\n"
						   "  - ports: [{port: 81}]\n",
				       ZT_POL_DEFAULT_ALLOW),
			 0);
	assert_int_equal(zt_policy_eval_ex(w.set, w.def, w.ev, w.n, &opts, &conn, &res), 0);
	assert_int_equal(res.side[ZT_POL_INGRESS].reason, ZT_PR_RULE_ALLOW);
	assert_int_equal(check_conn(&w, &conn.src.addr, &conn.dst.addr, IPPROTO_TCP, 81, true), 0);
	assert_int_equal(check_conn(&w, &conn.src.addr, &conn.dst.addr, IPPROTO_TCP, 82, true), 0);
	world_free(&w);
}

/* ---- the differential test ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

struct sb {
	char *s;
	size_t n, cap;
};

static void sbf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	for (;;) {
		va_start(ap, fmt);
		r = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		assert_true(r >= 0);
		if ((size_t)r < b->cap - b->n) {
			b->n += (size_t)r;
			return;
		}
		b->cap = b->cap * 2 + (size_t)r + 64;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
	}
}

static const char *const vals[] = { "a", "b", "c" };

static void gen_pod_selector(struct sb *b)
{
	switch (rnd(5)) {
	case 0:
		sbf(b, "{}");
		break;
	case 1:
	case 2:
		sbf(b, "{matchLabels: {app: %s}}", vals[rnd(3)]);
		break;
	case 3:
		sbf(b, "{matchExpressions: [{key: tier, operator: %s, values: [%s]}]}",
		    rnd(2) ? "In" : "NotIn", vals[rnd(3)]);
		break;
	default:
		sbf(b, "{matchExpressions: [{key: tier, operator: %s}]}",
		    rnd(2) ? "Exists" : "DoesNotExist");
		break;
	}
}

static void gen_ns_selector(struct sb *b)
{
	switch (rnd(3)) {
	case 0:
		sbf(b, "{}");
		break;
	case 1:
		sbf(b, "{matchLabels: {env: %s}}", rnd(2) ? "prod" : "dev");
		break;
	default:
		sbf(b, "{matchLabels: {kubernetes.io/metadata.name: %s}}", rnd(2) ? "ns1" : "ns2");
		break;
	}
}

static const char *const blocks[][3] = {
	{ "0.0.0.0/0", "10.0.0.0/8", NULL },
	{ "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24" },
	{ "10.1.0.0/16", NULL, NULL },
	{ "10.244.0.0/16", "10.244.1.0/24", NULL },
	{ "192.168.0.0/16", "192.168.1.0/24", NULL },
	{ "10.244.0.5/32", NULL, NULL },
	{ "'::/0'", "'fd00::/8'", NULL },
	{ "'fd00::/8'", "'fd00:1::/32'", NULL },
	{ "'2001:db8::/32'", NULL, NULL },
};

static void gen_peer(struct sb *b)
{
	const char *const *bl;

	switch (rnd(6)) {
	case 0:
	case 1:
		sbf(b, "{podSelector: ");
		gen_pod_selector(b);
		sbf(b, "}");
		break;
	case 2:
		sbf(b, "{namespaceSelector: ");
		gen_ns_selector(b);
		sbf(b, "}");
		break;
	case 3:
		sbf(b, "{podSelector: ");
		gen_pod_selector(b);
		sbf(b, ", namespaceSelector: ");
		gen_ns_selector(b);
		sbf(b, "}");
		break;
	default:
		bl = blocks[rnd(N(blocks))];
		sbf(b, "{ipBlock: {cidr: %s", bl[0]);
		if (bl[1] && rnd(3)) {
			sbf(b, ", except: [%s", bl[1]);
			if (bl[2] && rnd(2))
				sbf(b, ", %s", bl[2]);
			sbf(b, "]");
		}
		sbf(b, "}}");
		break;
	}
}

static const uint16_t ports_pool[] = { 53, 80, 443, 5432, 8080, 9090 };

static void gen_port(struct sb *b)
{
	const char *proto = rnd(3) == 0 ? "UDP" : rnd(5) == 0 ? "SCTP" : "TCP";

	switch (rnd(7)) {
	case 0:
		sbf(b, "{protocol: %s}", proto);
		break;
	case 1:
	case 2:
		sbf(b, "{protocol: %s, port: %u}", proto, ports_pool[rnd(N(ports_pool))]);
		break;
	case 3: {
		uint32_t lo = ports_pool[rnd(N(ports_pool))] - rnd(20);
		uint32_t hi = lo + rnd(3000);

		sbf(b, "{protocol: %s, port: %u, endPort: %u}", proto, lo, hi > 65535 ? 65535 : hi);
		break;
	}
	case 4:
		sbf(b, "{port: 1, endPort: 65535}");
		break;
	case 5:
		sbf(b, "{port: http}");
		break;
	default:
		sbf(b, "{protocol: UDP, port: dns}");
		break;
	}
}

static void gen_rule(struct sb *b, bool ztp, bool may_allow, const char *word)
{
	bool allow = ztp ? (may_allow && rnd(3) != 0) : true;
	size_t np = rnd(4), nports = rnd(3);
	const char *ind = " "; /* after "  -", then aligned under it */

	sbf(b, "  -");
	if (ztp) {
		sbf(b, "%saction: %s\n", ind, allow ? "allow" : "deny");
		ind = "    ";
	}
	if (!ztp && np == 0 && nports == 0) {
		sbf(b, " {}\n");
		return;
	}
	if (np) {
		sbf(b, "%s%s: [", ind, word);
		for (size_t i = 0; i < np; i++) {
			if (i)
				sbf(b, ", ");
			gen_peer(b);
		}
		sbf(b, "]\n");
		ind = "    ";
	}
	if (nports) {
		sbf(b, "%sports: [", ind);
		for (size_t i = 0; i < nports; i++) {
			if (i)
				sbf(b, ", ");
			gen_port(b);
		}
		sbf(b, "]\n");
		ind = "    ";
	}
	if (ztp && allow && rnd(4) == 0)
		sbf(b, "    requireTLS: true\n");
	if (ztp && allow && rnd(4) == 0)
		sbf(b, "    requireMutualAuth: true\n");
}

static char *gen_policies(size_t n)
{
	struct sb b = { 0 };

	b.cap = 4096;
	b.s = malloc(b.cap);
	b.s[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		bool ztp = rnd(2);
		int types = (int)rnd(5); /* 0 absent, 1 Ingress, 2 Egress, 3 both, 4 [] */

		if (i)
			sbf(&b, "---\n");
		sbf(&b, "apiVersion: %s\nkind: %s\nmetadata: {name: p%zu, namespace: %s}\nspec:\n",
		    ztp ? "ztagent.io/v1" : "networking.k8s.io/v1",
		    ztp ? "ZeroTrustPolicy" : "NetworkPolicy", i, rnd(2) ? "ns1" : "ns2");
		sbf(&b, "  podSelector: ");
		gen_pod_selector(&b);
		sbf(&b, "\n");
		if (ztp && rnd(3) == 0)
			sbf(&b, "  mode: audit\n");
		if (types == 1)
			sbf(&b, "  policyTypes: [Ingress]\n");
		else if (types == 2)
			sbf(&b, "  policyTypes: [Egress]\n");
		else if (types == 3)
			sbf(&b, "  policyTypes: [Ingress, Egress]\n");
		else if (types == 4)
			sbf(&b, "  policyTypes: []\n");
		for (int d = 0; d < 2; d++) {
			size_t nr = rnd(4);
			bool listed = types == 3 || types == (d == 0 ? 1 : 2);
			bool may_allow = !(types >= 1 && types <= 3) || listed;

			if (nr == 0) {
				if (rnd(3) == 0)
					sbf(&b, "  %s: []\n", d ? "egress" : "ingress");
				continue;
			}
			sbf(&b, "  %s:\n", d ? "egress" : "ingress");
			for (size_t r = 0; r < nr; r++)
				gen_rule(&b, ztp, may_allow, d ? "to" : "from");
		}
	}
	return b.s;
}

static void gen_endpoints(struct world *w, size_t n)
{
	/* Named ports depend on the label set only (replicas share them). */
	for (size_t i = 0; i < n; i++) {
		char labels[64] = "", addrs[96], ports[96] = "";
		const char *app = rnd(4) ? vals[rnd(3)] : NULL;
		const char *tier = rnd(2) ? vals[rnd(3)] : NULL;
		bool ns1 = rnd(2);

		if (app)
			snprintf(labels, sizeof(labels), "app=%s", app);
		if (tier)
			snprintf(labels + strlen(labels), sizeof(labels) - strlen(labels),
				 "%stier=%s", app ? "," : "", tier);
		if (app && app[0] == 'a')
			snprintf(ports, sizeof(ports), "http/TCP/8080");
		else if (app && app[0] == 'b')
			snprintf(ports, sizeof(ports), "http/TCP/80,dns/UDP/53");
		if (tier && tier[0] == 'c')
			snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports),
				 "%sdns/UDP/5353", ports[0] ? "," : "");
		snprintf(addrs, sizeof(addrs), "10.244.%zu.%zu", i % 2, 5 + i);
		if (rnd(2))
			snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs),
				 ",fd00:1::%zx", 5 + i);
		add_ep(w, ns1 ? "ns1" : "ns2", labels, ns1 ? "env=prod" : "env=dev", addrs, ports);
	}
}

static const char *const ext_addrs[] = {
	"10.1.2.3",    "10.1.3.3",    "10.2.0.1",   "10.244.1.77", "10.244.9.9", "192.168.1.1",
	"192.168.1.2", "192.168.5.5", "8.8.8.8",    "fd00::1",	   "fd00:1::99", "fd00:2::5",
	"2001:db8::7", "2a00::1",     "10.244.0.5", "0.0.0.1",
};

static void pick_addr(const struct world *w, struct zt_ep_addr *a)
{
	if (rnd(3)) {
		size_t i = rnd((uint32_t)w->n);

		*a = w->ev[i].addrs[rnd((uint32_t)w->ev[i].n_addrs)];
	} else {
		addr_parse(ext_addrs[rnd(N(ext_addrs))], a);
	}
}

static const uint16_t conn_ports[] = { 0,    1,	   53,	 79,   80,   81,   443,
				       5353, 5432, 8080, 8081, 9090, 65535 };

static void test_differential(void **state)
{
	const char *env = getenv("ZT_POLC_ROUNDS"), *seed = getenv("ZT_POLC_SEED");
	size_t rounds = env ? strtoul(env, NULL, 10) : 400, cases = 0, bad = 0;

	(void)state;
	/* A fixed seed by default (reproducible); ZT_POLC_SEED explores others. */
	if (seed && strtoull(seed, NULL, 0))
		rng_state = strtoull(seed, NULL, 0);
	for (size_t round = 0; round < rounds; round++) {
		struct world w;
		char *yaml;

		world_init(&w);
		gen_endpoints(&w, 4 + rnd(10));
		add_host(&w, "192.168.1.1");
		add_host(&w, "fd00::1");
		yaml = gen_policies(1 + rnd(5));
		if (world_compile(&w, yaml, rnd(4) ? ZT_POL_DEFAULT_ALLOW : ZT_POL_DEFAULT_DENY) <
		    0) {
			free(yaml);
			world_free(&w);
			fail_msg("round %zu: generated policies did not compile", round);
		}
		for (int k = 0; k < 60; k++) {
			struct zt_ep_addr src, dst;
			static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP,
							  IPPROTO_SCTP, IPPROTO_ICMP };
			uint8_t proto = protos[rnd(N(protos))];
			uint16_t port = proto == IPPROTO_ICMP ? 0 :
					rnd(4)		      ? conn_ports[rnd(N(conn_ports))] :
								(uint16_t)rnd(65536);
			int b;

			pick_addr(&w, &src);
			pick_addr(&w, &dst);
			b = check_conn(&w, &src, &dst, proto, port, false);
			cases++;
			if (b && !bad)
				print_error("round %zu policies:\n%s\n", round, yaml);
			bad += (size_t)b;
		}
		free(yaml);
		world_free(&w);
	}
	print_message("differential: %zu connections, %zu side mismatches\n", cases, bad);
	print_message("  verdicts: allow %zu, deny %zu, audit %zu; TLS/mTLS required %zu\n",
		      cov.verdict[ZT_PV_ALLOW], cov.verdict[ZT_PV_DENY], cov.verdict[ZT_PV_AUDIT],
		      cov.tls);
	print_message("  sides:");
	for (int r = 0; r <= ZT_PR_HOST; r++)
		print_message(" %s %zu", zt_pol_reason_name((enum zt_pol_reason)r), cov.reason[r]);
	print_message("; named-port allows %zu; CIDR-identity peers %zu\n", cov.named_allow,
		      cov.ipblock_peer);
	print_message("  endpoint peers decided by their cidr_id %zu, by their port class %zu\n",
		      cov.by_cidr_id, cov.by_port_class);
	assert_int_equal(bad, 0);
	/* The generator must reach every case, or the comparison proves little. */
	if (rounds >= 100) {
		for (int r = 0; r <= ZT_PR_HOST; r++)
			assert_true(cov.reason[r] > 0);
		for (int v = 0; v < 3; v++)
			assert_true(cov.verdict[v] > 0);
		assert_true(cov.tls > 0);
		assert_true(cov.named_allow > 0);
		assert_true(cov.ipblock_peer > 0);
		assert_true(cov.by_cidr_id > 0);
		assert_true(cov.by_port_class > 0);
	}
}

/* The test must be able to fail: a corrupted entry is noticed. */
static void test_differential_detects(void **state)
{
	struct world w;
	struct zt_ep_addr src, dst;
	size_t a, b;
	struct zt_polc_pol_entry *e;

	(void)state;
	world_init(&w);
	a = add_ep(&w, "prod", "app=a", "", "10.0.0.1", "");
	b = add_ep(&w, "prod", "app=b", "", "10.0.0.2", "");
	assert_int_equal(
		world_compile(&w,
			      ZTP_HDR("d") "  podSelector: {}\n"
					   "  ingress:\n"
					   "  - action: deny\n"
					   "    from: [{podSelector: {matchLabels: {app: a}}}]\n"
					   "    ports: [{port: 80}]\n",
			      ZT_POL_DEFAULT_ALLOW),
		0);
	src = w.ev[a].addrs[0];
	dst = w.ev[b].addrs[0];
	assert_int_equal(check_conn(&w, &src, &dst, IPPROTO_TCP, 80, false), 0);
	e = (struct zt_polc_pol_entry *)find_pol(w.c, ING, idof(&w, b), idof(&w, a), IPPROTO_TCP,
						 80, FULL);
	assert_non_null(e);
	e->val.verdict = ZT_VERDICT_ALLOW;
	assert_int_not_equal(check_conn(&w, &src, &dst, IPPROTO_TCP, 80, false), 0);
	world_free(&w);
}

/* ---- the applier against kernel maps ---- */

struct kmaps {
	struct zt_polmaps m;
};

static int kmaps_create(struct kmaps *k, uint32_t pol_max, uint32_t ipc_max)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, mm, .map_flags = BPF_F_MMAPABLE);

	k->m.policy_fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "policy", sizeof(struct zt_pol_key),
					sizeof(struct zt_pol_val), pol_max, &lpm);
	k->m.ipc4_fd =
		bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "ipcache_v4", sizeof(struct zt_ipcache_key4),
			       sizeof(struct zt_ipcache_val), ipc_max, &lpm);
	k->m.ipc6_fd =
		bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "ipcache_v6", sizeof(struct zt_ipcache_key6),
			       sizeof(struct zt_ipcache_val), ipc_max, &lpm);
	k->m.iso_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "pol_isolation", sizeof(struct zt_iso_key),
				     sizeof(struct zt_iso_val), 1024, NULL);
	k->m.state_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pol_state", sizeof(uint32_t),
				       sizeof(struct zt_pol_state), 1, &mm);
	if (k->m.policy_fd < 0 || k->m.ipc4_fd < 0 || k->m.ipc6_fd < 0 || k->m.iso_fd < 0 ||
	    k->m.state_fd < 0)
		return -1;
	return 0;
}

static void kmaps_close(struct kmaps *k)
{
	close(k->m.policy_fd);
	close(k->m.ipc4_fd);
	close(k->m.ipc6_fd);
	close(k->m.iso_fd);
	close(k->m.state_fd);
}

static uint32_t kgen(const struct kmaps *k)
{
	struct zt_pol_state st;
	uint32_t zero = 0;

	assert_int_equal(bpf_map_lookup_elem(k->m.state_fd, &zero, &st), 0);
	return st.gen;
}

/* Number of keys with this slot in a map (slot byte at off). */
static size_t count_slot(int fd, size_t ksz, size_t off, uint8_t slot)
{
	uint8_t key[64], next[64];
	size_t n = 0;
	bool first = true;

	while (bpf_map_get_next_key(fd, first ? NULL : key, next) == 0) {
		first = false;
		memcpy(key, next, ksz);
		n += key[off] == slot;
	}
	return n;
}

/* Everything the kernel holds in slot s is exactly what c says. */
static void check_slot(const struct kmaps *k, const struct zt_compiled *c, uint8_t s)
{
	size_t n4 = 0, n6 = 0;

	for (size_t i = 0; i < c->n_pol; i++) {
		const struct zt_polc_pol_entry *e = &c->pol[i], *m;
		struct zt_pol_key key;
		struct zt_pol_val v;
		uint16_t probe = e->port;

		if (e->prefixlen == ANYP)
			probe = 4242;
		/* A full-length key: the kernel's longest prefix match vs the model's. */
		zt_pol_key_fill(&key, FULL, s, e->dir, e->local_id, e->peer_id,
				e->prefixlen == ANYP ? IPPROTO_UDP : e->proto, probe);
		m = model_lpm(c, e->dir, e->local_id, e->peer_id, key.data[10], probe);
		assert_non_null(m);
		assert_int_equal(bpf_map_lookup_elem(k->m.policy_fd, &key, &v), 0);
		assert_memory_equal(&v, &m->val, sizeof(v));
		/* And the exact key holds this entry. */
		zt_pol_key_fill(&key, e->prefixlen, s, e->dir, e->local_id, e->peer_id, e->proto,
				e->port);
		assert_int_equal(bpf_map_lookup_elem(k->m.policy_fd, &key, &v), 0);
		assert_memory_equal(&v, &e->val, sizeof(v));
	}
	for (size_t i = 0; i < c->n_iso; i++) {
		struct zt_iso_key key = { .slot = s,
					  .dir = c->iso[i].dir,
					  .identity = c->iso[i].identity };
		struct zt_iso_val v;

		assert_int_equal(bpf_map_lookup_elem(k->m.iso_fd, &key, &v), 0);
		assert_int_equal(v.isolated, c->iso[i].val.isolated);
		assert_int_equal(v.rule_id, c->iso[i].val.rule_id);
		assert_int_equal(v.audit_rule_id, c->iso[i].val.audit_rule_id);
	}
	for (size_t i = 0; i < c->n_ipc; i++) {
		const struct zt_polc_ipc_entry *e = &c->ipc[i], *m;
		struct zt_ipcache_val v;
		struct zt_ep_addr a = { .family = e->family };

		memcpy(a.addr, e->addr, 16);
		a.addr[e->family == AF_INET ? 3 : 15] |= 1; /* inside the prefix unless a host */
		if (e->plen == (e->family == AF_INET ? 32 : 128))
			memcpy(a.addr, e->addr, 16);
		m = model_ipcache(c, &a);
		if (e->family == AF_INET) {
			struct zt_ipcache_key4 key = { .prefixlen = 40, .slot = s };

			memcpy(key.addr, a.addr, 4);
			assert_int_equal(bpf_map_lookup_elem(k->m.ipc4_fd, &key, &v), 0);
			n4++;
		} else {
			struct zt_ipcache_key6 key = { .prefixlen = 136, .slot = s };

			memcpy(key.addr, a.addr, 16);
			assert_int_equal(bpf_map_lookup_elem(k->m.ipc6_fd, &key, &v), 0);
			n6++;
		}
		assert_int_equal(v.identity, m->val.identity);
		assert_int_equal(v.ep_id, m->val.ep_id);
	}
	assert_int_equal(count_slot(k->m.policy_fd, sizeof(struct zt_pol_key), 4, s), c->n_pol);
	assert_int_equal(count_slot(k->m.iso_fd, sizeof(struct zt_iso_key), 0, s), c->n_iso);
	assert_int_equal(count_slot(k->m.ipc4_fd, sizeof(struct zt_ipcache_key4), 4, s), n4);
	assert_int_equal(count_slot(k->m.ipc6_fd, sizeof(struct zt_ipcache_key6), 4, s), n6);
}

static bool have_bpf(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "probe", 4, 4, 1, NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void compile_random(struct world *w, size_t n_pol)
{
	char *yaml = gen_policies(n_pol);

	assert_int_equal(world_compile(w, yaml, ZT_POL_DEFAULT_ALLOW), 0);
	free(yaml);
}

static void test_apply(void **state)
{
	struct world w1, w2, w3, w4, w5;
	struct zt_polapply *a;
	struct kmaps k;
	char err[512];
	uint32_t gen = 0;

	(void)state;
	if (!have_bpf())
		skip();
	assert_int_equal(kmaps_create(&k, 100000, 10000), 0);
	world_init(&w1);
	world_init(&w2);
	world_init(&w3);
	world_init(&w4);
	world_init(&w5);
	gen_endpoints(&w5, 2);
	compile_random(&w5, 0);
	gen_endpoints(&w1, 10);
	add_host(&w1, "192.168.1.1");
	compile_random(&w1, 6);
	gen_endpoints(&w2, 8);
	compile_random(&w2, 6);
	gen_endpoints(&w3, 12);
	add_host(&w3, "fd00::1");
	compile_random(&w3, 6);
	gen_endpoints(&w4, 9);
	compile_random(&w4, 4);

	assert_int_equal(zt_polapply_new(&a, &k.m, err, sizeof(err)), 0);
	assert_int_equal(zt_polapply_gen(a), 0);
	assert_int_equal(zt_polapply_apply(a, w1.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 1);
	assert_int_equal(kgen(&k), 1);
	check_slot(&k, w1.c, 1);
	assert_int_equal(zt_polapply_apply(a, w2.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 2);
	assert_int_equal(kgen(&k), 2);
	check_slot(&k, w2.c, 0);
	check_slot(&k, w1.c, 1); /* not cleared before the next change */
	assert_int_equal(zt_polapply_apply(a, w3.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 3);
	check_slot(&k, w3.c, 1); /* exactly w3: w1's leftovers gone */
	check_slot(&k, w2.c, 0);
	/* Same policy again: a no-op diff in slot 0 then slot 1. */
	assert_int_equal(zt_polapply_apply(a, w3.c, &gen, err, sizeof(err)), 0);
	check_slot(&k, w3.c, 0);
	assert_int_equal(zt_polapply_apply(a, w3.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 5);
	check_slot(&k, w3.c, 1);
	assert_int_equal(zt_polapply_apply(a, w2.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 6);
	check_slot(&k, w2.c, 0);
	zt_polapply_free(a);

	/* A fresh applier over the same maps continues from the kernel's state. */
	assert_int_equal(zt_polapply_new(&a, &k.m, err, sizeof(err)), 0);
	assert_int_equal(zt_polapply_gen(a), 6);
	assert_int_equal(zt_polapply_apply(a, w4.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 7);
	check_slot(&k, w4.c, 1); /* w3 was there: read back and removed */
	check_slot(&k, w2.c, 0);
	zt_polapply_free(a);
	assert_int_equal(zt_polapply_new(&a, &k.m, err, sizeof(err)), 0);
	assert_int_equal(zt_polapply_apply(a, w1.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 8);
	check_slot(&k, w1.c, 0);
	check_slot(&k, w4.c, 1);
	zt_polapply_free(a);
	kmaps_close(&k);

	/* A failing apply: the policy map cannot hold both generations. */
	assert_int_equal(kmaps_create(&k, (uint32_t)(w2.c->n_pol + w5.c->n_pol), 10000), 0);
	assert_true(w3.c->n_pol > w5.c->n_pol);
	assert_int_equal(zt_polapply_new(&a, &k.m, err, sizeof(err)), 0);
	assert_int_equal(zt_polapply_apply(a, w2.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 1);
	err[0] = '\0';
	gen = 77;
	assert_true(zt_polapply_apply(a, w3.c, &gen, err, sizeof(err)) < 0);
	print_message("expected failure: %s\n", err);
	assert_non_null(strstr(err, "map policy is full (max_entries"));
	assert_int_equal(gen, 77);
	assert_int_equal(zt_polapply_gen(a), 1);
	assert_int_equal(kgen(&k), 1);
	check_slot(&k, w2.c, 1); /* the published generation is intact */
	assert_int_equal(count_slot(k.m.policy_fd, sizeof(struct zt_pol_key), 4, 0), 0);
	assert_int_equal(count_slot(k.m.iso_fd, sizeof(struct zt_iso_key), 0, 0), 0);
	assert_int_equal(count_slot(k.m.ipc4_fd, sizeof(struct zt_ipcache_key4), 4, 0), 0);
	/* And the next apply that fits works. */
	assert_int_equal(zt_polapply_apply(a, w5.c, &gen, err, sizeof(err)), 0);
	assert_int_equal(gen, 2);
	check_slot(&k, w5.c, 0);
	check_slot(&k, w2.c, 1);
	zt_polapply_free(a);
	kmaps_close(&k);

	/* Maps of the wrong shape are refused with a message. */
	{
		struct kmaps bad;

		assert_int_equal(kmaps_create(&bad, 16, 16), 0);
		close(bad.m.state_fd);
		bad.m.state_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pol_state", 4, 8, 1, NULL);
		assert_true(zt_polapply_new(&a, &bad.m, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "pol_state"));
		kmaps_close(&bad);
	}
	world_free(&w1);
	world_free(&w2);
	world_free(&w3);
	world_free(&w4);
	world_free(&w5);
}

/* ---- performance ---- */

/*
 * n_rules rules in policies of 4 (2 ingress, 2 egress) over 200 endpoints in
 * 50 label sets, 2 namespaces; variant shifts ports so that a second policy
 * differs in every entry.
 */
static char *bench_yaml(size_t n_rules, unsigned int variant)
{
	struct sb b = { 0 };

	b.cap = 1 << 20;
	b.s = malloc(b.cap);
	b.s[0] = '\0';
	for (size_t i = 0; i < n_rules / 4; i++) {
		sbf(&b,
		    "%sapiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		    "metadata: {name: p%zu, namespace: ns%zu}\nspec:\n"
		    "  podSelector: {matchLabels: {app: a%zu}}\n"
		    "  policyTypes: [Ingress, Egress]\n"
		    "  ingress:\n"
		    "  - from: [{podSelector: {matchLabels: {app: a%zu}}}]\n"
		    "    ports: [{port: %zu}, {port: %zu, endPort: %zu}]\n"
		    "  - from: [{ipBlock: {cidr: 10.%zu.%zu.0/24, except: [10.%zu.%zu.128/25]}}]\n"
		    "    ports: [{port: %u}]\n"
		    "  egress:\n"
		    "  - to: [{podSelector: {matchLabels: {app: a%zu}}}]\n"
		    "    ports: [{port: http}, {port: %zu}]\n"
		    "  - to: [{namespaceSelector: {matchLabels: {env: e%zu}}, podSelector: "
		    "{matchLabels: {tier: t%zu}}}]\n"
		    "    ports: [{protocol: UDP, port: 53}]\n",
		    i ? "---\n" : "", i, (i % 50) % 2, i % 50, (i + 2 * (i / 50)) % 50,
		    1000 + i + variant, 20000 + (i % 100) * 10 + variant,
		    20009 + (i % 100) * 10 + variant, (i / 200) % 256, i % 200, (i / 200) % 256,
		    i % 200, 443 + variant, (i + 2 * (i / 50) + 2) % 50, 5432 + i % 100 + variant,
		    i % 2, i % 4);
	}
	return b.s;
}

static void bench_world(struct world *w)
{
	world_init(w);
	for (size_t i = 0; i < 200; i++) {
		char lab[32], addr[32], nsl[16];

		snprintf(lab, sizeof(lab), "app=a%zu,tier=t%zu", i % 50, (i % 50) % 4);
		snprintf(addr, sizeof(addr), "10.244.%zu.%zu", i / 250, i % 250 + 1);
		snprintf(nsl, sizeof(nsl), "env=e%zu", (i % 50) % 2);
		add_ep(w, (i % 50) % 2 ? "ns1" : "ns0", lab, nsl, addr, "http/TCP/8080");
	}
}

static double bench_compile(struct world *w, size_t n_rules, unsigned int variant)
{
	char *yaml = bench_yaml(n_rules, variant), err[512];
	struct zt_polc_input in = { 0 };
	double t0, t1, t2;

	zt_compiled_free(w->c);
	w->c = NULL;
	zt_policy_set_free(w->set);
	t0 = now_ms();
	assert_int_equal(
		zt_policy_parse_buf(yaml, strlen(yaml), "bench.yaml", &w->set, err, sizeof(err)),
		0);
	t1 = now_ms();
	in.set = w->set;
	in.eps = w->pe;
	in.n_eps = w->n;
	assert_int_equal(zt_polc_compile(&in, &w->c, err, sizeof(err)), 0);
	t2 = now_ms();
	free(yaml);
	if (getenv("ZT_POLC_DEBUG")) {
		size_t nc = 0, ni = 0, na = 0, nh = 0;

		for (size_t i = 0; i < w->c->n_pol; i++) {
			uint32_t p = w->c->pol[i].peer_id;

			nc += p >= ZT_ID_FIRST_CIDR;
			ni += p >= ZT_ID_FIRST_LABELS && p < ZT_ID_FIRST_CIDR;
			na += p == ZT_ID_ANY;
			nh += p == ZT_ID_HOST;
		}
		print_message("cidr %zu ident %zu any %zu host %zu, policies %zu\n", nc, ni, na, nh,
			      w->set->n);
	}
	print_message("bench %zu rules: parse %.1f ms, compile %.1f ms -> %zu policy, %zu "
		      "isolation, %zu ipcache entries\n",
		      n_rules, t1 - t0, t2 - t1, w->c->n_pol, w->c->n_iso, w->c->n_ipc);
	return t2 - t1;
}

static double timed_apply(struct zt_polapply *a, const struct zt_compiled *c)
{
	char err[512];
	double t0 = now_ms();

	assert_int_equal(zt_polapply_apply(a, c, NULL, err, sizeof(err)), 0);
	return now_ms() - t0;
}

static void bench_one(size_t n_rules)
{
	struct world w1, w2;
	struct zt_polapply *a;
	struct kmaps k;
	char err[512];
	double c1, full, same, change;

	bench_world(&w1);
	bench_world(&w2);
	c1 = bench_compile(&w1, n_rules, 0);
	bench_compile(&w2, n_rules, 1);
	if (!have_bpf()) {
		print_message("bench %zu rules: no bpf(2), apply not measured\n", n_rules);
		goto out;
	}
	assert_int_equal(kmaps_create(&k, 1 << 20, 1 << 16), 0);
	assert_int_equal(zt_polapply_new(&a, &k.m, err, sizeof(err)), 0);
	full = timed_apply(a, w1.c); /* slot 1, empty */
	timed_apply(a, w1.c); /* slot 0, empty */
	same = timed_apply(a, w1.c); /* slot 1 holds the same: nothing to write */
	change = timed_apply(a, w2.c); /* slot 0: every entry replaced */
	print_message("bench %zu rules: compile + apply %.1f ms; apply into an empty slot %.1f "
		      "ms, unchanged %.1f ms, every entry changed %.1f ms\n",
		      n_rules, c1 + full, full, same, change);
	zt_polapply_free(a);
	kmaps_close(&k);
out:
	world_free(&w1);
	world_free(&w2);
}

static void test_bench(void **state)
{
	(void)state;
	bench_one(1000);
	bench_one(10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_port_blocks),
		cmocka_unit_test(test_named_ports),
		cmocka_unit_test(test_ipblock_except),
		cmocka_unit_test(test_ipblock_endpoints),
		cmocka_unit_test(test_deny_baking_audit),
		cmocka_unit_test(test_default_and_host),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_eval_host),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_differential_detects),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_bench),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
