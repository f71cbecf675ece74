// SPDX-License-Identifier: GPL-2.0-only
/*
 * MISP JSON exports: one event ({"Event": {...}}), a list of them, the
 * REST search answer ({"response": [{"Event": ...}, ...]}) or an attribute
 * search ({"response": {"Attribute": [...]}}). Attributes of type ip-src,
 * ip-dst, ip-src|port and ip-dst|port marked to_ids become entries, in the
 * event and in its objects; ip-src gives the entry the source direction,
 * ip-dst the destination direction. The reference is "MISP event ID: INFO".
 * An attribute without to_ids, or deleted, is ignored.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "feeds/feed_int.h"

/* to_ids as MISP writes it (true) or as older exports and tools do ("1", 1, "true"). */
static bool truthy(struct json_object *v)
{
	const char *s;

	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return json_object_get_boolean(v);
	case json_type_int:
		return json_object_get_int64(v) == 1;
	case json_type_string:
		s = json_object_get_string(v);
		return !strcmp(s, "1") || !strcmp(s, "true");
	default:
		return false;
	}
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned int v = 0;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int attribute(struct feed_ctx *x, struct json_object *a, const char *ref)
{
	const char *type, *value, *uuid;
	size_t vn = 0, un = 0, an;
	struct json_object *v;
	struct zt_cidr c;
	uint16_t port = 0;
	bool with_port, hb = false;
	char why[128];
	uint8_t dir;

	if (!json_object_is_type(a, json_type_object))
		return 0;
	type = feed_json_str(a, "type", NULL);
	if (!type)
		return 0;
	if (!strcmp(type, "ip-src") || !strcmp(type, "ip-src|port"))
		dir = ZT_FEED_SOURCE;
	else if (!strcmp(type, "ip-dst") || !strcmp(type, "ip-dst|port"))
		dir = ZT_FEED_DESTINATION;
	else
		return 0;
	with_port = strchr(type, '|') != NULL;
	x->r->stats.items++;
	if ((json_object_object_get_ex(a, "deleted", &v) && truthy(v)) ||
	    !json_object_object_get_ex(a, "to_ids", &v) || !truthy(v)) {
		x->r->stats.ignored++;
		return 0;
	}
	uuid = feed_json_str(a, "uuid", &un);
	value = feed_json_str(a, "value", &vn);
	if (!value) {
		feed_report(x, feed_find_line(x, uuid, un), true, uuid, un,
			    "%s attribute without a \"value\" string", type);
		return 0;
	}
	an = vn;
	if (with_port) {
		const char *bar = memrchr(value, '|', vn);

		if (!bar || parse_port(bar + 1, vn - (size_t)(bar + 1 - value), &port) < 0) {
			feed_report(x, feed_find_line(x, uuid, un), true, value, vn,
				    "%s value is not ADDRESS|PORT with a port of 1 to 65535", type);
			return 0;
		}
		an = (size_t)(bar - value);
	}
	/* Only a bad value needs its line: it is looked up then, not for every attribute. */
	if (feed_addr(value, an, &c, &hb, why, sizeof(why)) < 0) {
		feed_report(x, feed_find_line(x, uuid, un), true, value, vn, "%s: %s", type, why);
		return 0;
	}
	if (hb)
		x->r->stats.host_bits++;
	return feed_add(x, &c, port, dir, 0, ref, strlen(ref));
}

static int attributes(struct feed_ctx *x, struct json_object *holder, const char *ref)
{
	struct json_object *list;
	size_t n;
	int err = 0;

	if (!json_object_object_get_ex(holder, "Attribute", &list) ||
	    !json_object_is_type(list, json_type_array))
		return 0;
	n = json_object_array_length(list);
	for (size_t i = 0; i < n && !err; i++)
		err = attribute(x, json_object_array_get_idx(list, i), ref);
	return err;
}

static int event(struct feed_ctx *x, struct json_object *e)
{
	struct json_object *v, *objs;
	const char *info = feed_json_str(e, "info", NULL);
	char id[32] = "?", ref[ZT_FEED_REF_MAX];
	int err;

	if (!json_object_is_type(e, json_type_object))
		return 0;
	if (json_object_object_get_ex(e, "id", &v)) {
		if (json_object_is_type(v, json_type_string))
			snprintf(id, sizeof(id), "%s", json_object_get_string(v));
		else if (json_object_is_type(v, json_type_int))
			snprintf(id, sizeof(id), "%lld", (long long)json_object_get_int64(v));
	}
	snprintf(ref, sizeof(ref), "MISP event %s%s%s", id, info ? ": " : "", info ? info : "");
	err = attributes(x, e, ref);
	if (err || !json_object_object_get_ex(e, "Object", &objs) ||
	    !json_object_is_type(objs, json_type_array))
		return err;
	for (size_t i = 0, n = json_object_array_length(objs); i < n && !err; i++) {
		struct json_object *o = json_object_array_get_idx(objs, i);

		if (json_object_is_type(o, json_type_object))
			err = attributes(x, o, ref);
	}
	return err;
}

/* {"Event": {...}} or a bare event. */
static int wrapped(struct feed_ctx *x, struct json_object *w, bool *found)
{
	struct json_object *e;

	if (!json_object_is_type(w, json_type_object))
		return 0;
	if (json_object_object_get_ex(w, "Event", &e)) {
		*found = true;
		return event(x, e);
	}
	if (json_object_object_get_ex(w, "Attribute", &e)) {
		*found = true;
		return event(x, w);
	}
	return 0;
}

int feed_parse_misp(struct feed_ctx *x)
{
	struct json_object *doc = NULL, *list = NULL;
	bool found = false;
	int err;

	err = feed_json_doc(x, &doc);
	if (err)
		return err;
	if (json_object_is_type(doc, json_type_array))
		list = doc;
	else if (json_object_is_type(doc, json_type_object) &&
		 json_object_object_get_ex(doc, "response", &list) &&
		 !json_object_is_type(list, json_type_array))
		list = json_object_is_type(list, json_type_object) ? list : NULL;
	if (list && json_object_is_type(list, json_type_array)) {
		size_t n = json_object_array_length(list);

		for (size_t i = 0; i < n && !err; i++)
			err = wrapped(x, json_object_array_get_idx(list, i), &found);
	} else if (list) {
		err = wrapped(x, list, &found);
	} else {
		err = wrapped(x, doc, &found);
	}
	if (!err && !found)
		err = feed_fail(
			x, -EBADMSG,
			"not a MISP export: no \"Event\", \"response\" or \"Attribute\" at the top");
	json_object_put(doc);
	return err;
}
