/*
 * haloyd-ctl apply's request (see ctl/cmdapply.h). The file is parsed by
 * the master, which owns route set's table of settings; here it is only
 * read, bounded, and given a final newline.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/cmdapply.h"
#include "ctl/cmdline.h"
#include "share/cursor.h"
#include "share/msg.h"
#include "share/sealed.h"

static int
cmdapply_error(struct cmdline *cl, int code, const char *what, const char *why)
{
	snprintf(cl->error, sizeof(cl->error), "%.300s: %s", what, why);
	return code;
}

/* Reads fd whole into buf (MSG_APPLY_FILE_MAX + 2 bytes); *n its length, -1 when larger. */
static int
read_all(int fd, char *buf, size_t *n)
{
	ssize_t r;

	*n = 0;
	while (*n <= MSG_APPLY_FILE_MAX &&
	    (r = read(fd, buf + *n, MSG_APPLY_FILE_MAX + 1 - *n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		*n += (size_t)r;
	}
	return 0;
}

int
cmdapply_encode(struct cmdline *cl, struct wbuf *w, const char *path)
{
	const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	char *buf, err[200];
	size_t n;
	int fd, rc;

	if (strlen(name) >= MSG_STR_MAX)
		return cmdapply_error(cl, CTL_EUSAGE, "apply", "the file name is too long");
	if ((buf = malloc(MSG_APPLY_FILE_MAX + 2)) == NULL)
		return cmdapply_error(cl, CTL_EFAIL, name, "out of memory");
	fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || read_all(fd, buf, &n) == -1)
		rc = cmdapply_error(cl, CTL_EINVAL, name, strerror(errno));
	else if (n > MSG_APPLY_FILE_MAX) {
		snprintf(err, sizeof(err), "larger than %u bytes", MSG_APPLY_FILE_MAX);
		rc = cmdapply_error(cl, CTL_EINVAL, name, err);
	} else {
		/* The last line ends like the others; an empty file is one blank line. */
		if (n == 0 || buf[n - 1] != '\n')
			buf[n++] = '\n';
		if ((cl->send_fd = sealed_create("haloyd-apply", buf, n, err, sizeof(err))) == -1)
			rc = cmdapply_error(cl, CTL_EFAIL, name, err);
		else
			rc = CTL_OK;
	}
	if (fd > STDIN_FILENO)
		close(fd);
	free(buf);
	wb_u8(w, (uint8_t)cl->apply_flags);
	wb_str(w, name);
	return rc;
}
