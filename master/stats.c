/*
 * The figures of /metrics and `haloyd-ctl stats` (see stats.h): the
 * workers' slots summed (each slot has one writer, so a plain relaxed read
 * of each counter is all the master needs), then the master's own.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/bhealth.h"
#include "master/control.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/stats.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/cursor.h"
#include "share/health.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/shm.h"
#include "share/snap.h"
#include "share/util.h"

#define LABELS_MAX 512

static const char *const class_names[SHM_STATUS_CLASSES] = {
	"other", "1xx", "2xx", "3xx", "4xx", "5xx" };
static const char *const proto_names[SHM_PROTOS] = { "HTTP/1.0", "HTTP/1.1", "HTTP/2" };
static const char *const tls_names[SHM_TLS_KINDS] = { "full", "resumed", "failed" };
static const char *const acme_names[SHM_ACME_OUTCOMES] = { "issued", "failed" };

static void
sum_route(const struct shm_route_ctr *from, struct shm_route_ctr *to)
{
	size_t p, c;

	for (p = 0; p < SHM_PROTOS; p++)
		for (c = 0; c < SHM_STATUS_CLASSES; c++)
			to->requests[p][c] += shm_get(&from->requests[p][c]);
	to->rate_limited += shm_get(&from->rate_limited);
	to->rate_dry_run += shm_get(&from->rate_dry_run);
}

static void
sum_cache(const struct shm_cache_ctr *from, struct shm_cache_ctr *to)
{
	size_t k;

	for (k = 0; k < SHM_CACHE_EVENTS; k++)
		to->n[k] += shm_get(&from->n[k]);
}

void
stats_sum_slots(const struct shm_wslot *slots, uint32_t n, struct shm_wslot *out)
{
	/* Every u64 before the route entries is a counter or gauge: summed alike. */
	const size_t nplain = offsetof(struct shm_wslot, noroute) / sizeof(uint64_t);
	uint32_t i, r;
	size_t k;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		const uint64_t *f = (const uint64_t *)(const void *)&slots[i];
		uint64_t *t = (uint64_t *)(void *)out;

		for (k = 0; k < nplain; k++)
			t[k] += shm_get(&f[k]);
		sum_route(&slots[i].noroute, &out->noroute);
		sum_route(&slots[i].other, &out->other);
		for (r = 0; r < SHM_ROUTES_MAX; r++) {
			uint32_t id = __atomic_load_n(&slots[i].routes[r].route_id, __ATOMIC_ACQUIRE);
			if (id != 0)
				sum_route(&slots[i].routes[r], shm_route(out, id));
		}
		sum_cache(&slots[i].cache_noroute, &out->cache_noroute);
		sum_cache(&slots[i].cache_other, &out->cache_other);
		for (r = 0; r < SHM_CACHE_ROUTES; r++) {
			uint32_t id = __atomic_load_n(&slots[i].cache[r].route_id, __ATOMIC_ACQUIRE);
			if (id != 0)
				sum_cache(&slots[i].cache[r], shm_cache_route(out, id));
		}
	}
}

/* Label values are escaped as the text format says: backslash, quote, newline. */
static void
label_escape(const char *v, char *out, size_t len)
{
	size_t o = 0;

	for (; *v != '\0' && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			out[o++] = '\\';
		out[o++] = *v == '\n' ? 'n' : *v;
	}
	out[o] = '\0';
}

const char *
stats_route_name(const struct snap *s, uint32_t id, char *buf, size_t len)
{
	uint32_t i, n = s != NULL ? snap_route_count(s) : 0;

	for (i = 0; i < n; i++) {
		const struct snap_route *r = snap_route_at(s, i);
		if (r->id == id)
			return snap_string(s, r->name);
	}
	/* A route removed since: its counts stay, under its store id. */
	snprintf(buf, len, "#%u", id);
	return buf;
}

struct emitter {
	stats_emit_fn *fn;
	void *arg;
	int rc;
};

static void
emit(struct emitter *e, const char *family, const char *suffix, enum stats_type type,
    const char *help, const char *labels, double v)
{
	struct stats_sample s = { family, suffix, type, help, labels, v };

	if (e->rc == 0)
		e->rc = e->fn(e->arg, &s);
}

static void
emit_route(struct emitter *e, const char *name, const struct shm_route_ctr *r)
{
	char esc[LABELS_MAX / 2], labels[LABELS_MAX];
	size_t p, c;

	label_escape(name, esc, sizeof(esc));
	for (p = 0; p < SHM_PROTOS; p++)
		for (c = 0; c < SHM_STATUS_CLASSES; c++) {
			if (r->requests[p][c] == 0)
				continue;
			snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%s\",proto=\"%s\"", esc,
			    class_names[c], proto_names[p]);
			emit(e, "haloyd_requests", "_total", STATS_COUNTER,
			    "Requests answered, by route, status class and protocol.", labels,
			    (double)r->requests[p][c]);
		}
}

/* One sample of a per-route counter (dry: the dry-run family). */
static void
emit_route_limit(struct emitter *e, const char *name, const struct shm_route_ctr *r, int dry)
{
	char esc[LABELS_MAX / 2], labels[LABELS_MAX];

	label_escape(name, esc, sizeof(esc));
	snprintf(labels, sizeof(labels), "route=\"%s\"", esc);
	if (dry)
		emit(e, "haloyd_rate_limit_dry_run", "_total", STATS_COUNTER,
		    "Requests rate_limit_dry_run let through that the rate limit would refuse.",
		    labels, (double)r->rate_dry_run);
	else
		emit(e, "haloyd_rate_limited", "_total", STATS_COUNTER,
		    "Requests refused by their route's rate limit (429, gRPC RESOURCE_EXHAUSTED).",
		    labels, (double)r->rate_limited);
}

static void
emit_requests(struct emitter *e, const struct shm_wslot *t, const struct snap *s)
{
	char buf[32];
	uint32_t r;
	int dry;

	emit_route(e, "-", &t->noroute);
	for (r = 0; r < SHM_ROUTES_MAX; r++)
		if (t->routes[r].route_id != 0)
			emit_route(e, stats_route_name(s, t->routes[r].route_id, buf, sizeof(buf)),
			    &t->routes[r]);
	emit_route(e, "(other)", &t->other);
	/* Each family's samples together; only routes that were seen (no limit before a route). */
	for (dry = 0; dry < 2; dry++) {
		for (r = 0; r < SHM_ROUTES_MAX; r++)
			if (t->routes[r].route_id != 0)
				emit_route_limit(e, stats_route_name(s, t->routes[r].route_id, buf,
				    sizeof(buf)), &t->routes[r], dry);
		if (t->other.rate_limited != 0 || t->other.rate_dry_run != 0)
			emit_route_limit(e, "(other)", &t->other, dry);
	}
}

/* The response cache's events of the routes that had any. */
static void
emit_cache(struct emitter *e, const struct shm_wslot *t, const struct snap *s)
{
	static const char *const names[SHM_CACHE_EVENTS] = SHM_CACHE_EVENT_NAMES;
	char esc[LABELS_MAX / 2], labels[LABELS_MAX], buf[32];
	const struct shm_cache_ctr *c;
	uint32_t r;
	size_t k;

	for (r = 0; r <= SHM_CACHE_ROUTES; r++) {
		c = r < SHM_CACHE_ROUTES ? &t->cache[r] : &t->cache_other;
		for (k = 0; k < SHM_CACHE_EVENTS && c->n[k] == 0; k++)
			;
		if (k == SHM_CACHE_EVENTS || (r < SHM_CACHE_ROUTES && c->route_id == 0))
			continue;
		label_escape(r < SHM_CACHE_ROUTES ? stats_route_name(s, c->route_id, buf,
		    sizeof(buf)) : "(other)", esc, sizeof(esc));
		for (k = 0; k < SHM_CACHE_EVENTS; k++) {
			snprintf(labels, sizeof(labels), "route=\"%s\",event=\"%s\"", esc, names[k]);
			emit(e, "haloyd_cache_events", "_total", STATS_COUNTER,
			    "The response cache's events, by route: hits, misses, revalidations "
			    "(the backend's 304 or a new 200), stale answers, stores, evictions, "
			    "bypasses.", labels, (double)c->n[k]);
		}
	}
}

static void
emit_duration(struct emitter *e, const struct shm_wslot *t)
{
	static const uint64_t bounds[SHM_DURATION_BUCKETS] = SHM_DURATION_BOUNDS_US;
	static const char help[] = "Time from a request's first byte to its answer's last.";
	const char *fam = "haloyd_request_duration_seconds";
	char labels[32];
	uint64_t cum = 0;
	size_t b;

	for (b = 0; b <= SHM_DURATION_BUCKETS; b++) {
		cum += t->duration[b];
		if (b < SHM_DURATION_BUCKETS)
			snprintf(labels, sizeof(labels), "le=\"%g\"", (double)bounds[b] / 1e6);
		else
			snprintf(labels, sizeof(labels), "le=\"+Inf\"");
		emit(e, fam, "_bucket", STATS_HISTOGRAM, help, labels, (double)cum);
	}
	emit(e, fam, "_sum", STATS_HISTOGRAM, help, "", (double)t->duration_us / 1e6);
	emit(e, fam, "_count", STATS_HISTOGRAM, help, "", (double)cum);
}

static void
emit_totals(struct emitter *e, const struct shm_wslot *t)
{
	char labels[64];
	size_t k;

	emit(e, "haloyd_request_body_bytes", "_total", STATS_COUNTER,
	    "Request body bytes received from clients.", "", (double)t->bytes_in);
	emit(e, "haloyd_response_body_bytes", "_total", STATS_COUNTER,
	    "Response body bytes sent to clients.", "", (double)t->bytes_out);
	emit(e, "haloyd_upstream_connect_failures", "_total", STATS_COUNTER,
	    "Backend connections that failed or timed out while connecting.", "",
	    (double)t->connect_failures);
	emit(e, "haloyd_upstream_retries", "_total", STATS_COUNTER,
	    "Backend attempts after a request's first (after a failed one).", "", (double)t->retries);
	emit(e, "haloyd_connections_limited", "_total", STATS_COUNTER,
	    "Client connections closed at accept by max_connections_per_ip.", "",
	    (double)t->conn_limited);
	for (k = 0; k < SHM_TLS_KINDS; k++) {
		snprintf(labels, sizeof(labels), "result=\"%s\"", tls_names[k]);
		emit(e, "haloyd_tls_handshakes", "_total", STATS_COUNTER,
		    "TLS handshakes with clients, by result.", labels, (double)t->tls[k]);
	}
}

/* Gauges of a worker that is not running say nothing: it holds no connection. */
static void
emit_worker_gauge(struct emitter *e, const struct master *m, size_t field, const char *family,
    const char *help)
{
	char labels[32];
	size_t i;

	for (i = 0; i < m->nworkers && i < m->shm.nslots; i++) {
		const uint64_t *v = (const uint64_t *)(const void *)((const char *)&m->shm.slots[i] +
		    field);

		snprintf(labels, sizeof(labels), "worker=\"%zu\"", i);
		emit(e, family, "", STATS_GAUGE, help, labels,
		    m->workers[i].proc.pid != 0 ? (double)shm_get(v) : 0);
	}
}

static void
emit_workers(struct emitter *e, const struct master *m)
{
	char labels[32];
	size_t i;

	emit_worker_gauge(e, m, offsetof(struct shm_wslot, connections), "haloyd_connections",
	    "Open client connections, per worker.");
	emit_worker_gauge(e, m, offsetof(struct shm_wslot, generation), "haloyd_worker_generation",
	    "The snapshot generation each worker serves.");
	emit(e, "haloyd_snapshot_generation", "", STATS_GAUGE,
	    "The newest generation of the route snapshot.", "", (double)m->gen);
	emit(e, "haloyd_worker_restarts", "_total", STATS_COUNTER,
	    "Worker processes started again after one ended.", "",
	    (double)shm_get(&m->shm.master->worker_restarts));
	for (i = 0; i < SHM_ACME_OUTCOMES; i++) {
		snprintf(labels, sizeof(labels), "outcome=\"%s\"", acme_names[i]);
		emit(e, "haloyd_acme_orders", "_total", STATS_COUNTER,
		    "ACME orders finished, by outcome.", labels,
		    (double)shm_get(&m->shm.master->acme_orders[i]));
	}
}

static int
emit_cert(void *arg, const struct store_cert *c)
{
	struct emitter *e = arg;
	char esc[LABELS_MAX / 2], labels[LABELS_MAX];

	label_escape(c->domain != NULL ? c->domain : "(default)", esc, sizeof(esc));
	snprintf(labels, sizeof(labels), "domain=\"%s\"", esc);
	emit(e, "haloyd_certificate_not_after_seconds", "", STATS_GAUGE,
	    "When each stored certificate expires, in Unix seconds.", labels, (double)c->not_after);
	return e->rc;
}

/* One backend's sample of the family e->rc's walk is on (see emit_backends). */
struct backend_walk {
	struct emitter *e;
	int family;		/* 0 haloyd_backend_up, 1 checks passed, 2 failed */
};

static void
emit_backend(void *arg, const char *route, const char *backend, const struct shm_backend *b,
    int up)
{
	struct backend_walk *bw = arg;
	char r[LABELS_MAX / 4], be[LABELS_MAX / 4], labels[LABELS_MAX];

	label_escape(route, r, sizeof(r));
	label_escape(backend, be, sizeof(be));
	if (bw->family == 0) {
		snprintf(labels, sizeof(labels), "route=\"%s\",backend=\"%s\"", r, be);
		emit(bw->e, "haloyd_backend_up", "", STATS_GAUGE,
		    "1 while a backend takes requests (its health checks pass, no failed connect "
		    "skips it), else 0.", labels, up);
		return;
	}
	snprintf(labels, sizeof(labels), "route=\"%s\",backend=\"%s\",result=\"%s\"", r, be,
	    bw->family == 1 ? "pass" : "fail");
	emit(bw->e, "haloyd_health_checks", "_total", STATS_COUNTER,
	    "Active health checks of a backend, by result.", labels,
	    (double)shm_get(bw->family == 1 ? &b->checks_ok : &b->checks_failed));
}

/* The shared backend table: one family after the other, as the text format wants. */
static void
emit_backends(struct emitter *e, const struct master *m, const struct snap *s)
{
	struct backend_walk bw = { e, 0 };

	for (bw.family = 0; bw.family < 3; bw.family++)
		bhealth_foreach(&m->shm, s, util_now_ms(), emit_backend, &bw);
}

int
stats_collect(struct master *m, stats_emit_fn *fn, void *arg)
{
	struct emitter e = { fn, arg, 0 };
	struct shm_wslot *t;
	struct snap *s = NULL;
	char err[256];

	if (m->shm.base == NULL || (t = aligned_alloc(SHM_ALIGN, sizeof(*t))) == NULL)
		return -1;
	stats_sum_slots(m->shm.slots, m->shm.nslots, t);
	/* Names from the generation being served; without one, routes go by id. */
	if (publish_map(m, &s, err, sizeof(err)) == -1)
		log_warnx("metrics: the current snapshot: %s", err);
	emit_requests(&e, t, s);
	emit_cache(&e, t, s);
	emit_duration(&e, t);
	emit_totals(&e, t);
	emit_workers(&e, m);
	emit_backends(&e, m, s);
	if (m->store != NULL && store_cert_foreach(m->store, 0, emit_cert, &e) < 0)
		log_warnx("metrics: cannot list the certificates");
	if (s != NULL)
		snap_unref(s);
	free(t);
	return e.rc;
}

/* --- haloyd-ctl stats */

static int
stats_row(void *arg, const struct stats_sample *s)
{
	struct cclient *cl = arg;
	uint8_t buf[1024];
	char name[128], v[40];
	struct wbuf w;

	snprintf(name, sizeof(name), "%s%s", s->family, s->suffix);
	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 3);
	control_row_str(&w, "metric", name);
	control_row_str(&w, "labels", s->labels);
	if (s->value == (double)(int64_t)s->value)
		control_row_int(&w, "value", (int64_t)s->value);
	else {
		snprintf(v, sizeof(v), "%.6f", s->value);
		control_row_str(&w, "value", v);
	}
	if (w.bad)
		return -1;
	control_reply_row(cl, &w);
	return 0;
}

int
stats_cmd(struct master *m, struct cclient *cl, struct cur *c)
{
	if (cur_end(c) == -1)
		return -1;
	if (stats_collect(m, stats_row, cl) == -1) {
		control_reply_fail(cl, CTL_EFAIL, "cannot gather the figures (see the log)");
		return 0;
	}
	control_reply_end(cl);
	return 0;
}
