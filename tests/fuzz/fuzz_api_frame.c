// SPDX-License-Identifier: GPL-2.0-only
/*
 * The API socket, as a local client (ztctl, the CNI hook, anything that can
 * open it) drives it: the input is the byte stream written to one
 * connection of the real server (src/agent/api.c on its loop): frame
 * headers, payloads, pre-scan and CBOR decoding, op dispatch, handlers that
 * read their arguments the way the daemon's do, replies. The client side
 * decodes every reply as ztctl does (zt_msg_decode, JSON output).
 *
 * Properties: the server answers and closes once the client has sent
 * everything and shut its side (no hang, no leak); every reply is a
 * well-formed frame holding a map with a boolean "ok".
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "agent/api.h"
#include "agent/apimsg.h"
#include "agent/loop.h"
#include "agent/util.h"
#include "seg/endpoint.h"

static struct zt_loop *loop;
static struct zt_api *api;
static char sock_path[100];
static FILE *devnull;

/* Handlers shaped like the daemon's: read typed arguments, build a reply. */
static int op_echo(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	*data = cbor_incref((cbor_item_t *)req);
	return 0;
}

static int op_endpoint_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			   size_t errlen)
{
	char ifname[64], name[ZT_EP_NAME_MAX + 2], ns[80], ip[2048], labels[8192], nsl[8192],
		ports[4096];
	struct zt_ep *ep;
	int r;

	ifname[0] = name[0] = ns[0] = ip[0] = labels[0] = nsl[0] = ports[0] = '\0';
	if ((r = zt_cbor_get_str(req, "ifname", ifname, sizeof(ifname))) < 0 ||
	    (r = zt_cbor_get_str(req, "ip", ip, sizeof(ip))) < 0) {
		snprintf(err, errlen, "ifname and ip are required text");
		return r == -ENOENT ? -EINVAL : r;
	}
	zt_cbor_get_str(req, "name", name, sizeof(name));
	zt_cbor_get_str(req, "namespace", ns, sizeof(ns));
	zt_cbor_get_str(req, "labels", labels, sizeof(labels));
	zt_cbor_get_str(req, "namespace_labels", nsl, sizeof(nsl));
	zt_cbor_get_str(req, "ports", ports, sizeof(ports));
	{
		struct zt_ep_spec spec = { .ifname = ifname,
					   .name = name,
					   .ns = ns,
					   .addrs = ip,
					   .labels = labels,
					   .ns_labels = nsl,
					   .ports = ports };

		r = zt_ep_from_spec(&spec, &ep, err, errlen);
	}
	if (r < 0)
		return r;
	*data = zt_cbor_map();
	zt_labels_format(ep->labels, ep->n_labels, labels, sizeof(labels));
	zt_ep_addrs_format(ep, ip, sizeof(ip));
	if (!*data || zt_cbor_put_str(*data, "endpoint", ep->qname) ||
	    zt_cbor_put_str(*data, "ip", ip) || zt_cbor_put_str(*data, "labels", labels))
		r = -ENOMEM;
	zt_ep_free(ep);
	return r;
}

static int op_block_add(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			size_t errlen)
{
	char s[ZT_CIDR_STRLEN + 8], note[128], text[ZT_CIDR_STRLEN];
	struct zt_cidr c;
	uint64_t ttl = 0;
	bool b = false;
	int r;

	r = zt_cbor_get_str(req, "cidr", s, sizeof(s));
	if (r < 0 || zt_cidr_parse(s, &c, NULL) < 0) {
		snprintf(err, errlen, "field 'cidr': expected a CIDR");
		return -EINVAL;
	}
	if (zt_cbor_get_u64(req, "ttl_s", &ttl) == -EINVAL ||
	    zt_cbor_get_str(req, "reason", note, sizeof(note)) == -E2BIG ||
	    zt_cbor_get_bool(req, "replace", &b) == -EINVAL) {
		snprintf(err, errlen, "bad ttl_s, reason or replace");
		return -EINVAL;
	}
	zt_cidr_format(&c, text, sizeof(text));
	*data = zt_cbor_map();
	if (!*data || zt_cbor_put_str(*data, "cidr", text) || zt_cbor_put_u64(*data, "ttl_s", ttl))
		return -ENOMEM;
	return 0;
}

static int op_fail(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	char why[256] = "";

	zt_cbor_get_str(req, "why", why, sizeof(why));
	snprintf(err, errlen, "refused: %s", why);
	return -EPERM;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	if ((size_t)snprintf(sock_path, sizeof(sock_path), "%s/api.sock", fuzz_tmpdir("api")) >=
	    sizeof(sock_path))
		abort();
	devnull = fopen("/dev/null", "w");
	if (!devnull || zt_loop_init(&loop) < 0 ||
	    zt_api_init(&api, loop, sock_path, err, sizeof(err)) < 0 ||
	    zt_api_register(api, "echo", op_echo, NULL) < 0 ||
	    zt_api_register(api, "endpoint.add", op_endpoint_add, NULL) < 0 ||
	    zt_api_register(api, "block.add", op_block_add, NULL) < 0 ||
	    zt_api_register(api, "fail", op_fail, NULL) < 0) {
		fprintf(stderr, "api harness: %s\n", err);
		abort();
	}
	return 0;
}

/* Every reply in the stream the server sent: frames of a map with "ok". */
static void check_replies(const uint8_t *b, size_t n)
{
	size_t pos = 0;

	while (pos < n) {
		uint32_t len;
		cbor_item_t *item;
		char err[512];
		bool ok;

		FUZZ_CHECK(n - pos >= ZT_API_HDR_LEN, "a torn reply header at byte %zu", pos);
		len = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 |
		      (uint32_t)b[pos + 2] << 8 | b[pos + 3];
		pos += ZT_API_HDR_LEN;
		FUZZ_CHECK(len > 0 && len <= n - pos, "a reply of %u bytes, %zu there", len,
			   n - pos);
		FUZZ_CHECK(zt_msg_decode(b + pos, len, &item, err, sizeof(err)) == 0,
			   "a reply does not decode: %s", err);
		FUZZ_CHECK(zt_cbor_get_bool(item, "ok", &ok) == 0, "a reply without 'ok'");
		zt_cbor_to_json(item, devnull, true);
		cbor_decref(&item);
		pos += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t sent = 0, got = 0, cap = 1 << 16;
	uint8_t *in = malloc(cap);
	bool shut = false;
	int fd, idle = 0;

	if (!in)
		abort();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	for (;;) {
		ssize_t k;
		bool progress = false;

		if (sent < size) {
			k = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k > 0) {
				sent += (size_t)k;
				progress = true;
			} else if (k < 0 && errno == EPIPE) {
				sent = size; /* the server closed after a refusal */
			}
		}
		if (sent == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		if (zt_loop_run_once(loop, 0) > 0)
			progress = true;
		if (got == cap) {
			cap *= 2;
			in = realloc(in, cap);
			if (!in)
				abort();
		}
		k = recv(fd, in + got, cap - got, MSG_DONTWAIT);
		if (k == 0)
			break; /* the server closed: done */
		if (k > 0) {
			got += (size_t)k;
			progress = true;
		} else if (errno == ECONNRESET) {
			break;
		}
		idle = progress ? 0 : idle + 1;
		FUZZ_CHECK(idle < 10000, "the server neither answers nor closes (%zu of %zu sent)",
			   sent, size);
	}
	close(fd);
	check_replies(in, got);
	free(in);
	return 0;
}
