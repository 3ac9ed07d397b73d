/*
 * libFuzzer harness: the TLS 1.3 record layer (worker/tlsrec.c) reading what
 * a client sends after the handshake. A connection is made from fixed
 * traffic secrets, the suite chosen by the input's first byte; the rest is
 * chunks [kind][length: 2 bytes][bytes]. Kind & 3 == 0 puts the bytes on the
 * socket as they are (headers, lengths, ciphertext whose tag fails); 1 seals
 * them as one record under the client's key, as a client would (the first
 * byte its inner type, kind >> 4 bytes of zero padding), so the parsing
 * behind the tag is reached: types, alerts, KeyUpdate, padding; 2 lets the
 * connection rest through two tidy periods (its cipher contexts go and come
 * back). After each chunk the server reads until it would wait, into a
 * caller buffer whose room kind's bits 2-3 choose, and writes a reply
 * (carrying a KeyUpdate it owes). The client's sealing is this file's own
 * (HKDF-Expand-Label and the AEAD through EVP): a second reading of RFC 8446
 * section 5 to hold the record layer against.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "share/log.h"
#include "worker/buf.h"
#include "worker/tlsrec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The client's side: its key, iv, secret and sequence number. */
struct peer {
	const char *cipher, *md;
	size_t hashlen, keylen;
	uint8_t secret[48], key[32], iv[12];
	uint64_t seq;
};

static struct tlsrec_env *env;
static char *block;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	if ((env = tlsrec_env_new()) == NULL || (block = malloc(BUF_SIZE)) == NULL)
		abort();
	return 0;
}

static void
expand(const struct peer *p, const uint8_t *secret, const char *label, uint8_t *out, size_t n)
{
	uint8_t info[64];
	size_t ll = strlen(label), k = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM prm[5];

	info[k++] = (uint8_t)(n >> 8);
	info[k++] = (uint8_t)n;
	info[k++] = (uint8_t)(6 + ll);
	memcpy(info + k, "tls13 ", 6);
	memcpy(info + k + 6, label, ll);
	k += 6 + ll;
	info[k++] = 0;
	prm[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	prm[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)(uintptr_t)p->md, 0);
	prm[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)secret,
	    p->hashlen);
	prm[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, k);
	prm[4] = OSSL_PARAM_construct_end();
	if (c == NULL || EVP_KDF_derive(c, out, n, prm) != 1)
		abort();
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
}

static void
peer_keys(struct peer *p)
{
	expand(p, p->secret, "key", p->key, p->keylen);
	expand(p, p->secret, "iv", p->iv, sizeof(p->iv));
	p->seq = 0;
}

/* One record of type type over content[0..n) and pad zero bytes, at out; its length. */
static size_t
peer_seal(struct peer *p, uint8_t type, const uint8_t *content, size_t n, size_t pad, uint8_t *out)
{
	size_t inner = n + 1 + pad, len = inner + 16;
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, p->cipher, NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t nonce[12];
	int outl, i;

	memcpy(nonce, p->iv, sizeof(nonce));
	for (i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(p->seq >> (56 - 8 * i));
	out[0] = 23;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
	memcpy(out + 5, content, n);
	out[5 + n] = type;
	memset(out + 6 + n, 0, pad);
	if (c == NULL || EVP_EncryptInit_ex2(c, cipher, p->key, nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &outl, out, 5) != 1 ||
	    EVP_EncryptUpdate(c, out + 5, &outl, out + 5, (int)inner) != 1 ||
	    EVP_EncryptFinal_ex(c, out + 5 + inner, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + 5 + inner) != 1)
		abort();
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_free(cipher);
	p->seq++;
	/* The client moves to its next key right after sending a KeyUpdate. */
	if (type == 22 && n == 5 && content[0] == 24 && content[1] == 0 && content[2] == 0 &&
	    content[3] == 1 && content[4] <= 1) {
		uint8_t next[48];

		expand(p, p->secret, "traffic upd", next, p->hashlen);
		memcpy(p->secret, next, p->hashlen);
		peer_keys(p);
	}
	return 5 + len;
}

static void
drain(int fd)
{
	char sink[4096];

	while (read(fd, sink, sizeof(sink)) > 0)
		;
}

/* Reads until the server would wait; 0, or -1 once the connection is over. */
static int
server_read(struct tlsrec *r, int fd, unsigned roomsel)
{
	static const size_t rooms[4] = { BUF_SIZE, 1, 100, 17000 };
	struct buf b = { block, 0, BUF_SIZE - rooms[roomsel & 3] };
	char reply[] = "HTTP/1.1 200 OK\r\n\r\n";
	struct buf w = { reply, 0, sizeof(reply) - 1 };
	ssize_t n;
	int rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		n = tlsrec_read(r, fd, &b);
		if (n == 0 || (n == -1 && errno != EAGAIN))
			return -1;
		b.len = BUF_SIZE - rooms[roomsel & 3];
		if (n == -1 && !tlsrec_pending(r))
			break;
	}
	(void)tlsrec_write(r, fd, &w);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct { uint16_t suite; const char *cipher, *md; size_t hashlen, keylen; }
	    suites[3] = {
		{ 0x1301, "AES-128-GCM", "SHA256", 32, 16 },
		{ 0x1302, "AES-256-GCM", "SHA384", 48, 32 },
		{ 0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32 },
	};
	struct tlsrec_handover h;
	struct peer p;
	struct tlsrec *r;
	uint8_t rec[5 + 0xffff + 256 + 16];
	size_t at = 1;
	int sv[2], s;

	if (size < 1)
		return 0;
	s = data[0] % 3;
	memset(&h, 0, sizeof(h));
	memset(&p, 0, sizeof(p));
	p.cipher = suites[s].cipher;
	p.md = suites[s].md;
	p.hashlen = suites[s].hashlen;
	p.keylen = suites[s].keylen;
	memset(h.secret[0], 0x11, p.hashlen);	/* the client's: what the server reads */
	memset(h.secret[1], 0x22, p.hashlen);
	h.len[0] = h.len[1] = (uint8_t)p.hashlen;
	memcpy(p.secret, h.secret[0], p.hashlen);
	peer_keys(&p);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if ((r = tlsrec_new(env, suites[s].suite, &h, "fuzz")) == NULL)
		abort();
	while (size - at >= 3) {
		uint8_t kind = data[at];
		size_t n = (size_t)data[at + 1] << 8 | data[at + 2];

		at += 3;
		if (n > size - at)
			n = size - at;
		if ((kind & 3) == 0) {
			(void)!write(sv[1], data + at, n);
		} else if ((kind & 3) == 1 && n >= 1 && n - 1 <= 16384) {
			size_t len = peer_seal(&p, data[at], data + at + 1, n - 1, kind >> 4, rec);

			(void)!write(sv[1], rec, len);
		} else if ((kind & 3) == 2) {
			tlsrec_env_tidy(env);
			tlsrec_env_tidy(env);
		}
		at += n;
		if (server_read(r, sv[0], kind >> 2) == -1)
			break;
		drain(sv[1]);
	}
	tlsrec_close_notify(r, sv[0]);
	tlsrec_free(r);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
