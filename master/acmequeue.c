/*
 * The ACME order queue and schedule (see acmeint.h): one acme_orders row
 * per route in the store, so the queue survives restarts; a timer that
 * starts the first due order (no certificate, names changed, renewal
 * time reached, `cert renew`) when the child is idle, and otherwise asks
 * it for the ARI window (RFC 9773) of certificates whose poll is due; and
 * haloyd-ctl's `cert status` and `cert renew`.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "master/acmemaster.h"
#include "master/acmeint.h"
#include "master/certs.h"
#include "master/control.h"
#include "master/master.h"
#include "master/store.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/keyring.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define IDLE_CHECK_MS 3600000		/* look at the schedule at least this often */
#define LEASE_LOOK_S 30			/* an order another node holds: look again this often */
#define BACKOFF_BASE_S 5

/* --- names */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
acmeq_names_equal(char *const *a, size_t n, char *const *b, size_t k)
{
	char *sa[ACME_NAMES_MAX];
	size_t i;

	if (n != k || n > ACME_NAMES_MAX)
		return 0;
	memcpy(sa, a, n * sizeof(*a));
	qsort(sa, n, sizeof(*sa), name_cmp);
	for (i = 0; i < n; i++)
		if (strcmp(sa[i], b[i]) != 0)
			return 0;
	return 1;
}

/* --- the schedule */

/*
 * Exponential back-off: the base doubles per failed attempt, plus up to a
 * quarter of jitter (so a wait never shrinks before the cap), capped by
 * acme_backoff_max, and never shorter than the CA's Retry-After.
 */
int64_t
acmeq_backoff_s(const struct master *m, int64_t attempts, uint64_t retry_after)
{
	uint64_t max = m->cfg.acme_backoff_max_ms / 1000, d = BACKOFF_BASE_S, r = 0;

	while (attempts-- > 1 && d < max)
		d *= 2;
	(void)util_random(&r, sizeof(r));
	d += d / 4 * (r % 1001) / 1000;
	if (d > max)
		d = max;
	if (d == 0)
		d = 1;
	return (int64_t)(retry_after > d ? retry_after : d);
}


/* A route as the schedule sees it: the names it should have a certificate for. */
struct acme_cand {
	int64_t route_id;
	uint16_t chal;		/* the route's enum store_challenge */
	size_t nnames;
	char **names;		/* canonical first, then the eligible aliases */
};

struct cand_list {
	struct acme_cand *v;
	size_t n, cap;
	const char *only;	/* a single route, or NULL */
	const struct acme_peer *a;
	struct store *st;	/* for on-demand names: is the name a route's now? */
};

const char *
acmeq_refusal(const struct acme_peer *a, const char *name, int chal)
{
	if (chal == STORE_CHAL_DNS01 && (a == NULL || !a->dns.on))
		return "challenge dns-01 needs dns_update_server and dns_tsig_key in haloyd.conf";
	/* A wildcard is validated through its base name's TXT record: only DNS-01 can. */
	if (!hostname_is_wildcard(name) || a == NULL || !a->dns.on)
		return acme_name_refusal(name);
	if (chal != STORE_CHAL_AUTO && chal != STORE_CHAL_DNS01)
		return "a wildcard name needs DNS-01 (route set --challenge dns-01 or default)";
	return acme_name_refusal(name + 2);
}

static void
cands_free(struct cand_list *l)
{
	size_t i, j;

	for (i = 0; i < l->n; i++) {
		for (j = 0; j < l->v[i].nnames; j++)
			free(l->v[i].names[j]);
		free(l->v[i].names);
	}
	free(l->v);
}

static int
cand_collect(void *arg, const struct store_route *r)
{
	struct cand_list *l = arg;
	struct acme_cand *c;
	size_t i;

	if (acmeq_refusal(l->a, r->name, r->set.challenge) != NULL ||
	    (l->only != NULL && strcmp(l->only, r->name) != 0))
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		void *np = realloc(l->v, nc * sizeof(*l->v));
		if (np == NULL)
			return -1;
		l->v = np;
		l->cap = nc;
	}
	c = &l->v[l->n++];
	memset(c, 0, sizeof(*c));
	c->route_id = r->id;
	c->chal = r->set.challenge;
	if ((c->names = calloc(r->naliases + 1, sizeof(char *))) == NULL ||
	    (c->names[c->nnames++] = strdup(r->name)) == NULL)
		return -1;
	for (i = 0; i < r->naliases && c->nnames < ACME_NAMES_MAX; i++)
		if (acmeq_refusal(l->a, r->aliases[i], hostname_is_wildcard(r->name) ||
		    r->set.challenge == STORE_CHAL_DNS01 ? STORE_CHAL_DNS01 : -1) == NULL &&
		    (c->names[c->nnames++] = strdup(r->aliases[i])) == NULL)
			return -1;
	return 0;
}

/* An on-demand name (haloyd.conf acme_on_demand): one name, keyed -id in the order table. */
static int
cand_collect_ondemand(void *arg, int64_t id, const char *name)
{
	struct cand_list *l = arg;
	struct store_route r;

	/* A route took the name since: its own order covers it, not a second one. */
	if (store_host_exists(l->st, name) == STORE_OK)
		return 0;
	memset(&r, 0, sizeof(r));
	r.id = -id;
	r.name = (char *)(uintptr_t)name;
	return cand_collect(arg, &r);
}

int64_t
acmeq_renew_at(const struct master *m, const struct store_cert *sc, const struct store_order *row)
{
	/* The CA's window wins (RFC 9773); else a share of the actual lifetime, whatever the profile. */
	if (row != NULL && row->ari_end > 0 && row->ari_renew_at > 0)
		return row->ari_renew_at;
	return sc->not_after - (sc->not_after - sc->not_before) *
	    (int64_t)m->cfg.acme_renew_before / 100;
}

/*
 * When the route c needs an order: 0 = now, else the unix time to look
 * again; -1 = never (an imported certificate is the operator's choice).
 */
static int64_t
cand_due(struct acme_peer *a, const struct acme_cand *c, const struct store_order *row, int has)
{
	struct store_cert sc;
	int64_t now = (int64_t)time(NULL), renew_at;
	int rc;

	if (has && strcmp(row->state, "failed") == 0 && row->next_attempt > now)
		return row->next_attempt;
	if (has && row->force)
		return 0;
	if ((rc = store_cert_get(a->m->store, c->names[0], 0, &sc)) == STORE_ENOENT)
		return 0;
	if (rc != STORE_OK)
		return now + 60;
	renew_at = acmeq_renew_at(a->m, &sc, has ? row : NULL);
	if (sc.source == KEYRING_SRC_IMPORTED)
		renew_at = -1;
	else if (!acmeq_names_equal(c->names, c->nnames, sc.names, sc.nnames) || renew_at <= now)
		renew_at = 0;
	store_cert_free(&sc);
	return renew_at;
}

/*
 * The route's challenge: its own setting, else DNS-01 for a wildcard,
 * else TLS-ALPN-01 when nothing listens on plain HTTP.
 */
static int
run_chal(const struct acme_peer *a, const struct acme_cand *c)
{
	if (c->chal == STORE_CHAL_DNS01 || (c->chal == STORE_CHAL_AUTO &&
	    hostname_is_wildcard(c->names[0])))
		return MSG_A_CHAL_DNS01;
	if (c->chal == STORE_CHAL_HTTP01)
		return MSG_A_CHAL_HTTP01;
	if (c->chal == STORE_CHAL_TLSALPN01 || a->m->lst.naddrs == 0)
		return MSG_A_CHAL_TLSALPN01;
	return MSG_A_CHAL_HTTP01;
}

static void
run_start(struct acme_peer *a, const struct acme_cand *c, struct store_order *row)
{
	uint8_t buf[IPC_MAX_PAYLOAD];
	char joined[ACME_NAMES_MAX * (HOSTNAME_MAX + 1)];
	struct wbuf b;
	size_t i, off = 0;

	memset(&a->run, 0, sizeof(a->run));
	a->run.id = ++a->next_id;
	a->run.route_id = c->route_id;
	a->run.nnames = c->nnames;
	a->run.started_ms = util_now_ms();
	a->run.chal = run_chal(a, c);
	util_strlcpy(a->run.profile, a->m->cfg.acme_profile != NULL ? a->m->cfg.acme_profile : "",
	    sizeof(a->run.profile));
	wb_init(&b, buf, sizeof(buf));
	wb_u64(&b, a->run.id);
	wb_u16(&b, (uint16_t)c->nnames);
	for (i = 0; i < c->nnames; i++) {
		util_strlcpy(a->run.names[i], c->names[i], sizeof(a->run.names[i]));
		wb_str(&b, c->names[i]);
		off += (size_t)snprintf(joined + off, sizeof(joined) - off, "%s%s", i ? " " : "",
		    c->names[i]);
	}
	wb_u8(&b, (uint8_t)a->run.chal);
	wb_str(&b, row->ari_id);	/* the certificate this one replaces (RFC 9773 section 5) */
	wb_str(&b, a->run.profile);
	util_strlcpy(row->state, "running", sizeof(row->state));
	store_order_put(a->m->store, c->route_id, row, joined);
	acme_run_log(&a->run, LOG_INFO, "ordering a certificate for ", joined);
	if (proc_send(&a->proc, MSG_A_ORDER, 0, 0, buf, b.len, -1) == -1)
		return;
	ev_timer_start(a->m->loop, &a->deadline, ACME_ORDER_DEADLINE_MS);
	ev_timer_start(a->m->loop, &a->lease_timer, ACMELEASE_RENEW_S * 1000);
}

/*
 * The order's lease (master/acmelease.h): 1 when taken and the order still
 * due (another node may have stored the certificate between our look and
 * the take), with *row read again; 0 not now (*wake moved to when to look).
 */
static int
run_lease(struct acme_peer *a, const struct acme_cand *c, struct store_order *row, int64_t *wake)
{
	int64_t until, now = (int64_t)time(NULL), again;
	int rc;

	switch (acmelease_take(a->m->store, &a->lease, c->names[0], now, &until)) {
	case 1:
		break;
	case 0:
		/*
		 * Its holder releases it at the end (its certificate's notice
		 * ticks us); a dead one's expires. A look every 30 s also
		 * covers a lease ended without a notice (a failed order).
		 */
		again = until > now ? until : now + 1;
		if (again > now + LEASE_LOOK_S)
			again = now + LEASE_LOOK_S;
		if (again < *wake)
			*wake = again;
		return 0;
	default:
		if (now + 60 < *wake)
			*wake = now + 60;
		return 0;
	}
	rc = store_order_get(a->m->store, c->route_id, row);
	if ((rc == STORE_OK || rc == STORE_ENOENT) && cand_due(a, c, row, rc == STORE_OK) == 0)
		return 1;
	acmelease_release(a->m->store, &a->lease);
	return 0;
}

/* Starts the first due order; returns the next unix time to look again. */
static int64_t
schedule_pick(struct acme_peer *a, struct cand_list *l)
{
	int64_t now = (int64_t)time(NULL), wake = now + IDLE_CHECK_MS / 1000, due;
	struct store_order row;
	size_t i;
	int has, rc;

	for (i = 0; i < l->n; i++) {
		rc = store_order_get(a->m->store, l->v[i].route_id, &row);
		if (rc != STORE_OK && rc != STORE_ENOENT)
			continue;
		has = rc == STORE_OK;
		if ((due = cand_due(a, &l->v[i], &row, has)) < 0)
			continue;
		if (due > 0) {
			if (due < wake)
				wake = due;
			/*
			 * Its certificate is good: an order cut by a restart is
			 * over, and so is a failed renewal no longer due.
			 */
			if (has && (strcmp(row.state, "queued") == 0 || (strcmp(row.state,
			    "running") == 0 && a->run.route_id != l->v[i].route_id) ||
			    (strcmp(row.state, "failed") == 0 && row.next_attempt <= now))) {
				util_strlcpy(row.state, "valid", sizeof(row.state));
				row.attempts = 0;
				store_order_put(a->m->store, l->v[i].route_id, &row, NULL);
			}
			continue;
		}
		if (a->run.id == 0) {
			if (run_lease(a, &l->v[i], &row, &wake) == 1)
				run_start(a, &l->v[i], &row);
			continue;
		}
		if (!has || strcmp(row.state, "valid") == 0) {
			util_strlcpy(row.state, "queued", sizeof(row.state));
			store_order_put(a->m->store, l->v[i].route_id, &row, NULL);
		}
	}
	return wake;
}

/* --- ARI (RFC 9773): the window of each ACME certificate, asked for through the child */

#define ARI_NONE_RECHECK_S 86400	/* a CA without ARI: look again daily */
#define ARI_RETRY_MIN_S 60		/* a Retry-After below this is taken as this */
#define ARI_RETRY_MAX_S 86400

int64_t
acmeq_ari_pick(int64_t start, int64_t end, int64_t now)
{
	uint64_t r = 0;

	if (end <= now)
		return now;	/* the window is over: renew at once */
	if (start < now)
		start = now;
	(void)util_random(&r, sizeof(r));
	return start + (int64_t)(r % (uint64_t)(end - start + 1));
}

void
acmeq_ari_result(struct acme_peer *a, int64_t route_id, int status, const char *id,
    int64_t start, int64_t end, uint32_t retry_after)
{
	int64_t now = (int64_t)time(NULL), retry = retry_after;
	struct store_order row;

	if (store_order_get(a->m->store, route_id, &row) != STORE_OK)
		return;	/* the route is gone, or it was never ordered */
	if (retry < ARI_RETRY_MIN_S)
		retry = ARI_RETRY_MIN_S;
	if (retry > ARI_RETRY_MAX_S)
		retry = ARI_RETRY_MAX_S;
	if (status == MSG_A_ARI_NONE) {
		/* One answer is the CA's for every certificate: ask for none of them before then. */
		a->ari_off_until = now + ARI_NONE_RECHECK_S;
		row.ari_id[0] = '\0';
		row.ari_start = row.ari_end = row.ari_renew_at = 0;
		retry = ARI_NONE_RECHECK_S;
	} else if (status == MSG_A_ARI_WINDOW) {
		/* A window that did not move keeps its draw, so polling does not move the renewal. */
		if (start != row.ari_start || end != row.ari_end || row.ari_renew_at == 0)
			row.ari_renew_at = acmeq_ari_pick(start, end, now);
		row.ari_start = start;
		row.ari_end = end;
		util_strlcpy(row.ari_id, id, sizeof(row.ari_id));
	}
	row.ari_next_poll = now + retry;
	if (store_order_put(a->m->store, route_id, &row, NULL) != STORE_OK)
		return;
	if (status == MSG_A_ARI_WINDOW)
		log_info("acme: ARI window of route %lld: renewal at %lld, next poll in %lld s",
		    (long long)route_id, (long long)row.ari_renew_at, (long long)retry);
}

/*
 * Asks the child for the window of the first ACME certificate whose poll
 * is due; *wake gets the earliest next poll. 1 when a request went out.
 */
static int
ari_poll(struct acme_peer *a, const struct cand_list *l, int64_t *wake)
{
	int64_t now = (int64_t)time(NULL);
	struct store_order row;
	struct store_cert sc;
	uint8_t *buf;
	struct wbuf b;
	size_t i;
	int sent = 0;

	if (now < a->ari_off_until) {
		if (a->ari_off_until < *wake)
			*wake = a->ari_off_until;
		return 0;
	}
	for (i = 0; i < l->n && !sent; i++) {
		if (store_order_get(a->m->store, l->v[i].route_id, &row) != STORE_OK ||
		    strcmp(row.state, "valid") != 0)
			continue;
		if (row.ari_next_poll > now) {
			if (row.ari_next_poll < *wake)
				*wake = row.ari_next_poll;
			continue;
		}
		if (store_cert_get(a->m->store, l->v[i].names[0], 0, &sc) != STORE_OK)
			continue;
		if (sc.source == KEYRING_SRC_ACME && strlen(sc.chain) <= MSG_A_CHAIN_MAX &&
		    (buf = malloc(IPC_MAX_PAYLOAD)) != NULL) {
			wb_init(&b, buf, IPC_MAX_PAYLOAD);
			wb_u64(&b, (uint64_t)l->v[i].route_id);
			wb_str(&b, sc.chain);
			if (!b.bad && proc_send(&a->proc, MSG_A_ARI_REQ, 0, 0, buf, b.len, -1) == 0) {
				a->ari_route = l->v[i].route_id;
				sent = 1;
			}
			free(buf);
		}
		store_cert_free(&sc);
	}
	return sent;
}

void
acmeq_tick_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct acme_peer *a = t->arg;
	struct cand_list cl;
	int64_t wake, now;

	(void)l;
	if (a->m->stopping || !a->proc.ready || a->run.id != 0 || a->ari_route != 0)
		return;
	memset(&cl, 0, sizeof(cl));
	cl.a = a;
	cl.st = a->m->store;
	if (store_route_foreach(a->m->store, cand_collect, &cl) != 0 ||
	    store_ondemand_foreach(a->m->store, cand_collect_ondemand, &cl) != 0) {
		log_warnx("acme: cannot read the routes; retrying in a minute");
		cands_free(&cl);
		acmeq_tick_soon(a, 60000);
		return;
	}
	wake = schedule_pick(a, &cl);
	/* Orders first: a window is asked for only while no order runs; its answer ticks again. */
	if (a->run.id == 0 && ari_poll(a, &cl, &wake)) {
		cands_free(&cl);
		return;
	}
	cands_free(&cl);
	now = (int64_t)time(NULL);
	if (a->run.id == 0)
		acmeq_tick_soon(a, wake > now ? (uint64_t)(wake - now) * 1000 : 1000);
}

void
acmeq_tick_soon(struct acme_peer *a, uint64_t ms)
{
	ev_timer_start(a->m->loop, &a->tick, ms);
}

/* --- haloyd-ctl cert status | renew */

struct status_row {
	char name[HOSTNAME_MAX + 1];
	struct store_order o;
};

/* "START .. END" of the ARI window, or "-". */
static void
status_window(const struct store_order *o, char *buf, size_t len)
{
	char a[64], b[64];

	if (o->ari_end <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	certs_format_time(o->ari_start, a, sizeof(a));
	certs_format_time(o->ari_end, b, sizeof(b));
	snprintf(buf, len, "%s .. %s", a, b);
}

static void
status_send(struct master *m, struct cclient *cl, const struct status_row *r)
{
	uint8_t buf[4096];
	struct store_cert sc;
	char when[64] = "-", expires[64] = "-", window[140], renew[64] = "-";
	int64_t renew_at = 0;
	struct wbuf w;

	if (r->o.next_attempt > 0 && strcmp(r->o.state, "failed") == 0)
		certs_format_time(r->o.next_attempt, when, sizeof(when));
	if (store_cert_get(m->store, r->name, 0, &sc) == STORE_OK) {
		certs_format_time(sc.not_after, expires, sizeof(expires));
		if (sc.source == KEYRING_SRC_ACME) {
			renew_at = acmeq_renew_at(m, &sc, &r->o);
			certs_format_time(renew_at, renew, sizeof(renew));
		}
		store_cert_free(&sc);
	}
	status_window(&r->o, window, sizeof(window));
	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 14);
	control_row_str(&w, "domain", r->name);
	control_row_str(&w, "state", r->o.state);
	control_row_int(&w, "attempts", r->o.attempts);
	control_row_str(&w, "next_attempt", when);
	control_row_int(&w, "next_attempt_unix", r->o.next_attempt);
	control_row_str(&w, "last_error", r->o.last_error);
	control_row_str(&w, "not_after", expires);
	control_row_str(&w, "challenge", r->o.challenge[0] != '\0' ? r->o.challenge : "-");
	control_row_str(&w, "ari_window", window);
	control_row_int(&w, "ari_start_unix", r->o.ari_start);
	control_row_int(&w, "ari_end_unix", r->o.ari_end);
	control_row_str(&w, "next_renewal", renew);
	control_row_int(&w, "next_renewal_unix", renew_at);
	control_row_str(&w, "profile", r->o.profile[0] != '\0' ? r->o.profile : "-");
	if (!w.bad)
		control_reply_row(cl, &w);
}

struct status_list {
	struct status_row *v;
	size_t n, cap;
};

static int
status_push(void *arg, const char *route, const struct store_order *o)
{
	struct status_list *l = arg;
	struct status_row *r;

	if (l->n == l->cap) {
		void *np = realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 16) * sizeof(*l->v));
		if (np == NULL)
			return STORE_ERR;
		l->v = np;
	}
	r = &l->v[l->n++];
	util_strlcpy(r->name, route, sizeof(r->name));
	r->o = *o;
	return 0;
}

/* Reads the rows first: certificates are looked up after the read ends. */
static int
status_collect(struct master *m, const char *only, struct status_row **out, size_t *n)
{
	struct status_list l = { NULL, 0, 0 };
	int rc = store_order_foreach(m->store, only, status_push, &l);

	*out = l.v;
	*n = l.n;
	return rc == STORE_OK ? 0 : -1;
}

int
acme_cmd_status(struct master *m, struct cclient *cl, struct cur *c)
{
	char raw[MSG_STR_MAX], name[HOSTNAME_MAX + 1];
	struct status_row *v = NULL;
	size_t n = 0, i;

	if (cur_str(c, raw, sizeof(raw)) == -1 || cur_end(c) == -1)
		return -1;
	if (raw[0] != '\0' && hostname_normalize_name(raw, name) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "invalid host name '%.253s'", raw);
		return 0;
	}
	if (status_collect(m, raw[0] != '\0' ? name : NULL, &v, &n) == -1)
		control_reply_fail(cl, CTL_EFAIL, "cannot read the order queue (see the log)");
	else if (raw[0] != '\0' && n == 0)
		control_reply_fail(cl, CTL_ENOENT, "%s: no ACME order", name);
	else {
		for (i = 0; i < n; i++)
			status_send(m, cl, &v[i]);
		control_reply_end(cl);
	}
	free(v);
	return 0;
}

int
acme_cmd_renew(struct master *m, struct cclient *cl, struct cur *c)
{
	char raw[MSG_STR_MAX], name[HOSTNAME_MAX + 1], msg[400];
	struct store_route r;
	struct store_order row;
	const char *why;
	int rc;

	if (cur_str(c, raw, sizeof(raw)) == -1 || cur_end(c) == -1)
		return -1;
	if (hostname_normalize_name(raw, name) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "invalid host name '%.253s'", raw);
		return 0;
	}
	if (m->acme == NULL) {
		control_reply_fail(cl, CTL_EINVAL, "ACME is off (set `acme on` in haloyd.conf)");
		return 0;
	}
	if (store_route_get(m->store, name, &r) != STORE_OK) {
		control_reply_fail(cl, CTL_ENOENT, "route %s: not found", name);
		return 0;
	}
	if ((why = acmeq_refusal(m->acme, name, r.set.challenge)) != NULL) {
		control_reply_fail(cl, CTL_EINVAL, "%s: %s", name, why);
	} else if ((rc = store_order_get(m->store, r.id, &row)) != STORE_OK && rc != STORE_ENOENT) {
		control_reply_fail(cl, CTL_EFAIL, "cannot read the order queue (see the log)");
	} else {
		util_strlcpy(row.state, m->acme->run.route_id == r.id ? row.state : "queued",
		    sizeof(row.state));
		row.force = 1;
		row.next_attempt = 0;
		if (store_order_put(m->store, r.id, &row, NULL) != STORE_OK) {
			control_reply_fail(cl, CTL_EFAIL, "cannot queue the order (see the log)");
		} else {
			snprintf(msg, sizeof(msg), "renewal of %s queued", name);
			log_info("%s", msg);
			if (m->acme->run.id == 0)
				acmeq_tick_soon(m->acme, 0);
			control_reply_ok(cl, msg);
		}
	}
	store_route_free(&r);
	return 0;
}
