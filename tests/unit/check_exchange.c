/*
 * Unit tests for worker/exchange.c, the proxy core, with no socket at all: a
 * fake upstream (struct upstream_ops) that records what the exchange asked of
 * it and whose events the test fires from the event loop, as a real upstream
 * would (never inside an ops call), and a fake sink (struct sink_ops) that
 * records what the exchange gave the client and has a settable room. The
 * worker is set up by hand around a real route snapshot with three backends.
 *
 * Covered: the forwarding transform on the head given to open, streaming and
 * back-pressure both ways, trailers both ways, the retry rules (stale pooled
 * connections, resets for idempotent methods only, at most once, connect
 * failures moving to the next backend and marking the first down, bodies
 * over 16 KiB not replayed), failures before and after the response head,
 * aborts from either side, max_body, the response and idle timeouts, gRPC
 * calls (idle timeout from the start, request bytes keeping them alive,
 * grpc-timeout as a deadline even while connecting), the upgrade byte pipe,
 * the compression stage on a route that asks for it (the encoder's last
 * bytes wait for the sink's room before end), that the sink is never
 * called from inside the session's own calls, and the pinned exchange of
 * the tunnel process (no route, no transform; 503, reset, STALE retried).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zlib.h>

#include "master/snapbuild.h"
#include "share/evloop.h"
#include "share/snap.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/balance.h"
#include "worker/context.h"
#include "worker/exchange.h"
#include "worker/http1.h"
#include "worker/message.h"
#include "worker/upstream.h"

/* --- the worker and its snapshot: app.test has backends 20, 21, 22 */

static const struct snapb_route x_routes[] = {
	{ .id = 1, .name = "app.test", .be_first = 0, .be_count = 3 },
	{ .id = 2, .name = "one.test", .be_first = 3, .be_count = 1 },
	{ .id = 3, .name = "cz.test", .be_first = 4, .be_count = 1, .flags = SNAP_ROUTE_COMPRESS },
	{ .id = 4, .name = "tun.test", .be_first = 5, .be_count = 2 },
	{ .id = 5, .name = "tunonly.test", .be_first = 7, .be_count = 1 },
};

static const struct snapb_host x_hosts[] = {
	{ .id = 10, .name = "app.test", .route = 0, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 11, .name = "one.test", .route = 1, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 12, .name = "cz.test", .route = 2, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 13, .name = "tun.test", .route = 3, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 14, .name = "tunonly.test", .route = 4, .kind = SNAP_HOST_EXACT, NULL },
};

static const struct snapb_backend x_backends[] = {
	{ 20, AF_INET, 8020, { 127, 0, 0, 1 }, 0, NULL },
	{ 21, AF_INET, 8021, { 127, 0, 0, 1 }, 0, NULL },
	{ 22, AF_INET, 8022, { 127, 0, 0, 1 }, 0, NULL },
	{ 23, AF_INET, 8023, { 127, 0, 0, 1 }, 0, NULL },
	{ 24, AF_INET, 8024, { 127, 0, 0, 1 }, 0, NULL },
	/* tun.test: a tunnel first (the worker has no hop: tunnel_hop ""), then an address. */
	{ 25, AF_UNSPEC, 0, { 0 }, SNAP_BACKEND_TUNNEL, "office" },
	{ 26, AF_INET, 8026, { 127, 0, 0, 1 }, 0, NULL },
	{ 27, AF_UNSPEC, 0, { 0 }, SNAP_BACKEND_TUNNEL, "office" },
};

static struct worker w;
static struct snap *snap;

/* Whether the snapshot's backend with store id id is down for the balancer. */
static int
be_down(uint32_t id)
{
	uint32_t i;

	for (i = 0; i < snap_backend_count(snap); i++)
		if (snap_backend_at(snap, i)->id == id)
			return balance_is_down(&w, snap, snap_backend_at(snap, i));
	ck_abort_msg("no backend %u", id);
	return -1;
}

/* --- the fake upstream */

#define MAX_STREAMS 8
#define SENT_MAX (64 * 1024)

struct ustream {
	int closed;
	uint32_t backend_id;
	int fresh;
	uint32_t connect_ms;
	const struct msg_head *req;
	const struct upstream_events *ev;
	void *arg;
	char *sent;		/* request body bytes, SENT_MAX */
	size_t sent_len;
	int ends;		/* end() calls */
	int end_had_trailers;
	char end_trailer[128];	/* "name: value" of the first request trailer */
	int resumes;
	size_t room;		/* what room() says */
	int connecting;
};

static struct ustream *streams[MAX_STREAMS];
static int nopens, ncloses;
static int open_errno[4];	/* per backend 20..23: open fails at once with it */
static int pin_errno;		/* a pinned exchange's target (id 0): open fails with it */
static int next_connecting;	/* the next open reports a pending connect */

static struct ustream *
fu_open(struct worker *wk, const struct snap_backend *b, const struct upstream_opts *o,
    const struct msg_head *req, const struct upstream_events *ev, void *arg)
{
	struct ustream *s;

	ck_assert_ptr_eq(wk, &w);
	ck_assert_int_lt(nopens, MAX_STREAMS);
	if (b->id >= 20 && b->id <= 23 && open_errno[b->id - 20] != 0) {
		errno = open_errno[b->id - 20];
		return NULL;
	}
	if (b->id == 0 && pin_errno != 0) {
		errno = pin_errno;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	ck_assert_ptr_nonnull(s);
	s->sent = malloc(SENT_MAX);
	ck_assert_ptr_nonnull(s->sent);
	s->backend_id = b->id;
	s->fresh = o->fresh;
	s->connect_ms = o->connect_ms;
	s->req = req;
	s->ev = ev;
	s->arg = arg;
	s->room = 48 * 1024;
	s->connecting = next_connecting;
	next_connecting = 0;
	streams[nopens++] = s;
	return s;
}

static int
fu_send(struct ustream *s, const char *p, size_t n)
{
	ck_assert_int_eq(s->closed, 0);
	ck_assert_uint_le(n, s->room);
	ck_assert_uint_le(s->sent_len + n, SENT_MAX);
	memcpy(s->sent + s->sent_len, p, n);
	s->sent_len += n;
	return 0;
}

static size_t
fu_room(struct ustream *s)
{
	ck_assert_int_eq(s->closed, 0);
	return s->room;
}

static int
fu_end(struct ustream *s, const struct msg_head *trailers)
{
	ck_assert_int_eq(s->closed, 0);
	s->ends++;
	s->end_had_trailers = trailers != NULL && trailers->ntrailers > 0;
	if (s->end_had_trailers) {
		const struct msg_field *f = &trailers->f[trailers->nf - trailers->ntrailers];

		snprintf(s->end_trailer, sizeof(s->end_trailer), "%s: %s", msg_name(trailers, f),
		    msg_value(trailers, f));
	}
	return 0;
}

static void
fu_resume(struct ustream *s)
{
	ck_assert_int_eq(s->closed, 0);
	s->resumes++;
}

static void
fu_close(struct ustream *s)
{
	ck_assert_int_eq(s->closed, 0);
	s->closed = 1;
	ncloses++;
}

static int
fu_connecting(const struct ustream *s)
{
	return s->connecting;
}

static const struct upstream_ops fake_ops = {
	"fake", fu_open, fu_send, fu_room, fu_end, fu_resume, fu_close, fu_connecting,
};

/* --- firing the upstream's events from the loop */

enum fire_kind { F_HEAD, F_BODY, F_END, F_FAIL, F_ROOM, F_MORE, F_SENT, F_DIRECT };

struct fire {
	enum fire_kind kind;
	struct ustream *s;
	struct msg_head *h;
	const char *p;
	size_t n;
	enum upstream_err err;
	int code;
	int rc;
	size_t room;
	int done;
};

static void
fire_run(void *arg)
{
	struct fire *f = arg;
	const struct upstream_events *ev = f->s->ev;
	void *a = f->s->arg;

	switch (f->kind) {
	case F_HEAD: f->rc = ev->head(a, f->h); break;
	case F_BODY: f->rc = ev->body(a, f->p, f->n); break;
	case F_END: ev->end(a, f->h); break;
	case F_FAIL: (ev->fail)(a, f->err, f->code); break;
	case F_ROOM: f->room = ev->room(a); break;
	case F_MORE: ev->more(a); break;
	case F_SENT: ev->sent(a); break;
	case F_DIRECT: f->room = ev->body_direct(a, f->p, f->n); break;
	}
	f->done = 1;
}

static struct fire
fire(struct fire f)
{
	ck_assert_msg(!f.s->closed, "an event on a closed stream");
	ck_assert_int_eq(ev_defer(w.loop, fire_run, &f), 0);
	ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
	ck_assert_int_eq(f.done, 1);
	return f;
}

static int
up_head(struct ustream *s, struct msg_head *h)
{
	return fire((struct fire){ .kind = F_HEAD, .s = s, .h = h }).rc;
}

static int
up_body(struct ustream *s, const char *p)
{
	return fire((struct fire){ .kind = F_BODY, .s = s, .p = p, .n = strlen(p) }).rc;
}

static void
up_end(struct ustream *s, struct msg_head *h)
{
	fire((struct fire){ .kind = F_END, .s = s, .h = h });
}

static void
up_fail(struct ustream *s, enum upstream_err err, int code)
{
	fire((struct fire){ .kind = F_FAIL, .s = s, .err = err, .code = code });
}

static size_t
up_room(struct ustream *s)
{
	return fire((struct fire){ .kind = F_ROOM, .s = s }).room;
}

/* Body bytes offered for a direct write: how many the sink took. */
static size_t
up_direct(struct ustream *s, const char *p)
{
	return fire((struct fire){ .kind = F_DIRECT, .s = s, .p = p, .n = strlen(p) }).room;
}

static void
up_more(struct ustream *s)
{
	fire((struct fire){ .kind = F_MORE, .s = s });
}

static void
up_sent(struct ustream *s)
{
	fire((struct fire){ .kind = F_SENT, .s = s });
}

/* --- the fake sink */

struct fsink {
	int heads;
	unsigned head_status[4];
	int head_nobody[4];
	char body[64 * 1024];
	size_t body_len;
	int shuts, ends, fails, mores;
	unsigned fail_status;
	struct msg_head *end_resp;
	int end_ntrailers;
	size_t room;
	size_t direct;		/* what body_direct() takes */
	int directs;		/* body_direct() calls */
	int gone;		/* end or fail came: nothing may follow */
};

static struct fsink sk;
static int in_ex_call;	/* inside exchange_body/_body_end/_resume/_abort/_start */

#define SINK_CALL(what) do {							\
	ck_assert_msg(!in_ex_call, "sink " what " called from inside the session's call"); \
	ck_assert_msg(!sk.gone, "sink " what " after end/fail");		\
} while (0)

static int
fs_head(void *arg, struct msg_head *resp, int nobody)
{
	ck_assert_ptr_eq(arg, &sk);
	SINK_CALL("head");
	ck_assert_int_lt(sk.heads, 4);
	sk.head_status[sk.heads] = resp->status;
	sk.head_nobody[sk.heads] = nobody;
	sk.heads++;
	return 0;
}

static int
fs_body(void *arg, const char *p, size_t n)
{
	(void)arg;
	SINK_CALL("body");
	ck_assert_uint_le(n, sk.room);
	ck_assert_uint_le(sk.body_len + n, sizeof(sk.body));
	memcpy(sk.body + sk.body_len, p, n);
	sk.body_len += n;
	return 0;
}

static void
fs_shut(void *arg)
{
	(void)arg;
	SINK_CALL("shut");
	sk.shuts++;
}

static void
fs_end(void *arg, struct msg_head *resp)
{
	(void)arg;
	SINK_CALL("end");
	sk.ends++;
	sk.end_resp = resp;
	sk.end_ntrailers = resp != NULL ? (int)resp->ntrailers : -1;
	sk.gone = 1;
}

static void
fs_fail(void *arg, unsigned status)
{
	(void)arg;
	SINK_CALL("fail");
	sk.fails++;
	sk.fail_status = status;
	sk.gone = 1;
}

static size_t
fs_room(void *arg)
{
	(void)arg;
	SINK_CALL("room");
	return sk.room;
}

static void
fs_more(void *arg)
{
	(void)arg;
	SINK_CALL("more");
	sk.mores++;
}

static size_t
fs_body_direct(void *arg, const char *p, size_t n)
{
	(void)arg;
	SINK_CALL("body_direct");
	sk.directs++;
	if (n > sk.direct)
		n = sk.direct;
	ck_assert_uint_le(sk.body_len + n, sizeof(sk.body));
	memcpy(sk.body + sk.body_len, p, n);
	sk.body_len += n;
	return n;
}

static const struct sink_ops fake_sink = {
	fs_head, fs_body, fs_shut, fs_end, fs_fail, fs_room, fs_more, fs_body_direct,
};

/* --- the session's calls, flagged */

static int
x_body(struct exchange *ex, const char *p, size_t n)
{
	int rc;

	in_ex_call = 1;
	rc = exchange_body(ex, p, n);
	in_ex_call = 0;
	return rc;
}

static int
x_body_s(struct exchange *ex, const char *p)
{
	return x_body(ex, p, strlen(p));
}

static int
x_end(struct exchange *ex, const struct msg_head *req)
{
	int rc;

	in_ex_call = 1;
	rc = exchange_body_end(ex, req);
	in_ex_call = 0;
	return rc;
}

static size_t
x_room(struct exchange *ex)
{
	size_t n;

	in_ex_call = 1;
	n = exchange_room(ex);
	in_ex_call = 0;
	return n;
}

static void
x_resume(struct exchange *ex)
{
	in_ex_call = 1;
	exchange_resume(ex);
	in_ex_call = 0;
}

static void
x_abort(struct exchange *ex, unsigned status)
{
	in_ex_call = 1;
	exchange_abort(ex, status);
	in_ex_call = 0;
}

/* Lets deferred work (kicks, frees) run. */
static void
spin(void)
{
	int i;

	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
}

/* --- heads */

static struct msg_head reqh;
static struct msg_head resps[4];
static int nresps;

/* A response head held until teardown (the sink may keep a pointer to it). */
static struct msg_head *
mkresp(unsigned status, int length)
{
	struct msg_head *h;

	ck_assert_int_lt(nresps, 4);
	h = &resps[nresps++];
	msg_init(h);
	h->status = status;
	h->major = 1;
	h->minor = 1;
	ck_assert_int_eq(msg_str(h, "X", 1, &h->reason), 0);
	ck_assert_int_eq(msg_add(h, "Content-Type", "text/plain"), 0);
	ck_assert_int_eq(msg_add(h, "Connection", "keep-alive"), 0);
	if (length >= 0) {
		h->has_length = 1;
		h->length = (uint64_t)length;
	} else if (status >= 200)
		h->chunked = 1;
	if (status == 101) {
		h->upgrade = 1;
		ck_assert_int_eq(msg_add(h, "Upgrade", "websocket"), 0);
	}
	return h;
}

static struct exchange *
start_ex_delayed(const char *text, const char *host, uint64_t max_body, uint32_t delay_ms,
    unsigned *status)
{
	const struct snap_route *route = snap_lookup(snap, host, strlen(host));
	struct exchange *ex;
	unsigned st = 0;

	ck_assert_ptr_nonnull(route);
	tw_parse_head(&reqh, text);
	in_ex_call = 1;
	ex = exchange_start(&w, &(struct exchange_req){ &reqh, snap_ref(snap), route, host,
	    "192.0.2.7", "http", 0, 0, util_now_us(), max_body, delay_ms, NULL }, &fake_ops, &fake_sink,
	    &sk, &st);
	in_ex_call = 0;
	if (status != NULL)
		*status = st;
	return ex;
}

static struct exchange *
start_ex(const char *text, const char *host, uint64_t max_body, unsigned *status)
{
	return start_ex_delayed(text, host, max_body, 0, status);
}

static const char get_req[] = "GET /a?b=1 HTTP/1.1\r\nHost: app.test\r\n"
    "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
    "X-Forwarded-For: 10.9.9.9\r\nUser-Agent: t\r\n\r\n";
static const char post_req[] = "POST /up HTTP/1.1\r\nHost: app.test\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
static const char put_req[] = "PUT /up HTTP/1.1\r\nHost: app.test\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

static const char *
field(const struct msg_head *h, const char *name)
{
	const struct msg_field *f = msg_find(h, name);

	return f != NULL ? msg_value(h, f) : NULL;
}

/* --- fixture */

static void
setup(void)
{
	struct snapb_input in = {
		.routes = x_routes, .nroutes = 5, .hosts = x_hosts, .nhosts = 5,
		.backends = x_backends, .nbackends = 8, .default_route = SNAP_NONE, .generation = 1,
	};

	tw_worker_init(&w);
	w.cfg.max_conns = 100;
	w.cfg.connect_timeout_ms = 3000;
	w.cfg.response_timeout_ms = 5000;
	w.cfg.idle_timeout_ms = 5000;
	w.cfg.upgrade_timeout_ms = 5000;
	w.cfg.body_timeout_ms = 5000;
	w.cfg.header_timeout_ms = 5000;
	w.cfg.keepalive_timeout_ms = 5000;
	w.cfg.backend_down_ms = 60000;
	w.cfg.access_log = 0;
	w.cfg.access_log_sample = 1;
	w.reqid_base = 0x1000;
	snap = tw_snap(&in);
	w.snap = NULL;
	memset(&sk, 0, sizeof(sk));
	sk.room = 32 * 1024;
	memset(streams, 0, sizeof(streams));
	memset(open_errno, 0, sizeof(open_errno));
	pin_errno = 0;
	nopens = ncloses = nresps = next_connecting = 0;
	in_ex_call = 0;
	msg_init(&reqh);
}

static void
teardown(void)
{
	int i;

	spin();
	/* Every stream the exchange opened, it closed. */
	ck_assert_int_eq(ncloses, nopens);
	for (i = 0; i < nopens; i++) {
		free(streams[i]->sent);
		free(streams[i]);
	}
	for (i = 0; i < nresps; i++)
		msg_free(&resps[i]);
	msg_free(&reqh);
	snap_unref(snap);
	balance_free(&w.balance);
	buf_pool_clear(&w.bufs);
	ev_loop_free(w.loop);
}

/* The sink heard one failure, with status (0: a cut after the head). */
static void
sink_failed(unsigned status)
{
	ck_assert_int_eq(sk.fails, 1);
	ck_assert_uint_eq(sk.fail_status, status);
}

/* --- tests */

START_TEST(ex_forwards_and_streams)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);
	struct ustream *s;
	struct msg_head *resp;
	const char *rid;

	w.cfg.access_log = 1;	/* the access entry is written (to stderr) */
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(nopens, 1);
	s = streams[0];
	/* Round-robin starts at the route's first backend; a first try may use the pool. */
	ck_assert_uint_eq(s->backend_id, 20);
	ck_assert_int_eq(s->fresh, 0);
	ck_assert_uint_eq(s->connect_ms, 3000);
	/* The head given to open is transformed for the backend. */
	ck_assert_ptr_eq(s->req, &reqh);
	ck_assert_str_eq(field(s->req, "x-forwarded-for"), "192.0.2.7");	/* not trusted */
	ck_assert_str_eq(field(s->req, "x-forwarded-proto"), "http");
	ck_assert_str_eq(field(s->req, "x-forwarded-host"), "app.test");
	ck_assert_ptr_nonnull(rid = field(s->req, "x-request-id"));
	ck_assert_uint_eq(strlen(rid), 16);
	ck_assert_uint_eq(strspn(rid, "0123456789abcdef"), 16);
	ck_assert_str_eq(field(s->req, "host"), "app.test");
	ck_assert_str_eq(field(s->req, "user-agent"), "t");
	ck_assert_ptr_null(field(s->req, "connection"));
	ck_assert_ptr_null(field(s->req, "keep-alive"));
	ck_assert_ptr_null(field(s->req, "x-hop"));	/* named in Connection */
	ck_assert_str_eq(msg_s(s->req, s->req->path), "/a?b=1");

	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(s->ends, 1);
	ck_assert_int_eq(s->end_had_trailers, 0);
	up_sent(s);
	/* The response streams through: head (hop-by-hop gone), body, end with trailers. */
	resp = mkresp(200, -1);
	ck_assert_int_eq(up_head(s, resp), 0);
	ck_assert_int_eq(sk.heads, 1);
	ck_assert_uint_eq(sk.head_status[0], 200);
	ck_assert_int_eq(sk.head_nobody[0], 0);
	ck_assert_ptr_null(field(resp, "connection"));
	ck_assert_str_eq(field(resp, "content-type"), "text/plain");
	ck_assert_int_eq(up_body(s, "hello "), 0);
	ck_assert_int_eq(up_body(s, "world"), 0);
	ck_assert_uint_eq(sk.body_len, 11);
	ck_assert_int_eq(memcmp(sk.body, "hello world", 11), 0);
	ck_assert_int_eq(msg_add_n(resp, "X-Sum", 5, "abc", 3, 1), 0);
	up_end(s, resp);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_int_eq(sk.fails, 0);
	ck_assert_ptr_eq(sk.end_resp, resp);
	ck_assert_int_eq(sk.end_ntrailers, 1);
	ck_assert_int_eq(s->closed, 1);
	ck_assert_int_eq(nopens, 1);
}
END_TEST

/* A 200 with no body from the backend ends the exchange. */
static void
finish_ok(struct ustream *s)
{
	struct msg_head *resp = mkresp(200, -1);

	ck_assert_int_eq(up_head(s, resp), 0);
	up_end(s, resp);
	ck_assert_int_eq(sk.ends, 1);
}

/*
 * The rate limit's delay: no backend until the timer, no body taken, the
 * request's end kept; then the stream opens, the session hears "more", and
 * the body flows. A GET's end given during the wait reaches the backend.
 */
START_TEST(ex_delay_opens_later)
{
	struct exchange *ex = start_ex_delayed(post_req, "app.test", 0, 150, NULL);
	uint64_t t0 = util_now_ms();
	struct ustream *s;

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(nopens, 0);
	ck_assert_uint_eq(exchange_room(ex), 0);
	tw_run_ms(50);
	ck_assert_int_eq(nopens, 0);
	TW_RUN_UNTIL(nopens == 1);
	ck_assert_uint_ge(util_now_ms() - t0, 140);
	ck_assert_int_eq(sk.mores, 1);
	s = streams[0];
	ck_assert_uint_gt(exchange_room(ex), 0);
	ck_assert_int_eq(x_body_s(ex, "part1"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(s->ends, 1);
	ck_assert_uint_eq(s->sent_len, 5);
	finish_ok(s);
}
END_TEST

START_TEST(ex_delay_keeps_the_end)
{
	struct exchange *ex = start_ex_delayed(get_req, "app.test", 0, 50, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(nopens, 0);
	TW_RUN_UNTIL(nopens == 1);
	ck_assert_int_eq(streams[0]->ends, 1);
	finish_ok(streams[0]);
}
END_TEST

/* The client leaves while it waits: nothing is opened, the timer is gone with it. */
START_TEST(ex_delay_aborted)
{
	struct exchange *ex = start_ex_delayed(get_req, "app.test", 0, 50, NULL);

	ck_assert_ptr_nonnull(ex);
	exchange_abort(ex, 499);
	tw_run_ms(120);
	ck_assert_int_eq(nopens, 0);
	ck_assert_int_eq(sk.fails + sk.ends, 0);
}
END_TEST

START_TEST(ex_request_trailers_and_head)
{
	struct exchange *ex = start_ex(post_req, "app.test", 0, NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "part1"), 0);
	ck_assert_int_eq(x_body_s(ex, "part2"), 0);
	ck_assert_uint_eq(s->sent_len, 10);
	ck_assert_int_eq(memcmp(s->sent, "part1part2", 10), 0);
	/* The parser adds the trailers to the request head at its end. */
	ck_assert_int_eq(msg_add_n(&reqh, "X-Checksum", 10, "42", 2, 1), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(s->ends, 1);
	ck_assert_int_eq(s->end_had_trailers, 1);
	ck_assert_str_eq(s->end_trailer, "X-Checksum: 42");
	/* An interim 100 passes as an interim head with no body, then the final one. */
	ck_assert_int_eq(up_head(s, mkresp(100, -1)), 0);
	ck_assert_int_eq(sk.heads, 1);
	ck_assert_uint_eq(sk.head_status[0], 100);
	ck_assert_int_eq(sk.head_nobody[0], 1);
	ck_assert_int_eq(up_head(s, mkresp(204, -1)), 0);
	ck_assert_uint_eq(sk.head_status[1], 204);
	ck_assert_int_eq(sk.head_nobody[1], 1);
	up_end(s, &resps[1]);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_int_eq(sk.end_ntrailers, 0);
}
END_TEST

START_TEST(ex_head_request_has_no_body)
{
	struct exchange *ex = start_ex("HEAD / HTTP/1.1\r\nHost: app.test\r\n\r\n", "app.test", 0,
	    NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(up_head(s, mkresp(200, 1234)), 0);
	ck_assert_int_eq(sk.head_nobody[0], 1);
	up_end(s, &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
}
END_TEST

START_TEST(ex_complete_head_has_no_body)
{
	struct exchange *ex = start_ex("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n", "app.test", 0,
	    NULL);
	struct ustream *s = streams[0];
	struct msg_head *resp = mkresp(200, 0);

	/* An HTTP/2 backend's HEADERS with END_STREAM (a gRPC trailers-only answer). */
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	resp->complete = 1;
	ck_assert_int_eq(up_head(s, resp), 0);
	ck_assert_int_eq(sk.head_nobody[0], 1);
	up_end(s, resp);
	ck_assert_int_eq(sk.ends, 1);
}
END_TEST

START_TEST(ex_backpressure_both_ways)
{
	struct exchange *ex = start_ex(post_req, "app.test", 0, NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	/* Toward the backend: exchange_room is the upstream's room. */
	s->room = 5;
	ck_assert_uint_eq(x_room(ex), 5);
	ck_assert_int_eq(x_body_s(ex, "abcde"), 0);
	s->room = 0;
	ck_assert_uint_eq(x_room(ex), 0);
	/* Bytes went out: the upstream says more, the session hears it. */
	s->room = 100;
	up_more(s);
	ck_assert_int_eq(sk.mores, 1);
	ck_assert_uint_eq(x_room(ex), 100);

	/* Toward the client: the upstream asks room before each piece. */
	ck_assert_int_eq(up_head(s, mkresp(200, 10)), 0);
	sk.room = 0;
	ck_assert_uint_eq(up_room(s), 0);
	ck_assert_int_eq(s->resumes, 0);
	sk.room = 3;
	ck_assert_uint_eq(up_room(s), 3);
	ck_assert_int_eq(up_body(s, "xyz"), 0);
	sk.room = 0;
	ck_assert_uint_eq(up_room(s), 0);
	/* The client took bytes: the exchange lets the upstream deliver again. */
	sk.room = 4096;
	x_resume(ex);
	ck_assert_int_eq(s->resumes, 1);
	ck_assert_uint_eq(up_room(s), 4096);
	ck_assert_int_eq(up_body(s, "1234567"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	/* more after the request ended is not the session's business. */
	up_more(s);
	ck_assert_int_eq(sk.mores, 1);
	up_end(s, &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_uint_eq(sk.body_len, 10);
	ck_assert_int_eq(memcmp(sk.body, "xyz1234567", 10), 0);
}
END_TEST

/* A compressed response: the stage sits between upstream and sink, and end waits for room. */
/*
 * A direct write (the cache upstream's, from the map) reaches the sink as
 * far as it takes; with a compression stage between, none goes direct.
 */
START_TEST(ex_direct_body_reaches_sink)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(up_head(s, mkresp(200, 11)), 0);
	sk.direct = 6;
	ck_assert_uint_eq(up_direct(s, "hello world"), 6);
	ck_assert_int_eq(up_body(s, "world"), 0);
	ck_assert_uint_eq(sk.body_len, 11);
	ck_assert_int_eq(memcmp(sk.body, "hello world", 11), 0);
	up_end(s, &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_int_eq(sk.directs, 1);
}
END_TEST

START_TEST(ex_direct_body_not_past_stage)
{
	struct exchange *ex = start_ex("GET /p HTTP/1.1\r\nHost: cz.test\r\n"
	    "Accept-Encoding: gzip\r\n\r\n", "cz.test", 0, NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(up_head(s, mkresp(200, 2000)), 0);
	ck_assert_str_eq(field(&resps[0], "content-encoding"), "gzip");
	sk.direct = 100;
	ck_assert_uint_eq(up_direct(s, "aaaa"), 0);
	ck_assert_int_eq(sk.directs, 0);
	x_abort(ex, 499);
}
END_TEST

START_TEST(ex_compress_stage_waits_for_room)
{
	struct exchange *ex = start_ex("GET /p HTTP/1.1\r\nHost: cz.test\r\n"
	    "Accept-Encoding: gzip\r\n\r\n", "cz.test", 0, NULL);
	struct ustream *s = streams[0];
	char text[2000], out[4096];
	z_stream z = { 0 };
	size_t k;

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	memset(text, 'a', sizeof(text));
	ck_assert_int_eq(up_head(s, mkresp(200, (int)sizeof(text))), 0);
	ck_assert_str_eq(field(&resps[0], "content-encoding"), "gzip");
	ck_assert_int_eq(resps[0].has_length, 0);
	/* The stage offers less than the sink's room: expansion must fit. */
	k = up_room(s);
	ck_assert_uint_gt(k, 0);
	ck_assert_uint_lt(k, sk.room);
	ck_assert_int_eq(fire((struct fire){ .kind = F_BODY, .s = s, .p = text,
	    .n = sizeof(text) }).rc, 0);
	ck_assert_uint_gt(sk.body_len, 0);	/* flushed at once */
	/* The sink is full: the backend's end waits, the upstream stays open. */
	sk.room = 0;
	up_end(s, &resps[0]);
	ck_assert_int_eq(sk.ends, 0);
	ck_assert_int_eq(s->closed, 0);
	sk.room = 4096;
	x_resume(ex);	/* the sink is fed from the loop, not from inside this call */
	spin();
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_int_eq(s->closed, 1);
	ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)sk.body;
	z.avail_in = (uInt)sk.body_len;
	z.next_out = (Bytef *)out;
	z.avail_out = sizeof(out);
	ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	ck_assert_uint_eq(sizeof(out) - z.avail_out, sizeof(text));
	ck_assert_int_eq(memcmp(out, text, sizeof(text)), 0);
	inflateEnd(&z);
}
END_TEST

START_TEST(ex_stale_retried_fresh_with_replay)
{
	/* Stale connections are retried whatever the method: nothing reached the application. */
	struct exchange *ex = start_ex(post_req, "app.test", 0, NULL);
	struct ustream *s1 = streams[0], *s2;

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(s1->fresh, 0);
	ck_assert_int_eq(x_body_s(ex, "hello"), 0);
	ck_assert_int_eq(x_body_s(ex, " there"), 0);
	ck_assert_int_eq(msg_add_n(&reqh, "X-T", 3, "v", 1, 1), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	up_fail(s1, UPSTREAM_STALE, 0);
	ck_assert_int_eq(s1->closed, 1);
	ck_assert_int_eq(nopens, 2);
	s2 = streams[1];
	ck_assert_int_eq(s2->fresh, 1);
	ck_assert_uint_eq(s2->backend_id, s1->backend_id);
	ck_assert_ptr_eq(s2->req, &reqh);
	/* The body is replayed and the end re-sent, trailers included. */
	ck_assert_uint_eq(s2->sent_len, 11);
	ck_assert_int_eq(memcmp(s2->sent, "hello there", 11), 0);
	ck_assert_int_eq(s2->ends, 1);
	ck_assert_str_eq(s2->end_trailer, "X-T: v");
	ck_assert_int_eq(sk.fails, 0);
	ck_assert_int_eq(sk.heads, 0);
	ck_assert_int_eq(up_head(s2, mkresp(201, 0)), 0);
	up_end(s2, &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_uint_eq(sk.head_status[0], 201);
	ck_assert_int_eq(nopens, 2);
}
END_TEST

START_TEST(ex_stale_before_request_end)
{
	/* The request is not complete yet: the replay sends the body but no end. */
	struct exchange *ex = start_ex(put_req, "app.test", 0, NULL);
	struct ustream *s2;

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "abc"), 0);
	up_fail(streams[0], UPSTREAM_STALE, 0);
	ck_assert_int_eq(nopens, 2);
	s2 = streams[1];
	ck_assert_uint_eq(s2->sent_len, 3);
	ck_assert_int_eq(s2->ends, 0);
	ck_assert_int_eq(x_body_s(ex, "def"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_uint_eq(s2->sent_len, 6);
	ck_assert_int_eq(memcmp(s2->sent, "abcdef", 6), 0);
	ck_assert_int_eq(s2->ends, 1);
	x_abort(ex, 499);
	ck_assert_int_eq(s2->closed, 1);
}
END_TEST

START_TEST(ex_reset_get_retried_once)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	up_fail(streams[0], UPSTREAM_RESET, 0);
	ck_assert_int_eq(nopens, 2);
	ck_assert_int_eq(streams[1]->fresh, 1);
	ck_assert_uint_eq(streams[1]->backend_id, streams[0]->backend_id);
	ck_assert_int_eq(streams[1]->ends, 1);
	ck_assert_int_eq(sk.fails, 0);
	/* A second reset: the one retry is used up. */
	up_fail(streams[1], UPSTREAM_RESET, 0);
	ck_assert_int_eq(nopens, 2);
	sink_failed(502);
	ck_assert_int_eq(sk.heads, 0);
	/* A reset is no reason to mark the backend down. */
	ck_assert_int_eq(be_down(20), 0);
}
END_TEST

START_TEST(ex_reset_post_not_retried)
{
	struct exchange *ex = start_ex(post_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "x=1"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	up_fail(streams[0], UPSTREAM_RESET, 0);
	ck_assert_int_eq(nopens, 1);
	sink_failed(502);
}
END_TEST

START_TEST(ex_put_reset_replays_body)
{
	struct exchange *ex = start_ex(put_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "payload"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	up_fail(streams[0], UPSTREAM_RESET, 0);
	ck_assert_int_eq(nopens, 2);
	ck_assert_uint_eq(streams[1]->sent_len, 7);
	ck_assert_int_eq(memcmp(streams[1]->sent, "payload", 7), 0);
	ck_assert_int_eq(streams[1]->ends, 1);
	up_head(streams[1], mkresp(200, 0));
	up_end(streams[1], &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
}
END_TEST

START_TEST(ex_connect_moves_to_next_backend)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_uint_eq(streams[0]->backend_id, 20);
	ck_assert_int_eq(be_down(20), 0);
	up_fail(streams[0], UPSTREAM_CONNECT, ECONNREFUSED);
	ck_assert_int_eq(be_down(20), 1);
	ck_assert_int_eq(nopens, 2);
	ck_assert_uint_eq(streams[1]->backend_id, 21);
	ck_assert_int_eq(streams[1]->ends, 1);
	ck_assert_int_eq(be_down(21), 0);
	ck_assert_int_eq(be_down(22), 0);
	up_head(streams[1], mkresp(200, 0));
	up_end(streams[1], &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_int_eq(sk.fails, 0);
}
END_TEST

START_TEST(ex_connect_local_shortage_not_down)
{
	/* EMFILE is our shortage, not the backend's fault: no mark, but the next is tried. */
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	up_fail(streams[0], UPSTREAM_CONNECT, EMFILE);
	ck_assert_int_eq(be_down(20), 0);
	ck_assert_int_eq(nopens, 2);
	ck_assert_uint_eq(streams[1]->backend_id, 21);
	x_abort(ex, 499);
}
END_TEST

START_TEST(ex_down_backend_skipped_next_time)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_CONNECT, ETIMEDOUT);
	up_head(streams[1], mkresp(200, 0));
	up_end(streams[1], &resps[0]);
	spin();
	/* The next request's round would start at 21; then one at 22, then 20 (down) → 21. */
	msg_free(&reqh);
	memset(&sk, 0, sizeof(sk));
	sk.room = 4096;
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_uint_eq(streams[2]->backend_id, 21);
	x_abort(ex, 499);
	spin();
	msg_free(&reqh);
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_uint_eq(streams[3]->backend_id, 22);
	x_abort(ex, 499);
	spin();
	msg_free(&reqh);
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_uint_eq(streams[4]->backend_id, 21);
	x_abort(ex, 499);
}
END_TEST

START_TEST(ex_open_fails_at_once)
{
	/* A connect refused at once (open NULL with errno): the next backend, the first marked down. */
	struct exchange *ex;

	open_errno[0] = ECONNREFUSED;
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(nopens, 1);
	ck_assert_uint_eq(streams[0]->backend_id, 21);
	ck_assert_int_eq(be_down(20), 1);
	x_abort(ex, 499);
	ck_assert_int_eq(streams[0]->closed, 1);
	spin();
	ck_assert_int_eq(sk.heads + sk.ends + sk.fails, 0);
}
END_TEST

/* No tunnel process (no hop): 503 for the tunnel, never marked down; an address beside it serves. */
START_TEST(ex_tunnel_hop_down_503)
{
	struct exchange *ex;
	unsigned status = 0;

	ck_assert_str_eq(w.cfg.tunnel_hop, "");
	ex = start_ex("GET / HTTP/1.1\r\nHost: tunonly.test\r\n\r\n", "tunonly.test", 0, &status);
	ck_assert_ptr_null(ex);
	ck_assert_uint_eq(status, 503);
	ck_assert_int_eq(nopens, 0);
	ck_assert_int_eq(be_down(27), 0);
	msg_free(&reqh);
	ex = start_ex("GET / HTTP/1.1\r\nHost: tun.test\r\n\r\n", "tun.test", 0, &status);
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(nopens, 1);
	ck_assert_uint_eq(streams[0]->backend_id, 26);
	ck_assert_int_eq(be_down(25), 0);
	x_abort(ex, 499);
}
END_TEST

/* An upgrade never goes to a tunnel: the address beside it, or 502 (not 503) without one. */
START_TEST(ex_tunnel_upgrade_skipped)
{
	static const char ws[] = "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
	    "Upgrade: websocket\r\n\r\n";
	char req[256];
	struct exchange *ex;
	unsigned status = 0;

	snprintf(req, sizeof(req), ws, "tunonly.test");
	ex = start_ex(req, "tunonly.test", 0, &status);
	ck_assert_ptr_null(ex);
	ck_assert_uint_eq(status, 502);
	msg_free(&reqh);
	snprintf(req, sizeof(req), ws, "tun.test");
	ex = start_ex(req, "tun.test", 0, &status);
	ck_assert_ptr_nonnull(ex);
	ck_assert_uint_eq(streams[0]->backend_id, 26);
	x_abort(ex, 499);
}
END_TEST

START_TEST(ex_all_backends_fail)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_CONNECT, ECONNREFUSED);
	up_fail(streams[1], UPSTREAM_CONNECT, ECONNREFUSED);
	ck_assert_int_eq(sk.fails, 0);
	up_fail(streams[2], UPSTREAM_CONNECT, ECONNREFUSED);
	ck_assert_int_eq(nopens, 3);
	ck_assert_uint_eq(streams[0]->backend_id, 20);
	ck_assert_uint_eq(streams[1]->backend_id, 21);
	ck_assert_uint_eq(streams[2]->backend_id, 22);
	sink_failed(502);
	ck_assert_int_eq(be_down(20) && be_down(21) &&
	    be_down(22), 1);
}
END_TEST

START_TEST(ex_all_refused_at_start)
{
	struct exchange *ex;
	unsigned status = 0;

	w.cfg.access_log = 1;	/* the access entry is written (to stderr) */
	open_errno[0] = open_errno[1] = open_errno[2] = ECONNREFUSED;
	ex = start_ex(get_req, "app.test", 0, &status);
	ck_assert_ptr_null(ex);
	ck_assert_uint_eq(status, 502);
	ck_assert_int_eq(nopens, 0);
	spin();
	/* The session answers itself: the sink heard nothing. */
	ck_assert_int_eq(sk.heads + sk.ends + sk.fails, 0);
	/* Now every backend is down: the round is over before any open. */
	msg_free(&reqh);
	open_errno[0] = open_errno[1] = open_errno[2] = 0;
	ex = start_ex(get_req, "app.test", 0, &status);
	ck_assert_ptr_null(ex);
	ck_assert_uint_eq(status, 502);
	ck_assert_int_eq(nopens, 0);
}
END_TEST

/* 20 KiB of body in two pieces: more than the 16 KiB kept for a replay. */
static void
send_big_body(struct exchange *ex)
{
	static char big[10 * 1024];

	memset(big, 'b', sizeof(big));
	ck_assert_int_eq(x_body(ex, big, sizeof(big)), 0);
	ck_assert_int_eq(x_body(ex, big, sizeof(big)), 0);
	ck_assert_uint_eq(streams[0]->sent_len, 2 * sizeof(big));
}

/* A PUT whose body is past the replay limit, ended when end, fails with err: 502, no retry. */
static void
big_body_fails(int end, enum upstream_err err, int code)
{
	struct exchange *ex = start_ex(put_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	send_big_body(ex);
	if (end)
		x_end(ex, &reqh);
	up_fail(streams[0], err, code);
	ck_assert_int_eq(nopens, 1);
	sink_failed(502);
}

START_TEST(ex_big_body_not_replayed_reset)
{
	big_body_fails(1, UPSTREAM_RESET, 0);
}
END_TEST

START_TEST(ex_big_body_not_replayed_stale)
{
	big_body_fails(0, UPSTREAM_STALE, 0);
}
END_TEST

START_TEST(ex_big_body_not_replayed_connect)
{
	/*
	 * Body bytes are buffered while the connect is pending; when it fails,
	 * the next backend would get the request without the bytes the replay
	 * no longer holds: a truncated request. 502 instead.
	 */
	big_body_fails(1, UPSTREAM_CONNECT, ECONNREFUSED);
	ck_assert_int_eq(be_down(20), 1);
}
END_TEST

START_TEST(ex_body_at_replay_limit_replayed)
{
	static char body[16 * 1024];
	struct exchange *ex = start_ex(put_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	memset(body, 'k', sizeof(body));
	ck_assert_int_eq(x_body(ex, body, sizeof(body)), 0);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_RESET, 0);
	ck_assert_int_eq(nopens, 2);
	ck_assert_uint_eq(streams[1]->sent_len, sizeof(body));
	ck_assert_int_eq(memcmp(streams[1]->sent, body, sizeof(body)), 0);
	x_abort(ex, 499);
}
END_TEST

START_TEST(ex_upgrade_pipe)
{
	struct exchange *ex = start_ex("GET /ws HTTP/1.1\r\nHost: app.test\r\n"
	    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "app.test", 0, NULL);
	struct ustream *s = streams[0];

	w.cfg.access_log = 1;	/* the access entry is written (to stderr) */
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(reqh.upgrade, 1);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(s->ends, 1);
	up_sent(s);		/* the request head went out: nothing to finish yet */
	ck_assert_int_eq(up_head(s, mkresp(101, -1)), 0);
	ck_assert_int_eq(sk.heads, 1);
	ck_assert_uint_eq(sk.head_status[0], 101);
	ck_assert_int_eq(sk.head_nobody[0], 1);
	/* Raw bytes both ways. */
	ck_assert_int_eq(x_body_s(ex, "ping"), 0);
	ck_assert_uint_eq(s->sent_len, 4);
	ck_assert_int_eq(memcmp(s->sent, "ping", 4), 0);
	ck_assert_int_eq(up_body(s, "pong"), 0);
	ck_assert_uint_eq(sk.body_len, 4);
	ck_assert_int_eq(memcmp(sk.body, "pong", 4), 0);
	/* The client half-closes: end toward the backend. */
	ck_assert_int_eq(x_end(ex, NULL), 0);
	ck_assert_int_eq(s->ends, 2);
	/* The backend half-closes: shut toward the client, not the end yet. */
	up_end(s, NULL);
	ck_assert_int_eq(sk.shuts, 1);
	ck_assert_int_eq(sk.ends, 0);
	/* The client's half-close reached the backend: now the end, once. */
	up_sent(s);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_ptr_null(sk.end_resp);
	ck_assert_int_eq(sk.fails, 0);
	ck_assert_int_eq(s->closed, 1);
	spin();
	ck_assert_int_eq(sk.ends, 1);
}
END_TEST

START_TEST(ex_upgrade_pipe_other_order)
{
	struct exchange *ex = start_ex("GET /ws HTTP/1.1\r\nHost: app.test\r\n"
	    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "app.test", 0, NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	ck_assert_int_eq(up_head(s, mkresp(101, -1)), 0);
	/* No max_body in a pipe, and bytes after the 101 are never replayed. */
	ck_assert_int_eq(x_body_s(ex, "client-bytes"), 0);
	ck_assert_int_eq(x_end(ex, NULL), 0);
	up_sent(s);
	ck_assert_int_eq(sk.ends, 0);
	ck_assert_int_eq(sk.shuts, 0);
	ck_assert_int_eq(up_body(s, "last"), 0);
	up_end(s, NULL);
	ck_assert_int_eq(sk.shuts, 1);
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_int_eq(s->closed, 1);
}
END_TEST

START_TEST(ex_upgrade_timeout_cuts)
{
	struct exchange *ex;
	uint64_t deadline;

	w.cfg.upgrade_timeout_ms = 60;
	ex = start_ex("GET /ws HTTP/1.1\r\nHost: app.test\r\n"
	    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_head(streams[0], mkresp(101, -1));
	deadline = util_now_ms() + 3000;
	while (sk.fails == 0 && util_now_ms() < deadline)
		ck_assert_int_eq(ev_run_once(w.loop, 100), 0);
	sink_failed(0);	/* the 101 went out: a cut */
	ck_assert_int_eq(streams[0]->closed, 1);
}
END_TEST

START_TEST(ex_fail_before_head)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_BROKEN, 0);
	ck_assert_int_eq(nopens, 1);
	sink_failed(502);
	ck_assert_int_eq(streams[0]->closed, 1);
}
END_TEST

START_TEST(ex_fail_after_head_cuts)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_head(streams[0], mkresp(200, 100));
	up_body(streams[0], "partial");
	/* The backend died within the response. */
	up_fail(streams[0], UPSTREAM_BROKEN, 0);
	ck_assert_int_eq(nopens, 1);
	sink_failed(0);
	ck_assert_int_eq(sk.ends, 0);
}
END_TEST

START_TEST(ex_abort_from_client)
{
	struct exchange *ex = start_ex(post_req, "app.test", 0, NULL);
	struct ustream *s = streams[0];

	ck_assert_ptr_nonnull(ex);
	x_body_s(ex, "abc");
	up_head(s, mkresp(200, -1));
	ck_assert_int_eq(sk.heads, 1);
	x_abort(ex, 499);
	ck_assert_int_eq(s->closed, 1);
	spin();
	/* No callback after the abort. */
	ck_assert_int_eq(sk.heads, 1);
	ck_assert_int_eq(sk.ends + sk.fails + sk.shuts + sk.mores, 0);
	ck_assert_int_eq(nopens, 1);
}
END_TEST

START_TEST(ex_abort_before_any_answer)
{
	struct exchange *ex = start_ex(get_req, "app.test", 0, NULL);

	ck_assert_ptr_nonnull(ex);
	x_abort(ex, 0);		/* the session answers itself (a timeout of its own) */
	ck_assert_int_eq(streams[0]->closed, 1);
	spin();
	ck_assert_int_eq(sk.heads + sk.ends + sk.fails, 0);
}
END_TEST

START_TEST(ex_max_body_413)
{
	struct exchange *ex = start_ex(post_req, "app.test", 10, NULL);
	struct ustream *s = streams[0];

	w.cfg.access_log = 1;	/* the access entry is written (to stderr) */
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "123456"), 0);
	/* Crossing the limit: taken (and dropped), the 413 comes from the loop. */
	ck_assert_int_eq(x_body_s(ex, "789012"), 0);
	ck_assert_int_eq(sk.fails, 0);
	ck_assert_uint_eq(s->sent_len, 6);
	/* The rest is swallowed until the answer goes out. */
	ck_assert_uint_eq(x_room(ex), BUF_SIZE);
	ck_assert_int_eq(x_body_s(ex, "more"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	ck_assert_int_eq(s->ends, 0);
	ck_assert_uint_eq(s->sent_len, 6);
	spin();
	sink_failed(413);
	ck_assert_int_eq(s->closed, 1);
}
END_TEST

START_TEST(ex_max_body_exact_is_fine)
{
	struct exchange *ex = start_ex(post_req, "app.test", 10, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "1234567890"), 0);
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	spin();
	ck_assert_int_eq(sk.fails, 0);
	ck_assert_uint_eq(streams[0]->sent_len, 10);
	ck_assert_int_eq(streams[0]->ends, 1);
	x_abort(ex, 499);
}
END_TEST

START_TEST(ex_max_body_after_head_cuts)
{
	struct exchange *ex = start_ex(post_req, "app.test", 4, NULL);

	ck_assert_ptr_nonnull(ex);
	up_head(streams[0], mkresp(200, -1));
	ck_assert_int_eq(x_body_s(ex, "12345"), 0);
	spin();
	sink_failed(0);
}
END_TEST

static void
run_until_fail(int max_ms)
{
	uint64_t deadline = util_now_ms() + (uint64_t)max_ms;

	while (sk.fails == 0 && sk.ends == 0 && util_now_ms() < deadline)
		ck_assert_int_eq(ev_run_once(w.loop, 100), 0);
}

START_TEST(ex_response_timeout_504)
{
	struct exchange *ex;
	uint64_t t0;

	w.cfg.access_log = 1;	/* the access entry is written (to stderr) */
	w.cfg.response_timeout_ms = 80;
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	t0 = util_now_ms();
	run_until_fail(3000);
	sink_failed(504);
	ck_assert_uint_ge(util_now_ms() - t0, 60);
	ck_assert_int_eq(streams[0]->closed, 1);
	ck_assert_int_eq(nopens, 1);
}
END_TEST

START_TEST(ex_timer_waits_for_connect)
{
	/* While the upstream connects, its own connect timeout rules; the response clock starts at more. */
	struct exchange *ex;
	uint64_t t0;

	w.cfg.response_timeout_ms = 50;
	next_connecting = 1;
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(streams[0]->connecting, 1);
	x_end(ex, &reqh);
	t0 = util_now_ms();
	while (util_now_ms() - t0 < 200)
		ck_assert_int_eq(ev_run_once(w.loop, 50), 0);
	ck_assert_int_eq(sk.fails, 0);
	/* Connected: the upstream says more, and the response timeout runs from here. */
	streams[0]->connecting = 0;
	up_more(streams[0]);
	ck_assert_int_eq(sk.mores, 0);	/* the request was complete already */
	run_until_fail(3000);
	sink_failed(504);
}
END_TEST

START_TEST(ex_idle_timeout_after_head_cuts)
{
	struct exchange *ex;

	w.cfg.idle_timeout_ms = 80;
	ex = start_ex(get_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_head(streams[0], mkresp(200, 100));
	up_body(streams[0], "some");
	run_until_fail(3000);
	sink_failed(0);
	ck_assert_int_eq(streams[0]->closed, 1);
}
END_TEST

/* --- gRPC calls: the idle timeout from the start, and grpc-timeout as a deadline */

static const char grpc_req[] = "POST /pkg.Svc/Call HTTP/1.1\r\nHost: app.test\r\n"
    "Content-Type: application/grpc\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n";
static const char grpc_300m_req[] = "POST /pkg.Svc/Call HTTP/1.1\r\nHost: app.test\r\n"
    "Content-Type: application/grpc+proto\r\ngrpc-timeout: 300m\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
static const char grpc_bad_timeout_req[] = "POST /pkg.Svc/Call HTTP/1.1\r\nHost: app.test\r\n"
    "Content-Type: application/grpc\r\ngrpc-timeout: 300ms\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

/* Runs the loop for ms, failing if the sink heard the end of the exchange meanwhile. */
static void
run_quiet(int ms)
{
	uint64_t t0 = util_now_ms();

	while (util_now_ms() - t0 < (uint64_t)ms) {
		ck_assert_int_eq(ev_run_once(w.loop, 20), 0);
		ck_assert_int_eq(sk.fails + sk.ends, 0);
	}
}

START_TEST(ex_grpc_not_cut_by_response_timeout)
{
	/* No first byte for 400 ms: a plain request would have had its 504 at 80 ms. */
	struct exchange *ex;
	uint64_t t0;

	w.cfg.response_timeout_ms = 80;
	w.cfg.idle_timeout_ms = 600;
	ex = start_ex(grpc_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	ck_assert_str_eq(field(streams[0]->req, "TE"), "trailers");
	x_end(ex, &reqh);
	t0 = util_now_ms();
	run_quiet(400);
	up_head(streams[0], mkresp(200, -1));
	ck_assert_int_eq(sk.heads, 1);
	up_body(streams[0], "frame");
	up_end(streams[0], mkresp(200, -1));
	ck_assert_int_eq(sk.ends, 1);
	ck_assert_uint_ge(util_now_ms() - t0, 400);
}
END_TEST

START_TEST(ex_grpc_idle_timeout_before_head_504)
{
	/* Silence both ways is still bounded: the idle timeout, answered 504 (a gRPC status). */
	struct exchange *ex;
	uint64_t t0;

	w.cfg.response_timeout_ms = 5000;
	w.cfg.idle_timeout_ms = 150;
	ex = start_ex(grpc_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	t0 = util_now_ms();
	run_until_fail(3000);
	sink_failed(504);
	ck_assert_uint_ge(util_now_ms() - t0, 120);
}
END_TEST

START_TEST(ex_grpc_request_bytes_keep_it_alive)
{
	/* A client stream sending every 50 ms outlives a 150 ms idle timeout, then idles out. */
	struct exchange *ex;
	uint64_t t0;
	int i;

	w.cfg.response_timeout_ms = 5000;
	w.cfg.idle_timeout_ms = 150;
	ex = start_ex(grpc_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	t0 = util_now_ms();
	for (i = 0; i < 8; i++) {
		run_quiet(50);
		ck_assert_int_eq(x_body_s(ex, "msg"), 0);
	}
	ck_assert_uint_ge(util_now_ms() - t0, 400);
	run_until_fail(3000);
	sink_failed(504);
	ck_assert_uint_eq(streams[0]->sent_len, 24);
}
END_TEST

START_TEST(ex_grpc_timeout_is_the_deadline)
{
	struct exchange *ex;
	uint64_t t0;

	w.cfg.access_log = 1;
	w.cfg.response_timeout_ms = 5000;
	w.cfg.idle_timeout_ms = 5000;
	ex = start_ex(grpc_300m_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	/* The header goes to the backend unchanged. */
	ck_assert_str_eq(field(streams[0]->req, "grpc-timeout"), "300m");
	x_end(ex, &reqh);
	t0 = util_now_ms();
	run_until_fail(3000);
	sink_failed(504);
	ck_assert_uint_ge(util_now_ms() - t0, 250);
	ck_assert_uint_lt(util_now_ms() - t0, 2000);
}
END_TEST

START_TEST(ex_grpc_deadline_not_moved_by_progress)
{
	/* Bytes every 50 ms reset the idle clock, not the call's deadline: cut at 300 ms. */
	struct exchange *ex;
	uint64_t t0;
	int i;

	w.cfg.idle_timeout_ms = 5000;
	ex = start_ex(grpc_300m_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	t0 = util_now_ms();
	up_head(streams[0], mkresp(200, -1));
	for (i = 0; i < 100 && sk.fails == 0; i++) {
		uint64_t t1 = util_now_ms();

		while (sk.fails == 0 && util_now_ms() - t1 < 50)
			ck_assert_int_eq(ev_run_once(w.loop, 20), 0);
		if (sk.fails == 0)
			up_body(streams[0], "m");
	}
	sink_failed(0);		/* the head went out: the stream is cut */
	ck_assert_uint_ge(util_now_ms() - t0, 250);
	ck_assert_uint_lt(util_now_ms() - t0, 2000);
}
END_TEST

START_TEST(ex_grpc_deadline_while_connecting)
{
	/* The connect timeout (3 s here) does not outlast the call's 300 ms. */
	struct exchange *ex;
	uint64_t t0;

	next_connecting = 1;
	ex = start_ex(grpc_300m_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(streams[0]->connecting, 1);
	x_end(ex, &reqh);
	t0 = util_now_ms();
	run_until_fail(3000);
	sink_failed(504);
	ck_assert_uint_ge(util_now_ms() - t0, 250);
	ck_assert_uint_lt(util_now_ms() - t0, 2000);
}
END_TEST

START_TEST(ex_grpc_invalid_timeout_ignored)
{
	/* "300ms" is no grpc-timeout: no deadline, the idle timeout only (passed on as it came). */
	struct exchange *ex;

	w.cfg.response_timeout_ms = 80;
	w.cfg.idle_timeout_ms = 500;
	ex = start_ex(grpc_bad_timeout_req, "app.test", 0, NULL);
	ck_assert_ptr_nonnull(ex);
	ck_assert_str_eq(field(streams[0]->req, "grpc-timeout"), "300ms");
	x_end(ex, &reqh);
	run_quiet(380);
	run_until_fail(3000);
	sink_failed(504);
}
END_TEST

START_TEST(ex_trusted_xff_kept)
{
	/* A trusted peer's X-Forwarded-For chain is kept and extended. */
	const struct snap_route *route = snap_lookup(snap, "one.test", 8);
	struct exchange *ex;
	unsigned st;

	tw_parse_head(&reqh, "GET / HTTP/1.1\r\nHost: one.test\r\nX-Forwarded-For: 10.1.1.1\r\n"
	    "X-Request-Id: abc-1\r\nTE: trailers\r\n\r\n");
	ex = exchange_start(&w, &(struct exchange_req){ &reqh, snap_ref(snap), route, "one.test",
	    "192.0.2.9", "https", 1, 1, util_now_us(), 0, 0, NULL }, &fake_ops, &fake_sink, &sk, &st);
	ck_assert_ptr_nonnull(ex);
	ck_assert_uint_eq(streams[0]->backend_id, 23);
	ck_assert_str_eq(field(streams[0]->req, "x-forwarded-for"), "10.1.1.1, 192.0.2.9");
	ck_assert_str_eq(field(streams[0]->req, "x-forwarded-proto"), "https");
	ck_assert_str_eq(field(streams[0]->req, "x-request-id"), "abc-1");
	ck_assert_str_eq(field(streams[0]->req, "te"), "trailers");
	x_abort(ex, 499);
}
END_TEST

/* --- pinned (the tunnel process's hop) */

static struct exchange *
start_pinned(const char *text, unsigned *status)
{
	struct upstream_tunnel to = { .name = "app1" };
	struct exchange *ex;
	unsigned st = 0;

	tw_parse_head(&reqh, text);
	in_ex_call = 1;
	ex = exchange_start_pinned(&w, &(struct exchange_req){ .head = &reqh, .host = "app.test",
	    .client_ip = "", .proto = "http", .start_us = util_now_us() }, &to, &fake_ops,
	    &fake_sink, &sk, &st);
	in_ex_call = 0;
	if (status != NULL)
		*status = st;
	return ex;
}

START_TEST(ex_pinned_no_transform)
{
	struct exchange *ex = start_pinned(get_req, NULL);
	struct ustream *s;
	struct msg_head *resp;

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(nopens, 1);
	s = streams[0];
	ck_assert_uint_eq(s->backend_id, 0);
	ck_assert_uint_eq(s->connect_ms, 3000);	/* the global timeout: there is no route */
	/* The worker before the hop transformed it: nothing is added or removed here. */
	ck_assert_str_eq(field(s->req, "x-forwarded-for"), "10.9.9.9");
	ck_assert_ptr_null(field(s->req, "x-request-id"));
	ck_assert_ptr_nonnull(field(s->req, "x-hop"));
	ck_assert_int_eq(x_end(ex, &reqh), 0);
	resp = mkresp(200, 2);
	ck_assert_int_eq(up_head(s, resp), 0);
	ck_assert_ptr_null(field(resp, "strict-transport-security"));
	ck_assert_int_eq(up_body(s, "ok"), 0);
	up_end(s, resp);
	ck_assert_int_eq(sk.ends, 1);
}
END_TEST

START_TEST(ex_pinned_nothing_attached_503)
{
	unsigned status = 0;

	pin_errno = ENOENT;
	ck_assert_ptr_null(start_pinned(get_req, &status));
	ck_assert_uint_eq(status, 503);
	ck_assert_int_eq(nopens, 0);
}
END_TEST

START_TEST(ex_pinned_no_slot_503)
{
	struct exchange *ex = start_pinned(get_req, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_CONNECT, EBUSY);
	sink_failed(503);
	ck_assert_int_eq(nopens, 1);
}
END_TEST

START_TEST(ex_pinned_refused_is_retried_fresh)
{
	struct exchange *ex = start_pinned(post_req, NULL);

	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(x_body_s(ex, "abc"), 0);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_STALE, 0);
	ck_assert_int_eq(nopens, 2);
	ck_assert_int_eq(streams[1]->fresh, 1);
	ck_assert_uint_eq(streams[1]->sent_len, 3);	/* the body replayed */
	ck_assert_int_eq(streams[1]->ends, 1);
	ck_assert_int_eq(up_head(streams[1], mkresp(204, -1)), 0);
	up_end(streams[1], &resps[0]);
	ck_assert_int_eq(sk.ends, 1);
}
END_TEST

START_TEST(ex_pinned_lost_before_head_is_a_reset)
{
	/* Even a GET: the worker beyond the hop decides, with its 502. */
	struct exchange *ex = start_pinned(get_req, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_RESET, 0);
	sink_failed(0);
	ck_assert_int_eq(nopens, 1);
}
END_TEST

START_TEST(ex_pinned_retry_refused_again_is_a_reset)
{
	struct exchange *ex = start_pinned(get_req, NULL);

	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	up_fail(streams[0], UPSTREAM_STALE, 0);
	pin_errno = ENOENT;	/* the retry finds nobody: 503 */
	up_fail(streams[1], UPSTREAM_STALE, 0);
	sink_failed(503);
}
END_TEST

START_TEST(ex_pinned_no_head_in_time_504)
{
	struct exchange *ex;

	w.cfg.response_timeout_ms = 50;
	ex = start_pinned(get_req, NULL);
	ck_assert_ptr_nonnull(ex);
	x_end(ex, &reqh);
	run_until_fail(3000);
	sink_failed(504);
}
END_TEST

Suite *
suite_exchange(void)
{
	Suite *s = suite_create("exchange");
	TCase *tc = tcase_create("exchange");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, ex_forwards_and_streams);
	tcase_add_test(tc, ex_delay_opens_later);
	tcase_add_test(tc, ex_delay_keeps_the_end);
	tcase_add_test(tc, ex_delay_aborted);
	tcase_add_test(tc, ex_request_trailers_and_head);
	tcase_add_test(tc, ex_head_request_has_no_body);
	tcase_add_test(tc, ex_complete_head_has_no_body);
	tcase_add_test(tc, ex_backpressure_both_ways);
	tcase_add_test(tc, ex_stale_retried_fresh_with_replay);
	tcase_add_test(tc, ex_stale_before_request_end);
	tcase_add_test(tc, ex_reset_get_retried_once);
	tcase_add_test(tc, ex_reset_post_not_retried);
	tcase_add_test(tc, ex_put_reset_replays_body);
	tcase_add_test(tc, ex_connect_moves_to_next_backend);
	tcase_add_test(tc, ex_connect_local_shortage_not_down);
	tcase_add_test(tc, ex_down_backend_skipped_next_time);
	tcase_add_test(tc, ex_open_fails_at_once);
	tcase_add_test(tc, ex_all_backends_fail);
	tcase_add_test(tc, ex_tunnel_hop_down_503);
	tcase_add_test(tc, ex_tunnel_upgrade_skipped);
	tcase_add_test(tc, ex_all_refused_at_start);
	tcase_add_test(tc, ex_big_body_not_replayed_reset);
	tcase_add_test(tc, ex_big_body_not_replayed_stale);
	tcase_add_test(tc, ex_big_body_not_replayed_connect);
	tcase_add_test(tc, ex_body_at_replay_limit_replayed);
	tcase_add_test(tc, ex_upgrade_pipe);
	tcase_add_test(tc, ex_upgrade_pipe_other_order);
	tcase_add_test(tc, ex_upgrade_timeout_cuts);
	tcase_add_test(tc, ex_fail_before_head);
	tcase_add_test(tc, ex_fail_after_head_cuts);
	tcase_add_test(tc, ex_abort_from_client);
	tcase_add_test(tc, ex_abort_before_any_answer);
	tcase_add_test(tc, ex_max_body_413);
	tcase_add_test(tc, ex_max_body_exact_is_fine);
	tcase_add_test(tc, ex_max_body_after_head_cuts);
	tcase_add_test(tc, ex_response_timeout_504);
	tcase_add_test(tc, ex_timer_waits_for_connect);
	tcase_add_test(tc, ex_idle_timeout_after_head_cuts);
	tcase_add_test(tc, ex_trusted_xff_kept);
	tcase_add_test(tc, ex_compress_stage_waits_for_room);
	tcase_add_test(tc, ex_direct_body_reaches_sink);
	tcase_add_test(tc, ex_direct_body_not_past_stage);
	tcase_add_test(tc, ex_grpc_not_cut_by_response_timeout);
	tcase_add_test(tc, ex_grpc_idle_timeout_before_head_504);
	tcase_add_test(tc, ex_grpc_request_bytes_keep_it_alive);
	tcase_add_test(tc, ex_grpc_timeout_is_the_deadline);
	tcase_add_test(tc, ex_grpc_deadline_not_moved_by_progress);
	tcase_add_test(tc, ex_grpc_deadline_while_connecting);
	tcase_add_test(tc, ex_grpc_invalid_timeout_ignored);
	tcase_add_test(tc, ex_pinned_no_transform);
	tcase_add_test(tc, ex_pinned_nothing_attached_503);
	tcase_add_test(tc, ex_pinned_no_slot_503);
	tcase_add_test(tc, ex_pinned_refused_is_retried_fresh);
	tcase_add_test(tc, ex_pinned_lost_before_head_is_a_reset);
	tcase_add_test(tc, ex_pinned_retry_refused_again_is_a_reset);
	tcase_add_test(tc, ex_pinned_no_head_in_time_504);
	suite_add_tcase(s, tc);
	return s;
}
