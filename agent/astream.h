/*
 * One stream the proxy opened on a tunnel = one HTTP/1.1 exchange with the
 * local app: the request head and body written as they arrive (chunked
 * when no content-length), the response parsed with worker/http1.c and
 * sent back as HEADERS, DATA as read, trailers. Flow control both ways:
 * request bytes are consumed (WINDOW_UPDATE) only once the app took them,
 * the app is read only while the stream's queue toward the tunnel is short.
 */
#ifndef HALOYD_AGENT_ASTREAM_H
#define HALOYD_AGENT_ASTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "agent/bytequeue.h"
#include "share/evloop.h"
#include "worker/message.h"

#define ASTREAM_TOAPP_MAX (256 * 1024)	/* a stream window (64 KiB) + framing + a head */
#define ASTREAM_RESP_HIGH (64 * 1024)	/* the app is not read while this much waits */
#define ASTREAM_RESP_MAX (ASTREAM_RESP_HIGH + 32 * 1024)
#define ASTREAM_READ 16384		/* one read from the app */

struct tunnel;
struct appconn;
struct h1;

struct astream {
	struct tunnel *t;		/* NULL once the tunnel is gone */
	struct astream *next;
	int32_t id;
	struct msg_head req;
	size_t hdr_bytes;		/* header list size as HTTP/2 counts it */
	int in_trailers;
	int req_started;		/* the head went to the app's queue */
	int req_end;			/* END_STREAM from the proxy */
	int req_chunked;
	int req_written;		/* all of the request went to the app */
	struct bytequeue toapp;
	size_t unconsumed;		/* body bytes received, not yet given back as window */
	struct appconn *ac;
	struct h1 *parser;
	struct msg_head resp;
	int resp_submitted;
	int resp_end;
	int resp_reusable;		/* the app's connection may serve another request */
	int deferred;			/* nghttp2 waits for resume_data */
	struct bytequeue fromapp;
	struct ev_timer timer;		/* the app's response head */
	int closed;			/* nghttp2 closed it: only the free is left */
	uint8_t free_pending;
};

struct astream *astream_new(struct tunnel *t, int32_t id);
/* One request field (pseudo or not, head or trailers). 0 or an nghttp2 error code. */
int astream_header(struct astream *s, const char *name, size_t nlen, const char *value,
    size_t vlen);
/* A whole HEADERS or DATA frame arrived; end: END_STREAM. 0 or an nghttp2 error code. */
int astream_frame(struct astream *s, int headers, int end);
/* Request body bytes. 0 or an nghttp2 error code. */
int astream_body(struct astream *s, const char *p, size_t n);
/* nghttp2 closed the stream (code: its error code, 0 when it ended well). */
void astream_closed(struct astream *s, uint32_t code);
/* The tunnel is going away: the app's connection is closed, s is freed now. */
void astream_abort(struct astream *s);

#endif
