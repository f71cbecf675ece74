/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel side as the daemon sees it: loads the eBPF objects through
 * their skeletons, pins their maps under the configured bpffs directory
 * (reusing pins left by an earlier run, so enforcement state survives a
 * restart), and attaches XDP to the uplinks, replacing an earlier ztagent
 * program atomically. Stopping leaves programs and pins in place; only
 * zt_datapath_detach() removes them.
 */
#ifndef ZT_DATAPATH_H
#define ZT_DATAPATH_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "guard/activity.h"
#include "ztagent.h"

struct xdp_guard;
struct tc_guard;
struct tc_endpoint;
struct tc_uplink;

struct zt_dp_iface {
	char name[IF_NAMESIZE];
	int ifindex;
	enum zt_xdp_mode mode; /* the mode it is attached in; ZT_XDP_TC: tc_guard on TC ingress */
	uint32_t prog_id;
};

struct zt_datapath {
	struct xdp_guard *xdp;
	/* The guard built for TC ingress, on the xdp_guard maps; NULL unless an uplink uses it. */
	struct tc_guard *tcg;
	struct tc_endpoint *tc; /* micro-segmentation; attached per endpoint by seg.c */
	struct tc_uplink *up; /* the uplinks' TC egress: probe outcomes, captures */
	/* The node's own TCP sessions at their close (NULL: not on this kernel, logged). */
	struct host_session *hs;
	struct bpf_link *hs_link;
	char bpffs[4096];
	struct zt_dp_iface ifaces[ZT_MAX_IFACES];
	unsigned int n_ifaces;
	unsigned int n_reused; /* maps taken over from earlier pins */
	int ncpus; /* possible CPUs, for per-CPU maps */
};

/* A map the daemon shows in status, with its fd. */
struct zt_dp_map {
	const char *name;
	int fd;
};

/*
 * Loads, pins and attaches per cfg. On failure returns -errno, undoes what
 * it did (except pins it reused, which it never removes) and writes the
 * reason to err. Warnings (fallback to generic mode, kept map sizes) are
 * logged.
 */
/*
 * Before xdp_guard__load: what the running kernel offers the guard, set in
 * its rodata and program flags: bpf_xdp_load_bytes for captures, and
 * multi-buffer frames (5.18+, BPF_F_XDP_HAS_FRAGS) unless frags is false.
 * Returns whether multi-buffer is on. The daemon, tests and benches load
 * the guard alike through it.
 */
bool zt_datapath_xdp_features(struct xdp_guard *skel, bool frags);

int zt_datapath_init(struct zt_datapath **dp, const struct zt_config *cfg, char *err,
		     size_t errlen);
/* Frees userspace state; attached programs and pins stay. NULL is fine. */
void zt_datapath_stop(struct zt_datapath *dp);

/*
 * Removes ztagent's XDP program (and tc_uplink on their TC egress) from
 * cfg's interfaces (only programs named
 * xdp_guard; another program is left alone with a warning) and removes the
 * pins under cfg->bpffs. Works without a loaded datapath (ztagent --detach).
 */
int zt_datapath_detach(const struct zt_config *cfg, char *err, size_t errlen);

/*
 * tc_endpoint on one endpoint's host-side veth: tc_from_pod on the ingress
 * hook, tc_to_pod on the egress hook (clsact created when missing),
 * replacing ztagent's earlier filters atomically. Detach removes only
 * ztagent's filters (by handle and priority) and is quiet when they are gone.
 */
#define ZT_TC_HANDLE 0x7a74
#define ZT_TC_PRIORITY 0x7a74
int zt_datapath_tc_attach(const struct zt_datapath *dp, int ifindex, char *err, size_t errlen);
int zt_datapath_tc_detach(int ifindex, char *err, size_t errlen);
/*
 * Does ifindex carry our tc_from_pod (handle and priority ZT_TC_HANDLE /
 * ZT_TC_PRIORITY on the ingress hook)? 1 yes, 0 no, -errno when the kernel
 * cannot tell. A filter lives exactly as long as its link, so a link that
 * was deleted and created again (same name, even the same ifindex) never
 * has it: this is how a restart tells the endpoint's own interface from a
 * new one that took its name.
 */
int zt_datapath_tc_owned(int ifindex);

/*
 * Drift (src/agent/daemon_drift.c). The id of our XDP program. xdp_repair:
 * *found gets the program on ifaces[i] (0: none); when it is not ours,
 * ours is attached again (replacing another program if one took the
 * place; tc_guard on TC ingress for a ZT_XDP_TC uplink, with its clsact if
 * that went too); 0 nothing to do, 1 repaired, -errno with err. tc_check: are our
 * filters on ifindex's ingress and egress hooks (found: the program ids
 * there, 0 none)? 1 yes, 0 no, -ENODEV when the link is gone.
 */
uint32_t zt_datapath_xdp_prog_id(const struct zt_datapath *dp);
/* tc_guard's id, 0 when no uplink uses it (it is not loaded then). */
uint32_t zt_datapath_tc_guard_prog_id(const struct zt_datapath *dp);
/*
 * Is our guard on ifaces[i], in its hook (XDP, or TC ingress at ztagent's
 * handle for ZT_XDP_TC)? 1 yes, 0 no, -errno; *found: the program there.
 */
int zt_datapath_guard_on(const struct zt_datapath *dp, unsigned int i, uint32_t *found);
/*
 * tc_uplink on ifaces[i]'s TC egress: egress_on 1 yes, 0 no, -errno
 * (*found: the program there); egress_repair attaches it (with its clsact
 * when that went too), 0 or -errno with err. At start and by drift.
 */
int zt_datapath_uplink_egress_on(const struct zt_datapath *dp, unsigned int i, uint32_t *found);
int zt_datapath_uplink_egress_repair(struct zt_datapath *dp, unsigned int i, char *err,
				     size_t errlen);
int zt_datapath_xdp_repair(struct zt_datapath *dp, unsigned int i, uint32_t *found, char *err,
			   size_t errlen);
int zt_datapath_tc_check(const struct zt_datapath *dp, int ifindex, uint32_t found[2]);

/*
 * Every map of every object, for status and tests: the first max into out;
 * returns how many there are (more than max: call again with room).
 */
size_t zt_datapath_maps(const struct zt_datapath *dp, struct zt_dp_map *out, size_t max);
/* Counts a map's entries by walking its keys (LPM tries, hashes). */
int zt_datapath_map_count(int fd, uint32_t key_size, uint64_t *count);

/* Sums `slots` values of value_size bytes (whole __u64 words) of a per-CPU array over CPUs. */
int zt_percpu_sum(int fd, uint32_t slots, size_t value_size, int ncpus, uint64_t *out);
/*
 * Fills a fresh guard_cfg (fd) with the defaults for a kernel at hz and
 * new random keys; keeps one in force (an earlier run's) as it is.
 */
int zt_guard_cfg_init(int fd, uint32_t hz);
/*
 * An endpoint's activity (tc_endpoint's ep_stats), summed over the CPUs
 * whose copy of its slot holds it. out->ep_id = ep_id.
 */
int zt_datapath_ep_stats(const struct zt_datapath *dp, uint32_t ep_id, struct zt_ep_stats *out);

/* Sums the per-CPU xdp_stats slots into out[ZT_XDP_STATS_SLOTS]. */
int zt_datapath_xdp_stats(const struct zt_datapath *dp, struct zt_counter *out);
/* Sums tc_stats into out[ZT_TCS_MAX]. */
int zt_datapath_tc_stats(const struct zt_datapath *dp, struct zt_counter *out);
const char *zt_tc_stat_name(unsigned int i); /* "allowed-new", "denied-established", ... */
/* Sums event_stats into out[ZT_EVS_MAX]. */
int zt_datapath_event_stats(const struct zt_datapath *dp, uint64_t *out);

const char *zt_xdp_reason_name(unsigned int reason);
/* A policy verdict's reason (ZT_REASON_*): "rule-allow", "default-deny", ... */
const char *zt_tc_reason_name(unsigned int reason);
const char *zt_action_name(unsigned int action);

#endif
