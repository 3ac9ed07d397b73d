/*
 * libFuzzer harness: the control commands as the master decodes and runs
 * them (master/control.c, master/cmdtable.c and the handlers in
 * master/commands.c, certcmds.c, acmequeue.c) on the fixture's master: a
 * real store in a temporary folder, the keyring, no workers, the real
 * control socket. Each input is one haloyd-ctl connection: HELLO, then
 * records, each one request:
 *
 *	u16 type; u16 len (little-endian); len payload bytes
 *
 * sent with ipc_send; the master's loop turns until the reply is complete
 * (C_OK, C_FAIL or C_END) or the master closed the connection. The store
 * keeps what earlier inputs did (routes, certificates), as a daemon would.
 * Not sent: `reload` (an empty request that re-reads haloyd.conf, as SIGHUP
 * does; the fixture's configuration is not one conf.c loaded).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "tests/fuzz/fuzzmaster.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CTL_TURNS 200	/* loop turns a reply may take (none waits: no workers) */

static struct master m;
static struct ipc_msg *rx;
static struct sockaddr_un addr = { .sun_family = AF_UNIX };

/* 1 when the reply to the current request is complete, -1 when the master closed. */
static int
ctl_reply_done(int fd)
{
	int n;

	while ((n = ipc_recv(fd, rx)) == 1) {
		ipc_msg_close_fd(rx);
		if (rx->h.type == MSG_C_OK || rx->h.type == MSG_C_FAIL || rx->h.type == MSG_C_END ||
		    rx->h.type == MSG_HELLO)
			return 1;
	}
	return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
}

/* Turns the master's loop until the reply came; 0, or -1 when the connection is over. */
static int
ctl_wait(int fd)
{
	int i, r = 0;

	for (i = 0; i < CTL_TURNS && r == 0; i++) {
		if (ev_run_once(m.loop, 0) == -1)
			return -1;
		r = ctl_reply_done(fd);
	}
	return r == 1 ? 0 : -1;
}

static int
ctl_connect(void)
{
	struct msg_hello h = { HALOYD_PROTO_VERSION, ROLE_CTL, 0, (uint32_t)getpid() };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		abort();
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
	    ipc_send(fd, MSG_HELLO, 0, 0, &h, sizeof(h), -1) == -1 || ctl_wait(fd) == -1) {
		fprintf(stderr, "fuzz_ctl: the control socket does not answer HELLO\n");
		abort();
	}
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	if ((rx = malloc(sizeof(*rx))) == NULL)
		abort();
	fuzzmaster_init(&m, 0, 1);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", m.cfg.runtime_dir,
	    HALOYD_CONTROL_SOCKET);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = ctl_connect();
	uint32_t seq = 1;

	while (size >= 4) {
		uint16_t type = (uint16_t)(data[0] | data[1] << 8);
		size_t len = (size_t)(data[2] | data[3] << 8);

		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		if (type == MSG_C_RELOAD)
			type = MSG_C_STATUS;
		if (ipc_send(fd, type, seq++, 0, data, len, -1) == -1 || ctl_wait(fd) == -1)
			break;
		data += len;
		size -= len;
	}
	close(fd);
	/* The master sees the close and frees the client. */
	fuzzmaster_settle(&m, 4);
	return 0;
}
