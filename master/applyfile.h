/*
 * The file of haloyd-ctl apply and export: one line per route in
 * haloyd-ctl's own words,
 *
 *     route NAME [BACKEND]... [--alias NAME]... [--backend BACKEND]... [--SETTING VALUE]...
 *
 * '#' to the end of the line is a comment, blank lines are skipped. Every
 * --SETTING is a key of route set's table (master/commands.c) with '_'
 * written '-', and always takes a value ("--nodelay on"); a CA is the
 * base64 of its PEM text (one word, no space). A setting not written is the
 * default. This module parses and checks a whole file (names, backends,
 * values, the TLS rule, names used twice) and writes one route's line.
 */
#ifndef HALOYD_APPLYFILE_H
#define HALOYD_APPLYFILE_H

#include <stddef.h>

#include "master/store.h"
#include "share/msg.h"

#define APPLYFILE_MAX_BYTES MSG_APPLY_FILE_MAX	/* 1 000 routes need ~100 KiB; a CA ~44 KiB */
#define APPLYFILE_MAX_ROUTES 10000
#define APPLYFILE_MAX_LIST 64		/* aliases, backends per route: route add's bound */
#define APPLYFILE_LINE_MAX (128u << 10)	/* a route with 64 long aliases and a 32 KiB CA */

struct applyfile_route {
	char *name;		/* canonical, normalised */
	char **aliases;		/* normalised, sorted */
	size_t naliases;
	char **backends;	/* canonical text, in the file's order */
	size_t nbackends;
	struct store_settings set;
	unsigned line;
};

struct applyfile {
	struct applyfile_route *routes;	/* sorted by name */
	size_t n, cap;
};

/*
 * Parses text[0..len) (no NUL inside) into *af; on a bad line -1 with
 * "FILE:LINE: reason" in err (fname names the file) and *af empty.
 */
int applyfile_parse(const char *text, size_t len, const char *fname, struct applyfile *af,
    char *err, size_t errlen);
void applyfile_free(struct applyfile *af);

/*
 * Writes r's line (no newline) into a malloc'ed *out: the settings that
 * differ from the default, from route set's table. -1 with err when a word
 * cannot be written (a unix path with a space) or out of memory.
 */
int applyfile_format(const struct store_route *r, char **out, char *err, size_t errlen);

#endif
