/*
 * The TLS 1.3 record layer after the handshake (server side): record
 * protection with the application traffic keys, KeyUpdate, alerts. Once
 * OpenSSL has finished a TLS 1.3 handshake and holds nothing, worker/tls.c
 * hands the connection over to this and frees the SSL: what kTLS does in the
 * kernel, which this machine's kernels cannot load.
 *
 * Why not OpenSSL: its 3.0 record layer cost about 16k instructions per
 * request (a small record each way: parameter lookups per record, 17 KB
 * buffers allocated and freed per record, BIO layers) and an SSL object
 * keeps 14.5 KB after a TLS 1.3 handshake. Here an idle connection holds two
 * cipher contexts and a few dozen bytes; bytes in flight live in blocks
 * allocated only while they exist.
 *
 * The cryptography is OpenSSL's EVP (HMAC, AEAD ciphers); only the framing
 * of RFC 8446 section 5 is ours.
 */
#ifndef HALOYD_WORKER_TLSREC_H
#define HALOYD_WORKER_TLSREC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/buf.h"

#define TLSREC_SECRET_MAX 48	/* SHA-384 */
/* RFC 8446 section 5.5: AES-GCM keys are changed before 2^24.5 records; we do at 2^24. */
#define TLSREC_KEY_RECORDS ((uint64_t)1 << 24)

/* A worker's share: fetched ciphers and digests, the scratch records pass through. */
struct tlsrec_env;
struct tlsrec_env *tlsrec_env_new(void);
void tlsrec_env_free(struct tlsrec_env *env);
/*
 * Every second or so (the worker's timer): a connection that has waited for
 * its peer, holding no bytes, since the previous call gives its two cipher
 * contexts back (2.3 KiB); they are made again from its secrets when it
 * moves. Like an HTTP/2 session's trim after H2_TRIM_MS.
 */
void tlsrec_env_tidy(struct tlsrec_env *env);

/*
 * What the handover needs, gathered while OpenSSL runs the handshake: the
 * application traffic secrets from its key log and how many records it
 * protected under each since that key was installed. [0] is the client's
 * (what we read), [1] the server's (what we write).
 */
struct tlsrec_handover {
	uint8_t secret[2][TLSREC_SECRET_MAX];
	uint8_t len[2];		/* 0: not logged yet */
	uint64_t records[2];
	int refused;		/* a KeyUpdate went through OpenSSL: it keeps the connection */
};

/* Takes a key log line (NSS format); lines of other secrets are ignored. 0, or -1 when malformed. */
int tlsrec_handover_keylog(struct tlsrec_handover *h, const char *line);
/* A record header went by (write: 1 ours, 0 the peer's): counted once its key is known. */
void tlsrec_handover_record(struct tlsrec_handover *h, int write);

struct tlsrec;

/*
 * A connection's record layer from h, for the cipher suite suite (its
 * two-byte code: 0x1301, 0x1302, 0x1303). NULL (logged) when the suite is
 * not one of them or out of memory. h's secrets are copied; the caller
 * wipes h. peer (kept: the caller's) names the client in debug lines.
 */
struct tlsrec *tlsrec_new(struct tlsrec_env *env, uint16_t suite, const struct tlsrec_handover *h,
    const char *peer);
/* Frees r, wiping its keys. No alert is sent: see tlsrec_close_notify. */
void tlsrec_free(struct tlsrec *r);

/*
 * buf_read_fd / buf_write_fd through the record layer (tls_buf_read's
 * contract): bytes moved, 0 at EOF (the peer's close_notify, or its EOF),
 * -1 with errno: EAGAIN, EPROTO for a record that fails (bad tag, length or
 * type; the connection is then over), or the socket's. A write that could
 * not finish keeps its ciphertext and is retried with the same bytes (at
 * least as many) in b, as OpenSSL's is.
 */
ssize_t tlsrec_read(struct tlsrec *r, int fd, struct buf *b);
ssize_t tlsrec_write(struct tlsrec *r, int fd, struct buf *b);
/* 1 when r holds received bytes epoll will not report again (whole records, plaintext). */
int tlsrec_pending(const struct tlsrec *r);
/* EPOLLOUT while r holds bytes of its own to send (a KeyUpdate) that no caller write carries. */
uint32_t tlsrec_events(const struct tlsrec *r);
/* Sends an encrypted close_notify alert, one try (nothing when a record is half sent). */
void tlsrec_close_notify(struct tlsrec *r, int fd);

#endif
