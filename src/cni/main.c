// SPDX-License-Identifier: GPL-2.0-only
/*
 * ztagent-cni: a chained CNI plugin. Listed after the primary plugin in the
 * node's conflist, it registers the pod's endpoint with the ztagent daemon
 * (ADD), removes it (DEL, idempotent, queued when the daemon is down), asks
 * the daemon whether it is enforced (CHECK), and passes the primary's result
 * through unchanged. See cni.h for the configuration keys and the README
 * ("CNI plugin") for an example conflist.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/apimsg.h"
#include "agent/apiops.h"
#include "agent/util.h"
#include "cni/client.h"
#include "cni/cni.h"
#include "cni/netns.h"
#include "seg/cnispool.h"

struct run {
	const char *cmd;
	const char *cid; /* CNI_CONTAINERID */
	const char *netns; /* CNI_NETNS */
	const char *ifname; /* CNI_IFNAME */
	struct zt_cni_args args;
	struct zt_cni_conf conf;
	struct zt_cni_err e;
	char *in; /* stdin */
	size_t in_len;
};

static int read_stdin(struct run *x)
{
	size_t cap = 65536;

	x->in = malloc(cap);
	if (!x->in)
		return zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
	for (;;) {
		ssize_t n;

		if (x->in_len + 1 >= cap) {
			char *nb;

			if (cap > ZT_CNI_MAX_STDIN)
				return zt_cni_fail(
					&x->e, ZT_CNI_E_DECODE, NULL,
					"the network configuration on stdin is over %u bytes",
					ZT_CNI_MAX_STDIN);
			cap *= 2;
			nb = realloc(x->in, cap);
			if (!nb)
				return zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
			x->in = nb;
		}
		n = read(STDIN_FILENO, x->in + x->in_len, cap - x->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "reading stdin: %s",
					   strerror(errno));
		if (n == 0)
			break;
		x->in_len += (size_t)n;
	}
	x->in[x->in_len] = '\0'; /* for json-c's NUL-terminated parsers; the length decides */
	return 0;
}

/*
 * CNI_CONTAINERID and CNI_IFNAME present; strict (ADD, CHECK): well-formed,
 * and CNI_ARGS too.
 */
static int need_env(struct run *x, bool strict)
{
	x->cid = getenv("CNI_CONTAINERID");
	x->ifname = getenv("CNI_IFNAME");
	x->netns = getenv("CNI_NETNS");
	if (!x->cid || !*x->cid)
		return zt_cni_fail(&x->e, ZT_CNI_E_ENV, NULL, "CNI_CONTAINERID is not set");
	if (!x->ifname || !*x->ifname)
		return zt_cni_fail(&x->e, ZT_CNI_E_ENV, NULL, "CNI_IFNAME is not set");
	if (strict && !zt_cni_cid_valid(x->cid))
		return zt_cni_fail(&x->e, ZT_CNI_E_ENV, NULL,
				   "CNI_CONTAINERID '%.80s' is not a container id (1-256 of "
				   "A-Z a-z 0-9 _ . -, alphanumeric first)",
				   x->cid);
	if (strict && !zt_ifname_valid(x->ifname))
		return zt_cni_fail(&x->e, ZT_CNI_E_ENV, NULL,
				   "CNI_IFNAME '%.40s' is not an interface name", x->ifname);
	if (zt_cni_args_parse(getenv("CNI_ARGS"), &x->args, &x->e) < 0) {
		/* A DEL must not fail on what it only logs: the deletion still happens. */
		if (strict)
			return -x->e.code;
		memset(&x->args, 0, sizeof(x->args));
	}
	return 0;
}

static cbor_item_t *new_req(const char *op)
{
	cbor_item_t *m = zt_cbor_map();

	if (m && zt_cbor_put_str(m, "op", op)) {
		cbor_decref(&m);
		return NULL;
	}
	return m;
}

/*
 * The host side of the container's veth. A result's interfaces without a
 * sandbox are host-side; among them the veths (a bridge plugin lists its
 * bridge too). One: that is it. None (the primary did not report it) or
 * several: the peer of CNI_IFNAME, read inside CNI_NETNS, decides.
 */
static int host_veth(struct run *x, const struct zt_cni_prev *p, char *host, size_t n)
{
	const char *cand[ZT_CNI_MAX_IFACES];
	struct zt_cni_link cl, hl;
	size_t nc = 0;
	char why[512];
	int r;

	for (size_t i = 0; i < p->n_ifs; i++) {
		struct zt_cni_link l;

		if (!p->ifs[i].in_sandbox && zt_cni_link_get(p->ifs[i].name, 0, &l) == 0 &&
		    !strcmp(l.kind, "veth"))
			cand[nc++] = p->ifs[i].name;
	}
	if (nc == 1) {
		snprintf(host, n, "%s", cand[0]);
		return 0;
	}
	if (!x->netns || !*x->netns)
		return zt_cni_fail(&x->e, ZT_CNI_E_ENV, NULL,
				   "CNI_NETNS is not set; it is needed to find the host side of %s",
				   x->ifname);
	r = zt_cni_link_in_netns(x->netns, x->ifname, &cl, why, sizeof(why));
	if (r == -ENOENT || r == -ENODEV)
		return zt_cni_fail(&x->e, ZT_CNI_E_CONTAINER, why,
				   "the container's interface %s is not there", x->ifname);
	if (r < 0)
		return zt_cni_fail(&x->e, ZT_CNI_E_IO, why,
				   "cannot read the container's interface %s", x->ifname);
	if (strcmp(cl.kind, "veth") || !cl.link)
		return zt_cni_fail(
			&x->e, ZT_CNI_E_INTERFACE,
			"ztagent enforces on the host side of a veth pair (ptp, bridge, "
			"Calico-style routed veths); macvlan/ipvlan have none",
			"the container's %s is a %s interface, not one end of a veth pair",
			x->ifname, cl.kind[0] ? cl.kind : "physical");
	if (zt_cni_link_get(NULL, cl.link, &hl) < 0 || strcmp(hl.kind, "veth") ||
	    hl.link != cl.ifindex)
		return zt_cni_fail(
			&x->e, ZT_CNI_E_INTERFACE,
			"the runtime must run the plugin in the host's network namespace",
			"the peer of the container's %s (ifindex %d) is not a veth in this "
			"network namespace",
			x->ifname, cl.link);
	if (nc > 1) {
		bool listed = false;

		for (size_t i = 0; i < nc; i++)
			listed |= !strcmp(cand[i], hl.name);
		if (!listed)
			return zt_cni_fail(
				&x->e, ZT_CNI_E_INTERFACE, NULL,
				"prevResult lists host veths, but not %s, the peer of %s", hl.name,
				x->ifname);
	}
	snprintf(host, n, "%s", hl.name);
	return 0;
}

/* The daemon's refusal as a CNI error. */
static int refused(struct run *x, const char *what, const char *why)
{
	return zt_cni_fail(&x->e, ZT_CNI_E_REFUSED, why, "ztagent refused %s: %s", what, why);
}

static int cmd_add(struct run *x)
{
	struct zt_cni_prev *p = calloc(1, sizeof(*p));
	char host[IF_NAMESIZE], addrs[16 * 48], err[1024];
	const cbor_item_t *data;
	cbor_item_t *req = NULL, *reply = NULL;
	size_t n_addrs;
	int r, den;

	if (!p)
		return zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
	if ((r = need_env(x, true)) < 0 ||
	    (r = zt_cni_prev_parse(x->conf.prev, x->ifname, p, &x->e)) < 0 ||
	    (r = zt_cni_prev_addrs(p, addrs, sizeof(addrs), &n_addrs, &x->e)) < 0)
		goto out;
	if (!x->netns || !*x->netns) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_ENV, NULL, "CNI_NETNS is not set");
		goto out;
	}
	if ((r = host_veth(x, p, host, sizeof(host))) < 0)
		goto out;
	req = new_req(ZT_OP_ENDPOINT_ADD);
	if (!req || zt_cbor_put_str(req, "origin", "cni") || zt_cbor_put_str(req, "ifname", host) ||
	    zt_cbor_put_str(req, "ip", addrs) || zt_cbor_put_str(req, "container_id", x->cid) ||
	    zt_cbor_put_str(req, "cni_ifname", x->ifname) ||
	    (x->args.ns[0] && zt_cbor_put_str(req, "namespace", x->args.ns)) ||
	    (x->args.name[0] && zt_cbor_put_str(req, "name", x->args.name)) ||
	    (x->args.uid[0] && zt_cbor_put_str(req, "pod_uid", x->args.uid))) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
		goto out;
	}
	r = zt_cni_call(x->conf.socket, x->conf.timeout_ns, req, &reply, &data, &den, err,
			sizeof(err));
	if (r == -EHOSTDOWN) {
		/* No endpoint, no pod: the runtime retries the sandbox. */
		r = zt_cni_fail(&x->e, ZT_CNI_E_TRY_LATER, err,
				"the ztagent daemon is not reachable; try again later (the pod "
				"cannot start unenforced)");
		goto out;
	}
	if (r == -EREMOTEIO) {
		r = refused(x, "the endpoint", err);
		goto out;
	}
	if (r < 0) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, err, "cannot reach the ztagent daemon");
		goto out;
	}
	/* The primary's result, byte for byte as the runtime gave it. */
	if (fwrite(x->conf.prev_text, 1, x->conf.prev_len, stdout) != x->conf.prev_len ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "writing the result: %s",
				strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (req)
		cbor_decref(&req);
	if (reply)
		cbor_decref(&reply);
	free(p);
	return r;
}

static int cmd_del(struct run *x)
{
	const cbor_item_t *data;
	cbor_item_t *req = NULL, *reply = NULL;
	char err[1024], dir[PATH_MAX + 32], path[PATH_MAX + 64];
	int r, den;

	if ((r = need_env(x, false)) < 0)
		return r;
	/* ADD refuses such ids: nothing of it can be registered, so nothing to remove. */
	if (!zt_cni_cid_valid(x->cid) || !zt_ifname_valid(x->ifname))
		return 0;
	req = new_req(ZT_OP_ENDPOINT_DEL);
	if (!req || zt_cbor_put_str(req, "container_id", x->cid) ||
	    zt_cbor_put_str(req, "cni_ifname", x->ifname)) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
		goto out;
	}
	r = zt_cni_call(x->conf.socket, x->conf.timeout_ns, req, &reply, &data, &den, err,
			sizeof(err));
	if (r == -EHOSTDOWN) {
		struct zt_cni_del d = { .queued_unix = zt_now_unix() };
		char why[1024];

		snprintf(d.container_id, sizeof(d.container_id), "%s", x->cid);
		snprintf(d.ifname, sizeof(d.ifname), "%s", x->ifname);
		snprintf(d.pod_ns, sizeof(d.pod_ns), "%s", x->args.ns);
		snprintf(d.pod_name, sizeof(d.pod_name), "%s", x->args.name);
		snprintf(d.pod_uid, sizeof(d.pod_uid), "%s", x->args.uid);
		snprintf(dir, sizeof(dir), "%s/%s", x->conf.state_dir, ZT_CNI_SPOOL_SUBDIR);
		r = zt_cni_spool_write(dir, &d, path, sizeof(path), why, sizeof(why));
		if (r < 0) {
			r = zt_cni_fail(
				&x->e, ZT_CNI_E_IO, why,
				"the ztagent daemon is not reachable (%s) and the DEL cannot "
				"be queued",
				err);
			goto out;
		}
		fprintf(stderr,
			"ztagent-cni: level=warn event=cni_del_queued container_id=%s ifname=%s "
			"file=%s why=\"%s\"\n",
			x->cid, x->ifname, path, err);
		r = 0;
		goto out;
	}
	if (r == -EREMOTEIO)
		r = refused(x, "the deletion", err);
	else if (r < 0)
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, err, "cannot reach the ztagent daemon");
out:
	if (req)
		cbor_decref(&req);
	if (reply)
		cbor_decref(&reply);
	return r;
}

/* Do the daemon's addresses ("A,B") hold exactly the result's? */
static bool same_addrs(const char *daemon, const char *result)
{
	char a[16 * 48], b[16 * 48 + 8], *save = NULL, *t;
	size_t na = 0, nb = 0;

	snprintf(a, sizeof(a), "%s", daemon);
	snprintf(b, sizeof(b), ",%s,", result);
	for (t = strtok_r(a, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char k[64];

		snprintf(k, sizeof(k), ",%s,", t);
		if (!strstr(b, k))
			return false;
		na++;
	}
	for (const char *c = result; *c; c++)
		nb += *c == ',';
	return na == nb + 1;
}

static int cmd_check(struct run *x)
{
	struct zt_cni_prev *p = calloc(1, sizeof(*p));
	char addrs[16 * 48], ip[16 * 48], err[1024], problem[256];
	const cbor_item_t *data;
	cbor_item_t *req = NULL, *reply = NULL;
	bool enforced = false;
	size_t n_addrs;
	int r, den;

	if (!p)
		return zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
	if (!zt_cni_version_ge(x->conf.version, "0.4.0")) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_VERSION, NULL,
				"CHECK is defined from CNI 0.4.0 on; the configuration says %s",
				x->conf.version);
		goto out;
	}
	if ((r = need_env(x, true)) < 0 ||
	    (r = zt_cni_prev_parse(x->conf.prev, x->ifname, p, &x->e)) < 0 ||
	    (r = zt_cni_prev_addrs(p, addrs, sizeof(addrs), &n_addrs, &x->e)) < 0)
		goto out;
	req = new_req(ZT_OP_ENDPOINT_CHECK);
	if (!req || zt_cbor_put_str(req, "container_id", x->cid) ||
	    zt_cbor_put_str(req, "cni_ifname", x->ifname)) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
		goto out;
	}
	r = zt_cni_call(x->conf.socket, x->conf.timeout_ns, req, &reply, &data, &den, err,
			sizeof(err));
	if (r == -EHOSTDOWN) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_TRY_LATER, err,
				"the ztagent daemon is not reachable; try again later");
		goto out;
	}
	if (r == -EREMOTEIO && den == ENOENT) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_NOT_ENFORCED, err,
				"ztagent has no endpoint for this container: it is not enforced");
		goto out;
	}
	if (r == -EREMOTEIO) {
		r = refused(x, "the check", err);
		goto out;
	}
	if (r < 0) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_IO, err, "cannot reach the ztagent daemon");
		goto out;
	}
	if (zt_cbor_get_bool(data, "enforced", &enforced) < 0 || !enforced) {
		if (zt_cbor_get_str(data, "problem", problem, sizeof(problem)) < 0)
			snprintf(problem, sizeof(problem), "the daemon did not say");
		r = zt_cni_fail(&x->e, ZT_CNI_E_NOT_ENFORCED, problem,
				"the container's endpoint is registered but not enforced");
		goto out;
	}
	if (zt_cbor_get_str(data, "ip", ip, sizeof(ip)) < 0 || !same_addrs(ip, addrs)) {
		r = zt_cni_fail(&x->e, ZT_CNI_E_NOT_ENFORCED, NULL,
				"ztagent enforces the container at %s, but prevResult says %s", ip,
				addrs);
		goto out;
	}
	r = 0;
out:
	if (req)
		cbor_decref(&req);
	if (reply)
		cbor_decref(&reply);
	free(p);
	return r;
}

static int cmd_version(struct run *x)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array(), *root, *v;
	const char *want = ZT_CNI_LATEST;

	/* Answer in the version asked for, when we speak it. */
	root = x->in_len ? json_tokener_parse(x->in) : NULL;
	if (root && json_object_object_get_ex(root, "cniVersion", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    zt_cni_version_ok(json_object_get_string(v)))
		want = json_object_get_string(v);
	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		json_object_put(root);
		return zt_cni_fail(&x->e, ZT_CNI_E_IO, NULL, "out of memory");
	}
	for (size_t i = 0; zt_cni_versions[i]; i++)
		json_object_array_add(arr, json_object_new_string(zt_cni_versions[i]));
	json_object_object_add(o, "cniVersion", json_object_new_string(want));
	json_object_object_add(o, "supportedVersions", arr);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	json_object_put(root);
	return 0;
}

int main(int argc, char **argv)
{
	struct run x = { 0 };
	int r;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("ztagent-cni: a chained CNI plugin (CNI 1.0.0; 0.3.x/0.4.0 results) that\n"
		       "registers each pod's veth with the ztagent daemon, so the pod is under\n"
		       "policy from its first packet. Container runtimes run it; it reads the\n"
		       "network configuration on stdin and CNI_COMMAND, CNI_CONTAINERID,\n"
		       "CNI_NETNS, CNI_IFNAME, CNI_ARGS from the environment.\n"
		       "Configuration keys: socket, timeout, state_dir (see the README).\n");
		return 0;
	}
	x.cmd = getenv("CNI_COMMAND");
	r = read_stdin(&x);
	if (r == 0 && (!x.cmd || !*x.cmd))
		r = zt_cni_fail(&x.e, ZT_CNI_E_ENV,
				"ztagent-cni is a CNI plugin: container runtimes run it",
				"CNI_COMMAND is not set");
	if (r == 0 && !strcmp(x.cmd, "VERSION")) {
		r = cmd_version(&x);
	} else if (r == 0) {
		bool add = !strcmp(x.cmd, "ADD"), check = !strcmp(x.cmd, "CHECK"),
		     del = !strcmp(x.cmd, "DEL");

		if (!add && !check && !del)
			r = zt_cni_fail(&x.e, ZT_CNI_E_ENV,
					"ztagent-cni implements ADD, DEL, CHECK, VERSION",
					"CNI_COMMAND '%.20s' is not supported", x.cmd);
		if (r == 0)
			r = zt_cni_conf_parse(x.in, x.in_len, add || check, &x.conf, &x.e);
		if (r == 0)
			r = add ? cmd_add(&x) : del ? cmd_del(&x) : cmd_check(&x);
	}
	if (r < 0) {
		char *j = zt_cni_err_json(x.conf.version, &x.e);

		printf("%s\n", j ? j : "{\"code\":5,\"msg\":\"out of memory\"}");
		fflush(stdout);
		free(j);
	}
	zt_cni_conf_free(&x.conf);
	free(x.in);
	return r < 0 ? 1 : 0;
}
