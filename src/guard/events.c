// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "guard/datapath.h"
#include "guard/events.h"
#include "agent/log.h"
#include "agent/util.h"

struct zt_events {
	struct ring_buffer *rb;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	struct {
		zt_event_fn fn;
		void *ctx;
	} handlers[ZT_EV_MAX];
	_Atomic uint64_t received, malformed;
};

static const size_t min_len[ZT_EV_MAX] = {
	[ZT_EV_XDP_DROP] = sizeof(struct zt_ev_xdp_drop),
	[ZT_EV_POLICY] = sizeof(struct zt_ev_policy),
	[ZT_EV_IOC] = sizeof(struct zt_ev_ioc),
};

static int on_record(void *ctx, void *data, size_t len)
{
	struct zt_events *ev = ctx;
	const struct zt_event_hdr *h = data;

	atomic_fetch_add_explicit(&ev->received, 1, memory_order_relaxed);
	if (len < sizeof(*h) || h->type == 0 || h->type >= ZT_EV_MAX || len < min_len[h->type] ||
	    h->len > len) {
		atomic_fetch_add_explicit(&ev->malformed, 1, memory_order_relaxed);
		return 0;
	}
	if (ev->handlers[h->type].fn)
		ev->handlers[h->type].fn(ev->handlers[h->type].ctx, data, len);
	return 0;
}

static void *consumer(void *arg)
{
	struct zt_events *ev = arg;

	while (!atomic_load(&ev->stop)) {
		int r = ring_buffer__poll(ev->rb, 100);

		if (r < 0 && r != -EINTR) {
			log_error("ringbuf_poll_failed", "error=\"%s\"", strerror(-r));
			break;
		}
	}
	ring_buffer__consume(ev->rb);
	return NULL;
}

int zt_events_init(struct zt_events **out, int ringbuf_fd)
{
	struct zt_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->rb = ring_buffer__new(ringbuf_fd, on_record, ev, NULL);
	if (!ev->rb) {
		int r = -errno;
		free(ev);
		return r;
	}
	*out = ev;
	return 0;
}

int zt_events_on(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx)
{
	if (type <= 0 || type >= ZT_EV_MAX || ev->started)
		return -EINVAL;
	ev->handlers[type].fn = fn;
	ev->handlers[type].ctx = ctx;
	return 0;
}

int zt_events_start(struct zt_events *ev)
{
	int r = pthread_create(&ev->thread, NULL, consumer, ev);

	if (r)
		return -r;
	ev->started = true;
	return 0;
}

void zt_events_get_stats(const struct zt_events *ev, struct zt_events_stats *out)
{
	out->received = atomic_load_explicit(&ev->received, memory_order_relaxed);
	out->malformed = atomic_load_explicit(&ev->malformed, memory_order_relaxed);
}

void zt_events_stop(struct zt_events *ev)
{
	if (!ev)
		return;
	if (ev->started) {
		atomic_store(&ev->stop, true);
		pthread_join(ev->thread, NULL);
	}
	ring_buffer__free(ev->rb);
	free(ev);
}

static void fmt_addr(uint8_t family, const uint8_t *a, char *buf, size_t n)
{
	if (family == 4)
		inet_ntop(AF_INET, a, buf, n);
	else if (family == 6)
		inet_ntop(AF_INET6, a, buf, n);
	else
		snprintf(buf, n, "-");
}

void zt_events_log_xdp_drop(void *ctx, const void *rec, size_t len)
{
	static uint64_t window_start, in_window, suppressed;
	const struct zt_ev_xdp_drop *e = rec;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], ifname[IF_NAMESIZE] = "?";
	uint64_t now = zt_now_mono_ns();

	/* Only the consumer thread runs this: plain statics are enough. */
	if (now - window_start >= 1000000000ULL) {
		if (suppressed)
			log_info("xdp_drop_log_suppressed", "lines=%llu",
				 (unsigned long long)suppressed);
		window_start = now;
		in_window = suppressed = 0;
	}
	if (++in_window > 20) {
		suppressed++;
		return;
	}
	fmt_addr(e->family, e->saddr, src, sizeof(src));
	fmt_addr(e->family, e->daddr, dst, sizeof(dst));
	if_indextoname(e->ifindex, ifname);
	log_info("xdp_drop",
		 "iface=%s reason=%s src=%s dst=%s proto=%u sport=%u dport=%u len=%u represents=%u",
		 ifname, zt_xdp_reason_name(e->reason), src, dst, e->proto, e->sport, e->dport,
		 e->pkt_len, e->represents);
}
