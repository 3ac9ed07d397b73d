/*
 * haloyd-ctl's certificate commands (cert import, list, show, rm): checked
 * by master/certs.c, kept in the store, shipped in the next keyring; an
 * import or removal is answered once every worker serves it.
 */
#ifndef HALOYD_CERTCMDS_H
#define HALOYD_CERTCMDS_H

#include <stdint.h>

struct master;
struct cclient;
struct ipc_msg;

/* 1 when type is one of the MSG_C_CERT_* requests. */
int certcmds_handles(uint16_t type);
/* Runs one; the reply goes out through master/control.h. -1 = malformed. */
int certcmds_run(struct master *m, struct cclient *cl, struct ipc_msg *msg);

#endif
