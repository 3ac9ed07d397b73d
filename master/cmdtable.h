/*
 * The control commands: one table of every haloyd-ctl request (its name,
 * the bounds of its arguments, what it does to the daemon, its handler)
 * through which master/control.c runs each one. The handlers live with
 * what they change: master/commands.c (routes, status, reload),
 * master/certcmds.c (certificates), master/acmequeue.c (ACME orders).
 */
#ifndef HALOYD_CMDTABLE_H
#define HALOYD_CMDTABLE_H

#include <stdint.h>

struct cclient;
struct cur;
struct ipc_msg;
struct master;

/* Reads its arguments from c and answers cl (master/control.h); -1 = malformed. */
typedef int cmd_fn(struct master *m, struct cclient *cl, struct cur *c);

enum cmd_flags {
	CMD_CHANGES = 1 << 0,	/* changes the daemon: answered once every worker serves it */
	CMD_SECRET = 1 << 1,	/* carries a private key: wiped from the receive buffer after */
	CMD_FD = 1 << 2,	/* carries exactly one fd (the handler takes m->rx->fd) */
};

struct cmd {
	uint16_t type;		/* MSG_C_* */
	const char *name;	/* as haloyd-ctl spells it */
	uint32_t min_len;	/* payload bounds, checked before the handler runs */
	uint32_t max_len;
	unsigned flags;		/* enum cmd_flags */
	cmd_fn *fn;
};

/* Runs one request; -1 = malformed (unknown type, size out of bounds, an fd). */
int cmdtable_run(struct master *m, struct cclient *cl, struct ipc_msg *msg);
/* The table's entry for type, or NULL. */
const struct cmd *cmdtable_find(uint16_t type);

#endif
