/*
 * `haloyd-ctl cluster status`: the nodes sharing the PostgreSQL store, as
 * this node knows them (their heartbeat rows, re-read when the store is
 * reachable): name, address, the change number each serves, its last
 * heartbeat and whether it counts as live.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "master/cluster.h"
#include "master/clustercmds.h"
#include "master/control.h"
#include "master/master.h"
#include "share/cursor.h"
#include "share/msg.h"

#define CLUSTER_ROW_BUF 512

static void
node_row(struct cclient *cl, const struct cluster_node *n, const char *state)
{
	uint8_t buf[CLUSTER_ROW_BUF];
	struct wbuf w;

	wb_init(&w, buf, sizeof(buf));
	wb_u16(&w, 5);
	control_row_str(&w, "node", n->name);
	control_row_str(&w, "address", n->addr[0] != '\0' ? n->addr : "-");
	control_row_int(&w, "served", n->served);
	control_row_int(&w, "last_seen", n->seen);
	control_row_str(&w, "state", state);
	control_reply_row(cl, &w);
}

int
clustercmds_status(struct master *m, struct cclient *cl, struct cur *c)
{
	const struct cluster_node *nodes;
	const char *self, *state;
	int64_t now = time(NULL);
	size_t i, n;
	int up;

	if (cur_end(c) == -1)
		return -1;
	if ((nodes = cluster_nodes(m, &n, &self, &up)) == NULL) {
		control_reply_fail(cl, CTL_EINVAL, "no shared store: haloyd.conf has no "
		    "`store postgresql://...`");
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(nodes[i].name, self) == 0)
			state = up ? "self" : "self, store unreachable";
		else
			state = nodes[i].seen >= now - CLUSTER_LIVE_S ? "live" : "gone";
		node_row(cl, &nodes[i], state);
	}
	control_reply_end(cl);
	return 0;
}
