/*
 * The ACME child (role `acme`, exec'd as "haloyd -R acme"): the only
 * process that holds the ACME account key and talks to the CA. This header
 * is the child's extern.h: its context, and the prototypes of jws.c,
 * http.c, client.c and order.c.
 */
#ifndef HALOYD_ACME_H
#define HALOYD_ACME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "acme/dns01.h"
#include "share/evloop.h"
#include "share/msg.h"

struct ipc_msg;

struct acme_args {
	const char *user;	/* drop to this user when root */
	int verbose;
	int log_target;
	int sandbox;		/* 0 with -N (haloyd.conf `sandbox off`) */
};

int acme_main(const struct acme_args *a);

/* --- jws.c: base64url, keys, JWK, RFC 7638 thumbprints, ES256 JWS */

/* Encodes n bytes as unpadded base64url; a malloc'd string or NULL. */
char *jws_b64u(const void *p, size_t n);
/* Decodes unpadded base64url into a malloc'd buffer; -1 on bad input. */
int jws_b64u_decode(const char *s, uint8_t **out, size_t *outlen);
/* A fresh ECDSA P-256 key, or NULL. */
EVP_PKEY *jws_key_new(void);
/*
 * The account key in dirfd/name: read it, or create it (0600, exclusive)
 * when it does not exist. NULL on failure (logged).
 */
EVP_PKEY *jws_key_load(int dirfd, const char *name);
/*
 * The public JWK in RFC 7638's canonical form (members in lexicographic
 * order, no white space): EC P-256 and RSA keys. malloc'd, or NULL.
 */
char *jws_jwk(EVP_PKEY *key);
/* base64url(SHA-256(canonical JWK)): the key authorisation's suffix. */
char *jws_thumbprint(EVP_PKEY *key);
/*
 * A flattened JWS (RFC 7515, 8555 §6.2) in JSON: ES256 over
 * base64url(protected) "." base64url(payload). kid NULL puts the jwk in
 * the protected header instead. payload "" is a POST-as-GET. malloc'd.
 */
char *jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload);
/* A PKCS#10 CSR (DER, base64url) for names[0..n) signed by key; malloc'd or NULL. */
char *jws_csr(EVP_PKEY *key, char *const *names, size_t n);

/* --- alpncert.c: the TLS-ALPN-01 challenge certificate (RFC 8737) */

#define ALPNCERT_OID "1.3.6.1.5.5.7.1.31"	/* id-pe-acmeIdentifier */
#define ALPNCERT_EXT_LEN 34			/* 04 20 + SHA-256 */

/* The extension's value: the DER OCTET STRING of SHA-256(keyauth). */
int alpncert_ext_value(const char *keyauth, uint8_t out[ALPNCERT_EXT_LEN]);
/*
 * A fresh P-256 key and a self-signed certificate for host carrying the
 * critical acmeIdentifier extension of keyauth; both PEM, malloc'd. 0 or -1.
 */
int alpncert_make(const char *host, const char *keyauth, char **cert_pem, char **key_pem);

/* --- http.c: one HTTPS exchange with libcurl */

#define ACME_HTTP_MAX_BODY (1u << 20)	/* certificates and JSON are small */

struct acme_resp {
	long status;
	char *body;		/* NUL-terminated, malloc'd */
	size_t len;
	char nonce[256];	/* Replay-Nonce */
	char location[1024];
	char ctype[128];
	uint64_t retry_after_s;	/* 0 when absent */
};

/*
 * A Retry-After value (RFC 9110 section 10.2.3: delay-seconds or an
 * HTTP-date) in seconds from now, at most a day; 0 when unusable or past.
 */
uint64_t acme_retry_after(const char *v, time_t now);
int acme_http_init(void);
void acme_http_cleanup(void);
/* A connection cache kept across requests (a libcurl easy handle), or NULL. */
void *acme_http_new(void);
void acme_http_free(void *h);
/*
 * GET (body NULL), HEAD (head set) or POST of application/jose+json to url
 * through h, trusting the system CAs plus ca_file (may be NULL). 0 with *r
 * filled (any HTTP status), or -1 on a transport error (logged, err filled).
 */
int acme_http(void *h, const char *url, const char *body, int head, const char *ca_file,
    struct acme_resp *r, char *err, size_t errlen);
void acme_resp_free(struct acme_resp *r);

/* --- client.c: the ACME protocol layer (directory, nonces, signed requests) */

#define ACME_DIR_PROFILES_MAX 16	/* meta.profiles names kept */

struct acme_dir {
	char *new_nonce, *new_account, *new_order;
	char *renewal_info;		/* RFC 9773, or NULL: the CA has no ARI */
	char *profiles[ACME_DIR_PROFILES_MAX];	/* meta.profiles' names */
	size_t nprofiles;
};

/* 1 when the directory's meta.profiles lists name. */
int acme_dir_has_profile(const struct acme_dir *d, const char *name);

/* Why an order failed, sent to the master. */
struct acme_error {
	char type[128];		/* ACME error type without its URN prefix, or "connection" */
	char detail[512];
	uint64_t retry_after_s;
};

struct acme_client {
	char *directory_url;
	char *email;
	char *ca_file;
	struct acme_dir dir;
	EVP_PKEY *key;
	char *thumbprint;
	char *kid;		/* account URL, once registered */
	char nonce[256];	/* one unused nonce, or "" */
	int dirfd;		/* STATE_DIR/acme, opened by the master */
	void *http;		/* keeps the connection to the CA between requests */
	char *account_store;	/* acme_store: the key is the shared store's; NULL: the folder's */
	const struct acct_store_ops *store;	/* how account_store is reached */
};

/*
 * The shared store's acme_account as the child reaches it (accountpg.c;
 * a fake in the unit tests). Errors: one line in err.
 */
struct acct_store_ops {
	/* A connection, or NULL. */
	void *(*open)(const char *conninfo, char *err, size_t errlen);
	/* The stored key into *pem (malloc'd): 1; 0 when there is none; -1. */
	int (*get)(void *h, char **pem, char *err, size_t errlen);
	/* Adds pem unless a key is already there (then that one stays): 0, or -1. */
	int (*add)(void *h, const char *pem, char *err, size_t errlen);
	void (*close)(void *h);
};
extern const struct acct_store_ops acct_store_pg;

/* The files of the child's folder (STATE_DIR/acme). */
#define ACCOUNT_KEY "account.key"
#define ACCOUNT_URL "account.url"

void acme_client_reset(struct acme_client *c);
/*
 * account.c: uses pem (a shared store's account key) from now on and
 * keeps it as the folder's account.key; a different key before it drops
 * the account URL (that account is the old key's). 0, or -1 when pem is
 * not an EC private key (logged).
 */
int acme_client_set_key(struct acme_client *c, const char *pem);
/*
 * account.c: reads the key of c->account_store through c->store, making
 * and adding one first when it has none (another node's may win: the
 * stored one is read back), and uses it (acme_client_set_key). One
 * connection, closed before returning. 0, or -1 with e set (the orders
 * fail and are retried with the master's back-off).
 */
int acme_account_from_store(struct acme_client *c, struct acme_error *e);
/* Directory, account key and account: everything an order needs. */
int acme_client_ready(struct acme_client *c, struct acme_error *e);
/*
 * A signed POST (payload NULL is POST-as-GET); retries once on badNonce.
 * On an ACME problem, fills e and returns -1; 0 with a 2xx in *r.
 */
int acme_post(struct acme_client *c, const char *url, const char *payload,
    struct acme_resp *r, struct acme_error *e);
void acme_error_set(struct acme_error *e, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- order.c: one RFC 8555 order as a state machine driven by the loop */

struct acme_order;
struct acme;

/* What the master asks of one order besides its names. */
struct order_opts {
	int chal;			/* enum msg_a_chal */
	char replaces[MSG_A_ARI_ID_MAX + 1];	/* ARI id, or "" */
	char profile[MSG_A_PROFILE_MAX + 1];	/* or "" */
};

/* Starts an order for names; the first name is the canonical one. */
int order_start(struct acme *a, uint64_t id, char **names, size_t n, const struct order_opts *op);
/* The master published token: tell the CA to validate. */
void order_chal_ready(struct acme *a, const char *token);
void order_free(struct acme_order *o);

/* --- ari.c: ACME Renewal Information (RFC 9773) */

/*
 * The certificate's ARI id (RFC 9773 section 4.1): base64url of the
 * Authority Key Identifier's keyIdentifier, ".", base64url of the DER
 * serial number's content octets. malloc'd, or NULL (no AKI, bad PEM).
 */
char *ari_cert_id(const char *leaf_pem);
/*
 * Parses a renewalInfo answer: the suggested window (RFC 3339 times) and
 * the explanation URL (malloc'd into *url, or NULL). 0, or -1 when the
 * window is missing, unreadable or ends before it starts.
 */
int ari_parse(const char *body, int64_t *start, int64_t *end, char **url);
/* Answers MSG_A_ARI_REQ: GETs the window and sends MSG_A_ARI. */
void ari_request(struct acme *a, uint64_t route_id, const char *leaf_pem);

/* --- ask.c: on-demand TLS, the acme_ask URL */

/* MSG_A_ASK: GETs URL?domain=NAME (bounded in time) and answers MSG_A_ASK_RESULT. */
int ask_on_msg(void *arg, struct ipc_msg *m);

/* --- acmechild.c: the child's context */

struct acme {
	struct ev_loop *loop;
	int parent;
	struct ev_io parent_io;
	int sigfd;
	struct ev_io sig_io;
	struct ipc_msg *rx;
	struct acme_client cl;
	struct acme_order *order;	/* at most one at a time */
	int configured;
	int sandbox;		/* install the filter at the first configuration (share/sandbox.h) */
	int sandboxed;
	int account_sent;	/* MSG_A_ACCOUNT went to the master */
	struct dns01_conf dns;	/* DNS-01's server and TSIG key (MSG_A_DNS), or off */
};

/* Sends a message to the master; -1 when the socket is broken. */
int acme_send(struct acme *a, uint16_t type, const void *p, size_t len);

#endif
