/*
 * libFuzzer harness: a backend's bytes as the HTTP/1.1 upstream reads them
 * (worker/h1client.c): the response parser (worker/http1.c) with interim
 * 1xx heads reset for the final one, "no body" for a HEAD request, a 101
 * only to an upgrade request, then what the exchange and the HTTP/1.1 sink
 * do with it: the response forwarding rules (worker/forward.c, with HSTS)
 * and the encoding for the client (h1_write_response with the framing
 * h1server.c picks, chunks, the last chunk with the backend's trailers).
 * The first input byte sets the request's facts (method, upgrade, the
 * client's HTTP minor version, keep-alive, HSTS); the rest is the response.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "share/log.h"
#include "tests/fuzz/fuzzh1same.h"
#include "worker/buf.h"
#include "worker/forward.h"
#include "worker/http1.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct buf_pool pool = { BUF_SIZE, NULL, 0 };

struct rs {
	int head_req, upgrade_req, minor, keepalive, hsts;
	int pipe, done;		/* after a 101; after the final response */
	enum h1_framing fr;
	struct buf out;		/* the client's output buffer, flushed when full */
};

static int
rs_room(struct rs *r, size_t n)
{
	if (buf_get(&pool, &r->out) == -1)
		return -1;
	if (buf_room(&r->out) < n)
		r->out.off = r->out.len = 0;	/* as if it went out to the client */
	return 0;
}

static int
rs_head(void *arg, struct msg_head *h)
{
	struct rs *r = arg;
	int nobody = r->head_req || h->status / 100 == 1 || h->status == 204 || h->status == 304;

	if (h->status == 101 && !r->upgrade_req)
		return -1;	/* h1client.c refuses it */
	if (forward_response(h, r->hsts, "Thu, 01 Jan 2026 00:00:00 GMT") == -1 || rs_room(r, BUF_SIZE) == -1)
		return -1;
	if (h->status == 101) {
		r->pipe = 1;
		return h1_write_response(&r->out, h, H1_FRAME_UPGRADE, 1, 1) == -1 ? -1 : 0;
	}
	if (h->status / 100 == 1)
		return r->minor == 0 ? 0 : h1_write_response(&r->out, h, H1_FRAME_NONE, 1, r->minor);
	if (nobody)
		r->fr = H1_FRAME_NONE;
	else if (h->has_length)
		r->fr = H1_FRAME_LENGTH;
	else
		r->fr = r->minor > 0 ? H1_FRAME_CHUNKED : H1_FRAME_CLOSE;
	if (h1_write_response(&r->out, h, r->fr, r->keepalive && r->fr != H1_FRAME_CLOSE,
	    r->minor) == -1)
		return -1;
	return r->head_req ? 1 : 0;
}

static int
rs_body(void *arg, const char *p, size_t n)
{
	struct rs *r = arg;

	if (rs_room(r, n + 64) == -1)
		return -1;
	if (r->fr == H1_FRAME_CHUNKED)
		return h1_write_chunk(&r->out, p, n);
	if (n > buf_room(&r->out))
		return -1;
	buf_append(&r->out, p, n);
	return 0;
}

static int
rs_end(void *arg, struct msg_head *h)
{
	struct rs *r = arg;

	if (h->status / 100 == 1)
		return 0;
	r->done = 1;
	if (r->fr != H1_FRAME_CHUNKED)
		return 0;
	if (rs_room(r, BUF_SIZE) == -1)
		return -1;
	(void)h1_write_last_chunk(&r->out, h);
	return 0;
}

static const struct h1_events rs_events = { rs_head, rs_body, rs_end };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	return 0;
}

/* Feeds the response as h1c_parse does, in pieces of at most 4 KiB (the exchange's room varies). */
static void
rs_run(struct rs *r, struct h1 *h, const char *p, size_t left)
{
	while (left > 0 && !r->pipe) {
		size_t feed = left > 4096 ? 4096 : left;
		ssize_t n = h1_feed(h, p, feed);

		if (n < 0)
			return;
		p += n;
		left -= (size_t)n;
		if (h1_done(h)) {
			if (r->done || r->pipe)
				return;
			h1_reset(h);	/* an interim 1xx: the final head follows */
		} else if (n == 0)
			return;
	}
	if (left == 0 && !r->pipe)
		(void)h1_eof(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rs r;
	struct msg_head head;
	struct h1 *h;

	if (size < 1)
		return 0;
	memset(&r, 0, sizeof(r));
	r.head_req = data[0] & 1;
	r.upgrade_req = (data[0] >> 1) & 1;
	r.minor = (data[0] >> 2) & 1;
	r.keepalive = (data[0] >> 3) & 1;
	r.hsts = (data[0] >> 4) & 1;
	r.fr = H1_FRAME_NONE;
	fuzzh1same_check(1, (const char *)data + 1, size - 1 > 4096 ? 4096 : size - 1);
	msg_init(&head);
	if ((h = h1_new(H1_RESPONSE, &head, &rs_events, &r)) != NULL)
		rs_run(&r, h, (const char *)data + 1, size - 1);
	h1_free(h);
	msg_free(&head);
	buf_put(&pool, &r.out);
	buf_pool_clear(&pool);
	return 0;
}
