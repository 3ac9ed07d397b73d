/*
 * The responses a worker writes itself: error pages and the "no routes yet"
 * page. The built-in pages can be replaced by NNN.html files in the folder
 * named by error_pages in haloyd.conf.
 */
#ifndef HALOYD_WORKER_ERRPAGE_H
#define HALOYD_WORKER_ERRPAGE_H

#include <stddef.h>


#define ERRPAGE_FILE_MAX (16 * 1024)	/* an override page must fit one buffer with its head */
#define ERRPAGE_NCODES 14

enum errpage_kind {
	ERRPAGE_STATUS = 0,	/* the page for the status */
	ERRPAGE_WELCOME,	/* no route at all: how to add one */
};

/* Override pages read from the error_pages folder, NULL where the built-in one serves. */
struct errpages {
	char *page[ERRPAGE_NCODES];
	size_t len[ERRPAGE_NCODES];
};

/* Replaces p's pages with the folder's; a missing folder or file is not an error. */
void errpage_load(struct errpages *p, const char *dir);
void errpage_free(struct errpages *p);

/*
 * The HTML body for status (or the welcome page): an override page, a
 * static one, or one formatted into buf. Sets *len.
 */
const char *errpage_body(const struct errpages *p, unsigned status, enum errpage_kind kind,
    char *buf, size_t buflen, size_t *len);

/*
 * The Retry-After value our own answer with status carries, or NULL: a 503
 * says the backend (a tunnel, the tunnel process) may be back in a moment.
 */
const char *errpage_retry_after(unsigned status);

/* The reason phrase of a status we answer with. */
const char *errpage_reason(unsigned status);

#endif
