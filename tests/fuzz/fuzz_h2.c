/*
 * libFuzzer harness: the HTTP/2 server session (worker/h2server.c on
 * libnghttp2, with its options, callbacks, allocator and abuse bounds) as
 * a worker runs it: a client connection made with conn_new over a
 * socketpair on a plain listener, the 24-byte preface and then the input as
 * the client's bytes, the worker's loop turned (without waiting) until the
 * session has nothing left to do, the client's side drained as it goes,
 * then the client's end of the stream. Requests go through the request step
 * on the fixture's snapshot (local answers: 404, 502, redirects, ACME).
 *
 * With the first byte's low bit set, the rest is instead one HPACK header
 * block for nghttp2's inflater with our limits (the session's: header list
 * MSG_HEAD_MAX, the default 4 KiB table), decoded as h2server.c's header
 * callback would receive it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "share/log.h"
#include "share/msg.h"
#include "tests/fuzz/fuzzworker.h"
#include "worker/conn.h"
#include "worker/message.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define H2_TURNS 64	/* loop turns per input: each runs every ready event */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static struct worker w;
static struct listener ls;
static volatile uint64_t sink;

/* Reads whatever the session wrote; 1 when something came, -1 at its end. */
static int
h2_drain(int fd)
{
	char b[16384];
	ssize_t n;
	int got = 0;

	while ((n = recv(fd, b, sizeof(b), MSG_DONTWAIT)) > 0)
		got = 1;
	return n == 0 ? -1 : got;
}

static void
h2_session(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40000) };
	int sv[2], i, idle = 0;

	peer.sin_addr.s_addr = htonl(0xc0000207);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	if (conn_new(&w, sv[0], &ls, (struct sockaddr *)&peer) == -1) {
		close(sv[1]);
		return;
	}
	(void)!send(sv[1], H2_PREFACE, sizeof(H2_PREFACE) - 1, MSG_NOSIGNAL);
	if (size > 0)
		(void)!send(sv[1], data, size, MSG_NOSIGNAL);
	for (i = 0; i < H2_TURNS && w.nconns > 0 && idle < 3; i++) {
		fuzzworker_settle(&w, 1);
		idle = h2_drain(sv[1]) == 1 ? 0 : idle + 1;
	}
	/* The client is done sending: the session winds down as for a real client. */
	shutdown(sv[1], SHUT_WR);
	for (i = 0; i < 8 && w.nconns > 0; i++) {
		fuzzworker_settle(&w, 1);
		(void)h2_drain(sv[1]);
	}
	conn_close_all(&w);
	fuzzworker_settle(&w, 2);	/* the deferred frees */
	close(sv[1]);
}

static void
h2_hpack(const uint8_t *in, size_t size)
{
	nghttp2_hd_inflater *inf;
	nghttp2_nv nv;
	size_t total = 0;
	int flags;

	if (nghttp2_hd_inflate_new(&inf) != 0)
		abort();
	while (size > 0) {
		ssize_t n = nghttp2_hd_inflate_hd2(inf, &nv, &flags, in, size, 1);

		if (n < 0)
			break;
		in += n;
		size -= (size_t)n;
		if (flags & NGHTTP2_HD_INFLATE_EMIT) {
			/* h2server.c's bound: a block that decodes past this is an HPACK bomb. */
			total += nv.namelen + nv.valuelen + 32;
			if (total > 4 * MSG_HEAD_MAX)
				break;
			sink += nv.namelen + (nv.namelen > 0 && nv.name[0] == ':');
		}
		if (flags & NGHTTP2_HD_INFLATE_FINAL)
			break;
		if (n == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
			break;
	}
	nghttp2_hd_inflate_end_headers(inf);
	nghttp2_hd_inflate_del(inf);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	fuzzworker_init(&w);
	fuzzworker_shared(&w);
	ls.w = &w;
	ls.fd = -1;
	ls.kind = LISTENER_HTTP;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		h2_hpack(data + 1, size - 1);
	else
		h2_session(data + 1, size - 1);
	return 0;
}
