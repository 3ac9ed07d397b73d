/* Dropping root for a child process (workers, the ACME child). */
#ifndef HALOYD_PRIVDROP_H
#define HALOYD_PRIVDROP_H

/*
 * When running as root: switches to user's uid, primary gid and no other
 * groups, and checks root cannot be regained. A no-op otherwise. 0, or -1
 * with the reason logged.
 */
int privdrop(const char *user);

#endif
