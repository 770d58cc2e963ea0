/* Whether a guest runs natively on a PVM host (/work/shared/PVM.md). On such a host only
 * a PVM-aware kernel runs at native speed: it registers a VIF page (MSR 0x4b564d10) in
 * its first few instructions, before it touches any device. Anything else runs under
 * KVM's instruction emulator, thousands of times slower, and a person who boots it
 * should be told so rather than left to wonder. */
#ifndef ARGON_VMM_PVM_MODE_H
#define ARGON_VMM_PVM_MODE_H

#include <stdbool.h>

struct vcpu;

/* Called on vCPU 0's thread at its first exit to argon-vmm: on a PVM host, warns once
 * when the guest has registered no VIF page. Returns true when it warned. */
bool pvm_mode_check(struct vcpu *vcpu);

#endif
