// SPDX-License-Identifier: GPL-2.0-only
/* CNI DELs queued while the daemon was down (cnispool.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent/util.h"
#include "seg/cnispool.h"

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool zt_cni_cid_valid(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > ZT_EP_CID_MAX || !alnum(v[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!alnum(v[i]) && v[i] != '_' && v[i] != '.' && v[i] != '-')
			return false;
	return true;
}

/* Printable ASCII only, so that a record can be logged as it is. */
static bool printable(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return false;
	return true;
}

/* FNV-1a 64 of "container_id\0ifname": the file name of the pair. */
static uint64_t pair_hash(const struct zt_cni_del *d)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[2] = { d->container_id, d->ifname };

	for (int k = 0; k < 2; k++)
		for (const unsigned char *p = (const unsigned char *)parts[k];; p++) {
			h = (h ^ *p) * 0x100000001b3ULL;
			if (!*p)
				break;
		}
	return h;
}

int zt_cni_spool_write(const char *dir, const struct zt_cni_del *d, char *path, size_t pathlen,
		       char *err, size_t errlen)
{
	char final[4096], tmp[4096 + 16];
	json_object *o = NULL;
	const char *text;
	size_t len;
	int fd = -1, r;

	if (!zt_cni_cid_valid(d->container_id) || !zt_ifname_valid(d->ifname)) {
		zt_seterr(err, errlen, "not a valid container id and interface name to queue");
		return -EINVAL;
	}
	r = zt_mkdir_p(dir, 0700);
	if (r < 0) {
		zt_seterr(err, errlen, "cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	if ((size_t)snprintf(final, sizeof(final), "%s/%016" PRIx64 "%s", dir, pair_hash(d),
			     ZT_CNI_SPOOL_SUFFIX) >= sizeof(final)) {
		zt_seterr(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", final, (int)getpid());
	o = json_object_new_object();
	if (!o ||
	    json_object_object_add(o, "container_id", json_object_new_string(d->container_id)) ||
	    json_object_object_add(o, "ifname", json_object_new_string(d->ifname)) ||
	    json_object_object_add(o, "pod_namespace", json_object_new_string(d->pod_ns)) ||
	    json_object_object_add(o, "pod_name", json_object_new_string(d->pod_name)) ||
	    json_object_object_add(o, "pod_uid", json_object_new_string(d->pod_uid)) ||
	    json_object_object_add(o, "queued_unix",
				   json_object_new_int64((int64_t)d->queued_unix))) {
		zt_seterr(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		zt_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
		goto out_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		zt_seterr(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, final) < 0) {
		r = -errno;
		zt_seterr(err, errlen, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
		goto out_unlink;
	}
	/* The rename is durable once the directory is. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		fsync(fd);
	if (path)
		snprintf(path, pathlen, "%s", final);
	r = 0;
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	json_object_put(o);
	return r;
}

/* A text member into buf; absent is "" when optional. */
static int get_text(json_object *o, const char *key, bool need, char *buf, size_t n, char *err,
		    size_t errlen)
{
	json_object *v;
	const char *s;
	int len;

	buf[0] = '\0';
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (!need)
			return 0;
		zt_seterr(err, errlen, "%s: missing", key);
		return -EBADMSG;
	}
	if (!json_object_is_type(v, json_type_string)) {
		zt_seterr(err, errlen, "%s: expected a string", key);
		return -EBADMSG;
	}
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (len < 0 || (size_t)len >= n || strlen(s) != (size_t)len || !printable(s)) {
		zt_seterr(err, errlen, "%s: longer than %zu bytes or not printable text", key,
			  n - 1);
		return -EBADMSG;
	}
	memcpy(buf, s, (size_t)len + 1);
	return 0;
}

int zt_cni_spool_parse(const char *buf, size_t len, struct zt_cni_del *out, char *err,
		       size_t errlen)
{
	struct zt_cni_del d = { 0 };
	json_tokener *tok = NULL;
	json_object *o = NULL, *q;
	int r = -EBADMSG;

	if (len > ZT_CNI_SPOOL_MAX_BYTES || memchr(buf, '\0', len)) {
		zt_seterr(err, errlen, "larger than %d bytes or not text", ZT_CNI_SPOOL_MAX_BYTES);
		return -EBADMSG;
	}
	tok = json_tokener_new_ex(4);
	if (!tok) {
		zt_seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		zt_seterr(err, errlen, "not JSON: %s",
			  json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	if (!json_object_is_type(o, json_type_object)) {
		zt_seterr(err, errlen, "not a JSON object");
		goto out;
	}
	if (get_text(o, "container_id", true, d.container_id, sizeof(d.container_id), err, errlen) <
		    0 ||
	    get_text(o, "ifname", true, d.ifname, sizeof(d.ifname), err, errlen) < 0 ||
	    get_text(o, "pod_namespace", false, d.pod_ns, sizeof(d.pod_ns), err, errlen) < 0 ||
	    get_text(o, "pod_name", false, d.pod_name, sizeof(d.pod_name), err, errlen) < 0 ||
	    get_text(o, "pod_uid", false, d.pod_uid, sizeof(d.pod_uid), err, errlen) < 0)
		goto out;
	if (!zt_cni_cid_valid(d.container_id) || !zt_ifname_valid(d.ifname)) {
		zt_seterr(err, errlen,
			  "container_id or ifname: not a CNI container id / interface");
		goto out;
	}
	if (json_object_object_get_ex(o, "queued_unix", &q)) {
		if (!json_object_is_type(q, json_type_int) || json_object_get_int64(q) < 0) {
			zt_seterr(err, errlen, "queued_unix: expected unix seconds");
			goto out;
		}
		d.queued_unix = (uint64_t)json_object_get_int64(q);
	}
	*out = d;
	r = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return r;
}

int zt_cni_spool_read(const char *path, struct zt_cni_del *out, char *err, size_t errlen)
{
	char buf[ZT_CNI_SPOOL_MAX_BYTES + 1], why[256];
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ZT_CNI_SPOOL_MAX_BYTES) {
		zt_seterr(err, errlen, "%s: not a regular file of at most %d bytes", path,
			  ZT_CNI_SPOOL_MAX_BYTES);
		close(fd);
		return -EBADMSG;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n > ZT_CNI_SPOOL_MAX_BYTES) {
		zt_seterr(err, errlen, "%s: cannot read it whole", path);
		return -EIO;
	}
	r = zt_cni_spool_parse(buf, (size_t)n, out, why, sizeof(why));
	if (r < 0)
		zt_seterr(err, errlen, "%s: %s", path, why);
	return r;
}
