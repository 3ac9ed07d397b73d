/* Unit tests for agent/agenttls.c: haloyd-tunnel's certificate, key and CA checks. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "agent/agentconf.h"
#include "agent/agenttls.h"
#include "tests/unit/suites.h"
#include "tests/unit/testworker.h"

static char dir[] = "/tmp/check_agenttls_XXXXXX";

static void
path(char *out, const char *name)
{
	snprintf(out, AGENTCONF_PATH_MAX, "%s/%s", dir, name);
}

/* name.pem (a self-signed certificate) and name.key (its key, mode 0600). */
static void
write_pair(const char *name)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = tw_x509(k, name, "DNS:localhost", 1);
	char p[AGENTCONF_PATH_MAX], file[64];
	FILE *f;

	snprintf(file, sizeof(file), "%s.pem", name);
	path(p, file);
	ck_assert_ptr_nonnull(f = fopen(p, "w"));
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
	snprintf(file, sizeof(file), "%s.key", name);
	path(p, file);
	ck_assert_ptr_nonnull(f = fopen(p, "w"));
	ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	ck_assert_int_eq(chmod(p, 0600), 0);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_pair("a");
	write_pair("b");
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

static void
conf(struct agentconf *c, const char *cert, const char *key, const char *ca)
{
	agentconf_defaults(c);
	path(c->cert, cert);
	path(c->key, key);
	if (ca != NULL)
		path(c->ca, ca);
}

START_TEST(good_pair)
{
	struct agentconf c;
	char err[512] = "";
	SSL_CTX *ctx;

	conf(&c, "a.pem", "a.key", "b.pem");
	ctx = agenttls_context(&c, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "%s", err);
	ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(key_mode)
{
	struct agentconf c;
	char err[512];

	conf(&c, "a.pem", "a.key", NULL);
	ck_assert_int_eq(agenttls_check_key_mode(c.key, err, sizeof(err)), 0);
	ck_assert_int_eq(chmod(c.key, 0640), 0);
	ck_assert_int_eq(agenttls_check_key_mode(c.key, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "readable by group or others"));
	ck_assert_ptr_null(agenttls_context(&c, err, sizeof(err)));
	ck_assert_int_eq(chmod(c.key, 0604), 0);
	ck_assert_int_eq(agenttls_check_key_mode(c.key, err, sizeof(err)), -1);
}
END_TEST

START_TEST(refusals)
{
	struct agentconf c;
	char err[512];

	conf(&c, "missing.pem", "a.key", NULL);
	ck_assert_ptr_null(agenttls_context(&c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "missing.pem"));
	conf(&c, "a.pem", "b.key", NULL);
	ck_assert_ptr_null(agenttls_context(&c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "mismatch"));
	conf(&c, "a.key", "a.key", NULL);	/* a key where the certificate should be */
	ck_assert_ptr_null(agenttls_context(&c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "certificate"));
	conf(&c, "a.pem", "a.key", "a.key");	/* no certificate in the CA file */
	ck_assert_ptr_null(agenttls_context(&c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "CA file"));
	conf(&c, "a.pem", "a.key", "none.pem");
	ck_assert_ptr_null(agenttls_context(&c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "none.pem"));
}
END_TEST

Suite *
suite_agenttls(void)
{
	Suite *s = suite_create("agenttls");
	TCase *tc = tcase_create("agenttls");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_pair);
	tcase_add_test(tc, key_mode);
	tcase_add_test(tc, refusals);
	suite_add_tcase(s, tc);
	return s;
}
