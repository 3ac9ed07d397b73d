/*
 * On-demand TLS in a worker: the handshakes held while the master decides
 * whether their SNI name gets a certificate (haloyd.conf acme_on_demand),
 * the MSG_W_ONDEMAND that asks it, and their release: the name's
 * certificate arrived in a keyring, the master said no (MSG_W_ONDEMAND_NO),
 * or acme_on_demand_wait passed (the default certificate then answers).
 */
#ifndef HALOYD_WORKER_ODWAIT_H
#define HALOYD_WORKER_ODWAIT_H

#include <stdint.h>

#define ODWAIT_MAX 1024		/* handshakes held at once; more are answered at once */
#define ODWAIT_SENDS_PER_S 20	/* new names one worker asks the master about a second */

struct conn;
struct odwait;
struct worker;

/*
 * sendfn sends MSG_W_ONDEMAND for name (a fake in the unit tests); the
 * worker's sends to its master. NULL when out of memory.
 */
struct odwait *odwait_new(struct worker *w, int (*sendfn)(struct worker *w, const char *name));
void odwait_free(struct odwait *o);
/* The tls_ondemand_fn (worker/tls.h): holds the conn (cookie) for name; 1 held, 0 not. */
int odwait_ask(void *arg, void *cookie, const char *name);
/* A keyring was installed: handshakes whose name now has a certificate go on (o may be NULL). */
void odwait_keyring(struct odwait *o);
/* MSG_W_ONDEMAND_NO: handshakes waiting for name go on with the default certificate (o may be NULL). */
void odwait_no(struct odwait *o, const char *name);
/* The connection closes while held. */
void odwait_forget(struct odwait *o, struct conn *c);
/* Sends MSG_W_ONDEMAND to the worker's master (odwait_new's sendfn). */
int odwait_send_master(struct worker *w, const char *name);
/* MSG_W_ONDEMAND_NO (arg: the worker). */
struct ipc_msg;
int odwait_on_no(void *arg, struct ipc_msg *m);
/* Held handshakes (tests). */
uint32_t odwait_count(const struct odwait *o);

#endif
