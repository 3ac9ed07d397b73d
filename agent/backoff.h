/*
 * The agent's reconnect schedule: exponential from 1 s to 30 s with jitter,
 * so a fleet of agents cut off together does not dial back in lockstep.
 */
#ifndef HALOYD_AGENT_BACKOFF_H
#define HALOYD_AGENT_BACKOFF_H

#include <stdint.h>

#define BACKOFF_BASE_MS 1000
#define BACKOFF_CAP_MS 30000
#define BACKOFF_HEALTHY_MS 30000	/* a tunnel up this long resets the schedule */

/*
 * The wait before attempt number fails (0 = the first after a healthy
 * tunnel: at once). rnd is any random value: the wait is the step
 * min(cap, base * 2^(fails-1)) minus up to a quarter of it.
 */
uint64_t backoff_delay_ms(unsigned fails, uint32_t rnd);

/*
 * A slot's next wait after a tunnel ended (or a dial failed: was_ready 0),
 * updating its count of failures: a tunnel up BACKOFF_HEALTHY_MS starts the
 * schedule over; a GOAWAY, or the first loss of a tunnel that served, is
 * redialed at once; anything else waits backoff_delay_ms of one more failure.
 */
uint64_t backoff_next(unsigned *fails, int was_ready, uint64_t up_ms, int goaway, uint32_t rnd);

#endif
