/*
 * systemd's file-descriptor store for the listening sockets: stored with
 * FDSTORE=1 and FDNAME= once the master serves, and taken back from
 * LISTEN_FDS / LISTEN_FDNAMES at the next start, so even a stop + start
 * under systemd keeps the accept queues. Without NOTIFY_SOCKET, a no-op.
 */
#ifndef HALOYD_FDSTORE_H
#define HALOYD_FDSTORE_H

struct inherit;
struct master;

/* Stores every HTTP and HTTPS listener (FileDescriptorStoreMax= bounds it). */
void fdstore_put(struct master *m);
/* Adds the sockets systemd passed us, by name, to h; returns how many. */
int fdstore_take(struct inherit *h);
/*
 * Before inherit_close_rest: the sockets systemd passed that the
 * configuration no longer has leave its store too (FDSTOREREMOVE=1), or
 * systemd would keep a removed address listening with nobody accepting.
 */
void fdstore_drop_unused(const struct inherit *h);

#endif
