/*
 * A `systemctl restart` that drains (issue 21): on SIGTERM under systemd,
 * when the job systemd runs on our unit is a restart, the children that
 * still have work are moved into a transient scope of their own
 * (haloyd-drain-<master pid>.scope), so they leave the service's cgroup and
 * systemd neither waits for them nor kills them with the unit; the master
 * then exits and the new one starts at once. The calls to systemd are a
 * small table (master/scopebus.c is the real one over sd-bus; the unit
 * tests have a fake).
 */
#ifndef HALOYD_DRAINSCOPE_H
#define HALOYD_DRAINSCOPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DRAINSCOPE_NAME_MAX 64
#define DRAINSCOPE_STATE_MAX 32
#define DRAINSCOPE_WAIT_MS 5000	/* the scope's start job moving the pids */
#define DRAINSCOPE_POLL_MS 10
#define DRAINSCOPE_PATTERN "haloyd-drain-*.scope"

struct drainscope_bus {
	/*
	 * The type of the job systemd is running on the unit pid belongs to
	 * ("restart", "stop", ...), "" when none. 0, or -1 (logged).
	 */
	int (*job_type)(void *impl, pid_t pid, char *type, size_t size);
	/*
	 * StartTransientUnit of scope name with pids in it; a stop of the scope
	 * (SIGTERM, which a draining child ignores) ends in SIGKILL after
	 * stop_ms. 0, or -1 (logged).
	 */
	int (*start_scope)(void *impl, const char *name, const char *description,
	    const pid_t *pids, size_t npids, uint64_t stop_ms);
	/* The ActiveState of unit name ("" when systemd has none). 0, or -1 (logged). */
	int (*active_state)(void *impl, const char *name, char *state, size_t size);
	/*
	 * StopUnit of every loaded unit whose name matches pattern (a glob):
	 * how many were asked to stop, or -1 (logged).
	 */
	int (*stop_units)(void *impl, const char *pattern);
	/* Sleeps ms (a fake returns at once). */
	void (*pause)(void *impl, unsigned ms);
};

/*
 * 1 when the job on master's unit is a restart (the workers should drain
 * in a scope), 0 when not (why says so: a stop, no job), -1 when systemd
 * could not be asked (why says so).
 */
int drainscope_restarting(const struct drainscope_bus *bus, void *impl, pid_t master,
    char *why, size_t size);
/* The scope's name for master: haloyd-drain-<pid>.scope. */
void drainscope_name(pid_t master, char *name, size_t size);
/*
 * Moves pids into the scope and waits (DRAINSCOPE_WAIT_MS at most) until
 * systemd says it is active, i.e. they are in its cgroup. A stop of the
 * scope gives them stop_ms (stop_timeout), as a plain stop would. 0, or -1
 * with why.
 */
int drainscope_move(const struct drainscope_bus *bus, void *impl, pid_t master,
    const pid_t *pids, size_t npids, uint64_t stop_ms, char *why, size_t size);

/*
 * A plain stop: the scopes earlier restarts left draining are stopped too
 * (systemd's default for a scope: SIGTERM, then SIGKILL), so a stop leaves
 * no haloyd process. How many, or -1.
 */
int drainscope_stop_all(const struct drainscope_bus *bus, void *impl);

#endif
