#include <stdio.h>
#include <unistd.h>

#include "check.h"

const char *test_bus(const char *test_name)
{
	static char bus[96];
	snprintf(bus, sizeof bus, "t%ld-%.60s", (long)getpid(), test_name);
	return bus;
}
