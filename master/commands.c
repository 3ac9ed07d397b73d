/*
 * haloyd-ctl commands. Every name and address is checked here again (the
 * control socket is an input like any other), the store enforces
 * uniqueness, and a change is answered only once every worker serves it.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master/children.h"
#include "master/commands.h"
#include "master/control.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/store.h"
#include "share/addr.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define ROUTE_MAX_ALIASES 64
#define ROUTE_MAX_BACKENDS 64
#define ROW_BUF 16384

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

static int
cmd_route_add(struct master *m, struct cclient *cl, struct cur *c)
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

static int
cmd_route_rm(struct master *m, struct cclient *cl, struct cur *c)
{
	char name[HOSTNAME_MAX + 1], done[300];
	int rc;

	if ((rc = arg_name(c, cl, name)) != 0)
		return rc == -2 ? -1 : 0;
	if (cur_end(c) == -1)
		return -1;
	snprintf(done, sizeof(done), "route %s removed", name);
	finish_change(m, cl, store_route_rm(m->store, name), name, done);
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

/* --- rows */

static void
row_key(struct wbuf *w, const char *key, uint8_t kind)
{
	wb_str(w, key);
	wb_u8(w, kind);
}

static void
row_str(struct wbuf *w, const char *key, const char *v)
{
	row_key(w, key, FIELD_STR);
	wb_str(w, v);
}

static void
row_int(struct wbuf *w, const char *key, int64_t v)
{
	row_key(w, key, FIELD_INT);
	wb_u64(w, (uint64_t)v);
}

static void
row_list(struct wbuf *w, const char *key, char *const *v, size_t n)
{
	size_t i;

	row_key(w, key, FIELD_LIST);
	wb_u16(w, (uint16_t)n);
	for (i = 0; i < n; i++)
		wb_str(w, v[i]);
}

static int
route_row(void *arg, const struct store_route *r)
{
	struct cclient *cl = arg;
	uint8_t buf[ROW_BUF];
	struct wbuf w;

	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 4);
	row_str(&w, "name", r->name);
	row_list(&w, "aliases", r->aliases, r->naliases);
	row_list(&w, "backends", r->backends, r->nbackends);
	row_int(&w, "id", r->id);
	if (w.bad) {
		log_warnx("route %s does not fit one row", r->name);
		return 0;
	}
	control_reply_row(cl, &w);
	return 0;
}

static int
cmd_route_list(struct master *m, struct cclient *cl, struct cur *c)
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

static int
cmd_route_show(struct master *m, struct cclient *cl, struct cur *c)
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
	route_row(cl, &r);
	store_route_free(&r);
	control_reply_end(cl);
	return 0;
}

/* Called once every worker answered MSG_W_STATUS_REQ (or after a second). */
static void
status_rows(struct master *m, struct cclient *cl)
{
	uint8_t buf[1024];
	struct wbuf w;
	size_t i;

	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 6);
	row_str(&w, "role", "master");
	row_int(&w, "pid", getpid());
	row_int(&w, "generation", m->gen);
	row_int(&w, "uptime_s", (int64_t)((ev_now(m->loop) - m->start_ms) / 1000));
	row_int(&w, "routes", m->nroutes);
	row_int(&w, "workers", (int64_t)m->nworkers);
	control_reply_row(cl, &w);
	for (i = 0; i < m->nworkers; i++) {
		const struct child *ch = &m->workers[i];

		wb_init(&w, buf, sizeof(buf));
		wb_u16(&w, 6);
		row_str(&w, "role", "worker");
		row_int(&w, "index", ch->index);
		row_int(&w, "pid", ch->pid);
		row_int(&w, "generation", ch->acked_gen);
		row_int(&w, "requests", (int64_t)ch->requests);
		row_int(&w, "connections", ch->connections);
		control_reply_row(cl, &w);
	}
	control_reply_end(cl);
}

static int
cmd_status(struct master *m, struct cclient *cl, struct cur *c)
{
	if (cur_end(c) == -1)
		return -1;
	children_request_status(m, ++m->status_seq);
	control_reply_after_status(cl, m->status_seq, status_rows);
	return 0;
}

static int
cmd_reload(struct master *m, struct cclient *cl, struct cur *c)
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

typedef int cmd_fn(struct master *m, struct cclient *cl, struct cur *c);

/* The ctl peer's dispatch table: sizes are checked before a command runs. */
#define CMD(name, fn) static int name(void *ctx, struct ipc_msg *msg) { return cmd_call(ctx, msg, fn); }

static int
cmd_call(void *ctx, struct ipc_msg *msg, cmd_fn *fn)
{
	struct cclient *cl = ctx;
	struct cur c;

	cur_init(&c, msg->data, msg->h.len);
	return fn(control_master(cl), cl, &c);
}

static int cmd_alias_add(struct master *m, struct cclient *cl, struct cur *c) { return cmd_alias(m, cl, c, 1); }
static int cmd_alias_rm(struct master *m, struct cclient *cl, struct cur *c) { return cmd_alias(m, cl, c, 0); }
static int cmd_backend_add(struct master *m, struct cclient *cl, struct cur *c) { return cmd_backend(m, cl, c, 1); }
static int cmd_backend_rm(struct master *m, struct cclient *cl, struct cur *c) { return cmd_backend(m, cl, c, 0); }

CMD(h_route_add, cmd_route_add)
CMD(h_route_rm, cmd_route_rm)
CMD(h_route_list, cmd_route_list)
CMD(h_route_show, cmd_route_show)
CMD(h_alias_add, cmd_alias_add)
CMD(h_alias_rm, cmd_alias_rm)
CMD(h_backend_add, cmd_backend_add)
CMD(h_backend_rm, cmd_backend_rm)
CMD(h_status, cmd_status)
CMD(h_reload, cmd_reload)

#define S(n) (2 + (n))	/* a string of at most n bytes */
static const struct ipc_handler cmd_handlers[] = {
	{ MSG_C_ROUTE_ADD, IPC_FD_NONE, S(1) + 4, IPC_MAX_PAYLOAD, h_route_add },
	{ MSG_C_ROUTE_RM, IPC_FD_NONE, S(1), S(MSG_STR_MAX), h_route_rm },
	{ MSG_C_ROUTE_LIST, IPC_FD_NONE, 0, 0, h_route_list },
	{ MSG_C_ROUTE_SHOW, IPC_FD_NONE, S(1), S(MSG_STR_MAX), h_route_show },
	{ MSG_C_ALIAS_ADD, IPC_FD_NONE, 2 * S(1), 2 * S(MSG_STR_MAX), h_alias_add },
	{ MSG_C_ALIAS_RM, IPC_FD_NONE, 2 * S(1), 2 * S(MSG_STR_MAX), h_alias_rm },
	{ MSG_C_BACKEND_ADD, IPC_FD_NONE, 2 * S(1), 2 * S(MSG_STR_MAX), h_backend_add },
	{ MSG_C_BACKEND_RM, IPC_FD_NONE, 2 * S(1), 2 * S(MSG_STR_MAX), h_backend_rm },
	{ MSG_C_STATUS, IPC_FD_NONE, 0, 0, h_status },
	{ MSG_C_RELOAD, IPC_FD_NONE, 0, 0, h_reload },
};
#undef S

int
commands_run(struct master *m, struct cclient *cl, struct ipc_msg *msg)
{
	(void)m;
	return ipc_dispatch(cmd_handlers, ARRAY_LEN(cmd_handlers), cl, msg);
}
