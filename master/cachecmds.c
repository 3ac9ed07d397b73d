/*
 * The cache commands (see cachecmds.h). The environment is opened for each
 * command and closed after it: the master keeps no LMDB handle, so a
 * command costs an open (a few system calls) and the workers' files are
 * never held by a process that does not serve. A folder without the
 * workers' data file is an empty cache: the master creates no files there
 * (they would be root's, which the workers could not open).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/cachecmds.h"
#include "master/control.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/stats.h"
#include "master/store.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/shm.h"
#include "share/snap.h"
#include "worker/cache.h"
#include "worker/cachestore.h"

/* The workers' environment, or NULL (answered) when there is none yet. */
static struct cachestore *
cachecmds_open(struct master *m, struct cclient *cl)
{
	char path[4096];
	struct cachestore *cs;

	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", m->cfg.cache_path) >=
	    sizeof(path) || access(path, F_OK) == -1) {
		control_reply_fail(cl, CTL_ENOENT, "no cache in %s yet", m->cfg.cache_path);
		return NULL;
	}
	if ((cs = cachestore_open(m->cfg.cache_path, m->cfg.cache_max_size)) == NULL)
		control_reply_fail(cl, CTL_EFAIL, "cannot open the cache in %s (see the log)",
		    m->cfg.cache_path);
	return cs;
}

/* The store id of route name, or 0 (answered). */
static uint32_t
cachecmds_route(struct master *m, struct cclient *cl, const char *raw)
{
	char name[HOSTNAME_MAX + 1];
	struct store_route r;
	uint32_t id;
	int rc;

	if (hostname_normalize_name(raw, name) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "invalid host name '%.253s'", raw);
		return 0;
	}
	if ((rc = store_route_get(m->store, name, &r)) != STORE_OK) {
		control_reply_fail(cl, rc == STORE_ENOENT ? CTL_ENOENT : CTL_EFAIL,
		    rc == STORE_ENOENT ? "route %s: not found" : "cannot read route %s", name);
		return 0;
	}
	id = (uint32_t)r.id;
	store_route_free(&r);
	return id;
}

int
cachecmds_purge(struct master *m, struct cclient *cl, struct cur *c)
{
	char url[MSG_STR_MAX], route[MSG_STR_MAX], msg[128];
	struct cachestore *cs;
	uint32_t id = 0;
	long n;

	if (cur_str(c, url, sizeof(url)) == -1 || cur_str(c, route, sizeof(route)) == -1 ||
	    cur_end(c) == -1)
		return -1;
	if ((url[0] == '\0') == (route[0] == '\0')) {
		control_reply_fail(cl, CTL_EUSAGE, "cache purge takes a URL or --route NAME");
		return 0;
	}
	if (url[0] != '\0' && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		control_reply_fail(cl, CTL_EINVAL, "'%.200s' is not an http:// or https:// URL", url);
		return 0;
	}
	if (route[0] != '\0' && (id = cachecmds_route(m, cl, route)) == 0)
		return 0;
	if ((cs = cachecmds_open(m, cl)) == NULL)
		return 0;
	n = url[0] != '\0' ? cache_purge_url(cs, url) : cache_purge_route(cs, id);
	cachestore_close(cs);
	if (n == -1) {
		control_reply_fail(cl, CTL_EFAIL, "the purge failed (see the log)");
		return 0;
	}
	snprintf(msg, sizeof(msg), "%ld entr%s purged", n, n == 1 ? "y" : "ies");
	control_reply_ok(cl, msg);
	return 0;
}

/* The counters of one route entry (or their totals) as fields of a row. */
static void
cachecmds_counts(struct wbuf *w, const uint64_t *c)
{
	static const char *const names[SHM_CACHE_EVENTS] = SHM_CACHE_EVENT_NAMES;
	size_t k;

	for (k = 0; k < SHM_CACHE_EVENTS; k++)
		control_row_int(w, names[k], (int64_t)c[k]);
}

/* One row per route with cache events: its name, then its counters. */
static void
cachecmds_route_rows(struct master *m, struct cclient *cl, const struct shm_wslot *t)
{
	struct snap *s = NULL;
	char err[256], id[32];
	uint8_t buf[1024];
	struct wbuf w;
	uint32_t r;
	size_t k;

	if (publish_map(m, &s, err, sizeof(err)) == -1)
		log_warnx("cache stats: the current snapshot: %s", err);
	for (r = 0; r <= SHM_CACHE_ROUTES; r++) {
		const struct shm_cache_ctr *c = r < SHM_CACHE_ROUTES ? &t->cache[r] :
		    &t->cache_other;

		for (k = 0; k < SHM_CACHE_EVENTS && c->n[k] == 0; k++)
			;
		if (k == SHM_CACHE_EVENTS || (r < SHM_CACHE_ROUTES && c->route_id == 0))
			continue;
		wb_init(&w, buf, sizeof(buf));
		wb_u16(&w, 1 + SHM_CACHE_EVENTS);
		control_row_str(&w, "route", r < SHM_CACHE_ROUTES ?
		    stats_route_name(s, c->route_id, id, sizeof(id)) : "(other)");
		cachecmds_counts(&w, c->n);
		control_reply_row(cl, &w);
	}
	if (s != NULL)
		snap_unref(s);
}

/* Every worker's counters summed, totals in *tot; NULL (answered) without memory. */
static struct shm_wslot *
cachecmds_sum(struct master *m, struct cclient *cl, uint64_t *tot)
{
	struct shm_wslot *t = aligned_alloc(SHM_ALIGN, sizeof(*t));
	uint32_t r;
	size_t k;

	if (t == NULL) {
		control_reply_fail(cl, CTL_EFAIL, "out of memory");
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	if (m->shm.base != NULL)
		stats_sum_slots(m->shm.slots, m->shm.nslots, t);
	for (k = 0; k < SHM_CACHE_EVENTS; k++) {
		tot[k] = t->cache_noroute.n[k] + t->cache_other.n[k];
		for (r = 0; r < SHM_CACHE_ROUTES; r++)
			tot[k] += t->cache[r].n[k];
	}
	return t;
}

int
cachecmds_stats(struct master *m, struct cclient *cl, struct cur *c)
{
	uint64_t entries = 0, bytes = 0, tot[SHM_CACHE_EVENTS];
	struct shm_wslot *t;
	struct cachestore *cs;
	uint8_t buf[1024];
	struct wbuf w;

	if (cur_end(c) == -1)
		return -1;
	if ((cs = cachecmds_open(m, cl)) == NULL)
		return 0;
	if (cachestore_stats(cs, &entries, &bytes) == -1) {
		cachestore_close(cs);
		control_reply_fail(cl, CTL_EFAIL, "cannot read the cache (see the log)");
		return 0;
	}
	cachestore_close(cs);
	if ((t = cachecmds_sum(m, cl, tot)) == NULL)
		return 0;
	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 4 + SHM_CACHE_EVENTS);
	control_row_str(&w, "path", m->cfg.cache_path);
	control_row_int(&w, "entries", (int64_t)entries);
	control_row_int(&w, "bytes", (int64_t)bytes);
	control_row_int(&w, "max_bytes", (int64_t)m->cfg.cache_max_size);
	cachecmds_counts(&w, tot);
	control_reply_row(cl, &w);
	cachecmds_route_rows(m, cl, t);
	free(t);
	control_reply_end(cl);
	return 0;
}
