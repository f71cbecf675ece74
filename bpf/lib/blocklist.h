/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Source-address block and allow lists (see include/ztagent.h for the flat
 * layout and why): the allowlist trie first (it wins) when it has entries,
 * then the prefilter bits (all clear: nothing can match, pass), then one
 * hashed lookup per published prefix length, longest first, then the
 * blocklist trie only when the daemon says it holds entries. An expired
 * entry does not block; shorter lengths are still looked at, in the hashed
 * maps (the next published length) and in the trie (a lookup again, below
 * the expired match's own length).
 */
#ifndef ZT_BPF_BLOCKLIST_H
#define ZT_BPF_BLOCKLIST_H

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ztagent.h"
#include "lib/parse.h"

/* Sizes are placeholders: the daemon sets them before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip4_key);
	__type(value, struct zt_block_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip6_key);
	__type(value, struct zt_block_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip4_key);
	__type(value, struct zt_block_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist_lpm_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip6_key);
	__type(value, struct zt_block_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist_lpm_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_prefix_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ZT_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocklist_filter SEC(".maps");

/* 1 when the prefilter says no blocklist entry can match in this bucket. */
static __always_inline int zt_filter_clear(__u32 word, __u32 bucket)
{
	__u64 *w = bpf_map_lookup_elem(&blocklist_filter, &word);

	return w && !(*w & (1ULL << (bucket & 63)));
}

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip4_key);
	__type(value, struct zt_allow_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} allowlist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct zt_ip6_key);
	__type(value, struct zt_allow_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} allowlist_v6 SEC(".maps");

/*
 * Free-text notes for entries. Only the daemon reads and writes it; it is
 * here so that loading the program creates and pins it (libbpf creates
 * every map in .maps, referenced or not).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct zt_note);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} block_notes SEC(".maps");

enum {
	ZT_BL_MISS = 0,
	ZT_BL_BLOCK,
	ZT_BL_EXPIRED,
};

/* Network-order mask of the first `bits` bits of a 32-bit word (any int). */
static __always_inline __u32 zt_mask32(__s32 bits)
{
	if (bits >= 32)
		return 0xffffffff;
	if (bits <= 0)
		return 0;
	return bpf_htonl(0xffffffffu << (32 - bits));
}

/* The clock is read only when an entry with an expiry matched, once. */
static __always_inline int zt_block_entry_check(struct zt_block_entry *e, __u64 *now,
						struct zt_block_entry **hit)
{
	if (!e)
		return ZT_BL_MISS;
	if (e->expires_ns) {
		if (!*now)
			*now = bpf_ktime_get_boot_ns();
		if (e->expires_ns <= *now)
			return ZT_BL_EXPIRED;
	}
	*hit = e;
	return ZT_BL_BLOCK;
}

/*
 * The trie answers with its longest match only. When that match has
 * expired, a shorter live entry may still cover the address: look again
 * with the key's length just below the expired entry's own (kept in the
 * entry, since a lookup does not return the key). Every round is strictly
 * shorter, so bits + 1 rounds cover every length. key_plen is the
 * prefixlen field of key, which holds the full address.
 */
static __always_inline int zt_blocklist_trie(void *trie, void *key, __u32 *key_plen, __u32 bits,
					     __u64 *now, struct zt_block_entry **hit)
{
	int expired = 0;
	__u32 i;

	*key_plen = bits;
	for (i = 0; i <= bits; i++) {
		struct zt_block_entry *e = bpf_map_lookup_elem(trie, key);
		__u32 len;

		if (!e)
			break;
		if (zt_block_entry_check(e, now, hit) == ZT_BL_BLOCK)
			return ZT_BL_BLOCK;
		expired = 1;
		len = e->prefixlen;
		/* 0: a /0 (nothing is shorter), or an entry older than the field. */
		if (len == 0 || len > *key_plen)
			break;
		*key_plen = len - 1;
	}
	return expired ? ZT_BL_EXPIRED : ZT_BL_MISS;
}

static __always_inline int zt_blocklist_v4(__u32 saddr, const struct zt_prefix_set *ps,
					   struct zt_block_entry **hit)
{
	struct zt_ip4_key k = { .prefixlen = 32 };
	int expired = 0, r;
	__u64 now = 0;
	__u32 i, n;

	__builtin_memcpy(k.addr, &saddr, 4);
	if (ps->allow_v4_used && bpf_map_lookup_elem(&allowlist_v4, &k))
		return ZT_XR_ALLOWLIST;
	/*
	 * The two filter parts answer separately: a clear /24 bit rules out
	 * every entry of /17 and longer, a clear /16 bit every entry from /8 to
	 * /16 (shorter ones switch the filter off). Only lengths that may match
	 * are looked up.
	 */
	int may24 = 1, may16 = 1;

	if (ps->filter_v4_on) {
		__u32 b = zt_filter_v4_bucket((const __u8 *)&saddr);
		__u32 c = zt_filter_v16_bucket((const __u8 *)&saddr);

		may24 = !zt_filter_clear(b >> 6, b);
		may16 = !zt_filter_clear(ZT_FILTER_V16_BASE + (c >> 6), c);
		if (!may24 && !may16)
			return ZT_XR_OK;
	}
	n = ps->v4_count;
	for (i = 0; i < ZT_MAX_HASHED_LENS; i++) {
		__u32 a;

		if (i >= n)
			break;
		k.prefixlen = ps->v4_lens[i];
		if (k.prefixlen >= ZT_FILTER_V4_SPLIT ? !may24 : !may16)
			continue;
		a = saddr & zt_mask32(k.prefixlen);
		__builtin_memcpy(k.addr, &a, 4);
		r = zt_block_entry_check(bpf_map_lookup_elem(&blocklist_v4, &k), &now, hit);
		if (r == ZT_BL_BLOCK)
			return ZT_XR_BLOCKLIST;
		expired |= r;
	}
	if (ps->v4_lpm_used) {
		__builtin_memcpy(k.addr, &saddr, 4);
		r = zt_blocklist_trie(&blocklist_lpm_v4, &k, &k.prefixlen, 32, &now, hit);
		if (r == ZT_BL_BLOCK)
			return ZT_XR_BLOCKLIST;
		expired |= r;
	}
	return expired ? ZT_XR_BLOCK_EXPIRED : ZT_XR_OK;
}

static __always_inline int zt_blocklist_v6(const __u32 *saddr, const struct zt_prefix_set *ps,
					   struct zt_block_entry **hit)
{
	struct zt_ip6_key k = { .prefixlen = 128 };
	int expired = 0, r;
	__u64 now = 0;
	__u32 i, n;

	__builtin_memcpy(k.addr, saddr, 16);
	if (ps->allow_v6_used && bpf_map_lookup_elem(&allowlist_v6, &k))
		return ZT_XR_ALLOWLIST;
	if (ps->filter_v6_on) {
		__u32 b = zt_filter_v6_bucket((const __u8 *)saddr);

		if (zt_filter_clear(ZT_FILTER_V6_BASE + (b >> 6), b))
			return ZT_XR_OK;
	}
	n = ps->v6_count;
	for (i = 0; i < ZT_MAX_HASHED_LENS; i++) {
		__u32 a[4];
		__s32 len;

		if (i >= n)
			break;
		len = ps->v6_lens[i];
		k.prefixlen = len;
		a[0] = saddr[0] & zt_mask32(len);
		a[1] = saddr[1] & zt_mask32(len - 32);
		a[2] = saddr[2] & zt_mask32(len - 64);
		a[3] = saddr[3] & zt_mask32(len - 96);
		__builtin_memcpy(k.addr, a, 16);
		r = zt_block_entry_check(bpf_map_lookup_elem(&blocklist_v6, &k), &now, hit);
		if (r == ZT_BL_BLOCK)
			return ZT_XR_BLOCKLIST;
		expired |= r;
	}
	if (ps->v6_lpm_used) {
		__builtin_memcpy(k.addr, saddr, 16);
		r = zt_blocklist_trie(&blocklist_lpm_v6, &k, &k.prefixlen, 128, &now, hit);
		if (r == ZT_BL_BLOCK)
			return ZT_XR_BLOCKLIST;
		expired |= r;
	}
	return expired ? ZT_XR_BLOCK_EXPIRED : ZT_XR_OK;
}

/* The same for one address (family 4 or 6) under the published set ps. */
static __always_inline int zt_blocklist_addr(__u8 family, const __u32 *addr,
					     const struct zt_prefix_set *ps,
					     struct zt_block_entry **hit)
{
	if (family == 4)
		return zt_blocklist_v4(addr[0], ps, hit);
	return zt_blocklist_v6(addr, ps, hit);
}

/*
 * For a parsed IP packet: ZT_XR_ALLOWLIST, ZT_XR_BLOCKLIST (*hit is the
 * entry), ZT_XR_BLOCK_EXPIRED or ZT_XR_OK.
 */
static __always_inline int zt_blocklist_check(const struct zt_pkt *p, struct zt_block_entry **hit)
{
	__u32 zero = 0;
	struct zt_prefix_set *ps = bpf_map_lookup_elem(&blocklist_prefixes, &zero);

	if (!ps)
		return ZT_XR_OK;
	return zt_blocklist_addr(p->family, p->saddr, ps, hit);
}

#endif /* ZT_BPF_BLOCKLIST_H */
