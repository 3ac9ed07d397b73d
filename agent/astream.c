/* One proxied stream: HTTP/2 from the tunnel <-> HTTP/1.1 to the app (see astream.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>

#include "agent/agent.h"
#include "agent/appconn.h"
#include "agent/astream.h"
#include "agent/h2h1.h"
#include "agent/tunnel.h"
#include "share/log.h"
#include "share/util.h"
#include "worker/buf.h"
#include "worker/http1.h"

static void astream_app_io(struct ev_loop *l, struct ev_io *io, uint32_t events);
static void astream_timeout(struct ev_loop *l, struct ev_timer *tm);
static int as_head(void *arg, struct msg_head *h);
static int as_body(void *arg, const char *p, size_t n);
static int as_end(void *arg, struct msg_head *h);

static const struct h1_events as_events = { as_head, as_body, as_end };

struct astream *
astream_new(struct tunnel *t, int32_t id)
{
	struct astream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->t = t;
	s->id = id;
	msg_init(&s->req);
	msg_init(&s->resp);
	ev_timer_init(&s->timer, astream_timeout, s);
	if (nghttp2_session_set_stream_user_data(t->h2, id, s) != 0) {
		free(s);
		return NULL;
	}
	s->next = t->streams;
	t->streams = s;
	t->nstreams++;
	return s;
}

static void
astream_unlink(struct astream *s)
{
	struct astream **pp;

	if (s->t == NULL)
		return;
	for (pp = &s->t->streams; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			s->t->nstreams--;
			break;
		}
	s->t = NULL;
}

static void
astream_free(void *arg)
{
	struct astream *s = arg;
	struct tunnel *t = s->t;

	astream_unlink(s);
	if (s->ac != NULL)
		appconn_close(s->ac);
	if (t != NULL)
		ev_timer_stop(t->ag->loop, &s->timer);
	h1_free(s->parser);
	msg_free(&s->req);
	msg_free(&s->resp);
	bytequeue_free(&s->toapp);
	bytequeue_free(&s->fromapp);
	free(s);
	/* A tunnel draining after GOAWAY closes when its last stream is gone. */
	if (t != NULL)
		tunnel_flush(t);
}

void
astream_abort(struct astream *s)
{
	struct agent *ag = s->t->ag;

	ev_timer_stop(ag->loop, &s->timer);
	if (s->ac != NULL) {
		appconn_close(s->ac);
		s->ac = NULL;
	}
	astream_unlink(s);
	/* A free already scheduled finds s->t NULL; else free it now. */
	if (!s->free_pending)
		astream_free(s);
}

/* The app's connection: closed, or back to the pool when the exchange ended cleanly. */
static void
astream_release_app(struct astream *s)
{
	struct appconn *c = s->ac;

	if (c == NULL)
		return;
	s->ac = NULL;
	ev_io_stop(s->t->ag->loop, &c->io);
	if (s->resp_end && s->resp_reusable && s->req_written)
		appconn_put(c);
	else
		appconn_close(c);
}

void
astream_closed(struct astream *s, uint32_t code)
{
	struct tunnel *t = s->t;

	s->closed = 1;
	if (code != NGHTTP2_NO_ERROR)
		log_debug("stream %d: reset by the proxy (code %u)", s->id, code);
	nghttp2_session_set_stream_user_data(t->h2, s->id, NULL);
	/* Bytes of a closed stream never reach the app: give the window back now. */
	if (s->unconsumed > 0)
		nghttp2_session_consume_connection(t->h2, s->unconsumed);
	s->unconsumed = 0;
	ev_timer_stop(t->ag->loop, &s->timer);
	astream_release_app(s);
	ev_defer_once(t->ag->loop, astream_free, s, &s->free_pending);
}

/* --- answers of our own (app unreachable, late, broken) */

static ssize_t as_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *ud);

static int
astream_submit(struct astream *s, const nghttp2_nv *nv, size_t nnv)
{
	nghttp2_data_provider dp = { .source.ptr = s, .read_callback = as_read };

	s->resp_submitted = 1;
	return nghttp2_submit_response(s->t->h2, s->id, nv, nnv, &dp);
}

#define AS_NV(n, v) { (uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, \
	strlen(v), \
	NGHTTP2_NV_FLAG_NONE }

/* status with a one-line text body; a stream whose head went out is reset instead. */
static void
astream_fail(struct astream *s, unsigned status, const char *why)
{
	char st[4], len[8], body[128];
	int n;

	if (s->t == NULL || s->closed)
		return;
	log_info("stream %d: %s", s->id, why);
	s->resp_reusable = 0;
	ev_timer_stop(s->t->ag->loop, &s->timer);
	if (s->ac != NULL) {
		ev_io_stop(s->t->ag->loop, &s->ac->io);
		appconn_close(s->ac);
		s->ac = NULL;
	}
	if (s->resp_submitted) {
		nghttp2_submit_rst_stream(s->t->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
		tunnel_flush(s->t);
		return;
	}
	n = snprintf(body, sizeof(body), "%u %s\n", status, why);
	snprintf(st, sizeof(st), "%u", status);
	snprintf(len, sizeof(len), "%d", n);
	bytequeue_consume(&s->fromapp, s->fromapp.len);
	if (bytequeue_add(&s->fromapp, body, (size_t)n, ASTREAM_RESP_MAX) == 0) {
		nghttp2_nv nv[] = { AS_NV(":status", st), AS_NV("content-type", "text/plain"),
			AS_NV("content-length", len) };
		s->resp_end = 1;
		if (astream_submit(s, nv, ARRAY_LEN(nv)) == 0) {
			tunnel_flush(s->t);
			return;
		}
	}
	nghttp2_submit_rst_stream(s->t->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
	tunnel_flush(s->t);
}

static void
astream_timeout(struct ev_loop *l, struct ev_timer *tm)
{
	struct astream *s = tm->arg;

	(void)l;
	astream_fail(s, 504, "the app did not answer in time");
}

/* --- the request, HTTP/2 -> HTTP/1.1 */

int
astream_header(struct astream *s, const char *name, size_t nlen, const char *v, size_t vlen)
{
	int rc;

	/* RFC 9113 6.5.2's measure, bounded as our SETTINGS said. */
	s->hdr_bytes += nlen + vlen + 32;
	if (s->hdr_bytes > TUNNEL_MAX_HEADER_LIST || s->req.nf >= 2 * MSG_FIELDS_MAX)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (nlen > 0 && name[0] == ':')
		rc = s->in_trailers ? 0 : h2h1_pseudo(&s->req, name, nlen, v, vlen);
	else
		rc = msg_add_n(&s->req, name, nlen, v, vlen, s->in_trailers);
	return rc == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static void
astream_update_app(struct astream *s)
{
	struct appconn *c = s->ac;
	uint32_t ev = 0;

	if (c == NULL)
		return;
	if (!c->connected || s->toapp.len > 0)
		ev |= EPOLLOUT;
	if (c->connected && !s->resp_end && s->fromapp.len < ASTREAM_RESP_HIGH)
		ev |= EPOLLIN;
	if (ev == c->io.events && c->io.active)
		return;
	if (!c->io.active)
		ev_io_start(s->t->ag->loop, &c->io, c->fd, ev, astream_app_io, s);
	else
		ev_io_modify(s->t->ag->loop, &c->io, ev);
}

static int
astream_start(struct astream *s, int end)
{
	struct agent *ag = s->t->ag;
	struct buf b = { .data = malloc(BUF_SIZE) };
	int rc;

	if (h2h1_prepare(&s->req, end) == -1) {
		free(b.data);
		astream_fail(s, 400, "a request HTTP/1.1 cannot carry (no host or path, CONNECT, "
		    "a bad content-length)");
		return 0;
	}
	rc = b.data != NULL ? h1_write_request(&b, &s->req) : -1;
	if (rc == 0)
		rc = bytequeue_add(&s->toapp, b.data + b.off, b.len, ASTREAM_TOAPP_MAX);
	free(b.data);
	if (rc == -1) {
		astream_fail(s, 431, "request head too large for the app");
		return 0;
	}
	s->req_chunked = s->req.chunked;
	s->req_started = 1;
	if ((s->parser = h1_new(H1_RESPONSE, &s->resp, &as_events, s)) == NULL ||
	    (s->ac = appconn_get(ag)) == NULL) {
		astream_fail(s, 502, errno == ENOMEM ? "out of memory" : "the app refused the connection");
		return 0;
	}
	ev_timer_start(ag->loop, &s->timer, ag->conf.app_timeout_ms);
	astream_update_app(s);
	return 0;
}

/* The end of the request: the last chunk and the proxy's trailers. */
static int
astream_request_end(struct astream *s)
{
	s->req_end = 1;
	if (!s->req_chunked || !s->req_started)
		return 0;
	return h2h1_last_chunk(&s->req, &s->toapp, ASTREAM_TOAPP_MAX);
}

int
astream_frame(struct astream *s, int headers, int end)
{
	if (headers && !s->in_trailers) {
		s->in_trailers = 1;
		if (astream_start(s, end) == -1)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (end && !s->req_end && astream_request_end(s) == -1) {
		astream_fail(s, 502, "request trailers too large");
		return 0;
	}
	astream_update_app(s);
	return 0;
}

int
astream_body(struct astream *s, const char *p, size_t n)
{
	char size[24];
	int m;

	/* An empty DATA frame says nothing; as a chunk it would end the body. */
	if (n == 0)
		return 0;
	if (!s->req_started || s->ac == NULL) {
		/* Answered already (an error): the bytes are dropped, the window given back. */
		nghttp2_session_consume(s->t->h2, s->id, n);
		return 0;
	}
	s->unconsumed += n;
	m = snprintf(size, sizeof(size), "%zx\r\n", n);
	if ((s->req_chunked && bytequeue_add(&s->toapp, size, (size_t)m, ASTREAM_TOAPP_MAX) == -1) ||
	    bytequeue_add(&s->toapp, p, n, ASTREAM_TOAPP_MAX) == -1 ||
	    (s->req_chunked && bytequeue_add(&s->toapp, "\r\n", 2, ASTREAM_TOAPP_MAX) == -1)) {
		/* Only a proxy that ignores our window gets here. */
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	astream_update_app(s);
	return 0;
}

/* --- the response, HTTP/1.1 -> HTTP/2 */

static int
as_head(void *arg, struct msg_head *h)
{
	struct astream *s = arg;
	nghttp2_nv nv[MSG_FIELDS_MAX + 1];
	char st[4];
	size_t n;

	/* Interim answers (100 Continue...) stay on this hop: the final one follows. */
	if (h->status == 101)
		return -1;
	if (h->status / 100 == 1)
		return 0;
	ev_timer_stop(s->t->ag->loop, &s->timer);
	snprintf(st, sizeof(st), "%u", h->status % 1000);
	nv[0] = (nghttp2_nv)AS_NV(":status", st);
	n = h2h1_nv(h, 0, msg_nheaders(h) < MSG_FIELDS_MAX ? msg_nheaders(h) : MSG_FIELDS_MAX,
	    nv, 1);
	s->resp_reusable = h->keepalive;
	if (astream_submit(s, nv, n) != 0)
		return -1;
	/* A response to HEAD has no body whatever its fields say. */
	return s->req.method == MSG_M_HEAD ? 1 : 0;
}

static int
as_body(void *arg, const char *p, size_t n)
{
	struct astream *s = arg;

	if (bytequeue_add(&s->fromapp, p, n, ASTREAM_RESP_MAX) == -1)
		return -1;
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->t->h2, s->id);
	}
	return 0;
}

static int
as_end(void *arg, struct msg_head *h)
{
	struct astream *s = arg;

	if (h->status / 100 == 1)
		return 0;
	s->resp_end = 1;
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->t->h2, s->id);
	}
	return 0;
}

static ssize_t
as_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
    nghttp2_data_source *src, void *ud)
{
	struct astream *s = src->ptr;
	nghttp2_nv nv[MSG_FIELDS_MAX];
	size_t n = s->fromapp.len < len ? s->fromapp.len : len, nnv;
	struct msg_head *h = &s->resp;

	(void)ud;
	if (n > 0) {
		memcpy(buf, bytequeue_head(&s->fromapp), n);
		bytequeue_consume(&s->fromapp, n);
	}
	if (s->fromapp.len == 0 && s->resp_end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		nnv = h->ntrailers > 0 ? h2h1_nv(h, msg_nheaders(h), h->nf, nv, 0) : 0;
		if (nnv > 0 && nghttp2_submit_trailer(h2, id, nv, nnv) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	} else if (n == 0) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	/* Room again: read the app (SSE and the like flow as they are written). */
	if (s->ac != NULL && s->fromapp.len < ASTREAM_RESP_HIGH)
		astream_update_app(s);
	return (ssize_t)n;
}

/* Bytes from the app into the parser; 1xx heads skipped; -1 when the response is bad. */
static int
astream_parse(struct astream *s, const char *p, size_t n)
{
	ssize_t r;

	while (n > 0 && !s->resp_end) {
		if ((r = h1_feed(s->parser, p, n)) < 0)
			return -1;
		p += r;
		n -= (size_t)r;
		if (h1_done(s->parser) && !s->resp_end) {
			if (s->resp.status / 100 != 1 || s->resp.status == 101)
				return -1;
			msg_reset(&s->resp);
			h1_reset(s->parser);
		}
	}
	/* Bytes after the response: the connection is not clean enough to reuse. */
	if (n > 0)
		s->resp_reusable = 0;
	return 0;
}

/* The request's bytes toward the app; the window reopens once they are all taken. */
static int
astream_write_app(struct astream *s)
{
	if (s->toapp.len > 0 && bytequeue_write_fd(&s->toapp, s->ac->fd) == -1)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (s->toapp.len > 0)
		return 0;
	if (s->unconsumed > 0) {
		nghttp2_session_consume(s->t->h2, s->id, s->unconsumed);
		s->unconsumed = 0;
		tunnel_flush(s->t);
	}
	if (s->req_end)
		s->req_written = 1;
	return 0;
}

static void
astream_read_app(struct astream *s)
{
	char b[ASTREAM_READ];
	ssize_t n;

	do
		n = recv(s->ac->fd, b, sizeof(b), 0);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n > 0) {
		if (astream_parse(s, b, (size_t)n) == -1)
			astream_fail(s, 502, "the app sent a bad response");
	} else if (h1_eof(s->parser) == 0 && h1_done(s->parser) && s->resp_submitted) {
		/* A body that ends with the connection: complete, but not reusable. */
		s->resp_reusable = 0;
		as_end(s, &s->resp);
	} else {
		astream_fail(s, 502, n == 0 ? "the app closed the connection early" :
		    "the app's connection failed");
	}
}

static void
astream_app_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct astream *s = io->arg;
	struct tunnel *t = s->t;

	(void)l;
	if (!s->ac->connected) {
		if (appconn_finish_connect(s->ac) == -1) {
			astream_fail(s, 502, "the app refused the connection");
			return;
		}
	}
	if ((events & (EPOLLOUT | EPOLLERR)) && astream_write_app(s) == -1) {
		astream_fail(s, 502, "the app's connection failed while sending the request");
		return;
	}
	if (s->ac != NULL && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->resp_end)
		astream_read_app(s);
	if (s->ac != NULL && s->resp_end && s->req_written && s->fromapp.len == 0 && !s->closed) {
		/* Done on the app's side: the connection may serve another stream now. */
		astream_release_app(s);
	}
	if (s->ac != NULL)
		astream_update_app(s);
	tunnel_flush(t);
}
