/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ztagent-cni: links as the kernel has them (rtnetlink), in the plugin's
 * own network namespace (the host's, where the runtime runs plugins) or
 * inside the container's (CNI_NETNS, entered by a forked child so that the
 * plugin itself never changes namespace).
 */
#ifndef ZT_CNI_NETNS_H
#define ZT_CNI_NETNS_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

struct zt_cni_link {
	int ifindex;
	char name[IF_NAMESIZE];
	char kind[32]; /* IFLA_INFO_KIND: "veth", "bridge", ...; "" when none */
	int link; /* IFLA_LINK: a veth's peer ifindex (in the peer's namespace); 0 none */
	bool link_netns; /* IFLA_LINK_NETNSID present: the peer is in another namespace */
};

/*
 * The link named name (ifindex 0) or with ifindex, in the current network
 * namespace. 0, -ENODEV (no such link), or -errno.
 */
int zt_cni_link_get(const char *name, int ifindex, struct zt_cni_link *out);

/*
 * The link ifname inside the network namespace at netns_path (CNI_NETNS),
 * read by a child process that enters it. 0; -ENOENT (no namespace there:
 * the container is gone), -ENODEV (no such interface in it), or -errno;
 * err says which.
 */
int zt_cni_link_in_netns(const char *netns_path, const char *ifname, struct zt_cni_link *out,
			 char *err, size_t errlen);

#endif
