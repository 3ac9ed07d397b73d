/*
 * TLS termination in a worker (OpenSSL 3, server side): one SSL_CTX for
 * every connection, the certificate chosen in the ClientHello by SNI with
 * routing's lookup and put on the connection, session tickets with the keys
 * every worker shares, non-blocking connections mapped onto epoll interest,
 * and what the request step asks for its port-80 redirects.
 *
 * A keyring generation becomes a set of certificates (worker/tlscert.c:
 * DER bytes, parsed on first use, a bounded cache of parsed ones); one
 * whose fingerprint is unchanged is carried over to the next set. A
 * connection holds its own references to what it was given, so it keeps
 * its certificate after the set that chose it is gone. The keyring itself
 * is unmapped as soon as the set is built: private keys then live in the
 * set's DER bytes (wiped when freed) and OpenSSL's objects.
 */
#ifndef HALOYD_WORKER_TLS_H
#define HALOYD_WORKER_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "share/keyring.h"
#include "worker/buf.h"

struct snap;
struct ssl_session_st;
struct ssl_st;
struct tls;
struct tls_conn;

/* One certificate as a keyring carries it. */
struct tls_cert_in {
	const void *chain;		/* leaf first; PEM, or concatenated DER */
	size_t chain_len;
	const void *key;		/* PEM, or DER (PKCS#8 or traditional) */
	size_t key_len;
	const uint8_t *fingerprint;	/* 32 bytes, or NULL: SHA-256 of chain is used */
	const char *const *names;	/* normalised names ("*.example.com" for wildcards) */
	size_t nnames;
	int64_t not_after;		/* a name two certificates carry goes to the later one */
	int is_default;			/* the self-signed certificate for unknown names */
	int is_chal;			/* a TLS-ALPN-01 certificate: only for "acme-tls/1" */
	uint32_t id;			/* store id (snap_host.cert names it); ascending */
};

/*
 * A keyring generation, decoded (share/keyring.h). tickets[0] is the
 * current session-ticket key (AES-256-CBC + HMAC-SHA256), then the previous.
 */
struct tls_keyring_in {
	uint32_t generation;
	const struct tls_cert_in *certs;
	size_t ncerts;
	const struct keyring_ticket_key *tickets;
	size_t ntickets;
};

/*
 * A worker's TLS state. snapp points at the worker's current snapshot: the
 * SNI callback routes names through it. NULL when out of memory.
 */
struct tls *tls_new(struct snap *const *snapp);
void tls_free(struct tls *t);

/*
 * Makes in the current set: contexts built (or carried over), ticket keys
 * copied. On failure the previous set stays in use. 0, or -1 with a reason.
 */
int tls_install(struct tls *t, const struct tls_keyring_in *in, char *err, size_t errlen);
/* Maps the keyring memfd fd (the caller closes it), installs it and unmaps it. */
int tls_install_keyring(struct tls *t, int fd, uint32_t gen, char *err, size_t errlen);
/*
 * Every second or so: TLS 1.3 connections idle since the previous call give
 * their cipher contexts back until they move again (worker/tlsrec.c).
 */
void tls_tidy(struct tls *t);
/* 1 once a keyring with at least one certificate is installed. */
int tls_ready(const struct tls *t);
/* The generation of the installed keyring (0: none yet). */
uint32_t tls_generation(const struct tls *t);

/* The port https:// redirects name; 0 while the worker has no HTTPS listener. */
void tls_set_https_port(struct tls *t, uint16_t port);

/*
 * SNI selection for a normalised name (NULL: no SNI): exact name, then the
 * certificate of the route the name belongs to when it covers the name,
 * then the one-label wildcard, then the default. Returns the index of the
 * certificate in the current set, -1 when no set is installed.
 */
int tls_select(const struct tls *t, const char *name, size_t len);
/* 1 when index i of the current set is the default certificate. */
int tls_is_default(const struct tls *t, int i);
/*
 * Puts certificate i of the current set (leaf, chain, key) on ssl: the
 * ClientHello's choice, and the tunnel listener's (tunnel/tuntls.c).
 * 0, or -1 when there is no such certificate.
 */
int tls_use_cert(const struct tls *t, int i, struct ssl_st *ssl);
/*
 * The leaf certificate of index i (an X509 *, owned by the cache: valid
 * until the next lookup) for tests and logs.
 */
const void *tls_leaf(const struct tls *t, int i);

/* --- connections */

/*
 * Server-side TLS on an accepted non-blocking socket (fd stays the
 * caller's). peer names the client in the one debug line a failed handshake
 * costs. NULL when no keyring is installed or out of memory.
 */
struct tls_conn *tls_conn_new(struct tls *t, int fd, const char *peer);
/*
 * A connection around an SSL the caller set up (worker/tlsclient.c: client
 * side, connect state, fd set), which it now owns; peer names the other end
 * in logs. NULL (ssl freed) when out of memory. Every function below works
 * for both sides.
 */
struct tls_conn *tls_conn_wrap(struct ssl_st *ssl, const char *peer);
/*
 * Runs the handshake on its own, without application data (a client's
 * connect phase): 1 done, 0 waiting for tls_conn_events(), -1 failed.
 */
int tls_conn_handshake(struct tls_conn *tc);
/*
 * Why the handshake failed, one line ("certificate verify failed: unable
 * to get local issuer certificate"); "" while it has not.
 */
const char *tls_conn_error(const struct tls_conn *tc);
/* The peer as the connection's logs name it. */
const char *tls_conn_peer(const struct tls_conn *tc);
/* A reference on the session for a later resumption (a client's), or NULL when it has none. */
struct ssl_session_st *tls_conn_session(const struct tls_conn *tc);
/* 1 when the handshake resumed a session. */
int tls_conn_resumed(const struct tls_conn *tc);
/* Sends close_notify when the connection is healthy, then frees it; fd is not closed. */
void tls_conn_free(struct tls_conn *tc);

/*
 * buf_read_fd / buf_write_fd through TLS when tc is not NULL (plain fd
 * otherwise), with their contract: bytes moved, 0 at EOF (read), -1 with
 * errno (EAGAIN: wait for tls_conn_events() plus the caller's own interest).
 * The handshake runs inside the first reads.
 */
ssize_t tls_buf_read(struct tls_conn *tc, int fd, struct buf *b);
ssize_t tls_buf_write(struct tls_conn *tc, int fd, struct buf *b);
/* Epoll events TLS needs beyond the caller's (a read that must write, a write that must read). */
uint32_t tls_conn_events(const struct tls_conn *tc);
/* 1 when OpenSSL holds received bytes epoll will not report again. */
int tls_conn_pending(const struct tls_conn *tc);
/* Half-close: sends close_notify (then the caller shuts the socket's write side). */
void tls_conn_shutdown(struct tls_conn *tc);
/* 1 once the handshake finished. */
int tls_conn_established(const struct tls_conn *tc);
/*
 * 1 once a TLS 1.3 connection went on to haloyd's own record layer
 * (worker/tlsrec.c) and its SSL was freed: tests, and what a log may say.
 */
int tls_conn_handed_over(const struct tls_conn *tc);
/*
 * 1 when the handshake agreed on ALPN "acme-tls/1": a TLS-ALPN-01
 * validation, which tls_buf_read ends (EOF) right after the handshake.
 */
int tls_conn_acme(const struct tls_conn *tc);
/* 1 when the client and we agreed on h2 by ALPN (after the handshake). */
int tls_conn_h2(const struct tls_conn *tc);
/* ALPN offers h2 (before http/1.1) when on: haloyd.conf's http2. */
/*
 * On-demand TLS: called (once per connection) from the ClientHello when its
 * SNI name would get the default certificate, with the connection's
 * cookie. Returning 1 holds the handshake: reads say EAGAIN (and no socket
 * event is wanted) until tls_conn_od_release, after which the next read
 * goes on with the keyring of that time. NULL turns it off.
 */
typedef int tls_ondemand_fn(void *arg, void *cookie, const char *name);
void tls_set_ondemand(struct tls *t, tls_ondemand_fn *fn, void *arg);
/* The caller's own pointer for the hook (a worker's struct conn). */
void tls_conn_set_cookie(struct tls_conn *tc, void *cookie);
/* A held handshake may go on: its next read resumes it (without asking again). */
void tls_conn_od_release(struct tls_conn *tc);
void tls_set_http2(struct tls *t, int on);
struct shm_wslot;
/* Handshakes (full, resumed, failed) are counted in *statsp (share/shm.h). */
void tls_set_stats(struct tls *t, struct shm_wslot *const *statsp);

/* --- what the port-80 side asks */

/* The port https:// redirects name; 0 while the worker has no HTTPS listener. */
uint16_t tls_https_port(const struct tls *t);
/* 1 when name would get a certificate of its own, not the self-signed default. */
int tls_has_own_cert(struct tls *t, const char *name, size_t len);

#endif
