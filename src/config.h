/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's configuration: one YAML file, validated at start. */
#ifndef ZT_CONFIG_H
#define ZT_CONFIG_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define ZT_MAX_IFACES 64
#define ZT_NODE_NAME_MAX 64

enum zt_xdp_mode {
	ZT_XDP_NATIVE = 0,
	ZT_XDP_GENERIC,
};

struct zt_config {
	char path[PATH_MAX]; /* where it was read from ("" when built from defaults) */
	char node[ZT_NODE_NAME_MAX]; /* default: gethostname() */
	char bpffs[PATH_MAX]; /* default ZT_DEFAULT_BPFFS */
	char api_socket[PATH_MAX]; /* default ZT_DEFAULT_API_SOCKET */
	enum zt_log_level log_level; /* default info */
	struct {
		char interfaces[ZT_MAX_IFACES][IF_NAMESIZE]; /* xdp.interfaces */
		unsigned int n_interfaces;
		enum zt_xdp_mode mode; /* xdp.mode: native | generic */
		bool malformed_drop; /* xdp.malformed: drop (true) | pass */
		uint32_t blocklist_max; /* xdp.blocklist_max: per family, default 2097152 */
		uint32_t allowlist_max; /* xdp.allowlist_max: per family, default 65536 */
		uint32_t event_sample; /* xdp.event_sample: 1-in-N drops sampled, default 1 */
		uint32_t event_rate; /* xdp.event_rate: events/s per CPU at most, default 1000 */
		uint32_t ringbuf_bytes; /* xdp.ringbuf_bytes: power of two >= 4096, default 4 MiB */
		uint64_t expiry_interval_ns; /* xdp.expiry_interval: sweep period, default 1s */
	} xdp;
};

/* Fills every field with its default. */
void zt_config_defaults(struct zt_config *c);

/*
 * Reads and validates a file. On failure returns -errno-style code, leaves
 * *c untouched, and writes one message to err naming the file, line, column,
 * key and what was expected, e.g.
 *   "/etc/ztagent.yaml:7:9: xdp.mode: expected native or generic, got 'fast'".
 * Unknown keys, duplicate keys, wrong types, out-of-range numbers, more than
 * one document, anchors/aliases, and files over 1 MiB are errors.
 */
int zt_config_load(const char *path, struct zt_config *c, char *err, size_t errlen);
/* Same, from memory; name is used in messages in place of the path. */
int zt_config_load_buf(const char *buf, size_t len, const char *name, struct zt_config *c,
		       char *err, size_t errlen);

#endif
