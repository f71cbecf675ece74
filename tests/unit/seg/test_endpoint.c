// SPDX-License-Identifier: GPL-2.0-only
/* Endpoint specs as operators write them, the table's checks, the state file. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc_peak.h"
#include "agent/cbor.h"
#include "seg/endpoint.h"
#include "seg/polcompile.h"
#include "seg/policy.h"
#include "agent/util.h"
#include "ztagent.h"

static struct zt_ep *spec(const char *ifname, const char *ip, const char *labels, const char *ns,
			  int want, const char *msg)
{
	struct zt_ep_spec s = { .ifname = ifname, .addrs = ip, .labels = labels, .ns = ns };
	struct zt_ep *ep = NULL;
	char err[512] = "";
	int r = zt_ep_from_spec(&s, &ep, err, sizeof(err));

	if (r != want || (msg && !strstr(err, msg))) {
		print_error("spec %s %s %s: got %d '%s', want %d '%s'\n", ifname, ip, labels, r,
			    err, want, msg ? msg : "");
		fail();
	}
	return ep;
}

static void test_good_spec(void **state)
{
	struct zt_ep *ep =
		spec("veth-a", "198.18.1.2,2001:db8::2", "app=web,tier=front", "prod", 0, NULL);
	char buf[256];

	assert_non_null(ep);
	assert_string_equal(ep->qname, "prod/veth-a");
	assert_int_equal(ep->n_addrs, 2);
	assert_int_equal(ep->addrs[0].family, AF_INET);
	assert_int_equal(ep->addrs[1].family, AF_INET6);
	assert_int_equal(ep->n_labels, 2);
	assert_string_equal(ep->ev.ls.namespace, "prod");
	assert_int_equal(ep->ev.ls.labels.n, 2);
	assert_int_equal(zt_ep_addrs_format(ep, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.18.1.2,2001:db8::2");
	assert_int_equal(zt_labels_format(ep->labels, ep->n_labels, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "app=web,tier=front");
	zt_ep_free(ep);

	ep = spec("v1", "198.18.1.3/32", "", NULL, 0, NULL);
	assert_string_equal(ep->ns, "default");
	assert_int_equal(ep->n_labels, 0);
	zt_ep_free(ep);
}

static void test_bad_specs(void **state)
{
	spec("", "198.18.1.2", "", NULL, -EINVAL, "--ifname");
	spec("a/b", "198.18.1.2", "", NULL, -EINVAL, "not a valid interface name");
	spec("averyveryverylongname", "198.18.1.2", "", NULL, -EINVAL, "--ifname");
	spec("v1", "", "", NULL, -EINVAL, "at least one address");
	spec("v1", "198.18.1.300", "", NULL, -EINVAL, "'198.18.1.300' is not an IPv4 or IPv6");
	spec("v1", "198.18.1.0/24", "", NULL, -EINVAL, "not an IPv4 or IPv6");
	spec("v1", "198.18.1.2,198.18.1.2", "", NULL, -EINVAL, "listed twice");
	spec("v1", "127.0.0.1", "", NULL, -EINVAL, "loopback");
	spec("v1", "0.0.0.0", "", NULL, -EINVAL, "unspecified");
	spec("v1", "ff02::1", "", NULL, -EINVAL, "multicast");
	spec("v1", "198.18.1.2", "app", NULL, -EINVAL, "'app' is not KEY=VALUE");
	spec("v1", "198.18.1.2", "bad key=x", NULL, -EINVAL, "label 'bad key'");
	spec("v1", "198.18.1.2", "app=x,app=y", NULL, -EINVAL, "twice");
	spec("v1", "198.18.1.2", "app=-bad-", NULL, -EINVAL, "label 'app'");
	spec("v1", "198.18.1.2", "", "Prod", -EINVAL, "--namespace");
	spec("v1", "198.18.1.2", "", "a_b", -EINVAL, "--namespace");
	{
		struct zt_ep_spec s = { .ifname = "v1",
					.addrs = "198.18.1.2",
					.ns_labels = "kubernetes.io/metadata.name=other",
					.ns = "prod" };
		struct zt_ep *ep = NULL;
		char err[256];

		assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "always the namespace's name"));
		assert_null(ep);
	}
	{
		struct zt_ep_spec s = { .ifname = "v1", .addrs = "198.18.1.2", .ports = "http=80" };
		struct zt_ep *ep = NULL;
		char err[256];

		assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), 0);
		assert_int_equal(ep->n_ports, 1);
		assert_string_equal(ep->ports[0].name, "http");
		assert_int_equal(ep->ports[0].port, 80);
		zt_ep_free(ep);
		s.ports = "http=99999/TCP";
		assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "--ports"));
	}
}

static void test_table_checks(void **state)
{
	struct zt_ep_table t = { 0 };
	struct zt_ep *a = spec("lo", "198.18.1.2", "", NULL, 0, NULL);
	struct zt_ep *b = spec("zt-no-such-if", "198.18.1.3", "", NULL, 0, NULL);
	char err[256];

	assert_int_equal(zt_ep_table_check(&t, a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "loopback"));
	assert_int_equal(zt_ep_table_check(&t, b, err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "no interface 'zt-no-such-if'"));

	/* Conflicts with what is in the table (ifindex set by hand: no real interface needed). */
	a->ifindex = 100;
	assert_int_equal(zt_ep_table_add(&t, a), 0);
	assert_int_equal(a->id, 1);
	b->ifindex = 101;
	assert_int_equal(zt_ep_table_add(&t, b), 0);
	assert_int_equal(b->id, 2);
	assert_ptr_equal(zt_ep_table_by_ifindex(&t, 101), b);
	{
		bool amb;

		assert_ptr_equal(zt_ep_table_find(&t, "default/lo", &amb), a);
		assert_ptr_equal(zt_ep_table_find(&t, "zt-no-such-if", &amb), b);
		assert_null(zt_ep_table_find(&t, "nothing", &amb));
		assert_false(amb);
	}
	assert_ptr_equal(zt_ep_table_remove(&t, 1), a);
	assert_int_equal(t.n, 1);
	zt_ep_free(a);
	zt_ep_table_clear(&t);
}

static void test_state_roundtrip(void **state)
{
	struct zt_ep_table t = { 0 }, u = { 0 };
	char dir[] = "/tmp/zt-ep-test.XXXXXX", path[128], err[512];
	struct zt_ep_spec s = { .ifname = "veth-x",
				.name = "web-1",
				.ns = "prod",
				.addrs = "198.18.1.9,2001:db8::9",
				.labels = "app=web,version=v2",
				.ns_labels = "env=prod",
				.ports = "http=8080/TCP,dns=53/UDP" };
	struct zt_ep *ep;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/endpoints.cbor", dir);
	/* Missing file: empty table. */
	assert_int_equal(zt_ep_table_load(&u, path, err, sizeof(err)), 0);
	assert_int_equal(u.n, 0);

	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), 0);
	ep->ifindex = 42;
	ep->identity = 300;
	assert_int_equal(zt_ep_table_add(&t, ep), 0);
	assert_int_equal(zt_ep_table_save(&t, path, err, sizeof(err)), 0);
	assert_int_equal(zt_ep_table_load(&u, path, err, sizeof(err)), 0);
	assert_int_equal(u.n, 1);
	assert_string_equal(u.v[0]->qname, "prod/web-1");
	assert_string_equal(u.v[0]->ifname, "veth-x");
	assert_int_equal(u.v[0]->ifindex, 42);
	assert_int_equal(u.v[0]->identity, 300);
	assert_int_equal(u.v[0]->id, ep->id);
	assert_int_equal(u.v[0]->n_addrs, 2);
	assert_int_equal(u.v[0]->n_labels, 2);
	assert_int_equal(u.v[0]->n_ns_labels, 1);
	assert_int_equal(u.v[0]->n_ports, 2);
	assert_int_equal(u.v[0]->ports[1].port, 53);
	assert_int_equal(u.v[0]->ports[1].protocol, 17);
	zt_ep_table_clear(&u);

	/* A damaged file is an error naming it, never a silently empty table. */
	f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, 10, SEEK_SET);
	fputs("\xff\xff\xff", f);
	fclose(f);
	assert_int_not_equal(zt_ep_table_load(&u, path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, path));
	assert_int_equal(u.n, 0);
	f = fopen(path, "w");
	fputs("garbage", f);
	fclose(f);
	assert_int_not_equal(zt_ep_table_load(&u, path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not a ztagent endpoint state file"));

	zt_ep_table_clear(&t);
	unlink(path);
	rmdir(dir);
}

/* CNI endpoints: origin, container, pod; pending ones carry no labels yet. */
static void test_cni_spec(void **state)
{
	struct zt_ep_spec s = { .ifname = "veth1",
				.name = "web-7d4b9",
				.ns = "prod",
				.addrs = "198.18.1.2",
				.origin = ZT_EP_ORIGIN_CNI,
				.pending = true,
				.pod_uid = "3f2a7c1e-0b5d-4e8a-9c61-2d7f0e4b9a15",
				.container_id = "a1b2c3",
				.cni_ifname = "eth0" };
	struct zt_ep *ep = NULL;
	char err[512];

	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), 0);
	assert_int_equal(ep->origin, ZT_EP_ORIGIN_CNI);
	assert_true(ep->pending);
	assert_string_equal(ep->container_id, "a1b2c3");
	assert_string_equal(ep->cni_ifname, "eth0");
	assert_string_equal(ep->pod_uid, "3f2a7c1e-0b5d-4e8a-9c61-2d7f0e4b9a15");
	assert_string_equal(zt_ep_origin_name(ep->origin), "cni");
	zt_ep_free(ep);

	s.labels = "app=web";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "pending endpoint has no labels"));
	s.labels = NULL;
	s.container_id = "";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "container_id"));
	s.container_id = "-abc";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	s.container_id = "abc/def";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	s.container_id = "abc";
	s.cni_ifname = "eth0:1";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cni_ifname"));
	s.cni_ifname = "eth0";
	s.pod_uid = "not a uid";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "pod_uid"));
	s.pod_uid = NULL;
	s.service_account = "Bad_SA";
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "service_account"));
	/* An operator's endpoint has no container and is never pending. */
	{
		struct zt_ep_spec a = { .ifname = "veth1",
					.addrs = "198.18.1.2",
					.container_id = "abc" };

		assert_int_equal(zt_ep_from_spec(&a, &ep, err, sizeof(err)), -EINVAL);
		a.container_id = NULL;
		a.pending = true;
		assert_int_equal(zt_ep_from_spec(&a, &ep, err, sizeof(err)), -EINVAL);
	}
}

static void test_meta(void **state)
{
	struct zt_ep_spec s = { .ifname = "veth1",
				.name = "web",
				.ns = "prod",
				.addrs = "198.18.1.2",
				.origin = ZT_EP_ORIGIN_CNI,
				.pending = true,
				.container_id = "c1",
				.cni_ifname = "eth0" };
	const struct zt_label labels[] = { { "app", "web" }, { "tier", "front" } };
	const struct zt_label nsl[] = { { "env", "prod" } };
	const struct zt_named_port ports[] = { { "http", IPPROTO_TCP, 8080 },
					       { "http", IPPROTO_TCP, 8080 }, /* two containers */
					       { "dns", IPPROTO_UDP, 53 } };
	struct zt_pod_meta pm = { .ns = "prod",
				  .name = "web",
				  .labels = labels,
				  .n_labels = 2,
				  .ns_labels = nsl,
				  .n_ns_labels = 1,
				  .service_account = "web-sa",
				  .ports = ports,
				  .n_ports = 3 };
	struct zt_ep_meta m, m2;
	struct zt_ep *ep;
	char err[512];

	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), 0);
	assert_int_equal(zt_ep_meta_from_pod(ep->ns, &pm, &m, err, sizeof(err)), 0);
	assert_int_equal(m.n_labels, 2);
	assert_int_equal(m.n_ports, 2); /* the repeated port is one */
	assert_false(zt_ep_meta_same(ep, &m));
	zt_ep_meta_swap(ep, &m);
	assert_int_equal(ep->n_labels, 2);
	assert_int_equal(ep->ev.ls.labels.n, 2); /* the evaluator's view follows */
	assert_string_equal(ep->ev.ls.labels.v[0].key, "app");
	assert_string_equal(ep->service_account, "web-sa");
	assert_int_equal(m.n_labels, 0); /* m holds what ep had */
	zt_ep_meta_free(&m);
	/* The same metadata, labels in another order, from text: no change. */
	assert_int_equal(zt_ep_meta_from_text(ep->ns, "tier=front,app=web", "env=prod",
					      "dns=53/UDP,http=8080/TCP", "web-sa", &m2, err,
					      sizeof(err)),
			 0);
	assert_true(zt_ep_meta_same(ep, &m2));
	zt_ep_meta_free(&m2);
	assert_int_equal(zt_ep_meta_from_text(ep->ns, "app=web", "env=prod", "", "web-sa", &m2, err,
					      sizeof(err)),
			 0);
	assert_false(zt_ep_meta_same(ep, &m2));
	zt_ep_meta_free(&m2);

	/* Refused: bad label, wrong namespace-name label, clashing ports, bad SA, too many. */
	{
		const struct zt_label bad[] = { { "app", "-x-" } };
		const struct zt_label wrong_ns[] = { { "kubernetes.io/metadata.name", "dev" } };
		const struct zt_named_port clash[] = { { "http", IPPROTO_TCP, 80 },
						       { "http", IPPROTO_TCP, 81 } };
		const struct zt_named_port zero[] = { { "http", IPPROTO_TCP, 0 } };
		struct zt_label many[ZT_EP_MAX_LABELS + 1];
		char keys[ZT_EP_MAX_LABELS + 1][8];
		struct zt_pod_meta b = { .ns = "prod", .name = "web" };

		b.labels = bad;
		b.n_labels = 1;
		assert_int_equal(zt_ep_meta_from_pod("prod", &b, &m, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "labels: label 'app'"));
		b.n_labels = 0;
		b.ns_labels = wrong_ns;
		b.n_ns_labels = 1;
		assert_int_equal(zt_ep_meta_from_pod("prod", &b, &m, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "always the namespace's name"));
		b.n_ns_labels = 0;
		b.ports = clash;
		b.n_ports = 2;
		assert_int_equal(zt_ep_meta_from_pod("prod", &b, &m, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "names ports 80 and 81"));
		b.ports = zero;
		b.n_ports = 1;
		assert_int_equal(zt_ep_meta_from_pod("prod", &b, &m, err, sizeof(err)), -EINVAL);
		b.n_ports = 0;
		b.service_account = "No";
		assert_int_equal(zt_ep_meta_from_pod("prod", &b, &m, err, sizeof(err)), -EINVAL);
		b.service_account = NULL;
		for (size_t i = 0; i < ZT_ARRAY_SIZE(many); i++) {
			snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
			many[i] = (struct zt_label){ keys[i], "v" };
		}
		b.labels = many;
		b.n_labels = ZT_ARRAY_SIZE(many);
		assert_int_equal(zt_ep_meta_from_pod("prod", &b, &m, err, sizeof(err)), -E2BIG);
	}
	zt_ep_free(ep);
}

/* CNI fields survive a restart; a file of an older version (no origin) is read as api. */
static void test_state_cni(void **state)
{
	struct zt_ep_table t = { 0 }, u = { 0 };
	char dir[] = "/tmp/zt-ep-test.XXXXXX", path[128], err[512];
	struct zt_ep_spec s = { .ifname = "veth-p",
				.name = "pod-a",
				.ns = "prod",
				.addrs = "198.18.1.7",
				.origin = ZT_EP_ORIGIN_CNI,
				.pending = true,
				.pod_uid = "uid-1",
				.container_id = "cid.1",
				.cni_ifname = "eth0",
				.service_account = "sa1" };
	struct zt_ep *ep;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/endpoints.cbor", dir);
	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), 0);
	ep->ifindex = 7;
	ep->identity = ZT_ID_PENDING;
	assert_int_equal(zt_ep_table_add(&t, ep), 0);
	assert_int_equal(zt_ep_table_save(&t, path, err, sizeof(err)), 0);
	assert_int_equal(zt_ep_table_load(&u, path, err, sizeof(err)), 0);
	assert_int_equal(u.n, 1);
	assert_int_equal(u.v[0]->origin, ZT_EP_ORIGIN_CNI);
	assert_true(u.v[0]->pending);
	assert_int_equal(u.v[0]->identity, ZT_ID_PENDING);
	assert_string_equal(u.v[0]->pod_uid, "uid-1");
	assert_string_equal(u.v[0]->container_id, "cid.1");
	assert_string_equal(u.v[0]->cni_ifname, "eth0");
	assert_string_equal(u.v[0]->service_account, "sa1");
	assert_ptr_equal(zt_ep_table_by_container(&u, "cid.1", "eth0"), u.v[0]);
	assert_null(zt_ep_table_by_container(&u, "cid.1", "eth1"));
	assert_ptr_equal(zt_ep_table_by_qname(&u, "prod", "pod-a"), u.v[0]);
	assert_null(zt_ep_table_by_qname(&u, "dev", "pod-a"));
	zt_ep_table_clear(&u);
	zt_ep_table_clear(&t);

	/* A record as the previous version wrote it: no origin/pending/pod/container keys. */
	{
		cbor_item_t *root = zt_cbor_map(), *arr = zt_cbor_array(), *e = zt_cbor_map(),
			    *a = zt_cbor_array(), *str = cbor_build_string("198.18.1.8");
		unsigned char *buf = NULL;
		size_t cap = 0, len;

		assert_int_equal(zt_cbor_push(a, str), 0);
		assert_int_equal(zt_cbor_put_u64(e, "id", 3), 0);
		assert_int_equal(zt_cbor_put_str(e, "ifname", "veth-o"), 0);
		assert_int_equal(zt_cbor_put_u64(e, "ifindex", 8), 0);
		assert_int_equal(zt_cbor_put_str(e, "name", "old"), 0);
		assert_int_equal(zt_cbor_put_str(e, "namespace", "default"), 0);
		assert_int_equal(zt_cbor_put_u64(e, "identity", 256), 0);
		assert_int_equal(zt_cbor_put_u64(e, "created_unix", 1), 0);
		assert_int_equal(zt_cbor_put(e, "addrs", a), 0);
		assert_int_equal(zt_cbor_put(e, "labels", zt_cbor_map()), 0);
		assert_int_equal(zt_cbor_put(e, "namespace_labels", zt_cbor_map()), 0);
		assert_int_equal(zt_cbor_put(e, "ports", zt_cbor_array()), 0);
		assert_int_equal(zt_cbor_push(arr, e), 0);
		assert_int_equal(zt_cbor_put_u64(root, "version", 1), 0);
		assert_int_equal(zt_cbor_put(root, "endpoints", arr), 0);
		len = cbor_serialize_alloc(root, &buf, &cap);
		assert_int_equal(zt_ep_table_decode(&u, buf, len, "old", err, sizeof(err)), 0);
		assert_int_equal(u.n, 1);
		assert_int_equal(u.v[0]->origin, ZT_EP_ORIGIN_API);
		assert_false(u.v[0]->pending);
		assert_string_equal(u.v[0]->container_id, "");
		zt_ep_table_clear(&u);
		/* A wrong type in a new field is damage, not a default. */
		assert_int_equal(zt_cbor_put_u64(e, "pending", 1), 0);
		free(buf);
		buf = NULL;
		len = cbor_serialize_alloc(root, &buf, &cap);
		assert_int_equal(zt_ep_table_decode(&u, buf, len, "old", err, sizeof(err)),
				 -EBADMSG);
		free(buf);
		cbor_decref(&root);
	}
	unlink(path);
	rmdir(dir);
}

/* ---- the move from pending to a label identity, as seg.c publishes it ---- */

struct tworld {
	struct zt_ep_table t;
	struct zt_identities *ids;
	struct zt_policy_set *set;
	struct zt_compiled *c;
};

static struct zt_ep *tw_add(struct tworld *w, const char *name, const char *ip, const char *labels,
			    bool pending)
{
	struct zt_ep_spec s = { .ifname = name,
				.name = name,
				.ns = "prod",
				.addrs = ip,
				.labels = labels,
				.origin = pending ? ZT_EP_ORIGIN_CNI : ZT_EP_ORIGIN_API,
				.pending = pending,
				.container_id = pending ? "c1" : NULL,
				.cni_ifname = pending ? "eth0" : NULL };
	struct zt_ep *ep;
	char err[256];

	assert_int_equal(zt_ep_from_spec(&s, &ep, err, sizeof(err)), 0);
	ep->ifindex = (int)w->t.n + 100;
	if (pending)
		ep->identity = ZT_ID_PENDING;
	else
		assert_int_equal(zt_identities_get(w->ids, &ep->ev.ls, 0, &ep->identity), 0);
	assert_int_equal(zt_ep_table_add(&w->t, ep), 0);
	return ep;
}

/* Compiles the table as seg.c's publish() does, posture deny. */
static void tw_compile(struct tworld *w)
{
	struct zt_polc_endpoint ce[16];
	struct zt_polc_input in = { .set = w->set, .def = ZT_POL_DEFAULT_DENY, .eps = ce };
	bool pending;
	char err[256];

	zt_compiled_free(w->c);
	w->c = NULL;
	in.n_eps = zt_ep_table_polc(&w->t, ce, &pending);
	in.pending_isolated = pending;
	if (zt_polc_compile(&in, &w->c, err, sizeof(err)) < 0)
		fail_msg("compile: %s", err);
}

static bool tw_iso(const struct tworld *w, uint32_t id)
{
	for (size_t i = 0; i < w->c->n_iso; i++)
		if (w->c->iso[i].identity == id && w->c->iso[i].val.isolated)
			return true;
	return false;
}

static uint32_t tw_ipc(const struct tworld *w, const char *ip)
{
	uint8_t a[4];

	assert_int_equal(inet_pton(AF_INET, ip, a), 1);
	for (size_t i = 0; i < w->c->n_ipc; i++)
		if (w->c->ipc[i].family == AF_INET && w->c->ipc[i].plen == 32 &&
		    !memcmp(w->c->ipc[i].addr, a, 4))
			return w->c->ipc[i].val.identity;
	return 0;
}

/* An allow entry (full key) for local -> peer on TCP port, egress. */
static bool tw_allows(const struct tworld *w, uint32_t local, uint32_t peer, uint16_t port)
{
	for (size_t i = 0; i < w->c->n_pol; i++) {
		const struct zt_polc_pol_entry *e = &w->c->pol[i];

		if (e->dir == ZT_DIR_EGRESS && e->local_id == local && e->peer_id == peer &&
		    e->proto == IPPROTO_TCP && e->port == port &&
		    e->prefixlen == ZT_POL_PLEN_FULL && e->val.verdict == ZT_VERDICT_ALLOW)
			return true;
	}
	return false;
}

static void test_relabel(void **state)
{
	static const char yaml[] = "apiVersion: ztagent.io/v1\nkind: ZeroTrustPolicy\n"
				   "metadata: {name: p, namespace: prod}\nspec:\n"
				   "  podSelector: {}\n"
				   "  egress:\n"
				   "  - action: allow\n"
				   "    to: [{podSelector: {matchLabels: {app: db}}}]\n"
				   "    ports: [{port: 5432, protocol: TCP}]\n";
	struct tworld w = { 0 };
	struct zt_ep *db, *pod;
	struct zt_ep_meta m;
	struct zt_ep_relabel rl;
	uint32_t web_id, api_id;
	char err[512];

	assert_int_equal(zt_identities_new(&w.ids), 0);
	assert_int_equal(
		zt_policy_parse_buf(yaml, strlen(yaml), "p.yaml", &w.set, err, sizeof(err)), 0);
	db = tw_add(&w, "v-db", "198.18.1.5", "app=db", false);
	pod = tw_add(&w, "v-pod", "198.18.1.9", "", true);
	tw_compile(&w);
	/* Pending: ZT_ID_PENDING at its address, isolated; podSelector {} does not take it. */
	assert_int_equal(tw_ipc(&w, "198.18.1.9"), ZT_ID_PENDING);
	assert_true(tw_iso(&w, ZT_ID_PENDING));
	assert_false(tw_allows(&w, ZT_ID_PENDING, db->identity, 5432));

	/* The labels arrive: begin, the generation published for the move, commit. */
	assert_int_equal(zt_ep_meta_from_text("prod", "app=web", "", "", "", &m, err, sizeof(err)),
			 0);
	assert_int_equal(zt_ep_relabel_begin(pod, w.ids, &m, &rl, err, sizeof(err)), 0);
	web_id = pod->identity;
	assert_true(web_id >= ZT_ID_FIRST_LABELS);
	assert_false(pod->pending);
	assert_int_equal(pod->prev_identity, ZT_ID_PENDING);
	tw_compile(&w);
	assert_int_equal(tw_ipc(&w, "198.18.1.9"), web_id); /* peers see the new identity */
	assert_true(tw_allows(&w, web_id, db->identity, 5432));
	/* ... while a packet the endpoints map still marks pending is still isolated. */
	assert_true(tw_iso(&w, ZT_ID_PENDING));
	zt_ep_relabel_commit(pod, w.ids, &rl);
	tw_compile(&w);
	assert_false(tw_iso(&w, ZT_ID_PENDING)); /* nobody pending any more */
	assert_true(tw_allows(&w, web_id, db->identity, 5432));

	/* A relabel (app=web -> app=api): the old identity's entries stay until commit. */
	assert_int_equal(zt_ep_meta_from_text("prod", "app=api", "", "", "", &m, err, sizeof(err)),
			 0);
	assert_int_equal(zt_ep_relabel_begin(pod, w.ids, &m, &rl, err, sizeof(err)), 0);
	api_id = pod->identity;
	assert_int_not_equal(api_id, web_id);
	assert_int_equal(pod->prev_identity, web_id);
	assert_non_null(zt_identities_labels(w.ids, web_id)); /* still referenced */
	tw_compile(&w);
	assert_int_equal(tw_ipc(&w, "198.18.1.9"), api_id);
	assert_true(tw_allows(&w, web_id, db->identity, 5432));
	assert_true(tw_allows(&w, api_id, db->identity, 5432));
	assert_true(tw_iso(&w, web_id));
	/* Undo (the endpoints map could not be written): as it was. */
	zt_ep_relabel_undo(pod, w.ids, &rl);
	assert_int_equal(pod->identity, web_id);
	assert_int_equal(pod->prev_identity, 0);
	assert_string_equal(pod->labels[0].value, "web");
	assert_string_equal(pod->ev.ls.labels.v[0].value, "web");
	assert_null(zt_identities_labels(w.ids, api_id)); /* its reference went */
	tw_compile(&w);
	assert_false(tw_allows(&w, api_id, db->identity, 5432));
	/* And again, committed: the old identity is freed. */
	assert_int_equal(zt_ep_meta_from_text("prod", "app=api", "", "", "", &m, err, sizeof(err)),
			 0);
	assert_int_equal(zt_ep_relabel_begin(pod, w.ids, &m, &rl, err, sizeof(err)), 0);
	zt_ep_relabel_commit(pod, w.ids, &rl);
	assert_null(zt_identities_labels(w.ids, web_id));
	tw_compile(&w);
	assert_false(tw_allows(&w, web_id, db->identity, 5432));
	assert_true(tw_allows(&w, pod->identity, db->identity, 5432));

	zt_compiled_free(w.c);
	zt_policy_set_free(w.set);
	for (size_t i = 0; i < w.t.n; i++)
		if (w.t.v[i]->identity >= ZT_ID_FIRST_LABELS)
			zt_identities_put(w.ids, w.t.v[i]->identity);
	zt_ep_table_clear(&w.t);
	zt_identities_free(w.ids);
}

/* One saved endpoint as the state file holds it; ports as given. */
static cbor_item_t *state_with(cbor_item_t *ports, const char *addr)
{
	cbor_item_t *root = zt_cbor_map(), *arr = zt_cbor_array(), *m = zt_cbor_map(),
		    *addrs = zt_cbor_array(), *l = zt_cbor_map(), *nl = zt_cbor_map();

	assert_int_equal(zt_cbor_put_u64(root, "version", 1), 0);
	assert_int_equal(zt_cbor_put_u64(m, "id", 1) || zt_cbor_put_str(m, "ifname", "veth-x") ||
				 zt_cbor_put_u64(m, "ifindex", 7) ||
				 zt_cbor_put_str(m, "name", "web") ||
				 zt_cbor_put_str(m, "namespace", "prod") ||
				 zt_cbor_put_u64(m, "identity", 300) ||
				 zt_cbor_put_u64(m, "created_unix", 1),
			 0);
	assert_int_equal(zt_cbor_push(addrs, cbor_build_string(addr)), 0);
	assert_int_equal(zt_cbor_put_str(l, "app", "web"), 0);
	assert_int_equal(zt_cbor_put(m, "addrs", addrs) || zt_cbor_put(m, "labels", l) ||
				 zt_cbor_put(m, "namespace_labels", nl) ||
				 zt_cbor_put(m, "ports", ports),
			 0);
	assert_int_equal(zt_cbor_push(arr, m), 0);
	assert_int_equal(zt_cbor_put(root, "endpoints", arr), 0);
	return root;
}

static int load_bytes(const void *p, size_t n, struct zt_ep_table *t, char *err, size_t errlen)
{
	char dir[] = "/tmp/zt-ep-state.XXXXXX", path[128];
	FILE *f;
	int r;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/endpoints.cbor", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
	r = zt_ep_table_load(t, path, err, errlen);
	unlink(path);
	rmdir(dir);
	return r;
}

static int load_item(cbor_item_t *root, struct zt_ep_table *t, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len = cbor_serialize_alloc(root, &buf, &cap);
	int r;

	assert_true(len > 0);
	r = load_bytes(buf, len, t, err, errlen);
	free(buf);
	cbor_decref(&root);
	return r;
}

/*
 * The state file is input: 47 named ports of 15 characters with port 2^64-1
 * and protocol 58 overflowed the 64x32-byte buffer they were formatted into
 * (ASan: heap-buffer-overflow). Now each port is range-checked first.
 */
static void test_state_port_overflow(void **state)
{
	struct zt_ep_table t = { 0 };
	cbor_item_t *ports = zt_cbor_array();
	char err[1024] = "";

	for (int i = 0; i < 47; i++) {
		cbor_item_t *p = zt_cbor_map();
		char name[16];

		snprintf(name, sizeof(name), "p%014d", i);
		assert_int_equal(zt_cbor_put_str(p, "name", name) ||
					 zt_cbor_put_u64(p, "port", UINT64_MAX) ||
					 zt_cbor_put_u64(p, "protocol", 58) ||
					 zt_cbor_push(ports, p),
				 0);
	}
	assert_int_equal(load_item(state_with(ports, "198.18.1.9"), &t, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "record 0: endpoint web: bad named port (item 0)"));
	assert_int_equal(t.n, 0);

	/* One port out of range, one protocol the policy language has no name for. */
	ports = zt_cbor_array();
	{
		cbor_item_t *p = zt_cbor_map();

		assert_int_equal(
			zt_cbor_put_str(p, "name", "http") || zt_cbor_put_u64(p, "port", 65536) ||
				zt_cbor_put_u64(p, "protocol", 6) || zt_cbor_push(ports, p),
			0);
	}
	assert_int_equal(load_item(state_with(ports, "198.18.1.9"), &t, err, sizeof(err)),
			 -EBADMSG);
	ports = zt_cbor_array();
	{
		cbor_item_t *p = zt_cbor_map();

		assert_int_equal(
			zt_cbor_put_str(p, "name", "ping") || zt_cbor_put_u64(p, "port", 1) ||
				zt_cbor_put_u64(p, "protocol", 1) || zt_cbor_push(ports, p),
			0);
	}
	assert_int_equal(load_item(state_with(ports, "198.18.1.9"), &t, err, sizeof(err)),
			 -EBADMSG);
	/* An address item smuggling three addresses in with commas. */
	assert_int_equal(load_item(state_with(zt_cbor_array(), "198.18.1.1,198.18.1.2,198.18.1.3"),
				   &t, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "bad address"));
	/* And a good record still loads. */
	assert_int_equal(load_item(state_with(zt_cbor_array(), "198.18.1.9"), &t, err, sizeof(err)),
			 0);
	assert_int_equal(t.n, 1);
	zt_ep_table_clear(&t);
}

/*
 * Headers that declare more than the file holds are refused before anything
 * is allocated: 9a08000000 (an array of 2^27 items, 5 bytes) made the daemon
 * commit 1 GiB at every start.
 */
static void test_state_declared_sizes(void **state)
{
	static const struct {
		const char *hex;
		size_t n;
	} files[] = {
#define BYTES(s) { s, sizeof(s) - 1 }
		BYTES("\x9a\x08\x00\x00\x00"),
		BYTES("\xbb\x00\x00\x00\x10\x00\x00\x00\x00"),
		BYTES("\xa2\x67version\x01\x69"
		      "endpoints\x9b\x00\x00\x00\x10\x00\x00\x00\x00"),
		BYTES("\xa1\x67version\x7a\x40\x00\x00\x00"),
#undef BYTES
	};
	struct zt_ep_table t = { 0 };
	char err[1024];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		alloc_peak_start();
		assert_int_equal(load_bytes(files[i].hex, files[i].n, &t, err, sizeof(err)),
				 -EBADMSG);
		if (alloc_peak > (1u << 20)) {
			print_error("file %zu: an allocation of %zu bytes\n", i,
				    (size_t)alloc_peak);
			fail();
		}
		assert_non_null(strstr(err, "not a ztagent endpoint state file"));
		assert_int_equal(t.n, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_spec),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_table_checks),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_state_port_overflow),
		cmocka_unit_test(test_state_declared_sizes),
		cmocka_unit_test(test_cni_spec),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_state_cni),
		cmocka_unit_test(test_relabel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
