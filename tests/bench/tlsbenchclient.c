/*
 * A load client for tests/bench/tls-bench: keeps -c connections busy for -d
 * seconds, each one a fresh TCP connection and a full TLS handshake (no
 * session resumption) with SNI, then (with -r) one HTTP/1.1 request with
 * "Connection: close" read to the end. Prints one JSON line with the count
 * and the rate. Certificates are not verified: what is measured is the
 * server's handshake cost, the same for every server. With -s every
 * connection offers the last session a server gave (TLS 1.3 tickets arrive
 * with the answer, so -s goes with -r): resumed handshakes, counted as
 * "resumed" in the output. With -k the run ends after COUNT connections
 * (or -d seconds, whichever comes first), for counts that must not depend on
 * the machine's speed (instructions per connection under callgrind).
 *
 *   cc -O2 -o tlsclient tlsbenchclient.c -lssl -lcrypto
 *   tlsclient -p PORT -n NAME [-c 32] [-d 10] [-k COUNT] [-r] [-s] [-2]
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CONNS 4096

enum phase { CONNECTING, HANDSHAKE, WRITING, READING };

struct slot {
	int fd;
	SSL *ssl;
	enum phase phase;
	size_t sent;
	int answered;		/* the answer began with a 200 status line */
};

struct bench {
	SSL_CTX *ctx;
	int ep;
	struct sockaddr_in sa;
	const char *name;
	int request;
	int resume;		/* -s: offer sess on every connection */
	SSL_SESSION *sess;	/* the last resumable session a server gave */
	char req[256];
	size_t reqlen;
	unsigned long done, failed, resumed;
	unsigned long count;	/* -k: connections to end after; 0: no bound */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
slot_watch(struct bench *b, struct slot *s, uint32_t ev, int op)
{
	struct epoll_event e = { .events = ev, .data.ptr = s };

	if (epoll_ctl(b->ep, op, s->fd, &e) == -1) {
		perror("epoll_ctl");
		exit(1);
	}
}

static void
slot_start(struct bench *b, struct slot *s)
{
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1) {
		perror("socket");
		exit(1);
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->ssl = NULL;
	s->sent = 0;
	s->answered = 0;
	s->phase = CONNECTING;
	if (connect(s->fd, (struct sockaddr *)&b->sa, sizeof(b->sa)) == -1 && errno != EINPROGRESS) {
		perror("connect");
		exit(1);
	}
	slot_watch(b, s, EPOLLOUT, EPOLL_CTL_ADD);
}

static void
slot_end(struct bench *b, struct slot *s, int ok)
{
	if (ok)
		b->done++;
	else
		b->failed++;
	if (ok && s->ssl != NULL && b->resume) {
		SSL_SESSION *got = SSL_get1_session(s->ssl);

		b->resumed += SSL_session_reused(s->ssl) != 0;
		/* Freed unshut, a session is struck from resumption: count this one as shut. */
		SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		if (got != NULL && SSL_SESSION_is_resumable(got)) {
			SSL_SESSION_free(b->sess);
			b->sess = got;
		} else
			SSL_SESSION_free(got);
	}
	if (s->ssl != NULL) {
		if (ok && !b->request)
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	ERR_clear_error();
	close(s->fd);
	s->fd = -1;
	if (b->count == 0 || b->done + b->failed < b->count)
		slot_start(b, s);
}

/* Maps an SSL result onto epoll interest; 1 to wait, 0 when it failed. */
static int
slot_wait(struct bench *b, struct slot *s, int r)
{
	int e = SSL_get_error(s->ssl, r);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		slot_watch(b, s, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
		return 1;
	}
	return 0;
}

static void
slot_step(struct bench *b, struct slot *s)
{
	char buf[16384];
	size_t n;
	int r;

	switch (s->phase) {
	case CONNECTING:
		s->ssl = SSL_new(b->ctx);
		SSL_set_fd(s->ssl, s->fd);
		SSL_set_tlsext_host_name(s->ssl, b->name);
		if (b->resume && b->sess != NULL)
			SSL_set_session(s->ssl, b->sess);
		SSL_set_connect_state(s->ssl);
		s->phase = HANDSHAKE;
		/* FALLTHROUGH */
	case HANDSHAKE:
		if ((r = SSL_do_handshake(s->ssl)) != 1) {
			if (!slot_wait(b, s, r))
				slot_end(b, s, 0);
			return;
		}
		if (!b->request) {
			slot_end(b, s, 1);
			return;
		}
		s->phase = WRITING;
		/* FALLTHROUGH */
	case WRITING:
		if ((r = SSL_write_ex(s->ssl, b->req + s->sent, b->reqlen - s->sent, &n)) != 1) {
			if (!slot_wait(b, s, r))
				slot_end(b, s, 0);
			return;
		}
		if ((s->sent += n) < b->reqlen)
			return;
		s->phase = READING;
		slot_watch(b, s, EPOLLIN, EPOLL_CTL_MOD);
		/* FALLTHROUGH */
	case READING:
		while ((r = SSL_read_ex(s->ssl, buf, sizeof(buf), &n)) == 1)
			if (!s->answered && n >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
				s->answered = 1;
		if (slot_wait(b, s, r))
			return;
		/* "Connection: close": the answer ends when the server closes. */
		slot_end(b, s, s->answered && SSL_get_error(s->ssl, r) == SSL_ERROR_ZERO_RETURN);
		return;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: tlsclient -p PORT -n NAME [-c CONNS] [-d SECONDS] [-k COUNT] [-r] [-s] [-2]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench b = { 0 };
	struct epoll_event ev[256];
	struct slot *slots;
	int c, i, conns = 32, secs = 10, port = 0, tls12 = 0;
	double start, end, t;

	while ((c = getopt(argc, argv, "p:n:c:d:k:rs2")) != -1) {
		switch (c) {
		case 'p': port = atoi(optarg); break;
		case 'n': b.name = optarg; break;
		case 'c': conns = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		case 'k': b.count = strtoul(optarg, NULL, 10); break;
		case 'r': b.request = 1; break;
		case 's': b.resume = 1; break;
		case '2': tls12 = 1; break;
		default: usage();
		}
	}
	if (port <= 0 || b.name == NULL || conns < 1 || conns > MAX_CONNS || secs < 1)
		usage();
	b.sa.sin_family = AF_INET;
	b.sa.sin_port = htons((uint16_t)port);
	b.sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b.reqlen = (size_t)snprintf(b.req, sizeof(b.req),
	    "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", b.name);
	b.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(b.ctx, SSL_VERIFY_NONE, NULL);
	/* Sessions are kept by hand (b.sess), not by OpenSSL's client cache. */
	SSL_CTX_set_session_cache_mode(b.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(b.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (tls12)
		SSL_CTX_set_max_proto_version(b.ctx, TLS1_2_VERSION);
	if ((b.ep = epoll_create1(EPOLL_CLOEXEC)) == -1 || (slots = calloc(conns, sizeof(*slots))) == NULL)
		return 1;
	for (i = 0; i < conns; i++)
		slot_start(&b, &slots[i]);
	start = now_s();
	end = start + secs;
	while ((t = now_s()) < end && (b.count == 0 || b.done + b.failed < b.count)) {
		int n = epoll_wait(b.ep, ev, 256, 100);

		for (i = 0; i < n; i++)
			slot_step(&b, ev[i].data.ptr);
	}
	t = now_s() - start;
	printf("{\"done\": %lu, \"failed\": %lu, \"resumed\": %lu, \"seconds\": %.3f, \"rate\": %.1f}\n",
	    b.done, b.failed, b.resumed, t, b.done / t);
	return 0;
}
