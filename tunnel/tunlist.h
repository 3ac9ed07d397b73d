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

struct h2conn;
struct h2client_info;
/* What a session's row shows (h2client_session_info; the unit tests give a fake). */
typedef void tunlist_info_fn(const struct h2conn *c, struct h2client_info *out);

/* The MSG_T_LIST payload for t into w: ready tunnels, MSG_T_LIST_MAX at most. */
void tunlist_encode(const struct tunnel_ctx *t, struct wbuf *w, tunlist_info_fn *info);
/* Answers the master's request seq on fd; 0 or -1. */
int tunlist_send(const struct tunnel_ctx *t, int fd, uint32_t seq);

#endif
