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

#include "agent/cbor.h"

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

#endif
