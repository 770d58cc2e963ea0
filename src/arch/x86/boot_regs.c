#include "arch/x86/boot_regs.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"

#define PTE_PRESENT 0x1ULL
#define PTE_WRITE 0x2ULL
#define PTE_USER 0x4ULL
#define PTE_HUGE 0x80ULL

#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define CR4_OSFXSR 0x200ULL
#define CR4_OSXMMEXCPT 0x400ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

/* Linux boot protocol (boot.rst, "64-bit Boot Protocol"): __BOOT_CS is 0x10 and
 * __BOOT_DS 0x18; the PVH ABI asks for the same flat layout in 32-bit form. */
#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20

static const uint64_t gdt_64[] = {
	0, 0,
	0x00af9b000000ffffULL, /* 0x10: 64-bit code, execute/read, accessed */
	0x00cf93000000ffffULL, /* 0x18: flat data, read/write, accessed */
	0x00008b0000000067ULL, /* 0x20: busy 64-bit TSS, base 0, limit 0x67 */
	0,
};

static const uint64_t gdt_32[] = {
	0, 0,
	0x00cf9b000000ffffULL, /* 0x10: flat 32-bit code, execute/read */
	0x00cf93000000ffffULL, /* 0x18: flat data, read/write */
	0x00008b0000000067ULL, /* 0x20: busy 32-bit TSS, base 0, limit 0x67 */
	0,
};

/* U=1 at every level: a PVM-aware guest (PVM.md) may run on these tables as they
 * are; hardware-virtualized guests do not care. */
int boot_page_tables_build(struct guest_mem *mem)
{
	uint64_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t *pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
	uint64_t *pd = guest_mem_ptr(mem, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -ENOSPC;
	const uint64_t table = PTE_PRESENT | PTE_WRITE | PTE_USER;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | table;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | table;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | table | PTE_HUGE;
	return 0;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0,
		.g = 1,
	};
}

static void set_segments(struct kvm_sregs *sregs, bool long_mode)
{
	struct kvm_segment code = flat_segment(SEL_CODE, 0xb, long_mode);
	struct kvm_segment data = flat_segment(SEL_DATA, 0x3, false);
	sregs->cs = code;
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
	sregs->tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = SEL_TSS,
					  .type = 0xb, .present = 1 };
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = sizeof(gdt_64) - 1;
	sregs->idt.base = LAYOUT_IDT;
	sregs->idt.limit = 0;
}

static int write_gdt(struct guest_mem *mem, bool long_mode)
{
	void *gdt = guest_mem_ptr(mem, LAYOUT_GDT, sizeof(gdt_64));
	if (!gdt)
		return -ENOSPC;
	memcpy(gdt, long_mode ? gdt_64 : gdt_32, sizeof(gdt_64));
	return 0;
}

static int set_sregs(struct guest_mem *mem, int vcpu_fd, bool long_mode)
{
	struct kvm_sregs sregs;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	set_segments(&sregs, long_mode);
	if (long_mode) {
		int err = boot_page_tables_build(mem);
		if (err)
			return err;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
		sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		sregs.efer = EFER_LME | EFER_LMA;
	} else {
		/* PVH: protected mode, paging off, CR4 zero (xen/arch-x86/hvm/start_info.h). */
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr3 = sregs.cr4 = 0;
		sregs.efer = 0;
	}
	return ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ? -errno : 0;
}

int boot_regs_setup(struct guest_mem *mem, int vcpu_fd, enum boot_entry_kind kind,
		    uint64_t entry, uint64_t boot_info_gpa)
{
	bool long_mode = kind == BOOT_ENTRY_LINUX64;
	int err = write_gdt(mem, long_mode);
	if (!err)
		err = set_sregs(mem, vcpu_fd, long_mode);
	if (err)
		return err;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	struct kvm_regs regs = { .rflags = 0x2, .rip = entry };
	if (long_mode) {
		regs.rsi = boot_info_gpa;
		regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
	} else {
		regs.rbx = boot_info_gpa;
	}
	return ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}
