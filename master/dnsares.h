/*
 * The resolver of master/dnsname.h on c-ares, driven by the master's epoll
 * loop: c-ares says which sockets to watch (its socket-state callback),
 * the loop runs ares_process_fd on their events and on c-ares's own
 * timeout. Never blocks, no thread; answers carry each record's TTL.
 */
#ifndef HALOYD_DNSARES_H
#define HALOYD_DNSARES_H

#include <stddef.h>

#include "master/dnsname.h"

struct ev_loop;
struct dnsares;

extern const struct dnsname_resolver_ops dnsares_ops;

/*
 * A resolver asking servers_csv (dnsname_servers_csv's form) or, when NULL,
 * the servers of /etc/resolv.conf; answers go to dnsname_answer(*table).
 * 0, or -1 with a reason.
 */
int dnsares_new(struct ev_loop *loop, const char *servers_csv, struct dnsares **out, char *err,
    size_t errlen);
/* Where the answers go (set once the table exists). */
void dnsares_set_table(struct dnsares *d, struct dnsname *t);
/*
 * A fresh channel (reload: /etc/resolv.conf or `resolver` read again);
 * lookups in flight are dropped unanswered. 0, or -1 keeping the old one.
 */
int dnsares_restart(struct dnsares *d, const char *servers_csv, char *err, size_t errlen);
void dnsares_free(struct dnsares *d);

#endif
