/*
 * The PostgreSQL engine's pure helpers (master/dbpg.c), apart so the unit
 * tests reach them without a server: the placeholder rewrite and the
 * checks of a connection string.
 */
#ifndef HALOYD_DBPG_H
#define HALOYD_DBPG_H

#include <stddef.h>
#include <sys/types.h>

#define DBPG_PARAMS_MAX 32	/* the most parameters one statement of the store binds */

/*
 * Copies the SQLite-style statement in to out with its parameters in
 * PostgreSQL's spelling: "?N" becomes "$N" and a bare "?" the next number;
 * quoted strings and identifiers are copied untouched. *nparams gets the
 * highest number. -1 when out is too small or a number exceeds
 * DBPG_PARAMS_MAX.
 */
int dbpg_rewrite(const char *in, char *out, size_t outlen, int *nparams);
/*
 * Refuses (-1, one line in err) a connection string libpq cannot parse,
 * one that holds a password (haloyd.conf is not a secret), or whose
 * passfile is not a regular file owned by us and unreadable by others.
 */
int dbpg_conninfo_check(const char *conninfo, char *err, size_t errlen);
/* The same for another process's connection (what: its setting's name; uid: its user). */
int dbpg_conninfo_check_for(const char *conninfo, const char *what, uid_t uid, char *err,
    size_t errlen);
/* The value of key in conninfo into buf: 1, 0 when absent or empty, -1 when unparsable. */
int dbpg_conninfo_get(const char *conninfo, const char *key, char *buf, size_t len);
/*
 * Connects and reads the schema version (-t): 0, or -1 with one line in
 * err. reader gets the connection's role when it may read acme_account
 * (the ACME account key, which only acme_store's role should), else "".
 */
int dbpg_probe(const char *conninfo, int *version, char *reader, size_t readerlen, char *err,
    size_t errlen);

#endif
