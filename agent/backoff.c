/* haloyd-tunnel's reconnect back-off (see backoff.h). */
#include "config.h"

#include "agent/backoff.h"

uint64_t
backoff_delay_ms(unsigned fails, uint32_t rnd)
{
	uint64_t step = BACKOFF_BASE_MS;

	if (fails == 0)
		return 0;
	while (--fails > 0 && step < BACKOFF_CAP_MS)
		step *= 2;
	if (step > BACKOFF_CAP_MS)
		step = BACKOFF_CAP_MS;
	/* Jitter below the step only: the cap stays a cap. */
	return step - rnd % (step / 4 + 1);
}

uint64_t
backoff_next(unsigned *fails, int was_ready, uint64_t up_ms, int goaway, uint32_t rnd)
{
	if (was_ready && up_ms >= BACKOFF_HEALTHY_MS)
		*fails = 0;
	/* Make before break: the old tunnel finishes its streams meanwhile. */
	if (goaway)
		return 0;
	if (was_ready && *fails == 0) {
		/* Once: a proxy that accepts and drops at once must not be hammered. */
		*fails = 1;
		return 0;
	}
	if (*fails < 1000)
		(*fails)++;
	return backoff_delay_ms(*fails, rnd);
}
