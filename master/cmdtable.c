/*
 * The table of control commands. Sizes and the fd rule are checked here,
 * before any handler reads a byte, so every command gets the same checks;
 * the handler then reads its arguments with the bounded cursor and ends
 * with cur_end, so nothing trails.
 */
#include "config.h"

#include <stddef.h>

#include <openssl/crypto.h>

#include "master/tunnels.h"
#include "master/acmemaster.h"
#include "master/apply.h"
#include "master/cachecmds.h"
#include "master/certcmds.h"
#include "master/clustercmds.h"
#include "master/cmdtable.h"
#include "master/commands.h"
#include "master/handover.h"
#include "master/stats.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/log.h"
#include "share/msg.h"
#include "share/util.h"

#define S(n) (2 + (n))	/* a string of at most n bytes */

static const struct cmd cmds[] = {
	{ MSG_C_ROUTE_ADD, "route add", S(1) + 6, IPC_MAX_PAYLOAD, CMD_CHANGES,
	    commands_route_add },
	{ MSG_C_ROUTE_RM, "route rm", S(1), S(MSG_STR_MAX), CMD_CHANGES, commands_route_rm },
	{ MSG_C_ROUTE_LIST, "route list", 0, 0, 0, commands_route_list },
	{ MSG_C_ROUTE_SHOW, "route show", S(1), S(MSG_STR_MAX), 0, commands_route_show },
	{ MSG_C_ROUTE_SET, "route set", S(1) + 2, IPC_MAX_PAYLOAD, CMD_CHANGES,
	    commands_route_set },
	{ MSG_C_ALIAS_ADD, "alias add", 2 * S(1), 2 * S(MSG_STR_MAX), CMD_CHANGES,
	    commands_alias_add },
	{ MSG_C_ALIAS_RM, "alias rm", 2 * S(1), 2 * S(MSG_STR_MAX), CMD_CHANGES,
	    commands_alias_rm },
	{ MSG_C_BACKEND_ADD, "backend add", 2 * S(1), 2 * S(MSG_STR_MAX), CMD_CHANGES,
	    commands_backend_add },
	{ MSG_C_BACKEND_RM, "backend rm", 2 * S(1), 2 * S(MSG_STR_MAX), CMD_CHANGES,
	    commands_backend_rm },
	{ MSG_C_STATUS, "status", 0, 0, 0, commands_status },
	{ MSG_C_RELOAD, "reload", 0, 0, CMD_CHANGES, commands_reload },
	{ MSG_C_CERT_IMPORT, "cert import", S(1) + S(1) + S(1) + 1,
	    S(MSG_STR_MAX) + S(MSG_PEM_CHAIN_MAX) + S(MSG_PEM_KEY_MAX) + 1,
	    CMD_CHANGES | CMD_SECRET, certcmds_import },
	{ MSG_C_CERT_LIST, "cert list", 0, 0, 0, certcmds_list },
	{ MSG_C_CERT_SHOW, "cert show", S(1), S(MSG_STR_MAX), 0, certcmds_show },
	{ MSG_C_CERT_RM, "cert rm", S(1), S(MSG_STR_MAX), CMD_CHANGES, certcmds_rm },
	/* "" asks for every route. */
	{ MSG_C_CERT_STATUS, "cert status", S(0), S(MSG_STR_MAX), 0, acme_cmd_status },
	{ MSG_C_CERT_RENEW, "cert renew", S(0), S(MSG_STR_MAX), 0, acme_cmd_renew },
	{ MSG_C_STATS, "stats", 0, 0, 0, stats_cmd },
	{ MSG_C_TUNNEL_LIST, "tunnel list", 0, 0, 0, tunnels_cmd_list },
	{ MSG_C_EXPORT, "export", 0, 0, 0, apply_cmd_export },
	/* The file itself comes as a sealed memfd (master/apply.c). */
	{ MSG_C_APPLY, "apply", 1 + S(1), 1 + S(MSG_STR_MAX), CMD_CHANGES | CMD_FD, apply_cmd_apply },
	{ MSG_C_CACHE_PURGE, "cache purge", 2 * S(0), 2 * S(MSG_STR_MAX), 0, cachecmds_purge },
	{ MSG_C_CACHE_STATS, "cache stats", 0, 0, 0, cachecmds_stats },
	{ MSG_C_CLUSTER_STATUS, "cluster status", 0, 0, 0, clustercmds_status },
	/* Hand-over (master/handover.c): the last two come from the new master. */
	{ MSG_C_UPGRADE, "upgrade", 0, 0, 0, handover_cmd_upgrade },
	{ MSG_C_TAKEOVER, "takeover", 0, 0, 0, handover_cmd_takeover },
	{ MSG_C_TAKEOVER_READY, "takeover ready", 4, 4, 0, handover_cmd_ready },
};
#undef S

_Static_assert(2 + MSG_STR_MAX + 2 + MSG_PEM_CHAIN_MAX + 2 + MSG_PEM_KEY_MAX + 1 <=
    IPC_MAX_PAYLOAD, "a cert import fits one IPC message");

const struct cmd *
cmdtable_find(uint16_t type)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(cmds); i++)
		if (cmds[i].type == type)
			return &cmds[i];
	return NULL;
}

int
cmdtable_run(struct master *m, struct cclient *cl, struct ipc_msg *msg)
{
	const struct cmd *cmd = cmdtable_find(msg->h.type);
	struct cur c;
	int rc;

	if (cmd == NULL || (msg->fd >= 0) != ((cmd->flags & CMD_FD) != 0) ||
	    msg->h.len < cmd->min_len || msg->h.len > cmd->max_len) {
		ipc_msg_close_fd(msg);
		rc = -1;
	} else {
		log_debug("control: %s", cmd->name);
		cur_init(&c, msg->data, msg->h.len);
		rc = cmd->fn(m, cl, &c);
		ipc_msg_close_fd(msg);	/* a CMD_FD handler that did not take it */
	}
	if (cmd != NULL && (cmd->flags & CMD_SECRET))
		OPENSSL_cleanse(msg->data, msg->h.len);
	return rc;
}
