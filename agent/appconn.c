/* The agent's connections to the local app and their keep-alive pool. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "agent/agent.h"
#include "agent/appconn.h"
#include "share/log.h"
#include "share/util.h"

/* 1 when an idle connection is still usable: no EOF and no unasked bytes. */
static int
appconn_alive(struct appconn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static struct appconn *
appconn_take_idle(struct agent *ag)
{
	struct appconn *c;
	uint64_t now = ev_now(ag->loop);

	while ((c = ag->idle) != NULL) {
		ag->idle = c->next;
		ag->nidle--;
		c->next = NULL;
		if (now - c->idle_since < APPCONN_IDLE_MS && appconn_alive(c)) {
			c->reused = 1;
			return c;
		}
		appconn_close(c);
	}
	return NULL;
}

struct appconn *
appconn_get(struct agent *ag)
{
	struct appconn *c;
	int one = 1, e;

	if ((c = appconn_take_idle(ag)) != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ag = ag;
	c->fd = socket(ag->app.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		goto fail;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&ag->app, ag->applen) == 0)
		c->connected = 1;
	else if (errno != EINPROGRESS)
		goto fail;
	return c;
fail:
	e = errno;
	if (c->fd != -1)
		close(c->fd);
	free(c);
	errno = e;
	return NULL;
}

int
appconn_finish_connect(struct appconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	c->connected = 1;
	return 0;
}

void
appconn_put(struct appconn *c)
{
	struct agent *ag = c->ag;

	if (ag->stopping || ag->nidle >= APPCONN_IDLE_MAX) {
		appconn_close(c);
		return;
	}
	c->idle_since = ev_now(ag->loop);
	c->next = ag->idle;
	ag->idle = c;
	ag->nidle++;
}

void
appconn_close(struct appconn *c)
{
	if (c == NULL)
		return;
	ev_io_stop(c->ag->loop, &c->io);
	close(c->fd);
	free(c);
}

void
appconn_clear(struct agent *ag)
{
	struct appconn *c;

	while ((c = ag->idle) != NULL) {
		ag->idle = c->next;
		appconn_close(c);
	}
	ag->nidle = 0;
}
