// SPDX-License-Identifier: GPL-2.0-only
/*
 * Drift repair: the kernel's enforcement state against what this agent
 * wrote, every DRIFT_TICK_NS on the loop thread (where every other writer
 * of that state runs, so a check never meets a half-done change).
 *
 * Each tick is cheap: the program id on each uplink's XDP hook and each
 * endpoint's tc hooks, a stat() of each pin, the policy, ipcache and
 * endpoints maps against the appliers' records (a walk of the published
 * entries; see the README for the cost), and a bounded slice of the
 * blocklist maps. Every DRIFT_FULL_TICKS ticks the pins are also checked
 * for being our maps (not another map pinned in their place).
 *
 * A difference is repaired at once, logged, counted
 * (ztagent_drift_repairs_total{kind}) and audited (drift.repair, with what
 * differed). More than DRIFT_FLAP_MAX repairs of one kind within
 * DRIFT_FLAP_WINDOW_NS is something fighting the agent: an alert
 * (drift.flapping, with an alerts row) and a back-off (no repair of that
 * kind for a while, doubling up to DRIFT_BACKOFF_MAX_NS) instead of a
 * silent loop of repairs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "agent/daemon_int.h"
#include "agent/log.h"
#include "agent/util.h"
#include "guard/blocklist.h"
#include "guard/drift.h"
#include "records/auditq.h"
#include "seg/seg.h"
#include "tc_endpoint.skel.h"
#include "xdp_guard.skel.h"

#define DRIFT_TICK_NS (200ULL * 1000000ULL)
#define DRIFT_FULL_TICKS 25 /* 5 s */
#define DRIFT_BL_BUDGET 16384 /* blocklist keys per map per tick */
#define DRIFT_FLAP_MAX 5
#define DRIFT_FLAP_WINDOW_NS (10ULL * 1000000000ULL)
#define DRIFT_BACKOFF_NS (5ULL * 1000000000ULL)
#define DRIFT_BACKOFF_MAX_NS (300ULL * 1000000000ULL)

static const char *const kind_names[] = { "xdp",       "tc",	    "policy", "ipcache",
					  "endpoints", "blocklist", "pin",    "cni" };
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

struct drift_kind {
	uint64_t recent[DRIFT_FLAP_MAX + 1]; /* mono ns of the latest repairs, a ring */
	unsigned int n_recent;
	uint64_t backoff_until;
	uint64_t backoff_ns; /* the next back-off's length */
	uint64_t last_repair;
	uint64_t last_tick; /* the tick of the last repair counted */
	bool flapping;
	bool told; /* the back-off's "not repaired" was logged */
	bool err_told; /* a failed repair was logged (once until one succeeds) */
};

struct zt_drift {
	struct zt_daemon *d;
	struct zt_metric *repairs;
	struct zt_metric *flapping;
	struct zt_drift_hooks hooks;
	struct zt_bl_drift_cursor blc;
	struct drift_kind k[N_KINDS];
	uint64_t ticks;
	uint64_t repairs_total; /* for the nodes table */
	uint64_t last_tick_ns; /* duration of the last tick, for the log at debug */
};

static int kind_index(const char *kind)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (!strcmp(kind_names[i], kind))
			return (int)i;
	return -1;
}

static bool drift_may(void *ctx, const char *kind)
{
	struct zt_drift *dr = ctx;
	int i = kind_index(kind);

	return i < 0 || zt_now_mono_ns() >= dr->k[i].backoff_until;
}

static void drift_audit(struct zt_drift *dr, const char *akind, const char *kind,
			const char *subject, const char *what, const char *extra)
{
	char esc_what[1024], esc_subj[512], detail[2048];

	if (!dr->d->auditq)
		return;
	zt_json_escape(what, esc_what, sizeof(esc_what));
	zt_json_escape(subject, esc_subj, sizeof(esc_subj));
	snprintf(detail, sizeof(detail),
		 "{\"kind\":\"%s\",\"object\":\"%s\",\"differed\":\"%s\"%s}", kind, esc_subj,
		 esc_what, extra);
	zt_auditq_post(dr->d->auditq, akind, dr->d->actor, subject, detail);
}

/* A repair of kind i now: is it the one too many? */
static void note_repair(struct zt_drift *dr, int i, const char *subject, const char *what)
{
	struct drift_kind *k = &dr->k[i];
	uint64_t now = zt_now_mono_ns(), oldest;
	char extra[160];

	/* One change can need many repairs (a pin directory removed): one episode per tick. */
	if (k->n_recent && k->last_tick == dr->ticks)
		return;
	k->last_tick = dr->ticks;
	if (k->last_repair && now - k->last_repair > 2 * DRIFT_FLAP_WINDOW_NS) {
		/* Quiet for a while: whatever fought us stopped. */
		k->backoff_ns = 0;
		k->n_recent = 0;
		if (k->flapping) {
			const char *v[] = { kind_names[i] };

			k->flapping = false;
			zt_metric_set(dr->flapping, v, 0);
		}
	}
	k->last_repair = now;
	k->recent[k->n_recent % (DRIFT_FLAP_MAX + 1)] = now;
	k->n_recent++;
	if (k->n_recent <= DRIFT_FLAP_MAX)
		return;
	oldest = k->recent[(k->n_recent - DRIFT_FLAP_MAX - 1) % (DRIFT_FLAP_MAX + 1)];
	if (now - oldest > DRIFT_FLAP_WINDOW_NS)
		return;
	k->backoff_ns = k->backoff_ns ? k->backoff_ns * 2 : DRIFT_BACKOFF_NS;
	if (k->backoff_ns > DRIFT_BACKOFF_MAX_NS)
		k->backoff_ns = DRIFT_BACKOFF_MAX_NS;
	k->backoff_until = now + k->backoff_ns;
	k->n_recent = 0;
	k->told = false;
	if (!k->flapping) {
		const char *v[] = { kind_names[i] };

		k->flapping = true;
		zt_metric_set(dr->flapping, v, 1);
	}
	log_error(
		"drift_flapping",
		"kind=%s subject=\"%s\" repairs=%d window_s=%llu backoff_s=%llu why=\"something keeps changing this behind the agent's back\" action=\"find what fights the agent (a script, another agent, an operator with bpftool); repairs of this kind resume after the back-off\"",
		kind_names[i], subject, DRIFT_FLAP_MAX + 1,
		(unsigned long long)(DRIFT_FLAP_WINDOW_NS / 1000000000ULL),
		(unsigned long long)(k->backoff_ns / 1000000000ULL));
	snprintf(
		extra, sizeof(extra),
		",\"repairs\":%d,\"window_s\":%llu,\"backoff_s\":%llu,\"alert_kind\":\"drift-flapping\",\"alert_severity\":\"critical\"",
		DRIFT_FLAP_MAX + 1, (unsigned long long)(DRIFT_FLAP_WINDOW_NS / 1000000000ULL),
		(unsigned long long)(k->backoff_ns / 1000000000ULL));
	drift_audit(dr, "drift.flapping", kind_names[i], subject, what, extra);
}

static void drift_report(void *ctx, const char *kind, const char *subject, const char *what,
			 bool repaired, int err)
{
	struct zt_drift *dr = ctx;
	int i = kind_index(kind);
	char qs[600], qw[1100];

	if (i < 0)
		return;
	zt_log_quote(qs, sizeof(qs), subject);
	zt_log_quote(qw, sizeof(qw), what);
	if (!repaired) {
		if (err && !dr->k[i].err_told)
			log_error("drift_repair_failed",
				  "kind=%s subject=%s differed=%s error=\"%s\" retry=every-tick",
				  kind, qs, qw, strerror(-err));
		if (err)
			dr->k[i].err_told = true;
		else if (!dr->k[i].told)
			log_warn(
				"drift_not_repaired",
				"kind=%s subject=%s differed=%s why=\"backing off: this kind flaps\" retry_in_ms=%llu",
				kind, qs, qw,
				(unsigned long long)((dr->k[i].backoff_until - zt_now_mono_ns()) /
						     1000000ULL));
		if (!err)
			dr->k[i].told = true;
		return;
	}
	dr->k[i].err_told = false;
	{
		const char *v[] = { kind };

		zt_metric_add(dr->repairs, v, 1);
		__atomic_add_fetch(&dr->repairs_total, 1, __ATOMIC_RELAXED);
	}
	log_warn("drift_repaired", "kind=%s subject=%s differed=%s", kind, qs, qw);
	drift_audit(dr, "drift.repair", kind, subject, what, "");
	note_repair(dr, i, subject, what);
}

static void check_xdp(struct zt_drift *dr)
{
	struct zt_datapath *dp = dr->d->dp;
	uint32_t ours = zt_datapath_xdp_prog_id(dp);

	for (unsigned int i = 0; i < dp->n_ifaces; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		char what[160], err[256] = "";
		uint32_t found = 0;
		int r;

		if (bpf_xdp_query(dp->ifaces[i].ifindex, 0, &q) < 0 || q.prog_id == ours)
			continue;
		snprintf(what, sizeof(what), "XDP program %u on the hook, expected xdp_guard %u",
			 q.prog_id, ours);
		if (!drift_may(dr, "xdp")) {
			drift_report(dr, "xdp", dp->ifaces[i].name, what, false, 0);
			continue;
		}
		r = zt_datapath_xdp_repair(dp, i, &found, err, sizeof(err));
		drift_report(dr, "xdp", dp->ifaces[i].name, what, r > 0, r < 0 ? r : 0);
	}
}

/* Is path a pin of the map behind fd? 1 yes, 0 missing, -1 another object. */
static int pin_state(const char *path, int fd, bool full)
{
	struct bpf_map_info a = {}, b = {};
	__u32 la = sizeof(a), lb = sizeof(b);
	struct stat st;
	int pfd, r;

	if (stat(path, &st) < 0)
		return 0;
	if (!full)
		return 1;
	pfd = bpf_obj_get(path);
	if (pfd < 0)
		return -1;
	r = bpf_obj_get_info_by_fd(pfd, &a, &la) == 0 && bpf_obj_get_info_by_fd(fd, &b, &lb) == 0 &&
	    a.id == b.id;
	close(pfd);
	return r ? 1 : -1;
}

static void check_pins_obj(struct zt_drift *dr, struct bpf_object *obj, bool full)
{
	struct bpf_map *map;

	bpf_object__for_each_map (map, obj) {
		const char *path = bpf_map__pin_path(map);
		char what[96];
		int st, r = 0;

		if (!path || bpf_map__is_internal(map))
			continue;
		st = pin_state(path, bpf_map__fd(map), full);
		if (st == 1)
			continue;
		snprintf(what, sizeof(what),
			 st == 0 ? "pin removed" : "another object pinned in its place");
		if (!drift_may(dr, "pin")) {
			drift_report(dr, "pin", path, what, false, 0);
			continue;
		}
		if (st < 0 && unlink(path) < 0)
			r = -errno;
		if (r == 0 && bpf_obj_pin(bpf_map__fd(map), path) < 0) {
			r = -errno;
			if (r == -ENOENT) {
				/* The whole directory went: make it again (it is on the bpffs). */
				char dir[PATH_MAX];
				char *slash;

				snprintf(dir, sizeof(dir), "%s", path);
				slash = strrchr(dir, '/');
				if (slash) {
					*slash = '\0';
					zt_mkdir_p(dir, 0700);
				}
				r = bpf_obj_pin(bpf_map__fd(map), path) < 0 ? -errno : 0;
			}
		}
		drift_report(dr, "pin", path, what, r == 0, r);
	}
}

void daemon_drift_cni_check(struct zt_daemon *d, const struct zt_drift_hooks *h, bool full);

static void on_drift_timer(void *ctx, int fd, uint32_t events)
{
	struct zt_drift *dr = ctx;
	struct zt_daemon *d = dr->d;
	uint64_t ticks, t0 = zt_now_mono_ns();
	bool full;

	if (read(fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	full = dr->ticks++ % DRIFT_FULL_TICKS == 0;
	check_xdp(dr);
	check_pins_obj(dr, d->dp->xdp->obj, full);
	check_pins_obj(dr, d->dp->tc->obj, full);
	zt_seg_drift_check(d->seg, &dr->hooks);
	zt_blocklist_drift_check(d->bl, &dr->blc, DRIFT_BL_BUDGET, &dr->hooks);
	daemon_drift_cni_check(d, &dr->hooks, full);
	dr->last_tick_ns = zt_now_mono_ns() - t0;
	if (full)
		log_debug("drift_tick", "us=%llu", (unsigned long long)(dr->last_tick_ns / 1000));
}

int daemon_drift_start(struct zt_daemon *d, char *err, size_t errlen)
{
	static const char *const labels[] = { "kind", NULL };
	struct zt_drift *dr = calloc(1, sizeof(*dr));
	int r;

	if (!dr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dr->d = d;
	dr->hooks = (struct zt_drift_hooks){ .may = drift_may, .report = drift_report, .ctx = dr };
	r = zt_metrics_add(d->metrics, "ztagent_drift_repairs_total",
			   "Differences between the kernel and the agent's desired state, repaired",
			   ZT_METRIC_COUNTER, labels, NULL, NULL, &dr->repairs);
	if (r == 0)
		r = zt_metrics_add(
			d->metrics, "ztagent_drift_flapping",
			"1 while repairs of this kind back off because something keeps undoing them",
			ZT_METRIC_GAUGE, labels, NULL, NULL, &dr->flapping);
	for (size_t i = 0; r == 0 && i < N_KINDS; i++) {
		const char *v[] = { kind_names[i] };

		r = zt_metric_add(dr->repairs, v, 0);
		if (r == 0)
			r = zt_metric_set(dr->flapping, v, 0);
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot register the drift metrics: %s", strerror(-r));
		free(dr);
		return r;
	}
	r = zt_loop_add_timer(d->loop, DRIFT_TICK_NS, on_drift_timer, dr);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the drift timer: %s", strerror(-r));
		free(dr);
		return r;
	}
	d->drift = dr;
	log_info("drift_on", "tick_ms=%llu full_every_s=%llu flap_max=%d flap_window_s=%llu",
		 (unsigned long long)(DRIFT_TICK_NS / 1000000ULL),
		 (unsigned long long)(DRIFT_TICK_NS * DRIFT_FULL_TICKS / 1000000000ULL),
		 DRIFT_FLAP_MAX, (unsigned long long)(DRIFT_FLAP_WINDOW_NS / 1000000000ULL));
	return 0;
}

uint64_t daemon_drift_repairs(struct zt_daemon *d)
{
	return d->drift ? __atomic_load_n(&d->drift->repairs_total, __ATOMIC_RELAXED) : 0;
}

void daemon_drift_stop(struct zt_daemon *d)
{
	/* The timer belongs to the loop, which is stopped after this. */
	free(d->drift);
	d->drift = NULL;
}

/* ---- the CNI conflist (drift.cni_conflist) ---- */

static bool lists_plugin(json_object *root)
{
	json_object *plugins, *t;

	if (!json_object_object_get_ex(root, "plugins", &plugins) ||
	    !json_object_is_type(plugins, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(plugins); i++) {
		json_object *p = json_object_array_get_idx(plugins, i);

		if (json_object_object_get_ex(p, "type", &t) &&
		    json_object_is_type(t, json_type_string) &&
		    !strcmp(json_object_get_string(t), "ztagent-cni"))
			return true;
	}
	return false;
}

/* Writes text to path through a temporary file and a rename: the runtime never reads half. */
static int write_atomic(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 16];
	size_t n = strlen(text);
	FILE *f;
	int r = 0;

	snprintf(tmp, sizeof(tmp), "%s.ztagent", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (fwrite(text, 1, n, f) != n || fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = -EIO;
	if (fclose(f) != 0 && !r)
		r = -EIO;
	if (!r && chmod(tmp, mode) < 0)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

struct cni_watch {
	char *good; /* the last text that listed the plugin */
	struct stat st; /* of the file as last checked */
	bool checked;
};

static struct cni_watch cni_w; /* the loop thread's only */

void daemon_drift_cni_check(struct zt_daemon *d, const struct zt_drift_hooks *h, bool full)
{
	const char *path = d->cfg.drift.cni_conflist;
	char *text = NULL, what[128] = "";
	json_object *root = NULL, *plugins = NULL;
	struct stat st;
	mode_t mode = 0644;
	int r = 0;

	if (!path[0])
		return;
	if (stat(path, &st) == 0) {
		if (!full && cni_w.checked && st.st_ino == cni_w.st.st_ino &&
		    st.st_size == cni_w.st.st_size &&
		    st.st_mtim.tv_sec == cni_w.st.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == cni_w.st.st_mtim.tv_nsec)
			return;
		mode = st.st_mode & 07777;
		root = json_object_from_file(path);
		if (root && lists_plugin(root)) {
			free(cni_w.good);
			cni_w.good = strdup(json_object_to_json_string_ext(
				root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
			cni_w.st = st;
			cni_w.checked = true;
			goto out;
		}
		snprintf(what, sizeof(what),
			 root ? "ztagent-cni missing from the plugins list" :
				"conflist is not valid JSON");
	} else if (cni_w.good) {
		snprintf(what, sizeof(what), "conflist removed");
	} else {
		goto out; /* never seen: the installer has not written it yet */
	}
	if (!cni_w.good && !root)
		goto out; /* nothing good to go back to */
	if (!h->may || h->may(h->ctx, "cni")) {
		if (root && json_object_object_get_ex(root, "plugins", &plugins) &&
		    json_object_is_type(plugins, json_type_array)) {
			/* Keep the operator's other changes: add our entry back at the end. */
			json_object *e = json_object_new_object();

			json_object_object_add(e, "type", json_object_new_string("ztagent-cni"));
			json_object_object_add(e, "socket",
					       json_object_new_string(d->cfg.api_socket));
			json_object_object_add(e, "state_dir",
					       json_object_new_string(d->cfg.state_dir));
			json_object_array_add(plugins, e);
			text = strdup(json_object_to_json_string_ext(
				root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		} else if (cni_w.good) {
			text = strdup(cni_w.good);
		}
		r = text ? write_atomic(path, text, mode) : -EINVAL;
		if (r == 0 && stat(path, &cni_w.st) == 0) {
			free(cni_w.good);
			cni_w.good = text;
			text = NULL;
			cni_w.checked = true;
		}
		h->report(h->ctx, "cni", path, what, r == 0, r);
	} else {
		h->report(h->ctx, "cni", path, what, false, 0);
	}
out:
	free(text);
	if (root)
		json_object_put(root);
}
