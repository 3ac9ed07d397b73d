/*
 * Held handshakes of on-demand TLS (see odwait.h): a flat array, scanned
 * linearly (bounded by ODWAIT_MAX), one timer for the earliest deadline.
 * A held connection has no epoll event of its own to wait for: releasing
 * marks it readable and kicks it, and its handshake resumes in conn_pick.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "share/cursor.h"
#include "share/evloop.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/odwait.h"
#include "worker/tls.h"

struct odwait_entry {
	struct conn *c;
	char name[HOSTNAME_MAX + 1];
	uint64_t deadline_ms;
};

struct odwait {
	struct worker *w;
	int (*sendfn)(struct worker *w, const char *name);
	struct odwait_entry *v;
	uint32_t n;
	struct ev_timer timer;
	uint64_t window_ms;	/* start of the second ODWAIT_SENDS_PER_S counts in */
	uint32_t sent;
};

static void odwait_fire(struct ev_loop *l, struct ev_timer *t);

struct odwait *
odwait_new(struct worker *w, int (*sendfn)(struct worker *w, const char *name))
{
	struct odwait *o = calloc(1, sizeof(*o));

	if (o == NULL || (o->v = calloc(ODWAIT_MAX, sizeof(*o->v))) == NULL) {
		free(o);
		return NULL;
	}
	o->w = w;
	o->sendfn = sendfn;
	ev_timer_init(&o->timer, odwait_fire, o);
	return o;
}

void
odwait_free(struct odwait *o)
{
	if (o == NULL)
		return;
	ev_timer_stop(o->w->loop, &o->timer);
	free(o->v);
	free(o);
}

uint32_t
odwait_count(const struct odwait *o)
{
	return o->n;
}

/* Entry i goes: its connection reads again (the handshake resumes). */
static void
odwait_release(struct odwait *o, uint32_t i)
{
	struct conn *c = o->v[i].c;

	o->v[i] = o->v[--o->n];
	tls_conn_od_release(c->tls);
	c->od_waiting = 0;
	c->readable = 1;
	conn_kick(c);
}

static void
odwait_arm(struct odwait *o)
{
	uint64_t now = util_now_ms(), first = UINT64_MAX;
	uint32_t i;

	if (o->n == 0) {
		ev_timer_stop(o->w->loop, &o->timer);
		return;
	}
	for (i = 0; i < o->n; i++)
		if (o->v[i].deadline_ms < first)
			first = o->v[i].deadline_ms;
	ev_timer_start(o->w->loop, &o->timer, first > now ? first - now : 0);
}

static void
odwait_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct odwait *o = t->arg;
	uint64_t now = util_now_ms();
	uint32_t i = 0;

	(void)l;
	while (i < o->n)
		if (o->v[i].deadline_ms <= now)
			odwait_release(o, i);
		else
			i++;
	odwait_arm(o);
}

/* 1 when a handshake for name is held already: the master heard of it. */
static int
odwait_known(const struct odwait *o, const char *name)
{
	uint32_t i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->v[i].name, name) == 0)
			return 1;
	return 0;
}

/* A new name for the master, within ODWAIT_SENDS_PER_S: 0 sent, -1 not. */
static int
odwait_send(struct odwait *o, const char *name, uint64_t now)
{
	if (now - o->window_ms >= 1000) {
		o->window_ms = now;
		o->sent = 0;
	}
	if (o->sent == ODWAIT_SENDS_PER_S || o->sendfn(o->w, name) == -1)
		return -1;
	o->sent++;
	return 0;
}

int
odwait_ask(void *arg, void *cookie, const char *name)
{
	struct odwait *o = arg;
	struct conn *c = cookie;
	uint64_t now = util_now_ms(), wait = o->w->cfg.ondemand_wait_ms;
	struct odwait_entry *e;

	if (c == NULL || wait == 0 || o->n == ODWAIT_MAX || o->w->stopping)
		return 0;
	if (!odwait_known(o, name) && odwait_send(o, name, now) == -1)
		return 0;
	e = &o->v[o->n++];
	e->c = c;
	util_strlcpy(e->name, name, sizeof(e->name));
	e->deadline_ms = now + wait;
	c->od_waiting = 1;
	if (!ev_timer_armed(&o->timer))
		odwait_arm(o);
	return 1;
}

void
odwait_keyring(struct odwait *o)
{
	uint32_t i = 0;

	if (o == NULL)
		return;	/* a context set up without one (the IPC fuzzing harness) */
	while (i < o->n)
		if (tls_has_own_cert(o->w->tls, o->v[i].name, strlen(o->v[i].name)))
			odwait_release(o, i);
		else
			i++;
	odwait_arm(o);
}

void
odwait_no(struct odwait *o, const char *name)
{
	uint32_t i = 0;

	if (o == NULL)
		return;
	while (i < o->n)
		if (strcmp(o->v[i].name, name) == 0)
			odwait_release(o, i);
		else
			i++;
	odwait_arm(o);
}

void
odwait_forget(struct odwait *o, struct conn *c)
{
	uint32_t i;

	for (i = 0; i < o->n; i++)
		if (o->v[i].c == c) {
			o->v[i] = o->v[--o->n];
			break;
		}
	c->od_waiting = 0;
	odwait_arm(o);
}

int
odwait_send_master(struct worker *w, const char *name)
{
	uint8_t buf[2 + HOSTNAME_MAX];
	struct wbuf b;

	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, name);
	if (b.bad || ipc_send(w->parent, MSG_W_ONDEMAND, 0, 0, buf, b.len, -1) == -1) {
		log_warn("sending an on-demand name to the master");
		return -1;
	}
	return 0;
}

int
odwait_on_no(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	char name[MSG_NAME_MAX + 1];
	struct cur c;

	cur_init(&c, m->data, m->h.len);
	if (cur_str(&c, name, sizeof(name)) == -1 || cur_end(&c) == -1)
		return -1;
	odwait_no(w->odwait, name);
	return 0;
}
