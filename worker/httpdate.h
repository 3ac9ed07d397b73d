/*
 * The Date field's value (RFC 9110 5.6.7 IMF-fixdate), formatted once per
 * second per process: every response carries one (RFC 9110 6.6.1), and
 * formatting it per response would cost a gmtime_r and a strftime each.
 */
#ifndef HALOYD_WORKER_HTTPDATE_H
#define HALOYD_WORKER_HTTPDATE_H

#include <time.h>

#define HTTPDATE_LEN 29		/* "Sun, 06 Nov 1994 08:49:37 GMT" */

struct httpdate {
	time_t at;		/* the second s was formatted for; 0 before the first call */
	char s[HTTPDATE_LEN + 1];
};

/* The current date, from the cache unless the second changed. */
const char *httpdate_now(struct httpdate *d);
/* The date of t into out (HTTPDATE_LEN + 1 bytes). */
void httpdate_format(time_t t, char *out);

#endif
