// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policy applier (polcompile.h): a compiled policy into the slot not in
 * use, then one atomic store of pol_state.gen.
 *
 * For each slot the applier keeps a sorted record of every (key, value) it
 * left there, so writing a slot is a diff against what it holds (from two
 * generations ago): keys that went are deleted first (which also makes
 * room), changed and new keys written. A slot whose contents are unknown
 * (a fresh applier over pinned maps, or a failed clean-up) is read back
 * from the kernel with bpf_map_get_next_key first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "seg/polcompile.h"
#include "agent/util.h"

enum { M_IPC4 = 0, M_IPC6, M_ISO, M_POL, M_MAX };

static const struct {
	const char *name;
	size_t ksz, vsz;
	size_t slot_off; /* offset of the slot byte in the key */
	bool hash; /* can batch */
} mdef[M_MAX] = {
	[M_IPC4] = { ZT_PIN_IPCACHE_V4, sizeof(struct zt_ipcache_key4),
		     sizeof(struct zt_ipcache_val), offsetof(struct zt_ipcache_key4, slot), false },
	[M_IPC6] = { ZT_PIN_IPCACHE_V6, sizeof(struct zt_ipcache_key6),
		     sizeof(struct zt_ipcache_val), offsetof(struct zt_ipcache_key6, slot), false },
	[M_ISO] = { ZT_PIN_POL_ISOLATION, sizeof(struct zt_iso_key), sizeof(struct zt_iso_val),
		    offsetof(struct zt_iso_key, slot), true },
	[M_POL] = { ZT_PIN_POLICY, sizeof(struct zt_pol_key), sizeof(struct zt_pol_val),
		    offsetof(struct zt_pol_key, data), false },
};

/* (key, value) records, sorted by key bytes. */
struct kvs {
	uint8_t *d;
	size_t n, cap;
	size_t ksz, vsz;
};

struct slot_rec {
	bool known;
	struct kvs m[M_MAX];
};

struct zt_polapply {
	int fd[M_MAX];
	int state_fd;
	uint32_t max_entries[M_MAX];
	struct zt_pol_state *state;
	size_t state_len;
	uint32_t gen;
	struct slot_rec slot[2];
};

static size_t rec_size(const struct kvs *k)
{
	return k->ksz + k->vsz;
}

static uint8_t *rec_at(const struct kvs *k, size_t i)
{
	return k->d + i * rec_size(k);
}

static int kvs_push(struct kvs *k, const void *key, const void *val)
{
	if (k->n == k->cap) {
		size_t nc = k->cap ? k->cap * 2 : 256;
		uint8_t *nd = realloc(k->d, nc * rec_size(k));

		if (!nd)
			return -ENOMEM;
		k->d = nd;
		k->cap = nc;
	}
	memcpy(rec_at(k, k->n), key, k->ksz);
	memcpy(rec_at(k, k->n) + k->ksz, val, k->vsz);
	k->n++;
	return 0;
}

static __thread size_t sort_ksz;

static int rec_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sort_ksz);
}

static void kvs_sort(struct kvs *k)
{
	sort_ksz = k->ksz;
	if (k->n > 1)
		qsort(k->d, k->n, rec_size(k), rec_cmp);
}

static void kvs_reset(struct kvs *k, size_t ksz, size_t vsz)
{
	free(k->d);
	memset(k, 0, sizeof(*k));
	k->ksz = ksz;
	k->vsz = vsz;
}

static void slot_reset(struct slot_rec *s, bool known)
{
	for (int m = 0; m < M_MAX; m++)
		kvs_reset(&s->m[m], mdef[m].ksz, mdef[m].vsz);
	s->known = known;
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len) < 0)
		return -errno;
	return 0;
}

int zt_polapply_new(struct zt_polapply **out, const struct zt_polmaps *maps, char *err,
		    size_t errlen)
{
	struct zt_polapply *a;
	struct bpf_map_info info;
	long page = sysconf(_SC_PAGESIZE);
	int r;

	if (!out || !maps) {
		zt_seterr(err, errlen, "policy applier: missing maps");
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		zt_seterr(err, errlen, "policy applier: out of memory");
		return -ENOMEM;
	}
	a->fd[M_IPC4] = maps->ipc4_fd;
	a->fd[M_IPC6] = maps->ipc6_fd;
	a->fd[M_ISO] = maps->iso_fd;
	a->fd[M_POL] = maps->policy_fd;
	a->state_fd = maps->state_fd;
	for (int m = 0; m < M_MAX; m++) {
		r = map_info(a->fd[m], &info);
		if (r < 0) {
			zt_seterr(err, errlen, "map %s (fd %d): %s", mdef[m].name, a->fd[m],
				  strerror(-r));
			goto fail;
		}
		if (info.key_size != mdef[m].ksz || info.value_size != mdef[m].vsz) {
			zt_seterr(err, errlen,
				  "map %s: key/value size %u/%u, expected %zu/%zu (ztagent.h)",
				  mdef[m].name, info.key_size, info.value_size, mdef[m].ksz,
				  mdef[m].vsz);
			r = -EINVAL;
			goto fail;
		}
		a->max_entries[m] = info.max_entries;
	}
	r = map_info(a->state_fd, &info);
	if (r == 0 && (info.type != BPF_MAP_TYPE_ARRAY || !(info.map_flags & BPF_F_MMAPABLE) ||
		       info.value_size < sizeof(struct zt_pol_state) || info.max_entries < 1))
		r = -EINVAL;
	if (r < 0) {
		zt_seterr(err, errlen,
			  "map %s (fd %d): %s; it must be a BPF_F_MMAPABLE array of struct "
			  "zt_pol_state",
			  ZT_PIN_POL_STATE, a->state_fd, strerror(-r));
		goto fail;
	}
	a->state_len = (size_t)page;
	a->state = mmap(NULL, a->state_len, PROT_READ | PROT_WRITE, MAP_SHARED, a->state_fd, 0);
	if (a->state == MAP_FAILED) {
		r = -errno;
		a->state = NULL;
		zt_seterr(err, errlen, "map %s: mmap: %s", ZT_PIN_POL_STATE, strerror(-r));
		goto fail;
	}
	a->gen = __atomic_load_n(&a->state->gen, __ATOMIC_ACQUIRE);
	slot_reset(&a->slot[0], false);
	slot_reset(&a->slot[1], false);
	*out = a;
	return 0;
fail:
	free(a);
	return r;
}

void zt_polapply_free(struct zt_polapply *a)
{
	if (!a)
		return;
	if (a->state)
		munmap(a->state, a->state_len);
	for (int s = 0; s < 2; s++)
		for (int m = 0; m < M_MAX; m++)
			free(a->slot[s].m[m].d);
	free(a);
}

uint32_t zt_polapply_gen(const struct zt_polapply *a)
{
	return a ? a->gen : 0;
}

/* Reads back what the kernel holds in slot s (a fresh applier over pinned maps). */
static int scan_slot(struct zt_polapply *a, uint8_t s, char *err, size_t errlen)
{
	struct slot_rec *rec = &a->slot[s];
	uint8_t key[64], next[64], val[64];

	slot_reset(rec, false);
	for (int m = 0; m < M_MAX; m++) {
		bool first = true;

		while (bpf_map_get_next_key(a->fd[m], first ? NULL : key, next) == 0) {
			first = false;
			memcpy(key, next, mdef[m].ksz);
			if (key[mdef[m].slot_off] != s)
				continue;
			if (bpf_map_lookup_elem(a->fd[m], key, val) < 0) {
				if (errno == ENOENT)
					continue;
				zt_seterr(err, errlen, "map %s: reading slot %u: %s", mdef[m].name,
					  s, strerror(errno));
				return -errno;
			}
			if (kvs_push(&rec->m[m], key, val) < 0) {
				zt_seterr(err, errlen, "policy applier: out of memory");
				return -ENOMEM;
			}
		}
		if (errno != ENOENT) {
			zt_seterr(err, errlen, "map %s: walking keys: %s", mdef[m].name,
				  strerror(errno));
			return -errno;
		}
		kvs_sort(&rec->m[m]);
	}
	rec->known = true;
	return 0;
}

/* The compiled policy as sorted records for slot s. */
static int build_slot(const struct zt_compiled *c, uint8_t s, struct slot_rec *out)
{
	int r = 0;

	slot_reset(out, true);
	for (size_t i = 0; r == 0 && i < c->n_ipc; i++) {
		const struct zt_polc_ipc_entry *e = &c->ipc[i];

		if (e->family == AF_INET) {
			struct zt_ipcache_key4 k = { 0 };

			k.prefixlen = 8u + e->plen;
			k.slot = s;
			memcpy(k.addr, e->addr, 4);
			r = kvs_push(&out->m[M_IPC4], &k, &e->val);
		} else {
			struct zt_ipcache_key6 k = { 0 };

			k.prefixlen = 8u + e->plen;
			k.slot = s;
			memcpy(k.addr, e->addr, 16);
			r = kvs_push(&out->m[M_IPC6], &k, &e->val);
		}
	}
	for (size_t i = 0; r == 0 && i < c->n_iso; i++) {
		struct zt_iso_key k = { 0 };
		struct zt_iso_val v = c->iso[i].val;

		k.slot = s;
		k.dir = c->iso[i].dir;
		k.identity = c->iso[i].identity;
		v._pad = 0;
		v._pad2 = 0;
		r = kvs_push(&out->m[M_ISO], &k, &v);
	}
	for (size_t i = 0; r == 0 && i < c->n_pol; i++) {
		const struct zt_polc_pol_entry *e = &c->pol[i];
		struct zt_pol_key k;
		struct zt_pol_val v = e->val;

		zt_pol_key_fill(&k, e->prefixlen, s, e->dir, e->local_id, e->peer_id, e->proto,
				e->port);
		v._pad = 0;
		r = kvs_push(&out->m[M_POL], &k, &v);
	}
	for (int m = 0; m < M_MAX; m++)
		kvs_sort(&out->m[m]);
	return r;
}

/* Deletes every key of k from map m; returns the first hard error (ENOENT is fine). */
static int delete_all(struct zt_polapply *a, int m, const struct kvs *k)
{
	int r = 0;

	for (size_t i = 0; i < k->n; i++)
		if (bpf_map_delete_elem(a->fd[m], rec_at(k, i)) < 0 && errno != ENOENT && !r)
			r = -errno;
	return r;
}

/*
 * One batch of map operations: n keys (and values, for writes) of map m.
 * LPM tries take one syscall per key and most of a syscall's cost is not
 * under the trie's lock, so big batches are split in two halves that run
 * on two threads (ops[] of the first half run on a worker, the rest here).
 */
struct op {
	int fd;
	int m;
	bool del;
	const uint8_t *keys;
	const uint8_t *vals;
	size_t n;
	size_t done; /* out: operations that succeeded before the error */
	int err; /* out: -errno or 0 */
};

#define PARALLEL_MIN 2048 /* operations in all before a second thread pays off */

static void op_run(struct op *o)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	size_t ksz = mdef[o->m].ksz, vsz = mdef[o->m].vsz;

	o->done = 0;
	o->err = 0;
	if (!o->del && mdef[o->m].hash && o->n) {
		__u32 cnt = (__u32)o->n;

		if (bpf_map_update_batch(o->fd, o->keys, o->vals, &cnt, &opts) == 0) {
			o->done = o->n;
			return;
		}
		/* Fall back to single updates, which also pinpoint the error. */
	}
	for (; o->done < o->n; o->done++) {
		const uint8_t *k = o->keys + o->done * ksz;

		if (o->del) {
			if (bpf_map_delete_elem(o->fd, k) < 0 && errno != ENOENT) {
				o->err = -errno;
				return;
			}
		} else if (bpf_map_update_elem(o->fd, k, o->vals + o->done * vsz, BPF_ANY) < 0) {
			o->err = -errno;
			return;
		}
	}
}

struct op_list {
	struct op *v;
	size_t n;
};

static void *op_worker(void *arg)
{
	struct op_list *l = arg;

	for (size_t i = 0; i < l->n; i++)
		op_run(&l->v[i]);
	return NULL;
}

/*
 * Runs ops[0..n) (each map at most once) and returns the index of the first
 * failed op or -1. With enough work, each op is split and half runs on a
 * second thread; split ops are merged back so that the caller sees one op
 * per map (done counts both halves).
 */
static ssize_t ops_run(struct op *ops, size_t n)
{
	struct op half[M_MAX];
	struct op_list l = { half, 0 };
	size_t total = 0;
	pthread_t th;
	bool threaded = false;

	for (size_t i = 0; i < n; i++)
		total += ops[i].n;
	if (total >= PARALLEL_MIN && n <= M_MAX && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
		for (size_t i = 0; i < n; i++) {
			half[i] = ops[i];
			half[i].n = ops[i].n / 2;
			ops[i].keys += half[i].n * mdef[ops[i].m].ksz;
			if (ops[i].vals)
				ops[i].vals += half[i].n * mdef[ops[i].m].vsz;
			ops[i].n -= half[i].n;
		}
		l.n = n;
		threaded = pthread_create(&th, NULL, op_worker, &l) == 0;
		if (!threaded)
			op_worker(&l);
	}
	for (size_t i = 0; i < n; i++)
		op_run(&ops[i]);
	if (threaded)
		pthread_join(th, NULL);
	for (size_t i = 0; i < l.n; i++) {
		/* Merge the halves back: the first half's error comes first. */
		ops[i].keys -= half[i].n * mdef[ops[i].m].ksz;
		if (ops[i].vals)
			ops[i].vals -= half[i].n * mdef[ops[i].m].vsz;
		ops[i].n += half[i].n;
		if (half[i].err) {
			ops[i].err = half[i].err;
			ops[i].done = half[i].done;
		} else {
			ops[i].done += half[i].n;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (ops[i].err)
			return (ssize_t)i;
	return -1;
}

/* Clears slot s entirely after a failed write: old records and the new ones. */
static void clear_slot(struct zt_polapply *a, uint8_t s, const struct slot_rec *nw)
{
	bool ok = true;

	for (int m = 0; m < M_MAX; m++) {
		if (delete_all(a, m, &a->slot[s].m[m]) < 0)
			ok = false;
		if (delete_all(a, m, &nw->m[m]) < 0)
			ok = false;
	}
	/* When something could not be deleted, read the slot back next time. */
	slot_reset(&a->slot[s], ok);
}

struct opbuf {
	uint8_t *keys;
	uint8_t *vals;
};

static void bufs_free(struct opbuf *b)
{
	for (int m = 0; m < M_MAX; m++) {
		free(b[m].keys);
		free(b[m].vals);
		b[m].keys = b[m].vals = NULL;
	}
}

int zt_polapply_apply(struct zt_polapply *a, const struct zt_compiled *c, uint32_t *gen, char *err,
		      size_t errlen)
{
	struct slot_rec nw = { 0 };
	struct op ops[M_MAX];
	struct opbuf buf[M_MAX] = { 0 };
	size_t n_ops;
	ssize_t failed;
	uint32_t ngen;
	uint8_t s;
	int r = 0;

	if (!a || !c) {
		zt_seterr(err, errlen, "policy applier: nothing to apply");
		return -EINVAL;
	}
	ngen = a->gen + 1;
	if (ngen == 0)
		ngen = 2; /* 0 means "no policy"; keep the slot alternating */
	s = ngen & 1;
	if (!a->slot[s].known) {
		r = scan_slot(a, s, err, errlen);
		if (r < 0)
			return r;
	}
	r = build_slot(c, s, &nw);
	if (r < 0) {
		zt_seterr(err, errlen, "policy applier: out of memory");
		slot_reset(&nw, false);
		return r;
	}
	/* 1. Delete what slot s holds and the new generation lacks (this makes room). */
	n_ops = 0;
	for (int m = 0; m < M_MAX; m++) {
		const struct kvs *o = &a->slot[s].m[m], *n = &nw.m[m];
		size_t i = 0, j = 0, cnt = 0;

		buf[m].keys = o->n ? malloc(o->n * o->ksz) : NULL;
		if (o->n && !buf[m].keys)
			goto nomem;
		while (i < o->n) {
			int cmp = j < n->n ? memcmp(rec_at(o, i), rec_at(n, j), o->ksz) : -1;

			if (cmp > 0) {
				j++;
				continue;
			}
			if (cmp < 0)
				memcpy(buf[m].keys + cnt++ * o->ksz, rec_at(o, i), o->ksz);
			else
				j++;
			i++;
		}
		if (cnt)
			ops[n_ops++] = (struct op){
				.fd = a->fd[m], .m = m, .del = true, .keys = buf[m].keys, .n = cnt
			};
	}
	failed = ops_run(ops, n_ops);
	if (failed >= 0) {
		r = ops[failed].err;
		zt_seterr(err, errlen, "map %s: deleting from slot %u: %s",
			  mdef[ops[failed].m].name, s, strerror(-r));
		goto fail;
	}
	/* 2. Write what is new or changed (ipcache, isolation, policy) in the slot. */
	n_ops = 0;
	for (int m = 0; m < M_MAX; m++) {
		const struct kvs *o = &a->slot[s].m[m], *n = &nw.m[m];
		size_t i = 0, cnt = 0;

		free(buf[m].keys);
		buf[m].keys = n->n ? malloc(n->n * n->ksz) : NULL;
		buf[m].vals = n->n ? malloc(n->n * n->vsz) : NULL;
		if (n->n && (!buf[m].keys || !buf[m].vals))
			goto nomem;
		for (size_t j = 0; j < n->n; j++) {
			const uint8_t *nr = rec_at(n, j);
			int cmp = 1;

			while (i < o->n && (cmp = memcmp(rec_at(o, i), nr, o->ksz)) < 0)
				i++;
			if (i < o->n && cmp == 0 && memcmp(rec_at(o, i), nr, rec_size(o)) == 0)
				continue; /* already there with this value */
			memcpy(buf[m].keys + cnt * n->ksz, nr, n->ksz);
			memcpy(buf[m].vals + cnt * n->vsz, nr + n->ksz, n->vsz);
			cnt++;
		}
		if (cnt)
			ops[n_ops++] = (struct op){ .fd = a->fd[m],
						    .m = m,
						    .keys = buf[m].keys,
						    .vals = buf[m].vals,
						    .n = cnt };
	}
	failed = ops_run(ops, n_ops);
	if (failed >= 0) {
		const struct op *f = &ops[failed];

		r = f->err;
		if (r == -E2BIG || r == -ENOSPC || r == -ENOMEM)
			zt_seterr(err, errlen,
				  "map %s is full (max_entries %u): cannot write entry %zu of %zu "
				  "changed (%zu in the new generation) into slot %u; the published "
				  "slot %u keeps its entries: %s",
				  mdef[f->m].name, a->max_entries[f->m], f->done + 1, f->n,
				  nw.m[f->m].n, s, s ^ 1, strerror(-r));
		else
			zt_seterr(err, errlen, "map %s: writing slot %u: %s", mdef[f->m].name, s,
				  strerror(-r));
		goto fail;
	}
	bufs_free(buf);
	/* 3. Publish: one release store; packets read gen once. */
	__atomic_store_n(&a->state->gen, ngen, __ATOMIC_RELEASE);
	a->gen = ngen;
	for (int m = 0; m < M_MAX; m++)
		free(a->slot[s].m[m].d);
	a->slot[s] = nw;
	if (gen)
		*gen = ngen;
	return 0;
nomem:
	r = -ENOMEM;
	zt_seterr(err, errlen, "policy applier: out of memory");
fail:
	bufs_free(buf);
	clear_slot(a, s, &nw);
	slot_reset(&nw, false);
	return r;
}

/* ---- drift: the kernel's maps against the applier's records ---- */

/* The index of key's record in k, or -1. */
static ssize_t rec_find(const struct kvs *k, const uint8_t *key)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(rec_at(k, mid), key, k->ksz);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void note_first(struct zt_polapply_drift *d, int m, const char *what)
{
	if (!d->first[0])
		snprintf(d->first, sizeof(d->first), "%s %s", mdef[m].name, what);
}

/*
 * Every key of both slots whose contents the applier knows: an entry it did
 * not write is deleted, one it wrote and finds changed or missing is
 * written again; a published generation changed under it is stored back.
 * The kernel walk is the cost (one get_next_key and one lookup a key), so
 * this runs where the applier runs, never beside an apply.
 */
/* Ask cb (or go by repair) whether this difference is repaired; tells cb how it went. */
static bool diff_may(const struct zt_polapply_drift_cb *cb, bool repair, int m, const uint8_t *key,
		     const char *what, struct zt_polapply_diff *df)
{
	*df = (struct zt_polapply_diff){ .kind = m == M_IPC4 || m == M_IPC6,
					 .map = mdef[m].name,
					 .key = key,
					 .ksz = mdef[m].ksz,
					 .what = what };
	return cb ? cb->may && cb->may(cb->ctx, df) : repair;
}

static void diff_done(const struct zt_polapply_drift_cb *cb, const struct zt_polapply_diff *df,
		      bool repaired, int err)
{
	if (cb && cb->done)
		cb->done(cb->ctx, df, repaired, err);
}

int zt_polapply_verify(struct zt_polapply *a, bool repair, struct zt_polapply_drift *d)
{
	return zt_polapply_verify_cb(a, repair ? NULL : &(struct zt_polapply_drift_cb){ 0 }, d);
}

int zt_polapply_verify_cb(struct zt_polapply *a, const struct zt_polapply_drift_cb *cb,
			  struct zt_polapply_drift *d)
{
	struct zt_polapply_diff df;
	bool repair = !cb;
	uint8_t key[64], next[64], val[64];
	uint8_t *hit[2] = { NULL, NULL };
	uint32_t kgen;
	int r = 0;

	memset(d, 0, sizeof(*d));
	if (!a)
		return 0;
	kgen = __atomic_load_n(&a->state->gen, __ATOMIC_ACQUIRE);
	if (kgen != a->gen) {
		d->gen_changed = true;
		snprintf(d->first, sizeof(d->first), "%s gen %u, expected %u", ZT_PIN_POL_STATE,
			 kgen, a->gen);
		df = (struct zt_polapply_diff){ .kind = 0,
						.map = ZT_PIN_POL_STATE,
						.key = (const uint8_t *)"",
						.ksz = 0,
						.what = "published generation changed" };
		if (cb ? cb->may && cb->may(cb->ctx, &df) : repair) {
			__atomic_store_n(&a->state->gen, a->gen, __ATOMIC_RELEASE);
			diff_done(cb, &df, true, 0);
		} else {
			diff_done(cb, &df, false, 0);
		}
	}
	for (int m = 0; m < M_MAX && r != -ENOMEM; m++) {
		const size_t ksz = mdef[m].ksz, vsz = mdef[m].vsz;
		const int ix = m == M_IPC4 || m == M_IPC6;
		bool first = true;

		/*
		 * Which records the walk met: a lookup cannot tell a deleted
		 * LPM entry from a shorter prefix that covers its key.
		 */
		for (int s = 0; s < 2; s++) {
			free(hit[s]);
			hit[s] = calloc(a->slot[s].m[m].n + 1, 1);
			if (!hit[s])
				r = -ENOMEM;
		}
		if (r == -ENOMEM)
			break;
		while (bpf_map_get_next_key(a->fd[m], first ? NULL : key, next) == 0) {
			const struct slot_rec *sr;
			ssize_t at;
			uint8_t s;

			first = false;
			memcpy(key, next, ksz);
			s = key[mdef[m].slot_off] & 1;
			sr = &a->slot[s];
			if (!sr->known)
				continue;
			at = rec_find(&sr->m[m], key);
			if (at < 0) {
				d->extra[ix]++;
				note_first(d, m, "entry added");
				/* Deleting the current key loses the walk's place: start over. */
				if (diff_may(cb, repair, m, key, "entry added", &df)) {
					int e = bpf_map_delete_elem(a->fd[m], key) < 0 ? -errno : 0;

					diff_done(cb, &df, e == 0, e);
					if (e == 0) {
						first = true;
						memset(hit[0], 0, a->slot[0].m[m].n);
						memset(hit[1], 0, a->slot[1].m[m].n);
					}
				} else {
					diff_done(cb, &df, false, 0);
				}
				continue;
			}
			hit[s][at] = 1;
			if (bpf_map_lookup_elem(a->fd[m], key, val) < 0) {
				hit[s][at] = 0; /* deleted under us */
				continue;
			}
			if (memcmp(val, rec_at(&sr->m[m], (size_t)at) + ksz, vsz)) {
				d->changed[ix]++;
				note_first(d, m, "entry changed");
				if (diff_may(cb, repair, m, key, "entry changed", &df)) {
					int e = bpf_map_update_elem(a->fd[m], key,
								    rec_at(&sr->m[m], (size_t)at) +
									    ksz,
								    BPF_ANY) < 0 ?
							-errno :
							0;

					diff_done(cb, &df, e == 0, e);
					if (e && !r)
						r = e;
				} else {
					diff_done(cb, &df, false, 0);
				}
			}
		}
		for (int s = 0; s < 2; s++) {
			const struct kvs *k = &a->slot[s].m[m];

			if (!a->slot[s].known)
				continue;
			for (size_t i = 0; i < k->n; i++) {
				if (hit[s][i])
					continue;
				d->missing[ix]++;
				note_first(d, m, "entry deleted");
				if (diff_may(cb, repair, m, rec_at(k, i), "entry deleted", &df)) {
					int e = bpf_map_update_elem(a->fd[m], rec_at(k, i),
								    rec_at(k, i) + ksz,
								    BPF_ANY) < 0 ?
							-errno :
							0;

					diff_done(cb, &df, e == 0, e);
					if (e && !r)
						r = e;
				} else {
					diff_done(cb, &df, false, 0);
				}
			}
		}
	}
	free(hit[0]);
	free(hit[1]);
	return r;
}

int zt_polapply_check_key(struct zt_polapply *a, const char *map, const uint8_t *key, size_t ksz,
			  const struct zt_polapply_drift_cb *cb)
{
	uint8_t val[64];
	const struct slot_rec *sr;
	struct zt_polapply_diff df;
	const uint8_t *want;
	ssize_t at;
	int m, e;

	if (!a)
		return -ENOENT;
	for (m = 0; m < M_MAX && strcmp(mdef[m].name, map); m++)
		;
	if (m == M_MAX)
		return -ENOENT;
	if (ksz != mdef[m].ksz)
		return -EINVAL;
	sr = &a->slot[key[mdef[m].slot_off] & 1];
	if (!sr->known)
		return 0;
	at = rec_find(&sr->m[m], key);
	if (at < 0) {
		/* Not ours: a delete is exact, in a trie too (ENOENT: it is gone already). */
		if (!diff_may(cb, false, m, key, "entry added", &df))
			return 0;
		e = bpf_map_delete_elem(a->fd[m], key) < 0 ? -errno : 0;
		if (e != -ENOENT)
			diff_done(cb, &df, e == 0, e);
		return 0;
	}
	want = rec_at(&sr->m[m], (size_t)at) + mdef[m].ksz;
	/* BPF_NOEXIST succeeds only when this very key was missing (a trie's lookup would not tell). */
	if (!diff_may(cb, false, m, key, "entry deleted", &df))
		return 0;
	e = bpf_map_update_elem(a->fd[m], key, want, BPF_NOEXIST) < 0 ? -errno : 0;
	if (e != -EEXIST) {
		diff_done(cb, &df, e == 0, e);
		return 0;
	}
	/* It exists: a lookup of its own key finds it (no longer prefix counts). */
	if (bpf_map_lookup_elem(a->fd[m], key, val) < 0 || !memcmp(val, want, mdef[m].vsz))
		return 0;
	df.what = "entry changed";
	e = bpf_map_update_elem(a->fd[m], key, want, BPF_EXIST) < 0 ? -errno : 0;
	diff_done(cb, &df, e == 0, e);
	return 0;
}
