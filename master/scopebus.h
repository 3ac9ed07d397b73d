/* The drain scope's calls to systemd over sd-bus (master/drainscope.h's table). */
#ifndef HALOYD_SCOPEBUS_H
#define HALOYD_SCOPEBUS_H

#include <stddef.h>

#include "master/drainscope.h"

extern const struct drainscope_bus scopebus_ops;

/*
 * A connection to systemd: its private socket (what systemctl uses as
 * root, no dbus-daemon needed), else the system bus. NULL when neither
 * answers, with why (the caller logs the one line it belongs to).
 */
void *scopebus_open(char *why, size_t size);
void scopebus_close(void *impl);

#endif
