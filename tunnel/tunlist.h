/*
 * `haloyd-ctl tunnel list`, the tunnel process's side: one MSG_T_LIST
 * (share/msg.h) with a row per agent, at most MSG_T_LIST_MAX of them.
 */
#ifndef HALOYD_TUNNEL_TUNLIST_H
#define HALOYD_TUNNEL_TUNLIST_H

#include <stddef.h>
#include <stdint.h>

struct tunnel_ctx;
struct wbuf;

/* The MSG_T_LIST payload for t into w (the rows that fit when there are more). */
void tunlist_encode(const struct tunnel_ctx *t, struct wbuf *w);
/* Answers the master's request seq on fd; 0 or -1. */
int tunlist_send(const struct tunnel_ctx *t, int fd, uint32_t seq);

#endif
