/*
 * The control socket. Each client greets with HELLO, then sends one command
 * at a time; while a command waits (for every worker to serve a generation,
 * or for worker status) the client is not read. Replies go through a
 * per-client queue so a long `route list` never blocks the master.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "master/cluster.h"
#include "master/cmdtable.h"
#include "master/control.h"
#include "master/tunnels.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/workers.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/util.h"

#define CONTROL_MAX_CLIENTS 64
#define CONTROL_QUEUE_MAX (64u << 20)	/* bytes of replies queued per client */
#define CONTROL_SERVE_TIMEOUT_MS 10000
#define CONTROL_STATUS_TIMEOUT_MS 1000
#define CONTROL_TICK_MS 100

struct outmsg {
	struct outmsg *next;
	uint16_t type;
	uint32_t seq, gen;
	int fd;			/* sent with the message, then closed; -1 none */
	size_t len;
	uint8_t data[];
};

enum wait_kind { WAIT_NONE, WAIT_GEN, WAIT_STATUS };

struct cclient {
	struct control *ctl;
	struct cclient *next;
	int fd;
	struct ev_io io;
	uid_t uid;
	int hello;
	int busy;		/* a command is running: do not read */
	int closing;		/* close once the queue is flushed */
	uint32_t seq;		/* of the running command */
	enum wait_kind wait;
	uint32_t wait_gen;
	int64_t wait_change;	/* with a shared store: every live node serves it (master/cluster.h) */
	uint64_t deadline_ms;
	void (*status_fn)(struct master *, struct cclient *);
	char message[256];
	struct outmsg *qhead, *qtail;
	size_t qbytes;
	void (*on_close)(struct master *m, struct cclient *cl);	/* control_on_close */
};

struct control {
	struct master *m;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct ev_io io;
	struct ev_timer tick;
	struct cclient *clients;
	int nclients;
};

static void client_io(struct ev_loop *l, struct ev_io *io, uint32_t events);

struct master *
control_master(struct cclient *cl)
{
	return cl->ctl->m;
}

static void
client_free(void *arg)
{
	struct cclient *cl = arg;

	while (cl->qhead != NULL) {
		struct outmsg *o = cl->qhead;
		cl->qhead = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	free(cl);
}

static void
client_close(struct cclient *cl)
{
	struct control *ctl = cl->ctl;
	struct cclient **pp;

	if (cl->fd == -1)
		return;		/* already closed earlier in this batch */
	for (pp = &ctl->clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	ctl->nclients--;
	if (cl->on_close != NULL)
		cl->on_close(ctl->m, cl);
	ev_io_stop(ctl->m->loop, &cl->io);
	close(cl->fd);
	cl->fd = -1;
	/* Other events for cl may still be queued in this batch. */
	ev_defer(ctl->m->loop, client_free, cl);
}

/* Watches for input only while idle, for output while anything is queued. */
static void
client_rearm(struct cclient *cl)
{
	uint32_t ev = 0;

	if (!cl->busy && !cl->closing)
		ev |= EPOLLIN;
	if (cl->qhead != NULL)
		ev |= EPOLLOUT;
	if (ev == 0 && cl->closing) {
		client_close(cl);
		return;
	}
	ev_io_modify(cl->ctl->m->loop, &cl->io, ev);
}

static int
client_flush(struct cclient *cl)
{
	while (cl->qhead != NULL) {
		struct outmsg *o = cl->qhead;

		if (ipc_send(cl->fd, o->type, o->seq, o->gen, o->data, o->len, o->fd) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			log_debug("control client gone: %s", strerror(errno));
			return -1;
		}
		cl->qhead = o->next;
		if (cl->qhead == NULL)
			cl->qtail = NULL;
		cl->qbytes -= o->len;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	return 0;
}

static void
client_queue_fd(struct cclient *cl, uint16_t type, uint32_t gen, const void *p, size_t len,
    int fd)
{
	struct outmsg *o;

	if (cl->qbytes + len > CONTROL_QUEUE_MAX || (o = malloc(sizeof(*o) + len)) == NULL) {
		log_warnx("control client: reply too large, dropping the client");
		if (fd >= 0)
			close(fd);
		cl->closing = 1;
		return;
	}
	o->next = NULL;
	o->fd = fd;
	o->type = type;
	o->seq = cl->seq;
	o->gen = gen;
	o->len = len;
	if (len > 0)
		memcpy(o->data, p, len);
	if (cl->qtail != NULL)
		cl->qtail->next = o;
	else
		cl->qhead = o;
	cl->qtail = o;
	cl->qbytes += len;
}

static void
client_queue(struct cclient *cl, uint16_t type, uint32_t gen, const void *p, size_t len)
{
	client_queue_fd(cl, type, gen, p, len, -1);
}

/* Ends the running command: flush what is queued and read the next one. */
static void
client_done(struct cclient *cl)
{
	cl->busy = 0;
	cl->wait = WAIT_NONE;
	if (client_flush(cl) == -1) {
		client_close(cl);
		return;
	}
	client_rearm(cl);
}

void
control_reply_ok(struct cclient *cl, const char *message)
{
	uint8_t buf[512];
	struct wbuf w;

	wb_init(&w, buf, sizeof(buf));
	wb_str(&w, message);
	client_queue(cl, MSG_C_OK, cl->ctl->m->gen, buf, w.len);
	client_done(cl);
}

void
control_reply_fail(struct cclient *cl, uint32_t code, const char *fmt, ...)
{
	uint8_t buf[600];
	char reason[512];
	struct wbuf w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	wb_init(&w, buf, sizeof(buf));
	wb_u32(&w, code);
	wb_str(&w, reason);
	client_queue(cl, MSG_C_FAIL, 0, buf, w.len);
	client_done(cl);
}

int
control_reply_fd(struct cclient *cl, uint16_t type, const struct wbuf *w, int fd)
{
	int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (copy == -1) {
		log_warn("control: dup");
		return -1;
	}
	client_queue_fd(cl, type, 0, w->p, w->len, copy);
	return 0;
}

void
control_on_close(struct cclient *cl, void (*fn)(struct master *m, struct cclient *cl))
{
	cl->on_close = fn;
}

uid_t
control_client_uid(const struct cclient *cl)
{
	return cl->uid;
}

static void
control_row_key(struct wbuf *w, const char *key, uint8_t kind)
{
	wb_str(w, key);
	wb_u8(w, kind);
}

void
control_row_str(struct wbuf *w, const char *key, const char *v)
{
	control_row_key(w, key, FIELD_STR);
	wb_str(w, v);
}

void
control_row_int(struct wbuf *w, const char *key, int64_t v)
{
	control_row_key(w, key, FIELD_INT);
	wb_u64(w, (uint64_t)v);
}

void
control_row_list(struct wbuf *w, const char *key, char *const *v, size_t n)
{
	size_t i;

	control_row_key(w, key, FIELD_LIST);
	wb_u16(w, (uint16_t)n);
	for (i = 0; i < n; i++)
		wb_str(w, v[i]);
}

void
control_reply_row(struct cclient *cl, const struct wbuf *row)
{
	client_queue(cl, MSG_C_ROW, 0, row->p, row->len);
}

void
control_reply_end(struct cclient *cl)
{
	client_queue(cl, MSG_C_END, 0, NULL, 0);
	client_done(cl);
}

static void
control_arm_tick(struct control *ctl)
{
	if (!ev_timer_armed(&ctl->tick))
		ev_timer_start(ctl->m->loop, &ctl->tick, CONTROL_TICK_MS);
}

void
control_reply_when_served(struct cclient *cl, uint32_t gen, const char *message)
{
	util_strlcpy(cl->message, message, sizeof(cl->message));
	cl->wait = WAIT_GEN;
	cl->wait_gen = gen;
	cl->wait_change = cluster_want(cl->ctl->m);
	cl->deadline_ms = ev_now(cl->ctl->m->loop) + CONTROL_SERVE_TIMEOUT_MS;
	control_arm_tick(cl->ctl);
	control_release_waiters(cl->ctl->m);
}

void
control_reply_after_status(struct cclient *cl, uint32_t seq,
    void (*fn)(struct master *m, struct cclient *cl))
{
	cl->wait = WAIT_STATUS;
	cl->wait_gen = seq;
	cl->status_fn = fn;
	cl->deadline_ms = ev_now(cl->ctl->m->loop) + CONTROL_STATUS_TIMEOUT_MS;
	control_arm_tick(cl->ctl);
	control_on_worker_status(cl->ctl->m);
}

static int
status_complete(const struct master *m, uint32_t seq)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].proc.ready && m->workers[i].status_seq < seq)
			return 0;
	return tunnels_list_complete(m, seq);
}

/* Served here, not on every live node of the shared store: say which. */
static void
control_lagging_nodes(struct master *m, struct cclient *cl)
{
	char nodes[512];

	cluster_lagging(m, cl->wait_change, nodes, sizeof(nodes));
	control_reply_fail(cl, CTL_ETIMEDOUT, "saved and served here, but not confirmed in time "
	    "by node(s) %s", nodes);
}

/* Walks the waiting clients; a reply may close a client, so fetch next first. */
static void
control_scan(struct master *m)
{
	struct control *ctl = m->control;
	struct cclient *cl, *next;
	uint64_t now = ev_now(m->loop);

	for (cl = ctl ? ctl->clients : NULL; cl != NULL; cl = next) {
		next = cl->next;
		if (cl->wait == WAIT_GEN && publish_served(m, cl->wait_gen) &&
		    cluster_served(m, cl->wait_change))
			control_reply_ok(cl, cl->message);
		else if (cl->wait == WAIT_GEN && now >= cl->deadline_ms && publish_served(m, cl->wait_gen))
			control_lagging_nodes(m, cl);
		else if (cl->wait == WAIT_GEN && now >= cl->deadline_ms)
			control_reply_fail(cl, CTL_ETIMEDOUT,
			    "not every worker confirmed generation %u in time", cl->wait_gen);
		else if (cl->wait == WAIT_STATUS &&
		    (now >= cl->deadline_ms || status_complete(m, cl->wait_gen)))
			cl->status_fn(m, cl);
	}
}

void
control_release_waiters(struct master *m)
{
	control_scan(m);
}

void
control_on_worker_status(struct master *m)
{
	control_scan(m);
}

void
control_fail_waiters(struct master *m, const char *why)
{
	struct cclient *cl, *next;

	for (cl = m->control ? m->control->clients : NULL; cl != NULL; cl = next) {
		next = cl->next;
		if (cl->wait == WAIT_GEN && !publish_served(m, cl->wait_gen) && m->gen < cl->wait_gen)
			control_reply_fail(cl, CTL_EFAIL, "%s", why);
	}
}

static void
tick_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct control *ctl = t->arg;
	struct cclient *cl;

	(void)l;
	control_scan(ctl->m);
	for (cl = ctl->clients; cl != NULL; cl = cl->next)
		if (cl->wait != WAIT_NONE) {
			control_arm_tick(ctl);
			break;
		}
}

static int
in_group(gid_t gid, uid_t uid, gid_t primary)
{
	struct passwd *pw;
	gid_t groups[256];
	int n = 256, i;

	if (primary == gid)
		return 1;
	if ((pw = getpwuid(uid)) == NULL)
		return 0;
	if (pw->pw_gid == gid)
		return 1;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/* Root, the master's own uid (an unprivileged test run) or the admin group; never a worker. */
static int
peer_allowed(struct master *m, int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return 0;
	*uid = cr.uid;
	if (cr.uid == 0)
		return 1;
	if (geteuid() == 0 && cr.uid == m->worker_uid)
		return 0;
	if (cr.uid == geteuid())
		return 1;
	return m->have_admin_group && in_group(m->admin_gid, cr.uid, cr.gid);
}

static void
control_accept(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct control *ctl = io->arg;
	struct cclient *cl;
	int fd;

	(void)events;
	while ((fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (ctl->nclients >= CONTROL_MAX_CLIENTS || (cl = calloc(1, sizeof(*cl))) == NULL) {
			log_warnx("control socket: too many clients");
			close(fd);
			continue;
		}
		cl->ctl = ctl;
		cl->fd = fd;
		cl->next = ctl->clients;
		ctl->clients = cl;
		ctl->nclients++;
		if (ev_io_start(l, &cl->io, fd, EPOLLIN, client_io, cl) == -1) {
			client_close(cl);
			continue;
		}
		if (!peer_allowed(ctl->m, fd, &cl->uid)) {
			log_notice("control socket: uid %u refused", (unsigned)cl->uid);
			control_reply_fail(cl, CTL_EPERM, "permission denied: join the %s group",
			    ctl->m->cfg.admin_group);
			cl->closing = 1;
			client_rearm(cl);
		}
	}
}

static int
client_hello(struct cclient *cl, struct ipc_msg *msg)
{
	struct msg_hello h, mine = { HALOYD_PROTO_VERSION, ROLE_MASTER, 0, (uint32_t)getpid() };

	if (msg->h.type != MSG_HELLO || msg->h.len != sizeof(h) || msg->fd >= 0)
		return -1;
	memcpy(&h, msg->data, sizeof(h));
	if (h.role != ROLE_CTL)
		return -1;
	cl->hello = 1;
	if (h.proto != HALOYD_PROTO_VERSION) {
		cl->busy = 1;
		control_reply_fail(cl, CTL_EFAIL, "haloyd-ctl speaks protocol %u, haloyd %u: "
		    "use the haloyd-ctl of the same version", h.proto, HALOYD_PROTO_VERSION);
		cl->closing = 1;
		client_rearm(cl);
		return 0;
	}
	client_queue(cl, MSG_HELLO, 0, &mine, sizeof(mine));
	return client_flush(cl);
}

static int
client_read(struct cclient *cl)
{
	struct ipc_msg *msg = cl->ctl->m->rx;
	int n = ipc_recv(cl->fd, msg);

	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		if (n == -1)
			log_notice("control client uid %u: %s", (unsigned)cl->uid, strerror(errno));
		return -1;
	}
	if (!cl->hello) {
		if (client_hello(cl, msg) == -1) {
			ipc_msg_close_fd(msg);
			log_notice("control client uid %u: no HELLO", (unsigned)cl->uid);
			return -1;
		}
		return 0;
	}
	cl->busy = 1;
	cl->seq = msg->h.seq;
	if (cmdtable_run(cl->ctl->m, cl, msg) == -1) {
		log_notice("control client uid %u: malformed command (type %u)", (unsigned)cl->uid,
		    msg->h.type);
		control_reply_fail(cl, CTL_EUSAGE, "malformed request");
		cl->closing = 1;
	}
	return 0;
}

static void
client_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct cclient *cl = io->arg;

	(void)l;
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		client_close(cl);
		return;
	}
	if ((events & EPOLLOUT) && client_flush(cl) == -1) {
		client_close(cl);
		return;
	}
	if ((events & EPOLLIN) && !cl->busy && !cl->closing && client_read(cl) == -1) {
		client_close(cl);
		return;
	}
	client_rearm(cl);
}

/* The socket file: 0660 root:admin-group; the peer check is the real gate. */
static int
control_bind(struct control *ctl, const char *dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct master *m = ctl->m;
	mode_t old;
	int rc;

	if ((size_t)snprintf(ctl->path, sizeof(ctl->path), "%s/%s", dir, HALOYD_CONTROL_SOCKET) >=
	    sizeof(ctl->path)) {
		log_warnx("control socket path under %s is too long", dir);
		return -1;
	}
	util_strlcpy(sun.sun_path, ctl->path, sizeof(sun.sun_path));
	ctl->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd == -1) {
		log_warn("control socket");
		return -1;
	}
	unlink(ctl->path);
	old = umask(0117);
	rc = bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1 || listen(ctl->fd, 64) == -1) {
		log_warn("control socket %s", ctl->path);
		return -1;
	}
	if (m->have_admin_group && geteuid() == 0 && chown(ctl->path, 0, m->admin_gid) == -1)
		log_warn("chown %s", ctl->path);
	return 0;
}

int
control_open(struct master *m)
{
	struct control *ctl = calloc(1, sizeof(*ctl));

	if (ctl == NULL)
		return -1;
	ctl->m = m;
	ctl->fd = -1;
	m->control = ctl;
	ev_timer_init(&ctl->tick, tick_fire, ctl);
	if (control_bind(ctl, m->cfg.runtime_dir) == -1 ||
	    ev_io_start(m->loop, &ctl->io, ctl->fd, EPOLLIN, control_accept, ctl) == -1)
		return -1;
	log_info("control socket %s", ctl->path);
	return 0;
}

void
control_unlisten(struct master *m)
{
	struct control *ctl = m->control;

	/* The path is the new master's now: never unlinked from here. */
	if (ctl == NULL || ctl->fd < 0)
		return;
	ev_io_stop(m->loop, &ctl->io);
	close(ctl->fd);
	ctl->fd = -1;
}

int
control_relisten(struct master *m)
{
	struct control *ctl = m->control;

	if (ctl == NULL || ctl->fd >= 0)
		return 0;
	if (control_bind(ctl, m->cfg.runtime_dir) == -1 ||
	    ev_io_start(m->loop, &ctl->io, ctl->fd, EPOLLIN, control_accept, ctl) == -1)
		return -1;
	log_info("control socket %s again", ctl->path);
	return 0;
}

void
control_close(struct master *m)
{
	struct control *ctl = m->control;

	if (ctl == NULL)
		return;
	while (ctl->clients != NULL)
		client_close(ctl->clients);
	ev_timer_stop(m->loop, &ctl->tick);
	if (ctl->fd >= 0) {
		ev_io_stop(m->loop, &ctl->io);
		close(ctl->fd);
		unlink(ctl->path);
	}
	free(ctl);
	m->control = NULL;
}
