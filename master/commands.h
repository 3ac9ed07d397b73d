/*
 * haloyd-ctl's route, alias and backend commands, status and reload: the
 * handlers of master/cmdtable.c's table (see cmd_fn there).
 */
#ifndef HALOYD_COMMANDS_H
#define HALOYD_COMMANDS_H

#include <stddef.h>

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


/* The route settings table (route set's), for export and apply. */
struct store_settings;
size_t commands_rset_count(void);
const char *commands_rset_key(size_t i);
int commands_rset_value(size_t i, const struct store_settings *set, char *buf, size_t len,
    int full);
const char *commands_rset_pem(size_t i, const struct store_settings *set);
int commands_rset_is_pem(size_t i);
void commands_rset_defaults(struct store_settings *set);
int commands_rset_put(const char *key, const char *val, struct store_settings *set, char *err,
    size_t errlen);
int commands_rset_check(const struct store_settings *set, char *err, size_t errlen);

#endif
