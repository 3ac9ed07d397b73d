/*
 * listen_metrics: the master's HTTP endpoint for Prometheus. GET /metrics
 * only; one bounded request, one answer, then close.
 */
#ifndef HALOYD_METRICS_H
#define HALOYD_METRICS_H

struct master;
struct inherit;
struct listeners;

/*
 * Binds every listen_metrics address (none: nothing), first taking the
 * sockets a hand-over passed (h may be NULL); logs and -1 on error.
 */
int metrics_open(struct master *m, struct inherit *h);
/* The listening sockets (one per address), for a hand-over; NULL without listen_metrics. */
const struct listeners *metrics_listeners(const struct master *m);
/*
 * An upgrade's drain: closes our copies of the listeners (the new master
 * holds the sockets) and lets the scrapes in progress finish (each bounded).
 */
void metrics_unlisten(struct master *m);
/* Closes the listeners and every scrape in progress. */
void metrics_close(struct master *m);

#endif
