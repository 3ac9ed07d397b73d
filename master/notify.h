/* systemd notification (READY, STATUS, STOPPING, WATCHDOG): all of libsystemd's use by the master. */
#ifndef HALOYD_NOTIFY_H
#define HALOYD_NOTIFY_H

#include <sys/types.h>

struct master;

/* Arms the watchdog timer when systemd asked for one. */
void notify_init(struct master *m);
void notify_ready(struct master *m);
void notify_status(struct master *m);
void notify_stopping(void);
/* The old master, at the end of a hand-over: pid is the service's main process now. */
void notify_mainpid(pid_t pid);
void notify_reloading(void);
/* After a reload, done or refused: READY=1 again with a fresh STATUS. */
void notify_reloaded(struct master *m);

#endif
