/*
 * The cache's LMDB environment (see cachestore.h). Three databases:
 *   obj:  key -> entry
 *   meta: key -> { atime, size } and, under "\0total", the bytes of all entries
 *   lru:  atime (big-endian) + key -> nothing: oldest first
 * and, in meta under "\1" + key, the fill locks: { expiry (ms), pid }.
 * so eviction walks lru from its start. The map is bounded: twice the
 * budget plus 16 MiB (LMDB writes copies of the pages a transaction
 * changes, and the freed ones are reused only once no reader holds them).
 * MDB_NOSYNC: a cache may lose its last writes when the machine crashes
 * (LMDB stays consistent on a file system that keeps write order); a
 * process that dies loses nothing that was committed.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "share/log.h"
#include "worker/cachestore.h"

#define CS_KEY_MAX 480		/* LMDB's key limit is 511 bytes; lru keys add 8 */
/*
 * Reader slots, shared by every process of the environment (64 bytes each
 * in lock.mdb): a hit holds one while it is served from the map (up to 1 s,
 * see cacheserve.c). When all are taken a lookup fails and the request goes
 * to the backend, so this bounds in-flight hits, not correctness.
 */
#define CS_READERS 4096
static const char cs_total_key[] = "\0total";

struct cachestore {
	MDB_env *env;
	MDB_dbi obj, meta, lru;
	uint64_t max_bytes;
	cachestore_evict_fn *evict_fn;	/* cachestore_on_evict */
	void *evict_arg;
	uint32_t nevicted;		/* in the store's transaction: told after its commit */
	uint8_t evicted[CACHESTORE_EVICT_MAX][CACHESTORE_EVICT_HEAD];
	uint8_t evicted_len[CACHESTORE_EVICT_MAX];
	struct {
		uint64_t off, len;	/* where in the map; len 0: empty */
		uint32_t tag;
	} checked[CACHESTORE_CHECKED];
};

struct cs_meta {
	int64_t atime;
	uint64_t size;
};

static void
cs_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* The lru key of (atime, key) in buf: 8 + klen bytes. */
static MDB_val
cs_lru_key(unsigned char *buf, int64_t atime, const void *key, size_t klen)
{
	cs_be64(buf, (uint64_t)atime);
	memcpy(buf + 8, key, klen);
	return (MDB_val){ 8 + klen, buf };
}

struct cachestore *
cachestore_open(const char *dir, uint64_t max_bytes)
{
	struct cachestore *cs = calloc(1, sizeof(*cs));
	MDB_txn *txn = NULL;
	int rc, dead = 0;

	if (cs == NULL)
		return NULL;
	cs->max_bytes = max_bytes;
	if ((rc = mdb_env_create(&cs->env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_maxdbs(cs->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(cs->env, (size_t)(max_bytes * 2 + (16u << 20)))) != 0 ||
	    (rc = mdb_env_set_maxreaders(cs->env, CS_READERS)) != 0 ||
	    (rc = mdb_env_open(cs->env, dir, MDB_NOSYNC | MDB_NOTLS, 0600)) != 0)
		goto fail;
	/* Reader slots of workers that died inside a read. */
	(void)mdb_reader_check(cs->env, &dead);
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "obj", MDB_CREATE, &cs->obj)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &cs->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &cs->lru)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	return cs;
fail:
	log_warnx("cache %s: %s", dir, mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (cs->env != NULL)
		mdb_env_close(cs->env);
	free(cs);
	return NULL;
}

void
cachestore_close(struct cachestore *cs)
{
	if (cs == NULL)
		return;
	mdb_env_close(cs->env);
	free(cs);
}

/*
 * The lookup both reads share: 1 with *txn open on the entry's value and
 * its access time, 0 when there is none or -1 (logged), *txn closed.
 */
static int
cs_lookup(struct cachestore *cs, const void *key, size_t klen, MDB_txn **txn, MDB_val *v,
    int64_t *atime)
{
	MDB_val k = { klen, (void *)(uintptr_t)key }, m;
	struct cs_meta meta = { 0, 0 };
	int rc;

	if (klen == 0 || klen > CS_KEY_MAX)
		return 0;
	if ((rc = mdb_txn_begin(cs->env, NULL, MDB_RDONLY, txn)) != 0) {
		log_warnx("cache: read: %s", mdb_strerror(rc));
		return -1;
	}
	if ((rc = mdb_get(*txn, cs->obj, &k, v)) != 0) {
		mdb_txn_abort(*txn);
		if (rc == MDB_NOTFOUND)
			return 0;
		log_warnx("cache: read: %s", mdb_strerror(rc));
		return -1;
	}
	if (mdb_get(*txn, cs->meta, &k, &m) == 0 && m.mv_size == sizeof(meta))
		memcpy(&meta, m.mv_data, sizeof(meta));
	*atime = meta.atime;
	return 1;
}

int
cachestore_get(struct cachestore *cs, const void *key, size_t klen, char **val, size_t *vlen,
    int64_t *atime)
{
	MDB_txn *txn;
	MDB_val v;
	int rc;

	*val = NULL;
	if ((rc = cs_lookup(cs, key, klen, &txn, &v, atime)) != 1)
		return rc;
	if ((*val = malloc(v.mv_size > 0 ? v.mv_size : 1)) != NULL) {
		memcpy(*val, v.mv_data, v.mv_size);
		*vlen = v.mv_size;
	}
	mdb_txn_abort(txn);
	if (*val == NULL) {
		log_warnx("cache: read: out of memory");
		return -1;
	}
	return 1;
}

int
cachestore_get_ref(struct cachestore *cs, const void *key, size_t klen, const char **val,
    size_t *vlen, int64_t *atime, struct cachestore_ref **ref)
{
	MDB_txn *txn;
	MDB_val v;
	int rc;

	*ref = NULL;
	if ((rc = cs_lookup(cs, key, klen, &txn, &v, atime)) != 1)
		return rc;
	*val = v.mv_data;
	*vlen = v.mv_size;
	*ref = (struct cachestore_ref *)txn;	/* the read transaction is the reference */
	return 1;
}

void
cachestore_release(struct cachestore_ref *ref)
{
	if (ref != NULL)
		mdb_txn_abort((MDB_txn *)ref);
}

/* A value's place in the map (its address there). */
static uint32_t
cs_checked_slot(const void *val, size_t vlen)
{
	uint64_t h = ((uint64_t)(uintptr_t)val ^ vlen) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h >> 56) % CACHESTORE_CHECKED;
}

int
cachestore_checked(struct cachestore *cs, const void *val, size_t vlen, uint32_t tag)
{
	uint32_t i = cs_checked_slot(val, vlen);

	return cs->checked[i].len == vlen && vlen != 0 &&
	    cs->checked[i].off == (uint64_t)(uintptr_t)val && cs->checked[i].tag == tag;
}

void
cachestore_set_checked(struct cachestore *cs, const void *val, size_t vlen, uint32_t tag)
{
	uint32_t i = cs_checked_slot(val, vlen);

	cs->checked[i].off = (uint64_t)(uintptr_t)val;
	cs->checked[i].len = vlen;
	cs->checked[i].tag = tag;
}

static uint64_t
cs_total(MDB_txn *txn, struct cachestore *cs)
{
	MDB_val k = { sizeof(cs_total_key), (void *)(uintptr_t)cs_total_key }, v;
	uint64_t t = 0;

	if (mdb_get(txn, cs->meta, &k, &v) == 0 && v.mv_size == sizeof(t))
		memcpy(&t, v.mv_data, sizeof(t));
	return t;
}

static int
cs_set_total(MDB_txn *txn, struct cachestore *cs, uint64_t t)
{
	MDB_val k = { sizeof(cs_total_key), (void *)(uintptr_t)cs_total_key }, v = { sizeof(t), &t };

	return mdb_put(txn, cs->meta, &k, &v, 0);
}

/* Removes key's entry, meta and lru record; *size gets its bytes (0: none). */
static int
cs_remove(MDB_txn *txn, struct cachestore *cs, MDB_val *k, uint64_t *size)
{
	unsigned char buf[8 + CS_KEY_MAX];
	struct cs_meta meta;
	MDB_val m, lk;
	int rc;

	*size = 0;
	if (k->mv_size > CS_KEY_MAX)
		return 0;
	if ((rc = mdb_get(txn, cs->meta, k, &m)) == 0 && m.mv_size == sizeof(meta)) {
		memcpy(&meta, m.mv_data, sizeof(meta));
		*size = meta.size;
		lk = cs_lru_key(buf, meta.atime, k->mv_data, k->mv_size);
		if ((rc = mdb_del(txn, cs->lru, &lk, NULL)) != 0 && rc != MDB_NOTFOUND)
			return rc;
		if ((rc = mdb_del(txn, cs->meta, k, NULL)) != 0)
			return rc;
	}
	if ((rc = mdb_del(txn, cs->obj, k, NULL)) != 0 && rc != MDB_NOTFOUND)
		return rc;
	return 0;
}

/* What the eviction of k tells cachestore_on_evict's function after the commit. */
static void
cs_note_evicted(MDB_txn *txn, struct cachestore *cs, MDB_val *k)
{
	uint32_t i = cs->nevicted;
	MDB_val v;

	if (mdb_get(txn, cs->obj, k, &v) != 0)
		return;
	cs->nevicted++;
	if (i >= CACHESTORE_EVICT_MAX)
		return;
	cs->evicted_len[i] = (uint8_t)(v.mv_size < CACHESTORE_EVICT_HEAD ? v.mv_size :
	    CACHESTORE_EVICT_HEAD);
	memcpy(cs->evicted[i], v.mv_data, cs->evicted_len[i]);
}

static void
cs_tell_evicted(struct cachestore *cs)
{
	uint32_t i;

	for (i = 0; i < cs->nevicted && cs->evict_fn != NULL; i++)
		cs->evict_fn(cs->evict_arg, i < CACHESTORE_EVICT_MAX ? cs->evicted[i] : NULL,
		    i < CACHESTORE_EVICT_MAX ? cs->evicted_len[i] : 0);
	cs->nevicted = 0;
}

void
cachestore_on_evict(struct cachestore *cs, cachestore_evict_fn *fn, void *arg)
{
	cs->evict_fn = fn;
	cs->evict_arg = arg;
}

/* Evicts the least recently used entries until *total is at most target. */
static int
cs_evict(MDB_txn *txn, struct cachestore *cs, uint64_t *total, uint64_t target)
{
	unsigned char key[CS_KEY_MAX];
	MDB_cursor *c;
	MDB_val lk, lv, k;
	uint64_t size;
	int rc = 0;

	while (*total > target) {
		if ((rc = mdb_cursor_open(txn, cs->lru, &c)) != 0)
			return rc;
		rc = mdb_cursor_get(c, &lk, &lv, MDB_FIRST);
		if (rc == 0 && (lk.mv_size <= 8 || lk.mv_size - 8 > sizeof(key)))
			rc = mdb_cursor_del(c, 0);	/* not ours: dropped */
		else if (rc == 0) {
			memcpy(key, (char *)lk.mv_data + 8, lk.mv_size - 8);
			k = (MDB_val){ lk.mv_size - 8, key };
			mdb_cursor_close(c);
			c = NULL;
			cs_note_evicted(txn, cs, &k);
			if ((rc = cs_remove(txn, cs, &k, &size)) != 0)
				return rc;
			*total = size > *total ? 0 : *total - size;
			if (size == 0)	/* an lru record without its meta */
				(void)mdb_del(txn, cs->lru, &lk, NULL);
		}
		if (c != NULL)
			mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND) {	/* empty: the count was off */
			*total = 0;
			return 0;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
cs_put_tx(struct cachestore *cs, MDB_val *k, MDB_val *v, int64_t now, uint64_t target)
{
	unsigned char buf[8 + CS_KEY_MAX];
	struct cs_meta meta = { now, v->mv_size };
	MDB_val m = { sizeof(meta), &meta }, lk = cs_lru_key(buf, now, k->mv_data, k->mv_size);
	MDB_val empty = { 0, NULL };
	MDB_txn *txn;
	uint64_t total, old;
	int rc;

	cs->nevicted = 0;	/* an aborted try evicted nothing */
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0)
		return rc;
	total = cs_total(txn, cs);
	if ((rc = cs_remove(txn, cs, k, &old)) != 0)
		goto fail;
	total = old > total ? 0 : total - old;
	if (total + v->mv_size > target &&
	    (rc = cs_evict(txn, cs, &total, target > v->mv_size ? target - v->mv_size : 0)) != 0)
		goto fail;
	if ((rc = mdb_put(txn, cs->obj, k, v, 0)) != 0 ||
	    (rc = mdb_put(txn, cs->meta, k, &m, 0)) != 0 ||
	    (rc = mdb_put(txn, cs->lru, &lk, &empty, 0)) != 0 ||
	    (rc = cs_set_total(txn, cs, total + v->mv_size)) != 0)
		goto fail;
	return mdb_txn_commit(txn);
fail:
	mdb_txn_abort(txn);
	return rc;
}

int
cachestore_put(struct cachestore *cs, const void *key, size_t klen, const void *val,
    size_t vlen, int64_t now)
{
	MDB_val k = { klen, (void *)(uintptr_t)key }, v = { vlen, (void *)(uintptr_t)val };
	int rc;

	if (klen == 0 || klen > CS_KEY_MAX || vlen > cs->max_bytes)
		return -1;
	rc = cs_put_tx(cs, &k, &v, now, cs->max_bytes);
	/* The map is full of pages readers still hold or the free list: make more room. */
	if (rc == MDB_MAP_FULL)
		rc = cs_put_tx(cs, &k, &v, now, cs->max_bytes / 2);
	if (rc != 0) {
		cs->nevicted = 0;
		log_warnx("cache: store: %s", mdb_strerror(rc));
		return -1;
	}
	cs_tell_evicted(cs);
	return 0;
}

int
cachestore_touch(struct cachestore *cs, const void *key, size_t klen, int64_t atime,
    int64_t now)
{
	unsigned char buf[8 + CS_KEY_MAX];
	MDB_val k = { klen, (void *)(uintptr_t)key }, m, lk, empty = { 0, NULL };
	struct cs_meta meta;
	MDB_txn *txn;
	int rc;

	if (now - atime < CACHESTORE_TOUCH_S || klen == 0 || klen > CS_KEY_MAX)
		return 0;
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_get(txn, cs->meta, &k, &m)) != 0 || m.mv_size != sizeof(meta)) {
		mdb_txn_abort(txn);	/* gone meanwhile */
		return 0;
	}
	memcpy(&meta, m.mv_data, sizeof(meta));
	lk = cs_lru_key(buf, meta.atime, key, klen);
	(void)mdb_del(txn, cs->lru, &lk, NULL);
	meta.atime = now;
	m = (MDB_val){ sizeof(meta), &meta };
	lk = cs_lru_key(buf, now, key, klen);
	if ((rc = mdb_put(txn, cs->meta, &k, &m, 0)) != 0 ||
	    (rc = mdb_put(txn, cs->lru, &lk, &empty, 0)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 0;
fail:
	log_warnx("cache: touch: %s", mdb_strerror(rc));
	return -1;
}

/* Removes every key that starts with prefix; the count in *n. */
static int
cs_del_prefix(MDB_txn *txn, struct cachestore *cs, const void *prefix, size_t plen,
    uint64_t *total, long *n)
{
	unsigned char key[CS_KEY_MAX];
	MDB_val k, v;
	MDB_cursor *c;
	uint64_t size;
	int rc;

	for (;;) {
		k = (MDB_val){ plen, (void *)(uintptr_t)prefix };
		if ((rc = mdb_cursor_open(txn, cs->obj, &c)) != 0)
			return rc;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0 ||
		    k.mv_size > sizeof(key)))
			rc = MDB_NOTFOUND;
		if (rc == 0)
			memcpy(key, k.mv_data, k.mv_size);
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc != 0)
			return rc;
		k = (MDB_val){ k.mv_size, key };
		if ((rc = cs_remove(txn, cs, &k, &size)) != 0)
			return rc;
		*total = size > *total ? 0 : *total - size;
		(*n)++;
	}
}

long
cachestore_del(struct cachestore *cs, const void *key, size_t klen, int prefix)
{
	MDB_val k = { klen, (void *)(uintptr_t)key }, v;
	MDB_txn *txn;
	uint64_t total, size;
	long n = 0;
	int rc;

	if (klen > CS_KEY_MAX)
		return 0;
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0)
		goto fail;
	total = cs_total(txn, cs);
	if (prefix)
		rc = cs_del_prefix(txn, cs, key, klen, &total, &n);
	else if (mdb_get(txn, cs->obj, &k, &v) == 0) {
		rc = cs_remove(txn, cs, &k, &size);
		total = size > total ? 0 : total - size;
		n = 1;
	}
	if (rc != 0 || (rc = cs_set_total(txn, cs, total)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return n;
fail:
	log_warnx("cache: delete: %s", mdb_strerror(rc));
	return -1;
}

/* The lock record's key: "\1" + key. */
static MDB_val
cs_lock_key(unsigned char *buf, const void *key, size_t klen)
{
	buf[0] = 1;
	memcpy(buf + 1, key, klen);
	return (MDB_val){ klen + 1, buf };
}

int
cachestore_lock(struct cachestore *cs, const void *key, size_t klen, uint64_t now_ms,
    uint32_t ttl_ms)
{
	unsigned char buf[1 + CS_KEY_MAX];
	uint64_t rec[2] = { now_ms + ttl_ms, (uint64_t)getpid() }, old[2];
	MDB_val k, v;
	MDB_txn *txn;
	int rc;

	if (klen == 0 || klen > CS_KEY_MAX)
		return -1;
	k = cs_lock_key(buf, key, klen);
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0)
		goto fail;
	if (mdb_get(txn, cs->meta, &k, &v) == 0 && v.mv_size == sizeof(old)) {
		memcpy(old, v.mv_data, sizeof(old));
		if (old[0] > now_ms) {
			mdb_txn_abort(txn);
			return 0;
		}
	}
	v = (MDB_val){ sizeof(rec), rec };
	if ((rc = mdb_put(txn, cs->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return 1;
fail:
	log_warnx("cache: lock: %s", mdb_strerror(rc));
	return -1;
}

int
cachestore_locked(struct cachestore *cs, const void *key, size_t klen, uint64_t now_ms)
{
	unsigned char buf[1 + CS_KEY_MAX];
	uint64_t rec[2];
	MDB_val k, v;
	MDB_txn *txn;
	int held = 0;

	if (klen == 0 || klen > CS_KEY_MAX || mdb_txn_begin(cs->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	k = cs_lock_key(buf, key, klen);
	if (mdb_get(txn, cs->meta, &k, &v) == 0 && v.mv_size == sizeof(rec)) {
		memcpy(rec, v.mv_data, sizeof(rec));
		held = rec[0] > now_ms;
	}
	mdb_txn_abort(txn);
	return held;
}

void
cachestore_unlock(struct cachestore *cs, const void *key, size_t klen)
{
	unsigned char buf[1 + CS_KEY_MAX];
	MDB_val k;
	MDB_txn *txn;
	int rc;

	if (klen == 0 || klen > CS_KEY_MAX)
		return;
	k = cs_lock_key(buf, key, klen);
	if ((rc = mdb_txn_begin(cs->env, NULL, 0, &txn)) != 0)
		goto fail;
	if ((rc = mdb_del(txn, cs->meta, &k, NULL)) != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto fail;
	return;
fail:
	log_warnx("cache: unlock: %s", mdb_strerror(rc));
}

/* The keys of the entries match() accepts, collected with a read transaction. */
static int
cs_collect(struct cachestore *cs, int (*match)(void *, const void *, size_t), void *arg,
    char **keys, size_t *len)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t cap = 0;
	char *p;
	int rc;

	*keys = NULL;
	*len = 0;
	if ((rc = mdb_txn_begin(cs->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, cs->obj, &c)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (!match(arg, v.mv_data, v.mv_size))
			continue;
		if (*len + k.mv_size + 2 > cap) {
			cap = (cap + k.mv_size + 2) * 2;
			if ((p = realloc(*keys, cap)) == NULL) {
				rc = ENOMEM;
				break;
			}
			*keys = p;
		}
		(*keys)[*len] = (char)k.mv_size;	/* at most CS_KEY_MAX: two bytes */
		(*keys)[*len + 1] = (char)(k.mv_size >> 8);
		memcpy(*keys + *len + 2, k.mv_data, k.mv_size);
		*len += k.mv_size + 2;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

long
cachestore_del_if(struct cachestore *cs, int (*match)(void *arg, const void *val, size_t vlen),
    void *arg)
{
	char *keys;
	size_t len, off, kl;
	long n = 0, d;
	int rc;

	if ((rc = cs_collect(cs, match, arg, &keys, &len)) != 0) {
		free(keys);
		log_warnx("cache: scan: %s", rc == ENOMEM ? "out of memory" : mdb_strerror(rc));
		return -1;
	}
	for (off = 0; off < len; off += kl + 2) {
		kl = (unsigned char)keys[off] | (size_t)(unsigned char)keys[off + 1] << 8;
		if ((d = cachestore_del(cs, keys + off + 2, kl, 0)) == -1) {
			n = -1;
			break;
		}
		n += d;
	}
	free(keys);
	return n;
}

int
cachestore_stats(struct cachestore *cs, uint64_t *entries, uint64_t *bytes)
{
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	if ((rc = mdb_txn_begin(cs->env, NULL, MDB_RDONLY, &txn)) != 0)
		return -1;
	rc = mdb_stat(txn, cs->obj, &st);
	*entries = rc == 0 ? st.ms_entries : 0;
	*bytes = cs_total(txn, cs);
	mdb_txn_abort(txn);
	return rc == 0 ? 0 : -1;
}
