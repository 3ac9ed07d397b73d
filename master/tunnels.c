/*
 * The tunnel process's role (see tunnels.h): its listeners, its files, its
 * start-up messages and `tunnel list`.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "master/conf.h"
#include "master/control.h"
#include "master/keyringbuild.h"
#include "master/listeners.h"
#include "master/master.h"
#include "master/proc.h"
#include "master/publish.h"
#include "master/tunnels.h"
#include "master/workers.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/sealed.h"
#include "share/util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 10000

struct mtunnel {
	struct proc proc;
	struct listeners lst;		/* listen_tunnel: one socket */
	int hop_fd;			/* RUNTIME_DIR/tunnel.sock, listening */
	int files_fd;			/* sealed memfd: CA, chain, key PEM */
	struct msg_tconfig tc;
	uint32_t keyring_gen;		/* of the last keyring sent (no tunnel_cert: its certificates) */
	uint32_t list_seq;		/* of the last MSG_T_LIST */
	uint8_t *list;			/* its payload (IPC_MAX_PAYLOAD at most) */
	size_t list_len;
};

/* --- start-up: what root does for it */

/* The whole file into *buf (at most MSG_TCONFIG_FILE_MAX bytes); 0 or -1, logged. */
static int
tun_read_file(const char *path, char **buf, size_t *len)
{
	char *b = malloc(MSG_TCONFIG_FILE_MAX + 1);
	ssize_t n;
	size_t got = 0;
	int fd = -1, rc = -1;

	if (b == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("%s", path);
		goto out;
	}
	while ((n = read(fd, b + got, MSG_TCONFIG_FILE_MAX + 1 - got)) > 0)
		got += (size_t)n;
	if (n == -1 || got > MSG_TCONFIG_FILE_MAX || got == 0) {
		log_warnx("%s: %s", path, n == -1 ? strerror(errno) : got == 0 ? "empty" :
		    "larger than 256 KiB");
		goto out;
	}
	*buf = b;
	*len = got;
	b = NULL;
	rc = 0;
out:
	free(b);
	if (fd != -1)
		close(fd);
	return rc;
}

/* CA, chain and key back to back in one sealed memfd: the key never touches a file. */
static int
tun_files(struct mtunnel *t, const struct conf *cf)
{
	char *f[3] = { NULL, NULL, NULL }, *all = NULL, err[256];
	size_t len[3] = { 0, 0, 0 };
	const char *path[3] = { cf->tunnel_ca_file, cf->tunnel_cert, cf->tunnel_key };
	int i, rc = -1;

	for (i = 0; i < 3; i++)
		if (path[i] != NULL && tun_read_file(path[i], &f[i], &len[i]) == -1)
			goto out;
	if ((all = malloc(len[0] + len[1] + len[2])) == NULL)
		goto out;
	memcpy(all, f[0], len[0]);
	if (len[1] > 0)
		memcpy(all + len[0], f[1], len[1]);
	if (len[2] > 0)
		memcpy(all + len[0] + len[1], f[2], len[2]);
	t->tc.ca_len = (uint32_t)len[0];
	t->tc.cert_len = (uint32_t)len[1];
	t->tc.key_len = (uint32_t)len[2];
	if ((t->files_fd = sealed_create("haloyd-tunnel-tls", all, len[0] + len[1] + len[2], err,
	    sizeof(err))) == -1) {
		log_warnx("tunnel files: %s", err);
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < 3; i++) {
		if (f[i] != NULL)
			explicit_bzero(f[i], len[i]);
		free(f[i]);
	}
	if (all != NULL)
		explicit_bzero(all, len[0] + len[1] + len[2]);
	free(all);
	return rc;
}

/*
 * The workers (the worker user, not in admin_group) must reach the socket
 * inside RUNTIME_DIR (root:admin_group 0750): search permission for
 * others, no listing. control.sock keeps its own mode and peer check.
 */
static void
tun_runtime_search(const struct master *m)
{
	struct stat st;

	if (geteuid() != 0 || stat(m->cfg.runtime_dir, &st) == -1 || (st.st_mode & S_ISVTX) ||
	    (st.st_mode & S_IXOTH))
		return;
	if (chmod(m->cfg.runtime_dir, (st.st_mode & 07777) | S_IXOTH) == -1)
		log_warn("runtime_dir %s: cannot let the workers reach %s", m->cfg.runtime_dir,
		    TUNNEL_HOP_SOCK);
}

/* RUNTIME_DIR/tunnel.sock: the worker user's alone (0600), a stale one replaced. */
static int
tun_hop_bind(struct mtunnel *t, const struct master *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	tun_runtime_search(m);

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", m->cfg.runtime_dir,
	    TUNNEL_HOP_SOCK) >= sizeof(sa.sun_path)) {
		log_warnx("%s/%s: path too long for a unix socket", m->cfg.runtime_dir,
		    TUNNEL_HOP_SOCK);
		return -1;
	}
	(void)unlink(sa.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    chmod(sa.sun_path, 0600) == -1 ||
	    (m->worker_uid != 0 && chown(sa.sun_path, m->worker_uid, (gid_t)-1) == -1) ||
	    listen(fd, 1024) == -1) {
		log_warn("%s", sa.sun_path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	t->hop_fd = fd;
	return 0;
}

/* --- the role */

/* Without tunnel_cert the listener serves the keyring's certificate for the SNI. */
static int
tun_send_keyring(struct mtunnel *t)
{
	struct master *m = t->proc.m;
	uint32_t gen;
	int fd;

	if (m->cfg.tunnel_cert != NULL || (fd = mkeyring_current(m, &gen)) == -1 ||
	    t->keyring_gen == gen)
		return 0;
	if (ipc_send(t->proc.sock, MSG_W_KEYRING, 0, gen, NULL, 0, fd) == -1)
		return -1;
	t->keyring_gen = gen;
	return 0;
}

void
tunnels_send_keyring(struct master *m)
{
	struct mtunnel *t = m->tunnel;

	if (t != NULL && t->proc.ready && tun_send_keyring(t) == -1)
		proc_kill(&t->proc, "its socket is full or broken");
}

static void
tun_on_spawn(struct proc *p)
{
	struct mtunnel *t = p->arg;

	t->keyring_gen = 0;
}

static int
tun_on_hello(struct proc *p)
{
	struct mtunnel *t = p->arg;
	uint8_t buf[MSG_WCONFIG_MAX_LEN];
	struct msg_listener tl = { LISTENER_TUNNEL, 0, 0 }, hl = { LISTENER_HOP, 1, 0 };
	size_t len;

	if (workers_config_msg(p->m, buf, sizeof(buf), &len) == -1 ||
	    ipc_send(p->sock, MSG_W_CONFIG, 0, 0, buf, len, -1) == -1 || tun_send_keyring(t) == -1 ||
	    ipc_send(p->sock, MSG_T_CONFIG, 0, 0, &t->tc, sizeof(t->tc), t->files_fd) == -1 ||
	    ipc_send(p->sock, MSG_W_LISTENER, 0, 0, &tl, sizeof(tl), listeners_fd(&t->lst, 0, 0)) ==
	    -1 || ipc_send(p->sock, MSG_W_LISTENER, 0, 0, &hl, sizeof(hl), t->hop_fd) == -1 ||
	    ipc_send(p->sock, MSG_T_START, 0, 0, NULL, 0, -1) == -1)
		return -1;
	publish_check(p->m);	/* haloyd's first "ready" may have waited for this */
	return 0;
}

void
tunnels_send_config(struct master *m)
{
	struct mtunnel *t = m->tunnel;
	uint8_t buf[MSG_WCONFIG_MAX_LEN];
	size_t len;

	if (t == NULL || !t->proc.ready)
		return;
	if (workers_config_msg(m, buf, sizeof(buf), &len) == -1 ||
	    proc_send(&t->proc, MSG_W_CONFIG, 0, 0, buf, len, -1) == -1)
		log_warnx("reload: the tunnel process keeps its settings");
}

static int
tun_str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int
tunnels_conf_changed(const struct conf *a, const struct conf *b)
{
	return tun_str_differs(a->listen_tunnel, b->listen_tunnel) ||
	    tun_str_differs(a->tunnel_ca_file, b->tunnel_ca_file) ||
	    tun_str_differs(a->tunnel_cert, b->tunnel_cert) ||
	    tun_str_differs(a->tunnel_key, b->tunnel_key) ||
	    a->tunnel_ping_interval_ms != b->tunnel_ping_interval_ms ||
	    a->tunnel_ping_timeout_ms != b->tunnel_ping_timeout_ms;
}

static int
tun_ask_stop(struct proc *p, uint32_t deadline_ms)
{
	struct msg_stop s = { deadline_ms, 0 };

	return ipc_send(p->sock, MSG_W_STOP, 0, 0, &s, sizeof(s), -1);
}

static int
tun_on_list(void *arg, struct ipc_msg *msg)
{
	struct mtunnel *t = arg;

	if (t->list == NULL && (t->list = malloc(IPC_MAX_PAYLOAD)) == NULL)
		return 0;
	memcpy(t->list, msg->data, msg->h.len);
	t->list_len = msg->h.len;
	t->list_seq = msg->h.seq;
	control_on_worker_status(t->proc.m);
	return 0;
}

static const char *
tun_user(const struct master *m)
{
	return m->cfg.user;
}

static void
tun_status_fields(const struct proc *p, struct wbuf *w)
{
	control_row_int(w, "ready", p->ready);
}

static const struct ipc_handler tun_handlers[] = {
	{ MSG_T_LIST, IPC_FD_NONE, 2, IPC_MAX_PAYLOAD, tun_on_list },
};

static const struct proc_role tunnel_role = {
	.name = "tunnel",
	.title = "tunnel process",
	.hello_role = ROLE_TUNNEL,
	.user = tun_user,
	.backoff_min_ms = BACKOFF_MIN_MS,
	.backoff_max_ms = BACKOFF_MAX_MS,
	.stable_ms = STABLE_MS,
	.handlers = tun_handlers,
	.nhandlers = ARRAY_LEN(tun_handlers),
	.on_spawn = tun_on_spawn,
	.on_hello = tun_on_hello,
	.ask_stop = tun_ask_stop,
	.status_fields = tun_status_fields,
	.nstatus_fields = 1,
};

const struct listeners *
tunnels_listeners(const struct master *m)
{
	return m->tunnel != NULL ? &m->tunnel->lst : NULL;
}

int
tunnels_init(struct master *m, struct inherit *h)
{
	struct mtunnel *t;
	char *addr[1];

	if (m->cfg.listen_tunnel == NULL)
		return 0;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->hop_fd = t->files_fd = -1;
	m->tunnel = t;
	addr[0] = m->cfg.listen_tunnel;
	if (listeners_adopt(&t->lst, addr, 1, 1, LISTENER_TUNNEL, h) == -1 ||
	    tun_hop_bind(t, m) == -1 ||
	    tun_files(t, &m->cfg) == -1)
		return -1;
	t->tc.ping_interval_ms = (uint32_t)m->cfg.tunnel_ping_interval_ms;
	t->tc.ping_timeout_ms = (uint32_t)m->cfg.tunnel_ping_timeout_ms;
	proc_add(m, &t->proc, &tunnel_role, -1, t);
	log_info("tunnel listener on %s", m->cfg.listen_tunnel);
	proc_spawn(&t->proc);
	return 0;
}

void
tunnels_stop(struct master *m, uint32_t deadline_ms)
{
	if (m->tunnel != NULL && m->tunnel->proc.role != NULL)
		proc_stop(&m->tunnel->proc, deadline_ms);
}

int
tunnels_started(const struct master *m)
{
	return m->tunnel == NULL || m->tunnel->proc.hello;
}

pid_t
tunnels_pid(const struct master *m)
{
	return m->tunnel != NULL && m->tunnel->proc.role != NULL ? m->tunnel->proc.pid : 0;
}

int
tunnels_running(const struct master *m)
{
	return m->tunnel != NULL && proc_running(m, &tunnel_role) > 0;
}

void
tunnels_kill(struct master *m)
{
	proc_kill_all(m, &tunnel_role);
}

void
tunnels_free(struct master *m)
{
	struct mtunnel *t = m->tunnel;

	if (t == NULL)
		return;
	if (t->proc.role != NULL)
		proc_remove(&t->proc);
	listeners_close(&t->lst);
	if (t->hop_fd != -1)
		close(t->hop_fd);
	if (t->files_fd != -1)
		close(t->files_fd);
	free(t->list);
	free(t);
	m->tunnel = NULL;
}

/* --- tunnel list */

int
tunnels_list_complete(const struct master *m, uint32_t seq)
{
	const struct mtunnel *t = m->tunnel;

	return t == NULL || !t->proc.ready || t->list_seq >= seq;
}

/* One agent's row from MSG_T_LIST (msg.h); -1 when the payload is malformed. */
static int
tun_list_row(struct cclient *cl, struct cur *c, int64_t now_s)
{
	char name[64], peer[64], subject[MSG_T_SUBJECT_MAX + 1], expiry[32];
	uint64_t not_after, since, served;
	uint32_t inflight, rtt, state;
	uint8_t buf[2048];
	struct wbuf w;
	time_t na;
	struct tm tm;

	if (cur_str(c, name, sizeof(name)) == -1 || cur_str(c, peer, sizeof(peer)) == -1 ||
	    cur_str(c, subject, sizeof(subject)) == -1)
		return -1;
	not_after = cur_u64(c);
	since = cur_u64(c);
	inflight = cur_u32(c);
	served = cur_u64(c);
	rtt = cur_u32(c);
	state = cur_u32(c);
	if (c->bad)
		return -1;
	na = (time_t)not_after;
	if (gmtime_r(&na, &tm) == NULL || strftime(expiry, sizeof(expiry), "%Y-%m-%dT%H:%M:%SZ",
	    &tm) == 0)
		util_strlcpy(expiry, "?", sizeof(expiry));
	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 9);
	control_row_str(&w, "name", name);
	control_row_str(&w, "peer", peer);
	control_row_str(&w, "subject", subject);
	control_row_str(&w, "not_after", expiry);
	control_row_int(&w, "attached_s", now_s - (int64_t)since);
	control_row_int(&w, "in_flight", inflight);
	control_row_int(&w, "served", (int64_t)served);
	control_row_int(&w, "ping_rtt_us", rtt);
	control_row_str(&w, "state", state == 0 ? "ready" : "draining");
	control_reply_row(cl, &w);
	return 0;
}

static void
tun_list_reply(struct master *m, struct cclient *cl)
{
	struct mtunnel *t = m->tunnel;
	uint16_t n, i;
	struct cur c;

	if (t == NULL || t->list_seq != m->status_seq || t->list == NULL) {
		control_reply_fail(cl, CTL_EFAIL, "the tunnel process did not answer");
		return;
	}
	cur_init(&c, t->list, t->list_len);
	n = cur_u16(&c);
	if (c.bad || n > MSG_T_LIST_MAX) {
		control_reply_fail(cl, CTL_EFAIL, "bad answer from the tunnel process");
		return;
	}
	for (i = 0; i < n; i++)
		if (tun_list_row(cl, &c, (int64_t)(util_wall_ns() / 1000000000)) == -1) {
			control_reply_fail(cl, CTL_EFAIL, "bad answer from the tunnel process");
			return;
		}
	control_reply_end(cl);
}

int
tunnels_cmd_list(struct master *m, struct cclient *cl, struct cur *c)
{
	struct mtunnel *t = m->tunnel;

	(void)c;
	if (t == NULL) {
		control_reply_fail(cl, CTL_ENOENT, "no tunnel listener (listen_tunnel is not set)");
		return 0;
	}
	if (!t->proc.ready ||
	    proc_send(&t->proc, MSG_T_LIST_REQ, ++m->status_seq, 0, NULL, 0, -1) == -1) {
		control_reply_fail(cl, CTL_EFAIL, "the tunnel process is not running");
		return 0;
	}
	control_reply_after_status(cl, m->status_seq, tun_list_reply);
	return 0;
}
