/*
 * Workers, as one role of the process table. After HELLO a worker gets
 * its config, its own clone of every listener and the current keyring and
 * snapshot; it is ready once all of it went out, and from then on it gets
 * every new generation and acks each one (master/publish.c counts them).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/control.h"
#include "master/handover.h"
#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/ondemand.h"
#include "master/publish.h"
#include "master/workers.h"
#include "share/addr.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/clients.h"
#include "share/health.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000		/* a worker alive this long resets its back-off */

/*
 * The images built since the generation the worker was last sent (all of
 * them for a new one), one a message, the last flagged; a generation that
 * changed no image is one message without an fd.
 */
static int
worker_send_images(struct mworker *w)
{
	struct master *m = w->proc.m;
	struct msg_snap ms = { 0, 0 };
	uint32_t k, last = SNAP_SHARDS;

	for (k = 0; k < SNAP_SHARDS; k++)
		if (m->snap_fds[k] >= 0 && (w->sent_gen == 0 || m->snap_gens[k] > w->sent_gen))
			last = k;
	if (last == SNAP_SHARDS) {
		ms.flags = MSG_SNAP_LAST;
		return ipc_send(w->proc.sock, MSG_W_SNAP, 0, m->gen, &ms, sizeof(ms), -1);
	}
	for (k = 0; k <= last; k++) {
		if (m->snap_fds[k] < 0 || (w->sent_gen != 0 && m->snap_gens[k] <= w->sent_gen))
			continue;
		ms.flags = k == last ? MSG_SNAP_LAST : 0;
		if (ipc_send(w->proc.sock, MSG_W_SNAP, 0, m->gen, &ms, sizeof(ms),
		    m->snap_fds[k]) == -1)
			return -1;
	}
	return 0;
}

static int
worker_send_snapshot(struct mworker *w)
{
	struct master *m = w->proc.m;

	/* The keyring of a generation always arrives before its snapshot. */
	if (mkeyring_send(m, w) == -1)
		return -1;
	if (worker_send_images(w) == -1) {
		log_warn("sending generation %u to worker %d", m->gen, w->proc.index);
		return -1;
	}
	w->sent_gen = m->gen;
	w->sent_ms = util_now_ms();
	publish_sent(m);
	return 0;
}

int
workers_config_msg(const struct master *m, uint8_t *buf, size_t size, size_t *len)
{
	const struct conf *cf = &m->cfg;
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
		.upgrade_timeout_ms = (uint32_t)cf->upgrade_timeout_ms,
		.body_timeout_ms = (uint32_t)cf->body_timeout_ms,
		.backend_down_ms = (uint32_t)cf->backend_down_ms,
		.max_body = cf->max_body,
		.access_log_sample = (uint32_t)cf->access_log_sample,
		.http2 = (uint32_t)cf->http2,
		.h2_max_streams = (uint32_t)cf->h2_max_streams,
		.rate_rpm = (uint32_t)cf->rate_rpm,
		.rate_burst = (uint32_t)cf->rate_burst,
		.rate_nodelay = (uint32_t)cf->rate_nodelay,
		.rate_dry_run = (uint32_t)cf->rate_dry_run,
		.max_conns_per_ip = (uint32_t)cf->max_conns_per_ip,
		.ondemand_wait_ms = cf->acme_on_demand && cf->acme ?
		    (uint32_t)cf->acme_on_demand_wait_ms : 0,
		.ntrusted = (uint32_t)cf->trusted_proxies.n,
		.cache_max_size = cf->cache_max_size,
	};

	_Static_assert(sizeof(struct addr_cidr) == 20, "msg.h counts 20 bytes per block");
	_Static_assert(CONFIG_LIST_MAX <= MSG_WCONFIG_TRUSTED_MAX, "trusted proxies fit");
	/* The path only: the tunnel process (another child) binds nothing here. */
	if (cf->listen_tunnel != NULL && cf->listen_tunnel[0] != '\0' &&
	    (size_t)snprintf(w.tunnel_hop, sizeof(w.tunnel_hop), "%s/%s", cf->runtime_dir,
	    TUNNEL_HOP_SOCK) >= sizeof(w.tunnel_hop)) {
		log_warnx("runtime_dir %s: %s/%s does not fit a unix socket path", cf->runtime_dir,
		    cf->runtime_dir, TUNNEL_HOP_SOCK);
		w.tunnel_hop[0] = '\0';
	}
	if ((size_t)snprintf(w.cache_path, sizeof(w.cache_path), "%s", cf->cache_path) >=
	    sizeof(w.cache_path)) {
		log_warnx("cache_path %s is too long: no cache", cf->cache_path);
		w.cache_path[0] = '\0';
	}
	wb_init(&b, buf, size);
	wb_blob(&b, &w, sizeof(w));
	for (i = 0; i < cf->trusted_proxies.n; i++) {
		if (addr_parse_cidr(cf->trusted_proxies.v[i], &cidr) == -1)
			return -1;	/* conf.c checked it */
		wb_blob(&b, &cidr, sizeof(cidr));
	}
	wb_str(&b, cf->error_pages);
	if (b.bad)
		return -1;
	*len = b.len;
	return 0;
}

static int
worker_send_config(struct mworker *wk)
{
	uint8_t buf[MSG_WCONFIG_MAX_LEN];
	size_t len;

	if (workers_config_msg(wk->proc.m, buf, sizeof(buf), &len) == -1)
		return -1;
	return ipc_send(wk->proc.sock, MSG_W_CONFIG, 0, 0, buf, len, -1);
}

/* Forked: nothing of the previous run's generations applies. */
static void
worker_on_spawn(struct proc *p)
{
	struct mworker *w = p->arg;

	w->sent_gen = w->acked_gen = 0;
	w->keyring_gen = 0;
	/* Every run of an index after its first is a restart (a crash, a kill, a refused snapshot). */
	if (p->spawns > 1 && p->m->shm.master != NULL)
		shm_add(&p->m->shm.master->worker_restarts, 1);
}

/* After HELLO: config, this worker's listeners, then the current snapshot. */
static int
worker_on_hello(struct proc *p)
{
	struct mworker *w = p->arg;
	struct master *m = p->m;
	size_t a;

	/* The region first: the worker counts from its first request on. */
	if (m->shm.base != NULL &&
	    ipc_send(p->sock, MSG_W_SHM, 0, 0, NULL, 0, m->shm_fd) == -1)
		return -1;
	if (worker_send_config(w) == -1)
		return -1;
	for (a = 0; a < m->lst.naddrs; a++) {
		struct msg_listener ml = { LISTENER_HTTP, (uint32_t)a,
		    (m->cfg.listen_http.proxy >> a) & 1 };
		if (ipc_send(p->sock, MSG_W_LISTENER, 0, 0, &ml, sizeof(ml),
		    listeners_fd(&m->lst, a, (size_t)p->index)) == -1)
			return -1;
	}
	/* HTTPS ids follow the HTTP ones, so every listener id is unique. */
	for (a = 0; a < m->lst_https.naddrs; a++) {
		struct msg_listener ml = { LISTENER_HTTPS, (uint32_t)(m->lst.naddrs + a),
		    (m->cfg.listen_https.proxy >> a) & 1 };
		if (ipc_send(p->sock, MSG_W_LISTENER, 0, 0, &ml, sizeof(ml),
		    listeners_fd(&m->lst_https, a, (size_t)p->index)) == -1)
			return -1;
	}
	return worker_send_snapshot(w);
}

/*
 * Reaped, before any respawn: the connections it counted per client in the
 * shared table closed with it (its successor starts from 0 in that column),
 * and so did its requests in flight to backends.
 */
static void
worker_on_exit(struct proc *p, int status)
{
	(void)status;
	if (p->m->shm.base != NULL) {
		clients_forget_worker(&p->m->shm, (uint32_t)p->index);
		health_forget_worker(&p->m->shm, (uint32_t)p->index);
	}
}

/* Gone (killed, closed, exited): a barrier may now be met without it. */
static void
worker_on_down(struct proc *p)
{
	publish_check(p->m);
}

static int
worker_ask_stop(struct proc *p, uint32_t deadline_ms)
{
	struct msg_stop s = { deadline_ms, handover_draining(p->m) || p->m->drain_scope };

	return ipc_send(p->sock, MSG_W_STOP, 0, 0, &s, sizeof(s), -1);
}

/* A handshake waits for a certificate (master/ondemand.c decides). */
static int
worker_on_ondemand(void *arg, struct ipc_msg *msg)
{
	struct mworker *w = arg;
	char name[MSG_NAME_MAX + 1];
	struct cur c;

	cur_init(&c, msg->data, msg->h.len);
	if (cur_str(&c, name, sizeof(name)) == -1 || cur_end(&c) == -1)
		return -1;
	ondemand_request(w->proc.m, &w->proc, name);
	return 0;
}

static int
worker_on_ack(void *arg, struct ipc_msg *msg)
{
	struct mworker *w = arg;

	/* Acks come in order; one may trail a newer generation already sent. */
	if (!w->proc.ready || msg->h.gen > w->sent_gen || msg->h.gen < w->acked_gen) {
		proc_kill(&w->proc, "acked a generation it was not sent");
		return -1;
	}
	w->acked_gen = msg->h.gen;
	log_debug("worker %d serves generation %u", w->proc.index, w->acked_gen);
	publish_check(w->proc.m);
	return 0;
}

static int
worker_on_nack(void *arg, struct ipc_msg *msg)
{
	struct mworker *w = arg;
	char reason[256];
	struct cur cu;

	cur_init(&cu, msg->data, msg->h.len);
	if (cur_str(&cu, reason, sizeof(reason)) == -1 || cur_end(&cu) == -1)
		util_strlcpy(reason, "(unreadable reason)", sizeof(reason));
	log_warnx("worker %d refused generation %u: %s", w->proc.index, msg->h.gen, reason);
	proc_kill(&w->proc, "refused a snapshot");
	return 0;
}

static int
worker_on_status(void *arg, struct ipc_msg *msg)
{
	struct mworker *w = arg;
	struct msg_wstatus s;

	memcpy(&s, msg->data, sizeof(s));
	w->requests = s.requests;
	w->connections = s.connections;
	w->status_seq = msg->h.seq;
	control_on_worker_status(w->proc.m);
	return 0;
}

static void
worker_status_fields(const struct proc *p, struct wbuf *wb)
{
	const struct mworker *w = p->arg;

	control_row_int(wb, "generation", w->acked_gen);
	control_row_int(wb, "requests", (int64_t)w->requests);
	control_row_int(wb, "connections", w->connections);
}

static const char *
worker_user(const struct master *m)
{
	return m->cfg.user;
}

static const struct ipc_handler worker_handlers[] = {
	{ MSG_W_ACK, IPC_FD_NONE, 0, 0, worker_on_ack },
	{ MSG_W_NACK, IPC_FD_NONE, 2, 2 + 1024, worker_on_nack },
	{ MSG_W_STATUS, IPC_FD_NONE, sizeof(struct msg_wstatus), sizeof(struct msg_wstatus),
	    worker_on_status },
	{ MSG_W_ONDEMAND, IPC_FD_NONE, 2 + 1, 2 + MSG_NAME_MAX, worker_on_ondemand },
};

const struct proc_role workers_role = {
	.name = "worker",
	.title = "worker",
	.hello_role = ROLE_WORKER,
	.indexed = 1,
	.wrappable = 1,
	.user = worker_user,
	.backoff_min_ms = BACKOFF_MIN_MS,
	.backoff_max_ms = BACKOFF_MAX_MS,
	.stable_ms = STABLE_MS,
	.handlers = worker_handlers,
	.nhandlers = ARRAY_LEN(worker_handlers),
	.on_spawn = worker_on_spawn,
	.on_hello = worker_on_hello,
	.on_down = worker_on_down,
	.on_exit = worker_on_exit,
	.ask_stop = worker_ask_stop,
	.status_fields = worker_status_fields,
	.nstatus_fields = 3,
};

int
workers_init(struct master *m)
{
	size_t i;

	if ((m->workers = calloc(m->nworkers, sizeof(*m->workers))) == NULL)
		return -1;
	for (i = 0; i < m->nworkers; i++)
		proc_add(m, &m->workers[i].proc, &workers_role, (int)i, &m->workers[i]);
	return 0;
}

void
workers_spawn_all(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++)
		proc_spawn(&m->workers[i].proc);
}

void
workers_send_snapshot(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++) {
		struct mworker *w = &m->workers[i];
		if (w->proc.ready && w->sent_gen != m->gen && worker_send_snapshot(w) == -1)
			proc_kill(&w->proc, "its socket is full or broken");
	}
}

void
workers_send_config(struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++) {
		struct mworker *w = &m->workers[i];
		if (w->proc.ready && worker_send_config(w) == -1)
			proc_kill(&w->proc, "its socket is full or broken");
	}
}

int
workers_request_status(struct master *m, uint32_t seq)
{
	size_t i;
	int n = 0;

	for (i = 0; i < m->nworkers; i++) {
		struct mworker *w = &m->workers[i];
		if (w->proc.ready && proc_send(&w->proc, MSG_W_STATUS_REQ, seq, 0, NULL, 0, -1) == 0)
			n++;
	}
	return n;
}

void
workers_stop_all(struct master *m, uint32_t deadline_ms)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++)
		proc_stop(&m->workers[i].proc, deadline_ms);
}

size_t
workers_running(const struct master *m)
{
	return proc_running(m, &workers_role);
}

void
workers_kill_all(struct master *m)
{
	proc_kill_all(m, &workers_role);
}
