/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the tunnel says inside TLS before it relays, and in its SNI.
 *
 * SNI: the destination pod's address, so the server agent can present that
 * workload's SVID before anything else is said: "v4-c6120105.ztagent"
 * (198.18.1.5), "v6-<32 hex digits>.ztagent". Names, not IP literals,
 * which SNI does not allow.
 *
 * Client -> server, the first application data (big endian):
 *   0  "ZTM1"   4  version (1)   5  family (4 | 6)   6  destination port
 *   8  destination address (16)  24 source port       26 ID length L (1..2048)
 *   28 source address (16)       44 source SPIFFE ID (L bytes)
 * Server -> client: "ZTM1", version, status (enum zt_mtls_reason, 0 = go
 * ahead), 2 zero bytes. After a status 0 both directions are raw bytes.
 */
#ifndef ZT_MTLS_FRAME_H
#define ZT_MTLS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "mtls/mtls.h"

#define ZT_FRAME_VERSION 1
#define ZT_FRAME_HDR_FIXED 44
#define ZT_FRAME_HDR_MAX (ZT_FRAME_HDR_FIXED + ZT_SPIFFE_ID_MAX)
#define ZT_FRAME_REPLY_LEN 8
#define ZT_SNI_MAX 64

/* Encodes the header for d (family, addr, port, src_addr, src_port) and id; its length or -EINVAL. */
int zt_frame_hdr_encode(uint8_t *buf, size_t n, const struct zt_mtls_dest *d, const char *id);

/*
 * Decodes a header from the first len bytes received: its length on
 * success, -EAGAIN when more bytes are needed, -EBADMSG when malformed
 * (magic, version, family, zero port, address bytes past an IPv4 address,
 * ID length, an ID that is no valid SPIFFE ID).
 */
int zt_frame_hdr_decode(const uint8_t *buf, size_t len, struct zt_mtls_dest *d, char *id,
			size_t idn);

void zt_frame_reply_encode(uint8_t buf[ZT_FRAME_REPLY_LEN], enum zt_mtls_reason status);
/* The status of a reply, -EAGAIN (short) or -EBADMSG. */
int zt_frame_reply_decode(const uint8_t *buf, size_t len);

/* SNI for a destination address; -EINVAL for another family. */
int zt_sni_encode(char *out, size_t n, int family, const uint8_t *addr);
/* The destination address an SNI names; -EINVAL for anything but what zt_sni_encode writes. */
int zt_sni_decode(const char *sni, int *family, uint8_t addr[16]);

#endif
