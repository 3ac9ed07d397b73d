/*
 * c-ares under the master's DNS-name table (see dnsares.h). Chosen over
 * getaddrinfo in a thread: the answers carry TTLs (getaddrinfo's do not, so
 * re-resolving would be a guess), nothing blocks and no thread joins the
 * master, whose loop already has the epoll and timers c-ares needs; it
 * reads /etc/hosts too, so `localhost` works without any DNS server.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <ares.h>
#include <stdlib.h>
#include <string.h>

#include "master/dnsares.h"
#include "share/evloop.h"
#include "share/log.h"
#include "share/util.h"

#define DNSARES_SOCKS_MAX 16	/* one UDP socket a server, a TCP one for a truncated answer */
#define DNSARES_TIMEOUT_MS 2000	/* per try, so a dead server is a failure within seconds */
#define DNSARES_TRIES 2

struct dnsares_sock {
	int fd;			/* -1: free */
	struct ev_io io;
	struct dnsares *d;
};

struct dnsares {
	struct ev_loop *loop;
	ares_channel ch;
	struct ev_timer timer;
	struct dnsname *table;
	int destroying;		/* ares_destroy answers every lookup: not passed on */
	struct dnsares_sock socks[DNSARES_SOCKS_MAX];
};

struct dnsares_req {
	struct dnsares *d;
	uint64_t token;
};

/* c-ares's next timeout, on the loop's timer. */
static void
dnsares_arm(struct dnsares *d)
{
	struct timeval tv, *tvp;

	if ((tvp = ares_timeout(d->ch, NULL, &tv)) == NULL) {
		ev_timer_stop(d->loop, &d->timer);
		return;
	}
	(void)ev_timer_start(d->loop, &d->timer, (uint64_t)tvp->tv_sec * 1000 +
	    (uint64_t)tvp->tv_usec / 1000 + 1);
}

static void
dnsares_on_io(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct dnsares_sock *s = io->arg;
	struct dnsares *d = s->d;
	int fd = s->fd;

	(void)l;
	ares_process_fd(d->ch, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
	    (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
	dnsares_arm(d);
}

static void
dnsares_on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct dnsares *d = t->arg;

	(void)l;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dnsares_arm(d);
}

/* c-ares opens, changes and closes its sockets: watch them as it says. */
static void
dnsares_sock_state(void *arg, ares_socket_t fd, int readable, int writable)
{
	struct dnsares *d = arg;
	struct dnsares_sock *s = NULL, *free_slot = NULL;
	uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	size_t i;

	for (i = 0; i < DNSARES_SOCKS_MAX; i++) {
		if (d->socks[i].fd == fd)
			s = &d->socks[i];
		else if (d->socks[i].fd == -1 && free_slot == NULL)
			free_slot = &d->socks[i];
	}
	if (s != NULL && ev == 0) {
		ev_io_stop(d->loop, &s->io);
		s->fd = -1;
	} else if (s != NULL) {
		if (ev_io_modify(d->loop, &s->io, ev) == -1)
			log_warn("resolver: socket %d", fd);
	} else if (ev != 0 && free_slot != NULL) {
		free_slot->fd = fd;
		free_slot->d = d;
		if (ev_io_start(d->loop, &free_slot->io, fd, ev, dnsares_on_io, free_slot) == -1) {
			log_warn("resolver: socket %d", fd);
			free_slot->fd = -1;
		}
	} else if (ev != 0)
		log_warnx("resolver: more than %d sockets; socket %d not watched (its lookup "
		    "times out)", DNSARES_SOCKS_MAX, fd);
}

/* Every address of the answer, and its smallest TTL. */
static void
dnsares_on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dnsares_req *r = arg;
	struct dnsname_addr addrs[DNSNAME_ADDRS_MAX * 2];
	struct dnsname_answer a = { 0 };
	struct ares_addrinfo_node *n;
	size_t k = 0;

	(void)timeouts;
	if (!r->d->destroying && r->d->table != NULL) {
		a.ok = status == ARES_SUCCESS;
		a.err = ares_strerror(status);
		a.ttl_s = UINT32_MAX;
		for (n = res != NULL ? res->nodes : NULL; n != NULL && k < ARRAY_LEN(addrs);
		    n = n->ai_next) {
			if (n->ai_family == AF_INET)
				memcpy(addrs[k].addr,
				    &((struct sockaddr_in *)n->ai_addr)->sin_addr, 4);
			else if (n->ai_family == AF_INET6)
				memcpy(addrs[k].addr,
				    &((struct sockaddr_in6 *)n->ai_addr)->sin6_addr, 16);
			else
				continue;
			addrs[k++].family = (uint16_t)n->ai_family;
			if (n->ai_ttl >= 0 && (uint32_t)n->ai_ttl < a.ttl_s)
				a.ttl_s = (uint32_t)n->ai_ttl;
		}
		a.addrs = addrs;
		a.naddrs = k;
		dnsname_answer(r->d->table, r->token, &a);
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	free(r);
}

static int
dnsares_lookup(void *impl, const char *name, uint64_t token)
{
	struct dnsares *d = impl;
	struct ares_addrinfo_hints hints;
	struct dnsares_req *r;

	if ((r = malloc(sizeof(*r))) == NULL)
		return -1;
	r->d = d;
	r->token = token;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* We sort the addresses ourselves; c-ares's RFC 6724 sort would connect() to each. */
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(d->ch, name, NULL, &hints, dnsares_on_answer, r);
	dnsares_arm(d);
	return 0;
}

const struct dnsname_resolver_ops dnsares_ops = { dnsares_lookup };

static int
dnsares_channel(struct dnsares *d, const char *servers_csv, ares_channel *ch, char *err,
    size_t errlen)
{
	struct ares_options o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dnsares_sock_state;
	o.sock_state_cb_data = d;
	o.timeout = DNSARES_TIMEOUT_MS;
	o.tries = DNSARES_TRIES;
	rc = ares_init_options(ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS)
		return util_errf(err, errlen, "resolver: %s", ares_strerror(rc));
	if (servers_csv != NULL && (rc = ares_set_servers_ports_csv(*ch, servers_csv)) !=
	    ARES_SUCCESS) {
		ares_destroy(*ch);
		return util_errf(err, errlen, "resolver %s: %s", servers_csv, ares_strerror(rc));
	}
	return 0;
}

int
dnsares_new(struct ev_loop *loop, const char *servers_csv, struct dnsares **out, char *err,
    size_t errlen)
{
	struct dnsares *d;
	size_t i;
	int rc;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS)
		return util_errf(err, errlen, "resolver: %s", ares_strerror(rc));
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		ares_library_cleanup();
		return util_errf(err, errlen, "resolver: out of memory");
	}
	d->loop = loop;
	for (i = 0; i < DNSARES_SOCKS_MAX; i++)
		d->socks[i].fd = -1;
	ev_timer_init(&d->timer, dnsares_on_timer, d);
	if (dnsares_channel(d, servers_csv, &d->ch, err, errlen) == -1) {
		free(d);
		ares_library_cleanup();
		return -1;
	}
	*out = d;
	return 0;
}

void
dnsares_set_table(struct dnsares *d, struct dnsname *t)
{
	d->table = t;
}

/* Ends the channel: its lookups are answered (and dropped), its sockets closed. */
static void
dnsares_end(struct dnsares *d, ares_channel ch)
{
	d->destroying = 1;
	ares_destroy(ch);
	d->destroying = 0;
}

int
dnsares_restart(struct dnsares *d, const char *servers_csv, char *err, size_t errlen)
{
	ares_channel ch;

	/* The new channel first: a bad one keeps the old. Their sockets never share an fd. */
	if (dnsares_channel(d, servers_csv, &ch, err, errlen) == -1)
		return -1;
	dnsares_end(d, d->ch);
	d->ch = ch;
	dnsares_arm(d);
	return 0;
}

void
dnsares_free(struct dnsares *d)
{
	if (d == NULL)
		return;
	dnsares_end(d, d->ch);
	ev_timer_stop(d->loop, &d->timer);
	free(d);
	ares_library_cleanup();
}
