// SPDX-License-Identifier: GPL-2.0-only
/* Threat names, decisions, and small helpers the detectors share. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "detect/detect.h"

static const char *const threat_names[ZT_THREAT_MAX] = {
	[ZT_THREAT_NONE] = "benign",	   [ZT_THREAT_SCAN] = "scan",
	[ZT_THREAT_FLOOD] = "flood",	   [ZT_THREAT_BRUTEFORCE] = "bruteforce",
	[ZT_THREAT_SLOWCONN] = "slowconn", [ZT_THREAT_EXFIL] = "exfiltration",
	[ZT_THREAT_MODEL] = "model",	   [ZT_THREAT_IOC] = "ioc",
};

const char *zt_threat_name(unsigned int t)
{
	return t < ZT_THREAT_MAX ? threat_names[t] : "unknown";
}

int zt_threat_parse(const char *s, enum zt_threat *out)
{
	for (unsigned int i = 0; i < ZT_THREAT_MAX; i++)
		if (!strcmp(s, threat_names[i])) {
			*out = (enum zt_threat)i;
			return 0;
		}
	return -EINVAL;
}

void zt_decision_init(struct zt_decision *d, enum zt_threat t, enum zt_subject_role role,
		      uint8_t family, const uint8_t *addr, uint64_t ts_ns)
{
	memset(d, 0, sizeof(*d));
	d->threat = (uint8_t)t;
	d->role = (uint8_t)role;
	d->family = family == 6 ? 6 : 4;
	memcpy(d->addr, addr, zt_fam_len(d->family));
	d->ts_ns = ts_ns;
	d->first_ns = ts_ns;
}

const char *zt_addr_str(uint8_t family, const uint8_t *addr, char *buf, size_t n)
{
	if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

uint64_t zt_detect_hash(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	/* FNV alone mixes the last bytes poorly into the high bits. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

double zt_normal_quantile_upper(double p)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
				    -2.759285104469687e+02, 1.383577518672690e+02,
				    -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
				    -1.556989798598866e+02, 6.680131188771972e+01,
				    -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
				    -2.400758277161838e+00, -2.549732539343734e+00,
				    4.374664141464968e+00,  2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01,
				    2.445134137142996e+00, 3.754408661907416e+00 };
	double q, r, x, lo = 0.02425;
	/* Lower-tail quantile of 1 - p: P(Z <= x) = 1 - p. */
	double pl = 1.0 - p;

	if (!(p > 0.0 && p < 1.0))
		return p <= 0.0 ? INFINITY : -INFINITY;
	if (pl < lo) {
		q = sqrt(-2 * log(pl));
		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	} else if (pl <= 1 - lo) {
		q = pl - 0.5;
		r = q * q;
		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
		    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
	} else {
		/* Upper tail computed from p directly: no cancellation in 1 - pl. */
		q = sqrt(-2 * log(p));
		x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	return x;
}

uint64_t zt_conn_payload(const struct zt_conn *c, int dir)
{
	uint64_t hdr, est;

	if (c->has_payload)
		return c->payload[dir];
	/* Each segment with timestamps (32 bytes of TCP header); each SYN 8 more for its options. */
	hdr = c->packets[dir] * ((c->family == 6 ? 40u : 20u) + 32u);
	if (c->syns[dir])
		hdr += 8ULL * c->syns[dir];
	else if (c->flags[dir] & ZT_DF_SYN)
		hdr += 8;
	est = c->bytes[dir] > hdr ? c->bytes[dir] - hdr : 0;
	return est;
}
