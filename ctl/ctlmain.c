/* haloyd-ctl's main(): everything else is in libctl.a so the tests can link it. */
#include "config.h"

#include "ctl/ctl.h"

int
main(int argc, char *argv[])
{
	return ctl_main(argc, argv);
}
