/* SPDX-License-Identifier: GPL-2.0-only */
/* Small pure helpers: addresses, prefixes, durations, clocks. No logging. */
#ifndef ZT_UTIL_H
#define ZT_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ZT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct zt_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t prefixlen; /* 0..32 or 0..128 */
	uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes; host bits zero */
};

#define ZT_CIDR_STRLEN 48 /* enough for any IPv6 address, '/', 3 digits, NUL */

/*
 * Parses "A.B.C.D", "A.B.C.D/N", an IPv6 address, or "ADDR6/N".
 * A bare address is a host prefix (/32 or /128). Host bits set under the
 * mask are cleared (198.18.0.7/24 -> 198.18.0.0/24); *had_host_bits (may be
 * NULL) tells the caller so it can warn. Leading/trailing blanks, empty
 * strings, junk after the prefix, prefixes out of range, "/" without
 * digits, leading '+' or '-', and IPv4-mapped oddities all give -EINVAL.
 */
int zt_cidr_parse(const char *s, struct zt_cidr *out, bool *had_host_bits);
/* "198.18.0.0/24", "2001:db8::/32"; host prefixes keep their /32 or /128. */
int zt_cidr_format(const struct zt_cidr *c, char *buf, size_t n);
/* Zeroes the bits past prefixlen. */
void zt_cidr_mask(struct zt_cidr *c);
/* True when addr (same family, 4 or 16 bytes) is inside c. */
bool zt_cidr_contains(const struct zt_cidr *c, const uint8_t *addr);
/*
 * V quoted for a message into BUF (N bytes): printable ASCII, quote and
 * backslash as \xNN, at most MAX bytes of V and then "...". Returns BUF.
 */
const char *zt_shown(const char *v, size_t max, char *buf, size_t n);
/* An interface name Linux accepts (dev_valid_name), in printable ASCII. */
bool zt_ifname_valid(const char *v);

/*
 * Durations: one or more <number><unit> groups with units ms, s, m, h, d
 * ("500ms", "10m", "1h30m", "2d"); a bare number is seconds. No sign, no
 * spaces, no overflow past UINT64_MAX ns (-ERANGE). Anything else -EINVAL.
 */
int zt_duration_parse(const char *s, uint64_t *out_ns);
/* Shortest exact form: 90000000000 -> "1m30s", 0 -> "0s", 1500000000 -> "1500ms". */
int zt_duration_format(uint64_t ns, char *buf, size_t n);

/* Parses a byte size: "1073741824", "64KiB", "512MiB", "1GiB" (also K/M/G = 1024-based). */
int zt_size_parse(const char *s, uint64_t *out);

uint64_t zt_now_boot_ns(void); /* CLOCK_BOOTTIME, the clock of bpf_ktime_get_boot_ns() */
uint64_t zt_now_mono_ns(void);
/* The calling thread's CPU time: a task's own cost, apart from the time it was preempted. */
uint64_t zt_thread_cpu_ns(void);

/*
 * Before taking a lock that a more urgent thread waits for (*urgent > 0,
 * kept by that thread around its own lock call): let it in first. Sleeps
 * in 20 us steps, at most 2 ms, then goes on anyway: a spin would keep a
 * SCHED_FIFO caller on its CPU ahead of the thread holding the lock.
 */
void zt_let_urgent_first(const int *urgent);

/*
 * In a long piece of background work (a walk of a big map, a sweep), called
 * between its steps: once the thread has run ZT_YIELD_NS since *since (0:
 * from now), it yields its CPU. This kernel preempts a task running in a
 * syscall-heavy loop only at the tick (HZ 250: up to 4 ms) unless it blocks,
 * so a task woken on the CPU meanwhile (a pod's, the tunnel's relay) would
 * wait for the whole piece; after a yield it runs at once, and with nothing
 * waiting the work goes on at once.
 */
#define ZT_YIELD_NS (250ULL * 1000ULL)
void zt_yield_due(uint64_t *since);

/*
 * A mutex with priority inheritance (recursive if asked): a holder
 * preempted while a SCHED_FIFO thread waits for it runs at that thread's
 * priority until it lets go. Without it where PI futexes are missing.
 */
void zt_mutex_init_pi(pthread_mutex_t *m, bool recursive);
uint64_t zt_now_unix(void); /* seconds */
uint64_t zt_now_unix_ns(void); /* CLOCK_REALTIME */
/* CLOCK_REALTIME minus CLOCK_BOOTTIME now: add it to a boot-clock time for unix ns. */
int64_t zt_boot_to_unix_ns(void);
/* ISO 8601 UTC "2026-11-22T22:41:03Z" for unix seconds. */
int zt_time_format(uint64_t unix_s, char *buf, size_t n);

/*
 * Makes room for need elements of elem bytes in the array *v of *cap
 * (doubling, from 64). 0, or -ENOMEM with *v and *cap unchanged.
 */
int zt_grow(void **v, size_t *cap, size_t need, size_t elem);

/* The name of an interface, or "ifN" when it has none (gone). */
void zt_ifname(unsigned int ifindex, char *buf, size_t n);

/* snprintf into an error buffer that may be NULL or empty (then nothing is written). */
void zt_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* strtoul that rejects junk, sign and overflow. */
int zt_parse_u64(const char *s, uint64_t *out);

/* FNV-1a 32-bit hash. */
uint32_t zt_fnv1a32(const void *data, size_t len);

/*
 * A listen address: "127.0.0.1:9470", "0.0.0.0:9470", "[::1]:9470" (numeric
 * addresses only, port 1-65535) into a sockaddr_in or sockaddr_in6.
 * -EINVAL otherwise.
 */
int zt_listen_parse(const char *s, struct sockaddr_storage *out);

/*
 * *ss (zeroed first) for addr (network order, 4 or 16 bytes) of family
 * AF_INET or AF_INET6 and port (host order); its length, 0 for another family.
 */
socklen_t zt_sockaddr_set(int family, const uint8_t *addr, uint16_t port,
			  struct sockaddr_storage *ss);

/* mkdir -p with the given mode for directories it creates. */
int zt_mkdir_p(const char *path, unsigned int mode);

/*
 * A growable text buffer: zt_sbuf_printf appends; after a failed
 * allocation oom stays set and later appends do nothing (check it once,
 * at the end). p is NUL-terminated once anything was appended; free(p).
 */
struct zt_sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

void zt_sbuf_printf(struct zt_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A VLAN tag's 4 bytes at p: its protocol, in network order as the
 * kernel's records carry it (802.1Q 0x8100, 802.1ad 0x88a8), then the TCI.
 */
void zt_vlan_tag_put(uint8_t *p, uint16_t proto_be, uint16_t tci);

#endif
