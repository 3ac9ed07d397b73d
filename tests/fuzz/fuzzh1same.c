/*
 * The quick head reader against http-parser (see fuzzh1same.h). A first
 * feed of one byte sends a message down the http-parser path (the quick
 * one only takes a head that arrived whole), so the same bytes fed in two
 * pieces give http-parser's head to compare with h1head_parse's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzzh1same.h"
#include "worker/h1head.h"
#include "worker/http1.h"

static int
same_head(void *arg, struct msg_head *h)
{
	*(int *)arg = 1;
	return 1;	/* the head is all we compare */
}

static int
same_body(void *arg, const char *p, size_t n)
{
	return 0;
}

static int
same_end(void *arg, struct msg_head *h)
{
	return 0;
}

static const struct h1_events same_events = { same_head, same_body, same_end };

static int
same_str(const struct msg_head *a, struct msg_str x, const struct msg_head *b, struct msg_str y)
{
	return x.len == y.len && memcmp(msg_s(a, x), msg_s(b, y), x.len) == 0 &&
	    msg_s(a, x)[x.len] == '\0' && msg_s(b, y)[y.len] == '\0';
}

static int
same_heads(const struct msg_head *a, const struct msg_head *b)
{
	uint32_t i;

	if (a->method != b->method || a->status != b->status || a->major != b->major ||
	    a->minor != b->minor || a->has_length != b->has_length || a->length != b->length ||
	    a->keepalive != b->keepalive || a->chunked != b->chunked || a->upgrade != b->upgrade ||
	    a->nf != b->nf || a->ntrailers != b->ntrailers || !same_str(a, a->path, b, b->path) ||
	    !same_str(a, a->reason, b, b->reason))
		return 0;
	for (i = 0; i < a->nf; i++)
		if (!same_str(a, a->f[i].name, b, b->f[i].name) ||
		    !same_str(a, a->f[i].value, b, b->f[i].value))
			return 0;
	return 1;
}

void
fuzzh1same_check(int response, const char *data, size_t len)
{
	struct msg_head quick, slow;
	struct h1 *h;
	size_t n;
	int got = 0;

	msg_init(&quick);
	msg_init(&slow);
	if ((n = h1head_parse(response, data, len, &quick)) > 0 &&
	    (h = h1_new(response ? H1_RESPONSE : H1_REQUEST, &slow, &same_events, &got)) != NULL) {
		if (h1_feed(h, data, 1) != 1 || h1_feed(h, data + 1, n - 1) != (ssize_t)(n - 1) ||
		    !got || !same_heads(&quick, &slow)) {
			fprintf(stderr, "fuzzh1same: the quick head differs from http-parser's (%s)\n",
			    got ? "another head" : h1_error_name(h));
			abort();
		}
		h1_free(h);
	}
	msg_free(&quick);
	msg_free(&slow);
}
