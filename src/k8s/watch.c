// SPDX-License-Identifier: GPL-2.0-only
/*
 * One watch: a worker thread doing LIST then WATCH over libcurl (a multi
 * handle with one transfer, so stop can wake it at once), a bounded queue
 * of reduced objects to the caller's thread, and the caller's cache.
 *
 * Threads: the worker owns the curl handles, the stream parser, the
 * resourceVersion it resumes from and its failure count. Under mu: the
 * queue and the stats. The cache, the list generation and the handlers are
 * the caller's (zt_k8s_watch_dispatch) alone.
 *
 * A relist is a generation: RELIST opens it, every ITEM (or KEEP, for an
 * item that did not decode and so keeps its last good state) marks its
 * object with it, SYNCED closes it by deleting what was not marked. A
 * relist cut short (an expired continue token) simply opens the next one.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "k8s/k8s_int.h"

#define NS_MS 1000000ULL
#define NS_S 1000000000ULL
#define ERR_BODY_MAX 4096 /* of a non-200 answer, for the message */
#define QUICK_NS NS_S /* a watch that ends sooner with nothing in it counts as a failure */

enum qtype {
	Q_RELIST, /* a list starts: next generation */
	Q_ITEM, /* obj, from a list */
	Q_KEEP, /* key: a list item that did not decode keeps its last good state */
	Q_SYNCED, /* rv: the list is complete */
	Q_ADDED, /* obj */
	Q_MODIFIED, /* obj */
	Q_DELETED, /* obj, or key alone when the object did not decode */
	Q_ERROR, /* err, msg */
};

struct qev {
	struct qev *next;
	enum qtype type;
	struct zt_k8s_object *obj;
	char *key; /* "namespace/name" when obj is NULL */
	char rv[64];
	struct zt_k8s_error err;
	char msg[512];
};

struct centry {
	struct centry *next;
	char *key;
	uint32_t hash;
	uint64_t gen;
	struct zt_k8s_object *obj;
};

struct cache {
	struct centry **b;
	size_t nb, n;
};

/* One HTTP transfer's state, on the worker. */
struct xfer {
	struct zt_k8s_watch *w;
	bool streaming; /* a WATCH */
	long status;
	char *body; /* LIST page, or the start of an error answer */
	size_t len, cap, max;
	int abort; /* why a callback stopped the transfer (-errno, or GONE) */
	char msg[512];
	size_t events;
	long err_code; /* an ERROR event's Status */
};

#define GONE 1 /* xfer.abort: 410, list again */

struct zt_k8s_watch {
	struct zt_k8s_client *c;
	enum zt_k8s_kind kind;
	char *field_selector, *label_selector;
	const struct zt_k8s_handlers *h;
	void *ctx;
	unsigned int page_limit, watch_timeout_s, queue_max, dispatch_batch;
	uint64_t backoff_min_ns, backoff_max_ns, connect_timeout_ns;
	size_t max_object_bytes, max_page_bytes;

	int efd;
	pthread_t thr;
	bool started;
	bool curl_inited;
	atomic_bool stopping;
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct qev *head, *tail; /* under mu */
	unsigned int qlen; /* under mu */
	struct zt_k8s_watch_stats st; /* under mu */

	/* worker only */
	CURLM *multi;
	CURL *easy;
	char curl_err[CURL_ERROR_SIZE];
	struct zt_k8s_stream stream;
	uint64_t rng;
	char rv[64];
	unsigned int limit;
	unsigned int failures;

	/* caller only */
	struct cache cache;
	uint64_t gen;
	bool synced;
	bool had_sync;
};

/* ---- small things ------------------------------------------------------ */

static void kick(int fd)
{
	uint64_t one = 1;

	/* Fails only when the counter would overflow: readable then anyway. */
	if (write(fd, &one, sizeof(one)) < 0) {
	}
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
	}
}

/* xorshift64*: jitter only. */
static uint64_t rnd(struct zt_k8s_watch *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ULL;
}

static char *key_of(const char *ns, const char *name)
{
	char *k = NULL;

	if (asprintf(&k, "%s/%s", ns ? ns : "", name) < 0)
		return NULL;
	return k;
}

static void qev_free(struct qev *e)
{
	if (!e)
		return;
	zt_k8s_object_free(e->obj);
	free(e->key);
	free(e);
}

/* ---- the queue --------------------------------------------------------- */

/*
 * Appends e (owned from here on). wait: block for room (list items and
 * markers); otherwise a full queue refuses it (-ENOBUFS, e freed).
 * -ECANCELED when stopping.
 */
static int push(struct zt_k8s_watch *w, struct qev *e, bool wait)
{
	int r = 0;

	pthread_mutex_lock(&w->mu);
	while (w->qlen >= w->queue_max && wait && !atomic_load(&w->stopping))
		pthread_cond_wait(&w->room, &w->mu);
	if (atomic_load(&w->stopping))
		r = -ECANCELED;
	else if (w->qlen >= w->queue_max)
		r = -ENOBUFS;
	if (r == 0) {
		e->next = NULL;
		if (w->tail)
			w->tail->next = e;
		else
			w->head = e;
		w->tail = e;
		if (w->qlen++ == 0)
			kick(w->efd);
	}
	pthread_mutex_unlock(&w->mu);
	if (r)
		qev_free(e);
	return r;
}

static int push_marker(struct zt_k8s_watch *w, enum qtype t, const char *rv)
{
	struct qev *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->type = t;
	if (rv)
		snprintf(e->rv, sizeof(e->rv), "%s", rv);
	return push(w, e, true);
}

static int push_obj(struct zt_k8s_watch *w, enum qtype t, struct zt_k8s_object *obj, char *key,
		    bool wait)
{
	struct qev *e = calloc(1, sizeof(*e));

	if (!e) {
		zt_k8s_object_free(obj);
		free(key);
		return -ENOMEM;
	}
	e->type = t;
	e->obj = obj;
	e->key = key;
	return push(w, e, wait);
}

/* Waits until the caller has drained the queue to half (after an overflow). */
static void wait_half(struct zt_k8s_watch *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->qlen > w->queue_max / 2 && !atomic_load(&w->stopping))
		pthread_cond_wait(&w->room, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* ---- stats ------------------------------------------------------------- */

#define STAT_ADD(w, field, v)                   \
	do {                                    \
		pthread_mutex_lock(&(w)->mu);   \
		(w)->st.field += (v);           \
		pthread_mutex_unlock(&(w)->mu); \
	} while (0)

static void set_rv(struct zt_k8s_watch *w, const char *rv)
{
	if (rv != w->rv)
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
	pthread_mutex_lock(&w->mu);
	snprintf(w->st.resource_version, sizeof(w->st.resource_version), "%s", rv);
	pthread_mutex_unlock(&w->mu);
}

void zt_k8s_watch_get_stats(struct zt_k8s_watch *w, struct zt_k8s_watch_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->st;
	pthread_mutex_unlock(&w->mu);
}

/* ---- errors and backoff ------------------------------------------------ */

static uint64_t backoff(struct zt_k8s_watch *w)
{
	uint64_t d = w->backoff_min_ns;

	for (unsigned int i = 1; i < w->failures && d < w->backoff_max_ns; i++)
		d *= 2;
	if (d > w->backoff_max_ns)
		d = w->backoff_max_ns;
	/* Drawn in [d/2, d], so a DaemonSet's agents do not come back in step. */
	return d / 2 + rnd(w) % (d / 2 + 1);
}

/*
 * Tells the caller (best effort: a full queue drops the notice) and
 * returns how long to wait before the next attempt. failure: counts
 * towards the backoff; a routine relist (410 after a working watch) does not.
 */
static uint64_t report_ex(struct zt_k8s_watch *w, enum zt_k8s_op op, int err, long status,
			  bool failure, bool relist, const char *msg, bool wait)
{
	struct qev *e = calloc(1, sizeof(*e));
	uint64_t delay = 0;

	if (failure) {
		w->failures++;
		delay = backoff(w);
		STAT_ADD(w, errors, 1);
	}
	if (!e)
		return delay;
	e->type = Q_ERROR;
	e->err.kind = w->kind;
	e->err.op = op;
	e->err.err = err;
	e->err.http_status = status;
	e->err.failures = w->failures;
	e->err.retry_in_ns = delay;
	e->err.relist = relist;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	push(w, e, wait);
	return delay;
}

/*
 * Between requests the worker has nothing else to do: it waits for room, so
 * the caller hears of every failure (an overflow's notice included, sent
 * once the queue has drained to half).
 */
static uint64_t report(struct zt_k8s_watch *w, enum zt_k8s_op op, int err, long status,
		       bool failure, bool relist, const char *msg)
{
	return report_ex(w, op, err, status, failure, relist, msg, true);
}

/* Sleeps ns, or less when stopping. */
static void nap(struct zt_k8s_watch *w, uint64_t ns)
{
	uint64_t end = zt_now_mono_ns() + ns;

	while (!atomic_load(&w->stopping)) {
		uint64_t now = zt_now_mono_ns(), left;

		if (now >= end)
			break;
		left = (end - now) / NS_MS + 1;
		curl_multi_poll(w->multi, NULL, 0, left > 1000 ? 1000 : (int)left, NULL);
	}
}

/* ---- HTTP -------------------------------------------------------------- */

static int append(struct xfer *x, const char *p, size_t n)
{
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 16384;
		char *b;

		while (cap < x->len + n + 1)
			cap *= 2;
		b = realloc(x->body, cap);
		if (!b)
			return -ENOMEM;
		x->body = b;
		x->cap = cap;
	}
	memcpy(x->body + x->len, p, n);
	x->len += n;
	x->body[x->len] = '\0';
	return 0;
}

static int on_event(void *ctx, json_object *ev);

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct zt_k8s_watch *w = x->w;
	size_t n = size * nmemb;
	int r;

	if (!x->status) {
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &x->status);
		if (x->status == 200 && x->streaming)
			STAT_ADD(w, watches, 1);
	}
	if (atomic_load(&w->stopping)) {
		x->abort = -ECANCELED;
		return 0;
	}
	if (x->status == 200 && x->streaming) {
		r = zt_k8s_stream_feed(&w->stream, p, n, on_event, x);
		if (r) {
			if (!x->abort)
				x->abort = r;
			if (r == -EFBIG)
				snprintf(x->msg, sizeof(x->msg),
					 "an event larger than %zu bytes (max_object_bytes)",
					 w->max_object_bytes);
			else if (r == -EPROTO && !x->msg[0])
				snprintf(x->msg, sizeof(x->msg),
					 "the event stream is not a sequence of JSON objects");
			return 0;
		}
		return n;
	}
	if (x->status != 200) {
		/* An error's body (a Status) only for the message: keep its start. */
		if (x->len < ERR_BODY_MAX)
			append(x, p, n < ERR_BODY_MAX - x->len ? n : ERR_BODY_MAX - x->len);
		return n;
	}
	if (x->len + n > x->max) {
		x->abort = -EFBIG;
		return 0;
	}
	if (append(x, p, n) < 0) {
		x->abort = -ENOMEM;
		return 0;
	}
	return n;
}

static struct curl_slist *auth_headers(struct zt_k8s_watch *w, char *msg, size_t msglen, int *rc)
{
	const struct zt_k8s_conncfg *cfg = &w->c->cfg;
	struct curl_slist *h = NULL, *t;
	char *tok = NULL, *line = NULL;

	*rc = 0;
	h = curl_slist_append(NULL, "Accept: application/json");
	if (!h)
		goto nomem;
	if (cfg->token_file) {
		/* Read again every time: the kubelet rotates projected tokens. */
		*rc = zt_k8s_read_token(cfg->token_file, &tok, msg, msglen);
		if (*rc)
			goto fail;
	}
	if (tok || cfg->token) {
		if (asprintf(&line, "Authorization: Bearer %s", tok ? tok : cfg->token) < 0) {
			line = NULL;
			goto nomem;
		}
		t = curl_slist_append(h, line);
		if (!t)
			goto nomem;
		h = t;
	}
	goto out;
nomem:
	*rc = -ENOMEM;
	snprintf(msg, msglen, "out of memory");
fail:
	curl_slist_free_all(h);
	h = NULL;
out:
	if (line) {
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	return h;
}

static void set_blob(CURL *e, CURLoption opt, const struct zt_k8s_blob *b)
{
	struct curl_blob blob = { .data = b->data, .len = b->len, .flags = CURL_BLOB_COPY };

	curl_easy_setopt(e, opt, &blob);
}

static int easy_setup(struct zt_k8s_watch *w)
{
	const struct zt_k8s_conncfg *cfg = &w->c->cfg;
	CURL *e = curl_easy_init();

	if (!e)
		return -ENOMEM;
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->curl_err);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(w->connect_timeout_ns / NS_MS));
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "ztagent/0.1 (k8s watch)");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	if (cfg->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	} else if (cfg->ca_data.data) {
		set_blob(e, CURLOPT_CAINFO_BLOB, &cfg->ca_data);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
	if (cfg->cert_file)
		curl_easy_setopt(e, CURLOPT_SSLCERT, cfg->cert_file);
	else if (cfg->cert_data.data)
		set_blob(e, CURLOPT_SSLCERT_BLOB, &cfg->cert_data);
	if (cfg->cert_file || cfg->cert_data.data)
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	if (cfg->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, cfg->key_file);
	else if (cfg->key_data.data)
		set_blob(e, CURLOPT_SSLKEY_BLOB, &cfg->key_data);
	w->easy = e;
	return 0;
}

/*
 * One GET. 0 when an HTTP answer came (x->status; the body in x), -errno
 * for a transport failure or a callback's abort (x->abort, x->msg).
 */
static int perform(struct zt_k8s_watch *w, const char *url, struct xfer *x, long timeout_s)
{
	struct curl_slist *hdrs;
	CURLcode cc = CURLE_OK;
	CURLMsg *m;
	int rc, left, running = 1;

	hdrs = auth_headers(w, x->msg, sizeof(x->msg), &rc);
	if (!hdrs)
		return rc ? rc : -ENOMEM;
	w->curl_err[0] = '\0';
	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(w->easy, CURLOPT_TIMEOUT, timeout_s);
	if (curl_multi_add_handle(w->multi, w->easy) != CURLM_OK) {
		curl_slist_free_all(hdrs);
		snprintf(x->msg, sizeof(x->msg), "curl_multi_add_handle failed");
		return -ENOMEM;
	}
	while (running) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (!running || atomic_load(&w->stopping))
			break;
		curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
	}
	while ((m = curl_multi_info_read(w->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			cc = m->data.result;
	if (!x->status)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &x->status);
	curl_multi_remove_handle(w->multi, w->easy);
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (atomic_load(&w->stopping))
		return -ECANCELED;
	if (x->abort)
		return x->abort;
	if (running) {
		snprintf(x->msg, sizeof(x->msg), "curl_multi_perform failed");
		return -EIO;
	}
	if (cc != CURLE_OK) {
		snprintf(x->msg, sizeof(x->msg), "%s",
			 w->curl_err[0] ? w->curl_err : curl_easy_strerror(cc));
		return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	return 0;
}

/* "401 Unauthorized: <the Status's message>" from a non-200 answer. */
static void status_msg(const struct xfer *x, char *buf, size_t n)
{
	json_object *o = NULL, *v;
	const char *what = "";

	if (x->body && x->len)
		o = json_tokener_parse(x->body);
	if (o && json_object_object_get_ex(o, "message", &v) &&
	    json_object_is_type(v, json_type_string))
		what = json_object_get_string(v);
	snprintf(buf, n, "HTTP %ld%s%.300s", x->status, what[0] ? ": " : "", what);
	json_object_put(o);
}

static int status_err(long status)
{
	switch (status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 410:
		return -ESTALE;
	case 429:
		return -EAGAIN;
	default:
		return -EPROTO;
	}
}

/* Builds the URL of a LIST page or a WATCH. */
static char *make_url(struct zt_k8s_watch *w, bool watch, const char *cont, unsigned int timeout_s)
{
	const struct zt_k8s_resource *res = zt_k8s_resource(w->kind);
	char *url = NULL, *fs = NULL, *ls = NULL, *ct = NULL, *rv = NULL;
	int n;

	if (w->field_selector)
		fs = curl_easy_escape(w->easy, w->field_selector, 0);
	if (w->label_selector)
		ls = curl_easy_escape(w->easy, w->label_selector, 0);
	if (cont && cont[0])
		ct = curl_easy_escape(w->easy, cont, 0);
	if (watch)
		rv = curl_easy_escape(w->easy, w->rv, 0);
	if ((w->field_selector && !fs) || (w->label_selector && !ls) || (cont && cont[0] && !ct) ||
	    (watch && !rv))
		goto out;
	if (watch)
		n = asprintf(&url,
			     "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true"
			     "&timeoutSeconds=%u%s%s%s%s",
			     w->c->cfg.server, res->path, rv, timeout_s,
			     fs ? "&fieldSelector=" : "", fs ? fs : "", ls ? "&labelSelector=" : "",
			     ls ? ls : "");
	else
		n = asprintf(&url, "%s%s?limit=%u%s%s%s%s%s%s", w->c->cfg.server, res->path,
			     w->limit, ct ? "&continue=" : "", ct ? ct : "",
			     fs ? "&fieldSelector=" : "", fs ? fs : "", ls ? "&labelSelector=" : "",
			     ls ? ls : "");
	if (n < 0)
		url = NULL;
out:
	curl_free(fs);
	curl_free(ls);
	curl_free(ct);
	curl_free(rv);
	return url;
}

/* ---- LIST -------------------------------------------------------------- */

static void bad_object(struct zt_k8s_watch *w, enum zt_k8s_op op, const char *what, const char *why)
{
	char msg[512];

	STAT_ADD(w, bad_objects, 1);
	snprintf(msg, sizeof(msg), "%s %s: %s; it keeps its last good state",
		 zt_k8s_kind_name(w->kind), what, why);
	/* Inside a transfer: a full queue drops the notice (the counter stays). */
	report_ex(w, op, -EINVAL, 200, false, false, msg, op == ZT_K8S_OP_LIST);
}

/* "namespace/name" of a raw object, for one that did not decode; NULL if unreadable. */
static char *raw_key(json_object *o, char *what, size_t n)
{
	json_object *meta, *ns = NULL, *name;

	snprintf(what, n, "(unnamed)");
	if (!json_object_object_get_ex(o, "metadata", &meta) ||
	    !json_object_object_get_ex(meta, "name", &name) ||
	    !json_object_is_type(name, json_type_string))
		return NULL;
	json_object_object_get_ex(meta, "namespace", &ns);
	if (ns && !json_object_is_type(ns, json_type_string))
		return NULL;
	snprintf(what, n, "%.128s%s%.128s", ns ? json_object_get_string(ns) : "", ns ? "/" : "",
		 json_object_get_string(name));
	return key_of(ns ? json_object_get_string(ns) : "", json_object_get_string(name));
}

/*
 * One page: items into the queue (waiting for room), its resourceVersion
 * and continue token out. 0, or -errno with msg.
 */
static int list_page(struct zt_k8s_watch *w, struct xfer *x, char *cont, size_t contlen, char *msg,
		     size_t msglen)
{
	json_tokener *tok = json_tokener_new_ex(ZT_K8S_JSON_DEPTH);
	json_object *o = NULL, *items, *meta, *v;
	int r = -EPROTO;

	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = x->len <= INT32_MAX ? json_tokener_parse_ex(tok, x->body, (int)x->len) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(msg, msglen, "the list is not a JSON object (%s)",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	if (!json_object_object_get_ex(o, "items", &items) ||
	    !(json_object_is_type(items, json_type_array) ||
	      json_object_is_type(items, json_type_null))) {
		snprintf(msg, msglen, "the list has no items array");
		goto out;
	}
	if (zt_k8s_meta_rv(o, w->rv, sizeof(w->rv)) < 0) {
		snprintf(msg, msglen, "the list has no usable metadata.resourceVersion");
		goto out;
	}
	cont[0] = '\0';
	if (json_object_object_get_ex(o, "metadata", &meta) &&
	    json_object_object_get_ex(meta, "continue", &v) &&
	    json_object_is_type(v, json_type_string)) {
		if ((size_t)json_object_get_string_len(v) >= contlen) {
			snprintf(msg, msglen, "the continue token is longer than %zu bytes",
				 contlen - 1);
			goto out;
		}
		snprintf(cont, contlen, "%s", json_object_get_string(v));
	}
	STAT_ADD(w, list_pages, 1);
	for (size_t i = 0;
	     json_object_is_type(items, json_type_array) && i < json_object_array_length(items);
	     i++) {
		json_object *it = json_object_array_get_idx(items, i);
		struct zt_k8s_object *obj = NULL;
		char why[256], what[300];

		r = zt_k8s_object_decode(w->kind, it, &obj, why, sizeof(why));
		if (r == -ENOMEM)
			goto out;
		if (r == 0) {
			r = push_obj(w, Q_ITEM, obj, NULL, true);
		} else {
			char *key = raw_key(it, what, sizeof(what));

			bad_object(w, ZT_K8S_OP_LIST, what, why);
			r = key ? push_obj(w, Q_KEEP, NULL, key, true) : 0;
		}
		if (r)
			goto out;
	}
	r = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return r;
}

/* A complete (re)list. 0 (SYNCED queued) or -errno; failures are reported. */
static int do_list(struct zt_k8s_watch *w)
{
	char cont[4096] = "", msg[600];
	bool restart = true;
	int r = 0;

	while (!atomic_load(&w->stopping)) {
		struct xfer x = { .w = w, .max = w->max_page_bytes };
		char *url;

		if (restart) {
			r = push_marker(w, Q_RELIST, NULL);
			if (r)
				return r;
			cont[0] = '\0';
			restart = false;
		}
		url = make_url(w, false, cont, 0);
		if (!url)
			return -ENOMEM;
		r = perform(w, url, &x, 120);
		if (r == 0 && x.status == 200)
			r = list_page(w, &x, cont, sizeof(cont), x.msg, sizeof(x.msg));
		else if (r == 0 && x.status == 410 && cont[0]) {
			/* The continue token expired: list again from the start. */
			STAT_ADD(w, relists_gone, 1);
			snprintf(msg, sizeof(msg),
				 "GET %s: the continue token expired (410); "
				 "listing again",
				 url);
			report(w, ZT_K8S_OP_LIST, -ESTALE, 410, false, true, msg);
			free(url);
			free(x.body);
			restart = true;
			continue;
		} else if (r == 0) {
			status_msg(&x, x.msg, sizeof(x.msg));
			r = status_err(x.status);
		}
		if (r && r != -ECANCELED) {
			uint64_t delay;

			if (r == -EFBIG && w->limit > 1) {
				snprintf(msg, sizeof(msg),
					 "GET %s: a page larger than %zu bytes; next pages ask for "
					 "%u items",
					 url, w->max_page_bytes, w->limit / 4 ? w->limit / 4 : 1);
				w->limit = w->limit / 4 ? w->limit / 4 : 1;
			} else {
				snprintf(msg, sizeof(msg), "GET %s: %s", url, x.msg);
			}
			delay = report(w, ZT_K8S_OP_LIST, r, x.status, true, true, msg);
			free(url);
			free(x.body);
			nap(w, delay);
			return r;
		}
		free(url);
		free(x.body);
		if (r)
			return r;
		if (!cont[0])
			break;
	}
	if (atomic_load(&w->stopping))
		return -ECANCELED;
	r = push_marker(w, Q_SYNCED, w->rv);
	if (r)
		return r;
	STAT_ADD(w, lists, 1);
	pthread_mutex_lock(&w->mu);
	snprintf(w->st.resource_version, sizeof(w->st.resource_version), "%s", w->rv);
	pthread_mutex_unlock(&w->mu);
	w->failures = 0;
	return 0;
}

/* ---- WATCH ------------------------------------------------------------- */

static int on_event(void *ctx, json_object *ev)
{
	struct xfer *x = ctx;
	struct zt_k8s_watch *w = x->w;
	struct zt_k8s_event e;
	char why[256], what[300];
	enum qtype t;
	int r;

	r = zt_k8s_event_decode(w->kind, ev, &e, why, sizeof(why));
	if (r == -ENOMEM || r == -EPROTO) {
		snprintf(x->msg, sizeof(x->msg), "%s", why);
		return r;
	}
	if (r) {
		json_object *obj = NULL;
		char *key = NULL;

		json_object_object_get_ex(ev, "object", &obj);
		if (obj)
			key = raw_key(obj, what, sizeof(what));
		bad_object(w, ZT_K8S_OP_WATCH, what, why);
		if (e.rv[0])
			set_rv(w, e.rv);
		/* A deletion needs only the key; other changes keep the last good state. */
		if (e.type == ZT_K8S_EV_DELETED && key)
			return push_obj(w, Q_DELETED, NULL, key, false) == -ENOBUFS ? -ENOBUFS : 0;
		free(key);
		return 0;
	}
	switch (e.type) {
	case ZT_K8S_EV_BOOKMARK:
		STAT_ADD(w, bookmarks, 1);
		set_rv(w, e.rv);
		return 0;
	case ZT_K8S_EV_ERROR:
		x->err_code = e.code;
		snprintf(x->msg, sizeof(x->msg), "ERROR event: %ld %s: %s", e.code, e.reason,
			 e.message);
		return e.code == 410 ? GONE : -EPROTO;
	case ZT_K8S_EV_ADDED:
		t = Q_ADDED;
		break;
	case ZT_K8S_EV_MODIFIED:
		t = Q_MODIFIED;
		break;
	default:
		t = Q_DELETED;
		break;
	}
	r = push_obj(w, t, e.obj, NULL, false);
	if (r == -ENOBUFS) {
		snprintf(x->msg, sizeof(x->msg),
			 "%u events wait for the daemon's loop (queue full): listing again",
			 w->queue_max);
		return r;
	}
	if (r)
		return r;
	x->events++;
	STAT_ADD(w, events, 1);
	set_rv(w, e.rv);
	return 0;
}

enum watch_end {
	W_AGAIN, /* watch again from w->rv */
	W_RELIST,
	W_STOP,
};

static enum watch_end do_watch(struct zt_k8s_watch *w)
{
	unsigned int timeout_s =
		w->watch_timeout_s ? w->watch_timeout_s : 300 + (unsigned int)(rnd(w) % 301);
	struct xfer x = { .w = w, .streaming = true, .max = ERR_BODY_MAX };
	uint64_t t0 = zt_now_mono_ns(), delay;
	enum watch_end end = W_AGAIN;
	char *url, msg[800];
	bool quick;
	int r;

	url = make_url(w, true, NULL, timeout_s);
	if (!url) {
		nap(w, report(w, ZT_K8S_OP_WATCH, -ENOMEM, 0, true, false, "out of memory"));
		return W_AGAIN;
	}
	zt_k8s_stream_reset(&w->stream);
	/* The server ends the watch after timeoutSeconds; a dead peer is cut 30 s later. */
	r = perform(w, url, &x, (long)timeout_s + 30);
	if (r == 0 && x.status == 200 && zt_k8s_stream_end(&w->stream) < 0) {
		r = -EPROTO;
		snprintf(x.msg, sizeof(x.msg), "the stream ended in the middle of an event");
	}
	quick = x.events == 0 && zt_now_mono_ns() - t0 < QUICK_NS;
	if (r == -ECANCELED) {
		end = W_STOP;
	} else if (r == GONE || (r == 0 && x.status == 410)) {
		STAT_ADD(w, relists_gone, 1);
		if (r == 0)
			status_msg(&x, x.msg, sizeof(x.msg));
		snprintf(msg, sizeof(msg), "GET %s: resourceVersion %s is gone (%s); listing again",
			 url, w->rv, x.msg);
		if (!quick)
			w->failures = 0;
		/* Listing at once is routine; a server that keeps answering 410 backs off. */
		delay = report(w, ZT_K8S_OP_WATCH, -ESTALE, 410, quick, true, msg);
		nap(w, w->failures > 1 ? delay : 0);
		end = W_RELIST;
	} else if (r == -EFBIG) {
		/*
		 * Resuming would meet the same event again. A list has no bound
		 * per object (only per page): the relist brings the object, and
		 * the watch goes on from after it.
		 */
		snprintf(msg, sizeof(msg), "GET %s: %s; listing again", url, x.msg);
		nap(w, report(w, ZT_K8S_OP_WATCH, r, 200, true, true, msg));
		end = W_RELIST;
	} else if (r == -ENOBUFS) {
		STAT_ADD(w, overflows, 1);
		snprintf(msg, sizeof(msg), "GET %s: %s", url, x.msg);
		wait_half(w);
		report(w, ZT_K8S_OP_WATCH, -ENOBUFS, 200, false, true, msg);
		end = W_RELIST;
	} else if (r == 0 && x.status == 200 && !quick) {
		w->failures = 0; /* the server ended it (timeoutSeconds): watch again */
	} else {
		if (r == 0 && x.status != 200) {
			status_msg(&x, x.msg, sizeof(x.msg));
			r = status_err(x.status);
		} else if (r == 0) {
			r = -EPROTO;
			snprintf(x.msg, sizeof(x.msg), "the watch ended at once with no event");
		}
		if (x.events)
			w->failures = 0;
		snprintf(msg, sizeof(msg), "GET %s: %s; resuming from resourceVersion %s", url,
			 x.msg, w->rv);
		nap(w, report(w, ZT_K8S_OP_WATCH, r, x.status, true, false, msg));
	}
	free(url);
	free(x.body);
	return end;
}

static void *worker(void *arg)
{
	struct zt_k8s_watch *w = arg;
	bool need_list = true;

	while (!atomic_load(&w->stopping)) {
		if (need_list) {
			if (do_list(w) == 0)
				need_list = false;
			continue;
		}
		switch (do_watch(w)) {
		case W_RELIST:
			need_list = true;
			break;
		case W_STOP:
			return NULL;
		default:
			break;
		}
	}
	return NULL;
}

/* ---- the cache (caller's thread) --------------------------------------- */

static struct centry **cache_slot(struct cache *c, const char *key, uint32_t h)
{
	struct centry **p = &c->b[h & (c->nb - 1)];

	while (*p && ((*p)->hash != h || strcmp((*p)->key, key)))
		p = &(*p)->next;
	return p;
}

static int cache_grow(struct cache *c)
{
	size_t nb = c->nb ? c->nb * 2 : 256;
	struct centry **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < c->nb; i++) {
		struct centry *e = c->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(c->b);
	c->b = b;
	c->nb = nb;
	return 0;
}

static struct centry *cache_find(const struct cache *c, const char *key)
{
	uint32_t h = zt_fnv1a32(key, strlen(key));

	if (!c->nb)
		return NULL;
	return *cache_slot((struct cache *)c, key, h);
}

static void cache_unlink(struct cache *c, struct centry *e)
{
	struct centry **p = cache_slot(c, e->key, e->hash);

	*p = e->next;
	c->n--;
}

static void centry_free(struct centry *e)
{
	zt_k8s_object_free(e->obj);
	free(e->key);
	free(e);
}

static void call_deleted(struct zt_k8s_watch *w, struct centry *e)
{
	cache_unlink(&w->cache, e);
	if (w->h && w->h->deleted)
		w->h->deleted(w->ctx, e->obj);
	centry_free(e);
}

/* Takes obj. */
static void upsert(struct zt_k8s_watch *w, struct zt_k8s_object *obj)
{
	char *key = key_of(obj->namespace, obj->name);
	struct centry *e;
	struct zt_k8s_object *old;

	if (!key)
		goto nomem;
	e = cache_find(&w->cache, key);
	if (e && strcmp(e->obj->uid, obj->uid)) {
		/* Deleted and created again under the same name: two objects. */
		call_deleted(w, e);
		e = NULL;
	}
	if (e) {
		free(key);
		old = e->obj;
		e->obj = obj;
		e->gen = w->gen;
		if (!zt_k8s_object_same(old, obj) && w->h && w->h->updated)
			w->h->updated(w->ctx, old, obj);
		zt_k8s_object_free(old);
		return;
	}
	if (w->cache.n >= w->cache.nb && cache_grow(&w->cache) < 0)
		goto nomem;
	e = calloc(1, sizeof(*e));
	if (!e)
		goto nomem;
	e->key = key;
	e->hash = zt_fnv1a32(key, strlen(key));
	e->gen = w->gen;
	e->obj = obj;
	e->next = w->cache.b[e->hash & (w->cache.nb - 1)];
	w->cache.b[e->hash & (w->cache.nb - 1)] = e;
	w->cache.n++;
	if (w->h && w->h->added)
		w->h->added(w->ctx, obj);
	return;
nomem:
	/* The next relist repairs it; say so through the error handler. */
	free(key);
	zt_k8s_object_free(obj);
	if (w->h && w->h->error) {
		struct zt_k8s_error err = { .kind = w->kind,
					    .err = -ENOMEM,
					    .msg = "out of memory: an object was not cached" };

		w->h->error(w->ctx, &err);
	}
}

static void sweep(struct zt_k8s_watch *w)
{
	for (size_t i = 0; i < w->cache.nb; i++) {
		struct centry *e = w->cache.b[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (e->gen != w->gen)
				call_deleted(w, e);
		}
	}
}

static void handle(struct zt_k8s_watch *w, struct qev *e)
{
	struct centry *c;
	char *key;

	switch (e->type) {
	case Q_RELIST:
		w->gen++;
		break;
	case Q_ITEM:
	case Q_ADDED:
	case Q_MODIFIED:
		upsert(w, e->obj);
		e->obj = NULL;
		break;
	case Q_KEEP:
		c = cache_find(&w->cache, e->key);
		if (c)
			c->gen = w->gen;
		break;
	case Q_DELETED:
		key = e->key ? e->key : key_of(e->obj->namespace, e->obj->name);
		c = key ? cache_find(&w->cache, key) : NULL;
		if (c)
			call_deleted(w, c);
		if (key != e->key)
			free(key);
		break;
	case Q_SYNCED: {
		struct zt_k8s_sync s = { .kind = w->kind, .resource_version = e->rv };

		sweep(w);
		s.objects = w->cache.n;
		s.first = !w->had_sync;
		w->synced = true;
		w->had_sync = true;
		if (w->h && w->h->synced)
			w->h->synced(w->ctx, &s);
		break;
	}
	case Q_ERROR:
		e->err.msg = e->msg;
		if (w->h && w->h->error)
			w->h->error(w->ctx, &e->err);
		break;
	}
}

int zt_k8s_watch_dispatch(struct zt_k8s_watch *w)
{
	struct qev *list, *last = NULL, *e;
	unsigned int k = 0;
	bool more;

	drain(w->efd);
	pthread_mutex_lock(&w->mu);
	list = w->head;
	for (e = w->head; e && k < w->dispatch_batch; e = e->next) {
		last = e;
		k++;
	}
	if (last) {
		w->head = last->next;
		if (!w->head)
			w->tail = NULL;
		last->next = NULL;
	} else {
		list = NULL;
	}
	w->qlen -= k;
	more = w->qlen > 0;
	pthread_cond_broadcast(&w->room);
	pthread_mutex_unlock(&w->mu);
	if (more)
		kick(w->efd);
	while (list) {
		e = list;
		list = e->next;
		handle(w, e);
		qev_free(e);
	}
	return (int)k;
}

bool zt_k8s_watch_synced(const struct zt_k8s_watch *w)
{
	return w->synced;
}

size_t zt_k8s_watch_count(const struct zt_k8s_watch *w)
{
	return w->cache.n;
}

const struct zt_k8s_object *zt_k8s_watch_get(const struct zt_k8s_watch *w, const char *namespace,
					     const char *name)
{
	char *key = key_of(namespace, name);
	struct centry *e = key ? cache_find(&w->cache, key) : NULL;

	free(key);
	return e ? e->obj : NULL;
}

void zt_k8s_watch_foreach(const struct zt_k8s_watch *w,
			  void (*fn)(void *ctx, const struct zt_k8s_object *obj), void *ctx)
{
	for (size_t i = 0; i < w->cache.nb; i++)
		for (const struct centry *e = w->cache.b[i]; e; e = e->next)
			fn(ctx, e->obj);
}

int zt_k8s_watch_fd(const struct zt_k8s_watch *w)
{
	return w->efd;
}

/* ---- start / stop ------------------------------------------------------ */

void zt_k8s_watch_stop(struct zt_k8s_watch *w)
{
	struct qev *e;

	if (!w)
		return;
	atomic_store(&w->stopping, true);
	pthread_mutex_lock(&w->mu);
	pthread_cond_broadcast(&w->room);
	pthread_mutex_unlock(&w->mu);
	if (w->multi)
		curl_multi_wakeup(w->multi);
	if (w->started)
		pthread_join(w->thr, NULL);
	while ((e = w->head)) {
		w->head = e->next;
		qev_free(e);
	}
	for (size_t i = 0; i < w->cache.nb; i++) {
		struct centry *c = w->cache.b[i], *next;

		for (; c; c = next) {
			next = c->next;
			centry_free(c);
		}
	}
	free(w->cache.b);
	if (w->easy)
		curl_easy_cleanup(w->easy);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	if (w->curl_inited)
		curl_global_cleanup();
	zt_k8s_stream_free(&w->stream);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->room);
	pthread_mutex_destroy(&w->mu);
	free(w->field_selector);
	free(w->label_selector);
	zt_k8s_client_free(w->c);
	free(w);
}

int zt_k8s_watch_start(struct zt_k8s_client *c, const struct zt_k8s_watch_opts *o,
		       struct zt_k8s_watch **out)
{
	struct zt_k8s_watch *w;
	int r = -ENOMEM;

	if (!c || !o || !zt_k8s_resource(o->kind))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->efd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->room, NULL);
	w->c = zt_k8s_client_ref(c);
	w->kind = o->kind;
	w->h = o->h;
	w->ctx = o->ctx;
	w->page_limit = o->page_limit ? o->page_limit : 500;
	w->limit = w->page_limit;
	w->watch_timeout_s = o->watch_timeout_s;
	w->backoff_min_ns = o->backoff_min_ns ? o->backoff_min_ns : 500 * NS_MS;
	w->backoff_max_ns = o->backoff_max_ns ? o->backoff_max_ns : 30 * NS_S;
	if (w->backoff_max_ns < w->backoff_min_ns)
		w->backoff_max_ns = w->backoff_min_ns;
	w->connect_timeout_ns = o->connect_timeout_ns ? o->connect_timeout_ns : 10 * NS_S;
	w->max_object_bytes = o->max_object_bytes ? o->max_object_bytes : 4u << 20;
	w->max_page_bytes = o->max_page_bytes ? o->max_page_bytes : 64u << 20;
	w->queue_max = o->queue_max ? o->queue_max : 4096;
	w->dispatch_batch = o->dispatch_batch ? o->dispatch_batch : 256;
	if ((o->field_selector && o->field_selector[0] &&
	     !(w->field_selector = strdup(o->field_selector))) ||
	    (o->label_selector && o->label_selector[0] &&
	     !(w->label_selector = strdup(o->label_selector))))
		goto fail;
	if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || !w->rng)
		w->rng = zt_now_mono_ns() | 1;
	r = zt_k8s_stream_init(&w->stream, w->max_object_bytes);
	if (r)
		goto fail;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		r = -errno;
		goto fail;
	}
	r = -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto fail;
	w->curl_inited = true;
	w->multi = curl_multi_init();
	if (!w->multi || easy_setup(w) < 0)
		goto fail;
	r = -pthread_create(&w->thr, NULL, worker, w);
	if (r)
		goto fail;
	pthread_setname_np(w->thr, "zt-k8s-watch");
	w->started = true;
	*out = w;
	return 0;
fail:
	zt_k8s_watch_stop(w);
	return r;
}
