/*
 * libFuzzer harness: the IPC channel between the processes. The input is a
 * list of records, each one message to one peer:
 *
 *	u8 op; u16 len (little-endian); len bytes
 *	op & 3: 0 the worker reads it from the master (worker_dispatch),
 *	        1 the master reads it from a worker (workers_role's table),
 *	        2 the master reads it from the acme child (acme_role's table),
 *	        3 a cursor program (share/cursor.c): no message at all
 *	op & 4: the message carries an fd: a sealed memfd of the bytes after
 *	        the payload (a snapshot or keyring image, for W_SNAP/W_KEYRING)
 *	op & 8: the bytes go on the socket as they are, header included;
 *	        else u16 type, u32 gen, u16 n, n payload bytes framed by ipc_send
 *
 * Every message crosses a real SOCK_SEQPACKET socketpair and is received
 * with ipc_recv (share/ipc.c: header, lengths, fd rules), then goes through
 * the peer's real dispatch table and handlers (share/ipc.c ipc_dispatch:
 * type, size and fd checks; then the cursor decoding of each payload).
 * Not fuzzed: the worker's MSG_HELLO from the master (a wrong one is fatal
 * by design: the master is the worker's trusted parent) and the acme
 * child's own table (its handlers start network I/O).
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/acmemaster.h"
#include "master/acmeint.h"
#include "master/proc.h"
#include "master/workers.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/snap.h"
#include "share/msg.h"
#include "share/sealed.h"
#include "tests/fuzz/fuzzmaster.h"
#include "tests/fuzz/fuzzworker.h"
#include "worker/tls.h"
#include "worker/worker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct worker w;
static struct master m;
static struct ipc_msg *rx;
static int sv[2];		/* the channel: [0] sends, [1] receives */
static int parent[2];		/* the worker's own channel to the master: [1] is drained */
static volatile uint64_t sink;

/* A record's reader: the fields of one record, bounded by its length. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static uint32_t
rd_num(struct rd *r, size_t n)
{
	uint32_t v = 0;
	size_t i;

	for (i = 0; i < n && r->left > 0; i++, r->p++, r->left--)
		v |= (uint32_t)*r->p << (8 * i);
	return v;
}

static const uint8_t *
rd_take(struct rd *r, size_t *n)
{
	const uint8_t *p = r->p;

	if (*n > r->left)
		*n = r->left;
	r->p += *n;
	r->left -= *n;
	return p;
}

/* Sends raw wire bytes with an optional fd, as a peer that breaks the framing would. */
static void
ipc_raw_send(int sock, const uint8_t *p, size_t n, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)(uintptr_t)p, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* A cursor program: each op byte reads one field from the data after the program. */
static void
cursor_program(struct rd *r)
{
	size_t plen = rd_num(r, 1), n;
	const uint8_t *prog = rd_take(r, &plen);
	uint8_t out[512];
	char str[300];
	struct cur c;
	struct wbuf wb;
	size_t i;

	cur_init(&c, r->p, r->left);
	wb_init(&wb, out, sizeof(out));
	for (i = 0; i < plen; i++) {
		switch (prog[i] % 8) {
		case 0:
			wb_u8(&wb, cur_u8(&c));
			break;
		case 1:
			wb_u16(&wb, cur_u16(&c));
			break;
		case 2:
			wb_u32(&wb, cur_u32(&c));
			break;
		case 3:
			wb_u64(&wb, cur_u64(&c));
			break;
		case 4:
			/* The op's high bits choose the destination size, as handlers' buffers vary. */
			if (cur_str(&c, str, 1 + prog[i] / 8 * 9 % sizeof(str)) == 0)
				wb_str(&wb, str);
			break;
		case 5:
			n = prog[i] / 8;
			sink += cur_blob(&c, n) != NULL;
			break;
		case 6:
			sink += (uint64_t)cur_end(&c);
			break;
		default:
			wb_blob(&wb, r->p, r->left < 40 ? r->left : 40);
			break;
		}
	}
	sink += wb.len + (uint64_t)wb.bad;
}

static void
deliver(int peer)
{
	struct mworker *mw = &m.workers[0];

	switch (peer) {
	case 0:
		if (rx->h.type == MSG_HELLO)
			break;	/* fatal by design: see the top of the file */
		(void)worker_dispatch(&w, rx);
		break;
	case 1:
		mw->proc.hello = mw->proc.ready = 1;
		mw->sent_gen = 5;
		(void)ipc_dispatch(workers_role.handlers, workers_role.nhandlers, mw, rx);
		break;
	default:
		(void)ipc_dispatch(acme_role.handlers, acme_role.nhandlers, m.acme, rx);
		break;
	}
	ipc_msg_close_fd(rx);
}

static void
one_record(uint8_t op, struct rd *r)
{
	const uint8_t *p;
	size_t n;
	uint16_t type = 0;
	uint32_t gen = 0;
	char err[128];
	int fd = -1;

	if ((op & 3) == 3) {
		cursor_program(r);
		return;
	}
	if (!(op & 8)) {
		type = (uint16_t)rd_num(r, 2);
		gen = rd_num(r, 4);
	}
	n = rd_num(r, 2);
	p = rd_take(r, &n);
	if ((op & 4) && (fd = sealed_create("fuzz-ipc", r->p, r->left, err, sizeof(err))) == -1)
		return;
	if (op & 8)
		ipc_raw_send(sv[0], p, n, fd);
	else
		(void)ipc_send(sv[0], type, 0, gen, p, n, fd);
	if (fd >= 0)
		close(fd);
	while (ipc_recv(sv[1], rx) == 1)
		deliver(op & 3);
}

static void
acme_peer_init(void)
{
	struct acme_peer *a = calloc(1, sizeof(*a));

	if (a == NULL)
		abort();
	a->m = &m;
	proc_add(&m, &a->proc, &acme_role, -1, a);
	ev_timer_init(&a->tick, acmeq_tick_fire, a);
	m.acme = a;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init("fuzz", -1, LOG_TARGET_STDERR, 0);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, parent) == -1 ||
	    (rx = malloc(sizeof(*rx))) == NULL)
		abort();
	fuzzworker_init(&w);
	w.parent = parent[0];
	if ((w.tls = tls_new(&w.snap)) == NULL)
		abort();
	fuzzmaster_init(&m, 1, 0);
	acme_peer_init();
	return 0;
}

/* What one input may have changed in the worker goes back, so inputs stay independent. */
static void
reset(void)
{
	char b[256];

	listen_close_all(&w);
	/* A generation whose last image did not come is dropped (worker.c keeps it otherwise). */
	snap_unref(w.snap_next);
	w.snap_next = NULL;
	w.snap_next_gen = w.snap_next_images = 0;
	w.snap_next_err[0] = '\0';
	w.stopping = 0;
	ev_timer_stop(w.loop, &w.stop_timer);
	ev_timer_stop(w.loop, &w.stop_grace);
	while (recv(parent[1], b, sizeof(b), MSG_DONTWAIT) > 0)
		;
	fuzzworker_settle(&w, 2);
	fuzzmaster_settle(&m, 2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rd in = { data, size };

	while (in.left >= 3) {
		uint8_t op = (uint8_t)rd_num(&in, 1);
		size_t n = rd_num(&in, 2);
		struct rd r = { rd_take(&in, &n), 0 };

		r.left = n;
		one_record(op, &r);
	}
	reset();
	return 0;
}
