/*
 * The file-descriptor store of systemd (sd_pid_notify_with_fds FDSTORE=1,
 * sd_listen_fds_with_names). A name says kind, worker and address
 * (master/inherit.c); a passed fd whose name is not ours is closed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "master/fdstore.h"
#include "master/inherit.h"
#include "master/master.h"
#include "master/metrics.h"
#include "master/tunnels.h"
#include "share/log.h"
#include "share/msg.h"

static void
put_all(const struct listeners *l, uint32_t kind, char *const *addrs)
{
	char name[INHERIT_NAME_MAX + 1], state[INHERIT_NAME_MAX + 32];
	size_t a, w;

	for (a = 0; a < l->naddrs; a++)
		for (w = 0; w < l->nworkers; w++) {
			int fd = listeners_fd(l, a, w);

			if (inherit_fdname(kind, (uint32_t)w, addrs[a], name, sizeof(name)) == -1)
				continue;
			snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", name);
			if (sd_pid_notify_with_fds(0, 0, state, &fd, 1) <= 0)
				log_warnx("systemd refused to store listener %s", name);
		}
}

void
fdstore_put(struct master *m)
{
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	put_all(&m->lst, LISTENER_HTTP, m->cfg.listen_http.v);
	put_all(&m->lst_https, LISTENER_HTTPS, m->cfg.listen_https.v);
	if (metrics_listeners(m) != NULL)
		put_all(metrics_listeners(m), LISTENER_METRICS, m->cfg.listen_metrics.v);
	if (tunnels_listeners(m) != NULL)
		put_all(tunnels_listeners(m), LISTENER_TUNNEL, &m->cfg.listen_tunnel);
}

void
fdstore_drop_unused(const struct inherit *h)
{
	char name[INHERIT_NAME_MAX + 1];
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->v[i].fd >= 0 && h->v[i].systemd &&
		    inherit_fdname(h->v[i].kind, h->v[i].worker, h->v[i].addr, name,
		    sizeof(name)) == 0 &&
		    sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name) <= 0)
			log_warnx("systemd did not drop listener %s from its store", name);
}

int
fdstore_take(struct inherit *h)
{
	char **names = NULL, addr[INHERIT_ADDR_MAX + 1];
	uint32_t kind, worker;
	int i, n, got = 0;

	if ((n = sd_listen_fds_with_names(1, &names)) <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (names == NULL || names[i] == NULL ||
		    inherit_parse_fdname(names[i], &kind, &worker, addr, sizeof(addr)) == -1) {
			log_warnx("systemd passed fd %d (%s) that is not a haloyd listener: closed", fd,
			    names != NULL && names[i] != NULL ? names[i] : "no name");
			close(fd);
		} else if (inherit_add(h, kind, worker, addr, fd) == 0) {
			h->v[h->n - 1].systemd = 1;
			got++;
		}
	}
	for (i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
	log_info("systemd passed %d listening sockets from its store", got);
	return got;
}
