// SPDX-License-Identifier: GPL-2.0-only
/*
 * Workload mTLS in the daemon: starts src/mtls from mtls.*, steers pod TCP
 * into it and reports on it.
 *
 *   pod ─SYN─► tc_from_pod: flow needs mTLS (bpf/lib/mtls.h) ─► bpf_sk_assign
 *        ─► steer listener (IP_TRANSPARENT, mtls.port + 1; IPv4 and, IPv6-only,
 *           IPv6) ─► accepted on the tunnel's relay thread (steer_one)
 *        getsockname = the original destination, getpeername = the pod
 *        ─► zt_tunnel_open(peer agent of mtls.peers) | zt_tunnel_open_local
 *
 * steer_one runs on the relay thread, not on the loop: a pod's connect
 * waits for no loop callback. What it reads of the loop's state is under a
 * lock: the workload snapshot (m->lock), mtls.peers (peers_lock) and the
 * peers learned from the Nodes (daemon_peers.c's own lock).
 *
 * The datapath keeps mtls_cfg (mode, listener port, the agent's mark) when
 * the agent stops or cannot start the tunnel: flows that need mTLS then find
 * no socket and drop, they never leave in clear text (fail closed).
 *
 * Identities: the local workloads' addresses and service accounts come from
 * seg (zt_seg_workloads) once a second into a snapshot the relay thread
 * reads under a lock; the SVID store hosts one SVID per service account of
 * a local pod. A peer's authenticated ID must be a workload of our trust
 * domain and, where the address it speaks for is a local workload, that
 * workload's ID.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/apiops.h"
#include "agent/cbor.h"
#include "agent/metrics.h"
#include "agent/daemon_int.h"
#include "agent/daemon_peers.h"
#include "agent/daemon_reload.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/util.h"
#include "mtls/svid.h"
#include "mtls/tunnel.h"
#include "records/auditq.h"
#include "records/flowexp.h"
#include "records/flowrec.h"
#include "seg/seg.h"
#include "tc_endpoint.skel.h"

#define WL_MAX (ZT_EP_MAX * 2)
#define SA_RULES_MAX 1024 /* serviceAccounts rows kept for the checks */
#define STATUS_MAX 256 /* certificates and tunnels listed by ztctl mtls status */

struct wl {
	int family;
	uint8_t addr[16];
	uint32_t ep_id;
	char id[ZT_SPIFFE_ID_MAX + 1];
};

struct sa_count {
	char ns[ZT_EP_NAME_MAX + 1], sa[ZT_EP_NAME_MAX + 1];
	unsigned int n;
};

/*
 * The identities of recent tunnelled connections, for flow records: a
 * connection's record is written up to a minute after it closed, when the
 * tunnel has forgotten it. Hashed by 5-tuple, the oldest overwritten.
 */
#define IDS_SLOTS 4096
struct conn_ids {
	uint8_t family;
	uint16_t sport, dport;
	uint8_t saddr[16], daddr[16];
	char src[ZT_FR_SPIFFE_MAX], dst[ZT_FR_SPIFFE_MAX];
};

/* A file as stat(2) sees it: a change of any field is a new version of it. */
struct file_sig {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	int present;
	int _pad;
};

enum { CREDS_BUNDLE, CREDS_CERT, CREDS_KEY, CREDS_FILES };

struct zt_dmtls {
	struct zt_daemon *d;
	pthread_mutex_t ids_lock;
	struct conn_ids *ids; /* IDS_SLOTS */
	struct zt_svid_store *svids;
	struct zt_tunnel *tun;
	int lfd, lfd6, tfd;
	uint16_t steer_port;
	/* mtls.peers with an IPv6 pod CIDR */
	struct zt_mtls_peer6 peers6[ZT_MTLS_PEERS_MAX];
	unsigned int n_peers6;
	char state[512]; /* "running" or why not */
	struct zt_mtls_peer peers[ZT_MTLS_PEERS_MAX];
	unsigned int n_peers;
	/* peers, n_peers, peers6, n_peers6: written by the loop, read by steer_one */
	pthread_mutex_t peers_lock;
	uint16_t tunnel_port; /* mtls.port as started: the peer agents' default port */
	struct zt_seg_workload *scratch;
	/* The hosted service accounts (loop thread). */
	struct sa_count *sas;
	size_t n_sas;
	/* The snapshot the relay thread reads. */
	pthread_mutex_t lock;
	struct wl *wl;
	size_t n_wl;
	struct zt_seg_sa_rule *sar; /* serviceAccounts peers of the local pods' rules */
	size_t n_sar;
	atomic_ullong accepted, no_source, no_route, refusals_logged;
	uint64_t log_window_s, log_in_window;
	/* mtls.ca_bundle, node_cert, node_key as last read (creds_watch), and a change seen once. */
	struct file_sig creds_seen[CREDS_FILES], creds_next[CREDS_FILES];
	bool creds_pending;
	uint64_t creds_reloads, creds_reload_failures;
	uint64_t svid_failures_logged; /* zt_svid_store_failures when on_timer last logged */
	int64_t svid_fail_log_s;
};

static const char *sa_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, n, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

/* ---- identities ---- */

/* The local workload at addr; lock held. */
static const struct wl *wl_at(struct zt_dmtls *m, int family, const uint8_t *addr)
{
	size_t alen = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < m->n_wl; i++)
		if (m->wl[i].family == family && !memcmp(m->wl[i].addr, addr, alen))
			return &m->wl[i];
	return NULL;
}

/* The ID of the local workload at addr into id; -ENOENT when none. Any thread. */
static int id_of(struct zt_dmtls *m, int family, const uint8_t *addr, char *id, size_t n)
{
	const struct wl *w;
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	w = wl_at(m, family, addr);
	if (w) {
		snprintf(id, n, "%s", w->id);
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/*
 * The serviceAccounts peers of the local pod at addr for (dir, TCP port):
 * true when none applies, or when ns/sa is one of them.
 */
static bool sa_allowed(struct zt_dmtls *m, int family, const uint8_t *addr, uint8_t dir,
		       uint16_t port, const char *ns, const char *sa)
{
	char want[2 * ZT_EP_NAME_MAX + 2];
	const struct wl *w;
	bool any = false, ok = false;

	snprintf(want, sizeof(want), "%s/%s", ns, sa);
	pthread_mutex_lock(&m->lock);
	w = wl_at(m, family, addr);
	for (size_t i = 0; w && i < m->n_sar && !ok; i++) {
		const struct zt_seg_sa_rule *r = &m->sar[i];

		if (r->ep_id != w->ep_id || r->dir != dir ||
		    (r->proto && r->proto != IPPROTO_TCP) || port < r->lo || port > r->hi)
			continue;
		any = true;
		ok = strcmp(r->sa, want) == 0;
	}
	pthread_mutex_unlock(&m->lock);
	return !any || ok;
}

static int local_identity(void *ctx, const struct zt_mtls_dest *dst, char *id, size_t n)
{
	return id_of(ctx, dst->family, dst->addr, id, n);
}

static bool authorize(void *ctx, const char *peer_id, const struct zt_mtls_dest *dst)
{
	struct zt_dmtls *m = ctx;
	char want[ZT_SPIFFE_ID_MAX + 1];
	const uint8_t *addr;

	char ns[ZT_K8S_NAME_MAX + 1], sa[ZT_K8S_NAME_MAX + 1];

	if (zt_spiffe_parse_workload(peer_id, m->d->cfg.mtls.trust_domain, ns, sizeof(ns), sa,
				     sizeof(sa)) < 0)
		return false;
	/*
	 * The identity proven must be the one the cluster gives the address it
	 * speaks for, where this node knows it: the client's source pod, or
	 * the server's destination pod.
	 */
	addr = dst->role == ZT_MTLS_ROLE_SERVER ? dst->src_addr : dst->addr;
	if (id_of(m, dst->family, addr, want, sizeof(want)) == 0 && strcmp(want, peer_id) != 0)
		return false;
	/*
	 * serviceAccounts peers: the destination pod's ingress rules name who
	 * may connect; the source pod's egress rules name whom it may reach.
	 */
	if (dst->role == ZT_MTLS_ROLE_SERVER)
		return sa_allowed(m, dst->family, dst->addr, ZT_POL_INGRESS, dst->port, ns, sa);
	return sa_allowed(m, dst->family, dst->src_addr, ZT_POL_EGRESS, dst->port, ns, sa);
}

static void json_str(char *out, size_t n, const char *s)
{
	zt_json_escape(s ? s : "", out, n);
}

static void on_refusal(void *ctx, const struct zt_tunnel_refusal *ev)
{
	struct zt_dmtls *m = ctx;
	struct zt_daemon *d = m->d;
	char peer[INET6_ADDRSTRLEN + 8] = "?", dst[INET6_ADDRSTRLEN + 8] = "-", pid[600], lid[600],
				     det[600], detail[2400], subject[INET6_ADDRSTRLEN + 16];
	uint64_t now = zt_now_mono_ns() / 1000000000ULL;

	sa_str(&ev->peer, peer, sizeof(peer));
	/* A server's connection refused in its handshake has no destination yet. */
	if (ev->dst && (ev->dst->family == AF_INET || ev->dst->family == AF_INET6)) {
		char a[INET6_ADDRSTRLEN] = "?";

		inet_ntop(ev->dst->family, ev->dst->addr, a, sizeof(a));
		snprintf(dst, sizeof(dst), "%s:%u", a, ev->dst->port);
	}
	json_str(pid, sizeof(pid), ev->peer_id);
	json_str(lid, sizeof(lid), ev->local_id);
	json_str(det, sizeof(det), ev->detail);
	/* At most 50 log lines a second: a hostile peer must not flood the log. */
	if (now != m->log_window_s) {
		m->log_window_s = now;
		m->log_in_window = 0;
	}
	if (m->log_in_window++ < 50)
		log_warn("mtls_refused",
			 "role=%s reason=%s peer=%s peer_id=\"%s\" dst=%s detail=\"%s\"",
			 ev->role == ZT_MTLS_ROLE_SERVER ? "server" : "client",
			 zt_mtls_reason_name(ev->reason), peer, pid, dst, det);
	if (!d->auditq)
		return;
	snprintf(detail, sizeof(detail),
		 "{\"role\":\"%s\",\"reason\":\"%s\",\"peer\":\"%s\",\"peer_id\":\"%s\","
		 "\"local_id\":\"%s\",\"dst\":\"%s\",\"detail\":\"%s\"}",
		 ev->role == ZT_MTLS_ROLE_SERVER ? "server" : "client",
		 zt_mtls_reason_name(ev->reason), peer, pid, lid, dst, det);
	snprintf(subject, sizeof(subject), "%s", peer);
	zt_auditq_post(d->auditq, "mtls.refusal", d->actor, subject, detail);
}

static void on_issue(void *ctx, const struct zt_svid *svid, bool renewal)
{
	struct zt_dmtls *m = ctx;
	struct zt_daemon *d = m->d;
	char id[600], detail[1200];

	if (!d->auditq)
		return;
	json_str(id, sizeof(id), svid->id);
	snprintf(detail, sizeof(detail),
		 "{\"serial\":\"%s\",\"not_before\":%lld,\"not_after\":%lld,\"renewal\":%s}",
		 svid->serial, (long long)svid->not_before, (long long)svid->not_after,
		 renewal ? "true" : "false");
	zt_auditq_post(d->auditq, renewal ? "mtls.svid.renew" : "mtls.svid.issue", d->actor,
		       svid->id, detail);
	(void)id;
}

/* Brings the snapshot and the hosted service accounts in line with seg's endpoints. */
static void sync_workloads(struct zt_dmtls *m)
{
	const char *td = m->d->cfg.mtls.trust_domain;
	size_t n = zt_seg_workloads(m->d->seg, m->scratch, WL_MAX), nw = 0;
	struct wl *wl = calloc(n ? n : 1, sizeof(*wl));
	struct sa_count *sas = calloc(n ? n : 1, sizeof(*sas)), *old;
	size_t nsas = 0, nold;
	int64_t now = (int64_t)zt_now_unix();

	if (!wl || !sas) {
		free(wl);
		free(sas);
		return;
	}
	if (n > WL_MAX)
		n = WL_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct zt_seg_workload *w = &m->scratch[i];
		size_t j;

		if (zt_spiffe_format_workload(wl[nw].id, sizeof(wl[nw].id), td, w->ns, w->sa) < 0)
			continue;
		wl[nw].family = w->family;
		wl[nw].ep_id = w->ep_id;
		memcpy(wl[nw].addr, w->addr, sizeof(wl[nw].addr));
		nw++;
		/* Pods, not addresses, count for the store: one per endpoint. */
		if (i > 0 && m->scratch[i - 1].ep_id == w->ep_id)
			continue;
		for (j = 0; j < nsas; j++)
			if (!strcmp(sas[j].ns, w->ns) && !strcmp(sas[j].sa, w->sa))
				break;
		if (j == nsas) {
			snprintf(sas[j].ns, sizeof(sas[j].ns), "%s", w->ns);
			snprintf(sas[j].sa, sizeof(sas[j].sa), "%s", w->sa);
			nsas++;
		}
		sas[j].n++;
	}
	if (m->svids) {
		for (size_t i = 0; i < nsas; i++) {
			unsigned int had = 0;

			for (size_t j = 0; j < m->n_sas; j++)
				if (!strcmp(m->sas[j].ns, sas[i].ns) &&
				    !strcmp(m->sas[j].sa, sas[i].sa))
					had = m->sas[j].n;
			for (; had < sas[i].n; had++) {
				int r = zt_svid_store_add(m->svids, sas[i].ns, sas[i].sa, now);

				if (r < 0) {
					log_error("mtls_svid_failed", "ns=%s sa=%s error=\"%s\"",
						  sas[i].ns, sas[i].sa, strerror(-r));
					sas[i].n = had;
					break;
				}
			}
			for (; had > sas[i].n; had--)
				zt_svid_store_del(m->svids, sas[i].ns, sas[i].sa);
		}
		for (size_t j = 0; j < m->n_sas; j++) {
			bool still = false;

			for (size_t i = 0; i < nsas; i++)
				if (!strcmp(m->sas[j].ns, sas[i].ns) &&
				    !strcmp(m->sas[j].sa, sas[i].sa))
					still = true;
			for (unsigned int k = 0; !still && k < m->sas[j].n; k++)
				zt_svid_store_del(m->svids, m->sas[j].ns, m->sas[j].sa);
		}
	}
	old = m->sas;
	nold = m->n_sas;
	m->sas = sas;
	m->n_sas = nsas;
	free(old);
	(void)nold;
	{
		struct zt_seg_sa_rule *sar = calloc(SA_RULES_MAX, sizeof(*sar)), *oldr;
		size_t nsar = sar ? zt_seg_sa_rules(m->d->seg, sar, SA_RULES_MAX) : 0;

		if (nsar > SA_RULES_MAX) {
			log_warn("mtls_sa_rules_truncated", "rows=%zu kept=%d", nsar, SA_RULES_MAX);
			nsar = SA_RULES_MAX;
		}
		pthread_mutex_lock(&m->lock);
		free(m->wl);
		m->wl = wl;
		m->n_wl = nw;
		oldr = m->sar;
		if (sar) {
			m->sar = sar;
			m->n_sar = nsar;
		} else {
			oldr = NULL; /* keep the last good rows */
		}
		pthread_mutex_unlock(&m->lock);
		free(oldr);
	}
}

/* ---- credentials reload: a CA bundle rollover, a reissued node certificate ---- */

static void file_sig_of(const char *path, struct file_sig *f)
{
	struct stat st;

	memset(f, 0, sizeof(*f));
	if (stat(path, &st) < 0)
		return;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = (uint64_t)st.st_size;
	f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	f->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	f->present = 1;
}

static void creds_sigs(const struct zt_config *cfg, struct file_sig f[CREDS_FILES])
{
	file_sig_of(cfg->mtls.ca_bundle, &f[CREDS_BUNDLE]);
	file_sig_of(cfg->mtls.node_cert, &f[CREDS_CERT]);
	file_sig_of(cfg->mtls.node_key, &f[CREDS_KEY]);
}

/*
 * Reads the bundle and the node certificate and key again. All or
 * nothing: the node certificate must chain to the new bundle (else this
 * node's own SVIDs would be refused by peers holding that bundle), and on
 * any error the last good bundle and issuer stay in force. New trust
 * applies to handshakes from now on (open tunnels go on; resumption tickets
 * made under the old bundle are dropped); a new issuer re-mints every SVID
 * at once.
 */
static void creds_reload(struct zt_dmtls *m, bool issuer_changed)
{
	const struct zt_config *cfg = &m->d->cfg;
	struct zt_svid_issuer *iss = NULL;
	struct zt_trust *trust = NULL;
	char err[1024] = "", q[1100];
	int roots, r;

	r = zt_trust_load(cfg->mtls.ca_bundle, cfg->mtls.trust_domain, &trust, err, sizeof(err));
	if (r == 0)
		r = zt_svid_issuer_load(cfg->mtls.node_cert, cfg->mtls.node_key,
					cfg->mtls.trust_domain, trust, &iss, err, sizeof(err));
	if (r < 0) {
		m->creds_reload_failures++;
		log_error("mtls_reload_failed",
			  "error=%s action=\"kept the last good CA bundle and node certificate; "
			  "fix mtls.ca_bundle/node_cert/node_key (ztctl ca): they are read "
			  "again when they change\"",
			  zt_log_quote(q, sizeof(q), err));
		zt_trust_free(trust);
		return;
	}
	roots = trust->n_roots;
	r = zt_tunnel_set_trust(m->tun, trust);
	if (r == 0 && issuer_changed) {
		r = zt_svid_store_set_issuer(m->svids, iss, (int64_t)zt_now_unix());
		iss = NULL;
	}
	zt_svid_issuer_free(iss);
	if (r < 0) {
		m->creds_reload_failures++;
		log_error("mtls_reload_failed",
			  "error=%s action=\"the SVIDs are renewed at their next tick\"",
			  strerror(-r));
		return;
	}
	m->creds_reloads++;
	log_info("mtls_credentials_reloaded", "roots=%d node_certificate=%s bundle=%s", roots,
		 issuer_changed ? "reissued" : "unchanged", cfg->mtls.ca_bundle);
}

/*
 * Once a second: a credentials file that changed is read when it has held
 * still for a tick (an operator or a Secret update may write the three files
 * one after the other). A file that fails is read again at its next change.
 */
static void creds_watch(struct zt_dmtls *m)
{
	struct file_sig now[CREDS_FILES];

	if (!m->tun || !m->svids)
		return;
	creds_sigs(&m->d->cfg, now);
	if (!memcmp(now, m->creds_seen, sizeof(now))) {
		m->creds_pending = false;
		return;
	}
	if (!m->creds_pending || memcmp(now, m->creds_next, sizeof(now))) {
		memcpy(m->creds_next, now, sizeof(now));
		m->creds_pending = true;
		return;
	}
	m->creds_pending = false;
	creds_reload(m,
		     memcmp(&now[CREDS_CERT], &m->creds_seen[CREDS_CERT], sizeof(now[0]) * 2) != 0);
	memcpy(m->creds_seen, now, sizeof(now));
}

/*
 * SIGHUP (daemon_reload.c): the credentials read now, changed or not, the
 * same all-or-nothing way. 0, -EINVAL (kept the last good; logged), or
 * -ENOTCONN when the tunnel does not run (it starts only with the agent).
 */
int daemon_mtls_reload_credentials(struct zt_daemon *d)
{
	struct zt_dmtls *m = d->mtls;
	struct file_sig now[CREDS_FILES];
	uint64_t failures;

	if (!m || !m->tun || !m->svids)
		return -ENOTCONN;
	failures = m->creds_reload_failures;
	creds_sigs(&d->cfg, now);
	m->creds_pending = false;
	creds_reload(m,
		     memcmp(&now[CREDS_CERT], &m->creds_seen[CREDS_CERT], sizeof(now[0]) * 2) != 0);
	memcpy(m->creds_seen, now, sizeof(now));
	return m->creds_reload_failures == failures ? 0 : -EINVAL;
}

/*
 * Renews the SVIDs due; a mint that failed (the node intermediate expired,
 * no memory) keeps the current SVID and is retried every second: logged
 * once a minute while it goes on, not every second.
 */
static void svid_tick(struct zt_dmtls *m)
{
	int64_t now = (int64_t)zt_now_unix();
	uint64_t failures;
	int err = 0;

	zt_svid_store_tick(m->svids, now);
	failures = zt_svid_store_failures(m->svids, &err);
	if (failures == m->svid_failures_logged || now - m->svid_fail_log_s < 60)
		return;
	log_error("svid_renew_failed",
		  "failures=%" PRIu64 " error=\"%s\" action=\"kept the current SVIDs while they "
		  "are valid; retried every second (ztctl mtls status: svids)\"",
		  failures - m->svid_failures_logged, strerror(-err));
	m->svid_failures_logged = failures;
	m->svid_fail_log_s = now;
}

static void on_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_dmtls *m = ctx;
	uint64_t x;

	(void)events;
	if (read(fd, &x, sizeof(x)) < 0 && errno != EAGAIN)
		return;
	sync_workloads(m);
	creds_watch(m);
	if (m->svids)
		svid_tick(m);
}

/* ---- steered connections ---- */

static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* The agent for an IPv4 destination; peers_lock held. learned: room for a Node's answer. */
static const struct zt_mtls_peer *peer_of(struct zt_dmtls *m, uint32_t addr,
					  struct zt_mtls_peer *learned)
{
	const struct zt_mtls_peer *best = NULL;

	for (unsigned int i = 0; i < m->n_peers; i++) {
		const struct zt_mtls_peer *p = &m->peers[i];
		uint32_t mask = p->plen ? htonl(~0u << (32 - p->plen)) : 0;

		if ((addr & mask) == p->net && (!best || p->plen > best->plen))
			best = p;
	}
	/* mtls.peers overrides; else the node the cluster gives the address (daemon_peers.c). */
	if (!best && daemon_peers_lookup4(m->d, addr, learned) == 0)
		best = learned;
	return best;
}

/*
 * The agent for an IPv6 destination: the longest IPv6 pod CIDR of mtls.peers
 * that holds it, else the node whose IPv6 podCIDR does (daemon_peers.c).
 * peers_lock held.
 */
static const struct zt_mtls_peer6 *peer6_of(struct zt_dmtls *m, const uint8_t *addr,
					    struct zt_mtls_peer6 *learned)
{
	const struct zt_mtls_peer6 *best = NULL;

	for (unsigned int i = 0; i < m->n_peers6; i++) {
		const struct zt_mtls_peer6 *p = &m->peers6[i];
		unsigned int full = p->plen / 8, rest = p->plen % 8;

		if (memcmp(addr, p->net, full) ||
		    (rest && ((addr[full] ^ p->net[full]) & (uint8_t)(0xff << (8 - rest)))))
			continue;
		if (!best || p->plen > best->plen)
			best = p;
	}
	if (!best && daemon_peers_lookup6(m->d, addr, learned) == 0)
		best = learned;
	return best;
}

/* The original destination (getsockname) and the pod (getpeername) of a steered connection. */
static int steered_dest(int fd, struct zt_mtls_dest *d)
{
	struct sockaddr_storage dst, src;
	socklen_t dl = sizeof(dst), sl = sizeof(src);

	if (getsockname(fd, (struct sockaddr *)&dst, &dl) < 0 ||
	    getpeername(fd, (struct sockaddr *)&src, &sl) < 0 || dst.ss_family != src.ss_family)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->role = ZT_MTLS_ROLE_CLIENT;
	if (dst.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&dst, *b = (const void *)&src;

		d->family = AF_INET;
		d->port = ntohs(a->sin_port);
		memcpy(d->addr, &a->sin_addr, 4);
		d->src_port = ntohs(b->sin_port);
		memcpy(d->src_addr, &b->sin_addr, 4);
	} else if (dst.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&dst, *b = (const void *)&src;

		/* The IPv6 listener is IPv6-only: no v4-mapped address comes here. */
		d->family = AF_INET6;
		d->port = ntohs(a->sin6_port);
		memcpy(d->addr, &a->sin6_addr, 16);
		d->src_port = ntohs(b->sin6_port);
		memcpy(d->src_addr, &b->sin6_addr, 16);
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

/* Relay thread (zt_tunnel_add_listener): a pod connection steered to us, accepted. */
static void steer_one(void *ctx, int fd)
{
	struct zt_dmtls *m = ctx;
	struct zt_mtls_dest d;
	char src_id[ZT_SPIFFE_ID_MAX + 1], tmp[ZT_SPIFFE_ID_MAX + 1];
	struct sockaddr_storage pa = { 0 };
	socklen_t pl = 0;
	int r;

	if (steered_dest(fd, &d) < 0) {
		reset_close(fd);
		return;
	}
	/* Only a local pod is steered here; anything else that reached the listener is not ours. */
	if (id_of(m, d.family, d.src_addr, src_id, sizeof(src_id)) < 0) {
		atomic_fetch_add(&m->no_source, 1);
		reset_close(fd);
		return;
	}
	atomic_fetch_add(&m->accepted, 1);
	if (id_of(m, d.family, d.addr, tmp, sizeof(tmp)) == 0) {
		r = zt_tunnel_open_local(m->tun, fd, &d, src_id);
		goto out;
	}
	/* The agents meet over the agent address's family; the frame carries the pods'. */
	pthread_mutex_lock(&m->peers_lock);
	if (d.family == AF_INET) {
		const struct zt_mtls_peer *p;
		struct zt_mtls_peer learned;
		uint32_t a4;

		memcpy(&a4, d.addr, 4);
		if ((p = peer_of(m, a4, &learned)))
			pl = zt_sockaddr_set(p->agent.family, p->agent.addr,
					     p->port ? p->port : m->tunnel_port, &pa);
	} else {
		struct zt_mtls_peer6 learned;
		const struct zt_mtls_peer6 *p = peer6_of(m, d.addr, &learned);

		if (p)
			pl = zt_sockaddr_set(p->agent.family, p->agent.addr,
					     p->port ? p->port : m->tunnel_port, &pa);
	}
	pthread_mutex_unlock(&m->peers_lock);
	if (!pl) {
		/* Policy asks for mTLS to a destination no agent speaks for: refuse, never clear. */
		atomic_fetch_add(&m->no_route, 1);
		reset_close(fd);
		return;
	}
	r = zt_tunnel_open(m->tun, fd, &d, src_id, (struct sockaddr *)&pa, pl);
out:
	if (r < 0)
		log_warn("mtls_open_failed", "error=\"%s\"", strerror(-r));
}

static int steer_listener(struct zt_dmtls *m, char *err, size_t errlen)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	uint32_t mark = ZT_MTLS_MARK_AGENT;
	int fd, one = 1, r;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	a.sin_port = htons(m->steer_port);
	if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1024) < 0) {
		r = -errno;
		snprintf(err, errlen, "steer listener 0.0.0.0:%u: %s", m->steer_port, strerror(-r));
		close(fd);
		return r;
	}
	m->lfd = fd;
	return 0;
}

/*
 * The IPv6 twin of the above, IPv6-only so an IPv4 lookup never finds it.
 * A node without IPv6 (EAFNOSUPPORT) has no IPv6 pods to steer: not an
 * error; their IPv6 flows that need mTLS then find no socket and drop.
 */
static int steer_listener6(struct zt_dmtls *m, char *err, size_t errlen)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	uint32_t mark = ZT_MTLS_MARK_AGENT;
	int fd, one = 1, r;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno == EAFNOSUPPORT ? 0 : -errno;
	a.sin6_port = htons(m->steer_port);
	if (setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1024) < 0) {
		r = -errno;
		snprintf(err, errlen, "steer listener [::]:%u: %s", m->steer_port, strerror(-r));
		close(fd);
		return r;
	}
	m->lfd6 = fd;
	return 0;
}

/* ---- routing: steered packets (skb->mark) are delivered locally ---- */

static int nl_talk(int fd, struct nlmsghdr *h)
{
	char buf[1024];
	ssize_t n;

	if (send(fd, h, h->nlmsg_len, 0) < 0)
		return -errno;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < (ssize_t)(NLMSG_HDRLEN + sizeof(struct nlmsgerr)))
		return n < 0 ? -errno : -EIO;
	h = (struct nlmsghdr *)buf;
	if (h->nlmsg_type == NLMSG_ERROR) {
		int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;

		return e == -EEXIST ? 0 : e;
	}
	return 0;
}

static void nl_attr(struct nlmsghdr *h, unsigned short type, const void *v, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));

	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(a), v, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* ip [-6] rule fwmark STEER lookup T; ip [-6] route add local default dev lo table T. */
static int steer_routing(int family, char *err, size_t errlen)
{
	struct {
		struct nlmsghdr h;
		char body[256];
	} req;
	struct fib_rule_hdr *fr;
	struct rtmsg *rt;
	uint32_t table = ZT_MTLS_RT_TABLE, mark = ZT_MTLS_MARK_STEER, mask = ~0u, prio = 100;
	int fd, r, lo = (int)if_nametoindex("lo");

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(*fr));
	req.h.nlmsg_type = RTM_NEWRULE;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	fr = NLMSG_DATA(&req.h);
	fr->family = (uint8_t)family;
	fr->action = FR_ACT_TO_TBL;
	nl_attr(&req.h, FRA_FWMARK, &mark, 4);
	nl_attr(&req.h, FRA_FWMASK, &mask, 4);
	nl_attr(&req.h, FRA_TABLE, &table, 4);
	nl_attr(&req.h, FRA_PRIORITY, &prio, 4);
	r = nl_talk(fd, &req.h);
	if (r < 0) {
		snprintf(err, errlen, "ip%s rule fwmark 0x%x lookup %u: %s",
			 family == AF_INET6 ? " -6" : "", mark, table, strerror(-r));
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(*rt));
	req.h.nlmsg_type = RTM_NEWROUTE;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	rt = NLMSG_DATA(&req.h);
	rt->rtm_family = (uint8_t)family;
	rt->rtm_table = RT_TABLE_UNSPEC;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_scope = RT_SCOPE_HOST;
	rt->rtm_type = RTN_LOCAL;
	nl_attr(&req.h, RTA_TABLE, &table, 4);
	nl_attr(&req.h, RTA_OIF, &lo, 4);
	r = nl_talk(fd, &req.h);
	if (r < 0)
		snprintf(err, errlen, "ip%s route add local default dev lo table %u: %s",
			 family == AF_INET6 ? " -6" : "", table, strerror(-r));
out:
	close(fd);
	return r;
}

/* ---- start / stop ---- */

static int datapath_cfg(struct zt_dmtls *m)
{
	struct zt_daemon *d = m->d;
	struct zt_mtls_cfg c = { 0 };
	uint32_t zero = 0, one = 1;
	int r;

	c.mode = d->cfg.mtls.mode == ZT_MTLS_MODE_STRICT ? ZT_MTLS_DP_STRICT :
		 d->cfg.mtls.mode == ZT_MTLS_MODE_POLICY ? ZT_MTLS_DP_POLICY :
							   ZT_MTLS_DP_OFF;
	c.steer_port = m->steer_port;
	c.agent_mark = ZT_MTLS_MARK_AGENT;
	for (unsigned int i = 0; i < m->n_peers; i++) {
		struct zt_ip4_key k = { .prefixlen = m->peers[i].plen };

		memcpy(k.addr, &m->peers[i].net, 4);
		r = bpf_map_update_elem(bpf_map__fd(d->dp->tc->maps.mtls_remote_v4), &k, &one,
					BPF_ANY);
		if (r < 0)
			return -errno;
	}
	/* The IPv6 entries of mtls.peers are read here, so whoever rewrites the datapath's
	 * peers after a configuration change (SIGHUP) takes them along. */
	pthread_mutex_lock(&m->peers_lock);
	m->n_peers6 = 0;
	for (unsigned int i = 0; i < d->cfg.mtls.n_peers; i++)
		if (zt_mtls_peer6_parse(d->cfg.mtls.peers[i], &m->peers6[m->n_peers6]) == 0)
			m->n_peers6++;
	pthread_mutex_unlock(&m->peers_lock);
	for (unsigned int i = 0; i < m->n_peers6; i++) {
		struct zt_ip6_key k = { .prefixlen = m->peers6[i].plen };

		memcpy(k.addr, m->peers6[i].net, 16);
		if (bpf_map_update_elem(bpf_map__fd(d->dp->tc->maps.mtls_remote_v6), &k, &one,
					BPF_ANY) < 0)
			return -errno;
	}
	if (bpf_map_update_elem(bpf_map__fd(d->dp->tc->maps.mtls_cfg), &zero, &c, BPF_ANY) < 0)
		return -errno;
	return 0;
}

static uint32_t ids_slot(uint8_t family, const uint8_t *saddr, uint16_t sport, const uint8_t *daddr,
			 uint16_t dport)
{
	uint64_t h = (uint64_t)family << 32 | (uint64_t)sport << 16 | dport;

	for (int i = 0; i < 16; i += 8) {
		uint64_t a, b;

		memcpy(&a, saddr + i, 8);
		memcpy(&b, daddr + i, 8);
		h = zt_mix64(h ^ a) ^ zt_mix64(b + (uint64_t)i);
	}
	return (uint32_t)(zt_mix64(h) % IDS_SLOTS);
}

/* Relay thread: a connection relays; remember who proved what (tunnel.h on_relay). */
static void on_relay(void *ctx, const struct zt_mtls_dest *dst, const char *src_id,
		     const char *dst_id)
{
	struct zt_dmtls *m = ctx;
	uint8_t fam = dst->family == AF_INET6 ? 6 : 4;
	struct conn_ids *e;

	if (!m->ids)
		return;
	pthread_mutex_lock(&m->ids_lock);
	e = &m->ids[ids_slot(fam, dst->src_addr, dst->src_port, dst->addr, dst->port)];
	memset(e, 0, sizeof(*e));
	e->family = fam;
	e->sport = dst->src_port;
	e->dport = dst->port;
	memcpy(e->saddr, dst->src_addr, fam == 6 ? 16 : 4);
	memcpy(e->daddr, dst->addr, fam == 6 ? 16 : 4);
	zt_flowrec_set_text(e->src, sizeof(e->src), src_id);
	zt_flowrec_set_text(e->dst, sizeof(e->dst), dst_id);
	pthread_mutex_unlock(&m->ids_lock);
}

/* The flow exporter's question (flowexp.h zt_flowexp_ids_fn): k in its original direction. */
static bool flow_ids(void *ctx, const struct zt_ct_key *k, char *src, char *dst, size_t n)
{
	struct zt_dmtls *m = ctx;
	const struct conn_ids *e;
	bool ok = false;

	if (!m->ids || (k->family != 4 && k->family != 6))
		return false;
	pthread_mutex_lock(&m->ids_lock);
	e = &m->ids[ids_slot(k->family, k->saddr, k->sport, k->daddr, k->dport)];
	if (e->family == k->family && e->sport == k->sport && e->dport == k->dport &&
	    !memcmp(e->saddr, k->saddr, 16) && !memcmp(e->daddr, k->daddr, 16)) {
		snprintf(src, n, "%s", e->src);
		snprintf(dst, n, "%s", e->dst);
		ok = true;
	}
	pthread_mutex_unlock(&m->ids_lock);
	return ok;
}

static int tunnel_start(struct zt_dmtls *m, char *err, size_t errlen)
{
	const struct zt_config *cfg = &m->d->cfg;
	struct zt_svid_store_config sc = { .ttl_s = cfg->mtls.svid_ttl_ns / 1000000000ULL,
					   .on_issue = on_issue,
					   .ctx = m };
	struct zt_tunnel_config tc = { 0 };
	struct zt_svid_issuer *iss = NULL;
	struct zt_trust *trust = NULL, *trust2 = NULL;
	char listen[64];
	int r;

	/* Before reading them: a change made meanwhile is seen by creds_watch. */
	creds_sigs(cfg, m->creds_seen);
	r = zt_trust_load(cfg->mtls.ca_bundle, cfg->mtls.trust_domain, &trust, err, errlen);
	if (r < 0)
		goto fail;
	r = zt_svid_issuer_load(cfg->mtls.node_cert, cfg->mtls.node_key, cfg->mtls.trust_domain,
				trust, &iss, err, errlen);
	if (r < 0)
		goto fail;
	r = zt_svid_store_new(&sc, iss, &m->svids);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the SVID store: %s", strerror(-r));
		zt_svid_issuer_free(iss);
		goto fail;
	}
	/* The issuer check borrowed trust; the tunnel takes its own. */
	r = zt_trust_load(cfg->mtls.ca_bundle, cfg->mtls.trust_domain, &trust2, err, errlen);
	if (r < 0)
		goto fail;
	/* Both families: peer agents may reach this node over IPv4 or IPv6 (mtls.peers, Nodes). */
	snprintf(listen, sizeof(listen), "[::]:%u", cfg->mtls.port);
	tc.svids = m->svids;
	tc.trust = trust2;
	tc.authorize = authorize;
	tc.local_identity = local_identity;
	tc.on_refusal = on_refusal;
	tc.on_relay = on_relay;
	tc.ctx = m;
	tc.listen = listen;
	tc.transparent_source = true;
	tc.mark = ZT_MTLS_MARK_AGENT;
	r = zt_tunnel_new(&tc, &m->tun, err, errlen);
	if (r == -EAFNOSUPPORT) {
		/* No IPv6 on this node: IPv4 only, as the peers can only meet it there. */
		snprintf(listen, sizeof(listen), "0.0.0.0:%u", cfg->mtls.port);
		r = zt_tunnel_new(&tc, &m->tun, err, errlen);
	}
	if (r < 0) {
		zt_trust_free(trust2); /* kept by the caller on failure */
		goto fail;
	}
	r = zt_tunnel_start(m->tun);
	if (r < 0)
		snprintf(err, errlen, "cannot start the relay thread: %s", strerror(-r));
fail:
	zt_trust_free(trust);
	return r;
}

/*
 * The tunnel, the steering routes and listeners, the timer: 0 and running,
 * or -errno with m->state saying why, logged, and nothing left half up
 * (flows that need mTLS find no agent socket and drop: fail closed).
 */
static int bring_up(struct zt_dmtls *m)
{
	struct zt_daemon *d = m->d;
	char err[1024] = "", q[1100];
	int r;

	/* A fresh SVID store: every hosted service account is added to it anew. */
	free(m->sas);
	m->sas = NULL;
	m->n_sas = 0;
	r = tunnel_start(m, err, sizeof(err));
	if (r < 0)
		goto unavailable;
	r = steer_routing(AF_INET, err, sizeof(err));
	if (r < 0)
		goto unavailable;
	/* No IPv6 on the node (EAFNOSUPPORT): no IPv6 pods either. */
	r = steer_routing(AF_INET6, err, sizeof(err));
	if (r < 0 && r != -EAFNOSUPPORT)
		goto unavailable;
	sync_workloads(m);
	r = steer_listener(m, err, sizeof(err));
	if (r == 0)
		r = steer_listener6(m, err, sizeof(err));
	if (r < 0)
		goto unavailable;
	/* Accepted on the relay thread (steer_one), not on the loop. */
	if ((r = zt_tunnel_add_listener(m->tun, m->lfd, steer_one, m)) < 0 ||
	    (m->lfd6 >= 0 && (r = zt_tunnel_add_listener(m->tun, m->lfd6, steer_one, m)) < 0)) {
		snprintf(err, sizeof(err), "cannot watch the steer listener: %s", strerror(-r));
		goto unavailable;
	}
	r = zt_loop_add_timer(d->loop, 1000000000ULL, on_timer, m);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot start the mTLS timer: %s", strerror(-r));
		goto unavailable;
	}
	m->tfd = r;
	zt_flowexp_set_identity_source(flow_ids, m);
	snprintf(m->state, sizeof(m->state), "running");
	log_info("mtls_started", "mode=%s trust_domain=%s tunnel_port=%u steer_port=%u peers=%u",
		 d->cfg.mtls.mode == ZT_MTLS_MODE_STRICT ? "strict" : "policy",
		 d->cfg.mtls.trust_domain, zt_tunnel_port(m->tun), m->steer_port, m->n_peers);
	return 0;
unavailable:
	snprintf(m->state, sizeof(m->state), "%s", err);
	/*
	 * No CA bundle at all: mTLS was never set up on this node (a warning);
	 * a bundle that is there but does not work: an error.
	 */
	if (access(d->cfg.mtls.ca_bundle, F_OK) < 0 && errno == ENOENT)
		log_warn("mtls_unavailable",
			 "error=%s action=\"flows that require mTLS are dropped until "
			 "mtls.ca_bundle, node_cert and node_key exist (ztctl ca), then SIGHUP\"",
			 zt_log_quote(q, sizeof(q), m->state));
	else
		log_error(
			"mtls_unavailable",
			"error=%s action=\"flows that require mTLS are dropped until this is fixed (then SIGHUP)\"",
			zt_log_quote(q, sizeof(q), m->state));
	/* The relay thread stops first: it accepts on the listeners. */
	zt_tunnel_free(m->tun);
	m->tun = NULL;
	if (m->lfd >= 0) {
		close(m->lfd);
		m->lfd = -1;
	}
	if (m->lfd6 >= 0) {
		close(m->lfd6);
		m->lfd6 = -1;
	}
	zt_svid_store_free(m->svids);
	m->svids = NULL;
	return r < 0 ? r : -EINVAL;
}

int daemon_mtls_start(struct zt_daemon *d)
{
	struct zt_dmtls *m = calloc(1, sizeof(*m));
	char q[1100];
	int r;

	if (!m)
		return -ENOMEM;
	m->d = d;
	m->lfd = m->lfd6 = m->tfd = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->ids_lock, NULL);
	pthread_mutex_init(&m->peers_lock, NULL);
	m->tunnel_port = d->cfg.mtls.port;
	/* Without it flow records only lack the identities. */
	m->ids = calloc(IDS_SLOTS, sizeof(*m->ids));
	d->mtls = m;
	m->steer_port = d->cfg.mtls.port < 65535 ? d->cfg.mtls.port + 1 : d->cfg.mtls.port - 1;
	for (unsigned int i = 0; i < d->cfg.mtls.n_peers; i++)
		if (zt_mtls_peer_parse(d->cfg.mtls.peers[i], &m->peers[m->n_peers]) == 0)
			m->n_peers++;
	r = datapath_cfg(m);
	if (r < 0) {
		snprintf(m->state, sizeof(m->state), "cannot write the datapath's mTLS maps: %s",
			 strerror(-r));
		/* Not fatal for the agent: segmentation and the rest still run. */
		log_error(
			"mtls_unavailable",
			"error=%s action=\"flows that require mTLS are dropped until this is fixed\"",
			zt_log_quote(q, sizeof(q), m->state));
		return 0;
	}
	if (d->cfg.mtls.mode == ZT_MTLS_MODE_OFF) {
		snprintf(m->state, sizeof(m->state), "off (mtls.mode)");
		return 0;
	}
	m->scratch = calloc(WL_MAX, sizeof(*m->scratch));
	if (!m->scratch) {
		snprintf(m->state, sizeof(m->state), "out of memory");
		log_error("mtls_unavailable", "error=\"out of memory\"");
		return 0;
	}
	/* Not fatal for the agent either way (see bring_up); SIGHUP tries again. */
	bring_up(m);
	return 0;
}

/*
 * SIGHUP (daemon_reload.c): mTLS that could not start (credentials missing
 * or broken at start, say) is started now. 0: started; -EALREADY: it runs;
 * -ENOTCONN: it cannot be started without a restart (mtls.mode off, or the
 * datapath's maps were not written); else -errno, the reason logged and in
 * ztctl mtls status.
 */
int daemon_mtls_retry(struct zt_daemon *d)
{
	struct zt_dmtls *m = d->mtls;

	if (!m || d->cfg.mtls.mode == ZT_MTLS_MODE_OFF || !m->scratch)
		return -ENOTCONN;
	if (m->tun)
		return -EALREADY;
	return bring_up(m);
}

/* SIGHUP (daemon_reload.c): mtls.peers of d->cfg replace the table at once. */
void daemon_mtls_peers_reload(struct zt_daemon *d)
{
	struct zt_dmtls *m = d->mtls;
	int r;

	if (!m)
		return;
	pthread_mutex_lock(&m->peers_lock);
	m->n_peers = 0;
	for (unsigned int i = 0; i < d->cfg.mtls.n_peers; i++)
		if (zt_mtls_peer_parse(d->cfg.mtls.peers[i], &m->peers[m->n_peers]) == 0)
			m->n_peers++;
	pthread_mutex_unlock(&m->peers_lock);
	/* Entries of the datapath's remote set stay: a dropped peer's pods fail closed. */
	r = datapath_cfg(m);
	if (r < 0)
		log_warn("mtls_peers_datapath_failed", "error=\"%s\"", strerror(-r));
}

void daemon_mtls_stop(struct zt_daemon *d)
{
	struct zt_dmtls *m = d->mtls;

	if (!m)
		return;
	zt_flowexp_set_identity_source(NULL, NULL);
	/* The relay thread stops first: it accepts on the listeners. */
	zt_tunnel_free(m->tun);
	if (m->lfd >= 0)
		close(m->lfd);
	if (m->lfd6 >= 0)
		close(m->lfd6);
	zt_svid_store_free(m->svids);
	free(m->scratch);
	free(m->sas);
	free(m->wl);
	free(m->sar);
	free(m->ids);
	pthread_mutex_destroy(&m->ids_lock);
	pthread_mutex_destroy(&m->peers_lock);
	pthread_mutex_destroy(&m->lock);
	free(m);
	d->mtls = NULL;
}

/* ---- status (ztctl mtls status) and metrics ---- */

static const char *const ds_names[ZT_MTLS_DS_MAX] = {
	[ZT_MTLS_DS_STEERED] = "steered",
	[ZT_MTLS_DS_FROM_AGENT] = "from_agent",
	[ZT_MTLS_DS_NO_AGENT] = "dropped_no_agent",
	[ZT_MTLS_DS_BYPASS] = "dropped_bypass",
	[ZT_MTLS_DS_UNSUPPORTED] = "dropped_unsupported",
	[ZT_MTLS_DS_TLS13] = "tls13_server",
	[ZT_MTLS_DS_TLS_OLD] = "dropped_tls_old_version",
	[ZT_MTLS_DS_TLS_NOT_TLS] = "dropped_tls_not_tls",
	[ZT_MTLS_DS_TLS_SPLIT] = "dropped_tls_split",
	[ZT_MTLS_DS_TLS_RESET] = "tls_refusal_resets",
};

/* The datapath's counters, summed over CPUs. */
static void ds_read(struct zt_daemon *d, uint64_t pk[ZT_MTLS_DS_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct zt_counter *c;

	memset(pk, 0, sizeof(uint64_t) * ZT_MTLS_DS_MAX);
	if (ncpu <= 0)
		return;
	c = calloc((size_t)ncpu, sizeof(*c));
	if (!c)
		return;
	for (uint32_t i = 0; i < ZT_MTLS_DS_MAX; i++)
		if (bpf_map_lookup_elem(bpf_map__fd(d->dp->tc->maps.mtls_stats), &i, c) == 0)
			for (int k = 0; k < ncpu; k++)
				pk[i] += c[k].packets;
	free(c);
}

/* The warm pool's counters, in status and metrics alike. */
#define POOL_EVENTS 6
static const char *const pool_names[POOL_EVENTS] = {
	"made", "taken_ready", "taken_pending", "missed", "failed", "discarded",
};

static uint64_t pool_value(const struct zt_tunnel_stats *st, int i)
{
	const uint64_t v[POOL_EVENTS] = { st->pool_made, st->pool_ready,  st->pool_pending,
					  st->pool_miss, st->pool_failed, st->pool_discarded };

	return v[i];
}

static cbor_item_t *dest_item(int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN] = "", buf[INET6_ADDRSTRLEN + 8];
	cbor_item_t *v;

	/* A server's connection still in its handshake has no destination yet. */
	if ((family != AF_INET && family != AF_INET6) || !inet_ntop(family, addr, a, sizeof(a)))
		return cbor_build_string("");
	snprintf(buf, sizeof(buf), family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	v = cbor_build_string(buf);
	return v;
}

static int op_mtls_status(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			  size_t errlen)
{
	struct zt_daemon *d = ctx;
	struct zt_dmtls *m = d->mtls;
	cbor_item_t *top = zt_cbor_map(), *a, *x, *rf;
	struct zt_tunnel_stats st = { 0 };
	uint64_t pk[ZT_MTLS_DS_MAX];
	int r = -ENOMEM;

	(void)req;
	if (!top || !m)
		goto out;
	if (zt_cbor_put_str(top, "state", m->state) ||
	    zt_cbor_put_str(top, "mode",
			    d->cfg.mtls.mode == ZT_MTLS_MODE_STRICT ? "strict" :
			    d->cfg.mtls.mode == ZT_MTLS_MODE_POLICY ? "policy" :
								      "off") ||
	    zt_cbor_put_str(top, "trust_domain", d->cfg.mtls.trust_domain) ||
	    zt_cbor_put_u64(top, "tunnel_port", m->tun ? zt_tunnel_port(m->tun) : 0) ||
	    zt_cbor_put_u64(top, "steer_port", m->steer_port) || daemon_peers_status(d, top))
		goto out;
	/* Certificates in use. */
	a = zt_cbor_array();
	if (!a || zt_cbor_put(top, "svids", a))
		goto out;
	if (m->svids) {
		struct zt_svid_info *v = calloc(STATUS_MAX, sizeof(*v));
		size_t n;

		if (!v)
			goto out;
		n = zt_svid_store_list(m->svids, v, STATUS_MAX);
		n = n < STATUS_MAX ? n : STATUS_MAX;
		for (size_t i = 0; i < n; i++) {
			x = zt_cbor_map();
			if (!x || zt_cbor_put_str(x, "id", v[i].id) ||
			    zt_cbor_put_str(x, "serial", v[i].serial) ||
			    zt_cbor_put_i64(x, "not_before", v[i].not_before) ||
			    zt_cbor_put_i64(x, "not_after", v[i].not_after) ||
			    zt_cbor_put_i64(x, "renew_at", v[i].renew_at) ||
			    zt_cbor_put_u64(x, "pods", v[i].pods) || zt_cbor_push(a, x)) {
				free(v);
				goto out;
			}
		}
		free(v);
		if (zt_cbor_put_u64(top, "svids_minted", zt_svid_store_minted(m->svids)) ||
		    zt_cbor_put_u64(top, "svid_mint_failures",
				    zt_svid_store_failures(m->svids, NULL)))
			goto out;
	}
	/* Tunnels and their peers. */
	a = zt_cbor_array();
	if (!a || zt_cbor_put(top, "tunnels", a))
		goto out;
	if (m->tun) {
		struct zt_tunnel_info *v = calloc(STATUS_MAX, sizeof(*v));
		char peer[INET6_ADDRSTRLEN + 8];
		size_t n;

		if (!v)
			goto out;
		n = zt_tunnel_list(m->tun, v, STATUS_MAX);
		n = n < STATUS_MAX ? n : STATUS_MAX;
		for (size_t i = 0; i < n; i++) {
			x = zt_cbor_map();
			if (!x ||
			    zt_cbor_put_str(x, "role",
					    v[i].role == ZT_MTLS_ROLE_SERVER ? "server" :
									       "client") ||
			    zt_cbor_put_bool(x, "established", v[i].established) ||
			    zt_cbor_put_bool(x, "resumed", v[i].resumed) ||
			    zt_cbor_put_bool(x, "local", v[i].local) ||
			    zt_cbor_put(x, "dst",
					dest_item(v[i].dst.family, v[i].dst.addr, v[i].dst.port)) ||
			    zt_cbor_put(x, "src",
					dest_item(v[i].dst.family, v[i].dst.src_addr,
						  v[i].dst.src_port)) ||
			    zt_cbor_put_str(x, "peer", sa_str(&v[i].peer, peer, sizeof(peer))) ||
			    zt_cbor_put_str(x, "peer_id", v[i].peer_id) ||
			    zt_cbor_put_str(x, "local_id", v[i].local_id) ||
			    zt_cbor_put_u64(x, "bytes_out", v[i].bytes_out) ||
			    zt_cbor_put_u64(x, "bytes_in", v[i].bytes_in) ||
			    zt_cbor_put_i64(x, "since", v[i].since) || zt_cbor_push(a, x)) {
				free(v);
				goto out;
			}
		}
		free(v);
		zt_tunnel_get_stats(m->tun, &st);
	}
	/* Handshakes and refusals by reason. */
	x = zt_cbor_map();
	rf = zt_cbor_map();
	if (!x || !rf || zt_cbor_put(top, "handshakes", x) || zt_cbor_put(top, "refusals", rf) ||
	    zt_cbor_put_u64(x, "full", st.handshakes_full) ||
	    zt_cbor_put_u64(x, "resumed", st.handshakes_resumed))
		goto out;
	for (int i = 1; i < ZT_MTLS_REASON_MAX; i++)
		if (zt_cbor_put_u64(rf, zt_mtls_reason_name(i), st.refusals[i]))
			goto out;
	x = zt_cbor_map();
	if (!x || zt_cbor_put(top, "traffic", x) ||
	    zt_cbor_put_u64(x, "tunnels_opened", st.tunnels_opened) ||
	    zt_cbor_put_u64(x, "tunnels_active", st.tunnels_active) ||
	    zt_cbor_put_u64(x, "tunnels_closed", st.tunnels_closed) ||
	    zt_cbor_put_u64(x, "tunnels_reset", st.tunnels_reset) ||
	    zt_cbor_put_u64(x, "bytes_out", st.bytes_out) ||
	    zt_cbor_put_u64(x, "bytes_in", st.bytes_in) ||
	    zt_cbor_put_u64(x, "relay_cpu_ms", (uint64_t)(st.relay_cpu_s * 1000.0)) ||
	    zt_cbor_put_u64(x, "steered_accepted", atomic_load(&m->accepted)) ||
	    zt_cbor_put_u64(x, "steered_no_source", atomic_load(&m->no_source)) ||
	    zt_cbor_put_u64(x, "steered_no_route", atomic_load(&m->no_route)))
		goto out;
	/* The client's warm pool of ready tunnel connections (tunnel.h). */
	x = zt_cbor_map();
	if (!x || zt_cbor_put(top, "pool", x))
		goto out;
	for (int i = 0; i < POOL_EVENTS; i++)
		if (zt_cbor_put_u64(x, pool_names[i], pool_value(&st, i)))
			goto out;
	ds_read(d, pk);
	x = zt_cbor_map();
	if (!x || zt_cbor_put(top, "datapath", x))
		goto out;
	for (int i = 0; i < ZT_MTLS_DS_MAX; i++)
		if (zt_cbor_put_u64(x, ds_names[i], pk[i]))
			goto out;
	*data = top;
	top = NULL;
	r = 0;
out:
	if (top)
		cbor_decref(&top);
	if (r < 0)
		snprintf(err, errlen, "mtls status: %s", strerror(-r));
	return r;
}

static void m_handshakes(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_tunnel_stats st;

	if (!m->tun)
		return;
	zt_tunnel_get_stats(m->tun, &st);
	zt_metric_emit_u64(sink, (const char *const[]){ "full" }, st.handshakes_full);
	zt_metric_emit_u64(sink, (const char *const[]){ "resumed" }, st.handshakes_resumed);
}

static void m_refusals(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_tunnel_stats st = { 0 };

	if (m->tun)
		zt_tunnel_get_stats(m->tun, &st);
	for (int i = 1; i < ZT_MTLS_REASON_MAX; i++)
		zt_metric_emit_u64(sink, (const char *const[]){ zt_mtls_reason_name(i) },
				   st.refusals[i]);
}

static void m_bytes(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_tunnel_stats st = { 0 };

	if (m->tun)
		zt_tunnel_get_stats(m->tun, &st);
	zt_metric_emit_u64(sink, (const char *const[]){ "out" }, st.bytes_out);
	zt_metric_emit_u64(sink, (const char *const[]){ "in" }, st.bytes_in);
}

static void m_cpu(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_tunnel_stats st = { 0 };

	if (m->tun)
		zt_tunnel_get_stats(m->tun, &st);
	zt_metric_emit(sink, NULL, st.relay_cpu_s);
}

static void m_active(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_tunnel_stats st = { 0 };

	if (m->tun)
		zt_tunnel_get_stats(m->tun, &st);
	zt_metric_emit_u64(sink, NULL, st.tunnels_active);
}

static void m_pool(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_tunnel_stats st = { 0 };

	if (m->tun)
		zt_tunnel_get_stats(m->tun, &st);
	for (int i = 0; i < POOL_EVENTS; i++)
		zt_metric_emit_u64(sink, (const char *const[]){ pool_names[i] },
				   pool_value(&st, i));
}

static void m_expiry(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	struct zt_svid_info v[64];
	size_t n;

	if (!m->svids)
		return;
	n = zt_svid_store_list(m->svids, v, 64);
	for (size_t i = 0; i < n && i < 64; i++)
		zt_metric_emit(sink, (const char *const[]){ v[i].id }, (double)v[i].not_after);
}

static void m_datapath(void *ctx, struct zt_metric_sink *sink)
{
	struct zt_dmtls *m = ctx;
	uint64_t pk[ZT_MTLS_DS_MAX];

	ds_read(m->d, pk);
	for (int i = 0; i < ZT_MTLS_DS_MAX; i++)
		zt_metric_emit_u64(sink, (const char *const[]){ ds_names[i] }, pk[i]);
}

int daemon_mtls_register(struct zt_daemon *d)
{
	struct zt_dmtls *m = d->mtls;
	int r;

	r = zt_api_register(d->api, ZT_OP_MTLS_STATUS, op_mtls_status, d);
	if (r < 0 || !d->metrics || !m)
		return r;
	if ((r = zt_metrics_add(
		     d->metrics, "ztagent_mtls_handshakes_total",
		     "Tunnel TLS 1.3 handshakes completed and accepted, full or resumed.",
		     ZT_METRIC_COUNTER, (const char *const[]){ "kind", NULL }, m_handshakes, m,
		     NULL)) < 0 ||
	    (r = zt_metrics_add(d->metrics, "ztagent_mtls_refusals_total",
				"Tunnel handshakes and connections refused, by reason.",
				ZT_METRIC_COUNTER, (const char *const[]){ "reason", NULL },
				m_refusals, m, NULL)) < 0 ||
	    (r = zt_metrics_add(
		     d->metrics, "ztagent_mtls_bytes_relayed_total",
		     "Pod bytes carried by the tunnel, towards the peer agent (out) or from it (in).",
		     ZT_METRIC_COUNTER, (const char *const[]){ "direction", NULL }, m_bytes, m,
		     NULL)) < 0 ||
	    (r = zt_metrics_add(d->metrics, "ztagent_mtls_relay_cpu_seconds_total",
				"CPU time of the tunnel's threads (relay and handshake worker).",
				ZT_METRIC_COUNTER, NULL, m_cpu, m, NULL)) < 0 ||
	    (r = zt_metrics_add(
		     d->metrics, "ztagent_mtls_pool_spares_total",
		     "The client's warm pool of handshaken tunnel connections: spares made, "
		     "taken by a pod connection ready or still handshaking, connections that "
		     "found none (missed), spares that failed, spares closed unused (discarded).",
		     ZT_METRIC_COUNTER, (const char *const[]){ "event", NULL }, m_pool, m, NULL)) <
		    0 ||
	    (r = zt_metrics_add(d->metrics, "ztagent_mtls_tunnels_active",
				"Tunnelled connections open now.", ZT_METRIC_GAUGE, NULL, m_active,
				m, NULL)) < 0 ||
	    (r = zt_metrics_add(d->metrics, "ztagent_mtls_svid_expiry_timestamp_seconds",
				"notAfter of each workload SVID in use (unix seconds).",
				ZT_METRIC_GAUGE, (const char *const[]){ "spiffe_id", NULL },
				m_expiry, m, NULL)) < 0 ||
	    (r = zt_metrics_add(d->metrics, "ztagent_mtls_datapath_packets_total",
				"Packets of flows that require mTLS at the pods' veths: steered to "
				"the agent, from it, or dropped (no agent, clear text around the "
				"tunnel, IPv6); requireTLS servers' ServerHellos checked at the "
				"destination (TLS 1.3, or dropped: older, not TLS, split).",
				ZT_METRIC_COUNTER, (const char *const[]){ "event", NULL },
				m_datapath, m, NULL)) < 0)
		return r;
	return 0;
}
