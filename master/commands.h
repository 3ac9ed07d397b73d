/*
 * haloyd-ctl's route, alias and backend commands, status and reload: the
 * handlers of master/cmdtable.c's table (see cmd_fn there).
 */
#ifndef HALOYD_COMMANDS_H
#define HALOYD_COMMANDS_H

struct master;
struct cclient;
struct cur;

int commands_route_add(struct master *m, struct cclient *cl, struct cur *c);
int commands_route_rm(struct master *m, struct cclient *cl, struct cur *c);
int commands_route_list(struct master *m, struct cclient *cl, struct cur *c);
int commands_route_show(struct master *m, struct cclient *cl, struct cur *c);
int commands_route_set(struct master *m, struct cclient *cl, struct cur *c);
int commands_alias_add(struct master *m, struct cclient *cl, struct cur *c);
int commands_alias_rm(struct master *m, struct cclient *cl, struct cur *c);
int commands_backend_add(struct master *m, struct cclient *cl, struct cur *c);
int commands_backend_rm(struct master *m, struct cclient *cl, struct cur *c);
int commands_status(struct master *m, struct cclient *cl, struct cur *c);
int commands_reload(struct master *m, struct cclient *cl, struct cur *c);

#endif
