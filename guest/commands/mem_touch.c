/* mem-touch MiB: takes MiB of pages from the page allocator, writes every page (so
 * the host has to back them), and gives them back to the free list. A later
 * `balloon` inflates with these pages first, which is how a test sees the VMM's
 * resident memory shrink when the balloon grows. */
#include "commands/commands.h"
#include "page_alloc.h"
#include "power.h"
#include "printf.h"

#define MAX_MIB 65536

static int mem_touch(int argc, char **argv)
{
	uint64_t mib, pages, taken = 0, head = 0;

	if (arg_count(argc, argv, 1, 64, MAX_MIB, &mib))
		return STATUS_USAGE;
	pages = mib * (1 << 20) / PAGE_SIZE;
	/* Chain the pages through their first word so none needs a separate list. */
	for (; taken < pages; taken++) {
		uint64_t pa = page_alloc();

		if (!pa)
			break;
		volatile uint64_t *p = (volatile uint64_t *)pa;
		for (unsigned i = 0; i < PAGE_SIZE / sizeof(uint64_t); i += 64)
			p[i] = pa ^ i;
		p[0] = head;
		head = pa;
	}
	while (head) {
		uint64_t next = *(volatile uint64_t *)head;

		page_free(head);
		head = next;
	}
	printf("mem-touch: touched_mib %lu free_pages %lu\n", taken * PAGE_SIZE >> 20,
	       page_free_count());
	return taken == pages ? STATUS_OK : STATUS_FAILED;
}

const struct command cmd_mem_touch = { "mem-touch", "[MiB]",
				       "touch MiB of pages, then free them for reuse", mem_touch };
