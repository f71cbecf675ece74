// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_mtls: handshakes per second per core of the mTLS tunnel, through the
 * real code: a client tunnel and a server tunnel (src/mtls/tunnel.c) on
 * loopback, each on its own relay thread, and a one-byte echo behind the
 * server. Pods (socketpairs) open tunnels from 8 threads for a few seconds,
 * once with every handshake a full one (certificates, ECDSA P-256, X25519,
 * the SPIFFE checks) and once with resumption. The figure per core is
 * handshakes divided by the CPU seconds of each side's relay thread.
 * Every echoed byte is checked; a wrong or missing one fails the run.
 *
 *   build/tools/bench_mtls [SECONDS [PODS]]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/util.h"
#include "mtls/ca.h"
#include "mtls/tunnel.h"

#define TD "cluster.local"
static int THREADS = 8;
static const char web[] = "spiffe://" TD "/ns/bench/sa/client";
static const char db[] = "spiffe://" TD "/ns/bench/sa/server";

static int echo_fd;
static uint16_t echo_port;
static atomic_bool done;
static atomic_ullong ok_conns, bad_conns;
static struct zt_tunnel *cur_cli;
static struct sockaddr_in srv_addr;

static bool authorize(void *ctx, const char *peer, const struct zt_mtls_dest *d)
{
	(void)ctx;
	return strcmp(peer, d->role == ZT_MTLS_ROLE_SERVER ? web : db) == 0;
}

static int local_identity(void *ctx, const struct zt_mtls_dest *d, char *id, size_t n)
{
	(void)ctx;
	(void)d;
	snprintf(id, n, "%s", db);
	return 0;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[64];
	ssize_t n, got = 0;

	while ((n = read(fd, b + got, sizeof(b) - (size_t)got)) > 0)
		got += n;
	if (got > 0 && write(fd, b, (size_t)got) < 0) {
		/* the pod side counts what it did not get */
	}
	close(fd);
	return NULL;
}

/* One thread per connection: a slow pod must not hold up the others. */
static void *echo_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(echo_fd, NULL, NULL);
		pthread_t th;

		if (fd < 0)
			return NULL;
		if (pthread_create(&th, NULL, echo_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(th);
		else
			close(fd);
	}
}

static void *pod_main(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;

	while (!atomic_load(&done)) {
		struct zt_mtls_dest d = { .family = AF_INET, .port = echo_port, .src_port = 1 };
		int sv[2];
		char c = (char)('a' + rand_r(&seed) % 26), back = 0;
		struct pollfd p;

		memcpy(d.addr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
		memcpy(d.src_addr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			break;
		zt_tunnel_open(cur_cli, sv[1], &d, web, (struct sockaddr *)&srv_addr,
			       sizeof(srv_addr));
		if (write(sv[0], &c, 1) != 1)
			goto bad;
		shutdown(sv[0], SHUT_WR);
		p = (struct pollfd){ .fd = sv[0], .events = POLLIN };
		if (poll(&p, 1, 5000) != 1 || read(sv[0], &back, 1) != 1 || back != c)
			goto bad;
		atomic_fetch_add(&ok_conns, 1);
		close(sv[0]);
		continue;
bad:
		atomic_fetch_add(&bad_conns, 1);
		close(sv[0]);
	}
	return NULL;
}

static double mono(void)
{
	return (double)zt_now_mono_ns() / 1e9;
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st;
	(void)f;
	(void)w;
	return remove(p);
}

struct phase {
	double wall, cli_cpu, srv_cpu;
	uint64_t conns, bad, full, resumed;
};

static int run_phase(struct zt_tunnel *srv, struct zt_tunnel *cli, double secs, struct phase *out)
{
	struct zt_tunnel_stats s0, s1, c0, c1;
	pthread_t th[64];
	double t0;

	cur_cli = cli;
	atomic_store(&done, false);
	atomic_store(&ok_conns, 0);
	atomic_store(&bad_conns, 0);
	zt_tunnel_get_stats(srv, &s0);
	zt_tunnel_get_stats(cli, &c0);
	t0 = mono();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, pod_main, (void *)(uintptr_t)(i + 1));
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&done, true);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	out->wall = mono() - t0;
	usleep(200000);
	zt_tunnel_get_stats(srv, &s1);
	zt_tunnel_get_stats(cli, &c1);
	out->conns = atomic_load(&ok_conns);
	out->bad = atomic_load(&bad_conns);
	out->full = s1.handshakes_full - s0.handshakes_full;
	out->resumed = s1.handshakes_resumed - s0.handshakes_resumed;
	out->srv_cpu = s1.relay_cpu_s - s0.relay_cpu_s;
	out->cli_cpu = c1.relay_cpu_s - c0.relay_cpu_s;
	return out->bad ? -EIO : 0;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	char dir[] = "/tmp/bench-mtls.XXXXXX", p1[256], p2[256], p3[256], err[512];
	struct zt_svid_store_config sc = { .ttl_s = 3600 };
	struct zt_svid_issuer *iss;
	struct zt_svid_store *st;
	struct zt_trust *t1, *t2, *t3;
	struct zt_tunnel_config cfg = { 0 };
	struct zt_tunnel *srv, *cli_full, *cli_res;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct phase full, res;
	pthread_t echo;
	int rc = 0;

	if (secs <= 0)
		secs = 3.0;
	if (argc > 2)
		THREADS = atoi(argv[2]) > 0 && atoi(argv[2]) <= 64 ? atoi(argv[2]) : 8;
	if (!mkdtemp(dir))
		return 1;
	snprintf(p1, sizeof(p1), "%s/ca", dir);
	snprintf(p2, sizeof(p2), "%s/node", dir);
	if (zt_ca_init(TD, p1, 1, NULL, err, sizeof(err)) < 0 ||
	    zt_ca_issue_node(p1, "bench", p2, 1, NULL, err, sizeof(err)) < 0)
		goto fail;
	snprintf(p1, sizeof(p1), "%s/node/bundle.pem", dir);
	snprintf(p2, sizeof(p2), "%s/node/node.pem", dir);
	snprintf(p3, sizeof(p3), "%s/node/node.key", dir);
	if (zt_trust_load(p1, TD, &t1, err, sizeof(err)) < 0 ||
	    zt_trust_load(p1, TD, &t2, err, sizeof(err)) < 0 ||
	    zt_trust_load(p1, TD, &t3, err, sizeof(err)) < 0 ||
	    zt_svid_issuer_load(p2, p3, TD, t1, &iss, err, sizeof(err)) < 0 ||
	    zt_svid_store_new(&sc, iss, &st) < 0 ||
	    zt_svid_store_add(st, "bench", "client", (int64_t)time(NULL)) < 0 ||
	    zt_svid_store_add(st, "bench", "server", (int64_t)time(NULL)) < 0)
		goto fail;
	echo_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(echo_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(echo_fd, 1024) < 0 ||
	    getsockname(echo_fd, (struct sockaddr *)&a, &len) < 0)
		goto fail;
	echo_port = ntohs(a.sin_port);
	pthread_create(&echo, NULL, echo_main, NULL);
	pthread_detach(echo);

	cfg.svids = st;
	cfg.authorize = authorize;
	cfg.local_identity = local_identity;
	cfg.trust = t1;
	cfg.listen = "127.0.0.1:0";
	if (zt_tunnel_new(&cfg, &srv, err, sizeof(err)) < 0)
		goto fail;
	cfg.listen = NULL;
	cfg.trust = t2;
	cfg.no_resumption = true;
	if (zt_tunnel_new(&cfg, &cli_full, err, sizeof(err)) < 0)
		goto fail;
	cfg.trust = t3;
	cfg.no_resumption = false;
	if (zt_tunnel_new(&cfg, &cli_res, err, sizeof(err)) < 0)
		goto fail;
	zt_tunnel_start(srv);
	zt_tunnel_start(cli_full);
	zt_tunnel_start(cli_res);
	srv_addr.sin_family = AF_INET;
	srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv_addr.sin_port = htons(zt_tunnel_port(srv));

	rc |= run_phase(srv, cli_full, secs, &full);
	rc |= run_phase(srv, cli_res, secs, &res);
	printf("mTLS tunnel handshakes (TLS 1.3, ECDSA P-256 SVIDs, X25519; %d pods in parallel, %.1f s each,"
	       " one byte echoed per connection)\n",
	       THREADS, secs);
	printf("  %-9s %8s %10s %14s %14s %12s\n", "kind", "conns", "conns/s", "server hs/cpu-s",
	       "client hs/cpu-s", "bad");
	printf("  %-9s %8llu %10.0f %14.0f %14.0f %12llu\n", "full", (unsigned long long)full.conns,
	       full.conns / full.wall, full.srv_cpu > 0 ? full.full / full.srv_cpu : 0,
	       full.cli_cpu > 0 ? full.conns / full.cli_cpu : 0, (unsigned long long)full.bad);
	printf("  %-9s %8llu %10.0f %14.0f %14.0f %12llu\n", "resumed",
	       (unsigned long long)res.conns, res.conns / res.wall,
	       res.srv_cpu > 0 ? (res.resumed + res.full) / res.srv_cpu : 0,
	       res.cli_cpu > 0 ? res.conns / res.cli_cpu : 0, (unsigned long long)res.bad);
	printf("  full phase: %llu full handshakes at the server; resumed phase: %llu resumed, %llu full\n",
	       (unsigned long long)full.full, (unsigned long long)res.resumed,
	       (unsigned long long)res.full);
	if (full.full < full.conns || res.resumed == 0) {
		fprintf(stderr, "bench_mtls: the handshake kinds are not what was asked for\n");
		rc = 1;
	}
	zt_tunnel_free(cli_full);
	zt_tunnel_free(cli_res);
	zt_tunnel_free(srv);
	zt_svid_store_free(st);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return rc ? 1 : 0;
fail:
	fprintf(stderr, "bench_mtls: setup failed: %s\n", err);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return 1;
}
