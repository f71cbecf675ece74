/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CNI DELs queued while the daemon was down.
 *
 * A DEL must succeed when the daemon cannot be reached (the runtime would
 * otherwise retry it forever and the pod never goes away). The plugin then
 * writes the deletion to <state_dir>/cni-pending/ (ZT_CNI_SPOOL_SUBDIR),
 * one small JSON file per (container id, interface), named by a hash of the
 * pair so that a repeated DEL replaces its own file:
 *
 *   {"container_id": "...", "ifname": "eth0", "pod_namespace": "...",
 *    "pod_name": "...", "pod_uid": "...", "queued_unix": 1767225600}
 *
 * written to a temporary file, fsynced and renamed. The daemon applies them
 * at its next start (after the endpoints come back from the state file) and
 * before every CNI request it serves, logs each, and removes the files.
 * Applying one late is harmless: a container id names one sandbox only.
 *
 * The plugin links the writer, the daemon the reader: both live here so
 * that the format is defined once. Nothing here logs.
 */
#ifndef ZT_CNISPOOL_H
#define ZT_CNISPOOL_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seg/endpoint.h"

#define ZT_CNI_SPOOL_SUBDIR "cni-pending"
#define ZT_CNI_SPOOL_MAX_BYTES 4096 /* a record is a few hundred bytes */
#define ZT_CNI_SPOOL_SUFFIX ".del"

struct zt_cni_del {
	char container_id[ZT_EP_CID_MAX + 1];
	char ifname[IF_NAMESIZE]; /* CNI_IFNAME */
	char pod_ns[64]; /* "" when the runtime gave none; for the log only */
	char pod_name[ZT_EP_NAME_MAX + 1];
	char pod_uid[ZT_EP_UID_MAX + 1];
	uint64_t queued_unix;
};

/*
 * Writes d into dir (created 0700 when missing). path (may be NULL) gets the
 * file's name. 0, or -errno with err saying what failed where.
 */
/*
 * A CNI container id as endpoint.c takes it: 1-256 of A-Z a-z 0-9 _ . -,
 * alphanumeric first (here because the plugin links this file, not endpoint.c).
 */
bool zt_cni_cid_valid(const char *v);

int zt_cni_spool_write(const char *dir, const struct zt_cni_del *d, char *path, size_t pathlen,
		       char *err, size_t errlen);
/*
 * Parses one record. Every field is checked (types, lengths, the container
 * id and interface name as the endpoint checks them); unknown fields are
 * ignored. 0, or -EBADMSG with err naming what is wrong.
 */
int zt_cni_spool_parse(const char *buf, size_t len, struct zt_cni_del *out, char *err,
		       size_t errlen);
/* Reads and parses one file: a regular file of at most ZT_CNI_SPOOL_MAX_BYTES. */
int zt_cni_spool_read(const char *path, struct zt_cni_del *out, char *err, size_t errlen);

#endif
