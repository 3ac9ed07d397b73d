/* Creating and mapping sealed memfds (see sealed.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/sealed.h"

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
