/* SPDX-License-Identifier: GPL-2.0-only */
/* ztagent-cni: one request to the daemon's API socket (agent/apimsg.h frames). */
#ifndef ZT_CNI_CLIENT_H
#define ZT_CNI_CLIENT_H

#include <cbor.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Sends req (not consumed) to the daemon at sock and waits up to timeout_ns
 * for the answer. 0 with *reply (the caller frees it) and *data (its "data",
 * may be NULL) when the daemon said ok; -EHOSTDOWN when the daemon is not
 * there or does not answer in time (no socket, nobody listening, timed out,
 * closed without an answer); -EREMOTEIO when it refused (err: its message,
 * *daemon_errno: its errno); another -errno otherwise. err says what.
 */
int zt_cni_call(const char *sock, uint64_t timeout_ns, const cbor_item_t *req, cbor_item_t **reply,
		const cbor_item_t **data, int *daemon_errno, char *err, size_t errlen);

#endif
