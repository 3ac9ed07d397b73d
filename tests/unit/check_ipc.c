/* Unit tests for share/ipc.c (framing, fds, dispatch) and share/cursor.c. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "share/cursor.h"
#include "share/ipc.h"
#include "share/msg.h"
#include "tests/unit/suites.h"

static int sv[2];
static struct ipc_msg *msg;

static void
setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	msg = malloc(sizeof(*msg));
	ck_assert_ptr_nonnull(msg);
}

static void
teardown(void)
{
	close(sv[0]);
	close(sv[1]);
	free(msg);
}

/* Sends raw bytes as one record, bypassing ipc_send's checks. */
static void
send_raw(const void *p, size_t len)
{
	ck_assert_int_eq(send(sv[0], p, len, 0), (ssize_t)len);
}

START_TEST(roundtrip)
{
	const char payload[] = "hello";

	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 7, 42, payload, sizeof(payload), -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_uint_eq(msg->h.type, MSG_W_ACK);
	ck_assert_uint_eq(msg->h.seq, 7);
	ck_assert_uint_eq(msg->h.gen, 42);
	ck_assert_uint_eq(msg->h.len, sizeof(payload));
	ck_assert_int_eq(msg->fd, -1);
	ck_assert_mem_eq(msg->data, payload, sizeof(payload));
}
END_TEST

START_TEST(empty_queue_and_eof)
{
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	close(sv[0]);
	sv[0] = -1;
	ck_assert_int_eq(ipc_recv(sv[1], msg), 0);
}
END_TEST

START_TEST(fd_passing)
{
	int p[2];
	char c = 0;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_SNAP, 0, 3, NULL, 0, p[1]), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert(msg->h.flags & IPC_F_FD);
	ck_assert_int_ge(msg->fd, 0);
	ck_assert_int_ne(msg->fd, p[1]);
	ck_assert_int_eq(fcntl(msg->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(write(msg->fd, "x", 1), 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 'x');
	ipc_msg_close_fd(msg);
	ck_assert_int_eq(msg->fd, -1);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(oversize_refused)
{
	size_t big = IPC_MAX_PAYLOAD + 1;
	uint8_t *buf = calloc(1, sizeof(struct ipc_hdr) + big);
	struct ipc_hdr h = { MSG_W_ACK, 0, (uint32_t)big, 0, 0 };
	int one = 1 << 20;

	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 0, 0, buf, big, -1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	/* A peer that sends one anyway: the receiver sees MSG_TRUNC and refuses it. */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	memcpy(buf, &h, sizeof(h));
	send_raw(buf, sizeof(h) + big);
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	free(buf);
}
END_TEST

START_TEST(partial_records_refused)
{
	struct ipc_hdr h = { MSG_W_ACK, 0, 100, 0, 0 };
	uint8_t buf[sizeof(h) + 50];

	/* Shorter than a header. */
	send_raw(&h, 5);
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	/* A header announcing more payload than the record holds. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	send_raw(buf, sizeof(buf));
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	/* ... and less. */
	h.len = 10;
	memcpy(buf, &h, sizeof(h));
	send_raw(buf, sizeof(buf));
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	/* Unknown flag bits. */
	h.len = 0;
	h.flags = 0x8000;
	send_raw(&h, sizeof(h));
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	/* The channel still works after each refusal. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 0, 1, NULL, 0, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
}
END_TEST

/* An fd without the flag, or the flag without an fd, is refused and the fd closed. */
START_TEST(fd_flag_mismatch)
{
	struct ipc_hdr h = { MSG_W_ACK, 0, 0, 0, 0 };
	union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
	    .msg_controllen = sizeof(u.buf) };
	int p[2];
	char c;

	ck_assert_int_eq(pipe(p), 0);
	memset(&u, 0, sizeof(u));
	u.c.cmsg_level = SOL_SOCKET;
	u.c.cmsg_type = SCM_RIGHTS;
	u.c.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&u.c), &p[1], sizeof(int));
	ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof(h));
	close(p[1]);
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	/* The received copy was closed: the pipe's last writer is gone. */
	ck_assert_int_eq(read(p[0], &c, 1), 0);
	close(p[0]);
	h.flags = IPC_F_FD;
	send_raw(&h, sizeof(h));
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
}
END_TEST

/*
 * Found by tests/fuzz/fuzz_ipc: an empty record is what a closed peer's
 * recvmsg returns too, but one carrying an fd is a record, and the fd must
 * not stay open in the receiver (a control client could exhaust the
 * master's descriptors this way).
 */
START_TEST(empty_record_with_fd)
{
	union { struct cmsghdr c; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct iovec iov = { NULL, 0 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
	    .msg_controllen = sizeof(u.buf) };
	int p[2];
	char c;

	ck_assert_int_eq(pipe(p), 0);
	memset(&u, 0, sizeof(u));
	u.c.cmsg_level = SOL_SOCKET;
	u.c.cmsg_type = SCM_RIGHTS;
	u.c.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&u.c), &p[1], sizeof(int));
	ck_assert_int_eq(sendmsg(sv[0], &mh, 0), 0);
	close(p[1]);
	ck_assert_int_eq(ipc_recv(sv[1], msg), -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_int_eq(msg->fd, -1);
	/* The received copy was closed: the pipe's last writer is gone. */
	ck_assert_int_eq(read(p[0], &c, 1), 0);
	close(p[0]);
	/* The peer is still there: an empty record without an fd is not its end either way. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 0, 1, NULL, 0, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
}
END_TEST

static int handled;

static int
on_ack(void *ctx, struct ipc_msg *m)
{
	(void)ctx;
	(void)m;
	handled++;
	return 0;
}

static int
on_snap(void *ctx, struct ipc_msg *m)
{
	(void)ctx;
	handled++;
	ipc_msg_close_fd(m);
	return 0;
}

static const struct ipc_handler tab[] = {
	{ MSG_W_ACK, IPC_FD_NONE, 0, 4, on_ack },
	{ MSG_W_SNAP, IPC_FD_REQUIRED, 0, 0, on_snap },
};

START_TEST(dispatch_checks)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	handled = 0;
	/* Allowed. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 0, 0, "abcd", 4, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_int_eq(ipc_dispatch(tab, 2, NULL, msg), 0);
	/* Garbage type. */
	ck_assert_int_eq(ipc_send(sv[0], 0xbeef, 0, 0, NULL, 0, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_int_eq(ipc_dispatch(tab, 2, NULL, msg), -1);
	/* Too long for its type. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 0, 0, "abcde", 5, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_int_eq(ipc_dispatch(tab, 2, NULL, msg), -1);
	/* An fd on a type that must not carry one: refused and closed. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_ACK, 0, 0, NULL, 0, p[1]), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_int_eq(ipc_dispatch(tab, 2, NULL, msg), -1);
	ck_assert_int_eq(msg->fd, -1);
	/* A required fd missing. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_SNAP, 0, 0, NULL, 0, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_int_eq(ipc_dispatch(tab, 2, NULL, msg), -1);
	/* A required fd present. */
	ck_assert_int_eq(ipc_send(sv[0], MSG_W_SNAP, 0, 0, NULL, 0, p[1]), 0);
	ck_assert_int_eq(ipc_recv(sv[1], msg), 1);
	ck_assert_int_eq(ipc_dispatch(tab, 2, NULL, msg), 0);
	ck_assert_int_eq(handled, 2);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(cursor_roundtrip)
{
	uint8_t buf[64];
	char s[8];
	struct wbuf w;
	struct cur c;

	wb_init(&w, buf, sizeof(buf));
	wb_u8(&w, 0xab);
	wb_u16(&w, 0x1234);
	wb_u32(&w, 0xdeadbeef);
	wb_u64(&w, 0x0102030405060708ull);
	wb_str(&w, "host");
	ck_assert_int_eq(w.bad, 0);
	cur_init(&c, buf, w.len);
	ck_assert_uint_eq(cur_u8(&c), 0xab);
	ck_assert_uint_eq(cur_u16(&c), 0x1234);
	ck_assert_uint_eq(cur_u32(&c), 0xdeadbeef);
	ck_assert(cur_u64(&c) == 0x0102030405060708ull);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), 0);
	ck_assert_str_eq(s, "host");
	ck_assert_int_eq(cur_end(&c), 0);
	/* Little-endian on the wire. */
	ck_assert_uint_eq(buf[1], 0x34);
}
END_TEST

START_TEST(cursor_overrun_and_trailing)
{
	uint8_t buf[16] = { 0 };
	char s[4];
	struct wbuf w;
	struct cur c;

	/* Reading past the end sets bad and yields zeros from then on. */
	cur_init(&c, buf, 3);
	ck_assert_uint_eq(cur_u16(&c), 0);
	ck_assert_uint_eq(cur_u16(&c), 0);
	ck_assert_int_eq(c.bad, 1);
	ck_assert_uint_eq(cur_u8(&c), 0);
	ck_assert_int_eq(cur_end(&c), -1);
	/* Trailing bytes. */
	cur_init(&c, buf, 3);
	cur_u16(&c);
	ck_assert_int_eq(cur_end(&c), -1);
	/* A string longer than its destination. */
	wb_init(&w, buf, sizeof(buf));
	wb_str(&w, "toolong");
	cur_init(&c, buf, w.len);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), -1);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(cur_end(&c), -1);
	/* A string whose length runs past the buffer. */
	buf[0] = 200;
	buf[1] = 0;
	cur_init(&c, buf, 10);
	ck_assert_int_eq(cur_str(&c, s, sizeof(s)), -1);
	/* An embedded NUL. */
	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 3);
	wb_blob(&w, "a\0b", 3);
	cur_init(&c, buf, w.len);
	{
		char t[8];
		ck_assert_int_eq(cur_str(&c, t, sizeof(t)), -1);
	}
	/* The writer refuses to overflow. */
	wb_init(&w, buf, 4);
	wb_u64(&w, 1);
	ck_assert_int_eq(w.bad, 1);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_ptr_null(cur_blob(&c, 1000));
}
END_TEST

Suite *
suite_ipc(void)
{
	Suite *s = suite_create("ipc");
	TCase *tc = tcase_create("framing");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, roundtrip);
	tcase_add_test(tc, empty_queue_and_eof);
	tcase_add_test(tc, fd_passing);
	tcase_add_test(tc, oversize_refused);
	tcase_add_test(tc, partial_records_refused);
	tcase_add_test(tc, fd_flag_mismatch);
	tcase_add_test(tc, empty_record_with_fd);
	tcase_add_test(tc, dispatch_checks);
	suite_add_tcase(s, tc);
	tc = tcase_create("cursor");
	tcase_add_test(tc, cursor_roundtrip);
	tcase_add_test(tc, cursor_overrun_and_trailing);
	suite_add_tcase(s, tc);
	return s;
}
