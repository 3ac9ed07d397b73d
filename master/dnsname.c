/*
 * The master's table of backends by DNS name (see dnsname.h): what each
 * name resolves to, when to ask again, and the key of each address.
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/dnsname.h"
#include "share/addr.h"
#include "share/evloop.h"
#include "share/log.h"
#include "share/util.h"

struct dnsname {
	struct ev_loop *loop;
	struct ev_timer timer;
	const struct dnsname_resolver_ops *ops;
	void *impl;
	dnsname_changed_fn *changed;
	void *changed_arg;
	struct dnsname_entry *v;
	size_t n, cap;
	uint64_t next_token;
	uint32_t next_id;	/* the next address key, counted from DNSNAME_ID_BASE */
	uint64_t min_ms, max_ms;
	int full_logged;
	int running;		/* inside dnsname_run: an answer does not re-arm */
	uint64_t run_now;	/* dnsname_run's time, for the answers given inside it */
	int quiet;		/* inside dnsname_want: the build under way has the answer */
	unsigned shard;		/* the snapshot shard being built */
};

static void dnsname_start(struct dnsname *t, struct dnsname_entry *e);

static void
dnsname_timer_fire(struct ev_loop *l, struct ev_timer *tm)
{
	(void)l;
	dnsname_kick(tm->arg);
}

struct dnsname *
dnsname_new(struct ev_loop *loop, const struct dnsname_resolver_ops *ops, void *impl,
    dnsname_changed_fn *changed, void *arg)
{
	struct dnsname *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->ops = ops;
	t->impl = impl;
	t->changed = changed;
	t->changed_arg = arg;
	t->next_token = 1;
	t->min_ms = 1000;
	t->max_ms = 3600000;
	ev_timer_init(&t->timer, dnsname_timer_fire, t);
	return t;
}

void
dnsname_free(struct dnsname *t)
{
	if (t == NULL)
		return;
	ev_timer_stop(t->loop, &t->timer);
	free(t->v);
	free(t);
}

void
dnsname_set_ttl_bounds(struct dnsname *t, uint64_t min_ms, uint64_t max_ms)
{
	t->min_ms = min_ms;
	t->max_ms = max_ms < min_ms ? min_ms : max_ms;
}

uint64_t
dnsname_clamp_ttl(const struct dnsname *t, uint32_t ttl_s)
{
	uint64_t ms = (uint64_t)ttl_s * 1000;

	return ms < t->min_ms ? t->min_ms : ms > t->max_ms ? t->max_ms : ms;
}

static struct dnsname_entry *
dnsname_lookup(const struct dnsname *t, uint32_t backend_id)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].backend_id == backend_id)
			return &t->v[i];
	return NULL;
}

const struct dnsname_entry *
dnsname_find(const struct dnsname *t, uint32_t backend_id)
{
	return dnsname_lookup(t, backend_id);
}

static size_t
dnsname_inflight(const struct dnsname *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->n; i++)
		n += t->v[i].token != 0;
	return n;
}

const struct dnsname_entry *
dnsname_want(struct dnsname *t, uint32_t backend_id, const char *name, uint16_t port)
{
	struct dnsname_entry *e = dnsname_lookup(t, backend_id);

	if (e != NULL) {
		e->shards |= UINT64_C(1) << t->shard;
		return e;
	}
	if (t->n == DNSNAME_NAMES_MAX || strlen(name) > HOSTNAME_MAX) {
		if (!t->full_logged)
			log_warnx("backend %s:%u: more than %d backends by name; it stays "
			    "unresolved", name, port, DNSNAME_NAMES_MAX);
		t->full_logged = 1;
		return NULL;
	}
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		struct dnsname_entry *nv = realloc(t->v, nc * sizeof(*nv));

		if (nv == NULL) {
			log_warnx("backend %s:%u: out of memory", name, port);
			return NULL;
		}
		t->v = nv;
		t->cap = nc;
	}
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->backend_id = backend_id;
	e->port = port;
	memcpy(e->name, name, strlen(name) + 1);
	e->shards = UINT64_C(1) << t->shard;
	e->due_ms = 0;
	/*
	 * Asked at once: a hosts-file name (localhost) is answered inside lookup,
	 * so the generation being built already has its addresses, and no second
	 * one is asked for. A DNS answer comes later and publishes as a change.
	 */
	if (dnsname_inflight(t) < DNSNAME_INFLIGHT_MAX) {
		t->quiet = 1;
		dnsname_start(t, e);
		t->quiet = 0;
	}
	return e;
}

void
dnsname_shard_begin(struct dnsname *t, unsigned k)
{
	size_t i;

	t->shard = k;
	for (i = 0; i < t->n; i++)
		t->v[i].shards &= ~(UINT64_C(1) << k);
}

void
dnsname_sweep(struct dnsname *t)
{
	size_t i, j = 0;

	for (i = 0; i < t->n; i++) {
		if (t->v[i].shards == 0)
			continue;
		if (j != i)
			t->v[j] = t->v[i];
		j++;
	}
	t->n = j;
	if (j < DNSNAME_NAMES_MAX)
		t->full_logged = 0;
}

/* One lookup for e; the answer may come back inside lookup (no entry moves then). */
/* The time an answer counts from: the caller's in dnsname_run, else the loop's. */
static uint64_t
dnsname_now(const struct dnsname *t)
{
	return t->running ? t->run_now : ev_now(t->loop);
}

static void
dnsname_start(struct dnsname *t, struct dnsname_entry *e)
{
	uint64_t token = t->next_token++;

	e->token = token;
	if (t->ops->lookup(t->impl, e->name, token) == -1) {
		struct dnsname_answer a = { .ok = 0, .err = "cannot start the lookup" };

		dnsname_answer(t, token, &a);
	}
}

uint64_t
dnsname_run(struct dnsname *t, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;
	size_t i, inflight = dnsname_inflight(t);

	t->running = 1;
	t->run_now = now_ms;
	for (i = 0; i < t->n; i++) {
		struct dnsname_entry *e = &t->v[i];

		if (e->token != 0)
			continue;
		if (e->due_ms > now_ms || inflight >= DNSNAME_INFLIGHT_MAX) {
			if (e->due_ms > now_ms && e->due_ms - now_ms < next)
				next = e->due_ms - now_ms;
			else if (e->due_ms <= now_ms)
				next = 0;	/* waits for a lookup slot; an answer kicks */
			continue;
		}
		inflight++;
		dnsname_start(t, e);
		/* Answered inside lookup (the hosts file, a failure): its next time counts. */
		if (e->token == 0 && e->due_ms > now_ms && e->due_ms - now_ms < next)
			next = e->due_ms - now_ms;
	}
	t->running = 0;
	return next == 0 ? t->min_ms : next;
}

void
dnsname_refresh(struct dnsname *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		t->v[i].token = 0;
		t->v[i].due_ms = 0;
	}
}

static int
dnsname_addr_cmp(const void *a, const void *b)
{
	const struct dnsname_addr *x = a, *y = b;

	if (x->family != y->family)
		return x->family == AF_INET ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* "1.2.3.4:80 [::1]:80" into buf, for logs and route show. */
static void
dnsname_format_addrs(const struct dnsname_addr *a, size_t n, uint16_t port, char *buf,
    size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	size_t i, used = 0;
	int w;

	buf[0] = '\0';
	for (i = 0; i < n && used < len; i++) {
		if (inet_ntop(a[i].family, a[i].addr, ip, sizeof(ip)) == NULL)
			util_strlcpy(ip, "?", sizeof(ip));
		w = snprintf(buf + used, len - used, a[i].family == AF_INET6 ? "%s[%s]:%u" :
		    "%s%s:%u", i > 0 ? " " : "", ip, port);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* Takes a good answer: the keys of addresses that stay are kept. 1 when it differs. */
static int
dnsname_take(struct dnsname *t, struct dnsname_entry *e, const struct dnsname_addr *addrs,
    size_t n)
{
	uint32_t ids[DNSNAME_ADDRS_MAX];
	size_t i, j;
	int same = e->state == DNSNAME_RESOLVED && n == e->naddrs;

	for (i = 0; i < n; i++) {
		ids[i] = 0;
		for (j = 0; j < e->naddrs; j++)
			if (dnsname_addr_cmp(&addrs[i], &e->addrs[j]) == 0)
				ids[i] = e->ids[j];
		if (ids[i] == 0) {
			same = 0;
			ids[i] = DNSNAME_ID_BASE | (t->next_id++ & ~DNSNAME_ID_BASE);
		}
	}
	if (same)
		return 0;
	memcpy(e->addrs, addrs, n * sizeof(*addrs));
	memcpy(e->ids, ids, n * sizeof(*ids));
	e->naddrs = n;
	e->state = DNSNAME_RESOLVED;
	return 1;
}

/* A good answer, sorted and without repeats, at most DNSNAME_ADDRS_MAX. */
static size_t
dnsname_normalize(const struct dnsname_answer *a, struct dnsname_entry *e,
    struct dnsname_addr *out)
{
	struct dnsname_addr tmp[DNSNAME_ADDRS_MAX * 2];
	size_t i, n = 0, k = 0;

	for (i = 0; i < a->naddrs && n < DNSNAME_ADDRS_MAX * 2; i++)
		if (a->addrs[i].family == AF_INET || a->addrs[i].family == AF_INET6) {
			tmp[n] = a->addrs[i];
			if (tmp[n].family == AF_INET)
				memset(tmp[n].addr + 4, 0, 12);
			n++;
		}
	qsort(tmp, n, sizeof(tmp[0]), dnsname_addr_cmp);
	for (i = 0; i < n; i++)
		if (k == 0 || dnsname_addr_cmp(&tmp[i], &out[k - 1]) != 0) {
			if (k == DNSNAME_ADDRS_MAX) {
				log_warnx("backend %s:%u: more than %d addresses; the first %d "
				    "are used", e->name, e->port, DNSNAME_ADDRS_MAX,
				    DNSNAME_ADDRS_MAX);
				break;
			}
			out[k++] = tmp[i];
		}
	return k;
}

static void
dnsname_failed(struct dnsname *t, struct dnsname_entry *e, const char *why)
{
	char now[DNSNAME_DESCRIBE_MAX];

	e->due_ms = dnsname_now(t) + dnsname_clamp_ttl(t, DNSNAME_RETRY_MS / 1000);
	if (e->failing && strcmp(e->reason, why) == 0)
		return;
	e->failing = 1;
	util_strlcpy(e->reason, why, sizeof(e->reason));
	if (e->state == DNSNAME_RESOLVED) {
		dnsname_format_addrs(e->addrs, e->naddrs, e->port, now, sizeof(now));
		log_warnx("backend %s:%u: lookup failed (%s); keeping the last good "
		    "addresses %s", e->name, e->port, why, now);
	} else
		log_warnx("backend %s:%u: lookup failed (%s); unresolved, its requests "
		    "get 502", e->name, e->port, why);
}

void
dnsname_answer(struct dnsname *t, uint64_t token, const struct dnsname_answer *a)
{
	struct dnsname_addr addrs[DNSNAME_ADDRS_MAX];
	char now[DNSNAME_DESCRIBE_MAX];
	struct dnsname_entry *e = NULL;
	size_t i, n;

	for (i = 0; i < t->n && e == NULL; i++)
		if (t->v[i].token == token && token != 0)
			e = &t->v[i];
	if (e == NULL)
		return;
	e->token = 0;
	/* The next lookup's time changed: the timer is re-armed from the loop. */
	if (!t->running)
		(void)ev_timer_start(t->loop, &t->timer, 0);
	n = a->ok ? dnsname_normalize(a, e, addrs) : 0;
	if (n == 0) {
		dnsname_failed(t, e, a->ok ? "no address" : a->err != NULL ? a->err : "failed");
		return;
	}
	e->due_ms = dnsname_now(t) + dnsname_clamp_ttl(t, a->ttl_s);
	if (e->failing)
		log_info("backend %s:%u: lookups work again", e->name, e->port);
	e->failing = 0;
	e->reason[0] = '\0';
	if (!dnsname_take(t, e, addrs, n))
		return;
	dnsname_format_addrs(e->addrs, e->naddrs, e->port, now, sizeof(now));
	log_info("backend %s:%u: addresses now %s", e->name, e->port, now);
	if (t->changed != NULL && !t->quiet)
		t->changed(t->changed_arg);
}

void
dnsname_kick(struct dnsname *t)
{
	uint64_t next = dnsname_run(t, ev_now(t->loop));

	if (next == UINT64_MAX)
		ev_timer_stop(t->loop, &t->timer);
	else
		(void)ev_timer_start(t->loop, &t->timer, next);
}

void
dnsname_describe(const struct dnsname_entry *e, char *buf, size_t len)
{
	if (e == NULL) {
		snprintf(buf, len, "unresolved (not followed: too many names)");
		return;
	}
	if (e->state == DNSNAME_RESOLVED) {
		dnsname_format_addrs(e->addrs, e->naddrs, e->port, buf, len);
		if (e->failing && strlen(buf) + 1 < len)
			snprintf(buf + strlen(buf), len - strlen(buf), " (lookup failing: %s)",
			    e->reason);
		return;
	}
	if (e->failing)
		snprintf(buf, len, "unresolved (%s)", e->reason);
	else
		snprintf(buf, len, "unresolved (lookup in progress)");
}

/* One `resolver` entry: an address with or without a port, as c-ares takes it. */
static int
dnsname_server(const char *s, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		return snprintf(out, outlen, "%s:53", s) < (int)outlen ? 0 : -1;
	if (inet_pton(AF_INET6, s, a) == 1)
		return snprintf(out, outlen, "[%s]:53", s) < (int)outlen ? 0 : -1;
	if (strlen(s) < ADDR_STR_MAX && addr_parse(s, &ss, &sl) == 0)
		return addr_format((struct sockaddr *)&ss, out, outlen);
	return -1;
}

int
dnsname_servers_csv(const char *in, char *out, size_t outlen, char *err, size_t errlen)
{
	char copy[512], one[ADDR_STR_MAX], *tok, *save = NULL;
	size_t used = 0, n = 0;

	if (strlen(in) >= sizeof(copy))
		return util_errf(err, errlen, "resolver: too long");
	util_strlcpy(copy, in, sizeof(copy));
	out[0] = '\0';
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL; tok = strtok_r(NULL, " \t,", &save)) {
		if (++n > DNSNAME_SERVERS_MAX)
			return util_errf(err, errlen, "resolver: at most %d addresses",
			    DNSNAME_SERVERS_MAX);
		if (dnsname_server(tok, one, sizeof(one)) == -1)
			return util_errf(err, errlen, "resolver: invalid address '%.64s' "
			    "(use IP or IP:PORT, [IPv6]:PORT)", tok);
		if (used + strlen(one) + 2 > outlen)
			return util_errf(err, errlen, "resolver: too long");
		used += (size_t)snprintf(out + used, outlen - used, "%s%s", used > 0 ? "," : "", one);
	}
	if (n == 0)
		return util_errf(err, errlen, "resolver: no address");
	return 0;
}
