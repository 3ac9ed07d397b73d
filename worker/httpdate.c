/*
 * The Date field's value, cached per second (see httpdate.h). Written by
 * hand rather than with strftime: its names depend on the locale.
 */
#include "config.h"

#include <stdio.h>

#include "worker/httpdate.h"

void
httpdate_format(time_t t, char *out)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		snprintf(out, HTTPDATE_LEN + 1, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(out, HTTPDATE_LEN + 1, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *
httpdate_now(struct httpdate *d)
{
	time_t now = time(NULL);

	if (now != d->at) {
		httpdate_format(now, d->s);
		d->at = now;
	}
	return d->s;
}
