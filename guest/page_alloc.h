/* 4 KiB pages that can be given back: a free list on top of phys_alloc's
 * fresh memory. The balloon hands such pages to the host and takes them back;
 * drivers take their buffers from here or straight from phys_alloc. */
#ifndef GUEST_PAGE_ALLOC_H
#define GUEST_PAGE_ALLOC_H

#include <stdint.h>

#define PAGE_SIZE 4096

/* A page's physical (= virtual) address, or 0 when memory ran out. The page's
 * contents are undefined. */
uint64_t page_alloc(void);

/* Returns a page for reuse; the allocator keeps its link in the page. */
void page_free(uint64_t pa);

/* Pages on the free list (not counting fresh memory). */
uint64_t page_free_count(void);

/* Zeroed, align-aligned memory that is never freed (rings, buffers); 0 when
 * memory ran out. */
void *mem_alloc_zeroed(uint64_t bytes, uint64_t align);

#endif
