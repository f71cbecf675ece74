// SPDX-License-Identifier: GPL-2.0-only
/* ztagent-cni: links by rtnetlink, here or inside the container's namespace (netns.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/util.h"
#include "cni/netns.h"

#define CHILD_TIMEOUT_MS 5000

static void parse_linkinfo(struct rtattr *li, int len, struct zt_cni_link *out)
{
	for (struct rtattr *a = RTA_DATA(li); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_INFO_KIND) {
			size_t n = RTA_PAYLOAD(a);

			if (n >= sizeof(out->kind))
				n = sizeof(out->kind) - 1;
			memcpy(out->kind, RTA_DATA(a), n);
			out->kind[n] = '\0';
			out->kind[strnlen(out->kind, n)] = '\0';
		}
}

int zt_cni_link_get(const char *name, int ifindex, struct zt_cni_link *out)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
		char attrs[64];
	} req = { 0 };
	char buf[16384] __attribute__((aligned(4)));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 2 };
	int fd, r = -EIO;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi));
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = ifindex;
	if (!ifindex) {
		struct rtattr *a = (struct rtattr *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
		size_t nl = strlen(name) + 1;

		if (nl > IF_NAMESIZE)
			return -ENODEV;
		a->rta_type = IFLA_IFNAME;
		a->rta_len = (unsigned short)RTA_LENGTH(nl);
		memcpy(RTA_DATA(a), name, nl);
		req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		struct ifinfomsg *ifi;
		int alen;

		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			r = e->error ? (e->error == -ENODEV ? -ENODEV : e->error) : -EIO;
			goto out;
		}
		if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
			continue;
		ifi = NLMSG_DATA(h);
		out->ifindex = ifi->ifi_index;
		alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifi)));
		for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
			size_t pl = RTA_PAYLOAD(a);

			if (a->rta_type == IFLA_IFNAME && pl) {
				if (pl > sizeof(out->name))
					pl = sizeof(out->name);
				memcpy(out->name, RTA_DATA(a), pl);
				out->name[pl - 1] = '\0';
			} else if (a->rta_type == IFLA_LINK && pl >= 4) {
				out->link = (int)*(uint32_t *)RTA_DATA(a);
			} else if (a->rta_type == IFLA_LINK_NETNSID) {
				out->link_netns = true;
			} else if (a->rta_type == IFLA_LINKINFO) {
				parse_linkinfo(a, (int)pl, out);
			}
		}
		r = 0;
		goto out;
	}
out:
	close(fd);
	return r;
}

/* What the child sends back: its result and the link. */
struct child_msg {
	int r;
	struct zt_cni_link link;
};

static int child(int nsfd, const char *ifname, int wfd)
{
	struct child_msg m = { 0 };

	if (setns(nsfd, CLONE_NEWNET) < 0)
		m.r = -errno;
	else
		m.r = zt_cni_link_get(ifname, 0, &m.link);
	return write(wfd, &m, sizeof(m)) == (ssize_t)sizeof(m) ? 0 : 1;
}

int zt_cni_link_in_netns(const char *netns_path, const char *ifname, struct zt_cni_link *out,
			 char *err, size_t errlen)
{
	struct child_msg m = { .r = -EIO };
	int nsfd, p[2], status, r;
	struct timespec t0, t;
	pid_t pid;
	ssize_t got = 0;

	nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		r = -errno;
		zt_seterr(err, errlen, "CNI_NETNS %s: %s", netns_path, strerror(errno));
		return r == -ENOENT ? -ENOENT : r;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = -errno;
		close(nsfd);
		zt_seterr(err, errlen, "pipe: %s", strerror(-r));
		return r;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		zt_seterr(err, errlen, "fork: %s", strerror(-r));
		goto out;
	}
	if (pid == 0) {
		close(p[0]);
		_exit(child(nsfd, ifname, p[1]));
	}
	close(p[1]);
	p[1] = -1;
	/* The child's answer is one small write; a stuck child is killed, not waited for. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		fd_set rs;
		struct timeval tv = { .tv_usec = 50000 };
		ssize_t n;

		FD_ZERO(&rs);
		FD_SET(p[0], &rs);
		if (select(p[0] + 1, &rs, NULL, NULL, &tv) > 0) {
			n = read(p[0], (char *)&m + got, sizeof(m) - (size_t)got);
			if (n > 0)
				got += n;
			if (n <= 0 || got == (ssize_t)sizeof(m))
				break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
		    CHILD_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			break;
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != (ssize_t)sizeof(m)) {
		r = -EIO;
		zt_seterr(err, errlen, "no answer from the child that entered %s", netns_path);
		goto out;
	}
	r = m.r;
	if (r == -ENODEV)
		zt_seterr(err, errlen, "no interface %s in %s", ifname, netns_path);
	else if (r < 0)
		zt_seterr(err, errlen, "reading %s in %s: %s", ifname, netns_path, strerror(-r));
	else
		*out = m.link;
out:
	close(nsfd);
	close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	return r;
}
