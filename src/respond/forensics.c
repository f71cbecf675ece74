// SPDX-License-Identifier: GPL-2.0-only
/* Forensic captures per incident: routing, sampling, rotation, bounds (see forensics.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/util.h"
#include "detect/detect.h"
#include "detect/dtable.h"
#include "records/auditq.h"
#include "records/flowrec.h"
#include "respond/forensics.h"
#include "respond/pcapng.h"

#define SUFFIX ".pcapng.gz"
#define TICK_SKIP_MAX 5

struct file {
	char name[96]; /* in dir */
	uint8_t id[16]; /* its incident (zero for files found at start) */
	uint32_t part;
	uint64_t bytes;
	uint64_t seq; /* age order: smaller is older */
	int cap; /* the capture writing it, -1 when closed */
};

struct cap {
	bool used;
	uint8_t id[16];
	char ids[40];
	uint32_t part;
	struct zt_pcapng *w;
	int file; /* index in files[] */
	uint64_t packets; /* in the current file */
	int64_t first_us, last_us;
	/* Sampling: packets kept in the current second of packet time, keep one in every. */
	uint64_t sec, in_sec, every, skip;
	uint32_t watchers;
};

struct wkey {
	uint8_t family, _pad[3];
	uint8_t addr[16];
};

struct went {
	struct wkey k;
	uint32_t cap;
	uint32_t _pad;
};

struct zt_forensics {
	struct zt_forensics_cfg c;
	zt_forensics_event_fn ev;
	zt_forensics_ifname_fn ifname;
	void *ctx;
	pthread_mutex_t lock;
	struct cap *caps;
	struct file *files;
	size_t n_files, cap_files;
	uint64_t seq;
	struct zt_dtable watch;
	uint64_t last_flush;
	unsigned int tick_skipped; /* ticks in a row that found the lock taken (the loop's) */
	/* Interface names: asked once per interface, not per packet. */
	struct {
		uint32_t ifindex;
		char name[32];
	} ifn[16];
	size_t n_ifn;
	struct zt_forensics_stats st;
};

void zt_forensics_cfg_defaults(struct zt_forensics_cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/var/lib/ztagent/pcap");
	c->max_bytes = 1ULL << 30;
	c->file_bytes = 64ULL << 20;
	c->max_files = 1000;
	c->snaplen = 256;
	c->rate = 2000;
	c->max_captures = 256;
	c->flush_ns = 1000000000ULL;
}

static void file_path(const struct zt_forensics *f, const struct file *fl, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", f->c.dir, fl->name);
}

static void report(struct zt_forensics *f, const struct file *fl, const struct cap *c,
		   const char *state)
{
	char path[PATH_MAX + 100], esc[2 * PATH_MAX + 200], id[40], d[3 * PATH_MAX];

	if (!f->ev)
		return;
	file_path(f, fl, path, sizeof(path));
	zt_json_escape(path, esc, sizeof(esc));
	zt_uuid_format(fl->id, id, sizeof(id));
	snprintf(d, sizeof(d),
		 "{\"incident_id\":\"%s\",\"path\":\"%s\",\"part\":%u,\"state\":\"%s\","
		 "\"bytes\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"first_unix_us\":%" PRId64
		 ",\"last_unix_us\":%" PRId64 "}",
		 id, esc, fl->part, state, fl->bytes, c ? c->packets : 0, c ? c->first_us : 0,
		 c ? c->last_us : 0);
	f->ev(f->ctx, "forensics.capture", path, d);
}

static int cmp_seq(const void *a, const void *b)
{
	const struct file *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Files already in dir count against the bounds, oldest (by mtime) first. */
static int scan_dir(struct zt_forensics *f)
{
	DIR *d = opendir(f->c.dir);
	struct dirent *e;
	size_t sl = strlen(SUFFIX);
	int r = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		struct stat st;
		struct file *fl;

		if (n <= sl || n >= sizeof(fl->name) || strcmp(e->d_name + n - sl, SUFFIX) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (zt_grow((void **)&f->files, &f->cap_files, f->n_files + 1, sizeof(*f->files))) {
			r = -ENOMEM;
			break;
		}
		fl = &f->files[f->n_files++];
		memset(fl, 0, sizeof(*fl));
		snprintf(fl->name, sizeof(fl->name), "%s", e->d_name);
		fl->bytes = (uint64_t)st.st_size;
		fl->seq =
			(uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
		fl->cap = -1;
	}
	closedir(d);
	if (f->n_files)
		qsort(f->files, f->n_files, sizeof(*f->files), cmp_seq);
	/* New files come after the old ones whatever the clocks say. */
	for (size_t i = 0; i < f->n_files; i++)
		f->files[i].seq = ++f->seq;
	return r;
}

int zt_forensics_new(const struct zt_forensics_cfg *c, zt_forensics_event_fn ev,
		     zt_forensics_ifname_fn ifname, void *ctx, struct zt_forensics **out, char *err,
		     size_t errlen)
{
	struct zt_forensics *f;
	int r;

	*out = NULL;
	if (!c->max_bytes || !c->max_files || !c->max_captures || !c->file_bytes) {
		zt_seterr(err, errlen, "forensics: bounds must be above zero");
		return -EINVAL;
	}
	r = zt_mkdir_p(c->dir, 0700);
	if (r < 0) {
		zt_seterr(err, errlen, "forensics.dir %s: cannot create it: %s", c->dir,
			  strerror(-r));
		return r;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->c = *c;
	f->ev = ev;
	f->ifname = ifname;
	f->ctx = ctx;
	f->caps = calloc(c->max_captures, sizeof(*f->caps));
	r = f->caps ? zt_dtable_init(&f->watch, (size_t)c->max_captures * 4, sizeof(struct wkey),
				     sizeof(struct went), 0xf0e) :
		      -ENOMEM;
	if (!r)
		r = scan_dir(f);
	if (r) {
		zt_seterr(err, errlen, "forensics.dir %s: %s", c->dir, strerror(-r));
		zt_dtable_free(&f->watch);
		free(f->caps);
		free(f->files);
		free(f);
		return r;
	}
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

static void file_del(struct zt_forensics *f, size_t i)
{
	/* Keep the order (oldest first): a shift, the list is short. */
	memmove(&f->files[i], &f->files[i + 1], (f->n_files - i - 1) * sizeof(*f->files));
	f->n_files--;
	for (size_t k = 0; k < f->c.max_captures; k++)
		if (f->caps[k].used && f->caps[k].file > (int)i)
			f->caps[k].file--;
}

/* Closes a capture's current file (it stays on disk). */
static void cap_close_file(struct zt_forensics *f, struct cap *c)
{
	struct file *fl;

	if (!c->w)
		return;
	if (zt_pcapng_close(c->w) < 0)
		f->st.write_errors++;
	c->w = NULL;
	fl = &f->files[c->file];
	{
		char path[PATH_MAX + 100];
		struct stat st;

		file_path(f, fl, path, sizeof(path));
		if (stat(path, &st) == 0)
			fl->bytes = (uint64_t)st.st_size;
	}
	fl->cap = -1;
	report(f, fl, c, "closed");
	c->file = -1;
}

/* Opens the next part of a capture. */
static int cap_open_file(struct zt_forensics *f, struct cap *c)
{
	struct file *fl;
	char path[PATH_MAX + 100], comment[160];
	int r;

	if (zt_grow((void **)&f->files, &f->cap_files, f->n_files + 1, sizeof(*f->files)))
		return -ENOMEM;
	fl = &f->files[f->n_files];
	memset(fl, 0, sizeof(*fl));
	c->part++;
	snprintf(fl->name, sizeof(fl->name), "%s-%u%s", c->ids, c->part, SUFFIX);
	memcpy(fl->id, c->id, 16);
	fl->part = c->part;
	fl->cap = (int)(c - f->caps);
	file_path(f, fl, path, sizeof(path));
	snprintf(comment, sizeof(comment), "ztagent incident %s, part %u", c->ids, c->part);
	r = zt_pcapng_open(path, f->c.snaplen, comment, &c->w);
	/* A part already there (never overwritten): the next number. */
	for (int tries = 0; r == -EEXIST && tries < 1000; tries++) {
		c->part++;
		fl->part = c->part;
		snprintf(fl->name, sizeof(fl->name), "%s-%u%s", c->ids, c->part, SUFFIX);
		file_path(f, fl, path, sizeof(path));
		r = zt_pcapng_open(path, f->c.snaplen, comment, &c->w);
	}
	if (r) {
		c->w = NULL;
		return r;
	}
	fl->seq = ++f->seq;
	f->n_files++;
	c->file = (int)(f->n_files - 1);
	c->packets = 0;
	c->first_us = c->last_us = 0;
	f->st.files_opened++;
	/* The header is on disk: the file is a valid (empty) capture at once. */
	zt_pcapng_flush(c->w);
	fl->bytes = zt_pcapng_size(c->w);
	report(f, fl, c, "open");
	return 0;
}

static struct cap *cap_find(struct zt_forensics *f, const uint8_t id[16])
{
	for (uint32_t i = 0; i < f->c.max_captures; i++)
		if (f->caps[i].used && !memcmp(f->caps[i].id, id, 16))
			return &f->caps[i];
	return NULL;
}

static void cap_free(struct zt_forensics *f, struct cap *c)
{
	size_t pos = 0;
	struct went *e;
	uint32_t idx = (uint32_t)(c - f->caps);

	cap_close_file(f, c);
	while ((e = zt_dtable_next(&f->watch, &pos)))
		if (e->cap == idx)
			zt_dtable_del_at(&f->watch, &pos);
	memset(c, 0, sizeof(*c));
	c->file = -1;
}

int zt_forensics_watch(struct zt_forensics *f, const uint8_t id[16], uint8_t family,
		       const uint8_t *addr, char *path, size_t n)
{
	struct wkey k;
	struct went *e;
	struct cap *c;
	bool created;
	int r = 0;

	memset(&k, 0, sizeof(k));
	k.family = family;
	memcpy(k.addr, addr, zt_fam_len(family));
	pthread_mutex_lock(&f->lock);
	c = cap_find(f, id);
	if (!c) {
		for (uint32_t i = 0; i < f->c.max_captures && !c; i++)
			if (!f->caps[i].used)
				c = &f->caps[i];
		if (!c) {
			r = -ENOSPC;
			goto out;
		}
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->file = -1;
		c->every = 1;
		memcpy(c->id, id, 16);
		zt_uuid_format(id, c->ids, sizeof(c->ids));
		r = cap_open_file(f, c);
		if (r) {
			memset(c, 0, sizeof(*c));
			goto out;
		}
	}
	e = zt_dtable_get(&f->watch, &k, &created);
	if (!e) {
		r = -ENOSPC;
		goto out;
	}
	if (!created && e->cap != (uint32_t)(c - f->caps) && f->caps[e->cap].watchers)
		f->caps[e->cap].watchers--;
	if (created || e->cap != (uint32_t)(c - f->caps))
		c->watchers++;
	e->cap = (uint32_t)(c - f->caps);
	if (path && n)
		file_path(f, &f->files[c->file], path, n);
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

void zt_forensics_unwatch(struct zt_forensics *f, const uint8_t id[16])
{
	struct cap *c;

	pthread_mutex_lock(&f->lock);
	c = cap_find(f, id);
	if (c)
		cap_free(f, c);
	pthread_mutex_unlock(&f->lock);
}

bool zt_forensics_watched(struct zt_forensics *f, uint8_t family, const uint8_t *addr)
{
	struct wkey k;
	bool w;

	memset(&k, 0, sizeof(k));
	k.family = family;
	memcpy(k.addr, addr, zt_fam_len(family));
	pthread_mutex_lock(&f->lock);
	w = f->watch.n && zt_dtable_find(&f->watch, &k);
	pthread_mutex_unlock(&f->lock);
	return w;
}

void zt_forensics_path(struct zt_forensics *f, const uint8_t id[16], char *buf, size_t n)
{
	struct cap *c;

	pthread_mutex_lock(&f->lock);
	c = cap_find(f, id);
	if (c && c->w)
		file_path(f, &f->files[c->file], buf, n);
	else if (n)
		buf[0] = '\0';
	pthread_mutex_unlock(&f->lock);
}

/*
 * Keep this packet? The first rate packets of a second (of packet time) in
 * full; then one in 2, and after each further rate kept, one in twice as
 * many: a flood of N packets a second keeps about rate x log2(N / rate).
 */
static bool sample(struct zt_forensics *f, struct cap *c, uint64_t ts)
{
	uint64_t sec = ts / 1000000000ULL;

	if (sec != c->sec) {
		c->sec = sec;
		c->in_sec = 0; /* kept this second */
		c->every = 1;
		c->skip = 0;
	}
	if (c->in_sec >= f->c.rate && ++c->skip < c->every) {
		f->st.sampled_out++;
		return false;
	}
	c->skip = 0;
	c->in_sec++;
	if (c->in_sec >= f->c.rate && c->in_sec % f->c.rate == 0 && c->every < (1u << 20))
		c->every *= 2;
	return true;
}

static int cap_write(struct zt_forensics *f, struct cap *c, uint64_t ts, uint32_t ifindex,
		     bool inbound, const char *comment, const uint8_t *pkt, uint32_t caplen,
		     uint32_t origlen)
{
	char ifn[32] = "";
	int r;

	if (!c->w || !sample(f, c, ts))
		return 0;
	for (size_t i = 0; i < f->n_ifn; i++)
		if (f->ifn[i].ifindex == ifindex)
			memcpy(ifn, f->ifn[i].name, sizeof(ifn));
	if (!ifn[0]) {
		if (f->ifname && !f->ifname(f->ctx, ifindex, ifn, sizeof(ifn)))
			ifn[0] = '\0';
		if (ifn[0]) {
			size_t slot = f->n_ifn < 16 ? f->n_ifn++ : ifindex % 16;

			f->ifn[slot].ifindex = ifindex;
			memcpy(f->ifn[slot].name, ifn, sizeof(ifn));
		}
	}
	r = zt_pcapng_write(c->w, ts, ifindex, ifn[0] ? ifn : NULL, inbound, comment, pkt, caplen,
			    origlen);
	if (r) {
		f->st.write_errors++;
		return r;
	}
	c->packets++;
	if (!c->first_us)
		c->first_us = (int64_t)(ts / 1000);
	c->last_us = (int64_t)(ts / 1000);
	f->st.packets++;
	return 1;
}

/* The addresses of a frame: family and pointers to source and destination, or -EINVAL. */
static int frame_addrs(const uint8_t *p, uint32_t len, uint8_t *family, const uint8_t **src,
		       const uint8_t **dst)
{
	uint32_t off = 12;
	uint16_t et;

	if (len < 14)
		return -EINVAL;
	et = (uint16_t)(p[off] << 8 | p[off + 1]);
	for (int v = 0; v < 2 && (et == 0x8100 || et == 0x88a8); v++) {
		off += 4;
		if (len < off + 2)
			return -EINVAL;
		et = (uint16_t)(p[off] << 8 | p[off + 1]);
	}
	off += 2;
	if (et == 0x0800 && len >= off + 20) {
		*family = 4;
		*src = p + off + 12;
		*dst = p + off + 16;
		return 0;
	}
	if (et == 0x86dd && len >= off + 40) {
		*family = 6;
		*src = p + off + 8;
		*dst = p + off + 24;
		return 0;
	}
	return -EINVAL;
}

static struct cap *watched_cap(struct zt_forensics *f, uint8_t family, const uint8_t *addr)
{
	struct wkey k;
	struct went *e;

	memset(&k, 0, sizeof(k));
	k.family = family;
	memcpy(k.addr, addr, zt_fam_len(family));
	e = zt_dtable_find(&f->watch, &k);
	return e ? &f->caps[e->cap] : NULL;
}

int zt_forensics_packet(struct zt_forensics *f, uint64_t ts, uint32_t ifindex, uint8_t verdict,
			const char *why, const uint8_t *pkt, uint32_t caplen, uint32_t origlen)
{
	const uint8_t *src, *dst;
	struct cap *cs, *cd;
	char comment[128];
	uint8_t fam;
	int r = 0, w;

	if (frame_addrs(pkt, caplen, &fam, &src, &dst) < 0)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (!f->watch.n) {
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	cs = watched_cap(f, fam, src);
	cd = watched_cap(f, fam, dst);
	if (!cs && !cd) {
		f->st.unmatched++;
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	snprintf(comment, sizeof(comment), "verdict=%s%s%s",
		 verdict == ZT_FX_DROP ? "drop" : "pass", why && *why ? " reason=" : "",
		 why && *why ? why : "");
	if (cs) {
		w = cap_write(f, cs, ts, ifindex, true, comment, pkt, caplen, origlen);
		r = w < 0 ? w : r || w;
	}
	if (cd && cd != cs) {
		w = cap_write(f, cd, ts, ifindex, false, comment, pkt, caplen, origlen);
		r = w < 0 ? w : r || w;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static uint16_t csum16(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/*
 * Ethernet + IP + L4 headers from a drop event's fields; returns the
 * frame's length. The IP length is what was rebuilt (the frame's original
 * length is the packet's), so readers see no missing payload; TCP flags
 * and window are unknown (zero flags, window 65535), as the comment says.
 * A VLAN tag the kernel held beside the frame goes back after the MAC
 * addresses.
 */
static uint32_t rebuild(const struct zt_ev_xdp_drop *ev, uint8_t *b)
{
	uint32_t l3 = ev->vlan_proto ? 18 : 14, l4, n;
	uint32_t l4len = ev->proto == 6						? 20 :
			 (ev->proto == 17 || ev->proto == 1 || ev->proto == 58) ? 8 :
										  0;
	uint32_t iplen = (ev->family == 6 ? 40 : 20) + l4len;

	memset(b, 0, 128);
	if (ev->vlan_proto)
		zt_vlan_tag_put(b + 12, ev->vlan_proto, ev->vlan_tci);
	if (ev->family == 6) {
		b[l3 - 2] = 0x86;
		b[l3 - 1] = 0xdd;
		b[l3] = 0x60;
		b[l3 + 4] = (uint8_t)((iplen > 40 ? iplen - 40 : 0) >> 8);
		b[l3 + 5] = (uint8_t)(iplen > 40 ? iplen - 40 : 0);
		b[l3 + 6] = ev->proto;
		memcpy(b + l3 + 8, ev->saddr, 16);
		memcpy(b + l3 + 24, ev->daddr, 16);
		l4 = l3 + 40;
	} else {
		b[l3 - 2] = 0x08;
		b[l3] = 0x45;
		b[l3 + 2] = (uint8_t)(iplen >> 8);
		b[l3 + 3] = (uint8_t)iplen;
		b[l3 + 9] = ev->proto;
		memcpy(b + l3 + 12, ev->saddr, 4);
		memcpy(b + l3 + 16, ev->daddr, 4);
		{
			uint16_t c = csum16(b + l3, 20);

			b[l3 + 10] = (uint8_t)(c >> 8);
			b[l3 + 11] = (uint8_t)c;
		}
		l4 = l3 + 20;
	}
	switch (ev->proto) {
	case 6:
		b[l4] = (uint8_t)(ev->sport >> 8);
		b[l4 + 1] = (uint8_t)ev->sport;
		b[l4 + 2] = (uint8_t)(ev->dport >> 8);
		b[l4 + 3] = (uint8_t)ev->dport;
		b[l4 + 12] = 5 << 4;
		b[l4 + 14] = 0xff;
		b[l4 + 15] = 0xff;
		n = l4 + 20;
		break;
	case 17:
		b[l4] = (uint8_t)(ev->sport >> 8);
		b[l4 + 1] = (uint8_t)ev->sport;
		b[l4 + 2] = (uint8_t)(ev->dport >> 8);
		b[l4 + 3] = (uint8_t)ev->dport;
		b[l4 + 5] = 8;
		n = l4 + 8;
		break;
	case 1:
	case 58:
		b[l4] = (uint8_t)ev->sport; /* the event carries type and code in the ports */
		b[l4 + 1] = (uint8_t)ev->dport;
		n = l4 + 8;
		break;
	default:
		n = l4;
	}
	return n;
}

int zt_forensics_xdp_drop(struct zt_forensics *f, const struct zt_ev_xdp_drop *ev, uint64_t ts,
			  const char *why)
{
	uint8_t b[128];
	char comment[200];
	struct cap *c;
	uint32_t n;
	int r;

	if (ev->family != 4 && ev->family != 6)
		return 0;
	pthread_mutex_lock(&f->lock);
	c = f->watch.n ? watched_cap(f, ev->family, ev->saddr) : NULL;
	if (!c) {
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	n = rebuild(ev, b);
	snprintf(comment, sizeof(comment),
		 "verdict=drop reason=%s; rebuilt from a sampled XDP drop event (addresses, ports "
		 "and length only: TCP flags, window and payload unknown); stands for %u drops",
		 why ? why : "?", ev->represents ? ev->represents : 1);
	r = cap_write(f, c, ts, ev->ifindex, true, comment, b, n,
		      ev->pkt_len > n ? ev->pkt_len : n);
	if (r > 0)
		f->st.synthesized++;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static uint64_t total_bytes(struct zt_forensics *f)
{
	uint64_t t = 0;

	for (size_t i = 0; i < f->n_files; i++)
		t += f->files[i].bytes;
	return t;
}

void zt_forensics_tick(struct zt_forensics *f, uint64_t now)
{
	bool due;

	/*
	 * The packets' writer (the ring-buffer consumer, compressing a flood's
	 * captures) holds the lock often: the loop does not wait for it, it
	 * flushes and rotates at a later tick, and waits only after
	 * TICK_SKIP_MAX ticks in a row found it taken.
	 */
	if (pthread_mutex_trylock(&f->lock)) {
		if (++f->tick_skipped < TICK_SKIP_MAX)
			return;
		pthread_mutex_lock(&f->lock);
	}
	f->tick_skipped = 0;
	/*
	 * Due at flush_ns, less half of it: ticks come about as often as
	 * flush_ns and a little late or early, and an exact comparison then
	 * flushed on every other tick only (a capture readable 2 s late).
	 */
	due = now - f->last_flush >= f->c.flush_ns - f->c.flush_ns / 2;
	for (uint32_t i = 0; i < f->c.max_captures; i++) {
		struct cap *c = &f->caps[i];

		if (!c->used || !c->w)
			continue;
		if (due && zt_pcapng_flush(c->w) < 0)
			f->st.write_errors++;
		f->files[c->file].bytes = zt_pcapng_size(c->w);
		if (f->files[c->file].bytes >= f->c.file_bytes) {
			cap_close_file(f, c);
			if (cap_open_file(f, c) < 0)
				f->st.write_errors++;
		}
	}
	if (due)
		f->last_flush = now;
	/*
	 * Oldest first, until within both bounds. Each open capture reopens at
	 * most once per tick, so bounds smaller than the open captures' headers
	 * end the loop instead of chasing each other.
	 */
	for (size_t budget = f->n_files + f->c.max_captures;
	     budget && f->n_files &&
	     (total_bytes(f) > f->c.max_bytes || f->n_files > f->c.max_files);
	     budget--) {
		struct file fl = f->files[0];
		char path[PATH_MAX + 100];
		struct cap *c = fl.cap >= 0 ? &f->caps[fl.cap] : NULL;

		if (c) {
			cap_close_file(f, c);
			fl = f->files[0];
		}
		file_path(f, &fl, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			f->st.write_errors++;
		report(f, &fl, NULL, "removed");
		file_del(f, 0);
		f->st.files_removed++;
		/* An open capture goes on in a new part (unless that alone is over the bound). */
		if (c && c->used && f->c.file_bytes < f->c.max_bytes && f->c.max_files > 1 &&
		    cap_open_file(f, c) < 0)
			f->st.write_errors++;
	}
	pthread_mutex_unlock(&f->lock);
}

void zt_forensics_get_stats(struct zt_forensics *f, struct zt_forensics_stats *st)
{
	pthread_mutex_lock(&f->lock);
	*st = f->st;
	st->bytes = total_bytes(f);
	st->files = f->n_files;
	st->captures = 0;
	for (uint32_t i = 0; i < f->c.max_captures; i++)
		st->captures += f->caps[i].used;
	pthread_mutex_unlock(&f->lock);
}

void zt_forensics_free(struct zt_forensics *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	for (uint32_t i = 0; i < f->c.max_captures; i++)
		if (f->caps[i].used)
			cap_close_file(f, &f->caps[i]);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_destroy(&f->lock);
	zt_dtable_free(&f->watch);
	free(f->caps);
	free(f->files);
	free(f);
}
