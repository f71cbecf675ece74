/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The watch client's pure parts, for its own files and the unit tests:
 * connection configuration (kubeconfig, in-cluster), the event stream
 * framing, event and object decoding, resource paths.
 */
#ifndef ZT_K8S_INT_H
#define ZT_K8S_INT_H

#include <stdatomic.h>
#include <json-c/json.h>

#include "k8s/k8s.h"

#define ZT_K8S_KUBECONFIG_MAX (1u << 20)
#define ZT_K8S_TOKEN_MAX (64u << 10)
#define ZT_K8S_JSON_DEPTH 64 /* managedFields nest about 20 deep */

/* ---- connection configuration (config.c) ------------------------------ */

struct zt_k8s_blob {
	unsigned char *data;
	size_t len;
};

struct zt_k8s_conncfg {
	char *server; /* "https://host:port[/path]", no trailing '/' */
	char *ca_file; /* or ca_data, or neither (the system's CAs) */
	struct zt_k8s_blob ca_data;
	char *token; /* a fixed bearer token, or */
	char *token_file; /* one read again before each request */
	char *cert_file; /* client certificate (PEM) as a file or data */
	struct zt_k8s_blob cert_data;
	char *key_file;
	struct zt_k8s_blob key_data;
	char *source; /* "in-cluster", "kubeconfig PATH context NAME" */
};

void zt_k8s_conncfg_free(struct zt_k8s_conncfg *c);

struct zt_k8s_client {
	atomic_int refs; /* the caller's and one per watch */
	char *node;
	struct zt_k8s_conncfg cfg; /* read-only once made */
};

struct zt_k8s_client *zt_k8s_client_ref(struct zt_k8s_client *c);
/*
 * A kubeconfig's text: its current-context's cluster and user. dir is the
 * kubeconfig's directory (relative paths in it are relative to that); name
 * is the file's name in messages. 0 or -EINVAL / -ENOTSUP (refused
 * auth) / -ENOMEM with err one line "NAME: what: why".
 */
int zt_k8s_kubeconfig_parse(const char *buf, size_t len, const char *name, const char *dir,
			    struct zt_k8s_conncfg *out, char *err, size_t errlen);
/* The in-cluster configuration from the environment and the settings' overrides. */
int zt_k8s_incluster(const struct zt_k8s_settings *s, struct zt_k8s_conncfg *out, char *err,
		     size_t errlen);
/*
 * Reads a bearer token file: at most ZT_K8S_TOKEN_MAX bytes, trailing
 * blanks and newlines cut; refused (-EINVAL) when empty or when it holds
 * bytes that cannot go into an HTTP header (controls, spaces, non-ASCII).
 * *out is malloc'd.
 */
int zt_k8s_read_token(const char *path, char **out, char *err, size_t errlen);
int zt_k8s_token_check(const char *tok, size_t len);

/* ---- the event stream (stream.c) --------------------------------------- */

/*
 * A WATCH body is a sequence of JSON objects (one per line in practice,
 * but nothing here relies on the newlines). Bytes arrive in arbitrary
 * pieces; every complete top-level object goes to the callback. An object
 * larger than max_bytes, anything but an object at the top level, and
 * malformed JSON stop the stream.
 */
struct zt_k8s_stream {
	json_tokener *tok;
	size_t max_bytes;
	size_t cur; /* bytes of the object in progress */
	bool in_obj;
	size_t objects; /* delivered so far */
};

/* Returns 0 to go on; anything else stops zt_k8s_stream_feed() with that value. */
typedef int (*zt_k8s_stream_fn)(void *ctx, json_object *obj);

int zt_k8s_stream_init(struct zt_k8s_stream *s, size_t max_bytes);
void zt_k8s_stream_reset(struct zt_k8s_stream *s);
void zt_k8s_stream_free(struct zt_k8s_stream *s);
/*
 * 0, the callback's non-zero return, -EFBIG (an object over max_bytes),
 * -EPROTO (not JSON, not an object, nested deeper than ZT_K8S_JSON_DEPTH).
 * After an error the stream must be reset.
 */
int zt_k8s_stream_feed(struct zt_k8s_stream *s, const char *buf, size_t len, zt_k8s_stream_fn fn,
		       void *ctx);
/* At the end of the body: -EPROTO when an object was cut short. */
int zt_k8s_stream_end(const struct zt_k8s_stream *s);

/* ---- events and objects (object.c) ------------------------------------- */

enum zt_k8s_ev_type {
	ZT_K8S_EV_ADDED = 0,
	ZT_K8S_EV_MODIFIED,
	ZT_K8S_EV_DELETED,
	ZT_K8S_EV_BOOKMARK,
	ZT_K8S_EV_ERROR,
};

struct zt_k8s_event {
	enum zt_k8s_ev_type type;
	struct zt_k8s_object *obj; /* ADDED, MODIFIED, DELETED; the caller frees it */
	char rv[64]; /* the object's (or the bookmark's) resourceVersion */
	/* ERROR: the Status */
	long code;
	char reason[64];
	char message[256];
};

/*
 * One watch event {"type": ..., "object": {...}} of that kind. 0, or
 * -EPROTO (not an event: unknown type, no object) or -EINVAL (an object
 * that does not decode; rv is still set when it could be read, so the
 * stream can go on past it) with err saying why.
 */
int zt_k8s_event_decode(enum zt_k8s_kind kind, json_object *ev, struct zt_k8s_event *out, char *err,
			size_t errlen);
/* One object (a list item or an event's object). 0 or -EINVAL / -ENOMEM. */
int zt_k8s_object_decode(enum zt_k8s_kind kind, json_object *o, struct zt_k8s_object **out,
			 char *err, size_t errlen);
void zt_k8s_object_free(struct zt_k8s_object *o);
/* metadata.resourceVersion of a list or object into rv; -EINVAL if absent or odd. */
int zt_k8s_meta_rv(json_object *o, char *rv, size_t n);

/* ---- resources (object.c) ---------------------------------------------- */

struct zt_k8s_resource {
	const char *path; /* "/api/v1/pods": cluster-wide collection */
	const char *api_version; /* "v1", "networking.k8s.io/v1" */
	const char *kind; /* "Pod" */
	bool namespaced;
};

const struct zt_k8s_resource *zt_k8s_resource(enum zt_k8s_kind k);

#endif
