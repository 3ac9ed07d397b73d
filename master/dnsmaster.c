/* The master's side of backends by DNS name (see dnsmaster.h). */
#include "config.h"

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/dnsares.h"
#include "master/dnsmaster.h"
#include "master/dnsname.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/snapbuild.h"
#include "master/store.h"
#include "share/beaddr.h"
#include "share/log.h"
#include "share/snap.h"

/* A changed answer: one new generation (publish.c batches changes that come together). */
static void
dnsmaster_changed(void *arg)
{
	/* Which routes use the name is not kept: every image is built again. */
	publish_invalidate(arg);
	(void)publish_changed(arg);
}

/* `resolver` as c-ares's CSV into buf, or NULL for /etc/resolv.conf. */
static const char *
dnsmaster_servers(const struct master *m, char *buf, size_t len, char *err, size_t errlen,
    int *bad)
{
	*bad = 0;
	if (m->cfg.resolver == NULL)
		return NULL;
	if (dnsname_servers_csv(m->cfg.resolver, buf, len, err, errlen) == -1)
		*bad = 1;
	return buf;
}

int
dnsmaster_init(struct master *m, char *err, size_t errlen)
{
	char csv[512];
	const char *servers;
	int bad;

	servers = dnsmaster_servers(m, csv, sizeof(csv), err, errlen, &bad);
	if (bad || dnsares_new(m->loop, servers, &m->dnsres, err, errlen) == -1)
		return -1;
	if ((m->dns = dnsname_new(m->loop, &dnsares_ops, m->dnsres, dnsmaster_changed, m)) ==
	    NULL) {
		dnsares_free(m->dnsres);
		m->dnsres = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	dnsares_set_table(m->dnsres, m->dns);
	dnsname_set_ttl_bounds(m->dns, m->cfg.resolve_min_ttl_ms, m->cfg.resolve_max_ttl_ms);
	return 0;
}

void
dnsmaster_reload(struct master *m)
{
	char csv[512], err[256];
	const char *servers;
	int bad;

	servers = dnsmaster_servers(m, csv, sizeof(csv), err, sizeof(err), &bad);
	if (bad || dnsares_restart(m->dnsres, servers, err, sizeof(err)) == -1)
		log_warnx("reload: %s; keeping the running resolver", err);
	dnsname_set_ttl_bounds(m->dns, m->cfg.resolve_min_ttl_ms, m->cfg.resolve_max_ttl_ms);
	dnsname_refresh(m->dns);
	dnsname_kick(m->dns);
}

void
dnsmaster_free(struct master *m)
{
	dnsname_free(m->dns);
	dnsares_free(m->dnsres);
	m->dns = NULL;
	m->dnsres = NULL;
}

size_t
dnsmaster_entries(struct master *m, uint32_t id, const char *name, uint16_t port,
    struct snapb_backend *out, size_t max)
{
	const struct dnsname_entry *e = m->dns != NULL ? dnsname_want(m->dns, id, name, port) : NULL;
	size_t i, n = 0;

	if (e != NULL && e->state == DNSNAME_RESOLVED)
		for (i = 0; i < e->naddrs && n < max; i++) {
			out[n] = (struct snapb_backend){ .id = e->ids[i],
			    .family = e->addrs[i].family, .port = port,
			    .flags = SNAP_BACKEND_NAME, .name = name };
			memcpy(out[n].addr, e->addrs[i].addr, sizeof(out[n].addr));
			n++;
		}
	if (n == 0)
		out[n++] = (struct snapb_backend){ .id = id, .family = AF_UNSPEC, .port = port,
		    .flags = SNAP_BACKEND_NAME, .name = name };
	return n;
}

void
dnsmaster_shard_begin(struct master *m, unsigned k)
{
	if (m->dns != NULL)
		dnsname_shard_begin(m->dns, k);
}

void
dnsmaster_built(struct master *m)
{
	if (m->dns == NULL)	/* a master of the unit tests: names stay unresolved */
		return;
	dnsname_sweep(m->dns);
	dnsname_kick(m->dns);
}

size_t
dnsmaster_show(const struct master *m, const struct store_route *r, char **v, size_t max)
{
	char what[DNSNAME_DESCRIBE_MAX], err[300];
	struct beaddr ba;
	size_t i, n = 0;

	for (i = 0; i < r->nbackends && n < max; i++) {
		if (beaddr_parse(r->backends[i], &ba, err, sizeof(err)) == -1 ||
		    ba.kind != BEADDR_NAME)
			continue;
		dnsname_describe(m->dns != NULL ? dnsname_find(m->dns,
		    (uint32_t)r->backend_ids[i]) : NULL, what, sizeof(what));
		if (asprintf(&v[n], "%s: %s", r->backends[i], what) == -1)
			break;
		n++;
	}
	return n;
}

void
dnsmaster_show_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
}
