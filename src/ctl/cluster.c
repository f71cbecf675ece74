// SPDX-License-Identifier: GPL-2.0-only
/*
 * ztctl cluster status and ztctl policy diff: the nodes table (migration
 * 005) and the canonical form of policies (seg/polcanon.h), so a cluster's
 * nodes, a directory in git and a node can be compared.
 */
#include <sys/stat.h>
#include <json-c/json.h>
#include <libpq-fe.h>

#include "ctl/ctl.h"
#include "records/auditq.h"
#include "records/db.h"
#include "seg/polcanon.h"
#include "seg/policy.h"

#define STALE_AFTER_S 30 /* three heartbeats missed */

/* --db, else $ZTAGENT_DB, else the running agent's database.url; node gets the agent's name. */
static int conninfo_of(struct ctl *ctl, struct opts *o, char *buf, size_t n, char *node, size_t nn,
		       bool need_node)
{
	const char *ci = o->db;

	if (!ci)
		ci = getenv("ZTAGENT_DB");
	if (node)
		node[0] = '\0';
	if (ci && *ci && !need_node) {
		snprintf(buf, n, "%s", ci);
		return 0;
	}
	{
		const cbor_item_t *d;
		cbor_item_t *reply;
		int r = call(ctl, request(ZT_OP_STATUS), &reply, &d);

		if (r)
			return r;
		str_of(zt_cbor_get(d, "database"), "url", buf, n, "");
		if (node)
			str_of(d, "node", node, nn, "");
		cbor_decref(&reply);
	}
	if (ci && *ci)
		snprintf(buf, n, "%s", ci);
	if (!buf[0]) {
		fprintf(stderr,
			"ztctl: the agent has no database (database.url is empty); give --db CONNINFO\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int db_open(const char *ci, PGconn **c)
{
	char err[1024];

	if (zt_db_connect(ci, c, err, sizeof(err))) {
		fprintf(stderr, "ztctl: cannot connect to the database: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- cluster status ---- */

struct node_row {
	char *node, *version, *sha;
	long long age_s, policies, endpoints, drift;
	char *cert;
	bool stale;
};

static int run_cluster_status(struct ctl *ctl, struct opts *o)
{
	char ci[4096];
	PGconn *c = NULL;
	PGresult *res = NULL;
	int r = conninfo_of(ctl, o, ci, sizeof(ci), NULL, 0, false), n, groups = 0;
	const char *major = NULL;
	size_t major_n = 0, stale = 0;

	if (r)
		return r;
	r = db_open(ci, &c);
	if (r)
		return r;
	res = PQexec(
		c,
		"SELECT node, version, extract(epoch FROM now() - last_heartbeat)::bigint, "
		"coalesce(policy_sha256, ''), policies, endpoints, "
		"coalesce(to_char(cert_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
		"drift_repairs, count(*) OVER (PARTITION BY policy_sha256) "
		"FROM nodes ORDER BY node");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr,
			"ztctl: cannot read the nodes table: %s(is the schema at migration 005? the agent applies it at start)\n",
			PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(c);
		return EXIT_USAGE;
	}
	n = PQntuples(res);
	/* The policy most nodes run is the reference; the others disagree. */
	for (int i = 0; i < n; i++) {
		size_t k = strtoull(PQgetvalue(res, i, 8), NULL, 10);
		const char *sha = PQgetvalue(res, i, 3);

		if (strtoll(PQgetvalue(res, i, 2), NULL, 10) > STALE_AFTER_S)
			stale++;
		if (!major || k > major_n || (k == major_n && strcmp(sha, major) < 0)) {
			major = sha;
			major_n = k;
		}
	}
	{
		/* Distinct hashes. */
		PGresult *g =
			PQexec(c, "SELECT count(DISTINCT coalesce(policy_sha256, '')) FROM nodes");

		groups = PQresultStatus(g) == PGRES_TUPLES_OK ? atoi(PQgetvalue(g, 0, 0)) : 0;
		PQclear(g);
	}
	if (ctl->json) {
		json_object *root = json_object_new_object(), *arr = json_object_new_array();

		for (int i = 0; i < n; i++) {
			json_object *m = json_object_new_object();
			const char *sha = PQgetvalue(res, i, 3);
			long long age = strtoll(PQgetvalue(res, i, 2), NULL, 10);

			json_object_object_add(m, "node",
					       json_object_new_string(PQgetvalue(res, i, 0)));
			json_object_object_add(m, "version",
					       json_object_new_string(PQgetvalue(res, i, 1)));
			json_object_object_add(m, "heartbeat_age_s", json_object_new_int64(age));
			json_object_object_add(m, "stale",
					       json_object_new_boolean(age > STALE_AFTER_S));
			json_object_object_add(m, "policy_sha256", json_object_new_string(sha));
			json_object_object_add(m, "policy_agrees",
					       json_object_new_boolean(!strcmp(sha, major)));
			json_object_object_add(m, "policies",
					       json_object_new_int64(atoll(PQgetvalue(res, i, 4))));
			json_object_object_add(m, "endpoints",
					       json_object_new_int64(atoll(PQgetvalue(res, i, 5))));
			json_object_object_add(m, "cert_expires_at",
					       json_object_new_string(PQgetvalue(res, i, 6)));
			json_object_object_add(m, "drift_repairs",
					       json_object_new_int64(atoll(PQgetvalue(res, i, 7))));
			json_object_array_add(arr, m);
		}
		json_object_object_add(root, "nodes", arr);
		json_object_object_add(root, "policy_reference",
				       json_object_new_string(major ? major : ""));
		json_object_object_add(root, "policy_agree", json_object_new_boolean(groups <= 1));
		json_object_object_add(root, "stale", json_object_new_int64((int64_t)stale));
		json_object_object_add(root, "stale_after_s", json_object_new_int(STALE_AFTER_S));
		printf("%s\n",
		       json_object_to_json_string_ext(
			       root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else {
		printf("%-24s %-10s %-10s %-14s %-8s %-9s %-20s %s\n", "NODE", "VERSION",
		       "HEARTBEAT", "POLICY", "POLICIES", "ENDPOINTS", "CERT EXPIRES",
		       "DRIFT REPAIRS");
		for (int i = 0; i < n; i++) {
			const char *sha = PQgetvalue(res, i, 3);
			long long age = strtoll(PQgetvalue(res, i, 2), NULL, 10);
			char hb[32], pol[32];

			snprintf(hb, sizeof(hb), "%llds%s", age,
				 age > STALE_AFTER_S ? " STALE" : "");
			snprintf(pol, sizeof(pol), "%.12s%s", sha[0] ? sha : "none",
				 groups > 1 && strcmp(sha, major) ? " !" : "");
			printf("%-24s %-10s %-10s %-14s %-8s %-9s %-20s %s\n",
			       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), hb, pol,
			       PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
			       PQgetvalue(res, i, 6)[0] ? PQgetvalue(res, i, 6) : "-",
			       PQgetvalue(res, i, 7));
		}
		if (!n)
			printf("no node has reported yet (agents write their row within 10 s of start)\n");
		else if (groups <= 1)
			printf("\npolicy: all %d node(s) run the same policy (%.12s)\n", n, major);
		else {
			printf("\npolicy: the nodes DISAGREE (%d different policies); most run %.12s; these differ:\n",
			       groups, major);
			for (int i = 0; i < n; i++)
				if (strcmp(PQgetvalue(res, i, 3), major))
					printf("  %s runs %.12s ('ztctl policy diff --against %s' shows how)\n",
					       PQgetvalue(res, i, 0),
					       PQgetvalue(res, i, 3)[0] ? PQgetvalue(res, i, 3) :
									  "no policy",
					       PQgetvalue(res, i, 0));
		}
		if (stale)
			printf("heartbeat: %zu node(s) silent for more than %d s (down, or cut off from the database)\n",
			       stale, STALE_AFTER_S);
	}
	PQclear(res);
	PQfinish(c);
	return groups > 1 || stale ? EXIT_FAIL : EXIT_OK;
}

/* ---- policy diff ---- */

/* A side of the comparison: a directory or file of policy YAML, or a node in the database. */
static int load_side(struct ctl *ctl, struct opts *o, const char *what, struct zt_polcanon_set *out,
		     char *label, size_t ln)
{
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	if (stat(what, &st) == 0) {
		struct zt_policy_set *set = NULL;
		const struct zt_policy **v;
		char err[2048];

		r = zt_policy_load(what, &set, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "ztctl: %s: %s\n", what, err);
			return EXIT_USAGE;
		}
		v = calloc(set->n ? set->n : 1, sizeof(*v));
		if (!v)
			die_nomem();
		for (size_t i = 0; i < set->n; i++)
			v[i] = &set->policies[i];
		r = zt_polcanon_build(v, set->n, out);
		free(v);
		zt_policy_set_free(set);
		if (r < 0)
			die_nomem();
		snprintf(label, ln, "directory %s", what);
		return 0;
	}
	{
		char ci[4096];
		PGconn *c = NULL;
		PGresult *res;
		const char *p[1] = { what };

		r = conninfo_of(ctl, o, ci, sizeof(ci), NULL, 0, false);
		if (r)
			return r;
		r = db_open(ci, &c);
		if (r)
			return r;
		res = PQexecParams(
			c,
			"SELECT p.policy_key, p.sha256, p.canonical FROM nodes n LEFT JOIN "
			"node_policies p USING (node) WHERE n.node = $1 ORDER BY 1",
			1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "ztctl: cannot read node %s's policies: %s", what,
				PQresultErrorMessage(res));
			r = EXIT_USAGE;
		} else if (PQntuples(res) == 0) {
			fprintf(stderr,
				"ztctl: '%s' is neither a directory or file of policies nor a node in the nodes table ('ztctl cluster status' lists them)\n",
				what);
			r = EXIT_USAGE;
		}
		for (int i = 0; r == 0 && i < PQntuples(res); i++) {
			if (PQgetisnull(res, i, 0))
				continue; /* a node without policies */
			if (zt_polcanon_add(out, PQgetvalue(res, i, 0), PQgetvalue(res, i, 2)) < 0)
				die_nomem();
		}
		PQclear(res);
		PQfinish(c);
		if (r)
			return r;
		zt_polcanon_finish(out);
		snprintf(label, ln, "node %s", what);
	}
	return 0;
}

struct diff_out {
	struct ctl *ctl;
	json_object *added, *removed, *changed;
};

static void rules_diff(json_object *changes, bool text, const char *dir, json_object *a,
		       json_object *b)
{
	size_t na = a ? json_object_array_length(a) : 0, nb = b ? json_object_array_length(b) : 0;

	/* Both lists are sorted canonical texts: a merge. */
	for (int pass = 0; pass < 2; pass++) {
		json_object *x = pass ? b : a, *y = pass ? a : b;
		size_t nx = pass ? nb : na, ny = pass ? na : nb;

		for (size_t i = 0; i < nx; i++) {
			const char *t = json_object_to_json_string_ext(
				json_object_array_get_idx(x, i),
				JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
			bool found = false;

			for (size_t j = 0; j < ny && !found; j++)
				found = !strcmp(t, json_object_to_json_string_ext(
							   json_object_array_get_idx(y, j),
							   JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
			if (found)
				continue;
			if (text)
				printf("    %s %s rule: %s\n", pass ? "+" : "-", dir, t);
			else {
				json_object *m = json_object_new_object();

				json_object_object_add(
					m, "what",
					json_object_new_string(pass ? "rule added" :
								      "rule removed"));
				json_object_object_add(m, "direction", json_object_new_string(dir));
				json_object_object_add(
					m, "rule",
					json_object_get(json_object_array_get_idx(x, i)));
				json_object_array_add(changes, m);
			}
		}
	}
}

static void on_diff(void *ctx, enum zt_polcanon_change what, const char *key, const char *old_json,
		    const char *new_json)
{
	static const char *const fields[] = { "mode", "podSelector", "isolates" };
	struct diff_out *d = ctx;
	bool text = !d->ctl->json;
	json_object *a, *b, *changes, *m;

	if (what != ZT_PC_CHANGED) {
		if (text)
			printf("%s %s (only in the %s)\n", what == ZT_PC_ADDED ? "+" : "-", key,
			       what == ZT_PC_ADDED ? "second" : "first");
		else
			json_object_array_add(what == ZT_PC_ADDED ? d->added : d->removed,
					      json_object_new_string(key));
		return;
	}
	if (text)
		printf("~ %s\n", key);
	a = json_tokener_parse(old_json);
	b = json_tokener_parse(new_json);
	changes = json_object_new_array();
	for (size_t i = 0; i < ZT_ARRAY_SIZE(fields); i++) {
		json_object *x = NULL, *y = NULL;
		const char *tx, *ty;

		json_object_object_get_ex(a, fields[i], &x);
		json_object_object_get_ex(b, fields[i], &y);
		tx = json_object_to_json_string_ext(x, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
		tx = strdup(tx ? tx : "null");
		ty = json_object_to_json_string_ext(y, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
		if (strcmp(tx, ty ? ty : "null")) {
			if (text)
				printf("    %s: %s -> %s\n", fields[i], tx, ty);
			else {
				m = json_object_new_object();
				json_object_object_add(m, "what",
						       json_object_new_string("changed"));
				json_object_object_add(m, "field",
						       json_object_new_string(fields[i]));
				json_object_object_add(m, "from", json_object_get(x));
				json_object_object_add(m, "to", json_object_get(y));
				json_object_array_add(changes, m);
			}
		}
		free((char *)tx);
	}
	for (int dir = 0; dir < 2; dir++) {
		const char *dn = dir ? "egress" : "ingress";
		json_object *x = NULL, *y = NULL;

		json_object_object_get_ex(a, dn, &x);
		json_object_object_get_ex(b, dn, &y);
		rules_diff(changes, text, dn, x, y);
	}
	if (!text) {
		m = json_object_new_object();
		json_object_object_add(m, "policy", json_object_new_string(key));
		json_object_object_add(m, "changes", changes);
		json_object_array_add(d->changed, m);
	} else {
		json_object_put(changes);
	}
	json_object_put(a);
	json_object_put(b);
}

static int run_policy_diff(struct ctl *ctl, struct opts *o)
{
	struct zt_polcanon_set a = { 0 }, b = { 0 };
	char la[4200], lb[4200], node[256];
	struct diff_out d = { .ctl = ctl };
	size_t n;
	int r;

	if (!o->against)
		return usage_err(o->cmd, "missing --against DIR|NODE");
	if (o->nargs > 0) {
		r = load_side(ctl, o, o->args[0], &a, la, sizeof(la));
	} else {
		/* The policy in force on this node, as it reported it. */
		char ci[4096];

		r = conninfo_of(ctl, o, ci, sizeof(ci), node, sizeof(node), true);
		if (r == 0)
			r = load_side(ctl, o, node, &a, la, sizeof(la));
	}
	if (r == 0)
		r = load_side(ctl, o, o->against, &b, lb, sizeof(lb));
	if (r) {
		zt_polcanon_free(&a);
		zt_polcanon_free(&b);
		return EXIT_USAGE; /* any error is 2: a pipeline tells "differs" from "could not tell" */
	}
	if (ctl->json) {
		d.added = json_object_new_array();
		d.removed = json_object_new_array();
		d.changed = json_object_new_array();
	} else {
		printf("first:  %s (%zu policies, sha256 %s)\nsecond: %s (%zu policies, sha256 %s)\n",
		       la, a.n, a.sha256, lb, b.n, b.sha256);
	}
	n = zt_polcanon_diff(&a, &b, on_diff, &d);
	if (ctl->json) {
		json_object *root = json_object_new_object();

		json_object_object_add(root, "first", json_object_new_string(la));
		json_object_object_add(root, "first_sha256", json_object_new_string(a.sha256));
		json_object_object_add(root, "second", json_object_new_string(lb));
		json_object_object_add(root, "second_sha256", json_object_new_string(b.sha256));
		json_object_object_add(root, "equal", json_object_new_boolean(n == 0));
		json_object_object_add(root, "added", d.added);
		json_object_object_add(root, "removed", d.removed);
		json_object_object_add(root, "changed", d.changed);
		printf("%s\n",
		       json_object_to_json_string_ext(
			       root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(root);
	} else if (n == 0) {
		printf("equal: the same policies\n");
	} else {
		printf("%zu policies differ\n", n);
	}
	zt_polcanon_free(&a);
	zt_polcanon_free(&b);
	return n ? EXIT_FAIL : EXIT_OK;
}

const struct cmd ctl_cluster_cmds[] = {
	{ "cluster status", "ztctl cluster status [--db CONNINFO] [-o json]",
	  "Every node's row of the nodes table: version, heartbeat age (STALE after 30 s),\n"
	  "the SHA-256 of the canonical form of its policy in force, policies, endpoints,\n"
	  "mTLS certificate expiry and drift repairs; then whether the nodes agree on\n"
	  "policy, and which do not (marked '!': they run something else than most).\n"
	  "The database is --db, else $ZTAGENT_DB, else the running agent's database.url.\n"
	  "Exit codes: 0 all agree and report, 1 a node disagrees or is stale, 2 no database.\n",
	  OPT_DB, 0, 0, NULL, run_cluster_status },
	{ "policy diff",
	  "ztctl policy diff [DIR|NODE] --against DIR|NODE [--db CONNINFO] [-o json]",
	  "Compares two sets of policies by their canonical form (file names, order,\n"
	  "comments and formatting do not count): policies only in one (-, +), and for a\n"
	  "policy in both, its mode, selector, isolation and the rules added or removed.\n"
	  "A DIR (or file) is parsed by the same code as policy.dir; a NODE is a node's\n"
	  "policy in force as it reported it to the nodes table. Without the first\n"
	  "argument: this node's policy in force. A promotion pipeline runs\n"
	  "  ztctl policy diff staging/policies --against production/policies\n"
	  "Exit codes: 0 equal, 1 different, 2 an error (a file that does not parse, an\n"
	  "unknown node, no database).\n",
	  OPT_DB | OPT_AGAINST, 0, 1, "DIR|NODE", run_policy_diff },
};
const size_t ctl_cluster_ncmds = ZT_ARRAY_SIZE(ctl_cluster_cmds);
