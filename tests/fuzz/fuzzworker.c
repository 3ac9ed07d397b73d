/*
 * The harnesses' worker fixture (see fuzzworker.h). Failures here are the
 * harness's own set-up, never the input's: they abort at once.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/snap.h"
#include "tests/fuzz/fuzzworker.h"

/*
 * app: a rate limit that never refuses (every request walks X-Forwarded-For and the client
 * table); wild: one that refuses after two (429, Retry-After, RESOURCE_EXHAUSTED).
 */
static const struct snapb_route fw_routes[] = {
	{ .id = 1, .name = "app.example.com", .flags = SNAP_ROUTE_HSTS,
	    .rate_rpm = SNAP_RATE_RPM_MAX, .rate_burst = SNAP_RATE_BURST_MAX },
	{ .id = 2, .name = "api.example.com", .max_body = 1024 },
	{ .id = 3, .name = "wild.example.com", .rate_rpm = 60, .rate_burst = 2 },
	/* Path-prefix routes of app: every fuzzed path is normalised and matched; one strips. */
	{ .id = 4, .name = "app.example.com/api", .flags = SNAP_ROUTE_STRIP_PREFIX },
	{ .id = 5, .name = "app.example.com/api/v2" },
};

static const struct snapb_host fw_hosts[] = {
	{ 11, "app.example.com", 0, SNAP_HOST_EXACT, NULL },
	{ 12, "www.app.example.com", 0, SNAP_HOST_ALIAS, NULL },
	{ 13, "api.example.com", 1, SNAP_HOST_EXACT, NULL },
	{ 14, "wild.example.com", 2, SNAP_HOST_EXACT, NULL },
	{ 15, "*.wild.example.com", 2, SNAP_HOST_WILDCARD, NULL },
};

static const struct snapb_chal fw_chals[] = {
	{ "tok-EN_1", "tok-EN_1.thumbprint" },
};

static const uint8_t fw_key[16] = "fuzz-hash-key-16";

/* The worker's counters, as worker_setup gives them before the shared region comes. */
static struct shm_wslot fw_stats;

static const struct snapb_input fw_in = {
	fw_routes, 5, fw_hosts, 5, NULL, 0, fw_chals, 1, SNAP_NONE, 7, 1, fw_key, NULL,
};

const struct snapb_input *
fuzzworker_snap_input(void)
{
	return &fw_in;
}

/* A stop's deadline and grace (worker.c's own callbacks are static): nothing to do here. */
static void
fw_deadline(struct ev_loop *l, struct ev_timer *t)
{
}

void
fuzzworker_init(struct worker *w)
{
	char err[256] = "";
	int fd;

	memset(w, 0, sizeof(*w));
	memset(&fw_stats, 0, sizeof(fw_stats));
	w->stats = &fw_stats;
	w->bufs.size = BUF_SIZE;
	w->parent = -1;
	w->sigfd = -1;
	/* What haloyd.conf ships; the access log off (a line per input would be all we measure). */
	w->cfg = (struct msg_wconfig){ .max_conns = 1024, .header_timeout_ms = 10000,
	    .keepalive_timeout_ms = 10000, .connect_timeout_ms = 5000, .response_timeout_ms = 60000,
	    .idle_timeout_ms = 60000, .upgrade_timeout_ms = 60000, .body_timeout_ms = 10000,
	    .backend_down_ms = 10000, .max_body = 1 << 20, .access_log_sample = 1, .http2 = 1,
	    .h2_max_streams = 100 };
	if ((w->loop = ev_loop_new()) == NULL || snapb_build(&fw_in, &fd, err, sizeof(err)) == -1 ||
	    snap_map(fd, &w->snap, err, sizeof(err)) == -1) {
		fprintf(stderr, "fuzzworker: %s\n", err);
		abort();
	}
	close(fd);
	ev_timer_init(&w->stop_timer, fw_deadline, w);
	ev_timer_init(&w->stop_grace, fw_deadline, w);
}

void
fuzzworker_shared(struct worker *w)
{
	char err[256] = "";
	int fd;

	if ((fd = shm_create(SHM_SIZE_MIN, 1, &w->shm, err, sizeof(err))) == -1 ||
	    addr_parse_cidr("10.0.0.0/8", &w->trusted[0]) == -1 ||
	    addr_parse_cidr("2001:db8::/32", &w->trusted[1]) == -1) {
		fprintf(stderr, "fuzzworker: %s\n", err);
		abort();
	}
	close(fd);
	w->cfg.ntrusted = 2;
}

void
fuzzworker_settle(struct worker *w, int max)
{
	int i;

	for (i = 0; i < max; i++)
		if (ev_run_once(w->loop, 0) == -1)
			break;
}
