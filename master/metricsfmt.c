/* Prometheus text 0.0.4 and OpenMetrics 1.0 from the samples of master/stats.c. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/metricsfmt.h"
#include "master/stats.h"

void
metricsfmt_printf(struct metricsfmt *f, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	int n;

	if (f->bad)
		return;
	va_start(ap, fmt);
	n = vsnprintf(f->buf != NULL ? f->buf + f->len : NULL, f->cap - f->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto bad;
	if ((size_t)n < f->cap - f->len) {
		f->len += (size_t)n;
		return;
	}
	need = f->len + (size_t)n + 1;
	if (need > METRICSFMT_MAX)
		goto bad;
	if (need < 2 * f->cap)
		need = 2 * f->cap < METRICSFMT_MAX ? 2 * f->cap : METRICSFMT_MAX;
	{
		char *nb = realloc(f->buf, need);
		if (nb == NULL)
			goto bad;
		f->buf = nb;
		f->cap = need;
	}
	va_start(ap, fmt);
	(void)vsnprintf(f->buf + f->len, f->cap - f->len, fmt, ap);
	va_end(ap);
	f->len += (size_t)n;
	return;
bad:
	f->bad = 1;
}

static const char *
type_name(enum stats_type t)
{
	return t == STATS_COUNTER ? "counter" : t == STATS_GAUGE ? "gauge" : "histogram";
}

static int
fmt_sample(void *arg, const struct stats_sample *s)
{
	struct metricsfmt *f = arg;
	/* Prometheus text names a counter's family with its _total; OpenMetrics without. */
	const char *fsuffix = !f->openmetrics && s->type == STATS_COUNTER ? "_total" : "";

	if (f->last_family == NULL || strcmp(f->last_family, s->family) != 0) {
		metricsfmt_printf(f, "# HELP %s%s %s\n", s->family, fsuffix, s->help);
		metricsfmt_printf(f, "# TYPE %s%s %s\n", s->family, fsuffix, type_name(s->type));
		f->last_family = s->family;
	}
	metricsfmt_printf(f, "%s%s%s%s%s ", s->family, s->suffix, s->labels[0] != '\0' ? "{" : "",
	    s->labels, s->labels[0] != '\0' ? "}" : "");
	if (s->value == floor(s->value) && fabs(s->value) < 9007199254740992.0)
		metricsfmt_printf(f, "%.0f\n", s->value);
	else
		metricsfmt_printf(f, "%.9g\n", s->value);
	return f->bad ? -1 : 0;
}

int
metricsfmt_render(struct master *m, int openmetrics, struct metricsfmt *f)
{
	memset(f, 0, sizeof(*f));
	f->openmetrics = openmetrics;
	if (stats_collect(m, fmt_sample, f) == -1 || f->bad)
		goto fail;
	if (openmetrics)
		metricsfmt_printf(f, "# EOF\n");
	if (f->bad)
		goto fail;
	return 0;
fail:
	metricsfmt_free(f);
	return -1;
}

void
metricsfmt_free(struct metricsfmt *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}
