// SPDX-License-Identifier: GPL-2.0-only
/* The hash-chained audit trail in audit_log. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "records/audit.h"
#include "records/db.h"
#include "agent/util.h"

/* pg_advisory_xact_lock key of appends: "ztaudt" */
#define ZT_AUDIT_LOCK 0x7a7461756474LL

struct zt_audit {
	char *conninfo;
	PGconn *conn;
	bool migrate; /* apply the migrations on each new connection */
	bool migrated; /* ... done on this one */
	char sqlstate[6]; /* of the last error */
};

struct zt_audit *zt_audit_new(const char *conninfo)
{
	struct zt_audit *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->conninfo = strdup(conninfo ? conninfo : "");
	if (!a->conninfo) {
		free(a);
		return NULL;
	}
	return a;
}

void zt_audit_set_migrate(struct zt_audit *a, int on)
{
	a->migrate = on != 0;
	a->migrated = false;
}

const char *zt_audit_last_sqlstate(const struct zt_audit *a)
{
	return a->sqlstate;
}

enum zt_audit_err_class zt_audit_classify(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return ZT_AUDIT_ERR_RETRY;
	if (!strncmp(sqlstate, "22", 2) || !strncmp(sqlstate, "23", 2) ||
	    !strncmp(sqlstate, "54", 2))
		return ZT_AUDIT_ERR_CONTENT;
	if (!strncmp(sqlstate, "08", 2) || !strcmp(sqlstate, "57P01") ||
	    !strcmp(sqlstate, "57P02") || !strcmp(sqlstate, "57P03"))
		return ZT_AUDIT_ERR_CONNECTION;
	return ZT_AUDIT_ERR_RETRY;
}

void zt_audit_free(struct zt_audit *a)
{
	if (!a)
		return;
	if (a->conn)
		PQfinish(a->conn);
	free(a->conninfo);
	free(a);
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void hash_text(EVP_MD_CTX *c, const char *s, size_t n)
{
	uint8_t l[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };

	EVP_DigestUpdate(c, l, 4);
	EVP_DigestUpdate(c, s, n);
}

static void hash_row(const uint8_t prev[32], uint64_t seq, int64_t at_us, const char *const t[4],
		     const size_t len[4], uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t num[16];
	unsigned int n = 0;

	be64(num, seq);
	be64(num + 8, (uint64_t)at_us);
	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		/* Never report a hash that was not computed. */
		memset(out, 0xff, 32);
		EVP_MD_CTX_free(c);
		return;
	}
	EVP_DigestUpdate(c, prev, 32);
	EVP_DigestUpdate(c, num, 16);
	for (int i = 0; i < 4; i++)
		hash_text(c, t[i], len[i]);
	EVP_DigestFinal_ex(c, out, &n);
	EVP_MD_CTX_free(c);
}

void zt_audit_hash(const uint8_t prev[32], uint64_t seq, int64_t at_us, const char *kind,
		   const char *actor, const char *subject, const char *detail, uint8_t out[32])
{
	const char *t[4] = { kind, actor, subject, detail };
	size_t len[4];

	for (int i = 0; i < 4; i++)
		len[i] = strlen(t[i]);
	hash_row(prev, seq, at_us, t, len, out);
}

static void pgmsg(char *err, size_t errlen, PGconn *c, const PGresult *r, const char *what)
{
	char m[400];
	const char *s = r ? PQresultErrorMessage(r) : "";
	size_t n;

	if (!s || !*s)
		s = PQerrorMessage(c);
	snprintf(m, sizeof(m), "%s", s);
	n = strlen(m);
	while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = '\0';
	for (char *p = m; *p; p++)
		if (*p == '\n')
			*p = ' ';
	{
		const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		if (st && *st)
			zt_seterr(err, errlen, "audit: %s: %s (SQLSTATE %s)", what, m, st);
		else
			zt_seterr(err, errlen, "audit: %s: %s", what, m);
	}
}

/*
 * One attempt. -EIO: the connection is bad; -EINVAL: the rows are refused
 * for their content; -EAGAIN: another error (both rolled back).
 */
static int append_once(struct zt_audit *a, const struct zt_audit_rec *rows, size_t n,
		       zt_audit_side_fn side, void *ctx, uint64_t *seq_out, uint8_t hash_out[32],
		       char *err, size_t errlen)
{
	PGconn *c = a->conn;
	PGresult *r = NULL;
	char q[96], (*nums)[2][24] = NULL, *sql = NULL;
	uint8_t prev[32] = { 0 }, (*h)[32] = NULL;
	const char **params = NULL;
	int *plen = NULL, *pfmt = NULL;
	uint64_t seq = 1;
	size_t sqlcap = 128 + n * 160, o;
	const char *what = "append";
	int rc, side_rc = 0;

	nums = calloc(n, sizeof(*nums));
	h = calloc(n, sizeof(*h));
	params = calloc(n * 8, sizeof(*params));
	plen = calloc(n * 8, sizeof(*plen));
	pfmt = calloc(n * 8, sizeof(*pfmt));
	sql = malloc(sqlcap);
	if (!nums || !h || !params || !plen || !pfmt || !sql) {
		zt_seterr(err, errlen, "audit: out of memory for a batch of %zu rows", n);
		rc = -ENOMEM;
		goto out;
	}
	r = PQexec(c, "BEGIN");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	snprintf(q, sizeof(q), "SELECT pg_advisory_xact_lock(%lld)", ZT_AUDIT_LOCK);
	r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		goto fail;
	PQclear(r);
	r = PQexecParams(c, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", 0, NULL,
			 NULL, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		goto fail;
	if (PQntuples(r) == 1) {
		if (PQgetlength(r, 0, 0) != 8 || PQgetlength(r, 0, 1) != 32) {
			zt_seterr(err, errlen, "audit: the last row of audit_log is malformed");
			what = NULL;
			goto fail;
		}
		seq = rd64((const uint8_t *)PQgetvalue(r, 0, 0)) + 1;
		memcpy(prev, PQgetvalue(r, 0, 1), 32);
	}
	PQclear(r);
	r = NULL;
	/* One INSERT for the batch: each row chains to the one before it. */
	o = (size_t)snprintf(sql, sqlcap,
			     "INSERT INTO audit_log (seq, at, kind, actor, subject, detail, "
			     "prev_hash, hash) VALUES ");
	for (size_t i = 0; i < n; i++) {
		const char *t[4] = { rows[i].kind, rows[i].actor, rows[i].subject, rows[i].detail };
		size_t len[4];
		struct timespec ts;
		int64_t at_us;
		int b = (int)(i * 8);

		clock_gettime(CLOCK_REALTIME, &ts);
		at_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		for (int k = 0; k < 4; k++)
			len[k] = strlen(t[k]);
		hash_row(i ? h[i - 1] : prev, seq + i, at_us, t, len, h[i]);
		snprintf(nums[i][0], sizeof(nums[i][0]), "%" PRIu64, seq + i);
		snprintf(nums[i][1], sizeof(nums[i][1]), "%" PRId64, at_us);
		params[b] = nums[i][0];
		params[b + 1] = nums[i][1];
		for (int k = 0; k < 4; k++)
			params[b + 2 + k] = t[k];
		params[b + 6] = (const char *)(i ? h[i - 1] : prev);
		params[b + 7] = (const char *)h[i];
		plen[b + 6] = plen[b + 7] = 32;
		pfmt[b + 6] = pfmt[b + 7] = 1;
		o += (size_t)snprintf(
			sql + o, sqlcap - o,
			"%s($%d::bigint, 'epoch'::timestamptz + $%d::bigint * interval "
			"'1 microsecond', $%d, $%d, $%d, $%d::json, $%d::bytea, $%d::bytea)",
			i ? "," : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8);
	}
	r = PQexecParams(c, sql, (int)(n * 8), NULL, params, plen, pfmt, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	r = NULL;
	if (side && (side_rc = side(ctx, c, rows, n, err, errlen)) < 0) {
		what = NULL;
		goto fail;
	}
	r = PQexec(c, "COMMIT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	if (seq_out)
		*seq_out = seq + n - 1;
	if (hash_out)
		memcpy(hash_out, h[n - 1], 32);
	rc = 0;
	goto out;
fail:
	if (what) {
		const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		pgmsg(err, errlen, c, r, what);
		snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", st ? st : "");
	}
	PQclear(r);
	if (what && !strcmp(a->sqlstate, "42P01"))
		a->migrated = false; /* a table is missing: migrate again first */
	if (PQstatus(c) != CONNECTION_OK) {
		rc = -EIO;
	} else {
		PQclear(PQexec(c, "ROLLBACK"));
		if (!what)
			/* The side rows say what they are; a malformed head is no row's fault. */
			rc = side_rc == -EINVAL ? -EINVAL : side_rc == -EIO ? -EIO : -EAGAIN;
		else
			switch (zt_audit_classify(a->sqlstate)) {
			case ZT_AUDIT_ERR_CONTENT:
				rc = -EINVAL;
				break;
			case ZT_AUDIT_ERR_CONNECTION:
				rc = -EIO;
				break;
			default:
				rc = -EAGAIN;
			}
	}
out:
	free(nums);
	free(h);
	free(params);
	free(plen);
	free(pfmt);
	free(sql);
	return rc;
}

int zt_audit_append_batch(struct zt_audit *a, const struct zt_audit_rec *rows, size_t n,
			  zt_audit_side_fn side, void *ctx, uint64_t *seq, uint8_t hash[32],
			  char *err, size_t errlen)
{
	int r = -EIO;

	if (n == 0)
		return 0;
	if (n > ZT_AUDIT_BATCH_MAX) {
		zt_seterr(err, errlen, "audit: a batch of %zu rows (at most %d)", n,
			  ZT_AUDIT_BATCH_MAX);
		return -EINVAL;
	}
	a->sqlstate[0] = '\0';
	for (int attempt = 0; attempt < 3; attempt++) {
		if (attempt)
			usleep(100000u << (attempt - 1));
		if (!a->conn || PQstatus(a->conn) != CONNECTION_OK) {
			if (a->conn)
				PQfinish(a->conn);
			a->conn = NULL;
			a->migrated = false;
			if (zt_db_connect(a->conninfo, &a->conn, err, errlen)) {
				r = -EIO;
				continue;
			}
		}
		if (a->migrate && !a->migrated) {
			char m[400] = "";

			/* Never append to a schema that is not all there. A failed
			 * migration is no row's fault: -EAGAIN, never -EINVAL. */
			r = zt_db_migrate_conn(a->conn, NULL, NULL, m, sizeof(m));
			if (r < 0) {
				zt_seterr(err, errlen, "audit: schema migrations: %s", m);
				r = PQstatus(a->conn) == CONNECTION_OK ? -EAGAIN : -EIO;
				continue;
			}
			a->migrated = true;
		}
		r = append_once(a, rows, n, side, ctx, seq, hash, err, errlen);
		if (r != -EIO && r != -EAGAIN)
			return r;
	}
	return r;
}

int zt_audit_append(struct zt_audit *a, const char *kind, const char *actor, const char *subject,
		    const char *detail_json, uint64_t *seq, uint8_t hash[32], char *err,
		    size_t errlen)
{
	const struct zt_audit_rec row = { kind ? kind : "", actor ? actor : "",
					  subject ? subject : "",
					  detail_json ? detail_json : "{}" };

	return zt_audit_append_batch(a, &row, 1, NULL, NULL, seq, hash, err, errlen);
}

struct vstate {
	bool have_prev;
	uint64_t prev_seq;
	uint8_t prev_hash[32];
	uint64_t rows, problems;
	zt_audit_report_fn report;
	void *ctx;
};

static void problem(struct vstate *v, enum zt_audit_problem p, uint64_t seq, const char *msg)
{
	v->problems++;
	if (v->report)
		v->report(v->ctx, p, seq, msg);
}

static void check_row(struct vstate *v, PGresult *r, int i)
{
	const char *t[4];
	size_t len[4];
	uint8_t h[32];
	uint64_t seq = rd64((const uint8_t *)PQgetvalue(r, i, 0));
	int64_t at = (int64_t)rd64((const uint8_t *)PQgetvalue(r, i, 1));
	const uint8_t *prev = (const uint8_t *)PQgetvalue(r, i, 6);
	const uint8_t *hash = (const uint8_t *)PQgetvalue(r, i, 7);
	static const uint8_t zero[32];
	uint64_t want = v->have_prev ? v->prev_seq + 1 : 1;
	char msg[200];
	bool gap = false;

	v->rows++;
	for (int k = 0; k < 4; k++) {
		t[k] = PQgetvalue(r, i, 2 + k);
		len[k] = (size_t)PQgetlength(r, i, 2 + k);
	}
	if (seq != want) {
		if (seq - want == 1)
			snprintf(msg, sizeof(msg),
				 "row %" PRIu64 " deleted (gap in seq before %" PRIu64 ")", want,
				 seq);
		else
			snprintf(msg, sizeof(msg),
				 "rows %" PRIu64 "..%" PRIu64 " deleted (gap in seq before %" PRIu64
				 ")",
				 want, seq - 1, seq);
		problem(v, ZT_AUDIT_DELETED, want, msg);
		gap = true;
	}
	if (!gap && memcmp(prev, v->have_prev ? v->prev_hash : zero, 32)) {
		snprintf(msg, sizeof(msg),
			 "row %" PRIu64
			 " inserted (chain break: prev_hash is not the hash of row %" PRIu64 ")",
			 seq, want - 1);
		problem(v, ZT_AUDIT_INSERTED, seq, msg);
	}
	hash_row(prev, seq, at, t, len, h);
	if (memcmp(h, hash, 32)) {
		snprintf(msg, sizeof(msg), "row %" PRIu64 " changed (hash mismatch)", seq);
		problem(v, ZT_AUDIT_CHANGED, seq, msg);
	}
	/* Go on from what is stored, so each problem is named once. */
	v->have_prev = true;
	v->prev_seq = seq;
	memcpy(v->prev_hash, hash, 32);
}

int zt_audit_verify(const char *conninfo, zt_audit_report_fn report, void *ctx, uint64_t *rows,
		    char *err, size_t errlen)
{
	struct vstate v = { .report = report, .ctx = ctx };
	PGconn *c;
	PGresult *r;
	int ret = zt_db_connect(conninfo, &c, err, errlen);

	if (ret)
		return ret;
	r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	r = PQexec(c,
		   "DECLARE zt_audit_cur BINARY NO SCROLL CURSOR FOR "
		   "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint, kind, actor, subject, "
		   "detail::text, prev_hash, hash FROM audit_log ORDER BY seq");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto fail;
	PQclear(r);
	for (;;) {
		int n;

		r = PQexec(c, "FETCH 10000 FROM zt_audit_cur");
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			goto fail;
		n = PQntuples(r);
		for (int i = 0; i < n; i++) {
			if (PQgetlength(r, i, 0) != 8 || PQgetlength(r, i, 1) != 8 ||
			    PQgetlength(r, i, 6) != 32 || PQgetlength(r, i, 7) != 32) {
				zt_seterr(err, errlen, "audit: verify: malformed row in audit_log");
				PQclear(r);
				PQfinish(c);
				return -EINVAL;
			}
			check_row(&v, r, i);
		}
		PQclear(r);
		if (n == 0)
			break;
	}
	PQclear(PQexec(c, "COMMIT"));
	PQfinish(c);
	if (rows)
		*rows = v.rows;
	return v.problems ? 1 : 0;
fail:
	pgmsg(err, errlen, c, r, "verify");
	PQclear(r);
	PQfinish(c);
	return -EIO;
}

static void cli_report(void *ctx, enum zt_audit_problem p, uint64_t seq, const char *msg)
{
	(void)p;
	(void)seq;
	fprintf((FILE *)ctx, "audit: %s\n", msg);
}

int zt_audit_verify_cli(const char *conninfo, FILE *out, FILE *errout)
{
	char err[512];
	uint64_t rows = 0;
	int r;

	if (!conninfo || !*conninfo) {
		fprintf(errout,
			"audit verify: no database given (database.url or --db CONNINFO)\n");
		return 2;
	}
	r = zt_audit_verify(conninfo, cli_report, out, &rows, err, sizeof(err));
	if (r < 0) {
		fprintf(errout, "%s\n", err);
		return 2;
	}
	if (r == 0)
		fprintf(out, "audit: %" PRIu64 " rows verified, chain intact\n", rows);
	else
		fprintf(out, "audit: chain broken (%" PRIu64 " rows read)\n", rows);
	return r;
}
