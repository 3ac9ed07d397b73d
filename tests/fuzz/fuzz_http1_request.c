/*
 * libFuzzer harness: an HTTP/1.1 client's bytes as the worker's session
 * reads them (worker/h1server.c): the request parser (worker/http1.c) fed
 * at most HEAD_FEED_MAX bytes at a time until the head is complete,
 * pipelined requests one after the other; for each parsed head the request
 * step (worker/request.c, on the fixture's snapshot: host rules, routing,
 * ACME answers, redirects, error pages) and its local answer encoded as
 * HTTP/1.1, then the forwarding transform (worker/forward.c) and the
 * request encoded for a backend (h1_write_request), as the exchange does.
 * The first input byte sets the connection's facts (bit 0: over TLS, bit 1:
 * from a trusted proxy); the rest is what the client sent.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "share/log.h"
#include "share/util.h"
#include "tests/fuzz/fuzzh1same.h"
#include "tests/fuzz/fuzzworker.h"
#include "worker/forward.h"
#include "worker/http1.h"
#include "worker/request.h"

#define FEED_MAX (12 * 1024)	/* h1server.c's HEAD_FEED_MAX */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct worker w;

struct rq {
	int tls;	/* the first byte's low bit: as if over HTTPS */
	int trusted;	/* its second bit: the peer is a trusted proxy */
};

static void
rq_encode(struct msg_head *h, const struct rq *q)
{
	struct buf b = { 0 };

	if (forward_request(h, &(struct fwd_info){ "192.0.2.7", q->tls ? "https" : "http",
	    "0123456789abcdef", q->trusted }) == 0 && buf_get(&w.bufs, &b) == 0)
		(void)h1_write_request(&b, h);
	buf_put(&w.bufs, &b);
}

static int
rq_head(void *arg, struct msg_head *h)
{
	const struct rq *q = arg;
	struct request_peer peer = { .client_ip = "192.0.2.7", .trusted = q->trusted,
	    .tls = q->tls };
	struct request r;
	struct buf b = { 0 };

	msg_init(&r.ans.head);
	if (request_step(&w, &peer, h, util_now_us(), NULL, NULL, &r) == 0 && r.ex == NULL &&
	    buf_get(&w.bufs, &b) == 0)
		(void)h1_write_response(&b, &r.ans.head, H1_FRAME_LENGTH, !r.ans.close, h->minor);
	buf_put(&w.bufs, &b);
	request_answer_free(&r.ans);
	rq_encode(h, q);
	return 0;
}

static int
rq_body(void *arg, const char *p, size_t n)
{
	return 0;
}

static int
rq_end(void *arg, struct msg_head *h)
{
	return 0;
}

/* A bad request: the session's own error answer, as h1server.c's h1s_error writes it. */
static void
rq_refuse(struct h1 *h, const struct msg_head *head)
{
	struct answer ans;
	struct buf b = { 0 };
	unsigned status = h1_error(h) != 0 ? h1_error(h) : 400;

	msg_init(&ans.head);
	if (request_error(&w, status, ERRPAGE_STATUS, h1_head_done(h) ? head : NULL, 0, &ans) == 0 &&
	    buf_get(&w.bufs, &b) == 0)
		(void)h1_write_response(&b, &ans.head, H1_FRAME_LENGTH, 0, 1);
	buf_put(&w.bufs, &b);
	request_answer_free(&ans);
}

static const struct h1_events rq_events = { rq_head, rq_body, rq_end };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	fuzzworker_init(&w);
	fuzzworker_shared(&w);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rq q = { 0 };
	struct msg_head head;
	struct h1 *h;
	const char *p = (const char *)data + 1;
	size_t left = size - 1;

	if (size < 1)
		return 0;
	q.tls = data[0] & 1;
	q.trusted = (data[0] >> 1) & 1;
	fuzzh1same_check(0, p, left > FEED_MAX ? FEED_MAX : left);
	msg_init(&head);
	if ((h = h1_new(H1_REQUEST, &head, &rq_events, &q)) == NULL)
		return 0;
	while (left > 0) {
		size_t feed = !h1_head_done(h) && left > FEED_MAX ? FEED_MAX : left;
		ssize_t n = h1_feed(h, p, feed);

		if (n < 0) {
			rq_refuse(h, &head);
			break;
		}
		if (h1_upgraded(h))
			break;
		p += n;
		left -= (size_t)n;
		if (h1_done(h))
			h1_reset(h);	/* the next pipelined request */
		else if (n == 0)
			break;
	}
	if (left == 0)
		(void)h1_eof(h);
	h1_free(h);
	msg_free(&head);
	return 0;
}
