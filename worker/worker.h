/*
 * The worker role: an unprivileged process with one epoll loop that accepts
 * on its own listeners, serves HTTP/1.1 and proxies to backends, routing with
 * the current mmap'd snapshot. Its parent socket is fd 3.
 */
#ifndef HALOYD_WORKER_H
#define HALOYD_WORKER_H

struct worker_args {
	int index;		/* -I n */
	const char *user;	/* -U user: dropped to when started as root */
	int verbose;
	int log_target;		/* enum log_target */
	int sandbox;		/* 0 with -N (haloyd.conf `sandbox off`) */
};

/* Runs the worker until the master goes away or asks it to stop; returns the exit code. */
int worker_main(const struct worker_args *a);

struct worker;
struct ipc_msg;
/*
 * One message from the master through the worker's table (type, size and fd
 * checked, then its handler): what the parent socket's reader calls for each
 * message, and the IPC fuzzing harness (tests/fuzz) without a socket. 0 or -1.
 */
int worker_dispatch(struct worker *w, struct ipc_msg *m);

#endif
