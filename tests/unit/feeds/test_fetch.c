// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the feed fetcher against real files, directories and a real
 * HTTP(S) server run by the test in a network namespace of its own (lo,
 * 198.18.0.1), with a CA made by the test: conditional requests, retries,
 * size bounds, timeouts, TLS verification, the last good copy on disk.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "feeds/fetch.h"

#define SERVER_ADDR "198.18.0.1"
#define WAIT_MS 10000

static char tmpdir[] = "/tmp/zt-fetch-XXXXXX";
static bool have_netns;

/* ---------------------------------------------------------- completions */

struct rec {
	enum zt_feed_outcome outcome;
	int err;
	char msg[512];
	char body[8192];
	size_t bytes, n_parts;
	char parts[8][256];
	unsigned int failures;
	bool will_retry;
	long status;
	uint64_t last_good;
	bool work_ok;
};

struct sink {
	struct rec v[64];
	size_t n; /* delivered */
	size_t read; /* looked at by the test */
};

static void on_done(void *ctx, const struct zt_feed_done *d)
{
	struct sink *s = ctx;
	struct rec *r;

	if (s->n == ZT_ARRAY_SIZE(s->v))
		fail_msg("too many completions");
	r = &s->v[s->n++];
	memset(r, 0, sizeof(*r));
	r->outcome = d->outcome;
	r->err = d->err;
	snprintf(r->msg, sizeof(r->msg), "%s", d->msg);
	r->failures = d->failures;
	r->will_retry = d->will_retry;
	r->status = d->http_status;
	r->last_good = d->last_good_unix;
	r->bytes = d->bytes;
	if (d->body) {
		size_t o = 0;

		r->n_parts = d->body->n_parts;
		for (size_t i = 0; i < d->body->n_parts; i++) {
			const struct zt_feed_part *p = &d->body->parts[i];
			size_t n =
				p->len < sizeof(r->body) - 1 - o ? p->len : sizeof(r->body) - 1 - o;

			if (i < 8)
				snprintf(r->parts[i], sizeof(r->parts[i]), "%s", p->name);
			memcpy(r->body + o, p->data, n);
			o += n;
		}
		r->body[o] = '\0';
	}
	if (d->work) {
		r->work_ok = !strcmp(d->work, "parsed");
		free(d->work);
	}
}

/* A body starting with REFUSE is refused, like a parser refusing a feed. */
static int work(void *ctx, unsigned int index, const struct zt_feed_config *fc,
		const struct zt_feed_body *body, void **out, char *msg, size_t msglen)
{
	if (body->n_parts && body->parts[0].len >= 6 && !memcmp(body->parts[0].data, "REFUSE", 6)) {
		snprintf(msg, msglen, "feed=%s: refused by the test", fc->name);
		return -EBADMSG;
	}
	*out = strdup("parsed");
	return *out ? 0 : -ENOMEM;
}

static void work_free(void *ctx, void *w)
{
	free(w);
}

/* The next completion, dispatching until it arrives; fails after WAIT_MS. */
static struct rec *next_rec(struct zt_feed_fetcher *f, struct sink *s)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (s->n == s->read) {
		struct pollfd p = { .fd = zt_feed_fetcher_fd(f), .events = POLLIN };

		poll(&p, 1, 100);
		if (p.revents & POLLIN)
			zt_feed_fetcher_dispatch(f);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > WAIT_MS)
			fail_msg("no completion within %d ms", WAIT_MS);
	}
	return &s->v[s->read++];
}

/* No completion arrives for ms. */
static void assert_quiet(struct zt_feed_fetcher *f, struct sink *s, int ms)
{
	struct pollfd p = { .fd = zt_feed_fetcher_fd(f), .events = POLLIN };

	if (poll(&p, 1, ms) > 0)
		zt_feed_fetcher_dispatch(f);
	if (s->n != s->read)
		fail_msg("unexpected completion: outcome %d msg '%s'", s->v[s->read].outcome,
			 s->v[s->read].msg);
}

static void write_file(const char *path, const char *content)
{
	char tmp[600];
	FILE *fp;

	/* Replaced by rename, as operators and the kubelet do. */
	snprintf(tmp, sizeof(tmp), "%s.tmp~", path);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	assert_int_equal(rename(tmp, path), 0);
}

static struct zt_feed_config feed(const char *name, const char *url)
{
	struct zt_feed_config fc;

	zt_feed_config_defaults(&fc);
	snprintf(fc.name, sizeof(fc.name), "%s", name);
	snprintf(fc.url, sizeof(fc.url), "%s", url);
	fc.retries = 2;
	return fc;
}

static struct zt_feed_fetcher *start(const struct zt_feed_config *fc, unsigned int n,
				     const char *state, struct sink *s)
{
	struct zt_feed_fetcher_opts o = {
		.feeds = fc,
		.n_feeds = n,
		.state_dir = state,
		.work = work,
		.work_free = work_free,
		.done = on_done,
		.done_ctx = s,
		.retry_base_ns = 20000000, /* 20 ms */
		.debounce_ns = 10000000,
	};
	struct zt_feed_fetcher *f;
	char err[256] = "";

	if (zt_feed_fetcher_init(&f, &o, err, sizeof(err)))
		fail_msg("init: %s", err);
	return f;
}

static void path(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", tmpdir, rel);
}

/* ---------------------------------------------------------- files, dirs */

static double mono_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * A file renamed into place is whole, and read at once; one written in
 * place may still be being written, and is read after the debounce (here
 * long: 2 s, so that "at once" cannot be the debounce expiring).
 */
static void test_rename_read_at_once(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	char file[512], url[600], st[512], dir[512];
	struct zt_feed_fetcher_opts o = {
		.n_feeds = 1,
		.work = work,
		.work_free = work_free,
		.done = on_done,
		.done_ctx = s,
		.retry_base_ns = 20000000,
		.debounce_ns = 2000000000ULL,
	};
	struct zt_feed_fetcher *f;
	struct zt_feed_config fc;
	struct rec *r;
	char err[256] = "";
	double t0, dt;
	FILE *fp;

	(void)state;
	path(file, sizeof(file), "ren/drop.txt");
	path(st, sizeof(st), "ren/state");
	path(dir, sizeof(dir), "ren");
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(file, "192.0.2.1\n");
	snprintf(url, sizeof(url), "file://%s", file);
	fc = feed("drop", url);
	o.feeds = &fc;
	o.state_dir = st;
	if (zt_feed_fetcher_init(&f, &o, err, sizeof(err)))
		fail_msg("init: %s", err);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);

	t0 = mono_s();
	write_file(file, "192.0.2.2\n");
	r = next_rec(f, s);
	dt = mono_s() - t0;
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "192.0.2.2\n");
	if (dt >= 1.0)
		fail_msg("a renamed file was read after %.2f s (debounce 2 s)", dt);

	/* Written in place: the debounce applies. */
	t0 = mono_s();
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("192.0.2.3\n", fp);
	fclose(fp);
	r = next_rec(f, s);
	dt = mono_s() - t0;
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "192.0.2.3\n");
	if (dt < 1.9)
		fail_msg("a file written in place was read after %.2f s, within the debounce", dt);
	zt_feed_fetcher_stop(f);
	free(s);
}

static void test_file(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	char file[512], url[600], st[512], cache[600], dir[512];
	struct zt_feed_fetcher *f;
	struct zt_feed_config fc;
	struct rec *r;
	struct stat sb;

	path(file, sizeof(file), "file/drop.txt");
	path(st, sizeof(st), "file/state");
	path(dir, sizeof(dir), "file");
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file(file, "192.0.2.1\n");
	snprintf(url, sizeof(url), "file://%s", file);
	fc = feed("drop", url);
	f = start(&fc, 1, st, s);

	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "192.0.2.1\n");
	assert_true(r->work_ok);
	assert_true(r->last_good > 0);
	/* Saved as the last good copy. */
	snprintf(cache, sizeof(cache), "%s/feeds/drop.cache", st);
	assert_int_equal(stat(cache, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* Nothing changed: a refresh reads no bytes. */
	assert_int_equal(zt_feed_fetcher_refresh(f, 0, false), 0);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_UNCHANGED);

	/* A new version is seen through inotify, without a refresh. */
	write_file(file, "192.0.2.2\n");
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "192.0.2.2\n");

	/* Content the parser refuses: failed, not retried quickly, not saved. */
	write_file(file, "REFUSE\n");
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -EBADMSG);
	assert_string_equal(r->msg, "feed=drop: refused by the test");
	assert_false(r->will_retry);
	assert_int_equal(r->failures, 1);
	assert_quiet(f, s, 200);
	zt_feed_fetcher_stop(f);

	/* A restart: the last good copy first, then the fetch (still refused). */
	f = start(&fc, 1, st, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_CACHED);
	assert_string_equal(r->body, "192.0.2.2\n");
	assert_true(r->work_ok);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -EBADMSG);
	assert_true(r->last_good > 0);

	/* The file gone: its last good content stays in force, the failure says where. */
	assert_int_equal(unlink(file), 0);
	assert_int_equal(zt_feed_fetcher_refresh(f, 0, false), 0);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -ENOENT);
	assert_non_null(strstr(r->msg, "drop.txt: cannot open"));
	zt_feed_fetcher_stop(f);

	/* The same name from another url: the saved copy is not for it. */
	write_file(file, "198.51.100.1\n");
	snprintf(url, sizeof(url), "%s", file); /* a plain path this time */
	fc = feed("drop", url);
	f = start(&fc, 1, st, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "198.51.100.1\n");
	zt_feed_fetcher_stop(f);
	free(s);
}

static void test_directory(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	char dir[512], p[600];
	struct zt_feed_fetcher *f;
	struct zt_feed_config fc;
	struct rec *r;

	path(dir, sizeof(dir), "dir");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(p, sizeof(p), "%s/b.txt", dir);
	write_file(p, "B\n");
	snprintf(p, sizeof(p), "%s/a.txt", dir);
	write_file(p, "A\n");
	snprintf(p, sizeof(p), "%s/.hidden", dir);
	write_file(p, "H\n");
	snprintf(p, sizeof(p), "%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	fc = feed("dir", dir);
	f = start(&fc, 1, NULL, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	/* Regular files, sorted, hidden ones and directories skipped. */
	assert_int_equal(r->n_parts, 2);
	assert_string_equal(r->parts[0], "a.txt");
	assert_string_equal(r->parts[1], "b.txt");
	assert_string_equal(r->body, "A\nB\n");

	/* A file added is read within the debounce. */
	snprintf(p, sizeof(p), "%s/c.txt", dir);
	write_file(p, "C\n");
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_int_equal(r->n_parts, 3);
	assert_string_equal(r->body, "A\nB\nC\n");

	/* A forced refresh reads again and finds the same bytes: nothing to apply. */
	assert_int_equal(zt_feed_fetcher_refresh(f, -1, false), 0);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_UNCHANGED);
	assert_int_equal(zt_feed_fetcher_refresh(f, 5, false), -ENOENT);
	zt_feed_fetcher_stop(f);
	free(s);
}

static void test_file_limits(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	char big[600], empty[600], missing[600], buf[2048];
	struct zt_feed_config fc[3];
	struct zt_feed_fetcher *f;
	bool seen[3] = { false };

	path(big, sizeof(big), "big.txt");
	path(empty, sizeof(empty), "empty.txt");
	path(missing, sizeof(missing), "missing.txt");
	memset(buf, '1', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	write_file(big, buf);
	write_file(empty, "");
	fc[0] = feed("big", big);
	fc[0].max_bytes = 1024;
	fc[1] = feed("empty", empty);
	fc[2] = feed("missing", missing);
	f = start(fc, 3, NULL, s);
	for (int i = 0; i < 3; i++) {
		struct rec *r = next_rec(f, s);

		assert_int_equal(r->outcome, ZT_FEED_FAILED);
		/* None of these is fixed by retrying in a few seconds. */
		assert_false(r->will_retry);
		if (r->err == -EFBIG) {
			assert_non_null(strstr(r->msg, "larger than max_bytes (1024)"));
			seen[0] = true;
		} else if (r->err == -ENODATA) {
			assert_non_null(strstr(r->msg, "empty"));
			seen[1] = true;
		} else if (r->err == -ENOENT) {
			seen[2] = true;
		} else {
			fail_msg("unexpected err %d: %s", r->err, r->msg);
		}
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	zt_feed_fetcher_stop(f);
	free(s);
}

/* Damaged copies in state_dir are ignored with a reason, never half-used. */
static void test_damaged_cache(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	char file[512], st[512], cache[600];
	struct zt_feed_fetcher *f;
	struct zt_feed_config fc;
	struct rec *r;
	FILE *fp;
	long size;

	path(file, sizeof(file), "dc.txt");
	path(st, sizeof(st), "dcstate");
	write_file(file, "192.0.2.9\n");
	fc = feed("dc", file);
	f = start(&fc, 1, st, s);
	assert_int_equal(next_rec(f, s)->outcome, ZT_FEED_NEW);
	zt_feed_fetcher_stop(f);
	/* Flip the last content byte. */
	snprintf(cache, sizeof(cache), "%s/feeds/dc.cache", st);
	fp = fopen(cache, "r+");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	fseek(fp, size - 3, SEEK_SET);
	fputc('8', fp);
	fclose(fp);
	f = start(&fc, 1, st, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_non_null(strstr(r->msg, "does not match its digest"));
	/* Then the fetch itself. */
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "192.0.2.9\n");
	zt_feed_fetcher_stop(f);
	/* Truncated. */
	assert_int_equal(truncate(cache, 40), 0);
	f = start(&fc, 1, st, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_non_null(strstr(r->msg, "dc.cache"));
	zt_feed_fetcher_stop(f);
	free(s);
}

/* ------------------------------------------------------------ the server */

struct server {
	pthread_t thr;
	int fd;
	uint16_t port;
	SSL_CTX *tls;
	pthread_mutex_t mu;
	bool stop; /* __atomic: set by the test, read by the server thread */
	/* What to answer, under mu. */
	char body[4096];
	size_t body_len; /* body is repeated until this many bytes */
	char etag[64], last_modified[64];
	int status; /* 0: 200/304 */
	bool chunked, no_length;
	int delay_ms;
	char location[256];
	/* What was asked. */
	unsigned int requests;
	char if_none_match[64], if_modified_since[64];
};

static void hdr_value(const char *req, const char *name, char *out, size_t n)
{
	const char *p = strcasestr(req, name), *e;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(name);
	while (*p == ' ')
		p++;
	e = strstr(p, "\r\n");
	if (!e)
		return;
	snprintf(out, n, "%.*s", (int)(e - p), p);
}

static int io_write(int fd, SSL *ssl, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = ssl ? SSL_write(ssl, c, (int)n) : write(fd, c, n);

		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void serve_one(struct server *sv, int fd)
{
	char req[4096], hdr[1024], inm[64], ims[64], body[sizeof(sv->body)];
	SSL *ssl = NULL;
	size_t got = 0, len;
	int status, n, delay_ms;
	bool chunked;

	if (sv->tls) {
		ssl = SSL_new(sv->tls);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) <= 0)
			goto out;
	}
	while (got < sizeof(req) - 1) {
		int r = ssl ? SSL_read(ssl, req + got, (int)(sizeof(req) - 1 - got)) :
			      (int)read(fd, req + got, sizeof(req) - 1 - got);

		if (r <= 0)
			goto out;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	hdr_value(req, "\r\nIf-None-Match:", inm, sizeof(inm));
	hdr_value(req, "\r\nIf-Modified-Since:", ims, sizeof(ims));
	pthread_mutex_lock(&sv->mu);
	sv->requests++;
	snprintf(sv->if_none_match, sizeof(sv->if_none_match), "%s", inm);
	snprintf(sv->if_modified_since, sizeof(sv->if_modified_since), "%s", ims);
	status = sv->status ? sv->status : (sv->etag[0] && !strcmp(inm, sv->etag)) ? 304 : 200;
	len = sv->body_len;
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d X\r\nConnection: close\r\n", status);
	if (sv->etag[0])
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "ETag: %s\r\n", sv->etag);
	if (sv->last_modified[0])
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Last-Modified: %s\r\n",
			      sv->last_modified);
	if (sv->location[0])
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Location: %s\r\n", sv->location);
	if (status != 200)
		len = 0;
	if (sv->chunked && status == 200)
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n,
			      "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", len);
	else if (sv->no_length)
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "\r\n");
	else
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "Content-Length: %zu\r\n\r\n", len);
	/* What the answer needs, copied while the test cannot change it. */
	memcpy(body, sv->body, sizeof(body));
	chunked = sv->chunked;
	pthread_mutex_unlock(&sv->mu);
	/* The delay as the test sets it now: lowering it ends a wait. */
	for (int waited = 0; !__atomic_load_n(&sv->stop, __ATOMIC_ACQUIRE); waited += 20) {
		pthread_mutex_lock(&sv->mu);
		delay_ms = sv->delay_ms;
		pthread_mutex_unlock(&sv->mu);
		if (waited >= delay_ms)
			break;
		usleep(20000);
	}
	if (io_write(fd, ssl, hdr, (size_t)n) < 0)
		goto out;
	for (size_t o = 0; o < len;) {
		size_t bl = strlen(body), k = len - o < bl ? len - o : bl;

		if (io_write(fd, ssl, body, k) < 0)
			goto out;
		o += k;
	}
	if (chunked && status == 200)
		io_write(fd, ssl, "\r\n0\r\n\r\n", 7);
out:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
}

static void *server_main(void *arg)
{
	struct server *sv = arg;

	while (!__atomic_load_n(&sv->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { .fd = sv->fd, .events = POLLIN };
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(sv->fd, NULL, NULL);
		if (c >= 0)
			serve_one(sv, c);
	}
	return NULL;
}

static void server_start(struct server *sv, SSL_CTX *tls)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int one = 1;

	memset(sv, 0, sizeof(*sv));
	pthread_mutex_init(&sv->mu, NULL);
	sv->tls = tls;
	inet_pton(AF_INET, SERVER_ADDR, &a.sin_addr);
	sv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sv->fd >= 0);
	setsockopt(sv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->fd, 16), 0);
	getsockname(sv->fd, (struct sockaddr *)&a, &al);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->thr, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
	__atomic_store_n(&sv->stop, true, __ATOMIC_RELEASE);
	pthread_join(sv->thr, NULL);
	close(sv->fd);
	pthread_mutex_destroy(&sv->mu);
}

static void serve(struct server *sv, const char *body, size_t len, const char *etag, const char *lm,
		  int status)
{
	pthread_mutex_lock(&sv->mu);
	snprintf(sv->body, sizeof(sv->body), "%s", body);
	sv->body_len = len ? len : strlen(body);
	snprintf(sv->etag, sizeof(sv->etag), "%s", etag ? etag : "");
	snprintf(sv->last_modified, sizeof(sv->last_modified), "%s", lm ? lm : "");
	sv->status = status;
	pthread_mutex_unlock(&sv->mu);
}

static void test_http(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct zt_feed_fetcher *f;
	struct zt_feed_config fc;
	struct server sv;
	char url[256], st[512];
	struct rec *r;
	unsigned int req;

	if (!have_netns)
		skip();
	path(st, sizeof(st), "httpstate");
	server_start(&sv, NULL);
	serve(&sv, "192.0.2.1\n", 0, "\"v1\"", "Tue, 21 May 2024 10:00:00 GMT", 0);
	snprintf(url, sizeof(url), "http://%s:%u/drop.txt", SERVER_ADDR, sv.port);
	fc = feed("http", url);
	f = start(&fc, 1, st, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "192.0.2.1\n");
	assert_string_equal(sv.if_none_match, ""); /* nothing to be conditional on yet */

	/* Conditional: the server answers 304, nothing is downloaded. */
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_UNCHANGED);
	assert_int_equal(r->status, 304);
	assert_string_equal(sv.if_none_match, "\"v1\"");
	assert_string_equal(sv.if_modified_since, "Tue, 21 May 2024 10:00:00 GMT");

	/* A new version. */
	serve(&sv, "192.0.2.2\n", 0, "\"v2\"", NULL, 0);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(r->body, "192.0.2.2\n");

	/* An outage: quick retries with backoff (retries: 2), then the regular schedule. */
	serve(&sv, "", 0, NULL, NULL, 503);
	req = sv.requests;
	zt_feed_fetcher_refresh(f, 0, false);
	for (unsigned int i = 1; i <= 3; i++) {
		r = next_rec(f, s);
		assert_int_equal(r->outcome, ZT_FEED_FAILED);
		assert_int_equal(r->status, 503);
		assert_int_equal(r->failures, i);
		assert_int_equal(r->will_retry, i <= 2);
		assert_non_null(strstr(r->msg, "HTTP status 503"));
		assert_true(r->last_good > 0); /* the last good content is still there */
	}
	assert_int_equal(sv.requests, req + 3);
	assert_quiet(f, s, 300); /* refresh is 1h: no fourth try */

	/* Back: the validators of the content in force still apply. */
	serve(&sv, "192.0.2.2\n", 0, "\"v2\"", NULL, 0);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_UNCHANGED);
	assert_string_equal(sv.if_none_match, "\"v2\"");

	/* A server without validators sending the same bytes: unchanged by digest. */
	serve(&sv, "192.0.2.2\n", 0, NULL, NULL, 0);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_UNCHANGED);
	assert_int_equal(r->status, 200);
	/* Forced: downloaded and delivered even though it is the same. */
	zt_feed_fetcher_refresh(f, 0, true);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_string_equal(sv.if_none_match, "");

	/* A refused body: its ETag must not be sent next time. */
	serve(&sv, "192.0.2.3\n", 0, "\"v3\"", NULL, 0);
	zt_feed_fetcher_refresh(f, 0, false);
	assert_int_equal(next_rec(f, s)->outcome, ZT_FEED_NEW);
	zt_feed_fetcher_stop(f);
	serve(&sv, "REFUSE\n", 0, "\"bad\"", NULL, 0);
	f = start(&fc, 1, st, s);
	assert_int_equal(next_rec(f, s)->outcome, ZT_FEED_CACHED);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_string_equal(sv.if_none_match, "\"v3\""); /* still the good one's */
	zt_feed_fetcher_stop(f);
	server_stop(&sv);
	free(s);
}

static void test_http_limits(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct zt_feed_fetcher *f;
	struct zt_feed_config fc;
	struct server sv;
	char url[256];
	struct timespec t0, t1;
	long elapsed_ms;
	struct rec *r;

	if (!have_netns)
		skip();
	server_start(&sv, NULL);
	snprintf(url, sizeof(url), "http://%s:%u/big", SERVER_ADDR, sv.port);
	fc = feed("big", url);
	fc.max_bytes = 4096;
	fc.timeout_ns = 1000000000ULL;

	/* Announced too large: refused before the body. */
	serve(&sv, "192.0.2.1\n", 100000, NULL, NULL, 0);
	f = start(&fc, 1, NULL, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -EFBIG);
	assert_false(r->will_retry);
	/* Not announced (chunked, or no length at all): stopped while downloading. */
	pthread_mutex_lock(&sv.mu);
	sv.chunked = true;
	pthread_mutex_unlock(&sv.mu);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -EFBIG);
	pthread_mutex_lock(&sv.mu);
	sv.chunked = false;
	sv.no_length = true;
	pthread_mutex_unlock(&sv.mu);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->err, -EFBIG);
	/* Exactly the bound is fine. */
	serve(&sv, "192.0.2.1\n", 4096, NULL, NULL, 0);
	zt_feed_fetcher_refresh(f, 0, false);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_NEW);
	assert_int_equal(r->bytes, 4096);

	/* A server slower than the timeout; retried (a timeout can be transient). */
	pthread_mutex_lock(&sv.mu);
	sv.no_length = false;
	sv.delay_ms = 2500;
	pthread_mutex_unlock(&sv.mu);
	zt_feed_fetcher_refresh(f, 0, true);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -ETIMEDOUT);
	assert_true(r->will_retry);
	zt_feed_fetcher_stop(f);

	/* Stop during a long transfer aborts it rather than waiting 10 s for the server. */
	pthread_mutex_lock(&sv.mu);
	sv.delay_ms = 10000;
	pthread_mutex_unlock(&sv.mu);
	fc.timeout_ns = 30000000000ULL;
	f = start(&fc, 1, NULL, s);
	usleep(300000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	zt_feed_fetcher_stop(f);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	print_message("stop during a transfer: %ld ms\n", elapsed_ms);
	assert_true(elapsed_ms < 5000);
	assert_int_equal(s->n, s->read); /* nothing delivered after stop */

	/* Nobody listening: a connection error, retried. */
	pthread_mutex_lock(&sv.mu);
	sv.delay_ms = 0;
	pthread_mutex_unlock(&sv.mu);
	server_stop(&sv);
	f = start(&fc, 1, NULL, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_true(r->will_retry);
	assert_non_null(strstr(r->msg, "Couldn't connect"));
	zt_feed_fetcher_stop(f);
	free(s);
}

/* ----------------------------------------------------------------- TLS */

static EVP_PKEY *key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static X509 *cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
		      const char *san)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ca) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
					  "critical,keyCertSign,cRLSign");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (san) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static void test_https(void **state)
{
	struct sink *s = calloc(1, sizeof(*s));
	EVP_PKEY *cakey = key_new(), *srvkey = key_new();
	X509 *ca = cert_new(cakey, "ztagent test CA", NULL, NULL, true, NULL);
	X509 *srv = cert_new(srvkey, SERVER_ADDR, ca, cakey, false, "IP:" SERVER_ADDR);
	SSL_CTX *tls = SSL_CTX_new(TLS_server_method());
	struct zt_feed_config fc[2];
	struct zt_feed_fetcher *f;
	struct server sv;
	char capath[512], url[256];
	FILE *fp;
	struct rec *r;

	if (!have_netns)
		skip();
	path(capath, sizeof(capath), "ca.pem");
	fp = fopen(capath, "w");
	assert_non_null(fp);
	PEM_write_X509(fp, ca);
	fclose(fp);
	assert_int_equal(SSL_CTX_use_certificate(tls, srv), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(tls, srvkey), 1);
	server_start(&sv, tls);
	serve(&sv, "203.0.113.9\n", 0, "\"t1\"", NULL, 0);
	snprintf(url, sizeof(url), "https://%s:%u/feed", SERVER_ADDR, sv.port);

	/* Feed 0 trusts the test CA; feed 1 the system's CAs, which do not know it. */
	fc[0] = feed("with-ca", url);
	snprintf(fc[0].ca_bundle, sizeof(fc[0].ca_bundle), "%s", capath);
	fc[1] = feed("system-ca", url);
	f = start(&fc[0], 1, NULL, s);
	r = next_rec(f, s);
	if (r->outcome != ZT_FEED_NEW)
		fail_msg("https with its CA: %s", r->msg);
	assert_string_equal(r->body, "203.0.113.9\n");
	zt_feed_fetcher_refresh(f, 0, false);
	assert_int_equal(next_rec(f, s)->outcome, ZT_FEED_UNCHANGED);
	zt_feed_fetcher_stop(f);

	f = start(&fc[1], 1, NULL, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_int_equal(r->err, -EKEYREJECTED);
	assert_false(r->will_retry);
	assert_non_null(strstr(r->msg, "certificate"));
	zt_feed_fetcher_stop(f);

	/* An https feed never follows a redirect to http. */
	pthread_mutex_lock(&sv.mu);
	sv.status = 302;
	snprintf(sv.location, sizeof(sv.location), "http://%s:%u/plain", SERVER_ADDR, sv.port);
	pthread_mutex_unlock(&sv.mu);
	f = start(&fc[0], 1, NULL, s);
	r = next_rec(f, s);
	assert_int_equal(r->outcome, ZT_FEED_FAILED);
	assert_non_null(strstr(r->msg, "not supported"));
	zt_feed_fetcher_stop(f);

	server_stop(&sv);
	SSL_CTX_free(tls);
	X509_free(srv);
	X509_free(ca);
	EVP_PKEY_free(srvkey);
	EVP_PKEY_free(cakey);
	free(s);
}

/* ------------------------------------------------------------------ main */

/* A network namespace of the test's own, lo up with 198.18.0.1: gone when the test exits. */
static bool own_netns(void)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	bool ok = false;
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, SERVER_ADDR, &sin->sin_addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) == 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ok = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
	}
	close(fd);
	return ok;
}

static int rm_tree(const char *p)
{
	char cmd[600];

	/* Only ever our mkdtemp directory. */
	if (strncmp(p, "/tmp/zt-fetch-", 14))
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", p);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_rename_read_at_once),
		cmocka_unit_test(test_file_limits),
		cmocka_unit_test(test_damaged_cache),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_limits),
		cmocka_unit_test(test_https),
	};
	int r;

	/* As the daemon does: a peer closing mid-write is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* Feeds are fetched directly, never through a proxy from the environment. */
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	have_netns = own_netns();
	if (!have_netns)
		fprintf(stderr, "no network namespace (not root?): HTTP tests are skipped\n");
	if (!mkdtemp(tmpdir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	rm_tree(tmpdir);
	return r;
}
