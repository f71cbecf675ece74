// SPDX-License-Identifier: GPL-2.0-only
/*
 * This node's row in the nodes table (migration 005): a heartbeat every
 * NODES_HEARTBEAT_NS and a write whenever the policy in force changes (its
 * canonical form, node_policies, replaced as a whole). The loop takes a
 * snapshot (cheap; the canonical form is rebuilt only when the published
 * generation moved) and a thread of its own talks to the database, so a
 * slow or absent database never holds the loop up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/daemon.h"
#include "agent/daemon_int.h"
#include "agent/log.h"
#include "agent/util.h"
#include "feeds/feeds.h"
#include "records/auditq.h"
#include "records/db.h"
#include "seg/polcanon.h"
#include "seg/seg.h"

#define NODES_TICK_NS (1000ULL * 1000000ULL) /* policy changes are looked for each second */
#define NODES_HEARTBEAT_NS (10ULL * 1000000000ULL)
#define NODES_FEEDS_MAX 16384

struct snap {
	uint64_t gen;
	uint64_t endpoints;
	uint64_t drift_repairs;
	char feeds[NODES_FEEDS_MAX];
	bool have_policy;
	struct zt_polcanon_set pc; /* the canonical form of gen */
};

struct zt_nodes {
	struct zt_daemon *d;
	pthread_t th;
	bool th_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	atomic_bool abort; /* stop, for a connect under way */
	atomic_bool retry; /* the last write failed: post again at the next tick, not heartbeat */
	bool posted; /* snap is new */
	struct snap snap; /* loop -> thread, under lock */
	/* loop thread only */
	uint64_t last_gen;
	bool have_gen;
	uint64_t last_post_ns;
	struct zt_polcanon_set cur;
	bool cur_valid;
	/* writer thread only */
	char written_sha[65];
	uint64_t started_unix;
};

static int64_t cert_not_after(const char *path)
{
	FILE *f;
	X509 *x;
	struct tm tm;
	int64_t t = 0;

	if (!path[0] || !(f = fopen(path, "re")))
		return 0;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		t = (int64_t)timegm(&tm);
	X509_free(x);
	return t;
}

/* The node row: one upsert. */
static int write_node(struct zt_nodes *nd, PGconn *c, const struct snap *s, const char *sha,
		      char *err, size_t errlen)
{
	static const char sql[] =
		"INSERT INTO nodes (node, version, started_at, last_heartbeat, policy_sha256, "
		"policy_generation, policies, policy_changed_at, feed_versions, endpoints, "
		"cert_expires_at, drift_repairs) VALUES ($1, $2, to_timestamp($3::bigint), now(), "
		"NULLIF($4, ''), $5::bigint, $6::integer, CASE WHEN $4 <> '' THEN now() END, $7::jsonb, "
		"$8::integer, to_timestamp(NULLIF($9, '0')::bigint), $10::bigint) "
		"ON CONFLICT (node) DO UPDATE SET version = EXCLUDED.version, "
		"started_at = EXCLUDED.started_at, last_heartbeat = now(), "
		"policy_changed_at = CASE WHEN nodes.policy_sha256 IS DISTINCT FROM EXCLUDED.policy_sha256 "
		"THEN now() ELSE nodes.policy_changed_at END, "
		"policy_sha256 = EXCLUDED.policy_sha256, policy_generation = EXCLUDED.policy_generation, "
		"policies = EXCLUDED.policies, feed_versions = EXCLUDED.feed_versions, "
		"endpoints = EXCLUDED.endpoints, cert_expires_at = EXCLUDED.cert_expires_at, "
		"drift_repairs = EXCLUDED.drift_repairs";
	char started[24], gen[24], npol[24], eps[24], cert[24], drift[24];
	const char *p[10] = { nd->d->cfg.node, ZT_VERSION, started, sha,  gen, npol,
			      s->feeds,	       eps,	   cert,    drift };
	PGresult *res;
	int r = 0;

	snprintf(started, sizeof(started), "%llu", (unsigned long long)nd->started_unix);
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)s->gen);
	snprintf(npol, sizeof(npol), "%zu", s->pc.n);
	snprintf(eps, sizeof(eps), "%llu", (unsigned long long)s->endpoints);
	snprintf(cert, sizeof(cert), "%lld", (long long)cert_not_after(nd->d->cfg.mtls.node_cert));
	snprintf(drift, sizeof(drift), "%llu", (unsigned long long)s->drift_repairs);
	res = PQexecParams(c, sql, 10, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "nodes upsert: %s", PQresultErrorMessage(res));
		r = -EIO;
	}
	PQclear(res);
	return r;
}

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(c, sql);
	int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;

	if (r)
		snprintf(err, errlen, "%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return r;
}

/*
 * policy_audit_mode (migration 008) follows node_policies: a policy in audit
 * mode keeps the time it was first seen so (a restart, a touched file or an
 * edit that keeps the mode change nothing); one enforced or gone loses it.
 */
static int write_audit_mode(struct zt_nodes *nd, PGconn *c, char *err, size_t errlen)
{
	static const char *const sql[] = {
		"DELETE FROM policy_audit_mode m WHERE m.node = $1 AND NOT EXISTS ("
		"SELECT 1 FROM node_policies p WHERE p.node = m.node "
		"AND p.policy_key = m.policy_key AND p.canonical::jsonb->>'mode' = 'audit')",
		"INSERT INTO policy_audit_mode (node, policy_key, since) "
		"SELECT node, policy_key, now() FROM node_policies "
		"WHERE node = $1 AND canonical::jsonb->>'mode' = 'audit' ON CONFLICT DO NOTHING",
	};
	const char *p[1] = { nd->d->cfg.node };
	int r = 0;

	for (size_t i = 0; r == 0 && i < sizeof(sql) / sizeof(sql[0]); i++) {
		PGresult *res = PQexecParams(c, sql[i], 1, NULL, p, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "policy_audit_mode: %s", PQresultErrorMessage(res));
			r = -EIO;
		}
		PQclear(res);
	}
	return r;
}

/* The node row and, when the policy changed since the last write, node_policies: one transaction. */
static int write_all(struct zt_nodes *nd, PGconn *c, const struct snap *s, char *err, size_t errlen)
{
	const char *sha = s->have_policy ? s->pc.sha256 : "";
	bool pol = strcmp(sha, nd->written_sha) != 0;
	int r;

	if (!pol)
		return write_node(nd, c, s, sha, err, errlen);
	r = exec_ok(c, "BEGIN", err, errlen);
	if (r == 0)
		r = write_node(nd, c, s, sha, err, errlen);
	if (r == 0) {
		const char *p[1] = { nd->d->cfg.node };
		PGresult *res = PQexecParams(c, "DELETE FROM node_policies WHERE node = $1", 1,
					     NULL, p, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "node_policies: %s", PQresultErrorMessage(res));
			r = -EIO;
		}
		PQclear(res);
	}
	for (size_t i = 0; r == 0 && i < s->pc.n; i++) {
		const char *p[4] = { nd->d->cfg.node, s->pc.v[i].key, s->pc.v[i].sha256,
				     s->pc.v[i].json };
		PGresult *res = PQexecParams(
			c,
			"INSERT INTO node_policies (node, policy_key, sha256, canonical) VALUES ($1, $2, $3, $4)",
			4, NULL, p, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "node_policies: %s", PQresultErrorMessage(res));
			r = -EIO;
		}
		PQclear(res);
	}
	if (r == 0)
		r = write_audit_mode(nd, c, err, errlen);
	if (r == 0)
		r = exec_ok(c, "COMMIT", err, errlen);
	else
		PQclear(PQexec(c, "ROLLBACK"));
	if (r == 0)
		snprintf(nd->written_sha, sizeof(nd->written_sha), "%s", sha);
	return r;
}

static void *nodes_thread(void *arg)
{
	struct zt_nodes *nd = arg;
	struct snap *s = malloc(sizeof(*s));
	PGconn *c = NULL;
	bool warned = false;

	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&nd->lock);
	for (;;) {
		char err[1024] = "";
		int r;

		while (!nd->stop && !nd->posted)
			pthread_cond_wait(&nd->wake, &nd->lock);
		if (nd->stop)
			break;
		/* Take the snapshot: the loop gets a fresh struct to fill. */
		zt_polcanon_free(&s->pc);
		*s = nd->snap;
		memset(&nd->snap.pc, 0, sizeof(nd->snap.pc));
		nd->posted = false;
		pthread_mutex_unlock(&nd->lock);
		r = c ? 0 :
			zt_db_connect_abortable(nd->d->cfg.database.url, &nd->abort, &c, err,
						sizeof(err));
		if (r == 0)
			r = write_all(nd, c, s, err, sizeof(err));
		if (r < 0) {
			/* Probably before migration 005 or while the database is away: again in a second. */
			if (!warned) {
				char q[1100];

				log_warn("nodes_write_failed", "error=%s retry=every-second",
					 zt_log_quote(q, sizeof(q), err));
			}
			warned = true;
			atomic_store(&nd->retry, true);
			if (c && PQstatus(c) != CONNECTION_OK) {
				PQfinish(c);
				c = NULL;
			}
			nd->written_sha[0] = '\0';
		} else {
			atomic_store(&nd->retry, false);
			if (warned)
				log_info("nodes_write_ok", "node=%s", nd->d->cfg.node);
			warned = false;
		}
		pthread_mutex_lock(&nd->lock);
	}
	pthread_mutex_unlock(&nd->lock);
	zt_polcanon_free(&s->pc);
	free(s);
	if (c)
		PQfinish(c);
	return NULL;
}

uint64_t daemon_drift_repairs(struct zt_daemon *d);

static void on_nodes_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_nodes *nd = ctx;
	struct zt_daemon *d = nd->d;
	struct zt_seg_stats ss;
	uint64_t ticks, now = zt_now_mono_ns();
	bool changed;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	zt_seg_get_stats(d->seg, &ss);
	changed = !nd->have_gen || ss.gen != nd->last_gen;
	if (!changed && now - nd->last_post_ns < NODES_HEARTBEAT_NS && !atomic_load(&nd->retry))
		return;
	if (changed) {
		uint64_t gen = 0;
		int r;

		zt_polcanon_free(&nd->cur);
		r = zt_seg_policy_canon(d->seg, &nd->cur, &gen);
		nd->cur_valid = r == 0;
		if (r < 0 && r != -ENOENT)
			log_warn("nodes_canon_failed", "error=\"%s\"", strerror(-r));
		nd->last_gen = ss.gen;
		nd->have_gen = true;
	}
	pthread_mutex_lock(&nd->lock);
	zt_polcanon_free(&nd->snap.pc);
	nd->snap.gen = ss.gen;
	nd->snap.endpoints = ss.endpoints;
	nd->snap.drift_repairs = daemon_drift_repairs(d);
	nd->snap.have_policy = nd->cur_valid;
	if (zt_feeds_versions_json(d->feeds, nd->snap.feeds, sizeof(nd->snap.feeds)) < 0)
		snprintf(nd->snap.feeds, sizeof(nd->snap.feeds), "{}");
	/* A copy: the loop keeps its own for the next comparison. */
	for (size_t i = 0; nd->cur_valid && i < nd->cur.n; i++)
		if (zt_polcanon_add(&nd->snap.pc, nd->cur.v[i].key, nd->cur.v[i].json) < 0)
			break;
	zt_polcanon_finish(&nd->snap.pc);
	if (nd->snap.pc.n != nd->cur.n)
		nd->snap.have_policy = false; /* out of memory: say nothing rather than wrong */
	nd->posted = true;
	pthread_cond_signal(&nd->wake);
	pthread_mutex_unlock(&nd->lock);
	nd->last_post_ns = now;
}

int daemon_nodes_start(struct zt_daemon *d, char *err, size_t errlen)
{
	struct zt_nodes *nd;
	int r;

	if (!d->cfg.database.url[0])
		return 0;
	nd = calloc(1, sizeof(*nd));
	if (!nd) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nd->d = d;
	nd->started_unix = zt_now_unix();
	pthread_mutex_init(&nd->lock, NULL);
	pthread_cond_init(&nd->wake, NULL);
	r = pthread_create(&nd->th, NULL, nodes_thread, nd);
	if (r) {
		snprintf(err, errlen, "cannot start the nodes heartbeat thread: %s", strerror(r));
		free(nd);
		return -r;
	}
	nd->th_started = true;
	pthread_setname_np(nd->th, "zt-nodes");
	d->nodes = nd;
	r = zt_loop_add_timer(d->loop, NODES_TICK_NS, on_nodes_timer, nd);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the nodes timer: %s", strerror(-r));
		return r;
	}
	return 0;
}

void daemon_nodes_stop(struct zt_daemon *d)
{
	struct zt_nodes *nd = d->nodes;

	if (!nd)
		return;
	atomic_store(&nd->abort, true);
	pthread_mutex_lock(&nd->lock);
	nd->stop = true;
	pthread_cond_signal(&nd->wake);
	pthread_mutex_unlock(&nd->lock);
	if (nd->th_started)
		pthread_join(nd->th, NULL);
	zt_polcanon_free(&nd->snap.pc);
	zt_polcanon_free(&nd->cur);
	pthread_mutex_destroy(&nd->lock);
	pthread_cond_destroy(&nd->wake);
	free(nd);
	d->nodes = NULL;
}
