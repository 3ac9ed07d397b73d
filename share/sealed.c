/* Creating, mapping and checking the headers of sealed memfd images (see sealed.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/hash.h"
#include "share/sealed.h"
#include "share/util.h"

#define SEALED_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int
sealed_create(const char *name, const void *p, size_t len, char *err, size_t errlen)
{
	const char *b = p;
	size_t done = 0;
	ssize_t n;
	int fd;

	if ((fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	while (done < len) {
		n = pwrite(fd, b + done, len - done, (off_t)done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "writing %s: %s", name,
			    n == 0 ? "short write" : strerror(errno));
			goto fail;
		}
		done += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, SEALED_SEALS) == -1) {
		snprintf(err, errlen, "sealing %s: %s", name, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
sealed_map(int fd, size_t min, size_t max, const void **pp, size_t *lenp, char *err,
    size_t errlen)
{
	struct stat st;
	void *p;
	int seals;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	/* Without these seals the master could change the image under us. */
	if ((seals = fcntl(fd, F_GET_SEALS)) == -1 || (seals & SEALED_SEALS) != SEALED_SEALS) {
		snprintf(err, errlen, "fd is not a sealed memfd");
		return -1;
	}
	if (st.st_size < (off_t)min || (uint64_t)st.st_size > (uint64_t)max) {
		snprintf(err, errlen, "size %lld out of bounds", (long long)st.st_size);
		return -1;
	}
	if ((p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	*pp = p;
	*lenp = (size_t)st.st_size;
	return 0;
}

int
sealed_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen > 0 && blen > 0 && a < b + blen && b < a + alen;
}

/* The CRC over base[0..size) with the four bytes at crc_off taken as zero. */
static uint32_t
sealed_crc(const uint8_t *base, size_t size, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t crc = hash_crc32c(0, base, crc_off);

	crc = hash_crc32c(crc, zero, sizeof(zero));
	return hash_crc32c(crc, base + crc_off + 4, size - crc_off - 4);
}

int
sealed_check_header(const uint8_t *base, size_t size, const struct sealed_form *f,
    char *err, size_t errlen)
{
	const struct sealed_prefix *h = (const struct sealed_prefix *)base;
	uint32_t want, crc;

	/* Entries are read in place, so the image must be aligned like a mapping. */
	if (((uintptr_t)base & 7) != 0)
		return util_errf(err, errlen, "image not 8-aligned in memory");
	if (size < f->header_size)
		return util_errf(err, errlen, "image too small (%zu bytes)", size);
	if ((uint64_t)size > f->max_size)
		return util_errf(err, errlen, "image too large (%zu bytes)", size);
	if (memcmp(h->magic, f->magic, sizeof(h->magic)) != 0)
		return util_errf(err, errlen, "bad magic");
	if (h->major != f->major)
		return util_errf(err, errlen, "unsupported version %u.%u", h->major, h->minor);
	if (h->header_size != f->header_size)
		return util_errf(err, errlen, "bad header size %u", h->header_size);
	if (h->file_size != size)
		return util_errf(err, errlen, "file size %llu in header, image is %zu bytes",
		    (unsigned long long)h->file_size, size);
	if (h->flags != 0 || !util_all_zero(base + f->reserved_off, f->reserved_len))
		return util_errf(err, errlen, "reserved header field set");
	if (f->own != NULL && f->own(base, err, errlen) == -1)
		return -1;
	memcpy(&want, base + f->crc_off, sizeof(want));
	if ((crc = sealed_crc(base, size, f->crc_off)) != want)
		return util_errf(err, errlen, "crc mismatch (header %08x, computed %08x)", want, crc);
	return 0;
}
