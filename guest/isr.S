/* Interrupt and exception entry: one stub per vector pushes (error code,
 * vector) and joins isr_common, which saves the registers as a struct
 * irq_frame (idt.h) and calls isr_dispatch. In PVM mode the frame is on the
 * current stack and iretq is emulated by the hypervisor. */
#include "arch.h"

#define PVM_HC_UNKNOWN 0x7fff

	.text
/* 256 stubs, 16 bytes apart (idt.c computes their addresses). Exceptions
 * 8 10-14 17 21 29 30 push an error code; the others push a 0 in its place. */
	.balign	16
	.globl	isr_stubs
isr_stubs:
	.set	v, 0
	.rept	256
	.balign	16
	.if (v == 8) || (v >= 10 && v <= 14) || (v == 17) || (v == 21) || (v == 29) || (v == 30)
	.else
	pushq	$0
	.endif
	pushq	$v
	jmp	isr_common
	.set	v, v + 1
	.endr
	.balign	16
	.globl	isr_stubs_end
isr_stubs_end:		/* argon-guest.ld checks the size */

isr_common:
	pushq	%r15
	pushq	%r14
	pushq	%r13
	pushq	%r12
	pushq	%r11
	pushq	%r10
	pushq	%r9
	pushq	%r8
	pushq	%rbp
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%rcx
	pushq	%rbx
	pushq	%rax
	cld
	movq	%rsp, %rdi
	movq	%rsp, %rbx
	andq	$-16, %rsp		/* the ABI wants it; a PVM frame may not be aligned */
	call	isr_dispatch
	movq	%rbx, %rsp
	popq	%rax
	popq	%rbx
	popq	%rcx
	popq	%rdx
	popq	%rsi
	popq	%rdi
	popq	%rbp
	popq	%r8
	popq	%r9
	popq	%r10
	popq	%r11
	popq	%r12
	popq	%r13
	popq	%r14
	popq	%r15
	addq	$16, %rsp		/* vector, error code */
	iretq

/* cpu_wait for PVM mode (pvm.h); RDI = this vCPU's VIF page.
 * There is no "sti; hlt" atomicity in PVM mode: an interrupt delivered after
 * if_ = 1 but before the hlt would leave us asleep with the wake-up already
 * consumed. isr_dispatch therefore moves an interrupted RIP inside
 * [halt_window_start, halt_window_end) to halt_window_end: the hlt is
 * skipped and the caller re-checks its condition. */
	.globl cpu_wait_pvm, halt_window_start, halt_window_end
cpu_wait_pvm:
	movb	$1, (%rdi)
halt_window_start:
	cmpb	$0, 1(%rdi)		/* pending: an exit gets it delivered */
	je	1f
	movl	$PVM_HC_UNKNOWN, %eax
	int	$0x1b
1:	hlt
halt_window_end:
	ret

