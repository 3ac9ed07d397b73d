/*
 * HTTP/1.x heads the quick way: a strict one-pass reader of a plain head
 * that arrived whole (request line or status line, fields, the empty line)
 * into a neutral head (worker/message.h). It accepts a subset of what the
 * http-parser path of worker/http1.c accepts and gives the same head for
 * it; anything else is refused here and left to that path, which keeps the
 * last word on every rule and every error status.
 */
#ifndef HALOYD_WORKER_H1HEAD_H
#define HALOYD_WORKER_H1HEAD_H

#include <stddef.h>

#include "worker/message.h"

/*
 * Reads a head from the first len bytes of data into hd (emptied first).
 * Returns the head's length in bytes (up to and including its empty line),
 * or 0 when the bytes are not a plain, complete head: incomplete, over a
 * limit, not CRLF, a method other than the common ones, a target not in
 * origin-form, Transfer-Encoding, Upgrade, Proxy-Connection, a Connection
 * value other than one close or keep-alive, a Content-Length that is not
 * one run of digits, a 1xx, or a response whose body would end at close.
 * hd is then empty (its storage kept).
 */
size_t h1head_parse(int response, const char *data, size_t len, struct msg_head *hd);

#endif
