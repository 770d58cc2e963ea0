/* AP start-up. The real-mode part is copied to TRAMPOLINE_BASE (the SIPI
 * vector is its page number); it switches to long mode with the kernel's own
 * page tables and GDT and jumps to ap_entry64 in the kernel image, which
 * enters PVM mode with the AP's own VIF page and calls ap_main.
 * Everything up to the wrmsr is emulated on PVM hosts: keep it short. */
#include "arch.h"

#define REL(x) ((x) - trampoline_start)

	.section .rodata
	.code16
	.globl trampoline_start, trampoline_end
trampoline_start:
	cli
	movw	%cs, %ax		/* CS = TRAMPOLINE_BASE >> 4, IP = 0 */
	movw	%ax, %ds
	lgdtl	REL(trampoline_gdt_ptr)
	movl	$1, %eax		/* PE */
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $(TRAMPOLINE_BASE + REL(trampoline32))

	.code32
trampoline32:
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
	ljmp	$SEL_CODE64, $ap_entry64

	.balign 8
trampoline_gdt_ptr:
	.word	4 * 8 - 1
	.long	gdt
trampoline_end:

/* The BSP fills these in before each INIT-SIPI-SIPI (APs start one at a
 * time, so one set suffices). */
	.data
	.balign 8
	.globl ap_boot_stack, ap_boot_vif
ap_boot_stack:	.quad 0
ap_boot_vif:	.quad 0

	.text
	.code64
ap_entry64:
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movq	ap_boot_stack, %rsp
	cmpb	$0, pvm_mode
	je	1f
	movl	ap_boot_vif, %eax
	movl	ap_boot_vif + 4, %edx
	movl	$MSR_PVM_VIF, %ecx
	wrmsr
	/* Native from here on. */
1:	cld
	call	ap_main
2:	hlt
	jmp	2b
