/*
 * Unit tests for worker/h2server.c (and the session choice in worker/conn.c):
 * the worker is set up by hand with no snapshot, so every request gets the
 * welcome page (404); the connection is made with conn_new over a
 * socketpair, and the test is an nghttp2 client on the other end, turning
 * the worker's loop until its streams close or a deadline.
 *
 * Covered: the preface picks HTTP/2 (and with http2 off, HTTP/1.1 answers
 * it 400), a GET answered with :status, content-length and the page, a
 * second like answer's fields sent as HPACK indexes, 100 concurrent
 * streams, a request without :authority (400), the frame-flood bound
 * (GOAWAY ENHANCE_YOUR_CALM) and the resets we send counted in it
 * (streams refused past the limit), the idle GOAWAY after the keep-alive
 * time (counted from the last stream's close), conn_close_idle, and the
 * counts in struct worker.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/conn.h"
#include "worker/context.h"
#include "worker/upstream.h"

static struct worker w;
static struct listener ls;

/* The test's client: one nghttp2 session on the client end of a socketpair. */
struct cli {
	int fd;
	nghttp2_session *ng;
	int status[512];		/* :status by stream id / 2 */
	size_t body[512];		/* DATA bytes by stream id / 2 */
	long clen[512];			/* content-length by stream id / 2 */
	size_t hlen[512];		/* the response HEADERS frame's length by stream id / 2 */
	int nfields[512];		/* response fields by stream id / 2 */
	int closed;			/* streams closed */
	int goaway;			/* GOAWAY seen */
	uint32_t goaway_code;
	int eof;
};

static struct cli cli;
static uint32_t cli_peer_max;

static ssize_t
cli_send(nghttp2_session *ng, const uint8_t *p, size_t n, int flags, void *arg)
{
	struct cli *c = arg;
	ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

	(void)ng;
	(void)flags;
	if (k == -1 && errno == EAGAIN)
		return NGHTTP2_ERR_WOULDBLOCK;
	return k == -1 ? NGHTTP2_ERR_CALLBACK_FAILURE : k;
}

static int
cli_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct cli *c = arg;

	(void)ng;
	(void)flags;
	if (nlen == 7 && memcmp(name, ":status", 7) == 0 && f->hd.stream_id / 2 < 512)
		c->status[f->hd.stream_id / 2] = atoi((const char *)value);
	if (nlen == 14 && memcmp(name, "content-length", 14) == 0 && f->hd.stream_id / 2 < 512)
		c->clen[f->hd.stream_id / 2] = atol((const char *)value);
	if (f->hd.stream_id / 2 < 512)
		c->nfields[f->hd.stream_id / 2]++;
	(void)vlen;
	return 0;
}

static int
cli_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *p, size_t n, void *arg)
{
	struct cli *c = arg;

	(void)ng;
	(void)flags;
	(void)p;
	if (id / 2 < 512)
		c->body[id / 2] += n;
	return 0;
}

static int
cli_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct cli *c = arg;

	(void)ng;
	(void)id;
	(void)code;
	c->closed++;
	return 0;
}

static int
cli_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct cli *c = arg;

	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		c->goaway = 1;
		c->goaway_code = f->goaway.error_code;
	}
	if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id / 2 < 512)
		c->hlen[f->hd.stream_id / 2] = f->hd.length;
	return 0;
}

/* A client connection to the worker; prior knowledge (the preface goes first). */
static void
cli_open(void)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	nghttp2_session_callbacks *cb;
	int sv[2];

	memset(&cli, 0, sizeof(cli));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	peer.sin_addr.s_addr = htonl(0xc0000205);
	ck_assert_int_eq(conn_new(&w, sv[0], &ls, (struct sockaddr *)&peer), 0);
	cli.fd = sv[1];
	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, cli_send);
	nghttp2_session_callbacks_set_on_header_callback(cb, cli_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cli_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, cli_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cli_frame);
	if (cli_peer_max != 0) {	/* streams it opens before it has read our SETTINGS */
		nghttp2_option *opt;

		ck_assert_int_eq(nghttp2_option_new(&opt), 0);
		nghttp2_option_set_peer_max_concurrent_streams(opt, cli_peer_max);
		ck_assert_int_eq(nghttp2_session_client_new2(&cli.ng, cb, &cli, opt), 0);
		nghttp2_option_del(opt);
	} else
		ck_assert_int_eq(nghttp2_session_client_new(&cli.ng, cb, &cli), 0);
	nghttp2_session_callbacks_del(cb);
	ck_assert_int_eq(nghttp2_submit_settings(cli.ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void
cli_free(void)
{
	if (cli.ng != NULL)
		nghttp2_session_del(cli.ng);
	if (cli.fd > 0)
		close(cli.fd);
	cli.ng = NULL;
	cli.fd = -1;
}

/* One round: our frames out, the worker's turn, its frames in. */
static void
cli_turn(void)
{
	uint8_t buf[65536];
	ssize_t n;

	(void)nghttp2_session_send(cli.ng);
	tw_turn();
	while ((n = recv(cli.fd, buf, sizeof(buf), 0)) > 0)
		ck_assert_int_ge(nghttp2_session_mem_recv(cli.ng, buf, (size_t)n), 0);
	if (n == 0 || (n == -1 && errno != EAGAIN))
		cli.eof = 1;
}

/*
 * Everything the client has queued, written before it reads a byte: it keeps
 * the concurrency it assumed until it has read our SETTINGS.
 */
static void
cli_send_unread(void)
{
	const uint8_t *p;
	ssize_t n, k;
	uint64_t dl = tw_deadline(3000);

	while ((n = nghttp2_session_mem_send(cli.ng, &p)) > 0)
		while (n > 0 && util_now_ms() < dl) {
			if ((k = send(cli.fd, p, (size_t)n, MSG_NOSIGNAL)) > 0) {
				p += k;
				n -= k;
			} else if (errno == EAGAIN)
				tw_turn();	/* the worker reads on */
			else
				return;		/* it closed the connection: what it sent is read next */
		}
	ck_assert_int_eq(n, 0);
}

#define CLI_UNTIL(cond) do {							\
	uint64_t dl_ = tw_deadline(3000);					\
	while (!(cond) && util_now_ms() < dl_)					\
		cli_turn();							\
	ck_assert_msg((cond), "timed out waiting for " #cond);			\
} while (0)

static int32_t
cli_get(const char *authority, const char *path)
{
	nghttp2_nv nv[4] = {
		{ (uint8_t *)(uintptr_t)":method", (uint8_t *)(uintptr_t)"GET", 7, 3, 0 },
		{ (uint8_t *)(uintptr_t)":scheme", (uint8_t *)(uintptr_t)"http", 7, 4, 0 },
		{ (uint8_t *)(uintptr_t)":path", (uint8_t *)(uintptr_t)path, 5, strlen(path), 0 },
		{ (uint8_t *)(uintptr_t)":authority", (uint8_t *)(uintptr_t)authority, 10,
		  authority != NULL ? strlen(authority) : 0, 0 },
	};
	int32_t id = nghttp2_submit_request(cli.ng, NULL, nv, authority != NULL ? 4 : 3, NULL, NULL);

	ck_assert_int_gt(id, 0);
	return id;
}

static void
setup(void)
{
	tw_worker_init(&w);
	w.cfg.max_conns = 100;
	w.cfg.header_timeout_ms = 5000;
	w.cfg.keepalive_timeout_ms = 5000;
	w.cfg.body_timeout_ms = 5000;
	w.cfg.response_timeout_ms = 5000;
	w.cfg.idle_timeout_ms = 5000;
	w.cfg.access_log = 0;
	w.cfg.access_log_sample = 1;
	w.cfg.http2 = 1;
	w.cfg.h2_max_streams = 100;
	ck_assert_int_eq(h1client_pools_init(&w), 0);
	memset(&ls, 0, sizeof(ls));
	ls.w = &w;
	ls.fd = -1;
	ls.kind = LISTENER_HTTP;
	cli.fd = -1;
	cli_peer_max = 0;
}

static void
teardown(void)
{
	cli_free();
	conn_close_all(&w);
	ck_assert_uint_eq(w.nconns, 0);
	ev_run_once(w.loop, 0);		/* the deferred frees */
	h1client_pools_free(&w);
	buf_pool_clear(&w.bufs);
	ev_loop_free(w.loop);
}

START_TEST(h2s_preface_picks_http2)
{
	int32_t id;

	cli_open();
	id = cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 1);
	ck_assert_int_eq(cli.status[id / 2], 404);	/* the welcome page: no routes yet */
	ck_assert_uint_gt(cli.body[id / 2], 100);
	ck_assert_int_eq(cli.clen[id / 2], (long)cli.body[id / 2]);
	ck_assert_uint_eq(w.nconns, 1);
	ck_assert_uint_eq(w.requests, 1);
	ck_assert(!cli.eof);	/* the connection stays for more streams */
}
END_TEST

/* The second of two like answers: its repeated fields go out as HPACK indexes (H2_DEFLATE_TABLE). */
START_TEST(h2s_repeated_fields_indexed)
{
	int32_t a, b;

	cli_open();
	a = cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 1);
	b = cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 2);
	ck_assert_int_eq(cli.status[b / 2], 404);
	ck_assert_int_eq(cli.nfields[b / 2], cli.nfields[a / 2]);
	ck_assert_int_eq(cli.clen[b / 2], cli.clen[a / 2]);
	ck_assert_uint_eq(cli.body[b / 2], cli.body[a / 2]);
	/* 62 bytes, then 10; a Date of the next second would be a ~23-byte literal. */
	ck_assert_uint_lt(cli.hlen[b / 2] + 24, cli.hlen[a / 2]);
}
END_TEST

START_TEST(h2s_hundred_streams)
{
	int i;

	cli_open();
	for (i = 0; i < 100; i++)
		(void)cli_get("app.example.com", "/many");
	CLI_UNTIL(cli.closed == 100);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(cli.status[(1 + 2 * i) / 2], 404);
	ck_assert_uint_eq(w.requests, 100);
}
END_TEST

START_TEST(h2s_no_authority_400)
{
	int32_t id;

	/*
	 * Neither :authority nor Host: RFC 9113 8.3.1 lets a client send it, nghttp2
	 * resets it; the session answers 400 with the error page first.
	 */
	cli_open();
	id = cli_get(NULL, "/");
	CLI_UNTIL(cli.closed == 1);
	ck_assert_int_eq(cli.status[id / 2], 400);
	ck_assert_uint_gt(cli.body[id / 2], 100);
	/* The connection serves on. */
	id = cli_get("app.example.com", "/after");
	CLI_UNTIL(cli.closed == 2);
	ck_assert_int_eq(cli.status[id / 2], 404);
	/* Alone in its read: nghttp2 still closes the stream, so a stop is not held up by it. */
	id = cli_get(NULL, "/again");
	CLI_UNTIL(cli.closed == 3);
	ck_assert_int_eq(cli.status[id / 2], 400);
	w.stopping = 1;
	conn_close_idle(&w, 0);
	CLI_UNTIL(cli.goaway && cli.eof);
}
END_TEST

START_TEST(h2s_ping_flood_goaway)
{
	uint8_t data[8] = { 0 };
	int i;

	cli_open();
	for (i = 0; i < 1500; i++)
		ck_assert_int_eq(nghttp2_submit_ping(cli.ng, NGHTTP2_FLAG_NONE, data), 0);
	CLI_UNTIL(cli.goaway && cli.eof);
	ck_assert_uint_eq(cli.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
	tw_run_ms(20);
	ck_assert_uint_eq(w.nconns, 0);
}
END_TEST

START_TEST(h2s_refused_streams_goaway)
{
	int i;

	/*
	 * 1500 streams at once, past the 100 we allow: nghttp2 refuses the rest
	 * (RST_STREAM REFUSED_STREAM) without opening them; each reset we send is
	 * a glitch, so this ends in ENHANCE_YOUR_CALM as a MadeYouReset flood does.
	 */
	cli_peer_max = 5000;
	cli_open();
	for (i = 0; i < 1500; i++)
		(void)cli_get("app.example.com", "/many");
	cli_send_unread();
	CLI_UNTIL(cli.goaway && cli.eof);
	ck_assert_uint_eq(cli.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
}
END_TEST

START_TEST(h2s_idle_goaway)
{
	w.cfg.keepalive_timeout_ms = 100;
	cli_open();
	(void)cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 1);
	CLI_UNTIL(cli.goaway && cli.eof);
	ck_assert_uint_eq(cli.goaway_code, NGHTTP2_NO_ERROR);
}
END_TEST

/*
 * The keep-alive time counts from the last stream's close, though the
 * timer was armed before it (h2_idle_arm: early, then it looks again).
 */
START_TEST(h2s_idle_from_last_stream)
{
	uint64_t t0, closed;

	w.cfg.keepalive_timeout_ms = 300;
	cli_open();
	(void)cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 1);
	t0 = util_now_ms();
	while (util_now_ms() < t0 + 200 && !cli.goaway)
		cli_turn();
	ck_assert(!cli.goaway);
	(void)cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 2);
	closed = util_now_ms();
	CLI_UNTIL(cli.goaway);
	ck_assert_uint_ge(util_now_ms() - closed, 290);
	ck_assert_uint_eq(cli.goaway_code, NGHTTP2_NO_ERROR);
}
END_TEST

START_TEST(h2s_close_idle)
{
	cli_open();
	(void)cli_get("app.example.com", "/");
	CLI_UNTIL(cli.closed == 1);
	ck_assert_uint_eq(w.nconns, 1);
	/* A stop (worker_stop sets stopping first): GOAWAY goes out, then the connection closes. */
	w.stopping = 1;
	conn_close_idle(&w, 0);
	CLI_UNTIL(cli.goaway && cli.eof);
	ck_assert_uint_eq(cli.goaway_code, NGHTTP2_NO_ERROR);
	tw_run_ms(20);
	ck_assert_uint_eq(w.nconns, 0);
}
END_TEST

START_TEST(h2s_off_preface_is_http1_400)
{
	char buf[4096];
	ssize_t n;
	uint64_t dl = tw_deadline(3000);
	size_t got = 0;

	w.cfg.http2 = 0;
	cli_open();
	(void)nghttp2_session_send(cli.ng);
	while (util_now_ms() < dl && got < 12) {
		tw_turn();
		n = recv(cli.fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	buf[got] = '\0';
	/* HTTP/2 is the version we do not speak here. */
	ck_assert_msg(strncmp(buf, "HTTP/1.1 505 ", 13) == 0, "%s", buf);
}
END_TEST

Suite *
suite_h2server(void)
{
	Suite *s = suite_create("h2server");
	TCase *tc = tcase_create("h2server");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, h2s_preface_picks_http2);
	tcase_add_test(tc, h2s_repeated_fields_indexed);
	tcase_add_test(tc, h2s_hundred_streams);
	tcase_add_test(tc, h2s_no_authority_400);
	tcase_add_test(tc, h2s_ping_flood_goaway);
	tcase_add_test(tc, h2s_refused_streams_goaway);
	tcase_add_test(tc, h2s_idle_goaway);
	tcase_add_test(tc, h2s_idle_from_last_stream);
	tcase_add_test(tc, h2s_close_idle);
	tcase_add_test(tc, h2s_off_preface_is_http1_400);
	suite_add_tcase(s, tc);
	return s;
}
