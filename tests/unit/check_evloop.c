/*
 * Unit tests for share/evloop.c: I/O watchers on real pipes and sockets,
 * timers, deferred calls and the loop itself. Waits are short timers with
 * generous upper bounds: the tests check order and that things happened,
 * not how long they took.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/evloop.h"
#include "share/util.h"
#include "tests/unit/suites.h"

/* Upper bound for anything that should happen "soon" on a busy machine. */
#define SOON_MS 5000

static struct ev_loop *loop;

/* What the callbacks did, in order: one character each. */
static char trail[4096];
static size_t ntrail;

static void
note(char c)
{
	ck_assert_uint_lt(ntrail, sizeof(trail) - 1);
	trail[ntrail++] = c;
	trail[ntrail] = '\0';
}

static void
setup(void)
{
	loop = ev_loop_new();
	ck_assert_ptr_nonnull(loop);
	ntrail = 0;
	trail[0] = '\0';
}

static void
teardown(void)
{
	ev_loop_free(loop);
	loop = NULL;
}

static void
mkpipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void
mksocks(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void
closepair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

static void
put_byte(int fd)
{
	ck_assert_int_eq(write(fd, "x", 1), 1);
}

/* Reads everything queued on fd; returns how many bytes. */
static size_t
drain(int fd)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	ck_assert(n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
	return total;
}

/* Runs iterations until *v reaches want or SOON_MS passed; returns *v. */
static int
run_until(const int *v, int want)
{
	uint64_t end = util_now_ms() + SOON_MS;

	while (*v < want && util_now_ms() < end)
		ck_assert_int_eq(ev_run_once(loop, 50), 0);
	return *v;
}

/* --- I/O watchers */

struct rec {
	struct ev_io io;
	char tag;
	int calls;
	uint32_t events;	/* of the last call */
	int fd;			/* of the last call */
};

static void
rec_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct rec *r = io->arg;

	ck_assert_ptr_eq(l, loop);
	ck_assert_ptr_eq(io, &r->io);
	r->calls++;
	r->events = events;
	r->fd = io->fd;
	note(r->tag);
}

static void
rec_start(struct rec *r, char tag, int fd, uint32_t events)
{
	memset(r, 0, sizeof(*r));
	r->tag = tag;
	ck_assert_int_eq(ev_io_start(loop, &r->io, fd, events, rec_cb, r), 0);
	ck_assert(r->io.active);
	ck_assert_int_eq(r->io.fd, fd);
	ck_assert_uint_eq(r->io.events, events);
}

START_TEST(io_readable_level_triggered)
{
	struct rec r;
	int p[2];

	mkpipe(p);
	rec_start(&r, 'r', p[0], EPOLLIN);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 0);
	put_byte(p[1]);
	ck_assert_int_eq(run_until(&r.calls, 1), 1);
	ck_assert(r.events & EPOLLIN);
	ck_assert_int_eq(r.fd, p[0]);
	/* Level-triggered: unread data is reported again, every iteration. */
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 3);
	ck_assert_uint_eq(drain(p[0]), 1);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 3);
	ev_io_stop(loop, &r.io);
	ck_assert(!r.io.active);
	closepair(p);
}
END_TEST

START_TEST(io_writable_follows_buffer)
{
	char chunk[4096];
	struct rec r;
	int sv[2];

	mksocks(sv);
	rec_start(&r, 'w', sv[0], EPOLLOUT);
	ck_assert_int_eq(run_until(&r.calls, 1), 1);
	ck_assert(r.events & EPOLLOUT);
	/* A full socket buffer is not writable... */
	memset(chunk, 'a', sizeof(chunk));
	while (write(sv[0], chunk, sizeof(chunk)) > 0)
		;
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	r.calls = 0;
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(r.calls, 0);
	/* ...until the peer reads. */
	ck_assert_uint_gt(drain(sv[1]), 0);
	ck_assert_int_ge(run_until(&r.calls, 1), 1);
	ck_assert(r.events & EPOLLOUT);
	ev_io_stop(loop, &r.io);
	closepair(sv);
}
END_TEST

START_TEST(io_modify_interest)
{
	struct rec r;
	int sv[2];

	mksocks(sv);
	/* Writable but not readable: EPOLLIN alone stays quiet. */
	rec_start(&r, 'm', sv[0], EPOLLIN);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 0);
	ck_assert_int_eq(ev_io_modify(loop, &r.io, EPOLLIN | EPOLLOUT), 0);
	ck_assert_uint_eq(r.io.events, EPOLLIN | EPOLLOUT);
	ck_assert_int_eq(run_until(&r.calls, 1), 1);
	ck_assert_uint_eq(r.events & (EPOLLIN | EPOLLOUT), EPOLLOUT);
	/* Unchanged interest is accepted and changes nothing. */
	ck_assert_int_eq(ev_io_modify(loop, &r.io, EPOLLIN | EPOLLOUT), 0);
	/* Back to reading only; then data arrives. */
	ck_assert_int_eq(ev_io_modify(loop, &r.io, EPOLLIN), 0);
	r.calls = 0;
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 0);
	put_byte(sv[1]);
	ck_assert_int_eq(run_until(&r.calls, 1), 1);
	ck_assert_uint_eq(r.events & (EPOLLIN | EPOLLOUT), EPOLLIN);
	/* No interest at all: readable and writable, yet silent. */
	ck_assert_int_eq(ev_io_modify(loop, &r.io, 0), 0);
	ck_assert_uint_eq(r.io.events, 0);
	r.calls = 0;
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(r.calls, 0);
	/* And back. */
	ck_assert_int_eq(ev_io_modify(loop, &r.io, EPOLLIN), 0);
	ck_assert_int_eq(run_until(&r.calls, 1), 1);
	/* A stopped watcher cannot be modified. */
	ev_io_stop(loop, &r.io);
	ck_assert_int_eq(ev_io_modify(loop, &r.io, EPOLLOUT), -1);
	ck_assert_uint_eq(r.io.events, EPOLLIN);
	closepair(sv);
}
END_TEST

START_TEST(io_start_refused)
{
	struct rec a, b;
	struct ev_io io;
	FILE *f = tmpfile();
	int p[2];

	/* A closed fd and a regular file (epoll cannot watch one). */
	memset(&io, 0, sizeof(io));
	ck_assert_int_eq(ev_io_start(loop, &io, -1, EPOLLIN, rec_cb, NULL), -1);
	ck_assert(!io.active);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ev_io_start(loop, &io, fileno(f), EPOLLIN, rec_cb, NULL), -1);
	ck_assert(!io.active);
	ev_io_stop(loop, &io);	/* a no-op on a watcher that never started */
	fclose(f);
	/* One watcher per fd: a second one is refused, the first keeps working. */
	mkpipe(p);
	rec_start(&a, 'a', p[0], EPOLLIN);
	memset(&b, 0, sizeof(b));
	b.tag = 'b';
	ck_assert_int_eq(ev_io_start(loop, &b.io, p[0], EPOLLIN, rec_cb, &b), -1);
	ck_assert(!b.io.active);
	put_byte(p[1]);
	ck_assert_int_eq(run_until(&a.calls, 1), 1);
	ck_assert_int_eq(b.calls, 0);
	/* Stopping twice is harmless; after a stop the fd can be watched again. */
	ev_io_stop(loop, &a.io);
	ev_io_stop(loop, &a.io);
	rec_start(&b, 'b', p[0], EPOLLIN);
	ck_assert_int_eq(run_until(&b.calls, 1), 1);
	ck_assert_int_eq(a.calls, 1);
	ev_io_stop(loop, &b.io);
	closepair(p);
}
END_TEST

START_TEST(io_hangup)
{
	struct rec r, s;
	int p[2], sv[2];
	char c;

	/* A pipe whose writer is gone: EPOLLHUP comes without being asked for. */
	mkpipe(p);
	rec_start(&r, 'p', p[0], EPOLLIN);
	close(p[1]);
	p[1] = -1;
	ck_assert_int_ge(run_until(&r.calls, 1), 1);
	ck_assert(r.events & EPOLLHUP);
	ev_io_stop(loop, &r.io);
	/* A socket whose peer closed: EPOLLRDHUP when asked for, readable (EOF). */
	mksocks(sv);
	rec_start(&s, 's', sv[0], EPOLLIN | EPOLLRDHUP);
	close(sv[1]);
	sv[1] = -1;
	ck_assert_int_ge(run_until(&s.calls, 1), 1);
	ck_assert(s.events & EPOLLRDHUP);
	ck_assert(s.events & EPOLLIN);
	ck_assert_int_eq(read(sv[0], &c, 1), 0);
	ev_io_stop(loop, &s.io);
	closepair(p);
	closepair(sv);
}
END_TEST

/* Stops its own watcher and frees it, as a connection that closes would. */
static int self_calls;

static void
stop_self_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	(void)events;
	self_calls++;
	ev_io_stop(l, io);
	ck_assert(!io->active);
	free(io);
}

START_TEST(io_stop_self_in_callback)
{
	struct ev_io *io = calloc(1, sizeof(*io));
	int p[2];

	ck_assert_ptr_nonnull(io);
	mkpipe(p);
	ck_assert_int_eq(ev_io_start(loop, io, p[0], EPOLLIN, stop_self_cb, NULL), 0);
	put_byte(p[1]);
	self_calls = 0;
	ck_assert_int_eq(run_until(&self_calls, 1), 1);
	/* Still readable, but nobody watches it any more. */
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(self_calls, 1);
	closepair(p);
}
END_TEST

/*
 * Several watchers ready in the same batch: whichever runs first stops and
 * frees all the others, whose queued events must then be dropped (a call
 * would be a use after free, which ASan reports).
 */
#define NPEERS 8
static struct ev_io *peers[NPEERS];
static int peer_calls;

static void
stop_peers_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	size_t i;

	(void)events;
	peer_calls++;
	for (i = 0; i < NPEERS; i++) {
		if (peers[i] == NULL || peers[i] == io)
			continue;
		ev_io_stop(l, peers[i]);
		free(peers[i]);
		peers[i] = NULL;
	}
}

START_TEST(io_stop_others_in_batch)
{
	int p[NPEERS][2];
	size_t i, left = 0;

	for (i = 0; i < NPEERS; i++) {
		mkpipe(p[i]);
		put_byte(p[i][1]);
		peers[i] = calloc(1, sizeof(*peers[i]));
		ck_assert_ptr_nonnull(peers[i]);
		ck_assert_int_eq(ev_io_start(loop, peers[i], p[i][0], EPOLLIN, stop_peers_cb, NULL), 0);
	}
	peer_calls = 0;
	/* Every pipe is readable already, so they are all in one batch. */
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_int_eq(peer_calls, 1);
	for (i = 0; i < NPEERS; i++) {
		if (peers[i] == NULL)
			continue;
		left++;
		/* The survivor keeps working (level-triggered). */
		ck_assert_int_eq(ev_run_once(loop, 0), 0);
		ck_assert_int_eq(peer_calls, 2);
		ev_io_stop(loop, peers[i]);
		free(peers[i]);
		peers[i] = NULL;
	}
	ck_assert_uint_eq(left, 1);
	for (i = 0; i < NPEERS; i++)
		closepair(p[i]);
}
END_TEST

/*
 * ev_io_forget and close instead of ev_io_stop: whichever watcher runs first
 * forgets and closes the others; their queued events are dropped, and the
 * closed fds are out of the epoll set (their numbers, reused, start again).
 */
static int forget_fds[NPEERS];

static void
forget_peers_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	size_t i;

	(void)events;
	peer_calls++;
	for (i = 0; i < NPEERS; i++) {
		if (peers[i] == NULL || peers[i] == io)
			continue;
		ev_io_forget(l, peers[i]);
		ck_assert(!peers[i]->active);
		close(forget_fds[i]);
		forget_fds[i] = -1;
		free(peers[i]);
		peers[i] = NULL;
	}
}

START_TEST(io_forget_then_close)
{
	int p[NPEERS][2];
	struct rec again;
	size_t i;

	for (i = 0; i < NPEERS; i++) {
		mkpipe(p[i]);
		put_byte(p[i][1]);
		forget_fds[i] = p[i][0];
		peers[i] = calloc(1, sizeof(*peers[i]));
		ck_assert_ptr_nonnull(peers[i]);
		ck_assert_int_eq(ev_io_start(loop, peers[i], p[i][0], EPOLLIN, forget_peers_cb, NULL), 0);
	}
	peer_calls = 0;
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_int_eq(peer_calls, 1);
	for (i = 0; i < NPEERS; i++) {
		if (peers[i] == NULL)
			continue;
		ev_io_stop(loop, peers[i]);
		free(peers[i]);
		peers[i] = NULL;
		close(forget_fds[i]);
	}
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(peer_calls, 1);
	/* A closed fd's number, taken again, is watched from scratch (no EEXIST). */
	for (i = 0; i < NPEERS; i++) {
		close(p[i][1]);
		if (forget_fds[i] == -1)
			mkpipe(p[i]);
		else
			p[i][0] = -1;
	}
	for (i = 0; i < NPEERS; i++) {
		if (p[i][0] == -1)
			continue;
		rec_start(&again, 'a', p[i][0], EPOLLIN);
		put_byte(p[i][1]);
		ck_assert_int_eq(run_until(&again.calls, 1), 1);
		ck_assert_int_eq(again.fd, p[i][0]);
		ev_io_stop(loop, &again.io);
		closepair(p[i]);
	}
}
END_TEST

/*
 * The same, but the other watcher is restarted at once on another fd: the
 * event queued for its old fd must not reach it under the new one.
 */
static struct rec swap[2];
static int swap_quiet_fd;
static int swap_done;

static void
swap_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct rec *r = io->arg, *other = r == &swap[0] ? &swap[1] : &swap[0];

	rec_cb(l, io, events);
	if (swap_done)
		return;
	swap_done = 1;
	ev_io_stop(l, &other->io);
	ck_assert_int_eq(ev_io_start(l, &other->io, swap_quiet_fd, EPOLLIN, swap_cb, other), 0);
}

START_TEST(io_restart_other_in_batch)
{
	int p[2], q[2], quiet[2];
	struct rec *moved;
	size_t i;

	mkpipe(p);
	mkpipe(q);
	mkpipe(quiet);
	put_byte(p[1]);
	put_byte(q[1]);
	swap_quiet_fd = quiet[0];
	swap_done = 0;
	memset(swap, 0, sizeof(swap));
	swap[0].tag = 'p';
	swap[1].tag = 'q';
	ck_assert_int_eq(ev_io_start(loop, &swap[0].io, p[0], EPOLLIN, swap_cb, &swap[0]), 0);
	ck_assert_int_eq(ev_io_start(loop, &swap[1].io, q[0], EPOLLIN, swap_cb, &swap[1]), 0);
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_uint_eq(ntrail, 1);
	moved = trail[0] == 'p' ? &swap[1] : &swap[0];
	ck_assert_int_eq(moved->calls, 0);
	ck_assert_int_eq(moved->io.fd, quiet[0]);
	/* The moved watcher hears its new fd, and only that. */
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(moved->calls, 0);
	put_byte(quiet[1]);
	ck_assert_int_eq(run_until(&moved->calls, 1), 1);
	ck_assert_int_eq(moved->fd, quiet[0]);
	for (i = 0; i < 2; i++)
		ev_io_stop(loop, &swap[i].io);
	closepair(p);
	closepair(q);
	closepair(quiet);
}
END_TEST

/* More ready watchers than one epoll batch holds: every one is served once. */
#define NMANY 600
static int many_calls[NMANY];
static int many_total;

static void
many_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	int *n = io->arg;
	char c;

	(void)events;
	(*n)++;
	many_total++;
	ck_assert_int_eq(read(io->fd, &c, 1), 1);
	ev_io_stop(l, io);
}

START_TEST(io_more_than_one_batch)
{
	static struct ev_io ios[NMANY];
	static int fds[NMANY][2];
	struct rlimit rl;
	uint64_t end;
	int i;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * NMANY + 64 && rl.rlim_max >= 2 * NMANY + 64) {
		rl.rlim_cur = 2 * NMANY + 64;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	ck_assert_uint_ge(rl.rlim_cur, 2 * NMANY + 64);
	memset(many_calls, 0, sizeof(many_calls));
	many_total = 0;
	for (i = 0; i < NMANY; i++) {
		mkpipe(fds[i]);
		put_byte(fds[i][1]);
		ck_assert_int_eq(ev_io_start(loop, &ios[i], fds[i][0], EPOLLIN, many_cb, &many_calls[i]), 0);
	}
	end = util_now_ms() + SOON_MS;
	while (many_total < NMANY && util_now_ms() < end)
		ck_assert_int_eq(ev_run_once(loop, 50), 0);
	ck_assert_int_eq(many_total, NMANY);
	for (i = 0; i < NMANY; i++) {
		ck_assert_int_eq(many_calls[i], 1);
		ck_assert(!ios[i].active);
		closepair(fds[i]);
	}
}
END_TEST

/* --- timers */

struct trec {
	struct ev_timer t;
	char tag;
	int fired;
	uint64_t at;		/* ev_now() when it fired */
	int rearm;		/* times left to re-arm itself */
	uint64_t rearm_ms;
};

static void
trec_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct trec *r = t->arg;

	ck_assert_ptr_eq(l, loop);
	ck_assert_ptr_eq(t, &r->t);
	/* It is disarmed before its callback runs. */
	ck_assert(!ev_timer_armed(t));
	ck_assert_uint_ge(ev_now(l), t->when_ms);
	r->fired++;
	r->at = ev_now(l);
	note(r->tag);
	if (r->rearm > 0) {
		r->rearm--;
		ck_assert_int_eq(ev_timer_start(l, t, r->rearm_ms), 0);
	}
}

static void
trec_init(struct trec *r, char tag)
{
	memset(r, 0, sizeof(*r));
	r->tag = tag;
	ev_timer_init(&r->t, trec_cb, r);
	ck_assert(!ev_timer_armed(&r->t));
	ck_assert_ptr_eq(r->t.arg, r);
}

START_TEST(timer_fires_once)
{
	struct trec a;
	uint64_t armed_at;

	trec_init(&a, 'a');
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	armed_at = ev_now(loop);
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 20), 0);
	ck_assert(ev_timer_armed(&a.t));
	ck_assert_uint_eq(a.t.when_ms, armed_at + 20);
	ck_assert_int_eq(run_until(&a.fired, 1), 1);
	ck_assert_uint_ge(a.at, armed_at + 20);
	ck_assert(!ev_timer_armed(&a.t));
	/* Once only. */
	ck_assert_int_eq(ev_run_once(loop, 40), 0);
	ck_assert_int_eq(a.fired, 1);
}
END_TEST

START_TEST(timer_order)
{
	static const struct { char tag; uint64_t ms; } arm[] = {
		{ 'd', 60 }, { 'a', 0 }, { 'c', 30 }, { 'b', 15 }, { 'e', 60 }, { 'f', 90 },
	};
	struct trec r[6];
	size_t i;
	uint64_t end;

	for (i = 0; i < 6; i++) {
		trec_init(&r[i], arm[i].tag);
		ck_assert_int_eq(ev_timer_start(loop, &r[i].t, arm[i].ms), 0);
	}
	end = util_now_ms() + SOON_MS;
	while (ntrail < 6 && util_now_ms() < end)
		ck_assert_int_eq(ev_run_once(loop, -1), 0);
	/* d and e share a deadline: both fire, in either order. */
	ck_assert_uint_eq(ntrail, 6);
	ck_assert(strcmp(trail, "abcdef") == 0 || strcmp(trail, "abcedf") == 0);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(r[i].fired, 1);
	ck_assert_uint_le(r[1].at, r[3].at);
	ck_assert_uint_le(r[3].at, r[2].at);
	ck_assert_uint_le(r[2].at, r[0].at);
	ck_assert_uint_le(r[0].at, r[5].at);
}
END_TEST

START_TEST(timer_restart)
{
	struct trec a, b, tick;

	/* Re-arming an armed timer moves it; it still fires once. */
	trec_init(&a, 'a');
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 600000), 0);
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 10), 0);
	ck_assert(ev_timer_armed(&a.t));
	ck_assert_int_eq(run_until(&a.fired, 1), 1);
	ck_assert_int_eq(ev_run_once(loop, 30), 0);
	ck_assert_int_eq(a.fired, 1);
	/* Pushed later: a (10 -> 80 ms) fires after b (40 ms), not before. */
	ntrail = 0;
	trec_init(&b, 'b');
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 10), 0);
	ck_assert_int_eq(ev_timer_start(loop, &b.t, 40), 0);
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 80), 0);
	ck_assert_int_eq(run_until(&a.fired, 2), 2);
	ck_assert_str_eq(trail, "ba");
	ck_assert_int_eq(b.fired, 1);
	/* Re-armed from its own callback: a periodic timer. */
	ntrail = 0;
	trec_init(&tick, 't');
	tick.rearm = 3;
	tick.rearm_ms = 5;
	ck_assert_int_eq(ev_timer_start(loop, &tick.t, 5), 0);
	ck_assert_int_eq(run_until(&tick.fired, 4), 4);
	ck_assert(!ev_timer_armed(&tick.t));
	ck_assert_int_eq(ev_run_once(loop, 30), 0);
	ck_assert_int_eq(tick.fired, 4);
	ck_assert_str_eq(trail, "tttt");
}
END_TEST

START_TEST(timer_stop)
{
	struct trec a, sentinel;

	trec_init(&a, 'a');
	trec_init(&sentinel, 's');
	ev_timer_stop(loop, &a.t);	/* never armed: a no-op */
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 10), 0);
	ck_assert_int_eq(ev_timer_start(loop, &sentinel.t, 60), 0);
	ev_timer_stop(loop, &a.t);
	ck_assert(!ev_timer_armed(&a.t));
	ev_timer_stop(loop, &a.t);
	ck_assert_int_eq(run_until(&sentinel.fired, 1), 1);
	ck_assert_int_eq(a.fired, 0);
	ck_assert_str_eq(trail, "s");
	/* A stopped timer can be armed again. */
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 5), 0);
	ck_assert_int_eq(run_until(&a.fired, 1), 1);
	ck_assert_str_eq(trail, "sa");
}
END_TEST

/* Timers due in the same pass: the first to fire stops all the others. */
#define NRIVALS 5
static struct ev_timer rivals[NRIVALS];
static int rival_calls;

static void
rival_cb(struct ev_loop *l, struct ev_timer *t)
{
	size_t i;

	rival_calls++;
	for (i = 0; i < NRIVALS; i++)
		if (&rivals[i] != t)
			ev_timer_stop(l, &rivals[i]);
}

/* An I/O callback that stops a timer due in the same iteration. */
static struct trec *io_victim;

static void
stop_timer_io_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	(void)events;
	note('i');
	ck_assert(ev_timer_armed(&io_victim->t));
	ev_timer_stop(l, &io_victim->t);
	ev_io_stop(l, io);
}

START_TEST(timer_stopped_by_other_callback)
{
	struct trec due, late;
	struct ev_io io;
	size_t i;
	int p[2];

	for (i = 0; i < NRIVALS; i++) {
		ev_timer_init(&rivals[i], rival_cb, NULL);
		ck_assert_int_eq(ev_timer_start(loop, &rivals[i], 0), 0);
	}
	rival_calls = 0;
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_int_eq(rival_calls, 1);
	for (i = 0; i < NRIVALS; i++)
		ck_assert(!ev_timer_armed(&rivals[i]));
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(rival_calls, 1);

	/*
	 * A watcher that becomes ready when the timer is due stops it first:
	 * a connection that just read data cancels its timeout.
	 */
	trec_init(&due, 'T');
	trec_init(&late, 'L');
	io_victim = &due;
	mkpipe(p);
	ck_assert_int_eq(ev_io_start(loop, &io, p[0], EPOLLIN, stop_timer_io_cb, NULL), 0);
	ck_assert_int_eq(ev_timer_start(loop, &due.t, 0), 0);
	ck_assert_int_eq(ev_timer_start(loop, &late.t, 40), 0);
	put_byte(p[1]);
	ck_assert_int_eq(run_until(&late.fired, 1), 1);
	ck_assert_int_eq(due.fired, 0);
	ck_assert_str_eq(trail, "iL");
	closepair(p);
}
END_TEST

/* A timer freed by its own callback, and one freed by another's callback. */
static struct ev_timer *doomed;
static int free_calls;

static void
free_self_cb(struct ev_loop *l, struct ev_timer *t)
{
	free_calls++;
	ck_assert_ptr_ne(t, doomed);
	if (doomed != NULL) {
		ck_assert(ev_timer_armed(doomed));
		ev_timer_stop(l, doomed);
		free(doomed);
		doomed = NULL;
	}
	free(t);
}

START_TEST(timer_freed_in_callback)
{
	struct ev_timer *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	uint64_t t0;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ev_timer_init(a, free_self_cb, NULL);
	ev_timer_init(b, free_self_cb, NULL);
	ck_assert_int_eq(ev_timer_start(loop, a, 0), 0);
	ck_assert_int_eq(ev_timer_start(loop, b, 0), 0);
	/* Each frees itself. */
	doomed = NULL;
	free_calls = 0;
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(free_calls, 2);
	/*
	 * a (due at now) and b (due 1 ms later) are both due when the next
	 * iteration starts; a fires first and frees b, which must not fire.
	 */
	a = malloc(sizeof(*a));
	b = malloc(sizeof(*b));
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ev_timer_init(a, free_self_cb, NULL);
	ev_timer_init(b, free_self_cb, NULL);
	ck_assert_int_eq(ev_timer_start(loop, b, 1), 0);
	ck_assert_int_eq(ev_timer_start(loop, a, 0), 0);
	t0 = util_now_ms();
	while (util_now_ms() < ev_now(loop) + 2 && util_now_ms() < t0 + SOON_MS)
		;
	free_calls = 0;
	doomed = b;
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(free_calls, 1);
	ck_assert_ptr_null(doomed);
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(free_calls, 1);
}
END_TEST

/* Many timers: arm, stop some, move some; the rest fire once, in deadline order. */
#define NTIMERS 1500
static struct trec many_t[NTIMERS];
static uint64_t last_when;
static int many_fired, many_order_ok;

static void
many_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	struct trec *r = t->arg;

	(void)l;
	r->fired++;
	many_fired++;
	if (t->when_ms < last_when)
		many_order_ok = 0;
	last_when = t->when_ms;
}

START_TEST(timer_many)
{
	uint32_t seed = 12345;
	int i, expect = 0;
	uint64_t end;

	many_fired = 0;
	many_order_ok = 1;
	last_when = 0;
	for (i = 0; i < NTIMERS; i++) {
		memset(&many_t[i], 0, sizeof(many_t[i]));
		ev_timer_init(&many_t[i].t, many_timer_cb, &many_t[i]);
		seed = seed * 1103515245u + 12345u;
		ck_assert_int_eq(ev_timer_start(loop, &many_t[i].t, (seed >> 16) % 50), 0);
	}
	for (i = 0; i < NTIMERS; i++) {
		seed = seed * 1103515245u + 12345u;
		if (i % 3 == 0) {
			ev_timer_stop(loop, &many_t[i].t);
			ck_assert(!ev_timer_armed(&many_t[i].t));
		} else {
			if (i % 5 == 0)
				ck_assert_int_eq(ev_timer_start(loop, &many_t[i].t, (seed >> 16) % 50), 0);
			ck_assert(ev_timer_armed(&many_t[i].t));
			expect++;
		}
	}
	end = util_now_ms() + SOON_MS;
	while (many_fired < expect && util_now_ms() < end)
		ck_assert_int_eq(ev_run_once(loop, -1), 0);
	ck_assert_int_eq(many_fired, expect);
	ck_assert(many_order_ok);
	for (i = 0; i < NTIMERS; i++) {
		ck_assert_int_eq(many_t[i].fired, i % 3 == 0 ? 0 : 1);
		ck_assert(!ev_timer_armed(&many_t[i].t));
	}
	/* Nothing is left: a short wait fires nothing more. */
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(many_fired, expect);
}
END_TEST

/*
 * A timer that re-arms itself for 0 ms ("again, as soon as possible")
 * fires once per iteration: I/O, deferred calls and ev_break still get
 * their turn instead of the loop spinning on the timer alone.
 */
static int spin_fired;

static void
spin_cb(struct ev_loop *l, struct ev_timer *t)
{
	spin_fired++;
	ck_assert_int_eq(ev_timer_start(l, t, 0), 0);
}

START_TEST(timer_zero_rearm_yields)
{
	struct ev_timer spin;
	struct rec r;
	int p[2];

	ev_timer_init(&spin, spin_cb, NULL);
	ck_assert_int_eq(ev_timer_start(loop, &spin, 0), 0);
	spin_fired = 0;
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_int_eq(spin_fired, 1);
	ck_assert(ev_timer_armed(&spin));
	mkpipe(p);
	rec_start(&r, 'r', p[0], EPOLLIN);
	put_byte(p[1]);
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(spin_fired, 2);
	ev_timer_stop(loop, &spin);
	ev_io_stop(loop, &r.io);
	closepair(p);
}
END_TEST

START_TEST(now_is_cached_and_monotonic)
{
	struct trec a;
	uint64_t before, n, t0;

	before = util_now_ms();
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	n = ev_now(loop);
	ck_assert_uint_ge(n, before);
	ck_assert_uint_le(n, util_now_ms());
	/* Cached: it does not move until the next iteration... */
	t0 = util_now_ms();
	while (util_now_ms() < t0 + 3)
		;
	ck_assert_uint_eq(ev_now(loop), n);
	/* ...and a timer armed now counts from it. */
	trec_init(&a, 'a');
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 20), 0);
	ck_assert_uint_eq(a.t.when_ms, n + 20);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_uint_ge(ev_now(loop), n + 3);
	ck_assert_int_eq(run_until(&a.fired, 1), 1);
	ck_assert_uint_ge(a.at, n + 20);
	ck_assert_uint_ge(ev_now(loop), a.at);
	ck_assert_uint_le(ev_now(loop), util_now_ms());
}
END_TEST

/* --- deferred calls */

static int in_callback;
static int defer_seen_batch;	/* io callbacks that had run when D ran */
static struct rec dpair[2];

static void
defer_note(void *arg)
{
	ck_assert(!in_callback);
	note(*(const char *)arg);
}

static void
defer_check_batch(void *arg)
{
	(void)arg;
	ck_assert(!in_callback);
	defer_seen_batch = dpair[0].calls + dpair[1].calls;
	note('D');
}

static void
defer_io_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	in_callback = 1;
	rec_cb(l, io, events);
	if (ntrail == 1)
		ck_assert_int_eq(ev_defer(l, defer_check_batch, NULL), 0);
	/* Never inside the caller. */
	ck_assert_uint_eq(ntrail, (size_t)(dpair[0].calls + dpair[1].calls));
	in_callback = 0;
}

START_TEST(defer_runs_after_batch)
{
	int p[2], q[2];

	mkpipe(p);
	mkpipe(q);
	put_byte(p[1]);
	put_byte(q[1]);
	memset(dpair, 0, sizeof(dpair));
	dpair[0].tag = 'p';
	dpair[1].tag = 'q';
	ck_assert_int_eq(ev_io_start(loop, &dpair[0].io, p[0], EPOLLIN, defer_io_cb, &dpair[0]), 0);
	ck_assert_int_eq(ev_io_start(loop, &dpair[1].io, q[0], EPOLLIN, defer_io_cb, &dpair[1]), 0);
	defer_seen_batch = -1;
	/* Both pipes are ready before the call: one batch. */
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_uint_eq(ntrail, 3);
	ck_assert_int_eq(trail[2], 'D');
	ck_assert_int_eq(defer_seen_batch, 2);
	ev_io_stop(loop, &dpair[0].io);
	ev_io_stop(loop, &dpair[1].io);
	closepair(p);
	closepair(q);
}
END_TEST

/* Deferred calls run in the order queued; those they queue run in the same pass. */
static char tags[] = "123456789";

static void
defer_more(void *arg)
{
	ck_assert(!in_callback);
	note(*(const char *)arg);
	ck_assert_int_eq(ev_defer(loop, defer_note, (void *)&tags[5]), 0);
	ck_assert_int_eq(ev_defer(loop, defer_note, (void *)&tags[6]), 0);
	/* Not inside this call either. */
	ck_assert_str_eq(trail, "T123");
}

static void
defer_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)t;
	in_callback = 1;
	note('T');
	ck_assert_int_eq(ev_defer(l, defer_note, (void *)&tags[0]), 0);
	ck_assert_int_eq(ev_defer(l, defer_note, (void *)&tags[1]), 0);
	ck_assert_int_eq(ev_defer(l, defer_more, (void *)&tags[2]), 0);
	ck_assert_int_eq(ev_defer(l, defer_note, (void *)&tags[3]), 0);
	ck_assert_int_eq(ev_defer(l, defer_note, (void *)&tags[4]), 0);
	ck_assert_str_eq(trail, "T");
	in_callback = 0;
}

START_TEST(defer_order_and_nested)
{
	struct ev_timer t;

	ev_timer_init(&t, defer_timer_cb, NULL);
	ck_assert_int_eq(ev_timer_start(loop, &t, 0), 0);
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	/* All of it before ev_run_once returned. */
	ck_assert_str_eq(trail, "T1234567");
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_str_eq(trail, "T1234567");
}
END_TEST

/*
 * Many deferred calls from one callback, past the queue's first allocation;
 * the first of them queues more while the queue is being run, so it grows
 * under the pass.
 */
#define NDEFER 1000
#define NDEFER_MORE 300
static int defer_count[NDEFER + NDEFER_MORE];
static int defer_next;

static void
defer_counted(void *arg)
{
	int i = (int)((int *)arg - defer_count), j;

	ck_assert_int_eq(i, defer_next);
	defer_next++;
	defer_count[i]++;
	if (i == 0)
		for (j = NDEFER; j < NDEFER + NDEFER_MORE; j++)
			ck_assert_int_eq(ev_defer(loop, defer_counted, &defer_count[j]), 0);
}

static void
defer_many_io_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	int i;

	(void)events;
	for (i = 0; i < NDEFER; i++)
		ck_assert_int_eq(ev_defer(l, defer_counted, &defer_count[i]), 0);
	ck_assert_int_eq(defer_next, 0);
	ev_io_stop(l, io);
}

START_TEST(defer_many)
{
	struct ev_io io;
	int p[2], i;

	memset(defer_count, 0, sizeof(defer_count));
	defer_next = 0;
	mkpipe(p);
	put_byte(p[1]);
	ck_assert_int_eq(ev_io_start(loop, &io, p[0], EPOLLIN, defer_many_io_cb, NULL), 0);
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	ck_assert_int_eq(defer_next, NDEFER + NDEFER_MORE);
	for (i = 0; i < NDEFER + NDEFER_MORE; i++)
		ck_assert_int_eq(defer_count[i], 1);
	closepair(p);
}
END_TEST

/*
 * The pattern ev_defer exists for: a callback tears down another object
 * whose watcher has an event queued in the same batch, and frees it later.
 */
struct conn {
	struct ev_io io;
	struct conn *peer;
};

static int conn_frees;

static void
conn_free(void *arg)
{
	struct conn *c = arg;

	conn_frees++;
	free(c);
}

static void
conn_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct conn *c = io->arg;

	(void)events;
	/* Close both ends of the "proxied pair" at once. */
	ev_io_stop(l, &c->io);
	ck_assert_int_eq(ev_defer(l, conn_free, c), 0);
	if (c->peer != NULL) {
		c->peer->peer = NULL;
		ev_io_stop(l, &c->peer->io);
		ck_assert_int_eq(ev_defer(l, conn_free, c->peer), 0);
	}
	ck_assert_int_eq(conn_frees, 0);
}

START_TEST(defer_frees_stopped_watcher)
{
	struct conn *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	int p[2], q[2];

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	a->peer = b;
	b->peer = a;
	mkpipe(p);
	mkpipe(q);
	put_byte(p[1]);
	put_byte(q[1]);
	ck_assert_int_eq(ev_io_start(loop, &a->io, p[0], EPOLLIN, conn_cb, a), 0);
	ck_assert_int_eq(ev_io_start(loop, &b->io, q[0], EPOLLIN, conn_cb, b), 0);
	conn_frees = 0;
	ck_assert_int_eq(ev_run_once(loop, SOON_MS), 0);
	/* One callback ran, both were freed after it (ASan checks the rest). */
	ck_assert_int_eq(conn_frees, 2);
	ck_assert_int_eq(ev_run_once(loop, 20), 0);
	ck_assert_int_eq(conn_frees, 2);
	closepair(p);
	closepair(q);
}
END_TEST

/* Queued outside any callback: runs in the next iteration, without waiting for an event. */
START_TEST(defer_outside_loop)
{
	uint64_t t0;

	ck_assert_int_eq(ev_defer(loop, defer_note, (void *)&tags[0]), 0);
	ck_assert_int_eq(ev_defer(loop, defer_note, (void *)&tags[1]), 0);
	ck_assert_str_eq(trail, "");
	t0 = util_now_ms();
	ck_assert_int_eq(ev_run_once(loop, -1), 0);
	ck_assert_str_eq(trail, "12");
	ck_assert_uint_lt(util_now_ms() - t0, SOON_MS);
}
END_TEST

/* ev_defer_once: the pending flag is the caller's, cleared by the deferred call. */
static uint8_t once_pending;
static int once_runs;

static void
once_run(void *arg)
{
	(void)arg;
	once_pending = 0;
	once_runs++;
}

START_TEST(defer_once_per_batch)
{
	once_pending = 0;
	once_runs = 0;
	ck_assert_int_eq(ev_defer_once(loop, once_run, NULL, &once_pending), 0);
	ck_assert_int_eq(ev_defer_once(loop, once_run, NULL, &once_pending), 0);
	ck_assert_int_eq(once_pending, 1);
	ck_assert_int_eq(once_runs, 0);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(once_runs, 1);
	ck_assert_int_eq(once_pending, 0);
	/* Cleared: the next batch schedules it again. */
	ck_assert_int_eq(ev_defer_once(loop, once_run, NULL, &once_pending), 0);
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_int_eq(once_runs, 2);
}
END_TEST

/* --- the loop */

START_TEST(run_once_waits)
{
	struct trec a;
	uint64_t t0;

	/* Nothing to do: 0 returns at once, a bound waits about that long. */
	t0 = util_now_ms();
	ck_assert_int_eq(ev_run_once(loop, 0), 0);
	ck_assert_uint_lt(util_now_ms() - t0, SOON_MS);
	t0 = ev_now(loop);
	ck_assert_int_eq(ev_run_once(loop, 30), 0);
	ck_assert_uint_ge(ev_now(loop), t0 + 25);
	ck_assert_str_eq(trail, "");
	/* A timer due sooner than the bound cuts the wait short. */
	trec_init(&a, 'a');
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 10), 0);
	t0 = util_now_ms();
	while (a.fired == 0 && util_now_ms() < t0 + SOON_MS)
		ck_assert_int_eq(ev_run_once(loop, 600000), 0);
	ck_assert_int_eq(a.fired, 1);
	ck_assert_uint_lt(util_now_ms() - t0, SOON_MS);
	/* -1 waits for the timer. */
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 10), 0);
	t0 = util_now_ms();
	while (a.fired == 1 && util_now_ms() < t0 + SOON_MS)
		ck_assert_int_eq(ev_run_once(loop, -1), 0);
	ck_assert_int_eq(a.fired, 2);
}
END_TEST

static volatile sig_atomic_t got_alarm;

static void
on_alarm(int sig)
{
	(void)sig;
	got_alarm = 1;
}

START_TEST(run_once_interrupted)
{
	struct sigaction sa, old;
	struct itimerval it = { { 0, 0 }, { 0, 100000 } }, off = { { 0, 0 }, { 0, 0 } };
	struct trec a;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: epoll_wait fails with EINTR */
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	trec_init(&a, 'a');
	ck_assert_int_eq(ev_timer_start(loop, &a.t, 3 * SOON_MS), 0);
	got_alarm = 0;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	/* A signal is not an error: the call returns 0, having run nothing. */
	while (!got_alarm)
		ck_assert_int_eq(ev_run_once(loop, -1), 0);
	ck_assert_int_eq(a.fired, 0);
	ck_assert(ev_timer_armed(&a.t));
	setitimer(ITIMER_REAL, &off, NULL);
	ck_assert_int_eq(sigaction(SIGALRM, &old, NULL), 0);
	ev_timer_stop(loop, &a.t);
}
END_TEST

/* ev_break from a timer and from an I/O callback; the iteration completes. */
static void
break_timer_cb(struct ev_loop *l, struct ev_timer *t)
{
	(void)t;
	note('b');
	ck_assert_int_eq(ev_defer(l, defer_note, (void *)&tags[0]), 0);
	ev_break(l);
}

static void
break_io_cb(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	(void)events;
	note('i');
	ev_io_stop(l, io);
	ev_break(l);
}

START_TEST(run_until_break)
{
	struct ev_timer brk;
	struct trec tick;
	struct ev_io io;
	int p[2];

	/* A periodic timer keeps running until another one breaks the loop. */
	trec_init(&tick, 't');
	tick.rearm = 1000;
	tick.rearm_ms = 5;
	ck_assert_int_eq(ev_timer_start(loop, &tick.t, 5), 0);
	ev_timer_init(&brk, break_timer_cb, NULL);
	ck_assert_int_eq(ev_timer_start(loop, &brk, 40), 0);
	ck_assert_int_eq(ev_run(loop), 0);
	/* The deferred call queued with the break ran before ev_run returned. */
	ck_assert_uint_ge(ntrail, 3);
	ck_assert_int_eq(trail[ntrail - 1], '1');
	ck_assert(strchr(trail, 'b') != NULL);
	ck_assert(ev_timer_armed(&tick.t));
	/* The loop can run again; this time an I/O callback breaks it. */
	ev_timer_stop(loop, &tick.t);
	ntrail = 0;
	trail[0] = '\0';
	mkpipe(p);
	ck_assert_int_eq(ev_io_start(loop, &io, p[0], EPOLLIN, break_io_cb, NULL), 0);
	put_byte(p[1]);
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_str_eq(trail, "i");
	closepair(p);
}
END_TEST

START_TEST(free_with_live_watchers)
{
	struct ev_loop *l = ev_loop_new();
	struct ev_timer t[100];
	struct ev_io io;
	int p[2], i;

	ck_assert_ptr_nonnull(l);
	mkpipe(p);
	ck_assert_int_eq(ev_io_start(l, &io, p[0], EPOLLIN, rec_cb, NULL), 0);
	for (i = 0; i < 100; i++) {
		ev_timer_init(&t[i], trec_cb, NULL);
		ck_assert_int_eq(ev_timer_start(l, &t[i], 1000 + (uint64_t)i), 0);
	}
	ck_assert_int_eq(ev_defer(l, defer_note, (void *)&tags[0]), 0);
	/* Nothing runs on free; nothing leaks (LeakSanitizer would say). */
	ev_loop_free(l);
	ev_loop_free(NULL);
	ck_assert_str_eq(trail, "");
	closepair(p);
}
END_TEST

Suite *
suite_evloop(void)
{
	Suite *s = suite_create("evloop");
	TCase *io = tcase_create("io"), *tm = tcase_create("timers");
	TCase *df = tcase_create("defer"), *lp = tcase_create("loop");

	tcase_add_checked_fixture(io, setup, teardown);
	tcase_add_test(io, io_readable_level_triggered);
	tcase_add_test(io, io_writable_follows_buffer);
	tcase_add_test(io, io_modify_interest);
	tcase_add_test(io, io_start_refused);
	tcase_add_test(io, io_hangup);
	tcase_add_test(io, io_stop_self_in_callback);
	tcase_add_test(io, io_stop_others_in_batch);
	tcase_add_test(io, io_forget_then_close);
	tcase_add_test(io, io_restart_other_in_batch);
	tcase_add_test(io, io_more_than_one_batch);
	suite_add_tcase(s, io);

	tcase_add_checked_fixture(tm, setup, teardown);
	tcase_add_test(tm, timer_fires_once);
	tcase_add_test(tm, timer_order);
	tcase_add_test(tm, timer_restart);
	tcase_add_test(tm, timer_stop);
	tcase_add_test(tm, timer_stopped_by_other_callback);
	tcase_add_test(tm, timer_freed_in_callback);
	tcase_add_test(tm, timer_many);
	tcase_add_test(tm, timer_zero_rearm_yields);
	tcase_add_test(tm, now_is_cached_and_monotonic);
	suite_add_tcase(s, tm);

	tcase_add_checked_fixture(df, setup, teardown);
	tcase_add_test(df, defer_runs_after_batch);
	tcase_add_test(df, defer_order_and_nested);
	tcase_add_test(df, defer_many);
	tcase_add_test(df, defer_frees_stopped_watcher);
	tcase_add_test(df, defer_outside_loop);
	tcase_add_test(df, defer_once_per_batch);
	suite_add_tcase(s, df);

	tcase_add_checked_fixture(lp, setup, teardown);
	tcase_add_test(lp, run_once_waits);
	tcase_add_test(lp, run_once_interrupted);
	tcase_add_test(lp, run_until_break);
	tcase_add_test(lp, free_with_live_watchers);
	suite_add_tcase(s, lp);
	return s;
}
