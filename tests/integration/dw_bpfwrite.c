// SPDX-License-Identifier: GPL-2.0-only
/*
 * A write the drift watch cannot see, for drift.sh: another BPF program's.
 * Loads a socket filter of a few instructions that deletes one key from a
 * pinned map (bpf_map_delete_elem from inside the kernel, no map-write
 * syscall) and runs it once with BPF_PROG_TEST_RUN.
 *   dw_bpfwrite PIN HEXBYTE...   the key, as bpftool prints it
 * Exits 0 when the program deleted the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#define KEY_MAX 64

static struct bpf_insn insn(__u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	return (struct bpf_insn){
		.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm
	};
}

int main(int argc, char **argv)
{
	unsigned char key[KEY_MAX] = { 0 };
	struct bpf_insn prog[KEY_MAX / 4 + 8];
	unsigned char pkt[64] = { 0 };
	int n = 0, klen = argc - 2, map_fd, prog_fd;
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, lo, .log_buf = log, .log_size = sizeof(log),
		    .log_level = 1);

	if (argc < 3 || klen > KEY_MAX || klen % 4) {
		fprintf(stderr,
			"usage: dw_bpfwrite PIN HEXBYTE... (a key of 4..%d bytes, a multiple of 4)\n",
			KEY_MAX);
		return 2;
	}
	for (int i = 0; i < klen; i++)
		key[i] = (unsigned char)strtoul(argv[2 + i], NULL, 16);
	map_fd = bpf_obj_get(argv[1]);
	if (map_fd < 0) {
		fprintf(stderr, "dw_bpfwrite: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* The key on the stack at r10 - KEY_MAX, a word at a time. */
	for (int i = 0; i < klen; i += 4) {
		__s32 w;

		memcpy(&w, key + i, 4);
		prog[n++] = insn(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, (__s16)(i - KEY_MAX), w);
	}
	/* r1 = the map (a 16-byte load of its fd), r2 = &key, delete, return its result. */
	prog[n++] = insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map_fd);
	prog[n++] = insn(0, 0, 0, 0, 0);
	prog[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
	prog[n++] = insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -KEY_MAX);
	prog[n++] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_delete_elem);
	prog[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	prog_fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "dw_bpfwrite", "GPL", prog, n, &lo);
	if (prog_fd < 0) {
		fprintf(stderr, "dw_bpfwrite: load: %s\n%s", strerror(errno), log);
		return 1;
	}
	if (bpf_prog_test_run_opts(prog_fd, &run) < 0) {
		fprintf(stderr, "dw_bpfwrite: run: %s\n", strerror(errno));
		return 1;
	}
	close(prog_fd);
	close(map_fd);
	if ((int)run.retval != 0) {
		fprintf(stderr, "dw_bpfwrite: delete: %s\n", strerror(-(int)run.retval));
		return 1;
	}
	return 0;
}
