/* haloyd-tunnel's command line and config file: one table of settings for both. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agentconf.h"
#include "share/util.h"

static const char usage_text[] =
    "usage: haloyd-tunnel --proxy HOST:PORT --cert FILE --key FILE [--ca FILE] [--sni NAME]\n"
    "                     --to HOST:PORT [--conns N] [--config FILE] [--drain-timeout DUR]\n"
    "                     [--app-timeout DUR] [--connect-timeout DUR] [--ping-idle DUR]\n"
    "                     [--ping-timeout DUR] [-v] [--help] [--version]\n";

const char *
agentconf_usage(void)
{
	return usage_text;
}

void
agentconf_defaults(struct agentconf *c)
{
	memset(c, 0, sizeof(*c));
	c->conns = 2;
	c->drain_ms = 30000;
	c->app_timeout_ms = 60000;
	c->connect_timeout_ms = 10000;
	c->ping_idle_ms = 20000;
	c->ping_timeout_ms = 10000;
}

int
agentconf_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *h = s, *hend;
	uint64_t p;

	if (strncmp(s, "http://", 7) == 0)
		h = s + 7;
	if (h[0] == '[') {
		if ((hend = strchr(h, ']')) == NULL || hend[1] != ':')
			return -1;
		colon = hend + 1;
		h++;
	} else {
		if ((colon = strrchr(h, ':')) == NULL || memchr(h, ':', (size_t)(colon - h)) != NULL)
			return -1;
		hend = colon;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen || strlen(colon + 1) >= portlen ||
	    util_parse_u64(colon + 1, 1, 65535, &p) == -1 || strpbrk(h, " /\t") != NULL)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	snprintf(port, portlen, "%u", (unsigned)p);
	return 0;
}

static int
set_path(char *dst, const char *v, const char *name, char *err, size_t errlen)
{
	if (v[0] == '\0' || strlen(v) >= AGENTCONF_PATH_MAX)
		return util_errf(err, errlen, "--%s: empty or too long a path", name);
	util_strlcpy(dst, v, AGENTCONF_PATH_MAX);
	return 0;
}

static int
set_duration(uint64_t *dst, const char *v, uint64_t min, const char *name, char *err,
    size_t errlen)
{
	uint64_t ms;

	if (util_parse_duration_ms(v, &ms) == -1 || ms < min || ms > 24ULL * 3600 * 1000)
		return util_errf(err, errlen, "--%s: '%s' is not a duration (100ms..24h)", name, v);
	*dst = ms;
	return 0;
}

static int
set_hostport(char *host, char *port, const char *v, const char *name, char *err, size_t errlen)
{
	if (agentconf_split_hostport(v, host, AGENTCONF_HOST_MAX + 1, port, 8) == -1)
		return util_errf(err, errlen, "--%s: '%s' is not HOST:PORT", name, v);
	return 0;
}

int
agentconf_set(struct agentconf *c, const char *name, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (strcmp(name, "proxy") == 0)
		return set_hostport(c->proxy_host, c->proxy_port, v, name, err, errlen);
	if (strcmp(name, "to") == 0)
		return set_hostport(c->app_host, c->app_port, v, name, err, errlen);
	if (strcmp(name, "cert") == 0)
		return set_path(c->cert, v, name, err, errlen);
	if (strcmp(name, "key") == 0)
		return set_path(c->key, v, name, err, errlen);
	if (strcmp(name, "ca") == 0)
		return set_path(c->ca, v, name, err, errlen);
	if (strcmp(name, "config") == 0)
		return set_path(c->config, v, name, err, errlen);
	if (strcmp(name, "sni") == 0) {
		if (v[0] == '\0' || strlen(v) > AGENTCONF_HOST_MAX || strpbrk(v, " /:\t") != NULL)
			return util_errf(err, errlen, "--sni: '%s' is not a host name", v);
		util_strlcpy(c->sni, v, sizeof(c->sni));
		return 0;
	}
	if (strcmp(name, "conns") == 0) {
		if (util_parse_u64(v, 1, AGENTCONF_CONNS_MAX, &n) == -1)
			return util_errf(err, errlen, "--conns: '%s' is not a number in 1..%d", v,
			    AGENTCONF_CONNS_MAX);
		c->conns = (unsigned)n;
		return 0;
	}
	if (strcmp(name, "drain-timeout") == 0)
		return set_duration(&c->drain_ms, v, 0, name, err, errlen);
	if (strcmp(name, "app-timeout") == 0)
		return set_duration(&c->app_timeout_ms, v, 100, name, err, errlen);
	if (strcmp(name, "connect-timeout") == 0)
		return set_duration(&c->connect_timeout_ms, v, 100, name, err, errlen);
	if (strcmp(name, "ping-idle") == 0)
		return set_duration(&c->ping_idle_ms, v, 100, name, err, errlen);
	if (strcmp(name, "ping-timeout") == 0)
		return set_duration(&c->ping_timeout_ms, v, 100, name, err, errlen);
	return util_errf(err, errlen, "unknown setting '%s'", name);
}

/* One line: "key value", blank, or a comment. */
static int
parse_line(struct agentconf *c, char *line, unsigned lineno, char *err, size_t errlen)
{
	char *k, *v, *end;
	char e[256];

	k = line + strspn(line, " \t");
	if (*k == '\0' || *k == '#')
		return 0;
	v = k + strcspn(k, " \t");
	if (*v == '\0')
		return util_errf(err, errlen, "line %u: '%s' has no value", lineno, k);
	*v++ = '\0';
	v += strspn(v, " \t");
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (strcmp(k, "config") == 0)
		return util_errf(err, errlen, "line %u: 'config' inside a config file", lineno);
	if (agentconf_set(c, k, v, e, sizeof(e)) == -1)
		return util_errf(err, errlen, "line %u: %s", lineno, e);
	return 0;
}

int
agentconf_parse_text(struct agentconf *c, const char *text, size_t len, char *err, size_t errlen)
{
	char line[AGENTCONF_LINE_MAX];
	size_t at = 0, n;
	unsigned lineno = 0;
	const char *nl;

	while (at < len) {
		lineno++;
		nl = memchr(text + at, '\n', len - at);
		n = nl != NULL ? (size_t)(nl - (text + at)) : len - at;
		if (n >= sizeof(line))
			return util_errf(err, errlen, "line %u: longer than %d bytes", lineno,
			    AGENTCONF_LINE_MAX - 1);
		if (memchr(text + at, '\0', n) != NULL)
			return util_errf(err, errlen, "line %u: a NUL byte", lineno);
		memcpy(line, text + at, n);
		line[n] = '\0';
		if (parse_line(c, line, lineno, err, errlen) == -1)
			return -1;
		at += n + (nl != NULL);
	}
	return 0;
}

static int
read_file(struct agentconf *c, const char *path, char *err, size_t errlen)
{
	char *text = NULL, e[300];
	ssize_t n;
	size_t len = 0;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return util_errf(err, errlen, "%s: %s", path, strerror(errno));
	if ((text = malloc(AGENTCONF_FILE_MAX)) == NULL) {
		util_errf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while ((n = read(fd, text + len, AGENTCONF_FILE_MAX - len)) > 0)
		len += (size_t)n;
	if (n == -1 || len == AGENTCONF_FILE_MAX) {
		util_errf(err, errlen, "%s: %s", path, n == -1 ? strerror(errno) : "too large");
		goto out;
	}
	if (agentconf_parse_text(c, text, len, e, sizeof(e)) == -1) {
		util_errf(err, errlen, "%s: %s", path, e);
		goto out;
	}
	rc = 0;
out:
	free(text);
	close(fd);
	return rc;
}

/* Walks argv: "--name value", "--name=value", -v, --help, --version. */
static int
walk_args(struct agentconf *c, int argc, char **argv, int only_config, char *err, size_t errlen)
{
	char name[64];
	const char *a, *v, *eq;
	int i;

	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			c->verbose = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			c->help = 1;
			continue;
		}
		if (strcmp(a, "--version") == 0) {
			c->version = 1;
			continue;
		}
		if (strncmp(a, "--", 2) != 0 || strlen(a + 2) >= sizeof(name) || a[2] == '\0')
			return util_errf(err, errlen, "unexpected argument '%s'", a);
		if ((eq = strchr(a + 2, '=')) != NULL) {
			memcpy(name, a + 2, (size_t)(eq - (a + 2)));
			name[eq - (a + 2)] = '\0';
			v = eq + 1;
		} else {
			util_strlcpy(name, a + 2, sizeof(name));
			if (i + 1 >= argc)
				return util_errf(err, errlen, "--%s needs a value", name);
			v = argv[++i];
		}
		if (only_config != (strcmp(name, "config") == 0))
			continue;
		if (agentconf_set(c, name, v, err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
agentconf_parse_args(struct agentconf *c, int argc, char **argv, char *err, size_t errlen)
{
	if (walk_args(c, argc, argv, 1, err, errlen) == -1)
		return -1;
	if (c->config[0] != '\0' && read_file(c, c->config, err, errlen) == -1)
		return -1;
	return walk_args(c, argc, argv, 0, err, errlen);
}

int
agentconf_check(const struct agentconf *c, char *err, size_t errlen)
{
	if (c->proxy_host[0] == '\0')
		return util_errf(err, errlen, "--proxy HOST:PORT is required");
	if (c->app_host[0] == '\0')
		return util_errf(err, errlen, "--to HOST:PORT is required");
	if (c->cert[0] == '\0' || c->key[0] == '\0')
		return util_errf(err, errlen,
		    "a client certificate is required: --cert FILE and --key FILE");
	return 0;
}
