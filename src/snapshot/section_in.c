#include "snapshot/section_in.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int section_in_open(struct section_in *in, const struct snap_reader *r, const char *file,
		    const char *kind, const char *id, uint32_t version, char *err, size_t errlen)
{
	*in = (struct section_in){ .file = file, .kind = kind, .id = id, .err = err,
				   .errlen = errlen };
	uint32_t have = 0;
	if (snap_section_find(r, kind, id, &have, &in->c) < 0) {
		snprintf(err, errlen, "snapshot %s: no section %s/%s", file, kind, id);
		return -ENOENT;
	}
	if (have != version) {
		snprintf(err, errlen, "snapshot %s: section %s/%s has version %u; this argon reads %u",
			 file, kind, id, have, version);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

void section_in_fail(struct section_in *in, const char *field, const char *fmt, ...)
{
	if (in->bad)
		return;
	in->bad = true;
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(in->err, in->errlen, "snapshot %s: section %s/%s: field %s: %s", in->file,
		 in->kind, in->id, field, why);
}

int section_in_close(struct section_in *in)
{
	if (in->bad)
		return -EINVAL;
	char why[256];
	if (snap_cursor_finish(&in->c, in->kind, in->id, why, sizeof(why)) == 0)
		return 0;
	snprintf(in->err, in->errlen, "snapshot %s: %s", in->file, why);
	return -EINVAL;
}

uint32_t section_in_count(struct section_in *in, const char *field, uint32_t max)
{
	uint32_t n = snap_get_u32(&in->c);
	if (in->c.failed)
		return 0;
	if (n > max) {
		section_in_fail(in, field, "%u entries, at most %u", n, max);
		in->c.failed = true; /* stop reading: the layout after it is unknown */
		return 0;
	}
	return n;
}
