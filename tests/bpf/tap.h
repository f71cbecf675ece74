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

#include <arpa/inet.h>
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
 * An Ethernet + IPv4 + UDP frame of len bytes (len <= 65535 + ETH_HLEN),
 * zero payload, the IPv4 header's checksum set, the UDP one left 0.
 */
static inline void tap_udp4_frame(uint8_t *b, size_t len, const char *src, const char *dst,
				  uint16_t sport, uint16_t dport)
{
	uint16_t ip_len = (uint16_t)(len - ETH_HLEN), udp_len = (uint16_t)(ip_len - 20);
	uint32_t sum = 0;

	memset(b, 0, len);
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	b[12] = ETH_P_IP >> 8;
	b[13] = ETH_P_IP & 0xff;
	b[14] = 0x45;
	b[16] = ip_len >> 8;
	b[17] = ip_len & 0xff;
	b[22] = 64;
	b[23] = IPPROTO_UDP;
	inet_pton(AF_INET, src, b + 26);
	inet_pton(AF_INET, dst, b + 30);
	for (int i = 14; i < 34; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	b[24] = (uint8_t)(~sum >> 8);
	b[25] = (uint8_t)~sum;
	b[34] = sport >> 8;
	b[35] = sport & 0xff;
	b[36] = dport >> 8;
	b[37] = dport & 0xff;
	b[38] = udp_len >> 8;
	b[39] = udp_len & 0xff;
}

#endif /* ZT_TEST_TAP_H */
