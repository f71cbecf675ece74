// SPDX-License-Identifier: GPL-2.0-only
/* Policies from traffic: the suggestion algorithm (see polsuggest.h). */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util.h"
#include "seg/policy.h"
#include "seg/polsuggest.h"

enum gkind { G_POD = 0, G_EXT, G_UNRESOLVED };

struct grp {
	char *key;
	enum gkind kind;
	const char *ns;
	const struct zt_label **lab; /* sorted by key */
	size_t nl;
	const char *cidr;
	char polname[256];
};

struct edge {
	size_t s, d; /* groups */
	uint8_t proto;
	uint16_t port;
	uint64_t count;
	const char *sname, *dname; /* of the first flow, for comments */
	bool kept;
	const char *why; /* not kept: why */
};

/* A YAML double-quoted scalar. */
static void sb_q(struct zt_sbuf *b, const char *s)
{
	zt_sbuf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			zt_sbuf_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			zt_sbuf_printf(b, "\\x%02x", c);
		else
			zt_sbuf_printf(b, "%c", c);
	}
	zt_sbuf_printf(b, "\"");
}

/* Text for a comment: one line, printable ASCII (names come from the database). */
static void sb_c(struct zt_sbuf *b, const char *s)
{
	for (size_t i = 0; s && s[i] && i < 300; i++) {
		unsigned char c = (unsigned char)s[i];

		zt_sbuf_printf(b, "%c", c >= 0x20 && c < 0x7f ? c : '?');
	}
}

static const char *proto_name(uint8_t p)
{
	return zt_pol_proto_name(p);
}

static bool proto_ok(uint8_t p)
{
	return p == IPPROTO_TCP || p == IPPROTO_UDP || p == IPPROTO_SCTP;
}

static int cmp_lab(const void *a, const void *b)
{
	return strcmp((*(const struct zt_label *const *)a)->key,
		      (*(const struct zt_label *const *)b)->key);
}

/* Finds or adds the group of an end; SIZE_MAX on ENOMEM. */
static size_t grp_of(struct grp **gs, size_t *n, const struct zt_sg_end *e)
{
	const struct zt_label **lab = NULL;
	struct zt_sbuf k = { 0 };
	struct grp *g;
	enum gkind kind = e->ns ? G_POD : e->cidr ? G_EXT : G_UNRESOLVED;

	if (kind == G_POD) {
		lab = calloc(e->n_labels + 1, sizeof(*lab));
		if (!lab)
			return SIZE_MAX;
		for (size_t i = 0; i < e->n_labels; i++)
			lab[i] = &e->labels[i];
		qsort(lab, e->n_labels, sizeof(*lab), cmp_lab);
		zt_sbuf_printf(&k, "P\x1f%s", e->ns);
		for (size_t i = 0; i < e->n_labels; i++)
			zt_sbuf_printf(&k, "\x1f%s=%s", lab[i]->key, lab[i]->value);
	} else if (kind == G_EXT) {
		zt_sbuf_printf(&k, "E\x1f%s", e->cidr);
	} else {
		zt_sbuf_printf(&k, "U\x1f%s", e->name ? e->name : "?");
	}
	if (k.oom) {
		free(lab);
		return SIZE_MAX;
	}
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*gs)[i].key, k.p)) {
			free(lab);
			free(k.p);
			return i;
		}
	g = realloc(*gs, (*n + 1) * sizeof(**gs));
	if (!g) {
		free(lab);
		free(k.p);
		return SIZE_MAX;
	}
	*gs = g;
	g[*n] = (struct grp){ .key = k.p,
			      .kind = kind,
			      .ns = e->ns,
			      .lab = lab,
			      .nl = kind == G_POD ? e->n_labels : 0,
			      .cidr = e->cidr };
	return (*n)++;
}

static int cmp_grp_idx(const void *a, const void *b, void *ctx)
{
	const struct grp *gs = ctx;

	return strcmp(gs[*(const size_t *)a].key, gs[*(const size_t *)b].key);
}

struct sort_ctx {
	const struct edge *es;
	const struct grp *gs;
};

static int cmp_edge_idx(const void *a, const void *b, void *ctx)
{
	const struct sort_ctx *sc = ctx;
	const struct edge *x = &sc->es[*(const size_t *)a], *y = &sc->es[*(const size_t *)b];
	int c = strcmp(sc->gs[x->s].key, sc->gs[y->s].key);

	if (!c)
		c = strcmp(sc->gs[x->d].key, sc->gs[y->d].key);
	if (!c)
		c = (int)x->proto - (int)y->proto;
	if (!c)
		c = (int)x->port - (int)y->port;
	return c;
}

/* A DNS-subdomain policy name from the label values. */
static void make_name(struct grp *gs, size_t ng, size_t gi)
{
	struct grp *g = &gs[gi];
	char base[200];
	size_t o = 0;

	o = (size_t)snprintf(base, sizeof(base), "suggested");
	for (size_t i = 0; i < g->nl && o + 2 < sizeof(base); i++) {
		const char *v = g->lab[i]->value;

		if (!*v)
			continue;
		base[o++] = '-';
		for (; *v && o + 1 < sizeof(base); v++) {
			char c = (char)tolower((unsigned char)*v);

			base[o++] = isalnum((unsigned char)c) ? c : '-';
		}
	}
	base[o] = '\0';
	while (o && base[o - 1] == '-')
		base[--o] = '\0';
	snprintf(g->polname, sizeof(g->polname), "%s", base);
	for (unsigned int k = 2;; k++) {
		bool clash = false;

		for (size_t j = 0; j < ng; j++)
			if (j != gi && gs[j].polname[0] && !strcmp(gs[j].ns, g->ns) &&
			    !strcmp(gs[j].polname, g->polname))
				clash = true;
		if (!clash)
			break;
		snprintf(g->polname, sizeof(g->polname), "%s-%u", base, k);
	}
}

static void sb_podsel(struct zt_sbuf *b, const struct grp *g)
{
	zt_sbuf_printf(b, "{matchLabels: {");
	for (size_t i = 0; i < g->nl; i++) {
		zt_sbuf_printf(b, "%s", i ? ", " : "");
		sb_q(b, g->lab[i]->key);
		zt_sbuf_printf(b, ": ");
		sb_q(b, g->lab[i]->value);
	}
	zt_sbuf_printf(b, "}}");
}

static void sb_peer(struct zt_sbuf *b, const struct grp *self, const struct grp *p)
{
	if (p->kind == G_EXT) {
		zt_sbuf_printf(b, "    - ipBlock: {cidr: ");
		sb_q(b, p->cidr);
		zt_sbuf_printf(b, "}\n");
		return;
	}
	if (strcmp(p->ns, self->ns)) {
		zt_sbuf_printf(
			b, "    - namespaceSelector: {matchLabels: {\"%s\": ", ZT_NS_NAME_LABEL);
		sb_q(b, p->ns);
		zt_sbuf_printf(b, "}}\n      podSelector: ");
	} else {
		zt_sbuf_printf(b, "    - podSelector: ");
	}
	sb_podsel(b, p);
	zt_sbuf_printf(b, "\n");
}

/* The ports of peer `peer` in edges es[idx[0..n)] of group g, direction dir, as YAML. */
static void sb_ports(struct zt_sbuf *b, const struct edge *es, const size_t *idx, size_t n,
		     size_t g, bool egress, size_t peer)
{
	zt_sbuf_printf(b, "    ports:\n");
	for (size_t i = 0; i < n;) {
		const struct edge *e = &es[idx[i]];
		size_t j = i + 1;
		uint16_t end;

		if ((egress ? e->s : e->d) != g || (egress ? e->d : e->s) != peer || !e->kept) {
			i++;
			continue;
		}
		end = e->port;
		/* idx is sorted by (s, d, proto, port): a run of consecutive ports is exact. */
		while (j < n) {
			const struct edge *f = &es[idx[j]];

			if (!f->kept || f->s != e->s || f->d != e->d || f->proto != e->proto ||
			    f->port != end + 1)
				break;
			end = f->port;
			j++;
		}
		if (end != e->port)
			zt_sbuf_printf(b, "    - {protocol: %s, port: %u, endPort: %u}\n",
				       proto_name(e->proto), e->port, end);
		else
			zt_sbuf_printf(b, "    - {protocol: %s, port: %u}\n", proto_name(e->proto),
				       e->port);
		i = j;
	}
}

/* The port signature of (g, peer) in a direction: peers with equal ones share a rule. */
static char *port_sig(const struct edge *es, const size_t *idx, size_t n, size_t g, bool egress,
		      size_t peer)
{
	struct zt_sbuf b = { 0 };

	zt_sbuf_printf(&b, "%s", "");
	for (size_t i = 0; i < n; i++) {
		const struct edge *e = &es[idx[i]];

		if (e->kept && (egress ? e->s : e->d) == g && (egress ? e->d : e->s) == peer)
			zt_sbuf_printf(&b, "%u:%u,", e->proto, e->port);
	}
	return b.oom ? NULL : b.p;
}

static int cmp_rank(const void *a, const void *b, void *ctx)
{
	const size_t *rank = ctx, x = rank[*(const size_t *)a], y = rank[*(const size_t *)b];

	return x < y ? -1 : x > y;
}

/*
 * One direction of group g's policy. idx (n) is every edge in key order;
 * only g's kept edges of that direction (sub) and their peers are looked
 * at, so the whole suggestion costs about groups x edges, not groups^2 x
 * edges.
 */
static void sb_direction(struct zt_sbuf *b, const struct grp *gs, const struct edge *es,
			 const size_t *idx, size_t n, size_t g, bool egress, bool audit,
			 const size_t *rank, size_t ng)
{
	size_t *sub = calloc(n + 1, sizeof(*sub)), *peers = calloc(n + 1, sizeof(*peers));
	bool *mark = calloc(ng + 1, sizeof(*mark)), *done = NULL, any = false;
	size_t nsub = 0, np = 0;
	char **sig = NULL;

	if (!sub || !peers || !mark) {
		b->oom = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct edge *e = &es[idx[i]];
		size_t p = egress ? e->d : e->s;

		if (!e->kept || (egress ? e->s : e->d) != g)
			continue;
		sub[nsub++] = idx[i];
		if (!mark[p]) {
			mark[p] = true;
			peers[np++] = p;
		}
	}
	qsort_r(peers, np, sizeof(*peers), cmp_rank, (void *)rank);
	sig = calloc(np + 1, sizeof(*sig));
	done = calloc(np + 1, sizeof(*done));
	if (!sig || !done) {
		b->oom = true;
		goto out;
	}
	for (size_t k = 0; k < np; k++) {
		sig[k] = port_sig(es, sub, nsub, g, egress, peers[k]);
		if (!sig[k]) {
			b->oom = true;
			goto out;
		}
	}
	for (size_t k = 0; k < np; k++) {
		if (!sig[k][0] || done[k])
			continue;
		if (!any)
			zt_sbuf_printf(b, "  %s:\n", egress ? "egress" : "ingress");
		any = true;
		/* Comments: every flow this rule covers and how often. */
		for (size_t k2 = k; k2 < np; k2++) {
			if (done[k2] || strcmp(sig[k2], sig[k]))
				continue;
			for (size_t i = 0; i < nsub; i++) {
				const struct edge *e = &es[sub[i]];

				if ((egress ? e->d : e->s) != peers[k2])
					continue;
				zt_sbuf_printf(b, "  # ");
				sb_c(b, e->sname);
				zt_sbuf_printf(b, " -> ");
				sb_c(b, e->dname);
				zt_sbuf_printf(b, " %u/%s: %llu flow%s\n", e->port,
					       proto_name(e->proto), (unsigned long long)e->count,
					       e->count == 1 ? "" : "s");
			}
		}
		zt_sbuf_printf(b, "  - %s%s:\n", audit ? "action: allow\n    " : "",
			       egress ? "to" : "from");
		for (size_t k2 = k; k2 < np; k2++) {
			if (done[k2] || strcmp(sig[k2], sig[k]))
				continue;
			sb_peer(b, &gs[g], &gs[peers[k2]]);
			if (k2 != k)
				done[k2] = true;
		}
		sb_ports(b, es, sub, nsub, g, egress, peers[k]);
		done[k] = true;
	}
	if (egress) {
		if (!any)
			zt_sbuf_printf(b, "  egress:\n");
		zt_sbuf_printf(
			b,
			"  # DNS: UDP and TCP 53 to kube-dns, which every pod needs\n"
			"  - %sto:\n"
			"    - namespaceSelector: {matchLabels: {\"%s\": \"kube-system\"}}\n"
			"      podSelector: {matchLabels: {\"k8s-app\": \"kube-dns\"}}\n"
			"    ports:\n    - {protocol: UDP, port: 53}\n    - {protocol: TCP, port: 53}\n",
			audit ? "action: allow\n    " : "", ZT_NS_NAME_LABEL);
	}
out:
	for (size_t k = 0; sig && k < np; k++)
		free(sig[k]);
	free(sig);
	free(done);
	free(sub);
	free(peers);
	free(mark);
}

struct fedge {
	size_t s, d, i;
	uint8_t proto;
	uint16_t port;
};

static int cmp_fedge(const void *a, const void *b)
{
	const struct fedge *x = a, *y = b;

	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	if (x->proto != y->proto)
		return (int)x->proto - (int)y->proto;
	if (x->port != y->port)
		return (int)x->port - (int)y->port;
	return x->i < y->i ? -1 : x->i > y->i;
}

int zt_suggest(const struct zt_sg_flow *flows, size_t n, const struct zt_sg_opts *o, char **yaml,
	       size_t *n_policies)
{
	struct grp *gs = NULL;
	struct edge *es = NULL;
	size_t ng = 0, ne = 0, *gorder = NULL, *eidx = NULL, *rank = NULL, npol = 0, nkept = 0,
	       nlisted = 0;
	uint64_t min = o->min_flows ? o->min_flows : 1, records = 0;
	struct zt_sbuf b = { 0 };
	int r = -ENOMEM;

	*yaml = NULL;
	*n_policies = 0;
	/* Flows into edges (group, group, protocol, port): sorted, then merged. */
	{
		struct fedge *fe = calloc(n + 1, sizeof(*fe));

		es = calloc(n + 1, sizeof(*es));
		if (!fe || !es) {
			free(fe);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			const struct zt_sg_flow *f = &flows[i];
			size_t s = grp_of(&gs, &ng, &f->src), d;

			if (s == SIZE_MAX || (d = grp_of(&gs, &ng, &f->dst)) == SIZE_MAX) {
				free(fe);
				goto out;
			}
			records += f->count;
			fe[i] = (struct fedge){
				.s = s, .d = d, .i = i, .proto = f->proto, .port = f->port
			};
		}
		qsort(fe, n, sizeof(*fe), cmp_fedge);
		for (size_t i = 0; i < n; i++) {
			const struct zt_sg_flow *f = &flows[fe[i].i];

			if (!ne || es[ne - 1].s != fe[i].s || es[ne - 1].d != fe[i].d ||
			    es[ne - 1].proto != fe[i].proto || es[ne - 1].port != fe[i].port)
				es[ne++] = (struct edge){ .s = fe[i].s,
							  .d = fe[i].d,
							  .proto = fe[i].proto,
							  .port = fe[i].port,
							  .sname = f->src.name,
							  .dname = f->dst.name };
			es[ne - 1].count += f->count;
		}
		free(fe);
	}
	/* Which flows become rules, and why the others do not. */
	for (size_t k = 0; k < ne; k++) {
		struct edge *e = &es[k];
		const struct grp *s = &gs[e->s], *d = &gs[e->d];
		bool s_in = s->kind == G_POD && (!o->only_ns || !strcmp(s->ns, o->only_ns)),
		     d_in = d->kind == G_POD && (!o->only_ns || !strcmp(d->ns, o->only_ns));

		if (!s_in && !d_in && o->only_ns)
			e->why = NULL; /* another namespace's: not this suggestion's business */
		else if (s->kind == G_UNRESOLVED || d->kind == G_UNRESOLVED)
			e->why = "an end is not resolved to labels (not an endpoint of this node)";
		else if (s->kind != G_POD && d->kind != G_POD)
			e->why = "neither end is a pod";
		else if ((s->kind == G_POD && !s->nl) || (d->kind == G_POD && !d->nl))
			e->why = "a pod without labels cannot be selected";
		else if (!proto_ok(e->proto))
			e->why = "NetworkPolicy cannot state this protocol";
		else if (!e->port)
			e->why = "no destination port";
		else if (e->count < min)
			e->why = "seen fewer than --min-flows times";
		else
			e->kept = true;
		nkept += e->kept;
		nlisted += !e->kept && e->why;
	}
	/* Deterministic order: groups and edges by key. */
	gorder = calloc(ng + 1, sizeof(*gorder));
	eidx = calloc(ne + 1, sizeof(*eidx));
	if (!gorder || !eidx)
		goto out;
	for (size_t i = 0; i < ng; i++)
		gorder[i] = i;
	for (size_t i = 0; i < ne; i++)
		eidx[i] = i;
	qsort_r(gorder, ng, sizeof(*gorder), cmp_grp_idx, gs);
	rank = calloc(ng + 1, sizeof(*rank));
	if (!rank)
		goto out;
	for (size_t i = 0; i < ng; i++)
		rank[gorder[i]] = i;
	{
		struct sort_ctx sc = { .es = es, .gs = gs };

		qsort_r(eidx, ne, sizeof(*eidx), cmp_edge_idx, &sc);
	}

	if (o->header) {
		zt_sbuf_printf(&b, "# ");
		sb_c(&b, o->header);
		zt_sbuf_printf(&b, "\n");
	}
	/* The policies: one per pod group with a kept flow in scope. */
	for (size_t k = 0; k < ng; k++) {
		size_t g = gorder[k];
		bool has = false;

		if (gs[g].kind != G_POD || (o->only_ns && strcmp(gs[g].ns, o->only_ns)))
			continue;
		for (size_t i = 0; i < ne && !has; i++)
			has = es[i].kept && (es[i].s == g || es[i].d == g);
		if (!has)
			continue;
		make_name(gs, ng, g);
		npol++;
	}
	zt_sbuf_printf(
		&b,
		"# %zu %s from %llu flow record%s: %zu distinct flow%s allowed, %zu listed below as not allowed.\n",
		npol, npol == 1 ? "policy" : "policies", (unsigned long long)records,
		records == 1 ? "" : "s", nkept, nkept == 1 ? "" : "s", nlisted);
	if (nlisted) {
		zt_sbuf_printf(
			&b, "# Not allowed (review them; add rules by hand if they are wanted):\n");
		for (size_t i = 0; i < ne; i++) {
			const struct edge *e = &es[eidx[i]];

			if (e->kept || !e->why)
				continue;
			zt_sbuf_printf(&b, "#   ");
			sb_c(&b, e->sname);
			zt_sbuf_printf(&b, " -> ");
			sb_c(&b, e->dname);
			if (proto_ok(e->proto))
				zt_sbuf_printf(&b, " %u/%s", e->port, proto_name(e->proto));
			else
				zt_sbuf_printf(&b, " %s", proto_name(e->proto));
			zt_sbuf_printf(&b, ": %llu flow%s; %s\n", (unsigned long long)e->count,
				       e->count == 1 ? "" : "s", e->why);
		}
	}
	for (size_t k = 0; k < ng; k++) {
		size_t g = gorder[k];

		if (!gs[g].polname[0])
			continue;
		zt_sbuf_printf(&b, "---\n");
		if (o->audit)
			zt_sbuf_printf(&b, "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n");
		else
			zt_sbuf_printf(&b,
				       "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n");
		zt_sbuf_printf(&b, "metadata:\n  name: %s\n  namespace: ", gs[g].polname);
		sb_q(&b, gs[g].ns);
		zt_sbuf_printf(&b, "\nspec:\n  podSelector: ");
		sb_podsel(&b, &gs[g]);
		zt_sbuf_printf(&b, "\n%s  policyTypes: [Ingress, Egress]\n",
			       o->audit ? "  mode: audit\n" : "");
		sb_direction(&b, gs, es, eidx, ne, g, false, o->audit, rank, ng);
		sb_direction(&b, gs, es, eidx, ne, g, true, o->audit, rank, ng);
	}
	if (b.oom)
		goto out;
	*yaml = b.p;
	b.p = NULL;
	*n_policies = npol;
	r = 0;
out:
	free(b.p);
	for (size_t i = 0; i < ng; i++) {
		free(gs[i].key);
		free(gs[i].lab);
	}
	free(gs);
	free(es);
	free(gorder);
	free(eidx);
	free(rank);
	return r;
}
