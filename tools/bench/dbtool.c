// SPDX-License-Identifier: GPL-2.0-only
/*
 * Drives the database code from shell, for tests/integration/db.sh:
 *   dbtool migrate CONN [DIR]
 *   dbtool maintain CONN RETENTION_MONTHS
 *   dbtool write CONN SPOOL_DIR N EXPECT_FILE [--first K] [--rate R] [--hostile]
 *                [--wait-empty S] [--linger] [--hold] [--spool-max BYTES] [--months-ago M]
 *       makes N records (numbered from K), appends them to EXPECT_FILE
 *       (raw struct zt_flow_record, fsynced before they are submitted),
 *       submits them to a writer; --wait-empty waits up to S s for queue and
 *       spool to empty; --linger drains the queue, prints "lingering" and
 *       sleeps until killed; --hold prints "submitted" and sleeps (no drain);
 *       else stops the writer and prints its stats.
 *   dbtool resubmit CONN SPOOL_DIR EXPECT_FILE
 *       submits the records of EXPECT_FILE again (same ids): nothing new may appear.
 *   dbtool check CONN EXPECT_FILE... [--where COND]
 *       network_flows (its rows matching COND) holds exactly these records,
 *       each once, each value right.
 *   dbtool conninfo CONN
 *       connects as the agent does and prints the settings in force:
 *       connect_timeout keepalives keepalives_idle keepalives_interval
 *       keepalives_count tcp_user_timeout statement_timeout work_mem.
 *   dbtool spool-ids DIR
 *       one line per record in DIR's seg-*.zsp: "id source dest:port protocol".
 *   dbtool audit-append CONN N
 *   dbtool audit-verify CONN          (exit code of zt_audit_verify_cli)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "records/audit.h"
#include "agent/config.h"
#include "records/db.h"
#include "records/dbwriter.h"
#include "records/flowrec.h"
#include "records/spool.h"
#include "agent/log.h"
#include "agent/util.h"

static const char *const hostile[] = {
	"it's \"quoted\" ', DROP TABLE network_flows;--",
	"line1\nline2\r\nline3\ttab",
	"C:\\path\\N \\. \\\\ end\\",
	"\\N",
	"bad\xff\xfe utf8 \xc3(",
	"lone \x80 continuation",
	"ワークロード ✓",
	"",
};

static void long_text(char *buf, size_t n, const char *unit)
{
	size_t u = strlen(unit), k = 0;

	while (k + u < n) {
		memcpy(buf + k, unit, u);
		k += u;
	}
	buf[k] = '\0';
}

static void gen(struct zt_flow_record *r, uint64_t i, bool hos, int64_t base_us)
{
	static char big[10240 + 1], bigu[10240 + 1];
	static const char *const verdicts[] = { "allowed", "denied", "audit", "dropped" };
	char tmp[300];

	if (!big[0]) {
		long_text(big, sizeof(big), "0123456789abcdef");
		long_text(bigu, sizeof(bigu), "é€𝄞");
	}
	zt_flowrec_init(r);
	r->family = i % 5 == 0 ? AF_INET6 : AF_INET;
	if (r->family == AF_INET) {
		uint8_t s[4] = { 198, 18, (uint8_t)(i >> 8), (uint8_t)i };
		uint8_t d[4] = { 198, 19, (uint8_t)(i >> 16), (uint8_t)(i >> 4) };

		memcpy(r->source_ip, s, 4);
		memcpy(r->dest_ip, d, 4);
	} else {
		inet_pton(AF_INET6, "2001:db8::1", r->source_ip);
		inet_pton(AF_INET6, "2001:db8:ffff::", r->dest_ip);
		r->source_ip[14] = (uint8_t)(i >> 8);
		r->source_ip[15] = (uint8_t)(i | 1);
		r->dest_ip[13] = (uint8_t)i;
	}
	r->present = ZT_FR_HAS_SPORT;
	r->source_port = (uint16_t)(1024 + i % 60000);
	if (i % 3) {
		r->present |= ZT_FR_HAS_DPORT;
		r->dest_port = i % 2 ? 443 : 65535;
	}
	r->protocol = i % 7 == 0 ? IPPROTO_UDP : IPPROTO_TCP;
	if (i % 17 == 0) {
		/* No ports: written as 0. */
		r->protocol = r->family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		r->present &= ~(uint32_t)(ZT_FR_HAS_SPORT | ZT_FR_HAS_DPORT);
	}
	r->bytes_sent = (int64_t)(i * 1500 + 1);
	r->bytes_received = (int64_t)(i * 3000 + 7) + (i % 13 == 0 ? (1LL << 40) : 0);
	r->packets_sent = (int64_t)(i % 1000 + 1);
	r->packets_received = (int64_t)(i % 777);
	if (i % 29 == 0)
		r->packets_sent += 3000000000LL; /* packet_count saturates at INT32_MAX */
	r->packet_count = r->packets_sent + r->packets_received;
	r->duration_ms = (int64_t)(i % 60000);
	if (i % 31 == 0)
		r->duration_ms += 2200000000LL; /* 25 days: saturates too */
	r->tcp_flags = i % 4 == 0 ? 0 : (uint8_t)(i * 37);
	r->start_time_us = base_us + (int64_t)i * 1000 + 7;
	r->end_time_us = r->start_time_us + r->duration_ms * 1000;
	if (i % 2) {
		r->present |= ZT_FR_HAS_ANOMALY;
		r->anomaly_score = (float)(i % 8) / 8.0f;
	}
	if (i % 10 == 0)
		snprintf(r->threat_type, sizeof(r->threat_type), "port-scan");
	r->blocked = i % 3 == 0;
	snprintf(r->verdict, sizeof(r->verdict), "%s", verdicts[i % 4]);
	if (i % 4 == 3)
		snprintf(r->drop_reason, sizeof(r->drop_reason), "policy-deny");
	snprintf(r->policy, sizeof(r->policy), "ns-%u/pol-%u/rule-%u", (unsigned)(i % 5),
		 (unsigned)(i % 17), (unsigned)(i % 3));
	if (i % 3 != 1) {
		r->present |= ZT_FR_HAS_SID | ZT_FR_HAS_DID;
		r->source_identity = (int64_t)(i % 100000);
		r->dest_identity = -(int64_t)(i % 5) - 1;
	}
	snprintf(r->source_workload, sizeof(r->source_workload), "default/web-%u",
		 (unsigned)(i % 50));
	snprintf(r->dest_workload, sizeof(r->dest_workload), "db/postgres-%u", (unsigned)(i % 3));
	snprintf(r->node, sizeof(r->node), "lab-node");
	snprintf(r->interface, sizeof(r->interface), "uplink0");
	snprintf(r->direction, sizeof(r->direction), "%s", i % 2 ? "ingress" : "egress");
	if (i % 11 == 0) {
		r->kind = ZT_FLOW_KIND_XDP_DROP_AGG;
		r->aggregate_count = (int64_t)(i % 1000 + 2);
	}
	if (i % 6 == 0) {
		r->present |= ZT_FR_HAS_CREATED;
		r->created_at_us = base_us - 5000000;
	}
	if (!hos)
		return;
	/* Every text field gets hostile values, cycled; two get 10 KB. */
	{
		size_t h = ZT_ARRAY_SIZE(hostile);
		const char *a = hostile[i % h], *b = hostile[(i + 3) % h];

		zt_flowrec_set_text(r->threat_type, sizeof(r->threat_type), a);
		zt_flowrec_set_text(r->policy, sizeof(r->policy), i % 4 == 0 ? big : b);
		zt_flowrec_set_text(r->source_workload, sizeof(r->source_workload),
				    i % 4 == 1 ? bigu : a);
		zt_flowrec_set_text(r->dest_workload, sizeof(r->dest_workload), b);
		zt_flowrec_set_text(r->drop_reason, sizeof(r->drop_reason), a);
		zt_flowrec_set_text(r->verdict, sizeof(r->verdict), b);
		snprintf(tmp, sizeof(tmp), "n%s", a);
		zt_flowrec_set_text(r->node, sizeof(r->node), tmp);
		zt_flowrec_set_text(r->interface, sizeof(r->interface), a);
		zt_flowrec_set_text(r->direction, sizeof(r->direction), b);
		if (i % 16 == 5) /* 63 bytes, over VARCHAR(50): cut to 50 characters */
			zt_flowrec_set_text(r->threat_type, sizeof(r->threat_type), big);
	}
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void print_stats(const char *what, struct zt_dbw *w)
{
	struct zt_dbw_stats s;

	zt_dbw_get_stats(w, &s);
	printf("%s submitted=%" PRIu64 " written=%" PRIu64 " duplicate=%" PRIu64 " failed=%" PRIu64
	       " batches=%" PRIu64 " queue=%" PRIu64 " spool_bytes=%" PRIu64
	       " spool_segments=%" PRIu64 " spool_records_written=%" PRIu64
	       " spool_dropped=%" PRIu64 " spool_corrupt=%" PRIu64 " connected=%d\n",
	       what, s.rows_submitted, s.rows_written, s.rows_duplicate, s.rows_failed, s.batches,
	       s.queue_len, s.spool_bytes, s.spool_segments, s.spool_records_written,
	       s.spool_dropped_records, s.spool_corrupt_segments, s.connected);
	fflush(stdout);
}

static int cmd_write(int argc, char **argv)
{
	struct zt_config cfg;
	struct zt_dbw *w;
	struct zt_dbw_opts o = { .batch_size = 5000,
				 .queue_max = 20000,
				 .flush_ms = 1000,
				 .backoff_max_ms = 1000,
				 .maintain_s = 3600,
				 .migrate = 1 };
	uint64_t n, first = 0, rate = 0, wait_s = 0, months_ago = 0;
	bool hos = false, linger = false, hold = false;
	char err[512];
	int fd;
	int64_t base;

	if (argc < 6)
		return 2;
	zt_config_defaults(&cfg);
	snprintf(cfg.database.url, sizeof(cfg.database.url), "%s", argv[2]);
	snprintf(cfg.database.spool_dir, sizeof(cfg.database.spool_dir), "%s", argv[3]);
	if (zt_parse_u64(argv[4], &n))
		return 2;
	for (int i = 6; i < argc; i++) {
		if (!strcmp(argv[i], "--hostile"))
			hos = true;
		else if (!strcmp(argv[i], "--linger"))
			linger = true;
		else if (!strcmp(argv[i], "--hold"))
			hold = true;
		else if (i + 1 < argc && !strcmp(argv[i], "--first"))
			zt_parse_u64(argv[++i], &first);
		else if (i + 1 < argc && !strcmp(argv[i], "--rate"))
			zt_parse_u64(argv[++i], &rate);
		else if (i + 1 < argc && !strcmp(argv[i], "--wait-empty"))
			zt_parse_u64(argv[++i], &wait_s);
		else if (i + 1 < argc && !strcmp(argv[i], "--months-ago"))
			zt_parse_u64(argv[++i], &months_ago);
		else if (i + 1 < argc && !strcmp(argv[i], "--spool-max"))
			zt_size_parse(argv[++i], &cfg.database.spool_max_bytes);
		else
			return 2;
	}
	fd = open(argv[5], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "dbtool: %s: %s\n", argv[5], strerror(errno));
		return 1;
	}
	w = zt_dbw_new_opts(&cfg, &o, err, sizeof(err));
	if (!w) {
		fprintf(stderr, "dbtool: %s\n", err);
		return 1;
	}
	base = now_us() - 3600LL * 1000000 - (int64_t)months_ago * 31 * 86400 * 1000000LL;
	for (uint64_t done = 0; done < n;) {
		struct zt_flow_record recs[100];
		size_t k = n - done < 100 ? (size_t)(n - done) : 100;

		for (size_t j = 0; j < k; j++)
			gen(&recs[j], first + done + j, hos, base);
		if (write(fd, recs, k * sizeof(recs[0])) != (ssize_t)(k * sizeof(recs[0])) ||
		    fdatasync(fd) < 0) {
			fprintf(stderr, "dbtool: %s: write: %s\n", argv[5], strerror(errno));
			return 1;
		}
		if (zt_dbw_submit(w, recs, k))
			fprintf(stderr, "dbtool: submit: some records dropped\n");
		done += k;
		if (rate)
			usleep((useconds_t)(k * 1000000 / rate));
	}
	close(fd);
	if (hold) {
		/* No drain: the writer's own timer must bring them to the database. */
		printf("submitted\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	if (wait_s) {
		struct zt_dbw_stats s;

		for (uint64_t t = 0; t < wait_s * 10; t++) {
			zt_dbw_get_stats(w, &s);
			if (!s.queue_len && !s.spool_segments && s.connected)
				break;
			usleep(100000);
		}
	}
	if (linger) {
		zt_dbw_drain(w, 30000);
		print_stats("lingering", w);
		for (;;)
			pause();
	}
	zt_dbw_drain(w, 30000);
	print_stats("final", w);
	zt_dbw_stop(w);
	return 0;
}

static int load_expect(int argc, char **argv, struct zt_flow_record **out, size_t *n)
{
	struct zt_flow_record *all = NULL;
	size_t total = 0;

	for (int i = 0; i < argc; i++) {
		struct stat st;
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		size_t k;

		if (fd < 0 || fstat(fd, &st) < 0 || st.st_size % sizeof(**out)) {
			fprintf(stderr, "dbtool: %s: unreadable or not whole records\n", argv[i]);
			return -1;
		}
		k = (size_t)st.st_size / sizeof(**out);
		all = realloc(all, (total + k + 1) * sizeof(*all));
		if (!all ||
		    read(fd, all + total, k * sizeof(*all)) != (ssize_t)(k * sizeof(*all))) {
			fprintf(stderr, "dbtool: %s: read failed\n", argv[i]);
			return -1;
		}
		close(fd);
		total += k;
	}
	*out = all;
	*n = total;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(((const struct zt_flow_record *)a)->id,
		      ((const struct zt_flow_record *)b)->id, 16);
}

static int mismatches;

static void want_text(const char *id, const char *col, PGresult *r, int row, int c, const char *exp,
		      bool nullable)
{
	char *s = zt_db_text(exp);
	bool isnull = PQgetisnull(r, row, c);

	if ((nullable && !*exp) ? !isnull : (isnull || strcmp(PQgetvalue(r, row, c), s))) {
		if (mismatches++ < 20)
			fprintf(stderr, "check: %s: %s is '%s'%s, expected '%s'%s\n", id, col,
				PQgetvalue(r, row, c), isnull ? " (NULL)" : "", s,
				nullable && !*exp ? " (NULL)" : "");
	}
	free(s);
}

static int64_t sat32(int64_t v)
{
	return v < 0 ? 0 : v > INT32_MAX ? INT32_MAX : v;
}

static void want_num(const char *id, const char *col, PGresult *r, int row, int c, bool present,
		     int64_t exp)
{
	bool isnull = PQgetisnull(r, row, c);

	if (!present ? !isnull : (isnull || strtoll(PQgetvalue(r, row, c), NULL, 10) != exp)) {
		if (mismatches++ < 20)
			fprintf(stderr, "check: %s: %s is '%s'%s, expected %" PRId64 "%s\n", id,
				col, PQgetvalue(r, row, c), isnull ? " (NULL)" : "", exp,
				present ? "" : " (NULL)");
	}
}

static int cmd_check(int argc, char **argv)
{
	static const char *const flagn[8] = {
		"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"
	};
	struct zt_flow_record *e;
	size_t n;
	PGconn *c;
	PGresult *r;
	char err[512], *sql;
	const char *where = "true";
	int rows;

	if (argc >= 6 && !strcmp(argv[argc - 2], "--where")) {
		where = argv[argc - 1];
		argc -= 2;
	}
	if (argc < 4 || load_expect(argc - 3, argv + 3, &e, &n))
		return 2;
	qsort(e, n, sizeof(*e), cmp_id);
	for (size_t i = 1; i < n; i++)
		if (!memcmp(e[i].id, e[i - 1].id, 16)) {
			fprintf(stderr, "check: expected records repeat an id\n");
			return 1;
		}
	if (zt_db_connect(argv[2], &c, err, sizeof(err))) {
		fprintf(stderr, "dbtool: %s\n", err);
		return 1;
	}
	if (asprintf(
		    &sql,
		    "SELECT id, host(source_ip), host(dest_ip), source_port, dest_port, "
		    "protocol, bytes_sent, bytes_received, packet_count, duration_ms, "
		    "array_to_string(flags, ','), "
		    "(extract(epoch FROM start_time) * 1000000)::bigint, "
		    "(extract(epoch FROM end_time) * 1000000)::bigint, anomaly_score, threat_type, "
		    "blocked, (extract(epoch FROM created_at) * 1000000)::bigint, packets_sent, "
		    "packets_received, verdict, drop_reason, policy, source_identity, "
		    "dest_identity, source_workload, dest_workload, node, interface, direction, "
		    "flow_kind, aggregate_count, family(source_ip), protocol_name "
		    "FROM network_flows WHERE %s ORDER BY id",
		    where) < 0)
		return 1;
	r = PQexec(c, sql);
	free(sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "check: %s", PQresultErrorMessage(r));
		return 1;
	}
	rows = PQntuples(r);
	if ((size_t)rows != n) {
		fprintf(stderr, "check: network_flows has %d rows, expected %zu\n", rows, n);
		mismatches++;
	}
	for (int i = 0, j = 0; i < rows && (size_t)j < n;) {
		char id[40], a[64], flags[64] = "", pn[8], *tt;
		const struct zt_flow_record *x = &e[j];
		int k;

		zt_uuid_format(x->id, id, sizeof(id));
		k = strcmp(PQgetvalue(r, i, 0), id);
		if (k) {
			if (mismatches++ < 20)
				fprintf(stderr, "check: %s %s\n", k < 0 ? PQgetvalue(r, i, 0) : id,
					k < 0 ? "in the table but not expected (or twice)" :
						"expected but not in the table");
			k < 0 ? i++ : j++;
			continue;
		}
		inet_ntop(x->family, x->source_ip, a, sizeof(a));
		want_text(id, "source_ip", r, i, 1, a, false);
		inet_ntop(x->family, x->dest_ip, a, sizeof(a));
		want_text(id, "dest_ip", r, i, 2, a, false);
		/* Ports are NOT NULL: 0 where the record has none. */
		want_num(id, "source_port", r, i, 3, true,
			 x->present & ZT_FR_HAS_SPORT ? x->source_port : 0);
		want_num(id, "dest_port", r, i, 4, true,
			 x->present & ZT_FR_HAS_DPORT ? x->dest_port : 0);
		want_num(id, "protocol", r, i, 5, true, x->protocol);
		want_text(id, "protocol_name", r, i, 32,
			  zt_flowrec_proto_name(x->protocol, pn, sizeof(pn)), false);
		want_num(id, "bytes_sent", r, i, 6, true, x->bytes_sent);
		want_num(id, "bytes_received", r, i, 7, true, x->bytes_received);
		want_num(id, "packet_count", r, i, 8, true, sat32(x->packet_count));
		want_num(id, "duration_ms", r, i, 9, true, sat32(x->duration_ms));
		for (int b = 0; b < 8; b++)
			if (x->tcp_flags & (1 << b))
				snprintf(flags + strlen(flags), sizeof(flags) - strlen(flags),
					 "%s%s", *flags ? "," : "", flagn[b]);
		want_text(id, "flags", r, i, 10, flags, false);
		want_num(id, "start_time", r, i, 11, true, x->start_time_us);
		want_num(id, "end_time", r, i, 12, true, x->end_time_us);
		if ((x->present & ZT_FR_HAS_ANOMALY) ?
			    (PQgetisnull(r, i, 13) ||
			     strtof(PQgetvalue(r, i, 13), NULL) != x->anomaly_score) :
			    !PQgetisnull(r, i, 13)) {
			if (mismatches++ < 20)
				fprintf(stderr, "check: %s: anomaly_score is '%s'\n", id,
					PQgetvalue(r, i, 13));
		}
		tt = zt_db_text_chars(x->threat_type, ZT_FR_THREAT_CHARS);
		want_text(id, "threat_type", r, i, 14, tt ? tt : "", true);
		free(tt);
		want_text(id, "blocked", r, i, 15, x->blocked ? "t" : "f", false);
		if (x->present & ZT_FR_HAS_CREATED)
			want_num(id, "created_at", r, i, 16, true, x->created_at_us);
		else if (PQgetisnull(r, i, 16) && mismatches++ < 20)
			fprintf(stderr, "check: %s: created_at is NULL\n", id);
		want_num(id, "packets_sent", r, i, 17, true, x->packets_sent);
		want_num(id, "packets_received", r, i, 18, true, x->packets_received);
		want_text(id, "verdict", r, i, 19, x->verdict, true);
		want_text(id, "drop_reason", r, i, 20, x->drop_reason, true);
		want_text(id, "policy", r, i, 21, x->policy, true);
		want_num(id, "source_identity", r, i, 22, x->present & ZT_FR_HAS_SID,
			 x->source_identity);
		want_num(id, "dest_identity", r, i, 23, x->present & ZT_FR_HAS_DID,
			 x->dest_identity);
		want_text(id, "source_workload", r, i, 24, x->source_workload, true);
		want_text(id, "dest_workload", r, i, 25, x->dest_workload, true);
		want_text(id, "node", r, i, 26, x->node, false);
		want_text(id, "interface", r, i, 27, x->interface, true);
		want_text(id, "direction", r, i, 28, x->direction, true);
		want_text(id, "flow_kind", r, i, 29, zt_flow_kind_name(x->kind), false);
		want_num(id, "aggregate_count", r, i, 30, true, x->aggregate_count);
		want_num(id, "family", r, i, 31, true, x->family == AF_INET6 ? 6 : 4);
		i++;
		j++;
	}
	PQclear(r);
	PQfinish(c);
	free(e);
	if (mismatches) {
		printf("check: %d mismatches\n", mismatches);
		return 1;
	}
	printf("check: %zu rows, each once, every value as expected\n", n);
	return 0;
}

static int cmd_resubmit(int argc, char **argv)
{
	struct zt_config cfg;
	struct zt_flow_record *e;
	struct zt_dbw *w;
	char err[512];
	size_t n;

	if (argc != 5 || load_expect(1, argv + 4, &e, &n))
		return 2;
	zt_config_defaults(&cfg);
	snprintf(cfg.database.url, sizeof(cfg.database.url), "%s", argv[2]);
	snprintf(cfg.database.spool_dir, sizeof(cfg.database.spool_dir), "%s", argv[3]);
	w = zt_dbw_new(&cfg, err, sizeof(err));
	if (!w) {
		fprintf(stderr, "dbtool: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < n; i += 1000)
		zt_dbw_submit(w, e + i, n - i < 1000 ? n - i : 1000);
	zt_dbw_drain(w, 30000);
	print_stats("final", w);
	zt_dbw_stop(w);
	free(e);
	return 0;
}

static int cmd_conninfo(const char *conninfo)
{
	static const char *const keys[] = { "connect_timeout",	"keepalives",
					    "keepalives_idle",	"keepalives_interval",
					    "keepalives_count", "tcp_user_timeout" };
	PQconninfoOption *opts;
	PGconn *c;
	PGresult *r;
	char err[512];

	if (zt_db_connect(conninfo, &c, err, sizeof(err))) {
		fprintf(stderr, "dbtool: %s\n", err);
		return 1;
	}
	opts = PQconninfo(c);
	for (size_t i = 0; i < ZT_ARRAY_SIZE(keys); i++)
		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (!strcmp(o->keyword, keys[i]))
				printf("%s=%s ", keys[i], o->val ? o->val : "");
	PQconninfoFree(opts);
	r = PQexec(c, "SELECT current_setting('statement_timeout'), current_setting('work_mem')");
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		printf("statement_timeout=%s work_mem=%s\n", PQgetvalue(r, 0, 0),
		       PQgetvalue(r, 0, 1));
	else
		printf("statement_timeout=? work_mem=?\n");
	PQclear(r);
	PQfinish(c);
	return 0;
}

static int cmd_spool_ids(const char *dir)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), ret = 0;

	if (n < 0) {
		fprintf(stderr, "dbtool: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4200], why[256], id[40], a[64], b[64];
		struct zt_flow_record *recs = NULL;
		uint8_t *buf = NULL;
		size_t nrec = 0;
		struct stat st;
		FILE *f;

		if (strncmp(ents[i]->d_name, "seg-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		f = fopen(path, "rb");
		if (!f || fstat(fileno(f), &st) < 0 || !(buf = malloc((size_t)st.st_size + 1)) ||
		    fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size ||
		    zt_spool_decode(buf, (size_t)st.st_size, &recs, &nrec, why, sizeof(why))) {
			fprintf(stderr, "dbtool: %s: unreadable segment\n", path);
			ret = 1;
		}
		for (size_t k = 0; k < nrec; k++) {
			zt_uuid_format(recs[k].id, id, sizeof(id));
			inet_ntop(recs[k].family, recs[k].source_ip, a, sizeof(a));
			inet_ntop(recs[k].family, recs[k].dest_ip, b, sizeof(b));
			printf("%s %s %s:%u %u\n", id, a, b, recs[k].dest_port, recs[k].protocol);
		}
		if (f)
			fclose(f);
		free(buf);
		free(recs);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return ret;
}

int main(int argc, char **argv)
{
	char err[512];
	int r;

	zt_log_set_level(getenv("DBTOOL_DEBUG") ? ZT_LOG_DEBUG : ZT_LOG_INFO);
	if (argc >= 3 && !strcmp(argv[1], "migrate")) {
		int applied = 0;

		r = zt_db_migrate(argv[2], argc > 3 ? argv[3] : NULL, &applied, err, sizeof(err));
		if (r) {
			fprintf(stderr, "dbtool: %s\n", err);
			return 1;
		}
		printf("migrate: applied %d\n", applied);
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "maintain")) {
		PGconn *c;
		int created = 0, dropped = 0;

		if (zt_db_connect(argv[2], &c, err, sizeof(err)) ||
		    zt_db_maintain(c, (unsigned)atoi(argv[3]), 2, &created, &dropped, err,
				   sizeof(err))) {
			fprintf(stderr, "dbtool: %s\n", err);
			return 1;
		}
		printf("maintain: created %d dropped %d: %s\n", created, dropped, err);
		PQfinish(c);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "write")) {
		r = cmd_write(argc, argv);
		if (r == 2)
			fprintf(stderr, "usage: dbtool write CONN SPOOL N EXPECT [options]\n");
		return r;
	}
	if (argc >= 2 && !strcmp(argv[1], "resubmit"))
		return cmd_resubmit(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "check"))
		return cmd_check(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "conninfo"))
		return cmd_conninfo(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "spool-ids"))
		return cmd_spool_ids(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "audit-append")) {
		struct zt_audit *a = zt_audit_new(argv[2]);
		int n = atoi(argv[3]);
		uint64_t seq = 0;

		for (int i = 0; i < n; i++) {
			char subj[64], det[128];

			snprintf(subj, sizeof(subj), "block 198.18.0.%d/32", i % 256);
			snprintf(det, sizeof(det), "{\"ttl\": %d, \"reason\": \"test \\\"%d\\\"\"}",
				 i * 10, i);
			if (zt_audit_append(a, "block_add", "dbtool", subj, det, &seq, NULL, err,
					    sizeof(err))) {
				fprintf(stderr, "dbtool: %s\n", err);
				zt_audit_free(a);
				return 1;
			}
		}
		zt_audit_free(a);
		printf("audit: appended %d, last seq %" PRIu64 "\n", n, seq);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "audit-verify"))
		return zt_audit_verify_cli(argc > 2 ? argv[2] : NULL, stdout, stderr);
	fprintf(stderr,
		"usage: dbtool migrate|maintain|write|check|audit-append|audit-verify ...\n");
	return 2;
}
