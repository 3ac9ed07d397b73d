/*
 * The master's keyring: builds the sealed image of share/keyring.h from the
 * store's certificates and the ticket keys it makes and rotates, keeps the
 * current memfd for respawned workers, and answers which certificate covers
 * a host for the snapshot builder. Keys are read from the store only while
 * a keyring is built, and every scratch copy is wiped.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "master/acmemaster.h"
#include "master/certs.h"
#include "master/keyringbuild.h"
#include "master/workers.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/store.h"
#include "master/ticketshare.h"
#include "share/hash.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/keyring.h"
#include "share/log.h"
#include "share/sealed.h"
#include "share/msg.h"
#include "share/util.h"

#define KB_ALIGN(x) (((x) + 7) & ~(uint64_t)7)

/* --- the image builder */

struct kb {
	const struct mkeyring_input *in;
	uint8_t *img;
	uint64_t size;
	struct keyring_header *hdr;
	uint64_t nnames, data_size, data_next;
	char *err;
	size_t errlen;
};

static int kb_fail(struct kb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
kb_fail(struct kb *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_verrf(b->err, b->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Sizes every region and checks what the format bounds. */
static int
kb_measure(struct kb *b)
{
	const struct mkeyring_cert_in *c;
	uint32_t i, j;

	if (b->in->nkeys > KEYRING_MAX_KEYS || b->in->ncerts > KEYRING_MAX_CERTS)
		return kb_fail(b, "%u keys / %u certificates: too many", b->in->nkeys,
		    b->in->ncerts);
	for (i = 0; i < b->in->ncerts; i++) {
		c = &b->in->certs[i];
		if (c->chain_len == 0 || c->chain_len > KEYRING_PEM_MAX || c->key_len == 0 ||
		    c->key_len > KEYRING_PEM_MAX || c->nnames > KEYRING_MAX_NAMES)
			return kb_fail(b, "certificate %u: chain, key or names out of bounds", c->id);
		b->data_size += c->chain_len + 1 + c->key_len + 1;
		for (j = 0; j < c->nnames; j++)
			b->data_size += strlen(c->names[j]) + 1;
		b->nnames += c->nnames;
	}
	b->size = sizeof(struct keyring_header) +
	    KB_ALIGN((uint64_t)b->in->nkeys * sizeof(struct keyring_ticket_key)) +
	    KB_ALIGN((uint64_t)b->in->ncerts * sizeof(struct keyring_cert)) +
	    KB_ALIGN(b->nnames * sizeof(struct keyring_blob)) + KB_ALIGN(b->data_size);
	if (b->size > KEYRING_MAX_SIZE)
		return kb_fail(b, "keyring of %llu bytes is too large", (unsigned long long)b->size);
	return 0;
}

/* Copies n bytes and a NUL into DATA. */
static struct keyring_blob
kb_blob(struct kb *b, const void *p, size_t n)
{
	struct keyring_blob r = { (uint32_t)b->data_next, (uint32_t)n };

	memcpy(b->img + b->hdr->data_off + b->data_next, p, n);
	b->img[b->hdr->data_off + b->data_next + n] = '\0';
	b->data_next += n + 1;
	return r;
}

static void
kb_frame(struct kb *b)
{
	struct keyring_header *h = b->hdr;
	uint64_t off = sizeof(*h);

	memcpy(h->magic, KEYRING_MAGIC, sizeof(h->magic));
	h->major = KEYRING_MAJOR;
	h->minor = KEYRING_MINOR;
	h->header_size = sizeof(*h);
	h->generation = b->in->generation;
	h->file_size = b->size;
	h->built_at = b->in->built_at;
	h->nkeys = b->in->nkeys;
	h->keys_off = (uint32_t)off;
	off += KB_ALIGN((uint64_t)h->nkeys * sizeof(struct keyring_ticket_key));
	h->ncerts = b->in->ncerts;
	h->certs_off = (uint32_t)off;
	off += KB_ALIGN((uint64_t)h->ncerts * sizeof(struct keyring_cert));
	h->nnames = (uint32_t)b->nnames;
	h->names_off = (uint32_t)off;
	off += KB_ALIGN(b->nnames * sizeof(struct keyring_blob));
	h->data_off = (uint32_t)off;
	h->data_size = (uint32_t)KB_ALIGN(b->data_size);
	h->default_cert = b->in->default_cert;
}

static void
kb_fill(struct kb *b)
{
	struct keyring_cert *out = (void *)(b->img + b->hdr->certs_off);
	struct keyring_blob *names = (void *)(b->img + b->hdr->names_off);
	const struct mkeyring_cert_in *c;
	uint32_t i, j, n = 0;

	if (b->in->nkeys > 0)
		memcpy(b->img + b->hdr->keys_off, b->in->keys,
		    (size_t)b->in->nkeys * sizeof(struct keyring_ticket_key));
	for (i = 0; i < b->in->ncerts; i++) {
		c = &b->in->certs[i];
		out[i].id = c->id;
		out[i].source = c->source;
		memcpy(out[i].fingerprint, c->fingerprint, sizeof(out[i].fingerprint));
		out[i].not_before = c->not_before;
		out[i].not_after = c->not_after;
		out[i].chain = kb_blob(b, c->chain, c->chain_len);
		out[i].key = kb_blob(b, c->key, c->key_len);
		out[i].name_first = n;
		out[i].name_count = c->nnames;
		for (j = 0; j < c->nnames; j++)
			names[n++] = kb_blob(b, c->names[j], strlen(c->names[j]));
	}
	b->hdr->crc32c = hash_crc32c(0, b->img, b->size);
}

/* Copies the image into a new memfd and seals it against any change. */
static int
kb_publish(struct kb *b, int *out)
{
	char err[256];

	if ((*out = sealed_create("haloyd-keyring", b->img, b->size, err, sizeof(err))) == -1)
		return kb_fail(b, "%s", err);
	return 0;
}

int
mkeyring_build(const struct mkeyring_input *in, int *fd, char *err, size_t errlen)
{
	struct kb b;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	b.in = in;
	b.err = err;
	b.errlen = errlen;
	*fd = -1;
	if (kb_measure(&b) == -1)
		return -1;
	if ((b.img = calloc(1, b.size)) == NULL)
		return kb_fail(&b, "out of memory for a %llu-byte keyring",
		    (unsigned long long)b.size);
	b.hdr = (struct keyring_header *)b.img;
	kb_frame(&b);
	kb_fill(&b);
	/* The reader's checks catch a bad name or PEM here, not in every worker. */
	if (keyring_validate(b.img, b.size, err, errlen) == -1 || kb_publish(&b, fd) == -1)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(b.img, b.size);
	free(b.img);
	return rc;
}

/* --- the master's state */

/* What the index knows of one certificate: no PEM, no key. */
struct kr_entry {
	uint32_t id;
	uint16_t source;
	int64_t not_before, not_after;
};

/* One (name, certificate) pair; the array is sorted by name. */
struct kr_name {
	char *name;
	uint32_t entry;
};

struct mkeyring {
	struct keyring_ticket_key keys[KEYRING_MAX_KEYS];
	uint32_t nkeys;
	struct kr_entry *entries;
	uint32_t nentries;
	struct kr_name *names;
	uint32_t nnames;
	int dirty;		/* certificates or keys changed since the last image */
	uint32_t index_gen;	/* counts mkeyring_reload's: which cert covers a host may change */
	int fd;			/* the current image, -1 before the first */
	uint32_t gen;		/* the generation it was built for */
	struct ev_timer rotate;
	struct ticketshare share;	/* a shared store's keys (master/ticketshare.h) */
};

/* A new current key; the old current one becomes the previous. */
static int
kr_new_ticket_key(struct master *m, struct mkeyring *kr)
{
	struct keyring_ticket_key k;
	uint64_t life_s = m->cfg.ticket_key_lifetime_ms / 1000;

	memset(&k, 0, sizeof(k));
	if (RAND_bytes(k.name, sizeof(k.name)) != 1 ||
	    RAND_bytes(k.hmac_key, sizeof(k.hmac_key)) != 1 ||
	    RAND_bytes(k.aes_key, sizeof(k.aes_key)) != 1) {
		log_warnx("cannot make a session-ticket key: RAND_bytes failed");
		return -1;
	}
	/* Current for one lifetime, then previous (decrypt only) for one more. */
	k.not_after = (uint64_t)time(NULL) + 2 * (life_s > 0 ? life_s : 1);
	kr->keys[1] = kr->keys[0];
	kr->keys[0] = k;
	OPENSSL_cleanse(&k, sizeof(k));
	kr->nkeys = kr->nkeys < KEYRING_MAX_KEYS ? kr->nkeys + 1 : KEYRING_MAX_KEYS;
	kr->dirty = 1;
	return 0;
}

static void
kr_rotate_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct master *m = t->arg;

	ev_timer_start(l, t, m->cfg.ticket_key_lifetime_ms);
	if (kr_new_ticket_key(m, m->keyring) == 0) {
		log_info("session-ticket key rotated");
		publish_changed(m);
	}
}

static void
kr_index_clear(struct mkeyring *kr)
{
	uint32_t i;

	for (i = 0; i < kr->nnames; i++)
		free(kr->names[i].name);
	free(kr->names);
	free(kr->entries);
	kr->names = NULL;
	kr->entries = NULL;
	kr->nnames = kr->nentries = 0;
}

/* The index being loaded: grown by kr_index_add. */
struct kr_load {
	struct mkeyring *kr;
	uint32_t capentries, capnames;
};

static int
kr_index_add(void *arg, const struct store_cert *c)
{
	struct kr_load *ld = arg;
	struct mkeyring *kr = ld->kr;
	size_t i;

	if (kr->nentries == ld->capentries) {
		ld->capentries = ld->capentries ? ld->capentries * 2 : 16;
		void *p = reallocarray(kr->entries, ld->capentries, sizeof(*kr->entries));
		if (p == NULL)
			return -1;
		kr->entries = p;
	}
	kr->entries[kr->nentries] = (struct kr_entry){ (uint32_t)c->id, (uint16_t)c->source,
	    c->not_before, c->not_after };
	for (i = 0; i < c->nnames; i++) {
		if (kr->nnames == ld->capnames) {
			ld->capnames = ld->capnames ? ld->capnames * 2 : 64;
			void *p = reallocarray(kr->names, ld->capnames, sizeof(*kr->names));
			if (p == NULL)
				return -1;
			kr->names = p;
		}
		if ((kr->names[kr->nnames].name = strdup(c->names[i])) == NULL)
			return -1;
		kr->names[kr->nnames++].entry = kr->nentries;
	}
	kr->nentries++;
	return 0;
}

static int
kr_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kr_name *)a)->name, ((const struct kr_name *)b)->name);
}

int
mkeyring_reload(struct master *m)
{
	struct mkeyring *kr = m->keyring;
	struct kr_load ld = { kr, 0, 0 };

	kr_index_clear(kr);
	kr->dirty = 1;
	kr->index_gen++;
	if (store_cert_foreach(m->store, 0, kr_index_add, &ld) != 0) {
		log_warnx("cannot read the certificates from the store");
		kr_index_clear(kr);
		return -1;
	}
	if (kr->nnames > 0)
		qsort(kr->names, kr->nnames, sizeof(*kr->names), kr_name_cmp);
	/* A shared store's ticket keys come with its certificates (and its notices). */
	if (store_shared(m->store) && ticketshare_load(m) == -1)
		return -1;
	return 0;
}

/* Makes the self-signed default if the store has none. */
static int
kr_ensure_default(struct master *m)
{
	struct store_cert sc;
	struct certs_info ci;
	char err[256];
	int rc;

	if ((rc = store_cert_get(m->store, NULL, 0, &sc)) == STORE_OK) {
		store_cert_free(&sc);
		return 0;
	}
	if (rc != STORE_ENOENT)
		return -1;
	if (certs_make_default(time(NULL), &ci, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	memset(&sc, 0, sizeof(sc));
	sc.source = KEYRING_SRC_DEFAULT;
	sc.chain = ci.chain;
	sc.key = ci.key;
	sc.issuer = ci.issuer;
	sc.fingerprint = ci.fingerprint_hex;
	sc.not_before = ci.not_before;
	sc.not_after = ci.not_after;
	rc = store_cert_put(m->store, &sc, NULL);
	certs_info_free(&ci);
	if (rc != STORE_OK)
		return -1;
	log_info("made the self-signed default certificate (CN %s)", CERTS_DEFAULT_CN);
	return 0;
}

int
mkeyring_init(struct master *m)
{
	struct mkeyring *kr;

	if ((kr = calloc(1, sizeof(*kr))) == NULL) {
		log_warn("keyring");
		return -1;
	}
	kr->fd = -1;
	m->keyring = kr;
	ev_timer_init(&kr->rotate, kr_rotate_fire, m);
	if (kr_new_ticket_key(m, kr) == -1 || kr_ensure_default(m) == -1 ||
	    mkeyring_reload(m) == -1)
		return -1;
	/* Several nodes: the holder of the store's lease rotates them for all. */
	if (store_shared(m->store))
		return ticketshare_start(m, &kr->share);
	ev_timer_start(m->loop, &kr->rotate, m->cfg.ticket_key_lifetime_ms);
	return 0;
}

int
mkeyring_ticket_key_new(struct master *m)
{
	return kr_new_ticket_key(m, m->keyring);
}

const struct keyring_ticket_key *
mkeyring_ticket_keys(const struct master *m, uint32_t *n)
{
	*n = m->keyring->nkeys;
	return m->keyring->keys;
}

int
mkeyring_ticket_keys_set(struct master *m, const struct keyring_ticket_key *k, uint32_t n)
{
	struct mkeyring *kr = m->keyring;

	if (n > KEYRING_MAX_KEYS)
		n = KEYRING_MAX_KEYS;
	if (n == kr->nkeys && CRYPTO_memcmp(kr->keys, k, n * sizeof(*k)) == 0)
		return 0;
	OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
	memcpy(kr->keys, k, n * sizeof(*k));
	kr->nkeys = n;
	kr->dirty = 1;
	return 1;
}

void
mkeyring_free(struct master *m)
{
	struct mkeyring *kr = m->keyring;

	if (kr == NULL)
		return;
	ev_timer_stop(m->loop, &kr->rotate);
	ticketshare_stop(&kr->share);
	kr_index_clear(kr);
	if (kr->fd >= 0)
		close(kr->fd);
	OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
	free(kr);
	m->keyring = NULL;
}

/* The certificates of one build, copied out of the store (keys wiped after). */
struct kr_collect {
	struct mkeyring_cert_in *certs;
	uint32_t ncerts, cap;
	uint32_t default_cert;
};

static void
kr_collect_free(struct kr_collect *col)
{
	uint32_t i, j;

	for (i = 0; i < col->ncerts; i++) {
		struct mkeyring_cert_in *c = &col->certs[i];

		for (j = 0; j < c->nnames; j++)
			free((void *)(uintptr_t)c->names[j]);
		free((void *)(uintptr_t)c->names);
		free((void *)(uintptr_t)c->chain);
		if (c->key != NULL) {
			OPENSSL_cleanse((void *)(uintptr_t)c->key, strlen(c->key));
			free((void *)(uintptr_t)c->key);
		}
	}
	free(col->certs);
}

/* 0 when the hex fingerprint was decoded into out. */
static int
kr_unhex(const char *hex, uint8_t out[KEYRING_FP_LEN])
{
	unsigned int v;
	size_t i;

	if (hex == NULL || strlen(hex) != 2 * KEYRING_FP_LEN)
		return -1;
	for (i = 0; i < KEYRING_FP_LEN; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* The next certificate of col, zeroed; NULL when out of memory. */
static struct mkeyring_cert_in *
kr_collect_slot(struct kr_collect *col)
{
	struct mkeyring_cert_in *c;

	if (col->ncerts == col->cap) {
		uint32_t cap = col->cap ? col->cap * 2 : 16;
		void *p = reallocarray(col->certs, cap, sizeof(*col->certs));

		if (p == NULL)
			return NULL;
		col->certs = p;
		col->cap = cap;
	}
	c = &col->certs[col->ncerts++];
	memset(c, 0, sizeof(*c));
	return c;
}

static int
kr_collect_one(void *arg, const struct store_cert *sc)
{
	struct kr_collect *col = arg;
	struct mkeyring_cert_in *c;
	char **names;
	size_t i;

	if ((c = kr_collect_slot(col)) == NULL)
		return -1;
	c->id = (uint32_t)sc->id;
	c->source = (uint16_t)sc->source;
	c->not_before = sc->not_before;
	c->not_after = sc->not_after;
	if (sc->source == KEYRING_SRC_DEFAULT)
		col->default_cert = col->ncerts - 1;
	if (kr_unhex(sc->fingerprint, c->fingerprint) == -1 || sc->key == NULL ||
	    (c->chain = strdup(sc->chain)) == NULL || (c->key = strdup(sc->key)) == NULL ||
	    (names = calloc(sc->nnames + 1, sizeof(*names))) == NULL)
		return -1;
	c->chain_len = strlen(c->chain);
	c->key_len = strlen(c->key);
	c->names = (const char *const *)names;
	for (i = 0; i < sc->nnames; i++, c->nnames++)
		if ((names[i] = strdup(sc->names[i])) == NULL)
			return -1;
	return 0;
}

/*
 * The running order's TLS-ALPN-01 certificates (master/acmemaster.c), after the
 * store's: ids from KEYRING_CHAL_ID_BASE keep the order ascending.
 */
static int
kr_collect_chals(struct master *m, struct kr_collect *col)
{
	const struct acme_alpn_cert *v;
	struct mkeyring_cert_in *c;
	char **names;
	uint32_t i, n = acme_alpn_certs(m, &v);
	int64_t now = (int64_t)time(NULL);

	for (i = 0; i < n; i++) {
		if ((c = kr_collect_slot(col)) == NULL)
			return -1;
		c->id = KEYRING_CHAL_ID_BASE + i;
		c->source = KEYRING_SRC_ACME_CHAL;
		c->not_before = now;
		c->not_after = now;
		if (EVP_Digest(v[i].cert, strlen(v[i].cert), c->fingerprint, NULL, EVP_sha256(),
		    NULL) != 1 || (c->chain = strdup(v[i].cert)) == NULL ||
		    (c->key = strdup(v[i].key)) == NULL || (names = calloc(1, sizeof(*names))) == NULL)
			return -1;
		c->chain_len = strlen(c->chain);
		c->key_len = strlen(c->key);
		c->names = (const char *const *)names;
		if ((names[0] = strdup(v[i].host)) == NULL)
			return -1;
		c->nnames = 1;
	}
	return 0;
}

void
mkeyring_changed(struct master *m)
{
	if (m->keyring != NULL)
		m->keyring->dirty = 1;
}

int
mkeyring_prepare(struct master *m, uint64_t gen)
{
	struct mkeyring *kr = m->keyring;
	struct kr_collect col = { NULL, 0, 0, KEYRING_NONE };
	struct mkeyring_input in;
	char err[256];
	int fd, rc = -1;

	if (!kr->dirty)
		return 0;
	if (store_cert_foreach(m->store, 1, kr_collect_one, &col) != 0 ||
	    kr_collect_chals(m, &col) == -1) {
		log_warnx("cannot read the certificates to build keyring %llu",
		    (unsigned long long)gen);
		goto out;
	}
	memset(&in, 0, sizeof(in));
	in.keys = kr->keys;
	in.nkeys = kr->nkeys;
	in.certs = col.certs;
	in.ncerts = col.ncerts;
	in.default_cert = col.default_cert;
	in.generation = gen;
	in.built_at = util_wall_ns();
	if (mkeyring_build(&in, &fd, err, sizeof(err)) == -1) {
		log_warnx("cannot build keyring %llu: %s", (unsigned long long)gen, err);
		goto out;
	}
	if (kr->fd >= 0)
		close(kr->fd);
	kr->fd = fd;
	kr->gen = (uint32_t)gen;
	kr->dirty = 0;
	log_info("keyring %u built: %u certificates, %u ticket keys", kr->gen, col.ncerts,
	    kr->nkeys);
	rc = 0;
out:
	kr_collect_free(&col);
	return rc;
}

int
mkeyring_send(struct master *m, struct mworker *w)
{
	struct mkeyring *kr = m->keyring;

	/* Workers without an HTTPS listener never need a private key: they get none. */
	if (kr == NULL || kr->fd < 0 || m->lst_https.naddrs == 0 || w->keyring_gen == kr->gen)
		return 0;
	if (ipc_send(w->proc.sock, MSG_W_KEYRING, 0, kr->gen, NULL, 0, kr->fd) == -1) {
		log_warn("sending keyring %u to worker %d", kr->gen, w->proc.index);
		return -1;
	}
	w->keyring_gen = kr->gen;
	return 0;
}

int
mkeyring_current(const struct master *m, uint32_t *gen)
{
	const struct mkeyring *kr = m->keyring;

	if (kr == NULL || kr->fd < 0)
		return -1;
	*gen = kr->gen;
	return kr->fd;
}

/* --- which certificate covers a host */

/* a is a better choice than b: valid now, then the later expiry, then the newer. */
static int
kr_better(const struct kr_entry *a, const struct kr_entry *b, int64_t now)
{
	int va = a->not_before <= now && now <= a->not_after;
	int vb = b->not_before <= now && now <= b->not_after;

	if (va != vb)
		return va;
	if (a->not_after != b->not_after)
		return a->not_after > b->not_after;
	return a->id > b->id;
}

/* The index of the first pair with name in the sorted names, or nnames. */
static uint32_t
kr_first(const struct mkeyring *kr, const char *name)
{
	uint32_t lo = 0, hi = kr->nnames, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(kr->names[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The best certificate listing name exactly, or NULL. */
static const struct kr_entry *
kr_best_named(const struct mkeyring *kr, const char *name, int64_t now)
{
	const struct kr_entry *best = NULL, *e;
	uint32_t i;

	for (i = kr_first(kr, name); i < kr->nnames && strcmp(kr->names[i].name, name) == 0; i++) {
		e = &kr->entries[kr->names[i].entry];
		if (best == NULL || kr_better(e, best, now))
			best = e;
	}
	return best;
}

/* Writes the one-label wildcard that would cover host into buf; -1 when none can. */
static int
kr_wildcard_of(const char *host, char *buf, size_t len)
{
	const char *dot = strchr(host, '.');

	if (hostname_is_wildcard(host) || dot == NULL || dot == host || dot[1] == '\0')
		return -1;
	return (size_t)snprintf(buf, len, "*%s", dot) < len ? 0 : -1;
}

/* 1 when entry e lists name. */
static int
kr_lists(const struct mkeyring *kr, const struct kr_entry *e, const char *name)
{
	uint32_t i;

	for (i = kr_first(kr, name); i < kr->nnames && strcmp(kr->names[i].name, name) == 0; i++)
		if (&kr->entries[kr->names[i].entry] == e)
			return 1;
	return 0;
}

uint32_t
mkeyring_cert_for(const struct master *m, const char *host, const char *route)
{
	const struct mkeyring *kr = m->keyring;
	const struct kr_entry *e, *own = NULL;
	char wild[HOSTNAME_MAX + 2];
	int64_t now = (int64_t)time(NULL);

	if (kr == NULL)
		return 0;
	if ((e = kr_best_named(kr, host, now)) != NULL)
		return e->id;
	if (kr_wildcard_of(host, wild, sizeof(wild)) == -1)
		return 0;
	/* The route's own certificate wins over another wildcard that also fits. */
	if (route != NULL && strcmp(route, host) != 0 &&
	    (own = kr_best_named(kr, route, now)) != NULL && kr_lists(kr, own, wild))
		return own->id;
	if ((e = kr_best_named(kr, wild, now)) != NULL)
		return e->id;
	return 0;
}

int64_t
mkeyring_next_change(const struct master *m, int64_t now)
{
	const struct mkeyring *kr = m->keyring;
	int64_t next = 0, t[2];
	uint32_t i, j;

	for (i = 0; kr != NULL && i < kr->nentries; i++) {
		/* kr_better's "valid now" flips at not_before and a second past not_after. */
		t[0] = kr->entries[i].not_before;
		t[1] = kr->entries[i].not_after < INT64_MAX ? kr->entries[i].not_after + 1 : 0;
		for (j = 0; j < 2; j++)
			if (t[j] > now && (next == 0 || t[j] < next))
				next = t[j];
	}
	return next;
}

uint32_t
mkeyring_cert_count(const struct master *m)
{
	return m->keyring != NULL ? m->keyring->nentries : 0;
}

uint32_t
mkeyring_generation(const struct master *m)
{
	return m->keyring != NULL ? m->keyring->gen : 0;
}

uint32_t
mkeyring_index_generation(const struct master *m)
{
	return m->keyring != NULL ? m->keyring->index_gen : 0;
}
