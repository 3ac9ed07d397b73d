/*
 * Compression benchmark (issue 17): throughput of the worker's encoders at
 * their on-the-fly settings (gzip 6, Brotli 4, zstd 3) on a 100 KiB HTML
 * page, one core, through struct compress_codec as the stage drives them:
 * the page in 16 KiB pieces (a backend's reads), each flushed. Reports MiB/s
 * of page per core and the ratio. Not part of `make check`; build with
 * `make tests/bench/compressbench`.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/compress.h"

#define PAGE (100 * 1024)
#define PIECE (16 * 1024)
#define SECONDS 1.0

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A page of table rows with varied words and numbers, as HTML looks. */
static char *
page(void)
{
	static const char *const words[] = { "proxy", "route", "backend", "worker", "stream",
	    "header", "cache", "client", "server", "haloyd", "compress", "window", "session" };
	char *p = malloc(PAGE + 512);
	size_t len = 0;
	uint32_t x = 42;

	len += (size_t)sprintf(p, "<!doctype html><html><head><title>report</title></head>"
	    "<body><table class=\"grid\">\n");
	while (len < PAGE) {
		x = x * 1103515245 + 12345;
		len += (size_t)sprintf(p + len, "<tr class=\"row-%u\"><td>%s</td><td>%s %s</td>"
		    "<td data-v=\"%u\">%u.%02u</td></tr>\n", (x >> 8) % 7, words[(x >> 4) % 13],
		    words[(x >> 12) % 13], words[(x >> 20) % 13], x % 100000, (x >> 3) % 1000,
		    (x >> 7) % 100);
	}
	return p;
}

static size_t
once(const struct compress_codec *cc, const char *src, char *out, size_t cap)
{
	struct compress_out o = { out, cap, 0 };
	void *st = cc->init();
	size_t at;

	for (at = 0; at < PAGE; at += PIECE) {
		size_t n = PAGE - at < PIECE ? PAGE - at : PIECE;

		if (cc->feed(st, src + at, n, &o) == -1 || cc->flush(st, &o) != 1) {
			fprintf(stderr, "%s failed\n", cc->name);
			exit(1);
		}
	}
	if (cc->finish(st, &o) != 1) {
		fprintf(stderr, "%s: finish failed\n", cc->name);
		exit(1);
	}
	cc->free(st);
	return o.len;
}

int
main(void)
{
	char *src = page(), *out = malloc(2 * PAGE);
	enum compress_enc e;

	printf("%-6s %10s %8s %10s\n", "coding", "MiB/s/core", "ratio", "bytes");
	for (e = COMPRESS_GZIP; e <= COMPRESS_ZSTD; e++) {
		const struct compress_codec *cc = compress_codec(e);
		double t0 = now(), t;
		size_t n = 0, len = 0;

		do {
			len = once(cc, src, out, 2 * PAGE);
			n++;
		} while ((t = now() - t0) < SECONDS);
		printf("%-6s %10.1f %8.2f %10zu\n", cc->name, (double)n * PAGE / t / (1 << 20),
		    (double)PAGE / (double)len, len);
	}
	free(src);
	free(out);
	return 0;
}
