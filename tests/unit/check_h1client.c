/*
 * Unit tests for worker/h1client.c, the HTTP/1.1 upstream, against a real
 * backend socket on 127.0.0.1: the test listens, accepts and reads and
 * writes the backend's side itself (non-blocking), between turns of the same
 * event loop the stream runs on. The stream's events are recorded by a fake
 * exchange that, like the real one, closes the stream inside end and fail,
 * and that fails the test when an event comes from inside an ops call.
 *
 * Covered: the encoded request on the wire (head, chunked body and
 * trailers), a response parsed into head/body/end, keep-alive reuse through
 * the pool, an idle pooled connection the backend closed being dropped, a
 * dead pooled connection giving UPSTREAM_STALE, a new one UPSTREAM_RESET,
 * connection refused, back-pressure toward the exchange, the 101 byte pipe
 * with half-closes both ways, and bad or cut responses (UPSTREAM_BROKEN);
 * proto https: the handshake inside the connect phase, the pooled TLS
 * connection reused (and never by a plain request), an untrusted backend
 * as UPSTREAM_CONNECT.
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

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "share/evloop.h"
#include "share/snap.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/context.h"
#include "worker/forward.h"
#include "worker/http1.h"
#include "worker/message.h"
#include "worker/proxyproto.h"
#include "worker/tlsclient.h"
#include "worker/upstream.h"

static struct worker w;
static int lfd = -1;
static struct snap_backend be;

/* --- the fake exchange: the stream's events */

struct fx {
	struct ustream *s;	/* NULL once closed */
	int heads;
	unsigned status[4];
	char body[64 * 1024];
	size_t body_len;
	int ends, fails, mores, sents;
	int end_null;		/* end came with resp NULL (a pipe) */
	uint32_t end_ntrailers;
	enum upstream_err err;
	int code;
	size_t room;		/* taken down by body bytes, as a sink's */
	size_t room_after_head;	/* when set, room becomes this at the head */
	int keep_open;		/* do not close inside end (the test closes later) */
};

static struct fx fx;
static int in_ops;

#define EVENT() ck_assert_msg(!in_ops, "an upstream event inside an ops call")

static void
fx_close(void)
{
	if (fx.s == NULL)
		return;
	in_ops = 1;
	h1client_ops.close(fx.s);
	in_ops = 0;
	fx.s = NULL;
}

static int
ev_head(void *arg, struct msg_head *resp)
{
	(void)arg;
	EVENT();
	ck_assert_ptr_nonnull(fx.s);
	ck_assert_int_lt(fx.heads, 4);
	fx.status[fx.heads++] = resp->status;
	if (fx.room_after_head != 0)
		fx.room = fx.room_after_head;
	return 0;
}

static int
ev_body(void *arg, const char *p, size_t n)
{
	(void)arg;
	EVENT();
	ck_assert_ptr_nonnull(fx.s);
	ck_assert_uint_le(n, fx.room);
	ck_assert_uint_le(fx.body_len + n, sizeof(fx.body));
	memcpy(fx.body + fx.body_len, p, n);
	fx.body_len += n;
	fx.room -= n;
	return 0;
}

static void
ev_end(void *arg, struct msg_head *resp)
{
	(void)arg;
	EVENT();
	ck_assert_ptr_nonnull(fx.s);
	fx.ends++;
	fx.end_null = resp == NULL;
	fx.end_ntrailers = resp != NULL ? resp->ntrailers : 0;
	if (!fx.keep_open)
		fx_close();	/* as the exchange does: the response stays readable */
}

static void
ev_fail(void *arg, enum upstream_err err, int code)
{
	(void)arg;
	EVENT();
	ck_assert_ptr_nonnull(fx.s);
	fx.fails++;
	fx.err = err;
	fx.code = code;
	fx_close();
}

static size_t
ev_room(void *arg)
{
	(void)arg;
	EVENT();
	return fx.room;
}

static void
ev_more(void *arg)
{
	(void)arg;
	EVENT();
	fx.mores++;
}

static void
ev_sent(void *arg)
{
	(void)arg;
	EVENT();
	fx.sents++;
}

static const struct upstream_events fx_events = {
	ev_head, ev_body, ev_end, ev_fail, ev_room, ev_more, ev_sent, NULL,
};

/* --- requests */

static struct msg_head reqh;

/* A request head as the exchange hands it over: parsed, then forwarded. */
static void
make_req(const char *text)
{
	msg_free(&reqh);
	tw_parse_head(&reqh, text);
	ck_assert_int_eq(forward_request(&reqh, &(struct fwd_info){ "192.0.2.1", "http",
	    "00000000000000aa", 0 }), 0);
}

/* Opens a stream for reqh; NULL with errno when the connect failed at once. */
static struct ustream *
xopen(int fresh)
{
	struct upstream_opts o = { 2000, fresh, NULL, NULL, 0, NULL };
	struct ustream *s;

	memset(&fx, 0, sizeof(fx));
	fx.room = 32 * 1024;
	in_ops = 1;
	s = h1client_ops.open(&w, &be, &o, &reqh, &fx_events, &fx);
	in_ops = 0;
	fx.s = s;
	return s;
}

static int
xsend(const char *p)
{
	int rc;

	in_ops = 1;
	ck_assert_uint_ge(h1client_ops.room(fx.s), strlen(p));
	rc = h1client_ops.send(fx.s, p, strlen(p));
	in_ops = 0;
	return rc;
}

static int
xend(const struct msg_head *trailers)
{
	int rc;

	in_ops = 1;
	rc = h1client_ops.end(fx.s, trailers);
	in_ops = 0;
	return rc;
}

static void
xresume(void)
{
	in_ops = 1;
	h1client_ops.resume(fx.s);
	in_ops = 0;
}

/* --- the backend's side */

static char rx[64 * 1024];
static size_t rx_len;
static int rx_eof;

/* Reads what the backend got until needle shows up (or EOF when needle is NULL). */
static void
srv_read_until(int fd, const char *needle)
{
	uint64_t dl = tw_deadline(3000);

	for (;;) {
		ssize_t n = recv(fd, rx + rx_len, sizeof(rx) - 1 - rx_len, 0);

		if (n > 0) {
			rx_len += (size_t)n;
			rx[rx_len] = '\0';
		} else if (n == 0)
			rx_eof = 1;
		else
			ck_assert_msg(errno == EAGAIN, "recv: %s", strerror(errno));
		if (needle != NULL ? strstr(rx, needle) != NULL : rx_eof)
			return;
		ck_assert_msg(n != 0, "EOF before \"%s\" in \"%s\"", needle ? needle : "", rx);
		ck_assert_msg(util_now_ms() < dl, "timed out waiting for \"%s\" in \"%s\"",
		    needle ? needle : "EOF", rx);
		tw_turn();
	}
}

static void
rx_clear(void)
{
	rx_len = 0;
	rx[0] = '\0';
	rx_eof = 0;
}

static void
srv_write(int fd, const char *p)
{
	size_t len = strlen(p);

	ck_assert_int_eq(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
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
	ck_assert_int_eq(h1client_pools_init(&w), 0);
	ck_assert_int_eq(tlsclient_init(&w), 0);
	msg_init(&reqh);
	rx_clear();

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
	fx_close();
	ev_run_once(w.loop, 0);		/* the streams' deferred frees */
	h1client_pools_free(&w);
	tlsclient_free(&w);
	ev_run_once(w.loop, 0);
	buf_pool_clear(&w.bufs);
	msg_free(&reqh);
	ev_loop_free(w.loop);
	close(lfd);
}

static const char get_text[] = "GET /x?y=1 HTTP/1.1\r\nHost: b.test\r\nConnection: keep-alive\r\n"
    "User-Agent: u\r\n\r\n";

/* Opens a stream (fresh or not) for a GET of get_text and ends its request; xend's result. */
static int
get_open(int fresh)
{
	make_req(get_text);
	ck_assert_ptr_nonnull(xopen(fresh));
	return xend(NULL);
}

/* Accepts the backend's connection and reads the request head into rx (emptied first). */
static int
srv_head(void)
{
	int fd;

	rx_clear();
	fd = tw_accept(lfd);
	srv_read_until(fd, "\r\n\r\n");
	return fd;
}

/* A GET whose head the backend read and answered with resp; the backend's side. */
static int
get_answered(const char *resp)
{
	int fd;

	get_open(0);
	fd = srv_head();
	srv_write(fd, resp);
	return fd;
}

/* A GET the backend answers with an empty 200 on a new connection; the backend's side. */
static int
get_empty_answer(int fresh)
{
	int fd;

	get_open(fresh);
	fd = srv_head();
	srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	TW_RUN_UNTIL(fx.ends == 1);
	return fd;
}

/* A GET goes out on a new connection (nothing pooled to take); it is closed unanswered. */
static void
get_new_connection(void)
{
	get_open(0);
	close(tw_accept(lfd));
}

/* Our side closed the connection fd (the backend reads EOF): the next GET connects anew. */
static void
expect_not_pooled(int fd)
{
	rx_clear();
	srv_read_until(fd, NULL);
	ck_assert_int_eq(rx_eof, 1);
	get_new_connection();
	close(fd);
}

/* A response the stream cannot take: UPSTREAM_BROKEN before any head. */
static void
expect_broken(const char *resp)
{
	int fd = get_answered(resp);

	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_BROKEN);
	ck_assert_int_eq(fx.heads, 0);
	close(fd);
}

/* One GET answered with "hello" on the backend connection fd (accepted if -1). */
static int
one_exchange(int fd)
{
	ck_assert_int_eq(get_open(0), 0);
	if (fd == -1)
		fd = tw_accept(lfd);
	rx_clear();
	srv_read_until(fd, "\r\n\r\n");
	srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_int_eq(fx.fails, 0);
	ck_assert_uint_eq(fx.body_len, 5);
	return fd;
}

/* --- tests */

START_TEST(hc_request_and_response)
{
	int fd;

	ck_assert_int_eq(get_open(0), 0);
	fd = srv_head();
	ck_assert_msg(strncmp(rx, "GET /x?y=1 HTTP/1.1\r\n", 21) == 0, "%s", rx);
	ck_assert_ptr_nonnull(strstr(rx, "\r\nHost: b.test\r\n"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\nUser-Agent: u\r\n"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\nX-Forwarded-For: 192.0.2.1\r\n"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\nX-Request-Id: 00000000000000aa\r\n"));
	ck_assert_ptr_null(strstr(rx, "Connection"));
	ck_assert_ptr_null(strstr(rx, "Content-Length"));
	ck_assert_ptr_null(strstr(rx, "Transfer-Encoding"));
	/* Everything went out: sent once. */
	TW_RUN_UNTIL(fx.sents == 1);
	ck_assert_int_eq(fx.heads, 0);
	/* The response in pieces: head, then body across two writes. */
	srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello");
	TW_RUN_UNTIL(fx.body_len == 5);
	ck_assert_int_eq(fx.heads, 1);
	ck_assert_uint_eq(fx.status[0], 200);
	ck_assert_int_eq(fx.ends, 0);
	srv_write(fd, " world");
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_uint_eq(fx.body_len, 11);
	ck_assert_int_eq(memcmp(fx.body, "hello world", 11), 0);
	ck_assert_int_eq(fx.end_null, 0);
	ck_assert_int_eq(fx.fails, 0);
	ck_assert_int_eq(fx.sents, 1);
	close(fd);
}
END_TEST

START_TEST(hc_chunked_response_with_trailers)
{
	int fd;

	ck_assert_int_eq(get_open(0), 0);
	fd = srv_head();
	srv_write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Digest: 9\r\n\r\n");
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_uint_eq(fx.body_len, 7);
	ck_assert_int_eq(memcmp(fx.body, "abcdefg", 7), 0);
	ck_assert_uint_eq(fx.end_ntrailers, 1);
	close(fd);
}
END_TEST

START_TEST(hc_interim_then_final)
{
	int fd;

	fd = get_answered("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_int_eq(fx.heads, 2);
	ck_assert_uint_eq(fx.status[0], 100);
	ck_assert_uint_eq(fx.status[1], 204);
	close(fd);
}
END_TEST

START_TEST(hc_keepalive_reuses_connection)
{
	int fd = one_exchange(-1);

	/* The stream was closed inside end: the connection went back to the pool. */
	rx_clear();
	make_req("GET /second HTTP/1.1\r\nHost: b.test\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0));
	ck_assert_int_eq(xend(NULL), 0);
	srv_read_until(fd, "\r\n\r\n");
	ck_assert_msg(strncmp(rx, "GET /second HTTP/1.1\r\n", 22) == 0, "%s", rx);
	ck_assert_int_eq(tw_try_accept(lfd), -1);	/* one connection only */
	srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_int_eq(fx.fails, 0);
	ck_assert_int_eq(memcmp(fx.body, "ok", 2), 0);
	/* A fresh open (a retry) does not take the pooled connection. */
	get_open(1);
	close(tw_accept(lfd));
	close(fd);
}
END_TEST

/* A route with backend PROXY protocol: the header first, and the connection never pooled. */
START_TEST(hc_proxy_header_first_never_pooled)
{
	struct proxyproto_addrs a = { AF_INET, { 203, 0, 113, 9 }, { 192, 0, 2, 1 }, 5555, 443 };
	struct upstream_opts o = { 2000, 0, NULL, NULL, PROXYPROTO_V1, &a };
	const char *want = "PROXY TCP4 203.0.113.9 192.0.2.1 5555 443\r\nGET /x?y=1 ";
	int fd, i;

	for (i = 0; i < 2; i++) {
		make_req(get_text);
		memset(&fx, 0, sizeof(fx));
		fx.room = 32 * 1024;
		in_ops = 1;
		fx.s = h1client_ops.open(&w, &be, &o, &reqh, &fx_events, &fx);
		in_ops = 0;
		ck_assert_ptr_nonnull(fx.s);
		ck_assert_int_eq(xend(NULL), 0);
		/* A new connection each time: the first one was not pooled. */
		fd = srv_head();
		ck_assert_msg(strncmp(rx, want, strlen(want)) == 0, "%s", rx);
		srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		TW_RUN_UNTIL(fx.ends == 1);
		ck_assert_int_eq(fx.fails, 0);
		/* Closed by us once the response ended, keep-alive or not. */
		rx_clear();
		srv_read_until(fd, NULL);
		close(fd);
	}
	/* Nor does a request without a header find one in the pool. */
	ck_assert_int_eq(get_open(0), 0);
	fd = srv_head();
	ck_assert_msg(strncmp(rx, "GET /x?y=1 ", 11) == 0, "%s", rx);
	close(fd);
}
END_TEST

START_TEST(hc_not_reused_after_connection_close)
{
	int fd;

	fd = get_answered("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
	TW_RUN_UNTIL(fx.ends == 1);
	/* The backend asked to close: our side closes, the next request connects anew. */
	expect_not_pooled(fd);
}
END_TEST

START_TEST(hc_idle_closed_by_backend_dropped)
{
	int fd = one_exchange(-1), fd2;

	/* The backend closes the idle connection: the pool notices and drops it. */
	close(fd);
	tw_run_ms(100);
	fd2 = get_empty_answer(0);	/* a new connection, not the dead one */
	ck_assert_int_eq(fx.fails, 0);
	close(fd2);
}
END_TEST

START_TEST(hc_dead_pooled_connection_is_stale)
{
	int fd = one_exchange(-1);
	struct linger lg = { 1, 0 };

	/* The backend resets the idle connection and the loop has not seen it yet. */
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
	get_open(0);
	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_STALE);
	ck_assert_int_eq(fx.heads, 0);
	/* The retry on a fresh connection works. */
	close(get_empty_answer(1));
}
END_TEST

START_TEST(hc_dead_pooled_fin_is_stale)
{
	int fd = one_exchange(-1);

	/* A plain close the loop has not seen: the write goes out, then EOF. */
	close(fd);
	get_open(0);
	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_STALE);
}
END_TEST

START_TEST(hc_new_connection_reset)
{
	get_open(0);
	close(srv_head());
	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_RESET);
}
END_TEST

START_TEST(hc_connect_refused)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int sfd = socket(AF_INET, SOCK_STREAM, 0);
	struct ustream *s;

	/* A port that was bound and closed: nobody listens there. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(sfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(sfd, (struct sockaddr *)&sin, &sl), 0);
	close(sfd);
	be.port = ntohs(sin.sin_port);
	make_req(get_text);
	errno = 0;
	s = xopen(0);
	if (s == NULL) {
		ck_assert_int_eq(errno, ECONNREFUSED);
	} else {
		xend(NULL);
		TW_RUN_UNTIL(fx.fails == 1);
		ck_assert_int_eq(fx.err, UPSTREAM_CONNECT);
		ck_assert_int_eq(fx.code, ECONNREFUSED);
		ck_assert_int_eq(fx.mores, 0);
	}
}
END_TEST

START_TEST(hc_connect_timeout)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int full = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c[4], i, n = 0;
	struct upstream_opts o = { 100, 0, NULL, NULL, 0, NULL };
	uint64_t t0;

	/* A listener whose accept queue is full: the kernel drops our SYNs. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(full, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(full, 0), 0);
	ck_assert_int_eq(getsockname(full, (struct sockaddr *)&sin, &sl), 0);
	for (i = 0; i < 4; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		(void)connect(c[i], (struct sockaddr *)&sin, sizeof(sin));
		n++;
	}
	tw_run_ms(50);
	be.port = ntohs(sin.sin_port);
	make_req(get_text);
	memset(&fx, 0, sizeof(fx));
	fx.room = 4096;
	in_ops = 1;
	fx.s = h1client_ops.open(&w, &be, &o, &reqh, &fx_events, &fx);
	ck_assert_ptr_nonnull(fx.s);
	ck_assert_int_eq(h1client_ops.connecting(fx.s), 1);
	in_ops = 0;
	t0 = util_now_ms();
	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_CONNECT);
	ck_assert_int_eq(fx.code, ETIMEDOUT);
	ck_assert_uint_ge(util_now_ms() - t0, 90);
	for (i = 0; i < n; i++)
		close(c[i]);
	close(full);
}
END_TEST

START_TEST(hc_chunked_request_body)
{
	struct msg_head *t = &reqh;
	int fd;

	make_req("POST /up HTTP/1.1\r\nHost: b.test\r\nTransfer-Encoding: chunked\r\n"
	    "TE: trailers\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0));
	fd = tw_accept(lfd);
	TW_RUN_UNTIL(fx.mores >= 1);	/* connected (or head written): room to send */
	ck_assert_int_eq(xsend("hello"), 0);
	ck_assert_int_eq(xsend("world!"), 0);
	ck_assert_int_eq(msg_add_n(t, "X-Sum", 5, "7", 1, 1), 0);
	ck_assert_int_eq(xend(t), 0);
	srv_read_until(fd, "\r\n0\r\nX-Sum: 7\r\n\r\n");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nTransfer-Encoding: chunked\r\n"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\nTE: trailers\r\n"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\nX-Sum: 7\r\n\r\n"));
	TW_RUN_UNTIL(fx.sents == 1);
	srv_write(fd, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_uint_eq(fx.status[0], 201);
	close(fd);
}
END_TEST

START_TEST(hc_length_request_body)
{
	int fd;

	make_req("PUT /f HTTP/1.1\r\nHost: b.test\r\nContent-Length: 9\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0));
	ck_assert_int_eq(xsend("123"), 0);	/* before the connect finished: buffered */
	ck_assert_int_eq(xsend("456789"), 0);
	ck_assert_int_eq(xend(NULL), 0);
	fd = tw_accept(lfd);
	srv_read_until(fd, "\r\n\r\n123456789");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nContent-Length: 9\r\n"));
	ck_assert_ptr_null(strstr(rx, "chunked"));
	TW_RUN_UNTIL(fx.sents == 1);
	close(fd);
}
END_TEST

START_TEST(hc_backpressure_holds_bytes)
{
	int fd;

	get_open(0);
	fx.room = 0;
	fd = srv_head();
	srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef");
	tw_run_ms(150);
	/* No room: nothing delivered, the bytes wait. */
	ck_assert_int_eq(fx.heads, 0);
	ck_assert_uint_eq(fx.body_len, 0);
	/* Room for the head (38 bytes) and two bytes of body. */
	fx.room = 40;
	fx.room_after_head = 2;
	xresume();
	ck_assert_int_eq(fx.heads, 0);	/* resume is an ops call: delivery comes from the loop */
	TW_RUN_UNTIL(fx.body_len == 2);
	ck_assert_int_eq(fx.heads, 1);
	tw_run_ms(50);
	ck_assert_uint_eq(fx.body_len, 2);
	ck_assert_int_eq(fx.ends, 0);
	fx.room = 4096;
	xresume();
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_uint_eq(fx.body_len, 6);
	ck_assert_int_eq(memcmp(fx.body, "abcdef", 6), 0);
	close(fd);
}
END_TEST

START_TEST(hc_request_room_and_more)
{
	static char big[8 * 1024];
	size_t room, total = 0;
	int fd, i;

	make_req("POST /up HTTP/1.1\r\nHost: b.test\r\nContent-Length: 262144\r\n\r\n");
	ck_assert_ptr_nonnull(xopen(0));
	fd = tw_accept(lfd);
	memset(big, 'q', sizeof(big));
	/* Fill the stream's buffer while the backend does not read (the kernel's first). */
	for (i = 0; i < 4000; i++) {
		in_ops = 1;
		room = h1client_ops.room(fx.s);
		in_ops = 0;
		if (room == 0)
			break;
		if (room > sizeof(big))
			room = sizeof(big);
		in_ops = 1;
		ck_assert_int_eq(h1client_ops.send(fx.s, big, room), 0);
		in_ops = 0;
		total += room;
		ck_assert_int_eq(ev_run_once(w.loop, 1), 0);
	}
	in_ops = 1;
	room = h1client_ops.room(fx.s);
	in_ops = 0;
	ck_assert_uint_lt(room, BUF_SIZE);
	ck_assert_uint_gt(total, BUF_SIZE);	/* the kernel took some too */
	/* The backend reads: bytes leave the buffer and more says so. */
	fx.mores = 0;
	rx_clear();
	{
		uint64_t dl = tw_deadline(3000);

		while (fx.mores == 0 && util_now_ms() < dl) {
			ssize_t n = recv(fd, rx, sizeof(rx), 0);

			(void)n;
			tw_turn();
		}
	}
	ck_assert_int_ge(fx.mores, 1);
	in_ops = 1;
	ck_assert_uint_gt(h1client_ops.room(fx.s), room);
	in_ops = 0;
	close(fd);
}
END_TEST

START_TEST(hc_upgrade_pipe)
{
	int fd;

	make_req("GET /ws HTTP/1.1\r\nHost: b.test\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\n\r\n");
	ck_assert_int_eq(reqh.upgrade, 1);
	ck_assert_ptr_nonnull(xopen(0));
	fx.keep_open = 1;
	xend(NULL);
	fd = tw_accept(lfd);
	srv_read_until(fd, "\r\n\r\n");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"));
	TW_RUN_UNTIL(fx.sents == 1);	/* the request head is out */
	srv_write(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\n\r\nfrom-backend");
	TW_RUN_UNTIL(fx.body_len == 12);
	ck_assert_int_eq(fx.heads, 1);
	ck_assert_uint_eq(fx.status[0], 101);
	ck_assert_int_eq(memcmp(fx.body, "from-backend", 12), 0);
	/* Raw bytes toward the backend: no chunk framing. */
	rx_clear();
	ck_assert_int_eq(xsend("from-client"), 0);
	srv_read_until(fd, "from-client");
	ck_assert_str_eq(rx, "from-client");
	/* The client half-closes: SHUT_WR toward the backend, then sent. */
	fx.sents = 0;
	ck_assert_int_eq(xend(NULL), 0);
	srv_read_until(fd, NULL);
	ck_assert_int_eq(rx_eof, 1);
	TW_RUN_UNTIL(fx.sents == 1);
	ck_assert_int_eq(fx.ends, 0);
	/* The backend may still talk, then half-closes: end with no head. */
	srv_write(fd, "bye");
	TW_RUN_UNTIL(fx.body_len == 15);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_int_eq(fx.end_null, 1);
	ck_assert_int_eq(fx.fails, 0);
	fx_close();
	/* A pipe never goes back to the pool. */
	get_new_connection();
	close(fd);
}
END_TEST

START_TEST(hc_bad_response_broken)
{
	expect_broken("HTTP/1.1 two hundred\r\n\r\n");
}
END_TEST

START_TEST(hc_unasked_101_broken)
{
	expect_broken("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n\r\n");
}
END_TEST

START_TEST(hc_cut_response_broken)
{
	int fd;

	fd = get_answered("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	TW_RUN_UNTIL(fx.body_len == 3);
	close(fd);
	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_BROKEN);
	ck_assert_int_eq(fx.ends, 0);
	/* Nothing went back to the pool. */
	get_new_connection();
}
END_TEST

START_TEST(hc_close_delimited_response)
{
	int fd;

	fd = get_answered("HTTP/1.1 200 OK\r\n\r\nuntil-close");
	TW_RUN_UNTIL(fx.body_len == 11);
	ck_assert_int_eq(fx.ends, 0);
	close(fd);
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_int_eq(fx.fails, 0);
	ck_assert_int_eq(memcmp(fx.body, "until-close", 11), 0);
	get_new_connection();
}
END_TEST

START_TEST(hc_close_before_response_not_pooled)
{
	int fd;

	/* The exchange gives up mid-response (a client abort): the connection is not reused. */
	fd = get_answered("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	TW_RUN_UNTIL(fx.body_len == 3);
	fx_close();
	expect_not_pooled(fd);
}
END_TEST

/* --- proto https: TLS after the connect, inside the connect phase */

struct tls_srv {
	EVP_PKEY *key;
	X509 *cert;
	char *pem;		/* the certificate, as the route's CA */
	SSL_CTX *ctx;
	struct snap *snap;
};

static void
tls_srv_init(struct tls_srv *t, int trusted)
{
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca;
	BIO *b = BIO_new(BIO_s_mem());
	size_t len;

	t->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	t->cert = tw_x509(t->key, "backend", "IP:127.0.0.1", 30);
	ca = trusted ? t->cert : tw_x509(other, "someone else", "IP:127.0.0.1", 30);
	ck_assert_int_eq(PEM_write_bio_X509(b, ca), 1);
	t->pem = tw_bio_take(b, &len);
	if (!trusted)
		X509_free(ca);
	EVP_PKEY_free(other);
	t->ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate(t->ctx, t->cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(t->ctx, t->key), 1);
	{
		struct snapb_route r = { .id = 3, .name = "tls.example.com", .be_first = 0,
		    .be_count = 1, .proto = SNAP_PROTO_HTTPS, .backend_ca = t->pem };
		struct snapb_host h = { 1, "tls.example.com", 0, SNAP_HOST_EXACT, NULL };
		struct snapb_backend sb = { be.id, AF_INET, be.port, { 127, 0, 0, 1 }, 0, NULL };
		struct snapb_input in = { .routes = &r, .nroutes = 1, .hosts = &h, .nhosts = 1,
		    .backends = &sb, .nbackends = 1, .default_route = SNAP_NONE, .generation = 1 };

		t->snap = tw_snap(&in);
	}
}

static void
tls_srv_free(struct tls_srv *t)
{
	snap_unref(t->snap);
	SSL_CTX_free(t->ctx);
	X509_free(t->cert);
	EVP_PKEY_free(t->key);
	free(t->pem);
}

static struct ustream *
tls_open(struct tls_srv *t)
{
	struct upstream_opts o = { 2000, 0, t->snap, snap_route_at(t->snap, 0), 0, NULL };

	make_req(get_text);
	memset(&fx, 0, sizeof(fx));
	fx.room = 32 * 1024;
	in_ops = 1;
	fx.s = h1client_ops.open(&w, snap_backend_at(t->snap, 0), &o, &reqh, &fx_events, &fx);
	in_ops = 0;
	return fx.s;
}

/* The backend's side of a handshake, turning the client's loop meanwhile; 1 when done. */
static int
tls_srv_accept(SSL *ssl)
{
	uint64_t dl = tw_deadline(3000);
	int r;

	while ((r = SSL_accept(ssl)) != 1 && util_now_ms() < dl) {
		int e = SSL_get_error(ssl, r);

		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		tw_turn();
	}
	ERR_clear_error();
	return r == 1;
}

/* The backend's side: reads a request head into got, turning the client's loop meanwhile. */
static void
tls_srv_read_head(SSL *ssl, char *got, size_t size)
{
	uint64_t dl = tw_deadline(3000);
	size_t n = 0, k;

	got[0] = '\0';
	while (strstr(got, "\r\n\r\n") == NULL && n < size - 1) {
		ck_assert_msg(util_now_ms() < dl, "no request head: %s", got);
		if (SSL_read_ex(ssl, got + n, size - 1 - n, &k) == 1)
			n += k;
		else
			tw_turn();
		got[n] = '\0';
	}
	ERR_clear_error();
}

START_TEST(hc_tls_request_and_reuse)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct tls_srv t;
	char got[4096];
	SSL *ssl;
	int fd;

	tls_srv_init(&t, 1);
	ck_assert_ptr_nonnull(tls_open(&t));
	in_ops = 1;
	ck_assert_int_eq(h1client_ops.connecting(fx.s), 1);
	in_ops = 0;
	ck_assert_int_eq(xend(NULL), 0);
	fd = tw_accept(lfd);
	ssl = SSL_new(t.ctx);
	SSL_set_fd(ssl, fd);
	ck_assert_int_eq(tls_srv_accept(ssl), 1);
	/* The handshake ended the connect phase: the request flows. */
	TW_RUN_UNTIL(fx.mores >= 1);
	tls_srv_read_head(ssl, got, sizeof(got));
	ck_assert_msg(strncmp(got, "GET /x?y=1 HTTP/1.1\r\n", 21) == 0, "%s", got);
	ck_assert_int_eq(SSL_write(ssl, resp, sizeof(resp) - 1), (int)sizeof(resp) - 1);
	TW_RUN_UNTIL(fx.ends == 1);
	ck_assert_uint_eq(fx.status[0], 200);
	ck_assert_uint_eq(fx.body_len, 2);
	/* Back in the pool: the next request goes on the same TLS connection. */
	ck_assert_ptr_nonnull(tls_open(&t));
	ck_assert_int_eq(xend(NULL), 0);
	tls_srv_read_head(ssl, got, sizeof(got));
	ck_assert_int_eq(tw_try_accept(lfd), -1);
	ck_assert_int_eq(SSL_write(ssl, resp, sizeof(resp) - 1), (int)sizeof(resp) - 1);
	TW_RUN_UNTIL(fx.ends == 1);
	/* A plain request to the same backend never takes the TLS connection. */
	ck_assert_int_eq(get_open(0), 0);
	close(srv_head());
	fx_close();
	SSL_free(ssl);
	close(fd);
	tls_srv_free(&t);
}
END_TEST

START_TEST(hc_tls_untrusted_is_connect_failure)
{
	struct tls_srv t;
	SSL *ssl;
	int fd;

	tls_srv_init(&t, 0);
	ck_assert_ptr_nonnull(tls_open(&t));
	fd = tw_accept(lfd);
	ssl = SSL_new(t.ctx);
	SSL_set_fd(ssl, fd);
	(void)tls_srv_accept(ssl);
	TW_RUN_UNTIL(fx.fails == 1);
	ck_assert_int_eq(fx.err, UPSTREAM_CONNECT);
	ck_assert_int_eq(fx.code, EPROTO);
	ck_assert_int_eq(fx.mores, 0);
	SSL_free(ssl);
	close(fd);
	tls_srv_free(&t);
}
END_TEST

Suite *
suite_h1client(void)
{
	Suite *s = suite_create("h1client");
	TCase *tc = tcase_create("h1client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, hc_request_and_response);
	tcase_add_test(tc, hc_chunked_response_with_trailers);
	tcase_add_test(tc, hc_interim_then_final);
	tcase_add_test(tc, hc_keepalive_reuses_connection);
	tcase_add_test(tc, hc_proxy_header_first_never_pooled);
	tcase_add_test(tc, hc_not_reused_after_connection_close);
	tcase_add_test(tc, hc_idle_closed_by_backend_dropped);
	tcase_add_test(tc, hc_dead_pooled_connection_is_stale);
	tcase_add_test(tc, hc_dead_pooled_fin_is_stale);
	tcase_add_test(tc, hc_new_connection_reset);
	tcase_add_test(tc, hc_connect_refused);
	tcase_add_test(tc, hc_connect_timeout);
	tcase_add_test(tc, hc_chunked_request_body);
	tcase_add_test(tc, hc_length_request_body);
	tcase_add_test(tc, hc_backpressure_holds_bytes);
	tcase_add_test(tc, hc_request_room_and_more);
	tcase_add_test(tc, hc_upgrade_pipe);
	tcase_add_test(tc, hc_bad_response_broken);
	tcase_add_test(tc, hc_unasked_101_broken);
	tcase_add_test(tc, hc_cut_response_broken);
	tcase_add_test(tc, hc_close_delimited_response);
	tcase_add_test(tc, hc_close_before_response_not_pooled);
	tcase_add_test(tc, hc_tls_request_and_reuse);
	tcase_add_test(tc, hc_tls_untrusted_is_connect_failure);
	suite_add_tcase(s, tc);
	return s;
}
