/* Runs every unit suite; exit status is non-zero when any check failed. */
#include "config.h"

#include <stdlib.h>

#include "tests/unit/suites.h"

int
main(void)
{
	SRunner *sr = srunner_create(suite_ipc());
	int failed;

	srunner_add_suite(sr, suite_hostname());
	srunner_add_suite(sr, suite_snap());
	srunner_add_suite(sr, suite_keyring());
	srunner_add_suite(sr, suite_certs());
	srunner_add_suite(sr, suite_store());
	srunner_add_suite(sr, suite_http1());
	srunner_add_suite(sr, suite_jws());
	srunner_add_suite(sr, suite_chal());
	srunner_add_suite(sr, suite_tls());
	srunner_add_suite(sr, suite_exchange());
	srunner_add_suite(sr, suite_h1client());
	srunner_add_suite(sr, suite_h1server());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
