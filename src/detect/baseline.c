// SPDX-License-Identifier: GPL-2.0-only
/* The per-workload baseline (baseline.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ztagent.h"
#include "agent/util.h"
#include "detect/baseline.h"

#define BLOOM_BITS 4096
#define PROBES 8
/* Standard deviations are at least this: a constant workload must not alarm on one byte more. */
#define SD_MIN_BYTES 0.25 /* about 28 % more bytes than usual */
#define SD_MIN_NEW 0.5
/* The histogram of scores behind the empirical threshold. */
#define H_MIN (-8.0)
#define H_STEP (1.0 / 32)
#define H_BINS 2048 /* up to 56; higher scores land in the last bin */
#define H_HALVE_AT 4000000.0 /* then every count is halved: the quantile follows drift */

struct stat2 {
	double mean, var;
};

struct workload {
	uint8_t used;
	uint8_t open; /* a window is open */
	uint64_t key;
	uint64_t last_ns;
	uint64_t start_ns;
	uint64_t bytes, new_dsts;
	uint32_t windows;
	struct stat2 b, n;
	uint64_t bloom[BLOOM_BITS / 64];
	char name[ZT_BL_NAME_MAX];
};

struct zt_baseline {
	struct zt_baseline_cfg cfg;
	struct workload *tab;
	uint32_t mask;
	uint64_t seed;
	double k_gauss, k;
	bool calibrated;
	double hist[H_BINS];
	double h_total;
	uint32_t since_quantile;
};

/* Upper-tail standard normal quantile: the k with P(Z >= k) = p, by bisection on erfc. */
static double norm_upper(double p)
{
	double lo = -10, hi = 40;

	for (int i = 0; i < 200; i++) {
		double mid = (lo + hi) / 2;

		if (0.5 * erfc(mid / M_SQRT2) > p)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

int zt_baseline_new(const struct zt_baseline_cfg *cfg, struct zt_baseline **out)
{
	struct zt_baseline *b;
	uint32_t n = 1;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (cfg)
		b->cfg = *cfg;
	if (b->cfg.target_fpr == 0)
		b->cfg.target_fpr = 0.001;
	if (!b->cfg.window_ns)
		b->cfg.window_ns = 60ULL * 1000000000ULL;
	if (!b->cfg.warmup)
		b->cfg.warmup = 30;
	if (b->cfg.alpha <= 0 || b->cfg.alpha >= 1)
		b->cfg.alpha = 0.05;
	if (!b->cfg.max_workloads)
		b->cfg.max_workloads = 4096;
	if (!(b->cfg.target_fpr > 0 && b->cfg.target_fpr < 0.5) ||
	    b->cfg.max_workloads > (1u << 22)) {
		free(b);
		return -EINVAL;
	}
	while (n < b->cfg.max_workloads)
		n <<= 1;
	b->tab = calloc(n, sizeof(*b->tab));
	if (!b->tab) {
		free(b);
		return -ENOMEM;
	}
	b->mask = n - 1;
	if (getrandom(&b->seed, sizeof(b->seed), GRND_NONBLOCK) != sizeof(b->seed))
		b->seed = zt_now_mono_ns();
	/* Two one-sided tests per window: each gets half the rate. */
	b->k_gauss = norm_upper(b->cfg.target_fpr / 2);
	b->k = b->k_gauss;
	*out = b;
	return 0;
}

void zt_baseline_free(struct zt_baseline *b)
{
	if (!b)
		return;
	free(b->tab);
	free(b);
}

static uint64_t name_key(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	/* What the entry keeps of the name, so that its own copy finds it again. */
	for (size_t i = 0; s[i] && i < ZT_BL_NAME_MAX - 1; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
	return zt_mix64(h) | 1; /* never 0 */
}

static struct workload *find(struct zt_baseline *b, const char *name, uint64_t now_ns)
{
	uint64_t key = name_key(name, b->seed);
	struct workload *victim = NULL;

	for (uint32_t i = 0; i < PROBES; i++) {
		struct workload *w = &b->tab[(key + i * 0x9e3779b9u) & b->mask];

		if (w->used && w->key == key && !strncmp(w->name, name, sizeof(w->name) - 1))
			return w;
		if (!w->used) {
			if (!victim || victim->used)
				victim = w;
		} else if (!victim || (victim->used && w->last_ns < victim->last_ns)) {
			victim = w;
		}
	}
	memset(victim, 0, sizeof(*victim));
	victim->used = 1;
	victim->key = key;
	victim->last_ns = now_ns;
	snprintf(victim->name, sizeof(victim->name), "%s", name);
	return victim;
}

void zt_baseline_observe(struct zt_baseline *b, const char *workload, uint64_t now_ns,
			 uint64_t bytes_out, uint8_t family, const uint8_t dst[16])
{
	struct workload *w = find(b, workload, now_ns);
	uint64_t lo, hi, h1, h2;
	bool known;

	if (!w->open) {
		w->open = 1;
		w->start_ns = now_ns;
		w->bytes = 0;
		w->new_dsts = 0;
	}
	if (now_ns > w->last_ns)
		w->last_ns = now_ns;
	w->bytes += bytes_out;
	memcpy(&lo, dst, 8);
	memcpy(&hi, dst + 8, 8);
	h1 = zt_mix64(lo ^ zt_mix64(hi ^ family));
	h2 = zt_mix64(h1 ^ 0x5bd1e995);
	h1 %= BLOOM_BITS;
	h2 %= BLOOM_BITS;
	known = (w->bloom[h1 / 64] >> (h1 % 64) & 1) && (w->bloom[h2 / 64] >> (h2 % 64) & 1);
	if (!known) {
		w->new_dsts++;
		w->bloom[h1 / 64] |= 1ULL << (h1 % 64);
		w->bloom[h2 / 64] |= 1ULL << (h2 % 64);
	}
}

static double zscore(const struct stat2 *s, double x, double sd_min)
{
	return (x - s->mean) / sqrt(s->var + sd_min * sd_min);
}

static void learn(struct stat2 *s, double x, double alpha, uint32_t n)
{
	/* A plain mean while few windows are in: the first ones must not dominate. */
	double a = 1.0 / n > alpha ? 1.0 / n : alpha, d = x - s->mean;

	if (n == 1) {
		s->mean = x;
		s->var = 0;
		return;
	}
	s->mean += a * d;
	s->var = (1 - a) * (s->var + a * d * d);
}

static void hist_add(struct zt_baseline *b, double score)
{
	long i = lround(floor((score - H_MIN) / H_STEP));

	if (i < 0)
		i = 0;
	if (i >= H_BINS)
		i = H_BINS - 1;
	b->hist[i] += 1;
	b->h_total += 1;
	if (b->h_total >= H_HALVE_AT) {
		b->h_total = 0;
		for (int j = 0; j < H_BINS; j++) {
			b->hist[j] /= 2;
			b->h_total += b->hist[j];
		}
	}
}

/* The lowest bin edge with at most fpr of the scores at or above it. */
static void requantile(struct zt_baseline *b)
{
	double allowed = b->cfg.target_fpr * b->h_total, tail = 0;
	int i;

	if (b->h_total < 10.0 / b->cfg.target_fpr)
		return;
	for (i = H_BINS - 1; i >= 0; i--) {
		if (tail + b->hist[i] > allowed)
			break;
		tail += b->hist[i];
	}
	b->k = H_MIN + (i + 1) * H_STEP;
	b->calibrated = true;
}

static void score_window(struct zt_baseline *b, struct workload *w, uint64_t bytes_out,
			 uint64_t new_dsts, struct zt_baseline_result *res)
{
	double xb = log1p((double)bytes_out), xn = log1p((double)new_dsts);

	memset(res, 0, sizeof(*res));
	snprintf(res->workload, sizeof(res->workload), "%s", w->name);
	res->bytes_out = bytes_out;
	res->new_dsts = new_dsts;
	res->expected_bytes = expm1(w->b.mean);
	res->expected_new = expm1(w->n.mean);
	res->warm = w->windows >= b->cfg.warmup;
	if (w->windows > 0) {
		res->z_bytes = zscore(&w->b, xb, SD_MIN_BYTES);
		res->z_new = zscore(&w->n, xn, SD_MIN_NEW);
		res->score = res->z_bytes > res->z_new ? res->z_bytes : res->z_new;
	}
	res->threshold = b->k;
	res->calibrated = b->calibrated;
	if (res->warm) {
		res->alert = res->score >= b->k;
		hist_add(b, res->score);
		/* Every window at first, then every 64th: the quantile moves slowly anyway. */
		if (!b->calibrated || ++b->since_quantile >= 64) {
			b->since_quantile = 0;
			requantile(b);
		}
	}
	if (res->alert) {
		/* Learn no more than the threshold allows: the alarm does not become the norm. */
		double cap_b = w->b.mean + b->k * sqrt(w->b.var + SD_MIN_BYTES * SD_MIN_BYTES);
		double cap_n = w->n.mean + b->k * sqrt(w->n.var + SD_MIN_NEW * SD_MIN_NEW);

		if (xb > cap_b)
			xb = cap_b;
		if (xn > cap_n)
			xn = cap_n;
	}
	w->windows++;
	learn(&w->b, xb, b->cfg.alpha, w->windows);
	learn(&w->n, xn, b->cfg.alpha, w->windows);
	res->windows = w->windows;
}

void zt_baseline_window(struct zt_baseline *b, const char *workload, uint64_t bytes_out,
			uint64_t new_dsts, struct zt_baseline_result *res)
{
	score_window(b, find(b, workload, 0), bytes_out, new_dsts, res);
}

int zt_baseline_tick(struct zt_baseline *b, uint64_t now_ns, zt_baseline_cb cb, void *ctx)
{
	struct zt_baseline_result res;
	int n = 0;

	for (uint32_t i = 0; i <= b->mask; i++) {
		struct workload *w = &b->tab[i];

		if (!w->used || !w->open || now_ns < w->start_ns + b->cfg.window_ns)
			continue;
		w->open = 0;
		score_window(b, w, w->bytes, w->new_dsts, &res);
		if (cb)
			cb(ctx, &res);
		n++;
	}
	return n;
}

double zt_baseline_threshold(const struct zt_baseline *b, bool *calibrated)
{
	if (calibrated)
		*calibrated = b->calibrated;
	return b->k;
}
