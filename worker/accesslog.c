/* Access entries for the requests a worker serves (see accesslog.h). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "share/log.h"
#include "share/shm.h"
#include "share/snap.h"
#include "share/util.h"
#include "worker/accesslog.h"
#include "worker/context.h"
#include "worker/grpc.h"
#include "worker/message.h"

#define PATH_LOG_MAX 512

/* Every answer ends here once, logged or not: the shared counters see each of them. */
static void
accesslog_count(struct worker *w, const struct accesslog_entry *e)
{
	enum shm_proto p = SHM_HTTP11;

	if (e->req != NULL && e->req->major == 2)
		p = SHM_HTTP2;
	else if (e->req != NULL && e->req->major == 1 && e->req->minor == 0)
		p = SHM_HTTP10;
	shm_count_request(w->stats, e->route_id, p, e->status, util_now_us() - e->start_us,
	    e->bytes_in, e->bytes_out);
}

void
accesslog_write(struct worker *w, const struct accesslog_entry *e)
{
	char path[PATH_LOG_MAX];
	const char *method = "-", *proto = "";
	char pbuf[16];
	/* The HTTP status stays what we meant; the gRPC status the client read goes beside it. */
	int grpc = e->local ? grpc_local_status(e->req, e->status) : -1;

	accesslog_count(w, e);
	if (!w->cfg.access_log)
		return;
	/* Sampling keeps every server error: those are the entries one searches for. */
	if (w->cfg.access_log_sample > 1 && e->status < 500 &&
	    w->access_seq++ % w->cfg.access_log_sample != 0)
		return;
	util_strlcpy(path, "-", sizeof(path));
	if (e->req != NULL) {
		method = msg_method_str(e->req);
		snprintf(pbuf, sizeof(pbuf), "HTTP/%u.%u", e->req->major, e->req->minor);
		proto = pbuf;
		if (e->req->path.len > 0)
			util_strlcpy(path, msg_s(e->req, e->req->path), sizeof(path));
	}
	log_access(&(struct log_access){
	    .host = e->host != NULL && e->host[0] != '\0' ? e->host : "-",
	    .method = method, .path = path, .backend = e->backend != NULL ? e->backend : "",
	    .request_id = e->request_id != NULL ? e->request_id : "-", .proto = proto,
	    .status = (int)e->status, .grpc = grpc >= 0, .grpc_status = grpc >= 0 ? (unsigned)grpc : 0,
	    .bytes_in = e->bytes_in, .bytes_out = e->bytes_out,
	    .duration_us = util_now_us() - e->start_us, .client = e->client,
	    .cache = e->cache });
}

void
accesslog_local(struct worker *w, const struct msg_head *req, const char *host,
    uint32_t route_id, unsigned status, uint64_t start_us, const char *client)
{
	accesslog_write(w, &(struct accesslog_entry){ .req = req, .host = host, .backend = "",
	    .status = status, .route_id = route_id, .local = 1, .start_us = start_us,
	    .client = client });
}

void
accesslog_backend(const struct snap *s, const struct snap_backend *b, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (b->family == AF_UNIX) {
		snprintf(buf, len, "unix:%s", snap_string(s, b->name));
		return;
	}
	if (b->flags & SNAP_BACKEND_TUNNEL) {
		snprintf(buf, len, "tunnel:%s", snap_string(s, b->name));
		return;
	}
	if (b->flags & SNAP_BACKEND_NAME) {
		if (b->family == AF_UNSPEC || inet_ntop(b->family, b->addr, ip, sizeof(ip)) == NULL)
			util_strlcpy(ip, "unresolved", sizeof(ip));
		snprintf(buf, len, "%s:%u(%s)", snap_string(s, b->name), b->port, ip);
		return;
	}
	if (inet_ntop(b->family, b->addr, ip, sizeof(ip)) == NULL)
		util_strlcpy(ip, "?", sizeof(ip));
	if (b->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, b->port);
	else
		snprintf(buf, len, "%s:%u", ip, b->port);
}
