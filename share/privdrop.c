/*
 * Privilege drop (see privdrop.h). setresgid/setresuid so the saved ids go
 * too, and a final setuid(0) that must fail, as OpenBSD's daemons check.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "share/log.h"
#include "share/privdrop.h"

int
privdrop(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (user == NULL || user[0] == '\0') {
		log_warnx("running as root and no user to drop to");
		return -1;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_warnx("unknown user %s", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_warnx("user %s is root", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_warn("dropping privileges to %s", user);
		return -1;
	}
	if (setuid(0) != -1 || seteuid(0) != -1) {
		log_warnx("could regain root after dropping it");
		return -1;
	}
	/* Nothing this process might exec can gain privileges back. */
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	/*
	 * The user's own home, not root's: libraries look there for their files
	 * (libpq's ~/.postgresql/ client certificate, which in root's home it
	 * could not read and so refused to connect).
	 */
	if (setenv("HOME", pw->pw_dir, 1) == -1) {
		log_warn("setting HOME for %s", user);
		return -1;
	}
	return 0;
}
