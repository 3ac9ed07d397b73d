/*
 * The master's process table: every child role (workers, the ACME child,
 * the tunnel worker to come) is described once by a struct proc_role, and
 * every running child is a struct proc in the table. Spawn (fork + fexecve
 * of our own executable, the socketpair on fd 3), HELLO, the read loop,
 * respawn with back-off, stop and the exit status are written here once;
 * a role adds only its messages and hooks.
 */
#ifndef HALOYD_PROC_H
#define HALOYD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "share/evloop.h"

struct master;
struct ipc_handler;
struct wbuf;
struct proc;

struct proc_role {
	const char *name;	/* the -R argument: "worker", "acme" */
	const char *title;	/* in the log: "worker", "acme child" */
	uint32_t hello_role;	/* the ROLE_* its HELLO must carry */
	int indexed;		/* instances are numbered: -I N, checked in HELLO */
	int wrappable;		/* exec'd under HALOYD_WORKER_WRAPPER when set (master/wrapper.h) */
	/* Whom it runs as (dropped to in the child when we are root). */
	const char *(*user)(const struct master *m);
	uint64_t backoff_min_ms;	/* respawn delay after a first quick death */
	uint64_t backoff_max_ms;	/* doubling stops here; also the wait after a failed fork */
	uint64_t stable_ms;		/* alive this long: respawned at once, back-off reset */
	/* Its messages after HELLO; the dispatcher checks sizes and fds first. */
	const struct ipc_handler *handlers;
	size_t nhandlers;
	/* Optional hooks. */
	void (*on_spawn)(struct proc *p);	/* forked: reset the role's state */
	int (*on_hello)(struct proc *p);	/* HELLO accepted: start-up state; -1 kills it */
	void (*on_down)(struct proc *p);	/* its channel is gone (killed, closed, exited) */
	void (*on_exit)(struct proc *p, int status);	/* reaped, before any respawn */
	int (*ask_stop)(struct proc *p, uint32_t deadline_ms);	/* -1 (or none): SIGTERM */
	/* Its rows in haloyd-ctl status after role, index and pid; none: not listed. */
	void (*status_fields)(const struct proc *p, struct wbuf *w);
	uint16_t nstatus_fields;
};

struct proc {
	struct master *m;
	const struct proc_role *role;
	void *arg;		/* the role's state, for its handlers and hooks */
	struct proc *next;	/* the master's table */
	int index;		/* instance; -1 for a role with a single one */
	pid_t pid;		/* 0 while not running */
	int sock;		/* our end of the socketpair, -1 while not connected */
	struct ev_io io;
	int hello;		/* its HELLO arrived and was accepted */
	int ready;		/* on_hello sent its start-up state */
	uint64_t started_ms;
	uint64_t backoff_ms;	/* the next respawn delay after a quick death */
	struct ev_timer respawn;
	uint32_t spawns;	/* how many times it was started */
	int stopped;		/* proc_stop asked: not respawned until proc_spawn */
};

/* Puts p (role, index, the role's state arg) in m's table; not started. */
void proc_add(struct master *m, struct proc *p, const struct proc_role *role, int index,
    void *arg);
/* Takes p out of the table (stopped timers and channel; the process is not signalled). */
void proc_remove(struct proc *p);
/* Starts p and says HELLO; on failure schedules a retry. 0 or -1. */
int proc_spawn(struct proc *p);
/* Kills a misbehaving child (SIGKILL); it is respawned when reaped. */
void proc_kill(struct proc *p, const char *why);
/* Sends one message; on failure kills p ("its socket is full or broken"). 0 or -1. */
int proc_send(struct proc *p, uint16_t type, uint32_t seq, uint32_t gen, const void *payload,
    size_t len, int fd);
/* Reaps every exited child (SIGCHLD) and schedules respawns. */
void proc_reap(struct master *m);
/* Asks p to stop (the role's ask_stop, else SIGTERM) and respawns it no more. */
void proc_stop(struct proc *p, uint32_t deadline_ms);
/* Children of role (every role when NULL) still running. */
size_t proc_running(const struct master *m, const struct proc_role *role);
/* SIGKILLs every running child of role (every role when NULL). */
void proc_kill_all(struct master *m, const struct proc_role *role);
/* "worker 3" or "acme child", for log lines. */
const char *proc_label(const struct proc *p, char *buf, size_t len);
/* Writes p's haloyd-ctl status row into w; 0, or -1 when its role is not listed. */
int proc_status_row(const struct proc *p, struct wbuf *w);

#endif
