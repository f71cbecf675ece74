// SPDX-License-Identifier: GPL-2.0-only
/* ztagent-cni: one request to the daemon's API socket (client.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/apimsg.h"
#include "agent/util.h"
#include "cni/client.h"

/* Connect errors that mean "no daemon here (now)", not "something is wrong". */
static bool daemon_down(int e)
{
	return e == ENOENT || e == ECONNREFUSED || e == ENOTDIR || e == EAGAIN || e == ETIMEDOUT ||
	       e == ECONNRESET || e == EPIPE;
}

int zt_cni_call(const char *sock, uint64_t timeout_ns, const cbor_item_t *req, cbor_item_t **reply,
		const cbor_item_t **data, int *daemon_errno, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = (time_t)(timeout_ns / 1000000000ULL),
			      .tv_usec = (suseconds_t)(timeout_ns % 1000000000ULL / 1000) };
	cbor_item_t *rep = NULL;
	char why[512];
	uint64_t en = 0;
	bool ok = false;
	int fd, r;

	*reply = NULL;
	*data = NULL;
	*daemon_errno = 0;
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		zt_seterr(err, errlen, "socket path %s is too long", sock);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "socket: %s", strerror(errno));
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		zt_seterr(err, errlen, "cannot connect to ztagent at %s: %s", sock, strerror(e));
		r = daemon_down(e) ? -EHOSTDOWN : -e;
		goto out;
	}
	r = zt_msg_send(fd, req);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot send to ztagent at %s: %s", sock,
			  r == -ETIMEDOUT ? "timed out" : strerror(-r));
		r = daemon_down(-r) ? -EHOSTDOWN : r;
		goto out;
	}
	r = zt_msg_recv(fd, &rep, why, sizeof(why));
	if (r < 0) {
		zt_seterr(err, errlen, "no answer from ztagent at %s: %s", sock, why);
		r = daemon_down(-r) ? -EHOSTDOWN : r;
		goto out;
	}
	if (zt_cbor_get_bool(rep, "ok", &ok) < 0) {
		zt_seterr(err, errlen, "ztagent at %s answered without 'ok'", sock);
		r = -EPROTO;
		goto out;
	}
	if (!ok) {
		if (zt_cbor_get_str(rep, "error", why, sizeof(why)) < 0)
			snprintf(why, sizeof(why), "refused without saying why");
		zt_cbor_get_u64(rep, "errno", &en);
		*daemon_errno = en < 4096 ? (int)en : EIO;
		zt_seterr(err, errlen, "%s", why);
		r = -EREMOTEIO;
		goto out;
	}
	*reply = rep;
	*data = zt_cbor_get(rep, "data");
	rep = NULL;
	r = 0;
out:
	if (rep)
		cbor_decref(&rep);
	close(fd);
	return r;
}
