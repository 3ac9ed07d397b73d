/*
 * Connections to the local app (--to): a non-blocking connect, and the
 * keep-alive pool a finished HTTP/1.1 exchange gives its connection back
 * to. The stream that holds a connection watches its fd itself.
 */
#ifndef HALOYD_AGENT_APPCONN_H
#define HALOYD_AGENT_APPCONN_H

#include <stdint.h>

#include "share/evloop.h"

#define APPCONN_IDLE_MAX 32		/* idle connections kept */
#define APPCONN_IDLE_MS 30000		/* older idle connections are not reused */

struct agent;

struct appconn {
	struct agent *ag;
	int fd;
	int connected;		/* the connect completed */
	int reused;		/* came from the pool */
	struct ev_io io;	/* started by the holder */
	struct appconn *next;
	uint64_t idle_since;
};

/* A live idle connection, else a new one being connected. NULL with errno. */
struct appconn *appconn_get(struct agent *ag);
/* Back to the pool (the holder stopped its watcher). */
void appconn_put(struct appconn *c);
void appconn_close(struct appconn *c);
/* Closes every idle connection. */
void appconn_clear(struct agent *ag);
/* After a connect: 0 when it succeeded, else -1 with errno. */
int appconn_finish_connect(struct appconn *c);

#endif
