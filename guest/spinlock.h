/* Test-and-set spinlock that also masks interrupts on this vCPU, so an
 * interrupt handler taking the same lock cannot deadlock against us. */
#ifndef GUEST_SPINLOCK_H
#define GUEST_SPINLOCK_H

#include <stdbool.h>

#include "pvm.h"

struct spinlock {
	volatile int locked;
};

static inline bool spin_lock_irqsave(struct spinlock *l)
{
	bool was = irq_save();

	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (l->locked)
			cpu_relax();
	return was;
}

static inline void spin_unlock_irqrestore(struct spinlock *l, bool was)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	irq_restore(was);
}

#endif
