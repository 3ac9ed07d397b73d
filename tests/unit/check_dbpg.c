/*
 * Unit tests for master/dbpg.c's pure helpers: the placeholder rewrite
 * from the store's SQLite spelling to PostgreSQL's, and the refusals of a
 * connection string (a password in it, a passfile others may read).
 */
#include "config.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/dbpg.h"
#include "tests/unit/suites.h"

static const char *
rewrite(const char *in, int *n)
{
	static char out[512];

	ck_assert_int_eq(dbpg_rewrite(in, out, sizeof(out), n), 0);
	return out;
}

START_TEST(numbered)
{
	int n;

	ck_assert_str_eq(rewrite("UPDATE r SET a = ?2, b = nullif(?10, -1) WHERE name = ?1", &n),
	    "UPDATE r SET a = $2, b = nullif($10, -1) WHERE name = $1");
	ck_assert_int_eq(n, 10);
	/* One parameter used twice stays one. */
	ck_assert_str_eq(rewrite("WHERE ?1 IS NULL OR r.name = ?1", &n),
	    "WHERE $1 IS NULL OR r.name = $1");
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(rewrite("SELECT count(*) FROM routes", &n), "SELECT count(*) FROM routes");
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(bare_and_quoted)
{
	int n;

	ck_assert_str_eq(rewrite("INSERT INTO t(a, b) VALUES (?, ?)", &n),
	    "INSERT INTO t(a, b) VALUES ($1, $2)");
	ck_assert_int_eq(n, 2);
	/* A ? inside a string or a quoted identifier is text, also after a doubled quote. */
	ck_assert_str_eq(rewrite("SELECT 'a?b', 'it''s ?', \"c?\" FROM t WHERE x = ?3", &n),
	    "SELECT 'a?b', 'it''s ?', \"c?\" FROM t WHERE x = $3");
	ck_assert_int_eq(n, 3);
}
END_TEST

START_TEST(refused)
{
	char out[16], big[600];
	int n;

	/* More parameters than a statement may bind, or no room. */
	ck_assert_int_eq(dbpg_rewrite("x = ?33", big, sizeof(big), &n), -1);
	ck_assert_int_eq(dbpg_rewrite("x = ?999999999999", big, sizeof(big), &n), -1);
	ck_assert_int_eq(dbpg_rewrite("SELECT a, b, c FROM long_table", out, sizeof(out), &n), -1);
	memset(big, '?', 40);
	big[40] = '\0';
	ck_assert_int_eq(dbpg_rewrite(big, big + 100, 400, &n), -1);
}
END_TEST

static void
make_passfile(char *path, size_t len, mode_t mode)
{
	int fd;

	snprintf(path, len, "/tmp/check_dbpg_XXXXXX");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_int_eq(write(fd, "*:*:*:*:secret\n", 15), 15);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

START_TEST(passfile)
{
	char path[64], ci[256], err[256];

	make_passfile(path, sizeof(path), 0600);
	snprintf(ci, sizeof(ci), "postgresql://haloyd@127.0.0.1:5432/haloyd?passfile=%s", path);
	ck_assert_int_eq(dbpg_conninfo_check(ci, err, sizeof(err)), 0);
	/* Readable by the group or the world: refused, with one line saying why. */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(dbpg_conninfo_check(ci, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(dbpg_conninfo_check(ci, err, sizeof(err)), -1);
	unlink(path);
	/* Missing. */
	ck_assert_int_eq(dbpg_conninfo_check(ci, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(conninfo)
{
	char err[256], name[64];

	ck_assert_int_eq(dbpg_conninfo_check("postgresql:///haloyd?host=/run/postgresql", err,
	    sizeof(err)), 0);
	/* haloyd.conf is not a secret: no password in it. */
	ck_assert_int_eq(dbpg_conninfo_check("postgresql://u:pw@db/haloyd", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "passfile"));
	ck_assert_int_eq(dbpg_conninfo_check("postgresql://db/h?password=pw", err, sizeof(err)), -1);
	ck_assert_int_eq(dbpg_conninfo_check("postgresql://db/h?nosuchkey=1", err, sizeof(err)), -1);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_int_eq(dbpg_conninfo_get("postgresql://db/h?application_name=node2", "application_name",
	    name, sizeof(name)), 1);
	ck_assert_str_eq(name, "node2");
	ck_assert_int_eq(dbpg_conninfo_get("postgresql://db/h", "application_name", name,
	    sizeof(name)), 0);
}
END_TEST

Suite *
suite_dbpg(void)
{
	Suite *s = suite_create("dbpg");
	TCase *tc = tcase_create("dbpg");

	tcase_add_test(tc, numbered);
	tcase_add_test(tc, bare_and_quoted);
	tcase_add_test(tc, refused);
	tcase_add_test(tc, passfile);
	tcase_add_test(tc, conninfo);
	suite_add_tcase(s, tc);
	return s;
}
