// SPDX-License-Identifier: GPL-2.0-only
/* ztctl: the operator's CLI for ztagent, over the daemon's unix-socket API. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "apimsg.h"
#include "apiops.h"
#include "daemon.h"
#include "util.h"
#include "ztagent.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define IMPORT_CHUNK 262144

static const char *sock_path;
static bool json;

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: ztctl [--socket PATH] [-o json|table] COMMAND ...\n"
		"\n"
		"Talks to the ztagent daemon on this node.\n"
		"\n"
		"Commands:\n"
		"  status                          programs, interfaces, maps, counters\n"
		"  block add CIDR [--ttl D] [--reason TEXT] [--kind KIND]\n"
		"  block del CIDR\n"
		"  block list [--limit N]\n"
		"  block import FILE [--ttl D] [--reason T] [--kind K] [--source S] [--feed-id N]\n"
		"  allow add CIDR [--reason TEXT]\n"
		"  allow del CIDR\n"
		"  allow list\n"
		"  detach                          remove programs and pins; the daemon exits\n"
		"\n"
		"Options:\n"
		"  --socket PATH   the daemon's API socket (else $ZTAGENT_SOCKET, else %s)\n"
		"  -o json|table   output format (every listing and status)\n"
		"  -h, --help      this text; 'ztctl COMMAND --help' explains a command\n"
		"  --version       print the version\n"
		"\n"
		"Exit codes: 0 done, 1 the daemon refused, 2 usage error, 3 daemon unreachable.\n",
		ZT_DEFAULT_API_SOCKET);
}

struct cmd_help {
	const char *name;
	const char *text;
};

static const struct cmd_help helps[] = {
	{ "status", "Usage: ztctl status [-o json]\n"
		    "Shows the programs, the interfaces they are attached to, map fill levels,\n"
		    "the packet counters by action and reason, and ring-buffer event counts.\n" },
	{ "block add",
	  "Usage: ztctl block add CIDR [--ttl DURATION] [--reason TEXT] [--kind KIND]\n"
	  "Drops every packet whose source is inside CIDR at the uplinks (XDP).\n"
	  "  CIDR        198.51.100.7, 203.0.113.0/24, 2001:db8::/48 (a bare address is a host)\n"
	  "  --ttl D     remove the block after D (500ms, 45s, 10m, 1h30m, 2d); default: never\n"
	  "  --reason T  free text kept with the entry (63 bytes at most)\n"
	  "  --kind K    operator (default), threat-intel, scan, flood, anomaly, policy\n"
	  "Examples:\n"
	  "  ztctl block add 203.0.113.9 --ttl 1h --reason \"ssh brute force\"\n"
	  "  ztctl block add 2001:db8:bad::/48 --kind threat-intel\n" },
	{ "block del", "Usage: ztctl block del CIDR\n"
		       "Removes the blocklist entry for exactly CIDR (see 'ztctl block list').\n" },
	{ "block list", "Usage: ztctl block list [--limit N] [-o json]\n"
			"Lists the blocklist, sorted by address. --limit 0 lists everything\n"
			"(default 10000).\n" },
	{ "block import",
	  "Usage: ztctl block import FILE [--ttl D] [--reason T] [--kind K] [--source S] [--feed-id N]\n"
	  "Adds every CIDR in FILE (one per line; '#' comments and blank lines are\n"
	  "skipped; '-' reads standard input). Bad lines are reported with their line\n"
	  "numbers and skipped; the rest is applied, all or nothing per request.\n"
	  "  --source S  manual (default), feed, detector; --feed-id N names the feed\n"
	  "Example:\n"
	  "  ztctl block import /var/lib/feeds/spamhaus.txt --kind threat-intel --source feed --feed-id 3 --ttl 1d\n" },
	{ "allow add", "Usage: ztctl allow add CIDR [--reason TEXT]\n"
		       "Sources inside CIDR pass the XDP guard even when blocklisted.\n" },
	{ "allow del", "Usage: ztctl allow del CIDR\n" },
	{ "allow list", "Usage: ztctl allow list [-o json]\n" },
	{ "detach", "Usage: ztctl detach\n"
		    "Asks the daemon to remove its XDP programs and pinned maps and exit.\n"
		    "Enforcement stops: every block is gone.\n" },
};

static const char *help_of(const char *name)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(helps); i++)
		if (!strcmp(helps[i].name, name))
			return helps[i].text;
	return "";
}

static int usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	const char *h = help_of(cmd);

	fputs("ztctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (*h)
		fprintf(stderr, "%.*s", (int)(strchr(h, '\n') - h + 1), h);
	return EXIT_USAGE;
}

static int connect_daemon(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 30 };
	int fd;

	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ztctl: socket path too long: %s\n", sock_path);
		return -EXIT_UNREACHABLE;
	}
	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr,
			"ztctl: cannot connect to ztagent at %s: %s (is the daemon running? set --socket or ZTAGENT_SOCKET)\n",
			sock_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EXIT_UNREACHABLE;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Sends req (consumed) and returns 0 with *data (may be NULL) on success, or
 * an exit code after printing why.
 */
static int call_fd(int fd, cbor_item_t *req, cbor_item_t **reply_out, cbor_item_t **data)
{
	cbor_item_t *reply = NULL;
	char err[1024];
	bool ok = false;
	int r;

	*data = NULL;
	*reply_out = NULL;
	r = zt_msg_send(fd, req);
	cbor_decref(&req);
	if (r < 0) {
		fprintf(stderr, "ztctl: cannot send to ztagent at %s: %s\n", sock_path,
			strerror(-r));
		return EXIT_UNREACHABLE;
	}
	r = zt_msg_recv(fd, &reply, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ztctl: no valid reply from ztagent at %s: %s\n", sock_path, err);
		return EXIT_UNREACHABLE;
	}
	if (zt_cbor_get_bool(reply, "ok", &ok) < 0 || !ok) {
		char msg[1024] = "the daemon refused without a reason";

		zt_cbor_get_str(reply, "error", msg, sizeof(msg));
		fprintf(stderr, "ztctl: %s\n", msg);
		cbor_decref(&reply);
		return EXIT_REFUSED;
	}
	*reply_out = reply;
	*data = zt_cbor_get(reply, "data");
	return 0;
}

static int call(cbor_item_t *req, cbor_item_t **reply, cbor_item_t **data)
{
	int fd = connect_daemon(), r;

	if (fd < 0) {
		cbor_decref(&req);
		return -fd;
	}
	r = call_fd(fd, req, reply, data);
	close(fd);
	return r;
}

static cbor_item_t *request(const char *op)
{
	cbor_item_t *m = zt_cbor_map();

	if (!m || zt_cbor_put_str(m, "op", op)) {
		fprintf(stderr, "ztctl: out of memory\n");
		exit(1);
	}
	return m;
}

static void put_or_die(int r)
{
	if (r) {
		fprintf(stderr, "ztctl: out of memory\n");
		exit(1);
	}
}

static uint64_t u64_of(const cbor_item_t *m, const char *k)
{
	uint64_t v = 0;

	zt_cbor_get_u64(m, k, &v);
	return v;
}

static const char *str_of(const cbor_item_t *m, const char *k, char *buf, size_t n)
{
	if (zt_cbor_get_str(m, k, buf, n) < 0)
		snprintf(buf, n, "-");
	return buf;
}

static size_t arr_len(const cbor_item_t *a)
{
	return a && cbor_isa_array(a) ? cbor_array_size(a) : 0;
}

static cbor_item_t *arr_at(const cbor_item_t *a, size_t i)
{
	return cbor_array_handle(a)[i];
}

static const char *when(uint64_t unix_s, char *buf, size_t n)
{
	if (!unix_s || zt_time_format(unix_s, buf, n) < 0)
		snprintf(buf, n, "-");
	return buf;
}

static const char *expiry(uint64_t unix_s, char *buf, size_t n)
{
	uint64_t now = zt_now_unix();
	char d[32];

	if (!unix_s)
		return snprintf(buf, n, "never"), buf;
	if (unix_s <= now)
		return snprintf(buf, n, "expired"), buf;
	zt_duration_format((unix_s - now) * 1000000000ULL, d, sizeof(d));
	snprintf(buf, n, "in %s", d);
	return buf;
}

/* ---- commands ---- */

static int parse_cidr_arg(const char *cmd, const char *s, char *norm, size_t n)
{
	struct zt_cidr c;
	bool host_bits = false;

	if (zt_cidr_parse(s, &c, &host_bits) < 0)
		return usage_err(cmd, "'%s' is not an IPv4/IPv6 address or prefix", s);
	zt_cidr_format(&c, norm, n);
	if (host_bits)
		fprintf(stderr, "ztctl: note: %s has host bits set; using %s\n", s, norm);
	return 0;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

static int cmd_status(int argc, char **argv)
{
	cbor_item_t *reply, *d, *a;
	char b1[256], b2[64];
	int r;

	if (argc > 1)
		return usage_err("status", "unexpected argument '%s'", argv[1]);
	r = call(request(ZT_OP_STATUS), &reply, &d);
	if (r)
		return r;
	if (json) {
		zt_cbor_to_json(d, stdout, true);
		cbor_decref(&reply);
		return 0;
	}
	zt_duration_format(u64_of(d, "uptime_s") * 1000000000ULL, b2, sizeof(b2));
	printf("node:     %s\n", str_of(d, "node", b1, sizeof(b1)));
	printf("agent:    ztagent %s, pid %llu, up %s\n", str_of(d, "version", b1, sizeof(b1)),
	       (unsigned long long)u64_of(d, "pid"), b2);
	printf("bpffs:    %s\n", str_of(d, "bpffs", b1, sizeof(b1)));
	a = zt_cbor_get(d, "programs");
	for (size_t i = 0; i < arr_len(a); i++)
		printf("program:  %s (id %llu)\n", str_of(arr_at(a, i), "name", b1, sizeof(b1)),
		       (unsigned long long)u64_of(arr_at(a, i), "id"));
	printf("\nINTERFACE        MODE      PROG  ATTACHED\n");
	a = zt_cbor_get(d, "interfaces");
	for (size_t i = 0; i < arr_len(a); i++) {
		cbor_item_t *it = arr_at(a, i);
		bool att = false;

		zt_cbor_get_bool(it, "attached", &att);
		printf("%-16s %-9s %-5llu %s\n", str_of(it, "name", b1, sizeof(b1)),
		       str_of(it, "mode", b2, sizeof(b2)),
		       (unsigned long long)u64_of(it, "prog_id"), att ? "yes" : "NO");
	}
	printf("\nMAP                      ENTRIES        MAX\n");
	a = zt_cbor_get(d, "maps");
	for (size_t i = 0; i < arr_len(a); i++) {
		cbor_item_t *it = arr_at(a, i);

		printf("%-22s %9llu %10llu\n", str_of(it, "name", b1, sizeof(b1)),
		       (unsigned long long)u64_of(it, "entries"),
		       (unsigned long long)u64_of(it, "max_entries"));
	}
	printf("\nACTION  REASON               PACKETS          BYTES\n");
	a = zt_cbor_get(d, "counters");
	for (size_t i = 0; i < arr_len(a); i++) {
		cbor_item_t *it = arr_at(a, i);

		printf("%-7s %-18s %10llu %14llu\n", str_of(it, "action", b2, sizeof(b2)),
		       str_of(it, "reason", b1, sizeof(b1)),
		       (unsigned long long)u64_of(it, "packets"),
		       (unsigned long long)u64_of(it, "bytes"));
	}
	if (!arr_len(a))
		printf("(no packets seen yet)\n");
	a = zt_cbor_get(d, "events");
	printf("\nevents:   emitted %llu, lost %llu, suppressed %llu, received %llu\n",
	       (unsigned long long)u64_of(a, "emitted"), (unsigned long long)u64_of(a, "lost"),
	       (unsigned long long)u64_of(a, "suppressed"),
	       (unsigned long long)u64_of(a, "received"));
	cbor_decref(&reply);
	return 0;
}

enum {
	O_TTL = 1000,
	O_REASON,
	O_KIND,
	O_SOURCE,
	O_FEED_ID,
	O_LIMIT,
	O_OUTPUT,
};

static const struct option block_opts[] = {
	{ "ttl", required_argument, NULL, O_TTL },
	{ "reason", required_argument, NULL, O_REASON },
	{ "kind", required_argument, NULL, O_KIND },
	{ "source", required_argument, NULL, O_SOURCE },
	{ "feed-id", required_argument, NULL, O_FEED_ID },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "output", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

struct block_args {
	uint64_t ttl_s;
	const char *reason, *kind, *source;
	uint64_t feed_id, limit;
	bool has_feed;
	const char *pos[2];
	int npos;
};

static int parse_block_args(const char *cmd, int argc, char **argv, const char *allowed,
			    struct block_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->limit = 10000;
	optind = 0; /* glibc: 0 re-initializes getopt fully */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:h", block_opts, NULL)) != -1) {
		if (c != 'o' && c != 'h' && c != '?' && c != ':' &&
		    !strchr(allowed, c - O_TTL + 'a'))
			return usage_err(cmd, "option '%s' does not apply here", argv[optind - 1]);
		switch (c) {
		case O_TTL: {
			uint64_t ns;

			if (zt_duration_parse(optarg, &ns) < 0)
				return usage_err(
					cmd,
					"--ttl: '%s' is not a duration (500ms, 45s, 10m, 1h30m, 2d)",
					optarg);
			if (ns && ns < 1000000000ULL)
				return usage_err(cmd, "--ttl: %s is shorter than 1s", optarg);
			a->ttl_s = (ns + 999999999ULL) / 1000000000ULL;
			break;
		}
		case O_REASON:
			if (strlen(optarg) >= ZT_NOTE_LEN)
				return usage_err(cmd, "--reason: longer than %d bytes",
						 ZT_NOTE_LEN - 1);
			a->reason = optarg;
			break;
		case O_KIND:
			a->kind = optarg;
			break;
		case O_SOURCE:
			a->source = optarg;
			break;
		case O_FEED_ID:
			if (zt_parse_u64(optarg, &a->feed_id) < 0 || a->feed_id > UINT32_MAX)
				return usage_err(cmd, "--feed-id: '%s' is not a number up to %u",
						 optarg, UINT32_MAX);
			a->has_feed = true;
			break;
		case O_LIMIT:
			if (zt_parse_u64(optarg, &a->limit) < 0)
				return usage_err(cmd, "--limit: '%s' is not a whole number",
						 optarg);
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "table"))
				return usage_err(cmd, "-o: expected json or table, got '%s'",
						 optarg);
			json = !strcmp(optarg, "json");
			break;
		case 'h':
			fputs(help_of(cmd), stdout);
			exit(0);
		case ':':
			return usage_err(cmd, "option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_err(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (a->npos >= 1)
			return usage_err(cmd, "unexpected argument '%s'", argv[optind]);
		a->pos[a->npos++] = argv[optind];
	}
	return 0;
}

static int put_block_fields(cbor_item_t *req, const struct block_args *a)
{
	if (a->ttl_s)
		put_or_die(zt_cbor_put_u64(req, "ttl_s", a->ttl_s));
	if (a->reason)
		put_or_die(zt_cbor_put_str(req, "reason", a->reason));
	if (a->kind)
		put_or_die(zt_cbor_put_str(req, "kind", a->kind));
	if (a->source)
		put_or_die(zt_cbor_put_str(req, "source", a->source));
	if (a->has_feed)
		put_or_die(zt_cbor_put_u64(req, "feed_id", a->feed_id));
	return 0;
}

/* Letters of the options each command takes: a=ttl b=reason c=kind d=source e=feed-id f=limit */
static int cmd_add_del(const char *list, const char *verb, int argc, char **argv)
{
	char cmd[32], cidr[ZT_CIDR_STRLEN], b1[64], b2[64];
	bool is_block = !strcmp(list, "block"), is_add = !strcmp(verb, "add");
	cbor_item_t *req, *reply, *d;
	struct block_args a;
	int r;

	snprintf(cmd, sizeof(cmd), "%s %s", list, verb);
	r = parse_block_args(cmd, argc, argv, is_add ? (is_block ? "abc" : "b") : "", &a);
	if (r)
		return r;
	if (a.npos != 1)
		return usage_err(cmd, "missing CIDR");
	r = parse_cidr_arg(cmd, a.pos[0], cidr, sizeof(cidr));
	if (r)
		return r;
	req = request(is_block ? (is_add ? ZT_OP_BLOCK_ADD : ZT_OP_BLOCK_DEL) :
				 (is_add ? ZT_OP_ALLOW_ADD : ZT_OP_ALLOW_DEL));
	put_or_die(zt_cbor_put_str(req, "cidr", cidr));
	if (is_add)
		put_block_fields(req, &a);
	r = call(req, &reply, &d);
	if (r)
		return r;
	if (json) {
		zt_cbor_to_json(d, stdout, true);
	} else if (is_block && is_add) {
		uint64_t exp = u64_of(d, "expires_unix");

		printf("blocked %s", str_of(d, "cidr", cidr, sizeof(cidr)));
		if (exp)
			printf(" (expires %s, at %s)", expiry(exp, b1, sizeof(b1)),
			       when(exp, b2, sizeof(b2)));
		else
			printf(" (no expiry)");
		bool replaced = false;
		zt_cbor_get_bool(d, "replaced", &replaced);
		printf("%s\n", replaced ? "; replaced the earlier entry" : "");
	} else {
		printf("%s %s %s\n", is_add ? "allowed" : "removed",
		       str_of(d, "cidr", cidr, sizeof(cidr)),
		       is_add ? "(wins over the blocklist)" :
				(is_block ? "from the blocklist" : "from the allowlist"));
	}
	cbor_decref(&reply);
	return 0;
}

static int cmd_list(const char *list, int argc, char **argv)
{
	char cmd[32], b[6][128];
	bool is_block = !strcmp(list, "block");
	cbor_item_t *req, *reply, *d, *e;
	struct block_args a;
	int r;

	snprintf(cmd, sizeof(cmd), "%s list", list);
	r = parse_block_args(cmd, argc, argv, is_block ? "f" : "", &a);
	if (r)
		return r;
	if (a.npos)
		return usage_err(cmd, "unexpected argument '%s'", a.pos[0]);
	req = request(is_block ? ZT_OP_BLOCK_LIST : ZT_OP_ALLOW_LIST);
	if (is_block)
		put_or_die(zt_cbor_put_u64(req, "limit", a.limit));
	r = call(req, &reply, &d);
	if (r)
		return r;
	if (json) {
		zt_cbor_to_json(d, stdout, true);
		cbor_decref(&reply);
		return 0;
	}
	e = zt_cbor_get(d, "entries");
	if (is_block) {
		uint64_t total = u64_of(d, "total");

		printf("%-43s %-12s %-8s %-24s %-20s %s\n", "CIDR", "KIND", "SOURCE", "REASON",
		       "ADDED", "EXPIRES");
		for (size_t i = 0; i < arr_len(e); i++) {
			cbor_item_t *it = arr_at(e, i);
			char reason[ZT_NOTE_LEN + 2];

			str_of(it, "reason", reason, sizeof(reason));
			printf("%-43s %-12s %-8s %-24s %-20s %s\n", str_of(it, "cidr", b[0], 128),
			       str_of(it, "kind", b[1], 128), str_of(it, "source", b[2], 128),
			       reason[0] ? reason : "-",
			       when(u64_of(it, "created_unix"), b[3], 128),
			       expiry(u64_of(it, "expires_unix"), b[4], 128));
		}
		if (total > arr_len(e))
			printf("... and %llu more (use --limit 0 for all)\n",
			       (unsigned long long)(total - arr_len(e)));
		if (!total)
			printf("(the blocklist is empty)\n");
	} else {
		printf("%-43s %-24s %s\n", "CIDR", "REASON", "ADDED");
		for (size_t i = 0; i < arr_len(e); i++) {
			cbor_item_t *it = arr_at(e, i);
			char reason[ZT_NOTE_LEN + 2];

			str_of(it, "reason", reason, sizeof(reason));
			printf("%-43s %-24s %s\n", str_of(it, "cidr", b[0], 128),
			       reason[0] ? reason : "-",
			       when(u64_of(it, "created_unix"), b[1], 128));
		}
		if (!arr_len(e))
			printf("(the allowlist is empty)\n");
	}
	cbor_decref(&reply);
	return 0;
}

static int send_chunk(int fd, const struct block_args *a, const uint8_t *packed, size_t n,
		      uint64_t *added, uint64_t *replaced)
{
	cbor_item_t *req = request(ZT_OP_BLOCK_IMPORT), *reply, *d, *errs;
	cbor_item_t *bytes = cbor_build_bytestring(packed, n * ZT_PACKED_CIDR_LEN);
	char msg[512];
	int r;

	if (!bytes || zt_cbor_put(req, "packed", bytes))
		put_or_die(-ENOMEM);
	put_block_fields(req, a);
	r = call_fd(fd, req, &reply, &d);
	if (r)
		return r;
	*added += u64_of(d, "added");
	*replaced += u64_of(d, "replaced");
	errs = zt_cbor_get(d, "errors");
	for (size_t i = 0; i < arr_len(errs); i++)
		if (zt_cbor_str(arr_at(errs, i), msg, sizeof(msg)) == 0)
			fprintf(stderr, "ztctl: daemon: %s\n", msg);
	cbor_decref(&reply);
	return 0;
}

static int cmd_import(int argc, char **argv)
{
	struct block_args a;
	FILE *f;
	char *line = NULL;
	size_t cap = 0, lineno = 0, chunk_n = 0, invalid = 0;
	uint64_t added = 0, replaced = 0;
	uint8_t *packed, *rec;
	ssize_t n;
	int fd, r;

	r = parse_block_args("block import", argc, argv, "abcde", &a);
	if (r)
		return r;
	if (a.npos != 1)
		return usage_err("block import", "missing FILE");
	f = strcmp(a.pos[0], "-") ? fopen(a.pos[0], "re") : stdin;
	if (!f) {
		fprintf(stderr, "ztctl: cannot open %s: %s\n", a.pos[0], strerror(errno));
		return EXIT_USAGE;
	}
	packed = malloc((size_t)IMPORT_CHUNK * ZT_PACKED_CIDR_LEN);
	if (!packed)
		put_or_die(-ENOMEM);
	fd = connect_daemon();
	if (fd < 0) {
		free(packed);
		if (f != stdin)
			fclose(f);
		return -fd;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *s = line, *end;
		struct zt_cidr c;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		end = s + strcspn(s, "#\r\n");
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		*end = '\0';
		if (!*s)
			continue;
		if (zt_cidr_parse(s, &c, NULL) < 0) {
			if (invalid++ < 10)
				fprintf(stderr,
					"ztctl: %s:%zu: '%.60s': not an IPv4/IPv6 address or prefix\n",
					a.pos[0], lineno, s);
			continue;
		}
		/* Packed binary records: the daemon decodes no per-item CBOR. */
		rec = packed + chunk_n * ZT_PACKED_CIDR_LEN;
		rec[0] = c.family == AF_INET ? 4 : 6;
		rec[1] = c.prefixlen;
		memcpy(rec + 2, c.addr, 16);
		if (++chunk_n == IMPORT_CHUNK) {
			r = send_chunk(fd, &a, packed, chunk_n, &added, &replaced);
			chunk_n = 0;
			if (r)
				goto out;
		}
	}
	if (chunk_n) {
		r = send_chunk(fd, &a, packed, chunk_n, &added, &replaced);
		if (r)
			goto out;
	}
	if (invalid > 10)
		fprintf(stderr, "ztctl: ... %zu invalid lines in all\n", invalid);
	if (json)
		printf("{\"added\": %llu, \"replaced\": %llu, \"invalid\": %zu}\n",
		       (unsigned long long)added, (unsigned long long)replaced, invalid);
	else
		printf("imported %s: %llu added, %llu replaced, %zu invalid lines skipped\n",
		       a.pos[0], (unsigned long long)added, (unsigned long long)replaced, invalid);
	r = invalid ? EXIT_REFUSED : 0;
out:
	free(line);
	free(packed);
	close(fd);
	if (f != stdin)
		fclose(f);
	return r;
}

static int cmd_detach(int argc, char **argv)
{
	cbor_item_t *reply, *d;
	char b[256];
	int r;

	if (wants_help(argc, argv)) {
		fputs(help_of("detach"), stdout);
		return 0;
	}
	if (argc > 1)
		return usage_err("detach", "unexpected argument '%s'", argv[1]);
	r = call(request(ZT_OP_DETACH), &reply, &d);
	if (r)
		return r;
	printf("ztagent is detaching its programs, removing the pins under %s and exiting\n",
	       str_of(d, "bpffs", b, sizeof(b)));
	cbor_decref(&reply);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *cmd, *sub;
	int c;

	sock_path = getenv("ZTAGENT_SOCKET");
	if (!sock_path || !*sock_path)
		sock_path = ZT_DEFAULT_API_SOCKET;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "table")) {
				fprintf(stderr, "ztctl: -o: expected json or table, got '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			json = !strcmp(optarg, "json");
			break;
		case 'h':
			usage_main(stdout);
			return 0;
		case 'V':
			printf("ztctl %s\n", ZT_VERSION);
			return 0;
		default:
			fprintf(stderr, "ztctl: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage_main(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "status")) {
		if (wants_help(argc, argv)) {
			fputs(help_of("status"), stdout);
			return 0;
		}
		/* Accept -o after the command too. */
		for (int i = 1; i + 1 < argc; i++)
			if (!strcmp(argv[i], "-o")) {
				json = !strcmp(argv[i + 1], "json");
				memmove(&argv[i], &argv[i + 2],
					(size_t)(argc - i - 2) * sizeof(*argv));
				argc -= 2;
				i--;
			}
		return cmd_status(argc, argv);
	}
	if (!strcmp(cmd, "detach"))
		return cmd_detach(argc, argv);
	if (!strcmp(cmd, "block") || !strcmp(cmd, "allow")) {
		if (argc < 2) {
			fprintf(stderr, "ztctl: '%s' needs a verb: add, del, list%s\n", cmd,
				!strcmp(cmd, "block") ? ", import" : "");
			return EXIT_USAGE;
		}
		sub = argv[1];
		if (!strcmp(sub, "add") || !strcmp(sub, "del"))
			return cmd_add_del(cmd, sub, argc - 1, argv + 1);
		if (!strcmp(sub, "list"))
			return cmd_list(cmd, argc - 1, argv + 1);
		if (!strcmp(sub, "import") && !strcmp(cmd, "block"))
			return cmd_import(argc - 1, argv + 1);
		fprintf(stderr, "ztctl: unknown verb '%s %s' (see ztctl --help)\n", cmd, sub);
		return EXIT_USAGE;
	}
	fprintf(stderr, "ztctl: unknown command '%s' (see ztctl --help)\n", cmd);
	return EXIT_USAGE;
}
