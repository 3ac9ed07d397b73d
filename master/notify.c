/*
 * systemd notification. Without NOTIFY_SOCKET every call is a no-op, so the
 * master runs the same way in tests, in a container and under systemd.
 */
#include "config.h"

#include <systemd/sd-daemon.h>

#include "master/fdstore.h"
#include "master/master.h"
#include "master/notify.h"
#include "master/takeover.h"
#include "share/log.h"

static void
watchdog_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;
	uint64_t usec;

	/* Sent from the loop, so a hung loop stops the pings and systemd restarts us. */
	sd_notify(0, "WATCHDOG=1");
	if (sd_watchdog_enabled(0, &usec) > 0)
		ev_timer_start(l, &m->watchdog_timer, usec / 2000);
}

void
notify_init(struct master *m)
{
	uint64_t usec;

	ev_timer_init(&m->watchdog_timer, watchdog_fire, m);
	if (sd_watchdog_enabled(0, &usec) > 0) {
		log_info("systemd watchdog every %llu ms", (unsigned long long)(usec / 1000));
		ev_timer_start(m->loop, &m->watchdog_timer, usec / 2000);
	}
}

void
notify_status(struct master *m)
{
	sd_notifyf(0, "STATUS=serving %u routes, generation %u, %zu workers", m->nroutes,
	    m->gen, m->nworkers);
}

void
notify_ready(struct master *m)
{
	log_info("ready: %zu workers serve generation %u", m->nworkers, m->gen);
	/* Taking over: the old master names us MAINPID with READY=1 (NotifyAccess=main). */
	if (takeover_ready(m) == 1)
		return;
	sd_notify(0, "READY=1");
	notify_status(m);
	fdstore_put(m);
}

void
notify_mainpid(pid_t pid)
{
	sd_notifyf(0, "MAINPID=%d\nREADY=1", (int)pid);
}

void
notify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void
notify_reloading(void)
{
	sd_notify(0, "RELOADING=1");
}

void
notify_reloaded(struct master *m)
{
	sd_notify(0, "READY=1");
	notify_status(m);
}
