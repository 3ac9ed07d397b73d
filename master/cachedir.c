/*
 * The cache folder (see cachedir.h). The workers run as their own user and
 * open the folder by path, so it belongs to that user (0700), and a state
 * folder that holds it gets search permission for others (0711): no
 * listing, and the store and the ACME folder keep their own modes (0600,
 * 0700), as RUNTIME_DIR does for the tunnel hop.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master/cachedir.h"
#include "master/master.h"
#include "share/log.h"

static const char *const cachedir_files[] = { "data.mdb", "lock.mdb" };

int
cachedir_prepare(struct master *m)
{
	const char *dir = m->cfg.cache_path, *state = m->cfg.state_dir;
	size_t slen = strlen(state), i;
	struct passwd *pw;
	char path[4096];

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_warn("cache_path %s", dir);
		return -1;
	}
	if (geteuid() != 0)
		return 0;	/* the workers keep our uid */
	if ((pw = getpwnam(m->cfg.user)) == NULL)
		return -1;	/* resolve_identities said so */
	if (chown(dir, pw->pw_uid, pw->pw_gid) == -1) {
		log_warn("cache_path %s: cannot give it to user %s", dir, m->cfg.user);
		return -1;
	}
	/* Files a root-run haloyd-ctl or an older layout left behind. */
	for (i = 0; i < sizeof(cachedir_files) / sizeof(cachedir_files[0]); i++)
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, cachedir_files[i]) <
		    sizeof(path) && chown(path, pw->pw_uid, pw->pw_gid) == -1 && errno != ENOENT)
			log_warn("%s: cannot give it to user %s", path, m->cfg.user);
	if (strncmp(dir, state, slen) == 0 && dir[slen] == '/' && strchr(dir + slen + 1, '/') == NULL &&
	    chmod(state, 0711) == -1) {
		log_warn("state_dir %s: cannot let the workers reach the cache", state);
		return -1;
	}
	return 0;
}
