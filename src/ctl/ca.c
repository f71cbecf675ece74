// SPDX-License-Identifier: GPL-2.0-only
/* ztctl ca: a trust domain's root and the node intermediates, offline (no daemon). */
#include "ctl/ctl.h"
#include "mtls/ca.h"

static int days_of(const struct cmd *c, const struct opts *o, unsigned int dflt, unsigned int *out)
{
	if (!o->has_days) {
		*out = dflt;
		return 0;
	}
	if (o->days == 0 || o->days > ZT_CA_DAYS_MAX)
		return usage_err(c, "--days: %llu is not a number of days from 1 to %u",
				 (unsigned long long)o->days, ZT_CA_DAYS_MAX);
	*out = (unsigned int)o->days;
	return 0;
}

static int report(struct ctl *ctl, const char *what, const char *dir,
		  const struct zt_ca_result *res, const char *const *files, size_t nfiles)
{
	char when[32];

	iso_time((uint64_t)res->not_after, when, sizeof(when));
	if (ctl->json) {
		cbor_item_t *m = zt_cbor_map();

		if (!m || zt_cbor_put_str(m, "made", what) || zt_cbor_put_str(m, "dir", dir) ||
		    zt_cbor_put_str(m, "trust_domain", res->trust_domain) ||
		    zt_cbor_put_str(m, "serial", res->serial) ||
		    zt_cbor_put_u64(m, "not_after", (uint64_t)res->not_after))
			die_nomem();
		zt_cbor_to_json(m, stdout, true);
		printf("\n");
		cbor_decref(&m);
		return EXIT_OK;
	}
	printf("%s for trust domain %s in %s (serial %s, valid until %s):\n", what,
	       res->trust_domain, dir, res->serial, when);
	for (size_t i = 0; i < nfiles; i++)
		printf("  %s/%s\n", dir, files[i]);
	return EXIT_OK;
}

static int run_ca_init(struct ctl *ctl, struct opts *o)
{
	static const char *const files[] = { "root.pem", "root.key   (mode 0600: keep it offline)",
					     "bundle.pem (what every node trusts)" };
	struct zt_ca_result res;
	char err[1024];
	unsigned int days = 0;
	int r;

	if (!o->trust_domain)
		return usage_err(o->cmd, "missing --trust-domain (like cluster.local)");
	if (!o->out)
		return usage_err(o->cmd, "missing --out DIR");
	r = days_of(o->cmd, o, ZT_CA_ROOT_DAYS, &days);
	if (r)
		return r;
	r = zt_ca_init(o->trust_domain, o->out, days, &res, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ztctl: ca init: %s\n", err);
		return r == -EINVAL || r == -ERANGE ? EXIT_USAGE : EXIT_FAIL;
	}
	return report(ctl, "root", o->out, &res, files, ZT_ARRAY_SIZE(files));
}

static int run_ca_issue_node(struct ctl *ctl, struct opts *o)
{
	static const char *const files[] = { "node.pem",
					     "node.key   (mode 0600: for this node only)",
					     "bundle.pem" };
	struct zt_ca_result res;
	char err[1024];
	unsigned int days = 0;
	int r;

	if (!o->ca_dir)
		return usage_err(o->cmd, "missing --ca DIR (the directory of 'ztctl ca init')");
	if (!o->out)
		return usage_err(o->cmd, "missing --out DIR");
	r = days_of(o->cmd, o, ZT_CA_NODE_DAYS, &days);
	if (r)
		return r;
	r = zt_ca_issue_node_csr(o->ca_dir, o->args[0], o->csr, o->out, days, &res, err,
				 sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ztctl: ca issue-node: %s\n", err);
		return r == -EINVAL && strstr(err, "node name") ? EXIT_USAGE : EXIT_FAIL;
	}
	/* With --csr the key stayed on the node: there is no node.key here. */
	if (o->csr) {
		static const char *const some[] = { "node.pem", "bundle.pem" };

		return report(ctl, "node intermediate", o->out, &res, some, ZT_ARRAY_SIZE(some));
	}
	return report(ctl, "node intermediate", o->out, &res, files, ZT_ARRAY_SIZE(files));
}

static int run_ca_node_key(struct ctl *ctl, struct opts *o)
{
	char err[1024];
	int r;

	if (!o->out)
		return usage_err(o->cmd, "missing --out DIR");
	r = zt_ca_node_request(o->args[0], o->out, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ztctl: ca node-key: %s\n", err);
		return r == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	if (ctl->json) {
		cbor_item_t *m = zt_cbor_map();
		char p[4200];

		if (!m)
			die_nomem();
		snprintf(p, sizeof(p), "%s/node.key", o->out);
		if (zt_cbor_put_str(m, "key", p))
			die_nomem();
		snprintf(p, sizeof(p), "%s/node.csr", o->out);
		if (zt_cbor_put_str(m, "request", p))
			die_nomem();
		zt_cbor_to_json(m, stdout, true);
		printf("\n");
		cbor_decref(&m);
		return EXIT_OK;
	}
	printf("key %s/node.key (mode 0600, stays on this node) and request %s/node.csr;\n"
	       "at the CA: ztctl ca issue-node %s --csr node.csr --ca CA_DIR --out DIR\n",
	       o->out, o->out, o->args[0]);
	return EXIT_OK;
}

const struct cmd ctl_ca_cmds[] = {
	{ "ca init", "ztctl ca init --trust-domain TD --out DIR [--days N]",
	  "Creates the root of a trust domain: a P-256 key and a self-signed CA\n"
	  "certificate (path length 1) whose name constraint permits only\n"
	  "spiffe://TD identities. Writes DIR/root.pem, DIR/root.key (mode 0600) and\n"
	  "DIR/bundle.pem, each atomically; an existing root is never replaced.\n"
	  "Keep DIR offline, or in a Secret only the issuer reads. No daemon needed.\n"
	  "\n"
	  "  --trust-domain TD   the SPIFFE trust domain (mtls.trust_domain), like cluster.local\n"
	  "  --out DIR           where to write (created 0700 when missing)\n"
	  "  --days N            validity, default 3650\n"
	  "\n"
	  "Rollover: make the new root in another DIR, put both roots in bundle.pem\n"
	  "(cat old/bundle.pem new/root.pem > bundle.pem) on every node, reissue the\n"
	  "node certificates under the new root, then drop the old root from the bundle.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl ca init --trust-domain cluster.local --out /secure/ztagent-ca\n",
	  OPT_CA, 0, 0, NULL, run_ca_init },
	{ "ca issue-node", "ztctl ca issue-node NODE --ca DIR --out DIR [--days N] [--csr FILE]",
	  "Issues the node intermediate NODE's agent mints workload SVIDs under: a new\n"
	  "P-256 key and a CA certificate with path length 0 (it signs SVIDs, nothing\n"
	  "that signs), signed by the root in --ca. Writes OUT/node.pem, OUT/node.key\n"
	  "(mode 0600) and OUT/bundle.pem (the CA's bundle), each atomically: the\n"
	  "files of mtls.node_cert, mtls.node_key and mtls.ca_bundle. Running it again\n"
	  "renews them. NODE is the agent's node name.\n"
	  "\n"
	  "  --ca DIR    the directory 'ztctl ca init' wrote (root.pem, root.key)\n"
	  "  --out DIR   where to write (created 0700 when missing)\n"
	  "  --days N    validity, default 365; never past the root's\n"
	  "  --csr FILE  certify the key of this request ('ztctl ca node-key' on the\n"
	  "              node) instead of making one: the node's key never leaves it\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl ca issue-node node-1 --ca /secure/ztagent-ca --out /etc/ztagent/ca\n"
	  "  ztctl ca issue-node node-1 --csr node-1.csr --ca /secure/ztagent-ca --out ./node-1\n",
	  OPT_CA, 1, 1, "NODE", run_ca_issue_node },
	{ "ca node-key", "ztctl ca node-key NODE --out DIR",
	  "On the node: makes its P-256 key (DIR/node.key, mode 0600) and a certificate\n"
	  "request for it (DIR/node.csr). Only node.csr goes to the CA ('ztctl ca\n"
	  "issue-node NODE --csr node.csr'); node.pem and bundle.pem come back.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl ca node-key node-1 --out /etc/ztagent/ca\n",
	  OPT_CA, 1, 1, "NODE", run_ca_node_key },
};
const size_t ctl_ca_ncmds = ZT_ARRAY_SIZE(ctl_ca_cmds);
