/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The policy parser's first stage (policy_yaml.c): a YAML document read into a
 * small tree whose nodes keep their line and column, in a per-document arena,
 * and the typed accessors the conversion in policy.c uses, each failing with a
 * FILE:LINE:COLUMN: PATH message. Not for use outside src/seg/.
 */
#ifndef ZT_POLICY_YAML_H
#define ZT_POLICY_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "seg/policy.h"

/* ---- arena ------------------------------------------------------------ */

#define ARENA_CHUNK (64u << 10)
#define ARENA_ALIGN 16u

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct zt_pol_arena {
	struct arena_chunk *head;
};

/* ---- YAML tree -------------------------------------------------------- */

enum ytype {
	Y_SCALAR,
	Y_SEQ,
	Y_MAP,
};

/* What a plain scalar resolves to (YAML 1.1, as Kubernetes' decoder reads it). */
enum ystype {
	YS_STR,
	YS_NULL,
	YS_BOOL,
	YS_INT,
	YS_FLOAT,
};

struct ynode {
	enum ytype type;
	enum ystype stype;
	struct zt_pol_pos pos;
	const char *s; /* scalar text, NUL-terminated */
	size_t len;
	struct ynode *first, *last, *next; /* children; a map alternates key, value */
	size_t nchild;
};

struct loader {
	const char *name; /* of the file in messages */
	char *err;
	size_t errlen;
	struct zt_policy_set *set;
	size_t cap;
	EVP_MD_CTX *md;
	size_t total_bytes;
	struct zt_pol_arena tree;
	size_t nodes;
	/* Conversion state. */
	char path[1024];
	size_t plen;
	enum zt_pol_kind kind;
};

/* policy_yaml.c: the arena */
void *zt_pol_arena_alloc(struct zt_pol_arena *a, size_t size);
void *zt_pol_arena_array(struct zt_pol_arena *a, size_t n, size_t size);
void zt_pol_arena_release(struct zt_pol_arena *a);

/* policy_yaml.c: the tree */
int yt_next_event(struct loader *l, yaml_parser_t *p, yaml_event_t *ev);
int yt_build_tree(struct loader *l, yaml_parser_t *p, struct ynode **root);
const char *yt_ytype_name(const struct ynode *n);
bool yt_all_digits(const char *s);

/* policy_yaml.c: helpers for the conversion, with messages at FILE:LINE:COLUMN: PATH */
int yt_fail(struct loader *l, const struct zt_pol_pos *pos, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int yt_nomem(struct loader *l);
size_t yt_path_key(struct loader *l, const char *key);
size_t yt_path_idx(struct loader *l, size_t i);
void yt_path_set(struct loader *l, size_t len);
const struct ynode *yt_map_get(const struct ynode *m, const char *key);
const struct ynode *yt_map_get_set(const struct ynode *m, const char *key);
int yt_missing(struct loader *l, const struct ynode *m, const char *key, const char *hint);
int yt_check_fields(struct loader *l, const struct ynode *m, const char *const *allowed,
		    const char *what);
int yt_expect(struct loader *l, const struct ynode *n, enum ytype t, const char *what);
int yt_get_string(struct loader *l, const struct ynode *n, const char **out);
int yt_get_bool(struct loader *l, const struct ynode *n, bool *out);
int yt_get_uint(struct loader *l, const struct ynode *n, uint64_t lo, uint64_t hi, uint64_t *out);
char *yt_keep(struct loader *l, const char *s);

/* A value for messages: printable ASCII, at most 60 bytes. */
const char *yt_shown(const char *v, size_t len, char *buf, size_t n);
#define SHOW(s) yt_shown((s), strlen(s), (char[200]){ 0 }, 200)

#endif
