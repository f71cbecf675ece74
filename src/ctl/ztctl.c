// SPDX-License-Identifier: GPL-2.0-only
/*
 * ztctl: the operator's command line for ztagent, over the daemon's
 * unix-socket API (apimsg.h frames, apiops.h operations).
 *
 * Exit codes: 0 done, 1 the daemon refused or the operation failed,
 * 2 usage error, 3 the daemon cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/apimsg.h"
#include "seg/policy.h"
#include "agent/apiops.h"
#include "records/audit.h"
#include "agent/daemon.h"
#include "agent/util.h"
#include "ztagent.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

#define TIMEOUT_S 30
#define DETACH_WAIT_S 15
#define IMPORT_CHUNK 262144 /* cidrs per block.import request */
#define IMPORT_LINE_MAX 256 /* longer lines are not a CIDR */
#define REPORT_MAX 10 /* bad lines shown one by one */
#define LIST_DEFAULT_LIMIT 10000

struct ctl {
	const char *sock;
	bool json;
	int fd;
};

struct cmd;

/* Options, whichever command they belong to. */
struct opts {
	const struct cmd *cmd;
	uint64_t ttl_s;
	bool has_ttl;
	const char *reason, *kind, *source;
	uint64_t feed_id;
	bool has_feed_id;
	uint64_t limit;
	/* endpoint add */
	const char *ifname, *ip, *labels, *ns, *name, *ns_labels, *ports;
	/* policy explain */
	const char *from, *to, *port;
	/* flows */
	bool follow;
	const char *verdict;
	/* audit verify */
	const char *db;
	char **args; /* positional arguments */
	int nargs;
};

enum opt_bit {
	OPT_TTL = 1 << 0,
	OPT_REASON = 1 << 1,
	OPT_KIND = 1 << 2,
	OPT_SOURCE = 1 << 3,
	OPT_FEED_ID = 1 << 4,
	OPT_LIMIT = 1 << 5,
	OPT_EP = 1 << 6, /* --ifname --ip --labels --namespace --name --namespace-labels --ports */
	OPT_EXPLAIN = 1 << 7, /* --from --to --port */
	OPT_FOLLOW = 1 << 8,
	OPT_VERDICT = 1 << 9,
	OPT_DB = 1 << 10, /* --db CONNINFO */
};

struct cmd {
	const char *name; /* "block add" */
	const char *usage; /* the usage line, without "Usage: " */
	const char *help; /* what it does, options, examples */
	unsigned int opts; /* enum opt_bit accepted */
	int min_args, max_args;
	const char *arg_name; /* of the positional argument, for "missing CIDR" */
	int (*run)(struct ctl *ctl, struct opts *o);
};

/* The daemon validates these again; the list mirrors enum zt_block_reason's names. */
static const char *const kinds[] = { "operator", "threat-intel", "scan",
				     "flood",	 "anomaly",	 "policy" };
static const char *const sources[] = { "manual", "feed", "detector" };

/* ---- output helpers ---- */

static void die_nomem(void)
{
	fprintf(stderr, "ztctl: out of memory\n");
	exit(EXIT_FAIL);
}

/* Text from the daemon, safe for a terminal: control characters become '?'. */
static void clean(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		/* C1 controls, U+0080..U+009F, are 0xc2 0x80..0x9f in UTF-8. */
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			p[0] = p[1] = '?';
	}
}

/* Display width, close enough: code points. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static uint64_t u64_of(const cbor_item_t *m, const char *key)
{
	uint64_t v = 0;

	zt_cbor_get_u64(m, key, &v);
	return v;
}

static bool bool_of(const cbor_item_t *m, const char *key)
{
	bool v = false;

	zt_cbor_get_bool(m, key, &v);
	return v;
}

/* A text field, cleaned for the terminal; dflt when absent or not text. */
static const char *str_of(const cbor_item_t *m, const char *key, char *buf, size_t n,
			  const char *dflt)
{
	if (zt_cbor_get_str(m, key, buf, n) < 0)
		snprintf(buf, n, "%s", dflt);
	clean(buf);
	return buf;
}

static size_t arr_len(const cbor_item_t *a)
{
	return a && cbor_isa_array(a) ? cbor_array_size(a) : 0;
}

static const cbor_item_t *arr_at(const cbor_item_t *a, size_t i)
{
	return cbor_array_handle(a)[i];
}

static const char *iso_time(uint64_t unix_s, char *buf, size_t n)
{
	if (!unix_s || zt_time_format(unix_s, buf, n) < 0)
		snprintf(buf, n, "-");
	return buf;
}

static const char *duration_s(uint64_t s, char *buf, size_t n)
{
	if (s > UINT64_MAX / 1000000000ULL || zt_duration_format(s * 1000000000ULL, buf, n) < 0)
		snprintf(buf, n, "%llus", (unsigned long long)s);
	return buf;
}

/* "never", "expired", or "in 9m58s (2026-11-22T23:10:00Z)". */
static const char *expiry(uint64_t expires_unix, bool expired, char *buf, size_t n)
{
	uint64_t now = zt_now_unix();
	char d[32], t[32];

	if (!expires_unix)
		snprintf(buf, n, "never");
	else if (expired || expires_unix <= now)
		snprintf(buf, n, "expired");
	else
		snprintf(buf, n, "in %s (%s)", duration_s(expires_unix - now, d, sizeof(d)),
			 iso_time(expires_unix, t, sizeof(t)));
	return buf;
}

static void print_json(const cbor_item_t *data)
{
	if (data)
		zt_cbor_to_json(data, stdout, true);
	else
		fputs("{}", stdout);
	fputc('\n', stdout);
}

/* A table: columns sized to their widest cell, numbers right-aligned. */
struct table {
	int ncols;
	const char *const *heads;
	const bool *right;
	char **cells; /* rows * ncols, malloc'd */
	size_t rows, cap;
};

static void table_add(struct table *t, ...)
{
	va_list ap;

	if (t->rows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * (size_t)t->ncols * sizeof(*nc));

		if (!nc)
			die_nomem();
		t->cells = nc;
		t->cap = ncap;
	}
	va_start(ap, t);
	for (int c = 0; c < t->ncols; c++) {
		char *s = strdup(va_arg(ap, const char *));

		if (!s)
			die_nomem();
		clean(s);
		t->cells[t->rows * (size_t)t->ncols + (size_t)c] = s;
	}
	va_end(ap);
	t->rows++;
}

static void table_print(struct table *t)
{
	size_t w[16] = { 0 };

	for (int c = 0; c < t->ncols; c++) {
		w[c] = width(t->heads[c]);
		for (size_t r = 0; r < t->rows; r++) {
			size_t cw = width(t->cells[r * (size_t)t->ncols + (size_t)c]);

			if (cw > w[c])
				w[c] = cw;
		}
	}
	for (size_t r = 0; r <= t->rows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s =
				r ? t->cells[(r - 1) * (size_t)t->ncols + (size_t)c] : t->heads[c];
			size_t pad = w[c] - width(s);
			bool last = c == t->ncols - 1;

			if (t->right[c])
				printf("%*s%s", (int)pad, "", s);
			else
				printf("%s%*s", s, last ? 0 : (int)pad, "");
			fputs(last ? "\n" : "  ", stdout);
		}
	}
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* ---- usage ---- */

static const struct cmd cmds[];

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
		"  block list                  what is blocked, why and until when\n"
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
		"  endpoint add --ifname VETH --ip ADDR --labels k=v --namespace NS\n"
		"                              enforce policy on a workload's veth\n"
		"  endpoint del ENDPOINT       stop enforcing on it\n"
		"  endpoint list               the endpoints and their identities\n"
		"  flows [--follow]            policy verdicts on new flows (--verdict denied)\n"
		"  audit verify [--db CONNINFO]\n"
		"                              check the audit trail's hash chain\n"
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

static int usage_err(const struct cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_err(const struct cmd *c, const char *fmt, ...)
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

/* ---- talking to the daemon ---- */

static int ctl_connect(struct ctl *ctl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = TIMEOUT_S };
	size_t len = strlen(ctl->sock);
	int fd, e;

	if (ctl->fd >= 0)
		return 0;
	if (len >= sizeof(sa.sun_path)) {
		e = ENAMETOOLONG;
		goto fail;
	}
	memcpy(sa.sun_path, ctl->sock, len + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		close(fd);
		goto fail;
	}
	/* A bulk import of a million entries takes seconds, not minutes. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ctl->fd = fd;
	return 0;
fail:
	fprintf(stderr,
		"ztctl: cannot connect to ztagent at %s: %s (is the daemon running? set --socket or ZTAGENT_SOCKET)\n",
		ctl->sock, strerror(e));
	return EXIT_UNREACHABLE;
}

static cbor_item_t *request(const char *op)
{
	cbor_item_t *m = zt_cbor_map();

	if (!m || zt_cbor_put_str(m, "op", op))
		die_nomem();
	return m;
}

static void put_str(cbor_item_t *m, const char *key, const char *v)
{
	if (zt_cbor_put_str(m, key, v))
		die_nomem();
}

static void put_u64(cbor_item_t *m, const char *key, uint64_t v)
{
	if (zt_cbor_put_u64(m, key, v))
		die_nomem();
}

/*
 * Sends req (consumed), waits for the reply. On success returns 0 with
 * *reply (the caller frees it) and *data (inside it, may be NULL); else an
 * exit code, the reason printed.
 */
static int call(struct ctl *ctl, cbor_item_t *req, cbor_item_t **reply, const cbor_item_t **data)
{
	char err[1024] = "", msg[1024];
	cbor_item_t *rep = NULL;
	bool ok = false;
	int r, rs;

	*reply = NULL;
	*data = NULL;
	r = ctl_connect(ctl);
	if (r) {
		cbor_decref(&req);
		return r;
	}
	rs = zt_msg_send(ctl->fd, req);
	cbor_decref(&req);
	if (rs < 0 && rs != -EPIPE && rs != -ECONNRESET) {
		fprintf(stderr, "ztctl: cannot send the request to ztagent at %s: %s\n", ctl->sock,
			rs == -ETIMEDOUT ? "timed out" : strerror(-rs));
		return rs == -EMSGSIZE ? EXIT_FAIL : EXIT_UNREACHABLE;
	}
	/* Even when the send failed, the daemon may have said why before it closed. */
	r = zt_msg_recv(ctl->fd, &rep, err, sizeof(err));
	if (r < 0) {
		if (r == -ETIMEDOUT)
			fprintf(stderr,
				"ztctl: ztagent at %s did not answer within %d s; it may be busy or stuck (check its log)\n",
				ctl->sock, TIMEOUT_S);
		else if (r == -ECONNRESET)
			fprintf(stderr,
				"ztctl: ztagent at %s closed the connection without an answer%s; check its log\n",
				ctl->sock, rs < 0 ? " (while the request was being sent)" : "");
		else
			fprintf(stderr, "ztctl: bad answer from ztagent at %s: %s\n", ctl->sock,
				err);
		return EXIT_UNREACHABLE;
	}
	if (zt_cbor_get_bool(rep, "ok", &ok) < 0) {
		fprintf(stderr, "ztctl: ztagent at %s answered without an 'ok' field\n", ctl->sock);
		cbor_decref(&rep);
		return EXIT_FAIL;
	}
	if (!ok) {
		str_of(rep, "error", msg, sizeof(msg), "the daemon refused without saying why");
		fprintf(stderr, "ztctl: %s\n", msg);
		cbor_decref(&rep);
		return EXIT_FAIL;
	}
	*reply = rep;
	*data = zt_cbor_get(rep, "data");
	return EXIT_OK;
}

/* ---- argument checks ---- */

static bool one_of(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* Validates a CIDR argument and writes its normalized form; exit code on error. */
static int cidr_arg(const struct cmd *c, const char *s, char *norm, size_t n)
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
	{ "from", required_argument, NULL, 'r' },
	{ "to", required_argument, NULL, 't' },
	{ "port", required_argument, NULL, 'p' },
	{ "follow", no_argument, NULL, 'w' },
	{ "verdict", required_argument, NULL, 'v' },
	{ "db", required_argument, NULL, 'D' },
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
		case 'D':
			o->db = optarg;
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

/* ---- status ---- */

static int run_status(struct ctl *ctl, struct opts *o)
{
	static const char *const if_heads[] = { "INTERFACE", "MODE", "PROG ID", "ATTACHED" };
	static const bool if_right[] = { false, false, true, false };
	static const char *const map_heads[] = { "MAP", "ENTRIES", "MAX" };
	static const bool map_right[] = { false, true, true };
	static const char *const ctr_heads[] = { "ACTION", "REASON", "PACKETS", "BYTES" };
	static const bool ctr_right[] = { false, false, true, true };
	const cbor_item_t *d, *a, *ev;
	cbor_item_t *reply;
	char b1[256], b2[64], b3[32], b4[32];
	int r = call(ctl, request(ZT_OP_STATUS), &reply, &d);

	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
		cbor_decref(&reply);
		return EXIT_OK;
	}
	printf("node:       %s\n", str_of(d, "node", b1, sizeof(b1), "-"));
	printf("agent:      ztagent %s, pid %llu, up %s\n",
	       str_of(d, "version", b2, sizeof(b2), "?"), (unsigned long long)u64_of(d, "pid"),
	       duration_s(u64_of(d, "uptime_s"), b3, sizeof(b3)));
	printf("bpffs:      %s\n", str_of(d, "bpffs", b1, sizeof(b1), "-"));
	a = zt_cbor_get(d, "programs");
	printf("programs:  ");
	for (size_t i = 0; i < arr_len(a); i++)
		printf(" %s (id %llu)%s", str_of(arr_at(a, i), "name", b1, sizeof(b1), "?"),
		       (unsigned long long)u64_of(arr_at(a, i), "id"),
		       i + 1 < arr_len(a) ? "," : "");
	printf("%s\n", arr_len(a) ? "" : " none loaded");

	a = zt_cbor_get(d, "interfaces");
	printf("\n");
	if (!arr_len(a)) {
		printf("interfaces: none (set xdp.interfaces in the configuration)\n");
	} else {
		struct table t = { .ncols = 4, .heads = if_heads, .right = if_right };

		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *it = arr_at(a, i);

			snprintf(b3, sizeof(b3), "%llu", (unsigned long long)u64_of(it, "prog_id"));
			table_add(&t, str_of(it, "name", b1, sizeof(b1), "?"),
				  str_of(it, "mode", b2, sizeof(b2), "?"), b3,
				  bool_of(it, "attached") ? "yes" : "NO (see the daemon's log)");
		}
		table_print(&t);
		table_free(&t);
	}

	a = zt_cbor_get(d, "maps");
	if (arr_len(a)) {
		struct table t = { .ncols = 3, .heads = map_heads, .right = map_right };

		printf("\n");
		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *it = arr_at(a, i);

			snprintf(b3, sizeof(b3), "%llu", (unsigned long long)u64_of(it, "entries"));
			snprintf(b4, sizeof(b4), "%llu",
				 (unsigned long long)u64_of(it, "max_entries"));
			table_add(&t, str_of(it, "name", b1, sizeof(b1), "?"), b3, b4);
		}
		table_print(&t);
		table_free(&t);
	}

	a = zt_cbor_get(d, "counters");
	printf("\n");
	if (!arr_len(a)) {
		printf("counters:   no packets seen yet\n");
	} else {
		struct table t = { .ncols = 4, .heads = ctr_heads, .right = ctr_right };

		for (size_t i = 0; i < arr_len(a); i++) {
			const cbor_item_t *it = arr_at(a, i);

			snprintf(b3, sizeof(b3), "%llu", (unsigned long long)u64_of(it, "packets"));
			snprintf(b4, sizeof(b4), "%llu", (unsigned long long)u64_of(it, "bytes"));
			table_add(&t, str_of(it, "action", b2, sizeof(b2), "?"),
				  str_of(it, "reason", b1, sizeof(b1), "?"), b3, b4);
		}
		table_print(&t);
		table_free(&t);
	}

	ev = zt_cbor_get(d, "events");
	printf("\nevents:     emitted %llu, lost %llu, suppressed %llu, received %llu\n",
	       (unsigned long long)u64_of(ev, "emitted"), (unsigned long long)u64_of(ev, "lost"),
	       (unsigned long long)u64_of(ev, "suppressed"),
	       (unsigned long long)u64_of(ev, "received"));
	cbor_decref(&reply);
	return EXIT_OK;
}

/* ---- block / allow ---- */

static int run_block_add(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char cidr[ZT_CIDR_STRLEN], shown[ZT_CIDR_STRLEN], t[32], dur[32];
	uint64_t expires;
	int r = cidr_arg(o->cmd, o->args[0], cidr, sizeof(cidr));

	if (r)
		return r;
	req = request(ZT_OP_BLOCK_ADD);
	put_str(req, "cidr", cidr);
	put_u64(req, "ttl_s", o->ttl_s);
	if (o->reason)
		put_str(req, "reason", o->reason);
	if (o->kind)
		put_str(req, "kind", o->kind);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
	} else {
		expires = u64_of(d, "expires_unix");
		str_of(d, "cidr", shown, sizeof(shown), cidr);
		if (o->ttl_s)
			printf("blocked %s (expires in %s, at %s)%s\n", shown,
			       duration_s(o->ttl_s, dur, sizeof(dur)),
			       iso_time(expires, t, sizeof(t)),
			       bool_of(d, "replaced") ? "; it replaced the previous entry" : "");
		else
			printf("blocked %s (never expires; 'ztctl block del %s' removes it)%s\n",
			       shown, shown,
			       bool_of(d, "replaced") ? "; it replaced the previous entry" : "");
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

/* Prints "<before> CIDR<after>" when done. */
static int run_del(struct ctl *ctl, struct opts *o, const char *op, const char *before,
		   const char *after)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char cidr[ZT_CIDR_STRLEN], shown[ZT_CIDR_STRLEN];
	int r = cidr_arg(o->cmd, o->args[0], cidr, sizeof(cidr));

	if (r)
		return r;
	req = request(op);
	put_str(req, "cidr", cidr);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("%s %s%s\n", before, str_of(d, "cidr", shown, sizeof(shown), cidr), after);
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_block_del(struct ctl *ctl, struct opts *o)
{
	return run_del(ctl, o, ZT_OP_BLOCK_DEL, "unblocked", "");
}

static int run_block_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = {
		"CIDR", "KIND", "SOURCE", "REASON", "ADDED", "EXPIRES"
	};
	static const bool right[6] = { false };
	struct table t = { .ncols = 6, .heads = heads, .right = right };
	const cbor_item_t *d, *entries;
	cbor_item_t *req = request(ZT_OP_BLOCK_LIST), *reply;
	uint64_t total, shown;
	int r;

	put_u64(req, "limit", o->limit);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	entries = zt_cbor_get(d, "entries");
	total = u64_of(d, "total");
	shown = arr_len(entries);
	if (ctl->json) {
		print_json(d);
	} else if (!shown) {
		printf("the blocklist is empty\n");
	} else {
		for (size_t i = 0; i < shown; i++) {
			const cbor_item_t *e = arr_at(entries, i);
			char cidr[64], kind[32], src[64], reason[ZT_NOTE_LEN * 2], added[32],
				exp[80];

			str_of(e, "source", src, sizeof(src), "?");
			if (strcmp(src, "feed") == 0)
				snprintf(src, sizeof(src), "feed:%llu",
					 (unsigned long long)u64_of(e, "feed_id"));
			str_of(e, "reason", reason, sizeof(reason), "");
			table_add(&t, str_of(e, "cidr", cidr, sizeof(cidr), "?"),
				  str_of(e, "kind", kind, sizeof(kind), "?"), src,
				  reason[0] ? reason : "-",
				  iso_time(u64_of(e, "created_unix"), added, sizeof(added)),
				  expiry(u64_of(e, "expires_unix"), bool_of(e, "expired"), exp,
					 sizeof(exp)));
		}
		table_print(&t);
		table_free(&t);
	}
	/* Entries may also expire between count and listing: only a limit truncates. */
	if (o->limit && total > shown)
		fprintf(ctl->json ? stderr : stdout, "... and %llu more (use --limit 0 for all)\n",
			(unsigned long long)(total - shown));
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_allow_add(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char cidr[ZT_CIDR_STRLEN], shown[ZT_CIDR_STRLEN];
	int r = cidr_arg(o->cmd, o->args[0], cidr, sizeof(cidr));

	if (r)
		return r;
	req = request(ZT_OP_ALLOW_ADD);
	put_str(req, "cidr", cidr);
	if (o->reason)
		put_str(req, "reason", o->reason);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("allowed %s (its traffic passes the XDP guard, even when blocklisted)\n",
		       str_of(d, "cidr", shown, sizeof(shown), cidr));
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_allow_del(struct ctl *ctl, struct opts *o)
{
	return run_del(ctl, o, ZT_OP_ALLOW_DEL, "removed", " from the allowlist");
}

static int run_allow_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "CIDR", "REASON", "ADDED" };
	static const bool right[3] = { false };
	struct table t = { .ncols = 3, .heads = heads, .right = right };
	const cbor_item_t *d, *entries;
	cbor_item_t *reply;
	int r = call(ctl, request(ZT_OP_ALLOW_LIST), &reply, &d);

	if (r)
		return r;
	entries = zt_cbor_get(d, "entries");
	if (ctl->json) {
		print_json(d);
	} else if (!arr_len(entries)) {
		printf("the allowlist is empty\n");
	} else {
		for (size_t i = 0; i < arr_len(entries); i++) {
			const cbor_item_t *e = arr_at(entries, i);
			char cidr[64], reason[ZT_NOTE_LEN * 2], added[32];

			str_of(e, "reason", reason, sizeof(reason), "");
			table_add(&t, str_of(e, "cidr", cidr, sizeof(cidr), "?"),
				  reason[0] ? reason : "-",
				  iso_time(u64_of(e, "created_unix"), added, sizeof(added)));
		}
		table_print(&t);
		table_free(&t);
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

/* ---- block import ---- */

struct import {
	struct ctl *ctl;
	struct opts *o;
	const char *file; /* as named on the command line */
	uint8_t *packed; /* the request being filled: ZT_PACKED_CIDR_LEN bytes per CIDR */
	size_t *lines; /* FILE line of each of its cidrs */
	size_t n;
	uint64_t added, replaced, invalid, requests;
	size_t reported;
};

static void report_bad(struct import *im, size_t line, const char *text, const char *why)
{
	char shown[80];

	im->invalid++;
	if (im->reported++ >= REPORT_MAX)
		return;
	snprintf(shown, sizeof(shown), "%s", text);
	clean(shown);
	fprintf(stderr, "ztctl: %s:%zu: '%s'%s: %s\n", im->file, line, shown,
		strlen(text) >= sizeof(shown) ? "..." : "", why);
}

/*
 * The daemon's errors name the record of its request ("packed record 7: why",
 * "item 7: '...': why"): give them the FILE:LINE they came from.
 */
static void report_daemon_error(struct import *im, const char *msg)
{
	unsigned long long item;
	int consumed = 0;

	if (im->reported++ >= REPORT_MAX)
		return;
	if (((sscanf(msg, "packed record %llu: %n", &item, &consumed) == 1 && consumed > 0) ||
	     (sscanf(msg, "item %llu: %n", &item, &consumed) == 1 && consumed > 0)) &&
	    item < im->n)
		fprintf(stderr, "ztctl: %s:%zu: %s\n", im->file, im->lines[item], msg + consumed);
	else
		fprintf(stderr, "ztctl: %s: %s\n", im->file, msg);
}

static int import_flush(struct import *im)
{
	const struct opts *o = im->o;
	const cbor_item_t *d, *errs;
	cbor_item_t *req, *reply;
	char msg[512];
	int r;

	if (!im->n)
		return EXIT_OK;
	req = request(ZT_OP_BLOCK_IMPORT);
	/* Binary records: the daemon decodes no CBOR item per CIDR. */
	if (zt_cbor_put(req, "packed",
			cbor_build_bytestring(im->packed, im->n * ZT_PACKED_CIDR_LEN)))
		die_nomem();
	put_u64(req, "ttl_s", o->ttl_s);
	if (o->reason)
		put_str(req, "reason", o->reason);
	if (o->kind)
		put_str(req, "kind", o->kind);
	if (o->source)
		put_str(req, "source", o->source);
	if (o->has_feed_id)
		put_u64(req, "feed_id", o->feed_id);
	r = call(im->ctl, req, &reply, &d);
	if (r) {
		if (r == EXIT_FAIL)
			fprintf(stderr,
				"ztctl: %s: the request with lines %zu to %zu was refused as a whole%s\n",
				im->file, im->lines[0], im->lines[im->n - 1],
				im->requests ? "; earlier lines were imported" : "");
		return r;
	}
	im->requests++;
	im->added += u64_of(d, "added");
	im->replaced += u64_of(d, "replaced");
	im->invalid += u64_of(d, "invalid");
	errs = zt_cbor_get(d, "errors");
	for (size_t i = 0; i < arr_len(errs); i++)
		if (zt_cbor_str(arr_at(errs, i), msg, sizeof(msg)) == 0) {
			clean(msg);
			report_daemon_error(im, msg);
		}
	cbor_decref(&reply);
	im->n = 0;
	return EXIT_OK;
}

static int run_block_import(struct ctl *ctl, struct opts *o)
{
	struct import im = { .ctl = ctl, .o = o, .file = o->args[0] };
	bool from_stdin = strcmp(im.file, "-") == 0;
	char line[IMPORT_LINE_MAX + 2];
	size_t lineno = 0;
	int r = EXIT_OK;
	FILE *f;

	f = from_stdin ? stdin : fopen(im.file, "re");
	if (!f) {
		fprintf(stderr, "ztctl: cannot open %s: %s\n", im.file, strerror(errno));
		return EXIT_FAIL;
	}
	if (from_stdin)
		im.file = "<stdin>";
	im.lines = malloc(IMPORT_CHUNK * sizeof(*im.lines));
	im.packed = malloc((size_t)IMPORT_CHUNK * ZT_PACKED_CIDR_LEN);
	if (!im.lines || !im.packed)
		die_nomem();
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *s = line, *end;
		struct zt_cidr c;
		uint8_t *rec;

		lineno++;
		if (len && line[len - 1] != '\n' && !feof(f)) {
			int ch;

			/* Longer than any CIDR: skip the rest of the line. */
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			report_bad(&im, lineno, line, "line too long to be a CIDR");
			continue;
		}
		s += strspn(s, " \t");
		end = s + strcspn(s, "#\r\n");
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = '\0';
		if (!*s)
			continue;
		if (zt_cidr_parse(s, &c, NULL) < 0) {
			report_bad(&im, lineno, s, "not an IPv4/IPv6 address or prefix");
			continue;
		}
		rec = im.packed + im.n * ZT_PACKED_CIDR_LEN;
		rec[0] = c.family == AF_INET ? 4 : 6;
		rec[1] = c.prefixlen;
		memcpy(rec + 2, c.addr, 16);
		im.lines[im.n++] = lineno;
		if (im.n == IMPORT_CHUNK) {
			r = import_flush(&im);
			if (r)
				goto out;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "ztctl: reading %s: %s\n", im.file, strerror(errno));
		r = EXIT_FAIL;
		goto out;
	}
	r = import_flush(&im);
	if (r)
		goto out;
	if (im.reported > REPORT_MAX)
		fprintf(stderr, "ztctl: %s: ... %zu more problems not shown\n", im.file,
			im.reported - REPORT_MAX);
	if (ctl->json)
		printf("{\n  \"added\": %llu,\n  \"replaced\": %llu,\n  \"invalid\": %llu\n}\n",
		       (unsigned long long)im.added, (unsigned long long)im.replaced,
		       (unsigned long long)im.invalid);
	else if (!im.requests && !im.invalid)
		printf("%s has no CIDRs: nothing imported\n", im.file);
	else
		printf("imported %s: %llu added, %llu replaced, %llu invalid%s\n", im.file,
		       (unsigned long long)im.added, (unsigned long long)im.replaced,
		       (unsigned long long)im.invalid,
		       im.invalid ? " (skipped; see the messages above)" : "");
	r = im.invalid ? EXIT_FAIL : EXIT_OK;
out:
	free(im.packed);
	free(im.lines);
	if (!from_stdin)
		fclose(f);
	return r;
}

/* ---- detach ---- */

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int run_detach(struct ctl *ctl, struct opts *o)
{
	struct timeval tv = { .tv_sec = DETACH_WAIT_S };
	const cbor_item_t *d;
	cbor_item_t *reply;
	char bpffs[PATH_MAX], pin[PATH_MAX + 32], buf[256];
	bool pinned;
	ssize_t n;
	int r = call(ctl, request(ZT_OP_DETACH), &reply, &d);

	if (r)
		return r;
	str_of(d, "bpffs", bpffs, sizeof(bpffs), "");
	cbor_decref(&reply);
	if (!ctl->json) {
		printf("ztagent is detaching: it removes its XDP programs from every interface,\n"
		       "then its pinned maps (every block and allow entry) under\n"
		       "%s, and exits.\n",
		       bpffs[0] ? bpffs : "its bpffs directory");
		fflush(stdout);
	}
	/* The daemon closes the connection as it leaves its loop... */
	setsockopt(ctl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	do
		n = read(ctl->fd, buf, sizeof(buf));
	while (n > 0 || (n < 0 && errno == EINTR));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		fprintf(stderr,
			"ztctl: ztagent is still running %d s after accepting the detach; check its log\n",
			DETACH_WAIT_S);
		return EXIT_FAIL;
	}
	/* ...and removes its pins after that. */
	snprintf(pin, sizeof(pin), "%s/%s", bpffs, ZT_PIN_BLOCK_V4);
	pinned = bpffs[0] && exists(pin);
	for (int i = 0; pinned && i < DETACH_WAIT_S * 10; i++) {
		usleep(100000);
		pinned = exists(pin);
	}
	if (pinned) {
		fprintf(stderr,
			"ztctl: ztagent exited but %s is still pinned after %d s; check its log, or run 'ztagent --detach'\n",
			pin, DETACH_WAIT_S);
		return EXIT_FAIL;
	}
	if (ctl->json) {
		cbor_item_t *m = zt_cbor_map();

		if (!m || zt_cbor_put_bool(m, "detached", true) ||
		    zt_cbor_put_str(m, "bpffs", bpffs))
			die_nomem();
		print_json(m);
		cbor_decref(&m);
	} else {
		printf("done: ztagent has detached and exited; nothing is enforced on this node\n"
		       "until it starts again.\n");
	}
	return EXIT_OK;
}

/* ---- commands ---- */

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

static void labels_text(const cbor_item_t *m, char *buf, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	if (!m || !cbor_isa_map(m))
		return;
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		struct cbor_pair p = cbor_map_handle(m)[i];
		char k[320], v[80];

		if (zt_cbor_str(p.key, k, sizeof(k)) < 0 || zt_cbor_str(p.value, v, sizeof(v)) < 0)
			continue;
		o += (size_t)snprintf(buf + o, o < n ? n - o : 0, "%s%s=%s", i ? "," : "", k, v);
	}
	if (o >= n && n > 4)
		memcpy(buf + n - 4, "...", 4);
}

static int run_endpoint_add(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char ns[256], nm[256], name[520], ip[1024], lbl[4096];
	int r;

	if (!o->ifname)
		return usage_err(o->cmd, "--ifname is required");
	if (!o->ip)
		return usage_err(o->cmd, "--ip is required");
	req = request(ZT_OP_ENDPOINT_ADD);
	put_str(req, "ifname", o->ifname);
	put_str(req, "ip", o->ip);
	if (o->labels)
		put_str(req, "labels", o->labels);
	if (o->ns)
		put_str(req, "namespace", o->ns);
	if (o->name)
		put_str(req, "name", o->name);
	if (o->ns_labels)
		put_str(req, "namespace_labels", o->ns_labels);
	if (o->ports)
		put_str(req, "ports", o->ports);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json) {
		print_json(d);
	} else {
		snprintf(name, sizeof(name), "%s/%s", str_of(d, "namespace", ns, sizeof(ns), "?"),
			 str_of(d, "name", nm, sizeof(nm), "?"));
		labels_text(zt_cbor_get(d, "labels"), lbl, sizeof(lbl));
		printf("endpoint %s on %s (ip %s, identity %llu, labels %s): enforced\n", name,
		       o->ifname, str_of(d, "ip", ip, sizeof(ip), "?"),
		       (unsigned long long)u64_of(d, "identity"), lbl[0] ? lbl : "none");
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_endpoint_del(struct ctl *ctl, struct opts *o)
{
	const cbor_item_t *d;
	cbor_item_t *req, *reply;
	char a[300], b[64];
	const char *which = o->nargs ? o->args[0] : o->ifname;
	int r;

	if (!which)
		return usage_err(o->cmd,
				 "say which endpoint: NAMESPACE/NAME, NAME or --ifname VETH");
	if (o->nargs && o->ifname)
		return usage_err(o->cmd, "give the endpoint or --ifname, not both");
	req = request(ZT_OP_ENDPOINT_DEL);
	put_str(req, "endpoint", which);
	r = call(ctl, req, &reply, &d);
	if (r)
		return r;
	if (ctl->json)
		print_json(d);
	else
		printf("endpoint %s removed; %s carries no ztagent program any more\n",
		       str_of(d, "endpoint", a, sizeof(a), which),
		       str_of(d, "ifname", b, sizeof(b), "?"));
	cbor_decref(&reply);
	return EXIT_OK;
}

static int run_endpoint_list(struct ctl *ctl, struct opts *o)
{
	static const char *const heads[] = { "ENDPOINT", "INTERFACE", "IP", "IDENTITY", "LABELS" };
	static const bool right[5] = { false, false, false, true, false };
	struct table t = { .ncols = 5, .heads = heads, .right = right };
	const cbor_item_t *d, *eps;
	cbor_item_t *reply;
	int r = call(ctl, request(ZT_OP_ENDPOINT_LIST), &reply, &d);

	if (r)
		return r;
	eps = zt_cbor_get(d, "endpoints");
	if (ctl->json) {
		print_json(d);
	} else if (!arr_len(eps)) {
		printf("no endpoints (add one with 'ztctl endpoint add')\n");
	} else {
		for (size_t i = 0; i < arr_len(eps); i++) {
			const cbor_item_t *e = arr_at(eps, i);
			char ns[80], name[260], q[340], ifn[32], ip[1024], id[24], lbl[4096];

			snprintf(q, sizeof(q), "%s/%s", str_of(e, "namespace", ns, sizeof(ns), "?"),
				 str_of(e, "name", name, sizeof(name), "?"));
			snprintf(id, sizeof(id), "%llu", (unsigned long long)u64_of(e, "identity"));
			labels_text(zt_cbor_get(e, "labels"), lbl, sizeof(lbl));
			table_add(&t, q, str_of(e, "ifname", ifn, sizeof(ifn), "?"),
				  str_of(e, "ip", ip, sizeof(ip), "?"), id, lbl[0] ? lbl : "-");
		}
		table_print(&t);
		table_free(&t);
	}
	cbor_decref(&reply);
	return EXIT_OK;
}

/* ---- policy ---- */

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

/* ---- audit ---- */

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

/* ---- flows ---- */

static volatile sig_atomic_t stop_follow;

static void on_stop(int sig)
{
	stop_follow = 1;
}

static void print_flow(struct ctl *ctl, const cbor_item_t *f)
{
	char t[40], v[16], p[16], sa[64], da[64], sw[300], dw[300], rule[300], dir[16], ifn[32];

	if (ctl->json) {
		zt_cbor_to_json(f, stdout, false);
		printf("\n");
		return;
	}
	str_of(f, "time", t, sizeof(t), "?");
	str_of(f, "verdict", v, sizeof(v), "?");
	str_of(f, "protocol", p, sizeof(p), "?");
	str_of(f, "src", sa, sizeof(sa), "?");
	str_of(f, "dst", da, sizeof(da), "?");
	str_of(f, "src_workload", sw, sizeof(sw), "?");
	str_of(f, "dst_workload", dw, sizeof(dw), "?");
	str_of(f, "rule", rule, sizeof(rule), "?");
	str_of(f, "direction", dir, sizeof(dir), "?");
	str_of(f, "interface", ifn, sizeof(ifn), "?");
	printf("%s %-7s %s %s:%llu (%s, id %llu) -> %s:%llu (%s, id %llu) %s on %s%s: %s\n", t, v,
	       p, sa, (unsigned long long)u64_of(f, "sport"), sw,
	       (unsigned long long)u64_of(f, "src_identity"), da,
	       (unsigned long long)u64_of(f, "dport"), dw,
	       (unsigned long long)u64_of(f, "dst_identity"), dir, ifn,
	       bool_of(f, "revoked") ? " (revoked)" : "", rule);
}

static int run_flows(struct ctl *ctl, struct opts *o)
{
	uint64_t after = 0;
	bool first = true;

	if (o->follow) {
		struct sigaction sa = { .sa_handler = on_stop };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		setvbuf(stdout, NULL, _IOLBF, 0);
	}
	do {
		const cbor_item_t *d, *flows;
		cbor_item_t *req = request(ZT_OP_FLOWS_RECENT), *reply;
		uint64_t missed;
		int r;

		put_u64(req, "after", after);
		put_u64(req, "limit", o->limit ? o->limit : 10000);
		if (o->verdict)
			put_str(req, "verdict", o->verdict);
		r = call(ctl, req, &reply, &d);
		if (r)
			return r;
		flows = zt_cbor_get(d, "flows");
		missed = u64_of(d, "missed");
		if (missed && !first)
			fprintf(stderr,
				"ztctl: %llu verdicts were overwritten before they could be shown\n",
				(unsigned long long)missed);
		/* What the daemon still holds (oldest first), then, with --follow, what comes. */
		for (size_t i = 0; i < arr_len(flows); i++)
			print_flow(ctl, arr_at(flows, i));
		after = u64_of(d, "last");
		cbor_decref(&reply);
		first = false;
		if (o->follow && !stop_follow)
			usleep(100000);
	} while (o->follow && !stop_follow);
	return EXIT_OK;
}

static const struct cmd cmds[] = {
	{ "status", "ztctl status [-o json]",
	  "Shows the node, the daemon (version, pid, uptime), the XDP program and the\n"
	  "interfaces it is attached to, how full each map is, the packet counters by\n"
	  "action and reason (non-zero ones), and the drop-event counters.\n"
	  "\n"
	  "A reason you did not expect (e.g. malformed-ipv4) is counted, never silent:\n"
	  "'drop blocklist' packets came from blocked sources, 'pass block-expired'\n"
	  "from blocks whose TTL ran out before the daemon swept them.\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl status\n"
	  "  ztctl status -o json | jq '.counters'\n",
	  0, 0, 0, NULL, run_status },
	{ "block add", "ztctl block add CIDR [--ttl DURATION] [--reason TEXT] [--kind KIND]",
	  "Drops every packet whose source address is inside CIDR, at the node's uplinks,\n"
	  "before the kernel's network stack sees it. Takes effect at once. Adding a CIDR\n"
	  "that is already blocked replaces its TTL, reason and kind. Sources on the\n"
	  "allowlist are never dropped.\n"
	  "\n"
	  "  CIDR             198.51.100.7 (one host), 203.0.113.0/24, 2001:db8:bad::/48;\n"
	  "                   host bits are cleared (203.0.113.9/24 -> 203.0.113.0/24)\n"
	  "  --ttl DURATION   remove the block after DURATION: 90s, 10m, 1h30m, 2d;\n"
	  "                   1s or more, rounded up to whole seconds; 0 = never (default)\n"
	  "  --reason TEXT    why, for whoever reads 'ztctl block list' (63 bytes at most)\n"
	  "  --kind KIND      operator (default), threat-intel, scan, flood, anomaly,\n"
	  "                   policy\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl block add 203.0.113.9 --ttl 1h --reason \"ssh brute force, ticket 4711\"\n"
	  "  ztctl block add 2001:db8:bad::/48 --kind threat-intel\n",
	  OPT_TTL | OPT_REASON | OPT_KIND, 1, 1, "CIDR", run_block_add },
	{ "block del", "ztctl block del CIDR",
	  "Removes the blocklist entry for exactly CIDR (as 'ztctl block list' shows it);\n"
	  "traffic from it flows again at once. Entries inside or around CIDR stay.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl block del 203.0.113.0/24\n",
	  0, 1, 1, "CIDR", run_block_del },
	{ "block list", "ztctl block list [--limit N] [-o json]",
	  "Lists the blocklist, sorted by address: CIDR, kind, source (manual, feed:ID,\n"
	  "detector), reason, when it was added and when it expires (UTC).\n"
	  "\n"
	  "  --limit N   show at most N entries (default 10000; 0 = all)\n"
	  "  -o json     the daemon's answer as JSON, for scripts\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl block list | grep 203.0.113.\n"
	  "  ztctl block list --limit 0 -o json > blocklist.json\n",
	  OPT_LIMIT, 0, 0, NULL, run_block_list },
	{ "block import",
	  "ztctl block import FILE [--ttl D] [--reason T] [--kind K] [--source S]\n"
	  "                          [--feed-id N]",
	  "Blocks every CIDR in FILE, one per line; '#' starts a comment, blank lines are\n"
	  "skipped, and FILE '-' reads standard input. Lines that are not a CIDR are\n"
	  "reported as FILE:LINE and skipped, the others are imported, and the exit code\n"
	  "is then 1. CIDRs go to the daemon 262144 at a time; each batch is applied\n"
	  "whole or, when the maps are full, not at all.\n"
	  "\n"
	  "  --ttl D        entries expire after D: 90s, 10m, 1h30m, 2d (default: never)\n"
	  "  --reason T     free text stored with every entry (63 bytes at most)\n"
	  "  --kind K       operator (default), threat-intel, scan, flood, anomaly, policy\n"
	  "  --source S     manual (default), feed, detector\n"
	  "  --feed-id N    with --source feed: which feed (shown as feed:N)\n"
	  "\n"
	  "Examples:\n"
	  "  ztctl block import /var/lib/feeds/drop.txt --kind threat-intel \\\n"
	  "        --source feed --feed-id 3 --ttl 1d\n"
	  "  grep -v '^10\\.' scanners.txt | ztctl block import - --kind scan --ttl 6h\n",
	  OPT_TTL | OPT_REASON | OPT_KIND | OPT_SOURCE | OPT_FEED_ID, 1, 1, "FILE",
	  run_block_import },
	{ "allow add", "ztctl allow add CIDR [--reason TEXT]",
	  "Lets every packet whose source is inside CIDR through the XDP guard, even when\n"
	  "the source is also blocklisted: the allowlist wins. Use it for monitoring,\n"
	  "your own scanners, or to unblock part of a blocked range.\n"
	  "\n"
	  "  --reason TEXT   why, 63 bytes at most\n"
	  "\n"
	  "Example:\n"
	  "  ztctl allow add 198.51.100.0/28 --reason \"monitoring probes\"\n",
	  OPT_REASON, 1, 1, "CIDR", run_allow_add },
	{ "allow del", "ztctl allow del CIDR",
	  "Removes the allowlist entry for exactly CIDR; blocks that cover it apply again.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl allow del 198.51.100.0/28\n",
	  0, 1, 1, "CIDR", run_allow_del },
	{ "allow list", "ztctl allow list [-o json]",
	  "Lists the allowlist: CIDR, reason, when it was added (UTC).\n"
	  "\n"
	  "Example:\n"
	  "  ztctl allow list -o json\n",
	  0, 0, 0, NULL, run_allow_list },
	{ "detach", "ztctl detach",
	  "Asks the daemon to remove its XDP programs from every interface, delete its\n"
	  "pinned maps (every block and allow entry) and exit. Nothing is enforced on the\n"
	  "node afterwards. Stopping the daemon (SIGTERM) instead keeps enforcement in\n"
	  "place. ztctl waits until the daemon is done.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl detach\n",
	  0, 0, 0, NULL, run_detach },
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
	{ "endpoint add",
	  "ztctl endpoint add --ifname VETH --ip ADDR[,ADDR] --labels k=v,... --namespace NS",
	  "Registers a workload: VETH is the host side of its veth pair. The TC program\n"
	  "is attached to it in both directions after the policy that knows the new\n"
	  "endpoint is in the kernel, so it is enforced from its first packet.\n"
	  "Endpoints survive a daemon restart; one whose interface disappears is removed.\n"
	  "\n"
	  "Options:\n"
	  "  --ifname VETH              host-side interface (required)\n"
	  "  --ip ADDR[,ADDR]           the workload's addresses, IPv4 and/or IPv6 (required)\n"
	  "  --labels k=v,...           pod labels\n"
	  "  --namespace NS             namespace (default \"default\")\n"
	  "  --name NAME                endpoint name (default: the interface name)\n"
	  "  --namespace-labels k=v,... labels of the namespace, for namespaceSelector\n"
	  "                             (kubernetes.io/metadata.name=NS is always there)\n"
	  "  --ports name=N/PROTO,...   named container ports, for policies that name ports\n"
	  "\n"
	  "Example:\n"
	  "  ztctl endpoint add --ifname veth-web --ip 198.18.1.2 --labels app=web --namespace prod\n",
	  OPT_EP, 0, 0, NULL, run_endpoint_add },
	{ "endpoint del", "ztctl endpoint del NAMESPACE/NAME | NAME | --ifname VETH",
	  "Removes an endpoint: its TC programs are detached and the policy recompiled.\n", OPT_EP,
	  0, 1, "ENDPOINT", run_endpoint_del },
	{ "endpoint list", "ztctl endpoint list [-o json]",
	  "Shows every endpoint: name, interface, addresses, security identity, labels.\n", 0, 0, 0,
	  NULL, run_endpoint_list },
	{ "audit verify", "ztctl audit verify [--db CONNINFO]",
	  "Recomputes the SHA-256 chain of the audit trail (table audit_log) and says\n"
	  "whether it is intact, or which row was changed, deleted or inserted.\n"
	  "The database is --db, else $ZTAGENT_DB, else the running agent's database.url.\n"
	  "Exit codes: 0 intact, 1 broken, 2 the database cannot be read or no database.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl audit verify --db 'host=/run/postgresql dbname=ztagent'\n",
	  OPT_DB, 0, 0, NULL, run_audit_verify },
	{ "flows", "ztctl flows [--follow] [--verdict allowed|denied|audit] [--limit N] [-o json]",
	  "Shows policy verdicts on new flows (the daemon keeps the last 16384): time,\n"
	  "verdict, 5-tuple, both workloads and identities, direction, interface and the\n"
	  "rule or default-deny that decided. --follow (-f) keeps streaming until Ctrl-C;\n"
	  "-o json prints one JSON object per line.\n"
	  "\n"
	  "Example:\n"
	  "  ztctl flows --follow --verdict denied\n",
	  OPT_FOLLOW | OPT_VERDICT | OPT_LIMIT, 0, 0, NULL, run_flows },
};

static const struct cmd *find_cmd(const char *word1, const char *word2, int *words)
{
	char name[64];

	/* Two words first ("block add"), then one ("status"). */
	if (word2) {
		snprintf(name, sizeof(name), "%s %s", word1, word2);
		for (size_t i = 0; i < ZT_ARRAY_SIZE(cmds); i++)
			if (strcmp(cmds[i].name, name) == 0) {
				*words = 2;
				return &cmds[i];
			}
	}
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cmds); i++)
		if (strcmp(cmds[i].name, word1) == 0) {
			*words = 1;
			return &cmds[i];
		}
	return NULL;
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
	for (size_t i = 0; i < ZT_ARRAY_SIZE(cmds); i++)
		if (strncmp(cmds[i].name, group, strlen(group)) == 0 &&
		    cmds[i].name[strlen(group)] == ' ')
			fprintf(f, "  %s\n", cmds[i].usage);
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
		    strcmp(argv[0], "audit") == 0)
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
