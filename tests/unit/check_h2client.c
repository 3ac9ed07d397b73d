/*
 * Unit tests for the HTTP/2 upstream (worker/h2client.c and its sessions,
 * worker/h2csession.c, one module behind upstream.h), against real
 * nghttp2 server sessions that the test runs on the backend's side of each
 * connection (accepted from a listener on 127.0.0.1, or the far end of a
 * socketpair handed to h2client_session_new), between turns of the loop the
 * streams run on. The streams' events go to fake exchanges that, like the
 * real one, close their stream inside end and fail, and that fail the test
 * when an event comes from inside an ops call.
 *
 * Covered: a GET as pseudo-headers and fields, a response into
 * head/body/end, a POST with a body of unknown length and trailers both
 * ways, MAX_CONCURRENT_STREAMS=1 opening a second connection, streams
 * sharing one session, REFUSED_STREAM and GOAWAY giving UPSTREAM_STALE
 * (in-flight streams below last_stream_id finish, new ones go elsewhere),
 * flow control (a stream whose exchange takes nothing stalls while another
 * completes), close() sending RST_STREAM CANCEL, connection refused, a
 * connection lost before the answer (RESET on a new session, STALE on a
 * reused one that said nothing since), interim 1xx heads (at most 8), a
 * response head past our limits (the stream breaks, not the session), at
 * most 16 sessions per backend and then EBUSY, a session over a socket
 * someone else connected, a backend that does not speak HTTP/2 (EPROTO at
 * once), PING after silence and the idle close (with the times shortened),
 * and a PING nobody answers closing the session. Reverse tunnels
 * (h2client_attach, h2client_tunnel_ops): the agent's side is a server
 * session that expects no magic (so ours must have been dropped), ready
 * only after the SETTINGS exchange, streams waiting for it, least in flight
 * and round-robin over two agents, ENOENT with none, an agent silent to
 * PING dropped with the reason, GOAWAY only once a draining tunnel's
 * streams are done.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "share/evloop.h"
#include "share/snap.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/context.h"
#include "worker/forward.h"
#include "worker/message.h"
#include "worker/upstream.h"

#define NFX 4
#define NSRV 17
#define SSTREAMS 64

static struct worker w;
static int lfd = -1;
static struct snap_backend be;
static int in_ops;

#define EVENT() ck_assert_msg(!in_ops, "an upstream event inside an ops call")

/* --- the fake exchanges: one per stream */

struct fx {
	struct ustream *s;	/* NULL once closed */
	int heads;
	unsigned status[4];
	struct msg_head resp;	/* the final head's framing, copied */
	char body[64 * 1024];
	size_t body_len, body_total;
	int ends, fails, mores, sents;
	uint32_t end_ntrailers;
	char trailer[64];	/* the first trailer, "name: value" */
	enum upstream_err err;
	int code;
	size_t room;		/* taken down by body bytes, as a sink's */
};

static struct fx fx[NFX];

static void
fx_close(struct fx *f)
{
	if (f->s == NULL)
		return;
	in_ops = 1;
	h2client_ops.close(f->s);
	in_ops = 0;
	f->s = NULL;
}

static int
ev_head(void *arg, struct msg_head *resp)
{
	struct fx *f = arg;

	EVENT();
	ck_assert_ptr_nonnull(f->s);
	if (f->heads < 4)
		f->status[f->heads] = resp->status;
	f->heads++;
	f->resp.has_length = resp->has_length;
	f->resp.length = resp->length;
	f->resp.chunked = resp->chunked;
	f->resp.complete = resp->complete;
	return 0;
}

static int
ev_body(void *arg, const char *p, size_t n)
{
	struct fx *f = arg;

	EVENT();
	ck_assert_ptr_nonnull(f->s);
	ck_assert_uint_le(n, f->room);
	if (f->body_len + n <= sizeof(f->body)) {
		memcpy(f->body + f->body_len, p, n);
		f->body_len += n;
	}
	f->body_total += n;
	f->room -= n;
	return 0;
}

static void
ev_end(void *arg, struct msg_head *resp)
{
	struct fx *f = arg;

	EVENT();
	ck_assert_ptr_nonnull(f->s);
	f->ends++;
	f->end_ntrailers = resp->ntrailers;
	if (resp->ntrailers > 0) {
		const struct msg_field *t = &resp->f[msg_nheaders(resp)];

		snprintf(f->trailer, sizeof(f->trailer), "%s: %s", msg_name(resp, t),
		    msg_value(resp, t));
	}
	fx_close(f);	/* as the exchange does: the response stays readable */
}

static void
ev_fail(void *arg, enum upstream_err err, int code)
{
	struct fx *f = arg;

	EVENT();
	ck_assert_ptr_nonnull(f->s);
	f->fails++;
	f->err = err;
	f->code = code;
	fx_close(f);
}

static size_t
ev_room(void *arg)
{
	struct fx *f = arg;

	EVENT();
	return f->room;
}

static void
ev_more(void *arg)
{
	struct fx *f = arg;

	EVENT();
	f->mores++;
}

static void
ev_sent(void *arg)
{
	struct fx *f = arg;

	EVENT();
	f->sents++;
}

static const struct upstream_events fx_events = {
	ev_head, ev_body, ev_end, ev_fail, ev_room, ev_more, ev_sent, NULL,
};

/* --- requests */

static struct msg_head reqh[NFX];

/* A request head as the exchange hands it over: parsed, then forwarded. */
static void
make_req(int i, const char *text)
{
	msg_free(&reqh[i]);
	tw_parse_head(&reqh[i], text);
	ck_assert_int_eq(forward_request(&reqh[i], &(struct fwd_info){ "192.0.2.1", "http",
	    "00000000000000aa", 0 }), 0);
}

/* Opens stream i for reqh[i]; NULL with errno when the connect failed at once. */
static struct ustream *
xopen(int i, int fresh)
{
	struct upstream_opts o = { 2000, fresh, NULL, NULL, 0, NULL };
	struct fx *f = &fx[i];

	msg_free(&f->resp);
	memset(f, 0, sizeof(*f));
	f->room = 256 * 1024;
	in_ops = 1;
	f->s = h2client_ops.open(&w, &be, &o, &reqh[i], &fx_events, f);
	in_ops = 0;
	return f->s;
}

static void
xsend(int i, const char *p)
{
	in_ops = 1;
	ck_assert_uint_ge(h2client_ops.room(fx[i].s), strlen(p));
	ck_assert_int_eq(h2client_ops.send(fx[i].s, p, strlen(p)), 0);
	in_ops = 0;
}

static void
xend(int i, const struct msg_head *trailers)
{
	in_ops = 1;
	ck_assert_int_eq(h2client_ops.end(fx[i].s, trailers), 0);
	in_ops = 0;
}

static void
xresume(int i)
{
	in_ops = 1;
	h2client_ops.resume(fx[i].s);
	in_ops = 0;
}

static const char get_text[] = "GET /x?y=1 HTTP/1.1\r\nHost: b.test\r\nConnection: keep-alive\r\n"
    "User-Agent: u\r\n\r\n";

/* A GET on stream i, its request ended. */
static void
get_open(int i)
{
	make_req(i, get_text);
	ck_assert_ptr_nonnull(xopen(i, 0));
	xend(i, NULL);
}

/* --- the backends: nghttp2 server sessions driven by the test */

struct sstream {
	char head[4096];	/* "name: value\n" as received, pseudo-headers included */
	char body[4096];
	size_t body_len, body_total;	/* body keeps the first bytes only */
	char trailers[512];
	int end;		/* END_STREAM came */
	int rst;		/* RST_STREAM came, with rst_code */
	uint32_t rst_code;
	size_t resp_len, resp_off;	/* response body: resp_len bytes of 'b' */
	const char *resp_trailer;	/* sent after the body when set: "name", "value" */
};

struct srv {
	int fd;
	nghttp2_session *ng;
	struct sstream st[SSTREAMS];	/* by stream id / 2 */
	int eof;
	int32_t last_id;
	int pings;		/* PINGs received (not acknowledgements) */
	int goaway;
};

static struct srv srv[NSRV];
static int nsrv;
static uint32_t srv_max_streams = 100;
static uint32_t srv_window = 65535;	/* the stream window the backends advertise */

static struct sstream *
srv_stream(struct srv *s, int32_t id)
{
	ck_assert_int_lt(id / 2, SSTREAMS);
	return &s->st[id / 2];
}

static ssize_t
srv_sendcb(nghttp2_session *ng, const uint8_t *p, size_t n, int flags, void *arg)
{
	struct srv *s = arg;
	ssize_t k = send(s->fd, p, n, MSG_NOSIGNAL);

	(void)ng;
	(void)flags;
	if (k == -1 && errno == EAGAIN)
		return NGHTTP2_ERR_WOULDBLOCK;
	return k == -1 ? NGHTTP2_ERR_CALLBACK_FAILURE : k;
}

static int
srv_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct sstream *st = srv_stream(arg, f->hd.stream_id);
	int trailer = f->headers.cat == NGHTTP2_HCAT_HEADERS;
	char *to = trailer ? st->trailers : st->head;
	size_t cap = trailer ? sizeof(st->trailers) : sizeof(st->head), len = strlen(to);

	(void)ng;
	(void)flags;
	ck_assert_int_lt(snprintf(to + len, cap - len, "%.*s: %.*s\n", (int)nlen, name, (int)vlen,
	    value), (int)(cap - len));
	return 0;
}

static int
srv_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *p, size_t n, void *arg)
{
	struct sstream *st = srv_stream(arg, id);

	(void)ng;
	(void)flags;
	if (st->body_len + n <= sizeof(st->body)) {
		memcpy(st->body + st->body_len, p, n);
		st->body_len += n;
	}
	st->body_total += n;
	return 0;
}

static int
srv_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct srv *s = arg;

	(void)ng;
	if (f->hd.stream_id != 0 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA))
		srv_stream(s, f->hd.stream_id)->end = 1;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		s->last_id = f->hd.stream_id;
	if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK))
		s->pings++;
	if (f->hd.type == NGHTTP2_GOAWAY)
		s->goaway = 1;
	if (f->hd.type == NGHTTP2_RST_STREAM) {
		srv_stream(s, f->hd.stream_id)->rst = 1;
		srv_stream(s, f->hd.stream_id)->rst_code = f->rst_stream.error_code;
	}
	return 0;
}

/* Accepts a backend connection, if one waits, with its server session. */
static void
srv_try_accept(void)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0 },
	    { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0 } };
	int fd = tw_try_accept(lfd);
	struct srv *s;

	if (fd == -1)
		return;
	ck_assert_int_lt(nsrv, NSRV);
	s = &srv[nsrv++];
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, srv_sendcb);
	nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
	ck_assert_int_eq(nghttp2_session_server_new(&s->ng, cb, s), 0);
	nghttp2_session_callbacks_del(cb);
	iv[0].value = srv_max_streams;
	iv[1].value = srv_window;
	ck_assert_int_eq(nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 2), 0);
	ck_assert_int_eq(nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
	    srv_window < 65535 ? 65535 : srv_window), 0);
}

/* One round: pending accepts, the backends' frames out, the worker's turn, their frames in. */
static void
srv_turn(void)
{
	uint8_t buf[65536];
	int i;

	srv_try_accept();
	for (i = 0; i < nsrv; i++)
		if (srv[i].ng != NULL && !srv[i].eof)
			(void)nghttp2_session_send(srv[i].ng);
	tw_turn();
	for (i = 0; i < nsrv; i++) {
		ssize_t n;

		if (srv[i].ng == NULL || srv[i].eof)
			continue;
		while ((n = recv(srv[i].fd, buf, sizeof(buf), 0)) > 0)
			ck_assert_int_ge(nghttp2_session_mem_recv(srv[i].ng, buf, (size_t)n), 0);
		if (n == 0 || (n == -1 && errno != EAGAIN))
			srv[i].eof = 1;
	}
}

#define SRV_UNTIL(cond) do {							\
	uint64_t dl_ = tw_deadline(3000);					\
	while (!(cond) && util_now_ms() < dl_)					\
		srv_turn();							\
	ck_assert_msg((cond), "timed out waiting for " #cond);			\
} while (0)

static ssize_t
srv_read_body(nghttp2_session *ng, int32_t id, uint8_t *to, size_t len, uint32_t *flags,
    nghttp2_data_source *src, void *arg)
{
	struct sstream *st = src->ptr;
	size_t n = st->resp_len - st->resp_off;

	(void)arg;
	if (n > len)
		n = len;
	memset(to, 'b', n);
	st->resp_off += n;
	if (st->resp_off == st->resp_len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->resp_trailer != NULL) {
			nghttp2_nv t = { (uint8_t *)(uintptr_t)st->resp_trailer,
			    (uint8_t *)(uintptr_t)"0", strlen(st->resp_trailer), 1, 0 };

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			ck_assert_int_eq(nghttp2_submit_trailer(ng, id, &t, 1), 0);
		}
	}
	return (ssize_t)n;
}

/* Answers stream id of backend s: status, then len bytes of 'b' (with a content-length if cl). */
static void
srv_respond(struct srv *s, int32_t id, const char *status, size_t len, int cl)
{
	struct sstream *st = srv_stream(s, id);
	char clen[24];
	nghttp2_nv nv[2] = {
		{ (uint8_t *)(uintptr_t)":status", (uint8_t *)(uintptr_t)status, 7, 3, 0 },
		{ (uint8_t *)(uintptr_t)"content-length", (uint8_t *)clen, 14, 0, 0 },
	};
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = srv_read_body };

	snprintf(clen, sizeof(clen), "%zu", len);
	nv[1].valuelen = strlen(clen);
	st->resp_len = len;
	st->resp_off = 0;
	ck_assert_int_eq(nghttp2_submit_response(s->ng, id, nv, cl ? 2 : 1,
	    len > 0 || st->resp_trailer != NULL ? &prd : NULL), 0);
}

/* --- fixture */

static void
setup(void)
{
	uint32_t lo = htonl(INADDR_LOOPBACK);
	uint16_t port;

	signal(SIGPIPE, SIG_IGN);	/* as in a worker */
	tw_worker_init(&w);
	w.cfg.connect_timeout_ms = 2000;
	ck_assert_int_eq(h2client_pools_init(&w), 0);
	memset(reqh, 0, sizeof(reqh));
	memset(fx, 0, sizeof(fx));
	memset(srv, 0, sizeof(srv));
	nsrv = 0;
	srv_max_streams = 100;
	srv_window = 65535;
	lfd = tw_listen(SOCK_NONBLOCK, 16, &port);
	memset(&be, 0, sizeof(be));
	be.id = 77;
	be.family = AF_INET;
	be.port = port;
	memcpy(be.addr, &lo, 4);
}

static void
teardown(void)
{
	int i;

	for (i = 0; i < NFX; i++) {
		fx_close(&fx[i]);
		msg_free(&fx[i].resp);
		msg_free(&reqh[i]);
	}
	ev_run_once(w.loop, 0);		/* the streams' deferred frees */
	h2client_pools_free(&w);
	ev_run_once(w.loop, 0);		/* the sessions' */
	ev_run_once(w.loop, 0);
	for (i = 0; i < nsrv; i++) {
		nghttp2_session_del(srv[i].ng);
		close(srv[i].fd);
	}
	buf_pool_clear(&w.bufs);
	ev_loop_free(w.loop);
	close(lfd);
}

/* --- tests */

START_TEST(h2c_get)
{
	struct sstream *st;

	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1 && srv[0].st[0].end);
	st = &srv[0].st[0];
	ck_assert_msg(strstr(st->head, ":method: GET\n") != NULL, "%s", st->head);
	ck_assert_ptr_nonnull(strstr(st->head, ":scheme: http\n"));
	ck_assert_ptr_nonnull(strstr(st->head, ":authority: b.test\n"));
	ck_assert_ptr_nonnull(strstr(st->head, ":path: /x?y=1\n"));
	ck_assert_ptr_nonnull(strstr(st->head, "user-agent: u\n"));
	ck_assert_ptr_nonnull(strstr(st->head, "x-forwarded-for: 192.0.2.1\n"));
	ck_assert_ptr_nonnull(strstr(st->head, "x-request-id: 00000000000000aa\n"));
	ck_assert_ptr_null(strstr(st->head, "\nhost:"));
	ck_assert_ptr_null(strstr(st->head, "connection"));
	ck_assert_ptr_null(strstr(st->head, "content-length"));
	SRV_UNTIL(fx[0].sents == 1);
	ck_assert_int_ge(fx[0].mores, 1);
	ck_assert_int_eq(fx[0].heads, 0);
	srv_respond(&srv[0], 1, "200", 5, 1);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_int_eq(fx[0].heads, 1);
	ck_assert_uint_eq(fx[0].status[0], 200);
	ck_assert_int_eq(fx[0].resp.has_length, 1);
	ck_assert_uint_eq(fx[0].resp.length, 5);
	ck_assert_uint_eq(fx[0].body_len, 5);
	ck_assert_int_eq(memcmp(fx[0].body, "bbbbb", 5), 0);
	ck_assert_int_eq(fx[0].fails, 0);
	/* The session stays for the next request: no new connection. */
	get_open(1);
	SRV_UNTIL(srv[0].last_id == 3);
	ck_assert_int_eq(nsrv, 1);
	srv_respond(&srv[0], 3, "204", 0, 0);
	SRV_UNTIL(fx[1].ends == 1);
	ck_assert_uint_eq(fx[1].status[0], 204);
	ck_assert_int_eq(fx[1].resp.complete, 1);	/* END_STREAM on HEADERS */
	ck_assert_int_eq(fx[0].resp.complete, 0);
}
END_TEST

START_TEST(h2c_post_body_and_trailers)
{
	struct msg_head *t = &reqh[0];
	struct sstream *st;

	make_req(0, "POST /up HTTP/1.1\r\nHost: b.test\r\nTransfer-Encoding: chunked\r\n"
	    "TE: trailers\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0, 0));
	ck_assert_int_eq(h2client_ops.connecting(fx[0].s), 1);
	xsend(0, "hello");	/* before the session is ready: kept */
	SRV_UNTIL(fx[0].mores >= 1);
	ck_assert_int_eq(h2client_ops.connecting(fx[0].s), 0);
	xsend(0, "world!");
	ck_assert_int_eq(msg_add_n(t, "X-Sum", 5, "7", 1, 1), 0);
	xend(0, t);
	SRV_UNTIL(srv[0].st[0].end);
	st = &srv[0].st[0];
	ck_assert_ptr_nonnull(strstr(st->head, ":method: POST\n"));
	ck_assert_ptr_nonnull(strstr(st->head, "te: trailers\n"));
	ck_assert_ptr_null(strstr(st->head, "transfer-encoding"));
	ck_assert_uint_eq(st->body_len, 11);
	ck_assert_int_eq(memcmp(st->body, "helloworld!", 11), 0);
	ck_assert_str_eq(st->trailers, "x-sum: 7\n");
	SRV_UNTIL(fx[0].sents == 1);
	/* A body of unknown length, then trailers (as gRPC answers). */
	st->resp_trailer = "grpc-status";
	srv_respond(&srv[0], 1, "200", 3, 0);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_int_eq(fx[0].resp.has_length, 0);
	ck_assert_int_eq(fx[0].resp.chunked, 1);
	ck_assert_uint_eq(fx[0].body_len, 3);
	ck_assert_uint_eq(fx[0].end_ntrailers, 1);
	ck_assert_str_eq(fx[0].trailer, "grpc-status: 0");
}
END_TEST

START_TEST(h2c_length_body)
{
	make_req(0, "PUT /f HTTP/1.1\r\nHost: b.test\r\nContent-Length: 9\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0, 0));
	xsend(0, "123");
	xsend(0, "456789");
	xend(0, NULL);
	SRV_UNTIL(nsrv == 1 && srv[0].st[0].end);
	ck_assert_ptr_nonnull(strstr(srv[0].st[0].head, "content-length: 9\n"));
	ck_assert_uint_eq(srv[0].st[0].body_len, 9);
	SRV_UNTIL(fx[0].sents == 1);
}
END_TEST

START_TEST(h2c_streams_share_a_session)
{
	int i;

	for (i = 0; i < 3; i++)
		get_open(i);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 5);
	tw_run_ms(20);
	srv_try_accept();
	ck_assert_int_eq(nsrv, 1);	/* the connect in progress served all three */
	for (i = 0; i < 3; i++)
		srv_respond(&srv[0], 1 + 2 * i, "200", 10, 1);
	SRV_UNTIL(fx[0].ends == 1 && fx[1].ends == 1 && fx[2].ends == 1);
}
END_TEST

START_TEST(h2c_max_concurrent_one)
{
	srv_max_streams = 1;
	get_open(0);
	get_open(1);
	/* The first session allows one stream: the second waits for, then gets, a new one. */
	SRV_UNTIL(nsrv == 2 && srv[0].last_id == 1 && srv[1].last_id == 1);
	srv_respond(&srv[0], 1, "200", 1, 1);
	srv_respond(&srv[1], 1, "200", 2, 1);
	SRV_UNTIL(fx[0].ends == 1 && fx[1].ends == 1);
	ck_assert_uint_eq(fx[0].body_len + fx[1].body_len, 3);
	/* Both sessions are free again: a third stream takes one of them. */
	get_open(2);
	SRV_UNTIL(srv[0].last_id == 3 || srv[1].last_id == 3);
	tw_run_ms(20);
	srv_try_accept();
	ck_assert_int_eq(nsrv, 2);
}
END_TEST

START_TEST(h2c_refused_stream_is_stale)
{
	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	ck_assert_int_eq(nghttp2_submit_rst_stream(srv[0].ng, NGHTTP2_FLAG_NONE, 1,
	    NGHTTP2_REFUSED_STREAM), 0);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_STALE);
	ck_assert_int_eq(fx[0].heads, 0);
	/* A fresh retry is never STALE again (the exchange would retry without end). */
	make_req(1, get_text);
	ck_assert_ptr_nonnull(xopen(1, 1));
	xend(1, NULL);
	SRV_UNTIL(srv[0].last_id == 3);
	ck_assert_int_eq(nghttp2_submit_rst_stream(srv[0].ng, NGHTTP2_FLAG_NONE, 3,
	    NGHTTP2_REFUSED_STREAM), 0);
	SRV_UNTIL(fx[1].fails == 1);
	ck_assert_int_eq(fx[1].err, UPSTREAM_RESET);
}
END_TEST

START_TEST(h2c_other_reset_and_broken)
{
	get_open(0);
	get_open(1);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 3);
	/* Reset before any answer: RESET (a retry only for idempotent methods). */
	ck_assert_int_eq(nghttp2_submit_rst_stream(srv[0].ng, NGHTTP2_FLAG_NONE, 1,
	    NGHTTP2_INTERNAL_ERROR), 0);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_RESET);
	/* Reset within the answer: BROKEN. */
	srv[0].st[1].resp_len = 0;
	{
		nghttp2_nv nv = { (uint8_t *)(uintptr_t)":status", (uint8_t *)(uintptr_t)"200", 7, 3,
		    0 };

		ck_assert_int_ge(nghttp2_submit_headers(srv[0].ng, NGHTTP2_FLAG_NONE, 3, NULL, &nv, 1,
		    NULL), 0);
	}
	SRV_UNTIL(fx[1].heads == 1);
	ck_assert_int_eq(nghttp2_submit_rst_stream(srv[0].ng, NGHTTP2_FLAG_NONE, 3,
	    NGHTTP2_INTERNAL_ERROR), 0);
	SRV_UNTIL(fx[1].fails == 1);
	ck_assert_int_eq(fx[1].err, UPSTREAM_BROKEN);
}
END_TEST

START_TEST(h2c_goaway)
{
	get_open(0);
	get_open(1);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 3);
	/* The backend goes away having taken stream 1 only: 3 was not processed. */
	ck_assert_int_eq(nghttp2_submit_goaway(srv[0].ng, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR,
	    NULL, 0), 0);
	SRV_UNTIL(fx[1].fails == 1);
	ck_assert_int_eq(fx[1].err, UPSTREAM_STALE);
	ck_assert_int_eq(fx[0].fails, 0);
	/* A new stream goes to a new connection, not the one going away. */
	make_req(2, get_text);
	ck_assert_ptr_nonnull(xopen(2, 1));
	xend(2, NULL);
	SRV_UNTIL(nsrv == 2 && srv[1].last_id == 1);
	ck_assert_int_eq(srv[0].last_id, 3);
	/* Stream 1 finishes on the old one, which then closes. */
	srv_respond(&srv[0], 1, "200", 4, 1);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_uint_eq(fx[0].body_len, 4);
	SRV_UNTIL(srv[0].eof);
	ck_assert_int_eq(srv[1].eof, 0);
	srv_respond(&srv[1], 1, "200", 1, 1);
	SRV_UNTIL(fx[2].ends == 1);
}
END_TEST

START_TEST(h2c_flow_control_per_stream)
{
	get_open(0);
	get_open(1);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 3);
	/* Stream 1's exchange takes the head, then nothing: its window fills and it stalls. */
	fx[0].room = 4096;
	srv_respond(&srv[0], 1, "200", 200 * 1024, 1);
	srv_respond(&srv[0], 3, "200", 150 * 1024, 1);
	SRV_UNTIL(fx[0].heads == 1);
	fx[0].room = 0;
	SRV_UNTIL(fx[1].ends == 1);
	ck_assert_uint_eq(fx[1].body_total, 150 * 1024);
	tw_run_ms(30);
	srv_turn();
	ck_assert_int_eq(fx[0].ends, 0);
	ck_assert_uint_le(fx[0].body_total, 4096);
	/* The backend may send no more than the window we opened: 64 KiB minus nothing taken. */
	ck_assert_int_le(nghttp2_session_get_stream_remote_window_size(srv[0].ng, 1), 4096);
	ck_assert_uint_lt(srv[0].st[0].resp_off, 80 * 1024);
	/* Room again: the rest flows. */
	fx[0].room = 256 * 1024;
	xresume(0);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_uint_eq(fx[0].body_total, 200 * 1024);
}
END_TEST

START_TEST(h2c_close_sends_cancel)
{
	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	fx_close(&fx[0]);	/* the client went away */
	SRV_UNTIL(srv[0].st[0].rst);
	ck_assert_uint_eq(srv[0].st[0].rst_code, NGHTTP2_CANCEL);
	/* The session serves on. */
	get_open(1);
	SRV_UNTIL(srv[0].last_id == 3);
	srv_respond(&srv[0], 3, "200", 1, 1);
	SRV_UNTIL(fx[1].ends == 1);
	ck_assert_int_eq(nsrv, 1);
}
END_TEST

START_TEST(h2c_connect_refused)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int sfd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(sfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(sfd, (struct sockaddr *)&sin, &sl), 0);
	close(sfd);
	be.id = 78;
	be.port = ntohs(sin.sin_port);
	make_req(0, get_text);
	errno = 0;
	if (xopen(0, 0) == NULL) {
		ck_assert_int_eq(errno, ECONNREFUSED);
		return;
	}
	xend(0, NULL);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_CONNECT);
	ck_assert_int_eq(fx[0].code, ECONNREFUSED);
}
END_TEST

START_TEST(h2c_connection_lost)
{
	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	shutdown(srv[0].fd, SHUT_RDWR);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_RESET);	/* a new session: not retried blindly */
}
END_TEST

START_TEST(h2c_dead_reused_session_is_stale)
{
	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	srv_respond(&srv[0], 1, "200", 1, 1);
	SRV_UNTIL(fx[0].ends == 1);
	/* The backend goes away without a word, and the loop has not seen it yet. */
	shutdown(srv[0].fd, SHUT_RDWR);
	srv[0].eof = 1;
	get_open(1);
	SRV_UNTIL(fx[1].fails == 1);
	ck_assert_int_eq(fx[1].err, UPSTREAM_STALE);	/* nothing heard since it was sent */
}
END_TEST

START_TEST(h2c_interim_then_final)
{
	nghttp2_nv nv = { (uint8_t *)(uintptr_t)":status", (uint8_t *)(uintptr_t)"103", 7, 3, 0 };

	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	ck_assert_int_ge(nghttp2_submit_headers(srv[0].ng, NGHTTP2_FLAG_NONE, 1, NULL, &nv, 1,
	    NULL), 0);
	srv_respond(&srv[0], 1, "200", 2, 1);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_int_eq(fx[0].heads, 2);
	ck_assert_uint_eq(fx[0].status[0], 103);
	ck_assert_uint_eq(fx[0].status[1], 200);
}
END_TEST

START_TEST(h2c_response_head_too_large)
{
	static char big[1000];
	nghttp2_nv nv[40];
	char names[40][8];
	int i;

	get_open(0);
	get_open(1);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 3);
	/* 39 fields of 1000 bytes: past MSG_HEAD_MAX. The stream breaks, the session serves on. */
	memset(big, 'v', sizeof(big));
	nv[0] = (nghttp2_nv){ (uint8_t *)(uintptr_t)":status", (uint8_t *)(uintptr_t)"200", 7, 3, 0 };
	for (i = 1; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "x-%d", i);
		nv[i] = (nghttp2_nv){ (uint8_t *)names[i], (uint8_t *)big, strlen(names[i]),
		    sizeof(big), 0 };
	}
	ck_assert_int_eq(nghttp2_submit_response(srv[0].ng, 1, nv, 40, NULL), 0);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_BROKEN);
	ck_assert_int_eq(fx[0].heads, 0);
	srv_respond(&srv[0], 3, "200", 1, 1);
	SRV_UNTIL(fx[1].ends == 1);
}
END_TEST

START_TEST(h2c_too_many_interim_heads)
{
	nghttp2_nv nv = { (uint8_t *)(uintptr_t)":status", (uint8_t *)(uintptr_t)"103", 7, 3, 0 };
	int i;

	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	for (i = 0; i < 9; i++)
		ck_assert_int_ge(nghttp2_submit_headers(srv[0].ng, NGHTTP2_FLAG_NONE, 1, NULL, &nv, 1,
		    NULL), 0);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_BROKEN);
	ck_assert_int_eq(fx[0].heads, 8);
}
END_TEST

START_TEST(h2c_sessions_bounded_then_busy)
{
	uint64_t dl;

	/* A backend that allows no stream at all: sessions up to the bound, then the wait ends. */
	srv_max_streams = 0;
	get_open(0);
	SRV_UNTIL(nsrv == 16);
	dl = tw_deadline(4000);
	while (fx[0].fails == 0 && util_now_ms() < dl)
		srv_turn();
	ck_assert_int_eq(fx[0].fails, 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_CONNECT);
	ck_assert_int_eq(fx[0].code, EBUSY);	/* busy, not down: the exchange marks nothing */
	ck_assert_int_eq(nsrv, 16);
	ck_assert_int_eq(tw_try_accept(lfd), -1);
}
END_TEST

START_TEST(h2c_backend_without_http2)
{
	int fd;

	/* An HTTP/1.1 server answers our preface and closes: no SETTINGS ever came. */
	get_open(0);
	fd = tw_accept(lfd);
	ck_assert_int_gt(send(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 47,
	    MSG_NOSIGNAL), 0);
	close(fd);
	SRV_UNTIL(fx[0].fails == 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_CONNECT);
	ck_assert_int_eq(fx[0].code, EPROTO);
}
END_TEST

START_TEST(h2c_backend_not_reading)
{
	static char chunk[16 * 1024];
	size_t sent = 0, total = 32 * 1024 * 1024;
	uint64_t dl;

	/* The backend opens huge windows, then stops reading: our buffers fill, the loop goes on. */
	srv_window = 1 << 30;
	make_req(0, "POST /up HTTP/1.1\r\nHost: b.test\r\nContent-Length: 33554432\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0, 0));
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	memset(chunk, 'u', sizeof(chunk));
	dl = tw_deadline(1500);
	while (util_now_ms() < dl && sent < total) {
		size_t n;

		in_ops = 1;
		n = h2client_ops.room(fx[0].s);
		in_ops = 0;
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (n > total - sent)
			n = total - sent;
		if (n > 0) {
			in_ops = 1;
			ck_assert_int_eq(h2client_ops.send(fx[0].s, chunk, n), 0);
			in_ops = 0;
			sent += n;
		}
		tw_turn();	/* the backend's side is not read */
	}
	ck_assert_uint_lt(sent, total);	/* back-pressure reached the exchange */
	/* The backend reads again: everything arrives. */
	while (sent < total) {
		size_t n;

		SRV_UNTIL((n = h2client_ops.room(fx[0].s)) > 0);
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		if (n > total - sent)
			n = total - sent;
		ck_assert_int_eq(h2client_ops.send(fx[0].s, chunk, n), 0);
		sent += n;
	}
	xend(0, NULL);
	SRV_UNTIL(srv[0].st[0].end);
	ck_assert_uint_eq(srv[0].st[0].body_total, total);
}
END_TEST

START_TEST(h2c_session_on_a_given_socket)
{
	nghttp2_session_callbacks *cb;
	int sv[2];

	/* A connection someone else made (a tunnel's): the pool of key 77 uses it. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(h2client_session_new(&w, sv[0], NULL, 77), 0);
	nsrv = 1;
	srv[0].fd = sv[1];
	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, srv_sendcb);
	nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
	ck_assert_int_eq(nghttp2_session_server_new(&srv[0].ng, cb, &srv[0]), 0);
	nghttp2_session_callbacks_del(cb);
	ck_assert_int_eq(nghttp2_submit_settings(srv[0].ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	get_open(0);
	SRV_UNTIL(srv[0].last_id == 1);
	srv_respond(&srv[0], 1, "200", 3, 1);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_int_eq(tw_try_accept(lfd), -1);	/* nothing was dialled */
}
END_TEST

START_TEST(h2c_ping_then_idle_close)
{
	h2client_set_times(&w, 100, 400);
	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	srv_respond(&srv[0], 1, "200", 1, 1);
	SRV_UNTIL(fx[0].ends == 1);
	/* Silent for 100 ms: a PING (answered); without streams for 400 ms: GOAWAY and close. */
	SRV_UNTIL(srv[0].pings >= 1);
	ck_assert_int_eq(srv[0].eof, 0);
	SRV_UNTIL(srv[0].eof);
	ck_assert_int_eq(srv[0].goaway, 1);
}
END_TEST

START_TEST(h2c_unanswered_ping_closes)
{
	uint64_t dl;

	h2client_set_times(&w, 100, 60000);
	get_open(0);
	SRV_UNTIL(nsrv == 1 && srv[0].last_id == 1);
	/* The backend hangs: it reads nothing any more, so no PING is acknowledged. */
	dl = tw_deadline(6000);
	while (fx[0].fails == 0 && util_now_ms() < dl)
		tw_turn();
	ck_assert_int_eq(fx[0].fails, 1);
	ck_assert_int_eq(fx[0].err, UPSTREAM_RESET);
}
END_TEST

/* --- reverse tunnels */

static int t_ready[2], t_closed[2];
static char t_why[2][64];

static void
t_on_ready(void *owner)
{
	t_ready[(int)(intptr_t)owner]++;
}

static void
t_on_close(void *owner, const char *why)
{
	int i = (int)(intptr_t)owner;

	t_closed[i]++;
	util_strlcpy(t_why[i], why, sizeof(t_why[i]));
}

/* Agent i of tunnel app1 on a socketpair: an nghttp2 server session that expects no magic. */
static struct h2conn *
t_attach(int i)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	struct h2conn *c;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	c = h2client_attach(&w, sv[0], NULL, &(struct h2client_attach){ "app1", NULL, 0, 2000,
	    (void *)(intptr_t)i, t_on_ready, t_on_close });
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(nsrv, i);
	nsrv = i + 1;
	srv[i].fd = sv[1];
	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, srv_sendcb);
	nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
	ck_assert_int_eq(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_no_recv_client_magic(opt, 1);
	ck_assert_int_eq(nghttp2_session_server_new2(&srv[i].ng, cb, &srv[i], opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return c;
}

static void
t_settings(int i)
{
	nghttp2_settings_entry iv = { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv_max_streams };

	ck_assert_int_eq(nghttp2_submit_settings(srv[i].ng, NGHTTP2_FLAG_NONE, &iv, 1), 0);
}

/* Opens stream i to tunnel app1 (round-robin when rr); NULL with errno. */
static struct ustream *
t_open(int i, int rr)
{
	struct upstream_tunnel to = { .name = "app1", .round_robin = rr };
	struct upstream_opts o = { 2000, 0, NULL, NULL, 0, NULL };
	struct fx *f = &fx[i];

	make_req(i, get_text);
	msg_free(&f->resp);
	memset(f, 0, sizeof(*f));
	f->room = 256 * 1024;
	in_ops = 1;
	f->s = h2client_tunnel_ops.open(&w, &to.be, &o, &reqh[i], &fx_events, f);
	if (f->s != NULL)
		ck_assert_int_eq(h2client_tunnel_ops.end(f->s, NULL), 0);
	in_ops = 0;
	return f->s;
}

START_TEST(h2c_tunnel_ready_after_the_settings_exchange)
{
	struct sstream *st;

	memset(t_ready, 0, sizeof(t_ready));
	memset(t_closed, 0, sizeof(t_closed));
	errno = 0;
	ck_assert_ptr_null(t_open(0, 0));	/* nobody attached */
	ck_assert_int_eq(errno, ENOENT);
	t_attach(0);
	ck_assert_ptr_nonnull(t_open(0, 0));	/* attaching: the stream waits */
	tw_run_ms(30);
	ck_assert_int_eq(t_ready[0], 0);	/* our SETTINGS are not acknowledged yet */
	ck_assert_int_eq(srv[0].last_id, 0);
	t_settings(0);
	SRV_UNTIL(t_ready[0] == 1 && srv[0].last_id == 1 && srv[0].st[0].end);
	st = &srv[0].st[0];
	ck_assert_msg(strstr(st->head, ":authority: b.test\n") != NULL, "%s", st->head);
	srv_respond(&srv[0], 1, "200", 5, 1);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_uint_eq(fx[0].body_len, 5);
	ck_assert_int_eq(t_closed[0], 0);
}
END_TEST

START_TEST(h2c_tunnel_least_in_flight_and_round_robin)
{
	int first;

	memset(t_ready, 0, sizeof(t_ready));
	t_attach(0);
	t_attach(1);
	t_settings(0);
	t_settings(1);
	SRV_UNTIL(t_ready[0] == 1 && t_ready[1] == 1);
	/* Least in flight: two slow streams go to both agents. */
	ck_assert_ptr_nonnull(t_open(0, 0));
	ck_assert_ptr_nonnull(t_open(1, 0));
	SRV_UNTIL(srv[0].last_id == 1 && srv[1].last_id == 1);
	srv_respond(&srv[0], 1, "200", 0, 1);
	srv_respond(&srv[1], 1, "200", 0, 1);
	SRV_UNTIL(fx[0].ends == 1 && fx[1].ends == 1);
	/* Round-robin: one after the other, each agent in turn. */
	ck_assert_ptr_nonnull(t_open(2, 1));
	SRV_UNTIL(srv[0].last_id + srv[1].last_id == 4);
	first = srv[0].last_id == 3 ? 0 : 1;
	srv_respond(&srv[first], 3, "200", 0, 1);
	SRV_UNTIL(fx[2].ends == 1);
	ck_assert_ptr_nonnull(t_open(3, 1));
	SRV_UNTIL(srv[1 - first].last_id == 3);
	ck_assert_int_eq(srv[first].last_id, 3);
	srv_respond(&srv[1 - first], 3, "200", 0, 1);
	SRV_UNTIL(fx[3].ends == 1);
}
END_TEST

START_TEST(h2c_tunnel_silent_agent_dropped)
{
	memset(t_closed, 0, sizeof(t_closed));
	h2client_set_tunnel_times(&w, 50, 50);
	t_attach(0);
	t_settings(0);
	SRV_UNTIL(t_ready[0] >= 1);
	/* The agent stops answering: PING after 50 ms, dropped 50 ms later. */
	TW_RUN_UNTIL(t_closed[0] == 1);
	ck_assert_str_eq(t_why[0], "no answer to PING");
}
END_TEST

START_TEST(h2c_tunnel_goaway_after_the_drain)
{
	struct h2conn *c;

	memset(t_closed, 0, sizeof(t_closed));
	c = t_attach(0);
	t_settings(0);
	SRV_UNTIL(t_ready[0] >= 1);
	ck_assert_ptr_nonnull(t_open(0, 0));
	SRV_UNTIL(srv[0].last_id == 1);
	h2client_session_goaway(c);
	errno = 0;
	ck_assert_ptr_null(t_open(1, 0));	/* no new stream on it */
	ck_assert_int_eq(errno, ENOENT);
	tw_run_ms(20);
	srv_turn();
	ck_assert_int_eq(srv[0].goaway, 0);	/* not while a stream is in flight */
	srv_respond(&srv[0], 1, "200", 2, 1);
	SRV_UNTIL(fx[0].ends == 1 && srv[0].goaway == 1);
	TW_RUN_UNTIL(t_closed[0] == 1);
}
END_TEST

START_TEST(h2c_tunnel_young_process_waits_for_an_agent)
{
	memset(t_ready, 0, sizeof(t_ready));
	/* An upgrade's new tunnel process: the agent is on its way. */
	w.tunnel_hold_until = util_now_ms() + 10000;
	ck_assert_ptr_nonnull(t_open(0, 0));	/* nobody attached yet: it waits */
	tw_run_ms(20);
	t_attach(0);
	t_settings(0);
	SRV_UNTIL(t_ready[0] == 1 && srv[0].last_id == 1 && srv[0].st[0].end);
	srv_respond(&srv[0], 1, "200", 3, 1);
	SRV_UNTIL(fx[0].ends == 1);
	ck_assert_uint_eq(fx[0].body_len, 3);
	/* Past the hold: no agent for a name is 503 at once again. */
	w.tunnel_hold_until = util_now_ms() - 1;
	{
		struct upstream_tunnel to = { .name = "nobody" };
		struct upstream_opts o = { 2000, 0, NULL, NULL, 0, NULL };

		make_req(1, get_text);
		errno = 0;
		ck_assert_ptr_null(h2client_tunnel_ops.open(&w, &to.be, &o, &reqh[1], &fx_events,
		    &fx[1]));
		ck_assert_int_eq(errno, ENOENT);
	}
	w.tunnel_hold_until = 0;
}
END_TEST

Suite *
suite_h2client(void)
{
	Suite *s = suite_create("h2client");
	TCase *tc = tcase_create("h2client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, h2c_get);
	tcase_add_test(tc, h2c_post_body_and_trailers);
	tcase_add_test(tc, h2c_length_body);
	tcase_add_test(tc, h2c_streams_share_a_session);
	tcase_add_test(tc, h2c_max_concurrent_one);
	tcase_add_test(tc, h2c_refused_stream_is_stale);
	tcase_add_test(tc, h2c_other_reset_and_broken);
	tcase_add_test(tc, h2c_goaway);
	tcase_add_test(tc, h2c_flow_control_per_stream);
	tcase_add_test(tc, h2c_close_sends_cancel);
	tcase_add_test(tc, h2c_connect_refused);
	tcase_add_test(tc, h2c_connection_lost);
	tcase_add_test(tc, h2c_dead_reused_session_is_stale);
	tcase_add_test(tc, h2c_interim_then_final);
	tcase_add_test(tc, h2c_response_head_too_large);
	tcase_add_test(tc, h2c_too_many_interim_heads);
	tcase_add_test(tc, h2c_sessions_bounded_then_busy);
	tcase_add_test(tc, h2c_backend_without_http2);
	tcase_add_test(tc, h2c_backend_not_reading);
	tcase_add_test(tc, h2c_session_on_a_given_socket);
	tcase_add_test(tc, h2c_ping_then_idle_close);
	tcase_add_test(tc, h2c_unanswered_ping_closes);
	tcase_add_test(tc, h2c_tunnel_ready_after_the_settings_exchange);
	tcase_add_test(tc, h2c_tunnel_least_in_flight_and_round_robin);
	tcase_add_test(tc, h2c_tunnel_silent_agent_dropped);
	tcase_add_test(tc, h2c_tunnel_goaway_after_the_drain);
	tcase_add_test(tc, h2c_tunnel_young_process_waits_for_an_agent);
	suite_add_tcase(s, tc);
	return s;
}
