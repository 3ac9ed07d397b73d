/*
 * Unit tests for worker/tlsrec.c, through worker/tls.c as a worker uses it:
 * real OpenSSL clients over socketpairs against a server tls_conn, which
 * hands a TLS 1.3 connection over to the record layer after the handshake.
 * Data both ways checked byte for byte for each TLS 1.3 suite, full and
 * resumed handshakes, a client's first records in the flight of its
 * Finished, 1 MiB each way through small socket buffers (partial records,
 * partial sends and the retry with the same bytes), a nearly full caller
 * buffer, KeyUpdate both ways, close_notify both ways, records that must
 * fail the connection, TLS 1.2 left on OpenSSL, and an idle connection
 * giving its cipher contexts back.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"
#include "worker/tls.h"
#include "worker/tlsrec.h"

/* --- a worker's TLS with one certificate, and a client over a socketpair */

static char *cert_pem, *key_pem;
static size_t cert_len, key_len;

static void
fx_setup(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x;
	BIO *b;

	ck_assert_ptr_nonnull(k);
	x = tw_x509(k, "rec.example.com", "DNS:rec.example.com", 90);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	cert_pem = tw_bio_take(b, &cert_len);
	b = BIO_new(BIO_s_mem());
	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	key_pem = tw_bio_take(b, &key_len);
	X509_free(x);
	EVP_PKEY_free(k);
	signal(SIGPIPE, SIG_IGN);	/* as in a worker */
}

static void
fx_teardown(void)
{
	free(cert_pem);
	free(key_pem);
}

static struct tls *
server(void)
{
	static struct keyring_ticket_key key;
	struct tls *t = tls_new(NULL);
	struct tls_cert_in c;
	struct tls_keyring_in in;
	char err[200] = "";

	ck_assert_ptr_nonnull(t);
	memset(&c, 0, sizeof(c));
	c.chain = cert_pem;
	c.chain_len = cert_len;
	c.key = key_pem;
	c.key_len = key_len;
	c.is_default = 1;
	c.not_after = 1000;
	memset(&key, 0x5a, sizeof(key));
	key.not_after = 0;
	key.flags = key.reserved = 0;
	in = (struct tls_keyring_in){ 1, &c, 1, &key, 1 };
	ck_assert_msg(tls_install(t, &in, err, sizeof(err)) == 0, "%s", err);
	tls_set_http2(t, 1);
	return t;
}

/* A TLS 1.3 client restricted to suites (NULL: OpenSSL's), or a TLS 1.2 one. */
static SSL_CTX *
client_ctx(const char *suites, int tls12)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (suites != NULL)
		ck_assert_int_eq(SSL_CTX_set_ciphersuites(ctx, suites), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION), 1);
	return ctx;
}

struct pair {
	int cfd, sfd;
	SSL *c;
	struct tls_conn *s;
	struct buf in, out;	/* the server's, as a connection's */
	char inblock[BUF_SIZE], outblock[BUF_SIZE];
};

static struct pair *
pair_open(struct tls *t, SSL_CTX *cctx, SSL_SESSION *sess)
{
	struct pair *p = calloc(1, sizeof(*p));
	int fds[2];

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	p->cfd = fds[0];
	p->sfd = fds[1];
	p->c = SSL_new(cctx);
	ck_assert_ptr_nonnull(p->c);
	SSL_set_fd(p->c, p->cfd);
	SSL_set_connect_state(p->c);
	SSL_set_tlsext_host_name(p->c, "rec.example.com");
	SSL_set_alpn_protos(p->c, (const unsigned char *)"\x02h2\x08http/1.1", 12);
	if (sess != NULL)
		SSL_set_session(p->c, sess);
	p->s = tls_conn_new(t, p->sfd, "test-peer");
	ck_assert_ptr_nonnull(p->s);
	p->in.data = p->inblock;
	p->out.data = p->outblock;
	return p;
}

static void
pair_close(struct pair *p)
{
	ERR_clear_error();
	SSL_free(p->c);
	tls_conn_free(p->s);
	close(p->cfd);
	close(p->sfd);
	free(p);
}

/* The server's reads until it has n bytes (or fails): its last answer. */
static ssize_t
server_read(struct pair *p, size_t n)
{
	ssize_t r = -1;
	int i;

	for (i = 0; i < 200 && p->in.len < n; i++) {
		if ((r = tls_buf_read(p->s, p->sfd, &p->in)) == 0 || (r == -1 && errno != EAGAIN))
			return r;
	}
	return r;
}

/* The client's reads until it has n bytes into got; how many it got. */
static size_t
client_read(struct pair *p, char *got, size_t n)
{
	size_t have = 0, k;
	int i;

	for (i = 0; i < 200 && have < n; i++)
		if (SSL_read_ex(p->c, got + have, n - have, &k) == 1)
			have += k;
	ERR_clear_error();
	return have;
}

/* Runs both sides until the client is done and the server established. */
static void
handshake(struct pair *p)
{
	int i, cdone = 0;

	for (i = 0; i < 200 && !(cdone && tls_conn_established(p->s)); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(p->c);

			cdone = r == 1;
			ck_assert(cdone || SSL_get_error(p->c, r) == SSL_ERROR_WANT_READ ||
			    SSL_get_error(p->c, r) == SSL_ERROR_WANT_WRITE);
		}
		if (tls_buf_read(p->s, p->sfd, &p->in) == -1)
			ck_assert_int_eq(errno, EAGAIN);
	}
	ERR_clear_error();
	ck_assert(cdone && tls_conn_established(p->s));
}

/* msg from the client to the server, then reply back; both checked byte for byte. */
static void
exchange(struct pair *p, const char *msg, const char *reply)
{
	char got[256];
	size_t n = strlen(msg), m = strlen(reply);

	ck_assert_int_eq(SSL_write(p->c, msg, (int)n), (int)n);
	server_read(p, n);
	ck_assert_uint_eq(p->in.len, n);
	ck_assert_int_eq(memcmp(buf_head(&p->in), msg, n), 0);
	buf_consume(&p->in, n);
	buf_append(&p->out, reply, m);
	ck_assert_int_eq(tls_buf_write(p->s, p->sfd, &p->out), (ssize_t)m);
	ck_assert_uint_eq(client_read(p, got, m), m);
	ck_assert_int_eq(memcmp(got, reply, m), 0);
}

/* --- handshakes and the handover */

static void
suite_roundtrip(const char *suite, uint16_t id)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(suite, 0);
	struct pair *p = pair_open(t, cctx, NULL);

	handshake(p);
	ck_assert_uint_eq(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p->c)), id);
	exchange(p, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n");
	ck_assert_msg(tls_conn_handed_over(p->s), "TLS 1.3 went on without OpenSSL");
	/* What the handshake agreed outlives the SSL. */
	ck_assert(tls_conn_h2(p->s));
	ck_assert(!tls_conn_resumed(p->s));
	ck_assert(!tls_conn_acme(p->s));
	ck_assert(tls_conn_established(p->s));
	ck_assert_int_eq(tls_conn_handshake(p->s), 1);
	exchange(p, "second", "answer two");
	exchange(p, "third", "answer three");
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}

START_TEST(aes128_gcm_both_ways)
{
	suite_roundtrip("TLS_AES_128_GCM_SHA256", 0x1301);
}
END_TEST

START_TEST(aes256_gcm_both_ways)
{
	suite_roundtrip("TLS_AES_256_GCM_SHA384", 0x1302);
}
END_TEST

START_TEST(chacha20_poly1305_both_ways)
{
	suite_roundtrip("TLS_CHACHA20_POLY1305_SHA256", 0x1303);
}
END_TEST

/* A resumed handshake (the ticket of the first connection) hands over too. */
START_TEST(resumed_handshake_hands_over)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL);
	SSL_SESSION *sess;

	handshake(p);
	exchange(p, "first", "ticket came before this");
	ck_assert_ptr_nonnull(sess = SSL_get1_session(p->c));
	ck_assert(SSL_SESSION_is_resumable(sess));
	(void)SSL_shutdown(p->c);
	pair_close(p);
	p = pair_open(t, cctx, sess);
	handshake(p);
	ck_assert(SSL_session_reused(p->c));
	exchange(p, "resumed", "yes");
	ck_assert(tls_conn_handed_over(p->s));
	ck_assert(tls_conn_resumed(p->s));
	exchange(p, "again", "still");
	SSL_SESSION_free(sess);
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/*
 * The client's Finished and its first records in one segment: OpenSSL reads
 * them all (read-ahead) and hands over once it holds none; then several
 * records in one segment through the record layer.
 */
START_TEST(pipelined_first_request)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL);
	int i, r;

	for (i = 0; i < 50 && (r = SSL_do_handshake(p->c)) != 1; i++) {
		ck_assert_int_eq(SSL_get_error(p->c, r), SSL_ERROR_WANT_READ);
		if (tls_buf_read(p->s, p->sfd, &p->in) == -1)
			ck_assert_int_eq(errno, EAGAIN);
		ck_assert(!tls_conn_established(p->s));
	}
	ck_assert_int_eq(r, 1);
	/* The server has not read the Finished yet: three records follow it. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(SSL_write(p->c, "abcdefghij", 10), 10);
	server_read(p, 30);
	ck_assert_uint_eq(p->in.len, 30);
	ck_assert_int_eq(memcmp(buf_head(&p->in), "abcdefghijabcdefghijabcdefghij", 30), 0);
	ck_assert(tls_conn_handed_over(p->s));
	ck_assert(!tls_conn_pending(p->s));
	p->in.len = 0;
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(SSL_write(p->c, "0123456789", 10), 10);
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), 40);	/* four records, one read */
	ck_assert_int_eq(memcmp(buf_head(&p->in), "0123456789012345678901234567890123456789", 40), 0);
	p->in.len = 0;
	exchange(p, "after", "fine");
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

static uint8_t
pattern(size_t i, int dir)
{
	return (uint8_t)((i * 131 + i / 4093 + (size_t)dir * 7) % 251);
}

/*
 * 1 MiB each way through socket buffers of a few KiB: records arrive in
 * pieces, sends are partial, and the server's writes keep OpenSSL's retry
 * contract (the same bytes come again, more appended behind them).
 */
START_TEST(mebibyte_each_way_small_buffers)
{
	enum { TOTAL = 1 << 20 };
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL);
	uint8_t *cpat = malloc(TOTAL), chunk[20000];
	size_t cs = 0, sr = 0, ss = 0, cr = 0, i;
	int sz = 4096, rounds, eagain = 0;

	ck_assert_ptr_nonnull(cpat);
	for (i = 0; i < TOTAL; i++)
		cpat[i] = pattern(i, 0);
	handshake(p);
	exchange(p, "start", "go");
	ck_assert(tls_conn_handed_over(p->s));
	ck_assert_int_eq(setsockopt(p->cfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	ck_assert_int_eq(setsockopt(p->sfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	for (rounds = 0; rounds < 200000 && (sr < TOTAL || cr < TOTAL); rounds++) {
		size_t k;
		ssize_t n;

		if (cs < TOTAL && SSL_write_ex(p->c, cpat + cs, TOTAL - cs, &k) == 1)
			cs += k;
		ERR_clear_error();
		if (sr < TOTAL && (n = tls_buf_read(p->s, p->sfd, &p->in)) != -1) {
			ck_assert_int_gt(n, 0);
			for (i = 0; i < p->in.len; i++)
				ck_assert_uint_eq((uint8_t)buf_head(&p->in)[i], cpat[sr + i]);
			sr += p->in.len;
			buf_consume(&p->in, p->in.len);
		} else if (sr < TOTAL)
			ck_assert_int_eq(errno, EAGAIN);
		/* More bytes behind the ones a failed write must send again. */
		while (ss < TOTAL && buf_room(&p->out) > 0) {
			char c = (char)pattern(ss++, 1);

			buf_append(&p->out, &c, 1);
		}
		if (p->out.len > 0 && tls_buf_write(p->s, p->sfd, &p->out) == -1) {
			ck_assert_int_eq(errno, EAGAIN);
			ck_assert_uint_ne(tls_conn_events(p->s), EPOLLOUT);	/* the caller's own data */
			eagain++;
		}
		while (cr < TOTAL && SSL_read_ex(p->c, chunk, sizeof(chunk), &k) == 1) {
			for (i = 0; i < k; i++)
				ck_assert_uint_eq(chunk[i], pattern(cr + i, 1));
			cr += k;
		}
		ERR_clear_error();
	}
	ck_assert_uint_eq(sr, TOTAL);
	ck_assert_uint_eq(cr, TOTAL);
	ck_assert_int_gt(eagain, 0);	/* the socket did push back */
	exchange(p, "done", "done too");
	free(cpat);
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* Records larger than the caller's room: the rest is held, and reported as pending. */
START_TEST(nearly_full_caller_buffer)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL);
	static char msg[5000];
	size_t total = 0, i;
	ssize_t n;
	int rounds;

	handshake(p);
	exchange(p, "x", "y");
	ck_assert(tls_conn_handed_over(p->s));
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(SSL_write(p->c, msg, sizeof(msg)), (int)sizeof(msg));
	for (rounds = 0; rounds < 10000 && total < 3 * sizeof(msg); rounds++) {
		p->in.off = 0;
		p->in.len = BUF_SIZE - 10;	/* room for 10 bytes */
		n = tls_buf_read(p->s, p->sfd, &p->in);
		if (n == -1) {
			ck_assert_int_eq(errno, EAGAIN);
			continue;
		}
		ck_assert_int_le(n, 10);
		ck_assert_int_eq(memcmp(p->inblock + BUF_SIZE - 10, msg + total % sizeof(msg),
		    (size_t)n), 0);
		total += (size_t)n;
		if (total < 3 * sizeof(msg))
			ck_assert_msg(tls_conn_pending(p->s), "%zu bytes read, more held", total);
	}
	ck_assert_uint_eq(total, 3 * sizeof(msg));
	ck_assert(!tls_conn_pending(p->s));
	p->in.len = 0;
	/* A full buffer: ENOBUFS, as OpenSSL's. */
	ck_assert_int_eq(SSL_write(p->c, msg, 100), 100);
	p->in.len = BUF_SIZE;
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), -1);
	ck_assert_int_eq(errno, ENOBUFS);
	p->in.len = 0;
	ck_assert_int_eq(server_read(p, 100), 100);
	p->in.len = 0;
	exchange(p, "more", "fine");
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* The client's KeyUpdate asking for ours: both keys move, data goes on both ways. */
START_TEST(key_update_both_ways)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL);
	int i;

	handshake(p);
	exchange(p, "before", "before too");
	ck_assert(tls_conn_handed_over(p->s));
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(SSL_key_update(p->c, SSL_KEY_UPDATE_REQUESTED), 1);
		exchange(p, "after an update", "answered under the new key");
		exchange(p, "and again", "still");
	}
	ck_assert_int_eq(SSL_key_update(p->c, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	exchange(p, "one way", "the other key stays");
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* The client's close_notify is EOF; ours reaches the client as a clean shutdown. */
START_TEST(close_notify_both_ways)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL);
	char c;
	int r;

	handshake(p);
	exchange(p, "hello", "hi");
	ck_assert(tls_conn_handed_over(p->s));
	tls_conn_shutdown(p->s);
	r = SSL_read(p->c, &c, 1);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(SSL_get_error(p->c, r), SSL_ERROR_ZERO_RETURN);
	ck_assert_int_eq(SSL_shutdown(p->c), 1);	/* ours came, theirs goes */
	ck_assert_int_eq(server_read(p, 1), 0);
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), 0);
	pair_close(p);

	/* Data then close_notify in one segment: the data, then EOF. */
	p = pair_open(t, cctx, NULL);
	handshake(p);
	exchange(p, "hello", "hi");
	ck_assert_int_eq(SSL_write(p->c, "last", 4), 4);
	ck_assert_int_eq(SSL_shutdown(p->c), 0);
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), 4);
	ck_assert(tls_conn_pending(p->s));	/* the EOF epoll will not tell again */
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), 0);
	pair_close(p);

	/* EOF without close_notify is EOF too. */
	p = pair_open(t, cctx, NULL);
	handshake(p);
	exchange(p, "hello", "hi");
	shutdown(p->cfd, SHUT_WR);
	ck_assert_int_eq(server_read(p, 1), 0);
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* A record as the client would send it, taken from a memory BIO instead of the socket. */
static uint8_t *
client_record(struct pair *p, const char *msg, size_t *len)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *rec;
	uint8_t *copy;

	SSL_set0_wbio(p->c, mem);
	ck_assert_int_eq(SSL_write(p->c, msg, (int)strlen(msg)), (int)strlen(msg));
	*len = (size_t)BIO_get_mem_data(mem, &rec);
	ck_assert_ptr_nonnull(copy = malloc(*len));
	memcpy(copy, rec, *len);
	SSL_set_fd(p->c, p->cfd);
	return copy;
}

/* What the server makes of bytes: its read's answer (errno saved in *err). */
static ssize_t
server_takes(struct pair *p, const void *bytes, size_t n, int *err)
{
	ssize_t r;

	ck_assert_int_eq(write(p->cfd, bytes, n), (ssize_t)n);
	r = server_read(p, 1);
	*err = errno;
	return r;
}

static void
broken_record(struct tls *t, SSL_CTX *cctx, int how)
{
	static const uint8_t big[] = { 0x17, 0x03, 0x03, 0x41, 0x01 };	/* 2^14 + 257 */
	static const uint8_t hs[] = { 0x16, 0x03, 0x03, 0x00, 0x20 };
	struct pair *p = pair_open(t, cctx, NULL);
	uint8_t *rec;
	size_t len;
	int err = 0;

	handshake(p);
	exchange(p, "hello", "hi");
	ck_assert(tls_conn_handed_over(p->s));
	if (how == 0) {
		rec = client_record(p, "a record with one bit flipped", &len);
		rec[len / 2] ^= 0x10;
		ck_assert_int_eq(server_takes(p, rec, len, &err), -1);
		free(rec);
	} else
		ck_assert_int_eq(server_takes(p, how == 1 ? big : hs, 5, &err), -1);
	ck_assert_int_eq(err, EPROTO);
	ck_assert_uint_eq(p->in.len, 0);	/* nothing of it reached the caller */
	ck_assert(!tls_conn_pending(p->s));
	/* Over for good: no close_notify (the client sees the socket close), no more reads. */
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), -1);
	ck_assert_int_eq(errno, EPROTO);
	buf_append(&p->out, "x", 1);
	ck_assert_int_eq(tls_buf_write(p->s, p->sfd, &p->out), -1);
	tls_conn_shutdown(p->s);
	pair_close(p);
}

/* Bad records end their connection, never the worker: the next connection works. */
START_TEST(bad_records_fail_the_connection)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p;
	int how;

	for (how = 0; how < 3; how++)
		broken_record(t, cctx, how);
	p = pair_open(t, cctx, NULL);
	handshake(p);
	exchange(p, "the worker", "goes on");
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* TLS 1.2 stays on OpenSSL, and works. */
START_TEST(tls12_stays_on_openssl)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 1);
	struct pair *p = pair_open(t, cctx, NULL);

	handshake(p);
	ck_assert_int_eq(SSL_version(p->c), TLS1_2_VERSION);
	exchange(p, "hello", "hi");
	exchange(p, "more", "still OpenSSL");
	ck_assert(!tls_conn_handed_over(p->s));
	ck_assert(tls_conn_h2(p->s));
	pair_close(p);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* The server's read finds nothing: the connection rests. */
static void
server_idle(struct pair *p)
{
	ck_assert_int_eq(tls_buf_read(p->s, p->sfd, &p->in), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(!tls_conn_pending(p->s));
}

/*
 * An idle connection holds no SSL (handed over) and, idle past a tidy
 * period, no cipher contexts: they come back from its secrets when it moves,
 * for reads, writes, a KeyUpdate and close_notify.
 */
START_TEST(idle_connection_gives_ciphers_back)
{
	struct tls *t = server();
	SSL_CTX *cctx = client_ctx(NULL, 0);
	struct pair *p = pair_open(t, cctx, NULL), *q = pair_open(t, cctx, NULL);
	char c;
	int r;

	handshake(p);
	handshake(q);
	exchange(p, "hello", "hi");
	exchange(q, "hello", "hi");
	ck_assert(tls_conn_handed_over(p->s) && tls_conn_handed_over(q->s));
	server_idle(p);
	server_idle(q);
	tls_tidy(t);
	exchange(q, "busy", "not idle for a whole period");
	tls_tidy(t);		/* p has rested a whole period: its contexts go */
	exchange(p, "back", "from rest");
	server_idle(p);
	tls_tidy(t);
	tls_tidy(t);
	ck_assert_int_eq(SSL_key_update(p->c, SSL_KEY_UPDATE_REQUESTED), 1);
	exchange(p, "after a rest", "and a KeyUpdate");
	server_idle(p);
	tls_tidy(t);
	tls_tidy(t);
	buf_append(&p->out, "unasked", 7);	/* a write wakes it too */
	ck_assert_int_eq(tls_buf_write(p->s, p->sfd, &p->out), 7);
	ck_assert_uint_eq(client_read(p, (char[8]){ 0 }, 7), 7);
	server_idle(p);
	tls_tidy(t);
	tls_tidy(t);
	tls_conn_shutdown(p->s);
	r = SSL_read(p->c, &c, 1);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(SSL_get_error(p->c, r), SSL_ERROR_ZERO_RETURN);
	exchange(q, "the other", "goes on");
	server_idle(q);
	tls_tidy(t);
	tls_tidy(t);
	pair_close(p);		/* one freed resting, one freed without its contexts */
	pair_close(q);
	SSL_CTX_free(cctx);
	tls_free(t);
}
END_TEST

/* The key log lines the handover takes, and the ones it leaves. */
START_TEST(keylog_lines)
{
	struct tlsrec_handover h;
	char line[300];

	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(tlsrec_handover_keylog(&h, "CLIENT_RANDOM 00 11"), 0);
	ck_assert_int_eq(tlsrec_handover_keylog(&h, "SERVER_HANDSHAKE_TRAFFIC_SECRET_0 ab cd"), 0);
	ck_assert_uint_eq(h.len[0] + h.len[1], 0);
	tlsrec_handover_record(&h, 1);
	ck_assert_uint_eq(h.records[1], 0);	/* not counted before its key */
	snprintf(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0 %064d %s", 0,
	    "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F");
	ck_assert_int_eq(tlsrec_handover_keylog(&h, line), 0);
	ck_assert_uint_eq(h.len[1], 32);
	ck_assert_uint_eq(h.secret[1][31], 0x1f);
	tlsrec_handover_record(&h, 1);
	tlsrec_handover_record(&h, 0);
	ck_assert_uint_eq(h.records[1], 1);
	ck_assert_uint_eq(h.records[0], 0);
	ck_assert_int_eq(tlsrec_handover_keylog(&h, "CLIENT_TRAFFIC_SECRET_0 00 0g"), -1);
	ck_assert_int_eq(tlsrec_handover_keylog(&h, "CLIENT_TRAFFIC_SECRET_0 00 abc"), -1);
	ck_assert_int_eq(tlsrec_handover_keylog(&h, "CLIENT_TRAFFIC_SECRET_0 nospace"), -1);
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "CLIENT_TRAFFIC_SECRET_0 00 ", 27);
	ck_assert_int_eq(tlsrec_handover_keylog(&h, line), -1);	/* longer than SHA-384's */
	ck_assert_uint_eq(h.len[0], 0);
}
END_TEST

Suite *
suite_tlsrec(void)
{
	Suite *s = suite_create("tlsrec");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, fx_setup, fx_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, aes128_gcm_both_ways);
	tcase_add_test(tc, aes256_gcm_both_ways);
	tcase_add_test(tc, chacha20_poly1305_both_ways);
	tcase_add_test(tc, resumed_handshake_hands_over);
	tcase_add_test(tc, pipelined_first_request);
	tcase_add_test(tc, mebibyte_each_way_small_buffers);
	tcase_add_test(tc, nearly_full_caller_buffer);
	tcase_add_test(tc, key_update_both_ways);
	tcase_add_test(tc, close_notify_both_ways);
	tcase_add_test(tc, bad_records_fail_the_connection);
	tcase_add_test(tc, tls12_stays_on_openssl);
	tcase_add_test(tc, idle_connection_gives_ciphers_back);
	tcase_add_test(tc, keylog_lines);
	suite_add_tcase(s, tc);
	return s;
}
