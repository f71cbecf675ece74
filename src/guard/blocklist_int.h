/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The blocklist's own state, shared by blocklist.c (the mirror, the kernel
 * maps, expiry) and blocklist_api.c (the API operations). Not for use
 * outside src/guard/.
 */
#ifndef ZT_BLOCKLIST_INT_H
#define ZT_BLOCKLIST_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "guard/blocklist.h"

#define FAM_V4 0
#define FAM_V6 1
#define MAX_PLEN 128
#define BATCH 65536

/* One mirrored blocklist key. */
struct bl_slot {
	uint8_t used;
	uint8_t fam;
	uint8_t plen;
	uint8_t in_trie;
	uint32_t _pad;
	uint64_t expires_ns;
	uint8_t addr[16];
};

struct bl_table {
	struct bl_slot *slots;
	size_t cap; /* power of two */
	size_t n;
};

struct zt_blocklist {
	struct zt_datapath *dp;
	zt_bl_audit_fn audit;
	void *audit_ctx;
	int fd_hash[2], fd_trie[2], fd_allow[2], fd_prefixes, fd_notes;
	uint32_t max_entries[2];
	uint32_t max_notes;
	struct bl_table tab;
	uint32_t count[2][MAX_PLEN + 1]; /* entries per prefix length */
	bool hashed[2][MAX_PLEN + 1]; /* where a length with entries lives */
	size_t n_fam[2];
	uint32_t n_trie[2];
	uint64_t next_expiry; /* earliest expires_ns among entries; UINT64_MAX: none */
	bool allow_used[2]; /* the allowlist trie has entries */
	/* Prefilter: entries per bucket, the bitmap as written, words to write. */
	int fd_filter;
	uint8_t *fcount4; /* saturating: a full counter keeps its bit set, which is safe */
	uint16_t *fcount6;
	uint32_t *fcount16;
	uint64_t *fwords;
	uint8_t *fdirty;
	size_t n_short[2]; /* entries too short for the filter: that family's filter is off */
};

static inline int fam_of(const struct zt_cidr *c)
{
	return c->family == AF_INET ? FAM_V4 : FAM_V6;
}

static inline size_t addr_len(int fam)
{
	return fam == FAM_V4 ? 4 : 16;
}

void bl_audit(struct zt_blocklist *bl, const char *kind, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
size_t bl_make_key(int fam, uint8_t plen, const uint8_t *addr, void *key);
void bl_note_text(struct zt_blocklist *bl, uint32_t id, char *buf, size_t n);
int bl_entry_fd(const struct zt_blocklist *bl, int fam, bool in_trie);

#endif
