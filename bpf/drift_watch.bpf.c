// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Drift watch: a write to one of the agent's watched maps (blocklist,
 * block_notes, endpoints, policy, pol_isolation, ipcache) by any other
 * process (bpftool map update/delete, a script), reported to the daemon as
 * it happens, so the repair does not wait for a tick or a whole-map read (a
 * million entries take ~250 ms of CPU to read). On the bpf() syscall's tracepoints
 * (this platform refuses fentry and BPF-LSM programs: EPERM): the entry of
 * a call records the map and the key (read from the caller's memory), its
 * exit sends them once the write is done, so the daemon reads the result,
 * not the state before it. The agent's own writes are skipped. A batch
 * write's keys are read at its exit from the caller's keys array (the
 * count the kernel wrote back: what it processed, for lookup-and-delete
 * too), up to ZT_DW_BATCH_KEYS; a bigger batch is reported without keys and
 * the daemon reads the whole map.
 *
 * Two ways in, the daemon loads one: syscalls/sys_{enter,exit}_bpf, which
 * run for bpf() calls only, or, when the tracepoint's id cannot be read
 * from tracefs, the raw sys_enter/sys_exit, which run for every syscall
 * (a compare on entry, a load on exit; ~0.25 us a syscall on the 2-core
 * VM, where a getppid() costs ~2.5 us).
 */
#include <linux/bpf.h>
#include <asm/unistd.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "ztagent.h"

/* As much of the kernel's structs as the walk from an fd to its map needs; CO-RE finds the offsets. */
struct bpf_map___zt {
	__u32 key_size;
	__u32 id;
} __attribute__((preserve_access_index));
struct file___zt {
	void *private_data;
} __attribute__((preserve_access_index));
struct fdtable___zt {
	unsigned int max_fds;
	struct file___zt **fd;
} __attribute__((preserve_access_index));
struct files_struct___zt {
	struct fdtable___zt *fdt;
} __attribute__((preserve_access_index));
struct task_struct___zt {
	struct files_struct___zt *files;
} __attribute__((preserve_access_index));

/* The caller's registers at the syscall (x86-64: di, si the first two arguments). */
struct pt_regs___zt {
	unsigned long di;
	unsigned long si;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

/* Set by the daemon before load. */
const volatile __u32 agent_tgid = 0;
const volatile __u32 watch_ids[ZT_DW_MAPS] = {};

/* A write under way, by thread: the event so far and, for a batch, where its keys are. */
struct dw_pend {
	struct zt_dw_event e;
	__u64 uattr;
	__u64 keys;
	__u32 batch;
	__u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct dw_pend);
} dw_pending SEC(".maps");
/* Entries in dw_pending: while 0, a syscall's exit looks no further. */
__u64 dw_n_pending = 0;
/* Writes seen but not reported (the ring was full): the daemon reads the maps whole. */
__u64 dw_lost = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024); /* ~160 batch records of 256 keys */
} dw_events SEC(".maps");

/* The map behind the caller's fd, NULL when it is none we can read. */
static struct bpf_map___zt *fd_map(__u32 fd)
{
	struct task_struct___zt *t = (void *)bpf_get_current_task();
	struct fdtable___zt *fdt = BPF_CORE_READ(t, files, fdt);
	struct file___zt **fds, *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), fds + fd) || !f)
		return NULL;
	return BPF_CORE_READ(f, private_data);
}

static __always_inline int on_enter(__u64 cmd, __u64 uattr)
{
	struct dw_pend p = {};
	struct bpf_map___zt *m;
	__u64 id;
	union {
		struct {
			__u32 map_fd;
			__u32 _pad;
			__u64 key;
		} elem;
		struct {
			__u64 in_batch, out_batch, keys, values;
			__u32 count, map_fd;
		} batch;
	} a = {};
	int batch = 0;
	__u32 mid, ks, i;

	id = bpf_get_current_pid_tgid();
	if ((__u32)(id >> 32) == agent_tgid)
		return 0;
	switch (cmd) {
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
		break;
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
		batch = 1;
		break;
	default:
		return 0;
	}
	if (bpf_probe_read_user(&a, sizeof(a), (void *)uattr))
		return 0;
	m = fd_map(batch ? a.batch.map_fd : a.elem.map_fd);
	if (!m)
		return 0;
	mid = BPF_CORE_READ(m, id);
	for (i = 0; i < ZT_DW_MAPS; i++)
		if (watch_ids[i] && watch_ids[i] == mid)
			break;
	if (i == ZT_DW_MAPS)
		return 0;
	p.e.cmd = (__u32)cmd;
	p.e.slot = i;
	p.e.pid = (__u32)(id >> 32);
	bpf_get_current_comm(p.e.comm, sizeof(p.e.comm));
	ks = BPF_CORE_READ(m, key_size);
	if (ks > ZT_DW_KEY_LEN)
		ks = 0; /* not a key we know: reported without it */
	p.e.key_len = ks;
	if (batch) {
		p.batch = 1;
		p.uattr = uattr;
		p.keys = a.batch.keys;
	} else if (ks && !bpf_probe_read_user(p.e.key, ks, (void *)a.elem.key)) {
		p.e.n_keys = 1;
	}
	if (bpf_map_update_elem(&dw_pending, &id, &p, BPF_ANY) == 0)
		__sync_fetch_and_add(&dw_n_pending, 1);
	return 0;
}

/* A batch's keys, read from the caller's array once the kernel has processed them. */
static __always_inline void send_batch(struct dw_pend *p, long ret)
{
	struct zt_dw_batch *b;
	__u32 count = 0, ks = p->e.key_len, i;

	/* batch.count (offset 32 of the attr): what the kernel processed, written back. */
	if (bpf_probe_read_user(&count, sizeof(count), (void *)(p->uattr + 32)))
		count = ZT_DW_BATCH_KEYS + 1;
	if (ret < 0 && count == 0)
		return; /* nothing was done */
	b = bpf_ringbuf_reserve(&dw_events, sizeof(*b), 0);
	if (!b) {
		__sync_fetch_and_add(&dw_lost, 1);
		return;
	}
	__builtin_memcpy(&b->e, &p->e, sizeof(b->e));
	b->e.ret = ret;
	b->e.n_keys = 0;
	if (count <= ZT_DW_BATCH_KEYS && ks && ks <= ZT_DW_KEY_LEN && p->keys) {
		for (i = 0; i < ZT_DW_BATCH_KEYS; i++) {
			if (i >= count)
				break;
			__u32 n = ks;

			/* The verifier's bound on the size, whatever the compiler kept of the check above. */
			asm volatile("" : "+r"(n));
			if (n > ZT_DW_KEY_LEN)
				n = ZT_DW_KEY_LEN;
			if (bpf_probe_read_user(b->keys[i], n, (void *)(p->keys + (__u64)i * ks)))
				break;
		}
		if (i == count)
			b->e.n_keys = count;
	}
	bpf_ringbuf_submit(b, 0);
}

static __always_inline int on_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct dw_pend *p;

	p = bpf_map_lookup_elem(&dw_pending, &id);
	if (!p)
		return 0;
	if (p->batch) {
		send_batch(p, ret);
	} else if (ret >= 0 || !p->e.n_keys) {
		/* A single write that failed changed nothing. */
		p->e.ret = ret;
		if (bpf_ringbuf_output(&dw_events, &p->e, sizeof(p->e), 0))
			__sync_fetch_and_add(&dw_lost, 1);
	}
	if (bpf_map_delete_elem(&dw_pending, &id) == 0)
		__sync_fetch_and_add(&dw_n_pending, -1);
	return 0;
}

/*
 * syscalls/sys_{enter,exit}_bpf: run for bpf() calls only. Each argument
 * takes 8 bytes after the common header and the syscall number.
 */
struct dw_tp_enter {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__u64 cmd;
	__u64 uattr;
};
struct dw_tp_exit {
	__u64 common;
	__s32 nr;
	__u32 _pad;
	__s64 ret;
};

SEC("tracepoint/syscalls/sys_enter_bpf")
int dw_tp_enter(struct dw_tp_enter *ctx)
{
	return on_enter(ctx->cmd, ctx->uattr);
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int dw_tp_exit(struct dw_tp_exit *ctx)
{
	return on_exit(ctx->ret);
}

/* The raw sys_enter/sys_exit: every syscall, without tracefs (see the daemon's dw_attach). */
SEC("raw_tracepoint/sys_enter")
int dw_raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs___zt *regs = (void *)ctx->args[0];

	if (ctx->args[1] != __NR_bpf)
		return 0;
	return on_enter(BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si));
}

SEC("raw_tracepoint/sys_exit")
int dw_raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs___zt *regs = (void *)ctx->args[0];

	if (!dw_n_pending || BPF_CORE_READ(regs, orig_ax) != __NR_bpf)
		return 0;
	return on_exit((long)ctx->args[1]);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
