// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the tunnel in one process over loopback, under ASan. A client
 * tunnel and a server tunnel, a real echo server behind the server; the
 * "pod" is one end of a socketpair. Checks bytes delivered (or not), the
 * half-close, resumption, refusals on both sides and a trust rollover that
 * leaves an open tunnel alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "mtls/tunnel.h"
#include "mtls_fixture.h"

#define TD "cluster.local"
static const char web[] = "spiffe://" TD "/ns/prod/sa/web";
static const char db[] = "spiffe://" TD "/ns/prod/sa/db";

/* ---- the echo server behind the server tunnel ---- */

static int echo_fd = -1;
static uint16_t echo_port;
static atomic_ullong echo_bytes, echo_conns;
static pthread_t echo_thread;

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		atomic_fetch_add(&echo_bytes, (unsigned long long)n);
		for (ssize_t o = 0; o < n;) {
			ssize_t w = write(fd, buf + o, (size_t)(n - o));

			if (w <= 0)
				goto out;
			o += w;
		}
	}
	shutdown(fd, SHUT_WR); /* the client's half-close, answered */
out:
	close(fd);
	return NULL;
}

static void *echo_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(echo_fd, NULL, NULL);
		pthread_t th;

		if (fd < 0)
			return NULL;
		atomic_fetch_add(&echo_conns, 1);
		pthread_create(&th, NULL, echo_conn, (void *)(intptr_t)fd);
		pthread_detach(th);
	}
}

/* ---- policy for the test ---- */

static atomic_bool allow_client = true, allow_server = true;

static bool authorize(void *ctx, const char *peer, const struct zt_mtls_dest *dst)
{
	(void)ctx;
	if (dst->role == ZT_MTLS_ROLE_SERVER)
		return atomic_load(&allow_client) && strcmp(peer, web) == 0 &&
		       dst->port == echo_port;
	return atomic_load(&allow_server) && strcmp(peer, db) == 0;
}

/*
 * test_handshake_off_relay: while slow_hs_ms is set, a server handshake's
 * call (port 0: before the header) stays that long in here, and says which
 * thread it was on.
 */
static atomic_int slow_hs_ms;
static atomic_uint slow_on_worker, slow_elsewhere;

static int local_identity(void *ctx, const struct zt_mtls_dest *dst, char *id, size_t n)
{
	int ms = atomic_load(&slow_hs_ms);

	(void)ctx;
	if (ms && dst->port == 0) {
		char name[16] = "";

		pthread_getname_np(pthread_self(), name, sizeof(name));
		atomic_fetch_add(
			strcmp(name, "zt-mtls-hs") == 0 ? &slow_on_worker : &slow_elsewhere, 1);
		usleep((useconds_t)ms * 1000);
	}
	if (dst->family != AF_INET || memcmp(dst->addr, (uint8_t[]){ 127, 0, 0, 1 }, 4) != 0)
		return -ENOENT;
	snprintf(id, n, "%s", db);
	return 0;
}

struct world {
	struct fx f, other;
	struct zt_svid_store *store;
	struct zt_tunnel *cli, *srv;
	struct sockaddr_in srv_addr;
};

static struct world W;
static int lsn_fd = -1; /* test_relay_accepts: closed by teardown, after the tunnel watching it */

static int setup(void **state)
{
	struct zt_svid_store_config sc = { .ttl_s = 3600 };
	struct zt_tunnel_config cc = { 0 }, scfg = { 0 };
	struct zt_trust *t2;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	char err[256];

	(void)state;
	if (fx_make(&W.f, TD, "node-1") < 0 || fx_make(&W.other, TD, "node-x") < 0)
		return -1;
	echo_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(echo_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(echo_fd, 64) < 0 ||
	    getsockname(echo_fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	echo_port = ntohs(a.sin_port);
	pthread_create(&echo_thread, NULL, echo_main, NULL);

	if (zt_svid_store_new(&sc, W.f.iss, &W.store) < 0)
		return -1;
	W.f.iss = NULL;
	if (zt_svid_store_add(W.store, "prod", "web", (int64_t)time(NULL)) < 0 ||
	    zt_svid_store_add(W.store, "prod", "db", (int64_t)time(NULL)) < 0)
		return -1;
	if (zt_trust_load(W.f.bundle, TD, &t2, err, sizeof(err)) < 0)
		return -1;
	scfg.svids = W.store;
	scfg.trust = t2;
	scfg.authorize = authorize;
	scfg.local_identity = local_identity;
	scfg.listen = "127.0.0.1:0";
	scfg.handshake_timeout_ms = 3000;
	if (zt_tunnel_new(&scfg, &W.srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	cc = scfg;
	cc.listen = NULL;
	cc.trust = W.f.trust;
	W.f.trust = NULL;
	if (zt_tunnel_new(&cc, &W.cli, err, sizeof(err)) < 0)
		return -1;
	if (zt_tunnel_start(W.srv) < 0 || zt_tunnel_start(W.cli) < 0)
		return -1;
	W.srv_addr.sin_family = AF_INET;
	W.srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	W.srv_addr.sin_port = htons(zt_tunnel_port(W.srv));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	zt_tunnel_free(W.cli);
	zt_tunnel_free(W.srv);
	if (lsn_fd >= 0)
		close(lsn_fd);
	zt_svid_store_free(W.store);
	shutdown(echo_fd, SHUT_RDWR);
	close(echo_fd);
	pthread_join(echo_thread, NULL);
	fx_free(&W.f);
	fx_free(&W.other);
	return 0;
}

/* ---- helpers ---- */

static struct zt_mtls_dest echo_dest(void)
{
	struct zt_mtls_dest d = { .family = AF_INET, .port = echo_port, .src_port = 40000 };

	memcpy(d.addr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
	memcpy(d.src_addr, (uint8_t[]){ 127, 0, 0, 1 }, 4);
	return d;
}

/*
 * A pod connection through tunnel t to the echo server by way of peer (the
 * server tunnel, or a proxy in front of it): our end of the socketpair.
 * With msg, the pod has written it and half-closed before the tunnel gets
 * the connection, so the relay reads them as soon as it takes it.
 */
static int pod_open_via(struct zt_tunnel *t, const char *src, const struct sockaddr_in *peer,
			const char *msg)
{
	int sv[2];
	struct zt_mtls_dest d = echo_dest();

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (msg) {
		assert_int_equal(write(sv[0], msg, strlen(msg)), (ssize_t)strlen(msg));
		shutdown(sv[0], SHUT_WR);
	}
	assert_int_equal(
		zt_tunnel_open(t, sv[1], &d, src, (const struct sockaddr *)peer, sizeof(*peer)), 0);
	return sv[0];
}

static int pod_open_on(struct zt_tunnel *t, const char *src)
{
	return pod_open_via(t, src, &W.srv_addr, NULL);
}

static int pod_open(const char *src)
{
	return pod_open_on(W.cli, src);
}

/* Reads until EOF (or 5 s); how many bytes, -1 on error. */
static ssize_t read_all(int fd, char *buf, size_t n)
{
	size_t got = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 5000) <= 0)
			return -1;
		r = read(fd, buf + got, n - got);
		if (r < 0)
			return got ? (ssize_t)got : -1;
		if (r == 0)
			return (ssize_t)got;
		got += (size_t)r;
		if (got == n)
			return (ssize_t)got;
	}
}

/* One connection through tunnel t: msg sent, the echo read back whole, closed. */
static void echo_once(struct zt_tunnel *t, const char *src, const char *msg)
{
	char buf[64];
	int fd = pod_open_on(t, src);

	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	shutdown(fd, SHUT_WR);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), (ssize_t)strlen(msg));
	close(fd);
}

static uint64_t wait_stat(struct zt_tunnel *t, size_t off, uint64_t want)
{
	struct zt_tunnel_stats s;
	uint64_t v = 0;

	for (int i = 0; i < 500; i++) {
		zt_tunnel_get_stats(t, &s);
		memcpy(&v, (char *)&s + off, sizeof(v));
		if (v >= want)
			break;
		usleep(10000);
	}
	return v;
}
#define STAT(f) offsetof(struct zt_tunnel_stats, f)
#define REFUSED(r) (STAT(refusals) + (r) * sizeof(uint64_t))

/* A client tunnel of its own, without the warm pool (no spares' handshakes in its counters). */
static struct zt_tunnel *extra_client(bool no_resumption)
{
	struct zt_tunnel_config cc = { 0 };
	struct zt_tunnel *cli;

	cc.svids = W.store;
	assert_int_equal(zt_trust_load(W.f.bundle, TD, &cc.trust, NULL, 0), 0);
	cc.authorize = authorize;
	cc.local_identity = local_identity;
	cc.handshake_timeout_ms = 3000;
	cc.no_pool = true;
	cc.no_resumption = no_resumption;
	assert_int_equal(zt_tunnel_new(&cc, &cli, NULL, 0), 0);
	assert_int_equal(zt_tunnel_start(cli), 0);
	return cli;
}

/* ---- tests ---- */

static void test_relay_and_half_close(void **state)
{
	static char out[300000], in[sizeof(out) + 1];
	unsigned long long before = atomic_load(&echo_bytes);
	struct zt_tunnel_stats s;
	int fd = pod_open(web);

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	/* more than the socket buffers hold: the relay must apply backpressure both ways */
	{
		size_t off = 0, got = 0;

		while (off < sizeof(out) || got < sizeof(out)) {
			struct pollfd p = { .fd = fd,
					    .events = POLLIN | (off < sizeof(out) ? POLLOUT : 0) };

			assert_true(poll(&p, 1, 5000) > 0);
			if ((p.revents & POLLOUT) && off < sizeof(out)) {
				ssize_t w = write(fd, out + off, sizeof(out) - off);

				assert_true(w > 0);
				off += (size_t)w;
				if (off == sizeof(out))
					shutdown(fd,
						 SHUT_WR); /* -> close_notify -> FIN to the echo */
			}
			if (p.revents & POLLIN) {
				ssize_t r = read(fd, in + got, sizeof(in) - got);

				assert_true(r > 0);
				got += (size_t)r;
			}
		}
		assert_memory_equal(in, out, sizeof(out));
		/* the echo's FIN after our half-close comes back as EOF */
		assert_int_equal(read_all(fd, in, sizeof(in)), 0);
	}
	close(fd);
	assert_int_equal(atomic_load(&echo_bytes) - before, sizeof(out));
	assert_int_equal(wait_stat(W.cli, STAT(tunnels_closed), 1), 1);
	zt_tunnel_get_stats(W.cli, &s);
	assert_int_equal(s.handshakes_full, 1);
	assert_int_equal(s.tunnels_reset, 0);
	assert_int_equal(s.bytes_out, sizeof(out));
	assert_int_equal(s.bytes_in, sizeof(out));
	zt_tunnel_get_stats(W.srv, &s);
	assert_int_equal(s.handshakes_full, 1);
	for (int r = 1; r < ZT_MTLS_REASON_MAX; r++)
		assert_int_equal(s.refusals[r], 0);
}

static void test_resumption(void **state)
{
	char buf[16];
	int fd = pod_open(web);

	assert_int_equal(write(fd, "again", 5), 5);
	shutdown(fd, SHUT_WR);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), 5);
	close(fd);
	/* the second connection between the same two workloads resumes (and so do the
	 * warm pool's spares made after it: at least one) */
	assert_true(wait_stat(W.cli, STAT(handshakes_resumed), 1) >= 1);
	assert_true(wait_stat(W.srv, STAT(handshakes_resumed), 1) >= 1);
}

/*
 * The pod sends its canary. A refusal may already have reset the pod's end
 * (a spare still handshaking took the connection and failed at once): then
 * the send fails with EPIPE, never SIGPIPE, and there is nothing to deliver.
 */
static void send_canary(int fd)
{
	ssize_t w = send(fd, "CANARY", 6, MSG_NOSIGNAL);

	assert_true(w == 6 || (w < 0 && (errno == EPIPE || errno == ECONNRESET)));
}

static void test_server_refuses(void **state)
{
	unsigned long long before = atomic_load(&echo_bytes), conns = atomic_load(&echo_conns);
	char buf[16];
	int fd;

	atomic_store(&allow_client, false);
	fd = pod_open(web);
	send_canary(fd);
	/* the pod's connection ends at once, with nothing from the other side */
	assert_true(read_all(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	assert_int_equal(wait_stat(W.srv, REFUSED(ZT_MTLS_WRONG_IDENTITY), 1), 1);
	assert_int_equal(wait_stat(W.cli, REFUSED(ZT_MTLS_PEER_REFUSED), 1), 1);
	assert_int_equal(atomic_load(&echo_bytes), before);
	assert_int_equal(atomic_load(&echo_conns), conns);
	atomic_store(&allow_client, true);
}

static void test_client_refuses(void **state)
{
	unsigned long long conns = atomic_load(&echo_conns);
	char buf[16];
	int fd;

	atomic_store(&allow_server, false);
	fd = pod_open(web);
	send_canary(fd);
	assert_true(read_all(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	assert_int_equal(wait_stat(W.cli, REFUSED(ZT_MTLS_WRONG_IDENTITY), 1), 1);
	assert_int_equal(atomic_load(&echo_conns), conns);
	atomic_store(&allow_server, true);
}

static void test_no_identity(void **state)
{
	char buf[16];
	int fd = pod_open("spiffe://" TD "/ns/prod/sa/not-here");

	assert_true(read_all(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	assert_int_equal(wait_stat(W.cli, REFUSED(ZT_MTLS_NO_IDENTITY), 1), 1);
}

/* The server drops our root from its bundle: open tunnels stay, new handshakes fail. */
static void test_trust_change(void **state)
{
	struct zt_trust *other, *back;
	char buf[16];
	int live = pod_open(web), fd;

	assert_int_equal(write(live, "one", 3), 3);
	assert_int_equal(read(live, buf, 3), 3);
	/* the warm pool's spares made after it are ready: the change retires them */
	usleep(300000);
	assert_int_equal(zt_trust_load(W.other.bundle, TD, &other, NULL, 0), 0);
	assert_int_equal(zt_tunnel_set_trust(W.srv, other), 0);
	usleep(100000);
	fd = pod_open(web);
	assert_true(read_all(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	assert_int_equal(wait_stat(W.srv, REFUSED(ZT_MTLS_UNKNOWN_CA), 1), 1);
	/* the tunnel opened before the change still carries bytes */
	assert_int_equal(write(live, "two", 3), 3);
	assert_int_equal(read(live, buf, 3), 3);
	assert_memory_equal(buf, "two", 3);
	/* and back: new tunnels work again (a ticket from before is not enough) */
	assert_int_equal(zt_trust_load(W.f.bundle, TD, &back, NULL, 0), 0);
	assert_int_equal(zt_tunnel_set_trust(W.srv, back), 0);
	usleep(100000);
	fd = pod_open(web);
	assert_int_equal(write(fd, "three", 5), 5);
	shutdown(fd, SHUT_WR);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), 5);
	close(fd);
	shutdown(live, SHUT_WR);
	assert_int_equal(read_all(live, buf, sizeof(buf)), 0);
	close(live);
}

/* Same node: the same identity checks, then straight to the destination, no TLS. */
static void test_local(void **state)
{
	unsigned long long conns = atomic_load(&echo_conns);
	struct zt_mtls_dest d = echo_dest();
	struct zt_tunnel_stats s0, s1;
	/* W.cli's spares may be finishing their handshakes meanwhile, on the worker */
	struct zt_tunnel *cli = extra_client(false);
	char buf[16];
	int sv[2];

	zt_tunnel_get_stats(cli, &s0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(zt_tunnel_open_local(cli, sv[1], &d, web), 0);
	assert_int_equal(write(sv[0], "local", 5), 5);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(read_all(sv[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "local", 5);
	close(sv[0]);
	assert_int_equal(atomic_load(&echo_conns), conns + 1);
	zt_tunnel_get_stats(cli, &s1);
	assert_int_equal(s1.handshakes_full + s1.handshakes_resumed,
			 s0.handshakes_full + s0.handshakes_resumed);
	assert_int_equal(s1.tunnels_opened, s0.tunnels_opened + 1);
	zt_tunnel_free(cli);
	/* refused by policy: reset at once, the destination never sees a connection */
	atomic_store(&allow_client, false);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(zt_tunnel_open_local(W.cli, sv[1], &d, web), 0);
	assert_true(read_all(sv[0], buf, sizeof(buf)) <= 0);
	close(sv[0]);
	atomic_store(&allow_client, true);
	assert_int_equal(wait_stat(W.cli, REFUSED(ZT_MTLS_WRONG_IDENTITY), 2), 2);
	assert_int_equal(atomic_load(&echo_conns), conns + 1);
}

static void test_list(void **state)
{
	struct zt_tunnel_info info[4];
	char buf[8];
	int fd = pod_open(web);
	size_t n = 0;

	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(read(fd, buf, 1), 1);
	for (int i = 0; i < 100; i++) {
		n = zt_tunnel_list(W.srv, info, 4);
		if (n == 1 && info[0].established)
			break;
		usleep(10000);
	}
	assert_int_equal(n, 1);
	assert_true(info[0].established);
	assert_int_equal(info[0].role, ZT_MTLS_ROLE_SERVER);
	assert_string_equal(info[0].peer_id, web);
	assert_string_equal(info[0].local_id, db);
	assert_int_equal(info[0].dst.port, echo_port);
	close(fd);
}

/*
 * The warm pool: once a connection between two workloads has relayed, the
 * next one takes a connection whose handshake is already done; spares are
 * not listed as tunnels on either side, and carry the pod's bytes like any.
 */
static void test_pool(void **state)
{
	struct zt_tunnel_stats s0, s1, c0, c1;
	struct zt_tunnel_info info[8];
	char buf[16];
	int fd = pod_open(web);

	assert_int_equal(write(fd, "a", 1), 1);
	assert_int_equal(read(fd, buf, 1), 1);
	close(fd);
	usleep(300000); /* the spare's handshake, on loopback */
	zt_tunnel_get_stats(W.cli, &c0);
	zt_tunnel_get_stats(W.srv, &s0);
	fd = pod_open(web);
	assert_int_equal(write(fd, "pool", 4), 4);
	assert_int_equal(read_all(fd, buf, 4), 4);
	assert_memory_equal(buf, "pool", 4);
	zt_tunnel_get_stats(W.cli, &c1);
	assert_int_equal(c1.pool_ready, c0.pool_ready + 1);
	assert_int_equal(c1.pool_miss, c0.pool_miss);
	assert_int_equal(c1.pool_failed, c0.pool_failed);
	/*
	 * One tunnel listed on the client, whatever spares wait meanwhile; on
	 * the server one established (a spare being made may be handshaking).
	 */
	assert_int_equal(zt_tunnel_list(W.cli, info, 8), 1);
	assert_true(info[0].established);
	{
		size_t n = zt_tunnel_list(W.srv, info, 8), est = 0;

		for (size_t i = 0; i < n && i < 8; i++)
			est += info[i].established;
		assert_int_equal(est, 1);
	}
	shutdown(fd, SHUT_WR);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
	close(fd);
	zt_tunnel_get_stats(W.srv, &s1);
	for (int r = 1; r < ZT_MTLS_REASON_MAX; r++)
		assert_int_equal(s1.refusals[r], s0.refusals[r]);
}

/*
 * The pool's counters: spares made after a connection relayed, a ready one
 * taken, and ready ones found unfit when taken (policy no longer accepts
 * the server) discarded, not failed; the pod's connection then misses and
 * dials its own, refused.
 */
static void test_pool_counters(void **state)
{
	struct zt_tunnel_stats c0, c1, c2;
	uint64_t made;
	char buf[16];
	int fd = pod_open(web);

	zt_tunnel_get_stats(W.cli, &c0);
	assert_int_equal(write(fd, "m", 1), 1);
	assert_int_equal(read(fd, buf, 1), 1);
	close(fd);
	assert_true(wait_stat(W.cli, STAT(pool_made), c0.pool_made + 1) >= c0.pool_made + 1);
	usleep(300000); /* the spare's handshake, on loopback */
	zt_tunnel_get_stats(W.cli, &c1);
	made = c1.pool_made;
	fd = pod_open(web);
	assert_int_equal(write(fd, "t", 1), 1);
	assert_int_equal(read(fd, buf, 1), 1);
	close(fd);
	zt_tunnel_get_stats(W.cli, &c2);
	assert_int_equal(c2.pool_ready, c1.pool_ready + 1);
	assert_int_equal(c2.pool_discarded, c1.pool_discarded);
	/* the spare taken is replaced, and ready too; now policy refuses the server */
	usleep(300000);
	zt_tunnel_get_stats(W.cli, &c1);
	assert_true(c1.pool_made >= made + 1);
	atomic_store(&allow_server, false);
	fd = pod_open(web);
	assert_true(read_all(fd, buf, sizeof(buf)) <= 0);
	close(fd);
	atomic_store(&allow_server, true);
	assert_true(wait_stat(W.cli, REFUSED(ZT_MTLS_WRONG_IDENTITY),
			      c1.refusals[ZT_MTLS_WRONG_IDENTITY] + 1) >=
		    c1.refusals[ZT_MTLS_WRONG_IDENTITY] + 1);
	zt_tunnel_get_stats(W.cli, &c2);
	assert_true(c2.pool_discarded >= c1.pool_discarded + 1);
	assert_int_equal(c2.pool_ready, c1.pool_ready);
	assert_int_equal(c2.pool_miss, c1.pool_miss + 1);
	assert_int_equal(c2.pool_failed, c1.pool_failed);
}

/*
 * A tunnel that ends without close_notify (its pod reset the connection)
 * must not spoil the cached session: the next connection between the same
 * workloads still resumes. Without the warm pool, so that the next
 * connection makes its own handshake.
 */
static void test_resume_after_reset(void **state)
{
	struct zt_tunnel *cli = extra_client(false);
	struct zt_tunnel_stats s0, s1;
	struct zt_mtls_dest d = echo_dest();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char buf[16];
	int lfd, pod, mine;

	/* a TCP pod: it can reset its connection */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	mine = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(mine, (struct sockaddr *)&a, sizeof(a)), 0);
	pod = accept(lfd, NULL, NULL);
	close(lfd);
	assert_int_equal(zt_tunnel_open(cli, pod, &d, web, (struct sockaddr *)&W.srv_addr,
					sizeof(W.srv_addr)),
			 0);
	assert_int_equal(write(mine, "r", 1), 1);
	assert_int_equal(read(mine, buf, 1), 1); /* relaying, the ticket read */
	setsockopt(mine, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(mine); /* RST */
	assert_int_equal(wait_stat(cli, STAT(tunnels_reset), 1), 1);
	zt_tunnel_get_stats(cli, &s0);
	echo_once(cli, web, "s");
	zt_tunnel_get_stats(cli, &s1);
	assert_int_equal(s1.handshakes_full, s0.handshakes_full);
	assert_int_equal(s1.handshakes_resumed, s0.handshakes_resumed + 1);
	zt_tunnel_free(cli);
}

/*
 * Pod connections accepted on the relay thread (zt_tunnel_add_listener):
 * many at once, each started inside the listener's fn (its open counted
 * before fn returns: no queue, no second wakeup), each carried to the echo
 * and back with its own bytes.
 */
#define BURST 48
static atomic_uint lsn_calls, lsn_on_relay, lsn_started_at_once;

static void lsn_fn(void *ctx, int fd)
{
	struct zt_mtls_dest d = echo_dest();
	struct zt_tunnel_stats a, b;
	char name[16] = "";

	(void)ctx;
	atomic_fetch_add(&lsn_calls, 1);
	if (pthread_getname_np(pthread_self(), name, sizeof(name)) == 0 &&
	    strcmp(name, "zt-relay") == 0)
		atomic_fetch_add(&lsn_on_relay, 1);
	zt_tunnel_get_stats(W.cli, &a);
	if (zt_tunnel_open(W.cli, fd, &d, web, (struct sockaddr *)&W.srv_addr, sizeof(W.srv_addr)) <
	    0)
		return;
	zt_tunnel_get_stats(W.cli, &b);
	if (b.pool_ready + b.pool_pending + b.pool_miss ==
	    a.pool_ready + a.pool_pending + a.pool_miss + 1)
		atomic_fetch_add(&lsn_started_at_once, 1);
}

struct burst_arg {
	uint16_t port;
	int i;
	bool ok;
};

static void *burst_conn(void *arg)
{
	struct burst_arg *x = arg;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(x->port) };
	char out[32], in[sizeof(out)];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int n = snprintf(out, sizeof(out), "conn-%d-payload", x->i);

	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, out, (size_t)n) == n) {
		shutdown(fd, SHUT_WR);
		x->ok = read_all(fd, in, sizeof(in)) == n && memcmp(in, out, (size_t)n) == 0;
	}
	close(fd);
	return NULL;
}

static void test_relay_accepts(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct burst_arg args[BURST];
	pthread_t th[BURST];
	int lfd = lsn_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unsigned long long conns = atomic_load(&echo_conns);

	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, BURST), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(zt_tunnel_add_listener(W.cli, lfd, lsn_fn, NULL), 0);
	for (int i = 0; i < BURST; i++) {
		args[i] = (struct burst_arg){ .port = ntohs(a.sin_port), .i = i };
		assert_int_equal(pthread_create(&th[i], NULL, burst_conn, &args[i]), 0);
	}
	for (int i = 0; i < BURST; i++) {
		pthread_join(th[i], NULL);
		assert_true(args[i].ok);
	}
	assert_int_equal(atomic_load(&lsn_calls), BURST);
	assert_int_equal(atomic_load(&lsn_on_relay), BURST);
	assert_int_equal(atomic_load(&lsn_started_at_once), BURST);
	assert_int_equal(atomic_load(&echo_conns), conns + BURST);
	/* bad arguments are refused, the relay keeps the listener it has */
	assert_int_equal(zt_tunnel_add_listener(W.cli, -1, lsn_fn, NULL), -EINVAL);
	assert_int_equal(zt_tunnel_add_listener(W.cli, lfd, NULL, NULL), -EINVAL);
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/*
 * A handshake in progress on the server does not hold up an established
 * tunnel's bytes: the server's handshake stays 600 ms in a callback
 * (local_identity, asked for the SVID to present), and meanwhile an echo
 * through a tunnel already relaying comes back at once. With handshakes on
 * the relay thread the echo waited for the callback. The connection whose
 * handshake was slow is then carried too: the worker handed it back.
 */
static void test_handshake_off_relay(void **state)
{
	struct zt_tunnel *cli = extra_client(false);
	struct timespec t0;
	char buf[16];
	uint64_t echo_ms, slow_ms;
	int fd = pod_open(web), slow;

	assert_int_equal(write(fd, "a", 1), 1);
	assert_int_equal(read_all(fd, buf, 1), 1);
	usleep(300000); /* the warm pool's spares: their handshakes done before the slow one */
	atomic_store(&slow_on_worker, 0);
	atomic_store(&slow_elsewhere, 0);
	atomic_store(&slow_hs_ms, 600);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	slow = pod_open_on(cli, web);
	assert_int_equal(write(slow, "slow", 4), 4);
	for (int i = 0; i < 200 && !atomic_load(&slow_on_worker) && !atomic_load(&slow_elsewhere);
	     i++)
		usleep(5000);
	assert_true(atomic_load(&slow_on_worker) + atomic_load(&slow_elsewhere) >= 1);
	{
		struct timespec e0;

		clock_gettime(CLOCK_MONOTONIC, &e0);
		assert_int_equal(write(fd, "b", 1), 1);
		assert_int_equal(read_all(fd, buf, 1), 1);
		echo_ms = ms_since(&e0);
	}
	atomic_store(&slow_hs_ms, 0);
	shutdown(slow, SHUT_WR);
	assert_int_equal(read_all(slow, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "slow", 4);
	slow_ms = ms_since(&t0);
	print_message("echo on the established tunnel: %llu ms; the slow handshake's connection: "
		      "%llu ms\n",
		      (unsigned long long)echo_ms, (unsigned long long)slow_ms);
	assert_true(echo_ms < 250);
	assert_true(slow_ms >= 600);
	assert_true(atomic_load(&slow_on_worker) >= 1);
	assert_int_equal(atomic_load(&slow_elsewhere), 0);
	close(slow);
	shutdown(fd, SHUT_WR);
	read_all(fd, buf, sizeof(buf));
	close(fd);
	zt_tunnel_free(cli);
}

/*
 * The client's side: full handshakes (no pool, no resumption) cost the
 * handshake worker's CPU, not the relay thread's; each tunnel is carried
 * by the relay once its handshake is back.
 */
static void test_client_handshakes_on_worker(void **state)
{
	struct zt_tunnel *cli = extra_client(true);
	struct zt_tunnel_stats s0, s1;
	double hs, relay;

	zt_tunnel_get_stats(cli, &s0);
	for (int i = 0; i < 8; i++)
		echo_once(cli, web, "h");
	assert_int_equal(wait_stat(cli, STAT(tunnels_closed), 8), 8);
	zt_tunnel_get_stats(cli, &s1);
	assert_int_equal(s1.handshakes_full - s0.handshakes_full, 8);
	hs = s1.handshake_cpu_s - s0.handshake_cpu_s;
	relay = (s1.relay_cpu_s - s1.handshake_cpu_s) - (s0.relay_cpu_s - s0.handshake_cpu_s);
	print_message("8 full client handshakes: worker %.2f ms CPU, relay thread %.2f ms\n",
		      hs * 1e3, relay * 1e3);
	assert_true(hs > relay);
	zt_tunnel_free(cli);
}

/*
 * A TCP proxy in front of the server tunnel, for the warm pool's spares:
 * each connection it carries can be made to vanish (its socket towards the
 * client closed in TCP repair mode: no FIN, no reset, as a node that
 * rebooted) or to swallow what the client sends (read, never forwarded,
 * then closed). What the proxy's connections do is set
 * by generation: those accepted before proxy_set() took the mode.
 */
enum px_mode { PX_FORWARD, PX_VANISH, PX_SWALLOW };
static struct {
	int lfd;
	uint16_t port;
	pthread_t th;
	atomic_uint gen, mode_gen, live;
	atomic_int mode;
	atomic_bool stop;
} px = { .lfd = -1 };

struct px_conn {
	int down, up;
	unsigned gen;
};

static void *px_conn_main(void *arg)
{
	struct px_conn *pc = arg;
	char buf[16384];

	for (bool swallowed = false; !atomic_load(&px.stop);) {
		struct pollfd p[2] = { { .fd = pc->down, .events = POLLIN },
				       { .fd = pc->up, .events = POLLIN } };
		int r = poll(p, 2, 10), mode;
		ssize_t n;

		/* The mode as it is once there is something to read (px_set meanwhile). */
		mode = pc->gen < atomic_load(&px.mode_gen) ? atomic_load(&px.mode) : PX_FORWARD;
		if (mode == PX_VANISH) {
			int one = 1;

			setsockopt(pc->down, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one));
			break;
		}
		if (swallowed)
			break; /* a normal close: FIN, what it read acknowledged */
		if (r <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0)
				goto out;
			if (mode == PX_SWALLOW && i == 0) {
				swallowed = true;
				continue;
			}
			if (write(p[!i].fd, buf, (size_t)n) != n)
				goto out;
		}
	}
out:
	close(pc->down);
	close(pc->up);
	free(pc);
	atomic_fetch_sub(&px.live, 1);
	return NULL;
}

static void *px_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(px.lfd, NULL, NULL), up;
		struct px_conn *pc;
		pthread_t th;

		if (fd < 0)
			return NULL;
		up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(up, (struct sockaddr *)&W.srv_addr, sizeof(W.srv_addr)) < 0) {
			close(up);
			close(fd);
			continue;
		}
		pc = calloc(1, sizeof(*pc));
		pc->down = fd;
		pc->up = up;
		pc->gen = atomic_fetch_add(&px.gen, 1);
		atomic_fetch_add(&px.live, 1);
		pthread_create(&th, NULL, px_conn_main, pc);
		pthread_detach(th);
	}
}

static void px_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	atomic_store(&px.mode, PX_FORWARD);
	atomic_store(&px.mode_gen, 0);
	atomic_store(&px.stop, false);
	px.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(px.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(px.lfd, 16), 0);
	assert_int_equal(getsockname(px.lfd, (struct sockaddr *)&a, &len), 0);
	px.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&px.th, NULL, px_main, NULL), 0);
}

/* The connections accepted so far take mode; later ones are forwarded. */
static void px_set(enum px_mode mode)
{
	atomic_store(&px.mode, mode);
	atomic_store(&px.mode_gen, atomic_load(&px.gen));
}

static void px_stop(void)
{
	atomic_store(&px.stop, true);
	shutdown(px.lfd, SHUT_RDWR);
	pthread_join(px.th, NULL);
	close(px.lfd);
	px.lfd = -1;
	for (int i = 0; i < 200 && atomic_load(&px.live); i++)
		usleep(10000);
}

/*
 * A pod connection through W.cli to the echo, by way of the proxy (a warm
 * pool of its own: the proxy is another peer address), with msg already
 * written: the relay reads it as soon as it takes the connection.
 */
static int pod_open_px(const char *msg)
{
	struct sockaddr_in pa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(px.port) };

	return pod_open_via(W.cli, web, &pa, msg);
}

/*
 * One connection by way of the proxy; then its spare, ready. The client's
 * pool has 256 slots, and one that holds another key's spares is not
 * taken over: if no spare comes, the proxy moves to another port (another
 * key) and the connection is made again.
 */
static void px_warm(struct zt_tunnel_stats *before)
{
	char buf[16];
	int fd, tries = 0;

	for (;;) {
		zt_tunnel_get_stats(W.cli, before);
		fd = pod_open_px("w");
		assert_int_equal(read_all(fd, buf, sizeof(buf)), 1);
		close(fd);
		if (wait_stat(W.cli, STAT(pool_made), before->pool_made + 1) >=
		    before->pool_made + 1)
			break;
		assert_true(++tries < 5);
		px_stop();
		px_start();
	}
	usleep(300000); /* the spare's handshake, on loopback */
	zt_tunnel_get_stats(W.cli, before);
}

/*
 * The proxy's connections so far (the warm spare's) take mode; then a pod
 * that already wrote msg takes the ready spare, which fails before the
 * server's status: the pod's connection is dialled afresh (a failed
 * spare), and the echo gets msg back to the pod, and exactly once.
 */
static void spare_redialled(enum px_mode mode, const char *msg)
{
	struct zt_tunnel_stats s0, s1;
	unsigned long long e0;
	char buf[64];
	int fd;

	px_start();
	px_warm(&s0);
	px_set(mode);
	usleep(50000); /* the proxy's connection has seen its mode */
	e0 = atomic_load(&echo_bytes);
	fd = pod_open_px(msg);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), (ssize_t)strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
	close(fd);
	zt_tunnel_get_stats(W.cli, &s1);
	assert_int_equal(s1.pool_ready, s0.pool_ready + 1); /* the spare took it */
	assert_int_equal(s1.pool_failed, s0.pool_failed + 1); /* and failed: redialled */
	assert_int_equal(atomic_load(&echo_bytes) - e0, strlen(msg)); /* once */
	px_stop();
}

/* The spare's peer vanished (no FIN, no reset): the header draws a reset, unacknowledged. */
static void test_spare_redial_vanished(void **state)
{
	int probe = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	(void)state;
	if (setsockopt(probe, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one)) < 0) {
		close(probe);
		skip(); /* no CAP_NET_ADMIN */
	}
	close(probe);
	spare_redialled(PX_VANISH, "spare-peer-vanished");
}

/*
 * The spare's peer reads the header and closes without a status: the
 * pod's bytes wait for the status, so none of them were sent.
 */
static void test_spare_redial_closed(void **state)
{
	(void)state;
	spare_redialled(PX_SWALLOW, "spare-peer-closed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_and_half_close),
		cmocka_unit_test(test_resumption),
		cmocka_unit_test(test_server_refuses),
		cmocka_unit_test(test_client_refuses),
		cmocka_unit_test(test_no_identity),
		cmocka_unit_test(test_trust_change),
		cmocka_unit_test(test_local),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_pool_counters),
		cmocka_unit_test(test_resume_after_reset),
		cmocka_unit_test(test_relay_accepts),
		cmocka_unit_test(test_handshake_off_relay),
		cmocka_unit_test(test_client_handshakes_on_worker),
		cmocka_unit_test(test_spare_redial_vanished),
		cmocka_unit_test(test_spare_redial_closed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
