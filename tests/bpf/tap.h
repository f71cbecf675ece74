/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A tap device for TC programs that BPF_PROG_TEST_RUN cannot reach: its
 * skb is always linear, while a frame written to a tap with a virtio-net
 * header whose hdr_len is ETH_HLEN arrives with only the Ethernet header
 * in the linear part and the rest in pages (tun allocates it that way for
 * a frame longer than a page). Used inside a network namespace of the
 * test's own: nothing leaves it.
 */
#ifndef ZT_TEST_TAP_H
#define ZT_TEST_TAP_H

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/in.h>
#include <linux/virtio_net.h>

#include "pktgen.h"

/* Long enough that tun puts all but hdr_len bytes in pages. */
#define TAP_NONLINEAR_LEN 5000

/* Opens tap `name`, up, in the current namespace; its fd, -errno on failure. */
static inline int tap_open(const char *name, int *ifindex)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR), s, r = 0;

	if (fd < 0)
		return -errno;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0))
		r = -errno;
	if (s >= 0)
		close(s);
	*ifindex = (int)if_nametoindex(name);
	if (r < 0 || !*ifindex) {
		close(fd);
		return r < 0 ? r : -ENODEV;
	}
	return fd;
}

/* prog_fd on ifindex's TC ingress (a clsact made for it); 0 or -errno. */
static inline int tap_tc_ingress(int ifindex, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd);
	int r = bpf_tc_hook_create(&hook);

	if (r < 0 && r != -EEXIST)
		return r;
	return bpf_tc_attach(&hook, &opts);
}

/* Writes frame into the tap with only its Ethernet header linear; 0 or -errno. */
static inline int tap_send_nonlinear(int fd, const uint8_t *frame, size_t len)
{
	struct virtio_net_hdr vh = { .hdr_len = ETH_HLEN, .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	struct iovec iov[2] = { { &vh, sizeof(vh) }, { (void *)frame, len } };
	ssize_t n = writev(fd, iov, 2);

	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(vh) + len ? 0 : -EIO;
}

/*
 * An Ethernet + IPv4 + UDP frame of len bytes, zero payload: pktgen's
 * headers with the IP and UDP lengths stretched to len (as test_xdp_guard's
 * jumbo frame). 0, or -1 when they cannot be built or do not fit.
 */
static inline int tap_udp4_frame(uint8_t *b, size_t len, const char *src, const char *dst,
				 uint16_t sport, uint16_t dport)
{
	struct pg_spec s = { .family = 4,
			     .src = src,
			     .dst = dst,
			     .proto = IPPROTO_UDP,
			     .sport = sport,
			     .dport = dport };
	struct pg_pkt p;

	if (pg_build(&s, &p) < 0 || len < p.len || len > 65535 + ETH_HLEN)
		return -1;
	memset(b, 0, len);
	memcpy(b, p.buf, p.len);
	pg_put16(b + p.off[PG_IP] + 2, (uint16_t)(len - p.off[PG_IP]));
	pg_put16(b + p.off[PG_L4] + 4, (uint16_t)(len - p.off[PG_L4]));
	return 0;
}

#endif /* ZT_TEST_TAP_H */
