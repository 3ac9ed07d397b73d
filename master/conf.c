/*
 * haloyd.conf ("name value" lines, '#' comments) and the command line.
 * One table describes every setting, so the file key `listen_http` and the
 * option `--listen-http` cannot drift apart.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/conf.h"
#include "master/dnsname.h"
#include "master/store.h"
#include "share/addr.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/paths.h"
#include "share/shm.h"
#include "share/util.h"
#include "worker/cachestore.h"

enum opt_type {
	OPT_STR, OPT_UINT, OPT_DURATION, OPT_SIZE, OPT_BOOL, OPT_TARGET,
	OPT_ADDRLIST,		/* struct conf_list of "ip:port" */
	OPT_CIDRLIST,		/* struct conf_list of "ip[/bits]" */
	OPT_PERCENT,		/* uint64_t in [min, max], written "33%" or "33" */
	OPT_RATE,		/* uint64_t requests a minute in [min, max], "10r/s", "600r/m", off */
};

struct opt {
	const char *name;	/* file spelling; the option swaps '_' for '-' */
	enum opt_type type;
	size_t off;
	uint64_t min, max;
};

#define O(f) offsetof(struct conf, f)
static const struct opt opts[] = {
	{ "listen_http", OPT_ADDRLIST, O(listen_http), 0, 0 },
	{ "listen_https", OPT_ADDRLIST, O(listen_https), 0, 0 },
	{ "ticket_key_lifetime", OPT_DURATION, O(ticket_key_lifetime_ms), 1000, 604800000 },
	{ "workers", OPT_UINT, O(workers), 1, 256 },
	{ "state_dir", OPT_STR, O(state_dir), 0, 0 },
	/* A PostgreSQL connection string: several nodes share it (issue 20); unset: SQLite. */
	{ "store", OPT_STR, O(store), 0, 0 },
	/* The ACME child's own connection to that store: the account key is its role's alone. */
	{ "acme_store", OPT_STR, O(acme_store), 0, 0 },
	{ "runtime_dir", OPT_STR, O(runtime_dir), 0, 0 },
	{ "user", OPT_STR, O(user), 0, 0 },
	{ "admin_group", OPT_STR, O(admin_group), 0, 0 },
	{ "log_target", OPT_TARGET, O(log_target), 0, 0 },
	{ "access_log", OPT_BOOL, O(access_log), 0, 0 },
	{ "stop_timeout", OPT_DURATION, O(stop_timeout_ms), 0, 3600000 },
	{ "upgrade_drain", OPT_DURATION, O(upgrade_drain_ms), 0, 86400000 },
	{ "header_timeout", OPT_DURATION, O(header_timeout_ms), 100, 3600000 },
	{ "keepalive_timeout", OPT_DURATION, O(keepalive_timeout_ms), 100, 3600000 },
	{ "connect_timeout", OPT_DURATION, O(connect_timeout_ms), 10, 3600000 },
	{ "response_timeout", OPT_DURATION, O(response_timeout_ms), 100, 86400000 },
	{ "idle_timeout", OPT_DURATION, O(idle_timeout_ms), 100, 86400000 },
	{ "upgrade_timeout", OPT_DURATION, O(upgrade_timeout_ms), 1000, 604800000 },
	{ "max_connections", OPT_UINT, O(max_connections), 1, 1000000 },
	{ "body_timeout", OPT_DURATION, O(body_timeout_ms), 100, 86400000 },
	{ "backend_down_time", OPT_DURATION, O(backend_down_ms), 0, 3600000 },
	{ "max_body", OPT_SIZE, O(max_body), 0, UINT64_MAX },
	{ "access_log_sample", OPT_UINT, O(access_log_sample), 1, 1000000 },
	{ "http2", OPT_BOOL, O(http2), 0, 0 },
	{ "http2_max_streams", OPT_UINT, O(h2_max_streams), 1, 1000 },
	{ "trusted_proxies", OPT_CIDRLIST, O(trusted_proxies), 0, 0 },
	{ "error_pages", OPT_STR, O(error_pages), 0, 0 },
	{ "resolver", OPT_STR, O(resolver), 0, 0 },
	{ "resolve_min_ttl", OPT_DURATION, O(resolve_min_ttl_ms), 1000, 3600000 },
	{ "resolve_max_ttl", OPT_DURATION, O(resolve_max_ttl_ms), 1000, 3600000 },
	{ "acme", OPT_BOOL, O(acme), 0, 0 },
	{ "acme_directory", OPT_STR, O(acme_directory), 0, 0 },
	{ "acme_email", OPT_STR, O(acme_email), 0, 0 },
	{ "acme_ca_file", OPT_STR, O(acme_ca_file), 0, 0 },
	{ "acme_user", OPT_STR, O(acme_user), 0, 0 },
	{ "acme_profile", OPT_STR, O(acme_profile), 0, 0 },
	{ "dns_update_server", OPT_STR, O(dns_update_server), 0, 0 },
	{ "dns_tsig_key", OPT_STR, O(dns_tsig_key), 0, 0 },
	{ "dns_zone", OPT_STR, O(dns_zone), 0, 0 },
	{ "dns_ns_port", OPT_UINT, O(dns_ns_port), 0, 65535 },
	{ "dns_propagation_timeout", OPT_DURATION, O(dns_propagation_timeout_ms), 1000, 3600000 },
	{ "acme_renew_before", OPT_PERCENT, O(acme_renew_before), 1, 100 },
	{ "acme_backoff_max", OPT_DURATION, O(acme_backoff_max_ms), 1000, 604800000 },
	{ "acme_on_demand", OPT_BOOL, O(acme_on_demand), 0, 0 },
	{ "acme_ask", OPT_STR, O(acme_ask), 0, 0 },
	{ "acme_on_demand_rate", OPT_UINT, O(acme_on_demand_rate), 1, 10000 },
	{ "acme_on_demand_backoff", OPT_DURATION, O(acme_on_demand_backoff_ms), 1000, 604800000 },
	/* A handshake held longer than this looks dead to clients (and to keepalive_timeout). */
	{ "acme_on_demand_wait", OPT_DURATION, O(acme_on_demand_wait_ms), 0, 30000 },
	{ "shared_memory_size", OPT_SIZE, O(shared_memory_size), SHM_SIZE_MIN, SHM_SIZE_MAX },
	{ "cache_path", OPT_STR, O(cache_path), 0, 0 },
	{ "cache_max_size", OPT_SIZE, O(cache_max_size), CACHESTORE_MIN_SIZE, CACHESTORE_MAX_SIZE },
	{ "listen_metrics", OPT_ADDRLIST, O(listen_metrics), 0, 0 },
	{ "listen_tunnel", OPT_STR, O(listen_tunnel), 0, 0 },
	{ "rate_limit", OPT_RATE, O(rate_rpm), 0, SNAP_RATE_RPM_MAX },
	{ "rate_burst", OPT_UINT, O(rate_burst), 0, SNAP_RATE_BURST_MAX },
	{ "rate_nodelay", OPT_BOOL, O(rate_nodelay), 0, 0 },
	{ "rate_limit_dry_run", OPT_BOOL, O(rate_dry_run), 0, 0 },
	/* A worker's count is 16 bits in the shared table (share/clients.h). */
	{ "max_connections_per_ip", OPT_UINT, O(max_conns_per_ip), 0, 65534 },
	{ "sandbox", OPT_BOOL, O(sandbox), 0, 0 },
	{ "tunnel_ca_file", OPT_STR, O(tunnel_ca_file), 0, 0 },
	{ "tunnel_cert", OPT_STR, O(tunnel_cert), 0, 0 },
	{ "tunnel_key", OPT_STR, O(tunnel_key), 0, 0 },
	{ "tunnel_ping_interval", OPT_DURATION, O(tunnel_ping_interval_ms), 100, 3600000 },
	{ "tunnel_ping_timeout", OPT_DURATION, O(tunnel_ping_timeout_ms), 100, 3600000 },
};
#undef O

static const char usage[] =
    "usage: haloyd [-c FILE] [-t] [-v] [--NAME VALUE]...\n"
    "  -c, --config FILE     configuration file (default " HALOYD_DEFAULT_CONFIG ")\n"
    "  -t                    check the configuration and exit\n"
    "  --takeover            take the listening sockets of the running haloyd (upgrade)\n"
    "  -v                    more logging (repeat for more)\n"
    "  --NAME VALUE          any haloyd.conf setting, '_' written '-':\n"
    "      --listen-http ADDR (repeatable)  --workers N  --state-dir DIR\n"
    "      --store postgresql://...  (a store shared by several nodes)\n"
    "      --acme-store postgresql://...  (the ACME child's role there: the account key)\n"
    "      --runtime-dir DIR  --user USER  --admin-group GROUP\n"
    "      --log-target auto|stderr|journal  --access-log on|off\n"
    "      --stop-timeout D  --upgrade-drain D  --header-timeout D  --keepalive-timeout D\n"
    "      --connect-timeout D  --response-timeout D  --idle-timeout D  --upgrade-timeout D\n"
    "      --max-connections N  --body-timeout D  --backend-down-time D  --max-body SIZE\n"
    "      --access-log-sample N  --trusted-proxies CIDR (repeatable)  --error-pages DIR\n"
    "      --http2 on|off  --http2-max-streams N\n"
    "      --listen-https ADDR (repeatable)  --ticket-key-lifetime D\n"
    "      --acme on|off  --acme-directory URL|production|staging  --acme-email ADDR\n"
    "      --acme-ca-file FILE  --acme-user USER  --acme-renew-before PERCENT\n"
    "      --acme-profile NAME  (--listen-http none: HTTPS only)\n"
    "      --acme-backoff-max D  --shared-memory-size SIZE  --listen-metrics ADDR (repeatable)\n"
    "      --dns-update-server ADDR[:PORT]  --dns-tsig-key FILE  --dns-zone ZONE\n"
    "      --dns-ns-port PORT  --dns-propagation-timeout D\n"
    "      --acme-on-demand on|off  --acme-ask URL  --acme-on-demand-rate N\n"
    "      --acme-on-demand-backoff D  --acme-on-demand-wait D\n"
    "      --listen-tunnel ADDR  --tunnel-ca-file FILE  --tunnel-cert FILE  --tunnel-key FILE\n"
    "      --tunnel-ping-interval D  --tunnel-ping-timeout D  --sandbox on|off\n"
    "      --rate-limit R|off  --rate-burst N  --rate-nodelay on|off\n"
    "      --rate-limit-dry-run on|off  --max-connections-per-ip N\n"
    "      --cache-path DIR  --cache-max-size SIZE\n"
    "      --resolver 'ADDR[:PORT] ...'  --resolve-min-ttl D  --resolve-max-ttl D\n"
    "      (D: 30s, 500ms, 2m, 1h; a bare number is seconds. SIZE: bytes, or 10k, 5m, 1g;\n"
    "      R: 10r/s, 600r/m)\n"
    "See haloyd(8) and haloyd.conf(5).\n";

static void
conf_defaults(struct conf *c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	c->workers = n > 0 ? (uint64_t)n : 1;
	c->access_log = 1;
	c->stop_timeout_ms = 30000;
	c->upgrade_drain_ms = 300000;
	c->header_timeout_ms = 30000;
	c->keepalive_timeout_ms = 75000;
	c->connect_timeout_ms = 5000;
	c->response_timeout_ms = 60000;
	c->idle_timeout_ms = 60000;
	c->upgrade_timeout_ms = 3600000;
	c->max_connections = 10000;
	c->body_timeout_ms = 60000;
	c->backend_down_ms = 10000;
	c->resolve_min_ttl_ms = 1000;
	c->resolve_max_ttl_ms = 3600000;
	c->access_log_sample = 1;
	c->http2 = 1;
	c->h2_max_streams = 100;		/* as HAProxy and h2o ship */
	c->ticket_key_lifetime_ms = 12 * 3600000;
	c->acme_renew_before = 33;		/* a third: 90-day and 6-day certificates alike */
	c->acme_backoff_max_ms = 6 * 3600000;
	c->acme_on_demand_rate = 10;		/* a minute: Let's Encrypt allows 300 orders / 3 h */
	c->acme_on_demand_backoff_ms = 3600000;
	c->acme_on_demand_wait_ms = 10000;
	c->shared_memory_size = SHM_SIZE_DEFAULT;
	c->cache_max_size = 256ull << 20;
	c->sandbox = 1;
	c->tunnel_ping_interval_ms = 20000;	/* issue 13: PING an idle tunnel every 20 s */
	c->tunnel_ping_timeout_ms = 10000;	/* and drop it 10 s later without the ACK */
	c->dns_ns_port = 53;			/* DNS-01: NS records carry no port */
	c->dns_propagation_timeout_ms = 120000;	/* secondaries lag the primary */
}

/* Fills unset strings once everything was read, so "" can never mean "unset". */
static int
conf_finish(struct conf *c)
{
	static const struct { size_t off; const char *def; } defs[] = {
		{ offsetof(struct conf, state_dir), HALOYD_DEFAULT_STATE_DIR },
		{ offsetof(struct conf, runtime_dir), HALOYD_DEFAULT_RUNTIME_DIR },
		{ offsetof(struct conf, user), HALOYD_DEFAULT_USER },
		{ offsetof(struct conf, admin_group), HALOYD_DEFAULT_ADMIN_GROUP },
		{ offsetof(struct conf, log_target), "auto" },
		{ offsetof(struct conf, error_pages), HALOYD_DEFAULT_ERROR_PAGES },
		{ offsetof(struct conf, acme_directory), "production" },
		{ offsetof(struct conf, acme_email), "" },
		{ offsetof(struct conf, acme_ca_file), "" },
		{ offsetof(struct conf, acme_user), HALOYD_DEFAULT_ACME_USER },
		{ offsetof(struct conf, acme_profile), "" },
		{ offsetof(struct conf, dns_update_server), "" },
		{ offsetof(struct conf, dns_tsig_key), "" },
		{ offsetof(struct conf, dns_zone), "" },
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(defs); i++) {
		char **p = (char **)(void *)((char *)c + defs[i].off);
		if (*p == NULL && (*p = strdup(defs[i].def)) == NULL)
			return -1;
	}
	/* The cache lives under the state folder unless told otherwise. */
	if (c->cache_path == NULL && asprintf(&c->cache_path, "%s/cache", c->state_dir) == -1) {
		c->cache_path = NULL;
		return -1;
	}
	if (c->listen_http.n == 0 && !c->no_listen_http && (c->listen_http.v[c->listen_http.n++] = strdup("0.0.0.0:80")) == NULL)
		return -1;
	return 0;
}

static void
list_clear(struct conf_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
	l->proxy = 0;
}

/*
 * "ADDR proxy" on listen_http / listen_https: the listener's clients come
 * through a balancer that sends a PROXY header. The address goes in the
 * list alone, the flag in its bit. 0, or -1 when v is not an address.
 */
static int
conf_listen_addr(struct conf *c, struct conf_list *l, const char *v)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char a[ADDR_STR_MAX];
	size_t n = strcspn(v, " \t");
	const char *rest = v + n + strspn(v + n, " \t");
	int proxy = strcmp(rest, "proxy") == 0;

	if (n >= sizeof(a) || (*rest != '\0' && !proxy) ||
	    (proxy && l != &c->listen_http && l != &c->listen_https))
		return -1;
	memcpy(a, v, n);
	a[n] = '\0';
	if (addr_parse(a, &ss, &sl) == -1 || (l->v[l->n] = strdup(a)) == NULL)
		return -1;
	if (proxy)
		l->proxy |= 1u << l->n;
	l->n++;
	return 0;
}

static int
set_string(char **dst, const char *v)
{
	char *s = strdup(v);

	if (s == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

/* Applies one setting; fresh_list says a list starts over (first command-line entry). */
static int
conf_apply(struct conf *c, const struct opt *o, const char *v, int fresh_list,
    char *err, size_t errlen)
{
	void *p = (char *)c + o->off;
	struct addr_cidr cidr;
	struct conf_list *l;
	uint64_t u;

	switch (o->type) {
	case OPT_STR:
		if (*v == '\0')
			goto bad;
		return set_string(p, v);
	case OPT_TARGET:
		if (log_target_parse(v) < 0)
			goto bad;
		return set_string(p, v);
	case OPT_UINT:
		if (util_parse_u64(v, o->min, o->max, &u) == -1)
			goto bad;
		*(uint64_t *)p = u;
		return 0;
	case OPT_DURATION:
		if (util_parse_duration_ms(v, &u) == -1 || u < o->min || u > o->max)
			goto bad;
		*(uint64_t *)p = u;
		return 0;
	case OPT_BOOL:
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
			goto bad;
		*(int *)p = strcmp(v, "on") == 0;
		return 0;
	case OPT_PERCENT: {
		char num[24];
		size_t n = strcspn(v, "%");

		if (n >= sizeof(num) || (v[n] == '%' && v[n + 1] != '\0'))
			goto bad;
		memcpy(num, v, n);
		num[n] = '\0';
		if (util_parse_u64(num, o->min, o->max, &u) == -1)
			goto bad;
		*(uint64_t *)p = u;
		return 0;
	}
	case OPT_RATE:
		if (util_parse_rate(v, &u) == -1 || u < o->min || u > o->max)
			goto bad;
		*(uint64_t *)p = u;
		return 0;
	case OPT_SIZE:
		if (util_parse_size(v, &u) == -1 || u < o->min || u > o->max)
			goto bad;
		*(uint64_t *)p = u;
		return 0;
	case OPT_ADDRLIST:
	case OPT_CIDRLIST:
		l = p;
		if (fresh_list)
			list_clear(l);
		/* listen_http none: HTTPS only (ACME then validates over TLS-ALPN-01). */
		if (strcmp(v, "none") == 0 && l == &c->listen_http) {
			list_clear(l);
			c->no_listen_http = 1;
			return 0;
		}
		if (l == &c->listen_http)
			c->no_listen_http = 0;
		if (l->n == CONFIG_LIST_MAX) {
			snprintf(err, errlen, "%s: at most %d entries", o->name, CONFIG_LIST_MAX);
			return -1;
		}
		if (o->type == OPT_ADDRLIST) {
			if (conf_listen_addr(c, l, v) == -1)
				goto bad;
			return 0;
		}
		if (addr_parse_cidr(v, &cidr) == -1)
			goto bad;
		return (l->v[l->n++] = strdup(v)) == NULL ? -1 : 0;
	}
bad:
	snprintf(err, errlen, "%s: invalid value '%s'", o->name, v);
	return -1;
}

/* Old names that still work, with a warning in the log (see opt_find). */
static const struct { const char *old, *now; } renamed[] = {
	{ "tunnel_timeout", "upgrade_timeout" },	/* "tunnel" now means reverse tunnels */
};

static int
opt_name_is(const char *n, const char *name, int dashed)
{
	size_t j;

	for (j = 0; n[j] != '\0' && name[j] != '\0'; j++)
		if (name[j] != (dashed && n[j] == '_' ? '-' : n[j]))
			break;
	return n[j] == '\0' && name[j] == '\0';
}

static const struct opt *
opt_lookup(const char *name, int dashed)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(opts); i++)
		if (opt_name_is(opts[i].name, name, dashed))
			return &opts[i];
	return NULL;
}

/* The setting called name, or by an old name of it (noted in c->renamed when c is given). */
static const struct opt *
opt_find_in(struct conf *c, const char *name, int dashed)
{
	const struct opt *o = opt_lookup(name, dashed);
	size_t i;

	for (i = 0; o == NULL && i < ARRAY_LEN(renamed); i++)
		if (opt_name_is(renamed[i].old, name, dashed)) {
			o = opt_lookup(renamed[i].now, 0);
			if (c != NULL)
				snprintf(c->renamed, sizeof(c->renamed), "'%s' is now called '%s'; "
				    "the old name still works", renamed[i].old, renamed[i].now);
		}
	return o;
}

static const struct opt *
opt_find(const char *name, int dashed)
{
	return opt_find_in(NULL, name, dashed);
}

int
conf_range(const char *name, uint64_t *min, uint64_t *max)
{
	const struct opt *o = opt_find(name, 0);

	if (o == NULL || (o->type != OPT_DURATION && o->type != OPT_SIZE && o->type != OPT_UINT))
		return -1;
	*min = o->min;
	*max = o->max;
	return 0;
}

/* Reads one "name value" line; comments and blank lines are skipped. */
static int
conf_line(struct conf *c, char *line, const char *file, int lineno, char *err, size_t errlen)
{
	char *name, *value, *end;
	const struct opt *o;

	line[strcspn(line, "#\r\n")] = '\0';
	name = line + strspn(line, " \t");
	if (*name == '\0')
		return 0;
	value = name + strcspn(name, " \t");
	if (*value != '\0')
		*value++ = '\0';
	value += strspn(value, " \t");
	for (end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t'); end--)
		;
	*end = '\0';
	if ((o = opt_find_in(c, name, 0)) == NULL) {
		snprintf(err, errlen, "%s:%d: unknown setting '%s'", file, lineno, name);
		return -1;
	}
	if (*value == '\0') {
		snprintf(err, errlen, "%s:%d: %s needs a value", file, lineno, name);
		return -1;
	}
	if (conf_apply(c, o, value, 0, err, errlen) == -1) {
		size_t n = strlen(err);
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s:%d: %.*s", file, lineno, (int)n, err);
		util_strlcpy(err, tmp, errlen);
		return -1;
	}
	return 0;
}

static int
conf_read_file(struct conf *c, char *err, size_t errlen)
{
	char line[1024];
	FILE *f;
	int lineno = 0, rc = 0;

	if ((f = fopen(c->config_file, "r")) == NULL) {
		if (errno == ENOENT && !c->config_explicit)
			return 0;
		snprintf(err, errlen, "%s: %s", c->config_file, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", c->config_file, lineno);
			rc = -1;
		} else {
			rc = conf_line(c, line, c->config_file, lineno, err, errlen);
		}
	}
	/* fopen() opens a folder too; reading it fails (EISDIR), as may any read. */
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", c->config_file, strerror(errno));
		rc = -1;
	}
	fclose(f);
	return rc;
}

/* The first pass over argv: -c, -t, -v, --help, --version. */
static int
conf_argv_flags(struct conf *c, int argc, char **argv, char *err, size_t errlen)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 1;
		} else if (strcmp(a, "--version") == 0) {
			printf("haloyd %s\n", PACKAGE_VERSION);
			return 1;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (++i == argc) {
				snprintf(err, errlen, "%s needs a file", a);
				return -1;
			}
			if (set_string(&c->config_file, argv[i]) == -1)
				return -1;
			c->config_explicit = 1;
		} else if (strcmp(a, "-t") == 0) {
			c->test_only = 1;
		} else if (strcmp(a, "--takeover") == 0) {
			c->takeover = 1;
		} else if (a[0] == '-' && a[1] != '-' && strspn(a + 1, "v") == strlen(a + 1) && a[1]) {
			c->verbose += (int)strlen(a + 1);
		} else if (strncmp(a, "--", 2) == 0 && strchr(a, '=') == NULL) {
			i++;	/* --name value: skip the value */
		} else if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s' (see haloyd --help)", a);
			return -1;
		}
	}
	return 0;
}

/* The second pass: --name value / --name=value settings, applied over the file. */
static int
conf_argv_settings(struct conf *c, int argc, char **argv, char *err, size_t errlen)
{
	/* Per option: given on the command line yet? Its first entry there starts the list over. */
	unsigned char seen[sizeof(opts) / sizeof(opts[0])] = { 0 };
	int i;

	for (i = 1; i < argc; i++) {
		char name[64];
		const char *a = argv[i], *v, *eq;
		const struct opt *o;

		if (strncmp(a, "--", 2) != 0 || strcmp(a, "--config") == 0 ||
		    strcmp(a, "--help") == 0 || strcmp(a, "--version") == 0 ||
		    strcmp(a, "--takeover") == 0) {
			if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
				i++;
			continue;
		}
		eq = strchr(a, '=');
		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
		if ((o = opt_find_in(c, name, 1)) == NULL) {
			snprintf(err, errlen, "unknown option '--%s' (see haloyd --help)", name);
			return -1;
		}
		if (eq != NULL)
			v = eq + 1;
		else if (++i < argc)
			v = argv[i];
		else {
			snprintf(err, errlen, "--%s needs a value", name);
			return -1;
		}
		if (conf_apply(c, o, v, !seen[o - opts], err, errlen) == -1)
			return -1;
		seen[o - opts] = 1;
	}
	return 0;
}

/* Settings that only make sense together (issue 13's tunnel listener). */
static int
conf_check_tunnel(const struct conf *c, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (c->listen_tunnel == NULL)
		return 0;
	if (addr_parse(c->listen_tunnel, &ss, &sl) == -1) {
		snprintf(err, errlen, "listen_tunnel: invalid value '%s'", c->listen_tunnel);
		return -1;
	}
	if (c->tunnel_ca_file == NULL) {
		snprintf(err, errlen, "listen_tunnel needs tunnel_ca_file (the CA that signs the "
		    "agents' client certificates)");
		return -1;
	}
	if ((c->tunnel_cert == NULL) != (c->tunnel_key == NULL)) {
		snprintf(err, errlen, "tunnel_cert and tunnel_key go together");
		return -1;
	}
	return 0;
}

/* On-demand TLS asks a URL before every order: without one, it would order for any scanner. */
static int
conf_check_ondemand(const struct conf *c, char *err, size_t errlen)
{
	if (!c->acme_on_demand)
		return 0;
	if (c->acme_ask == NULL || (strncmp(c->acme_ask, "http://", 7) != 0 &&
	    strncmp(c->acme_ask, "https://", 8) != 0) || strlen(c->acme_ask) > 512) {
		snprintf(err, errlen, "acme_on_demand on needs acme_ask URL (http:// or https://, "
		    "at most 512 bytes): it is asked ?domain=NAME before each order");
		return -1;
	}
	if (!c->acme) {
		snprintf(err, errlen, "acme_on_demand on needs acme on");
		return -1;
	}
	return 0;
}

/*
 * On a shared store the ACME child reads the account key through its own
 * role (acme_store): the master's connection has no privilege on it. Its
 * passfile, if any, is the child's user's, which alone reads it.
 */
static int
conf_check_acme_store(const struct conf *c, char *err, size_t errlen)
{
	struct passwd *pw;
	uid_t uid = geteuid();

	if (c->acme_store == NULL) {
		if (c->acme && c->store != NULL) {
			snprintf(err, errlen, "acme on with store postgresql://... needs acme_store "
			    "postgresql://... (the ACME child's own role, which alone reads the "
			    "account key: haloyd.conf(5))");
			return -1;
		}
		return 0;
	}
	if (c->store == NULL) {
		snprintf(err, errlen, "acme_store goes with store postgresql://... (with SQLite the "
		    "ACME child keeps its account key in its folder)");
		return -1;
	}
	if (uid == 0) {
		if ((pw = getpwnam(c->acme_user)) == NULL) {
			snprintf(err, errlen, "acme_store: acme_user %s does not exist", c->acme_user);
			return -1;
		}
		uid = pw->pw_uid;
	}
	return store_conf_check_for(c->acme_store, "acme_store", uid, err, errlen);
}

int
conf_load(struct conf *cfg, int argc, char **argv, char *err, size_t errlen)
{
	int rc;

	conf_defaults(cfg);
	if ((rc = conf_argv_flags(cfg, argc, argv, err, errlen)) != 0)
		return rc;
	if (cfg->config_file == NULL && (cfg->config_file = strdup(HALOYD_DEFAULT_CONFIG)) == NULL)
		return -1;
	if (conf_read_file(cfg, err, errlen) == -1 ||
	    conf_argv_settings(cfg, argc, argv, err, errlen) == -1)
		return -1;
	if (conf_finish(cfg) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cfg->no_listen_http && cfg->listen_https.n == 0) {
		snprintf(err, errlen, "listen_http none needs a listen_https address");
		return -1;
	}
	if ((cfg->dns_update_server[0] == '\0') != (cfg->dns_tsig_key[0] == '\0')) {
		snprintf(err, errlen, "dns_update_server and dns_tsig_key go together (DNS-01)");
		return -1;
	}
	if (conf_check_ondemand(cfg, err, errlen) == -1)
		return -1;
	if (cfg->resolver != NULL) {
		char csv[512];

		if (dnsname_servers_csv(cfg->resolver, csv, sizeof(csv), err, errlen) == -1)
			return -1;
	}
	if (cfg->resolve_min_ttl_ms > cfg->resolve_max_ttl_ms) {
		snprintf(err, errlen, "resolve_min_ttl is above resolve_max_ttl");
		return -1;
	}
	/* "sqlite" names the default, the file in state_dir, so the sample's line can be set. */
	if (cfg->store != NULL && strcmp(cfg->store, "sqlite") == 0) {
		free(cfg->store);
		cfg->store = NULL;
	}
	if (cfg->store != NULL && store_conf_check(cfg->store, err, errlen) == -1)
		return -1;
	/* "none", the SQLite default: the child keeps its key in its folder. */
	if (cfg->acme_store != NULL && strcmp(cfg->acme_store, "none") == 0) {
		free(cfg->acme_store);
		cfg->acme_store = NULL;
	}
	if (conf_check_acme_store(cfg, err, errlen) == -1)
		return -1;
	return conf_check_tunnel(cfg, err, errlen);
}

void
conf_free(struct conf *cfg)
{
	list_clear(&cfg->listen_http);
	list_clear(&cfg->listen_https);
	list_clear(&cfg->listen_metrics);
	list_clear(&cfg->trusted_proxies);
	free(cfg->error_pages);
	free(cfg->resolver);
	free(cfg->acme_directory);
	free(cfg->acme_email);
	free(cfg->acme_ca_file);
	free(cfg->acme_profile);
	free(cfg->dns_update_server);
	free(cfg->dns_tsig_key);
	free(cfg->dns_zone);
	free(cfg->acme_ask);
	free(cfg->acme_user);
	free(cfg->listen_tunnel);
	free(cfg->cache_path);
	free(cfg->tunnel_ca_file);
	free(cfg->tunnel_cert);
	free(cfg->tunnel_key);
	free(cfg->config_file);
	free(cfg->state_dir);
	free(cfg->store);
	free(cfg->acme_store);
	free(cfg->runtime_dir);
	free(cfg->user);
	free(cfg->admin_group);
	free(cfg->log_target);
	memset(cfg, 0, sizeof(*cfg));
}
