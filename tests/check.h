/* Included by every tests/NAME_test.c: cmocka plus small helpers. */
#ifndef KITE_TEST_CHECK_H
#define KITE_TEST_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A bus name private to this process and test, so parallel runs never meet. */
const char *test_bus(const char *test_name);

#endif
