// SPDX-License-Identifier: GPL-2.0-only
/*
 * Test driver for the watch client (src/k8s/): runs one watch per --kind on
 * the daemon's epoll loop and prints one line per handler call, so that
 * tests/integration/k8s_watch.sh can check what reached the caller:
 *
 *   ADDED Pod prod/web-1 rv=12 uid=... labels=app=web node=n1 sa=default phase=Running
 *         ips=198.18.0.10 ports=http:80/TCP hostnet=0 term=0
 *   UPDATED ... / DELETED ...
 *   ADDED NetworkPolicy prod/np rv=14 policy=ok      (the JSON went through zt_policy_parse_buf)
 *   SYNCED Pod rv=20 objects=3 first=1
 *   ERROR Pod op=watch status=410 err=-116 relist=1 failures=0 retry_ms=0 msg=...
 *
 * Commands on stdin, one a line: "dump" prints the caches (CACHE lines) and
 * the counters (STATS lines) then "DUMPED"; "quit" stops.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "agent/loop.h"
#include "agent/util.h"
#include "k8s/k8s.h"
#include "seg/policy.h"

#define MAX_WATCHES 4

static struct zt_loop *loop;
static struct zt_k8s_watch *watches[MAX_WATCHES];
static int n_watches;
static unsigned int slow_ms;
static char inbuf[4096];
static size_t inlen;

static const char *proto(uint8_t p)
{
	return p == IPPROTO_UDP ? "UDP" : p == IPPROTO_SCTP ? "SCTP" : "TCP";
}

static void print_obj(const char *what, const struct zt_k8s_object *o)
{
	char desc[600], ip[ZT_CIDR_STRLEN];

	zt_k8s_object_describe(o, desc, sizeof(desc));
	printf("%s %s rv=%s uid=%s labels=", what, desc, o->resource_version, o->uid);
	for (size_t i = 0; i < o->n_labels; i++)
		printf("%s%s=%s", i ? "," : "", o->labels[i].key, o->labels[i].value);
	if (o->kind == ZT_K8S_POD) {
		const struct zt_k8s_pod *p = &o->pod;

		printf(" node=%s sa=%s phase=%s ips=", p->node, p->service_account,
		       zt_k8s_phase_name(p->phase));
		for (size_t i = 0; i < p->n_ips; i++) {
			struct zt_cidr c = p->ips[i];

			zt_cidr_format(&c, ip, sizeof(ip));
			*strchrnul(ip, '/') = '\0';
			printf("%s%s", i ? "," : "", ip);
		}
		printf(" ports=");
		for (size_t i = 0; i < p->n_ports; i++)
			printf("%s%s:%u/%s", i ? "," : "", p->ports[i].name, p->ports[i].port,
			       proto(p->ports[i].protocol));
		printf(" hostnet=%d term=%d", p->host_network, p->terminating);
	}
	if (o->kind == ZT_K8S_NODE) {
		printf(" podcidrs=");
		for (size_t i = 0; i < o->node.n_pod_cidrs; i++) {
			zt_cidr_format(&o->node.pod_cidrs[i], ip, sizeof(ip));
			printf("%s%s", i ? "," : "", ip);
		}
		printf(" internal=");
		for (size_t i = 0; i < o->node.n_internal_ips; i++) {
			zt_cidr_format(&o->node.internal_ips[i], ip, sizeof(ip));
			*strchrnul(ip, '/') = '\0';
			printf("%s%s", i ? "," : "", ip);
		}
	}
	if (o->policy_json) {
		struct zt_policy_set *set = NULL;
		char err[512];
		int r = zt_policy_parse_buf(o->policy_json, o->policy_len, desc, &set, err,
					    sizeof(err));

		if (r)
			printf(" policy=error:%s", err);
		else
			printf(" policy=ok:%zu", set->n);
		zt_policy_set_free(set);
	}
	/* Only when there are some: the lines of objects without them stay as they were. */
	for (size_t i = 0; i < o->n_annotations; i++)
		printf("%s%s=%s", i ? ";" : " annotations=", o->annotations[i].key,
		       o->annotations[i].value);
	printf("\n");
	fflush(stdout);
}

static void nap_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void on_added(void *ctx, const struct zt_k8s_object *o)
{
	print_obj("ADDED", o);
	if (slow_ms)
		nap_ms(slow_ms);
}

static void on_updated(void *ctx, const struct zt_k8s_object *old, const struct zt_k8s_object *o)
{
	print_obj("UPDATED", o);
	if (slow_ms)
		nap_ms(slow_ms);
}

static void on_deleted(void *ctx, const struct zt_k8s_object *o)
{
	print_obj("DELETED", o);
}

static void on_synced(void *ctx, const struct zt_k8s_sync *s)
{
	printf("SYNCED %s rv=%s objects=%zu first=%d\n", zt_k8s_kind_name(s->kind),
	       s->resource_version, s->objects, s->first);
	fflush(stdout);
}

static void on_error(void *ctx, const struct zt_k8s_error *e)
{
	printf("ERROR %s op=%s status=%ld err=%d relist=%d failures=%u retry_ms=%llu msg=%s\n",
	       zt_k8s_kind_name(e->kind), e->op == ZT_K8S_OP_LIST ? "list" : "watch",
	       e->http_status, e->err, e->relist, e->failures,
	       (unsigned long long)(e->retry_in_ns / 1000000), e->msg);
	fflush(stdout);
}

static const struct zt_k8s_handlers handlers = {
	.added = on_added,
	.updated = on_updated,
	.deleted = on_deleted,
	.synced = on_synced,
	.error = on_error,
};

static void on_watch(void *ctx, int fd, uint32_t events)
{
	zt_k8s_watch_dispatch(ctx);
}

static void print_cached(void *ctx, const struct zt_k8s_object *o)
{
	print_obj("CACHE", o);
}

static void dump(void)
{
	for (int i = 0; i < n_watches; i++) {
		struct zt_k8s_watch_stats st;

		zt_k8s_watch_foreach(watches[i], print_cached, NULL);
		zt_k8s_watch_get_stats(watches[i], &st);
		printf("STATS %d synced=%d count=%zu lists=%llu pages=%llu watches=%llu "
		       "events=%llu bookmarks=%llu relists_gone=%llu overflows=%llu errors=%llu "
		       "bad=%llu rv=%s\n",
		       i, zt_k8s_watch_synced(watches[i]), zt_k8s_watch_count(watches[i]),
		       (unsigned long long)st.lists, (unsigned long long)st.list_pages,
		       (unsigned long long)st.watches, (unsigned long long)st.events,
		       (unsigned long long)st.bookmarks, (unsigned long long)st.relists_gone,
		       (unsigned long long)st.overflows, (unsigned long long)st.errors,
		       (unsigned long long)st.bad_objects, st.resource_version);
	}
	printf("DUMPED\n");
	fflush(stdout);
}

static void on_stdin(void *ctx, int fd, uint32_t events)
{
	ssize_t n = read(fd, inbuf + inlen, sizeof(inbuf) - 1 - inlen);
	char *nl;

	if (n <= 0) {
		zt_loop_del(loop, fd);
		zt_loop_quit(loop);
		return;
	}
	inlen += (size_t)n;
	inbuf[inlen] = '\0';
	while ((nl = strchr(inbuf, '\n'))) {
		*nl = '\0';
		if (!strcmp(inbuf, "dump"))
			dump();
		else if (!strcmp(inbuf, "quit"))
			zt_loop_quit(loop);
		memmove(inbuf, nl + 1, inlen - (size_t)(nl + 1 - inbuf) + 1);
		inlen -= (size_t)(nl + 1 - inbuf);
	}
	if (inlen == sizeof(inbuf) - 1)
		inlen = 0;
}

static int kind_of(const char *s, enum zt_k8s_kind *k)
{
	static const char *const names[] = { "pods", "namespaces", "networkpolicies",
					     "zerotrustpolicies", "nodes" };

	for (unsigned int i = 0; i < ZT_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i])) {
			*k = (enum zt_k8s_kind)i;
			return 0;
		}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "server", required_argument, NULL, 's' },
		{ "ca", required_argument, NULL, 'c' },
		{ "token-file", required_argument, NULL, 't' },
		{ "node", required_argument, NULL, 'n' },
		{ "kind", required_argument, NULL, 'K' },
		{ "field-selector", required_argument, NULL, 'f' },
		{ "watch-timeout", required_argument, NULL, 'w' },
		{ "backoff-min-ms", required_argument, NULL, 'b' },
		{ "backoff-max-ms", required_argument, NULL, 'B' },
		{ "page-limit", required_argument, NULL, 'p' },
		{ "queue-max", required_argument, NULL, 'q' },
		{ "max-object-bytes", required_argument, NULL, 'm' },
		{ "slow-ms", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct zt_k8s_settings s = { 0 };
	struct zt_k8s_watch_opts o = { .h = &handlers };
	enum zt_k8s_kind kinds[MAX_WATCHES];
	int n_kinds = 0, opt, r, rc = 1;
	struct zt_k8s_client *c = NULL;
	char err[512];

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			s.kubeconfig = optarg;
			break;
		case 's':
			s.server = optarg;
			break;
		case 'c':
			s.ca_file = optarg;
			break;
		case 't':
			s.token_file = optarg;
			break;
		case 'n':
			s.node_name = optarg;
			break;
		case 'K':
			if (n_kinds == MAX_WATCHES || kind_of(optarg, &kinds[n_kinds]) < 0) {
				fprintf(stderr, "bad --kind %s\n", optarg);
				return 2;
			}
			n_kinds++;
			break;
		case 'f':
			o.field_selector = optarg;
			break;
		case 'w':
			o.watch_timeout_s = (unsigned int)atoi(optarg);
			break;
		case 'b':
			o.backoff_min_ns = strtoull(optarg, NULL, 10) * 1000000ULL;
			break;
		case 'B':
			o.backoff_max_ns = strtoull(optarg, NULL, 10) * 1000000ULL;
			break;
		case 'p':
			o.page_limit = (unsigned int)atoi(optarg);
			break;
		case 'q':
			o.queue_max = (unsigned int)atoi(optarg);
			break;
		case 'm':
			o.max_object_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'S':
			slow_ms = (unsigned int)atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!n_kinds)
		kinds[n_kinds++] = ZT_K8S_POD;
	r = zt_k8s_client_new(&s, &c, err, sizeof(err));
	if (r) {
		printf("CONFIG-ERROR %d %s\n", r, err);
		return 3;
	}
	printf("CLIENT server=%s source=\"%s\" node=%s\n", zt_k8s_client_server(c),
	       zt_k8s_client_source(c), zt_k8s_client_node(c));
	fflush(stdout);
	if (zt_loop_init(&loop) < 0)
		goto out;
	for (int i = 0; i < n_kinds; i++) {
		o.kind = kinds[i];
		/* The selector is for pods; the other kinds watch everything. */
		struct zt_k8s_watch_opts oi = o;

		if (kinds[i] != ZT_K8S_POD)
			oi.field_selector = NULL;
		r = zt_k8s_watch_start(c, &oi, &watches[i]);
		if (r) {
			fprintf(stderr, "watch start: %s\n", strerror(-r));
			goto out;
		}
		n_watches++;
		zt_loop_add(loop, zt_k8s_watch_fd(watches[i]), EPOLLIN, on_watch, watches[i]);
	}
	zt_loop_add(loop, 0, EPOLLIN, on_stdin, NULL);
	zt_loop_run(loop);
	rc = 0;
out:
	for (int i = 0; i < n_watches; i++)
		zt_k8s_watch_stop(watches[i]);
	zt_k8s_client_free(c);
	zt_loop_stop(loop);
	printf("EXIT\n");
	return rc;
}
