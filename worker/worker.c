/*
 * The worker process (see worker.h): start-up (privilege drop, HELLO), the
 * master's messages (config, listeners, snapshots, status, stop), signals,
 * and the graceful stop. The data path: conn.c, h1server.c, request.c,
 * exchange.c, h1client.c (ARCHITECTURE.md).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "share/child.h"
#include "share/cursor.h"
#include "share/log.h"
#include "share/privdrop.h"
#include "share/sandbox.h"
#include "share/shm.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/conn.h"
#include "worker/cache.h"
#include "worker/context.h"
#include "worker/odwait.h"
#include "worker/probe.h"
#include "worker/tls.h"
#include "worker/tlsclient.h"
#include "worker/upstream.h"
#include "worker/worker.h"

#define PARENT_FD 3
#define ORPHAN_DEADLINE_MS 10000	/* the master vanished: finish what is in flight */
#define WORKER_TIDY_MS 10000		/* how often idle buffers go back to malloc */
#define WORKER_TLS_TIDY_MS 1000		/* idle this long, a TLS 1.3 connection's ciphers go (tls_tidy) */
#define STOP_FRESH_GRACE_MS 1000	/* a stop's wait for a fresh connection's first request */

static void
worker_stop(struct worker *w, uint32_t deadline_ms)
{
	if (w->stopping)
		return;
	log_info("stopping: %u connections, up to %u ms", w->nconns, deadline_ms);
	w->stopping = 1;
	listen_close_all(w);
	if (w->role != NULL && w->role->stop != NULL)
		w->role->stop(w);
	conn_close_idle(w, 0);
	ev_timer_start(w->loop, &w->stop_timer, deadline_ms);
	if (!w->stop_keep_fresh)
		ev_timer_start(w->loop, &w->stop_grace, STOP_FRESH_GRACE_MS);
	worker_check_stopped(w);
}

/* The grace is over: fresh connections with no request on the way close too. */
static void
worker_on_grace(struct ev_loop *l, struct ev_timer *t)
{
	struct worker *w = t->arg;

	(void)l;
	conn_close_idle(w, 1);
	worker_check_stopped(w);
}

void
worker_check_stopped(struct worker *w)
{
	if (w->stopping && w->nconns == 0 &&
	    (w->role == NULL || w->role->busy == NULL || !w->role->busy(w)))
		ev_break(w->loop);
}

static void
worker_on_deadline(struct ev_loop *l, struct ev_timer *t)
{
	struct worker *w = t->arg;

	log_notice("stop deadline passed with %u connections open", w->nconns);
	ev_break(l);
}

static void
worker_nack(struct worker *w, uint32_t gen, const char *reason)
{
	uint8_t buf[MSG_STR_MAX + 2];
	struct wbuf b;

	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, reason);
	if (ipc_send(w->parent, MSG_W_NACK, 0, gen, buf, b.len, -1) == -1)
		log_warn("sending NACK");
}

/* --- the master's messages */

static int
on_config(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	struct msg_wconfig cfg;
	char dir[MSG_STR_MAX + 1];
	const void *p;
	struct cur c;

	cur_init(&c, m->data, m->h.len);
	if ((p = cur_blob(&c, sizeof(cfg))) == NULL)
		return -1;
	memcpy(&cfg, p, sizeof(cfg));
	if (cfg.ntrusted > MSG_WCONFIG_TRUSTED_MAX ||
	    (p = cur_blob(&c, cfg.ntrusted * sizeof(w->trusted[0]))) == NULL ||
	    cur_str(&c, dir, sizeof(dir)) == -1 || cur_end(&c) == -1)
		return -1;
	memcpy(w->trusted, p, cfg.ntrusted * sizeof(w->trusted[0]));
	cfg.tunnel_hop[sizeof(cfg.tunnel_hop) - 1] = '\0';	/* a path, whatever came */
	if (cfg.max_conns == 0)
		cfg.max_conns = 1;
	if (cfg.access_log_sample == 0)
		cfg.access_log_sample = 1;
	/* A relay (the tunnel process) carries requests a worker took and logs: one line each. */
	if (w->role != NULL)
		cfg.access_log = 0;
	cfg.cache_path[sizeof(cfg.cache_path) - 1] = '\0';
	/* The first one opens the cache (before the sandbox); a new path needs a restart. */
	if (w->cache != NULL)
		memcpy(cfg.cache_path, w->cfg.cache_path, sizeof(cfg.cache_path));
	w->cfg = cfg;
	if (cache_open(w) == -1)
		log_warnx("serving without the cache");
	errpage_load(&w->errpages, dir);
	tls_set_http2(w->tls, w->cfg.http2 != 0);
	tls_set_ondemand(w->tls, w->cfg.ondemand_wait_ms > 0 && w->role == NULL ? odwait_ask : NULL,
	    w->odwait);
	listen_update(w);
	return 0;
}

/* Redirects to https:// name the port of an HTTPS listener. */
static void
worker_note_https_port(struct worker *w, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		log_warn("HTTPS listener address");
		return;
	}
	if (ss.ss_family == AF_INET)
		tls_set_https_port(w->tls, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	else if (ss.ss_family == AF_INET6)
		tls_set_https_port(w->tls, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
}

static int
on_listener(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	struct msg_listener ml;
	struct listener *ls;

	memcpy(&ml, m->data, sizeof(ml));
	if (w->nlst == WORKER_MAX_LISTENERS || w->stopping) {
		log_warnx("listener %u refused", ml.id);
		return 0;	/* the fd is closed by the caller */
	}
	ls = &w->lst[w->nlst++];
	memset(ls, 0, sizeof(*ls));
	ls->w = w;
	ls->fd = m->fd;
	ls->id = ml.id;
	ls->kind = ml.kind;
	ls->proxy = ml.proxy;
	m->fd = -1;
	if (util_set_nonblock(ls->fd) == -1)
		log_warn("listener %u", ml.id);
	listen_note_local(ls);
	if (ls->kind == LISTENER_HTTPS)
		worker_note_https_port(w, ls->fd);
	listen_update(w);
	return 0;
}

static int
on_keyring(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	char err[256];

	/* Refused: the snapshot of this generation will be NACKed (see on_snap). */
	w->keyring_failed = tls_install_keyring(w->tls, m->fd, m->h.gen, err, sizeof(err)) == -1;
	if (w->keyring_failed)
		log_warnx("keyring of generation %u refused: %s", m->h.gen, err);
	else
		odwait_keyring(w->odwait);
	/*
	 * Only a worker with TLS connections wakes for their tidy: a timer
	 * more in the heap changes the order of others due at the same
	 * millisecond (test_datapath's body timeout against the backend's).
	 */
	if (!w->keyring_failed && !ev_timer_armed(&w->tls_tidy_timer))
		ev_timer_start(w->loop, &w->tls_tidy_timer, WORKER_TLS_TIDY_MS);
	return 0;
}

static int
worker_has_https(const struct worker *w)
{
	size_t i;

	for (i = 0; i < w->nlst; i++)
		if (w->lst[i].kind == LISTENER_HTTPS)
			return 1;
	return 0;
}

/*
 * A worker's first snapshot comes after the shared region, the config and
 * every listener (the tunnel process's MSG_T_START after its own): from
 * here on the process only runs its loop, so its filter goes in. One that
 * cannot have the filter it was asked for does not serve.
 */
void
worker_sandbox(struct worker *w, enum sandbox_role role)
{
	if (!w->sandbox || w->sandboxed)
		return;
	if (sandbox_enter(role) == -1)
		fatalx("cannot enter the sandbox (haloyd.conf `sandbox off` runs without one)");
	w->sandboxed = 1;
}

/* Drops the generation being received. */
static void
snap_next_clear(struct worker *w)
{
	snap_unref(w->snap_next);
	w->snap_next = NULL;
	w->snap_next_images = 0;
	w->snap_next_err[0] = '\0';
}

/* One image of generation m->h.gen into the set being put together; a failure is kept. */
static void
snap_receive(struct worker *w, struct ipc_msg *m)
{
	char *err = w->snap_next_err;
	size_t errlen = sizeof(w->snap_next_err);

	if (m->h.gen != w->snap_next_gen) {
		snap_next_clear(w);
		w->snap_next_gen = m->h.gen;
	}
	if (err[0] != '\0' || m->fd < 0)
		return;
	if (w->snap_next == NULL && (w->snap_next = snap_set_new(w->snap, err, errlen)) == NULL)
		return;
	if (snap_set_add(w->snap_next, m->fd, err, errlen) == 0)
		w->snap_next_images++;
}

/* The generation's set, finished; NULL (none yet) only when nothing ever came. */
static int
snap_complete(struct worker *w, struct snap **out, char *err, size_t errlen)
{
	*out = NULL;
	if (w->snap_next_err[0] != '\0')
		return util_errf(err, errlen, "%s", w->snap_next_err);
	if (w->snap_next == NULL && w->snap == NULL)
		return 0;
	if (w->snap_next == NULL && (w->snap_next = snap_set_new(w->snap, err, errlen)) == NULL)
		return -1;
	if (snap_set_finish(w->snap_next, w->snap_next_gen, err, errlen) == -1)
		return -1;
	*out = w->snap_next;
	w->snap_next = NULL;
	return 0;
}

static int
on_snap(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	struct snap *s = NULL;
	struct msg_snap ms;
	char err[256];

	memcpy(&ms, m->data, sizeof(ms));
	snap_receive(w, m);
	if (!(ms.flags & MSG_SNAP_LAST))
		return 0;
	/* Acking promises the generation's certificates too: they come in its keyring first. */
	if (w->keyring_failed || (worker_has_https(w) && !tls_ready(w->tls))) {
		snprintf(err, sizeof(err), "no usable keyring for generation %u", m->h.gen);
		log_warnx("generation %u refused: %s", m->h.gen, err);
		worker_nack(w, m->h.gen, err);
		snap_next_clear(w);
		return 0;
	}
	if (snap_complete(w, &s, err, sizeof(err)) == -1) {
		log_warnx("generation %u refused: %s", m->h.gen, err);
		worker_nack(w, m->h.gen, err);
		snap_next_clear(w);
		return 0;
	}
	snap_next_clear(w);
	/* In-flight requests hold their own reference to the old map. */
	if (w->snap != NULL)
		snap_unref(w->snap);
	w->snap = s;
	w->gen = m->h.gen;
	if (s != NULL)
		tlsclient_snapshot(w, s);
	probe_snapshot(w);
	shm_set(&w->stats->generation, w->gen);
	if (!w->snap_ready) {
		w->snap_ready = 1;
		listen_update(w);
	}
	worker_sandbox(w, SANDBOX_WORKER);
	log_debug("serving generation %u", w->gen);
	if (ipc_send(w->parent, MSG_W_ACK, 0, w->gen, NULL, 0, -1) == -1)
		log_warn("sending ACK");
	return 0;
}

/* The shared region: from now on this worker counts in its own slot of it. */
static int
on_shm(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	char err[256];

	if (w->shm.base != NULL || shm_map(m->fd, &w->shm, err, sizeof(err)) == -1 ||
	    (uint32_t)w->index >= w->shm.nslots) {
		log_warnx("shared region refused: %s", w->shm.base != NULL ? "sent twice" :
		    (uint32_t)w->index >= w->shm.nslots ? "no slot for this worker" : err);
		return -1;
	}
	/* A respawned worker continues its predecessor's counters; its gauges start over. */
	w->stats = &w->shm.slots[w->index];
	shm_add(&w->stats->starts, 1);
	shm_set(&w->stats->pid, (uint64_t)getpid());
	shm_set(&w->stats->connections, w->nconns);
	shm_set(&w->stats->generation, w->gen);
	return 0;
}

static int
on_status_req(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	struct msg_wstatus st = { w->requests, w->nconns, w->gen };

	if (ipc_send(w->parent, MSG_W_STATUS, m->h.seq, w->gen, &st, sizeof(st), -1) == -1)
		log_warn("sending status");
	return 0;
}

static int
on_stop(void *arg, struct ipc_msg *m)
{
	struct msg_stop s;

	memcpy(&s, m->data, sizeof(s));
	((struct worker *)arg)->stop_keep_fresh = s.handover != 0;
	worker_stop(arg, s.deadline_ms);
	return 0;
}

static const struct ipc_handler worker_handlers[] = {
	{ MSG_HELLO, IPC_FD_NONE, sizeof(struct msg_hello), sizeof(struct msg_hello), child_on_hello },
	{ MSG_W_CONFIG, IPC_FD_NONE, sizeof(struct msg_wconfig), MSG_WCONFIG_MAX_LEN, on_config },
	{ MSG_W_LISTENER, IPC_FD_REQUIRED, sizeof(struct msg_listener), sizeof(struct msg_listener),
	  on_listener },
	{ MSG_W_KEYRING, IPC_FD_REQUIRED, 0, 0, on_keyring },
	{ MSG_W_SNAP, IPC_FD_OPTIONAL, sizeof(struct msg_snap), sizeof(struct msg_snap), on_snap },
	{ MSG_W_SHM, IPC_FD_REQUIRED, 0, 0, on_shm },
	{ MSG_W_STATUS_REQ, IPC_FD_NONE, 0, 0, on_status_req },
	{ MSG_W_STOP, IPC_FD_NONE, sizeof(struct msg_stop), sizeof(struct msg_stop), on_stop },
	{ MSG_W_ONDEMAND_NO, IPC_FD_NONE, 2 + 1, 2 + MSG_NAME_MAX, odwait_on_no },
};

int
worker_dispatch(struct worker *w, struct ipc_msg *m)
{
	size_t i;

	for (i = 0; w->role != NULL && i < w->role->nhandlers; i++)
		if (w->role->handlers[i].type == m->h.type)
			return ipc_dispatch(w->role->handlers, w->role->nhandlers, w, m);
	return ipc_dispatch(worker_handlers, ARRAY_LEN(worker_handlers), w, m);
}

static void
worker_on_parent(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct worker *w = io->arg;
	int i, n;

	(void)l;
	(void)events;
	for (i = 0; i < 64; i++) {
		n = ipc_recv(w->parent, w->rx);
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == 1) {
			if (worker_dispatch(w, w->rx) == -1)
				log_warnx("bad message %u from the master", w->rx->h.type);
			ipc_msg_close_fd(w->rx);
			continue;
		}
		/* The master is gone (or broke the protocol): nobody will stop us but ourselves. */
		log_warnx("lost the master%s", n == 0 ? "" : " (bad message)");
		ev_io_stop(w->loop, &w->parent_io);
		worker_stop(w, ORPHAN_DEADLINE_MS);
		return;
	}
}

static void
worker_on_signal(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct worker *w = io->arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(w->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			worker_stop(w, ORPHAN_DEADLINE_MS);
#ifdef HALOYD_TESTING
		if (si.ssi_signo == SIGUSR1)
			sandbox_test_violate();
#endif
	}
}

#ifdef HALOYD_TESTING
/*
 * Test builds only: with HALOYD_TEST_SANDBOX_SIGUSR1 in the environment at
 * start, SIGUSR1 makes the worker call what no sandbox allows
 * (tests/integration/test_sandbox.py). Whoever can signal the worker can
 * kill it anyway, and other builds do not have this code at all.
 */
static void
worker_test_hooks(struct worker *w)
{
	sigset_t set;

	if (getenv("HALOYD_TEST_SANDBOX_SIGUSR1") == NULL)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (signalfd(w->sigfd, &set, SFD_NONBLOCK | SFD_CLOEXEC) == -1)
		fatal("signalfd");
}
#endif

static void
worker_on_tidy(struct ev_loop *l, struct ev_timer *t)
{
	struct worker *w = t->arg;

	buf_pool_trim(&w->bufs);
	ev_timer_start(l, &w->tidy_timer, WORKER_TIDY_MS);
}

static void
worker_on_tls_tidy(struct ev_loop *l, struct ev_timer *t)
{
	struct worker *w = t->arg;

	tls_tidy(w->tls);
	ev_timer_start(l, &w->tls_tidy_timer, WORKER_TLS_TIDY_MS);
}

static void
worker_setup(struct worker *w, const struct worker_args *a)
{
	w->sigfd = child_signalfd();
#ifdef HALOYD_TESTING
	worker_test_hooks(w);
#endif
	if ((w->loop = ev_loop_new()) == NULL || (w->rx = malloc(sizeof(*w->rx))) == NULL ||
	    h1client_pools_init(w) == -1 || h2client_pools_init(w) == -1 ||
	    tlsclient_init(w) == -1 || (w->tls = tls_new(&w->snap)) == NULL ||
	    (w->odwait = odwait_new(w, odwait_send_master)) == NULL ||
	    (w->own_stats = aligned_alloc(SHM_ALIGN, sizeof(*w->own_stats))) == NULL)
		fatalx("out of memory");
	memset(w->own_stats, 0, sizeof(*w->own_stats));
	w->stats = w->own_stats;
	tls_set_stats(w->tls, &w->stats);
	if (ev_io_start(w->loop, &w->parent_io, w->parent, EPOLLIN, worker_on_parent, w) == -1 ||
	    ev_io_start(w->loop, &w->sig_io, w->sigfd, EPOLLIN, worker_on_signal, w) == -1)
		fatalx("cannot watch the master socket");
	ev_timer_init(&w->stop_timer, worker_on_deadline, w);
	ev_timer_init(&w->stop_grace, worker_on_grace, w);
	ev_timer_init(&w->tidy_timer, worker_on_tidy, w);
	ev_timer_start(w->loop, &w->tidy_timer, WORKER_TIDY_MS);
	ev_timer_init(&w->tls_tidy_timer, worker_on_tls_tidy, w);	/* started by a keyring */
	if (util_random(&w->reqid_base, sizeof(w->reqid_base)) == -1)
		w->reqid_base = (uint64_t)getpid() << 32;
	if (w->role != NULL && w->role->start != NULL && w->role->start(w) == -1)
		fatalx("cannot start");
	/* Workers probe; the tunnel process (a role) serves no routes of its own. */
	if (w->role == NULL && probe_init(w) == -1)
		fatalx("out of memory");
	child_hello(w->parent, w->role != NULL ? w->role->hello_role : ROLE_WORKER,
	    a->index < 0 ? 0 : (uint32_t)a->index);
}

static void
worker_cleanup(struct worker *w)
{
	conn_close_all(w);
	probe_free(w);
	ev_run_once(w->loop, 0);	/* runs the deferred frees */
	listen_close_all(w);
	h1client_pools_free(w);
	h2client_pools_free(w);
	ev_run_once(w->loop, 0);	/* the HTTP/2 sessions' deferred frees */
	/* After the sessions: an agent's session tells its role it is gone as it closes. */
	if (w->role != NULL && w->role->cleanup != NULL)
		w->role->cleanup(w);
	tlsclient_free(w);
	cache_close(w);
	balance_free(&w->balance);
	if (w->snap != NULL)
		snap_unref(w->snap);
	snap_unref(w->snap_next);
	tls_free(w->tls);
	odwait_free(w->odwait);
	buf_pool_clear(&w->bufs);
	errpage_free(&w->errpages);
	ev_io_stop(w->loop, &w->parent_io);
	ev_io_stop(w->loop, &w->sig_io);
	ev_loop_free(w->loop);
	close(w->sigfd);
	close(w->parent);
	free(w->rx);
	shm_unmap(&w->shm);
	free(w->own_stats);
}

int
worker_main(const struct worker_args *a)
{
	return worker_run(a, NULL);
}

int
worker_run(const struct worker_args *a, const struct worker_role *role)
{
	struct worker w;

	memset(&w, 0, sizeof(w));
	w.role = role;
	w.index = a->index;
	w.parent = PARENT_FD;
	w.bufs.size = BUF_SIZE;
	w.cfg.max_conns = 1;	/* nothing is accepted before the master's config */
	w.sandbox = a->sandbox;
	log_init(role != NULL ? role->name : "worker", a->index, (enum log_target)a->log_target,
	    a->verbose);
	if (privdrop(a->user) == -1)
		fatalx("cannot drop privileges");
	worker_setup(&w, a);
	if (!w.sandbox)
		log_warnx("running without a sandbox (sandbox off)");
	log_debug("started");
	if (ev_run(w.loop) == -1)
		log_warn("event loop");
	worker_cleanup(&w);
	log_info("stopped after %llu requests", (unsigned long long)w.requests);
	return 0;
}
