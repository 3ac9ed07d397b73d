/*
 * Small helpers every process uses: fd flags, clocks, bounded string copy,
 * numbers, and the duration and size syntax of haloyd.conf.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "share/util.h"

int
util_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
util_set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl == -1)
		return -1;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl) == -1 ? -1 : 0;
}

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
util_now_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000ull;
}

uint64_t
util_now_us(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000ull;
}

uint64_t
util_wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

size_t
util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int
util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Splits v into its leading decimal number (at most 31 digits) and its suffix. */
static const char *
parse_number(const char *v, uint64_t max, uint64_t *x)
{
	char num[32];
	size_t n = strspn(v, "0123456789");

	if (n == 0 || n >= sizeof(num))
		return NULL;
	memcpy(num, v, n);
	num[n] = '\0';
	if (util_parse_u64(num, 0, max, x) == -1)
		return NULL;
	return v + n;
}

int
util_parse_rate(const char *v, uint64_t *rpm)
{
	const char *unit;
	uint64_t x;

	if (strcmp(v, "off") == 0) {
		*rpm = 0;
		return 0;
	}
	/* A rate of 0 is spelled "off": 0r/s would refuse every request. */
	if ((unit = parse_number(v, UINT32_MAX, &x)) == NULL || x == 0)
		return -1;
	if (strcmp(unit, "r/s") == 0)
		*rpm = x * 60;
	else if (strcmp(unit, "r/m") == 0)
		*rpm = x;
	else
		return -1;
	return 0;
}

void
util_format_rate(uint64_t rpm, char *buf, size_t len)
{
	if (rpm == 0)
		snprintf(buf, len, "off");
	else if (rpm % 60 == 0)
		snprintf(buf, len, "%llur/s", (unsigned long long)(rpm / 60));
	else
		snprintf(buf, len, "%llur/m", (unsigned long long)rpm);
}

int
util_parse_duration_ms(const char *v, uint64_t *ms)
{
	const char *unit;
	uint64_t x, mul;

	/* At most UINT32_MAX hours: the product cannot overflow. */
	if ((unit = parse_number(v, UINT32_MAX, &x)) == NULL)
		return -1;
	if (strcmp(unit, "ms") == 0)
		mul = 1;
	else if (*unit == '\0' || strcmp(unit, "s") == 0)
		mul = 1000;
	else if (strcmp(unit, "m") == 0)
		mul = 60000;
	else if (strcmp(unit, "h") == 0)
		mul = 3600000;
	else
		return -1;
	*ms = x * mul;
	return 0;
}

int
util_parse_size(const char *v, uint64_t *out)
{
	const char *unit;
	uint64_t x, shift;

	if ((unit = parse_number(v, UINT64_MAX >> 30, &x)) == NULL)
		return -1;
	if (unit[0] == '\0')
		shift = 0;
	else if (unit[1] != '\0')
		return -1;
	else if (unit[0] == 'k' || unit[0] == 'K')
		shift = 10;
	else if (unit[0] == 'm' || unit[0] == 'M')
		shift = 20;
	else if (unit[0] == 'g' || unit[0] == 'G')
		shift = 30;
	else
		return -1;
	*out = x << shift;
	return 0;
}

void
util_format_duration_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

void
util_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "gmk";
	int i;

	for (i = 0; i < 3; i++) {
		uint64_t unit = 1ull << (10 * (3 - i));

		if (bytes != 0 && bytes % unit == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(bytes / unit), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

int
util_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
util_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	return -1;
}

int
util_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_verrf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
util_all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

void
util_hex64(char out[17], uint64_t v)
{
	int i;

	for (i = 15; i >= 0; i--, v >>= 4)
		out[i] = "0123456789abcdef"[v & 15];
	out[16] = '\0';
}

int
util_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
util_digits(char *end, uint64_t v, unsigned base)
{
	do {
		*--end = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0);
	return end;
}
