/* Default locations (FHS), overridable by haloyd.conf and the command line. */
#ifndef HALOYD_PATHS_H
#define HALOYD_PATHS_H

#define HALOYD_DEFAULT_CONFIG "/etc/haloyd/haloyd.conf"
#define HALOYD_DEFAULT_STATE_DIR "/var/lib/haloyd"
#define HALOYD_DEFAULT_RUNTIME_DIR "/run/haloyd"
#define HALOYD_CONTROL_SOCKET "control.sock"	/* inside the runtime dir */
#define TUNNEL_HOP_SOCK "tunnel.sock"
#define HALOYD_STORE_FILE "haloyd.db"		/* inside the state dir */
#define HALOYD_DEFAULT_USER "haloyd"
#define HALOYD_DEFAULT_ACME_USER "haloyd-acme"
#define HALOYD_ACME_DIR "acme"			/* inside the state dir: the ACME child's */
#define HALOYD_DEFAULT_ADMIN_GROUP "haloyd-admin"
#define HALOYD_DEFAULT_ERROR_PAGES "/etc/haloyd/errors"	/* NNN.html overrides */

#endif
