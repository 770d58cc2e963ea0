# argon-guest: argon's own small PVM-aware guest kernel (guest/README.md).
# Included by the top Makefile; everything here is prefixed GUEST_.
#
#   $(BUILD)/argon-guest          ELF, linked at 1 MiB, PVH note, e_entry = 64-bit entry
#   $(BUILD)/argon-guest.bzImage  the same kernel as a Linux bzImage (guest/tools/mkbzimage.c)
#   $(BUILD)/cpu-bench-host       the cpu-bench compute kernel as a host program

GUEST_DIR := guest
GUEST_OUT := $(BUILD)/guest
GUEST_TOOLS_OUT := $(BUILD)/guest-tools
GUEST_CC := $(CC)
GUEST_HOSTCC := $(CC)

GUEST_WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# Freestanding, no SSE/x87 (no FPU state to manage), no red zone (interrupts use
# the current stack), non-PIC at its link address. The host build of the cpu-bench
# kernel uses the same flags, so guest and host run identical instructions.
GUEST_CFLAGS := -std=gnu11 -O2 -g $(GUEST_WARNINGS) -ffreestanding -fno-builtin \
	-mgeneral-regs-only -mno-red-zone -fno-pic -fno-pie -mcmodel=small \
	-fno-stack-protector -fcf-protection=none -fno-omit-frame-pointer \
	-fno-asynchronous-unwind-tables -I$(GUEST_DIR) -MMD -MP
GUEST_ASFLAGS := -fno-pic -fno-pie -I$(GUEST_DIR) -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(GUEST_DIR)/argon-guest.ld \
	-Wl,--build-id=none -Wl,-n -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

GUEST_SRCS := $(wildcard $(GUEST_DIR)/*.c $(GUEST_DIR)/commands/*.c $(GUEST_DIR)/lib/*.c \
	$(GUEST_DIR)/virtio/*.c $(GUEST_DIR)/net/*.c $(GUEST_DIR)/vsock/*.c)
GUEST_ASMS := $(wildcard $(GUEST_DIR)/*.S)
GUEST_OBJS := $(GUEST_ASMS:$(GUEST_DIR)/%.S=$(GUEST_OUT)/%.o) \
	$(GUEST_SRCS:$(GUEST_DIR)/%.c=$(GUEST_OUT)/%.o)

.PHONY: guest
guest: $(BUILD)/argon-guest $(BUILD)/argon-guest.bzImage $(BUILD)/cpu-bench-host

$(GUEST_OUT)/%.o: $(GUEST_DIR)/%.c $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(GUEST_OUT)/%.o: $(GUEST_DIR)/%.S $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_ASFLAGS) -c $< -o $@

$(BUILD)/argon-guest: $(GUEST_OBJS) $(GUEST_DIR)/argon-guest.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) $(GUEST_OBJS) -o $@

$(GUEST_OUT)/argon-guest.stripped: $(BUILD)/argon-guest
	objcopy --strip-all $< $@

$(GUEST_TOOLS_OUT)/mkbzimage: $(GUEST_DIR)/tools/mkbzimage.c
	@mkdir -p $(dir $@)
	$(GUEST_HOSTCC) -std=gnu11 -O2 $(GUEST_WARNINGS) $< -o $@

$(BUILD)/argon-guest.bzImage: $(GUEST_OUT)/argon-guest.stripped $(GUEST_TOOLS_OUT)/mkbzimage
	$(GUEST_TOOLS_OUT)/mkbzimage $< $@

# The compute kernel is compiled with the guest's flags (a non-PIE host program).
GUEST_BENCH_SRCS := $(GUEST_DIR)/lib/sha256.c $(GUEST_DIR)/lib/cpu_bench_kernel.c
GUEST_BENCH_HOST_OBJS := $(GUEST_BENCH_SRCS:$(GUEST_DIR)/%.c=$(GUEST_TOOLS_OUT)/%.o)

# Both copies put its functions on 64-byte boundaries, so their instructions sit
# alike in the CPU's fetch and micro-op cache lines: the same bytes at different
# offsets ran 7% apart on an Intel Xeon host.
GUEST_BENCH_ALIGN := -falign-functions=64
$(GUEST_BENCH_SRCS:$(GUEST_DIR)/%.c=$(GUEST_OUT)/%.o): GUEST_CFLAGS += $(GUEST_BENCH_ALIGN)

$(GUEST_TOOLS_OUT)/lib/%.o: $(GUEST_DIR)/lib/%.c $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_HOSTCC) $(GUEST_CFLAGS) $(GUEST_BENCH_ALIGN) -c $< -o $@

$(BUILD)/cpu-bench-host: $(GUEST_DIR)/tools/cpu_bench_host.c $(GUEST_BENCH_HOST_OBJS)
	$(GUEST_HOSTCC) -std=gnu11 -O2 -g $(GUEST_WARNINGS) -I$(GUEST_DIR) -no-pie $^ -o $@

# make guest-check: host-side checks of the guest's pure code (ASan/UBSan), then
# boots under QEMU/KVM (guest/tests/test_boot.py, skipped without /dev/kvm).
GUEST_CHECK_FLAGS := -std=gnu11 -O1 -g $(GUEST_WARNINGS) -iquote $(GUEST_DIR) \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
# Debian's interpreter (python3-pytest), like the top Makefile's PYTHON.
GUEST_PYTHON := $(or $(PYTHON),/usr/bin/python3)
GUEST_CHECK_RENAME := -Dvsnprintf=guest_vsnprintf -Dsnprintf=guest_snprintf -Dprintf=guest_printf

$(GUEST_TOOLS_OUT)/check/printf.o: $(GUEST_DIR)/printf.c $(GUEST_DIR)/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_HOSTCC) $(GUEST_CHECK_FLAGS) $(GUEST_CHECK_RENAME) -c $< -o $@

$(GUEST_TOOLS_OUT)/check/test_host: $(GUEST_DIR)/tests/test_host.c $(GUEST_DIR)/cmdline.c \
		$(GUEST_DIR)/lib/scancode.c $(GUEST_BENCH_SRCS) $(GUEST_TOOLS_OUT)/check/printf.o
	$(GUEST_HOSTCC) $(GUEST_CHECK_FLAGS) $^ -o $@

.PHONY: guest-check
guest-check: guest $(GUEST_TOOLS_OUT)/check/test_host
	$(GUEST_TOOLS_OUT)/check/test_host
	$(GUEST_PYTHON) -m pytest -q $(GUEST_DIR)/tests
