/*
 * The harnesses' master fixture (see fuzzmaster.h). A set-up failure is the
 * harness's own, never the input's: it aborts at once.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/control.h"
#include "master/keyringbuild.h"
#include "master/publish.h"
#include "master/store.h"
#include "master/workers.h"
#include "share/ipc.h"
#include "tests/fuzz/fuzzmaster.h"

static char fm_dir[128];

static void
fm_cleanup(void)
{
	char cmd[192];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fm_dir);
	(void)!system(cmd);
}

static void
fm_fail(const char *what)
{
	fprintf(stderr, "fuzzmaster: %s failed\n", what);
	abort();
}

void
fuzzmaster_init(struct master *m, size_t nworkers, int control)
{
	char path[192];
	const char *tmp = getenv("TMPDIR");

	/* tests/fuzz/run gives each harness a TMPDIR of its own and removes it afterwards. */
	snprintf(fm_dir, sizeof(fm_dir), "%s/haloyd-fuzz.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(fm_dir) == NULL)
		fm_fail("mkdtemp");
	atexit(fm_cleanup);
	snprintf(path, sizeof(path), "%s/store.db", fm_dir);
	memset(m, 0, sizeof(*m));
	m->cfg.ticket_key_lifetime_ms = 3600000;
	m->cfg.user = m->cfg.acme_user = (char *)(uintptr_t)"root";
	m->cfg.log_target = (char *)(uintptr_t)"stderr";
	m->cfg.error_pages = (char *)(uintptr_t)"";
	m->cfg.admin_group = (char *)(uintptr_t)"";
	m->cfg.state_dir = m->cfg.runtime_dir = fm_dir;
	m->cfg.acme_directory = (char *)(uintptr_t)"https://ca.invalid/dir";
	m->cfg.acme_email = m->cfg.acme_ca_file = (char *)(uintptr_t)"";
	m->cfg.acme_renew_before = 33;
	m->cfg.acme_backoff_max_ms = 86400000;
	m->nworkers = nworkers;
	if ((m->loop = ev_loop_new()) == NULL || (m->rx = malloc(sizeof(*m->rx))) == NULL)
		fm_fail("loop");
	m->self_fd = -1;
	if (store_open(path, &m->store) != STORE_OK)
		fm_fail("store_open");
	if (mkeyring_init(m) == -1)
		fm_fail("mkeyring_init");
	publish_init(m);
	if (nworkers > 0 && workers_init(m) == -1)
		fm_fail("workers_init");
	if (control && control_open(m) == -1)
		fm_fail("control_open");
}

void
fuzzmaster_settle(struct master *m, int max)
{
	int i;

	for (i = 0; i < max; i++)
		if (ev_run_once(m->loop, 0) == -1)
			break;
}
