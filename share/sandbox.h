/*
 * seccomp sandboxes: one filter per child role, installed once the role has
 * everything it needs and only runs its loop. Anything outside the role's
 * table kills the whole process with SIGSYS, which the master logs when it
 * reaps it (master/proc.c). ARCHITECTURE.md "Sandboxes" lists the calls.
 */
#ifndef HALOYD_SANDBOX_H
#define HALOYD_SANDBOX_H

/* A new role is a value here and a table in sandbox.c. */
enum sandbox_role {
	SANDBOX_WORKER,
	SANDBOX_ACME,
	SANDBOX_TUNNEL,
	SANDBOX_NROLES
};

/* The role's name as logs spell it ("worker", "acme", "tunnel"). */
const char *sandbox_role_name(enum sandbox_role role);

/* Builds the role's filter and loads it into this process: 0, or -1 logged. */
int sandbox_enter(enum sandbox_role role);

/* Builds the role's filter and throws it away (unit tests): 0, or -1 logged. */
int sandbox_check(enum sandbox_role role);

/*
 * Test builds only (configure --enable-test-hooks, HALOYD_TESTING): makes a
 * call no role allows, so the integration suite can prove the kill. Absent
 * from every other build.
 */
#ifdef HALOYD_TESTING
void sandbox_test_violate(void);
#endif

#endif
