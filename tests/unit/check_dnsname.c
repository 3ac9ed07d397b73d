/*
 * Unit tests for master/dnsname.c, the master's table of backends by DNS
 * name, over a fake resolver: lookups started when due, answers sorted and
 * bounded, keys that stay while an address stays, one change callback per
 * answer that differs, the TTL clamp and schedule, the last good answer
 * kept on failure, entries dropped with their rows, and `resolver` parsing.
 */
#include "config.h"

#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "master/dnsmaster.h"
#include "master/dnsname.h"
#include "master/master.h"
#include "master/snapbuild.h"
#include "share/snap.h"
#include "share/evloop.h"
#include "tests/unit/suites.h"

/* The fake resolver: records each lookup; answers inline when told to. */
struct fake {
	struct dnsname *t;
	int calls;
	uint64_t token;		/* of the last lookup */
	char name[HOSTNAME_MAX + 1];
	int fail_start;		/* lookup returns -1 */
	const struct dnsname_answer *inline_answer;
	int changed;
};

static int
fake_lookup(void *impl, const char *name, uint64_t token)
{
	struct fake *f = impl;

	f->calls++;
	f->token = token;
	memcpy(f->name, name, strlen(name) + 1);
	if (f->fail_start)
		return -1;
	if (f->inline_answer != NULL)
		dnsname_answer(f->t, token, f->inline_answer);
	return 0;
}

static const struct dnsname_resolver_ops fake_ops = { fake_lookup };

static void
fake_changed(void *arg)
{
	((struct fake *)arg)->changed++;
}

static struct ev_loop *loop;
static struct fake fk;

static struct dnsname *
table(void)
{
	memset(&fk, 0, sizeof(fk));
	ck_assert_ptr_nonnull(loop = ev_loop_new());
	ck_assert_ptr_nonnull(fk.t = dnsname_new(loop, &fake_ops, &fk, fake_changed, &fk));
	return fk.t;
}

static void
done(struct dnsname *t)
{
	dnsname_free(t);
	ev_loop_free(loop);
}

static struct dnsname_addr
v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return (struct dnsname_addr){ AF_INET, { a, b, c, d } };
}

static struct dnsname_addr
v6last(uint8_t last)
{
	struct dnsname_addr x = { AF_INET6, { 0 } };

	x.addr[0] = 0xfd;
	x.addr[15] = last;
	return x;
}

static void
answer(struct dnsname *t, const struct dnsname_addr *a, size_t n, uint32_t ttl)
{
	struct dnsname_answer ans = { 1, a, n, ttl, NULL };

	dnsname_answer(t, fk.token, &ans);
}

static void
fail_answer(struct dnsname *t, const char *why)
{
	struct dnsname_answer ans = { 0, NULL, 0, 0, why };

	dnsname_answer(t, fk.token, &ans);
}

START_TEST(ttl_clamped)
{
	struct dnsname *t = table();

	ck_assert_uint_eq(dnsname_clamp_ttl(t, 0), 1000);
	ck_assert_uint_eq(dnsname_clamp_ttl(t, 30), 30000);
	ck_assert_uint_eq(dnsname_clamp_ttl(t, 7200), 3600000);
	ck_assert_uint_eq(dnsname_clamp_ttl(t, UINT32_MAX), 3600000);
	dnsname_set_ttl_bounds(t, 5000, 60000);
	ck_assert_uint_eq(dnsname_clamp_ttl(t, 1), 5000);
	ck_assert_uint_eq(dnsname_clamp_ttl(t, 61), 60000);
	dnsname_set_ttl_bounds(t, 9000, 2000);	/* max below min: min wins */
	ck_assert_uint_eq(dnsname_clamp_ttl(t, 3600), 9000);
	done(t);
}
END_TEST

/* An answer becomes sorted addresses without repeats, each with its key. */
START_TEST(answer_becomes_entries)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v6last(1), v4(10, 0, 0, 2), v4(10, 0, 0, 1), v4(10, 0, 0, 2) };
	const struct dnsname_entry *e;
	char text[DNSNAME_DESCRIBE_MAX];

	e = dnsname_want(t, 7, "app.internal", 3000);
	ck_assert_int_eq(e->state, DNSNAME_UNRESOLVED);
	dnsname_describe(e, text, sizeof(text));
	ck_assert_str_eq(text, "unresolved (lookup in progress)");
	ck_assert_int_eq(fk.calls, 1);	/* asked when first named */
	ck_assert_uint_eq(dnsname_run(t, ev_now(loop)), UINT64_MAX);
	ck_assert_int_eq(fk.calls, 1);
	ck_assert_str_eq(fk.name, "app.internal");
	/* In flight: not asked again. */
	dnsname_run(t, ev_now(loop) + 10000);
	ck_assert_int_eq(fk.calls, 1);
	answer(t, a, 4, 30);
	ck_assert_int_eq(fk.changed, 1);
	e = dnsname_find(t, 7);
	ck_assert_int_eq(e->state, DNSNAME_RESOLVED);
	ck_assert_uint_eq(e->naddrs, 3);
	ck_assert_uint_eq(e->addrs[0].addr[3], 1);
	ck_assert_uint_eq(e->addrs[1].addr[3], 2);
	ck_assert_uint_eq(e->addrs[2].family, AF_INET6);
	ck_assert_uint_ne(e->ids[0] & DNSNAME_ID_BASE, 0);
	ck_assert_uint_ne(e->ids[0], e->ids[1]);
	ck_assert_uint_ne(e->ids[1], e->ids[2]);
	dnsname_describe(e, text, sizeof(text));
	ck_assert_str_eq(text, "10.0.0.1:3000 10.0.0.2:3000 [fd00::1]:3000");
	done(t);
}
END_TEST

/* Keys stay while an address stays; the same answer again is no change. */
START_TEST(keys_stable)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v4(10, 0, 0, 1), v4(10, 0, 0, 2) };
	struct dnsname_addr b[] = { v4(10, 0, 0, 2), v4(10, 0, 0, 1) };
	struct dnsname_addr c[] = { v4(10, 0, 0, 3), v4(10, 0, 0, 2) };
	const struct dnsname_entry *e;
	uint32_t id2;

	dnsname_want(t, 7, "app.internal", 3000);
	dnsname_run(t, ev_now(loop));
	answer(t, a, 2, 1);
	e = dnsname_find(t, 7);
	id2 = e->ids[1];
	dnsname_run(t, ev_now(loop) + 1000);
	ck_assert_int_eq(fk.calls, 2);
	answer(t, b, 2, 1);
	ck_assert_int_eq(fk.changed, 1);
	ck_assert_uint_eq(e->ids[1], id2);
	dnsname_run(t, ev_now(loop) + 1000);
	answer(t, c, 2, 1);
	ck_assert_int_eq(fk.changed, 2);
	ck_assert_uint_eq(e->addrs[0].addr[3], 2);
	ck_assert_uint_eq(e->ids[0], id2);	/* 10.0.0.2 kept its key */
	ck_assert_uint_ne(e->ids[1], id2);
	done(t);
}
END_TEST

/* A failure keeps the last good answer and says so; an unresolved name says why. */
START_TEST(last_good_on_failure)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v4(10, 0, 0, 1) };
	const struct dnsname_entry *e, *u;
	char text[DNSNAME_DESCRIBE_MAX];

	dnsname_want(t, 7, "app.internal", 3000);
	dnsname_run(t, ev_now(loop));
	answer(t, a, 1, 1);
	dnsname_run(t, ev_now(loop) + 1000);
	fail_answer(t, "timeout");
	e = dnsname_find(t, 7);
	ck_assert_int_eq(e->state, DNSNAME_RESOLVED);
	ck_assert_uint_eq(e->naddrs, 1);
	ck_assert_int_eq(e->failing, 1);
	ck_assert_int_eq(fk.changed, 1);
	dnsname_describe(e, text, sizeof(text));
	ck_assert_str_eq(text, "10.0.0.1:3000 (lookup failing: timeout)");
	/* Retried within the bounds, not at once. */
	ck_assert_uint_eq(e->due_ms, ev_now(loop) + DNSNAME_RETRY_MS);
	/* An answer with no address is a failure too. */
	dnsname_run(t, ev_now(loop) + DNSNAME_RETRY_MS);
	answer(t, a, 0, 1);
	ck_assert_uint_eq(e->naddrs, 1);
	ck_assert_str_eq(e->reason, "no address");
	dnsname_run(t, ev_now(loop) + DNSNAME_RETRY_MS);
	answer(t, a, 1, 1);
	ck_assert_int_eq(e->failing, 0);
	ck_assert_int_eq(fk.changed, 1);	/* the same addresses: no new generation */
	u = dnsname_want(t, 8, "nosuch.internal", 80);
	dnsname_run(t, ev_now(loop));
	fail_answer(t, "Domain name not found");
	dnsname_describe(u, text, sizeof(text));
	ck_assert_str_eq(text, "unresolved (Domain name not found)");
	/* A lookup that cannot start is a failure of its own. */
	fk.fail_start = 1;
	dnsname_run(t, ev_now(loop) + DNSNAME_RETRY_MS);
	ck_assert_str_eq(dnsname_find(t, 7)->reason, "cannot start the lookup");
	done(t);
}
END_TEST

/* The next lookup waits for the TTL; refresh (reload) makes every name due. */
START_TEST(ttl_schedule_and_refresh)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v4(10, 0, 0, 1) };
	uint64_t now = ev_now(loop), old;

	dnsname_want(t, 7, "app.internal", 3000);
	dnsname_run(t, now);
	answer(t, a, 1, 30);
	ck_assert_uint_eq(dnsname_run(t, now + 29000), 1000);
	ck_assert_int_eq(fk.calls, 1);
	ck_assert_uint_eq(dnsname_run(t, now + 30000), UINT64_MAX);
	ck_assert_int_eq(fk.calls, 2);
	old = fk.token;
	dnsname_refresh(t);
	dnsname_run(t, now + 30000);
	ck_assert_int_eq(fk.calls, 3);
	/* The lookup that reload replaced answers late: ignored. */
	dnsname_answer(t, old, &(struct dnsname_answer){ 0, NULL, 0, 0, "late" });
	ck_assert_int_eq(dnsname_find(t, 7)->failing, 0);
	done(t);
}
END_TEST

/* An answer given inside lookup (c-ares does for /etc/hosts) is taken. */
START_TEST(inline_answer)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v4(127, 0, 0, 1), v6last(1) };
	struct dnsname_answer ans = { 1, a, 2, 0, NULL };

	fk.inline_answer = &ans;
	/* Asked when first named: the build under way has the answer, no change is asked for. */
	ck_assert_uint_eq(dnsname_want(t, 7, "localhost", 3000)->naddrs, 2);
	ck_assert_uint_eq(dnsname_want(t, 8, "localhost", 4000)->naddrs, 2);
	ck_assert_int_eq(fk.calls, 2);
	ck_assert_int_eq(fk.changed, 0);
	ck_assert_uint_eq(dnsname_run(t, ev_now(loop)), 1000);	/* TTL 0: the 1 s floor */
	ck_assert_int_eq(fk.calls, 2);
	/* Asked again by the loop: a change is a change then. */
	ans.naddrs = 1;
	ck_assert_uint_eq(dnsname_run(t, ev_now(loop) + 1000), 1000);
	ck_assert_int_eq(fk.calls, 4);
	ck_assert_int_eq(fk.changed, 2);
	ck_assert_uint_eq(dnsname_find(t, 8)->naddrs, 1);
	/* Two rows, one name: their keys differ (pools and health keep them apart). */
	ck_assert_uint_ne(dnsname_find(t, 7)->ids[0], dnsname_find(t, 8)->ids[0]);
	done(t);
}
END_TEST

/*
 * Rows no shard's last build named go; their answers are ignored. A build
 * of some shards keeps the names of the others.
 */
START_TEST(sweep_drops_gone_rows)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v4(10, 0, 0, 1) };

	dnsname_shard_begin(t, 0);
	dnsname_want(t, 7, "a.internal", 1);
	dnsname_shard_begin(t, 63);
	dnsname_want(t, 8, "b.internal", 1);
	dnsname_want(t, 9, "c.internal", 1);
	dnsname_sweep(t);
	dnsname_run(t, ev_now(loop));
	ck_assert_int_eq(fk.calls, 3);
	/* Shard 63 built again without c: c goes, a (shard 0, not built) stays. */
	dnsname_shard_begin(t, 63);
	dnsname_want(t, 8, "b.internal", 1);
	dnsname_sweep(t);
	ck_assert_ptr_null(dnsname_find(t, 9));
	ck_assert_ptr_nonnull(dnsname_find(t, 7));
	ck_assert_ptr_nonnull(dnsname_find(t, 8));
	/* A name two shards use stays while either does. */
	dnsname_shard_begin(t, 0);
	dnsname_want(t, 7, "a.internal", 1);
	dnsname_want(t, 8, "b.internal", 1);
	dnsname_shard_begin(t, 63);
	dnsname_sweep(t);
	ck_assert_ptr_nonnull(dnsname_find(t, 8));
	dnsname_shard_begin(t, 0);
	dnsname_want(t, 7, "a.internal", 1);
	dnsname_sweep(t);
	ck_assert_ptr_null(dnsname_find(t, 8));
	ck_assert_ptr_nonnull(dnsname_find(t, 7));
	answer(t, a, 1, 1);	/* the last token was c's: gone */
	ck_assert_int_eq(fk.changed, 0);
	done(t);
}
END_TEST

/* At most DNSNAME_ADDRS_MAX addresses a name, DNSNAME_NAMES_MAX names. */
START_TEST(bounds)
{
	struct dnsname *t = table();
	struct dnsname_addr a[DNSNAME_ADDRS_MAX + 4];
	char name[32];
	uint32_t i;

	for (i = 0; i < DNSNAME_ADDRS_MAX + 4; i++)
		a[i] = v4(10, 0, 1, (uint8_t)(40 - i));
	dnsname_want(t, 1, "many.internal", 80);
	dnsname_run(t, ev_now(loop));
	answer(t, a, DNSNAME_ADDRS_MAX + 4, 60);
	ck_assert_uint_eq(dnsname_find(t, 1)->naddrs, DNSNAME_ADDRS_MAX);
	ck_assert_uint_eq(dnsname_find(t, 1)->addrs[0].addr[3], 21);	/* the lowest kept */
	for (i = 2; i <= DNSNAME_NAMES_MAX; i++) {
		snprintf(name, sizeof(name), "n%u.internal", i);
		ck_assert_ptr_nonnull(dnsname_want(t, i, name, 80));
	}
	ck_assert_ptr_null(dnsname_want(t, 5000, "one-more.internal", 80));
	/* Lookups at once are bounded; the rest wait for a slot. */
	ck_assert_int_eq(fk.calls, 1 + DNSNAME_INFLIGHT_MAX);
	ck_assert_uint_eq(dnsname_run(t, ev_now(loop)), 1000);
	ck_assert_int_eq(fk.calls, 1 + DNSNAME_INFLIGHT_MAX);
	answer(t, a, 1, 60);	/* one slot free */
	dnsname_run(t, ev_now(loop));
	ck_assert_int_eq(fk.calls, 2 + DNSNAME_INFLIGHT_MAX);
	done(t);
}
END_TEST

/* What the builder gets: an entry per address with its key, or one unresolved entry. */
START_TEST(answer_to_snapshot_entries)
{
	struct dnsname *t = table();
	struct dnsname_addr a[] = { v6last(9), v4(10, 0, 0, 1) };
	struct snapb_backend out[DNSNAME_ADDRS_MAX];
	const struct dnsname_entry *e;
	struct master m;
	size_t n;

	memset(&m, 0, sizeof(m));
	m.dns = t;
	n = dnsmaster_entries(&m, 7, "app.internal", 3000, out, DNSNAME_ADDRS_MAX);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(out[0].id, 7);	/* the row's store id while unresolved */
	ck_assert_uint_eq(out[0].family, AF_UNSPEC);
	ck_assert_uint_eq(out[0].flags, SNAP_BACKEND_NAME);
	ck_assert_uint_eq(out[0].port, 3000);
	ck_assert_str_eq(out[0].name, "app.internal");
	answer(t, a, 2, 60);
	e = dnsname_find(t, 7);
	n = dnsmaster_entries(&m, 7, "app.internal", 3000, out, DNSNAME_ADDRS_MAX);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(out[0].family, AF_INET);
	ck_assert_uint_eq(out[0].addr[0], 10);
	ck_assert_uint_eq(out[0].id, e->ids[0]);
	ck_assert_uint_eq(out[1].family, AF_INET6);
	ck_assert_uint_eq(out[1].addr[15], 9);
	ck_assert_uint_eq(out[1].id, e->ids[1]);
	ck_assert_uint_eq(out[1].flags, SNAP_BACKEND_NAME);
	ck_assert_uint_eq(out[1].port, 3000);
	/* Failing lookups keep the last good entries. */
	dnsname_refresh(t);
	dnsname_run(t, ev_now(loop));
	fail_answer(t, "timeout");
	ck_assert_uint_eq(dnsmaster_entries(&m, 7, "app.internal", 3000, out, DNSNAME_ADDRS_MAX), 2);
	ck_assert_uint_eq(out[0].id, e->ids[0]);
	done(t);
}
END_TEST

START_TEST(servers_parsed)
{
	char out[512], err[200];

	ck_assert_int_eq(dnsname_servers_csv("127.0.0.1:5353", out, sizeof(out), err,
	    sizeof(err)), 0);
	ck_assert_str_eq(out, "127.0.0.1:5353");
	ck_assert_int_eq(dnsname_servers_csv("10.0.0.1  ::1,[fd00::1]:54", out, sizeof(out), err,
	    sizeof(err)), 0);
	ck_assert_str_eq(out, "10.0.0.1:53,[::1]:53,[fd00::1]:54");
	ck_assert_int_eq(dnsname_servers_csv("dns.example.com", out, sizeof(out), err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "invalid address 'dns.example.com'"));
	ck_assert_int_eq(dnsname_servers_csv("1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5", out,
	    sizeof(out), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most 4"));
	ck_assert_int_eq(dnsname_servers_csv(" , ", out, sizeof(out), err, sizeof(err)), -1);
}
END_TEST

Suite *
suite_dnsname(void)
{
	Suite *s = suite_create("dnsname");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, ttl_clamped);
	tcase_add_test(tc, answer_becomes_entries);
	tcase_add_test(tc, keys_stable);
	tcase_add_test(tc, last_good_on_failure);
	tcase_add_test(tc, ttl_schedule_and_refresh);
	tcase_add_test(tc, inline_answer);
	tcase_add_test(tc, sweep_drops_gone_rows);
	tcase_add_test(tc, bounds);
	tcase_add_test(tc, answer_to_snapshot_entries);
	tcase_add_test(tc, servers_parsed);
	suite_add_tcase(s, tc);
	return s;
}
