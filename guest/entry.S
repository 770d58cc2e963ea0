/* argon-guest entry points.
 *
 * Until PVM mode is entered every instruction is emulated by KVM (~1.3 us
 * each on PVM hosts), so both paths do the least possible before the wrmsr
 * that registers the VIF page: load our own page tables and GDT, probe the
 * PVM MSR, enter PVM mode. Everything else happens natively in C.
 *
 *   pvh_entry      32-bit protected mode, paging off, EBX = hvm_start_info
 *   linux64_entry  64-bit mode, loader's paging, RSI = boot_params
 *                  (offset 0x200 of the image: the bzImage 64-bit entry)
 */
#include "arch.h"

	.section .head.text, "ax"
	.code32
	.globl pvh_entry
_head:
pvh_entry:
	movl	%ebx, boot_ptr
	movl	$BOOT_PVH, boot_kind
	lgdt	gdt_ptr
	movl	$CR4_VALUE, %eax
	movl	%eax, %cr4
	movl	$boot_pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	movl	$EFER_VALUE, %eax
	xorl	%edx, %edx
	wrmsr
	movl	$CR0_VALUE, %eax
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $start64

	/* The early #GP handler: only the PVM probe's rdmsr can fault here
	 * (a non-PVM host has no such MSR). Skip the 2-byte instruction. */
	.code64
early_gp:
	addq	$2, 8(%rsp)
	addq	$8, %rsp		/* error code */
	iretq

	.org	0x200
	.globl linux64_entry
linux64_entry:
	movq	%rsi, boot_ptr
	movl	$BOOT_LINUX64, boot_kind
	/* CR4 before CR3: SMEP/SMAP from the loader would fault on our U=1 pages. */
	movl	$CR4_VALUE, %eax
	movq	%rax, %cr4
	movl	$boot_pml4, %eax
	movq	%rax, %cr3
	movl	$CR0_VALUE, %eax
	movq	%rax, %cr0
	movl	$early_stack_top, %esp
	lgdt	gdt_ptr
	pushq	$SEL_CODE64
	pushq	$start64
	lretq

/* Common 64-bit path, still emulated: probe PVM, enter PVM mode. */
start64:
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	$early_stack_top, %esp
	lidt	early_idt_ptr
	xorl	%eax, %eax
	xorl	%edx, %edx
	movl	$MSR_PVM_DETECT, %ecx
	rdmsr				/* #GP -> early_gp skips it, EAX stays 0 */
	cmpl	$PVM_SIGNATURE, %eax
	jne	1f
	movl	$bsp_vif_page, %eax
	xorl	%edx, %edx
	movl	$MSR_PVM_VIF, %ecx
	wrmsr
	/* From here on the code runs natively. */
	movb	$1, pvm_mode
1:	rdtsc
	shlq	$32, %rdx
	orq	%rdx, %rax
	movq	%rax, tsc_at_boot
	cld
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	shrl	$3, %ecx
	xorl	%eax, %eax
	rep stosq
	movq	$cpu_stacks, %rsp
	movq	$cpus, (%rsp)		/* percpu.h: the stack's first word is its cpu */
	addq	$STACK_SIZE, %rsp
	movl	boot_kind, %edi
	movq	boot_ptr, %rsi
	call	kmain
2:	hlt
	jmp	2b

/* The early IDT: vectors 0..13, only #GP (13) present. The gate's offset
 * pieces are assembly-time constants because the image is linked at
 * KERNEL_BASE and early_gp is in this section. */
#define EARLY_GP (KERNEL_BASE + (early_gp - _head))
	.section .rodata
	.balign 16
early_idt:
	.fill	13 * 16, 1, 0
	.word	EARLY_GP & 0xffff
	.word	SEL_CODE64
	.word	0x8e00			/* present, DPL 0, 64-bit interrupt gate */
	.word	(EARLY_GP >> 16) & 0xffff
	.long	0
	.long	0
early_idt_end:
	.balign 8
early_idt_ptr:
	.word	early_idt_end - early_idt - 1
	.quad	early_idt

/* GDT: null, 32-bit code (PVH path and AP trampoline), 64-bit code, data. */
	.balign 16
	.globl gdt, gdt_ptr
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08 code32 */
	.quad	0x00af9a000000ffff	/* 0x10 code64 */
	.quad	0x00cf92000000ffff	/* 0x18 data */
gdt_end:
	.balign 8
gdt_ptr:
	.word	gdt_end - gdt - 1
	.quad	gdt

/* Xen PVH note: XEN_ELFNOTE_PHYS32_ENTRY (18), the 32-bit entry's address. */
	.section .note.Xen, "a"
	.balign 4
	.long	4			/* namesz */
	.long	8			/* descsz */
	.long	18			/* type */
	.asciz	"Xen"
	.quad	pvh_entry

/* Own identity map of the first 4 GiB with 2 MiB pages, U=1 at every level
 * (PVM requires it). The last GiB is the MMIO hole: uncached. */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl boot_pml4, boot_pdpt
boot_pml4:
	.quad	boot_pdpt + PTE_TABLE
	.fill	511, 8, 0
boot_pdpt:
	.quad	boot_pd + PTE_TABLE
	.quad	boot_pd + 0x1000 + PTE_TABLE
	.quad	boot_pd + 0x2000 + PTE_TABLE
	.quad	boot_pd + 0x3000 + PTE_TABLE
	.fill	508, 8, 0
boot_pd:
	.set	i, 0
	.rept	1536
	.quad	(i << 21) + PTE_LARGE
	.set	i, i + 1
	.endr
	.rept	512
	.quad	(i << 21) + PTE_LARGE + PTE_PCD + PTE_PWT
	.set	i, i + 1
	.endr

/* The BSP's VIF page: in .data so it is zero before the first wrmsr. */
	.section .data.vif, "aw"
	.balign 4096
	.globl bsp_vif_page
bsp_vif_page:
	.fill	4096, 1, 0

	.data
	.globl boot_kind, boot_ptr, pvm_mode, tsc_at_boot
	.balign 8
boot_ptr:	.quad 0
tsc_at_boot:	.quad 0
boot_kind:	.long 0
pvm_mode:	.byte 0

/* Early stack for the probe's exception frame only; dead once .bss is
 * cleared. */
	.section .bss
	.balign 16
	.space	512
early_stack_top:
