/*
 * The child side of a master channel, shared by every role the master
 * starts (worker, acme): signals as a child takes them, and the HELLO
 * handshake on the socketpair the master left on fd 3.
 */
#ifndef HALOYD_CHILD_H
#define HALOYD_CHILD_H

#include <stdint.h>

struct ipc_msg;

/*
 * Blocks SIGTERM, SIGINT and SIGHUP (reloads are the master's business),
 * ignores SIGPIPE and returns a signalfd for SIGTERM and SIGINT. Start-up
 * only: fatal on failure.
 */
int child_signalfd(void);

/* Makes the master socket non-blocking and close-on-exec and says HELLO as role. Fatal on failure. */
void child_hello(int parent, uint32_t role, uint32_t index);

/* The dispatch handler for the master's HELLO: another protocol version is fatal. */
int child_on_hello(void *arg, struct ipc_msg *m);

#endif
