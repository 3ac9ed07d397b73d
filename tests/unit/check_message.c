/*
 * Unit tests for worker/message.c: storage that grows from nothing and is
 * kept or given back, the MSG_MEM_MAX bound, strings built from pieces, the
 * field list (order, trailers), lookups and tokens, methods.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/suites.h"
#include "worker/message.h"

/* The names and values msg_add stored, checked against what the head returns. */
static void
check_field(const struct msg_head *h, uint32_t i, const char *name, const char *value)
{
	ck_assert_uint_lt(i, h->nf);
	ck_assert_str_eq(msg_name(h, &h->f[i]), name);
	ck_assert_str_eq(msg_value(h, &h->f[i]), value);
	ck_assert_uint_eq(h->f[i].name.len, strlen(name));
	ck_assert_uint_eq(h->f[i].value.len, strlen(value));
}

START_TEST(init_holds_nothing)
{
	struct msg_head h;
	struct msg_str empty = { 0, 0 };

	memset(&h, 0xa5, sizeof(h));
	msg_init(&h);
	ck_assert_ptr_null(h.mem);
	ck_assert_ptr_null(h.f);
	ck_assert_uint_eq(h.cap, 0);
	ck_assert_uint_eq(h.fcap, 0);
	ck_assert_uint_eq(h.nf, 0);
	ck_assert_uint_eq(h.ntrailers, 0);
	ck_assert_uint_eq(h.method, MSG_M_OTHER);
	/* Strings of an empty head read as "". */
	ck_assert_str_eq(msg_s(&h, empty), "");
	ck_assert_str_eq(msg_s(&h, h.path), "");
	ck_assert_ptr_null(msg_find(&h, "host"));
	ck_assert_uint_eq(msg_nheaders(&h), 0);
	/* An empty string costs no storage either. */
	ck_assert_int_eq(msg_str(&h, "", 0, &h.path), 0);
	ck_assert_ptr_null(h.mem);
	ck_assert_str_eq(msg_s(&h, h.path), "");
	/* Reset and free of an empty head keep it empty. */
	msg_reset(&h);
	ck_assert_ptr_null(h.mem);
	ck_assert_uint_eq(h.len, 0);
	msg_free(&h);
	ck_assert_ptr_null(h.mem);
	ck_assert_ptr_null(h.f);
}
END_TEST

START_TEST(grows_with_the_head)
{
	struct msg_head h;
	struct msg_str path;
	char name[32], value[300];
	uint32_t cap0, fcap0, i;
	const uint32_t n = MSG_FIELDS_MAX;

	msg_init(&h);
	ck_assert_int_eq(msg_str(&h, "/first", 6, &path), 0);
	ck_assert_ptr_nonnull(h.mem);
	ck_assert_str_eq(h.mem, "");	/* mem[0] is the empty string */
	cap0 = h.cap;
	ck_assert_int_eq(msg_add(&h, "X-0", "v"), 0);
	fcap0 = h.fcap;
	ck_assert_uint_gt(fcap0, 0);
	for (i = 1; i < n; i++) {
		snprintf(name, sizeof(name), "X-%u", i);
		memset(value, 'a' + (int)(i % 26), sizeof(value) - 1);
		value[(i * 7) % (sizeof(value) - 1)] = '\0';	/* lengths 0..298 */
		ck_assert_int_eq(msg_add(&h, name, value), 0);
	}
	/* Both grew past their first size... */
	ck_assert_uint_gt(h.cap, cap0);
	ck_assert_uint_gt(h.fcap, fcap0);
	ck_assert_uint_le(h.len, h.cap);
	ck_assert_uint_eq(h.nf, n);
	/* ...and every offset taken before a realloc still names its string. */
	ck_assert_str_eq(msg_s(&h, path), "/first");
	check_field(&h, 0, "X-0", "v");
	for (i = 1; i < n; i++) {
		snprintf(name, sizeof(name), "X-%u", i);
		memset(value, 'a' + (int)(i % 26), sizeof(value) - 1);
		value[(i * 7) % (sizeof(value) - 1)] = '\0';
		check_field(&h, i, name, value);
		/* Every string is NUL-terminated in place. */
		ck_assert_int_eq(h.mem[h.f[i].value.off + h.f[i].value.len], '\0');
	}
	snprintf(name, sizeof(name), "X-%u", n / 2);
	ck_assert_ptr_eq(msg_find(&h, name), &h.f[n / 2]);
	msg_free(&h);
}
END_TEST

START_TEST(reset_keeps_storage_free_gives_it_back)
{
	struct msg_head h;
	char *mem;
	struct msg_field *f;
	uint32_t cap, fcap;

	msg_init(&h);
	h.method = MSG_M_POST;
	h.status = 200;
	h.has_length = 1;
	h.length = 5;
	ck_assert_int_eq(msg_str(&h, "/p", 2, &h.path), 0);
	ck_assert_int_eq(msg_add(&h, "Host", "a"), 0);
	ck_assert_int_eq(msg_add_n(&h, "X-Sum", 5, "1", 1, 1), 0);
	mem = h.mem;
	f = h.f;
	cap = h.cap;
	fcap = h.fcap;
	msg_reset(&h);
	ck_assert_ptr_eq(h.mem, mem);
	ck_assert_ptr_eq(h.f, f);
	ck_assert_uint_eq(h.cap, cap);
	ck_assert_uint_eq(h.fcap, fcap);
	ck_assert_uint_eq(h.len, 1);
	ck_assert_str_eq(h.mem, "");
	ck_assert_uint_eq(h.nf, 0);
	ck_assert_uint_eq(h.ntrailers, 0);
	ck_assert_uint_eq(h.method, MSG_M_OTHER);
	ck_assert_uint_eq(h.status, 0);
	ck_assert_uint_eq(h.has_length, 0);
	ck_assert_uint_eq(h.length, 0);
	ck_assert_str_eq(msg_s(&h, h.path), "");
	ck_assert_ptr_null(msg_find(&h, "host"));
	/* The next head reuses it: no new allocation for a small one. */
	ck_assert_int_eq(msg_add(&h, "Host", "b"), 0);
	ck_assert_ptr_eq(h.mem, mem);
	ck_assert_ptr_eq(h.f, f);
	check_field(&h, 0, "Host", "b");
	ck_assert_uint_eq(h.ntrailers, 0);
	msg_free(&h);
	ck_assert_ptr_null(h.mem);
	ck_assert_ptr_null(h.f);
	ck_assert_uint_eq(h.cap, 0);
	ck_assert_uint_eq(h.fcap, 0);
	ck_assert_uint_eq(h.len, 0);
	ck_assert_uint_eq(h.nf, 0);
	/* A freed head is an empty one, ready again. */
	ck_assert_int_eq(msg_add(&h, "A", "b"), 0);
	check_field(&h, 0, "A", "b");
	msg_free(&h);
}
END_TEST

/* mem and the first fields share one allocation; each leaves it alone when it outgrows it. */
START_TEST(one_block_until_outgrown)
{
	struct msg_head h;
	char name[16], big[600];
	char *mem;
	uint32_t i;

	/* Many short fields: f moves out, mem stays where it was. */
	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "A", "b"), 0);
	mem = h.mem;
	ck_assert_ptr_eq((char *)h.f, h.mem + h.cap);	/* right after mem: one allocation */
	for (i = 1; i < 40; i++) {
		snprintf(name, sizeof(name), "%u", i);
		ck_assert_int_eq(msg_add(&h, name, ""), 0);
	}
	ck_assert_ptr_eq(h.mem, mem);
	ck_assert_uint_gt(h.fcap, 16);
	check_field(&h, 0, "A", "b");
	check_field(&h, 39, "39", "");
	/* Then a long value: mem moves out too, the strings come along. */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(msg_add(&h, "Big", big), 0);
	ck_assert_ptr_ne(h.mem, mem);
	check_field(&h, 0, "A", "b");
	check_field(&h, 40, "Big", big);
	msg_reset(&h);
	ck_assert_int_eq(msg_add(&h, "C", "d"), 0);
	check_field(&h, 0, "C", "d");
	msg_free(&h);
	/* A long value first: mem moves out, the fields stay in the block. */
	ck_assert_int_eq(msg_add(&h, "Big", big), 0);
	ck_assert_int_eq(msg_add(&h, "A", "b"), 0);
	check_field(&h, 0, "Big", big);
	check_field(&h, 1, "A", "b");
	msg_free(&h);	/* the sanitizer build checks each allocation is given back once */
}
END_TEST

START_TEST(mem_max_refused)
{
	struct msg_head h;
	struct msg_str s;
	char *big = malloc(MSG_MEM_MAX + 1);
	uint32_t len, start;

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', MSG_MEM_MAX + 1);
	msg_init(&h);
	/* mem[0] and the NUL take two bytes of the bound. */
	ck_assert_int_eq(msg_str(&h, big, MSG_MEM_MAX - 1, &s), -1);
	msg_reset(&h);
	ck_assert_int_eq(msg_str(&h, big, MSG_MEM_MAX - 2, &s), 0);
	ck_assert_uint_eq(h.len, MSG_MEM_MAX);
	ck_assert_uint_eq(s.len, MSG_MEM_MAX - 2);
	ck_assert_int_eq(h.mem[s.off + s.len], '\0');
	/* Full: not even one byte, nor one field, and what was there is intact. */
	len = h.len;
	ck_assert_int_eq(msg_str(&h, "y", 1, &s), -1);
	ck_assert_int_eq(msg_add(&h, "A", "b"), -1);
	ck_assert_uint_eq(h.nf, 0);
	ck_assert_int_eq(msg_mark(&h, &start), 0);
	ck_assert_int_eq(msg_append(&h, "y", 1, MSG_MEM_MAX), -1);
	ck_assert_uint_eq(h.len, len);
	ck_assert_int_eq(msg_close(&h, &s, start, MSG_MEM_MAX), -1);
	ck_assert_uint_eq(h.len, len);
	msg_free(&h);

	/* The caller's own, smaller, limit. */
	msg_init(&h);
	ck_assert_int_eq(msg_mark(&h, &start), 0);
	ck_assert_int_eq(msg_append(&h, big, 100, 101), 0);
	ck_assert_int_eq(msg_append(&h, "y", 1, 101), -1);
	ck_assert_int_eq(msg_close(&h, &s, start, 101), -1);
	ck_assert_int_eq(msg_close(&h, &s, start, 102), 0);
	ck_assert_uint_eq(s.len, 100);
	msg_free(&h);
	free(big);
}
END_TEST

START_TEST(strings_from_pieces)
{
	struct msg_head h;
	struct msg_str a, b, c;
	uint32_t start;
	char want[1000];
	size_t i;

	msg_init(&h);
	ck_assert_int_eq(msg_mark(&h, &start), 0);
	ck_assert_int_eq(msg_append(&h, "Hel", 3, MSG_MEM_MAX), 0);
	ck_assert_int_eq(msg_append(&h, "", 0, MSG_MEM_MAX), 0);
	ck_assert_int_eq(msg_append(&h, "lo", 2, MSG_MEM_MAX), 0);
	ck_assert_int_eq(msg_close(&h, &a, start, MSG_MEM_MAX), 0);
	ck_assert_uint_eq(a.len, 5);
	ck_assert_str_eq(msg_s(&h, a), "Hello");
	/* An empty piece-built string is "" of length 0 (not the shared one: a NUL of its own). */
	ck_assert_int_eq(msg_mark(&h, &start), 0);
	ck_assert_int_eq(msg_close(&h, &b, start, MSG_MEM_MAX), 0);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(msg_s(&h, b), "");
	/* A string built in small pieces across several reallocs. */
	ck_assert_int_eq(msg_mark(&h, &start), 0);
	for (i = 0; i < sizeof(want) - 1; i += 7) {
		size_t n = sizeof(want) - 1 - i < 7 ? sizeof(want) - 1 - i : 7;
		size_t j;

		for (j = 0; j < n; j++)
			want[i + j] = (char)('a' + (i + j) % 26);
		ck_assert_int_eq(msg_append(&h, want + i, n, MSG_MEM_MAX), 0);
	}
	want[sizeof(want) - 1] = '\0';
	ck_assert_int_eq(msg_close(&h, &c, start, MSG_MEM_MAX), 0);
	ck_assert_uint_eq(c.len, sizeof(want) - 1);
	ck_assert_str_eq(msg_s(&h, c), want);
	ck_assert_str_eq(msg_s(&h, a), "Hello");
	/* Strings built so become fields with msg_push. */
	ck_assert_int_eq(msg_push(&h, a, c, 0), 0);
	check_field(&h, 0, "Hello", want);
	msg_free(&h);
}
END_TEST

START_TEST(fields_order_and_trailers)
{
	struct msg_head h;
	struct msg_str n, v;

	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "A", "1"), 0);
	ck_assert_int_eq(msg_add(&h, "B", "2"), 0);
	ck_assert_int_eq(msg_str(&h, "C", 1, &n), 0);
	ck_assert_int_eq(msg_str(&h, "3", 1, &v), 0);
	ck_assert_int_eq(msg_push(&h, n, v, 0), 0);
	ck_assert_int_eq(msg_add(&h, "D", "4"), 0);
	ck_assert_uint_eq(h.nf, 4);
	ck_assert_uint_eq(h.ntrailers, 0);
	/* Deleting keeps the order of the rest. */
	msg_del(&h, 1);
	ck_assert_uint_eq(h.nf, 3);
	check_field(&h, 0, "A", "1");
	check_field(&h, 1, "C", "3");
	check_field(&h, 2, "D", "4");
	msg_del(&h, 0);
	check_field(&h, 0, "C", "3");
	check_field(&h, 1, "D", "4");
	msg_del(&h, 5);		/* out of range: nothing */
	ck_assert_uint_eq(h.nf, 2);

	/* Trailers: the last ntrailers fields; once one is there every field is one. */
	ck_assert_int_eq(msg_add_n(&h, "T1", 2, "x", 1, 1), 0);
	ck_assert_uint_eq(h.ntrailers, 1);
	ck_assert_int_eq(msg_add(&h, "T2", "y"), 0);
	ck_assert_int_eq(msg_str(&h, "T3", 2, &n), 0);
	ck_assert_int_eq(msg_push(&h, n, v, 0), 0);
	ck_assert_uint_eq(h.nf, 5);
	ck_assert_uint_eq(h.ntrailers, 3);
	ck_assert_uint_eq(msg_nheaders(&h), 2);
	/* Deleting a trailer counts it out; deleting a header does not touch the count. */
	msg_del(&h, 3);
	ck_assert_uint_eq(h.nf, 4);
	ck_assert_uint_eq(h.ntrailers, 2);
	check_field(&h, 2, "T1", "x");
	check_field(&h, 3, "T3", "3");
	msg_del(&h, 0);
	ck_assert_uint_eq(h.nf, 3);
	ck_assert_uint_eq(h.ntrailers, 2);
	ck_assert_uint_eq(msg_nheaders(&h), 1);
	check_field(&h, 0, "D", "4");
	check_field(&h, 1, "T1", "x");
	/* The last field, a trailer. */
	msg_del(&h, 2);
	ck_assert_uint_eq(h.ntrailers, 1);
	msg_del(&h, 1);
	ck_assert_uint_eq(h.ntrailers, 0);
	ck_assert_uint_eq(h.nf, 1);
	/* Headers again after the trailers are gone. */
	ck_assert_int_eq(msg_add(&h, "E", "5"), 0);
	ck_assert_uint_eq(h.ntrailers, 0);
	ck_assert_uint_eq(msg_nheaders(&h), 2);
	msg_free(&h);
}
END_TEST

/*
 * The parser allows MSG_FIELDS_MAX fields in the head and as many in the
 * trailers, and forwarding adds a few on top: the field array must hold them.
 */
START_TEST(holds_full_head_and_trailers)
{
	struct msg_head h;
	char name[32];
	uint32_t i;

	msg_init(&h);
	for (i = 0; i < MSG_FIELDS_MAX + 5; i++) {
		snprintf(name, sizeof(name), "H-%u", i);
		ck_assert_msg(msg_add(&h, name, "v") == 0, "header %u", i);
	}
	for (i = 0; i < MSG_FIELDS_MAX; i++) {
		snprintf(name, sizeof(name), "T-%u", i);
		ck_assert_msg(msg_add_n(&h, name, strlen(name), "w", 1, 1) == 0, "trailer %u", i);
	}
	ck_assert_uint_eq(h.nf, 2 * MSG_FIELDS_MAX + 5);
	ck_assert_uint_eq(h.ntrailers, MSG_FIELDS_MAX);
	check_field(&h, 0, "H-0", "v");
	check_field(&h, h.nf - 1, "T-99", "w");
	/* Yet bounded: a few more at most, then refused with the head intact. */
	for (i = 0; i < 1000 && msg_add(&h, "X", "y") == 0; i++)
		;
	ck_assert_uint_lt(i, 1000);
	ck_assert_uint_le(h.nf, 3 * MSG_FIELDS_MAX);
	ck_assert_uint_eq(h.nf, 2 * MSG_FIELDS_MAX + 5 + i);
	check_field(&h, 2 * MSG_FIELDS_MAX + 4, "T-99", "w");
	msg_free(&h);
}
END_TEST

START_TEST(find_skips_trailers)
{
	struct msg_head h;

	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "Host", "a"), 0);
	ck_assert_int_eq(msg_add(&h, "X-Dup", "head"), 0);
	ck_assert_int_eq(msg_add(&h, "x-dup", "second"), 0);
	ck_assert_int_eq(msg_add_n(&h, "X-Dup", 5, "trailer", 7, 1), 0);
	ck_assert_int_eq(msg_add(&h, "X-Sum", "42"), 0);	/* a trailer too */
	/* Case-insensitive; the first header wins; a trailer is never found. */
	ck_assert_ptr_eq(msg_find(&h, "HOST"), &h.f[0]);
	ck_assert_ptr_eq(msg_find(&h, "x-DUP"), &h.f[1]);
	ck_assert_ptr_null(msg_find(&h, "x-sum"));
	/* The whole name: no prefix, no longer name. */
	ck_assert_ptr_null(msg_find(&h, "Hos"));
	ck_assert_ptr_null(msg_find(&h, "Hostx"));
	ck_assert_ptr_null(msg_find(&h, ""));
	ck_assert_int_eq(msg_field_is(&h, &h.f[0], "host"), 1);
	ck_assert_int_eq(msg_field_is(&h, &h.f[0], "hos"), 0);
	ck_assert_int_eq(msg_field_is(&h, &h.f[4], "X-SUM"), 1);
	msg_free(&h);
}
END_TEST

START_TEST(has_token_rules)
{
	static const struct {
		const char *value, *token;
		int want;
	} cases[] = {
		{ "trailers", "trailers", 1 },
		{ "TRAILERS", "trailers", 1 },
		{ "trailers", "Trailers", 1 },
		{ "deflate, trailers", "trailers", 1 },
		{ "trailers,deflate", "trailers", 1 },
		{ " \ttrailers\t , gzip", "trailers", 1 },
		{ "gzip,\t trailers \t", "trailers", 1 },
		{ ", ,, trailers,,", "trailers", 1 },	/* empty items are skipped */
		{ ",,,", "trailers", 0 },
		{ "", "trailers", 0 },
		{ "trailersx", "trailers", 0 },
		{ "xtrailers", "trailers", 0 },
		{ "trail", "trailers", 0 },
		{ "trail ers", "trailers", 0 },
		{ "deflate;q=0.5, gzip", "trailers", 0 },
		{ "close, X-Drop", "x-drop", 1 },
		{ "close, X-Drop", "close", 1 },
		{ "keep-alive", "close", 0 },
	};
	struct msg_head h;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msg_init(&h);
		ck_assert_int_eq(msg_add(&h, "TE", cases[i].value), 0);
		ck_assert_msg(msg_has_token(&h, &h.f[0], cases[i].token) == cases[i].want,
		    "\"%s\" lists \"%s\": expected %d", cases[i].value, cases[i].token, cases[i].want);
		msg_free(&h);
	}
}
END_TEST

/* A list split over several fields of one name counts as one; trailers do not. */
START_TEST(lists_across_fields)
{
	struct msg_head h;

	msg_init(&h);
	ck_assert_int_eq(msg_add(&h, "Cache-Control", "max-age=60"), 0);
	ck_assert_int_eq(msg_add(&h, "Vary", "no-transform"), 0);
	ck_assert_int_eq(msg_add(&h, "cache-control", "private, No-Transform"), 0);
	ck_assert_int_eq(msg_add_n(&h, "TE", 2, "trailers", 8, 1), 0);	/* a trailer */
	ck_assert_int_eq(msg_lists(&h, "CACHE-CONTROL", "no-transform"), 1);
	ck_assert_int_eq(msg_lists(&h, "cache-control", "max-age=60"), 1);
	ck_assert_int_eq(msg_lists(&h, "cache-control", "no-store"), 0);
	ck_assert_int_eq(msg_lists(&h, "te", "trailers"), 0);
	ck_assert_int_eq(msg_lists(&h, "connection", "close"), 0);
	msg_free(&h);
}
END_TEST

/* The list's elements in order, blanks trimmed, empty ones skipped: what forward's Connection options see. */
START_TEST(list_next_elements)
{
	static const char list[] = " , close,\tX-A \t,,keep-alive ,";
	const char *v = list, *end = list + sizeof(list) - 1, *t;
	const char *want[] = { "close", "X-A", "keep-alive" };
	size_t i, len;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(msg_list_next(&v, end, &t, &len), 1);
		ck_assert_uint_eq(len, strlen(want[i]));
		ck_assert_int_eq(memcmp(t, want[i], len), 0);
	}
	ck_assert_int_eq(msg_list_next(&v, end, &t, &len), 0);
	ck_assert_ptr_eq(v, end);
	v = end;
	ck_assert_int_eq(msg_list_next(&v, end, &t, &len), 0);
}
END_TEST

START_TEST(methods)
{
	static const struct {
		const char *name;
		enum msg_method m;
		int idempotent;
	} known[] = {
		{ "GET", MSG_M_GET, 1 }, { "HEAD", MSG_M_HEAD, 1 }, { "POST", MSG_M_POST, 0 },
		{ "PUT", MSG_M_PUT, 1 }, { "DELETE", MSG_M_DELETE, 1 },
		{ "CONNECT", MSG_M_CONNECT, 0 }, { "OPTIONS", MSG_M_OPTIONS, 1 },
		{ "TRACE", MSG_M_TRACE, 1 }, { "PATCH", MSG_M_PATCH, 0 },
	};
	struct msg_head h;
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		ck_assert_uint_eq(msg_method_of(known[i].name, strlen(known[i].name)), known[i].m);
		msg_init(&h);
		h.method = known[i].m;
		ck_assert_str_eq(msg_method_str(&h), known[i].name);
		ck_assert_int_eq(msg_idempotent(&h), known[i].idempotent);
	}
	/* Case-sensitive, whole names, bounded by len. */
	ck_assert_uint_eq(msg_method_of("get", 3), MSG_M_OTHER);
	ck_assert_uint_eq(msg_method_of("Get", 3), MSG_M_OTHER);
	ck_assert_uint_eq(msg_method_of("GE", 2), MSG_M_OTHER);
	ck_assert_uint_eq(msg_method_of("GETS", 4), MSG_M_OTHER);
	ck_assert_uint_eq(msg_method_of("GETS", 3), MSG_M_GET);
	ck_assert_uint_eq(msg_method_of("", 0), MSG_M_OTHER);
	ck_assert_uint_eq(msg_method_of("PROPFIND", 8), MSG_M_OTHER);

	/* Another method keeps its name; without one it reads "-". */
	msg_init(&h);
	h.method = msg_method_of("PROPFIND", 8);
	ck_assert_str_eq(msg_method_str(&h), "-");
	ck_assert_int_eq(msg_str(&h, "PROPFIND", 8, &h.method_name), 0);
	ck_assert_str_eq(msg_method_str(&h), "PROPFIND");
	ck_assert_int_eq(msg_idempotent(&h), 0);
	/* A known method ignores a stale name. */
	h.method = MSG_M_GET;
	ck_assert_str_eq(msg_method_str(&h), "GET");
	msg_free(&h);
}
END_TEST

Suite *
suite_message(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("message");

	tcase_add_test(tc, init_holds_nothing);
	tcase_add_test(tc, grows_with_the_head);
	tcase_add_test(tc, reset_keeps_storage_free_gives_it_back);
	tcase_add_test(tc, one_block_until_outgrown);
	tcase_add_test(tc, mem_max_refused);
	tcase_add_test(tc, strings_from_pieces);
	tcase_add_test(tc, fields_order_and_trailers);
	tcase_add_test(tc, holds_full_head_and_trailers);
	tcase_add_test(tc, find_skips_trailers);
	tcase_add_test(tc, has_token_rules);
	tcase_add_test(tc, lists_across_fields);
	tcase_add_test(tc, list_next_elements);
	tcase_add_test(tc, methods);
	suite_add_tcase(s, tc);
	return s;
}
