/* haloyd-ctl commands: validate, change the store, publish, answer. */
#ifndef HALOYD_COMMANDS_H
#define HALOYD_COMMANDS_H

struct master;
struct cclient;
struct ipc_msg;

/* Runs one command; the reply goes out through master/control.h. -1 = malformed. */
int commands_run(struct master *m, struct cclient *cl, struct ipc_msg *msg);

#endif
