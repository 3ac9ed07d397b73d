/*
 * On-demand TLS in the master (haloyd.conf acme_on_demand, acme_ask): a
 * worker's MSG_W_ONDEMAND for a name no certificate covers goes through
 * the gate (master/odgate.h), then to the ACME child's ask of the
 * acme_ask URL; an allowed name is stored (store_ondemand_add) and the
 * ACME schedule orders and renews it like a route's certificate. Workers
 * hear MSG_W_ONDEMAND_NO when no certificate is coming.
 */
#ifndef HALOYD_MASTER_ONDEMAND_H
#define HALOYD_MASTER_ONDEMAND_H

#include <stdint.h>

struct master;
struct proc;
struct ipc_msg;

/* With acme_on_demand on (and acme on): the gate and the asks table. 0 or -1. */
int ondemand_init(struct master *m);
void ondemand_free(struct master *m);
/* A worker's MSG_W_ONDEMAND: from answers immediate refusals. */
void ondemand_request(struct master *m, struct proc *from, const char *name);
/* The ACME child's MSG_A_ASK_RESULT (arg: struct acme_peer). */
int ondemand_on_ask_result(void *arg, struct ipc_msg *msg);
/* The child is gone: its asks will not be answered. */
void ondemand_child_gone(struct master *m);
/* The order of on-demand name failed: handshakes waiting for it go on. */
void ondemand_order_failed(struct master *m, const char *name);

#endif
