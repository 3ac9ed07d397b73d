/*
 * The control socket (RUNTIME_DIR/control.sock, SOCK_SEQPACKET, the IPC
 * framing): who may connect (SO_PEERCRED: root or the admin group, never the
 * workers' user), per-client queues, and replies that wait for a generation
 * to be served by every worker. Commands run through master/cmdtable.c.
 */
#ifndef HALOYD_CONTROL_H
#define HALOYD_CONTROL_H

#include <stdint.h>
#include <sys/types.h>

#include "share/cursor.h"

struct master;
struct cclient;

int control_open(struct master *m);
void control_close(struct master *m);
/* Hand-over: stop accepting (the path is left to the new master) / bind it again. */
void control_unlisten(struct master *m);
int control_relisten(struct master *m);

struct master *control_master(struct cclient *cl);

/* Replies (used by the command handlers); each ends the client's current command. */
void control_reply_ok(struct cclient *cl, const char *message);
void control_reply_fail(struct cclient *cl, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Row fields (see msg.h, MSG_C_ROW), written into a row being built. */
void control_row_str(struct wbuf *w, const char *key, const char *v);
void control_row_int(struct wbuf *w, const char *key, int64_t v);
void control_row_list(struct wbuf *w, const char *key, char *const *v, size_t n);

/* Queues one row; the command goes on until control_reply_end. */
void control_reply_row(struct cclient *cl, const struct wbuf *row);
void control_reply_end(struct cclient *cl);
/* Queues one message of type carrying a copy of fd (the caller keeps fd); 0 or -1. */
int control_reply_fd(struct cclient *cl, uint16_t type, const struct wbuf *w, int fd);
/* fn runs when cl goes away (closed by either side), before it is freed. */
void control_on_close(struct cclient *cl, void (*fn)(struct master *m, struct cclient *cl));
uid_t control_client_uid(const struct cclient *cl);
/* Answers OK with message once every worker serves gen (or FAIL on timeout). */
void control_reply_when_served(struct cclient *cl, uint32_t gen, const char *message);
/* Answers through fn once every asked worker sent its status (or after 1 s). */
void control_reply_after_status(struct cclient *cl, uint32_t seq,
    void (*fn)(struct master *m, struct cclient *cl));

/* Events from the rest of the master. */
void control_release_waiters(struct master *m);
void control_fail_waiters(struct master *m, const char *why);
void control_on_worker_status(struct master *m);

#endif
