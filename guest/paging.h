/* Page tables beyond the static 4 GiB identity map of entry.S. */
#ifndef GUEST_PAGING_H
#define GUEST_PAGING_H

/* Identity-maps every RAM range above 4 GiB with 2 MiB pages (U=1). Returns
 * 0, or -1 when page-table memory ran out (what was mapped stays mapped). */
int paging_map_high_ram(void);

#endif
