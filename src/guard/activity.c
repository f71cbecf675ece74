// SPDX-License-Identifier: GPL-2.0-only
/* The daemon's side of the activity stage (see activity.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/util.h"
#include "detect/features.h"
#include "guard/activity.h"
#include "guard/datapath.h"
#include "xdp_guard.skel.h"

#define NS_PER_SEC 1000000000ULL

void zt_signal_cfg_defaults(struct zt_signal_cfg *s)
{
	/*
	 * Signals are evidence for the daemon's detectors, not verdicts: low
	 * enough that a flood or a scan shows in its first window, high enough
	 * that busy benign clients do not keep the ring buffer busy.
	 */
	*s = (struct zt_signal_cfg){
		.src = { .pkts = 20000,
			 .syn = 200,
			 /*
			  * What the flood detector asks of a source's SYNs: the
			  * 2000/s limit over its 100 ms window (zt_flood_sample).
			  */
			 .halfopen = 200,
			 /*
			  * The evidence a UDP flood needs: 2000 datagrams in a
			  * window, at a rate above the limit (checked by the
			  * detector from the source's first packet): hping3's
			  * --flood here (~40k/s) shows in 50 ms, a flood at
			  * 2x the 20k/s limit in 100 ms. One event a window
			  * per source at most.
			  */
			 .udp = 2000,
			 .icmp = 200,
			 .distinct = 16, /* ~18 distinct ports */
			 .distinct2 = 16, /* ~18 distinct hosts */
			 /* detection.flood.out_of_state's default (5000/s) over its 100 ms window */
			 .resets = 500 },
		.dst = { .pkts = 100000,
			 .syn = 5000,
			 .halfopen = 2000,
			 .udp = 50000,
			 .icmp = 2000,
			 .distinct = 48 }, /* ~90 distinct sources */
		.probes = true,
		.probe_rate = ZT_ACT_DEFAULT_PROBE_RATE,
		.signal_rate = ZT_ACT_DEFAULT_SIGNAL_RATE,
	};
}

uint32_t zt_guard_win_shift(uint32_t hz)
{
	uint32_t s = 0;

	while (s < 20 && (1u << (s + 1)) <= hz)
		s++;
	/* 2^s <= hz < 2^(s+1): the nearer of the two. */
	if (hz - (1u << s) > (1u << (s + 1)) - hz)
		s++;
	return s;
}

void zt_guard_cfg_defaults(struct zt_guard_cfg *c, uint32_t hz)
{
	struct zt_ratelimit_cfg rl = { 0 };
	struct zt_signal_cfg s;
	struct zt_synprot_cfg sp = { .verified = true,
				     .challenge = true,
				     .verified_ttl_ns = ZT_ACT_DEFAULT_VERIFIED_TTL_NS };

	memset(c, 0, sizeof(*c));
	c->flags = ZT_GCF_ACTIVITY;
	c->hz = hz ? hz : 250;
	c->win_shift = zt_guard_win_shift(c->hz);
	zt_guard_cfg_set_ratelimits(c, &rl);
	zt_signal_cfg_defaults(&s);
	zt_guard_cfg_set_signals(c, &s);
	zt_guard_cfg_set_synprot(c, &sp);
}

static void lower(uint32_t *v, uint64_t to)
{
	if (to < *v)
		*v = (uint32_t)to;
}

static void raise_to(uint32_t *v, uint64_t to)
{
	if (to > *v)
		*v = to > UINT32_MAX ? UINT32_MAX : (uint32_t)to;
}

/* The flood signal of a rate's kind: half-open SYNs, UDP, ICMP, all packets. */
static uint32_t *flood_signal(struct zt_sig_thr *t, int kind)
{
	switch (kind) {
	case ZT_RL_SYN:
		return &t->halfopen;
	case ZT_RL_UDP:
		return &t->udp;
	case ZT_RL_ICMP:
		return &t->icmp;
	default:
		return &t->pkts;
	}
}

/* What a source at rate packets a second sends in window_ns. */
static uint64_t per_window(uint32_t rate, uint64_t window_ns)
{
	return (uint64_t)rate * window_ns / NS_PER_SEC;
}

void zt_signal_cfg_follow_rates(struct zt_signal_cfg *s, const uint32_t rate[ZT_RL_KINDS],
				uint32_t dst_factor, uint64_t window_ns)
{
	for (int k = 0; k < ZT_RL_KINDS; k++) {
		uint64_t src, dst;

		if (!rate[k])
			continue;
		src = per_window(rate[k], window_ns);
		if (!src)
			src = 1;
		dst = src * (dst_factor ? dst_factor : 1);
		lower(flood_signal(&s->src, k), src);
		lower(flood_signal(&s->dst, k), dst);
		if (k == ZT_RL_SYN) {
			lower(&s->src.syn, src);
			lower(&s->dst.syn, dst);
		}
	}
}

void zt_signal_cfg_cover_rates(struct zt_signal_cfg *s, const uint32_t rate[ZT_RL_KINDS],
			       uint32_t dst_factor, uint64_t window_ns)
{
	for (int k = 0; k < ZT_RL_KINDS; k++) {
		uint64_t src;

		if (!rate[k])
			continue;
		src = per_window(rate[k], window_ns);
		raise_to(flood_signal(&s->src, k), src);
		raise_to(flood_signal(&s->dst, k), src * (dst_factor ? dst_factor : 1));
	}
}

/* Bucket depths beyond this would let a 32-bit destination bucket wrap (65536 jiffies). */
#define MAX_BURST_MS 30000u

/*
 * Tokens a CPU takes at once from a destination bucket of limit a second
 * and depth ms (include/ztagent.h, "Several CPUs"): an eighth of the
 * bucket shared by the possible CPUs, 1 to ZT_DST_LEASE_MAX.
 */
static uint8_t dst_lease(uint32_t limit, uint32_t ms)
{
	int ncpus = libbpf_num_possible_cpus();
	uint64_t n;

	if (ncpus < 1)
		ncpus = 1;
	n = (uint64_t)limit * ms / 1000 / (8 * (uint64_t)ncpus);
	return (uint8_t)(n < 1 ? 1 : n > ZT_DST_LEASE_MAX ? ZT_DST_LEASE_MAX : n);
}

int zt_guard_cfg_set_ratelimits(struct zt_guard_cfg *c, const struct zt_ratelimit_cfg *rl)
{
	uint32_t sb_ms = rl->src_burst_ms ? rl->src_burst_ms : 1000;
	uint32_t db_ms = rl->dst_burst_ms ? rl->dst_burst_ms : 1000;
	uint64_t unit = (uint64_t)c->hz << ZT_TAT_SHIFT; /* destination bucket units a second */

	if (!c->hz || sb_ms > MAX_BURST_MS || db_ms > MAX_BURST_MS)
		return -EINVAL;
	for (int k = 0; k < ZT_RL_KINDS; k++)
		if (rl->src[k] > NS_PER_SEC || rl->dst[k] > NS_PER_SEC)
			return -EINVAL;
	for (int k = 0; k < ZT_RL_KINDS; k++) {
		c->src_limit[k] = rl->src[k];
		c->src_interval_ns[k] = rl->src[k] ? NS_PER_SEC / rl->src[k] : 0;
		c->dst_limit[k] = rl->dst[k];
		if (rl->dst[k]) {
			uint64_t iv = unit / rl->dst[k];

			c->dst_interval[k] = iv ? (uint32_t)iv : 1;
		} else {
			c->dst_interval[k] = 0;
		}
	}
	c->src_burst_ns = sb_ms * 1000000ULL;
	c->dst_burst = (uint32_t)(unit * db_ms / 1000);
	for (int k = 0; k < ZT_RL_KINDS; k++)
		c->dst_lease[k] = dst_lease(rl->dst[k], db_ms);
	return 0;
}

void zt_guard_cfg_set_signals(struct zt_guard_cfg *c, const struct zt_signal_cfg *s)
{
	c->sig_src = s->src;
	c->sig_dst = s->dst;
	c->probe_rate = s->probe_rate;
	c->signal_rate = s->signal_rate;
	if (s->probes)
		c->flags |= ZT_GCF_PROBES;
	else
		c->flags &= ~ZT_GCF_PROBES;
}

void zt_guard_cfg_set_synprot(struct zt_guard_cfg *c, const struct zt_synprot_cfg *s)
{
	c->flags &= ~(ZT_GCF_SYN_VERIFIED | ZT_GCF_SYN_CHALLENGE);
	if (s->verified)
		c->flags |= ZT_GCF_SYN_VERIFIED;
	if (s->challenge)
		c->flags |= ZT_GCF_SYN_CHALLENGE;
	c->verified_ttl_ns = s->verified_ttl_ns;
}

static int map_fd(const struct zt_datapath *dp, const struct bpf_map *m)
{
	return dp && dp->xdp && m ? bpf_map__fd(m) : -EINVAL;
}

#define MAP(dp, name) map_fd(dp, (dp) && (dp)->xdp ? (dp)->xdp->maps.name : NULL)

int zt_datapath_guard_cfg(const struct zt_datapath *dp, struct zt_guard_cfg *out)
{
	int fd = MAP(dp, guard_cfg);
	__u32 zero = 0;

	if (fd < 0)
		return fd;
	return bpf_map_lookup_elem(fd, &zero, out) ? -errno : 0;
}

/*
 * guard_cfg is one array element that several setters read, change and
 * write back, from the loop and from the threads the response engine runs
 * on (a watch or SYN protection set for an incident): one lock over every
 * read-modify-write, so that no setter undoes another's field.
 */
static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;

static int cfg_write(struct zt_datapath *dp, const struct zt_guard_cfg *c)
{
	int fd = MAP(dp, guard_cfg);
	__u32 zero = 0;

	if (fd < 0)
		return fd;
	return bpf_map_update_elem(fd, &zero, c, BPF_ANY) ? -errno : 0;
}

/*
 * Reads guard_cfg, lets edit change it (0, or a negative errno that
 * leaves the map as it was) and writes it back, all under cfg_lock.
 */
static int cfg_update(struct zt_datapath *dp, int (*edit)(struct zt_guard_cfg *c, const void *arg),
		      const void *arg)
{
	struct zt_guard_cfg c;
	int r;

	pthread_mutex_lock(&cfg_lock);
	r = zt_datapath_guard_cfg(dp, &c);
	if (r == 0)
		r = edit(&c, arg);
	if (r == 0)
		r = cfg_write(dp, &c);
	pthread_mutex_unlock(&cfg_lock);
	return r;
}

static int edit_ratelimits(struct zt_guard_cfg *c, const void *arg)
{
	return zt_guard_cfg_set_ratelimits(c, arg);
}

int zt_datapath_set_ratelimits(struct zt_datapath *dp, const struct zt_ratelimit_cfg *rl)
{
	return cfg_update(dp, edit_ratelimits, rl);
}

static int edit_signals(struct zt_guard_cfg *c, const void *arg)
{
	zt_guard_cfg_set_signals(c, arg);
	return 0;
}

int zt_datapath_set_signals(struct zt_datapath *dp, const struct zt_signal_cfg *s)
{
	return cfg_update(dp, edit_signals, s);
}

static int edit_synprot(struct zt_guard_cfg *c, const void *arg)
{
	zt_guard_cfg_set_synprot(c, arg);
	return 0;
}

int zt_datapath_set_synprot(struct zt_datapath *dp, const struct zt_synprot_cfg *s)
{
	return cfg_update(dp, edit_synprot, s);
}

static int edit_activity(struct zt_guard_cfg *c, const void *arg)
{
	if (*(const bool *)arg)
		c->flags |= ZT_GCF_ACTIVITY;
	else
		c->flags &= ~ZT_GCF_ACTIVITY;
	return 0;
}

int zt_datapath_set_activity(struct zt_datapath *dp, bool on)
{
	return cfg_update(dp, edit_activity, &on);
}

static int edit_scan_brake(struct zt_guard_cfg *c, const void *arg)
{
	uint32_t brake = *(const uint32_t *)arg;

	c->scan_brake = brake;
	if (brake)
		c->flags |= ZT_GCF_SCAN_BRAKE;
	else
		c->flags &= ~ZT_GCF_SCAN_BRAKE;
	return 0;
}

int zt_datapath_set_scan_brake(struct zt_datapath *dp, uint32_t brake)
{
	return cfg_update(dp, edit_scan_brake, &brake);
}

static void exempt_key(const struct zt_cidr *c, struct zt_scan_exempt_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = c->family == AF_INET6 ? 6 : 4;
	k->prefixlen = 32 + c->prefixlen;
	memcpy(k->addr, c->addr, c->family == AF_INET6 ? 16 : 4);
}

static bool exempt_wanted(const struct zt_cidr *v, size_t n, const struct zt_scan_exempt_key *k)
{
	struct zt_scan_exempt_key want;

	for (size_t i = 0; i < n; i++) {
		exempt_key(&v[i], &want);
		if (!memcmp(&want, k, sizeof(want)))
			return true;
	}
	return false;
}

int zt_datapath_set_scan_exempt(struct zt_datapath *dp, const struct zt_cidr *v, size_t n)
{
	int fd = MAP(dp, scan_exempt), r = 0;
	struct zt_scan_exempt_key *old = NULL, k;
	size_t n_old = 0, cap = 0;
	const void *prev = NULL;
	__u32 one = 1;

	if (fd < 0)
		return fd;
	/* The keys in the map now, then the ones v does not name out. */
	while (bpf_map_get_next_key(fd, prev, &k) == 0) {
		if (n_old == cap) {
			size_t c = cap ? 2 * cap : 64;
			struct zt_scan_exempt_key *o = realloc(old, c * sizeof(*o));

			if (!o) {
				free(old);
				return -ENOMEM;
			}
			old = o;
			cap = c;
		}
		old[n_old] = k;
		prev = &old[n_old++];
	}
	for (size_t i = 0; i < n_old; i++)
		if (!exempt_wanted(v, n, &old[i]) && bpf_map_delete_elem(fd, &old[i]) && !r &&
		    errno != ENOENT)
			r = -errno;
	free(old);
	for (size_t i = 0; i < n; i++) {
		if (v[i].family != AF_INET && v[i].family != AF_INET6)
			continue;
		exempt_key(&v[i], &k);
		if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) && !r)
			r = -errno;
	}
	return r;
}

int zt_guard_cfg_init(int fd, uint32_t hz)
{
	struct zt_guard_cfg c;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &c))
		return -errno;
	if (c.seed && c.hz == hz)
		return 0; /* in force since an earlier run: keep it, keys included */
	zt_guard_cfg_defaults(&c, hz);
	if (getrandom(&c.seed, sizeof(c.seed), 0) != sizeof(c.seed) ||
	    getrandom(c.cookie_key, sizeof(c.cookie_key), 0) != sizeof(c.cookie_key))
		return -EIO;
	return bpf_map_update_elem(fd, &zero, &c, BPF_ANY) ? -errno : 0;
}

/* ---- addresses ---- */

int zt_addr_parse(const char *text, struct zt_addr_key *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->addr) == 1) {
		out->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, text, out->addr) == 1) {
		out->family = 6;
		return 0;
	}
	return -EINVAL;
}

const char *zt_addr_fmt(const struct zt_addr_key *a, char *buf, size_t n)
{
	if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->addr, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

/* A key as the programs build it: padding and the unused bytes of IPv4 zero. */
static int addr_key(const struct zt_addr_key *a, struct zt_addr_key *k)
{
	if (!a || (a->family != 4 && a->family != 6))
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	k->family = a->family;
	memcpy(k->addr, a->addr, a->family == 4 ? 4 : 16);
	return 0;
}

uint64_t zt_guard_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* CONFIG_HZ=N in a kernel config file (plain or gzip: gzread reads both). */
static int hz_from_file(const char *path, uint32_t *hz)
{
	char line[256];
	gzFile f = gzopen(path, "rb");
	int r = -ENOENT;

	if (!f)
		return -ENOENT;
	while (gzgets(f, line, sizeof(line))) {
		unsigned int v;

		if (sscanf(line, "CONFIG_HZ=%u", &v) == 1 && v >= 24 && v <= 10000) {
			*hz = v;
			r = 0;
			break;
		}
	}
	gzclose(f);
	return r;
}

int zt_kernel_hz_config(uint32_t *hz)
{
	struct utsname u;
	char path[512];

	if (hz_from_file("/proc/config.gz", hz) == 0)
		return 0;
	if (uname(&u) == 0) {
		snprintf(path, sizeof(path), "/boot/config-%s", u.release);
		if (hz_from_file(path, hz) == 0)
			return 0;
	}
	return -ENOENT;
}

int zt_datapath_clock(const struct zt_datapath *dp, uint64_t *jiffies, uint64_t *mono_ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, o);

	if (!dp || !dp->xdp || !dp->xdp->bss)
		return -EINVAL;
	if (bpf_prog_test_run_opts(bpf_program__fd(dp->xdp->progs.zt_clock), &o))
		return -errno;
	/* The program wrote .bss, which libbpf mapped: read it back. */
	*jiffies = ((volatile struct xdp_guard__bss *)dp->xdp->bss)->zt_clock_jiffies;
	*mono_ns = ((volatile struct xdp_guard__bss *)dp->xdp->bss)->zt_clock_ns;
	return 0;
}

int zt_datapath_kernel_hz(const struct zt_datapath *dp, uint32_t *hz)
{
	static const uint32_t known[] = { 100, 250, 300, 1000 };
	uint64_t j0, n0, j1, n1;
	double measured;
	uint32_t best = 0;
	int r;

	if (zt_kernel_hz_config(hz) == 0)
		return 0;
	r = zt_datapath_clock(dp, &j0, &n0);
	if (r == 0) {
		struct timespec ts = { 0, 100000000 };

		nanosleep(&ts, NULL);
		r = zt_datapath_clock(dp, &j1, &n1);
	}
	if (r)
		return r;
	if (n1 <= n0)
		return -EIO;
	measured = (double)(j1 - j0) * 1e9 / (double)(n1 - n0);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		double d = measured - known[i], bd = measured - best;

		if (!best || (d < 0 ? -d : d) < (bd < 0 ? -bd : bd))
			best = known[i];
	}
	*hz = best;
	return 0;
}

static int count_keys(int fd, uint32_t *n)
{
	struct zt_addr_key a, b;
	void *prev = NULL, *next = &a;
	uint32_t c = 0;

	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		c++;
		prev = next;
		next = next == &a ? &b : &a;
	}
	if (errno != ENOENT)
		return -errno;
	*n = c;
	return 0;
}

struct count_arg {
	int fd;
	bool watch;
};

/* Counted under the lock too: the last writer's count includes every earlier change. */
static int edit_count(struct zt_guard_cfg *c, const void *arg)
{
	const struct count_arg *a = arg;
	uint32_t n = 0;
	int r = count_keys(a->fd, &n);

	if (r < 0)
		return r;
	if (a->watch)
		c->watch_count = n;
	else
		c->protect_count = n;
	return 0;
}

/* Publishes how many entries a map has, so the packet path looks it up only then. */
static int publish_count(struct zt_datapath *dp, int fd, bool watch)
{
	struct count_arg a = { .fd = fd, .watch = watch };

	return cfg_update(dp, edit_count, &a);
}

/* ---- watch ---- */

int zt_guard_watch_add(struct zt_datapath *dp, const struct zt_addr_key *a, uint64_t ttl_ns,
		       uint64_t incident_id, uint32_t rate)
{
	struct zt_watch_val v = { .expires_ns = ttl_ns ? zt_guard_now_ns() + ttl_ns : 0,
				  .incident_id = incident_id,
				  .rate = rate };
	struct zt_addr_key k;
	int fd = MAP(dp, watch), r;

	if (fd < 0)
		return fd;
	r = addr_key(a, &k);
	if (r)
		return r;
	/* Entry first, then the count that makes the programs look: no gap. */
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		return -errno;
	return publish_count(dp, fd, true);
}

int zt_guard_watch_del(struct zt_datapath *dp, const struct zt_addr_key *a)
{
	struct zt_addr_key k;
	int fd = MAP(dp, watch), r;

	if (fd < 0)
		return fd;
	r = addr_key(a, &k);
	if (r)
		return r;
	if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
		return -errno;
	return publish_count(dp, fd, true);
}

int zt_guard_watch_get(const struct zt_datapath *dp, const struct zt_addr_key *a,
		       struct zt_watch_val *out)
{
	struct zt_addr_key k;
	int fd = MAP(dp, watch), r;

	if (fd < 0)
		return fd;
	r = addr_key(a, &k);
	if (r)
		return r;
	return bpf_map_lookup_elem(fd, &k, out) ? -errno : 0;
}

int zt_guard_watch_expire(struct zt_datapath *dp)
{
	struct zt_addr_key a, b, gone[256];
	struct zt_watch_val v;
	void *prev = NULL, *next = &a;
	uint64_t now = zt_guard_now_ns();
	int fd = MAP(dp, watch), n = 0, r;

	if (fd < 0)
		return fd;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		if (n < (int)(sizeof(gone) / sizeof(gone[0])) &&
		    bpf_map_lookup_elem(fd, next, &v) == 0 && v.expires_ns && v.expires_ns <= now)
			gone[n++] = *(struct zt_addr_key *)next;
		prev = next;
		next = next == &a ? &b : &a;
	}
	for (int i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &gone[i]);
	r = publish_count(dp, fd, true);
	return r ? r : n;
}

/* ---- SYN protection ---- */

int zt_guard_protect_add(struct zt_datapath *dp, const struct zt_addr_key *dst, uint64_t ttl_ns)
{
	struct zt_protect_val v = { .expires_ns = ttl_ns ? zt_guard_now_ns() + ttl_ns : 0,
				    .created_unix = (uint64_t)time(NULL) };
	struct zt_addr_key k;
	int fd = MAP(dp, syn_protect), r;

	if (fd < 0)
		return fd;
	r = addr_key(dst, &k);
	if (r)
		return r;
	if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
		return -errno;
	return publish_count(dp, fd, false);
}

int zt_guard_protect_del(struct zt_datapath *dp, const struct zt_addr_key *dst)
{
	struct zt_addr_key k;
	int fd = MAP(dp, syn_protect), r;

	if (fd < 0)
		return fd;
	r = addr_key(dst, &k);
	if (r)
		return r;
	if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
		return -errno;
	return publish_count(dp, fd, false);
}

int zt_guard_verified_add(struct zt_datapath *dp, const struct zt_addr_key *src)
{
	struct zt_verified_val v = { .since_ns = zt_guard_now_ns(), .how = ZT_VER_DAEMON };
	struct zt_addr_key k;
	int fd = MAP(dp, syn_verified), r;

	if (fd < 0)
		return fd;
	r = addr_key(src, &k);
	if (r)
		return r;
	return bpf_map_update_elem(fd, &k, &v, BPF_ANY) ? -errno : 0;
}

int zt_guard_verified_del(struct zt_datapath *dp, const struct zt_addr_key *src)
{
	struct zt_addr_key k;
	int fd = MAP(dp, syn_verified), r;

	if (fd < 0)
		return fd;
	r = addr_key(src, &k);
	if (r)
		return r;
	return bpf_map_delete_elem(fd, &k) && errno != ENOENT ? -errno : 0;
}

int zt_guard_verified_check(const struct zt_datapath *dp, const struct zt_addr_key *src)
{
	struct zt_verified_val v;
	struct zt_guard_cfg c;
	struct zt_addr_key k;
	int fd = MAP(dp, syn_verified), r;

	if (fd < 0)
		return fd;
	r = addr_key(src, &k);
	if (r == 0)
		r = zt_datapath_guard_cfg(dp, &c);
	if (r)
		return r;
	if (bpf_map_lookup_elem(fd, &k, &v))
		return errno == ENOENT ? 0 : -errno;
	return !c.verified_ttl_ns || zt_guard_now_ns() - v.since_ns < c.verified_ttl_ns;
}

/* ---- reading the sketches ---- */

static uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static unsigned int popcount64(uint64_t x)
{
	return (unsigned int)__builtin_popcountll(x);
}

static int current_window(const struct zt_datapath *dp, const struct zt_guard_cfg *cfg,
			  uint32_t *win)
{
	uint64_t j, ns;
	int r = zt_datapath_clock(dp, &j, &ns);

	if (r == 0)
		*win = (uint32_t)(j >> (cfg->win_shift & 31));
	return r;
}

static int addr_words(const struct zt_addr_key *a, __u32 w[4])
{
	if (!a || (a->family != 4 && a->family != 6))
		return -EINVAL;
	memset(w, 0, 16);
	memcpy(w, a->addr, a->family == 4 ? 4 : 16);
	return 0;
}

/* a's keyed sketch hash and the guard's current window (ids as the programs keep them). */
static int sketch_locate(const struct zt_datapath *dp, const struct zt_addr_key *a, uint64_t *h,
			 __u32 *win)
{
	struct zt_guard_cfg cfg;
	__u32 w[4];
	int r = addr_words(a, w);

	if (r == 0)
		r = zt_datapath_guard_cfg(dp, &cfg);
	if (r == 0)
		r = current_window(dp, &cfg, win);
	if (r == 0)
		*h = zt_sketch_hash(w, a->family, cfg.seed);
	return r;
}

int zt_guard_src_activity(const struct zt_datapath *dp, const struct zt_addr_key *a,
			  struct zt_src_cell *out)
{
	struct zt_src_cell c[2];
	__u32 idx[2], win;
	int fd = MAP(dp, src_sketch), r;
	uint64_t h;

	if (fd < 0)
		return fd;
	r = sketch_locate(dp, a, &h, &win);
	if (r)
		return r;
	idx[0] = zt_src_cell0(h);
	idx[1] = zt_src_cell1(h);
	for (int i = 0; i < 2; i++) {
		if (bpf_map_lookup_elem(fd, &idx[i], &c[i]))
			return -errno;
		if (c[i].win != (__u16)win)
			memset(&c[i], 0, sizeof(c[i]));
	}
	memset(out, 0, sizeof(*out));
	out->win = (__u16)win;
	for (int k = 0; k < ZT_RL_KINDS; k++)
		out->count[k] = min32(c[0].count[k], c[1].count[k]);
	out->bytes = min32(c[0].bytes, c[1].bytes);
	out->ack = (__u16)min32(c[0].ack, c[1].ack);
	out->synack = (__u16)min32(c[0].synack, c[1].synack);
	out->pending = c[0].pending & c[1].pending;
	out->over = (c[0].over | c[0].prev_over) & (c[1].over | c[1].prev_over);
	out->ports = c[0].ports & c[1].ports;
	out->hosts = c[0].hosts & c[1].hosts;
	out->contacts = c[0].contacts & c[1].contacts;
	out->nports = (__u8)popcount64(out->ports);
	out->nhosts = (__u8)popcount64(out->hosts);
	return 0;
}

/*
 * Adds to both cells what the CPUs counted for the destination (cells
 * idx[0], idx[1]) during window win and have not added yet (dst_local,
 * include/ztagent.h "Several CPUs").
 */
static int dst_add_local(const struct zt_datapath *dp, const __u32 idx[2], __u32 win,
			 struct zt_dst_cell c[2])
{
	int fd = MAP(dp, dst_local), n = dp->ncpus;
	/* Per-CPU values come 8-byte aligned, one per possible CPU. */
	size_t stride = (sizeof(struct zt_dst_local) + 7) & ~(size_t)7;
	unsigned char *v;

	if (fd < 0)
		return fd;
	if (n <= 0)
		return -EINVAL;
	v = calloc((size_t)n, stride);
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &idx[0], v)) {
		int e = -errno;

		free(v);
		return e;
	}
	for (int cpu = 0; cpu < n; cpu++) {
		struct zt_dst_local l;

		memcpy(&l, v + (size_t)cpu * stride, sizeof(l));
		if (l.cell1 != idx[1] + 1 || l.win != win || !l.count[ZT_RL_ALL])
			continue;
		for (int i = 0; i < 2; i++) {
			c[i].win = win;
			for (int k = 0; k < ZT_RL_KINDS; k++)
				c[i].count[k] += l.count[k];
			c[i].bytes += l.bytes;
			c[i].ack += l.ack;
		}
	}
	free(v);
	return 0;
}

int zt_guard_dst_activity(const struct zt_datapath *dp, const struct zt_addr_key *a,
			  struct zt_dst_cell *out)
{
	struct zt_dst_cell c[2];
	__u32 idx[2], win;
	int fd = MAP(dp, dst_sketch), r;
	uint64_t h;

	if (fd < 0)
		return fd;
	r = sketch_locate(dp, a, &h, &win);
	if (r)
		return r;
	idx[0] = zt_dst_cell0(h);
	idx[1] = zt_dst_cell1(h);
	for (int i = 0; i < 2; i++) {
		if (bpf_map_lookup_elem(fd, &idx[i], &c[i]))
			return -errno;
		if (c[i].win != win)
			memset(&c[i], 0, sizeof(c[i]));
	}
	r = dst_add_local(dp, idx, win, c);
	if (r)
		return r;
	memset(out, 0, sizeof(*out));
	out->win = win;
	for (int k = 0; k < ZT_RL_KINDS; k++)
		out->count[k] = min32(c[0].count[k], c[1].count[k]);
	out->bytes = min32(c[0].bytes, c[1].bytes);
	out->ack = min32(c[0].ack, c[1].ack);
	out->challenged = min32(c[0].challenged, c[1].challenged);
	out->admitted = min32(c[0].admitted, c[1].admitted);
	out->exhausted = c[0].exhausted & c[1].exhausted;
	out->srcs = c[0].srcs & c[1].srcs;
	out->nsrcs = (__u8)popcount64(out->srcs);
	return 0;
}

int zt_guard_rl_src(const struct zt_datapath *dp, const struct zt_addr_key *a,
		    struct zt_rl_state *out)
{
	struct zt_addr_key k;
	int fd = MAP(dp, ratelimit_src), r;

	if (fd < 0)
		return fd;
	r = addr_key(a, &k);
	if (r)
		return r;
	return bpf_map_lookup_elem(fd, &k, out) ? -errno : 0;
}

int zt_datapath_act_stats(const struct zt_datapath *dp, uint64_t *out)
{
	int fd = MAP(dp, act_stats);

	if (fd < 0)
		return fd;
	return zt_percpu_sum(fd, ZT_AS_MAX, sizeof(uint64_t), dp->ncpus, out);
}

const char *zt_act_stat_name(unsigned int i)
{
	static const char *const names[ZT_AS_MAX] = {
		[ZT_AS_SRC_SIGNALS] = "source-signals",
		[ZT_AS_DST_SIGNALS] = "destination-signals",
		[ZT_AS_PROBES] = "probes",
		[ZT_AS_PROBE_RESULTS] = "probe-results",
		[ZT_AS_SUPPRESSED] = "events-suppressed",
		[ZT_AS_LIMITED_SRCS] = "sources-limited",
		[ZT_AS_VERIFIED_CHALLENGE] = "verified-by-challenge",
		[ZT_AS_VERIFIED_HANDSHAKE] = "verified-by-handshake",
		[ZT_AS_BAD_ANSWER] = "challenge-bad-answers",
		[ZT_AS_CAPTURES] = "captures",
		[ZT_AS_CAPTURE_SAMPLED_OUT] = "captures-sampled-out",
		[ZT_AS_CAPTURE_LOST] = "captures-lost",
		[ZT_AS_SESSIONS] = "sessions",
		[ZT_AS_HOST_SESSIONS] = "host-sessions",
		[ZT_AS_SSH_REFUSED] = "ssh-guesses-refused",
		[ZT_AS_CLEAR_REFUSED] = "clear-refusals-live",
	};
	return i < ZT_AS_MAX && names[i] ? names[i] : "unknown";
}

/* ln(x) for x >= 1 without libm: halve into [1, 2), then 2 atanh((x - 1) / (x + 1)). */
static double ln_ge1(double x)
{
	double y, y2, term, sum = 0;
	int k = 0;

	while (x >= 2) {
		x /= 2;
		k++;
	}
	y = (x - 1) / (x + 1);
	y2 = y * y;
	term = y;
	for (int i = 1; i < 40; i += 2) {
		sum += term / i;
		term *= y2;
	}
	return k * 0.69314718055994530942 + 2 * sum;
}

double zt_lc_estimate(unsigned int bits, unsigned int m)
{
	double z;

	if (!m || bits > m)
		return 0;
	z = bits == m ? 0.5 : (double)(m - bits);
	return m * ln_ge1((double)m / z);
}

/* ---- conntrack features for the flow model ---- */

void zt_ct_flowstats(const struct zt_ct_val *v, struct zt_feat_flowstats *out)
{
	/* One ZT_CT_IAT unit in microseconds: 2^ZT_CT_IAT_SHIFT ns. */
	const double unit_us = (double)(1u << ZT_CT_IAT_SHIFT) / 1000.0;

	memset(out, 0, sizeof(*out));
	out->handshake = v->hs_done;
	for (int d = 0; d < 2; d++) {
		uint64_t n = v->d[d].packets, gaps = n > 1 ? n - 1 : 0;

		if (n && v->d[d].size_min != ZT_CT_SIZE_UNSET) {
			out->size_min[d] = v->d[d].size_min;
			out->size_max[d] = v->d[d].size_max;
			zt_feat_mean_std(n, (double)v->d[d].bytes, (double)v->d[d].size_sq,
					 &out->size_mean[d], &out->size_std[d]);
		}
		if (gaps && v->d[d].iat_min != ZT_CT_IAT_UNSET) {
			out->iat_min_us[d] = (float)(v->d[d].iat_min * unit_us);
			out->iat_max_us[d] = (float)(v->d[d].iat_max * unit_us);
			zt_feat_mean_std(gaps, (double)v->d[d].iat_sum * unit_us,
					 (double)v->d[d].iat_sq * unit_us * unit_us,
					 &out->iat_mean_us[d], &out->iat_std_us[d]);
		}
		out->syn[d] = v->syn[d];
		out->fin[d] = v->fin[d];
		out->rst[d] = v->rst[d];
		out->psh[d] = v->d[d].psh;
	}
}
