// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: metrics registry, Prometheus text exposition, HTTP server. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/metrics.h"

#define L(...)                    \
	(const char *const[])     \
	{                         \
		__VA_ARGS__, NULL \
	}

static int n_snap, n_collect;

static void snap(void *ctx)
{
	int *v = ctx;

	n_snap++;
	*v = 7 * n_snap; /* what the collect callback reports */
}

/* Emits out of order and one series twice: output must be sorted, first kept. */
static void collect_verdicts(void *ctx, struct zt_metric_sink *s)
{
	int *v = ctx;

	n_collect++;
	assert_int_equal(zt_metric_emit_u64(s, L("deny"), (uint64_t)*v), 0);
	assert_int_equal(zt_metric_emit_u64(s, L("allow"), UINT64_MAX), 0);
	assert_int_equal(zt_metric_emit(s, L("allow"), 5), 0);
	assert_int_equal(zt_metric_emit(s, NULL, 1), -EINVAL);
}

static char *render(struct zt_metrics *m)
{
	char *t;
	size_t len;

	assert_int_equal(zt_metrics_render(m, &t, &len), 0);
	assert_int_equal(strlen(t), len);
	return t;
}

static void test_exposition_exact(void **state)
{
	static const double b[] = { 0.005, 0.1, 1, 2.5 };
	struct zt_metrics *m;
	struct zt_metric *c, *g, *h, *empty;
	int snapv = 0;
	char *t;
	const char *want = "# HELP zt_a_total Escapes: back\\\\slash and\\nnewline \"quoted\".\n"
			   "# TYPE zt_a_total counter\n"
			   "zt_a_total{k=\"a\\\\b\",m=\"x\"} 1\n"
			   "zt_a_total{k=\"l\\nm\",m=\"x\"} 2.5\n"
			   "zt_a_total{k=\"q\\\"x\",m=\"\"} 3\n"
			   "# HELP zt_b_seconds A histogram.\n"
			   "# TYPE zt_b_seconds histogram\n"
			   "zt_b_seconds_bucket{le=\"0.005\"} 1\n"
			   "zt_b_seconds_bucket{le=\"0.1\"} 3\n"
			   "zt_b_seconds_bucket{le=\"1\"} 4\n"
			   "zt_b_seconds_bucket{le=\"2.5\"} 4\n"
			   "zt_b_seconds_bucket{le=\"+Inf\"} 5\n"
			   "zt_b_seconds_sum 101.105\n"
			   "zt_b_seconds_count 5\n"
			   "# HELP zt_c Gauge without labels.\n"
			   "# TYPE zt_c gauge\n"
			   "zt_c -0.25\n"
			   "# HELP zt_d_total From a callback.\n"
			   "# TYPE zt_d_total counter\n"
			   "zt_d_total{verdict=\"allow\"} 18446744073709551615\n"
			   "zt_d_total{verdict=\"deny\"} 7\n";

	assert_int_equal(zt_metrics_new(&m), 0);
	/* Registered out of name order on purpose. */
	assert_int_equal(zt_metrics_add(m, "zt_d_total", "From a callback.", ZT_METRIC_COUNTER,
					L("verdict"), collect_verdicts, &snapv, NULL),
			 0);
	assert_int_equal(zt_metrics_add(m, "zt_c", "Gauge without labels.", ZT_METRIC_GAUGE, NULL,
					NULL, NULL, &g),
			 0);
	assert_int_equal(zt_metrics_add_histogram(m, "zt_b_seconds", "A histogram.", b, 4, &h), 0);
	assert_int_equal(zt_metrics_add(m, "zt_a_total",
					"Escapes: back\\slash and\nnewline \"quoted\".",
					ZT_METRIC_COUNTER, L("k", "m"), NULL, NULL, &c),
			 0);
	assert_int_equal(zt_metrics_add(m, "zt_e", "Never set: left out.", ZT_METRIC_GAUGE, NULL,
					NULL, NULL, &empty),
			 0);
	assert_int_equal(zt_metrics_add_snapshot(m, snap, &snapv), 0);

	assert_int_equal(zt_metric_add(c, L("q\"x", ""), 3), 0);
	assert_int_equal(zt_metric_add(c, L("l\nm", "x"), 2), 0);
	assert_int_equal(zt_metric_add(c, L("l\nm", "x"), 0.5), 0);
	assert_int_equal(zt_metric_set(c, L("a\\b", "x"), 1), 0);
	assert_int_equal(zt_metric_set(g, NULL, 4), 0);
	assert_int_equal(zt_metric_add(g, NULL, -4.25), 0);
	zt_metric_observe(h, 0.005); /* le is inclusive */
	zt_metric_observe(h, 0.05);
	zt_metric_observe(h, 0.05);
	zt_metric_observe(h, 1);
	zt_metric_observe(h, 100);
	zt_metric_observe(h, NAN); /* ignored */

	t = render(m);
	assert_string_equal(t, want);
	free(t);
	assert_int_equal(n_snap, 1);
	assert_int_equal(n_collect, 1);
	/* Stable: the same again but for the callback's value. */
	t = render(m);
	assert_non_null(strstr(t, "zt_d_total{verdict=\"deny\"} 14\n"));
	assert_int_equal(strlen(t), strlen(want) + 1);
	free(t);
	zt_metrics_free(m);
}

static void test_registration_rules(void **state)
{
	static const double bad_b[] = { 1, 1 };
	static const double inf_b[] = { 1, INFINITY };
	struct zt_metrics *m;
	struct zt_metric *c, *g, *h;

	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(
		zt_metrics_add(m, "zt_requests", "h", ZT_METRIC_COUNTER, NULL, NULL, NULL, NULL),
		-EINVAL); /* counters end in _total */
	assert_int_equal(zt_metrics_add(m, "1zt", "h", ZT_METRIC_GAUGE, NULL, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(zt_metrics_add(m, "zt-x", "h", ZT_METRIC_GAUGE, NULL, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(zt_metrics_add(m, "", "h", ZT_METRIC_GAUGE, NULL, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(
		zt_metrics_add(m, "zt_x", "h", ZT_METRIC_GAUGE, L("__r"), NULL, NULL, NULL),
		-EINVAL);
	assert_int_equal(
		zt_metrics_add(m, "zt_x", "h", ZT_METRIC_GAUGE, L("a:b"), NULL, NULL, NULL),
		-EINVAL);
	assert_int_equal(
		zt_metrics_add(m, "zt_x", "h", ZT_METRIC_GAUGE, L("a", "a"), NULL, NULL, NULL),
		-EINVAL);
	assert_int_equal(
		zt_metrics_add(m, "zt_x", "h", ZT_METRIC_HISTOGRAM, NULL, NULL, NULL, NULL),
		-EINVAL);
	assert_int_equal(zt_metrics_add_histogram(m, "zt_h", "h", bad_b, 2, NULL), -EINVAL);
	assert_int_equal(zt_metrics_add_histogram(m, "zt_h", "h", inf_b, 2, NULL), -EINVAL);
	assert_int_equal(
		zt_metrics_add(m, "zt:x_total", "h", ZT_METRIC_COUNTER, L("a"), NULL, NULL, &c), 0);
	assert_int_equal(
		zt_metrics_add(m, "zt:x_total", "h", ZT_METRIC_GAUGE, NULL, NULL, NULL, NULL),
		-EEXIST);
	assert_int_equal(zt_metrics_add(m, "zt_g", "h", ZT_METRIC_GAUGE, NULL, NULL, NULL, &g), 0);
	assert_int_equal(zt_metrics_add_histogram(m, "zt_h", "h", NULL, 0, &h), 0);
	assert_int_equal(zt_metric_add(c, L("v"), -1), -EINVAL); /* counters only go up */
	assert_int_equal(zt_metric_add(c, L("v"), NAN), -EINVAL);
	assert_int_equal(zt_metric_add(c, NULL, 1), -EINVAL); /* label value missing */
	assert_int_equal(zt_metric_add(g, NULL, -1), 0);
	assert_int_equal(zt_metric_set(h, NULL, 1), -EINVAL);
	assert_int_equal(zt_metric_set_collect(h, NULL, NULL), -EINVAL);
	assert_int_equal(zt_metrics_add_snapshot(m, NULL, NULL), -EINVAL);
	zt_metric_observe(g, 1); /* not a histogram: ignored */
	zt_metrics_free(m);
}

static void test_numbers(void **state)
{
	struct zt_metrics *m;
	struct zt_metric *g;
	char *t;

	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(zt_metrics_add(m, "zt_n", "n", ZT_METRIC_GAUGE, L("v"), NULL, NULL, &g),
			 0);
	assert_int_equal(zt_metric_set(g, L("a"), 0.1), 0);
	assert_int_equal(zt_metric_set(g, L("b"), 1e-05), 0);
	assert_int_equal(zt_metric_set(g, L("c"), NAN), 0);
	assert_int_equal(zt_metric_set(g, L("d"), INFINITY), 0);
	assert_int_equal(zt_metric_set(g, L("e"), -INFINITY), 0);
	assert_int_equal(zt_metric_set(g, L("f"), 1e20), 0);
	assert_int_equal(zt_metric_set(g, L("g"), 123456789), 0);
	assert_int_equal(zt_metric_set(g, L("h"), -0.0), 0);
	assert_int_equal(zt_metric_set(g, L("i"), 1.0 / 3), 0);
	t = render(m);
	assert_string_equal(t, "# HELP zt_n n\n# TYPE zt_n gauge\n"
			       "zt_n{v=\"a\"} 0.1\n"
			       "zt_n{v=\"b\"} 1e-05\n"
			       "zt_n{v=\"c\"} NaN\n"
			       "zt_n{v=\"d\"} +Inf\n"
			       "zt_n{v=\"e\"} -Inf\n"
			       "zt_n{v=\"f\"} 1e+20\n"
			       "zt_n{v=\"g\"} 123456789\n"
			       "zt_n{v=\"h\"} 0\n"
			       "zt_n{v=\"i\"} 0.3333333333333333\n");
	free(t);
	zt_metrics_free(m);
}

static void collect_xdp(void *ctx, struct zt_metric_sink *s)
{
	assert_int_equal(zt_metrics_emit_xdp(s, ctx, false), 0);
}

static void test_std_families(void **state)
{
	struct zt_counter c[ZT_XDP_STATS_SLOTS] = {};
	struct zt_metrics *m;
	struct zt_metrics_std f;
	const char *names[] = {
		"ztagent_xdp_packets_total",
		"ztagent_xdp_bytes_total",
		"ztagent_tc_packets_total",
		"ztagent_tc_bytes_total",
		"ztagent_tc_flow_verdicts_total",
		"ztagent_policy_denials_total",
		"ztagent_blocklist_entries",
		"ztagent_ringbuf_lost_events_total",
		"ztagent_db_flow_rows_written_total",
		"ztagent_db_flow_rows_refused_total",
		"ztagent_spool_bytes",
		"ztagent_spool_dropped_records_total",
		"ztagent_audit_events_written_total",
		"ztagent_audit_events_dropped_total",
		"ztagent_audit_events_pending",
	};
	char *t, *p;
	int n = 0;

	c[ZT_ACT_DROP * ZT_XR_MAX + ZT_XR_BLOCKLIST].packets = 42;
	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(zt_metrics_register_std(m, "1.2.3\"x", &f), 0);
	assert_non_null(f.policy_apply);
	assert_int_equal(zt_metric_set_collect(f.xdp_packets, collect_xdp, c), 0);
	assert_int_equal(zt_metric_add(f.db_flow_rows_written, NULL, 10), 0);
	assert_int_equal(zt_metric_add(f.tc_flow_verdicts, L("denied"), 2), 0);
	assert_int_equal(zt_metric_set(f.blocklist_entries, L("ipv4"), 3), 0);
	zt_metric_observe(f.policy_apply, 0.003);
	t = render(m);
	assert_non_null(strstr(t, "\nztagent_build_info{version=\"1.2.3\\\"x\"} 1\n"));
	assert_non_null(strstr(t, "# TYPE ztagent_policy_apply_seconds histogram\n"));
	assert_non_null(strstr(t, "\nztagent_policy_apply_seconds_bucket{le=\"0.0025\"} 0\n"
				  "ztagent_policy_apply_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(t, "\nztagent_policy_apply_seconds_bucket{le=\"+Inf\"} 1\n"
				  "ztagent_policy_apply_seconds_sum 0.003\n"
				  "ztagent_policy_apply_seconds_count 1\n"));
	assert_non_null(strstr(
		t, "\nztagent_xdp_packets_total{action=\"drop\",reason=\"blocklist\"} 42\n"));
	assert_non_null(strstr(t, "\nztagent_db_flow_rows_written_total 10\n"));
	assert_non_null(strstr(t, "\nztagent_blocklist_entries{family=\"ipv4\"} 3\n"));
	for (p = t; (p = strstr(p, "\nztagent_xdp_packets_total{")); p++)
		n++;
	assert_int_equal(n, ZT_XDP_STATS_SLOTS);
	/* Families without samples stay out, but they are registered. */
	assert_null(strstr(t, "ztagent_spool_bytes"));
	/* Names and help say what is counted: verdicts on flows as the TC program
	 * reports them (not recorded flows), rows of network_flows (not every row). */
	assert_null(strstr(t, "ztagent_flows_total"));
	assert_null(strstr(t, "ztagent_db_rows_"));
	assert_non_null(strstr(t,
			       "\n# HELP ztagent_tc_flow_verdicts_total Policy verdicts the TC "
			       "program reported and the agent read, by verdict (allowed, denied, "
			       "audit): one per new flow on each endpoint interface it crosses"));
	assert_non_null(strstr(t, "\n# HELP ztagent_db_flow_rows_written_total Rows inserted into "
				  "network_flows"));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(
			zt_metrics_add(m, names[i], "x", ZT_METRIC_GAUGE, NULL, NULL, NULL, NULL),
			-EEXIST);
	}
	free(t);
	zt_metrics_free(m);
}

struct obs_arg {
	struct zt_metric *h;
	struct zt_metric *c;
};

static void *observer(void *p)
{
	struct obs_arg *a = p;

	for (int i = 0; i < 20000; i++) {
		zt_metric_observe(a->h, (i & 1) ? 0.5 : 2);
		zt_metric_add(a->c, NULL, 1);
	}
	return NULL;
}

static void test_concurrent_observe(void **state)
{
	static const double b[] = { 1 };
	struct zt_metrics *m;
	struct obs_arg a;
	pthread_t th[4];
	char *t;

	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(zt_metrics_add_histogram(m, "zt_h_seconds", "h", b, 1, &a.h), 0);
	assert_int_equal(
		zt_metrics_add(m, "zt_c_total", "c", ZT_METRIC_COUNTER, NULL, NULL, NULL, &a.c), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, observer, &a), 0);
	for (int i = 0; i < 3; i++)
		free(render(m)); /* scrapes while observing */
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	t = render(m);
	assert_non_null(strstr(t, "zt_c_total 80000\n"));
	assert_non_null(strstr(t, "zt_h_seconds_bucket{le=\"1\"} 40000\n"
				  "zt_h_seconds_bucket{le=\"+Inf\"} 80000\n"
				  "zt_h_seconds_sum 100000\n"
				  "zt_h_seconds_count 80000\n"));
	free(t);
	zt_metrics_free(m);
}

/* ---- HTTP ---- */

/* Sends req to family/port and returns everything read until EOF. */
static char *http(int family, uint16_t port, const char *req)
{
	struct sockaddr_storage ss = {};
	socklen_t sl;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 5 };
	ssize_t r;

	assert_non_null(buf);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		sl = sizeof(*a);
	}
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (n + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	assert_int_equal(r, 0); /* EOF, not a timeout */
	buf[n] = '\0';
	close(fd);
	return buf;
}

static const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	assert_non_null(p);
	return p + 4;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_http(void **state)
{
	struct zt_metrics *m;
	struct zt_metrics_server *s;
	struct zt_metric *g;
	char err[256] = "", *want, *resp;
	size_t len;
	int fds = count_fds();
	uint16_t port;

	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(
		zt_metrics_add(m, "zt_up", "Up.", ZT_METRIC_GAUGE, L("who"), NULL, NULL, &g), 0);
	assert_int_equal(zt_metric_set(g, L("me"), 1), 0);
	assert_int_equal(zt_metrics_server_start(m, "127.0.0.1:0", &s, err, sizeof(err)), 0);
	assert_non_null(s);
	port = zt_metrics_server_port(s);
	assert_true(port > 0);
	assert_int_equal(zt_metrics_render(m, &want, &len), 0);

	resp = http(AF_INET, port, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	assert_non_null(strcasestr(resp, "\r\nContent-Type: text/plain; version=0.0.4; "
					 "charset=utf-8\r\n"));
	assert_string_equal(body_of(resp), want);
	free(resp);

	resp = http(AF_INET, port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.0 200 ", 13) || !strncmp(resp, "HTTP/1.1 200 ", 13));
	assert_string_equal(body_of(resp), want);
	free(resp);

	resp = http(AF_INET, port,
		    "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	assert_string_equal(body_of(resp), "");
	free(resp);

	resp = http(AF_INET, port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 404 ", 13));
	free(resp);
	resp = http(AF_INET, port,
		    "GET /metricsx HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 404 ", 13));
	free(resp);

	resp = http(AF_INET, port,
		    "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		    "Content-Length: 3\r\n\r\nabc");
	assert_true(!strncmp(resp, "HTTP/1.1 405 ", 13));
	assert_non_null(strcasestr(resp, "\r\nAllow: GET, HEAD\r\n"));
	free(resp);
	resp = http(AF_INET, port,
		    "DELETE /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 405 ", 13));
	free(resp);

	free(want);
	zt_metrics_server_stop(s);
	zt_metrics_free(m);
	assert_int_equal(count_fds(), fds); /* the listening socket is closed */
}

static void test_http_ipv6(void **state)
{
	struct zt_metrics *m;
	struct zt_metrics_server *s;
	char err[256] = "", *resp;
	int r;

	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(zt_metrics_add(m, "zt_v6", "v6.", ZT_METRIC_GAUGE, NULL, NULL, NULL, NULL),
			 0);
	r = zt_metrics_server_start(m, "[::1]:0", &s, err, sizeof(err));
	if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
		zt_metrics_free(m);
		skip(); /* no IPv6 loopback here */
	}
	assert_int_equal(r, 0);
	resp = http(AF_INET6, zt_metrics_server_port(s),
		    "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 200 ", 13));
	free(resp);
	zt_metrics_server_stop(s);
	zt_metrics_free(m);
}

static void test_server_errors(void **state)
{
	struct zt_metrics *m;
	struct zt_metrics_server *s = (void *)1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t sl = sizeof(a);
	char err[256] = "", addr[64], want[128];
	int fd;

	assert_int_equal(zt_metrics_new(&m), 0);
	assert_int_equal(zt_metrics_server_start(m, "", &s, err, sizeof(err)), 0);
	assert_null(s); /* off */
	zt_metrics_server_stop(NULL);

	/* Someone else holds the port: the error names the address. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	assert_int_equal(zt_metrics_server_start(m, addr, &s, err, sizeof(err)), -EADDRINUSE);
	assert_null(s);
	snprintf(want, sizeof(want), "metrics.listen %s: cannot bind: Address already in use",
		 addr);
	assert_string_equal(err, want);
	close(fd);

	assert_int_equal(zt_metrics_server_start(m, "localhost:9470", &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "metrics.listen 'localhost:9470': expected ADDR:PORT"));
	assert_int_equal(zt_metrics_server_start(m, "127.0.0.1:65536", &s, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(zt_metrics_server_start(m, ":0", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(zt_metrics_server_start(m, "127.0.0.1:00", &s, err, sizeof(err)), -EINVAL);
	/* Not an address of this host. */
	assert_int_equal(zt_metrics_server_start(m, "192.0.2.1:9470", &s, err, sizeof(err)),
			 -EADDRNOTAVAIL);
	assert_string_equal(err, "metrics.listen 192.0.2.1:9470: cannot bind: Cannot assign "
				 "requested address");
	zt_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exposition_exact),
		cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_std_families),
		cmocka_unit_test(test_concurrent_observe),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_ipv6),
		cmocka_unit_test(test_server_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
