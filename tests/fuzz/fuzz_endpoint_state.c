// SPDX-License-Identifier: GPL-2.0-only
/*
 * The endpoint state file (state_dir/endpoints.cbor), read at every start and
 * at --detach: zt_ep_table_decode. A table that loads saves to a file that
 * loads to the same table.
 */
#include <errno.h>

#include "fuzz.h"
#include "seg/endpoint.h"

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(path, sizeof(path), "%s/endpoints.cbor", fuzz_tmpdir("epstate"));
	return 0;
}

static void same(const struct zt_ep *a, const struct zt_ep *b)
{
	char x[2048], y[2048];

	FUZZ_CHECK(a->id == b->id && a->ifindex == b->ifindex && a->identity == b->identity &&
			   a->created_unix == b->created_unix,
		   "numbers of %s changed", a->qname);
	FUZZ_CHECK(!strcmp(a->qname, b->qname) && !strcmp(a->ifname, b->ifname),
		   "%s came back as %s", a->qname, b->qname);
	FUZZ_CHECK(a->origin == b->origin && a->pending == b->pending &&
			   !strcmp(a->pod_uid, b->pod_uid) &&
			   !strcmp(a->container_id, b->container_id) &&
			   !strcmp(a->cni_ifname, b->cni_ifname) &&
			   !strcmp(a->service_account, b->service_account),
		   "origin, pod or container of %s changed", a->qname);
	FUZZ_CHECK(a->n_addrs == b->n_addrs && a->n_labels == b->n_labels &&
			   a->n_ns_labels == b->n_ns_labels && a->n_ports == b->n_ports,
		   "counts of %s changed", a->qname);
	zt_ep_addrs_format(a, x, sizeof(x));
	zt_ep_addrs_format(b, y, sizeof(y));
	FUZZ_CHECK(!strcmp(x, y), "addresses %s -> %s", x, y);
	zt_labels_format(a->labels, a->n_labels, x, sizeof(x));
	zt_labels_format(b->labels, b->n_labels, y, sizeof(y));
	FUZZ_CHECK(!strcmp(x, y), "labels %s -> %s", x, y);
	for (size_t i = 0; i < a->n_ports; i++)
		FUZZ_CHECK(!strcmp(a->ports[i].name, b->ports[i].name) &&
				   a->ports[i].port == b->ports[i].port &&
				   a->ports[i].protocol == b->ports[i].protocol,
			   "port %zu of %s changed", i, a->qname);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zt_ep_table t = { 0 }, u = { 0 };
	char err[1024];
	int r;

	r = zt_ep_table_decode(&t, data, size, "fuzz", err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(t.n == 0, "a refused file left %zu endpoints", t.n);
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM, "unexpected error %d", r);
		return 0;
	}
	FUZZ_CHECK(t.n <= ZT_EP_MAX, "%zu endpoints", t.n);
	FUZZ_CHECK(zt_ep_table_save(&t, path, err, sizeof(err)) == 0, "save: %s", err);
	FUZZ_CHECK(zt_ep_table_load(&u, path, err, sizeof(err)) == 0, "reload: %s", err);
	FUZZ_CHECK(u.n == t.n, "%zu endpoints came back as %zu", t.n, u.n);
	for (size_t i = 0; i < t.n; i++)
		same(t.v[i], u.v[i]);
	zt_ep_table_clear(&t);
	zt_ep_table_clear(&u);
	return 0;
}
