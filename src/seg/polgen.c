// SPDX-License-Identifier: GPL-2.0-only
/* Policies generated from namespace and pod annotations (see polgen.h). */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/util.h"
#include "records/db.h"
#include "seg/polgen.h"

#define ZT_POL_GEN_LABELS_MAX 64 /* an endpoint's labels (ZT_EP_MAX_LABELS) */

const char *zt_gen_iso_name(enum zt_gen_iso iso)
{
	switch (iso) {
	case ZT_GEN_ISO_NAMESPACE:
		return "namespace";
	case ZT_GEN_ISO_STRICT:
		return "strict";
	default:
		return "none";
	}
}

int zt_gen_iso_parse(const char *v, enum zt_gen_iso *out, char *err, size_t errlen)
{
	if (!strcmp(v, "none") || !*v)
		*out = ZT_GEN_ISO_NONE;
	else if (!strcmp(v, "namespace"))
		*out = ZT_GEN_ISO_NAMESPACE;
	else if (!strcmp(v, "strict"))
		*out = ZT_GEN_ISO_STRICT;
	else {
		zt_seterr(err, errlen, "%s: '%.64s' is not one of none, namespace, strict",
			  ZT_ANN_ISOLATION, v);
		return -EINVAL;
	}
	return 0;
}

/* ---- talks-to ---- */

static int bad(char *err, size_t errlen, size_t entry, size_t col, const char *text, size_t len,
	       const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	zt_seterr(err, errlen, "%s: entry %zu (column %zu) '%.*s': %s", ZT_ANN_TALKS_TO, entry, col,
		  (int)(len > 200 ? 200 : len), text, why);
	return -EINVAL;
}

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* "N", "N-M" or a port name, then optionally "/PROTO". */
static int parse_port(const char *s, size_t n, struct zt_gen_target *t, const char **why)
{
	const char *slash = memchr(s, '/', n);
	size_t pn = slash ? (size_t)(slash - s) : n;
	const char *dash;

	t->proto = IPPROTO_TCP;
	if (slash) {
		size_t ln = n - pn - 1;

		if (ln == 3 && !strncasecmp(slash + 1, "TCP", 3))
			t->proto = IPPROTO_TCP;
		else if (ln == 3 && !strncasecmp(slash + 1, "UDP", 3))
			t->proto = IPPROTO_UDP;
		else if (ln == 4 && !strncasecmp(slash + 1, "SCTP", 4))
			t->proto = IPPROTO_SCTP;
		else {
			*why = "the protocol after '/' must be TCP, UDP or SCTP";
			return -EINVAL;
		}
	}
	if (!pn) {
		*why = "a port is missing after ':'";
		return -EINVAL;
	}
	dash = memchr(s, '-', pn);
	if (all_digits(s, pn) || (dash && all_digits(s, (size_t)(dash - s)) &&
				  all_digits(dash + 1, pn - (size_t)(dash - s) - 1))) {
		size_t l1 = dash ? (size_t)(dash - s) : pn;
		unsigned long a, b;
		char tmp[16];

		if (l1 > 5 || (dash && pn - l1 - 1 > 5)) {
			*why = "ports are 1-65535";
			return -EINVAL;
		}
		memcpy(tmp, s, l1);
		tmp[l1] = '\0';
		a = strtoul(tmp, NULL, 10);
		b = a;
		if (dash) {
			memcpy(tmp, dash + 1, pn - l1 - 1);
			tmp[pn - l1 - 1] = '\0';
			b = strtoul(tmp, NULL, 10);
		}
		if (a < 1 || a > 65535 || b < 1 || b > 65535) {
			*why = "ports are 1-65535";
			return -EINVAL;
		}
		if (b < a) {
			*why = "a port range must not end before it starts";
			return -EINVAL;
		}
		t->port = (uint16_t)a;
		t->end_port = (uint16_t)b;
		return 0;
	}
	/* IANA service name: 1-15 of [a-z0-9-], a letter somewhere, no '-' at the ends. */
	{
		bool letter = false;

		if (pn > 15) {
			*why = "a port name has at most 15 characters";
			return -EINVAL;
		}
		for (size_t i = 0; i < pn; i++) {
			if (islower((unsigned char)s[i]))
				letter = true;
			else if (!isdigit((unsigned char)s[i]) && s[i] != '-') {
				*why = "a port is a number, a range N-M or a port name of [a-z0-9-]";
				return -EINVAL;
			}
		}
		if (!letter || s[0] == '-' || s[pn - 1] == '-' || memmem(s, pn, "--", 2)) {
			*why = "a port name needs a letter, no '-' at either end and no '--'";
			return -EINVAL;
		}
		memcpy(t->port_name, s, pn);
		t->port_name[pn] = '\0';
	}
	return 0;
}

static int parse_sel(const char *s, size_t n, struct zt_gen_target *t, const char **why)
{
	size_t i = 0;

	if (!memchr(s, '=', n)) {
		/* A bare name: the pods of that app. */
		if (n > ZT_LABEL_NAME_MAX) {
			*why = "a name has at most 63 characters";
			return -EINVAL;
		}
		snprintf(t->keys[0], sizeof(t->keys[0]), "app");
		memcpy(t->values[0], s, n);
		t->values[0][n] = '\0';
		t->n_sel = 1;
		if (zt_label_value_check(t->values[0], why) < 0)
			return -EINVAL;
		return 0;
	}
	while (i <= n) {
		const char *p = s + i, *amp = memchr(p, '&', n - i), *eq;
		size_t len = amp ? (size_t)(amp - p) : n - i;

		eq = memchr(p, '=', len);
		if (!eq) {
			*why = "a selector is K=V, several joined with '&'";
			return -EINVAL;
		}
		if (t->n_sel == ZT_GEN_MAX_SEL) {
			*why = "a selector has at most 16 labels";
			return -EINVAL;
		}
		if ((size_t)(eq - p) > ZT_LABEL_KEY_MAX ||
		    len - (size_t)(eq - p) - 1 > ZT_LABEL_NAME_MAX) {
			*why = "a label key or value is too long";
			return -EINVAL;
		}
		memcpy(t->keys[t->n_sel], p, (size_t)(eq - p));
		t->keys[t->n_sel][eq - p] = '\0';
		memcpy(t->values[t->n_sel], eq + 1, len - (size_t)(eq - p) - 1);
		t->values[t->n_sel][len - (size_t)(eq - p) - 1] = '\0';
		if (zt_label_key_check(t->keys[t->n_sel], why) < 0 ||
		    zt_label_value_check(t->values[t->n_sel], why) < 0)
			return -EINVAL;
		for (size_t k = 0; k < t->n_sel; k++)
			if (!strcmp(t->keys[k], t->keys[t->n_sel])) {
				*why = "a label key appears twice";
				return -EINVAL;
			}
		t->n_sel++;
		if (!amp)
			break;
		i += len + 1;
	}
	return 0;
}

static int parse_entry(const char *s, size_t n, struct zt_gen_target *t, const char **why)
{
	const char *colon = memchr(s, ':', n);
	size_t tn = colon ? (size_t)(colon - s) : n;

	memset(t, 0, sizeof(*t));
	if (colon) {
		if (parse_port(colon + 1, n - tn - 1, t, why) < 0)
			return -EINVAL;
	} else {
		t->any_port = true;
	}
	if (!tn) {
		*why = "the target is missing before ':'";
		return -EINVAL;
	}
	if (tn >= 3 && !strncmp(s, "ns=", 3)) {
		const char *slash = memchr(s, '/', tn);
		size_t nl = (slash ? (size_t)(slash - s) : tn) - 3;

		if (!nl || nl > ZT_DNS_LABEL_MAX) {
			*why = "ns= needs a namespace name (1-63 characters)";
			return -EINVAL;
		}
		memcpy(t->ns, s + 3, nl);
		t->ns[nl] = '\0';
		if (zt_dns_label_check(t->ns, why) < 0)
			return -EINVAL;
		if (!slash) {
			t->whole_ns = true;
			return 0;
		}
		if (slash + 1 == s + tn) {
			*why = "a selector is missing after '/'";
			return -EINVAL;
		}
		return parse_sel(slash + 1, (size_t)(s + tn - slash - 1), t, why);
	}
	if (memchr(s, '/', tn) && !memchr(s, '=', tn)) {
		*why = "a namespace is written ns=NAME/...";
		return -EINVAL;
	}
	return parse_sel(s, tn, t, why);
}

int zt_gen_talks_to_parse(const char *v, struct zt_gen_target *out, size_t max, size_t *n,
			  char *err, size_t errlen)
{
	size_t len = strlen(v), i = 0, entry = 0;

	*n = 0;
	if (len > ZT_GEN_MAX_VALUE) {
		zt_seterr(err, errlen, "%s: %zu bytes, at most %u", ZT_ANN_TALKS_TO, len,
			  ZT_GEN_MAX_VALUE);
		return -E2BIG;
	}
	while (i <= len) {
		const char *comma = memchr(v + i, ',', len - i);
		size_t end = comma ? (size_t)(comma - v) : len, a = i, b = end;
		const char *why = NULL;

		entry++;
		while (a < b && isspace((unsigned char)v[a]))
			a++;
		while (b > a && isspace((unsigned char)v[b - 1]))
			b--;
		if (a == b)
			return bad(err, errlen, entry, a + 1, "", 0,
				   "empty entry (two commas in a row, or one at an end)");
		for (size_t k = a; k < b; k++)
			if (isspace((unsigned char)v[k]) || !isprint((unsigned char)v[k]))
				return bad(err, errlen, entry, k + 1, v + a, b - a,
					   "no spaces or control characters inside an entry");
		if (*n == max) {
			zt_seterr(err, errlen, "%s: more than %zu entries", ZT_ANN_TALKS_TO, max);
			return -E2BIG;
		}
		if (parse_entry(v + a, b - a, &out[*n], &why) < 0)
			return bad(err, errlen, entry, a + 1, v + a, b - a, "%s", why);
		(*n)++;
		if (!comma)
			break;
		i = end + 1;
	}
	if (!*n) {
		zt_seterr(err, errlen, "%s: empty; give TARGET[:PORT] entries separated by ','",
			  ZT_ANN_TALKS_TO);
		return -EINVAL;
	}
	return 0;
}

int zt_gen_annotation_check(const char *key, const char *value, bool on_namespace, char *err,
			    size_t errlen)
{
	if (strncmp(key, "ztagent.io/", 11))
		return -ENOENT;
	if (!strcmp(key, ZT_ANN_ISOLATION)) {
		enum zt_gen_iso iso;

		if (!on_namespace) {
			zt_seterr(err, errlen, "%s is a namespace annotation, not a pod's",
				  ZT_ANN_ISOLATION);
			return -EINVAL;
		}
		return zt_gen_iso_parse(value, &iso, err, errlen);
	}
	if (!strcmp(key, ZT_ANN_TALKS_TO)) {
		struct zt_gen_target *t;
		size_t n;
		int r;

		if (on_namespace) {
			zt_seterr(err, errlen, "%s is a pod annotation, not a namespace's",
				  ZT_ANN_TALKS_TO);
			return -EINVAL;
		}
		t = calloc(ZT_GEN_MAX_TARGETS, sizeof(*t));
		if (!t)
			return -ENOMEM;
		r = zt_gen_talks_to_parse(value, t, ZT_GEN_MAX_TARGETS, &n, err, errlen);
		free(t);
		return r;
	}
	zt_seterr(err, errlen, "'%.80s': unknown annotation; ztagent.io/ knows %s and %s", key,
		  ZT_ANN_ISOLATION, ZT_ANN_TALKS_TO);
	return -EINVAL;
}

/* ---- generation ---- */

/* Every string we emit was checked (labels, DNS names, port names): quoting is enough. */
static void sb_str(struct zt_sbuf *b, const char *s)
{
	zt_sbuf_printf(b, "\"%s\"", s);
}

static void sb_labels(struct zt_sbuf *b, const char *const *k, const char *const *v, size_t n)
{
	zt_sbuf_printf(b, "{matchLabels: {");
	for (size_t i = 0; i < n; i++) {
		zt_sbuf_printf(b, "%s", i ? ", " : "");
		sb_str(b, k[i]);
		zt_sbuf_printf(b, ": ");
		sb_str(b, v[i]);
	}
	zt_sbuf_printf(b, "}}");
}

static void sb_pod_labels(struct zt_sbuf *b, const struct zt_label *l, size_t n)
{
	const char *k[ZT_POL_GEN_LABELS_MAX], *v[ZT_POL_GEN_LABELS_MAX];
	size_t m = 0;

	for (size_t i = 0; i < n && m < ZT_POL_GEN_LABELS_MAX; i++, m++) {
		k[m] = l[i].key;
		v[m] = l[i].value;
	}
	sb_labels(b, k, v, m);
}

static void sb_target_sel(struct zt_sbuf *b, const struct zt_gen_target *t)
{
	const char *k[ZT_GEN_MAX_SEL], *v[ZT_GEN_MAX_SEL];

	if (t->whole_ns) {
		zt_sbuf_printf(b, "{}");
		return;
	}
	for (size_t i = 0; i < t->n_sel; i++) {
		k[i] = t->keys[i];
		v[i] = t->values[i];
	}
	sb_labels(b, k, v, t->n_sel);
}

static void sb_ports(struct zt_sbuf *b, const struct zt_gen_target *t, const char *indent)
{
	static const char *const pn[] = {
		[IPPROTO_TCP] = "TCP", [IPPROTO_UDP] = "UDP", [IPPROTO_SCTP] = "SCTP"
	};

	if (t->any_port)
		return;
	zt_sbuf_printf(b, "%sports:\n%s- {protocol: %s, port: ", indent, indent, pn[t->proto]);
	if (t->port_name[0])
		zt_sbuf_printf(b, "\"%s\"}\n", t->port_name);
	else if (t->end_port != t->port)
		zt_sbuf_printf(b, "%u, endPort: %u}\n", t->port, t->end_port);
	else
		zt_sbuf_printf(b, "%u}\n", t->port);
}

static void sb_header(struct zt_sbuf *b, const char *name, const char *ns, const char *from)
{
	zt_sbuf_printf(b,
		       "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
		       "  name: \"%s\"\n  namespace: \"%s\"\n"
		       "  annotations: {\"ztagent.io/generated-from\": \"%s\"}\nspec:\n",
		       name, ns, from);
}

static enum zt_gen_iso iso_of(const struct zt_gen_ns *nss, size_t n, const char *ns)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(nss[i].name, ns))
			return nss[i].iso;
	return ZT_GEN_ISO_NONE;
}

static int cmp_ns(const void *a, const void *b)
{
	return strcmp((*(const struct zt_gen_ns *const *)a)->name,
		      (*(const struct zt_gen_ns *const *)b)->name);
}

static int cmp_pod(const void *a, const void *b)
{
	const struct zt_gen_pod *x = *(const struct zt_gen_pod *const *)a,
				*y = *(const struct zt_gen_pod *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

/*
 * A policy name from the pod's namespace and name: both are DNS names, so
 * "ztgen.NS.NAME.SUFFIX" is a DNS subdomain; a long one is cut and made
 * unique by a hash of the whole.
 */
static void gen_name(char *out, size_t n, const char *ns, const char *pod, const char *suffix)
{
	char full[600], hex[65];

	snprintf(full, sizeof(full), "ztgen.%s.%s.%s", ns, pod, suffix);
	if (strlen(full) <= ZT_DNS_SUBDOMAIN_MAX) {
		snprintf(out, n, "%s", full);
		return;
	}
	zt_sha256_hex(full, strlen(full), hex);
	snprintf(out, n, "ztgen.%.16s.%s", hex, suffix);
}

static void add_problem(char *problems, size_t plen, const struct zt_gen_pod *p, const char *why)
{
	size_t l;

	if (!problems || !plen)
		return;
	l = strnlen(problems, plen);
	if (l + 1 < plen)
		snprintf(problems + l, plen - l, "%spod %s/%s: %s", l ? "\n" : "", p->ns, p->name,
			 why);
}

static void gen_pod(struct zt_sbuf *b, const struct zt_gen_ns *nss, size_t n_ns,
		    const struct zt_gen_pod *p, const struct zt_gen_target *t, size_t nt)
{
	char name[300], from[600];
	bool caller_strict = iso_of(nss, n_ns, p->ns) == ZT_GEN_ISO_STRICT;

	snprintf(from, sizeof(from), "pod %s/%s %s", p->ns, p->name, ZT_ANN_TALKS_TO);
	if (caller_strict) {
		gen_name(name, sizeof(name), p->ns, p->name, "egress");
		sb_header(b, name, p->ns, from);
		zt_sbuf_printf(b, "  podSelector: ");
		sb_pod_labels(b, p->labels, p->n_labels);
		zt_sbuf_printf(b, "\n  policyTypes: [Egress]\n  egress:\n");
		for (size_t i = 0; i < nt; i++) {
			const char *tns = t[i].ns[0] ? t[i].ns : p->ns;

			zt_sbuf_printf(
				b,
				"  - to:\n    - namespaceSelector: {matchLabels: {\"%s\": \"%s\"}}\n",
				ZT_NS_NAME_LABEL, tns);
			zt_sbuf_printf(b, "      podSelector: ");
			sb_target_sel(b, &t[i]);
			zt_sbuf_printf(b, "\n");
			sb_ports(b, &t[i], "    ");
		}
	}
	for (size_t i = 0; i < nt; i++) {
		const char *tns = t[i].ns[0] ? t[i].ns : p->ns;
		char suffix[32];

		if (iso_of(nss, n_ns, tns) == ZT_GEN_ISO_NONE)
			continue;
		snprintf(suffix, sizeof(suffix), "ingress-%zu", i);
		gen_name(name, sizeof(name), p->ns, p->name, suffix);
		sb_header(b, name, tns, from);
		zt_sbuf_printf(b, "  podSelector: ");
		sb_target_sel(b, &t[i]);
		zt_sbuf_printf(b, "\n  policyTypes: [Ingress]\n  ingress:\n");
		zt_sbuf_printf(
			b, "  - from:\n    - namespaceSelector: {matchLabels: {\"%s\": \"%s\"}}\n",
			ZT_NS_NAME_LABEL, p->ns);
		zt_sbuf_printf(b, "      podSelector: ");
		sb_pod_labels(b, p->labels, p->n_labels);
		zt_sbuf_printf(b, "\n");
		sb_ports(b, &t[i], "    ");
	}
}

int zt_polgen(const struct zt_gen_ns *nss, size_t n_ns, const struct zt_gen_pod *pods,
	      size_t n_pods, char **yaml, char *problems, size_t plen)
{
	const struct zt_gen_ns **ns_sorted = NULL;
	const struct zt_gen_pod **pod_sorted = NULL;
	struct zt_gen_target *t = NULL;
	struct zt_sbuf b = { 0 };
	int r = -ENOMEM;

	if (problems && plen)
		problems[0] = '\0';
	ns_sorted = calloc(n_ns ? n_ns : 1, sizeof(*ns_sorted));
	pod_sorted = calloc(n_pods ? n_pods : 1, sizeof(*pod_sorted));
	t = calloc(ZT_GEN_MAX_TARGETS, sizeof(*t));
	if (!ns_sorted || !pod_sorted || !t)
		goto out;
	for (size_t i = 0; i < n_ns; i++)
		ns_sorted[i] = &nss[i];
	for (size_t i = 0; i < n_pods; i++)
		pod_sorted[i] = &pods[i];
	qsort(ns_sorted, n_ns, sizeof(*ns_sorted), cmp_ns);
	qsort(pod_sorted, n_pods, sizeof(*pod_sorted), cmp_pod);
	zt_sbuf_printf(&b, "# Generated by ztagent from ztagent.io/ annotations; do not edit.\n");
	for (size_t i = 0; i < n_ns; i++) {
		const struct zt_gen_ns *ns = ns_sorted[i];
		char from[200];

		if (ns->iso == ZT_GEN_ISO_NONE)
			continue;
		snprintf(from, sizeof(from), "namespace %s %s=%s", ns->name, ZT_ANN_ISOLATION,
			 zt_gen_iso_name(ns->iso));
		sb_header(&b, "ztgen.isolation", ns->name, from);
		if (ns->iso == ZT_GEN_ISO_NAMESPACE)
			zt_sbuf_printf(&b, "  podSelector: {}\n  policyTypes: [Ingress]\n"
					   "  ingress:\n  - from:\n    - podSelector: {}\n");
		else
			zt_sbuf_printf(&b, "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n");
	}
	for (size_t i = 0; i < n_pods; i++) {
		const struct zt_gen_pod *p = pod_sorted[i];
		char err[512];
		size_t nt;

		if (!p->talks_to || !*p->talks_to)
			continue;
		if (zt_gen_talks_to_parse(p->talks_to, t, ZT_GEN_MAX_TARGETS, &nt, err,
					  sizeof(err)) < 0) {
			add_problem(problems, plen, p, err);
			continue;
		}
		if (!p->n_labels) {
			add_problem(
				problems, plen, p,
				"ztagent.io/talks-to needs the pod to have labels (a selector names it); skipped");
			continue;
		}
		gen_pod(&b, nss, n_ns, p, t, nt);
	}
	if (b.oom)
		goto out;
	*yaml = b.p;
	b.p = NULL;
	r = 0;
out:
	free(b.p);
	free(t);
	free(ns_sorted);
	free(pod_sorted);
	return r;
}
