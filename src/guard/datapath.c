// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "guard/activity.h"
#include "guard/datapath.h"
#include "agent/log.h"
#include "agent/util.h"
#include "host_session.skel.h"
#include "tc_endpoint.skel.h"
#include "tc_guard.skel.h"
#include "tc_uplink.skel.h"
#include "xdp_guard.skel.h"

#define XDP_PROG_NAME "xdp_guard"
#define TC_GUARD_NAME "tc_guard"

static const char *const reason_names[ZT_XR_MAX] = {
	[ZT_XR_OK] = "ok",
	[ZT_XR_NOT_IP] = "not-ip",
	[ZT_XR_ALLOWLIST] = "allowlist",
	[ZT_XR_BLOCKLIST] = "blocklist",
	[ZT_XR_BLOCK_EXPIRED] = "block-expired",
	[ZT_XR_BAD_ETH] = "malformed-eth",
	[ZT_XR_BAD_VLAN] = "malformed-vlan",
	[ZT_XR_BAD_IP4] = "malformed-ipv4",
	[ZT_XR_BAD_IP6] = "malformed-ipv6",
	[ZT_XR_BAD_IP6_EXT] = "malformed-ipv6-ext",
	[ZT_XR_BAD_L4] = "malformed-l4",
	[ZT_XR_RL_SRC_ALL] = "ratelimit-src",
	[ZT_XR_RL_SRC_SYN] = "ratelimit-src-syn",
	[ZT_XR_RL_SRC_UDP] = "ratelimit-src-udp",
	[ZT_XR_RL_SRC_ICMP] = "ratelimit-src-icmp",
	[ZT_XR_RL_DST_ALL] = "ratelimit-dst",
	[ZT_XR_RL_DST_SYN] = "ratelimit-dst-syn",
	[ZT_XR_RL_DST_UDP] = "ratelimit-dst-udp",
	[ZT_XR_RL_DST_ICMP] = "ratelimit-dst-icmp",
	[ZT_XR_SYN_VERIFIED] = "syn-verified",
	[ZT_XR_SYN_CHALLENGE] = "syn-challenge",
	[ZT_XR_SYN_ANSWER] = "syn-answer",
	[ZT_XR_SCAN_BRAKE] = "scan-brake",
};

const char *zt_xdp_reason_name(unsigned int reason)
{
	return reason < ZT_XR_MAX && reason_names[reason] ? reason_names[reason] : "unknown";
}

const char *zt_action_name(unsigned int action)
{
	return action == ZT_ACT_DROP ? "drop" : action == ZT_ACT_TX ? "tx" : "pass";
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* The nearest existing ancestor of path (or path itself) is on a bpffs. */
static bool ancestor_on_bpffs(const char *path)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s", path);
	while (stat(p, &st) < 0) {
		char *slash = strrchr(p, '/');

		if (!slash || slash == p)
			return false;
		*slash = '\0';
	}
	return on_bpffs(p);
}

/*
 * Makes dir a directory on a bpffs: creates it under an existing bpffs,
 * mounts bpffs at /sys/fs/bpf when dir lives there and nothing is mounted,
 * else mounts a bpffs on dir itself.
 */
static int ensure_bpffs(const char *dir, char *err, size_t errlen)
{
	int r;

	if (on_bpffs(dir))
		return 0;
	if (strncmp(dir, "/sys/fs/bpf/", 12) == 0 && !on_bpffs("/sys/fs/bpf")) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot mount bpffs at /sys/fs/bpf: %s",
				 strerror(-r));
			return r;
		}
		log_info("bpffs_mounted", "path=/sys/fs/bpf");
	}
	if (ancestor_on_bpffs(dir)) {
		r = zt_mkdir_p(dir, 0700);
		if (r < 0)
			snprintf(err, errlen, "cannot create pin directory %s: %s", dir,
				 strerror(-r));
		return r;
	}
	r = zt_mkdir_p(dir, 0700);
	if (r < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	if (mount("bpf", dir, "bpf", 0, "mode=0700") < 0) {
		r = -errno;
		snprintf(err, errlen,
			 "cannot mount bpffs at %s: %s (set 'bpffs' to a directory on a bpffs)",
			 dir, strerror(-r));
		return r;
	}
	log_info("bpffs_mounted", "path=%s", dir);
	return 0;
}

/*
 * Maps whose contents are counters or state the programs rebuild by
 * themselves (statistics, sketches, conntrack, the activity settings and
 * the blocklist's published prefix set the daemon writes again at start).
 * When a new version changes one's layout or size, its old pin is replaced
 * instead of failing the load.
 */
static bool transient_map(const char *name)
{
	static const char *const names[] = {
		"xdp_stats",   "tc_stats",     "event_stats",	"act_stats",	      "src_sketch",
		"dst_sketch",  "dst_local",    "ratelimit_src", "syn_verified",	      "ep_stats",
		"conntrack",   "guard_cfg",    "event_sampler", "blocklist_prefixes", "scan_cells",
		"scan_exempt", "host_replies", "cred_seen",
	};

	for (size_t i = 0; i < ZT_ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/*
 * A pinned map from an earlier run wins over the configured size: libbpf
 * can only reuse a pin whose definition matches, and throwing the old map
 * away would throw enforcement state away with it. A transient map
 * (above) whose pin does not match is unpinned and made anew instead.
 */
static void adopt_pinned_sizes(struct bpf_object *obj, const char *bpffs, unsigned int *reused)
{
	struct bpf_map *map;

	bpf_object__for_each_map (map, obj) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		char path[4096];
		int fd;

		if (!bpf_map__pin_path(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", bpffs, bpf_map__name(map));
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
			if (transient_map(bpf_map__name(map)) &&
			    (info.type != (__u32)bpf_map__type(map) ||
			     info.key_size != bpf_map__key_size(map) ||
			     info.value_size != bpf_map__value_size(map) ||
			     info.max_entries != bpf_map__max_entries(map))) {
				log_warn(
					"map_replaced",
					"map=%s why=\"its layout or size changed\" pinned_value_size=%u value_size=%u pinned_entries=%u entries=%u",
					bpf_map__name(map), info.value_size,
					bpf_map__value_size(map), info.max_entries,
					bpf_map__max_entries(map));
				unlink(path);
				close(fd);
				continue;
			}
			(*reused)++;
			if (info.max_entries != bpf_map__max_entries(map)) {
				log_warn(
					"map_size_kept",
					"map=%s pinned=%u configured=%u hint=\"ztagent --detach removes the old pins so the new size applies\"",
					bpf_map__name(map), info.max_entries,
					bpf_map__max_entries(map));
				bpf_map__set_max_entries(map, info.max_entries);
			}
		}
		close(fd);
	}
}

static int prog_name_by_id(uint32_t id, char *name, size_t n)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, r = 0;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		r = -errno;
	else
		snprintf(name, n, "%s", info.name);
	close(fd);
	return r;
}

/* The driver of an interface (ethtool's "driver"), "" when it cannot be asked. */
static void iface_driver(const char *name, char *drv, size_t n)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	drv[0] = '\0';
	if (fd < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = (void *)&info;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == 0 && n >= sizeof(info.driver)) {
		memcpy(drv, info.driver, sizeof(info.driver));
		drv[sizeof(info.driver) - 1] = '\0';
	}
	close(fd);
}

/*
 * xdp.mode auto: native, except on a veth, where the guard runs on TC
 * ingress. A veth with a native XDP program strips GSO from its peer (the
 * kernel's veth_fix_features), so every TCP segment crosses the node on its
 * own (a benign stream through the lab's uplink: ~0.5x the bare path with
 * an empty native program); generic XDP sees the peer's GSO batches but
 * copies every paged skb into a buffer of its own (0.84x with an empty
 * program). At TC ingress an empty program costs the stream ~2 %
 * (tools/bench_xdp_live.sh). TC, like generic mode, counts a GSO batch as
 * one packet in the activity sketches; bytes stay exact.
 */
static enum zt_xdp_mode auto_mode(const char *name, char *why, size_t n)
{
	char drv[32];

	iface_driver(name, drv, sizeof(drv));
	if (!strcmp(drv, "veth")) {
		snprintf(why, n,
			 "veth: XDP there takes GSO from its peer (native) or copies it (generic)");
		return ZT_XDP_TC;
	}
	snprintf(why, n, "driver %s", drv[0] ? drv : "unknown");
	return ZT_XDP_NATIVE;
}

static int attach_one(struct zt_dp_iface *ifc, int prog_fd, enum zt_xdp_mode want, char *err,
		      size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, a);
	__u32 flags;
	char name[64] = "";
	int old_fd = -1, r;

	r = bpf_xdp_query(ifc->ifindex, 0, &q);
	if (r < 0) {
		snprintf(err, errlen, "cannot query XDP on %s: %s", ifc->name, strerror(-r));
		return r;
	}
	if (q.prog_id) {
		r = prog_name_by_id(q.prog_id, name, sizeof(name));
		if (r < 0 || strcmp(name, XDP_PROG_NAME) != 0) {
			snprintf(
				err, errlen,
				"%s already runs another XDP program (id %u, name '%s'); refusing to replace it: remove it first (ip link set dev %s xdp off)",
				ifc->name, q.prog_id, name, ifc->name);
			return -EBUSY;
		}
		/* Replace our earlier program in the mode it runs in: no gap. */
		old_fd = bpf_prog_get_fd_by_id(q.prog_id);
		if (old_fd < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot open the running program on %s: %s",
				 ifc->name, strerror(-r));
			return r;
		}
		want = q.attach_mode == XDP_ATTACHED_SKB ? ZT_XDP_GENERIC : ZT_XDP_NATIVE;
		flags = XDP_FLAGS_REPLACE |
			(want == ZT_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
		a.old_prog_fd = old_fd;
		r = bpf_xdp_attach(ifc->ifindex, prog_fd, flags, &a);
		close(old_fd);
		if (r < 0) {
			snprintf(err, errlen, "cannot replace the XDP program on %s: %s", ifc->name,
				 strerror(-r));
			return r;
		}
		ifc->mode = want;
		log_info("xdp_replaced", "iface=%s old_prog=%u mode=%s", ifc->name, q.prog_id,
			 want == ZT_XDP_GENERIC ? "generic" : "native");
		return 0;
	}
	if (want == ZT_XDP_NATIVE) {
		r = bpf_xdp_attach(ifc->ifindex, prog_fd,
				   XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (r == 0) {
			ifc->mode = ZT_XDP_NATIVE;
			log_info("xdp_attached", "iface=%s mode=native", ifc->name);
			return 0;
		}
		log_warn("xdp_native_unsupported",
			 "iface=%s error=\"%s\" action=\"falling back to generic mode (slower)\"",
			 ifc->name, strerror(-r));
	}
	r = bpf_xdp_attach(ifc->ifindex, prog_fd, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST,
			   NULL);
	if (r < 0) {
		snprintf(err, errlen, "cannot attach XDP to %s: %s", ifc->name, strerror(-r));
		return r;
	}
	ifc->mode = ZT_XDP_GENERIC;
	log_info("xdp_attached", "iface=%s mode=generic", ifc->name);
	return 0;
}

/*
 * While positive, libbpf's warnings are debug lines: set around calls whose
 * failure is expected and reported through their return code (a detach from
 * a link that is gone, a query for a filter that is not there), so that a
 * warning in the log always means something to act on. The control loop is
 * the only thread that attaches and detaches.
 */
static int libbpf_hushed;

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level == LIBBPF_WARN && libbpf_hushed > 0)
		level = LIBBPF_DEBUG;
	if (level == LIBBPF_DEBUG && zt_log_get_level() < ZT_LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n'))
		line[--n] = '\0';
	if (!n)
		return 0;
	if (level == LIBBPF_DEBUG) {
		char q[1100];
		log_debug("libbpf", "msg=%s", zt_log_quote(q, sizeof(q), line));
	} else {
		char q[1100];
		zt_log(level == LIBBPF_WARN ? ZT_LOG_WARN : ZT_LOG_INFO, "libbpf", "msg=%s",
		       zt_log_quote(q, sizeof(q), line));
	}
	return 0;
}

/*
 * Is there a clsact qdisc on ifindex? 1, 0, or -errno. Asked over a netlink
 * socket of our own: bpf_tc_hook_create() on an existing clsact fails with
 * EEXIST, and libbpf prints the kernel's "Exclusivity flag on, cannot modify"
 * as a warning although nothing is wrong (every second hook of every
 * endpoint, and every endpoint added again). Not asking for what exists keeps
 * that out of the log.
 */
static int clsact_exists(int ifindex)
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg tc;
	} req = {
		.nh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg)),
			.nlmsg_type = RTM_GETQDISC,
			/* A qdisc found is "notified": only NLM_F_ECHO sends it back to us. */
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ECHO,
			.nlmsg_seq = 1 },
		.tc = { .tcm_family = AF_UNSPEC,
			.tcm_ifindex = ifindex,
			.tcm_parent = TC_H_CLSACT },
	};
	union {
		struct nlmsghdr nh;
		char b[8192];
	} rep;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlmsghdr *nh = &rep.nh;
	struct timeval tv = { .tv_sec = 2 };
	ssize_t n;
	int fd, r = -EPROTO;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	/* The control loop must never wait on the kernel for long. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	do
		n = recv(fd, rep.b, sizeof(rep.b), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	for (; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
		if (nh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(nh);

			if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*e)) || !e->error)
				r = -EPROTO;
			else if (e->error == -ENOENT)
				r = 0; /* no ingress-side qdisc at all */
			else
				r = e->error;
			break;
		}
		if (nh->nlmsg_type == RTM_NEWQDISC &&
		    nh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct tcmsg))) {
			struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(nh) +
							     NLMSG_ALIGN(sizeof(struct tcmsg)));
			int alen = (int)nh->nlmsg_len - NLMSG_LENGTH(sizeof(struct tcmsg));

			/* The ingress queue outlives its qdisc (then "noop"): look at the kind. */
			r = 0;
			for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen))
				if (a->rta_type == TCA_KIND && RTA_PAYLOAD(a) >= sizeof("clsact") &&
				    !memcmp(RTA_DATA(a), "clsact", sizeof("clsact")))
					r = 1;
			break;
		}
	}
out:
	close(fd);
	return r;
}

static int tc_hook_ready(int ifindex, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	int r = clsact_exists(ifindex);

	if (r == 1)
		return 0;
	/* r < 0: we could not tell; creating tells, at the price of a warning if it was there. */
	r = bpf_tc_hook_create(&hook);
	if (r < 0 && r != -EEXIST) {
		snprintf(err, errlen, "cannot create the clsact qdisc on ifindex %d: %s", ifindex,
			 strerror(-r));
		return r;
	}
	return 0;
}

static int tc_attach_one(int ifindex, enum bpf_tc_attach_point where, int prog_fd, char *err,
			 size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int r;

	r = bpf_tc_attach(&hook, &opts);
	if (r < 0)
		snprintf(err, errlen, "cannot attach a TC program (%s) to ifindex %d: %s",
			 where == BPF_TC_INGRESS ? "ingress" : "egress", ifindex, strerror(-r));
	return r;
}

/* The program at ztagent's handle and priority on ifindex's TC hook: *id, 0 for none. */
static int tc_prog_at(int ifindex, enum bpf_tc_attach_point where, uint32_t *id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
	int r;

	libbpf_hushed++;
	r = bpf_tc_query(&hook, &opts);
	libbpf_hushed--;
	*id = r < 0 ? 0 : opts.prog_id;
	return r == -ENODEV ? r : 0;
}

/*
 * Takes tc_guard (and nothing else) off ifindex's TC ingress; 0 when it was
 * not there. An uplink the configuration moved from TC to XDP would
 * otherwise run the guard twice.
 */
static int tc_guard_remove(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
	char name[64] = "";
	uint32_t id;
	int r;

	if (tc_prog_at(ifindex, BPF_TC_INGRESS, &id) < 0 || !id)
		return 0;
	if (prog_name_by_id(id, name, sizeof(name)) < 0 || strcmp(name, TC_GUARD_NAME) != 0)
		return 0;
	r = bpf_tc_detach(&hook, &opts);
	if (r < 0 && r != -ENOENT) {
		log_warn("tc_guard_detach_failed", "iface=%s prog_id=%u error=\"%s\"", ifname, id,
			 strerror(-r));
		return r;
	}
	log_info("tc_guard_detached", "iface=%s prog_id=%u", ifname, id);
	return 0;
}

/*
 * Takes xdp_guard off ifindex; 0 when it was not there. Another XDP
 * program is left alone with a warning.
 */
static int xdp_guard_remove(int ifindex, const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[64] = "";
	__u32 flags;
	int r;

	if (bpf_xdp_query(ifindex, 0, &q) < 0 || !q.prog_id)
		return 0;
	if (prog_name_by_id(q.prog_id, name, sizeof(name)) < 0 ||
	    strcmp(name, XDP_PROG_NAME) != 0) {
		log_warn("detach_skipped", "iface=%s prog_id=%u name=%s why=\"not ztagent's\"",
			 ifname, q.prog_id, name);
		return 0;
	}
	flags = q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	r = bpf_xdp_detach(ifindex, flags, NULL);
	if (r < 0)
		return r;
	log_info("xdp_detached", "iface=%s prog_id=%u", ifname, q.prog_id);
	return 0;
}

/*
 * The guard on an uplink's TC ingress (xdp.mode tc), replacing ztagent's
 * earlier filter atomically; then, with it in place, xdp_guard is taken
 * off the uplink if an earlier run had attached it there: no gap.
 */
static int attach_tc_guard(struct zt_dp_iface *ifc, int prog_fd, char *err, size_t errlen)
{
	int r = tc_hook_ready(ifc->ifindex, err, errlen);

	if (r == 0)
		r = tc_attach_one(ifc->ifindex, BPF_TC_INGRESS, prog_fd, err, errlen);
	if (r < 0)
		return r;
	ifc->mode = ZT_XDP_TC;
	log_info("guard_attached", "iface=%s hook=tc-ingress", ifc->name);
	r = xdp_guard_remove(ifc->ifindex, ifc->name);
	if (r < 0)
		log_warn("xdp_detach_failed",
			 "iface=%s error=\"%s\" effect=\"the guard runs twice on it (XDP and TC)\"",
			 ifc->name, strerror(-r));
	return 0;
}

_Static_assert(ZT_RL_ALL == 0 && ZT_RL_SYN == 1 && ZT_RL_UDP == 2 && ZT_RL_ICMP == 3 &&
		       ZT_RL_KINDS == ZT_ARRAY_SIZE(((struct zt_config *)0)->ratelimit.src),
	       "config ratelimit.src/dst are indexed by enum zt_rl_kind");

/*
 * The kernel's activity signals at every start: the built-in levels,
 * lowered where the configuration sets a flood rate (detection.flood.* or
 * ratelimit.*) below them, so that a source at that rate is reported
 * within the detector's window (a 5k/s UDP limit against the built-in
 * 2000-datagram signal would wait 400 ms; a 1k/s one would never be seen).
 */
static int apply_signals(struct zt_datapath *dp, const struct zt_config *cfg, char *err,
			 size_t errlen)
{
	struct zt_signal_cfg s;
	uint32_t rate[ZT_RL_KINDS] = { 0 }, eff[ZT_RL_KINDS] = { 0 };
	int r;

	zt_signal_cfg_defaults(&s);
	for (int k = 0; k < ZT_RL_KINDS; k++) {
		bool configured;

		eff[k] = zt_config_flood_rate(cfg, k, &configured);
		rate[k] = configured ? eff[k] : 0;
	}
	zt_signal_cfg_follow_rates(&s, rate, cfg->detection.flood.dst_factor,
				   cfg->detection.flood.window_ns);
	zt_signal_cfg_cover_rates(&s, eff, cfg->detection.flood.dst_factor,
				  cfg->detection.flood.window_ns);
	/* Resets: what a source at detection.flood.out_of_state draws in the window; 0 off. */
	s.src.resets = 0;
	if (cfg->detection.flood.out_of_state) {
		uint64_t n = (uint64_t)cfg->detection.flood.out_of_state *
			     cfg->detection.flood.window_ns / 1000000000ULL;

		s.src.resets = n ? (uint32_t)n : 1;
	}
	r = zt_datapath_set_signals(dp, &s);
	if (r < 0)
		snprintf(err, errlen,
			 "cannot write the activity signals into the guard_cfg map: %s",
			 strerror(-r));
	else
		log_info(
			"activity_signals",
			"src_syn=%u src_halfopen=%u src_udp=%u src_icmp=%u src_pkts=%u src_resets=%u "
			"dst_syn=%u dst_udp=%u dst_icmp=%u dst_pkts=%u",
			s.src.syn, s.src.halfopen, s.src.udp, s.src.icmp, s.src.pkts, s.src.resets,
			s.dst.syn, s.dst.udp, s.dst.icmp, s.dst.pkts);
	return r;
}

/*
 * ratelimit.* into guard_cfg, at every start: a limit the configuration no
 * longer has is lifted, whatever an earlier run left in the pinned map.
 */
static int apply_ratelimits(struct zt_datapath *dp, const struct zt_config *cfg, char *err,
			    size_t errlen)
{
	struct zt_ratelimit_cfg rl = { 0 };
	int r;

	for (int k = 0; k < ZT_RL_KINDS; k++) {
		rl.src[k] = cfg->ratelimit.src[k];
		rl.dst[k] = cfg->ratelimit.dst[k];
	}
	r = zt_datapath_set_ratelimits(dp, &rl);
	if (r < 0)
		snprintf(err, errlen, "cannot write ratelimit.* into the guard_cfg map: %s",
			 strerror(-r));
	else
		log_info(
			"ratelimits",
			"syn=%u udp=%u icmp=%u all=%u dst_syn=%u dst_udp=%u dst_icmp=%u dst_all=%u",
			rl.src[ZT_RL_SYN], rl.src[ZT_RL_UDP], rl.src[ZT_RL_ICMP], rl.src[ZT_RL_ALL],
			rl.dst[ZT_RL_SYN], rl.dst[ZT_RL_UDP], rl.dst[ZT_RL_ICMP],
			rl.dst[ZT_RL_ALL]);
	return r;
}

/*
 * The node's own TCP sessions (bpf/host_session.bpf.c), for brute force
 * against its services: on the pinned events, guard_cfg and act_rate maps,
 * for the sockets of this network namespace. Optional: where the kernel
 * lacks what it needs (the raw tracepoint, BTF for its CO-RE reads), only
 * endpoints' sessions are seen, and the log says so.
 */
static void load_host_sessions(struct zt_datapath *dp, const struct zt_config *cfg,
			       const struct bpf_object_open_opts *oo)
{
	unsigned int reused = 0;
	struct stat st;
	int r;

	dp->hs = host_session__open_opts(oo);
	if (!dp->hs) {
		r = errno ? -errno : -EINVAL;
		goto off;
	}
	bpf_map__set_max_entries(dp->hs->maps.events, cfg->xdp.ringbuf_bytes);
	adopt_pinned_sizes(dp->hs->obj, cfg->bpffs, &reused);
	if (stat("/proc/self/ns/net", &st) < 0) {
		r = -errno;
		goto off;
	}
	dp->hs->rodata->cfg_netns = (__u32)st.st_ino;
	r = host_session__load(dp->hs);
	if (r < 0)
		goto off;
	dp->hs_link = bpf_program__attach(dp->hs->progs.host_session);
	if (!dp->hs_link) {
		r = errno ? -errno : -EINVAL;
		goto off;
	}
	log_info("host_sessions_on", "netns=%u", (unsigned int)st.st_ino);
	return;
off:
	log_warn(
		"host_sessions_off",
		"error=\"%s\" effect=\"brute force against the node's own services (host network) is not seen; endpoints' sessions are\"",
		strerror(-r));
	host_session__destroy(dp->hs);
	dp->hs = NULL;
}

/* The guard's configured map sizes, in xdp_guard's object or tc_guard's. */
static void guard_sizes(struct bpf_object *obj, const struct zt_config *cfg)
{
	static const struct {
		const char *name;
		size_t off; /* of the uint32_t size in struct zt_config */
	} sizes[] = {
		{ "blocklist_v4", offsetof(struct zt_config, xdp.blocklist_max) },
		{ "blocklist_v6", offsetof(struct zt_config, xdp.blocklist_max) },
		{ "blocklist_lpm_v4", offsetof(struct zt_config, xdp.blocklist_max) },
		{ "blocklist_lpm_v6", offsetof(struct zt_config, xdp.blocklist_max) },
		{ "allowlist_v4", offsetof(struct zt_config, xdp.allowlist_max) },
		{ "allowlist_v6", offsetof(struct zt_config, xdp.allowlist_max) },
		{ "events", offsetof(struct zt_config, xdp.ringbuf_bytes) },
	};

	for (size_t i = 0; i < ZT_ARRAY_SIZE(sizes); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, sizes[i].name);
		uint32_t v;

		memcpy(&v, (const char *)cfg + sizes[i].off, sizeof(v));
		if (m)
			bpf_map__set_max_entries(m, v);
	}
	bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, "block_notes"), 65536);
}

/*
 * tc_guard, for the uplinks whose guard runs on TC ingress: the same maps
 * as xdp_guard's, through their pins (loaded first), the same settings.
 */
static int load_tc_guard(struct zt_datapath *dp, const struct zt_config *cfg,
			 const struct bpf_object_open_opts *oo, char *err, size_t errlen)
{
	unsigned int reused = 0;
	int r;

	dp->tcg = tc_guard__open_opts(oo);
	if (!dp->tcg) {
		r = -errno;
		snprintf(err, errlen, "cannot open the TC guard object: %s", strerror(-r));
		return r;
	}
	dp->tcg->rodata->cfg_malformed_drop = cfg->xdp.malformed_drop;
	dp->tcg->rodata->cfg_event_sample = cfg->xdp.event_sample;
	dp->tcg->rodata->cfg_event_rate = cfg->xdp.event_rate;
	guard_sizes(dp->tcg->obj, cfg);
	adopt_pinned_sizes(dp->tcg->obj, cfg->bpffs, &reused);
	r = tc_guard__load(dp->tcg);
	if (r < 0)
		snprintf(
			err, errlen,
			"cannot load the TC guard program: %s (pinned maps under %s from an incompatible version? 'ztagent --detach' removes them)",
			strerror(-r), cfg->bpffs);
	return r;
}

bool zt_datapath_xdp_features(struct xdp_guard *skel, bool frags)
{
	/* Captures copy with bpf_xdp_load_bytes where it exists (5.18+); else byte by byte. */
	skel->rodata->cfg_xdp_load_bytes =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_xdp_load_bytes, NULL) == 1;
	/*
	 * Multi-buffer frames where the kernel has them (5.18+): the guard then
	 * attaches to a jumbo-MTU multi-buffer driver too, and generic XDP (a
	 * veth uplink) copies a paged skb into pages rather than linearizing
	 * it (lab iperf3 through an empty program: 0.83x -> 0.89x of none).
	 */
	skel->rodata->cfg_xdp_frags =
		frags &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_xdp_get_buff_len, NULL) == 1;
	if (skel->rodata->cfg_xdp_frags)
		bpf_program__set_flags(skel->progs.xdp_guard,
				       bpf_program__flags(skel->progs.xdp_guard) |
					       BPF_F_XDP_HAS_FRAGS);
	return skel->rodata->cfg_xdp_frags;
}

int zt_datapath_init(struct zt_datapath **out, const struct zt_config *cfg, char *err,
		     size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct zt_datapath *dp;
	struct xdp_guard *skel;
	int prog_fd, r;
	unsigned int i;
	uint32_t hz = 0;

	libbpf_set_print(libbpf_quiet);
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	snprintf(dp->bpffs, sizeof(dp->bpffs), "%s", cfg->bpffs);
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus <= 0) {
		r = dp->ncpus ? dp->ncpus : -EINVAL;
		snprintf(err, errlen, "cannot count possible CPUs: %s", strerror(-r));
		goto fail;
	}
	r = ensure_bpffs(cfg->bpffs, err, errlen);
	if (r < 0)
		goto fail;

	oo.pin_root_path = cfg->bpffs;
	skel = xdp_guard__open_opts(&oo);
	if (!skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the XDP object: %s", strerror(-r));
		goto fail;
	}
	dp->xdp = skel;
	skel->rodata->cfg_malformed_drop = cfg->xdp.malformed_drop;
	skel->rodata->cfg_event_sample = cfg->xdp.event_sample;
	skel->rodata->cfg_event_rate = cfg->xdp.event_rate;
	zt_datapath_xdp_features(skel, true);
	guard_sizes(skel->obj, cfg);
	adopt_pinned_sizes(skel->obj, cfg->bpffs, &dp->n_reused);

	r = xdp_guard__load(skel);
	if (r < 0) {
		snprintf(
			err, errlen,
			"cannot load the XDP program: %s (pinned maps under %s from an incompatible version? 'ztagent --detach' removes them)",
			strerror(-r), cfg->bpffs);
		goto fail;
	}

	r = zt_datapath_kernel_hz(dp, &hz);
	if (r < 0) {
		/* The sketches' window and bucket units are off by that much, nothing worse. */
		log_warn(
			"kernel_hz_unknown",
			"error=\"%s\" assumed=250 hint=\"windows and destination limits are in jiffies; they scale with the real HZ\"",
			strerror(-r));
		hz = 250;
	}
	r = zt_guard_cfg_init(bpf_map__fd(skel->maps.guard_cfg), hz);
	if (r < 0) {
		snprintf(err, errlen, "cannot initialise guard_cfg: %s", strerror(-r));
		goto fail;
	}
	r = apply_ratelimits(dp, cfg, err, errlen);
	if (r == 0)
		r = apply_signals(dp, cfg, err, errlen);
	if (r < 0)
		goto fail;

	/* The TC object shares "events" and "event_stats" with the XDP one through their pins. */
	dp->tc = tc_endpoint__open_opts(&oo);
	if (!dp->tc) {
		r = -errno;
		snprintf(err, errlen, "cannot open the TC object: %s", strerror(-r));
		goto fail;
	}
	bpf_map__set_max_entries(dp->tc->maps.events, cfg->xdp.ringbuf_bytes);
	bpf_map__set_max_entries(dp->tc->maps.conntrack, cfg->policy.conntrack_max);
	/* Destination IOCs: as many as the blocklist holds (entries are allocated as they come). */
	bpf_map__set_max_entries(dp->tc->maps.ioc_host_v4, cfg->xdp.blocklist_max);
	bpf_map__set_max_entries(dp->tc->maps.ioc_host_v6, cfg->xdp.blocklist_max);
	bpf_map__set_max_entries(dp->tc->maps.ioc_lpm_v4, cfg->xdp.blocklist_max);
	bpf_map__set_max_entries(dp->tc->maps.ioc_lpm_v6, cfg->xdp.blocklist_max);
	/* The guard's lists, which tc_endpoint applies to the endpoints' flows too. */
	guard_sizes(dp->tc->obj, cfg);
	adopt_pinned_sizes(dp->tc->obj, cfg->bpffs, &dp->n_reused);
	r = tc_endpoint__load(dp->tc);
	if (r < 0) {
		snprintf(
			err, errlen,
			"cannot load the TC program: %s (pinned maps under %s from an incompatible version? 'ztagent --detach' removes them)",
			strerror(-r), cfg->bpffs);
		goto fail;
	}
	dp->up = tc_uplink__open_opts(&oo);
	if (!dp->up) {
		r = -errno;
		snprintf(err, errlen, "cannot open the uplink TC object: %s", strerror(-r));
		goto fail;
	}
	bpf_map__set_max_entries(dp->up->maps.events, cfg->xdp.ringbuf_bytes);
	adopt_pinned_sizes(dp->up->obj, cfg->bpffs, &dp->n_reused);
	r = tc_uplink__load(dp->up);
	if (r < 0) {
		snprintf(
			err, errlen,
			"cannot load the uplink TC program: %s (pinned maps under %s from an incompatible version? 'ztagent --detach' removes them)",
			strerror(-r), cfg->bpffs);
		goto fail;
	}
	load_host_sessions(dp, cfg, &oo);
	log_info("datapath_loaded",
		 "bpffs=%s maps_reused=%u cpus=%d hz=%u xdp_load_bytes=%u xdp_frags=%u", cfg->bpffs,
		 dp->n_reused, dp->ncpus, hz, skel->rodata->cfg_xdp_load_bytes,
		 skel->rodata->cfg_xdp_frags);

	/* Where each uplink's guard runs: xdp.mode, auto resolved per device. */
	for (i = 0; i < cfg->xdp.n_interfaces; i++) {
		struct zt_dp_iface *ifc = &dp->ifaces[i];

		snprintf(ifc->name, sizeof(ifc->name), "%s", cfg->xdp.interfaces[i]);
		ifc->ifindex = if_nametoindex(ifc->name);
		if (!ifc->ifindex) {
			r = -ENODEV;
			snprintf(
				err, errlen,
				"xdp.interfaces: no interface named '%s' in this network namespace",
				ifc->name);
			goto fail;
		}
		ifc->mode = cfg->xdp.mode;
		if (ifc->mode == ZT_XDP_AUTO) {
			char why[96];

			ifc->mode = auto_mode(ifc->name, why, sizeof(why));
			log_info("xdp_mode_auto", "iface=%s mode=%s reason=\"%s\"", ifc->name,
				 zt_xdp_mode_name(ifc->mode), why);
		}
		if (ifc->mode == ZT_XDP_TC && !dp->tcg) {
			r = load_tc_guard(dp, cfg, &oo, err, errlen);
			if (r < 0)
				goto fail;
		}
	}
	prog_fd = bpf_program__fd(skel->progs.xdp_guard);
	for (i = 0; i < cfg->xdp.n_interfaces; i++) {
		struct zt_dp_iface *ifc = &dp->ifaces[i];

		if (ifc->mode == ZT_XDP_TC) {
			r = attach_tc_guard(ifc, bpf_program__fd(dp->tcg->progs.tc_guard), err,
					    errlen);
		} else {
			r = attach_one(ifc, prog_fd, ifc->mode, err, errlen);
			if (r == 0)
				tc_guard_remove(ifc->ifindex, ifc->name);
		}
		if (r < 0)
			goto fail;
		dp->n_ifaces = i + 1;
		/* The node's answers leaving the uplink: probe outcomes, captures. */
		r = zt_datapath_uplink_egress_repair(dp, i, err, errlen);
		if (r < 0)
			goto fail;
	}
	for (i = 0; i < dp->n_ifaces; i++)
		zt_datapath_guard_on(dp, i, &dp->ifaces[i].prog_id);
	*out = dp;
	return 0;
fail:
	/*
	 * Interfaces attached before the failure keep the new program: it
	 * enforces the same pinned state, and detaching would open a gap.
	 */
	zt_datapath_stop(dp);
	return r;
}

void zt_datapath_stop(struct zt_datapath *dp)
{
	if (!dp)
		return;
	bpf_link__destroy(dp->hs_link);
	host_session__destroy(dp->hs);
	tc_uplink__destroy(dp->up);
	tc_endpoint__destroy(dp->tc);
	tc_guard__destroy(dp->tcg);
	xdp_guard__destroy(dp->xdp);
	free(dp);
}

int zt_datapath_tc_attach(const struct zt_datapath *dp, int ifindex, char *err, size_t errlen)
{
	int r;

	r = tc_hook_ready(ifindex, err, errlen);
	if (r == 0)
		r = tc_attach_one(ifindex, BPF_TC_INGRESS,
				  bpf_program__fd(dp->tc->progs.tc_from_pod), err, errlen);
	if (r == 0)
		r = tc_attach_one(ifindex, BPF_TC_EGRESS, bpf_program__fd(dp->tc->progs.tc_to_pod),
				  err, errlen);
	return r;
}

int zt_datapath_tc_owned(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	int r, fd;

	r = clsact_exists(ifindex);
	if (r <= 0)
		return r == -ENODEV ? 0 : r;
	/* No filter of ours is an answer, not a problem: no warning for it. */
	libbpf_hushed++;
	r = bpf_tc_query(&hook, &opts);
	libbpf_hushed--;
	if (r == -ENOENT || r == -EINVAL || r == -ENODEV)
		return 0;
	if (r < 0)
		return r;
	fd = bpf_prog_get_fd_by_id(opts.prog_id);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (r < 0)
		return -errno;
	return strcmp(info.name, "tc_from_pod") == 0;
}

int zt_datapath_tc_detach(int ifindex, char *err, size_t errlen)
{
	static const enum bpf_tc_attach_point points[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	int ret = 0;

	for (size_t i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = points[i]);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
		int r;

		libbpf_hushed++;
		r = bpf_tc_detach(&hook, &opts);
		libbpf_hushed--;
		/* Gone already (interface, qdisc or filter): nothing to do. */
		if (r < 0 && r != -ENOENT && r != -ENODEV && r != -EINVAL) {
			snprintf(err, errlen, "cannot detach tc_endpoint from ifindex %d: %s",
				 ifindex, strerror(-r));
			ret = r;
		}
	}
	return ret;
}

static int remove_pins(const char *dir, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		snprintf(err, errlen, "cannot open %s: %s", dir, strerror(-r));
		return r;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			snprintf(err, errlen, "cannot remove pin %s/%s: %s", dir, de->d_name,
				 strerror(-r));
		}
	}
	closedir(d);
	if (r == 0 && rmdir(dir) < 0 && errno != ENOENT && errno != EBUSY) {
		r = -errno;
		snprintf(err, errlen, "cannot remove %s: %s", dir, strerror(-r));
	}
	return r;
}

int zt_datapath_detach(const struct zt_config *cfg, char *err, size_t errlen)
{
	unsigned int i;
	int r, ret = 0;

	for (i = 0; i < cfg->xdp.n_interfaces; i++) {
		const char *ifname = cfg->xdp.interfaces[i];
		int ifindex = if_nametoindex(ifname);

		if (!ifindex) {
			log_warn("detach_skipped", "iface=%s why=\"no such interface\"", ifname);
			continue;
		}
		{
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
				    .attach_point = BPF_TC_EGRESS);
			LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE,
				    .priority = ZT_TC_PRIORITY);

			/* Only ztagent's filter goes (by handle and priority); gone is fine. */
			r = bpf_tc_detach(&hook, &opts);
			if (r < 0 && r != -ENOENT && r != -ENODEV && r != -EINVAL)
				log_warn("tc_uplink_detach_failed", "iface=%s error=\"%s\"", ifname,
					 strerror(-r));
		}
		tc_guard_remove(ifindex, ifname);
		r = xdp_guard_remove(ifindex, ifname);
		if (r < 0) {
			snprintf(err, errlen, "cannot detach XDP from %s: %s", ifname,
				 strerror(-r));
			ret = r;
		}
	}
	if (ret < 0)
		return ret;
	r = remove_pins(cfg->bpffs, err, errlen);
	if (r == 0)
		log_info("pins_removed", "bpffs=%s", cfg->bpffs);
	return r;
}

size_t zt_datapath_maps(const struct zt_datapath *dp, struct zt_dp_map *out, size_t max)
{
	struct bpf_map *map;
	size_t n = 0;

	bpf_object__for_each_map (map, dp->xdp->obj) {
		if (bpf_map__is_internal(map))
			continue;
		if (n < max) {
			out[n].name = bpf_map__name(map);
			out[n].fd = bpf_map__fd(map);
		}
		n++;
	}
	/* The TC objects' own maps (the shared ones are listed once, above). */
	for (int o = 0; o < 2; o++) {
		struct bpf_object *obj = o ? dp->up->obj : dp->tc->obj;

		bpf_object__for_each_map (map, obj) {
			const char *name = bpf_map__name(map);

			if (bpf_map__is_internal(map) || !bpf_map__pin_path(map) ||
			    bpf_object__find_map_by_name(dp->xdp->obj, name) ||
			    (o && bpf_object__find_map_by_name(dp->tc->obj, name)))
				continue;
			if (n < max) {
				out[n].name = name;
				out[n].fd = bpf_map__fd(map);
			}
			n++;
		}
	}
	return n;
}

int zt_datapath_map_count(int fd, uint32_t key_size, uint64_t *count)
{
	uint8_t a[64], b[64];
	void *prev = NULL, *next = a;
	uint64_t n = 0;

	if (key_size > sizeof(a))
		return -E2BIG;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		n++;
		prev = next;
		next = next == a ? b : a;
	}
	if (errno != ENOENT)
		return -errno;
	*count = n;
	return 0;
}

int zt_percpu_sum(int fd, uint32_t slots, size_t value_size, int ncpus, uint64_t *out)
{
	size_t stride = (value_size + 7) & ~(size_t)7;
	size_t words = value_size / sizeof(uint64_t);
	uint8_t *buf;
	uint32_t k;
	int c;

	buf = calloc(ncpus, stride);
	if (!buf)
		return -ENOMEM;
	for (k = 0; k < slots; k++) {
		if (bpf_map_lookup_elem(fd, &k, buf) < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		for (size_t w = 0; w < words; w++) {
			uint64_t sum = 0;

			for (c = 0; c < ncpus; c++) {
				uint64_t v;

				memcpy(&v, buf + (size_t)c * stride + w * sizeof(v), sizeof(v));
				sum += v;
			}
			out[(size_t)k * words + w] = sum;
		}
	}
	free(buf);
	return 0;
}

int zt_datapath_xdp_stats(const struct zt_datapath *dp, struct zt_counter *out)
{
	uint64_t raw[ZT_XDP_STATS_SLOTS * 2];
	int r;

	r = zt_percpu_sum(bpf_map__fd(dp->xdp->maps.xdp_stats), ZT_XDP_STATS_SLOTS,
			  sizeof(struct zt_counter), dp->ncpus, raw);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < ZT_XDP_STATS_SLOTS; i++) {
		out[i].packets = raw[2 * i];
		out[i].bytes = raw[2 * i + 1];
	}
	return 0;
}

int zt_datapath_tc_stats(const struct zt_datapath *dp, struct zt_counter *out)
{
	uint64_t raw[ZT_TCS_MAX * 2];
	int r;

	r = zt_percpu_sum(bpf_map__fd(dp->tc->maps.tc_stats), ZT_TCS_MAX, sizeof(struct zt_counter),
			  dp->ncpus, raw);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < ZT_TCS_MAX; i++) {
		out[i].packets = raw[2 * i];
		out[i].bytes = raw[2 * i + 1];
	}
	return 0;
}

const char *zt_tc_stat_name(unsigned int i)
{
	static const char *const names[] = {
		[ZT_TCS_ALLOW_NEW] = "allowed-new",
		[ZT_TCS_ALLOW_EST] = "allowed-established",
		[ZT_TCS_AUDIT] = "audit",
		[ZT_TCS_DENY_NEW] = "denied-new",
		[ZT_TCS_DENY_EST] = "denied-established",
		[ZT_TCS_NOT_IP] = "not-ip",
		[ZT_TCS_MALFORMED] = "malformed",
		[ZT_TCS_NO_ENDPOINT] = "no-endpoint",
		[ZT_TCS_BLOCKED] = "blocked",
	};
	return i < ZT_ARRAY_SIZE(names) && names[i] ? names[i] : "unknown";
}

const char *zt_tc_reason_name(unsigned int reason)
{
	static const char *const names[ZT_REASON_MAX] = {
		[ZT_REASON_NOT_ISOLATED] = "not-isolated", [ZT_REASON_RULE_ALLOW] = "rule-allow",
		[ZT_REASON_RULE_DENY] = "rule-deny",	   [ZT_REASON_NO_RULE] = "no-rule",
		[ZT_REASON_DEFAULT_DENY] = "default-deny", [ZT_REASON_NO_ENDPOINT] = "no-endpoint",
		[ZT_REASON_NO_POLICY] = "no-policy",	   [ZT_REASON_IOC] = "ioc",
		[ZT_REASON_TLS] = "tls-not-1.3",	   [ZT_REASON_BLOCKED] = "blocked",
	};
	return reason < ZT_REASON_MAX && names[reason] ? names[reason] : "unknown";
}

int zt_datapath_event_stats(const struct zt_datapath *dp, uint64_t *out)
{
	return zt_percpu_sum(bpf_map__fd(dp->xdp->maps.event_stats), ZT_EVS_MAX, sizeof(uint64_t),
			     dp->ncpus, out);
}

int zt_datapath_ep_stats(const struct zt_datapath *dp, uint32_t ep_id, struct zt_ep_stats *out)
{
	__u32 slot = ep_id & (ZT_EP_STATS_SLOTS - 1);
	struct zt_ep_stats *v;
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->ep_id = ep_id;
	v = calloc(dp->ncpus, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(dp->tc->maps.ep_stats), &slot, v)) {
		r = -errno;
		goto out;
	}
	for (int c = 0; c < dp->ncpus; c++) {
		if (v[c].ep_id != ep_id)
			continue;
		for (int d = 0; d < ZT_DIR_MAX; d++) {
			out->new_flows[d] += v[c].new_flows[d];
			out->denied[d] += v[c].denied[d];
			out->packets[d] += v[c].packets[d];
			out->bytes[d] += v[c].bytes[d];
		}
	}
out:
	free(v);
	return r;
}

/* ---- drift (src/agent/daemon_drift.c) ---- */

static uint32_t prog_id_of(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) < 0 ? 0 : info.id;
}

uint32_t zt_datapath_xdp_prog_id(const struct zt_datapath *dp)
{
	return prog_id_of(bpf_program__fd(dp->xdp->progs.xdp_guard));
}

uint32_t zt_datapath_tc_guard_prog_id(const struct zt_datapath *dp)
{
	return dp->tcg ? prog_id_of(bpf_program__fd(dp->tcg->progs.tc_guard)) : 0;
}

static int xdp_repair(struct zt_datapath *dp, struct zt_dp_iface *ifc, uint32_t *found, char *err,
		      size_t errlen);

int zt_datapath_uplink_egress_on(const struct zt_datapath *dp, unsigned int i, uint32_t *found)
{
	int r = tc_prog_at(dp->ifaces[i].ifindex, BPF_TC_EGRESS, found);

	if (r < 0)
		return r;
	return *found == prog_id_of(bpf_program__fd(dp->up->progs.tc_uplink));
}

int zt_datapath_uplink_egress_repair(struct zt_datapath *dp, unsigned int i, char *err,
				     size_t errlen)
{
	int r = tc_hook_ready(dp->ifaces[i].ifindex, err, errlen);

	if (r == 0)
		r = tc_attach_one(dp->ifaces[i].ifindex, BPF_TC_EGRESS,
				  bpf_program__fd(dp->up->progs.tc_uplink), err, errlen);
	return r;
}

int zt_datapath_guard_on(const struct zt_datapath *dp, unsigned int i, uint32_t *found)
{
	const struct zt_dp_iface *ifc = &dp->ifaces[i];
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int r;

	*found = 0;
	if (ifc->mode == ZT_XDP_TC) {
		r = tc_prog_at(ifc->ifindex, BPF_TC_INGRESS, found);
		if (r < 0)
			return r;
		return dp->tcg && *found == zt_datapath_tc_guard_prog_id(dp);
	}
	r = bpf_xdp_query(ifc->ifindex, 0, &q);
	if (r < 0)
		return r;
	*found = q.prog_id;
	return *found == zt_datapath_xdp_prog_id(dp);
}

int zt_datapath_xdp_repair(struct zt_datapath *dp, unsigned int i, uint32_t *found, char *err,
			   size_t errlen)
{
	struct zt_dp_iface *ifc = &dp->ifaces[i];

	if (ifc->mode == ZT_XDP_TC) {
		int r = zt_datapath_guard_on(dp, i, found);

		if (r != 0)
			return r < 0 ? r : 0;
		/* Gone (or another filter in our place): back, with the clsact if it went too. */
		r = attach_tc_guard(ifc, bpf_program__fd(dp->tcg->progs.tc_guard), err, errlen);
		if (r < 0)
			return r;
		zt_datapath_guard_on(dp, i, &ifc->prog_id);
		return 1;
	}
	return xdp_repair(dp, ifc, found, err, errlen);
}

static int xdp_repair(struct zt_datapath *dp, struct zt_dp_iface *ifc, uint32_t *found, char *err,
		      size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, a);
	int prog_fd = bpf_program__fd(dp->xdp->progs.xdp_guard);
	uint32_t ours = prog_id_of(prog_fd);
	__u32 flags = ifc->mode == ZT_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	int r, old_fd = -1;

	r = bpf_xdp_query(ifc->ifindex, 0, &q);
	if (r < 0) {
		snprintf(err, errlen, "cannot query XDP on %s: %s", ifc->name, strerror(-r));
		return r;
	}
	*found = q.prog_id;
	if (q.prog_id == ours)
		return 0;
	if (q.prog_id) {
		/* Someone else's program in our place: replace it, in the mode it runs in. */
		old_fd = bpf_prog_get_fd_by_id(q.prog_id);
		if (old_fd >= 0) {
			a.old_prog_fd = old_fd;
			flags = XDP_FLAGS_REPLACE |
				(q.attach_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE :
								     XDP_FLAGS_DRV_MODE);
		}
	}
	r = bpf_xdp_attach(ifc->ifindex, prog_fd, flags, old_fd >= 0 ? &a : NULL);
	if (old_fd >= 0)
		close(old_fd);
	if (r < 0 && !q.prog_id && ifc->mode == ZT_XDP_NATIVE)
		r = bpf_xdp_attach(ifc->ifindex, prog_fd, XDP_FLAGS_SKB_MODE, NULL);
	if (r < 0) {
		snprintf(err, errlen, "cannot attach XDP to %s again: %s", ifc->name, strerror(-r));
		return r;
	}
	ifc->prog_id = ours;
	return 1;
}

int zt_datapath_tc_check(const struct zt_datapath *dp, int ifindex, uint32_t found[2])
{
	static const enum bpf_tc_attach_point points[] = { BPF_TC_INGRESS, BPF_TC_EGRESS };
	uint32_t want[2] = { prog_id_of(bpf_program__fd(dp->tc->progs.tc_from_pod)),
			     prog_id_of(bpf_program__fd(dp->tc->progs.tc_to_pod)) };
	int ok = 1;

	for (size_t i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = points[i]);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
		int r;

		libbpf_hushed++;
		r = bpf_tc_query(&hook, &opts);
		libbpf_hushed--;
		if (r == -ENODEV)
			return -ENODEV;
		found[i] = r < 0 ? 0 : opts.prog_id;
		if (found[i] != want[i])
			ok = 0;
	}
	return ok;
}
