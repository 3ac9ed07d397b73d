/*
 * The cache folder (see cachedir.h). The workers run as their own user and
 * open the folder by path, so it belongs to that user and group root
 * (0770: the master, root without CAP_DAC_OVERRIDE, opens it for haloyd-ctl's
 * cache commands through the group), and a state folder that holds it gets
 * search permission for others (0711): no listing, and the store and the
 * ACME folder keep their own modes (0600, 0700), as RUNTIME_DIR does for
 * the tunnel hop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master/cachedir.h"
#include "master/master.h"
#include "share/log.h"

static const char *const cachedir_files[] = { "data.mdb", "lock.mdb" };

/*
 * The LMDB files, made here so the master can open them too: owned by the
 * workers' user and group root, 0660 (the workers' umask would make their
 * own 0600, and the master holds no CAP_DAC_OVERRIDE to read those).
 * Mode first, while we own it: the unit grants CAP_CHOWN, not CAP_FOWNER.
 */
static int
cachedir_file(const char *dir, const char *name, uid_t uid)
{
	char path[4096];
	struct stat st;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || (st.st_uid != uid && (fchmod(fd, 0660) == -1 ||
	    fchown(fd, uid, 0) == -1)) || (st.st_uid == uid && (st.st_mode & 0060) != 0060)) {
		log_warnx("%s: must be the workers' user's, group root, mode 0660", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
cachedir_prepare(struct master *m)
{
	const char *dir = m->cfg.cache_path, *state = m->cfg.state_dir;
	size_t slen = strlen(state), i;
	struct passwd *pw;
	struct stat st;

	if (mkdir(dir, 0770) == -1 && errno != EEXIST) {
		log_warn("cache_path %s", dir);
		return -1;
	}
	if (geteuid() != 0)
		return 0;	/* the workers keep our uid */
	if ((pw = getpwnam(m->cfg.user)) == NULL)
		return -1;	/* resolve_identities said so */
	if (stat(dir, &st) == -1) {
		log_warn("cache_path %s", dir);
		return -1;
	}
	/* The folder is root's until its files are made; then the workers'. */
	if (st.st_uid != pw->pw_uid && chmod(dir, 0770) == -1) {
		log_warn("cache_path %s", dir);
		return -1;
	}
	for (i = 0; i < sizeof(cachedir_files) / sizeof(cachedir_files[0]); i++)
		if (cachedir_file(dir, cachedir_files[i], pw->pw_uid) == -1)
			return -1;
	if (st.st_uid != pw->pw_uid && chown(dir, pw->pw_uid, 0) == -1) {
		log_warn("cache_path %s: cannot give it to user %s", dir, m->cfg.user);
		return -1;
	}
	if (strncmp(dir, state, slen) == 0 && dir[slen] == '/' && strchr(dir + slen + 1, '/') == NULL &&
	    chmod(state, 0711) == -1) {
		log_warn("state_dir %s: cannot let the workers reach the cache", state);
		return -1;
	}
	return 0;
}
