/*
 * The challenge answers of a shared store (issue 20): the ordering node
 * writes its order's answers to the store (master/store_chal.c), every node
 * reads the other nodes' answers at each build into what its workers serve
 * (the snapshot's CHALLENGES, the keyring's TLS-ALPN-01 certificates), and
 * the ordering node lets its child ask the CA only once every live node
 * serves the change that carried them, since the CA may reach any node
 * (so a node without `acme on` reads them too). With SQLite nothing here
 * runs.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "master/acmeint.h"
#include "master/cluster.h"
#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/store.h"
#include "share/log.h"
#include "share/util.h"

_Static_assert(STORE_CHAL_TOKEN_MAX == MSG_A_TOKEN_MAX, "a stored token fits a message's");
_Static_assert(STORE_CHAL_KEYAUTH_MAX == SNAP_CHAL_KEYAUTH_MAX, "a stored answer fits the snapshot");
_Static_assert(STORE_CHAL_PEM_MAX == MSG_A_ALPN_CERT_MAX, "a stored certificate fits a message's");

static int
shared(const struct acme_peer *a)
{
	return a != NULL && store_shared(a->m->store);
}

int
acmeshare_put(struct acme_peer *a, const char *host, const char *token, const char *keyauth,
    const char *cert, const char *key)
{
	struct store_chal c = { token, host, keyauth, cert, key, a->lease.holder };
	int64_t until = (int64_t)time(NULL) + ACME_ORDER_DEADLINE_MS / 1000;
	int rc;

	if (!shared(a))
		return 0;
	if ((rc = store_chal_put(a->m->store, a->lease.name, a->lease.token, &c, until)) ==
	    STORE_OK)
		return 0;
	/* The order goes on: the CA may still reach this node, which serves the answer. */
	log_warnx("acme %s: the other nodes cannot serve the challenge: %s", host,
	    rc == STORE_ENOENT ? "the order's lease was taken over" : "not saved in the store");
	return -1;
}

void
acmeshare_clear(struct acme_peer *a)
{
	if (shared(a) && store_chal_clear(a->m->store, a->lease.holder, (int64_t)time(NULL)) !=
	    STORE_OK)
		log_warnx("acme: cannot delete this node's challenges from the store; they expire");
}

static int
same_alpn(const struct acme_alpn_cert *o, const struct store_chal *c)
{
	return o->cert != NULL && strcmp(o->host, c->host) == 0 && strcmp(o->cert, c->cert) == 0 &&
	    strcmp(o->key, c->key) == 0;
}

static void
ralpn_free(struct acme_alpn_cert *c)
{
	if (c->key != NULL)
		OPENSSL_cleanse(c->key, strlen(c->key));
	free(c->key);
	free(c->cert);
	memset(c, 0, sizeof(*c));
}

struct load {
	struct acmeshare *s;
	uint32_t nchals, nalpn;
	int alpn_changed;
};

static int
load_row(void *arg, const struct store_chal *c)
{
	struct load *ld = arg;
	struct acmeshare *s = ld->s;
	struct acme_alpn_cert *r;

	/* Ours are in memory already (acmemaster.c). */
	if (strcmp(c->holder, s->node) == 0)
		return 0;
	if (c->cert[0] == '\0') {
		if (ld->nchals == SNAP_CHAL_MAX)
			return 0;
		util_strlcpy(s->chals[ld->nchals].token, c->token, sizeof(s->chals[0].token));
		util_strlcpy(s->chals[ld->nchals].keyauth, c->keyauth,
		    sizeof(s->chals[0].keyauth));
		ld->nchals++;
		return 0;
	}
	if (ld->nalpn == ACME_NAMES_MAX)
		return 0;
	r = &s->alpn[ld->nalpn];
	if (ld->nalpn >= s->nalpn || !same_alpn(r, c)) {
		ralpn_free(r);
		util_strlcpy(r->host, c->host, sizeof(r->host));
		if ((r->cert = strdup(c->cert)) == NULL || (r->key = strdup(c->key)) == NULL) {
			ralpn_free(r);
			return -1;
		}
		ld->alpn_changed = 1;
	}
	ld->nalpn++;
	return 0;
}

/* The context, made at the first build of a shared store: NULL (logged) when it cannot be. */
static struct acmeshare *
share_get(struct master *m)
{
	struct acmeshare *s;

	if (m->acmeshare != NULL || !store_shared(m->store))
		return m->acmeshare;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("acme: cannot serve the other nodes' challenges");
		return NULL;
	}
	/* The name a lease holder writes (acme_init): the rows this node wrote are its own. */
	if (store_node_name(m->cfg.store, s->node, sizeof(s->node)) == -1) {
		free(s);
		return NULL;
	}
	return m->acmeshare = s;
}

void
acmeshare_load(struct master *m)
{
	struct acmeshare *s = share_get(m);
	struct load ld = { s, 0, 0, 0 };
	uint32_t i, j;

	if (s == NULL)
		return;
	if (store_chal_foreach(m->store, (int64_t)time(NULL), load_row, &ld) != 0) {
		log_warnx("acme: cannot read the other nodes' challenges; serving the last ones read");
		ld.nchals = s->nchals > ld.nchals ? s->nchals : ld.nchals;
		ld.nalpn = s->nalpn > ld.nalpn ? s->nalpn : ld.nalpn;
	}
	for (i = ld.nalpn; i < s->nalpn; i++) {
		ralpn_free(&s->alpn[i]);
		ld.alpn_changed = 1;
	}
	/* A row whose copy failed left a hole: the keyring wants them dense. */
	for (i = j = 0; i < ld.nalpn; i++)
		if (s->alpn[i].cert != NULL && j++ != i) {
			s->alpn[j - 1] = s->alpn[i];
			memset(&s->alpn[i], 0, sizeof(s->alpn[i]));
		}
	ld.nalpn = j;
	s->nchals = ld.nchals;
	s->nalpn = ld.nalpn;
	if (ld.alpn_changed)
		mkeyring_changed(m);
}

void
acmeshare_free(struct master *m)
{
	struct acmeshare *s = m->acmeshare;

	if (s == NULL)
		return;
	while (s->nalpn > 0)
		ralpn_free(&s->alpn[--s->nalpn]);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	m->acmeshare = NULL;
}

/* The wait's bound passed: say who does not serve it and let the child go on. */
static void
wait_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct acme_peer *a = t->arg;
	char nodes[512];

	(void)l;
	if (!a->run.waiting)
		return;
	a->nodes->lagging(a->m, a->run.chal_change, nodes, sizeof(nodes));
	log_warnx("acme %s: node(s) %s do not serve the challenge after %u s; asking the CA "
	    "anyway", a->run.names[0], nodes[0] != '\0' ? nodes : "(none left)",
	    a->chal_wait_ms / 1000);
	a->run.chal_late = 1;
	acme_publish_check(a->m);
}

const struct acmeshare_nodes acmeshare_cluster = { cluster_want, cluster_served,
    cluster_lagging };

void
acmeshare_init(struct acme_peer *a, const struct acmeshare_nodes *nodes, uint32_t wait_ms)
{
	a->nodes = nodes;
	a->chal_wait_ms = wait_ms;
	ev_timer_init(&a->chal_wait, wait_fire, a);
}

void
acmeshare_wait(struct acme_peer *a)
{
	a->run.chal_change = a->nodes->want(a->m);
	a->run.chal_late = 0;
	if (a->run.chal_change > 0)
		ev_timer_start(a->m->loop, &a->chal_wait, a->chal_wait_ms);
}

int
acmeshare_served(struct acme_peer *a)
{
	if (a->run.chal_change <= 0)
		return 1;
	if (!a->run.chal_late && !a->nodes->served(a->m, a->run.chal_change))
		return 0;
	ev_timer_stop(a->m->loop, &a->chal_wait);
	if (!a->run.chal_late)
		log_info("acme %s: every live node serves the challenge (change %lld)",
		    a->run.names[0], (long long)a->run.chal_change);
	return 1;
}
