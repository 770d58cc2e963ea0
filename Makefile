# argon: a plain Makefile. `make` builds everything, `make run` boots the default
# guest, `make test` runs every test (installing what is missing first). On a machine
# without make, ./run.sh and ./test.sh install it and the rest, then run these.

CC ?= cc
BUILD := build
ASAN_BUILD := $(BUILD)/asan
# Debian's interpreter, where python3-pytest installs (not a pyenv or venv one on PATH).
PYTHON := /usr/bin/python3

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARNINGS) -Isrc -D_GNU_SOURCE -MMD -MP
# The small libraries are linked statically: nothing to map and relocate at start,
# and codec code a boot does not use never becomes resident (measured: RssFile
# 1.9 MiB -> see README). libc stays shared.
LDLIBS := -Wl,-Bstatic -ljansson -luring -lz -llz4 -lzstd -llzma -lbz2 -llzo2 -Wl,-Bdynamic \
	-lpthread -lutil
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# The VMM's library: everything but the mains, shared by argon-vmm and the unit tests.
LIB_SRCS := $(wildcard src/common/*.c src/vmm/*.c src/arch/x86/*.c src/loader/*.c src/api/*.c \
	src/devices/*.c src/devices/virtio/*.c src/snapshot/*.c)
LIB_SRCS := $(filter-out src/vmm/main.c,$(LIB_SRCS))
# argon links the library for the device kinds' options (one table for both programs).
CLI_SRCS := $(wildcard src/cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_SUPPORT_SRCS := $(wildcard tests/unit/support/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:%.c=$(ASAN_BUILD)/obj/%.o)
UNIT_SUPPORT_OBJS := $(UNIT_SUPPORT_SRCS:%.c=$(ASAN_BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(ASAN_BUILD)/tests/%)

.PHONY: all asan run test unit e2e deps guest clean fuzz fuzz-run bench
all: $(BUILD)/argon-vmm $(BUILD)/argon guest

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(ASAN_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -Itests/unit/support -c $< -o $@

$(BUILD)/libargon.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(ASAN_BUILD)/libargon.a: $(ASAN_LIB_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/argon-vmm: $(BUILD)/obj/src/vmm/main.o $(BUILD)/libargon.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(ASAN_BUILD)/argon-vmm: $(ASAN_BUILD)/obj/src/vmm/main.o $(ASAN_BUILD)/libargon.a
	$(CC) $(CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/argon: $(CLI_OBJS) $(BUILD)/libargon.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests: one binary per tests/unit/test_*.c, with the support code (a fake virtio
# driver) and the sanitizer-built library.
$(ASAN_BUILD)/tests/%: tests/unit/%.c $(UNIT_SUPPORT_OBJS) $(ASAN_BUILD)/libargon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -Itests/unit -Itests/unit/support $< $(UNIT_SUPPORT_OBJS) \
		$(ASAN_BUILD)/libargon.a -o $@ $(LDLIBS) -lcmocka

asan: $(ASAN_BUILD)/argon-vmm $(UNIT_BINS)

include guest/guest.mk

# A fresh machine: install what is missing (scripts/install-deps.sh names each package
# and why), then build. Installing comes first, never beside a build under -j.
deps:
	@scripts/install-deps.sh build test

run:
	@scripts/install-deps.sh build
	@$(MAKE) --no-print-directory all
	$(BUILD)/argon run --timings -- info

# The loader's tests also load Debian's real kernel (fetched once into a cache).
unit: $(UNIT_BINS)
	@ARGON_DEBIAN_KERNEL=$$(scripts/fetch-debian-kernel.sh) scripts/run-unit-tests.sh $(UNIT_BINS)

e2e: all asan
	@# pytest keeps its last runs' temporary directories; this run's go when it ends.
	@base=$$(mktemp -d /tmp/argon-e2e.XXXXXX) && \
	$(PYTHON) -m pytest -q -rs -p no:cacheprovider --basetemp=$$base/t tests/e2e; \
	rc=$$?; rm -rf $$base; exit $$rc

test: deps
	@$(MAKE) --no-print-directory all asan
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

bench:
	@scripts/install-deps.sh build bench
	@$(MAKE) --no-print-directory all
	bench/run-all.sh

# libFuzzer targets (clang): every tests/fuzz/fuzz_*.c against the whole library.
FUZZ_CC := clang-14
FUZZ_FLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -Itests/unit/support -Wall -Wextra \
	-Wno-unused-parameter -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJS := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o) $(UNIT_SUPPORT_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_SECONDS ?= 60

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJS) -o $@ $(LDLIBS)

fuzz:
	@scripts/install-deps.sh build fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# Runs each target for FUZZ_SECONDS and prints its execution count.
fuzz-run: fuzz
	@scripts/run-fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

# Objects reached only through a pattern rule's prerequisites are intermediate to make,
# which deletes them after a build; the next make then finds them in the .d files,
# rebuilds them and relinks every binary that uses them. Keep them.
.SECONDARY: $(UNIT_SUPPORT_OBJS) $(FUZZ_OBJS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
