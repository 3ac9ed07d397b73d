/*
 * Unit tests for master/certs.c (import checks and refusals, with real
 * certificates made here with OpenSSL: EC P-256 and RSA, wildcards, expired,
 * not yet valid, mismatched keys, chains, garbage), the self-signed
 * default, and the store's certificate rows (master/store.c).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "master/certs.h"
#include "master/store.h"
#include "share/keyring.h"
#include "tests/unit/suites.h"

#define DAY 86400

/* A made certificate and its key as PEM. */
struct made {
	char chain[16384];
	char key[8192];
	EVP_PKEY *pk;
	X509 *x;
};

static EVP_PKEY *
make_key(int rsa_bits)
{
	EVP_PKEY *pk = rsa_bits ? EVP_RSA_gen((unsigned int)rsa_bits) : EVP_EC_gen("P-256");

	ck_assert_ptr_nonnull(pk);
	return pk;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/*
 * A certificate for cn with SAN san (NULL: none), valid from now + from to
 * now + to seconds, signed by ca (NULL: self-signed).
 */
static X509 *
make_x509(EVP_PKEY *pk, const char *cn, const char *san, long from, long to, X509 *ca,
    EVP_PKEY *ca_pk, int is_ca)
{
	X509 *x = X509_new();
	X509_NAME *n;
	static long serial = 1;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : n);
	X509_set_pubkey(x, pk);
	if (is_ca)
		add_ext(x, ca != NULL ? ca : x, NID_basic_constraints, "critical,CA:TRUE");
	if (san != NULL)
		add_ext(x, ca != NULL ? ca : x, NID_subject_alt_name, san);
	ck_assert_int_gt(X509_sign(x, ca_pk != NULL ? ca_pk : pk, EVP_sha256()), 0);
	return x;
}

static void
pem_append_x509(char *buf, size_t len, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
	n = BIO_get_mem_data(b, &data);
	ck_assert_int_lt(strlen(buf) + (size_t)n, len);
	strncat(buf, data, (size_t)n);
	BIO_free(b);
}

static void
pem_key(char *buf, size_t len, EVP_PKEY *pk, const EVP_CIPHER *enc)
{
	static unsigned char pass[] = "secret";
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	ck_assert_int_eq(PEM_write_bio_PrivateKey(b, pk, enc, enc ? pass : NULL,
	    enc ? 6 : 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &data);
	ck_assert_int_lt((size_t)n, len);
	memcpy(buf, data, (size_t)n);
	buf[n] = '\0';
	BIO_free(b);
}

/* A self-signed leaf: EC P-256 unless rsa_bits. */
static void
make_leaf(struct made *m, const char *cn, const char *san, long from, long to, int rsa_bits)
{
	memset(m, 0, sizeof(*m));
	m->pk = make_key(rsa_bits);
	m->x = make_x509(m->pk, cn, san, from, to, NULL, NULL, 0);
	pem_append_x509(m->chain, sizeof(m->chain), m->x);
	pem_key(m->key, sizeof(m->key), m->pk, NULL);
}

static void
made_free(struct made *m)
{
	X509_free(m->x);
	EVP_PKEY_free(m->pk);
}

/* certs_check for domain; returns its result, err filled. */
static int
check(const struct made *m, const char *domain, int force, struct certs_info *ci, char *err,
    size_t errlen)
{
	return certs_check(domain, m->chain, strlen(m->chain), m->key, strlen(m->key), force,
	    time(NULL), ci, err, errlen);
}

static void
expect_refusal(const struct made *m, const char *domain, int force, const char *want)
{
	struct certs_info ci;
	char err[600] = "";

	ck_assert_int_eq(check(m, domain, force, &ci, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want) != NULL, "refusal '%s' lacks '%s'", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_ptr_null(ci.key);
}

START_TEST(ec_leaf_accepted)
{
	struct made m;
	struct certs_info ci;
	char err[600] = "";

	make_leaf(&m, "app.example.com", "DNS:app.example.com,DNS:WWW.App.Example.com,IP:127.0.0.1",
	    -DAY, 90 * DAY, 0);
	ck_assert_msg(check(&m, "app.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(ci.nnames, 2);
	ck_assert_str_eq(ci.names[0], "app.example.com");
	ck_assert_str_eq(ci.names[1], "www.app.example.com");
	ck_assert_str_eq(ci.key_type, "EC P-256");
	ck_assert_uint_eq(strlen(ci.fingerprint_hex), 64);
	ck_assert_ptr_nonnull(strstr(ci.chain, "-----BEGIN CERTIFICATE-----"));
	ck_assert_ptr_nonnull(strstr(ci.key, "-----BEGIN PRIVATE KEY-----"));
	ck_assert_ptr_nonnull(strstr(ci.issuer, "CN=app.example.com"));
	ck_assert_int_le(ci.not_before, (int64_t)time(NULL));
	ck_assert_int_gt(ci.not_after, (int64_t)time(NULL) + 89 * DAY);
	certs_info_free(&ci);
	/* The alias in the SAN is covered too, case-insensitively. */
	ck_assert_msg(check(&m, "www.app.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	certs_info_free(&ci);
	made_free(&m);
}
END_TEST

START_TEST(rsa_accepted_small_rsa_refused)
{
	struct made m;
	struct certs_info ci;
	char err[600] = "";

	make_leaf(&m, "rsa.example.com", "DNS:rsa.example.com", -DAY, DAY, 2048);
	ck_assert_msg(check(&m, "rsa.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(ci.key_type, "RSA 2048");
	certs_info_free(&ci);
	made_free(&m);
	make_leaf(&m, "rsa.example.com", "DNS:rsa.example.com", -DAY, DAY, 1024);
	expect_refusal(&m, "rsa.example.com", 0, "RSA key of 1024 bits");
	made_free(&m);
}
END_TEST

START_TEST(garbage_refused)
{
	struct made m;
	char chain[sizeof(m.chain)];

	make_leaf(&m, "a.example.com", "DNS:a.example.com", -DAY, DAY, 0);
	memcpy(chain, m.chain, sizeof(chain));
	snprintf(m.chain, sizeof(m.chain), "hello, this is not a certificate\n");
	expect_refusal(&m, "a.example.com", 0, "no PEM certificate found");
	snprintf(m.chain, sizeof(m.chain), "-----BEGIN CERTIFICATE-----\n!!!!\n"
	    "-----END CERTIFICATE-----\n");
	expect_refusal(&m, "a.example.com", 0, "certificate:");
	/* A good leaf followed by a damaged block. */
	snprintf(m.chain, sizeof(m.chain), "%s-----BEGIN CERTIFICATE-----\nAAAA%%%%\n"
	    "-----END CERTIFICATE-----\n", chain);
	expect_refusal(&m, "a.example.com", 0, "damaged");
	memcpy(m.chain, chain, sizeof(chain));
	snprintf(m.key, sizeof(m.key), "not a key");
	expect_refusal(&m, "a.example.com", 0, "key: no usable PEM private key");
	made_free(&m);
}
END_TEST

START_TEST(mismatched_and_encrypted_key_refused)
{
	struct made a, b;

	make_leaf(&a, "a.example.com", "DNS:a.example.com", -DAY, DAY, 0);
	make_leaf(&b, "a.example.com", "DNS:a.example.com", -DAY, DAY, 0);
	memcpy(a.key, b.key, sizeof(a.key));
	expect_refusal(&a, "a.example.com", 0, "the key does not match the certificate");
	pem_key(a.key, sizeof(a.key), a.pk, EVP_aes_128_cbc());
	expect_refusal(&a, "a.example.com", 0, "key: the key is encrypted");
	made_free(&a);
	made_free(&b);
}
END_TEST

START_TEST(dates)
{
	struct made m;
	struct certs_info ci;
	char err[600] = "";

	make_leaf(&m, "old.example.com", "DNS:old.example.com", -90 * DAY, -DAY, 0);
	expect_refusal(&m, "old.example.com", 0, "the certificate expired on");
	expect_refusal(&m, "old.example.com", 0, "--force");
	ck_assert_msg(check(&m, "old.example.com", 1, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_lt(ci.not_after, (int64_t)time(NULL));
	certs_info_free(&ci);
	made_free(&m);
	make_leaf(&m, "new.example.com", "DNS:new.example.com", 2 * DAY, 90 * DAY, 0);
	expect_refusal(&m, "new.example.com", 0, "is not valid before");
	made_free(&m);
}
END_TEST

START_TEST(coverage_and_wildcards)
{
	struct made m;
	struct certs_info ci;
	char err[600] = "";

	make_leaf(&m, "example.com", "DNS:*.example.com", -DAY, DAY, 0);
	ck_assert_msg(check(&m, "a.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(ci.names[0], "*.example.com");
	certs_info_free(&ci);
	ck_assert_msg(check(&m, "*.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	certs_info_free(&ci);
	expect_refusal(&m, "a.b.example.com", 0, "does not cover a.b.example.com");
	expect_refusal(&m, "example.com", 0, "does not cover example.com (it covers *.example.com)");
	expect_refusal(&m, "*.other.com", 0, "does not cover *.other.com");
	expect_refusal(&m, "other.com", 0, "does not cover");
	made_free(&m);
	/* No SAN: the CN names it, as X509_check_host does. */
	make_leaf(&m, "cn.example.com", NULL, -DAY, DAY, 0);
	ck_assert_msg(check(&m, "cn.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(ci.nnames, 1);
	ck_assert_str_eq(ci.names[0], "cn.example.com");
	certs_info_free(&ci);
	made_free(&m);
	/* A SAN with DNS names: the CN no longer counts. */
	make_leaf(&m, "cn.example.com", "DNS:san.example.com", -DAY, DAY, 0);
	expect_refusal(&m, "cn.example.com", 0, "does not cover");
	made_free(&m);
}
END_TEST

START_TEST(chain_kept_in_order)
{
	EVP_PKEY *ca_pk = make_key(0), *pk = make_key(0);
	X509 *ca = make_x509(ca_pk, "Test CA", NULL, -DAY, 10 * DAY, NULL, NULL, 1);
	X509 *leaf = make_x509(pk, "leaf.example.com", "DNS:leaf.example.com", -DAY, DAY, ca, ca_pk,
	    0);
	struct made m;
	struct certs_info ci;
	char err[600] = "";
	const char *second;

	memset(&m, 0, sizeof(m));
	pem_append_x509(m.chain, sizeof(m.chain), leaf);
	pem_append_x509(m.chain, sizeof(m.chain), ca);
	pem_key(m.key, sizeof(m.key), pk, NULL);
	ck_assert_msg(check(&m, "leaf.example.com", 0, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(ci.issuer, "CN=Test CA"));
	ck_assert_ptr_nonnull(strstr(ci.subject, "CN=leaf.example.com"));
	second = strstr(ci.chain + 1, "-----BEGIN CERTIFICATE-----");
	ck_assert_ptr_nonnull(second);
	ck_assert_ptr_null(strstr(second + 1, "-----BEGIN CERTIFICATE-----"));
	certs_info_free(&ci);
	/* The CA's key with the leaf first does not match. */
	pem_key(m.key, sizeof(m.key), ca_pk, NULL);
	expect_refusal(&m, "leaf.example.com", 0, "does not match");
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(ca_pk);
	EVP_PKEY_free(pk);
}
END_TEST

START_TEST(covers_rule)
{
	ck_assert_int_eq(certs_covers("a.example.com", "a.example.com"), 1);
	ck_assert_int_eq(certs_covers("*.example.com", "a.example.com"), 1);
	ck_assert_int_eq(certs_covers("*.example.com", "a.b.example.com"), 0);
	ck_assert_int_eq(certs_covers("*.example.com", "example.com"), 0);
	ck_assert_int_eq(certs_covers("*.example.com", "*.example.com"), 1);
	ck_assert_int_eq(certs_covers("*.example.com", "*.a.example.com"), 0);
	ck_assert_int_eq(certs_covers("a.example.com", "b.example.com"), 0);
	ck_assert_int_eq(certs_covers("*.example.com", "aexample.com"), 0);
}
END_TEST

START_TEST(default_certificate)
{
	struct certs_info ci, again;
	char err[600] = "";
	time_t now = time(NULL);
	BIO *b;
	X509 *x;
	EVP_PKEY *pk;

	ck_assert_msg(certs_make_default(now, &ci, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(ci.nnames, 0);
	ck_assert_str_eq(ci.key_type, "EC P-256");
	ck_assert_str_eq(ci.issuer, "CN=" CERTS_DEFAULT_CN);
	ck_assert_int_eq(ci.not_after - ci.not_before, (int64_t)CERTS_DEFAULT_DAYS * DAY);
	/* It parses back, is self-signed, and its key matches. */
	b = BIO_new_mem_buf(ci.chain, -1);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ck_assert_ptr_nonnull(x);
	b = BIO_new_mem_buf(ci.key, -1);
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	ck_assert_ptr_nonnull(pk);
	ck_assert_int_eq(X509_check_private_key(x, pk), 1);
	ck_assert_int_eq(X509_verify(x, pk), 1);
	X509_free(x);
	EVP_PKEY_free(pk);
	/* Each one is new. */
	ck_assert_int_eq(certs_make_default(now, &again, err, sizeof(err)), 0);
	ck_assert_str_ne(again.fingerprint_hex, ci.fingerprint_hex);
	certs_info_free(&again);
	certs_info_free(&ci);
}
END_TEST

/* --- the store's certificate rows */

static char dir[64], path[128];

static struct store *
store_fresh(void)
{
	const char *tmp = getenv("TMPDIR");
	struct store *st;

	snprintf(dir, sizeof(dir), "%s/check_certs.XXXXXX", tmp != NULL ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	ck_assert_int_eq(store_open(path, &st), STORE_OK);
	return st;
}

static void
store_gone(struct store *st)
{
	char p[160];

	store_close(st);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	rmdir(dir);
}

static int
count_cert(void *arg, const struct store_cert *c)
{
	int *n = arg;

	ck_assert_ptr_null(c->key);	/* not asked for */
	ck_assert_ptr_nonnull(c->chain);
	(*n)++;
	return 0;
}

/* A route's backend CA: certificates only, re-encoded; a subject; the bounds. */
START_TEST(backend_ca_checked)
{
	struct certs_info a, b;
	char err[256], subject[300], *out = NULL, *bundle, *big;
	time_t now = time(NULL);
	size_t n;

	ck_assert_int_eq(certs_make_default(now, &a, err, sizeof(err)), 0);
	ck_assert_int_eq(certs_make_default(now + 1, &b, err, sizeof(err)), 0);
	n = strlen(a.chain) + strlen(b.chain) + 64;
	bundle = malloc(n);
	ck_assert_ptr_nonnull(bundle);
	snprintf(bundle, n, "# comment\n%s\ntext between\n%s", a.chain, b.chain);
	ck_assert_msg(certs_check_ca(bundle, strlen(bundle), &out, subject, sizeof(subject), err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(subject, "CN=haloyd-default (+1 more)");
	ck_assert_ptr_null(strstr(out, "comment"));
	ck_assert_ptr_null(strstr(out, "between"));
	ck_assert_uint_eq(strlen(out), strlen(a.chain) + strlen(b.chain));
	free(out);
	ck_assert_int_eq(certs_check_ca(a.chain, strlen(a.chain), NULL, subject, sizeof(subject),
	    err, sizeof(err)), 0);
	ck_assert_str_eq(subject, "CN=haloyd-default");

	ck_assert_int_eq(certs_check_ca("junk", 4, &out, NULL, 0, err, sizeof(err)), -1);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(strstr(err, "no PEM certificate"));
	ck_assert_int_eq(certs_check_ca(a.key, strlen(a.key), &out, NULL, 0, err, sizeof(err)), -1);
	big = calloc(1, CERTS_CA_PEM_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, '#', CERTS_CA_PEM_MAX + 1);
	ck_assert_int_eq(certs_check_ca(big, strlen(big), &out, NULL, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "larger than"));
	free(big);
	free(bundle);
	certs_info_free(&a);
	certs_info_free(&b);
}
END_TEST

START_TEST(store_rows)
{
	static char n1[] = "a.example.com", n2[] = "www.a.example.com", domain[] = "a.example.com";
	static char chain[] = "CHAIN", chain2[] = "CHAIN2", key[] = "KEY", issuer[] = "CN=Test";
	static char fp[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static char dchain[] = "D", dkey[] = "K", dissuer[] = "CN=haloyd-default", bad[] = "short";
	static char dfp[] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	static char *names[] = { n1, n2 };
	struct store *st = store_fresh();
	struct store_cert c, got;
	int64_t id1, id2;
	int n = 0;

	memset(&c, 0, sizeof(c));
	c.domain = domain;
	c.source = KEYRING_SRC_IMPORTED;
	c.names = names;
	c.nnames = 2;
	c.chain = chain;
	c.key = key;
	c.issuer = issuer;
	c.fingerprint = fp;
	c.not_before = 10;
	c.not_after = 20;
	ck_assert_int_eq(store_cert_put(st, &c, &id1), STORE_OK);
	ck_assert_int_eq(store_cert_get(st, "a.example.com", 1, &got), STORE_OK);
	ck_assert_int_eq(got.id, id1);
	ck_assert_str_eq(got.key, "KEY");
	ck_assert_uint_eq(got.nnames, 2);
	ck_assert_str_eq(got.names[1], "www.a.example.com");
	store_cert_free(&got);
	/* A second import for the same domain replaces it, with a new id. */
	c.chain = chain2;
	ck_assert_int_eq(store_cert_put(st, &c, &id2), STORE_OK);
	ck_assert_int_gt(id2, id1);
	ck_assert_int_eq(store_cert_get(st, "a.example.com", 0, &got), STORE_OK);
	ck_assert_str_eq(got.chain, "CHAIN2");
	ck_assert_ptr_null(got.key);
	store_cert_free(&got);
	/* The default has no domain and no names; only one exists. */
	memset(&c, 0, sizeof(c));
	c.source = KEYRING_SRC_DEFAULT;
	c.chain = dchain;
	c.key = dkey;
	c.issuer = dissuer;
	c.fingerprint = dfp;
	ck_assert_int_eq(store_cert_put(st, &c, NULL), STORE_OK);
	ck_assert_int_eq(store_cert_put(st, &c, NULL), STORE_OK);
	ck_assert_int_eq(store_cert_get(st, NULL, 1, &got), STORE_OK);
	ck_assert_int_eq(got.source, KEYRING_SRC_DEFAULT);
	ck_assert_ptr_null(got.domain);
	store_cert_free(&got);
	ck_assert_int_eq(store_cert_foreach(st, 0, count_cert, &n), STORE_OK);
	ck_assert_int_eq(n, 2);
	/* A bad fingerprint breaks the schema's checks. */
	c.fingerprint = bad;
	ck_assert_int_eq(store_cert_put(st, &c, NULL), STORE_EINVAL);
	ck_assert_int_eq(store_cert_rm(st, "a.example.com"), STORE_OK);
	ck_assert_int_eq(store_cert_rm(st, "a.example.com"), STORE_ENOENT);
	ck_assert_int_eq(store_cert_get(st, "a.example.com", 0, &got), STORE_ENOENT);
	store_gone(st);
}
END_TEST

Suite *
suite_certs(void)
{
	Suite *s = suite_create("certs");
	TCase *tc = tcase_create("import");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ec_leaf_accepted);
	tcase_add_test(tc, rsa_accepted_small_rsa_refused);
	tcase_add_test(tc, garbage_refused);
	tcase_add_test(tc, mismatched_and_encrypted_key_refused);
	tcase_add_test(tc, dates);
	tcase_add_test(tc, coverage_and_wildcards);
	tcase_add_test(tc, chain_kept_in_order);
	tcase_add_test(tc, covers_rule);
	tcase_add_test(tc, default_certificate);
	suite_add_tcase(s, tc);
	tc = tcase_create("store");
	tcase_add_test(tc, store_rows);
	tcase_add_test(tc, backend_ca_checked);
	suite_add_tcase(s, tc);
	return s;
}
