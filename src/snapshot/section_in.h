/* Reading one section of a snapshot file as hostile input: the cursor (snapfile.h)
 * catches truncation; the reader adds checks of meaning (counts, indices, flags)
 * and reports the first failure as one line naming the file, the section and the
 * field: "snapshot /x/s.snap: section vcpu/1: field msrs[3].index: ...". */
#ifndef ARGON_SNAPSHOT_SECTION_IN_H
#define ARGON_SNAPSHOT_SECTION_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/snapfile.h"

struct section_in {
	struct snap_cursor c;
	const char *file;
	const char *kind;
	const char *id;
	char *err;
	size_t errlen;
	bool bad; /* a field was refused: err holds why */
};

/* Finds section kind/id in r and checks its version. Returns 0, or -ENOENT (missing)
 * / -EPROTONOSUPPORT (another version) with the line in err. */
int section_in_open(struct section_in *in, const struct snap_reader *r, const char *file,
		    const char *kind, const char *id, uint32_t version, char *err, size_t errlen);
/* Refuses the section for field: keeps the first message only. */
void section_in_fail(struct section_in *in, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 0 when every field was read and accepted and nothing is left over; else -EINVAL
 * with the line in err. */
int section_in_close(struct section_in *in);

/* A count field: read as u32 and refused above max (nothing is allocated or looped
 * on from a count before this). */
uint32_t section_in_count(struct section_in *in, const char *field, uint32_t max);

#endif
