/*
 * The metrics endpoint (see metrics.h). The master parses no other network
 * input, so this is kept as small and strict as it can be: at most
 * METRICS_CONNS_MAX scrapes at once, a request head of at most
 * METRICS_HEAD_MAX bytes read within METRICS_TIMEOUT_MS, "GET /metrics"
 * (a query is ignored) or an error status, one answer, then close.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/listeners.h"
#include "share/msg.h"
#include "master/master.h"
#include "master/metrics.h"
#include "master/metricsfmt.h"
#include "share/log.h"
#include "share/util.h"

#define METRICS_CONNS_MAX 16
#define METRICS_HEAD_MAX 4096
#define METRICS_TIMEOUT_MS 5000

struct metrics;

struct mconn {
	struct metrics *mx;
	int fd;			/* -1: free */
	struct ev_io io;
	struct ev_timer timer;
	char in[METRICS_HEAD_MAX + 1];
	size_t inlen;
	char *out;		/* the whole answer once the request is read */
	size_t outlen, outoff;
};

struct metrics {
	struct master *m;
	struct listeners lst;
	struct ev_io *lio;	/* one per address */
	struct mconn conns[METRICS_CONNS_MAX];
};

static void
mconn_close(struct mconn *c)
{
	struct ev_loop *l = c->mx->m->loop;

	ev_io_stop(l, &c->io);
	ev_timer_stop(l, &c->timer);
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
}

/* The answer: the status line, our three fields, the body. */
static int
mconn_answer(struct mconn *c, const char *status, const char *type, const char *body,
    size_t blen)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type, blen);

	if (n < 0 || (size_t)n >= sizeof(head) || (c->out = malloc((size_t)n + blen)) == NULL)
		return -1;
	memcpy(c->out, head, (size_t)n);
	memcpy(c->out + n, body, blen);
	c->outlen = (size_t)n + blen;
	c->outoff = 0;
	return ev_io_modify(c->mx->m->loop, &c->io, EPOLLOUT);
}

static int
head_wants_openmetrics(char *head)
{
	char *line, *save = NULL;

	for (line = strtok_r(head, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save))
		if (strncasecmp(line, "accept:", 7) == 0 &&
		    strcasestr(line, "application/openmetrics-text") != NULL)
			return 1;
	return 0;
}

static int
mconn_request(struct mconn *c)
{
	static const char text[] = "text/plain; charset=utf-8";
	struct metricsfmt f;
	size_t plen = sizeof("GET /metrics") - 1;
	int om, rc;

	if (strncmp(c->in, "GET ", 4) != 0)
		return mconn_answer(c, "405 Method Not Allowed", text, "GET only\n", 9);
	if (strncmp(c->in, "GET /metrics", plen) != 0 ||
	    (c->in[plen] != ' ' && c->in[plen] != '?'))
		return mconn_answer(c, "404 Not Found", text, "/metrics only\n", 14);
	om = head_wants_openmetrics(c->in);
	if (metricsfmt_render(c->mx->m, om, &f) == -1)
		return mconn_answer(c, "500 Internal Server Error", text, "see the log\n", 12);
	rc = mconn_answer(c, "200 OK", om ? METRICSFMT_OPENMETRICS_TYPE :
	    METRICSFMT_PROMETHEUS_TYPE, f.buf, f.len);
	metricsfmt_free(&f);
	return rc;
}

static int
mconn_read(struct mconn *c)
{
	ssize_t n = read(c->fd, c->in + c->inlen, METRICS_HEAD_MAX - c->inlen);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	if (strstr(c->in, "\r\n\r\n") != NULL || strstr(c->in, "\n\n") != NULL)
		return mconn_request(c);
	if (c->inlen == METRICS_HEAD_MAX)
		return mconn_answer(c, "431 Request Header Fields Too Large",
		    "text/plain; charset=utf-8", "too large\n", 10);
	return 0;
}

static void
mconn_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct mconn *c = io->arg;
	ssize_t n;

	(void)l;
	(void)events;
	if (c->out == NULL) {
		if (mconn_read(c) == -1)
			mconn_close(c);
		return;
	}
	n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (c->outoff += (size_t)n) == c->outlen) {
		(void)shutdown(c->fd, SHUT_WR);
		mconn_close(c);
	}
}

static void
mconn_on_timeout(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	mconn_close(t->arg);
}

static void
metrics_on_accept(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct metrics *mx = io->arg;
	struct mconn *c = NULL;
	size_t i;
	int fd;

	(void)events;
	for (i = 0; i < METRICS_CONNS_MAX && c == NULL; i++)
		if (mx->conns[i].fd == -1)
			c = &mx->conns[i];
	if ((fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return;
	if (c == NULL) {
		close(fd);	/* a scraper, not a crowd: more at once are refused */
		return;
	}
	c->fd = fd;
	c->inlen = 0;
	if (ev_io_start(l, &c->io, fd, EPOLLIN, mconn_on_io, c) == -1) {
		close(fd);
		c->fd = -1;
		return;
	}
	ev_timer_init(&c->timer, mconn_on_timeout, c);
	ev_timer_start(l, &c->timer, METRICS_TIMEOUT_MS);
}

const struct listeners *
metrics_listeners(const struct master *m)
{
	return m->metrics != NULL ? &m->metrics->lst : NULL;
}

int
metrics_open(struct master *m, struct inherit *h)
{
	struct metrics *mx;
	size_t i;

	if (m->cfg.listen_metrics.n == 0)
		return 0;
	if ((mx = calloc(1, sizeof(*mx))) == NULL ||
	    (mx->lio = calloc(m->cfg.listen_metrics.n, sizeof(*mx->lio))) == NULL)
		goto fail;
	mx->m = m;
	for (i = 0; i < METRICS_CONNS_MAX; i++) {
		mx->conns[i].fd = -1;
		mx->conns[i].mx = mx;
	}
	if (listeners_adopt(&mx->lst, m->cfg.listen_metrics.v, m->cfg.listen_metrics.n, 1,
	    LISTENER_METRICS, h) == -1)
		goto fail;
	m->metrics = mx;
	for (i = 0; i < mx->lst.naddrs; i++)
		if (ev_io_start(m->loop, &mx->lio[i], listeners_fd(&mx->lst, i, 0), EPOLLIN,
		    metrics_on_accept, mx) == -1) {
			metrics_close(m);
			return -1;
		}
	return 0;
fail:
	log_warn("metrics listeners");
	if (mx != NULL)
		free(mx->lio);
	free(mx);
	return -1;
}

void
metrics_unlisten(struct master *m)
{
	struct metrics *mx = m->metrics;
	size_t i;

	if (mx == NULL)
		return;
	for (i = 0; i < mx->lst.naddrs; i++)
		if (mx->lio[i].active)
			ev_io_stop(m->loop, &mx->lio[i]);
	listeners_close(&mx->lst);
}

void
metrics_close(struct master *m)
{
	struct metrics *mx = m->metrics;
	size_t i;

	if (mx == NULL)
		return;
	for (i = 0; i < METRICS_CONNS_MAX; i++)
		if (mx->conns[i].fd != -1)
			mconn_close(&mx->conns[i]);
	for (i = 0; i < mx->lst.naddrs; i++)
		if (mx->lio[i].active)
			ev_io_stop(m->loop, &mx->lio[i]);
	listeners_close(&mx->lst);
	free(mx->lio);
	free(mx);
	m->metrics = NULL;
}
