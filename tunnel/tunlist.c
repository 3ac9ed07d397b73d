/* `tunnel list` rows (see tunlist.h). */
#include "config.h"

#include <stdlib.h>

#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "tunnel/tunlist.h"
#include "tunnel/tunproc.h"
#include "worker/upstream.h"

void
tunlist_encode(const struct tunnel_ctx *t, struct wbuf *w, tunlist_info_fn *info_fn)
{
	const struct tunnel_rec *r;
	struct h2client_info info;
	uint16_t n = 0;
	size_t at;

	wb_u16(w, 0);	/* the count, written once known */
	for (r = t->recs; r != NULL && n < MSG_T_LIST_MAX; r = r->next) {
		if (!r->ready || r->c == NULL)
			continue;
		info_fn(r->c, &info);
		wb_str(w, r->name);
		wb_str(w, r->peer);
		wb_str(w, r->subject);
		wb_u64(w, (uint64_t)r->not_after);
		wb_u64(w, r->since_s);
		wb_u32(w, info.in_flight);
		wb_u64(w, info.served);
		wb_u32(w, info.ping_rtt_us);
		wb_u32(w, info.going_away ? 1 : 0);
		n++;
	}
	at = w->len;
	w->len = 0;
	wb_u16(w, n);
	w->len = at;
}

int
tunlist_send(const struct tunnel_ctx *t, int fd, uint32_t seq)
{
	uint8_t *buf = malloc(IPC_MAX_PAYLOAD);
	struct wbuf w;
	int rc;

	if (buf == NULL)
		return -1;
	wb_init(&w, buf, IPC_MAX_PAYLOAD);
	tunlist_encode(t, &w, h2client_session_info);
	rc = w.bad ? -1 : ipc_send(fd, MSG_T_LIST, seq, 0, buf, w.len, -1);
	if (rc == -1)
		log_warnx("tunnel list: cannot answer the master");
	free(buf);
	return rc;
}
