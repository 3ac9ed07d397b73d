/*
 * The master's side of ACME: the acme child (a role of the process table,
 * master/proc.h), the order queue and schedule in the store (table
 * acme_orders), renewal and back-off, the HTTP-01 challenge barrier, the
 * checks on an issued certificate, and `haloyd-ctl cert status|renew`.
 */
#ifndef HALOYD_MASTER_ACME_H
#define HALOYD_MASTER_ACME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct master;
struct cclient;
struct cur;
struct ipc_msg;
struct snapb_chal;

struct proc_role;
/* The acme child's role in the process table (its messages' table: the IPC fuzzing harness uses it). */
extern const struct proc_role acme_role;

/* A TLS-ALPN-01 challenge certificate the keyring carries while its order runs. */
struct acme_alpn_cert {
	char host[254];
	char *cert;		/* PEM, self-signed, checked by the master */
	char *key;		/* PEM: a throwaway key, never the account's */
};

/* The running order's challenge certificates (valid until the next change); the count. */
uint32_t acme_alpn_certs(const struct master *m, const struct acme_alpn_cert **v);

/* Shared store, at each build: reads the other nodes' challenge answers (master/acmeshare.c). */
void acmeshare_load(struct master *m);
void acmeshare_free(struct master *m);

/* Sets up the context; with `acme on`, prepares STATE_DIR/acme and starts the child. */
int acme_init(struct master *m);
/* Asks the child to stop (graceful stop of the master). */
void acme_stop(struct master *m);
/* After acme_stop without a master stop (a cancelled hand-over): the child runs again. */
void acme_resume(struct master *m);
void acme_free(struct master *m);
/* A generation was acked: answer a challenge barrier that is now met. */
void acme_publish_check(struct master *m);
/* The challenges the next snapshot must carry (valid until the next change). */
void acme_snap_chals(const struct master *m, const struct snapb_chal **chals, uint32_t *n);
/*
 * A route or its names changed: look for due orders soon. When name cannot
 * get a certificate, writes why into note (for the haloyd-ctl reply).
 */
void acme_route_changed(struct master *m, const char *name, char *note, size_t notelen);
/* Another node changed the shared store: its new routes may need an order (under a lease). */
void acme_remote_changed(struct master *m);
/*
 * A route is gone: its ACME certificate goes too (imported ones are the
 * operator's and stay). Called before the generation is published.
 */
void acme_route_removed(struct master *m, const char *name);
/*
 * Why a public CA cannot issue for name over HTTP-01 (an IP literal, a
 * local or single-label name, a wildcard), or NULL when it can.
 */
const char *acme_name_refusal(const char *name);
/* `haloyd-ctl cert status` and `cert renew` (master/cmdtable.c's handlers). */
int acme_cmd_status(struct master *m, struct cclient *cl, struct cur *c);
int acme_cmd_renew(struct master *m, struct cclient *cl, struct cur *c);

#endif
