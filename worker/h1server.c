/*
 * The HTTP/1.1 session (struct session_ops, see conn.h): requests read in
 * order (pipelined ones wait), each handed to the request step
 * (worker/request.c) as a neutral head; the exchange's sink, which encodes
 * responses as HTTP/1.1; keep-alive; the client-side timeouts; and, after a
 * 101, the connection as a raw byte pipe through the same exchange.
 *
 * A session exists only while something is in progress: between requests
 * (keep-alive, nothing buffered, nothing owed) it is freed, parser and all,
 * and c->sess is NULL while c->sops stays; the next bytes (any run) make a
 * new one. An idle keep-alive connection then costs its struct conn alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "share/hostname.h"
#include "share/log.h"
#include "share/util.h"
#include "worker/accesslog.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/exchange.h"
#include "worker/http1.h"
#include "worker/request.h"

#define HEAD_FEED_MAX (12 * 1024)	/* see h1s_parse: what one feed may turn into */
#define CHUNK_SLACK 64			/* chunk framing added per body piece */
#define RESP_HEAD_RESERVE (MSG_MEM_MAX + 2048)	/* a response head as we encode it */

enum { TIMER_NONE, TIMER_KEEPALIVE, TIMER_HEADER, TIMER_BODY };

struct h1s {
	struct conn *c;
	struct h1 *h1;
	struct msg_head req;
	struct exchange *ex;
	struct msg_str host;		/* in req: an idle connection holds no copy of a name */
	uint64_t start_us;
	enum h1_framing fr;
	unsigned req_active : 1;	/* a request started and is not answered yet */
	unsigned req_done : 1;		/* the whole request was read */
	unsigned resp_started : 1;	/* a response head is written */
	unsigned resp_done : 1;		/* the whole response is written to out */
	unsigned keepalive : 1;
	unsigned close_after : 1;	/* close once out is flushed */
	unsigned hsts : 1;		/* the route asks for HSTS */
	unsigned pipe : 1;		/* after a 101: raw bytes both ways */
	unsigned pipe_eof : 1;		/* pipe: the client's half-close went to the exchange */
	unsigned pipe_shut : 1;		/* pipe: the backend is done; shut our write side */
	unsigned timer_phase : 3;	/* what the armed timer is for */
};

static const struct h1_events h1s_req_events;

/* Where the parser starts in a session's allocation. */
#define H1S_SIZE ((sizeof(struct h1s) + 15) & ~(size_t)15)

static int
h1s_minor(const struct h1s *s)
{
	return h1_head_done(s->h1) && s->req.major == 1 ? s->req.minor : 1;
}

/* Writes an answer of ours into out (the connection closes on failure). */
static void
h1s_write_answer(struct h1s *s, struct answer *ans)
{
	struct conn *c = s->c;

	if (ans->close || c->w->stopping || !s->keepalive)
		s->close_after = 1;
	if (buf_get(&c->w->bufs, &c->out) == -1 ||
	    h1_write_response(&c->out, &ans->head, H1_FRAME_LENGTH, !s->close_after,
	    h1s_minor(s)) == -1 || ans->body_len > buf_room(&c->out)) {
		c->out.len = 0;
		s->close_after = 1;
	} else if (ans->body_len > 0)
		buf_append(&c->out, ans->body, ans->body_len);
	request_answer_free(ans);
	s->resp_started = s->resp_done = 1;
	conn_kick(c);
}

/* A body we will not read, or a request we could not parse, ends the connection. */
static void
h1s_unread_closes(struct h1s *s)
{
	int head_done = h1_head_done(s->h1);

	if (!s->req_done && (!head_done || s->req.chunked || s->req.length > 0))
		s->close_after = 1;
}

/* An error of the session's own (400, 408, 431...) or an exchange that failed before its head. */
static void
h1s_error(struct h1s *s, unsigned status, int log)
{
	const struct msg_head *req = h1_head_done(s->h1) ? &s->req : NULL;
	struct answer ans;

	h1s_unread_closes(s);
	if (log)
		accesslog_local(s->c->w, req, msg_s(&s->req, s->host), 0, status, s->start_us, s->c->ip);
	msg_init(&ans.head);
	if (request_error(s->c->w, status, ERRPAGE_STATUS, req, s->hsts, &ans) == -1) {
		request_answer_free(&ans);
		s->close_after = 1;
		s->resp_started = s->resp_done = 1;
		conn_kick(s->c);
		return;
	}
	h1s_write_answer(s, &ans);
}

/* A broken or stalled request: drop its exchange (the backend's connection with it) and answer. */
static void
h1s_refuse(struct h1s *s, unsigned status)
{
	if (s->ex != NULL)
		exchange_abort(s->ex, 0);
	s->ex = NULL;
	h1s_error(s, status, 1);
}

/* --- the exchange's sink */

static int
sink_head(void *arg, struct msg_head *resp, int nobody)
{
	struct h1s *s = arg;
	struct conn *c = s->c;
	int minor = h1s_minor(s), keepalive;

	conn_kick(c);
	if (buf_get(&c->w->bufs, &c->out) == -1)
		return -1;
	if (resp->status == 101) {
		s->pipe = 1;
		s->resp_started = 1;
		return h1_write_response(&c->out, resp, H1_FRAME_UPGRADE, 1, 1);
	}
	if (resp->status / 100 == 1) {
		if (minor == 0)
			return 0;	/* HTTP/1.0 clients get no interim responses */
		return h1_write_response(&c->out, resp, H1_FRAME_NONE, 1, minor);
	}
	if (nobody)
		s->fr = H1_FRAME_NONE;
	else if (resp->has_length)
		s->fr = H1_FRAME_LENGTH;
	else
		s->fr = minor > 0 ? H1_FRAME_CHUNKED : H1_FRAME_CLOSE;
	keepalive = s->keepalive && !s->close_after && !c->w->stopping && s->fr != H1_FRAME_CLOSE;
	if (!keepalive)
		s->close_after = 1;
	s->resp_started = 1;
	return h1_write_response(&c->out, resp, s->fr, keepalive, minor);
}

static int
sink_body(void *arg, const char *p, size_t n)
{
	struct h1s *s = arg;
	struct conn *c = s->c;

	conn_kick(c);
	if (buf_get(&c->w->bufs, &c->out) == -1)
		return -1;
	if (s->fr == H1_FRAME_CHUNKED && !s->pipe)
		return h1_write_chunk(&c->out, p, n);
	if (n > buf_room(&c->out))
		return -1;
	buf_append(&c->out, p, n);
	return 0;
}

static void
sink_shut(void *arg)
{
	struct h1s *s = arg;

	s->pipe_shut = 1;
	conn_kick(s->c);
}

static void
sink_end(void *arg, struct msg_head *resp)
{
	struct h1s *s = arg;

	s->ex = NULL;
	if (s->pipe)
		s->close_after = 1;
	else if (s->fr == H1_FRAME_CHUNKED && (buf_get(&s->c->w->bufs, &s->c->out) == -1 ||
	    h1_write_last_chunk(&s->c->out, resp) == -1))
		s->close_after = 1;
	if (!s->req_done)
		s->close_after = 1;
	s->resp_done = 1;
	conn_kick(s->c);
}

static void
sink_fail(void *arg, unsigned status)
{
	struct h1s *s = arg;

	s->ex = NULL;
	if (status != 0 && !s->resp_started) {
		h1s_error(s, status, 0);	/* the exchange logged it */
		return;
	}
	/* Part of the response went out: cutting the connection is the only honest signal. */
	s->close_after = 1;
	s->resp_done = 1;
	conn_kick(s->c);
}

static size_t
sink_room(void *arg)
{
	struct h1s *s = arg;
	size_t room, reserve;

	if (buf_get(&s->c->w->bufs, &s->c->out) == -1)
		return 0;
	room = buf_room(&s->c->out);
	reserve = s->pipe ? 0 : s->resp_started ? CHUNK_SLACK + MSG_TRAILER_MAX : RESP_HEAD_RESERVE;
	return room > reserve ? room - reserve : 0;
}

static void
sink_more(void *arg)
{
	struct h1s *s = arg;

	conn_kick(s->c);
}

/* A stored body from the cache's map: one writev with the head still buffered, no copy. */
static size_t
sink_body_direct(void *arg, const char *p, size_t n)
{
	struct h1s *s = arg;

	if (s->pipe || s->fr != H1_FRAME_LENGTH)
		return 0;	/* chunked framing goes around each piece: body() */
	conn_kick(s->c);
	return conn_write_direct(s->c, p, n);
}

static const struct sink_ops h1s_sink = {
	sink_head, sink_body, sink_shut, sink_end, sink_fail, sink_room, sink_more,
	sink_body_direct,
};

/* --- the request parser's events */

static int
h1s_on_head(void *arg, struct msg_head *h)
{
	struct h1s *s = arg;
	struct conn *c = s->c;
	struct request r;

	s->keepalive = h->keepalive != 0;
	msg_init(&r.ans.head);
	if ((c->w->step != NULL ? c->w->step : request_step)(c->w,
	    &(struct request_peer){ c->ip, c->trusted, c->tls != NULL, &c->addrs }, h,
	    s->start_us, &h1s_sink, s, &r) == -1) {
		request_answer_free(&r.ans);
		return -1;	/* out of memory: answered as a bad request */
	}
	if (msg_str(&s->req, r.host, strnlen(r.host, sizeof(r.host)), &s->host) == -1)
		s->host = (struct msg_str){ 0, 0 };	/* logged without it */
	s->hsts = r.hsts != 0;
	if ((s->ex = r.ex) != NULL)
		return 0;
	h1s_unread_closes(s);
	h1s_write_answer(s, &r.ans);
	return 1;
}

static int
h1s_on_body(void *arg, const char *p, size_t n)
{
	struct h1s *s = arg;

	return s->ex != NULL ? exchange_body(s->ex, p, n) : 0;
}

static int
h1s_on_end(void *arg, struct msg_head *h)
{
	struct h1s *s = arg;

	s->req_done = 1;
	return s->ex != NULL ? exchange_body_end(s->ex, h) : 0;
}

static const struct h1_events h1s_req_events = { h1s_on_head, h1s_on_body, h1s_on_end };

/* --- the session */

static void
h1s_begin_request(struct h1s *s)
{
	h1_reset(s->h1);
	s->req_active = 1;
	s->start_us = util_now_us();
	s->host = (struct msg_str){ 0, 0 };
	s->hsts = 0;
	s->c->served = 1;
	s->c->w->requests++;
}

/* Feeds buffered bytes to the request parser as far as the exchange takes them. */
static void
h1s_parse(struct h1s *s)
{
	struct conn *c = s->c;

	while (c->in.len > 0 && !c->dead && !s->req_done && !s->close_after) {
		size_t feed = c->in.len;
		ssize_t n;

		if (!s->req_active) {
			if (c->out.len > 0)
				return;	/* the previous answer goes out first */
			h1s_begin_request(s);
		}
		if (!h1_head_done(s->h1) && feed > HEAD_FEED_MAX)
			feed = HEAD_FEED_MAX;
		if (h1_head_done(s->h1)) {
			size_t room = s->ex != NULL ? exchange_room(s->ex) : 0;
			if (room == 0)
				return;
			if (feed > room)
				feed = room;
		}
		if ((n = h1_feed(s->h1, buf_head(&c->in), feed)) == -1) {
			if (c->dead)
				return;
			if (s->resp_started)
				conn_close(c);	/* too late for an answer of our own */
			else
				h1s_refuse(s, h1_error(s->h1) != 0 ? h1_error(s->h1) : 400);
			return;
		}
		buf_consume(&c->in, (size_t)n);
	}
}

/* After a 101: client bytes to the exchange as far as it takes them; the half-closes. */
static void
h1s_pipe(struct h1s *s)
{
	struct conn *c = s->c;

	if (s->ex != NULL && c->in.len > 0) {
		size_t n = exchange_room(s->ex);

		if (n > c->in.len)
			n = c->in.len;
		if (n > 0 && exchange_body(s->ex, buf_head(&c->in), n) == -1) {
			conn_close(c);
			return;
		}
		buf_consume(&c->in, n);
	}
	if (s->ex != NULL && c->peer_eof && c->in.len == 0 && !s->pipe_eof) {
		s->pipe_eof = 1;
		if (exchange_body_end(s->ex, NULL) == -1) {
			conn_close(c);
			return;
		}
	}
	if (s->pipe_shut && c->out.len == 0)
		conn_shut_write(c);
}

/* The answer is out: close, or get ready for the next request. */
static void
h1s_next(struct h1s *s)
{
	struct conn *c = s->c;

	/*
	 * In a hand-over's drain an answer that promised keep-alive (its head went
	 * out before the stop) keeps it: the next one says close, then we do.
	 */
	if (s->close_after || (c->w->stopping && !c->w->stop_keep_fresh) ||
	    (c->peer_eof && c->in.len == 0)) {
		if (s->pipe)
			conn_close(c);
		else
			conn_linger(c, s->req_done && c->in.len == 0);
		return;
	}
	s->req_active = s->req_done = s->resp_started = s->resp_done = 0;
	buf_put(&c->w->bufs, &c->out);
	if (c->in.len == 0) {
		buf_put(&c->w->bufs, &c->in);
		msg_free(&s->req);
	}
}

static void
h1s_update_timer(struct h1s *s)
{
	struct conn *c = s->c;
	struct worker *w = c->w;
	unsigned phase = s->pipe ? TIMER_NONE : !s->req_active ? TIMER_KEEPALIVE :
	    !h1_head_done(s->h1) && !s->resp_started ? TIMER_HEADER :
	    s->ex != NULL && !s->req_done ? TIMER_BODY : TIMER_NONE;
	uint32_t ms[] = { 0, w->cfg.keepalive_timeout_ms, w->cfg.header_timeout_ms,
	    w->cfg.body_timeout_ms };

	if (phase == s->timer_phase)
		return;
	s->timer_phase = phase;
	if (phase == TIMER_NONE)
		ev_timer_stop(w->loop, &c->timer);
	else
		ev_timer_start(w->loop, &c->timer, ms[phase]);
}

/* Flushes, and tells the exchange when room opened; 0 or -1 (closed). */
static int
h1s_flush(struct h1s *s)
{
	int moved;

	if (conn_flush(s->c, &moved) == -1) {
		conn_close(s->c);
		return -1;
	}
	if (s->c->out.len == 0)
		buf_put(&s->c->w->bufs, &s->c->out);	/* taken again by the next room() */
	if (moved && s->ex != NULL)
		exchange_resume(s->ex);
	return 0;
}

/* Reads on while a response is pending: pipelined bytes wait in in, epoll interest stays. */
static int
h1s_read(struct h1s *s)
{
	struct conn *c = s->c;
	size_t before = c->in.len;

	if (s->close_after && !s->pipe)
		return 0;
	if (conn_read(c) == -1) {
		conn_close(c);
		return -1;
	}
	if (c->in.len > before && s->timer_phase == TIMER_BODY)
		ev_timer_start(c->w->loop, &c->timer, c->w->cfg.body_timeout_ms);
	/* A paused or finished body holds no buffer: the next read takes one again. */
	if (c->in.len == 0)
		buf_put(&c->w->bufs, &c->in);
	return 0;
}

static void
h1s_work(struct h1s *s)
{
	if (s->pipe)
		h1s_pipe(s);
	else
		h1s_parse(s);
}

/* Nothing in progress, nothing buffered: the session can go until the next bytes. */
static int
h1s_parkable(const struct h1s *s)
{
	const struct conn *c = s->c;

	return !c->dead && !c->lingering && !s->req_active && s->ex == NULL && !s->pipe &&
	    !s->close_after && c->in.data == NULL && c->out.data == NULL &&
	    s->timer_phase == TIMER_KEEPALIVE;
}

static void
h1s_run_session(struct h1s *s)
{
	struct conn *c = s->c;

	if (h1s_flush(s) == -1 || h1s_read(s) == -1)
		return;
	h1s_work(s);
	if (c->dead || h1s_flush(s) == -1)
		return;
	if (s->resp_done && c->out.len == 0) {
		h1s_next(s);
		if (c->dead || c->lingering)
			return;
		h1s_work(s);
		if (c->dead)
			return;
	}
	if (!s->pipe && c->peer_eof && c->in.len == 0 && c->out.len == 0 &&
	    (!s->req_active || (!s->req_done && !s->resp_started))) {
		conn_close(c);
		return;
	}
	h1s_update_timer(s);
	(void)conn_watch(c, !(s->close_after && !s->pipe));
}

static void
h1s_timeout(struct conn *c)
{
	struct h1s *s = c->sess;

	if (s == NULL) {
		conn_close(c);	/* parked: its keep-alive time is up */
		return;
	}
	if (s->timer_phase == TIMER_BODY && c->in.len > 0) {
		/* Input is waiting for the backend, not the other way round. */
		ev_timer_start(c->w->loop, &c->timer, c->w->cfg.body_timeout_ms);
		return;
	}
	if ((s->timer_phase == TIMER_HEADER || s->timer_phase == TIMER_BODY) && !s->resp_started) {
		log_info("client %s: %s timed out", c->ip,
		    s->timer_phase == TIMER_HEADER ? "request head" : "request body");
		s->timer_phase = TIMER_NONE;
		h1s_refuse(s, 408);
		return;
	}
	conn_close(c);
}

static int
h1s_idle(const struct conn *c)
{
	const struct h1s *s = c->sess;

	/*
	 * Closing an idle connection races a request the client may be sending
	 * (a reused one is retried, RFC 9112 9.3.1; a fresh one cannot be: see
	 * conn_close_idle). A hand-over's drain closes none: the next request is
	 * answered with Connection: close, or keepalive_timeout ends it.
	 */
	return !c->w->stop_keep_fresh && (s == NULL || (!s->req_active && c->in.len == 0));
}

/* A session on c (none there); timer_phase: what c's timer is armed for now. 0 or -1. */
static int
h1s_new(struct conn *c, unsigned timer_phase)
{
	/*
	 * malloc and an initialiser, not calloc (nor memset, which compilers turn
	 * into calloc): glibc's calloc skips its thread cache, and this runs per request.
	 */
	/* The parser after the struct, in one allocation (made per request). */
	struct h1s *s = malloc(H1S_SIZE + h1_size());

	if (s == NULL)
		return -1;
	*s = (struct h1s){ .c = c, .timer_phase = timer_phase & 7 };
	s->h1 = h1_init((char *)s + H1S_SIZE, H1_REQUEST, &s->req, &h1s_req_events, s);
	c->sess = s;
	return 0;
}

static int
h1s_start(struct conn *c)
{
	if (h1s_new(c, TIMER_NONE) == -1)
		return -1;
	h1s_update_timer(c->sess);
	return 0;
}

/* Aborts what is in flight; the struct stays until h1s_free (a parser may be running). */
static void
h1s_stop(struct conn *c)
{
	struct h1s *s = c->sess;

	if (s == NULL)
		return;
	if (s->ex != NULL)
		exchange_abort(s->ex, 499);
	s->ex = NULL;
}

static void
h1s_free(struct conn *c)
{
	struct h1s *s = c->sess;

	msg_free(&s->req);
	free(s);
	c->sess = NULL;
}

static void
h1s_run(struct conn *c)
{
	struct h1s *s = c->sess;

	/* Parked (idle keep-alive): its keep-alive timer runs on, so the phase says so. */
	if (s == NULL) {
		if (h1s_new(c, TIMER_KEEPALIVE) == -1) {
			conn_close(c);
			return;
		}
		s = c->sess;
	}
	h1s_run_session(s);
	if (!c->dead && h1s_parkable(s))
		h1s_free(c);
}

const struct session_ops h1server_ops = {
	"http/1.1", h1s_start, h1s_run, h1s_timeout, h1s_idle, h1s_stop, h1s_free,
};
