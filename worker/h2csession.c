/*
 * One HTTP/2 connection to a backend for the HTTP/2 upstream
 * (worker/h2client.c): an nghttp2 client session with memory I/O
 * (nghttp2_session_mem_recv/mem_send through 32 KiB buffers) over a socket
 * read and written with tls_buf_read/tls_buf_write, so plain TCP or TLS,
 * whoever connected it; nghttp2's callbacks, which only record what
 * happened on each stream (h2client_pump delivers it); the connect timeout,
 * PING after silence and the close of a session without streams.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "share/log.h"
#include "share/util.h"
#include "worker/context.h"
#include "worker/h2clientint.h"
#include "worker/tls.h"

static void h2c_run(struct h2conn *c);

/* --- kicks: a session runs after the current batch of events */

static void
h2c_conn_kick_run(void *arg)
{
	struct h2conn *c = arg;

	c->kick_pending = 0;
	if (c->dead)
		free(c);
	else
		h2c_run(c);
}

void
h2csession_kick(struct h2conn *c)
{
	(void)ev_defer_once(c->w->loop, h2c_conn_kick_run, c, &c->kick_pending);
}

/* --- the transport */

static int
h2c_flush(struct h2conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = tls_buf_write(c->tc, c->fd, &c->out);

		if (n >= 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		return -1;
	}
	if (c->out.len == 0)
		buf_put(&c->w->bufs, &c->out);
	return 0;
}

/* Reads what fits; 0, or -1 when the connection ended or failed. */
static int
h2c_read(struct h2conn *c)
{
	ssize_t n;

	if (buf_get(&c->w->bufs, &c->in) == -1 || buf_room(&c->in) == 0)
		return 0;
	n = tls_buf_read(c->tc, c->fd, &c->in);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
		return 0;
	if (n == 0)
		log_debug("%s: HTTP/2 connection closed by the peer", c->who);
	else
		log_info("%s: HTTP/2 connection: %s", c->who, strerror(errno));
	if (c->why == NULL)
		c->why = n == 0 ? "closed by the agent" : "connection failed";
	return -1;
}

static void
h2c_recv(struct h2conn *c)
{
	ssize_t n;

	if (c->in.len == 0)
		return;
	n = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf_head(&c->in), c->in.len);
	if (n < 0) {
		log_info("%s: HTTP/2: %s", c->who, nghttp2_strerror((int)n));
		if (c->why == NULL)
			c->why = nghttp2_strerror((int)n);
		if (!c->broken)
			(void)nghttp2_session_terminate_session(c->ng, n == NGHTTP2_ERR_FLOODED ||
			    n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM :
			    NGHTTP2_PROTOCOL_ERROR);
		c->broken = 1;
		return;
	}
	buf_consume(&c->in, (size_t)n);
}

/*
 * Reverse tunnels: the agent sent the client magic, so nghttp2's own (its
 * first output, always) must not reach it. Checked, so a library that
 * stopped emitting it is caught rather than cutting into a SETTINGS frame.
 */
static int
h2c_drop_magic(struct h2conn *c)
{
	static const char magic[] = NGHTTP2_CLIENT_MAGIC;
	size_t off = NGHTTP2_CLIENT_MAGIC_LEN - c->magic_left;
	size_t n = c->pend_len < c->magic_left ? c->pend_len : c->magic_left;

	if (memcmp(c->pend, magic + off, n) != 0) {
		log_warnx("tunnel %s: nghttp2 did not start with the client magic", c->pool->name);
		return -1;
	}
	c->pend += n;
	c->pend_len -= n;
	c->magic_left -= n;
	return 0;
}

/* Copies what nghttp2 has to send into out, as far as it has room. */
static int
h2c_send(struct h2conn *c)
{
	for (;;) {
		size_t room, n;

		if (c->pend_len == 0) {
			ssize_t got = nghttp2_session_mem_send(c->ng, &c->pend);

			if (got < 0) {
				log_info("%s: HTTP/2: %s", c->who,
				    nghttp2_strerror((int)got));
				return -1;
			}
			if (got == 0)
				return 0;
			c->pend_len = (size_t)got;
			if (c->magic_left > 0 && h2c_drop_magic(c) == -1)
				return -1;
			if (c->pend_len == 0)
				continue;
		}
		if (buf_get(&c->w->bufs, &c->out) == -1 || (room = buf_room(&c->out)) == 0)
			return 0;
		n = c->pend_len < room ? c->pend_len : room;
		buf_append(&c->out, c->pend, n);
		c->pend += n;
		c->pend_len -= n;
	}
}

/* Over TLS we dialled, once the handshake is done: -1 unless the backend agreed on h2 (ALPN). */
static int
h2c_alpn(struct h2conn *c)
{
	if (c->tc == NULL || c->pool->cfg == 0 || c->alpn_checked || !tls_conn_established(c->tc))
		return 0;
	c->alpn_checked = 1;
	if (tls_conn_h2(c->tc))
		return 0;
	log_info("%s: TLS: the backend did not agree on h2 (ALPN)", c->who);
	return -1;
}

/* What a stream hears when its session died under it. */
static void
h2c_stream_orphan(struct ustream *s)
{
	if (!s->ng_closed && !s->resp_done) {
		if (s->got_byte)
			h2client_stream_error(s, UPSTREAM_BROKEN, 0);
		else if (s->reused && !s->fresh && s->rx_at_submit == s->c->rx_frames)
			h2client_stream_error(s, UPSTREAM_STALE, 0);	/* not a word since: it was dead */
		else
			h2client_stream_error(s, UPSTREAM_RESET, 0);
	}
	s->ng_closed = 1;
	h2client_stream_unlink(s);
	h2client_stream_kick(s);
}

static void
h2c_uncount(struct h2conn *c)
{
	if (c->counted)
		c->pool->nconns--;
	c->counted = 0;
}

/* Closes the connection; its streams are told (or reaped), the struct goes after this batch. */
void
h2csession_close(struct h2conn *c)
{
	struct h2conn **pp;

	if (c->dead)
		return;
	c->dead = 1;
	h2c_uncount(c);
	if (c->pool->refused == c)
		c->pool->refused = NULL;
	for (pp = &c->pool->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	while (c->streams != NULL)
		h2c_stream_orphan(c->streams);
	/* Gone before its SETTINGS: the backend does not speak HTTP/2 here; nothing was sent. */
	if (!c->ready && c->pool->qhead != NULL && !c->reverse) {
		if (c->tc != NULL && tls_conn_error(c->tc)[0] != '\0')
			log_info("%s: TLS handshake failed: %s", tls_conn_peer(c->tc),
			    tls_conn_error(c->tc));
		else
			log_info("%s: no HTTP/2 session: closed before the backend's "
			    "SETTINGS", c->who);
		h2client_fail_queue(c->pool, EPROTO);
	}
	ev_io_stop(c->w->loop, &c->io);
	ev_timer_stop(c->w->loop, &c->timer);
	nghttp2_session_del(c->ng);
	tls_conn_free(c->tc);
	close(c->fd);
	buf_put(&c->w->bufs, &c->in);
	buf_put(&c->w->bufs, &c->out);
	if (c->on_close != NULL)
		c->on_close(c->owner, c->why != NULL ? c->why : "closed");
	h2csession_kick(c);	/* the free */
}

/* The session's next deadline: connect, PING answer, PING due, idle close. */
static void
h2c_arm(struct h2conn *c)
{
	const struct h2client_pools *t = c->w->h2pools;
	uint64_t now = ev_now(c->w->loop), at;

	if (!c->ready)
		at = c->born + c->connect_ms;
	else if (c->reverse)	/* an agent's tunnel stays without streams: PING only */
		at = c->ping_out ? c->ping_at + t->tun_ping_timeout_ms : c->last_rx + t->tun_ping_ms;
	else {
		at = c->ping_out ? c->ping_at + c->connect_ms : c->last_rx + t->ping_ms;
		if (c->nactive == 0 && c->idle_since + t->idle_ms < at)
			at = c->idle_since + t->idle_ms;
	}
	ev_timer_start(c->w->loop, &c->timer, at > now ? at - now : 0);
}

static void
h2c_watch(struct h2conn *c)
{
	uint32_t ev = EPOLLIN;

	if (c->out.len > 0 || c->pend_len > 0 || c->connecting)
		ev |= EPOLLOUT;
	if (c->connecting)
		ev = EPOLLOUT;
	ev |= tls_conn_events(c->tc);
	if (ev != c->io.events && ev_io_modify(c->w->loop, &c->io, ev) == -1)
		c->lost = 1;
}

/* One turn: write, read, feed nghttp2, deliver to the streams, place waiting ones, write. */
static void
h2c_run(struct h2conn *c)
{
	struct ustream *s, *next;

	if (c->dead || c->connecting)
		return;
	if (h2c_flush(c) == -1 || (!c->broken && h2c_read(c) == -1) || h2c_alpn(c) == -1)
		c->lost = 1;
	if (!c->lost && !c->broken)
		h2c_recv(c);
	if (c->in.len == 0)
		buf_put(&c->w->bufs, &c->in);
	for (s = c->streams; s != NULL; s = next) {
		next = s->next;
		h2client_pump(s);
	}
	if (c->lost) {
		h2csession_close(c);
		return;
	}
	if (!c->broken && !c->goaway && c->ready &&
	    h2client_dispatch(c->pool, c->connect_ms) == -1)
		h2client_fail_queue(c->pool, errno);
	/* A drained tunnel hears its GOAWAY only now (see h2client_session_goaway). */
	if (c->goaway_due && c->nactive == 0) {
		c->goaway_due = 0;
		(void)nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
	}
	if (h2c_send(c) == -1 || h2c_flush(c) == -1) {
		h2csession_close(c);
		return;
	}
	if (c->out.len == 0 && c->pend_len == 0 && (c->broken || (c->goaway && c->nactive == 0) ||
	    (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)))) {
		h2csession_close(c);
		return;
	}
	/*
	 * Again only where a turn can make progress: a kick that cannot would run
	 * again in the same pass of deferred calls, forever. Else EPOLLOUT or
	 * EPOLLIN brings us back.
	 */
	if ((c->pend_len > 0 && c->out.len < BUF_SIZE) ||
	    (!c->broken && tls_conn_pending(c->tc)))
		h2csession_kick(c);
	h2c_watch(c);
	h2c_arm(c);
	if (c->lost)
		h2csession_close(c);
}

/* The pending connect's event came: on its way, or the streams waiting for it fail. */
static int
h2c_connect_done(struct h2conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		log_info("%s: connect: %s", c->who, strerror(err));
		h2client_fail_queue(c->pool, err);
		h2csession_close(c);
		return -1;
	}
	c->connecting = 0;
	return 0;
}

static void
h2c_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct h2conn *c = io->arg;

	(void)l;
	(void)events;
	if (!c->connecting || h2c_connect_done(c) == 0)
		h2c_run(c);
}

/* An agent's tunnel: attach deadline, PING after silence, dropped without its ACK. */
static void
h2c_reverse_timer(struct h2conn *c, uint64_t now)
{
	const struct h2client_pools *t = c->w->h2pools;

	if (!c->ready) {
		c->why = "no SETTINGS exchange in time";
		h2csession_close(c);
		return;
	}
	if (c->ping_out && now >= c->ping_at + t->tun_ping_timeout_ms) {
		c->why = "no answer to PING";
		h2csession_close(c);
		return;
	}
	if (!c->ping_out && now >= c->last_rx + t->tun_ping_ms &&
	    nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
		c->ping_out = 1;
		c->ping_at = now;
		c->ping_sent_us = util_now_us();
	}
	h2c_run(c);
}

static void
h2c_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct h2conn *c = t->arg;
	uint64_t now = ev_now(l);

	if (c->reverse) {
		h2c_reverse_timer(c, now);
		return;
	}
	if (!c->ready) {
		log_info("%s: HTTP/2 connect timed out", c->who);
		h2client_fail_queue(c->pool, ETIMEDOUT);
		h2csession_close(c);
		return;
	}
	if (c->ping_out && now >= c->ping_at + c->connect_ms) {
		log_info("%s: no answer to HTTP/2 PING: closing", c->who);
		h2csession_close(c);
		return;
	}
	if (c->nactive == 0 && now >= c->idle_since + c->w->h2pools->idle_ms) {
		(void)nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR);
		h2c_uncount(c);
		c->goaway = c->broken = 1;
	} else if (!c->ping_out && now >= c->last_rx + c->w->h2pools->ping_ms) {
		if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) == 0) {
			c->ping_out = 1;
			c->ping_at = now;
		}
	}
	h2c_run(c);
}

/* --- nghttp2's callbacks: they record, h2client_pump delivers */

static struct ustream *
h2c_stream_of(nghttp2_session *ng, int32_t id)
{
	struct ustream *s = nghttp2_session_get_stream_user_data(ng, id);

	return s != NULL && !s->dead ? s : NULL;
}

/* HTTP/2 has no reason phrase: an HTTP/1.1 client gets the usual one (RFC 9110 15), else none. */
static const char *
h2c_reason(unsigned status)
{
	static const struct { unsigned status; const char *reason; } r[] = {
		{ 100, "Continue" }, { 103, "Early Hints" }, { 200, "OK" }, { 201, "Created" },
		{ 202, "Accepted" }, { 204, "No Content" }, { 206, "Partial Content" },
		{ 301, "Moved Permanently" }, { 302, "Found" }, { 303, "See Other" },
		{ 304, "Not Modified" }, { 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 410, "Gone" }, { 412, "Precondition Failed" }, { 413, "Content Too Large" },
		{ 415, "Unsupported Media Type" }, { 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(r); i++)
		if (r[i].status == status)
			return r[i].reason;
	return "";
}

/* The head is complete: its framing as the neutral message says it. */
static int
h2c_final_head(struct ustream *s, int end_stream)
{
	struct msg_head *h = &s->resp;
	const struct msg_field *cl = msg_find(h, "content-length");
	int nobody = s->req->method == MSG_M_HEAD || h->status == 204 || h->status == 304;

	h->major = 2;
	h->minor = 0;
	h->keepalive = 1;
	if (msg_str(h, h2c_reason(h->status), strlen(h2c_reason(h->status)), &h->reason) == -1)
		return -1;
	if (cl != NULL) {
		if (util_parse_u64(msg_value(h, cl), 0, UINT64_MAX, &h->length) == -1)
			return -1;
		h->has_length = 1;
	} else if (end_stream && !nobody)
		h->has_length = 1;	/* length 0: an HTTP/1.1 client needs no chunks */
	else if (!nobody)
		h->chunked = 1;	/* DATA of a length nobody said: chunked for HTTP/1.1 */
	/* A gRPC "trailers-only" answer must reach an HTTP/2 client as one HEADERS, END_STREAM. */
	h->complete = end_stream != 0;
	s->head_ready = 1;
	return 0;
}

/* About what h encodes to in HTTP/1.1: ": " and CRLF where the head has two NULs per field. */
size_t
h2csession_head_size(const struct msg_head *h)
{
	return h->len + 2 * (size_t)h->nf + H2C_HEAD_SLACK;
}

/* An interim 1xx goes to the exchange at once when it has room; else it is dropped. */
static void
h2c_interim(struct ustream *s)
{
	const char *reason = h2c_reason(s->resp.status);

	(void)msg_str(&s->resp, reason, strlen(reason), &s->resp.reason);
	if (s->ev->room(s->arg) >= h2csession_head_size(&s->resp) &&
	    s->ev->head(s->arg, &s->resp) == -1)
		h2client_stream_error(s, UPSTREAM_BROKEN, 0);
	msg_reset(&s->resp);
}

static int
h2c_on_headers(struct h2conn *c, struct ustream *s, const nghttp2_frame *f)
{
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	if (s->head_ready) {	/* trailers */
		s->resp_done = end;
		return 0;
	}
	if (s->resp.status / 100 == 1) {
		if (++s->interim > H2C_INTERIM_MAX) {
			log_info("%s: too many interim responses", c->who);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		h2c_interim(s);
		return 0;
	}
	if (h2c_final_head(s, end) == -1) {
		log_info("%s: bad content-length in a response", c->who);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->resp_done = end;
	return 0;
}

/* Reverse: ready once the agent's SETTINGS arrived and ours were acknowledged (the rhttp dialect). */
static void
h2c_reverse_settings(struct h2conn *c, const nghttp2_frame *f)
{
	if (f->hd.flags & NGHTTP2_FLAG_ACK)
		c->settings_acked = 1;
	else
		c->settings_in = 1;
	if (c->ready || !c->settings_acked || !c->settings_in)
		return;
	c->ready = 1;
	c->idle_since = c->last_rx;
	if (c->on_ready != NULL)
		c->on_ready(c->owner);
	h2csession_kick(c);	/* streams waiting for a tunnel of this name */
}

static int
h2c_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s;

	c->rx_frames++;
	c->last_rx = ev_now(c->w->loop);
	c->ping_out = 0;	/* anything heard proves the session alive */
	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (c->reverse) {
			h2c_reverse_settings(c, f);
			return 0;
		}
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !c->ready) {
			c->ready = 1;
			c->idle_since = c->last_rx;
		}
		return 0;
	case NGHTTP2_PING:
		if ((f->hd.flags & NGHTTP2_FLAG_ACK) && c->ping_sent_us != 0) {
			c->ping_rtt_us = (uint32_t)(util_now_us() - c->ping_sent_us);
			c->ping_sent_us = 0;
		}
		return 0;
	case NGHTTP2_GOAWAY:
		if (c->reverse && c->why == NULL)
			c->why = "GOAWAY from the agent";
		log_info("%s: HTTP/2 GOAWAY (last stream %d, error %u)", c->who,
		    f->goaway.last_stream_id, f->goaway.error_code);
		c->goaway = 1;
		h2c_uncount(c);
		return 0;
	case NGHTTP2_HEADERS:
		if ((s = h2c_stream_of(ng, f->hd.stream_id)) == NULL)
			return 0;
		h2client_stream_kick(s);
		return h2c_on_headers(c, s, f);
	case NGHTTP2_DATA:
		if ((s = h2c_stream_of(ng, f->hd.stream_id)) != NULL &&
		    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			s->resp_done = 1;
			h2client_stream_kick(s);
		}
		return 0;
	default:
		return 0;
	}
}

static int
h2c_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct ustream *s = h2c_stream_of(ng, f->hd.stream_id);

	(void)arg;
	if (s != NULL)
		s->decoded = 0;
	return 0;
}

static int
h2c_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s = h2c_stream_of(ng, f->hd.stream_id);
	struct msg_head *h;
	uint64_t status;

	(void)flags;
	if (s == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	h = &s->resp;
	s->got_byte = 1;
	if ((s->decoded += nlen + vlen + 32) > H2C_DECODED_MAX) {
		log_info("%s: HTTP/2 header block decodes too large", c->who);
		(void)nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
		c->broken = 1;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2 checked it is three digits. */
		if (util_parse_u64((const char *)value, 100, 999, &status) == -1)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		h->status = (unsigned)status;
		return 0;
	}
	if (nlen > 0 && name[0] == ':')
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	/* Trailers wait apart: the exchange transforms the head, which must stay trailer-free. */
	if (s->head_ready)
		h = &s->rtrailers;
	if (h->len + nlen + vlen > (s->head_ready ? MSG_TRAILER_MAX : MSG_HEAD_MAX) ||
	    h->nf >= MSG_FIELDS_MAX ||
	    msg_add_n(h, (const char *)name, nlen, (const char *)value, vlen, 0) == -1) {
		log_info("%s: HTTP/2 response head too large", c->who);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int
h2c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
    void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s = h2c_stream_of(ng, id);
	char *p;

	(void)flags;
	/* The connection's window reopens at once: each stream's own bounds what waits here. */
	(void)nghttp2_session_consume_connection(ng, len);
	if (s == NULL || !s->head_ready) {
		(void)nghttp2_session_consume_stream(ng, id, len);
		return 0;
	}
	if (s->in_off > 0 && s->in_off + s->in_len + len > s->in_cap) {
		memmove(s->in, s->in + s->in_off, s->in_len);
		s->in_off = 0;
	}
	if (s->in_len + len > s->in_cap) {
		if (s->in_len + len > H2C_IN_MAX || (p = realloc(s->in, s->in_len + len)) == NULL) {
			log_info("%s: HTTP/2 stream %d overran its window", c->who, id);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		s->in = p;
		s->in_cap = s->in_len + len;
	}
	memcpy(s->in + s->in_off + s->in_len, data, len);
	s->in_len += len;
	h2client_stream_kick(s);
	return 0;
}

/* What a stream that nghttp2 closed before its response ended tells the exchange. */
static void
h2c_closed_early(struct ustream *s, uint32_t code)
{
	if (s->got_byte)
		h2client_stream_error(s, UPSTREAM_BROKEN, 0);
	else if (code == NGHTTP2_REFUSED_STREAM && !s->fresh) {
		if (s->c != NULL)
			s->c->pool->refused = s->c;	/* a tunnel's retry goes to another agent */
		h2client_stream_error(s, UPSTREAM_STALE, 0);	/* RFC 9113 8.7: not processed */
	}
	else
		h2client_stream_error(s, UPSTREAM_RESET, 0);
}

static int
h2c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct h2conn *c = arg;
	struct ustream *s = nghttp2_session_get_stream_user_data(ng, id);

	if (s == NULL)
		return 0;
	if (c->nactive > 0 && --c->nactive == 0)
		c->idle_since = ev_now(c->w->loop);
	s->ng_closed = 1;
	if (!s->dead && !s->resp_done) {
		if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_REFUSED_STREAM)
			log_info("%s: HTTP/2 stream %d reset (error %u)", c->who, id,
			    code);
		h2c_closed_early(s, code);
	}
	h2client_stream_kick(s);	/* delivery, or the free of a closed stream */
	h2csession_kick(c);	/* a slot is free */
	return 0;
}

static int
h2c_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct ustream *s;

	(void)arg;
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (s = h2c_stream_of(ng, f->hd.stream_id)) != NULL) {
		s->req_out = 1;
		h2client_stream_kick(s);
	}
	return 0;
}

/* --- sessions */

static int
h2c_settings(struct h2conn *c)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2C_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MSG_HEAD_MAX },
	};

	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, H2C_CONN_WINDOW) != 0)
		return -1;
	return 0;
}

static int
h2c_ng_new(struct h2conn *c)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	int rc = -1;

	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2c_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2c_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2c_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_on_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2c_on_frame_send);
	/* Windows open as the exchanges take bytes (h2client_pump), not as nghttp2 reads them. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_continuations(opt, H2C_MAX_CONTINUATIONS);
	nghttp2_option_set_max_outbound_ack(opt, H2C_MAX_OUTBOUND_ACK);
	if (nghttp2_session_client_new2(&c->ng, cb, c, opt) != 0)
		goto out;
	rc = h2c_settings(c);
out:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	return rc;
}

/* A session on fd (connected, or connecting when connecting is set); it owns fd and tc. */
struct h2conn *
h2csession_new(struct worker *w, struct h2cpool *p, int fd, struct tls_conn *tc, int connecting,
    uint32_t connect_ms)
{
	struct h2conn *c = calloc(1, sizeof(*c));

	if (c == NULL || h2c_ng_new(c) == -1 ||
	    ev_io_start(w->loop, &c->io, fd, connecting ? EPOLLOUT : EPOLLIN | EPOLLOUT, h2c_on_io,
	    c) == -1) {
		if (c != NULL && c->ng != NULL)
			nghttp2_session_del(c->ng);
		free(c);
		tls_conn_free(tc);
		close(fd);
		return NULL;
	}
	c->w = w;
	c->pool = p;
	if (p->name[0] != '\0')
		snprintf(c->who, sizeof(c->who), "tunnel %s", p->name);
	else
		snprintf(c->who, sizeof(c->who), "backend %u", p->key);
	c->fd = fd;
	c->tc = tc;
	c->connecting = connecting != 0;
	c->connect_ms = connect_ms;
	c->born = c->last_rx = ev_now(w->loop);
	ev_timer_init(&c->timer, h2c_on_timer, c);
	h2c_arm(c);
	c->next = p->conns;
	p->conns = c;
	c->counted = 1;
	p->nconns++;
	return c;
}

int
h2client_session_new(struct worker *w, int fd, struct tls_conn *tc, uint32_t pool_key)
{
	struct h2cpool *p = h2client_pool(w, pool_key, 0);

	if (p == NULL) {
		tls_conn_free(tc);
		close(fd);
		return -1;
	}
	return h2csession_new(w, p, fd, tc, 0, w->cfg.connect_timeout_ms) == NULL ? -1 : 0;
}

struct h2conn *
h2client_attach(struct worker *w, int fd, struct tls_conn *tc, const struct h2client_attach *a)
{
	struct h2cpool *p = h2client_pool_named(w, a->name);
	struct h2conn *c;

	if (p == NULL) {
		tls_conn_free(tc);
		close(fd);
		return NULL;
	}
	if ((c = h2csession_new(w, p, fd, tc, 0, a->ready_ms)) == NULL)
		return NULL;
	c->reverse = 1;
	c->magic_left = NGHTTP2_CLIENT_MAGIC_LEN;
	c->owner = a->owner;
	c->on_ready = a->on_ready;
	c->on_close = a->on_close;
	h2c_arm(c);
	if (a->early_len > 0) {
		if (buf_get(&w->bufs, &c->in) == -1 || a->early_len > buf_room(&c->in)) {
			c->on_close = NULL;	/* the caller still owns its record */
			h2csession_close(c);
			return NULL;
		}
		buf_append(&c->in, a->early, a->early_len);
	}
	h2csession_kick(c);	/* its first turn feeds them to nghttp2 and sends our SETTINGS */
	return c;
}

void
h2client_session_info(const struct h2conn *c, struct h2client_info *out)
{
	out->in_flight = c->nactive;
	out->served = c->nsubmitted;
	out->ping_rtt_us = c->ping_rtt_us;
	out->going_away = c->goaway;
}

void
h2client_session_goaway(struct h2conn *c)
{
	if (c->dead || c->goaway)
		return;
	/*
	 * No new streams from now on, and GOAWAY (last stream 0: the agent opens
	 * none) once the ones in flight are done: python-h2, oktalz and Go end
	 * the whole connection at any GOAWAY (reference/reverse-http.md 3.7).
	 */
	c->goaway_due = 1;
	c->goaway = 1;
	c->why = "haloyd is stopping";
	h2c_uncount(c);
	h2csession_kick(c);
}
