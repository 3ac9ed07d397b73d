/*
 * haloyd-ctl's output: the daemon's ROW replies decoded into fields, and
 * every answer printed as text (a table, "key: value" blocks, one line) or
 * as JSON. Nothing here touches a socket, so the unit tests drive it with
 * in-memory rows and FILE streams.
 */
#ifndef HALOYD_CTL_OUTPUT_H
#define HALOYD_CTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OUTPUT_MAX_FIELDS 64		/* per row */
#define OUTPUT_MAX_ROWS 10000000	/* per answer */

/* How an answer made of rows is shown. */
enum output_shape {
	OUTPUT_NONE = 0,	/* the command answers OK, not rows */
	OUTPUT_TABLE,		/* route list: a table / a JSON array */
	OUTPUT_OBJECT,		/* route show: "key: value" lines / one JSON object */
	OUTPUT_STATUS,		/* status: master and worker blocks */
	OUTPUT_LINES,		/* export, apply: rows of one "line" (its pieces) / a JSON array */
	OUTPUT_SUMMARY,		/* cache stats: blocks / the first row's object with the
				 * other rows as its "routes" array */
};

struct output_field {
	char *key;
	uint8_t kind;		/* enum msg_field_kind */
	char *str;		/* FIELD_STR */
	int64_t num;		/* FIELD_INT */
	char **list;		/* FIELD_LIST */
	uint16_t nlist;
};

struct output_row {
	struct output_field *fields;
	uint16_t nfields;
};

struct output_rows {
	struct output_row *v;
	size_t n, cap;
};

/*
 * Decodes one MSG_C_ROW payload and appends it. Returns 0, or -1 when the
 * payload is malformed (rows is unchanged) or memory ran out.
 */
int output_rows_add(struct output_rows *rows, const void *buf, size_t len);
void output_rows_free(struct output_rows *rows);

/* The field named key in row, or NULL. */
const struct output_field *output_row_get(const struct output_row *row, const char *key);

/* Prints an answer made of rows in the given shape. */
void output_rows_print(FILE *f, int json, enum output_shape shape, const struct output_rows *rows);

/*
 * OK after rows of lines (apply's changes): the lines, then the message;
 * in JSON one object with the lines as "changes".
 */
void output_ok_lines(FILE *f, int json, uint32_t gen, const char *message,
    const struct output_rows *rows);

/* OK: the message and the generation every worker serves. */
void output_ok(FILE *f, int json, uint32_t gen, const char *message);

/*
 * A failure: one "haloyd-ctl: REASON" line on err and, with json, an
 * {"ok":false,...} object on out.
 */
void output_fail(FILE *out, FILE *err, int json, int code, const char *reason);

/* s as a JSON string literal: escaped, invalid UTF-8 replaced by U+FFFD. */
void output_json_str(FILE *f, const char *s);

/* s with control characters shown as '?', so a peer cannot drive the terminal. */
void output_text(FILE *f, const char *s);

#endif
