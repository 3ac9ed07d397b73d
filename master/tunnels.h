/*
 * The tunnel process as a role of the process table (master/proc.h),
 * present only when haloyd.conf has listen_tunnel: the master binds its two
 * listeners (the TLS listener agents dial, RUNTIME_DIR/tunnel.sock the
 * workers' hop) and reads its files as root, hands all of it over after
 * HELLO, and relays `haloyd-ctl tunnel list` to it.
 */
#ifndef HALOYD_MASTER_TUNNELS_H
#define HALOYD_MASTER_TUNNELS_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

struct master;
struct conf;
struct cclient;
struct cur;
struct inherit;
struct listeners;

/*
 * With listen_tunnel: binds (the TLS listener taken from h when a hand-over
 * passed it; h may be NULL), reads the files and starts the process. -1 on a
 * start-up error.
 */
int tunnels_init(struct master *m, struct inherit *h);
/* The agents' TLS listener (one socket), for a hand-over; NULL without listen_tunnel. */
const struct listeners *tunnels_listeners(const struct master *m);
/* haloyd.conf was reloaded: the workers' knobs (timeouts...) to the tunnel process too. */
void tunnels_send_config(struct master *m);
/* 1 when b's tunnel settings differ from a's (they need a restart). */
int tunnels_conf_changed(const struct conf *a, const struct conf *b);
/* A new keyring: to the tunnel process too when it serves the keyring's certificates. */
void tunnels_send_keyring(struct master *m);
/* Graceful stop (in-flight tunnel streams get deadline_ms). */
void tunnels_stop(struct master *m, uint32_t deadline_ms);
/*
 * 1 once the tunnel process has said HELLO and has its start-up state queued
 * (or there is none): `tunnel list` is answered from then on, so haloyd's
 * "ready" waits for it.
 */
int tunnels_started(const struct master *m);
/* 1 while the tunnel process runs. */
int tunnels_running(const struct master *m);
/* The tunnel process's pid, 0 when none runs. */
pid_t tunnels_pid(const struct master *m);
void tunnels_kill(struct master *m);
void tunnels_free(struct master *m);
/* 1 when the tunnel process answered list request seq (or is not there to answer). */
int tunnels_list_complete(const struct master *m, uint32_t seq);
/* `haloyd-ctl tunnel list` (master/cmdtable.c). */
int tunnels_cmd_list(struct master *m, struct cclient *cl, struct cur *c);

#endif
