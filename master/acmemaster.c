/*
 * The master's side of ACME (see acmemaster.h): the acme role of the process
 * table (its messages and hooks), the HTTP-01 and TLS-ALPN-01 challenge
 * barrier, ARI answers, and the outcome of orders. The child does the talking to the CA; the master
 * decides what to order and when
 * (acmequeue.c), checks everything the child sends before it reaches a
 * worker or the store, and publishes HTTP-01 answers with the same barrier
 * as route changes: the child hears CHAL_READY only when every live worker
 * serves the generation that carries the answer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "master/acmemaster.h"
#include "master/acmeint.h"
#include "master/certs.h"
#include "master/control.h"
#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/ondemand.h"
#include "master/publish.h"
#include "master/snapbuild.h"
#include "master/store.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/keyring.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/paths.h"
#include "share/snap.h"
#include "share/util.h"

#define LE_PRODUCTION "https://acme-v02.api.letsencrypt.org/directory"
#define LE_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"

#define RESPAWN_MIN_MS 1000
#define RESPAWN_MAX_MS 60000
#define RESPAWN_STABLE_MS 60000	/* alive this long: its back-off starts again */

/* --- names */

const char *
acme_name_refusal(const char *name)
{
	struct in_addr a4;
	const char *last = strrchr(name, '.');

	if (strchr(name, '/') != NULL)
		return "a path-prefix route is served by its host's certificate";
	if (hostname_is_wildcard(name))
		return "a wildcard name needs DNS-01: set dns_update_server and dns_tsig_key in haloyd.conf";
	if (inet_pton(AF_INET, name, &a4) == 1 || strchr(name, ':') != NULL)
		return "IP addresses get no certificate from an ACME CA";
	if (last == NULL)
		return "a single-label name is not a public DNS name";
	if (strcmp(name, "localhost") == 0 || strcmp(last, ".localhost") == 0 ||
	    strcmp(last, ".local") == 0 || strcmp(last, ".internal") == 0)
		return "a local name is not a public DNS name";
	if (strspn(last + 1, "0123456789") == strlen(last + 1))
		return "the last label is numeric";
	return NULL;
}

/* --- the child */

static const char *
directory_url(const struct conf *cf)
{
	if (strcmp(cf->acme_directory, "production") == 0)
		return LE_PRODUCTION;
	if (strcmp(cf->acme_directory, "staging") == 0)
		return LE_STAGING;
	return cf->acme_directory;
}

/*
 * STATE_DIR/acme, 0700 and owned by the ACME user: the state folder itself
 * is root's, so the child gets this folder as an fd and works inside it.
 * The fd is O_PATH: under haloyd.service the master has no
 * CAP_DAC_OVERRIDE, so it may not open the user's 0700 folder for reading,
 * but the child's openat() calls check the child's own rights. Nobody but
 * root can enter the state folder, so the path cannot be swapped meanwhile.
 */
/*
 * The files in a folder root owns: one restored from a copy made as root holds root's files,
 * which the child could not read (account.key) — ACME would fail until fixed by hand.
 * Owner-only modes first, while root owns them; links and other kinds are left alone.
 */
static int
acme_dir_adopt(const char *path, const struct passwd *pw)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    (d = fdopendir(fd)) == NULL) {
		log_warn("open %s", path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
		    st.st_uid == pw->pw_uid)
			continue;
		if (fchmodat(fd, e->d_name, st.st_mode & 0700, 0) == -1 ||
		    fchownat(fd, e->d_name, pw->pw_uid, pw->pw_gid, AT_SYMLINK_NOFOLLOW) == -1) {
			log_warn("%s/%s: cannot give it to user %s", path, e->d_name, pw->pw_name);
			rc = -1;
			break;
		}
		log_info("%s/%s: given to user %s", path, e->d_name, pw->pw_name);
	}
	closedir(d);
	return rc;
}

static int
acme_dir_open(struct master *m)
{
	char path[4096];
	struct passwd *pw;
	struct stat st;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", m->cfg.state_dir, HALOYD_ACME_DIR) >=
	    sizeof(path) || (mkdir(path, 0700) == -1 && errno != EEXIST)) {
		log_warn("mkdir %s", path);
		return -1;
	}
	if ((fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_warn("open %s", path);
		return -1;
	}
	if (geteuid() != 0)
		return fd;
	/*
	 * Mode first, while root owns it: the unit grants CAP_CHOWN, not CAP_FOWNER; its
	 * files before it, as root cannot read the folder once it is the child's.
	 */
	if ((pw = getpwnam(m->cfg.acme_user)) == NULL ||
	    fstat(fd, &st) == -1 || (st.st_uid != pw->pw_uid && (acme_dir_adopt(path, pw) == -1 ||
	    chmod(path, 0700) == -1 ||
	    fchownat(fd, "", pw->pw_uid, pw->pw_gid, AT_EMPTY_PATH) == -1))) {
		log_warn("%s: cannot give it to user %s", path, m->cfg.acme_user);
		close(fd);
		return -1;
	}
	return fd;
}

static int
acme_send_config(struct acme_peer *a)
{
	const struct conf *cf = &a->m->cfg;
	uint8_t buf[6 + 3 * MSG_STR_MAX];
	struct wbuf b;
	int fd, rc;

	if ((fd = acme_dir_open(a->m)) == -1)
		return -1;
	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, directory_url(cf));
	wb_str(&b, cf->acme_email);
	wb_str(&b, cf->acme_ca_file);
	rc = b.bad ? -1 : ipc_send(a->proc.sock, MSG_A_CONFIG, 0, 0, buf, b.len, fd);
	close(fd);
	return rc;
}

/* --- challenges */

static void
alpn_free(struct acme_alpn_cert *c)
{
	if (c->key != NULL)
		OPENSSL_cleanse(c->key, strlen(c->key));
	free(c->key);
	free(c->cert);
	memset(c, 0, sizeof(*c));
}

/* Forgets the order's answers; 1 when the next generation must drop some. */
static int
chals_clear(struct acme_peer *a)
{
	int had = a->nchals > 0 || a->nalpn > 0;

	if (a->nalpn > 0)
		mkeyring_changed(a->m);
	while (a->nalpn > 0)
		alpn_free(&a->alpn[--a->nalpn]);
	a->nchals = 0;
	a->run.waiting = 0;
	return had;
}

uint32_t
acme_alpn_certs(const struct master *m, const struct acme_alpn_cert **v)
{
	struct acme_peer *a = m->acme;
	struct acmeshare *s = m->acmeshare;
	struct acme_alpn_cert *view = a != NULL ? a->alpnview : s != NULL ? s->alpnview : NULL;
	uint32_t n = 0;

	*v = view;
	/* Shallow copies, ours then the other nodes': the keyring copies what it keeps. */
	if (a != NULL) {
		memcpy(view, a->alpn, a->nalpn * sizeof(a->alpn[0]));
		n = a->nalpn;
	}
	if (s != NULL) {
		memcpy(view + n, s->alpn, s->nalpn * sizeof(s->alpn[0]));
		n += s->nalpn;
	}
	return n;
}

void
acme_snap_chals(const struct master *m, const struct snapb_chal **chals, uint32_t *n)
{
	struct acme_peer *a = m->acme;
	struct acmeshare *s = m->acmeshare;
	struct snapb_chal *view = a != NULL ? a->snapchals : s != NULL ? s->snapchals : NULL;
	uint32_t i;

	*chals = view;
	*n = 0;
	for (i = 0; a != NULL && i < a->nchals; i++)
		view[(*n)++] = (struct snapb_chal){ a->chals[i].token, a->chals[i].keyauth };
	/* The other nodes' (shared store), as many as the section has room for. */
	for (i = 0; s != NULL && i < s->nchals && *n < SNAP_CHAL_MAX; i++)
		view[(*n)++] = (struct snapb_chal){ s->chals[i].token, s->chals[i].keyauth };
}

static int
b64u_only(const char *s, size_t n)
{
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/*
 * What a compromised child could abuse: the answer must be for a name of
 * the running order, and be token "." thumbprint (43 base64url characters,
 * a SHA-256), so workers never serve anything else.
 */
/*
 * A name of the running order, a base64url token, and "TOKEN.THUMBPRINT" with
 * the account's thumbprint: whatever the child says, only an answer bound to
 * its account key is published.
 */
static int
chal_check(const struct acme_peer *a, const char *host, const char *token, const char *keyauth)
{
	const struct acme_run *r = &a->run;
	size_t i, tl = strlen(token);

	for (i = 0; i < r->nnames; i++)
		if (strcmp(r->names[i], host) == 0)
			break;
	if (i == r->nnames || tl == 0 || !b64u_only(token, tl))
		return -1;
	if (strncmp(keyauth, token, tl) != 0 || keyauth[tl] != '.')
		return -1;
	if (a->thumbprint[0] == '\0' || strcmp(keyauth + tl + 1, a->thumbprint) != 0) {
		log_warnx("acme %s: refused a key authorisation not bound to the account's key", host);
		return -1;
	}
	return 0;
}

/* The account's thumbprint, once per child: a second, different one is a broken child. */
static int
on_account(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	char t[MSG_A_THUMBPRINT_LEN + 2];
	struct cur cu;

	cur_init(&cu, msg->data, msg->h.len);
	if (cur_str(&cu, t, sizeof(t)) == -1 || cur_end(&cu) == -1 ||
	    strlen(t) != MSG_A_THUMBPRINT_LEN || !b64u_only(t, MSG_A_THUMBPRINT_LEN) ||
	    (a->thumbprint[0] != '\0' && strcmp(t, a->thumbprint) != 0))
		return -1;
	util_strlcpy(a->thumbprint, t, sizeof(a->thumbprint));
	return 0;
}

/* Waits for the generation that carries the run's newest answer, as route changes do. */
static void
chal_publish(struct acme_peer *a, const char *host, const char *token, const char *type)
{
	util_strlcpy(a->run.chal_token, token, sizeof(a->run.chal_token));
	a->run.waiting = 1;
	a->run.chal_gen = publish_changed(a->m);
	acmeshare_wait(a);
	log_info("acme %s: publishing the %s answer in generation %u", host, type, a->run.chal_gen);
}

static int
on_chal_add(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	char host[MSG_NAME_MAX + 1], token[MSG_A_TOKEN_MAX + 1], keyauth[SNAP_CHAL_KEYAUTH_MAX + 1];
	struct acme_chal *c;
	uint64_t id;
	struct cur cu;

	cur_init(&cu, msg->data, msg->h.len);
	id = cur_u64(&cu);
	if (cur_str(&cu, host, sizeof(host)) == -1 || cur_str(&cu, token, sizeof(token)) == -1 ||
	    cur_str(&cu, keyauth, sizeof(keyauth)) == -1 || cur_end(&cu) == -1 ||
	    id != a->run.id || a->run.waiting || a->nchals == SNAP_CHAL_MAX ||
	    a->run.chal != MSG_A_CHAL_HTTP01 || chal_check(a, host, token, keyauth) == -1)
		return -1;
	c = &a->chals[a->nchals++];
	util_strlcpy(c->token, token, sizeof(c->token));
	util_strlcpy(c->keyauth, keyauth, sizeof(c->keyauth));
	(void)acmeshare_put(a, host, token, keyauth, "", "");
	chal_publish(a, host, token, "http-01");
	return 0;
}

/* TLS-ALPN-01: the certificate goes into the keyring, checked first (acmealpn.c). */
static int
on_chal_alpn(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	char host[MSG_NAME_MAX + 1], token[MSG_A_TOKEN_MAX + 1], keyauth[SNAP_CHAL_KEYAUTH_MAX + 1];
	char cert[MSG_A_ALPN_CERT_MAX + 1], key[MSG_A_ALPN_CERT_MAX + 1], err[300];
	struct acme_alpn_cert *c;
	uint64_t id;
	struct cur cu;
	int rc = -1;

	cur_init(&cu, msg->data, msg->h.len);
	id = cur_u64(&cu);
	if (cur_str(&cu, host, sizeof(host)) == -1 || cur_str(&cu, token, sizeof(token)) == -1 ||
	    cur_str(&cu, keyauth, sizeof(keyauth)) == -1 || cur_str(&cu, cert, sizeof(cert)) == -1 ||
	    cur_str(&cu, key, sizeof(key)) == -1 || cur_end(&cu) == -1 || id != a->run.id ||
	    a->run.waiting || a->run.chal != MSG_A_CHAL_TLSALPN01 || a->nalpn == ACME_NAMES_MAX ||
	    chal_check(a, host, token, keyauth) == -1)
		goto out;
	if (acmealpn_check(host, keyauth, cert, key, a->thumbprint, err, sizeof(err)) == -1) {
		log_warnx("acme %s", err);
		goto out;
	}
	c = &a->alpn[a->nalpn];
	util_strlcpy(c->host, host, sizeof(c->host));
	if ((c->cert = strdup(cert)) == NULL || (c->key = strdup(key)) == NULL) {
		alpn_free(c);
		goto out;
	}
	a->nalpn++;
	mkeyring_changed(a->m);
	(void)acmeshare_put(a, host, token, keyauth, cert, key);
	chal_publish(a, host, token, "tls-alpn-01");
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(msg->data, msg->h.len);
	return rc;
}

void
acme_publish_check(struct master *m)
{
	struct acme_peer *a = m->acme;
	uint8_t buf[16 + MSG_A_TOKEN_MAX];
	struct wbuf b;

	if (a == NULL || !a->run.waiting || a->proc.sock < 0 || !publish_served(m, a->run.chal_gen) ||
	    !acmeshare_served(a))
		return;
	a->run.waiting = 0;
	wb_init(&b, buf, sizeof(buf));
	wb_u64(&b, a->run.id);
	wb_str(&b, a->run.chal_token);
	proc_send(&a->proc, MSG_A_CHAL_READY, 0, 0, buf, b.len, -1);
}

/* --- outcomes */

/* See acmeint.h. */
void
acme_run_log(const struct acme_run *r, int prio, const char *what, const char *detail)
{
	char dom[300];
	const char *fields[2] = { dom, NULL };

	snprintf(dom, sizeof(dom), "HALOYD_DOMAIN=%s", r->names[0]);
	log_fields(prio, fields, "acme %s: %s%s", r->names[0], what, detail);
}

static void
run_end(struct acme_peer *a)
{
	ev_timer_stop(a->m->loop, &a->deadline);
	ev_timer_stop(a->m->loop, &a->lease_timer);
	ev_timer_stop(a->m->loop, &a->chal_wait);
	/* Before the release: no row outlives the lease it was written under. */
	if (a->nchals > 0 || a->nalpn > 0)
		acmeshare_clear(a);
	acmelease_release(a->m->store, &a->lease);
	if (chals_clear(a))
		publish_changed(a->m);
	memset(&a->run, 0, sizeof(a->run));
	acmeq_tick_soon(a, 0);
}

static void
run_failed(struct acme_peer *a, const char *type, const char *detail, uint64_t retry_after)
{
	struct store_order r;
	char line[STORE_ORDER_ERROR_MAX];

	/* No row (or a store failure) starts from a zeroed one. */
	(void)store_order_get(a->m->store, a->run.route_id, &r);
	snprintf(line, sizeof(line), "%s: %s", type, detail);
	util_strlcpy(r.state, "failed", sizeof(r.state));
	util_strlcpy(r.last_error, line, sizeof(r.last_error));
	r.attempts++;
	/* A forced renewal stays forced until it succeeds. */
	r.next_attempt = (int64_t)time(NULL) + acmeq_backoff_s(a->m, r.attempts, retry_after);
	store_order_put(a->m->store, a->run.route_id, &r, NULL);
	snprintf(line, sizeof(line), "%s: %s; attempt %lld, next in %lld s", type, detail,
	    (long long)r.attempts, (long long)(r.next_attempt - time(NULL)));
	acme_run_log(&a->run, LOG_WARNING, "order failed: ", line);
	if (a->run.route_id < 0)
		ondemand_order_failed(a->m, a->run.names[0]);
	if (a->m->shm.master != NULL)
		shm_add(&a->m->shm.master->acme_orders[SHM_ACME_FAILED], 1);
	run_end(a);
}

/* See acmeint.h. The new holder owns the order's row; the child's work is dropped. */
void
acme_run_lost(struct acme_peer *a)
{
	acme_run_log(&a->run, LOG_WARNING, "order abandoned: ", "another node took it over");
	run_end(a);
	proc_kill(&a->proc, "its order was taken over by another node");
}

static void
lease_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct acme_peer *a = t->arg;

	(void)l;
	if (a->run.id == 0)
		return;
	if (acmelease_renew(a->m->store, &a->lease, (int64_t)time(NULL)) == -1) {
		acme_run_lost(a);
		return;
	}
	ev_timer_start(a->m->loop, &a->lease_timer, ACMELEASE_RENEW_S * 1000);
}

static int
on_fail(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	char type[128], detail[512];
	uint64_t id;
	uint32_t ra;
	struct cur cu;

	cur_init(&cu, msg->data, msg->h.len);
	id = cur_u64(&cu);
	if (cur_str(&cu, type, sizeof(type)) == -1 || cur_str(&cu, detail, sizeof(detail)) == -1)
		return -1;
	ra = cur_u32(&cu);
	if (cur_end(&cu) == -1 || id != a->run.id || id == 0)
		return -1;
	run_failed(a, type, detail, ra);
	return 0;
}

/*
 * The leaf must match its key, cover exactly the order's names, and be
 * valid now; -2 when the order's lease was taken over (nothing saved).
 */
static int
cert_commit(struct acme_peer *a, const char *chain, const char *key, char *err, size_t errlen)
{
	char *names[ACME_NAMES_MAX];
	struct certs_info ci;
	struct store_cert sc;
	size_t i;
	int rc = -1, src;

	if (certs_check(a->run.names[0], chain, strlen(chain), key, strlen(key), 0, time(NULL),
	    &ci, err, errlen) == -1)
		return -1;
	for (i = 0; i < a->run.nnames; i++)
		names[i] = a->run.names[i];
	if (!acmeq_names_equal(names, a->run.nnames, ci.names, ci.nnames)) {
		snprintf(err, errlen, "the certificate's names are not the order's");
		goto out;
	}
	memset(&sc, 0, sizeof(sc));
	sc.domain = a->run.names[0];
	sc.source = KEYRING_SRC_ACME;
	sc.names = ci.names;
	sc.nnames = ci.nnames;
	sc.chain = ci.chain;
	sc.key = ci.key;
	sc.issuer = ci.issuer;
	sc.fingerprint = ci.fingerprint_hex;
	sc.not_before = ci.not_before;
	sc.not_after = ci.not_after;
	if ((src = acmelease_cert_put(a->m->store, &a->lease, &sc)) == STORE_ENOENT) {
		rc = -2;
		goto out;
	}
	if (src != STORE_OK || mkeyring_reload(a->m) == -1) {
		snprintf(err, errlen, "cannot store the certificate (see the log)");
		goto out;
	}
	snprintf(err, errlen, "%s", ci.fingerprint_hex);
	rc = 0;
out:
	certs_info_free(&ci);
	return rc;
}

static int
on_cert(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	char *chain = malloc(MSG_A_CHAIN_MAX + 1), *key = malloc(MSG_A_KEY_MAX + 1), err[600];
	char profile[MSG_A_PROFILE_MAX + 1];
	struct store_order r;
	struct cur cu;
	uint64_t id;
	int rc = -1;

	if (chain == NULL || key == NULL)
		goto out;
	cur_init(&cu, msg->data, msg->h.len);
	id = cur_u64(&cu);
	if (cur_str(&cu, chain, MSG_A_CHAIN_MAX + 1) == -1 || cur_str(&cu, key, MSG_A_KEY_MAX + 1) == -1 ||
	    cur_str(&cu, profile, sizeof(profile)) == -1 || cur_end(&cu) == -1 || id != a->run.id ||
	    id == 0 || (profile[0] != '\0' && strcmp(profile, a->run.profile) != 0))
		goto out;
	rc = 0;
	switch (cert_commit(a, chain, key, err, sizeof(err))) {
	case -2:
		acme_run_lost(a);
		goto out;
	case -1:
		run_failed(a, "badCertificate", err, 0);
		goto out;
	}
	/* A new certificate: its ARI window is asked for afresh (ari_next_poll 0). */
	memset(&r, 0, sizeof(r));
	util_strlcpy(r.state, "valid", sizeof(r.state));
	util_strlcpy(r.challenge, a->run.chal == MSG_A_CHAL_DNS01 ? "dns-01" :
	    a->run.chal == MSG_A_CHAL_TLSALPN01 ? "tls-alpn-01" : "http-01", sizeof(r.challenge));
	util_strlcpy(r.profile, profile, sizeof(r.profile));
	store_order_put(a->m->store, a->run.route_id, &r, NULL);
	/* The keyring changed: a DNS-01 order has no challenge whose end would publish it. */
	publish_changed(a->m);
	acme_run_log(&a->run, LOG_NOTICE, "certificate installed, fingerprint ", err);
	if (a->m->shm.master != NULL)
		shm_add(&a->m->shm.master->acme_orders[SHM_ACME_ISSUED], 1);
	run_end(a);
out:
	if (key != NULL)
		OPENSSL_cleanse(key, MSG_A_KEY_MAX + 1);
	OPENSSL_cleanse(msg->data, msg->h.len);
	free(key);
	free(chain);
	return rc;
}

static int
on_ari(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	char id[MSG_A_ARI_ID_MAX + 1];
	uint64_t route, start, end;
	uint32_t retry;
	uint8_t st;
	struct cur cu;

	cur_init(&cu, msg->data, msg->h.len);
	route = cur_u64(&cu);
	st = cur_u8(&cu);
	if (cur_str(&cu, id, sizeof(id)) == -1)
		return -1;
	start = cur_u64(&cu);
	end = cur_u64(&cu);
	retry = cur_u32(&cu);
	if (cur_end(&cu) == -1 || route == 0 || (int64_t)route != a->ari_route ||
	    st > MSG_A_ARI_FAILED)
		return -1;
	a->ari_route = 0;
	acmeq_ari_result(a, (int64_t)route, st, id, (int64_t)start, (int64_t)end, retry);
	acmeq_tick_soon(a, 0);
	return 0;
}

/* Its HELLO was accepted: configuration, then look for a due order. */
static int
acme_on_hello(struct proc *p)
{
	struct acme_peer *a = p->arg;

	if (acme_send_config(a) == -1 || acmedns_send(a) == -1 || acmeaccount_send(a) == -1)
		return -1;
	acmeq_tick_soon(a, 0);
	return 0;
}

#define S(n) (2 + (n))
static const struct ipc_handler acme_handlers[] = {
	{ MSG_A_CHAL_ADD, IPC_FD_NONE, 8 + 3 * S(1),
	    8 + S(MSG_NAME_MAX) + S(MSG_A_TOKEN_MAX) + S(SNAP_CHAL_KEYAUTH_MAX), on_chal_add },
	{ MSG_A_CHAL_ALPN, IPC_FD_NONE, 8 + 5 * S(1), 8 + S(MSG_NAME_MAX) + S(MSG_A_TOKEN_MAX) +
	    S(SNAP_CHAL_KEYAUTH_MAX) + 2 * S(MSG_A_ALPN_CERT_MAX), on_chal_alpn },
	{ MSG_A_CERT, IPC_FD_NONE, 8 + 3 * S(0), 8 + S(MSG_A_CHAIN_MAX) + S(MSG_A_KEY_MAX) +
	    S(MSG_A_PROFILE_MAX), on_cert },
	{ MSG_A_ARI, IPC_FD_NONE, 8 + 1 + S(0) + 8 + 8 + 4, 8 + 1 + S(MSG_A_ARI_ID_MAX) + 8 + 8 + 4,
	    on_ari },
	{ MSG_A_FAIL, IPC_FD_NONE, 8 + 2 * S(1) + 4, 8 + S(127) + S(511) + 4, on_fail },
	{ MSG_A_ACCOUNT, IPC_FD_NONE, S(MSG_A_THUMBPRINT_LEN), S(MSG_A_THUMBPRINT_LEN), on_account },
	{ MSG_A_ASK_RESULT, IPC_FD_NONE, 8 + 1, 8 + 1, ondemand_on_ask_result },
};
#undef S

_Static_assert(8 + 2 + MSG_A_CHAIN_MAX + 2 + MSG_A_KEY_MAX + 2 + MSG_A_PROFILE_MAX <= IPC_MAX_PAYLOAD,
    "MSG_A_CERT fits one message");

static void
deadline_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct acme_peer *a = t->arg;

	(void)l;
	if (a->run.id == 0)
		return;
	run_failed(a, "timeout", "the order took longer than 10 minutes", 0);
	proc_kill(&a->proc, "its order did not finish in time");
}

/* --- life cycle */

/* Reaped: an order it was running failed (one cut by our own stop stays "running"). */
static void
acme_on_exit(struct proc *p, int status)
{
	struct acme_peer *a = p->arg;

	(void)status;
	a->thumbprint[0] = '\0';	/* the next child says its own */
	a->ari_route = 0;
	ondemand_child_gone(p->m);
	if (!p->m->stopping && a->run.id != 0)
		run_failed(a, "internal", "the ACME child died during the order", 0);
}

static const char *
acme_user(const struct master *m)
{
	return m->cfg.acme_user;
}

const struct proc_role acme_role = {
	.name = "acme",
	.title = "acme child",
	.hello_role = ROLE_ACME,
	.user = acme_user,
	.backoff_min_ms = RESPAWN_MIN_MS,
	.backoff_max_ms = RESPAWN_MAX_MS,
	.stable_ms = RESPAWN_STABLE_MS,
	.handlers = acme_handlers,
	.nhandlers = ARRAY_LEN(acme_handlers),
	.on_hello = acme_on_hello,
	.on_exit = acme_on_exit,
};

int
acme_init(struct master *m)
{
	char node[STORE_NODE_NAME_MAX + 1];
	struct acme_peer *a;

	if (!m->cfg.acme)
		return 0;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	a->m = m;
	proc_add(m, &a->proc, &acme_role, -1, a);
	ev_timer_init(&a->tick, acmeq_tick_fire, a);
	ev_timer_init(&a->deadline, deadline_fire, a);
	ev_timer_init(&a->lease_timer, lease_fire, a);
	acmeshare_init(a, &acmeshare_cluster, ACMESHARE_WAIT_MS);
	m->acme = a;
	/* One node on SQLite: any name holds every lease. */
	if (m->cfg.store == NULL)
		util_strlcpy(node, "local", sizeof(node));
	else if (store_node_name(m->cfg.store, node, sizeof(node)) == -1)
		return -1;
	acmelease_init(&a->lease, node);
	/* What this node left when it died mid-order: nobody serves it any more. */
	acmeshare_clear(a);
	if (acmedns_load(&m->cfg, &a->dns) == -1 || ondemand_init(m) == -1)
		return -1;
	if (geteuid() == 0 && getpwnam(m->cfg.acme_user) == NULL) {
		log_warnx("acme: user '%s' does not exist: create it or set acme_user",
		    m->cfg.acme_user);
		return -1;
	}
	log_info("acme on: directory %s", directory_url(&m->cfg));
	proc_spawn(&a->proc);
	return 0;
}

void
acme_stop(struct master *m)
{
	struct acme_peer *a = m->acme;

	if (a == NULL)
		return;
	ev_timer_stop(m->loop, &a->tick);
	ev_timer_stop(m->loop, &a->deadline);
	/* A lease still held expires, or this node takes it again after a hand-over. */
	ev_timer_stop(m->loop, &a->lease_timer);
	ev_timer_stop(m->loop, &a->chal_wait);
	proc_stop(&a->proc, 0);
}

void
acme_resume(struct master *m)
{
	struct acme_peer *a = m->acme;

	if (a == NULL || m->stopping)
		return;
	a->proc.stopped = 0;	/* still exiting: respawned when reaped */
	if (a->proc.pid == 0)
		proc_spawn(&a->proc);
}

void
acme_free(struct master *m)
{
	struct acme_peer *a = m->acme;

	if (a == NULL)
		return;
	acme_stop(m);
	(void)chals_clear(a);
	OPENSSL_cleanse(&a->dns, sizeof(a->dns));
	ondemand_free(m);
	proc_remove(&a->proc);
	free(a);
	m->acme = NULL;
}

/*
 * Why name gets no certificate. A route refused for its challenge (a
 * wildcard without DNS-01) gets a failed row, so `cert status` says why.
 */
static const char *
acme_refused_route(struct master *m, const char *name)
{
	struct store_route r;
	struct store_order o;
	const char *why;
	int rc;

	if (store_route_get(m->store, name, &r) != STORE_OK)
		return acmeq_refusal(m->acme, name, STORE_CHAL_AUTO);
	why = acmeq_refusal(m->acme, name, r.set.challenge);
	if (why != NULL && strcmp(r.name, name) == 0 &&
	    (hostname_is_wildcard(name) || r.set.challenge == STORE_CHAL_DNS01) &&
	    ((rc = store_order_get(m->store, r.id, &o)) == STORE_OK || rc == STORE_ENOENT)) {
		util_strlcpy(o.state, "failed", sizeof(o.state));
		util_strlcpy(o.last_error, why, sizeof(o.last_error));
		o.next_attempt = 0;
		(void)store_order_put(m->store, r.id, &o, NULL);
	}
	store_route_free(&r);
	return why;
}

void
acme_route_changed(struct master *m, const char *name, char *note, size_t notelen)
{
	const char *why;

	if (m->acme == NULL)
		return;
	/* commands.c describes the change: "NAME", "alias NAME", "route NAME", ... */
	if (strncmp(name, "alias ", 6) == 0 || strncmp(name, "route ", 6) == 0)
		name += 6;
	if (strchr(name, ' ') == NULL && (why = acme_refused_route(m, name)) != NULL)
		snprintf(note, notelen, "; no ACME certificate for %s: %s", name, why);
	if (m->acme->run.id == 0)
		acmeq_tick_soon(m->acme, 0);
}

void
acme_remote_changed(struct master *m)
{
	if (m->acme != NULL)
		acmeq_tick_soon(m->acme, 0);
}

void
acme_route_removed(struct master *m, const char *name)
{
	struct store_cert sc;
	char dom[300];
	const char *fields[2] = { dom, NULL };

	if (store_cert_get(m->store, name, 0, &sc) != STORE_OK)
		return;
	snprintf(dom, sizeof(dom), "HALOYD_DOMAIN=%s", name);
	if (sc.source == KEYRING_SRC_ACME) {
		if (store_cert_rm(m->store, name) != STORE_OK || mkeyring_reload(m) == -1)
			log_fields(LOG_WARNING, fields, "route %s removed, but not its ACME certificate",
			    name);
		else
			log_fields(LOG_INFO, fields, "the ACME certificate of route %s is removed with it",
			    name);
	}
	store_cert_free(&sc);
}
