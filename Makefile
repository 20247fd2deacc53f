# CairnFS build. `make` builds every program into build/; `make check` runs every test;
# `make deps` installs what the build and the tests need (Debian 12, as root).
#
# BUILD=build-san SAN=1 gives the ASan+UBSan build used by `make check-san`.

BUILD ?= build
CC ?= cc
SAN ?= 0
PKGS = libevent lmdb libxxhash libzstd fuse3 check raft libuv
OPT ?= -O2
CFLAGS_BASE = -std=gnu11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -pthread -Icommon \
              -MMD -MP
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS += $(CFLAGS_BASE)
LIBS_EVENT = -levent -levent_pthreads
LIBS_LMDB = -llmdb
LIBS_XXH = -lxxhash
LIBS_RAFT = -lraft -luv -lzstd
LIBS_FUSE = $(shell pkg-config --libs fuse3 2>/dev/null || echo -lfuse3)
CFLAGS_FUSE = $(shell pkg-config --cflags fuse3 2>/dev/null)
LIBS_CHECK = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

COMMON_SRC = $(wildcard common/*.c)
META_SRC = $(filter-out meta/main.c,$(wildcard meta/*.c))
CHUNK_SRC = $(filter-out chunk/main.c,$(wildcard chunk/*.c))
FUSE_SRC = $(filter-out client-fuse/main.c,$(wildcard client-fuse/*.c))
TOOLS_SRC = $(filter-out tools/cairn_main.c,$(wildcard tools/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCAIRN = $(BUILD)/libcairn.a
PROGS = $(BUILD)/cairn-meta
ifneq ($(wildcard chunk/main.c),)
PROGS += $(BUILD)/cairn-chunk
endif
ifneq ($(wildcard client-fuse/main.c),)
PROGS += $(BUILD)/cairn-mount $(BUILD)/mount.cairn
endif
ifneq ($(wildcard tools/cairn_main.c),)
PROGS += $(BUILD)/cairn $(BUILD)/cairn-local
endif

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_SRC = $(wildcard tests/integration/test_*.c)
INTEG_BINS = $(patsubst tests/integration/%.c,$(BUILD)/itests/%,$(INTEG_SRC))
HARNESS_SRC = $(wildcard tests/integration/harness*.c)

PHONY_EXTRA = check-all check-san-run
PHONY_EXTRA += bench-heal bench-failover
.PHONY: $(PHONY_EXTRA) all deps check check-unit check-integration check-san fuzz fuzz-smoke format clean run \
        tests
all: $(PROGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(findstring client-fuse,$<),$(CFLAGS_FUSE)) -c $< -o $@

# The status page's files (meta/www/) are copied into cairn-meta by the assembler's .incbin
# (meta/status_www.c), which the compiler's dependency files do not see.
$(BUILD)/obj/meta/status_www.o: $(wildcard meta/www/*)

$(LIBCAIRN): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cairn-meta: $(call obj,meta/main.c $(META_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LIBS_LMDB) $(LIBS_EVENT) $(LIBS_XXH) $(LIBS_RAFT)

$(BUILD)/cairn-chunk: $(call obj,chunk/main.c $(CHUNK_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LIBS_EVENT) $(LIBS_XXH)

$(BUILD)/cairn-mount: $(call obj,client-fuse/main.c $(FUSE_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LIBS_FUSE) $(LIBS_XXH)

$(BUILD)/mount.cairn: $(BUILD)/cairn-mount
	ln -sf cairn-mount $@

# build/cairn: the user command (C, tools/*.c); build/cairn-local: its local-cluster launcher
# script, which `cairn local ...` runs from the same folder.
$(BUILD)/cairn: $(call obj,tools/cairn_main.c $(TOOLS_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^

$(BUILD)/cairn-local: tools/cairn-local
	@mkdir -p $(BUILD)
	cp tools/cairn-local $@ && chmod +x $@

# Unit tests are named for the program whose modules they test and link only those objects:
# tests/unit/test_common_*.c, test_meta_*.c, test_chunk_*.c, test_client_*.c, test_tools_*.c.
UNIT_CFLAGS = $(CFLAGS) -Imeta -Ichunk -Iclient-fuse
UNIT_LIBS = $(LIBS_CHECK) $(LIBS_XXH)
$(BUILD)/tests/test_common_%: tests/unit/test_common_%.c $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $^ $(UNIT_LIBS) $(LIBS_EVENT)
$(BUILD)/tests/test_meta_%: tests/unit/test_meta_%.c $(call obj,$(META_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $^ $(UNIT_LIBS) $(LIBS_LMDB) $(LIBS_EVENT) $(LIBS_RAFT)
$(BUILD)/tests/test_chunk_%: tests/unit/test_chunk_%.c $(call obj,$(CHUNK_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $^ $(UNIT_LIBS) $(LIBS_EVENT)
$(BUILD)/tests/test_client_%: tests/unit/test_client_%.c $(call obj,$(FUSE_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) $(CFLAGS_FUSE) -o $@ $^ $(UNIT_LIBS) $(LIBS_FUSE)
$(BUILD)/tests/test_tools_%: tests/unit/test_tools_%.c $(call obj,$(TOOLS_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -Itools -o $@ $^ $(UNIT_LIBS)

# Integration tests (tests/integration/test_*.c) drive real daemons and real mounts through
# the shared harness (tests/integration/harness*.c).
$(BUILD)/itests/test_%: tests/integration/test_%.c $(call obj,$(HARNESS_SRC)) $(LIBCAIRN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/integration -o $@ $^ $(LIBS_CHECK) $(LIBS_XXH)

tests: $(UNIT_BINS) $(INTEG_BINS)

# The README's test command: installs missing packages, builds, runs every unit and
# integration test, then the ASan+UBSan build of the unit and daemon-level tests.
check: deps
	$(MAKE) check-all
	$(MAKE) check-san

check-all: all tests
	BUILD=$(BUILD) tests/run-tests.sh $(UNIT_BINS) $(INTEG_BINS)

check-unit: all $(UNIT_BINS)
	BUILD=$(BUILD) tests/run-tests.sh $(UNIT_BINS)

check-integration: all $(INTEG_BINS)
	BUILD=$(BUILD) tests/run-tests.sh $(INTEG_BINS)

# The sanitizer build and its run (unit tests and the daemon-level integration tests).
SAN_INTEG = $(filter-out $(BUILD)/itests/test_mount_%,$(INTEG_BINS))
check-san:
	$(MAKE) BUILD=build-san SAN=1 OPT=-O1 check-san-run

check-san-run: all $(UNIT_BINS) $(SAN_INTEG)
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 BUILD=$(BUILD) \
	    tests/run-tests.sh $(UNIT_BINS) $(SAN_INTEG)

deps:
	tools/install-deps.sh

FUZZ_CC ?= clang
fuzz: $(BUILD)/fuzz/fuzz_frame
$(BUILD)/fuzz/fuzz_frame: tests/fuzz/fuzz_frame.c $(COMMON_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -g -O1 -Icommon -fsanitize=fuzzer,address,undefined \
	    -o $@ $^ -levent -levent_pthreads -lxxhash -pthread
fuzz-smoke: fuzz
	mkdir -p $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_frame -max_total_time=20 -seed=1 -artifact_prefix=$(BUILD)/fuzz/ \
	    $(BUILD)/fuzz/corpus tests/fuzz/corpus

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Healing rate of a local cluster after a chunk server is killed (bench/heal.sh; GIB=3).
bench-heal: all
	BUILD=$(abspath $(BUILD)) bench/heal.sh

# How long a mount pauses when the meta leader is killed (prints median and max of 10).
bench-failover: all
	BUILD=$(BUILD) bench/failover.sh

run: all
	$(BUILD)/cairn local start ./var/local --mount $${MNT:-/mnt/datasets}

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
