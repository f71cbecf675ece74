// SPDX-License-Identifier: GPL-2.0-only
/* ztctl: global options, per-command option parsing, dispatch to the command groups. */
#include <getopt.h>
#include <malloc.h>

#include "ctl/ctl.h"

/* The daemon validates these again; the list mirrors enum zt_block_reason's names. */
static const char *const kinds[] = { "operator", "threat-intel", "scan",
				     "flood",	 "anomaly",	 "policy" };
static const char *const sources[] = { "manual", "feed", "detector" };

static const struct {
	const struct cmd *cmds;
	const size_t *n;
} groups[] = {
	{ ctl_status_cmds, &ctl_status_ncmds },
	{ ctl_block_cmds, &ctl_block_ncmds },
	{ ctl_policy_cmds, &ctl_policy_ncmds },
	{ ctl_endpoint_cmds, &ctl_endpoint_ncmds },
	{ ctl_audit_cmds, &ctl_audit_ncmds },
	{ ctl_flows_cmds, &ctl_flows_ncmds },
	{ ctl_ca_cmds, &ctl_ca_ncmds },
	{ ctl_feeds_cmds, &ctl_feeds_ncmds },
	{ ctl_incidents_cmds, &ctl_incidents_ncmds },
	{ ctl_alerts_cmds, &ctl_alerts_ncmds },
	{ ctl_compliance_cmds, &ctl_compliance_ncmds },
	{ ctl_cluster_cmds, &ctl_cluster_ncmds },
	{ ctl_gen_cmds, &ctl_gen_ncmds },
	{ ctl_mtls_cmds, &ctl_mtls_ncmds },
};

/* ---- usage ---- */

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: ztctl [--socket PATH] [-o json|table] COMMAND [ARGS]\n"
		"\n"
		"Controls the ztagent daemon on this node: what it drops at the uplinks (XDP),\n"
		"what it lets through, and which workloads may talk to which (TC, policy).\n"
		"\n"
		"Commands:\n"
		"  status                      programs, interfaces, map fill, counters, events\n"
		"  block add CIDR              drop traffic from CIDR (--ttl, --reason, --kind)\n"
		"  block del CIDR              stop dropping CIDR\n"
		"  block list [--feed NAME]    what is blocked, why and until when\n"
		"  block import FILE           block every CIDR in FILE (one per line)\n"
		"  allow add CIDR              let CIDR through even when blocklisted\n"
		"  allow del CIDR              remove an allowlist entry\n"
		"  allow list                  what is allowlisted\n"
		"  detach                      remove the XDP programs and pins; the daemon exits\n"
		"  policy validate PATH        check policy files offline (no daemon needed)\n"
		"  policy list                 the policies in force, generation, last refusal\n"
		"  policy explain --from A --to B --port N/PROTO\n"
		"                              allowed or denied, and by which rule\n"
		"  policy reload               read policy.dir now\n"
		"  policy diff [DIR|NODE] --against DIR|NODE\n"
		"                              what differs between two policy sets (exit 1)\n"
		"  cluster status              every node: heartbeat, policy hash, who disagrees\n"
		"  policy suggest [--since 24h] [--namespace NS] [--mode audit] [--min-flows N]\n"
		"                              policies from the recorded flows (PostgreSQL)\n"
		"  namespace annotate NS ztagent.io/isolation=namespace|strict|none\n"
		"  endpoint annotate EP ztagent.io/talks-to=TARGET:PORT,...\n"
		"                              metadata the agent generates policies from\n"
		"  endpoint add --ifname VETH --ip ADDR --labels k=v --namespace NS\n"
		"                              enforce policy on a workload's veth\n"
		"  endpoint del ENDPOINT       stop enforcing on it\n"
		"  endpoint list               the endpoints, identities, origins, pod UIDs\n"
		"  endpoint meta ENDPOINT --labels k=v\n"
		"                              set a (pending) endpoint's labels\n"
		"  flows [--follow]            policy verdicts on new flows (--verdict denied)\n"
		"  incidents list [--state open|closed|all]\n"
		"                              what the detectors found and what was done\n"
		"  incidents show ID           one incident: evidence, block, capture, flows\n"
		"  alerts [--follow]           incidents as they open and grow; policy denials\n"
		"  feeds list                  threat-intel feeds: state, entries, age, errors\n"
		"  feeds show NAME             one feed in detail: bad lines, what was subtracted\n"
		"  feeds refresh [NAME]        fetch a feed (or all) now (--force: unconditionally)\n"
		"  mtls status                 workload mTLS: certificates, tunnels, refusals\n"
		"  audit verify [--db CONNINFO]\n"
		"                              check the audit trail's hash chain\n"
		"  compliance report [--format text|json|html] [--since 30d] [-o FILE]\n"
		"                              posture checks with evidence and requirements\n"
		"  ca init --trust-domain TD --out DIR\n"
		"                              create a trust domain's root (offline, no daemon)\n"
		"  ca node-key NODE --out DIR  on the node: its key and a request (node.csr)\n"
		"  ca issue-node NODE --ca DIR --out DIR [--csr FILE]\n"
		"                              issue a node's intermediate for workload SVIDs\n"
		"\n"
		"Options:\n"
		"  --socket PATH   the daemon's API socket; else $ZTAGENT_SOCKET, else\n"
		"                  %s\n"
		"  -o json|table   output format of status and listings (also after COMMAND)\n"
		"  -h, --help      this text; 'ztctl COMMAND --help' explains one command\n"
		"  --version       print ztctl's version\n"
		"\n"
		"CIDRs: 198.51.100.7 (a host), 203.0.113.0/24, 2001:db8::1, 2001:db8:bad::/48.\n"
		"Durations: 500ms, 45s, 10m, 1h30m, 2d; a bare number is seconds.\n"
		"Exit codes: 0 done, 1 the daemon refused (its reason is printed), 2 usage error,\n"
		"3 the daemon cannot be reached.\n",
		ZT_DEFAULT_API_SOCKET);
}

static void help_cmd(const struct cmd *c, FILE *f)
{
	fprintf(f, "Usage: %s\n\n%s", c->usage, c->help);
}

int usage_err(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;

	fputs("ztctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c)
		fprintf(stderr, "Usage: %s\nRun 'ztctl %s --help' for details and examples.\n",
			c->usage, c->name);
	else
		fprintf(stderr, "Run 'ztctl --help' for the commands.\n");
	return EXIT_USAGE;
}

/* ---- argument checks ---- */

bool one_of(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* Validates a CIDR argument and writes its normalized form; exit code on error. */
int cidr_arg(const struct cmd *c, const char *s, char *norm, size_t n)
{
	struct zt_cidr cidr;
	bool host_bits = false;

	if (zt_cidr_parse(s, &cidr, &host_bits) < 0 || zt_cidr_format(&cidr, norm, n) < 0)
		return usage_err(
			c,
			"'%s' is not an IPv4/IPv6 address or prefix (e.g. 198.51.100.7, 203.0.113.0/24, 2001:db8::/48)",
			s);
	if (host_bits)
		fprintf(stderr, "ztctl: note: '%s' has host bits set; using %s\n", s, norm);
	return 0;
}

static const struct option long_opts[] = {
	{ "ttl", required_argument, NULL, 'T' },
	{ "reason", required_argument, NULL, 'R' },
	{ "kind", required_argument, NULL, 'K' },
	{ "source", required_argument, NULL, 'S' },
	{ "feed-id", required_argument, NULL, 'F' },
	{ "limit", required_argument, NULL, 'L' },
	{ "output", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ "ifname", required_argument, NULL, 'i' },
	{ "ip", required_argument, NULL, 'a' },
	{ "labels", required_argument, NULL, 'l' },
	{ "namespace", required_argument, NULL, 'n' },
	{ "name", required_argument, NULL, 'N' },
	{ "namespace-labels", required_argument, NULL, 'X' },
	{ "ports", required_argument, NULL, 'P' },
	{ "service-account", required_argument, NULL, 'e' },
	{ "from", required_argument, NULL, 'r' },
	{ "to", required_argument, NULL, 't' },
	{ "port", required_argument, NULL, 'p' },
	{ "follow", no_argument, NULL, 'w' },
	{ "verdict", required_argument, NULL, 'v' },
	{ "db", required_argument, NULL, 'D' },
	{ "trust-domain", required_argument, NULL, 'U' },
	{ "out", required_argument, NULL, 'O' },
	{ "ca", required_argument, NULL, 'C' },
	{ "days", required_argument, NULL, 'Y' },
	{ "csr", required_argument, NULL, 'Q' },
	{ "feed", required_argument, NULL, 'E' },
	{ "force", no_argument, NULL, 'Z' },
	{ "state", required_argument, NULL, 'W' },
	{ "format", required_argument, NULL, 'G' },
	{ "since", required_argument, NULL, 'J' },
	{ "audit-age", required_argument, NULL, 'A' },
	{ "against", required_argument, NULL, 'B' },
	{ "mode", required_argument, NULL, 'M' },
	{ "min-flows", required_argument, NULL, 'I' },
	{ "annotation", required_argument, NULL, 'H' },
	{ NULL, 0, NULL, 0 },
};

static const struct {
	int val;
	unsigned int bit;
	const char *name;
} opt_bits[] = {
	{ 'T', OPT_TTL, "--ttl" },	   { 'R', OPT_REASON, "--reason" },
	{ 'K', OPT_KIND, "--kind" },	   { 'S', OPT_SOURCE, "--source" },
	{ 'F', OPT_FEED_ID, "--feed-id" }, { 'L', OPT_LIMIT, "--limit" },
	{ 'i', OPT_EP, "--ifname" },	   { 'a', OPT_EP, "--ip" },
	{ 'l', OPT_EP, "--labels" },	   { 'n', OPT_EP, "--namespace" },
	{ 'N', OPT_EP, "--name" },	   { 'X', OPT_EP, "--namespace-labels" },
	{ 'P', OPT_EP, "--ports" },	   { 'r', OPT_EXPLAIN, "--from" },
	{ 't', OPT_EXPLAIN, "--to" },	   { 'p', OPT_EXPLAIN, "--port" },
	{ 'w', OPT_FOLLOW, "--follow" },   { 'f', OPT_FOLLOW, "-f" },
	{ 'v', OPT_VERDICT, "--verdict" }, { 'D', OPT_DB, "--db" },
	{ 'U', OPT_CA, "--trust-domain" }, { 'O', OPT_CA, "--out" },
	{ 'C', OPT_CA, "--ca" },	   { 'Y', OPT_CA, "--days" },
	{ 'Q', OPT_CA, "--csr" },	   { 'E', OPT_FEED, "--feed" },
	{ 'Z', OPT_FORCE, "--force" },	   { 'G', OPT_COMPLIANCE, "--format" },
	{ 'J', OPT_SINCE, "--since" },	   { 'A', OPT_COMPLIANCE, "--audit-age" },
	{ 'W', OPT_STATE, "--state" },	   { 'B', OPT_AGAINST, "--against" },
	{ 'M', OPT_SUGGEST, "--mode" },	   { 'I', OPT_SUGGEST, "--min-flows" },
	{ 'H', OPT_EP, "--annotation" },   { 'e', OPT_EP, "--service-account" },
};

static int set_output(struct ctl *ctl, const struct cmd *c, const char *v)
{
	if (strcmp(v, "json") == 0)
		ctl->json = true;
	else if (strcmp(v, "table") == 0)
		ctl->json = false;
	else
		return usage_err(c, "-o: '%s' is not an output format (json or table)", v);
	return 0;
}

/* Parses a command's options and arguments; -1 when --help was printed, else 0 or an exit code. */
static int parse_opts(struct ctl *ctl, const struct cmd *c, int argc, char **argv, struct opts *o)
{
	int ch, r;

	memset(o, 0, sizeof(*o));
	o->cmd = c;
	o->limit = LIST_DEFAULT_LIMIT;
	optind = 0; /* glibc: start over, argv[0] is the command's last word */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":o:hf", long_opts, NULL)) != -1) {
		const char *arg = argv[optind - 1];

		for (size_t i = 0; i < ZT_ARRAY_SIZE(opt_bits); i++)
			if (ch == opt_bits[i].val && !(c->opts & opt_bits[i].bit))
				return usage_err(c, "%s does not apply to '%s'", opt_bits[i].name,
						 c->name);
		switch (ch) {
		case 'h':
			help_cmd(c, stdout);
			return -1;
		case 'o':
			if (c->opts & OPT_COMPLIANCE) {
				/* A report goes to a file: -o FILE (-o json still means JSON). */
				if (!strcmp(optarg, "json") || !strcmp(optarg, "table")) {
					r = set_output(ctl, c, optarg);
					if (r)
						return r;
				} else {
					o->outfile = optarg;
				}
				break;
			}
			r = set_output(ctl, c, optarg);
			if (r)
				return r;
			break;
		case 'T': {
			uint64_t ns;

			r = zt_duration_parse(optarg, &ns);
			if (r < 0)
				return usage_err(
					c,
					"--ttl: '%s' is %s (e.g. 90s, 10m, 1h30m, 2d; 0 = never)",
					optarg, r == -ERANGE ? "too long" : "not a duration");
			if (ns && ns < 1000000000ULL)
				return usage_err(
					c,
					"--ttl: '%s' is shorter than 1s, the smallest TTL (0 = never)",
					optarg);
			/* Whole seconds, rounded up: a block never ends early. */
			o->ttl_s = ns / 1000000000ULL + (ns % 1000000000ULL != 0);
			o->has_ttl = true;
			break;
		}
		case 'R':
			if (strlen(optarg) >= ZT_NOTE_LEN)
				return usage_err(c, "--reason: %zu bytes, at most %d allowed",
						 strlen(optarg), ZT_NOTE_LEN - 1);
			o->reason = optarg;
			break;
		case 'K':
			if (!one_of(optarg, kinds, ZT_ARRAY_SIZE(kinds)))
				return usage_err(
					c,
					"--kind: '%s' is not one of operator, threat-intel, scan, flood, anomaly, policy",
					optarg);
			o->kind = optarg;
			break;
		case 'S':
			if (!one_of(optarg, sources, ZT_ARRAY_SIZE(sources)))
				return usage_err(
					c, "--source: '%s' is not one of manual, feed, detector",
					optarg);
			o->source = optarg;
			break;
		case 'F':
			if (zt_parse_u64(optarg, &o->feed_id) < 0 || o->feed_id > UINT32_MAX)
				return usage_err(c, "--feed-id: '%s' is not a number from 0 to %u",
						 optarg, UINT32_MAX);
			o->has_feed_id = true;
			break;
		case 'L':
			if (zt_parse_u64(optarg, &o->limit) < 0)
				return usage_err(c, "--limit: '%s' is not a number (0 = all)",
						 optarg);
			break;
		case 'i':
			o->ifname = optarg;
			break;
		case 'a':
			o->ip = optarg;
			break;
		case 'l':
			o->labels = optarg;
			break;
		case 'n':
			o->ns = optarg;
			break;
		case 'N':
			o->name = optarg;
			break;
		case 'X':
			o->ns_labels = optarg;
			break;
		case 'P':
			o->ports = optarg;
			break;
		case 'e':
			o->service_account = optarg;
			break;
		case 'D':
			o->db = optarg;
			break;
		case 'E':
			o->feed = optarg;
			break;
		case 'Z':
			o->force = true;
			break;
		case 'G':
			if (strcmp(optarg, "text") && strcmp(optarg, "json") &&
			    strcmp(optarg, "html"))
				return usage_err(c, "--format: '%s' is not text, json or html",
						 optarg);
			o->format = optarg;
			break;
		case 'J':
		case 'A': {
			uint64_t ns;

			r = zt_duration_parse(optarg, &ns);
			if (r < 0 || ns < (ch == 'J' ? 1 : 3600) * 1000000000ULL ||
			    ns > 3650ULL * 86400 * 1000000000ULL)
				return usage_err(
					c,
					ch == 'J' ?
						"--since: '%s' is not a duration from 1s to 3650d (e.g. 24h, 30d)" :
						"--audit-age: '%s' is not a duration from 1h to 3650d (e.g. 14d)",
					optarg);
			if (ch == 'J') {
				o->since_s = ns / 1000000000ULL;
				o->has_since = true;
			} else {
				o->audit_age_s = ns / 1000000000ULL;
				o->has_audit_age = true;
			}
			break;
		}
		case 'B':
			o->against = optarg;
			break;
		case 'M':
			o->mode = optarg;
			break;
		case 'I':
			if (zt_parse_u64(optarg, &o->min_flows) < 0 || !o->min_flows)
				return usage_err(c,
						 "--min-flows: '%s' is not a number of 1 or more",
						 optarg);
			break;
		case 'H':
			o->annotation = optarg;
			break;
		case 'U':
			o->trust_domain = optarg;
			break;
		case 'O':
			o->out = optarg;
			break;
		case 'C':
			o->ca_dir = optarg;
			break;
		case 'Q':
			o->csr = optarg;
			break;
		case 'W':
			if (strcmp(optarg, "open") && strcmp(optarg, "closed") &&
			    strcmp(optarg, "all"))
				return usage_err(c, "--state: '%s' is not open, closed or all",
						 optarg);
			o->state = optarg;
			break;
		case 'Y':
			if (zt_parse_u64(optarg, &o->days) < 0)
				return usage_err(c, "--days: '%s' is not a number of days", optarg);
			o->has_days = true;
			break;
		case 'r':
			o->from = optarg;
			break;
		case 't':
			o->to = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'w':
		case 'f':
			o->follow = true;
			break;
		case 'v':
			if (strcmp(optarg, "allowed") && strcmp(optarg, "denied") &&
			    strcmp(optarg, "audit"))
				return usage_err(c,
						 "--verdict: '%s' is not allowed, denied or audit",
						 optarg);
			o->verdict = optarg;
			break;
		case ':':
			return usage_err(c, "%s needs a value", arg);
		default:
			if (optopt)
				return usage_err(c, "unknown option '-%c'", optopt);
			return usage_err(c, "unknown option '%s'", arg);
		}
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs < c->min_args)
		return usage_err(c, "missing %s", c->arg_name);
	if (o->nargs > c->max_args)
		return usage_err(c, "unexpected argument '%s'", o->args[c->max_args]);
	if (o->has_feed_id && (!o->source || strcmp(o->source, "feed") != 0))
		return usage_err(c, "--feed-id applies with --source feed only");
	return 0;
}

static const struct cmd *lookup(const char *name)
{
	for (size_t g = 0; g < ZT_ARRAY_SIZE(groups); g++)
		for (size_t i = 0; i < *groups[g].n; i++)
			if (strcmp(groups[g].cmds[i].name, name) == 0)
				return &groups[g].cmds[i];
	return NULL;
}

static const struct cmd *find_cmd(const char *word1, const char *word2, int *words)
{
	const struct cmd *c;
	char name[64];

	/* Two words first ("block add"), then one ("status"). */
	if (word2) {
		snprintf(name, sizeof(name), "%s %s", word1, word2);
		c = lookup(name);
		if (c) {
			*words = 2;
			return c;
		}
	}
	c = lookup(word1);
	if (c)
		*words = 1;
	return c;
}

static int group_usage(const char *group, const char *verb)
{
	bool help = verb && (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0);
	FILE *f = help ? stdout : stderr;

	if (help)
		fprintf(f, "The %s commands ('ztctl %s VERB --help' explains one):\n", group,
			group);
	else if (verb)
		fprintf(stderr, "ztctl: '%s %s' is not a command; ", group, verb);
	else
		fprintf(stderr, "ztctl: '%s' needs a verb; ", group);
	if (!help)
		fprintf(f, "the %s commands are:\n", group);
	for (size_t g = 0; g < ZT_ARRAY_SIZE(groups); g++)
		for (size_t i = 0; i < *groups[g].n; i++) {
			const struct cmd *c = &groups[g].cmds[i];

			if (strncmp(c->name, group, strlen(group)) == 0 &&
			    c->name[strlen(group)] == ' ')
				fprintf(f, "  %s\n", c->usage);
		}
	return help ? EXIT_OK : EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option global_opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .fd = -1 };
	const struct cmd *c;
	struct opts o;
	int ch, words, r;

	/* A daemon that goes away mid-request is an error message, not a SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * A listing decodes one page (a few MiB of CBOR tree) after another:
	 * memory freed by a page stays for the next instead of going back to
	 * the kernel and being faulted in again (a fifth of the time of a
	 * million-entry listing). ztctl is short-lived.
	 */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	ctl.sock = getenv("ZTAGENT_SOCKET");
	if (!ctl.sock || !*ctl.sock)
		ctl.sock = ZT_DEFAULT_API_SOCKET;
	opterr = 0;
	/* '+': options before the command only; the command parses its own. */
	while ((ch = getopt_long(argc, argv, "+:o:h", global_opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (!*optarg)
				return usage_err(NULL, "--socket needs a path");
			ctl.sock = optarg;
			break;
		case 'o':
			r = set_output(&ctl, NULL, optarg);
			if (r)
				return r;
			break;
		case 'h':
			usage_main(stdout);
			return EXIT_OK;
		case 'V':
			printf("ztctl %s\n", ZT_VERSION);
			return EXIT_OK;
		case ':':
			return usage_err(NULL, "%s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_err(NULL, "unknown option '-%c'", optopt);
			return usage_err(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "help") == 0) {
		/* "ztctl help", "ztctl help block add" */
		if (argc == 1) {
			usage_main(stdout);
			return EXIT_OK;
		}
		c = find_cmd(argv[1], argc > 2 ? argv[2] : NULL, &words);
		if (!c)
			return usage_err(NULL, "no help for '%s': not a command", argv[1]);
		help_cmd(c, stdout);
		return EXIT_OK;
	}
	c = find_cmd(argv[0], argc > 1 ? argv[1] : NULL, &words);
	if (!c) {
		if (strcmp(argv[0], "block") == 0 || strcmp(argv[0], "allow") == 0 ||
		    strcmp(argv[0], "policy") == 0 || strcmp(argv[0], "endpoint") == 0 ||
		    strcmp(argv[0], "audit") == 0 || strcmp(argv[0], "ca") == 0 ||
		    strcmp(argv[0], "incidents") == 0 || strcmp(argv[0], "feeds") == 0 ||
		    strcmp(argv[0], "compliance") == 0 || strcmp(argv[0], "cluster") == 0 ||
		    strcmp(argv[0], "namespace") == 0 || strcmp(argv[0], "mtls") == 0)
			return group_usage(argv[0], argc > 1 ? argv[1] : NULL);
		return usage_err(NULL, "'%s' is not a command", argv[0]);
	}
	r = parse_opts(&ctl, c, argc - (words - 1), argv + (words - 1), &o);
	if (r)
		return r < 0 ? EXIT_OK : r;
	r = c->run(&ctl, &o);
	if (ctl.fd >= 0)
		close(ctl.fd);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ztctl: writing the output: %s\n", strerror(errno));
		return r ? r : EXIT_FAIL;
	}
	return r;
}
