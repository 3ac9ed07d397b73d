/* placeholder: being written */
#include "config.h"
#include "tests/unit/suites.h"
Suite *
suite_snap(void)
{
	return suite_create("snap");
}
