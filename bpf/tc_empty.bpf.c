// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The floor for tools/bench/bench_tc: a TC program that passes every packet. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tc_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
