/* One check suite per module; check_main.c runs them all. */
#ifndef HALOYD_TEST_SUITES_H
#define HALOYD_TEST_SUITES_H

#include <check.h>

Suite *suite_ipc(void);
Suite *suite_hostname(void);
Suite *suite_snap(void);
Suite *suite_shm(void);
Suite *suite_stats(void);
Suite *suite_keyring(void);
Suite *suite_certs(void);
Suite *suite_store(void);
Suite *suite_http1(void);
Suite *suite_jws(void);
Suite *suite_chal(void);
Suite *suite_tls(void);
Suite *suite_evloop(void);
Suite *suite_conf(void);
Suite *suite_proc(void);
Suite *suite_publish(void);
Suite *suite_acmeq(void);
Suite *suite_store_acme(void);
Suite *suite_message(void);
Suite *suite_forward(void);
Suite *suite_request(void);
Suite *suite_balance(void);
Suite *suite_exchange(void);
Suite *suite_h1client(void);
Suite *suite_h2client(void);
Suite *suite_h1server(void);
Suite *suite_h2server(void);
Suite *suite_h2scan(void);
Suite *suite_h2mem(void);
Suite *suite_buf(void);
Suite *suite_grpc(void);
Suite *suite_compress(void);
Suite *suite_tlsclient(void);
Suite *suite_tunname(void);
Suite *suite_tuntls(void);
Suite *suite_hop(void);
Suite *suite_tunlist(void);

#endif
