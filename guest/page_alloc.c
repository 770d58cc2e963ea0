/* The page free list. Only the BSP runs commands, but the lock keeps it
 * honest if that ever changes. */
#include "memmap.h"
#include "page_alloc.h"
#include "spinlock.h"
#include "string.h"

static struct spinlock lock;
static uint64_t free_head; /* first word of each free page: the next one */
static uint64_t nfree;

uint64_t page_alloc(void)
{
	bool irq = spin_lock_irqsave(&lock);
	uint64_t pa = free_head;

	if (pa) {
		free_head = *(uint64_t *)pa;
		nfree--;
	}
	spin_unlock_irqrestore(&lock, irq);
	return pa ? pa : phys_alloc(PAGE_SIZE, PAGE_SIZE, UINT64_MAX);
}

void page_free(uint64_t pa)
{
	bool irq = spin_lock_irqsave(&lock);

	*(uint64_t *)pa = free_head;
	free_head = pa;
	nfree++;
	spin_unlock_irqrestore(&lock, irq);
}

uint64_t page_free_count(void)
{
	return nfree;
}

void *mem_alloc_zeroed(uint64_t bytes, uint64_t align)
{
	uint64_t pa = phys_alloc(bytes, align, UINT64_MAX);

	if (pa)
		memset((void *)pa, 0, bytes);
	return (void *)pa;
}
