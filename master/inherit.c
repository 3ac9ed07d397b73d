/*
 * The set of inherited listening sockets and their matching: a socket is
 * used only for the same kind, the same worker index and the very address
 * it is bound to, so a changed haloyd.conf never serves HTTPS on an HTTP
 * socket or a removed address; what is left over is closed.
 */
#include "config.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "master/inherit.h"
#include "share/addr.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

_Static_assert(INHERIT_ADDR_MAX == MSG_HANDOVER_ADDR_MAX, "one bound for a hand-over address");

static const char *const kind_names[] = { NULL, "http", "https", "tunnel", "hop", "metrics" };

void
inherit_init(struct inherit *h)
{
	memset(h, 0, sizeof(*h));
}

int
inherit_add(struct inherit *h, uint32_t kind, uint32_t worker, const char *addr, int fd)
{
	struct inherit_sock *v;

	if (strlen(addr) > INHERIT_ADDR_MAX || h->n == INHERIT_MAX) {
		log_warnx("inherited listener %s: too long or too many", addr);
		goto fail;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap == 0 ? 16 : h->cap * 2;
		if ((v = reallocarray(h->v, cap, sizeof(*v))) == NULL) {
			log_warn("inherited listeners");
			goto fail;
		}
		h->v = v;
		h->cap = cap;
	}
	/* systemd's fds are inheritable: no child of ours may keep a listener open. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		log_warn("inherited listener %s", addr);
		goto fail;
	}
	v = &h->v[h->n++];
	v->kind = kind;
	v->worker = worker;
	util_strlcpy(v->addr, addr, sizeof(v->addr));
	v->fd = fd;
	v->systemd = 0;
	return 0;
fail:
	close(fd);
	return -1;
}

/* Same family, port and IP: what bind(2) would call the same address. */
static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

/* The socket really listens, on a stream, at want. */
static int
socket_is(int fd, const struct sockaddr_storage *want)
{
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	int v = 0;
	socklen_t vl = sizeof(v);

	memset(&got, 0, sizeof(got));
	if (getsockname(fd, (struct sockaddr *)&got, &len) == -1 || !same_addr(&got, want))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) == -1 || v != SOCK_STREAM)
		return 0;
	vl = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v == 1;
}

int
inherit_take(struct inherit *h, uint32_t kind, const char *addr, uint32_t worker)
{
	struct sockaddr_storage want, named;
	socklen_t len;
	size_t i;
	int fd;

	memset(&want, 0, sizeof(want));
	if (h == NULL || addr_parse(addr, &want, &len) == -1)
		return -1;
	for (i = 0; i < h->n; i++) {
		struct inherit_sock *s = &h->v[i];

		memset(&named, 0, sizeof(named));
		if (s->fd < 0 || s->kind != kind || s->worker != worker ||
		    addr_parse(s->addr, &named, &len) == -1 || !same_addr(&named, &want) ||
		    !socket_is(s->fd, &want))
			continue;
		fd = s->fd;
		s->fd = -1;
		return fd;
	}
	return -1;
}

size_t
inherit_close_rest(struct inherit *h)
{
	size_t i, n = 0;

	for (i = 0; i < h->n; i++)
		if (h->v[i].fd >= 0) {
			/* A connection queued on it now is reset: see ARCHITECTURE.md, Upgrades. */
			log_warnx("inherited listener %s (worker %u) is not configured any more: "
			    "closed", h->v[i].addr, h->v[i].worker);
			close(h->v[i].fd);
			n++;
		}
	free(h->v);
	inherit_init(h);
	return n;
}

int
inherit_fdname(uint32_t kind, uint32_t worker, const char *addr, char *buf, size_t len)
{
	size_t i, at;
	int n;

	if (kind == 0 || kind >= ARRAY_LEN(kind_names) || strchr(addr, '_') != NULL ||
	    (n = snprintf(buf, len, "%s-%u-%s", kind_names[kind], worker, addr)) < 0 ||
	    (size_t)n >= len || (size_t)n > INHERIT_NAME_MAX)
		return -1;
	at = (size_t)n - strlen(addr);
	for (i = at; buf[i] != '\0'; i++)
		if (buf[i] == ':')
			buf[i] = '_';
	return 0;
}

int
inherit_parse_fdname(const char *name, uint32_t *kind, uint32_t *worker, char *addr,
    size_t len)
{
	const char *dash1, *dash2;
	char num[8];
	uint64_t w;
	size_t k, i;

	if ((dash1 = strchr(name, '-')) == NULL || (dash2 = strchr(dash1 + 1, '-')) == NULL ||
	    (size_t)(dash2 - dash1 - 1) >= sizeof(num) || strlen(dash2 + 1) >= len)
		return -1;
	for (k = 1; k < ARRAY_LEN(kind_names); k++)
		if (strlen(kind_names[k]) == (size_t)(dash1 - name) &&
		    strncmp(name, kind_names[k], (size_t)(dash1 - name)) == 0)
			break;
	memcpy(num, dash1 + 1, (size_t)(dash2 - dash1 - 1));
	num[dash2 - dash1 - 1] = '\0';
	if (k == ARRAY_LEN(kind_names) || util_parse_u64(num, 0, 1023, &w) == -1)
		return -1;
	for (i = 0; dash2[1 + i] != '\0'; i++)
		addr[i] = dash2[1 + i] == '_' ? ':' : dash2[1 + i];
	addr[i] = '\0';
	*kind = (uint32_t)k;
	*worker = (uint32_t)w;
	return 0;
}
