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
