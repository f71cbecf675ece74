// SPDX-License-Identifier: GPL-2.0-only
/*
 * Rows per second into network_flows, three ways, same rows, same server,
 * one run (tools/bench_db.sh starts the server):
 *   1. the flow writer (zt_dbw_*): fresh batches of 5000 (queue 20000), each
 *      one transaction: partitions checked, binary COPY into network_flows;
 *      and the same through zt_dbw_submit_durable (the daemon's path: each
 *      submit of 1000 records first written and fsynced to the spool);
 *   2. `psql \copy` of the same rows as COPY text, straight into the table;
 *   3. one binary COPY of the same rows straight into the table, one
 *      transaction (the encoder alone);
 *   4. the replay path (zt_db_write_flows without ZT_DB_FRESH, batches of
 *      5000): COPY into the staging table, INSERT ... ON CONFLICT DO NOTHING.
 * Text generation for 2 is not timed; psql's start and connect are.
 * Then the audit trail: policy violations through the audit queue
 * (zt_auditq: journal, batched transactions of hash-chained audit_log rows
 * with their alerts rows), against one transaction per row
 * (zt_audit_append, the path before batching).
 *   bench_db CONNINFO SPOOL_DIR N TMP_DIR
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "records/audit.h"
#include "records/auditq.h"
#include "records/db.h"
#include "records/dbwriter.h"
#include "records/flowrec.h"
#include "agent/log.h"
#include "agent/util.h"

static void gen(struct zt_flow_record *r, uint64_t i, int64_t base_us)
{
	zt_flowrec_init(r);
	r->family = AF_INET;
	r->source_ip[0] = 198;
	r->source_ip[1] = 18;
	r->source_ip[2] = (uint8_t)(i >> 8);
	r->source_ip[3] = (uint8_t)i;
	r->dest_ip[0] = 198;
	r->dest_ip[1] = 19;
	r->dest_ip[2] = (uint8_t)(i >> 16);
	r->dest_ip[3] = (uint8_t)(i % 200);
	r->present = ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT | ZT_FR_HAS_CREATED | ZT_FR_HAS_SID |
		     ZT_FR_HAS_DID | (i % 2 ? ZT_FR_HAS_ANOMALY : 0);
	r->source_port = (uint16_t)(1024 + i % 60000);
	r->dest_port = 443;
	r->protocol = 6; /* tcp */
	r->bytes_sent = (int64_t)(i * 1500);
	r->bytes_received = (int64_t)(i * 300);
	r->packets_sent = (int64_t)(i % 100 + 1);
	r->packets_received = (int64_t)(i % 77);
	r->packet_count = r->packets_sent + r->packets_received;
	r->duration_ms = (int64_t)(i % 60000);
	r->tcp_flags = ZT_TCP_SYN | ZT_TCP_ACK | (i % 3 ? ZT_TCP_FIN : 0);
	r->start_time_us = base_us + (int64_t)i * 10;
	r->end_time_us = r->start_time_us + r->duration_ms * 1000;
	r->created_at_us = base_us + 3600000000LL;
	r->anomaly_score = 0.125f * (float)(i % 8);
	if (i % 50 == 0)
		strcpy(r->threat_type, "port-scan");
	r->blocked = i % 50 == 0;
	strcpy(r->verdict, i % 10 ? "allowed" : "denied");
	snprintf(r->policy, sizeof(r->policy), "default/allow-web/rule-%u", (unsigned)(i % 4));
	r->source_identity = (int64_t)(i % 1000);
	r->dest_identity = 7;
	snprintf(r->source_workload, sizeof(r->source_workload), "default/web-%u",
		 (unsigned)(i % 40));
	strcpy(r->dest_workload, "default/api-0");
	strcpy(r->node, "bench-node");
	strcpy(r->interface, "uplink0");
	strcpy(r->direction, "ingress");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ts_text(FILE *f, int64_t us)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	fprintf(f, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900, tm.tm_mon + 1,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* COPY text; the generated strings need no escaping (asserted). */
static void text_field(FILE *f, const char *s, int nullable)
{
	if (nullable && !*s)
		fputs("\\N", f);
	else
		fputs(s, f);
}

static int write_text(const char *path, const struct zt_flow_record *r, size_t n)
{
	static const char *const fl[8] = { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR" };
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	for (size_t i = 0; i < n; i++, r++) {
		char id[40], a[64], b[64];
		int first = 1;

		zt_uuid_format(r->id, id, sizeof(id));
		inet_ntop(AF_INET, r->source_ip, a, sizeof(a));
		inet_ntop(AF_INET, r->dest_ip, b, sizeof(b));
		fprintf(f,
			"%s\t%s\t%s\t%u\t%u\t%u\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
			"\t{",
			id, a, b, r->source_port, r->dest_port, r->protocol, r->bytes_sent,
			r->bytes_received, r->packet_count, r->duration_ms);
		for (int k = 0; k < 8; k++)
			if (r->tcp_flags & (1 << k)) {
				fprintf(f, "%s%s", first ? "" : ",", fl[k]);
				first = 0;
			}
		fputs("}\t", f);
		ts_text(f, r->start_time_us);
		fputc('\t', f);
		ts_text(f, r->end_time_us);
		if (r->present & ZT_FR_HAS_ANOMALY)
			fprintf(f, "\t%.9g\t", (double)r->anomaly_score);
		else
			fputs("\t\\N\t", f);
		text_field(f, r->threat_type, 1);
		fprintf(f, "\t%s\t", r->blocked ? "t" : "f");
		ts_text(f, r->created_at_us);
		fprintf(f, "\t%" PRId64 "\t%" PRId64 "\t", r->packets_sent, r->packets_received);
		text_field(f, r->verdict, 1);
		fputc('\t', f);
		text_field(f, r->drop_reason, 1);
		fputc('\t', f);
		text_field(f, r->policy, 1);
		fprintf(f, "\t%" PRId64 "\t%" PRId64 "\t", r->source_identity, r->dest_identity);
		text_field(f, r->source_workload, 1);
		fputc('\t', f);
		text_field(f, r->dest_workload, 1);
		fprintf(f, "\t%s\t%s\t%s\t%s\t%" PRId64 "\t", r->node, r->interface, r->direction,
			zt_flow_kind_name(r->kind), r->aggregate_count);
		/* Migration 007's columns, the last of ZT_COPY_COLUMNS. */
		text_field(f, r->source_spiffe_id, 1);
		fputc('\t', f);
		text_field(f, r->dest_spiffe_id, 1);
		fprintf(f, "\t%s\n", r->mtls ? "t" : "f");
	}
	return fclose(f) ? -errno : 0;
}

static long long count_rows(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT count(*) FROM network_flows");
	long long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;

	PQclear(r);
	return n;
}

static int truncate_flows(PGconn *c)
{
	PGresult *r = PQexec(c, "TRUNCATE network_flows; CHECKPOINT");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "bench_db: truncate: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

struct bench {
	const char *conninfo, *spool, *path;
	struct zt_flow_record *recs;
	uint64_t n;
	PGconn *c;
	uint64_t batches;
};

/* 1. The writer; durable: through the write-ahead spool segment. */
static double run_writer(struct bench *B, bool durable)
{
	struct zt_config cfg;
	struct zt_dbw *w;
	struct zt_dbw_stats st;
	char err[512];
	double t0, t;

	if (truncate_flows(B->c))
		return -1;
	zt_config_defaults(&cfg);
	snprintf(cfg.database.url, sizeof(cfg.database.url), "%s", B->conninfo);
	snprintf(cfg.database.spool_dir, sizeof(cfg.database.spool_dir), "%s", B->spool);
	w = zt_dbw_new(&cfg, err, sizeof(err));
	if (!w) {
		fprintf(stderr, "bench_db: %s\n", err);
		return -1;
	}
	/* Let it connect (and check migrations) before the clock starts. */
	for (int i = 0; i < 100; i++) {
		zt_dbw_get_stats(w, &st);
		if (st.connected)
			break;
		usleep(20000);
	}
	t0 = now_s();
	for (uint64_t i = 0; i < B->n; i += 1000) {
		/* Stay under the queue bound: this measures the database path, not the spool. */
		for (;;) {
			zt_dbw_get_stats(w, &st);
			if (st.queue_len + 1000 <= 20000)
				break;
			usleep(200);
		}
		if (durable)
			zt_dbw_submit_durable(w, B->recs + i, B->n - i < 1000 ? B->n - i : 1000);
		else
			zt_dbw_submit(w, B->recs + i, B->n - i < 1000 ? B->n - i : 1000);
	}
	zt_dbw_drain(w, 600000);
	t = now_s() - t0;
	zt_dbw_get_stats(w, &st);
	zt_dbw_stop(w);
	B->batches = st.batches;
	if (count_rows(B->c) != (long long)B->n || st.spool_records_written || st.spool_segments) {
		fprintf(stderr, "bench_db: writer: %lld rows, %" PRIu64 " spooled\n",
			count_rows(B->c), st.spool_records_written);
		return -1;
	}
	return t;
}

/* 2. psql \copy, text. */
static double run_psql(struct bench *B)
{
	char cmd[8800];
	double t0, t;

	if (truncate_flows(B->c))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "psql -X -q -v ON_ERROR_STOP=1 '%s' -c \"\\copy network_flows (" ZT_COPY_COLUMNS
		 ") FROM '%s'\"",
		 B->conninfo, B->path);
	t0 = now_s();
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_db: psql \\copy failed\n");
		return -1;
	}
	t = now_s() - t0;
	if (count_rows(B->c) != (long long)B->n) {
		fprintf(stderr, "bench_db: psql: %lld rows\n", count_rows(B->c));
		return -1;
	}
	return t;
}

/* 3. One binary COPY straight into the table (encoding included). */
static double run_binary(struct bench *B)
{
	struct zt_buf b = { 0 };
	PGresult *res;
	PGconn *c = B->c;
	double t0, t;

	if (truncate_flows(c))
		return -1;
	t0 = now_s();
	zt_copy_begin(&b);
	for (uint64_t i = 0; i < B->n; i++)
		zt_copy_row(&b, &B->recs[i]);
	zt_copy_end(&b);
	res = PQexec(c, "COPY network_flows (" ZT_COPY_COLUMNS ") FROM STDIN (FORMAT binary)");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		fprintf(stderr, "bench_db: COPY: %s", PQresultErrorMessage(res));
		return -1;
	}
	PQclear(res);
	PQputCopyData(c, (const char *)b.p, (int)b.len);
	PQputCopyEnd(c, NULL);
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench_db: COPY: %s", PQresultErrorMessage(res));
		return -1;
	}
	PQclear(res);
	while ((res = PQgetResult(c)))
		PQclear(res);
	t = now_s() - t0;
	zt_buf_free(&b);
	if (count_rows(c) != (long long)B->n) {
		fprintf(stderr, "bench_db: binary COPY: %lld rows\n", count_rows(c));
		return -1;
	}
	return t;
}

/* 4. The replay path: staged, ON CONFLICT DO NOTHING. */
static double run_staged(struct bench *B)
{
	struct zt_buf b = { 0 };
	char err[512];
	uint64_t ins;
	double t0, t;

	if (truncate_flows(B->c))
		return -1;
	t0 = now_s();
	for (uint64_t i = 0; i < B->n; i += 5000) {
		if (zt_db_write_flows(B->c, B->recs + i, B->n - i < 5000 ? B->n - i : 5000, &b, 0,
				      &ins, err, sizeof(err))) {
			fprintf(stderr, "bench_db: staged: %s\n", err);
			return -1;
		}
	}
	t = now_s() - t0;
	zt_buf_free(&b);
	if (count_rows(B->c) != (long long)B->n) {
		fprintf(stderr, "bench_db: staged: %lld rows\n", count_rows(B->c));
		return -1;
	}
	return t;
}

static void violation(char *d, size_t n, uint64_t i)
{
	uint8_t id[16];
	char ids[40];

	zt_uuidv7(id);
	zt_uuid_format(id, ids, sizeof(ids));
	snprintf(d, n,
		 "{\"verdict\":\"denied\",\"src\":\"198.18.0.%u\",\"dst\":\"198.18.1.2\","
		 "\"dport\":%u,\"protocol\":\"TCP\",\"rule\":\"default-deny\",\"event_id\":\"%s\","
		 "\"event_unix_us\":%lld}",
		 (unsigned)(i % 250 + 1), (unsigned)(i % 60000 + 1), ids,
		 (long long)(zt_now_unix_ns() / 1000));
}

/* Audit rows/s through the audit queue (batched), post to last commit. */
static double run_auditq(const char *conninfo, const char *dir, uint64_t n, double *post_rate)
{
	struct zt_auditq *q;
	struct zt_auditq_stats st;
	char err[512], d[512];
	double t0, t1;

	if (zt_auditq_open(conninfo, dir, "bench", 1ull << 30, &q, err, sizeof(err))) {
		fprintf(stderr, "bench_db: audit queue: %s\n", err);
		return -1;
	}
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		violation(d, sizeof(d), i);
		zt_auditq_post(q, "policy.violation", "agent",
			       "TCP 198.18.0.1:40000 -> 198.18.1.2:80", d);
	}
	*post_rate = (double)n / (now_s() - t0);
	zt_auditq_drain(q, 600000);
	t1 = now_s();
	zt_auditq_get_stats(q, &st);
	zt_auditq_close(q);
	if (st.written != n) {
		fprintf(stderr, "bench_db: audit queue wrote %" PRIu64 " of %" PRIu64 " rows\n",
			st.written, n);
		return -1;
	}
	return (double)n / (t1 - t0);
}

/* Audit rows/s, one transaction per row (no alerts rows: favours it). */
static double run_audit_single(const char *conninfo, uint64_t n)
{
	struct zt_audit *a = zt_audit_new(conninfo);
	char err[512], d[512];
	double t0, t1;

	if (!a)
		return -1;
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		violation(d, sizeof(d), i);
		if (zt_audit_append(a, "policy.violation", "agent",
				    "TCP 198.18.0.1:40000 -> 198.18.1.2:80", d, NULL, NULL, err,
				    sizeof(err))) {
			fprintf(stderr, "bench_db: audit: %s\n", err);
			zt_audit_free(a);
			return -1;
		}
	}
	t1 = now_s();
	zt_audit_free(a);
	return (double)n / (t1 - t0);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define ROUNDS 3

int main(int argc, char **argv)
{
	struct zt_flow_record *recs;
	PGconn *c;
	char err[512], path[4200];
	uint64_t n, batches;
	double t_writer, t_durable, t_psql, t_bin, t_staged;
	int64_t base;
	struct timespec ts;

	if (argc != 5 || zt_parse_u64(argv[3], &n) || n == 0) {
		fprintf(stderr, "usage: bench_db CONNINFO SPOOL_DIR N TMP_DIR\n");
		return 2;
	}
	zt_log_set_level(ZT_LOG_WARN);
	if (zt_db_migrate(argv[1], NULL, NULL, err, sizeof(err)) ||
	    zt_db_connect(argv[1], &c, err, sizeof(err))) {
		fprintf(stderr, "bench_db: %s\n", err);
		return 1;
	}
	recs = calloc(n, sizeof(*recs));
	if (!recs)
		return 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	base = (int64_t)ts.tv_sec * 1000000 - 600000000LL;
	for (uint64_t i = 0; i < n; i++)
		gen(&recs[i], i, base);
	snprintf(path, sizeof(path), "%s/rows.txt", argv[4]);
	if (write_text(path, recs, n)) {
		fprintf(stderr, "bench_db: %s: cannot write\n", path);
		return 1;
	}
	/* Partitions exist before any timing. */
	zt_db_maintain(c, 12, 2, NULL, NULL, err, sizeof(err));

	{
		struct bench B = { .conninfo = argv[1],
				   .spool = argv[2],
				   .path = path,
				   .recs = recs,
				   .n = n,
				   .c = c };
		double tw[ROUNDS], tp[ROUNDS], tb[ROUNDS], ts2[ROUNDS], td[ROUNDS];

		/* Interleaved rounds, medians: the machine's drift hits all three alike. */
		for (int k = 0; k < ROUNDS; k++) {
			tw[k] = run_writer(&B, false);
			td[k] = run_writer(&B, true);
			tp[k] = run_psql(&B);
			tb[k] = run_binary(&B);
			ts2[k] = run_staged(&B);
			if (tw[k] < 0 || td[k] < 0 || tp[k] < 0 || tb[k] < 0 || ts2[k] < 0)
				return 1;
			printf("round %d: writer %.3f s, durable %.3f s, psql \\copy %.3f s, "
			       "binary COPY %.3f s, replay path %.3f s\n",
			       k + 1, tw[k], td[k], tp[k], tb[k], ts2[k]);
		}
		qsort(tw, ROUNDS, sizeof(double), cmp_d);
		qsort(td, ROUNDS, sizeof(double), cmp_d);
		t_durable = td[ROUNDS / 2];
		qsort(tp, ROUNDS, sizeof(double), cmp_d);
		qsort(tb, ROUNDS, sizeof(double), cmp_d);
		qsort(ts2, ROUNDS, sizeof(double), cmp_d);
		t_staged = ts2[ROUNDS / 2];
		t_writer = tw[ROUNDS / 2];
		t_psql = tp[ROUNDS / 2];
		t_bin = tb[ROUNDS / 2];
		batches = B.batches;
	}
	printf("rows: %" PRIu64 " (same rows each time, table emptied between runs; medians of %d "
	       "rounds)\n",
	       n, ROUNDS);
	printf("writer (binary COPY, %" PRIu64 " batches of fresh records): %8.0f rows/s "
	       "(%.3f s)\n",
	       batches, (double)n / t_writer, t_writer);
	printf("writer, durable submit (spool segment per 1000 first): %8.0f rows/s (%.3f s)\n",
	       (double)n / t_durable, t_durable);
	printf("psql \\copy (text, straight into the table):        %8.0f rows/s (%.3f s)\n",
	       (double)n / t_psql, t_psql);
	printf("one binary COPY straight into the table:           %8.0f rows/s (%.3f s)\n",
	       (double)n / t_bin, t_bin);
	printf("replay path (staging + ON CONFLICT, batches of 5000): %8.0f rows/s (%.3f s)\n",
	       (double)n / t_staged, t_staged);
	printf("ratio writer / psql \\copy:        %.2f   (target > 1, faster than psql: %s)\n",
	       t_psql / t_writer, t_psql > t_writer ? "met" : "NOT met");
	printf("ratio replay path / psql \\copy:   %.2f\n", t_psql / t_staged);
	printf("ratio binary COPY / psql \\copy:   %.2f\n", t_psql / t_bin);
	{
		char dir[4300];
		double batched, single, post = 0;

		snprintf(dir, sizeof(dir), "%s/auditq", argv[4]);
		single = run_audit_single(argv[1], 2000);
		batched = run_auditq(argv[1], dir, 50000, &post);
		if (single < 0 || batched < 0)
			return 1;
		printf("audit trail, policy violations (hash-chained audit_log + alerts rows):\n");
		printf("  audit queue, batched transactions (50000 events):   %8.0f rows/s\n",
		       batched);
		printf("  one transaction per row, no alerts rows (2000):     %8.0f rows/s\n",
		       single);
		printf("  journal append on the event thread (zt_auditq_post): %8.0f events/s\n",
		       post);
		printf("ratio batched / one per row:      %.1f\n", batched / single);
	}
	free(recs);
	PQfinish(c);
	return 0;
}
