/*
 * The on-demand gate (see odgate.h): per-name state in a small table
 * scanned linearly (only admitted names enter it, and the rate bounds
 * those), and one token bucket for every name together.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master/odgate.h"
#include "share/util.h"

#define MS_PER_MIN 60000u

int
odgate_init(struct odgate *g, uint32_t rate, uint64_t backoff_ms, uint64_t now_ms)
{
	memset(g, 0, sizeof(*g));
	if ((g->v = calloc(ODGATE_NAMES_MAX, sizeof(*g->v))) == NULL)
		return -1;
	odgate_set(g, rate, backoff_ms);
	g->tokens = (uint64_t)g->rate * MS_PER_MIN;
	g->last_ms = now_ms;
	return 0;
}

void
odgate_free(struct odgate *g)
{
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

void
odgate_set(struct odgate *g, uint32_t rate, uint64_t backoff_ms)
{
	g->rate = rate > 0 ? rate : 1;
	g->backoff_ms = backoff_ms;
	if (g->tokens > (uint64_t)g->rate * MS_PER_MIN)
		g->tokens = (uint64_t)g->rate * MS_PER_MIN;
}

static int
odgate_find(const struct odgate *g, const char *name)
{
	uint32_t i;

	for (i = 0; i < g->n; i++)
		if (strcmp(g->v[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void
odgate_drop(struct odgate *g, uint32_t i)
{
	g->v[i] = g->v[--g->n];
}

/* Ends the back-offs that are over, so their slots serve new names. */
static void
odgate_expire(struct odgate *g, uint64_t now_ms)
{
	uint32_t i = 0;

	while (i < g->n)
		if (g->v[i].until_ms != 0 && g->v[i].until_ms <= now_ms)
			odgate_drop(g, i);
		else
			i++;
}

static void
odgate_refill(struct odgate *g, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)g->rate * MS_PER_MIN;

	if (now_ms > g->last_ms) {
		g->tokens += (now_ms - g->last_ms) * g->rate;
		if (g->tokens > cap)
			g->tokens = cap;
	}
	g->last_ms = now_ms;
}

enum odgate_verdict
odgate_admit(struct odgate *g, const char *name, uint64_t now_ms)
{
	int i = odgate_find(g, name);

	if (i >= 0 && g->v[i].until_ms == 0)
		return ODGATE_INFLIGHT;
	if (i >= 0 && g->v[i].until_ms > now_ms)
		return ODGATE_BACKOFF;
	if (i >= 0)
		odgate_drop(g, (uint32_t)i);
	odgate_refill(g, now_ms);
	if (g->tokens < MS_PER_MIN)
		return ODGATE_RATE;
	if (g->n == ODGATE_NAMES_MAX)
		odgate_expire(g, now_ms);
	if (g->n == ODGATE_NAMES_MAX)
		return ODGATE_FULL;
	g->tokens -= MS_PER_MIN;
	util_strlcpy(g->v[g->n].name, name, sizeof(g->v[g->n].name));
	g->v[g->n++].until_ms = 0;
	return ODGATE_ASK;
}

void
odgate_backoff(struct odgate *g, const char *name, uint64_t now_ms)
{
	int i = odgate_find(g, name);

	if (i < 0) {
		if (g->n == ODGATE_NAMES_MAX)
			odgate_expire(g, now_ms);
		if (g->n == ODGATE_NAMES_MAX)
			return;
		i = (int)g->n++;
		util_strlcpy(g->v[i].name, name, sizeof(g->v[i].name));
	}
	/* until_ms 0 means "in flight": a back-off always ends at least 1 ms later. */
	g->v[i].until_ms = now_ms + (g->backoff_ms > 0 ? g->backoff_ms : 1);
}

void
odgate_done(struct odgate *g, const char *name, int backoff, uint64_t now_ms)
{
	int i;

	if (backoff) {
		odgate_backoff(g, name, now_ms);
		return;
	}
	if ((i = odgate_find(g, name)) >= 0)
		odgate_drop(g, (uint32_t)i);
}

int
odgate_inflight(const struct odgate *g, const char *name)
{
	int i = odgate_find(g, name);

	return i >= 0 && g->v[i].until_ms == 0;
}
