/*
 * The process table. A child runs a fresh image of our own executable
 * (fork + fexecve) and inherits nothing but fd 3 (everything else is
 * close-on-exec) and a clean signal mask, so it holds no heap of the
 * master: no SQLite cache, no key. Everything a child sends is checked by
 * the dispatcher before its role sees it; one that misbehaves is killed and
 * respawned with back-off.
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

#include "master/control.h"
#include "master/master.h"
#include "master/handover.h"
#include "master/proc.h"
#include "master/wrapper.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

extern char **environ;

static void proc_read(struct ev_loop *l, struct ev_io *io, uint32_t events);

const char *
proc_label(const struct proc *p, char *buf, size_t len)
{
	if (p->role->indexed)
		snprintf(buf, len, "%s %d", p->role->title, p->index);
	else
		snprintf(buf, len, "%s", p->role->title);
	return buf;
}

/* Its channel is gone: stop reading; the role hears it from on_down. */
static void
proc_closed(struct proc *p)
{
	if (p->sock >= 0) {
		ev_io_stop(p->m->loop, &p->io);
		close(p->sock);
		p->sock = -1;
	}
	p->hello = 0;
	p->ready = 0;
}

static void
proc_down(struct proc *p)
{
	proc_closed(p);
	if (p->role->on_down != NULL)
		p->role->on_down(p);
}

void
proc_kill(struct proc *p, const char *why)
{
	char label[64];

	if (p->pid <= 0)
		return;
	log_warnx("%s (pid %d): %s; killing it", proc_label(p, label, sizeof(label)), (int)p->pid,
	    why);
	kill(p->pid, SIGKILL);
	proc_down(p);
}

int
proc_send(struct proc *p, uint16_t type, uint32_t seq, uint32_t gen, const void *payload,
    size_t len, int fd)
{
	if (p->sock < 0 || ipc_send(p->sock, type, seq, gen, payload, len, fd) == -1) {
		proc_kill(p, "its socket is full or broken");
		return -1;
	}
	return 0;
}

/* In the child, between fork and fexecve: only async-signal-safe calls. */
static _Noreturn void
proc_exec(struct proc *p, const char *user, int sock)
{
	struct master *m = p->m;
	char idx[16], verbose[8] = "-v";
	char *argv[14], *wrapped[WRAPPER_WORDS_MAX + 16];
	int argc = 0, i, wrap = m->wrap != NULL && p->role->wrappable;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(sock, 3) == -1)
		_exit(127);
	snprintf(idx, sizeof(idx), "%d", p->index);
	argv[argc++] = (char *)(uintptr_t)"haloyd";
	argv[argc++] = (char *)(uintptr_t)"-R";
	argv[argc++] = (char *)(uintptr_t)p->role->name;
	if (p->role->indexed) {
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
	if (!m->cfg.sandbox || wrap)
		argv[argc++] = (char *)(uintptr_t)"-N";
	argv[argc] = NULL;
	if (wrap && wrapper_argv(m->wrap, &argv[1], wrapped, sizeof(wrapped) / sizeof(*wrapped)) > 0)
		execv(m->wrap->prog, wrapped);
	else if (!wrap)
		fexecve(m->self_fd, argv, environ);
	_exit(127);
}

/* fork + fexecve with a new socketpair; p->pid and p->sock (blocking) on success. */
static int
proc_fork(struct proc *p)
{
	const char *user = p->role->user(p->m);
	char label[64];
	int sv[2];
	pid_t pid;

	proc_label(p, label, sizeof(label));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for %s", label);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork %s", label);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0)
		proc_exec(p, user, sv[1]);
	close(sv[1]);
	p->pid = pid;
	p->sock = sv[0];
	return 0;
}

int
proc_spawn(struct proc *p)
{
	struct master *m = p->m;
	struct msg_hello h = { HALOYD_PROTO_VERSION, ROLE_MASTER,
	    p->index < 0 ? 0 : (uint32_t)p->index, (uint32_t)getpid() };
	char label[64];

	if (proc_fork(p) == -1) {
		ev_timer_start(m->loop, &p->respawn, p->role->backoff_max_ms);
		return -1;
	}
	p->started_ms = util_now_ms();
	p->hello = p->ready = p->stopped = 0;
	p->spawns++;
	if (p->role->on_spawn != NULL)
		p->role->on_spawn(p);
	if (util_set_nonblock(p->sock) == -1 ||
	    ev_io_start(m->loop, &p->io, p->sock, EPOLLIN, proc_read, p) == -1 ||
	    ipc_send(p->sock, MSG_HELLO, 0, 0, &h, sizeof(h), -1) == -1) {
		proc_kill(p, "cannot talk to it");
		return -1;
	}
	log_info("%s started (pid %d)", proc_label(p, label, sizeof(label)), (int)p->pid);
	return 0;
}

static void
respawn_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct proc *p = t->arg;

	(void)l;
	if (!p->m->stopping && !p->stopped && p->pid == 0)
		proc_spawn(p);
}

/* Its HELLO: our protocol, its role, its instance; then its start-up state. */
static int
proc_on_hello(void *arg, struct ipc_msg *msg)
{
	struct proc *p = arg;
	struct msg_hello h;

	memcpy(&h, msg->data, sizeof(h));
	if (p->hello || h.proto != HALOYD_PROTO_VERSION || h.role != p->role->hello_role ||
	    (p->role->indexed && h.index != (uint32_t)p->index)) {
		proc_kill(p, "bad HELLO");
		return -1;
	}
	p->hello = 1;
	if (p->role->on_hello != NULL && p->role->on_hello(p) == -1) {
		proc_kill(p, "cannot send its start-up state");
		return -1;
	}
	p->ready = 1;
	return 0;
}

static const struct ipc_handler hello_handler[] = {
	{ MSG_HELLO, IPC_FD_NONE, sizeof(struct msg_hello), sizeof(struct msg_hello), proc_on_hello },
};

/* One message: HELLO first and only once, then the role's table. */
static int
proc_dispatch(struct proc *p, struct ipc_msg *msg)
{
	if (msg->h.type == MSG_HELLO)
		return ipc_dispatch(hello_handler, ARRAY_LEN(hello_handler), p, msg);
	if (!p->hello) {
		ipc_msg_close_fd(msg);
		return -1;
	}
	return ipc_dispatch(p->role->handlers, p->role->nhandlers, p->arg, msg);
}

static void
proc_read(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct proc *p = io->arg;
	struct ipc_msg *msg = p->m->rx;
	char label[64];
	int n;

	(void)l;
	(void)events;
	while (p->sock >= 0) {
		n = ipc_recv(p->sock, msg);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0) {
			log_debug("%s closed its socket", proc_label(p, label, sizeof(label)));
			proc_down(p);
			return;
		}
		/* A handler that killed it already closed the socket. */
		if ((n == -1 || proc_dispatch(p, msg) == -1) && p->sock >= 0) {
			proc_kill(p, "sent a malformed message");
			return;
		}
	}
}

static void
proc_exited(struct proc *p, int status)
{
	struct master *m = p->m;
	uint64_t lived = util_now_ms() - p->started_ms, delay;
	char label[64];

	proc_label(p, label, sizeof(label));
	/* seccomp's SCMP_ACT_KILL_PROCESS: the kernel log (audit, type=SECCOMP) names the call. */
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		log_warnx("%s (pid %d) killed by the sandbox (SIGSYS): a system call its filter "
		    "does not allow; the kernel log names it", label, (int)p->pid);
	else if (WIFSIGNALED(status))
		log_warnx("%s (pid %d) killed by signal %d", label, (int)p->pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0 || !m->stopping)
		log_warnx("%s (pid %d) exited with status %d", label, (int)p->pid,
		    WEXITSTATUS(status));
	else
		log_info("%s (pid %d) stopped", label, (int)p->pid);
	p->pid = 0;
	proc_down(p);
	if (p->role->on_exit != NULL)
		p->role->on_exit(p, status);
	if (m->stopping || p->stopped)
		return;
	/* A child that lived long is back at once; quick deaths wait longer each time. */
	if (lived >= p->role->stable_ms) {
		p->backoff_ms = p->role->backoff_min_ms;
		delay = 0;
	} else {
		p->backoff_ms = p->backoff_ms * 2 > p->role->backoff_max_ms ?
		    p->role->backoff_max_ms : p->backoff_ms * 2;
		delay = p->backoff_ms;
	}
	log_info("respawning %s in %llu ms", label, (unsigned long long)delay);
	ev_timer_start(m->loop, &p->respawn, delay);
}

void
proc_reap(struct master *m)
{
	struct proc *p;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (p = m->procs; p != NULL && p->pid != pid; p = p->next)
			;
		if (p != NULL)
			proc_exited(p, status);
		else
			handover_reaped(m, pid, status);
	}
}

void
proc_add(struct master *m, struct proc *p, const struct proc_role *role, int index, void *arg)
{
	struct proc **pp;

	memset(p, 0, sizeof(*p));
	p->m = m;
	p->role = role;
	p->arg = arg;
	p->index = index;
	p->sock = -1;
	p->backoff_ms = role->backoff_min_ms;
	ev_timer_init(&p->respawn, respawn_fire, p);
	/* Appended, so status lists children in the order they were added. */
	for (pp = &m->procs; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = p;
}

void
proc_remove(struct proc *p)
{
	struct proc **pp;

	ev_timer_stop(p->m->loop, &p->respawn);
	proc_closed(p);
	for (pp = &p->m->procs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
}

void
proc_stop(struct proc *p, uint32_t deadline_ms)
{
	ev_timer_stop(p->m->loop, &p->respawn);
	p->stopped = 1;
	if (p->pid > 0 && (p->sock < 0 || p->role->ask_stop == NULL ||
	    p->role->ask_stop(p, deadline_ms) == -1))
		kill(p->pid, SIGTERM);
}

size_t
proc_running(const struct master *m, const struct proc_role *role)
{
	const struct proc *p;
	size_t n = 0;

	for (p = m->procs; p != NULL; p = p->next)
		if (p->pid > 0 && (role == NULL || p->role == role))
			n++;
	return n;
}

void
proc_kill_all(struct master *m, const struct proc_role *role)
{
	struct proc *p;

	for (p = m->procs; p != NULL; p = p->next)
		if (p->pid > 0 && (role == NULL || p->role == role))
			kill(p->pid, SIGKILL);
}

int
proc_status_row(const struct proc *p, struct wbuf *w)
{
	if (p->role->status_fields == NULL)
		return -1;
	wb_u16(w, (uint16_t)(3 + p->role->nstatus_fields));
	control_row_str(w, "role", p->role->name);
	control_row_int(w, "index", p->index);
	control_row_int(w, "pid", p->pid);
	p->role->status_fields(p, w);
	return 0;
}
