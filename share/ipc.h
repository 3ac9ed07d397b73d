/*
 * IPC framing over SOCK_SEQPACKET: one recvmsg is one message, with a typed
 * 16-byte header, a payload of at most IPC_MAX_PAYLOAD bytes and at most one
 * file descriptor. Per-peer dispatch tables check size and fd before the
 * handler runs. Used between master and children and on the control socket.
 */
#ifndef HALOYD_IPC_H
#define HALOYD_IPC_H

#include <stddef.h>
#include <stdint.h>

#define IPC_MAX_PAYLOAD 65536u
#define IPC_F_FD 0x0001u	/* the message carries exactly one fd */

struct ipc_hdr {
	uint16_t type;
	uint16_t flags;
	uint32_t len;	/* payload bytes after the header */
	uint32_t seq;	/* request/reply matching; 0 when unused */
	uint32_t gen;	/* snapshot generation the message is about */
};

struct ipc_msg {
	struct ipc_hdr h;
	int fd;		/* -1 unless IPC_F_FD; the receiver owns it */
	uint8_t data[IPC_MAX_PAYLOAD];
};

/*
 * Sends one message (non-blocking). fd is -1 for none. Returns 0, or -1 with
 * errno (EAGAIN when the peer's queue is full, EMSGSIZE when too large).
 */
int ipc_send(int sock, uint16_t type, uint32_t seq, uint32_t gen,
    const void *payload, size_t len, int fd);

/*
 * Receives one message. Returns 1 with *m filled, 0 when the peer closed,
 * -1 on a malformed message (errno EBADMSG: truncated, oversize, header
 * length mismatch, fd flag and fd disagreeing, more than one fd) or a socket
 * error. EAGAIN means nothing is queued. Any fd of a rejected message is closed.
 */
int ipc_recv(int sock, struct ipc_msg *m);

/* Closes m->fd if the handler did not take it. */
void ipc_msg_close_fd(struct ipc_msg *m);

enum ipc_fd_rule {
	IPC_FD_NONE = 0,
	IPC_FD_REQUIRED,
	IPC_FD_OPTIONAL,
};

typedef int ipc_handler_fn(void *ctx, struct ipc_msg *m);

struct ipc_handler {
	uint16_t type;
	uint8_t fd_rule;
	uint32_t min_len;
	uint32_t max_len;
	ipc_handler_fn *fn;
};

/*
 * Looks m's type up in tab and checks its size and fd before calling the
 * handler. Returns the handler's result, or -1 (m's fd closed, errno
 * EBADMSG) when the type is unknown or the size or fd is not allowed.
 */
int ipc_dispatch(const struct ipc_handler *tab, size_t n, void *ctx, struct ipc_msg *m);

#endif
