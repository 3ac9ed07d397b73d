/*
 * Fixtures for the unit suites of the worker's modules (as testmaster.h is
 * for the master's): a worker set up by hand around its event loop, turning
 * that loop against a deadline, a route snapshot built with
 * master/snapbuild.h, a listening backend on 127.0.0.1, request heads parsed
 * by the HTTP/1.1 parser, and self-signed certificates.
 */
#ifndef HALOYD_TESTWORKER_H
#define HALOYD_TESTWORKER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <check.h>

#include "master/snapbuild.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/context.h"
#include "worker/http1.h"
#include "worker/message.h"

/* Zeroes w and gives it a loop and BUF_SIZE buffers; the loop helpers turn w's loop. */
void tw_worker_init(struct worker *w);

/* util_now_ms() + ms. */
uint64_t tw_deadline(int ms);
/* One turn of the worker's loop (waiting up to 10 ms). */
void tw_turn(void);
/* Turns the loop for ms milliseconds. */
void tw_run_ms(int ms);

/* Turns the loop until cond holds, for 3 s at the most. */
#define TW_RUN_UNTIL(cond) do {							\
	uint64_t tw_dl_ = tw_deadline(3000);					\
	while (!(cond) && util_now_ms() < tw_dl_)				\
		tw_turn();							\
	ck_assert_msg((cond), "timed out waiting for " #cond);			\
} while (0)

/* A route snapshot built from in and mapped. */
struct snap *tw_snap(const struct snapb_input *in);

/* A socket listening on 127.0.0.1 (flags: SOCK_NONBLOCK or 0); its port in *port. */
int tw_listen(int flags, int backlog, uint16_t *port);
/* A connection from the (non-blocking) listener lfd, -1 when none waits. */
int tw_try_accept(int lfd);
/* A connection from lfd, turning the loop until one comes (3 s at the most). */
int tw_accept(int lfd);

/* h1 events that do nothing. */
extern const struct h1_events tw_nop_events;
/* Parses the request head text into h. */
void tw_parse_head(struct msg_head *h, const char *text);

/* A memory BIO's bytes, NUL-terminated, and their length; frees b. */
char *tw_bio_take(BIO *b, size_t *len);
/* A self-signed certificate of k for cn with subjectAltName san ("DNS:a,DNS:b"). */
X509 *tw_x509(EVP_PKEY *k, const char *cn, const char *san, long days);

#endif
