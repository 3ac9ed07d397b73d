/*
 * Generations. The store is compiled into a sealed snapshot memfd; the
 * master keeps only the current one (respawned workers get it). A change
 * builds at once when every worker serves the current generation; changes
 * made while a generation is still being acked wait and share the next
 * build, so builds never outpace the workers and a burst costs one build.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/acmemaster.h"
#include "master/cluster.h"
#include "master/keyringbuild.h"
#include "master/control.h"
#include "master/dnsmaster.h"
#include "master/dnsname.h"
#include "master/master.h"
#include "master/notify.h"
#include "master/publish.h"
#include "master/rtable.h"
#include "master/tunnels.h"
#include "master/snapbuild.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/addr.h"
#include "share/beaddr.h"
#include "share/hostname.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/util.h"

/* The builder's input, grown while walking the store. */
struct build {
	struct snapb_route *routes;
	struct snapb_host *hosts;
	struct snapb_backend *backends;
	char **names;		/* owned copies of every name */
	uint32_t nroutes, nhosts, nbackends, nnames;
	uint32_t caproutes, caphosts, capbackends, capnames;
	int failed;
	struct master *m;	/* for the certificate of each host, the names' addresses */
	uint32_t *certs;	/* certs[i]: store id of the certificate of hosts[i], 0 = default */
	uint32_t capcerts;
	uint32_t shard;		/* the image being built (share/snap.h) */
};

#define GROW(b, arr, n, cap) do {						\
	if ((b)->n == (b)->cap) {						\
		uint32_t nc = (b)->cap ? (b)->cap * 2 : 64;			\
		void *np = realloc((b)->arr, (size_t)nc * sizeof(*(b)->arr));	\
		if (np == NULL) { (b)->failed = 1; return -1; }			\
		(b)->arr = np;							\
		(b)->cap = nc;							\
	}									\
} while (0)

static const char *
build_name(struct build *b, const char *s)
{
	char *d;

	if (b->nnames == b->capnames) {
		uint32_t nc = b->capnames ? b->capnames * 2 : 128;
		char **np = realloc(b->names, (size_t)nc * sizeof(*np));
		if (np == NULL)
			return NULL;
		b->names = np;
		b->capnames = nc;
	}
	if ((d = strdup(s)) == NULL)
		return NULL;
	b->names[b->nnames++] = d;
	return d;
}

/* A host of route (an index) or, route SNAP_NONE, of the route named target in another image. */
static int
build_host(struct build *b, int64_t id, const char *name, uint32_t route, int alias,
    const char *target)
{
	const char *n, *t = NULL;

	GROW(b, hosts, nhosts, caphosts);
	if ((n = build_name(b, name)) == NULL ||
	    (target != NULL && (t = build_name(b, target)) == NULL)) {
		b->failed = 1;
		return -1;
	}
	GROW(b, certs, nhosts, capcerts);
	b->certs[b->nhosts] = mkeyring_cert_for(b->m, n, t != NULL ? t : b->routes[route].name);
	b->hosts[b->nhosts++] = (struct snapb_host){ (uint32_t)id, n, route,
	    hostname_is_wildcard(name) ? SNAP_HOST_WILDCARD : alias ? SNAP_HOST_ALIAS :
	    SNAP_HOST_EXACT, t };
	return 0;
}

/* 1 when name falls in the shard being built. */
static int
build_mine(const struct build *b, const char *name)
{
	return snap_shard_of(name, strlen(name), SNAP_SHARDS) == b->shard;
}

/* A route of another image: only its aliases that fall here, pointing at it by name. */
static int
build_remote_aliases(struct build *b, const struct store_route *r)
{
	size_t i;

	for (i = 0; i < r->naliases; i++) {
		if (!build_mine(b, r->aliases[i]))
			continue;
		/* haloyd-ctl gives a prefix route no aliases; a target is a host name. */
		if (strchr(r->name, '/') != NULL) {
			log_warnx("route %s: alias %s of a path-prefix route left out", r->name,
			    r->aliases[i]);
			continue;
		}
		if (build_host(b, r->alias_ids[i], r->aliases[i], SNAP_NONE, 1, r->name) == -1)
			return -1;
	}
	return 0;
}

/* A DNS name: an entry per address of its last good answer, or one unresolved entry. */
static int
build_backend_name(struct build *b, int64_t id, const struct beaddr *ba)
{
	struct snapb_backend tmp[DNSNAME_ADDRS_MAX];
	const char *name;
	size_t i, n;

	if ((name = build_name(b, ba->name)) == NULL) {
		b->failed = 1;
		return -1;
	}
	n = dnsmaster_entries(b->m, (uint32_t)id, name, ba->port, tmp, DNSNAME_ADDRS_MAX);
	for (i = 0; i < n; i++) {
		GROW(b, backends, nbackends, capbackends);
		b->backends[b->nbackends++] = tmp[i];
	}
	return 0;
}

static int
build_backend(struct build *b, int64_t id, const char *addr)
{
	struct snapb_backend *be;
	struct beaddr ba;
	char err[300];

	if (beaddr_parse(addr, &ba, err, sizeof(err)) == -1) {
		log_warnx("store holds a bad backend (%s); skipped", err);
		return 0;
	}
	if (ba.kind == BEADDR_NAME)
		return build_backend_name(b, id, &ba);
	GROW(b, backends, nbackends, capbackends);
	be = &b->backends[b->nbackends++];
	memset(be, 0, sizeof(*be));
	be->id = (uint32_t)id;
	if (ba.kind != BEADDR_IP) {
		be->family = ba.kind == BEADDR_UNIX ? AF_UNIX : AF_UNSPEC;
		be->flags = ba.kind == BEADDR_TUNNEL ? SNAP_BACKEND_TUNNEL : 0;
		if ((be->name = build_name(b, ba.name)) == NULL) {
			b->failed = 1;
			return -1;
		}
		return 0;
	}
	be->family = ba.ss.ss_family;
	if (ba.ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ba.ss;
		be->port = ntohs(sin->sin_port);
		memcpy(be->addr, &sin->sin_addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ba.ss;
		be->port = ntohs(sin6->sin6_port);
		memcpy(be->addr, &sin6->sin6_addr, 16);
	}
	return 0;
}

/* A store timeout as the snapshot's u32: 0 there means haloyd.conf's value. */
static uint32_t
build_ms(int64_t v)
{
	if (v <= 0)
		return 0;
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The route's own settings; the store's checks and the master's ranges hold. */
static void
build_settings(struct snapb_route *sr, const struct store_settings *set)
{
	sr->connect_ms = build_ms(set->connect_ms);
	sr->response_ms = build_ms(set->response_ms);
	sr->idle_ms = build_ms(set->idle_ms);
	sr->upgrade_ms = build_ms(set->upgrade_ms);
	/* 0 in the snapshot is "the global limit": a route's "no limit" is the largest one. */
	if (set->max_body == STORE_DEFAULT)
		sr->max_body = 0;
	else if (set->max_body == 0)
		sr->max_body = UINT64_MAX;
	else
		sr->max_body = (uint64_t)set->max_body;
	sr->flags = (uint16_t)(set->flags & SNAP_ROUTE_FLAGS_ALL);
	sr->proto = set->proto;
	/* 0 in the snapshot is "haloyd.conf's rate_limit"; the store's 0 is "off". */
	sr->rate_rpm = set->rate_rpm == STORE_DEFAULT ? 0 : set->rate_rpm == 0 ? SNAP_RATE_OFF :
	    (uint32_t)set->rate_rpm;
	sr->rate_burst = set->rate_burst == STORE_DEFAULT ? 0 : (uint32_t)set->rate_burst;
	sr->backend_pp = set->backend_pp;
	sr->cache_max_object = set->cache_max_object == STORE_DEFAULT ? 0 :
	    (uint64_t)set->cache_max_object;
}

/* The route's backend TLS strings, copied: r is only valid during the callback. */
static int
build_backend_tls(struct build *b, struct snapb_route *sr, const struct store_settings *set)
{
	if (set->backend_sni != NULL && (sr->backend_sni = build_name(b, set->backend_sni)) == NULL)
		return -1;
	if (set->backend_ca != NULL && (sr->backend_ca = build_name(b, set->backend_ca)) == NULL)
		return -1;
	/* Active checks: the built-in interval 5s, timeout 2s, rise 2, fall 3 where unset. */
	if (set->health_path != NULL) {
		if ((sr->health_path = build_name(b, set->health_path)) == NULL)
			return -1;
		sr->health_interval_ms = set->health_interval_ms > 0 ?
		    (uint32_t)set->health_interval_ms : 5000;
		sr->health_timeout_ms = set->health_timeout_ms > 0 ?
		    (uint32_t)set->health_timeout_ms : 2000;
		sr->health_rise = set->health_rise > 0 ? (uint16_t)set->health_rise : 2;
		sr->health_fall = set->health_fall > 0 ? (uint16_t)set->health_fall : 3;
	}
	return 0;
}

static int
build_route(void *arg, const struct store_route *r)
{
	struct build *b = arg;
	struct snapb_route *sr;
	uint32_t idx = b->nroutes;
	size_t i;

	if (!build_mine(b, r->name))
		return build_remote_aliases(b, r);
	GROW(b, routes, nroutes, caproutes);
	sr = &b->routes[b->nroutes++];
	memset(sr, 0, sizeof(*sr));
	sr->id = (uint32_t)r->id;
	sr->be_first = b->nbackends;
	build_settings(sr, &r->set);
	/* A prefix route ("host/api") has no host entry: its host route leads to it. */
	if ((sr->name = build_name(b, r->name)) == NULL || build_backend_tls(b, sr, &r->set) == -1 ||
	    (strchr(r->name, '/') == NULL && build_host(b, r->name_id, r->name, idx, 0, NULL) == -1))
		goto fail;
	/* Its aliases of other shards are built with those shards' images. */
	for (i = 0; i < r->naliases; i++)
		if (build_mine(b, r->aliases[i]) &&
		    build_host(b, r->alias_ids[i], r->aliases[i], idx, 1, NULL) == -1)
			goto fail;
	for (i = 0; i < r->nbackends; i++)
		if (build_backend(b, r->backend_ids[i], r->backends[i]) == -1)
			goto fail;
	b->routes[idx].be_count = b->nbackends - b->routes[idx].be_first;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

static void
build_free(struct build *b)
{
	uint32_t i;

	for (i = 0; i < b->nnames; i++)
		free(b->names[i]);
	free(b->names);
	free(b->routes);
	free(b->hosts);
	free(b->certs);
	free(b->backends);
}

/* FNV-1a over s and its NUL. */
static uint64_t
build_fnv(uint64_t h, const char *s)
{
	do
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	while (*s++ != '\0');
	return h;
}

/* Of the challenges image 0 carries: a change of them rebuilds it. */
static uint64_t
build_chal_hash(const struct snapb_chal *c, uint32_t n)
{
	uint64_t h = 14695981039346656037ull;
	uint32_t i;

	for (i = 0; i < n; i++)
		h = build_fnv(build_fnv(h, c[i].token), c[i].keyauth);
	return h ^ n;
}

/* Shard k's image of generation gen into *fd; its routes, hosts and backends added to counts. */
static int
build_shard(struct master *m, uint32_t k, uint64_t gen, const struct snapb_chal *chals,
    uint32_t nchals, int *fd, uint32_t counts[3])
{
	struct build b;
	struct snapb_input in;
	char err[256];
	int rc = -1;

	memset(&b, 0, sizeof(b));
	b.m = m;
	b.shard = k;
	dnsmaster_shard_begin(m, k);
	if (rtable_foreach_shard(&m->rt, k, build_route, &b) != 0 || b.failed) {
		log_warnx("cannot lay out shard %u of generation %llu", k, (unsigned long long)gen);
		goto out;
	}
	memset(&in, 0, sizeof(in));
	in.routes = b.routes;
	in.nroutes = b.nroutes;
	in.hosts = b.hosts;
	in.nhosts = b.nhosts;
	in.host_certs = b.certs;
	in.backends = b.backends;
	in.nbackends = b.nbackends;
	in.default_route = SNAP_NONE;
	if (k == 0) {
		in.chals = chals;
		in.nchals = nchals;
	}
	in.generation = gen;
	in.built_at = util_wall_ns();
	in.shard = (uint16_t)k;
	in.nshards = SNAP_SHARDS;
	if (snapb_build(&in, fd, err, sizeof(err)) == -1) {
		log_warnx("cannot build shard %u of generation %llu: %s", k,
		    (unsigned long long)gen, err);
		goto out;
	}
	counts[0] += b.nroutes;
	counts[1] += b.nhosts;
	counts[2] += b.nbackends;
	rc = 0;
out:
	build_free(&b);
	return rc;
}

#define CERT_RECHECK_MAX_MS (3600 * 1000)	/* the timer's longest sleep: clocks step */

static void publish_schedule(struct master *m);

/*
 * A certificate that becomes valid or expires changes which one covers a
 * host, with no change of anyone's to build for: a full build at that time
 * (build_dirty) looks at every host again. built_at: when the last full
 * build began choosing.
 */
static void
cert_timer_arm(struct master *m, int64_t built_at)
{
	int64_t now = (int64_t)time(NULL), ms;

	m->cert_recheck = mkeyring_next_change(m, built_at);
	ev_timer_stop(m->loop, &m->cert_timer);
	if (m->cert_recheck == 0)
		return;
	ms = m->cert_recheck > now ? (m->cert_recheck - now) * 1000 : 0;
	ev_timer_start(m->loop, &m->cert_timer, (uint64_t)(ms < CERT_RECHECK_MAX_MS ? ms :
	    CERT_RECHECK_MAX_MS));
}

static void
cert_timer_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;
	int64_t now = (int64_t)time(NULL), ms;

	(void)l;
	if (now < m->cert_recheck) {	/* woken early by the cap: sleep on */
		ms = (m->cert_recheck - now) * 1000;
		ev_timer_start(m->loop, &m->cert_timer, (uint64_t)(ms < CERT_RECHECK_MAX_MS ? ms :
		    CERT_RECHECK_MAX_MS));
		return;
	}
	log_info("a certificate became valid or expired: every host's is chosen again");
	m->build_pending = 1;
	publish_schedule(m);
}

/*
 * What the new generation must build again: the shards of the routes the
 * master changed (all of them after a full read), image 0 for new
 * challenges, everything when the certificates changed (a host's may have).
 */
static uint64_t
build_dirty(struct master *m, uint64_t chal_hash)
{
	uint64_t dirty = m->snap_dirty | rtable_take_changed(&m->rt);

	if (mkeyring_index_generation(m) != m->snap_cert_index ||
	    (m->cert_recheck != 0 && (int64_t)time(NULL) >= m->cert_recheck))
		dirty = PUBLISH_ALL_SHARDS;
	if (chal_hash != m->snap_chal_hash)
		dirty |= 1;
	return dirty;
}

int
publish_build(struct master *m)
{
	const struct snapb_chal *chals;
	uint32_t nchals, k, counts[3] = { 0, 0, 0 }, nbuilt = 0;
	int fds[SNAP_SHARDS];
	uint64_t gen, dirty, chal_hash;
	int64_t started;
	int rc = -1;

	for (k = 0; k < SNAP_SHARDS; k++)
		fds[k] = -1;
	started = (int64_t)time(NULL);	/* every host's certificate is chosen at or after it */
	m->build_pending = 0;
	cluster_build_begin(m);
	/* After the change number: a build that claims change N serves N's challenges. */
	acmeshare_load(m);
	/* The routes come from memory: only those changed since the last build are read. */
	if (rtable_sync(&m->rt, m->store) != 0) {
		log_warnx("cannot read the routes from the store; keeping generation %u", m->gen);
		m->snap_dirty |= rtable_take_changed(&m->rt);
		goto out;
	}
	acme_snap_chals(m, &chals, &nchals);
	chal_hash = build_chal_hash(chals, nchals);
	/* Kept until the images are in: a failed build tries them all again. */
	m->snap_dirty = dirty = build_dirty(m, chal_hash);
	if (store_next_generation(m->store, &gen) != STORE_OK)
		goto out;
	for (k = 0; k < SNAP_SHARDS; k++)
		if ((dirty >> k) & 1) {
			if (build_shard(m, k, gen, chals, nchals, &fds[k], counts) == -1)
				goto out;
			nbuilt++;
		}
	/* Its keyring goes out first: a generation never reaches workers without it. */
	if (mkeyring_prepare(m, gen) == -1)
		goto out;
	for (k = 0; k < SNAP_SHARDS; k++)
		if (fds[k] >= 0) {
			if (m->snap_fds[k] >= 0)
				close(m->snap_fds[k]);
			m->snap_fds[k] = fds[k];
			m->snap_gens[k] = (uint32_t)gen;
			fds[k] = -1;
		}
	m->snap_dirty = 0;
	m->snap_chal_hash = chal_hash;
	m->snap_cert_index = mkeyring_index_generation(m);
	m->gen = (uint32_t)gen;
	m->nroutes = (uint32_t)m->rt.n;
	cluster_build_done(m);
	log_info("generation %u built: %u routes, %u hosts, %u backends in %u of %u shards",
	    m->gen, counts[0], counts[1], counts[2], nbuilt, SNAP_SHARDS);
	workers_send_snapshot(m);
	tunnels_send_keyring(m);
	dnsmaster_built(m);
	if (dirty == PUBLISH_ALL_SHARDS)
		cert_timer_arm(m, started);
	rc = 0;
out:
	for (k = 0; k < SNAP_SHARDS; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	return rc;
}

void
publish_invalidate(struct master *m)
{
	m->snap_dirty = PUBLISH_ALL_SHARDS;
}

int
publish_map(const struct master *m, struct snap **out, char *err, size_t errlen)
{
	struct snap *s;
	uint32_t k;

	*out = NULL;
	if (m->gen == 0 || m->snap_fds[0] < 0)
		return 0;
	if ((s = snap_set_new(NULL, err, errlen)) == NULL)
		return -1;
	for (k = 0; k < SNAP_SHARDS; k++)
		if (snap_set_add(s, m->snap_fds[k], err, errlen) == -1) {
			snap_unref(s);
			return -1;
		}
	if (snap_set_finish(s, m->gen, err, errlen) == -1) {
		snap_unref(s);
		return -1;
	}
	*out = s;
	return 0;
}

void
publish_close(struct master *m)
{
	uint32_t k;

	for (k = 0; k < SNAP_SHARDS; k++)
		if (m->snap_fds[k] >= 0) {
			close(m->snap_fds[k]);
			m->snap_fds[k] = -1;
		}
}

static void
build_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;

	(void)l;
	if (publish_build(m) == -1)
		control_fail_waiters(m, "cannot build the new generation (see the log)");
	publish_check(m);
}

/* 1 while a live worker has not acked the generation sent to it. */
static int
publish_lagging(const struct master *m)
{
	size_t i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].proc.ready && m->workers[i].acked_gen < m->workers[i].sent_gen)
			return 1;
	return 0;
}

/* Starts the pending build from the loop once the workers caught up. */
static void
publish_schedule(struct master *m)
{
	if (m->build_pending && !publish_lagging(m) && !ev_timer_armed(&m->build_timer))
		ev_timer_start(m->loop, &m->build_timer, 0);
}

uint32_t
publish_changed(struct master *m)
{
	cluster_changed(m);
	m->build_pending = 1;
	publish_schedule(m);
	return m->gen + 1;
}

void
publish_remote_changed(struct master *m)
{
	rtable_invalidate(&m->rt);
	m->build_pending = 1;
	publish_schedule(m);
	acme_remote_changed(m);
}

int
publish_served(const struct master *m, uint32_t gen)
{
	size_t i;

	if (m->gen < gen)
		return 0;
	for (i = 0; i < m->nworkers; i++) {
		const struct mworker *w = &m->workers[i];
		if (w->proc.ready && w->acked_gen < gen)
			return 0;
	}
	return 1;
}

/* Respawns workers that sit on an unacked generation for too long. */
static void
barrier_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;
	size_t i;

	for (i = 0; i < m->nworkers; i++) {
		struct mworker *w = &m->workers[i];
		if (w->proc.ready && w->acked_gen < w->sent_gen &&
		    ev_now(l) - w->sent_ms > m->ack_grace_ms)
			proc_kill(&w->proc, "did not ack its snapshot in time");
	}
	publish_check(m);
}

void
publish_sent(struct master *m)
{
	/* Also for a worker's first snapshot, which no ack of another worker would police. */
	if (!ev_timer_armed(&m->barrier_timer))
		ev_timer_start(m->loop, &m->barrier_timer, m->ack_grace_ms / 3);
}

void
publish_check(struct master *m)
{
	size_t i;

	cluster_check(m);
	control_release_waiters(m);
	acme_publish_check(m);
	if (!m->ready_notified && m->gen > 0 && publish_served(m, m->gen) &&
	    workers_running(m) == m->nworkers && tunnels_started(m)) {
		for (i = 0; i < m->nworkers; i++)
			if (!m->workers[i].proc.ready)
				return;
		m->ready_notified = 1;
		notify_ready(m);
	}
	if (publish_lagging(m) && !ev_timer_armed(&m->barrier_timer))
		ev_timer_start(m->loop, &m->barrier_timer, m->ack_grace_ms / 3);
	publish_schedule(m);
}

void
publish_init(struct master *m)
{
	uint32_t k;

	for (k = 0; k < SNAP_SHARDS; k++)
		m->snap_fds[k] = -1;
	m->snap_dirty = PUBLISH_ALL_SHARDS;
	rtable_init(&m->rt);
	m->ack_grace_ms = PUBLISH_ACK_GRACE_MS;
	ev_timer_init(&m->build_timer, build_fire, m);
	ev_timer_init(&m->barrier_timer, barrier_fire, m);
	ev_timer_init(&m->cert_timer, cert_timer_fire, m);
}
