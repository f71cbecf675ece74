// SPDX-License-Identifier: GPL-2.0-only
/*
 * The driver of tests/integration/mtls_tunnel.sh (built by the script with
 * the project's flags against build/libzt.a). It runs the real tunnel code
 * in the roles the test needs, and plays the hostile peers:
 *
 *   server  the server agent: the tunnel listener, SVIDs of the workloads it hosts
 *   client  the client agent: a plain TCP listener stands in for the transparent
 *           one; each connection is tunnelled to --dst through --peer
 *   mkcert  a certificate of a given (possibly broken) profile under an issuer
 *   hostile-client  a TLS 1.3 client with any certificate that sends a header and a canary
 *
 * server and client write their counters to --stats every 100 ms ("name value"
 * lines, renamed into place) and run until SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent/util.h"
#include "mtls/frame.h"
#include "mtls/tunnel.h"
#include "mtls/x509.h"

#define MAX_HOSTS 8

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static struct {
	const char *listen, *peer, *dst, *src_addr, *bundle, *node_cert, *node_key, *td, *stats;
	const char *expect, *src_id, *kind, *id, *cert, *key, *chain, *issuer_cert, *issuer_key;
	const char *canary, *connect;
	const char *hosts[MAX_HOSTS]; /* IP=ns/sa */
	const char *allow[MAX_HOSTS]; /* SPIFFE IDs allowed in */
	int n_hosts, n_allow;
	unsigned int ttl;
	bool transparent;
	uint32_t mark;
} A = { .td = "cluster.local", .ttl = 3600 };

static int die(const char *what)
{
	fprintf(stderr, "mtls_peer: %s\n", what);
	return 2;
}

static int parse_ep(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -EINVAL;
}

/* ---- policy of the test ---- */

static char host_ip[MAX_HOSTS][16];
static char host_id[MAX_HOSTS][ZT_SPIFFE_ID_MAX + 1];

static int local_identity(void *ctx, const struct zt_mtls_dest *d, char *id, size_t n)
{
	(void)ctx;
	for (int i = 0; i < A.n_hosts; i++)
		if (d->family == AF_INET && memcmp(d->addr, host_ip[i], 4) == 0) {
			snprintf(id, n, "%s", host_id[i]);
			return 0;
		}
	return -ENOENT;
}

static bool authorize(void *ctx, const char *peer, const struct zt_mtls_dest *d)
{
	(void)ctx;
	if (d->role == ZT_MTLS_ROLE_CLIENT)
		return A.expect && strcmp(peer, A.expect) == 0;
	for (int i = 0; i < A.n_allow; i++)
		if (strcmp(peer, A.allow[i]) == 0)
			return true;
	return false;
}

static void write_stats(struct zt_tunnel *t, struct zt_svid_store *st)
{
	struct zt_tunnel_stats s;
	struct zt_svid_info info[MAX_HOSTS];
	char tmp[4200];
	FILE *f;
	size_t n;

	if (!A.stats)
		return;
	zt_tunnel_get_stats(t, &s);
	snprintf(tmp, sizeof(tmp), "%s.tmp", A.stats);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "handshakes_full %llu\nhandshakes_resumed %llu\n",
		(unsigned long long)s.handshakes_full, (unsigned long long)s.handshakes_resumed);
	for (int r = 1; r < ZT_MTLS_REASON_MAX; r++)
		fprintf(f, "refused_%s %llu\n", zt_mtls_reason_name((enum zt_mtls_reason)r),
			(unsigned long long)s.refusals[r]);
	fprintf(f, "opened %llu\nclosed %llu\nreset %llu\nactive %llu\n",
		(unsigned long long)s.tunnels_opened, (unsigned long long)s.tunnels_closed,
		(unsigned long long)s.tunnels_reset, (unsigned long long)s.tunnels_active);
	fprintf(f,
		"pool_made %llu\npool_ready %llu\npool_pending %llu\npool_miss %llu\n"
		"pool_failed %llu\npool_discarded %llu\n",
		(unsigned long long)s.pool_made, (unsigned long long)s.pool_ready,
		(unsigned long long)s.pool_pending, (unsigned long long)s.pool_miss,
		(unsigned long long)s.pool_failed, (unsigned long long)s.pool_discarded);
	fprintf(f, "bytes_out %llu\nbytes_in %llu\nrelay_cpu_s %.3f\nminted %llu\n",
		(unsigned long long)s.bytes_out, (unsigned long long)s.bytes_in, s.relay_cpu_s,
		(unsigned long long)zt_svid_store_minted(st));
	n = zt_svid_store_list(st, info, MAX_HOSTS);
	for (size_t i = 0; i < n && i < MAX_HOSTS; i++)
		fprintf(f, "svid %s %s %lld\n", info[i].id, info[i].serial,
			(long long)info[i].not_after);
	fclose(f);
	rename(tmp, A.stats);
}

static int load_store(struct zt_trust **trust, struct zt_svid_store **st)
{
	struct zt_svid_store_config sc = { .ttl_s = A.ttl };
	struct zt_svid_issuer *iss;
	char err[512];

	if (zt_trust_load(A.bundle, A.td, trust, err, sizeof(err)) < 0 ||
	    zt_svid_issuer_load(A.node_cert, A.node_key, A.td, *trust, &iss, err, sizeof(err)) <
		    0 ||
	    zt_svid_store_new(&sc, iss, st) < 0) {
		fprintf(stderr, "mtls_peer: %s\n", err);
		return -1;
	}
	return 0;
}

static int host_add(struct zt_svid_store *st, int i, const char *spec)
{
	char ip[32], ns[256], sa[256];
	const char *eq = strchr(spec, '='), *slash = eq ? strchr(eq, '/') : NULL;
	struct in_addr a;

	if (!eq || !slash || (size_t)(eq - spec) >= sizeof(ip))
		return -EINVAL;
	snprintf(ip, sizeof(ip), "%.*s", (int)(eq - spec), spec);
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - eq - 1), eq + 1);
	snprintf(sa, sizeof(sa), "%s", slash + 1);
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	memcpy(host_ip[i], &a, 4);
	if (zt_spiffe_format_workload(host_id[i], sizeof(host_id[i]), A.td, ns, sa) < 0)
		return -EINVAL;
	return zt_svid_store_add(st, ns, sa, (int64_t)time(NULL));
}

static int run_agent(bool server)
{
	struct zt_tunnel_config cfg = { 0 };
	struct zt_trust *trust = NULL;
	struct zt_svid_store *st = NULL;
	struct zt_tunnel *t = NULL;
	struct sockaddr_in peer = { 0 }, dst = { 0 }, src = { 0 };
	int lfd = -1, rc = 1;
	char err[512];

	if (!A.bundle || !A.node_cert || !A.node_key || !A.listen)
		return die("needs --bundle --node-cert --node-key --listen");
	if (load_store(&trust, &st) < 0)
		return 1;
	for (int i = 0; i < A.n_hosts; i++)
		if (host_add(st, i, A.hosts[i]) < 0)
			return die("bad --host IP=ns/sa");
	cfg.svids = st;
	cfg.trust = trust;
	cfg.authorize = authorize;
	cfg.local_identity = local_identity;
	cfg.listen = server ? A.listen : NULL;
	cfg.transparent_source = A.transparent;
	cfg.mark = A.mark;
	cfg.handshake_timeout_ms = 3000;
	if (zt_tunnel_new(&cfg, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "mtls_peer: %s\n", err);
		return 1;
	}
	if (zt_tunnel_start(t) < 0)
		goto out;
	if (!server) {
		struct sockaddr_in la;
		int one = 1;

		if (!A.peer || !A.dst || !A.src_id || parse_ep(A.peer, &peer) < 0 ||
		    parse_ep(A.dst, &dst) < 0 || parse_ep(A.listen, &la) < 0) {
			rc = die("client needs --peer ADDR:PORT --dst ADDR:PORT --src-id ID");
			goto out;
		}
		if (A.src_addr && parse_ep(A.src_addr, &src) < 0) {
			rc = die("bad --src-addr ADDR:PORT");
			goto out;
		}
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 128) < 0) {
			perror("mtls_peer: listen");
			goto out;
		}
	}
	fprintf(stderr, "mtls_peer: %s ready port=%u\n", server ? "server" : "client",
		server ? zt_tunnel_port(t) : 0);
	while (!stop) {
		write_stats(t, st);
		zt_svid_store_tick(st, (int64_t)time(NULL));
		if (server) {
			usleep(100000);
			continue;
		}
		{
			struct timeval tv = { .tv_usec = 100000 };
			fd_set fds;

			FD_ZERO(&fds);
			FD_SET(lfd, &fds);
			if (select(lfd + 1, &fds, NULL, NULL, &tv) > 0) {
				struct sockaddr_in pa;
				socklen_t len = sizeof(pa);
				int fd = accept4(lfd, (struct sockaddr *)&pa, &len, SOCK_CLOEXEC);
				struct zt_mtls_dest d = { .family = AF_INET };

				if (fd < 0)
					continue;
				memcpy(d.addr, &dst.sin_addr, 4);
				d.port = ntohs(dst.sin_port);
				/* the pod's own address, as the transparent listener would see it */
				memcpy(d.src_addr, A.src_addr ? &src.sin_addr : &pa.sin_addr, 4);
				d.src_port = ntohs(pa.sin_port);
				zt_tunnel_open(t, fd, &d, A.src_id, (struct sockaddr *)&peer,
					       sizeof(peer));
			}
		}
	}
	write_stats(t, st);
	rc = 0;
out:
	if (lfd >= 0)
		close(lfd);
	zt_tunnel_free(t);
	zt_svid_store_free(st);
	return rc;
}

/* ---- certificates, good and bad ---- */

static int write_pair(X509 *c, EVP_PKEY *k)
{
	char *pem;
	size_t len;

	if (zt_x509_cert_pem(c, &pem, &len) < 0 || zt_file_write_atomic(A.cert, pem, len, 0644) < 0)
		return -1;
	free(pem);
	if (zt_x509_key_pem(k, &pem, &len) < 0 || zt_file_write_atomic(A.key, pem, len, 0600) < 0)
		return -1;
	free(pem);
	return 0;
}

static int run_mkcert(void)
{
	struct zt_x509_spec s = { 0 };
	X509 *issuer = NULL, *c = NULL;
	EVP_PKEY *ikey = NULL, *key = NULL;
	int64_t now = (int64_t)time(NULL);
	const char *k = A.kind ? A.kind : "good";

	if (!A.id || !A.cert || !A.key)
		return die("mkcert needs --id --cert --key [--kind] [--issuer-cert --issuer-key]");
	if (zt_x509_keygen(&key) < 0)
		return 1;
	s.subject_o = "test";
	s.basic_constraints = true;
	s.pathlen = -1;
	s.key_usage = ZT_KU_DIGITAL_SIGNATURE;
	s.ext_usage = ZT_EKU_SERVER | ZT_EKU_CLIENT;
	s.uris[0] = A.id;
	s.not_before = now - 300;
	s.not_after = now + 3600;
	s.key = key;
	s.issuer_key = key;
	if (strcmp(k, "self-signed") != 0) {
		if (!A.issuer_cert || !A.issuer_key ||
		    zt_x509_load_cert(A.issuer_cert, &issuer) < 0 ||
		    zt_x509_load_key(A.issuer_key, &ikey) < 0)
			return die("cannot read --issuer-cert/--issuer-key");
		s.issuer = issuer;
		s.issuer_key = ikey;
	}
	if (strcmp(k, "two-sans") == 0) {
		s.uris[1] = "spiffe://cluster.local/ns/prod/sa/admin";
	} else if (strcmp(k, "expired") == 0) {
		s.not_before = now - 7200;
		s.not_after = now - 600;
	} else if (strcmp(k, "not-yet-valid") == 0) {
		s.not_before = now + 1800;
		s.not_after = now + 7200;
	} else if (strcmp(k, "ca-leaf") == 0) {
		s.is_ca = true;
	} else if (strcmp(k, "good") != 0 && strcmp(k, "self-signed") != 0) {
		return die("--kind: good, self-signed, two-sans, expired, not-yet-valid, ca-leaf");
	}
	if (zt_x509_build(&s, &c) < 0 || write_pair(c, key) < 0)
		return die("cannot build or write the certificate");
	X509_free(c);
	X509_free(issuer);
	EVP_PKEY_free(ikey);
	EVP_PKEY_free(key);
	return 0;
}

/*
 * A client that follows the protocol with whatever certificate it was
 * given: TLS 1.3, SNI for --dst, then the header naming --id and a canary.
 * Prints one line: handshake-failed | refused STATUS | accepted | closed.
 */
static int run_hostile_client(void)
{
	struct sockaddr_in peer, dst;
	struct zt_mtls_dest d = { .family = AF_INET, .src_port = 41000 };
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	uint8_t hdr[ZT_FRAME_HDR_MAX], reply[ZT_FRAME_REPLY_LEN];
	char sni[ZT_SNI_MAX];
	SSL *ssl;
	int fd, n, got = 0;

	if (!A.connect || !A.dst || !A.cert || !A.key || !A.id || parse_ep(A.connect, &peer) < 0 ||
	    parse_ep(A.dst, &dst) < 0)
		return die("hostile-client needs --connect --dst --cert --key --id [--chain]");
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_file(ctx, A.cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, A.key, SSL_FILETYPE_PEM) != 1 ||
	    (A.chain && SSL_CTX_add1_chain_cert(
				ctx, PEM_read_X509(fopen(A.chain, "r"), NULL, NULL, NULL)) != 1))
		return die("cannot use the certificate");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return die("connect");
	memcpy(d.addr, &dst.sin_addr, 4);
	memcpy(d.src_addr, (uint8_t[]){ 198, 18, 40, 66 }, 4);
	d.port = ntohs(dst.sin_port);
	zt_sni_encode(sni, sizeof(sni), AF_INET, d.addr);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, sni);
	if (SSL_connect(ssl) != 1) {
		printf("handshake-failed\n");
		return 0;
	}
	n = zt_frame_hdr_encode(hdr, sizeof(hdr), &d, A.id);
	/* TLS 1.3 reports a refused client certificate only on the first read */
	if (n < 0 || SSL_write(ssl, hdr, n) != n ||
	    SSL_write(ssl, A.canary ? A.canary : "CANARY",
		      (int)strlen(A.canary ? A.canary : "CANARY")) <= 0) {
		printf("handshake-failed\n");
		return 0;
	}
	while (got < (int)sizeof(reply)) {
		n = SSL_read(ssl, reply + got, (int)sizeof(reply) - got);
		if (n <= 0)
			break;
		got += n;
	}
	if (got < (int)sizeof(reply))
		printf(got == 0 && ERR_peek_error() ? "handshake-failed\n" : "closed\n");
	else if (zt_frame_reply_decode(reply, sizeof(reply)) == 0)
		printf("accepted\n");
	else
		printf("refused %s\n",
		       zt_mtls_reason_name((enum zt_mtls_reason)zt_frame_reply_decode(reply, 8)));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", 1, NULL, 'l' },	 { "peer", 1, NULL, 'p' },
		{ "dst", 1, NULL, 'd' },	 { "src-addr", 1, NULL, 'S' },
		{ "bundle", 1, NULL, 'b' },	 { "node-cert", 1, NULL, 'c' },
		{ "node-key", 1, NULL, 'k' },	 { "td", 1, NULL, 'T' },
		{ "stats", 1, NULL, 's' },	 { "expect", 1, NULL, 'e' },
		{ "src-id", 1, NULL, 'i' },	 { "host", 1, NULL, 'H' },
		{ "allow", 1, NULL, 'a' },	 { "ttl", 1, NULL, 't' },
		{ "transparent", 0, NULL, 'X' }, { "kind", 1, NULL, 'K' },
		{ "id", 1, NULL, 'I' },		 { "cert", 1, NULL, 'C' },
		{ "key", 1, NULL, 'Y' },	 { "chain", 1, NULL, 'N' },
		{ "issuer-cert", 1, NULL, 'J' }, { "issuer-key", 1, NULL, 'Q' },
		{ "canary", 1, NULL, 'Z' },	 { "connect", 1, NULL, 'O' },
		{ "mark", 1, NULL, 'M' },	 { NULL, 0, NULL, 0 },
	};
	const char *mode;
	int ch;

	if (argc < 2)
		return die("usage: mtls_peer server|client|mkcert|hostile-client [options]");
	mode = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			A.listen = optarg;
			break;
		case 'p':
			A.peer = optarg;
			break;
		case 'd':
			A.dst = optarg;
			break;
		case 'S':
			A.src_addr = optarg;
			break;
		case 'b':
			A.bundle = optarg;
			break;
		case 'c':
			A.node_cert = optarg;
			break;
		case 'k':
			A.node_key = optarg;
			break;
		case 'T':
			A.td = optarg;
			break;
		case 's':
			A.stats = optarg;
			break;
		case 'e':
			A.expect = optarg;
			break;
		case 'i':
			A.src_id = optarg;
			break;
		case 'H':
			if (A.n_hosts < MAX_HOSTS)
				A.hosts[A.n_hosts++] = optarg;
			break;
		case 'a':
			if (A.n_allow < MAX_HOSTS)
				A.allow[A.n_allow++] = optarg;
			break;
		case 't':
			A.ttl = (unsigned int)atoi(optarg);
			break;
		case 'X':
			A.transparent = true;
			break;
		case 'K':
			A.kind = optarg;
			break;
		case 'I':
			A.id = optarg;
			break;
		case 'C':
			A.cert = optarg;
			break;
		case 'Y':
			A.key = optarg;
			break;
		case 'N':
			A.chain = optarg;
			break;
		case 'J':
			A.issuer_cert = optarg;
			break;
		case 'Q':
			A.issuer_key = optarg;
			break;
		case 'Z':
			A.canary = optarg;
			break;
		case 'O':
			A.connect = optarg;
			break;
		case 'M':
			A.mark = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default:
			return die("unknown option");
		}
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "server") == 0)
		return run_agent(true);
	if (strcmp(mode, "client") == 0)
		return run_agent(false);
	if (strcmp(mode, "mkcert") == 0)
		return run_mkcert();
	if (strcmp(mode, "hostile-client") == 0)
		return run_hostile_client();
	return die("mode: server, client, mkcert or hostile-client");
}
