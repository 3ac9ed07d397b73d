/*
 * haloyd-ctl export and apply (haloyd issue 18, point 3): the store's
 * routes as one file (master/applyfile.h), and a file made the store's
 * content in one transaction and one generation.
 */
#ifndef HALOYD_APPLY_H
#define HALOYD_APPLY_H

struct master;
struct cclient;
struct cur;

/* export: rows of "line" (master/cmdtable.h's cmd_fn). */
int apply_cmd_export(struct master *m, struct cclient *cl, struct cur *c);
/* apply: the file in m->rx's fd; rows of changes, then OK once every worker serves them. */
int apply_cmd_apply(struct master *m, struct cclient *cl, struct cur *c);

#endif
