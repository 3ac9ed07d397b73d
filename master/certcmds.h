/*
 * haloyd-ctl's certificate commands (cert import, list, show, rm), handlers
 * of master/cmdtable.c's table: checked by master/certs.c, kept in the
 * store, shipped in the next keyring; an import or removal is answered
 * once every worker serves it.
 */
#ifndef HALOYD_CERTCMDS_H
#define HALOYD_CERTCMDS_H

struct master;
struct cclient;
struct cur;

int certcmds_import(struct master *m, struct cclient *cl, struct cur *c);
int certcmds_list(struct master *m, struct cclient *cl, struct cur *c);
int certcmds_show(struct master *m, struct cclient *cl, struct cur *c);
int certcmds_rm(struct master *m, struct cclient *cl, struct cur *c);

#endif
