// SPDX-License-Identifier: GPL-2.0-only
/*
 * The model's feature schema, its hash, feature extraction from flow
 * records, per-source windows, and the CSV feature log (features.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ztagent.h"
#include "agent/util.h"
#include "detect/features.h"
#include "detect/model.h"

#define F(id, n, v, d) [id] = { .name = n, .version = v, .doc = d }

const struct zt_feat_def zt_feat_defs[ZT_F_COUNT] = {
	F(ZT_F_PROTO_TCP, "proto_tcp", 1, "1 for TCP"),
	F(ZT_F_PROTO_UDP, "proto_udp", 1, "1 for UDP"),
	F(ZT_F_PROTO_ICMP, "proto_icmp", 1, "1 for ICMP or ICMPv6"),
	F(ZT_F_SVC_WEB, "svc_web", 1, "destination port is a web service (80, 443, 8080, ...)"),
	F(ZT_F_SVC_DNS, "svc_dns", 1, "destination port is DNS (53, 853, 5353)"),
	F(ZT_F_SVC_REMOTE, "svc_remote", 1, "remote shell or desktop (22, 23, 3389, 5900, ...)"),
	F(ZT_F_SVC_DATABASE, "svc_database", 1, "database, cache or store (5432, 3306, 6379, ...)"),
	F(ZT_F_SVC_MAIL, "svc_mail", 1, "mail (25, 110, 143, 465, 587, 993, 995)"),
	F(ZT_F_SVC_FILE, "svc_file", 1,
	  "file transfer or sharing (20, 21, 69, 139, 445, 2049, ...)"),
	F(ZT_F_SVC_WELL_KNOWN, "svc_well_known", 1, "another port below 1024"),
	F(ZT_F_SVC_REGISTERED, "svc_registered", 1, "another port in 1024..49151"),
	F(ZT_F_SVC_EPHEMERAL, "svc_ephemeral", 1, "a port in 49152..65535"),
	F(ZT_F_DIR_EGRESS, "dir_egress", 1, "the local workload opened the flow"),
	F(ZT_F_LOG_PKTS_OUT, "log_pkts_out", 1, "ln(1 + packets from the opener)"),
	F(ZT_F_LOG_PKTS_IN, "log_pkts_in", 1, "ln(1 + packets back to the opener)"),
	F(ZT_F_LOG_BYTES_OUT, "log_bytes_out", 1, "ln(1 + IP bytes from the opener)"),
	F(ZT_F_LOG_BYTES_IN, "log_bytes_in", 1, "ln(1 + IP bytes back to the opener)"),
	F(ZT_F_LOG_DURATION_MS, "log_duration_ms", 1, "ln(1 + duration in ms)"),
	F(ZT_F_BYTES_OUT_RATIO, "bytes_out_ratio", 1, "bytes out / (out + in), 0 without bytes"),
	F(ZT_F_MEAN_SIZE_OUT, "mean_size_out", 1, "IP bytes per packet from the opener"),
	F(ZT_F_MEAN_SIZE_IN, "mean_size_in", 1, "IP bytes per packet back"),
	F(ZT_F_LOG_PPS, "log_pps", 1, "ln(1 + packets per second), duration >= 1 ms"),
	F(ZT_F_LOG_BPS, "log_bps", 1, "ln(1 + bytes per second), duration >= 1 ms"),
	F(ZT_F_REPLY_SEEN, "reply_seen", 1, "a packet came back"),
	F(ZT_F_TCP_SYN, "tcp_syn", 1, "SYN seen"),
	F(ZT_F_TCP_FIN, "tcp_fin", 1, "FIN seen"),
	F(ZT_F_TCP_RST, "tcp_rst", 1, "RST seen"),
	F(ZT_F_TCP_PSH, "tcp_psh", 1, "PSH seen"),
	F(ZT_F_TCP_ACK, "tcp_ack", 1, "ACK seen"),
	F(ZT_F_TCP_URG, "tcp_urg", 1, "URG seen"),
	F(ZT_F_TCP_HANDSHAKE, "tcp_handshake", 1,
	  "the TCP handshake completed (conntrack, else estimated from packets and flags)"),
	F(ZT_F_HAS_FLOWSTATS, "has_flowstats", 1, "per-flow statistics were available"),
	F(ZT_F_SIZE_MIN_OUT, "size_min_out", 1, "smallest packet from the opener"),
	F(ZT_F_SIZE_MEAN_OUT, "size_mean_out", 1, "mean packet size from the opener"),
	F(ZT_F_SIZE_MAX_OUT, "size_max_out", 1, "largest packet from the opener"),
	F(ZT_F_SIZE_STD_OUT, "size_std_out", 1, "std of packet sizes from the opener"),
	F(ZT_F_SIZE_MIN_IN, "size_min_in", 1, "smallest packet back"),
	F(ZT_F_SIZE_MEAN_IN, "size_mean_in", 1, "mean packet size back"),
	F(ZT_F_SIZE_MAX_IN, "size_max_in", 1, "largest packet back"),
	F(ZT_F_SIZE_STD_IN, "size_std_in", 1, "std of packet sizes back"),
	F(ZT_F_LOG_IAT_MIN_OUT, "log_iat_min_out", 1, "ln(1 + min inter-arrival, us), opener"),
	F(ZT_F_LOG_IAT_MEAN_OUT, "log_iat_mean_out", 1, "ln(1 + mean inter-arrival, us), opener"),
	F(ZT_F_LOG_IAT_MAX_OUT, "log_iat_max_out", 1, "ln(1 + max inter-arrival, us), opener"),
	F(ZT_F_LOG_IAT_STD_OUT, "log_iat_std_out", 1, "ln(1 + std of inter-arrival, us), opener"),
	F(ZT_F_LOG_IAT_MIN_IN, "log_iat_min_in", 1, "ln(1 + min inter-arrival, us), back"),
	F(ZT_F_LOG_IAT_MEAN_IN, "log_iat_mean_in", 1, "ln(1 + mean inter-arrival, us), back"),
	F(ZT_F_LOG_IAT_MAX_IN, "log_iat_max_in", 1, "ln(1 + max inter-arrival, us), back"),
	F(ZT_F_LOG_IAT_STD_IN, "log_iat_std_in", 1, "ln(1 + std of inter-arrival, us), back"),
	F(ZT_F_LOG_SYN_OUT, "log_syn_out", 1, "ln(1 + SYN packets from the opener)"),
	F(ZT_F_LOG_SYN_IN, "log_syn_in", 1, "ln(1 + SYN packets back)"),
	F(ZT_F_LOG_FIN_OUT, "log_fin_out", 1, "ln(1 + FIN packets from the opener)"),
	F(ZT_F_LOG_FIN_IN, "log_fin_in", 1, "ln(1 + FIN packets back)"),
	F(ZT_F_LOG_RST_OUT, "log_rst_out", 1, "ln(1 + RST packets from the opener)"),
	F(ZT_F_LOG_RST_IN, "log_rst_in", 1, "ln(1 + RST packets back)"),
	F(ZT_F_LOG_PSH_OUT, "log_psh_out", 1, "ln(1 + PSH packets from the opener)"),
	F(ZT_F_LOG_PSH_IN, "log_psh_in", 1, "ln(1 + PSH packets back)"),
	F(ZT_F_HAS_SRC, "has_src", 1, "the source's window was available"),
	F(ZT_F_SRC_LOG_FLOWS, "src_log_flows", 1, "ln(1 + flows of the source in its window)"),
	F(ZT_F_SRC_LOG_DST_PORTS, "src_log_dst_ports", 1,
	  "ln(1 + distinct destination ports of the source, estimated)"),
	F(ZT_F_SRC_LOG_DST_HOSTS, "src_log_dst_hosts", 1,
	  "ln(1 + distinct destination addresses of the source, estimated)"),
	F(ZT_F_SRC_SYN_NOHS_RATIO, "src_syn_nohs_ratio", 1,
	  "TCP flows of the source with a SYN and no handshake / its TCP flows"),
	F(ZT_F_SRC_NOREPLY_RATIO, "src_noreply_ratio", 1,
	  "flows of the source that got no packet back / its flows"),
	F(ZT_F_SRC_LOG_SAME_SERVICE, "src_log_same_service", 1,
	  "ln(1 + flows of the source to this flow's destination address and port)"),
	F(ZT_F_SRC_LOG_BYTES_OUT, "src_log_bytes_out", 1, "ln(1 + bytes the source sent)"),
};
#undef F

/* ---- the schema hash ---- */

static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static uint8_t schema_hash[ZT_FEAT_HASH_LEN];
static char schema_hash_hex[ZT_FEAT_HASH_HEX];

static void hash_init(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	char line[96];

	/* No fallback: without SHA-256 no model can ever match, and that must show. */
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		abort();
	for (size_t i = 0; i < ZT_F_COUNT; i++) {
		int n = snprintf(line, sizeof(line), "%s:%u\n", zt_feat_defs[i].name,
				 zt_feat_defs[i].version);

		if (!EVP_DigestUpdate(ctx, line, (size_t)n))
			abort();
	}
	if (!EVP_DigestFinal_ex(ctx, schema_hash, &len) || len != ZT_FEAT_HASH_LEN)
		abort();
	EVP_MD_CTX_free(ctx);
	for (size_t i = 0; i < ZT_FEAT_HASH_LEN; i++)
		snprintf(schema_hash_hex + 2 * i, 3, "%02x", schema_hash[i]);
}

const uint8_t *zt_feat_schema_hash(void)
{
	pthread_once(&hash_once, hash_init);
	return schema_hash;
}

const char *zt_feat_schema_hash_hex(void)
{
	pthread_once(&hash_once, hash_init);
	return schema_hash_hex;
}

/* Feature names and docs are ours (no quotes or backslashes): printed as they are. */
int zt_feat_schema_json(FILE *f)
{
	fprintf(f, "{\n  \"hash\": \"%s\",\n  \"hash_input\": \"name:version\\n per feature\",\n",
		zt_feat_schema_hash_hex());
	fprintf(f, "  \"window_us\": %llu,\n  \"classes\": [",
		(unsigned long long)ZT_FEAT_WINDOW_US);
	for (int c = 0; c < ZT_THREAT_CLASSES; c++)
		fprintf(f, "%s\"%s\"", c ? ", " : "", zt_threat_name((enum zt_threat)c));
	fprintf(f, "],\n  \"features\": [\n");
	for (size_t i = 0; i < ZT_F_COUNT; i++)
		fprintf(f,
			"    {\"index\": %zu, \"name\": \"%s\", \"version\": %u, \"doc\": \"%s\"}%s\n",
			i, zt_feat_defs[i].name, zt_feat_defs[i].version, zt_feat_defs[i].doc,
			i + 1 < ZT_F_COUNT ? "," : "");
	fprintf(f, "  ]\n}\n");
	return ferror(f) ? -EIO : 0;
}

/* ---- service classes ---- */

struct svc_port {
	uint16_t port;
	uint8_t cls;
};

/* Sorted by port: looked up by binary search. */
static const struct svc_port svc_ports[] = {
	{ 20, ZT_SVC_FILE },	   { 21, ZT_SVC_FILE },	       { 22, ZT_SVC_REMOTE },
	{ 23, ZT_SVC_REMOTE },	   { 25, ZT_SVC_MAIL },	       { 53, ZT_SVC_DNS },
	{ 69, ZT_SVC_FILE },	   { 80, ZT_SVC_WEB },	       { 110, ZT_SVC_MAIL },
	{ 115, ZT_SVC_FILE },	   { 139, ZT_SVC_FILE },       { 143, ZT_SVC_MAIL },
	{ 443, ZT_SVC_WEB },	   { 445, ZT_SVC_FILE },       { 465, ZT_SVC_MAIL },
	{ 512, ZT_SVC_REMOTE },	   { 513, ZT_SVC_REMOTE },     { 514, ZT_SVC_REMOTE },
	{ 587, ZT_SVC_MAIL },	   { 853, ZT_SVC_DNS },	       { 873, ZT_SVC_FILE },
	{ 989, ZT_SVC_FILE },	   { 990, ZT_SVC_FILE },       { 992, ZT_SVC_REMOTE },
	{ 993, ZT_SVC_MAIL },	   { 995, ZT_SVC_MAIL },       { 1433, ZT_SVC_DATABASE },
	{ 1521, ZT_SVC_DATABASE }, { 2049, ZT_SVC_FILE },      { 2379, ZT_SVC_DATABASE },
	{ 3000, ZT_SVC_WEB },	   { 3306, ZT_SVC_DATABASE },  { 3389, ZT_SVC_REMOTE },
	{ 5353, ZT_SVC_DNS },	   { 5432, ZT_SVC_DATABASE },  { 5900, ZT_SVC_REMOTE },
	{ 5901, ZT_SVC_REMOTE },   { 5902, ZT_SVC_REMOTE },    { 5903, ZT_SVC_REMOTE },
	{ 5984, ZT_SVC_DATABASE }, { 5985, ZT_SVC_REMOTE },    { 5986, ZT_SVC_REMOTE },
	{ 6379, ZT_SVC_DATABASE }, { 7000, ZT_SVC_DATABASE },  { 8000, ZT_SVC_WEB },
	{ 8008, ZT_SVC_WEB },	   { 8080, ZT_SVC_WEB },       { 8443, ZT_SVC_WEB },
	{ 8888, ZT_SVC_WEB },	   { 9042, ZT_SVC_DATABASE },  { 9200, ZT_SVC_DATABASE },
	{ 9443, ZT_SVC_WEB },	   { 11211, ZT_SVC_DATABASE }, { 27017, ZT_SVC_DATABASE },
};

enum zt_svc_class zt_feat_service_class(uint8_t proto, uint16_t port, bool has_port)
{
	size_t lo = 0, hi = ZT_ARRAY_SIZE(svc_ports);

	if (!has_port || port == 0 || !zt_proto_has_ports(proto))
		return ZT_SVC_NONE;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (svc_ports[mid].port == port)
			return (enum zt_svc_class)svc_ports[mid].cls;
		if (svc_ports[mid].port < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (port < 1024)
		return ZT_SVC_WELL_KNOWN;
	if (port < 49152)
		return ZT_SVC_REGISTERED;
	return ZT_SVC_EPHEMERAL;
}

const char *zt_feat_service_name(enum zt_svc_class c)
{
	static const char *const names[ZT_SVC_MAX] = {
		"none", "web",	"dns",	      "remote",	    "database",
		"mail", "file", "well_known", "registered", "ephemeral",
	};

	return (unsigned int)c < ZT_SVC_MAX ? names[c] : "?";
}

/* ---- one flow ---- */

void zt_feat_mean_std(uint64_t n, double sum, double sumsq, float *mean, float *std)
{
	double m, var;

	*mean = 0;
	*std = 0;
	if (n == 0 || !isfinite(sum) || !isfinite(sumsq))
		return;
	m = sum / (double)n;
	*mean = (float)m;
	if (n < 2)
		return;
	var = sumsq / (double)n - m * m;
	/* Rounding can make a constant series' variance slightly negative. */
	*std = var > 0 ? (float)sqrt(var) : 0;
}

static uint64_t nonneg(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

bool zt_feat_handshake(const struct zt_flow_record *r, const struct zt_feat_flowstats *fs)
{
	uint64_t out = nonneg(r->packets_sent), in = nonneg(r->packets_received);

	if (r->protocol != IPPROTO_TCP)
		return false;
	if (fs)
		return fs->handshake;
	if (in == 0)
		return false;
	/* An interim record of an established flow: no SYN in it, ACKs both ways. */
	if (!(r->tcp_flags & ZT_TCP_SYN))
		return (r->tcp_flags & ZT_TCP_ACK) != 0;
	if (out < 2)
		return false;
	return !((r->tcp_flags & ZT_TCP_RST) && out + in <= 3);
}

static float lg(double v)
{
	return v > 0 && isfinite(v) ? (float)log1p(v) : 0.0f;
}

static float fin(float v)
{
	return isfinite(v) && v > 0 ? v : 0.0f;
}

void zt_features_compute(const struct zt_flow_record *r, const struct zt_feat_flowstats *fs,
			 const struct zt_feat_src *src, float *x)
{
	uint64_t pout = nonneg(r->packets_sent), pin = nonneg(r->packets_received);
	uint64_t bout = nonneg(r->bytes_sent), bin = nonneg(r->bytes_received);
	double dur_ms = (double)nonneg(r->duration_ms);
	double dur_s = (dur_ms < 1 ? 1 : dur_ms) / 1000.0;
	bool tcp = r->protocol == IPPROTO_TCP;
	enum zt_svc_class svc;

	memset(x, 0, ZT_F_COUNT * sizeof(*x));
	x[ZT_F_PROTO_TCP] = tcp;
	x[ZT_F_PROTO_UDP] = r->protocol == IPPROTO_UDP;
	x[ZT_F_PROTO_ICMP] = r->protocol == IPPROTO_ICMP || r->protocol == IPPROTO_ICMPV6;
	svc = zt_feat_service_class(r->protocol, r->dest_port, r->present & ZT_FR_HAS_DPORT);
	if (svc != ZT_SVC_NONE)
		x[ZT_F_SVC_WEB + (svc - ZT_SVC_WEB)] = 1;
	x[ZT_F_DIR_EGRESS] = !strcmp(r->direction, "egress");
	x[ZT_F_LOG_PKTS_OUT] = lg((double)pout);
	x[ZT_F_LOG_PKTS_IN] = lg((double)pin);
	x[ZT_F_LOG_BYTES_OUT] = lg((double)bout);
	x[ZT_F_LOG_BYTES_IN] = lg((double)bin);
	x[ZT_F_LOG_DURATION_MS] = lg(dur_ms);
	if (bout + bin)
		x[ZT_F_BYTES_OUT_RATIO] = (float)((double)bout / (double)(bout + bin));
	if (pout)
		x[ZT_F_MEAN_SIZE_OUT] = (float)((double)bout / (double)pout);
	if (pin)
		x[ZT_F_MEAN_SIZE_IN] = (float)((double)bin / (double)pin);
	x[ZT_F_LOG_PPS] = lg((double)(pout + pin) / dur_s);
	x[ZT_F_LOG_BPS] = lg((double)(bout + bin) / dur_s);
	x[ZT_F_REPLY_SEEN] = pin > 0;
	if (tcp) {
		x[ZT_F_TCP_SYN] = !!(r->tcp_flags & ZT_TCP_SYN);
		x[ZT_F_TCP_FIN] = !!(r->tcp_flags & ZT_TCP_FIN);
		x[ZT_F_TCP_RST] = !!(r->tcp_flags & ZT_TCP_RST);
		x[ZT_F_TCP_PSH] = !!(r->tcp_flags & ZT_TCP_PSH);
		x[ZT_F_TCP_ACK] = !!(r->tcp_flags & ZT_TCP_ACK);
		x[ZT_F_TCP_URG] = !!(r->tcp_flags & ZT_TCP_URG);
		x[ZT_F_TCP_HANDSHAKE] = zt_feat_handshake(r, fs);
	}
	if (fs) {
		x[ZT_F_HAS_FLOWSTATS] = 1;
		for (int d = 0; d < 2; d++) {
			x[ZT_F_SIZE_MIN_OUT + 4 * d] = fin(fs->size_min[d]);
			x[ZT_F_SIZE_MEAN_OUT + 4 * d] = fin(fs->size_mean[d]);
			x[ZT_F_SIZE_MAX_OUT + 4 * d] = fin(fs->size_max[d]);
			x[ZT_F_SIZE_STD_OUT + 4 * d] = fin(fs->size_std[d]);
			x[ZT_F_LOG_IAT_MIN_OUT + 4 * d] = lg(fs->iat_min_us[d]);
			x[ZT_F_LOG_IAT_MEAN_OUT + 4 * d] = lg(fs->iat_mean_us[d]);
			x[ZT_F_LOG_IAT_MAX_OUT + 4 * d] = lg(fs->iat_max_us[d]);
			x[ZT_F_LOG_IAT_STD_OUT + 4 * d] = lg(fs->iat_std_us[d]);
			x[ZT_F_LOG_SYN_OUT + d] = lg(fs->syn[d]);
			x[ZT_F_LOG_FIN_OUT + d] = lg(fs->fin[d]);
			x[ZT_F_LOG_RST_OUT + d] = lg(fs->rst[d]);
			x[ZT_F_LOG_PSH_OUT + d] = lg(fs->psh[d]);
		}
	}
	if (src && src->flows) {
		x[ZT_F_HAS_SRC] = 1;
		x[ZT_F_SRC_LOG_FLOWS] = lg(src->flows);
		x[ZT_F_SRC_LOG_DST_PORTS] = lg(src->dst_ports);
		x[ZT_F_SRC_LOG_DST_HOSTS] = lg(src->dst_hosts);
		if (src->tcp_flows)
			x[ZT_F_SRC_SYN_NOHS_RATIO] = (float)src->syn_nohs / (float)src->tcp_flows;
		x[ZT_F_SRC_NOREPLY_RATIO] = (float)src->noreply / (float)src->flows;
		x[ZT_F_SRC_LOG_SAME_SERVICE] = lg(src->same_service);
		x[ZT_F_SRC_LOG_BYTES_OUT] = lg((double)src->bytes_out);
	}
}

/* ---- per-source windows ---- */

#define BITMAP_BITS 256
#define BITMAP_WORDS (BITMAP_BITS / 64)
#define SVC_SLOTS 16
#define PROBES 8

struct win_counts {
	uint32_t flows, tcp_flows, syn_nohs, noreply;
	uint64_t bytes_out;
	uint64_t ports[BITMAP_WORDS];
	uint64_t hosts[BITMAP_WORDS];
	/* flows per (destination, port), hashed: an overestimate when two share a slot */
	uint16_t svc[SVC_SLOTS];
};

struct win_src {
	uint8_t used;
	uint8_t family;
	uint8_t addr[16];
	uint64_t last_us; /* last record seen */
	uint64_t start_us; /* start of the current window */
	struct win_counts cur, prev;
};

struct zt_feat_window {
	struct win_src *tab;
	uint32_t mask; /* slots - 1 (a power of two) */
	uint64_t window_us;
	uint64_t seed;
};

int zt_feat_window_new(uint32_t max_sources, uint64_t window_us, struct zt_feat_window **out)
{
	struct zt_feat_window *w;
	uint32_t n = 1;

	if (!max_sources)
		max_sources = ZT_FEAT_WINDOW_SOURCES;
	if (max_sources > (1u << 24))
		max_sources = 1u << 24;
	while (n < max_sources)
		n <<= 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->tab = calloc(n, sizeof(*w->tab));
	if (!w->tab) {
		free(w);
		return -ENOMEM;
	}
	w->mask = n - 1;
	w->window_us = window_us ? window_us : ZT_FEAT_WINDOW_US;
	/* A keyed table: a sender cannot aim its addresses at one probe run. */
	if (getrandom(&w->seed, sizeof(w->seed), GRND_NONBLOCK) != sizeof(w->seed))
		w->seed = zt_now_mono_ns() * 0x9e3779b97f4a7c15ULL;
	*out = w;
	return 0;
}

void zt_feat_window_free(struct zt_feat_window *w)
{
	if (!w)
		return;
	free(w->tab);
	free(w);
}

static uint64_t addr_hash(uint8_t family, const uint8_t a[16], uint64_t seed)
{
	uint64_t lo, hi;

	memcpy(&lo, a, 8);
	memcpy(&hi, a + 8, 8);
	return zt_mix64(zt_mix64(lo ^ seed) ^ hi ^ ((uint64_t)family << 56));
}

static void bit_set(uint64_t *bm, uint64_t h)
{
	unsigned int b = (unsigned int)(h % BITMAP_BITS);

	bm[b / 64] |= 1ULL << (b % 64);
}

/* Linear counting over the union of two bitmaps. */
static float distinct(const uint64_t *a, const uint64_t *b)
{
	unsigned int set = 0;
	double zeros;

	for (int i = 0; i < BITMAP_WORDS; i++)
		set += (unsigned int)__builtin_popcountll(a[i] | b[i]);
	zeros = BITMAP_BITS - set;
	if (zeros < 1)
		zeros = 1; /* saturated: the estimate caps at m ln m */
	return (float)(-(double)BITMAP_BITS * log(zeros / BITMAP_BITS));
}

static struct win_src *lookup(struct zt_feat_window *w, uint8_t family, const uint8_t a[16],
			      uint64_t now_us)
{
	uint64_t h = addr_hash(family, a, w->seed);
	struct win_src *victim = NULL;

	for (uint32_t i = 0; i < PROBES; i++) {
		struct win_src *e = &w->tab[(h + i) & w->mask];

		if (e->used && e->family == family && !memcmp(e->addr, a, 16))
			return e;
		if (!e->used) {
			if (!victim || victim->used)
				victim = e;
		} else if (!victim || (victim->used && e->last_us < victim->last_us)) {
			victim = e;
		}
	}
	memset(victim, 0, sizeof(*victim));
	victim->used = 1;
	victim->family = family;
	memcpy(victim->addr, a, 16);
	victim->start_us = now_us;
	return victim;
}

void zt_feat_window_add(struct zt_feat_window *w, const struct zt_flow_record *r,
			const struct zt_feat_flowstats *fs, struct zt_feat_src *src)
{
	uint64_t now = (uint64_t)(r->end_time_us > 0 ? r->end_time_us : r->start_time_us);
	struct win_src *e = lookup(w, r->family, r->source_ip, now);
	uint64_t dh = addr_hash(r->family, r->dest_ip, 0);
	uint64_t ph = zt_mix64(((uint64_t)r->protocol << 16 | r->dest_port) + 0x51ed27);
	unsigned int svc = (unsigned int)(zt_mix64(dh ^ ph) % SVC_SLOTS);
	struct win_counts *c;

	if (now >= e->start_us + 2 * w->window_us) {
		memset(&e->prev, 0, sizeof(e->prev));
		memset(&e->cur, 0, sizeof(e->cur));
		e->start_us = now;
	} else if (now >= e->start_us + w->window_us) {
		e->prev = e->cur;
		memset(&e->cur, 0, sizeof(e->cur));
		e->start_us += w->window_us;
	}
	if (now > e->last_us)
		e->last_us = now;
	c = &e->cur;
	c->flows++;
	if (r->protocol == IPPROTO_TCP) {
		c->tcp_flows++;
		if ((r->tcp_flags & ZT_TCP_SYN) && !zt_feat_handshake(r, fs))
			c->syn_nohs++;
	}
	if (r->packets_received <= 0)
		c->noreply++;
	c->bytes_out += nonneg(r->bytes_sent);
	if (zt_proto_has_ports(r->protocol) && (r->present & ZT_FR_HAS_DPORT))
		bit_set(c->ports, ph);
	bit_set(c->hosts, dh);
	if (c->svc[svc] < UINT16_MAX)
		c->svc[svc]++;

	src->flows = c->flows + e->prev.flows;
	src->tcp_flows = c->tcp_flows + e->prev.tcp_flows;
	src->syn_nohs = c->syn_nohs + e->prev.syn_nohs;
	src->noreply = c->noreply + e->prev.noreply;
	src->bytes_out = c->bytes_out + e->prev.bytes_out;
	src->same_service = (uint32_t)c->svc[svc] + e->prev.svc[svc];
	src->dst_ports = distinct(c->ports, e->prev.ports);
	src->dst_hosts = distinct(c->hosts, e->prev.hosts);
}

/* ---- the feature log ---- */

struct zt_featlog {
	FILE *f;
	struct zt_feat_window *win;
};

#define META_COLS "time_us,src,dst,proto,dport,direction"

int zt_featlog_header(char *buf, size_t n)
{
	size_t len = 0;
	int k = snprintf(buf, n, "%s", META_COLS);

	if (k < 0 || (size_t)k >= n)
		return -ENOSPC;
	len = (size_t)k;
	for (size_t i = 0; i < ZT_F_COUNT; i++) {
		k = snprintf(buf + len, n - len, ",%s", zt_feat_defs[i].name);
		if (k < 0 || (size_t)k >= n - len)
			return -ENOSPC;
		len += (size_t)k;
	}
	return (int)len;
}

int zt_featlog_open(const char *path, struct zt_featlog **out, char *err, size_t errlen)
{
	char hdr[4096], line[4096];
	struct zt_featlog *fl = NULL;
	struct stat st;
	int r, hlen = zt_featlog_header(hdr, sizeof(hdr));

	if (hlen < 0) {
		zt_seterr(err, errlen, "feature log: the header does not fit %zu bytes",
			  sizeof(hdr));
		return hlen;
	}
	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	r = zt_feat_window_new(0, 0, &fl->win);
	if (r < 0)
		goto fail;
	fl->f = fopen(path, "a+e");
	if (!fl->f) {
		r = -errno;
		zt_seterr(err, errlen, "feature log %s: cannot open for appending: %s", path,
			  strerror(errno));
		goto fail;
	}
	if (fstat(fileno(fl->f), &st) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "feature log %s: %s", path, strerror(errno));
		goto fail;
	}
	if (st.st_size == 0) {
		if (fprintf(fl->f, "%s\n", hdr) < 0 || fflush(fl->f)) {
			r = -EIO;
			zt_seterr(err, errlen, "feature log %s: cannot write the header", path);
			goto fail;
		}
	} else {
		rewind(fl->f);
		if (!fgets(line, sizeof(line), fl->f) || strncmp(line, hdr, (size_t)hlen) ||
		    (line[hlen] != '\n' && line[hlen] != '\0')) {
			r = -EEXIST;
			zt_seterr(
				err, errlen,
				"feature log %s: the file has other columns than this agent's feature schema %.16s; move it away or name another file",
				path, zt_feat_schema_hash_hex());
			goto fail;
		}
		fseek(fl->f, 0, SEEK_END);
	}
	*out = fl;
	return 0;
fail:
	zt_featlog_close(fl);
	return r;
}

void zt_featlog_close(struct zt_featlog *fl)
{
	if (!fl)
		return;
	if (fl->f)
		fclose(fl->f);
	zt_feat_window_free(fl->win);
	free(fl);
}

int zt_featlog_write_row(struct zt_featlog *fl, const struct zt_flow_record *r, const float *x)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];

	if (!inet_ntop(r->family, r->source_ip, sa, sizeof(sa)) ||
	    !inet_ntop(r->family, r->dest_ip, da, sizeof(da)))
		return -EAFNOSUPPORT;
	fprintf(fl->f, "%lld,%s,%s,%u,%u,%s", (long long)r->end_time_us, sa, da, r->protocol,
		(r->present & ZT_FR_HAS_DPORT) ? r->dest_port : 0,
		r->direction[0] ? r->direction : "-");
	/* %.9g: a float's exact value survives the round trip through text. */
	for (size_t k = 0; k < ZT_F_COUNT; k++)
		fprintf(fl->f, ",%.9g", (double)x[k]);
	return fputc('\n', fl->f) == EOF ? -EIO : 0;
}

int zt_featlog_flush(struct zt_featlog *fl)
{
	if (fflush(fl->f) || ferror(fl->f)) {
		clearerr(fl->f);
		return -EIO;
	}
	return 0;
}

int zt_featlog_write(struct zt_featlog *fl, const struct zt_flow_record *recs, size_t n)
{
	float x[ZT_F_COUNT];

	for (size_t i = 0; i < n; i++) {
		const struct zt_flow_record *r = &recs[i];
		struct zt_feat_src src;

		if (r->kind != ZT_FLOW_KIND_FLOW)
			continue;
		zt_feat_window_add(fl->win, r, zt_feat_record_stats(r), &src);
		zt_features_compute(r, zt_feat_record_stats(r), &src, x);
		zt_featlog_write_row(fl, r, x);
	}
	return zt_featlog_flush(fl);
}
