/*
 * Unit tests for master/publish.c, the publish barrier: real workers (this
 * program re-executed, acking or lagging as CHECK_CHILD says) get each
 * generation; a change is served only once every live worker acked it,
 * changes made while a build is being acked share the next build, and a
 * worker that lags is killed so the barrier completes.
 */
#include "config.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/keyringbuild.h"
#include "master/proc.h"
#include "master/publish.h"
#include "master/rtable.h"
#include "master/store.h"
#include "master/snapbuild.h"
#include "master/workers.h"
#include "share/beaddr.h"
#include "share/hostname.h"
#include "share/pathprefix.h"
#include "share/snap.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testmaster.h"

static struct master m;

static int
served(struct master *mm, void *arg)
{
	return publish_served(mm, *(uint32_t *)arg);
}

static int
all_ready(struct master *mm, void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < mm->nworkers; i++)
		if (!mm->workers[i].proc.ready)
			return 0;
	return 1;
}

static void
start(size_t n, const char *const *modes)
{
	size_t i;

	testmaster_init(&m, n);
	ck_assert_int_eq(workers_init(&m), 0);
	ck_assert_int_eq(publish_build(&m), 0);
	ck_assert_uint_eq(m.gen, 1);
	for (i = 0; i < n; i++) {
		setenv("CHECK_CHILD", modes[i], 1);
		ck_assert_int_eq(proc_spawn(&m.workers[i].proc), 0);
	}
	setenv("CHECK_CHILD", "ack", 1);
	ck_assert(testmaster_run_until(&m, all_ready, NULL, 5000));
}

static void
add_route(const char *name)
{
	const char *be[] = { "127.0.0.1:9" };

	ck_assert_int_eq(store_route_add(m.store, name, NULL, 0, be, 1, NULL), STORE_OK);
	/* As master/commands.c does: the route table reads only what it is told changed. */
	rtable_touch(&m.rt, name);
}

START_TEST(ok_only_when_every_worker_acked)
{
	static const char *const modes[] = { "ack", "ack" };
	uint32_t gen = 1;

	start(2, modes);
	ck_assert(testmaster_run_until(&m, served, &gen, 5000));
	add_route("a.example.com");
	gen = publish_changed(&m);
	ck_assert_uint_eq(gen, 2);
	/* Built from the loop, then acked by each: not served before. */
	ck_assert(!publish_served(&m, gen));
	ck_assert(testmaster_run_until(&m, served, &gen, 5000));
	ck_assert_uint_eq(m.gen, 2);
	ck_assert_uint_eq(m.nroutes, 1);
	ck_assert_uint_eq(m.workers[0].acked_gen, 2);
	ck_assert_uint_eq(m.workers[1].acked_gen, 2);
	testmaster_free(&m);
}
END_TEST

START_TEST(changes_during_a_build_share_the_next)
{
	static const char *const modes[] = { "ack", "ack" };
	uint32_t gen = 1, g2, g3;

	start(2, modes);
	ck_assert(testmaster_run_until(&m, served, &gen, 5000));
	add_route("a.example.com");
	g2 = publish_changed(&m);
	/* One turn of the loop builds generation 2 and sends it; nobody acked yet. */
	ev_run_once(m.loop, 0);
	ck_assert_uint_eq(m.gen, 2);
	ck_assert(!publish_served(&m, 2));
	/* Two more changes while 2 is being acked: both wait for one build. */
	add_route("b.example.com");
	g3 = publish_changed(&m);
	add_route("c.example.com");
	ck_assert_uint_eq(publish_changed(&m), g3);
	ck_assert_uint_eq(g3, g2 + 1);
	ck_assert(!ev_timer_armed(&m.build_timer));
	ck_assert(testmaster_run_until(&m, served, &g3, 5000));
	ck_assert_uint_eq(m.gen, 3);
	ck_assert_uint_eq(m.nroutes, 3);
	testmaster_free(&m);
}
END_TEST

static int
killed_once(struct master *mm, void *arg)
{
	(void)arg;
	return mm->workers[1].proc.spawns >= 2 || mm->workers[1].proc.pid == 0;
}

START_TEST(a_lagging_worker_is_replaced)
{
	static const char *const modes[] = { "ack", "lag" };
	uint32_t gen = 1, g2;
	uint64_t t0;

	start(2, modes);
	/* Worker 1 never acks: generation 1 is not served, and a change waits. */
	testmaster_run_for(&m, 300);
	ck_assert_uint_eq(m.workers[0].acked_gen, 1);
	ck_assert_uint_eq(m.workers[1].acked_gen, 0);
	ck_assert(!publish_served(&m, gen));
	add_route("a.example.com");
	g2 = publish_changed(&m);
	ck_assert(!ev_timer_armed(&m.build_timer));
	ck_assert_uint_eq(m.gen, 1);
	/* After the ack grace it is killed; its respawn acks (CHECK_CHILD is "ack" now). */
	t0 = util_now_ms();
	ck_assert(testmaster_run_until(&m, killed_once, NULL, PUBLISH_ACK_GRACE_MS + 3000));
	ck_assert_uint_ge(util_now_ms() - t0 + 1000, PUBLISH_ACK_GRACE_MS);
	ck_assert(testmaster_run_until(&m, served, &g2, 5000));
	ck_assert_uint_eq(m.gen, 2);
	ck_assert(testmaster_run_until(&m, all_ready, NULL, 5000));
	ck_assert_uint_ge(m.workers[1].proc.spawns, 2);
	testmaster_free(&m);
}
END_TEST

/* --- the sharded snapshot against one whole build of the same routes */

#define AC_HOSTS 24
#define AC_STEPS 400

/* The reference: every route of the store as publish.c lays it out, in one image. */
struct ac_ref {
	struct snapb_route routes[512];
	struct snapb_host hosts[1024];
	struct snapb_backend backends[1024];
	uint32_t certs[1024];
	uint32_t nroutes, nhosts, nbackends;
};

static int
ac_ref_route(void *arg, const struct store_route *r)
{
	struct ac_ref *f = arg;
	struct snapb_route *sr = &f->routes[f->nroutes];
	struct beaddr ba;
	char err[200];
	size_t i;

	ck_assert_uint_lt(f->nroutes, 512);
	*sr = (struct snapb_route){ .id = (uint32_t)r->id, .name = strdup(r->name),
	    .be_first = f->nbackends, .connect_ms = (uint32_t)(r->set.connect_ms > 0 ?
	    r->set.connect_ms : 0) };
	if (strchr(r->name, '/') == NULL) {
		f->certs[f->nhosts] = mkeyring_cert_for(&m, r->name, r->name);
		f->hosts[f->nhosts++] = (struct snapb_host){ (uint32_t)r->name_id, sr->name,
		    f->nroutes, hostname_is_wildcard(r->name) ? SNAP_HOST_WILDCARD :
		    SNAP_HOST_EXACT, NULL };
	}
	for (i = 0; i < r->naliases; i++) {
		f->certs[f->nhosts] = mkeyring_cert_for(&m, r->aliases[i], r->name);
		f->hosts[f->nhosts++] = (struct snapb_host){ (uint32_t)r->alias_ids[i],
		    strdup(r->aliases[i]), f->nroutes, hostname_is_wildcard(r->aliases[i]) ?
		    SNAP_HOST_WILDCARD : SNAP_HOST_ALIAS, NULL };
	}
	for (i = 0; i < r->nbackends; i++) {
		struct snapb_backend *be = &f->backends[f->nbackends++];

		ck_assert_int_eq(beaddr_parse(r->backends[i], &ba, err, sizeof(err)), 0);
		*be = (struct snapb_backend){ .id = (uint32_t)r->backend_ids[i], .family = AF_INET,
		    .port = ntohs(((struct sockaddr_in *)&ba.ss)->sin_port) };
		memcpy(be->addr, &((struct sockaddr_in *)&ba.ss)->sin_addr, 4);
	}
	sr->be_count = f->nbackends - sr->be_first;
	f->nroutes++;
	return 0;
}

static struct snap *
ac_whole(struct ac_ref *f)
{
	struct snapb_input in;
	struct snap *s;
	char err[256];
	int fd;

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(store_route_foreach(m.store, ac_ref_route, f), 0);
	memset(&in, 0, sizeof(in));
	in.routes = f->routes;
	in.nroutes = f->nroutes;
	in.hosts = f->hosts;
	in.nhosts = f->nhosts;
	in.host_certs = f->certs;
	in.backends = f->backends;
	in.nbackends = f->nbackends;
	in.default_route = SNAP_NONE;
	ck_assert_msg(snapb_build(&in, &fd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	return s;
}

static void
ac_ref_free(struct ac_ref *f)
{
	uint32_t i;

	for (i = 0; i < f->nroutes; i++)
		free((char *)(uintptr_t)f->routes[i].name);
	for (i = 0; i < f->nhosts; i++)
		if (f->hosts[i].kind != SNAP_HOST_EXACT &&
		    !(f->hosts[i].kind == SNAP_HOST_WILDCARD && f->hosts[i].name ==
		    f->routes[f->hosts[i].route].name))
			free((char *)(uintptr_t)f->hosts[i].name);
}

/* Two routes are the same: id, name, settings, backends in order. */
static void
ac_same_route(const struct snap *a, const struct snap_route *ra, const struct snap *b,
    const struct snap_route *rb, const char *host)
{
	uint32_t j;

	ck_assert_msg((ra == NULL) == (rb == NULL), "%s: a route in one only", host);
	if (ra == NULL)
		return;
	ck_assert_msg(ra->id == rb->id, "%s: route %u, whole build %u", host, ra->id, rb->id);
	ck_assert_str_eq(snap_string(a, ra->name), snap_string(b, rb->name));
	ck_assert_uint_eq(ra->connect_ms, rb->connect_ms);
	ck_assert_uint_eq(ra->be_count, rb->be_count);
	ck_assert_uint_eq(ra->pfx_count, rb->pfx_count);
	for (j = 0; j < ra->be_count; j++) {
		ck_assert_uint_eq(snap_route_backend(a, ra, j)->id, snap_route_backend(b, rb, j)->id);
		ck_assert_uint_eq(snap_route_backend(a, ra, j)->port,
		    snap_route_backend(b, rb, j)->port);
	}
}

/* One name through both: its host entry, its route, its prefix routes. */
static void
ac_same_lookup(const struct snap *a, const struct snap *b, const char *host)
{
	static const char *const paths[] = { "/", "/p0/x", "/p1", "/p2/y/z", "/p10" };
	const struct snap_host *ha = snap_lookup_host(a, host, strlen(host));
	const struct snap_host *hb = snap_lookup_host(b, host, strlen(host));
	const struct snap_route *ra = snap_lookup(a, host, strlen(host));
	const struct snap_route *rb = snap_lookup(b, host, strlen(host));
	size_t i, pa, pb;

	ck_assert_msg((ha == NULL) == (hb == NULL), "%s: a host in one only", host);
	if (ha != NULL) {
		ck_assert_uint_eq(ha->id, hb->id);
		ck_assert_uint_eq(ha->kind, hb->kind);
		ck_assert_uint_eq(ha->cert, hb->cert);
		ck_assert_str_eq(snap_string(a, ha->name), snap_string(b, hb->name));
	}
	ac_same_route(a, ra, b, rb, host);
	for (i = 0; ra != NULL && i < sizeof(paths) / sizeof(paths[0]); i++) {
		pa = pb = 0;
		ac_same_route(a, snap_lookup_prefix(a, ra, paths[i], strlen(paths[i]), &pa), b,
		    snap_lookup_prefix(b, rb, paths[i], strlen(paths[i]), &pb), paths[i]);
		ck_assert_uint_eq(pa, pb);
	}
}

/* Every name the steps use, and names that only a wildcard or nothing serves. */
static void
ac_compare(const struct snap *a, const struct snap *b)
{
	char name[64];
	uint64_t ia = 0, ib = 0;
	uint32_t i;

	ck_assert_uint_eq(snap_route_count(a), snap_route_count(b));
	ck_assert_uint_eq(snap_backend_count(a), snap_backend_count(b));
	/* The walks over all routes see the same routes (ids are unique: a sum will do). */
	for (i = 0; i < snap_route_count(a); i++) {
		ia += snap_route_at(a, i)->id * 2654435761u;
		ib += snap_route_at(b, i)->id * 2654435761u;
	}
	ck_assert_uint_eq(ia, ib);
	for (i = 0; i < AC_HOSTS; i++) {
		snprintf(name, sizeof(name), "h%u.t", i);
		ac_same_lookup(a, b, name);
		snprintf(name, sizeof(name), "a%u.t", i);
		ac_same_lookup(a, b, name);
		snprintf(name, sizeof(name), "x.w%u.t", i);
		ac_same_lookup(a, b, name);
		snprintf(name, sizeof(name), "w%u.t", i);
		ac_same_lookup(a, b, name);
		snprintf(name, sizeof(name), "x.v%u.t", i);
		ac_same_lookup(a, b, name);
	}
	ac_same_lookup(a, b, "nothing.t");
}

/* A route name: a host, a wildcard, or a prefix route under a host. */
static void
ac_route_name(char *buf, size_t len)
{
	unsigned n = (unsigned)random() % AC_HOSTS;

	switch (random() % 4) {
	case 0:
		snprintf(buf, len, "*.w%u.t", n);
		break;
	case 1:
		snprintf(buf, len, "h%u.t/p%u", n, (unsigned)random() % 3);
		break;
	default:
		snprintf(buf, len, "h%u.t", n);
	}
}

static void
ac_alias_name(char *buf, size_t len)
{
	unsigned n = (unsigned)random() % AC_HOSTS;

	if (random() % 4 == 0)
		snprintf(buf, len, "*.v%u.t", n);
	else
		snprintf(buf, len, "a%u.t", n);
}

/* One random change through the store, told to the route table as commands.c does. */
static void
ac_step(void)
{
	char name[64], other[64], be[32];
	const char *bes[1] = { be }, *al[1] = { other };
	struct store_route r;

	ac_route_name(name, sizeof(name));
	ac_alias_name(other, sizeof(other));
	snprintf(be, sizeof(be), "127.0.0.1:%u", 1000 + (unsigned)random() % 50);
	switch (random() % 7) {
	case 0:
	case 1:
		(void)store_route_add(m.store, name, strchr(name, '/') != NULL ? NULL : al,
		    strchr(name, '/') != NULL || random() % 2 ? 0 : 1, bes, 1, NULL);
		break;
	case 2:
		(void)store_route_rm(m.store, name);
		break;
	case 3:
		if (strchr(name, '/') == NULL)
			(void)store_alias_add(m.store, name, other);
		break;
	case 4:
		(void)store_alias_rm(m.store, name, other);
		break;
	case 5:
		if (random() % 2)
			(void)store_backend_add(m.store, name, be);
		else
			(void)store_backend_rm(m.store, name, be);
		break;
	default:
		if (store_route_get(m.store, name, &r) == STORE_OK) {
			r.set.connect_ms = 100 + random() % 1000;
			(void)store_route_set(m.store, name, &r.set);
			store_route_free(&r);
		}
	}
	rtable_touch(&m.rt, name);
}

START_TEST(sharded_equals_whole_build)
{
	struct snap *sharded, *whole;
	struct ac_ref *ref = calloc(1, sizeof(*ref));
	char err[256];
	uint32_t step, full = 0;

	ck_assert_ptr_nonnull(ref);
	srandom(16);
	testmaster_init(&m, 0);
	for (step = 0; step < AC_STEPS; step++) {
		ac_step();
		ck_assert_int_eq(publish_build(&m), 0);
		ck_assert_msg(publish_map(&m, &sharded, err, sizeof(err)) == 0, "%s", err);
		ck_assert_ptr_nonnull(sharded);
		whole = ac_whole(ref);
		ac_compare(sharded, whole);
		snap_unref(whole);
		snap_unref(sharded);
		ac_ref_free(ref);
		full += m.snap_gens[0] == m.gen && m.snap_gens[SNAP_SHARDS - 1] == m.gen;
	}
	/* Only the first build makes every shard; each later one its change's few. */
	ck_assert_uint_le(full, 5);
	testmaster_free(&m);
	free(ref);
}
END_TEST

Suite *
suite_publish(void)
{
	Suite *s = suite_create("publish");
	TCase *tc = tcase_create("barrier");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ok_only_when_every_worker_acked);
	tcase_add_test(tc, changes_during_a_build_share_the_next);
	tcase_add_test(tc, a_lagging_worker_is_replaced);
	suite_add_tcase(s, tc);
	tc = tcase_create("shards");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sharded_equals_whole_build);
	suite_add_tcase(s, tc);
	return s;
}
