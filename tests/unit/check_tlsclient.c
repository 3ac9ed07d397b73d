/*
 * Unit tests for worker/tlsclient.c, TLS toward backends: the configuration
 * key pools are split by, the context cache (one per route, rebuilt when
 * the settings change, dropped by a snapshot without them), and real
 * handshakes over socketpairs against an OpenSSL server holding a
 * certificate made here: the route's CA trusted, another refused with
 * OpenSSL's reason, the server name sent and checked, the address checked
 * without one, verification off, ALPN per protocol, data both ways through
 * worker/tls.c's helpers.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "share/snap.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/tls.h"
#include "worker/tlsclient.h"

static struct worker w;
static EVP_PKEY *srv_key, *other_key;
static X509 *srv_cert, *other_cert;
static char *srv_pem, *other_pem;	/* the certificates as CA PEM */
static char sni_seen[256];

static char *
cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	size_t len;

	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	return tw_bio_take(b, &len);
}

static void
setup(void)
{
	tw_worker_init(&w);
	ck_assert_int_eq(tlsclient_init(&w), 0);
	srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert(srv_key != NULL && other_key != NULL);
	/* Self-signed: trusting the certificate itself is trusting its "CA". */
	srv_cert = tw_x509(srv_key, "backend", "DNS:backend.test,IP:127.0.0.1", 30);
	other_cert = tw_x509(other_key, "other", "DNS:backend.test", 30);
	srv_pem = cert_pem(srv_cert);
	other_pem = cert_pem(other_cert);
	sni_seen[0] = '\0';
}

static void
teardown(void)
{
	tlsclient_free(&w);
	X509_free(srv_cert);
	X509_free(other_cert);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(other_key);
	free(srv_pem);
	free(other_pem);
	ev_loop_free(w.loop);
}

/* --- snapshots with one route and one backend at 127.0.0.1 (or addr4) */

struct rt {
	uint16_t proto;
	const char *ca, *sni;
	int no_verify;
	uint32_t id;
	uint8_t addr4;		/* last byte of 127.0.0.x */
};

static struct snap *
rt_snap(const struct rt *t)
{
	struct snapb_route r = { .id = t->id != 0 ? t->id : 7, .name = "app.example.com",
	    .be_first = 0, .be_count = 1, .proto = t->proto, .backend_ca = t->ca,
	    .backend_sni = t->sni, .flags = t->no_verify ? SNAP_ROUTE_BACKEND_NO_VERIFY : 0 };
	struct snapb_host h = { 1, "app.example.com", 0, SNAP_HOST_EXACT, NULL };
	struct snapb_backend b = { 9, AF_INET, 443, { 127, 0, 0, t->addr4 != 0 ? t->addr4 : 1 }, 0, NULL };
	static uint64_t gen;	/* grows, as the master's does */
	struct snapb_input in = { .routes = &r, .nroutes = 1, .hosts = &h, .nhosts = 1,
	    .backends = &b, .nbackends = 1, .default_route = SNAP_NONE, .generation = ++gen };

	return tw_snap(&in);
}

/* --- a server on the other end of a socketpair */

static int
on_sni(SSL *ssl, int *al, void *arg)
{
	const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)al;
	(void)arg;
	util_strlcpy(sni_seen, n != NULL ? n : "", sizeof(sni_seen));
	return SSL_TLSEXT_ERR_OK;
}

static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x02h2\x08http/1.1";

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)(void *)out, outlen, ours, sizeof(ours) - 1,
	    in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

struct pair {
	int cfd, sfd;
	SSL_CTX *sctx;
	SSL *s;
	struct tls_conn *c;
	struct snap *snap;
};

static void
pair_open(struct pair *p, const struct rt *t)
{
	int fds[2];

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	p->cfd = fds[0];
	p->sfd = fds[1];
	p->sctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(p->sctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(p->sctx, srv_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(p->sctx, srv_key), 1);
	SSL_CTX_set_tlsext_servername_callback(p->sctx, on_sni);
	SSL_CTX_set_alpn_select_cb(p->sctx, on_alpn, NULL);
	p->s = SSL_new(p->sctx);
	SSL_set_fd(p->s, p->sfd);
	SSL_set_accept_state(p->s);
	p->snap = rt_snap(t);
	p->c = tlsclient_conn_new(&w, p->snap, snap_route_at(p->snap, 0),
	    snap_backend_at(p->snap, 0), p->cfd);
	ck_assert_ptr_nonnull(p->c);
}

/* Both sides until the client's handshake ends: 1 done, -1 failed. */
static int
pair_handshake(struct pair *p)
{
	int i, rc = 0;

	for (i = 0; i < 200 && rc == 0; i++) {
		rc = tls_conn_handshake(p->c);
		if (rc == 0)
			ck_assert_uint_ne(tls_conn_events(p->c), 0);
		(void)SSL_do_handshake(p->s);
		ERR_clear_error();
	}
	ck_assert_int_ne(rc, 0);
	return rc;
}

static void
pair_close(struct pair *p)
{
	tls_conn_free(p->c);
	SSL_free(p->s);
	SSL_CTX_free(p->sctx);
	close(p->cfd);
	close(p->sfd);
	snap_unref(p->snap);
}

/* The client's request reaches the server and the answer comes back. */
static void
pair_exchange(struct pair *p)
{
	char blk[BUF_SIZE], got[16];
	struct buf b = { 0 };
	size_t n = 0;
	int i;

	b.data = blk;
	buf_append(&b, "ping", 4);
	ck_assert_int_eq(tls_buf_write(p->c, p->cfd, &b), 4);
	for (i = 0; i < 100 && n < 4; i++) {
		size_t k;

		if (SSL_read_ex(p->s, got + n, sizeof(got) - n, &k) == 1)
			n += k;
	}
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(SSL_write(p->s, "pong", 4), 4);
	for (i = 0; i < 100 && b.len < 4; i++)
		if (tls_buf_read(p->c, p->cfd, &b) == -1)
			ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_int_eq(memcmp(buf_head(&b), "pong", 4), 0);
	ERR_clear_error();
}

/* --- tests */

START_TEST(config_key)
{
	const struct rt base = { SNAP_PROTO_HTTPS, "PEM", "a.test", 0, 0, 0 };
	struct rt t;
	struct snap *s[7];
	uint64_t k[7];
	int i, j;

	for (i = 0; i < 7; i++) {
		t = base;
		switch (i) {
		case 1: t.proto = SNAP_PROTO_H2; break;
		case 2: t.ca = "PEM2"; break;
		case 3: t.sni = "b.test"; break;
		case 4: t.no_verify = 1; break;
		case 5: t.ca = NULL; break;
		case 6: t.sni = NULL; break;
		}
		s[i] = rt_snap(&t);
		k[i] = tlsclient_config_key(&w, s[i], snap_route_at(s[i], 0));
		ck_assert_uint_ne(k[i], 0);
	}
	for (i = 0; i < 7; i++)
		for (j = i + 1; j < 7; j++)
			ck_assert_msg(k[i] != k[j], "keys %d and %d equal", i, j);
	for (i = 0; i < 7; i++)
		snap_unref(s[i]);
	/* Plain protocols have no TLS configuration. */
	for (i = 0; i < 2; i++) {
		t = (struct rt){ i == 0 ? SNAP_PROTO_HTTP1 : SNAP_PROTO_H2C, NULL, NULL, 0, 0, 0 };
		s[0] = rt_snap(&t);
		ck_assert_uint_eq(tlsclient_config_key(&w, s[0], snap_route_at(s[0], 0)), 0);
		snap_unref(s[0]);
	}
}
END_TEST

START_TEST(handshake_with_route_ca)
{
	struct rt t = { SNAP_PROTO_HTTPS, srv_pem, NULL, 0, 0, 0 };
	struct pair p;

	pair_open(&p, &t);
	ck_assert_int_eq(tls_conn_established(p.c), 0);
	ck_assert_int_eq(pair_handshake(&p), 1);
	ck_assert_int_eq(tls_conn_established(p.c), 1);
	ck_assert_str_eq(tls_conn_error(p.c), "");
	ck_assert_int_eq(tls_conn_h2(p.c), 0);	/* ALPN http/1.1 */
	ck_assert_str_eq(sni_seen, "");		/* no name: the address was checked */
	ck_assert_int_eq(SSL_version(p.s) >= TLS1_2_VERSION, 1);
	pair_exchange(&p);
	pair_close(&p);

	/* h2 offers ALPN h2 only. */
	t.proto = SNAP_PROTO_H2;
	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), 1);
	ck_assert_int_eq(tls_conn_h2(p.c), 1);
	pair_close(&p);
}
END_TEST

START_TEST(other_ca_refused_with_reason)
{
	struct rt t = { SNAP_PROTO_HTTPS, other_pem, NULL, 0, 0, 0 };
	struct pair p;

	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), -1);
	ck_assert_str_eq(tls_conn_error(p.c), "certificate verify failed: self-signed certificate");
	ck_assert_ptr_nonnull(strstr(tls_conn_peer(p.c), "backend 9 (127.0.0.1:443)"));
	/* A failed connection stays failed. */
	ck_assert_int_eq(tls_conn_handshake(p.c), -1);
	pair_close(&p);

	/* Off: anyone's certificate is taken. */
	t.no_verify = 1;
	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), 1);
	pair_exchange(&p);
	pair_close(&p);
}
END_TEST

START_TEST(name_sent_and_checked)
{
	struct rt t = { SNAP_PROTO_HTTPS, srv_pem, "backend.test", 0, 0, 0 };
	struct pair p;

	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), 1);
	ck_assert_str_eq(sni_seen, "backend.test");
	pair_close(&p);

	t.sni = "elsewhere.test";
	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), -1);
	ck_assert_str_eq(sni_seen, "elsewhere.test");
	ck_assert_str_eq(tls_conn_error(p.c), "certificate verify failed: hostname mismatch");
	pair_close(&p);

	/* Without a name, the backend's address must be in the certificate. */
	t.sni = NULL;
	t.addr4 = 2;
	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), -1);
	ck_assert_str_eq(tls_conn_error(p.c), "certificate verify failed: IP address mismatch");
	pair_close(&p);
}
END_TEST

START_TEST(system_roots_do_not_trust_a_test_certificate)
{
	struct rt t = { SNAP_PROTO_HTTPS, NULL, "backend.test", 0, 0, 0 };
	struct pair p;

	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), -1);
	ck_assert_ptr_nonnull(strstr(tls_conn_error(p.c), "certificate verify failed: "));
	pair_close(&p);
}
END_TEST

START_TEST(session_resumed_per_backend)
{
	struct rt t = { SNAP_PROTO_HTTPS, srv_pem, "backend.test", 0, 0, 0 };
	struct pair p;
	SSL_CTX *sctx;
	uint64_t key;

	/* One server context for both connections, as one backend process would have. */
	pair_open(&p, &t);
	ck_assert_int_eq(pair_handshake(&p), 1);
	ck_assert_int_eq(tls_conn_resumed(p.c), 0);
	pair_exchange(&p);	/* the client reads the server's tickets with the answer */
	key = tlsclient_config_key(&w, p.snap, snap_route_at(p.snap, 0));
	tlsclient_keep_session(&w, 7, key, 9, p.c);
	sctx = p.sctx;
	SSL_CTX_up_ref(sctx);
	pair_close(&p);

	pair_open(&p, &t);
	SSL_free(p.s);
	SSL_CTX_free(p.sctx);
	p.sctx = sctx;
	p.s = SSL_new(sctx);
	SSL_set_fd(p.s, p.sfd);
	SSL_set_accept_state(p.s);
	ck_assert_int_eq(pair_handshake(&p), 1);
	ck_assert_int_eq(tls_conn_resumed(p.c), 1);
	SSL_CTX_up_ref(sctx);	/* for the third connection */
	/* A connection of older settings (another key) leaves nothing behind. */
	tlsclient_keep_session(&w, 7, key + 1, 9, p.c);
	pair_close(&p);

	/* New settings, a new context: the old session is not offered. */
	t.no_verify = 1;
	pair_open(&p, &t);
	SSL_free(p.s);
	SSL_CTX_free(p.sctx);
	p.sctx = sctx;
	p.s = SSL_new(sctx);
	SSL_set_fd(p.s, p.sfd);
	SSL_set_accept_state(p.s);
	ck_assert_int_eq(pair_handshake(&p), 1);
	ck_assert_int_eq(tls_conn_resumed(p.c), 0);
	pair_close(&p);
}
END_TEST

START_TEST(contexts_cached_per_configuration)
{
	struct rt t = { SNAP_PROTO_HTTPS, srv_pem, NULL, 0, 0, 0 }, t2;
	struct snap *s1, *s2, *s3;
	struct tls_conn *c;
	int fds[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	s1 = rt_snap(&t);
	c = tlsclient_conn_new(&w, s1, snap_route_at(s1, 0), snap_backend_at(s1, 0), fds[0]);
	tls_conn_free(c);
	c = tlsclient_conn_new(&w, s1, snap_route_at(s1, 0), snap_backend_at(s1, 0), fds[0]);
	ck_assert_uint_eq(tlsclient_count(&w), 1);
	/* The same snapshot again keeps it; another CA drops it, the next connection remakes it. */
	tlsclient_snapshot(&w, s1);
	ck_assert_uint_eq(tlsclient_count(&w), 1);
	t2 = t;
	t2.ca = other_pem;
	s2 = rt_snap(&t2);
	tlsclient_snapshot(&w, s2);
	ck_assert_uint_eq(tlsclient_count(&w), 0);
	tls_conn_free(c);	/* a connection outlives its dropped context */
	c = tlsclient_conn_new(&w, s2, snap_route_at(s2, 0), snap_backend_at(s2, 0), fds[0]);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(tlsclient_count(&w), 1);
	tls_conn_free(c);
	/* A snapshot without the route (another id) drops it. */
	t2.id = 8;
	s3 = rt_snap(&t2);
	tlsclient_snapshot(&w, s3);
	ck_assert_uint_eq(tlsclient_count(&w), 0);
	snap_unref(s1);
	snap_unref(s2);
	snap_unref(s3);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(unusable_ca_refused)
{
	struct rt t = { SNAP_PROTO_HTTPS, "not a certificate", NULL, 0, 0, 0 };
	struct snap *s = rt_snap(&t);
	int fds[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	ck_assert_ptr_null(tlsclient_conn_new(&w, s, snap_route_at(s, 0), snap_backend_at(s, 0),
	    fds[0]));
	ck_assert_uint_eq(tlsclient_count(&w), 0);
	snap_unref(s);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

Suite *
suite_tlsclient(void)
{
	Suite *s = suite_create("tlsclient");
	TCase *tc = tcase_create("tlsclient");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, config_key);
	tcase_add_test(tc, handshake_with_route_ca);
	tcase_add_test(tc, other_ca_refused_with_reason);
	tcase_add_test(tc, name_sent_and_checked);
	tcase_add_test(tc, system_roots_do_not_trust_a_test_certificate);
	tcase_add_test(tc, contexts_cached_per_configuration);
	tcase_add_test(tc, unusable_ca_refused);
	tcase_add_test(tc, session_resumed_per_backend);
	suite_add_tcase(s, tc);
	return s;
}
