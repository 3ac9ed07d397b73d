/*
 * The pages a worker answers with itself (see errpage.h). The built-in ones
 * are short, static and free of anything from the request, so they cannot
 * reflect input; overrides are read once per configuration, never per request.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/log.h"
#include "worker/errpage.h"

static const unsigned errpage_codes[ERRPAGE_NCODES] = {
	400, 404, 408, 413, 414, 417, 429, 431, 500, 501, 502, 503, 504, 505,
};

const char *
errpage_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 301: return "Moved Permanently";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

const char *
errpage_retry_after(unsigned status)
{
	return status == 503 ? "5" : NULL;
}

static int
errpage_index(unsigned status)
{
	int i;

	for (i = 0; i < ERRPAGE_NCODES; i++)
		if (errpage_codes[i] == status)
			return i;
	return -1;
}

void
errpage_free(struct errpages *p)
{
	int i;

	for (i = 0; i < ERRPAGE_NCODES; i++) {
		free(p->page[i]);
		p->page[i] = NULL;
		p->len[i] = 0;
	}
}

/* Reads dir/NNN.html whole; NULL when absent, unreadable or too big (logged). */
static char *
errpage_read(int dirfd, const char *dir, unsigned code, size_t *lenp)
{
	char name[16], *data = NULL;
	struct stat st;
	ssize_t n = -1;
	int fd;

	snprintf(name, sizeof(name), "%u.html", code);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		if (errno != ENOENT)
			log_warn("error page %s/%s", dir, name);
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > ERRPAGE_FILE_MAX) {
		log_warnx("error page %s/%s: not a regular file of at most %d bytes", dir, name,
		    ERRPAGE_FILE_MAX);
		goto out;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL)
		goto out;
	n = read(fd, data, (size_t)st.st_size);
	if (n != st.st_size) {
		log_warnx("error page %s/%s: short read", dir, name);
		free(data);
		data = NULL;
		goto out;
	}
	*lenp = (size_t)n;
out:
	close(fd);
	return data;
}

void
errpage_load(struct errpages *p, const char *dir)
{
	int i, dirfd;

	errpage_free(p);
	if (dir == NULL || *dir == '\0')
		return;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd == -1) {
		if (errno != ENOENT)
			log_warn("error pages %s", dir);
		return;
	}
	for (i = 0; i < ERRPAGE_NCODES; i++)
		p->page[i] = errpage_read(dirfd, dir, errpage_codes[i], &p->len[i]);
	close(dirfd);
}

static const char welcome[] =
    "<!doctype html>\n<html><head><title>haloyd</title></head><body>\n"
    "<h1>haloyd is running</h1>\n"
    "<p>No route is configured yet. Add one, as root or a member of haloyd-admin:</p>\n"
    "<pre>haloyd-ctl route add app.example.com 127.0.0.1:3000</pre>\n"
    "<p>Requests for app.example.com then go to the app listening on 127.0.0.1:3000.</p>\n"
    "</body></html>\n";

const char *
errpage_body(const struct errpages *p, unsigned status, enum errpage_kind kind, char *buf,
    size_t buflen, size_t *len)
{
	const char *reason = errpage_reason(status);
	int i = errpage_index(status), n;

	if (kind == ERRPAGE_WELCOME) {
		*len = sizeof(welcome) - 1;
		return welcome;
	}
	if (p != NULL && i >= 0 && p->page[i] != NULL) {
		*len = p->len[i];
		return p->page[i];
	}
	n = snprintf(buf, buflen, "<!doctype html>\n<html><head>"
	    "<title>%u %s</title></head><body>\n<h1>%u %s</h1>\n<hr><p>haloyd</p>\n"
	    "</body></html>\n", status, reason, status, reason);
	*len = n < 0 ? 0 : (size_t)n >= buflen ? buflen - 1 : (size_t)n;
	return buf;
}
