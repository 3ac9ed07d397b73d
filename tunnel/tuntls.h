/*
 * TLS of the tunnel listener: one server context built from what the
 * master read (tunnel_ca_file, tunnel_cert, tunnel_key): TLS 1.2 and up, a
 * client certificate required and verified against the CA (purpose: TLS
 * client), ALPN h2 or h2-reverse (an offer of neither is refused at the
 * handshake; no ALPN at all is allowed: the magic decides). And what an
 * agent's verified certificate says: its tunnel name, subject and expiry.
 */
#ifndef HALOYD_TUNNEL_TUNTLS_H
#define HALOYD_TUNNEL_TUNTLS_H

#include <stddef.h>
#include <stdint.h>

#include "share/msg.h"
#include "tunnel/tunname.h"

struct ssl_ctx_st;
struct ssl_st;

/*
 * PEM texts: ca (required), chain and key (both, or neither: then the
 * certificate the keyring has for the agent's SNI, else its default one,
 * from keyring: the process's worker/tls.c state).
 */
struct tls;
struct tuntls_in {
	const char *ca;
	size_t ca_len;
	const char *chain;
	size_t chain_len;
	const char *key;
	size_t key_len;
	const struct tls *keyring;
};

/* The context, or NULL with a reason in err. */
struct ssl_ctx_st *tuntls_ctx_new(const struct tuntls_in *in, char *err, size_t errlen);
/* An accepting SSL on fd, or NULL. */
struct ssl_st *tuntls_ssl_new(struct ssl_ctx_st *ctx, int fd);

/* What the agent's certificate (verified by the handshake) says. */
struct tuntls_peer {
	char name[TUNNAME_MAX + 1];		/* its CN, a valid tunnel name */
	char subject[MSG_T_SUBJECT_MAX + 1];	/* RFC 2253, cut to fit */
	int64_t not_after;			/* unix seconds */
};
/* 0, or -1 with the reason in err (no certificate, no CN, two CNs, a CN that is no name). */
int tuntls_peer(struct ssl_st *ssl, struct tuntls_peer *p, char *err, size_t errlen);

#endif
