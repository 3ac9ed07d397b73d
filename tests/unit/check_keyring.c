/*
 * Unit tests for the keyring as a round trip: master/keyringbuild.c's builder
 * (layout, sealing, refusals) and share/keyring.c's reader (accessors,
 * and refusal of damaged images: truncation, bit flips, bad offsets and
 * strings with the CRC recomputed so the real check is the one that fires).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "master/keyringbuild.h"
#include "master/master.h"
#include "master/store.h"
#include "share/hash.h"
#include "share/keyring.h"
#include "tests/unit/suites.h"

static const char *const fx_names_a[] = { "a.example.com", "www.a.example.com" };
static const char *const fx_names_w[] = { "*.example.org" };

#define FX_CHAIN_A "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
#define FX_KEY_A "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n"
#define FX_CHAIN_D "-----BEGIN CERTIFICATE-----\nDDDD\n-----END CERTIFICATE-----\n"
#define FX_KEY_D "-----BEGIN PRIVATE KEY-----\nEEEE\n-----END PRIVATE KEY-----\n"

static struct keyring_ticket_key fx_keys[2];
static struct mkeyring_cert_in fx_certs[3];

static void
fixture_input(struct mkeyring_input *in)
{
	memset(fx_keys, 0, sizeof(fx_keys));
	memset(fx_keys[0].name, 0x11, sizeof(fx_keys[0].name));
	memset(fx_keys[0].hmac_key, 0x12, sizeof(fx_keys[0].hmac_key));
	memset(fx_keys[0].aes_key, 0x13, sizeof(fx_keys[0].aes_key));
	fx_keys[0].not_after = 2000000000;
	memset(fx_keys[1].name, 0x21, sizeof(fx_keys[1].name));
	fx_keys[1].not_after = 1900000000;
	memset(fx_certs, 0, sizeof(fx_certs));
	fx_certs[0] = (struct mkeyring_cert_in){ .id = 3, .source = KEYRING_SRC_DEFAULT,
	    .not_before = 1000, .not_after = 9000, .chain = FX_CHAIN_D,
	    .chain_len = strlen(FX_CHAIN_D), .key = FX_KEY_D, .key_len = strlen(FX_KEY_D) };
	fx_certs[1] = (struct mkeyring_cert_in){ .id = 7, .source = KEYRING_SRC_IMPORTED,
	    .not_before = 1000, .not_after = 5000, .chain = FX_CHAIN_A,
	    .chain_len = strlen(FX_CHAIN_A), .key = FX_KEY_A, .key_len = strlen(FX_KEY_A),
	    .names = fx_names_a, .nnames = 2 };
	fx_certs[2] = (struct mkeyring_cert_in){ .id = 9, .source = KEYRING_SRC_ACME,
	    .not_before = 2000, .not_after = 6000, .chain = FX_CHAIN_A,
	    .chain_len = strlen(FX_CHAIN_A), .key = FX_KEY_A, .key_len = strlen(FX_KEY_A),
	    .names = fx_names_w, .nnames = 1 };
	memset(fx_certs[1].fingerprint, 0xab, KEYRING_FP_LEN);
	memset(in, 0, sizeof(*in));
	in->keys = fx_keys;
	in->nkeys = 2;
	in->certs = fx_certs;
	in->ncerts = 3;
	in->default_cert = 0;
	in->generation = 77;
	in->built_at = 1700000000000000000ull;
}

static int
build_fd(const struct mkeyring_input *in)
{
	char err[256] = "";
	int fd;

	ck_assert_msg(mkeyring_build(in, &fd, err, sizeof(err)) == 0, "build failed: %s", err);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* The image of the fixture in an 8-aligned heap buffer the test may damage. */
static uint8_t *
fixture_image(size_t *size)
{
	struct mkeyring_input in;
	struct stat st;
	uint8_t *img;
	int fd;

	fixture_input(&in);
	fd = build_fd(&in);
	ck_assert_int_eq(fstat(fd, &st), 0);
	*size = (size_t)st.st_size;
	img = aligned_alloc(8, (*size + 7) & ~(size_t)7);
	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(pread(fd, img, *size, 0), (ssize_t)*size);
	close(fd);
	return img;
}

static void
recrc(uint8_t *img, size_t size)
{
	struct keyring_header *h = (struct keyring_header *)img;

	h->crc32c = 0;
	h->crc32c = hash_crc32c(0, img, size);
}

/* Validation of img fails with a reason containing want. */
static void
expect_refused(const uint8_t *img, size_t size, const char *want)
{
	char err[256] = "";

	ck_assert_int_eq(keyring_validate(img, size, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "reason '%s' lacks '%s'", err, want);
}

START_TEST(roundtrip)
{
	struct mkeyring_input in;
	struct keyring *kr;
	const struct keyring_cert *c;
	char err[256] = "";
	size_t len;
	int fd;

	fixture_input(&in);
	fd = build_fd(&in);
	ck_assert_msg(keyring_map(fd, &kr, err, sizeof(err)) == 0, "map: %s", err);
	close(fd);	/* the mapping outlives the fd */
	ck_assert_uint_eq(keyring_generation(kr), 77);
	ck_assert_uint_eq(keyring_ticket_key_count(kr), 2);
	ck_assert_int_eq(keyring_ticket_key_at(kr, 0)->name[0], 0x11);
	ck_assert_int_eq(keyring_ticket_key_at(kr, 0)->aes_key[31], 0x13);
	ck_assert_uint_eq(keyring_ticket_key_at(kr, 1)->not_after, 1900000000);
	ck_assert_uint_eq(keyring_cert_count(kr), 3);
	ck_assert_uint_eq(keyring_default_cert(kr), 0);
	ck_assert_uint_eq(keyring_cert_by_id(kr, 7), 1);
	ck_assert_uint_eq(keyring_cert_by_id(kr, 9), 2);
	ck_assert_uint_eq(keyring_cert_by_id(kr, 3), 0);
	ck_assert_uint_eq(keyring_cert_by_id(kr, 8), KEYRING_NONE);
	ck_assert_uint_eq(keyring_cert_by_id(kr, 100), KEYRING_NONE);
	c = keyring_cert_at(kr, 1);
	ck_assert_int_eq(c->source, KEYRING_SRC_IMPORTED);
	ck_assert_int_eq(c->fingerprint[5], 0xab);
	ck_assert_int_eq(c->not_after, 5000);
	ck_assert_str_eq(keyring_string(kr, c->chain), FX_CHAIN_A);
	ck_assert_uint_eq(c->chain.len, strlen(FX_CHAIN_A));
	ck_assert_str_eq(keyring_string(kr, c->key), FX_KEY_A);
	ck_assert_uint_eq(c->name_count, 2);
	ck_assert_str_eq(keyring_cert_name(kr, c, 0, &len), "a.example.com");
	ck_assert_uint_eq(len, strlen("a.example.com"));
	ck_assert_str_eq(keyring_cert_name(kr, c, 1, NULL), "www.a.example.com");
	c = keyring_cert_at(kr, 2);
	ck_assert_str_eq(keyring_cert_name(kr, c, 0, NULL), "*.example.org");
	ck_assert_uint_eq(keyring_cert_at(kr, 0)->name_count, 0);
	keyring_unmap(kr);
	keyring_unmap(NULL);
}
END_TEST

START_TEST(sealed_and_refuses_unsealed)
{
	struct mkeyring_input in;
	struct keyring *kr = NULL;
	char err[256] = "";
	size_t size;
	uint8_t *img;
	int fd, seals;

	fixture_input(&in);
	fd = build_fd(&in);
	seals = fcntl(fd, F_GET_SEALS);
	ck_assert_int_eq(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
	    F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	ck_assert_int_eq(write(fd, "x", 1), -1);
	ck_assert_int_eq(ftruncate(fd, 0), -1);
	close(fd);
	/* The same bytes in a memfd that is not sealed are refused. */
	img = fixture_image(&size);
	fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, size), (ssize_t)size);
	ck_assert_int_eq(keyring_map(fd, &kr, err, sizeof(err)), -1);
	ck_assert_ptr_null(kr);
	ck_assert_ptr_nonnull(strstr(err, "not a sealed memfd"));
	close(fd);
	free(img);
}
END_TEST

START_TEST(empty_keyring)
{
	struct mkeyring_input in;
	struct keyring *kr;
	char err[256] = "";
	int fd;

	memset(&in, 0, sizeof(in));
	in.default_cert = KEYRING_NONE;
	in.generation = 1;
	fd = build_fd(&in);
	ck_assert_msg(keyring_map(fd, &kr, err, sizeof(err)) == 0, "map: %s", err);
	ck_assert_uint_eq(keyring_cert_count(kr), 0);
	ck_assert_uint_eq(keyring_ticket_key_count(kr), 0);
	ck_assert_uint_eq(keyring_default_cert(kr), KEYRING_NONE);
	ck_assert_uint_eq(keyring_cert_by_id(kr, 1), KEYRING_NONE);
	keyring_unmap(kr);
	close(fd);
}
END_TEST

START_TEST(builder_rejects)
{
	static const char *const bad_name[] = { "Not_A..Name" };
	static const char nul_pem[] = "-----BEGIN\0CERTIFICATE-----";
	struct mkeyring_input in;
	char err[256] = "";
	int fd = -1;

	fixture_input(&in);
	fx_certs[1].names = bad_name;
	fx_certs[1].nnames = 1;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_int_eq(fd, -1);
	ck_assert_ptr_nonnull(strstr(err, "not a normalised host name"));

	fixture_input(&in);
	fx_certs[2].chain = nul_pem;
	fx_certs[2].chain_len = sizeof(nul_pem) - 1;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cert 2: chain string"));

	fixture_input(&in);
	fx_certs[2].id = 7;	/* not ascending */
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not ascending"));

	fixture_input(&in);
	in.default_cert = 1;	/* an imported certificate */
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "default cert 1"));

	fixture_input(&in);
	in.nkeys = 3;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);

	fixture_input(&in);
	fx_certs[1].key_len = KEYRING_PEM_MAX + 1;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of bounds"));

	/* A TLS-ALPN-01 certificate: one name, an id from KEYRING_CHAL_ID_BASE. */
	fixture_input(&in);
	fx_certs[2].source = KEYRING_SRC_ACME_CHAL;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "challenge certificate"));
	fixture_input(&in);
	fx_certs[2].source = KEYRING_SRC_ACME_CHAL;
	fx_certs[2].id = KEYRING_CHAL_ID_BASE;
	fd = build_fd(&in);
	close(fd);
	fx_certs[1].source = KEYRING_SRC_ACME_CHAL;	/* two names */
	fx_certs[1].id = KEYRING_CHAL_ID_BASE - 1;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	fixture_input(&in);
	fx_certs[2].source = KEYRING_SRC_ACME_CHAL + 1;
	ck_assert_int_eq(mkeyring_build(&in, &fd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "bad source"));
}
END_TEST

/* Every shorter image is refused: cut anywhere, the header's size no longer matches. */
START_TEST(truncation)
{
	struct keyring_header *h;
	size_t size, n;
	uint8_t *img = fixture_image(&size);
	char err[256];

	for (n = 0; n < size; n++)
		ck_assert_msg(keyring_validate(img, n, err, sizeof(err)) == -1,
		    "accepted %zu of %zu bytes", n, size);
	/* Cut with the header and CRC made to agree: a region check fires instead. */
	h = (struct keyring_header *)img;
	for (n = sizeof(*h); n < size; n += 8) {
		h->file_size = n;
		recrc(img, n);
		ck_assert_msg(keyring_validate(img, n, err, sizeof(err)) == -1,
		    "accepted a consistent cut at %zu of %zu", n, size);
	}
	free(img);
}
END_TEST

START_TEST(bad_crc)
{
	size_t size, i;
	uint8_t *img = fixture_image(&size);

	/* One flipped bit anywhere past the magic and version is a CRC mismatch or a header reason. */
	for (i = 0; i < size * 8; i += 7) {
		img[i / 8] ^= (uint8_t)(1u << (i % 8));
		ck_assert_msg(keyring_validate(img, size, NULL, 0) == -1, "flip of bit %zu accepted", i);
		img[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	img[size - 1] ^= 0x40;
	expect_refused(img, size, "crc mismatch");
	img[size - 1] ^= 0x40;
	ck_assert_int_eq(keyring_validate(img, size, NULL, 0), 0);
	free(img);
}
END_TEST

START_TEST(bad_header)
{
	struct keyring_header *h;
	size_t size;
	uint8_t *img = fixture_image(&size);

	h = (struct keyring_header *)img;
	h->magic[0] = 'X';
	recrc(img, size);
	expect_refused(img, size, "bad magic");
	h->magic[0] = 'H';
	h->major = 2;
	recrc(img, size);
	expect_refused(img, size, "unsupported version");
	h->major = KEYRING_MAJOR;
	h->reserved[3] = 1;
	recrc(img, size);
	expect_refused(img, size, "reserved header field");
	h->reserved[3] = 0;
	h->nkeys = 3;
	recrc(img, size);
	expect_refused(img, size, "3 ticket keys");
	h->nkeys = 2;
	recrc(img, size);
	ck_assert_int_eq(keyring_validate(img, size, NULL, 0), 0);
	free(img);
}
END_TEST

START_TEST(bad_offsets)
{
	struct keyring_header *h;
	size_t size;
	uint8_t *img = fixture_image(&size);
	uint32_t saved;

	h = (struct keyring_header *)img;
	saved = h->certs_off;
	h->certs_off = (uint32_t)size;	/* 3 entries past the end */
	recrc(img, size);
	expect_refused(img, size, "certs region");
	h->certs_off = saved + 4;	/* misaligned */
	recrc(img, size);
	expect_refused(img, size, "certs region");
	h->certs_off = h->keys_off;	/* on top of the keys */
	recrc(img, size);
	expect_refused(img, size, "overlaps keys region");
	h->certs_off = 64;		/* inside the header */
	recrc(img, size);
	expect_refused(img, size, "certs region");
	h->certs_off = saved;
	saved = h->data_size;
	h->data_size = 0xfffffff8u;
	recrc(img, size);
	expect_refused(img, size, "data region");
	h->data_size = saved;
	h->nnames = 1000;
	recrc(img, size);
	expect_refused(img, size, "region");
	free(img);
}
END_TEST

START_TEST(bad_entries)
{
	struct keyring_header *h;
	struct keyring_cert *c;
	struct keyring_blob *names;
	struct keyring_ticket_key *k;
	size_t size;
	uint8_t *img = fixture_image(&size);
	char *data;

	h = (struct keyring_header *)img;
	c = (struct keyring_cert *)(img + h->certs_off);
	names = (struct keyring_blob *)(img + h->names_off);
	k = (struct keyring_ticket_key *)(img + h->keys_off);
	data = (char *)img + h->data_off;

	c[1].chain.off = h->data_size;			/* past DATA */
	recrc(img, size);
	expect_refused(img, size, "cert 1: chain string");
	c[1].chain.off = 0;
	c[1].chain.len += 1;				/* the NUL is no longer after it */
	recrc(img, size);
	expect_refused(img, size, "cert 1: chain string");
	c[1].chain.len -= 1;
	data[c[1].key.off + 3] = '\0';			/* a NUL inside */
	recrc(img, size);
	expect_refused(img, size, "cert 1: key string");
	data[c[1].key.off + 3] = '-';
	c[2].name_first = 2;
	c[2].name_count = 2;				/* past NAMES */
	recrc(img, size);
	expect_refused(img, size, "cert 2: names");
	c[2].name_count = 1;
	data[names[0].off] = 'A';			/* not lower-case */
	recrc(img, size);
	expect_refused(img, size, "not a normalised host name");
	data[names[0].off] = 'a';
	c[1].source = 9;
	recrc(img, size);
	expect_refused(img, size, "bad source");
	c[1].source = KEYRING_SRC_IMPORTED;
	c[1].name_count = 0;				/* only the default may cover nothing */
	recrc(img, size);
	expect_refused(img, size, "covers no name");
	c[1].name_count = 2;
	c[1].not_before = c[1].not_after + 1;
	recrc(img, size);
	expect_refused(img, size, "not before");
	c[1].not_before = 1000;
	h->default_cert = 3;
	recrc(img, size);
	expect_refused(img, size, "default cert 3");
	h->default_cert = 0;
	memcpy(k[1].name, k[0].name, sizeof(k[0].name));
	recrc(img, size);
	expect_refused(img, size, "same name");
	memset(k[1].name, 0x21, sizeof(k[1].name));
	k[0].reserved = 1;
	recrc(img, size);
	expect_refused(img, size, "ticket key 0");
	k[0].reserved = 0;
	recrc(img, size);
	ck_assert_int_eq(keyring_validate(img, size, NULL, 0), 0);
	free(img);
}
END_TEST

/* --- the master's choice of certificate per host (mkeyring_cert_for) */

static int64_t
put_cert(struct store *st, const char *domain, char **names, size_t n, int64_t not_before,
    int64_t not_after)
{
	static char chain[] = "CHAIN", key[] = "KEY", issuer[] = "CN=Test";
	static char fp[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	struct store_cert c;
	int64_t id;

	memset(&c, 0, sizeof(c));
	c.domain = (char *)(uintptr_t)domain;
	c.source = KEYRING_SRC_IMPORTED;
	c.names = names;
	c.nnames = n;
	c.chain = chain;
	c.key = key;
	c.issuer = issuer;
	c.fingerprint = fp;
	c.not_before = not_before;
	c.not_after = not_after;
	ck_assert_int_eq(store_cert_put(st, &c, &id), STORE_OK);
	return id;
}

START_TEST(selection)
{
	static char app[] = "app.example.com", www[] = "www.app.example.com";
	static char wild[] = "*.example.com", other[] = "*.example.org", api[] = "api.example.org";
	char *app_names[] = { app, www }, *wild_names[] = { wild }, *org_names[] = { other, api };
	char dir[64], path[128], p[160];
	int64_t now = time(NULL), id_app, id_wild, id_org, id_new, id_old;
	struct master m;

	snprintf(dir, sizeof(dir), "/tmp/check_keyring.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	memset(&m, 0, sizeof(m));
	m.cfg.ticket_key_lifetime_ms = 3600000;
	ck_assert_ptr_nonnull(m.loop = ev_loop_new());
	ck_assert_int_eq(store_open(path, &m.store), STORE_OK);
	ck_assert_int_eq(mkeyring_init(&m), 0);
	ck_assert_uint_eq(mkeyring_cert_count(&m), 1);	/* the default, made at once */
	ck_assert_uint_eq(mkeyring_cert_for(&m, "app.example.com", "app.example.com"), 0);
	now = time(NULL);	/* not before the default's not_before, made a slow second later */
	id_app = put_cert(m.store, app, app_names, 2, now - 10, now + 1000);
	id_wild = put_cert(m.store, wild, wild_names, 1, now - 10, now + 1000);
	id_org = put_cert(m.store, api, org_names, 2, now - 10, now + 1000);
	ck_assert_int_eq(mkeyring_reload(&m), 0);
	ck_assert_uint_eq(mkeyring_cert_count(&m), 4);
	/* Exact first, even when a wildcard covers the name too. */
	ck_assert_uint_eq(mkeyring_cert_for(&m, "app.example.com", "app.example.com"), id_app);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "www.app.example.com", "app.example.com"), id_app);
	/* One-label wildcard; not two labels, not the bare domain. */
	ck_assert_uint_eq(mkeyring_cert_for(&m, "b.example.com", "app.example.com"), id_wild);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "a.b.example.com", "a.b.example.com"), 0);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "example.com", "example.com"), 0);
	/* A wildcard host needs that very wildcard. */
	ck_assert_uint_eq(mkeyring_cert_for(&m, "*.example.com", "*.example.com"), id_wild);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "*.a.example.com", "*.a.example.com"), 0);
	/* The route's own certificate wins over another wildcard covering the alias. */
	id_new = put_cert(m.store, other, (char *[]){ other }, 1, now - 10, now + 5000);
	ck_assert_int_eq(mkeyring_reload(&m), 0);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "x.example.org", "api.example.org"), id_org);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "y.example.org", "y.example.org"), id_new);
	/* Between two exact ones: valid now beats expired, then the later expiry. */
	id_old = put_cert(m.store, "old.example.net", (char *[]){ (char *)(uintptr_t)"n.example.net" },
	    1, now - 1000, now - 10);
	id_new = put_cert(m.store, "new.example.net", (char *[]){ (char *)(uintptr_t)"n.example.net" },
	    1, now - 10, now + 100);
	ck_assert_int_eq(mkeyring_reload(&m), 0);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "n.example.net", "n.example.net"), id_new);
	/* The answer may change next when id_new expires (valid through its not_after)... */
	ck_assert_int_eq(mkeyring_next_change(&m, now), now + 101);
	ck_assert_int_eq(mkeyring_next_change(&m, now + 101), now + 1001);
	/* ...or, sooner, when one not valid yet becomes valid. */
	put_cert(m.store, "soon.example.net", (char *[]){ (char *)(uintptr_t)"n.example.net" },
	    1, now + 50, now + 2000);
	ck_assert_int_eq(mkeyring_reload(&m), 0);
	ck_assert_int_eq(mkeyring_next_change(&m, now), now + 50);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "n.example.net", "n.example.net"), id_new);
	ck_assert_int_eq(store_cert_rm(m.store, "soon.example.net"), STORE_OK);
	ck_assert_int_eq(store_cert_rm(m.store, "new.example.net"), STORE_OK);
	ck_assert_int_eq(mkeyring_reload(&m), 0);
	ck_assert_uint_eq(mkeyring_cert_for(&m, "n.example.net", "n.example.net"), id_old);
	/* A keyring for generation 5 is built once, then only after a change. */
	ck_assert_int_eq(mkeyring_prepare(&m, 5), 0);
	ck_assert_uint_eq(mkeyring_generation(&m), 5);
	ck_assert_int_eq(mkeyring_prepare(&m, 6), 0);
	ck_assert_uint_eq(mkeyring_generation(&m), 5);
	mkeyring_free(&m);
	store_close(m.store);
	ev_loop_free(m.loop);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	rmdir(dir);
}
END_TEST

Suite *
suite_keyring(void)
{
	Suite *s = suite_create("keyring");
	TCase *tc = tcase_create("roundtrip");

	tcase_add_test(tc, roundtrip);
	tcase_add_test(tc, sealed_and_refuses_unsealed);
	tcase_add_test(tc, empty_keyring);
	tcase_add_test(tc, builder_rejects);
	suite_add_tcase(s, tc);
	tc = tcase_create("damage");
	tcase_add_test(tc, truncation);
	tcase_add_test(tc, bad_crc);
	tcase_add_test(tc, bad_header);
	tcase_add_test(tc, bad_offsets);
	tcase_add_test(tc, bad_entries);
	suite_add_tcase(s, tc);
	tc = tcase_create("master");
	tcase_add_test(tc, selection);
	suite_add_tcase(s, tc);
	return s;
}
