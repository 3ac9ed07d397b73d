/*
 * haloyd-ctl's output: ROW payloads decoded (bounded by the cursor) into
 * fields, and every kind of answer printed as text or JSON. Strings from the
 * daemon are printed through output_text()/output_json_str() only, so they
 * can neither drive the terminal nor break the JSON.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/output.h"
#include "share/cursor.h"
#include "share/msg.h"

static void
field_free(struct output_field *fl)
{
	uint16_t i;

	free(fl->key);
	free(fl->str);
	for (i = 0; fl->list != NULL && i < fl->nlist; i++)
		free(fl->list[i]);
	free(fl->list);
}

static void
row_free(struct output_row *row)
{
	uint16_t i;

	for (i = 0; i < row->nfields; i++)
		field_free(&row->fields[i]);
	free(row->fields);
}

static char *
read_str(struct cur *c)
{
	char buf[MSG_STR_MAX + 1];

	if (cur_str(c, buf, sizeof(buf)) == -1)
		return NULL;
	return strdup(buf);
}

static int
field_decode(struct cur *c, struct output_field *fl)
{
	uint16_t i;

	if ((fl->key = read_str(c)) == NULL)
		return -1;
	fl->kind = cur_u8(c);
	switch (fl->kind) {
	case FIELD_STR:
		return (fl->str = read_str(c)) == NULL ? -1 : 0;
	case FIELD_INT:
		fl->num = (int64_t)cur_u64(c);
		return c->bad ? -1 : 0;
	case FIELD_LIST:
		fl->nlist = cur_u16(c);
		/* Each string takes at least its 2-byte length: no huge calloc. */
		if (c->bad || fl->nlist > c->left / 2)
			return -1;
		if ((fl->list = calloc(fl->nlist + 1u, sizeof(*fl->list))) == NULL)
			return -1;
		for (i = 0; i < fl->nlist; i++)
			if ((fl->list[i] = read_str(c)) == NULL)
				return -1;
		return 0;
	default:
		return -1;
	}
}

static int
rows_grow(struct output_rows *rows)
{
	struct output_row *v;
	size_t cap;

	if (rows->n < rows->cap)
		return 0;
	cap = rows->cap ? rows->cap * 2 : 16;
	if ((v = reallocarray(rows->v, cap, sizeof(*v))) == NULL)
		return -1;
	rows->v = v;
	rows->cap = cap;
	return 0;
}

int
output_rows_add(struct output_rows *rows, const void *buf, size_t len)
{
	struct output_row row = { NULL, 0 };
	struct cur c;
	uint16_t i, n;

	if (rows->n >= OUTPUT_MAX_ROWS)
		return -1;
	cur_init(&c, buf, len);
	n = cur_u16(&c);
	if (c.bad || n == 0 || n > OUTPUT_MAX_FIELDS)
		return -1;
	if ((row.fields = calloc(n, sizeof(*row.fields))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		row.nfields++;
		if (field_decode(&c, &row.fields[i]) == -1)
			goto fail;
	}
	if (cur_end(&c) == -1 || rows_grow(rows) == -1)
		goto fail;
	rows->v[rows->n++] = row;
	return 0;
fail:
	row_free(&row);
	return -1;
}

void
output_rows_free(struct output_rows *rows)
{
	size_t i;

	for (i = 0; i < rows->n; i++)
		row_free(&rows->v[i]);
	free(rows->v);
	rows->v = NULL;
	rows->n = rows->cap = 0;
}

const struct output_field *
output_row_get(const struct output_row *row, const char *key)
{
	uint16_t i;

	for (i = 0; i < row->nfields; i++)
		if (strcmp(row->fields[i].key, key) == 0)
			return &row->fields[i];
	return NULL;
}

/* --- text */

void
output_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
	}
}

/* Bytes the value takes as text; 0 when it is empty. */
static size_t
raw_width(const struct output_field *fl)
{
	char num[24];
	size_t w = 0;
	uint16_t i;

	switch (fl->kind) {
	case FIELD_STR:
		w = strlen(fl->str);
		break;
	case FIELD_INT:
		w = (size_t)snprintf(num, sizeof(num), "%" PRId64, fl->num);
		break;
	case FIELD_LIST:
		for (i = 0; i < fl->nlist; i++)
			w += strlen(fl->list[i]) + (i > 0);
		break;
	}
	return w;
}

/* Missing and empty values print as "-" so a table keeps its columns. */
static size_t
field_width(const struct output_field *fl)
{
	size_t w = fl != NULL ? raw_width(fl) : 0;

	return w > 0 ? w : 1;
}

static void
field_print(FILE *f, const struct output_field *fl)
{
	uint16_t i;

	if (fl == NULL || raw_width(fl) == 0) {
		fputc('-', f);
		return;
	}
	switch (fl->kind) {
	case FIELD_STR:
		output_text(f, fl->str);
		break;
	case FIELD_INT:
		fprintf(f, "%" PRId64, fl->num);
		break;
	case FIELD_LIST:
		for (i = 0; i < fl->nlist; i++) {
			if (i > 0)
				fputc(',', f);
			output_text(f, fl->list[i]);
		}
		break;
	}
}

/* Column i of row r, found by the key of the first row's column i. */
static const struct output_field *
table_cell(const struct output_row *r, uint16_t i, const char *key)
{
	if (i < r->nfields && strcmp(r->fields[i].key, key) == 0)
		return &r->fields[i];
	return output_row_get(r, key);
}

static void
table_pad(FILE *f, size_t n)
{
	while (n-- > 0)
		fputc(' ', f);
}

static void
table_header(FILE *f, const struct output_row *head, const size_t *width)
{
	const char *k;
	uint16_t i;

	for (i = 0; i < head->nfields; i++) {
		for (k = head->fields[i].key; *k != '\0'; k++)
			fputc(isprint((unsigned char)*k) ? toupper((unsigned char)*k) : '?', f);
		if (i + 1 < head->nfields)
			table_pad(f, width[i] - strlen(head->fields[i].key) + 2);
	}
	fputc('\n', f);
}

static void
print_table(FILE *f, const struct output_rows *rows)
{
	size_t width[OUTPUT_MAX_FIELDS], j, w;
	const struct output_row *head;
	uint16_t i;

	if (rows->n == 0)
		return;
	head = &rows->v[0];
	for (i = 0; i < head->nfields; i++) {
		width[i] = strlen(head->fields[i].key);
		for (j = 0; j < rows->n; j++)
			if ((w = field_width(table_cell(&rows->v[j], i, head->fields[i].key))) > width[i])
				width[i] = w;
	}
	table_header(f, head, width);
	for (j = 0; j < rows->n; j++) {
		for (i = 0; i < head->nfields; i++) {
			const struct output_field *fl = table_cell(&rows->v[j], i, head->fields[i].key);

			field_print(f, fl);
			if (i + 1 < head->nfields)
				table_pad(f, width[i] - field_width(fl) + 2);
		}
		fputc('\n', f);
	}
}

/* "key: value" lines, a blank line between rows. */
static void
print_blocks(FILE *f, const struct output_rows *rows)
{
	size_t j;
	uint16_t i;

	for (j = 0; j < rows->n; j++) {
		if (j > 0)
			fputc('\n', f);
		for (i = 0; i < rows->v[j].nfields; i++) {
			output_text(f, rows->v[j].fields[i].key);
			fputs(": ", f);
			field_print(f, &rows->v[j].fields[i]);
			fputc('\n', f);
		}
	}
}

/* --- JSON */

/* Length of the valid UTF-8 sequence at s, 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void
output_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	fputc('"', f);
	while (*p != '\0') {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\r')
			fputs("\\r", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if ((n = utf8_len(p)) == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		} else {
			fwrite(p, 1, n, f);
			p += n;
			continue;
		}
		p++;
	}
	fputc('"', f);
}

static void
json_value(FILE *f, const struct output_field *fl)
{
	uint16_t i;

	switch (fl->kind) {
	case FIELD_STR:
		output_json_str(f, fl->str);
		break;
	case FIELD_INT:
		fprintf(f, "%" PRId64, fl->num);
		break;
	case FIELD_LIST:
		fputc('[', f);
		for (i = 0; i < fl->nlist; i++) {
			if (i > 0)
				fputc(',', f);
			output_json_str(f, fl->list[i]);
		}
		fputc(']', f);
		break;
	}
}

static void
json_object(FILE *f, const struct output_row *row)
{
	uint16_t i;

	fputc('{', f);
	for (i = 0; i < row->nfields; i++) {
		if (i > 0)
			fputc(',', f);
		output_json_str(f, row->fields[i].key);
		fputc(':', f);
		json_value(f, &row->fields[i]);
	}
	fputc('}', f);
}

/* One object a line, so line-based tools (the bash completion) can read it. */
static void
json_array(FILE *f, const struct output_rows *rows)
{
	size_t j;

	if (rows->n == 0) {
		fputs("[]\n", f);
		return;
	}
	fputs("[\n", f);
	for (j = 0; j < rows->n; j++) {
		fputs("  ", f);
		json_object(f, &rows->v[j]);
		fputs(j + 1 < rows->n ? ",\n" : "\n", f);
	}
	fputs("]\n", f);
}

static int
row_is_master(const struct output_row *row)
{
	const struct output_field *role = output_row_get(row, "role");

	return role != NULL && role->kind == FIELD_STR && strcmp(role->str, "master") == 0;
}

static int
row_is_worker(const struct output_row *row)
{
	const struct output_field *role = output_row_get(row, "role");

	return role != NULL && role->kind == FIELD_STR && strcmp(role->str, "worker") == 0;
}

/* The rows other than master's that are workers (or, workers 0, are not). */
static void
json_children(FILE *f, const struct output_rows *rows, const struct output_row *master,
    int workers)
{
	size_t j;
	int first = 1;

	for (j = 0; j < rows->n; j++) {
		if (&rows->v[j] == master || row_is_worker(&rows->v[j]) != workers)
			continue;
		if (!first)
			fputc(',', f);
		first = 0;
		json_object(f, &rows->v[j]);
	}
}

/* {"master":{...},"workers":[...],"children":[...]}: the master row, workers, other children. */
static void
json_status(FILE *f, const struct output_rows *rows)
{
	const struct output_row *master = NULL;
	size_t j;

	for (j = 0; j < rows->n && master == NULL; j++)
		if (row_is_master(&rows->v[j]))
			master = &rows->v[j];
	fputs("{\"master\":", f);
	if (master != NULL)
		json_object(f, master);
	else
		fputs("null", f);
	fputs(",\"workers\":[", f);
	json_children(f, rows, master, 1);
	/* Other roles of the process table (the tunnel process) apart: "workers" counts workers. */
	fputs("],\"children\":[", f);
	json_children(f, rows, master, 0);
	fputs("]}\n", f);
}

/* {...the first row..., "routes": [the others]} */
static void
json_summary(FILE *f, const struct output_rows *rows)
{
	uint16_t i;
	size_t j;

	if (rows->n == 0) {
		fputs("{}\n", f);
		return;
	}
	fputc('{', f);
	for (i = 0; i < rows->v[0].nfields; i++) {
		output_json_str(f, rows->v[0].fields[i].key);
		fputc(':', f);
		json_value(f, &rows->v[0].fields[i]);
		fputc(',', f);
	}
	fputs("\"routes\":[", f);
	for (j = 1; j < rows->n; j++) {
		if (j > 1)
			fputc(',', f);
		json_object(f, &rows->v[j]);
	}
	fputs("]}\n", f);
}

/* --- lines (export, apply) */

/* Row j's "line" pieces joined; NULL when it has none or memory ran out. */
static char *
line_join(const struct output_row *row)
{
	const struct output_field *fl = output_row_get(row, "line");
	size_t n = 0, i;
	char *s;

	if (fl == NULL || fl->kind != FIELD_LIST)
		return NULL;
	for (i = 0; i < fl->nlist; i++)
		n += strlen(fl->list[i]);
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0, n = 0; i < fl->nlist; i++) {
		memcpy(s + n, fl->list[i], strlen(fl->list[i]));
		n += strlen(fl->list[i]);
	}
	s[n] = '\0';
	return s;
}

static void
print_lines(FILE *f, int json, const struct output_rows *rows)
{
	size_t j;
	char *s;

	if (json)
		fputc('[', f);
	for (j = 0; j < rows->n; j++) {
		if ((s = line_join(&rows->v[j])) == NULL)
			continue;
		if (json) {
			if (j > 0)
				fputc(',', f);
			output_json_str(f, s);
		} else {
			output_text(f, s);
			fputc('\n', f);
		}
		free(s);
	}
	if (json)
		fputc(']', f);
}

void
output_ok_lines(FILE *f, int json, uint32_t gen, const char *message,
    const struct output_rows *rows)
{
	if (!json) {
		print_lines(f, 0, rows);
		output_ok(f, 0, gen, message);
		return;
	}
	fprintf(f, "{\"ok\":true,\"generation\":%" PRIu32 ",\"message\":", gen);
	output_json_str(f, message);
	fputs(",\"changes\":", f);
	print_lines(f, 1, rows);
	fputs("}\n", f);
}

void
output_rows_print(FILE *f, int json, enum output_shape shape, const struct output_rows *rows)
{
	if (!json) {
		if (shape == OUTPUT_LINES) {
			print_lines(f, 0, rows);
			return;
		}
		if (shape == OUTPUT_TABLE)
			print_table(f, rows);
		else
			print_blocks(f, rows);
		return;
	}
	if (shape == OUTPUT_TABLE)
		json_array(f, rows);
	else if (shape == OUTPUT_LINES) {
		print_lines(f, 1, rows);
		fputc('\n', f);
	} else if (shape == OUTPUT_STATUS)
		json_status(f, rows);
	else if (shape == OUTPUT_SUMMARY)
		json_summary(f, rows);
	else if (rows->n > 0) {
		json_object(f, &rows->v[0]);
		fputc('\n', f);
	} else
		fputs("{}\n", f);
}

void
output_ok(FILE *f, int json, uint32_t gen, const char *message)
{
	if (json) {
		fprintf(f, "{\"ok\":true,\"generation\":%" PRIu32 ",\"message\":", gen);
		output_json_str(f, message);
		fputs("}\n", f);
		return;
	}
	output_text(f, message[0] != '\0' ? message : "done");
	fprintf(f, " (generation %" PRIu32 ")\n", gen);
}

void
output_fail(FILE *out, FILE *err, int json, int code, const char *reason)
{
	fputs("haloyd-ctl: ", err);
	output_text(err, reason);
	fputc('\n', err);
	if (json) {
		fprintf(out, "{\"ok\":false,\"code\":%d,\"error\":", code);
		output_json_str(out, reason);
		fputs("}\n", out);
	}
}
