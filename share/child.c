/* Signals and the HELLO handshake of a child of the master (see child.h). */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "share/child.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

int
child_signalfd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	sigdelset(&set, SIGHUP);
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	return fd;
}

void
child_hello(int parent, uint32_t role, uint32_t index)
{
	struct msg_hello h = { HALOYD_PROTO_VERSION, role, index, (uint32_t)getpid() };

	if (util_set_nonblock(parent) == -1 || util_set_cloexec(parent, 1) == -1)
		fatal("master socket");
	if (ipc_send(parent, MSG_HELLO, 0, 0, &h, sizeof(h), -1) == -1)
		fatal("HELLO to the master");
}

int
child_on_hello(void *arg, struct ipc_msg *m)
{
	struct msg_hello h;

	(void)arg;
	memcpy(&h, m->data, sizeof(h));
	if (h.proto != HALOYD_PROTO_VERSION || h.role != ROLE_MASTER)
		fatalx("master speaks protocol %u role %u", h.proto, h.role);
	return 0;
}
