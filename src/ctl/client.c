// SPDX-License-Identifier: GPL-2.0-only
/* ztctl's client side of the daemon's API: connect, send one request, read its answer. */
#include <sys/un.h>

#include "ctl/ctl.h"

int ctl_connect(struct ctl *ctl)
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

cbor_item_t *request(const char *op)
{
	cbor_item_t *m = zt_cbor_map();

	if (!m || zt_cbor_put_str(m, "op", op))
		die_nomem();
	return m;
}

void put_str(cbor_item_t *m, const char *key, const char *v)
{
	if (zt_cbor_put_str(m, key, v))
		die_nomem();
}

void put_u64(cbor_item_t *m, const char *key, uint64_t v)
{
	if (zt_cbor_put_u64(m, key, v))
		die_nomem();
}

/*
 * Sends req (consumed) without waiting for the reply: 0, or an exit code
 * with the reason printed. A failed send still reads the reply (call_recv):
 * the daemon may have said why before it closed.
 */
int call_send(struct ctl *ctl, cbor_item_t *req)
{
	int r = ctl_connect(ctl);

	if (r) {
		cbor_decref(&req);
		return r;
	}
	ctl->send_err = zt_msg_send(ctl->fd, req);
	cbor_decref(&req);
	if (ctl->send_err < 0 && ctl->send_err != -EPIPE && ctl->send_err != -ECONNRESET) {
		fprintf(stderr, "ztctl: cannot send the request to ztagent at %s: %s\n", ctl->sock,
			ctl->send_err == -ETIMEDOUT ? "timed out" : strerror(-ctl->send_err));
		return ctl->send_err == -EMSGSIZE ? EXIT_FAIL : EXIT_UNREACHABLE;
	}
	return EXIT_OK;
}

/*
 * Waits for the reply to the request call_send sent. On success returns 0
 * with *reply (the caller frees it) and *data (inside it, may be NULL);
 * else an exit code, the reason printed.
 */
int call_recv(struct ctl *ctl, cbor_item_t **reply, const cbor_item_t **data)
{
	char err[1024] = "", msg[1024];
	cbor_item_t *rep = NULL;
	bool ok = false;
	int r;

	*reply = NULL;
	*data = NULL;
	r = zt_msg_recv(ctl->fd, &rep, err, sizeof(err));
	if (r < 0) {
		if (r == -ETIMEDOUT)
			fprintf(stderr,
				"ztctl: ztagent at %s did not answer within %d s; it may be busy or stuck (check its log)\n",
				ctl->sock, TIMEOUT_S);
		else if (r == -ECONNRESET)
			fprintf(stderr,
				"ztctl: ztagent at %s closed the connection without an answer%s; check its log\n",
				ctl->sock,
				ctl->send_err < 0 ? " (while the request was being sent)" : "");
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

/* Sends req (consumed), waits for the reply: call_send, then call_recv. */
int call(struct ctl *ctl, cbor_item_t *req, cbor_item_t **reply, const cbor_item_t **data)
{
	int r = call_send(ctl, req);

	*reply = NULL;
	*data = NULL;
	return r ? r : call_recv(ctl, reply, data);
}

static volatile sig_atomic_t stop_stream;

static void on_stop_stream(int sig)
{
	stop_stream = 1;
}

/*
 * A ring the daemon keeps (alerts, verdicts): what it still holds, oldest
 * first, then with --follow what comes, polled every interval_us until
 * Ctrl-C. The daemon says how many entries were overwritten between polls.
 */
int stream_ring(struct ctl *ctl, struct opts *o, const struct ring_stream *rs)
{
	uint64_t after = 0;
	bool first = true;

	if (o->follow) {
		struct sigaction sa = { .sa_handler = on_stop_stream };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		setvbuf(stdout, NULL, _IOLBF, 0);
	}
	do {
		const cbor_item_t *d, *list;
		cbor_item_t *req = request(rs->op), *reply;
		uint64_t missed;
		int r;

		put_u64(req, "after", after);
		put_u64(req, "limit", o->limit ? o->limit : rs->default_limit);
		if (rs->add_filters)
			rs->add_filters(req, o);
		r = call(ctl, req, &reply, &d);
		if (r)
			return r;
		list = zt_cbor_get(d, rs->list_key);
		missed = u64_of(d, "missed");
		if (missed && !first)
			fprintf(stderr, "ztctl: %llu %s were overwritten before they were shown\n",
				(unsigned long long)missed, rs->what);
		for (size_t i = 0; i < arr_len(list); i++)
			rs->print(ctl, arr_at(list, i));
		after = u64_of(d, "last");
		cbor_decref(&reply);
		first = false;
		if (o->follow && !stop_stream)
			usleep(rs->interval_us);
	} while (o->follow && !stop_stream);
	return EXIT_OK;
}
