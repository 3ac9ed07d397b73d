/*
 * Inside the master's ACME module (master/acme.c: the child, challenges,
 * outcomes; master/acmequeue.c: the order table, the schedule, `cert
 * status|renew`): the shared context and what each file offers the other.
 */
#ifndef HALOYD_MASTER_ACMEINT_H
#define HALOYD_MASTER_ACMEINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "master/proc.h"
#include "master/snapbuild.h"
#include "share/evloop.h"
#include "share/hostname.h"
#include "share/msg.h"
#include "share/snap.h"

struct master;

#define ACME_NAMES_MAX 100		/* names in one order (Let's Encrypt's limit) */
#define ACME_ORDER_DEADLINE_MS (10 * 60000)	/* an order still running then: the child is stuck */

struct acme_chal {
	char token[MSG_A_TOKEN_MAX + 1];
	char keyauth[SNAP_CHAL_KEYAUTH_MAX + 1];
};

/* The order the child works on: at most one. */
struct acme_run {
	uint64_t id;		/* 0: none */
	int64_t route_id;
	size_t nnames;
	char names[ACME_NAMES_MAX][HOSTNAME_MAX + 1];	/* canonical first */
	uint64_t started_ms;
	int waiting;		/* a CHAL_ADD waits for chal_gen to be served */
	uint32_t chal_gen;
	char chal_token[MSG_A_TOKEN_MAX + 1];
};

struct acme_peer {
	struct master *m;
	struct proc proc;		/* the child: master/proc.h */
	struct ev_timer tick;		/* looks for a due order */
	struct ev_timer deadline;	/* the running order's */
	uint64_t next_id;
	struct acme_run run;
	char thumbprint[MSG_A_THUMBPRINT_LEN + 1];	/* the child's account, "" until it says */
	struct acme_chal chals[SNAP_CHAL_MAX];
	struct snapb_chal snapchals[SNAP_CHAL_MAX];
	uint32_t nchals;
};

/* --- acmequeue.c */

/* 1 when the n names of a (any order) are the k sorted names of b. */
int acmeq_names_equal(char *const *a, size_t n, char *const *b, size_t k);
/* Seconds to wait after the attempts-th failed attempt: doubling, jittered, capped, >= retry_after. */
int64_t acmeq_backoff_s(const struct master *m, int64_t attempts, uint64_t retry_after);
/* Looks for a due order after ms. */
void acmeq_tick_soon(struct acme_peer *a, uint64_t ms);
void acmeq_tick_fire(struct ev_loop *l, struct ev_timer *t);

/* --- acme.c */

/* "acme DOMAIN: what detail" at prio, with HALOYD_DOMAIN as a journal field. */
void acme_run_log(const struct acme_run *r, int prio, const char *what, const char *detail);

#endif
