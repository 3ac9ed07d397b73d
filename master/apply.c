/*
 * haloyd-ctl export and apply. Export writes every route as a line of
 * master/applyfile.h's file. Apply reads such a file from a sealed memfd,
 * compares it with the store route by route (both sorted by name) into a
 * plan of store changes and the lines that describe them, then runs the
 * whole plan in one store batch (one transaction: all or nothing) and
 * publishes one generation; nothing changes and nothing is published when
 * the plan is empty or only a dry run was asked.
 */
#include "config.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "master/acmemaster.h"
#include "master/apply.h"
#include "master/applyfile.h"
#include "master/commands.h"
#include "master/control.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/rtable.h"
#include "master/store.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/pathprefix.h"
#include "share/sealed.h"
#include "share/util.h"

#define PIECE 1000	/* a row's string is at most MSG_STR_MAX: long lines go in pieces */

/* Sends one line as a row: one field "line", a list of pieces to join. */
static int
send_line(struct cclient *cl, const char *line)
{
	size_t n = 0, len = strlen(line), at, max = IPC_MAX_PAYLOAD / PIECE;
	char **pieces = NULL, *buf = NULL;
	uint8_t *row = NULL;
	struct wbuf w;
	int rc = -1;

	if ((len + PIECE - 1) / PIECE > max || (pieces = calloc(max, sizeof(*pieces))) == NULL ||
	    (buf = malloc(max * (PIECE + 1))) == NULL || (row = malloc(IPC_MAX_PAYLOAD)) == NULL)
		goto out;
	for (at = 0; at < len || n == 0; at += PIECE, n++) {
		pieces[n] = buf + n * (PIECE + 1);
		snprintf(pieces[n], PIECE + 1, "%.*s", PIECE, line + at);
	}
	wb_init(&w, row, IPC_MAX_PAYLOAD);
	wb_u16(&w, 1);
	control_row_list(&w, "line", pieces, n);
	if (!w.bad) {
		control_reply_row(cl, &w);
		rc = 0;
	}
out:
	free(pieces);
	free(buf);
	free(row);
	return rc;
}

/* --- export */

struct export {
	struct cclient *cl;
	char err[400];
};

static int
export_route(void *arg, const struct store_route *r)
{
	struct export *x = arg;
	char *line;
	int rc;

	if (applyfile_format(r, &line, x->err, sizeof(x->err)) == -1)
		return 1;
	if ((rc = send_line(x->cl, line)) == -1)
		snprintf(x->err, sizeof(x->err), "route %s: its line does not fit one message", r->name);
	free(line);
	return rc == -1;
}

int
apply_cmd_export(struct master *m, struct cclient *cl, struct cur *c)
{
	struct export x = { cl, "" };
	char head[200];
	int rc;

	if (cur_end(c) == -1)
		return -1;
	/* No generation or date: two exports of the same routes are the same text. */
	snprintf(head, sizeof(head), "# haloyd-ctl export: %lld routes",
	    (long long)store_route_count(m->store));
	send_line(cl, head);
	send_line(cl, "# certificates and ACME state are not part of this file");
	if ((rc = store_route_foreach(m->store, export_route, &x)) != 0) {
		control_reply_fail(cl, CTL_EFAIL, "%s", x.err[0] ? x.err :
		    "cannot read the routes (see the log)");
		return 0;
	}
	control_reply_end(cl);
	return 0;
}

/* --- the plan */

enum op_kind { OP_RM, OP_ALIAS_RM, OP_BE_RM, OP_ALIAS_ADD, OP_BE_ADD, OP_SET, OP_ADD, OP_KINDS };

struct op {
	enum op_kind kind;
	char *route;		/* owned */
	char *arg;		/* owned: an alias or backend */
	const struct applyfile_route *fr;	/* OP_SET, OP_ADD: the file's route */
};

struct plan {
	const struct applyfile *af;
	size_t next;		/* the file's next route in the walk */
	int prune;
	struct op *ops;
	size_t nops, opcap;
	char **lines;
	size_t nlines, linecap;
	size_t added, removed, changed, kept;
	char **keptv;		/* owned: the store's routes the file leaves in place */
	size_t keptcap;
	int bad;		/* out of memory while planning */
};

static void *
grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;

	if (n < *cap)
		return v;
	ncap = *cap == 0 ? 64 : *cap * 2;
	if ((v = reallocarray(v, ncap, size)) != NULL)
		*cap = ncap;
	return v;
}

static void
plan_line(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
plan_line(struct plan *p, const char *fmt, ...)
{
	char **nv;
	va_list ap;
	int rc;

	if ((nv = grow(p->lines, &p->linecap, p->nlines, sizeof(*nv))) == NULL) {
		p->bad = 1;
		return;
	}
	p->lines = nv;
	va_start(ap, fmt);
	rc = vasprintf(&p->lines[p->nlines], fmt, ap);
	va_end(ap);
	if (rc == -1)
		p->bad = 1;
	else
		p->nlines++;
}

static void
plan_op(struct plan *p, enum op_kind kind, const char *route, const char *arg,
    const struct applyfile_route *fr)
{
	struct op *nv, *o;

	if ((nv = grow(p->ops, &p->opcap, p->nops, sizeof(*nv))) == NULL) {
		p->bad = 1;
		return;
	}
	p->ops = nv;
	o = &p->ops[p->nops];
	*o = (struct op){ kind, strdup(route), arg ? strdup(arg) : NULL, fr };
	if (o->route == NULL || (arg != NULL && o->arg == NULL)) {
		free(o->route);
		free(o->arg);
		p->bad = 1;
		return;
	}
	p->nops++;
}

static void
plan_free(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->nops; i++) {
		free(p->ops[i].route);
		free(p->ops[i].arg);
	}
	for (i = 0; i < p->nlines; i++)
		free(p->lines[i]);
	for (i = 0; i < p->kept; i++)
		free(p->keptv[i]);
	free(p->ops);
	free(p->lines);
	free(p->keptv);
}

/* A file route as the store reads one, to write its line. */
static void
as_store_route(const struct applyfile_route *fr, struct store_route *r)
{
	memset(r, 0, sizeof(*r));
	r->name = fr->name;
	r->aliases = fr->aliases;
	r->naliases = fr->naliases;
	r->backends = fr->backends;
	r->nbackends = fr->nbackends;
	r->set = fr->set;
}

static void
plan_add(struct plan *p, const struct applyfile_route *fr)
{
	struct store_route r;
	char *line, err[300];

	as_store_route(fr, &r);
	if (applyfile_format(&r, &line, err, sizeof(err)) == -1) {
		p->bad = 1;
		return;
	}
	plan_line(p, "+ %s", line);
	free(line);
	plan_op(p, OP_ADD, fr->name, NULL, fr);
	p->added++;
}

static int
in_list(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* The names and backends one side has and the other not. */
static size_t
plan_lists(struct plan *p, const struct store_route *r, const struct applyfile_route *fr)
{
	size_t i, n0 = p->nlines;

	for (i = 0; i < r->naliases; i++)
		if (!in_list(fr->aliases, fr->naliases, r->aliases[i])) {
			plan_line(p, "~ route %s: - alias %s", r->name, r->aliases[i]);
			plan_op(p, OP_ALIAS_RM, r->name, r->aliases[i], NULL);
		}
	for (i = 0; i < fr->naliases; i++)
		if (!in_list(r->aliases, r->naliases, fr->aliases[i])) {
			plan_line(p, "~ route %s: + alias %s", r->name, fr->aliases[i]);
			plan_op(p, OP_ALIAS_ADD, r->name, fr->aliases[i], NULL);
		}
	for (i = 0; i < r->nbackends; i++)
		if (!in_list(fr->backends, fr->nbackends, r->backends[i])) {
			plan_line(p, "~ route %s: - backend %s", r->name, r->backends[i]);
			plan_op(p, OP_BE_RM, r->name, r->backends[i], NULL);
		}
	for (i = 0; i < fr->nbackends; i++)
		if (!in_list(r->backends, r->nbackends, fr->backends[i])) {
			plan_line(p, "~ route %s: + backend %s", r->name, fr->backends[i]);
			plan_op(p, OP_BE_ADD, r->name, fr->backends[i], NULL);
		}
	return p->nlines - n0;
}

/* Every setting of route set's table: one line per value that changes. */
static size_t
plan_settings(struct plan *p, const struct store_route *r, const struct applyfile_route *fr)
{
	char a[320], b[320], fa[320], fb[320];
	const char *pa, *pb;
	size_t i, n = 0;

	for (i = 0; i < commands_rset_count(); i++) {
		commands_rset_value(i, &r->set, a, sizeof(a), 0);
		commands_rset_value(i, &fr->set, b, sizeof(b), 0);
		pa = commands_rset_pem(i, &r->set);
		pb = commands_rset_pem(i, &fr->set);
		if (strcmp(a, b) == 0 && (pa == pb || (pa != NULL && pb != NULL &&
		    strcmp(pa, pb) == 0)))
			continue;
		commands_rset_value(i, &r->set, fa, sizeof(fa), 1);
		commands_rset_value(i, &fr->set, fb, sizeof(fb), 1);
		plan_line(p, "~ route %s: %s %s -> %s", r->name, commands_rset_key(i), fa, fb);
		n++;
	}
	if (n > 0)
		plan_op(p, OP_SET, r->name, NULL, fr);
	return n;
}

/* The walk: called for every store route by name; the file's routes are sorted too. */
static int
plan_route(void *arg, const struct store_route *r)
{
	struct plan *p = arg;
	const struct applyfile_route *fr;
	char **kv = NULL;
	int cmp = 1;

	for (; p->next < p->af->n; p->next++) {
		fr = &p->af->routes[p->next];
		if ((cmp = strcmp(fr->name, r->name)) >= 0)
			break;
		plan_add(p, fr);
	}
	if (cmp == 0) {
		fr = &p->af->routes[p->next++];
		if (plan_lists(p, r, fr) + plan_settings(p, r, fr) > 0)
			p->changed++;
	} else if (p->prune) {
		plan_line(p, "- route %s", r->name);
		plan_op(p, OP_RM, r->name, NULL, NULL);
		p->removed++;
	} else if ((kv = grow(p->keptv, &p->keptcap, p->kept, sizeof(*kv))) == NULL ||
	    (kv[p->kept] = strdup(r->name)) == NULL) {
		if (kv != NULL)
			p->keptv = kv;
		p->bad = 1;
	} else {
		p->keptv = kv;
		p->kept++;
	}
	return p->bad ? 1 : 0;
}

static int
plan_make(struct master *m, struct plan *p)
{
	if (store_route_foreach(m->store, plan_route, p) != 0 && !p->bad)
		return -1;
	for (; p->next < p->af->n && !p->bad; p->next++)
		plan_add(p, &p->af->routes[p->next]);
	if (p->bad)
		log_warnx("apply: out of memory while comparing the file with the store");
	return p->bad ? -1 : 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The length of name's host part when it is a path-prefix route ("host/api"), else 0. */
static size_t
prefix_host_len(const char *name)
{
	const char *slash = strchr(name, '/');

	return slash != NULL ? (size_t)(slash - name) : 0;
}

/*
 * route add's rules for path-prefix routes, over the routes the plan leaves: each
 * one's host route is among them, and a host has at most PATHPREFIX_PER_ROUTE_MAX.
 * Sorted, a host's prefix routes are one run. 0, or -1 with the reason in err.
 */
static int
plan_check_prefixes(const struct plan *p, char *err, size_t len)
{
	size_t n = p->af->n + p->kept, i, run = 0, hl;
	const char **v, *host = NULL;
	char want[HOSTNAME_MAX + 1];
	int rc = 0;

	if ((v = calloc(n ? n : 1, sizeof(*v))) == NULL) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	for (i = 0; i < p->af->n; i++)
		v[i] = p->af->routes[i].name;
	for (i = 0; i < p->kept; i++)
		v[p->af->n + i] = p->keptv[i];
	qsort(v, n, sizeof(*v), by_name);
	for (i = 0; i < n && rc == 0; i++) {
		if ((hl = prefix_host_len(v[i])) == 0 || hl > HOSTNAME_MAX)
			continue;
		if (host == NULL || prefix_host_len(host) != hl || strncmp(host, v[i], hl) != 0) {
			host = v[i];
			run = 0;
			memcpy(want, v[i], hl);
			want[hl] = '\0';
			if (bsearch(&(const char *){ want }, v, n, sizeof(*v), by_name) == NULL) {
				snprintf(err, len, "route %s: its host's route %s is neither in the "
				    "file nor kept", v[i], want);
				rc = -1;
			}
		}
		if (rc == 0 && ++run > PATHPREFIX_PER_ROUTE_MAX) {
			snprintf(err, len, "route %.*s: more than %d path-prefix routes", (int)hl,
			    v[i], PATHPREFIX_PER_ROUTE_MAX);
			rc = -1;
		}
	}
	free(v);
	return rc;
}

/* --- running the plan */

static int
op_run(struct store *st, const struct op *o)
{
	const struct applyfile_route *fr = o->fr;

	switch (o->kind) {
	case OP_RM:
		return store_route_rm(st, o->route);
	case OP_ALIAS_RM:
		return store_alias_rm(st, o->route, o->arg);
	case OP_BE_RM:
		return store_backend_rm(st, o->route, o->arg);
	case OP_ALIAS_ADD:
		return store_alias_add(st, o->route, o->arg);
	case OP_BE_ADD:
		return store_backend_add(st, o->route, o->arg);
	case OP_SET:
		return store_route_set(st, o->route, &fr->set);
	case OP_ADD:
		return store_route_add(st, fr->name, (const char *const *)fr->aliases, fr->naliases,
		    (const char *const *)fr->backends, fr->nbackends, &fr->set);
	default:
		return STORE_ERR;
	}
}

/* Why the plan stopped, for the one line of the answer. */
static void
op_fail(struct cclient *cl, const struct op *o, int rc)
{
	static const char *const what[] = { "removing it", "removing alias", "removing backend",
	    "adding alias", "adding backend", "changing its settings", "adding it" };
	const char *why = rc == STORE_EEXIST ? "a name or backend is already used (by a route "
	    "the file does not name?)" : rc == STORE_EFULL ? "not saved: the store's disk is full" :
	    rc == STORE_ENOENT ? "not found" : rc == STORE_EINVAL ? "not allowed" :
	    "the store failed (see the log)";

	control_reply_fail(cl, rc == STORE_EEXIST ? CTL_EEXIST : rc == STORE_EINVAL ? CTL_EINVAL :
	    CTL_EFAIL, "apply: route %s: %s%s%s: %s; nothing changed", o->route, what[o->kind],
	    o->arg ? " " : "", o->arg ? o->arg : "", why);
}

/* Removals first, so a name or backend can move from one route to another. */
static int
plan_run(struct master *m, struct cclient *cl, const struct plan *p)
{
	const struct op *bad = NULL;
	int kind, rc;
	size_t i;

	if ((rc = store_batch_begin(m->store)) != STORE_OK) {
		control_reply_fail(cl, CTL_EFAIL, "apply: cannot start the store's transaction");
		return -1;
	}
	for (kind = 0; kind < OP_KINDS && rc == STORE_OK; kind++)
		for (i = 0; i < p->nops && rc == STORE_OK; i++)
			if ((int)p->ops[i].kind == kind && (rc = op_run(m->store, &p->ops[i])) != STORE_OK)
				bad = &p->ops[i];
	rc = store_batch_end(m->store, rc);
	/* Rolled back or not, the routes it named are read again (many: all of them). */
	for (i = 0; i < p->nops; i++)
		rtable_touch(&m->rt, p->ops[i].route);
	if (rc == STORE_OK)
		return 0;
	if (bad != NULL)
		op_fail(cl, bad, rc);
	else
		control_reply_fail(cl, CTL_EFAIL, "apply: %s; nothing changed", rc == STORE_EFULL ?
		    "not saved: the store's disk is full" : "the store failed (see the log)");
	return -1;
}

/* What the ACME schedule hears of route changes, as after route add and rm. */
static void
plan_tell_acme(struct master *m, const struct plan *p)
{
	char note[300];
	size_t i;

	for (i = 0; i < p->nops; i++) {
		if (p->ops[i].kind == OP_RM)
			acme_route_removed(m, p->ops[i].route);
		else if (p->ops[i].kind == OP_ADD || p->ops[i].kind == OP_ALIAS_ADD ||
		    p->ops[i].kind == OP_SET)
			acme_route_changed(m, p->ops[i].arg ? p->ops[i].arg : p->ops[i].route,
			    note, sizeof(note));
	}
}

/* --- the command */

/* Parses the file of m->rx's fd into af; on failure answers the client. */
static int
apply_read(struct master *m, struct cclient *cl, const char *fname, struct applyfile *af)
{
	int fd = m->rx->fd;
	const void *text;
	char err[512];
	size_t len;
	int rc;

	m->rx->fd = -1;		/* ours now */
	if (sealed_map(fd, 1, APPLYFILE_MAX_BYTES, &text, &len, err, sizeof(err)) == -1) {
		close(fd);
		control_reply_fail(cl, CTL_EINVAL, "apply: the file: %s (at most %u bytes)", err,
		    APPLYFILE_MAX_BYTES);
		return -1;
	}
	close(fd);
	rc = applyfile_parse(text, len, fname, af, err, sizeof(err));
	munmap((void *)(uintptr_t)text, len);
	if (rc == -1)
		control_reply_fail(cl, CTL_EINVAL, "%s; nothing changed", err);
	return rc;
}

static void
apply_summary(const struct plan *p, int dry, char *buf, size_t len)
{
	snprintf(buf, len, "%s%zu added, %zu removed, %zu changed%s", dry ? "dry run: " : "",
	    p->added, p->removed, p->changed, dry ? "; nothing changed" : "");
	if (p->kept > 0)
		snprintf(buf + strlen(buf), len - strlen(buf), "; %zu route%s not in the file kept "
		    "(--prune removes them)", p->kept, p->kept == 1 ? "" : "s");
}

int
apply_cmd_apply(struct master *m, struct cclient *cl, struct cur *c)
{
	char fname[MSG_STR_MAX], msg[400];
	struct applyfile af;
	struct plan p;
	uint8_t flags;
	size_t i;

	flags = cur_u8(c);
	if (cur_str(c, fname, sizeof(fname)) == -1 || cur_end(c) == -1 ||
	    (flags & ~(MSG_APPLY_DRY_RUN | MSG_APPLY_PRUNE)) != 0)
		return -1;
	if (apply_read(m, cl, fname, &af) == -1)
		return 0;
	memset(&p, 0, sizeof(p));
	p.af = &af;
	p.prune = (flags & MSG_APPLY_PRUNE) != 0;
	if (plan_make(m, &p) == -1)
		control_reply_fail(cl, CTL_EFAIL, "apply: cannot compare with the store (see the log)");
	else if (plan_check_prefixes(&p, msg, sizeof(msg)) == -1)
		control_reply_fail(cl, CTL_EINVAL, "apply %s: %s; nothing changed", fname, msg);
	else if (p.nops == 0)
		control_reply_ok(cl, "no changes");
	else if ((flags & MSG_APPLY_DRY_RUN) || plan_run(m, cl, &p) == 0) {
		for (i = 0; i < p.nlines; i++)
			send_line(cl, p.lines[i]);
		apply_summary(&p, flags & MSG_APPLY_DRY_RUN, msg, sizeof(msg));
		if (flags & MSG_APPLY_DRY_RUN)
			control_reply_ok(cl, msg);
		else {
			plan_tell_acme(m, &p);
			log_info("apply %s: %s", fname, msg);
			control_reply_when_served(cl, publish_changed(m), msg);
		}
	}
	plan_free(&p);
	applyfile_free(&af);
	return 0;
}
