// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

int zt_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

void zt_cidr_mask(struct zt_cidr *c)
{
	size_t len = c->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < len; i++) {
		int bits = (int)c->prefixlen - (int)(i * 8);

		if (bits >= 8)
			continue;
		c->addr[i] &= bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
	}
	if (c->family == AF_INET)
		memset(c->addr + 4, 0, 12);
}

int zt_cidr_parse(const char *s, struct zt_cidr *out, bool *had_host_bits)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct zt_cidr c = {};
	const char *slash;
	size_t alen;
	uint8_t before[16];

	if (!s || !*s)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
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
		const char *p = slash + 1;
		unsigned int v = 0;
		size_t n = strlen(p);

		/* Digits only, no sign, no leading zero (so "/08" is refused), at most 3. */
		if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
			return -EINVAL;
		for (size_t i = 0; i < n; i++) {
			if (!isdigit((unsigned char)p[i]))
				return -EINVAL;
			v = v * 10 + (unsigned int)(p[i] - '0');
		}
		if (v > c.prefixlen)
			return -EINVAL;
		c.prefixlen = v;
	}
	memcpy(before, c.addr, sizeof(before));
	zt_cidr_mask(&c);
	if (had_host_bits)
		*had_host_bits = memcmp(before, c.addr, sizeof(before)) != 0;
	*out = c;
	return 0;
}

int zt_cidr_format(const struct zt_cidr *c, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	int r;

	if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
		return -EINVAL;
	r = snprintf(buf, n, "%s/%u", a, c->prefixlen);
	return r < 0 || (size_t)r >= n ? -ENOSPC : 0;
}

bool zt_cidr_contains(const struct zt_cidr *c, const uint8_t *addr)
{
	struct zt_cidr x = { .family = c->family, .prefixlen = c->prefixlen };

	memcpy(x.addr, addr, c->family == AF_INET ? 4 : 16);
	zt_cidr_mask(&x);
	return memcmp(x.addr, c->addr, c->family == AF_INET ? 4 : 16) == 0;
}

static const struct {
	const char *unit;
	uint64_t ns;
} dur_units[] = {
	/* "ms" before "m" so the longest unit wins. */
	{ "ms", 1000000ULL },	   { "s", 1000000000ULL },     { "m", 60000000000ULL },
	{ "h", 3600000000000ULL }, { "d", 86400000000000ULL },
};

int zt_duration_parse(const char *s, uint64_t *out_ns)
{
	uint64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	/* A bare number is seconds. */
	if (strspn(s, "0123456789") == strlen(s)) {
		uint64_t v;
		int r = zt_parse_u64(s, &v);

		if (r < 0)
			return r;
		if (v > UINT64_MAX / 1000000000ULL)
			return -ERANGE;
		*out_ns = v * 1000000000ULL;
		return 0;
	}
	while (*p) {
		uint64_t v = 0, mul = 0;
		size_t digits = strspn(p, "0123456789");
		size_t i;

		if (!digits)
			return -EINVAL;
		for (i = 0; i < digits; i++) {
			if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
				return -ERANGE;
			v = v * 10 + (uint64_t)(p[i] - '0');
		}
		p += digits;
		for (i = 0; i < ZT_ARRAY_SIZE(dur_units); i++) {
			size_t ul = strlen(dur_units[i].unit);

			if (strncmp(p, dur_units[i].unit, ul) == 0 &&
			    !(ul == 1 && p[0] == 'm' && p[1] == 's')) {
				mul = dur_units[i].ns;
				p += ul;
				break;
			}
		}
		if (!mul)
			return -EINVAL;
		if (v && mul > UINT64_MAX / v)
			return -ERANGE;
		if (total > UINT64_MAX - v * mul)
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
		{ "d", 86400000000000ULL },
		{ "h", 3600000000000ULL },
		{ "m", 60000000000ULL },
		{ "s", 1000000000ULL },
	};
	size_t off = 0;

	if (n == 0)
		return -ENOSPC;
	if (ns == 0)
		return snprintf(buf, n, "0s") >= (int)n ? -ENOSPC : 0;
	if (ns % 1000000000ULL) {
		/* Not whole seconds: milliseconds when exact, else nanoseconds. */
		if (ns % 1000000ULL == 0)
			return snprintf(buf, n, "%llums", (unsigned long long)(ns / 1000000ULL)) >=
					       (int)n ?
				       -ENOSPC :
				       0;
		return snprintf(buf, n, "%lluns", (unsigned long long)ns) >= (int)n ? -ENOSPC : 0;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < ZT_ARRAY_SIZE(parts); i++) {
		uint64_t q = ns / parts[i].ns;
		int r;

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
		{ "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 },
		{ "TiB", 1ULL << 40 }, { "K", 1ULL << 10 },   { "M", 1ULL << 20 },
		{ "G", 1ULL << 30 },   { "T", 1ULL << 40 },   { "B", 1 },
	};
	char num[32];
	size_t digits;
	uint64_t v, mul = 1;
	int r;

	if (!s || !*s)
		return -EINVAL;
	digits = strspn(s, "0123456789");
	if (!digits || digits >= sizeof(num))
		return digits ? -ERANGE : -EINVAL;
	memcpy(num, s, digits);
	num[digits] = '\0';
	r = zt_parse_u64(num, &v);
	if (r < 0)
		return r;
	if (s[digits]) {
		size_t i;

		for (i = 0; i < ZT_ARRAY_SIZE(sfx); i++)
			if (strcmp(s + digits, sfx[i].suffix) == 0)
				break;
		if (i == ZT_ARRAY_SIZE(sfx))
			return -EINVAL;
		mul = sfx[i].mul;
	}
	if (v && mul > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t zt_now_boot_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

uint64_t zt_now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t zt_now_unix(void)
{
	return (uint64_t)time(NULL);
}

int zt_time_format(uint64_t unix_s, char *buf, size_t n)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return -EINVAL;
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

int zt_mkdir_p(const char *path, unsigned int mode)
{
	char p[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, len + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
