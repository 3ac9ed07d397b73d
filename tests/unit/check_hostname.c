/* placeholder: being written */
#include "config.h"
#include "tests/unit/suites.h"
Suite *
suite_hostname(void)
{
	return suite_create("hostname");
}
