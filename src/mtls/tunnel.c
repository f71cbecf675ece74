// SPDX-License-Identifier: GPL-2.0-only
/*
 * The tunnel's relay: one epoll loop (level-triggered, nonblocking sockets)
 * on its own thread. Each tunnel is a struct conn with two endpoints: ep[0]
 * the plain side (the pod on the client, the destination on the server) and
 * ep[1] the TLS side (the other agent); b[d] holds what ep[d] sent and
 * ep[!d] has not taken yet. Bytes are read straight into b[d] and written
 * straight from it (SSL_read/SSL_write with partial writes): one copy per
 * direction, no staging. A full buffer stops reading its source, so a slow
 * reader slows its writer instead of growing memory.
 *
 * Handshakes run on a second thread, the handshake worker (zt-mtls-hs), so
 * that their CPU (about 0.4 ms a side for a full one, more under load) never
 * stands between an established tunnel's bytes, or a pod's header on a warm
 * spare, and the relay. Ownership, and the only two ways a conn changes
 * hands:
 *   - The relay thread creates every conn (accept of the agents' listener,
 *     dial), ends every conn and frees it; it alone touches t->conns, the
 *     pool, the session cache's users and the epoll set t->epfd.
 *   - lend(): once a conn's TCP connect is started (client) or its socket
 *     accepted (server) and its SSL* made, the relay takes both its sockets
 *     out of t->epfd, sets c->lent and queues it on t->hs_in (under
 *     t->hs_lock). From then on the worker alone touches the handshake's
 *     part of the conn: ep[1] (fd, SSL*, connecting), hs_want, peeked,
 *     reason, peer_id, deadline_ns, and on a server what server_cert_cb
 *     sets (dst, have_dst_addr, local_id, svid). The relay may meanwhile
 *     touch only the rest: ep[0] (a pod taking a spare still in its
 *     handshake), the pool links, old_trust, discard; it skips lent conns
 *     in its sweep and never drives them.
 *   - give_back(): the handshake is done, failed (hs_fail, hs_detail) or
 *     timed out; the worker takes ep[1] out of its epoll set, queues the
 *     conn on t->hs_out (under t->hs_lock) and wakes the relay, which clears
 *     c->lent and goes on: the checks after the handshake (after_handshake:
 *     the SVID profile, policy on the peer's identity), or the refusal,
 *     counted and logged on the relay as before.
 * The mutex is the hand-off's only synchronisation: whatever one thread
 * wrote before queueing, the other reads after dequeueing. Both queues are
 * intrusive (hs_next), so they are bounded by max_conns, never allocate.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent/log.h"
#include "agent/util.h"
#include "mtls/frame.h"
#include "mtls/tunnel.h"
#include "mtls/x509.h"

/*
 * Relay buffers: what a plain socket sends (a pod's, a destination's) is
 * read up to 256 KB at a time, to be encrypted (one recv and 16 records per
 * wakeup at line rate, not 4 and 4 rounds); what the TLS side sends is
 * read ahead 64 KB and decrypted into a 64 KB buffer (the decrypting agent
 * did no better with more). Buffers of a tunnel idle for a sweep are freed
 * (release_idle), so only busy tunnels hold them.
 */
#define BUF_CAP (256 * 1024)
#define TLS_BUF (64 * 1024)
#define TLS_RBUF (64 * 1024)
#define SESS_SLOTS 1024
/*
 * Server: sessions kept for resumption in the tunnel's own cache (srv_sess),
 * so that the ticket a client holds is only the session's ID (a stateful
 * ticket, SSL_OP_NO_TICKET in TLS 1.3). Resuming from a self-contained
 * ticket meant decoding the session, and the client's certificate in it,
 * on every resumed handshake (OpenSSL 3.0's key decoders): most of a
 * server's handshake CPU. Ours, not OpenSSL's internal cache, because
 * OpenSSL drops a session from its cache whenever a connection that used
 * it ends without close_notify (a pod's reset), which would send the
 * client's next connection into a full handshake. Direct-mapped by the
 * session ID: bounded, a newer session takes its slot; each entry shares
 * its certificate with the others of the same client.
 */
#define SRV_SESS_CACHE 8192
#define MAX_EVENTS 256
#define SWEEP_MS 200
#define LOG_PER_S 50 /* refusal lines per second; the rest are only counted */
/*
 * Warm pool (client): per (source identity, destination, peer agent),
 * TLS connections whose handshake is done before a pod asks for one. A
 * new pod connection takes one and sends its header at once: no TCP
 * connect and no handshake on its path. Sized to the rate of new
 * connections: a key gets its first spare after a connection, one more
 * (up to POOL_MAX) whenever a connection found none ready, one fewer when
 * a spare goes unused for POOL_IDLE_MS and is closed.
 */
#define POOL_SLOTS 256
#define POOL_MAX 4
#define POOL_IDLE_MS 5000 /* below the server's wait for a header (SRV_IDLE_MS) */
#define SRV_IDLE_MS 30000 /* server: an authenticated connection waits this long for its header */
/*
 * A taken spare whose header the peer's TCP has not acknowledged this long
 * after it went out sits on a path that went silent (a peer gone without a
 * reset, a middlebox that forgot the flow): the pod's connection is dialled
 * afresh instead of waiting the handshake timeout. Above the minimum RTO
 * (200 ms), so one lost segment on a live path is retransmitted in time.
 */
#define SPARE_ACK_MS 300

static const char ciphersuites[] =
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
static const char groups[] = "X25519:P-256";
static const unsigned char sid_ctx[] = "ztagent-mtls-1";

enum src_kind { SRC_LISTEN = 1, SRC_WAKE, SRC_EP, SRC_POD_LISTEN, SRC_HS };

struct evsrc {
	enum src_kind kind;
};

enum state {
	ST_HANDSHAKE, /* lent to the handshake worker (client: from the TCP connect on) */
	ST_WAIT_REPLY, /* client: header (and pod bytes behind it) sent, waiting for the status */
	ST_WAIT_HDR, /* server: waiting for the header */
	ST_CONNECT_UP, /* server or same node: connecting to the destination */
	ST_RELAY,
	ST_IDLE, /* client: a spare of the warm pool, handshake done, no pod yet */
};

struct conn;
struct pool_slot;

/* A listener of pod connections, accepted on the relay thread (zt_tunnel_add_listener). */
struct pod_listener {
	struct evsrc src; /* first: the epoll event's pointer is this */
	int fd;
	zt_tunnel_accept_fn fn;
	void *ctx;
};

struct ep {
	struct evsrc src;
	struct conn *c;
	int fd;
	SSL *ssl; /* NULL: plain TCP */
	uint32_t events; /* registered interest */
	bool registered, connecting, hup;
	bool rd_eof; /* the other end finished sending (FIN or close_notify) */
	bool wr_shut; /* we finished sending */
	bool rd_wants_write, wr_blocked, wr_wants_read, shut_blocked;
	/*
	 * The last read found the socket empty (EAGAIN, or a plain recv that
	 * returned less than it asked for): pump reads it again only after
	 * epoll reports EPOLLIN, not once more per round to find EAGAIN.
	 */
	bool rd_idle;
};

struct buf {
	uint8_t *d;
	size_t head, tail, cap;
};

struct conn {
	struct zt_tunnel *t;
	struct conn *prev, *next; /* t->conns, under t->list_lock */
	struct conn *next_dead;
	enum zt_mtls_role role;
	bool local;
	enum state st;
	struct ep ep[2];
	struct buf b[2];
	bool read_ok[2], flow[2];
	int up; /* index of the endpoint that connects to the destination (-1: none) */
	uint32_t hs_want; /* EPOLLIN/EPOLLOUT the handshake waits for */
	bool peeked, resumed, relaying, dead;
	bool spare; /* warm pool: no pod yet (pool is its slot) */
	struct pool_slot *pool;
	struct conn *pool_next;
	uint32_t pool_hash; /* client: the warm pool key this connection proved (0: none) */
	bool refill; /* client: make the key's spares once the pod has its first bytes */
	bool from_spare; /* client: a ready spare took the pod; its bytes wait for the status */
	bool ack_check; /* client, from_spare: at deadline_ns, is the header acknowledged? */
	uint64_t taken_ns; /* client, from_spare: when the pod took it */
	uint64_t hs_done_ns; /* server: when the handshake completed */
	bool old_trust; /* server: handshake begun under a bundle since replaced */
	uint64_t deadline_ns;
	enum zt_mtls_reason reason; /* set by the verify or certificate callbacks */
	/* The handshake worker: see the top of the file. */
	bool lent; /* relay's: the worker has the handshake */
	bool discard; /* relay's, lent spare: left its pool (a trust change); end it on return */
	struct conn *hs_next; /* on t->hs_in or t->hs_out (t->hs_lock), or the worker's list */
	struct conn *hs_prev; /* the worker's list */
	struct evsrc hs_src; /* the worker's epoll event for ep[1] */
	bool hs_registered; /* worker's: ep[1] in its epoll set */
	enum zt_mtls_reason hs_fail; /* worker's verdict: 0 done, else why it failed */
	char hs_detail[256];
	char trust_domain[ZT_TRUST_DOMAIN_MAX + 1]; /* of the bundle lent under, for verify_cb */
	struct zt_mtls_dest dst;
	bool have_dst_addr; /* server: from SNI */
	struct sockaddr_storage peer;
	char sni[ZT_SNI_MAX];
	char peer_id[ZT_SPIFFE_ID_MAX + 1], local_id[ZT_SPIFFE_ID_MAX + 1];
	struct zt_svid *svid;
	_Atomic uint64_t bytes_out, bytes_in;
	uint64_t moved_seen; /* bytes_out + bytes_in at the last sweep */
	int64_t since;
};

struct open_req {
	struct open_req *next;
	int pod_fd;
	bool local;
	struct zt_mtls_dest dst;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char src_id[ZT_SPIFFE_ID_MAX + 1];
};

struct sess_slot {
	uint32_t hash;
	char *key;
	SSL_SESSION *s;
	char serial[80]; /* of the SVID we presented: a renewed SVID starts afresh */
	int64_t valid_until; /* the earlier end of both certificates */
};

struct pool_slot {
	uint32_t hash;
	char *key; /* "source id\nSNI\npeer": NULL when the slot is free */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct zt_mtls_dest
		dst; /* of the last connection: what a spare's server is checked against */
	char sni[ZT_SNI_MAX];
	struct conn *spares; /* handshaking and ready */
	unsigned int n, want;
	bool proven; /* a pod's connection relayed through it: spares may be made */
};

struct zt_tunnel {
	struct zt_tunnel_config cfg;
	struct zt_trust *trust;
	SSL_CTX *cctx, *sctx;
	int epfd, lfd, wakefd;
	uint16_t port;
	struct evsrc lsrc, wsrc;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	clockid_t cpu_clock;
	bool have_cpu_clock;

	struct pod_listener pod_lsn[ZT_TUNNEL_LISTENERS_MAX];
	unsigned int n_pod_lsn; /* under lock */
	bool in_accept; /* relay thread: inside a pod listener's fn, opens start at once */

	pthread_mutex_t lock; /* reqs, pending_trust, n_pod_lsn */
	struct open_req *reqs, **reqs_tail;
	struct zt_trust *pending_trust;

	/* The handshake worker (see the top of the file). */
	pthread_t hs_thread;
	bool hs_started;
	int hs_epfd, hs_wakefd;
	struct evsrc hs_wsrc;
	clockid_t hs_cpu_clock;
	bool have_hs_cpu_clock;
	pthread_mutex_t hs_lock; /* hs_in, hs_out */
	struct conn *hs_in, **hs_in_tail, *hs_out, **hs_out_tail;
	struct conn *hs_list; /* worker's: the conns it holds */
	/* Session cache: dial reads it on the relay, new_session_cb may run on either thread. */
	pthread_mutex_t sess_lock;

	pthread_mutex_t list_lock; /* conns (links, ids), for zt_tunnel_list */
	struct conn *conns;
	size_t n_conns;
	struct conn *dead;

	struct sess_slot sess[SESS_SLOTS];
	/* Server: srv_sess (SRV_SESS_CACHE), the worker's handshakes, trust changes. */
	pthread_mutex_t srv_sess_lock;
	struct srv_sess {
		SSL_SESSION *s;
		uintptr_t gen; /* of the server context that made it (ctx_gen_idx) */
	} srv_sess[SRV_SESS_CACHE];
	uintptr_t ctx_gen; /* relay's: server contexts made (make_ctx) */
	struct pool_slot pool[POOL_SLOTS];

	_Atomic uint64_t st_full, st_resumed, st_opened, st_closed, st_reset, st_out, st_in;
	_Atomic uint64_t st_pool_made, st_pool_ready, st_pool_pending, st_pool_miss, st_pool_failed,
		st_pool_discarded;
	_Atomic uint64_t st_refused[ZT_MTLS_REASON_MAX];
	uint64_t log_window_ns;
	unsigned int log_count, log_suppressed;
};

static int conn_idx = -1, ctx_gen_idx = -1;
/* The tunnel whose relay thread this is (NULL on other threads). */
static __thread struct zt_tunnel *relay_of;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void idx_init(void)
{
	conn_idx = SSL_get_ex_new_index(0, "ztagent conn", NULL, NULL, NULL);
	ctx_gen_idx = SSL_CTX_get_ex_new_index(0, "ztagent server context", NULL, NULL, NULL);
}

static uint64_t now_ns(void)
{
	return zt_now_mono_ns();
}

/* ---- small helpers ---- */

static const char *role_name(enum zt_mtls_role r)
{
	return r == ZT_MTLS_ROLE_SERVER ? "server" : "client";
}

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		port = ntohs(s->sin_port);
		snprintf(buf, n, "%s:%u", a, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		port = ntohs(s->sin6_port);
		snprintf(buf, n, "[%s]:%u", a, port);
	} else {
		snprintf(buf, n, "-");
	}
}

static void dest_str(const struct zt_mtls_dest *d, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(d->family, d->addr, a, sizeof(a));
	snprintf(buf, n, d->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, d->port);
}

static void dest_sockaddr(int family, const uint8_t *addr, uint16_t port,
			  struct sockaddr_storage *ss, socklen_t *len)
{
	*len = zt_sockaddr_set(family, addr, port, ss);
}

static size_t buf_used(const struct buf *b)
{
	return b->tail - b->head;
}

/*
 * Room behind the tail. The bytes still waiting are moved to the front only
 * when they are few: a buffer that a blocked writer keeps full waits until
 * it drains instead of sliding up to 64 KB down after every record written.
 */
static size_t buf_space(struct buf *b)
{
	size_t used;

	if (!b->d)
		return b->cap;
	if (b->head == b->tail)
		b->head = b->tail = 0;
	used = b->tail - b->head;
	if (b->head > 0 && b->tail > b->cap / 2 && used <= b->cap / 16) {
		memmove(b->d, b->d + b->head, used);
		b->tail = used;
		b->head = 0;
	}
	return b->cap - b->tail;
}

static int buf_ready(struct buf *b)
{
	if (!b->d) {
		b->d = malloc(b->cap);
		if (!b->d)
			return -ENOMEM;
	}
	return 0;
}

/* Resets rather than closes: the other end sees RST, never a half-open socket. */
static void close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* The OpenSSL error queue as one short line (for the log), and cleared. */
static void ssl_detail(char *buf, size_t n, const char *prefix)
{
	unsigned long e = ERR_peek_error();
	char s[200] = "";

	if (e)
		ERR_error_string_n(e, s, sizeof(s));
	snprintf(buf, n, "%s%s%s", prefix, e ? ": " : "", s);
	ERR_clear_error();
}

/* ---- counting and refusing ---- */

static void note_refusal(struct conn *c, enum zt_mtls_reason reason, const char *detail)
{
	struct zt_tunnel *t = c->t;
	struct zt_tunnel_refusal ev = {
		.role = c->role,
		.reason = reason,
		.peer = c->peer,
		.peer_id = c->peer_id,
		.local_id = c->local_id,
		.dst = c->dst.family ? &c->dst : NULL,
		.detail = detail ? detail : "",
	};
	uint64_t now = now_ns();

	atomic_fetch_add_explicit(&t->st_refused[reason], 1, memory_order_relaxed);
	if (t->cfg.on_refusal)
		t->cfg.on_refusal(t->cfg.ctx, &ev);
	if (now - t->log_window_ns >= 1000000000ULL) {
		if (t->log_suppressed)
			log_warn("mtls_refused_suppressed", "count=%u", t->log_suppressed);
		t->log_window_ns = now;
		t->log_count = t->log_suppressed = 0;
	}
	if (t->log_count++ < LOG_PER_S) {
		char peer[64], dst[64] = "-", q1[300], q2[300], q3[300];

		addr_str(&c->peer, peer, sizeof(peer));
		if (c->dst.family)
			dest_str(&c->dst, dst, sizeof(dst));
		log_warn("mtls_refused",
			 "role=%s reason=%s peer=%s peer_id=%s local_id=%s dst=%s detail=%s",
			 role_name(c->role), zt_mtls_reason_name(reason), peer,
			 zt_log_quote(q1, sizeof(q1), c->peer_id[0] ? c->peer_id : "-"),
			 zt_log_quote(q2, sizeof(q2), c->local_id[0] ? c->local_id : "-"), dst,
			 zt_log_quote(q3, sizeof(q3), detail ? detail : ""));
	} else {
		t->log_suppressed++;
	}
}

static void ep_unregister(struct zt_tunnel *t, struct ep *e)
{
	if (e->registered)
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, e->fd, NULL);
	e->registered = false;
}

static void pool_fill(struct zt_tunnel *t, struct pool_slot *p, const char *id);

/*
 * The pod has the first bytes of its answer: now the spares its key wants,
 * not earlier, so that their handshakes (here and at the peer) do not
 * stand between this connection's request and its answer.
 */
static void pool_refill(struct conn *c)
{
	struct pool_slot *p = &c->t->pool[c->pool_hash % POOL_SLOTS];

	c->refill = false;
	if (p->key && p->hash == c->pool_hash && p->proven)
		pool_fill(c->t, p, c->local_id);
}

/*
 * What zt_tunnel_list reads of a connection (its state, whether it is a
 * spare, resumed) changes under list_lock: the API thread reads while
 * the relay writes.
 */
static void set_state(struct conn *c, enum state st)
{
	pthread_mutex_lock(&c->t->list_lock);
	c->st = st;
	pthread_mutex_unlock(&c->t->list_lock);
}

static void set_spare(struct conn *c, bool spare)
{
	pthread_mutex_lock(&c->t->list_lock);
	c->spare = spare;
	pthread_mutex_unlock(&c->t->list_lock);
}

static void pool_unlink(struct conn *c)
{
	struct pool_slot *p = c->pool;

	if (!p)
		return;
	for (struct conn **pp = &p->spares; *pp; pp = &(*pp)->pool_next) {
		if (*pp == c) {
			*pp = c->pool_next;
			p->n--;
			break;
		}
	}
	c->pool = NULL;
	c->pool_next = NULL;
	set_spare(c, false);
}

static void conn_unlink(struct conn *c)
{
	struct zt_tunnel *t = c->t;

	pthread_mutex_lock(&t->list_lock);
	/* A closed tunnel's bytes stay in the totals. */
	atomic_fetch_add_explicit(&t->st_out, atomic_load(&c->bytes_out), memory_order_relaxed);
	atomic_fetch_add_explicit(&t->st_in, atomic_load(&c->bytes_in), memory_order_relaxed);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->n_conns--;
	pthread_mutex_unlock(&t->list_lock);
	pool_unlink(c);
	c->dead = true;
	c->next_dead = t->dead;
	t->dead = c;
}

/*
 * Ends a tunnel. graceful: the sides have exchanged FIN/close_notify, close
 * normally. Otherwise the plain side is reset and the TLS side closed
 * without close_notify, which the other agent takes as a reset too.
 */
static void conn_end(struct conn *c, bool graceful)
{
	struct zt_tunnel *t = c->t;

	if (c->dead)
		return;
	/* A spare still in its pool ends unused (a failed one left the pool in conn_refuse). */
	if (c->spare)
		atomic_fetch_add_explicit(&t->st_pool_discarded, 1, memory_order_relaxed);
	for (int i = 0; i < 2; i++) {
		struct ep *e = &c->ep[i];

		if (e->fd < 0)
			continue;
		ep_unregister(t, e);
		if (graceful || e->ssl)
			close(e->fd);
		else
			close_reset(e->fd);
		e->fd = -1;
	}
	if (c->relaying)
		atomic_fetch_add_explicit(graceful ? &t->st_closed : &t->st_reset, 1,
					  memory_order_relaxed);
	conn_unlink(c);
}

static void conn_refuse(struct conn *c, enum zt_mtls_reason reason, const char *detail)
{
	if (c->spare) {
		/*
		 * No pod waits on a spare: nothing to refuse or count as a
		 * refusal. The key stops keeping spares; the next pod connection
		 * makes its own handshake, and that one is refused and counted.
		 */
		atomic_fetch_add_explicit(&c->t->st_pool_failed, 1, memory_order_relaxed);
		if (c->pool) {
			c->pool->want = 0;
			c->pool->proven = false;
		}
		pool_unlink(c); /* failed, not discarded */
		log_debug("mtls_spare_failed", "reason=%s detail=%s", zt_mtls_reason_name(reason),
			  detail ? detail : "");
		conn_end(c, false);
		return;
	}
	note_refusal(c, reason, detail);
	conn_end(c, false);
}

static void conn_free(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		SSL_free(c->ep[i].ssl);
		free(c->b[i].d);
	}
	zt_svid_put(c->svid);
	free(c);
}

/* ---- TLS contexts ---- */

static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn *c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	enum zt_mtls_reason r;

	if (!c)
		return 0;
	if (!ok) {
		if (!c->reason)
			c->reason = zt_mtls_reason_of_x509(X509_STORE_CTX_get_error(x));
		if (!c->reason)
			c->reason = ZT_MTLS_BAD_PROFILE;
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(x) != 0)
		return 1;
	r = zt_svid_check_leaf(X509_STORE_CTX_get_current_cert(x), c->trust_domain, c->peer_id,
			       sizeof(c->peer_id));
	if (r != ZT_MTLS_OK) {
		c->reason = r;
		X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

static int use_svid(SSL *ssl, struct zt_svid *s)
{
	if (SSL_use_certificate(ssl, s->cert) != 1 || SSL_use_PrivateKey(ssl, s->key) != 1 ||
	    SSL_set1_chain(ssl, s->chain) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	return 0;
}

/* Server: the SNI names the destination; present the SVID of the workload there. */
static int server_cert_cb(SSL *ssl, void *arg)
{
	struct conn *c = SSL_get_ex_data(ssl, conn_idx);
	struct zt_tunnel *t = arg;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct zt_mtls_dest d = { 0 };
	int family;

	if (!c)
		return 0;
	if (c->svid)
		return 1;
	if (!sni || zt_sni_decode(sni, &family, d.addr) < 0) {
		c->reason = ZT_MTLS_PROTOCOL;
		return 0;
	}
	d.family = (uint8_t)family;
	d.role = ZT_MTLS_ROLE_SERVER;
	c->dst = d;
	c->have_dst_addr = true;
	if (!t->cfg.local_identity ||
	    t->cfg.local_identity(t->cfg.ctx, &d, c->local_id, sizeof(c->local_id)) < 0 ||
	    zt_svid_store_get(t->cfg.svids, c->local_id, (int64_t)zt_now_unix(), &c->svid) < 0 ||
	    use_svid(ssl, c->svid) < 0) {
		c->reason = ZT_MTLS_NO_IDENTITY;
		return 0;
	}
	return 1;
}

static uint32_t sess_hash(const char *a, const char *b)
{
	uint32_t h = zt_fnv1a32(a, strlen(a));

	return h ^ (zt_fnv1a32(b, strlen(b)) * 16777619u);
}

static struct sess_slot *sess_slot(struct zt_tunnel *t, const char *id, const char *sni,
				   uint32_t *hash)
{
	*hash = sess_hash(id, sni);
	return &t->sess[*hash % SESS_SLOTS];
}

static bool sess_key_eq(const struct sess_slot *s, uint32_t h, const char *id, const char *sni)
{
	size_t n = strlen(id);

	return s->key && s->hash == h && strncmp(s->key, id, n) == 0 && s->key[n] == '\n' &&
	       strcmp(s->key + n + 1, sni) == 0;
}

/*
 * Client: keep the latest ticket per (source identity, destination), as a
 * copy: sess stays the connection's own, and OpenSSL marks it not resumable
 * when the connection ends without close_notify (a pod's reset), which must
 * not send the next connections between the same workloads to a full
 * handshake.
 */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct conn *c = SSL_get_ex_data(ssl, conn_idx);
	struct sess_slot *s;
	uint32_t h;
	char *key;

	if (!c)
		return 0;
	sess = SSL_SESSION_dup(sess);
	if (!sess)
		return 0;
	if (asprintf(&key, "%s\n%s", c->local_id, c->sni) < 0) {
		SSL_SESSION_free(sess);
		return 0;
	}
	pthread_mutex_lock(&c->t->sess_lock);
	s = sess_slot(c->t, c->local_id, c->sni, &h);
	SSL_SESSION_free(s->s);
	free(s->key);
	s->hash = h;
	s->key = key;
	s->s = sess;
	snprintf(s->serial, sizeof(s->serial), "%s", c->svid ? c->svid->serial : "");
	s->valid_until = c->svid ? c->svid->not_after : 0;
	{
		X509 *peer = SSL_SESSION_get0_peer(sess);
		int64_t nb, na;

		if (peer && zt_x509_times(peer, &nb, &na) == 0 && na < s->valid_until)
			s->valid_until = na;
	}
	pthread_mutex_unlock(&c->t->sess_lock);
	return 0; /* the copy is ours; OpenSSL keeps its reference to sess */
}

static void sess_flush(struct zt_tunnel *t)
{
	pthread_mutex_lock(&t->sess_lock);
	for (size_t i = 0; i < SESS_SLOTS; i++) {
		SSL_SESSION_free(t->sess[i].s);
		free(t->sess[i].key);
		memset(&t->sess[i], 0, sizeof(t->sess[i]));
	}
	pthread_mutex_unlock(&t->sess_lock);
}

/*
 * The server's session cache (SRV_SESS_CACHE). A session is found only by
 * a handshake on the context that made it: one made under a CA bundle
 * since replaced never skips the new one's chain check.
 */
static struct srv_sess *srv_sess_slot(struct zt_tunnel *t, const unsigned char *id,
				      unsigned int len)
{
	return &t->srv_sess[zt_fnv1a32(id, len) % SRV_SESS_CACHE];
}

static uintptr_t ctx_gen(SSL *ssl)
{
	return (uintptr_t)SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_gen_idx);
}

/* A copy is kept: OpenSSL marks its own not resumable when a connection ends badly. */
static int srv_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct conn *c = SSL_get_ex_data(ssl, conn_idx);
	unsigned int len;
	const unsigned char *id = SSL_SESSION_get_id(sess, &len);
	struct srv_sess *e;
	SSL_SESSION *copy;

	if (!c || !len || !(copy = SSL_SESSION_dup(sess)))
		return 0;
	pthread_mutex_lock(&c->t->srv_sess_lock);
	e = srv_sess_slot(c->t, id, len);
	SSL_SESSION_free(e->s);
	e->s = copy;
	e->gen = ctx_gen(ssl);
	pthread_mutex_unlock(&c->t->srv_sess_lock);
	return 0; /* OpenSSL keeps its reference to sess */
}

static SSL_SESSION *srv_get_session_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
	struct conn *c = SSL_get_ex_data(ssl, conn_idx);
	SSL_SESSION *found = NULL;
	struct srv_sess *e;
	unsigned int elen;

	*copy = 0; /* what is returned is OpenSSL's: a copy of ours */
	if (!c || len <= 0)
		return NULL;
	pthread_mutex_lock(&c->t->srv_sess_lock);
	e = srv_sess_slot(c->t, id, (unsigned int)len);
	if (e->s && e->gen == ctx_gen(ssl)) {
		const unsigned char *eid = SSL_SESSION_get_id(e->s, &elen);

		/* Past its lifetime (session_lifetime_s): gone, whatever the client says. */
		if (SSL_SESSION_get_time(e->s) + SSL_SESSION_get_timeout(e->s) < (long)time(NULL)) {
			SSL_SESSION_free(e->s);
			e->s = NULL;
		} else if (elen == (unsigned int)len && memcmp(eid, id, elen) == 0) {
			found = SSL_SESSION_dup(e->s);
		}
	}
	pthread_mutex_unlock(&c->t->srv_sess_lock);
	return found;
}

static void srv_sess_flush(struct zt_tunnel *t)
{
	pthread_mutex_lock(&t->srv_sess_lock);
	for (size_t i = 0; i < SRV_SESS_CACHE; i++) {
		SSL_SESSION_free(t->srv_sess[i].s);
		t->srv_sess[i].s = NULL;
	}
	pthread_mutex_unlock(&t->srv_sess_lock);
}

static SSL_CTX *make_ctx(struct zt_tunnel *t, struct zt_trust *trust, bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, ciphersuites) || !SSL_CTX_set1_groups_list(ctx, groups))
		goto fail;
	SSL_CTX_set1_cert_store(ctx, trust->store);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx, 2);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/*
	 * Read ahead into a buffer as large as the relay's: one recv() takes
	 * several records instead of two calls (header, body) per 16 KB record.
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_RBUF);
	SSL_CTX_set_timeout(ctx, t->cfg.session_lifetime_s);
	if (server) {
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
		if (!SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1))
			goto fail;
		SSL_CTX_set_cert_cb(ctx, server_cert_cb, t);
		SSL_CTX_set_num_tickets(ctx, 1);
		/* TLS 1.3 with SSL_OP_NO_TICKET: stateful tickets, the sessions in srv_sess. */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx,
					       SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
		SSL_CTX_sess_set_new_cb(ctx, srv_new_session_cb);
		SSL_CTX_sess_set_get_cb(ctx, srv_get_session_cb);
		if (!SSL_CTX_set_ex_data(ctx, ctx_gen_idx, (void *)++t->ctx_gen))
			goto fail;
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
							    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	}
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

static int rebuild_ctxs(struct zt_tunnel *t, struct zt_trust *trust)
{
	SSL_CTX *c = make_ctx(t, trust, false), *s = make_ctx(t, trust, true);

	if (!c || !s) {
		SSL_CTX_free(c);
		SSL_CTX_free(s);
		return -ENOMEM;
	}
	/* Open SSLs keep their old context by reference; new handshakes use the new one. */
	SSL_CTX_free(t->cctx);
	SSL_CTX_free(t->sctx);
	t->cctx = c;
	t->sctx = s;
	return 0;
}

/* ---- epoll interest ---- */

static uint32_t wanted(struct conn *c, int i)
{
	struct ep *e = &c->ep[i];
	uint32_t ev = 0;

	if (e->connecting)
		return EPOLLOUT;
	if (c->st == ST_HANDSHAKE && e->ssl)
		return c->hs_want;
	if (c->read_ok[i] && !e->rd_eof && buf_space(&c->b[i]) > 0)
		ev |= EPOLLIN;
	if (e->wr_wants_read)
		ev |= EPOLLIN;
	if (e->rd_wants_write || e->wr_blocked || e->shut_blocked)
		ev |= EPOLLOUT;
	return ev;
}

static void update_interest(struct conn *c)
{
	struct zt_tunnel *t = c->t;

	for (int i = 0; i < 2; i++) {
		struct ep *e = &c->ep[i];
		struct epoll_event ev = { 0 };
		uint32_t want;

		if (e->fd < 0)
			continue;
		want = wanted(c, i);
		/* A hung-up socket reports EPOLLHUP whatever the mask: leave it out while idle. */
		if (e->hup && !want) {
			ep_unregister(t, e);
			continue;
		}
		ev.events = want;
		ev.data.ptr = &e->src;
		if (!e->registered) {
			if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, e->fd, &ev) == 0) {
				e->registered = true;
				e->events = want;
			}
		} else if (e->events != want) {
			if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, e->fd, &ev) == 0)
				e->events = want;
		}
	}
}

/* ---- endpoint I/O: >0 bytes, 0 clean end, -EAGAIN, -errno ---- */

static enum zt_mtls_reason ssl_reason(unsigned long e);

static int ep_read(struct ep *e, struct buf *b, enum zt_mtls_reason *why)
{
	size_t room = buf_space(b);
	int n;

	if (buf_ready(b) < 0)
		return -ENOMEM;
	if (!e->ssl) {
		ssize_t r = recv(e->fd, b->d + b->tail, room, MSG_DONTWAIT);

		if (r > 0) {
			b->tail += (size_t)r;
			e->rd_idle = (size_t)r < room;
		}
		if (r >= 0)
			return (int)r;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			e->rd_idle = true;
			return -EAGAIN;
		}
		return errno == EINTR ? -EAGAIN : -errno;
	}
	e->rd_wants_write = false;
	n = SSL_read(e->ssl, b->d + b->tail, (int)(room > INT32_MAX ? INT32_MAX : room));
	if (n > 0) {
		int got = n;

		/*
		 * SSL_read gives one record at a time: take the others read ahead
		 * too, so the plain side gets one large send() rather than one per
		 * record. Only what is buffered already: no recv() to find EAGAIN.
		 */
		b->tail += (size_t)n;
		while (b->tail < b->cap && SSL_has_pending(e->ssl) &&
		       (n = SSL_read(e->ssl, b->d + b->tail, (int)(b->cap - b->tail))) > 0) {
			b->tail += (size_t)n;
			got += n;
		}
		/* A reply the stack must write (KeyUpdate) waits for EPOLLOUT; an error or the end
		 * after data: the next call reports it. */
		if (n <= 0 && SSL_get_error(e->ssl, n) == SSL_ERROR_WANT_WRITE)
			e->rd_wants_write = true;
		return got;
	}
	switch (SSL_get_error(e->ssl, n)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
		e->rd_idle = true;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		e->rd_wants_write = true;
		return -EAGAIN;
	case SSL_ERROR_SSL:
		*why = ssl_reason(ERR_peek_error());
		return -EPROTO;
	default:
		/* EOF without close_notify: a truncation is a reset, not an end. */
		return -ECONNRESET;
	}
}

static int ep_write(struct ep *e, struct buf *b, enum zt_mtls_reason *why)
{
	size_t len = buf_used(b);
	int n;

	e->wr_blocked = false;
	if (!e->ssl) {
		ssize_t r = send(e->fd, b->d + b->head, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			b->head += (size_t)r;
			/* A short send filled the socket: wait for EPOLLOUT, not for EAGAIN. */
			e->wr_blocked = (size_t)r < len;
			return (int)r;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			e->wr_blocked = true;
			return -EAGAIN;
		}
		return r < 0 ? -errno : -EIO;
	}
	e->wr_wants_read = false;
	/*
	 * SSL_write (partial writes) returns after each record: write them all
	 * now, so the buffer empties and the next read fills it from the front.
	 */
	for (size_t done = 0;;) {
		size_t left = len - done;

		n = SSL_write(e->ssl, b->d + b->head, (int)(left > INT32_MAX ? INT32_MAX : left));
		if (n > 0) {
			b->head += (size_t)n;
			done += (size_t)n;
			if (done < len)
				continue;
			return (int)done;
		}
		if (done > 0) {
			/* The socket is full (or failing): the next call says which. */
			if (SSL_get_error(e->ssl, n) == SSL_ERROR_WANT_WRITE)
				e->wr_blocked = true;
			else
				ERR_clear_error();
			return (int)done;
		}
		break;
	}
	switch (SSL_get_error(e->ssl, n)) {
	case SSL_ERROR_WANT_WRITE:
		e->wr_blocked = true;
		return -EAGAIN;
	case SSL_ERROR_WANT_READ:
		e->wr_wants_read = true;
		return -EAGAIN;
	case SSL_ERROR_SSL:
		*why = ssl_reason(ERR_peek_error());
		return -EPROTO;
	default:
		return -ECONNRESET;
	}
}

/* Half-close: FIN on a plain socket, close_notify on TLS (reading goes on). */
static int ep_shutdown(struct ep *e)
{
	int r;

	e->shut_blocked = false;
	if (!e->ssl) {
		if (shutdown(e->fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		e->wr_shut = true;
		return 0;
	}
	r = SSL_shutdown(e->ssl);
	if (r >= 0) {
		e->wr_shut = true;
		return 0;
	}
	if (SSL_get_error(e->ssl, r) == SSL_ERROR_WANT_WRITE) {
		e->shut_blocked = true;
		return -EAGAIN;
	}
	ERR_clear_error();
	return -EPIPE;
}

/* ---- failure classification ---- */

static enum zt_mtls_reason ssl_reason(unsigned long e)
{
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return ZT_MTLS_HANDSHAKE;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_WRONG_SSL_VERSION:
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SHARED_GROUPS:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
	case SSL_R_NO_CIPHERS_AVAILABLE:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_BAD_PROTOCOL_VERSION_NUMBER:
		return ZT_MTLS_VERSION;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
		return ZT_MTLS_PLAINTEXT;
	case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
	case SSL_R_DECRYPTION_FAILED:
	case SSL_R_BAD_SIGNATURE:
	case SSL_R_DIGEST_CHECK_FAILED:
	case SSL_R_BAD_KEY_SHARE:
	case SSL_R_BAD_ECPOINT:
	case SSL_R_BAD_PSK_IDENTITY:
	case SSL_R_BAD_PSK:
	case SSL_R_BAD_LENGTH:
	case SSL_R_LENGTH_MISMATCH:
	case SSL_R_BAD_PACKET:
	case SSL_R_SSLV3_ALERT_BAD_RECORD_MAC:
	case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
	case SSL_R_TLSV1_ALERT_DECODE_ERROR:
	case SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER:
		return ZT_MTLS_TAMPERED;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return ZT_MTLS_NO_CERT;
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
	case SSL_R_TLSV1_ALERT_INTERNAL_ERROR:
	case SSL_R_TLSV1_UNRECOGNIZED_NAME:
		return ZT_MTLS_PEER_REFUSED;
	default:
		return ZT_MTLS_HANDSHAKE;
	}
}

/* ---- the state machine ---- */

static void set_deadline(struct conn *c)
{
	c->deadline_ns = now_ns() + (uint64_t)c->t->cfg.handshake_timeout_ms * 1000000ULL;
}

static int sock_opts(struct zt_tunnel *t, int fd, bool nodelay)
{
	int one = 1;

	if (nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (t->cfg.mark &&
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &t->cfg.mark, sizeof(t->cfg.mark)) < 0)
		return -errno;
	return 0;
}

/*
 * Starts connecting ep[i] to the destination; the client pod's address as
 * source when asked, and its port too (keep_port): the destination node
 * then sees and records the flow with the 5-tuple the client's node did.
 * When that tuple is taken here (bind or connect: EADDRINUSE or
 * EADDRNOTAVAIL, e.g. a TIME_WAIT of an earlier connection), the caller
 * tries again with any port.
 */
static int connect_dest_port(struct conn *c, int i, bool keep_port)
{
	struct zt_tunnel *t = c->t;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r, one = 1;

	fd = socket(c->dst.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = sock_opts(t, fd, true);
	if (r < 0)
		goto fail;
	if (t->cfg.transparent_source) {
		struct sockaddr_storage src;
		socklen_t slen;
		int lvl = c->dst.family == AF_INET ? SOL_IP : SOL_IPV6;
		int opt = c->dst.family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT;

		dest_sockaddr(c->dst.family, c->dst.src_addr, keep_port ? c->dst.src_port : 0, &src,
			      &slen);
		if (keep_port)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		else
			setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (setsockopt(fd, lvl, opt, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&src, slen) < 0) {
			r = -errno;
			goto fail;
		}
	}
	dest_sockaddr(c->dst.family, c->dst.addr, c->dst.port, &ss, &len);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	c->ep[i].fd = fd;
	c->ep[i].connecting = true;
	c->up = i;
	set_state(c, ST_CONNECT_UP);
	set_deadline(c);
	return 0;
fail:
	close(fd);
	return r;
}

static int connect_dest(struct conn *c, int i)
{
	int r = -EADDRINUSE;

	if (c->t->cfg.transparent_source && c->dst.src_port)
		r = connect_dest_port(c, i, true);
	if (r == -EADDRINUSE || r == -EADDRNOTAVAIL)
		r = connect_dest_port(c, i, false);
	return r;
}

static void start_relay(struct conn *c)
{
	set_state(c, ST_RELAY);
	c->read_ok[0] = c->read_ok[1] = true;
	c->flow[0] = c->flow[1] = true;
	c->deadline_ns = 0;
	pthread_mutex_lock(&c->t->list_lock); /* zt_tunnel_list copies the ids once relaying */
	c->relaying = true;
	pthread_mutex_unlock(&c->t->list_lock);
	atomic_fetch_add_explicit(&c->t->st_opened, 1, memory_order_relaxed);
	if (c->role == ZT_MTLS_ROLE_CLIENT && c->pool_hash) {
		struct pool_slot *p = &c->t->pool[c->pool_hash % POOL_SLOTS];

		/* The key works: keep spares for the next pod connections (pool_refill). */
		if (p->key && p->hash == c->pool_hash) {
			p->proven = true;
			if (!p->want)
				p->want = 1;
			c->refill = true;
		}
	}
	/* The server proved the destination's identity to a client; a server got the client's. */
	if (c->t->cfg.on_relay) {
		struct zt_mtls_dest d = c->dst;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		/* Towards the destination pod: the tuple its node sees (our socket's port). */
		if (c->up >= 0 && c->ep[c->up].fd >= 0 &&
		    getsockname(c->ep[c->up].fd, (struct sockaddr *)&ss, &sl) == 0)
			d.src_port = ntohs(ss.ss_family == AF_INET6 ?
						   ((struct sockaddr_in6 *)&ss)->sin6_port :
						   ((struct sockaddr_in *)&ss)->sin_port);
		c->t->cfg.on_relay(c->t->cfg.ctx, &d,
				   c->role == ZT_MTLS_ROLE_SERVER ? c->peer_id : c->local_id,
				   c->role == ZT_MTLS_ROLE_SERVER ? c->local_id : c->peer_id);
	}
}

/* Server: a refusal after the handshake says why in a frame, then closes. */
static void server_refuse(struct conn *c, enum zt_mtls_reason reason, const char *detail)
{
	uint8_t reply[ZT_FRAME_REPLY_LEN];

	zt_frame_reply_encode(reply, reason);
	/* Best effort on a fresh connection: 8 bytes fit any socket buffer. */
	if (SSL_write(c->ep[1].ssl, reply, sizeof(reply)) > 0)
		SSL_shutdown(c->ep[1].ssl);
	ERR_clear_error();
	note_refusal(c, reason, detail);
	conn_end(c, false);
}

/* Client: the header goes out, and the pod's bytes behind it as they come. */
static void send_header(struct conn *c)
{
	int n;

	if (buf_ready(&c->b[0]) < 0) {
		conn_end(c, false);
		return;
	}
	n = zt_frame_hdr_encode(c->b[0].d, c->b[0].cap, &c->dst, c->local_id);
	if (n < 0) {
		conn_refuse(c, ZT_MTLS_PROTOCOL, "cannot encode the header");
		return;
	}
	c->b[0].head = 0;
	c->b[0].tail = (size_t)n;
	/* Pod bytes follow the header at once: the server holds them until it agrees. */
	c->read_ok[0] = c->flow[0] = true;
	c->read_ok[1] = true;
	c->flow[1] = false;
	set_state(c, ST_WAIT_REPLY);
}

/* A spare's handshake is done: it waits in the pool, reading only to see tickets or an end. */
static void spare_ready(struct conn *c)
{
	set_state(c, ST_IDLE);
	c->read_ok[0] = c->flow[0] = c->flow[1] = false;
	c->read_ok[1] = true;
	c->deadline_ns = now_ns() + POOL_IDLE_MS * 1000000ULL;
}

static void after_handshake(struct conn *c)
{
	struct zt_tunnel *t = c->t;
	SSL *ssl = c->ep[1].ssl;
	X509 *peer = SSL_get0_peer_certificate(ssl);
	char detail[128];

	pthread_mutex_lock(&c->t->list_lock);
	c->resumed = SSL_session_reused(ssl);
	pthread_mutex_unlock(&c->t->list_lock);
	if (!peer) {
		conn_refuse(c, ZT_MTLS_NO_CERT, "no peer certificate");
		return;
	}
	if (!c->resumed && SSL_get_verify_result(ssl) != X509_V_OK) {
		conn_refuse(c, zt_mtls_reason_of_x509((int)SSL_get_verify_result(ssl)),
			    "verification result");
		return;
	}
	/* A resumed session skipped the chain: the leaf must still be valid now. */
	if (c->resumed || !c->peer_id[0]) {
		enum zt_mtls_reason r = zt_svid_check_leaf(peer, t->trust->trust_domain, c->peer_id,
							   sizeof(c->peer_id));

		if (r == ZT_MTLS_OK && X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)
			r = ZT_MTLS_EXPIRED;
		if (r == ZT_MTLS_OK && X509_cmp_current_time(X509_get0_notBefore(peer)) >= 0)
			r = ZT_MTLS_NOT_YET_VALID;
		if (r != ZT_MTLS_OK) {
			conn_refuse(c, r, c->resumed ? "resumed session" : "peer certificate");
			return;
		}
	}
	atomic_fetch_add_explicit(c->resumed ? &t->st_resumed : &t->st_full, 1,
				  memory_order_relaxed);
	if (c->role == ZT_MTLS_ROLE_CLIENT) {
		struct zt_mtls_dest d = c->dst;

		d.role = ZT_MTLS_ROLE_CLIENT;
		if (!t->cfg.authorize(t->cfg.ctx, c->peer_id, &d)) {
			SSL_shutdown(ssl);
			ERR_clear_error();
			conn_refuse(c, ZT_MTLS_WRONG_IDENTITY,
				    "the server's identity is not the destination's");
			return;
		}
		if (c->spare)
			spare_ready(c);
		else
			send_header(c);
	} else {
		if (!c->have_dst_addr) {
			const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
			int family;

			if (!sni || zt_sni_decode(sni, &family, c->dst.addr) < 0) {
				snprintf(detail, sizeof(detail),
					 "no usable SNI on a resumed session");
				conn_refuse(c, ZT_MTLS_PROTOCOL, detail);
				return;
			}
			c->dst.family = (uint8_t)family;
			c->have_dst_addr = true;
		}
		/* A resumed handshake presents no certificate: name the local side all the same. */
		if (!c->local_id[0] && t->cfg.local_identity &&
		    t->cfg.local_identity(t->cfg.ctx, &c->dst, c->local_id, sizeof(c->local_id)) <
			    0) {
			conn_refuse(c, ZT_MTLS_NO_IDENTITY, "no local workload at the destination");
			return;
		}
		c->read_ok[1] = true;
		c->flow[1] = false;
		set_state(c, ST_WAIT_HDR);
		c->hs_done_ns = now_ns();
		/*
		 * The client is authenticated now: it may hold the connection
		 * ready for a pod (its warm pool) for a while before the header.
		 */
		if (t->cfg.handshake_timeout_ms < SRV_IDLE_MS)
			c->deadline_ns = now_ns() + SRV_IDLE_MS * 1000000ULL;
	}
}

/* Something other than a TLS record where one must be: a plaintext peer. */
static bool peek_plaintext(struct conn *c)
{
	uint8_t h[3];
	ssize_t n;

	if (c->peeked)
		return false;
	n = recv(c->ep[1].fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false; /* nothing yet */
	c->peeked = true;
	if (n <= 0)
		return false; /* an end or an error: the handshake says which */
	/* handshake (22) or alert (21), then a 3.x record version */
	if ((h[0] != 22 && h[0] != 21) || (n >= 2 && h[1] != 3))
		return true;
	return false;
}

/* ---- the handshake worker's side (its thread only) ---- */

static int hs_failed(struct conn *c, enum zt_mtls_reason reason, const char *detail)
{
	c->hs_fail = reason ? reason : ZT_MTLS_HANDSHAKE;
	snprintf(c->hs_detail, sizeof(c->hs_detail), "%s", detail);
	return -1;
}

/*
 * One step of a lent conn: the TCP connect's end (client), then the
 * handshake. 1 done, 0 waiting for hs_want (or EPOLLOUT while connecting),
 * -1 failed (hs_fail and hs_detail say why).
 */
static int hs_step(struct conn *c)
{
	struct ep *e = &c->ep[1];
	SSL *ssl = e->ssl;
	char detail[256];
	int r, err;

	if (e->connecting) {
		socklen_t len = sizeof(err);

		err = 0;
		if (getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return 0;
		if (!err) {
			struct tcp_info ti;

			len = sizeof(ti);
			/* EPOLLOUT before the connect ended (a spurious wakeup): keep waiting. */
			if (getsockopt(e->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
			    ti.tcpi_state == TCP_SYN_SENT)
				return 0;
		}
		e->connecting = false;
		if (err) {
			snprintf(detail, sizeof(detail), "connect: %s", strerror(err));
			return hs_failed(c, ZT_MTLS_CONNECT, detail);
		}
		c->hs_want = EPOLLOUT;
	}
	if (peek_plaintext(c))
		return hs_failed(c, ZT_MTLS_PLAINTEXT, "the first bytes are not a TLS record");
	/*
	 * A server has nothing to do before the ClientHello; its first step
	 * comes at once on the worker, maybe before the client's bytes: wait
	 * for them, so that the peek above sees the first record and not one
	 * behind it (a ChangeCipherSpec, which it would take for plaintext).
	 */
	if (c->role == ZT_MTLS_ROLE_SERVER && !c->peeked) {
		c->hs_want = EPOLLIN;
		return 0;
	}
	r = SSL_do_handshake(ssl);
	if (r == 1) {
		ERR_clear_error();
		return 1;
	}
	err = SSL_get_error(ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		c->hs_want = EPOLLIN;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->hs_want = EPOLLOUT;
		return 0;
	}
	{
		unsigned long e2 = ERR_peek_error();
		enum zt_mtls_reason reason = c->reason;

		if (!reason)
			reason = e2 ? ssl_reason(e2) : ZT_MTLS_HANDSHAKE;
		if (!e2 && err == SSL_ERROR_SYSCALL)
			snprintf(detail, sizeof(detail), "the peer closed during the handshake");
		else
			ssl_detail(detail, sizeof(detail), "handshake");
		/* The peer closing on our ClientHello is how a TLS 1.2-only or picky peer says no. */
		if (!c->reason && !e2 && c->role == ZT_MTLS_ROLE_CLIENT)
			reason = ZT_MTLS_PEER_REFUSED;
		return hs_failed(c, reason, detail);
	}
}

/*
 * The hand-off queues (t->hs_in to the worker, t->hs_out back to the
 * relay), under t->hs_lock: c appended and the other side woken through
 * wakefd; or everything queued taken at once, in order.
 */
static void hs_queue_put(struct zt_tunnel *t, struct conn ***tail, struct conn *c, int wakefd)
{
	uint64_t one = 1;

	pthread_mutex_lock(&t->hs_lock);
	c->hs_next = NULL;
	**tail = c;
	*tail = &c->hs_next;
	pthread_mutex_unlock(&t->hs_lock);
	if (write(wakefd, &one, sizeof(one)) < 0) {
		/* the counter is full: the other side is woken already */
	}
}

static struct conn *hs_queue_take(struct zt_tunnel *t, struct conn **head, struct conn ***tail)
{
	struct conn *c;

	pthread_mutex_lock(&t->hs_lock);
	c = *head;
	*head = NULL;
	*tail = head;
	pthread_mutex_unlock(&t->hs_lock);
	return c;
}

/* Worker: the conn goes back to the relay (done or failed); ep[1] leaves the worker's epoll. */
static void give_back(struct zt_tunnel *t, struct conn *c)
{
	if (c->hs_registered)
		epoll_ctl(t->hs_epfd, EPOLL_CTL_DEL, c->ep[1].fd, NULL);
	c->hs_registered = false;
	if (c->hs_prev)
		c->hs_prev->hs_next = c->hs_next;
	else
		t->hs_list = c->hs_next;
	if (c->hs_next)
		c->hs_next->hs_prev = c->hs_prev;
	c->hs_prev = NULL;
	ERR_clear_error();
	hs_queue_put(t, &t->hs_out_tail, c, t->wakefd);
}

static void hs_run(struct zt_tunnel *t, struct conn *c)
{
	struct epoll_event ev = { 0 };
	int r = hs_step(c);

	if (r != 0) {
		give_back(t, c);
		return;
	}
	ev.events = c->ep[1].connecting ? EPOLLOUT : c->hs_want;
	ev.data.ptr = &c->hs_src;
	if (epoll_ctl(t->hs_epfd, c->hs_registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->ep[1].fd,
		      &ev) < 0) {
		char detail[96];

		snprintf(detail, sizeof(detail), "handshake worker: epoll: %s", strerror(errno));
		hs_failed(c, ZT_MTLS_HANDSHAKE, detail);
		give_back(t, c);
		return;
	}
	c->hs_registered = true;
}

/* Worker: takes the conns the relay lent; each makes its first step at once. */
static void hs_take(struct zt_tunnel *t)
{
	struct conn *c, *next;
	uint64_t v;

	while (read(t->hs_wakefd, &v, sizeof(v)) > 0)
		;
	for (c = hs_queue_take(t, &t->hs_in, &t->hs_in_tail); c; c = next) {
		next = c->hs_next;
		c->hs_prev = NULL;
		c->hs_next = t->hs_list;
		if (t->hs_list)
			t->hs_list->hs_prev = c;
		t->hs_list = c;
		hs_run(t, c);
	}
}

/* Worker: handshakes past their deadline go back as failed, as the relay's sweep did. */
static void hs_sweep(struct zt_tunnel *t)
{
	uint64_t now = now_ns();
	struct conn *c, *next;

	for (c = t->hs_list; c; c = next) {
		next = c->hs_next;
		if (!c->deadline_ns || now < c->deadline_ns)
			continue;
		if (c->ep[1].connecting)
			hs_failed(c, ZT_MTLS_CONNECT, "timed out connecting to the peer agent");
		else
			hs_failed(c, ZT_MTLS_TIMEOUT, "timed out before the tunnel was up");
		give_back(t, c);
	}
}

static void *hs_main(void *arg)
{
	struct zt_tunnel *t = arg;
	struct epoll_event evs[64];
	uint64_t last_sweep = now_ns();
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!atomic_load(&t->stop)) {
		int n = epoll_wait(t->hs_epfd, evs, 64, SWEEP_MS / 2);

		for (int i = 0; i < n; i++) {
			struct evsrc *s = evs[i].data.ptr;

			if (s == &t->hs_wsrc) {
				hs_take(t);
				continue;
			}
			hs_run(t, (struct conn *)((char *)s - offsetof(struct conn, hs_src)));
		}
		if (now_ns() - last_sweep >= SWEEP_MS / 2 * 1000000ULL) {
			hs_sweep(t);
			last_sweep = now_ns();
		}
	}
	return NULL;
}

/* ---- the relay's side of the hand-off ---- */

static void set_lent(struct conn *c, bool lent)
{
	pthread_mutex_lock(&c->t->list_lock); /* zt_tunnel_list looks at it */
	c->lent = lent;
	pthread_mutex_unlock(&c->t->list_lock);
}

/*
 * Relay: c's handshake goes to the worker (its SSL* made, its connect
 * started or its socket accepted). Nothing of c is in t->epfd meanwhile.
 */
static void lend(struct conn *c)
{
	struct zt_tunnel *t = c->t;

	ep_unregister(t, &c->ep[0]);
	ep_unregister(t, &c->ep[1]);
	set_state(c, ST_HANDSHAKE);
	c->hs_fail = ZT_MTLS_OK;
	c->hs_detail[0] = '\0';
	snprintf(c->trust_domain, sizeof(c->trust_domain), "%s", t->trust->trust_domain);
	set_lent(c, true);
	hs_queue_put(t, &t->hs_in_tail, c, t->hs_wakefd);
}

static void after_handshake(struct conn *c);
static void drive(struct conn *c);

/* Relay: a conn the worker gave back; the handshake's end as the relay saw it before. */
static void handshake_done(struct conn *c)
{
	set_lent(c, false);
	if (c->discard) {
		/* A spare that left its pool meanwhile (a trust change): never used. */
		c->discard = false;
		atomic_fetch_add_explicit(&c->t->st_pool_discarded, 1, memory_order_relaxed);
		conn_end(c, false);
		return;
	}
	if (c->hs_fail) {
		conn_refuse(c, c->hs_fail, c->hs_detail);
		return;
	}
	after_handshake(c);
	if (!c->dead)
		drive(c);
}

static void take_handshakes(struct zt_tunnel *t)
{
	struct conn *c, *next;

	for (c = hs_queue_take(t, &t->hs_out, &t->hs_out_tail); c; c = next) {
		next = c->hs_next;
		c->hs_next = NULL;
		handshake_done(c);
	}
}

/* Server: the header has arrived (or part of it). */
static void take_header(struct conn *c)
{
	struct zt_tunnel *t = c->t;
	struct buf *b = &c->b[1];
	struct zt_mtls_dest d;
	char id[ZT_SPIFFE_ID_MAX + 1];
	int n, r;

	if (!buf_used(b))
		return;
	/* A spare made under the old bundle: its header came later than a pod's would. */
	if (c->old_trust && now_ns() - c->hs_done_ns > 100000000ULL) {
		SSL_shutdown(c->ep[1].ssl);
		ERR_clear_error();
		conn_end(c, true);
		return;
	}
	n = zt_frame_hdr_decode(b->d + b->head, buf_used(b), &d, id, sizeof(id));
	if (n == -EAGAIN)
		return;
	if (n < 0) {
		server_refuse(c, ZT_MTLS_PROTOCOL, "malformed header");
		return;
	}
	if (d.family != c->dst.family || memcmp(d.addr, c->dst.addr, 16) != 0) {
		c->dst.port = d.port;
		server_refuse(c, ZT_MTLS_PROTOCOL, "the header's destination is not the SNI's");
		return;
	}
	d.role = ZT_MTLS_ROLE_SERVER;
	c->dst = d;
	/*
	 * The SVID we presented was chosen at the handshake, maybe a while ago
	 * (a client's spare): it must still be the destination's identity.
	 */
	if (t->cfg.local_identity) {
		char now_id[ZT_SPIFFE_ID_MAX + 1];

		if (t->cfg.local_identity(t->cfg.ctx, &d, now_id, sizeof(now_id)) < 0 ||
		    strcmp(now_id, c->local_id) != 0) {
			server_refuse(c, ZT_MTLS_NO_IDENTITY,
				      "the destination's identity changed since the handshake");
			return;
		}
	}
	if (strcmp(id, c->peer_id) != 0) {
		server_refuse(c, ZT_MTLS_WRONG_IDENTITY,
			      "the header's source identity is not the certificate's");
		return;
	}
	if (!t->cfg.authorize(t->cfg.ctx, c->peer_id, &c->dst)) {
		server_refuse(c, ZT_MTLS_WRONG_IDENTITY,
			      "policy does not allow this identity here");
		return;
	}
	b->head += (size_t)n;
	r = connect_dest(c, 0);
	if (r < 0) {
		char detail[96];

		snprintf(detail, sizeof(detail), "connect to the destination: %s", strerror(-r));
		server_refuse(c, ZT_MTLS_UPSTREAM, detail);
	}
}

/* Client: the server's answer to the header. */
static void take_reply(struct conn *c)
{
	struct buf *b = &c->b[1];
	char detail[96];
	int s;

	if (!buf_used(b))
		return;
	s = zt_frame_reply_decode(b->d + b->head, buf_used(b));
	if (s == -EAGAIN)
		return;
	if (s < 0) {
		conn_refuse(c, ZT_MTLS_PROTOCOL, "malformed answer from the server");
		return;
	}
	if (s != ZT_MTLS_OK) {
		snprintf(detail, sizeof(detail), "the server refused: %s",
			 zt_mtls_reason_name((enum zt_mtls_reason)s));
		conn_refuse(c, ZT_MTLS_PEER_REFUSED, detail);
		return;
	}
	b->head += ZT_FRAME_REPLY_LEN;
	c->flow[1] = true;
	start_relay(c);
}

static void dial(struct zt_tunnel *t, struct conn *c, socklen_t peer_len);
static struct conn *conn_new(struct zt_tunnel *t, enum zt_mtls_role role);

/*
 * A spare taken by a pod failed before the server's status (its path died
 * while it waited: reset, end, error), with nothing of the pod's sent: the
 * pod's connection gets a connection of its own, whose handshake then
 * meets whatever answers there now (and is refused and counted if it must).
 */
static bool spare_retry(struct conn *c)
{
	struct zt_tunnel *t = c->t;
	struct conn *n;
	int pod = c->ep[0].fd;

	if (!c->from_spare || c->st != ST_WAIT_REPLY || pod < 0)
		return false;
	ep_unregister(t, &c->ep[0]);
	c->ep[0].fd = -1;
	/*
	 * The header may still sit unacknowledged in the socket (a silent
	 * path): closed with a reset, the kernel drops it rather than deliver
	 * it once the path recovers, which would open a second, empty
	 * connection to the destination.
	 */
	if (c->ep[1].fd >= 0)
		setsockopt(c->ep[1].fd, SOL_SOCKET, SO_LINGER,
			   &(struct linger){ .l_onoff = 1, .l_linger = 0 }, sizeof(struct linger));
	ERR_clear_error();
	conn_end(c, false);
	atomic_fetch_add_explicit(&t->st_pool_failed, 1, memory_order_relaxed);
	n = conn_new(t, ZT_MTLS_ROLE_CLIENT);
	if (!n) {
		close_reset(pod);
		return true;
	}
	n->ep[0].fd = pod;
	n->dst = c->dst;
	n->peer = c->peer;
	n->pool_hash = c->pool_hash;
	memcpy(n->local_id, c->local_id, sizeof(n->local_id));
	memcpy(n->sni, c->sni, sizeof(n->sni));
	dial(t, n,
	     c->peer.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in));
	return true;
}

/* Moves bytes both ways until nothing moves; ends the tunnel when both directions are done. */
static void pump(struct conn *c)
{
	bool progress = true;

	for (int rounds = 0; progress && rounds < 64 && !c->dead; rounds++) {
		progress = false;
		for (int d = 0; d < 2 && !c->dead; d++) {
			struct ep *in = &c->ep[d], *out = &c->ep[!d];
			struct buf *b = &c->b[d];
			enum zt_mtls_reason why = ZT_MTLS_OK;
			int n;

			if (c->read_ok[d] && in->fd >= 0 && !in->connecting && !in->rd_eof &&
			    !in->rd_idle && buf_space(b) > 0) {
				n = ep_read(in, b, &why);
				if (n > 0) {
					progress = true;
					if (d == 0)
						atomic_fetch_add_explicit(&c->bytes_out,
									  (uint64_t)n,
									  memory_order_relaxed);
				} else if (n == 0) {
					in->rd_eof = true;
					progress = true;
				} else if (n != -EAGAIN) {
					if (why == ZT_MTLS_TAMPERED) {
						char detail[256];

						ssl_detail(detail, sizeof(detail), "record");
						conn_refuse(c, why, detail);
					} else if (!spare_retry(c)) {
						ERR_clear_error();
						conn_end(c, false);
					}
					return;
				}
			}
			if (c->flow[d] && out->fd >= 0 && !out->connecting && !out->wr_blocked &&
			    buf_used(b) > 0) {
				n = ep_write(out, b, &why);
				if (n > 0) {
					progress = true;
					if (d == 1)
						atomic_fetch_add_explicit(&c->bytes_in, (uint64_t)n,
									  memory_order_relaxed);
					if (d == 1 && c->refill && c->relaying)
						pool_refill(c);
				} else if (n != -EAGAIN) {
					if (!spare_retry(c)) {
						ERR_clear_error();
						conn_end(c, false);
					}
					return;
				}
			}
			if (c->flow[d] && out->fd >= 0 && !out->connecting && !buf_used(b) &&
			    in->rd_eof && !out->wr_shut) {
				n = ep_shutdown(out);
				if (n == 0)
					progress = true;
				else if (n != -EAGAIN) {
					conn_end(c, false);
					return;
				}
			}
		}
		if (c->st == ST_WAIT_REPLY)
			take_reply(c);
		else if (c->st == ST_WAIT_HDR)
			take_header(c);
		else if (c->st == ST_IDLE && (buf_used(&c->b[1]) || c->ep[1].rd_eof)) {
			/* Nothing but tickets may come before a header: the server went away. */
			conn_end(c, false);
			return;
		}
		if (c->dead)
			return;
		if (c->st == ST_WAIT_REPLY && c->ep[1].rd_eof) {
			if (!spare_retry(c))
				conn_refuse(c, ZT_MTLS_PEER_REFUSED,
					    "the server closed before its answer");
			return;
		}
		if (c->st == ST_WAIT_HDR && c->ep[1].rd_eof) {
			/* The client went away before saying where to: nothing to refuse. */
			conn_end(c, false);
			return;
		}
	}
	if (c->st == ST_RELAY && c->ep[0].rd_eof && c->ep[1].rd_eof && c->ep[0].wr_shut &&
	    c->ep[1].wr_shut && !buf_used(&c->b[0]) && !buf_used(&c->b[1]))
		conn_end(c, true);
}

static void drive(struct conn *c)
{
	if (c->lent)
		return;
	for (int guard = 0; guard < 8 && !c->dead; guard++) {
		enum state before = c->st;

		switch (c->st) {
		case ST_HANDSHAKE: /* the worker's: never driven here */
			break;
		case ST_WAIT_REPLY:
		case ST_WAIT_HDR:
		case ST_CONNECT_UP: /* the client's bytes keep arriving meanwhile */
		case ST_RELAY:
		case ST_IDLE:
			pump(c);
			break;
		}
		if (c->dead || c->st == before)
			break;
	}
	if (!c->dead)
		update_interest(c);
}

/* A connect finished (EPOLLOUT/ERR on a connecting endpoint). */
static void connected(struct conn *c, int i)
{
	struct ep *e = &c->ep[i];
	int err = 0;
	socklen_t len = sizeof(err);
	char detail[96];

	if (getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	e->connecting = false;
	if (err) {
		snprintf(detail, sizeof(detail), "connect: %s", strerror(err));
		if (c->local)
			conn_refuse(c, ZT_MTLS_UPSTREAM, detail);
		else
			server_refuse(c, ZT_MTLS_UPSTREAM, detail);
		return;
	}
	/* ST_CONNECT_UP: the destination answered; the server's go-ahead goes first. */
	if (!c->local) {
		struct buf *b = &c->b[0];

		if (buf_ready(b) < 0) {
			conn_end(c, false);
			return;
		}
		zt_frame_reply_encode(b->d, ZT_MTLS_OK);
		b->head = 0;
		b->tail = ZT_FRAME_REPLY_LEN;
	}
	start_relay(c);
}

static struct conn *conn_new(struct zt_tunnel *t, enum zt_mtls_role role)
{
	struct conn *c;

	if (t->n_conns >= t->cfg.max_conns)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->t = t;
	c->role = role;
	c->up = -1;
	c->since = (int64_t)zt_now_unix();
	c->hs_src.kind = SRC_HS;
	for (int i = 0; i < 2; i++) {
		c->ep[i].src.kind = SRC_EP;
		c->ep[i].c = c;
		c->ep[i].fd = -1;
		c->b[i].cap = i == 1 ? TLS_BUF : BUF_CAP; /* b[1]: from the TLS side */
	}
	pthread_mutex_lock(&t->list_lock);
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->n_conns++;
	pthread_mutex_unlock(&t->list_lock);
	return c;
}

static SSL *new_ssl(struct zt_tunnel *t, struct conn *c, bool server)
{
	SSL *ssl = SSL_new(server ? t->sctx : t->cctx);

	if (!ssl)
		return NULL;
	if (!SSL_set_ex_data(ssl, conn_idx, c) || !SSL_set_fd(ssl, c->ep[1].fd)) {
		SSL_free(ssl);
		return NULL;
	}
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/* An IPv4 peer on the dual-stack listener ("::ffff:a.b.c.d") as the IPv4 address it is. */
static void v4_unmap(struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

static void accept_all(struct zt_tunnel *t)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd =
			accept4(t->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return; /* EAGAIN, or a transient error: the next event retries */
		c = conn_new(t, ZT_MTLS_ROLE_SERVER);
		if (!c) {
			close_reset(fd);
			continue;
		}
		sock_opts(t, fd, true);
		v4_unmap(&ss);
		c->peer = ss;
		c->ep[1].fd = fd;
		c->ep[1].ssl = new_ssl(t, c, true);
		if (!c->ep[1].ssl) {
			ERR_clear_error();
			conn_end(c, false);
			continue;
		}
		c->hs_want = EPOLLIN;
		set_deadline(c);
		lend(c);
	}
}

static void start_local(struct zt_tunnel *t, struct open_req *q)
{
	struct conn *c = conn_new(t, ZT_MTLS_ROLE_CLIENT);
	struct zt_mtls_dest d;
	int r;

	if (!c) {
		close_reset(q->pod_fd);
		return;
	}
	c->local = true;
	c->b[1].cap = BUF_CAP; /* same node: plain both ways */
	c->ep[0].fd = q->pod_fd;
	c->dst = q->dst;
	snprintf(c->local_id, sizeof(c->local_id), "%s", q->src_id);
	dest_sockaddr(q->dst.family, q->dst.src_addr, q->dst.src_port, &c->peer, &(socklen_t){ 0 });
	/* Both checks a cross-node tunnel makes, on the identities the node itself vouches for. */
	d = q->dst;
	d.role = ZT_MTLS_ROLE_SERVER;
	if (!t->cfg.local_identity ||
	    t->cfg.local_identity(t->cfg.ctx, &d, c->peer_id, sizeof(c->peer_id)) < 0) {
		conn_refuse(c, ZT_MTLS_NO_IDENTITY, "no local workload at the destination");
		return;
	}
	if (!t->cfg.authorize(t->cfg.ctx, q->src_id, &d)) {
		conn_refuse(c, ZT_MTLS_WRONG_IDENTITY, "policy does not allow the source here");
		return;
	}
	d.role = ZT_MTLS_ROLE_CLIENT;
	if (!t->cfg.authorize(t->cfg.ctx, c->peer_id, &d)) {
		conn_refuse(c, ZT_MTLS_WRONG_IDENTITY,
			    "the destination's identity is not expected");
		return;
	}
	r = connect_dest(c, 1);
	if (r < 0) {
		char detail[96];

		snprintf(detail, sizeof(detail), "connect to the destination: %s", strerror(-r));
		conn_refuse(c, ZT_MTLS_UPSTREAM, detail);
		return;
	}
	update_interest(c);
}

/*
 * Client: TCP connect to the peer agent and the handshake for c, whose
 * local_id, sni, dst and peer are set (a pod's connection, or a spare).
 */
static void dial(struct zt_tunnel *t, struct conn *c, socklen_t peer_len)
{
	struct sess_slot *s;
	uint32_t h;
	int fd, r;

	set_deadline(c);
	if (zt_svid_store_get(t->cfg.svids, c->local_id, (int64_t)zt_now_unix(), &c->svid) < 0) {
		conn_refuse(c, ZT_MTLS_NO_IDENTITY, "this node holds no SVID for the source");
		return;
	}
	fd = socket(c->peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || sock_opts(t, fd, true) < 0) {
		if (fd >= 0)
			close(fd);
		conn_refuse(c, ZT_MTLS_CONNECT, "cannot make a socket");
		return;
	}
	c->ep[1].fd = fd;
	c->ep[1].ssl = new_ssl(t, c, false);
	if (!c->ep[1].ssl || use_svid(c->ep[1].ssl, c->svid) < 0 ||
	    !SSL_set_tlsext_host_name(c->ep[1].ssl, c->sni)) {
		ERR_clear_error();
		conn_refuse(c, ZT_MTLS_HANDSHAKE, "cannot set up TLS");
		return;
	}
	pthread_mutex_lock(&t->sess_lock);
	s = sess_slot(t, c->local_id, c->sni, &h);
	/*
	 * A resumed session carries the certificates of its first handshake: offer
	 * it only while both are valid well ahead, and not past our SVID's renewal.
	 */
	if (!t->cfg.no_resumption && sess_key_eq(s, h, c->local_id, c->sni) &&
	    SSL_SESSION_is_resumable(s->s) && strcmp(s->serial, c->svid->serial) == 0 &&
	    (int64_t)zt_now_unix() + 2 < s->valid_until) {
		/* A copy, for the same reason as in new_session_cb (a reset before the ticket). */
		SSL_SESSION *copy = SSL_SESSION_dup(s->s);

		SSL_set_session(c->ep[1].ssl, copy ? copy : s->s);
		SSL_SESSION_free(copy);
	}
	pthread_mutex_unlock(&t->sess_lock);
	r = connect(fd, (struct sockaddr *)&c->peer, peer_len);
	if (r < 0 && errno != EINPROGRESS) {
		char detail[96];

		snprintf(detail, sizeof(detail), "connect: %s", strerror(errno));
		conn_refuse(c, ZT_MTLS_CONNECT, detail);
		return;
	}
	c->ep[1].connecting = r < 0;
	c->hs_want = EPOLLOUT;
	lend(c);
}

/* ---- the warm pool ---- */

static struct pool_slot *pool_find(struct zt_tunnel *t, const char *id, const char *sni,
				   const struct sockaddr_storage *peer, socklen_t peer_len,
				   bool make)
{
	char a[64], *key;
	struct pool_slot *p;
	uint32_t h;

	addr_str(peer, a, sizeof(a));
	if (asprintf(&key, "%s\n%s\n%s", id, sni, a) < 0)
		return NULL;
	h = zt_fnv1a32(key, strlen(key));
	p = &t->pool[h % POOL_SLOTS];
	if (p->key && p->hash == h && strcmp(p->key, key) == 0) {
		free(key);
		return p;
	}
	/* Another key holds the slot: take it over only when it keeps no spare. */
	if (!make || (p->key && p->n)) {
		free(key);
		return NULL;
	}
	free(p->key);
	memset(p, 0, sizeof(*p));
	p->key = key;
	p->hash = h;
	memcpy(&p->peer, peer, peer_len);
	p->peer_len = peer_len;
	snprintf(p->sni, sizeof(p->sni), "%s", sni);
	return p;
}

/* Starts spares until the slot holds as many as it wants. */
static void pool_fill(struct zt_tunnel *t, struct pool_slot *p, const char *id)
{
	while (p->n < p->want && t->n_conns + 1 < t->cfg.max_conns) {
		struct conn *c = conn_new(t, ZT_MTLS_ROLE_CLIENT);

		if (!c)
			return;
		atomic_fetch_add_explicit(&t->st_pool_made, 1, memory_order_relaxed);
		set_spare(c, true);
		c->pool = p;
		c->pool_hash = p->hash;
		c->pool_next = p->spares;
		p->spares = c;
		p->n++;
		c->dst = p->dst;
		c->peer = p->peer;
		snprintf(c->local_id, sizeof(c->local_id), "%s", id);
		snprintf(c->sni, sizeof(c->sni), "%s", p->sni);
		dial(t, c, p->peer_len);
		if (c->dead) /* failed at once: conn_refuse set want to 0 */
			return;
	}
}

/* Retires every spare (a trust change: they were made under the old bundle). */
static void pool_flush(struct zt_tunnel *t)
{
	for (size_t i = 0; i < POOL_SLOTS; i++) {
		struct pool_slot *p = &t->pool[i];

		while (p->spares) {
			struct conn *c = p->spares;

			if (c->lent) { /* the worker has it: ended when it comes back */
				pool_unlink(c);
				c->discard = true;
			} else {
				conn_end(c, false);
			}
		}
		free(p->key);
		memset(p, 0, sizeof(*p));
	}
}

/*
 * A ready spare still fit for the pod's connection: our SVID is the one the
 * store holds now, the server's certificate is still valid, and policy
 * still accepts the server's identity for this destination.
 */
static bool spare_fits(struct zt_tunnel *t, struct conn *c, const struct zt_mtls_dest *dst)
{
	struct zt_svid *now = NULL;
	X509 *peer = SSL_get0_peer_certificate(c->ep[1].ssl);
	struct zt_mtls_dest d = *dst;
	bool ok;

	if (!peer || X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0 ||
	    zt_svid_store_get(t->cfg.svids, c->local_id, (int64_t)zt_now_unix(), &now) < 0)
		return false;
	ok = strcmp(now->serial, c->svid->serial) == 0;
	zt_svid_put(now);
	d.role = ZT_MTLS_ROLE_CLIENT;
	return ok && t->cfg.authorize(t->cfg.ctx, c->peer_id, &d);
}

enum take { TAKE_NONE, TAKE_READY, TAKE_PENDING };

/* Hands the pod's connection to a spare of p, a ready one if it can. */
static enum take pool_take(struct zt_tunnel *t, struct pool_slot *p, struct open_req *q)
{
	struct conn *c, *pending = NULL;

	for (c = p->spares; c;) {
		struct conn *next = c->pool_next;

		if (c->st != ST_IDLE) {
			pending = c;
		} else if (!spare_fits(t, c, &q->dst)) {
			conn_end(c, false); /* leaves the pool */
		} else {
			pool_unlink(c);
			c->ep[0].fd = q->pod_fd;
			c->dst = q->dst;
			c->since = (int64_t)zt_now_unix();
			set_deadline(c);
			atomic_fetch_add_explicit(&t->st_pool_ready, 1, memory_order_relaxed);
			send_header(c);
			/*
			 * The pod's bytes wait for the server's status: a spare whose
			 * path died meanwhile (a reset, an end) then fails with none of
			 * them sent, and the pod's connection is dialled afresh (redial).
			 */
			c->from_spare = true;
			c->read_ok[0] = false;
			c->taken_ns = now_ns();
			c->ack_check = true;
			c->deadline_ns = c->taken_ns + SPARE_ACK_MS * 1000000ULL;
			drive(c);
			return TAKE_READY;
		}
		c = next;
	}
	if (!pending)
		return TAKE_NONE;
	/*
	 * One is still on its way (new connections come faster than spares):
	 * the pod takes it over; the checks after its handshake are this pod's.
	 */
	pool_unlink(pending);
	pending->ep[0].fd = q->pod_fd;
	pending->dst = q->dst;
	pending->since = (int64_t)zt_now_unix();
	atomic_fetch_add_explicit(&t->st_pool_pending, 1, memory_order_relaxed);
	/* Lent: the pod's socket is watched once the handshake comes back (after_handshake). */
	if (!pending->lent)
		update_interest(pending);
	return TAKE_PENDING;
}

static void start_client(struct zt_tunnel *t, struct open_req *q)
{
	char sni[ZT_SNI_MAX];
	struct pool_slot *p = NULL;
	enum take got = TAKE_NONE;
	struct conn *c;

	zt_sni_encode(sni, sizeof(sni), q->dst.family, q->dst.addr);
	if (!t->cfg.no_pool)
		p = pool_find(t, q->src_id, sni, &q->peer, q->peer_len, true);
	if (p) {
		got = pool_take(t, p, q);
		/* None was ready: keep one more from now on. */
		if (got != TAKE_READY && p->want < POOL_MAX)
			p->want++;
		if (got == TAKE_NONE)
			atomic_fetch_add_explicit(&t->st_pool_miss, 1, memory_order_relaxed);
		p->dst = q->dst;
	}
	if (got == TAKE_NONE) {
		c = conn_new(t, ZT_MTLS_ROLE_CLIENT);
		if (!c) {
			close_reset(q->pod_fd);
			return;
		}
		c->ep[0].fd = q->pod_fd;
		c->dst = q->dst;
		c->peer = q->peer;
		c->pool_hash = p ? p->hash : 0;
		snprintf(c->local_id, sizeof(c->local_id), "%s", q->src_id);
		snprintf(c->sni, sizeof(c->sni), "%s", sni);
		dial(t, c, q->peer_len);
	}
}

/*
 * Server, on a trust change: connections authenticated under the old bundle
 * that wait for a header (a peer's spares) are closed with close_notify;
 * the peer drops them. Not those just handshaken, whose header is on its way.
 */
static void retire_waiting(struct zt_tunnel *t)
{
	uint64_t now = now_ns();
	struct conn *c, *next;

	for (c = t->conns; c; c = next) {
		next = c->next;
		if (c->role != ZT_MTLS_ROLE_SERVER || c->relaying)
			continue;
		if (c->st != ST_WAIT_HDR || now - c->hs_done_ns < 100000000ULL) {
			c->old_trust = true; /* take_header looks again */
			continue;
		}
		SSL_shutdown(c->ep[1].ssl);
		ERR_clear_error();
		conn_end(c, true);
	}
}

static void take_requests(struct zt_tunnel *t)
{
	struct open_req *q, *next;
	struct zt_trust *trust;
	uint64_t v;

	while (read(t->wakefd, &v, sizeof(v)) > 0)
		;
	take_handshakes(t);
	pthread_mutex_lock(&t->lock);
	q = t->reqs;
	t->reqs = NULL;
	t->reqs_tail = &t->reqs;
	trust = t->pending_trust;
	t->pending_trust = NULL;
	pthread_mutex_unlock(&t->lock);
	if (trust) {
		if (rebuild_ctxs(t, trust) == 0) {
			zt_trust_free(t->trust);
			t->trust = trust;
			/* Tickets made under the old bundle must not skip the new one. */
			sess_flush(t);
			srv_sess_flush(t);
			pool_flush(t);
			retire_waiting(t);
			log_info("mtls_trust_reloaded", "roots=%d", trust->n_roots);
		} else {
			log_error("mtls_trust_reload_failed", "error=%s", strerror(ENOMEM));
			zt_trust_free(trust);
		}
	}
	for (; q; q = next) {
		next = q->next;
		if (q->local)
			start_local(t, q);
		else
			start_client(t, q);
		free(q);
	}
}

/*
 * A relaying tunnel that moved nothing since the last sweep gives its empty
 * buffers back (ours and OpenSSL's); the next bytes allocate them again.
 * Instead of SSL_MODE_RELEASE_BUFFERS, which frees and allocates them on
 * every read that empties them, at line rate too.
 */
static void release_idle(struct conn *c)
{
	uint64_t moved = atomic_load_explicit(&c->bytes_out, memory_order_relaxed) +
			 atomic_load_explicit(&c->bytes_in, memory_order_relaxed);

	if (c->st != ST_RELAY && c->st != ST_IDLE)
		return;
	if (moved == c->moved_seen) {
		for (int i = 0; i < 2; i++) {
			if (c->b[i].d && !buf_used(&c->b[i])) {
				free(c->b[i].d);
				c->b[i].d = NULL;
				c->b[i].head = c->b[i].tail = 0;
			}
		}
		if (c->ep[1].ssl)
			SSL_free_buffers(c->ep[1].ssl); /* only when they are empty */
	}
	c->moved_seen = moved;
}

/*
 * A taken spare, SPARE_ACK_MS after its header went out, no status yet: if
 * the peer's TCP has not even acknowledged the header, the path is dead
 * (nothing of the pod's was sent) and the pod's connection gets a fresh
 * one; if it has, the server is at work (a slow destination): the
 * handshake timeout applies from when the spare was taken.
 */
static void spare_check_ack(struct conn *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	c->ack_check = false;
	if (c->ep[1].fd >= 0 && getsockopt(c->ep[1].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    ti.tcpi_unacked > 0) {
		log_debug("mtls_spare_dead", "unacked=%u retransmits=%u", ti.tcpi_unacked,
			  ti.tcpi_retransmits);
		if (spare_retry(c))
			return;
	}
	c->deadline_ns = c->taken_ns + (uint64_t)c->t->cfg.handshake_timeout_ms * 1000000ULL;
}

static void sweep(struct zt_tunnel *t)
{
	uint64_t now = now_ns();
	struct conn *c, *next;

	for (c = t->conns; c; c = next) {
		next = c->next;
		if (c->lent) /* the worker's deadline */
			continue;
		release_idle(c);
		if (!c->deadline_ns || now < c->deadline_ns)
			continue;
		switch (c->st) {
		case ST_WAIT_REPLY:
			if (c->ack_check) {
				spare_check_ack(c);
				break;
			}
			conn_refuse(c, ZT_MTLS_TIMEOUT, "timed out before the tunnel was up");
			break;
		case ST_IDLE:
			/* Unused this long: one spare fewer for its key, closed with close_notify. */
			if (c->pool && c->pool->want)
				c->pool->want--;
			SSL_shutdown(c->ep[1].ssl);
			ERR_clear_error();
			conn_end(c, true);
			break;
		case ST_CONNECT_UP:
			conn_refuse(c, ZT_MTLS_UPSTREAM, "timed out connecting to the destination");
			break;
		default:
			conn_refuse(c, ZT_MTLS_TIMEOUT, "timed out before the tunnel was up");
			break;
		}
	}
}

static void reap(struct zt_tunnel *t)
{
	while (t->dead) {
		struct conn *c = t->dead;

		t->dead = c->next_dead;
		conn_free(c);
	}
}

/*
 * Pod connections steered to a listener of ours: accepted here and started
 * by the listener's fn through zt_tunnel_open*, at once. A burst is taken
 * 64 at a time so that the tunnels already open get their turn between.
 */
static void accept_pods(struct zt_tunnel *t, struct pod_listener *l)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or a transient error: the next event retries */
		t->in_accept = true;
		l->fn(l->ctx, fd);
		t->in_accept = false;
	}
}

static void *relay_main(void *arg)
{
	struct zt_tunnel *t = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t last_sweep = now_ns();
	sigset_t set;

	/* SSL_write on a reset socket must fail with EPIPE, not kill the agent. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	relay_of = t;
	while (!atomic_load(&t->stop)) {
		int n = epoll_wait(t->epfd, evs, MAX_EVENTS, SWEEP_MS);

		for (int i = 0; i < n; i++) {
			struct evsrc *s = evs[i].data.ptr;
			struct ep *e;

			if (s->kind == SRC_LISTEN) {
				accept_all(t);
				continue;
			}
			if (s->kind == SRC_WAKE) {
				take_requests(t);
				continue;
			}
			if (s->kind == SRC_POD_LISTEN) {
				accept_pods(t, (struct pod_listener *)s);
				continue;
			}
			e = (struct ep *)s;
			if (e->c->dead || e->c->lent)
				continue;
			if (evs[i].events & (EPOLLHUP | EPOLLERR))
				e->hup = true;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
				e->rd_idle = false;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				e->wr_blocked = false;
			if (e->connecting && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
				connected(e->c, (int)(e - e->c->ep));
				if (e->c->dead)
					continue;
			}
			drive(e->c);
		}
		if (now_ns() - last_sweep >= SWEEP_MS * 1000000ULL) {
			sweep(t);
			last_sweep = now_ns();
		}
		reap(t);
	}
	return NULL;
}

/* ---- public ---- */

int zt_tunnel_new(const struct zt_tunnel_config *cfg, struct zt_tunnel **out, char *err,
		  size_t errlen)
{
	struct zt_tunnel *t;
	struct epoll_event ev = { .events = EPOLLIN };
	int r = -ENOMEM;

	if (!cfg || !cfg->svids || !cfg->trust || !cfg->authorize) {
		zt_seterr(err, errlen, "tunnel: svids, trust and authorize are required");
		return -EINVAL;
	}
	pthread_once(&idx_once, idx_init);
	if (conn_idx < 0)
		return -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	t->cfg.listen = NULL;
	if (!t->cfg.handshake_timeout_ms)
		t->cfg.handshake_timeout_ms = 10000;
	if (!t->cfg.max_conns)
		t->cfg.max_conns = 16384;
	if (!t->cfg.session_lifetime_s)
		t->cfg.session_lifetime_s = 300;
	t->epfd = t->lfd = t->wakefd = t->hs_epfd = t->hs_wakefd = -1;
	t->reqs_tail = &t->reqs;
	t->hs_in_tail = &t->hs_in;
	t->hs_out_tail = &t->hs_out;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->hs_lock, NULL);
	pthread_mutex_init(&t->sess_lock, NULL);
	pthread_mutex_init(&t->srv_sess_lock, NULL);
	t->hs_wsrc.kind = SRC_WAKE;
	pthread_mutex_init(&t->list_lock, NULL);
	t->lsrc.kind = SRC_LISTEN;
	t->wsrc.kind = SRC_WAKE;
	t->trust = cfg->trust;
	if (rebuild_ctxs(t, t->trust) < 0) {
		zt_seterr(err, errlen, "tunnel: cannot build the TLS 1.3 contexts");
		goto fail;
	}
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->hs_epfd = epoll_create1(EPOLL_CLOEXEC);
	t->hs_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->wakefd < 0 || t->hs_epfd < 0 || t->hs_wakefd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "tunnel: epoll/eventfd: %s", strerror(-r));
		goto fail;
	}
	ev.data.ptr = &t->wsrc;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &ev) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "tunnel: epoll: %s", strerror(-r));
		goto fail;
	}
	ev.data.ptr = &t->hs_wsrc;
	if (epoll_ctl(t->hs_epfd, EPOLL_CTL_ADD, t->hs_wakefd, &ev) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "tunnel: epoll: %s", strerror(-r));
		goto fail;
	}
	if (cfg->listen) {
		struct sockaddr_storage ss;
		socklen_t len;
		int one = 1;

		if (zt_listen_parse(cfg->listen, &ss) < 0) {
			/* zt_listen_parse wants a port from 1; ":0" (any) is for tests. */
			char host[INET6_ADDRSTRLEN + 8];
			const char *colon = strrchr(cfg->listen, ':');

			r = -EINVAL;
			if (!colon || strcmp(colon, ":0") != 0 ||
			    (size_t)(colon - cfg->listen) >= sizeof(host)) {
				zt_seterr(err, errlen,
					  "tunnel: listen address '%s' is not ADDR:PORT",
					  cfg->listen);
				goto fail;
			}
			snprintf(host, sizeof(host), "%.*s:1", (int)(colon - cfg->listen),
				 cfg->listen);
			if (zt_listen_parse(host, &ss) < 0) {
				zt_seterr(err, errlen,
					  "tunnel: listen address '%s' is not ADDR:PORT",
					  cfg->listen);
				goto fail;
			}
			if (ss.ss_family == AF_INET)
				((struct sockaddr_in *)&ss)->sin_port = 0;
			else
				((struct sockaddr_in6 *)&ss)->sin6_port = 0;
		}
		len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
						sizeof(struct sockaddr_in6);
		t->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		/* "[::]:PORT" takes both families (IPv4 peers arrive v4-mapped, see accept_all). */
		if (t->lfd < 0 ||
		    setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    (ss.ss_family == AF_INET6 &&
		     setsockopt(t->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){ 0 }, sizeof(int)) < 0) ||
		    bind(t->lfd, (struct sockaddr *)&ss, len) < 0 || listen(t->lfd, 1024) < 0) {
			r = -errno;
			zt_seterr(err, errlen, "tunnel: cannot listen on %s: %s", cfg->listen,
				  strerror(-r));
			goto fail;
		}
		len = sizeof(ss);
		getsockname(t->lfd, (struct sockaddr *)&ss, &len);
		t->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
							  ((struct sockaddr_in6 *)&ss)->sin6_port);
		ev.data.ptr = &t->lsrc;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev) < 0) {
			r = -errno;
			goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	t->trust = NULL; /* the caller keeps it on failure */
	zt_tunnel_free(t);
	return r;
}

int zt_tunnel_start(struct zt_tunnel *t)
{
	int r = pthread_create(&t->hs_thread, NULL, hs_main, t);

	if (r)
		return -r;
	t->hs_started = true;
	pthread_setname_np(t->hs_thread, "zt-mtls-hs");
	t->have_hs_cpu_clock = pthread_getcpuclockid(t->hs_thread, &t->hs_cpu_clock) == 0;
	r = pthread_create(&t->thread, NULL, relay_main, t);
	if (r)
		return -r; /* zt_tunnel_free stops the worker */
	t->started = true;
	pthread_setname_np(t->thread, "zt-relay"); /* top -H, perf, the bench find it by name */
	t->have_cpu_clock = pthread_getcpuclockid(t->thread, &t->cpu_clock) == 0;
	return 0;
}

uint16_t zt_tunnel_port(const struct zt_tunnel *t)
{
	return t->port;
}

/* One of the tunnel's threads, told to stop (t->stop): woken through its eventfd, joined. */
static void wake_join(int wakefd, pthread_t th)
{
	uint64_t one = 1;

	if (write(wakefd, &one, sizeof(one)) < 0) {
		/* the loop wakes within SWEEP_MS anyway */
	}
	pthread_join(th, NULL);
}

void zt_tunnel_free(struct zt_tunnel *t)
{
	struct open_req *q;

	if (!t)
		return;
	atomic_store(&t->stop, true);
	if (t->started)
		wake_join(t->wakefd, t->thread);
	if (t->hs_started)
		wake_join(t->hs_wakefd, t->hs_thread);
	/* Both threads are gone: every conn, lent or not, is this thread's to end. */
	while (t->conns)
		conn_end(t->conns, false);
	reap(t);
	for (q = t->reqs; q;) {
		struct open_req *next = q->next;

		close_reset(q->pod_fd);
		free(q);
		q = next;
	}
	sess_flush(t);
	srv_sess_flush(t);
	pool_flush(t);
	zt_trust_free(t->pending_trust);
	zt_trust_free(t->trust);
	SSL_CTX_free(t->cctx);
	SSL_CTX_free(t->sctx);
	if (t->lfd >= 0)
		close(t->lfd);
	if (t->wakefd >= 0)
		close(t->wakefd);
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->hs_wakefd >= 0)
		close(t->hs_wakefd);
	if (t->hs_epfd >= 0)
		close(t->hs_epfd);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->hs_lock);
	pthread_mutex_destroy(&t->sess_lock);
	pthread_mutex_destroy(&t->srv_sess_lock);
	pthread_mutex_destroy(&t->list_lock);
	free(t);
}

static int queue(struct zt_tunnel *t, struct open_req *q)
{
	uint64_t one = 1;

	/* From a pod listener's fn on the relay thread: start it now. */
	if (relay_of == t && t->in_accept) {
		if (q->local)
			start_local(t, q);
		else
			start_client(t, q);
		free(q);
		return 0;
	}
	pthread_mutex_lock(&t->lock);
	*t->reqs_tail = q;
	t->reqs_tail = &q->next;
	pthread_mutex_unlock(&t->lock);
	if (write(t->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

/*
 * The pod's socket: nonblocking, and no Nagle wait on what the relay sends
 * it (a reply written while an earlier one is unacknowledged goes at once).
 */
static void pod_sock_opts(int pod_fd)
{
	int one = 1;

	fcntl(pod_fd, F_SETFL, fcntl(pod_fd, F_GETFL) | O_NONBLOCK);
	setsockopt(pod_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* not TCP: no-op */
}

static int make_req(int pod_fd, const struct zt_mtls_dest *dst, const char *src_id,
		    struct open_req **out)
{
	struct open_req *q;

	if (pod_fd < 0)
		return -EBADF;
	if (!dst || (dst->family != AF_INET && dst->family != AF_INET6) || !dst->port || !src_id ||
	    strlen(src_id) > ZT_SPIFFE_ID_MAX) {
		close_reset(pod_fd);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		close_reset(pod_fd);
		return -ENOMEM;
	}
	q->pod_fd = pod_fd;
	q->dst = *dst;
	snprintf(q->src_id, sizeof(q->src_id), "%s", src_id);
	*out = q;
	return 0;
}

int zt_tunnel_open(struct zt_tunnel *t, int pod_fd, const struct zt_mtls_dest *dst,
		   const char *src_id, const struct sockaddr *peer, socklen_t peer_len)
{
	struct open_req *q;
	int r;

	if (!peer || peer_len > sizeof(q->peer) ||
	    (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)) {
		close_reset(pod_fd);
		return -EINVAL;
	}
	r = make_req(pod_fd, dst, src_id, &q);
	if (r < 0)
		return r;
	memcpy(&q->peer, peer, peer_len);
	q->peer_len = peer_len;
	pod_sock_opts(pod_fd);
	return queue(t, q);
}

int zt_tunnel_open_local(struct zt_tunnel *t, int pod_fd, const struct zt_mtls_dest *dst,
			 const char *src_id)
{
	struct open_req *q;
	int r = make_req(pod_fd, dst, src_id, &q);

	if (r < 0)
		return r;
	q->local = true;
	pod_sock_opts(pod_fd);
	return queue(t, q);
}

int zt_tunnel_add_listener(struct zt_tunnel *t, int fd, zt_tunnel_accept_fn fn, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct pod_listener *l;

	if (!t || fd < 0 || !fn)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (t->n_pod_lsn >= ZT_TUNNEL_LISTENERS_MAX) {
		pthread_mutex_unlock(&t->lock);
		return -ENOSPC;
	}
	l = &t->pod_lsn[t->n_pod_lsn];
	l->src.kind = SRC_POD_LISTEN;
	l->fd = fd;
	l->fn = fn;
	l->ctx = ctx;
	ev.data.ptr = &l->src;
	/* The relay thread reads l only once epoll reports it, after this. */
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		pthread_mutex_unlock(&t->lock);
		return r;
	}
	t->n_pod_lsn++;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int zt_tunnel_set_trust(struct zt_tunnel *t, struct zt_trust *trust)
{
	uint64_t one = 1;

	if (!trust)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	zt_trust_free(t->pending_trust);
	t->pending_trust = trust;
	pthread_mutex_unlock(&t->lock);
	if (write(t->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

void zt_tunnel_get_stats(struct zt_tunnel *t, struct zt_tunnel_stats *o)
{
	struct timespec ts;

	memset(o, 0, sizeof(*o));
	o->handshakes_full = atomic_load_explicit(&t->st_full, memory_order_relaxed);
	o->handshakes_resumed = atomic_load_explicit(&t->st_resumed, memory_order_relaxed);
	for (int i = 0; i < ZT_MTLS_REASON_MAX; i++)
		o->refusals[i] = atomic_load_explicit(&t->st_refused[i], memory_order_relaxed);
	o->tunnels_opened = atomic_load_explicit(&t->st_opened, memory_order_relaxed);
	o->tunnels_closed = atomic_load_explicit(&t->st_closed, memory_order_relaxed);
	o->tunnels_reset = atomic_load_explicit(&t->st_reset, memory_order_relaxed);
	o->tunnels_active = o->tunnels_opened - o->tunnels_closed - o->tunnels_reset;
	pthread_mutex_lock(&t->list_lock);
	for (struct conn *c = t->conns; c; c = c->next) {
		o->bytes_out += atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
		o->bytes_in += atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
	}
	pthread_mutex_unlock(&t->list_lock);
	o->bytes_out += atomic_load_explicit(&t->st_out, memory_order_relaxed);
	o->bytes_in += atomic_load_explicit(&t->st_in, memory_order_relaxed);
	o->pool_made = atomic_load_explicit(&t->st_pool_made, memory_order_relaxed);
	o->pool_discarded = atomic_load_explicit(&t->st_pool_discarded, memory_order_relaxed);
	o->pool_ready = atomic_load_explicit(&t->st_pool_ready, memory_order_relaxed);
	o->pool_pending = atomic_load_explicit(&t->st_pool_pending, memory_order_relaxed);
	o->pool_miss = atomic_load_explicit(&t->st_pool_miss, memory_order_relaxed);
	o->pool_failed = atomic_load_explicit(&t->st_pool_failed, memory_order_relaxed);
	if (t->have_hs_cpu_clock && clock_gettime(t->hs_cpu_clock, &ts) == 0)
		o->handshake_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (t->have_cpu_clock && clock_gettime(t->cpu_clock, &ts) == 0)
		o->relay_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	o->relay_cpu_s += o->handshake_cpu_s;
}

size_t zt_tunnel_list(struct zt_tunnel *t, struct zt_tunnel_info *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&t->list_lock);
	for (struct conn *c = t->conns; c; c = c->next) {
		struct zt_tunnel_info *i = &out[n];

		/*
		 * The warm pool's spares are no pod's tunnel yet: ours (client),
		 * and the peer's waiting here for a header (server).
		 */
		if (c->spare || c->st == ST_WAIT_HDR)
			continue;
		if (n++ >= max)
			continue;
		memset(i, 0, sizeof(*i));
		i->role = c->role;
		i->established = c->relaying;
		i->resumed = c->resumed;
		i->local = c->local;
		/* A server's dst is the worker's while lent (server_cert_cb sets it). */
		if (!c->lent || c->role == ZT_MTLS_ROLE_CLIENT)
			i->dst = c->dst;
		i->peer = c->peer;
		if (c->relaying) {
			snprintf(i->peer_id, sizeof(i->peer_id), "%s", c->peer_id);
			snprintf(i->local_id, sizeof(i->local_id), "%s", c->local_id);
		}
		i->bytes_out = atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
		i->bytes_in = atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
		i->since = c->since;
	}
	pthread_mutex_unlock(&t->list_lock);
	return n;
}
