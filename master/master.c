/*
 * The master: start-up (configuration, store, listeners, first generation,
 * control socket, workers), the signal-driven loop, reload and graceful
 * stop. Signals arrive through a signalfd, so handlers never run our code.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master/cachedir.h"
#include "master/cluster.h"
#include "master/acmemaster.h"
#include "master/tunnels.h"
#include "master/control.h"
#include "master/fdstore.h"
#include "master/handover.h"
#include "master/inherit.h"
#include "master/dnsmaster.h"
#include "master/drainscope.h"
#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/metrics.h"
#include "master/notify.h"
#include "master/publish.h"
#include "master/scopebus.h"
#include "master/proc.h"
#include "master/store.h"
#include "master/takeover.h"
#include "master/workers.h"
#include "master/wrapper.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/util.h"

#define STOP_GRACE_MS 2000	/* after the stop deadline, before SIGKILL */

/* Creates dir with mode if it is missing; an existing one is left as it is. */
static int
ensure_dir(const char *dir, mode_t mode)
{
	if (mkdir(dir, mode) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", dir);
		return -1;
	}
	return 0;
}

/* Who the workers run as, and who may use the control socket. */
static int
resolve_identities(struct master *m)
{
	struct passwd *pw;
	struct group *gr;

	if ((gr = getgrnam(m->cfg.admin_group)) != NULL) {
		m->admin_gid = gr->gr_gid;
		m->have_admin_group = 1;
	}
	if (geteuid() != 0) {
		log_warnx("not started as root: workers keep uid %u", (unsigned)geteuid());
		return 0;
	}
	if ((pw = getpwnam(m->cfg.user)) == NULL) {
		log_warnx("user '%s' does not exist: create it or set `user` in haloyd.conf",
		    m->cfg.user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_warnx("user '%s' is root: workers must not run as root", m->cfg.user);
		return -1;
	}
	m->worker_uid = pw->pw_uid;
	return 0;
}

static int
open_store(struct master *m)
{
	char path[4096];

	if (ensure_dir(m->cfg.state_dir, 0700) == -1)
		return -1;
	if (m->cfg.store != NULL) {
		if (store_open(m->cfg.store, &m->store) != STORE_OK) {
			log_warnx("cannot open the PostgreSQL store");
			return -1;
		}
		return cluster_init(m);
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", m->cfg.state_dir, HALOYD_STORE_FILE) >=
	    sizeof(path)) {
		log_warnx("state_dir is too long");
		return -1;
	}
	if (store_open(path, &m->store) != STORE_OK) {
		log_warnx("cannot open the store %s", path);
		return -1;
	}
	return 0;
}

static int
open_runtime_dir(struct master *m)
{
	struct stat st;

	if (ensure_dir(m->cfg.runtime_dir, 0750) == -1)
		return -1;
	/*
	 * Admins reach control.sock through this folder: root:admin_group 0750
	 * (umask 077 made it 0700; systemd's RuntimeDirectory= makes it root's).
	 * A shared sticky folder such as /tmp is never taken over.
	 */
	if (geteuid() == 0 && m->have_admin_group &&
	    stat(m->cfg.runtime_dir, &st) == 0 && (st.st_mode & S_ISVTX) == 0 &&
	    (chown(m->cfg.runtime_dir, 0, m->admin_gid) == -1 ||
	    chmod(m->cfg.runtime_dir, 0750) == -1))
		log_warn("runtime_dir %s: cannot give it to group %s", m->cfg.runtime_dir,
		    m->cfg.admin_group);
	return 0;
}

int
master_reload(struct master *m)
{
	struct conf fresh;
	char err[512];

	notify_reloading();
	if (conf_load(&fresh, m->argc, m->argv, err, sizeof(err)) != 0) {
		log_warnx("reload: %s; keeping the running configuration", err);
		notify_reloaded(m);
		return -1;
	}
	if (fresh.renamed[0] != '\0')
		log_warnx("%s: %s", fresh.config_file, fresh.renamed);
	if (fresh.listen_http.n != m->cfg.listen_http.n ||
	    fresh.listen_https.n != m->cfg.listen_https.n || fresh.workers != m->cfg.workers ||
	    fresh.listen_http.proxy != m->cfg.listen_http.proxy ||
	    fresh.listen_https.proxy != m->cfg.listen_https.proxy ||
	    strcmp(fresh.state_dir, m->cfg.state_dir) != 0 ||
	    strcmp(fresh.runtime_dir, m->cfg.runtime_dir) != 0 ||
	    strcmp(fresh.user, m->cfg.user) != 0)
		log_warnx("reload: listen addresses, workers, directories and user change only "
		    "at restart");
	if (tunnels_conf_changed(&m->cfg, &fresh))
		log_warnx("reload: listen_tunnel and the tunnel_* settings change only at restart");
	m->cfg.access_log = fresh.access_log;
	m->cfg.stop_timeout_ms = fresh.stop_timeout_ms;
	m->cfg.upgrade_drain_ms = fresh.upgrade_drain_ms;
	m->cfg.header_timeout_ms = fresh.header_timeout_ms;
	m->cfg.keepalive_timeout_ms = fresh.keepalive_timeout_ms;
	m->cfg.connect_timeout_ms = fresh.connect_timeout_ms;
	m->cfg.response_timeout_ms = fresh.response_timeout_ms;
	m->cfg.idle_timeout_ms = fresh.idle_timeout_ms;
	m->cfg.max_connections = fresh.max_connections;
	m->cfg.upgrade_timeout_ms = fresh.upgrade_timeout_ms;
	m->cfg.body_timeout_ms = fresh.body_timeout_ms;
	m->cfg.backend_down_ms = fresh.backend_down_ms;
	m->cfg.max_body = fresh.max_body;
	m->cfg.access_log_sample = fresh.access_log_sample;
	m->cfg.http2 = fresh.http2;
	m->cfg.h2_max_streams = fresh.h2_max_streams;
	m->cfg.rate_rpm = fresh.rate_rpm;
	m->cfg.rate_burst = fresh.rate_burst;
	m->cfg.rate_nodelay = fresh.rate_nodelay;
	m->cfg.rate_dry_run = fresh.rate_dry_run;
	m->cfg.max_conns_per_ip = fresh.max_conns_per_ip;
	/* A filter cannot be taken back: children started from now on follow it. */
	m->cfg.sandbox = fresh.sandbox;
	/* Takes effect at the next rotation. */
	m->cfg.ticket_key_lifetime_ms = fresh.ticket_key_lifetime_ms;
	/* Swapped, so conf_free(&fresh) frees the old ones. */
	SWAP(m->cfg.trusted_proxies, fresh.trusted_proxies);
	SWAP(m->cfg.error_pages, fresh.error_pages);
	log_set_verbose(fresh.verbose > m->cfg.verbose ? fresh.verbose : m->cfg.verbose);
	SWAP(m->cfg.resolver, fresh.resolver);
	m->cfg.resolve_min_ttl_ms = fresh.resolve_min_ttl_ms;
	m->cfg.resolve_max_ttl_ms = fresh.resolve_max_ttl_ms;
	conf_free(&fresh);
	workers_send_config(m);
	tunnels_send_config(m);
	dnsmaster_reload(m);
	/* Also the way to make the master read a store changed behind its back. */
	rtable_invalidate(&m->rt);
	log_info("configuration reloaded from %s", m->cfg.config_file);
	notify_reloaded(m);
	return 0;
}

static void
stop_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;

	(void)l;
	if (workers_running(m) > 0) {
		log_warnx("workers still running after the stop deadline; killing them");
		workers_kill_all(m);
	}
	if (tunnels_running(m)) {
		log_warnx("the tunnel process is still running after the stop deadline; killing it");
		tunnels_kill(m);
	}
}

static void
master_wind_down(struct master *m, int exit_code, uint64_t deadline_ms)
{
	m->stopping = 1;
	m->exit_code = exit_code;
	log_info("stopping: in-flight requests have %llu ms to finish",
	    (unsigned long long)deadline_ms);
	control_close(m);
	if (handover_draining(m))
		metrics_unlisten(m);	/* a scrape taken from the shared queue is answered */
	else
		metrics_close(m);
	acme_stop(m);
	workers_stop_all(m, (uint32_t)deadline_ms);
	tunnels_stop(m, (uint32_t)deadline_ms);
	ev_timer_start(m->loop, &m->stop_timer, deadline_ms + STOP_GRACE_MS);
}

void
master_stop(struct master *m, int exit_code)
{
	if (m->stopping)
		return;
	notify_stopping();
	master_wind_down(m, exit_code, m->cfg.stop_timeout_ms);
}

void
master_drain(struct master *m)
{
	if (m->stopping)
		return;
	/* The unit's MAINPID is the new master now: STOPPING=1 would be about it. */
	master_wind_down(m, 0, m->cfg.upgrade_drain_ms);
}

/* The pids of the children that drain in a scope: the workers and the tunnel process. */
static size_t
drain_pids(const struct master *m, pid_t *pids, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < m->nworkers && n < max; i++)
		if (m->workers[i].proc.pid > 0)
			pids[n++] = m->workers[i].proc.pid;
	if (tunnels_pid(m) > 0 && n < max)
		pids[n++] = tunnels_pid(m);
	return n;
}

/*
 * SIGTERM under systemd: when its job is a restart, the children move to a
 * scope of their own and drain there for up to upgrade_drain while the
 * master exits at once (master/drainscope.h). 0 when they did; -1 (the
 * reason logged once) and the caller stops as before. Any other stop also
 * stops the scopes earlier restarts left: only a restart leaves a process.
 */
static int
master_drain_in_scope(struct master *m)
{
	pid_t pids[SHM_WORKERS_MAX + 1];
	char why[160];
	size_t n = drain_pids(m, pids, ARRAY_LEN(pids));
	void *bus;
	int r;

	if (getenv("NOTIFY_SOCKET") == NULL) {
		log_info("the workers stop with the master: not run by systemd");
		return -1;
	}
	if ((bus = scopebus_open(why, sizeof(why))) == NULL) {
		log_warnx("the workers stop with the service, not moved to a scope: %s", why);
		return -1;
	}
	r = drainscope_restarting(&scopebus_ops, bus, getpid(), why, sizeof(why));
	if (r == 1 && drainscope_move(&scopebus_ops, bus, getpid(), pids, n,
	    m->cfg.stop_timeout_ms + STOP_GRACE_MS, why, sizeof(why)) == -1)
		r = -1;
	if (r != 1) {
		if (r == 0)
			log_info("the workers stop with the service: %s; %d draining scopes stopped",
			    why, drainscope_stop_all(&scopebus_ops, bus));
		else
			log_warnx("the workers stop with the service, not moved to a scope: %s", why);
		scopebus_close(bus);
		return -1;
	}
	scopebus_close(bus);
	notify_stopping();
	m->drain_scope = 1;
	master_wind_down(m, 0, m->cfg.upgrade_drain_ms);
	drainscope_name(getpid(), why, sizeof(why));
	log_info("restart: %zu children drain in %s for up to %llu ms; the master exits now", n,
	    why, (unsigned long long)m->cfg.upgrade_drain_ms);
	ev_break(m->loop);
	return 0;
}

static void
signal_read(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct master *m = io->arg;
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
			if (!m->stopping && master_drain_in_scope(m) == 0)
				return;
			master_stop(m, 0);
			break;
		case SIGINT:
			master_stop(m, 0);
			break;
		case SIGHUP:
			log_info("SIGHUP: reloading %s", m->cfg.config_file);
			if (master_reload(m) == 0)
				(void)publish_changed(m);	/* as haloyd-ctl reload */
			break;
		case SIGCHLD:
			proc_reap(m);
			break;
		}
	}
	if (m->stopping && workers_running(m) == 0 && !tunnels_running(m))
		ev_break(m->loop);
}

static int
signals_init(struct master *m)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1 ||
	    ev_io_start(m->loop, &m->sigio, m->sigfd, EPOLLIN, signal_read, m) == -1) {
		log_warn("signals");
		return -1;
	}
	return 0;
}

/* HALOYD_WORKER_WRAPPER: workers exec'd under a profiler (master/wrapper.h). */
static int
master_wrapper(struct master *m)
{
	const char *spec = getenv(WRAPPER_ENV);
	char exe[PATH_MAX], err[256];
	ssize_t n;

	if (spec == NULL)
		return 0;
	if ((m->wrap = malloc(sizeof(*m->wrap))) == NULL) {
		log_warn("malloc");
		return -1;
	}
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) == -1) {
		log_warn("readlink /proc/self/exe");
		return -1;
	}
	exe[n] = '\0';
	if (wrapper_parse(m->wrap, spec, err, sizeof(err)) == -1 ||
	    wrapper_resolve(m->wrap, getenv("PATH"), exe, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	m->ack_grace_ms = WRAPPER_ACK_GRACE_MS;
	log_warnx("workers run under %s (%s), without their sandbox", m->wrap->prog, WRAPPER_ENV);
	return 0;
}

/* Everything up to the loop; fatal on failure, as nothing is serving yet. */
static void
master_start(struct master *m)
{
	struct inherit inh;
	char err[256];

	if ((m->rx = malloc(sizeof(*m->rx))) == NULL || (m->loop = ev_loop_new()) == NULL)
		fatal("start-up");
	m->start_ms = util_now_ms();
	m->nworkers = (size_t)m->cfg.workers;
	publish_init(m);
	ev_timer_init(&m->stop_timer, stop_fire, m);
	if ((m->self_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("open /proc/self/exe");
	inherit_init(&inh);
	if (master_wrapper(m) == -1)
		fatalx("cannot start");
	if (resolve_identities(m) == -1 || signals_init(m) == -1 || handover_init(m) == -1 ||
	    open_runtime_dir(m) == -1)
		fatalx("cannot start");
	(void)fdstore_take(&inh);
	/* Before the store: the old master is read-only once this returns 0. */
	if (m->cfg.takeover && takeover_fetch(m, &inh) == -1)
		fatalx("takeover refused: the running master keeps serving");
	if (open_store(m) == -1)
		fatalx("cannot start");
	if (cachedir_prepare(m) == -1)
		log_warnx("the workers may serve without the response cache");
	if (listeners_adopt(&m->lst, m->cfg.listen_http.v, m->cfg.listen_http.n, m->nworkers,
	    LISTENER_HTTP, &inh) == -1 ||
	    (m->cfg.listen_https.n > 0 && listeners_adopt(&m->lst_https, m->cfg.listen_https.v,
	    m->cfg.listen_https.n, m->nworkers, LISTENER_HTTPS, &inh) == -1))
		fatalx("cannot open the listeners");
	if (mkeyring_init(m) == -1)
		fatalx("cannot set up the certificates and session-ticket keys");
	if ((m->shm_fd = shm_create(m->cfg.shared_memory_size, (uint32_t)m->nworkers, &m->shm, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	if (workers_init(m) == -1)
		fatal("workers");
	if (dnsmaster_init(m, err, sizeof(err)) == -1)
		fatalx("%s", err);
	if (publish_build(m) == -1)
		fatalx("cannot build the first generation");
	if (control_open(m) == -1)
		fatalx("cannot open the control socket");
	if (metrics_open(m, &inh) == -1)
		fatalx("cannot open the metrics listeners");
	notify_init(m);
	workers_spawn_all(m);
	if (acme_init(m) == -1)
		fatalx("cannot start the ACME child");
	if (tunnels_init(m, &inh) == -1)
		fatalx("cannot start the tunnel process");
	/* Last: the metrics and tunnel listeners are taken from the set too. */
	fdstore_drop_unused(&inh);
	(void)inherit_close_rest(&inh);
}

static void
master_cleanup(struct master *m)
{
	control_close(m);
	metrics_close(m);
	ev_run_once(m->loop, 0);	/* runs the deferred frees */
	acme_free(m);
	acmeshare_free(m);
	takeover_free(m);
	handover_free(m);
	tunnels_free(m);
	dnsmaster_free(m);
	listeners_close(&m->lst);
	listeners_close(&m->lst_https);
	mkeyring_free(m);
	cluster_free(m);
	store_close(m->store);
	rtable_free(&m->rt);
	publish_close(m);
	close(m->self_fd);
	free(m->wrap);
	close(m->sigfd);
	shm_unmap(&m->shm);
	if (m->shm_fd >= 0)
		close(m->shm_fd);
	ev_loop_free(m->loop);
	free(m->workers);
	free(m->rx);
	conf_free(&m->cfg);
}

int
master_main(int argc, char **argv)
{
	struct master m;
	char err[512];
	int rc;

	memset(&m, 0, sizeof(m));
	umask(077);
	log_init("master", -1, LOG_TARGET_STDERR, 0);
	m.argc = argc;
	m.argv = argv;
	if ((rc = conf_load(&m.cfg, argc, argv, err, sizeof(err))) != 0) {
		conf_free(&m.cfg);
		if (rc == 1)
			return 0;
		fprintf(stderr, "haloyd: %s\n", err);
		return 1;
	}
	if (m.cfg.test_only && m.cfg.store != NULL &&
	    (rc = store_probe(m.cfg.store, err, sizeof(err))) != 0) {
		fprintf(stderr, "haloyd: %s\n", err);
		if (rc == -1) {
			conf_free(&m.cfg);
			return 1;
		}
	}
	if (m.cfg.test_only) {
		printf("haloyd: configuration %s is valid\n", m.cfg.config_file);
		conf_free(&m.cfg);
		return 0;
	}
	log_init("master", -1, log_target_parse(m.cfg.log_target), m.cfg.verbose);
	log_info("haloyd %s starting (%llu workers)", PACKAGE_VERSION,
	    (unsigned long long)m.cfg.workers);
	if (m.cfg.renamed[0] != '\0')
		log_warnx("%s: %s", m.cfg.config_file, m.cfg.renamed);
	master_start(&m);
	if (ev_run(m.loop) == -1)
		log_warn("event loop");
	log_info("stopped");
	rc = m.exit_code;
	master_cleanup(&m);
	return rc;
}
