/*
 * Tunnel names (haloyd issue 13, the contract's "Names"): 1..63 characters
 * of [a-z0-9.-] starting with [a-z0-9]. An agent's name is its client
 * certificate's subject CN; anything else is refused.
 */
#ifndef HALOYD_TUNNEL_TUNNAME_H
#define HALOYD_TUNNEL_TUNNAME_H

#include <stddef.h>

#define TUNNAME_MAX 63

/* 1 when the len bytes at s are a valid tunnel name (no NUL among them), else 0. */
int tunname_valid(const char *s, size_t len);

#endif
