/* IDT setup and the C side of interrupt dispatch. */
#include <stdbool.h>

#include "apic.h"
#include "arch.h"
#include "idt.h"
#include "power.h"
#include "printf.h"
#include "pvm.h"

struct gate {
	uint16_t off_lo, sel, flags, off_mid;
	uint32_t off_hi, zero;
};

struct fixup {
	uint64_t insn, resume;
};

extern const char isr_stubs[256][16];
extern const struct fixup __fixup_start[], __fixup_end[];
extern const char halt_window_start[], halt_window_end[];

static struct gate idt[256] __attribute__((aligned(16)));
static irq_handler handlers[256];
int vec_count[256];

void idt_init(void)
{
	for (int v = 0; v < 256; v++) {
		uint64_t off = (uint64_t)isr_stubs[v];

		idt[v] = (struct gate){
			.off_lo = off & 0xffff,
			.sel = SEL_CODE64,
			.flags = 0x8e00, /* present, DPL 0, interrupt gate */
			.off_mid = (off >> 16) & 0xffff,
			.off_hi = off >> 32,
		};
	}
}

void idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) ptr = { sizeof(idt) - 1, (uint64_t)idt };

	__asm__ volatile("lidt %0" : : "m"(ptr));
}

void idt_set_handler(int vector, irq_handler h)
{
	handlers[vector] = h;
}

int safe_rdmsr(uint32_t msr, uint64_t *val)
{
	uint32_t lo = 0, hi = 0;
	int err = 0;

	__asm__ volatile("1: rdmsr\n"
			 "2:\n" FIXUP_ENTRY("1b", "3f") ".pushsection .text.fixup, \"ax\"\n"
			 "3: movl $-1, %2\n"
			 "jmp 2b\n"
			 ".popsection\n"
			 : "+a"(lo), "+d"(hi), "+r"(err)
			 : "c"(msr));
	*val = ((uint64_t)hi << 32) | lo;
	return err;
}

static bool apply_fixup(struct irq_frame *f)
{
	for (const struct fixup *x = __fixup_start; x < __fixup_end; x++) {
		if (x->insn == f->rip) {
			f->rip = x->resume;
			return true;
		}
	}
	return false;
}

static void exception(struct irq_frame *f)
{
	uint64_t cr2 = 0;

	if (apply_fixup(f))
		return;
	/* In PVM mode too: the VIF page's cr2 field stayed 0 in our tests, while
	 * the (trapped) mov from CR2 is right. */
	if (f->vector == 14)
		cr2 = read_cr2();
	printf("argon-guest: cpu %u: exception %lu error 0x%lx at rip 0x%lx cr2 0x%lx\n",
	       this_cpu()->index, f->vector, f->error, f->rip, cr2);
	printf("  rax %016lx rbx %016lx rcx %016lx rdx %016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
	printf("  rsi %016lx rdi %016lx rbp %016lx rsp %016lx\n", f->rsi, f->rdi, f->rbp, f->rsp);
	guest_panic();
}

void isr_dispatch(struct irq_frame *f);
void isr_dispatch(struct irq_frame *f)
{
	uint64_t rip = f->rip;

	if (f->vector < 32) {
		exception(f);
		return;
	}
	/* See cpu_wait_pvm in isr.S. */
	if (rip >= (uint64_t)halt_window_start && rip < (uint64_t)halt_window_end)
		f->rip = (uint64_t)halt_window_end;
	this_cpu()->irqs++;
	vec_count[f->vector]++;
	if (handlers[f->vector])
		handlers[f->vector](f);
	if (f->vector != VEC_SPURIOUS)
		apic_eoi();
}
