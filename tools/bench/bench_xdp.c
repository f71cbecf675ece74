// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_xdp: what the XDP guard costs per packet, through BPF_PROG_TEST_RUN.
 *
 * For 1k, 100k and 1M blocklist entries, on the pass path and on the drop
 * path, side by side in one run and on the same packets:
 *   - an empty XDP program (r0 = XDP_PASS; exit): the floor;
 *   - Debian xdp-tools' xdpfilt_alw_ip.o (its deny list), a peer that matches exact
 *     addresses only, holding 10k IPv4 and 10k IPv6 addresses (its maximum);
 *   - the guard with its maps laid out as the daemon writes them (hashed
 *     lengths, prefix set, prefilter);
 *   - the same guard with the prefilter switched off, which shows what the
 *     per-length hash lookups cost when a source falls on a set filter bit;
 *   - today's guard: the object built from commit fe7a5f7, before the
 *     activity stage (tools/bench/baseline/, -b), with the same entries;
 *   - the guard with its activity stage on (sketches, per-source limits
 *     syn 2000 / udp 20000 / icmp 500 a second, per-destination limits,
 *     signals, probes; the daemon's defaults otherwise) and with it off.
 * Every call's verdict is checked; a wrong one makes the exit code 1.
 * Entries are half IPv4 (70% /32, 20% /24, 5% /16, 5% over /30 /28 /22 /20)
 * and half IPv6 (60% /128, 25% /64, 15% /48), all distinct.
 *
 * After the largest size, a whole feed is replaced (1M entries added, the
 * old ones deleted, with batch calls) while another thread runs the pass
 * path, and the slowest calls are printed beside those of an idle run.
 *
 * The maps are filled here with bpf_map_update_batch (no daemon code), in
 * the layout of include/ztagent.h, so the load time printed is the kernel's
 * floor for that many entries. Nothing is pinned.
 *
 * Each call runs one packet a few times (warm) and then, in a second pass,
 * once (first touch); each packet has its own random source, so the hash
 * buckets a call reads are not the ones the previous call left in cache.
 * The targets are read from that pass path. A second pass path, "few", sends
 * the same packets from FEW_SOURCES sources taken in turn (pass[i %
 * FEW_SOURCES]): a node's steady state of a few hundred active peers, whose
 * sketch cells stay in cache from one of their packets to the next, where
 * the random sources make every first touch a miss.
 *
 * BPF_PROG_TEST_RUN puts an unattached XDP program into the kernel's XDP
 * dispatcher and takes it out again on every call, and each change waits for
 * an RCU grace period (tens of ms here). So the programs are first attached,
 * in generic mode, to interfaces of a network namespace of our own, which
 * keeps them in the dispatcher; no packet is ever sent there, and the
 * namespace goes away with the process.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ztagent.h"
#include "guard/activity.h"
#include "guard/datapath.h"
#include "xdp_guard.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MAP_MAX 2097152 /* blocklist_v4/v6 max_entries, as a daemon sized for 2M */
/*
 * xdp-filter's deny list for IP addresses. Its names follow the policy for
 * UNMATCHED packets: xdpfilt_alw_ip.o is `xdp-filter load --policy allow`
 * (the default: listed addresses are dropped, the rest pass), while
 * xdpfilt_dny_ip.o is `--policy deny`, an allowlist that drops every packet
 * it does not list. Both run the same lookups; only the first is a peer.
 */
#define PEER_OBJ "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_ip.o"
#define PEER_MAX 10000 /* xdp-filter's filter_ipv4 / filter_ipv6 max_entries */
#define PEER_FLAG_SRC 1ULL /* xdp-filter's MAP_FLAG_SRC: match on the source address */
#define PKT_LEN 64
#define STALL_REPEAT 8
#define STALL_CAP (8u << 20)

struct pkt {
	__u8 b[PKT_LEN];
	__u32 len;
};

/* A blocklist entry: sorted by family, then length, then address. */
struct ent {
	__u8 fam; /* 4 or 6 */
	__u8 plen;
	__u8 addr[16]; /* network byte order, host bits zero */
};

struct eset {
	struct ent *e; /* sorted; IPv4 first */
	size_t n, n4;
	__u8 lens4[33], lens6[129]; /* 1 where a length is in use */
};

/* Length mix per family, in tenths of a percent. */
struct share {
	__u8 plen;
	__u16 permille;
};

static const struct share mix4[] = {
	{ 32, 700 }, { 24, 200 }, { 16, 50 }, { 30, 13 }, { 28, 13 }, { 22, 12 }, { 20, 12 },
};

static const struct share mix6[] = {
	{ 128, 600 },
	{ 64, 250 },
	{ 48, 150 },
};

/* P_GUARD_OFF and P_GUARD_NF are P_GUARD's program with a setting changed for the call. */
enum { P_EMPTY, P_PEER, P_BASE, P_GUARD, P_GUARD_OFF, P_GUARD_NF, NPROG };
#define NHOLD (P_GUARD + 1) /* programs of their own, each held on an interface */

static const char *const prog_name[NPROG] = {
	"empty program", "xdp-filter (10k)",	"today's guard",
	"guard",	 "guard, activity off", "guard, filter off",
};

#define BASE_OBJ "tools/bench/baseline/xdp_guard-fe7a5f7.bpf.o"

struct res {
	double warm[3]; /* sum of ns/pkt: all, IPv4, IPv6 */
	double cold;
	size_t n[3];
};

static struct {
	int npkt, repeat, stall, pause_us;
	size_t sizes[8], nsizes, chunk;
	const char *base;
} opt = { .npkt = 4096, .repeat = 64, .stall = 1, .base = BASE_OBJ };

static uint64_t rng_state;
static int hold_ifindex[NHOLD]; /* where each program is attached; 0 = not held */
static int bad; /* a verdict was wrong */

static uint64_t rnd(void)
{
	/* xorshift64*, seeded from getrandom. */
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

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_xdp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		die("out of memory");
	return p;
}

/* libbpf: warnings only, without the peer's sections libbpf 1.1 does not know. */
static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];

	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (strstr(buf, "unrecognized data section") || strstr(buf, "unrecognized ELF section"))
		return 0;
	return fputs(buf, stderr);
}

/* ---- addresses and entry sets ---- */

static void mask_addr(__u8 *a, int nbytes, int plen)
{
	for (int k = 0; k < nbytes; k++) {
		int bits = plen - 8 * k;

		a[k] &= bits >= 8 ? 0xff : bits <= 0 ? 0 : (__u8)(0xff << (8 - bits));
	}
}

/* IPv4 entries and pass sources: 1.0.0.0 - 197.255.255.255; IPv6: 2400::/6. */
static void rand_addr(int fam, __u8 *a)
{
	uint64_t r = rnd();

	memset(a, 0, 16);
	if (fam == 4) {
		__u32 v = htonl(0x01000000u + (__u32)(r % (197ull << 24)));

		memcpy(a, &v, 4);
		return;
	}
	for (int k = 0; k < 8; k++)
		a[k] = r >> (56 - 8 * k);
	r = rnd();
	for (int k = 0; k < 8; k++)
		a[8 + k] = r >> (56 - 8 * k);
	a[0] = 0x24 | (a[0] & 0x03);
}

static int ent_cmp(const void *pa, const void *pb)
{
	return memcmp(pa, pb, sizeof(struct ent));
}

/* n distinct random entries of one family and length at out[0..n). */
static void gen_len(struct ent *out, size_t n, int fam, int plen)
{
	size_t have = 0;

	while (have < n) {
		size_t m = 1;

		for (size_t i = have; i < n; i++) {
			out[i].fam = fam;
			out[i].plen = plen;
			rand_addr(fam, out[i].addr);
			mask_addr(out[i].addr, fam == 4 ? 4 : 16, plen);
		}
		qsort(out, n, sizeof(*out), ent_cmp);
		for (size_t i = 1; i < n; i++)
			if (ent_cmp(&out[i], &out[m - 1]))
				out[m++] = out[i];
		have = m;
	}
}

static void gen_fam(struct ent *out, size_t n, int fam, const struct share *mix, size_t nmix)
{
	size_t done = 0;

	for (size_t i = 0; i < nmix; i++) {
		size_t k = i + 1 == nmix ? n - done : n * mix[i].permille / 1000;

		gen_len(out + done, k, fam, mix[i].plen);
		done += k;
	}
	qsort(out, n, sizeof(*out), ent_cmp);
}

/* n distinct entries, half IPv4 and half IPv6, in the mix above. */
static void gen_set(struct eset *s, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->e = xcalloc(n, sizeof(*s->e));
	s->n = n;
	s->n4 = n / 2;
	gen_fam(s->e, s->n4, 4, mix4, ARRAY_SIZE(mix4));
	gen_fam(s->e + s->n4, n - s->n4, 6, mix6, ARRAY_SIZE(mix6));
	for (size_t i = 0; i < n; i++) {
		if (s->e[i].fam == 4)
			s->lens4[s->e[i].plen] = 1;
		else
			s->lens6[s->e[i].plen] = 1;
	}
}

/* 1 when some entry of s covers the address. */
static int covered(const struct eset *s, int fam, const __u8 *addr)
{
	const __u8 *lens = fam == 4 ? s->lens4 : s->lens6;
	int max = fam == 4 ? 32 : 128;

	for (int len = max; len >= 0; len--) {
		struct ent k = { .fam = fam, .plen = len };

		if (!lens[len])
			continue;
		memcpy(k.addr, addr, fam == 4 ? 4 : 16);
		mask_addr(k.addr, fam == 4 ? 4 : 16, len);
		if (bsearch(&k, s->e, s->n, sizeof(k), ent_cmp))
			return 1;
	}
	return 0;
}

/* ---- packets ---- */

static void build(struct pkt *p, int fam, const __u8 *src)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->b, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01", 12);
	if (fam == 4) {
		__u8 *ip = p->b + 14;

		p->b[12] = 0x08;
		ip[0] = 0x45;
		ip[3] = 20 + 8 + 10; /* total length */
		ip[8] = 64;
		ip[9] = 17; /* UDP */
		memcpy(ip + 12, src, 4);
		memcpy(ip + 16, (__u8[]){ 198, 18, 0, 2 }, 4);
		ip[20] = 0x30; /* 12345 -> 53 */
		ip[21] = 0x39;
		ip[23] = 53;
		ip[25] = 18;
		p->len = 14 + 20 + 8 + 10;
	} else {
		__u8 *ip6 = p->b + 14;

		p->b[12] = 0x86;
		p->b[13] = 0xdd;
		ip6[0] = 0x60;
		ip6[5] = 8 + 10; /* payload length */
		ip6[6] = 17;
		ip6[7] = 64;
		memcpy(ip6 + 8, src, 16);
		memcpy(ip6 + 24, (__u8[]){ 0x20, 0x01, 0x0d, 0xb8, [15] = 2 }, 16);
		ip6[40] = 0x30;
		ip6[41] = 0x39;
		ip6[43] = 53;
		ip6[45] = 18;
		p->len = 14 + 40 + 8 + 10;
	}
}

static int pkt_fam(const struct pkt *p)
{
	return p->b[12] == 0x08 ? 4 : 6;
}

static const __u8 *pkt_src(const struct pkt *p)
{
	return p->b + 14 + (pkt_fam(p) == 4 ? 12 : 8);
}

/* Pass path: random sources in the entries' space that no entry of a or b covers. */
static void gen_pass(struct pkt *pk, const struct eset *a, const struct eset *b)
{
	for (int i = 0; i < opt.npkt; i++) {
		int fam = i % 2 ? 6 : 4;
		__u8 s[16];

		do
			rand_addr(fam, s);
		while (covered(a, fam, s) || (b && covered(b, fam, s)));
		build(&pk[i], fam, s);
	}
}

/* The "few" path: the first FEW_SOURCES pass packets, in turn. */
#define FEW_SOURCES 256
static int few_n(void)
{
	return opt.npkt < FEW_SOURCES ? opt.npkt : FEW_SOURCES;
}

static void gen_few(struct pkt *pk, const struct pkt *pass)
{
	int n = few_n();

	for (int i = 0; i < opt.npkt; i++)
		pk[i] = pass[i % n];
}

/* Drop path: a random source inside a random entry of each family, alternately. */
static void gen_drop(struct pkt *pk, const struct eset *s)
{
	for (int i = 0; i < opt.npkt; i++) {
		int fam = i % 2 ? 6 : 4;
		size_t n = fam == 4 ? s->n4 : s->n - s->n4;
		const struct ent *e = &s->e[(fam == 4 ? 0 : s->n4) + rnd() % n];
		__u8 a[16], h[16];

		rand_addr(fam, h);
		memcpy(a, e->addr, 16);
		for (int k = 0; k < 16; k++) {
			__u8 m = 0xff;

			mask_addr(&m, 1, e->plen - 8 * k);
			a[k] |= h[k] & (__u8)~m;
		}
		build(&pk[i], fam, a);
	}
}

/* ---- programs ---- */

/*
 * A network namespace of our own with lo and one veth pair, to hold the
 * programs in the XDP dispatcher (see the top of the file). On failure the
 * programs run unattached: right but slow, so fewer packets.
 */
static void hold_init(void)
{
	static const char *const names[NHOLD] = { "lo", "zbench0", "zbench1", "zbench2" };

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "bench_xdp: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return;
	}
	if (system("ip link add zbench0 type veth peer name zbench1 >/dev/null 2>&1") != 0 ||
	    system("ip link add zbench2 type veth peer name zbench3 >/dev/null 2>&1") != 0)
		fprintf(stderr, "bench_xdp: cannot create veth pairs in a private namespace\n");
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		hold_ifindex[i] = if_nametoindex(names[i]);
}

/* Attaches fd (replacing what was there) to the slot's interface. */
static void hold(int slot, int fd)
{
	int ifindex = hold_ifindex[slot];

	if (ifindex && bpf_xdp_attach(ifindex, fd, XDP_FLAGS_SKB_MODE, NULL) < 0) {
		fprintf(stderr, "bench_xdp: cannot attach %s in the private namespace: %s\n",
			prog_name[slot], strerror(errno));
		hold_ifindex[slot] = 0;
	}
}

static void unhold(int slot)
{
	if (hold_ifindex[slot])
		bpf_xdp_detach(hold_ifindex[slot], XDP_FLAGS_SKB_MODE, NULL);
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
	struct bpf_program *p;
	struct bpf_map *m;

	if (!obj)
		return NULL;
	bpf_object__for_each_map (m, obj)
		bpf_map__set_pin_path(m, NULL); /* pin nothing */
	p = bpf_object__next_program(obj, NULL);
	if (!p || bpf_object__load(obj) < 0) {
		bpf_object__close(obj);
		return NULL;
	}
	*prog_fd = bpf_program__fd(p);
	*m4 = bpf_object__find_map_fd_by_name(obj, "filter_ipv4");
	*m6 = bpf_object__find_map_fd_by_name(obj, "filter_ipv6");
	if (*prog_fd < 0 || *m4 < 0 || *m6 < 0) {
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

static void peer_clear(int fd)
{
	__u8 key[16];

	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		bpf_map_delete_elem(fd, key);
}

/*
 * The peer's deny lists, full: the drop packets' exact sources first, then
 * addresses of other entries until each family holds PEER_MAX.
 */
static void peer_fill(int m4, int m6, const struct pkt *drop, const struct eset *s)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *v = xcalloc(ncpu, sizeof(*v));
	size_t n[2] = { 0, 0 };

	for (int c = 0; c < ncpu; c++)
		v[c] = PEER_FLAG_SRC;
	peer_clear(m4);
	peer_clear(m6);
	for (int i = 0; i < opt.npkt; i++) {
		int fam = pkt_fam(&drop[i]);

		if (n[fam == 6] < PEER_MAX &&
		    bpf_map_update_elem(fam == 4 ? m4 : m6, pkt_src(&drop[i]), v, BPF_NOEXIST) == 0)
			n[fam == 6]++;
	}
	for (size_t tries = 0; (n[0] < PEER_MAX || n[1] < PEER_MAX) && tries < 1000000; tries++) {
		const struct ent *e = &s->e[rnd() % s->n];
		int f = e->fam == 6;

		if (n[f] < PEER_MAX &&
		    bpf_map_update_elem(f ? m6 : m4, e->addr, v, BPF_NOEXIST) == 0)
			n[f]++;
	}
	free(v);
}

/* A guard: the current one (its skeleton) or today's (an object file), maps found by name. */
struct guard {
	struct bpf_object *obj;
	struct xdp_guard *skel; /* NULL for today's */
	int prog, v4, v6, prefixes, filter, cfg;
	struct zt_prefix_set ps;
	struct zt_guard_cfg on; /* the activity settings of the "guard" rows */
};

static int guard_map(struct bpf_object *obj, const char *name)
{
	int fd = bpf_object__find_map_fd_by_name(obj, name);

	if (fd < 0)
		die("the guard object has no map %s", name);
	return fd;
}

/* The guard's maps and program, once loaded. */
static void guard_fds(struct guard *g)
{
	struct bpf_program *p = bpf_object__find_program_by_name(g->obj, "xdp_guard");

	if (!p)
		die("the guard object has no program xdp_guard");
	g->prog = bpf_program__fd(p);
	g->v4 = guard_map(g->obj, "blocklist_v4");
	g->v6 = guard_map(g->obj, "blocklist_v6");
	g->prefixes = guard_map(g->obj, "blocklist_prefixes");
	g->filter = guard_map(g->obj, "blocklist_filter");
	g->cfg = g->skel ? guard_map(g->obj, "guard_cfg") : -1;
}

static void guard_prepare(struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map (m, obj)
		bpf_map__set_pin_path(m, NULL); /* never pin */
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "blocklist_v4"), MAP_MAX);
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "blocklist_v6"), MAP_MAX);
}

/* The current guard, its activity stage set up as a daemon with ratelimit.* configured would. */
static void guard_load(struct guard *g)
{
	struct zt_ratelimit_cfg rl = {
		.src = { [ZT_RL_SYN] = 2000, [ZT_RL_UDP] = 20000, [ZT_RL_ICMP] = 500 },
		.dst = { [ZT_RL_ALL] = 10000000,
			 [ZT_RL_SYN] = 100000,
			 [ZT_RL_UDP] = 10000000,
			 [ZT_RL_ICMP] = 100000 },
	};
	__u32 zero = 0, hz;

	memset(g, 0, sizeof(*g));
	g->skel = xdp_guard__open();
	if (!g->skel)
		die("cannot open the guard's skeleton: %s", strerror(errno));
	g->obj = g->skel->obj;
	guard_prepare(g->obj);
	/* As the daemon loads it; BENCH_XDP_FRAGS=0: one buffer only. */
	zt_datapath_xdp_features(
		g->skel, !(getenv("BENCH_XDP_FRAGS") && !strcmp(getenv("BENCH_XDP_FRAGS"), "0")));
	if (xdp_guard__load(g->skel) < 0)
		die("cannot load the guard: %s", strerror(errno));
	guard_fds(g);
	if (zt_kernel_hz_config(&hz))
		hz = 250;
	zt_guard_cfg_defaults(&g->on, hz);
	g->on.seed = rnd();
	g->on.cookie_key[0] = rnd();
	g->on.cookie_key[1] = rnd();
	g->on.flags |= ZT_GCF_PROBES;
	if (zt_guard_cfg_set_ratelimits(&g->on, &rl) ||
	    bpf_map_update_elem(g->cfg, &zero, &g->on, BPF_ANY))
		die("cannot write guard_cfg: %s", strerror(errno));
}

/* The activity stage on (as set up) or off, for the next calls. */
static void guard_activity(struct guard *g, int on)
{
	struct zt_guard_cfg c = g->on;
	__u32 zero = 0;

	if (!on)
		c.flags &= ~ZT_GCF_ACTIVITY;
	if (bpf_map_update_elem(g->cfg, &zero, &c, BPF_ANY))
		die("cannot write guard_cfg: %s", strerror(errno));
}

/* Today's guard from its object file; NULL (and a note) when it cannot be loaded. */
static struct guard *base_load(void)
{
	struct guard *g = xcalloc(1, sizeof(*g));

	g->obj = bpf_object__open_file(opt.base, NULL);
	if (!g->obj) {
		fprintf(stderr, "bench_xdp: cannot open %s: %s: no rows for today's guard\n",
			opt.base, strerror(errno));
		free(g);
		return NULL;
	}
	guard_prepare(g->obj);
	if (bpf_object__load(g->obj) < 0) {
		fprintf(stderr, "bench_xdp: cannot load %s: %s: no rows for today's guard\n",
			opt.base, strerror(errno));
		bpf_object__close(g->obj);
		free(g);
		return NULL;
	}
	guard_fds(g);
	return g;
}

static void guard_close(struct guard *g)
{
	if (g->skel)
		xdp_guard__destroy(g->skel);
	else
		bpf_object__close(g->obj);
}

static int publish(struct guard *g, int filter_on)
{
	struct zt_prefix_set ps = g->ps;
	__u32 zero = 0;

	if (!filter_on)
		ps.filter_v4_on = ps.filter_v6_on = 0;
	return bpf_map_update_elem(g->prefixes, &zero, &ps, BPF_ANY);
}

/* The prefix set of the union of sets (lengths longest first), as the daemon writes it. */
static void prefix_set(struct guard *g, const struct eset *a, const struct eset *b)
{
	struct zt_prefix_set *ps = &g->ps;
	int short4 = 0, short6 = 0;

	memset(ps, 0, sizeof(*ps));
	for (int len = 32; len >= 0; len--)
		if (a->lens4[len] || (b && b->lens4[len])) {
			if (ps->v4_count < ZT_MAX_HASHED_LENS)
				ps->v4_lens[ps->v4_count++] = len;
			short4 |= len < ZT_FILTER_V4_MIN_PLEN;
		}
	for (int len = 128; len >= 0; len--)
		if (a->lens6[len] || (b && b->lens6[len])) {
			if (ps->v6_count < ZT_MAX_HASHED_LENS)
				ps->v6_lens[ps->v6_count++] = len;
			short6 |= len < ZT_FILTER_V6_MIN_PLEN;
		}
	ps->filter_v4_on = !short4;
	ps->filter_v6_on = !short6;
}

static void filter_set(__u64 *w, size_t bit)
{
	w[bit >> 6] |= 1ULL << (bit & 63);
}

/* Adds the prefilter bits of every entry of s (include/ztagent.h, src/guard/blocklist.c). */
static void filter_add(__u64 *w, const struct eset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct ent *e = &s->e[i];

		if (e->fam == 4) {
			__u32 span, first;

			if (e->plen < ZT_FILTER_V4_MIN_PLEN)
				continue;
			if (e->plen >= ZT_FILTER_V4_SPLIT) {
				__u32 net = ((__u32)e->addr[0] << 16 | (__u32)e->addr[1] << 8 |
					     e->addr[2]);

				span = e->plen >= 24 ? 1 : 1u << (24 - e->plen);
				net &= ~(span - 1);
				for (__u32 j = 0; j < span; j++)
					filter_set(w, zt_filter_v4_hash(net + j));
				continue;
			}
			span = 1u << (16 - e->plen);
			first = zt_filter_v16_bucket(e->addr) & ~(span - 1);
			for (__u32 b = first; b < first + span; b++)
				filter_set(w, (size_t)ZT_FILTER_V16_BASE * 64 + b);
		} else if (e->plen >= ZT_FILTER_V6_MIN_PLEN) {
			filter_set(w,
				   (size_t)ZT_FILTER_V6_BASE * 64 + zt_filter_v6_bucket(e->addr));
		}
	}
}

static int filter_bit(const __u64 *w, size_t bit)
{
	return !!(w[bit >> 6] & (1ULL << (bit & 63)));
}

/* Percentage of the packets of a family that the prefilter lets through to the hash lookups. */
static double filter_through(const __u64 *w, const struct pkt *pk, int fam)
{
	size_t n = 0, through = 0;

	for (int i = 0; i < opt.npkt; i++) {
		const __u8 *a = pkt_src(&pk[i]);

		if (pkt_fam(&pk[i]) != fam)
			continue;
		n++;
		if (fam == 4)
			through += filter_bit(w, zt_filter_v4_bucket(a)) ||
				   filter_bit(w, (size_t)ZT_FILTER_V16_BASE * 64 +
							 zt_filter_v16_bucket(a));
		else
			through += filter_bit(w, (size_t)ZT_FILTER_V6_BASE * 64 +
							 zt_filter_v6_bucket(a));
	}
	return n ? 100.0 * through / n : 0;
}

static int batch_update(int fd, const void *keys, const void *vals, __u32 n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
	__u32 cnt = n;
	int r = bpf_map_update_batch(fd, keys, vals, &cnt, &o);

	if (r == 0 && cnt != n)
		r = -EIO;
	return r;
}

static int filter_write(struct guard *g, const __u64 *w)
{
	__u32 *keys = xcalloc(ZT_FILTER_WORDS, sizeof(*keys));
	int r;

	for (__u32 i = 0; i < ZT_FILTER_WORDS; i++)
		keys[i] = i;
	r = batch_update(g->filter, keys, w, ZT_FILTER_WORDS);
	free(keys);
	return r;
}

/* Map keys and values of a set, per family, ready for the batch calls. */
struct kv {
	struct zt_ip4_key *k4;
	struct zt_ip6_key *k6;
	struct zt_block_entry *v;
	size_t n4, n6;
};

static void kv_build(struct kv *kv, const struct ent *e, size_t n)
{
	struct zt_block_entry val = {
		.created_unix = time(NULL),
		.reason = ZT_BR_THREAT_INTEL,
		.source = ZT_BS_FEED,
		.feed_id = 1,
	};

	memset(kv, 0, sizeof(*kv));
	kv->k4 = xcalloc(n, sizeof(*kv->k4));
	kv->k6 = xcalloc(n, sizeof(*kv->k6));
	kv->v = xcalloc(n, sizeof(*kv->v));
	for (size_t i = 0; i < n; i++) {
		kv->v[i] = val;
		if (e[i].fam == 4) {
			kv->k4[kv->n4].prefixlen = e[i].plen;
			memcpy(kv->k4[kv->n4++].addr, e[i].addr, 4);
		} else {
			kv->k6[kv->n6].prefixlen = e[i].plen;
			memcpy(kv->k6[kv->n6++].addr, e[i].addr, 16);
		}
	}
}

static void kv_free(struct kv *kv)
{
	free(kv->k4);
	free(kv->k6);
	free(kv->v);
}

/* ---- measuring ---- */

static int run1(int fd, const struct pkt *p, int repeat, __u32 *dur)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = p->len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o) < 0)
		return -errno;
	*dur = o.duration;
	return (int)o.retval;
}

static const char *verdict_name(int v)
{
	return v == XDP_PASS ? "XDP_PASS" : v == XDP_DROP ? "XDP_DROP" : "other";
}

/* Runs and checks one call; returns its ns/pkt, or -1 after reporting a wrong verdict. */
static double call(int prog, int fd, const struct pkt *p, int idx, int repeat, int want,
		   const char *path)
{
	__u32 dur = 0;
	int v = run1(fd, p, repeat, &dur);

	if (v == want)
		return dur;
	if (bad++ < 10) {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(pkt_fam(p) == 4 ? AF_INET : AF_INET6, pkt_src(p), a, sizeof(a));
		if (v < 0)
			fprintf(stderr, "bench_xdp: %s, %s path, packet %d (from %s): %s\n",
				prog_name[prog], path, idx, a, strerror(-v));
		else
			fprintf(stderr,
				"bench_xdp: %s, %s path, packet %d (from %s): %s (%d), expected %s\n",
				prog_name[prog], path, idx, a, verdict_name(v), v,
				verdict_name(want));
	}
	return -1;
}

/*
 * Warm: packet by packet, every program in turn on the same packet (so drift
 * hits all alike), each call repeated opt.repeat times. First touch: program
 * by program over all packets, once each, so no program reads buckets that
 * another one just brought into cache.
 */
/* The setting a row changes on P_GUARD's program, on and back off. */
static void row_setting(struct guard *g, int p, int on)
{
	if (p == P_GUARD_NF)
		publish(g, !on);
	else if (p == P_GUARD_OFF)
		guard_activity(g, !on);
}

static void measure(struct res *r, int fd[NPROG], struct guard *g, const struct pkt *pk,
		    const int want[NPROG], const char *path)
{
	memset(r, 0, NPROG * sizeof(*r));
	for (int i = 0; i < opt.npkt; i++) {
		int f = pkt_fam(&pk[i]) == 4 ? 1 : 2;

		for (int p = 0; p < NPROG; p++) {
			double ns;

			if (fd[p] < 0)
				continue;
			row_setting(g, p, 1);
			ns = call(p, fd[p], &pk[i], i, opt.repeat, want[p], path);
			row_setting(g, p, 0);
			if (ns < 0)
				continue;
			r[p].warm[0] += ns;
			r[p].warm[f] += ns;
			r[p].n[0]++;
			r[p].n[f]++;
		}
	}
	for (int p = 0; p < NPROG; p++) {
		if (fd[p] < 0)
			continue;
		row_setting(g, p, 1);
		for (int i = 0; i < opt.npkt; i++) {
			double ns = call(p, fd[p], &pk[i], i, 1, want[p], path);

			if (ns >= 0)
				r[p].cold += ns;
		}
		row_setting(g, p, 0);
	}
	for (int p = 0; p < NPROG; p++) {
		for (int k = 0; k < 3; k++)
			r[p].warm[k] = r[p].n[k] ? r[p].warm[k] / r[p].n[k] : 0;
		r[p].cold = r[p].n[0] ? r[p].cold / r[p].n[0] : 0;
	}
}

static void print_ratio(double a, double b)
{
	if (a > 0 && b > 0)
		printf(" %7.2fx", a / b);
	else
		printf(" %8s", "-");
}

static void print_rows(const struct res *r, const int fd[NPROG], const char *path)
{
	for (int p = 0; p < NPROG; p++) {
		if (fd[p] < 0)
			continue;
		printf("  %-19s %-4s %7.1f %7.1f %7.1f", prog_name[p], path, r[p].warm[0],
		       r[p].warm[1], r[p].warm[2]);
		print_ratio(r[p].warm[0], r[P_EMPTY].warm[0]);
		print_ratio(r[p].warm[0], fd[P_PEER] >= 0 ? r[P_PEER].warm[0] : 0);
		print_ratio(r[p].warm[0], fd[P_BASE] >= 0 ? r[P_BASE].warm[0] : 0);
		printf("  | %7.1f", r[p].cold);
		print_ratio(r[p].cold, r[P_EMPTY].cold);
		print_ratio(r[p].cold, fd[P_BASE] >= 0 ? r[P_BASE].cold : 0);
		printf("\n");
	}
}

/*
 * Several CPUs at once: the pass packets on every online CPU (up to
 * PAR_MAX) side by side, against the same loop on one CPU, as a NIC's
 * queues spread a node's traffic: every CPU sends to the same destination,
 * from sources of its own (CPU t takes every ncpu-th pair of packets, an
 * IPv4 and an IPv6 one, from pair t) or
 * from the same sources as the others (a source whose connections land on
 * several queues). What cache lines written by several CPUs cost shows as
 * the ratio to one CPU. All the pass packets and not the "few": a few
 * sources, each sent PAR_CALLS * repeat / 256 packets per CPU, would go
 * over the per-source limits within the sketch's window.
 */
#define PAR_MAX 8
#define PAR_CALLS 20000

struct par {
	pthread_barrier_t *bar;
	const struct pkt *pk;
	int fd, cpu, first, step, want, wrong;
	double ns; /* sum of ns/pkt over the calls */
	int n;
};

static void *par_main(void *arg)
{
	struct par *t = arg;
	int nsrc = opt.npkt;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(t->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(t->bar);
	for (int i = 0; i < PAR_CALLS; i++) {
		__u32 dur = 0;
		/* Packets alternate IPv4, IPv6: a CPU takes pairs, so it sends both. */
		int idx = (2 * t->first + (i / 2) * 2 * t->step + i % 2) % nsrc;
		int v = run1(t->fd, &t->pk[idx], opt.repeat, &dur);

		if (v != t->want) {
			t->wrong++;
			continue;
		}
		t->ns += dur;
		t->n++;
	}
	return NULL;
}

/*
 * ns/pkt of one program with nthr threads on the CPUs in cpus, each from
 * its own sources (own) or all from the same ones; -1 on a wrong verdict.
 */
static double par_run(int fd, const struct pkt *pk, int want, const int *cpus, int nthr, int own)
{
	struct par t[PAR_MAX] = { 0 };
	pthread_t th[PAR_MAX];
	pthread_barrier_t bar;
	double sum = 0;
	int n = 0, wrong = 0;

	pthread_barrier_init(&bar, NULL, (unsigned)nthr);
	for (int i = 0; i < nthr; i++) {
		t[i] = (struct par){ .bar = &bar,
				     .pk = pk,
				     .fd = fd,
				     .cpu = cpus[i],
				     .first = own ? i : 0,
				     .step = own ? nthr : 1,
				     .want = want };
		if (pthread_create(&th[i], NULL, par_main, &t[i]) != 0)
			die("pthread_create failed");
	}
	for (int i = 0; i < nthr; i++) {
		pthread_join(th[i], NULL);
		sum += t[i].ns;
		n += t[i].n;
		wrong += t[i].wrong;
	}
	pthread_barrier_destroy(&bar);
	if (wrong) {
		fprintf(stderr, "bench_xdp: %d wrong verdicts on several CPUs\n", wrong);
		bad++;
		return -1;
	}
	return n ? sum / n : -1;
}

static void parallel(const int fd[NPROG], struct guard *g, const struct pkt *pk,
		     const int want[NPROG])
{
	static const int rows[] = { P_EMPTY, P_BASE, P_GUARD_OFF, P_GUARD };
	int cpus[PAR_MAX], ncpu = 0;
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && ncpu < PAR_MAX; c++)
		if (CPU_ISSET(c, &set))
			cpus[ncpu++] = c;
	if (ncpu < 2) {
		printf("  (one CPU only: no side-by-side run)\n");
		return;
	}
	printf("\n  The pass packets on %d CPUs at once, to the same destination, %d calls\n"
	       "  of %d runs per CPU: each CPU from sources of its own, then all from the same\n"
	       "  sources; ns/pkt and the ratio to one CPU alone:\n",
	       ncpu, PAR_CALLS, opt.repeat);
	printf("  %-19s %9s %9s %8s %9s %8s\n", "program", "1 CPU", "own src", "ratio", "same src",
	       "ratio");
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		int p = rows[i];
		double one, own, same;

		if (fd[p] < 0)
			continue;
		row_setting(g, p, 1);
		one = par_run(fd[p], pk, want[p], cpus, 1, 0);
		own = par_run(fd[p], pk, want[p], cpus, ncpu, 1);
		same = par_run(fd[p], pk, want[p], cpus, ncpu, 0);
		row_setting(g, p, 0);
		printf("  %-19s %9.1f %9.1f", prog_name[p], one, own);
		print_ratio(own, one);
		printf(" %9.1f", same);
		print_ratio(same, one);
		printf("\n");
	}
}

/* Fills a guard's blocklist as the daemon does it: filter bits, then entries, then lengths. */
static int guard_fill(struct guard *g, const struct kv *kv, const __u64 *w, double t[4])
{
	int e;

	t[0] = now_s();
	e = filter_write(g, w);
	t[1] = now_s();
	if (!e)
		e = batch_update(g->v4, kv->k4, kv->v, kv->n4);
	t[2] = now_s();
	if (!e)
		e = batch_update(g->v6, kv->k6, kv->v, kv->n6);
	t[3] = now_s();
	if (!e)
		e = publish(g, 1);
	return e;
}

static void print_mix(const struct eset *s)
{
	size_t cnt[2][129] = { { 0 } };

	for (size_t i = 0; i < s->n; i++)
		cnt[s->e[i].fam == 6][s->e[i].plen]++;
	for (int f = 0; f < 2; f++) {
		size_t tot = f ? s->n - s->n4 : s->n4;

		printf("  IPv%d %zu:", f ? 6 : 4, tot);
		for (int len = f ? 128 : 32; len >= 0; len--)
			if (cnt[f][len])
				printf(" /%d %.1f%%", len, 100.0 * cnt[f][len] / tot);
		printf("\n");
	}
}

/* ---- replacing a whole feed under load ---- */

struct call_rec {
	float at; /* s since the reader started */
	float us; /* wall time of the call */
	__u32 ns; /* kernel ns/pkt */
};

struct reader {
	int fd;
	const struct pkt *pk;
	volatile int stop;
	double t0;
	struct call_rec *c;
	size_t n;
	int wrong;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	while (!rd->stop && rd->n < STALL_CAP) {
		const struct pkt *p = &rd->pk[rd->n % opt.npkt];
		double t0 = now_s();
		__u32 dur = 0;
		int v = run1(rd->fd, p, STALL_REPEAT, &dur);
		struct call_rec *c = &rd->c[rd->n++];

		c->at = (float)(t0 - rd->t0);
		c->us = (float)((now_s() - t0) * 1e6);
		c->ns = dur;
		if (v != XDP_PASS)
			rd->wrong++;
	}
	return NULL;
}

static void reader_start(struct reader *rd, pthread_t *t)
{
	rd->stop = 0;
	rd->n = 0;
	rd->t0 = now_s();
	if (pthread_create(t, NULL, reader_main, rd) != 0)
		die("pthread_create failed");
}

static void reader_stop(struct reader *rd, pthread_t t, const char *what)
{
	rd->stop = 1;
	pthread_join(t, NULL);
	if (rd->wrong) {
		fprintf(stderr, "bench_xdp: pass path %s: %d wrong verdicts\n", what, rd->wrong);
		bad++;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* Percentiles of the calls that started in [from, to) s. Returns the max ns/pkt. */
static __u32 reader_report(const char *what, const struct reader *rd, double from, double to)
{
	__u32 *ns = xcalloc(rd->n, sizeof(*ns));
	float *us = xcalloc(rd->n, sizeof(*us));
	size_t n = 0;
	__u32 max = 0;

	for (size_t i = 0; i < rd->n; i++)
		if (rd->c[i].at >= from && rd->c[i].at < to) {
			ns[n] = rd->c[i].ns;
			us[n++] = rd->c[i].us;
		}
	if (n) {
		qsort(ns, n, sizeof(*ns), cmp_u32);
		qsort(us, n, sizeof(*us), cmp_float);
		max = ns[n - 1];
		printf("  %-16s %6.2f s %8zu %7u %7u %7u %8u | %7.1f %8.1f\n", what, to - from, n,
		       ns[n / 2], ns[n * 99 / 100], ns[n * 999 / 1000], max, us[n * 999 / 1000],
		       us[n - 1]);
	} else {
		printf("  %-16s %6.2f s no calls\n", what, to - from);
	}
	free(ns);
	free(us);
	return max;
}

/* Sorted-set difference: entries of a not in b. */
static size_t set_diff(struct ent *out, const struct eset *a, const struct eset *b)
{
	size_t i = 0, j = 0, n = 0;

	while (i < a->n) {
		int c = j < b->n ? ent_cmp(&a->e[i], &b->e[j]) : -1;

		if (c < 0)
			out[n++] = a->e[i++];
		else if (c > 0)
			j++;
		else
			i++, j++;
	}
	return n;
}

/* Batch updates (del = 0) or deletes (del = 1) of n keys, opt.chunk at a time (0: one call). */
static int batch_chunked(int fd, const void *keys, size_t ksize, const void *vals, size_t vsize,
			 size_t n, int del)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = del ? 0 : BPF_ANY);
	size_t step = opt.chunk ? opt.chunk : n;

	for (size_t off = 0; off < n; off += step) {
		__u32 k = n - off < step ? n - off : step, cnt = k;
		const char *kp = (const char *)keys + off * ksize;
		int r = del ? bpf_map_delete_batch(fd, kp, &cnt, &o) :
			      bpf_map_update_batch(fd, kp, (const char *)vals + off * vsize, &cnt,
						   &o);

		if (r < 0)
			return r;
		if (cnt != k)
			return -EIO;
		if (opt.chunk && opt.pause_us)
			usleep(opt.pause_us);
	}
	return 0;
}

/*
 * The daemon's order for a feed replaced whole: filter bits of the union,
 * the new entries, the union's lengths; then the old entries that are not in
 * the new set go, and the new set's lengths and filter follow.
 */
static void stall_test(struct guard *g, const struct eset *a, const struct eset *b,
		       const struct pkt *pass)
{
	struct reader rd = { .fd = g->prog, .pk = pass };
	struct ent *gone = xcalloc(a->n, sizeof(*gone));
	size_t ngone = set_diff(gone, a, b);
	__u64 *w = xcalloc(ZT_FILTER_WORDS, sizeof(*w));
	struct kv add, del;
	double t_add, t_del, t_end, t_stop;
	__u32 idle_max, busy_max = 0;
	pthread_t t;
	int r;

	rd.c = xcalloc(STALL_CAP, sizeof(*rd.c));
	kv_build(&add, b->e, b->n);
	kv_build(&del, gone, ngone);

	printf("\nReplacing a whole feed while packets run: to the %zu entries in place, %zu new ones\n"
	       "are added (%zu of them were there already), then the %zu old ones not in the new\n"
	       "set are deleted, %s; meanwhile another thread runs\n"
	       "the pass path, %d repeats per call (columns: kernel ns/pkt; wall time per call).\n",
	       a->n, b->n, a->n - ngone, ngone,
	       opt.chunk ? "in batches of -c entries" : "one batch call per family", STALL_REPEAT);
	printf("  %-16s %8s %8s %7s %7s %7s %8s | %7s %8s\n", "phase", "time", "calls", "p50",
	       "p99", "p99.9", "max", "p99.9us", "max us");

	reader_start(&rd, &t);
	usleep(1500000);
	reader_stop(&rd, t, "while idle");
	idle_max = reader_report("idle", &rd, 0, now_s() - rd.t0);

	filter_add(w, a);
	filter_add(w, b);
	prefix_set(g, a, b);
	reader_start(&rd, &t);
	usleep(200000);
	r = filter_write(g, w);
	if (!r)
		r = batch_chunked(g->v4, add.k4, sizeof(*add.k4), add.v, sizeof(*add.v), add.n4, 0);
	if (!r)
		r = batch_chunked(g->v6, add.k6, sizeof(*add.k6), add.v, sizeof(*add.v), add.n6, 0);
	if (!r)
		r = publish(g, 1);
	t_add = now_s() - rd.t0;
	if (!r)
		r = batch_chunked(g->v4, del.k4, sizeof(*del.k4), NULL, 0, del.n4, 1);
	if (!r)
		r = batch_chunked(g->v6, del.k6, sizeof(*del.k6), NULL, 0, del.n6, 1);
	t_del = now_s() - rd.t0;
	memset(w, 0, ZT_FILTER_WORDS * sizeof(*w));
	filter_add(w, b);
	prefix_set(g, b, NULL);
	if (!r)
		r = publish(g, 1);
	if (!r)
		r = filter_write(g, w);
	t_end = now_s() - rd.t0;
	usleep(500000); /* frees are deferred (RCU): watch a little longer */
	reader_stop(&rd, t, "during the replacement");
	t_stop = now_s() - rd.t0;
	if (r)
		die("replacing the feed failed: %s", strerror(-r));
	reader_report("before", &rd, 0, 0.2);
	busy_max = reader_report("adding", &rd, 0.2, t_add);
	r = reader_report("deleting", &rd, t_add, t_del);
	busy_max = busy_max > (__u32)r ? busy_max : (__u32)r;
	reader_report("filter, lengths", &rd, t_del, t_end);
	r = reader_report("0.5 s after", &rd, t_end, t_stop);
	busy_max = busy_max > (__u32)r ? busy_max : (__u32)r;
	printf("  worst call: %.1f us of packets idle, %.1f us during the replacement (%ld CPUs);\n"
	       "  target: a replacement stalls no call much beyond the idle worst case\n",
	       idle_max * STALL_REPEAT / 1e3, busy_max * STALL_REPEAT / 1e3,
	       sysconf(_SC_NPROCESSORS_ONLN));
	kv_free(&add);
	kv_free(&del);
	free(gone);
	free(w);
	free(rd.c);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_xdp [-n PACKETS] [-r REPEAT] [-s SIZE[,SIZE...]] [-S] [-b OBJ]\n"
		"  -n  distinct packets per path (default 4096)\n"
		"  -r  repeats per call on the warm pass (default 64)\n"
		"  -s  blocklist sizes (default 1000,100000,1000000)\n"
		"  -S  skip the feed-replacement test (run after the largest size)\n"
		"  -c  in that test, add and delete N entries per batch call (default: all)\n"
		"  -p  and sleep US microseconds between those calls\n"
		"  -b  today's guard, the object compared with (default " BASE_OBJ ")\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "n:r:s:Sc:p:b:h")) != -1) {
		switch (c) {
		case 'n':
			opt.npkt = atoi(optarg);
			break;
		case 'r':
			opt.repeat = atoi(optarg);
			break;
		case 's': {
			char *s = optarg, *end;

			opt.nsizes = 0;
			while (*s && opt.nsizes < ARRAY_SIZE(opt.sizes)) {
				opt.sizes[opt.nsizes++] = strtoul(s, &end, 10);
				if (end == s)
					usage();
				s = *end == ',' ? end + 1 : end;
			}
			break;
		}
		case 'S':
			opt.stall = 0;
			break;
		case 'c':
			opt.chunk = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			opt.pause_us = atoi(optarg);
			break;
		case 'b':
			opt.base = optarg;
			break;
		default:
			usage();
		}
	}
	if (opt.npkt < 2 || opt.repeat < 1)
		usage();
	if (!opt.nsizes) {
		opt.sizes[0] = 1000;
		opt.sizes[1] = 100000;
		opt.sizes[2] = 1000000;
		opt.nsizes = 3;
	}
	for (size_t i = 0; i < opt.nsizes; i++)
		if (opt.sizes[i] < 2 || opt.sizes[i] > MAP_MAX / 2)
			die("sizes go from 2 to %d", MAP_MAX / 2);
}

int main(int argc, char **argv)
{
	int fd[NPROG] = { -1, -1, -1, -1, -1, -1 }, m4 = -1, m6 = -1, held;
	const int want_pass[NPROG] = { XDP_PASS, XDP_PASS, XDP_PASS, XDP_PASS, XDP_PASS, XDP_PASS };
	const int want_drop[NPROG] = { XDP_PASS, XDP_DROP, XDP_DROP, XDP_DROP, XDP_DROP, XDP_DROP };
	struct bpf_object *peer;
	struct pkt *pass, *drop, *few;
	double target_ratio_empty = 0, target_ratio_peer = 0, target_ratio_base = 0;
	double target_ratio_off = 0;
	size_t target_n = 0;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_fn);
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || !rng_state)
		rng_state = (uint64_t)time(NULL) | 1;

	hold_init();
	fd[P_EMPTY] = load_empty();
	if (fd[P_EMPTY] < 0)
		die("cannot load the empty program: %s (run as root)", strerror(errno));
	peer = load_peer(&fd[P_PEER], &m4, &m6);
	if (!peer)
		fprintf(stderr, "bench_xdp: cannot load %s: no xdp-filter rows\n", PEER_OBJ);
	hold(P_EMPTY, fd[P_EMPTY]);
	if (peer)
		hold(P_PEER, fd[P_PEER]);
	held = hold_ifindex[P_EMPTY] && hold_ifindex[P_GUARD] && (!peer || hold_ifindex[P_PEER]);
	if (!held && opt.npkt > 64) {
		fprintf(stderr, "bench_xdp: programs not held in the XDP dispatcher: every call "
				"waits for RCU; using 64 packets\n");
		opt.npkt = 64;
	}
	pass = xcalloc(opt.npkt, sizeof(*pass));
	drop = xcalloc(opt.npkt, sizeof(*drop));
	few = xcalloc(opt.npkt, sizeof(*few));

	printf("XDP guard through BPF_PROG_TEST_RUN: %d packets per path (half IPv4, half IPv6, UDP,\n"
	       "each from its own random source), each run %d times in a row (warm) and, in a\n"
	       "second pass, once (first touch). Figures are the kernel's ns per run, averaged\n"
	       "over the packets. Pass sources lie in the listed space (1/8-197/8, 2400::/6) but\n"
	       "outside every entry; drop sources lie inside random entries. The \"few\" rows\n"
	       "send the pass packets of the first %d sources in turn (cells stay cached).\n",
	       opt.npkt, opt.repeat, opt.npkt < FEW_SOURCES ? opt.npkt : FEW_SOURCES);

	for (size_t si = 0; si < opt.nsizes; si++) {
		size_t n = opt.sizes[si];
		int last = si + 1 == opt.nsizes, stall = last && opt.stall;
		struct eset a, b = { 0 };
		__u64 *w = xcalloc(ZT_FILTER_WORDS, sizeof(*w));
		struct guard g, *base;
		struct kv kv;
		struct res r[NPROG];
		double t[4], tb[4], t0, t_filter, t_v4, t_v6;
		int e;

		gen_set(&a, n);
		if (stall)
			gen_set(&b, n);
		guard_load(&g);
		fd[P_GUARD] = fd[P_GUARD_NF] = fd[P_GUARD_OFF] = g.prog;
		hold(P_GUARD, g.prog);
		base = base_load();
		if (base) {
			fd[P_BASE] = base->prog;
			hold(P_BASE, base->prog);
		}

		kv_build(&kv, a.e, a.n);
		filter_add(w, &a);
		prefix_set(&g, &a, NULL);
		e = guard_fill(&g, &kv, w, t);
		if (e)
			die("filling the guard's maps: %s", strerror(-e));
		if (base) {
			base->ps = g.ps;
			e = guard_fill(base, &kv, w, tb);
			if (e)
				die("filling the maps of today's guard: %s", strerror(-e));
		}
		t0 = t[0], t_filter = t[1], t_v4 = t[2], t_v6 = t[3];
		kv_free(&kv);

		gen_pass(pass, &a, stall ? &b : NULL);
		gen_drop(drop, &a);
		if (peer)
			peer_fill(m4, m6, drop, &a);

		printf("\n== %zu entries (IPv4 %u lengths, IPv6 %u lengths)\n", n, g.ps.v4_count,
		       g.ps.v6_count);
		print_mix(&a);
		printf("  bpf_map_update_batch: %.3f s for all %zu entries (%.2f M entries/s; IPv4 %.3f s,\n"
		       "  IPv6 %.3f s), plus %.3f s for the %u prefilter words\n",
		       t_v6 - t_filter, n, n / (t_v6 - t_filter) / 1e6, t_v4 - t_filter,
		       t_v6 - t_v4, t_filter - t0, ZT_FILTER_WORDS);
		printf("  prefilter: %.1f%% of IPv4 and %.1f%% of IPv6 pass sources fall on a set bit and\n"
		       "  go through the %u / %u hashed lookups\n",
		       filter_through(w, pass, 4), filter_through(w, pass, 6), g.ps.v4_count,
		       g.ps.v6_count);
		printf("  %-19s %-4s %7s %7s %7s %8s %8s %8s  | %7s %8s %8s\n", "program", "path",
		       "ns/pkt", "IPv4", "IPv6", "x empty", "x xdpflt", "x today", "1st", "x empty",
		       "x today");
		measure(r, fd, &g, pass, want_pass, "pass");
		print_rows(r, fd, "pass");
		if (last) {
			target_n = n;
			target_ratio_empty = r[P_GUARD].warm[0] / r[P_EMPTY].warm[0];
			target_ratio_peer = peer ? r[P_GUARD].warm[0] / r[P_PEER].warm[0] : 0;
			target_ratio_base = base ? r[P_GUARD].warm[0] / r[P_BASE].warm[0] : 0;
			target_ratio_off = base ? r[P_GUARD_OFF].warm[0] / r[P_BASE].warm[0] : 0;
		}
		gen_few(few, pass);
		measure(r, fd, &g, few, want_pass, "few");
		print_rows(r, fd, "few");
		if (last)
			parallel(fd, &g, pass, want_pass);
		measure(r, fd, &g, drop, want_drop, "drop");
		print_rows(r, fd, "drop");

		if (stall)
			stall_test(&g, &a, &b, pass);

		unhold(P_GUARD);
		guard_close(&g);
		fd[P_GUARD] = fd[P_GUARD_NF] = fd[P_GUARD_OFF] = -1;
		if (base) {
			unhold(P_BASE);
			guard_close(base);
			free(base);
			fd[P_BASE] = -1;
		}
		free(a.e);
		free(b.e);
		free(w);
	}

	printf("\nTargets (printed, not asserted), pass path at %zu entries:\n", target_n);
	printf("  guard within 3x the empty program: %.2fx (%s)\n", target_ratio_empty,
	       target_ratio_empty <= 3 ? "met" : "NOT met");
	if (target_ratio_base > 0) {
		printf("  guard within 1.2x today's guard:   %.2fx (%s)\n", target_ratio_base,
		       target_ratio_base <= 1.2 ? "met" : "NOT met");
		printf("  (with the activity stage off: %.2fx today's)\n", target_ratio_off);
	}
	if (peer)
		printf("  guard no slower than xdp-filter:    %.2fx (%s)\n", target_ratio_peer,
		       target_ratio_peer <= 1 ? "met" : "NOT met");
	printf("Verdicts: %s\n", bad ? "WRONG (see above)" : "all as expected");

	unhold(P_EMPTY);
	if (peer) {
		unhold(P_PEER);
		bpf_object__close(peer);
	}
	close(fd[P_EMPTY]);
	free(pass);
	free(drop);
	free(few);
	return bad ? 1 : 0;
}
