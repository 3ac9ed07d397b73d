/*
 * Listening sockets inherited from a running master (the control-socket
 * hand-over) or from systemd's file-descriptor store: the set received, the
 * match of each against the configuration (kind, worker, socket address)
 * and the FDNAME= names that carry kind, worker and address through systemd.
 */
#ifndef HALOYD_INHERIT_H
#define HALOYD_INHERIT_H

#include <stddef.h>
#include <stdint.h>

#define INHERIT_MAX 4096	/* sockets accepted in one hand-over: addresses x workers */
#define INHERIT_ADDR_MAX 128	/* = MSG_HANDOVER_ADDR_MAX */
#define INHERIT_NAME_MAX 160	/* an FDNAME=: "https-255-" and an address */

struct inherit_sock {
	uint32_t kind;		/* enum msg_listener_kind */
	uint32_t worker;
	char addr[INHERIT_ADDR_MAX + 1];
	int fd;			/* -1 once taken */
	int systemd;		/* from systemd's store (master/fdstore.c) */
};

struct inherit {
	struct inherit_sock *v;
	size_t n, cap;
};

void inherit_init(struct inherit *h);
/* Keeps fd (owned from now on; closed on failure); 0, or -1 when full or addr too long. */
int inherit_add(struct inherit *h, uint32_t kind, uint32_t worker, const char *addr, int fd);
/*
 * The received listening socket of kind for worker whose bound address is
 * addr (compared as socket addresses, checked on the socket itself with
 * getsockname and SO_ACCEPTCONN), taken out of the set; -1 when none.
 */
int inherit_take(struct inherit *h, uint32_t kind, const char *addr, uint32_t worker);
/* Sockets left after taking: closed (logged), and the set freed. Returns how many. */
size_t inherit_close_rest(struct inherit *h);

/* "http-0-127.0.0.1_8080": FDNAME= allows no ':', and no address has '_'. 0 or -1. */
int inherit_fdname(uint32_t kind, uint32_t worker, const char *addr, char *buf, size_t len);
/* The reverse of inherit_fdname; 0 or -1 for a name that is not ours. */
int inherit_parse_fdname(const char *name, uint32_t *kind, uint32_t *worker, char *addr,
    size_t len);

#endif
