/* One tunnel to the proxy (see tunnel.h). */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "agent/agent.h"
#include "agent/astream.h"
#include "agent/tunnel.h"
#include "share/log.h"
#include "share/util.h"

static const char h2_magic[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void tunnel_io(struct ev_loop *l, struct ev_io *io, uint32_t events);
static void tunnel_timer(struct ev_loop *l, struct ev_timer *tm);
static void tunnel_read(struct tunnel *t);
static void tunnel_log_failure(struct tunnel *t, const char *why);

/* Resolves (blocking: the agent serves no client while it dials) and starts a connect. */
static int
tunnel_dial(struct tunnel *t)
{
	const struct agentconf *c = &t->ag->conf;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	int rc, one = 1;

	if ((rc = getaddrinfo(c->proxy_host, c->proxy_port, &hints, &res)) != 0) {
		tunnel_log_failure(t, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		t->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (t->fd == -1)
			continue;
		if (connect(t->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
			break;
		close(t->fd);
		t->fd = -1;
	}
	if (ai != NULL) {
		const struct addrinfo *o;

		for (o = ai->ai_next; o != NULL && t->nalt < TUNNEL_ALT_MAX; o = o->ai_next)
			if (o->ai_addrlen <= sizeof(t->alt[0])) {
				memcpy(&t->alt[t->nalt], o->ai_addr, o->ai_addrlen);
				t->altlen[t->nalt++] = o->ai_addrlen;
			}
		setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(t->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		getnameinfo(ai->ai_addr, ai->ai_addrlen, t->peer, sizeof(t->peer), NULL, 0,
		    NI_NUMERICHOST);
	} else {
		tunnel_log_failure(t, strerror(errno));
	}
	freeaddrinfo(res);
	return t->fd == -1 ? -1 : 0;
}

/* The name the proxy's certificate must carry and the SNI we send. */
static const char *
tunnel_peer_name(const struct agentconf *c)
{
	return c->sni[0] != '\0' ? c->sni : c->proxy_host;
}

static int
tunnel_is_address(const char *s)
{
	unsigned char b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static int
tunnel_tls_start(struct tunnel *t)
{
	const char *name = tunnel_peer_name(&t->ag->conf);
	X509_VERIFY_PARAM *vp;

	if ((t->ssl = SSL_new(t->ag->tls)) == NULL || SSL_set_fd(t->ssl, t->fd) != 1)
		return -1;
	vp = SSL_get0_param(t->ssl);
	if (tunnel_is_address(name)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
			return -1;
	} else if (SSL_set_tlsext_host_name(t->ssl, name) != 1 || SSL_set1_host(t->ssl, name) != 1) {
		return -1;
	}
	SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_connect_state(t->ssl);
	t->state = TUNNEL_TLS;
	return 0;
}

struct tunnel *
tunnel_open(struct agent *ag, struct tslot *slot)
{
	struct tunnel *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->ag = ag;
	t->slot = slot;
	t->idx = slot->idx;
	t->fd = -1;
	ev_timer_init(&t->timer, tunnel_timer, t);
	if (tunnel_dial(t) == -1 || tunnel_tls_start(t) == -1 ||
	    ev_io_start(ag->loop, &t->io, t->fd, EPOLLIN | EPOLLOUT, tunnel_io, t) == -1) {
		if (t->ssl != NULL)
			SSL_free(t->ssl);
		if (t->fd != -1)
			close(t->fd);
		free(t);
		return NULL;
	}
	t->state = TUNNEL_CONNECT;
	ev_timer_start(ag->loop, &t->timer, ag->conf.connect_timeout_ms);
	t->next = ag->tunnels;
	ag->tunnels = t;
	return t;
}

static void
tunnel_free(void *arg)
{
	struct tunnel *t = arg;
	struct agent *ag = t->ag;
	struct tunnel **pp;

	for (pp = &ag->tunnels; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	while (t->streams != NULL)
		astream_abort(t->streams);
	ev_io_stop(ag->loop, &t->io);
	ev_timer_stop(ag->loop, &t->timer);
	nghttp2_session_del(t->h2);
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	if (t->fd != -1)
		close(t->fd);
	bytequeue_free(&t->out);
	free(t);
	agent_tunnel_freed(ag);
}

/* One line per state change: a reconnect failing the same way again is a debug line. */
static void
tunnel_log_failure(struct tunnel *t, const char *why)
{
	if (t->slot == NULL || strcmp(t->slot->last_error, why) != 0)
		log_warnx("tunnel %u: %s:%s: %s", t->idx, t->ag->conf.proxy_host,
		    t->ag->conf.proxy_port, why);
	else
		log_debug("tunnel %u: again: %s", t->idx, why);
	if (t->slot != NULL)
		util_strlcpy(t->slot->last_error, why, sizeof(t->slot->last_error));
}

void
tunnel_kill(struct tunnel *t, const char *why)
{
	if (t->dead)
		return;
	t->dead = 1;
	if (t->state == TUNNEL_READY)
		log_notice("tunnel %u: closed (%s, %u streams cut)", t->idx, why, t->nstreams);
	else
		tunnel_log_failure(t, why);
	ev_io_stop(t->ag->loop, &t->io);
	ev_timer_stop(t->ag->loop, &t->timer);
	if (t->slot != NULL)
		agent_tunnel_lost(t->ag, t, 0);
	t->slot = NULL;
	ev_defer_once(t->ag->loop, tunnel_free, t, &t->close_pending);
}

/* --- nghttp2 callbacks: the tunnel's own frames; streams go to astream.c */

static int
on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct tunnel *t = ud;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (astream_new(t, f->hd.stream_id) == NULL)
		return nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id,
		    NGHTTP2_INTERNAL_ERROR) == 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE :
		    NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int
on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
	struct astream *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);

	(void)flags;
	(void)ud;
	if (s == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	return astream_header(s, (const char *)name, namelen, (const char *)value, valuelen);
}

static void
tunnel_became_ready(struct tunnel *t)
{
	t->state = TUNNEL_READY;
	t->ready_at = ev_now(t->ag->loop);
	t->slot->last_error[0] = '\0';
	log_notice("tunnel %u: ready to %s:%s (%s)", t->idx, t->ag->conf.proxy_host,
	    t->ag->conf.proxy_port, t->peer);
	ev_timer_start(t->ag->loop, &t->timer, t->ag->conf.ping_idle_ms);
	agent_tunnel_ready(t->ag, t);
}

static int
on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
	struct tunnel *t = ud;
	struct astream *s;

	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && t->state == TUNNEL_SETTINGS && t->slot != NULL)
			tunnel_became_ready(t);
		return 0;
	case NGHTTP2_PING:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
			return 0;
		t->ping_out = 0;
		/* A round trip after the shutdown notice: streams it raced with have arrived. */
		if (t->stop_stage == 1) {
			t->stop_stage = 2;
			nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE,
			    nghttp2_session_get_last_proc_stream_id(h2), NGHTTP2_NO_ERROR, NULL, 0);
		}
		return 0;
	case NGHTTP2_GOAWAY:
		t->goaway_recv = 1;
		log_notice("tunnel %u: GOAWAY from the proxy (last stream %d, code %u): "
		    "finishing %u streams, dialing a replacement", t->idx,
		    f->goaway.last_stream_id, f->goaway.error_code, t->nstreams);
		if (t->slot != NULL)
			agent_tunnel_lost(t->ag, t, 1);
		t->slot = NULL;
		return 0;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
		if (s == NULL)
			return 0;
		return astream_frame(s, f->hd.type == NGHTTP2_HEADERS,
		    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
	default:
		return 0;
	}
}

static int
on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
    void *ud)
{
	struct astream *s = nghttp2_session_get_stream_user_data(h2, id);

	(void)flags;
	(void)ud;
	if (s == NULL) {
		/* A stream we gave up on: its bytes still count against the connection. */
		nghttp2_session_consume_connection(h2, len);
		return 0;
	}
	return astream_body(s, (const char *)data, len);
}

static int
on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud)
{
	struct astream *s = nghttp2_session_get_stream_user_data(h2, id);

	(void)ud;
	if (s != NULL)
		astream_closed(s, code);
	return 0;
}

/* Why nghttp2 ends a session (a protocol error of the proxy's), for the log. */
static int
on_error(nghttp2_session *h2, int code, const char *msg, size_t len, void *ud)
{
	struct tunnel *t = ud;

	(void)h2;
	log_info("tunnel %u: HTTP/2: %.*s (%s)", t->idx, (int)len, msg, nghttp2_strerror(code));
	return 0;
}

static int
tunnel_session(struct tunnel *t)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, TUNNEL_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, TUNNEL_MAX_HEADER_LIST },
	};
	int rc = -1;

	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_error_callback2(cb, on_error);
	/* The rhttp dialect: we wrote the magic, the proxy never sends one. */
	nghttp2_option_set_no_recv_client_magic(opt, 1);
	/* WINDOW_UPDATE only once the bytes reached the app: back-pressure end to end. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	if (nghttp2_session_server_new2(&t->h2, cb, t, opt) != 0 ||
	    nghttp2_submit_settings(t->h2, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(t->h2, NGHTTP2_FLAG_NONE, 0,
	    TUNNEL_CONN_WINDOW) != 0)
		goto out;
	rc = 0;
out:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	return rc;
}

/* --- transport */

static const char *
tunnel_tls_error(void)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	return e != 0 ? ERR_reason_error_string(e) : strerror(errno);
}

/* TLS done: ALPN h2 or nothing, then the magic, our SETTINGS, and wait for theirs. */
static int
tunnel_established(struct tunnel *t)
{
	const unsigned char *alpn = NULL;
	unsigned alen = 0;

	SSL_get0_alpn_selected(t->ssl, &alpn, &alen);
	if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
		tunnel_kill(t, "the proxy did not select ALPN h2");
		return -1;
	}
	if (bytequeue_add(&t->out, h2_magic, sizeof(h2_magic), TUNNEL_OUT_MAX) == -1 ||
	    tunnel_session(t) == -1) {
		tunnel_kill(t, "out of memory");
		return -1;
	}
	t->state = TUNNEL_SETTINGS;
	t->last_read = ev_now(t->ag->loop);
	log_debug("tunnel %u: TLS %s with %s, waiting for SETTINGS", t->idx,
	    SSL_get_version(t->ssl), t->peer);
	return 0;
}

/*
 * The connect failed: the proxy's next address, if it has one (a name may
 * give ::1 and 127.0.0.1 and the proxy listen on one). 0 when one is dialing.
 */
static int
tunnel_next_addr(struct tunnel *t)
{
	int one = 1, fd;

	while (t->nextalt < t->nalt) {
		const struct sockaddr *sa = (const struct sockaddr *)&t->alt[t->nextalt];
		socklen_t len = t->altlen[t->nextalt++];

		if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
			continue;
		if (connect(fd, sa, len) == -1 && errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		ev_io_stop(t->ag->loop, &t->io);
		close(t->fd);
		t->fd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		getnameinfo(sa, len, t->peer, sizeof(t->peer), NULL, 0, NI_NUMERICHOST);
		if (SSL_set_fd(t->ssl, fd) != 1 ||
		    ev_io_start(t->ag->loop, &t->io, fd, EPOLLIN | EPOLLOUT, tunnel_io, t) == -1)
			return -1;
		return 0;
	}
	return -1;
}

static void
tunnel_handshake(struct tunnel *t, uint32_t events)
{
	int rc, err;
	long vr;

	if (t->state == TUNNEL_CONNECT) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		socklen_t len = sizeof(err);
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
			errno = err;
			if (tunnel_next_addr(t) == 0)
				return;
			tunnel_kill(t, strerror(err));
			return;
		}
		t->state = TUNNEL_TLS;
	}
	ERR_clear_error();
	if ((rc = SSL_do_handshake(t->ssl)) == 1) {
		if (tunnel_established(t) == 0) {
			ev_io_modify(t->ag->loop, &t->io, EPOLLIN);
			/* The proxy's SETTINGS may have come with the last handshake record. */
			errno = 0;
			tunnel_read(t);
			tunnel_flush(t);
		}
		return;
	}
	err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		ev_io_modify(t->ag->loop, &t->io, EPOLLIN | (err == SSL_ERROR_WANT_WRITE ? EPOLLOUT : 0));
		return;
	}
	if ((vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
		char why[256];

		snprintf(why, sizeof(why), "the proxy's certificate: %s",
		    X509_verify_cert_error_string(vr));
		tunnel_kill(t, why);
		return;
	}
	tunnel_kill(t, err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ?
	    "connection closed during the TLS handshake" : tunnel_tls_error());
}

void
tunnel_flush(struct tunnel *t)
{
	const uint8_t *data;
	ssize_t n;
	int rc, err;

	/* A stream's answer submitted from inside a callback goes out after mem_recv returns. */
	if (t->dead || t->h2 == NULL || t->in_session)
		return;
	for (;;) {
		for (;;) {
			if (t->out.len >= TUNNEL_OUT_MAX)
				break;
			t->in_session = 1;
			n = nghttp2_session_mem_send(t->h2, &data);
			t->in_session = 0;
			if (n == 0)
				break;
			if (n < 0 || bytequeue_add(&t->out, data, (size_t)n, 2 * TUNNEL_OUT_MAX) == -1) {
				tunnel_kill(t, n < 0 ? nghttp2_strerror((int)n) : "out of memory");
				return;
			}
		}
		if (t->out.len == 0)
			break;
		ERR_clear_error();
		rc = SSL_write(t->ssl, bytequeue_head(&t->out), (int)t->out.len);
		if (rc > 0) {
			bytequeue_consume(&t->out, (size_t)rc);
			continue;
		}
		err = SSL_get_error(t->ssl, rc);
		if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
			tunnel_kill(t, err == SSL_ERROR_SYSCALL ? strerror(errno) : tunnel_tls_error());
			return;
		}
		break;
	}
	ev_io_modify(t->ag->loop, &t->io, EPOLLIN | (t->out.len > 0 ? EPOLLOUT : 0));
	if (!nghttp2_session_want_read(t->h2) && !nghttp2_session_want_write(t->h2) &&
	    t->out.len == 0)
		tunnel_kill(t, "session over");
	else if ((t->goaway_recv || t->stop_stage == 2) && t->nstreams == 0 && t->out.len == 0)
		tunnel_kill(t, t->stop_stage ? "stopped" : "drained after GOAWAY");
}

static void
tunnel_read(struct tunnel *t)
{
	uint8_t b[16384];
	ssize_t r;
	int rc, err;

	for (;;) {
		ERR_clear_error();
		if ((rc = SSL_read(t->ssl, b, sizeof(b))) > 0) {
			t->last_read = ev_now(t->ag->loop);
			t->in_session = 1;
			r = nghttp2_session_mem_recv(t->h2, b, (size_t)rc);
			t->in_session = 0;
			if (r < 0) {
				tunnel_kill(t, nghttp2_strerror((int)r));
				return;
			}
			if (t->dead)
				return;
			continue;
		}
		err = SSL_get_error(t->ssl, rc);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return;
		tunnel_kill(t, err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL &&
		    ERR_peek_error() == 0 && errno == 0) ? "closed by the proxy" :
		    err == SSL_ERROR_SYSCALL ? strerror(errno) : tunnel_tls_error());
		return;
	}
}

static void
tunnel_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct tunnel *t = io->arg;

	(void)l;
	if (t->dead)
		return;
	if (t->state < TUNNEL_SETTINGS) {
		tunnel_handshake(t, events);
		return;
	}
	errno = 0;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		tunnel_read(t);
	tunnel_flush(t);
}

static void
tunnel_timer(struct ev_loop *l, struct ev_timer *tm)
{
	struct tunnel *t = tm->arg;
	const struct agentconf *c = &t->ag->conf;
	uint64_t now = ev_now(l), idle;

	if (t->state != TUNNEL_READY) {
		tunnel_kill(t, t->state == TUNNEL_SETTINGS ? "no SETTINGS from the proxy in time" :
		    "connect or TLS handshake timed out");
		return;
	}
	if (t->ping_out) {
		if (now - t->ping_sent >= c->ping_timeout_ms) {
			tunnel_kill(t, "no PING ACK from the proxy");
			return;
		}
		ev_timer_start(l, tm, t->ping_sent + c->ping_timeout_ms - now);
		return;
	}
	idle = now - t->last_read;
	if (idle < c->ping_idle_ms) {
		ev_timer_start(l, tm, c->ping_idle_ms - idle);
		return;
	}
	if (nghttp2_submit_ping(t->h2, NGHTTP2_FLAG_NONE, NULL) != 0) {
		tunnel_kill(t, "out of memory");
		return;
	}
	t->ping_out = 1;
	t->ping_sent = now;
	ev_timer_start(l, tm, c->ping_timeout_ms);
	tunnel_flush(t);
}

void
tunnel_stop(struct tunnel *t)
{
	if (t->dead || t->stop_stage > 0)
		return;
	if (t->slot != NULL)
		t->slot = NULL;
	if (t->state != TUNNEL_READY) {
		tunnel_kill(t, "stopped before it was ready");
		return;
	}
	t->stop_stage = 1;
	/* The notice (last id 2^31-1), then the real GOAWAY once our PING comes back. */
	if (nghttp2_submit_shutdown_notice(t->h2) != 0 ||
	    nghttp2_submit_ping(t->h2, NGHTTP2_FLAG_NONE, NULL) != 0) {
		tunnel_kill(t, "out of memory");
		return;
	}
	if (!t->ping_out) {
		t->ping_out = 1;
		t->ping_sent = ev_now(t->ag->loop);
		ev_timer_start(t->ag->loop, &t->timer, t->ag->conf.ping_timeout_ms);
	}
	tunnel_flush(t);
}
