/* PVM hypercalls and CPUID; the rest of PVM mode is inline in pvm.h. */
#include "pvm.h"
#include "string.h"

long pvm_hypercall(uint64_t nr, uint64_t a0, uint64_t a1)
{
	long ret;

	__asm__ volatile("int $0x1b" : "=a"(ret) : "a"(nr), "b"(a0), "c"(a1) : "memory");
	return ret;
}

void guest_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	if (pvm_mode)
		__asm__ volatile("int $0x1a"
				 : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3])
				 : "a"(leaf), "c"(subleaf));
	else
		__asm__ volatile("cpuid"
				 : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3])
				 : "a"(leaf), "c"(subleaf));
}

void cpu_wait_pvm(volatile uint8_t *vif);

void cpu_wait(void)
{
	if (pvm_mode)
		cpu_wait_pvm(this_cpu()->vif);
	else
		__asm__ volatile("sti; hlt" ::: "memory");
}

bool hypervisor_is_kvm(void)
{
	uint32_t r[4];

	guest_cpuid(0x40000000, 0, r);
	return !memcmp(&r[1], "KVMK", 4) && !memcmp(&r[2], "VMKV", 4) && !memcmp(&r[3], "M\0\0\0", 4);
}
