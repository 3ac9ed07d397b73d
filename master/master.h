/*
 * The master role: its per-process context, shared by the master's files.
 * The master is root, parses no network data, and owns the store, the
 * listeners, the children, the current snapshot and the control socket.
 */
#ifndef HALOYD_MASTER_H
#define HALOYD_MASTER_H

#include <stdint.h>
#include <sys/types.h>

#include "master/conf.h"
#include "master/listeners.h"
#include "master/rtable.h"
#include "share/evloop.h"
#include "share/shm.h"
#include "share/snap.h"

struct control;
struct metrics;
struct ipc_msg;
struct mkeyring;
struct mworker;
struct wrapper;
struct proc;
struct store;
struct dnsname;
struct dnsares;
struct handover;
struct takeover;

struct master {
	struct conf cfg;
	int argc;
	char **argv;
	struct ev_loop *loop;
	struct store *store;
	int self_fd;		/* our own executable, for fexecve */
	struct wrapper *wrap;	/* HALOYD_WORKER_WRAPPER (master/wrapper.h), else NULL */
	uint64_t ack_grace_ms;	/* PUBLISH_ACK_GRACE_MS, longer for wrapped workers */
	struct listeners lst;
	struct listeners lst_https;	/* listen_https: LISTENER_HTTPS sockets */
	struct mkeyring *keyring;	/* certificates index, ticket keys, current keyring */
	struct proc *procs;	/* the process table (master/proc.h): every child */
	struct mworker *workers;	/* master/workers.h; each also in procs */
	size_t nworkers;
	/* the current generation: what every new or respawned worker gets */
	int snap_fds[SNAP_SHARDS];	/* the images of the set (share/snap.h), -1 before */
	uint32_t snap_gens[SNAP_SHARDS];	/* the generation that built each */
	uint64_t snap_dirty;	/* shards to build again at the next build */
	uint64_t snap_chal_hash;	/* of the ACME challenges image 0 holds */
	uint32_t snap_cert_index;	/* mkeyring_index_generation() the images were built with */
	int64_t cert_recheck;	/* when a host's certificate may change by time alone; 0 never */
	struct ev_timer cert_timer;	/* wakes the build that looks at them all again then */
	uint32_t gen;
	uint32_t nroutes;
	struct rtable rt;		/* every route, kept current (master/rtable.h) */
	int build_pending;		/* the store changed since the last build */
	struct ev_timer build_timer;	/* runs the pending build from the loop */
	struct ev_timer barrier_timer;	/* polices workers slow to ack */
	struct control *control;
	struct shm shm;		/* the region shared with workers (share/shm.h) */
	int shm_fd;		/* handed to every worker run, the same across respawns */
	struct metrics *metrics;	/* the listen_metrics listeners (master/metrics.c) */
	struct acme_peer *acme;	/* master/acmemaster.c; NULL with `acme off`; in procs */
	struct acmeshare *acmeshare;	/* other nodes' challenges (master/acmeshare.c); NULL: SQLite */
	struct ondemand *ondemand;	/* master/ondemand.c; NULL without acme_on_demand */
	struct mtunnel *tunnel;	/* master/tunnels.c; NULL without listen_tunnel; in procs */
	struct dnsname *dns;	/* backends by DNS name (master/dnsmaster.c) */
	struct dnsares *dnsres;	/* their resolver */
	struct cluster *cluster;	/* master/cluster.c; NULL without a shared store */
	struct ipc_msg *rx;	/* receive buffer for every channel (64 KiB) */
	struct handover *handover;	/* master/handover.c: giving our sockets to a new master */
	struct takeover *takeover;	/* master/takeover.c: taking them from an old one */
	uint32_t status_seq;	/* of the last MSG_W_STATUS_REQ round */
	int sigfd;
	struct ev_io sigio;
	struct ev_timer stop_timer;
	struct ev_timer watchdog_timer;
	int stopping;
	int drain_scope;	/* stopping for a restart, the children moved out (master/drainscope.h) */
	int exit_code;
	int ready_notified;
	uint64_t start_ms;
	uid_t worker_uid;	/* refused on the control socket */
	gid_t admin_gid;
	int have_admin_group;
};

int master_main(int argc, char **argv);
/* Re-reads haloyd.conf (SIGHUP, ctl reload); a bad file keeps the old settings. */
int master_reload(struct master *m);
/* Starts a graceful stop: no new work, children finish, then the loop ends. */
void master_stop(struct master *m, int exit_code);
/* After a hand-over: the same stop, within upgrade_drain, and systemd is not told. */
void master_drain(struct master *m);

#endif
