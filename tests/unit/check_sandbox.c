/*
 * Unit tests for share/sandbox.c: every role's filter builds, and loaded in a
 * forked child it lets the role's calls through and kills the process with
 * SIGSYS on the rest (argument filters included).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "share/sandbox.h"
#include "tests/unit/suites.h"

enum probe {
	PROBE_NOTHING,		/* exits 0 under the filter */
	PROBE_INET_SOCKET,	/* socket(AF_INET): allowed, exits 0 */
	PROBE_READ_OPEN,	/* openat O_RDONLY: allowed, exits 0 */
	PROBE_PACKET_SOCKET,	/* socket(AF_PACKET): no role */
	PROBE_WRITE_OPEN,	/* openat O_WRONLY|O_CREAT: not the worker */
	PROBE_EXEC_MMAP,	/* executable memory: no role */
	PROBE_EXECVE,		/* no role */
	PROBE_FORK,		/* a new process: no role */
	PROBE_CLONE3,		/* ENOSYS in the ACME child, so glibc uses clone */
	PROBE_VIOLATE,		/* the test hook */
	PROBE_CURL,		/* libcurl with its resolver thread: connection refused, exits 0 */
	PROBE_DNS,		/* the stub resolver's calls on a loopback UDP pair, exits 0 */
	PROBE_ACCEPT,		/* accept4 on a closed fd: EBADF, exits 0 */
	PROBE_CONNECT,		/* connect on a closed fd: EBADF, exits 0 (not the tunnel process) */
};

/* What glibc's res_send does with its UDP socket, against a loopback peer. */
static int
probe_dns(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char q1[] = "query-a", q2[] = "query-aaaa", buf[64];
	struct iovec iov[2] = { { q1, sizeof(q1) }, { q2, sizeof(q2) } };
	struct mmsghdr mm[2];
	int srv, cli, pending = 0;

	memset(mm, 0, sizeof(mm));
	mm[0].msg_hdr.msg_iov = &iov[0];
	mm[0].msg_hdr.msg_iovlen = 1;
	mm[1].msg_hdr.msg_iov = &iov[1];
	mm[1].msg_hdr.msg_iovlen = 1;
	if ((srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(srv, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    getsockname(srv, (struct sockaddr *)&a, &alen) == -1 ||
	    (cli = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(cli, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    sendmmsg(cli, mm, 2, MSG_NOSIGNAL) != 2 ||
	    recvfrom(srv, buf, sizeof(buf), 0, NULL, NULL) != (ssize_t)sizeof(q1) ||
	    ioctl(srv, FIONREAD, &pending) == -1)
		return 2;
	return pending == (int)sizeof(q2) ? 0 : 2;
}

/*
 * What the ACME child's libcurl does for a name: the threaded resolver (a
 * thread: clone with CLONE_THREAD after clone3's ENOSYS), its wake-up
 * socketpair, poll, a TCP connect. Port 1 on loopback refuses.
 */
static int
probe_curl(void)
{
	CURL *c = curl_easy_init();
	CURLcode rc;

	if (c == NULL)
		return 2;
	curl_easy_setopt(c, CURLOPT_URL, "http://localhost:1/");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	return rc == CURLE_COULDNT_CONNECT ? 0 : 2;
}

static int
probe_run(enum probe p)
{
	char *const argv[] = { NULL };
	void *mem;
	int fd;

	switch (p) {
	case PROBE_NOTHING:
		return 0;
	case PROBE_INET_SOCKET:
		fd = socket(AF_INET, SOCK_STREAM, 0);
		return fd >= 0 && close(fd) == 0 ? 0 : 2;
	case PROBE_READ_OPEN:
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return fd >= 0 && close(fd) == 0 ? 0 : 2;
	case PROBE_PACKET_SOCKET:
		fd = socket(AF_PACKET, SOCK_RAW, 0);
		return 3;
	case PROBE_WRITE_OPEN:
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		return 3;
	case PROBE_EXEC_MMAP:
		mem = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		(void)mem;
		return 3;
	case PROBE_EXECVE:
		execve("/nonexistent", argv, argv);
		return 3;
	case PROBE_FORK:
		if (fork() == 0)
			_exit(0);
		return 3;
	case PROBE_CLONE3:
		return syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS ? 0 : 2;
	case PROBE_CURL:
		return probe_curl();
	case PROBE_DNS:
		return probe_dns();
	case PROBE_ACCEPT:
		return accept4(-1, NULL, NULL, SOCK_CLOEXEC) == -1 && errno == EBADF ? 0 : 2;
	case PROBE_CONNECT:
		return connect(-1, NULL, 0) == -1 && errno == EBADF ? 0 : 2;
	case PROBE_VIOLATE:
#ifdef HALOYD_TESTING
		sandbox_test_violate();
#endif
		return 3;
	}
	return 4;
}

/* The status of a child that entered role's sandbox and ran the probe. */
static int
probe_status(enum sandbox_role role, enum probe p)
{
	pid_t pid;
	int status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* As acme_setup does before the filter. */
		if (p == PROBE_CURL && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
			_exit(1);
		if (sandbox_enter(role) == -1)
			_exit(1);
		_exit(probe_run(p));
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void
assert_allowed(enum sandbox_role role, enum probe p)
{
	int st = probe_status(role, p);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s probe %d: status %#x",
	    sandbox_role_name(role), (int)p, st);
}

static void
assert_killed(enum sandbox_role role, enum probe p)
{
	int st = probe_status(role, p);

	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "%s probe %d: status %#x",
	    sandbox_role_name(role), (int)p, st);
}

START_TEST(test_every_role_builds)
{
	int r;

	for (r = 0; r < SANDBOX_NROLES; r++) {
		ck_assert_int_eq(sandbox_check((enum sandbox_role)r), 0);
		ck_assert_str_ne(sandbox_role_name((enum sandbox_role)r), "?");
	}
	ck_assert_str_eq(sandbox_role_name(SANDBOX_WORKER), "worker");
	ck_assert_str_eq(sandbox_role_name(SANDBOX_ACME), "acme");
	ck_assert_str_eq(sandbox_role_name(SANDBOX_TUNNEL), "tunnel");
	ck_assert_int_eq(sandbox_check(SANDBOX_TUNNEL), 0);
	ck_assert_int_eq(sandbox_check(SANDBOX_NROLES), -1);
	ck_assert_int_eq(sandbox_enter(SANDBOX_NROLES), -1);
}
END_TEST

START_TEST(test_worker_filter)
{
	assert_allowed(SANDBOX_WORKER, PROBE_NOTHING);
	assert_allowed(SANDBOX_WORKER, PROBE_INET_SOCKET);
	assert_allowed(SANDBOX_WORKER, PROBE_READ_OPEN);
	assert_killed(SANDBOX_WORKER, PROBE_PACKET_SOCKET);
	assert_killed(SANDBOX_WORKER, PROBE_WRITE_OPEN);
	assert_killed(SANDBOX_WORKER, PROBE_EXEC_MMAP);
	assert_killed(SANDBOX_WORKER, PROBE_EXECVE);
	assert_killed(SANDBOX_WORKER, PROBE_FORK);
}
END_TEST

START_TEST(test_acme_filter)
{
	assert_allowed(SANDBOX_ACME, PROBE_NOTHING);
	assert_allowed(SANDBOX_ACME, PROBE_INET_SOCKET);
	assert_allowed(SANDBOX_ACME, PROBE_READ_OPEN);
	assert_allowed(SANDBOX_ACME, PROBE_CLONE3);
	assert_allowed(SANDBOX_ACME, PROBE_CURL);
	assert_allowed(SANDBOX_ACME, PROBE_DNS);
	assert_killed(SANDBOX_ACME, PROBE_PACKET_SOCKET);
	assert_killed(SANDBOX_ACME, PROBE_EXEC_MMAP);
	assert_killed(SANDBOX_ACME, PROBE_EXECVE);
	assert_killed(SANDBOX_ACME, PROBE_FORK);
}
END_TEST

/* It accepts (agents, the hop) and reads error pages; it dials nothing. */
START_TEST(test_tunnel_filter)
{
	assert_allowed(SANDBOX_TUNNEL, PROBE_NOTHING);
	assert_allowed(SANDBOX_TUNNEL, PROBE_ACCEPT);
	assert_allowed(SANDBOX_TUNNEL, PROBE_READ_OPEN);
	assert_killed(SANDBOX_TUNNEL, PROBE_CONNECT);
	assert_killed(SANDBOX_TUNNEL, PROBE_INET_SOCKET);
	assert_killed(SANDBOX_TUNNEL, PROBE_PACKET_SOCKET);
	assert_killed(SANDBOX_TUNNEL, PROBE_WRITE_OPEN);
	assert_killed(SANDBOX_TUNNEL, PROBE_EXEC_MMAP);
	assert_killed(SANDBOX_TUNNEL, PROBE_EXECVE);
	assert_killed(SANDBOX_TUNNEL, PROBE_FORK);
}
END_TEST

#ifdef HALOYD_TESTING
START_TEST(test_violate_hook_kills)
{
	int r;

	for (r = 0; r < SANDBOX_NROLES; r++)
		assert_killed((enum sandbox_role)r, PROBE_VIOLATE);
}
END_TEST
#endif

Suite *
suite_sandbox(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_every_role_builds);
	tcase_add_test(tc, test_worker_filter);
	tcase_add_test(tc, test_acme_filter);
	tcase_add_test(tc, test_tunnel_filter);
#ifdef HALOYD_TESTING
	tcase_add_test(tc, test_violate_hook_kills);
#endif
	suite_add_tcase(s, tc);
	return s;
}
