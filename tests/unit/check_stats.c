/*
 * Unit tests of master/stats.c's summing: worker slots written by real
 * child processes that map the region from its fd, one of them killed with
 * SIGKILL and its index "respawned" as a new process that continues the
 * same slot, so the master's sums never go backwards.
 */
#include "config.h"

#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "master/stats.h"
#include "share/shm.h"
#include "tests/unit/suites.h"

#define REGION (2u << 20)

/* A worker run: maps fd, counts n requests on route 5 in slot idx, then dies by SIGKILL. */
static void
run_worker(int fd, uint32_t idx, unsigned n)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shm s;
		char err[256];
		unsigned i;

		if (shm_map(fd, &s, err, sizeof(err)) == -1 || idx >= s.nslots)
			_exit(2);
		shm_add(&s.slots[idx].starts, 1);
		for (i = 0; i < n; i++)
			shm_count_request(&s.slots[idx], 5, SHM_HTTP11, 200, 1000, 1, 2);
		shm_add(&s.slots[idx].tls[SHM_TLS_FULL], n);
		raise(SIGKILL);		/* killed at any instruction: nothing to release */
		_exit(3);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static struct shm_wslot *
summed(const struct shm *s)
{
	struct shm_wslot *t = aligned_alloc(SHM_ALIGN, sizeof(*t));

	ck_assert_ptr_nonnull(t);
	stats_sum_slots(s->slots, s->nslots, t);
	return t;
}

START_TEST(test_sum_and_respawn_continues)
{
	struct shm s;
	struct shm_wslot *t;
	char err[256];
	int fd = shm_create(REGION, 2, &s, err, sizeof(err));

	ck_assert_msg(fd >= 0, "%s", err);
	run_worker(fd, 0, 3);
	run_worker(fd, 1, 4);
	t = summed(&s);
	ck_assert_uint_eq(t->requests[SHM_HTTP11][2], 7);
	ck_assert_uint_eq(shm_route(t, 5)->requests[SHM_HTTP11][2], 7);
	ck_assert_uint_eq(t->tls[SHM_TLS_FULL], 7);
	ck_assert_uint_eq(t->bytes_out, 14);
	free(t);
	/* Worker 0 "respawns": the new process continues its slot, never from zero. */
	run_worker(fd, 0, 2);
	t = summed(&s);
	ck_assert_uint_eq(s.slots[0].starts, 2);
	ck_assert_uint_eq(s.slots[0].requests[SHM_HTTP11][2], 5);
	ck_assert_uint_eq(t->requests[SHM_HTTP11][2], 9);
	ck_assert_uint_eq(shm_route(t, 5)->requests[SHM_HTTP11][2], 9);
	ck_assert_uint_eq(t->duration[0], 9);
	ck_assert_uint_eq(t->duration_us, 9000);
	free(t);
	shm_unmap(&s);
	close(fd);
}
END_TEST

/* Routes differ per worker: each one summed by its id, wherever its entry sits. */
START_TEST(test_sum_routes_by_id)
{
	struct shm s;
	struct shm_wslot *t;
	char err[256];
	int fd = shm_create(REGION, 3, &s, err, sizeof(err));

	ck_assert_int_ge(fd, 0);
	shm_count_request(&s.slots[0], 1, SHM_HTTP2, 200, 0, 0, 0);
	shm_count_request(&s.slots[1], 2, SHM_HTTP2, 404, 0, 0, 0);
	shm_count_request(&s.slots[1], 1, SHM_HTTP2, 200, 0, 0, 0);
	shm_count_request(&s.slots[2], 0, SHM_HTTP10, 400, 0, 0, 0);
	shm_add(&s.slots[2].other.requests[SHM_HTTP11][5], 4);
	t = summed(&s);
	ck_assert_uint_eq(shm_route(t, 1)->requests[SHM_HTTP2][2], 2);
	ck_assert_uint_eq(shm_route(t, 2)->requests[SHM_HTTP2][4], 1);
	ck_assert_uint_eq(t->noroute.requests[SHM_HTTP10][4], 1);
	ck_assert_uint_eq(t->other.requests[SHM_HTTP11][5], 4);
	free(t);
	shm_unmap(&s);
	close(fd);
}
END_TEST

Suite *
suite_stats(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, test_sum_and_respawn_continues);
	tcase_add_test(tc, test_sum_routes_by_id);
	suite_add_tcase(s, tc);
	return s;
}
