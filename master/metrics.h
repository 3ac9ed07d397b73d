/*
 * listen_metrics: the master's HTTP endpoint for Prometheus. GET /metrics
 * only; one bounded request, one answer, then close.
 */
#ifndef HALOYD_METRICS_H
#define HALOYD_METRICS_H

struct master;

/* Binds every listen_metrics address (none: nothing); logs and -1 on error. */
int metrics_open(struct master *m);
/* Closes the listeners and every scrape in progress. */
void metrics_close(struct master *m);

#endif
