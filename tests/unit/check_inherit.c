/*
 * Unit tests for master/inherit.c: FDNAME= names (both ways, refusals) and
 * the matching of received listening sockets on real sockets bound to
 * 127.0.0.1 and ::1: kind, worker and the socket's own address must agree.
 */
#include "config.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "master/inherit.h"
#include "share/msg.h"
#include "tests/unit/suites.h"

/* A socket on ip port 0, listening when listening is set; its "ip:port" in addr. */
static int
bound(int family, int listening, char *addr, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;

	ck_assert_int_ge(fd, 0);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		sl = sizeof(*s6);
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	}
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, sl), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 8), 0);
	sl = sizeof(ss);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	if (family == AF_INET)
		snprintf(addr, len, "127.0.0.1:%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	else
		snprintf(addr, len, "[::1]:%u", ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	return fd;
}

START_TEST(fdname_round_trip)
{
	char name[INHERIT_NAME_MAX + 1], addr[INHERIT_ADDR_MAX + 1];
	uint32_t kind, worker;

	ck_assert_int_eq(inherit_fdname(LISTENER_HTTP, 3, "127.0.0.1:8080", name, sizeof(name)), 0);
	ck_assert_str_eq(name, "http-3-127.0.0.1_8080");
	ck_assert_ptr_null(strchr(name, ':'));
	ck_assert_int_eq(inherit_parse_fdname(name, &kind, &worker, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(kind, LISTENER_HTTP);
	ck_assert_uint_eq(worker, 3);
	ck_assert_str_eq(addr, "127.0.0.1:8080");

	ck_assert_int_eq(inherit_fdname(LISTENER_HTTPS, 255, "[2001:db8::1]:443", name,
	    sizeof(name)), 0);
	ck_assert_str_eq(name, "https-255-[2001_db8__1]_443");
	ck_assert_int_eq(inherit_parse_fdname(name, &kind, &worker, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(kind, LISTENER_HTTPS);
	ck_assert_uint_eq(worker, 255);
	ck_assert_str_eq(addr, "[2001:db8::1]:443");

	/* The metrics and tunnel listeners go through systemd's store too. */
	ck_assert_int_eq(inherit_fdname(LISTENER_METRICS, 0, "127.0.0.1:9100", name,
	    sizeof(name)), 0);
	ck_assert_str_eq(name, "metrics-0-127.0.0.1_9100");
	ck_assert_int_eq(inherit_parse_fdname(name, &kind, &worker, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(kind, LISTENER_METRICS);
	ck_assert_int_eq(inherit_fdname(LISTENER_TUNNEL, 0, "0.0.0.0:8443", name, sizeof(name)), 0);
	ck_assert_str_eq(name, "tunnel-0-0.0.0.0_8443");
	ck_assert_int_eq(inherit_parse_fdname(name, &kind, &worker, addr, sizeof(addr)), 0);
	ck_assert_uint_eq(kind, LISTENER_TUNNEL);
}
END_TEST

START_TEST(fdname_refusals)
{
	char name[INHERIT_NAME_MAX + 1], addr[INHERIT_ADDR_MAX + 1], small[8];
	uint32_t kind, worker;

	ck_assert_int_eq(inherit_fdname(0, 0, "127.0.0.1:80", name, sizeof(name)), -1);
	ck_assert_int_eq(inherit_fdname(99, 0, "127.0.0.1:80", name, sizeof(name)), -1);
	ck_assert_int_eq(inherit_fdname(LISTENER_HTTP, 0, "a_b:80", name, sizeof(name)), -1);
	ck_assert_int_eq(inherit_fdname(LISTENER_HTTP, 0, "127.0.0.1:80", small, sizeof(small)),
	    -1);
	ck_assert_int_eq(inherit_parse_fdname("stored", &kind, &worker, addr, sizeof(addr)), -1);
	ck_assert_int_eq(inherit_parse_fdname("ftp-0-1.2.3.4_21", &kind, &worker, addr,
	    sizeof(addr)), -1);
	ck_assert_int_eq(inherit_parse_fdname("http-x-1.2.3.4_80", &kind, &worker, addr,
	    sizeof(addr)), -1);
	ck_assert_int_eq(inherit_parse_fdname("http-2000-1.2.3.4_80", &kind, &worker, addr,
	    sizeof(addr)), -1);
	ck_assert_int_eq(inherit_parse_fdname("http-0-1.2.3.4_80", &kind, &worker, small,
	    sizeof(small)), -1);
}
END_TEST

START_TEST(take_matches_kind_worker_address)
{
	char a4[64], a6[64], other[64];
	struct inherit h;
	int fd4, fd6, fdo, got;

	inherit_init(&h);
	fd4 = bound(AF_INET, 1, a4, sizeof(a4));
	fd6 = bound(AF_INET6, 1, a6, sizeof(a6));
	fdo = bound(AF_INET, 1, other, sizeof(other));
	close(fdo);	/* a port nobody holds now */
	ck_assert_int_eq(inherit_add(&h, LISTENER_HTTP, 1, a4, fd4), 0);
	ck_assert_int_eq(inherit_add(&h, LISTENER_HTTPS, 0, a6, fd6), 0);

	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTPS, a4, 1), -1);	/* kind */
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, a4, 0), -1);	/* worker */
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, other, 1), -1);	/* address */
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, "not an address", 1), -1);
	ck_assert_int_eq(inherit_take(NULL, LISTENER_HTTP, a4, 1), -1);
	got = inherit_take(&h, LISTENER_HTTP, a4, 1);
	ck_assert_int_eq(got, fd4);
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, a4, 1), -1);	/* taken once */
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTPS, a6, 0), fd6);
	ck_assert_uint_eq(inherit_close_rest(&h), 0);
	close(fd4);
	close(fd6);
}
END_TEST

START_TEST(take_checks_the_socket_itself)
{
	char a[64], b[64];
	struct inherit h;
	int fa, fb, fq;

	inherit_init(&h);
	fa = bound(AF_INET, 1, a, sizeof(a));
	fb = bound(AF_INET, 1, b, sizeof(b));
	fq = bound(AF_INET, 0, b + 32, 32);	/* bound, not listening */
	/* The name says b, the socket is bound to a: a stale name never wins. */
	ck_assert_int_eq(inherit_add(&h, LISTENER_HTTP, 0, b, fa), 0);
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, b, 0), -1);
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, a, 0), -1);
	ck_assert_int_eq(inherit_add(&h, LISTENER_HTTP, 1, b + 32, fq), 0);
	ck_assert_int_eq(inherit_take(&h, LISTENER_HTTP, b + 32, 1), -1);
	/* What was not taken is closed. */
	ck_assert_uint_eq(inherit_close_rest(&h), 2);
	ck_assert_int_eq(fcntl(fa, F_GETFD), -1);
	ck_assert_int_eq(fcntl(fq, F_GETFD), -1);
	ck_assert_ptr_null(h.v);
	close(fb);
}
END_TEST

START_TEST(add_bounds)
{
	char longaddr[INHERIT_ADDR_MAX + 8];
	struct inherit h;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inherit_init(&h);
	memset(longaddr, '1', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	ck_assert_int_eq(inherit_add(&h, LISTENER_HTTP, 0, longaddr, fd), -1);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);	/* closed on refusal */
	ck_assert_uint_eq(h.n, 0);
	ck_assert_uint_eq(inherit_close_rest(&h), 0);
}
END_TEST

Suite *
suite_inherit(void)
{
	Suite *s = suite_create("inherit");
	TCase *tc = tcase_create("inherit");

	tcase_add_test(tc, fdname_round_trip);
	tcase_add_test(tc, fdname_refusals);
	tcase_add_test(tc, take_matches_kind_worker_address);
	tcase_add_test(tc, take_checks_the_socket_itself);
	tcase_add_test(tc, add_bounds);
	suite_add_tcase(s, tc);
	return s;
}
