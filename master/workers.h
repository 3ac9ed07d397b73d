/*
 * The worker role of the process table (master/proc.h): what a worker is
 * handed after HELLO (config, its listeners, the current keyring and
 * snapshot), its acks and refusals, its status, and the sends to every
 * worker. Spawn, HELLO, the read loop and respawn are master/proc.c's.
 */
#ifndef HALOYD_WORKERS_H
#define HALOYD_WORKERS_H

#include <stddef.h>
#include <stdint.h>

#include "master/proc.h"

struct master;

/* One worker as the master sees it. */
struct mworker {
	struct proc proc;	/* pid, socket, ready, index: master/proc.h */
	uint32_t sent_gen;	/* last generation sent to it */
	uint32_t acked_gen;	/* last generation it acked */
	uint32_t keyring_gen;	/* generation of the last keyring sent to it, 0 = none */
	uint64_t sent_ms;	/* when sent_gen went out */
	uint64_t requests;	/* from its last MSG_W_STATUS */
	uint32_t connections;
	uint32_t status_seq;	/* seq of its last MSG_W_STATUS */
};

extern const struct proc_role workers_role;

/* m->nworkers entries in the process table; none started. */
int workers_init(struct master *m);
/* Starts every worker. */
void workers_spawn_all(struct master *m);
/* Sends the current snapshot to every worker that is ready. */
void workers_send_snapshot(struct master *m);
/* MSG_W_CONFIG's payload from m's configuration (the tunnel process gets it too). 0 or -1. */
int workers_config_msg(const struct master *m, uint8_t *buf, size_t size, size_t *len);
/* Sends MSG_W_CONFIG to every ready worker (after SIGHUP). */
void workers_send_config(struct master *m);
/* Asks every ready worker for MSG_W_STATUS with seq; returns how many were asked. */
int workers_request_status(struct master *m, uint32_t seq);
/* Asks every worker to stop gracefully within deadline_ms. */
void workers_stop_all(struct master *m, uint32_t deadline_ms);
/* Number of workers still running. */
size_t workers_running(const struct master *m);
void workers_kill_all(struct master *m);

#endif
