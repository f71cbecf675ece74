// SPDX-License-Identifier: GPL-2.0-only
/* PostgreSQL: migrations, partition maintenance, binary COPY of flow records. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "records/db.h"
#include "agent/util.h"

/* pg_advisory_xact_lock key of migrations: "ztmigr" */
#define ZT_MIGRATE_LOCK 0x7a746d696772LL

void zt_sha256_hex(const void *s, size_t n, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL))
		len = 0;
	for (unsigned int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", i < len ? md[i] : 0);
	hex[64] = '\0';
}

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* libpq messages end in a newline and may span lines: keep one line. */
static void one_line(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

static void pgerr(char *err, size_t errlen, PGconn *c, const PGresult *r, const char *what)
{
	char msg[512];
	const char *m = r ? PQresultErrorMessage(r) : "";

	if (!m || !*m)
		m = PQerrorMessage(c);
	snprintf(msg, sizeof(msg), "%s", m && *m ? m : "unknown error");
	one_line(msg);
	zt_seterr(err, errlen, "%s: %s", what, msg);
}

/* One conninfo option's value in force on c ("" when unset). */
static const char *conn_opt(PQconninfoOption *opts, const char *key)
{
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, key))
			return o->val ? o->val : "";
	return "";
}

/*
 * The options parameter: the user's (conninfo, else PGOPTIONS) with
 * statement_timeout added unless they set one. NULL: leave options alone.
 */
static char *merged_options(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *user = NULL;
	char *out = NULL;

	if (!opts)
		return NULL; /* unparseable: libpq will say why when connecting */
	user = conn_opt(opts, "options");
	if (!*user)
		user = getenv("PGOPTIONS") ? getenv("PGOPTIONS") : "";
	if (!strstr(user, "statement_timeout") &&
	    asprintf(&out, "%s%s-c statement_timeout=%d", user, *user ? " " : "",
		     ZT_DB_STATEMENT_TIMEOUT_MS) < 0)
		out = NULL;
	PQconninfoFree(opts);
	return out;
}

static bool aborted(const atomic_bool *abort)
{
	return abort && atomic_load(abort);
}

int zt_db_connect_abortable(const char *conninfo, const atomic_bool *abort, PGconn **out, char *err,
			    size_t errlen)
{
	/*
	 * Defaults before the user's conninfo (expanded from dbname), so theirs
	 * win; options after it, since it already carries theirs.
	 */
	static const char *const kw[] = { "connect_timeout",
					  "keepalives",
					  "keepalives_idle",
					  "keepalives_interval",
					  "keepalives_count",
					  "tcp_user_timeout",
					  "dbname",
					  "options",
					  NULL };
	char *options = merged_options(conninfo ? conninfo : "");
	const char *val[] = { getenv("PGCONNECT_TIMEOUT") ? "" : ZT_DB_CONNECT_TIMEOUT_S,
			      "1",
			      "30",
			      "10",
			      "3",
			      ZT_DB_TCP_USER_TIMEOUT_MS,
			      conninfo ? conninfo : "",
			      options ? options : "",
			      NULL };
	PGconn *c = PQconnectStartParams(kw, val, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PQconninfoOption *in_force;
	uint64_t deadline = 0;
	int ret = 0, timeout_s = 0;

	free(options);
	if (!c) {
		zt_seterr(err, errlen, "database connect: out of memory");
		return -ENOMEM;
	}
	if (PQstatus(c) == CONNECTION_BAD) {
		pgerr(err, errlen, c, NULL, "database connect");
		ret = -ECONNREFUSED;
		goto out;
	}
	/* PQconnectPoll leaves connect_timeout to its caller: the whole attempt here. */
	in_force = PQconninfo(c);
	timeout_s = atoi(conn_opt(in_force, "connect_timeout"));
	PQconninfoFree(in_force);
	if (timeout_s > 0)
		deadline = zt_now_mono_ns() +
			   (uint64_t)(timeout_s < 2 ? 2 : timeout_s) * 1000000000ULL;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { .fd = PQsocket(c),
				      .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT };

		if (aborted(abort)) {
			zt_seterr(err, errlen,
				  "database connect: abandoned (the agent is stopping)");
			ret = -ECANCELED;
			goto out;
		}
		if (deadline && zt_now_mono_ns() >= deadline) {
			zt_seterr(err, errlen,
				  "database connect: no answer within %d s (connect_timeout)",
				  timeout_s);
			ret = -ETIMEDOUT;
			goto out;
		}
		/* Short waits: the abort flag is looked at 10 times a second. */
		if (pfd.fd >= 0 && poll(&pfd, 1, 100) == 0)
			continue;
		st = PQconnectPoll(c);
	}
	if (st == PGRES_POLLING_FAILED || PQstatus(c) != CONNECTION_OK) {
		pgerr(err, errlen, c, NULL, "database connect");
		ret = -ECONNREFUSED;
		goto out;
	}
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	*out = c;
	return 0;
out:
	PQfinish(c);
	return ret;
}

int zt_db_connect(const char *conninfo, PGconn **out, char *err, size_t errlen)
{
	return zt_db_connect_abortable(conninfo, NULL, out, err, errlen);
}

void zt_db_interrupt(int fd)
{
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* Runs one command expecting `want`; on error rolls back nothing (caller does). */
static int exec_ok(PGconn *c, const char *sql, ExecStatusType want, const char *what, char *err,
		   size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	int ret = 0;

	if (PQresultStatus(r) != want) {
		pgerr(err, errlen, c, r, what);
		ret = PQstatus(c) == CONNECTION_OK ? -EINVAL : -EIO;
	}
	PQclear(r);
	return ret;
}

static void rollback(PGconn *c)
{
	if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
		PQclear(PQexec(c, "ROLLBACK"));
}

/* --- migrations --- */

struct mig_set {
	struct zt_db_migration *m;
	size_t n;
	char **bufs; /* owned texts and names when read from a directory */
	size_t nbufs;
};

static void mig_set_free(struct mig_set *s)
{
	for (size_t i = 0; i < s->nbufs; i++)
		free(s->bufs[i]);
	free(s->bufs);
	free(s->m);
}

static int is_migration_name(const char *n)
{
	size_t len = strlen(n);

	return len > 8 && n[0] >= '0' && n[0] <= '9' && n[1] >= '0' && n[1] <= '9' && n[2] >= '0' &&
	       n[2] <= '9' && n[3] == '_' && !strcmp(n + len - 4, ".sql");
}

static int read_file_all(const char *path, char **out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;

		zt_seterr(err, errlen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		zt_seterr(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r <= 0) {
			int e = r < 0 ? errno : EIO;

			zt_seterr(err, errlen, "%s: read: %s", path, strerror(e));
			free(buf);
			close(fd);
			return -e;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
	*out = buf;
	return 0;
}

static int load_dir(const char *dir, struct mig_set *s, char *err, size_t errlen)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), ret = 0;

	if (n < 0) {
		int e = errno;

		zt_seterr(err, errlen, "migrations directory %s: %s", dir, strerror(e));
		return -e;
	}
	s->m = calloc((size_t)n + 1, sizeof(*s->m));
	s->bufs = calloc(2 * (size_t)n + 1, sizeof(*s->bufs));
	if (!s->m || !s->bufs)
		ret = -ENOMEM;
	for (int i = 0; i < n && !ret; i++) {
		char path[4096], *text = NULL, *name;

		if (!is_migration_name(ents[i]->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		ret = read_file_all(path, &text, err, errlen);
		if (ret)
			break;
		s->bufs[s->nbufs++] = text;
		name = strndup(ents[i]->d_name, strlen(ents[i]->d_name) - 4);
		if (!name) {
			ret = -ENOMEM;
			break;
		}
		s->bufs[s->nbufs++] = name;
		s->m[s->n].version = atoi(name);
		s->m[s->n].name = name;
		s->m[s->n].sql = text;
		if (s->n && s->m[s->n - 1].version == s->m[s->n].version) {
			zt_seterr(err, errlen,
				  "migrations directory %s: two migrations numbered %03d", dir,
				  s->m[s->n].version);
			ret = -EINVAL;
		}
		s->n++;
	}
	if (ret == -ENOMEM)
		zt_seterr(err, errlen, "migrations directory %s: out of memory", dir);
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return ret;
}

int zt_db_migrate_conn(PGconn *c, const char *dir, int *applied, char *err, size_t errlen)
{
	struct mig_set set = { 0 };
	const struct zt_db_migration *ms = zt_db_migrations;
	size_t nm = zt_db_n_migrations;
	PGresult *r = NULL;
	char q[128];
	int ret, done = 0;

	if (dir) {
		ret = load_dir(dir, &set, err, errlen);
		if (ret) {
			mig_set_free(&set);
			return ret;
		}
		ms = set.m;
		nm = set.n;
	}
	ret = exec_ok(c, "BEGIN", PGRES_COMMAND_OK, "migrate: BEGIN", err, errlen);
	if (ret)
		goto out;
	/* A migration may rewrite a large table: the connection's statement_timeout is not for it. */
	ret = exec_ok(c, "SET LOCAL statement_timeout = 0", PGRES_COMMAND_OK,
		      "migrate: statement_timeout", err, errlen);
	if (ret)
		goto out;
	snprintf(q, sizeof(q), "SELECT pg_advisory_xact_lock(%lld)", ZT_MIGRATE_LOCK);
	ret = exec_ok(c, q, PGRES_TUPLES_OK, "migrate: advisory lock", err, errlen);
	if (ret)
		goto out;
	ret = exec_ok(c,
		      "CREATE TABLE IF NOT EXISTS schema_migrations ("
		      "version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, "
		      "applied_at timestamptz NOT NULL DEFAULT now())",
		      PGRES_COMMAND_OK, "migrate: schema_migrations", err, errlen);
	if (ret)
		goto out;
	for (size_t i = 0; i < nm; i++) {
		char hex[65], ver[16], what[160];
		const char *params[3] = { ver, ms[i].name, hex };

		zt_sha256_hex(ms[i].sql, strlen(ms[i].sql), hex);
		snprintf(ver, sizeof(ver), "%d", ms[i].version);
		r = PQexecParams(c, "SELECT name, sha256 FROM schema_migrations WHERE version = $1",
				 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			pgerr(err, errlen, c, r, "migrate: reading schema_migrations");
			ret = PQstatus(c) == CONNECTION_OK ? -EINVAL : -EIO;
			goto out;
		}
		if (PQntuples(r) == 1) {
			if (strcmp(PQgetvalue(r, 0, 1), hex)) {
				zt_seterr(
					err, errlen,
					"migrate: migration %s was applied with sha256 %.12s..., "
					"this one has %.12s...: the file changed after it was applied",
					ms[i].name, PQgetvalue(r, 0, 1), hex);
				ret = -EINVAL;
				goto out;
			}
			PQclear(r);
			r = NULL;
			continue;
		}
		PQclear(r);
		r = PQexec(c, ms[i].sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(what, sizeof(what), "migrate: applying %s", ms[i].name);
			pgerr(err, errlen, c, r, what);
			ret = PQstatus(c) == CONNECTION_OK ? -EINVAL : -EIO;
			goto out;
		}
		PQclear(r);
		r = PQexecParams(c,
				 "INSERT INTO schema_migrations (version, name, sha256) "
				 "VALUES ($1, $2, $3)",
				 3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pgerr(err, errlen, c, r, "migrate: recording in schema_migrations");
			ret = PQstatus(c) == CONNECTION_OK ? -EINVAL : -EIO;
			goto out;
		}
		PQclear(r);
		r = NULL;
		done++;
	}
	ret = exec_ok(c, "COMMIT", PGRES_COMMAND_OK, "migrate: COMMIT", err, errlen);
out:
	PQclear(r);
	if (ret)
		rollback(c);
	else if (applied)
		*applied = done;
	mig_set_free(&set);
	return ret;
}

int zt_db_migrate(const char *conninfo, const char *dir, int *applied, char *err, size_t errlen)
{
	PGconn *c;
	int ret = zt_db_connect(conninfo, &c, err, errlen);

	if (ret)
		return ret;
	ret = zt_db_migrate_conn(c, dir, applied, err, errlen);
	PQfinish(c);
	return ret;
}

int zt_db_maintain(PGconn *c, unsigned int retention_months, unsigned int ahead_months,
		   int *created, int *dropped, char *err, size_t errlen)
{
	char a[16], b[16];
	const char *params[2] = { a, b };
	PGresult *r;
	int ret = 0;

	snprintf(a, sizeof(a), "%u", retention_months);
	snprintf(b, sizeof(b), "%u", ahead_months);
	r = PQexecParams(c,
			 "SELECT created, coalesce(array_length(dropped, 1), 0), "
			 "array_to_string(dropped, ' ') FROM zt_flows_maintain($1, $2)",
			 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		pgerr(err, errlen, c, r, "partition maintenance");
		ret = PQstatus(c) == CONNECTION_OK ? -EINVAL : -EIO;
	} else {
		if (created)
			*created = atoi(PQgetvalue(r, 0, 0));
		if (dropped)
			*dropped = atoi(PQgetvalue(r, 0, 1));
		/* The names dropped, for the caller's log line. */
		zt_seterr(err, errlen, "%s", PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return ret;
}

/* --- binary COPY --- */

void zt_buf_free(struct zt_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int zt_buf_reserve(struct zt_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void put(struct zt_buf *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put16(struct zt_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put(b, x, 2);
}

static void put32(struct zt_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	put(b, x, 4);
}

static void put64(struct zt_buf *b, uint64_t v)
{
	put32(b, (uint32_t)(v >> 32));
	put32(b, (uint32_t)v);
}

int zt_copy_begin(struct zt_buf *b)
{
	static const uint8_t sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };

	if (zt_buf_reserve(b, 19))
		return -ENOMEM;
	put(b, sig, sizeof(sig));
	put32(b, 0); /* flags: no OIDs */
	put32(b, 0); /* header extension length */
	return 0;
}

int zt_copy_end(struct zt_buf *b)
{
	if (zt_buf_reserve(b, 2))
		return -ENOMEM;
	put16(b, 0xffff);
	return 0;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629), 0 if invalid. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * A text field: length, then the bytes with invalid UTF-8 as \xNN. At most
 * max bytes of s, and at most maxchars characters as PostgreSQL counts them
 * (a \xNN escape is four), cut between characters.
 */
static int put_textn(struct zt_buf *b, const char *s, size_t max, size_t maxchars)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strnlen(s, max), at, chars = 0;

	if (zt_buf_reserve(b, 4 + 4 * n))
		return -ENOMEM;
	at = b->len;
	b->len += 4;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_len(p + i, n - i);

		if (k) {
			if (chars + 1 > maxchars)
				break;
			put(b, p + i, k);
			i += k;
			chars++;
		} else {
			char x[5];

			if (chars + 4 > maxchars)
				break;
			snprintf(x, sizeof(x), "\\x%02x", p[i]);
			put(b, x, 4);
			i++;
			chars += 4;
		}
	}
	{
		uint32_t len = (uint32_t)(b->len - at - 4);
		uint8_t *q = b->p + at;

		q[0] = (uint8_t)(len >> 24);
		q[1] = (uint8_t)(len >> 16);
		q[2] = (uint8_t)(len >> 8);
		q[3] = (uint8_t)len;
	}
	return 0;
}

static int put_text(struct zt_buf *b, const char *s)
{
	return put_textn(b, s, SIZE_MAX, SIZE_MAX);
}

static int put_textn_or_null(struct zt_buf *b, const char *s, size_t max, size_t maxchars)
{
	if (!*s) {
		if (zt_buf_reserve(b, 4))
			return -ENOMEM;
		put32(b, 0xffffffff);
		return 0;
	}
	return put_textn(b, s, max, maxchars);
}

char *zt_db_text_chars(const char *s, size_t maxchars)
{
	struct zt_buf b = { 0 };
	char *out;

	if (put_textn(&b, s, SIZE_MAX, maxchars)) {
		zt_buf_free(&b);
		return NULL;
	}
	out = malloc(b.len - 4 + 1);
	if (out) {
		memcpy(out, b.p + 4, b.len - 4);
		out[b.len - 4] = '\0';
	}
	zt_buf_free(&b);
	return out;
}

char *zt_db_text(const char *s)
{
	return zt_db_text_chars(s, SIZE_MAX);
}

/* Fixed fields of a record: never past the field, even without a NUL. */
#define put_field(b, f) put_textn(b, f, sizeof(f) - 1, SIZE_MAX)
#define put_field_or_null(b, f) put_textn_or_null(b, f, sizeof(f) - 1, SIZE_MAX)

/* Microseconds since 2000-01-01, wrapping instead of overflowing (the server range-checks). */
static int64_t pg_time(int64_t unix_us)
{
	return (int64_t)((uint64_t)unix_us - (uint64_t)ZT_PG_EPOCH_US);
}

/* PostgreSQL's inet binary form: family (2 = v4, 3 = v6), bits, is_cidr, nb, bytes. */
static void put_inet(struct zt_buf *b, int family, const uint8_t *a)
{
	size_t nb = family == AF_INET6 ? 16 : 4;
	uint8_t h[4] = { family == AF_INET6 ? 3 : 2, (uint8_t)(nb * 8), 0, (uint8_t)nb };

	put32(b, (uint32_t)(4 + nb));
	put(b, h, 4);
	put(b, a, nb);
}

static const char *const tcp_flag_names[8] = { "FIN", "SYN", "RST", "PSH",
					       "ACK", "URG", "ECE", "CWR" };

/* text[]: ndim, has-null, element type 25, [size, lower bound 1], elements. */
static void put_flags(struct zt_buf *b, uint8_t flags)
{
	int n = __builtin_popcount(flags);
	size_t at = b->len;

	put32(b, 0); /* length, patched below */
	put32(b, n ? 1 : 0);
	put32(b, 0);
	put32(b, 25);
	if (n) {
		put32(b, (uint32_t)n);
		put32(b, 1);
		for (int i = 0; i < 8; i++) {
			if (!(flags & (1u << i)))
				continue;
			put32(b, 3);
			put(b, tcp_flag_names[i], 3);
		}
	}
	{
		uint32_t len = (uint32_t)(b->len - at - 4);
		uint8_t *q = b->p + at;

		q[0] = (uint8_t)(len >> 24);
		q[1] = (uint8_t)(len >> 16);
		q[2] = (uint8_t)(len >> 8);
		q[3] = (uint8_t)len;
	}
}

static void put_i32(struct zt_buf *b, bool present, uint32_t v)
{
	if (!present) {
		put32(b, 0xffffffff);
		return;
	}
	put32(b, 4);
	put32(b, v);
}

/* An INTEGER column of a count kept as int64: saturated into 0..INT32_MAX. */
static void put_i32_sat(struct zt_buf *b, int64_t v)
{
	put_i32(b, true, v < 0 ? 0 : v > INT32_MAX ? (uint32_t)INT32_MAX : (uint32_t)v);
}

static void put_i64(struct zt_buf *b, bool present, int64_t v)
{
	if (!present) {
		put32(b, 0xffffffff);
		return;
	}
	put32(b, 8);
	put64(b, (uint64_t)v);
}

static int copy_row(struct zt_buf *b, const struct zt_flow_record *r, bool created)
{
	uint32_t f;
	int family = r->family == AF_INET6 ? AF_INET6 : AF_INET;

	/* Each reserve covers the fixed-size fields up to the next text. */
	if (zt_buf_reserve(b, 128))
		return -ENOMEM;
	put16(b, created ? ZT_COPY_NCOLS : ZT_COPY_NCOLS - 1);
	put32(b, 16);
	put(b, r->id, 16);
	put_inet(b, family, r->source_ip);
	put_inet(b, family, r->dest_ip);
	/* NOT NULL: 0 where the protocol has no ports. */
	put_i32(b, true, r->present & ZT_FR_HAS_SPORT ? r->source_port : 0);
	put_i32(b, true, r->present & ZT_FR_HAS_DPORT ? r->dest_port : 0);
	put32(b, 2); /* protocol SMALLINT */
	put16(b, r->protocol);
	if (zt_buf_reserve(b, 200))
		return -ENOMEM;
	put_i64(b, true, r->bytes_sent);
	put_i64(b, true, r->bytes_received);
	put_i32_sat(b, r->packet_count);
	put_i32_sat(b, r->duration_ms);
	put_flags(b, r->tcp_flags);
	put_i64(b, true, pg_time(r->start_time_us));
	put_i64(b, true, pg_time(r->end_time_us));
	memcpy(&f, &r->anomaly_score, 4);
	put_i32(b, r->present & ZT_FR_HAS_ANOMALY, f);
	if (put_textn_or_null(b, r->threat_type, sizeof(r->threat_type) - 1, ZT_FR_THREAT_CHARS) ||
	    zt_buf_reserve(b, 100))
		return -ENOMEM;
	put32(b, 1);
	put(b, r->blocked ? "\1" : "\0", 1);
	if (created)
		put_i64(b, r->present & ZT_FR_HAS_CREATED, pg_time(r->created_at_us));
	put_i64(b, true, r->packets_sent);
	put_i64(b, true, r->packets_received);
	if (put_field_or_null(b, r->verdict) || put_field_or_null(b, r->drop_reason) ||
	    put_field_or_null(b, r->policy) || zt_buf_reserve(b, 100))
		return -ENOMEM;
	put_i64(b, r->present & ZT_FR_HAS_SID, r->source_identity);
	put_i64(b, r->present & ZT_FR_HAS_DID, r->dest_identity);
	if (put_field_or_null(b, r->source_workload) || put_field_or_null(b, r->dest_workload) ||
	    put_field(b, r->node) || put_field_or_null(b, r->interface) ||
	    put_field_or_null(b, r->direction) || put_text(b, zt_flow_kind_name(r->kind)) ||
	    zt_buf_reserve(b, 16))
		return -ENOMEM;
	put_i64(b, true, r->aggregate_count);
	if (put_field_or_null(b, r->source_spiffe_id) || put_field_or_null(b, r->dest_spiffe_id) ||
	    zt_buf_reserve(b, 16))
		return -ENOMEM;
	put32(b, 1);
	put(b, r->mtls ? "\1" : "\0", 1);
	return 0;
}

/* SQLSTATE classes that mean "this data", not "this connection/server". */
static bool data_error(const PGresult *r)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return st && (!strncmp(st, "22", 2) || !strncmp(st, "23", 2) || !strcmp(st, "P0001"));
}

static int step(PGconn *c, const char *sql, ExecStatusType want, const char *what, char *err,
		size_t errlen, PGresult **keep)
{
	PGresult *r = PQexec(c, sql);
	int ret = 0;

	if (PQresultStatus(r) != want) {
		pgerr(err, errlen, c, r, what);
		ret = PQstatus(c) != CONNECTION_OK ? -EIO : data_error(r) ? -EINVAL : -EAGAIN;
	}
	if (keep && !ret)
		*keep = r;
	else
		PQclear(r);
	return ret;
}

int zt_copy_row(struct zt_buf *b, const struct zt_flow_record *r)
{
	return copy_row(b, r, true);
}

int zt_copy_row_nocreated(struct zt_buf *b, const struct zt_flow_record *r)
{
	return copy_row(b, r, false);
}

static int encode(struct zt_buf *b, const struct zt_flow_record *recs, size_t n, bool created)
{
	b->len = 0;
	if (zt_copy_begin(b))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (copy_row(b, &recs[i], created))
			return -ENOMEM;
	return zt_copy_end(b);
}

/* Sends b to a COPY ... FROM STDIN already started. state gets the SQLSTATE on error. */
static int copy_in(PGconn *c, const char *sql, const struct zt_buf *b, uint64_t *rows,
		   char state[6], char *err, size_t errlen)
{
	PGresult *r;
	int ret = step(c, sql, PGRES_COPY_IN, "flows: COPY", err, errlen, NULL);

	if (ret)
		return ret;
	if (PQputCopyData(c, (const char *)b->p, (int)b->len) != 1 || PQputCopyEnd(c, NULL) != 1) {
		pgerr(err, errlen, c, NULL, "flows: COPY data");
		return -EIO;
	}
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		snprintf(state, 6, "%s", st ? st : "");
		pgerr(err, errlen, c, r, "flows: COPY");
		ret = PQstatus(c) != CONNECTION_OK ? -EIO : data_error(r) ? -EINVAL : -EAGAIN;
	} else if (rows) {
		*rows = strtoull(PQcmdTuples(r), NULL, 10);
	}
	PQclear(r);
	/* Drain to the end of the command. */
	while ((r = PQgetResult(c)))
		PQclear(r);
	return ret;
}

/* Fresh records straight into network_flows. *fallback: write them the staged way. */
static int write_direct(PGconn *c, const struct zt_flow_record *recs, size_t n, struct zt_buf *b,
			bool created, uint64_t *inserted, bool *fallback, char *err, size_t errlen)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	char a[24], z[24], state[6] = "";
	const char *params[2] = { a, z };
	uint64_t rows = 0;
	PGresult *r;
	int ret;

	*fallback = false;
	if (encode(b, recs, n, created)) {
		zt_seterr(err, errlen, "flows: out of memory encoding %zu records", n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		lo = recs[i].start_time_us < lo ? recs[i].start_time_us : lo;
		hi = recs[i].start_time_us > hi ? recs[i].start_time_us : hi;
	}
	snprintf(a, sizeof(a), "%" PRId64, lo);
	snprintf(z, sizeof(z), "%" PRId64, hi);
	ret = step(c, "BEGIN", PGRES_COMMAND_OK, "flows: BEGIN", err, errlen, NULL);
	if (ret)
		goto fail;
	r = PQexecParams(c,
			 "SELECT zt_flows_ensure_partitions("
			 "'epoch'::timestamptz + $1::bigint * interval '1 microsecond', "
			 "'epoch'::timestamptz + $2::bigint * interval '1 microsecond')",
			 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgerr(err, errlen, c, r, "flows: partitions");
		ret = PQstatus(c) != CONNECTION_OK ? -EIO : data_error(r) ? -EINVAL : -EAGAIN;
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	ret = copy_in(c,
		      created ? "COPY network_flows (" ZT_COPY_COLUMNS
				") FROM STDIN (FORMAT binary)" :
				"COPY network_flows (" ZT_COPY_COLUMNS_A ZT_COPY_COLUMNS_B
				") FROM STDIN (FORMAT binary)",
		      b, &rows, state, err, errlen);
	if (!ret)
		ret = step(c, "COMMIT", PGRES_COMMAND_OK, "flows: COMMIT", err, errlen, NULL);
	if (ret)
		goto fail;
	if (inserted)
		*inserted = rows;
	return 0;
fail:
	rollback(c);
	/* 23505 unique_violation: sent before after all; 23514: no partition for a row. */
	if (ret == -EINVAL && (!strcmp(state, "23505") || !strcmp(state, "23514")))
		*fallback = true;
	return ret;
}

static int write_staged(PGconn *c, const struct zt_flow_record *recs, size_t n, struct zt_buf *b,
			uint64_t *inserted, char *err, size_t errlen)
{
	PGresult *r = NULL;
	char state[6];
	int ret;

	if (encode(b, recs, n, true)) {
		zt_seterr(err, errlen, "flows: out of memory encoding %zu records", n);
		return -ENOMEM;
	}
	ret = step(c, "BEGIN", PGRES_COMMAND_OK, "flows: BEGIN", err, errlen, NULL);
	if (!ret)
		ret = step(
			c,
			"CREATE TEMP TABLE IF NOT EXISTS zt_flows_stage ON COMMIT DELETE ROWS AS "
			"SELECT * FROM network_flows WITH NO DATA",
			PGRES_COMMAND_OK, "flows: staging table", err, errlen, NULL);
	if (!ret)
		ret = copy_in(
			c, "COPY zt_flows_stage (" ZT_COPY_COLUMNS ") FROM STDIN (FORMAT binary)",
			b, NULL, state, err, errlen);
	if (!ret)
		ret = step(c,
			   "SELECT zt_flows_ensure_partitions(min(start_time), max(start_time)) "
			   "FROM zt_flows_stage",
			   PGRES_TUPLES_OK, "flows: partitions", err, errlen, NULL);
	if (!ret)
		ret = step(
			c,
			"INSERT INTO network_flows (" ZT_COPY_COLUMNS ") SELECT "
			"id, source_ip, dest_ip, source_port, dest_port, protocol, bytes_sent, "
			"bytes_received, packet_count, duration_ms, flags, start_time, end_time, "
			"anomaly_score, threat_type, blocked, coalesce(created_at, now()), "
			"packets_sent, packets_received, verdict, drop_reason, policy, "
			"source_identity, dest_identity, source_workload, dest_workload, node, "
			"interface, direction, flow_kind, aggregate_count, source_spiffe_id, "
			"dest_spiffe_id, mtls FROM zt_flows_stage "
			"ON CONFLICT (id, start_time) DO NOTHING",
			PGRES_COMMAND_OK, "flows: INSERT", err, errlen, &r);
	if (ret)
		goto fail;
	if (inserted)
		*inserted = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	ret = step(c, "COMMIT", PGRES_COMMAND_OK, "flows: COMMIT", err, errlen, NULL);
	if (ret)
		goto fail;
	return 0;
fail:
	rollback(c);
	return ret;
}

int zt_db_write_flows(PGconn *c, const struct zt_flow_record *recs, size_t n, struct zt_buf *b,
		      unsigned int flags, uint64_t *inserted, char *err, size_t errlen)
{
	if (flags & ZT_DB_FRESH) {
		size_t with = 0;
		bool fallback = false;
		int r;

		for (size_t i = 0; i < n; i++)
			with += !!(recs[i].present & ZT_FR_HAS_CREATED);
		/* created_at NULL means the database's now(): only all or none can go direct. */
		if (with == 0 || with == n) {
			r = write_direct(c, recs, n, b, with == n, inserted, &fallback, err,
					 errlen);
			if (!fallback)
				return r;
		}
	}
	return write_staged(c, recs, n, b, inserted, err, errlen);
}
