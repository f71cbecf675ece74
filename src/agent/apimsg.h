/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The API's wire format, shared by the daemon and ztctl.
 *
 * A message is a 4-byte big-endian length followed by that many bytes of
 * one CBOR data item (RFC 8949). Requests are maps {"op": text, ...args};
 * replies are maps {"ok": true, "data": any} or {"ok": false, "error": text,
 * "errno": uint}. Messages above ZT_API_MAX_MSG are refused before any
 * allocation.
 */
#ifndef ZT_APIMSG_H
#define ZT_APIMSG_H

#include <cbor.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZT_API_MAX_MSG (64u << 20)
#define ZT_API_HDR_LEN 4

/* Serializes item into a new malloc'd frame (header included). */
int zt_msg_encode(const cbor_item_t *item, uint8_t **frame, size_t *frame_len);
/*
 * Decodes one CBOR item from buf (payload only, no header). Rejects
 * trailing bytes, malformed or truncated CBOR, nesting deeper than 32, and
 * (for requests) a top level that is not a map. err says what and at which
 * byte offset.
 */
int zt_msg_decode(const uint8_t *buf, size_t len, cbor_item_t **out, char *err, size_t errlen);

/* Blocking helpers for ztctl and tests: whole frame out / in. */
int zt_msg_send(int fd, const cbor_item_t *item);
int zt_msg_recv(int fd, cbor_item_t **out, char *err, size_t errlen);

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
