/* The store suites' fixture (see teststore.h): one copy for check_store_*.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include "tests/unit/teststore.h"

/* The test's own folder: one store at a time, as each test's fixture opens one. */
static char ts_dir[64];

struct store *
teststore_open(void)
{
	struct store *st = NULL;
	char path[128];

	snprintf(ts_dir, sizeof(ts_dir), "/tmp/check_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(ts_dir));
	snprintf(path, sizeof(path), "%s/store.db", ts_dir);
	ck_assert_int_eq(store_open(path, &st), STORE_OK);
	return st;
}

void
teststore_close(struct store *st)
{
	char cmd[128];

	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", ts_dir);
	(void)system(cmd);
}
