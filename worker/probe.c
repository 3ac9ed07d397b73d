/* Active health checks: the tick, the lease, one probe stream per due backend (see probe.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share/health.h"
#include "share/log.h"
#include "share/snap.h"
#include "worker/balance.h"
#include "worker/context.h"
#include "worker/message.h"
#include "worker/probe.h"
#include "worker/upstream.h"

struct probe {
	struct probes *owner;
	struct probe *next;
	struct snap *snap;		/* held while the probe runs */
	const struct snap_route *r;
	const struct snap_backend *be;
	struct shm_backend *e;
	uint64_t key;			/* e's key when the probe began */
	const struct upstream_ops *ops;
	struct ustream *up;
	struct msg_head req;
	struct ev_timer timer;
	unsigned status;		/* the final response's, 0 before it */
};

/* The routes with a check in one image of the set, by index in the image. */
struct probe_image {
	const void *id;			/* snap_image_id: while it is the same, so is the list */
	uint64_t built;
	uint32_t *local;
	uint32_t n;
};

struct probes {
	struct worker *w;
	struct ev_timer tick;
	struct probe *list;
	uint32_t n;
	const struct snap *snap;	/* the snapshot routes indexes */
	uint64_t gen;
	uint32_t *routes;		/* indexes of routes with a check */
	uint32_t nroutes;
	struct probe_image img[SNAP_SHARDS];	/* a new set walks only its changed images */
};

static void
probe_end(struct probe *p, int ok, int64_t result, const char *why)
{
	struct probes *ps = p->owner;
	struct worker *w = ps->w;
	struct probe **pp;
	char msg[160];
	int change;

	ev_timer_stop(w->loop, &p->timer);
	if (p->up != NULL)
		p->ops->close(p->up);
	/* The entry went to another address meanwhile: this result is not its. */
	if (__atomic_load_n(&p->e->key, __ATOMIC_ACQUIRE) == p->key) {
		change = health_report(p->e, ok, result, ev_now(w->loop), p->r->health_rise,
		    p->r->health_fall);
		if (change != 0) {
			snprintf(msg, sizeof(msg), "health check %s: %s", snap_string(p->snap,
			    p->r->health_path), why);
			balance_log_change(w, p->snap, p->be, change, msg);
		}
	}
	for (pp = &ps->list; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	ps->n--;
	msg_free(&p->req);
	snap_unref(p->snap);
	free(p);
}

static int
probe_on_head(void *arg, struct msg_head *resp)
{
	struct probe *p = arg;

	if (resp->status >= 200 || resp->status == 101)
		p->status = resp->status;
	return 0;
}

static int
probe_on_body(void *arg, const char *b, size_t n)
{
	(void)arg;
	(void)b;
	(void)n;
	return 0;	/* the body is not looked at */
}

static void
probe_on_end(void *arg, struct msg_head *resp)
{
	struct probe *p = arg;
	char why[32];

	(void)resp;
	snprintf(why, sizeof(why), "status %u", p->status);
	probe_end(p, p->status >= 200 && p->status < 400, p->status, why);
}

static void
probe_on_fail(void *arg, enum upstream_err err, int code)
{
	struct probe *p = arg;
	char why[96];

	if (err == UPSTREAM_CONNECT)
		snprintf(why, sizeof(why), "connect: %s", strerror(code != 0 ? code : ECONNREFUSED));
	else
		snprintf(why, sizeof(why), "no response");
	probe_end(p, 0, -(int64_t)(err == UPSTREAM_CONNECT && code != 0 ? code : ECONNRESET), why);
}

static size_t
probe_on_room(void *arg)
{
	(void)arg;
	return 1u << 16;
}

static void
probe_on_nothing(void *arg)
{
	(void)arg;
}

static const struct upstream_events probe_events = {
	probe_on_head, probe_on_body, probe_on_end, probe_on_fail, probe_on_room,
	probe_on_nothing, probe_on_nothing, NULL,
};

static void
probe_on_timeout(struct ev_loop *l, struct ev_timer *t)
{
	struct probe *p = t->arg;

	(void)l;
	probe_end(p, 0, -ETIMEDOUT, "timed out");
}

/* GET path with the route's name as Host, nothing else. */
static int
probe_request(struct probe *p)
{
	struct msg_head *h = &p->req;
	const char *path = snap_string(p->snap, p->r->health_path);
	const char *host = snap_string(p->snap, p->r->name);

	msg_init(h);
	h->method = MSG_M_GET;
	h->major = 1;
	h->minor = 1;
	h->keepalive = 1;
	if (msg_str(h, "GET", 3, &h->method_name) == -1 ||
	    msg_str(h, path, strlen(path), &h->path) == -1 ||
	    msg_str(h, host, strlen(host), &h->authority) == -1 ||
	    msg_add(h, "Host", host) == -1 || msg_add(h, "User-Agent", "haloyd-health-check") == -1)
		return -1;
	return 0;
}

/* One probe of be (its lease won): a stream on the loop, or a failure reported at once. */
static void
probe_begin(struct probes *ps, struct snap *s, const struct snap_route *r,
    const struct snap_backend *be, struct shm_backend *e)
{
	struct worker *w = ps->w;
	/* A backend that wants a PROXY header gets one naming no client (v1 UNKNOWN, v2 LOCAL). */
	struct upstream_opts o = { r->health_timeout_ms, 1, s, r, r->backend_pp, NULL };
	struct probe *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return;
	*p = (struct probe){ ps, ps->list, snap_ref(s), r, be, e,
	    __atomic_load_n(&e->key, __ATOMIC_ACQUIRE), NULL, NULL, { 0 }, { 0 }, 0 };
	p->ops = r->proto == SNAP_PROTO_H2C || r->proto == SNAP_PROTO_H2 ? &h2client_ops :
	    &h1client_ops;
	ps->list = p;
	ps->n++;
	ev_timer_init(&p->timer, probe_on_timeout, p);
	if (probe_request(p) == -1) {
		probe_end(p, 0, -ENOMEM, "out of memory");
		return;
	}
	p->up = p->ops->open(w, be, &o, &p->req, &probe_events, p);
	if (p->up == NULL) {
		probe_end(p, 0, -(int64_t)errno, strerror(errno));
		return;
	}
	if (p->ops->end(p->up, NULL) == -1) {
		probe_end(p, 0, -EIO, "request not sent");
		return;
	}
	ev_timer_start(w->loop, &p->timer, r->health_timeout_ms);
}

/* Image k's routes with a check, found again only when the image changed. */
static int
probe_index_image(struct probe_image *pi, const struct snap *s, uint32_t k)
{
	uint32_t j, n, first = snap_image_first_route(s, k, &n);
	uint64_t built;
	const void *id = snap_image_id(s, k, &built);
	uint32_t *v;

	if (pi->id == id && pi->built == built)
		return 0;
	free(pi->local);
	*pi = (struct probe_image){ NULL, 0, NULL, 0 };
	for (j = 0; j < n; j++)
		if (snap_route_at(s, first + j)->health_path.len > 0) {
			if ((v = realloc(pi->local, (pi->n + 1) * sizeof(*v))) == NULL)
				return -1;
			pi->local = v;
			pi->local[pi->n++] = j;
		}
	pi->id = id;
	pi->built = built;
	return 0;
}

/* The routes with a check in snapshot s, indexed once per snapshot, per image changed. */
static int
probe_index(struct probes *ps, const struct snap *s)
{
	uint32_t k, j, n, first, total = 0;

	if (ps->snap == s && ps->gen == snap_generation(s))
		return 0;
	free(ps->routes);
	ps->routes = NULL;
	ps->nroutes = 0;
	ps->snap = NULL;	/* tried again next tick, should this fail */
	for (k = 0; k < snap_image_count(s); k++) {
		if (probe_index_image(&ps->img[k], s, k) == -1)
			return -1;
		total += ps->img[k].n;
	}
	if (total > 0 && (ps->routes = calloc(total, sizeof(*ps->routes))) == NULL)
		return -1;
	for (k = 0; k < snap_image_count(s); k++) {
		first = snap_image_first_route(s, k, &n);
		for (j = 0; j < ps->img[k].n; j++)
			ps->routes[ps->nroutes++] = first + ps->img[k].local[j];
	}
	ps->snap = s;
	ps->gen = snap_generation(s);
	return 0;
}

/* Every backend of route r: kept in the table, and probed when due and won. */
static void
probe_route(struct probes *ps, struct snap *s, const struct snap_route *r, uint64_t now)
{
	struct worker *w = ps->w;
	uint32_t i;

	for (i = 0; i < r->be_count; i++) {
		const struct snap_backend *be = snap_route_backend(s, r, i);
		struct shm_backend *e;

		if ((be->flags & SNAP_BACKEND_TUNNEL) || (e = balance_entry(w, s, be)) == NULL)
			continue;
		health_touch(e, now);
		if (ps->n < PROBE_MAX && health_lease(e, now, r->health_interval_ms))
			probe_begin(ps, s, r, be, e);
	}
}

static void
probe_on_tick(struct ev_loop *l, struct ev_timer *t)
{
	struct probes *ps = t->arg;
	struct worker *w = ps->w;
	struct snap *s = w->snap;
	uint32_t i;

	if (s != NULL && w->shm.base != NULL && !w->stopping && probe_index(ps, s) == 0)
		for (i = 0; i < ps->nroutes; i++)
			probe_route(ps, s, snap_route_at(s, ps->routes[i]), ev_now(l));
	/* Without a route to check nothing ticks: probe_snapshot starts it again. */
	if (ps->nroutes > 0 || ps->snap == NULL)
		ev_timer_start(l, &ps->tick, PROBE_TICK_MS);
}

void
probe_snapshot(struct worker *w)
{
	struct probes *ps = w->probes;

	if (ps == NULL || w->snap == NULL)
		return;
	if (probe_index(ps, w->snap) == 0 && ps->nroutes == 0)
		ev_timer_stop(w->loop, &ps->tick);
	else if (!ev_timer_armed(&ps->tick))
		ev_timer_start(w->loop, &ps->tick, PROBE_TICK_MS);
}

int
probe_init(struct worker *w)
{
	struct probes *ps = calloc(1, sizeof(*ps));

	if (ps == NULL)
		return -1;
	ps->w = w;
	ev_timer_init(&ps->tick, probe_on_tick, ps);
	w->probes = ps;
	return 0;
}

void
probe_free(struct worker *w)
{
	struct probes *ps = w->probes;
	uint32_t k;

	if (ps == NULL)
		return;
	/* The lease of a probe ended here expires with its interval; no result is reported. */
	while (ps->list != NULL) {
		struct probe *p = ps->list;

		ps->list = p->next;
		ev_timer_stop(w->loop, &p->timer);
		if (p->up != NULL)
			p->ops->close(p->up);
		msg_free(&p->req);
		snap_unref(p->snap);
		free(p);
	}
	ev_timer_stop(w->loop, &ps->tick);
	free(ps->routes);
	for (k = 0; k < SNAP_SHARDS; k++)
		free(ps->img[k].local);
	free(ps);
	w->probes = NULL;
}
