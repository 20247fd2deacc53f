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

PHONY_EXTRA = check-all check-san-run install uninstall
PHONY_EXTRA += bench-heal bench-failover
.PHONY: $(PHONY_EXTRA) all deps check check-unit check-integration check-san fuzz fuzz-smoke format clean run \
        tests
all: $(PROGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(findstring client-fuse,$<),$(CFLAGS_FUSE)) -c $< -o $@

$(LIBCAIRN): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cairn-meta: $(call obj,meta/main.c $(META_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LIBS_LMDB) $(LIBS_EVENT) $(LIBS_XXH) $(LIBS_RAFT)

$(BUILD)/cairn-chunk: $(call obj,chunk/main.c $(CHUNK_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LIBS_EVENT) $(LIBS_XXH)

$(BUILD)/cairn-mount: $(call obj,client-fuse/main.c $(FUSE_SRC)) $(LIBCAIRN)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LIBS_FUSE) $(LIBS_XXH) $(LIBS_EVENT)

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
	$(CC) $(UNIT_CFLAGS) $(CFLAGS_FUSE) -o $@ $^ $(UNIT_LIBS) $(LIBS_FUSE) $(LIBS_EVENT)
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

# `make install` (as root): programs in $(BINDIR); the mount helpers mount.fuse.cairn (for
# `mount -t fuse.cairn` and fstab lines of that type) and mount.cairn (`-t cairn`) in /sbin,
# the only folder mount(8) looks in whatever PREFIX is; man pages; systemd units in a folder
# systemd reads ($(PREFIX)/lib/systemd/system: /usr/local/lib/... or /usr/lib/...); commented
# example configurations (and the example .mount unit) in /etc/cairn. DESTDIR stages it all.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
CONFDIR ?= /etc/cairn
HELPERDIR ?= /sbin
INSTALL_PROGS = cairn-meta cairn-chunk cairn-mount cairn cairn-local
INSTALL_HELPERS = mount.fuse.cairn mount.cairn
INSTALL_MAN8 = cairn-meta.8 cairn-chunk.8 cairn-mount.8
INSTALL_UNITS = cairn-meta.service cairn-chunk@.service
INSTALL_CONFS = meta.conf.example chunk.conf.example fstab.example

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(HELPERDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFDIR)
	install -m 755 $(addprefix $(BUILD)/,$(INSTALL_PROGS)) $(DESTDIR)$(BINDIR)/
	for h in $(INSTALL_HELPERS); do ln -sfn $(BINDIR)/cairn-mount $(DESTDIR)$(HELPERDIR)/$$h; done
	install -m 644 $(addprefix man/,$(INSTALL_MAN8)) $(DESTDIR)$(MANDIR)/man8/
	install -m 644 man/cairn.1 $(DESTDIR)$(MANDIR)/man1/
	for h in $(INSTALL_HELPERS); do echo '.so man8/cairn-mount.8' >$(DESTDIR)$(MANDIR)/man8/$$h.8; done
	for u in $(INSTALL_UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' deploy/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	    chmod 644 $(DESTDIR)$(UNITDIR)/$$u; done
	install -m 644 $(addprefix deploy/conf/,$(INSTALL_CONFS)) $(DESTDIR)$(CONFDIR)/
	install -m 644 deploy/systemd/mnt-datasets.mount $(DESTDIR)$(CONFDIR)/mnt-datasets.mount.example

# Removes what install put in place; configurations made from the examples stay.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_PROGS)) \
	    $(addprefix $(DESTDIR)$(HELPERDIR)/,$(INSTALL_HELPERS)) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(INSTALL_MAN8) $(addsuffix .8,$(INSTALL_HELPERS))) \
	    $(DESTDIR)$(MANDIR)/man1/cairn.1 $(addprefix $(DESTDIR)$(UNITDIR)/,$(INSTALL_UNITS)) \
	    $(addprefix $(DESTDIR)$(CONFDIR)/,$(INSTALL_CONFS) mnt-datasets.mount.example)
	rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true

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
