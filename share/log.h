/*
 * Logging for every process: journald with structured fields when stderr is
 * the journal (JOURNAL_STREAM) or when asked, plain stderr lines otherwise.
 * Every line the daemon writes goes through here.
 */
#ifndef HALOYD_LOG_H
#define HALOYD_LOG_H

#include <stdint.h>

enum log_target {
	LOG_TARGET_AUTO = 0,
	LOG_TARGET_STDERR,
	LOG_TARGET_JOURNAL,
};

/* role: "master", "worker", "acme", "ctl"; worker: instance or -1. */
void log_init(const char *role, int worker, enum log_target target, int verbose);
/* Parses "auto", "stderr", "journal"; -1 when unknown. */
int log_target_parse(const char *s);
void log_set_verbose(int verbose);
int log_get_verbose(void);

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
/* Like log_warnx with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
/* Start-up failures and broken invariants only: never for bad input. */
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * A line with extra journal fields: fields is a NULL-terminated list of
 * "HALOYD_KEY=value" strings. On stderr the fields follow the message.
 * prio is a syslog priority (LOG_INFO, ...).
 */
void log_fields(int prio, const char *const *fields, const char *fmt, ...) LOG_PRINTF(3, 4);

/* One access entry per request. */
struct log_access {
	const char *host;
	const char *method;
	const char *path;
	const char *backend;	/* "" when none was reached */
	const char *request_id;
	const char *proto;	/* "HTTP/1.1", "HTTP/2.0" */
	int status;
	int grpc;		/* a gRPC status went out for status: HALOYD_GRPC_STATUS */
	unsigned grpc_status;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t duration_us;
	const char *client;	/* the client's address (a PROXY header's source), or NULL */
	const char *cache;	/* HALOYD_CACHE (HIT, MISS...), or NULL off a caching route */
};
void log_access(const struct log_access *a);

#endif
