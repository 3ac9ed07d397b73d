/*
 * haloyd-ctl's conversation with the master: connect to the control socket,
 * HELLO both ways, one request (seq 1), then its answer. Every wait is
 * bounded by CTL_TIMEOUT_MS and every answer is decoded with the cursor;
 * whatever goes wrong ends as one line on stderr and an enum ctl_code.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/cmdline.h"
#include "ctl/ctl.h"
#include "ctl/output.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/util.h"

#define CTL_SEQ 1	/* the one request of this connection */

struct ctl {
	struct cmdline cmd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
	int fd;
	struct ipc_msg msg;
	struct output_rows rows;
};

static int
ctl_fail(struct ctl *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reports a failure (stderr, and stdout with --json); returns code. */
static int
ctl_fail(struct ctl *c, int code, const char *fmt, ...)
{
	char reason[MSG_STR_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	output_fail(stdout, stderr, c->cmd.json, code, reason);
	return code;
}

/* -s, else $HALOYD_CONTROL, else the packaged default. */
static void
ctl_socket_path(struct ctl *c)
{
	const char *env = getenv("HALOYD_CONTROL");

	if (c->cmd.socket != NULL)
		util_strlcpy(c->path, c->cmd.socket, sizeof(c->path));
	else if (env != NULL && env[0] != '\0')
		util_strlcpy(c->path, env, sizeof(c->path));
	else
		snprintf(c->path, sizeof(c->path), "%s/%s", HALOYD_DEFAULT_RUNTIME_DIR,
		    HALOYD_CONTROL_SOCKET);
}

static int
ctl_connect(struct ctl *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(c->path) >= sizeof(sun.sun_path))
		return ctl_fail(c, CTL_ECONNECT, "cannot reach haloyd at %.200s...: the path is too long",
		    c->path);
	util_strlcpy(sun.sun_path, c->path, sizeof(sun.sun_path));
	if ((c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return ctl_fail(c, CTL_EFAIL, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return CTL_OK;
	if (errno == EACCES || errno == EPERM)
		return ctl_fail(c, CTL_EPERM, "permission denied: join the %s group",
		    HALOYD_DEFAULT_ADMIN_GROUP);
	return ctl_fail(c, CTL_ECONNECT, "cannot reach haloyd at %s: %s (is it running?)", c->path,
	    strerror(errno));
}

/* Waits for fd to be ready until deadline; -1 with ETIMEDOUT when it passed. */
static int
ctl_wait(struct ctl *c, short events, uint64_t deadline)
{
	struct pollfd pfd = { c->fd, events, 0 };
	uint64_t now = util_now_ms();

	if (now >= deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (poll(&pfd, 1, (int)(deadline - now)) == -1 && errno != EINTR)
		return -1;
	return 0;
}

static int
ctl_send(struct ctl *c, uint16_t type, uint32_t seq, const void *p, size_t len, int fd)
{
	uint64_t deadline = util_now_ms() + CTL_TIMEOUT_MS;

	while (ipc_send(c->fd, type, seq, 0, p, len, fd) == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (ctl_wait(c, POLLOUT, deadline) == -1)
			return -1;
	}
	return 0;
}

/*
 * One message into c->msg: 1, 0 when the daemon closed, -1 with errno
 * (ETIMEDOUT, EBADMSG, ...). When the daemon closes with our message unread
 * the kernel reports ECONNRESET once, ahead of what it had queued for us
 * (a refusal), so that error is passed over once.
 */
static int
ctl_recv(struct ctl *c)
{
	uint64_t deadline = util_now_ms() + CTL_TIMEOUT_MS;
	int n, resets = 0;

	for (;;) {
		if ((n = ipc_recv(c->fd, &c->msg)) >= 0)
			return n;
		if (errno == ECONNRESET && resets++ == 0)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (ctl_wait(c, POLLIN, deadline) == -1)
			return -1;
	}
}

/* Why no answer came, as a failure. */
static int
ctl_lost(struct ctl *c, int n)
{
	if (n == 0)
		return ctl_fail(c, CTL_EFAIL, "haloyd closed the connection without an answer");
	if (errno == ETIMEDOUT)
		return ctl_fail(c, CTL_ETIMEDOUT, "no answer from haloyd within %d s",
		    CTL_TIMEOUT_MS / 1000);
	if (errno == EBADMSG)
		return ctl_fail(c, CTL_EFAIL, "malformed answer from haloyd");
	return ctl_fail(c, CTL_EFAIL, "lost the connection to haloyd: %s", strerror(errno));
}

/* MSG_C_FAIL: u32 code; str reason. */
static int
ctl_reply_fail(struct ctl *c)
{
	char reason[MSG_STR_MAX + 1];
	struct cur cu;
	uint32_t code;

	cur_init(&cu, c->msg.data, c->msg.h.len);
	code = cur_u32(&cu);
	if (cur_str(&cu, reason, sizeof(reason)) == -1 || cur_end(&cu) == -1)
		return ctl_fail(c, CTL_EFAIL, "malformed answer from haloyd");
	if (code == CTL_OK || code > CTL_ETIMEDOUT)
		code = CTL_EFAIL;
	if (reason[0] == '\0')
		return ctl_fail(c, (int)code, "haloyd refused (code %u)", (unsigned)code);
	return ctl_fail(c, (int)code, "%s", reason);
}

static int
ctl_hello(struct ctl *c)
{
	struct msg_hello h = { HALOYD_PROTO_VERSION, ROLE_CTL, 0, (uint32_t)getpid() };
	int n;

	/*
	 * A refused peer gets FAIL and a close, possibly before our HELLO is
	 * out: whatever the send did, the answer says why.
	 */
	(void)ctl_send(c, MSG_HELLO, 0, &h, sizeof(h), -1);
	if ((n = ctl_recv(c)) != 1)
		return ctl_lost(c, n);
	ipc_msg_close_fd(&c->msg);
	if (c->msg.h.type == MSG_C_FAIL)
		return ctl_reply_fail(c);
	if (c->msg.h.type != MSG_HELLO || c->msg.h.len != sizeof(h))
		return ctl_fail(c, CTL_EFAIL, "unexpected answer from haloyd (message type %u)",
		    c->msg.h.type);
	memcpy(&h, c->msg.data, sizeof(h));
	if (h.proto != HALOYD_PROTO_VERSION)
		return ctl_fail(c, CTL_EFAIL, "haloyd speaks protocol %u, haloyd-ctl %u: "
		    "use the haloyd-ctl of the same version", h.proto, HALOYD_PROTO_VERSION);
	return CTL_OK;
}

/* MSG_C_OK: h.gen; str message. */
static int
ctl_reply_ok(struct ctl *c)
{
	char message[MSG_STR_MAX + 1];
	struct cur cu;

	cur_init(&cu, c->msg.data, c->msg.h.len);
	if (cur_str(&cu, message, sizeof(message)) == -1 || cur_end(&cu) == -1)
		return ctl_fail(c, CTL_EFAIL, "malformed answer from haloyd");
	if (c->cmd.shape == OUTPUT_LINES)
		output_ok_lines(stdout, c->cmd.json, c->msg.h.gen, message, &c->rows);
	else
		output_ok(stdout, c->cmd.json, c->msg.h.gen, message);
	return CTL_OK;
}

/* Sends the request and reads ROW* END, OK or FAIL. */
static int
ctl_request(struct ctl *c)
{
	int n, sent;

	sent = ctl_send(c, c->cmd.type, CTL_SEQ, c->cmd.payload, c->cmd.len, c->cmd.send_fd);
	/* A cert import carries a private key: it does not outlive the send. */
	explicit_bzero(c->cmd.payload, c->cmd.len);
	if (sent == -1)
		return ctl_fail(c, CTL_EFAIL, "cannot send to haloyd: %s", strerror(errno));
	for (;;) {
		if ((n = ctl_recv(c)) != 1)
			return ctl_lost(c, n);
		if (c->msg.fd >= 0 || c->msg.h.seq != CTL_SEQ) {
			ipc_msg_close_fd(&c->msg);
			return ctl_fail(c, CTL_EFAIL, "malformed answer from haloyd");
		}
		switch (c->msg.h.type) {
		case MSG_C_ROW:
			if (output_rows_add(&c->rows, c->msg.data, c->msg.h.len) == -1)
				return ctl_fail(c, CTL_EFAIL, "malformed row from haloyd");
			break;
		case MSG_C_END:
			output_rows_print(stdout, c->cmd.json, c->cmd.shape, &c->rows);
			return CTL_OK;
		case MSG_C_OK:
			return ctl_reply_ok(c);
		case MSG_C_FAIL:
			return ctl_reply_fail(c);
		default:
			return ctl_fail(c, CTL_EFAIL, "unexpected answer from haloyd (message type %u)",
			    c->msg.h.type);
		}
	}
}

static int
ctl_run(struct ctl *c, int argc, char *argv[])
{
	int rc;

	if (argc < 2) {
		cmdline_usage(stderr);
		return CTL_EUSAGE;
	}
	if ((rc = cmdline_parse(&c->cmd, argc, argv)) != CTL_OK)
		return ctl_fail(c, rc, "%s", c->cmd.error);
	if (c->cmd.action == CMDLINE_HELP) {
		cmdline_usage(stdout);
		return CTL_OK;
	}
	if (c->cmd.action == CMDLINE_VERSION) {
		printf("haloyd-ctl %s\n", PACKAGE_VERSION);
		return CTL_OK;
	}
	ctl_socket_path(c);
	if ((rc = ctl_connect(c)) != CTL_OK || (rc = ctl_hello(c)) != CTL_OK)
		return rc;
	return ctl_request(c);
}

int
ctl_main(int argc, char *argv[])
{
	struct ctl *c;
	int rc;

	/* 64 KiB message buffer and request: on the heap, not the stack. */
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		fputs("haloyd-ctl: out of memory\n", stderr);
		return CTL_EFAIL;
	}
	c->fd = -1;
	c->cmd.send_fd = -1;
	rc = ctl_run(c, argc, argv);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "haloyd-ctl: cannot write the answer: %s\n", strerror(errno));
		if (rc == CTL_OK)
			rc = CTL_EFAIL;
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->cmd.send_fd >= 0)
		close(c->cmd.send_fd);
	output_rows_free(&c->rows);
	free(c);
	return rc;
}
