/*
 * Which fields stay on their hop when the agent converts between HTTP/2
 * (the tunnel) and HTTP/1.1 (the app): the connection-specific ones of
 * RFC 9113 8.2.2 and whatever Connection lists.
 */
#ifndef HALOYD_AGENT_HOPFILTER_H
#define HALOYD_AGENT_HOPFILTER_H

#include <stddef.h>

#include "worker/message.h"

/* 1 when a field called name (any case) never crosses the agent. */
int hopfilter_is_hop(const char *name, size_t len);
/* 1 when field i of h is dropped: hop-by-hop, listed by Connection, or TE other than trailers. */
int hopfilter_drop(const struct msg_head *h, uint32_t i);

#endif
