// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test driver for tests/integration/metrics.sh: registers ztagent's metric
 * families with made-up values and serves them on ADDR (port 0: any free
 * port) until SIGTERM or SIGINT. Prints "port N" on stdout once it listens.
 *
 *   metrics_demo ADDR VERSION
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/metrics.h"

#define L(...)                    \
	(const char *const[])     \
	{                         \
		__VA_ARGS__, NULL \
	}

struct demo {
	struct zt_counter xdp[ZT_XDP_STATS_SLOTS];
	unsigned long scrapes;
};

/* As the daemon would: read the BPF maps once per scrape. */
static void snapshot(void *ctx)
{
	struct demo *d = ctx;

	d->scrapes++;
	for (unsigned int i = 0; i < ZT_XDP_STATS_SLOTS; i++) {
		d->xdp[i].packets = d->scrapes * (i + 1);
		d->xdp[i].bytes = d->scrapes * (i + 1) * 64;
	}
}

static void xdp_packets(void *ctx, struct zt_metric_sink *s)
{
	zt_metrics_emit_xdp(s, ((struct demo *)ctx)->xdp, false);
}

static void xdp_bytes(void *ctx, struct zt_metric_sink *s)
{
	zt_metrics_emit_xdp(s, ((struct demo *)ctx)->xdp, true);
}

static void blocklist(void *ctx, struct zt_metric_sink *s)
{
	zt_metric_emit_u64(s, L("ipv4"), 3);
	zt_metric_emit_u64(s, L("ipv6"), 1);
}

int main(int argc, char **argv)
{
	static const char *const verdicts[] = { "allow", "deny" };
	struct zt_metrics *m;
	struct zt_metrics_std f;
	struct zt_metrics_server *srv;
	struct demo d = {};
	char err[256];
	sigset_t set;
	int sig, r;

	if (argc != 3) {
		fprintf(stderr, "usage: metrics_demo ADDR VERSION\n");
		return 2;
	}
	if (zt_metrics_new(&m) || zt_metrics_register_std(m, argv[2], &f) ||
	    zt_metrics_add_snapshot(m, snapshot, &d) ||
	    zt_metric_set_collect(f.xdp_packets, xdp_packets, &d) ||
	    zt_metric_set_collect(f.xdp_bytes, xdp_bytes, &d) ||
	    zt_metric_set_collect(f.blocklist_entries, blocklist, NULL)) {
		fprintf(stderr, "metrics_demo: cannot register the families\n");
		return 1;
	}
	for (unsigned int i = 0; i < 2; i++) {
		zt_metric_add(f.tc_packets, (const char *const[]){ verdicts[i] }, 10 + i);
		zt_metric_add(f.tc_flow_verdicts, (const char *const[]){ verdicts[i] }, 5 + i);
	}
	zt_metric_add(f.policy_denials, NULL, 4);
	zt_metric_set(f.ringbuf_lost, NULL, 0);
	zt_metric_add(f.db_flow_rows_written, NULL, 1000);
	zt_metric_add(f.db_flow_rows_refused, NULL, 2);
	zt_metric_set(f.spool_bytes, NULL, 4096);
	zt_metric_add(f.spool_dropped, NULL, 0);
	zt_metric_observe(f.policy_apply, 0.0042);
	zt_metric_observe(f.policy_apply, 0.3);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the server thread starts */
	r = zt_metrics_server_start(m, argv[1], &srv, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "metrics_demo: %s\n", err);
		zt_metrics_free(m);
		return 1;
	}
	printf("port %u\n", zt_metrics_server_port(srv));
	fflush(stdout);
	sigwait(&set, &sig);
	zt_metrics_server_stop(srv);
	zt_metrics_free(m);
	return 0;
}
