/*
 * The ACME child's error record: what an order step failed with (a problem
 * type and a detail), filled by every layer from HTTP to the order and sent
 * to the master as it is.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "acme/acmechild.h"
#include "share/util.h"

void
acme_error_set(struct acme_error *e, const char *type, const char *fmt, ...)
{
	va_list ap;

	util_strlcpy(e->type, type, sizeof(e->type));
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}
