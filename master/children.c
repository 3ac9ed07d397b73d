/*
 * Worker supervision. The child inherits nothing but fd 3 (everything else
 * is close-on-exec) and a clean signal mask, and runs a fresh image of our
 * own executable, so it holds no heap of the master (no SQLite cache).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "master/acme.h"
#include "master/children.h"
#include "master/control.h"
#include "master/keyring.h"
#include "master/master.h"
#include "master/publish.h"
#include "share/addr.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000		/* a child alive this long resets its back-off */

extern char **environ;

static void child_read(struct ev_loop *l, struct ev_io *io, uint32_t events);

static void
child_closed(struct child *c)
{
	if (c->sock >= 0) {
		ev_io_stop(c->m->loop, &c->io);
		close(c->sock);
		c->sock = -1;
	}
	c->hello = 0;
	c->ready = 0;
}

void
children_kill(struct child *c, const char *why)
{
	if (c->pid <= 0)
		return;
	log_warnx("worker %d (pid %d): %s; killing it", c->index, (int)c->pid, why);
	kill(c->pid, SIGKILL);
	child_closed(c);
	publish_check(c->m);
}

static void
respawn_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct child *c = t->arg;

	(void)l;
	if (!c->m->stopping && c->pid == 0)
		children_spawn(c);
}

/* In the child, between fork and fexecve: only async-signal-safe calls. */
static _Noreturn void
child_exec(struct master *m, const char *role, int index, const char *user, int sock)
{
	char idx[16], verbose[8] = "-v";
	char *argv[12];
	int argc = 0, i;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(sock, 3) == -1)
		_exit(127);
	snprintf(idx, sizeof(idx), "%d", index);
	argv[argc++] = (char *)(uintptr_t)"haloyd";
	argv[argc++] = (char *)(uintptr_t)"-R";
	argv[argc++] = (char *)(uintptr_t)role;
	if (index >= 0) {
		argv[argc++] = (char *)(uintptr_t)"-I";
		argv[argc++] = idx;
	}
	argv[argc++] = (char *)(uintptr_t)"-U";
	argv[argc++] = (char *)(uintptr_t)user;
	argv[argc++] = (char *)(uintptr_t)"-L";
	argv[argc++] = m->cfg.log_target;
	for (i = 0; i < m->cfg.verbose && i < 3; i++)
		verbose[1 + i] = 'v';
	verbose[1 + i] = '\0';
	if (m->cfg.verbose > 0)
		argv[argc++] = verbose;
	argv[argc] = NULL;
	fexecve(m->self_fd, argv, environ);
	_exit(127);
}

int
children_fork(struct master *m, const char *role, int index, const char *user, pid_t *pid,
    int *sock)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for %s %d", role, index);
		return -1;
	}
	if ((*pid = fork()) == -1) {
		log_warn("fork %s %d", role, index);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (*pid == 0)
		child_exec(m, role, index, user, sv[1]);
	close(sv[1]);
	*sock = sv[0];
	return 0;
}

int
children_spawn(struct child *c)
{
	struct master *m = c->m;
	struct msg_hello h = { HALOYD_PROTO_VERSION, ROLE_MASTER, (uint32_t)c->index, (uint32_t)getpid() };
	pid_t pid;
	int sock;

	if (children_fork(m, "worker", c->index, m->cfg.user, &pid, &sock) == -1)
		goto retry;
	c->pid = pid;
	c->sock = sock;
	c->started_ms = util_now_ms();
	c->hello = c->ready = 0;
	c->sent_gen = c->acked_gen = 0;
	c->keyring_gen = 0;
	if (util_set_nonblock(c->sock) == -1 ||
	    ev_io_start(m->loop, &c->io, c->sock, EPOLLIN, child_read, c) == -1 ||
	    ipc_send(c->sock, MSG_HELLO, 0, 0, &h, sizeof(h), -1) == -1) {
		children_kill(c, "cannot talk to it");
		return -1;
	}
	log_info("worker %d started (pid %d)", c->index, (int)pid);
	return 0;
retry:
	ev_timer_start(m->loop, &c->respawn, BACKOFF_MAX_MS);
	return -1;
}

static int
child_send_snapshot(struct child *c)
{
	struct master *m = c->m;

	/* The keyring of a generation always arrives before its snapshot. */
	if (mkeyring_send(m, c) == -1)
		return -1;
	if (ipc_send(c->sock, MSG_W_SNAP, 0, m->gen, NULL, 0, m->snap_fd) == -1) {
		log_warn("sending generation %u to worker %d", m->gen, c->index);
		return -1;
	}
	c->sent_gen = m->gen;
	c->sent_ms = util_now_ms();
	return 0;
}

static int
child_send_config(struct child *c)
{
	const struct conf *cf = &c->m->cfg;
	uint8_t buf[MSG_WCONFIG_MAX_LEN];
	struct addr_cidr cidr;
	struct wbuf b;
	size_t i;
	struct msg_wconfig w = {
		.max_conns = (uint32_t)cf->max_connections,
		.header_timeout_ms = (uint32_t)cf->header_timeout_ms,
		.keepalive_timeout_ms = (uint32_t)cf->keepalive_timeout_ms,
		.connect_timeout_ms = (uint32_t)cf->connect_timeout_ms,
		.response_timeout_ms = (uint32_t)cf->response_timeout_ms,
		.idle_timeout_ms = (uint32_t)cf->idle_timeout_ms,
		.access_log = (uint32_t)cf->access_log,
		.upgrade_timeout_ms = (uint32_t)cf->tunnel_timeout_ms,
		.body_timeout_ms = (uint32_t)cf->body_timeout_ms,
		.backend_down_ms = (uint32_t)cf->backend_down_ms,
		.max_body = cf->max_body,
		.access_log_sample = (uint32_t)cf->access_log_sample,
		.ntrusted = (uint32_t)cf->trusted_proxies.n,
	};

	_Static_assert(sizeof(struct addr_cidr) == 20, "msg.h counts 20 bytes per block");
	_Static_assert(CONFIG_LIST_MAX <= MSG_WCONFIG_TRUSTED_MAX, "trusted proxies fit");
	wb_init(&b, buf, sizeof(buf));
	wb_blob(&b, &w, sizeof(w));
	for (i = 0; i < cf->trusted_proxies.n; i++) {
		if (addr_parse_cidr(cf->trusted_proxies.v[i], &cidr) == -1)
			return -1;	/* conf.c checked it */
		wb_blob(&b, &cidr, sizeof(cidr));
	}
	wb_str(&b, cf->error_pages);
	if (b.bad)
		return -1;
	return ipc_send(c->sock, MSG_W_CONFIG, 0, 0, buf, b.len, -1);
}

/* After HELLO: config, this worker's listeners, then the current snapshot. */
static int
child_on_hello(void *arg, struct ipc_msg *msg)
{
	struct child *c = arg;
	struct msg_hello h;
	size_t a;

	memcpy(&h, msg->data, sizeof(h));
	if (c->hello || h.proto != HALOYD_PROTO_VERSION || h.role != ROLE_WORKER ||
	    h.index != (uint32_t)c->index) {
		children_kill(c, "bad HELLO");
		return -1;
	}
	c->hello = 1;
	if (child_send_config(c) == -1)
		goto fail;
	for (a = 0; a < c->m->lst.naddrs; a++) {
		struct msg_listener ml = { LISTENER_HTTP, (uint32_t)a };
		if (ipc_send(c->sock, MSG_W_LISTENER, 0, 0, &ml, sizeof(ml),
		    listeners_fd(&c->m->lst, a, (size_t)c->index)) == -1)
			goto fail;
	}
	/* HTTPS ids follow the HTTP ones, so every listener id is unique. */
	for (a = 0; a < c->m->lst_https.naddrs; a++) {
		struct msg_listener ml = { LISTENER_HTTPS, (uint32_t)(c->m->lst.naddrs + a) };
		if (ipc_send(c->sock, MSG_W_LISTENER, 0, 0, &ml, sizeof(ml),
		    listeners_fd(&c->m->lst_https, a, (size_t)c->index)) == -1)
			goto fail;
	}
	if (child_send_snapshot(c) == -1)
		goto fail;
	c->ready = 1;
	return 0;
fail:
	children_kill(c, "cannot send its start-up state");
	return -1;
}

static int
child_on_ack(void *arg, struct ipc_msg *msg)
{
	struct child *c = arg;

	/* Acks come in order; one may trail a newer generation already sent. */
	if (!c->ready || msg->h.gen > c->sent_gen || msg->h.gen < c->acked_gen) {
		children_kill(c, "acked a generation it was not sent");
		return -1;
	}
	c->acked_gen = msg->h.gen;
	log_debug("worker %d serves generation %u", c->index, c->acked_gen);
	publish_check(c->m);
	return 0;
}

static int
child_on_nack(void *arg, struct ipc_msg *msg)
{
	struct child *c = arg;
	char reason[256];
	struct cur cu;

	cur_init(&cu, msg->data, msg->h.len);
	if (cur_str(&cu, reason, sizeof(reason)) == -1 || cur_end(&cu) == -1)
		util_strlcpy(reason, "(unreadable reason)", sizeof(reason));
	log_warnx("worker %d refused generation %u: %s", c->index, msg->h.gen, reason);
	children_kill(c, "refused a snapshot");
	return 0;
}

static int
child_on_status(void *arg, struct ipc_msg *msg)
{
	struct child *c = arg;
	struct msg_wstatus s;

	memcpy(&s, msg->data, sizeof(s));
	c->requests = s.requests;
	c->connections = s.connections;
	c->status_seq = msg->h.seq;
	control_on_worker_status(c->m);
	return 0;
}

static const struct ipc_handler child_handlers[] = {
	{ MSG_HELLO, IPC_FD_NONE, sizeof(struct msg_hello), sizeof(struct msg_hello), child_on_hello },
	{ MSG_W_ACK, IPC_FD_NONE, 0, 0, child_on_ack },
	{ MSG_W_NACK, IPC_FD_NONE, 2, 2 + 1024, child_on_nack },
	{ MSG_W_STATUS, IPC_FD_NONE, sizeof(struct msg_wstatus), sizeof(struct msg_wstatus), child_on_status },
};

static void
child_read(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct child *c = io->arg;
	struct ipc_msg *msg = c->m->rx;
	int n;

	(void)l;
	(void)events;
	while (c->sock >= 0) {
		n = ipc_recv(c->sock, msg);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0) {
			log_debug("worker %d closed its socket", c->index);
			child_closed(c);
			publish_check(c->m);
			return;
		}
		if (n == -1 || (!c->hello && msg->h.type != MSG_HELLO) ||
		    ipc_dispatch(child_handlers, ARRAY_LEN(child_handlers), c, msg) == -1) {
			if (c->pid > 0)
				children_kill(c, "sent a malformed message");
			return;
		}
	}
}

int
children_init(struct master *m)
{
	size_t i;

	if ((m->workers = calloc(m->nworkers, sizeof(*m->workers))) == NULL)
		return -1;
	for (i = 0; i < m->nworkers; i++) {
		struct child *c = &m->workers[i];

		c->m = m;
		c->index = (int)i;
		c->sock = -1;
		c->backoff_ms = BACKOFF_MIN_MS;
		ev_timer_init(&c->respawn, respawn_fire, c);
	}
	return 0;
}

void
children_send_snapshot(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++) {
		struct child *c = &m->workers[i];
		if (c->ready && c->sent_gen != m->gen && child_send_snapshot(c) == -1)
			children_kill(c, "its socket is full or broken");
	}
}

void
children_send_config(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++) {
		struct child *c = &m->workers[i];
		if (c->ready && child_send_config(c) == -1)
			children_kill(c, "its socket is full or broken");
	}
}

int
children_request_status(struct master *m, uint32_t seq)
{
	size_t i;
	int n = 0;

	for (i = 0; i < m->nworkers; i++) {
		struct child *c = &m->workers[i];
		if (!c->ready)
			continue;
		if (ipc_send(c->sock, MSG_W_STATUS_REQ, seq, 0, NULL, 0, -1) == -1)
			children_kill(c, "its socket is full or broken");
		else
			n++;
	}
	return n;
}

static struct child *
child_by_pid(struct master *m, pid_t pid)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid == pid)
			return &m->workers[i];
	return NULL;
}

static void
child_exited(struct child *c, int status)
{
	struct master *m = c->m;
	uint64_t lived = util_now_ms() - c->started_ms;

	if (WIFSIGNALED(status))
		log_warnx("worker %d (pid %d) killed by signal %d", c->index, (int)c->pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0 || !m->stopping)
		log_warnx("worker %d (pid %d) exited with status %d", c->index, (int)c->pid, WEXITSTATUS(status));
	else
		log_info("worker %d (pid %d) stopped", c->index, (int)c->pid);
	child_closed(c);
	c->pid = 0;
	publish_check(m);
	if (m->stopping)
		return;
	c->backoff_ms = lived >= STABLE_MS ? BACKOFF_MIN_MS :
	    (c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2);
	log_info("respawning worker %d in %llu ms", c->index, (unsigned long long)c->backoff_ms);
	ev_timer_start(m->loop, &c->respawn, lived >= STABLE_MS ? 0 : c->backoff_ms);
}

void
children_reap(struct master *m)
{
	struct child *c;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if ((c = child_by_pid(m, pid)) != NULL)
			child_exited(c, status);
		else
			acme_reaped(m, pid, status);
}

void
children_stop_all(struct master *m, uint32_t deadline_ms)
{
	struct msg_stop s = { deadline_ms };
	size_t i;

	for (i = 0; i < m->nworkers; i++) {
		struct child *c = &m->workers[i];

		ev_timer_stop(m->loop, &c->respawn);
		if (c->pid > 0 && (c->sock < 0 ||
		    ipc_send(c->sock, MSG_W_STOP, 0, 0, &s, sizeof(s), -1) == -1))
			kill(c->pid, SIGTERM);
	}
}

size_t
children_running(const struct master *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0)
			n++;
	return n;
}

void
children_kill_all(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, SIGKILL);
}
