/*
 * Unit tests for worker/dial.c: a unix backend is dialled at its path
 * (non-blocking, close-on-exec), a tunnel backend at the hop the worker was
 * given, and the failures carry the errno passive health reads (ENOENT for
 * a missing socket or no hop, ECONNREFUSED for a dead listener).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "master/snapbuild.h"
#include "share/snap.h"
#include "tests/unit/suites.h"
#include "worker/balance.h"
#include "worker/dial.h"

static char dir[64];
static char path[128];
static char hop[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_dial.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/app.sock", dir);
	snprintf(hop, sizeof(hop), "%s/tunnel.sock", dir);
}

static void
teardown(void)
{
	unlink(path);
	unlink(hop);
	rmdir(dir);
}

/* A listening unix socket at p. */
static int
listen_at(const char *p)
{
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(su.sun_path, sizeof(su.sun_path), "%s", p);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&su, sizeof(su)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

/* One route with a unix backend (index 0) and a tunnel backend (index 1). */
static struct snap *
kinds_snap(void)
{
	struct snapb_route r = { .id = 1, .name = "a.example.com", .be_first = 0, .be_count = 2 };
	struct snapb_host h = { 1, "a.example.com", 0, SNAP_HOST_EXACT, NULL };
	struct snapb_backend b[2] = {
		{ 5, AF_UNIX, 0, { 0 }, 0, path },
		{ 6, AF_UNSPEC, 0, { 0 }, SNAP_BACKEND_TUNNEL, "office" },
	};
	struct snapb_input in = { .routes = &r, .nroutes = 1, .hosts = &h, .nhosts = 1,
	    .backends = b, .nbackends = 2, .default_route = SNAP_NONE, .generation = 1 };
	char err[256] = "";
	struct snap *s;
	int fd;

	ck_assert_msg(snapb_build(&in, &fd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(snap_map(fd, &s, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	return s;
}

START_TEST(unix_backend_connects)
{
	struct snap *s = kinds_snap();
	int lfd = listen_at(path), fd, pending = 7, afd;

	fd = dial_backend(s, snap_backend_at(s, 0), "", &pending);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pending, 0);	/* a unix connect completes at once */
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_ne(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	{
		char c = 0;
		ck_assert_int_eq(read(afd, &c, 1), 1);
		ck_assert_int_eq(c, 'x');
	}
	close(afd);
	close(fd);
	close(lfd);
	snap_unref(s);
}
END_TEST

START_TEST(unix_backend_failures)
{
	struct snap *s = kinds_snap();
	int pending, lfd;

	/* No socket file: ENOENT, which passive health counts as the backend's fault. */
	errno = 0;
	ck_assert_int_eq(dial_backend(s, snap_backend_at(s, 0), "", &pending), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(balance_backend_fault(ENOENT), 1);
	/* A file nobody listens on any more: ECONNREFUSED, as for TCP. */
	lfd = listen_at(path);
	close(lfd);
	ck_assert_int_eq(dial_backend(s, snap_backend_at(s, 0), "", &pending), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	snap_unref(s);
}
END_TEST

START_TEST(tunnel_goes_to_the_hop)
{
	struct snap *s = kinds_snap();
	struct dial_target t;
	int lfd, fd, pending, afd;

	/* No hop configured (listen_tunnel unset): ENOENT before any socket. */
	ck_assert_int_eq(dial_target_of(s, snap_backend_at(s, 1), "", &t), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(dial_backend(s, snap_backend_at(s, 1), hop, &pending), -1);
	ck_assert_int_eq(errno, ENOENT);
	lfd = listen_at(hop);
	ck_assert_int_eq(dial_target_of(s, snap_backend_at(s, 1), hop, &t), 0);
	ck_assert_int_eq(t.ss.ss_family, AF_UNIX);
	ck_assert_str_eq(((struct sockaddr_un *)&t.ss)->sun_path, hop);
	fd = dial_connect(&t, &pending);
	ck_assert_int_ge(fd, 0);
	afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	close(afd);
	close(fd);
	close(lfd);
	snap_unref(s);
}
END_TEST

Suite *
suite_dial(void)
{
	Suite *s = suite_create("dial");
	TCase *tc = tcase_create("unix");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unix_backend_connects);
	tcase_add_test(tc, unix_backend_failures);
	tcase_add_test(tc, tunnel_goes_to_the_hop);
	suite_add_tcase(s, tc);
	return s;
}
