# SPDX-License-Identifier: GPL-2.0-only
# ztagent build. `make` builds everything; `make demo`, `make test` and
# `make bench` install missing Debian packages first (`make deps`).

V ?= 0
Q := $(if $(filter 1,$(V)),,@)

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
BUILD    := build
ARCH_INC := /usr/include/$(shell $(CC) -dumpmachine)

PKGS     := libbpf libelf zlib libcbor openssl libpq yaml-0.1 libmicrohttpd libcurl json-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	    -Wformat=2 -Wshadow -fno-strict-aliasing -D_GNU_SOURCE \
	    -Iinclude -Isrc -I$(BUILD) $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# BPF objects see kernel UAPI and libbpf headers only, never glibc's:
# -nostdinc, clang's own freestanding headers, and an include root holding
# just linux/, asm/, asm-generic/ and bpf/. A glibc header pulled in by
# accident fails the build on every machine, not only on one without the
# 32-bit libc headers that glibc's gnu/stubs.h asks for under -target bpf.
BPF_SYSINC := $(BUILD)/bpf-sysinc
CLANG_RES  := $(shell $(CLANG) -print-resource-dir 2>/dev/null)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
	      -nostdinc -isystem $(CLANG_RES)/include -isystem $(BPF_SYSINC) \
	      -Iinclude -Ibpf

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/lib/*.h) $(wildcard include/*.h)

# src/ is one folder per subsystem (README, "Layout"). Everything but the
# entry points (src/agent/main.c, src/ctl/) goes into one library that the
# daemon, ztctl and the tests link against. The schema the agent applies is
# generated from deploy/sql/ at build time.
# Every subsystem folder; ctl/ (ztctl) and cni/ (the CNI plugin) are programs of their own.
SUBSYS    := $(filter-out ctl cni,$(patsubst src/%/,%,$(wildcard src/*/)))
LIB_SRCS  := $(filter-out src/agent/main.c,$(foreach d,$(SUBSYS),$(wildcard src/$(d)/*.c)))
CTL_SRCS  := $(wildcard src/ctl/*.c)
SRC_HDRS  := $(wildcard src/*/*.h) $(wildcard include/*.h)
SQL_FILES := $(wildcard deploy/sql/[0-9][0-9][0-9]_*.sql)
GEN_SRCS  := $(BUILD)/gen/dbschema.c
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/dbschema.o
SAN_OBJS  := $(patsubst src/%.c,$(BUILD)/san/%.o,$(LIB_SRCS)) $(BUILD)/san/gen/dbschema.o
CTL_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CTL_SRCS))

UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf/%,$(BPFT_SRCS))
TOOL_SRCS := $(wildcard tools/bench/*.c)
TOOL_BINS := $(patsubst tools/bench/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all deps demo test bench clean format check-format
all: $(BUILD)/ztagent $(BUILD)/ztctl

deps:
	$(Q)tools/deps.sh

$(BPF_SYSINC)/.stamp:
	@mkdir -p $(@D)
	$(Q)ln -sfn /usr/include/linux $(@D)/linux
	$(Q)ln -sfn /usr/include/asm-generic $(@D)/asm-generic
	$(Q)ln -sfn $(ARCH_INC)/asm $(@D)/asm
	$(Q)ln -sfn /usr/include/bpf $(@D)/bpf
	$(Q)touch $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(BPF_SYSINC)/.stamp
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(Q)$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/dbschema.c: $(SQL_FILES) tools/sql2c.sh
	@mkdir -p $(@D)
	$(Q)tools/sql2c.sh > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(SRC_HDRS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/san/gen/%.o: $(BUILD)/gen/%.c $(SRC_HDRS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/obj/%.o: src/%.c $(SRC_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: src/%.c $(SRC_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(BUILD)/libzt.a: $(LIB_OBJS)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/libzt-san.a: $(SAN_OBJS)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/ztagent: $(BUILD)/obj/agent/main.o $(BUILD)/libzt.a
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/ztctl: $(CTL_OBJS) $(BUILD)/libzt.a
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libzt-san.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/unit -o $@ $< $(BUILD)/libzt-san.a $(LDLIBS) -lcmocka

$(BUILD)/tests/bpf/%: tests/bpf/%.c $(BUILD)/libzt-san.a $(SKELS) $(wildcard tests/bpf/*.h)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/bpf -o $@ $< $(BUILD)/libzt-san.a $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tools/bench/%.c $(BUILD)/libzt.a $(SKELS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzt.a $(LDLIBS)

test-bins: all $(UNIT_BINS) $(BPFT_BINS) $(BUILD)/tools/dbtool

test: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(TOOL_BINS)
	$(Q)tools/bench.sh

FORMAT_SRCS = $(wildcard src/*/*.[ch] include/*.h bpf/*.c bpf/lib/*.h tests/*/*.[ch] \
		tests/*/*/*.[ch] tools/bench/*.c)

format:
	$(Q)clang-format -i $(FORMAT_SRCS)

check-format:
	$(Q)clang-format --dry-run -Werror $(FORMAT_SRCS)

clean:
	$(Q)rm -rf $(BUILD)

.SECONDARY:
.PHONY: test-bins
