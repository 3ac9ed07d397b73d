/*
 * The keyring: certificates, their private keys and the TLS session-ticket
 * keys, in one sealed memfd image. Defined once for the master's builder
 * (master/keyringbuild.c) and the workers' reader (share/keyring.c).
 *
 * Private keys never enter the route snapshot; they travel only here, in a
 * memfd that is never on a file system. The master sends it as
 * MSG_W_KEYRING (fd = the memfd, h.gen = the generation it was built for)
 * before the MSG_W_SNAP of the same generation whenever certificates or
 * ticket keys changed, and to every (re)spawned worker before its first
 * snapshot. A snapshot of a later generation with no keyring of its own
 * keeps using the last keyring received. The keyring has no ack of its
 * own: acking the snapshot that follows it says it was installed, and a
 * worker that cannot use it NACKs that snapshot. Only workers with an
 * HTTPS listener (listen_https) are sent one: the others never hold a key.
 *
 * A worker maps it (keyring_map), builds its SSL_CTXs and ticket-key table
 * from the entries, then calls keyring_unmap and closes the fd at once:
 * keys must not stay mapped. Pointers returned by the accessors die with
 * keyring_unmap.
 *
 * Layout, little-endian, fixed widths, 8-byte aligned regions, no overlap:
 *
 *	struct keyring_header			at 0, 128 bytes
 *	struct keyring_ticket_key[nkeys]	at keys_off
 *	struct keyring_cert[ncerts]		at certs_off
 *	struct keyring_blob[nnames]		at names_off (every cert's names)
 *	bytes[data_size]			at data_off (PEMs and names)
 *
 * Every string lives in DATA as (offset, length) with a NUL right after it
 * and no NUL inside, so it can be handed to C APIs (PEM_read_bio via
 * BIO_new_mem_buf with the length, or as a C string).
 * The CRC32C covers the whole image with the crc32c field zero.
 * keyring_map validates every offset, length, index and name once.
 */
#ifndef HALOYD_KEYRING_H
#define HALOYD_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#define KEYRING_MAGIC "HLYDKEYR"	/* 8 bytes, no NUL in the image */
#define KEYRING_MAJOR 1
#define KEYRING_MINOR 0
#define KEYRING_NONE 0xffffffffu	/* "no index" in any u32 index field */
#define KEYRING_MAX_SIZE (256u << 20)	/* the reader refuses larger images */
#define KEYRING_MAX_KEYS 2		/* current + previous */
#define KEYRING_MAX_CERTS 65536
#define KEYRING_MAX_NAMES 100		/* names one certificate may cover */
#define KEYRING_PEM_MAX 65536		/* longest chain PEM or key PEM, bytes */

/* Ticket key material sizes (RFC 5077 style: name, HMAC-SHA256 key, AES-256 key). */
#define KEYRING_TICKET_NAME_LEN 16
#define KEYRING_TICKET_HMAC_LEN 32
#define KEYRING_TICKET_AES_LEN 32
#define KEYRING_FP_LEN 32		/* SHA-256 */

/* A string in DATA: offset from data_off and length; a NUL follows it. */
struct keyring_blob {
	uint32_t off;
	uint32_t len;
};

struct keyring_header {
	char magic[8];
	uint16_t major;
	uint16_t minor;
	uint32_t header_size;	/* sizeof(struct keyring_header) = 128 */
	uint64_t generation;	/* the generation it was built for (= h.gen) */
	uint64_t file_size;	/* equals the memfd's size */
	uint64_t built_at;	/* unix time in ns */
	uint32_t flags;		/* reserved, 0 */
	uint32_t crc32c;	/* over the whole image with this field zero */
	uint32_t nkeys;		/* ticket keys, 0..KEYRING_MAX_KEYS */
	uint32_t keys_off;
	uint32_t ncerts;	/* 0..KEYRING_MAX_CERTS */
	uint32_t certs_off;
	uint32_t nnames;	/* total over every cert */
	uint32_t names_off;
	uint32_t data_off;
	uint32_t data_size;
	uint32_t default_cert;	/* index into the certs of the self-signed default, or NONE */
	uint8_t reserved[44];	/* 0 */
};

/*
 * keys[0] is the current key: it encrypts new tickets and decrypts.
 * keys[1], when present, is the previous key: it only decrypts (a ticket
 * it opens should be renewed with keys[0]). Names are distinct.
 */
struct keyring_ticket_key {
	uint8_t name[KEYRING_TICKET_NAME_LEN];
	uint8_t hmac_key[KEYRING_TICKET_HMAC_LEN];
	uint8_t aes_key[KEYRING_TICKET_AES_LEN];
	uint64_t not_after;	/* unix seconds: refuse tickets under this key after it */
	uint32_t flags;		/* reserved, 0 */
	uint32_t reserved;	/* 0 */
};

enum keyring_source {
	KEYRING_SRC_IMPORTED = 1,	/* haloyd-ctl cert import */
	KEYRING_SRC_ACME,		/* issued by the ACME child */
	KEYRING_SRC_DEFAULT,		/* the self-signed fallback, CN haloyd-default */
	KEYRING_SRC_ACME_CHAL,		/* a TLS-ALPN-01 challenge certificate (RFC 8737) */
};

/*
 * A TLS-ALPN-01 challenge certificate (source ACME_CHAL) is no store
 * certificate: the master adds one for each challenge of the running
 * order, after the store's, with ids from KEYRING_CHAL_ID_BASE (store ids
 * stay far below), and exactly one name, the identifier it proves. Workers
 * serve it only to a ClientHello that offers ALPN "acme-tls/1" alone for
 * that name, never through SNI or routing; it leaves the keyring with the
 * next keyring built after the order ends.
 */
#define KEYRING_CHAL_ID_BASE 0xfff00000u

/*
 * One certificate. Entries are sorted by strictly ascending id, so a
 * worker can binary-search an id (keyring_cert_by_id). snap_host.cert in
 * the route snapshot holds this id (the store id of the certificate that
 * covers that host), or SNAP_NONE when only the default covers it.
 * The fingerprint lets a worker keep an SSL_CTX across keyrings when the
 * same certificate comes back. Every certificate of the store is shipped,
 * also one outside its dates (imported with --force): not_before and
 * not_after say so, and the master's choice for each host (snap_host.cert)
 * already prefers a certificate valid now, then the latest to expire. The
 * self-signed default is always present (default_cert).
 */
struct keyring_cert {
	uint32_t id;		/* store id (certs.id) */
	uint16_t source;	/* enum keyring_source */
	uint16_t flags;		/* reserved, 0 */
	uint8_t fingerprint[KEYRING_FP_LEN];	/* SHA-256 of the leaf's DER */
	int64_t not_before;	/* unix seconds, from the leaf */
	int64_t not_after;
	struct keyring_blob chain;	/* PEM: the leaf first, then intermediates */
	struct keyring_blob key;	/* PEM: the private key (EC P-256 or RSA) */
	uint32_t name_first;	/* index into NAMES */
	uint32_t name_count;	/* 0..KEYRING_MAX_NAMES; 0 only for the default */
};

/*
 * NAMES holds keyring_blob entries whose strings are lower-case normalised
 * host names (share/hostname.h: hostname_normalize_name gives them back
 * unchanged), exact ("a.example.com") or one-label wildcards
 * ("*.example.com").
 */

_Static_assert(sizeof(struct keyring_header) == 128, "keyring header is 128 bytes");
_Static_assert(sizeof(struct keyring_ticket_key) == 96, "ticket key is 96 bytes");
_Static_assert(sizeof(struct keyring_cert) == 80, "cert entry is 80 bytes");
_Static_assert(sizeof(struct keyring_blob) == 8, "blob is 8 bytes");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the image is read in place");

/* --- the reader */

struct keyring;		/* a mapped, validated image; one owner, no reference count */

/*
 * Checks the memfd's seals (WRITE, SHRINK, GROW, SEAL) and size (fstat,
 * at most KEYRING_MAX_SIZE), maps it PROT_READ and validates it. The caller
 * keeps and closes fd. Returns 0 with *out set, or -1 with a reason in err.
 */
int keyring_map(int fd, struct keyring **out, char *err, size_t errlen);

/*
 * Validates an image in memory (8-aligned): magic, version, sizes, CRC,
 * region bounds/alignment/overlap, every blob (in DATA, NUL-terminated, no
 * NUL inside, PEMs at most KEYRING_PEM_MAX), key names distinct, cert ids
 * ascending, sources known, name ranges in NAMES, every name normalised,
 * default_cert in range and of source DEFAULT. 0 or -1 with a reason.
 */
int keyring_validate(const void *base, size_t size, char *err, size_t errlen);

/* Unmaps and frees; NULL is fine. */
void keyring_unmap(struct keyring *kr);

uint64_t keyring_generation(const struct keyring *kr);

uint32_t keyring_ticket_key_count(const struct keyring *kr);
/* i < keyring_ticket_key_count; 0 is the current key. */
const struct keyring_ticket_key *keyring_ticket_key_at(const struct keyring *kr, uint32_t i);

uint32_t keyring_cert_count(const struct keyring *kr);
/* i < keyring_cert_count. */
const struct keyring_cert *keyring_cert_at(const struct keyring *kr, uint32_t i);
/* The index of the cert with this store id, or KEYRING_NONE. */
uint32_t keyring_cert_by_id(const struct keyring *kr, uint32_t id);
/* The index of the self-signed default, or KEYRING_NONE. */
uint32_t keyring_default_cert(const struct keyring *kr);

/* The NUL-terminated string b refers to; its length is b.len. */
const char *keyring_string(const struct keyring *kr, struct keyring_blob b);
/* Name j (< c->name_count) of c, NUL-terminated; *len gets its length when not NULL. */
const char *keyring_cert_name(const struct keyring *kr, const struct keyring_cert *c,
    uint32_t j, size_t *len);

#endif
