// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "records/auditq.h"
#include "guard/blocklist_int.h"
#include "agent/log.h"
#include "guard/drift.h"
#include "xdp_guard.skel.h"

/*
 * Expiry slices (see zt_blocklist_expire). The kernel charges the thread
 * that deletes for freeing elements (RCU callbacks in its softirqs): during
 * a mass expiry a delete of 32 keys can cost 20-30 ms of CPU, so the clock
 * is read every EXPIRE_SUB keys and the budget leaves room for that.
 */
#define EXPIRE_STEP_MIN 1024
#define EXPIRE_STEP_MAX 65536
#define EXPIRE_SUB 32 /* entries per removal, between looks at the clock */
#define EXPIRE_SCAN_SLOTS ((size_t)1 << 20)
#define EXPIRE_BUDGET_NS 15000000ULL

void zt_blocklist_set_audit(struct zt_blocklist *bl, zt_bl_audit_fn fn, void *ctx)
{
	bl->audit = fn;
	bl->audit_ctx = ctx;
}

/* An audit event with detail built from a format (a JSON object). */
void bl_audit(struct zt_blocklist *bl, const char *kind, const char *subject, const char *fmt, ...)
{
	char detail[2048];
	va_list ap;

	if (!bl->audit)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	bl->audit(bl->audit_ctx, kind, subject, detail);
}

size_t bl_audit_cidrs(struct zt_blocklist *bl, const char *kind, const char *subject,
		      const char *head, const struct zt_cidr *cs, size_t n)
{
	size_t parts = (n + BL_AUDIT_CIDRS - 1) / BL_AUDIT_CIDRS;
	size_t cap = strlen(head) + 128 + (size_t)BL_AUDIT_CIDRS * (ZT_CIDR_STRLEN + 3);
	char *buf;

	if (!bl->audit || !n)
		return 0;
	buf = malloc(cap);
	if (!buf)
		return 0;
	for (size_t p = 0; p < parts; p++) {
		size_t first = p * BL_AUDIT_CIDRS,
		       cnt = n - first > BL_AUDIT_CIDRS ? BL_AUDIT_CIDRS : n - first;
		size_t o = (size_t)snprintf(
			buf, cap, "{%s%s\"part\":%zu,\"parts\":%zu,\"count\":%zu,\"cidrs\":[", head,
			*head ? "," : "", p + 1, parts, cnt);

		/* Each CIDR fits: cap holds ZT_CIDR_STRLEN + 3 per CIDR past the head. */
		for (size_t i = 0; i < cnt; i++) {
			char c[ZT_CIDR_STRLEN];
			size_t l;

			zt_cidr_format(&cs[first + i], c, sizeof(c));
			l = strlen(c);
			if (o + l + 4 > cap)
				break;
			if (i)
				buf[o++] = ',';
			buf[o++] = '"';
			memcpy(buf + o, c, l);
			o += l;
			buf[o++] = '"';
		}
		if (o < cap)
			snprintf(buf + o, cap - o, "]}");
		bl->audit(bl->audit_ctx, kind, subject, buf);
	}
	free(buf);
	return parts;
}

static const char *const reason_names[ZT_BR_MAX] = {
	[ZT_BR_UNSPEC] = "unspecified",
	[ZT_BR_OPERATOR] = "operator",
	[ZT_BR_THREAT_INTEL] = "threat-intel",
	[ZT_BR_SCAN] = "scan",
	[ZT_BR_FLOOD] = "flood",
	[ZT_BR_ANOMALY] = "anomaly",
	[ZT_BR_POLICY] = "policy",
};

static const char *const source_names[ZT_BS_MAX] = {
	[ZT_BS_MANUAL] = "manual",
	[ZT_BS_FEED] = "feed",
	[ZT_BS_DETECTOR] = "detector",
};

const char *zt_block_reason_name(unsigned int reason)
{
	return reason < ZT_BR_MAX ? reason_names[reason] : "unknown";
}

int zt_block_reason_parse(const char *s, uint16_t *out)
{
	for (uint16_t i = 1; i < ZT_BR_MAX; i++)
		if (strcmp(s, reason_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

const char *zt_block_source_name(unsigned int source)
{
	return source < ZT_BS_MAX ? source_names[source] : "unknown";
}

int zt_block_source_parse(const char *s, uint16_t *out)
{
	for (uint16_t i = 0; i < ZT_BS_MAX; i++)
		if (strcmp(s, source_names[i]) == 0) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

/* ---- the mirror: open addressing, linear probing, backward-shift delete ---- */

static uint64_t slot_hash(int fam, uint8_t plen, const uint8_t *addr)
{
	uint64_t a = 0, b = 0, h;

	memcpy(&a, addr, 8 > addr_len(fam) ? addr_len(fam) : 8);
	if (fam == FAM_V6)
		memcpy(&b, addr + 8, 8);
	h = a * 0x9E3779B97F4A7C15ULL ^ (b + 0xC2B2AE3D27D4EB4FULL) * 0x165667B19E3779F9ULL ^
	    ((uint64_t)plen << 8 | (uint64_t)fam);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* A drift checksum's item: the key's hash and the whole value (see zt_blocklist_scan_run). */
static uint64_t bl_scan_item(uint64_t key_hash, uint64_t expires_ns, uint32_t source,
			     uint32_t reason, uint64_t created_unix, uint32_t feed_id,
			     uint32_t note_id)
{
	uint64_t meta = zt_mix64(created_unix ^ ((uint64_t)feed_id << 32 | note_id) ^
				 ((uint64_t)reason << 48));

	return zt_mix64(key_hash ^ meta ^
			(expires_ns * 0x9E3779B97F4A7C15ULL + ((uint64_t)source << 56) + 1));
}

/* A slot's part in its bucket's checksum, in (sign 1) or out (-1). */
static void slot_sum(struct bl_table *t, const struct bl_slot *s, int sign)
{
	uint64_t kh = slot_hash(s->fam, s->plen, s->addr);
	unsigned int b = (unsigned int)(kh >> (64 - BL_SCAN_BUCKET_BITS));
	uint64_t item = bl_scan_item(kh ^ s->plen, s->expires_ns, s->source, s->reason,
				     s->created_unix, s->feed_id, s->note_id);

	t->sums[s->fam][b] += sign > 0 ? item : -item;
	t->counts[s->fam][b] += sign > 0 ? 1 : -1;
}

static bool slot_eq(const struct bl_slot *s, int fam, uint8_t plen, const uint8_t *addr)
{
	return s->fam == fam && s->plen == plen && memcmp(s->addr, addr, addr_len(fam)) == 0;
}

static size_t tab_home(const struct bl_table *t, uint64_t h)
{
	return (size_t)(h >> t->shift);
}

static struct bl_slot *tab_find(const struct bl_table *t, int fam, uint8_t plen,
				const uint8_t *addr)
{
	size_t mask = t->cap - 1, i = tab_home(t, slot_hash(fam, plen, addr));

	while (t->slots[i].used) {
		if (slot_eq(&t->slots[i], fam, plen, addr))
			return &t->slots[i];
		i = (i + 1) & mask;
	}
	return NULL;
}

/*
 * Slot arrays come from mmap, in huge pages where the kernel gives them,
 * populated for writing in one call. A big calloc is mapped to the zero
 * page and every first touch faults (a read first makes the later write a
 * copy-on-write fault with a TLB flush on every CPU); a memset after the
 * calloc does not help, the compiler drops it. Populating is still most of
 * a grow (0.1-0.5 s for 2M slots in a VM), which is why
 * zt_blocklist_reserve() has it done on a thread of its own.
 */
static struct bl_slot *slots_alloc(size_t cap)
{
	size_t len = cap * sizeof(struct bl_slot);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_HUGEPAGE);
	if (madvise(p, len, MADV_POPULATE_WRITE) < 0) {
		/* Older kernels: a write to each page, one the compiler keeps. */
		for (size_t off = 0; off < len; off += 4096)
			((volatile uint8_t *)p)[off] = 0;
	}
	return p;
}

static void slots_free(struct bl_slot *s, size_t cap)
{
	if (s)
		munmap(s, cap * sizeof(*s));
}

static size_t tab_cap_for(const struct bl_table *t, size_t need)
{
	size_t cap = t->cap ? t->cap : 1024;

	while (need * 10 > cap * 7)
		cap <<= 1;
	return cap;
}

/* Waits for the spare-slots thread, if one runs. */
static void spare_join(struct zt_blocklist *bl)
{
	if (bl->spare_running) {
		pthread_join(bl->spare_thr, NULL);
		bl->spare_running = false;
	}
}

static int tab_grow(struct zt_blocklist *bl, size_t need)
{
	struct bl_table *t = &bl->tab;
	struct bl_slot *old = t->slots, *ns;
	size_t oldcap = t->cap, cap = tab_cap_for(t, need);
	struct bl_table nt;

	if (cap == t->cap)
		return 0;
	spare_join(bl);
	if (bl->spare && bl->spare_cap >= cap) {
		ns = bl->spare;
		cap = bl->spare_cap;
		bl->spare = NULL;
	} else {
		ns = slots_alloc(cap);
		if (!ns)
			return -ENOMEM;
	}
	nt = (struct bl_table){ .slots = ns, .cap = cap, .shift = 64 - __builtin_ctzll(cap) };
	for (size_t j = 0; j < oldcap; j++) {
		size_t i;

		if (!old[j].used)
			continue;
		i = tab_home(&nt, slot_hash(old[j].fam, old[j].plen, old[j].addr));
		while (ns[i].used)
			i = (i + 1) & (cap - 1);
		ns[i] = old[j];
	}
	slots_free(old, oldcap);
	t->slots = ns;
	t->cap = cap;
	t->shift = nt.shift;
	return 0;
}

#define RESERVE_SYNC_SLOTS ((size_t)1 << 17)

static void *spare_main(void *arg)
{
	struct zt_blocklist *bl = arg;

	bl->spare = slots_alloc(bl->spare_cap);
	atomic_store(&bl->spare_done, true);
	return NULL;
}

static int reserve_held(struct zt_blocklist *bl, size_t more)
{
	size_t cap = tab_cap_for(&bl->tab, bl->tab.n + more);

	if (cap == bl->tab.cap)
		return 0;
	/* Small: at once (a few ms at most). */
	if (cap <= RESERVE_SYNC_SLOTS && !bl->spare_running)
		return tab_grow(bl, bl->tab.n + more);
	if (bl->spare_running) {
		if (!atomic_load(&bl->spare_done))
			return 1;
		spare_join(bl);
		if (!bl->spare)
			return -ENOMEM; /* the thread's mmap failed: not again and again */
	}
	if (bl->spare && bl->spare_cap >= cap) {
		/* The rehash, on the caller's thread: tens of ms for 1M entries. */
		int r = tab_grow(bl, bl->tab.n + more);

		return r < 0 ? r : 1;
	}
	slots_free(bl->spare, bl->spare_cap);
	bl->spare = NULL;
	bl->spare_cap = cap;
	atomic_store(&bl->spare_done, false);
	if (pthread_create(&bl->spare_thr, NULL, spare_main, bl) != 0) {
		int r = tab_grow(bl, bl->tab.n + more);

		return r < 0 ? r : 1;
	}
	bl->spare_running = true;
	return 1;
}

/* Inserts a new key (the caller checked it is absent and grew the table). */
static struct bl_slot *tab_insert(struct bl_table *t, int fam, uint8_t plen, const uint8_t *addr)
{
	size_t mask = t->cap - 1, i = tab_home(t, slot_hash(fam, plen, addr));

	while (t->slots[i].used)
		i = (i + 1) & mask;
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->slots[i].used = 1;
	t->slots[i].fam = fam;
	t->slots[i].plen = plen;
	memcpy(t->slots[i].addr, addr, addr_len(fam));
	t->n++;
	return &t->slots[i];
}

static void tab_remove(struct bl_table *t, struct bl_slot *s)
{
	size_t mask = t->cap - 1, i = s - t->slots, j = i;

	if (s->summed)
		slot_sum(t, s, -1);
	t->slots[i].used = 0;
	t->n--;
	t->removals++;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!t->slots[j].used)
			return;
		home = tab_home(t, slot_hash(t->slots[j].fam, t->slots[j].plen, t->slots[j].addr));
		/* Move j back to the hole at i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			t->slots[i] = t->slots[j];
			t->slots[j].used = 0;
			i = j;
		}
	}
}

/* ---- listing order ---- */

static int pos_cmp(const struct bl_pos *a, const struct bl_pos *b)
{
	if (a->h != b->h)
		return a->h < b->h ? -1 : 1;
	if (a->k.fam != b->k.fam)
		return a->k.fam - b->k.fam;
	if (a->k.plen != b->k.plen)
		return a->k.plen - b->k.plen;
	return memcmp(a->k.addr, b->k.addr, sizeof(a->k.addr));
}

static int pos_qcmp(const void *a, const void *b)
{
	return pos_cmp(a, b);
}

static void slot_pos(const struct bl_slot *s, uint64_t h, struct bl_pos *p)
{
	memset(p, 0, sizeof(*p));
	p->h = h;
	p->k.fam = s->fam;
	p->k.plen = s->plen;
	p->k.in_trie = s->in_trie;
	memcpy(p->k.addr, s->addr, addr_len(s->fam));
}

static int cand_push(struct bl_pos **v, size_t *n, size_t *cap, const struct bl_pos *p)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct bl_pos *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *p;
	return 0;
}

/*
 * A slot's home is the top bits of its hash and an entry sits at or after
 * its home with no empty slot in between. So scanning forward from the
 * cursor's home, once limit candidates are held, the next empty slot ends
 * the search: every entry not yet seen has a home beyond it, hence a
 * larger hash. Entries that wrapped around the end of the table (home
 * above their slot) come last, as their hashes do.
 */
static ssize_t list_page_held(const struct zt_blocklist *bl, const struct bl_pos *after,
			      struct bl_pos *out, size_t limit, bool *more)
{
	const struct bl_table *t = &bl->tab;
	struct bl_pos *cand = NULL, p;
	size_t nc = 0, cc = 0, i;
	bool to_end = true;
	int r = 0;

	*more = false;
	if (!t->n || !limit)
		return 0;
	for (i = after ? tab_home(t, after->h) : 0; i < t->cap && r == 0; i++) {
		const struct bl_slot *s = &t->slots[i];
		uint64_t h;

		if (!s->used) {
			if (nc >= limit) {
				to_end = false;
				break;
			}
			continue;
		}
		h = slot_hash(s->fam, s->plen, s->addr);
		if (tab_home(t, h) > i)
			continue; /* wrapped: seen after the end */
		slot_pos(s, h, &p);
		if (!after || pos_cmp(&p, after) > 0)
			r = cand_push(&cand, &nc, &cc, &p);
	}
	for (i = 0; to_end && i < t->cap && t->slots[i].used && r == 0; i++) {
		const struct bl_slot *s = &t->slots[i];
		uint64_t h = slot_hash(s->fam, s->plen, s->addr);

		if (tab_home(t, h) <= i)
			continue;
		slot_pos(s, h, &p);
		if (!after || pos_cmp(&p, after) > 0)
			r = cand_push(&cand, &nc, &cc, &p);
	}
	if (r < 0) {
		free(cand);
		return r;
	}
	qsort(cand, nc, sizeof(*cand), pos_qcmp);
	*more = !to_end || nc > limit;
	if (nc > limit)
		nc = limit;
	memcpy(out, cand, nc * sizeof(*cand));
	free(cand);
	return (ssize_t)nc;
}

void bl_pos_encode(const struct bl_pos *p, uint8_t out[BL_POS_WIRE])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(p->h >> (56 - 8 * i));
	out[8] = p->k.fam;
	out[9] = p->k.plen;
	memcpy(out + 10, p->k.addr, 16);
}

int bl_pos_decode(const uint8_t *in, size_t len, struct bl_pos *p)
{
	if (len != BL_POS_WIRE || in[8] > FAM_V6 || in[9] > (in[8] == FAM_V4 ? 32 : 128))
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 8; i++)
		p->h = p->h << 8 | in[i];
	p->k.fam = in[8];
	p->k.plen = in[9];
	memcpy(p->k.addr, in + 10, addr_len(p->k.fam));
	return 0;
}

void bl_key_cidr(const struct bl_key *k, struct zt_cidr *c)
{
	memset(c, 0, sizeof(*c));
	c->family = k->fam == FAM_V4 ? AF_INET : AF_INET6;
	c->prefixlen = k->plen;
	memcpy(c->addr, k->addr, addr_len(k->fam));
}

/* ---- kernel maps ---- */

/* Fills a zt_ip4_key or zt_ip6_key; returns its size. */
size_t bl_make_key(int fam, uint8_t plen, const uint8_t *addr, void *key)
{
	if (fam == FAM_V4) {
		struct zt_ip4_key *k = key;

		k->prefixlen = plen;
		memcpy(k->addr, addr, 4);
		return sizeof(*k);
	}
	struct zt_ip6_key *k6 = key;

	k6->prefixlen = plen;
	memcpy(k6->addr, addr, 16);
	return sizeof(*k6);
}

static bool trie_empty(int fd)
{
	uint8_t next[sizeof(struct zt_ip6_key)];

	return bpf_map_get_next_key(fd, NULL, next) < 0;
}

#define FILTER_V4_BUCKETS ((size_t)1 << ZT_FILTER_V4_BITS)
#define FILTER_V6_BUCKETS ((size_t)1 << ZT_FILTER_V6_BITS)

static void filter_mark(struct zt_blocklist *bl, size_t w)
{
	if (!bl->fdirty[w]) {
		bl->fdirty[w] = 1;
		bl->fdlist[bl->n_fdlist++] = (uint32_t)w;
	}
}

static void filter_bit(struct zt_blocklist *bl, size_t b)
{
	bl->fwords[b >> 6] ^= 1ULL << (b & 63);
	filter_mark(bl, b >> 6);
}

/* Counts an entry in (delta 1) or out (-1) of the buckets it covers; marks changed words. */
static void filter_ref(struct zt_blocklist *bl, int fam, uint8_t plen, const uint8_t *addr,
		       int delta)
{
	if (fam == FAM_V4) {
		if (plen < ZT_FILTER_V4_MIN_PLEN) {
			bl->n_short[FAM_V4] += delta;
			return;
		}
		if (plen >= ZT_FILTER_V4_SPLIT) {
			/* /17 and longer: the /24s it covers (up to 128), each hashed. */
			uint32_t span = plen >= 24 ? 1 : 1u << (24 - plen);
			uint32_t net =
				((uint32_t)addr[0] << 16 | (uint32_t)addr[1] << 8 | addr[2]) &
				~(span - 1);

			for (uint32_t i = 0; i < span; i++) {
				uint32_t b = zt_filter_v4_hash(net + i);
				uint8_t *c = &bl->fcount4[b];

				/* A saturated counter stays: its bit stays set, always safe. */
				if (*c != UINT8_MAX && (delta > 0 ? (*c)++ == 0 : --(*c) == 0))
					filter_bit(bl, b);
			}
			return;
		}
		/* /8 to /16: the exact /16s it covers (up to 256). */
		{
			uint32_t span = 1u << (16 - plen);
			uint32_t first = zt_filter_v16_bucket(addr) & ~(span - 1);

			for (uint32_t b = first; b < first + span; b++)
				if (delta > 0 ? bl->fcount16[b]++ == 0 : --bl->fcount16[b] == 0)
					filter_bit(bl, (size_t)ZT_FILTER_V16_BASE * 64 + b);
		}
		return;
	}
	if (plen < ZT_FILTER_V6_MIN_PLEN) {
		bl->n_short[FAM_V6] += delta;
		return;
	}
	{
		uint32_t b = zt_filter_v6_bucket(addr);
		uint16_t *c = &bl->fcount6[b];

		if (*c != UINT16_MAX && (delta > 0 ? (*c)++ == 0 : --(*c) == 0))
			filter_bit(bl, (size_t)ZT_FILTER_V6_BASE * 64 + b);
	}
}

/*
 * Writes the changed words in one batch (one syscall), word by word where
 * batching is missing. Costs what changed, not the size of the bitmap.
 */
static int filter_flush(struct zt_blocklist *bl)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	size_t n = bl->n_fdlist;
	int r = 0;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		bl->fvals[i] = bl->fwords[bl->fdlist[i]];
	{
		__u32 cnt = (__u32)n;

		r = bpf_map_update_batch(bl->fd_filter, bl->fdlist, bl->fvals, &cnt, &opts);
	}
	if (r == -EINVAL || r == -524 /* ENOTSUPP */ || r == -EOPNOTSUPP) {
		r = 0;
		for (size_t i = 0; i < n && r == 0; i++)
			if (bpf_map_update_elem(bl->fd_filter, &bl->fdlist[i], &bl->fvals[i],
						BPF_ANY) < 0)
				r = -errno;
	}
	if (r == 0) {
		for (size_t i = 0; i < n; i++)
			bl->fdirty[bl->fdlist[i]] = 0;
		bl->n_fdlist = 0;
	}
	return r;
}

static int publish_prefixes(struct zt_blocklist *bl)
{
	struct zt_prefix_set ps = {};
	uint32_t zero = 0;

	for (int len = 32; len >= 0; len--)
		if (bl->count[FAM_V4][len] && bl->hashed[FAM_V4][len])
			ps.v4_lens[ps.v4_count++] = len;
	for (int len = 128; len >= 0; len--)
		if (bl->count[FAM_V6][len] && bl->hashed[FAM_V6][len])
			ps.v6_lens[ps.v6_count++] = len;
	ps.v4_lpm_used = bl->n_trie[FAM_V4] != 0;
	ps.v6_lpm_used = bl->n_trie[FAM_V6] != 0;
	ps.allow_v4_used = bl->allow_used[FAM_V4];
	ps.allow_v6_used = bl->allow_used[FAM_V6];
	ps.filter_v4_on = bl->n_short[FAM_V4] == 0;
	ps.filter_v6_on = bl->n_short[FAM_V6] == 0;
	/* tc_endpoint looks at its flows again (zt_ct_val.bl_gen); 0 is no generation. */
	ps.gen = bl->pub_gen + 1 ? bl->pub_gen + 1 : 1;
	if (bpf_map_update_elem(bl->fd_prefixes, &zero, &ps, BPF_ANY) < 0)
		return -errno;
	bl->pub_gen = ps.gen;
	return 0;
}

static unsigned int hashed_lens(const struct zt_blocklist *bl, int fam)
{
	unsigned int n = 0;

	for (int len = 0; len <= MAX_PLEN; len++)
		n += bl->count[fam][len] && bl->hashed[fam][len];
	return n;
}

static void note_expiry(struct zt_blocklist *bl, uint64_t expires_ns)
{
	if (expires_ns && expires_ns < bl->next_expiry)
		bl->next_expiry = expires_ns;
	/* An entry the running sweep has passed (or will not see) counts for its next round. */
	if (expires_ns && expires_ns < bl->sweep_next)
		bl->sweep_next = expires_ns;
}

static uint32_t intern_note(struct zt_blocklist *bl, const char *text)
{
	struct zt_note note = {}, cur;
	uint32_t id;

	if (!text || !*text)
		return 0;
	snprintf(note.text, sizeof(note.text), "%s", text);
	id = zt_fnv1a32(note.text, strlen(note.text)) | 1;
	for (int probe = 0; probe < 64; probe++, id = (id + 2) | 1) {
		if (bpf_map_lookup_elem(bl->fd_notes, &id, &cur) == 0) {
			if (strncmp(cur.text, note.text, sizeof(cur.text)) == 0) {
				bl_notes_remember(bl, id, note.text);
				return id;
			}
			continue;
		}
		if (bpf_map_update_elem(bl->fd_notes, &id, &note, BPF_NOEXIST) == 0) {
			bl_notes_remember(bl, id, note.text);
			return id;
		}
		break;
	}
	log_warn("note_dropped", "why=\"block_notes is full\" capacity=%u", bl->max_notes);
	return 0;
}

void bl_note_text(struct zt_blocklist *bl, uint32_t id, char *buf, size_t n)
{
	struct zt_note note;

	buf[0] = '\0';
	if (id && bpf_map_lookup_elem(bl->fd_notes, &id, &note) == 0) {
		note.text[sizeof(note.text) - 1] = '\0';
		snprintf(buf, n, "%s", note.text);
	}
}

int bl_entry_fd(const struct zt_blocklist *bl, int fam, bool in_trie)
{
	return in_trie ? bl->fd_trie[fam] : bl->fd_hash[fam];
}

/* What the mirror keeps of an entry's value: all of it but the prefix length (the key's). */
static void slot_set_value(struct bl_table *t, struct bl_slot *s, const struct zt_block_entry *v)
{
	if (s->summed)
		slot_sum(t, s, -1);
	s->source = (uint8_t)v->source;
	s->reason = v->reason;
	s->expires_ns = v->expires_ns;
	s->created_unix = v->created_unix;
	s->feed_id = v->feed_id;
	s->note_id = v->note_id;
	s->summed = !s->in_trie;
	if (s->summed)
		slot_sum(t, s, 1);
}

static int mirror_one(struct zt_blocklist *bl, int fam, bool trie, const uint8_t *key,
		      const struct zt_block_entry *val)
{
	uint32_t plen;
	struct bl_slot *s;

	memcpy(&plen, key, sizeof(plen));
	if (plen > (fam == FAM_V4 ? 32u : 128u))
		return 0;
	if (tab_grow(bl, bl->tab.n + 1) < 0)
		return -ENOMEM;
	if (tab_find(&bl->tab, fam, plen, key + sizeof(uint32_t)))
		return 0;
	s = tab_insert(&bl->tab, fam, plen, key + sizeof(uint32_t));
	s->in_trie = trie;
	slot_set_value(&bl->tab, s, val);
	note_expiry(bl, val->expires_ns);
	bl->count[fam][plen]++;
	bl->hashed[fam][plen] = !trie;
	bl->n_fam[fam]++;
	bl->n_trie[fam] += trie;
	filter_ref(bl, fam, plen, key + sizeof(uint32_t), 1);
	return 0;
}

/* Reads a hash map into the mirror in batches; -EINVAL etc. when batching is not there. */
static int load_map_batch(struct zt_blocklist *bl, int fam)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t ks = fam == FAM_V4 ? sizeof(struct zt_ip4_key) : sizeof(struct zt_ip6_key);
	uint8_t *keys = malloc(BATCH * ks);
	struct zt_block_entry *vals = malloc(BATCH * sizeof(*vals));
	uint64_t in_batch = 0, out_batch = 0;
	bool first = true;
	int r = 0;

	if (!keys || !vals) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 cnt = BATCH;

		r = bpf_map_lookup_batch(bl->fd_hash[fam], first ? NULL : &in_batch, &out_batch,
					 keys, vals, &cnt, &opts);
		if (r < 0 && r != -ENOENT)
			goto out;
		for (__u32 i = 0; i < cnt; i++) {
			int e = mirror_one(bl, fam, false, keys + i * ks, &vals[i]);

			if (e < 0) {
				r = e;
				goto out;
			}
		}
		if (r == -ENOENT) {
			r = 0;
			break;
		}
		in_batch = out_batch;
		first = false;
	}
out:
	free(keys);
	free(vals);
	return r;
}

/* Reads one blocklist map into the mirror. */
static int load_map(struct zt_blocklist *bl, int fam, bool trie)
{
	int fd = bl_entry_fd(bl, fam, trie);
	uint8_t key[sizeof(struct zt_ip6_key)], next[sizeof(struct zt_ip6_key)];
	struct zt_block_entry val;
	void *prev = NULL;
	int r;

	if (!trie) {
		r = load_map_batch(bl, fam);
		if (r != -EINVAL && r != -524 /* ENOTSUPP */ && r != -EOPNOTSUPP)
			return r;
	}
	/* LPM tries (and kernels without batch lookups): one key at a time. */
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, sizeof(key));
		prev = key;
		if (bpf_map_lookup_elem(fd, key, &val) < 0)
			continue;
		/* Entries pinned by an older agent lack their length: add it. */
		if (trie && memcmp(&val.prefixlen, key, sizeof(uint32_t))) {
			memcpy(&val.prefixlen, key, sizeof(uint32_t));
			bpf_map_update_elem(fd, key, &val, BPF_EXIST);
		}
		r = mirror_one(bl, fam, trie, key, &val);
		if (r < 0)
			return r;
	}
	if (errno != ENOENT)
		return -errno;
	return 0;
}

int zt_blocklist_init(struct zt_blocklist **out, struct zt_datapath *dp, char *err, size_t errlen)
{
	struct zt_blocklist *bl;
	struct xdp_guard *s = dp->xdp;
	int r;

	bl = calloc(1, sizeof(*bl));
	if (!bl)
		return -ENOMEM;
	/* The ring-buffer consumer (SCHED_FIFO) waits on it for a detector's block. */
	zt_mutex_init_pi(&bl->mu, true);
	bl->dp = dp;
	bl->fd_hash[FAM_V4] = bpf_map__fd(s->maps.blocklist_v4);
	bl->fd_hash[FAM_V6] = bpf_map__fd(s->maps.blocklist_v6);
	bl->fd_trie[FAM_V4] = bpf_map__fd(s->maps.blocklist_lpm_v4);
	bl->fd_trie[FAM_V6] = bpf_map__fd(s->maps.blocklist_lpm_v6);
	bl->fd_allow[FAM_V4] = bpf_map__fd(s->maps.allowlist_v4);
	bl->fd_allow[FAM_V6] = bpf_map__fd(s->maps.allowlist_v6);
	bl->fd_prefixes = bpf_map__fd(s->maps.blocklist_prefixes);
	bl->fd_notes = bpf_map__fd(s->maps.block_notes);
	bl->max_entries[FAM_V4] = bpf_map__max_entries(s->maps.blocklist_v4);
	bl->max_entries[FAM_V6] = bpf_map__max_entries(s->maps.blocklist_v6);
	bl->max_notes = bpf_map__max_entries(s->maps.block_notes);
	bl->next_expiry = UINT64_MAX;
	bl->sweep_next = UINT64_MAX;
	bl->expire_step = EXPIRE_STEP_MIN;
	bl->fd_filter = bpf_map__fd(s->maps.blocklist_filter);
	bl->fcount4 = calloc(FILTER_V4_BUCKETS, sizeof(*bl->fcount4));
	bl->fcount6 = calloc(FILTER_V6_BUCKETS, sizeof(*bl->fcount6));
	bl->fcount16 = calloc(65536, sizeof(*bl->fcount16));
	bl->fwords = calloc(ZT_FILTER_WORDS, sizeof(*bl->fwords));
	bl->fdirty = calloc(ZT_FILTER_WORDS, 1);
	bl->fdlist = malloc(ZT_FILTER_WORDS * sizeof(*bl->fdlist));
	bl->fvals = malloc(ZT_FILTER_WORDS * sizeof(*bl->fvals));
	if (!bl->fcount4 || !bl->fcount6 || !bl->fcount16 || !bl->fwords || !bl->fdirty ||
	    !bl->fdlist || !bl->fvals) {
		zt_blocklist_stop(bl);
		return -ENOMEM;
	}
	/* Pages written now, not copied from the zero page one by one later (see tab_grow). */
	memset(bl->fcount4, 0, FILTER_V4_BUCKETS * sizeof(*bl->fcount4));
	memset(bl->fcount6, 0, FILTER_V6_BUCKETS * sizeof(*bl->fcount6));
	memset(bl->fcount16, 0, 65536 * sizeof(*bl->fcount16));
	memset(bl->fwords, 0, ZT_FILTER_WORDS * sizeof(*bl->fwords));
	/* Every word is written once at start: repairs whatever an earlier run left. */
	for (size_t w = 0; w < ZT_FILTER_WORDS; w++)
		filter_mark(bl, w);
	r = tab_grow(bl, 1);
	for (int fam = 0; r == 0 && fam < 2; fam++) {
		r = load_map(bl, fam, false);
		if (r == 0)
			r = load_map(bl, fam, true);
	}
	if (r == 0)
		r = bl_notes_load(bl);
	bl->allow_used[FAM_V4] = !trie_empty(bl->fd_allow[FAM_V4]);
	bl->allow_used[FAM_V6] = !trie_empty(bl->fd_allow[FAM_V6]);
	/*
	 * Generations go on from the last run's: a flow checked under one of its
	 * generations, idle since, is never taken for checked under a new one.
	 */
	{
		struct zt_prefix_set was;
		uint32_t zero = 0;

		if (bpf_map_lookup_elem(bl->fd_prefixes, &zero, &was) == 0)
			bl->pub_gen = was.gen;
	}
	/* Re-publish from what the maps hold: repairs a set left half-written. */
	if (r == 0)
		r = filter_flush(bl);
	if (r == 0)
		r = publish_prefixes(bl);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the pinned blocklist: %s", strerror(-r));
		zt_blocklist_stop(bl);
		return r;
	}
	*out = bl;
	return 0;
}

void zt_blocklist_stop(struct zt_blocklist *bl)
{
	if (!bl)
		return;
	spare_join(bl);
	slots_free(bl->spare, bl->spare_cap);
	slots_free(bl->tab.slots, bl->tab.cap);
	free(bl->fcount4);
	free(bl->fcount6);
	free(bl->fcount16);
	free(bl->fwords);
	free(bl->fdirty);
	free(bl->fdlist);
	free(bl->fvals);
	bl_notes_free(bl);
	pthread_mutex_destroy(&bl->mu);
	free(bl);
}

static size_t count_held(const struct zt_blocklist *bl, int fam, bool trie)
{
	return trie ? bl->n_trie[fam] : bl->n_fam[fam] - bl->n_trie[fam];
}

static void fill_entry(struct zt_blocklist *bl, const struct zt_block_req *req,
		       struct zt_block_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->expires_ns = req->ttl_ns ? zt_now_boot_ns() + req->ttl_ns : 0;
	e->created_unix = zt_now_unix();
	e->reason = req->reason;
	e->source = req->source;
	e->feed_id = req->feed_id;
	e->note_id = intern_note(bl, req->note);
}

static int import_held(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
		       const struct zt_block_req *req, size_t *added, size_t *replaced, char *err,
		       size_t errlen);

static int add_held(struct zt_blocklist *bl, const struct zt_cidr *c,
		    const struct zt_block_req *req, bool *replaced, char *err, size_t errlen)
{
	size_t added = 0, repl = 0;
	int r;

	r = import_held(bl, c, 1, req, &added, &repl, err, errlen);
	if (r == 0 && replaced)
		*replaced = repl != 0;
	return r;
}

/* Deletes n hash-map keys in batches; ok[i] says whether key i is gone. -errno of a failure. */
static int delete_hashed(int fd, const uint8_t *keys, size_t ks, size_t n, bool *ok)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t done = 0;
	int first = 0;

	while (done < n) {
		__u32 cnt = n - done > BATCH ? BATCH : (__u32)(n - done);
		int r = bpf_map_delete_batch(fd, keys + done * ks, &cnt, &opts);

		for (__u32 i = 0; i < cnt; i++)
			ok[done + i] = true;
		done += cnt;
		if (r == 0)
			continue;
		if (r == -EINVAL || r == -524 /* ENOTSUPP */ || r == -EOPNOTSUPP) {
			/* No batch delete here: one at a time. */
			for (; done < n; done++) {
				ok[done] = bpf_map_delete_elem(fd, keys + done * ks) == 0 ||
					   errno == ENOENT;
				if (!ok[done] && !first)
					first = -errno;
			}
			break;
		}
		/* The batch stopped at key done: absent is as good as deleted. */
		if (done < n) {
			ok[done] = r == -ENOENT;
			if (!ok[done] && !first)
				first = r;
			done++;
		}
	}
	return first;
}

/*
 * Removes n mirrored keys with a constant number of map writes besides the
 * deletes: lengths whose last entry goes are unpublished once, the entries
 * are deleted in batches, the filter words they free are written once and
 * the prefix set is published once. Keys that cannot be deleted stay (in
 * the mirror and published). *removed counts the keys gone; gone[i] (may be
 * NULL) says which.
 */
static int remove_keys(struct zt_blocklist *bl, const struct bl_key *k, size_t n, size_t *removed,
		       bool *gone)
{
	size_t ks[2] = { sizeof(struct zt_ip4_key), sizeof(struct zt_ip6_key) };
	uint8_t *keys[2] = { NULL, NULL };
	size_t *idx[2] = { NULL, NULL }, nh[2] = { 0, 0 };
	bool *ok = calloc(n ? n : 1, sizeof(*ok)), *okh[2] = { NULL, NULL };
	bool unpublish = false;
	int r = 0, e;

	*removed = 0;
	for (int f = 0; f < 2; f++) {
		keys[f] = malloc((n ? n : 1) * ks[f]);
		idx[f] = malloc((n ? n : 1) * sizeof(*idx[f]));
		okh[f] = calloc(n ? n : 1, sizeof(*okh[f]));
	}
	if (!ok || !keys[0] || !keys[1] || !idx[0] || !idx[1] || !okh[0] || !okh[1]) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int f = k[i].fam, l = k[i].plen;

		bl->count[f][l]--;
		bl->n_fam[f]--;
		bl->n_trie[f] -= k[i].in_trie;
		if (!bl->count[f][l] && !k[i].in_trie)
			unpublish = true;
	}
	/* A length goes out of the published set before its last entries go. */
	if (unpublish) {
		r = publish_prefixes(bl);
		if (r < 0)
			goto restore;
	}
	for (size_t i = 0; i < n; i++) {
		int f = k[i].fam;

		if (k[i].in_trie) {
			uint8_t key[sizeof(struct zt_ip6_key)];

			bl_make_key(f, k[i].plen, k[i].addr, key);
			ok[i] = bpf_map_delete_elem(bl->fd_trie[f], key) == 0 || errno == ENOENT;
			if (!ok[i] && !r)
				r = -errno;
			continue;
		}
		bl_make_key(f, k[i].plen, k[i].addr, keys[f] + nh[f] * ks[f]);
		idx[f][nh[f]++] = i;
	}
	for (int f = 0; f < 2; f++) {
		if (!nh[f])
			continue;
		e = delete_hashed(bl->fd_hash[f], keys[f], ks[f], nh[f], okh[f]);
		if (e < 0 && !r)
			r = e;
		for (size_t j = 0; j < nh[f]; j++)
			ok[idx[f][j]] = okh[f][j];
	}
restore:
	for (size_t i = 0; i < n; i++) {
		int f = k[i].fam, l = k[i].plen;

		if (ok[i]) {
			struct bl_slot *s = tab_find(&bl->tab, f, l, k[i].addr);

			if (s)
				tab_remove(&bl->tab, s);
			/* The entry is gone: its buckets may be cleared now. */
			filter_ref(bl, f, l, k[i].addr, -1);
			(*removed)++;
		} else {
			bl->count[f][l]++;
			bl->n_fam[f]++;
			bl->n_trie[f] += k[i].in_trie;
		}
		if (gone)
			gone[i] = ok[i];
	}
	e = filter_flush(bl);
	if (e < 0 && !r)
		r = e;
	/* Lengths, the trie and filter flags as the maps are now. */
	e = publish_prefixes(bl);
	if (e < 0 && !r)
		r = e;
out:
	free(ok);
	for (int f = 0; f < 2; f++) {
		free(keys[f]);
		free(idx[f]);
		free(okh[f]);
	}
	return r;
}

static int del_held(struct zt_blocklist *bl, const struct zt_cidr *c)
{
	struct bl_slot *s = tab_find(&bl->tab, fam_of(c), c->prefixlen, c->addr);
	struct bl_key k = {};
	size_t removed;
	int r;

	if (!s)
		return -ENOENT;
	k.fam = s->fam;
	k.plen = s->plen;
	k.in_trie = s->in_trie;
	memcpy(k.addr, s->addr, sizeof(k.addr));
	r = remove_keys(bl, &k, 1, &removed, NULL);
	return removed ? 0 : r < 0 ? r : -EIO;
}

struct pending {
	struct bl_slot *slot; /* NULL until committed */
	uint32_t idx; /* into the request */
	bool is_new;
};

/* Writes keys/vals to fd in batches; falls back to single updates where batching is not supported. */
static int write_entries(int fd, const void *keys, size_t key_size, const void *vals, size_t n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	size_t done = 0;

	while (done < n) {
		__u32 cnt = n - done > BATCH ? BATCH : n - done;
		int r = bpf_map_update_batch(
			fd, (const uint8_t *)keys + done * key_size,
			(const uint8_t *)vals + done * sizeof(struct zt_block_entry), &cnt, &opts);

		if (r == 0) {
			done += cnt;
			continue;
		}
		if (r != -EINVAL && r != -524 /* ENOTSUPP */ && r != -EOPNOTSUPP)
			return r;
		/* LPM tries have no batch update. */
		for (; done < n; done++)
			if (bpf_map_update_elem(fd, (const uint8_t *)keys + done * key_size,
						(const uint8_t *)vals +
							done * sizeof(struct zt_block_entry),
						BPF_ANY) < 0)
				return -errno;
	}
	return 0;
}

/*
 * A hash-map batch this big is written by two threads, half each: the
 * kernel's cost is per element (a bucket lock taken with interrupts off,
 * an allocation), the buckets lock apart, and on 2 CPUs the second thread
 * halves a 1M feed's time in the kernel (on a loaded machine it also
 * takes a second share of the CPU). Below this a thread costs more than
 * it saves.
 */
#define PAR_MIN 2048

struct par_half {
	int fd;
	const uint8_t *keys, *vals;
	size_t ks, n;
	int r;
};

static void *par_half_main(void *arg)
{
	struct par_half *h = arg;

	h->r = write_entries(h->fd, h->keys, h->ks, h->vals, h->n);
	return NULL;
}

/* write_entries over a hash map, the second half on a thread of its own (see PAR_MIN). */
static int write_hashed(int fd, const void *keys, size_t key_size, const void *vals, size_t n)
{
	size_t m = n / 2;
	struct par_half h = { .fd = fd,
			      .keys = (const uint8_t *)keys + m * key_size,
			      .vals = (const uint8_t *)vals + m * sizeof(struct zt_block_entry),
			      .ks = key_size,
			      .n = n - m };
	pthread_t t;
	int r;

	if (n < PAR_MIN || pthread_create(&t, NULL, par_half_main, &h) != 0)
		return write_entries(fd, keys, key_size, vals, n);
	r = write_entries(fd, keys, key_size, vals, m);
	pthread_join(t, NULL);
	return r < 0 ? r : h.r;
}

static void delete_keys(int fd, const void *keys, size_t key_size, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, (const uint8_t *)keys + i * key_size);
}

/*
 * Writes n entries, each with its own value (ents[i] for cs[i]): new keys
 * first (prefilter bits, then the entries), then their lengths are
 * published. All or nothing. known (may be NULL): the caller's lookup of
 * each cs[i], its slot or NULL when absent, made at the table's present
 * size (the feed path: a lookup into a big mirror is a cache miss, and it
 * was made three times per entry). The slots found or made here are kept
 * for the last pass (the table does not move in between).
 */
static int import_entries(struct zt_blocklist *bl, const struct zt_cidr *cs,
			  const struct zt_block_entry *ents, size_t n, struct bl_slot **known,
			  size_t *added, size_t *replaced, char *err, size_t errlen)
{
	/* Four destinations: (family) x (hash, trie). */
	uint8_t *keys[2][2] = {};
	struct zt_block_entry *vals[2][2] = {};
	size_t nk[2][2] = {}, new_per_fam[2] = {};
	uint8_t *is_new = NULL;
	bool trie_for[2][MAX_PLEN + 1];
	bool new_len[2][MAX_PLEN + 1] = {};
	unsigned int nhashed[2];
	struct bl_slot **sl = NULL;
	size_t cap0 = bl->tab.cap;
	int r = 0;

	*added = *replaced = 0;
	if (!n)
		return 0;
	is_new = calloc(n, 1);
	sl = malloc(n * sizeof(*sl));
	for (int f = 0; f < 2; f++)
		for (int t = 0; t < 2; t++)
			keys[f][t] = malloc(n * (f == FAM_V4 ? sizeof(struct zt_ip4_key) :
							       sizeof(struct zt_ip6_key)));
	if (!is_new || !sl || !keys[0][0] || !keys[0][1] || !keys[1][0] || !keys[1][1]) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory for %zu entries", n);
		goto out;
	}

	/* Decide: new or existing, and where each length goes. */
	r = tab_grow(bl, bl->tab.n + n);
	if (r < 0) {
		snprintf(err, errlen, "out of memory for %zu entries", n);
		goto out;
	}
	if (bl->tab.cap != cap0)
		known = NULL; /* rehashed: the caller's slots moved */
	nhashed[FAM_V4] = hashed_lens(bl, FAM_V4);
	nhashed[FAM_V6] = hashed_lens(bl, FAM_V6);
	for (int f = 0; f < 2; f++)
		for (int l = 0; l <= MAX_PLEN; l++)
			trie_for[f][l] = bl->count[f][l] ? !bl->hashed[f][l] : false;
	for (size_t i = 0; i < n; i++) {
		int f = fam_of(&cs[i]);
		uint8_t l = cs[i].prefixlen;

		if (!bl->count[f][l] && !new_len[f][l]) {
			new_len[f][l] = true;
			trie_for[f][l] = nhashed[f] >= ZT_MAX_HASHED_LENS;
			nhashed[f] += !trie_for[f][l];
		}
		/* Absent ones are looked for again: a duplicate may have been inserted above. */
		sl[i] = known && known[i] ? known[i] : tab_find(&bl->tab, f, l, cs[i].addr);
		if (!sl[i]) {
			/* Mark, so a duplicate in the same request counts once. */
			struct bl_slot *s = tab_insert(&bl->tab, f, l, cs[i].addr);

			s->in_trie = trie_for[f][l];
			is_new[i] = 1;
			new_per_fam[f]++;
			sl[i] = s;
		}
		bl_make_key(f, l, cs[i].addr,
			    keys[f][trie_for[f][l]] +
				    nk[f][trie_for[f][l]] * (f == FAM_V4 ?
								     sizeof(struct zt_ip4_key) :
								     sizeof(struct zt_ip6_key)));
		nk[f][trie_for[f][l]]++;
	}
	/* Values in the order of their keys: a length's place is decided once, above. */
	for (int f = 0; f < 2; f++)
		for (int t = 0; t < 2; t++)
			if (nk[f][t] &&
			    !(vals[f][t] = malloc(nk[f][t] * sizeof(struct zt_block_entry)))) {
				r = -ENOMEM;
				snprintf(err, errlen, "out of memory for %zu entries", n);
				goto rollback_mirror;
			}
	{
		size_t at[2][2] = {};

		for (size_t i = 0; i < n; i++) {
			int f = fam_of(&cs[i]), t = trie_for[f][cs[i].prefixlen];

			vals[f][t][at[f][t]++] = ents[i];
		}
	}
	for (int f = 0; f < 2; f++) {
		if (bl->n_fam[f] + new_per_fam[f] > bl->max_entries[f]) {
			snprintf(
				err, errlen,
				"the IPv%d blocklist would hold %zu entries, its capacity is %u (xdp.blocklist_max); nothing was changed",
				f == FAM_V4 ? 4 : 6, bl->n_fam[f] + new_per_fam[f],
				bl->max_entries[f]);
			r = -ENOSPC;
			goto rollback_mirror;
		}
	}
	/* The prefilter lets the new entries be seen before they exist ... */
	{
		size_t was_short4 = bl->n_short[FAM_V4], was_short6 = bl->n_short[FAM_V6];

		for (size_t i = 0; i < n; i++)
			if (is_new[i])
				filter_ref(bl, fam_of(&cs[i]), cs[i].prefixlen, cs[i].addr, 1);
		r = filter_flush(bl);
		/* A filter goes off before an entry too short for it lands. */
		if (r == 0 &&
		    ((!was_short4 && bl->n_short[FAM_V4]) || (!was_short6 && bl->n_short[FAM_V6])))
			r = publish_prefixes(bl);
		if (r < 0) {
			snprintf(err, errlen, "cannot update %s: %s", ZT_PIN_BLOCK_FILTER,
				 strerror(-r));
			goto rollback_filter;
		}
	}
	/* ... then the entries ... */
	for (int f = 0; f < 2; f++)
		for (int t = 0; t < 2; t++) {
			size_t ks =
				f == FAM_V4 ? sizeof(struct zt_ip4_key) : sizeof(struct zt_ip6_key);

			if (!nk[f][t])
				continue;
			/* Each value keeps its key's length (the XDP trie walk needs it). */
			for (size_t j = 0; j < nk[f][t]; j++)
				memcpy(&vals[f][t][j].prefixlen, keys[f][t] + j * ks,
				       sizeof(uint32_t));
			r = t ? write_entries(bl->fd_trie[f], keys[f][t], ks, vals[f][t],
					      nk[f][t]) :
				write_hashed(bl->fd_hash[f], keys[f][t], ks, vals[f][t], nk[f][t]);
			if (r < 0) {
				snprintf(err, errlen, "cannot write to %s: %s",
					 f == FAM_V4 ? (t ? ZT_PIN_BLOCK_LPM_V4 : ZT_PIN_BLOCK_V4) :
						       (t ? ZT_PIN_BLOCK_LPM_V6 : ZT_PIN_BLOCK_V6),
					 strerror(-r));
				goto rollback_maps;
			}
		}
	/* ... then the lengths that now have entries. */
	for (size_t i = 0; i < n; i++) {
		int f = fam_of(&cs[i]);
		uint8_t l = cs[i].prefixlen;
		struct bl_slot *s = sl[i];

		slot_set_value(&bl->tab, s, &ents[i]);
		note_expiry(bl, ents[i].expires_ns);
		if (!is_new[i]) {
			(*replaced)++;
			continue;
		}
		(*added)++;
		if (!bl->count[f][l])
			bl->hashed[f][l] = !trie_for[f][l];
		bl->count[f][l]++;
		bl->n_fam[f]++;
		bl->n_trie[f] += s->in_trie;
	}
	r = publish_prefixes(bl);
	if (r < 0)
		snprintf(err, errlen, "cannot publish prefix lengths: %s", strerror(-r));
	goto out;

rollback_maps:
	for (size_t i = 0; i < n; i++) {
		int f = fam_of(&cs[i]);
		uint8_t key[sizeof(struct zt_ip6_key)];
		size_t ks = bl_make_key(f, cs[i].prefixlen, cs[i].addr, key);

		if (is_new[i])
			delete_keys(trie_for[f][cs[i].prefixlen] ? bl->fd_trie[f] : bl->fd_hash[f],
				    key, ks, 1);
	}
rollback_filter:
	for (size_t i = 0; i < n; i++)
		if (is_new[i])
			filter_ref(bl, fam_of(&cs[i]), cs[i].prefixlen, cs[i].addr, -1);
	filter_flush(bl);
	publish_prefixes(bl);
rollback_mirror:
	for (size_t i = n; i-- > 0;) {
		if (is_new[i]) {
			struct bl_slot *s =
				tab_find(&bl->tab, fam_of(&cs[i]), cs[i].prefixlen, cs[i].addr);
			if (s)
				tab_remove(&bl->tab, s);
		}
	}
out:
	free(is_new);
	free(sl);
	for (int f = 0; f < 2; f++)
		for (int t = 0; t < 2; t++) {
			free(keys[f][t]);
			free(vals[f][t]);
		}
	return r;
}

static int import_held(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
		       const struct zt_block_req *req, size_t *added, size_t *replaced, char *err,
		       size_t errlen)
{
	struct zt_block_entry e, *ents;
	int r;

	*added = *replaced = 0;
	if (!n)
		return 0;
	ents = malloc(n * sizeof(*ents));
	if (!ents) {
		snprintf(err, errlen, "out of memory for %zu entries", n);
		return -ENOMEM;
	}
	fill_entry(bl, req, &e);
	for (size_t i = 0; i < n; i++)
		ents[i] = e;
	r = import_entries(bl, cs, ents, n, NULL, added, replaced, err, errlen);
	free(ents);
	return r;
}

/* ---- feeds ---- */

static int feed_add_held(struct zt_blocklist *bl, const struct zt_bl_feed_item *items, size_t n,
			 struct zt_bl_feed_counts *c, char *err, size_t errlen)
{
	struct zt_cidr *cs = malloc((n ? n : 1) * sizeof(*cs));
	struct zt_block_entry *ents = malloc((n ? n : 1) * sizeof(*ents));
	struct bl_slot **known = malloc((n ? n : 1) * sizeof(*known));
	uint64_t now = zt_now_unix();
	size_t m = 0, added = 0, replaced = 0;
	int r;

	/* Grown first, so the lookups below stay good for import_entries. */
	if (!cs || !ents || !known || tab_grow(bl, bl->tab.n + n) < 0) {
		free(cs);
		free(ents);
		free(known);
		snprintf(err, errlen, "out of memory for %zu entries", n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct zt_cidr *ci = &items[i].cidr;
		struct bl_slot *s = tab_find(&bl->tab, fam_of(ci), ci->prefixlen, ci->addr);

		if (s && s->source != ZT_BS_FEED) {
			c->kept++;
			continue;
		}
		if (s && s->expires_ns == items[i].expires_ns) {
			c->unchanged++;
			continue;
		}
		cs[m] = *ci;
		known[m] = s;
		memset(&ents[m], 0, sizeof(ents[m]));
		ents[m].expires_ns = items[i].expires_ns;
		ents[m].created_unix = now;
		ents[m].reason = ZT_BR_THREAT_INTEL;
		ents[m].source = ZT_BS_FEED;
		ents[m].feed_id = items[i].feed_id;
		m++;
	}
	r = import_entries(bl, cs, ents, m, known, &added, &replaced, err, errlen);
	if (r == 0) {
		c->added += added;
		c->updated += replaced;
	}
	free(cs);
	free(ents);
	free(known);
	return r;
}

static int feed_del_held(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
			 struct zt_bl_feed_counts *c)
{
	struct bl_key *k = malloc((n ? n : 1) * sizeof(*k));
	size_t m = 0, removed = 0;
	int r;

	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct bl_slot *s =
			tab_find(&bl->tab, fam_of(&cs[i]), cs[i].prefixlen, cs[i].addr);

		if (!s)
			continue;
		if (s->source != ZT_BS_FEED) {
			c->kept++;
			continue;
		}
		memset(&k[m], 0, sizeof(k[m]));
		k[m].fam = s->fam;
		k[m].plen = s->plen;
		k[m].in_trie = s->in_trie;
		memcpy(k[m].addr, s->addr, sizeof(k[m].addr));
		m++;
	}
	r = m ? remove_keys(bl, k, m, &removed, NULL) : 0;
	c->removed += removed;
	free(k);
	return r;
}

static int feed_entries_held(const struct zt_blocklist *bl, struct zt_cidr **out, size_t *n)
{
	size_t m = 0;
	struct zt_cidr *v;

	for (size_t i = 0; i < bl->tab.cap; i++)
		m += bl->tab.slots[i].used && bl->tab.slots[i].source == ZT_BS_FEED;
	v = malloc((m ? m : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m = 0;
	for (size_t i = 0; i < bl->tab.cap; i++) {
		const struct bl_slot *s = &bl->tab.slots[i];
		struct bl_key k = { .fam = s->fam, .plen = s->plen };

		if (!s->used || s->source != ZT_BS_FEED)
			continue;
		memcpy(k.addr, s->addr, sizeof(k.addr));
		bl_key_cidr(&k, &v[m++]);
	}
	*out = v;
	*n = m;
	return 0;
}

static int source_held(const struct zt_blocklist *bl, const struct zt_cidr *c)
{
	const struct bl_slot *s = tab_find(&bl->tab, fam_of(c), c->prefixlen, c->addr);

	return s ? s->source : -ENOENT;
}

void zt_blocklist_set_feed_match(struct zt_blocklist *bl, zt_bl_feed_match_fn fn, void *ctx)
{
	bl->feed_match = fn;
	bl->feed_match_ctx = ctx;
}

/*
 * Expiry works in slices so that a feed expiring at once never holds the
 * loop for long: each call looks at up to EXPIRE_SCAN_SLOTS slots from where
 * the last one stopped, collects up to expire_step expired entries and
 * removes them EXPIRE_SUB at a time (one unpublish, batched deletes, one
 * filter write, one publish each) until EXPIRE_BUDGET_NS has passed.
 * Only entries whose expiry has passed are collected, and nothing else runs
 * between collecting and removing them.
 *
 * A delete moves entries of its cluster to earlier slots, so an expired
 * entry may land behind the sweep: a pass during which entries were
 * removed is followed by another, which also finds the next expiry.
 */
static size_t expire_held(struct zt_blocklist *bl, uint64_t now)
{
	struct bl_table *t = &bl->tab;
	uint64_t t0 = zt_now_mono_ns(), elapsed = 0;
	size_t want = bl->expire_step, n = 0, removed = 0, m = 0, i, end;
	struct bl_key *k = NULL;
	struct zt_cidr *cs = NULL;
	bool *gone = NULL;

	bl->expire_more = false;
	if (!bl->sweep_on) {
		if (now < bl->next_expiry)
			return 0;
		bl->sweep_on = true;
		bl->sweep_pos = 0;
		bl->sweep_cap = t->cap;
		bl->sweep_removals = t->removals;
		bl->sweep_next = UINT64_MAX;
	}
	if (t->cap != bl->sweep_cap) {
		bl->sweep_pos = 0;
		bl->sweep_cap = t->cap;
	}
	k = malloc(want * sizeof(*k));
	gone = calloc(want, sizeof(*gone));
	if (!k || !gone) {
		bl->sweep_on = false; /* next_expiry is unchanged: the next tick tries again */
		goto out;
	}
	end = t->cap - bl->sweep_pos > EXPIRE_SCAN_SLOTS ? bl->sweep_pos + EXPIRE_SCAN_SLOTS :
							   t->cap;
	for (i = bl->sweep_pos; i < end && n < want; i++) {
		const struct bl_slot *s = &t->slots[i];

		/* Looking is part of the slice too: half of it at most. */
		if (!(i & 0xffff) && i > bl->sweep_pos &&
		    zt_now_mono_ns() - t0 >= EXPIRE_BUDGET_NS / 2)
			break;
		if (!s->used || !s->expires_ns)
			continue;
		if (s->expires_ns > now) {
			if (s->expires_ns < bl->sweep_next)
				bl->sweep_next = s->expires_ns;
			continue;
		}
		k[n].fam = s->fam;
		k[n].plen = s->plen;
		k[n].in_trie = s->in_trie;
		memcpy(k[n].addr, s->addr, sizeof(k[n].addr));
		n++;
	}
	bl->sweep_pos = i;
	for (size_t done = 0; done < n;) {
		size_t step = n - done > EXPIRE_SUB ? EXPIRE_SUB : n - done, got;

		remove_keys(bl, k + done, step, &got, gone + done);
		removed += got;
		done += step;
		elapsed = zt_now_mono_ns() - t0;
		if (done < n && elapsed >= EXPIRE_BUDGET_NS) {
			/* Out of time: resume at the first collected entry still there. */
			for (size_t j = done; j < n; j++) {
				const struct bl_slot *s =
					tab_find(t, k[j].fam, k[j].plen, k[j].addr);

				if (s && (size_t)(s - t->slots) < bl->sweep_pos)
					bl->sweep_pos = s - t->slots;
			}
			break;
		}
	}
	/* Entries that could not be deleted stay expired: the next pass tries again. */
	for (size_t j = 0; j < n; j++)
		if (!gone[j] && bl->sweep_next > now)
			bl->sweep_next = now;
	/* As many per call as the budget allows. */
	if (elapsed >= EXPIRE_BUDGET_NS)
		bl->expire_step = removed > EXPIRE_STEP_MIN ? removed : EXPIRE_STEP_MIN;
	else if (n == want && elapsed < EXPIRE_BUDGET_NS / 2 && want < EXPIRE_STEP_MAX)
		bl->expire_step = want * 2;
	if (bl->sweep_pos >= t->cap) {
		bool moved = t->removals != bl->sweep_removals;

		bl->sweep_on = false;
		bl->next_expiry = moved ? now : bl->sweep_next;
		bl->expire_more = moved;
	} else {
		bl->expire_more = true;
	}
	if (!removed)
		goto out;
	cs = malloc(removed * sizeof(*cs));
	if (!cs)
		goto out;
	for (size_t j = 0; j < n; j++)
		if (gone[j])
			bl_key_cidr(&k[j], &cs[m++]);
	bl_audit_cidrs(bl, "block.expire", "ttl", "\"why\":\"ttl\"", cs, m);
out:
	free(k);
	free(gone);
	free(cs);
	return removed;
}

/* ---- allowlist ---- */

static int allow_add_held(struct zt_blocklist *bl, const struct zt_cidr *c, const char *note)
{
	uint8_t key[sizeof(struct zt_ip6_key)];
	struct zt_allow_entry v = { .created_unix = zt_now_unix() };
	int fam = fam_of(c);

	bl_make_key(fam, c->prefixlen, c->addr, key);
	v.note_id = intern_note(bl, note);
	if (bpf_map_update_elem(bl->fd_allow[fam], key, &v, BPF_ANY) < 0)
		return -errno;
	/* Entry first, then the flag that makes the program look. */
	if (!bl->allow_used[fam]) {
		bl->allow_used[fam] = true;
		return publish_prefixes(bl);
	}
	return 0;
}

static int allow_del_held(struct zt_blocklist *bl, const struct zt_cidr *c)
{
	uint8_t key[sizeof(struct zt_ip6_key)];
	int fam = fam_of(c);

	bl_make_key(fam, c->prefixlen, c->addr, key);
	if (bpf_map_delete_elem(bl->fd_allow[fam], key) < 0)
		return -errno;
	if (trie_empty(bl->fd_allow[fam]))
		bl->allow_used[fam] = false;
	/* What it let through may be blocked now: tc_endpoint looks at its flows again. */
	return publish_prefixes(bl);
}

/* ---- drift: the kernel's blocklist maps against the mirror ---- */

/* The object a blocklist repair is about: "blocklist_v4 198.18.0.1/32". */
static void bl_drift_subject(int fam, bool trie, const uint8_t *key, char *subj, size_t n)
{
	char a[INET6_ADDRSTRLEN] = "";
	uint32_t plen;

	memcpy(&plen, key, sizeof(plen));
	inet_ntop(fam == FAM_V4 ? AF_INET : AF_INET6, key + sizeof(uint32_t), a, sizeof(a));
	snprintf(subj, n, "%s %s/%u",
		 trie ? (fam == FAM_V4 ? ZT_PIN_BLOCK_LPM_V4 : ZT_PIN_BLOCK_LPM_V6) :
			(fam == FAM_V4 ? ZT_PIN_BLOCK_V4 : ZT_PIN_BLOCK_V6),
		 a, plen);
}

/* fix (the kind may be repaired) and this entry does not flap. */
static bool bl_may_fix(const struct zt_drift_hooks *h, bool fix, int fam, bool trie,
		       const uint8_t *key)
{
	char subj[96];

	if (!fix || !h->may_obj)
		return fix;
	bl_drift_subject(fam, trie, key, subj, sizeof(subj));
	return h->may_obj(h->ctx, "blocklist", subj);
}

static void bl_drift_report(const struct zt_drift_hooks *h, int fam, bool trie, const uint8_t *key,
			    const char *what, bool fixed, int err)
{
	char subj[96];

	bl_drift_subject(fam, trie, key, subj, sizeof(subj));
	h->report(h->ctx, "blocklist", subj, what, fixed, err);
}

/* The entry as the agent wrote it: reason, note, source, feed, expiry, creation time. */
static void bl_restore_entry(const struct bl_slot *s, struct zt_block_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->expires_ns = s->expires_ns;
	e->created_unix = s->created_unix;
	e->source = s->source;
	e->reason = s->reason;
	e->feed_id = s->feed_id;
	e->note_id = s->note_id;
	e->prefixlen = s->plen;
}

/* Does a kernel value say what the mirror says? (A trie entry also carries its length.) */
static bool bl_value_same(const struct bl_slot *s, const struct zt_block_entry *v, bool trie,
			  uint32_t plen)
{
	return v->expires_ns == s->expires_ns && v->source == s->source && v->reason == s->reason &&
	       v->created_unix == s->created_unix && v->feed_id == s->feed_id &&
	       v->note_id == s->note_id && (!trie || v->prefixlen == plen);
}

/* What an entry holds, for the log and the audit trail. */
static void bl_value_text(struct zt_blocklist *bl, const struct zt_block_entry *v, char *buf,
			  size_t n)
{
	char note[ZT_NOTE_LEN];

	bl_note_text(bl, v->note_id, note, sizeof(note));
	snprintf(buf, n,
		 "kind=%s source=%s feed_id=%u reason=\"%s\" expires_ns=%llu created_unix=%llu",
		 zt_block_reason_name(v->reason), zt_block_source_name(v->source), v->feed_id, note,
		 (unsigned long long)v->expires_ns, (unsigned long long)v->created_unix);
}

/* One kernel entry against the mirror; val NULL: look it up. 1 when it was deleted (an extra). */
static int bl_check_one(struct zt_blocklist *bl, int fd, int fam, bool trie, const uint8_t *key,
			const struct zt_block_entry *val, bool fix, const struct zt_drift_hooks *h,
			size_t *seen)
{
	const struct bl_slot *s;
	struct zt_block_entry v;
	uint32_t plen;
	int r = 0;

	memcpy(&plen, key, sizeof(plen));
	s = plen <= (fam == FAM_V4 ? 32u : 128u) ?
		    tab_find(&bl->tab, fam, (uint8_t)plen, key + sizeof(uint32_t)) :
		    NULL;
	if (!s || s->in_trie != trie) {
		/*
		 * A key read earlier (the drift scan's worker) that the agent
		 * released since (a feed swap's deletes): gone from both sides,
		 * nothing differs. Looked up again, and a delete that finds it
		 * gone is no failure. (Only hash keys: a trie answers a
		 * lookup for a covering prefix too.)
		 */
		if (!val && !trie && bpf_map_lookup_elem(fd, key, &v) < 0 && errno == ENOENT)
			return 0;
		fix = bl_may_fix(h, fix, fam, trie, key);
		if (fix && bpf_map_delete_elem(fd, key) < 0) {
			if (errno == ENOENT)
				return 0;
			r = -errno;
		}
		bl_drift_report(h, fam, trie, key, "entry added outside the agent", fix && r == 0,
				r);
		return fix && r == 0;
	}
	(*seen)++;
	if (val)
		v = *val;
	else if (bpf_map_lookup_elem(fd, key, &v) < 0)
		return 0;
	if (!bl_value_same(s, &v, trie, plen)) {
		char what[512], was[224], want[224];

		bl_value_text(bl, &v, was, sizeof(was));
		bl_restore_entry(s, &v);
		bl_value_text(bl, &v, want, sizeof(want));
		snprintf(what, sizeof(what), "entry changed: %s; put back: %s", was, want);
		fix = bl_may_fix(h, fix, fam, trie, key);
		if (fix && bpf_map_update_elem(fd, key, &v, BPF_EXIST) < 0)
			r = -errno;
		else if (fix)
			bl->put_back = true; /* it may block again (drift_published) */
		bl_drift_report(h, fam, trie, key, what, fix && r == 0, r);
	}
	return 0;
}

/* A mirrored entry against the kernel: put back when missing. */
static void bl_check_present(struct zt_blocklist *bl, int fd, const struct bl_slot *s, bool fix,
			     const struct zt_drift_hooks *h)
{
	uint8_t key[sizeof(struct zt_ip6_key)];
	struct zt_block_entry v;
	char what[320], want[224];
	int r = 0;

	bl_make_key(s->fam, s->plen, s->addr, key);
	/* A trie answers for a covering prefix too: its length says whose. */
	if (bpf_map_lookup_elem(fd, key, &v) == 0 && (!s->in_trie || v.prefixlen == s->plen))
		return;
	bl_restore_entry(s, &v);
	fix = bl_may_fix(h, fix, s->fam, s->in_trie, key);
	if (fix && bpf_map_update_elem(fd, key, &v, BPF_ANY) < 0)
		r = -errno;
	else if (fix)
		bl->put_back = true; /* it blocks again (drift_published) */
	bl_value_text(bl, &v, want, sizeof(want));
	snprintf(what, sizeof(what), "entry deleted outside the agent; put back: %s", want);
	bl_drift_report(h, s->fam, s->in_trie, key, what, fix && r == 0, r);
}

/*
 * One key another process just wrote (the drift watch saw the syscall):
 * whatever the kernel and the mirror hold for it, made the mirror's. Loop
 * thread.
 */
static void drift_check_key_held(struct zt_blocklist *bl, int fam, bool trie, const uint8_t *key,
				 const struct zt_drift_hooks *h)
{
	bool fix = !h->may || h->may(h->ctx, "blocklist");
	int fd = bl_entry_fd(bl, fam, trie);
	const struct bl_slot *s;
	struct zt_block_entry v;
	size_t seen = 0;
	uint32_t plen;

	memcpy(&plen, key, sizeof(plen));
	/* A trie answers for a covering prefix too: only its own length makes it this key's. */
	if (bpf_map_lookup_elem(fd, key, &v) == 0 && (!trie || v.prefixlen == plen)) {
		bl_check_one(bl, fd, fam, trie, key, &v, fix, h, &seen);
		return;
	}
	s = plen <= (fam == FAM_V4 ? 32u : 128u) ?
		    tab_find(&bl->tab, fam, (uint8_t)plen, key + sizeof(uint32_t)) :
		    NULL;
	if (s && (bool)s->in_trie == trie)
		bl_check_present(bl, fd, s, fix, h);
}

/*
 * A hash map's next slice in one syscall (a batch lookup; its token is the
 * cursor). 1 the pass is complete, 0 more to come, -errno without batches.
 */
static int bl_drift_batch(struct zt_blocklist *bl, struct zt_bl_drift_cursor *cur, int m,
			  size_t budget, bool fix, const struct zt_drift_hooks *h)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int fam = m & 1, fd = bl_entry_fd(bl, fam, false);
	size_t ks = fam == FAM_V4 ? sizeof(struct zt_ip4_key) : sizeof(struct zt_ip6_key);
	uint8_t *keys = malloc(budget * ks);
	struct zt_block_entry *vals = malloc(budget * sizeof(*vals));
	uint64_t out = 0;
	__u32 cnt = (__u32)budget;
	int r;

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	r = bpf_map_lookup_batch(fd, cur->mid[m] ? &cur->token[m] : NULL, &out, keys, vals, &cnt,
				 &opts);
	if (r < 0 && r != -ENOENT) {
		free(keys);
		free(vals);
		return r;
	}
	for (__u32 i = 0; i < cnt; i++)
		bl_check_one(bl, fd, fam, false, keys + i * ks, &vals[i], fix, h, &cur->seen[m]);
	free(keys);
	free(vals);
	if (r == -ENOENT)
		return 1;
	cur->token[m] = out;
	cur->mid[m] = true;
	return 0;
}

static void drift_check_held(struct zt_blocklist *bl, struct zt_bl_drift_cursor *cur, size_t budget,
			     const struct zt_drift_hooks *h)
{
	bool fix = !h->may || h->may(h->ctx, "blocklist");

	for (int m = 0; m < 4; m++) {
		int fam = m & 1;
		bool trie = m >= 2;
		int fd = bl_entry_fd(bl, fam, trie);
		size_t ks = fam == FAM_V4 ? sizeof(struct zt_ip4_key) : sizeof(struct zt_ip6_key);
		uint8_t next[sizeof(struct zt_ip6_key)];
		size_t walked = 0;
		int b = -EINVAL;

		/*
		 * Not both: a delete repaired by the scan while a walk passes
		 * would make the walk look up every mirrored key at its end.
		 */
		if (!trie && cur->skip_hash) {
			cur->mid[m] = false;
			continue;
		}
		if (!cur->mid[m]) {
			cur->start_n[m] = count_held(bl, fam, trie);
			cur->start_removals[m] = bl->tab.removals;
			cur->seen[m] = 0;
		}
		if (!trie && !cur->no_batch) {
			/* Hash maps: a syscall a slice, not two a key (~200 ms a tick for 16k keys here). */
			b = bl_drift_batch(bl, cur, m, budget, fix, h);
			if (b == 0)
				continue;
			if (b < 0 && b != -ENOMEM)
				cur->no_batch = true;
		}
		while (b < 0 && walked < budget &&
		       bpf_map_get_next_key(fd, cur->mid[m] ? cur->key[m] : NULL, next) == 0) {
			walked++;
			memcpy(cur->key[m], next, ks);
			cur->mid[m] = true;
			if (bl_check_one(bl, fd, fam, trie, next, NULL, fix, h, &cur->seen[m]))
				cur->mid[m] = false,
				cur->seen[m] = 0; /* the walk's place is gone */
		}
		if (b < 0 && walked == budget)
			continue; /* the pass goes on next time */
		/*
		 * A pass is complete: fewer keys than the mirror holds means some
		 * were deleted, unless the agent itself changed the map meanwhile
		 * (then the next pass tells).
		 */
		if (cur->seen[m] < count_held(bl, fam, trie) &&
		    cur->start_n[m] == count_held(bl, fam, trie) &&
		    cur->start_removals[m] == bl->tab.removals) {
			for (size_t i = 0; i < bl->tab.cap; i++) {
				const struct bl_slot *s = &bl->tab.slots[i];

				if (s->used && s->fam == fam && (bool)s->in_trie == trie)
					bl_check_present(bl, fd, s, fix, h);
			}
		}
		cur->mid[m] = false;
		cur->seen[m] = 0;
	}
}

/*
 * ---- drift: checksums of the hash maps ----
 *
 * A change made with bpftool in a big hash map must be found within a
 * second, and the only way to see a value change is to read every entry:
 * a batch lookup reads a million entries in ~200 ms of CPU here (the kernel
 * won't load a map-iterator program on this platform, which would checksum
 * in place). So a worker thread reads the whole map without touching the
 * mirror (zt_blocklist_scan_run): per bucket of the mirror's key hash, a
 * count and a sum of per-entry hashes over what drift compares (key,
 * expires_ns, source), and every key with its bucket. The loop thread then
 * sums the mirror the same way (zt_blocklist_scan_compare) and, for the
 * buckets that differ only, looks each of their keys up on both sides and
 * repairs. The agent's own changes during a read make a bucket differ
 * too; the look-ups on the loop thread are the judge, so that costs time,
 * not a false repair.
 */
struct zt_bl_scan {
	int fam;
	int fd; /* the worker's own descriptor of the map */
	uint64_t sums[BL_SCAN_BUCKETS];
	uint32_t counts[BL_SCAN_BUCKETS];
	uint8_t *keys; /* every key read */
	uint16_t *bucket; /* and its bucket */
	size_t n, cap;
	uint8_t *kbuf;
	struct zt_block_entry *vbuf;
	int err; /* the read's -errno, 0 */
	uint64_t read_ns; /* how long the read took */
	uint64_t read_cpu_ns; /* and its CPU time */
};

#define BL_SCAN_BATCH 16384

static size_t bl_key_size(int fam)
{
	return fam == FAM_V4 ? sizeof(struct zt_ip4_key) : sizeof(struct zt_ip6_key);
}

int zt_blocklist_scan_new(struct zt_blocklist *bl, int fam, struct zt_bl_scan **out)
{
	struct zt_bl_scan *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->fam = fam;
	s->kbuf = malloc(BL_SCAN_BATCH * bl_key_size(fam));
	s->vbuf = malloc(BL_SCAN_BATCH * sizeof(*s->vbuf));
	s->fd = fcntl(bl_entry_fd(bl, fam, false), F_DUPFD_CLOEXEC, 0);
	if (!s->kbuf || !s->vbuf || s->fd < 0) {
		int r = s->fd < 0 ? -errno : -ENOMEM;

		zt_blocklist_scan_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void zt_blocklist_scan_free(struct zt_bl_scan *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->keys);
	free(s->bucket);
	free(s->kbuf);
	free(s->vbuf);
	free(s);
}

uint64_t zt_blocklist_scan_ns(const struct zt_bl_scan *s)
{
	return s->read_ns;
}

uint64_t zt_blocklist_scan_cpu_ns(const struct zt_bl_scan *s)
{
	return s->read_cpu_ns;
}

static uint64_t bl_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Any thread: the map alone, never the mirror. */
int zt_blocklist_scan_run(struct zt_bl_scan *s)
{
	size_t ks = bl_key_size(s->fam);
	uint64_t t0 = zt_now_mono_ns(), c0 = bl_thread_cpu_ns(), token = 0;
	bool first = true;
	int r;

	memset(s->sums, 0, sizeof(s->sums));
	memset(s->counts, 0, sizeof(s->counts));
	s->n = 0;
	do {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 cnt = BL_SCAN_BATCH;
		uint64_t out = 0;

		r = bpf_map_lookup_batch(s->fd, first ? NULL : &token, &out, s->kbuf, s->vbuf, &cnt,
					 &opts);
		if (r < 0 && r != -ENOENT)
			break;
		if (s->n + cnt > s->cap) {
			size_t nc = s->cap ? s->cap : 65536;
			uint8_t *nk;
			uint16_t *nb;

			while (nc < s->n + cnt)
				nc *= 2;
			nk = realloc(s->keys, nc * ks);
			if (nk)
				s->keys = nk;
			nb = realloc(s->bucket, nc * sizeof(*nb));
			if (nb)
				s->bucket = nb;
			if (!nk || !nb) {
				r = -ENOMEM;
				break;
			}
			s->cap = nc;
		}
		for (__u32 i = 0; i < cnt; i++) {
			const uint8_t *k = s->kbuf + i * ks;
			uint32_t plen;
			uint64_t kh;
			unsigned int b;

			memcpy(&plen, k, sizeof(plen));
			kh = slot_hash(s->fam, (uint8_t)plen, k + sizeof(uint32_t));
			b = (unsigned int)(kh >> (64 - BL_SCAN_BUCKET_BITS));
			s->sums[b] +=
				bl_scan_item(kh ^ plen, s->vbuf[i].expires_ns, s->vbuf[i].source,
					     s->vbuf[i].reason, s->vbuf[i].created_unix,
					     s->vbuf[i].feed_id, s->vbuf[i].note_id);
			s->counts[b]++;
			memcpy(s->keys + s->n * ks, k, ks);
			s->bucket[s->n++] = (uint16_t)b;
		}
		token = out;
		first = false;
	} while (r == 0);
	s->err = r == -ENOENT ? 0 : r;
	s->read_ns = zt_now_mono_ns() - t0;
	s->read_cpu_ns = bl_thread_cpu_ns() - c0;
	return s->err;
}

/*
 * Loop thread: the mirror's sums against the scan's, then every key of a
 * bucket that differs, both ways. At most budget look-ups (the rest waits
 * for the next scan, which finds them again). Returns the buckets that
 * differed, or -errno of the scan.
 */
static int scan_compare_held(struct zt_blocklist *bl, const struct zt_bl_scan *s, size_t budget,
			     const struct zt_drift_hooks *h)
{
	const uint64_t *msum = bl->tab.sums[s->fam];
	const uint32_t *mcnt = bl->tab.counts[s->fam];
	uint64_t diff[BL_SCAN_BUCKETS / 64] = { 0 };
	bool fix = !h->may || h->may(h->ctx, "blocklist");
	int fd = bl_entry_fd(bl, s->fam, false), nd = 0;
	size_t ks = bl_key_size(s->fam), done = 0, seen = 0;

	if (s->err)
		return s->err;
	/* The mirror's sums are kept as it changes (slot_sum): no walk of the table here. */
	for (unsigned int b = 0; b < BL_SCAN_BUCKETS; b++)
		if (msum[b] != s->sums[b] || mcnt[b] != s->counts[b]) {
			diff[b / 64] |= 1ULL << (b % 64);
			nd++;
		}
	if (!nd)
		return 0;
	/* Entries the kernel has: added outside (deleted) or changed (written back). */
	for (size_t i = 0; i < s->n && done < budget; i++) {
		unsigned int b = s->bucket[i];

		if (!(diff[b / 64] & (1ULL << (b % 64))))
			continue;
		done++;
		bl_check_one(bl, fd, s->fam, false, s->keys + i * ks, NULL, fix, h, &seen);
	}
	/*
	 * Entries the mirror has: deleted outside (put back). A slot's home is
	 * the top bits of the same hash, so a bucket's entries sit from its
	 * first home on, up to the first empty slot past its last home.
	 */
	for (unsigned int b = 0; b < BL_SCAN_BUCKETS && done < budget; b++) {
		const struct bl_table *t = &bl->tab;
		size_t span = t->cap >= BL_SCAN_BUCKETS ? t->cap / BL_SCAN_BUCKETS : 1;
		size_t i = t->cap >= BL_SCAN_BUCKETS ? b * span : 0, end = i + span;

		if (!(diff[b / 64] & (1ULL << (b % 64))) || !t->cap)
			continue;
		if (t->cap < BL_SCAN_BUCKETS)
			end = t->cap; /* a small table: all of it */
		for (size_t k = 0; k < t->cap && (i < end || t->slots[i & (t->cap - 1)].used);
		     k++, i++) {
			const struct bl_slot *sl = &t->slots[i & (t->cap - 1)];

			if (!sl->used || sl->fam != s->fam || sl->in_trie ||
			    (slot_hash(sl->fam, sl->plen, sl->addr) >>
			     (64 - BL_SCAN_BUCKET_BITS)) != b)
				continue;
			done++;
			bl_check_present(bl, fd, sl, fix, h);
		}
	}
	return nd;
}

/*
 * ---- the entry points: each holds bl->mu for its whole call ----
 *
 * Detector blocks are written on the thread that decides them (the ring
 * buffer's consumer), while the loop thread serves the API, feeds, expiry
 * and drift: the mirror, the prefilter counts, the notes and the published
 * prefix set change together under one lock, so a block lands whole (entry
 * before its length is published, mirror equal to the maps) whichever
 * thread writes it and whatever the loop is doing, and waits at most for
 * one call of another thread into the blocklist (an expiry slice, a feed
 * chunk), never for unrelated loop work: a detector block takes the lock
 * ahead of the other threads' next calls (bl_lock_urgent).
 */

int zt_blocklist_reserve(struct zt_blocklist *bl, size_t more)
{
	int r;

	bl_lock(bl);
	r = reserve_held(bl, more);
	bl_unlock(bl);
	return r;
}

ssize_t bl_list_page(const struct zt_blocklist *bl, const struct bl_pos *after, struct bl_pos *out,
		     size_t limit, bool *more)
{
	ssize_t r;

	bl_lock(bl);
	r = list_page_held(bl, after, out, limit, more);
	bl_unlock(bl);
	return r;
}

size_t bl_total(const struct zt_blocklist *bl)
{
	size_t n;

	bl_lock(bl);
	n = bl->tab.n;
	bl_unlock(bl);
	return n;
}

size_t zt_blocklist_count(const struct zt_blocklist *bl, int fam, bool trie)
{
	size_t n;

	bl_lock(bl);
	n = count_held(bl, fam, trie);
	bl_unlock(bl);
	return n;
}

int zt_blocklist_add(struct zt_blocklist *bl, const struct zt_cidr *c,
		     const struct zt_block_req *req, bool *replaced, char *err, size_t errlen)
{
	int r;

	if (req->source == ZT_BS_DETECTOR)
		bl_lock_urgent(bl);
	else
		bl_lock(bl);
	r = add_held(bl, c, req, replaced, err, errlen);
	bl_unlock(bl);
	return r;
}

int zt_blocklist_del(struct zt_blocklist *bl, const struct zt_cidr *c)
{
	int r;

	bl_lock(bl);
	r = del_held(bl, c);
	bl_unlock(bl);
	return r;
}

int zt_blocklist_import(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
			const struct zt_block_req *req, size_t *added, size_t *replaced, char *err,
			size_t errlen)
{
	int r;

	bl_lock(bl);
	r = import_held(bl, cs, n, req, added, replaced, err, errlen);
	bl_unlock(bl);
	return r;
}

int zt_blocklist_feed_add(struct zt_blocklist *bl, const struct zt_bl_feed_item *items, size_t n,
			  struct zt_bl_feed_counts *c, char *err, size_t errlen)
{
	int r;

	bl_lock(bl);
	r = feed_add_held(bl, items, n, c, err, errlen);
	bl_unlock(bl);
	return r;
}

int zt_blocklist_feed_del(struct zt_blocklist *bl, const struct zt_cidr *cs, size_t n,
			  struct zt_bl_feed_counts *c)
{
	int r;

	bl_lock(bl);
	r = feed_del_held(bl, cs, n, c);
	bl_unlock(bl);
	return r;
}

int zt_blocklist_feed_entries(const struct zt_blocklist *bl, struct zt_cidr **out, size_t *n)
{
	int r;

	bl_lock(bl);
	r = feed_entries_held(bl, out, n);
	bl_unlock(bl);
	return r;
}

int zt_blocklist_source(const struct zt_blocklist *bl, const struct zt_cidr *c)
{
	int r;

	bl_lock(bl);
	r = source_held(bl, c);
	bl_unlock(bl);
	return r;
}

size_t zt_blocklist_expire(struct zt_blocklist *bl, uint64_t now_boot_ns)
{
	size_t n;

	bl_lock(bl);
	n = expire_held(bl, now_boot_ns);
	bl_unlock(bl);
	return n;
}

bool zt_blocklist_expire_pending(const struct zt_blocklist *bl)
{
	bool more;

	bl_lock(bl);
	more = bl->expire_more;
	bl_unlock(bl);
	return more;
}

int zt_allowlist_add(struct zt_blocklist *bl, const struct zt_cidr *c, const char *note)
{
	int r;

	bl_lock(bl);
	r = allow_add_held(bl, c, note);
	bl_unlock(bl);
	return r;
}

int zt_allowlist_del(struct zt_blocklist *bl, const struct zt_cidr *c)
{
	int r;

	bl_lock(bl);
	r = allow_del_held(bl, c);
	bl_unlock(bl);
	return r;
}

/*
 * After a drift pass: entries it wrote back may block flows again, so the
 * prefix set is published once (a new generation: tc_endpoint looks at its
 * flows again), not once per entry of a mass repair.
 */
static void drift_published(struct zt_blocklist *bl)
{
	if (!bl->put_back)
		return;
	bl->put_back = false;
	publish_prefixes(bl);
}

void zt_blocklist_drift_check_key(struct zt_blocklist *bl, int fam, bool trie, const uint8_t *key,
				  const struct zt_drift_hooks *h)
{
	bl_lock(bl);
	drift_check_key_held(bl, fam, trie, key, h);
	drift_published(bl);
	bl_unlock(bl);
}

void zt_blocklist_drift_check(struct zt_blocklist *bl, struct zt_bl_drift_cursor *cur,
			      size_t budget, const struct zt_drift_hooks *h)
{
	bl_lock(bl);
	drift_check_held(bl, cur, budget, h);
	drift_published(bl);
	bl_unlock(bl);
}

int zt_blocklist_scan_compare(struct zt_blocklist *bl, const struct zt_bl_scan *s, size_t budget,
			      const struct zt_drift_hooks *h)
{
	int r;

	bl_lock(bl);
	r = scan_compare_held(bl, s, budget, h);
	drift_published(bl);
	bl_unlock(bl);
	return r;
}
