/*
 * The running master's side of an upgrade: `haloyd-ctl upgrade` checks the
 * binary installed at the path we were started with (`-t`) and starts it
 * with --takeover; its MSG_C_TAKEOVER makes us read-only and hands it our
 * listening sockets; its MSG_C_TAKEOVER_READY makes us drain and exit. A
 * new master that dies or is late is killed and we serve on, writable.
 */
#ifndef HALOYD_HANDOVER_H
#define HALOYD_HANDOVER_H

#include <stdint.h>
#include <sys/types.h>

struct cclient;
struct cur;
struct master;

#define HANDOVER_CHECK_MS 5000	/* `haloyd -t` of the new binary */
#define HANDOVER_READY_MS 20000	/* from the start of the new master to its READY */

/* Remembers the absolute path we were started as (argv[0], else $PATH). 0 or -1. */
int handover_init(struct master *m);
void handover_free(struct master *m);
/* 1 while the old master drains after a hand-over (MSG_W_STOP's handover). */
uint32_t handover_draining(const struct master *m);
/* A child outside the process table was reaped: maybe the new master. */
void handover_reaped(struct master *m, pid_t pid, int status);

/* The control commands (master/cmdtable.c). */
int handover_cmd_upgrade(struct master *m, struct cclient *cl, struct cur *c);
int handover_cmd_takeover(struct master *m, struct cclient *cl, struct cur *c);
int handover_cmd_ready(struct master *m, struct cclient *cl, struct cur *c);

#endif
