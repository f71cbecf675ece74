// SPDX-License-Identifier: GPL-2.0-only
/*
 * SIGHUP: read again now what can be read again without a restart.
 *
 *   the configuration file  parsed whole first: one that does not parse
 *                           changes nothing (the error names file and
 *                           line). Of the keys that changed, those that
 *                           apply live are applied; the others are named in
 *                           one line and keep their running values until a
 *                           restart (enforcement has no gap across one).
 *   mTLS credentials        ca_bundle, node_cert, node_key: the file
 *                           watch's all-or-nothing reload, at once; mTLS
 *                           that could not start (credentials missing or
 *                           broken then) is started with them
 *   the policy directory    as `ztctl policy reload`
 *   feeds                   fetched now, as `ztctl feeds refresh`
 *
 * Live keys: log_level, mtls.peers, and mtls.ca_bundle/node_cert/node_key
 * (new paths are read at once and watched from then on). Everything else
 * sizes maps, binds sockets, starts threads or is read once at start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "agent/apiops.h"
#include "agent/cbor.h"
#include "agent/daemon_int.h"
#include "agent/daemon_reload.h"
#include "agent/log.h"

static const char *const live_keys[] = {
	"log_level", "mtls.peers", "mtls.ca_bundle", "mtls.node_cert", "mtls.node_key",
};

struct diff {
	char live[512], restart[2048];
	size_t n_live, n_restart;
};

static bool is_live(const char *key)
{
	for (size_t i = 0; i < ZT_ARRAY_SIZE(live_keys); i++)
		if (!strcmp(live_keys[i], key))
			return true;
	return false;
}

static void add_key(char *buf, size_t n, const char *key)
{
	size_t len = strlen(buf);

	if (len + strlen(key) + 2 < n)
		snprintf(buf + len, n - len, "%s%s", len ? "," : "", key);
	else if (len + 5 < n && strcmp(buf + len - 4, ",...") != 0)
		snprintf(buf + len, n - len, ",...");
}

static void on_key(void *ctx, const char *key)
{
	struct diff *df = ctx;

	if (is_live(key)) {
		add_key(df->live, sizeof(df->live), key);
		df->n_live++;
	} else {
		add_key(df->restart, sizeof(df->restart), key);
		df->n_restart++;
	}
}

/* The configuration: 1 when it changed something live, 0 when not, -errno when it did not parse. */
static int reload_config(struct zt_daemon *d)
{
	struct zt_config *nc = malloc(sizeof(*nc));
	struct diff df = { 0 };
	char err[1024], q[1100];
	int r;

	if (!nc) {
		log_error("reload_config_failed", "error=\"out of memory\" kept=running");
		return -ENOMEM;
	}
	r = zt_config_load(d->config_path, nc, err, sizeof(err));
	if (r < 0) {
		log_error(
			"reload_config_invalid",
			"file=%s error=%s kept=running action=\"fix the file and send SIGHUP again; a restart would refuse it too (ztagent --check-config)\"",
			d->config_path, zt_log_quote(q, sizeof(q), err));
		goto out;
	}
	zt_config_diff(&d->cfg, nc, on_key, &df);
	if (df.n_restart)
		log_warn(
			"reload_restart_needed",
			"keys=%s kept=running action=\"restart the agent to apply these keys; enforcement has no gap across a restart\"",
			df.restart);
	if (!df.n_live) {
		log_info("reload_config", "file=%s changed_live=0 changed_restart=%zu",
			 d->config_path, df.n_restart);
		r = 0;
		goto out;
	}
	if (d->cfg.log_level != nc->log_level) {
		d->cfg.log_level = nc->log_level;
		zt_log_set_level(nc->log_level);
	}
	if (memcmp(d->cfg.mtls.peers, nc->mtls.peers, sizeof(nc->mtls.peers))) {
		memcpy(d->cfg.mtls.peers, nc->mtls.peers, sizeof(nc->mtls.peers));
		d->cfg.mtls.n_peers = nc->mtls.n_peers;
		daemon_mtls_peers_reload(d);
	}
	/* Read by the loop thread only (creds_watch): the reload below reads the new paths. */
	memcpy(d->cfg.mtls.ca_bundle, nc->mtls.ca_bundle, sizeof(nc->mtls.ca_bundle));
	memcpy(d->cfg.mtls.node_cert, nc->mtls.node_cert, sizeof(nc->mtls.node_cert));
	memcpy(d->cfg.mtls.node_key, nc->mtls.node_key, sizeof(nc->mtls.node_key));
	log_info("reload_config", "file=%s applied=%s changed_restart=%zu", d->config_path, df.live,
		 df.n_restart);
	r = 1;
out:
	free(nc);
	return r;
}

/* An API operation as ztctl would ask for it; 0, or -errno with err set. */
static int invoke(struct zt_daemon *d, const char *op, char *err, size_t errlen)
{
	cbor_item_t *req = zt_cbor_map(), *data = NULL;
	int r;

	if (!req || zt_cbor_put_str(req, "op", op)) {
		if (req)
			cbor_decref(&req);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = zt_api_invoke(d->api, op, req, &data, err, errlen);
	if (data)
		cbor_decref(&data);
	cbor_decref(&req);
	return r;
}

void daemon_reload(struct zt_daemon *d)
{
	const char *config, *creds, *policy, *feeds;
	char err[1024], q[1100];
	int r;

	log_info("reload", "signo=SIGHUP file=%s", d->config_path);
	r = reload_config(d);
	config = r < 0 ? "kept_running" : r ? "applied" : "unchanged";

	/* mTLS that did not start (credentials missing at start, say) starts now if it can. */
	r = daemon_mtls_retry(d);
	if (r == 0)
		creds = "started";
	else if (r == -EALREADY)
		creds = daemon_mtls_reload_credentials(d) == 0 ? "reloaded" : "kept_last_good";
	else
		creds = "not_running";

	err[0] = '\0';
	r = invoke(d, ZT_OP_POLICY_RELOAD, err, sizeof(err));
	policy = r == 0 ? "reloaded" : "kept_in_force"; /* seg logged and audited the refusal */
	if (r < 0)
		log_warn("reload_policy_refused", "error=%s", zt_log_quote(q, sizeof(q), err));

	err[0] = '\0';
	r = d->feeds ? invoke(d, ZT_OP_FEEDS_REFRESH, err, sizeof(err)) : -ENOENT;
	feeds = r == 0 ? "fetching" : r == -ENOENT ? "none" : "failed";
	if (r < 0 && r != -ENOENT)
		log_warn("reload_feeds_failed", "error=%s", zt_log_quote(q, sizeof(q), err));

	log_info("reload_done", "config=%s mtls_credentials=%s policy=%s feeds=%s", config, creds,
		 policy, feeds);
}
