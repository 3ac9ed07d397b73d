/*
 * Logging for every process. Under journald, entries carry PRIORITY,
 * SYSLOG_IDENTIFIER=haloyd, HALOYD_ROLE, HALOYD_WORKER and any fields the
 * caller adds, so `journalctl HALOYD_HOST=x` works. Elsewhere one stderr line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "share/log.h"

#define LOG_LINE_MAX 2048
#define LOG_FIELDS_MAX 24

/* The per-process logging context: set once by log_init. */
static struct {
	const char *role;
	int worker;
	int journal;
	int verbose;
} logctx = { "haloyd", -1, 0, 0 };

static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *role, int worker, enum log_target target, int verbose)
{
	logctx.role = role;
	logctx.worker = worker;
	logctx.verbose = verbose;
	if (target == LOG_TARGET_AUTO)
		logctx.journal = stderr_is_journal();
	else
		logctx.journal = target == LOG_TARGET_JOURNAL;
}

int
log_target_parse(const char *s)
{
	if (strcmp(s, "auto") == 0)
		return LOG_TARGET_AUTO;
	if (strcmp(s, "stderr") == 0)
		return LOG_TARGET_STDERR;
	if (strcmp(s, "journal") == 0)
		return LOG_TARGET_JOURNAL;
	return -1;
}

void
log_set_verbose(int verbose)
{
	logctx.verbose = verbose;
}

int
log_get_verbose(void)
{
	return logctx.verbose;
}

static const char *
prio_name(int prio)
{
	switch (prio) {
	case LOG_DEBUG: return "debug";
	case LOG_INFO: return "info";
	case LOG_NOTICE: return "notice";
	case LOG_WARNING: return "warning";
	default: return "error";
	}
}

static void
emit_stderr(int prio, const char *const *fields, const char *msg)
{
	char line[LOG_LINE_MAX + 512], ts[32], who[32];
	struct timespec now;
	struct tm tm;
	size_t n;
	int i;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (logctx.worker >= 0)
		snprintf(who, sizeof(who), "%s %d", logctx.role, logctx.worker);
	else
		snprintf(who, sizeof(who), "%s", logctx.role);
	n = (size_t)snprintf(line, sizeof(line), "%s.%03ldZ haloyd[%d] %s %s: %s", ts,
	    now.tv_nsec / 1000000, (int)getpid(), who, prio_name(prio), msg);
	for (i = 0; fields != NULL && fields[i] != NULL && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %s", fields[i]);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line so lines from several processes do not interleave. */
	(void)!write(STDERR_FILENO, line, n);
}

static void
emit_journal(int prio, const char *const *fields, const char *msg)
{
	struct iovec iov[LOG_FIELDS_MAX + 5];
	char pbuf[16], mbuf[LOG_LINE_MAX + 16], rbuf[32], wbuf[32];
	int n = 0, i;

	snprintf(pbuf, sizeof(pbuf), "PRIORITY=%d", prio);
	snprintf(mbuf, sizeof(mbuf), "MESSAGE=%s", msg);
	snprintf(rbuf, sizeof(rbuf), "HALOYD_ROLE=%s", logctx.role);
	iov[n++] = (struct iovec){ pbuf, strlen(pbuf) };
	iov[n++] = (struct iovec){ mbuf, strlen(mbuf) };
	iov[n++] = (struct iovec){ (void *)(uintptr_t)"SYSLOG_IDENTIFIER=haloyd", 24 };
	iov[n++] = (struct iovec){ rbuf, strlen(rbuf) };
	if (logctx.worker >= 0) {
		snprintf(wbuf, sizeof(wbuf), "HALOYD_WORKER=%d", logctx.worker);
		iov[n++] = (struct iovec){ wbuf, strlen(wbuf) };
	}
	for (i = 0; fields != NULL && fields[i] != NULL && i < LOG_FIELDS_MAX; i++)
		iov[n++] = (struct iovec){ (void *)(uintptr_t)fields[i], strlen(fields[i]) };
	if (sd_journal_sendv(iov, n) < 0)
		emit_stderr(prio, fields, msg);
}

static void
vlog(int prio, const char *const *fields, int with_errno, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	int saved = errno;
	size_t n;

	if (prio == LOG_DEBUG && logctx.verbose < 1)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	if (logctx.journal)
		emit_journal(prio, fields, msg);
	else
		emit_stderr(prio, fields, msg);
	errno = saved;
}

#define LOG_FN(name, prio, with_errno)				\
	void name(const char *fmt, ...)				\
	{							\
		va_list ap;					\
		va_start(ap, fmt);				\
		vlog(prio, NULL, with_errno, fmt, ap);		\
		va_end(ap);					\
	}

LOG_FN(log_debug, LOG_DEBUG, 0)
LOG_FN(log_info, LOG_INFO, 0)
LOG_FN(log_notice, LOG_NOTICE, 0)
LOG_FN(log_warnx, LOG_WARNING, 0)
LOG_FN(log_warn, LOG_WARNING, 1)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, NULL, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_fields(int prio, const char *const *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, fields, 0, fmt, ap);
	va_end(ap);
}

void
log_access(const struct log_access *a)
{
	char f[12][320];
	const char *fields[13];
	int i, n = 10;

	snprintf(f[0], sizeof(f[0]), "HALOYD_HOST=%s", a->host ? a->host : "");
	snprintf(f[1], sizeof(f[1]), "HALOYD_METHOD=%s", a->method ? a->method : "");
	snprintf(f[2], sizeof(f[2]), "HALOYD_PATH=%.300s", a->path ? a->path : "");
	snprintf(f[3], sizeof(f[3]), "HALOYD_STATUS=%d", a->status);
	snprintf(f[4], sizeof(f[4]), "HALOYD_BACKEND=%s", a->backend ? a->backend : "");
	snprintf(f[5], sizeof(f[5]), "HALOYD_DURATION_US=%llu", (unsigned long long)a->duration_us);
	snprintf(f[6], sizeof(f[6]), "HALOYD_BYTES_IN=%llu", (unsigned long long)a->bytes_in);
	snprintf(f[7], sizeof(f[7]), "HALOYD_BYTES_OUT=%llu", (unsigned long long)a->bytes_out);
	snprintf(f[8], sizeof(f[8]), "HALOYD_REQUEST_ID=%s", a->request_id ? a->request_id : "");
	snprintf(f[9], sizeof(f[9]), "HALOYD_PROTO=%s", a->proto ? a->proto : "");
	if (a->grpc)
		snprintf(f[n++], sizeof(f[0]), "HALOYD_GRPC_STATUS=%u", a->grpc_status);
	if (a->client != NULL && a->client[0] != '\0')
		snprintf(f[n++], sizeof(f[0]), "HALOYD_CLIENT=%s", a->client);
	if (a->cache != NULL)
		snprintf(f[n++], sizeof(f[0]), "HALOYD_CACHE=%s", a->cache);
	for (i = 0; i < n; i++)
		fields[i] = f[i];
	fields[n] = NULL;
	log_fields(LOG_INFO, fields, "access %s %s %.200s %d%s%s", a->host ? a->host : "-",
	    a->method ? a->method : "-", a->path ? a->path : "-", a->status,
	    a->cache != NULL ? " cache=" : "", a->cache != NULL ? a->cache : "");
}
