/*
 * The exposition formats of /metrics: Prometheus text 0.0.4 and
 * OpenMetrics 1.0, written from stats_collect's samples into a growing,
 * bounded buffer.
 */
#ifndef HALOYD_METRICSFMT_H
#define HALOYD_METRICSFMT_H

#include <stddef.h>

struct master;

#define METRICSFMT_MAX (8u << 20)	/* a body larger than this is a bug, not a scrape */
#define METRICSFMT_PROMETHEUS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICSFMT_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

struct metricsfmt {
	char *buf;
	size_t len, cap;
	int openmetrics;
	const char *last_family;	/* HELP and TYPE once per family */
	int bad;			/* out of memory or over METRICSFMT_MAX */
};

/* Fills *f with every figure; 0, or -1 (then f holds nothing usable). Free with metricsfmt_free. */
int metricsfmt_render(struct master *m, int openmetrics, struct metricsfmt *f);
void metricsfmt_free(struct metricsfmt *f);
/* Appends printf-formatted text; sets f->bad when it cannot. */
void metricsfmt_printf(struct metricsfmt *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
