// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: the API server over a real unix socket, driven step by step. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "api.h"
#include "apimsg.h"
#include "loop.h"

struct env {
	char dir[64];
	char path[128];
	struct zt_loop *loop;
	struct zt_api *api;
	int calls;
};

static int echo(void *ctx, const cbor_item_t *req, cbor_item_t **data, char *err, size_t errlen)
{
	struct env *e = ctx;
	char s[64] = "";

	e->calls++;
	if (zt_cbor_get_str(req, "say", s, sizeof(s)) < 0) {
		snprintf(err, errlen, "field 'say' missing");
		return -EINVAL;
	}
	*data = zt_cbor_map();
	return zt_cbor_put_str(*data, "said", s);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[256];

	strcpy(e->dir, "/tmp/zt-api-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/sub/api.sock", e->dir);
	assert_int_equal(zt_loop_init(&e->loop), 0);
	assert_int_equal(zt_api_init(&e->api, e->loop, e->path, err, sizeof(err)), 0);
	assert_int_equal(zt_api_register(e->api, "echo", echo, e), 0);
	assert_int_equal(zt_api_register(e->api, "echo", echo, e), -EEXIST);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char p[160];

	zt_api_stop(e->api);
	zt_loop_stop(e->loop);
	snprintf(p, sizeof(p), "%s/sub", e->dir);
	rmdir(p);
	rmdir(e->dir);
	free(e);
	return 0;
}

static int client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void pump(struct env *e)
{
	for (int i = 0; i < 10; i++)
		zt_loop_run_once(e->loop, 10);
}

/* Sends a raw frame payload, pumps the loop, returns the decoded reply. */
static cbor_item_t *roundtrip(struct env *e, int fd, const cbor_item_t *req)
{
	cbor_item_t *rep = NULL;
	char err[256];

	assert_int_equal(zt_msg_send(fd, req), 0);
	pump(e);
	assert_int_equal(zt_msg_recv(fd, &rep, err, sizeof(err)), 0);
	return rep;
}

static void test_request_reply(void **state)
{
	struct env *e = *state;
	int fd = client(e->path);
	cbor_item_t *req = zt_cbor_map(), *rep, *data;
	char s[64];
	bool ok = false;
	struct stat st;

	assert_true(fd >= 0);
	zt_cbor_put_str(req, "op", "echo");
	zt_cbor_put_str(req, "say", "hello");
	/* Two requests on one connection, answered in order. */
	for (int i = 0; i < 2; i++) {
		rep = roundtrip(e, fd, req);
		assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
		assert_true(ok);
		data = zt_cbor_get(rep, "data");
		assert_int_equal(zt_cbor_get_str(data, "said", s, sizeof(s)), 0);
		assert_string_equal(s, "hello");
		cbor_decref(&rep);
	}
	assert_int_equal(e->calls, 2);
	cbor_decref(&req);
	close(fd);
	/* 0600 socket, 0700 directory it created. */
	assert_int_equal(stat(e->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void expect_error(struct env *e, int fd, const cbor_item_t *req, const char *want)
{
	cbor_item_t *rep = roundtrip(e, fd, req);
	char msg[256] = "";
	bool ok = true;

	assert_int_equal(zt_cbor_get_bool(rep, "ok", &ok), 0);
	assert_false(ok);
	assert_int_equal(zt_cbor_get_str(rep, "error", msg, sizeof(msg)), 0);
	if (!strstr(msg, want))
		fail_msg("'%s' lacks '%s'", msg, want);
	cbor_decref(&rep);
}

static void test_errors(void **state)
{
	struct env *e = *state;
	int fd = client(e->path);
	cbor_item_t *req;

	req = zt_cbor_map();
	zt_cbor_put_str(req, "op", "nope");
	expect_error(e, fd, req, "unknown operation 'nope'");
	cbor_decref(&req);
	req = zt_cbor_map();
	zt_cbor_put_str(req, "say", "x");
	expect_error(e, fd, req, "no 'op'");
	cbor_decref(&req);
	req = zt_cbor_map();
	zt_cbor_put_u64(req, "op", 5);
	expect_error(e, fd, req, "'op' is not a short text");
	cbor_decref(&req);
	req = cbor_build_string("not a map");
	expect_error(e, fd, req, "a request is a CBOR map");
	cbor_decref(&req);
	req = zt_cbor_map();
	zt_cbor_put_str(req, "op", "echo");
	expect_error(e, fd, req, "field 'say' missing");
	cbor_decref(&req);
	close(fd);
}

static void test_garbage_and_oversize(void **state)
{
	struct env *e = *state;
	int fd = client(e->path);
	cbor_item_t *rep = NULL;
	char err[256], msg[256];
	uint8_t junk[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };
	uint8_t big[] = { 0x7f, 0xff, 0xff, 0xff };
	char b;

	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	pump(e);
	assert_int_equal(zt_msg_recv(fd, &rep, err, sizeof(err)), 0);
	assert_int_equal(zt_cbor_get_str(rep, "error", msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "break"));
	cbor_decref(&rep);

	/* A 2 GiB frame header: an error reply, then the server closes. */
	assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	pump(e);
	assert_int_equal(zt_msg_recv(fd, &rep, err, sizeof(err)), 0);
	assert_int_equal(zt_cbor_get_str(rep, "error", msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "refused"));
	cbor_decref(&rep);
	assert_int_equal(read(fd, &b, 1), 0);
	close(fd);
}

static void test_connection_limit(void **state)
{
	struct env *e = *state;
	int fds[65];
	char b;

	for (int i = 0; i < 65; i++) {
		fds[i] = client(e->path);
		assert_true(fds[i] >= 0);
		pump(e);
	}
	/* The 65th was accepted and closed at once: EOF. */
	assert_int_equal(read(fds[64], &b, 1), 0);
	for (int i = 0; i < 65; i++)
		close(fds[i]);
	pump(e);
}

static void test_live_and_stale(void **state)
{
	struct env *e = *state;
	struct zt_api *second = NULL;
	struct zt_loop *loop2;
	char err[256], stale[160];
	int fd;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_int_equal(zt_loop_init(&loop2), 0);
	assert_int_equal(zt_api_init(&second, loop2, e->path, err, sizeof(err)), -EADDRINUSE);
	assert_non_null(strstr(err, "another ztagent answers"));

	/* A socket file nobody listens on is replaced. */
	snprintf(stale, sizeof(stale), "%s/stale.sock", e->dir);
	strcpy(sa.sun_path, stale);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(zt_api_init(&second, loop2, stale, err, sizeof(err)), 0);
	zt_api_stop(second);
	assert_int_equal(access(stale, F_OK), -1);

	/* A regular file is not clobbered. */
	fd = creat(stale, 0600);
	close(fd);
	assert_int_equal(zt_api_init(&second, loop2, stale, err, sizeof(err)), -EEXIST);
	unlink(stale);
	/* A path longer than sun_path. */
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(zt_api_init(&second, loop2, longp, err, sizeof(err)), -ENAMETOOLONG);
	zt_loop_stop(loop2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_and_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_and_stale, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
