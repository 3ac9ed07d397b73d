/*
 * haloyd-ctl's route, alias and backend commands, status and reload (run
 * through master/cmdtable.c). Every name and address is checked here again
 * (the control socket is an input like any other), the store enforces
 * uniqueness, and a change is answered only once every worker serves it.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master/acme.h"
#include "master/certcmds.h"
#include "master/cmdtable.h"
#include "master/commands.h"
#include "master/conf.h"
#include "master/control.h"
#include "master/master.h"
#include "master/proc.h"
#include "master/publish.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/addr.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/snap.h"
#include "share/util.h"

#define ROUTE_MAX_ALIASES 64
#define ROUTE_MAX_BACKENDS 64
#define ROW_BUF 16384
#define ROUTE_SET_MAX 16	/* settings in one route set (haloyd-ctl sends each once) */

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

/* Reads an "ip:port" backend and prints it back canonically into out. */
static int
arg_backend(struct cur *c, struct cclient *cl, char *out)
{
	char raw[MSG_STR_MAX];
	struct sockaddr_storage ss;
	socklen_t len;

	if (cur_str(c, raw, sizeof(raw)) == -1)
		return -2;
	if (addr_parse(raw, &ss, &len) == -1 || addr_format((struct sockaddr *)&ss, out, ADDR_STR_MAX) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "invalid backend '%.100s': use IP:PORT or [IPv6]:PORT", raw);
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
	default:
		control_reply_fail(cl, CTL_EFAIL, "%s: the store failed (see the log)", what);
	}
}

int
commands_route_add(struct master *m, struct cclient *cl, struct cur *c)
{
	char names[ROUTE_MAX_ALIASES][HOSTNAME_MAX + 1];
	char bes[ROUTE_MAX_BACKENDS][ADDR_STR_MAX];
	const char *aliasp[ROUTE_MAX_ALIASES], *bep[ROUTE_MAX_BACKENDS];
	char name[HOSTNAME_MAX + 1], done[400];
	uint16_t i, na, nb;
	int rc;

	if ((rc = arg_name(c, cl, name)) != 0)
		return rc == -2 ? -1 : 0;
	if ((na = cur_u16(c)) > ROUTE_MAX_ALIASES)
		return -1;
	for (i = 0; i < na; i++) {
		if ((rc = arg_name(c, cl, names[i])) != 0)
			return rc == -2 ? -1 : 0;
		aliasp[i] = names[i];
	}
	if ((nb = cur_u16(c)) > ROUTE_MAX_BACKENDS)
		return -1;
	for (i = 0; i < nb; i++) {
		if ((rc = arg_backend(c, cl, bes[i])) != 0)
			return rc == -2 ? -1 : 0;
		bep[i] = bes[i];
	}
	if (cur_end(c) == -1)
		return -1;
	rc = store_route_add(m->store, name, aliasp, na, bep, nb);
	snprintf(done, sizeof(done), "route %s added", name);
	finish_change(m, cl, rc, name, done);
	return 0;
}

int
commands_route_rm(struct master *m, struct cclient *cl, struct cur *c)
{
	char name[HOSTNAME_MAX + 1], done[300];
	int rc;

	if ((rc = arg_name(c, cl, name)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	snprintf(done, sizeof(done), "route %s removed", name);
	if ((rc = store_route_rm(m->store, name)) == STORE_OK)
		acme_route_removed(m, name);
	finish_change(m, cl, rc, name, done);
	return 0;
}

/* alias add|rm ROUTE NAME */
static int
cmd_alias(struct master *m, struct cclient *cl, struct cur *c, int add)
{
	char route[HOSTNAME_MAX + 1], alias[HOSTNAME_MAX + 1], what[600], done[600];
	int rc;

	if ((rc = arg_name(c, cl, route)) != 0 || (rc = arg_name(c, cl, alias)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	rc = add ? store_alias_add(m->store, route, alias) : store_alias_rm(m->store, route, alias);
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
	char route[HOSTNAME_MAX + 1], be[ADDR_STR_MAX], what[400], done[400];
	int rc;

	if ((rc = arg_name(c, cl, route)) != 0 || (rc = arg_backend(c, cl, be)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	rc = add ? store_backend_add(m->store, route, be) : store_backend_rm(m->store, route, be);
	if (rc == STORE_ENOENT && add)
		snprintf(what, sizeof(what), "route %s", route);
	else
		snprintf(what, sizeof(what), "backend %s of route %s", be, route);
	snprintf(done, sizeof(done), "backend %s %s route %s", be, add ? "added to" : "removed from", route);
	finish_change(m, cl, rc, what, done);
	return 0;
}

/* --- route set */

enum rset_kind { RSET_DURATION, RSET_SIZE, RSET_SWITCH };

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
} rset_opts[] = {
	{ "connect_timeout", RSET_DURATION, offsetof(struct store_settings, connect_ms), 0, 0 },
	{ "response_timeout", RSET_DURATION, offsetof(struct store_settings, response_ms), 0, 0 },
	{ "idle_timeout", RSET_DURATION, offsetof(struct store_settings, idle_ms), 0, 0 },
	{ "upgrade_timeout", RSET_DURATION, offsetof(struct store_settings, upgrade_ms), 0, 0 },
	{ "max_body", RSET_SIZE, offsetof(struct store_settings, max_body), 0, 0 },
	{ "https_redirect", RSET_SWITCH, 0, SNAP_ROUTE_NO_HTTPS_REDIRECT, 0 },
	{ "hsts", RSET_SWITCH, 0, SNAP_ROUTE_HSTS, 1 },
};

/* One parsed change: STORE_DEFAULT, or the value (ms, bytes, 1 on / 0 off). */
struct rset_change {
	const struct rset_opt *o;
	int64_t v;
};

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

/* Parses val for o into *v; on failure says why in err. */
static int
rset_parse(const struct rset_opt *o, const char *val, int64_t *v, char *err, size_t errlen)
{
	uint64_t u;

	if (strcmp(val, "default") == 0) {
		*v = STORE_DEFAULT;
		return 0;
	}
	switch (o->kind) {
	case RSET_DURATION:
		return rset_duration(o, val, v, err, errlen);
	case RSET_SIZE:
		/* The store keeps a signed 64-bit integer. */
		if (strcmp(val, "unlimited") == 0)
			u = 0;
		else if (util_parse_size(val, &u) == -1 || u > INT64_MAX) {
			snprintf(err, errlen, "%s: invalid value '%.64s': use bytes or 10k, 5m, 1g; "
			    "0 or unlimited for no limit; or default", o->key, val);
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

/* Reads one "key value" pair; on a bad one answers the client. */
static int
rset_read(struct cur *c, struct cclient *cl, struct rset_change *ch)
{
	char key[MSG_STR_MAX], val[MSG_STR_MAX], err[256];
	size_t i;

	if (cur_str(c, key, sizeof(key)) == -1 || cur_str(c, val, sizeof(val)) == -1)
		return -2;
	for (i = 0; i < ARRAY_LEN(rset_opts); i++)
		if (strcmp(rset_opts[i].key, key) == 0)
			break;
	if (i == ARRAY_LEN(rset_opts)) {
		control_reply_fail(cl, CTL_EINVAL, "unknown route setting '%.64s'", key);
		return -1;
	}
	ch->o = &rset_opts[i];
	if (rset_parse(ch->o, val, &ch->v, err, sizeof(err)) == -1) {
		control_reply_fail(cl, CTL_EINVAL, "%s", err);
		return -1;
	}
	return 0;
}

static void
rset_apply(struct store_settings *set, const struct rset_change *ch)
{
	const struct rset_opt *o = ch->o;

	if (o->kind != RSET_SWITCH)
		memcpy((char *)set + o->off, &ch->v, sizeof(ch->v));
	/* A switch's default is the built-in behaviour: its flag clear. */
	else if (ch->v != STORE_DEFAULT && ch->v == o->set_by)
		set->flags |= o->flag;
	else
		set->flags &= ~o->flag;
}

/*
 * The value of o for a route as route set takes it ("default", "2s",
 * "10m", "unlimited", "on"); returns 1 when it differs from the default.
 */
static int
rset_format(const struct rset_opt *o, const struct store_settings *set, char *buf, size_t len)
{
	int64_t v;

	if (o->kind == RSET_SWITCH) {
		snprintf(buf, len, "%s", ((set->flags & o->flag) != 0) == o->set_by ? "on" : "off");
		return (set->flags & o->flag) != 0;
	}
	v = rset_get(set, o);
	if (v == STORE_DEFAULT)
		snprintf(buf, len, "default");
	else if (o->kind == RSET_SIZE && v == 0)
		snprintf(buf, len, "unlimited");
	else if (o->kind == RSET_SIZE)
		util_format_size((uint64_t)v, buf, len);
	else
		util_format_duration_ms((uint64_t)v, buf, len);
	return v != STORE_DEFAULT;
}

/* "route NAME: key=value, ..." with the values as route show prints them. */
static void
rset_describe(char *buf, size_t len, const char *name, const struct store_settings *set,
    const struct rset_change *ch, size_t n)
{
	char v[64];
	size_t i, at;

	at = (size_t)snprintf(buf, len, "route %s:", name);
	for (i = 0; i < n && at < len; i++) {
		rset_format(ch[i].o, set, v, sizeof(v));
		at += (size_t)snprintf(buf + at, len - at, "%s %s=%s", i > 0 ? "," : "",
		    ch[i].o->key, v);
	}
}

/* route set NAME KEY VALUE...: every value is checked before anything changes. */
int
commands_route_set(struct master *m, struct cclient *cl, struct cur *c)
{
	struct rset_change ch[ROUTE_SET_MAX];
	char name[HOSTNAME_MAX + 1], what[300], done[512] = "";
	struct store_route r;
	uint16_t i, n;
	int rc;

	if ((rc = arg_name(c, cl, name)) != 0)
		return rc == -2 ? -1 : 0;
	if ((n = cur_u16(c)) > ROUTE_SET_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if ((rc = rset_read(c, cl, &ch[i])) != 0)
			return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	if (n == 0) {
		control_reply_fail(cl, CTL_EINVAL, "route set: no setting to change");
		return 0;
	}
	/* The master is the store's only writer: nothing changes in between. */
	if ((rc = store_route_get(m->store, name, &r)) == STORE_OK) {
		for (i = 0; i < n; i++)
			rset_apply(&r.set, &ch[i]);
		rc = store_route_set(m->store, name, &r.set);
		rset_describe(done, sizeof(done), name, &r.set, ch, n);
		store_route_free(&r);
	}
	snprintf(what, sizeof(what), "route %s", name);
	finish_change(m, cl, rc, what, done);
	return 0;
}

/* --- rows */

/* The fields every route row starts with; nextra more follow. */
static void
route_row_head(struct wbuf *w, const struct store_route *r, uint16_t nextra)
{
	wb_u16(w, (uint16_t)(4 + nextra));
	control_row_str(w, "name", r->name);
	control_row_list(w, "aliases", r->aliases, r->naliases);
	control_row_list(w, "backends", r->backends, r->nbackends);
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

/* route list: one "settings" column with the settings the route changes. */
static int
route_row(void *arg, const struct store_route *r)
{
	char vals[ARRAY_LEN(rset_opts)][96], *changed[ARRAY_LEN(rset_opts)], v[64];
	struct cclient *cl = arg;
	uint8_t buf[ROW_BUF];
	struct wbuf w;
	size_t i, n = 0;

	for (i = 0; i < ARRAY_LEN(rset_opts); i++) {
		if (!rset_format(&rset_opts[i], &r->set, v, sizeof(v)))
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

/* route show: every setting on its own, "default" where the route has none. */
static void
route_row_full(struct cclient *cl, const struct store_route *r)
{
	uint8_t buf[ROW_BUF];
	struct wbuf w;
	char v[64];
	size_t i;

	wb_init(&w, buf, sizeof(buf));
	route_row_head(&w, r, ARRAY_LEN(rset_opts));
	for (i = 0; i < ARRAY_LEN(rset_opts); i++) {
		rset_format(&rset_opts[i], &r->set, v, sizeof(v));
		control_row_str(&w, rset_opts[i].key, v);
	}
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
	int rc;

	if ((rc = arg_name(c, cl, name)) != 0)
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
	route_row_full(cl, &r);
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
