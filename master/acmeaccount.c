/*
 * Where the ACME child finds the account key of a shared PostgreSQL store
 * (issue 20): the master sends it acme_store, the child's own connection
 * string (MSG_A_ACCOUNT_STORE), and never reads acme_account itself, so
 * the master's database role needs no privilege on it. The child reads
 * the key there, or makes and adds the first one (acme/account.c). With
 * SQLite nothing is sent: the child makes and keeps its own key.
 */
#include "config.h"

#include "master/acmeint.h"
#include "master/master.h"
#include "share/ipc.h"
#include "share/msg.h"
#include "share/cursor.h"

int
acmeaccount_send(struct acme_peer *a)
{
	uint8_t buf[2 + MSG_A_STORE_MAX];
	const char *conninfo = a->m->cfg.acme_store;
	struct wbuf b;

	if (conninfo == NULL)
		return 0;
	wb_init(&b, buf, sizeof(buf));
	wb_str(&b, conninfo);
	return b.bad ? -1 : proc_send(&a->proc, MSG_A_ACCOUNT_STORE, 0, 0, buf, b.len, -1);
}
