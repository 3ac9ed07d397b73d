/*
 * The old master's half of the hand-over (ARCHITECTURE.md, Upgrades). One
 * hand-over at a time: `haloyd-ctl upgrade` waits (its client stays busy)
 * until the new master reports ready or the attempt is rolled back. From
 * MSG_C_TAKEOVER on we are read-only (PRAGMA query_only, no ACME child, no
 * control listener); a rollback undoes exactly that.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/sched.h>	/* CLONE_PIDFD */

#include "master/acmemaster.h"
#include "master/control.h"
#include "master/handover.h"
#include "master/master.h"
#include "master/metrics.h"
#include "master/notify.h"
#include "master/store.h"
#include "master/tunnels.h"
#include "share/cursor.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define CHECK_OUTPUT_MAX 4096	/* what we read of `haloyd -t`'s output */

struct handover {
	char path[PATH_MAX];	/* the binary to start: where we were started from */
	pid_t child;		/* the new master we started, 0 none */
	int child_fd;		/* its pidfd when started as our sibling, else -1 */
	struct ev_io child_io;	/* child_fd readable: it exited */
	struct cclient *waiter;	/* the haloyd-ctl upgrade that waits */
	struct cclient *peer;	/* the new master's control connection */
	int readonly;		/* store read-only, no ACME, no control listener */
	int done;		/* the new master serves: we drain */
	struct ev_timer timer;	/* HANDOVER_READY_MS */
};

static void rollback(struct master *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ready_late(struct ev_loop *l, struct ev_timer *t);
static void child_forget(struct master *m);

/* argv[0] with a '/' is a path (made absolute); a bare name is looked up in $PATH. */
static int
resolve_path(const char *argv0, char *out, size_t len)
{
	char cwd[PATH_MAX], dir[PATH_MAX];
	const char *p, *e;

	if (argv0[0] == '/')
		return util_strlcpy(out, argv0, len) < len ? 0 : -1;
	if (strchr(argv0, '/') != NULL)
		return getcwd(cwd, sizeof(cwd)) != NULL &&
		    (size_t)snprintf(out, len, "%s/%s", cwd, argv0) < len ? 0 : -1;
	for (p = getenv("PATH") != NULL ? getenv("PATH") : "/usr/sbin:/usr/bin"; *p != '\0'; p = e) {
		e = strchr(p, ':') != NULL ? strchr(p, ':') + 1 : p + strlen(p);
		if ((size_t)(e - p) >= sizeof(dir))
			continue;
		snprintf(dir, sizeof(dir), "%.*s", (int)(e - p - (*(e - 1) == ':')), p);
		if (dir[0] == '/' && (size_t)snprintf(out, len, "%s/%s", dir, argv0) < len &&
		    access(out, X_OK) == 0)
			return 0;
	}
	return -1;
}

int
handover_init(struct master *m)
{
	struct handover *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return -1;
	m->handover = h;
	h->child_fd = -1;
	ev_timer_init(&h->timer, ready_late, m);
	if (m->argc < 1 || resolve_path(m->argv[0], h->path, sizeof(h->path)) == -1)
		log_warnx("cannot tell where haloyd was started from: `haloyd-ctl upgrade` "
		    "will refuse");
	return 0;
}

void
handover_free(struct master *m)
{
	if (m->handover == NULL)
		return;
	ev_timer_stop(m->loop, &m->handover->timer);
	child_forget(m);
	free(m->handover);
	m->handover = NULL;
}

/* Our command line without --takeover, then extra (NULL-terminated); free it. */
static char **
new_argv(const struct master *m, const char *extra)
{
	char **v = calloc((size_t)m->argc + 2, sizeof(*v));
	int i, n = 0;

	if (v == NULL)
		return NULL;
	for (i = 0; i < m->argc; i++)
		if (i == 0 || strcmp(m->argv[i], "--takeover") != 0)
			v[n++] = m->argv[i];
	v[n++] = (char *)(uintptr_t)extra;
	v[n] = NULL;
	return v;
}

/* In the child: our signal mask and SIGPIPE disposition are not the program's. */
static _Noreturn void
exec_child(const char *path, char **argv, int out)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (out >= 0 && (dup2(out, STDOUT_FILENO) == -1 || dup2(out, STDERR_FILENO) == -1))
		_exit(127);
	execv(path, argv);
	_exit(127);
}

/* The last non-empty line of buf, in place. */
static const char *
last_line(char *buf)
{
	char *nl;

	while ((nl = strrchr(buf, '\n')) != NULL && nl[1] == '\0')
		*nl = '\0';
	return (nl = strrchr(buf, '\n')) != NULL ? nl + 1 : buf;
}

/* Reads the check's output until it closes it or the deadline passes; 0 or -1 (late). */
static int
read_output(int fd, char *buf, size_t size, uint64_t deadline)
{
	size_t got = 0;
	ssize_t n;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t now = util_now_ms();

		if (now >= deadline)
			return -1;
		if (poll(&pfd, 1, (int)(deadline - now)) == -1 && errno != EINTR)
			return -1;
		if ((n = read(fd, buf + got, size - 1 - got)) == 0)
			break;
		if (n > 0 && (got += (size_t)n) == size - 1)
			got = 0;	/* keep the tail: the error is the last line */
		if (n == -1 && errno != EINTR && errno != EAGAIN)
			break;
	}
	buf[got] = '\0';
	return 0;
}

/*
 * `NEW -t` with our arguments, run to the end here (bounded by
 * HANDOVER_CHECK_MS; it parses one file). 0, or -1 with why in msg.
 */
static int
run_check(struct master *m, char *msg, size_t len)
{
	char **argv = new_argv(m, "-t"), out[CHECK_OUTPUT_MAX];
	int pfd[2] = { -1, -1 }, status = 0, rc = -1, late;
	pid_t pid = -1;

	if (argv == NULL || pipe2(pfd, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		snprintf(msg, len, "cannot run %.200s -t: %s", m->handover->path, strerror(errno));
		goto out;
	}
	if (pid == 0)
		exec_child(m->handover->path, argv, pfd[1]);
	close(pfd[1]);
	pfd[1] = -1;
	late = read_output(pfd[0], out, sizeof(out), util_now_ms() + HANDOVER_CHECK_MS);
	if (late)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (late)
		snprintf(msg, len, "%.200s -t did not finish within %d s", m->handover->path,
		    HANDOVER_CHECK_MS / 1000);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(msg, len, "%.200s -t failed (status %d): %.250s", m->handover->path,
		    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), last_line(out));
	else
		rc = 0;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(argv);
	return rc;
}

static void
ready_late(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;

	(void)l;
	rollback(m, "the new master did not report ready within %d s", HANDOVER_READY_MS / 1000);
}

static void
waiter_gone(struct master *m, struct cclient *cl)
{
	(void)cl;
	m->handover->waiter = NULL;	/* the hand-over goes on without an audience */
}

static void
peer_gone(struct master *m, struct cclient *cl)
{
	(void)cl;
	m->handover->peer = NULL;
	if (!m->handover->done)
		rollback(m, "the new master closed the control connection before it was ready");
}

/* Everything back as before the hand-over began; the old master serves on. */
static void
rollback(struct master *m, const char *fmt, ...)
{
	struct handover *h = m->handover;
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ev_timer_stop(m->loop, &h->timer);
	if (h->child > 0) {
		/* Reaped by proc_reap (then ignored), or by our parent when a sibling. */
		kill(h->child, SIGKILL);
		h->child = 0;
	}
	child_forget(m);
	if (h->peer != NULL) {
		control_on_close(h->peer, NULL);
		control_reply_fail(h->peer, CTL_EFAIL, "hand-over cancelled: %s", why);
		h->peer = NULL;
	}
	if (h->readonly && !m->stopping) {
		if (store_set_readonly(m->store, 0) == -1 || control_relisten(m) == -1)
			log_warnx("upgrade: cannot undo the hand-over fully; restart haloyd");
		acme_resume(m);
		/* The new master may have written the store meanwhile: read the routes again. */
		rtable_invalidate(&m->rt);
	}
	h->readonly = 0;
	log_warnx("upgrade: %s; this master (pid %d) keeps serving", why, (int)getpid());
	if (h->waiter != NULL) {
		control_on_close(h->waiter, NULL);
		control_reply_fail(h->waiter, CTL_EFAIL, "upgrade failed: %s; the running haloyd "
		    "keeps serving", why);
		h->waiter = NULL;
	}
}

uint32_t
handover_draining(const struct master *m)
{
	return m->handover != NULL && m->handover->done;
}

void
handover_reaped(struct master *m, pid_t pid, int status)
{
	struct handover *h = m->handover;

	if (h == NULL || pid != h->child || h->done)
		return;
	h->child = 0;
	if (WIFSIGNALED(status))
		rollback(m, "the new master was killed by signal %d", WTERMSIG(status));
	else
		rollback(m, "the new master exited with status %d", WEXITSTATUS(status));
}

/* The sibling's pidfd: it exited before it was ready. */
static void
child_exited(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct master *m = io->arg;

	child_forget(m);
	if (m->handover->child > 0 && !m->handover->done) {
		m->handover->child = 0;
		rollback(m, "the new master exited");
	}
}

static void
child_forget(struct master *m)
{
	struct handover *h = m->handover;

	if (h->child_fd < 0)
		return;
	ev_io_stop(m->loop, &h->child_io);
	close(h->child_fd);
	h->child_fd = -1;
}

/*
 * Under systemd the new master is our sibling (CLONE_PARENT): systemd must be
 * the parent of the MAINPID= we name, or it takes it for an alien process
 * and, with KillMode=mixed, a stop SIGKILLs it at once instead of waiting
 * for its SIGTERM (seen under systemd 252: tests/systemd/run). Its exit
 * reaches us on a pidfd. Elsewhere, or when clone is refused, a fork.
 */
static pid_t
spawn_sibling(struct master *m, char **argv)
{
	struct handover *h = m->handover;
	int fd = -1;
	pid_t pid;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return 0;
	/* clone, not clone3: systemd's RestrictNamespaces= answers clone3 ENOSYS. */
	if ((pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD, NULL, &fd, NULL, 0)) == 0)
		exec_child(h->path, argv, -1);
	if (pid == -1) {
		log_warn("upgrade: clone (CLONE_PARENT); the new master is our child");
		return 0;
	}
	h->child_fd = fd;
	if (ev_io_start(m->loop, &h->child_io, fd, EPOLLIN, child_exited, m) == -1) {
		log_warnx("upgrade: cannot watch the new master's pidfd");
		kill(pid, SIGKILL);
		child_forget(m);
		return -1;
	}
	return pid;
}

/* Start of the installed binary with --takeover; it inherits stdout and stderr. */
static pid_t
spawn_new(struct master *m)
{
	char **argv = new_argv(m, "--takeover");
	pid_t pid;

	if (argv == NULL)
		return -1;
	if ((pid = spawn_sibling(m, argv)) == 0 && (pid = fork()) == 0)
		exec_child(m->handover->path, argv, -1);
	free(argv);
	return pid;
}

/* A master without hand-over state (one that failed to make it) refuses, never crashes. */
static int
handover_missing(struct cclient *cl, const struct handover *h)
{
	if (h != NULL)
		return 0;
	control_reply_fail(cl, CTL_EFAIL, "this haloyd cannot hand over (no hand-over state)");
	return 1;
}

int
handover_cmd_upgrade(struct master *m, struct cclient *cl, struct cur *c)
{
	struct handover *h = m->handover;
	char msg[512];

	if (cur_end(c) == -1)
		return -1;
	if (handover_missing(cl, h))
		return 0;
	if (m->stopping || h->child > 0 || h->readonly || h->done) {
		control_reply_fail(cl, CTL_EFAIL, "an upgrade or a stop is already under way");
		return 0;
	}
	if (h->path[0] == '\0') {
		control_reply_fail(cl, CTL_EFAIL, "cannot tell where haloyd was started from");
		return 0;
	}
	log_info("upgrade: checking %s -t", h->path);
	if (run_check(m, msg, sizeof(msg)) == -1) {
		log_warnx("upgrade: %s; this master keeps serving", msg);
		control_reply_fail(cl, CTL_EFAIL, "%s; the running haloyd keeps serving", msg);
		return 0;
	}
	if ((h->child = spawn_new(m)) == -1) {
		h->child = 0;
		control_reply_fail(cl, CTL_EFAIL, "cannot start %s: %s", h->path, strerror(errno));
		return 0;
	}
	log_info("upgrade: started %s --takeover (pid %d)", h->path, (int)h->child);
	h->waiter = cl;
	control_on_close(cl, waiter_gone);
	ev_timer_start(m->loop, &h->timer, HANDOVER_READY_MS);
	return 0;	/* answered when the new master is ready, or rolled back */
}

/* One MSG_C_LISTENER per socket of l: kind, worker, address. 0 or -1. */
static int
send_listeners(struct master *m, struct cclient *cl, const struct listeners *l, uint32_t kind,
    char *const *addrs)
{
	uint8_t buf[16 + MSG_HANDOVER_ADDR_MAX];
	struct wbuf w;
	size_t a, i;

	(void)m;
	for (a = 0; a < l->naddrs; a++)
		for (i = 0; i < l->nworkers; i++) {
			wb_init(&w, buf, sizeof(buf));
			wb_u32(&w, kind);
			wb_u32(&w, (uint32_t)i);
			wb_str(&w, addrs[a]);
			if (w.bad || control_reply_fd(cl, MSG_C_LISTENER, &w,
			    listeners_fd(l, a, i)) == -1)
				return -1;
		}
	return 0;
}

/* Every listening socket we hold: HTTP, HTTPS, metrics, the agents' tunnel listener. */
static int
send_all(struct master *m, struct cclient *cl)
{
	const struct listeners *mx = metrics_listeners(m), *tun = tunnels_listeners(m);
	char *tun_addr[1] = { m->cfg.listen_tunnel };
	size_t n = m->lst.naddrs * m->lst.nworkers + m->lst_https.naddrs * m->lst_https.nworkers;

	if (send_listeners(m, cl, &m->lst, LISTENER_HTTP, m->cfg.listen_http.v) == -1 ||
	    send_listeners(m, cl, &m->lst_https, LISTENER_HTTPS, m->cfg.listen_https.v) == -1 ||
	    (mx != NULL && send_listeners(m, cl, mx, LISTENER_METRICS,
	    m->cfg.listen_metrics.v) == -1) ||
	    (tun != NULL && send_listeners(m, cl, tun, LISTENER_TUNNEL, tun_addr) == -1))
		return -1;
	n += (mx != NULL ? mx->naddrs : 0) + (tun != NULL ? tun->naddrs : 0);
	log_info("upgrade: store read-only, ACME stopped, %zu listening sockets handed over", n);
	return 0;
}

int
handover_cmd_takeover(struct master *m, struct cclient *cl, struct cur *c)
{
	struct handover *h = m->handover;
	uid_t uid = control_client_uid(cl);

	if (cur_end(c) == -1)
		return -1;
	if (handover_missing(cl, h))
		return 0;
	if (uid != 0 && uid != geteuid()) {
		control_reply_fail(cl, CTL_EPERM, "only root may take the listening sockets");
		return 0;
	}
	if (m->stopping || h->readonly || h->done) {
		control_reply_fail(cl, CTL_EFAIL, "a hand-over or a stop is already under way");
		return 0;
	}
	/* Read-only before the new master hears OK: it opens the store only then. */
	if (store_set_readonly(m->store, 1) == -1) {
		control_reply_fail(cl, CTL_EFAIL, "cannot make the store read-only");
		return 0;
	}
	h->readonly = 1;
	acme_stop(m);
	control_unlisten(m);
	h->peer = cl;
	control_on_close(cl, peer_gone);
	if (!ev_timer_armed(&h->timer))
		ev_timer_start(m->loop, &h->timer, HANDOVER_READY_MS);
	if (send_all(m, cl) == -1) {
		rollback(m, "cannot pass the listening sockets");
		return 0;
	}
	control_reply_ok(cl, "read-only");
	return 0;
}

static void
drain_now(void *arg)
{
	master_drain(arg);
}

int
handover_cmd_ready(struct master *m, struct cclient *cl, struct cur *c)
{
	struct handover *h = m->handover;
	uint32_t pid = cur_u32(c);
	char msg[256];

	if (cur_end(c) == -1)
		return -1;
	if (handover_missing(cl, h))
		return 0;
	if (cl != h->peer || h->done) {
		control_reply_fail(cl, CTL_EFAIL, "no hand-over to this client is under way");
		return 0;
	}
	h->done = 1;
	h->child = 0;
	child_forget(m);
	ev_timer_stop(m->loop, &h->timer);
	control_on_close(cl, NULL);
	h->peer = NULL;
	notify_mainpid((pid_t)pid);
	snprintf(msg, sizeof(msg), "new master (pid %u) serves; pid %d drains for up to %llu s",
	    pid, (int)getpid(), (unsigned long long)(m->cfg.upgrade_drain_ms / 1000));
	log_info("upgrade: %s", msg);
	control_reply_ok(cl, msg);
	if (h->waiter != NULL) {
		control_on_close(h->waiter, NULL);
		control_reply_ok(h->waiter, msg);
		h->waiter = NULL;
	}
	/* From the loop: the drain closes the control socket, this client with it. */
	if (ev_defer(m->loop, drain_now, m) == -1)
		drain_now(m);
	return 0;
}
