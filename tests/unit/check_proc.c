/*
 * Unit tests for master/proc.c, the process table: real children (this
 * program, re-executed as testmaster_child_main) are spawned, greeted,
 * read from, killed, reaped, respawned with back-off and stopped.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "master/proc.h"
#include "share/cursor.h"
#include "share/ipc.h"
#include "share/msg.h"
#include "share/util.h"
#include "tests/unit/suites.h"
#include "tests/unit/testmaster.h"

/* What the test role saw. */
struct seen {
	int spawns, hellos, downs, exits, statuses, stops;
	int last_status;
	uint32_t requests;
};

static int
t_on_status(void *arg, struct ipc_msg *msg)
{
	struct seen *s = arg;
	struct msg_wstatus ws;

	memcpy(&ws, msg->data, sizeof(ws));
	s->statuses++;
	s->requests = (uint32_t)ws.requests;
	return 0;
}

static void t_on_spawn(struct proc *p) { ((struct seen *)p->arg)->spawns++; }
static int t_on_hello(struct proc *p) { ((struct seen *)p->arg)->hellos++; return 0; }
static void t_on_down(struct proc *p) { ((struct seen *)p->arg)->downs++; }

static void
t_on_exit(struct proc *p, int status)
{
	struct seen *s = p->arg;

	s->exits++;
	s->last_status = status;
}

static int
t_ask_stop(struct proc *p, uint32_t deadline_ms)
{
	struct msg_stop st = { deadline_ms, 0 };

	((struct seen *)p->arg)->stops++;
	return ipc_send(p->sock, MSG_W_STOP, 0, 0, &st, sizeof(st), -1);
}

static void
t_status_fields(const struct proc *p, struct wbuf *w)
{
	(void)p;
	wb_str(w, "x");
}

static const char *t_user(const struct master *m) { return m->cfg.user; }

static struct proc the_proc;
static struct seen seen;

/* The handlers get the role's state (proc->arg) as their context. */
static const struct ipc_handler t_handlers[] = {
	{ MSG_W_STATUS, IPC_FD_NONE, sizeof(struct msg_wstatus), sizeof(struct msg_wstatus),
	    t_on_status },
};

static struct proc_role t_role = {
	.name = "test", .title = "test child", .hello_role = ROLE_TUNNEL, .indexed = 1,
	.user = t_user, .backoff_min_ms = 20, .backoff_max_ms = 80, .stable_ms = 60000,
	.handlers = t_handlers, .nhandlers = 1,
	.on_spawn = t_on_spawn, .on_hello = t_on_hello, .on_down = t_on_down,
	.on_exit = t_on_exit, .ask_stop = t_ask_stop, .status_fields = t_status_fields,
	.nstatus_fields = 1,
};

static struct master m;

static void
setup_mode(const char *mode)
{
	setenv("CHECK_CHILD", mode, 1);
	testmaster_init(&m, 0);
	memset(&seen, 0, sizeof(seen));
	proc_add(&m, &the_proc, &t_role, 2, &seen);
}

static int ready(struct master *mm, void *a) { (void)mm; return ((struct proc *)a)->ready; }
static int exited(struct master *mm, void *a) { (void)mm; return *(int *)a > 0; }
static int got_status(struct master *mm, void *a) { (void)mm; (void)a; return seen.statuses > 0; }
static int exits_at_least(struct master *mm, void *a) { (void)mm; return seen.exits >= *(int *)a; }

START_TEST(spawn_hello_dispatch)
{
	uint8_t buf[256];
	struct wbuf w;

	setup_mode("ack");
	ck_assert_int_eq(proc_spawn(&the_proc), 0);
	ck_assert_int_gt(the_proc.pid, 0);
	ck_assert_int_eq(seen.spawns, 1);
	ck_assert_int_eq(proc_running(&m, NULL), 1);
	ck_assert_int_eq(proc_running(&m, &t_role), 1);
	ck_assert(testmaster_run_until(&m, ready, &the_proc, 5000));
	ck_assert_int_eq(seen.hellos, 1);
	/* The read loop hands the role's messages to its table. */
	ck_assert_int_eq(proc_send(&the_proc, MSG_W_STATUS_REQ, 1, 0, NULL, 0, -1), 0);
	ck_assert(testmaster_run_until(&m, got_status, NULL, 5000));
	ck_assert_int_eq(seen.requests, 7);
	/* Status: role, index, pid, then the role's own fields. */
	wb_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(proc_status_row(&the_proc, &w), 0);
	ck_assert(!w.bad);
	ck_assert_uint_eq(buf[0] | buf[1] << 8, 4);
	t_role.status_fields = NULL;
	ck_assert_int_eq(proc_status_row(&the_proc, &w), -1);
	t_role.status_fields = t_status_fields;
	/* A graceful stop goes through the role, and nothing respawns. */
	m.stopping = 1;
	proc_stop(&the_proc, 1000);
	ck_assert_int_eq(seen.stops, 1);
	ck_assert(testmaster_run_until(&m, exited, &seen.exits, 5000));
	ck_assert(WIFEXITED(seen.last_status) && WEXITSTATUS(seen.last_status) == 0);
	ck_assert_int_eq(the_proc.pid, 0);
	ck_assert(!ev_timer_armed(&the_proc.respawn));
	ck_assert_int_eq(proc_running(&m, NULL), 0);
	testmaster_free(&m);
}
END_TEST

START_TEST(bad_hello_is_killed)
{
	setup_mode("badhello");
	ck_assert_int_eq(proc_spawn(&the_proc), 0);
	ck_assert(testmaster_run_until(&m, exited, &seen.exits, 5000));
	ck_assert(WIFSIGNALED(seen.last_status) && WTERMSIG(seen.last_status) == SIGKILL);
	ck_assert_int_eq(seen.hellos, 0);
	ck_assert_int_ge(seen.downs, 1);
	ck_assert_int_eq(the_proc.sock, -1);
	/* A quick death: respawned after a doubled back-off. */
	ck_assert(ev_timer_armed(&the_proc.respawn));
	ck_assert_uint_eq(the_proc.backoff_ms, 40);
	testmaster_free(&m);
}
END_TEST

START_TEST(malformed_message_is_killed)
{
	setup_mode("garbage");
	ck_assert_int_eq(proc_spawn(&the_proc), 0);
	ck_assert(testmaster_run_until(&m, exited, &seen.exits, 5000));
	ck_assert(WIFSIGNALED(seen.last_status) && WTERMSIG(seen.last_status) == SIGKILL);
	ck_assert_int_eq(seen.hellos, 1);	/* its HELLO was fine; what followed was not */
	testmaster_free(&m);
}
END_TEST

START_TEST(respawn_backoff)
{
	int four = 4;

	setup_mode("die");
	ck_assert_int_eq(proc_spawn(&the_proc), 0);
	/* Each quick death doubles the delay, up to the role's maximum. */
	ck_assert(testmaster_run_until(&m, exits_at_least, &four, 10000));
	ck_assert(WIFEXITED(seen.last_status) && WEXITSTATUS(seen.last_status) == 3);
	ck_assert_int_ge(seen.spawns, 4);
	ck_assert_uint_eq(the_proc.spawns, (unsigned)seen.spawns);
	ck_assert_uint_eq(the_proc.backoff_ms, 80);
	testmaster_free(&m);
}
END_TEST

START_TEST(stable_child_respawns_at_once)
{
	setup_mode("die");
	t_role.stable_ms = 0;
	the_proc.backoff_ms = 80;
	ck_assert_int_eq(proc_spawn(&the_proc), 0);
	ck_assert(testmaster_run_until(&m, exited, &seen.exits, 5000));
	/* It lived "long enough": the back-off starts again from the minimum. */
	ck_assert_uint_eq(the_proc.backoff_ms, 20);
	t_role.stable_ms = 60000;
	testmaster_free(&m);
}
END_TEST

START_TEST(kill_and_remove)
{
	int one = 1;

	setup_mode("ack");
	ck_assert_int_eq(proc_spawn(&the_proc), 0);
	ck_assert(testmaster_run_until(&m, ready, &the_proc, 5000));
	proc_kill(&the_proc, "a test");
	ck_assert_int_eq(the_proc.sock, -1);
	ck_assert_int_eq(the_proc.ready, 0);
	ck_assert_int_eq(seen.downs, 1);
	ck_assert(testmaster_run_until(&m, exits_at_least, &one, 5000));
	ck_assert(WIFSIGNALED(seen.last_status));
	proc_remove(&the_proc);
	ck_assert_ptr_null(m.procs);
	ck_assert(!ev_timer_armed(&the_proc.respawn));
	testmaster_free(&m);
}
END_TEST

Suite *
suite_proc(void)
{
	Suite *s = suite_create("proc");
	TCase *tc = tcase_create("children");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, spawn_hello_dispatch);
	tcase_add_test(tc, bad_hello_is_killed);
	tcase_add_test(tc, malformed_message_is_killed);
	tcase_add_test(tc, respawn_backoff);
	tcase_add_test(tc, stable_child_respawns_at_once);
	tcase_add_test(tc, kill_and_remove);
	suite_add_tcase(s, tc);
	return s;
}
