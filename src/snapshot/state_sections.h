/* The VM's own state in the snapshot file (issue 9): section "vcpu"/<index> per vCPU,
 * and "irqchip", "pit", "clock" for the VM, version 1 each. Every field is written
 * on its own, little-endian, in the order the reader takes them back; only KVM's
 * opaque ABI blobs go whole (kvm_xsave's region, kvm_lapic_state's registers), with
 * their sizes checked on read. A reader treats the file as hostile: counts are
 * bounded before use, MSR indices must be in the VM's own list, flags must be ones
 * argon writes.
 *
 * Section layouts (version 1):
 *   vcpu/N   u32 mp_state; regs: 18 x u64 (rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip
 *            rflags); sregs: 8 segments (cs ds es fs gs ss tr ldt: u64 base, u32
 *            limit, u16 selector, 8 x u8 type present dpl db s l g avl, u8 unusable),
 *            gdt and idt (u64 base, u16 limit), u64 cr0 cr2 cr3 cr4 cr8 efer apic_base,
 *            4 x u64 interrupt bitmap; u8 fpu kind (1 xsave: blob of the region;
 *            0 legacy: blob fpr[128], u16 fcw fsw, u8 ftwx, u16 last_opcode, u64
 *            last_ip last_dp, blob xmm[256], u32 mxcsr); u8 has_xcrs, u32 flags,
 *            u32 count, count x (u32 xcr, u64 value); debugregs 4 x u64 db, u64 dr6
 *            dr7 flags; blob lapic[1024]; events (u8 exception injected nr
 *            has_error_code pending, u32 error_code, u8 interrupt injected nr soft
 *            shadow, u8 nmi injected pending masked, u32 sipi_vector, u32 flags, u8 smi
 *            smm pending smm_inside_nmi latched_init); u32 cpuid count, count x (u32
 *            function index flags eax ebx ecx edx); u32 msr count, count x (u32 index,
 *            u64 data)
 *   irqchip  2 x PIC (16 x u8: last_irr irr imr isr priority_add irq_base
 *            read_reg_select poll special_mask init_state auto_eoi rotate_on_auto_eoi
 *            special_fully_nested_mode init4 elcr elcr_mask); IOAPIC u64 base_address,
 *            u32 ioregsel id irr, u32 pins (24), pins x u64 redirection entry
 *   pit      u32 channels (3), each u32 count, u16 latched_count, 10 x u8
 *            count_latched status_latched status read_state write_state write_latch
 *            rw_mode mode bcd gate, u64 count_load_time; u32 flags
 *   clock    u64 clock_ns, u32 flags, u64 realtime_ns, u64 host_tsc, u32 tsc_khz
 *   vm       u32 vcpu_count, u64 mem_size (bytes), u32 virtio devices (each in its own
 *            section: virtio_section.h)
 *   serial   u8 ier fcr lcr mcr scr dll dlm thr_interrupt irq_level, blob rx (<= 64)
 *   i8042    u8 ctr outp ctl_pending kbd_pending last_out kbd_last last_write_cmd
 *            xlate_break irq_level, blob reply (<= 4), blob keys (<= 16) */
#ifndef ARGON_SNAPSHOT_STATE_SECTIONS_H
#define ARGON_SNAPSHOT_STATE_SECTIONS_H

#include <stddef.h>

#include "devices/i8042.h"
#include "devices/serial.h"
#include "snapshot/snapfile.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm_state.h"

#define VCPU_SECTION "vcpu"
#define VCPU_SECTION_VERSION 1
#define IRQCHIP_SECTION "irqchip"
#define PIT_SECTION "pit"
#define CLOCK_SECTION "clock"
#define VM_STATE_SECTION_VERSION 1

/* Writes section vcpu/<index>. Returns 0 or the writer's -errno. */
int vcpu_section_write(struct snap_writer *w, int index, const struct vcpu_state *s);
/* Reads section vcpu/<index> of r (file names r in messages) into s, checking every
 * MSR against host's list. Returns 0, or -errno with one line in err. */
int vcpu_section_read(const struct snap_reader *r, const char *file, int index,
		      const struct vcpu_state_host *host, struct vcpu_state *s, char *err,
		      size_t errlen);

/* The "irqchip", "pit" and "clock" sections. Same conventions. */
int vm_sections_write(struct snap_writer *w, const struct vm_state *s);
int vm_sections_read(const struct snap_reader *r, const char *file, struct vm_state *s,
		     char *err, size_t errlen);

/* The machine: what the VM is built from before any state goes into it. */
#define MACHINE_SECTION "vm"
#define SERIAL_SECTION "serial"
#define I8042_SECTION "i8042"
#define DEVICE_SECTION_VERSION 1
#define SNAPSHOT_MAX_VIRTIO 16 /* VM_MAX_VIRTIO_DEVICES */
struct snapshot_machine {
	uint32_t vcpus;
	uint64_t mem_size; /* bytes */
	uint32_t virtio_devices;
};
int machine_section_write(struct snap_writer *w, const struct snapshot_machine *m);
/* Checks vcpus (1..max_vcpus) and mem_size (a multiple of 4 KiB, at least 16 MiB,
 * at most max_mem). */
int machine_section_read(const struct snap_reader *r, const char *file, int max_vcpus,
			 uint64_t max_mem, struct snapshot_machine *m, char *err, size_t errlen);
/* The platform devices' sections (serial.h, i8042.h have the states). */
int serial_section_write(struct snap_writer *w, const struct serial_state *s);
int serial_section_read(const struct snap_reader *r, const char *file, struct serial_state *s,
			char *err, size_t errlen);
int i8042_section_write(struct snap_writer *w, const struct i8042_state *s);
int i8042_section_read(const struct snap_reader *r, const char *file, struct i8042_state *s,
		       char *err, size_t errlen);

#endif
