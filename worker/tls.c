/*
 * TLS termination in a worker (see tls.h): the one context, certificate
 * sets per keyring generation, SNI selection in the ClientHello, shared
 * session tickets, non-blocking connections, and what the request step
 * asks about certificates (worker/request.c).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "share/addr.h"
#include "share/hostname.h"
#include "share/log.h"
#include "share/shm.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/tls.h"
#include "worker/tlscert.h"
#include "worker/tlsrec.h"

#define TLS_CERTS_MAX 100000
#define TLS_NAMES_MAX 1000000
#define TLS_FP_LEN 32

/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 keeps OpenSSL's suites (all AEAD). */
#define TLS_CIPHERS_12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/*
 * TLS 1.3 in the order TLS 1.2 has: AES-128-GCM first. OpenSSL's default
 * puts AES-256-GCM with SHA-384 first, whose key schedule (a dozen HKDF
 * steps a handshake) runs SHA-512 in software where SHA-256 has the CPU's
 * SHA extensions: about 10 % of a new connection's CPU here. ChaCha20 still
 * goes to the clients that ask for it first (SSL_OP_PRIORITIZE_CHACHA:
 * phones without AES instructions).
 */
#define TLS_SUITES_13 "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
#define TLS_GROUPS "X25519:P-256:P-384"
#define TLS_SID_CTX "haloyd"

struct tls_cert {
	struct tlscert *cert;	/* one reference held by the set */
	uint8_t fp[TLS_FP_LEN];
	uint32_t id;		/* store id; the set is in ascending id order */
};

struct tls_name {
	char *name;
	uint32_t cert;		/* index into the set's certs */
	int64_t not_after;
};

/* What one keyring generation became. */
struct tls_set {
	struct tls_cert *certs;
	size_t ncerts;
	struct tls_name *names;	/* sorted by name, one entry per name */
	size_t nnames;
	struct tls_name *chals;	/* TLS-ALPN-01 certificates by name: never chosen by SNI */
	size_t nchals;
	size_t def;		/* the default certificate */
};

/*
 * tls_pick's answers for the HTTPS-redirect check, by host name: without
 * them each plain request looked its host up three times (about 1k
 * instructions), though a keep-alive connection asks about the same host.
 * Good for one snapshot and one certificate set; whether the certificate
 * went bad since is asked each time, as tls_select does.
 */
#define TLS_OWN_SLOTS 8
struct tls_own {
	const struct snap *snap;	/* the answers' snapshot, and its generation */
	uint64_t snap_gen;
	struct {
		uint8_t len;		/* 0: empty */
		int pick;
		char name[HOSTNAME_MAX];
	} slot[TLS_OWN_SLOTS];
};

struct tls {
	struct snap *const *snapp;	/* the worker's current snapshot */
	SSL_CTX *ctx;			/* every connection's; certificates are chosen per connection */
	struct tlscert_cache *cache;	/* the parsed certificates (worker/tlscert.c) */
	struct shm_wslot *const *statsp;	/* the worker's counters; NULL: not counted */
	struct tls_set cur;
	struct keyring_ticket_key keys[KEYRING_MAX_KEYS];	/* [0] encrypts */
	size_t nkeys;
	EVP_CIPHER *aes;
	uint32_t gen;
	uint16_t https_port;
	int http2;		/* ALPN offers h2 first */
	tls_ondemand_fn *od_ask;	/* on-demand TLS (worker/odwait.c); NULL: off */
	void *od_arg;
	struct tls_own own;
	struct tlsrec_env *rec;		/* the TLS 1.3 record layer's share (worker/tlsrec.c) */
};

/*
 * A TLS 1.3 connection starts on OpenSSL and, once the handshake is over
 * and OpenSSL holds nothing of it, goes on in worker/tlsrec.c: ssl is then
 * freed and rec runs the records. TLS 1.2, a TLS-ALPN-01 validation and a
 * connection to a backend stay on OpenSSL.
 */
struct tls_conn {
	SSL *ssl;		/* NULL once handed over */
	struct tlsrec *rec;	/* NULL until handed over */
	struct tlsrec_handover *ho;	/* what the handover needs, gathered during the handshake */
	struct tlsrec_env *recenv;	/* the worker's; NULL: never handed over (toward backends) */
	int fd;
	uint8_t h2, resumed;	/* what the handshake agreed, kept past the SSL */
	uint8_t wpending;	/* OpenSSL holds a write to be retried */
	uint32_t want;		/* see tls_conn_events(); cleared by any progress */
	int broken;		/* a fatal error: no close_notify */
	int shut;		/* our close_notify went out */
	int starved;		/* the last read wanted more bytes from the socket */
	int counted;		/* the handshake went into the shared counters */
	int od_state;		/* on-demand TLS: 0 not asked, 1 held, 2 had its say */
	int chal;		/* a TLS-ALPN-01 validation got its challenge certificate */
	int cert;		/* the ClientHello's choice, for tls_on_cert; -1: none pending */
	void *cookie;		/* the caller's (struct conn), for the on-demand hook */
	struct shm_wslot *const *statsp;	/* the worker's slot (share/shm.h); NULL toward backends */
	char peer[ADDR_STR_MAX + 16];
	char *why;		/* why the handshake failed (TLS_WHY_MAX); NULL while it did not */
};

/* Allocated on a failure only: every idle connection would carry it. */
#define TLS_WHY_MAX 160

static void
tls_errf(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_error();	/* the first error names the cause */

	snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "",
	    e != 0 ? ERR_reason_error_string(e) : "");
	ERR_clear_error();
}

/* --- the callbacks OpenSSL makes during a handshake */

#define TLS_ACME_ALPN "acme-tls/1"	/* RFC 8737 section 6.2 */
#define TLS_OD_HELD 1
#define TLS_OD_DONE 2

static int tls_set_find_in(const struct tls_name *v, size_t n, const char *name);

/* 1 when the ClientHello gave ssl a TLS-ALPN-01 challenge certificate. */
static int
tls_conn_is_chal(SSL *ssl)
{
	const struct tls_conn *tc = SSL_get_app_data(ssl);

	return tc != NULL && tc->chal;
}

/* 1 when the ClientHello's ALPN offers exactly "acme-tls/1". */
static int
tls_hello_acme_only(SSL *ssl)
{
	const unsigned char *p;
	size_t len;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
	    &p, &len) != 1 || len != 2 + 1 + sizeof(TLS_ACME_ALPN) - 1)
		return 0;
	return ((size_t)p[0] << 8 | p[1]) == len - 2 && p[2] == sizeof(TLS_ACME_ALPN) - 1 &&
	    memcmp(p + 3, TLS_ACME_ALPN, sizeof(TLS_ACME_ALPN) - 1) == 0;
}

/* The server_name extension's host name, normalised into name; its length, or -1. */
static int
tls_hello_sni(SSL *ssl, char name[HOSTNAME_MAX + 1])
{
	const unsigned char *p;
	size_t len, n;

	/* ServerNameList: u16 length; then NameType 0 (host_name), u16 length, the name. */
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5 ||
	    ((size_t)p[0] << 8 | p[1]) != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
		return -1;
	n = (size_t)p[3] << 8 | p[4];
	if (n == 0 || n > len - 5 || n > HOSTNAME_MAX)
		return -1;
	return hostname_from_header((const char *)p + 5, n, name);
}

/*
 * On-demand TLS: a name only the default certificate would answer may get
 * its own. The hook says whether to hold the handshake (the caller resumes
 * it later: a new keyring, a refusal, or the wait bound); either way it is
 * asked once per connection, so the resumed handshake goes on with
 * whatever the keyring then has.
 */
static int
tls_hello_ondemand(struct tls *t, struct tls_conn *tc, int chosen, const char *name)
{
	if (tc != NULL && tc->od_state == TLS_OD_HELD)
		return SSL_CLIENT_HELLO_RETRY;	/* whatever woke the connection, it still waits */
	if (t->od_ask == NULL || tc == NULL || tc->od_state == TLS_OD_DONE)
		return SSL_CLIENT_HELLO_SUCCESS;
	tc->od_state = TLS_OD_DONE;
	if (name == NULL || !tls_is_default(t, chosen))
		return SSL_CLIENT_HELLO_SUCCESS;
	if (t->od_ask(t->od_arg, tc->cookie, name) != 1)
		return SSL_CLIENT_HELLO_SUCCESS;
	tc->od_state = TLS_OD_HELD;
	return SSL_CLIENT_HELLO_RETRY;
}

void
tls_conn_od_release(struct tls_conn *tc)
{
	if (tc != NULL && tc->od_state == TLS_OD_HELD)
		tc->od_state = TLS_OD_DONE;
}

/*
 * The one place a connection's certificate is chosen, from the
 * ClientHello's server_name (tls_on_cert puts it on). A ClientHello
 * offering only "acme-tls/1" is a CA validating TLS-ALPN-01: it gets the
 * challenge certificate of its name, or a no_application_protocol alert
 * when no order waits for one.
 */
static int
tls_on_client_hello(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	struct tls_conn *tc = SSL_get_app_data(ssl);
	char name[HOSTNAME_MAX + 1];
	int n = tls_hello_sni(ssl, name), i, rc;

	if (tls_hello_acme_only(ssl)) {
		if (n <= 0 || tc == NULL ||
		    (i = tls_set_find_in(t->cur.chals, t->cur.nchals, name)) < 0 ||
		    tlscert_use(t->cache, t->cur.certs[i].cert, ssl) == -1) {
			*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
			return SSL_CLIENT_HELLO_ERROR;
		}
		tc->chal = 1;
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	i = tls_select(t, n > 0 ? name : NULL, n > 0 ? (size_t)n : 0);
	if ((rc = tls_hello_ondemand(t, tc, i, n > 0 ? name : NULL)) != SSL_CLIENT_HELLO_SUCCESS)
		return rc;
	if (i >= 0 && tc != NULL) {
		tc->cert = i;	/* put on by tls_on_cert, if the handshake is not resumed */
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	if (tls_use_cert(t, i, ssl) == -1) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * OpenSSL calls this after the ClientHello callback (in the same step, so
 * the set is the one it chose from) and only when the handshake is not
 * resumed: a resumed one sends no certificate and skips the cost of
 * putting one on (SSL_use_cert_and_key's checks, about 1 % of a resumed
 * handshake's instructions).
 */
static int
tls_on_cert(SSL *ssl, void *arg)
{
	struct tls_conn *tc = SSL_get_app_data(ssl);
	int i;

	if (tc == NULL || tc->cert < 0)
		return 1;	/* none chosen here (a challenge's is on already) */
	i = tc->cert;
	tc->cert = -1;
	return tls_use_cert(arg, i, ssl) == 0;
}

/* Chosen already; accepting the name acknowledges it and records it in the session. */
static int
tls_on_servername(SSL *ssl, int *alert, void *arg)
{
	(void)ssl;
	(void)alert;
	(void)arg;
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char both[] = "\x02h2\x08http/1.1", h1[] = "\x08http/1.1";
	static const unsigned char acme[] = "\x0a" TLS_ACME_ALPN;
	const struct tls *t = arg;
	unsigned char *sel;

	if (tls_conn_is_chal(ssl)) {
		if (SSL_select_next_proto(&sel, outlen, acme, sizeof(acme) - 1, in, inlen) !=
		    OPENSSL_NPN_NEGOTIATED)
			return SSL_TLSEXT_ERR_ALERT_FATAL;
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	if (SSL_select_next_proto(&sel, outlen, t->http2 ? both : h1,
	    t->http2 ? sizeof(both) - 1 : sizeof(h1) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_ticket_mac(EVP_MAC_CTX *hctx, const struct keyring_ticket_key *k)
{
	OSSL_PARAM p[3];

	p[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(uintptr_t)k->hmac_key,
	    sizeof(k->hmac_key));
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)"SHA256", 0);
	p[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, p) == 1 ? 0 : -1;
}

/*
 * Every worker holds the same keys, so a ticket made by one decrypts in any
 * other. Tickets under an older key still resume, and get a fresh ticket.
 */
static int
tls_on_ticket(SSL *ssl, unsigned char name[KEYRING_TICKET_NAME_LEN], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const struct keyring_ticket_key *k;
	size_t i;

	if (enc) {
		if (t->nkeys == 0)
			return 0;	/* no ticket */
		k = &t->keys[0];
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(t->aes)) != 1 ||
		    EVP_EncryptInit_ex2(cctx, t->aes, k->aes_key, iv, NULL) != 1 ||
		    tls_ticket_mac(hctx, k) == -1)
			return -1;
		memcpy(name, k->name, KEYRING_TICKET_NAME_LEN);
		return 1;
	}
	for (i = 0; i < t->nkeys; i++)
		if (memcmp(name, t->keys[i].name, KEYRING_TICKET_NAME_LEN) == 0)
			break;
	if (i == t->nkeys)
		return 0;	/* unknown key: a full handshake */
	k = &t->keys[i];
	if (k->not_after != 0 && (uint64_t)time(NULL) > k->not_after)
		return 0;
	if (tls_ticket_mac(hctx, k) == -1 || EVP_DecryptInit_ex2(cctx, t->aes, k->aes_key, iv, NULL) != 1)
		return -1;
	return i == 0 ? 1 : 2;
}

/*
 * The application traffic secrets, for the handover to worker/tlsrec.c.
 * OpenSSL logs each as it installs that key: the records it protects after
 * that are counted from here (tls_on_msg). It formats every line with a
 * sprintf per byte (45k instructions a line, five a handshake), so the
 * callback is on only from a Finished message to the next secret's line:
 * the server's Finished comes right before its application key, the
 * client's before the client's.
 */
static void
tls_on_keylog(const SSL *ssl, const char *line)
{
	struct tls_conn *tc = SSL_get_app_data(ssl);

	if (strlen(line) < 7 || strncmp(line + 6, "_TRAFFIC_SECRET_0 ", 18) != 0)
		return;		/* CLIENT_ or SERVER_ only */
	SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(ssl), NULL);
	if (tc == NULL || tc->recenv == NULL)
		return;
	if (tc->ho == NULL && (tc->ho = calloc(1, sizeof(*tc->ho))) == NULL)
		return;
	if (tlsrec_handover_keylog(tc->ho, line) == -1)
		tc->ho->refused = 1;
}

/*
 * Record headers both ways, counted under the application keys; a KeyUpdate
 * keeps OpenSSL on; a TLS 1.3 Finished turns the key log on (tls_on_keylog).
 */
static void
tls_on_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
    void *arg)
{
	struct tls_conn *tc = SSL_get_app_data(ssl);
	unsigned char type = len > 0 ? *(const unsigned char *)buf : 0;

	(void)version;
	(void)arg;
	if (tc == NULL || tc->recenv == NULL)
		return;
	if (content_type == SSL3_RT_HANDSHAKE && type == SSL3_MT_FINISHED &&
	    SSL_version(ssl) == TLS1_3_VERSION)
		SSL_CTX_set_keylog_callback(SSL_get_SSL_CTX(ssl), tls_on_keylog);
	if (tc->ho == NULL)
		return;
	if (content_type == SSL3_RT_HEADER)
		tlsrec_handover_record(tc->ho, write_p);
	else if (content_type == SSL3_RT_HANDSHAKE && type == SSL3_MT_KEY_UPDATE)
		tc->ho->refused = 1;
}

/* --- contexts */

static int
tls_ctx_settings(struct tls *t, SSL_CTX *ctx)
{
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	/* Buffers move (struct buf compacts) and idle connections give theirs back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_RELEASE_BUFFERS);
	/* Tickets carry the sessions: a per-process cache would not help the other workers. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Whole socket reads instead of a header and a body per record: fewer syscalls. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_on_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	SSL_CTX_set_alpn_select_cb(ctx, tls_on_alpn, t);
	SSL_CTX_set_client_hello_cb(ctx, tls_on_client_hello, t);
	SSL_CTX_set_cert_cb(ctx, tls_on_cert, t);
	SSL_CTX_set_msg_callback(ctx, tls_on_msg);	/* it turns tls_on_keylog on and off */
	if (SSL_CTX_set_app_data(ctx, t) != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS_SUITES_13) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SID_CTX,
	    sizeof(TLS_SID_CTX) - 1) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_on_ticket) != 1 ||
	    SSL_CTX_set_num_tickets(ctx, 1) != 1)
		return -1;
	return 0;
}

/* The one context every connection starts from: no certificate, the ClientHello callback puts one. */
static SSL_CTX *
tls_ctx_new(struct tls *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL || tls_ctx_settings(t, ctx) == -1) {
		log_warnx("cannot make the TLS context");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* --- sets of certificates */

static void
tls_set_clear(struct tls *t, struct tls_set *s)
{
	size_t i;

	for (i = 0; i < s->ncerts; i++)
		tlscert_unref(t->cache, s->certs[i].cert);	/* connections hold their own references */
	for (i = 0; i < s->nnames; i++)
		free(s->names[i].name);
	for (i = 0; i < s->nchals; i++)
		free(s->chals[i].name);
	free(s->certs);
	free(s->names);
	free(s->chals);
	memset(s, 0, sizeof(*s));
}

static int
tls_name_cmp(const void *a, const void *b)
{
	const struct tls_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	if (x->not_after != y->not_after)
		return x->not_after > y->not_after ? -1 : 1;
	return x->cert < y->cert ? -1 : x->cert > y->cert;
}

static int
tls_set_find_in(const struct tls_name *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	/* Lower bound on the name alone. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && strcmp(v[lo].name, name) == 0)
		return (int)v[lo].cert;
	return -1;
}

static int
tls_set_find(const struct tls_set *s, const char *name)
{
	return tls_set_find_in(s->names, s->nnames, name);
}

static int tls_set_find_id(const struct tls_set *s, uint32_t id);

/* The current set's certificate of the same store id and fingerprint, else the first with that fingerprint. */
static struct tlscert *
tls_cert_carried(struct tls *t, uint32_t id, const uint8_t fp[TLS_FP_LEN])
{
	int i = tls_set_find_id(&t->cur, id);
	size_t j;

	/* A bad one is made again: the same chain may come with the right key now. */
	if (i >= 0 && memcmp(t->cur.certs[i].fp, fp, TLS_FP_LEN) == 0 &&
	    !tlscert_is_bad(t->cur.certs[i].cert))
		return tlscert_ref(t->cur.certs[i].cert);
	for (j = 0; j < t->cur.ncerts; j++)
		if (memcmp(t->cur.certs[j].fp, fp, TLS_FP_LEN) == 0 &&
		    !tlscert_is_bad(t->cur.certs[j].cert))
			return tlscert_ref(t->cur.certs[j].cert);
	return NULL;
}

/* The certificate for in: carried over from the current set when the fingerprint matches, else new. */
static struct tlscert *
tls_cert_for(struct tls *t, const struct tls_cert_in *in, uint8_t fp[TLS_FP_LEN], char *err,
    size_t errlen)
{
	struct tlscert *c;

	if (in->fingerprint != NULL)
		memcpy(fp, in->fingerprint, TLS_FP_LEN);
	else if (EVP_Digest(in->chain, in->chain_len, fp, NULL, EVP_sha256(), NULL) != 1) {
		tls_errf(err, errlen, "SHA-256");
		return NULL;
	}
	if ((c = tls_cert_carried(t, in->id, fp)) != NULL)
		return c;
	return tlscert_new(t->cache, in->id, in->chain, in->chain_len, in->key, in->key_len, err,
	    errlen);
}

/* Adds cert's names to s (names sorted and deduplicated later); a challenge's to its own list. */
static int
tls_set_add_names(struct tls_set *s, const struct tls_cert_in *in, uint32_t cert)
{
	struct tls_name *v = in->is_chal ? s->chals : s->names;
	size_t i, *n = in->is_chal ? &s->nchals : &s->nnames;

	for (i = 0; i < in->nnames; i++) {
		if (*n == TLS_NAMES_MAX)
			return -1;
		if ((v[*n].name = strdup(in->names[i])) == NULL)
			return -1;
		v[*n].not_after = in->not_after;
		v[(*n)++].cert = cert;
	}
	return 0;
}

static void
tls_sort_names(struct tls_name *v, size_t *n)
{
	size_t i, j = 0;

	qsort(v, *n, sizeof(v[0]), tls_name_cmp);
	/* A name two certificates carry goes to the one that expires last. */
	for (i = 0; i < *n; i++) {
		if (j > 0 && strcmp(v[j - 1].name, v[i].name) == 0) {
			free(v[i].name);
			continue;
		}
		v[j++] = v[i];
	}
	*n = j;
}

static void
tls_set_sort_names(struct tls_set *s)
{
	tls_sort_names(s->names, &s->nnames);
	tls_sort_names(s->chals, &s->nchals);
}

static size_t
tls_count_names(const struct tls_keyring_in *in)
{
	size_t i, n = 0;

	for (i = 0; i < in->ncerts; i++)
		n += in->certs[i].nnames;
	return n;
}

/*
 * Builds next from in. A certificate that does not load is left out with a
 * warning, so one bad certificate cannot stop the others; the default one
 * must load.
 */
static int
tls_set_build(struct tls *t, struct tls_set *next, const struct tls_keyring_in *in, char *err,
    size_t errlen)
{
	size_t i, nn = tls_count_names(in);
	int have_def = 0;

	next->certs = calloc(in->ncerts, sizeof(next->certs[0]));
	next->names = calloc(nn > 0 ? nn : 1, sizeof(next->names[0]));
	next->chals = calloc(nn > 0 ? nn : 1, sizeof(next->chals[0]));
	if (next->certs == NULL || next->names == NULL || next->chals == NULL || nn > TLS_NAMES_MAX) {
		snprintf(err, errlen, "out of memory for %zu certificates", in->ncerts);
		return -1;
	}
	for (i = 0; i < in->ncerts; i++) {
		const struct tls_cert_in *c = &in->certs[i];
		struct tls_cert *tc = &next->certs[next->ncerts];
		char why[160];

		/* The default must load now; the others are checked at first use. */
		if ((tc->cert = tls_cert_for(t, c, tc->fp, why, sizeof(why))) != NULL &&
		    c->is_default && tlscert_check(t->cache, tc->cert) == -1) {
			snprintf(why, sizeof(why), "does not load");
			tlscert_unref(t->cache, tc->cert);
			tc->cert = NULL;
		}
		if (tc->cert == NULL) {
			if (c->is_default) {
				snprintf(err, errlen, "default certificate: %s", why);
				return -1;
			}
			log_warnx("certificate %zu (%s) left out: %s", i,
			    c->nnames > 0 ? c->names[0] : "no name", why);
			continue;
		}
		tc->id = c->id;
		if (c->is_default && !have_def) {
			next->def = next->ncerts;
			have_def = 1;
		}
		if (tls_set_add_names(next, c, (uint32_t)next->ncerts++) == -1) {
			snprintf(err, errlen, "out of memory for names");
			return -1;
		}
	}
	if (next->ncerts == 0) {
		snprintf(err, errlen, "no usable certificate");
		return -1;
	}
	tls_set_sort_names(next);
	return 0;
}

/* --- the worker's TLS state */

struct tls *
tls_new(struct snap *const *snapp)
{
	struct tls *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->snapp = snapp;
	if ((t->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL ||
	    (t->rec = tlsrec_env_new()) == NULL ||
	    (t->cache = tlscert_cache_new(TLSCERT_PARSED_MAX)) == NULL ||
	    (t->ctx = tls_ctx_new(t)) == NULL) {
		tls_free(t);
		return NULL;
	}
	return t;
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	tls_set_clear(t, &t->cur);
	OPENSSL_cleanse(t->keys, sizeof(t->keys));
	SSL_CTX_free(t->ctx);	/* connections in flight hold their own reference */
	tlscert_cache_free(t->cache);
	EVP_CIPHER_free(t->aes);
	tlsrec_env_free(t->rec);
	free(t);
}

int
tls_install(struct tls *t, const struct tls_keyring_in *in, char *err, size_t errlen)
{
	struct tls_set next;

	memset(&next, 0, sizeof(next));
	if (in->ncerts == 0 || in->ncerts > TLS_CERTS_MAX) {
		snprintf(err, errlen, "%zu certificates", in->ncerts);
		return -1;
	}
	if (tls_set_build(t, &next, in, err, errlen) == -1) {
		tls_set_clear(t, &next);
		return -1;
	}
	tls_set_clear(t, &t->cur);
	t->cur = next;
	OPENSSL_cleanse(t->keys, sizeof(t->keys));
	t->nkeys = in->ntickets < KEYRING_MAX_KEYS ? in->ntickets : KEYRING_MAX_KEYS;
	if (t->nkeys > 0)
		memcpy(t->keys, in->tickets, t->nkeys * sizeof(t->keys[0]));
	t->gen = in->generation;
	memset(&t->own, 0, sizeof(t->own));	/* answers of the old set */
	log_debug("keyring %u: %zu certificates, %zu names, %zu TLS-ALPN-01, %zu ticket keys",
	    t->gen, t->cur.ncerts, t->cur.nnames, t->cur.nchals, t->nkeys);
	return 0;
}

/* Points in at the mapped keyring kr; names gets every cert's name pointers. */
static void
tls_decode_keyring(const struct keyring *kr, struct tls_keyring_in *in, struct tls_cert_in *certs,
    const char **names)
{
	uint32_t i, j, def = keyring_default_cert(kr);
	size_t nn = 0;

	for (i = 0; i < keyring_cert_count(kr); i++) {
		const struct keyring_cert *c = keyring_cert_at(kr, i);
		struct tls_cert_in *ci = &certs[i];

		ci->chain = keyring_string(kr, c->chain);
		ci->chain_len = c->chain.len;
		ci->key = keyring_string(kr, c->key);
		ci->key_len = c->key.len;
		ci->fingerprint = c->fingerprint;
		ci->id = c->id;
		ci->not_after = c->not_after;
		ci->is_default = i == def;
		ci->is_chal = c->source == KEYRING_SRC_ACME_CHAL;
		ci->names = &names[nn];
		ci->nnames = c->name_count;
		for (j = 0; j < c->name_count; j++)
			names[nn++] = keyring_cert_name(kr, c, j, NULL);
	}
	in->certs = certs;
	in->ncerts = keyring_cert_count(kr);
	in->ntickets = keyring_ticket_key_count(kr);
	in->tickets = in->ntickets > 0 ? keyring_ticket_key_at(kr, 0) : NULL;
}

static size_t
tls_keyring_names(const struct keyring *kr)
{
	uint32_t i;
	size_t n = 0;

	for (i = 0; i < keyring_cert_count(kr); i++)
		n += keyring_cert_at(kr, i)->name_count;
	return n;
}

int
tls_install_keyring(struct tls *t, int fd, uint32_t gen, char *err, size_t errlen)
{
	struct keyring *kr = NULL;
	struct tls_keyring_in in = { .generation = gen };
	struct tls_cert_in *certs = NULL;
	const char **names = NULL;
	int rc = -1;

	if (keyring_map(fd, &kr, err, errlen) == -1)
		return -1;
	if (keyring_generation(kr) != gen) {
		snprintf(err, errlen, "keyring of generation %llu sent as %u",
		    (unsigned long long)keyring_generation(kr), gen);
		goto out;
	}
	certs = calloc(keyring_cert_count(kr) + 1, sizeof(*certs));
	names = calloc(tls_keyring_names(kr) + 1, sizeof(*names));
	if (certs == NULL || names == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	tls_decode_keyring(kr, &in, certs, names);
	rc = tls_install(t, &in, err, errlen);
out:
	free(certs);
	free(names);
	keyring_unmap(kr);	/* the keys now live in OpenSSL's objects only */
	return rc;
}

void
tls_tidy(struct tls *t)
{
	if (t != NULL)
		tlsrec_env_tidy(t->rec);
}

int
tls_ready(const struct tls *t)
{
	return t != NULL && t->cur.ncerts > 0;
}

uint32_t
tls_generation(const struct tls *t)
{
	return t->gen;
}

void
tls_set_https_port(struct tls *t, uint16_t port)
{
	/* With several HTTPS listeners, 443 wins: redirects then need no port at all. */
	if (t->https_port == 0 || port == 443)
		t->https_port = port;
}

/* --- SNI selection */

static int
tls_covers(const struct tls *t, int i, const char *name, size_t len)
{
	X509 *leaf = tlscert_leaf(t->cache, t->cur.certs[i].cert);

	return leaf != NULL && X509_check_host(leaf, name, len, 0, NULL) == 1;
}

/* The set's index of the certificate with store id, or -1. */
static int
tls_set_find_id(const struct tls_set *s, uint32_t id)
{
	size_t lo = 0, hi = s->ncerts, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->certs[mid].id == id)
			return (int)mid;
		if (s->certs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int
tls_pick(const struct tls *t, const char *name, size_t len)
{
	const struct tls_set *s = &t->cur;
	const struct snap *snap = t->snapp != NULL ? *t->snapp : NULL;
	const struct snap_route *r;
	const struct snap_host *h;
	char wild[HOSTNAME_MAX + 3];
	const char *dot;
	int i;

	if (s->ncerts == 0)
		return -1;
	if (name == NULL || len == 0)
		return (int)s->def;
	/* A route's name: the lookup that routes it carries the master's choice. */
	if (snap != NULL && (h = snap_lookup_host(snap, name, len)) != NULL &&
	    h->cert != SNAP_NONE && (i = tls_set_find_id(s, h->cert)) >= 0)
		return i;
	/* Names no route has (or a generation the snapshot has not caught up with). */
	if ((i = tls_set_find(s, name)) >= 0)
		return i;
	/* An alias: its route's certificate, when that one covers it too. */
	if (snap != NULL && (r = snap_lookup(snap, name, len)) != NULL &&
	    (i = tls_set_find(s, snap_string(snap, r->name))) >= 0 && tls_covers(t, i, name, len))
		return i;
	if ((dot = memchr(name, '.', len)) != NULL && (size_t)(name + len - dot) < HOSTNAME_MAX) {
		/* Per plain request (the HTTPS redirect check): no formatting. */
		wild[0] = '*';
		memcpy(wild + 1, dot, (size_t)(name + len - dot));
		wild[1 + (name + len - dot)] = '\0';
		if ((i = tls_set_find(s, wild)) >= 0)
			return i;
	}
	return (int)s->def;
}

/* Certificate i, or the default when i failed at its first use (one bad at install is left out). */
static int
tls_usable(const struct tls *t, int i)
{
	if (i >= 0 && tlscert_is_bad(t->cur.certs[i].cert))
		return (int)t->cur.def;
	return i;
}

int
tls_select(const struct tls *t, const char *name, size_t len)
{
	return tls_usable(t, tls_pick(t, name, len));
}

int
tls_is_default(const struct tls *t, int i)
{
	return i >= 0 && (size_t)i == t->cur.def;
}

int
tls_use_cert(const struct tls *t, int i, SSL *ssl)
{
	if (i < 0 || (size_t)i >= t->cur.ncerts)
		return -1;
	if (tlscert_use(t->cache, t->cur.certs[i].cert, ssl) == 0)
		return 0;
	/* Bad at its first use (logged once): the default, as tls_select now says. */
	return (size_t)i != t->cur.def ? tlscert_use(t->cache, t->cur.certs[t->cur.def].cert, ssl) : -1;
}

const void *
tls_leaf(const struct tls *t, int i)
{
	if (i < 0 || (size_t)i >= t->cur.ncerts)
		return NULL;
	return tlscert_leaf(t->cache, t->cur.certs[i].cert);
}

/* --- connections */

struct tls_conn *
tls_conn_new(struct tls *t, int fd, const char *peer)
{
	struct tls_conn *tc;

	if (!tls_ready(t))
		return NULL;
	if ((tc = calloc(1, sizeof(*tc))) == NULL)
		return NULL;
	ERR_clear_error();
	/* The ClientHello callback puts the name's certificate on it. */
	if ((tc->ssl = SSL_new(t->ctx)) == NULL ||
	    SSL_set_fd(tc->ssl, fd) != 1) {
		log_warnx("cannot start TLS for %s", peer);
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc);
		return NULL;
	}
	SSL_set_accept_state(tc->ssl);
	SSL_set_app_data(tc->ssl, tc);
	tc->cert = -1;
	tc->statsp = t->statsp;
	tc->recenv = t->rec;
	tc->fd = fd;
	util_strlcpy(tc->peer, peer, sizeof(tc->peer));
	return tc;
}

struct tls_conn *
tls_conn_wrap(struct ssl_st *ssl, const char *peer)
{
	struct tls_conn *tc = calloc(1, sizeof(*tc));

	if (tc == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	tc->ssl = ssl;
	tc->cert = -1;
	tc->fd = -1;
	util_strlcpy(tc->peer, peer, sizeof(tc->peer));
	return tc;
}

/* The first bytes through a connection: its handshake is done, full or resumed. */
static void
tls_conn_count(struct tls_conn *tc, int failed)
{
	if (tc->counted || tc->statsp == NULL)
		return;
	tc->counted = 1;
	shm_add(&(*tc->statsp)->tls[failed ? SHM_TLS_FAILED : tls_conn_resumed(tc) ?
	    SHM_TLS_RESUMED : SHM_TLS_FULL], 1);
}

void
tls_set_stats(struct tls *t, struct shm_wslot *const *statsp)
{
	t->statsp = statsp;
}

/* The secrets are wiped as soon as the handover has them, or cannot happen. */
static void
tls_conn_forget_keys(struct tls_conn *tc)
{
	if (tc->ho != NULL)
		OPENSSL_clear_free(tc->ho, sizeof(*tc->ho));
	tc->ho = NULL;
}

/*
 * Goes on in worker/tlsrec.c when OpenSSL holds nothing of the connection:
 * a TLS 1.3 handshake done (its tickets written), no write to retry, no
 * record received and not yet read, not even a header (read-ahead may have
 * taken bytes past the last record). Records OpenSSL protected under the
 * application keys were counted (tls_on_msg): the sequence numbers go on.
 */
static void
tls_conn_handover(struct tls_conn *tc)
{
	const SSL_CIPHER *c;

	if (tc->ho == NULL || tc->wpending || !SSL_is_init_finished(tc->ssl) ||
	    SSL_has_pending(tc->ssl) || strcmp(SSL_rstate_string(tc->ssl), "RH") != 0)
		return;
	if (tc->ho->refused || SSL_version(tc->ssl) != TLS1_3_VERSION ||
	    (c = SSL_get_current_cipher(tc->ssl)) == NULL ||
	    (tc->rec = tlsrec_new(tc->recenv, SSL_CIPHER_get_protocol_id(c), tc->ho,
	    tc->peer)) == NULL) {
		tls_conn_forget_keys(tc);	/* stays on OpenSSL */
		return;
	}
	tls_conn_forget_keys(tc);
	tls_conn_count(tc, 0);
	tc->h2 = (uint8_t)tls_conn_h2(tc);
	tc->resumed = (uint8_t)SSL_session_reused(tc->ssl);
	SSL_free(tc->ssl);
	tc->ssl = NULL;
}

/* The record layer's answer: a failure other than EAGAIN ends the connection, as OpenSSL's. */
static ssize_t
tls_conn_rec_result(struct tls_conn *tc, ssize_t n)
{
	if (n == -1 && errno != EAGAIN && errno != ENOBUFS)
		tc->broken = 1;
	return n;
}

void
tls_conn_free(struct tls_conn *tc)
{
	if (tc == NULL)
		return;
	/* Whatever ended a handshake that never finished (error, timeout, EOF), it failed. */
	tls_conn_count(tc, !tls_conn_established(tc));
	tls_conn_shutdown(tc);
	SSL_free(tc->ssl);
	tlsrec_free(tc->rec);
	tls_conn_forget_keys(tc);
	free(tc->why);
	free(tc);
}

/* Sets why the handshake failed: pre then reason (out of memory: it stays unsaid). */
static void
tls_conn_why(struct tls_conn *tc, const char *pre, const char *reason)
{
	if (tc->why == NULL && (tc->why = malloc(TLS_WHY_MAX)) == NULL)
		return;
	snprintf(tc->why, TLS_WHY_MAX, "%s%s", pre, reason != NULL ? reason : "unknown");
}

/*
 * Maps an OpenSSL failure onto the read()/write() contract. other is the
 * unusual direction for the call: EPOLLOUT for reads, EPOLLIN for writes.
 */
static ssize_t
tls_conn_fail(struct tls_conn *tc, int ret, uint32_t other)
{
	int e = SSL_get_error(tc->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_CLIENT_HELLO_CB:
		/* Held by on-demand TLS: no socket event resumes it; worker/odwait.c does. */
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		/* Only the unusual direction matters: the caller watches the usual one. */
		tc->want |= (e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) & other;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		/* The peer's close_notify: EOF for a read; a write that failed has nobody to go to. */
		if (other == EPOLLIN) {
			errno = EPIPE;
			return -1;
		}
		return 0;
	default:
		break;
	}
	if (!SSL_is_init_finished(tc->ssl)) {
		unsigned long err = ERR_peek_last_error();
		long v = SSL_get_verify_result(tc->ssl);

		/* A client's failed certificate check says why; OpenSSL's reason only says it failed. */
		if (v != X509_V_OK)
			tls_conn_why(tc, "certificate verify failed: ", X509_verify_cert_error_string(v));
		else
			tls_conn_why(tc, "", err != 0 ? ERR_reason_error_string(err) :
			    e == SSL_ERROR_SYSCALL ? "connection lost" : "protocol error");
		log_debug("TLS handshake with %s failed: %s", tc->peer, tls_conn_error(tc));
	}
	tc->broken = 1;
	ERR_clear_error();
	if (e != SSL_ERROR_SYSCALL || errno == 0 || errno == EAGAIN)
		errno = EPROTO;
	return -1;
}

int
tls_conn_handshake(struct tls_conn *tc)
{
	int ret;

	if (tc->broken)
		return -1;
	if (tls_conn_established(tc))
		return 1;
	ERR_clear_error();
	tc->want = 0;
	if ((ret = SSL_do_handshake(tc->ssl)) == 1)
		return 1;
	/* Both directions are the handshake's own: tls_conn_events names the one it waits for. */
	if (tls_conn_fail(tc, ret, EPOLLIN | EPOLLOUT) == -1 && errno == EAGAIN)
		return 0;
	tc->broken = 1;
	if (tc->why == NULL)
		tls_conn_why(tc, "", "connection closed during the handshake");
	return -1;
}

const char *
tls_conn_error(const struct tls_conn *tc)
{
	return tc->why != NULL ? tc->why : "";
}

const char *
tls_conn_peer(const struct tls_conn *tc)
{
	return tc->peer;
}

struct ssl_session_st *
tls_conn_session(const struct tls_conn *tc)
{
	SSL_SESSION *sess;

	if (tc->broken || tc->ssl == NULL || !SSL_is_init_finished(tc->ssl) ||
	    (sess = SSL_get1_session(tc->ssl)) == NULL)
		return NULL;
	if (!SSL_SESSION_is_resumable(sess)) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	return sess;
}

int
tls_conn_resumed(const struct tls_conn *tc)
{
	return tc->ssl != NULL ? SSL_session_reused(tc->ssl) : tc->resumed;
}

int
tls_conn_acme(const struct tls_conn *tc)
{
	const unsigned char *p;
	unsigned int n;

	if (tc == NULL || tc->ssl == NULL || !SSL_is_init_finished(tc->ssl))
		return 0;	/* a validation is never handed over */
	SSL_get0_alpn_selected(tc->ssl, &p, &n);
	return n == sizeof(TLS_ACME_ALPN) - 1 && memcmp(p, TLS_ACME_ALPN, n) == 0;
}

/*
 * SSL_get_error reads the thread's error queue, which must be empty before
 * the call. ERR_clear_error on an empty queue cost about 800 instructions
 * (OpenSSL 3 clears every slot), twice per request; looking first is cheap.
 */
static void
tls_err_reset(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

ssize_t
tls_buf_read(struct tls_conn *tc, int fd, struct buf *b)
{
	size_t room, n;
	int ret;

	if (tc == NULL)
		return buf_read_fd(b, fd);
	/* A TLS-ALPN-01 validation is over with its handshake (RFC 8737 section 3): EOF. */
	if (tls_conn_acme(tc)) {
		tls_conn_shutdown(tc);
		return 0;
	}
	if ((room = buf_room(b)) == 0) {
		errno = ENOBUFS;
		return -1;
	}
	if (tc->broken) {
		errno = EPROTO;
		return -1;
	}
	if (tc->rec != NULL)
		return tls_conn_rec_result(tc, tlsrec_read(tc->rec, fd, b));
	tls_err_reset();
	if ((ret = SSL_read_ex(tc->ssl, buf_tail(b), room, &n)) == 1) {
		tls_conn_count(tc, 0);
		tc->want = 0;
		tc->starved = 0;
		b->len += n;
		if (tc->ho != NULL)
			tls_conn_handover(tc);
		return (ssize_t)n;
	}
	tc->starved = SSL_get_error(tc->ssl, ret) == SSL_ERROR_WANT_READ;
	if (tc->starved && tls_conn_acme(tc)) {
		tls_conn_count(tc, 0);
		tls_conn_shutdown(tc);
		return 0;
	}
	if (tc->starved && tc->ho != NULL && (tls_conn_handover(tc), tc->rec != NULL)) {
		errno = EAGAIN;
		return -1;
	}
	return tls_conn_fail(tc, ret, EPOLLOUT);
}

ssize_t
tls_buf_write(struct tls_conn *tc, int fd, struct buf *b)
{
	size_t n;
	int ret;

	if (tc == NULL)
		return buf_write_fd(b, fd);
	if (tc->broken) {
		errno = EPIPE;
		return -1;
	}
	if (tc->rec != NULL)
		return tls_conn_rec_result(tc, tlsrec_write(tc->rec, fd, b));
	tls_err_reset();
	if ((ret = SSL_write_ex(tc->ssl, buf_head(b), b->len, &n)) == 1) {
		tls_conn_count(tc, 0);
		tc->want = 0;
		tc->wpending = 0;
		buf_consume(b, n);
		return (ssize_t)n;
	}
	tc->wpending = 1;	/* the same bytes come again */
	return tls_conn_fail(tc, ret, EPOLLIN);
}

uint32_t
tls_conn_events(const struct tls_conn *tc)
{
	if (tc == NULL)
		return 0;
	return tc->rec != NULL ? tlsrec_events(tc->rec) : tc->want;
}

int
tls_conn_pending(const struct tls_conn *tc)
{
	/*
	 * Read-ahead may leave whole records in OpenSSL's buffer; once a read
	 * came back wanting more, what is left there is a partial record that
	 * the next socket bytes (and so epoll) complete.
	 */
	if (tc != NULL && tc->rec != NULL)
		return !tc->broken && tlsrec_pending(tc->rec);
	return tc != NULL && !tc->broken &&
	    (SSL_pending(tc->ssl) > 0 || (!tc->starved && SSL_has_pending(tc->ssl)));
}

void
tls_conn_shutdown(struct tls_conn *tc)
{
	if (tc == NULL || tc->broken || tc->shut || !tls_conn_established(tc))
		return;
	tc->shut = 1;
	if (tc->rec != NULL) {
		tlsrec_close_notify(tc->rec, tc->fd);
		return;
	}
	ERR_clear_error();
	(void)SSL_shutdown(tc->ssl);	/* one try: nobody waits for the peer's answer */
	ERR_clear_error();
}

int
tls_conn_established(const struct tls_conn *tc)
{
	return tc != NULL && (tc->rec != NULL || SSL_is_init_finished(tc->ssl));
}

int
tls_conn_handed_over(const struct tls_conn *tc)
{
	return tc != NULL && tc->rec != NULL;
}

/* --- HTTP over TLS, and port 80 */

void
tls_set_ondemand(struct tls *t, tls_ondemand_fn *fn, void *arg)
{
	t->od_ask = fn;
	t->od_arg = arg;
}

void
tls_conn_set_cookie(struct tls_conn *tc, void *cookie)
{
	if (tc != NULL)
		tc->cookie = cookie;
}

void
tls_set_http2(struct tls *t, int on)
{
	t->http2 = on;
}

int
tls_conn_h2(const struct tls_conn *tc)
{
	const unsigned char *p;
	unsigned int n;

	if (tc->ssl == NULL)
		return tc->h2;
	SSL_get0_alpn_selected(tc->ssl, &p, &n);
	return n == 2 && memcmp(p, "h2", 2) == 0;
}

uint16_t
tls_https_port(const struct tls *t)
{
	return t != NULL ? t->https_port : 0;
}

/* tls_pick's answer for name, from the cache when it has one for the current snapshot. */
static int
tls_pick_cached(struct tls *t, const char *name, size_t len)
{
	const struct snap *snap = t->snapp != NULL ? *t->snapp : NULL;
	uint64_t gen = snap != NULL ? snap_generation(snap) : 0;
	struct tls_own *o = &t->own;
	size_t k;

	if (len > HOSTNAME_MAX)
		return tls_pick(t, name, len);
	if (o->snap != snap || o->snap_gen != gen) {
		memset(o, 0, sizeof(*o));
		o->snap = snap;
		o->snap_gen = gen;
	}
	k = (len + (unsigned char)name[0] + (unsigned char)name[len - 1]) % TLS_OWN_SLOTS;
	if (o->slot[k].len == len && memcmp(o->slot[k].name, name, len) == 0)
		return o->slot[k].pick;
	o->slot[k].pick = tls_pick(t, name, len);
	o->slot[k].len = (uint8_t)len;
	memcpy(o->slot[k].name, name, len);
	return o->slot[k].pick;
}

int
tls_has_own_cert(struct tls *t, const char *name, size_t len)
{
	int i;

	if (t == NULL || len == 0)
		return 0;
	i = tls_usable(t, tls_pick_cached(t, name, len));	/* tls_select, its pick cached */
	return i >= 0 && !tls_is_default(t, i);
}
