/*
 * Worker processes: started by fork + fexecve of our own executable with
 * the socketpair on fd 3, greeted with HELLO, handed config, listeners and
 * the current snapshot, supervised and respawned with back-off.
 */
#ifndef HALOYD_CHILDREN_H
#define HALOYD_CHILDREN_H

#include <stdint.h>
#include <sys/types.h>

struct master;
struct child;

int children_init(struct master *m);
int children_spawn(struct child *c);
/*
 * Starts a child of role ("worker", "acme") with our own executable
 * (fork + fexecve), its end of a new socketpair on fd 3, dropping to user.
 * 0 with *pid and our end in *sock (blocking, close-on-exec), or -1.
 */
int children_fork(struct master *m, const char *role, int index, const char *user, pid_t *pid,
    int *sock);
/* Sends the current snapshot to every worker that is ready. */
void children_send_snapshot(struct master *m);
/* Sends MSG_W_CONFIG to every ready worker (after SIGHUP). */
void children_send_config(struct master *m);
/* Asks every ready worker for MSG_W_STATUS with seq; returns how many were asked. */
int children_request_status(struct master *m, uint32_t seq);
/* Reaps exited children (SIGCHLD) and schedules respawns. */
void children_reap(struct master *m);
/* Kills a misbehaving worker; it is respawned when reaped. */
void children_kill(struct child *c, const char *why);
/* Asks every worker to stop gracefully within deadline_ms. */
void children_stop_all(struct master *m, uint32_t deadline_ms);
/* Number of workers still running. */
size_t children_running(const struct master *m);
void children_kill_all(struct master *m);

#endif
