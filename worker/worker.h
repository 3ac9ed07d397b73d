/*
 * The worker role: an unprivileged process with one epoll loop that accepts
 * on its own listeners, serves HTTP/1.1 and proxies to backends, routing with
 * the current mmap'd snapshot. Its parent socket is fd 3.
 */
#ifndef HALOYD_WORKER_H
#define HALOYD_WORKER_H

#include "share/sandbox.h"

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
struct ipc_handler;
struct sockaddr;

/*
 * Another process that runs on the worker's loop and context (the tunnel
 * process, tunnel/tunproc.c): its name and HELLO role, its own messages
 * (looked up before the worker's), and hooks. Every hook may be NULL.
 */
struct worker_role {
	const char *name;		/* in the log */
	uint32_t hello_role;		/* ROLE_* */
	const struct ipc_handler *handlers;
	size_t nhandlers;
	/* Set-up after the worker's (its step, its state in w->role_ctx); -1 is fatal. */
	int (*start)(struct worker *w);
	/* A connection on a LISTENER_TUNNEL socket (the role owns fd). */
	void (*accept)(struct worker *w, int fd, const struct sockaddr *peer);
	/* A graceful stop began. */
	void (*stop)(struct worker *w);
	/* 1 while the graceful stop must wait for the role's own work. */
	int (*busy)(const struct worker *w);
	/* Before the worker's own cleanup. */
	void (*cleanup)(struct worker *w);
};

/* Runs role (NULL: a worker) until the master goes away or asks it to stop; the exit code. */
int worker_run(const struct worker_args *a, const struct worker_role *role);
/*
 * One message from the master through the worker's table (type, size and fd
 * checked, then its handler): what the parent socket's reader calls for each
 * message, and the IPC fuzzing harness (tests/fuzz) without a socket. 0 or -1.
 */
int worker_dispatch(struct worker *w, struct ipc_msg *m);

/*
 * Installs role's filter once the process has everything it needs (nothing
 * with `sandbox off`, nothing if it is already in); exits if it cannot.
 */
void worker_sandbox(struct worker *w, enum sandbox_role role);

#endif
