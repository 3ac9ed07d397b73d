/*
 * The master's gate for on-demand TLS (haloyd.conf acme_on_demand): which
 * names a handshake asked for may go to the acme_ask URL now. One ask per
 * name at a time (in flight), a back-off per name after a refusal or a
 * failed order, and a token bucket over all names (acme_on_demand_rate a
 * minute), so a scanner's thousand names cost at most that many asks and
 * orders. Pure logic on a clock the caller passes: unit-tested with a fake.
 */
#ifndef HALOYD_MASTER_ODGATE_H
#define HALOYD_MASTER_ODGATE_H

#include <stdint.h>

#include "share/hostname.h"

#define ODGATE_NAMES_MAX 4096	/* names in flight or backing off; bounded memory */

enum odgate_verdict {
	ODGATE_ASK = 0,		/* ask now: the name is in flight until odgate_done */
	ODGATE_INFLIGHT,	/* an ask for it runs: wait for its answer */
	ODGATE_BACKOFF,		/* refused or failed lately */
	ODGATE_RATE,		/* the overall rate is spent */
	ODGATE_FULL,		/* the table is full of names in flight or backing off */
};

struct odgate_entry {
	char name[HOSTNAME_MAX + 1];
	uint64_t until_ms;	/* back-off end; 0 while in flight */
};

struct odgate {
	struct odgate_entry *v;	/* ODGATE_NAMES_MAX of them */
	uint32_t n;
	uint64_t tokens;	/* in 1/60000 of an ask: rate tokens a ms refill */
	uint64_t last_ms;
	uint32_t rate;		/* asks a minute, >= 1 */
	uint64_t backoff_ms;
};

/* 0, or -1 when out of memory. The bucket starts full (rate asks). */
int odgate_init(struct odgate *g, uint32_t rate, uint64_t backoff_ms, uint64_t now_ms);
void odgate_free(struct odgate *g);
/* New bounds (a reload); names keep their state. */
void odgate_set(struct odgate *g, uint32_t rate, uint64_t backoff_ms);
/* May name (normalised) be asked about now? ODGATE_ASK takes a token and marks it in flight. */
enum odgate_verdict odgate_admit(struct odgate *g, const char *name, uint64_t now_ms);
/* The ask ended: with backoff the name backs off, otherwise it leaves the table. */
void odgate_done(struct odgate *g, const char *name, int backoff, uint64_t now_ms);
/* Puts name in back-off (its order failed) whatever its state. */
void odgate_backoff(struct odgate *g, const char *name, uint64_t now_ms);
/* 1 while name is in flight. */
int odgate_inflight(const struct odgate *g, const char *name);

#endif
