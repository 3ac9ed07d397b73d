/*
 * Small helpers every process uses: fd flags, clocks, bounded string copy,
 * numbers, and the duration and size syntax of haloyd.conf.
 */
#ifndef HALOYD_UTIL_H
#define HALOYD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SWAP(a, b) do { __typeof__(a) swap_tmp_ = (a); (a) = (b); (b) = swap_tmp_; } while (0)

int util_set_nonblock(int fd);
int util_set_cloexec(int fd, int on);
uint64_t util_now_ms(void);	/* CLOCK_MONOTONIC */
uint64_t util_now_us(void);	/* CLOCK_MONOTONIC */
uint64_t util_wall_ns(void);	/* CLOCK_REALTIME */
/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t size);
/* Parses a decimal unsigned number in [min, max]; 0 on success, -1 otherwise. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/*
 * haloyd.conf's duration syntax: a decimal number with ms, s, m or h (a bare
 * number is seconds), into milliseconds. 0, or -1 when v is not one.
 */
int util_parse_duration_ms(const char *v, uint64_t *ms);
/* haloyd.conf's size syntax: bytes, or a number with k, m or g (powers of 1024). */
int util_parse_size(const char *v, uint64_t *out);
/* The shortest exact spelling of ms in that syntax ("90s", "2h", "500ms") into buf. */
void util_format_duration_ms(uint64_t ms, char *buf, size_t len);
/* The shortest exact spelling of a size ("10m", "1536", "3k") into buf. */
void util_format_size(uint64_t bytes, char *buf, size_t len);
/* A rate as nginx writes it ("10r/s", "600r/m") or "off" (0) into requests a minute. */
int util_parse_rate(const char *v, uint64_t *rpm);
/* rpm as "10r/s" when whole seconds, else "7r/m"; 0 is "off". */
void util_format_rate(uint64_t rpm, char *buf, size_t len);
/* Fills buf with cryptographically random bytes (getrandom); 0 or -1. */
int util_random(void *buf, size_t len);
/* v as 16 lowercase hex digits and a NUL into out[17] (request ids: no printf per request). */
void util_hex64(char out[17], uint64_t v);
/* The value of one hex digit (either case), or -1. */
int util_hexval(int c);
/*
 * v's digits in base (2 to 16, lowercase) written backwards to end at end,
 * without a NUL; returns where they begin (at most 64 bytes before end).
 * No printf on a request's path.
 */
char *util_digits(char *end, uint64_t v, unsigned base);

/* Formats a reason into err (when it has room); always returns -1. */
int util_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int util_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* 1 when all len bytes at p are zero (reserved fields). */
int util_all_zero(const void *p, size_t len);

#endif
