/* Runs every unit suite; exit status is non-zero when any check failed. */
#include "config.h"

#include <stdlib.h>

#include <string.h>

#include "tests/unit/suites.h"
#include "tests/unit/testmaster.h"

int
main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	/* Started by a suite's master as one of its children (tests/unit/testmaster.h). */
	if (argc > 2 && strcmp(argv[1], "-R") == 0)
		return testmaster_child_main(argc, argv);
	sr = srunner_create(suite_ipc());
	srunner_add_suite(sr, suite_hostname());
	srunner_add_suite(sr, suite_snap());
	srunner_add_suite(sr, suite_snapset());
	srunner_add_suite(sr, suite_keyring());
	srunner_add_suite(sr, suite_certs());
	srunner_add_suite(sr, suite_store());
	srunner_add_suite(sr, suite_http1());
	srunner_add_suite(sr, suite_h1head());
	srunner_add_suite(sr, suite_jws());
	srunner_add_suite(sr, suite_ari());
	srunner_add_suite(sr, suite_alpncert());
	srunner_add_suite(sr, suite_dns01());
	srunner_add_suite(sr, suite_dnsrdata());
	srunner_add_suite(sr, suite_dnsauth());
	srunner_add_suite(sr, suite_chal());
	srunner_add_suite(sr, suite_tls());
	srunner_add_suite(sr, suite_tlsrec());
	srunner_add_suite(sr, suite_tlscert());
	srunner_add_suite(sr, suite_tlsclient());
	srunner_add_suite(sr, suite_evloop());
	srunner_add_suite(sr, suite_conf());
	srunner_add_suite(sr, suite_proc());
	srunner_add_suite(sr, suite_wrapper());
	srunner_add_suite(sr, suite_publish());
	srunner_add_suite(sr, suite_acmeq());
	srunner_add_suite(sr, suite_store_acme());
	srunner_add_suite(sr, suite_message());
	srunner_add_suite(sr, suite_forward());
	srunner_add_suite(sr, suite_proxyproto());
	srunner_add_suite(sr, suite_request());
	srunner_add_suite(sr, suite_balance());
	srunner_add_suite(sr, suite_exchange());
	srunner_add_suite(sr, suite_h1client());
	srunner_add_suite(sr, suite_h2client());
	srunner_add_suite(sr, suite_h1server());
	srunner_add_suite(sr, suite_h2server());
	srunner_add_suite(sr, suite_h2scan());
	srunner_add_suite(sr, suite_h2mem());
	srunner_add_suite(sr, suite_buf());
	srunner_add_suite(sr, suite_grpc());
	srunner_add_suite(sr, suite_shm());
	srunner_add_suite(sr, suite_stats());
	srunner_add_suite(sr, suite_clients());
	srunner_add_suite(sr, suite_health());
	srunner_add_suite(sr, suite_ratelimit());
	srunner_add_suite(sr, suite_compress());
	srunner_add_suite(sr, suite_cachepolicy());
	srunner_add_suite(sr, suite_cachestore());
	srunner_add_suite(sr, suite_cachecdn());
	srunner_add_suite(sr, suite_cachecc());
	srunner_add_suite(sr, suite_pathprefix());
	srunner_add_suite(sr, suite_snapprefix());
	srunner_add_suite(sr, suite_pathroute());
	srunner_add_suite(sr, suite_beaddr());
	srunner_add_suite(sr, suite_dnsname());
	srunner_add_suite(sr, suite_dbpg());
	srunner_add_suite(sr, suite_store_cluster());
	srunner_add_suite(sr, suite_acmelease());
	srunner_add_suite(sr, suite_acmeshare());
	srunner_add_suite(sr, suite_ticketshare());
	srunner_add_suite(sr, suite_account());
	srunner_add_suite(sr, suite_rtable());
	srunner_add_suite(sr, suite_cmdline());
	srunner_add_suite(sr, suite_applyfile());
	srunner_add_suite(sr, suite_dial());
	srunner_add_suite(sr, suite_agentconf());
	srunner_add_suite(sr, suite_backoff());
	srunner_add_suite(sr, suite_hopfilter());
	srunner_add_suite(sr, suite_bytequeue());
	srunner_add_suite(sr, suite_agenttls());
	srunner_add_suite(sr, suite_h2h1());
	srunner_add_suite(sr, suite_sandbox());
	srunner_add_suite(sr, suite_tunname());
	srunner_add_suite(sr, suite_tuntls());
	srunner_add_suite(sr, suite_hop());
	srunner_add_suite(sr, suite_tunlist());
	srunner_add_suite(sr, suite_odgate());
	srunner_add_suite(sr, suite_odwait());
	srunner_add_suite(sr, suite_store_ondemand());
	srunner_add_suite(sr, suite_inherit());
	srunner_add_suite(sr, suite_drainscope());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
