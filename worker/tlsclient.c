/*
 * TLS toward backends (see tlsclient.h): the worker's cache of client
 * contexts, one per route configuration, and new client connections.
 *
 * The cache is keyed by route id and holds the configuration key the
 * context was made for; a lookup with another key rebuilds it, and every
 * new snapshot drops the entries of routes it no longer has or whose key
 * changed. The system roots are loaded once per worker into one
 * X509_STORE that every context without a CA of its own shares.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "share/addr.h"
#include "share/hash.h"
#include "share/beaddr.h"
#include "share/log.h"
#include "share/snap.h"
#include "worker/context.h"
#include "worker/tls.h"
#include "worker/accesslog.h"
#include "worker/tlsclient.h"

#define TLSC_BUCKETS 64
#define TLSC_CA_MAX 64		/* certificates in a route's CA (the master's bound) */
#define TLSC_SESS_MAX 64	/* sessions kept per route: one per backend, and a route has <= 64 */

/* The last resumable session of one backend. */
struct tlsc_sess {
	uint32_t backend_id;
	SSL_SESSION *sess;
};

struct tlsc_entry {
	uint32_t route_id;
	uint64_t key;		/* tlsclient_config_key when ctx was made */
	uint64_t memo_gen;	/* memo_key is the route's key in this generation */
	uint64_t memo_key;
	SSL_CTX *ctx;
	struct tlsc_sess sess[TLSC_SESS_MAX];	/* made with ctx */
	uint32_t nsess;
	uint32_t shard;		/* its route's snapshot image (the image of its name) */
	int seen;		/* in the snapshot being swept */
	struct tlsc_entry *next;
};

struct tlsclient {
	struct tlsc_entry *bucket[TLSC_BUCKETS];
	uint32_t count;
	X509_STORE *roots;	/* the system roots, loaded at first use */
	const void *img_id[SNAP_SHARDS];	/* the images last swept (snap_image_id) */
	uint64_t img_built[SNAP_SHARDS];
};

int
tlsclient_init(struct worker *w)
{
	w->tlsclient = calloc(1, sizeof(*w->tlsclient));
	return w->tlsclient == NULL ? -1 : 0;
}

static void
tlsc_sess_clear(struct tlsc_entry *e)
{
	uint32_t i;

	for (i = 0; i < e->nsess; i++)
		SSL_SESSION_free(e->sess[i].sess);
	e->nsess = 0;
}

static void
tlsc_entry_free(struct tlsc_entry *e)
{
	tlsc_sess_clear(e);
	SSL_CTX_free(e->ctx);
	free(e);
}

void
tlsclient_free(struct worker *w)
{
	struct tlsc_entry *e, *en;
	size_t i;

	if (w->tlsclient == NULL)
		return;
	for (i = 0; i < TLSC_BUCKETS; i++)
		for (e = w->tlsclient->bucket[i]; e != NULL; e = en) {
			en = e->next;
			tlsc_entry_free(e);
		}
	X509_STORE_free(w->tlsclient->roots);
	free(w->tlsclient);
	w->tlsclient = NULL;
}

uint32_t
tlsclient_count(const struct worker *w)
{
	return w->tlsclient != NULL ? w->tlsclient->count : 0;
}

static struct tlsc_entry *
tlsc_find(const struct tlsclient *tc, uint32_t route_id)
{
	struct tlsc_entry *e;

	for (e = tc->bucket[route_id % TLSC_BUCKETS]; e != NULL; e = e->next)
		if (e->route_id == route_id)
			return e;
	return NULL;
}

/* The key itself: the CA may be 32 KiB, so callers go through the memo. */
static uint64_t
tlsc_key(const struct snap *s, const struct snap_route *r)
{
	static const uint8_t k[16] = "haloyd tls conf";
	uint64_t h;
	struct {
		uint16_t proto, verify;
		uint32_t sni_len, ca_len;
	} fixed;

	if (!snap_proto_tls(r->proto))
		return 0;
	memset(&fixed, 0, sizeof(fixed));
	fixed.proto = r->proto;
	fixed.verify = !(r->flags & SNAP_ROUTE_BACKEND_NO_VERIFY);
	fixed.sni_len = r->backend_sni.len;
	fixed.ca_len = r->backend_ca.len;
	h = hash_siphash24(k, &fixed, sizeof(fixed));
	h ^= hash_siphash24(k, snap_string(s, r->backend_sni), r->backend_sni.len) * 31;
	h ^= hash_siphash24(k, snap_string(s, r->backend_ca), r->backend_ca.len) * 131;
	return h != 0 ? h : 1;	/* 0 is "plain" */
}

/*
 * Memoised per route and snapshot generation (generations only grow, and a
 * route's settings are fixed within one), so a request on a pooled
 * connection does not hash the route's CA again.
 */
uint64_t
tlsclient_config_key(struct worker *w, const struct snap *s, const struct snap_route *r)
{
	struct tlsc_entry *e;
	uint64_t gen = snap_generation(s);

	if (!snap_proto_tls(r->proto))
		return 0;
	if ((e = tlsc_find(w->tlsclient, r->id)) == NULL)
		return tlsc_key(s, r);
	if (e->memo_gen != gen) {
		e->memo_key = tlsc_key(s, r);
		e->memo_gen = gen;
	}
	return e->memo_key;
}

/* --- contexts */

/* The route's CA PEM into the context's own store; 0 or -1 (logged). */
static int
tlsc_load_ca(SSL_CTX *ctx, const char *pem, size_t len, uint32_t route_id)
{
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	int n = 0, rc = -1;
	X509 *x;

	if (bio == NULL)
		goto out;
	while (n < TLSC_CA_MAX && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) != 1) {
			X509_free(x);
			goto out;
		}
		X509_free(x);
		n++;
	}
	rc = n > 0 ? 0 : -1;
out:
	if (rc == -1)
		log_warnx("route %u: backend CA unusable", route_id);
	ERR_clear_error();
	BIO_free(bio);
	return rc;
}

/* The system roots, shared by contexts; NULL (logged) when they cannot be loaded. */
static X509_STORE *
tlsc_roots(struct tlsclient *tc)
{
	if (tc->roots != NULL)
		return tc->roots;
	if ((tc->roots = X509_STORE_new()) == NULL || X509_STORE_set_default_paths(tc->roots) != 1) {
		log_warnx("cannot load the system's trusted roots");
		X509_STORE_free(tc->roots);
		tc->roots = NULL;
	}
	ERR_clear_error();
	return tc->roots;
}

static SSL_CTX *
tlsc_ctx_new(struct tlsclient *tc, const struct snap *s, const struct snap_route *r)
{
	static const unsigned char alpn_h1[] = "\x08http/1.1", alpn_h2[] = "\x02h2";
	int verify = !(r->flags & SNAP_ROUTE_BACKEND_NO_VERIFY);
	X509_STORE *roots;
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	/*
	 * A backend that closes without close_notify ends the stream like a
	 * FIN: HTTP/1.1 framing still tells a cut body from a whole one.
	 * Sessions are kept per backend by tlsclient_keep_session, not by
	 * OpenSSL's cache (which would key them by context alone).
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (r->proto == SNAP_PROTO_H2 ?
	    SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2) - 1) != 0 :
	    SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1) != 0)
		goto fail;
	if (verify && r->backend_ca.len > 0) {
		if (tlsc_load_ca(ctx, snap_string(s, r->backend_ca), r->backend_ca.len, r->id) == -1)
			goto fail;
	} else if (verify) {
		if ((roots = tlsc_roots(tc)) == NULL)
			goto fail;
		SSL_CTX_set1_cert_store(ctx, roots);
	}
	return ctx;
fail:
	log_warnx("route %u: cannot make the TLS context toward its backends", r->id);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* The route's context for its current settings, made or remade as needed. */
static SSL_CTX *
tlsc_ctx(struct worker *w, const struct snap *s, const struct snap_route *r)
{
	struct tlsclient *tc = w->tlsclient;
	struct tlsc_entry **head = &tc->bucket[r->id % TLSC_BUCKETS], *e;
	uint64_t key = tlsclient_config_key(w, s, r);
	SSL_CTX *ctx;

	if ((e = tlsc_find(tc, r->id)) != NULL && e->key == key)
		return e->ctx;
	if ((ctx = tlsc_ctx_new(tc, s, r)) == NULL)
		return NULL;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			SSL_CTX_free(ctx);
			return NULL;
		}
		e->route_id = r->id;
		e->shard = SNAP_STR_SHARD(r->name.off);
		e->memo_gen = snap_generation(s);
		e->memo_key = key;
		e->next = *head;
		*head = e;
		tc->count++;
	}
	SSL_CTX_free(e->ctx);	/* connections made with it keep their reference */
	tlsc_sess_clear(e);	/* sessions of the old settings must not resume */
	e->ctx = ctx;
	e->key = key;
	return ctx;
}

/* The images of s not swept yet (bit k: image k), remembered as swept. */
static uint64_t
tlsc_changed_images(struct tlsclient *tc, const struct snap *s)
{
	uint64_t changed = 0, built;
	const void *id;
	uint32_t k;

	for (k = 0; k < snap_image_count(s); k++) {
		id = snap_image_id(s, k, &built);
		if (id != tc->img_id[k] || built != tc->img_built[k])
			changed |= UINT64_C(1) << k;
		tc->img_id[k] = id;
		tc->img_built[k] = built;
	}
	return changed;
}

/*
 * Drops the contexts of routes gone or changed. Only the images a generation
 * changed are walked: a route's entry stays in its name's image, so the rest
 * still hold theirs (a change of settings is caught at use, by the key).
 */
void
tlsclient_snapshot(struct worker *w, const struct snap *s)
{
	struct tlsclient *tc = w->tlsclient;
	struct tlsc_entry **pp, *e;
	const struct snap_route *r;
	uint64_t changed;
	uint32_t i, k, first, n;

	if (tc == NULL || (changed = tlsc_changed_images(tc, s)) == 0 || tc->count == 0)
		return;
	for (k = 0; k < snap_image_count(s); k++) {
		if (!((changed >> k) & 1))
			continue;
		first = snap_image_first_route(s, k, &n);
		for (i = 0; i < n; i++) {
			r = snap_route_at(s, first + i);
			if ((e = tlsc_find(tc, r->id)) != NULL && e->key == tlsclient_config_key(w, s, r))
				e->seen = 1;
		}
	}
	for (i = 0; i < TLSC_BUCKETS; i++)
		for (pp = &tc->bucket[i]; (e = *pp) != NULL;) {
			if (e->seen || !((changed >> e->shard) & 1)) {
				e->seen = 0;
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			tc->count--;
			tlsc_entry_free(e);
		}
}

/* --- sessions: the client side of resumption, per backend */

static struct tlsc_sess *
tlsc_sess_find(struct tlsc_entry *e, uint32_t backend_id)
{
	uint32_t i;

	for (i = 0; i < e->nsess; i++)
		if (e->sess[i].backend_id == backend_id)
			return &e->sess[i];
	return NULL;
}

void
tlsclient_keep_session(struct worker *w, uint32_t route_id, uint64_t key, uint32_t backend_id,
    const struct tls_conn *c)
{
	struct tlsc_entry *e = tlsc_find(w->tlsclient, route_id);
	struct tlsc_sess *ts;
	SSL_SESSION *sess;

	/* A connection made with older settings leaves nothing. */
	if (e == NULL || e->key != key || (sess = tls_conn_session(c)) == NULL)
		return;
	if ((ts = tlsc_sess_find(e, backend_id)) == NULL) {
		/* More backends than slots (never, by the master's bound): the oldest slot goes. */
		ts = &e->sess[e->nsess < TLSC_SESS_MAX ? e->nsess++ : backend_id % TLSC_SESS_MAX];
		ts->sess = NULL;
	}
	SSL_SESSION_free(ts->sess);
	ts->backend_id = backend_id;
	ts->sess = sess;
}

/* --- connections */

/*
 * Checks the name, or the address when there is none; sends the name as SNI.
 * A backend by DNS name is its own server name unless the route names one.
 */
static int
tlsc_peer_check(SSL *ssl, const struct snap *s, const struct snap_route *r, const char *ip,
    const struct snap_backend *b)
{
	const char *sni = r->backend_sni.len > 0 ? snap_string(s, r->backend_sni) :
	    (b->flags & SNAP_BACKEND_NAME) ? snap_string(s, b->name) : NULL;
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

	if (sni != NULL && SSL_set_tlsext_host_name(ssl, sni) != 1)
		return -1;
	if (r->flags & SNAP_ROUTE_BACKEND_NO_VERIFY)
		return 0;
	if (sni != NULL)
		return X509_VERIFY_PARAM_set1_host(vp, sni, 0) == 1 ? 0 : -1;
	return X509_VERIFY_PARAM_set1_ip_asc(vp, ip) == 1 ? 0 : -1;
}

/* Offers the backend's last session, made with this very context. */
static void
tlsc_resume(struct tlsclient *tc, uint32_t route_id, uint32_t backend_id, SSL *ssl)
{
	struct tlsc_entry *e = tlsc_find(tc, route_id);
	struct tlsc_sess *ts;

	if (e != NULL && e->ctx == SSL_get_SSL_CTX(ssl) &&
	    (ts = tlsc_sess_find(e, backend_id)) != NULL && SSL_set_session(ssl, ts->sess) != 1)
		ERR_clear_error();
}

struct tls_conn *
tlsclient_conn_new(struct worker *w, const struct snap *s, const struct snap_route *r,
    const struct snap_backend *b, int fd)
{
	char ip[INET6_ADDRSTRLEN] = "", be[BEADDR_STR_MAX], peer[BEADDR_STR_MAX + 32];
	SSL_CTX *ctx;
	SSL *ssl = NULL;

	accesslog_backend(s, b, be, sizeof(be));
	snprintf(peer, sizeof(peer), "backend %u (%s)", b->id, be);
	/* A unix socket has no address to check: the route must name the server (or not check). */
	if ((b->family == AF_INET || b->family == AF_INET6) &&
	    inet_ntop(b->family, b->addr, ip, sizeof(ip)) == NULL)
		return NULL;
	if (ip[0] == '\0' && r->backend_sni.len == 0 && !(r->flags & SNAP_ROUTE_BACKEND_NO_VERIFY)) {
		log_warnx("%s: TLS to a unix socket needs --backend-sni or --backend-verify off", peer);
		return NULL;
	}
	ERR_clear_error();
	if ((ctx = tlsc_ctx(w, s, r)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    tlsc_peer_check(ssl, s, r, ip, b) == -1) {
		log_warnx("%s: cannot start TLS", peer);
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	tlsc_resume(w->tlsclient, r->id, b->id, ssl);
	return tls_conn_wrap(ssl, peer);
}
