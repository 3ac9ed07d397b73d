/* placeholder: being written */
#include "config.h"
#include "worker/worker.h"
int
worker_main(const struct worker_args *a)
{
	(void)a;
	return 1;
}
