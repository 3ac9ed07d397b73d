/*
 * The master's side of backends by DNS name: the resolver and the table
 * (master/dnsares.c, master/dnsname.c) started from haloyd.conf, renewed on
 * reload, and the snapshot entries of one name backend for the builder.
 */
#ifndef HALOYD_DNSMASTER_H
#define HALOYD_DNSMASTER_H

#include <stddef.h>
#include <stdint.h>

struct master;
struct snapb_backend;
struct store_route;

/* From m->cfg (resolver, resolve_min_ttl, resolve_max_ttl); 0, or -1 with a reason. */
int dnsmaster_init(struct master *m, char *err, size_t errlen);
/* Reload: the resolver read again (a bad one keeps the old) and every name asked again. */
void dnsmaster_reload(struct master *m);
void dnsmaster_free(struct master *m);
/*
 * The snapshot entries of backend row id, "name:port": one per address of
 * the last good answer, or one unresolved entry. Fills out[0..max) and
 * returns how many (>= 1).
 */
size_t dnsmaster_entries(struct master *m, uint32_t id, const char *name, uint16_t port,
    struct snapb_backend *out, size_t max);
/* Before snapshot shard k is built: the names it uses are counted afresh. */
void dnsmaster_shard_begin(struct master *m, unsigned k);
/* After a build: the names no shard uses any more (their rows are gone) are dropped. */
void dnsmaster_built(struct master *m);
/*
 * route show's lines for r's backends by name, "NAME:PORT: 1.2.3.4:80 ..."
 * or "NAME:PORT: unresolved (why)", malloc'd into v[0..max); how many.
 */
size_t dnsmaster_show(const struct master *m, const struct store_route *r, char **v, size_t max);
void dnsmaster_show_free(char **v, size_t n);

#endif
