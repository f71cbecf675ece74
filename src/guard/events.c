// SPDX-License-Identifier: GPL-2.0-only
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "guard/datapath.h"
#include "guard/events.h"
#include "agent/log.h"
#include "agent/util.h"

/* A deferred record's copy: the largest record type fits. */
#define DEFER_SLOT 256
#define DEFER_SLOTS 16384

struct zt_events {
	struct ring_buffer *rb;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	struct {
		zt_event_fn fn;
		void *ctx;
		bool deferred;
	} handlers[ZT_EV_MAX][ZT_EVENTS_MAX_HANDLERS];
	bool has_deferred[ZT_EV_MAX];
	/*
	 * The deferred records: copies in fixed slots, in the order read, for
	 * the bookkeeping thread. The consumer waits only when all slots are
	 * taken (no record is dropped).
	 */
	struct {
		pthread_t thread;
		bool started, stop;
		pthread_mutex_t mu;
		pthread_cond_t not_empty, not_full;
		uint8_t (*slot)[DEFER_SLOT];
		uint32_t len[DEFER_SLOTS];
		zt_event_fn fn[DEFER_SLOTS]; /* NULL: a record, for the deferred handlers */
		void *ctx[DEFER_SLOTS];
		uint32_t head, n; /* the oldest slot, slots taken */
		uint64_t high, waits, wait_ns;
		_Atomic uint64_t queued;
	} q;
	_Atomic uint64_t received, malformed;
	_Atomic uint64_t by_type[ZT_EV_MAX];
	_Atomic uint64_t late, handler_ns[ZT_EV_MAX], handler_max_ns[ZT_EV_MAX];
	/* The consumer's own (its thread only): the batch since the last wakeup. */
	struct {
		uint64_t woke_ns; /* boot clock */
		uint64_t first_lag_ns; /* the batch's first record, at the wakeup */
		uint64_t run_delay_ns; /* waited on a run queue across the epoll_wait */
		uint64_t slowest_ns, busy_ns;
		uint32_t n, slowest_type;
		bool timed_out;
	} b;
	uint64_t late_log_sec;
	uint32_t late_logged;
	int schedstat_fd;
	/* SCHED_FIFO (zt_events_set_realtime): the priority, and the consumer's own state. */
	int rt_prio;
	struct {
		uint64_t win_start, win_busy; /* boot clock; handlers' time within the window */
		uint64_t rest_until; /* demoted: nice until then */
	} rt;
	/* rt_now: under SCHED_FIFO now (written by the consumer, read by stats too) */
	_Atomic uint64_t rt_now, rt_demotions;
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
	[ZT_EV_SESSION] = sizeof(struct zt_ev_session),
	[ZT_EV_HOST_SESSION] = sizeof(struct zt_ev_host_session),
	[ZT_EV_REFUSED] = sizeof(struct zt_ev_refused),
};

static bool family_ok(uint8_t f)
{
	return f == 4 || f == 6;
}

/* A VLAN tag's protocol beside a frame: none, 802.1Q or 802.1ad (network order). */
static bool vlan_ok(uint16_t proto)
{
	return !proto || proto == htons(0x8100) || proto == htons(0x88a8);
}

/* The checks of one type beyond its length. */
static bool fields_ok(const struct zt_event_hdr *h)
{
	switch (h->type) {
	case ZT_EV_XDP_DROP:
		return vlan_ok(((const struct zt_ev_xdp_drop *)(const void *)h)->vlan_proto);
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
		       e->result <= ZT_PROBE_STRAY_DENIED;
	}
	case ZT_EV_CAPTURE: {
		const struct zt_ev_capture *e = (const void *)h;

		return family_ok(e->family) && e->cap_len <= ZT_CAP_SNAPLEN &&
		       e->cap_len <= e->orig_len && e->action < ZT_ACT_MAX &&
		       e->point >= ZT_CAP_XDP && e->point <= ZT_CAP_TO_POD &&
		       (e->matched == ZT_CAP_MATCH_SRC || e->matched == ZT_CAP_MATCH_DST) &&
		       vlan_ok(e->vlan_proto);
	}
	case ZT_EV_HOST_SESSION: {
		const struct zt_ev_host_session *e = (const void *)h;

		return family_ok(e->family) && e->first_ns <= e->hdr.ts_ns;
	}
	case ZT_EV_REFUSED: {
		const struct zt_ev_refused *e = (const void *)h;

		return family_ok(e->family) &&
		       (e->origin == ZT_REFUSED_FROM_ENDPOINT ||
			e->origin == ZT_REFUSED_FROM_NODE) &&
		       (e->kind == ZT_REFUSED_SSH || e->kind == ZT_REFUSED_CLEAR) && e->count &&
		       e->refused >= e->count && e->first_ns <= e->hdr.ts_ns;
	}
	case ZT_EV_SESSION: {
		const struct zt_ev_session *e = (const void *)h;

		return family_ok(e->key.family) && e->key.proto == 6 && e->val.dir <= ZT_DIR_EGRESS;
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

size_t zt_capture_frame(const struct zt_ev_capture *ev, uint8_t *out, uint32_t *orig_len)
{
	size_t n = ev->cap_len < ZT_CAP_SNAPLEN ? ev->cap_len : ZT_CAP_SNAPLEN;

	*orig_len = ev->orig_len;
	/* No tag beside it, or too little of the frame to hold one: as it came. */
	if (!ev->vlan_proto || n < 12) {
		memcpy(out, ev->data, n);
		return n;
	}
	memcpy(out, ev->data, 12);
	zt_vlan_tag_put(out + 12, ev->vlan_proto, ev->vlan_tci);
	memcpy(out + 16, ev->data + 12, n - 12);
	*orig_len += 4;
	return n + 4;
}

/* Runs the handlers of one deferred record (the bookkeeping thread). */
static void run_deferred(struct zt_events *ev, const void *rec, size_t len)
{
	int type = ((const struct zt_event_hdr *)rec)->type;

	for (int i = 0; i < ZT_EVENTS_MAX_HANDLERS && ev->handlers[type][i].fn; i++)
		if (ev->handlers[type][i].deferred)
			ev->handlers[type][i].fn(ev->handlers[type][i].ctx, rec, len);
}

/* Queues a copy; waits while the queue is full. false: not queued (run it here). */
static bool defer(struct zt_events *ev, zt_event_fn fn, void *ctx, const void *rec, size_t len)
{
	uint32_t tail;

	if (!ev->q.started || len > DEFER_SLOT)
		return false;
	pthread_mutex_lock(&ev->q.mu);
	if (ev->q.n == DEFER_SLOTS) {
		uint64_t t0 = zt_now_mono_ns();

		ev->q.waits++;
		while (ev->q.n == DEFER_SLOTS)
			pthread_cond_wait(&ev->q.not_full, &ev->q.mu);
		ev->q.wait_ns += zt_now_mono_ns() - t0;
	}
	tail = (ev->q.head + ev->q.n) % DEFER_SLOTS;
	memcpy(ev->q.slot[tail], rec, len);
	ev->q.len[tail] = (uint32_t)len;
	ev->q.fn[tail] = fn;
	ev->q.ctx[tail] = ctx;
	if (++ev->q.n > ev->q.high)
		ev->q.high = ev->q.n;
	pthread_cond_signal(&ev->q.not_empty);
	pthread_mutex_unlock(&ev->q.mu);
	atomic_fetch_add_explicit(&ev->q.queued, 1, memory_order_relaxed);
	return true;
}

void zt_events_dispatch(struct zt_events *ev, const void *rec, size_t len)
{
	int type = ((const struct zt_event_hdr *)rec)->type;

	for (int i = 0; i < ZT_EVENTS_MAX_HANDLERS && ev->handlers[type][i].fn; i++)
		if (!ev->handlers[type][i].deferred)
			ev->handlers[type][i].fn(ev->handlers[type][i].ctx, rec, len);
	if (ev->has_deferred[type] && !defer(ev, NULL, NULL, rec, len))
		run_deferred(ev, rec, len);
}

/* The events whose consumer this thread is (NULL on every other thread). */
static __thread struct zt_events *tl_consumer;

void zt_events_later(zt_event_fn fn, void *ctx, const void *data, size_t len)
{
	struct zt_events *ev = tl_consumer;

	if (!ev || !defer(ev, fn, ctx, data, len))
		fn(ctx, data, len);
}

/* The bookkeeping thread: the deferred records, in order, one slot at a time. */
static void *bookkeeper(void *arg)
{
	struct zt_events *ev = arg;
	uint8_t rec[DEFER_SLOT] __attribute__((aligned(8)));

	/* Its handlers take locks the consumer takes too: not preempted for less while holding them. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ZT_EVENTS_NICE) < 0)
		log_warn("events_priority_not_set", "thread=bookkeeping nice=%d error=\"%s\"",
			 ZT_EVENTS_NICE, strerror(errno));
	pthread_mutex_lock(&ev->q.mu);
	for (;;) {
		zt_event_fn fn;
		void *ctx;
		uint32_t len;

		while (!ev->q.n && !ev->q.stop)
			pthread_cond_wait(&ev->q.not_empty, &ev->q.mu);
		if (!ev->q.n)
			break; /* stopped and drained */
		len = ev->q.len[ev->q.head];
		memcpy(rec, ev->q.slot[ev->q.head], len);
		fn = ev->q.fn[ev->q.head];
		ctx = ev->q.ctx[ev->q.head];
		ev->q.head = (ev->q.head + 1) % DEFER_SLOTS;
		ev->q.n--;
		pthread_cond_signal(&ev->q.not_full);
		pthread_mutex_unlock(&ev->q.mu);
		if (fn)
			fn(ctx, rec, len);
		else
			run_deferred(ev, rec, len);
		pthread_mutex_lock(&ev->q.mu);
	}
	pthread_mutex_unlock(&ev->q.mu);
	return NULL;
}

/* A record read this long after the kernel wrote it is logged (at most 5 lines a second). */
#define LATE_NS (10 * 1000000ULL)

static void note_late(struct zt_events *ev, int type, uint64_t lag)
{
	uint64_t sec = ev->b.woke_ns / 1000000000ULL;

	atomic_fetch_add_explicit(&ev->late, 1, memory_order_relaxed);
	if (sec != ev->late_log_sec) {
		ev->late_log_sec = sec;
		ev->late_logged = 0;
	}
	if (++ev->late_logged > 5)
		return;
	log_info("events_late",
		 "type=%d lag_ms=%.3f at_wakeup_ms=%.3f run_queue_ms=%.3f woke_by=%s "
		 "batch_pos=%u batch_busy_ms=%.3f slowest_type=%u slowest_ms=%.3f",
		 type, (double)lag / 1e6, (double)ev->b.first_lag_ns / 1e6,
		 (double)ev->b.run_delay_ns / 1e6, ev->b.timed_out ? "timeout" : "notification",
		 ev->b.n, (double)ev->b.busy_ns / 1e6, ev->b.slowest_type,
		 (double)ev->b.slowest_ns / 1e6);
}

void zt_events_set_realtime(struct zt_events *ev, int prio)
{
	ev->rt_prio = prio < 0 ? 0 : prio > 99 ? 99 : prio;
}

/* The consumer's thread: under SCHED_FIFO (on) or back to its nice. */
static int rt_set(struct zt_events *ev, bool on)
{
	struct sched_param sp = { .sched_priority = on ? ev->rt_prio : 0 };
	int r = pthread_setschedparam(pthread_self(), on ? SCHED_FIFO : SCHED_OTHER, &sp);

	if (r == 0)
		atomic_store_explicit(&ev->rt_now, on, memory_order_relaxed);
	return r;
}

/*
 * After each record (busy: its handlers' ns): over half the window busy
 * under SCHED_FIFO, back to nice for ZT_EVENTS_RT_REST; after it, again.
 */
static void rt_account(struct zt_events *ev, uint64_t now, uint64_t busy)
{
	if (!ev->rt_prio)
		return;
	if (!atomic_load_explicit(&ev->rt_now, memory_order_relaxed)) {
		if (ev->rt.rest_until && now >= ev->rt.rest_until && rt_set(ev, true) == 0) {
			ev->rt.rest_until = 0;
			ev->rt.win_start = now;
			ev->rt.win_busy = 0;
			log_info("events_realtime_resumed", "priority=%d", ev->rt_prio);
		}
		return;
	}
	if (now - ev->rt.win_start >= ZT_EVENTS_RT_WINDOW) {
		ev->rt.win_start = now;
		ev->rt.win_busy = 0;
	}
	ev->rt.win_busy += busy;
	if (ev->rt.win_busy * 2 > ZT_EVENTS_RT_WINDOW && rt_set(ev, false) == 0) {
		ev->rt.rest_until = now + ZT_EVENTS_RT_REST;
		atomic_fetch_add_explicit(&ev->rt_demotions, 1, memory_order_relaxed);
		log_warn("events_realtime_paused",
			 "priority=%d busy_ms=%.1f window_ms=%.0f rest_ms=%.0f nice=%d",
			 ev->rt_prio, (double)ev->rt.win_busy / 1e6,
			 (double)ZT_EVENTS_RT_WINDOW / 1e6, (double)ZT_EVENTS_RT_REST / 1e6,
			 ZT_EVENTS_NICE);
	}
}

static int on_record(void *ctx, void *data, size_t len)
{
	struct zt_events *ev = ctx;
	int type = zt_events_check(data, len);
	const struct zt_event_hdr *h = data;
	uint64_t t0, t1, lag;

	atomic_fetch_add_explicit(&ev->received, 1, memory_order_relaxed);
	if (type < 0) {
		atomic_fetch_add_explicit(&ev->malformed, 1, memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&ev->by_type[type], 1, memory_order_relaxed);
	t0 = zt_now_boot_ns();
	lag = t0 > h->ts_ns ? t0 - h->ts_ns : 0;
	if (!ev->b.n)
		ev->b.first_lag_ns = ev->b.woke_ns > h->ts_ns ? ev->b.woke_ns - h->ts_ns : 0;
	if (lag >= LATE_NS)
		note_late(ev, type, lag);
	zt_events_dispatch(ev, data, len);
	t1 = zt_now_boot_ns() - t0;
	ev->b.n++;
	ev->b.busy_ns += t1;
	if (t1 > ev->b.slowest_ns) {
		ev->b.slowest_ns = t1;
		ev->b.slowest_type = (uint32_t)type;
	}
	rt_account(ev, t0 + t1, t1);
	atomic_fetch_add_explicit(&ev->handler_ns[type], t1, memory_order_relaxed);
	if (t1 > atomic_load_explicit(&ev->handler_max_ns[type], memory_order_relaxed))
		atomic_store_explicit(&ev->handler_max_ns[type], t1, memory_order_relaxed);
	return 0;
}

/* The thread's time waiting on a run queue (schedstat's second field), or 0. */
static uint64_t run_delay(int fd)
{
	char buf[96];
	unsigned long long run, wait;
	ssize_t n;

	if (fd < 0 || (n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	return sscanf(buf, "%llu %llu", &run, &wait) == 2 ? wait : 0;
}

static void *consumer(void *arg)
{
	struct zt_events *ev = arg;

	/* This thread only (a Linux nice is per thread). */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ZT_EVENTS_NICE) < 0)
		log_warn("events_priority_not_set", "nice=%d error=\"%s\" effect=\"%s\"",
			 ZT_EVENTS_NICE, strerror(errno),
			 "flood decisions may wait for the scheduler on a loaded node");
	if (ev->rt_prio) {
		int r = rt_set(ev, true);

		ev->rt.win_start = zt_now_boot_ns();
		if (r)
			log_warn("events_realtime_not_set",
				 "priority=%d error=\"%s\" effect=\"%s\"", ev->rt_prio, strerror(r),
				 "the consumer runs at its nice");
		else
			log_info("events_realtime", "policy=SCHED_FIFO priority=%d", ev->rt_prio);
	}
	tl_consumer = ev;
	ev->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	while (!atomic_load(&ev->stop)) {
		struct epoll_event e;
		uint64_t rq0 = run_delay(ev->schedstat_fd);
		int n = epoll_wait(ring_buffer__epoll_fd(ev->rb), &e, 1, 100), r;

		if (n < 0 && errno != EINTR) {
			log_error("ringbuf_poll_failed", "error=\"%s\"", strerror(errno));
			break;
		}
		memset(&ev->b, 0, sizeof(ev->b));
		ev->b.woke_ns = zt_now_boot_ns();
		ev->b.timed_out = n == 0;
		ev->b.run_delay_ns = run_delay(ev->schedstat_fd) - rq0;
		r = ring_buffer__consume(ev->rb);
		if (r < 0 && r != -EINTR) {
			log_error("ringbuf_poll_failed", "error=\"%s\"", strerror(-r));
			break;
		}
	}
	if (ev->schedstat_fd >= 0)
		close(ev->schedstat_fd);
	ring_buffer__consume(ev->rb);
	return NULL;
}

int zt_events_init(struct zt_events **out, int ringbuf_fd)
{
	struct zt_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->schedstat_fd = -1;
	pthread_mutex_init(&ev->q.mu, NULL);
	pthread_cond_init(&ev->q.not_empty, NULL);
	pthread_cond_init(&ev->q.not_full, NULL);
	ev->rb = ring_buffer__new(ringbuf_fd, on_record, ev, NULL);
	if (!ev->rb) {
		int r = -errno;
		free(ev);
		return r;
	}
	*out = ev;
	return 0;
}

static int add_handler(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx,
		       bool deferred)
{
	if (type <= 0 || type >= ZT_EV_MAX || !rec_len[type] || !fn || ev->started)
		return -EINVAL;
	if (deferred && !ev->q.slot) {
		ev->q.slot = calloc(DEFER_SLOTS, DEFER_SLOT);
		if (!ev->q.slot)
			return -ENOMEM;
	}
	for (int i = 0; i < ZT_EVENTS_MAX_HANDLERS; i++) {
		if (!ev->handlers[type][i].fn) {
			ev->handlers[type][i].fn = fn;
			ev->handlers[type][i].ctx = ctx;
			ev->handlers[type][i].deferred = deferred;
			ev->has_deferred[type] |= deferred;
			return 0;
		}
	}
	return -ENOSPC;
}

int zt_events_on(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx)
{
	return add_handler(ev, type, fn, ctx, false);
}

int zt_events_on_deferred(struct zt_events *ev, enum zt_event_type type, zt_event_fn fn, void *ctx)
{
	return add_handler(ev, type, fn, ctx, true);
}

int zt_events_start(struct zt_events *ev)
{
	int r;

	if (ev->q.slot) {
		r = pthread_create(&ev->q.thread, NULL, bookkeeper, ev);
		if (r)
			return -r;
		ev->q.started = true;
		pthread_setname_np(ev->q.thread, "zt-ev-book");
	}
	r = pthread_create(&ev->thread, NULL, consumer, ev);
	if (r)
		return -r; /* zt_events_stop ends the bookkeeper */
	ev->started = true;
	pthread_setname_np(ev->thread, "zt-events");
	return 0;
}

void zt_events_get_stats(const struct zt_events *ev, struct zt_events_stats *out)
{
	out->received = atomic_load_explicit(&ev->received, memory_order_relaxed);
	out->malformed = atomic_load_explicit(&ev->malformed, memory_order_relaxed);
	for (int t = 0; t < ZT_EV_MAX; t++)
		out->by_type[t] = atomic_load_explicit(&ev->by_type[t], memory_order_relaxed);
	out->late = atomic_load_explicit(&ev->late, memory_order_relaxed);
	out->deferred = atomic_load_explicit(&ev->q.queued, memory_order_relaxed);
	out->realtime = atomic_load_explicit(&ev->rt_now, memory_order_relaxed);
	out->realtime_demotions = atomic_load_explicit(&ev->rt_demotions, memory_order_relaxed);
	if (ev->q.slot) {
		pthread_mutex_lock((pthread_mutex_t *)&ev->q.mu);
		out->deferred_high = ev->q.high;
		out->deferred_full_waits = ev->q.waits;
		out->deferred_full_wait_ns = ev->q.wait_ns;
		pthread_mutex_unlock((pthread_mutex_t *)&ev->q.mu);
	}
}

void zt_events_stop(struct zt_events *ev)
{
	if (!ev)
		return;
	if (ev->started) {
		atomic_store(&ev->stop, true);
		pthread_join(ev->thread, NULL);
	}
	if (ev->q.started) {
		pthread_mutex_lock(&ev->q.mu);
		ev->q.stop = true;
		pthread_cond_signal(&ev->q.not_empty);
		pthread_mutex_unlock(&ev->q.mu);
		pthread_join(ev->q.thread, NULL);
	}
	ring_buffer__free(ev->rb);
	pthread_mutex_destroy(&ev->q.mu);
	pthread_cond_destroy(&ev->q.not_empty);
	pthread_cond_destroy(&ev->q.not_full);
	free(ev->q.slot);
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

	/* One thread runs this (the consumer, or the bookkeeper when deferred): plain statics. */
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
