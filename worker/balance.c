/* Backend choice and passive health (see balance.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "share/log.h"
#include "share/snap.h"
#include "worker/balance.h"
#include "worker/context.h"

void
balance_free(struct balance *b)
{
	struct balance_health *h, *next;
	size_t i;

	for (i = 0; i < BALANCE_BUCKETS; i++)
		for (h = b->bucket[i]; h != NULL; h = next) {
			next = h->next;
			free(h);
		}
	*b = (struct balance){ 0 };
}

static struct balance_health *
balance_find(struct balance *b, uint32_t id, int create)
{
	struct balance_health **head = &b->bucket[id % BALANCE_BUCKETS], *h;

	for (h = *head; h != NULL; h = h->next)
		if (h->backend_id == id)
			return h;
	if (!create || (h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->backend_id = id;
	h->next = *head;
	*head = h;
	return h;
}

uint32_t
balance_start(struct worker *w, const struct snap_route *r)
{
	return w->balance.rr[r->id % (sizeof(w->balance.rr) / sizeof(w->balance.rr[0]))]++;
}

const struct snap_backend *
balance_pick(struct worker *w, const struct snap *s, const struct snap_route *r, uint32_t start,
    uint32_t *tries)
{
	while (*tries < r->be_count) {
		const struct snap_backend *be =
		    snap_backend_at(s, r->be_first + (start + *tries) % r->be_count);

		if (!balance_is_down(w, be->id))
			return be;
		(*tries)++;
	}
	return NULL;
}

void
balance_mark_down(struct worker *w, uint32_t backend_id)
{
	struct balance_health *h;

	if (w->cfg.backend_down_ms == 0 || (h = balance_find(&w->balance, backend_id, 1)) == NULL)
		return;
	if (h->down_until <= ev_now(w->loop))
		log_notice("backend %u: down for %u ms", backend_id, w->cfg.backend_down_ms);
	h->down_until = ev_now(w->loop) + w->cfg.backend_down_ms;
}

int
balance_is_down(struct worker *w, uint32_t backend_id)
{
	struct balance_health *h = balance_find(&w->balance, backend_id, 0);

	return h != NULL && h->down_until > ev_now(w->loop);
}

int
balance_backend_fault(int err)
{
	switch (err) {
	case ECONNREFUSED: case ETIMEDOUT: case EHOSTUNREACH: case ENETUNREACH:
	case ECONNRESET: case EHOSTDOWN: case ENETDOWN:
	case ENOENT:	/* a unix backend's socket file is missing: nothing listens */
		return 1;
	default:
		return 0;
	}
}
