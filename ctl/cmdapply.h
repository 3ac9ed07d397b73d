/*
 * haloyd-ctl apply's request: the file (or stdin) read whole, bounded by
 * MSG_APPLY_FILE_MAX, and handed to the master as a sealed memfd, since a
 * file of 1 000 routes does not fit one 64 KiB control message.
 */
#ifndef HALOYD_CTL_CMDAPPLY_H
#define HALOYD_CTL_CMDAPPLY_H

struct cmdline;
struct wbuf;

/*
 * Writes "u8 flags; str name" to w and sets cl->send_fd to the file's
 * memfd. Returns CTL_OK, or an enum ctl_code with cl->error set.
 */
int cmdapply_encode(struct cmdline *cl, struct wbuf *w, const char *path);

#endif
