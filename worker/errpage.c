/*
 * The pages a worker answers with itself (see errpage.h). Short, static and
 * free of anything from the request, so they cannot reflect input.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "worker/errpage.h"

const char *
errpage_reason(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
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

static const char welcome[] =
    "<!doctype html>\n<html><head><title>haloyd</title></head><body>\n"
    "<h1>haloyd is running</h1>\n"
    "<p>No route is configured yet. Add one, as root or a member of haloyd-admin:</p>\n"
    "<pre>haloyd-ctl route add app.example.com 127.0.0.1:3000</pre>\n"
    "<p>Requests for app.example.com then go to the app listening on 127.0.0.1:3000.</p>\n"
    "</body></html>\n";

int
errpage_write(struct buf *b, unsigned status, enum errpage_kind kind, int keepalive, int head_only)
{
	char body[1024];
	const char *reason = errpage_reason(status);
	int n;

	if (kind == ERRPAGE_WELCOME)
		n = snprintf(body, sizeof(body), "%s", welcome);
	else
		n = snprintf(body, sizeof(body), "<!doctype html>\n<html><head><title>%u %s</title>"
		    "</head><body>\n<h1>%u %s</h1>\n<hr><p>haloyd</p>\n</body></html>\n",
		    status, reason, status, reason);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -1;
	if (buf_printf(b, "HTTP/1.1 %u %s\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %d\r\nCache-Control: no-store\r\n%s\r\n", status, reason, n,
	    keepalive ? "" : "Connection: close\r\n") == -1)
		return -1;
	if (head_only)
		return 0;
	if ((size_t)n > buf_room(b))
		return -1;
	buf_append(b, body, (size_t)n);
	return 0;
}
