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

#endif
