// SPDX-License-Identifier: GPL-2.0-only
/* ztctl policy: validate files offline, list what is in force, explain a verdict, reload. */
#include "ctl/ctl.h"
#include "seg/policy.h"

/*
 * Offline: the same parser, messages and limits as the daemon's policy
 * store, so a file that passes here is one the daemon accepts.
 */
static int run_policy_validate(struct ctl *ctl, struct opts *o)
{
	struct zt_policy_set *set = NULL;
	char err[2048] = "";
	int r = zt_policy_load(o->args[0], &set, err, sizeof(err));

	if (ctl->json) {
		cbor_item_t *m = zt_cbor_map();

		if (!m || zt_cbor_put_str(m, "path", o->args[0]) ||
		    zt_cbor_put_bool(m, "valid", r == 0) ||
		    (r < 0 && zt_cbor_put_str(m, "error", err)) ||
		    (r == 0 && (zt_cbor_put_u64(m, "policies", set->n) ||
				zt_cbor_put_u64(m, "files", set->n_files) ||
				zt_cbor_put_str(m, "sha256", set->sha256)))) {
			fprintf(stderr, "ztctl: out of memory\n");
			r = -ENOMEM;
		} else {
			zt_cbor_to_json(m, stdout, true);
			printf("\n");
		}
		if (m)
			cbor_decref(&m);
	} else if (r == 0) {
		printf("%s: valid: %zu %s in %zu %s (sha256 %s)\n", o->args[0], set->n,
		       set->n == 1 ? "policy" : "policies", set->n_files,
		       set->n_files == 1 ? "file" : "files", set->sha256);
	}
	if (r < 0 && !ctl->json)
		fprintf(stderr, "ztctl: %s\n", err[0] ? err : strerror(-r));
	zt_policy_set_free(set);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

/* ---- endpoints ---- */

static int run_policy_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "KIND",	 "POLICY",    "MODE",	 "ISOLATES",
					     "RULES IN", "RULES OUT", "SELECTS", "SOURCE" };
	static const bool right[8] = { false, false, false, false, true, true, true, false };
	struct table t = { .ncols = 8, .heads = heads, .right = right };
	const cbor_item_t *d, *pols;
	cbor_item_t *reply;
	char err[1024], sha[80], def[16], dir[4096];
	int r = call(ctl, request(ZT_OP_POLICY_LIST), &reply, &d);

	if (r)
		return r;
	pols = zt_cbor_get(d, "policies");
	if (ctl->json) {
		print_json(d);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	for (size_t i = 0; i < arr_len(pols); i++) {
		const cbor_item_t *p = arr_at(pols, i);
		char kind[32], ns[80], name[260], q[340], mode[16], iso[32], in[16], out[16],
			sel[16], src[4200];

		snprintf(q, sizeof(q), "%s/%s", str_of(p, "namespace", ns, sizeof(ns), "?"),
			 str_of(p, "name", name, sizeof(name), "?"));
		snprintf(in, sizeof(in), "%llu", (unsigned long long)u64_of(p, "ingress_rules"));
		snprintf(out, sizeof(out), "%llu", (unsigned long long)u64_of(p, "egress_rules"));
		snprintf(sel, sizeof(sel), "%llu", (unsigned long long)u64_of(p, "endpoints"));
		str_of(p, "isolates", iso, sizeof(iso), "");
		table_add(&t, str_of(p, "kind", kind, sizeof(kind), "?"), q,
			  str_of(p, "mode", mode, sizeof(mode), "?"), iso[0] ? iso : "-", in, out,
			  sel, str_of(p, "source", src, sizeof(src), "?"));
	}
	printf("policy store %s: generation %llu, default %s, %zu %s, sha256 %s\n",
	       str_of(d, "dir", dir, sizeof(dir), "?"), (unsigned long long)u64_of(d, "generation"),
	       str_of(d, "default", def, sizeof(def), "?"), arr_len(pols),
	       arr_len(pols) == 1 ? "policy" : "policies",
	       str_of(d, "sha256", sha, sizeof(sha), "-"));
	if (t.rows) {
		printf("\n");
		table_print(&t);
	}
	table_free(&t);
	str_of(d, "last_error", err, sizeof(err), "");
	if (err[0])
		printf("\nlast refused change (%llu refused in all; the policy above stays in force):\n  %s\n",
		       (unsigned long long)u64_of(d, "rejects"), err);
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_policy_explain(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char line[4096], v[16];
	int r;

	if (!o->from || !o->to || !o->port)
		return usage_err(o->cmd, "--from, --to and --port are required");
	req = request(ZT_OP_POLICY_EXPLAIN);
	put_str(req, "from", o->from);
	put_str(req, "to", o->to);
	put_str(req, "port", o->port);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
	} else {
		printf("%s\n", str_of(d, "explanation", line, sizeof(line), "?"));
		if (bool_of(d, "require_tls") || bool_of(d, "require_mutual_auth"))
			printf("  requires:%s%s (enforced in a later release)\n",
			       bool_of(d, "require_tls") ? " TLS" : "",
			       bool_of(d, "require_mutual_auth") ? " mutual authentication" : "");
	}
	str_of(d, "verdict", v, sizeof(v), "");
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_policy_reload(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *reply;
	int r = call(ctl, request(ZT_OP_POLICY_RELOAD), &reply, &d);

	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("policy reloaded: generation %llu in force\n",
		       (unsigned long long)u64_of(d, "generation"));
	cbor_decref(&reply);
	return EXIT_OK;
}

const struct cmd ctl_policy_cmds[] = {
	{ "policy validate", "ztctl policy validate PATH [-o json]",
	  "Checks a policy file, or every *.yaml / *.yml file in a directory, offline,\n"
	  "with the daemon's own parser: Kubernetes NetworkPolicy (networking.k8s.io/v1)\n"
	  "and ZeroTrustPolicy (ztagent.io/v1), several documents per file. An error\n"
	  "names FILE:LINE:COLUMN, the field path and what is wrong; the exit code is\n"
	  "then 1. A valid set prints its policy count and content hash.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl policy validate /etc/ztagent/policies\n",
	  0, 1, 1, "PATH", run_policy_validate },
	{ "policy list", "ztctl policy list [-o json]",
	  "Shows the policies in force (kind, namespace/name, mode, the directions they\n"
	  "isolate, rule counts, how many endpoints they select, file:line), the\n"
	  "generation in the kernel, policy.default, the store's content hash, and the\n"
	  "last change the daemon refused (the policy in force stays then).\n",
	  0, 0, 0, NULL, run_policy_list },
	{ "policy explain",
	  "ztctl policy explain --from ENDPOINT|IP --to ENDPOINT|IP --port N/PROTO",
	  "Says whether a connection is allowed, denied or passes in audit mode, and\n"
	  "which rule (or default-deny) decides each side: the source's egress and the\n"
	  "destination's ingress. An endpoint is NAMESPACE/NAME, a name unique across\n"
	  "namespaces, or one of its addresses; any other address is outside the node.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl policy explain --from prod/web --to 198.18.1.3 --port 5432/TCP\n",
	  OPT_EXPLAIN, 0, 0, NULL, run_policy_explain },
	{ "policy reload", "ztctl policy reload",
	  "Reads policy.dir now (the daemon also does on every change it is notified\n"
	  "of). An invalid file is refused with FILE:LINE:COLUMN and the reason, and the\n"
	  "policy in force stays.\n",
	  0, 0, 0, NULL, run_policy_reload },
};
const size_t ctl_policy_ncmds = ZT_ARRAY_SIZE(ctl_policy_cmds);
