/* Waiting for virtqueue completions: spin briefly, then sleep until an
 * interrupt. Interrupts are only armed for the sleep, so a busy driver takes
 * none (each costs a read and a write of virtio-mmio registers in the
 * handler, two exits to the VMM). */
#include "cpu.h"
#include "pvm.h"
#include "timer.h"
#include "virtio/virtqueue.h"

#define SPIN_US 300

uint64_t deadline_after_us(uint64_t timeout_us)
{
	return rdtsc() + timeout_us * tsc_khz_upper() / 1000;
}

void vq_idle(struct virtq *const *vqs, int n)
{
	bool ready = false;

	for (int i = 0; i < n; i++)
		ready |= vq_arm_irq(vqs[i]);
	irq_disable();
	for (int i = 0; i < n && !ready; i++)
		ready = vq_has_used(vqs[i]);
	if (ready)
		irq_enable();
	else
		cpu_wait();
	for (int i = 0; i < n; i++)
		vq_disarm_irq(vqs[i]);
}

bool vq_wait_used(struct virtq *vq, uint64_t timeout_us)
{
	uint64_t spin_end = deadline_after_us(SPIN_US), end = deadline_after_us(timeout_us);

	while (!vq_has_used(vq)) {
		uint64_t now = rdtsc();

		if ((int64_t)(now - end) >= 0)
			return false;
		if ((int64_t)(now - spin_end) < 0)
			cpu_relax();
		else
			vq_idle(&vq, 1);
	}
	return true;
}
