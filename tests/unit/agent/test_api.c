// SPDX-License-Identifier: GPL-2.0-only
/*
 * The API server on a real unix socket. The loop runs in a thread of its
 * own, as in the daemon; the test thread is the client, with the blocking
 * helpers ztctl uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/api.h"
#include "agent/apimsg.h"
#include "agent/loop.h"

struct fx {
	char dir[32];
	char sub[48];
	char path[64];
	struct zt_loop *loop;
	struct zt_api *api;
	pthread_t thread;
	bool running;
	int stop;
	int calls; /* handler calls, written by the loop thread */
};

/* ---- handlers ---- */

/* {"x": any} -> {"got": any} */
static int op_echo(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	struct fx *fx = ctx;
	cbor_item_t *x = zt_cbor_get(req, "x");

	__atomic_add_fetch(&fx->calls, 1, __ATOMIC_SEQ_CST);
	*data = zt_cbor_map();
	if (!*data)
		return -ENOMEM;
	if (x && zt_cbor_put(*data, "got", cbor_incref(x)) < 0) {
		cbor_decref(&x);
		return -ENOMEM;
	}
	return 0;
}

static int op_fail(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	snprintf(err, errlen, "198.18.0.0/24 is not on the blocklist");
	return -ENOENT;
}

static int op_fail_silent(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			  size_t errlen)
{
	return -EACCES;
}

/* Sets data, then fails: the server must drop the data (no leak under ASan). */
static int op_fail_with_data(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
			     size_t errlen)
{
	*data = zt_cbor_map();
	snprintf(err, errlen, "half-built");
	return -ENOMEM;
}

static int op_nodata(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err,
		     size_t errlen)
{
	return 0;
}

/* A reply over the message limit. */
static int op_huge(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	uint8_t *big = calloc(1, ZT_API_MAX_MSG);

	if (!big)
		return -ENOMEM;
	*data = cbor_build_bytestring(big, ZT_API_MAX_MSG);
	free(big);
	return *data ? 0 : -ENOMEM;
}

static const struct {
	const char *op;
	zt_api_handler fn;
} handlers[] = {
	{ "echo", op_echo },
	{ "fail", op_fail },
	{ "fail_silent", op_fail_silent },
	{ "fail_with_data", op_fail_with_data },
	{ "nodata", op_nodata },
	{ "huge", op_huge },
};

/* ---- fixture ---- */

static void *loop_thread(void *arg)
{
	struct fx *fx = arg;

	while (!__atomic_load_n(&fx->stop, __ATOMIC_SEQ_CST))
		zt_loop_run_once(fx->loop, 20);
	return NULL;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/zt-api-test-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	/* The server creates "run" itself. */
	snprintf(fx->sub, sizeof(fx->sub), "%s/run", fx->dir);
	snprintf(fx->path, sizeof(fx->path), "%s/api.sock", fx->sub);
	if (zt_loop_init(&fx->loop) < 0)
		return -1;
	*state = fx;
	return 0;
}

/* Binds the server and starts the loop thread. */
static void start(struct fx *fx)
{
	char err[256] = "";
	int r = zt_api_init(&fx->api, fx->loop, fx->path, err, sizeof(err));

	if (r < 0)
		fail_msg("zt_api_init: %d %s", r, err);
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		assert_int_equal(zt_api_register(fx->api, handlers[i].op, handlers[i].fn, fx), 0);
	assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
	fx->running = true;
}

static void halt(struct fx *fx)
{
	if (fx->running) {
		__atomic_store_n(&fx->stop, 1, __ATOMIC_SEQ_CST);
		pthread_join(fx->thread, NULL);
		fx->running = false;
	}
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	struct stat st;

	halt(fx);
	zt_api_stop(fx->api);
	zt_loop_stop(fx->loop);
	/* The server removes its socket. */
	if (fx->api && stat(fx->path, &st) == 0)
		return -1;
	unlink(fx->path);
	rmdir(fx->sub);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---- client helpers ---- */

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	/* A hung server fails the test instead of hanging it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int client(struct fx *fx)
{
	int fd = try_connect(fx->path);

	if (fd < 0)
		fail_msg("connect %s: %s", fx->path, strerror(-fd));
	return fd;
}

static cbor_item_t *recv_reply(int fd)
{
	cbor_item_t *rep = NULL;
	char err[256] = "";
	int r = zt_msg_recv(fd, &rep, err, sizeof(err));

	if (r < 0)
		fail_msg("zt_msg_recv: %d %s", r, err);
	return rep;
}

/* Sends {"op": op} plus, when x is set, "x": x (consumed). */
static void send_req(int fd, const char *op, cbor_item_t *x)
{
	cbor_item_t *req = zt_cbor_map();

	assert_int_equal(zt_cbor_put_str(req, "op", op), 0);
	if (x)
		assert_int_equal(zt_cbor_put(req, "x", x), 0);
	assert_int_equal(zt_msg_send(fd, req), 0);
	cbor_decref(&req);
}

static void send_raw(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Checks an error reply: ok false, errno, and a substring of the message. */
static void expect_error(cbor_item_t *rep, int want_errno, const char *msg)
{
	char text[512];
	uint64_t e = 0;
	bool ok = true;

	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_false(ok);
	assert_int_equal(zt_cbor_get_u64(rep, "errno", &e), 0);
	assert_int_equal(zt_cbor_get_str(rep, "error", text, sizeof(text)), 0);
	if ((int)e != want_errno || !strstr(text, msg))
		fail_msg("error reply: errno %llu '%s', want errno %d and '%s'",
			 (unsigned long long)e, text, want_errno, msg);
	assert_null(zt_cbor_get(rep, "data"));
}

/* The server has closed: EOF, or ECONNRESET when it left our data unread. */
static void expect_closed(int fd)
{
	cbor_item_t *rep = NULL;
	char err[256];
	int r = zt_msg_recv(fd, &rep, err, sizeof(err));

	if (r != -ECONNRESET)
		fail_msg("expected the server to close, got %d (%s)", r, err);
}

/* ---- tests ---- */

static void test_request_reply(void **state)
{
	struct fx *fx = *state;
	cbor_item_t *rep;
	char buf[64];
	bool ok = false;
	int fd;

	start(fx);
	fd = client(fx);
	send_req(fd, "echo", cbor_build_string("hello"));
	rep = recv_reply(fd);
	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_true(ok);
	assert_int_equal(zt_cbor_get_str(zt_cbor_get(rep, "data"), "got", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "hello");
	assert_null(zt_cbor_get(rep, "error"));
	cbor_decref(&rep);

	/* Pipelined requests are answered in order. */
	for (uint64_t i = 0; i < 20; i++)
		send_req(fd, "echo", cbor_build_uint64(i));
	for (uint64_t i = 0; i < 20; i++) {
		uint64_t got = 99;

		rep = recv_reply(fd);
		assert_int_equal(zt_cbor_get_u64(zt_cbor_get(rep, "data"), "got", &got), 0);
		assert_int_equal(got, i);
		cbor_decref(&rep);
	}
	/* A client that half-closes after its request still gets the answer. */
	send_req(fd, "nodata", NULL);
	shutdown(fd, SHUT_WR);
	rep = recv_reply(fd);
	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_true(ok);
	assert_null(zt_cbor_get(rep, "data"));
	cbor_decref(&rep);
	expect_closed(fd);
	close(fd);
	assert_int_equal(__atomic_load_n(&fx->calls, __ATOMIC_SEQ_CST), 21);
}

struct err_case {
	const char *what;
	const uint8_t *payload; /* a CBOR request */
	size_t len;
	int want_errno;
	const char *msg;
	bool closes;
};

#define B(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static const struct err_case err_cases[] = {
	{ "unknown op", B(0xa1, 0x62, 'o', 'p', 0x64, 'n', 'o', 'p', 'e'), EOPNOTSUPP,
	  "unknown operation 'nope'", false },
	{ "unknown op with a newline", B(0xa1, 0x62, 'o', 'p', 0x62, 'a', '\n'), EOPNOTSUPP,
	  "unknown operation 'a?'", false },
	{ "no op", B(0xa1, 0x61, 'x', 0x01), EINVAL, "no 'op' field", false },
	{ "op is a number", B(0xa1, 0x62, 'o', 'p', 0x01), EINVAL, "'op' must be a text", false },
	{ "op is bytes", B(0xa1, 0x62, 'o', 'p', 0x41, 'a'), EINVAL, "'op' must be a text", false },
	{ "op with NUL", B(0xa1, 0x62, 'o', 'p', 0x62, 'a', 0x00), EINVAL, "NUL", false },
	{ "handler error", B(0xa1, 0x62, 'o', 'p', 0x64, 'f', 'a', 'i', 'l'), ENOENT,
	  "198.18.0.0/24 is not on the blocklist", false },
	{ "handler error without a message",
	  B(0xa1, 0x62, 'o', 'p', 0x6b, 'f', 'a', 'i', 'l', '_', 's', 'i', 'l', 'e', 'n', 't'),
	  EACCES, "fail_silent failed: Permission denied", false },
	{ "handler error with data",
	  B(0xa1, 0x62, 'o', 'p', 0x6e, 'f', 'a', 'i', 'l', '_', 'w', 'i', 't', 'h', '_', 'd', 'a',
	    't', 'a'),
	  ENOMEM, "half-built", false },
	{ "garbage CBOR", B(0xa1, 0xff, 0xff), EPROTO, "malformed request", true },
	{ "truncated CBOR", B(0xa1, 0x62, 'o', 'p', 0x66, 's', 't'), EPROTO,
	  "text string at byte 4 declares 6 bytes, 2 remain", true },
	{ "truncated map", B(0xbf, 0x62, 'o', 'p'), EPROTO, "truncated at byte 4", true },
	{ "not a map", B(0x82, 0x01, 0x02), EPROTO, "expected a map", true },
	{ "invalid UTF-8", B(0xa1, 0x62, 'o', 'p', 0x61, 0xff), EPROTO, "UTF-8", true },
	{ "trailing bytes", B(0xa0, 0x00), EPROTO, "trailing", true },
	{ "too deep",
	  B(0xa1, 0x61, 'a', 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81,
	    0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81,
	    0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x00),
	  EPROTO, "nesting deeper than 32", true },
};

static void test_error_replies(void **state)
{
	struct fx *fx = *state;

	start(fx);
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		uint8_t hdr[4] = { 0, 0, (uint8_t)(c->len >> 8), (uint8_t)c->len };
		int fd = client(fx);
		cbor_item_t *rep;

		send_raw(fd, hdr, sizeof(hdr));
		send_raw(fd, c->payload, c->len);
		rep = recv_reply(fd);
		print_message("  %s\n", c->what);
		expect_error(rep, c->want_errno, c->msg);
		cbor_decref(&rep);
		if (c->closes) {
			expect_closed(fd);
		} else {
			/* The connection is still good. */
			bool ok = false;

			send_req(fd, "nodata", NULL);
			rep = recv_reply(fd);
			assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
			assert_true(ok);
			cbor_decref(&rep);
		}
		close(fd);
	}
}

static void test_oversize_frame(void **state)
{
	static const uint8_t headers[][4] = {
		{ 0x04, 0x00, 0x00, 0x01 }, /* ZT_API_MAX_MSG + 1 */
		{ 0xff, 0xff, 0xff, 0xff },
		{ 0x00, 0x00, 0x00, 0x00 }, /* empty */
	};
	struct fx *fx = *state;

	start(fx);
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		int fd = client(fx);
		cbor_item_t *rep;
		uint8_t junk[4096];

		memset(junk, 0xa0, sizeof(junk));
		send_raw(fd, headers[i], 4);
		/* The payload the client goes on sending is never read (the server may be gone). */
		(void)!send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
		rep = recv_reply(fd);
		expect_error(rep, EMSGSIZE, i == 2 ? "frame of 0 bytes refused" : "refused");
		cbor_decref(&rep);
		expect_closed(fd);
		close(fd);
	}
	/* Within the byte limit, but more items than any request holds (2M): refused unparsed. */
	{
		size_t items = 3u << 20, len = items + 13;
		uint8_t *b = malloc(ZT_API_HDR_LEN + len);
		int fd = client(fx);
		cbor_item_t *rep;

		assert_non_null(b);
		memcpy(b,
		       (uint8_t[]){ (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
				    (uint8_t)len },
		       ZT_API_HDR_LEN);
		/* {"op": "echo", "x": [_ 0, 0, ...]} */
		memcpy(b + ZT_API_HDR_LEN,
		       (uint8_t[]){ 0xa2, 0x62, 'o', 'p', 0x64, 'e', 'c', 'h', 'o', 0x61, 'x',
				    0x9f },
		       12);
		memset(b + ZT_API_HDR_LEN + 12, 0, items);
		b[ZT_API_HDR_LEN + len - 1] = 0xff;
		send_raw(fd, b, ZT_API_HDR_LEN + len);
		free(b);
		rep = recv_reply(fd);
		expect_error(rep, E2BIG, "more than 2097152 items");
		cbor_decref(&rep);
		expect_closed(fd);
		close(fd);
		assert_int_equal(__atomic_load_n(&fx->calls, __ATOMIC_SEQ_CST), 0);
	}
	/* The server is fine. */
	{
		int fd = client(fx);
		cbor_item_t *rep;
		bool ok = false;

		send_req(fd, "nodata", NULL);
		rep = recv_reply(fd);
		assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
		assert_true(ok);
		cbor_decref(&rep);
		close(fd);
	}
}

static void test_large_request_and_reply(void **state)
{
	/* 8 MiB each way: far beyond the socket buffers, so the reply goes out on EPOLLOUT. */
	size_t n = 8u << 20;
	uint8_t *blob = malloc(n);
	struct fx *fx = *state;
	cbor_item_t *rep, *got;
	int fd;

	for (size_t i = 0; i < n; i++)
		blob[i] = (uint8_t)(i * 13 + 1);
	start(fx);
	fd = client(fx);
	for (int round = 0; round < 2; round++) {
		send_req(fd, "echo", cbor_build_bytestring(blob, n));
		rep = recv_reply(fd);
		got = zt_cbor_get(zt_cbor_get(rep, "data"), "got");
		assert_non_null(got);
		assert_int_equal(cbor_bytestring_length(got), n);
		assert_memory_equal(cbor_bytestring_handle(got), blob, n);
		cbor_decref(&rep);
	}
	/* A reply over the limit becomes an error the operator can act on. */
	send_req(fd, "huge", NULL);
	rep = recv_reply(fd);
	expect_error(rep, EMSGSIZE, "larger than the 64 MiB message limit");
	cbor_decref(&rep);
	close(fd);
	free(blob);
}

static void test_client_gone_mid_frame(void **state)
{
	struct fx *fx = *state;
	cbor_item_t *rep;
	bool ok = false;
	int fd;

	start(fx);
	/* Header and half a payload, then gone; and a connection that never says anything. */
	fd = client(fx);
	send_raw(fd, "\x00\x00\x01\x00\xa1\x62", 6);
	close(fd);
	fd = client(fx);
	close(fd);
	/* Someone who never reads the reply. */
	fd = client(fx);
	send_req(fd, "echo", cbor_build_string("unread"));
	close(fd);

	fd = client(fx);
	send_req(fd, "nodata", NULL);
	rep = recv_reply(fd);
	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_true(ok);
	cbor_decref(&rep);
	close(fd);
}

static void test_connection_limit(void **state)
{
	struct fx *fx = *state;
	int fds[64], extra, again;
	cbor_item_t *rep;

	start(fx);
	for (int i = 0; i < 64; i++) {
		fds[i] = client(fx);
		/* One round trip each, so the server has accepted them in order. */
		send_req(fds[i], "nodata", NULL);
		rep = recv_reply(fds[i]);
		cbor_decref(&rep);
	}
	/* The 65th is told why, then closed. */
	extra = client(fx);
	rep = recv_reply(extra);
	expect_error(rep, EMFILE, "too many API connections (64)");
	cbor_decref(&rep);
	expect_closed(extra);
	close(extra);
	/* All 64 still work. */
	for (int i = 0; i < 64; i++) {
		bool ok = false;

		send_req(fds[i], "echo", cbor_build_uint8((uint8_t)i));
		rep = recv_reply(fds[i]);
		assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
		assert_true(ok);
		cbor_decref(&rep);
	}
	/* One leaves, a newcomer gets its place. */
	close(fds[0]);
	for (int tries = 0;; tries++) {
		bool ok = false;

		again = client(fx);
		send_req(again, "nodata", NULL);
		rep = recv_reply(again);
		assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
		cbor_decref(&rep);
		close(again);
		if (ok)
			break;
		/* The server may not have seen the close yet. */
		assert_true(tries < 100);
		usleep(10000);
	}
	for (int i = 1; i < 64; i++)
		close(fds[i]);
}

static void test_socket_mode(void **state)
{
	struct fx *fx = *state;
	struct stat st;

	start(fx);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* The directory the server created. */
	assert_int_equal(stat(fx->sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* The listener and its connections do not leak into children. */
	{
		int fd = client(fx);

		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
	}
}

static void test_second_instance(void **state)
{
	struct fx *fx = *state;
	struct zt_api *api2 = NULL;
	char err[256] = "", want[256];
	cbor_item_t *rep;
	bool ok = false;
	int fd;

	start(fx);
	/* Its own loop: fx->loop belongs to the loop thread now. */
	{
		struct zt_loop *loop2;

		assert_int_equal(zt_loop_init(&loop2), 0);
		assert_int_equal(zt_api_init(&api2, loop2, fx->path, err, sizeof(err)),
				 -EADDRINUSE);
		assert_null(api2);
		snprintf(want, sizeof(want), "another ztagent answers on %s", fx->path);
		assert_non_null(strstr(err, want));
		zt_loop_stop(loop2);
	}
	/* The first one still answers. */
	fd = client(fx);
	send_req(fd, "nodata", NULL);
	rep = recv_reply(fd);
	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_true(ok);
	cbor_decref(&rep);
	close(fd);
}

static void test_stale_socket(void **state)
{
	struct fx *fx = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	cbor_item_t *rep;
	struct stat st;
	bool ok = false;
	int fd;

	/* A socket file nobody listens on: what a crashed daemon leaves. */
	assert_int_equal(mkdir(fx->sub, 0700), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(lstat(fx->path, &st), 0);
	assert_int_equal(try_connect(fx->path), -ECONNREFUSED);

	start(fx);
	fd = client(fx);
	send_req(fd, "nodata", NULL);
	rep = recv_reply(fd);
	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_true(ok);
	cbor_decref(&rep);
	close(fd);
}

static void test_bad_paths(void **state)
{
	struct fx *fx = *state;
	struct zt_api *api = NULL;
	char err[512], path[256], want[300];
	int fd;

	/* A regular file where the socket should be. */
	assert_int_equal(mkdir(fx->sub, 0700), 0);
	fd = open(fx->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(zt_api_init(&api, fx->loop, fx->path, err, sizeof(err)), -EEXIST);
	snprintf(want, sizeof(want), "%s exists and is not a socket", fx->path);
	assert_non_null(strstr(err, want));
	unlink(fx->path);

	/* Longer than sun_path. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(zt_api_init(&api, fx->loop, path, err, sizeof(err)), -ENAMETOOLONG);
	assert_non_null(strstr(err, "at most 107"));

	/* Empty. */
	assert_int_equal(zt_api_init(&api, fx->loop, "", err, sizeof(err)), -EINVAL);
	assert_null(api);
}

static void test_register(void **state)
{
	struct fx *fx = *state;
	char op[80];
	int n = 0;

	start(fx);
	halt(fx); /* registration belongs to the loop's thread */
	assert_int_equal(zt_api_register(fx->api, "echo", op_echo, fx), -EEXIST);
	assert_int_equal(zt_api_register(fx->api, "", op_echo, fx), -EINVAL);
	memset(op, 'o', sizeof(op) - 1);
	op[sizeof(op) - 1] = '\0';
	assert_int_equal(zt_api_register(fx->api, op, op_echo, fx), -EINVAL);
	for (int i = 0; i < 100; i++) {
		int r;

		snprintf(op, sizeof(op), "op%d", i);
		r = zt_api_register(fx->api, op, op_echo, fx);
		if (r == -ENOSPC)
			break;
		assert_int_equal(r, 0);
		n++;
	}
	assert_int_equal(n + (int)(sizeof(handlers) / sizeof(handlers[0])), 64);
}

/* ---- the loop itself ---- */

struct loop_fx {
	struct zt_loop *loop;
	int a[2], b[2];
	int a_calls, b_calls, timer_calls;
	int timer_fd;
};

/* a's callback removes b; b is readable in the same batch and must not run. */
static void on_a(void *ctx, int fd, uint32_t events)
{
	struct loop_fx *l = ctx;
	char c;

	l->a_calls++;
	assert_int_equal(read(fd, &c, 1), 1);
	if (l->b[0] >= 0) {
		assert_int_equal(zt_loop_del(l->loop, l->b[0]), 0);
		close(l->b[0]);
		l->b[0] = -1;
	}
}

static void on_b(void *ctx, int fd, uint32_t events)
{
	struct loop_fx *l = ctx;
	char c;

	l->b_calls++;
	assert_int_equal(read(fd, &c, 1), 1);
	if (l->a[0] >= 0) {
		assert_int_equal(zt_loop_del(l->loop, l->a[0]), 0);
		close(l->a[0]);
		l->a[0] = -1;
	}
}

static void on_timer(void *ctx, int fd, uint32_t events)
{
	struct loop_fx *l = ctx;

	/* Deleting itself from its own callback. */
	if (++l->timer_calls == 3)
		assert_int_equal(zt_loop_del(l->loop, fd), 0);
}

static void test_loop_delete_in_callback(void **state)
{
	struct loop_fx l = { .timer_fd = -1 };

	assert_int_equal(zt_loop_init(&l.loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l.a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l.b), 0);
	assert_int_equal(zt_loop_add(l.loop, l.a[0], EPOLLIN, on_a, &l), 0);
	assert_int_equal(zt_loop_add(l.loop, l.b[0], EPOLLIN, on_b, &l), 0);
	assert_int_equal(zt_loop_add(l.loop, l.a[0], EPOLLIN, on_a, &l), -EEXIST);
	/* Both readable before the loop looks: one batch holds both events. */
	assert_int_equal(write(l.a[1], "x", 1), 1);
	assert_int_equal(write(l.b[1], "x", 1), 1);
	assert_int_equal(zt_loop_run_once(l.loop, 1000), 2);
	/* Whichever ran first removed the other, whose event was skipped. */
	assert_int_equal(l.a_calls + l.b_calls, 1);
	assert_int_equal(zt_loop_del(l.loop, l.a[0] >= 0 ? l.b[0] : l.a[0]), -ENOENT);
	assert_int_equal(zt_loop_mod(l.loop, 12345, EPOLLIN), -ENOENT);

	/* A 10 ms timer fires, and removes itself on its third tick. */
	l.timer_fd = zt_loop_add_timer(l.loop, 10 * 1000000ULL, on_timer, &l);
	assert_true(l.timer_fd >= 0);
	for (int i = 0; i < 100 && l.timer_calls < 3; i++)
		assert_true(zt_loop_run_once(l.loop, 1000) >= 0);
	assert_int_equal(l.timer_calls, 3);
	assert_int_equal(zt_loop_run_once(l.loop, 50), 0);
	assert_int_equal(l.timer_calls, 3);
	/* The loop closed the timer's fd. */
	assert_int_equal(fcntl(l.timer_fd, F_GETFD), -1);
	assert_int_equal(zt_loop_add_timer(l.loop, 0, on_timer, &l), -EINVAL);

	for (int i = 0; i < 2; i++) {
		if (l.a[i] >= 0)
			close(l.a[i]);
		if (l.b[i] >= 0)
			close(l.b[i]);
	}
	/* Registrations still there are freed by stop (ASan checks). */
	zt_loop_stop(l.loop);
	zt_loop_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversize_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_request_and_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_mid_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test(test_loop_delete_in_callback),
	};

	return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
