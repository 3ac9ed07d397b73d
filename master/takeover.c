/*
 * The new master's control-socket client for the hand-over. It runs before
 * the loop (blocking, every wait bounded by TAKEOVER_TIMEOUT_MS); the only
 * part left for the loop is the old master's answer to our READY, after
 * which systemd knows us as MAINPID and our FDSTORE= is accepted.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "master/fdstore.h"
#include "master/inherit.h"
#include "master/master.h"
#include "master/notify.h"
#include "master/takeover.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/util.h"

struct takeover {
	int fd;
	struct ev_io io;
};

/* One message, waiting at most TAKEOVER_TIMEOUT_MS; 1, or 0 / -1 as ipc_recv. */
static int
recv_wait(int fd, struct ipc_msg *msg)
{
	uint64_t deadline = util_now_ms() + TAKEOVER_TIMEOUT_MS;
	int n;

	while ((n = ipc_recv(fd, msg)) == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t now = util_now_ms();

		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&pfd, 1, (int)(deadline - now)) == -1 && errno != EINTR)
			return -1;
	}
	return n;
}

/* Connects and greets; the fd, -1 when nobody listens (errno kept). */
static int
connect_old(const struct master *m)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct msg_hello h = { HALOYD_PROTO_VERSION, ROLE_CTL, 0, (uint32_t)getpid() };
	int fd;

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", m->cfg.runtime_dir,
	    HALOYD_CONTROL_SOCKET) >= sizeof(sun.sun_path))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    util_set_nonblock(fd) == -1 ||
	    ipc_send(fd, MSG_HELLO, 0, 0, &h, sizeof(h), -1) == -1) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A MSG_C_LISTENER into h (which owns its fd from now on); 0 or -1. */
static int
take_listener(struct inherit *h, struct ipc_msg *msg)
{
	char addr[MSG_HANDOVER_ADDR_MAX + 1];
	uint32_t kind, worker;
	struct cur c;
	int fd = msg->fd;

	msg->fd = -1;
	cur_init(&c, msg->data, msg->h.len);
	kind = cur_u32(&c);
	worker = cur_u32(&c);
	if (fd < 0 || cur_str(&c, addr, sizeof(addr)) == -1 || cur_end(&c) == -1) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return inherit_add(h, kind, worker, addr, fd);
}

/* The answer to MSG_C_FAIL, logged. */
static void
log_refusal(const struct ipc_msg *msg)
{
	char why[MSG_STR_MAX + 1] = "";
	struct cur c;

	cur_init(&c, msg->data, msg->h.len);
	(void)cur_u32(&c);
	(void)cur_str(&c, why, sizeof(why));
	log_warnx("takeover: the running master refused: %s", why);
}

/* TAKEOVER, then its listeners until OK. 0, or -1 (refused, broken, late). */
static int
fetch(struct master *m, int fd, struct inherit *h)
{
	struct ipc_msg *msg = m->rx;
	size_t n = 0;

	if (recv_wait(fd, msg) != 1 || msg->h.type != MSG_HELLO) {
		if (msg->h.type == MSG_C_FAIL)
			log_refusal(msg);
		return -1;
	}
	if (ipc_send(fd, MSG_C_TAKEOVER, 1, 0, NULL, 0, -1) == -1)
		return -1;
	for (;;) {
		if (recv_wait(fd, msg) != 1) {
			log_warn("takeover: the running master's answer");
			return -1;
		}
		if (msg->h.type == MSG_C_OK) {
			log_info("takeover: the running master is read-only; %zu sockets received", n);
			return 0;
		}
		if (msg->h.type == MSG_C_FAIL) {
			log_refusal(msg);
			return -1;
		}
		if (msg->h.type != MSG_C_LISTENER || take_listener(h, msg) == -1) {
			ipc_msg_close_fd(msg);
			log_warnx("takeover: bad answer (type %u)", msg->h.type);
			return -1;
		}
		n++;
	}
}

int
takeover_fetch(struct master *m, struct inherit *h)
{
	struct takeover *t;
	int fd;

	if ((fd = connect_old(m)) == -1) {
		log_warn("takeover: no running master on %s/%s; binding every listener",
		    m->cfg.runtime_dir, HALOYD_CONTROL_SOCKET);
		return 1;
	}
	if (fetch(m, fd, h) == -1 || (t = calloc(1, sizeof(*t))) == NULL) {
		close(fd);
		return -1;
	}
	t->fd = fd;
	m->takeover = t;
	/* systemd's watchdog is for the main process, which we are about to be. */
	if (getenv("WATCHDOG_USEC") != NULL) {
		char pid[16];
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (setenv("WATCHDOG_PID", pid, 1) == -1)
			log_warn("takeover: WATCHDOG_PID");
	}
	return 0;
}

static void
takeover_answer(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct master *m = io->arg;
	struct ipc_msg *msg = m->rx;
	int n = ipc_recv(m->takeover->fd, msg);

	(void)l;
	(void)events;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n == 1 && msg->h.type == MSG_C_OK) {
		log_info("takeover: the old master drains; we are the main process");
		notify_status(m);
		fdstore_put(m);
	} else {
		if (n == 1)
			ipc_msg_close_fd(msg);
		log_warnx("takeover: the old master did not confirm the hand-over");
	}
	takeover_free(m);
}

int
takeover_ready(struct master *m)
{
	struct takeover *t = m->takeover;
	uint8_t buf[4];
	struct wbuf w;

	if (t == NULL)
		return 0;
	wb_init(&w, buf, sizeof(buf));
	wb_u32(&w, (uint32_t)getpid());
	if (ipc_send(t->fd, MSG_C_TAKEOVER_READY, 2, 0, buf, w.len, -1) == -1 ||
	    ev_io_start(m->loop, &t->io, t->fd, EPOLLIN, takeover_answer, m) == -1) {
		log_warn("takeover: telling the old master we serve");
		takeover_free(m);
	}
	return 1;
}

void
takeover_free(struct master *m)
{
	struct takeover *t = m->takeover;

	if (t == NULL)
		return;
	if (t->io.active)
		ev_io_stop(m->loop, &t->io);
	close(t->fd);
	m->takeover = NULL;
	ev_defer(m->loop, free, t);	/* may run from t's own event */
}
