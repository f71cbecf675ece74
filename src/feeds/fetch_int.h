/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by fetch.c and cache.c: bodies under construction and the saved copy's metadata. */
#ifndef ZT_FEEDS_FETCH_INT_H
#define ZT_FEEDS_FETCH_INT_H

#include "feeds/fetch.h"

#define FEED_ETAG_MAX 256
#define FEED_DATE_MAX 128
#define FEED_PRINT_MAX 80
#define FEED_DIR_FILES_MAX 10000

/* What the content in force was fetched as: validators for the next request. */
struct feed_meta {
	char url[ZT_FEED_URL_MAX];
	char format[32];
	char etag[FEED_ETAG_MAX]; /* ETag as the server sent it, quotes included */
	char last_modified[FEED_DATE_MAX]; /* Last-Modified, verbatim */
	char fingerprint[FEED_PRINT_MAX]; /* files: device, inode, size, times */
	uint8_t digest[32];
	uint64_t saved_unix;
};

/* Appends a part (data copied into the store). -ENOMEM, -EFBIG past max bytes in all. */
int feed_body_add(struct zt_feed_body *b, const char *name, const void *data, size_t len,
		  uint64_t max);
/* Makes room for len more bytes in the store. */
int feed_body_reserve(struct zt_feed_body *b, size_t len);
/* Points the parts at the store (after it stopped moving) and computes the digest. */
int feed_body_seal(struct zt_feed_body *b);

/* Writes <dir>/<name>.cache atomically (temp file, fsync, rename, fsync dir). */
int feed_cache_save(const char *dir, const char *name, const struct feed_meta *m,
		    const struct zt_feed_body *b);
/*
 * Reads <dir>/<name>.cache. -ENOENT when there is none, -EBADMSG when it
 * is damaged (msg says how), -EFBIG over max bytes of content.
 */
int feed_cache_load(const char *dir, const char *name, uint64_t max, struct feed_meta *m,
		    struct zt_feed_body *b, char *msg, size_t msglen);

#endif
