/*
 * Several nodes on one PostgreSQL store: numbering changes, telling the
 * other nodes (NOTIFY "c N NODE"), rebuilding when another node changed
 * something, reporting what this node serves (its heartbeat row and
 * NOTIFY "s N NODE"), knowing what the others serve (their rows, re-read
 * every beat, and their "s" notices), and reconnecting with back-off.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "master/acmemaster.h"
#include "master/cluster.h"
#include "master/control.h"
#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/store.h"
#include "share/log.h"
#include "share/util.h"

struct cluster {
	struct master *m;
	char name[STORE_NODE_NAME_MAX + 1];
	char addr[STORE_NODE_ADDR_MAX + 1];
	struct ev_io io;
	struct ev_timer beat, retry;
	uint64_t backoff_ms;
	int down;
	int connecting;		/* a non-blocking attempt is under way (retry: its deadline) */
	int64_t want;		/* our last change */
	int64_t building;	/* the change number read before the build in progress */
	int64_t built;		/* ... before the build of generation built_gen */
	int64_t table;		/* every change up to it is in the route table (master/rtable.h) */
	uint32_t built_gen;
	int64_t served;		/* reported in our row */
	struct cluster_node nodes[CLUSTER_NODES_MAX];
	size_t nnodes;
};

static void cluster_lost(struct cluster *c);

static struct cluster_node *
node_find(struct cluster *c, const char *name, int add)
{
	size_t i;

	for (i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return &c->nodes[i];
	if (!add || c->nnodes == CLUSTER_NODES_MAX)
		return NULL;
	memset(&c->nodes[c->nnodes], 0, sizeof(c->nodes[0]));
	util_strlcpy(c->nodes[c->nnodes].name, name, sizeof(c->nodes[0].name));
	return &c->nodes[c->nnodes++];
}

static int
node_load(void *arg, const char *name, const char *addr, int64_t served, int64_t seen)
{
	struct cluster_node *n;

	if (name != NULL && (n = node_find(arg, name, 1)) != NULL) {
		util_strlcpy(n->addr, addr != NULL ? addr : "", sizeof(n->addr));
		n->served = served;
		n->seen = seen;
	}
	return 0;
}

/* Another node changed the store: certificates and routes are read again. */
static void
remote_changed(struct cluster *c)
{
	if (mkeyring_reload(c->m) == -1)
		log_warnx("cluster: cannot re-read the certificates");
	publish_remote_changed(c->m);
}

static void
notice(struct cluster *c, const char *payload)
{
	char kind, name[STORE_NODE_NAME_MAX + 1];
	long long n;
	struct cluster_node *nd;

	if (sscanf(payload, "%c %lld %64s", &kind, &n, name) != 3 || strcmp(name, c->name) == 0)
		return;
	if (kind == 'c' && n > c->built && n > c->building)
		remote_changed(c);
	else if (kind == 's' && (nd = node_find(c, name, 1)) != NULL) {
		nd->served = n > nd->served ? n : nd->served;
		nd->seen = time(NULL);
		control_release_waiters(c->m);
		acme_publish_check(c->m);
	}
}

/* Notifications also arrive during our own queries: libpq queues them; read them all. */
static void
drain(struct cluster *c)
{
	char buf[256];
	int r;

	while (!c->down && (r = store_notice_next(c->m->store, buf, sizeof(buf))) != 0) {
		if (r == -1) {
			cluster_lost(c);
			return;
		}
		notice(c, buf);
	}
}

static void
io_fire(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	(void)l;
	(void)events;
	drain(io->arg);
}

static void
say(struct cluster *c, char kind, int64_t n)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%c %lld %s", kind, (long long)n, c->name);
	if (store_notice_send(c->m->store, buf) != STORE_OK)
		log_warnx("cluster: cannot notify the other nodes");
}

static void
beat_now(struct cluster *c)
{
	if (c->down)
		return;
	if (store_node_beat(c->m->store, c->name, c->addr, c->served, time(NULL)) != STORE_OK ||
	    store_node_foreach(c->m->store, node_load, c) != STORE_OK) {
		if (store_notice_fd(c->m->store) == -1)
			cluster_lost(c);
		return;
	}
	drain(c);
	control_release_waiters(c->m);
	acme_publish_check(c->m);
}

static void
beat_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct cluster *c = t->arg;

	ev_timer_start(l, t, CLUSTER_BEAT_MS);
	if (!c->down && store_notice_fd(c->m->store) == -1)
		cluster_lost(c);
	beat_now(c);
}

static int
connected(struct cluster *c)
{
	int fd;

	if (store_notice_listen(c->m->store) != STORE_OK || (fd = store_notice_fd(c->m->store)) < 0 ||
	    ev_io_start(c->m->loop, &c->io, fd, EPOLLIN, io_fire, c) == -1) {
		log_warnx("cluster: cannot listen for the other nodes' changes");
		return -1;
	}
	c->down = 0;
	c->backoff_ms = CLUSTER_RETRY_MIN_MS;
	return 0;
}

static void
cluster_lost(struct cluster *c)
{
	if (c->down)
		return;
	c->down = 1;
	ev_io_stop(c->m->loop, &c->io);
	log_warnx("cluster: the store is unreachable; serving generation %u until it is back",
	    c->m->gen);
	if (!ev_timer_armed(&c->retry))
		ev_timer_start(c->m->loop, &c->retry, c->backoff_ms);
}

static void
retry_later(struct cluster *c)
{
	ev_io_stop(c->m->loop, &c->io);
	c->connecting = 0;
	c->backoff_ms = c->backoff_ms * 2 > CLUSTER_RETRY_MAX_MS ? CLUSTER_RETRY_MAX_MS :
	    c->backoff_ms * 2;
	ev_timer_start(c->m->loop, &c->retry, c->backoff_ms);
}

static void reconnect_io(struct ev_loop *l, struct ev_io *io, uint32_t events);

/* One step of the connection attempt (store_reconnect's answer r). */
static void
reconnect_step(struct cluster *c, int r, int fd, int wr)
{
	if (r == 0) {
		if (ev_io_start(c->m->loop, &c->io, fd, wr ? EPOLLOUT : EPOLLIN, reconnect_io, c) == -1)
			retry_later(c);
		return;
	}
	ev_timer_stop(c->m->loop, &c->retry);
	c->connecting = 0;
	/* Back: what other nodes changed meanwhile is read again, as is everything. */
	if (r == 1 && connected(c) == 0) {
		log_info("cluster: the store is reachable again; re-reading it");
		remote_changed(c);
		beat_now(c);
		return;
	}
	retry_later(c);
}

static void
reconnect_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct cluster *c = io->arg;
	int fd = -1, wr = 0, r;

	(void)events;
	/* libpq may change sockets between steps: watch again from scratch each time. */
	ev_io_stop(l, io);
	r = store_reconnect(c->m->store, 0, &fd, &wr);
	reconnect_step(c, r, fd, wr);
}

/* Starts an attempt, or gives up on one that took longer than CLUSTER_CONNECT_MS. */
static void
retry_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct cluster *c = t->arg;
	int fd = -1, wr = 0, r;

	if (c->connecting) {
		log_debug("cluster: connecting to the store takes too long; retrying later");
		retry_later(c);
		return;
	}
	c->connecting = 1;
	ev_timer_start(l, t, CLUSTER_CONNECT_MS);
	r = store_reconnect(c->m->store, 1, &fd, &wr);
	reconnect_step(c, r, fd, wr);
}

int
cluster_init(struct master *m)
{
	struct cluster *c;

	if (!store_shared(m->store))
		return 0;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("cluster: calloc");
		return -1;
	}
	c->m = m;
	c->backoff_ms = CLUSTER_RETRY_MIN_MS;
	if (m->cfg.listen_http.n > 0)
		util_strlcpy(c->addr, m->cfg.listen_http.v[0], sizeof(c->addr));
	ev_timer_init(&c->beat, beat_fire, c);
	ev_timer_init(&c->retry, retry_fire, c);
	m->cluster = c;
	if (store_node_name(m->cfg.store, c->name, sizeof(c->name)) == -1 || connected(c) == -1)
		return -1;
	/* Our row from the start: a change made elsewhere meanwhile waits for our first build. */
	beat_now(c);
	ev_timer_start(m->loop, &c->beat, CLUSTER_BEAT_MS);
	log_info("cluster: node %s on the shared PostgreSQL store", c->name);
	return 0;
}

void
cluster_free(struct master *m)
{
	struct cluster *c = m->cluster;

	if (c == NULL)
		return;
	/* Stopped, we are not waited for: seen 0 is never live. */
	if (!c->down)
		store_node_beat(m->store, c->name, c->addr, c->served, 0);
	ev_io_stop(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->beat);
	ev_timer_stop(m->loop, &c->retry);
	free(c);
	m->cluster = NULL;
}

void
cluster_changed(struct master *m)
{
	struct cluster *c = m->cluster;
	int64_t n;

	if (c == NULL || c->down)
		return;
	if (store_changes_bump(m->store, &n) != STORE_OK) {
		log_warnx("cluster: cannot number the change; the other nodes see it at their "
		    "next change or reconnection");
		return;
	}
	c->want = n;
	/* Ours and next in line: the table holds it (touched); after a gap, another node's. */
	if (n == c->table + 1)
		c->table = n;
	say(c, 'c', n);
	/* The nodes to wait for: also one that joined since the last beat. */
	if (store_node_foreach(m->store, node_load, c) != STORE_OK)
		log_warnx("cluster: cannot read the node table");
}

int64_t
cluster_want(const struct master *m)
{
	return m->cluster != NULL ? m->cluster->want : 0;
}

void
cluster_build_begin(struct master *m)
{
	struct cluster *c = m->cluster;

	if (c == NULL)
		return;
	/* Down, the build fails anyway; what it read is then unknown, so claim nothing new. */
	if (c->down || store_changes_get(m->store, &c->building) != STORE_OK)
		c->building = c->built;
	/*
	 * A change of another node numbered up to what this build claims, whose
	 * notice has not come yet: the table would miss it, so read every route.
	 */
	if (c->building > c->table)
		rtable_invalidate(&m->rt);
}

void
cluster_build_done(struct master *m)
{
	struct cluster *c = m->cluster;

	if (c == NULL)
		return;
	c->built = c->building;
	c->built_gen = m->gen;
	if (c->building > c->table)
		c->table = c->building;
}

void
cluster_check(struct master *m)
{
	struct cluster *c = m->cluster;

	if (c == NULL || c->down)
		return;
	if (c->served < c->built && publish_served(m, c->built_gen)) {
		c->served = c->built;
		if (store_node_beat(m->store, c->name, c->addr, c->served, time(NULL)) == STORE_OK)
			say(c, 's', c->served);
	}
	drain(c);
}

int
cluster_served(const struct master *m, int64_t n)
{
	const struct cluster *c = m->cluster;
	int64_t now = time(NULL);
	size_t i;

	if (c == NULL || n <= 0)
		return 1;
	for (i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i].name, c->name) != 0 &&
		    c->nodes[i].seen >= now - CLUSTER_LIVE_S && c->nodes[i].served < n)
			return 0;
	return 1;
}

void
cluster_lagging(const struct master *m, int64_t n, char *buf, size_t len)
{
	const struct cluster *c = m->cluster;
	int64_t now = time(NULL);
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; c != NULL && i < c->nnodes && o < len; i++)
		if (strcmp(c->nodes[i].name, c->name) != 0 &&
		    c->nodes[i].seen >= now - CLUSTER_LIVE_S && c->nodes[i].served < n)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o > 0 ? ", " : "",
			    c->nodes[i].name);
}

const struct cluster_node *
cluster_nodes(struct master *m, size_t *n, const char **self, int *up)
{
	struct cluster *c = m->cluster;

	if (c == NULL)
		return NULL;
	if (!c->down && store_node_foreach(m->store, node_load, c) != STORE_OK &&
	    store_notice_fd(m->store) == -1)
		cluster_lost(c);
	*n = c->nnodes;
	*self = c->name;
	*up = !c->down;
	return c->nodes;
}
