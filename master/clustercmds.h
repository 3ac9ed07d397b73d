/* `haloyd-ctl cluster status` (master/clustercmds.c). */
#ifndef HALOYD_CLUSTERCMDS_H
#define HALOYD_CLUSTERCMDS_H

struct master;
struct cclient;
struct cur;

int clustercmds_status(struct master *m, struct cclient *cl, struct cur *c);

#endif
