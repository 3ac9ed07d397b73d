/*
 * The worker wrapper: HALOYD_WORKER_WRAPPER, a command (e.g. "valgrind
 * --tool=callgrind") that every worker is exec'd under, so a profiler sees
 * the worker (a fexecve of /proc/self/exe under valgrind would run valgrind's
 * own binary). A debugging aid: the master runs as usual, only workers are
 * wrapped, and they run without their seccomp filter, which would refuse the
 * profiler's own system calls.
 */
#ifndef HALOYD_WRAPPER_H
#define HALOYD_WRAPPER_H

#include <limits.h>
#include <stddef.h>

#define WRAPPER_ENV "HALOYD_WORKER_WRAPPER"
#define WRAPPER_WORDS_MAX 16
#define WRAPPER_LEN_MAX 1024
/* With a wrapper a worker starts many times slower (valgrind): its first ack may take this long. */
#define WRAPPER_ACK_GRACE_MS 120000

struct wrapper {
	char buf[WRAPPER_LEN_MAX];	/* the words, each NUL-terminated */
	char *word[WRAPPER_WORDS_MAX];
	size_t nwords;
	char prog[PATH_MAX];		/* word[0], found on PATH */
	char exe[PATH_MAX];		/* our executable, which the wrapper runs */
};

/* Splits spec at blanks; 0, or -1 with err set (empty, too long, too many words). */
int wrapper_parse(struct wrapper *wr, const char *spec, char *err, size_t errlen);
/* Finds word[0] on path (as execvp would) and records exe; 0 or -1 with err set. */
int wrapper_resolve(struct wrapper *wr, const char *path, const char *exe, char *err,
    size_t errlen);
/*
 * argv for execv(wr->prog, argv): the words, exe, then args (NULL-terminated);
 * the number of entries, or 0 when out (max entries) is too small. Async-signal-safe.
 */
size_t wrapper_argv(const struct wrapper *wr, char *const *args, char **out, size_t max);

#endif
