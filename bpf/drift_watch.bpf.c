// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Drift watch: a write to one of the agent's blocklist maps by any other
 * process (bpftool map update/delete, a script), reported to the daemon as
 * it happens, so the repair does not wait for a whole-map read (a million
 * entries take ~250 ms of CPU to read). On the bpf() syscall's tracepoints
 * (this platform refuses fentry and BPF-LSM programs: EPERM): the entry of
 * a call records the map and the key (read from the caller's memory), its
 * exit sends them once the write is done, so the daemon reads the result,
 * not the state before it. The agent's own writes are skipped. A batch
 * write is reported without keys: the daemon reads the whole map.
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

/* A write under way, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct zt_dw_event);
} dw_pending SEC(".maps");
/* Entries in dw_pending: while 0, a syscall's exit looks no further. */
__u64 dw_n_pending = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
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
	struct zt_dw_event e = {};
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
	e.cmd = (__u32)cmd;
	e.slot = i;
	e.pid = (__u32)(id >> 32);
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	if (!batch) {
		ks = BPF_CORE_READ(m, key_size);
		if (ks > ZT_DW_KEY_LEN)
			ks = ZT_DW_KEY_LEN;
		if (ks && !bpf_probe_read_user(e.key, ks, (void *)a.elem.key))
			e.key_len = ks;
	}
	if (bpf_map_update_elem(&dw_pending, &id, &e, BPF_ANY) == 0)
		__sync_fetch_and_add(&dw_n_pending, 1);
	return 0;
}

static __always_inline int on_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct zt_dw_event *p, e;

	p = bpf_map_lookup_elem(&dw_pending, &id);
	if (!p)
		return 0;
	e = *p;
	if (bpf_map_delete_elem(&dw_pending, &id) == 0)
		__sync_fetch_and_add(&dw_n_pending, -1);
	/* A single write that failed changed nothing; a batch may have done part. */
	if (ret < 0 && e.key_len)
		return 0;
	e.ret = ret;
	bpf_ringbuf_output(&dw_events, &e, sizeof(e), 0);
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
