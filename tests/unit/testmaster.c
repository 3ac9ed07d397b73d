/*
 * The unit suites' master context and the scripted child it starts (see
 * testmaster.h). The child runs in a fresh image of this program, so what
 * the master sends it really crosses fork, fexecve and the socketpair.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "acme/acmechild.h"
#include "master/keyringbuild.h"
#include "master/proc.h"
#include "master/publish.h"
#include "master/store.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/msg.h"
#include "share/util.h"
#include "tests/unit/testmaster.h"

static char tm_dir[64];

void
testmaster_init(struct master *m, size_t nworkers)
{
	char path[128];

	snprintf(tm_dir, sizeof(tm_dir), "/tmp/check_master.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tm_dir));
	snprintf(path, sizeof(path), "%s/store.db", tm_dir);
	memset(m, 0, sizeof(*m));
	m->cfg.ticket_key_lifetime_ms = 3600000;
	m->cfg.user = m->cfg.acme_user = (char *)(uintptr_t)"root";
	m->cfg.log_target = (char *)(uintptr_t)"stderr";
	m->cfg.error_pages = (char *)(uintptr_t)"";
	m->cfg.state_dir = tm_dir;
	m->cfg.acme_directory = (char *)(uintptr_t)"https://ca.invalid/dir";
	m->cfg.acme_email = m->cfg.acme_ca_file = (char *)(uintptr_t)"";
	m->cfg.acme_renew_before = 33;
	m->cfg.acme_backoff_max_ms = 86400000;
	m->nworkers = nworkers;
	ck_assert_ptr_nonnull(m->loop = ev_loop_new());
	ck_assert_ptr_nonnull(m->rx = malloc(sizeof(*m->rx)));
	ck_assert_int_ge(m->self_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), 0);
	ck_assert_int_eq(store_open(path, &m->store), STORE_OK);
	ck_assert_int_eq(mkeyring_init(m), 0);
	publish_init(m);
}

void
testmaster_free(struct master *m)
{
	char cmd[128];

	m->stopping = 1;
	proc_kill_all(m, NULL);
	testmaster_run_until(m, NULL, NULL, 2000);
	mkeyring_free(m);
	store_close(m->store);
	rtable_free(&m->rt);
	publish_close(m);
	close(m->self_fd);
	ev_loop_free(m->loop);
	free(m->workers);
	free(m->rx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tm_dir);
	(void)system(cmd);
}

/* With cond NULL: until no child runs. */
int
testmaster_run_until(struct master *m, int (*cond)(struct master *m, void *arg), void *arg,
    int timeout_ms)
{
	uint64_t end = util_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		proc_reap(m);
		if (cond != NULL ? cond(m, arg) : proc_running(m, NULL) == 0)
			return 1;
		if (util_now_ms() >= end)
			return 0;
		ev_run_once(m->loop, 20);
	}
}

void
testmaster_run_for(struct master *m, int ms)
{
	uint64_t end = util_now_ms() + (uint64_t)ms;

	while (util_now_ms() < end) {
		proc_reap(m);
		ev_run_once(m->loop, 10);
	}
}

/* --- the child */

static void
child_send(uint16_t type, uint32_t seq, uint32_t gen, const void *p, size_t len)
{
	if (ipc_send(3, type, seq, gen, p, len, -1) == -1)
		_exit(4);
}

static void
child_hello(const char *mode, const char *role, int index)
{
	struct msg_hello h = { HALOYD_PROTO_VERSION, ROLE_WORKER, (uint32_t)index, (uint32_t)getpid() };

	if (strcmp(role, "acme") == 0)
		h.role = ROLE_ACME;
	else if (strcmp(role, "test") == 0)
		h.role = ROLE_TUNNEL;
	if (strcmp(mode, "badhello") == 0)
		h.role = ROLE_CTL;
	child_send(MSG_HELLO, 0, 0, &h, sizeof(h));
	if (strcmp(mode, "garbage") == 0)
		child_send(999, 0, 0, NULL, 0);
}

/* The ACME child's answer to any order: a failure with Retry-After. */
static void
child_fail_order(const struct ipc_msg *msg)
{
	const char *ra = getenv("CHECK_RETRY_AFTER");
	uint8_t buf[256];
	struct wbuf w;
	struct cur c;

	cur_init(&c, msg->data, msg->h.len);
	wb_init(&w, buf, sizeof(buf));
	wb_u64(&w, cur_u64(&c));
	wb_str(&w, "rateLimited");
	wb_str(&w, "slow down");
	wb_u32(&w, ra != NULL ? (uint32_t)atoi(ra) : 0);
	child_send(MSG_A_FAIL, 0, 0, buf, w.len);
}

/*
 * Mode "acmechal": the account's thumbprint (CHECK_THUMBPRINT), then an
 * HTTP-01 answer for the order's first name whose key authorisation ends
 * with CHECK_KEYAUTH_THUMB.
 */
static void
child_chal_order(const struct ipc_msg *msg)
{
	char name[MSG_NAME_MAX + 1], keyauth[256];
	uint8_t buf[1024];
	struct wbuf w;
	struct cur c;
	uint64_t id;

	cur_init(&c, msg->data, msg->h.len);
	id = cur_u64(&c);
	(void)cur_u16(&c);
	if (cur_str(&c, name, sizeof(name)) == -1)
		_exit(4);
	wb_init(&w, buf, sizeof(buf));
	wb_str(&w, getenv("CHECK_THUMBPRINT"));
	child_send(MSG_A_ACCOUNT, 0, 0, buf, w.len);
	snprintf(keyauth, sizeof(keyauth), "tok-1.%s", getenv("CHECK_KEYAUTH_THUMB"));
	wb_init(&w, buf, sizeof(buf));
	wb_u64(&w, id);
	wb_str(&w, name);
	wb_str(&w, "tok-1");
	wb_str(&w, keyauth);
	child_send(MSG_A_CHAL_ADD, 0, 0, buf, w.len);
}

/*
 * Mode "acmealpn": the account's thumbprint (CHECK_THUMBPRINT), then a
 * TLS-ALPN-01 certificate for the order's first name (acme/alpncert.c),
 * or, with CHECK_ALPN_HOST, for that name instead.
 */
static void
child_alpn_order(const struct ipc_msg *msg)
{
	char name[MSG_NAME_MAX + 1], keyauth[256], *cert, *key;
	const char *host = getenv("CHECK_ALPN_HOST");
	static uint8_t buf[16384];
	struct wbuf w;
	struct cur c;
	uint64_t id;

	cur_init(&c, msg->data, msg->h.len);
	id = cur_u64(&c);
	(void)cur_u16(&c);
	if (cur_str(&c, name, sizeof(name)) == -1)
		_exit(4);
	if (host == NULL)
		host = name;
	wb_init(&w, buf, sizeof(buf));
	wb_str(&w, getenv("CHECK_THUMBPRINT"));
	child_send(MSG_A_ACCOUNT, 0, 0, buf, w.len);
	snprintf(keyauth, sizeof(keyauth), "tok-1.%s", getenv("CHECK_THUMBPRINT"));
	if (alpncert_make(host, keyauth, &cert, &key) == -1)
		_exit(5);
	wb_init(&w, buf, sizeof(buf));
	wb_u64(&w, id);
	wb_str(&w, name);
	wb_str(&w, "tok-1");
	wb_str(&w, keyauth);
	wb_str(&w, cert);
	wb_str(&w, key);
	child_send(MSG_A_CHAL_ALPN, 0, 0, buf, w.len);
	free(cert);
	free(key);
}

static void
child_on(const char *mode, const char *role, int index, struct ipc_msg *msg)
{
	struct msg_wstatus ws = { .requests = 7, .connections = 2 };

	switch (msg->h.type) {
	case MSG_HELLO:
		child_hello(mode, role, index);
		break;
	case MSG_W_SNAP:
		/* A generation is acked at its last image (share/msg.h). */
		if (strcmp(mode, "lag") != 0 && msg->h.len == sizeof(struct msg_snap) &&
		    (((const struct msg_snap *)(const void *)msg->data)->flags & MSG_SNAP_LAST))
			child_send(MSG_W_ACK, 0, msg->h.gen, NULL, 0);
		break;
	case MSG_W_STATUS_REQ:
		child_send(MSG_W_STATUS, msg->h.seq, 0, &ws, sizeof(ws));
		break;
	case MSG_W_STOP:
		_exit(0);
	case MSG_A_ORDER:
		if (strcmp(mode, "acmechal") == 0)
			child_chal_order(msg);
		else if (strcmp(mode, "acmealpn") == 0)
			child_alpn_order(msg);
		else
			child_fail_order(msg);
		break;
	}
}

int
testmaster_child_main(int argc, char **argv)
{
	const char *mode = getenv("CHECK_CHILD"), *role = "";
	struct ipc_msg *msg;
	int i, index = 0;

	if (mode == NULL)
		mode = "ack";
	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-R") == 0)
			role = argv[i + 1];
		else if (strcmp(argv[i], "-I") == 0)
			index = atoi(argv[i + 1]);
	}
	if (strcmp(mode, "die") == 0 || (msg = malloc(sizeof(*msg))) == NULL)
		return 3;
	for (;;) {
		struct pollfd pfd = { 3, POLLIN, 0 };
		int n;

		/* ipc_recv does not wait. */
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			break;
		if ((n = ipc_recv(3, msg)) == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != 1)
			break;
		ipc_msg_close_fd(msg);
		child_on(mode, role, index, msg);
	}
	free(msg);
	return 0;
}
