// SPDX-License-Identifier: GPL-2.0-only
/*
 * A batch writer for drift_bulk.sh, without bpftool (which has no batch
 * verbs): BPF_MAP_DELETE_BATCH or BPF_MAP_UPDATE_BATCH on a pinned IPv4
 * blocklist hash map, over N /32 keys from a first address on, step S.
 *   dw_batch PIN delete N FIRST STEP   deletes them in one call
 *   dw_batch PIN expire N FIRST STEP   rewrites their expires_ns in one call
 *   dw_batch PIN present N FIRST STEP  looks them up one by one
 *   dw_batch PIN count                 prints how many entries the map holds
 *                                      (BPF_MAP_LOOKUP_BATCH: a million in
 *                                      well under a second, bpftool's dump
 *                                      takes 40 s)
 * Exits 0 when the kernel processed all N (present: all are in the map).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "ztagent.h"

#define COUNT_CHUNK 65536

static int count(const char *pin)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct zt_ip4_key *keys = calloc(COUNT_CHUNK, sizeof(*keys));
	struct zt_block_entry *vals = calloc(COUNT_CHUNK, sizeof(*vals));
	__u64 in = 0, out = 0, total = 0;
	int fd = bpf_obj_get(pin), r;

	if (fd < 0 || !keys || !vals) {
		fprintf(stderr, "dw_batch: %s: %s\n", pin, strerror(errno));
		return 1;
	}
	for (bool first = true;; first = false) {
		__u32 cnt = COUNT_CHUNK;

		r = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &cnt, &opts);
		total += cnt;
		if (r < 0 && errno == ENOENT)
			break; /* the end: cnt holds the last ones */
		if (r < 0) {
			fprintf(stderr, "dw_batch: lookup batch: %s\n", strerror(errno));
			return 1;
		}
		in = out;
	}
	printf("%llu\n", (unsigned long long)total);
	return 0;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct zt_ip4_key *keys;
	struct zt_block_entry *vals;
	unsigned long n, first, step;
	__u32 cnt;
	int fd, r;

	if (argc == 3 && !strcmp(argv[2], "count"))
		return count(argv[1]);
	if (argc != 6) {
		fprintf(stderr, "usage: dw_batch PIN delete|expire|present N FIRST STEP\n"
				"       dw_batch PIN count\n");
		return 2;
	}
	n = strtoul(argv[3], NULL, 0);
	first = strtoul(argv[4], NULL, 0);
	step = strtoul(argv[5], NULL, 0);
	fd = bpf_obj_get(argv[1]);
	if (fd < 0 || !n) {
		fprintf(stderr, "dw_batch: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	keys = calloc(n, sizeof(*keys));
	vals = calloc(n, sizeof(*vals));
	if (!keys || !vals)
		return 1;
	for (unsigned long i = 0; i < n; i++) {
		uint32_t a = (uint32_t)(first + i * step);

		keys[i].prefixlen = 32;
		keys[i].addr[0] = (uint8_t)(a >> 24);
		keys[i].addr[1] = (uint8_t)(a >> 16);
		keys[i].addr[2] = (uint8_t)(a >> 8);
		keys[i].addr[3] = (uint8_t)a;
		if (bpf_map_lookup_elem(fd, &keys[i], &vals[i]) < 0) {
			if (strcmp(argv[2], "present"))
				fprintf(stderr, "dw_batch: key %lu (%u) not in the map\n", i, a);
			return 1;
		}
		vals[i].expires_ns = 0xffffffffULL;
	}
	if (!strcmp(argv[2], "present"))
		return 0;
	cnt = (__u32)n;
	if (!strcmp(argv[2], "delete"))
		r = bpf_map_delete_batch(fd, keys, &cnt, &opts);
	else
		r = bpf_map_update_batch(fd, keys, vals, &cnt, &opts);
	if (r < 0 || cnt != n) {
		fprintf(stderr, "dw_batch: %s: %s (%u of %lu done)\n", argv[2], strerror(-r), cnt,
			n);
		return 1;
	}
	return 0;
}
