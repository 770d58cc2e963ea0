/* Questions about the memory map, and a bump allocator of fresh physical
 * memory (RAM above the kernel, never handed out twice). */
#ifndef GUEST_MEMMAP_H
#define GUEST_MEMMAP_H

#include <stdbool.h>
#include <stdint.h>

/* True when every byte of [addr, addr+len) lies in some memory-map entry
 * (of any type: RAM, ACPI, reserved). Guest pointers are checked with this. */
bool memmap_covers(uint64_t addr, uint64_t len);

/* True when [addr, addr+len) is entirely RAM. */
bool memmap_is_ram(uint64_t addr, uint64_t len);

/* Sum of RAM entries, in bytes. */
uint64_t memmap_ram_bytes(void);

/* Highest RAM address + 1. */
uint64_t memmap_ram_end(void);

/* Prepares the allocator: RAM above the kernel image. */
void phys_init(void);

/* Returns align-aligned fresh memory of size bytes ending at or below limit,
 * or 0. Memory is never freed. */
uint64_t phys_alloc(uint64_t size, uint64_t align, uint64_t limit);

/* Bytes phys_alloc could still hand out, in all ranges. */
uint64_t phys_free_bytes(void);

/* Largest block phys_alloc could still return with the given alignment. */
uint64_t phys_largest_free(uint64_t align);

#endif
