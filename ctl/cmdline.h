/*
 * haloyd-ctl's command line: options anywhere among the command words,
 * every host name and backend checked and normalised here (so a typo never
 * reaches the daemon), and the request the command makes, ready to send.
 */
#ifndef HALOYD_CTL_CMDLINE_H
#define HALOYD_CTL_CMDLINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl/output.h"

#define CMDLINE_MAX_WORDS 8	/* command words kept; more is a usage error anyway */
#define CMDLINE_MAX_LIST 64	/* --alias / --backend per route (the master's limit) */
#define CMDLINE_PAYLOAD_MAX 65536	/* IPC_MAX_PAYLOAD: a route add with a CA bundle */
#define CMDLINE_MAX_SETTINGS 32	/* route set options (each kept once, the last wins) */
#define CMDLINE_VALUE_MAX 32	/* longest route set value ("10m", "default", ...) */

enum cmdline_action {
	CMDLINE_RUN = 0,	/* send the request */
	CMDLINE_HELP,		/* print the usage text */
	CMDLINE_VERSION,
};

struct cmdline {
	const char *socket;	/* -s / --socket; NULL: $HALOYD_CONTROL or the default */
	int json;
	enum cmdline_action action;
	uint16_t type;		/* enum msg_type of the request */
	enum output_shape shape;
	uint8_t payload[CMDLINE_PAYLOAD_MAX];
	size_t len;
	char error[512];	/* why cmdline_parse failed */

	/* Collected while parsing. */
	const char *words[CMDLINE_MAX_WORDS];
	size_t nwords;
	const char *aliases[CMDLINE_MAX_LIST];
	size_t naliases;
	const char *backends[CMDLINE_MAX_LIST];
	size_t nbackends;
	struct {
		const char *option;	/* "connect-timeout": the master's key with '-' for '_' */
		const char *value;	/* --backend-ca: the PEM file's path */
	} settings[CMDLINE_MAX_SETTINGS];
	size_t nsettings;
	const char *cert_file;	/* cert import --cert CHAIN.pem */
	const char *key_file;	/* cert import --key KEY.pem */
	int force;		/* cert import --force */
	int apply_flags;	/* apply --dry-run, --prune: enum msg_apply_flags */
	int send_fd;		/* apply: the file as a sealed memfd sent with the request, or -1 */
	const char *route;	/* cache purge --route NAME */
};

/*
 * Parses argv (argv[0] is the program). Returns CTL_OK, or CTL_EUSAGE /
 * CTL_EINVAL (enum ctl_code) with cl->error set; cl->json is set as soon as
 * --json appears anywhere, so even a usage error can answer in JSON.
 */
int cmdline_parse(struct cmdline *cl, int argc, char *const argv[]);

/* The usage text with the commands and the exit codes. */
void cmdline_usage(FILE *f);

#endif
