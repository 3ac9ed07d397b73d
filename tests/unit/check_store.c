/* placeholder: being written */
#include "config.h"
#include "tests/unit/suites.h"
Suite *
suite_store(void)
{
	return suite_create("store");
}
