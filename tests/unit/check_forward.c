/*
 * Unit tests for worker/forward.c: the forwarding rules on a neutral head.
 * Requests lose hop-by-hop fields, those named in Connection and the
 * framing fields, and gain X-Forwarded-For/-Proto/-Host and X-Request-Id
 * (the client's own kept); TE is kept as "trailers" only when asked for;
 * Host is kept. Responses lose hop-by-hop fields and gain HSTS on request.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/buf.h"
#include "worker/forward.h"
#include "worker/http1.h"
#include "worker/message.h"

static struct msg_head h;

static void
setup(void)
{
	msg_init(&h);
}

static void
teardown(void)
{
	msg_free(&h);
}

/* A request head built field by field: pairs of name, value, then NULL. */
static void
build(enum msg_method m, const char *path, ...)
{
	va_list ap;
	const char *n, *v;

	msg_reset(&h);
	h.method = m;
	h.major = 1;
	h.minor = 1;
	ck_assert_int_eq(msg_str(&h, path, strlen(path), &h.path), 0);
	va_start(ap, path);
	while ((n = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		ck_assert_int_eq(msg_add(&h, n, v), 0);
	}
	va_end(ap);
}

/* How many header fields are called name. */
static unsigned
count(const char *name)
{
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < msg_nheaders(&h); i++)
		n += (unsigned)msg_field_is(&h, &h.f[i], name);
	return n;
}

/* The value of the one field called name, NULL when absent; fails when there are several. */
static const char *
value(const char *name)
{
	const struct msg_field *f = msg_find(&h, name);

	ck_assert_uint_le(count(name), 1);
	return f != NULL ? msg_value(&h, f) : NULL;
}

/* The value of the k-th field called name (from 0), NULL when there are fewer. */
static const char *
value_at(const char *name, unsigned k)
{
	uint32_t i;

	for (i = 0; i < msg_nheaders(&h); i++)
		if (msg_field_is(&h, &h.f[i], name) && k-- == 0)
			return msg_value(&h, &h.f[i]);
	return NULL;
}

#define DATE "Thu, 01 Jan 2026 00:00:00 GMT"

static const struct fwd_info plain = { "192.0.2.7", "http", "ourid", 0 };
static const struct fwd_info trusted = { "192.0.2.7", "https", "ourid", 1 };

/* The header names in order, comma-separated. */
static const char *
names(void)
{
	static char out[4096];
	size_t n = 0;
	uint32_t i;

	out[0] = '\0';
	for (i = 0; i < msg_nheaders(&h); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i > 0 ? "," : "",
		    msg_name(&h, &h.f[i]));
	return out;
}

START_TEST(hop_by_hop_removed)
{
	build(MSG_M_POST, "/p",
	    "Host", "app.example.com",
	    "Connection", "keep-alive, X-Drop,\tx-also",
	    "Keep-Alive", "timeout=5",
	    "Proxy-Connection", "keep-alive",
	    "Accept", "*/*",
	    "TE", "gzip",
	    "Trailer", "X-Sum",
	    "x-drop", "1",
	    "X-Also", "2",
	    "UPGRADE", "h2c",
	    "Transfer-Encoding", "chunked",
	    "Content-Length", "5",
	    "X-Keep", "3",
	    "content-type", "text/plain",
	    NULL);
	ck_assert_int_eq(forward_is_hop(&h, &h.f[0]), 0);	/* Host */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[1]), 1);	/* Connection */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[2]), 1);	/* Keep-Alive */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[4]), 0);	/* Accept */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[7]), 1);	/* named in Connection */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[8]), 1);	/* named after a tab */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[9]), 1);	/* Upgrade, any case */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[11]), 1);	/* Content-Length */
	ck_assert_int_eq(forward_is_hop(&h, &h.f[12]), 0);	/* X-Keep */
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	/* What is left keeps its order; ours follow; no TE (the client did not ask for trailers). */
	ck_assert_str_eq(names(), "Host,Accept,X-Keep,content-type,X-Forwarded-For,"
	    "X-Forwarded-Proto,X-Forwarded-Host,X-Request-Id,Via");
	ck_assert_str_eq(value("host"), "app.example.com");
	ck_assert_str_eq(value("x-keep"), "3");
	ck_assert_str_eq(value("content-type"), "text/plain");
	ck_assert_uint_eq(h.ntrailers, 0);
}
END_TEST

START_TEST(connection_names_in_several_fields)
{
	build(MSG_M_GET, "/",
	    "Connection", "X-A",
	    "Host", "a",
	    "connection", "x-b, close",
	    "X-A", "1", "X-B", "2", "X-C", "3",
	    NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_ptr_null(value("x-a"));
	ck_assert_ptr_null(value("x-b"));
	ck_assert_ptr_null(value("connection"));
	ck_assert_str_eq(value("x-c"), "3");
}
END_TEST

/* Naming Host or our own fields in Connection does not take them off the backend's request. */
START_TEST(connection_cannot_drop_host_or_ours)
{
	build(MSG_M_GET, "/",
	    "Host", "app.example.com",
	    "Connection", "Host, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id",
	    NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("host"), "app.example.com");
	ck_assert_str_eq(value("x-forwarded-for"), "192.0.2.7");
	ck_assert_str_eq(value("x-forwarded-proto"), "http");
	ck_assert_str_eq(value("x-forwarded-host"), "app.example.com");
	ck_assert_str_eq(value("x-request-id"), "ourid");
	ck_assert_ptr_null(value("connection"));
}
END_TEST

START_TEST(xff_untrusted_replaced)
{
	build(MSG_M_GET, "/",
	    "X-Forwarded-For", "6.6.6.6",
	    "Host", "app.example.com",
	    "x-forwarded-for", "7.7.7.7, 8.8.8.8",
	    "X-Forwarded-Proto", "https",
	    "X-Forwarded-Host", "evil.example",
	    NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-forwarded-for"), "192.0.2.7");
	ck_assert_str_eq(value("x-forwarded-proto"), "http");
	ck_assert_str_eq(value("x-forwarded-host"), "app.example.com");
	ck_assert_str_eq(value("x-request-id"), "ourid");
}
END_TEST

START_TEST(xff_trusted_appended)
{
	build(MSG_M_GET, "/",
	    "X-Forwarded-For", "1.1.1.1, 2.2.2.2",
	    "Host", "app.example.com",
	    "X-Forwarded-For", "",
	    "x-forwarded-for", "3.3.3.3",
	    "X-Forwarded-Proto", "http",
	    NULL);
	ck_assert_int_eq(forward_request(&h, &trusted), 0);
	/* Every incoming field in order, then the peer; empty ones add nothing. */
	ck_assert_str_eq(value("x-forwarded-for"), "1.1.1.1, 2.2.2.2, 3.3.3.3, 192.0.2.7");
	ck_assert_str_eq(value("x-forwarded-proto"), "https");

	/* A trusted peer that sent none: just its address. */
	build(MSG_M_GET, "/", "Host", "a", NULL);
	ck_assert_int_eq(forward_request(&h, &trusted), 0);
	ck_assert_str_eq(value("x-forwarded-for"), "192.0.2.7");
}
END_TEST

START_TEST(xff_chain_too_long_fails)
{
	char *chain = malloc(5000);

	ck_assert_ptr_nonnull(chain);
	memset(chain, '1', 4999);
	chain[4999] = '\0';
	build(MSG_M_GET, "/", "Host", "a", "X-Forwarded-For", chain, NULL);
	ck_assert_int_eq(forward_request(&h, &trusted), -1);
	/* Untrusted, the chain is dropped: it fits. */
	build(MSG_M_GET, "/", "Host", "a", "X-Forwarded-For", chain, NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-forwarded-for"), "192.0.2.7");
	free(chain);
}
END_TEST

START_TEST(forwarded_host)
{
	/* From Host, as the client wrote it; Host itself is kept as it was. */
	build(MSG_M_GET, "/", "Host", "App.Example.com:8080", NULL);
	ck_assert_int_eq(msg_str(&h, "other.example", 13, &h.authority), 0);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-forwarded-host"), "App.Example.com:8080");
	ck_assert_str_eq(value("host"), "App.Example.com:8080");
	ck_assert_str_eq(msg_s(&h, h.f[0].name), "Host");

	/* No Host (HTTP/2): from the authority. */
	build(MSG_M_GET, "/", "Accept", "*/*", NULL);
	ck_assert_int_eq(msg_str(&h, "h2.example.com:8443", 19, &h.authority), 0);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-forwarded-host"), "h2.example.com:8443");
	ck_assert_ptr_null(value("host"));

	/* Neither: none at all. */
	build(MSG_M_GET, "/", "Accept", "*/*", "X-Forwarded-Host", "spoofed", NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_ptr_null(value("x-forwarded-host"));
}
END_TEST

/* haloyd-tunnel* is the worker's word to the tunnel process: a client never sends it on. */
START_TEST(tunnel_fields_removed)
{
	build(MSG_M_GET, "/", "Host", "a", "Haloyd-Tunnel", "other", "haloyd-tunnel-balance",
	    "round-robin", "HALOYD-TUNNEL-X", "1", "haloyd-tunne", "kept", "x-haloyd-tunnel", "kept",
	    NULL);
	ck_assert_int_eq(forward_request(&h, &trusted), 0);
	ck_assert_uint_eq(count("haloyd-tunnel"), 0);
	ck_assert_uint_eq(count("haloyd-tunnel-balance"), 0);
	ck_assert_uint_eq(count("haloyd-tunnel-x"), 0);
	ck_assert_str_eq(value("haloyd-tunne"), "kept");
	ck_assert_str_eq(value("x-haloyd-tunnel"), "kept");
}
END_TEST

START_TEST(request_id_kept_or_ours)
{
	build(MSG_M_GET, "/", "Host", "a", "x-request-id", "client-42", NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-request-id"), "client-42");

	build(MSG_M_GET, "/", "Host", "a", NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-request-id"), "ourid");

	/* An empty one is no id: ours. */
	build(MSG_M_GET, "/", "Host", "a", "X-Request-Id", "", NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-request-id"), "ourid");
}
END_TEST

START_TEST(te_trailers_only_when_asked)
{
	static const struct {
		const char *te;
		int kept;
	} cases[] = {
		{ "trailers", 1 }, { "Trailers", 1 }, { "deflate, trailers", 1 },
		{ "trailers;q=0.5", 0 }, { "deflate", 0 }, { "", 0 }, { NULL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].te != NULL)
			build(MSG_M_POST, "/rpc", "Host", "a", "Connection", "TE", "TE", cases[i].te,
			    NULL);
		else
			build(MSG_M_POST, "/rpc", "Host", "a", "Connection", "TE", NULL);
		ck_assert_int_eq(forward_request(&h, &plain), 0);
		if (cases[i].kept)
			ck_assert_str_eq(value("te"), "trailers");
		else
			ck_assert_msg(value("te") == NULL, "TE: %s", cases[i].te);
		ck_assert_ptr_null(value("connection"));
	}
	/* A list may be split over fields: "trailers" in the second TE field counts too. */
	build(MSG_M_POST, "/rpc", "Host", "a", "TE", "deflate", "TE", "trailers", NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("te"), "trailers");
}
END_TEST

START_TEST(via_and_max_forwards)
{
	/* Via: our hop after the ones before, with the version we received. */
	build(MSG_M_GET, "/", "Host", "a", "Via", "1.0 edge", NULL);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_uint_eq(count("via"), 2);
	ck_assert_str_eq(value_at("via", 0), "1.0 edge");
	ck_assert_str_eq(value_at("via", 1), "1.1 " FORWARD_PSEUDONYM);
	build(MSG_M_GET, "/", "Host", "a", NULL);
	h.major = 2;
	h.minor = 0;
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("via"), "2 " FORWARD_PSEUDONYM);
	/* Max-Forwards: only OPTIONS and TRACE, decremented; nonsense left alone. */
	build(MSG_M_OPTIONS, "/", "Host", "a", "Max-Forwards", "5", NULL);
	ck_assert_int_eq(forward_max_forwards(&h), 5);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("max-forwards"), "4");
	build(MSG_M_OPTIONS, "/", "Host", "a", "Max-Forwards", "0", NULL);
	ck_assert_int_eq(forward_max_forwards(&h), 0);
	build(MSG_M_GET, "/", "Host", "a", "Max-Forwards", "5", NULL);
	ck_assert_int_eq(forward_max_forwards(&h), -1);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("max-forwards"), "5");
	build(MSG_M_OPTIONS, "/", "Host", "a", "Max-Forwards", "x1", NULL);
	ck_assert_int_eq(forward_max_forwards(&h), -1);
	build(MSG_M_OPTIONS, "/", "Host", "a", "Max-Forwards", "1234567890123456789", NULL);
	ck_assert_int_eq(forward_max_forwards(&h), -1);
}
END_TEST

START_TEST(response_rules)
{
	msg_reset(&h);
	h.status = 200;
	ck_assert_int_eq(msg_add(&h, "Connection", "close, X-Hop"), 0);
	ck_assert_int_eq(msg_add(&h, "Content-Type", "text/html"), 0);
	ck_assert_int_eq(msg_add(&h, "X-Hop", "1"), 0);
	ck_assert_int_eq(msg_add(&h, "Keep-Alive", "timeout=5"), 0);
	ck_assert_int_eq(msg_add(&h, "Transfer-Encoding", "chunked"), 0);
	ck_assert_int_eq(msg_add(&h, "Set-Cookie", "a=1"), 0);
	ck_assert_int_eq(msg_add(&h, "Content-Length", "10"), 0);
	ck_assert_int_eq(msg_add(&h, "Upgrade", "websocket"), 0);
	ck_assert_int_eq(msg_add(&h, "X-Request-Id", "backend's"), 0);
	ck_assert_int_eq(forward_response(&h, 0, DATE), 0);
	/* The backend's own X-* fields pass in responses; only the missing Date is added. */
	ck_assert_str_eq(names(), "Content-Type,Set-Cookie,X-Request-Id,Date");
	ck_assert_str_eq(value("x-request-id"), "backend's");
	ck_assert_str_eq(value("date"), DATE);
	ck_assert_ptr_null(value("strict-transport-security"));
	/* A backend's Date is kept: one Date only. */
	ck_assert_int_eq(forward_response(&h, 1, "Fri, 02 Jan 2026 00:00:00 GMT"), 0);
	ck_assert_str_eq(names(), "Content-Type,Set-Cookie,X-Request-Id,Date,Strict-Transport-Security");
	ck_assert_str_eq(value("date"), DATE);
	ck_assert_str_eq(value("strict-transport-security"), FORWARD_HSTS_VALUE);
	/* An interim response gets no Date. */
	msg_reset(&h);
	h.status = 103;
	ck_assert_int_eq(forward_response(&h, 0, DATE), 0);
	ck_assert_ptr_null(value("date"));
}
END_TEST

START_TEST(full_head_still_fits)
{
	/* A request head just within the parser's limits: forwarding has room on top of it. */
	char *req = malloc(MSG_HEAD_MAX + 1024);
	char val[150];
	struct h1 *p;
	size_t n;
	int i;

	ck_assert_ptr_nonnull(req);
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	n = (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: app.example.com\r\n");
	for (i = 0; i < MSG_FIELDS_MAX - 1 && n + 2 * sizeof(val) < MSG_HEAD_MAX; i++)
		n += (size_t)sprintf(req + n, "X-Field-%d: %s\r\n", i, val);
	n += (size_t)sprintf(req + n, "\r\n");
	p = h1_new(H1_REQUEST, &h, &tw_nop_events, NULL);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(h1_feed(p, req, n), (ssize_t)n);
	ck_assert_int_eq(h1_done(p), 1);
	ck_assert_uint_gt(h.len, MSG_HEAD_MAX * 9 / 10);
	ck_assert_int_eq(forward_request(&h, &plain), 0);
	ck_assert_str_eq(value("x-forwarded-for"), "192.0.2.7");
	ck_assert_str_eq(value("x-forwarded-host"), "app.example.com");
	h1_free(p);
	free(req);
}
END_TEST

START_TEST(too_big_fails_cleanly)
{
	/* A head whose storage is all but full: our fields do not fit. */
	size_t vlen = MSG_MEM_MAX - 1 - sizeof("X-Big") - 1 - 4;
	char *big = malloc(vlen + 1);

	ck_assert_ptr_nonnull(big);
	memset(big, 'b', vlen);
	big[vlen] = '\0';
	build(MSG_M_GET, "/", NULL);
	ck_assert_int_eq(msg_add(&h, "X-Big", big), 0);
	ck_assert_int_eq(msg_add(&h, "Host", "a"), -1);	/* 4 bytes left */
	ck_assert_int_eq(forward_request(&h, &plain), -1);
	/* The head is still whole: the big field is there and readable. */
	ck_assert_uint_le(h.len, MSG_MEM_MAX);
	ck_assert_uint_eq(strlen(value("x-big")), vlen);

	/* A response: with nothing to add it passes, with HSTS or a Date it does not fit. */
	msg_reset(&h);
	h.status = 100;
	ck_assert_int_eq(msg_add(&h, "X-Big", big), 0);
	ck_assert_int_eq(forward_response(&h, 0, DATE), 0);
	ck_assert_int_eq(forward_response(&h, 1, DATE), -1);
	ck_assert_ptr_null(value("strict-transport-security"));
	h.status = 200;
	ck_assert_int_eq(forward_response(&h, 0, DATE), -1);
	ck_assert_ptr_null(value("date"));
	free(big);
}
END_TEST

Suite *
suite_forward(void)
{
	Suite *s = suite_create("forward");
	TCase *tc = tcase_create("forward");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hop_by_hop_removed);
	tcase_add_test(tc, connection_names_in_several_fields);
	tcase_add_test(tc, connection_cannot_drop_host_or_ours);
	tcase_add_test(tc, xff_untrusted_replaced);
	tcase_add_test(tc, xff_trusted_appended);
	tcase_add_test(tc, xff_chain_too_long_fails);
	tcase_add_test(tc, forwarded_host);
	tcase_add_test(tc, request_id_kept_or_ours);
	tcase_add_test(tc, te_trailers_only_when_asked);
	tcase_add_test(tc, via_and_max_forwards);
	tcase_add_test(tc, response_rules);
	tcase_add_test(tc, full_head_still_fits);
	tcase_add_test(tc, too_big_fails_cleanly);
	tcase_add_test(tc, tunnel_fields_removed);
	suite_add_tcase(s, tc);
	return s;
}
