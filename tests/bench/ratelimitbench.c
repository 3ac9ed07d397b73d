/*
 * Rate-limit benchmark (issue 15): the cost of one rate-limit check as the
 * request step makes it (ratelimit_request: the client from the peer, the
 * route's policy, the table lookup, the bucket's CAS), one core, for 16 hot
 * clients (in cache; 16 so that none passes the largest rate, 1000000r/s,
 * and every check is a CAS that passes) and for 100 000 distinct clients
 * round-robin (every lookup a cache miss, the table holding them all), with
 * the shared region's memory per client. Not part of `make check`; build with `make tests/bench/ratelimitbench`.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "share/clients.h"
#include "share/shm.h"
#include "share/snap.h"
#include "worker/context.h"
#include "worker/message.h"
#include "worker/ratelimit.h"

#define CLIENTS 100000
#define WORKERS 8
#define SECONDS 1.0

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per check over SECONDS, clients taken round-robin from ips[0..n). */
static double
run(struct worker *w, const struct snap_route *r, const struct msg_head *h, char (*ips)[16],
    size_t n, uint64_t *refused)
{
	struct ratelimit_result res;
	double t0 = now(), t;
	uint64_t calls = 0;
	size_t i = 0, k;

	*refused = 0;
	do {
		for (k = 0; k < 1000; k++) {
			ratelimit_request(w, ips[i], 0, h, r, &res);
			*refused += res.v == RATELIMIT_REFUSE;
			if (++i == n)
				i = 0;
		}
		calls += 1000;
	} while ((t = now() - t0) < SECONDS);
	return t * 1e9 / (double)calls;
}

int
main(void)
{
	static char ips[CLIENTS][16];
	struct snap_route r = { .id = 1, .rate_rpm = SNAP_RATE_RPM_MAX, .rate_burst = 1000000,
	    .flags = SNAP_ROUTE_RATE_NODELAY };
	struct shm_wslot priv;
	struct worker w;
	struct msg_head h;
	char err[256];
	uint64_t refused;
	size_t i, size = (size_t)CLIENTS * SHM_CLIENT_SIZE(WORKERS) * 2 + shm_needed(WORKERS);
	double hot, many;
	int fd;

	memset(&w, 0, sizeof(w));
	memset(&priv, 0, sizeof(priv));
	if ((fd = shm_create(size, WORKERS, &w.shm, err, sizeof(err))) == -1) {
		fprintf(stderr, "ratelimitbench: %s\n", err);
		return 1;
	}
	w.stats = &priv;
	msg_init(&h);
	if (msg_add(&h, "Host", "bench.local") == -1)
		return 1;
	for (i = 0; i < CLIENTS; i++)
		snprintf(ips[i], sizeof(ips[i]), "10.%zu.%zu.%zu", i >> 16 & 255, i >> 8 & 255,
		    i & 255);
	hot = run(&w, &r, &h, ips, 16, &refused);
	printf("16 clients:       %6.0f ns per check (refused %llu)\n", hot,
	    (unsigned long long)refused);
	many = run(&w, &r, &h, ips, CLIENTS, &refused);
	printf("%d clients:   %6.0f ns per check (refused %llu)\n", CLIENTS, many,
	    (unsigned long long)refused);
	printf("memory: %zu bytes per client entry with %d workers; %d clients in %.1f MiB "
	    "(table of %u entries in a %.1f MiB region)\n", SHM_CLIENT_SIZE(WORKERS), WORKERS,
	    CLIENTS, (double)CLIENTS * (double)SHM_CLIENT_SIZE(WORKERS) / (1 << 20),
	    w.shm.nclients, (double)size / (1 << 20));
	msg_free(&h);
	shm_unmap(&w.shm);
	close(fd);
	return 0;
}
