/* The guest-physical address map argon-vmm gives every x86 guest. One place, so the
 * boot code, the firmware tables and the devices agree. */
#ifndef ARGON_ARCH_X86_LAYOUT_H
#define ARGON_ARCH_X86_LAYOUT_H

/* Low memory, below 1 MiB. */
#define LAYOUT_GDT 0x500ULL		  /* boot GDT (4 entries) */
#define LAYOUT_IDT 0x520ULL		  /* empty boot IDT */
#define LAYOUT_PVH_START_INFO 0x6000ULL	  /* struct hvm_start_info + memmap (PVH boot) */
#define LAYOUT_ZERO_PAGE 0x7000ULL	  /* struct boot_params (Linux boot protocol) */
#define LAYOUT_PML4 0x9000ULL		  /* boot identity page tables: PML4 */
#define LAYOUT_PDPT 0xA000ULL		  /* one PDPT */
#define LAYOUT_PD 0xB000ULL		  /* four PDs (0xB000..0xEFFF) mapping 4 GiB with 2 MiB pages */
#define LAYOUT_BOOT_STACK 0x8ff0ULL	  /* initial RSP for 64-bit entry */
#define LAYOUT_CMDLINE 0x20000ULL	  /* kernel command line */
#define LAYOUT_CMDLINE_MAX 0x10000ULL	  /* bytes, including the NUL */
#define LAYOUT_EBDA_START 0x9FC00ULL	  /* EBDA: the MP table lives here */
#define LAYOUT_LOW_RAM_END 0xA0000ULL	  /* 640 KiB; VGA hole and BIOS area follow */
#define LAYOUT_ACPI_START 0xE0000ULL	  /* RSDP first (found by the legacy scan), then tables */
#define LAYOUT_ACPI_END 0x100000ULL
#define LAYOUT_HIMEM_START 0x100000ULL	  /* 1 MiB: where kernels load by default */

/* The 32-bit MMIO hole: no RAM between these addresses. */
#define LAYOUT_MMIO_HOLE_START 0xC0000000ULL /* 3 GiB */
#define LAYOUT_MMIO_HOLE_END 0x100000000ULL  /* 4 GiB */
#define LAYOUT_VIRTIO_MMIO_BASE 0xD0000000ULL /* virtio-mmio devices, 4 KiB apart */
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
#define LAYOUT_IOAPIC 0xFEC00000ULL
#define LAYOUT_LAPIC 0xFEE00000ULL

/* Port I/O. */
#define LAYOUT_PORT_COM1 0x3F8
#define LAYOUT_IRQ_COM1 4
#define LAYOUT_PORT_I8042_DATA 0x60
#define LAYOUT_PORT_I8042_CMD 0x64
#define LAYOUT_IRQ_I8042 1 /* the keyboard's ISA IRQ */
/* ACPI hardware-reduced sleep control/status and reset registers (FADT points here). */
#define LAYOUT_PORT_ACPI_SLEEP_CONTROL 0x600
#define LAYOUT_PORT_ACPI_SLEEP_STATUS 0x601
#define LAYOUT_PORT_ACPI_RESET 0x602
#define LAYOUT_ACPI_RESET_VALUE 0x1
#define LAYOUT_ACPI_S5_SLP_TYP 5	  /* the \_S5 package's value */
/* argon exit port: a guest writes a status byte here to end the VM with that status
 * (like QEMU's isa-debug-exit, but the status is passed through unchanged). */
#define LAYOUT_PORT_ARGON_EXIT 0x610
/* Nothing claims it (reads as all-ones): argon-guest's exit-bench probes
 * user-space round trips here (PIO) and at LAYOUT_EXIT_PROBE_MMIO. */
#define LAYOUT_PORT_EXIT_PROBE 0x612
#define LAYOUT_EXIT_PROBE_MMIO 0xCFFFF000ULL

/* Interrupts: ISA IRQs 0-15 on the IOAPIC's pins 0-15; virtio-mmio devices from 5 up,
 * skipping 4 (COM1) and 8 (RTC). */
#define LAYOUT_IOAPIC_PINS 24

#endif
