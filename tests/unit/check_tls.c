/*
 * Unit tests for worker/tls.c: contexts built from certificates generated
 * here (ECDSA P-256 and RSA, PEM and DER), SNI selection (exact, an alias
 * through its route's certificate, the one-label wildcard rule, no SNI,
 * unknown names), contexts kept across generations, and real handshakes
 * over socketpairs: the certificate served, session tickets resumed by a
 * second "worker" holding the same keys, TLS 1.1 refused, data both ways,
 * and the HTTP side (redirects, HSTS).
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "master/snapbuild.h"
#include "share/hostname.h"
#include "share/snap.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/tls.h"

/* --- generated certificates */

struct gen_cert {
	char *chain_pem, *key_pem;
	size_t chain_len, key_len;
	unsigned char *chain_der, *key_der;
	size_t chain_der_len, key_der_len;
};

/* A self-signed certificate for cn with the given subjectAltName ("DNS:a,DNS:b"). */
static struct gen_cert
gen_cert(int rsa, const char *cn, const char *san)
{
	struct gen_cert g;
	EVP_PKEY *k = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x;
	BIO *b;
	int n;

	ck_assert_ptr_nonnull(k);
	x = tw_x509(k, cn, san, 90);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	g.chain_pem = tw_bio_take(b, &g.chain_len);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	g.key_pem = tw_bio_take(b, &g.key_len);
	g.chain_der = NULL;
	ck_assert_int_gt(n = i2d_X509(x, &g.chain_der), 0);
	g.chain_der_len = (size_t)n;
	g.key_der = NULL;
	ck_assert_int_gt(n = i2d_PrivateKey(k, &g.key_der), 0);
	g.key_der_len = (size_t)n;
	X509_free(x);
	EVP_PKEY_free(k);
	return g;
}

static void
gen_free(struct gen_cert *g)
{
	free(g->chain_pem);
	free(g->key_pem);
	OPENSSL_free(g->chain_der);
	OPENSSL_free(g->key_der);
}

/* --- the fixture: a default, app (+ its alias in SAN), api (RSA), *.example.net */

enum { FX_DEFAULT, FX_APP, FX_API, FX_WILD, FX_N };

static struct gen_cert fx[FX_N];
static const char *const names_default[] = { NULL };
static const char *const names_app[] = { "app.example.com" };
static const char *const names_api[] = { "api.example.com" };
static const char *const names_wild[] = { "*.example.net" };

static uint8_t key_fill;	/* makes each generated ticket key distinct */

static void
fx_setup(void)
{
	fx[FX_DEFAULT] = gen_cert(0, "haloyd-default", "DNS:haloyd-default.invalid");
	fx[FX_APP] = gen_cert(0, "app.example.com", "DNS:app.example.com,DNS:www.app.example.com");
	fx[FX_API] = gen_cert(1, "api.example.com", "DNS:api.example.com");
	fx[FX_WILD] = gen_cert(0, "*.example.net", "DNS:*.example.net");
}

static void
fx_teardown(void)
{
	int i;

	for (i = 0; i < FX_N; i++)
		gen_free(&fx[i]);
}

static struct tls_cert_in
cert_in(int i, int der)
{
	static const char *const *const names[FX_N] = { names_default, names_app, names_api, names_wild };
	struct tls_cert_in c;

	memset(&c, 0, sizeof(c));
	c.chain = der ? (const void *)fx[i].chain_der : fx[i].chain_pem;
	c.chain_len = der ? fx[i].chain_der_len : fx[i].chain_len;
	c.key = der ? (const void *)fx[i].key_der : fx[i].key_pem;
	c.key_len = der ? fx[i].key_der_len : fx[i].key_len;
	c.names = names[i];
	c.nnames = i == FX_DEFAULT ? 0 : 1;
	c.is_default = i == FX_DEFAULT;
	c.not_after = 1000;
	return c;
}

static void
ticket_key(struct keyring_ticket_key *k)
{
	memset(k, 0, sizeof(*k));
	key_fill++;
	memset(k->name, key_fill, sizeof(k->name));
	memset(k->hmac_key, key_fill ^ 0x55, sizeof(k->hmac_key));
	memset(k->aes_key, key_fill ^ 0xaa, sizeof(k->aes_key));
}

static int
install(struct tls *t, uint32_t gen, const struct tls_cert_in *c, size_t n,
    const struct keyring_ticket_key *keys, size_t nkeys)
{
	struct tls_keyring_in in = { gen, c, n, keys, nkeys };
	char err[256] = "";
	int rc = tls_install(t, &in, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "install: %s\n", err);
	return rc;
}

static void
install_fixture(struct tls *t, uint32_t gen, const struct keyring_ticket_key *keys, size_t nkeys)
{
	struct tls_cert_in c[FX_N];
	int i;

	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, i == FX_WILD);	/* one of them as DER */
	ck_assert_int_eq(install(t, gen, c, FX_N, keys, nkeys), 0);
}

/* The CN of the certificate tls_select picks for name. */
static const char *
selected_cn(const struct tls *t, const char *name)
{
	static char cn[256];
	int i = tls_select(t, name, name != NULL ? strlen(name) : 0);
	const X509 *x = tls_leaf(t, i);

	ck_assert_ptr_nonnull(x);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	    sizeof(cn)), 0);
	return cn;
}

/* --- a snapshot with routes app (alias www.app), api (alias api.example.org) */

static const struct snapb_route sx_routes[] = {
	{ .id = 1, .name = "app.example.com", .be_first = 0, .be_count = 1 },
	{ .id = 2, .name = "api.example.com", .be_first = 1, .be_count = 1,
	  .flags = SNAP_ROUTE_HSTS },
	{ .id = 3, .name = "plain.example.com", .be_first = 2, .be_count = 1,
	  .flags = SNAP_ROUTE_NO_HTTPS_REDIRECT },
};

static const struct snapb_host sx_hosts[] = {
	{ .id = 10, .name = "app.example.com", .route = 0, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 11, .name = "www.app.example.com", .route = 0, .kind = SNAP_HOST_ALIAS, NULL },
	{ .id = 12, .name = "api.example.com", .route = 1, .kind = SNAP_HOST_EXACT, NULL },
	{ .id = 13, .name = "api.example.org", .route = 1, .kind = SNAP_HOST_ALIAS, NULL },
	{ .id = 14, .name = "plain.example.com", .route = 2, .kind = SNAP_HOST_EXACT, NULL },
};

static const struct snapb_backend sx_backends[] = {
	{ 20, AF_INET, 3000, { 127, 0, 0, 1 }, 0, NULL },
	{ 21, AF_INET, 3001, { 127, 0, 0, 1 }, 0, NULL },
	{ 22, AF_INET, 3002, { 127, 0, 0, 1 }, 0, NULL },
};

static struct snap *
sx_snap(void)
{
	struct snapb_input in = {
		.routes = sx_routes, .nroutes = 3, .hosts = sx_hosts, .nhosts = 5,
		.backends = sx_backends, .nbackends = 3, .default_route = SNAP_NONE, .generation = 1,
	};
	char err[256] = "";
	struct snap *s = NULL;
	int fd;

	ck_assert_msg(snapb_build(&in, &fd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	return s;
}

/* --- contexts and selection */

START_TEST(builds_ecdsa_rsa_pem_der)
{
	struct tls *t = tls_new(NULL);
	struct tls_cert_in c[FX_N];
	int i;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(tls_ready(t), 0);
	ck_assert_int_eq(tls_select(t, "app.example.com", 15), -1);
	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 1);
	ck_assert_int_eq(install(t, 7, c, FX_N, NULL, 0), 0);
	ck_assert_int_eq(tls_ready(t), 1);
	ck_assert_uint_eq(tls_generation(t), 7);
	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	ck_assert_int_eq(install(t, 8, c, FX_N, NULL, 0), 0);
	ck_assert_str_eq(selected_cn(t, "api.example.com"), "api.example.com");	/* RSA */
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "app.example.com");	/* ECDSA */
	tls_free(t);
}
END_TEST

START_TEST(refuses_bad_material)
{
	struct tls *t = tls_new(NULL);
	struct tls_cert_in c[FX_N];
	int i;

	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	/*
	 * A key that does not match: that certificate is left out at its first
	 * use (the master checked it at import; the worker parses none at
	 * install), the others serve.
	 */
	c[FX_APP].key = fx[FX_API].key_pem;
	c[FX_APP].key_len = fx[FX_API].key_len;
	ck_assert_int_eq(install(t, 2, c, FX_N, NULL, 0), 0);
	ck_assert_ptr_null(tls_leaf(t, tls_select(t, "app.example.com", 15)));
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "haloyd-default");
	ck_assert_str_eq(selected_cn(t, "api.example.com"), "api.example.com");
	/* The same certificate later with its own key: built now, not taken from before. */
	c[FX_APP] = cert_in(FX_APP, 0);
	ck_assert_int_eq(install(t, 2, c, FX_N, NULL, 0), 0);
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "app.example.com");
	/* Garbage as the default: the generation is refused and generation 2 stays. */
	c[FX_DEFAULT].chain = "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n";
	c[FX_DEFAULT].chain_len = strlen(c[FX_DEFAULT].chain);
	ck_assert_int_eq(install(t, 3, c, FX_N, NULL, 0), -1);
	ck_assert_uint_eq(tls_generation(t), 2);
	ck_assert_str_eq(selected_cn(t, "api.example.com"), "api.example.com");
	/* Truncated DER. */
	c[FX_DEFAULT] = cert_in(FX_DEFAULT, 1);
	c[FX_DEFAULT].chain_len -= 10;
	ck_assert_int_eq(install(t, 4, c, FX_N, NULL, 0), -1);
	/* No certificate at all. */
	ck_assert_int_eq(install(t, 5, c, 0, NULL, 0), -1);
	ck_assert_uint_eq(tls_generation(t), 2);
	tls_free(t);
}
END_TEST

START_TEST(sni_selection_rules)
{
	struct snap *s = sx_snap();
	struct tls *t = tls_new(&s);

	install_fixture(t, 1, NULL, 0);
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "app.example.com");
	/* An alias its route's certificate covers. */
	ck_assert_str_eq(selected_cn(t, "www.app.example.com"), "app.example.com");
	/* An alias the route's certificate does not cover: nothing valid exists for it. */
	ck_assert_str_eq(selected_cn(t, "api.example.org"), "haloyd-default");
	/* One label under the wildcard, not two, not the bare suffix. */
	ck_assert_str_eq(selected_cn(t, "a.example.net"), "*.example.net");
	ck_assert_str_eq(selected_cn(t, "a.b.example.net"), "haloyd-default");
	ck_assert_str_eq(selected_cn(t, "example.net"), "haloyd-default");
	/* No SNI, unknown names. */
	ck_assert_str_eq(selected_cn(t, NULL), "haloyd-default");
	ck_assert_str_eq(selected_cn(t, "unknown.test"), "haloyd-default");
	ck_assert_int_eq(tls_is_default(t, tls_select(t, "unknown.test", 12)), 1);
	ck_assert_int_eq(tls_is_default(t, tls_select(t, "app.example.com", 15)), 0);
	tls_free(t);
	/* Without a snapshot the alias has no route to go through. */
	t = tls_new(NULL);
	install_fixture(t, 1, NULL, 0);
	ck_assert_str_eq(selected_cn(t, "www.app.example.com"), "haloyd-default");
	tls_free(t);
	snap_unref(s);
}
END_TEST

START_TEST(name_goes_to_latest_certificate)
{
	struct tls *t = tls_new(NULL);
	struct gen_cert newer = gen_cert(0, "app-newer", "DNS:app.example.com");
	struct tls_cert_in c[FX_N + 1];
	int i;

	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	c[FX_N] = cert_in(FX_APP, 0);
	c[FX_N].chain = newer.chain_pem;
	c[FX_N].chain_len = newer.chain_len;
	c[FX_N].key = newer.key_pem;
	c[FX_N].key_len = newer.key_len;
	c[FX_N].not_after = 2000;
	ck_assert_int_eq(install(t, 1, c, FX_N + 1, NULL, 0), 0);
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "app-newer");
	c[FX_N].not_after = 10;
	ck_assert_int_eq(install(t, 2, c, FX_N + 1, NULL, 0), 0);
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "app.example.com");
	tls_free(t);
	gen_free(&newer);
}
END_TEST

START_TEST(contexts_kept_across_generations)
{
	struct tls *t = tls_new(NULL);
	struct gen_cert other = gen_cert(0, "app-2", "DNS:app.example.com");
	struct tls_cert_in c[FX_N];
	const void *app1, *api1;
	int i;

	install_fixture(t, 1, NULL, 0);
	app1 = tls_leaf(t, tls_select(t, "app.example.com", 15));
	api1 = tls_leaf(t, tls_select(t, "api.example.com", 15));
	install_fixture(t, 2, NULL, 0);
	ck_assert_ptr_eq(tls_leaf(t, tls_select(t, "app.example.com", 15)), app1);
	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	c[FX_APP].chain = other.chain_pem;
	c[FX_APP].chain_len = other.chain_len;
	c[FX_APP].key = other.key_pem;
	c[FX_APP].key_len = other.key_len;
	ck_assert_int_eq(install(t, 3, c, FX_N, NULL, 0), 0);
	ck_assert_str_eq(selected_cn(t, "app.example.com"), "app-2");
	ck_assert_ptr_eq(tls_leaf(t, tls_select(t, "api.example.com", 15)), api1);
	tls_free(t);
	gen_free(&other);
}
END_TEST

/* --- handshakes over a socketpair */

struct pair {
	int cfd, sfd;
	SSL_CTX *cctx;
	SSL *c;
	struct tls_conn *s;
	struct buf sb;		/* what the server read */
	char block[BUF_SIZE];
};

static SSL_CTX *
client_ctx(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	if (max_version != 0) {
		SSL_CTX_set_security_level(ctx, 0);
		ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, max_version), 1);
		ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
		ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0"), 1);
	}
	return ctx;
}

static void
pair_open(struct pair *p, struct tls *t, SSL_CTX *cctx, const char *sni, SSL_SESSION *sess)
{
	int fds[2];

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	p->cfd = fds[0];
	p->sfd = fds[1];
	p->cctx = cctx;
	p->c = SSL_new(cctx);
	ck_assert_ptr_nonnull(p->c);
	SSL_set_fd(p->c, p->cfd);
	SSL_set_connect_state(p->c);
	if (sni != NULL)
		SSL_set_tlsext_host_name(p->c, sni);
	SSL_set_alpn_protos(p->c, (const unsigned char *)"\x02h2\x08http/1.1", 12);
	if (sess != NULL)
		SSL_set_session(p->c, sess);
	p->s = tls_conn_new(t, p->sfd, "test-peer");
	ck_assert_ptr_nonnull(p->s);
	p->sb.data = p->block;
}

/* Runs both sides until the handshake is done (1) or failed (0). */
static int
pair_handshake(struct pair *p)
{
	int i, cdone = 0, sfail = 0;

	for (i = 0; i < 200 && !(cdone && tls_conn_established(p->s)); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(p->c);

			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(p->c, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(p->c, r) != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (tls_buf_read(p->s, p->sfd, &p->sb) == -1 && errno != EAGAIN) {
			sfail = 1;
			break;
		}
	}
	ERR_clear_error();
	return cdone && !sfail && tls_conn_established(p->s);
}

static void
pair_close(struct pair *p)
{
	/* A client that skips close_notify would mark its session not resumable. */
	if (SSL_is_init_finished(p->c))
		(void)SSL_shutdown(p->c);
	ERR_clear_error();
	SSL_free(p->c);
	tls_conn_free(p->s);
	if (p->cfd != -1)
		close(p->cfd);
	close(p->sfd);
}

static const char *
served_cn(struct pair *p)
{
	static char cn[256];
	X509 *x = SSL_get1_peer_certificate(p->c);

	ck_assert_ptr_nonnull(x);
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	    sizeof(cn)), 0);
	X509_free(x);
	return cn;
}

/* Client sends msg, server echoes it back through tls_buf_write; the client's session after. */
static SSL_SESSION *
pair_echo(struct pair *p, const char *msg)
{
	char got[64];
	size_t n = 0, len = strlen(msg);
	int i;

	ck_assert_int_eq(SSL_write(p->c, msg, (int)len), (int)len);
	for (i = 0; i < 100 && p->sb.len < len; i++)
		if (tls_buf_read(p->s, p->sfd, &p->sb) == -1)
			ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(p->sb.len, len);
	ck_assert_int_eq(memcmp(buf_head(&p->sb), msg, len), 0);
	ck_assert_int_eq(tls_buf_write(p->s, p->sfd, &p->sb), (ssize_t)len);
	for (i = 0; i < 100 && n < len; i++) {
		size_t k;

		if (SSL_read_ex(p->c, got + n, sizeof(got) - n, &k) == 1)
			n += k;
	}
	ERR_clear_error();
	ck_assert_uint_eq(n, len);
	ck_assert_int_eq(memcmp(got, msg, len), 0);
	return SSL_get1_session(p->c);
}

START_TEST(handshake_serves_by_sni)
{
	struct snap *s = sx_snap();
	struct tls *t = tls_new(&s);
	SSL_CTX *cctx = client_ctx(0);
	static const char *const cases[][2] = {
		{ "app.example.com", "app.example.com" },
		{ "www.app.example.com", "app.example.com" },
		{ "api.example.com", "api.example.com" },
		{ "x.example.net", "*.example.net" },
		{ "x.y.example.net", "haloyd-default" },
		{ "nowhere.test", "haloyd-default" },
		{ NULL, "haloyd-default" },
	};
	const unsigned char *alpn;
	unsigned alpn_len;
	struct pair p;
	size_t i;

	install_fixture(t, 1, NULL, 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pair_open(&p, t, cctx, cases[i][0], NULL);
		ck_assert_msg(pair_handshake(&p), "handshake for %s", cases[i][0]);
		ck_assert_str_eq(served_cn(&p), cases[i][1]);
		SSL_get0_alpn_selected(p.c, &alpn, &alpn_len);
		ck_assert_uint_eq(alpn_len, 8);
		ck_assert_int_eq(memcmp(alpn, "http/1.1", 8), 0);
		SSL_SESSION_free(pair_echo(&p, "GET / HTTP/1.1\r\n\r\n"));
		pair_close(&p);
	}
	SSL_CTX_free(cctx);
	tls_free(t);
	snap_unref(s);
}
END_TEST

/*
 * Many certificates (more than the cache of parsed ones holds, so some are
 * parsed again from their DER bytes): each name gets its own, by tls_select
 * and in real handshakes, the wildcard and the default as before, and a
 * connection handshaking across a keyring swap keeps its certificate.
 */
#define MANY 300

START_TEST(many_certificates_by_sni)
{
	struct tls *t = tls_new(NULL);
	SSL_CTX *cctx = client_ctx(0);
	struct gen_cert *g = calloc(MANY, sizeof(*g));
	struct tls_cert_in *c = calloc(MANY + FX_N, sizeof(*c));
	char (*names)[32] = calloc(MANY, sizeof(*names));
	const char **np = calloc(MANY, sizeof(*np));
	struct pair p;
	int i;

	ck_assert_ptr_nonnull(g);
	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	for (i = 0; i < MANY; i++) {
		snprintf(names[i], sizeof(names[i]), "h%d.many.test", i);
		np[i] = names[i];
		g[i] = gen_cert(0, names[i], "DNS:x.invalid");
		c[FX_N + i] = cert_in(FX_APP, 0);
		c[FX_N + i].chain = g[i].chain_pem;
		c[FX_N + i].chain_len = g[i].chain_len;
		c[FX_N + i].key = g[i].key_pem;
		c[FX_N + i].key_len = g[i].key_len;
		c[FX_N + i].names = &np[i];
		c[FX_N + i].id = (uint32_t)(100 + i);
	}
	ck_assert_int_eq(install(t, 1, c, MANY + FX_N, NULL, 0), 0);
	for (i = 0; i < MANY; i++)
		ck_assert_str_eq(selected_cn(t, names[i]), names[i]);
	ck_assert_str_eq(selected_cn(t, "z.example.net"), "*.example.net");
	ck_assert_str_eq(selected_cn(t, "unknown.many.test"), "haloyd-default");
	for (i = 0; i < MANY; i += 37) {
		pair_open(&p, t, cctx, names[i], NULL);
		ck_assert_msg(pair_handshake(&p), "handshake for %s", names[i]);
		ck_assert_str_eq(served_cn(&p), names[i]);
		pair_close(&p);
	}
	/* Mid-handshake swap to a keyring without that name: the ClientHello chose already. */
	pair_open(&p, t, cctx, names[1], NULL);
	ck_assert_int_eq(SSL_do_handshake(p.c), -1);	/* the ClientHello is out */
	ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), -1);	/* and chosen */
	ck_assert_int_eq(install(t, 2, c, FX_N, NULL, 0), 0);
	ck_assert_msg(pair_handshake(&p), "handshake across the swap");
	ck_assert_str_eq(served_cn(&p), names[1]);
	pair_close(&p);
	ck_assert_str_eq(selected_cn(t, names[1]), "haloyd-default");
	for (i = 0; i < MANY; i++)
		gen_free(&g[i]);
	free(g);
	free(c);
	free(names);
	free(np);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/*
 * TLS-ALPN-01 (RFC 8737): a ClientHello offering only acme-tls/1 gets the
 * challenge certificate of its name and EOF after the handshake; SNI never
 * picks it; without a challenge for the name the handshake fails with
 * no_application_protocol; acme-tls/1 among other protocols is ordinary.
 */
START_TEST(acme_tls_alpn_answer)
{
	static const char *const chal_names[] = { "app.example.com" };
	static const unsigned char acme[] = "\x0a" "acme-tls/1", both[] = "\x0a" "acme-tls/1\x08http/1.1";
	struct gen_cert chal = gen_cert(0, "chal-cert", "DNS:app.example.com");
	struct snap *s = sx_snap();
	struct tls *t = tls_new(&s);
	SSL_CTX *cctx = client_ctx(0);
	struct tls_cert_in c[FX_N + 1];
	const unsigned char *alpn;
	unsigned alpn_len;
	struct pair p;
	int i;

	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	memset(&c[FX_N], 0, sizeof(c[FX_N]));
	c[FX_N].chain = chal.chain_pem;
	c[FX_N].chain_len = chal.chain_len;
	c[FX_N].key = chal.key_pem;
	c[FX_N].key_len = chal.key_len;
	c[FX_N].names = chal_names;
	c[FX_N].nnames = 1;
	c[FX_N].is_chal = 1;
	c[FX_N].id = KEYRING_CHAL_ID_BASE;
	ck_assert_int_eq(install(t, 1, c, FX_N + 1, NULL, 0), 0);

	pair_open(&p, t, cctx, "app.example.com", NULL);
	SSL_set_alpn_protos(p.c, acme, sizeof(acme) - 1);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "chal-cert");
	SSL_get0_alpn_selected(p.c, &alpn, &alpn_len);
	ck_assert_uint_eq(alpn_len, 10);
	ck_assert_int_eq(memcmp(alpn, "acme-tls/1", 10), 0);
	ck_assert(tls_conn_acme(p.s));
	ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), 0);	/* over after the handshake */
	pair_close(&p);

	/* SNI alone never picks it; acme-tls/1 among others is an ordinary handshake. */
	pair_open(&p, t, cctx, "app.example.com", NULL);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "app.example.com");
	ck_assert(!tls_conn_acme(p.s));
	pair_close(&p);
	pair_open(&p, t, cctx, "app.example.com", NULL);
	SSL_set_alpn_protos(p.c, both, sizeof(both) - 1);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "app.example.com");
	SSL_get0_alpn_selected(p.c, &alpn, &alpn_len);
	ck_assert_uint_eq(alpn_len, 8);
	pair_close(&p);

	/* No challenge for the name, or no SNI: the handshake fails. */
	pair_open(&p, t, cctx, "api.example.com", NULL);
	SSL_set_alpn_protos(p.c, acme, sizeof(acme) - 1);
	ck_assert(!pair_handshake(&p));
	ck_assert(!tls_conn_established(p.s));
	pair_close(&p);
	pair_open(&p, t, cctx, NULL, NULL);
	SSL_set_alpn_protos(p.c, acme, sizeof(acme) - 1);
	ck_assert(!pair_handshake(&p));
	pair_close(&p);

	SSL_CTX_free(cctx);
	tls_free(t);
	snap_unref(s);
	gen_free(&chal);
}
END_TEST

/* Two workers with the same ticket keys: a session made on one resumes on the other. */
static void
check_resumption(int version)
{
	struct keyring_ticket_key keys[2];
	struct tls *w1 = tls_new(NULL), *w2 = tls_new(NULL), *w3 = tls_new(NULL);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_SESSION *sess;
	struct pair p;
	int i;

	SSL_CTX_set_max_proto_version(cctx, version);
	ticket_key(&keys[0]);
	install_fixture(w1, 1, keys, 1);
	install_fixture(w2, 1, keys, 1);
	pair_open(&p, w1, cctx, "app.example.com", NULL);
	ck_assert(pair_handshake(&p));
	sess = pair_echo(&p, "first");
	ck_assert_int_eq(SSL_session_reused(p.c), 0);
	pair_close(&p);
	for (i = 0; i < 4; i++) {
		SSL_SESSION *next;

		pair_open(&p, i % 2 ? w1 : w2, cctx, "app.example.com", sess);
		ck_assert(pair_handshake(&p));
		ck_assert_msg(SSL_session_reused(p.c) == 1, "round %d not resumed", i);
		next = pair_echo(&p, "again");
		SSL_SESSION_free(sess);
		sess = next;
		pair_close(&p);
	}
	/* After a rotation (new current, old previous) the ticket still resumes. */
	keys[1] = keys[0];
	ticket_key(&keys[0]);
	install_fixture(w2, 2, keys, 2);
	pair_open(&p, w2, cctx, "app.example.com", sess);
	ck_assert(pair_handshake(&p));
	ck_assert_int_eq(SSL_session_reused(p.c), 1);
	pair_close(&p);
	/* A worker without that key makes a full handshake instead. */
	ticket_key(&keys[0]);
	install_fixture(w3, 1, keys, 1);
	pair_open(&p, w3, cctx, "app.example.com", sess);
	ck_assert(pair_handshake(&p));
	ck_assert_int_eq(SSL_session_reused(p.c), 0);
	pair_close(&p);
	SSL_SESSION_free(sess);
	SSL_CTX_free(cctx);
	tls_free(w1);
	tls_free(w2);
	tls_free(w3);
}

START_TEST(tickets_resume_across_workers_tls13)
{
	check_resumption(TLS1_3_VERSION);
}
END_TEST

START_TEST(tickets_resume_across_workers_tls12)
{
	check_resumption(TLS1_2_VERSION);
}
END_TEST

START_TEST(old_protocols_refused)
{
	struct tls *t = tls_new(NULL);
	SSL_CTX *c11 = client_ctx(TLS1_1_VERSION), *c10 = client_ctx(TLS1_VERSION);
	struct pair p;

	install_fixture(t, 1, NULL, 0);
	pair_open(&p, t, c11, "app.example.com", NULL);
	ck_assert_int_eq(pair_handshake(&p), 0);
	ck_assert_int_eq(tls_conn_established(p.s), 0);
	/* The failed connection reads nothing more and frees without a close_notify. */
	ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), -1);
	ck_assert_int_ne(errno, EAGAIN);
	pair_close(&p);
	pair_open(&p, t, c10, NULL, NULL);
	ck_assert_int_eq(pair_handshake(&p), 0);
	pair_close(&p);
	SSL_CTX_free(c11);
	SSL_CTX_free(c10);
	tls_free(t);
}
END_TEST

/* A handshake that started under one keyring finishes after the next one replaced it. */
START_TEST(connection_outlives_its_keyring)
{
	struct tls *t = tls_new(NULL);
	struct gen_cert other = gen_cert(0, "default-2", "DNS:haloyd-default.invalid");
	SSL_CTX *cctx = client_ctx(0);
	struct tls_cert_in c[FX_N];
	struct pair p;
	int i;

	install_fixture(t, 1, NULL, 0);
	pair_open(&p, t, cctx, NULL, NULL);
	/* ClientHello in, the server's first flight out: the context is chosen. */
	ck_assert_int_eq(SSL_do_handshake(p.c), -1);
	ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), -1);
	ck_assert_int_eq(errno, EAGAIN);
	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	c[FX_DEFAULT].chain = other.chain_pem;
	c[FX_DEFAULT].chain_len = other.chain_len;
	c[FX_DEFAULT].key = other.key_pem;
	c[FX_DEFAULT].key_len = other.key_len;
	ck_assert_int_eq(install(t, 2, c, FX_N, NULL, 0), 0);
	ck_assert(pair_handshake(&p));
	/* The context it was made from is kept alive by the connection. */
	ck_assert_str_eq(served_cn(&p), "haloyd-default");
	SSL_SESSION_free(pair_echo(&p, "still here"));
	pair_close(&p);
	pair_open(&p, t, cctx, NULL, NULL);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "default-2");
	pair_close(&p);
	SSL_CTX_free(cctx);
	tls_free(t);
	gen_free(&other);
}
END_TEST

START_TEST(peer_close_notify_is_eof)
{
	struct tls *t = tls_new(NULL), *empty = tls_new(NULL);
	SSL_CTX *cctx = client_ctx(0);
	struct pair p;
	ssize_t n = -1;
	int i;

	/* No keyring yet: no connection. */
	ck_assert_ptr_null(tls_conn_new(empty, 0, "x"));
	tls_free(empty);
	install_fixture(t, 1, NULL, 0);
	pair_open(&p, t, cctx, "app.example.com", NULL);
	ck_assert(pair_handshake(&p));
	SSL_SESSION_free(pair_echo(&p, "x"));
	ck_assert_int_ge(SSL_shutdown(p.c), 0);
	for (i = 0; i < 50 && n != 0; i++)
		n = tls_buf_read(p.s, p.sfd, &p.sb);
	ck_assert_int_eq(n, 0);
	/* The peer is gone too: a write fails (never "0 bytes", which a caller would retry). */
	close(p.cfd);
	p.cfd = -1;
	signal(SIGPIPE, SIG_IGN);	/* as in a worker */
	buf_append(&p.sb, "answer", 6);
	ck_assert_int_eq(tls_buf_write(p.s, p.sfd, &p.sb), -1);
	ck_assert_int_eq(errno, EPIPE);
	pair_close(&p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* Bytes OpenSSL holds (decrypted or read ahead) are reported, partial records are not. */
START_TEST(pending_bytes_reported)
{
	struct tls *t = tls_new(NULL);
	SSL_CTX *cctx = client_ctx(0);
	char msg[100];
	struct pair p;
	size_t total = 0;
	ssize_t n;
	int i;

	install_fixture(t, 1, NULL, 0);
	pair_open(&p, t, cctx, "app.example.com", NULL);
	ck_assert(pair_handshake(&p));
	SSL_SESSION_free(pair_echo(&p, "x"));
	memset(msg, 'a', sizeof(msg));
	for (i = 0; i < 3; i++)	/* three records in the socket */
		ck_assert_int_eq(SSL_write(p.c, msg, sizeof(msg)), (int)sizeof(msg));
	/* Room for 10 bytes at a time: the rest stays inside OpenSSL, the socket is empty. */
	for (i = 0; i < 100 && total < 3 * sizeof(msg); i++) {
		p.sb.off = 0;
		p.sb.len = BUF_SIZE - 10;
		n = tls_buf_read(p.s, p.sfd, &p.sb);
		if (n == -1) {
			ck_assert_int_eq(errno, EAGAIN);
			continue;
		}
		total += (size_t)n;
		if (total < 3 * sizeof(msg))
			ck_assert_msg(tls_conn_pending(p.s), "%zu bytes read, more held", total);
	}
	ck_assert_uint_eq(total, 3 * sizeof(msg));
	p.sb.len = 0;
	ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(tls_conn_pending(p.s), 0);
	/* Half a record: held by OpenSSL, but not reported (the rest wakes epoll). */
	{
		BIO *mem = BIO_new(BIO_s_mem());
		char *rec;
		long len;

		SSL_set0_wbio(p.c, mem);
		ck_assert_int_eq(SSL_write(p.c, msg, sizeof(msg)), (int)sizeof(msg));
		len = BIO_get_mem_data(mem, &rec);
		ck_assert_int_gt(len, 100);
		ck_assert_int_eq(write(p.cfd, rec, (size_t)len / 2), len / 2);
		ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), -1);
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_int_eq(tls_conn_pending(p.s), 0);
		ck_assert_int_eq(write(p.cfd, rec + len / 2, (size_t)(len - len / 2)), len - len / 2);
		ck_assert_int_eq(tls_buf_read(p.s, p.sfd, &p.sb), (ssize_t)sizeof(msg));
		SSL_set_fd(p.c, p.cfd);
	}
	pair_close(&p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* --- what the request step asks (its redirects are tested in check_request.c) */

START_TEST(own_certificate_and_https_port)
{
	struct snap *s = sx_snap();
	struct tls *t = tls_new(&s);

	install_fixture(t, 1, NULL, 0);
	ck_assert_uint_eq(tls_https_port(t), 0);
	tls_set_https_port(t, 8443);
	ck_assert_uint_eq(tls_https_port(t), 8443);
	tls_set_https_port(t, 443);
	tls_set_https_port(t, 9443);	/* 443 stays */
	ck_assert_uint_eq(tls_https_port(t), 443);
	ck_assert_int_eq(tls_has_own_cert(t, "app.example.com", 15), 1);
	ck_assert_int_eq(tls_has_own_cert(t, "www.app.example.com", 19), 1);
	ck_assert_int_eq(tls_has_own_cert(t, "nowhere.test", 12), 0);
	ck_assert_int_eq(tls_has_own_cert(t, "", 0), 0);
	tls_free(t);
	snap_unref(s);
}
END_TEST

/* The answers are kept per host name: a new snapshot or certificate set asks again. */
START_TEST(own_certificate_follows_changes)
{
	struct snap *s = sx_snap(), *held = s;
	struct tls *t = tls_new(&s);
	struct tls_cert_in c[FX_N];
	int k;

	install_fixture(t, 1, NULL, 0);
	for (k = 0; k < 2; k++) {	/* the second time from the cache */
		ck_assert_int_eq(tls_has_own_cert(t, "www.app.example.com", 19), 1);
		ck_assert_int_eq(tls_has_own_cert(t, "app.example.com", 15), 1);
		ck_assert_int_eq(tls_has_own_cert(t, "a.example.net", 13), 1);
		ck_assert_int_eq(tls_has_own_cert(t, "nowhere.test", 12), 0);
	}
	/* Without the snapshot the alias has no route, hence no certificate. */
	s = NULL;
	ck_assert_int_eq(tls_has_own_cert(t, "www.app.example.com", 19), 0);
	s = held;
	ck_assert_int_eq(tls_has_own_cert(t, "www.app.example.com", 19), 1);
	/* A set with the default alone, then the full one again. */
	c[0] = cert_in(FX_DEFAULT, 0);
	ck_assert_int_eq(install(t, 2, c, 1, NULL, 0), 0);
	ck_assert_int_eq(tls_has_own_cert(t, "app.example.com", 15), 0);
	ck_assert_int_eq(tls_has_own_cert(t, "a.example.net", 13), 0);
	install_fixture(t, 3, NULL, 0);
	ck_assert_int_eq(tls_has_own_cert(t, "app.example.com", 15), 1);
	tls_free(t);
	snap_unref(held);
}
END_TEST

/* --- on-demand TLS: the ClientHello hook holds a handshake, which resumes later */

static int od_calls, od_hold, od_cookie;
static char od_name[HOSTNAME_MAX + 1];

static int
od_fake_ask(void *arg, void *cookie, const char *name)
{
	(void)arg;
	ck_assert_ptr_eq(cookie, &od_cookie);
	od_calls++;
	snprintf(od_name, sizeof(od_name), "%s", name);
	return od_hold;
}

static void
od_pair_open(struct pair *p, struct tls *t, SSL_CTX *cctx, const char *sni)
{
	pair_open(p, t, cctx, sni, NULL);
	tls_conn_set_cookie(p->s, &od_cookie);
}

/*
 * Only a name the default certificate would answer is asked about, once
 * per connection; a held handshake is no error and waits for no socket
 * event; resumed, it serves what the keyring then has.
 */
START_TEST(ondemand_holds_then_resumes)
{
	static const char *const od_names[] = { "nowhere.test" };
	struct gen_cert od = gen_cert(0, "od-cert", "DNS:nowhere.test");
	struct snap *s = sx_snap();
	struct tls *t = tls_new(&s);
	SSL_CTX *cctx = client_ctx(0);
	struct tls_cert_in c[FX_N + 1];
	struct pair p;
	int i;

	install_fixture(t, 1, NULL, 0);
	tls_set_ondemand(t, od_fake_ask, NULL);
	od_calls = 0;
	od_hold = 1;
	od_pair_open(&p, t, cctx, "app.example.com");
	ck_assert(pair_handshake(&p));
	pair_close(&p);
	od_pair_open(&p, t, cctx, NULL);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "haloyd-default");
	pair_close(&p);
	ck_assert_int_eq(od_calls, 0);

	od_pair_open(&p, t, cctx, "nowhere.test");
	ck_assert(!pair_handshake(&p));	/* reading again does not resume it */
	ck_assert_int_eq(od_calls, 1);
	ck_assert_str_eq(od_name, "nowhere.test");
	ck_assert(!tls_conn_established(p.s));
	ck_assert_str_eq(tls_conn_error(p.s), "");
	ck_assert_uint_eq(tls_conn_events(p.s), 0);
	/* The name's certificate arrives in the next keyring. */
	for (i = 0; i < FX_N; i++)
		c[i] = cert_in(i, 0);
	memset(&c[FX_N], 0, sizeof(c[FX_N]));
	c[FX_N].chain = od.chain_pem;
	c[FX_N].chain_len = od.chain_len;
	c[FX_N].key = od.key_pem;
	c[FX_N].key_len = od.key_len;
	c[FX_N].names = od_names;
	c[FX_N].nnames = 1;
	c[FX_N].not_after = 1000;
	ck_assert_int_eq(install(t, 2, c, FX_N + 1, NULL, 0), 0);
	tls_conn_od_release(p.s);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "od-cert");
	ck_assert_int_eq(od_calls, 1);
	pair_close(&p);

	/* Not held: the default at once. Held, then resumed without one: the default. */
	od_hold = 0;
	od_pair_open(&p, t, cctx, "other.test");
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "haloyd-default");
	pair_close(&p);
	od_hold = 1;
	od_pair_open(&p, t, cctx, "third.test");
	ck_assert(!pair_handshake(&p));
	tls_conn_od_release(p.s);
	ck_assert(pair_handshake(&p));
	ck_assert_str_eq(served_cn(&p), "haloyd-default");
	ck_assert_int_eq(od_calls, 3);
	pair_close(&p);
	/* Off: never asked. */
	tls_set_ondemand(t, NULL, NULL);
	od_pair_open(&p, t, cctx, "fourth.test");
	ck_assert(pair_handshake(&p));
	ck_assert_int_eq(od_calls, 3);
	pair_close(&p);
	gen_free(&od);
	SSL_CTX_free(cctx);
	tls_free(t);
	snap_unref(s);
}
END_TEST

Suite *
suite_tls(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");

	tcase_add_unchecked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, builds_ecdsa_rsa_pem_der);
	tcase_add_test(tc, refuses_bad_material);
	tcase_add_test(tc, sni_selection_rules);
	tcase_add_test(tc, name_goes_to_latest_certificate);
	tcase_add_test(tc, contexts_kept_across_generations);
	tcase_add_test(tc, handshake_serves_by_sni);
	tcase_add_test(tc, many_certificates_by_sni);
	tcase_add_test(tc, acme_tls_alpn_answer);
	tcase_add_test(tc, tickets_resume_across_workers_tls13);
	tcase_add_test(tc, tickets_resume_across_workers_tls12);
	tcase_add_test(tc, old_protocols_refused);
	tcase_add_test(tc, connection_outlives_its_keyring);
	tcase_add_test(tc, peer_close_notify_is_eof);
	tcase_add_test(tc, pending_bytes_reported);
	tcase_add_test(tc, own_certificate_and_https_port);
	tcase_add_test(tc, own_certificate_follows_changes);
	tcase_add_test(tc, ondemand_holds_then_resumes);
	suite_add_tcase(s, tc);
	return s;
}
