/*
 * Snapshot benchmark: builds a 100 000-route snapshot (one alias and two
 * backends per route), then reports build time, image size, map+validate
 * time, lookup cost and the RSS a worker gains by mapping it. Not part of
 * `make check`; build with `make tests/bench/snapbench`.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/snap.h"

#define NROUTES 100000
#define NAME_MAX_LEN 40
#define RUNS 5
#define NLOOKUPS 1000000

/* The generated input and the names it points into. */
struct bench {
	struct snapb_route *routes;
	struct snapb_host *hosts;
	struct snapb_backend *backends;
	char *names;		/* 2 * NROUTES slots of NAME_MAX_LEN bytes */
	struct snapb_input in;
	uint32_t *picks;	/* host indexes to look up */
};

/* CLOCK_MONOTONIC for times, CLOCK_PROCESS_CPUTIME_ID for CPU, which the load moves less. */
static uint64_t
now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* VmRSS of this process in KiB, from /proc/self/status. */
static long
rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void
bench_input(struct bench *b)
{
	uint32_t i;

	b->routes = calloc(NROUTES, sizeof(*b->routes));
	b->hosts = calloc(2 * NROUTES, sizeof(*b->hosts));
	b->backends = calloc(2 * NROUTES, sizeof(*b->backends));
	b->names = malloc((size_t)2 * NROUTES * NAME_MAX_LEN);
	if (b->routes == NULL || b->hosts == NULL || b->backends == NULL || b->names == NULL) {
		fprintf(stderr, "snapbench: out of memory\n");
		exit(1);
	}
	for (i = 0; i < NROUTES; i++) {
		char *n = b->names + (size_t)2 * i * NAME_MAX_LEN, *a = n + NAME_MAX_LEN;

		snprintf(n, NAME_MAX_LEN, "app%u.example.com", i);
		snprintf(a, NAME_MAX_LEN, "www.app%u.example.com", i);
		b->routes[i] = (struct snapb_route){ .id = i + 1, .name = n, .be_first = 2 * i,
		    .be_count = 2 };
		b->hosts[2 * i] = (struct snapb_host){ 2 * i + 1, n, i, SNAP_HOST_EXACT, NULL };
		b->hosts[2 * i + 1] = (struct snapb_host){ 2 * i + 2, a, i, SNAP_HOST_ALIAS, NULL };
		b->backends[2 * i] = (struct snapb_backend){ 2 * i + 1, AF_INET,
		    (uint16_t)(3000 + i % 1000), { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), 1 }, 0, NULL };
		b->backends[2 * i + 1] = b->backends[2 * i];
		b->backends[2 * i + 1].id = 2 * i + 2;
		b->backends[2 * i + 1].addr[3] = 2;
	}
	b->in.routes = b->routes;
	b->in.nroutes = NROUTES;
	b->in.hosts = b->hosts;
	b->in.nhosts = 2 * NROUTES;
	b->in.backends = b->backends;
	b->in.nbackends = 2 * NROUTES;
	b->in.default_route = SNAP_NONE;
	b->in.generation = 1;
}

/* Builds RUNS times; returns the last fd, the median time and the median CPU. */
static int
bench_build(struct bench *b, uint64_t *ns, uint64_t *cpu)
{
	uint64_t t[RUNS], c[RUNS], t0, c0;
	char err[256];
	int fd = -1, i;

	for (i = 0; i < RUNS; i++) {
		if (fd >= 0)
			close(fd);
		t0 = now_ns(CLOCK_MONOTONIC);
		c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
		if (snapb_build(&b->in, &fd, err, sizeof(err)) == -1) {
			fprintf(stderr, "snapbench: build: %s\n", err);
			exit(1);
		}
		c[i] = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
		t[i] = now_ns(CLOCK_MONOTONIC) - t0;
	}
	*ns = median(t, RUNS);
	*cpu = median(c, RUNS);
	return fd;
}

/* The median time and CPU of mapping and validating the image, as each worker does. */
static void
bench_map(int fd, uint64_t *ns, uint64_t *cpu)
{
	uint64_t t[RUNS], c[RUNS], t0, c0;
	struct snap *s;
	char err[256];
	int i;

	for (i = 0; i < RUNS; i++) {
		t0 = now_ns(CLOCK_MONOTONIC);
		c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
		if (snap_map(fd, &s, err, sizeof(err)) == -1) {
			fprintf(stderr, "snapbench: map: %s\n", err);
			exit(1);
		}
		c[i] = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
		t[i] = now_ns(CLOCK_MONOTONIC) - t0;
		snap_unref(s);
	}
	*ns = median(t, RUNS);
	*cpu = median(c, RUNS);
}

/* Host indexes to look up, picked with a fixed-seed xorshift before any timing. */
static void
bench_picks(struct bench *b)
{
	uint32_t i, x = 2463534242u;

	if ((b->picks = malloc(NLOOKUPS * sizeof(*b->picks))) == NULL) {
		fprintf(stderr, "snapbench: out of memory\n");
		exit(1);
	}
	for (i = 0; i < NLOOKUPS; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b->picks[i] = x % (2 * NROUTES);
	}
}

enum pick {
	PICK_ALL,		/* any of the 200 000 names: mostly cache misses */
	PICK_HOT,		/* HOT_NAMES of them: the working set stays in cache */
	PICK_MISS,		/* an unknown name: exact and wildcard probes */
};
#define HOT_NAMES 1000

/* ns per lookup over NLOOKUPS names chosen as mode says. */
static double
bench_lookups(const struct bench *b, const struct snap *s, enum pick mode)
{
	char missname[NAME_MAX_LEN];
	uint64_t t0, sum = 0;
	const struct snap_route *r;
	const char *n;
	uint32_t i;

	snprintf(missname, sizeof(missname), "nosuch.example.com");
	t0 = now_ns(CLOCK_MONOTONIC);
	for (i = 0; i < NLOOKUPS; i++) {
		if (mode == PICK_MISS)
			n = missname;
		else
			n = b->names + (size_t)(mode == PICK_HOT ? b->picks[i] % HOT_NAMES :
			    b->picks[i]) * NAME_MAX_LEN;
		if ((r = snap_lookup(s, n, strlen(n))) != NULL)
			sum += r->id;
		else if (mode != PICK_MISS)
			fprintf(stderr, "snapbench: %s not found\n", n);
	}
	t0 = now_ns(CLOCK_MONOTONIC) - t0;
	if (sum == 1)
		printf("(checksum %llu)\n", (unsigned long long)sum);
	return (double)t0 / NLOOKUPS;
}

int
main(void)
{
	struct bench b;
	struct snap *s;
	struct stat st;
	uint64_t build_ns, build_cpu, map_ns, map_cpu;
	long rss0, rss1, rss2;
	char err[256];
	int fd;

	memset(&b, 0, sizeof(b));
	bench_input(&b);
	bench_picks(&b);
	printf("routes: %u (1 alias and 2 backends each: %u hosts, %u backends)\n", NROUTES,
	    2 * NROUTES, 2 * NROUTES);
	fd = bench_build(&b, &build_ns, &build_cpu);
	printf("build (median of %d): %.1f ms, CPU %.1f ms\n", RUNS, build_ns / 1e6,
	    build_cpu / 1e6);
	fstat(fd, &st);
	printf("image size: %lld bytes (%.1f MiB, %.0f bytes per route)\n", (long long)st.st_size,
	    st.st_size / 1048576.0, (double)st.st_size / NROUTES);
	bench_map(fd, &map_ns, &map_cpu);
	printf("snap_map, map + validate (median of %d): %.1f ms, CPU %.1f ms\n", RUNS,
	    map_ns / 1e6, map_cpu / 1e6);
	rss0 = rss_kib();
	if (snap_map(fd, &s, err, sizeof(err)) == -1) {
		fprintf(stderr, "snapbench: map: %s\n", err);
		return 1;
	}
	rss1 = rss_kib();
	printf("lookup, hit, %d random of all %u names: %.1f ns\n", NLOOKUPS, 2 * NROUTES,
	    bench_lookups(&b, s, PICK_ALL));
	printf("lookup, hit, %d random of %d hot names: %.1f ns\n", NLOOKUPS, HOT_NAMES,
	    bench_lookups(&b, s, PICK_HOT));
	printf("lookup, miss (exact and wildcard probes), %d times: %.1f ns\n", NLOOKUPS,
	    bench_lookups(&b, s, PICK_MISS));
	rss2 = rss_kib();
	printf("RSS before map: %ld KiB\n", rss0);
	printf("RSS growth after map + validate: %ld KiB (the image's pages; shared page "
	    "cache, one copy for the master and all workers)\n", rss1 - rss0);
	printf("RSS growth after %d lookups: %ld KiB (lookups allocate nothing; workers "
	    "allocate nothing per route)\n", 3 * NLOOKUPS, rss2 - rss1);
	snap_unref(s);
	close(fd);
	free(b.picks);
	free(b.routes);
	free(b.hosts);
	free(b.backends);
	free(b.names);
	return 0;
}
