/*
 * haloyd-ctl's route, alias and backend commands, status and reload (run
 * through master/cmdtable.c). Every name and address is checked here again
 * (the control socket is an input like any other), the store enforces
 * uniqueness, and a change is answered only once every worker serves it.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master/acmemaster.h"
#include "master/bhealth.h"
#include "master/certs.h"
#include "master/certcmds.h"
#include "master/cmdtable.h"
#include "master/commands.h"
#include "master/conf.h"
#include "master/control.h"
#include "master/dnsmaster.h"
#include "master/master.h"
#include "master/proc.h"
#include "master/publish.h"
#include "master/rtable.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/addr.h"
#include "share/beaddr.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/pathprefix.h"
#include "share/snap.h"
#include "share/util.h"

#define ROUTE_MAX_ALIASES 64
#define ROUTE_MAX_BACKENDS 64
#define ROW_BUF 16384
#define ROUTE_SET_MAX 32	/* settings in one route set (haloyd-ctl sends each once) */

/* Reads and normalises a host name argument; on failure answers the client. */
static int
arg_name(struct cur *c, struct cclient *cl, char *out)
{
	char raw[MSG_STR_MAX];

	if (cur_str(c, raw, sizeof(raw)) == -1)
		return -2;
	if (hostname_normalize_name(raw, out) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "invalid host name '%.253s'", raw);
		return -1;
	}
	return 0;
}

/*
 * Reads a route name: a host name, or one with a path prefix
 * ("example.com/api", share/pathprefix.h). *hostlen is the host part's
 * length (strlen(out) without a prefix). On failure answers the client.
 */
static int
arg_route(struct cur *c, struct cclient *cl, char *out, size_t *hostlen)
{
	char raw[MSG_STR_MAX], err[400];
	int n;

	if (cur_str(c, raw, sizeof(raw)) == -1)
		return -2;
	if ((n = pathprefix_route_name(raw, out, err, sizeof(err))) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "%s", err);
		return -1;
	}
	*hostlen = (size_t)n;
	return 0;
}

/* Reads a backend (any form of share/beaddr.h) and prints it back canonically into out. */
static int
arg_backend(struct cur *c, struct cclient *cl, char *out)
{
	char raw[MSG_STR_MAX], err[300] = "invalid backend";
	struct beaddr b;

	if (cur_str(c, raw, sizeof(raw)) == -1)
		return -2;
	if (beaddr_parse(raw, &b, err, sizeof(err)) == -1 ||
	    beaddr_format(&b, out, BEADDR_STR_MAX) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "%s", err);
		return -1;
	}
	return 0;
}

/* Maps a store outcome to a reply, or waits for the new generation on success. */
static void
finish_change(struct master *m, struct cclient *cl, int rc, const char *what, const char *done)
{
	char msg[512];

	switch (rc) {
	case STORE_OK:
		snprintf(msg, sizeof(msg), "%s", done);
		acme_route_changed(m, what, msg + strlen(msg), sizeof(msg) - strlen(msg));
		control_reply_when_served(cl, publish_changed(m), msg);
		return;
	case STORE_ENOENT:
		control_reply_fail(cl, CTL_ENOENT, "%s: not found", what);
		return;
	case STORE_EEXIST:
		control_reply_fail(cl, CTL_EEXIST, "%s: already exists", what);
		return;
	case STORE_EINVAL:
		control_reply_fail(cl, CTL_EINVAL, "%s: not allowed", what);
		return;
	case STORE_EFULL:
		control_reply_fail(cl, CTL_EFAIL, "%s: not saved: the store's disk is full", what);
		return;
	case STORE_EDOWN:
		control_reply_fail(cl, CTL_EFAIL, "%s: not saved: the PostgreSQL store is unreachable",
		    what);
		return;
	default:
		control_reply_fail(cl, CTL_EFAIL, "%s: the store failed (see the log)", what);
	}
}

/* A host route keeps its prefix routes' names: it goes after them (answered). */
static int
prefix_rm_refused(struct master *m, struct cclient *cl, const char *name)
{
	int64_t n = 0;

	if (strchr(name, '/') != NULL || store_route_prefixes(m->store, name, &n) != STORE_OK ||
	    n == 0)
		return 0;
	control_reply_fail(cl, CTL_EINVAL, "route %s: %lld path-prefix route%s (%s/...) "
	    "depend on it: remove them first", name, (long long)n, n == 1 ? "" : "s", name);
	return 1;
}

/*
 * A prefix route hangs from its host's route: that route must exist (its
 * certificate, aliases and fallback serve the prefix), it has no aliases
 * of its own, and a host route has at most PATHPREFIX_PER_ROUTE_MAX.
 * 1 when refused (answered).
 */
static int
prefix_add_refused(struct master *m, struct cclient *cl, const char *name, size_t hl,
    uint16_t naliases)
{
	char host[HOSTNAME_MAX + 1];
	struct store_route r;
	int64_t n = 0;

	if (name[hl] == '\0')
		return 0;
	memcpy(host, name, hl);
	host[hl] = '\0';
	if (naliases > 0) {
		control_reply_fail(cl, CTL_EINVAL, "route %s: a path-prefix route has no aliases: "
		    "add them to route %s, whose names it serves", name, host);
		return 1;
	}
	if (store_route_get(m->store, host, &r) != STORE_OK) {
		control_reply_fail(cl, CTL_ENOENT, "route %s: no route %s: add the host's route "
		    "first (it serves the paths outside the prefix)", name, host);
		return 1;
	}
	store_route_free(&r);
	if (store_route_prefixes(m->store, host, &n) == STORE_OK &&
	    n >= PATHPREFIX_PER_ROUTE_MAX) {
		control_reply_fail(cl, CTL_EINVAL, "route %s: route %s has %d path-prefix routes "
		    "already, the most it may have", name, host, PATHPREFIX_PER_ROUTE_MAX);
		return 1;
	}
	return 0;
}

int
commands_route_rm(struct master *m, struct cclient *cl, struct cur *c)
{
	char name[HOSTNAME_MAX + 1], done[300];
	size_t hl;
	int rc;

	if ((rc = arg_route(c, cl, name, &hl)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	if (prefix_rm_refused(m, cl, name))
		return 0;
	snprintf(done, sizeof(done), "route %s removed", name);
	if ((rc = store_route_rm(m->store, name)) == STORE_OK)
		acme_route_removed(m, name);
	rtable_touch(&m->rt, name);
	finish_change(m, cl, rc, name, done);
	return 0;
}

/* alias add|rm ROUTE NAME */
static int
cmd_alias(struct master *m, struct cclient *cl, struct cur *c, int add)
{
	char route[HOSTNAME_MAX + 1], alias[HOSTNAME_MAX + 1], what[600], done[600];
	size_t hl;
	int rc;

	if ((rc = arg_route(c, cl, route, &hl)) != 0 || (rc = arg_name(c, cl, alias)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	if (route[hl] != '\0') {
		control_reply_fail(cl, CTL_EINVAL, "route %s: a path-prefix route has no aliases: "
		    "it serves every name of route %.*s", route, (int)hl, route);
		return 0;
	}
	rc = add ? store_alias_add(m->store, route, alias) : store_alias_rm(m->store, route, alias);
	rtable_touch(&m->rt, route);
	if (rc == STORE_ENOENT && add)
		snprintf(what, sizeof(what), "route %s", route);
	else
		snprintf(what, sizeof(what), "alias %s", alias);
	snprintf(done, sizeof(done), "alias %s %s route %s", alias, add ? "added to" : "removed from", route);
	finish_change(m, cl, rc, what, done);
	return 0;
}

/* backend add|rm ROUTE ADDR */
static int
cmd_backend(struct master *m, struct cclient *cl, struct cur *c, int add)
{
	char route[HOSTNAME_MAX + 1], be[BEADDR_STR_MAX], what[600], done[600];
	size_t hl;
	int rc;

	if ((rc = arg_route(c, cl, route, &hl)) != 0 || (rc = arg_backend(c, cl, be)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	rc = add ? store_backend_add(m->store, route, be) : store_backend_rm(m->store, route, be);
	rtable_touch(&m->rt, route);
	if (rc == STORE_ENOENT && add)
		snprintf(what, sizeof(what), "route %s", route);
	else
		snprintf(what, sizeof(what), "backend %s of route %s", be, route);
	snprintf(done, sizeof(done), "backend %s %s route %s", be, add ? "added to" : "removed from", route);
	finish_change(m, cl, rc, what, done);
	return 0;
}

/* --- route set */

enum rset_kind {
	RSET_DURATION, RSET_SIZE, RSET_SWITCH, RSET_PROTO, RSET_CA, RSET_SNI, RSET_BALANCE,
	RSET_CHALLENGE, RSET_RATE, RSET_COUNT, RSET_PPROTO, RSET_HPATH, RSET_HMS, RSET_HCOUNT,
};

enum rset_flags {
	RSET_ADD = 1,		/* route add takes it too (the backend protocol settings) */
	RSET_TLS = 2,		/* a TLS setting: only with proto https or h2 */
	RSET_PREFIX = 4,	/* only for a path-prefix route ("host/api") */
};

/*
 * What route set may change. Values are parsed here and only here; a
 * timeout takes haloyd.conf's syntax and range (conf_range), so a route
 * accepts exactly what the file does. A switch is one snapshot flag.
 */
static const struct rset_opt {
	const char *key;	/* haloyd.conf's name; haloyd-ctl's option is --key */
	enum rset_kind kind;
	size_t off;		/* the int64_t in struct store_settings */
	uint32_t flag;		/* RSET_SWITCH: the flag, set by the value set_by */
	int set_by;
	int flags;		/* enum rset_flags */
} rset_opts[] = {
	{ "connect_timeout", RSET_DURATION, offsetof(struct store_settings, connect_ms), 0, 0, 0 },
	{ "response_timeout", RSET_DURATION, offsetof(struct store_settings, response_ms), 0, 0, 0 },
	{ "idle_timeout", RSET_DURATION, offsetof(struct store_settings, idle_ms), 0, 0, 0 },
	{ "upgrade_timeout", RSET_DURATION, offsetof(struct store_settings, upgrade_ms), 0, 0, 0 },
	{ "max_body", RSET_SIZE, offsetof(struct store_settings, max_body), 0, 0, 0 },
	{ "https_redirect", RSET_SWITCH, 0, SNAP_ROUTE_NO_HTTPS_REDIRECT, 0, 0 },
	{ "hsts", RSET_SWITCH, 0, SNAP_ROUTE_HSTS, 1, 0 },
	{ "compress", RSET_SWITCH, 0, SNAP_ROUTE_COMPRESS, 1, 0 },
	/* The tunnel process's pick among a tunnel's agents, and the workers' among addresses. */
	{ "balance", RSET_BALANCE, 0, SNAP_ROUTE_BALANCE_RR, 0, 0 },
	{ "rate", RSET_RATE, offsetof(struct store_settings, rate_rpm), 0, 0, 0 },
	{ "burst", RSET_COUNT, offsetof(struct store_settings, rate_burst), 0, 0, 0 },
	{ "nodelay", RSET_SWITCH, 0, SNAP_ROUTE_RATE_NODELAY, 1, 0 },
	{ "cache", RSET_SWITCH, 0, SNAP_ROUTE_CACHE, 1, 0 },
	{ "cache_max_object", RSET_SIZE, offsetof(struct store_settings, cache_max_object), 0, 0,
	    0 },
	{ "cache_debug", RSET_SWITCH, 0, SNAP_ROUTE_CACHE_DEBUG, 1, 0 },
	{ "proto", RSET_PROTO, 0, 0, 0, RSET_ADD },
	{ "backend_ca", RSET_CA, offsetof(struct store_settings, backend_ca), 0, 0,
	    RSET_ADD | RSET_TLS },
	{ "backend_sni", RSET_SNI, offsetof(struct store_settings, backend_sni), 0, 0,
	    RSET_ADD | RSET_TLS },
	{ "backend_verify", RSET_SWITCH, 0, SNAP_ROUTE_BACKEND_NO_VERIFY, 0, RSET_ADD | RSET_TLS },
	{ "challenge", RSET_CHALLENGE, 0, 0, 0, RSET_ADD },
	{ "backend_proxy_protocol", RSET_PPROTO, 0, 0, 0, 0 },
	{ "strip_prefix", RSET_SWITCH, 0, SNAP_ROUTE_STRIP_PREFIX, 1, RSET_ADD | RSET_PREFIX },
	{ "health_check", RSET_HPATH, offsetof(struct store_settings, health_path), 0, 0, 0 },
	{ "health_interval", RSET_HMS, offsetof(struct store_settings, health_interval_ms), 0, 0, 0 },
	{ "health_timeout", RSET_HMS, offsetof(struct store_settings, health_timeout_ms), 0, 0, 0 },
	{ "health_rise", RSET_HCOUNT, offsetof(struct store_settings, health_rise), 0, 0, 0 },
	{ "health_fall", RSET_HCOUNT, offsetof(struct store_settings, health_fall), 0, 0, 0 },
};

/* The words of enum store_challenge, as route set takes and shows them. */
static const char *const rset_challenges[] = { "auto", "http-01", "tls-alpn-01", "dns-01" };
/* The PROXY protocol versions toward backends (worker/proxyproto.h's numbers). */
static const char *const rset_pprotos[] = { "off", "v1", "v2" };

/* val's index among names[0..n), or -1. */
static int
rset_name(const char *val, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(val, names[i]) == 0)
			return (int)i;
	return -1;
}

_Static_assert(CERTS_CA_PEM_MAX == MSG_PEM_CA_MAX, "the CA bound of the request and the check");

/*
 * One parsed change: STORE_DEFAULT, or the value (ms, bytes, 1 on / 0 off,
 * enum snap_proto); a CA or server name is s (NULL for the default), owned
 * until rset_apply moves it into the settings.
 */
struct rset_change {
	const struct rset_opt *o;
	int64_t v;
	char *s;
};

static void
rset_free(struct rset_change *ch, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(ch[i].s);
		ch[i].s = NULL;
	}
}

static int64_t
rset_get(const struct store_settings *set, const struct rset_opt *o)
{
	int64_t v;

	memcpy(&v, (const char *)set + o->off, sizeof(v));
	return v;
}

static int
rset_duration(const struct rset_opt *o, const char *val, int64_t *v, char *err, size_t errlen)
{
	char lo[32], hi[32];
	uint64_t u, min, max;

	if (conf_range(o->key, &min, &max) == -1)
		fatalx("route setting %s is not a haloyd.conf duration", o->key);
	if (util_parse_duration_ms(val, &u) == 0 && u >= min && u <= max) {
		*v = (int64_t)u;
		return 0;
	}
	util_format_duration_ms(min, lo, sizeof(lo));
	util_format_duration_ms(max, hi, sizeof(hi));
	snprintf(err, errlen, "%s: invalid value '%.64s': use %s to %s (500ms, 30s, 2m, 1h) "
	    "or default", o->key, val, lo, hi);
	return -1;
}

/* A CA PEM (checked and re-encoded) or a server name into ch->s. */
static int
rset_string(struct rset_change *ch, const char *val, char *err, size_t errlen)
{
	char name[HOSTNAME_MAX + 1];

	if (ch->o->kind == RSET_CA) {
		/* certs_check_ca's reasons start with "backend CA:". */
		if (certs_check_ca(val, strlen(val), &ch->s, NULL, 0, err, errlen) == -1)
			return -1;
		return 0;
	}
	if (strlen(val) > HOSTNAME_MAX || hostname_normalize_sni(val, name) == -1) {
		snprintf(err, errlen, "backend_sni: invalid value '%.100s': use a host name "
		    "(no wildcard, no IP address), or default", val);
		return -1;
	}
	if ((ch->s = strdup(name)) == NULL) {
		snprintf(err, errlen, "backend_sni: out of memory");
		return -1;
	}
	return 0;
}

/* A health check setting: a path (into ch->s), a duration or a count. */
static int
rset_health(struct rset_change *ch, const char *val, char *err, size_t errlen)
{
	uint64_t u;
	size_t i, len = strlen(val);

	if (ch->o->kind == RSET_HPATH) {
		/* Sent as the request-target as it is: visible ASCII only. */
		for (i = 0; i < len && val[i] > ' ' && val[i] < 0x7f; i++)
			;
		if (val[0] != '/' || i != len || len > SNAP_HEALTH_PATH_MAX) {
			snprintf(err, errlen, "health_check: invalid value '%.64s': use a path such "
			    "as /healthz (at most %u bytes, no spaces), off or default", val,
			    SNAP_HEALTH_PATH_MAX);
			return -1;
		}
		if ((ch->s = strdup(val)) == NULL) {
			snprintf(err, errlen, "health_check: out of memory");
			return -1;
		}
		return 0;
	}
	if (ch->o->kind == RSET_HMS) {
		if (util_parse_duration_ms(val, &u) == 0 && u >= SNAP_HEALTH_MS_MIN &&
		    u <= SNAP_HEALTH_MS_MAX) {
			ch->v = (int64_t)u;
			return 0;
		}
		snprintf(err, errlen, "%s: invalid value '%.64s': use 100ms to 1h (500ms, 5s, 1m) "
		    "or default", ch->o->key, val);
		return -1;
	}
	if (util_parse_u64(val, 1, SNAP_HEALTH_COUNT_MAX, &u) == -1) {
		snprintf(err, errlen, "%s: invalid value '%.64s': use 1 to %u, or default",
		    ch->o->key, val, SNAP_HEALTH_COUNT_MAX);
		return -1;
	}
	ch->v = (int64_t)u;
	return 0;
}

/* Parses val for ch->o into ch; on failure says why in err. */
static int
rset_parse(struct rset_change *ch, const char *val, char *err, size_t errlen)
{
	const struct rset_opt *o = ch->o;
	int64_t *v = &ch->v;
	uint64_t u;
	int p;

	/* "" clears a CA or server name too (haloyd-ctl --backend-ca ''). */
	if (strcmp(val, "default") == 0 ||
	    (val[0] == '\0' && (o->kind == RSET_CA || o->kind == RSET_SNI)) ||
	    (o->kind == RSET_HPATH && strcmp(val, "off") == 0)) {
		*v = STORE_DEFAULT;
		return 0;
	}
	switch (o->kind) {
	case RSET_CA:
	case RSET_SNI:
		return rset_string(ch, val, err, errlen);
	case RSET_HPATH:
	case RSET_HMS:
	case RSET_HCOUNT:
		return rset_health(ch, val, err, errlen);
	case RSET_BALANCE:
		if (strcmp(val, "round-robin") != 0 && strcmp(val, "least-in-flight") != 0) {
			snprintf(err, errlen, "balance: invalid value '%.64s': use round-robin, "
			    "least-in-flight or default", val);
			return -1;
		}
		*v = strcmp(val, "round-robin") == 0;
		return 0;
	case RSET_PROTO:
		if ((p = snap_proto_parse(val)) == -1) {
			snprintf(err, errlen, "proto: invalid value '%.64s': use http1, h2c, https, "
			    "h2 or default", val);
			return -1;
		}
		*v = p;
		return 0;
	case RSET_CHALLENGE:
		/* "auto" (0) is what "default" sets, not a value to give. */
		if ((p = rset_name(val, rset_challenges + 1, ARRAY_LEN(rset_challenges) - 1)) >= 0) {
			*v = p + 1;
			return 0;
		}
		snprintf(err, errlen, "challenge: invalid value '%.64s': use http-01, tls-alpn-01, "
		    "dns-01 or default (tls-alpn-01 when no listen_http is configured)", val);
		return -1;
	case RSET_PPROTO:
		if ((p = rset_name(val, rset_pprotos, ARRAY_LEN(rset_pprotos))) >= 0) {
			*v = p;
			return 0;
		}
		snprintf(err, errlen, "backend_proxy_protocol: invalid value '%.64s': use v1, v2, "
		    "off or default (off)", val);
		return -1;
	case RSET_DURATION:
		return rset_duration(o, val, v, err, errlen);
	case RSET_RATE:
		if (util_parse_rate(val, &u) == -1 || u > SNAP_RATE_RPM_MAX) {
			snprintf(err, errlen, "rate: invalid value '%.64s': use 10r/s or 600r/m "
			    "(at most 1000000r/s), off, or default", val);
			return -1;
		}
		*v = (int64_t)u;
		return 0;
	case RSET_COUNT:
		if (util_parse_u64(val, 0, SNAP_RATE_BURST_MAX, &u) == -1) {
			snprintf(err, errlen, "%s: invalid value '%.64s': use 0 to %u, or default",
			    o->key, val, SNAP_RATE_BURST_MAX);
			return -1;
		}
		*v = (int64_t)u;
		return 0;
	case RSET_SIZE:
		/* The store keeps a signed 64-bit integer. */
		if (strcmp(val, "unlimited") == 0)
			u = 0;
		else if (util_parse_size(val, &u) == -1 || u > INT64_MAX) {
			snprintf(err, errlen, "%s: invalid value '%.64s': use bytes or 10k, 5m, 1g; "
			    "0 or unlimited for no limit; or default", o->key, val);
			return -1;
		}
		/* A stored object is read into memory whole: bounded (schema 11's CHECK). */
		if (o->off == offsetof(struct store_settings, cache_max_object) &&
		    (u == 0 || u > (1u << 30))) {
			snprintf(err, errlen, "%s: invalid value '%.64s': use 1 to 1g, or default",
			    o->key, val);
			return -1;
		}
		*v = (int64_t)u;
		return 0;
	case RSET_SWITCH:
		if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
			snprintf(err, errlen, "%s: invalid value '%.64s': use on, off or default",
			    o->key, val);
			return -1;
		}
		*v = strcmp(val, "on") == 0;
		return 0;
	}
	return -1;
}

/*
 * Reads one "key value" pair (a CA's PEM may be MSG_PEM_CA_MAX bytes, every
 * other value MSG_STR_MAX); on a bad one answers the client. add: for
 * route add, which takes only the backend protocol settings.
 */
static int
rset_read(struct cur *c, struct cclient *cl, struct rset_change *ch, int add)
{
	char key[MSG_STR_MAX], val[MSG_PEM_CA_MAX + 1], err[300];
	size_t i;

	if (cur_str(c, key, sizeof(key)) == -1)
		return -2;
	for (i = 0; i < ARRAY_LEN(rset_opts); i++)
		if (strcmp(rset_opts[i].key, key) == 0)
			break;
	if (i == ARRAY_LEN(rset_opts) || (add && !(rset_opts[i].flags & RSET_ADD))) {
		control_reply_fail(cl, CTL_EINVAL, "unknown %s setting '%.64s'",
		    add ? "route add" : "route", key);
		return -1;
	}
	*ch = (struct rset_change){ .o = &rset_opts[i] };
	if (cur_str(c, val, ch->o->kind == RSET_CA ? sizeof(val) : MSG_STR_MAX) == -1)
		return -2;
	if (rset_parse(ch, val, err, sizeof(err)) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "%s", err);
		return -1;
	}
	return 0;
}

/* Reads "u16 n; n x (key, value)" into ch (at most ROUTE_SET_MAX); *n is what was read. */
static int
rset_read_all(struct cur *c, struct cclient *cl, struct rset_change *ch, uint16_t *n, int add)
{
	uint16_t want = cur_u16(c);
	int rc;

	*n = 0;
	if (want > ROUTE_SET_MAX)
		return -2;
	for (; *n < want; (*n)++)
		if ((rc = rset_read(c, cl, &ch[*n], add)) != 0)
			return rc;
	return 0;
}

static void
rset_apply(struct store_settings *set, struct rset_change *ch)
{
	const struct rset_opt *o = ch->o;
	char **str;

	if (o->kind == RSET_PROTO)
		set->proto = ch->v == STORE_DEFAULT ? SNAP_PROTO_HTTP1 : (uint16_t)ch->v;
	else if (o->kind == RSET_CHALLENGE)
		set->challenge = ch->v == STORE_DEFAULT ? STORE_CHAL_AUTO : (uint16_t)ch->v;
	else if (o->kind == RSET_PPROTO)
		set->backend_pp = ch->v == STORE_DEFAULT ? 0 : (uint16_t)ch->v;
	else if (o->kind == RSET_CA || o->kind == RSET_SNI || o->kind == RSET_HPATH) {
		str = (char **)(void *)((char *)set + o->off);
		free(*str);
		*str = ch->s;
		ch->s = NULL;
	} else if (o->kind == RSET_BALANCE) {
		/* Given least-in-flight holds for addresses too; the default only for tunnels. */
		set->flags &= ~(o->flag | SNAP_ROUTE_BALANCE_LIF);
		if (ch->v == 1)
			set->flags |= o->flag;
		else if (ch->v == 0)
			set->flags |= SNAP_ROUTE_BALANCE_LIF;
	} else if (o->kind != RSET_SWITCH)
		memcpy((char *)set + o->off, &ch->v, sizeof(ch->v));
	/* A switch's default is the built-in behaviour: its flag clear. */
	else if (ch->v != STORE_DEFAULT && ch->v == o->set_by)
		set->flags |= o->flag;
	else
		set->flags &= ~o->flag;
}

/*
 * The backend TLS rule, once every change is applied: TLS settings only
 * with a TLS protocol. A change that gives one with a plain protocol is
 * refused; a route switched to a plain protocol loses the ones it had.
 * Returns 1 when it cleared some, 0, or -1 with the reason in err.
 */
static int
rset_tls_rule(struct store_settings *set, const struct rset_change *ch, size_t n, char *err,
    size_t errlen)
{
	int had;
	size_t i;

	if (snap_proto_tls(set->proto))
		return 0;
	for (i = 0; i < n; i++)
		if (ch[i].o->flags & RSET_TLS) {
			snprintf(err, errlen, "%s needs proto https or h2 (the route's is %s)",
			    ch[i].o->key, snap_proto_name(set->proto));
			return -1;
		}
	had = set->backend_ca != NULL || set->backend_sni != NULL ||
	    (set->flags & SNAP_ROUTE_BACKEND_NO_VERIFY);
	free(set->backend_ca);
	free(set->backend_sni);
	set->backend_ca = set->backend_sni = NULL;
	set->flags &= ~(uint32_t)SNAP_ROUTE_BACKEND_NO_VERIFY;
	return had;
}

/*
 * A PROXY header toward backends only over HTTP/1.1 (http1, https): one
 * HTTP/2 session carries many clients' streams, and a header names one.
 */
static int
rset_pp_rule(const struct store_settings *set, char *err, size_t errlen)
{
	if (set->backend_pp == 0 || set->proto == SNAP_PROTO_HTTP1 || set->proto == SNAP_PROTO_HTTPS)
		return 0;
	snprintf(err, errlen, "backend_proxy_protocol needs proto http1 or https (the route's is "
	    "%s: an HTTP/2 session is shared by many clients)", snap_proto_name(set->proto));
	return -1;
}

/* A CA as route show names it: the first subject and how many follow. */
static void
rset_ca_subject(const char *pem, char *buf, size_t len)
{
	char err[200];

	if (certs_check_ca(pem, strlen(pem), NULL, buf, len, err, sizeof(err)) == -1)
		snprintf(buf, len, "unreadable (%s)", err);
}

/*
 * The value of o for a route as route set takes it ("default", "2s",
 * "10m", "unlimited", "on"); returns 1 when it differs from the default.
 * full: for route show and answers, a CA's subject and a loud
 * "off (INSECURE)"; else ("custom", "off") for one table cell.
 */
static int
rset_format(const struct rset_opt *o, const struct store_settings *set, char *buf, size_t len,
    int full)
{
	const char *str;
	int64_t v;

	if (o->kind == RSET_SWITCH) {
		snprintf(buf, len, "%s", ((set->flags & o->flag) != 0) == o->set_by ? "on" :
		    full && (o->flags & RSET_TLS) ? "off (INSECURE)" : "off");
		return (set->flags & o->flag) != 0;
	}
	if (o->kind == RSET_BALANCE) {
		snprintf(buf, len, "%s", (set->flags & o->flag) ? "round-robin" : "least-in-flight");
		return (set->flags & (o->flag | SNAP_ROUTE_BALANCE_LIF)) != 0;
	}
	if (o->kind == RSET_PROTO) {
		snprintf(buf, len, "%s", snap_proto_name(set->proto));
		return set->proto != SNAP_PROTO_HTTP1;
	}
	if (o->kind == RSET_PPROTO) {
		snprintf(buf, len, "%s", set->backend_pp < ARRAY_LEN(rset_pprotos) ?
		    rset_pprotos[set->backend_pp] : "?");
		return set->backend_pp != 0;
	}
	if (o->kind == RSET_CHALLENGE) {
		snprintf(buf, len, "%s", set->challenge < ARRAY_LEN(rset_challenges) ?
		    rset_challenges[set->challenge] : "?");
		return set->challenge != STORE_CHAL_AUTO;
	}
	if (o->kind == RSET_CA || o->kind == RSET_SNI || o->kind == RSET_HPATH) {
		memcpy(&str, (const char *)set + o->off, sizeof(str));
		if (str == NULL)
			snprintf(buf, len, "%s", o->kind == RSET_CA ? "system roots" :
			    o->kind == RSET_HPATH ? "off" : "none");
		else if (o->kind == RSET_HPATH)
			snprintf(buf, len, "%s", str);
		else if (o->kind == RSET_SNI)
			snprintf(buf, len, "%s", str);
		else if (full)
			rset_ca_subject(str, buf, len);
		else
			snprintf(buf, len, "custom");
		return str != NULL;
	}
	v = rset_get(set, o);
	if (v == STORE_DEFAULT || (v == 0 && (o->kind == RSET_HMS || o->kind == RSET_HCOUNT)))
		snprintf(buf, len, "default");
	else if (o->kind == RSET_RATE)
		util_format_rate((uint64_t)v, buf, len);
	else if (o->kind == RSET_COUNT || o->kind == RSET_HCOUNT)
		snprintf(buf, len, "%lld", (long long)v);
	else if (o->kind == RSET_SIZE && v == 0)
		snprintf(buf, len, "unlimited");
	else if (o->kind == RSET_SIZE)
		util_format_size((uint64_t)v, buf, len);
	else
		util_format_duration_ms((uint64_t)v, buf, len);
	return v != STORE_DEFAULT && !(v == 0 && (o->kind == RSET_HMS || o->kind == RSET_HCOUNT));
}

/*
 * --- the table for export and apply (master/apply.c, master/applyfile.c):
 * they walk rset_opts through these, so a setting added to the table is
 * exported and applied with no code of theirs.
 */

size_t
commands_rset_count(void)
{
	return ARRAY_LEN(rset_opts);
}

const char *
commands_rset_key(size_t i)
{
	return rset_opts[i].key;
}

/* The value of setting i as route set takes it; 1 when it differs from the default. */
int
commands_rset_value(size_t i, const struct store_settings *set, char *buf, size_t len, int full)
{
	return rset_format(&rset_opts[i], set, buf, len, full);
}

/* The PEM of setting i when it is a CA (NULL when none or not a CA). */
const char *
commands_rset_pem(size_t i, const struct store_settings *set)
{
	const char *str;

	if (rset_opts[i].kind != RSET_CA)
		return NULL;
	memcpy(&str, (const char *)set + rset_opts[i].off, sizeof(str));
	return str;
}

int
commands_rset_is_pem(size_t i)
{
	return rset_opts[i].kind == RSET_CA;
}

/* Every setting at its default, as a route added without any. */
void
commands_rset_defaults(struct store_settings *set)
{
	*set = (struct store_settings){ STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT, 0, SNAP_PROTO_HTTP1, NULL,
	    NULL, STORE_CHAL_AUTO, 0, STORE_DEFAULT, NULL, STORE_DEFAULT, STORE_DEFAULT, STORE_DEFAULT,
	    STORE_DEFAULT };
}

/* Parses val for setting key (its text as route set takes it) into *set. */
int
commands_rset_put(const char *key, const char *val, struct store_settings *set, char *err,
    size_t errlen)
{
	struct rset_change ch = { NULL, 0, NULL };
	size_t i;

	for (i = 0; i < ARRAY_LEN(rset_opts); i++)
		if (strcmp(rset_opts[i].key, key) == 0)
			break;
	if (i == ARRAY_LEN(rset_opts)) {
		snprintf(err, errlen, "unknown setting '%.64s'", key);
		return -1;
	}
	ch.o = &rset_opts[i];
	if (rset_parse(&ch, val, err, errlen) == -1)
		return -1;
	rset_apply(set, &ch);
	rset_free(&ch, 1);
	return 0;
}

/* The backend TLS rule for a whole route: TLS settings only with https or h2. */
int
commands_rset_check(const struct store_settings *set, char *err, size_t errlen)
{
	char v[300];
	size_t i;

	if (rset_pp_rule(set, err, errlen) == -1)
		return -1;
	if (snap_proto_tls(set->proto))
		return 0;
	for (i = 0; i < ARRAY_LEN(rset_opts); i++)
		if ((rset_opts[i].flags & RSET_TLS) && rset_format(&rset_opts[i], set, v, sizeof(v), 0)) {
			snprintf(err, errlen, "%s needs proto https or h2 (the route's is %s)",
			    rset_opts[i].key, snap_proto_name(set->proto));
			return -1;
		}
	return 0;
}

/* "route NAME: key=value, ..." with the values as route show prints them. */
static void
rset_describe(char *buf, size_t len, const char *name, const struct store_settings *set,
    const struct rset_change *ch, size_t n)
{
	char v[300];
	size_t i, at;

	at = (size_t)snprintf(buf, len, "route %s:", name);
	for (i = 0; i < n && at < len; i++) {
		rset_format(ch[i].o, set, v, sizeof(v), 1);
		at += (size_t)snprintf(buf + at, len - at, "%s %s=%s", i > 0 ? "," : "",
		    ch[i].o->key, v);
	}
}

/* Appends why the route lost its TLS settings to an answer. */
static void
rset_note_cleared(char *done, size_t len, int cleared)
{
	size_t at = strlen(done);

	if (cleared > 0 && at < len)
		snprintf(done + at, len - at, " (backend TLS settings cleared: plain protocol)");
}

/* A prefix-only setting on a host route is refused (answered): 1. */
static int
rset_prefix_refused(struct cclient *cl, const char *name, size_t hl,
    const struct rset_change *ch, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((ch[i].o->flags & RSET_PREFIX) && name[hl] == '\0') {
			control_reply_fail(cl, CTL_EINVAL, "route %s: %s is only for a path-prefix "
			    "route (%s/PREFIX)", name, ch[i].o->key, name);
			return 1;
		}
	return 0;
}

/* route set NAME KEY VALUE...: every value is checked before anything changes. */
int
commands_route_set(struct master *m, struct cclient *cl, struct cur *c)
{
	struct rset_change ch[ROUTE_SET_MAX];
	char name[HOSTNAME_MAX + 1], what[300], done[1024] = "", err[300];
	struct store_route r;
	uint16_t i, n = 0;
	size_t hl;
	int rc, ret = 0, cleared;

	if ((rc = arg_route(c, cl, name, &hl)) != 0)
		return rc == -2 ? -1 : 0;
	if ((rc = rset_read_all(c, cl, ch, &n, 0)) != 0 || cur_end(c) == -1) {
		ret = rc == -1 ? 0 : -1;
		goto out;
	}
	if (n == 0) {
		control_reply_fail(cl, CTL_EINVAL, "route set: no setting to change");
		goto out;
	}
	if (rset_prefix_refused(cl, name, hl, ch, n))
		goto out;
	/* The master is the store's only writer: nothing changes in between. */
	if ((rc = store_route_get(m->store, name, &r)) == STORE_OK) {
		for (i = 0; i < n; i++)
			rset_apply(&r.set, &ch[i]);
		if ((cleared = rset_tls_rule(&r.set, ch, n, err, sizeof(err))) == -1 ||
		    rset_pp_rule(&r.set, err, sizeof(err)) == -1) {
			control_reply_fail(cl, CTL_EINVAL, "route %s: %s", name, err);
			store_route_free(&r);
			goto out;
		}
		rc = store_route_set(m->store, name, &r.set);
		rtable_touch(&m->rt, name);
		rset_describe(done, sizeof(done), name, &r.set, ch, n);
		rset_note_cleared(done, sizeof(done), cleared);
		store_route_free(&r);
	}
	snprintf(what, sizeof(what), "route %s", name);
	finish_change(m, cl, rc, what, done);
out:
	rset_free(ch, n);
	return ret;
}

/* Reads route add's aliases and backends into the caller's arrays. */
static int
route_add_lists(struct cur *c, struct cclient *cl, char (*names)[HOSTNAME_MAX + 1],
    uint16_t *na, char (*bes)[BEADDR_STR_MAX], uint16_t *nb)
{
	uint16_t i;
	int rc;

	if ((*na = cur_u16(c)) > ROUTE_MAX_ALIASES)
		return -2;
	for (i = 0; i < *na; i++)
		if ((rc = arg_name(c, cl, names[i])) != 0)
			return rc;
	if ((*nb = cur_u16(c)) > ROUTE_MAX_BACKENDS)
		return -2;
	for (i = 0; i < *nb; i++)
		if ((rc = arg_backend(c, cl, bes[i])) != 0)
			return rc;
	return 0;
}

/* route add NAME, aliases, backends and its backend protocol settings, in one transaction. */
int
commands_route_add(struct master *m, struct cclient *cl, struct cur *c)
{
	char names[ROUTE_MAX_ALIASES][HOSTNAME_MAX + 1];
	char bes[ROUTE_MAX_BACKENDS][BEADDR_STR_MAX];
	const char *aliasp[ROUTE_MAX_ALIASES], *bep[ROUTE_MAX_BACKENDS];
	char name[HOSTNAME_MAX + 1], done[400], err[300];
	struct rset_change ch[ROUTE_SET_MAX];
	size_t hl;
	struct store_settings set;
	uint16_t i, na, nb, n = 0;
	int rc, ret = 0;

	commands_rset_defaults(&set);
	if ((rc = arg_route(c, cl, name, &hl)) != 0 || (rc = route_add_lists(c, cl, names, &na,
	    bes, &nb)) != 0 || (rc = rset_read_all(c, cl, ch, &n, 1)) != 0 || cur_end(c) == -1) {
		ret = rc == -1 ? 0 : -1;
		goto out;
	}
	if (rset_prefix_refused(cl, name, hl, ch, n) || prefix_add_refused(m, cl, name, hl, na))
		goto out;
	for (i = 0; i < na; i++)
		aliasp[i] = names[i];
	for (i = 0; i < nb; i++)
		bep[i] = bes[i];
	for (i = 0; i < n; i++)
		rset_apply(&set, &ch[i]);
	if (rset_tls_rule(&set, ch, n, err, sizeof(err)) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "route %s: %s", name, err);
		goto out;
	}
	rc = store_route_add(m->store, name, aliasp, na, bep, nb, &set);
	rtable_touch(&m->rt, name);
	snprintf(done, sizeof(done), "route %s added", name);
	if (set.proto != SNAP_PROTO_HTTP1)
		snprintf(done + strlen(done), sizeof(done) - strlen(done), " (backend protocol %s)",
		    snap_proto_name(set.proto));
	finish_change(m, cl, rc, name, done);
out:
	free(set.backend_ca);
	free(set.backend_sni);
	free(set.health_path);
	rset_free(ch, n);
	return ret;
}

/* --- rows */

/* The fields every route row starts with; nextra more follow. */
static void
route_row_head(struct wbuf *w, const struct store_route *r, uint16_t nextra)
{
	wb_u16(w, (uint16_t)(5 + nextra));
	control_row_str(w, "name", r->name);
	control_row_list(w, "aliases", r->aliases, r->naliases);
	control_row_list(w, "backends", r->backends, r->nbackends);
	control_row_str(w, "proto", snap_proto_name(r->set.proto));
	control_row_int(w, "id", r->id);
}

static void
route_row_send(struct cclient *cl, const struct wbuf *w, const struct store_route *r)
{
	if (w->bad)
		log_warnx("route %s does not fit one row", r->name);
	else
		control_reply_row(cl, w);
}

/* route list: one "settings" column with the settings the route changes (proto has its own). */
static int
route_row(void *arg, const struct store_route *r)
{
	char vals[ARRAY_LEN(rset_opts)][320], *changed[ARRAY_LEN(rset_opts)], v[300];
	struct cclient *cl = arg;
	uint8_t buf[ROW_BUF];
	struct wbuf w;
	size_t i, n = 0;

	for (i = 0; i < ARRAY_LEN(rset_opts); i++) {
		if (rset_opts[i].kind == RSET_PROTO ||
		    !rset_format(&rset_opts[i], &r->set, v, sizeof(v), 0))
			continue;
		snprintf(vals[n], sizeof(vals[n]), "%s=%s", rset_opts[i].key, v);
		changed[n] = vals[n];
		n++;
	}
	wb_init(&w, buf, sizeof(buf));
	route_row_head(&w, r, 1);
	control_row_list(&w, "settings", changed, n);
	route_row_send(cl, &w, r);
	return 0;
}

/* A setting route show prints: not proto (in the head), TLS ones only with a TLS protocol. */
static int
route_shows(const struct rset_opt *o, const struct store_route *r)
{
	return o->kind != RSET_PROTO && (!(o->flags & RSET_TLS) || snap_proto_tls(r->set.proto)) &&
	    (!(o->flags & RSET_PREFIX) || strchr(r->name, '/') != NULL);
}

/*
 * route show: every setting on its own, "default" where the route has
 * none, then each backend's health from the shared table (master/bhealth.c).
 */
static void
route_row_full(struct master *m, struct cclient *cl, const struct store_route *r)
{
	char lines[ROUTE_MAX_BACKENDS][200], *health[ROUTE_MAX_BACKENDS];
	uint8_t buf[ROW_BUF];
	char *names[ROUTE_MAX_BACKENDS];
	struct wbuf w;
	char v[300];
	size_t i, nn, nb = r->nbackends < ROUTE_MAX_BACKENDS ? r->nbackends : ROUTE_MAX_BACKENDS;
	uint16_t n = 1;

	for (i = 0; i < ARRAY_LEN(rset_opts); i++)
		n += (uint16_t)route_shows(&rset_opts[i], r);
	for (i = 0; i < nb; i++) {
		bhealth_line(&m->shm, (uint32_t)r->backend_ids[i], r->backends[i], util_now_ms(),
		    lines[i], sizeof(lines[i]));
		health[i] = lines[i];
	}
	nn = dnsmaster_show(m, r, names, ARRAY_LEN(names));
	wb_init(&w, buf, sizeof(buf));
	route_row_head(&w, r, (uint16_t)(n + (nn > 0)));
	control_row_list(&w, "health", health, nb);
	for (i = 0; i < ARRAY_LEN(rset_opts); i++) {
		if (!route_shows(&rset_opts[i], r))
			continue;
		rset_format(&rset_opts[i], &r->set, v, sizeof(v), 1);
		control_row_str(&w, rset_opts[i].key, v);
	}
	if (nn > 0)
		control_row_list(&w, "resolved", names, nn);
	dnsmaster_show_free(names, nn);
	route_row_send(cl, &w, r);
}

int
commands_route_list(struct master *m, struct cclient *cl, struct cur *c)
{
	if (cur_end(c) == -1)
		return -1;
	if (store_route_foreach(m->store, route_row, cl) != 0) {
		control_reply_fail(cl, CTL_EFAIL, "cannot read the routes (see the log)");
		return 0;
	}
	control_reply_end(cl);
	return 0;
}

int
commands_route_show(struct master *m, struct cclient *cl, struct cur *c)
{
	char name[HOSTNAME_MAX + 1];
	struct store_route r;
	size_t hl;
	int rc;

	if ((rc = arg_route(c, cl, name, &hl)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	rc = store_route_get(m->store, name, &r);
	if (rc != STORE_OK) {
		if (rc == STORE_ENOENT)
			control_reply_fail(cl, CTL_ENOENT, "route %s: not found", name);
		else
			control_reply_fail(cl, CTL_EFAIL, "cannot read route %s (see the log)", name);
		return 0;
	}
	route_row_full(m, cl, &r);
	store_route_free(&r);
	control_reply_end(cl);
	return 0;
}

/* Called once every worker answered MSG_W_STATUS_REQ (or after a second). */
static void
status_rows(struct master *m, struct cclient *cl)
{
	const struct proc *p;
	uint8_t buf[1024];
	struct wbuf w;

	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 6);
	control_row_str(&w, "role", "master");
	control_row_int(&w, "pid", getpid());
	control_row_int(&w, "generation", m->gen);
	control_row_int(&w, "uptime_s", (int64_t)((ev_now(m->loop) - m->start_ms) / 1000));
	control_row_int(&w, "routes", m->nroutes);
	control_row_int(&w, "workers", (int64_t)m->nworkers);
	control_reply_row(cl, &w);
	/* Then every child whose role is listed, from the process table. */
	for (p = m->procs; p != NULL; p = p->next) {
		wb_init(&w, buf, sizeof(buf));
		if (proc_status_row(p, &w) == 0)
			control_reply_row(cl, &w);
	}
	control_reply_end(cl);
}

int
commands_status(struct master *m, struct cclient *cl, struct cur *c)
{
	if (cur_end(c) == -1)
		return -1;
	workers_request_status(m, ++m->status_seq);
	control_reply_after_status(cl, m->status_seq, status_rows);
	return 0;
}

int
commands_reload(struct master *m, struct cclient *cl, struct cur *c)
{
	if (cur_end(c) == -1)
		return -1;
	if (master_reload(m) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "configuration not reloaded (see the log)");
		return 0;
	}
	control_reply_when_served(cl, publish_changed(m), "configuration reloaded");
	return 0;
}

int
commands_alias_add(struct master *m, struct cclient *cl, struct cur *c)
{
	return cmd_alias(m, cl, c, 1);
}

int
commands_alias_rm(struct master *m, struct cclient *cl, struct cur *c)
{
	return cmd_alias(m, cl, c, 0);
}

int
commands_backend_add(struct master *m, struct cclient *cl, struct cur *c)
{
	return cmd_backend(m, cl, c, 1);
}

int
commands_backend_rm(struct master *m, struct cclient *cl, struct cur *c)
{
	return cmd_backend(m, cl, c, 0);
}
