/*
 * The sink of a fill whose client went away (see cache.h,
 * cache_drop_sink): it takes every byte and keeps none, so the exchange
 * reads the backend to the end and the fill stores the entry.
 */
#include "config.h"

#include "worker/cache.h"
#include "worker/exchange.h"

/* What a detached fill takes per call: the backend is read as fast as it sends. */
#define CACHEDROP_ROOM (64 * 1024)

static int
cd_head(void *arg, struct msg_head *resp, int nobody)
{
	(void)arg;
	(void)resp;
	(void)nobody;
	return 0;
}

static int
cd_body(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

static void
cd_shut(void *arg)
{
	(void)arg;
}

static void
cd_end(void *arg, struct msg_head *resp)
{
	(void)arg;
	(void)resp;
}

static void
cd_fail(void *arg, unsigned status)
{
	(void)arg;
	(void)status;
}

static size_t
cd_room(void *arg)
{
	(void)arg;
	return CACHEDROP_ROOM;
}

static void
cd_more(void *arg)
{
	(void)arg;
}

const struct sink_ops cache_drop_sink = {
	cd_head, cd_body, cd_shut, cd_end, cd_fail, cd_room, cd_more, NULL,
};
