// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helper of tests/integration/synflood.sh, detect_synflood.sh and
 * detect_respond.sh (built there with the project's flags). Its commands:
 *
 *   flood DST PORT SRC_BASE NSRC PPS SECONDS
 *     Spoofed-source TCP SYNs through a raw socket: sources SRC_BASE ..
 *     SRC_BASE+NSRC-1 in turn, each with the next source port (1024 up,
 *     so no tuple repeats below 64000 SYNs a source), paced to PPS for
 *     SECONDS. Prints "sent N". Only ever run inside the test's own
 *     network namespaces, towards the lab's pod address.
 *
 *   randflood DST PORT NET/LEN PPS SECONDS
 *     The same with a random source from NET/LEN for every SYN (xorshift,
 *     never the network's first or last address) and a random source port:
 *     a random-source flood. The test's NET lies inside 198.18.0.0/15.
 *
 *   udprandflood DST PORT NET/LEN PPS SECONDS
 *     randflood's random sources with UDP datagrams (16 bytes of payload)
 *     instead of SYNs: a spoofed flood whose every source is a new one.
 *
 *   fill PIN IFINDEX DST PORT SRC_BASE COUNT
 *     Writes COUNT established TCP flows towards DST:PORT on IFINDEX into
 *     the pinned conntrack map PIN (batched), as a busy node's live flows:
 *     sources SRC_BASE + i % 250, ports 1024 + i / 250, last seen now.
 *
 *   count PIN FLOOD_NET/LEN FILL_NET/LEN
 *     Reads the whole conntrack map (batched) and prints one "key value"
 *     line each: total, flood_total, flood_half_open, flood_established,
 *     fill_total, fill_established, other_established.
 *
 *   api SOCKET SECONDS GAP_US OUT
 *     The daemon's API as ztctl uses it, without ztctl's start-up: for
 *     SECONDS, "status" and "block.list" requests in turn, GAP_US apart,
 *     each on a new connection ({"op": ...} framed by a 4-byte length),
 *     timed from connect to the whole answer. Writes one line per call to
 *     OUT: the op and microseconds. Exits 1 when an answer is not
 *     {"ok": true, ...}.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "ztagent.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "not an IPv4 address: %s\n", s);
		exit(2);
	}
	return ntohl(a.s_addr);
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

struct net {
	uint32_t addr, mask;
};

static struct net parse_net(const char *s)
{
	char buf[64], *slash;
	struct net n;
	int len;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (!slash)
		exit(2);
	*slash = 0;
	len = atoi(slash + 1);
	n.mask = len ? ~0u << (32 - len) : 0;
	n.addr = ip4(buf) & n.mask;
	return n;
}

/*
 * SYNs (with udp, UDP datagrams) to DST:PORT paced to PPS for SECS: sources
 * base .. base+nsrc-1 in turn, or, with rnd set, random ones inside rnd
 * (see the top).
 */
static int flood_run(uint32_t dst, unsigned int port, uint32_t base, unsigned int nsrc,
		     const struct net *rnd, unsigned int pps, unsigned int secs, int udp)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint64_t sent = 0, t0, end, x = 0x9e3779b97f4a7c15ULL ^ mono_ns();
	uint8_t pkt[44];
	size_t len = udp ? 44 : 40;
	int fd;

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		perror("raw socket");
		return 1;
	}
	to.sin_addr.s_addr = htonl(dst);
	t0 = mono_ns();
	end = t0 + (uint64_t)secs * 1000000000ULL;
	for (;;) {
		uint64_t now = mono_ns(), due = (now - t0) * pps / 1000000000ULL;

		if (now >= end)
			break;
		if (sent >= due) {
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
			continue;
		}
		while (sent < due) {
			uint32_t src = base + (uint32_t)(sent % nsrc), sum;
			uint16_t sport = (uint16_t)(1024 + (sent / nsrc) % 64000), c;
			uint8_t *ip = pkt, *th = pkt + 20, pseudo[12];

			if (rnd) {
				uint32_t host;

				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				host = (uint32_t)(x >> 32) & ~rnd->mask;
				if (!host || host == ~rnd->mask)
					host = 1;
				src = rnd->addr | host;
				sport = (uint16_t)(1024 + (uint32_t)x % 64000);
			}
			memset(pkt, 0, sizeof(pkt));
			ip[0] = 0x45;
			ip[3] = (uint8_t)len;
			ip[8] = 64;
			ip[9] = udp ? IPPROTO_UDP : IPPROTO_TCP;
			*(uint32_t *)(ip + 12) = htonl(src);
			*(uint32_t *)(ip + 16) = htonl(dst);
			*(uint16_t *)(th + 0) = htons(sport);
			*(uint16_t *)(th + 2) = htons((uint16_t)port);
			if (udp) {
				/* Length 24; checksum 0: none (RFC 768, IPv4). */
				*(uint16_t *)(th + 4) = htons(24);
				memcpy(th + 8, "ztagent-lab-udp.", 16);
			} else {
				*(uint32_t *)(th + 4) = htonl((uint32_t)(sent * 2654435761u));
				th[12] = 5 << 4;
				th[13] = 0x02; /* SYN */
				*(uint16_t *)(th + 14) = htons(64240);
				memcpy(pseudo, ip + 12, 8);
				pseudo[8] = 0;
				pseudo[9] = IPPROTO_TCP;
				pseudo[10] = 0;
				pseudo[11] = 20;
				sum = csum_add(csum_add(0, pseudo, sizeof(pseudo)), th, 20);
				c = csum_fold(sum);
				th[16] = (uint8_t)(c >> 8);
				th[17] = (uint8_t)c;
			}
			/* The kernel fills in the IP checksum (raw(7), IP_HDRINCL). */
			if (sendto(fd, pkt, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
				if (errno == ENOBUFS || errno == EAGAIN)
					break;
				perror("sendto");
				close(fd);
				return 1;
			}
			sent++;
		}
	}
	close(fd);
	printf("sent %llu\n", (unsigned long long)sent);
	return 0;
}

static int flood(int argc, char **argv)
{
	unsigned int port, nsrc, pps, secs;

	if (argc != 8)
		return 2;
	port = (unsigned int)atoi(argv[3]);
	nsrc = (unsigned int)atoi(argv[5]);
	pps = (unsigned int)atoi(argv[6]);
	secs = (unsigned int)atoi(argv[7]);
	if (!nsrc || !pps || !secs || port > 65535)
		return 2;
	return flood_run(ip4(argv[2]), port, ip4(argv[4]), nsrc, NULL, pps, secs, 0);
}

static int randflood(int argc, char **argv, int udp)
{
	unsigned int port, pps, secs;
	struct net n;

	if (argc != 7)
		return 2;
	port = (unsigned int)atoi(argv[3]);
	n = parse_net(argv[4]);
	pps = (unsigned int)atoi(argv[5]);
	secs = (unsigned int)atoi(argv[6]);
	/* A /31 or /32 has no host part to randomise. */
	if (!pps || !secs || port > 65535 || (~n.mask) < 3)
		return 2;
	/* Lab traffic only: the whole NET inside 198.18.0.0/15. */
	if ((n.mask & 0xfffe0000u) != 0xfffe0000u || (n.addr & 0xfffe0000u) != 0xc6120000u) {
		fprintf(stderr, "%s: %s is not inside 198.18.0.0/15\n", argv[1], argv[4]);
		return 1;
	}
	return flood_run(ip4(argv[2]), port, 0, 1, &n, pps, secs, udp);
}

static int fill(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	struct zt_ct_key *keys;
	struct zt_ct_val *vals;
	uint32_t ifindex, dst, base;
	unsigned int port, count;
	uint64_t now = boot_ns();
	int fd, r = 0;

	if (argc != 8)
		return 2;
	fd = bpf_obj_get(argv[2]);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	ifindex = (uint32_t)atoi(argv[3]);
	dst = htonl(ip4(argv[4]));
	port = (unsigned int)atoi(argv[5]);
	base = ip4(argv[6]);
	count = (unsigned int)atoi(argv[7]);
	keys = calloc(count, sizeof(*keys));
	vals = calloc(count, sizeof(*vals));
	if (!keys || !vals)
		return 1;
	for (unsigned int i = 0; i < count; i++) {
		uint32_t src = htonl(base + i % 250);

		keys[i].ifindex = ifindex;
		keys[i].family = 4;
		keys[i].proto = IPPROTO_TCP;
		memcpy(keys[i].saddr, &src, 4);
		memcpy(keys[i].daddr, &dst, 4);
		keys[i].sport = (uint16_t)(1024 + i / 250);
		keys[i].dport = (uint16_t)port;
		vals[i].first_ns = now;
		vals[i].d[0].last_ns = now;
		vals[i].d[1].last_ns = now;
		vals[i].d[0].packets = 3;
		vals[i].d[1].packets = 2;
		vals[i].d[0].bytes = 180;
		vals[i].d[1].bytes = 120;
		vals[i].dir = ZT_DIR_INGRESS;
		vals[i].verdict = ZT_VERDICT_ALLOW;
		vals[i].reason = ZT_REASON_RULE_ALLOW;
		vals[i].state = ZT_CT_ESTABLISHED;
		vals[i].flags_seen[0] = 0x12;
		vals[i].flags_seen[1] = 0x12;
	}
	for (unsigned int done = 0; done < count && r == 0;) {
		__u32 n = count - done > 65536 ? 65536 : count - done;

		r = bpf_map_update_batch(fd, keys + done, vals + done, &n, &opts);
		done += n;
	}
	if (r)
		fprintf(stderr, "batch update: %s\n", strerror(-r));
	free(keys);
	free(vals);
	close(fd);
	return r ? 1 : 0;
}

static int in_net(const struct zt_ct_key *k, struct net n)
{
	uint32_t a;

	memcpy(&a, k->saddr, 4);
	return k->family == 4 && (ntohl(a) & n.mask) == n.addr;
}

static int count(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	enum { BATCH = 8192 };
	static struct zt_ct_key keys[BATCH];
	static struct zt_ct_val vals[BATCH];
	uint64_t total = 0, f_tot = 0, f_half = 0, f_est = 0, p_tot = 0, p_est = 0, o_est = 0;
	struct net fl, pf;
	__u32 cursor = 0;
	int fd, first = 1, r;

	if (argc != 5)
		return 2;
	fd = bpf_obj_get(argv[2]);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	fl = parse_net(argv[3]);
	pf = parse_net(argv[4]);
	do {
		__u32 n = BATCH, next = 0;

		r = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &next, keys, vals, &n, &opts);
		if (r < 0 && r != -ENOENT) {
			fprintf(stderr, "batch lookup: %s\n", strerror(-r));
			return 1;
		}
		for (__u32 i = 0; i < n; i++) {
			int est = vals[i].state == ZT_CT_ESTABLISHED;

			total++;
			if (in_net(&keys[i], fl)) {
				f_tot++;
				f_est += est;
				f_half += keys[i].proto == IPPROTO_TCP &&
					  (vals[i].state == ZT_CT_NEW ||
					   vals[i].state == ZT_CT_SYN_RECV);
			} else if (in_net(&keys[i], pf)) {
				p_tot++;
				p_est += est;
			} else {
				o_est += est;
			}
		}
		cursor = next;
		first = 0;
	} while (r == 0);
	printf("total %llu\nflood_total %llu\nflood_half_open %llu\nflood_established %llu\n"
	       "fill_total %llu\nfill_established %llu\nother_established %llu\n",
	       (unsigned long long)total, (unsigned long long)f_tot, (unsigned long long)f_half,
	       (unsigned long long)f_est, (unsigned long long)p_tot, (unsigned long long)p_est,
	       (unsigned long long)o_est);
	close(fd);
	return 0;
}

static int read_full(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* One request on a new connection; 0 when the answer says ok. */
static int api_call(const char *sock, const char *op)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t req[64], hdr[4], *rep = NULL;
	size_t ol = strlen(op), n = 0;
	uint32_t len;
	int fd, r = -1;

	if (ol >= 24 || strlen(sock) >= sizeof(sa.sun_path))
		return -1;
	/* CBOR: a map of one, "op": op (both short text strings). */
	req[4 + n++] = 0xa1;
	req[4 + n++] = 0x62;
	req[4 + n++] = 'o';
	req[4 + n++] = 'p';
	req[4 + n++] = (uint8_t)(0x60 + ol);
	memcpy(req + 4 + n, op, ol);
	n += ol;
	req[0] = req[1] = req[2] = 0;
	req[3] = (uint8_t)n;
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, 4 + n) != (ssize_t)(4 + n) || read_full(fd, hdr, 4) < 0)
		goto out;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	if (len > (64u << 20) || !(rep = malloc(len ? len : 1)) || read_full(fd, rep, len) < 0)
		goto out;
	/* {"ok": true, ...}: the first key, as the daemon writes it. */
	r = len >= 5 && rep[1] == 0x62 && rep[2] == 'o' && rep[3] == 'k' && rep[4] == 0xf5 ? 0 : -1;
out:
	free(rep);
	if (fd >= 0)
		close(fd);
	return r;
}

static int api(int argc, char **argv)
{
	static const char *const ops[] = { "status", "block.list" };
	uint64_t end;
	FILE *out;
	int bad = 0;

	if (argc != 6)
		return 2;
	out = fopen(argv[5], "w");
	if (!out)
		return 1;
	end = mono_ns() + (uint64_t)atoi(argv[3]) * 1000000000ULL;
	for (unsigned int i = 0; mono_ns() < end; i++) {
		uint64_t t0 = mono_ns();
		int r = api_call(argv[2], ops[i & 1]);
		uint64_t t1 = mono_ns();

		struct timespec gap = { 0, atoi(argv[4]) * 1000L };

		if (r < 0)
			bad++;
		fprintf(out, "%s %llu\n", ops[i & 1], (unsigned long long)((t1 - t0) / 1000));
		nanosleep(&gap, NULL);
	}
	fclose(out);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	int r = 2;

	if (argc >= 2 && !strcmp(argv[1], "flood"))
		r = flood(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "randflood"))
		r = randflood(argc, argv, 0);
	else if (argc >= 2 && !strcmp(argv[1], "udprandflood"))
		r = randflood(argc, argv, 1);
	else if (argc >= 2 && !strcmp(argv[1], "fill"))
		r = fill(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "count"))
		r = count(argc, argv);
	else if (argc >= 2 && !strcmp(argv[1], "api"))
		r = api(argc, argv);
	if (r == 2)
		fprintf(stderr, "usage: see the top of tests/integration/synflood_tool.c\n");
	return r;
}
