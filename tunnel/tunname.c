/* Tunnel names: the one rule (see tunname.h). */
#include "config.h"

#include "tunnel/tunname.h"

static int
tunname_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return 1;
	return !first && (c == '.' || c == '-');
}

int
tunname_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TUNNAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!tunname_char(s[i], i == 0))
			return 0;
	return 1;
}
