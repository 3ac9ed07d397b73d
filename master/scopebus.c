/*
 * sd-bus calls to systemd's manager for the drain scope: the job on our
 * unit, StartTransientUnit of a scope with PIDs, a unit's ActiveState,
 * StopUnit of the scopes earlier restarts left.
 * Every call is bounded (SCOPEBUS_TIMEOUT_US): it runs in the master's
 * SIGTERM handling, while systemd waits for us to exit.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "master/scopebus.h"
#include "share/log.h"

#define SCOPEBUS_TIMEOUT_US (5 * 1000 * 1000ULL)
#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

static sd_bus *
open_private(void)
{
	sd_bus *bus = NULL;

	if (sd_bus_new(&bus) < 0)
		return NULL;
	if (sd_bus_set_address(bus, "unix:path=/run/systemd/private") < 0 ||
	    sd_bus_start(bus) < 0) {
		sd_bus_unref(bus);
		return NULL;
	}
	return bus;
}

void *
scopebus_open(char *why, size_t size)
{
	sd_bus *bus;
	int r;

	if ((bus = open_private()) == NULL && (r = sd_bus_open_system(&bus)) < 0) {
		snprintf(why, size, "neither /run/systemd/private nor the system bus answers: %s",
		    strerror(-r));
		return NULL;
	}
	(void)sd_bus_set_method_call_timeout(bus, SCOPEBUS_TIMEOUT_US);
	return bus;
}

void
scopebus_close(void *impl)
{
	sd_bus_flush_close_unref(impl);
}

static void
call_failed(const char *what, sd_bus_error *e, int r)
{
	log_warnx("systemd %s: %s", what, sd_bus_error_is_set(e) ? e->message : strerror(-r));
	sd_bus_error_free(e);
}

static int
string_property(sd_bus *bus, const char *path, const char *iface, const char *prop,
    char *out, size_t size)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *s = NULL;
	int r;

	if ((r = sd_bus_get_property_string(bus, SD_DEST, path, iface, prop, &e, &s)) < 0) {
		call_failed(prop, &e, r);
		return -1;
	}
	snprintf(out, size, "%s", s);
	free(s);
	return 0;
}

static int
bus_job_type(void *impl, pid_t pid, char *type, size_t size)
{
	sd_bus *bus = impl;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *unit, *job;
	uint32_t id;
	char path[256];
	int r, rc = -1;

	type[0] = '\0';
	if ((r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnitByPID", &e, &reply,
	    "u", (uint32_t)pid)) < 0 || (r = sd_bus_message_read(reply, "o", &unit)) < 0) {
		call_failed("GetUnitByPID", &e, r);
		goto out;
	}
	snprintf(path, sizeof(path), "%s", unit);
	sd_bus_message_unref(reply);
	reply = NULL;
	if ((r = sd_bus_get_property(bus, SD_DEST, path, "org.freedesktop.systemd1.Unit", "Job",
	    &e, &reply, "(uo)")) < 0 || (r = sd_bus_message_read(reply, "(uo)", &id, &job)) < 0) {
		call_failed("Job", &e, r);
		goto out;
	}
	rc = id == 0 ? 0 : string_property(bus, job, "org.freedesktop.systemd1.Job", "JobType",
	    type, size);
out:
	sd_bus_message_unref(reply);
	return rc;
}

static int
bus_start_scope(void *impl, const char *name, const char *description, const pid_t *pids,
    size_t npids, uint64_t stop_ms)
{
	sd_bus *bus = impl;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	size_t i;
	int r, rc = -1;

	if ((r = sd_bus_message_new_method_call(bus, &m, SD_DEST, SD_PATH, SD_MANAGER,
	    "StartTransientUnit")) < 0 ||
	    (r = sd_bus_message_append(m, "ss", name, "fail")) < 0 ||
	    (r = sd_bus_message_open_container(m, 'a', "(sv)")) < 0 ||
	    (r = sd_bus_message_append(m, "(sv)", "Description", "s", description)) < 0 ||
	    /* Gone from systemd's list once its last process exited, failed or not. */
	    (r = sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive-or-failed")) < 0 ||
	    (r = sd_bus_message_append(m, "(sv)", "TimeoutStopUSec", "t", stop_ms * 1000)) < 0 ||
	    (r = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
	    (r = sd_bus_message_append(m, "s", "PIDs")) < 0 ||
	    (r = sd_bus_message_open_container(m, 'v', "au")) < 0 ||
	    (r = sd_bus_message_open_container(m, 'a', "u")) < 0)
		goto fail;
	for (i = 0; i < npids; i++)
		if ((r = sd_bus_message_append(m, "u", (uint32_t)pids[i])) < 0)
			goto fail;
	if ((r = sd_bus_message_close_container(m)) < 0 ||
	    (r = sd_bus_message_close_container(m)) < 0 ||
	    (r = sd_bus_message_close_container(m)) < 0 ||
	    (r = sd_bus_message_close_container(m)) < 0 ||
	    (r = sd_bus_message_append(m, "a(sa(sv))", 0)) < 0)
		goto fail;
	if ((r = sd_bus_call(bus, m, 0, &e, &reply)) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	call_failed("StartTransientUnit", &e, r);
out:
	sd_bus_message_unref(reply);
	sd_bus_message_unref(m);
	return rc;
}

static int
bus_active_state(void *impl, const char *name, char *state, size_t size)
{
	sd_bus *bus = impl;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	char p[256];
	int r;

	state[0] = '\0';
	if ((r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply,
	    "s", name)) < 0) {
		/* Not loaded (yet, or any more): no state. */
		if (sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit")) {
			sd_bus_error_free(&e);
			return 0;
		}
		call_failed("GetUnit", &e, r);
		return -1;
	}
	if ((r = sd_bus_message_read(reply, "o", &path)) < 0) {
		call_failed("GetUnit", &e, r);
		sd_bus_message_unref(reply);
		return -1;
	}
	snprintf(p, sizeof(p), "%s", path);
	sd_bus_message_unref(reply);
	return string_property(bus, p, "org.freedesktop.systemd1.Unit", "ActiveState", state,
	    size);
}

static int
stop_one(sd_bus *bus, const char *name)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	if ((r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &e, NULL,
	    "ss", name, "replace")) < 0) {
		call_failed("StopUnit", &e, r);
		return -1;
	}
	return 0;
}

static int
bus_stop_units(void *impl, const char *pattern)
{
	sd_bus *bus = impl;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *name;
	int r, n = 0;

	if ((r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "ListUnitsByPatterns", &e,
	    &reply, "asas", 0, 1, pattern)) < 0 ||
	    (r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)")) < 0) {
		call_failed("ListUnitsByPatterns", &e, r);
		sd_bus_message_unref(reply);
		return -1;
	}
	while ((r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, NULL)) > 0)
		if (stop_one(bus, name) == 0)
			n++;
	if (r < 0)
		call_failed("ListUnitsByPatterns", &e, r);
	sd_bus_message_unref(reply);
	return r < 0 ? -1 : n;
}

static void
bus_pause(void *impl, unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	(void)impl;
	nanosleep(&ts, NULL);
}

const struct drainscope_bus scopebus_ops = {
	bus_job_type,
	bus_start_scope,
	bus_active_state,
	bus_stop_units,
	bus_pause,
};
