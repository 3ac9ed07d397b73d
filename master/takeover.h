/*
 * The new master's side of a hand-over (`haloyd --takeover`): before it
 * opens the store it asks the running master over the control socket for
 * its listening sockets (they come by SCM_RIGHTS with kind, worker and
 * address); once its workers serve it says so, and the old one drains.
 */
#ifndef HALOYD_TAKEOVER_H
#define HALOYD_TAKEOVER_H

struct inherit;
struct master;

#define TAKEOVER_TIMEOUT_MS 10000	/* each answer of the old master */

/*
 * Fills h from the running master, which is read-only when this returns 0.
 * 1: no master answers on the control socket (nothing inherited, start as
 * usual); -1: it refused or broke off (do not start: it may still write).
 */
int takeover_fetch(struct master *m, struct inherit *h);
/* Our workers serve: tells the old master. 1 when there was one to tell, else 0. */
int takeover_ready(struct master *m);
void takeover_free(struct master *m);

#endif
