/* placeholder: being written */
#include "config.h"
#include "tests/unit/suites.h"
Suite *
suite_ipc(void)
{
	return suite_create("ipc");
}
