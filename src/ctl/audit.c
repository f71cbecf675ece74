// SPDX-License-Identifier: GPL-2.0-only
/* ztctl audit: checking the audit trail's hash chain. */
#include "ctl/ctl.h"
#include "records/audit.h"

static int run_audit_verify(struct ctl *ctl, struct opts *o)
{
	char url[4096] = "";
	const char *conninfo = o->db;

	if (!conninfo)
		conninfo = getenv("ZTAGENT_DB");
	if (!conninfo || !*conninfo) {
		/* The running agent's database.url. */
		const cbor_item_t *d;
		cbor_item_t *reply;
		int r = call(ctl, request(ZT_OP_STATUS), &reply, &d);

		if (r)
			return r;
		str_of(zt_cbor_get(d, "database"), "url", url, sizeof(url), "");
		cbor_decref(&reply);
		if (!url[0]) {
			fprintf(stderr,
				"ztctl: the agent has no database (database.url is empty); give --db CONNINFO\n");
			return EXIT_USAGE;
		}
		conninfo = url;
	}
	return zt_audit_verify_cli(conninfo, stdout, stderr);
}

const struct cmd ctl_audit_cmds[] = {
	{ "audit verify", "ztctl audit verify [--db CONNINFO]",
	  "Recomputes the SHA-256 chain of the audit trail (table audit_log) and says\n"
	  "whether it is intact, or which row was changed, deleted or inserted.\n"
	  "The database is --db, else $ZTAGENT_DB, else the running agent's database.url.\n"
	  "Exit codes: 0 intact, 1 broken, 2 the database cannot be read or no database.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl audit verify --db 'host=/run/postgresql dbname=ztagent'\n",
	  OPT_DB, 0, 0, NULL, run_audit_verify },
};
const size_t ctl_audit_ncmds = ZT_ARRAY_SIZE(ctl_audit_cmds);
