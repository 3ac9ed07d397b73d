/*
 * The policy of the ACME order leases (master/acmelease.h): which name a
 * lease has, how long it lasts, and what losing it means.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "master/acmelease.h"
#include "share/log.h"
#include "share/util.h"

void
acmelease_init(struct acmelease *l, const char *holder)
{
	memset(l, 0, sizeof(*l));
	util_strlcpy(l->holder, holder, sizeof(l->holder));
}

int
acmelease_take(struct store *st, struct acmelease *l, const char *name, int64_t now,
    int64_t *until)
{
	struct store_lease row;
	char key[STORE_LEASE_NAME_MAX + 1];

	*until = 0;
	if ((size_t)snprintf(key, sizeof(key), "acme:%s", name) >= sizeof(key)) {
		log_warnx("acme %s: name too long for a lease", name);
		return -1;
	}
	if (store_lease_take(st, key, l->holder, now, now + ACMELEASE_TTL_S, &row) != STORE_OK) {
		log_warnx("acme %s: cannot take the order's lease", name);
		return -1;
	}
	if (strcmp(row.holder, l->holder) != 0) {
		*until = row.expires;
		log_info("acme %s: node %s is ordering it (lease until %lld)", name, row.holder,
		    (long long)row.expires);
		return 0;
	}
	util_strlcpy(l->name, key, sizeof(l->name));
	l->token = row.token;
	return 1;
}

int
acmelease_renew(struct store *st, struct acmelease *l, int64_t now)
{
	int rc;

	if (l->name[0] == '\0')
		return -1;
	if ((rc = store_lease_renew(st, l->name, l->holder, l->token, now + ACMELEASE_TTL_S)) ==
	    STORE_OK)
		return 0;
	/* A store that is down keeps the lease until it expires: try again next time. */
	if (rc != STORE_ENOENT) {
		log_warnx("%s: cannot renew the lease; trying again", l->name);
		return 0;
	}
	log_warnx("%s: lease lost to another node (token %lld is stale)", l->name,
	    (long long)l->token);
	l->name[0] = '\0';
	return -1;
}

void
acmelease_release(struct store *st, struct acmelease *l)
{
	if (l->name[0] == '\0')
		return;
	/* Not ours any more (taken over) or the store is down: it expires by itself. */
	(void)store_lease_release(st, l->name, l->holder, l->token);
	l->name[0] = '\0';
}

int
acmelease_cert_put(struct store *st, const struct acmelease *l, const struct store_cert *c)
{
	int rc;

	if (l->name[0] == '\0')
		return STORE_ENOENT;
	rc = store_lease_cert_put(st, l->name, l->holder, l->token, c);
	if (rc == STORE_ENOENT)
		log_warnx("%s: certificate not saved: another node took the order over "
		    "(token %lld is stale)", l->name, (long long)l->token);
	return rc;
}
