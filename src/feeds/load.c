// SPDX-License-Identifier: GPL-2.0-only
/* From a fetched body to a feed's entries: parse every part, finish, subtract. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feed_int.h"

void zt_feed_body_free(struct zt_feed_body *b)
{
	if (!b)
		return;
	free(b->parts);
	free(b->store);
	memset(b, 0, sizeof(*b));
}

int zt_feed_load(const struct zt_feed_config *fc, const struct zt_feed_body *body,
		 uint64_t now_unix, const struct zt_feed_guard_list *lists, size_t n_lists,
		 struct zt_feed_result *out)
{
	struct zt_feed_parse_opts o = {
		.feed = fc->name,
		.now_unix = now_unix,
		.max_entries = fc->max_entries,
	};
	int err;

	err = zt_feed_result_init(out, fc->name);
	if (err)
		return err;
	if (!body->total) {
		snprintf(
			out->error, sizeof(out->error),
			"feed=%s: the content is empty (%zu files, 0 bytes); the last good content stays",
			fc->name, body->n_parts);
		return -ENODATA;
	}
	for (size_t i = 0; i < body->n_parts; i++) {
		o.part = body->parts[i].name[0] ? body->parts[i].name : NULL;
		err = zt_feed_parse(fc->format, body->parts[i].data, body->parts[i].len, out, &o);
		if (err)
			return err;
	}
	err = zt_feed_finish(out, fc->max_bad_ppm);
	if (err)
		return err;
	err = zt_feed_subtract(out, lists, n_lists);
	if (err)
		snprintf(out->error, sizeof(out->error),
			 "feed=%s: subtracting protected ranges: %s", fc->name, strerror(-err));
	return err;
}
