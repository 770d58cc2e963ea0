/* CPUID and reset MSRs for a vCPU. Pure functions over KVM's structures, so they are
 * unit-tested without /dev/kvm. (Interface fixed by the lead: vcpu.c calls these.) */
#ifndef ARGON_ARCH_X86_CPUID_H
#define ARGON_ARCH_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/* Adjusts the table KVM_GET_SUPPORTED_CPUID returned (cpuid->nent entries, room for
 * capacity) in place for vCPU index of nvcpus: APIC ids, 2 threads per core, one
 * socket, the hypervisor bit, KVM's paravirtual leaves (kvm-clock) and, when tsc_khz
 * is non-zero, leaf 0x40000010 with the TSC and APIC bus frequencies. May append
 * entries up to capacity. Returns 0, -EINVAL for index/nvcpus out of range (the table
 * is left alone), or -ENOSPC when a topology leaf had no room. */
int cpuid_configure(struct kvm_cpuid2 *cpuid, uint32_t capacity, int index, int nvcpus,
		    uint32_t tsc_khz);
/* The same with one thread per core when smt is false (Firecracker's machine-config.smt,
 * false by default); cpuid_configure is smt true. */
int cpuid_configure_smt(struct kvm_cpuid2 *cpuid, uint32_t capacity, int index, int nvcpus,
			bool smt, uint32_t tsc_khz);

#define CPUID_MSR_RESET_MAX 32

/* Fills entries[] (room for max) with the MSRs a vCPU expects at reset; returns the
 * count, or -ENOSPC when max is too small. */
int cpuid_reset_msrs(struct kvm_msr_entry *entries, int max);

#endif
