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
# ztagent-cni runs on the host for every pod: it links only what it uses
# (frames, CBOR, the DEL queue's format) and only libcbor and json-c.
CNI_SRCS  := $(wildcard src/cni/*.c)
CNI_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CNI_SRCS))
CNI_LIB   := $(addprefix $(BUILD)/obj/,agent/apimsg.o agent/cbor.o agent/util.o seg/cnispool.o)
CNI_LIBS  := $(shell pkg-config --libs libcbor json-c 2>/dev/null) -lm
# Its pure parts (all but main.c), for tests/unit/cni.
CNI_PURE_SAN := $(patsubst src/%.c,$(BUILD)/san/%.o,$(filter-out src/cni/main.c,$(CNI_SRCS)))

UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
# ztctl's pure parts are linked into their tests beside the library.
UNIT_CTL_BINS := $(filter $(BUILD)/tests/unit/ctl/%,$(UNIT_BINS))
UNIT_CNI_BINS := $(filter $(BUILD)/tests/unit/cni/%,$(UNIT_BINS))
UNIT_LIB_BINS := $(filter-out $(UNIT_CTL_BINS) $(UNIT_CNI_BINS),$(UNIT_BINS))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf/%,$(BPFT_SRCS))
# Fuzzing (tests/fuzz/README.md): one harness per parser that takes input
# across a trust boundary. `make fuzz` builds them with clang's libFuzzer
# against a copy of the library instrumented for it (build/fuzz/) and runs
# each for FUZZ_SECONDS; `make test` replays their corpora and regression
# inputs through the same harnesses built with gcc and the sanitizers.
# Objects outside the library that a harness needs: CTL_PURE.
CTL_PURE    := src/ctl/import.c
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS   := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
REPLAY_BINS := $(patsubst %,$(BUILD)/tests/fuzz/replay_%,$(FUZZ_NAMES))
FUZZ_CC     ?= clang
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	       -fno-omit-frame-pointer
# -Wno-error: clang warns about things gcc does not; `make` (gcc) is the gate.
FUZZ_CFLAGS := -O1 -g $(filter-out -O2 -g -Werror,$(CFLAGS)) -Wno-error -Wno-format-nonliteral
FUZZ_OBJS   := $(patsubst src/%.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRCS) $(CTL_PURE) src/cni/cni.c) \
	       $(BUILD)/fuzz/obj/gen/dbschema.o
FUZZ_SECONDS ?= 60

TOOL_SRCS := $(wildcard tools/bench/*.c)
TOOL_BINS := $(patsubst tools/bench/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all deps demo test bench train clean format check-format fuzz fuzz-bins
all: $(BUILD)/ztagent $(BUILD)/ztctl $(BUILD)/ztagent-cni

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

# tc_guard is xdp_guard built for the TC hook (bpf/tc_guard.bpf.c includes it).
$(BUILD)/bpf/tc_guard.bpf.o: bpf/xdp_guard.bpf.c

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

$(BUILD)/ztagent-cni: $(CNI_OBJS) $(CNI_LIB)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(CNI_LIBS)

$(UNIT_LIB_BINS): $(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libzt-san.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/unit -o $@ $< $(BUILD)/libzt-san.a $(LDLIBS) -lcmocka

$(UNIT_CTL_BINS): $(BUILD)/tests/unit/ctl/%: tests/unit/ctl/%.c $(BUILD)/libzt-san.a \
		  $(BUILD)/san/ctl/import.o $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/unit -o $@ $< $(BUILD)/san/ctl/import.o \
		$(BUILD)/libzt-san.a $(LDLIBS) -lcmocka

$(UNIT_CNI_BINS): $(BUILD)/tests/unit/cni/%: tests/unit/cni/%.c $(BUILD)/libzt-san.a \
		  $(CNI_PURE_SAN) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/unit -o $@ $< $(CNI_PURE_SAN) \
		$(BUILD)/libzt-san.a $(LDLIBS) -lcmocka

$(BUILD)/tests/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h \
			      $(BUILD)/libzt-san.a $(BUILD)/san/ctl/import.o $(BUILD)/san/cni/cni.o
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/fuzz -o $@ $< tests/fuzz/replay.c \
		$(BUILD)/san/ctl/import.o $(BUILD)/san/cni/cni.o $(BUILD)/libzt-san.a $(LDLIBS)

$(BUILD)/fuzz/obj/gen/%.o: $(BUILD)/gen/%.c $(SRC_HDRS)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/obj/%.o: src/%.c $(SRC_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/libzt-fuzz.a: $(FUZZ_OBJS)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libzt-fuzz.a
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -Itests/fuzz -o $@ $< \
		$(BUILD)/libzt-fuzz.a $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

# ThreadSanitizer (`make tsan`, as root): the library, the unit tests
# (ztctl's and the CNI plugin's aside: single-threaded) and the BPF tests
# built with -fsanitize=thread, run one after another by tests/run.sh
# --tsan; a ThreadSanitizer report fails its test. (gcc 12 with
# -fsanitize=thread misreads the bounds of bpf/lib/parse.h's pointer walks
# in test_xdp_guard: the ASan build keeps -Warray-bounds.)
TSAN      := -fsanitize=thread -fno-omit-frame-pointer
TSAN_OBJS := $(patsubst src/%.c,$(BUILD)/tsan/%.o,$(LIB_SRCS)) $(BUILD)/tsan/gen/dbschema.o
TSAN_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/tsan/%,\
		$(filter-out tests/unit/ctl/% tests/unit/cni/%,$(UNIT_SRCS))) \
	     $(patsubst tests/bpf/%.c,$(BUILD)/tests/tsan/bpf/%,$(BPFT_SRCS))

$(BUILD)/tsan/gen/%.o: $(BUILD)/gen/%.c $(SRC_HDRS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TSAN) -c $< -o $@

$(BUILD)/tsan/%.o: src/%.c $(SRC_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TSAN) -c $< -o $@

$(BUILD)/libzt-tsan.a: $(TSAN_OBJS)
	$(Q)$(AR) rcs $@ $^

$(BUILD)/tests/tsan/%: tests/unit/%.c $(BUILD)/libzt-tsan.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TSAN) -Itests/unit -o $@ $< $(BUILD)/libzt-tsan.a $(LDLIBS) -lcmocka

$(BUILD)/tests/tsan/bpf/%: tests/bpf/%.c $(BUILD)/libzt-tsan.a $(SKELS) $(wildcard tests/bpf/*.h) \
			  tests/unit/private_mounts.h
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TSAN) -Wno-array-bounds -Itests/bpf -Itests/unit -o $@ $< \
		$(BUILD)/libzt-tsan.a $(LDLIBS) -lcmocka

# The daemon itself, for integration tests under ThreadSanitizer
# (ZTAGENT=build/tsan/ztagent TSAN_OPTIONS=log_path=... bash tests/integration/X.sh).
$(BUILD)/tsan/ztagent: $(BUILD)/tsan/agent/main.o $(BUILD)/libzt-tsan.a
	$(Q)$(CC) $(CFLAGS) $(TSAN) -o $@ $^ $(LDLIBS)

tsan-bins: $(TSAN_BINS) $(BUILD)/tsan/ztagent

tsan: deps
	$(Q)$(MAKE) --no-print-directory tsan-bins
	$(Q)tests/run.sh --tsan

# Each harness for FUZZ_SECONDS, one at a time; execs and coverage per harness.
fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-bins
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_NAMES)

$(BUILD)/tests/bpf/%: tests/bpf/%.c $(BUILD)/libzt-san.a $(SKELS) $(wildcard tests/bpf/*.h) \
		     tests/unit/private_mounts.h
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SAN) -Itests/bpf -Itests/unit -o $@ $< $(BUILD)/libzt-san.a $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tools/bench/%.c $(BUILD)/libzt.a $(SKELS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzt.a $(LDLIBS)

test-bins: all $(UNIT_BINS) $(BPFT_BINS) $(REPLAY_BINS) $(BUILD)/tools/dbtool

test: deps
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(TOOL_BINS)
	$(Q)tools/bench.sh

# The flow model (tools/train): the feature schema from the agent's own table,
# sklearn on the committed lab dataset, the model the agent loads (checked by
# loading it), and the report. LAB=1 first makes a new dataset in the
# namespace lab (root, about 25 minutes).
PYTHON     ?= /usr/bin/python3
TRAIN_DATA ?= tools/train/data/lab.csv.gz
MODEL      ?= $(BUILD)/model.cbor

train: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/tools/featschema $(BUILD)/tools/bench_model \
		$(if $(filter 1,$(LAB)),all)
ifeq ($(LAB),1)
	$(Q)tools/train/lab_traffic.sh --out $(TRAIN_DATA)
endif
	$(Q)$(BUILD)/tools/featschema > $(BUILD)/feature_schema.json
	$(Q)$(PYTHON) tools/train/train.py --schema $(BUILD)/feature_schema.json \
		--data $(TRAIN_DATA) --out $(MODEL) --report tools/train/REPORT.md
	$(Q)$(BUILD)/tools/featschema --model $(MODEL)

FORMAT_SRCS = $(wildcard src/*/*.[ch] include/*.h bpf/*.c bpf/lib/*.h tests/*/*.[ch] \
		tests/*/*/*.[ch] tools/bench/*.c)

format:
	$(Q)clang-format -i $(FORMAT_SRCS)

check-format:
	$(Q)clang-format --dry-run -Werror $(FORMAT_SRCS)

clean:
	$(Q)rm -rf $(BUILD)

.SECONDARY:
.PHONY: test-bins tsan-bins
