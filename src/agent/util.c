// SPDX-License-Identifier: GPL-2.0-only
/* Small pure helpers: addresses, prefixes, durations, sizes, clocks. No logging. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/util.h"

/* Accumulates one decimal digit into *v; -ERANGE past UINT64_MAX. */
static int add_digit(uint64_t *v, char d)
{
	uint64_t x = (uint64_t)(d - '0');

	if (*v > (UINT64_MAX - x) / 10)
		return -ERANGE;
	*v = *v * 10 + x;
	return 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int zt_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int r;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!is_digit(*p))
			return -EINVAL;
	for (const char *p = s; *p; p++) {
		r = add_digit(&v, *p);
		if (r < 0)
			return r;
	}
	*out = v;
	return 0;
}

static size_t family_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

void zt_cidr_mask(struct zt_cidr *c)
{
	size_t len = family_len(c->family);

	for (size_t i = 0; i < len; i++) {
		int bits = (int)c->prefixlen - (int)(i * 8);

		if (bits >= 8)
			continue;
		c->addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
	memset(c->addr + len, 0, sizeof(c->addr) - len);
}

/*
 * ::ffff:0:0/96 holds IPv4 addresses written as IPv6. The datapath sees IPv4
 * packets as IPv4, so an entry there would never match: an operator who
 * writes ::ffff:198.18.0.1 means 198.18.0.1 and must be told, not ignored.
 */
static bool is_v4_mapped(const struct zt_cidr *c)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return c->family == AF_INET6 && c->prefixlen >= 96 && !memcmp(c->addr, pfx, sizeof(pfx));
}

/* The part after '/': 0..max in decimal, no sign, no leading zero, at most 3 digits. */
static int parse_prefixlen(const char *p, unsigned int max, unsigned int *out)
{
	size_t n = strlen(p);
	unsigned int v = 0;

	if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -EINVAL;
		v = v * 10 + (unsigned int)(p[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int zt_cidr_parse(const char *s, struct zt_cidr *out, bool *had_host_bits)
{
	char buf[INET6_ADDRSTRLEN];
	struct zt_cidr c = {};
	uint8_t before[sizeof(c.addr)];
	const char *slash;
	size_t alen;

	if (!s || !*s)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	/* inet_pton refuses blanks, zones ("%eth0"), octal and hex IPv4 forms. */
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		c.prefixlen = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		c.prefixlen = 128;
	} else {
		return -EINVAL;
	}
	if (slash) {
		unsigned int plen;

		if (parse_prefixlen(slash + 1, c.prefixlen, &plen) < 0)
			return -EINVAL;
		c.prefixlen = (uint8_t)plen;
	}
	if (is_v4_mapped(&c))
		return -EINVAL;
	memcpy(before, c.addr, sizeof(before));
	zt_cidr_mask(&c);
	if (had_host_bits)
		*had_host_bits = memcmp(before, c.addr, sizeof(before)) != 0;
	*out = c;
	return 0;
}

/* v in decimal at p; returns the end. */
static char *put_dec(char *p, unsigned int v)
{
	char t[10];
	int n = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = t[--n];
	return p;
}

static char *put_v4(char *p, const uint8_t *a)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*p++ = '.';
		p = put_dec(p, a[i]);
	}
	return p;
}

/*
 * An IPv6 address as glibc's inet_ntop writes it (RFC 5952): lower-case
 * hex without leading zeros, the first longest run of two or more zero
 * groups as "::", and ::a.b.c.d / ::ffff:a.b.c.d with the last 32 bits
 * dotted. inet_ntop formats each group with sprintf: a listing or an
 * import audit of a million entries spent a fifth of its time there.
 */
static char *put_v6(char *p, const uint8_t *a)
{
	static const char hex[] = "0123456789abcdef";
	unsigned int w[8];
	int best = -1, best_len = 0, cur = -1, cur_len = 0;

	for (int i = 0; i < 8; i++) {
		w[i] = (unsigned int)a[2 * i] << 8 | a[2 * i + 1];
		if (!w[i]) {
			if (cur < 0)
				cur = i, cur_len = 0;
			cur_len++;
		}
		if ((w[i] || i == 7) && cur >= 0) {
			if (cur_len > best_len)
				best = cur, best_len = cur_len;
			cur = -1;
		}
	}
	if (best_len < 2)
		best = -1;
	for (int i = 0; i < 8; i++) {
		if (best >= 0 && i >= best && i < best + best_len) {
			if (i == best)
				*p++ = ':';
			continue;
		}
		if (i)
			*p++ = ':';
		if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)))
			return put_v4(p, a + 12);
		for (int sh = w[i] > 0xfff ? 12 :
			      w[i] > 0xff  ? 8 :
			      w[i] > 0xf   ? 4 :
					     0;
		     sh >= 0; sh -= 4)
			*p++ = hex[(w[i] >> sh) & 15];
	}
	if (best >= 0 && best + best_len == 8)
		*p++ = ':';
	return p;
}

int zt_cidr_format(const struct zt_cidr *c, char *buf, size_t n)
{
	char a[ZT_CIDR_STRLEN], *p;
	size_t len;

	if (!family_len(c->family) || c->prefixlen > family_len(c->family) * 8)
		return -EINVAL;
	p = c->family == AF_INET ? put_v4(a, c->addr) : put_v6(a, c->addr);
	*p++ = '/';
	p = put_dec(p, c->prefixlen);
	len = (size_t)(p - a);
	if (n) {
		/* Cut short as snprintf would, when it does not fit. */
		size_t k = len < n ? len : n - 1;

		memcpy(buf, a, k);
		buf[k] = '\0';
	}
	return len < n ? 0 : -ENOSPC;
}

/* V for a message: printable ASCII, quotes and backslashes as \xNN, at most MAX bytes then "...". */
const char *zt_shown(const char *v, size_t max, char *buf, size_t n)
{
	size_t o = 0, i;

	for (i = 0; v[i] && i < max && o + 5 < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '\'' || ch == '\\')
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (v[i] && o + 4 <= n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* Linux's dev_valid_name(), plus printable ASCII only. */
bool zt_ifname_valid(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= IF_NAMESIZE || !strcmp(v, ".") || !strcmp(v, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '/' || *p == ':')
			return false;
	return true;
}

bool zt_cidr_contains(const struct zt_cidr *c, const uint8_t *addr)
{
	struct zt_cidr x = { .family = c->family, .prefixlen = c->prefixlen };
	size_t len = family_len(c->family);

	if (!len)
		return false;
	memcpy(x.addr, addr, len);
	zt_cidr_mask(&x);
	return memcmp(x.addr, c->addr, len) == 0;
}

#define NS_MS 1000000ULL
#define NS_S 1000000000ULL
#define NS_M (60 * NS_S)
#define NS_H (60 * NS_M)
#define NS_D (24 * NS_H)

int zt_duration_parse(const char *s, uint64_t *out_ns)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
		/* "ms" before "m": the longest unit that matches wins. */
		{ "ms", NS_MS }, { "s", NS_S }, { "m", NS_M }, { "h", NS_H }, { "d", NS_D },
	};
	uint64_t total = 0;
	const char *p = s;
	int r;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		uint64_t v = 0, mul = 0;

		if (!is_digit(*p))
			return -EINVAL;
		for (; is_digit(*p); p++) {
			r = add_digit(&v, *p);
			if (r < 0)
				return r;
		}
		if (!*p && total == 0 && strspn(s, "0123456789") == strlen(s))
			mul = NS_S; /* the whole string is a bare number: seconds */
		for (size_t i = 0; !mul && i < ZT_ARRAY_SIZE(units); i++) {
			size_t ul = strlen(units[i].unit);

			if (!strncmp(p, units[i].unit, ul)) {
				mul = units[i].ns;
				p += ul;
			}
		}
		if (!mul)
			return -EINVAL;
		if (v > UINT64_MAX / mul || total > UINT64_MAX - v * mul)
			return -ERANGE;
		total += v * mul;
	}
	*out_ns = total;
	return 0;
}

int zt_duration_format(uint64_t ns, char *buf, size_t n)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} parts[] = {
		{ "d", NS_D },
		{ "h", NS_H },
		{ "m", NS_M },
		{ "s", NS_S },
	};
	size_t off = 0;
	int r;

	if (!buf || n == 0)
		return -ENOSPC;
	if (ns == 0)
		r = snprintf(buf, n, "0s");
	else if (ns % NS_MS)
		r = snprintf(buf, n, "%lluns", (unsigned long long)ns);
	else if (ns % NS_S)
		r = snprintf(buf, n, "%llums", (unsigned long long)(ns / NS_MS));
	else
		r = -1;
	if (r >= 0)
		return (size_t)r >= n ? -ENOSPC : 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ZT_ARRAY_SIZE(parts); i++) {
		uint64_t q = ns / parts[i].ns;

		if (!q)
			continue;
		ns -= q * parts[i].ns;
		r = snprintf(buf + off, n - off, "%llu%s", (unsigned long long)q, parts[i].unit);
		if (r < 0 || (size_t)r >= n - off)
			return -ENOSPC;
		off += (size_t)r;
	}
	return 0;
}

int zt_size_parse(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mul;
	} sfx[] = {
		{ "", 1 },	     { "B", 1 },
		{ "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
		{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
		{ "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	};
	const char *p = s;
	uint64_t v = 0;
	int r;

	if (!s || !is_digit(*s))
		return -EINVAL;
	for (; is_digit(*p); p++) {
		r = add_digit(&v, *p);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ZT_ARRAY_SIZE(sfx); i++) {
		if (strcmp(p, sfx[i].suffix))
			continue;
		if (v > UINT64_MAX / sfx[i].mul)
			return -ERANGE;
		*out = v * sfx[i].mul;
		return 0;
	}
	return -EINVAL;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * NS_S + (uint64_t)ts.tv_nsec;
}

uint64_t zt_now_boot_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

uint64_t zt_now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t zt_thread_cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

void zt_let_urgent_first(const int *urgent)
{
	const struct timespec step = { 0, 20 * 1000 };

	for (int i = 0; i < 100 && __atomic_load_n(urgent, __ATOMIC_ACQUIRE) > 0; i++)
		nanosleep(&step, NULL);
}

void zt_yield_due(uint64_t *since)
{
	uint64_t now = zt_now_mono_ns();

	if (!*since) {
		*since = now;
		return;
	}
	if (now - *since < ZT_YIELD_NS)
		return;
	sched_yield();
	*since = zt_now_mono_ns();
}

void zt_mutex_init_pi(pthread_mutex_t *m, bool recursive)
{
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	if (recursive)
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	if (pthread_mutex_init(m, &ma) != 0) {
		pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_NONE);
		pthread_mutex_init(m, &ma);
	}
	pthread_mutexattr_destroy(&ma);
}

uint64_t zt_now_unix(void)
{
	return (uint64_t)time(NULL);
}

uint64_t zt_now_unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t zt_boot_to_unix_ns(void)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return ((int64_t)rt.tv_sec - (int64_t)bt.tv_sec) * 1000000000LL +
	       ((int64_t)rt.tv_nsec - (int64_t)bt.tv_nsec);
}

int zt_grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t nc;
	void *nv;

	if (need <= *cap)
		return 0;
	nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	nv = realloc(*v, nc * elem);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

void zt_ifname(unsigned int ifindex, char *buf, size_t n)
{
	char name[IF_NAMESIZE];

	if (if_indextoname(ifindex, name))
		snprintf(buf, n, "%s", name);
	else
		snprintf(buf, n, "if%u", ifindex);
}

int zt_time_format(uint64_t unix_s, char *buf, size_t n)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	if (unix_s > (uint64_t)INT64_MAX || !gmtime_r(&t, &tm))
		return -EINVAL;
	if (!buf || n == 0)
		return -ENOSPC;
	return strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) ? 0 : -ENOSPC;
}

uint32_t zt_fnv1a32(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* mkdir that accepts an existing directory (and only a directory). */
static int mkdir_one(const char *p, unsigned int mode)
{
	struct stat st;

	if (mkdir(p, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(p, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int zt_mkdir_p(const char *path, unsigned int mode)
{
	char p[4096];
	size_t len;
	int r;

	if (!path || !*path)
		return -EINVAL;
	len = strlen(path);
	if (len >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, len + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/' || s[-1] == '/')
			continue;
		*s = '\0';
		r = mkdir_one(p, mode);
		*s = '/';
		if (r < 0)
			return r;
	}
	return mkdir_one(p, mode);
}

void zt_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int zt_listen_parse(const char *s, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs;
	uint64_t port;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hl = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		hs = s;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host) || zt_parse_u64(colon + 1, &port) < 0 || port < 1 ||
	    port > 65535)
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)out;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
	}
	return 0;
}

void zt_sbuf_printf(struct zt_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
			char *q = realloc(b->p, cap);

			if (!q) {
				b->oom = true;
				return;
			}
			b->p = q;
			b->cap = cap;
		}
	}
}

socklen_t zt_sockaddr_set(int family, const uint8_t *addr, uint16_t port,
			  struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, 4);
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, 16);
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	return 0;
}

void zt_vlan_tag_put(uint8_t *p, uint16_t proto_be, uint16_t tci)
{
	memcpy(p, &proto_be, 2);
	p[2] = (uint8_t)(tci >> 8);
	p[3] = (uint8_t)tci;
}
