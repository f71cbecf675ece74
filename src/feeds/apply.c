// SPDX-License-Identifier: GPL-2.0-only
/*
 * Feed versions into the blocklist and the IOC maps as diffs, in chunks
 * (see apply.h). Who lists a prefix is read from the versions themselves:
 * each is sorted by prefix, and a job walks its prefixes in that order with
 * a forward cursor into every other feed's version, so the owners of a
 * prefix, and the values the kernel holds for it before and after the job,
 * cost a few comparisons and no memory written. (Writes are what costs
 * here: a big hash of owners touched at random made every page a fault.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/util.h"
#include "feeds/apply.h"
#include "ztagent.h"

#define CHUNK_MIN 256
#define CHUNK_MAX 65536
#define CHUNK_START 8192
#define WRITE_NS_START 1000 /* until measured: 1 us a prefix, as on an idle 2-CPU VM */
/*
 * Releases go in small chunks with a look at the clock between, and a step
 * stops releasing at half its budget: the kernel charges the thread that
 * deletes hash-map elements for freeing them (RCU callbacks), and during a
 * mass delete 32 keys can cost 20-30 ms at times (as for the blocklist's
 * expiry, src/guard/blocklist.c EXPIRE_SUB). A chunk starts at DEL_SUB and
 * grows while it stays under an eighth of the budget, up to DEL_MAX: each
 * chunk has a fixed cost of its own (a few syscalls), which at 32 made a
 * 500k-prefix release take seconds.
 */
#define DEL_SUB 32
#define DEL_MAX 512
/* Job chunk results besides 0 (more) and 1 (over): waiting for the blocklist's room. */
#define CHUNK_WAIT 2

struct fstate {
	struct zt_feed_config fc;
	struct zt_feed_result *cur; /* in force (written under lock) */
	struct zt_feed_result *pending; /* waiting for its turn */
	uint8_t pending_digest[32];
	uint64_t pending_ns;
	size_t n_src, n_dst;
};

/* A position in a sorted version; it moves forward as a job walks prefixes in order. */
struct cursor {
	const struct zt_feed_result *r;
	size_t pos;
};

enum { PH_ADD = 0, PH_DEL_SRC, PH_DEL_DST, PH_END };

struct job {
	bool on;
	bool rollback; /* re-asserting cur after a refused version */
	unsigned int idx;
	struct zt_feed_result *nr; /* the version made present; == cur when rolling back */
	struct zt_feed_result *failed; /* rolling back: the refused version (the "old" one) */
	const struct zt_feed_result *old; /* what the kernel holds for this feed before the job */
	struct cursor cn, co; /* into nr and old */
	struct cursor others[ZT_MAX_FEEDS]; /* into the other feeds' versions in force */
	size_t pos; /* PH_ADD: next entry of nr */
	/*
	 * Releases, inbound and outbound: how many, how many done, and where
	 * the walk over old is (found by a merge with nr as it goes: a list of
	 * them would be fresh memory, and page faults are most of what a 1M
	 * list costs).
	 */
	size_t n_gone[2], gpos[2], dpos[2];
	struct cursor cg; /* into nr, for that walk */
	int phase;
	size_t cnt[2]; /* prefixes of nr per direction */
	size_t fresh_src; /* inbound prefixes nr lists and old does not: the blocklist's growth */
	bool reserved; /* the blocklist has room for them */
	struct zt_feed_apply_report rep;
	uint64_t t0;
};

/* An IOC map write waiting for the chunk's flush. */
struct ioc_w {
	struct zt_cidr c;
	struct zt_ioc_val v;
	bool is_new;
};

struct zt_feed_apply {
	struct zt_feed_apply_maps m;
	struct fstate f[ZT_MAX_FEEDS];
	unsigned int n;
	unsigned int next_rr; /* round robin over feeds with a pending version */
	struct job j;
	size_t chunk; /* groups per chunk, adapted to the step budget */
	uint64_t
		write_ns; /* what a prefix written to the kernel last cost, in a chunk of mostly those */
	size_t dchunk; /* releases per chunk, likewise (DEL_SUB to DEL_MAX) */
	size_t lim; /* this chunk's: chunk, or less when less remains (buffers sized to it) */
	int64_t boot_minus_unix_ns; /* fixed at start: the same valid_until gives the same expiry */
	size_t ioc_count[2][2]; /* [fam][0 host, 1 lpm] entries in the kernel */
	struct zt_ioc_state ioc_pub; /* as last written */
	bool swept; /* entries of an earlier run that no feed lists were removed */
	bool sweep_checked; /* whether there can be any was looked at */
	size_t orphans; /* how many */
	bool waiting; /* the last step stopped for the blocklist's room */
	zt_feed_applied_fn done;
	void *done_ctx;
	pthread_mutex_t lock; /* f[].cur and j.nr pointers, for zt_feed_apply_reference */
	/* chunk buffers */
	struct zt_bl_feed_item *bl_add;
	size_t n_bl_add;
	struct zt_cidr *bl_del;
	size_t n_bl_del;
	struct ioc_w *ioc_add;
	size_t n_ioc_add;
	struct zt_cidr *ioc_del;
	size_t n_ioc_del;
	uint8_t *ioc_kbuf; /* a batch's keys and values */
	struct zt_ioc_val *ioc_vbuf;
	size_t buf_cap;
};

static int fam_of(const struct zt_cidr *c)
{
	return c->family == AF_INET ? 0 : 1;
}

static int cidr_cmp(const struct zt_cidr *a, const struct zt_cidr *b)
{
	int r;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	r = memcmp(a->addr, b->addr, 16);
	if (r)
		return r;
	return a->prefixlen < b->prefixlen ? -1 : a->prefixlen > b->prefixlen;
}

static bool cidr_eq(const struct zt_cidr *a, const struct zt_cidr *b)
{
	return a->family == b->family && a->prefixlen == b->prefixlen &&
	       !memcmp(a->addr, b->addr, 16);
}

static bool is_host(const struct zt_cidr *c)
{
	return c->prefixlen == (c->family == AF_INET ? 32 : 128);
}

/* ---- versions ---- */

uint64_t zt_feed_apply_boot_ns(const struct zt_feed_apply *a, uint64_t valid_until)
{
	int64_t v;

	if (!valid_until)
		return 0;
	v = (int64_t)(valid_until * 1000000000ULL) + a->boot_minus_unix_ns;
	return v > 0 ? (uint64_t)v : 1;
}

/*
 * First entry of prefix c in the cursor's version, or r->n. Forward from
 * the last answer a few steps, then by bisection; a prefix before the
 * cursor starts over (never in a job's walk, which is in order).
 */
static size_t cur_find(struct cursor *k, const struct zt_cidr *c)
{
	const struct zt_feed_result *r = k->r;
	size_t lo = k->pos, hi;

	if (!r || !r->n)
		return 0;
	if (lo > r->n || (lo > 0 && cidr_cmp(&r->entries[lo - 1].cidr, c) >= 0))
		lo = 0;
	for (int s = 0; s < 8 && lo < r->n && cidr_cmp(&r->entries[lo].cidr, c) < 0; s++)
		lo++;
	hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cidr_cmp(&r->entries[mid].cidr, c) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	k->pos = lo;
	return lo < r->n && cidr_eq(&r->entries[lo].cidr, c) ? lo : r->n;
}

/* What one version says about c in direction dir. */
struct say {
	bool found;
	uint64_t exp; /* boot ns; 0 = never */
	uint16_t port; /* 0: every port */
	const char *ref;
};

static struct say feed_says(const struct zt_feed_apply *a, struct cursor *k,
			    const struct zt_cidr *c, uint8_t dir)
{
	const struct zt_feed_result *r = k->r;
	struct say s = { 0 };
	bool never = false, first = true;

	for (size_t i = cur_find(k, c); r && i < r->n && cidr_eq(&r->entries[i].cidr, c); i++) {
		const struct zt_feed_entry *e = &r->entries[i];
		uint64_t x;

		if (!(e->dir & dir))
			continue;
		x = zt_feed_apply_boot_ns(a, e->valid_until);
		never |= x == 0;
		if (x > s.exp)
			s.exp = x;
		s.port = first ? e->port : (s.port == e->port ? s.port : 0);
		first = false;
		s.found = true;
	}
	if (never)
		s.exp = 0;
	return s;
}

/* What the kernel holds for c in one direction, over every feed listing it there. */
struct merged {
	bool any;
	uint64_t exp; /* inbound: the latest expiry (0 = never beats any) */
	uint32_t first; /* the first feed listing it (index + 1) */
	struct zt_ioc_val v; /* outbound */
};

/*
 * c merged over the feeds listing it in direction dir, the job's feed
 * taken in its new version (newv) or as the kernel holds it before the job.
 */
static struct merged merge(struct zt_feed_apply *a, const struct zt_cidr *c, uint8_t dir, bool newv)
{
	struct merged m = { 0 };
	bool block = false, first_port = true;
	uint32_t first_block = 0;

	for (unsigned int i = 0; i < a->n; i++) {
		struct cursor *k;
		struct say s;

		if (!(a->f[i].fc.direction & dir))
			continue;
		k = i != a->j.idx ? &a->j.others[i] : newv ? &a->j.cn : &a->j.co;
		s = feed_says(a, k, c, dir);
		if (!s.found)
			continue;
		if (!m.any) {
			m.first = i + 1;
			m.exp = s.exp;
		} else if (m.exp && (!s.exp || s.exp > m.exp)) {
			m.exp = s.exp;
		}
		m.any = true;
		m.v.port = first_port ? s.port : (m.v.port == s.port ? m.v.port : 0);
		first_port = false;
		if (a->f[i].fc.action == ZT_FEED_BLOCK && !block) {
			block = true;
			first_block = i + 1;
		}
	}
	m.v.action = block ? ZT_IOC_BLOCK : ZT_IOC_ALERT;
	m.v.feed_id = block ? first_block : m.first;
	m.v.prefixlen = c->prefixlen;
	return m;
}

static bool same_ioc(const struct zt_ioc_val *x, const struct zt_ioc_val *y)
{
	return x->port == y->port && x->action == y->action && x->feed_id == y->feed_id;
}

/* Binary search (no cursor): does version r list c in direction dir? */
static bool lists(const struct zt_feed_result *r, const struct zt_cidr *c, uint8_t dir)
{
	struct cursor k = { r, 0 };

	for (size_t i = cur_find(&k, c); r && i < r->n && cidr_eq(&r->entries[i].cidr, c); i++)
		if (r->entries[i].dir & dir)
			return true;
	return false;
}

/*
 * One merge walk of old and nw (either may be NULL), in prefix order: the
 * prefixes old lists inbound (gone[0]) and outbound (gone[1]) that nw does
 * not list there, and those nw lists inbound that old does not (*fresh_src).
 * One walk, not one per count: three over 2M entries were 17 ms of a step.
 */
static void diff_counts(const struct zt_feed_result *old, const struct zt_feed_result *nw,
			size_t gone[2], size_t *fresh_src)
{
	size_t i = 0, j = 0, no = old ? old->n : 0, nn = nw ? nw->n : 0;

	gone[0] = gone[1] = *fresh_src = 0;
	while (i < no || j < nn) {
		const struct zt_cidr *c;
		uint8_t od = 0, nd = 0;

		if (j >= nn ||
		    (i < no && cidr_cmp(&old->entries[i].cidr, &nw->entries[j].cidr) <= 0))
			c = &old->entries[i].cidr;
		else
			c = &nw->entries[j].cidr;
		for (; i < no && cidr_eq(&old->entries[i].cidr, c); i++)
			od |= old->entries[i].dir;
		for (; j < nn && cidr_eq(&nw->entries[j].cidr, c); j++)
			nd |= nw->entries[j].dir;
		gone[0] += (od & ZT_FEED_SOURCE) && !(nd & ZT_FEED_SOURCE);
		gone[1] += (od & ZT_FEED_DESTINATION) && !(nd & ZT_FEED_DESTINATION);
		*fresh_src += (nd & ZT_FEED_SOURCE) && !(od & ZT_FEED_SOURCE);
	}
}

/* ---- kernel writes ---- */

static int ioc_fd(const struct zt_feed_apply *a, const struct zt_cidr *c)
{
	return is_host(c) ? a->m.ioc_host[fam_of(c)] : a->m.ioc_lpm[fam_of(c)];
}

static size_t ioc_key(const struct zt_cidr *c, void *key)
{
	if (c->family == AF_INET) {
		struct zt_ip4_key *k = key;

		k->prefixlen = c->prefixlen;
		memcpy(k->addr, c->addr, 4);
		return sizeof(*k);
	}
	struct zt_ip6_key *k6 = key;

	k6->prefixlen = c->prefixlen;
	memcpy(k6->addr, c->addr, 16);
	return sizeof(*k6);
}

static int ioc_publish(struct zt_feed_apply *a)
{
	struct zt_ioc_state st = {
		.host_v4_used = a->ioc_count[0][0] != 0,
		.host_v6_used = a->ioc_count[1][0] != 0,
		.lpm_v4_used = a->ioc_count[0][1] != 0,
		.lpm_v6_used = a->ioc_count[1][1] != 0,
	};
	uint32_t zero = 0;

	if (!memcmp(&st, &a->ioc_pub, sizeof(st)))
		return 0;
	if (bpf_map_update_elem(a->m.ioc_state, &zero, &st, BPF_ANY) < 0)
		return -errno;
	a->ioc_pub = st;
	return 0;
}

/*
 * Writes the chunk's IOC values (entries first, then the flags that make
 * the program look). The host maps take a chunk in batches (a 1M-entry
 * feed was a million syscalls); the tries, which have no batch update, one
 * by one.
 */
static int ioc_flush_adds(struct zt_feed_apply *a)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	int r = 0;

	for (int fam = 0; fam < 2 && a->n_ioc_add; fam++) {
		size_t ks = fam ? sizeof(struct zt_ip6_key) : sizeof(struct zt_ip4_key), m = 0,
		       done = 0, news = 0;
		uint8_t *keys = a->ioc_kbuf;
		struct zt_ioc_val *vals = a->ioc_vbuf;

		for (size_t i = 0; i < a->n_ioc_add; i++) {
			struct ioc_w *w = &a->ioc_add[i];

			if (fam_of(&w->c) != fam || !is_host(&w->c))
				continue;
			ioc_key(&w->c, keys + m * ks);
			vals[m++] = w->v;
			news += w->is_new;
		}
		while (done < m) {
			__u32 cnt = (__u32)(m - done);
			int e = bpf_map_update_batch(a->m.ioc_host[fam], keys + done * ks,
						     vals + done, &cnt, &opts);

			if (e == 0) {
				done = m;
				break;
			}
			if (e == -EINVAL || e == -524 /* ENOTSUPP */ || e == -EOPNOTSUPP) {
				for (; done < m; done++)
					if (bpf_map_update_elem(a->m.ioc_host[fam],
								keys + done * ks, vals + done,
								BPF_ANY) < 0)
						break;
				if (done < m && !r)
					r = -errno;
			} else if (!r) {
				r = e;
			}
			break;
		}
		/* A partial batch: the count is right only for all or nothing; recounted at the next sweep. */
		a->ioc_count[fam][0] += done == m ? news : 0;
	}
	for (size_t i = 0; i < a->n_ioc_add; i++) {
		struct ioc_w *w = &a->ioc_add[i];
		uint8_t key[sizeof(struct zt_ip6_key)];

		if (is_host(&w->c))
			continue;
		ioc_key(&w->c, key);
		if (bpf_map_update_elem(ioc_fd(a, &w->c), key, &w->v, BPF_ANY) < 0) {
			if (!r)
				r = -errno;
			continue;
		}
		if (w->is_new)
			a->ioc_count[fam_of(&w->c)][1]++;
	}
	a->n_ioc_add = 0;
	if (!r)
		r = ioc_publish(a);
	else
		ioc_publish(a);
	return r;
}

/* Deletes the chunk's released IOC prefixes (a map whose last entry goes is unflagged first). */
static void ioc_flush_dels(struct zt_feed_apply *a)
{
	for (size_t i = 0; i < a->n_ioc_del; i++) {
		size_t *cnt = &a->ioc_count[fam_of(&a->ioc_del[i])][!is_host(&a->ioc_del[i])];

		if (*cnt)
			(*cnt)--;
	}
	ioc_publish(a);
	for (size_t i = 0; i < a->n_ioc_del; i++) {
		uint8_t key[sizeof(struct zt_ip6_key)];

		ioc_key(&a->ioc_del[i], key);
		bpf_map_delete_elem(ioc_fd(a, &a->ioc_del[i]), key);
	}
	a->n_ioc_del = 0;
}

static int flush(struct zt_feed_apply *a)
{
	struct job *j = &a->j;
	char err[256] = "";
	int r = 0;

	if (a->n_bl_add && a->m.bl) {
		r = zt_blocklist_feed_add(a->m.bl, a->bl_add, a->n_bl_add, &j->rep.src, err,
					  sizeof(err));
		if (r < 0)
			snprintf(j->rep.msg, sizeof(j->rep.msg), "inbound: %s", err);
	}
	a->n_bl_add = 0;
	if (a->n_ioc_add) {
		size_t before = a->n_ioc_add;
		int e = ioc_flush_adds(a);

		if (e < 0 && !r) {
			r = e;
			snprintf(j->rep.msg, sizeof(j->rep.msg),
				 "outbound: cannot write the IOC maps (%zu entries): %s", before,
				 strerror(-e));
		}
	}
	if (a->n_bl_del && a->m.bl)
		zt_blocklist_feed_del(a->m.bl, a->bl_del, a->n_bl_del, &j->rep.src);
	a->n_bl_del = 0;
	if (a->n_ioc_del)
		ioc_flush_dels(a);
	return r;
}

static int bufs_reserve(struct zt_feed_apply *a, size_t need)
{
	size_t cap = a->buf_cap;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap = cap ? cap * 2 : 64;
	{
		void *p1 = realloc(a->bl_add, cap * sizeof(*a->bl_add));

		if (!p1)
			return -ENOMEM;
		a->bl_add = p1;
	}
	{
		void *p2 = realloc(a->bl_del, cap * sizeof(*a->bl_del));

		if (!p2)
			return -ENOMEM;
		a->bl_del = p2;
	}
	{
		void *p3 = realloc(a->ioc_add, cap * sizeof(*a->ioc_add));

		if (!p3)
			return -ENOMEM;
		a->ioc_add = p3;
	}
	{
		void *p4 = realloc(a->ioc_del, cap * sizeof(*a->ioc_del));

		if (!p4)
			return -ENOMEM;
		a->ioc_del = p4;
	}
	{
		void *p5 = realloc(a->ioc_kbuf, cap * sizeof(struct zt_ip6_key));

		if (!p5)
			return -ENOMEM;
		a->ioc_kbuf = p5;
	}
	{
		void *p6 = realloc(a->ioc_vbuf, cap * sizeof(*a->ioc_vbuf));

		if (!p6)
			return -ENOMEM;
		a->ioc_vbuf = p6;
	}
	a->buf_cap = cap;
	return 0;
}

/* One chunk of the add phase: every prefix of the new version made present. 1: phase done. */
static int chunk_add(struct zt_feed_apply *a)
{
	struct job *j = &a->j;
	const struct zt_feed_result *r = j->nr;
	uint8_t fdir = (uint8_t)a->f[j->idx].fc.direction;
	size_t g;

	for (g = 0; r && g < a->lim && j->pos < r->n; g++) {
		const struct zt_cidr *c = &r->entries[j->pos].cidr;
		uint8_t dirs = 0;

		for (; j->pos < r->n && cidr_eq(&r->entries[j->pos].cidr, c); j->pos++)
			dirs |= r->entries[j->pos].dir;
		dirs &= fdir;
		if ((dirs & ZT_FEED_SOURCE) && a->m.bl) {
			struct merged nv = merge(a, c, ZT_FEED_SOURCE, true);
			struct zt_bl_feed_item *it = &a->bl_add[a->n_bl_add++];

			/* The blocklist skips what it holds already as asked. */
			it->cidr = *c;
			it->expires_ns = nv.exp;
			it->feed_id = nv.first;
			j->cnt[0]++;
		}
		if ((dirs & ZT_FEED_DESTINATION) && a->m.ioc_state >= 0) {
			struct merged nv = merge(a, c, ZT_FEED_DESTINATION, true),
				      ov = merge(a, c, ZT_FEED_DESTINATION, false);

			j->cnt[1]++;
			if (ov.any && same_ioc(&ov.v, &nv.v))
				continue;
			a->ioc_add[a->n_ioc_add++] =
				(struct ioc_w){ .c = *c, .v = nv.v, .is_new = !ov.any };
			if (ov.any)
				j->rep.dst_updated++;
			else
				j->rep.dst_added++;
		}
	}
	return !r || j->pos >= r->n;
}

/*
 * The next prefix old lists in direction dir and nr does not, from old's
 * entry *pos on (moved past it); NULL when there is none.
 */
static const struct zt_cidr *next_released(struct job *j, size_t *pos, uint8_t dir)
{
	const struct zt_feed_result *old = j->old;

	while (old && *pos < old->n) {
		const struct zt_cidr *c = &old->entries[*pos].cidr;
		const struct zt_feed_result *nw = j->cg.r;
		bool listed = false;
		uint8_t od = 0;

		for (; *pos < old->n && cidr_eq(&old->entries[*pos].cidr, c); (*pos)++)
			od |= old->entries[*pos].dir;
		if (!(od & dir))
			continue;
		for (size_t k = cur_find(&j->cg, c);
		     nw && k < nw->n && cidr_eq(&nw->entries[k].cidr, c); k++)
			listed |= (nw->entries[k].dir & dir) != 0;
		if (!listed)
			return c;
	}
	return NULL;
}

/* One chunk of releases in direction d (0 inbound, 1 outbound). 1: phase done. */
static int chunk_del(struct zt_feed_apply *a, int d)
{
	struct job *j = &a->j;
	uint8_t dir = d ? ZT_FEED_DESTINATION : ZT_FEED_SOURCE;
	size_t g;

	for (g = 0; g < a->lim && j->gpos[d] < j->n_gone[d]; g++) {
		const struct zt_cidr *c = next_released(j, &j->dpos[d], dir);
		struct merged nv;

		if (!c) {
			j->gpos[d] = j->n_gone[d];
			break;
		}
		j->gpos[d]++;
		nv = merge(a, c, dir, true);
		if (d == 0) {
			if (!nv.any) {
				a->bl_del[a->n_bl_del++] = *c;
			} else {
				/* Another feed still lists it: its expiry now. */
				struct zt_bl_feed_item *it = &a->bl_add[a->n_bl_add++];

				it->cidr = *c;
				it->expires_ns = nv.exp;
				it->feed_id = nv.first;
			}
			continue;
		}
		if (!nv.any) {
			a->ioc_del[a->n_ioc_del++] = *c;
			j->rep.dst_removed++;
		} else {
			struct merged ov = merge(a, c, dir, false);

			if (!same_ioc(&ov.v, &nv.v)) {
				a->ioc_add[a->n_ioc_add++] =
					(struct ioc_w){ .c = *c, .v = nv.v, .is_new = false };
				j->rep.dst_updated++;
			}
		}
	}
	return j->gpos[d] >= j->n_gone[d];
}

/* Every cursor of the job back to the start (a new walk in prefix order). */
static void cursors_reset(struct zt_feed_apply *a)
{
	struct job *j = &a->j;

	for (unsigned int i = 0; i < a->n; i++)
		j->others[i] = (struct cursor){ i == j->idx ? NULL : a->f[i].cur, 0 };
	j->cn = (struct cursor){ j->nr, 0 };
	j->co = (struct cursor){ j->old, 0 };
	j->cg = (struct cursor){ j->nr, 0 };
}

static void job_free_lists(struct job *j)
{
	for (int d = 0; d < 2; d++)
		j->n_gone[d] = j->gpos[d] = j->dpos[d] = 0;
}

/* Sets up job j against old (what the kernel holds for this feed): release lists, cursors. */
static int job_prepare(struct zt_feed_apply *a, const struct zt_feed_result *old)
{
	struct job *j = &a->j;
	uint8_t fdir = (uint8_t)a->f[j->idx].fc.direction;
	int r = 0;

	job_free_lists(j);
	j->old = old;
	/* Counted by a read-only merge (released: what old lists and nr does not). */
	diff_counts(old, j->nr, j->n_gone, &j->fresh_src);
	if (!(fdir & ZT_FEED_SOURCE))
		j->n_gone[0] = j->fresh_src = 0;
	if (!(fdir & ZT_FEED_DESTINATION))
		j->n_gone[1] = 0;
	j->reserved = !a->m.bl || !j->fresh_src;
	j->pos = 0;
	j->phase = PH_ADD;
	j->cnt[0] = j->cnt[1] = 0;
	cursors_reset(a);
	return r;
}

/*
 * Orphans can only be what was in the maps before the first version: with
 * none there, the sweep (each entry looked up in every feed: most of a
 * second in one step for 1M) is not needed. Only this applier adds feed
 * entries, so the maps as the first job starts tell.
 */
static void sweep_check(struct zt_feed_apply *a)
{
	struct zt_cidr *v = NULL;
	size_t nb = 0;
	bool any = false;

	a->sweep_checked = true;
	if (a->m.bl && zt_blocklist_feed_entries(a->m.bl, &v, &nb) < 0)
		nb = 1; /* unknown: sweep */
	free(v);
	for (int fam = 0; a->m.ioc_state >= 0 && fam < 2; fam++) {
		uint8_t k[sizeof(struct zt_ip6_key)];

		any |= bpf_map_get_next_key(a->m.ioc_host[fam], NULL, k) == 0 ||
		       bpf_map_get_next_key(a->m.ioc_lpm[fam], NULL, k) == 0;
	}
	a->swept = nb == 0 && !any;
}

static bool start_next(struct zt_feed_apply *a)
{
	struct job *j = &a->j;

	if (!a->sweep_checked)
		sweep_check(a);

	for (unsigned int k = 0; k < a->n; k++) {
		unsigned int i = (a->next_rr + k) % a->n;
		struct fstate *f = &a->f[i];

		if (!f->pending)
			continue;
		a->next_rr = (i + 1) % a->n;
		memset(&j->rep, 0, sizeof(j->rep));
		j->rep.index = i;
		memcpy(j->rep.digest, f->pending_digest, sizeof(j->rep.digest));
		j->t0 = f->pending_ns;
		j->idx = i;
		j->rollback = false;
		pthread_mutex_lock(&a->lock);
		j->nr = f->pending;
		j->on = true;
		pthread_mutex_unlock(&a->lock);
		f->pending = NULL;
		if (job_prepare(a, f->cur) < 0) {
			/* No memory for the diff: the version waits for the next step. */
			pthread_mutex_lock(&a->lock);
			f->pending = j->nr;
			j->nr = NULL;
			j->on = false;
			pthread_mutex_unlock(&a->lock);
			return false;
		}
		return true;
	}
	return false;
}

/*
 * A refused version: the one in force becomes the job's new version and
 * the refused one its old (what the kernel may now hold), so the same walk
 * re-asserts the first and releases what only the second added.
 */
static void job_rollback(struct zt_feed_apply *a, int err)
{
	struct job *j = &a->j;
	struct fstate *f = &a->f[j->idx];

	j->rep.ok = false;
	j->rep.err = err;
	if (j->rollback)
		return; /* already rolling back: go on releasing */
	pthread_mutex_lock(&a->lock);
	j->failed = j->nr;
	j->nr = f->cur;
	pthread_mutex_unlock(&a->lock);
	j->rollback = true;
	/* Without the lists the entries it added stay until its next version. */
	if (job_prepare(a, j->failed) < 0)
		j->phase = PH_END;
}

/*
 * Once every feed has a version in force: what an earlier run (or a feed
 * no longer configured) left in the maps and no feed lists now goes. Not
 * before: a feed still waiting for its first version may list them.
 */
static void sweep_orphans(struct zt_feed_apply *a)
{
	struct zt_bl_feed_counts cnt = { 0 };
	struct zt_cidr *v = NULL;
	size_t n = 0, m = 0;

	for (unsigned int i = 0; i < a->n; i++)
		if (!a->f[i].cur && a->f[i].fc.format != ZT_FEED_POLICY)
			return;
	a->swept = true;
	if (a->m.bl && zt_blocklist_feed_entries(a->m.bl, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			uint32_t src, dst;

			zt_feed_apply_owners(a, &v[i], &src, &dst);
			if (!src)
				v[m++] = v[i];
		}
		if (m)
			zt_blocklist_feed_del(a->m.bl, v, m, &cnt);
		a->orphans += cnt.removed;
	}
	free(v);
	for (int fam = 0; a->m.ioc_state >= 0 && fam < 2; fam++)
		for (int t = 0; t < 2; t++) {
			int fd = t ? a->m.ioc_lpm[fam] : a->m.ioc_host[fam];
			uint8_t k[sizeof(struct zt_ip6_key)], nk[sizeof(struct zt_ip6_key)];
			uint8_t *dead = NULL;
			size_t nd = 0, cap = 0, count = 0;
			void *prev = NULL;

			/* Collect first, delete after: deleting under a key walk restarts it. */
			while (bpf_map_get_next_key(fd, prev, nk) == 0) {
				struct zt_cidr c = { .family = fam ? AF_INET6 : AF_INET };
				uint32_t plen, src, dst;

				memcpy(k, nk, sizeof(k));
				prev = k;
				count++;
				memcpy(&plen, k, sizeof(plen));
				c.prefixlen = (uint8_t)plen;
				memcpy(c.addr, k + 4, fam ? 16 : 4);
				zt_feed_apply_owners(a, &c, &src, &dst);
				if (dst)
					continue;
				if (nd == cap) {
					uint8_t *nv = realloc(dead, (cap = cap ? cap * 2 : 64) *
									    sizeof(k));

					if (!nv)
						break;
					dead = nv;
				}
				memcpy(dead + nd++ * sizeof(k), k, sizeof(k));
			}
			for (size_t i = 0; i < nd; i++)
				if (bpf_map_delete_elem(fd, dead + i * sizeof(k)) == 0) {
					count--;
					a->orphans++;
				}
			free(dead);
			/* Counted from the map: an earlier run's entries were counted twice. */
			a->ioc_count[fam][t] = count;
		}
	if (a->m.ioc_state >= 0)
		ioc_publish(a);
}

static void job_finish(struct zt_feed_apply *a)
{
	struct job *j = &a->j;
	struct fstate *f = &a->f[j->idx];
	struct zt_feed_result *old = NULL;

	pthread_mutex_lock(&a->lock);
	if (!j->rollback) {
		old = f->cur;
		f->cur = j->nr;
		f->n_src = j->cnt[0];
		f->n_dst = j->cnt[1];
		j->rep.ok = true;
	}
	j->nr = NULL;
	j->on = false;
	pthread_mutex_unlock(&a->lock);
	if (old) {
		zt_feed_result_free(old);
		free(old);
	}
	if (j->failed) {
		zt_feed_result_free(j->failed);
		free(j->failed);
		j->failed = NULL;
	}
	j->old = NULL;
	job_free_lists(j);
	j->rep.src_entries = f->n_src;
	j->rep.dst_entries = f->n_dst;
	j->rep.apply_ns = zt_now_mono_ns() - j->t0;
	if (!a->swept) {
		size_t before = a->orphans;

		sweep_orphans(a);
		j->rep.orphans = a->orphans - before;
	}
	if (a->done)
		a->done(a->done_ctx, &j->rep);
}

/* One chunk of the job: 1 when it is over. */
static int job_chunk(struct zt_feed_apply *a)
{
	struct job *j = &a->j;
	int r = 0, done = 0;

	{
		/* Buffers as big as this chunk can fill: a small feed costs small buffers. */
		size_t left = j->phase == PH_ADD     ? (j->nr ? j->nr->n - j->pos : 0) :
			      j->phase == PH_DEL_SRC ? j->n_gone[0] - j->gpos[0] :
			      j->phase == PH_DEL_DST ? j->n_gone[1] - j->gpos[1] :
						       0;

		size_t most = j->phase == PH_ADD ? a->chunk : a->dchunk;

		a->lim = left < most ? left : most;
	}
	if (j->phase == PH_ADD && !j->reserved) {
		/*
		 * The blocklist's mirror grows before the adds, its memory made
		 * ready off the loop. Room for this version's size once more
		 * besides: the next version of the feed is applied as a union
		 * with this one, and a mirror grown then is rehashed on the
		 * loop (0.1-0.25 s for 1M entries, a step far over budget).
		 * It also covers a chunk's worth, as the adds count the entries
		 * of a chunk they already hold too. The cost is memory: 32
		 * bytes a slot, 128 MB of mirror for a 1M feed instead of 64.
		 */
		size_t nn = j->nr ? j->nr->n : 0;
		int e = zt_blocklist_reserve(a->m.bl, j->fresh_src + nn);

		if (e == 1)
			return CHUNK_WAIT;
		j->reserved = true; /* or no memory: the adds grow it as they go */
	}
	if (bufs_reserve(a, a->lim ? a->lim : 1) < 0) {
		snprintf(j->rep.msg, sizeof(j->rep.msg), "out of memory for a chunk");
		job_rollback(a, -ENOMEM);
		return 0;
	}
	switch (j->phase) {
	case PH_ADD:
		done = chunk_add(a);
		break;
	case PH_DEL_SRC:
		done = chunk_del(a, 0);
		break;
	case PH_DEL_DST:
		done = chunk_del(a, 1);
		break;
	default:
		return 1;
	}
	if (done < 0) {
		r = done;
		done = 0;
	}
	if (r == 0)
		r = flush(a);
	else
		flush(a);
	if (r < 0) {
		/* Adds the maps refused: back to the version in force. */
		job_rollback(a, r);
		return 0;
	}
	if (done) {
		if (j->phase == PH_ADD && !j->rollback)
			j->rep.in_force_ns = zt_now_mono_ns() - j->t0;
		j->phase++;
		cursors_reset(a); /* the next walk starts at the first prefix again */
	}
	return j->phase >= PH_END;
}

/* Kernel writes a job made so far (entries added, rewritten or removed). */
static size_t writes(const struct zt_feed_apply_report *r)
{
	return r->src.added + r->src.updated + r->src.removed + r->dst_added + r->dst_updated +
	       r->dst_removed;
}

bool zt_feed_apply_step(struct zt_feed_apply *a, uint64_t budget_ns)
{
	uint64_t t0 = zt_now_mono_ns(), now = t0, js = t0, cpu0 = zt_thread_cpu_ns();

	a->waiting = false;
	if (!a->j.on) {
		if (!start_next(a))
			return false;
		/* A big job's setup (a walk of both versions) may be a step's worth already. */
		now = zt_now_mono_ns();
		if (now - t0 >= budget_ns / 2) {
			a->j.rep.steps++;
			a->j.rep.cpu_ns += zt_thread_cpu_ns() - cpu0;
			a->j.rep.longest_step_ns = now - t0;
			a->j.rep.longest_step_cpu_ns = a->j.rep.cpu_ns;
			return true;
		}
	}
	for (;;) {
		uint64_t c0 = now, dt, limit;
		bool adding = a->j.phase == PH_ADD;
		size_t lim, w0 = writes(&a->j.rep), nw;
		int over = job_chunk(a);

		lim = a->lim;
		nw = writes(&a->j.rep) - w0;
		now = zt_now_mono_ns();
		dt = now - c0;
		a->j.rep.work_ns += dt;
		*(adding ? &a->j.rep.add_ns : &a->j.rep.del_ns) += dt;
		if (over == CHUNK_WAIT) {
			a->waiting = true;
			break;
		}
		if (!adding && lim >= a->dchunk / 2) {
			if (dt < budget_ns / 8 && a->dchunk < DEL_MAX)
				a->dchunk *= 2;
			else if (dt > budget_ns / 4 && a->dchunk > DEL_SUB)
				a->dchunk /= 2;
		}
		if (adding && lim >= a->chunk / 2) {
			/*
			 * Adds per chunk: a quarter of the budget at the rate this
			 * chunk had, at most twice the last (a cost that jumps, as
			 * the kernel's allocations do, is met one chunk late), and
			 * never more than a quarter of the budget would take if
			 * every prefix of it were a kernel write: a run of
			 * prefixes the kernel holds already costs a tenth of one
			 * it does not, and chunks grown over the first were 50-90
			 * ms when the second began.
			 */
			uint64_t per = dt / (lim ? lim : 1) + 1;
			size_t want;

			if (nw >= lim / 2 && nw)
				a->write_ns = dt / nw + 1;
			if (per < a->write_ns)
				per = a->write_ns;
			want = (size_t)(budget_ns / 4 / per);

			if (want > a->chunk * 2)
				want = a->chunk * 2;
			a->chunk = want < CHUNK_MIN ? CHUNK_MIN :
				   want > CHUNK_MAX ? CHUNK_MAX :
						      want;
		}
		if (over) {
			uint64_t cpu = zt_thread_cpu_ns();

			a->j.rep.steps++;
			a->j.rep.cpu_ns += cpu - cpu0;
			if (cpu - cpu0 > a->j.rep.longest_step_cpu_ns)
				a->j.rep.longest_step_cpu_ns = cpu - cpu0;
			cpu0 = cpu;
			if (now - js > a->j.rep.longest_step_ns)
				a->j.rep.longest_step_ns = now - js;
			job_finish(a);
			if (!start_next(a))
				return false;
			js = now;
		}
		/* Releases stop at half the budget: one more may cost 20-30 ms (see DEL_SUB). */
		limit = a->j.phase == PH_ADD ? budget_ns : budget_ns / 2;
		if (now - t0 >= limit)
			break;
	}
	a->j.rep.steps++;
	{
		uint64_t cpu = zt_thread_cpu_ns() - cpu0;

		a->j.rep.cpu_ns += cpu;
		if (cpu > a->j.rep.longest_step_cpu_ns)
			a->j.rep.longest_step_cpu_ns = cpu;
	}
	if (now - js > a->j.rep.longest_step_ns)
		a->j.rep.longest_step_ns = now - js;
	return true;
}

bool zt_feed_apply_waiting(const struct zt_feed_apply *a)
{
	return a->waiting;
}

bool zt_feed_apply_busy(const struct zt_feed_apply *a)
{
	if (a->j.on)
		return true;
	for (unsigned int i = 0; i < a->n; i++)
		if (a->f[i].pending)
			return true;
	return false;
}

int zt_feed_apply_submit(struct zt_feed_apply *a, unsigned int idx, struct zt_feed_result *r,
			 const uint8_t digest[32], uint64_t submit_ns)
{
	struct fstate *f;

	if (idx >= a->n || !r) {
		if (r) {
			zt_feed_result_free(r);
			free(r);
		}
		return idx >= a->n ? -ENOENT : -EINVAL;
	}
	f = &a->f[idx];
	if (f->pending) {
		zt_feed_result_free(f->pending);
		free(f->pending);
	}
	f->pending = r;
	memcpy(f->pending_digest, digest, sizeof(f->pending_digest));
	f->pending_ns = submit_ns ? submit_ns : zt_now_mono_ns();
	return 0;
}

/* Whether feed i, configured for direction dir, lists exactly c there. */
static bool feed_lists(const struct zt_feed_apply *a, unsigned int i, const struct zt_cidr *c,
		       uint8_t dir)
{
	return (a->f[i].fc.direction & dir) && lists(a->f[i].cur, c, dir);
}

void zt_feed_apply_owners(const struct zt_feed_apply *a, const struct zt_cidr *c, uint32_t *src,
			  uint32_t *dst)
{
	*src = *dst = 0;
	for (unsigned int i = 0; i < a->n; i++) {
		if (feed_lists(a, i, c, ZT_FEED_SOURCE))
			*src |= 1u << i;
		if (feed_lists(a, i, c, ZT_FEED_DESTINATION))
			*dst |= 1u << i;
	}
}

bool zt_feed_apply_lists_src(const struct zt_feed_apply *a, unsigned int idx,
			     const struct zt_cidr *c)
{
	return idx < a->n && feed_lists(a, idx, c, ZT_FEED_SOURCE);
}

const struct zt_feed_result *zt_feed_apply_current(const struct zt_feed_apply *a, unsigned int idx)
{
	return idx < a->n ? a->f[idx].cur : NULL;
}

void zt_feed_apply_counts(const struct zt_feed_apply *a, unsigned int idx, size_t *src, size_t *dst)
{
	*src = idx < a->n ? a->f[idx].n_src : 0;
	*dst = idx < a->n ? a->f[idx].n_dst : 0;
}

static int ref_in(const struct zt_feed_result *r, const struct zt_cidr *c, char *ref, size_t n)
{
	struct cursor cu = { r, 0 };
	size_t k = cur_find(&cu, c);

	if (!r || k >= r->n)
		return -ENOENT;
	for (size_t i = k; i < r->n && cidr_eq(&r->entries[i].cidr, c); i++)
		if (r->entries[i].ref) {
			snprintf(ref, n, "%s", zt_feed_ref(r, &r->entries[i]));
			return 0;
		}
	snprintf(ref, n, "%s", "");
	return 0;
}

int zt_feed_apply_reference(struct zt_feed_apply *a, unsigned int idx, const struct zt_cidr *c,
			    char *ref, size_t n)
{
	int r = -ENOENT;

	if (idx >= a->n)
		return -ENOENT;
	pthread_mutex_lock(&a->lock);
	if (a->j.on && a->j.idx == idx)
		r = ref_in(a->j.nr, c, ref, n);
	if (r < 0)
		r = ref_in(a->f[idx].cur, c, ref, n);
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* Entries an earlier agent left in the IOC maps: counted, so flags and deletes stay right. */
static void ioc_recount(struct zt_feed_apply *a)
{
	for (int fam = 0; fam < 2; fam++)
		for (int t = 0; t < 2; t++) {
			int fd = t ? a->m.ioc_lpm[fam] : a->m.ioc_host[fam];
			uint8_t k[sizeof(struct zt_ip6_key)], nk[sizeof(struct zt_ip6_key)];
			void *prev = NULL;

			if (fd < 0)
				continue;
			while (bpf_map_get_next_key(fd, prev, nk) == 0) {
				memcpy(k, nk, sizeof(k));
				prev = k;
				a->ioc_count[fam][t]++;
			}
		}
}

int zt_feed_apply_init(struct zt_feed_apply **out, const struct zt_feed_apply_maps *maps,
		       const struct zt_feed_config *feeds, unsigned int n, zt_feed_applied_fn done,
		       void *ctx)
{
	struct zt_feed_apply *a;

	if (n > ZT_MAX_FEEDS)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->m = *maps;
	a->n = n;
	for (unsigned int i = 0; i < n; i++)
		a->f[i].fc = feeds[i];
	a->chunk = CHUNK_START;
	a->write_ns = WRITE_NS_START;
	a->dchunk = DEL_SUB;
	a->done = done;
	a->done_ctx = ctx;
	a->boot_minus_unix_ns =
		(int64_t)zt_now_boot_ns() - (int64_t)(zt_now_unix() * 1000000000ULL);
	pthread_mutex_init(&a->lock, NULL);
	if (a->m.ioc_state >= 0) {
		uint32_t zero = 0;

		ioc_recount(a);
		if (bpf_map_lookup_elem(a->m.ioc_state, &zero, &a->ioc_pub) < 0)
			memset(&a->ioc_pub, 0, sizeof(a->ioc_pub));
		ioc_publish(a);
	}
	*out = a;
	return 0;
}

void zt_feed_apply_stop(struct zt_feed_apply *a)
{
	if (!a)
		return;
	for (unsigned int i = 0; i < a->n; i++) {
		if (a->f[i].cur) {
			zt_feed_result_free(a->f[i].cur);
			free(a->f[i].cur);
		}
		if (a->f[i].pending) {
			zt_feed_result_free(a->f[i].pending);
			free(a->f[i].pending);
		}
	}
	if (a->j.on && a->j.nr && !a->j.rollback) {
		zt_feed_result_free(a->j.nr);
		free(a->j.nr);
	}
	if (a->j.failed) {
		zt_feed_result_free(a->j.failed);
		free(a->j.failed);
	}
	job_free_lists(&a->j);
	free(a->bl_add);
	free(a->bl_del);
	free(a->ioc_add);
	free(a->ioc_del);
	free(a->ioc_kbuf);
	free(a->ioc_vbuf);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
