/*
 * The agent's TLS client context: its certificate and key (refused when
 * missing, unreadable, readable by group or others, or not a pair), the
 * proxy's trust (--ca or the system roots), TLS >= 1.2, ALPN h2.
 */
#ifndef HALOYD_AGENT_AGENTTLS_H
#define HALOYD_AGENT_AGENTTLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct agentconf;

/* NULL with a one-line reason in err. */
SSL_CTX *agenttls_context(const struct agentconf *c, char *err, size_t errlen);
/* 0 when the key file is private to its owner, else -1 with the reason. */
int agenttls_check_key_mode(const char *path, char *err, size_t errlen);

#endif
