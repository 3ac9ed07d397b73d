/*
 * Session-ticket keys shared through a PostgreSQL store (see
 * master/ticketshare.h): who rotates (the "ticketkeys" lease), when, and
 * how a key travels as text. Keys are secrets: nothing here logs them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/publish.h"
#include "master/ticketshare.h"
#include "share/log.h"

#define TS_LEASE "ticketkeys"
#define TS_RETRY_MS 1000	/* no keys in the store yet, or the store failed */
#define TS_KEY_LEN (KEYRING_TICKET_NAME_LEN + KEYRING_TICKET_HMAC_LEN + KEYRING_TICKET_AES_LEN)

_Static_assert(2 * TS_KEY_LEN == STORE_TICKET_SECRET_LEN, "a key is 160 hex digits");

static int64_t
life_s(const struct master *m)
{
	int64_t s = (int64_t)(m->cfg.ticket_key_lifetime_ms / 1000);

	return s > 0 ? s : 1;
}

/* Four looks a lifetime, and a lease of two looks: a live holder keeps it. */
static uint64_t
look_ms(const struct master *m)
{
	uint64_t ms = m->cfg.ticket_key_lifetime_ms / 4;

	return ms >= 250 ? ms : 250;
}

static int64_t
lease_s(const struct master *m)
{
	return life_s(m) / 2 >= 2 ? life_s(m) / 2 : 2;
}

void
ticketshare_encode(const struct keyring_ticket_key *k, struct store_ticket_key *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[TS_KEY_LEN];
	size_t i;

	memcpy(raw, k->name, KEYRING_TICKET_NAME_LEN);
	memcpy(raw + KEYRING_TICKET_NAME_LEN, k->hmac_key, KEYRING_TICKET_HMAC_LEN);
	memcpy(raw + KEYRING_TICKET_NAME_LEN + KEYRING_TICKET_HMAC_LEN, k->aes_key,
	    KEYRING_TICKET_AES_LEN);
	for (i = 0; i < TS_KEY_LEN; i++) {
		out->secret[2 * i] = hex[raw[i] >> 4];
		out->secret[2 * i + 1] = hex[raw[i] & 15];
	}
	out->secret[STORE_TICKET_SECRET_LEN] = '\0';
	out->not_after = (int64_t)k->not_after;
	OPENSSL_cleanse(raw, sizeof(raw));
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
ticketshare_decode(const struct store_ticket_key *in, struct keyring_ticket_key *k)
{
	uint8_t raw[TS_KEY_LEN];
	size_t i;
	int hi, lo, rc = -1;

	if (strlen(in->secret) != STORE_TICKET_SECRET_LEN || in->not_after <= 0)
		return -1;
	for (i = 0; i < TS_KEY_LEN; i++) {
		if ((hi = nibble(in->secret[2 * i])) < 0 || (lo = nibble(in->secret[2 * i + 1])) < 0)
			goto out;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	memset(k, 0, sizeof(*k));
	memcpy(k->name, raw, KEYRING_TICKET_NAME_LEN);
	memcpy(k->hmac_key, raw + KEYRING_TICKET_NAME_LEN, KEYRING_TICKET_HMAC_LEN);
	memcpy(k->aes_key, raw + KEYRING_TICKET_NAME_LEN + KEYRING_TICKET_HMAC_LEN,
	    KEYRING_TICKET_AES_LEN);
	k->not_after = (uint64_t)in->not_after;
	rc = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

int
ticketshare_due(const struct keyring_ticket_key *cur, int64_t lifetime_s, int64_t now)
{
	/* A key is current for one lifetime from its making, not_after - 2 lifetimes. */
	return (int64_t)cur->not_after - lifetime_s <= now;
}

/*
 * 1 when the store had keys (now the keyring's; *changed when they were
 * not already), 0 when it had none, -1 on failure.
 */
static int
load(struct master *m, int *changed)
{
	struct store_ticket_key sk[KEYRING_MAX_KEYS];
	struct keyring_ticket_key k[KEYRING_MAX_KEYS];
	int i, n, rc = -1;

	*changed = 0;
	if (store_ticket_keys_get(m->store, sk, &n) != STORE_OK) {
		log_warnx("cannot read the session-ticket keys from the store");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (ticketshare_decode(&sk[i], &k[i]) == -1) {
			log_warnx("the store's session-ticket key %d is malformed; ignored", i);
			n = i;
			break;
		}
	if (n > 0)
		*changed = mkeyring_ticket_keys_set(m, k, (uint32_t)n);
	rc = n > 0;
out:
	OPENSSL_cleanse(sk, sizeof(sk));
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int
ticketshare_load(struct master *m)
{
	int changed;

	return load(m, &changed) == -1 ? -1 : 0;
}

/*
 * A new current key, the store's current one becoming the previous; or,
 * first (the store has none), this node's own current key alone. 0 or -1.
 */
static int
rotate(struct master *m, struct ticketshare *ts, int first)
{
	struct store_ticket_key sk[KEYRING_MAX_KEYS];
	const struct keyring_ticket_key *k;
	uint32_t i, n;
	int rc, changed;

	if (!first && mkeyring_ticket_key_new(m) == -1)
		return -1;
	k = mkeyring_ticket_keys(m, &n);
	if (first && n > 1)
		n = 1;
	for (i = 0; i < n; i++)
		ticketshare_encode(&k[i], &sk[i]);
	rc = store_ticket_keys_put(m->store, TS_LEASE, ts->holder, ts->token, sk, (int)n);
	OPENSSL_cleanse(sk, sizeof(sk));
	if (rc != STORE_OK) {
		log_warnx("session-ticket keys not saved%s; using the store's",
		    rc == STORE_ENOENT ? ": another node took the rotation over" : "");
		ts->token = 0;
		(void)load(m, &changed);
		return -1;
	}
	log_info("session-ticket keys %s for every node (lease token %lld)",
	    first ? "made" : "rotated", (long long)ts->token);
	return 0;
}

static void
look_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct ticketshare *ts = t->arg;
	struct master *m = ts->m;
	struct store_lease lease;
	const struct keyring_ticket_key *k;
	int64_t now = (int64_t)time(NULL);
	uint64_t next = look_ms(m);
	uint32_t n;
	int have, changed;

	if (store_lease_take(m->store, TS_LEASE, ts->holder, now, now + lease_s(m), &lease) !=
	    STORE_OK || (have = load(m, &changed)) == -1) {
		ev_timer_start(l, t, TS_RETRY_MS);
		return;
	}
	ts->token = strcmp(lease.holder, ts->holder) == 0 ? lease.token : 0;
	k = mkeyring_ticket_keys(m, &n);
	if (ts->token != 0 && (have == 0 || n == 0 || ticketshare_due(&k[0], life_s(m), now))) {
		if (rotate(m, ts, have == 0) == 0)
			publish_changed(m);	/* the other nodes load them at its notice */
	} else if (have == 0)
		next = TS_RETRY_MS;	/* the holder has not written them yet */
	else if (changed)
		publish_remote_changed(m);	/* another node's keys: built here only */
	ev_timer_start(l, t, next);
}

int
ticketshare_start(struct master *m, struct ticketshare *ts)
{
	memset(ts, 0, sizeof(*ts));
	ts->m = m;
	if (store_node_name(m->cfg.store, ts->holder, sizeof(ts->holder)) == -1)
		return -1;
	ev_timer_init(&ts->look, look_fire, ts);
	/* From the loop: a rotation publishes, which is not possible before it runs. */
	ev_timer_start(m->loop, &ts->look, 0);
	return 0;
}

void
ticketshare_stop(struct ticketshare *ts)
{
	if (ts->m != NULL)
		ev_timer_stop(ts->m->loop, &ts->look);
}
