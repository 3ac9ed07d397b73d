/*
 * Unit tests for worker/request.c, the request step, on a worker set up by
 * hand: a loop, a real snapshot, a TLS keyring of generated certificates
 * for the port-80 redirects, and a listening socket as every backend so an
 * exchange can start. Covered: the host (missing, bad, absolute-form),
 * CONNECT, ACME challenge answers, the port-80 redirect, HSTS, 404 and the
 * welcome page, 502, 413 and the start of an exchange; gRPC calls over
 * HTTP/2 answered with a trailers-only gRPC status instead of a page.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "master/snapbuild.h"
#include "share/evloop.h"
#include "share/snap.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/acmechallenge.h"
#include "worker/context.h"
#include "worker/exchange.h"
#include "worker/forward.h"
#include "worker/http1.h"
#include "worker/request.h"
#include "worker/tls.h"
#include "worker/tlsclient.h"
#include "worker/upstream.h"

/* --- certificates for the redirect tests: a default, app (+ www.app), api */

struct rq_cert {
	char *chain, *key;
	size_t chain_len, key_len;
};

/* A self-signed ECDSA certificate for cn with subjectAltName san ("DNS:a,DNS:b"). */
static struct rq_cert
rq_cert(const char *cn, const char *san)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct rq_cert c;
	X509 *x;
	BIO *b;

	ck_assert_ptr_nonnull(k);
	x = tw_x509(k, cn, san, 90);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	c.chain = tw_bio_take(b, &c.chain_len);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	c.key = tw_bio_take(b, &c.key_len);
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

enum { RC_DEFAULT, RC_APP, RC_API, RC_N };

static struct rq_cert certs[RC_N];

static void
certs_setup(void)
{
	certs[RC_DEFAULT] = rq_cert("haloyd-default", "DNS:haloyd-default.invalid");
	certs[RC_APP] = rq_cert("app.example.com", "DNS:app.example.com,DNS:www.app.example.com");
	certs[RC_API] = rq_cert("api.example.com", "DNS:api.example.com");
}

static void
certs_teardown(void)
{
	int i;

	for (i = 0; i < RC_N; i++) {
		free(certs[i].chain);
		free(certs[i].key);
	}
}

/* --- the snapshot: every backend is the test's listening socket */

enum { R_APP, R_API, R_PLAIN, R_EMPTY, R_SMALL, R_BIG, R_H2C, R_H2, R_TLS, R_N };

static const struct snapb_host rq_hosts[] = {
	{ .id = 10, .name = "app.example.com", .route = R_APP, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 11, .name = "www.app.example.com", .route = R_APP, .kind = SNAP_HOST_ALIAS, NULL },
	{ .id = 12, .name = "api.example.com", .route = R_API, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 13, .name = "api.example.org", .route = R_API, .kind = SNAP_HOST_ALIAS, NULL },
	{ .id = 14, .name = "plain.example.com", .route = R_PLAIN, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 15, .name = "empty.example.com", .route = R_EMPTY, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 16, .name = "small.example.com", .route = R_SMALL, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 17, .name = "big.example.com", .route = R_BIG, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 18, .name = "h2c.example.com", .route = R_H2C, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 19, .name = "h2.example.com", .route = R_H2, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 20, .name = "tls.example.com", .route = R_TLS, .kind = SNAP_HOST_EXACT, NULL },
};

static const struct snapb_chal rq_chals[] = {
	{ "tok-123_abc", "tok-123_abc.thumbprint" },
};

#define KEYAUTH "tok-123_abc.thumbprint"
#define CHAL_PATH ACMECHAL_PREFIX "tok-123_abc"

static struct worker w;
static int lfd = -1;		/* the backend: connects complete into its backlog */
static uint16_t lport;

/* A snapshot with the routes above (none when noroutes), default route def. */
static struct snap *
rq_snap(uint32_t def, int noroutes)
{
	const struct snapb_route routes[R_N] = {
		[R_APP] = { .id = 1, .name = "app.example.com", .be_first = 0, .be_count = 1 },
		[R_API] = { .id = 2, .name = "api.example.com", .be_first = 1, .be_count = 1,
		    .flags = SNAP_ROUTE_HSTS },
		[R_PLAIN] = { .id = 3, .name = "plain.example.com", .be_first = 2, .be_count = 1,
		    .flags = SNAP_ROUTE_NO_HTTPS_REDIRECT },
		[R_EMPTY] = { .id = 4, .name = "empty.example.com", .be_first = 5, .be_count = 0 },
		[R_SMALL] = { .id = 5, .name = "small.example.com", .be_first = 3, .be_count = 1,
		    .max_body = 10 },
		[R_BIG] = { .id = 6, .name = "big.example.com", .be_first = 4, .be_count = 1,
		    .max_body = 5000 },
		[R_H2C] = { .id = 7, .name = "h2c.example.com", .be_first = 5, .be_count = 1,
		    .proto = SNAP_PROTO_H2C },
		[R_H2] = { .id = 8, .name = "h2.example.com", .be_first = 6, .be_count = 1,
		    .proto = SNAP_PROTO_H2 },
		[R_TLS] = { .id = 9, .name = "tls.example.com", .be_first = 7, .be_count = 1,
		    .proto = SNAP_PROTO_HTTPS, .backend_sni = "backend.test" },
	};
	const struct snapb_backend backends[] = {
		{ 20, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 21, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 22, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 23, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 24, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 25, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 26, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
		{ 27, AF_INET, lport, { 127, 0, 0, 1 }, 0, NULL },
	};
	struct snapb_input in = {
		.routes = routes, .nroutes = noroutes ? 0 : R_N,
		.hosts = rq_hosts, .nhosts = noroutes ? 0 : sizeof(rq_hosts) / sizeof(rq_hosts[0]),
		.backends = backends, .nbackends = noroutes ? 0 : 8,
		.chals = rq_chals, .nchals = 1, .default_route = def, .generation = 1,
	};

	return tw_snap(&in);
}

/* Replaces the worker's snapshot. */
static void
use_snap(struct snap *s)
{
	snap_unref(w.snap);
	w.snap = s;
}

/* --- the worker */

static struct msg_head req;
static struct h1 *parser;
static struct request r;

/* The exchange never calls its sink here: it is aborted before the loop runs. */
static int
sink_head(void *arg, struct msg_head *resp, int nobody)
{
	(void)arg;
	(void)resp;
	(void)nobody;
	ck_abort_msg("sink head");
	return -1;
}

static int
sink_body(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	ck_abort_msg("sink body");
	return -1;
}

static void
sink_shut(void *arg)
{
	(void)arg;
	ck_abort_msg("sink shut");
}

static void
sink_end(void *arg, struct msg_head *resp)
{
	(void)arg;
	(void)resp;
	ck_abort_msg("sink end");
}

static void
sink_fail(void *arg, unsigned status)
{
	(void)arg;
	ck_abort_msg("sink fail %u", status);
}

static size_t
sink_room(void *arg)
{
	(void)arg;
	return BUF_SIZE;
}

static void
sink_more(void *arg)
{
	(void)arg;
}

static const struct sink_ops sink = {
	sink_head, sink_body, sink_shut, sink_end, sink_fail, sink_room, sink_more, NULL,
};

static const struct request_peer peer_plain = { "192.0.2.7", 0, 0, NULL };
static const struct request_peer peer_tls = { "192.0.2.7", 0, 1, NULL };

static void
setup(void)
{
	tw_worker_init(&w);
	w.cfg.connect_timeout_ms = 5000;
	w.cfg.response_timeout_ms = 5000;
	w.cfg.idle_timeout_ms = 5000;
	w.cfg.upgrade_timeout_ms = 5000;
	w.cfg.backend_down_ms = 1000;
	w.cfg.max_body = 1000;
	w.cfg.access_log = 0;
	ck_assert_int_eq(h1client_pools_init(&w), 0);
	ck_assert_int_eq(h2client_pools_init(&w), 0);
	ck_assert_int_eq(tlsclient_init(&w), 0);

	lfd = tw_listen(0, 16, &lport);

	w.snap = rq_snap(SNAP_NONE, 0);
	msg_init(&req);
	parser = h1_new(H1_REQUEST, &req, &tw_nop_events, NULL);
	ck_assert_ptr_nonnull(parser);
	memset(&r, 0, sizeof(r));
	msg_init(&r.ans.head);
}

/* Ends what the last step started: an exchange is aborted and freed by the loop. */
static void
done(void)
{
	if (r.ex != NULL) {
		exchange_abort(r.ex, 0);
		r.ex = NULL;
		ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
		ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
	}
	request_answer_free(&r.ans);
}

static void
teardown(void)
{
	done();
	h1_free(parser);
	parser = NULL;
	msg_free(&req);
	snap_unref(w.snap);
	w.snap = NULL;
	tls_free(w.tls);
	w.tls = NULL;
	h1client_pools_free(&w);
	h2client_pools_free(&w);
	ev_run_once(w.loop, 0);		/* the HTTP/2 sessions' deferred frees */
	tlsclient_free(&w);
	balance_free(&w.balance);
	buf_pool_clear(&w.bufs);
	errpage_free(&w.errpages);
	ev_loop_free(w.loop);
	w.loop = NULL;
	close(lfd);
	lfd = -1;
}

/* Parses the head raw (a body, if any, is not sent) and runs the step for it. */
static void
step_as(const char *raw, const struct request_peer *peer)
{
	ssize_t n;
	int rc;

	done();
	h1_reset(parser);
	n = h1_feed(parser, raw, strlen(raw));
	ck_assert_msg(n == (ssize_t)strlen(raw), "parse: %zd (%u)", n, h1_error(parser));
	ck_assert_int_eq(h1_head_done(parser), 1);
	memset(&r.host, 'x', sizeof(r.host));
	rc = request_step(&w, peer, &req, util_now_us(), &sink, NULL, &r);
	if (rc != 0)
		r.ex = NULL;
	ck_assert_int_eq(rc, 0);
}

static void
step(const char *raw)
{
	step_as(raw, &peer_plain);
}

/* The answer's status, 0 when an exchange was started. */
static unsigned
status(void)
{
	if (r.ex != NULL)
		return 0;
	return r.ans.head.status;
}

static const char *
ans_field(const char *name)
{
	const struct msg_field *f = msg_find(&r.ans.head, name);

	return f != NULL ? msg_value(&r.ans.head, f) : NULL;
}

/* The answer encoded as HTTP/1.1 (the way h1server writes it), head and body. */
static const char *
ans_wire(void)
{
	static char out[BUF_SIZE + 1];
	struct buf_pool pool = { .size = BUF_SIZE };
	struct buf b = { 0 };

	ck_assert_int_eq(buf_get(&pool, &b), 0);
	ck_assert_int_eq(h1_write_response(&b, &r.ans.head, H1_FRAME_LENGTH, !r.ans.close, 1), 0);
	ck_assert_uint_le(r.ans.body_len, buf_room(&b));
	if (r.ans.body_len > 0)
		buf_append(&b, r.ans.body, r.ans.body_len);
	memcpy(out, buf_head(&b), b.len);
	out[b.len] = '\0';
	buf_put(&pool, &b);
	buf_pool_clear(&pool);
	return out;
}

/* wire with its Date line taken out (asserted to be there, once, in its format). */
static const char *
wire_without_date(const char *wire)
{
	static char out[BUF_SIZE + 1];
	const char *d = strstr(wire, "\r\nDate: ");

	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_null(strstr(d + 2, "\r\nDate: "));
	ck_assert_int_eq(memcmp(d + 2 + 6 + HTTPDATE_LEN - 4, " GMT\r\n", 6), 0);
	snprintf(out, sizeof(out), "%.*s%s", (int)(d - wire), wire, d + 2 + 6 + HTTPDATE_LEN);
	return out;
}

/* The status page errpage_body gives for status (or the welcome page). */
static void
assert_page(unsigned st, enum errpage_kind kind)
{
	char buf[1024];
	size_t len;
	const char *want = errpage_body(NULL, st, kind, buf, sizeof(buf), &len);

	ck_assert_uint_eq(status(), st);
	ck_assert_str_eq(msg_s(&r.ans.head, r.ans.head.reason), errpage_reason(st));
	ck_assert_str_eq(ans_field("content-type"), "text/html; charset=utf-8");
	ck_assert_str_eq(ans_field("cache-control"), "no-store");
	ck_assert_int_eq(r.ans.head.has_length, 1);
	ck_assert_uint_eq(r.ans.head.length, len);
	ck_assert_uint_eq(r.ans.body_len, len);
	ck_assert_ptr_nonnull(r.ans.body);
	ck_assert_int_eq(memcmp(r.ans.body, want, len), 0);
}

/* --- the host */

START_TEST(missing_host)
{
	step("GET / HTTP/1.1\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	ck_assert_int_eq(r.ans.close, 1);
	ck_assert_str_eq(r.host, "");
	ck_assert_ptr_null(r.ex);
	/* An empty Host is no host either. */
	step("GET / HTTP/1.1\r\nHost:\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	/* HTTP/1.0 needs none: routed like any name (no default route here: 404). */
	step("GET / HTTP/1.0\r\n\r\n");
	assert_page(404, ERRPAGE_STATUS);
	ck_assert_int_eq(r.ans.close, 0);
	ck_assert_str_eq(r.host, "");
	/* With a default route it is forwarded there. */
	use_snap(rq_snap(R_APP, 0));
	step("GET / HTTP/1.0\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_str_eq(r.host, "");
}
END_TEST

START_TEST(bad_host)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a..example.com\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: -app.example.com\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.example.com:99999\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: app.example.com:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: user@app.example.com\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: app/example\r\n\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		step(bad[i]);
		ck_assert_msg(status() == 400, "%s: %u", bad[i], status());
		ck_assert_int_eq(r.ans.close, 1);
	}
}
END_TEST

START_TEST(host_normalised)
{
	step("GET / HTTP/1.1\r\nHost: APP.Example.COM.:8080\r\n\r\n");
	ck_assert_str_eq(r.host, "app.example.com");
	ck_assert_ptr_nonnull(r.ex);
}
END_TEST

/* RFC 9112 3.2: more than one Host field is a bad request (which one would the backend use?). */
START_TEST(duplicate_host)
{
	step("GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: api.example.com\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	step("GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: app.example.com\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
}
END_TEST

START_TEST(absolute_form)
{
	/* Another host than Host's: refused. */
	step("GET http://api.example.com/p HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	step("GET https://app.example.com.evil/p HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	/* Userinfo, an empty or invalid authority: refused. */
	step("GET http://u@app.example.com/p HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	step("GET http:///p HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);

	/* The same host (any case, a port): forwarded in origin-form. */
	step("GET http://APP.example.com:80/p/q?x=1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_str_eq(r.host, "app.example.com");
	ck_assert_str_eq(msg_s(&req, req.path), "/p/q?x=1");
	ck_assert_uint_eq(req.path.len, 8);
	step("GET HTTPS://app.example.com?x=1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_str_eq(msg_s(&req, req.path), "?x=1");

	/* HTTP/1.0 without Host: the target names the host. */
	step("GET http://app.example.com/z HTTP/1.0\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_str_eq(r.host, "app.example.com");
	ck_assert_str_eq(msg_s(&req, req.path), "/z");
}
END_TEST

/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400 whatever its target. */
START_TEST(absolute_form_needs_host_in_http11)
{
	step("GET http://app.example.com/z HTTP/1.1\r\n\r\n");
	assert_page(400, ERRPAGE_STATUS);
	ck_assert_ptr_null(r.ex);
}
END_TEST

START_TEST(connect_not_implemented)
{
	step("CONNECT app.example.com:443 HTTP/1.1\r\nHost: app.example.com:443\r\n\r\n");
	assert_page(501, ERRPAGE_STATUS);
	ck_assert_int_eq(r.ans.close, 0);
	ck_assert_str_eq(r.host, "app.example.com");
}
END_TEST

/* --- ACME HTTP-01 answers */

START_TEST(acme_challenge_answers)
{
	static const char *const hosts[] = {
		"app.example.com", "empty.example.com", "nowhere.test", "plain.example.com",
	};
	char raw[512];
	size_t i;

	/* For any Host, before routing: even a route without backends or no route at all. */
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", CHAL_PATH, hosts[i]);
		step(raw);
		ck_assert_msg(status() == 200, "%s: %u", hosts[i], status());
		ck_assert_str_eq(ans_field("content-type"), "text/plain");
		ck_assert_uint_eq(r.ans.body_len, strlen(KEYAUTH));
		ck_assert_int_eq(memcmp(r.ans.body, KEYAUTH, strlen(KEYAUTH)), 0);
		ck_assert_uint_eq(r.ans.head.length, strlen(KEYAUTH));
		ck_assert_str_eq(wire_without_date(ans_wire()), "HTTP/1.1 200 OK\r\n"
		    "Content-Type: text/plain\r\nContent-Length: 22\r\n\r\n" KEYAUTH);
	}
	/* HEAD: the length, no body. */
	step("HEAD " CHAL_PATH " HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 200);
	ck_assert_ptr_null(r.ans.body);
	ck_assert_uint_eq(r.ans.body_len, 0);
	ck_assert_str_eq(wire_without_date(ans_wire()),
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n\r\n");
	/* An unknown token: 404, plain and empty. */
	step("GET " ACMECHAL_PREFIX "other HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 404);
	ck_assert_str_eq(ans_field("content-type"), "text/plain");
	ck_assert_uint_eq(r.ans.body_len, 0);
	ck_assert_uint_eq(r.ans.head.length, 0);
	/* A token longer than any published one, and the bare prefix. */
	{
		char longpath[512];

		snprintf(longpath, sizeof(longpath), "GET %s%0200d HTTP/1.1\r\nHost: a.test\r\n\r\n",
		    ACMECHAL_PREFIX, 0);
		step(longpath);
		ck_assert_uint_eq(status(), 404);
	}
	step("GET " ACMECHAL_PREFIX " HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
	ck_assert_uint_eq(status(), 404);
	ck_assert_str_eq(ans_field("content-type"), "text/html; charset=utf-8");
	/* Other methods are not challenge answers: routed as usual. */
	step("POST " CHAL_PATH " HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 0\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	/* No snapshot yet: nothing published, 404. */
	use_snap(NULL);
	step("GET " CHAL_PATH " HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 404);
	ck_assert_str_eq(ans_field("content-type"), "text/plain");
}
END_TEST

START_TEST(head_answers_have_no_body)
{
	char want[64];

	step("HEAD / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
	ck_assert_uint_eq(status(), 404);
	ck_assert_ptr_null(r.ans.body);
	ck_assert_uint_eq(r.ans.body_len, 0);
	ck_assert_int_eq(r.ans.head.has_length, 1);
	ck_assert_uint_gt(r.ans.head.length, 0);
	snprintf(want, sizeof(want), "\r\nContent-Length: %llu\r\n\r\n",
	    (unsigned long long)r.ans.head.length);
	ck_assert_ptr_nonnull(strstr(ans_wire(), want));
	ck_assert_str_eq(strstr(ans_wire(), want), want);	/* nothing after the head */
	/* The same for a 502. */
	step("HEAD / HTTP/1.1\r\nHost: empty.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 502);
	ck_assert_ptr_null(r.ans.body);
	ck_assert_uint_gt(r.ans.head.length, 0);
}
END_TEST

/* --- the port-80 redirect */

static void
tls_setup(uint16_t https_port)
{
	static const char *const n_app[] = { "app.example.com" };
	static const char *const n_api[] = { "api.example.com" };
	struct tls_cert_in c[RC_N];
	struct tls_keyring_in in;
	char err[256] = "";
	int i;

	w.tls = tls_new(&w.snap);
	ck_assert_ptr_nonnull(w.tls);
	memset(c, 0, sizeof(c));
	for (i = 0; i < RC_N; i++) {
		c[i].chain = certs[i].chain;
		c[i].chain_len = certs[i].chain_len;
		c[i].key = certs[i].key;
		c[i].key_len = certs[i].key_len;
		c[i].not_after = 1000;
	}
	c[RC_DEFAULT].is_default = 1;
	c[RC_APP].names = n_app;
	c[RC_APP].nnames = 1;
	c[RC_API].names = n_api;
	c[RC_API].nnames = 1;
	in = (struct tls_keyring_in){ 1, c, RC_N, NULL, 0 };
	ck_assert_msg(tls_install(w.tls, &in, err, sizeof(err)) == 0, "%s", err);
	if (https_port != 0)
		tls_set_https_port(w.tls, https_port);
}

START_TEST(redirects_to_https)
{
	tls_setup(0);
	/* No HTTPS listener yet: nothing to redirect to, the request is forwarded. */
	step("GET /x HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);

	tls_set_https_port(w.tls, 8443);
	step("GET /a/b?c=d HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 301);
	ck_assert_str_eq(msg_s(&r.ans.head, r.ans.head.reason), "Moved Permanently");
	ck_assert_str_eq(ans_field("location"), "https://app.example.com:8443/a/b?c=d");
	ck_assert_str_eq(ans_field("cache-control"), "no-store");
	ck_assert_int_eq(r.ans.close, 0);
	ck_assert_uint_eq(r.ans.body_len, 0);
	ck_assert_int_eq(r.ans.head.has_length, 1);
	ck_assert_uint_eq(r.ans.head.length, 0);
	ck_assert_ptr_nonnull(strstr(ans_wire(), "\r\nContent-Length: 0\r\n"));
	ck_assert_ptr_null(strstr(ans_wire(), "Connection: close"));
	ck_assert_int_eq(strncmp(ans_wire(), "HTTP/1.1 301 Moved Permanently\r\n", 32), 0);
	/* Other methods: 308, so the method and body are kept; the absolute form reduced. */
	step("POST http://www.app.example.com/p HTTP/1.1\r\nHost: www.app.example.com\r\n"
	    "Content-Length: 3\r\n\r\n");
	ck_assert_uint_eq(status(), 308);
	ck_assert_str_eq(msg_s(&r.ans.head, r.ans.head.reason), "Permanent Redirect");
	ck_assert_str_eq(ans_field("location"), "https://www.app.example.com:8443/p");
	step("DELETE /r HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 308);
	/* An absolute form with no path: "/". */
	step("GET http://app.example.com?q HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_str_eq(ans_field("location"), "https://app.example.com:8443/?q");
	/* 443 wins and is not written. */
	tls_set_https_port(w.tls, 443);
	tls_set_https_port(w.tls, 9443);
	step("HEAD / HTTP/1.1\r\nHost: APP.example.com:80\r\n\r\n");
	ck_assert_uint_eq(status(), 301);
	ck_assert_str_eq(ans_field("location"), "https://app.example.com/");
	ck_assert_ptr_null(r.ans.body);

	/* Not redirected: ACME challenges, opted-out routes, names with only the default. */
	step("GET " CHAL_PATH " HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 200);
	ck_assert_ptr_null(ans_field("location"));
	step("GET /.well-known/acme-challenge/ HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_ne(status(), 301);
	step("POST " CHAL_PATH " HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 0\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	step("GET / HTTP/1.1\r\nHost: plain.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	step("GET / HTTP/1.1\r\nHost: api.example.org\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	step("GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
	ck_assert_uint_eq(status(), 404);
	/* An empty host (HTTP/1.0, the default route): no name to redirect to. */
	use_snap(rq_snap(R_APP, 0));
	step("GET / HTTP/1.0\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	/* Over TLS: never. */
	step_as("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n", &peer_tls);
	ck_assert_ptr_nonnull(r.ex);
}
END_TEST

START_TEST(hsts_over_tls_for_flagged_routes)
{
	/* api has the HSTS flag: its answers over TLS carry the field, and the exchange knows. */
	step_as("POST / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 5000\r\n\r\n", &peer_tls);
	assert_page(413, ERRPAGE_STATUS);
	ck_assert_int_eq(r.hsts, 1);
	ck_assert_str_eq(ans_field("strict-transport-security"), FORWARD_HSTS_VALUE);
	step_as("GET / HTTP/1.1\r\nHost: api.example.org\r\n\r\n", &peer_tls);
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_int_eq(r.hsts, 1);
	/* Not over plain HTTP. */
	step("POST / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 5000\r\n\r\n");
	assert_page(413, ERRPAGE_STATUS);
	ck_assert_int_eq(r.hsts, 0);
	ck_assert_ptr_null(ans_field("strict-transport-security"));
	/* Not for routes without the flag, nor for names without a route. */
	step_as("POST / HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5000\r\n\r\n", &peer_tls);
	assert_page(413, ERRPAGE_STATUS);
	ck_assert_int_eq(r.hsts, 0);
	ck_assert_ptr_null(ans_field("strict-transport-security"));
	step_as("GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n", &peer_tls);
	assert_page(404, ERRPAGE_STATUS);
	ck_assert_ptr_null(ans_field("strict-transport-security"));
}
END_TEST

/* --- answers of the route */

START_TEST(not_found_or_welcome)
{
	/* Routes exist: a name without one is a plain 404. */
	step("GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
	assert_page(404, ERRPAGE_STATUS);
	ck_assert_int_eq(r.ans.close, 0);
	/* No routes at all: the welcome page, still a 404. */
	use_snap(rq_snap(SNAP_NONE, 1));
	step("GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
	assert_page(404, ERRPAGE_WELCOME);
	step("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	assert_page(404, ERRPAGE_WELCOME);
	/* No snapshot yet: the same. */
	use_snap(NULL);
	step("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	assert_page(404, ERRPAGE_WELCOME);
}
END_TEST

START_TEST(no_backends_502)
{
	step("GET / HTTP/1.1\r\nHost: empty.example.com\r\n\r\n");
	assert_page(502, ERRPAGE_STATUS);
	ck_assert_int_eq(r.ans.close, 0);
	ck_assert_str_eq(r.host, "empty.example.com");
}
END_TEST

/* h2c and h2 must not go to HTTP/1.1: 502 until there is an HTTP/2 upstream; https does. */
START_TEST(backend_protocol_picks_the_upstream)
{
	/* h2c and h2 go to the HTTP/2 upstream (never HTTP/1.1 in their place)... */
	step("GET / HTTP/1.1\r\nHost: h2c.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	step("GET / HTTP/1.1\r\nHost: h2.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	/* ...but an upgrade has no HTTP/2 form we speak to backends: 502. */
	step("GET / HTTP/1.1\r\nHost: h2c.example.com\r\nConnection: upgrade\r\n"
	    "Upgrade: websocket\r\n\r\n");
	assert_page(502, ERRPAGE_STATUS);
	ck_assert_ptr_null(r.ex);
	step("GET / HTTP/1.1\r\nHost: tls.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_uint_eq(tlsclient_count(&w), 2);	/* h2's and https's, made for their connections */
}
END_TEST

START_TEST(body_limit_413)
{
#define POST_TO(host, framing) "POST / HTTP/1.1\r\nHost: " host "\r\n" framing "\r\n\r\n"
	static const struct {
		uint64_t max_body;	/* the global limit (setup's is 1000) */
		const char *raw;
		int refused;		/* 413, else an exchange */
	} cases[] = {
		/* The route's own limit. */
		{ 1000, POST_TO("small.example.com", "Content-Length: 11"), 1 },
		{ 1000, POST_TO("small.example.com", "Content-Length: 10"), 0 },
		/* A route limit above the global one wins too. */
		{ 1000, POST_TO("big.example.com", "Content-Length: 5000"), 0 },
		{ 1000, POST_TO("big.example.com", "Content-Length: 5001"), 1 },
		/* Else the global one. */
		{ 1000, POST_TO("app.example.com", "Content-Length: 1001"), 1 },
		{ 1000, POST_TO("app.example.com", "Content-Length: 1000"), 0 },
		/* A chunked body has no length yet: the exchange counts it. */
		{ 1000, POST_TO("small.example.com", "Transfer-Encoding: chunked"), 0 },
		/* No global limit: anything goes where the route sets none. */
		{ 0, POST_TO("app.example.com", "Content-Length: 99999999"), 0 },
		{ 0, POST_TO("small.example.com", "Content-Length: 11"), 1 },
	};
#undef POST_TO
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		w.cfg.max_body = cases[i].max_body;
		step(cases[i].raw);
		if (cases[i].refused)
			assert_page(413, ERRPAGE_STATUS);
		else
			ck_assert_ptr_nonnull(r.ex);
	}
}
END_TEST

START_TEST(exchange_started)
{
	const struct msg_field *f;

	w.cfg.access_log = 1;	/* every path through the log once */
	step("GET /p HTTP/1.1\r\nHost: app.example.com\r\nConnection: close, X-Drop\r\n"
	    "X-Drop: 1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_str_eq(r.host, "app.example.com");
	ck_assert_int_eq(r.hsts, 0);
	/* The head was transformed for the backend. */
	f = msg_find(&req, "x-forwarded-for");
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(msg_value(&req, f), "192.0.2.7");
	ck_assert_ptr_null(msg_find(&req, "x-drop"));
	ck_assert_ptr_null(msg_find(&req, "connection"));
	ck_assert_ptr_nonnull(msg_find(&req, "x-request-id"));
	/* A trusted peer's chain is kept. */
	step_as("GET /p HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
	    &(const struct request_peer){ "192.0.2.8", 1, 0, NULL });
	ck_assert_ptr_nonnull(r.ex);
	f = msg_find(&req, "x-forwarded-for");
	ck_assert_str_eq(msg_value(&req, f), "6.6.6.6, 192.0.2.8");
	/* Logged answers of every kind. */
	step("PROPFIND / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n");
	ck_assert_uint_eq(status(), 404);
	step("GET " CHAL_PATH " HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_uint_eq(status(), 200);
	/* Several exchanges in a row, each freed: the snapshot's references balance (LSan). */
	step("GET /1 HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	step("GET /2 HTTP/1.1\r\nHost: plain.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
}
END_TEST

/* A snapshot swapped while an exchange runs: the exchange keeps the one it was routed with. */
START_TEST(exchange_holds_its_snapshot)
{
	step("GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n");
	ck_assert_ptr_nonnull(r.ex);
	use_snap(rq_snap(SNAP_NONE, 1));
	ck_assert_int_eq(ev_run_once(w.loop, 0), 0);
	/* done() aborts it now: its snapshot goes with it. */
}
END_TEST

/* --- request_error, the session's own answers */

START_TEST(session_errors)
{
	struct answer ans;

	msg_init(&ans.head);
	ck_assert_int_eq(request_error(&w, 408, ERRPAGE_STATUS, NULL, 0, &ans), 0);
	ck_assert_uint_eq(ans.head.status, 408);
	ck_assert_int_eq(ans.close, 1);
	ck_assert_ptr_nonnull(ans.body);
	ck_assert_uint_eq(ans.body_len, ans.head.length);
	ck_assert_ptr_null(msg_find(&ans.head, "strict-transport-security"));
	ck_assert_int_eq(request_error(&w, 431, ERRPAGE_STATUS, NULL, 1, &ans), 0);
	ck_assert_uint_eq(ans.head.status, 431);
	ck_assert_int_eq(ans.close, 0);
	ck_assert_ptr_nonnull(msg_find(&ans.head, "strict-transport-security"));
	ck_assert_ptr_null(msg_find(&ans.head, "retry-after"));
	/* A 503 of ours (no tunnel process) says when to come back. */
	ck_assert_int_eq(request_error(&w, 503, ERRPAGE_STATUS, NULL, 0, &ans), 0);
	ck_assert_uint_eq(ans.head.status, 503);
	ck_assert_ptr_nonnull(msg_find(&ans.head, "retry-after"));
	ck_assert_str_eq(msg_value(&ans.head, msg_find(&ans.head, "retry-after")), "5");
	ck_assert_int_eq(request_error(&w, 502, ERRPAGE_STATUS, NULL, 0, &ans), 0);
	ck_assert_ptr_null(msg_find(&ans.head, "retry-after"));
	request_answer_free(&ans);
}
END_TEST

/* The step for an HTTP/2 request: parsed as HTTP/1.1, then marked as h2server marks it. */
static void
step_h2(const char *raw)
{
	ssize_t n;

	done();
	h1_reset(parser);
	n = h1_feed(parser, raw, strlen(raw));
	ck_assert_msg(n == (ssize_t)strlen(raw), "parse: %zd (%u)", n, h1_error(parser));
	req.major = 2;
	req.minor = 0;
	ck_assert_int_eq(request_step(&w, &peer_tls, &req, util_now_us(), &sink, NULL, &r), 0);
}

/* A trailers-only gRPC answer with code and message. */
static void
assert_grpc(const char *code, const char *message)
{
	ck_assert_uint_eq(status(), 200);
	ck_assert_str_eq(ans_field("content-type"), "application/grpc");
	ck_assert_str_eq(ans_field("grpc-status"), code);
	ck_assert_str_eq(ans_field("grpc-message"), message);
	ck_assert_int_eq(r.ans.head.has_length, 0);
	ck_assert_uint_eq(r.ans.body_len, 0);
	ck_assert_ptr_null(r.ans.body);
}

#define GRPC_TO(host, extra) "POST /pkg.Svc/Call HTTP/1.1\r\nHost: " host "\r\n" \
    "Content-Type: application/grpc\r\nTE: trailers\r\n" extra "\r\n"

START_TEST(grpc_errors_are_grpc_status)
{
	struct answer ans;

	step_h2(GRPC_TO("nowhere.test", ""));
	assert_grpc("12", "haloyd: no route for this host");
	step_h2(GRPC_TO("empty.example.com", ""));
	assert_grpc("14", "haloyd: no backend available");
	step_h2(GRPC_TO("small.example.com", "Content-Length: 11\r\n"));
	assert_grpc("8", "haloyd: request body too large");
	/* The same requests over HTTP/1.1 (no gRPC client there) or not gRPC: the HTTP pages. */
	step(GRPC_TO("empty.example.com", ""));
	assert_page(502, ERRPAGE_STATUS);
	step_h2("POST / HTTP/1.1\r\nHost: empty.example.com\r\nContent-Type: text/plain\r\n\r\n");
	assert_page(502, ERRPAGE_STATUS);
	/* A session's own error, or an exchange's timeout, for a gRPC call. */
	step_h2(GRPC_TO("app.example.com", ""));
	ck_assert_ptr_nonnull(r.ex);
	msg_init(&ans.head);
	ck_assert_int_eq(request_error(&w, 504, ERRPAGE_STATUS, &req, 1, &ans), 0);
	ck_assert_uint_eq(ans.head.status, 200);
	ck_assert_str_eq(msg_value(&ans.head, msg_find(&ans.head, "grpc-status")), "4");
	ck_assert_ptr_nonnull(msg_find(&ans.head, "strict-transport-security"));
	ck_assert_uint_eq(ans.body_len, 0);
	request_answer_free(&ans);
}
END_TEST
#undef GRPC_TO

Suite *
suite_request(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("request");

	tcase_add_unchecked_fixture(tc, certs_setup, certs_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, missing_host);
	tcase_add_test(tc, bad_host);
	tcase_add_test(tc, host_normalised);
	tcase_add_test(tc, duplicate_host);
	tcase_add_test(tc, absolute_form);
	tcase_add_test(tc, absolute_form_needs_host_in_http11);
	tcase_add_test(tc, connect_not_implemented);
	tcase_add_test(tc, acme_challenge_answers);
	tcase_add_test(tc, head_answers_have_no_body);
	tcase_add_test(tc, redirects_to_https);
	tcase_add_test(tc, hsts_over_tls_for_flagged_routes);
	tcase_add_test(tc, not_found_or_welcome);
	tcase_add_test(tc, no_backends_502);
	tcase_add_test(tc, backend_protocol_picks_the_upstream);
	tcase_add_test(tc, body_limit_413);
	tcase_add_test(tc, exchange_started);
	tcase_add_test(tc, exchange_holds_its_snapshot);
	tcase_add_test(tc, session_errors);
	tcase_add_test(tc, grpc_errors_are_grpc_status);
	suite_add_tcase(s, tc);
	return s;
}
