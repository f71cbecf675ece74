// SPDX-License-Identifier: GPL-2.0-only
/*
 * Where the API server is and who we are to it: the in-cluster
 * environment (service account token and CA mounted by the kubelet) or a
 * kubeconfig file (read with libyaml, as kubectl reads it: the
 * current-context's cluster and user).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "k8s/k8s_int.h"

void zt_k8s_conncfg_free(struct zt_k8s_conncfg *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->ca_file);
	free(c->ca_data.data);
	if (c->token)
		OPENSSL_cleanse(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->cert_data.data);
	free(c->key_file);
	if (c->key_data.data)
		OPENSSL_cleanse(c->key_data.data, c->key_data.len);
	free(c->key_data.data);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

/* ---- tokens ------------------------------------------------------------ */

int zt_k8s_token_check(const char *tok, size_t len)
{
	if (len == 0)
		return -EINVAL;
	/* It goes into "Authorization: Bearer <token>": no CR, LF, blanks or controls. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
			return -EINVAL;
	return 0;
}

int zt_k8s_read_token(const char *path, char **out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "token file %s: %s", path, strerror(-r));
		return r;
	}
	buf = malloc(ZT_K8S_TOKEN_MAX + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len <= ZT_K8S_TOKEN_MAX) {
		n = read(fd, buf + len, ZT_K8S_TOKEN_MAX + 1 - len);
		if (n < 0) {
			r = -errno;
			zt_seterr(err, errlen, "token file %s: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > ZT_K8S_TOKEN_MAX) {
		r = -EFBIG;
		zt_seterr(err, errlen, "token file %s: larger than %u bytes", path,
			  ZT_K8S_TOKEN_MAX);
		goto out;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
		       buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (zt_k8s_token_check(buf, len) < 0) {
		r = -EINVAL;
		zt_seterr(err, errlen,
			  "token file %s: %s; expected the service account's token (printable "
			  "ASCII, no blanks)",
			  path, len ? "holds bytes a token cannot have" : "is empty");
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	if (buf) {
		OPENSSL_cleanse(buf, ZT_K8S_TOKEN_MAX + 1);
		free(buf);
	}
	close(fd);
	return r;
}

/* ---- in-cluster -------------------------------------------------------- */

static bool empty(const char *s)
{
	return !s || !s[0];
}

int zt_k8s_incluster(const struct zt_k8s_settings *s, struct zt_k8s_conncfg *out, char *err,
		     size_t errlen)
{
	struct zt_k8s_conncfg c = { 0 };
	int r = -ENOMEM;

	if (!empty(s->server)) {
		c.server = strdup(s->server);
	} else {
		const char *host = getenv("KUBERNETES_SERVICE_HOST");
		const char *port = getenv("KUBERNETES_SERVICE_PORT");

		if (empty(host) || empty(port)) {
			zt_seterr(
				err, errlen,
				"in-cluster configuration: KUBERNETES_SERVICE_HOST and "
				"KUBERNETES_SERVICE_PORT are not set (not running in a pod?); set "
				"kubernetes.kubeconfig to use a kubeconfig file instead");
			return -ENOENT;
		}
		if (asprintf(&c.server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
			     host, port) < 0)
			c.server = NULL;
	}
	c.ca_file = strdup(empty(s->ca_file) ? ZT_K8S_SA_DIR "/ca.crt" : s->ca_file);
	c.token_file = strdup(empty(s->token_file) ? ZT_K8S_SA_DIR "/token" : s->token_file);
	c.source = strdup("in-cluster");
	if (!c.server || !c.ca_file || !c.token_file || !c.source)
		goto fail;
	*out = c;
	return 0;
fail:
	zt_k8s_conncfg_free(&c);
	zt_seterr(err, errlen, "out of memory");
	return r;
}

/* ---- kubeconfig -------------------------------------------------------- */

struct kc {
	yaml_document_t doc;
	const char *name;
	const char *dir;
	char *err;
	size_t errlen;
};

static yaml_node_t *node(struct kc *k, int id)
{
	return id ? yaml_document_get_node(&k->doc, id) : NULL;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(struct kc *k, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		const char *ks = scalar(node(k, p->key));

		if (ks && !strcmp(ks, key))
			return node(k, p->value);
	}
	return NULL;
}

static int kfail(struct kc *k, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int kfail(struct kc *k, int rc, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zt_seterr(k->err, k->errlen, "kubeconfig %s: %s", k->name, msg);
	return rc;
}

/* A string field; absent or null gives NULL; another type is an error. */
static int get_str(struct kc *k, yaml_node_t *m, const char *key, const char *where,
		   const char **out)
{
	yaml_node_t *v = map_get(k, m, key);

	*out = NULL;
	if (!v)
		return 0;
	if (v->type != YAML_SCALAR_NODE)
		return kfail(k, -EINVAL, "%s.%s: expected a string", where, key);
	if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (!strcmp(scalar(v), "null") || !strcmp(scalar(v), "~") || !scalar(v)[0]))
		return 0;
	if (strlen(scalar(v)) != v->data.scalar.length)
		return kfail(k, -EINVAL, "%s.%s: contains a NUL byte", where, key);
	*out = scalar(v);
	return 0;
}

/* The entry of a named list ("clusters", "users", "contexts") called name: its inner map. */
static int find_named(struct kc *k, yaml_node_t *root, const char *list, const char *inner,
		      const char *name, yaml_node_t **out)
{
	yaml_node_t *seq = map_get(k, root, list);

	*out = NULL;
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return kfail(k, -EINVAL, "%s: missing or not a list", list);
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
	     i++) {
		yaml_node_t *e = node(k, *i);
		const char *n = scalar(map_get(k, e, "name"));

		if (n && !strcmp(n, name)) {
			*out = map_get(k, e, inner);
			if (!*out || (*out)->type != YAML_MAPPING_NODE)
				return kfail(k, -EINVAL, "%s: entry '%.128s' has no mapping", list,
					     name);
			return 0;
		}
	}
	return kfail(k, -EINVAL, "%s: no entry named '%.128s'", list, name);
}

static char *resolve(struct kc *k, const char *path)
{
	char *s = NULL;

	if (path[0] == '/' || empty(k->dir))
		return strdup(path);
	if (asprintf(&s, "%s/%s", k->dir, path) < 0)
		return NULL;
	return s;
}

static int b64(struct kc *k, const char *in, const char *what, struct zt_k8s_blob *out)
{
	size_t n = strlen(in), m = 0, pad = 0;
	unsigned char *clean = malloc(n + 1), *dec = NULL;
	int len, r = -EINVAL;

	if (!clean)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t')
			clean[m++] = (unsigned char)in[i];
	if (m == 0 || m % 4) {
		kfail(k, r, "%s: not base64 (length)", what);
		goto out;
	}
	while (pad < 2 && clean[m - 1 - pad] == '=')
		pad++;
	dec = malloc(m / 4 * 3 + 1);
	if (!dec) {
		r = -ENOMEM;
		goto out;
	}
	len = EVP_DecodeBlock(dec, clean, (int)m);
	if (len < 0 || (size_t)len < pad) {
		kfail(k, r, "%s: not base64", what);
		goto out;
	}
	out->data = dec;
	out->len = (size_t)len - pad;
	dec = NULL;
	r = 0;
out:
	free(dec);
	free(clean);
	return r;
}

/* "x" or "x-data" of a map into a path (resolved) or a blob. */
static int file_or_data(struct kc *k, yaml_node_t *m, const char *key, const char *where,
			char **file, struct zt_k8s_blob *data)
{
	char dkey[64], what[96];
	const char *f, *dv;
	int r;

	snprintf(dkey, sizeof(dkey), "%s-data", key);
	snprintf(what, sizeof(what), "%s.%s", where, dkey);
	r = get_str(k, m, key, where, &f);
	if (!r)
		r = get_str(k, m, dkey, where, &dv);
	if (r)
		return r;
	if (dv)
		return b64(k, dv, what, data);
	if (f) {
		*file = resolve(k, f);
		return *file ? 0 : -ENOMEM;
	}
	return 0;
}

static int load_doc(struct kc *k, const char *buf, size_t len)
{
	yaml_parser_t p;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &k->doc)) {
		char line[32];

		snprintf(line, sizeof(line), "%zu:%zu", p.problem_mark.line + 1,
			 p.problem_mark.column + 1);
		r = kfail(k, -EINVAL, "%s: %s", line, p.problem ? p.problem : "not YAML");
	}
	yaml_parser_delete(&p);
	return r;
}

int zt_k8s_kubeconfig_parse(const char *buf, size_t len, const char *name, const char *dir,
			    struct zt_k8s_conncfg *out, char *err, size_t errlen)
{
	static const char *const refused[] = { "exec", "auth-provider", "username", "password" };
	struct kc k = { .name = name, .dir = dir, .err = err, .errlen = errlen };
	struct zt_k8s_conncfg c = { 0 };
	yaml_node_t *root, *ctx, *cluster, *user, *v;
	const char *cur, *cname, *uname, *server, *tok, *tokf;
	bool loaded = false;
	int r;

	if (len > ZT_K8S_KUBECONFIG_MAX)
		return kfail(&k, -EFBIG, "larger than 1 MiB");
	if (memchr(buf, '\0', len))
		return kfail(&k, -EINVAL, "contains a NUL byte");
	r = load_doc(&k, buf, len);
	if (r)
		return r;
	loaded = true;
	root = yaml_document_get_root_node(&k.doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		r = kfail(&k, -EINVAL, "not a kubeconfig (expected a mapping)");
		goto out;
	}
	r = get_str(&k, root, "current-context", "", &cur);
	if (r)
		goto out;
	if (!cur) {
		r = kfail(&k, -EINVAL,
			  "current-context: missing; set one with kubectl config "
			  "use-context");
		goto out;
	}
	r = find_named(&k, root, "contexts", "context", cur, &ctx);
	if (!r)
		r = get_str(&k, ctx, "cluster", "context", &cname);
	if (!r)
		r = get_str(&k, ctx, "user", "context", &uname);
	if (r)
		goto out;
	if (!cname || !uname) {
		r = kfail(&k, -EINVAL, "context '%.128s': needs a cluster and a user", cur);
		goto out;
	}
	r = find_named(&k, root, "clusters", "cluster", cname, &cluster);
	if (!r)
		r = find_named(&k, root, "users", "user", uname, &user);
	if (!r)
		r = get_str(&k, cluster, "server", "cluster", &server);
	if (r)
		goto out;
	if (!server || strncmp(server, "https://", 8)) {
		r = kfail(&k, -EINVAL,
			  "cluster '%.128s': server must be an https:// URL (got '%.128s')", cname,
			  server ? server : "");
		goto out;
	}
	v = map_get(&k, cluster, "insecure-skip-tls-verify");
	if (scalar(v) && !strcmp(scalar(v), "true")) {
		r = kfail(&k, -ENOTSUP,
			  "cluster '%.128s': insecure-skip-tls-verify is refused; give the "
			  "cluster's CA (certificate-authority or certificate-authority-data)",
			  cname);
		goto out;
	}
	if (map_get(&k, cluster, "tls-server-name") || map_get(&k, cluster, "proxy-url")) {
		r = kfail(&k, -ENOTSUP,
			  "cluster '%.128s': tls-server-name and proxy-url are not supported",
			  cname);
		goto out;
	}
	for (size_t i = 0; i < ZT_ARRAY_SIZE(refused); i++)
		if (map_get(&k, user, refused[i])) {
			r = kfail(&k, -ENOTSUP,
				  "user '%.128s': %s is not supported; use a token, tokenFile or "
				  "a client certificate",
				  uname, refused[i]);
			goto out;
		}
	c.server = strdup(server);
	if (!c.server) {
		r = -ENOMEM;
		goto out;
	}
	while (strlen(c.server) > 8 && c.server[strlen(c.server) - 1] == '/')
		c.server[strlen(c.server) - 1] = '\0';
	r = file_or_data(&k, cluster, "certificate-authority", "cluster", &c.ca_file, &c.ca_data);
	if (!r)
		r = file_or_data(&k, user, "client-certificate", "user", &c.cert_file,
				 &c.cert_data);
	if (!r)
		r = file_or_data(&k, user, "client-key", "user", &c.key_file, &c.key_data);
	if (!r)
		r = get_str(&k, user, "token", "user", &tok);
	if (!r)
		r = get_str(&k, user, "tokenFile", "user", &tokf);
	/* Accepted too, as some tools write it. */
	if (!r && !tokf)
		r = get_str(&k, user, "token-file", "user", &tokf);
	if (r)
		goto out;
	if (tok) {
		if (zt_k8s_token_check(tok, strlen(tok)) < 0) {
			r = kfail(&k, -EINVAL,
				  "user '%.128s': token holds bytes a token cannot "
				  "have",
				  uname);
			goto out;
		}
		c.token = strdup(tok);
		if (!c.token) {
			r = -ENOMEM;
			goto out;
		}
	} else if (tokf) {
		c.token_file = resolve(&k, tokf);
		if (!c.token_file) {
			r = -ENOMEM;
			goto out;
		}
	}
	if ((c.cert_file || c.cert_data.data) != (c.key_file || c.key_data.data)) {
		r = kfail(&k, -EINVAL,
			  "user '%.128s': a client certificate needs its key and the other way "
			  "round",
			  uname);
		goto out;
	}
	if (!c.token && !c.token_file && !c.cert_file && !c.cert_data.data) {
		r = kfail(&k, -EINVAL,
			  "user '%.128s': no credentials (token, tokenFile or "
			  "client-certificate + client-key)",
			  uname);
		goto out;
	}
	if (asprintf(&c.source, "kubeconfig %s context %s", name, cur) < 0) {
		c.source = NULL;
		r = -ENOMEM;
		goto out;
	}
	*out = c;
	memset(&c, 0, sizeof(c));
out:
	if (r == -ENOMEM)
		kfail(&k, r, "out of memory");
	zt_k8s_conncfg_free(&c);
	if (loaded)
		yaml_document_delete(&k.doc);
	return r;
}

/* ---- the client -------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *len, size_t max)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
	if (path && access(path, R_OK) < 0) {
		int r = -errno;

		zt_seterr(err, errlen, "%s %s: %s", what, path, strerror(-r));
		return r;
	}
	return 0;
}

int zt_k8s_client_new(const struct zt_k8s_settings *s, struct zt_k8s_client **out, char *err,
		      size_t errlen)
{
	struct zt_k8s_client *c;
	char *buf = NULL, *dir = NULL, *slash, *tok = NULL;
	size_t len = 0;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	c->node = strdup(empty(s->node_name) ? "" : s->node_name);
	if (!c->node) {
		r = -ENOMEM;
		goto out;
	}
	if (empty(s->kubeconfig)) {
		r = zt_k8s_incluster(s, &c->cfg, err, errlen);
	} else {
		r = read_file(s->kubeconfig, &buf, &len, ZT_K8S_KUBECONFIG_MAX);
		if (r < 0) {
			zt_seterr(err, errlen, "kubeconfig %s: %s", s->kubeconfig,
				  r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
			goto out;
		}
		dir = strdup(s->kubeconfig);
		if (!dir) {
			r = -ENOMEM;
			goto out;
		}
		slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		else
			strcpy(dir, ".");
		r = zt_k8s_kubeconfig_parse(buf, len, s->kubeconfig, dir, &c->cfg, err, errlen);
	}
	if (r)
		goto out;
	if (strncmp(c->cfg.server, "https://", 8)) {
		zt_seterr(err, errlen, "API server %s: only https:// is supported", c->cfg.server);
		r = -EINVAL;
		goto out;
	}
	r = check_readable("CA file", c->cfg.ca_file, err, errlen);
	if (!r)
		r = check_readable("client certificate", c->cfg.cert_file, err, errlen);
	if (!r)
		r = check_readable("client key", c->cfg.key_file, err, errlen);
	if (!r && c->cfg.token_file)
		r = zt_k8s_read_token(c->cfg.token_file, &tok, err, errlen);
	if (r)
		goto out;
	*out = c;
	c = NULL;
out:
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	if (r == -ENOMEM)
		zt_seterr(err, errlen, "out of memory");
	free(dir);
	free(buf);
	zt_k8s_client_free(c);
	return r;
}

struct zt_k8s_client *zt_k8s_client_ref(struct zt_k8s_client *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void zt_k8s_client_free(struct zt_k8s_client *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	zt_k8s_conncfg_free(&c->cfg);
	free(c->node);
	free(c);
}

const char *zt_k8s_client_server(const struct zt_k8s_client *c)
{
	return c->cfg.server;
}

const char *zt_k8s_client_node(const struct zt_k8s_client *c)
{
	return c->node;
}

const char *zt_k8s_client_source(const struct zt_k8s_client *c)
{
	return c->cfg.source;
}
