/* Kernel loading entry points: read the file, tell the format by its content (never
 * by its name), dispatch to the bzImage or ELF loader; and initrd placement. */
#include "loader/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "common/log.h"
#include "common/util.h"
#include "loader/bootproto.h"
#include "loader/loader_internal.h"

int loader_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Opens path as a regular file no larger than max; returns the fd or -errno. */
static int open_bounded(const char *path, const char *what, uint64_t max, uint64_t *size,
			char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		return loader_fail(err, errlen, rc, "%s: cannot open %s: %s", path, what, strerror(-rc));
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0)
		rc = loader_fail(err, errlen, -errno, "%s: cannot stat %s: %s", path, what,
				 strerror(errno));
	else if (S_ISDIR(st.st_mode)) /* a wrong path, not a bad image: 66, as for a disk */
		rc = loader_fail(err, errlen, -EISDIR, "%s: %s: %s", path, what, strerror(EISDIR));
	else if (!S_ISREG(st.st_mode))
		rc = loader_fail(err, errlen, -EINVAL, "%s: %s is not a regular file", path, what);
	else if ((uint64_t)st.st_size > max)
		rc = loader_fail(err, errlen, -EFBIG, "%s: %s is %llu bytes, more than the %llu MiB limit",
				 path, what, (unsigned long long)st.st_size,
				 (unsigned long long)(max >> 20));
	if (rc) {
		close(fd);
		return rc;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* Reads exactly len bytes of fd into buf; a file that shrank or grew meanwhile is an
 * error, so what was checked is what gets loaded. */
static int read_exact(int fd, const char *path, uint8_t *buf, uint64_t len, char *err,
		      size_t errlen)
{
	uint64_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, buf + done, MIN(len - done, (uint64_t)1 << 30));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return loader_fail(err, errlen, -errno, "%s: read failed: %s", path,
					   strerror(errno));
		if (n == 0)
			return loader_fail(err, errlen, -EIO, "%s: file shrank while being read", path);
		done += (uint64_t)n;
	}
	uint8_t extra;
	if (read(fd, &extra, 1) > 0)
		return loader_fail(err, errlen, -EIO, "%s: file grew while being read", path);
	return 0;
}

int load_kernel(struct guest_mem *mem, const char *path, struct boot_image *out, char *err,
		size_t errlen)
{
	uint64_t size = 0;
	int fd = open_bounded(path, "kernel image", LOADER_MAX_IMAGE, &size, err, errlen);
	if (fd < 0)
		return fd;
	uint8_t *buf = malloc(size ? size : 1);
	int rc;
	if (!buf)
		rc = loader_fail(err, errlen, -ENOMEM, "%s: cannot allocate %llu bytes", path,
				 (unsigned long long)size);
	else
		rc = read_exact(fd, path, buf, size, err, errlen);
	close(fd);
	if (rc == 0)
		rc = load_kernel_buffer(mem, path, buf, size, out, err, errlen);
	free(buf);
	return rc;
}

/* The one-line reason for an image that is neither format. */
static int unknown_format(const char *name, const uint8_t *data, size_t len, char *err,
			  size_t errlen)
{
	const char *what = "not a Linux bzImage or x86-64 ELF kernel";
	if (len < BP_HEADER + 4)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: %s (only %zu bytes: too short for a setup header with "
				   "'HdrS' at 0x202, no ELF magic)",
				   name, what, len);
	if (bp_le32(data + BP_HEADER) == BP_HEADER_MAGIC)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: %s ('HdrS' at 0x202 but boot flag 0x%04x at 0x1fe, "
				   "expected 0xaa55)",
				   name, what, bp_le16(data + BP_BOOT_FLAG));
	return loader_fail(err, errlen, -ENOEXEC, "%s: %s (no 'HdrS' at 0x202, no ELF magic)", name,
			   what);
}

int load_kernel_buffer(struct guest_mem *mem, const char *name, const uint8_t *data, size_t len,
		       struct boot_image *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if (!data)
		len = 0;
	int rc;
	if (bzimage_detect(data, len)) {
		rc = bzimage_load(mem, name, data, len, out, err, errlen);
	} else if (elf_detect(data, len)) {
		rc = elf_load(mem, name, data, len, true, out, err, errlen);
		if (rc == 0)
			elf_synth_setup_header(out);
	} else {
		rc = unknown_format(name, data, len, err, errlen);
	}
	if (rc == 0)
		log_debug("%s: %s entry 0x%llx, occupies [0x%llx, 0x%llx), compression %s", name,
			  out->entry_kind == BOOT_ENTRY_PVH ? "PVH" : "64-bit Linux",
			  (unsigned long long)out->entry, (unsigned long long)out->load_start,
			  (unsigned long long)out->load_end, out->compression);
	return rc;
}

/* boot.rst, "Loading The Rest of The Kernel" / initrd_addr_max: the initrd goes as
 * high as possible below min(initrd_addr_max + 1, end of low RAM), page aligned, and
 * never over the kernel or below 1 MiB. */
static int place_initrd(const struct guest_mem *mem, const char *path, uint64_t size,
			uint64_t addr_max, uint64_t kernel_end, uint64_t *gpa, char *err,
			size_t errlen)
{
	uint64_t low_end = guest_mem_low_end(mem);
	uint64_t top = (low_end > 0 && addr_max < low_end - 1) ? addr_max + 1 : low_end;
	uint64_t floor = MAX(kernel_end, LAYOUT_HIMEM_START);
	uint64_t room = 0;
	if (floor < top && top - floor >= 4096)
		room = ALIGN_DOWN(top, 4096) - ALIGN_UP(floor, 4096);
	if (size > room)
		return loader_fail(err, errlen, -EFBIG,
				   "%s: initrd is %llu bytes (%llu MiB) but only %llu bytes fit between "
				   "the kernel's end 0x%llx and the limit 0x%llx (initrd_addr_max "
				   "0x%llx, low RAM ends at 0x%llx)",
				   path, (unsigned long long)size, (unsigned long long)(size >> 20),
				   (unsigned long long)room, (unsigned long long)floor,
				   (unsigned long long)top, (unsigned long long)addr_max,
				   (unsigned long long)low_end);
	*gpa = ALIGN_DOWN(top - size, 4096);
	return 0;
}

int load_initrd(struct guest_mem *mem, const char *path, uint64_t initrd_addr_max,
		uint64_t kernel_end, uint64_t *gpa, uint64_t *size, char *err, size_t errlen)
{
	uint64_t fsize = 0, at = 0;
	int fd = open_bounded(path, "initrd", UINT64_MAX, &fsize, err, errlen);
	if (fd < 0)
		return fd;
	int rc = 0;
	if (fsize == 0)
		rc = loader_fail(err, errlen, -EINVAL, "%s: initrd is empty", path);
	if (rc == 0)
		rc = place_initrd(mem, path, fsize, initrd_addr_max, kernel_end, &at, err, errlen);
	uint8_t *dst = rc == 0 ? guest_mem_ptr(mem, at, fsize) : NULL;
	if (rc == 0 && !dst)
		rc = loader_fail(err, errlen, -EFBIG, "%s: initrd at 0x%llx is not in guest RAM", path,
				 (unsigned long long)at);
	if (rc == 0)
		rc = read_exact(fd, path, dst, fsize, err, errlen);
	close(fd);
	if (rc)
		return rc;
	*gpa = at;
	*size = fsize;
	return 0;
}
