// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
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
	} handlers[ZT_EV_MAX][ZT_EVENTS_MAX_HANDLERS];
	_Atomic uint64_t received, malformed;
	_Atomic uint64_t by_type[ZT_EV_MAX];
};

static const size_t rec_len[ZT_EV_MAX] = {
	[ZT_EV_XDP_DROP] = sizeof(struct zt_ev_xdp_drop),
	[ZT_EV_POLICY] = sizeof(struct zt_ev_policy),
	[ZT_EV_SRC_ACTIVITY] = sizeof(struct zt_ev_activity),
	[ZT_EV_DST_ACTIVITY] = sizeof(struct zt_ev_activity),
	[ZT_EV_PROBE] = sizeof(struct zt_ev_probe),
	[ZT_EV_PROBE_RESULT] = sizeof(struct zt_ev_probe_result),
	[ZT_EV_IOC] = sizeof(struct zt_ev_ioc),
	[ZT_EV_CAPTURE] = sizeof(struct zt_ev_capture),
};

static bool family_ok(uint8_t f)
{
	return f == 4 || f == 6;
}

/* The checks of one type beyond its length. */
static bool fields_ok(const struct zt_event_hdr *h)
{
	switch (h->type) {
	case ZT_EV_SRC_ACTIVITY:
	case ZT_EV_DST_ACTIVITY: {
		const struct zt_ev_activity *e = (const void *)h;

		return family_ok(e->family) && e->distinct <= 64 && e->distinct2 <= 64;
	}
	case ZT_EV_PROBE: {
		const struct zt_ev_probe *e = (const void *)h;

		return family_ok(e->family) && e->action < ZT_ACT_MAX && e->reason < ZT_XR_MAX;
	}
	case ZT_EV_PROBE_RESULT: {
		const struct zt_ev_probe_result *e = (const void *)h;

		return family_ok(e->family) && e->result >= ZT_PROBE_OPEN &&
		       e->result <= ZT_PROBE_UNREACH;
	}
	case ZT_EV_CAPTURE: {
		const struct zt_ev_capture *e = (const void *)h;

		return family_ok(e->family) && e->cap_len <= ZT_CAP_SNAPLEN &&
		       e->cap_len <= e->orig_len && e->action < ZT_ACT_MAX &&
		       e->point >= ZT_CAP_XDP && e->point <= ZT_CAP_TO_POD &&
		       (e->matched == ZT_CAP_MATCH_SRC || e->matched == ZT_CAP_MATCH_DST);
	}
	default:
		return true;
	}
}

int zt_events_check(const void *rec, size_t len)
{
	const struct zt_event_hdr *h = rec;

	if (!rec || len < sizeof(*h) || h->type == 0 || h->type >= ZT_EV_MAX || !rec_len[h->type] ||
	    len < rec_len[h->type] || h->len < rec_len[h->type] || h->len > len)
		return -EINVAL;
	return fields_ok(h) ? h->type : -EINVAL;
}

static int on_record(void *ctx, void *data, size_t len)
{
	struct zt_events *ev = ctx;
	int type = zt_events_check(data, len);

	atomic_fetch_add_explicit(&ev->received, 1, memory_order_relaxed);
	if (type < 0) {
		atomic_fetch_add_explicit(&ev->malformed, 1, memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&ev->by_type[type], 1, memory_order_relaxed);
	for (int i = 0; i < ZT_EVENTS_MAX_HANDLERS && ev->handlers[type][i].fn; i++)
		ev->handlers[type][i].fn(ev->handlers[type][i].ctx, data, len);
	return 0;
}

static void *consumer(void *arg)
{
	struct zt_events *ev = arg;

	/* This thread only (a Linux nice is per thread). */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ZT_EVENTS_NICE) < 0)
		log_warn("events_priority_not_set", "nice=%d error=\"%s\" effect=\"%s\"",
			 ZT_EVENTS_NICE, strerror(errno),
			 "flood decisions may wait for the scheduler on a loaded node");
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
	if (type <= 0 || type >= ZT_EV_MAX || !rec_len[type] || !fn || ev->started)
		return -EINVAL;
	for (int i = 0; i < ZT_EVENTS_MAX_HANDLERS; i++) {
		if (!ev->handlers[type][i].fn) {
			ev->handlers[type][i].fn = fn;
			ev->handlers[type][i].ctx = ctx;
			return 0;
		}
	}
	return -ENOSPC;
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
	for (int t = 0; t < ZT_EV_MAX; t++)
		out->by_type[t] = atomic_load_explicit(&ev->by_type[t], memory_order_relaxed);
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
