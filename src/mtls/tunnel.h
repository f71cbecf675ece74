/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent-to-agent tunnel: pod TCP carried over TLS 1.3 with both
 * workloads' X.509-SVIDs, relayed by one epoll thread.
 *
 *   client node                                    server node
 *   pod ── TCP ──► zt_tunnel_open(pod_fd, dst)      mtls.port listener
 *                  TLS 1.3, client SVID = source ══► server SVID = the workload at dst
 *                  (SNI names dst)                   (chosen by SNI via local_identity)
 *                  authorize(server id, dst)         authorize(client id, dst)
 *                  header: dst, src, source ID  ──► checks it, connects to dst
 *                                               ◄── status 0 (or the refusal reason)
 *                  relay; FIN <-> close_notify; RST <-> abort
 *
 * Nothing a pod sent reaches the destination before both sides accepted the
 * other's identity; a refusal resets the pod's connection (SO_LINGER 0),
 * never leaves it half open. TLS 1.3 only, AES-GCM or ChaCha20-Poly1305,
 * X25519 or P-256. Clients resume sessions (PSK with (EC)DHE), so a repeat
 * connection between the same two workloads skips the certificate work.
 *
 * Handshakes (client and server) run on a second thread, the handshake
 * worker, and the established SSL* is handed back to the relay: a
 * handshake's CPU never delays bytes of a tunnel already relaying.
 *
 * The datapath's steered pod sockets are accepted on the relay thread
 * (zt_tunnel_add_listener) or handed to zt_tunnel_open() from any thread;
 * the policy side implements authorize and local_identity.
 */
#ifndef ZT_MTLS_TUNNEL_H
#define ZT_MTLS_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mtls/mtls.h"
#include "mtls/svid.h"

struct zt_tunnel;

/* A refusal, as the audit trail records it. */
struct zt_tunnel_refusal {
	enum zt_mtls_role role; /* our side */
	enum zt_mtls_reason reason;
	struct sockaddr_storage peer; /* the other agent (or what posed as one) */
	const char *peer_id; /* authenticated SPIFFE ID, "" before authentication */
	const char *local_id; /* the SVID we presented, "" if none */
	const struct zt_mtls_dest *dst; /* NULL when not known yet */
	const char *detail; /* OpenSSL's or our own words, for the log */
};

struct zt_tunnel_config {
	struct zt_svid_store *svids; /* not taken; outlives the tunnel */
	struct zt_trust *trust; /* taken; zt_tunnel_set_trust() replaces it */
	zt_mtls_authorize_fn authorize; /* required */
	/*
	 * Server side: the SPIFFE ID of the local workload at dst (addr only;
	 * port 0 before the header arrives) into id; -ENOENT when none is here.
	 * Called on the handshake worker (during a handshake) and on the relay
	 * thread: it must be safe from both. authorize runs on the relay only.
	 */
	int (*local_identity)(void *ctx, const struct zt_mtls_dest *dst, char *id, size_t n);
	void (*on_refusal)(void *ctx, const struct zt_tunnel_refusal *ev); /* optional */
	/*
	 * Optional, on the relay thread: a connection starts relaying, both
	 * identities accepted: the client workload's (src_id) and the
	 * server's (dst_id), for the flow records.
	 */
	void (*on_relay)(void *ctx, const struct zt_mtls_dest *dst, const char *src_id,
			 const char *dst_id);
	void *ctx;
	/*
	 * "ADDR:PORT" (port 0: any) for the server side; NULL: client only.
	 * "[::]:PORT" listens on IPv6 and IPv4 alike.
	 */
	const char *listen;
	bool transparent_source; /* server: connect to dst from the client pod's address */
	uint32_t mark; /* SO_MARK on the agent's own sockets (0: none), so they are never steered */
	uint32_t handshake_timeout_ms; /* 0: 10 s */
	uint32_t max_conns; /* 0: 16384 */
	uint32_t session_lifetime_s; /* resumption tickets; 0: 300 s */
	bool no_resumption; /* client: every handshake a full one (benchmarks) */
	bool no_pool; /* client: no warm pool of ready connections (benchmarks, tests) */
};

/* Builds the TLS contexts and the listener; err says what failed and where. */
int zt_tunnel_new(const struct zt_tunnel_config *cfg, struct zt_tunnel **out, char *err,
		  size_t errlen);
/* The relay loop and the handshake worker, each on its own thread. */
int zt_tunnel_start(struct zt_tunnel *t);
/* Stops the thread (open tunnels are reset) and frees everything. NULL is fine. */
void zt_tunnel_free(struct zt_tunnel *t);
/* The listener's port (host order), 0 when client only. */
uint16_t zt_tunnel_port(const struct zt_tunnel *t);

/*
 * Carries a pod's connection (pod_fd, taken in every case) to dst through
 * the agent at peer, presenting src_id's SVID. Any thread. 0, or -errno
 * when it could not even be queued (pod_fd is then reset and closed).
 */
int zt_tunnel_open(struct zt_tunnel *t, int pod_fd, const struct zt_mtls_dest *dst,
		   const char *src_id, const struct sockaddr *peer, socklen_t peer_len);

/*
 * Same node: the same identity checks (authorize both ways with src_id and
 * the local identity of dst), then a direct connection to dst; no TLS.
 */
int zt_tunnel_open_local(struct zt_tunnel *t, int pod_fd, const struct zt_mtls_dest *dst,
			 const char *src_id);

/*
 * A listener (nonblocking, the caller's) whose connections the relay thread
 * accepts itself: the agent's transparent listeners that pod connections
 * are steered to. For each accepted socket fn(ctx, fd) runs on the relay
 * thread and hands fd on with zt_tunnel_open or zt_tunnel_open_local, which
 * there start it at once (no queue, no wakeup), or resets and closes it. A
 * pod's connection thus waits for no other thread between its accept and
 * its first bytes towards the peer. fn must read only state that is safe
 * from another thread. Before or after zt_tunnel_start; at most
 * ZT_TUNNEL_LISTENERS_MAX; fd must stay open until zt_tunnel_free.
 */
#define ZT_TUNNEL_LISTENERS_MAX 4
typedef void (*zt_tunnel_accept_fn)(void *ctx, int fd);
int zt_tunnel_add_listener(struct zt_tunnel *t, int fd, zt_tunnel_accept_fn fn, void *ctx);

/* New trust (a bundle rollover) for handshakes from now on; open tunnels stay. Takes trust. */
int zt_tunnel_set_trust(struct zt_tunnel *t, struct zt_trust *trust);

struct zt_tunnel_stats {
	uint64_t handshakes_full, handshakes_resumed; /* completed and accepted */
	uint64_t refusals[ZT_MTLS_REASON_MAX];
	uint64_t tunnels_opened, tunnels_active, tunnels_closed, tunnels_reset;
	uint64_t bytes_out, bytes_in; /* plaintext carried towards the peer agent / from it */
	/* CPU time of the tunnel's two threads, the relay and the handshake worker (all of it) */
	double relay_cpu_s;
	double handshake_cpu_s; /* of it, the handshake worker's (zt-mtls-hs) */
	/*
	 * The client's warm pool. Spares made (dialled); pod connections that
	 * took a ready spare, one still in its handshake, none (missed);
	 * failed: a spare's handshake failed (not a refusal: no pod waited on
	 * it) or a taken spare's path was dead and the pod's connection was
	 * dialled afresh; discarded: spares closed unused (idle too long, unfit
	 * when taken, a trust change, the server closed them).
	 */
	uint64_t pool_made, pool_ready, pool_pending, pool_miss, pool_failed, pool_discarded;
};

void zt_tunnel_get_stats(struct zt_tunnel *t, struct zt_tunnel_stats *out);

struct zt_tunnel_info {
	enum zt_mtls_role role;
	bool established; /* relaying */
	bool resumed;
	bool local; /* same node, no TLS */
	struct zt_mtls_dest dst;
	struct sockaddr_storage peer;
	char peer_id[ZT_SPIFFE_ID_MAX + 1], local_id[ZT_SPIFFE_ID_MAX + 1];
	uint64_t bytes_out, bytes_in;
	int64_t since; /* unix seconds */
};

/* Up to max open tunnels into out; returns how many are open. */
size_t zt_tunnel_list(struct zt_tunnel *t, struct zt_tunnel_info *out, size_t max);

#endif
