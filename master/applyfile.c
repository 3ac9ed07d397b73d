/*
 * The apply/export file (see master/applyfile.h): parsing a whole file
 * into checked routes, and writing one route's line. Settings go through
 * route set's table (commands_rset_*), so this file knows no setting by
 * name; only a CA's value has a form of its own (base64, one word).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "master/applyfile.h"
#include "master/commands.h"
#include "share/beaddr.h"
#include "share/hostname.h"
#include "share/msg.h"
#include "share/pathprefix.h"
#include "share/snap.h"
#include "share/util.h"

#define SEPS " \t\r"

/* Where a parse is: the file's name and line, for "FILE:LINE: reason". */
struct pos {
	const char *fname;
	unsigned line;
	char *err;
	size_t errlen;
};

static int perr(struct pos *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
perr(struct pos *p, const char *fmt, ...)
{
	char reason[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%.100s:%u: %s", p->fname, p->line, reason);
	return -1;
}

static void
route_free(struct applyfile_route *r)
{
	size_t i;

	for (i = 0; i < r->naliases; i++)
		free(r->aliases[i]);
	for (i = 0; i < r->nbackends; i++)
		free(r->backends[i]);
	free(r->aliases);
	free(r->backends);
	free(r->name);
	free(r->set.backend_ca);
	free(r->set.backend_sni);
	free(r->set.health_path);
	memset(r, 0, sizeof(*r));
}

void
applyfile_free(struct applyfile *af)
{
	size_t i;

	for (i = 0; i < af->n; i++)
		route_free(&af->routes[i]);
	free(af->routes);
	memset(af, 0, sizeof(*af));
}

static int
list_push(struct pos *p, char ***list, size_t *n, const char *v, const char *what)
{
	if (*n == 0 && (*list = calloc(APPLYFILE_MAX_LIST, sizeof(**list))) == NULL)
		return perr(p, "out of memory");
	if (*n == APPLYFILE_MAX_LIST)
		return perr(p, "at most %d %s per route", APPLYFILE_MAX_LIST, what);
	if (((*list)[*n] = strdup(v)) == NULL)
		return perr(p, "out of memory");
	(*n)++;
	return 0;
}

static int
add_name(struct pos *p, struct applyfile_route *r, const char *raw, int canonical)
{
	char name[HOSTNAME_MAX + 1], err[300];

	/* A route's name may carry a path prefix ("example.com/api"); an alias never does. */
	if (canonical && strlen(raw) < MSG_STR_MAX &&
	    pathprefix_route_name(raw, name, err, sizeof(err)) == -1)
		return perr(p, "%s", err);
	if (!canonical && (strlen(raw) >= MSG_STR_MAX || hostname_normalize_name(raw, name) == -1))
		return perr(p, "invalid host name '%.253s'", raw);
	if (canonical && strlen(raw) >= MSG_STR_MAX)
		return perr(p, "invalid route name '%.253s...': too long", raw);
	if (!canonical && strchr(r->name, '/') != NULL)
		return perr(p, "route %s: a path-prefix route has no aliases (its host's route has "
		    "them)", r->name);
	if (!canonical)
		return list_push(p, &r->aliases, &r->naliases, name, "aliases");
	if ((r->name = strdup(name)) == NULL)
		return perr(p, "out of memory");
	return 0;
}

static int
add_backend(struct pos *p, struct applyfile_route *r, const char *raw)
{
	char be[BEADDR_STR_MAX], err[300];
	struct beaddr b;
	size_t i;

	if (strlen(raw) >= MSG_STR_MAX)
		return perr(p, "invalid backend '%.100s...': too long", raw);
	if (beaddr_parse(raw, &b, err, sizeof(err)) == -1 || beaddr_format(&b, be, sizeof(be)) == -1)
		return perr(p, "%s", err);
	for (i = 0; i < r->nbackends; i++)
		if (strcmp(r->backends[i], be) == 0)
			return perr(p, "backend %s given twice", be);
	return list_push(p, &r->backends, &r->nbackends, be, "backends");
}

/* A CA's word: the base64 of its PEM text, decoded into a new string. */
static char *
pem_decode(const char *b64)
{
	size_t n = strlen(b64), pad = 0;
	char *out;
	int got;

	if (n == 0 || n % 4 != 0 || n > 4 * ((MSG_PEM_CA_MAX + 2) / 3))
		return NULL;
	pad = (b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
	if ((out = malloc(n / 4 * 3 + 1)) == NULL)
		return NULL;
	got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad || memchr(out, '\0', (size_t)got - pad) != NULL) {
		free(out);
		return NULL;
	}
	out[(size_t)got - pad] = '\0';
	return out;
}

/* --SETTING VALUE: through route set's table. */
static int
add_setting(struct pos *p, struct applyfile_route *r, const char *opt, const char *val)
{
	char key[64], err[300], *pem = NULL;
	size_t i;
	int rc;

	if (strlen(opt) >= sizeof(key) || strlen(val) > MSG_PEM_CA_MAX * 2)
		return perr(p, "unknown setting '--%.64s'", opt);
	util_strlcpy(key, opt, sizeof(key));
	for (i = 0; key[i] != '\0'; i++)
		if (key[i] == '-')
			key[i] = '_';
	for (i = 0; i < commands_rset_count(); i++)
		if (strcmp(commands_rset_key(i), key) == 0)
			break;
	if (i == commands_rset_count())
		return perr(p, "unknown setting '--%.64s'", opt);
	if (commands_rset_is_pem(i) && strcmp(val, "default") != 0 &&
	    (pem = pem_decode(val)) == NULL)
		return perr(p, "--%s: the value is the base64 of a PEM file (base64 -w0 ca.pem)", opt);
	if (!commands_rset_is_pem(i) && strlen(val) >= MSG_STR_MAX)
		return perr(p, "--%s: the value is too long", opt);
	rc = commands_rset_put(key, pem != NULL ? pem : val, &r->set, err, sizeof(err));
	free(pem);
	if (rc == -1)
		return perr(p, "%s", err);
	return 0;
}

/* The words after "route NAME": backends and options, options anywhere. */
static int
parse_words(struct pos *p, struct applyfile_route *r, char **save)
{
	const char *w, *v;

	while ((w = strtok_r(NULL, SEPS, save)) != NULL && w[0] != '#') {
		if (strncmp(w, "--", 2) != 0) {
			if (add_backend(p, r, w) == -1)
				return -1;
			continue;
		}
		if ((v = strtok_r(NULL, SEPS, save)) == NULL || v[0] == '#')
			return perr(p, "%.64s needs a value", w);
		if (strcmp(w, "--alias") == 0) {
			if (add_name(p, r, v, 0) == -1)
				return -1;
		} else if (strcmp(w, "--backend") == 0) {
			if (add_backend(p, r, v) == -1)
				return -1;
		} else if (add_setting(p, r, w + 2, v) == -1)
			return -1;
	}
	return 0;
}

/* One line (NUL-terminated, writable): 1 with *r filled, 0 when blank, -1. */
static int
parse_line(struct pos *p, char *line, struct applyfile_route *r)
{
	char *save = NULL, err[300];
	const char *w;

	if ((w = strtok_r(line, SEPS, &save)) == NULL || w[0] == '#')
		return 0;
	if (strcmp(w, "route") != 0)
		return perr(p, "unknown line '%.64s': a line is 'route NAME BACKEND... "
		    "[--alias NAME]... [--SETTING VALUE]...'", w);
	commands_rset_defaults(&r->set);
	r->line = p->line;
	if ((w = strtok_r(NULL, SEPS, &save)) == NULL || w[0] == '#')
		return perr(p, "'route' needs a host name");
	if (add_name(p, r, w, 1) == -1 || parse_words(p, r, &save) == -1)
		return -1;
	if (commands_rset_check(&r->set, err, sizeof(err)) == -1)
		return perr(p, "route %s: %s", r->name, err);
	if ((r->set.flags & SNAP_ROUTE_STRIP_PREFIX) && strchr(r->name, '/') == NULL)
		return perr(p, "route %s: strip_prefix is only for a path-prefix route "
		    "(host/prefix)", r->name);
	return 1;
}

static int
route_cmp(const void *a, const void *b)
{
	return strcmp(((const struct applyfile_route *)a)->name,
	    ((const struct applyfile_route *)b)->name);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct name_at {
	const char *name;
	unsigned line;
};

static int
name_at_cmp(const void *a, const void *b)
{
	const struct name_at *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* Every name (canonical or alias) once in the whole file, as the store wants it. */
static int
check_names(struct pos *p, struct applyfile *af)
{
	struct name_at *v;
	size_t i, j, n = 0;
	int rc = 0;

	for (i = 0; i < af->n; i++)
		n += 1 + af->routes[i].naliases;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return perr(p, "out of memory");
	for (i = 0, n = 0; i < af->n; i++) {
		v[n++] = (struct name_at){ af->routes[i].name, af->routes[i].line };
		for (j = 0; j < af->routes[i].naliases; j++)
			v[n++] = (struct name_at){ af->routes[i].aliases[j], af->routes[i].line };
	}
	qsort(v, n, sizeof(*v), name_at_cmp);
	for (i = 1; i < n && rc == 0; i++)
		if (strcmp(v[i].name, v[i - 1].name) == 0) {
			p->line = v[i].line;
			rc = perr(p, "the name %s is already used on line %u", v[i].name, v[i - 1].line);
		}
	free(v);
	return rc;
}

static int
push_route(struct pos *p, struct applyfile *af, struct applyfile_route *r)
{
	struct applyfile_route *nv;
	size_t cap;

	if (af->n == APPLYFILE_MAX_ROUTES)
		return perr(p, "more than %d routes", APPLYFILE_MAX_ROUTES);
	if (af->n == af->cap) {
		cap = af->cap == 0 ? 64 : af->cap * 2;
		if ((nv = reallocarray(af->routes, cap, sizeof(*nv))) == NULL)
			return perr(p, "out of memory");
		af->routes = nv;
		af->cap = cap;
	}
	af->routes[af->n++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

/* Cuts text into lines, each copied into buf to be cut into words. */
static int
parse_lines(struct pos *p, const char *text, size_t len, struct applyfile *af, char *buf)
{
	struct applyfile_route r;
	const char *at = text, *end = text + len, *nl;
	size_t n;
	int rc;

	memset(&r, 0, sizeof(r));
	for (p->line = 1; at < end; p->line++, at = nl + 1) {
		if ((nl = memchr(at, '\n', (size_t)(end - at))) == NULL)
			nl = end;
		if ((n = (size_t)(nl - at)) >= APPLYFILE_LINE_MAX)
			return perr(p, "the line is longer than %u bytes", APPLYFILE_LINE_MAX);
		memcpy(buf, at, n);
		buf[n] = '\0';
		if ((rc = parse_line(p, buf, &r)) == 1)
			rc = push_route(p, af, &r);
		route_free(&r);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
applyfile_parse(const char *text, size_t len, const char *fname, struct applyfile *af,
    char *err, size_t errlen)
{
	struct pos p = { fname, 0, err, errlen };
	size_t i;
	char *buf;
	int rc = -1;

	memset(af, 0, sizeof(*af));
	if (len > APPLYFILE_MAX_BYTES || memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "%.100s: not a text file of at most %u bytes", fname,
		    APPLYFILE_MAX_BYTES);
		return -1;
	}
	if ((buf = malloc(APPLYFILE_LINE_MAX)) == NULL) {
		snprintf(err, errlen, "%.100s: out of memory", fname);
		return -1;
	}
	if (parse_lines(&p, text, len, af, buf) == 0 && check_names(&p, af) == 0) {
		if (af->n > 1)
			qsort(af->routes, af->n, sizeof(*af->routes), route_cmp);
		for (i = 0; i < af->n; i++)
			if (af->routes[i].naliases > 1)
				qsort(af->routes[i].aliases, af->routes[i].naliases, sizeof(char *),
				    str_cmp);
		rc = 0;
	}
	free(buf);
	if (rc == -1)
		applyfile_free(af);
	return rc;
}

/* --- writing a line */

struct sbuf {
	char *p;
	size_t len, cap;
	int bad;
};

static void
sb_word(struct sbuf *b, const char *pre, const char *w)
{
	size_t n = strlen(pre) + strlen(w) + 1, cap;
	char *np;

	if (b->bad)
		return;
	if (strpbrk(w, SEPS "\n") != NULL || w[0] == '#' || w[0] == '\0') {
		b->bad = 2;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		cap = (b->len + n + 1) * 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->bad = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	b->len += (size_t)snprintf(b->p + b->len, b->cap - b->len, "%s%s%s", b->len ? " " : "",
	    pre, w);
}

/* " --key value" for every setting of r that differs from its default. */
static void
format_settings(struct sbuf *b, const struct store_route *r)
{
	char key[72], v[320], *enc;
	const char *pem;
	size_t i, j, n;

	for (i = 0; i < commands_rset_count(); i++) {
		if (!commands_rset_value(i, &r->set, v, sizeof(v), 0))
			continue;
		snprintf(key, sizeof(key), "--%s", commands_rset_key(i));
		for (j = 2; key[j] != '\0'; j++)
			if (key[j] == '_')
				key[j] = '-';
		sb_word(b, "", key);
		if ((pem = commands_rset_pem(i, &r->set)) == NULL) {
			sb_word(b, "", v);
			continue;
		}
		n = strlen(pem);
		if ((enc = malloc(4 * ((n + 2) / 3) + 1)) == NULL) {
			b->bad = 1;
			return;
		}
		EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)pem, (int)n);
		sb_word(b, "", enc);
		free(enc);
	}
}

int
applyfile_format(const struct store_route *r, char **out, char *err, size_t errlen)
{
	struct sbuf b = { NULL, 0, 0, 0 };
	size_t i;

	sb_word(&b, "route ", r->name);
	for (i = 0; i < r->nbackends; i++)
		sb_word(&b, "", r->backends[i]);
	for (i = 0; i < r->naliases; i++)
		sb_word(&b, "--alias ", r->aliases[i]);
	format_settings(&b, r);
	if (b.bad) {
		free(b.p);
		snprintf(err, errlen, "route %s: %s", r->name, b.bad == 2 ? "a backend or value "
		    "holds a space or starts with '#', which the file cannot hold" : "out of memory");
		return -1;
	}
	*out = b.p;
	return 0;
}
