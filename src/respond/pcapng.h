/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A pcapng writer (the format of Wireshark and tshark, IETF
 * draft-ietf-opsawg-pcapng), gzip-compressed with zlib: tshark, Wireshark
 * and tcpdump (through its libpcap) read *.pcapng.gz as they are.
 *
 * One section; an Interface Description Block per interface the first
 * time a packet of it is written (link type Ethernet, the interface's
 * name, nanosecond timestamps); an Enhanced Packet Block per packet with
 * its captured and original length and, when given, a comment (the
 * verdict: "drop reason=blocklist" ...) and the direction flag.
 *
 * The file is created with O_EXCL and mode 0600. A flush ends the current
 * gzip member (trailer and all) and the next write starts another: the
 * file is a complete gzip stream after every flush, readable as it is
 * while the capture goes on (readers take concatenated members as one
 * stream). Not thread-safe.
 */
#ifndef ZT_PCAPNG_H
#define ZT_PCAPNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZT_PCAPNG_LINKTYPE_ETHERNET 1
#define ZT_PCAPNG_MAX_IFACES 64

struct zt_pcapng;

/* 0 or -errno (-EEXIST when path exists). snaplen: the most bytes kept of a packet. */
int zt_pcapng_open(const char *path, uint32_t snaplen, const char *comment, struct zt_pcapng **out);
/*
 * One packet: ts in unix nanoseconds, the interface (ifname may be NULL:
 * "if<index>"), inbound (true: received), a comment (NULL: none), the
 * bytes from the Ethernet header on, caplen of them (cut to snaplen) of a
 * packet origlen long. 0 or -errno.
 */
int zt_pcapng_write(struct zt_pcapng *w, uint64_t ts_unix_ns, uint32_t ifindex, const char *ifname,
		    bool inbound, const char *comment, const uint8_t *pkt, uint32_t caplen,
		    uint32_t origlen);
int zt_pcapng_flush(struct zt_pcapng *w);
/* Compressed bytes on disk so far (after the last flush, about). */
uint64_t zt_pcapng_size(const struct zt_pcapng *w);
uint64_t zt_pcapng_packets(const struct zt_pcapng *w);
/* Completes the gzip stream and closes; 0 or -errno. NULL is fine. */
int zt_pcapng_close(struct zt_pcapng *w);

#endif
