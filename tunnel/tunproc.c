/*
 * The tunnel process (see tunproc.h): a worker with a role of its own. Its
 * messages (MSG_T_CONFIG: the listener's TLS material and PING times;
 * MSG_T_START: its seccomp filter goes in; MSG_T_LIST_REQ), its step for the hop's requests, its stop (GOAWAY to
 * every agent, streams in flight finish).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/ssl.h>

#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/sealed.h"
#include "share/util.h"
#include "tunnel/hop.h"
#include "tunnel/tunlist.h"
#include "tunnel/tunproc.h"
#include "tunnel/tuntls.h"
#include "worker/context.h"
#include "worker/upstream.h"
#include "worker/worker.h"

/* The master's files: the listener's context from them, the mapping (key included) gone at once. */
static int
tunnel_on_config(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	struct tunnel_ctx *t = w->role_ctx;
	struct msg_tconfig tc;
	const void *p;
	size_t len;
	char err[256];
	SSL_CTX *ctx;

	memcpy(&tc, m->data, sizeof(tc));
	if ((uint64_t)tc.ca_len + tc.cert_len + tc.key_len > 3 * MSG_TCONFIG_FILE_MAX ||
	    sealed_map(m->fd, 1, 3 * MSG_TCONFIG_FILE_MAX, &p, &len, err, sizeof(err)) == -1 ||
	    len != (size_t)tc.ca_len + tc.cert_len + tc.key_len) {
		log_warnx("tunnel configuration refused: %s", "bad TLS material");
		return -1;
	}
	ctx = tuntls_ctx_new(&(struct tuntls_in){ p, tc.ca_len, (const char *)p + tc.ca_len,
	    tc.cert_len, (const char *)p + tc.ca_len + tc.cert_len, tc.key_len, w->tls }, err,
	    sizeof(err));
	munmap((void *)(uintptr_t)p, len);
	if (ctx == NULL) {
		log_warnx("tunnel listener: %s", err);
		return -1;
	}
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	h2client_set_tunnel_times(w, tc.ping_interval_ms, tc.ping_timeout_ms);
	return 0;
}

static int
tunnel_on_list_req(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;

	(void)tunlist_send(w->role_ctx, w->parent, m->h.seq);
	return 0;
}

/*
 * The master sends this last after HELLO, after the listeners: the config,
 * the keyring, the TLS material and both listeners are here, so from now on
 * the process only serves and its filter goes in. A start without the TLS
 * material would be the master's bug; the filter goes in all the same.
 */
static int
tunnel_on_start(void *arg, struct ipc_msg *m)
{
	struct worker *w = arg;
	struct tunnel_ctx *t = w->role_ctx;

	(void)m;
	if (t->ctx == NULL)
		log_warnx("started without the tunnel listener's TLS material");
	worker_sandbox(w, SANDBOX_TUNNEL);
	return 0;
}

static const struct ipc_handler tunnel_handlers[] = {
	{ MSG_T_CONFIG, IPC_FD_REQUIRED, sizeof(struct msg_tconfig), sizeof(struct msg_tconfig),
	  tunnel_on_config },
	{ MSG_T_START, IPC_FD_NONE, 0, 0, tunnel_on_start },
	{ MSG_T_LIST_REQ, IPC_FD_NONE, 0, 0, tunnel_on_list_req },
};

static int
tunnel_start(struct worker *w)
{
	struct tunnel_ctx *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	t->w = w;
	w->role_ctx = t;
	w->step = hop_step;
	w->tunnel_hold_until = util_now_ms() + TUN_START_HOLD_MS;
	return 0;
}

static void
tunnel_accept(struct worker *w, int fd, const struct sockaddr *peer)
{
	tunattach_accept(w, fd, peer);
}

static void
tunnel_stop(struct worker *w)
{
	tunattach_stop(w->role_ctx);
}

static int
tunnel_busy(const struct worker *w)
{
	return tunattach_busy(w->role_ctx);
}

static void
tunnel_cleanup(struct worker *w)
{
	struct tunnel_ctx *t = w->role_ctx;

	tunattach_free(t);
	SSL_CTX_free(t->ctx);
	free(t);
	w->role_ctx = NULL;
}

static const struct worker_role tunnel_role = {
	.name = "tunnel",
	.hello_role = ROLE_TUNNEL,
	.handlers = tunnel_handlers,
	.nhandlers = ARRAY_LEN(tunnel_handlers),
	.start = tunnel_start,
	.accept = tunnel_accept,
	.stop = tunnel_stop,
	.busy = tunnel_busy,
	.cleanup = tunnel_cleanup,
};

int
tunnel_main(const struct worker_args *a)
{
	return worker_run(a, &tunnel_role);
}
