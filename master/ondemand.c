/*
 * On-demand TLS in the master (see ondemand.h): the worker's request, the
 * gate, the asks sent to the ACME child and their answers, and the
 * MSG_W_ONDEMAND_NO that releases waiting handshakes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "master/acmemaster.h"
#include "master/acmeint.h"
#include "master/master.h"
#include "master/odgate.h"
#include "master/ondemand.h"
#include "master/proc.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/cursor.h"
#include "share/hostname.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define ODASK_MAX 64	/* asks the child has not answered yet; more are refused */

struct od_ask {
	uint64_t id;
	char name[HOSTNAME_MAX + 1];
};

struct ondemand {
	struct odgate gate;
	struct od_ask asks[ODASK_MAX];
	uint32_t nasks;
	uint64_t next_id;
};

int
ondemand_init(struct master *m)
{
	struct ondemand *od;

	if (!m->cfg.acme_on_demand || m->ondemand != NULL)
		return 0;
	if ((od = calloc(1, sizeof(*od))) == NULL ||
	    odgate_init(&od->gate, (uint32_t)m->cfg.acme_on_demand_rate,
	    m->cfg.acme_on_demand_backoff_ms, util_now_ms()) == -1) {
		free(od);
		return -1;
	}
	m->ondemand = od;
	log_info("acme: on-demand TLS on: asking %s, at most %u names a minute",
	    m->cfg.acme_ask, (unsigned)m->cfg.acme_on_demand_rate);
	return 0;
}

void
ondemand_free(struct master *m)
{
	if (m->ondemand == NULL)
		return;
	odgate_free(&m->ondemand->gate);
	free(m->ondemand);
	m->ondemand = NULL;
}

/* Tells one worker (from), or every worker (NULL), that no certificate comes for name. */
static void
od_say_no(struct master *m, struct proc *from, const char *name)
{
	uint8_t buf[2 + HOSTNAME_MAX];
	struct wbuf b;
	size_t i;

	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, name);
	if (from != NULL) {
		(void)proc_send(from, MSG_W_ONDEMAND_NO, 0, 0, buf, b.len, -1);
		return;
	}
	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].proc.ready)
			(void)proc_send(&m->workers[i].proc, MSG_W_ONDEMAND_NO, 0, 0, buf, b.len, -1);
}

/*
 * A stored name without a certificate in the worker's keyring: its order
 * runs or is due (the keyring comes), or it failed lately (no).
 */
static int
od_stored_waits(struct master *m, int64_t id)
{
	struct acme_peer *a = m->acme;
	struct store_order row;

	if (a->run.id != 0 && a->run.route_id == -id)
		return 1;
	if (store_order_get(m->store, -id, &row) == STORE_OK && strcmp(row.state, "failed") == 0 &&
	    row.next_attempt > (int64_t)time(NULL))
		return 0;
	if (a->run.id == 0)
		acmeq_tick_soon(a, 0);
	return 1;
}

static int
od_send_ask(struct master *m, const char *name)
{
	struct ondemand *od = m->ondemand;
	uint8_t buf[8 + 2 + MSG_A_ASK_URL_MAX + 2 + HOSTNAME_MAX];
	struct od_ask *k;
	struct wbuf b;

	k = &od->asks[od->nasks];
	k->id = ++od->next_id;
	util_strlcpy(k->name, name, sizeof(k->name));
	wb_init(&b, buf, sizeof(buf));
	wb_u64(&b, k->id);
	wb_str(&b, m->cfg.acme_ask);
	wb_str(&b, name);
	if (b.bad || proc_send(&m->acme->proc, MSG_A_ASK, 0, 0, buf, b.len, -1) == -1)
		return -1;
	od->nasks++;
	log_info("acme: on-demand: asking whether %s may have a certificate", name);
	return 0;
}

void
ondemand_request(struct master *m, struct proc *from, const char *raw)
{
	struct ondemand *od = m->ondemand;
	char name[HOSTNAME_MAX + 1];
	uint64_t now = util_now_ms();
	int64_t id;

	if (od == NULL || m->acme == NULL)
		return;
	/* SNI is a client's input: only names a public CA could issue for, never a wildcard. */
	if (hostname_normalize_name(raw, name) <= 0 || name[0] == '*' ||
	    acme_name_refusal(name) != NULL || store_host_exists(m->store, name) == STORE_OK) {
		od_say_no(m, from, raw);
		return;
	}
	if (store_ondemand_get(m->store, name, &id) == STORE_OK) {
		if (!od_stored_waits(m, id))
			od_say_no(m, from, name);
		return;
	}
	/* A name that cannot be asked now must not spend the rate the next ones need. */
	if (od->nasks == ODASK_MAX || !m->acme->proc.ready) {
		log_debug("acme: on-demand: %s refused: the ACME child cannot take an ask now", name);
		od_say_no(m, from, name);
		return;
	}
	odgate_set(&od->gate, (uint32_t)m->cfg.acme_on_demand_rate, m->cfg.acme_on_demand_backoff_ms);
	switch (odgate_admit(&od->gate, name, now)) {
	case ODGATE_INFLIGHT:
		return;
	case ODGATE_ASK:
		if (od_send_ask(m, name) == 0)
			return;
		odgate_done(&od->gate, name, 0, now);
		break;
	case ODGATE_RATE:
		log_debug("acme: on-demand: %s refused: acme_on_demand_rate is spent", name);
		break;
	default:
		break;
	}
	od_say_no(m, from, name);
}

/* The answer for name: allowed names are stored and ordered by the schedule. */
static void
od_answer(struct master *m, const char *name, int allowed)
{
	struct ondemand *od = m->ondemand;
	int64_t id;

	if (allowed && store_ondemand_add(m->store, name, &id) != STORE_OK) {
		log_warnx("acme: on-demand: cannot store %s", name);
		allowed = 0;
	}
	odgate_done(&od->gate, name, !allowed, util_now_ms());
	if (!allowed) {
		log_info("acme: on-demand: %s refused by acme_ask; not asked again for %llu s", name,
		    (unsigned long long)(m->cfg.acme_on_demand_backoff_ms / 1000));
		od_say_no(m, NULL, name);
		return;
	}
	log_info("acme: on-demand: %s allowed; ordering its certificate", name);
	if (m->acme->run.id == 0)
		acmeq_tick_soon(m->acme, 0);
}

int
ondemand_on_ask_result(void *arg, struct ipc_msg *msg)
{
	struct acme_peer *a = arg;
	struct ondemand *od = a->m->ondemand;
	char name[HOSTNAME_MAX + 1];
	uint64_t id;
	uint32_t i;
	uint8_t ok;
	struct cur c;

	cur_init(&c, msg->data, msg->h.len);
	id = cur_u64(&c);
	ok = cur_u8(&c);
	if (cur_end(&c) == -1 || od == NULL || ok > 1)
		return -1;
	for (i = 0; i < od->nasks && od->asks[i].id != id; i++)
		;
	if (i == od->nasks)
		return -1;	/* an answer to no ask: the child is broken */
	util_strlcpy(name, od->asks[i].name, sizeof(name));
	memmove(&od->asks[i], &od->asks[i + 1], (od->nasks - i - 1) * sizeof(od->asks[0]));
	od->nasks--;
	od_answer(a->m, name, ok);
	return 0;
}

void
ondemand_child_gone(struct master *m)
{
	struct ondemand *od = m->ondemand;
	uint32_t i;

	if (od == NULL)
		return;
	/* Unanswered: neither allowed nor refused, so no back-off; the next handshake asks again. */
	for (i = 0; i < od->nasks; i++) {
		odgate_done(&od->gate, od->asks[i].name, 0, util_now_ms());
		od_say_no(m, NULL, od->asks[i].name);
	}
	od->nasks = 0;
}

void
ondemand_order_failed(struct master *m, const char *name)
{
	if (m->ondemand != NULL)
		od_say_no(m, NULL, name);
}
