// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_xdp: ns/packet of the XDP guard through BPF_PROG_TEST_RUN on its
 * pass and drop paths with 1k, 100k and 1M blocklist entries, side by side
 * in the same run with an empty XDP program (the floor) and Debian
 * xdp-tools' xdpfilt_dny_ip.o (a peer: exact addresses, 10k at most), on
 * the same packets. Maps are filled by the daemon's own blocklist module,
 * so the layout measured is the one the daemon writes. Source addresses are
 * drawn anew on every run so caches do not flatter the figures. Prints
 * ratios; asserts only that every verdict is right.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "blocklist.h"
#include "datapath.h"
#include "log.h"
#include "xdp_guard.skel.h"

#define NPKT 24 /* distinct packets per run: each test-run call costs ~0.1 s of set-up here */
#define REPEAT 20000
#define PEER_OBJ "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_ip.o"
#define PEER_MAX 10000
#define PKT_LEN 64

struct pkt {
	uint8_t b[PKT_LEN];
	uint32_t len;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: fast, seeded from getrandom per run. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void build(struct pkt *p, int family, const uint8_t *src)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->b, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01", 12);
	if (family == AF_INET) {
		uint8_t *ip = p->b + 14;

		p->b[12] = 0x08;
		ip[0] = 0x45;
		ip[3] = 20 + 8 + 10;
		ip[8] = 64;
		ip[9] = 17;
		memcpy(ip + 12, src, 4);
		memcpy(ip + 16, (uint8_t[]){ 198, 18, 0, 2 }, 4);
		ip[20] = 0x30;
		ip[22] = 0x35;
		ip[25] = 18;
		p->len = 14 + 20 + 8 + 10;
	} else {
		uint8_t *ip6 = p->b + 14;

		p->b[12] = 0x86;
		p->b[13] = 0xdd;
		ip6[0] = 0x60;
		ip6[5] = 8;
		ip6[6] = 17;
		ip6[7] = 64;
		memcpy(ip6 + 8, src, 16);
		memcpy(ip6 + 24, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, [15] = 2 }, 16);
		ip6[41] = 0x30;
		ip6[43] = 0x35;
		ip6[45] = 8;
		p->len = 14 + 40 + 8;
	}
}

/*
 * Entries, shaped like threat-intel lists (indicators are mostly hosts):
 * half IPv4 (94% /32, 5% /24, 1% /16) anywhere in 1.0.0.0 - 197.255.255.255;
 * half IPv6 (90% /128, 7% /64, 3% /48) in 2400::/6. The
 * pass path's sources lie in 198.18.0.0/15 and 2800::/6, outside all.
 */
static void gen_entries(struct zt_cidr *cs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct zt_cidr *c = &cs[i];
		uint64_t r = rnd(), pick = rnd() % 100;

		memset(c, 0, sizeof(*c));
		if (i % 2 == 0) {
			uint32_t a = (uint32_t)(r % (197u * 16777216u)) + 16777216u;

			c->family = AF_INET;
			c->prefixlen = pick < 94 ? 32 : pick < 99 ? 24 : 16;
			a = htonl(a);
			memcpy(c->addr, &a, 4);
		} else {
			uint64_t hi = rnd(), lo = rnd();

			c->family = AF_INET6;
			c->prefixlen = pick < 90 ? 128 : pick < 97 ? 64 : 48;
			hi = (hi & 0x03ffffffffffffffULL) | 0x2400000000000000ULL;
			for (int k = 0; k < 8; k++) {
				c->addr[k] = hi >> (56 - 8 * k);
				c->addr[8 + k] = lo >> (56 - 8 * k);
			}
		}
		zt_cidr_mask(c);
	}
}

static void gen_pass(struct pkt *pk)
{
	for (int i = 0; i < NPKT; i++) {
		uint8_t a[16];
		uint64_t r = rnd();

		if (i % 2 == 0) {
			uint8_t v4[4] = { 198, 18 + (r & 1), r >> 8, r >> 16 };

			build(&pk[i], AF_INET, v4);
		} else {
			/* Anywhere in 2800::/6, beside the entries' 2400::/6. */
			memcpy(a, &r, 8);
			a[0] = 0x28 | (a[0] & 0x03);
			r = rnd();
			memcpy(a + 8, &r, 8);
			build(&pk[i], AF_INET6, a);
		}
	}
}

/* Sources inside random entries (host bits random too); srcs keeps them for the peer. */
static void gen_drop(struct pkt *pk, const struct zt_cidr *cs, size_t n, struct zt_cidr *srcs)
{
	for (int i = 0; i < NPKT; i++) {
		const struct zt_cidr *c = &cs[rnd() % n];
		struct zt_cidr s = *c;
		size_t len = c->family == AF_INET ? 4 : 16;

		for (size_t k = 0; k < len; k++) {
			int bits = (int)c->prefixlen - (int)k * 8;
			uint8_t host = bits >= 8 ? 0 : bits <= 0 ? 0xff : (uint8_t)(0xff >> bits);

			s.addr[k] |= (uint8_t)rnd() & host;
		}
		s.prefixlen = len * 8;
		srcs[i] = s;
		build(&pk[i], c->family, s.addr);
	}
}

/* Average ns per packet over all packets; -1 when a verdict is not want. */
static double run(const char *name, int prog_fd, const struct pkt *pk, int want)
{
	double total = 0;

	for (int i = 0; i < NPKT; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pk[i].b, .data_size_in = pk[i].len,
			    .repeat = REPEAT);

		if (bpf_prog_test_run_opts(prog_fd, &o) < 0 || (int)o.retval != want) {
			fprintf(stderr,
				"bench_xdp: %s: packet %d (IPv%d): verdict %u, expected %d\n", name,
				i, pk[i].b[12] == 0x08 ? 4 : 6, o.retval, want);
			return -1;
		}
		total += o.duration;
	}
	return total / NPKT;
}

static int peer_miss(int fd, const struct pkt *pass)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pass[0].b, .data_size_in = pass[0].len,
		    .repeat = 1);

	bpf_prog_test_run_opts(fd, &o);
	return o.retval;
}

static int peer_hit(int fd, const struct pkt *pass)
{
	return peer_miss(fd, pass) == XDP_PASS ? XDP_DROP : XDP_PASS;
}

static int load_empty(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_empty", "GPL", insns, 2, NULL);
}

static struct bpf_object *load_peer(int *prog_fd, int *m4, int *m6)
{
	struct bpf_object *obj = bpf_object__open_file(PEER_OBJ, NULL);
	struct bpf_map *m;

	if (!obj)
		return NULL;
	bpf_object__for_each_map (m, obj)
		bpf_map__set_pin_path(m, NULL); /* pin nothing */
	if (bpf_object__load(obj) < 0) {
		bpf_object__close(obj);
		return NULL;
	}
	*prog_fd = bpf_program__fd(bpf_object__next_program(obj, NULL));
	*m4 = bpf_map__fd(bpf_object__find_map_by_name(obj, "filter_ipv4"));
	*m6 = bpf_map__fd(bpf_object__find_map_by_name(obj, "filter_ipv6"));
	return obj;
}

/* xdp-filter's deny list: exact source addresses, flag bit 0 = match on source. */
static int fill_peer(int m4, int m6, const struct zt_cidr *srcs, int n)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v = calloc(ncpu, sizeof(*v));

	for (int c = 0; c < ncpu; c++)
		v[c] = 1;
	for (int i = 0; i < n && i < PEER_MAX; i++) {
		int r = bpf_map_update_elem(srcs[i].family == AF_INET ? m4 : m6, srcs[i].addr, v,
					    BPF_ANY);
		if (r < 0) {
			free(v);
			return r;
		}
	}
	free(v);
	return 0;
}

int main(int argc, char **argv)
{
	static const size_t all_sizes[] = { 1000, 100000, 1000000 };
	const size_t *sizes = all_sizes;
	size_t nsizes = ZT_ARRAY_SIZE(all_sizes), one;
	struct pkt *pass = calloc(NPKT, sizeof(*pass)), *drop = calloc(NPKT, sizeof(*drop));
	struct zt_cidr *srcs = calloc(NPKT, sizeof(*srcs));
	int empty_fd, peer_fd = -1, m4 = -1, m6 = -1, bad = 0;
	struct bpf_object *peer;

	zt_log_set_level(ZT_LOG_ERROR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || !rng_state)
		rng_state = (uint64_t)time(NULL) | 1;
	empty_fd = load_empty();
	if (empty_fd < 0) {
		fprintf(stderr, "bench_xdp: cannot load the empty program: %s (run as root)\n",
			strerror(errno));
		return 1;
	}
	peer = load_peer(&peer_fd, &m4, &m6);
	if (!peer)
		fprintf(stderr, "bench_xdp: cannot load %s; the peer column stays empty\n",
			PEER_OBJ);
	printf("XDP guard, BPF_PROG_TEST_RUN: %d packets with fresh random sources per run, %d repeats each\n",
	       NPKT, REPEAT);
	printf("entries: half IPv4 (94%% /32, 5%% /24, 1%% /16), half IPv6 (90%% /128, 7%% /64, 3%% /48)\n\n");
	printf("%-9s %-5s %9s %9s %9s %9s %11s %11s\n", "entries", "path", "empty", "guard",
	       "xdp-flt", "load_s", "guard/empty", "guard/peer");

	if (argc > 1) { /* bench_xdp N: one size only */
		one = strtoul(argv[1], NULL, 10);
		sizes = &one;
		nsizes = 1;
	}
	for (size_t si = 0; si < nsizes; si++) {
		size_t n = sizes[si], added = 0, replaced = 0;
		struct zt_cidr *cs = calloc(n, sizeof(*cs));
		struct zt_datapath dp = { .ncpus = libbpf_num_possible_cpus() };
		struct zt_blocklist *bl = NULL;
		struct zt_block_req req = { .reason = ZT_BR_THREAT_INTEL, .source = ZT_BS_FEED };
		struct xdp_guard *skel = xdp_guard__open();
		struct bpf_map *m;
		char err[512];
		double t0, load_s;
		int guard_fd;

		if (!skel || !cs)
			return 1;
		bpf_object__for_each_map (m, skel->obj)
			bpf_map__set_pin_path(m, NULL);
		bpf_map__set_max_entries(skel->maps.blocklist_v4, 2 * n + 1024);
		bpf_map__set_max_entries(skel->maps.blocklist_v6, 2 * n + 1024);
		bpf_map__set_max_entries(skel->maps.events, 1 << 20);
		skel->rodata->cfg_event_rate = 1000;
		if (xdp_guard__load(skel) < 0) {
			fprintf(stderr, "bench_xdp: cannot load the guard: %s\n", strerror(errno));
			return 1;
		}
		guard_fd = bpf_program__fd(skel->progs.xdp_guard);
		dp.xdp = skel;
		if (zt_blocklist_init(&bl, &dp, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_xdp: %s\n", err);
			return 1;
		}
		gen_entries(cs, n);
		t0 = now_s();
		for (size_t off = 0; off < n; off += 262144) {
			size_t k = n - off < 262144 ? n - off : 262144, a, r;

			if (zt_blocklist_import(bl, cs + off, k, &req, &a, &r, err, sizeof(err)) <
			    0) {
				fprintf(stderr, "bench_xdp: import: %s\n", err);
				return 1;
			}
			added += a;
			replaced += r;
		}
		load_s = now_s() - t0;
		gen_pass(pass);
		gen_drop(drop, cs, n, srcs);
		if (peer) {
			/* The peer holds the exact sources of the drop packets (its limit: 10k). */
			int r = fill_peer(m4, m6, srcs, NPKT);

			if (r < 0) {
				fprintf(stderr, "bench_xdp: cannot fill xdp-filter's maps: %s\n",
					strerror(-r));
				return 1;
			}
		}
		for (int path = 0; path < 2; path++) {
			const struct pkt *pk = path ? drop : pass;
			double e = run("empty", empty_fd, pk, XDP_PASS);
			double g = run("guard", guard_fd, pk, path ? XDP_DROP : XDP_PASS);
			/*
			 * Which verdict xdp-filter gives a listed address depends on how the
			 * variant was built (deny list or allow list): it is learnt from the
			 * first unlisted packet, and every packet must then agree with it.
			 */
			int want_p = path ? peer_hit(peer_fd, pass) : peer_miss(peer_fd, pass);
			double p = peer ? run("xdp-filter", peer_fd, pk, want_p) : 0;

			if (e < 0 || g < 0 || (peer && p < 0)) {
				bad = 1;
				continue;
			}
			printf("%-9zu %-5s %8.1fns %8.1fns %8.1fns %9.3f %10.2fx %10.2fx\n", n,
			       path ? "drop" : "pass", e, g, p, path ? 0.0 : load_s, g / e,
			       peer ? g / p : 0.0);
		}
		if (added + replaced != n)
			fprintf(stderr, "bench_xdp: %zu added + %zu replaced != %zu\n", added,
				replaced, n);
		zt_blocklist_stop(bl);
		xdp_guard__destroy(skel);
		if (peer) {
			/* Empty the peer's maps for the next size. */
			uint8_t key[16];

			while (bpf_map_get_next_key(m4, NULL, key) == 0)
				bpf_map_delete_elem(m4, key);
			while (bpf_map_get_next_key(m6, NULL, key) == 0)
				bpf_map_delete_elem(m6, key);
		}
		free(cs);
	}
	printf("\nxdp-flt: Debian's xdpfilt_dny_ip.o holding the drop path's exact source addresses\n"
	       "(listed / unlisted verdicts checked for every packet).\n");
	printf("load_s: the daemon's import path (mirror, prefilter, batch map updates) for that many entries.\n"
	       "targets: pass path at 1M within 3x the empty program and no slower than xdp-filter;\n"
	       "         1M entries loaded in under 2 s (end to end through ztctl: see below).\n");
	if (peer)
		bpf_object__close(peer);
	close(empty_fd);
	free(pass);
	free(drop);
	free(srcs);
	return bad;
}
