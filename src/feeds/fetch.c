// SPDX-License-Identifier: GPL-2.0-only
/*
 * The feed fetcher: one worker thread, a schedule, libcurl, files,
 * directories, inotify, and a queue of completions back to the caller.
 *
 * Threads: the worker owns every source's fetch state. The caller's thread
 * only touches, under mu, the completion queue and three fields of a
 * source: due_ns and force (refresh requests) and queued (a completion for
 * it waits, so no second attempt starts: the queue holds at most one
 * completion per feed).
 *
 * Retries: a failed attempt is retried after retry_base * 2^(k-1) (k the
 * consecutive failures, +-20% jitter) up to the feed's retries; then the
 * next attempt is the regular one, refresh later. Failures that a retry
 * cannot fix (a certificate that does not verify, 404, content over
 * max_bytes, content refused by the parser) skip the quick retries.
 * Regular refreshes get 0-5% jitter so a DaemonSet's nodes spread out.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feeds/fetch_int.h"

#define NS_MS 1000000ULL
#define NS_S 1000000000ULL

enum src_kind { SRC_HTTP, SRC_PATH };

struct source {
	struct zt_feed_config cfg;
	enum src_kind kind;
	const char *path; /* SRC_PATH: into cfg.url */
	struct feed_meta good; /* validators and digest of the content in force */
	bool have_good;
	uint64_t last_good_unix;
	unsigned int failures;
	int wd; /* inotify watch on the file's directory or the directory; -1 */
	/* Under mu: */
	uint64_t due_ns;
	bool force;
	bool queued;
};

struct completion {
	struct completion *next;
	struct zt_feed_done d;
	struct zt_feed_body body;
};

struct zt_feed_fetcher {
	struct source *src;
	unsigned int n;
	char state_dir[PATH_MAX]; /* <state_dir>/feeds, or "" */
	zt_feed_work_fn work;
	void *work_ctx;
	zt_feed_work_free_fn work_free;
	zt_feed_done_fn done;
	void *done_ctx;
	uint64_t retry_base_ns, debounce_ns;
	int wake_fd, done_fd, ino_fd;
	atomic_bool stopping;
	pthread_mutex_t mu;
	pthread_t thr;
	bool started;
	struct completion *head, *tail; /* under mu */
	uint64_t rng; /* worker only */
	CURL *curl; /* worker only */
	CURLM *multi; /* runs curl's transfers; curl_multi_wakeup() from any thread */
};

static uint64_t mono_ns(void)
{
	return zt_now_mono_ns();
}

static void kick(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then anyway. */
	if (write(fd, &one, sizeof(one)) < 0) {
	}
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
	}
}

/* xorshift64*: jitter only, never security. */
static uint64_t rnd(struct zt_feed_fetcher *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 2685821657736338717ULL;
}

/* d scaled by a random factor in [lo_pct, hi_pct] percent. */
static uint64_t jitter(struct zt_feed_fetcher *f, uint64_t d, unsigned int lo_pct,
		       unsigned int hi_pct)
{
	uint64_t pct = lo_pct + rnd(f) % (hi_pct - lo_pct + 1);

	return d / 100 * pct + d % 100 * pct / 100;
}

/* ---------------------------------------------------------------- inotify */

static void watch(struct zt_feed_fetcher *f, struct source *s)
{
	char dir[PATH_MAX];
	struct stat st;
	char *slash;

	if (s->kind != SRC_PATH || f->ino_fd < 0 || s->wd >= 0)
		return;
	snprintf(dir, sizeof(dir), "%s", s->path);
	/*
	 * A file is watched through its directory: editors and the kubelet
	 * replace files by rename (ConfigMaps swap a "..data" symlink), which a
	 * watch on the file itself would miss. Any event there only makes the
	 * worker stat the file; it reads it when its fingerprint changed.
	 */
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		slash = strrchr(dir, '/');
		if (!slash)
			return;
		slash[slash == dir ? 1 : 0] = '\0';
	}
	s->wd = inotify_add_watch(f->ino_fd, dir,
				  IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
					  IN_DELETE | IN_ATTRIB | IN_ONLYDIR);
}

static void on_inotify(struct zt_feed_fetcher *f)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t now = mono_ns(), soon = now + f->debounce_ns;

	for (;;) {
		ssize_t n = read(f->ino_fd, buf, sizeof(buf));

		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			pthread_mutex_lock(&f->mu);
			for (unsigned int i = 0; i < f->n; i++) {
				struct source *s = &f->src[i];

				/* An overflowed queue lost events: every file source looks again. */
				if (s->wd != ev->wd &&
				    !((ev->mask & IN_Q_OVERFLOW) && s->kind == SRC_PATH))
					continue;
				if ((ev->mask & IN_IGNORED) && s->wd == ev->wd)
					s->wd = -1;
				/*
				 * A file renamed into place is whole: read at once. Other
				 * events may be a write still going on: after a pause.
				 */
				if (s->due_ns > ((ev->mask & IN_MOVED_TO) ? now : soon))
					s->due_ns = (ev->mask & IN_MOVED_TO) ? now : soon;
			}
			pthread_mutex_unlock(&f->mu);
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* ------------------------------------------------------------ files, dirs */

struct attempt {
	struct zt_feed_body body;
	struct feed_meta meta; /* validators of what was fetched */
	bool unchanged;
	bool permanent; /* a quick retry cannot help */
	long status;
	char msg[512];
};

/* Reads an open regular file of size st into a new part; -EFBIG past max. */
static int read_part(int fd, const struct stat *st, const char *name, struct zt_feed_body *b,
		     uint64_t max)
{
	size_t start = b->total, got = 0;
	int err;

	if (b->total + (uint64_t)st->st_size > max)
		return -EFBIG;
	err = feed_body_add(b, name, NULL, 0, max);
	if (err)
		return err;
	/* Read to EOF, not to st_size: a file may grow while it is read. */
	for (;;) {
		ssize_t r;

		err = feed_body_reserve(b, 65536);
		if (err)
			return err;
		r = read(fd, b->store + start + got, b->store_cap - start - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		got += (size_t)r;
		b->total += (size_t)r;
		b->parts[b->n_parts - 1].len = got;
		if (b->total > max)
			return -EFBIG;
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files a directory feed reads: regular, not hidden, names without control bytes. */
static bool wanted_name(const char *n)
{
	if (n[0] == '.')
		return false;
	for (const unsigned char *p = (const unsigned char *)n; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		*h ^= c[i];
		*h *= 1099511628211ULL;
	}
}

static void mix_stat(uint64_t *h, const struct stat *st)
{
	mix(h, &st->st_dev, sizeof(st->st_dev));
	mix(h, &st->st_ino, sizeof(st->st_ino));
	mix(h, &st->st_size, sizeof(st->st_size));
	mix(h, &st->st_mtim, sizeof(st->st_mtim));
	mix(h, &st->st_ctim, sizeof(st->st_ctim));
}

static int open_regular(int dirfd, const char *name, struct stat *st)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int fetch_dir(struct source *s, int dfd, bool conditional, struct attempt *a)
{
	uint64_t h = 1469598103934665603ULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = fdopendir(dfd);
	if (!d) {
		err = -errno;
		close(dfd);
		zt_seterr(a->msg, sizeof(a->msg), "%s: cannot list: %s", s->path, strerror(-err));
		return err;
	}
	while ((de = readdir(d))) {
		if (!wanted_name(de->d_name))
			continue;
		if (n == FEED_DIR_FILES_MAX) {
			err = -E2BIG;
			a->permanent = true;
			zt_seterr(a->msg, sizeof(a->msg), "%s: more than %d files", s->path,
				  FEED_DIR_FILES_MAX);
			goto out;
		}
		err = zt_grow((void **)&names, &cap, n + 1, sizeof(*names));
		if (!err && !(names[n] = strdup(de->d_name)))
			err = -ENOMEM;
		if (err)
			goto out;
		n++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	/* The fingerprint first, from stat alone: an unchanged directory costs no reads. */
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (fstatat(dirfd(d), names[i], &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		mix(&h, names[i], strlen(names[i]) + 1);
		mix_stat(&h, &st);
	}
	snprintf(a->meta.fingerprint, sizeof(a->meta.fingerprint), "d:%016llx",
		 (unsigned long long)h);
	if (conditional && !strcmp(a->meta.fingerprint, s->good.fingerprint)) {
		a->unchanged = true;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int fd = open_regular(dirfd(d), names[i], &st);

		if (fd < 0) {
			if (fd == -ENOENT)
				continue; /* removed since listed */
			err = fd;
			zt_seterr(a->msg, sizeof(a->msg), "%s/%s: cannot open: %s", s->path,
				  names[i], strerror(-err));
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		err = read_part(fd, &st, names[i], &a->body, s->cfg.max_bytes);
		close(fd);
		if (err) {
			a->permanent = err == -EFBIG;
			zt_seterr(a->msg, sizeof(a->msg), "%s/%s: %s", s->path, names[i],
				  err == -EFBIG ? "the directory's files are over max_bytes" :
						  strerror(-err));
			goto out;
		}
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return err;
}

static int fetch_path(struct source *s, bool conditional, struct attempt *a)
{
	struct stat st;
	uint64_t h = 1469598103934665603ULL;
	int fd, err;

	fd = open_regular(AT_FDCWD, s->path, &st);
	if (fd < 0) {
		a->permanent = fd == -ENOENT || fd == -EACCES;
		zt_seterr(a->msg, sizeof(a->msg), "%s: cannot open: %s", s->path, strerror(-fd));
		return fd;
	}
	if (S_ISDIR(st.st_mode)) {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		close(fd);
		if (dfd < 0) {
			err = -errno;
			zt_seterr(a->msg, sizeof(a->msg), "%s: cannot open: %s", s->path,
				  strerror(-err));
			return err;
		}
		return fetch_dir(s, dfd, conditional, a);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		a->permanent = true;
		zt_seterr(a->msg, sizeof(a->msg), "%s: not a regular file or a directory", s->path);
		return -EINVAL;
	}
	mix_stat(&h, &st);
	snprintf(a->meta.fingerprint, sizeof(a->meta.fingerprint), "f:%016llx",
		 (unsigned long long)h);
	if (conditional && !strcmp(a->meta.fingerprint, s->good.fingerprint)) {
		close(fd);
		a->unchanged = true;
		return 0;
	}
	err = read_part(fd, &st, "", &a->body, s->cfg.max_bytes);
	close(fd);
	if (err) {
		a->permanent = err == -EFBIG;
		if (err == -EFBIG)
			zt_seterr(a->msg, sizeof(a->msg), "%s: larger than max_bytes (%llu)",
				  s->path, (unsigned long long)s->cfg.max_bytes);
		else
			zt_seterr(a->msg, sizeof(a->msg), "%s: cannot read: %s", s->path,
				  strerror(-err));
	}
	return err;
}

/* ------------------------------------------------------------------- http */

struct xfer {
	struct zt_feed_fetcher *f;
	struct source *s;
	struct attempt *a;
	bool too_big;
	int oom;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct xfer *x = ctx;
	struct zt_feed_body *b = &x->a->body;
	size_t n = size * nmemb;

	if (b->total + n > x->s->cfg.max_bytes) {
		x->too_big = true;
		return 0; /* CURLE_WRITE_ERROR: the transfer stops here */
	}
	x->oom = feed_body_reserve(b, n);
	if (x->oom)
		return 0;
	memcpy(b->store + b->total, p, n);
	b->total += n;
	b->parts[0].len += n;
	return n;
}

/* A header's value when name matches: trimmed, printable ASCII only, else "". */
static bool header(const char *p, size_t n, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), o = 0;

	if (n <= nl || strncasecmp(p, name, nl) || p[nl] != ':')
		return false;
	p += nl + 1;
	n -= nl + 1;
	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	out[0] = '\0';
	if (n >= cap)
		return true;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
			return true;
		out[o++] = p[i];
	}
	out[o] = '\0';
	return true;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct xfer *x = ctx;
	size_t n = size * nmemb;

	/* A new response (a redirect, a 100 Continue): forget the previous one's validators. */
	if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
		x->a->meta.etag[0] = '\0';
		x->a->meta.last_modified[0] = '\0';
		return n;
	}
	if (!header(p, n, "etag", x->a->meta.etag, sizeof(x->a->meta.etag)))
		header(p, n, "last-modified", x->a->meta.last_modified,
		       sizeof(x->a->meta.last_modified));
	return n;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = ctx;

	return atomic_load(&x->f->stopping) ? 1 : 0;
}

/*
 * curl_easy_perform() through the multi interface, so that stop interrupts
 * a transfer at once (curl_multi_wakeup) instead of at the next progress
 * callback, up to a second later.
 */
static CURLcode perform(struct zt_feed_fetcher *f, CURL *c)
{
	CURLcode rc = CURLE_FAILED_INIT;
	CURLMcode mc;
	CURLMsg *m;
	int running = 1, q;

	if (curl_multi_add_handle(f->multi, c) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running) {
		if (atomic_load(&f->stopping)) {
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		mc = curl_multi_perform(f->multi, &running);
		if (mc == CURLM_OK && running)
			mc = curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK) {
			rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
			break;
		}
	}
	while ((m = curl_multi_info_read(f->multi, &q)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == c)
			rc = m->data.result;
	curl_multi_remove_handle(f->multi, c);
	return rc;
}

static bool curl_transient(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static int fetch_http(struct zt_feed_fetcher *f, struct source *s, bool conditional,
		      struct attempt *a)
{
	struct xfer x = { .f = f, .s = s, .a = a };
	struct curl_slist *hdrs = NULL, *h;
	char line[FEED_DATE_MAX + FEED_ETAG_MAX], errbuf[CURL_ERROR_SIZE] = "";
	bool https = !strncmp(s->cfg.url, "https://", 8);
	long timeout_ms = (long)(s->cfg.timeout_ns / NS_MS);
	CURL *c = f->curl;
	CURLcode rc;
	int err;

	err = feed_body_add(&a->body, "", NULL, 0, s->cfg.max_bytes);
	if (err) {
		zt_seterr(a->msg, sizeof(a->msg), "out of memory");
		return err;
	}
	if (conditional && s->good.etag[0]) {
		snprintf(line, sizeof(line), "If-None-Match: %s", s->good.etag);
		h = curl_slist_append(hdrs, line);
		hdrs = h ? h : hdrs;
	}
	if (conditional && s->good.last_modified[0]) {
		snprintf(line, sizeof(line), "If-Modified-Since: %s", s->good.last_modified);
		h = curl_slist_append(hdrs, line);
		hdrs = h ? h : hdrs;
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, s->cfg.url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* An https feed never follows a redirect to plain http. */
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->cfg.ca_bundle[0]) {
		/* The feed's CA bundle replaces the system's, it does not add to it. */
		curl_easy_setopt(c, CURLOPT_CAINFO, s->cfg.ca_bundle);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ztagent-feeds/1");
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->cfg.max_bytes);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	rc = perform(f, c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);

	if (rc != CURLE_OK) {
		if (x.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
			err = -EFBIG;
			zt_seterr(a->msg, sizeof(a->msg), "%s: larger than max_bytes (%llu)",
				  s->cfg.url, (unsigned long long)s->cfg.max_bytes);
		} else if (x.oom) {
			err = x.oom;
			zt_seterr(a->msg, sizeof(a->msg), "%s: out of memory", s->cfg.url);
		} else {
			err = rc == CURLE_OPERATION_TIMEDOUT  ? -ETIMEDOUT :
			      rc == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED :
			      rc == CURLE_PEER_FAILED_VERIFICATION ||
					      rc == CURLE_SSL_CACERT_BADFILE ?
								-EKEYREJECTED :
								-EIO;
			zt_seterr(a->msg, sizeof(a->msg), "%s: %s%s%s", s->cfg.url,
				  curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
		}
		a->permanent = !curl_transient(rc);
		return err;
	}
	if (a->status == 304 && conditional) {
		a->unchanged = true;
		return 0;
	}
	if (a->status != 200) {
		a->permanent = a->status != 408 && a->status != 429 && a->status < 500;
		zt_seterr(a->msg, sizeof(a->msg), "%s: HTTP status %ld", s->cfg.url, a->status);
		return a->status == 404 ? -ENOENT : -EPROTO;
	}
	return 0;
}

/* ---------------------------------------------------------------- worker */

static void push(struct zt_feed_fetcher *f, struct completion *c)
{
	pthread_mutex_lock(&f->mu);
	c->next = NULL;
	if (f->tail)
		f->tail->next = c;
	else
		f->head = c;
	f->tail = c;
	f->src[c->d.index].queued = true;
	pthread_mutex_unlock(&f->mu);
	kick(f->done_fd);
}

/* Runs work on a body; 0 accepts it. */
static int judge(struct zt_feed_fetcher *f, unsigned int i, struct zt_feed_body *b, void **work,
		 char *msg, size_t msglen)
{
	*work = NULL;
	if (!b->total) {
		zt_seterr(msg, msglen, "%s: the content is empty; the last good content stays",
			  f->src[i].cfg.url);
		return -ENODATA;
	}
	if (!f->work)
		return 0;
	return f->work(f->work_ctx, i, &f->src[i].cfg, b, work, msg, msglen);
}

static void load_cache(struct zt_feed_fetcher *f, unsigned int i)
{
	struct source *s = &f->src[i];
	struct completion *c;
	struct feed_meta m;
	int err;

	if (!f->state_dir[0])
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->d.index = i;
	c->d.name = s->cfg.name;
	err = feed_cache_load(f->state_dir, s->cfg.name, s->cfg.max_bytes, &m, &c->body, c->d.msg,
			      sizeof(c->d.msg));
	if (err == -ENOENT) {
		free(c);
		return;
	}
	if (!err &&
	    (strcmp(m.url, s->cfg.url) || strcmp(m.format, zt_feed_format_name(s->cfg.format)))) {
		/* Another source under this name now: its old copy must not stand in. */
		zt_feed_body_free(&c->body);
		free(c);
		return;
	}
	if (!err) {
		char why[sizeof(c->d.msg) - 64];

		why[0] = '\0';
		err = judge(f, i, &c->body, &c->d.work, why, sizeof(why));
		if (err)
			zt_seterr(c->d.msg, sizeof(c->d.msg), "saved copy from %llu refused: %s",
				  (unsigned long long)m.saved_unix, why);
	}
	if (err) {
		c->d.outcome = ZT_FEED_FAILED;
		c->d.err = err;
		zt_feed_body_free(&c->body);
	} else {
		s->good = m;
		s->have_good = true;
		s->last_good_unix = m.saved_unix;
		c->d.outcome = ZT_FEED_CACHED;
		c->d.body = &c->body;
		c->d.bytes = c->body.total;
	}
	c->d.last_good_unix = s->last_good_unix;
	push(f, c);
}

static void attempt(struct zt_feed_fetcher *f, unsigned int i, bool force)
{
	struct source *s = &f->src[i];
	bool conditional = s->have_good && !force;
	uint64_t t0 = mono_ns(), next;
	struct attempt *a;
	struct completion *c;
	int err;

	a = calloc(1, sizeof(*a));
	c = calloc(1, sizeof(*c));
	if (!a || !c) {
		free(a);
		free(c);
		pthread_mutex_lock(&f->mu);
		s->due_ns = t0 + f->retry_base_ns;
		pthread_mutex_unlock(&f->mu);
		return;
	}
	watch(f, s);
	snprintf(a->meta.url, sizeof(a->meta.url), "%s", s->cfg.url);
	snprintf(a->meta.format, sizeof(a->meta.format), "%s", zt_feed_format_name(s->cfg.format));
	err = s->kind == SRC_HTTP ? fetch_http(f, s, conditional, a) :
				    fetch_path(s, conditional, a);
	if (!err && !a->unchanged)
		err = feed_body_seal(&a->body);
	/* The same bytes under new validators (a server without ETags): nothing to apply. */
	if (!err && !a->unchanged && s->have_good && !force &&
	    !memcmp(a->body.digest, s->good.digest, sizeof(a->body.digest))) {
		a->unchanged = true;
		memcpy(a->meta.digest, s->good.digest, sizeof(a->meta.digest));
		a->meta.saved_unix = s->good.saved_unix;
		s->good = a->meta;
	}
	if (!err && !a->unchanged) {
		err = judge(f, i, &a->body, &c->d.work, a->msg, sizeof(a->msg));
		if (err)
			a->permanent = true;
	}

	c->d.index = i;
	c->d.name = s->cfg.name;
	c->d.http_status = a->status;
	c->d.attempt_ns = mono_ns() - t0;
	if (err) {
		s->failures++;
		c->d.outcome = ZT_FEED_FAILED;
		c->d.err = err;
		c->d.failures = s->failures;
		zt_seterr(c->d.msg, sizeof(c->d.msg), "%s", a->msg[0] ? a->msg : strerror(-err));
		c->d.will_retry = !a->permanent && s->failures <= s->cfg.retries;
		next = c->d.will_retry ?
			       jitter(f,
				      f->retry_base_ns
					      << (s->failures - 1 < 20 ? s->failures - 1 : 20),
				      80, 120) :
			       jitter(f, s->cfg.refresh_ns, 100, 105);
		if (c->d.will_retry && next > s->cfg.refresh_ns)
			next = s->cfg.refresh_ns;
	} else {
		s->failures = 0;
		next = jitter(f, s->cfg.refresh_ns, 100, 105);
		if (a->unchanged) {
			c->d.outcome = ZT_FEED_UNCHANGED;
		} else {
			int serr;

			a->meta.saved_unix = zt_now_unix();
			memcpy(a->meta.digest, a->body.digest, sizeof(a->meta.digest));
			s->good = a->meta;
			s->have_good = true;
			s->last_good_unix = a->meta.saved_unix;
			c->d.outcome = ZT_FEED_NEW;
			c->d.bytes = a->body.total;
			c->body = a->body;
			memset(&a->body, 0, sizeof(a->body));
			c->d.body = &c->body;
			if (f->state_dir[0]) {
				serr = feed_cache_save(f->state_dir, s->cfg.name, &s->good,
						       &c->body);
				if (serr)
					zt_seterr(
						c->d.msg, sizeof(c->d.msg),
						"applied, but the copy in %s/%s.cache could not be saved: %s; a restart will wait for a fetch",
						f->state_dir, s->cfg.name, strerror(-serr));
			}
		}
	}
	c->d.last_good_unix = s->last_good_unix;
	c->d.next_mono_ns = mono_ns() + next;
	pthread_mutex_lock(&f->mu);
	/* A refresh asked for while this attempt ran keeps its earlier time. */
	if (s->due_ns <= t0 || s->due_ns > c->d.next_mono_ns)
		s->due_ns = c->d.next_mono_ns;
	pthread_mutex_unlock(&f->mu);
	zt_feed_body_free(&a->body);
	free(a);
	push(f, c);
}

static void *worker(void *arg)
{
	struct zt_feed_fetcher *f = arg;

	for (unsigned int i = 0; i < f->n && !atomic_load(&f->stopping); i++) {
		load_cache(f, i);
		watch(f, &f->src[i]);
	}
	while (!atomic_load(&f->stopping)) {
		struct pollfd pfd[2] = {
			{ .fd = f->wake_fd, .events = POLLIN },
			{ .fd = f->ino_fd, .events = POLLIN },
		};
		uint64_t now = mono_ns(), best = UINT64_MAX;
		int pick = -1, timeout;
		bool force = false;

		pthread_mutex_lock(&f->mu);
		for (unsigned int i = 0; i < f->n; i++)
			if (!f->src[i].queued && f->src[i].due_ns < best) {
				best = f->src[i].due_ns;
				pick = (int)i;
			}
		if (pick >= 0 && best <= now) {
			force = f->src[pick].force;
			f->src[pick].force = false;
		}
		pthread_mutex_unlock(&f->mu);
		if (pick >= 0 && best <= now) {
			attempt(f, (unsigned int)pick, force);
			continue;
		}
		timeout = pick < 0			     ? -1 :
			  (best - now) / NS_MS + 1 > INT_MAX ? INT_MAX :
							       (int)((best - now) / NS_MS + 1);
		if (poll(pfd, f->ino_fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			drain(f->wake_fd);
		if (f->ino_fd >= 0 && (pfd[1].revents & POLLIN))
			on_inotify(f);
	}
	return NULL;
}

/* ----------------------------------------------------------------- public */

int zt_feed_fetcher_fd(const struct zt_feed_fetcher *f)
{
	return f->done_fd;
}

int zt_feed_fetcher_dispatch(struct zt_feed_fetcher *f)
{
	struct completion *list, *c;
	int n = 0;

	drain(f->done_fd);
	pthread_mutex_lock(&f->mu);
	list = f->head;
	f->head = f->tail = NULL;
	pthread_mutex_unlock(&f->mu);
	while ((c = list)) {
		list = c->next;
		if (f->done)
			f->done(f->done_ctx, &c->d);
		else if (c->d.work && f->work_free)
			f->work_free(f->work_ctx, c->d.work);
		pthread_mutex_lock(&f->mu);
		f->src[c->d.index].queued = false;
		pthread_mutex_unlock(&f->mu);
		zt_feed_body_free(&c->body);
		free(c);
		n++;
	}
	if (n)
		kick(f->wake_fd);
	return n;
}

int zt_feed_fetcher_refresh(struct zt_feed_fetcher *f, int index, bool force)
{
	if (index >= (int)f->n || index < -1)
		return -ENOENT;
	pthread_mutex_lock(&f->mu);
	for (unsigned int i = 0; i < f->n; i++) {
		if (index >= 0 && (unsigned int)index != i)
			continue;
		f->src[i].due_ns = 0;
		f->src[i].force |= force;
	}
	pthread_mutex_unlock(&f->mu);
	kick(f->wake_fd);
	return 0;
}

void zt_feed_fetcher_stop(struct zt_feed_fetcher *f)
{
	struct completion *c;

	if (!f)
		return;
	if (f->started) {
		atomic_store(&f->stopping, true);
		kick(f->wake_fd);
		curl_multi_wakeup(f->multi);
		pthread_join(f->thr, NULL);
	}
	while ((c = f->head)) {
		f->head = c->next;
		if (c->d.work && f->work_free)
			f->work_free(f->work_ctx, c->d.work);
		zt_feed_body_free(&c->body);
		free(c);
	}
	if (f->curl)
		curl_easy_cleanup(f->curl);
	if (f->multi)
		curl_multi_cleanup(f->multi);
	if (f->wake_fd >= 0)
		close(f->wake_fd);
	if (f->done_fd >= 0)
		close(f->done_fd);
	if (f->ino_fd >= 0)
		close(f->ino_fd);
	pthread_mutex_destroy(&f->mu);
	free(f->src);
	free(f);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	/* Not thread-safe in older libcurl, and process-wide: once, before any worker. */
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int zt_feed_fetcher_init(struct zt_feed_fetcher **out, const struct zt_feed_fetcher_opts *o,
			 char *err, size_t errlen)
{
	struct zt_feed_fetcher *f;
	int r = 0;

	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		zt_seterr(err, errlen, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return -EIO;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	f->wake_fd = f->done_fd = f->ino_fd = -1;
	pthread_mutex_init(&f->mu, NULL);
	f->n = o->n_feeds;
	f->src = calloc(o->n_feeds ? o->n_feeds : 1, sizeof(*f->src));
	if (!f->src) {
		r = -ENOMEM;
		zt_seterr(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned int i = 0; i < f->n; i++) {
		struct source *s = &f->src[i];

		s->cfg = o->feeds[i];
		s->wd = -1;
		if (!strncmp(s->cfg.url, "https://", 8) || !strncmp(s->cfg.url, "http://", 7)) {
			s->kind = SRC_HTTP;
		} else if (!strncmp(s->cfg.url, "file://", 7)) {
			s->kind = SRC_PATH;
			s->path = s->cfg.url + 7;
		} else if (s->cfg.url[0] == '/') {
			s->kind = SRC_PATH;
			s->path = s->cfg.url;
		} else {
			r = -EINVAL;
			zt_seterr(err, errlen,
				  "feed %s: url '%s' is not https://, http://, file:// or a path",
				  s->cfg.name, s->cfg.url);
			goto fail;
		}
	}
	f->work = o->work;
	f->work_ctx = o->work_ctx;
	f->work_free = o->work_free;
	f->done = o->done;
	f->done_ctx = o->done_ctx;
	f->retry_base_ns = o->retry_base_ns ? o->retry_base_ns : NS_S;
	f->debounce_ns = o->debounce_ns ? o->debounce_ns : 100 * NS_MS;
	if (getrandom(&f->rng, sizeof(f->rng), GRND_NONBLOCK) != sizeof(f->rng) || !f->rng)
		f->rng = mono_ns() | 1;
	if (o->state_dir && o->state_dir[0]) {
		if (snprintf(f->state_dir, sizeof(f->state_dir), "%s/feeds", o->state_dir) >=
		    (int)sizeof(f->state_dir)) {
			r = -ENAMETOOLONG;
			zt_seterr(err, errlen, "state_dir %s: too long", o->state_dir);
			goto fail;
		}
		r = zt_mkdir_p(f->state_dir, 0700);
		if (r) {
			zt_seterr(err, errlen, "%s: cannot create: %s", f->state_dir, strerror(-r));
			goto fail;
		}
	}
	f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->wake_fd < 0 || f->done_fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "eventfd: %s", strerror(-r));
		goto fail;
	}
	/* Without inotify, files are still read every refresh. */
	f->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	f->curl = curl_easy_init();
	f->multi = curl_multi_init();
	if (!f->curl || !f->multi) {
		r = -ENOMEM;
		zt_seterr(err, errlen, "libcurl: cannot create a handle");
		goto fail;
	}
	r = -pthread_create(&f->thr, NULL, worker, f);
	if (r) {
		zt_seterr(err, errlen, "cannot start the feed thread: %s", strerror(-r));
		goto fail;
	}
	f->started = true;
	pthread_setname_np(f->thr, "zt-feeds");
	*out = f;
	return 0;
fail:
	zt_feed_fetcher_stop(f);
	return r;
}
