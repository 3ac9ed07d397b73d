/*
 * The figures haloyd reports, gathered in one place for /metrics
 * (master/metrics.c) and `haloyd-ctl stats`: the workers' slots of the
 * shared region summed, the master's own counters, and what the store and
 * the current generation know (route names, certificates' not-after).
 */
#ifndef HALOYD_MASTER_STATS_H
#define HALOYD_MASTER_STATS_H

#include <stdint.h>

struct master;
struct shm;
struct shm_wslot;
struct cclient;
struct cur;

enum stats_type { STATS_COUNTER, STATS_GAUGE, STATS_HISTOGRAM };

/* One sample; samples of a family come one after another. */
struct stats_sample {
	const char *family;	/* "haloyd_requests": a counter's samples add "_total" */
	const char *suffix;	/* "_total", "_bucket", "_sum", "_count" or "" */
	enum stats_type type;
	const char *help;
	const char *labels;	/* `route="a",code="2xx"`, escaped; "" for none */
	double value;
};

typedef int stats_emit_fn(void *arg, const struct stats_sample *s);

/* Calls fn for every sample; stops at fn's first -1 and returns it. */
int stats_collect(struct master *m, stats_emit_fn *fn, void *arg);

/* Sums the first n slots into *out (routes are summed by route id by the caller). */
void stats_sum_slots(const struct shm_wslot *slots, uint32_t n, struct shm_wslot *out);

/* A route's name in s (its store id as "#ID" when s has none by that id). */
struct snap;
const char *stats_route_name(const struct snap *s, uint32_t id, char *buf, size_t len);

/* `haloyd-ctl stats`: one row per sample (metric, labels, value). */
int stats_cmd(struct master *m, struct cclient *cl, struct cur *c);

#endif
