/*
 * The TLS 1.3 record layer after the handshake (see tlsrec.h): keys from
 * the traffic secrets (RFC 8446 section 7), records sealed and opened
 * (section 5), KeyUpdate (4.6.3), close_notify and the alerts that end a
 * connection (6).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "share/log.h"
#include "share/util.h"
#include "worker/tlsrec.h"

#define TLSREC_HDR 5
#define TLSREC_TAG 16
#define TLSREC_IV 12
#define TLSREC_KEY_MAX 32
#define TLSREC_PLAIN_MAX 16384			/* 2^14: RFC 8446 section 5.1 */
#define TLSREC_CIPHER_MAX (TLSREC_PLAIN_MAX + 256)	/* section 5.2 */
/* Two whole records: a read fills most of a caller's 32 KiB buffer, a write sends one. */
#define TLSREC_SCRATCH (2 * (TLSREC_HDR + TLSREC_CIPHER_MAX))
#define TLSREC_WRITE_DATA 2			/* data records one write seals */
#define TLSREC_WRITE_MAX (2 * TLSREC_WRITE_DATA)	/* and a KeyUpdate before each */

enum { TLSREC_CT_ALERT = 21, TLSREC_CT_HANDSHAKE = 22, TLSREC_CT_DATA = 23 };
#define TLSREC_MT_KEY_UPDATE 24
#define TLSREC_AD_CLOSE_NOTIFY 0
#define TLSREC_AD_USER_CANCELED 90
#define TLSREC_EOF_SEEN 1
#define TLSREC_EOF_SAID 2

struct tlsrec_env {
	EVP_CIPHER *aes128, *aes256, *chacha;
	EVP_MAC_CTX *hmac[2];		/* HMAC-SHA-256, HMAC-SHA-384: HKDF-Expand's one block */
	struct tlsrec *rest_head, *rest_tail;	/* waiting for their peer, the longest first */
	uint32_t tick;			/* tlsrec_env_tidy calls */
	uint8_t scratch[TLSREC_SCRATCH];
};

/* One direction's key. */
struct tlsrec_dir {
	EVP_CIPHER_CTX *ctx;
	int gcm;		/* the nonce goes in as GCM's whole "fixed IV" */
	uint64_t seq;
	uint8_t iv[TLSREC_IV];
	uint8_t secret[TLSREC_SECRET_MAX];	/* the current one: the next is made from it */
};

/* Received bytes the caller had no room for: whole records and a partial one. */
struct tlsrec_in {
	size_t len;
	uint8_t data[];
};

/* The plaintext of an opened record that did not fit. */
struct tlsrec_plain {
	size_t off, len;
	uint8_t data[];
};

/* Sealed records the socket did not take; they carry plain bytes of the caller's buffer. */
struct tlsrec_out {
	size_t plain, off, len;
	uint8_t data[];
};

struct tlsrec {
	struct tlsrec_env *env;
	const char *peer;		/* the connection's, for the debug line of a failure */
	const EVP_CIPHER *cipher;
	struct tlsrec_dir rd, wr;	/* contexts NULL while resting long (tlsrec_env_tidy) */
	struct tlsrec *rest_prev, *rest_next;	/* on env's list while resting */
	uint32_t rest_tick;		/* env's tick when it went to rest */
	uint8_t resting;
	struct tlsrec_in *in;
	struct tlsrec_plain *plain;
	struct tlsrec_out *out;
	uint8_t hash;			/* index into env->hmac */
	uint8_t hashlen, keylen;
	uint8_t eof;			/* TLSREC_EOF_* */
	uint8_t key_update_owed;	/* the peer asked for ours */
};

/* --- keys */

struct tlsrec_env *
tlsrec_env_new(void)
{
	static const char *const md[2] = { "SHA256", "SHA384" };
	struct tlsrec_env *env = calloc(1, sizeof(*env));
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	int i, ok = env != NULL && mac != NULL;

	if (ok) {
		env->aes128 = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
		env->aes256 = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
		env->chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
		ok = env->aes128 != NULL && env->aes256 != NULL && env->chacha != NULL;
	}
	for (i = 0; ok && i < 2; i++) {
		OSSL_PARAM p[2];

		p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)md[i], 0);
		p[1] = OSSL_PARAM_construct_end();
		ok = (env->hmac[i] = EVP_MAC_CTX_new(mac)) != NULL &&
		    EVP_MAC_CTX_set_params(env->hmac[i], p) == 1;
	}
	EVP_MAC_free(mac);
	if (!ok) {
		log_warnx("cannot set up the TLS 1.3 record layer");
		tlsrec_env_free(env);
		return NULL;
	}
	return env;
}

void
tlsrec_env_free(struct tlsrec_env *env)
{
	if (env == NULL)
		return;
	EVP_CIPHER_free(env->aes128);
	EVP_CIPHER_free(env->aes256);
	EVP_CIPHER_free(env->chacha);
	EVP_MAC_CTX_free(env->hmac[0]);
	EVP_MAC_CTX_free(env->hmac[1]);
	OPENSSL_cleanse(env->scratch, sizeof(env->scratch));	/* plaintext passed through */
	free(env);
}

/*
 * HKDF-Expand-Label(secret, label, "", n) of RFC 8446 section 7.1. Every
 * output here (n <= the hash's length) is HKDF-Expand's first block,
 * HMAC(secret, HkdfLabel || 0x01) (RFC 5869 section 2.3): one HMAC on a
 * context made once, where EVP_KDF_derive cost 16k instructions a call.
 */
static int
tlsrec_expand(struct tlsrec *r, const uint8_t *secret, const char *label, uint8_t *out, size_t n)
{
	uint8_t info[2 + 1 + 6 + 16 + 1 + 1];	/* HkdfLabel: length, "tls13 " label, empty context */
	uint8_t t[TLSREC_SECRET_MAX];
	EVP_MAC_CTX *h = r->env->hmac[r->hash];
	size_t ll = strlen(label), k = 0, tl = 0;
	int rc;

	info[k++] = (uint8_t)(n >> 8);
	info[k++] = (uint8_t)n;
	info[k++] = (uint8_t)(6 + ll);
	memcpy(info + k, "tls13 ", 6);
	memcpy(info + k + 6, label, ll);
	k += 6 + ll;
	info[k++] = 0;
	info[k++] = 1;		/* the block counter */
	rc = n <= r->hashlen && EVP_MAC_init(h, secret, r->hashlen, NULL) == 1 &&
	    EVP_MAC_update(h, info, k) == 1 && EVP_MAC_final(h, t, &tl, sizeof(t)) == 1 &&
	    tl == r->hashlen ? 0 : -1;
	if (rc == 0)
		memcpy(out, t, n);
	OPENSSL_cleanse(t, sizeof(t));
	return rc;
}

/* The key and iv of d's secret (section 7.3) into its context; cipher NULL keeps the one it has. */
static int
tlsrec_dir_keys(struct tlsrec *r, struct tlsrec_dir *d, const EVP_CIPHER *cipher, int enc)
{
	uint8_t key[TLSREC_KEY_MAX];
	int rc = -1;

	if (tlsrec_expand(r, d->secret, "key", key, r->keylen) == 0 &&
	    tlsrec_expand(r, d->secret, "iv", d->iv, TLSREC_IV) == 0 &&
	    EVP_CipherInit_ex2(d->ctx, cipher, key, NULL, enc, NULL) == 1)
		rc = 0;
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* KeyUpdate: the next application traffic secret of d, and its key (section 7.2). */
static int
tlsrec_dir_update(struct tlsrec *r, struct tlsrec_dir *d, int enc)
{
	uint8_t next[TLSREC_SECRET_MAX];

	if (tlsrec_expand(r, d->secret, "traffic upd", next, r->hashlen) == -1)
		return -1;
	memcpy(d->secret, next, r->hashlen);
	OPENSSL_cleanse(next, sizeof(next));
	d->seq = 0;
	return tlsrec_dir_keys(r, d, NULL, enc);
}

int
tlsrec_handover_keylog(struct tlsrec_handover *h, const char *line)
{
	static const char *const label[2] = { "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 " };
	const char *p;
	size_t i, n;
	int d;

	for (d = 0; d < 2 && strncmp(line, label[d], strlen(label[d])) != 0; d++)
		;
	if (d == 2)
		return 0;
	/* The label, the client random, the secret. */
	if ((p = strchr(line + strlen(label[d]), ' ')) == NULL)
		return -1;
	n = strlen(++p);
	if (n == 0 || n % 2 != 0 || n / 2 > TLSREC_SECRET_MAX)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = util_hexval((unsigned char)p[2 * i]), lo = util_hexval((unsigned char)p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		h->secret[d][i] = (uint8_t)(hi << 4 | lo);
	}
	h->len[d] = (uint8_t)(n / 2);
	h->records[d] = 0;
	return 0;
}

void
tlsrec_handover_record(struct tlsrec_handover *h, int write)
{
	write = write != 0;
	if (h->len[write] != 0)
		h->records[write]++;
}

static int
tlsrec_suite(struct tlsrec *r, uint16_t suite, const EVP_CIPHER **cipher)
{
	switch (suite) {
	case 0x1301:	/* TLS_AES_128_GCM_SHA256 */
		*cipher = r->env->aes128;
		r->hash = 0, r->hashlen = 32, r->keylen = 16;
		return 0;
	case 0x1302:	/* TLS_AES_256_GCM_SHA384 */
		*cipher = r->env->aes256;
		r->hash = 1, r->hashlen = 48, r->keylen = 32;
		return 0;
	case 0x1303:	/* TLS_CHACHA20_POLY1305_SHA256 */
		*cipher = r->env->chacha;
		r->hash = 0, r->hashlen = 32, r->keylen = 32;
		return 0;
	default:
		return -1;
	}
}

/* Both directions' cipher contexts from their current secrets. */
static int
tlsrec_contexts(struct tlsrec *r)
{
	r->rd.gcm = r->wr.gcm = r->cipher != r->env->chacha;
	if ((r->rd.ctx = EVP_CIPHER_CTX_new()) == NULL || (r->wr.ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    tlsrec_dir_keys(r, &r->rd, r->cipher, 0) == -1 ||
	    tlsrec_dir_keys(r, &r->wr, r->cipher, 1) == -1)
		return -1;
	return 0;
}

static void
tlsrec_drop_contexts(struct tlsrec *r)
{
	EVP_CIPHER_CTX_free(r->rd.ctx);
	EVP_CIPHER_CTX_free(r->wr.ctx);
	r->rd.ctx = r->wr.ctx = NULL;
}

/* --- resting: an idle connection gives its cipher contexts back */

static void
tlsrec_unrest(struct tlsrec *r)
{
	struct tlsrec_env *env = r->env;

	if (!r->resting)
		return;
	*(r->rest_prev != NULL ? &r->rest_prev->rest_next : &env->rest_head) = r->rest_next;
	*(r->rest_next != NULL ? &r->rest_next->rest_prev : &env->rest_tail) = r->rest_prev;
	r->rest_prev = r->rest_next = NULL;
	r->resting = 0;
}

/* r waits for its peer holding nothing: to the list's end (a few pointers per request). */
static void
tlsrec_rest(struct tlsrec *r)
{
	struct tlsrec_env *env = r->env;

	tlsrec_unrest(r);
	r->rest_tick = env->tick;
	r->rest_prev = env->rest_tail;
	*(env->rest_tail != NULL ? &env->rest_tail->rest_next : &env->rest_head) = r;
	env->rest_tail = r;
	r->resting = 1;
}

/* r moves again: off the list, its contexts made again if they were given back. */
static int
tlsrec_wake(struct tlsrec *r)
{
	tlsrec_unrest(r);
	if (r->rd.ctx != NULL)
		return 0;
	if (tlsrec_contexts(r) == 0)
		return 0;
	tlsrec_drop_contexts(r);
	log_warnx("TLS record layer for %s: cannot set up its keys again", r->peer);
	errno = ENOMEM;
	return -1;
}

void
tlsrec_env_tidy(struct tlsrec_env *env)
{
	struct tlsrec *r;

	/* Resting since before the previous call: at least one period. */
	while ((r = env->rest_head) != NULL && env->tick - r->rest_tick >= 1) {
		tlsrec_unrest(r);
		tlsrec_drop_contexts(r);
	}
	env->tick++;
}

struct tlsrec *
tlsrec_new(struct tlsrec_env *env, uint16_t suite, const struct tlsrec_handover *h,
    const char *peer)
{
	struct tlsrec *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->env = env;
	r->peer = peer;
	if (tlsrec_suite(r, suite, &r->cipher) == -1) {
		log_warnx("TLS record layer for %s: cipher suite %#x not handled", peer, suite);
		goto fail;
	}
	/* A secret the key log did not give (or of the wrong size): OpenSSL keeps the connection. */
	if (h->len[0] != r->hashlen || h->len[1] != r->hashlen) {
		log_debug("TLS record layer for %s: no traffic secrets (%u, %u bytes): stays on OpenSSL",
		    peer, h->len[0], h->len[1]);
		goto fail;
	}
	memcpy(r->rd.secret, h->secret[0], r->hashlen);
	memcpy(r->wr.secret, h->secret[1], r->hashlen);
	r->rd.seq = h->records[0];
	r->wr.seq = h->records[1];
	if (tlsrec_contexts(r) == -1) {
		log_warnx("TLS record layer for %s: cannot set up its keys", peer);
		goto fail;
	}
	return r;
fail:
	tlsrec_free(r);
	return NULL;
}

void
tlsrec_free(struct tlsrec *r)
{
	if (r == NULL)
		return;
	tlsrec_unrest(r);
	tlsrec_drop_contexts(r);
	free(r->in);
	if (r->plain != NULL)
		OPENSSL_clear_free(r->plain, sizeof(*r->plain) + r->plain->off + r->plain->len);
	free(r->out);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/* --- records */

/*
 * The per-record nonce: the iv XOR the sequence number (section 5.3).
 * EVP_CipherInit_ex2 with a new IV asks the context its IV length twice
 * (by name, about 1.3k instructions a record in OpenSSL 3.0); GCM takes a
 * whole IV as its TLS "fixed IV" of length -1 with no such lookup.
 */
static int
tlsrec_nonce(struct tlsrec_dir *d, int enc)
{
	uint8_t nonce[TLSREC_IV];
	int i;

	memcpy(nonce, d->iv, TLSREC_IV);
	for (i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
	if (d->gcm)
		return EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_IV_FIXED, -1, nonce) == 1 ? 0 : -1;
	return EVP_CipherInit_ex2(d->ctx, NULL, NULL, nonce, enc, NULL) == 1 ? 0 : -1;
}

/* Seals n bytes of p, inner type type, as one record at out (TLSREC_HDR + n + 1 + TLSREC_TAG bytes). */
static int
tlsrec_seal(struct tlsrec_dir *d, uint8_t type, const void *p, size_t n, uint8_t *out)
{
	size_t len = n + 1 + TLSREC_TAG;
	int outl;

	out[0] = TLSREC_CT_DATA;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
	memcpy(out + TLSREC_HDR, p, n);
	out[TLSREC_HDR + n] = type;
	if (tlsrec_nonce(d, 1) == -1 ||
	    EVP_CipherUpdate(d->ctx, NULL, &outl, out, TLSREC_HDR) != 1 ||
	    EVP_CipherUpdate(d->ctx, out + TLSREC_HDR, &outl, out + TLSREC_HDR, (int)n + 1) != 1 ||
	    EVP_CipherFinal_ex(d->ctx, out + TLSREC_HDR + n + 1, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG,
	    out + TLSREC_HDR + n + 1) != 1)
		return -1;
	d->seq++;
	return 0;
}

/* Opens the record at rec (its header, then len bytes) into out: len - TLSREC_TAG bytes. */
static int
tlsrec_open(struct tlsrec_dir *d, const uint8_t *rec, size_t len, uint8_t *out)
{
	size_t n = len - TLSREC_TAG;
	int outl;

	if (tlsrec_nonce(d, 0) == -1 ||
	    EVP_CipherUpdate(d->ctx, NULL, &outl, rec, TLSREC_HDR) != 1 ||
	    EVP_CipherUpdate(d->ctx, out, &outl, rec + TLSREC_HDR, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_TAG, TLSREC_TAG,
	    (void *)(uintptr_t)(rec + TLSREC_HDR + n)) != 1 ||
	    EVP_CipherFinal_ex(d->ctx, out + n, &outl) != 1)
		return -1;
	d->seq++;
	return 0;
}

/* A record that fails ends the connection: EPROTO, no alert. */
static int
tlsrec_bad(const struct tlsrec *r, const char *what)
{
	log_debug("TLS record from %s: %s", r->peer, what);
	errno = EPROTO;
	return -1;
}

/* --- reading */

/* 1 when p holds at least one whole record. */
static int
tlsrec_whole(const uint8_t *p, size_t n)
{
	return n >= TLSREC_HDR && n - TLSREC_HDR >= ((size_t)p[3] << 8 | p[4]);
}

static int
tlsrec_keep_in(struct tlsrec *r, const uint8_t *p, size_t n)
{
	if ((r->in = malloc(sizeof(*r->in) + n)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->in->len = n;
	memcpy(r->in->data, p, n);
	return 0;
}

/* Received bytes into the scratch: what was kept, then the socket's. Their count, 0 at EOF, -1. */
static ssize_t
tlsrec_fill(struct tlsrec *r, int fd)
{
	uint8_t *s = r->env->scratch;
	size_t have = 0;
	ssize_t n;

	if (r->in != NULL) {
		have = r->in->len;
		memcpy(s, r->in->data, have);
		free(r->in);
		r->in = NULL;
		if (tlsrec_whole(s, have))
			return (ssize_t)have;
	}
	do
		n = read(fd, s + have, TLSREC_SCRATCH - have);
	while (n == -1 && errno == EINTR);
	if (n >= 0)
		return n == 0 ? 0 : (ssize_t)have + n;	/* EOF cuts a partial record: EOF all the same */
	if (have > 0 && errno == EAGAIN && tlsrec_keep_in(r, s, have) == 0)
		errno = EAGAIN;
	return -1;
}

/* Application data: into b, what does not fit kept for the next reads. */
static ssize_t
tlsrec_deliver(struct tlsrec *r, struct buf *b, const uint8_t *p, size_t n, size_t room)
{
	size_t k = n < room ? n : room;

	if (p != (const uint8_t *)buf_tail(b))
		memcpy(buf_tail(b), p, k);
	b->len += k;
	if (k == n)
		return (ssize_t)k;
	if ((r->plain = malloc(sizeof(*r->plain) + n - k)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->plain->off = 0;
	r->plain->len = n - k;
	memcpy(r->plain->data, p + k, n - k);
	return (ssize_t)k;
}

static ssize_t
tlsrec_alert(struct tlsrec *r, const uint8_t *p, size_t n)
{
	if (n != 2)
		return tlsrec_bad(r, "malformed alert");
	if (p[1] == TLSREC_AD_CLOSE_NOTIFY) {
		r->eof = TLSREC_EOF_SEEN;
		return 0;
	}
	if (p[1] == TLSREC_AD_USER_CANCELED)
		return 0;
	log_debug("TLS alert %u from %s", p[1], r->peer);
	errno = EPROTO;
	return -1;
}

/* The one handshake message after the handshake: KeyUpdate, alone in its record (section 5.1). */
static ssize_t
tlsrec_key_update(struct tlsrec *r, const uint8_t *p, size_t n)
{
	if (n != 5 || p[0] != TLSREC_MT_KEY_UPDATE || p[1] != 0 || p[2] != 0 || p[3] != 1 || p[4] > 1)
		return tlsrec_bad(r, "unexpected handshake message");
	if (tlsrec_dir_update(r, &r->rd, 0) == -1)
		return tlsrec_bad(r, "cannot derive the next key");
	if (p[4] == 1)
		r->key_update_owed = 1;
	return 0;
}

/* Opens the record rec (len bytes after its header); what it gave b (of room), or -1. */
static ssize_t
tlsrec_open_one(struct tlsrec *r, uint8_t *rec, size_t len, struct buf *b, size_t room)
{
	size_t n = len - TLSREC_TAG;
	/* Straight into the caller's buffer when it fits; else in place, then copied. */
	uint8_t *out = n <= room ? (uint8_t *)buf_tail(b) : rec + TLSREC_HDR;
	uint8_t type;

	if (tlsrec_open(&r->rd, rec, len, out) == -1)
		return tlsrec_bad(r, "bad record (decryption failed)");
	while (n > 0 && out[n - 1] == 0)
		n--;
	if (n == 0)
		return tlsrec_bad(r, "record without a content type");
	type = out[--n];
	if (n > TLSREC_PLAIN_MAX)
		return tlsrec_bad(r, "record overflow");
	switch (type) {
	case TLSREC_CT_DATA:
		return tlsrec_deliver(r, b, out, n, room);
	case TLSREC_CT_ALERT:
		return tlsrec_alert(r, out, n);
	case TLSREC_CT_HANDSHAKE:
		return tlsrec_key_update(r, out, n);
	default:
		return tlsrec_bad(r, "unexpected record type");
	}
}

/* Opens the records of s[0..have) while b has room; *used: how far it got. Bytes given, or -1. */
static ssize_t
tlsrec_open_all(struct tlsrec *r, uint8_t *s, size_t have, struct buf *b, size_t room,
    size_t *used)
{
	size_t off = 0, got = 0;

	while (r->eof == 0 && got < room && have - off >= TLSREC_HDR) {
		uint8_t *h = s + off;
		size_t len = (size_t)h[3] << 8 | h[4];
		ssize_t k;

		if (h[0] != TLSREC_CT_DATA || h[1] != 3 || h[2] != 3)
			return tlsrec_bad(r, "unexpected record header");
		if (len > TLSREC_CIPHER_MAX || len <= TLSREC_TAG)
			return tlsrec_bad(r, "bad record length");
		if (have - off - TLSREC_HDR < len)
			break;
		if ((k = tlsrec_open_one(r, h, len, b, room - got)) == -1)
			return -1;
		off += TLSREC_HDR + len;
		got += (size_t)k;
	}
	*used = off;
	return (ssize_t)got;
}

/* What an earlier record left: plaintext first. */
static ssize_t
tlsrec_read_plain(struct tlsrec *r, struct buf *b, size_t room)
{
	struct tlsrec_plain *p = r->plain;
	size_t k = p->len < room ? p->len : room;

	buf_append(b, p->data + p->off, k);
	p->off += k;
	if ((p->len -= k) == 0) {
		OPENSSL_clear_free(p, sizeof(*p) + p->off);
		r->plain = NULL;
	}
	return (ssize_t)k;
}

static int tlsrec_flush(struct tlsrec *r, int fd);
static int tlsrec_send_owed(struct tlsrec *r, int fd);

static ssize_t
tlsrec_read_awake(struct tlsrec *r, int fd, struct buf *b)
{
	size_t room, used = 0;
	ssize_t n, got;

	if (r->out != NULL && r->out->plain == 0)
		(void)tlsrec_flush(r, fd);	/* our KeyUpdate: no caller write carries it */
	if ((room = buf_room(b)) == 0) {
		errno = ENOBUFS;
		return -1;
	}
	if (r->plain != NULL)
		return tlsrec_read_plain(r, b, room);
	if ((n = tlsrec_fill(r, fd)) <= 0) {
		if (n == 0)
			r->eof = TLSREC_EOF_SAID;
		return n;
	}
	if ((got = tlsrec_open_all(r, r->env->scratch, (size_t)n, b, room, &used)) == -1)
		return -1;
	if (r->eof == 0 && used < (size_t)n && tlsrec_keep_in(r, r->env->scratch + used,
	    (size_t)n - used) == -1)
		return -1;
	if (r->key_update_owed && r->out == NULL && tlsrec_send_owed(r, fd) == -1 && errno != EAGAIN)
		return -1;
	if (got > 0)
		return got;
	if (r->eof != 0) {
		r->eof = TLSREC_EOF_SAID;
		return 0;
	}
	errno = EAGAIN;
	return -1;
}

int
tlsrec_pending(const struct tlsrec *r)
{
	return r->plain != NULL || r->eof == TLSREC_EOF_SEEN ||
	    (r->in != NULL && tlsrec_whole(r->in->data, r->in->len));
}

/* --- writing */

static ssize_t
tlsrec_send(int fd, const void *p, size_t n)
{
	ssize_t k;

	do
		k = send(fd, p, n, MSG_NOSIGNAL);
	while (k == -1 && errno == EINTR);
	return k;
}

/* Sends what the socket did not take before: 0 when all went, -1 (EAGAIN: more to go). */
static int
tlsrec_flush(struct tlsrec *r, int fd)
{
	struct tlsrec_out *o = r->out;
	ssize_t k = tlsrec_send(fd, o->data + o->off, o->len - o->off);

	if (k == -1)
		return -1;
	if ((o->off += (size_t)k) < o->len) {
		errno = EAGAIN;
		return -1;
	}
	free(o);
	r->out = NULL;
	return 0;
}

/* Our KeyUpdate (update_not_requested) at out under the current key, then the next key. */
static int
tlsrec_seal_key_update(struct tlsrec *r, uint8_t *out, size_t *len)
{
	static const uint8_t ku[5] = { TLSREC_MT_KEY_UPDATE, 0, 0, 1, 0 };

	if (tlsrec_seal(&r->wr, TLSREC_CT_HANDSHAKE, ku, sizeof(ku), out) == -1 ||
	    tlsrec_dir_update(r, &r->wr, 1) == -1)
		return -1;
	r->key_update_owed = 0;
	*len += TLSREC_HDR + sizeof(ku) + 1 + TLSREC_TAG;
	return 0;
}

/*
 * Sends s[0..len), records ending at end[] and carrying plain[] bytes of
 * b's head up to there; what the socket does not take is kept. The plain
 * bytes of whole records sent, or -1 (EAGAIN when none).
 */
static ssize_t
tlsrec_send_sealed(struct tlsrec *r, int fd, struct buf *b, size_t len, const size_t *end,
    const size_t *plain, int nrec)
{
	const uint8_t *s = r->env->scratch;
	ssize_t k = tlsrec_send(fd, s, len);
	size_t sent = k > 0 ? (size_t)k : 0, done = 0;
	int i;

	if (k == -1 && errno != EAGAIN)
		return -1;
	for (i = 0; i < nrec && end[i] <= sent; i++)
		done = plain[i];
	if (sent < len) {
		if ((r->out = malloc(sizeof(*r->out) + len - sent)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		r->out->plain = plain[nrec - 1] - done;
		r->out->off = 0;
		r->out->len = len - sent;
		memcpy(r->out->data, s + sent, len - sent);
	}
	buf_consume(b, done);
	if (done == 0 && sent < len) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)done;
}

/* Seals b's head (up to two records, each after a KeyUpdate when one is due) and sends it. */
static ssize_t
tlsrec_write_new(struct tlsrec *r, int fd, struct buf *b)
{
	uint8_t *s = r->env->scratch;
	/* NULL for the KeyUpdate alone (tlsrec_send_owed): no offset on a NULL block. */
	const uint8_t *src = b->data != NULL ? (const uint8_t *)buf_head(b) : NULL;
	size_t len = 0, p = 0, end[TLSREC_WRITE_MAX], plain[TLSREC_WRITE_MAX];
	int nrec = 0, ndata;

	for (ndata = 0; ndata < TLSREC_WRITE_DATA; ndata++) {
		size_t n = b->len - p < TLSREC_PLAIN_MAX ? b->len - p : TLSREC_PLAIN_MAX;

		if (r->key_update_owed || r->wr.seq >= TLSREC_KEY_RECORDS - 1) {
			if (tlsrec_seal_key_update(r, s + len, &len) == -1)
				return tlsrec_bad(r, "cannot seal a KeyUpdate");
			end[nrec] = len;
			plain[nrec++] = p;
		}
		if (n == 0)
			break;
		if (tlsrec_seal(&r->wr, TLSREC_CT_DATA, src + p, n, s + len) == -1)
			return tlsrec_bad(r, "cannot seal a record");
		len += TLSREC_HDR + n + 1 + TLSREC_TAG;
		p += n;
		end[nrec] = len;
		plain[nrec++] = p;
		if (p == b->len)
			break;
	}
	if (nrec == 0)
		return 0;
	return tlsrec_send_sealed(r, fd, b, len, end, plain, nrec);
}

/* Our KeyUpdate the peer asked for, alone. */
static int
tlsrec_send_owed(struct tlsrec *r, int fd)
{
	struct buf none = { NULL, 0, 0 };

	return tlsrec_write_new(r, fd, &none) == -1 ? -1 : 0;
}

static ssize_t
tlsrec_write_awake(struct tlsrec *r, int fd, struct buf *b)
{
	if (r->out != NULL) {
		size_t plain = r->out->plain;

		if (tlsrec_flush(r, fd) == -1)
			return -1;
		if (plain > 0) {
			/* The retry with the same bytes: they went with the records kept. */
			if (plain > b->len)
				plain = b->len;
			buf_consume(b, plain);
			return (ssize_t)plain;
		}
	}
	if (b->len == 0 && !r->key_update_owed)
		return 0;
	return tlsrec_write_new(r, fd, b);
}

/*
 * After each read and write: holding no bytes, r may be waiting for its
 * peer (or for its backend): to the end of the resting list, from which a
 * whole tidy period without a call takes its contexts.
 */
static ssize_t
tlsrec_settle(struct tlsrec *r, ssize_t n)
{
	int e = errno;

	if (r->in == NULL && r->plain == NULL && r->out == NULL && r->rd.ctx != NULL)
		tlsrec_rest(r);
	errno = e;
	return n;
}

ssize_t
tlsrec_read(struct tlsrec *r, int fd, struct buf *b)
{
	if (r->eof != 0) {
		r->eof = TLSREC_EOF_SAID;
		return 0;
	}
	if (tlsrec_wake(r) == -1)
		return -1;
	return tlsrec_settle(r, tlsrec_read_awake(r, fd, b));
}

ssize_t
tlsrec_write(struct tlsrec *r, int fd, struct buf *b)
{
	if (tlsrec_wake(r) == -1)
		return -1;
	return tlsrec_settle(r, tlsrec_write_awake(r, fd, b));
}

uint32_t
tlsrec_events(const struct tlsrec *r)
{
	return r->out != NULL && r->out->plain == 0 ? EPOLLOUT : 0;
}

void
tlsrec_close_notify(struct tlsrec *r, int fd)
{
	static const uint8_t alert[2] = { 1, TLSREC_AD_CLOSE_NOTIFY };	/* warning */
	uint8_t rec[TLSREC_HDR + sizeof(alert) + 1 + TLSREC_TAG];

	if (tlsrec_wake(r) == -1 || (r->out != NULL && tlsrec_flush(r, fd) == -1))
		return;		/* a record half sent: an alert now would garble it */
	if (tlsrec_seal(&r->wr, TLSREC_CT_ALERT, alert, sizeof(alert), rec) == 0)
		(void)tlsrec_send(fd, rec, sizeof(rec));
}
