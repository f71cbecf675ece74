// SPDX-License-Identifier: GPL-2.0-only
/* Metrics registry, Prometheus text exposition 0.0.4, libmicrohttpd server. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "guard/datapath.h"
#include "agent/metrics.h"
#include "agent/util.h"

struct stored {
	char **values; /* n_labels strings */
	double v;
};

struct zt_metric {
	struct zt_metrics *reg;
	char *name;
	char *help;
	enum zt_metric_type type;
	char *labels[ZT_METRIC_MAX_LABELS];
	size_t n_labels;
	zt_metric_collect_fn fn; /* under reg->scrape_lock */
	void *ctx;
	struct stored *stored; /* under reg->lock */
	size_t n_stored, cap_stored;
	/* histogram, under hlock */
	pthread_mutex_t hlock;
	double bounds[ZT_METRIC_MAX_BUCKETS];
	uint64_t buckets[ZT_METRIC_MAX_BUCKETS + 1]; /* not cumulative; last is +Inf */
	size_t n_bounds;
	double sum;
	uint64_t count;
};

struct snapshot {
	zt_metrics_snapshot_fn fn;
	void *ctx;
};

struct zt_metrics {
	/* Held for a whole scrape and for registration: callbacks and the family list. */
	pthread_mutex_t scrape_lock;
	/* Held briefly: stored values. */
	pthread_mutex_t lock;
	struct zt_metric **fams; /* sorted by name */
	size_t n_fams;
	struct snapshot *snaps;
	size_t n_snaps;
	zt_metrics_probe_fn probe; /* set before the server starts */
	void *probe_ctx;
};

/* One rendered sample: its label set ("" or "{a=\"x\"}") and value text. */
struct sample {
	char *labels;
	char value[40];
	size_t seq;
};

struct zt_metric_sink {
	const struct zt_metric *f;
	struct sample *s;
	size_t n, cap;
	int err;
};

/* ---- names, escaping, numbers ---- */

static bool valid_name(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (colon && c == ':') || (p != s && c >= '0' && c <= '9');

		if (!ok)
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

/* Label values: \ -> \\, " -> \", newline -> \n. HELP: \ and newline only. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (quote && *s == '"')
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* Shortest text that reads back as v; integers without exponent up to 1e15. */
static void format_double(double v, char *buf, size_t n)
{
	if (isnan(v)) {
		snprintf(buf, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		snprintf(buf, n, "0");
		return;
	}
	if (v == trunc(v) && fabs(v) < 1e15) {
		snprintf(buf, n, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* "{a=\"x\",b=\"y\"}", or "" without labels. */
static char *render_labels(const struct zt_metric *f, const char *const *values)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m)
		return NULL;
	if (f->n_labels) {
		fputc('{', m);
		for (size_t i = 0; i < f->n_labels; i++) {
			fprintf(m, "%s%s=\"", i ? "," : "", f->labels[i]);
			put_escaped(m, values[i], true);
			fputc('"', m);
		}
		fputc('}', m);
	}
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool values_ok(const struct zt_metric *f, const char *const *values)
{
	if (f->n_labels && !values)
		return false;
	for (size_t i = 0; i < f->n_labels; i++)
		if (!values[i])
			return false;
	return true;
}

/* ---- registry ---- */

int zt_metrics_new(struct zt_metrics **out)
{
	struct zt_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->scrape_lock, NULL);
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

static void free_stored(struct stored *st, size_t n_labels)
{
	for (size_t i = 0; i < n_labels; i++)
		free(st->values[i]);
	free(st->values);
}

static void free_family(struct zt_metric *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_stored; i++)
		free_stored(&f->stored[i], f->n_labels);
	free(f->stored);
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
	pthread_mutex_destroy(&f->hlock);
	free(f->name);
	free(f->help);
	free(f);
}

void zt_metrics_free(struct zt_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_fams; i++)
		free_family(m->fams[i]);
	free(m->fams);
	free(m->snaps);
	pthread_mutex_destroy(&m->scrape_lock);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct zt_metric *new_family(const char *name, const char *help, enum zt_metric_type type,
				    const char *const *labels)
{
	struct zt_metric *f;
	size_t n = 0;

	if (!valid_name(name, true) || !help)
		return errno = EINVAL, NULL;
	if (type == ZT_METRIC_COUNTER && !ends_with(name, "_total"))
		return errno = EINVAL, NULL;
	for (; labels && labels[n]; n++) {
		if (n >= ZT_METRIC_MAX_LABELS || !valid_name(labels[n], false) ||
		    !strncmp(labels[n], "__", 2) ||
		    (type == ZT_METRIC_HISTOGRAM && !strcmp(labels[n], "le")))
			return errno = EINVAL, NULL;
		for (size_t j = 0; j < n; j++)
			if (!strcmp(labels[j], labels[n]))
				return errno = EINVAL, NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return errno = ENOMEM, NULL;
	pthread_mutex_init(&f->hlock, NULL);
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help);
	if (!f->name || !f->help)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		f->labels[i] = strdup(labels[i]);
		if (!f->labels[i])
			goto nomem;
		f->n_labels = i + 1;
	}
	return f;
nomem:
	free_family(f);
	errno = ENOMEM;
	return NULL;
}

/* Inserts f in name order; takes the locks. */
static int insert_family(struct zt_metrics *m, struct zt_metric *f)
{
	struct zt_metric **nf;
	size_t pos = 0;
	int r = 0;

	pthread_mutex_lock(&m->scrape_lock);
	pthread_mutex_lock(&m->lock);
	for (; pos < m->n_fams; pos++) {
		int c = strcmp(m->fams[pos]->name, f->name);

		if (c == 0) {
			r = -EEXIST;
			goto out;
		}
		if (c > 0)
			break;
	}
	nf = realloc(m->fams, (m->n_fams + 1) * sizeof(*nf));
	if (!nf) {
		r = -ENOMEM;
		goto out;
	}
	m->fams = nf;
	memmove(&nf[pos + 1], &nf[pos], (m->n_fams - pos) * sizeof(*nf));
	nf[pos] = f;
	m->n_fams++;
	f->reg = m;
out:
	pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&m->scrape_lock);
	return r;
}

int zt_metrics_add(struct zt_metrics *m, const char *name, const char *help,
		   enum zt_metric_type type, const char *const *labels, zt_metric_collect_fn fn,
		   void *ctx, struct zt_metric **out)
{
	struct zt_metric *f;
	int r;

	if (type != ZT_METRIC_COUNTER && type != ZT_METRIC_GAUGE)
		return -EINVAL;
	f = new_family(name, help, type, labels);
	if (!f)
		return -errno;
	f->fn = fn;
	f->ctx = ctx;
	r = insert_family(m, f);
	if (r < 0) {
		free_family(f);
		return r;
	}
	if (out)
		*out = f;
	return 0;
}

int zt_metrics_add_histogram(struct zt_metrics *m, const char *name, const char *help,
			     const double *bounds, size_t n_bounds, struct zt_metric **out)
{
	struct zt_metric *f;
	int r;

	if (n_bounds > ZT_METRIC_MAX_BUCKETS || (n_bounds && !bounds))
		return -EINVAL;
	for (size_t i = 0; i < n_bounds; i++)
		if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
	f = new_family(name, help, ZT_METRIC_HISTOGRAM, NULL);
	if (!f)
		return -errno;
	if (n_bounds)
		memcpy(f->bounds, bounds, n_bounds * sizeof(*bounds));
	f->n_bounds = n_bounds;
	r = insert_family(m, f);
	if (r < 0) {
		free_family(f);
		return r;
	}
	if (out)
		*out = f;
	return 0;
}

int zt_metrics_add_snapshot(struct zt_metrics *m, zt_metrics_snapshot_fn fn, void *ctx)
{
	struct snapshot *ns;
	int r = 0;

	if (!fn)
		return -EINVAL;
	pthread_mutex_lock(&m->scrape_lock);
	ns = realloc(m->snaps, (m->n_snaps + 1) * sizeof(*ns));
	if (ns) {
		m->snaps = ns;
		ns[m->n_snaps++] = (struct snapshot){ fn, ctx };
	} else {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&m->scrape_lock);
	return r;
}

int zt_metric_set_collect(struct zt_metric *f, zt_metric_collect_fn fn, void *ctx)
{
	if (f->type == ZT_METRIC_HISTOGRAM)
		return -EINVAL;
	pthread_mutex_lock(&f->reg->scrape_lock);
	f->fn = fn;
	f->ctx = ctx;
	pthread_mutex_unlock(&f->reg->scrape_lock);
	return 0;
}

/* The stored value for values, created at 0 if missing; under reg->lock. */
static struct stored *stored_get(struct zt_metric *f, const char *const *values)
{
	struct stored *st;

	for (size_t i = 0; i < f->n_stored; i++) {
		size_t j = 0;

		while (j < f->n_labels && !strcmp(f->stored[i].values[j], values[j]))
			j++;
		if (j == f->n_labels)
			return &f->stored[i];
	}
	if (f->n_stored == f->cap_stored) {
		size_t cap = f->cap_stored ? f->cap_stored * 2 : 4;

		st = realloc(f->stored, cap * sizeof(*st));
		if (!st)
			return NULL;
		f->stored = st;
		f->cap_stored = cap;
	}
	st = &f->stored[f->n_stored];
	st->v = 0;
	st->values = calloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
	if (!st->values)
		return NULL;
	for (size_t j = 0; j < f->n_labels; j++) {
		st->values[j] = strdup(values[j]);
		if (!st->values[j]) {
			free_stored(st, j);
			return NULL;
		}
	}
	f->n_stored++;
	return st;
}

static int stored_update(struct zt_metric *f, const char *const *values, double v, bool add)
{
	struct stored *st;
	int r = 0;

	if (f->type == ZT_METRIC_HISTOGRAM || !values_ok(f, values))
		return -EINVAL;
	if (add && f->type == ZT_METRIC_COUNTER && !(v >= 0))
		return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	st = stored_get(f, values);
	if (!st)
		r = -ENOMEM;
	else if (add)
		st->v += v;
	else
		st->v = v;
	pthread_mutex_unlock(&f->reg->lock);
	return r;
}

int zt_metric_set(struct zt_metric *f, const char *const *values, double v)
{
	return stored_update(f, values, v, false);
}

int zt_metric_add(struct zt_metric *f, const char *const *values, double delta)
{
	return stored_update(f, values, delta, true);
}

void zt_metric_observe(struct zt_metric *h, double v)
{
	size_t i = 0;

	if (h->type != ZT_METRIC_HISTOGRAM || isnan(v))
		return;
	while (i < h->n_bounds && v > h->bounds[i])
		i++;
	pthread_mutex_lock(&h->hlock);
	h->buckets[i]++;
	h->sum += v;
	h->count++;
	pthread_mutex_unlock(&h->hlock);
}

/* ---- collection and rendering ---- */

static int sink_push(struct zt_metric_sink *s, char *labels, const char *value)
{
	if (!labels) {
		s->err = -ENOMEM;
		return -ENOMEM;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct sample *ns = realloc(s->s, cap * sizeof(*ns));

		if (!ns) {
			free(labels);
			s->err = -ENOMEM;
			return -ENOMEM;
		}
		s->s = ns;
		s->cap = cap;
	}
	s->s[s->n].labels = labels;
	snprintf(s->s[s->n].value, sizeof(s->s[s->n].value), "%s", value);
	s->s[s->n].seq = s->n;
	s->n++;
	return 0;
}

int zt_metric_emit(struct zt_metric_sink *s, const char *const *values, double v)
{
	char buf[40];

	if (!values_ok(s->f, values))
		return -EINVAL;
	format_double(v, buf, sizeof(buf));
	return sink_push(s, render_labels(s->f, values), buf);
}

int zt_metric_emit_u64(struct zt_metric_sink *s, const char *const *values, uint64_t v)
{
	char buf[40];

	if (!values_ok(s->f, values))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return sink_push(s, render_labels(s->f, values), buf);
}

static int cmp_sample(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	int c = strcmp(x->labels, y->labels);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void sink_reset(struct zt_metric_sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->s[i].labels);
	s->n = 0;
	s->err = 0;
}

static void put_header(FILE *out, const struct zt_metric *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	fprintf(out, "# HELP %s ", f->name);
	put_escaped(out, f->help, false);
	fprintf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
}

static int render_histogram(FILE *out, struct zt_metric *f)
{
	uint64_t b[ZT_METRIC_MAX_BUCKETS + 1], count, cum = 0;
	char le[40], v[40];
	double sum;

	pthread_mutex_lock(&f->hlock);
	memcpy(b, f->buckets, sizeof(b));
	sum = f->sum;
	count = f->count;
	pthread_mutex_unlock(&f->hlock);
	put_header(out, f);
	for (size_t i = 0; i <= f->n_bounds; i++) {
		cum += b[i];
		if (i < f->n_bounds)
			format_double(f->bounds[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		fprintf(out, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", f->name, le, cum);
	}
	format_double(sum, v, sizeof(v));
	fprintf(out, "%s_sum %s\n%s_count %" PRIu64 "\n", f->name, v, f->name, count);
	return 0;
}

static int render_family(FILE *out, struct zt_metric *f, struct zt_metric_sink *s)
{
	char buf[40];

	if (f->type == ZT_METRIC_HISTOGRAM)
		return render_histogram(out, f);
	sink_reset(s);
	s->f = f;
	if (f->fn)
		f->fn(f->ctx, s);
	pthread_mutex_lock(&f->reg->lock);
	for (size_t i = 0; i < f->n_stored && !s->err; i++) {
		format_double(f->stored[i].v, buf, sizeof(buf));
		sink_push(s, render_labels(f, (const char *const *)f->stored[i].values), buf);
	}
	pthread_mutex_unlock(&f->reg->lock);
	if (s->err)
		return s->err;
	if (!s->n)
		return 0; /* no samples: leave the family out */
	qsort(s->s, s->n, sizeof(*s->s), cmp_sample);
	put_header(out, f);
	for (size_t i = 0; i < s->n; i++) {
		if (i && !strcmp(s->s[i].labels, s->s[i - 1].labels))
			continue; /* the same series twice: keep the first */
		fprintf(out, "%s%s %s\n", f->name, s->s[i].labels, s->s[i].value);
	}
	return 0;
}

int zt_metrics_render(struct zt_metrics *m, char **text, size_t *len)
{
	struct zt_metric_sink sink = {};
	char *buf = NULL;
	size_t n = 0;
	FILE *out;
	int r = 0;

	*text = NULL;
	*len = 0;
	out = open_memstream(&buf, &n);
	if (!out)
		return -ENOMEM;
	pthread_mutex_lock(&m->scrape_lock);
	for (size_t i = 0; i < m->n_snaps; i++)
		m->snaps[i].fn(m->snaps[i].ctx);
	for (size_t i = 0; i < m->n_fams && !r; i++)
		r = render_family(out, m->fams[i], &sink);
	pthread_mutex_unlock(&m->scrape_lock);
	sink_reset(&sink);
	free(sink.s);
	if (fclose(out) != 0 && !r)
		r = -ENOMEM;
	if (r) {
		free(buf);
		return r;
	}
	*text = buf;
	*len = n;
	return 0;
}

/* ---- ztagent's families ---- */

int zt_metrics_register_std(struct zt_metrics *m, const char *version, struct zt_metrics_std *o)
{
	static const double apply[] = ZT_METRICS_APPLY_BUCKETS;
	static const char *const action_reason[] = { "action", "reason", NULL };
	static const char *const verdict[] = { "verdict", NULL };
	static const char *const family[] = { "family", NULL };
	static const char *const version_l[] = { "version", NULL };
	const struct {
		struct zt_metric **f;
		const char *name;
		enum zt_metric_type type;
		const char *const *labels;
		const char *help;
	} t[] = {
		{ &o->xdp_packets, "ztagent_xdp_packets_total", ZT_METRIC_COUNTER, action_reason,
		  "Packets the XDP guard handled on the uplinks, by the action it took (pass, drop) and why (reason)." },
		{ &o->xdp_bytes, "ztagent_xdp_bytes_total", ZT_METRIC_COUNTER, action_reason,
		  "Bytes (whole frames, link header included) the XDP guard handled on the uplinks, by action and reason." },
		{ &o->tc_packets, "ztagent_tc_packets_total", ZT_METRIC_COUNTER, verdict,
		  "Packets the TC program saw on endpoint interfaces, once per interface a packet crosses, by outcome: allowed-new, allowed-established, audit, denied-new, denied-established (policy), not-ip, malformed, no-endpoint, blocked (a flow from or to a blocklisted address)." },
		{ &o->tc_bytes, "ztagent_tc_bytes_total", ZT_METRIC_COUNTER, verdict,
		  "Bytes of the packets in ztagent_tc_packets_total, by outcome: IP bytes (no link header) for the policy outcomes and blocked, whole frames for not-ip, malformed and no-endpoint." },
		{ &o->tc_flow_verdicts, "ztagent_tc_flow_verdicts_total", ZT_METRIC_COUNTER,
		  verdict,
		  "Policy verdicts the TC program reported and the agent read, by verdict (allowed, denied, audit): one per new flow on each endpoint interface it crosses, and one per flow whose verdict a policy change changed. Verdicts lost to a full ring buffer are in ztagent_ringbuf_lost_events_total." },
		{ &o->policy_denials, "ztagent_policy_denials_total", ZT_METRIC_COUNTER, NULL,
		  "Denied verdicts among ztagent_tc_flow_verdicts_total: new flows denied on an endpoint interface, and flows a policy change revoked." },
		{ &o->blocklist_entries, "ztagent_blocklist_entries", ZT_METRIC_GAUGE, family,
		  "Entries in the XDP blocklist (hash maps and LPM trie), by address family; refreshed every xdp.expiry_interval." },
		{ &o->ringbuf_lost, "ztagent_ringbuf_lost_events_total", ZT_METRIC_COUNTER, NULL,
		  "Events (XDP drop samples, TC flow verdicts) the kernel could not write because the ring buffer was full." },
		{ &o->db_flow_rows_written, "ztagent_db_flow_rows_written_total", ZT_METRIC_COUNTER,
		  NULL,
		  "Rows inserted into network_flows (flow records and XDP drop aggregates); a replayed row already there is not counted." },
		{ &o->db_flow_rows_refused, "ztagent_db_flow_rows_refused_total", ZT_METRIC_COUNTER,
		  NULL,
		  "Flow rows PostgreSQL refused; they are kept in the spool directory as rejected-*.zsp." },
		{ &o->spool_bytes, "ztagent_spool_bytes", ZT_METRIC_GAUGE, NULL,
		  "Bytes of flow records in the on-disk spool, waiting for the database." },
		{ &o->spool_dropped, "ztagent_spool_dropped_records_total", ZT_METRIC_COUNTER, NULL,
		  "Flow records lost because the spool was full or could not be written while the database was away." },
		{ &o->audit_written, "ztagent_audit_events_written_total", ZT_METRIC_COUNTER, NULL,
		  "Audit events committed to audit_log (a bulk block change is one event for up to 8192 CIDRs)." },
		{ &o->audit_dropped, "ztagent_audit_events_dropped_total", ZT_METRIC_COUNTER, NULL,
		  "Audit events dropped because the audit journal was full or could not be written." },
		{ &o->audit_pending, "ztagent_audit_events_pending", ZT_METRIC_GAUGE, NULL,
		  "Audit events in the journal, not yet committed to the database." },
		{ &o->build_info, "ztagent_build_info", ZT_METRIC_GAUGE, version_l,
		  "Always 1; the version label is the agent's version." },
	};
	int r;

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < ZT_ARRAY_SIZE(t); i++) {
		r = zt_metrics_add(m, t[i].name, t[i].help, t[i].type, t[i].labels, NULL, NULL,
				   t[i].f);
		if (r < 0)
			return r;
	}
	r = zt_metrics_add_histogram(
		m, "ztagent_policy_apply_seconds",
		"Time to compile the policies for the current endpoints and apply them to the kernel maps, each time they are applied (policy change, endpoint added or removed, host address change); parsing not included.",
		apply, ZT_ARRAY_SIZE(apply), &o->policy_apply);
	if (r < 0)
		return r;
	return zt_metric_set(o->build_info, (const char *const[]){ version }, 1);
}

int zt_metrics_emit_xdp(struct zt_metric_sink *s, const struct zt_counter *c, bool bytes)
{
	for (unsigned int a = 0; a < ZT_ACT_MAX; a++) {
		for (unsigned int x = 0; x < ZT_XR_MAX; x++) {
			const struct zt_counter *k = &c[a * ZT_XR_MAX + x];
			const char *v[] = { zt_action_name(a), zt_xdp_reason_name(x) };
			int r = zt_metric_emit_u64(s, v, bytes ? k->bytes : k->packets);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- HTTP ---- */

void zt_metrics_set_probe(struct zt_metrics *m, zt_metrics_probe_fn fn, void *ctx)
{
	m->probe = fn;
	m->probe_ctx = ctx;
}

struct zt_metrics_server {
	struct zt_metrics *m;
	struct MHD_Daemon *d;
	uint16_t port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct zt_metrics_server *s = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text;
	size_t len;

	if (s->m->probe &&
	    (!strcmp(url, "/healthz") || !strcmp(url, "/livez") || !strcmp(url, "/readyz"))) {
		char msg[512];
		unsigned int st = s->m->probe(s->m->probe_ctx, url, msg, sizeof(msg));

		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
		r = MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; charset=utf-8");
		ret = MHD_queue_response(c, st, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found; metrics are at /metrics\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (zt_metrics_render(s->m, &text, &len) < 0)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* zt_listen_parse, plus port 0 (any free port). */
static int parse_listen(const char *addr, struct sockaddr_storage *ss)
{
	char tmp[ZT_LISTEN_MAX + 2];
	size_t n = strlen(addr);

	if (n > 2 && n < ZT_LISTEN_MAX && !strcmp(addr + n - 2, ":0")) {
		snprintf(tmp, sizeof(tmp), "%.*s:1", (int)(n - 2), addr);
		if (zt_listen_parse(tmp, ss) < 0)
			return -EINVAL;
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = 0;
		else
			((struct sockaddr_in6 *)ss)->sin6_port = 0;
		return 0;
	}
	return zt_listen_parse(addr, ss);
}

int zt_metrics_server_start(struct zt_metrics *m, const char *addr, struct zt_metrics_server **out,
			    char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zt_metrics_server *s;
	int fd, one = 1, r;

	*out = NULL;
	if (!addr || !*addr)
		return 0;
	if (parse_listen(addr, &ss) < 0) {
		zt_seterr(err, errlen,
			  "metrics.listen '%s': expected ADDR:PORT or [ADDR6]:PORT with a numeric "
			  "address",
			  addr);
		return -EINVAL;
	}
	sl = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "metrics.listen %s: cannot create a socket: %s", addr,
			  strerror(-r));
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "metrics.listen %s: cannot bind: %s", addr, strerror(-r));
		goto fail_fd;
	}
	if (listen(fd, 16) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "metrics.listen %s: cannot listen: %s", addr, strerror(-r));
		goto fail_fd;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		r = -ENOMEM;
		zt_seterr(err, errlen, "metrics.listen %s: out of memory", addr);
		goto fail_fd;
	}
	s->m = m;
	s->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
						  ((struct sockaddr_in6 *)&ss)->sin6_port);
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, 32U, MHD_OPTION_CONNECTION_TIMEOUT,
				10U, MHD_OPTION_END);
	if (!s->d) {
		r = -EIO;
		zt_seterr(err, errlen, "metrics.listen %s: cannot start the HTTP server", addr);
		free(s);
		goto fail_fd;
	}
	*out = s;
	return 0;
fail_fd:
	close(fd);
	return r;
}

uint16_t zt_metrics_server_port(const struct zt_metrics_server *s)
{
	return s ? s->port : 0;
}

void zt_metrics_server_stop(struct zt_metrics_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d); /* closes the listening socket */
	free(s);
}
