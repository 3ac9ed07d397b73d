/*
 * The HTTP/2 session (struct session_ops, see conn.h) on libnghttp2, driven
 * by the worker's loop with memory I/O (nghttp2_session_mem_recv/mem_send
 * on the connection's buffers): no threads, no blocking. Each stream is a
 * request through the same request step and exchange as HTTP/1.1; this file
 * is that exchange's sink for the stream.
 *
 * Flow control is ours, not nghttp2's automatic one: a stream's received
 * DATA is acknowledged (WINDOW_UPDATE, nghttp2_session_consume) only when
 * the exchange has taken it, so a slow backend stalls its own stream's
 * window and nothing else; response bytes wait in one bounded buffer per
 * stream until the client's window takes them (a data provider that defers).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>

#include "share/hostname.h"
#include "share/log.h"
#include "share/util.h"
#include "worker/accesslog.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/exchange.h"
#include "worker/h2mem.h"
#include "worker/h2scan.h"
#include "worker/request.h"

#define H2_CONN_WINDOW (1024 * 1024)	/* connection receive window: many uploading streams */
#define H2_STREAM_WINDOW 65535		/* the protocol default: what a stream may have buffered */
#define H2_NV_MAX (MSG_FIELDS_MAX + 4)
#define H2_PS_METHOD 1
#define H2_PS_SCHEME 2
#define H2_PS_PATH 4
#define H2_PS_ALL 7
#define H2_TRIM_MS 1000			/* idle this long: the session gives its buffers' pages back */
#define H2_DEFLATE_TABLE 256		/* HPACK table for responses: ~0.5 KiB per connection */

/*
 * Abuse bounds (ARCHITECTURE.md "HTTP/2" says why these values). Each ends
 * the connection with GOAWAY ENHANCE_YOUR_CALM while the worker serves on.
 * - Rapid reset (CVE-2023-44487): client RST_STREAMs, a token bucket of
 *   H2_RESET_BURST refilled at H2_RESET_RATE a second (nghttp2 enforces it).
 * - CONTINUATION floods (CVE-2024-27316 family): at most H2_MAX_CONTINUATIONS
 *   after a HEADERS frame (nghttp2 enforces it).
 * - HPACK bombs: a header block that decodes past H2_DECODED_MAX.
 * - PING/SETTINGS floods: at most H2_MAX_OUTBOUND_ACK acknowledgements
 *   queued (nghttp2), and "glitches": frames that cost us work but carry no
 *   request (PING, SETTINGS, PRIORITY, RST_STREAM, empty DATA without
 *   END_STREAM, WINDOW_UPDATEs beyond what the DATA we sent earns,
 *   every RST_STREAM we send: resets provoked as in "MadeYouReset" and
 *   streams refused past the concurrency limit), at most H2_GLITCH_MAX
 *   within H2_GLITCH_WINDOW_MS, as HAProxy counts them. A client acknowledges
 *   each DATA frame with up to two WINDOW_UPDATEs (stream and connection):
 *   those are work we asked for, not glitches.
 */
#define H2_RESET_BURST 1000
#define H2_RESET_RATE 33
#define H2_MAX_CONTINUATIONS 8
#define H2_MAX_OUTBOUND_ACK 1000
#define H2_DECODED_MAX (4 * MSG_HEAD_MAX)
#define H2_GLITCH_MAX 1000
#define H2_GLITCH_WINDOW_MS 1000

struct h2s;

struct h2stream {
	struct h2s *s;
	struct h2stream *prev, *next;
	int32_t id;
	struct msg_head req;
	struct exchange *ex;
	char host[HOSTNAME_MAX + 1];
	uint64_t start_us;
	char *in;			/* request body bytes the exchange has not taken yet */
	size_t in_off, in_len, in_cap;
	struct buf out;			/* response body bytes waiting for the client's window */
	struct msg_head trailers;	/* the response's, sent after the last DATA */
	size_t decoded;			/* header bytes this block decoded to (HPACK bombs) */
	uint16_t crumbs;		/* cookie fields after the first: one field once joined */
	unsigned head_error : 9;	/* the request head broke our limits: 414 or 431 */
	unsigned pseudo : 3;		/* :method, :scheme, :path seen (H2_PS_*) */
	unsigned authority : 1;		/* :authority or Host seen */
	unsigned cookie : 1;		/* a cookie field seen */
	unsigned started : 1;		/* the request step ran */
	unsigned in_end : 1;		/* the client sent END_STREAM */
	unsigned in_end_sent : 1;	/* the exchange was told */
	unsigned hsts : 1;
	unsigned resp_started : 1;	/* a final response head was submitted */
	unsigned out_eof : 1;		/* no more body bytes will be added to out */
	unsigned has_trailers : 1;
	unsigned pipe : 1;		/* an extended CONNECT that the backend took: raw DATA both ways */
};

struct h2s {
	struct conn *c;
	nghttp2_session *ng;
	struct h2mem mem;		/* nghttp2's allocator */
	struct h2stream *streams;
	uint32_t nstreams;
	const uint8_t *pend;		/* mem_send output not yet copied into c->out */
	size_t pend_len;
	uint32_t glitches;		/* costly frames in the current window */
	uint32_t wu_in, data_out;	/* WINDOW_UPDATEs in, DATA frames out, same window */
	uint64_t glitch_since;		/* loop time the window began */
	struct h2stream *paused;	/* its field paused nghttp2: is its head complete? */
	struct h2stream *block;		/* the stream whose request head is being read */
	struct h2scan scan;		/* where the header block nghttp2 reads ends */
	unsigned goaway : 1;		/* a stop began: GOAWAY sent, in-flight streams finish */
	unsigned broken : 1;		/* a connection error: flush what is queued, then close */
	unsigned trimmed : 1;		/* idle past H2_TRIM_MS: the pages went back */
	uint64_t idle_since;		/* loop ms the last stream closed (or the session began) */
};

static const struct sink_ops h2_sink;

/* --- streams */

static struct h2stream *
h2_stream_new(struct h2s *s, int32_t id)
{
	struct h2stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->s = s;
	st->id = id;
	st->start_us = util_now_us();
	st->next = s->streams;
	if (s->streams != NULL)
		s->streams->prev = st;
	s->streams = st;
	s->nstreams++;
	s->trimmed = 0;
	s->c->w->requests++;
	return st;
}

static void
h2_stream_free(struct h2stream *st)
{
	struct h2s *s = st->s;

	if (st->ex != NULL)
		exchange_abort(st->ex, 499);
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	if (s->block == st)
		s->block = NULL;
	if (--s->nstreams == 0)
		s->idle_since = ev_now(s->c->w->loop);
	msg_free(&st->req);
	msg_free(&st->trailers);
	buf_put(&s->c->w->bufs, &st->out);
	free(st->in);
	free(st);
}

/* --- responses */

/* Lower-case names (HTTP/2 wants them), into one block the nv array points into. */
static int
h2_nv_build(const struct msg_head *h, unsigned status, nghttp2_nv *nv, size_t *nnv, char *names,
    size_t nameslen, char *st)
{
	size_t used = 0, n = 0;
	uint32_t i;

	st[0] = (char)('0' + status / 100 % 10);
	st[1] = (char)('0' + status / 10 % 10);
	st[2] = (char)('0' + status % 10);
	st[3] = '\0';
	nv[n++] = (nghttp2_nv){ (uint8_t *)(uintptr_t)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE };
	for (i = 0; i < msg_nheaders(h) && n < H2_NV_MAX - 1; i++) {
		const struct msg_field *f = &h->f[i];
		size_t j;

		if (used + f->name.len + 1 > nameslen)
			return -1;
		/* ASCII by hand: tolower() is a locale lookup per byte (names are tokens). */
		for (j = 0; j < f->name.len; j++) {
			char ch = msg_name(h, f)[j];

			names[used + j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
		}
		nv[n++] = (nghttp2_nv){ (uint8_t *)names + used, (uint8_t *)(uintptr_t)msg_value(h, f),
		    f->name.len, f->value.len, NGHTTP2_NV_FLAG_NONE };
		used += f->name.len + 1;
	}
	*nnv = n;
	return 0;
}

static ssize_t
h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *to, size_t len, uint32_t *flags,
    nghttp2_data_source *src, void *arg)
{
	struct h2stream *st = src->ptr;
	size_t n = st->out.len < len ? st->out.len : len;

	(void)ng;
	(void)arg;
	if (n > 0) {
		memcpy(to, buf_head(&st->out), n);
		buf_consume(&st->out, n);
		if (st->ex != NULL)
			exchange_resume(st->ex);
	}
	if (st->out.len == 0) {
		buf_put(&st->s->c->w->bufs, &st->out);
		if (!st->out_eof)
			return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->has_trailers) {
			nghttp2_nv nv[H2_NV_MAX];
			char names[MSG_TRAILER_MAX + MSG_FIELDS_MAX], status[4];
			size_t nnv;

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			/* Trailers are the head's fields after its ntrailers mark: make them its headers. */
			st->trailers.ntrailers = 0;
			if (h2_nv_build(&st->trailers, 0, nv, &nnv, names, sizeof(names), status) == -1 ||
			    nghttp2_submit_trailer(ng, id, nv + 1, nnv - 1) != 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
	}
	return (ssize_t)n;
}

/*
 * Submits h's fields under status; body: a DATA provider follows (else
 * END_STREAM on HEADERS).
 */
static int
h2_submit_head(struct h2stream *st, const struct msg_head *h, unsigned status, int body)
{
	nghttp2_nv nv[H2_NV_MAX + 1];
	char names[MSG_MEM_MAX], st3[4], clen[24];
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = h2_read_body };
	size_t nnv;

	if (h2_nv_build(h, status, nv, &nnv, names, sizeof(names), st3) == -1)
		return -1;
	/* The forwarding rules dropped Content-Length: HTTP/2 carries it as a plain field. */
	if (h->has_length && status != 204 && status != 304 && status / 100 != 1) {
		char *at = util_digits(clen + sizeof(clen), h->length, 10);	/* no snprintf */

		nv[nnv++] = (nghttp2_nv){ (uint8_t *)(uintptr_t)"content-length", (uint8_t *)at, 14,
		    (size_t)(clen + sizeof(clen) - at), NGHTTP2_NV_FLAG_NONE };
	}
	if (status / 100 == 1)
		return nghttp2_submit_headers(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, nnv,
		    NULL) < 0 ? -1 : 0;
	st->resp_started = 1;
	return nghttp2_submit_response(st->s->ng, st->id, nv, nnv, body ? &prd : NULL) == 0 ? 0 : -1;
}

/* Sends an answer of ours on the stream. */
static void
h2_answer(struct h2stream *st, struct answer *ans)
{
	int body = ans->body_len > 0;
	if (body && (buf_get(&st->s->c->w->bufs, &st->out) == -1 ||
	    ans->body_len > buf_room(&st->out)))
		body = 0;
	if (body)
		buf_append(&st->out, ans->body, ans->body_len);
	st->out_eof = 1;
	if (h2_submit_head(st, &ans->head, ans->head.status, body) == -1)
		nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	request_answer_free(ans);
	conn_kick(st->s->c);
}

static void
h2_error(struct h2stream *st, unsigned status, int log)
{
	struct answer ans;

	if (log)
		accesslog_local(st->s->c->w, &st->req, st->host, 0, status, st->start_us,
		    st->s->c->ip);
	msg_init(&ans.head);
	if (request_error(st->s->c->w, status, ERRPAGE_STATUS, &st->req, st->hsts, &ans) == -1) {
		request_answer_free(&ans);
		nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		conn_kick(st->s->c);
		return;
	}
	h2_answer(st, &ans);
}

/* --- the exchange's sink, one per stream */

static int
sink_head(void *arg, struct msg_head *resp, int nobody)
{
	struct h2stream *st = arg;

	(void)nobody;
	conn_kick(st->s->c);
	if (resp->status == 101) {
		/* RFC 8441: the backend's 101 is our 200; the stream carries the bytes from now on. */
		if (!st->req.upgrade)
			return -1;
		st->pipe = 1;
		return h2_submit_head(st, resp, 200, 1);
	}
	return h2_submit_head(st, resp, resp->status, !nobody);
}

static int
sink_body(void *arg, const char *p, size_t n)
{
	struct h2stream *st = arg;

	if (buf_get(&st->s->c->w->bufs, &st->out) == -1 || n > buf_room(&st->out))
		return -1;
	buf_append(&st->out, p, n);
	nghttp2_session_resume_data(st->s->ng, st->id);
	conn_kick(st->s->c);
	return 0;
}

/* Keeps the response's trailers for the end of its DATA. */
static void
h2_keep_trailers(struct h2stream *st, const struct msg_head *resp)
{
	uint32_t i;

	for (i = msg_nheaders(resp); resp != NULL && i < resp->nf; i++)
		if (msg_add_n(&st->trailers, msg_name(resp, &resp->f[i]), resp->f[i].name.len,
		    msg_value(resp, &resp->f[i]), resp->f[i].value.len, 1) == -1)
			return;
	st->has_trailers = st->trailers.nf > 0;
}

static void
sink_end(void *arg, struct msg_head *resp)
{
	struct h2stream *st = arg;

	st->ex = NULL;
	if (resp != NULL && resp->ntrailers > 0)
		h2_keep_trailers(st, resp);
	st->out_eof = 1;
	nghttp2_session_resume_data(st->s->ng, st->id);
	conn_kick(st->s->c);
}

/* After an extended CONNECT: the backend is done sending; END_STREAM once out drains. */
static void
sink_shut(void *arg)
{
	struct h2stream *st = arg;

	st->out_eof = 1;
	nghttp2_session_resume_data(st->s->ng, st->id);
	conn_kick(st->s->c);
}

static void
sink_fail(void *arg, unsigned status)
{
	struct h2stream *st = arg;

	st->ex = NULL;
	if (status != 0 && !st->resp_started) {
		h2_error(st, status, 0);	/* the exchange logged it */
		return;
	}
	/* Part of the response went out: resetting the stream is the honest signal. */
	nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	conn_kick(st->s->c);
}

static size_t
sink_room(void *arg)
{
	struct h2stream *st = arg;

	if (buf_get(&st->s->c->w->bufs, &st->out) == -1)
		return 0;
	return buf_room(&st->out);
}

static void
sink_more(void *arg)
{
	struct h2stream *st = arg;

	conn_kick(st->s->c);
}

static const struct sink_ops h2_sink = {
	sink_head, sink_body, sink_shut, sink_end, sink_fail, sink_room, sink_more, NULL,
};

/* --- requests */

/* RFC 9113 8.2.3: cookie fields are joined with "; " for an HTTP/1.1 backend. */
static int
h2_join_cookies(struct msg_head *h)
{
	char joined[MSG_HEAD_MAX];
	size_t n = 0;
	uint32_t i, count = 0;

	for (i = 0; i < msg_nheaders(h); i++)
		if (msg_field_is(h, &h->f[i], "cookie"))
			count++;
	if (count < 2)
		return 0;
	for (i = 0; i < msg_nheaders(h); i++) {
		const struct msg_field *f = &h->f[i];

		if (!msg_field_is(h, f, "cookie"))
			continue;
		if (n + f->value.len + 2 >= sizeof(joined))
			return -1;
		if (n > 0) {
			memcpy(joined + n, "; ", 2);
			n += 2;
		}
		memcpy(joined + n, msg_value(h, f), f->value.len);
		n += f->value.len;
	}
	for (i = msg_nheaders(h); i-- > 0;)
		if (msg_field_is(h, &h->f[i], "cookie"))
			msg_del(h, i);
	return msg_add_n(h, "cookie", 6, joined, n, 0);
}

/*
 * RFC 8441 extended CONNECT (":protocol websocket") becomes the HTTP/1.1
 * upgrade a WebSocket backend expects: GET with Upgrade and a key of ours
 * (the HTTP/2 client sends none); the exchange's upgrade mode does the rest.
 */
static int
h2_extended_connect(struct msg_head *h)
{
	uint8_t raw[16];
	char key[25];

	if (h->method != MSG_M_CONNECT || h->upgrade_proto.len == 0)
		return 0;
	h->method = MSG_M_GET;
	h->upgrade = 1;
	h->chunked = 0;
	if (util_random(raw, sizeof(raw)) == -1 ||
	    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)) != 24)
		return -1;
	return msg_find(h, "sec-websocket-key") != NULL ? 0 : msg_add(h, "Sec-WebSocket-Key", key);
}

/* The head is complete: framing as the neutral message says it, then the request step. */
static void
h2_request(struct h2stream *st)
{
	struct conn *c = st->s->c;
	struct msg_head *h = &st->req;
	const struct msg_field *cl = msg_find(h, "content-length");
	struct request r;

	st->started = 1;
	h->major = 2;
	h->minor = 0;
	if (st->head_error != 0 || h2_join_cookies(h) == -1) {
		h2_error(st, st->head_error != 0 ? st->head_error : 431, 1);
		return;
	}
	if (cl != NULL) {
		if (util_parse_u64(msg_value(h, cl), 0, UINT64_MAX, &h->length) == -1) {
			h2_error(st, 400, 1);
			return;
		}
		h->has_length = 1;
	} else
		h->chunked = !st->in_end;	/* DATA follows, of a length nobody said */
	if (h2_extended_connect(h) == -1) {
		h2_error(st, 500, 1);
		return;
	}
	msg_init(&r.ans.head);
	if ((c->w->step != NULL ? c->w->step : request_step)(c->w,
	    &(struct request_peer){ c->ip, c->trusted, c->tls != NULL, &c->addrs }, h,
	    st->start_us, &h2_sink, st, &r) == -1) {
		request_answer_free(&r.ans);
		nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		return;
	}
	memcpy(st->host, r.host, sizeof(st->host));
	st->hsts = r.hsts != 0;
	if ((st->ex = r.ex) == NULL)
		h2_answer(st, &r.ans);
}

/* Request body bytes to the exchange as far as it takes them; what it took opens the window. */
static void
h2_pump(struct h2stream *st)
{
	struct h2s *s = st->s;
	size_t n = st->in_len;

	if (st->ex != NULL && n > 0) {
		size_t room = exchange_room(st->ex);

		if (n > room)
			n = room;
		if (n > 0 && exchange_body(st->ex, st->in + st->in_off, n) == -1) {
			nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
			return;
		}
	}
	/* Without an exchange (answered already) the bytes are dropped, but still acknowledged. */
	st->in_off += n;
	st->in_len -= n;
	if (n > 0)
		nghttp2_session_consume(s->ng, st->id, n);
	if (st->in_len == 0)
		st->in_off = 0;
	if (st->ex != NULL && st->in_end && st->in_len == 0 && !st->in_end_sent) {
		st->in_end_sent = 1;
		if (exchange_body_end(st->ex, &st->req) == -1)
			nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
	}
}

/* --- nghttp2's callbacks */

/* Ends the connection for abuse: GOAWAY ENHANCE_YOUR_CALM, flushed, then closed. */
static int
h2_calm(struct h2s *s, const char *why)
{
	if (!s->broken) {	/* once: a batch of frames may go on counting after it */
		log_notice("client %s: HTTP/2 %s: closing the connection", s->c->ip, why);
		nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
		s->broken = 1;
	}
	return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* The counting window: a new one begins when the last is over. */
static void
h2_glitch_window(struct h2s *s)
{
	uint64_t now = ev_now(s->c->w->loop);

	if (now - s->glitch_since >= H2_GLITCH_WINDOW_MS) {
		s->glitch_since = now;
		s->glitches = s->wu_in = s->data_out = 0;
	}
}

/* One more frame that made us work without carrying a request; 0 or the callback's failure. */
static int
h2_glitch(struct h2s *s)
{
	h2_glitch_window(s);
	return ++s->glitches > H2_GLITCH_MAX ? h2_calm(s, "frame flood") : 0;
}

/* A WINDOW_UPDATE is a glitch only past two for each DATA frame we sent (and some slack). */
static int
h2_window_update(struct h2s *s)
{
	h2_glitch_window(s);
	if (++s->wu_in <= 2 * s->data_out + 64)
		return 0;
	return h2_glitch(s);
}

static int
h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2s *s = arg;

	(void)ng;
	if (f->hd.type == NGHTTP2_DATA) {
		h2_glitch_window(s);
		s->data_out++;
	}
	/*
	 * Every stream we reset is a glitch, whatever provoked it ("MadeYouReset":
	 * frames that are stream errors) and streams refused past the concurrency
	 * limit, which nghttp2 resets without ever opening them. A failure here
	 * would fail the send before the GOAWAY is out: h2_calm queued it.
	 */
	if (f->hd.type == NGHTTP2_RST_STREAM)
		(void)h2_glitch(s);
	return 0;
}

/* Frames that carry no request: each is a glitch (DATA only when empty and not the end). */
static int
h2_costly(const nghttp2_frame *f)
{
	switch (f->hd.type) {
	case NGHTTP2_PING: case NGHTTP2_SETTINGS: case NGHTTP2_PRIORITY: case NGHTTP2_RST_STREAM:
		return 1;
	case NGHTTP2_DATA:
		return f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM);
	default:
		return 0;
	}
}

static int
h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2s *s = arg;
	struct h2stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if ((st = h2_stream_new(s, f->hd.stream_id)) == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
	s->block = st;
	return 0;
}

/* The stream of a frame: the one whose head is being read without nghttp2's map lookup. */
static struct h2stream *
h2_stream_of(struct h2s *s, int32_t id)
{
	if (s->block != NULL && s->block->id == id)
		return s->block;
	return nghttp2_session_get_stream_user_data(s->ng, id);
}

/*
 * A pseudo-header into the message: 0, or the status that refuses the
 * request (414 as HTTP/1.1 answers a long request-target, 431 when the head
 * outgrows its storage, 400 for a pseudo-header a request does not carry).
 */
static unsigned
h2_pseudo(struct msg_head *h, const uint8_t *name, size_t nlen, const uint8_t *v, size_t vlen)
{
	const char *n = (const char *)name, *val = (const char *)v;
	struct msg_str *to;

	if (nlen == 7 && memcmp(n, ":method", 7) == 0) {
		h->method = msg_method_of(val, vlen);
		if (h->method != MSG_M_OTHER)
			return 0;
		to = &h->method_name;
	} else if (nlen == 5 && memcmp(n, ":path", 5) == 0) {
		if (vlen > MSG_TARGET_MAX)
			return 414;
		to = &h->path;
	} else if (nlen == 7 && memcmp(n, ":scheme", 7) == 0)
		to = &h->scheme;
	else if (nlen == 10 && memcmp(n, ":authority", 10) == 0)
		to = &h->authority;
	else if (nlen == 9 && memcmp(n, ":protocol", 9) == 0)
		to = &h->upgrade_proto;
	else
		return 400;
	return msg_str(h, val, vlen, to) == -1 ? 431 : 0;
}

/*
 * What nghttp2 checks once the head is complete, noted as it comes: the
 * three pseudo-headers a request needs, and :authority or Host.
 */
static void
h2_note(struct h2stream *st, const uint8_t *name, size_t nlen)
{
	const char *n = (const char *)name;

	if ((nlen == 10 && memcmp(n, ":authority", 10) == 0) || (nlen == 4 && memcmp(n, "host", 4) == 0))
		st->authority = 1;
	else if (nlen == 7 && memcmp(n, ":method", 7) == 0)
		st->pseudo |= H2_PS_METHOD;
	else if (nlen == 7 && memcmp(n, ":scheme", 7) == 0)
		st->pseudo |= H2_PS_SCHEME;
	else if (nlen == 5 && memcmp(n, ":path", 5) == 0)
		st->pseudo |= H2_PS_PATH;
}

/* A field into the request head (or its trailers); past our limits the head is a 431. */
static void
h2_field(struct h2stream *st, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    int trailer)
{
	if (nlen > 0 && name[0] == ':') {
		st->head_error = trailer ? 400 : h2_pseudo(&st->req, name, nlen, value, vlen);
		return;
	}
	/*
	 * Answered once the head is complete (the stream stays in sync). Cookie
	 * crumbs (RFC 9113 8.2.3) count as the one field HTTP/1.1 would carry;
	 * the message's own slot bound still caps them.
	 */
	if (st->req.len + nlen + vlen > (trailer ? MSG_HEAD_MAX + MSG_TRAILER_MAX : MSG_HEAD_MAX) ||
	    msg_nheaders(&st->req) - st->crumbs >= MSG_FIELDS_MAX ||
	    msg_add_n(&st->req, (const char *)name, nlen, (const char *)value, vlen, trailer) == -1) {
		st->head_error = 431;
		return;
	}
	if (!trailer && nlen == 6 && memcmp(name, "cookie", 6) == 0) {
		st->crumbs += st->cookie;
		st->cookie = 1;
	}
}

static int
h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2s *s = arg;
	struct h2stream *st = h2_stream_of(s, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (st == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	/* Past any honest head by far: a small block that decodes big is an attack, not a mistake. */
	if ((st->decoded += nlen + vlen + 32) > H2_DECODED_MAX)
		return h2_calm(s, "header block decodes too large");
	if (st->head_error == 0)
		h2_field(st, name, nlen, value, vlen, st->started);
	if (st->started)
		return 0;
	h2_note(st, name, nlen);
	/*
	 * A request with neither :authority nor Host is RFC 9113's to send (8.3.1)
	 * but nghttp2 resets it once the block ends, before any callback of ours:
	 * pause after each field of such a head so h2_recv can answer it 400 first.
	 * Not past our limits: at most MSG_FIELDS_MAX pauses a block (then it is reset).
	 */
	if (st->authority || st->pseudo != H2_PS_ALL || st->head_error != 0)
		return 0;
	s->paused = st;
	return NGHTTP2_ERR_PAUSE;
}

static int
h2_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2s *s = arg;
	struct h2stream *st = h2_stream_of(s, f->hd.stream_id);

	(void)ng;
	if ((h2_costly(f) && h2_glitch(s) != 0) ||
	    (f->hd.type == NGHTTP2_WINDOW_UPDATE && h2_window_update(s) != 0))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (f->hd.type == NGHTTP2_HEADERS && st != NULL)
		st->decoded = 0;	/* the next block (trailers) gets its own budget */
	if (st == NULL || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		st->in_end = 1;
	/*
	 * No kick here or in h2_on_data: nghttp2 calls back only inside h2_recv,
	 * and h2s_run pumps every stream and sends after it in the same pass (a
	 * kick would run the whole session once more per request, for nothing).
	 */
	if (f->hd.type == NGHTTP2_HEADERS && !st->started)
		h2_request(st);
	return 0;
}

static int
h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
    void *arg)
{
	struct h2stream *st = nghttp2_session_get_stream_user_data(ng, id);
	char *p;

	(void)flags;
	(void)arg;
	if (st == NULL) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	/* Our window bounds what is buffered; growing past it would be the peer's violation. */
	if (st->in_off + st->in_len + len > st->in_cap) {
		size_t cap = st->in_len + len;

		if (st->in_off > 0) {
			memmove(st->in, st->in + st->in_off, st->in_len);
			st->in_off = 0;
		}
		if (cap > st->in_cap) {
			if (cap > 2 * H2_STREAM_WINDOW || (p = realloc(st->in, cap)) == NULL)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->in = p;
			st->in_cap = cap;
		}
	}
	memcpy(st->in + st->in_off + st->in_len, data, len);
	st->in_len += len;
	return 0;
}

static int
h2_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct h2stream *st = nghttp2_session_get_stream_user_data(ng, id);

	if (st != NULL) {
		nghttp2_session_set_stream_user_data(ng, id, NULL);
		h2_stream_free(st);
	}
	/* One that ended in an error was a glitch already: its RST_STREAM, ours or the client's. */
	(void)code;
	(void)arg;
	return 0;
}

/* --- the session */

/*
 * The connection's timer, armed once and never stopped for a stream: it
 * fires early rather than late (the idle time only moves later) and
 * h2s_timeout looks again, so a request costs no timer work (a stop and a
 * start per request: ~200 instructions). Busy, or broken: a look
 * every H2_TRIM_MS, or the keep-alive time.
 */
static void
h2_idle_arm(struct h2s *s)
{
	struct conn *c = s->c;
	uint64_t keep = c->w->cfg.keepalive_timeout_ms, idle, due;

	due = keep > H2_TRIM_MS && (s->nstreams > 0 || !s->trimmed) ? H2_TRIM_MS : keep;
	if (s->nstreams == 0 && !s->broken) {
		idle = ev_now(c->w->loop) - s->idle_since;
		due = due > idle ? due - idle : 0;
	}
	ev_timer_start(c->w->loop, &c->timer, due);
}

/* Copies what nghttp2 has to send into the connection's buffer, as far as it has room. */
static int
h2_send(struct h2s *s)
{
	struct conn *c = s->c;

	for (;;) {
		size_t room, n;

		if (s->pend_len == 0) {
			ssize_t got = nghttp2_session_mem_send(s->ng, &s->pend);

			if (got < 0) {
				log_info("client %s: HTTP/2: %s", c->ip, nghttp2_strerror((int)got));
				return -1;
			}
			if (got == 0)
				return 0;
			s->pend_len = (size_t)got;
		}
		if (buf_get(&c->w->bufs, &c->out) == -1 || (room = buf_room(&c->out)) == 0)
			return 0;
		n = s->pend_len < room ? s->pend_len : room;
		buf_append(&c->out, s->pend, n);
		s->pend += n;
		s->pend_len -= n;
	}
}

/*
 * nghttp2 paused after a field of a head without :authority or Host: when
 * that was the block's last field, the request step answers it (400) and
 * the answer is serialised before nghttp2 reads on and resets the stream
 * (RST_STREAM after END_STREAM: the client has its answer).
 */
static int
h2_paused(struct h2s *s)
{
	struct h2stream *st = s->paused;

	s->paused = NULL;
	if (!h2scan_block_done(&s->scan))
		return 0;
	h2_request(st);
	return h2_send(s);
}

static int
h2_recv(struct h2s *s)
{
	struct conn *c = s->c;
	ssize_t n;

	if (c->in.len == 0)
		return 0;
	/* After a pause nghttp2 goes on even without bytes: a block that ended is checked then. */
	while (!s->broken) {
		n = nghttp2_session_mem_recv(s->ng, c->in.len > 0 ? (const uint8_t *)buf_head(&c->in) :
		    NULL, c->in.len);
		if (n < 0) {
			log_info("client %s: HTTP/2: %s", c->ip, nghttp2_strerror((int)n));
			/* A fatal receive error queues no GOAWAY of its own (h2_calm's did): say why here. */
			if (!s->broken)
				(void)nghttp2_session_terminate_session(s->ng, n == NGHTTP2_ERR_FLOODED ||
				    n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ? NGHTTP2_ENHANCE_YOUR_CALM :
				    NGHTTP2_PROTOCOL_ERROR);
			s->broken = 1;
			return 0;
		}
		if (n > 0) {
			h2scan_feed(&s->scan, (const uint8_t *)buf_head(&c->in), (size_t)n);
			buf_consume(&c->in, (size_t)n);
		}
		if (s->paused == NULL)
			return 0;	/* nghttp2 took everything */
		if (h2_paused(s) == -1)
			return -1;
	}
	return 0;
}

static int
h2_flush(struct h2s *s)
{
	int moved;

	if (conn_flush(s->c, &moved) == -1)
		return -1;
	if (s->c->out.len == 0)
		buf_put(&s->c->w->bufs, &s->c->out);
	return 0;
}

static void
h2s_run(struct conn *c)
{
	struct h2s *s = c->sess;
	struct h2stream *st, *next;

	if (h2_flush(s) == -1 || (!s->broken && conn_read(c) == -1)) {
		conn_close(c);
		return;
	}
	if (!s->broken && h2_recv(s) == -1) {
		conn_close(c);
		return;
	}
	if (c->in.len == 0)
		buf_put(&c->w->bufs, &c->in);
	for (st = s->streams; st != NULL && !s->broken; st = next) {
		next = st->next;
		h2_pump(st);
	}
	if (c->w->stopping && !s->goaway) {
		s->goaway = 1;
		nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR, NULL, 0);
	}
	if (h2_send(s) == -1 || h2_flush(s) == -1) {
		conn_close(c);
		return;
	}
	/* Done: a broken or finished session whose last bytes went out, or a client that left. */
	if (c->out.len == 0 && s->pend_len == 0 && (s->broken || c->peer_eof ||
	    (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng)) ||
	    (s->goaway && s->nstreams == 0))) {
		conn_close(c);
		return;
	}
	if (!ev_timer_armed(&c->timer))
		h2_idle_arm(s);
	/*
	 * More to copy while out has room; when it is full, EPOLLOUT brings us
	 * back (a kick then would run again in the same pass of deferred calls,
	 * forever, for a client that opened big windows and does not read).
	 */
	if (s->pend_len > 0 && c->out.len < BUF_SIZE)
		conn_kick(c);
	(void)conn_watch(c, !s->broken);
}

/*
 * Idle for H2_TRIM_MS: the session's buffers give their pages back and the
 * timer runs on to the keep-alive time. Idle for that: GOAWAY, then close
 * once it is out.
 */
static void
h2s_timeout(struct conn *c)
{
	struct h2s *s = c->sess;
	uint64_t keep = c->w->cfg.keepalive_timeout_ms, idle = ev_now(c->w->loop) - s->idle_since;

	if (s->nstreams == 0 && !s->broken && idle >= keep) {
		nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR, NULL, 0);
		s->broken = 1;
		conn_kick(c);
		return;
	}
	if (s->nstreams == 0 && !s->trimmed && keep > H2_TRIM_MS && idle >= H2_TRIM_MS) {
		s->trimmed = 1;
		if (s->pend_len == 0 && !nghttp2_session_want_write(s->ng))
			h2mem_trim(&s->mem);
	}
	h2_idle_arm(s);
}

/*
 * Never closed at once on a stop: the kick it gets instead sends GOAWAY (h2s_run), and
 * the connection closes once that is out and no stream is left.
 */
static int
h2s_idle(const struct conn *c)
{
	(void)c;
	return 0;
}

static int
h2s_settings(struct h2s *s)
{
	const struct msg_wconfig *cfg = &s->c->w->cfg;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->h2_max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MSG_HEAD_MAX },
		{ NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },	/* RFC 8441: WebSocket */
	};

	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
		return -1;
	return 0;
}

static int
h2s_start(struct conn *c)
{
	struct h2s *s = calloc(1, sizeof(*s));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	int rc = -1;

	if (s == NULL || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	s->c = c;
	s->idle_since = ev_now(c->w->loop);
	h2scan_init(&s->scan);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2_on_frame_send);
	/* Windows open as the exchanges take bytes (h2_pump), not as nghttp2 reads them. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_stream_reset_rate_limit(opt, H2_RESET_BURST, H2_RESET_RATE);
	nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
	nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
	/*
	 * A small dynamic table for responses: a proxied head repeats its fields
	 * (Server, Content-Type, Date within its second), and an indexed field
	 * costs a hash lookup where a literal is Huffman-coded anew each time
	 * (-1.9k instructions per request). 256 bytes hold those four; the 4 KiB
	 * default would keep a new Date each second until full.
	 */
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, H2_DEFLATE_TABLE);
	/* A closed stream is forgotten, not kept for the priority tree: idle is small. */
	nghttp2_option_set_no_closed_streams(opt, 1);
	h2mem_init(&s->mem);
	h2mem_creating(&s->mem, 1);
	rc = nghttp2_session_server_new3(&s->ng, cb, s, opt, &s->mem.mem);
	h2mem_creating(&s->mem, 0);
	if (rc != 0) {
		rc = -1;
		goto out;
	}
	rc = -1;
	c->sess = s;
	if (h2s_settings(s) == -1)
		goto out;
	rc = 0;
out:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (rc == -1 && s != NULL) {
		if (s->ng != NULL)
			nghttp2_session_del(s->ng);
		c->sess = NULL;
		free(s);
	}
	return rc;
}

/* The connection closes: every stream's exchange is dropped (no callbacks after this). */
static void
h2s_stop(struct conn *c)
{
	struct h2s *s = c->sess;
	struct h2stream *st;

	for (st = s->streams; st != NULL; st = st->next)
		if (st->ex != NULL) {
			exchange_abort(st->ex, 499);
			st->ex = NULL;
		}
}

static void
h2s_free(struct conn *c)
{
	struct h2s *s = c->sess;

	nghttp2_session_del(s->ng);
	while (s->streams != NULL)
		h2_stream_free(s->streams);
	free(s);
	c->sess = NULL;
}

const struct session_ops h2server_ops = {
	"h2", h2s_start, h2s_run, h2s_timeout, h2s_idle, h2s_stop, h2s_free,
};
