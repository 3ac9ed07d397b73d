/*
 * The shared-region fixtures (see testshm.h).
 */
#include "config.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "share/util.h"
#include "tests/unit/testshm.h"

int
testshm_open(struct shm *s)
{
	char err[256];
	int fd = shm_create(TESTSHM_REGION, 4, s, err, sizeof(err));

	ck_assert_msg(fd >= 0, "%s", err);
	return fd;
}

void
testshm_close(struct shm *s, int fd)
{
	shm_unmap(s);
	close(fd);
}

void
testshm_kill_writers(struct shm *s, pid_t (*writer)(uint32_t wi),
    void (*forget)(const struct shm *s, uint32_t wi))
{
	pid_t pids[TESTSHM_WRITERS];
	uint64_t deadline = util_now_ms() + 5000;
	uint32_t i;
	int st;

	for (i = 0; i < TESTSHM_WRITERS; i++)
		pids[i] = writer(i + 1);
	/* Killed in the middle of their work: once each has made 20 000 updates. */
	for (i = 1; i <= TESTSHM_WRITERS; i++)
		while (shm_get(&s->slots[i].retries) < 20000)
			ck_assert_msg(util_now_ms() < deadline, "writer %u made no progress", i);
	for (i = 0; i < TESTSHM_WRITERS; i++) {
		ck_assert_int_eq(kill(pids[i], SIGKILL), 0);
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert(WIFSIGNALED(st));
		forget(s, i + 1);
	}
}
