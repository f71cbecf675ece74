/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CBOR for input across a trust boundary, and helpers to read and build it.
 */
#ifndef ZT_CBOR_H
#define ZT_CBOR_H

#include <cbor.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Decodes exactly one CBOR item from buf[0..len). Before libcbor allocates
 * anything, the bytes are checked: well-formed, no trailing bytes, nesting at
 * most 32, declared lengths within the bytes that remain, at most max_items
 * items, valid UTF-8 in text. err says what and at which byte offset.
 * Returns 0, -EPROTO (malformed), -E2BIG (too many items) or -ENOMEM.
 */
int zt_cbor_decode(const uint8_t *buf, size_t len, size_t max_items, cbor_item_t **out, char *err,
		   size_t errlen);

/* Map access. Keys are text strings. Return 0, -ENOENT (absent), -EINVAL (wrong type),
 * -E2BIG (string longer than n-1 or contains NUL), -ERANGE. */
cbor_item_t *zt_cbor_get(const cbor_item_t *map, const char *key);
int zt_cbor_get_str(const cbor_item_t *map, const char *key, char *buf, size_t n);
int zt_cbor_get_u64(const cbor_item_t *map, const char *key, uint64_t *out);
int zt_cbor_get_bool(const cbor_item_t *map, const char *key, bool *out);
/* Copies a text item (not a map field) into buf. */
int zt_cbor_str(const cbor_item_t *item, char *buf, size_t n);

/* Builders: add key -> value to an indefinite or definite map; return 0 or -ENOMEM. */
cbor_item_t *zt_cbor_map(void); /* new indefinite map */
cbor_item_t *zt_cbor_array(void); /* new indefinite array */
int zt_cbor_put(cbor_item_t *map, const char *key,
		cbor_item_t *value); /* takes value's reference */
int zt_cbor_put_str(cbor_item_t *map, const char *key, const char *value);
int zt_cbor_put_u64(cbor_item_t *map, const char *key, uint64_t value);
int zt_cbor_put_i64(cbor_item_t *map, const char *key, int64_t value);
int zt_cbor_put_bool(cbor_item_t *map, const char *key, bool value);
int zt_cbor_push(cbor_item_t *array, cbor_item_t *value); /* takes value's reference */

/* Writes item as JSON (RFC 8259) to f; byte strings as base64 text. */
int zt_cbor_to_json(const cbor_item_t *item, FILE *f, bool pretty);

#endif
