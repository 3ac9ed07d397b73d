/*
 * The worker wrapper (see wrapper.h): parsing HALOYD_WORKER_WRAPPER, finding
 * its program, and the argv a wrapped worker is exec'd with.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master/wrapper.h"
#include "share/util.h"

int
wrapper_parse(struct wrapper *wr, const char *spec, char *err, size_t errlen)
{
	size_t len = strlen(spec), i;

	memset(wr, 0, sizeof(*wr));
	if (len >= sizeof(wr->buf)) {
		snprintf(err, errlen, "%s is longer than %d bytes", WRAPPER_ENV, WRAPPER_LEN_MAX - 1);
		return -1;
	}
	memcpy(wr->buf, spec, len + 1);
	for (i = 0; i < len; i++) {
		if (wr->buf[i] == ' ' || wr->buf[i] == '\t') {
			wr->buf[i] = '\0';
			continue;
		}
		if (i > 0 && wr->buf[i - 1] != '\0')
			continue;
		if (wr->nwords == WRAPPER_WORDS_MAX) {
			snprintf(err, errlen, "%s has more than %d words", WRAPPER_ENV,
			    WRAPPER_WORDS_MAX);
			return -1;
		}
		wr->word[wr->nwords++] = &wr->buf[i];
	}
	if (wr->nwords == 0) {
		snprintf(err, errlen, "%s is empty", WRAPPER_ENV);
		return -1;
	}
	return 0;
}

int
wrapper_resolve(struct wrapper *wr, const char *path, const char *exe, char *err,
    size_t errlen)
{
	const char *p = path != NULL ? path : "/usr/bin:/bin";
	const char *w0 = wr->word[0];

	if (util_strlcpy(wr->exe, exe, sizeof(wr->exe)) >= sizeof(wr->exe))
		goto toolong;
	if (strchr(w0, '/') != NULL) {
		if (util_strlcpy(wr->prog, w0, sizeof(wr->prog)) >= sizeof(wr->prog))
			goto toolong;
		if (access(wr->prog, X_OK) == 0)
			return 0;
		snprintf(err, errlen, "%s: %s is not executable", WRAPPER_ENV, w0);
		return -1;
	}
	while (*p != '\0') {
		size_t n = strcspn(p, ":");
		int len = snprintf(wr->prog, sizeof(wr->prog), "%.*s/%s", (int)n, n > 0 ? p : ".", w0);

		if (len > 0 && (size_t)len < sizeof(wr->prog) && access(wr->prog, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	snprintf(err, errlen, "%s: %s is not on PATH", WRAPPER_ENV, w0);
	return -1;
toolong:
	snprintf(err, errlen, "%s: a path is too long", WRAPPER_ENV);
	return -1;
}

size_t
wrapper_argv(const struct wrapper *wr, char *const *args, char **out, size_t max)
{
	size_t n = 0, i;

	if (wr->nwords + 2 > max)
		return 0;
	for (i = 0; i < wr->nwords; i++)
		out[n++] = wr->word[i];
	out[n++] = (char *)(uintptr_t)wr->exe;
	for (i = 0; args[i] != NULL; i++) {
		if (n + 1 >= max)
			return 0;
		out[n++] = args[i];
	}
	out[n] = NULL;
	return n;
}
