/*
 * CDN-Cache-Control (RFC 9213): the field a reverse proxy cache obeys
 * instead of Cache-Control and Expires when a response carries it.
 */
#ifndef HALOYD_WORKER_CACHECDN_H
#define HALOYD_WORKER_CACHECDN_H

struct msg_head;
struct cachecc;

/*
 * 1 when resp has a valid CDN-Cache-Control (an RFC 8941 Dictionary;
 * every line valid; at least one member), its directives in *cc; 0 when it
 * has none, an empty or an invalid one (then Cache-Control rules, as if it were absent).
 */
int cachecdn_parse(const struct msg_head *resp, struct cachecc *cc);

#endif
