/*
 * haloyd-tunnel's settings: the command line and the `key value` file the
 * systemd template passes with --config (same names as the flags; a flag
 * wins over the file). Parsing only: files are checked by agenttls.c.
 */
#ifndef HALOYD_AGENT_AGENTCONF_H
#define HALOYD_AGENT_AGENTCONF_H

#include <stddef.h>
#include <stdint.h>

#define AGENTCONF_PATH_MAX 4096
#define AGENTCONF_HOST_MAX 255		/* a DNS name */
#define AGENTCONF_CONNS_MAX 64		/* tunnels kept by one agent */
#define AGENTCONF_LINE_MAX 8192		/* a config file line */
#define AGENTCONF_FILE_MAX (256 * 1024)	/* a config file: a handful of lines */

struct agentconf {
	char proxy_host[AGENTCONF_HOST_MAX + 1];
	char proxy_port[8];
	char app_host[AGENTCONF_HOST_MAX + 1];
	char app_port[8];
	char cert[AGENTCONF_PATH_MAX];
	char key[AGENTCONF_PATH_MAX];
	char ca[AGENTCONF_PATH_MAX];		/* "" = the system roots */
	char sni[AGENTCONF_HOST_MAX + 1];	/* "" = the proxy's host (unless an address) */
	char config[AGENTCONF_PATH_MAX];
	unsigned conns;
	uint64_t drain_ms;		/* SIGTERM: how long in-flight streams may take */
	uint64_t app_timeout_ms;	/* the app's response head: else 504 */
	uint64_t connect_timeout_ms;	/* TCP + TLS + SETTINGS toward the proxy */
	uint64_t ping_idle_ms;		/* PING after this long without a frame */
	uint64_t ping_timeout_ms;	/* no ACK within this: the tunnel is dropped */
	int verbose;
	int help;
	int version;
};

void agentconf_defaults(struct agentconf *c);
/*
 * Applies argv (after --config FILE, which is read first, when given).
 * 0, or -1 with a one-line reason in err.
 */
int agentconf_parse_args(struct agentconf *c, int argc, char **argv, char *err, size_t errlen);
/* Applies the `key value` lines of text (comments with #). 0 or -1 with err. */
int agentconf_parse_text(struct agentconf *c, const char *text, size_t len, char *err,
    size_t errlen);
/* One setting by its flag name without "--" ("proxy", "conns"...). 0 or -1 with err. */
int agentconf_set(struct agentconf *c, const char *name, const char *value, char *err,
    size_t errlen);
/* After parsing: what must be there is there. 0 or -1 with err. */
int agentconf_check(const struct agentconf *c, char *err, size_t errlen);
/* "HOST:PORT", "[V6]:PORT" (an optional http:// before it) into host and port. 0 or -1. */
int agentconf_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen);
/* The usage text. */
const char *agentconf_usage(void);

#endif
