/*
 * Unit tests for worker/h1server.c and worker/conn.c, the HTTP/1.1 session
 * on a client connection: the worker is set up by hand with no snapshot (so
 * every request gets the welcome page, 404), the connection is made with
 * conn_new over a socketpair, and the test plays the client on the other
 * end, turning the worker's event loop until an answer or a deadline.
 *
 * Covered: the welcome page with keep-alive, pipelined requests answered in
 * order, malformed requests (400, then the connection closes), a missing
 * Host, a huge header (431), HTTP/1.0 with and without keep-alive, HEAD, the
 * header timeout (408), the keep-alive idle timeout, a client that closes,
 * an unread request body (answered, then the lingering close),
 * conn_close_idle (and in a hand-over's drain), w->nconns and w->requests,
 * and the session freed while the connection idles (made again by its next bytes).
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

#include "master/snapbuild.h"
#include "share/evloop.h"
#include "share/msg.h"
#include "share/snap.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/upstream.h"

static struct worker w;
static struct listener ls;

#define MAX_CLIENTS 4

static int cl[MAX_CLIENTS];
static int ncl;

/* A new client connection; returns the client's end. */
static int
client_new(void)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	int sv[2];

	ck_assert_int_lt(ncl, MAX_CLIENTS);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	peer.sin_addr.s_addr = htonl(0xc0000205);	/* 192.0.2.5 */
	ck_assert_int_eq(conn_new(&w, sv[0], &ls, (struct sockaddr *)&peer), 0);
	cl[ncl++] = sv[1];
	return sv[1];
}

static void
cl_write(int fd, const char *p, size_t len)
{
	size_t done = 0;
	uint64_t dl = tw_deadline(3000);

	while (done < len) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);

		if (n > 0)
			done += (size_t)n;
		else
			ck_assert_msg(errno == EAGAIN, "send: %s", strerror(errno));
		ck_assert(util_now_ms() < dl);
		tw_turn();
	}
}

static void
cl_send(int fd, const char *s)
{
	cl_write(fd, s, strlen(s));
}

static char rx[128 * 1024];
static size_t rx_len;
static int rx_eof;

static void
rx_clear(void)
{
	rx_len = 0;
	rx[0] = '\0';
	rx_eof = 0;
}

/* Reads one batch; 1 when something changed. */
static int
cl_pull(int fd)
{
	ssize_t n = recv(fd, rx + rx_len, sizeof(rx) - 1 - rx_len, 0);

	if (n > 0) {
		rx_len += (size_t)n;
		rx[rx_len] = '\0';
		return 1;
	}
	if (n == 0 || errno == ECONNRESET) {
		rx_eof = 1;
		return 1;
	}
	ck_assert_msg(errno == EAGAIN, "recv: %s", strerror(errno));
	return 0;
}

/* Reads until rx holds count occurrences of needle. */
static void
cl_read_n(int fd, const char *needle, int count)
{
	uint64_t dl = tw_deadline(3000);

	for (;;) {
		const char *p = rx;
		int found = 0;

		while (found < count && (p = strstr(p, needle)) != NULL) {
			found++;
			p += strlen(needle);
		}
		if (found == count)
			return;
		ck_assert_msg(!rx_eof, "EOF waiting for \"%s\" in \"%s\"", needle, rx);
		ck_assert_msg(util_now_ms() < dl, "timed out waiting for \"%s\" in \"%s\"", needle, rx);
		if (!cl_pull(fd))
			tw_turn();
	}
}

static void
cl_read_until(int fd, const char *needle)
{
	cl_read_n(fd, needle, 1);
}

/* Reads one whole response (head and Content-Length body) into rx. */
static void
cl_read_response(int fd, int head_request)
{
	const char *end, *clen;
	size_t need;
	uint64_t dl = tw_deadline(3000);

	cl_read_until(fd, "\r\n\r\n");
	end = strstr(rx, "\r\n\r\n") + 4;
	clen = strstr(rx, "\r\nContent-Length: ");
	ck_assert_ptr_nonnull(clen);
	need = (size_t)(end - rx) + (head_request ? 0 : strtoul(clen + 18, NULL, 10));
	while (rx_len < need) {
		ck_assert_msg(!rx_eof, "EOF within the body");
		ck_assert(util_now_ms() < dl);
		if (!cl_pull(fd))
			tw_turn();
	}
	ck_assert_uint_eq(rx_len, need);
}

static void
cl_read_eof(int fd)
{
	uint64_t dl = tw_deadline(3000);

	while (!rx_eof) {
		ck_assert_msg(util_now_ms() < dl, "the connection did not close: \"%s\"", rx);
		if (!cl_pull(fd))
			tw_turn();
	}
}

/*
 * After an answer that left request bytes unread the server lingers (its
 * write side shut, input drained for up to 2 s): the client closing its side
 * ends that at once.
 */
static void
cl_done(int fd)
{
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	TW_RUN_UNTIL(w.nconns == 0);
}

/* Nothing more comes for ms, and the connection stays open. */
static void
cl_quiet(int fd, int ms)
{
	size_t before = rx_len;

	tw_run_ms(ms);
	while (cl_pull(fd))
		;
	ck_assert_int_eq(rx_eof, 0);
	ck_assert_uint_eq(rx_len, before);
}

static int
starts(const char *p, const char *prefix)
{
	return strncmp(p, prefix, strlen(prefix)) == 0;
}

/* Sends req and reads one whole response (to a HEAD when head), which starts with prefix. */
static void
cl_ask(int fd, const char *req, int head, const char *prefix)
{
	cl_send(fd, req);
	cl_read_response(fd, head);
	ck_assert_msg(starts(rx, prefix), "%s", rx);
}

/* Sends req and reads until the connection closes; the answer starts with prefix. */
static void
cl_ask_eof(int fd, const char *req, const char *prefix)
{
	cl_send(fd, req);
	cl_read_eof(fd);
	ck_assert_msg(starts(rx, prefix), "%s", rx);
}

/* --- fixture */

static void
setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	tw_worker_init(&w);
	w.cfg.max_conns = 16;
	w.cfg.header_timeout_ms = 5000;
	w.cfg.keepalive_timeout_ms = 5000;
	w.cfg.body_timeout_ms = 5000;
	w.cfg.connect_timeout_ms = 1000;
	w.cfg.response_timeout_ms = 1000;
	w.cfg.idle_timeout_ms = 1000;
	w.cfg.upgrade_timeout_ms = 1000;
	w.cfg.access_log = 0;
	w.cfg.access_log_sample = 1;
	w.snap = NULL;		/* no snapshot yet: the welcome page */
	ck_assert_int_eq(h1client_pools_init(&w), 0);
	memset(&ls, 0, sizeof(ls));
	ls.w = &w;
	ls.fd = -1;
	ls.id = 1;
	ls.kind = LISTENER_HTTP;
	ncl = 0;
	rx_clear();
}

static void
teardown(void)
{
	int i;

	conn_close_all(&w);
	ck_assert_uint_eq(w.nconns, 0);
	ev_run_once(w.loop, 0);		/* the deferred frees */
	h1client_pools_free(&w);
	buf_pool_clear(&w.bufs);
	ev_loop_free(w.loop);
	for (i = 0; i < ncl; i++)
		close(cl[i]);
}

/* --- tests */

START_TEST(hs_welcome_keepalive)
{
	int fd = client_new();

	ck_assert_uint_eq(w.nconns, 1);
	ck_assert_ptr_nonnull(w.conns);
	cl_ask(fd, "GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n", 0, "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "haloyd is running"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\nContent-Type: text/html"));
	ck_assert_ptr_null(strstr(rx, "Connection: close"));
	ck_assert_uint_eq(w.requests, 1);
	/* The same connection takes the next request. */
	rx_clear();
	cl_ask(fd, "GET /other HTTP/1.1\r\nHost: www.example.test\r\n\r\n", 0, "HTTP/1.1 404 ");
	ck_assert_uint_eq(w.requests, 2);
	cl_quiet(fd, 50);
	ck_assert_uint_eq(w.nconns, 1);
}
END_TEST

START_TEST(hs_pipelined_in_order)
{
	int fd = client_new();
	size_t first;
	const char *second, *third;

	/* Three requests in one write: GET, HEAD (no body), then no Host (400, close). */
	cl_ask_eof(fd, "GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n"
	    "HEAD /2 HTTP/1.1\r\nHost: a.test\r\n\r\n"
	    "GET /3 HTTP/1.1\r\n\r\n",
	    "HTTP/1.1 404 ");
	/* The first answer carries its body; the HEAD answer follows it at once. */
	second = strstr(rx, "</html>\n");
	ck_assert_ptr_nonnull(second);
	second += strlen("</html>\n");
	first = (size_t)(second - rx);
	ck_assert_uint_gt(first, 0);
	ck_assert_msg(starts(second, "HTTP/1.1 404 "), "%s", second);
	third = strstr(second, "\r\n\r\n");
	ck_assert_ptr_nonnull(third);
	third += 4;
	ck_assert_msg(starts(third, "HTTP/1.1 400 "), "%s", third);
	ck_assert_ptr_nonnull(strstr(third, "\r\nConnection: close\r\n"));
	ck_assert_uint_eq(w.requests, 3);
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_malformed_400_closes)
{
	int fd = client_new();

	cl_ask_eof(fd, "GET / HTTP/1.1\r\nHost: a.test\r\nBad Header Line\r\n\r\n",
	    "HTTP/1.1 400 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	ck_assert_uint_eq(w.nconns, 1);	/* lingering */
	cl_done(fd);
	ck_assert_ptr_null(w.conns);
}
END_TEST

START_TEST(hs_garbage_400_closes)
{
	int fd = client_new();

	cl_ask_eof(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 ");
	ck_assert_uint_eq(w.nconns, 1);	/* lingering */
	cl_done(fd);
}
END_TEST

START_TEST(hs_huge_header_431)
{
	static char req[24 * 1024];
	int fd = client_new();
	size_t n;

	n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ");
	memset(req + n, 'a', 20000);
	n += 20000;
	memcpy(req + n, "\r\n\r\n", 4);
	n += 4;
	cl_write(fd, req, n);
	cl_read_eof(fd);
	ck_assert_msg(starts(rx, "HTTP/1.1 431 "), "%s", rx);
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	ck_assert_uint_eq(w.nconns, 1);	/* lingering */
	cl_done(fd);
}
END_TEST

START_TEST(hs_long_target_414)
{
	static char req[12 * 1024];
	int fd = client_new();
	size_t n;

	memcpy(req, "GET /", 5);
	memset(req + 5, 'p', 9000);
	n = 5 + 9000;
	n += (size_t)snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\nHost: a.test\r\n\r\n");
	cl_write(fd, req, n);
	cl_read_eof(fd);
	ck_assert_msg(starts(rx, "HTTP/1.1 414 "), "%s", rx);
}
END_TEST

START_TEST(hs_missing_host_400)
{
	int fd = client_new();

	cl_ask_eof(fd, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
}
END_TEST

START_TEST(hs_http10_closes)
{
	int fd = client_new();

	/* HTTP/1.0 without keep-alive (and without Host: allowed): answered, then closed. */
	cl_ask_eof(fd, "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	ck_assert_ptr_nonnull(strstr(rx, "haloyd is running"));
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_http10_keepalive)
{
	int fd = client_new();

	cl_ask(fd, "GET / HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n", 0,
	    "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: keep-alive\r\n"));
	cl_quiet(fd, 50);
	rx_clear();
	cl_ask_eof(fd, "GET / HTTP/1.0\r\nHost: a.test\r\n\r\n", "HTTP/1.1 404 ");
}
END_TEST

START_TEST(hs_http11_connection_close)
{
	int fd = client_new();

	cl_ask_eof(fd, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
	    "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
}
END_TEST

START_TEST(hs_head_has_no_body)
{
	int fd = client_new();

	cl_ask(fd, "HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n", 1, "HTTP/1.1 404 ");
	ck_assert_ptr_null(strstr(rx, "<html>"));
	cl_quiet(fd, 50);
}
END_TEST

START_TEST(hs_header_timeout_408)
{
	int fd;
	uint64_t t0;

	w.cfg.header_timeout_ms = 100;
	fd = client_new();
	cl_send(fd, "GET / HTTP/1.1\r\nHo");
	t0 = util_now_ms();
	cl_read_eof(fd);
	ck_assert_uint_ge(util_now_ms() - t0, 80);
	ck_assert_msg(starts(rx, "HTTP/1.1 408 "), "%s", rx);
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	ck_assert_uint_eq(w.nconns, 1);	/* lingering */
	cl_done(fd);
}
END_TEST

START_TEST(hs_keepalive_idle_closes)
{
	int fd;
	uint64_t t0;

	w.cfg.keepalive_timeout_ms = 150;
	fd = client_new();
	cl_send(fd, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
	cl_read_response(fd, 0);
	t0 = util_now_ms();
	rx_clear();
	cl_read_eof(fd);
	ck_assert_uint_ge(util_now_ms() - t0, 120);
	ck_assert_uint_eq(rx_len, 0);	/* closed without a word */
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_new_connection_idle_closes)
{
	int fd;

	w.cfg.keepalive_timeout_ms = 100;
	fd = client_new();
	cl_read_eof(fd);
	ck_assert_uint_eq(rx_len, 0);
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_client_close)
{
	int fd = client_new();

	cl_send(fd, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
	cl_read_response(fd, 0);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	rx_clear();
	cl_read_eof(fd);
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_half_request_then_close)
{
	int fd = client_new();

	/* The client sends a partial head and goes away: closed without an answer. */
	cl_send(fd, "GET / HTTP/1.1\r\nHost: a");
	tw_run_ms(30);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	cl_read_eof(fd);
	ck_assert_uint_eq(rx_len, 0);
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_unread_body_lingers)
{
	int fd = client_new();

	/* A local answer to a request whose body is not read: the answer, then a close. */
	cl_send(fd, "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\nsome");
	cl_read_until(fd, "</html>\n");
	ck_assert_msg(starts(rx, "HTTP/1.1 404 "), "%s", rx);
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	/* Lingering: our write side is shut (EOF for the client) while the rest is drained. */
	cl_read_eof(fd);
	ck_assert_uint_eq(w.nconns, 1);
	cl_send(fd, "more body bytes");
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

/*
 * A stop closes at once only the idle connections that carried a request (a
 * client retries those); a fresh one's first request may be on the wire, so
 * it is answered, with Connection: close, until the grace is over
 * (fresh_too), which closes the silent ones.
 */
START_TEST(hs_close_idle)
{
	int idle = client_new(), busy = client_new(), fresh = client_new(), silent = client_new();

	ck_assert_uint_eq(w.nconns, 4);
	cl_send(idle, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
	cl_read_response(idle, 0);
	cl_send(busy, "GET / HTTP/1.1\r\nHost: a");	/* a request in progress */
	tw_run_ms(30);
	w.stopping = 1;
	conn_close_idle(&w, 0);
	ck_assert_uint_eq(w.nconns, 3);
	rx_clear();
	cl_read_eof(idle);
	rx_clear();
	cl_ask_eof(fresh, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	conn_close_idle(&w, 1);
	rx_clear();
	cl_read_eof(silent);
	/* The busy one finishes its request and is answered, then closed. */
	rx_clear();
	cl_ask_eof(busy, ".test\r\n\r\n", "HTTP/1.1 404 ");
	TW_RUN_UNTIL(w.nconns == 0);
	w.stopping = 0;
}
END_TEST

/* A hand-over's drain closes no idle connection: each next request is answered, then closed. */
START_TEST(hs_close_idle_handover_keeps_them)
{
	int idle = client_new(), fresh = client_new();

	ck_assert_uint_eq(w.nconns, 2);
	cl_send(idle, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
	cl_read_response(idle, 0);
	tw_run_ms(30);
	w.stopping = 1;
	w.stop_keep_fresh = 1;
	conn_close_idle(&w, 1);
	ck_assert_uint_eq(w.nconns, 2);
	rx_clear();
	cl_ask_eof(idle, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	rx_clear();
	cl_ask_eof(fresh, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	TW_RUN_UNTIL(w.nconns == 0);
	w.stopping = 0;
	w.stop_keep_fresh = 0;
}
END_TEST

START_TEST(hs_stopping_closes_after_answer)
{
	int fd = client_new();

	w.stopping = 1;
	cl_ask_eof(fd, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "\r\nConnection: close\r\n"));
	TW_RUN_UNTIL(w.nconns == 0);
	w.stopping = 0;
}
END_TEST

/*
 * An idle keep-alive connection holds no session (c->sess NULL, the session
 * kind kept): the first byte of the next request makes one, its answer
 * frees it, and that many times over; a partial head keeps it, and the
 * keep-alive timeout still closes a parked one.
 */
START_TEST(hs_idle_session_parked)
{
	int fd, i;
	struct conn *c;

	w.cfg.keepalive_timeout_ms = 300;
	fd = client_new();
	c = w.conns;
	for (i = 0; i < 50; i++) {
		rx_clear();
		cl_send(fd, "GET / HT");
		tw_run_ms(2);
		ck_assert_ptr_nonnull(c->sess);		/* made on the first bytes */
		cl_ask(fd, "TP/1.1\r\nHost: a.test\r\n\r\n", 0, "HTTP/1.1 404 ");
		TW_RUN_UNTIL(c->sess == NULL);		/* freed once the answer is out */
		ck_assert_ptr_eq(c->sops, &h1server_ops);
		ck_assert_ptr_null(c->in.data);
		ck_assert_ptr_null(c->out.data);
	}
	ck_assert_uint_eq(w.requests, 50);
	ck_assert_uint_eq(w.nconns, 1);
	/* Parked, it is idle for a graceful stop, and its keep-alive time still runs out. */
	ck_assert_int_eq(c->sops->idle(c), 1);
	rx_clear();
	cl_read_eof(fd);
	ck_assert_uint_eq(rx_len, 0);
	TW_RUN_UNTIL(w.nconns == 0);
}
END_TEST

START_TEST(hs_many_requests_one_write_byte_by_byte)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
	int fd = client_new();
	size_t i;

	/* The head arrives one byte per loop turn. */
	for (i = 0; i < sizeof(req) - 1; i++) {
		cl_write(fd, req + i, 1);
		ck_assert_uint_eq(rx_len, 0);
	}
	cl_read_response(fd, 0);
	ck_assert_msg(starts(rx, "HTTP/1.1 404 "), "%s", rx);
	/* Then ten requests at once: ten answers, in order, and the connection stays. */
	rx_clear();
	for (i = 0; i < 10; i++)
		cl_send(fd, req);
	cl_read_n(fd, "</html>\n", 10);
	cl_quiet(fd, 30);
	ck_assert_uint_eq(w.requests, 11);
}
END_TEST

/* --- with a snapshot: an empty one, then a route to a backend on loopback */

static int blfd = -1;

static void
install_snap(int nroutes, uint16_t port)
{
	static const struct snapb_route routes[] = {
		{ .id = 1, .name = "app.test", .be_first = 0, .be_count = 1 },
	};
	static const struct snapb_host hosts[] = {
		{ .id = 2, .name = "app.test", .route = 0, .kind = SNAP_HOST_EXACT, NULL },
	};
	struct snapb_backend backends[] = { { 3, AF_INET, port, { 127, 0, 0, 1 }, 0, NULL } };
	struct snapb_input in = {
		.routes = routes, .nroutes = (uint32_t)nroutes, .hosts = hosts,
		.nhosts = (uint32_t)nroutes, .backends = backends, .nbackends = (uint32_t)nroutes,
		.default_route = SNAP_NONE, .generation = 1,
	};

	w.snap = tw_snap(&in);
}

/* A listening backend on 127.0.0.1; its port. */
static uint16_t
backend_listen(void)
{
	uint16_t port;

	blfd = tw_listen(SOCK_NONBLOCK, 4, &port);
	return port;
}

static void
snap_teardown(void)
{
	teardown();
	if (w.snap != NULL)
		snap_unref(w.snap);
	w.snap = NULL;
	if (blfd != -1)
		close(blfd);
	blfd = -1;
}

START_TEST(hs_empty_snapshot_welcome)
{
	int fd;

	install_snap(0, 0);
	fd = client_new();
	cl_ask(fd, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", 0, "HTTP/1.1 404 ");
	ck_assert_ptr_nonnull(strstr(rx, "haloyd is running"));
}
END_TEST

START_TEST(hs_proxied_through_exchange)
{
	static char brx[8192];
	size_t blen = 0;
	uint64_t dl;
	int fd, bfd;

	install_snap(1, backend_listen());
	fd = client_new();
	/* A host no route has: the status page, not the welcome page. */
	cl_ask(fd, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n", 0, "HTTP/1.1 404 ");
	ck_assert_ptr_null(strstr(rx, "haloyd is running"));
	/* The route's backend gets the request, forwarded. */
	rx_clear();
	cl_send(fd, "GET /p HTTP/1.1\r\nHost: app.test\r\n\r\n");
	bfd = tw_accept(blfd);
	dl = tw_deadline(3000);
	while (strstr(brx, "\r\n\r\n") == NULL) {
		ssize_t n = recv(bfd, brx + blen, sizeof(brx) - 1 - blen, 0);

		if (n > 0) {
			blen += (size_t)n;
			brx[blen] = '\0';
		} else
			tw_turn();
		ck_assert(util_now_ms() < dl);
	}
	ck_assert_msg(starts(brx, "GET /p HTTP/1.1\r\n"), "%s", brx);
	ck_assert_ptr_nonnull(strstr(brx, "\r\nX-Forwarded-For: 192.0.2.5\r\n"));
	ck_assert_ptr_nonnull(strstr(brx, "\r\nX-Forwarded-Host: app.test\r\n"));
	/* A chunked answer with a trailer goes to the HTTP/1.1 client chunked, trailer kept. */
	{
		static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		    "Keep-Alive: timeout=3\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";

		ck_assert_int_eq(send(bfd, resp, sizeof(resp) - 1, 0), (ssize_t)sizeof(resp) - 1);
	}
	cl_read_until(fd, "\r\n0\r\nX-T: 1\r\n\r\n");
	ck_assert_msg(starts(rx, "HTTP/1.1 200 OK\r\n"), "%s", rx);
	ck_assert_ptr_nonnull(strstr(rx, "\r\nTransfer-Encoding: chunked\r\n"));
	ck_assert_ptr_null(strstr(rx, "Keep-Alive"));
	ck_assert_ptr_nonnull(strstr(rx, "\r\n\r\n5\r\nhello\r\n0\r\n"));
	cl_quiet(fd, 30);
	ck_assert_uint_eq(w.nconns, 1);
	close(bfd);
}
END_TEST

START_TEST(hs_proxied_backend_refused_502)
{
	int fd;
	uint16_t port = backend_listen();

	close(blfd);		/* nobody listens there any more */
	blfd = -1;
	install_snap(1, port);
	fd = client_new();
	cl_ask(fd, "GET /p HTTP/1.1\r\nHost: app.test\r\n\r\n", 0, "HTTP/1.1 502 ");
	cl_quiet(fd, 30);
}
END_TEST

Suite *
suite_h1server(void)
{
	Suite *s = suite_create("h1server");
	TCase *tc = tcase_create("h1server");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, hs_welcome_keepalive);
	tcase_add_test(tc, hs_pipelined_in_order);
	tcase_add_test(tc, hs_malformed_400_closes);
	tcase_add_test(tc, hs_garbage_400_closes);
	tcase_add_test(tc, hs_huge_header_431);
	tcase_add_test(tc, hs_long_target_414);
	tcase_add_test(tc, hs_missing_host_400);
	tcase_add_test(tc, hs_http10_closes);
	tcase_add_test(tc, hs_http10_keepalive);
	tcase_add_test(tc, hs_http11_connection_close);
	tcase_add_test(tc, hs_head_has_no_body);
	tcase_add_test(tc, hs_header_timeout_408);
	tcase_add_test(tc, hs_keepalive_idle_closes);
	tcase_add_test(tc, hs_new_connection_idle_closes);
	tcase_add_test(tc, hs_client_close);
	tcase_add_test(tc, hs_half_request_then_close);
	tcase_add_test(tc, hs_unread_body_lingers);
	tcase_add_test(tc, hs_close_idle);
	tcase_add_test(tc, hs_stopping_closes_after_answer);
	tcase_add_test(tc, hs_close_idle_handover_keeps_them);
	tcase_add_test(tc, hs_many_requests_one_write_byte_by_byte);
	tcase_add_test(tc, hs_idle_session_parked);
	suite_add_tcase(s, tc);

	tc = tcase_create("h1server_routes");
	tcase_add_checked_fixture(tc, setup, snap_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, hs_empty_snapshot_welcome);
	tcase_add_test(tc, hs_proxied_through_exchange);
	tcase_add_test(tc, hs_proxied_backend_refused_502);
	suite_add_tcase(s, tc);
	return s;
}
