/* Constants shared by the assembly entry code and C: selectors, MSRs, control
 * register values, the fixed addresses argon-guest uses. */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

#define KERNEL_BASE 0x100000

/* GDT selectors (entry.S builds the table). */
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18

/* PVM.md: the values known to work in PVM mode, and fine on hardware. */
#define CR0_VALUE 0x80050033 /* PG AM WP NE ET MP PE */
#define CR4_VALUE 0x620	     /* OSXMMEXCPT OSFXSR PAE; no SMEP/SMAP: our pages are U=1 */
#define EFER_VALUE 0x901     /* NXE LME SCE */

#define MSR_EFER 0xc0000080
#define MSR_APIC_BASE 0x1b
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_PVM_VIF 0x4b564d10	  /* := guest-physical address of the VIF page */
#define MSR_PVM_DETECT 0x4b564d11 /* reads PVM_SIGNATURE on a PVM host, #GP elsewhere */
#define PVM_SIGNATURE 0x4d5650	  /* "PVM" */

/* Page-table entry bits. U=1 everywhere: PVM runs the kernel at CPL 3. */
#define PTE_P 0x1
#define PTE_W 0x2
#define PTE_U 0x4
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80
#define PTE_TABLE (PTE_P | PTE_W | PTE_U)
#define PTE_LARGE (PTE_P | PTE_W | PTE_U | PTE_PS)

/* AP real-mode trampoline: one page of low RAM, SIPI vector = address >> 12. */
#define TRAMPOLINE_BASE 0x10000

#define MAX_CPUS 256
#define STACK_SIZE 16384 /* per vCPU; stacks are STACK_SIZE aligned, see percpu.h */

/* Boot protocols argon-guest was entered through. */
#define BOOT_PVH 1
#define BOOT_LINUX64 2

#endif
