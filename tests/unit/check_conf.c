/*
 * Unit tests for master/conf.c: haloyd.conf and the command line, read
 * through the one table of settings. Every value kind, the defaults, the
 * command line over the file, the file's syntax, and every refusal with
 * its one-line message. Each test writes its file in a fresh temp dir.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/conf.h"
#include "tests/unit/suites.h"

static char dir[128];
static char path[192];		/* dir/haloyd.conf, passed with -c */
static char sub[192];		/* dir/sub, a folder */
static struct conf cfg;
static char err[512];

/* Every setting, file spelling; haloyd.conf(5) lists the same. */
static const char *const settings[] = {
	"listen_http", "listen_https", "ticket_key_lifetime", "workers", "state_dir", "store",
	"acme_store",
	"runtime_dir", "user", "admin_group", "log_target", "access_log", "stop_timeout",
	"header_timeout", "keepalive_timeout", "connect_timeout", "response_timeout",
	"idle_timeout", "upgrade_timeout", "max_connections", "body_timeout",
	"backend_down_time", "max_body", "access_log_sample", "http2", "http2_max_streams", "trusted_proxies",
	"error_pages", "acme", "acme_directory", "acme_email", "acme_ca_file", "acme_user",
	"acme_profile", "dns_update_server", "dns_tsig_key", "dns_zone", "dns_ns_port",
	"dns_propagation_timeout",
	"acme_renew_before", "acme_backoff_max", "shared_memory_size", "listen_metrics", "sandbox",
	"listen_tunnel", "tunnel_ca_file", "tunnel_cert", "tunnel_key", "tunnel_ping_interval",
	"tunnel_ping_timeout",
	"rate_limit", "rate_burst", "rate_nodelay", "rate_limit_dry_run", "max_connections_per_ip",
	"cache_path", "cache_max_size",
	"acme_on_demand", "acme_ask", "acme_on_demand_rate", "acme_on_demand_backoff",
	"acme_on_demand_wait",
	"resolver", "resolve_min_ttl", "resolve_max_ttl", "upgrade_drain",
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_conf.XXXXXX", tmp != NULL ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/haloyd.conf", dir);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
}

static void
teardown(void)
{
	char p[256];

	conf_free(&cfg);
	unlink(path);
	snprintf(p, sizeof(p), "%s/out", dir);
	unlink(p);
	rmdir(sub);
	rmdir(dir);
}

static void
write_conf(const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

/*
 * conf_load on "haloyd [-c path] args..." into cfg (freed first); checks
 * that a refusal says why, on one line.
 */
static int
load_args(int with_c, const char *const *args)
{
	char *argv[80];
	int argc = 0, rc, i;

	argv[argc++] = strdup("haloyd");
	if (with_c) {
		argv[argc++] = strdup("-c");
		argv[argc++] = strdup(path);
	}
	for (; *args != NULL; args++) {
		ck_assert_int_lt(argc, 79);
		argv[argc++] = strdup(*args);
	}
	argv[argc] = NULL;
	for (i = 0; i < argc; i++)
		ck_assert_ptr_nonnull(argv[i]);
	conf_free(&cfg);
	memset(err, 'X', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	rc = conf_load(&cfg, argc, argv, err, sizeof(err));
	for (i = 0; i < argc; i++)
		free(argv[i]);
	if (rc == -1) {
		ck_assert_msg(err[0] != '\0' && err[0] != 'X', "refused without a message");
		ck_assert_msg(strchr(err, '\n') == NULL, "message on several lines: %s", err);
	}
	return rc;
}

#define LOAD(...) load_args(1, (const char *const[]){ __VA_ARGS__ })
#define LOAD_FILE() LOAD(NULL)

/* Loads text as the file; on failure the test fails with the message. */
static void
load_ok(const char *text)
{
	write_conf(text);
	ck_assert_msg(LOAD_FILE() == 0, "refused: %s", err);
}

/* Loads text as the file and expects "path:line: msg". */
static void
load_fails(const char *text, int line, const char *msg)
{
	char want[1024];

	write_conf(text);
	ck_assert_int_eq(LOAD_FILE(), -1);
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
	ck_assert_str_eq(err, want);
}

/* The file "name value" is refused, on its line 1, as an invalid value. */
static void
bad_value(const char *name, const char *value)
{
	char text[256], want[256];

	snprintf(text, sizeof(text), "%s %s\n", name, value);
	snprintf(want, sizeof(want), "%s: invalid value '%s'", name, value);
	load_fails(text, 1, want);
}

/* Every default but those the shipped file's examples change. */
static void
assert_common_defaults(void)
{
	ck_assert_uint_eq(cfg.listen_http.n, 1);
	ck_assert_str_eq(cfg.listen_http.v[0], "0.0.0.0:80");
	ck_assert_int_eq(cfg.sandbox, 1);
	ck_assert_uint_eq(cfg.ticket_key_lifetime_ms, 12 * 3600000);
	ck_assert_str_eq(cfg.state_dir, "/var/lib/haloyd");
	ck_assert_str_eq(cfg.runtime_dir, "/run/haloyd");
	ck_assert_str_eq(cfg.user, "haloyd");
	ck_assert_str_eq(cfg.admin_group, "haloyd-admin");
	ck_assert_str_eq(cfg.log_target, "auto");
	ck_assert_int_eq(cfg.access_log, 1);
	ck_assert_uint_eq(cfg.stop_timeout_ms, 30000);
	ck_assert_uint_eq(cfg.upgrade_drain_ms, 300000);
	ck_assert_int_eq(cfg.takeover, 0);
	ck_assert_uint_eq(cfg.header_timeout_ms, 30000);
	ck_assert_uint_eq(cfg.keepalive_timeout_ms, 75000);
	ck_assert_uint_eq(cfg.connect_timeout_ms, 5000);
	ck_assert_uint_eq(cfg.response_timeout_ms, 60000);
	ck_assert_uint_eq(cfg.idle_timeout_ms, 60000);
	ck_assert_uint_eq(cfg.upgrade_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg.max_connections, 10000);
	ck_assert_uint_eq(cfg.body_timeout_ms, 60000);
	ck_assert_uint_eq(cfg.backend_down_ms, 10000);
	ck_assert_uint_eq(cfg.max_body, 0);
	ck_assert_uint_eq(cfg.access_log_sample, 1);
	ck_assert_int_eq(cfg.http2, 1);
	ck_assert_uint_eq(cfg.h2_max_streams, 100);
	ck_assert_str_eq(cfg.error_pages, "/etc/haloyd/errors");
	ck_assert_int_eq(cfg.acme, 0);
	ck_assert_str_eq(cfg.acme_directory, "production");
	ck_assert_str_eq(cfg.acme_user, "haloyd-acme");
	ck_assert_uint_eq(cfg.acme_renew_before, 33);
	ck_assert_uint_eq(cfg.acme_backoff_max_ms, 6 * 3600000);
	ck_assert_uint_eq(cfg.shared_memory_size, 8u << 20);
	ck_assert_str_eq(cfg.cache_path, "/var/lib/haloyd/cache");
	ck_assert_uint_eq(cfg.cache_max_size, 256u << 20);
	ck_assert_int_eq(cfg.verbose, 0);
	ck_assert_int_eq(cfg.test_only, 0);
}

/* --- the file */

START_TEST(defaults)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	load_ok("");
	assert_common_defaults();
	ck_assert_uint_eq(cfg.workers, n > 0 ? (uint64_t)n : 1);
	ck_assert_uint_eq(cfg.listen_https.n, 0);
	ck_assert_uint_eq(cfg.trusted_proxies.n, 0);
	ck_assert_str_eq(cfg.acme_email, "");
	ck_assert_str_eq(cfg.acme_ca_file, "");
	ck_assert_str_eq(cfg.acme_profile, "");
	ck_assert_int_eq(cfg.no_listen_http, 0);
	ck_assert_str_eq(cfg.config_file, path);
	ck_assert_int_eq(cfg.config_explicit, 1);
	/* A file of comments and blank lines is the same as an empty one. */
	load_ok("# nothing here\n\n   \n\t# indented\n");
	assert_common_defaults();
	ck_assert_uint_eq(cfg.workers, n > 0 ? (uint64_t)n : 1);
}
END_TEST

START_TEST(every_setting)
{
	load_ok(
	    "listen_http 127.0.0.1:8080\n"
	    "listen_http [::1]:8081\n"
	    "listen_https 0.0.0.0:8443\n"
	    "ticket_key_lifetime 2h\n"
	    "workers 3\n"
	    "state_dir /srv/haloyd/state\n"
	    "runtime_dir /srv/haloyd/run\n"
	    "user www\n"
	    "admin_group wheel\n"
	    "log_target stderr\n"
	    "access_log off\n"
	    "stop_timeout 5s\n"
	    "header_timeout 1500ms\n"
	    "keepalive_timeout 2m\n"
	    "connect_timeout 250ms\n"
	    "response_timeout 3h\n"
	    "idle_timeout 45\n"
	    "upgrade_timeout 7200s\n"
	    "max_connections 512\n"
	    "body_timeout 90s\n"
	    "backend_down_time 0\n"
	    "max_body 10m\n"
	    "access_log_sample 100\n"
	    "trusted_proxies 10.0.0.0/8\n"
	    "trusted_proxies fd00::/8\n"
	    "trusted_proxies 192.0.2.7\n"
	    "error_pages /srv/haloyd/errors\n"
	    "acme on\n"
	    "acme_directory https://acme.example.test/directory\n"
	    "acme_email ops@example.com\n"
	    "acme_ca_file /srv/haloyd/ca.pem\n"
	    "acme_user certbot\n"
	    "acme_profile shortlived\n"
	    "acme_renew_before 50%\n"
	    "acme_backoff_max 30m\n"
	    "listen_tunnel 0.0.0.0:8443\n"
	    "tunnel_ca_file /srv/haloyd/tunnel-ca.pem\n");
	ck_assert_uint_eq(cfg.listen_http.n, 2);
	ck_assert_str_eq(cfg.listen_http.v[0], "127.0.0.1:8080");
	ck_assert_str_eq(cfg.listen_http.v[1], "[::1]:8081");
	ck_assert_uint_eq(cfg.listen_https.n, 1);
	ck_assert_str_eq(cfg.listen_https.v[0], "0.0.0.0:8443");
	ck_assert_uint_eq(cfg.ticket_key_lifetime_ms, 7200000);
	ck_assert_uint_eq(cfg.workers, 3);
	ck_assert_str_eq(cfg.state_dir, "/srv/haloyd/state");
	ck_assert_str_eq(cfg.runtime_dir, "/srv/haloyd/run");
	ck_assert_str_eq(cfg.user, "www");
	ck_assert_str_eq(cfg.admin_group, "wheel");
	ck_assert_str_eq(cfg.log_target, "stderr");
	ck_assert_int_eq(cfg.access_log, 0);
	ck_assert_uint_eq(cfg.stop_timeout_ms, 5000);
	ck_assert_uint_eq(cfg.header_timeout_ms, 1500);
	ck_assert_uint_eq(cfg.keepalive_timeout_ms, 120000);
	ck_assert_uint_eq(cfg.connect_timeout_ms, 250);
	ck_assert_uint_eq(cfg.response_timeout_ms, 3 * 3600000);
	ck_assert_uint_eq(cfg.idle_timeout_ms, 45000);
	ck_assert_uint_eq(cfg.upgrade_timeout_ms, 7200000);
	ck_assert_uint_eq(cfg.max_connections, 512);
	ck_assert_uint_eq(cfg.body_timeout_ms, 90000);
	ck_assert_uint_eq(cfg.backend_down_ms, 0);
	ck_assert_uint_eq(cfg.max_body, 10 << 20);
	ck_assert_uint_eq(cfg.access_log_sample, 100);
	ck_assert_uint_eq(cfg.trusted_proxies.n, 3);
	ck_assert_str_eq(cfg.trusted_proxies.v[0], "10.0.0.0/8");
	ck_assert_str_eq(cfg.trusted_proxies.v[1], "fd00::/8");
	ck_assert_str_eq(cfg.trusted_proxies.v[2], "192.0.2.7");
	ck_assert_str_eq(cfg.error_pages, "/srv/haloyd/errors");
	ck_assert_str_eq(cfg.listen_tunnel, "0.0.0.0:8443");
	ck_assert_int_eq(cfg.acme, 1);
	ck_assert_str_eq(cfg.acme_directory, "https://acme.example.test/directory");
	ck_assert_str_eq(cfg.acme_email, "ops@example.com");
	ck_assert_str_eq(cfg.acme_ca_file, "/srv/haloyd/ca.pem");
	ck_assert_str_eq(cfg.acme_user, "certbot");
	ck_assert_str_eq(cfg.acme_profile, "shortlived");
	ck_assert_uint_eq(cfg.acme_renew_before, 50);
	ck_assert_uint_eq(cfg.acme_backoff_max_ms, 1800000);
}
END_TEST

/*
 * One numeric value, in the file and on the command line: the same result,
 * or the same refusal ("name: invalid value 'v'", after "file:line: " in
 * the file).
 */
#define REFUSED UINT64_MAX
#define F(f) offsetof(struct conf, f)
static const struct value_case {
	const char *name, *value;
	size_t off;
	uint64_t want;
} value_cases[] = {
	/* durations: ms, s, m, h, a bare number is seconds; connect_timeout 10ms..1h */
	{ "connect_timeout", "10ms", F(connect_timeout_ms), 10 },
	{ "connect_timeout", "9ms", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1s", F(connect_timeout_ms), 1000 },
	{ "connect_timeout", "5", F(connect_timeout_ms), 5000 },
	{ "connect_timeout", "2m", F(connect_timeout_ms), 120000 },
	{ "connect_timeout", "1h", F(connect_timeout_ms), 3600000 },
	{ "connect_timeout", "3600000ms", F(connect_timeout_ms), 3600000 },
	{ "connect_timeout", "007s", F(connect_timeout_ms), 7000 },
	{ "connect_timeout", "3600001ms", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "61m", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "2h", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "0", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1.5s", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "-1s", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "+1s", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1 s", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "s", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1S", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1d", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1sec", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "1ms5", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "0x10", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "99999999999999999999", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "4294967295h", F(connect_timeout_ms), REFUSED },
	{ "connect_timeout", "18446744073709551617ms", F(connect_timeout_ms), REFUSED },
	{ "stop_timeout", "0", F(stop_timeout_ms), 0 },
	{ "stop_timeout", "0ms", F(stop_timeout_ms), 0 },
	{ "stop_timeout", "1h", F(stop_timeout_ms), 3600000 },
	{ "stop_timeout", "3601s", F(stop_timeout_ms), REFUSED },
	{ "upgrade_drain", "0", F(upgrade_drain_ms), 0 },
	{ "upgrade_drain", "24h", F(upgrade_drain_ms), 86400000 },
	{ "upgrade_drain", "86401s", F(upgrade_drain_ms), REFUSED },
	{ "backend_down_time", "0", F(backend_down_ms), 0 },
	{ "backend_down_time", "61m", F(backend_down_ms), REFUSED },
	{ "ticket_key_lifetime", "168h", F(ticket_key_lifetime_ms), 604800000 },
	{ "ticket_key_lifetime", "169h", F(ticket_key_lifetime_ms), REFUSED },
	{ "ticket_key_lifetime", "999ms", F(ticket_key_lifetime_ms), REFUSED },
	{ "ticket_key_lifetime", "7d", F(ticket_key_lifetime_ms), REFUSED },
	{ "response_timeout", "24h", F(response_timeout_ms), 86400000 },
	{ "response_timeout", "1441m", F(response_timeout_ms), REFUSED },
	{ "response_timeout", "99ms", F(response_timeout_ms), REFUSED },
	{ "upgrade_timeout", "10080m", F(upgrade_timeout_ms), 604800000 },
	{ "upgrade_timeout", "10081m", F(upgrade_timeout_ms), REFUSED },
	{ "acme_backoff_max", "1s", F(acme_backoff_max_ms), 1000 },
	{ "acme_backoff_max", "999ms", F(acme_backoff_max_ms), REFUSED },
	/* sizes: bytes, or k m g (powers of 1024, either case) */
	{ "shared_memory_size", "1m", F(shared_memory_size), 1048576 },
	{ "shared_memory_size", "1023k", F(shared_memory_size), REFUSED },
	{ "shared_memory_size", "1g", F(shared_memory_size), 1073741824 },
	{ "shared_memory_size", "1025m", F(shared_memory_size), REFUSED },
	{ "cache_max_size", "1m", F(cache_max_size), 1048576 },
	{ "cache_max_size", "1023k", F(cache_max_size), REFUSED },
	{ "cache_max_size", "64g", F(cache_max_size), 68719476736 },
	{ "cache_max_size", "65g", F(cache_max_size), REFUSED },
	/* rates: nginx's r/s and r/m, into requests a minute; "off" is 0 */
	{ "rate_limit", "10r/s", F(rate_rpm), 600 },
	{ "rate_limit", "7r/m", F(rate_rpm), 7 },
	{ "rate_limit", "off", F(rate_rpm), 0 },
	{ "rate_limit", "1000000r/s", F(rate_rpm), 60000000 },
	{ "rate_limit", "1000001r/s", F(rate_rpm), REFUSED },
	{ "rate_limit", "0r/s", F(rate_rpm), REFUSED },
	{ "rate_limit", "10r/h", F(rate_rpm), REFUSED },
	{ "rate_limit", "10", F(rate_rpm), REFUSED },
	{ "rate_limit", "r/s", F(rate_rpm), REFUSED },
	{ "rate_burst", "1000000", F(rate_burst), 1000000 },
	{ "rate_burst", "1000001", F(rate_burst), REFUSED },
	{ "max_connections_per_ip", "65534", F(max_conns_per_ip), 65534 },
	{ "max_connections_per_ip", "65535", F(max_conns_per_ip), REFUSED },
	{ "resolve_min_ttl", "1s", F(resolve_min_ttl_ms), 1000 },
	{ "resolve_min_ttl", "999ms", F(resolve_min_ttl_ms), REFUSED },
	{ "resolve_max_ttl", "1h", F(resolve_max_ttl_ms), 3600000 },
	{ "resolve_max_ttl", "3601s", F(resolve_max_ttl_ms), REFUSED },
	{ "max_body", "0", F(max_body), 0 },
	{ "max_body", "1", F(max_body), 1 },
	{ "max_body", "1024", F(max_body), 1024 },
	{ "max_body", "10k", F(max_body), 10240 },
	{ "max_body", "10K", F(max_body), 10240 },
	{ "max_body", "5m", F(max_body), 5u << 20 },
	{ "max_body", "5M", F(max_body), 5u << 20 },
	{ "max_body", "1g", F(max_body), 1u << 30 },
	{ "max_body", "2G", F(max_body), 2ull << 30 },
	{ "max_body", "17179869183g", F(max_body), 17179869183ull << 30 },
	{ "max_body", "17179869184g", F(max_body), REFUSED },
	{ "max_body", "1kb", F(max_body), REFUSED },
	{ "max_body", "1t", F(max_body), REFUSED },
	{ "max_body", "k", F(max_body), REFUSED },
	{ "max_body", "-1", F(max_body), REFUSED },
	{ "max_body", "+1", F(max_body), REFUSED },
	{ "max_body", "1.5m", F(max_body), REFUSED },
	{ "max_body", "1 k", F(max_body), REFUSED },
	{ "max_body", "0x10", F(max_body), REFUSED },
	/* counts */
	{ "workers", "1", F(workers), 1 },
	{ "workers", "256", F(workers), 256 },
	{ "workers", "0", F(workers), REFUSED },
	{ "workers", "257", F(workers), REFUSED },
	{ "workers", "-1", F(workers), REFUSED },
	{ "workers", "+4", F(workers), REFUSED },
	{ "workers", "4x", F(workers), REFUSED },
	{ "workers", "4k", F(workers), REFUSED },
	{ "workers", "0x10", F(workers), REFUSED },
	{ "workers", "18446744073709551617", F(workers), REFUSED },
	{ "max_connections", "1000000", F(max_connections), 1000000 },
	{ "max_connections", "1000001", F(max_connections), REFUSED },
	{ "access_log_sample", "1000000", F(access_log_sample), 1000000 },
	{ "access_log_sample", "0", F(access_log_sample), REFUSED },
	/* a percentage, with or without '%' */
	{ "acme_renew_before", "33%", F(acme_renew_before), 33 },
	{ "acme_renew_before", "33", F(acme_renew_before), 33 },
	{ "acme_renew_before", "1%", F(acme_renew_before), 1 },
	{ "acme_renew_before", "100", F(acme_renew_before), 100 },
	{ "acme_renew_before", "100%", F(acme_renew_before), 100 },
	{ "acme_renew_before", "0", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "0%", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "101%", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "%", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "33%%", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "%33", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "33 %", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "3a%", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "-5%", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "50%x", F(acme_renew_before), REFUSED },
	{ "acme_renew_before", "12345678901234567890123456%", F(acme_renew_before), REFUSED },
};
#undef F

/* rc from loading vc's value (what: its spelling): refused saying want, or the value set. */
static void
value_loaded(const struct value_case *vc, int rc, const char *what, const char *want)
{
	if (vc->want == REFUSED) {
		ck_assert_msg(rc == -1, "%s %s was accepted", what, vc->value);
		ck_assert_str_eq(err, want);
	} else {
		ck_assert_msg(rc == 0, "%s %s: %s", what, vc->value, err);
		ck_assert_uint_eq(*(const uint64_t *)(const void *)((const char *)&cfg + vc->off), vc->want);
	}
}

START_TEST(value_table)
{
	const struct value_case *vc = &value_cases[_i];
	char text[256], want[512], opt[64];
	size_t k;

	/* In the file, on line 2. */
	snprintf(text, sizeof(text), "# case %d\n%s %s\n", _i, vc->name, vc->value);
	write_conf(text);
	snprintf(want, sizeof(want), "%s:2: %s: invalid value '%s'", path, vc->name, vc->value);
	value_loaded(vc, LOAD_FILE(), vc->name, want);
	/* On the command line, as --name value and --name=value. */
	write_conf("");
	snprintf(opt, sizeof(opt), "--%s", vc->name);
	for (k = 2; opt[k] != '\0'; k++)
		if (opt[k] == '_')
			opt[k] = '-';
	for (k = 0; k < 2; k++) {
		char joined[128];
		int rc;

		snprintf(joined, sizeof(joined), "%s=%s", opt, vc->value);
		rc = k == 0 ? LOAD(opt, vc->value, NULL) : LOAD(joined, NULL);
		snprintf(want, sizeof(want), "%s: invalid value '%s'", vc->name, vc->value);
		value_loaded(vc, rc, opt, want);
	}
}
END_TEST

START_TEST(booleans_and_words)
{
	static const char *const bad_bool[] = { "yes", "no", "1", "0", "On", "OFF", "true", "onn", "o" };
	static const char *const targets[] = { "auto", "stderr", "journal" };
	static const char *const bad_target[] = { "syslog", "Journal", "file", "auto2" };
	char text[128];
	size_t i;

	load_ok("access_log off\nacme on\nrate_nodelay on\nrate_limit_dry_run on\n");
	ck_assert_int_eq(cfg.access_log, 0);
	ck_assert_int_eq(cfg.acme, 1);
	ck_assert_int_eq(cfg.rate_nodelay, 1);
	ck_assert_int_eq(cfg.rate_dry_run, 1);
	load_ok("access_log on\nacme off\n");
	ck_assert_int_eq(cfg.access_log, 1);
	ck_assert_int_eq(cfg.acme, 0);
	for (i = 0; i < sizeof(bad_bool) / sizeof(bad_bool[0]); i++) {
		bad_value("acme", bad_bool[i]);
	}
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		snprintf(text, sizeof(text), "log_target %s\n", targets[i]);
		load_ok(text);
		ck_assert_str_eq(cfg.log_target, targets[i]);
	}
	for (i = 0; i < sizeof(bad_target) / sizeof(bad_target[0]); i++) {
		bad_value("log_target", bad_target[i]);
	}
	/* A string keeps its inner spaces; "" is refused on the command line. */
	load_ok("acme_directory  production\nstate_dir /srv/my state\n");
	ck_assert_str_eq(cfg.acme_directory, "production");
	ck_assert_str_eq(cfg.state_dir, "/srv/my state");
	write_conf("");
	ck_assert_int_eq(LOAD("--user=", NULL), -1);
	ck_assert_str_eq(err, "user: invalid value ''");
	ck_assert_int_eq(LOAD("--state-dir", "", NULL), -1);
	ck_assert_str_eq(err, "state_dir: invalid value ''");
}
END_TEST

START_TEST(address_lists)
{
	static const char *const bad_addr[] = {
		"localhost:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[::1]",
		"::1:80", "[::1]80", ":80", "1.2.3.4:http", "256.1.1.1:80",
	};
	static const char *const good_cidr[] = {
		"10.0.0.0/8", "192.0.2.1", "192.0.2.1/32", "0.0.0.0/0", "2001:db8::/32", "::1", "::/0",
		"fd00::/128",
	};
	static const char *const bad_cidr[] = {
		"10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0/8", "example.com", "10.0.0.0/-1",
		"10.0.0.0/8/8", "[::1]", "/8", "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0:80",
	};
	char text[256], want[256];
	size_t i;

	/* Every line adds one, in order. */
	load_ok("listen_http 127.0.0.1:80\nlisten_http [::]:80\nlisten_http 192.0.2.1:8080\n"
	    "listen_https [2001:db8::1]:443\nlisten_https 127.0.0.1:443\n");
	ck_assert_uint_eq(cfg.listen_http.n, 3);
	ck_assert_str_eq(cfg.listen_http.v[0], "127.0.0.1:80");
	ck_assert_str_eq(cfg.listen_http.v[1], "[::]:80");
	ck_assert_str_eq(cfg.listen_http.v[2], "192.0.2.1:8080");
	ck_assert_uint_eq(cfg.listen_https.n, 2);
	ck_assert_str_eq(cfg.listen_https.v[0], "[2001:db8::1]:443");
	ck_assert_str_eq(cfg.listen_https.v[1], "127.0.0.1:443");
	for (i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
		snprintf(text, sizeof(text), "listen_http 127.0.0.1:80\nlisten_https %s\n", bad_addr[i]);
		snprintf(want, sizeof(want), "listen_https: invalid value '%s'", bad_addr[i]);
		load_fails(text, 2, want);
		bad_value("listen_http", bad_addr[i]);
	}
	/* none: no plain HTTP listener (HTTPS only), which needs an HTTPS one; an address after it counts. */
	load_ok("listen_http 127.0.0.1:80\nlisten_http none\nlisten_https 127.0.0.1:443\n");
	ck_assert_uint_eq(cfg.listen_http.n, 0);
	ck_assert_int_eq(cfg.no_listen_http, 1);
	load_ok("listen_http none\nlisten_http 127.0.0.1:81\n");
	ck_assert_uint_eq(cfg.listen_http.n, 1);
	write_conf("listen_http none\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "listen_http none needs a listen_https address"));
	for (i = 0; i < sizeof(good_cidr) / sizeof(good_cidr[0]); i++) {
		snprintf(text, sizeof(text), "trusted_proxies 127.0.0.1\ntrusted_proxies %s\n", good_cidr[i]);
		load_ok(text);
		ck_assert_uint_eq(cfg.trusted_proxies.n, 2);
		ck_assert_str_eq(cfg.trusted_proxies.v[1], good_cidr[i]);
	}
	for (i = 0; i < sizeof(bad_cidr) / sizeof(bad_cidr[0]); i++) {
		bad_value("trusted_proxies", bad_cidr[i]);
	}
}
END_TEST

START_TEST(list_limit)
{
	char text[2048], want[512];
	const char *args[2 * CONFIG_LIST_MAX + 4];
	char vals[CONFIG_LIST_MAX + 1][32];
	size_t len = 0, i, n = 0;

	for (i = 0; i < CONFIG_LIST_MAX; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "listen_http 127.0.0.1:%zu\n", 8000 + i);
	load_ok(text);
	ck_assert_uint_eq(cfg.listen_http.n, CONFIG_LIST_MAX);
	ck_assert_str_eq(cfg.listen_http.v[CONFIG_LIST_MAX - 1], "127.0.0.1:8015");
	/* One more is refused, naming its line. */
	snprintf(text + len, sizeof(text) - len, "listen_http 127.0.0.1:9000\n");
	snprintf(want, sizeof(want), "listen_http: at most %d entries", CONFIG_LIST_MAX);
	load_fails(text, CONFIG_LIST_MAX + 1, want);
	/* The command line's entries replace the file's: 16 more fit. */
	text[len] = '\0';
	write_conf(text);
	for (i = 0; i < CONFIG_LIST_MAX; i++) {
		snprintf(vals[i], sizeof(vals[i]), "10.%zu.0.0/16", i);
		args[n++] = "--trusted-proxies";
		args[n++] = vals[i];
	}
	args[n] = NULL;
	ck_assert_msg(load_args(1, args) == 0, "refused: %s", err);
	ck_assert_uint_eq(cfg.trusted_proxies.n, CONFIG_LIST_MAX);
	ck_assert_uint_eq(cfg.listen_http.n, CONFIG_LIST_MAX);
	snprintf(vals[CONFIG_LIST_MAX], sizeof(vals[0]), "192.0.2.0/24");
	args[n++] = "--trusted-proxies";
	args[n++] = vals[CONFIG_LIST_MAX];
	args[n] = NULL;
	ck_assert_int_eq(load_args(1, args), -1);
	snprintf(want, sizeof(want), "trusted_proxies: at most %d entries", CONFIG_LIST_MAX);
	ck_assert_str_eq(err, want);
	/* A full file list is replaced by the command line's, not added to. */
	ck_assert_int_eq(LOAD("--listen-http", "127.0.0.1:9000", NULL), 0);
	ck_assert_uint_eq(cfg.listen_http.n, 1);
	ck_assert_str_eq(cfg.listen_http.v[0], "127.0.0.1:9000");
}
END_TEST

START_TEST(later_line_wins)
{
	load_ok("workers 2\nuser alice\nconnect_timeout 1s\nworkers 3\nuser bob\nacme on\nacme off\n"
	    "connect_timeout 2s\n");
	ck_assert_uint_eq(cfg.workers, 3);
	ck_assert_str_eq(cfg.user, "bob");
	ck_assert_uint_eq(cfg.connect_timeout_ms, 2000);
	ck_assert_int_eq(cfg.acme, 0);
}
END_TEST

START_TEST(syntax)
{
	load_ok("# a comment\n"
	    "\n"
	    "   \t \n"
	    "\t# an indented comment\n"
	    "  workers\t\t7   \n"
	    "user    some user   # a comment after the value\n"
	    "state_dir /srv/x#y\n"
	    "admin_group grp\r\n"
	    "log_target journal\t\n"
	    "access_log off#no space before the comment\n"
	    "\tmax_body\t 1k \t\n"
	    "runtime_dir /run/last line");
	ck_assert_uint_eq(cfg.workers, 7);
	ck_assert_str_eq(cfg.user, "some user");
	ck_assert_str_eq(cfg.state_dir, "/srv/x");
	ck_assert_str_eq(cfg.admin_group, "grp");
	ck_assert_str_eq(cfg.log_target, "journal");
	ck_assert_int_eq(cfg.access_log, 0);
	ck_assert_uint_eq(cfg.max_body, 1024);
	ck_assert_str_eq(cfg.runtime_dir, "/run/last line");
	/* A file with CRLF line ends throughout. */
	load_ok("# dos\r\nworkers 5\r\n\r\nuser carol\r\n");
	ck_assert_uint_eq(cfg.workers, 5);
	ck_assert_str_eq(cfg.user, "carol");
	/* "name=value" is not the file's syntax. */
	load_fails("workers=4\n", 1, "unknown setting 'workers=4'");
	/* The command-line spelling is not the file's either. */
	load_fails("listen-http 0.0.0.0:80\n", 1, "unknown setting 'listen-http'");
	load_fails("Workers 4\n", 1, "unknown setting 'Workers'");
	load_fails("config /etc/other.conf\n", 1, "unknown setting 'config'");
}
END_TEST

START_TEST(line_numbers)
{
	/* Comments, blank lines and CRLF count; the first bad line is the one named. */
	load_fails("# one\n\nworkers 2\r\n   \n# five\nworkers lots\nwrokers 2\nuser\n", 6,
	    "workers: invalid value 'lots'");
	load_fails("workers 2\nworkers 3\nworkers 4\nwrokers 2\nuser\n", 4, "unknown setting 'wrokers'");
}
END_TEST

START_TEST(missing_value)
{
	load_fails("workers\n", 1, "workers needs a value");
	load_fails("workers   \t\n", 1, "workers needs a value");
	load_fails("workers # four\n", 1, "workers needs a value");
	load_fails("# x\n  listen_http#\n", 2, "listen_http needs a value");
	load_fails("acme_email\n", 1, "acme_email needs a value");
	load_fails("user", 1, "user needs a value");
	/* An unknown name is reported as such, value or not. */
	load_fails("wrokers\n", 1, "unknown setting 'wrokers'");
	load_fails("wrokers 4\n", 1, "unknown setting 'wrokers'");
}
END_TEST

/* Writes "state_dir /" plus fill to a line of len characters (without its newline). */
static void
long_line(char *buf, size_t len, int newline)
{
	size_t n = strlen("state_dir /");

	ck_assert_uint_gt(len, n);
	memcpy(buf, "state_dir /", n);
	memset(buf + n, 'a', len - n);
	buf[len] = '\0';
	if (newline)
		strcat(buf, "\n");
}

START_TEST(overlong_line)
{
	char *buf = malloc(8192), *text = malloc(8300);

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(text);
	/* Lines of up to 1022 characters are read, with or without a newline. */
	long_line(buf, 1022, 1);
	load_ok(buf);
	ck_assert_uint_eq(strlen(cfg.state_dir), 1022 - strlen("state_dir "));
	long_line(buf, 1022, 0);
	load_ok(buf);
	ck_assert_uint_eq(strlen(cfg.state_dir), 1022 - strlen("state_dir "));
	/* Longer ones are refused, not cut. */
	long_line(buf, 1023, 1);
	load_fails(buf, 1, "line too long");
	long_line(buf, 1023, 0);
	load_fails(buf, 1, "line too long");
	long_line(buf, 5000, 1);
	snprintf(text, 8300, "workers 2\n# two\n%sworkers 3\n", buf);
	load_fails(text, 3, "line too long");
	/* Comments too: the line is refused before it is read. */
	memset(buf, '#', 3000);
	strcpy(buf + 3000, "\nworkers 2\n");
	load_fails(buf, 1, "line too long");
	free(buf);
	free(text);
}
END_TEST

START_TEST(unreadable_file)
{
	char want[512], missing[256];

	/* -c names a file that must exist. */
	snprintf(missing, sizeof(missing), "%s/nope.conf", dir);
	ck_assert_int_eq(load_args(0, (const char *const[]){ "-c", missing, NULL }), -1);
	snprintf(want, sizeof(want), "%s: %s", missing, strerror(ENOENT));
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(load_args(0, (const char *const[]){ "--config", missing, NULL }), -1);
	ck_assert_str_eq(err, want);
	/* A folder is no configuration file, even though fopen() opens it. */
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(load_args(0, (const char *const[]){ "-c", sub, NULL }), -1);
	snprintf(want, sizeof(want), "%s: %s", sub, strerror(EISDIR));
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(load_args(0, (const char *const[]){ "-t", "-c", sub, NULL }), -1);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(default_file_optional)
{
	/* Without -c a missing default file means defaults (not here if one is installed). */
	if (access("/etc/haloyd/haloyd.conf", F_OK) == 0 || errno != ENOENT)
		return;
	ck_assert_msg(load_args(0, (const char *const[]){ "--workers", "2", NULL }) == 0, "%s", err);
	ck_assert_str_eq(cfg.config_file, "/etc/haloyd/haloyd.conf");
	ck_assert_int_eq(cfg.config_explicit, 0);
	ck_assert_uint_eq(cfg.workers, 2);
	assert_common_defaults();
}
END_TEST

/* --- the command line */

START_TEST(renamed_setting)
{
	/* tunnel_timeout is upgrade_timeout now: still read, and noted for the log. */
	load_ok("tunnel_timeout 90s\n");
	ck_assert_uint_eq(cfg.upgrade_timeout_ms, 90000);
	ck_assert_ptr_nonnull(strstr(cfg.renamed, "'tunnel_timeout' is now called 'upgrade_timeout'"));
	load_ok("upgrade_timeout 2m\n");
	ck_assert_uint_eq(cfg.upgrade_timeout_ms, 120000);
	ck_assert_str_eq(cfg.renamed, "");
	write_conf("");
	ck_assert_msg(LOAD("--tunnel-timeout", "3s", NULL) == 0, "%s", err);
	ck_assert_uint_eq(cfg.upgrade_timeout_ms, 3000);
	ck_assert_str_ne(cfg.renamed, "");
	/* The old name keeps the new one's range. */
	load_fails("tunnel_timeout 999ms\n", 1, "upgrade_timeout: invalid value '999ms'");
}
END_TEST

START_TEST(command_line_wins)
{
	write_conf("workers 2\nuser alice\nlisten_http 127.0.0.1:80\nlisten_http 127.0.0.1:81\n"
	    "trusted_proxies 10.0.0.0/8\nmax_body 1m\naccess_log off\nconnect_timeout 1s\n"
	    "acme_renew_before 10%\n");
	ck_assert_msg(LOAD("--workers", "5", "--user=bob", "--listen-http", "[::1]:8080",
	    "--max-body=2g", "--access-log", "on", "--connect-timeout", "250ms",
	    "--acme-renew-before", "75%", NULL) == 0, "%s", err);
	ck_assert_uint_eq(cfg.workers, 5);
	ck_assert_str_eq(cfg.user, "bob");
	/* The command line's list replaces the file's... */
	ck_assert_uint_eq(cfg.listen_http.n, 1);
	ck_assert_str_eq(cfg.listen_http.v[0], "[::1]:8080");
	/* ...and a list it does not name stays as the file has it. */
	ck_assert_uint_eq(cfg.trusted_proxies.n, 1);
	ck_assert_str_eq(cfg.trusted_proxies.v[0], "10.0.0.0/8");
	ck_assert_uint_eq(cfg.max_body, 2ull << 30);
	ck_assert_int_eq(cfg.access_log, 1);
	ck_assert_uint_eq(cfg.connect_timeout_ms, 250);
	ck_assert_uint_eq(cfg.acme_renew_before, 75);
	/* Several entries on the command line add up, in order; the later scalar wins. */
	ck_assert_msg(LOAD("--listen-http", "127.0.0.2:80", "--workers", "6", "--listen-http=127.0.0.3:80",
	    "--trusted-proxies", "192.0.2.0/24", "--workers", "7", "--trusted-proxies=::1", NULL) == 0,
	    "%s", err);
	ck_assert_uint_eq(cfg.listen_http.n, 2);
	ck_assert_str_eq(cfg.listen_http.v[0], "127.0.0.2:80");
	ck_assert_str_eq(cfg.listen_http.v[1], "127.0.0.3:80");
	ck_assert_uint_eq(cfg.trusted_proxies.n, 2);
	ck_assert_str_eq(cfg.trusted_proxies.v[0], "192.0.2.0/24");
	ck_assert_str_eq(cfg.trusted_proxies.v[1], "::1");
	ck_assert_uint_eq(cfg.workers, 7);
	/* Settings may come before -c. */
	ck_assert_msg(load_args(0, (const char *const[]){ "--user", "dave", "-c", path, NULL }) == 0,
	    "%s", err);
	ck_assert_str_eq(cfg.user, "dave");
	ck_assert_uint_eq(cfg.workers, 2);
	/* A value that looks like a flag is still the value. */
	ck_assert_msg(LOAD("--user", "-t", NULL) == 0, "%s", err);
	ck_assert_str_eq(cfg.user, "-t");
	ck_assert_int_eq(cfg.test_only, 0);
	/* A good command line does not rescue a bad file. */
	write_conf("workers 0\n");
	ck_assert_int_eq(LOAD("--workers", "4", NULL), -1);
	ck_assert_int_eq(strncmp(err, path, strlen(path)), 0);
}
END_TEST

START_TEST(flags)
{
	char other[256];

	write_conf("workers 2\n");
	ck_assert_int_eq(LOAD("-t", NULL), 0);
	ck_assert_int_eq(cfg.test_only, 1);
	ck_assert_int_eq(cfg.verbose, 0);
	ck_assert_uint_eq(cfg.workers, 2);
	ck_assert_int_eq(LOAD("-v", NULL), 0);
	ck_assert_int_eq(cfg.verbose, 1);
	ck_assert_int_eq(cfg.test_only, 0);
	ck_assert_int_eq(LOAD("-vv", "-t", "-v", NULL), 0);
	ck_assert_int_eq(cfg.verbose, 3);
	ck_assert_int_eq(cfg.test_only, 1);
	/* --takeover is a flag: it takes no value, the next word is read as usual. */
	ck_assert_msg(LOAD("--takeover", "--workers", "3", NULL) == 0, "%s", err);
	ck_assert_int_eq(cfg.takeover, 1);
	ck_assert_uint_eq(cfg.workers, 3);
	/* --config, and the last -c wins. */
	snprintf(other, sizeof(other), "%s/nope.conf", dir);
	ck_assert_msg(load_args(0, (const char *const[]){ "-c", other, "--config", path, NULL }) == 0,
	    "%s", err);
	ck_assert_str_eq(cfg.config_file, path);
	ck_assert_int_eq(cfg.config_explicit, 1);
	ck_assert_uint_eq(cfg.workers, 2);
	/* -t checks: a bad file is refused just the same. */
	write_conf("\nworkers many\n");
	ck_assert_int_eq(LOAD("-t", NULL), -1);
	snprintf(other, sizeof(other), "%s:2: workers: invalid value 'many'", path);
	ck_assert_str_eq(err, other);
}
END_TEST

START_TEST(command_line_refused)
{
	write_conf("");
	ck_assert_int_eq(LOAD("--wrokers", "4", NULL), -1);
	ck_assert_str_eq(err, "unknown option '--wrokers' (see haloyd --help)");
	ck_assert_int_eq(LOAD("--wrokers=4", NULL), -1);
	ck_assert_str_eq(err, "unknown option '--wrokers' (see haloyd --help)");
	ck_assert_int_eq(LOAD("--listen_http", "127.0.0.1:80", NULL), -1);
	ck_assert_str_eq(err, "unknown option '--listen_http' (see haloyd --help)");
	ck_assert_int_eq(LOAD("--", NULL), -1);
	ck_assert_str_eq(err, "unknown option '--' (see haloyd --help)");
	ck_assert_int_eq(LOAD("--workers", NULL), -1);
	ck_assert_str_eq(err, "--workers needs a value");
	ck_assert_int_eq(LOAD("--workers", "0", NULL), -1);
	ck_assert_str_eq(err, "workers: invalid value '0'");
	ck_assert_int_eq(LOAD("--workers=", NULL), -1);
	ck_assert_str_eq(err, "workers: invalid value ''");
	ck_assert_int_eq(LOAD("extra", NULL), -1);
	ck_assert_str_eq(err, "unexpected argument 'extra' (see haloyd --help)");
	ck_assert_int_eq(LOAD("-x", NULL), -1);
	ck_assert_str_eq(err, "unexpected argument '-x' (see haloyd --help)");
	ck_assert_int_eq(LOAD("-vx", NULL), -1);
	ck_assert_str_eq(err, "unexpected argument '-vx' (see haloyd --help)");
	ck_assert_int_eq(LOAD("-", NULL), -1);
	ck_assert_str_eq(err, "unexpected argument '-' (see haloyd --help)");
	ck_assert_int_eq(LOAD("-c", NULL), -1);
	ck_assert_str_eq(err, "-c needs a file");
	ck_assert_int_eq(LOAD("--config", NULL), -1);
	ck_assert_str_eq(err, "--config needs a file");
	ck_assert_int_eq(LOAD("--listen-http", "localhost:80", NULL), -1);
	ck_assert_str_eq(err, "listen_http: invalid value 'localhost:80'");
}
END_TEST

/* Runs conf_load with stdout going to dir/out; returns its result, fills out. */
static int
load_capture(const char *const *args, char *out, size_t outlen)
{
	char p[256];
	int fd, saved, rc;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/out", dir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
	rc = load_args(0, args);
	fflush(stdout);
	ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
	close(saved);
	n = pread(fd, out, outlen - 1, 0);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	close(fd);
	return rc;
}

START_TEST(help_and_version)
{
	char out[8192], dashed[64], missing[256];
	size_t i, k;

	/* --help wins over everything, and reads no file. */
	snprintf(missing, sizeof(missing), "%s/nope.conf", dir);
	ck_assert_int_eq(load_capture((const char *const[]){ "-c", missing, "--workers", "0", "--help",
	    NULL }, out, sizeof(out)), 1);
	ck_assert_ptr_eq(strstr(out, "usage: haloyd "), out);
	/* Every setting is listed under its option name. */
	for (i = 0; i < NSETTINGS; i++) {
		snprintf(dashed, sizeof(dashed), "--%s ", settings[i]);
		for (k = 2; dashed[k] != '\0'; k++)
			if (dashed[k] == '_')
				dashed[k] = '-';
		ck_assert_msg(strstr(out, dashed) != NULL, "%s is not in --help", dashed);
	}
	ck_assert_int_eq(load_capture((const char *const[]){ "-h", NULL }, out, sizeof(out)), 1);
	ck_assert_ptr_eq(strstr(out, "usage: haloyd "), out);
	ck_assert_int_eq(load_capture((const char *const[]){ "--version", NULL }, out, sizeof(out)), 1);
	ck_assert_str_eq(out, "haloyd " PACKAGE_VERSION "\n");
}
END_TEST

/* A reload loads into a fresh struct: a broken file leaves the running one as it was. */
START_TEST(reload_keeps_old)
{
	struct conf fresh;
	char *argv[] = { strdup("haloyd"), strdup("-c"), strdup(path), strdup("--user"), strdup("eve"), NULL };
	size_t i;

	for (i = 0; i < 5; i++)
		ck_assert_ptr_nonnull(argv[i]);
	write_conf("workers 3\nlisten_http 127.0.0.1:80\n");
	ck_assert_int_eq(conf_load(&cfg, 5, argv, err, sizeof(err)), 0);
	write_conf("workers 4\nlisten_http 127.0.0.1:81\n");
	ck_assert_int_eq(conf_load(&fresh, 5, argv, err, sizeof(err)), 0);
	ck_assert_uint_eq(fresh.workers, 4);
	ck_assert_str_eq(fresh.listen_http.v[0], "127.0.0.1:81");
	ck_assert_str_eq(fresh.user, "eve");
	conf_free(&fresh);
	write_conf("workers 4\nlisten_http nowhere\n");
	ck_assert_int_eq(conf_load(&fresh, 5, argv, err, sizeof(err)), -1);
	conf_free(&fresh);
	ck_assert_uint_eq(cfg.workers, 3);
	ck_assert_uint_eq(cfg.listen_http.n, 1);
	ck_assert_str_eq(cfg.listen_http.v[0], "127.0.0.1:80");
	ck_assert_str_eq(cfg.user, "eve");
	/* conf_free leaves a struct that can be freed again. */
	conf_free(&fresh);
	for (i = 0; i < 5; i++)
		free(argv[i]);
}
END_TEST

START_TEST(error_truncated)
{
	char small[16], *argv[] = { strdup("haloyd"), strdup("-c"), strdup(path), NULL };
	char full[512];
	size_t i;

	for (i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(argv[i]);
	write_conf("wrokers 4\n");
	snprintf(full, sizeof(full), "%s:1: unknown setting 'wrokers'", path);
	memset(small, 'X', sizeof(small));
	ck_assert_int_eq(conf_load(&cfg, 3, argv, small, sizeof(small)), -1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(strncmp(small, full, sizeof(small) - 1), 0);
	conf_free(&cfg);
	/* The same for a value error, which is prefixed after the fact. */
	write_conf("workers none\n");
	memset(small, 'X', sizeof(small));
	ck_assert_int_eq(conf_load(&cfg, 3, argv, small, sizeof(small)), -1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(strncmp(small, path, sizeof(small) - 1), 0);
	for (i = 0; i < 3; i++)
		free(argv[i]);
}
END_TEST

/* --- ranges shared with per-route overrides */

static const struct range_case {
	const char *name;
	int duration;
	uint64_t min, max;
} range_cases[] = {
	{ "ticket_key_lifetime", 1, 1000, 604800000 },
	{ "stop_timeout", 1, 0, 3600000 },
	{ "header_timeout", 1, 100, 3600000 },
	{ "keepalive_timeout", 1, 100, 3600000 },
	{ "connect_timeout", 1, 10, 3600000 },
	{ "response_timeout", 1, 100, 86400000 },
	{ "idle_timeout", 1, 100, 86400000 },
	{ "upgrade_timeout", 1, 1000, 604800000 },
	{ "body_timeout", 1, 100, 86400000 },
	{ "backend_down_time", 1, 0, 3600000 },
	{ "acme_backoff_max", 1, 1000, 604800000 },
	{ "acme_on_demand_backoff", 1, 1000, 604800000 },
	{ "acme_on_demand_wait", 1, 0, 30000 },
	{ "acme_on_demand_rate", 0, 1, 10000 },
	{ "workers", 0, 1, 256 },
	{ "max_connections", 0, 1, 1000000 },
	{ "access_log_sample", 0, 1, 1000000 },
};

/*
 * conf_range says what haloyd.conf(5) says (backend_down_time's upper
 * bound, 1h, is not in the page), and the file takes exactly that range.
 */
START_TEST(range_table)
{
	const struct range_case *rc = &range_cases[_i];
	const char *unit = rc->duration ? "ms" : "";
	char text[128], v[64];
	uint64_t min = 7, max = 7;

	ck_assert_int_eq(conf_range(rc->name, &min, &max), 0);
	ck_assert_uint_eq(min, rc->min);
	ck_assert_uint_eq(max, rc->max);
	snprintf(text, sizeof(text), "%s %llu%s\n", rc->name, (unsigned long long)min, unit);
	load_ok(text);
	snprintf(text, sizeof(text), "%s %llu%s\n", rc->name, (unsigned long long)max, unit);
	load_ok(text);
	snprintf(v, sizeof(v), "%llu%s", (unsigned long long)max + 1, unit);
	bad_value(rc->name, v);
	if (min > 0) {
		snprintf(v, sizeof(v), "%llu%s", (unsigned long long)min - 1, unit);
		bad_value(rc->name, v);
	}
}
END_TEST

START_TEST(range_other_names)
{
	static const char *const none[] = {
		"access_log", "acme", "listen_http", "trusted_proxies", "user", "log_target", "nope",
		"connect-timeout", "Connect_timeout", "connect_timeout ", "", "config",
	};
	uint64_t min = 7, max = 7;
	size_t i;

	ck_assert_int_eq(conf_range("max_body", &min, &max), 0);
	ck_assert_uint_eq(min, 0);
	ck_assert_uint_eq(max, UINT64_MAX);
	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		min = max = 7;
		ck_assert_msg(conf_range(none[i], &min, &max) == -1, "'%s' has a range", none[i]);
		ck_assert_uint_eq(min, 7);
		ck_assert_uint_eq(max, 7);
	}
}
END_TEST

/* DNS-01's server and key go together; the zone is optional; the default is none. */
START_TEST(dns01_settings)
{
	load_ok("acme on\n");
	ck_assert_str_eq(cfg.dns_update_server, "");
	ck_assert_str_eq(cfg.dns_tsig_key, "");
	ck_assert_str_eq(cfg.dns_zone, "");
	ck_assert_uint_eq(cfg.dns_ns_port, 53);
	load_ok("dns_update_server 127.0.0.1:5353\ndns_tsig_key /k\ndns_ns_port 5353\n");
	ck_assert_str_eq(cfg.dns_update_server, "127.0.0.1:5353");
	ck_assert_uint_eq(cfg.dns_ns_port, 5353);
	load_ok("dns_ns_port 0\n");
	ck_assert_uint_eq(cfg.dns_ns_port, 0);
	ck_assert_uint_eq(cfg.dns_propagation_timeout_ms, 120000);
	load_ok("dns_propagation_timeout 30s\n");
	ck_assert_uint_eq(cfg.dns_propagation_timeout_ms, 30000);
	write_conf("dns_propagation_timeout 500ms\n");	/* under 1s */
	ck_assert_int_eq(LOAD_FILE(), -1);
	write_conf("dns_propagation_timeout 2h\n");	/* over 1h */
	ck_assert_int_eq(LOAD_FILE(), -1);
	write_conf("dns_ns_port 65536\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	write_conf("dns_update_server 127.0.0.1\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_str_eq(err, "dns_update_server and dns_tsig_key go together (DNS-01)");
	write_conf("dns_tsig_key /k\ndns_zone example.com\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
}
END_TEST

/* "store sqlite" is the default (the file in state_dir); anything but postgresql:// is refused. */
START_TEST(store_setting)
{
	load_ok("store sqlite\n");
	ck_assert_ptr_null(cfg.store);
	load_ok("store postgresql:///haloyd?host=/run/postgresql\n");
	ck_assert_str_eq(cfg.store, "postgresql:///haloyd?host=/run/postgresql");
	write_conf("store mysql://db\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "expected sqlite"));
}
END_TEST

/*
 * acme_store: required with a PostgreSQL store and acme on (the master does
 * not read the account key), refused with SQLite, no password in it, and
 * its passfile acme_user's alone.
 */
START_TEST(acme_store_setting)
{
	char text[512], pw[256];
	const char *who = geteuid() == 0 ? "nobody" : getpwuid(geteuid())->pw_name;
	FILE *f;

	load_ok("acme_store none\n");
	ck_assert_ptr_null(cfg.acme_store);
	write_conf("store postgresql:///h?host=/run/postgresql\nacme on\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs acme_store"));
	write_conf("acme_store postgresql:///h?user=haloyd_acme\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "goes with store postgresql"));
	snprintf(text, sizeof(text), "store postgresql:///h\nacme on\nacme_user %s\n"
	    "acme_store postgresql:///h?user=haloyd_acme\n", who);
	load_ok(text);
	ck_assert_str_eq(cfg.acme_store, "postgresql:///h?user=haloyd_acme");
	snprintf(text, sizeof(text), "store postgresql:///h\nacme_user %s\n"
	    "acme_store postgresql://haloyd_acme:secret@db/h\n", who);
	write_conf(text);
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "acme_store: no password"));
	/* A passfile of ours, when acme_user is another user: refused. */
	snprintf(pw, sizeof(pw), "%s/pgpass", dir);
	ck_assert_ptr_nonnull(f = fopen(pw, "w"));
	fclose(f);
	ck_assert_int_eq(chmod(pw, 0600), 0);
	snprintf(text, sizeof(text), "store postgresql:///h\nacme_user %s\n"
	    "acme_store postgresql:///h?passfile=%s\n", who, pw);
	if (geteuid() == 0) {
		write_conf(text);
		ck_assert_int_eq(LOAD_FILE(), -1);
		ck_assert_ptr_nonnull(strstr(err, "acme_store: passfile"));
		ck_assert_int_eq(chown(pw, getpwnam("nobody")->pw_uid, (gid_t)-1), 0);
	}
	load_ok(text);
	ck_assert_int_eq(chmod(pw, 0640), 0);
	write_conf(text);
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	unlink(pw);
}
END_TEST

/* --- the shipped haloyd.conf */

/*
 * share/conf/haloyd.conf shows every setting commented out with its
 * default: uncommented, it must load, name each setting once, and change
 * only the settings whose example is not the default. The source tree is
 * found from this file's name as compiled, relative to the build
 * directory where the tests run.
 */
/* On-demand TLS orders for names strangers send: never without acme_ask (and acme on). */
START_TEST(ondemand_needs_ask)
{
	load_ok("acme on\n");
	ck_assert_int_eq(cfg.acme_on_demand, 0);
	ck_assert_uint_eq(cfg.acme_on_demand_rate, 10);
	ck_assert_uint_eq(cfg.acme_on_demand_backoff_ms, 3600000);
	ck_assert_uint_eq(cfg.acme_on_demand_wait_ms, 10000);
	write_conf("acme on\nacme_on_demand on\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_ptr_nonnull(strstr(err, "acme_on_demand on needs acme_ask URL"));
	write_conf("acme on\nacme_on_demand on\nacme_ask ftp://x/\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	write_conf("acme_on_demand on\nacme_ask http://127.0.0.1:9/ask\n");
	ck_assert_int_eq(LOAD_FILE(), -1);
	ck_assert_str_eq(err, "acme_on_demand on needs acme on");
	load_ok("acme on\nacme_on_demand on\nacme_ask https://ask.example/ok?k=1\n"
	    "acme_on_demand_rate 3\nacme_on_demand_wait 0\n");
	ck_assert_int_eq(cfg.acme_on_demand, 1);
	ck_assert_str_eq(cfg.acme_ask, "https://ask.example/ok?k=1");
	ck_assert_uint_eq(cfg.acme_on_demand_rate, 3);
	ck_assert_uint_eq(cfg.acme_on_demand_wait_ms, 0);
	bad_value("acme_on_demand_wait", "31s");
}
END_TEST

START_TEST(shipped_file)
{
	static const char me[] = "tests/unit/check_conf.c";
	const char *file = __FILE__;
	size_t flen = strlen(file), i, seen[NSETTINGS];
	char src[512], line[1100];
	FILE *in, *out;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int uncommented = 0;

	ck_assert_uint_ge(flen, strlen(me));
	ck_assert_str_eq(file + flen - strlen(me), me);
	snprintf(src, sizeof(src), "%.*sshare/conf/haloyd.conf", (int)(flen - strlen(me)), file);
	in = fopen(src, "r");
	ck_assert_msg(in != NULL, "cannot open %s: run from the build directory, as tests/run does", src);
	out = fopen(path, "w");
	ck_assert_ptr_nonnull(out);
	memset(seen, 0, sizeof(seen));
	while (fgets(line, sizeof(line), in) != NULL) {
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
			size_t len = strcspn(line + 1, " ");

			for (i = 0; i < NSETTINGS; i++)
				if (strlen(settings[i]) == len && strncmp(settings[i], line + 1, len) == 0)
					seen[i]++;
			uncommented++;
			fputs(line + 1, out);
		} else {
			fputs(line, out);
		}
	}
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_msg(LOAD_FILE() == 0, "the shipped file, uncommented: %s", err);
	ck_assert_int_eq(uncommented, (int)NSETTINGS);
	for (i = 0; i < NSETTINGS; i++)
		ck_assert_msg(seen[i] == 1, "%s is shown %zu times", settings[i], seen[i]);
	assert_common_defaults();
	/* The examples that are not defaults. */
	ck_assert_uint_eq(cfg.workers, 4);
	ck_assert_uint_eq(cfg.listen_https.n, 1);
	ck_assert_uint_eq(cfg.listen_metrics.n, 1);
	ck_assert_str_eq(cfg.listen_tunnel, "0.0.0.0:8443");
	ck_assert_uint_eq(cfg.tunnel_ping_interval_ms, 20000);
	ck_assert_uint_eq(cfg.tunnel_ping_timeout_ms, 10000);
	ck_assert_uint_eq(cfg.trusted_proxies.n, 1);
	ck_assert_str_ne(cfg.acme_email, "");
	ck_assert_str_eq(cfg.dns_update_server, "192.0.2.53");
	ck_assert_str_eq(cfg.dns_tsig_key, "/etc/haloyd/dns-update.key");
	ck_assert_str_ne(cfg.acme_ca_file, "");
	ck_assert_str_eq(cfg.acme_profile, "shortlived");
	/* As shipped, all commented out, it is all defaults. */
	ck_assert_msg(load_args(0, (const char *const[]){ "-c", src, NULL }) == 0, "%s: %s", src, err);
	assert_common_defaults();
	ck_assert_uint_eq(cfg.listen_metrics.n, 0);
	ck_assert_uint_eq(cfg.workers, n > 0 ? (uint64_t)n : 1);
	ck_assert_uint_eq(cfg.listen_https.n, 0);
	ck_assert_uint_eq(cfg.trusted_proxies.n, 0);
	ck_assert_str_eq(cfg.acme_email, "");
	ck_assert_str_eq(cfg.acme_ca_file, "");
	ck_assert_str_eq(cfg.acme_profile, "");
}
END_TEST

Suite *
suite_conf(void)
{
	Suite *s = suite_create("conf");
	TCase *file = tcase_create("file"), *cmd = tcase_create("command line");
	TCase *range = tcase_create("ranges");

	tcase_add_checked_fixture(file, setup, teardown);
	tcase_add_test(file, defaults);
	tcase_add_test(file, every_setting);
	tcase_add_loop_test(file, value_table, 0, (int)(sizeof(value_cases) / sizeof(value_cases[0])));
	tcase_add_test(file, booleans_and_words);
	tcase_add_test(file, address_lists);
	tcase_add_test(file, list_limit);
	tcase_add_test(file, later_line_wins);
	tcase_add_test(file, renamed_setting);
	tcase_add_test(file, syntax);
	tcase_add_test(file, line_numbers);
	tcase_add_test(file, missing_value);
	tcase_add_test(file, overlong_line);
	tcase_add_test(file, unreadable_file);
	tcase_add_test(file, default_file_optional);
	tcase_add_test(file, shipped_file);
	tcase_add_test(file, dns01_settings);
	tcase_add_test(file, store_setting);
	tcase_add_test(file, acme_store_setting);
	tcase_add_test(file, ondemand_needs_ask);
	suite_add_tcase(s, file);

	tcase_add_checked_fixture(cmd, setup, teardown);
	tcase_add_test(cmd, command_line_wins);
	tcase_add_test(cmd, flags);
	tcase_add_test(cmd, command_line_refused);
	tcase_add_test(cmd, help_and_version);
	tcase_add_test(cmd, reload_keeps_old);
	tcase_add_test(cmd, error_truncated);
	suite_add_tcase(s, cmd);

	tcase_add_checked_fixture(range, setup, teardown);
	tcase_add_loop_test(range, range_table, 0, (int)(sizeof(range_cases) / sizeof(range_cases[0])));
	tcase_add_test(range, range_other_names);
	suite_add_tcase(s, range);
	return s;
}
