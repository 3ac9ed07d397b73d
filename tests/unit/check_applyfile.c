/*
 * Unit tests for master/applyfile.c: every form of a line (comments, blank
 * lines, backends of every kind positional or --backend, aliases, settings,
 * tabs and CRLF), the refusals with their line numbers, and the round trip
 * of every entry of route set's table through a line: a setting added to
 * the table without a sample value here fails settings_round_trip.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "master/applyfile.h"
#include "master/commands.h"
#include "tests/unit/suites.h"

static struct applyfile af;
static char err[600];

static int
parse(const char *text)
{
	return applyfile_parse(text, strlen(text), "f.conf", &af, err, sizeof(err));
}

static void
teardown(void)
{
	applyfile_free(&af);
}

START_TEST(every_line_form)
{
	const char *text =
	    "# a comment\n"
	    "\n"
	    "   \t  \n"
	    "route B.example.com 127.0.0.1:3000 unix:/run/b.sock --alias www.b.example.com "
	    "--backend tunnel:office --alias *.b.example.com # why\n"
	    "route a.example.com\t[::1]:80\t--max-body 10m --hsts on\r\n"
	    "route c.example.com --backend [0::2]:443 --proto https --backend-sni api.internal "
	    "--backend-verify off\n"
	    "route d.example.com";	/* no newline at the end, no backend */
	const struct applyfile_route *r;

	ck_assert_int_eq(parse(text), 0);
	ck_assert_uint_eq(af.n, 4);
	/* Sorted by name, names normalised. */
	ck_assert_str_eq(af.routes[0].name, "a.example.com");
	ck_assert_str_eq(af.routes[1].name, "b.example.com");
	ck_assert_str_eq(af.routes[3].name, "d.example.com");
	r = &af.routes[1];
	ck_assert_uint_eq(r->line, 4);
	ck_assert_uint_eq(r->nbackends, 3);
	ck_assert_str_eq(r->backends[0], "127.0.0.1:3000");
	ck_assert_str_eq(r->backends[1], "unix:/run/b.sock");
	ck_assert_str_eq(r->backends[2], "tunnel:office");
	ck_assert_uint_eq(r->naliases, 2);
	ck_assert_str_eq(r->aliases[0], "*.b.example.com");
	ck_assert_str_eq(r->aliases[1], "www.b.example.com");
	r = &af.routes[0];
	ck_assert_str_eq(r->backends[0], "[::1]:80");
	ck_assert_int_eq(r->set.max_body, 10 << 20);
	ck_assert_int_eq(r->set.connect_ms, STORE_DEFAULT);
	r = &af.routes[2];
	ck_assert_str_eq(r->backends[0], "[::2]:443");
	ck_assert_str_eq(r->set.backend_sni, "api.internal");
	ck_assert_uint_eq(af.routes[3].nbackends, 0);
}
END_TEST

START_TEST(empty_file_is_no_routes)
{
	ck_assert_int_eq(parse("\n"), 0);
	ck_assert_uint_eq(af.n, 0);
	ck_assert_int_eq(parse("# nothing\n\n"), 0);
	ck_assert_uint_eq(af.n, 0);
}
END_TEST

static const struct {
	const char *text;
	const char *want;	/* the start of the error */
} bad[] = {
	{ "\n\nroute a.example 127.0.0.1:99999\n", "f.conf:3: invalid backend '127.0.0.1:99999'" },
	{ "route a.example 127.0.0.1:1\nroute -bad- 127.0.0.1:1\n", "f.conf:2: invalid host name" },
	{ "# x\nfrob a.example\n", "f.conf:2: unknown line 'frob'" },
	{ "route\n", "f.conf:1: 'route' needs a host name" },
	{ "route a.example # 127.0.0.1:1\nroute b.example --alias\n",
	    "f.conf:2: --alias needs a value" },
	{ "route a.example --max-body lots\n", "f.conf:1: max_body: invalid value 'lots'" },
	{ "route a.example --frobs 3\n", "f.conf:1: unknown setting '--frobs'" },
	{ "route a.example --backend-sni x.example\n",
	    "f.conf:1: route a.example: backend_sni needs proto https or h2" },
	{ "route a.example --proto https --backend-ca !!!!\n",
	    "f.conf:1: --backend-ca: the value is the base64 of a PEM file" },
	{ "route a.example 127.0.0.1:1 127.0.0.1:1\n",
	    "f.conf:1: backend 127.0.0.1:1 given twice" },
	{ "route a.example\n\nroute b.example --alias a.example\n",
	    "f.conf:3: the name a.example is already used on line 1" },
	{ "route a.example --alias w.a.example\nroute w.a.example\n",
	    "f.conf:2: the name w.a.example is already used on line 1" },
	{ "route a.example\nroute a.example\n", "f.conf:2: the name a.example is already used" },
	{ "route a.example 127.0.0.1:1\0route b.example\n", "f.conf: not a text file" },
};

START_TEST(errors_name_their_line)
{
	size_t len = strlen(bad[_i].text);

	if (strstr(bad[_i].want, "not a text") != NULL)
		len += 1 + strlen(bad[_i].text + len + 1);
	ck_assert_int_eq(applyfile_parse(bad[_i].text, len, "f.conf", &af, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, bad[_i].want, strlen(bad[_i].want)) == 0, "%s\nwanted %s", err,
	    bad[_i].want);
	ck_assert_uint_eq(af.n, 0);
}
END_TEST

START_TEST(bounds)
{
	char *text = malloc(200 * 1024), *at = text;
	int i;

	ck_assert_ptr_nonnull(text);
	/* 65 aliases: one too many. */
	at += sprintf(at, "route a.example");
	for (i = 0; i < APPLYFILE_MAX_LIST + 1; i++)
		at += sprintf(at, " --alias a%d.example", i);
	*at = '\0';
	ck_assert_int_eq(parse(text), -1);
	ck_assert_str_eq(err, "f.conf:1: at most 64 aliases per route");
	/* A line longer than APPLYFILE_LINE_MAX. */
	memset(text, ' ', APPLYFILE_LINE_MAX + 10);
	memcpy(text, "route a.example", 15);
	text[APPLYFILE_LINE_MAX + 10] = '\0';
	ck_assert_int_eq(parse(text), -1);
	ck_assert_msg(strstr(err, "f.conf:1: the line is longer") == err, "%s", err);
	free(text);
}
END_TEST

/* A self-signed CA certificate as PEM text (malloc'ed). */
static char *
make_ca_pem(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	ck_assert_ptr_nonnull(pk);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"apply test CA", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x, pk, EVP_sha256()), 0);
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(pk);
	return out;
}

/* A value other than the default for every key of route set's table. */
static const struct {
	const char *key, *value;
} samples[] = {
	{ "connect_timeout", "2s" }, { "response_timeout", "5m" }, { "idle_timeout", "90s" },
	{ "upgrade_timeout", "2h" }, { "max_body", "10m" }, { "https_redirect", "off" },
	{ "hsts", "on" }, { "compress", "on" }, { "balance", "round-robin" },
	{ "rate", "10r/s" }, { "burst", "5" }, { "nodelay", "on" }, { "proto", "h2" },
	{ "backend_ca", NULL /* made here */ }, { "backend_sni", "api.internal" },
	{ "backend_verify", "off" }, { "challenge", "tls-alpn-01" },
	{ "backend_proxy_protocol", "v2" }, { "cache", "on" }, { "cache_max_object", "1m" },
	{ "cache_debug", "on" }, { "strip_prefix", "on" }, { "health_check", "/healthz" },
	{ "health_interval", "10s" }, { "health_timeout", "3s" }, { "health_rise", "3" },
	{ "health_fall", "4" },
};

/* One line with key's sample written and read back twice: the same text. */
static void
round_trip(const char *key, const char *value)
{
	char *text, *line, *line2, opt[72], e[300];
	struct store_route r;
	size_t i;

	snprintf(opt, sizeof(opt), "--%s", key);
	for (i = 2; opt[i] != '\0'; i++)
		if (opt[i] == '_')
			opt[i] = '-';
	/* strip_prefix is only for a path-prefix route. */
	ck_assert_int_ne(asprintf(&text, "route rt.example%s 127.0.0.1:1 %s %s%s\n",
	    strcmp(key, "strip_prefix") == 0 ? "/api" : "", opt, value,
	    strcmp(key, "proto") != 0 ? " --proto https" : ""), -1);
	ck_assert_msg(parse(text) == 0, "%s: %s", key, err);
	memset(&r, 0, sizeof(r));
	r.name = af.routes[0].name;
	r.backends = af.routes[0].backends;
	r.nbackends = af.routes[0].nbackends;
	r.set = af.routes[0].set;
	ck_assert_int_eq(applyfile_format(&r, &line, e, sizeof(e)), 0);
	snprintf(e, sizeof(e), "%s %.200s", opt, value);
	ck_assert_msg(strstr(line, e) != NULL, "%s %s not written back: %s", opt, value, line);
	applyfile_free(&af);
	ck_assert_int_eq(parse(line), 0);
	r.name = af.routes[0].name;
	r.backends = af.routes[0].backends;
	r.set = af.routes[0].set;
	ck_assert_int_eq(applyfile_format(&r, &line2, e, sizeof(e)), 0);
	ck_assert_str_eq(line2, line);
	applyfile_free(&af);
	free(line);
	free(line2);
	free(text);
}

START_TEST(settings_round_trip)
{
	char *pem = make_ca_pem(), *b64;
	size_t i, j;

	ck_assert_ptr_nonnull(b64 = malloc(4 * ((strlen(pem) + 2) / 3) + 1));
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pem, (int)strlen(pem));
	for (i = 0; i < commands_rset_count(); i++) {
		for (j = 0; j < sizeof(samples) / sizeof(samples[0]); j++)
			if (strcmp(samples[j].key, commands_rset_key(i)) == 0)
				break;
		ck_assert_msg(j < sizeof(samples) / sizeof(samples[0]),
		    "route setting %s has no sample in check_applyfile.c", commands_rset_key(i));
		round_trip(samples[j].key, samples[j].value ? samples[j].value : b64);
	}
	free(b64);
	free(pem);
}
END_TEST

/* A route with every setting at its default writes none; a space cannot be written. */
START_TEST(format_defaults_and_unwritable)
{
	char a1[] = "a.example", a2[] = "b.example", be[] = "unix:/run/a b.sock", name[] = "x.example";
	char *aliases[] = { a1, a2 }, *bes[] = { be };
	struct store_route r;
	char *line, e[300];

	memset(&r, 0, sizeof(r));
	r.name = name;
	r.aliases = aliases;
	r.naliases = 2;
	commands_rset_defaults(&r.set);
	ck_assert_int_eq(applyfile_format(&r, &line, e, sizeof(e)), 0);
	ck_assert_str_eq(line, "route x.example --alias a.example --alias b.example");
	free(line);
	r.backends = bes;
	r.nbackends = 1;
	ck_assert_int_eq(applyfile_format(&r, &line, e, sizeof(e)), -1);
	ck_assert_msg(strstr(e, "route x.example: a backend or value holds a space") == e, "%s", e);
}
END_TEST

Suite *
suite_applyfile(void)
{
	Suite *s = suite_create("applyfile");
	TCase *tc = tcase_create("applyfile");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, every_line_form);
	tcase_add_test(tc, empty_file_is_no_routes);
	tcase_add_loop_test(tc, errors_name_their_line, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, bounds);
	tcase_add_test(tc, settings_round_trip);
	tcase_add_test(tc, format_defaults_and_unwritable);
	suite_add_tcase(s, tc);
	return s;
}
