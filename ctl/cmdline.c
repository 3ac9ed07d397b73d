/*
 * haloyd-ctl's command line. Options may come before, between or after the
 * command words (`haloyd-ctl route list --json`), so one pass sorts argv
 * into options and words, then the words are matched against the command
 * table and encoded as the MSG_C_* payload msg.h describes. Names and
 * backends are normalised exactly as the master does it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "ctl/cmdapply.h"
#include "ctl/cmdline.h"
#include "share/addr.h"
#include "share/beaddr.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/pathprefix.h"
#include "share/msg.h"
#include "share/util.h"

enum arg_kind {
	ARG_END = 0,
	ARG_NAME,	/* host name, "*.example.com" allowed */
	ARG_BACKEND,	/* ip:port / [ip6]:port / unix:/path / tunnel:NAME */
	ARG_FILE,	/* a file haloyd-ctl reads, - for stdin */
	ARG_URL,	/* http:// or https:// URL (cache purge) */
};

struct cmd_spec {
	const char *word, *sub;
	uint16_t type;
	enum output_shape shape;
	enum arg_kind args[2];
	int extra;	/* the options a command takes besides the global ones */
};

enum cmd_extra {
	EXTRA_LISTS = 1,	/* --alias, --backend */
	EXTRA_SETTINGS = 2,	/* the route set options */
	EXTRA_CERT = 4,		/* --cert, --key, --force */
	EXTRA_OPT_ARG = 8,	/* the argument may be left out (sent as "") */
	EXTRA_BACKEND = 16,	/* the backend protocol settings: --proto, --backend-* */
	EXTRA_APPLY = 32,	/* --dry-run, --prune; the argument is a file, - for stdin */
	EXTRA_ROUTE = 64,	/* --route NAME (cache purge) */
};

static const struct cmd_spec cmd_specs[] = {
	{ "route", "add", MSG_C_ROUTE_ADD, OUTPUT_NONE, { ARG_NAME, ARG_BACKEND },
	    EXTRA_LISTS | EXTRA_BACKEND },
	{ "route", "rm", MSG_C_ROUTE_RM, OUTPUT_NONE, { ARG_NAME, ARG_END }, 0 },
	{ "route", "list", MSG_C_ROUTE_LIST, OUTPUT_TABLE, { ARG_END, ARG_END }, 0 },
	{ "route", "show", MSG_C_ROUTE_SHOW, OUTPUT_OBJECT, { ARG_NAME, ARG_END }, 0 },
	{ "route", "set", MSG_C_ROUTE_SET, OUTPUT_NONE, { ARG_NAME, ARG_END },
	    EXTRA_SETTINGS | EXTRA_BACKEND },
	{ "alias", "add", MSG_C_ALIAS_ADD, OUTPUT_NONE, { ARG_NAME, ARG_NAME }, 0 },
	{ "alias", "rm", MSG_C_ALIAS_RM, OUTPUT_NONE, { ARG_NAME, ARG_NAME }, 0 },
	{ "backend", "add", MSG_C_BACKEND_ADD, OUTPUT_NONE, { ARG_NAME, ARG_BACKEND }, 0 },
	{ "backend", "rm", MSG_C_BACKEND_RM, OUTPUT_NONE, { ARG_NAME, ARG_BACKEND }, 0 },
	{ "cert", "import", MSG_C_CERT_IMPORT, OUTPUT_NONE, { ARG_NAME, ARG_END }, EXTRA_CERT },
	{ "cert", "list", MSG_C_CERT_LIST, OUTPUT_TABLE, { ARG_END, ARG_END }, 0 },
	{ "cert", "show", MSG_C_CERT_SHOW, OUTPUT_OBJECT, { ARG_NAME, ARG_END }, 0 },
	{ "cert", "rm", MSG_C_CERT_RM, OUTPUT_NONE, { ARG_NAME, ARG_END }, 0 },
	{ "cert", "status", MSG_C_CERT_STATUS, OUTPUT_TABLE, { ARG_NAME, ARG_END }, EXTRA_OPT_ARG },
	{ "cert", "renew", MSG_C_CERT_RENEW, OUTPUT_NONE, { ARG_NAME, ARG_END }, 0 },
	{ "status", NULL, MSG_C_STATUS, OUTPUT_STATUS, { ARG_END, ARG_END }, 0 },
	{ "reload", NULL, MSG_C_RELOAD, OUTPUT_NONE, { ARG_END, ARG_END }, 0 },
	{ "stats", NULL, MSG_C_STATS, OUTPUT_TABLE, { ARG_END, ARG_END }, 0 },
	{ "tunnel", "list", MSG_C_TUNNEL_LIST, OUTPUT_TABLE, { ARG_END, ARG_END }, 0 },
	{ "export", NULL, MSG_C_EXPORT, OUTPUT_LINES, { ARG_END, ARG_END }, 0 },
	{ "apply", NULL, MSG_C_APPLY, OUTPUT_LINES, { ARG_FILE, ARG_END }, EXTRA_APPLY },
	{ "cache", "purge", MSG_C_CACHE_PURGE, OUTPUT_NONE, { ARG_URL, ARG_END },
	    EXTRA_OPT_ARG | EXTRA_ROUTE },
	{ "cache", "stats", MSG_C_CACHE_STATS, OUTPUT_SUMMARY, { ARG_END, ARG_END }, 0 },
	{ "cluster", "status", MSG_C_CLUSTER_STATUS, OUTPUT_TABLE, { ARG_END, ARG_END }, 0 },
	{ "upgrade", NULL, MSG_C_UPGRADE, OUTPUT_NONE, { ARG_END, ARG_END }, 0 },
};

static const char usage_text[] =
    "usage: haloyd-ctl [-s SOCKET] [--json] COMMAND [ARGUMENT]...\n"
    "\n"
    "commands:\n"
    "  route add NAME BACKEND [--alias NAME]... [--backend BACKEND]...\n"
    "            [--proto P] [--backend-ca FILE] [--backend-sni NAME]\n"
    "            [--backend-verify on|off] [--challenge C] [--strip-prefix on|off]\n"
    "  route rm NAME\n"
    "  route list\n"
    "  route show NAME\n"
    "  route set NAME SETTING...\n"
    "  alias add ROUTE NAME\n"
    "  alias rm ROUTE NAME\n"
    "  backend add ROUTE BACKEND\n"
    "  backend rm ROUTE BACKEND\n"
    "  cert import DOMAIN --cert CHAIN.pem --key KEY.pem [--force]\n"
    "  cert list\n"
    "  cert show DOMAIN\n"
    "  cert rm DOMAIN\n"
    "  cert status [DOMAIN]\n"
    "  cert renew DOMAIN\n"
    "  status\n"
    "  reload\n"
    "  stats                (the figures of /metrics: metric, labels, value)\n"
    "  tunnel list          (the reverse tunnels attached now)\n"
    "  export               (every route as one line of haloyd-ctl's words)\n"
    "  apply FILE [--dry-run] [--prune]\n"
    "                       make the routes what FILE (- for stdin) says, in one\n"
    "                       change; --prune removes the routes it does not name\n"
    "  cache purge URL | --route NAME   (drop stored responses: one URL, or a route's)\n"
    "  cache stats          (entries, bytes; hits, misses, ... per route)\n"
    "  cluster status       (the nodes sharing a PostgreSQL store)\n"
    "  upgrade              hand over to the haloyd binary installed now (same\n"
    "                       arguments, no connection lost); exit 0 once it serves\n"
    "  help\n"
    "\n"
    "options (anywhere on the line):\n"
    "  -s, --socket SOCKET  the control socket (default: $HALOYD_CONTROL,\n"
    "                       else /run/haloyd/control.sock)\n"
    "  --json               answer in JSON, for scripts\n"
    "  -h, --help           this text\n"
    "  --version            the version\n"
    "\n"
    "route set SETTINGs (each overrides haloyd.conf for one route):\n"
    "  --connect-timeout D   10ms..1h      --response-timeout D  100ms..24h\n"
    "  --idle-timeout D      100ms..24h    --upgrade-timeout D   1s..168h\n"
    "  --max-body SIZE       bytes, 10k, 5m, 1g; 0 or unlimited: no limit\n"
    "  --https-redirect on|off (default on)  --hsts on|off (default off)\n"
    "  --compress on|off     gzip, Brotli or zstd as the client accepts (default off)\n"
    "  --cache on|off        the shared RFC 9111 response cache (default off)\n"
    "  --cache-max-object SIZE  larger responses stream uncached (default 10m, at most 1g)\n"
    "  --cache-debug on|off  answers say X-Cache: HIT, MISS, ... (default off)\n"
    "  --balance round-robin|least-in-flight  how the backends share its requests:\n"
    "                        least-in-flight picks the one with the fewest in flight\n"
    "                        across all workers (default: round-robin over addresses,\n"
    "                        least-in-flight among the agents of a tunnel:NAME)\n"
    "  --health-check PATH|off  GET PATH on each backend every interval, by one worker;\n"
    "                        2xx/3xx passes (default off)\n"
    "  --health-interval D   100ms..1h (default 5s)  --health-timeout D (default 2s)\n"
    "  --health-rise N       passes in a row that bring it back (1..100, default 2)\n"
    "  --health-fall N       failures in a row that take it out (1..100, default 3)\n"
    "  --rate R              requests per client: 10r/s, 600r/m; off: none; default:\n"
    "                        haloyd.conf's rate_limit (429 and Retry-After past it)\n"
    "  --burst N             requests over the rate that wait for their turn (default 0)\n"
    "  --nodelay             the burst passes at once (given with --rate, else it waits)\n"
    "  --proto P             how backends are spoken to: http1 (default), h2c\n"
    "                        (HTTP/2 without TLS), https (HTTP/1.1 over TLS), h2\n"
    "  --backend-ca FILE     CA certificates (PEM) that backend certificates must\n"
    "                        chain to (default, or '': the system roots)\n"
    "  --backend-sni NAME    server name sent to backends and checked in their\n"
    "                        certificate (default: none; their address is checked)\n"
    "  --backend-verify on|off  check backend certificates (default on; off is INSECURE)\n"
    "  the --backend-ca, --backend-sni and --backend-verify settings need --proto\n"
    "  https or h2.\n"
    "  --backend-proxy-protocol v1|v2|off\n"
    "                        each backend connection begins with a PROXY header naming\n"
    "                        the client (default off; --proto http1 or https only)\n"
    "  --challenge C         ACME challenge: http-01, tls-alpn-01 or dns-01 (default:\n"
    "                        dns-01 for a wildcard, tls-alpn-01 when haloyd has\n"
    "                        no listen_http)\n"
    "  --strip-prefix on|off a path-prefix route (NAME is host/prefix): its backend\n"
    "                        gets /api/x as /x (default off)\n"
    "  D is 500ms, 30s, 2m, 1h (a bare number is seconds); the value default\n"
    "  goes back to haloyd.conf's setting (or the built-in one).\n"
    "\n"
    "cert import: CHAIN.pem holds the certificate then its intermediates, KEY.pem\n"
    "its unencrypted private key (ECDSA P-256 or RSA); the certificate must cover\n"
    "DOMAIN and be valid now (--force imports an expired one).\n"
    "\n"
    "NAME is a host name (\"*.example.com\" matches one label); BACKEND is\n"
    "IP:PORT, [IPv6]:PORT, HOST:PORT (a DNS name the daemon resolves and\n"
    "follows), unix:/PATH (a unix socket, path under 108 bytes) or\n"
    "tunnel:NAME (a reverse tunnel's agents). A change is served by every\n"
    "worker when the command returns 0.\n"
    "\n"
    "exit status:\n"
    "  0  done\n"
    "  1  the daemon failed to do it (see its log)\n"
    "  2  bad command line\n"
    "  3  the daemon is not reachable\n"
    "  4  permission denied: be root or join the haloyd-admin group\n"
    "  5  no such route, alias or backend\n"
    "  6  the name or backend already exists\n"
    "  7  invalid host name, address or value\n"
    "  8  timed out: not every worker confirmed in time\n";

void
cmdline_usage(FILE *f)
{
	fputs(usage_text, f);
}

static int
cmdline_error(struct cmdline *cl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cmdline_error(struct cmdline *cl, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cl->error, sizeof(cl->error), fmt, ap);
	va_end(ap);
	return code;
}

/* --- options */

enum opt_id {
	OPT_SOCKET, OPT_JSON, OPT_HELP, OPT_VERSION, OPT_ALIAS, OPT_BACKEND, OPT_SETTING, OPT_RENAMED,
	OPT_NODELAY,
	OPT_CERT, OPT_KEY, OPT_FORCE, OPT_ROUTE, OPT_BACKEND_SNI, OPT_BACKEND_CA, OPT_DRY_RUN,
	OPT_PRUNE, OPT_HEALTH_CHECK,
};

static const struct opt {
	const char *name;	/* long form, without "--" */
	char letter;		/* short form, 0 for none */
	int has_arg;
	enum opt_id id;
} opts[] = {
	{ "socket", 's', 1, OPT_SOCKET },
	{ "json", 0, 0, OPT_JSON },
	{ "help", 'h', 0, OPT_HELP },
	{ "version", 0, 0, OPT_VERSION },
	{ "alias", 0, 1, OPT_ALIAS },
	{ "backend", 0, 1, OPT_BACKEND },
	{ "connect-timeout", 0, 1, OPT_SETTING },
	{ "response-timeout", 0, 1, OPT_SETTING },
	{ "idle-timeout", 0, 1, OPT_SETTING },
	{ "upgrade-timeout", 0, 1, OPT_SETTING },
	{ "tunnel-timeout", 0, 1, OPT_RENAMED },	/* "tunnel" now means reverse tunnels */
	{ "max-body", 0, 1, OPT_SETTING },
	{ "https-redirect", 0, 1, OPT_SETTING },
	{ "hsts", 0, 1, OPT_SETTING },
	{ "compress", 0, 1, OPT_SETTING },
	{ "cache", 0, 1, OPT_SETTING },
	{ "cache-max-object", 0, 1, OPT_SETTING },
	{ "cache-debug", 0, 1, OPT_SETTING },
	{ "balance", 0, 1, OPT_SETTING },
	{ "rate", 0, 1, OPT_SETTING },
	{ "burst", 0, 1, OPT_SETTING },
	{ "nodelay", 0, 0, OPT_NODELAY },
	{ "proto", 0, 1, OPT_SETTING },
	{ "backend-verify", 0, 1, OPT_SETTING },
	{ "backend-sni", 0, 1, OPT_BACKEND_SNI },
	{ "backend-ca", 0, 1, OPT_BACKEND_CA },
	{ "challenge", 0, 1, OPT_SETTING },
	{ "backend-proxy-protocol", 0, 1, OPT_SETTING },
	{ "strip-prefix", 0, 1, OPT_SETTING },
	{ "health-check", 0, 1, OPT_HEALTH_CHECK },
	{ "health-interval", 0, 1, OPT_SETTING },
	{ "health-timeout", 0, 1, OPT_SETTING },
	{ "health-rise", 0, 1, OPT_SETTING },
	{ "health-fall", 0, 1, OPT_SETTING },
	{ "cert", 0, 1, OPT_CERT },
	{ "key", 0, 1, OPT_KEY },
	{ "force", 0, 0, OPT_FORCE },
	{ "dry-run", 0, 0, OPT_DRY_RUN },
	{ "prune", 0, 0, OPT_PRUNE },
	{ "route", 0, 1, OPT_ROUTE },
};

/* Finds the option arg names; *inline_val is its "=value" or "-sVALUE" part. */
static const struct opt *
opt_find(const char *arg, const char **inline_val)
{
	size_t i, n;

	*inline_val = NULL;
	for (i = 0; i < ARRAY_LEN(opts); i++) {
		if (arg[1] == '-') {
			n = strlen(opts[i].name);
			if (strncmp(arg + 2, opts[i].name, n) != 0 ||
			    (arg[2 + n] != '\0' && (arg[2 + n] != '=' || !opts[i].has_arg)))
				continue;
			if (arg[2 + n] == '=')
				*inline_val = arg + 3 + n;
			return &opts[i];
		}
		if (opts[i].letter != 0 && arg[1] == opts[i].letter) {
			if (arg[2] != '\0' && !opts[i].has_arg)
				continue;
			if (arg[2] != '\0')
				*inline_val = arg + 2;
			return &opts[i];
		}
	}
	return NULL;
}

static int
opt_list_add(struct cmdline *cl, const char **list, size_t *n, const char *val, const char *what)
{
	if (*n >= CMDLINE_MAX_LIST)
		return cmdline_error(cl, CTL_EUSAGE, "at most %d %s per route", CMDLINE_MAX_LIST, what);
	list[(*n)++] = val;
	return CTL_OK;
}

static int
setting_find(const struct cmdline *cl, const char *option)
{
	size_t i;

	for (i = 0; i < cl->nsettings; i++)
		if (strcmp(cl->settings[i].option, option) == 0)
			return 1;
	return 0;
}

/* Keeps a route set option; a repeated one keeps its last value. */
static int
opt_setting_put(struct cmdline *cl, const char *option, const char *val)
{
	size_t i;

	for (i = 0; i < cl->nsettings; i++)
		if (strcmp(cl->settings[i].option, option) == 0)
			break;
	if (i == CMDLINE_MAX_SETTINGS)
		return cmdline_error(cl, CTL_EUSAGE, "too many settings");
	cl->settings[i].option = option;
	cl->settings[i].value = val;
	if (i == cl->nsettings)
		cl->nsettings++;
	return CTL_OK;
}

/*
 * A route set option: only its shape is checked here (the master parses
 * and range-checks every value, in one place).
 */
static int
opt_setting(struct cmdline *cl, const char *option, const char *val)
{
	size_t n = strlen(val);

	/* '-' inside words such as round-robin or tls-alpn-01; the master refuses a misplaced one. */
	if (n == 0 || n > CMDLINE_VALUE_MAX || strspn(val, "0123456789abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ-/") != n || val[0] == '-')
		return cmdline_error(cl, CTL_EINVAL, "--%s: invalid value '%.64s'", option, val);
	return opt_setting_put(cl, option, val);
}

/* --backend-sni: a server name, checked as the master does; '' or default clears it. */
static int
opt_backend_sni(struct cmdline *cl, const char *option, const char *val)
{
	char name[HOSTNAME_MAX + 1];

	if (val[0] != '\0' && strcmp(val, "default") != 0 &&
	    (strlen(val) > HOSTNAME_MAX || hostname_normalize_sni(val, name) == -1))
		return cmdline_error(cl, CTL_EINVAL, "--%s: invalid value '%.100s': use a host name "
		    "(no wildcard, no IP address), or default", option, val);
	return opt_setting_put(cl, option, val);
}

static int
opt_apply(struct cmdline *cl, const struct opt *o, const char *val)
{
	size_t n;

	switch (o->id) {
	case OPT_SOCKET:
		if (val[0] == '\0')
			return cmdline_error(cl, CTL_EUSAGE, "-s needs a socket path");
		cl->socket = val;
		return CTL_OK;
	case OPT_JSON:
		cl->json = 1;
		return CTL_OK;
	case OPT_HELP:
		cl->action = CMDLINE_HELP;
		return CTL_OK;
	case OPT_VERSION:
		if (cl->action != CMDLINE_HELP)
			cl->action = CMDLINE_VERSION;
		return CTL_OK;
	case OPT_ALIAS:
		return opt_list_add(cl, cl->aliases, &cl->naliases, val, "aliases");
	case OPT_BACKEND:
		return opt_list_add(cl, cl->backends, &cl->nbackends, val, "backends");
	case OPT_SETTING:
		return opt_setting(cl, o->name, val);
	case OPT_NODELAY:
		return opt_setting_put(cl, o->name, "on");
	case OPT_BACKEND_SNI:
		return opt_backend_sni(cl, o->name, val);
	case OPT_HEALTH_CHECK:
		/* A request-target (/healthz?full=1): visible ASCII; the master checks the rest. */
		for (n = 0; val[n] > ' ' && val[n] < 0x7f; n++)
			;
		if (n == 0 || val[n] != '\0' || n > CMDLINE_VALUE_MAX)
			return cmdline_error(cl, CTL_EINVAL, "--%s: invalid value '%.64s'", o->name, val);
		return opt_setting_put(cl, o->name, val);
	case OPT_BACKEND_CA:
		/* The file is read when the request is made (encode_settings). */
		return opt_setting_put(cl, o->name, val);
	case OPT_RENAMED:
		fprintf(stderr, "haloyd-ctl: --%s is now --upgrade-timeout; the old name still works\n",
		    o->name);
		return opt_setting(cl, "upgrade-timeout", val);
	case OPT_CERT:
		cl->cert_file = val;
		return CTL_OK;
	case OPT_KEY:
		cl->key_file = val;
		return CTL_OK;
	case OPT_ROUTE:
		cl->route = val;
		return CTL_OK;
	case OPT_FORCE:
		cl->force = 1;
		return CTL_OK;
	case OPT_DRY_RUN:
		cl->apply_flags |= MSG_APPLY_DRY_RUN;
		return CTL_OK;
	case OPT_PRUNE:
		cl->apply_flags |= MSG_APPLY_PRUNE;
		return CTL_OK;
	}
	return CTL_EUSAGE;
}

/* Sorts argv into options (applied) and command words (kept in order). */
static int
cmdline_scan(struct cmdline *cl, int argc, char *const argv[])
{
	const struct opt *o;
	const char *val;
	int i, rc, words_only = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (words_only || a[0] != '-' || a[1] == '\0') {
			if (cl->nwords >= CMDLINE_MAX_WORDS)
				return cmdline_error(cl, CTL_EUSAGE, "too many arguments (see haloyd-ctl help)");
			cl->words[cl->nwords++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			words_only = 1;
			continue;
		}
		if ((o = opt_find(a, &val)) == NULL)
			return cmdline_error(cl, CTL_EUSAGE, "unknown option '%.100s' (see haloyd-ctl help)", a);
		if (o->has_arg && val == NULL) {
			if (i + 1 >= argc)
				return cmdline_error(cl, CTL_EUSAGE, "%.100s needs a value", a);
			val = argv[++i];
		}
		if ((rc = opt_apply(cl, o, val)) != CTL_OK)
			return rc;
	}
	return CTL_OK;
}

/* --- commands */

static const struct cmd_spec *
cmd_find(struct cmdline *cl, size_t *nused)
{
	const char *w = cl->words[0], *sub = cl->nwords > 1 ? cl->words[1] : NULL;
	int known = 0;
	size_t i;

	for (i = 0; i < ARRAY_LEN(cmd_specs); i++) {
		if (strcmp(cmd_specs[i].word, w) != 0)
			continue;
		known = 1;
		if (cmd_specs[i].sub == NULL) {
			*nused = 1;
			return &cmd_specs[i];
		}
		if (sub != NULL && strcmp(cmd_specs[i].sub, sub) == 0) {
			*nused = 2;
			return &cmd_specs[i];
		}
	}
	if (!known)
		cmdline_error(cl, CTL_EUSAGE, "unknown command '%.100s' (see haloyd-ctl help)", w);
	else if (sub == NULL)
		cmdline_error(cl, CTL_EUSAGE, "'%s' needs a subcommand (see haloyd-ctl help)", w);
	else
		cmdline_error(cl, CTL_EUSAGE, "unknown subcommand '%s %.100s' (see haloyd-ctl help)", w, sub);
	return NULL;
}

static size_t
spec_nargs(const struct cmd_spec *s)
{
	size_t n = 0;

	while (n < ARRAY_LEN(s->args) && s->args[n] != ARG_END)
		n++;
	return n;
}

/* Writes one checked, normalised argument to w. */
static int
arg_encode(struct cmdline *cl, struct wbuf *w, enum arg_kind kind, const char *raw)
{
	char name[HOSTNAME_MAX + 1], be[BEADDR_STR_MAX], err[300];
	struct beaddr ba;

	if (kind == ARG_URL) {
		if (strlen(raw) >= MSG_STR_MAX ||
		    (strncmp(raw, "http://", 7) != 0 && strncmp(raw, "https://", 8) != 0))
			return cmdline_error(cl, CTL_EINVAL, "'%.200s' is not an http:// or https:// "
			    "URL", raw);
		wb_str(w, raw);
		return CTL_OK;
	}
	if (kind == ARG_NAME) {
		/* A route may be host/prefix; where a prefix has no place the master refuses it. */
		if (strlen(raw) >= MSG_STR_MAX)
			return cmdline_error(cl, CTL_EINVAL, "invalid host name '%.253s'", raw);
		if (pathprefix_route_name(raw, name, err, sizeof(err)) == -1)
			return cmdline_error(cl, CTL_EINVAL, "%s", err);
		wb_str(w, name);
		return CTL_OK;
	}
	if (strlen(raw) >= MSG_STR_MAX)
		return cmdline_error(cl, CTL_EINVAL, "invalid backend '%.100s...': too long", raw);
	if (beaddr_parse(raw, &ba, err, sizeof(err)) == -1)
		return cmdline_error(cl, CTL_EINVAL, "%s", err);
	if (beaddr_format(&ba, be, sizeof(be)) == -1)
		return cmdline_error(cl, CTL_EINVAL, "invalid backend '%.100s'", raw);
	wb_str(w, be);
	return CTL_OK;
}

static int encode_settings(struct cmdline *cl, struct wbuf *w);
static int encode_cache_purge(struct cmdline *cl, struct wbuf *w, const char *const *args);

/*
 * route add: str name; u16 n; n aliases; u16 m; m backends (the first one
 * positional); u16 k; k settings (only the backend ones get this far).
 */
static int
encode_route_add(struct cmdline *cl, struct wbuf *w, const char *const *args)
{
	size_t i;
	int rc;

	if ((rc = arg_encode(cl, w, ARG_NAME, args[0])) != CTL_OK)
		return rc;
	wb_u16(w, (uint16_t)cl->naliases);
	for (i = 0; i < cl->naliases; i++)
		if ((rc = arg_encode(cl, w, ARG_NAME, cl->aliases[i])) != CTL_OK)
			return rc;
	if (cl->nbackends + 1 > CMDLINE_MAX_LIST)
		return cmdline_error(cl, CTL_EUSAGE, "at most %d backends per route", CMDLINE_MAX_LIST);
	wb_u16(w, (uint16_t)(cl->nbackends + 1));
	if ((rc = arg_encode(cl, w, ARG_BACKEND, args[1])) != CTL_OK)
		return rc;
	for (i = 0; i < cl->nbackends; i++)
		if ((rc = arg_encode(cl, w, ARG_BACKEND, cl->backends[i])) != CTL_OK)
			return rc;
	return encode_settings(cl, w);
}

/* route set: str name; then the settings. */
static int
encode_route_set(struct cmdline *cl, struct wbuf *w, const char *const *args)
{
	int rc;

	if ((rc = arg_encode(cl, w, ARG_NAME, args[0])) != CTL_OK)
		return rc;
	return encode_settings(cl, w);
}

/*
 * Reads a PEM file of at most max bytes into buf (max + 1 bytes). The
 * daemon never opens the operator's files: their text travels in the request.
 */
static int
read_pem(struct cmdline *cl, const char *path, size_t max, char *buf)
{
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return cmdline_error(cl, CTL_EINVAL, "cannot read %.200s: %s", path, strerror(errno));
	while (n <= max && (r = read(fd, buf + n, max + 1 - n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			close(fd);
			return cmdline_error(cl, CTL_EINVAL, "cannot read %.200s: %s", path,
			    strerror(errno));
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > max)
		return cmdline_error(cl, CTL_EINVAL, "%.200s: larger than %zu bytes", path, max);
	if (n == 0 || memchr(buf, '\0', n) != NULL)
		return cmdline_error(cl, CTL_EINVAL, "%.200s: not a PEM file", path);
	buf[n] = '\0';
	return CTL_OK;
}

/*
 * u16 n; n x (str key; str value), key as in haloyd.conf. --backend-ca's
 * file is read here and its text sent; '' or default sends "default".
 */
static int
encode_settings(struct cmdline *cl, struct wbuf *w)
{
	static char pem[MSG_PEM_CA_MAX + 1];
	const char *val;
	char key[64];
	size_t i, j;
	int rc;

	wb_u16(w, (uint16_t)cl->nsettings);
	for (i = 0; i < cl->nsettings; i++) {
		util_strlcpy(key, cl->settings[i].option, sizeof(key));
		for (j = 0; key[j] != '\0'; j++)
			if (key[j] == '-')
				key[j] = '_';
		val = cl->settings[i].value;
		if (strcmp(key, "backend_ca") == 0 && val[0] != '\0' && strcmp(val, "default") != 0) {
			if ((rc = read_pem(cl, val, MSG_PEM_CA_MAX, pem)) != CTL_OK)
				return rc;
			val = pem;
		} else if (val[0] == '\0')
			val = "default";
		wb_str(w, key);
		wb_str(w, val);
	}
	return CTL_OK;
}

/* cert import: str domain; str chain PEM; str key PEM; u8 force. */
static int
encode_cert_import(struct cmdline *cl, struct wbuf *w, const char *const *args)
{
	static char chain[MSG_PEM_CHAIN_MAX + 1], key[MSG_PEM_KEY_MAX + 1];
	int rc;

	if ((rc = arg_encode(cl, w, ARG_NAME, args[0])) != CTL_OK ||
	    (rc = read_pem(cl, cl->cert_file, MSG_PEM_CHAIN_MAX, chain)) != CTL_OK ||
	    (rc = read_pem(cl, cl->key_file, MSG_PEM_KEY_MAX, key)) != CTL_OK)
		goto out;
	wb_str(w, chain);
	wb_str(w, key);
	wb_u8(w, (uint8_t)cl->force);
out:
	explicit_bzero(key, sizeof(key));
	return rc;
}

static int
cmdline_encode(struct cmdline *cl, const struct cmd_spec *s, const char *const *args)
{
	struct wbuf w;
	size_t i;
	int rc = CTL_OK;

	wb_init(&w, cl->payload, sizeof(cl->payload));
	if (s->type == MSG_C_ROUTE_ADD)
		rc = encode_route_add(cl, &w, args);
	else if (s->type == MSG_C_ROUTE_SET)
		rc = encode_route_set(cl, &w, args);
	else if (s->type == MSG_C_CERT_IMPORT)
		rc = encode_cert_import(cl, &w, args);
	else if (s->type == MSG_C_APPLY)
		rc = cmdapply_encode(cl, &w, args[0]);
	else if (s->type == MSG_C_CACHE_PURGE)
		rc = encode_cache_purge(cl, &w, args);
	else if ((s->extra & EXTRA_OPT_ARG) && args[0] == NULL)
		wb_str(&w, "");
	else
		for (i = 0; i < spec_nargs(s) && rc == CTL_OK; i++)
			rc = arg_encode(cl, &w, s->args[i], args[i]);
	if (rc != CTL_OK)
		return rc;
	if (w.bad)
		return cmdline_error(cl, CTL_EUSAGE, "the arguments are too long");
	cl->len = w.len;
	return CTL_OK;
}

/* cache purge: str URL or ""; str route or "": one of them. */
static int
encode_cache_purge(struct cmdline *cl, struct wbuf *w, const char *const *args)
{
	char name[HOSTNAME_MAX + 1];
	int rc;

	if ((args[0] == NULL) == (cl->route == NULL))
		return cmdline_error(cl, CTL_EUSAGE, "cache purge takes a URL or --route NAME");
	if (args[0] != NULL) {
		if ((rc = arg_encode(cl, w, ARG_URL, args[0])) != CTL_OK)
			return rc;
		wb_str(w, "");
		return CTL_OK;
	}
	if (strlen(cl->route) >= MSG_STR_MAX || hostname_normalize_name(cl->route, name) == -1)
		return cmdline_error(cl, CTL_EINVAL, "invalid host name '%.253s'", cl->route);
	wb_str(w, "");
	wb_str(w, name);
	return CTL_OK;
}

/*
 * The settings route add takes too: how the backends are spoken to, the ACME challenge,
 * and a path-prefix route's --strip-prefix.
 */
static int
setting_is_backend(const char *option)
{
	return strcmp(option, "proto") == 0 || strncmp(option, "backend-", 8) == 0 ||
	    strcmp(option, "challenge") == 0 || strcmp(option, "strip-prefix") == 0;
}

int
cmdline_parse(struct cmdline *cl, int argc, char *const argv[])
{
	const struct cmd_spec *s;
	size_t used, want;
	int i, rc;

	memset(cl, 0, sizeof(*cl));
	cl->send_fd = -1;
	/* Known before any error, so that error can answer in JSON too. */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			cl->json = 1;
	if ((rc = cmdline_scan(cl, argc, argv)) != CTL_OK || cl->action != CMDLINE_RUN)
		return rc;
	if (cl->nwords == 0)
		return cmdline_error(cl, CTL_EUSAGE, "no command (see haloyd-ctl help)");
	if (strcmp(cl->words[0], "help") == 0 && cl->nwords == 1) {
		cl->action = CMDLINE_HELP;
		return CTL_OK;
	}
	if ((s = cmd_find(cl, &used)) == NULL)
		return CTL_EUSAGE;
	want = spec_nargs(s);
	if (cl->nwords - used != want && !((s->extra & EXTRA_OPT_ARG) && cl->nwords - used + 1 == want))
		return cmdline_error(cl, CTL_EUSAGE, "'%s%s%s' takes %zu argument%s, not %zu (see haloyd-ctl help)",
		    s->word, s->sub ? " " : "", s->sub ? s->sub : "", want, want == 1 ? "" : "s",
		    cl->nwords - used);
	if (cl->route != NULL && !(s->extra & EXTRA_ROUTE))
		return cmdline_error(cl, CTL_EUSAGE, "--route goes with 'cache purge' only");
	if ((cl->naliases > 0 || cl->nbackends > 0) && !(s->extra & EXTRA_LISTS))
		return cmdline_error(cl, CTL_EUSAGE, "--alias and --backend go with 'route add' only");
	for (i = 0; i < (int)cl->nsettings; i++)
		if (!(s->extra & EXTRA_SETTINGS) && !((s->extra & EXTRA_BACKEND) &&
		    setting_is_backend(cl->settings[i].option)))
			return cmdline_error(cl, CTL_EUSAGE, "--%s goes with 'route set'%s only",
			    cl->settings[i].option, setting_is_backend(cl->settings[i].option) ?
			    " and 'route add'" : "");
	/* As nginx's limit_req: a rate given without --nodelay delays its burst. */
	if (setting_find(cl, "rate") && !setting_find(cl, "nodelay") &&
	    opt_setting_put(cl, "nodelay", "off") != CTL_OK)
		return CTL_EUSAGE;
	if (cl->nsettings == 0 && (s->extra & EXTRA_SETTINGS))
		return cmdline_error(cl, CTL_EUSAGE, "'route set' needs a setting such as "
		    "--response-timeout 5m (see haloyd-ctl help)");
	if ((cl->cert_file != NULL || cl->key_file != NULL || cl->force) && !(s->extra & EXTRA_CERT))
		return cmdline_error(cl, CTL_EUSAGE, "--cert, --key and --force go with 'cert import' only");
	if (cl->apply_flags != 0 && !(s->extra & EXTRA_APPLY))
		return cmdline_error(cl, CTL_EUSAGE, "--dry-run and --prune go with 'apply' only");
	if ((s->extra & EXTRA_CERT) && (cl->cert_file == NULL || cl->key_file == NULL))
		return cmdline_error(cl, CTL_EUSAGE,
		    "'cert import' needs --cert CHAIN.pem and --key KEY.pem");
	cl->type = s->type;
	cl->shape = s->shape;
	return cmdline_encode(cl, s, cl->words + used);
}
