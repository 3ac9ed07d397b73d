/*
 * The ACME child's process: privilege drop, HELLO, the master's messages
 * (configuration with the state folder's fd, orders, challenge barrier
 * replies) on fd 3 in an epoll loop, and one order at a time. It writes
 * nothing but its account key and account URL, in the folder it was given.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "acme/acmechild.h"
#include "share/child.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/privdrop.h"
#include "share/sandbox.h"
#include "share/util.h"

#define PARENT_FD 3
#define ORDER_MAX_NAMES 100

int
acme_send(struct acme *a, uint16_t type, const void *p, size_t len)
{
	if (ipc_send(a->parent, type, 0, 0, p, len, -1) == -1) {
		log_warn("sending message %u to the master", type);
		return -1;
	}
	return 0;
}

static int
set_str(char **dst, const char *v)
{
	char *s = v[0] != '\0' ? strdup(v) : NULL;

	if (v[0] != '\0' && s == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

/*
 * The first configuration (with the state folder's fd) is the last thing
 * the child needs: from here on it runs orders from its loop. Resolving a
 * name once first reads nsswitch.conf and the resolver's files, so the
 * filter meets the common paths already warm.
 */
static void
acme_sandbox(struct acme *a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;

	if (!a->sandbox || a->sandboxed)
		return;
	if (getaddrinfo("localhost", "443", &hints, &res) == 0)
		freeaddrinfo(res);
	if (sandbox_enter(SANDBOX_ACME) == -1)
		fatalx("cannot enter the sandbox (haloyd.conf `sandbox off` runs without one)");
	a->sandboxed = 1;
}

static int
on_config(void *arg, struct ipc_msg *m)
{
	struct acme *a = arg;
	char dir[MSG_STR_MAX + 1], email[MSG_STR_MAX + 1], ca[MSG_STR_MAX + 1];
	struct cur c;

	cur_init(&c, m->data, m->h.len);
	if (cur_str(&c, dir, sizeof(dir)) == -1 || cur_str(&c, email, sizeof(email)) == -1 ||
	    cur_str(&c, ca, sizeof(ca)) == -1 || cur_end(&c) == -1 || dir[0] == '\0')
		return -1;
	/* Another CA is another account: forget the directory and the account URL. */
	if (a->cl.directory_url == NULL || strcmp(a->cl.directory_url, dir) != 0) {
		acme_client_reset(&a->cl);
		free(a->cl.kid);
		a->cl.kid = NULL;
	}
	if (set_str(&a->cl.directory_url, dir) == -1 || set_str(&a->cl.email, email) == -1 ||
	    set_str(&a->cl.ca_file, ca) == -1)
		fatalx("out of memory");
	if (a->cl.dirfd >= 0)
		close(a->cl.dirfd);
	a->cl.dirfd = m->fd;
	m->fd = -1;
	a->configured = 1;
	acme_sandbox(a);
	log_debug("directory %s", dir);
	return 0;
}

/* What follows the names in MSG_A_ORDER. */
static int
order_opts_read(struct cur *c, struct order_opts *op)
{
	op->chal = cur_u8(c);
	if (cur_str(c, op->replaces, sizeof(op->replaces)) == -1 ||
	    cur_str(c, op->profile, sizeof(op->profile)) == -1 || cur_end(c) == -1)
		return -1;
	return op->chal == MSG_A_CHAL_HTTP01 || op->chal == MSG_A_CHAL_TLSALPN01 ||
	    op->chal == MSG_A_CHAL_DNS01 ? 0 : -1;
}

static int
on_order(void *arg, struct ipc_msg *m)
{
	struct acme *a = arg;
	char name[MSG_NAME_MAX + 1], **names;
	struct order_opts op;
	uint64_t id;
	uint16_t n, i;
	struct cur c;

	cur_init(&c, m->data, m->h.len);
	id = cur_u64(&c);
	n = cur_u16(&c);
	if (c.bad || n == 0 || n > ORDER_MAX_NAMES || !a->configured || a->order != NULL)
		return -1;
	if ((names = calloc(n, sizeof(*names))) == NULL)
		fatalx("out of memory");
	for (i = 0; i < n; i++)
		if (cur_str(&c, name, sizeof(name)) == -1 || (names[i] = strdup(name)) == NULL)
			break;
	if (i < n || order_opts_read(&c, &op) == -1) {
		while (i > 0)
			free(names[--i]);
		free(names);
		return -1;
	}
	return order_start(a, id, names, n, &op);
}

static int
on_ari_req(void *arg, struct ipc_msg *m)
{
	struct acme *a = arg;
	char *pem;
	uint64_t id;
	struct cur c;

	if (!a->configured || a->order != NULL || (pem = malloc(MSG_A_CHAIN_MAX + 1)) == NULL)
		return -1;
	cur_init(&c, m->data, m->h.len);
	id = cur_u64(&c);
	if (cur_str(&c, pem, MSG_A_CHAIN_MAX + 1) == -1 || cur_end(&c) == -1) {
		free(pem);
		return -1;
	}
	ari_request(a, id, pem);
	free(pem);
	return 0;
}

static int
on_chal_ready(void *arg, struct ipc_msg *m)
{
	char token[MSG_A_TOKEN_MAX + 1];
	struct cur c;

	cur_init(&c, m->data, m->h.len);
	(void)cur_u64(&c);
	if (cur_str(&c, token, sizeof(token)) == -1 || cur_end(&c) == -1)
		return -1;
	order_chal_ready(arg, token);
	return 0;
}

/*
 * DNS-01's server and TSIG key. The master reads the root-only key file
 * and sends the secret here: this child runs as haloyd-acme and could not
 * read it, and keeps it in memory only.
 */
static int
on_dns(void *arg, struct ipc_msg *m)
{
	struct acme *a = arg;
	char srv[MSG_A_DNS_STR_MAX + 1], zone[MSG_A_DNS_STR_MAX + 1];
	char key[MSG_A_DNS_STR_MAX + 1], secret[MSG_A_DNS_STR_MAX + 1];
	struct cur c;
	uint16_t port;
	uint32_t wait_ms;
	int rc;

	cur_init(&c, m->data, m->h.len);
	if (cur_str(&c, srv, sizeof(srv)) == -1 || cur_str(&c, zone, sizeof(zone)) == -1 ||
	    cur_str(&c, key, sizeof(key)) == -1 || cur_str(&c, secret, sizeof(secret)) == -1)
		return -1;
	port = cur_u16(&c);
	wait_ms = cur_u32(&c);
	if (cur_end(&c) == -1 || wait_ms == 0)
		return -1;
	rc = dns01_configure(&a->dns, srv, zone, key, secret);
	a->dns.ns_port = port;
	a->dns.wait_ms = wait_ms;
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(m->data, m->h.len);	/* the receive buffer held it too */
	if (rc == 0 && a->dns.on)
		log_debug("dns-01 through %s, key %s, NS set on port %u, waited for %u s at most",
		    a->dns.server, a->dns.key.name, a->dns.ns_port, a->dns.wait_ms / 1000);
	return rc;
}

/*
 * A shared store (acme/account.c): its key is read now, once, through the
 * child's own connection; when that fails (the store down, the role
 * refused) each order tries again first, so orders wait with the
 * master's back-off, and no order runs with the folder's key meanwhile.
 */
static int
on_account_store(void *arg, struct ipc_msg *m)
{
	struct acme *a = arg;
	char conninfo[MSG_A_STORE_MAX + 1];
	struct acme_error e;
	struct cur c;

	if (!a->configured || a->account_sent || a->cl.account_store != NULL)
		return -1;
	cur_init(&c, m->data, m->h.len);
	if (cur_str(&c, conninfo, sizeof(conninfo)) == -1 || cur_end(&c) == -1 ||
	    conninfo[0] == '\0')
		return -1;
	if ((a->cl.account_store = strdup(conninfo)) == NULL)
		fatalx("out of memory");
	memset(&e, 0, sizeof(e));
	if (acme_account_from_store(&a->cl, &e) == -1)
		log_warnx("%s", e.detail);
	return 0;
}

static const struct ipc_handler acme_handlers[] = {
	{ MSG_HELLO, IPC_FD_NONE, sizeof(struct msg_hello), sizeof(struct msg_hello), child_on_hello },
	{ MSG_A_CONFIG, IPC_FD_REQUIRED, 6, 6 + 3 * MSG_STR_MAX, on_config },
	{ MSG_A_ORDER, IPC_FD_NONE, 12, IPC_MAX_PAYLOAD, on_order },
	{ MSG_A_ARI_REQ, IPC_FD_NONE, 10, 10 + MSG_A_CHAIN_MAX, on_ari_req },
	{ MSG_A_CHAL_READY, IPC_FD_NONE, 10, 10 + MSG_A_TOKEN_MAX, on_chal_ready },
	{ MSG_A_DNS, IPC_FD_NONE, 14, 14 + 4 * MSG_A_DNS_STR_MAX, on_dns },
	{ MSG_A_ACCOUNT_STORE, IPC_FD_NONE, 3, 2 + MSG_A_STORE_MAX, on_account_store },
	{ MSG_A_ASK, IPC_FD_NONE, 8 + 2 + 1 + 2 + 1, 8 + 2 + MSG_A_ASK_URL_MAX + 2 + MSG_NAME_MAX,
	    ask_on_msg },
};

/* A malformed message from the master is a broken invariant: exit (DESIGN.md, IPC). */
static void
acme_on_parent(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct acme *a = io->arg;
	int n;

	(void)events;
	for (;;) {
		n = ipc_recv(a->parent, a->rx);
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == 0) {
			log_info("the master closed the channel; exiting");
			ev_break(l);
			return;
		}
		if (n == -1 || ipc_dispatch(acme_handlers, ARRAY_LEN(acme_handlers), a, a->rx) == -1)
			fatalx("bad message %u from the master", n == -1 ? 0 : a->rx->h.type);
		ipc_msg_close_fd(a->rx);
	}
}

static void
acme_on_signal(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct acme *a = io->arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			ev_break(l);
}

static void
acme_setup(struct acme *a)
{
	a->sigfd = child_signalfd();
	if ((a->loop = ev_loop_new()) == NULL || (a->rx = malloc(sizeof(*a->rx))) == NULL)
		fatalx("out of memory");
	if (ev_io_start(a->loop, &a->parent_io, a->parent, EPOLLIN, acme_on_parent, a) == -1 ||
	    ev_io_start(a->loop, &a->sig_io, a->sigfd, EPOLLIN, acme_on_signal, a) == -1)
		fatalx("cannot watch the master socket");
	if (acme_http_init() == -1 || (a->cl.http = acme_http_new()) == NULL)
		fatalx("cannot start libcurl");
	child_hello(a->parent, ROLE_ACME, 0);
}

int
acme_main(const struct acme_args *args)
{
	struct acme a;

	memset(&a, 0, sizeof(a));
	a.parent = PARENT_FD;
	a.cl.dirfd = -1;
	a.cl.store = &acct_store_pg;
	a.sandbox = args->sandbox;
	log_init("acme", -1, (enum log_target)args->log_target, args->verbose);
	if (privdrop(args->user) == -1)
		fatalx("cannot drop privileges");
	/* The account key lives in this process: no core dumps, no ptrace by peers. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	acme_setup(&a);
	if (!a.sandbox)
		log_warnx("running without a sandbox (sandbox off)");
	log_debug("started");
	if (ev_run(a.loop) == -1)
		log_warn("event loop");
	order_free(a.order);
	explicit_bzero(&a.dns, sizeof(a.dns));
	acme_client_reset(&a.cl);
	EVP_PKEY_free(a.cl.key);
	free(a.cl.thumbprint);
	free(a.cl.kid);
	free(a.cl.directory_url);
	free(a.cl.email);
	free(a.cl.ca_file);
	free(a.cl.account_store);
	if (a.cl.dirfd >= 0)
		close(a.cl.dirfd);
	acme_http_free(a.cl.http);
	acme_http_cleanup();
	ev_loop_free(a.loop);
	close(a.sigfd);
	free(a.rx);
	return 0;
}
