/*
 * The decision and the steps of a draining restart (master/drainscope.h):
 * which job systemd runs on our unit, the scope's start, the wait for its
 * pids to be in it. No sd-bus here: the calls go through the table.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "master/drainscope.h"

int
drainscope_restarting(const struct drainscope_bus *bus, void *impl, pid_t master,
    char *why, size_t size)
{
	char type[DRAINSCOPE_STATE_MAX];

	if (bus->job_type(impl, master, type, sizeof(type)) == -1) {
		snprintf(why, size, "systemd could not be asked which job stops the service");
		return -1;
	}
	/* try-restart collapses to restart on an active unit; both end in a start. */
	if (strcmp(type, "restart") == 0 || strcmp(type, "try-restart") == 0)
		return 1;
	if (type[0] == '\0')
		snprintf(why, size, "no systemd job stops the service (a signal sent by hand)");
	else
		snprintf(why, size, "the service's job is a %s, not a restart", type);
	return 0;
}

void
drainscope_name(pid_t master, char *name, size_t size)
{
	/* DRAINSCOPE_PATTERN matches it. */
	snprintf(name, size, "haloyd-drain-%ld.scope", (long)master);
}

int
drainscope_move(const struct drainscope_bus *bus, void *impl, pid_t master,
    const pid_t *pids, size_t npids, uint64_t stop_ms, char *why, size_t size)
{
	char name[DRAINSCOPE_NAME_MAX], desc[96], state[DRAINSCOPE_STATE_MAX];
	unsigned waited;

	if (npids == 0) {
		snprintf(why, size, "no child has work left");
		return -1;
	}
	drainscope_name(master, name, sizeof(name));
	snprintf(desc, sizeof(desc), "haloyd children draining after a restart (master %ld)",
	    (long)master);
	if (bus->start_scope(impl, name, desc, pids, npids, stop_ms) == -1) {
		snprintf(why, size, "systemd refused to start %s", name);
		return -1;
	}
	/* The start job runs after the call returns: the pids move then. */
	for (waited = 0; waited <= DRAINSCOPE_WAIT_MS; waited += DRAINSCOPE_POLL_MS) {
		if (bus->active_state(impl, name, state, sizeof(state)) == -1) {
			snprintf(why, size, "systemd could not be asked about %s", name);
			return -1;
		}
		if (strcmp(state, "active") == 0)
			return 0;
		if (strcmp(state, "failed") == 0) {
			snprintf(why, size, "%s failed to start", name);
			return -1;
		}
		bus->pause(impl, DRAINSCOPE_POLL_MS);
	}
	snprintf(why, size, "%s was not active within %u ms", name, DRAINSCOPE_WAIT_MS);
	return -1;
}

int
drainscope_stop_all(const struct drainscope_bus *bus, void *impl)
{
	return bus->stop_units(impl, DRAINSCOPE_PATTERN);
}
