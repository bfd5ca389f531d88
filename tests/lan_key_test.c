/* The LAN key file (src/lan_key.c): one or two keys, rotation, and every
 * way a key file is refused (mode, contents), each with its reason; and
 * key=FILE in the lan option. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lan_key.h"
#include "lan_spec.h"

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100"

static char path[64];

static void write_key(const char *text, mode_t mode)
{
	snprintf(path, sizeof path, "/tmp/kite-lan-key-test.%d", (int)getpid());
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_one_and_two_keys(void **state)
{
	(void)state;
	struct lan_keys k;
	char why[300] = "";
	write_key(K1 "\n", 0600);
	assert_int_equal(ki_lan_keys_load(path, &k, why, sizeof why), 0);
	assert_int_equal(k.n, 1);
	assert_int_equal(k.key[0][0], 0x00);
	assert_int_equal(k.key[0][31], 0x1f);
	unlink(path);
	write_key(K1 "\n" K2, 0400); /* the last newline may be missing */
	assert_int_equal(ki_lan_keys_load(path, &k, why, sizeof why), 0);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.key[1][0], 0xff); /* upper case too */
	assert_int_equal(k.key[1][31], 0x00);
	unlink(path);
}

/* A key file another user owns is refused even at mode 0600: that user
 * could rewrite it and choose the key (as root, the test makes nobody's). */
static void test_other_owner_refused(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("# not root: cannot give a file to another user; ownership not checked\n");
		return;
	}
	struct lan_keys k;
	char why[300] = "";
	write_key(K1 "\n", 0600);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(ki_lan_keys_load(path, &k, why, sizeof why), -EACCES);
	assert_non_null(strstr(why, "owned by uid 65534"));
	assert_int_equal(k.n, 0);
	/* Root's own file is fine. */
	assert_int_equal(chown(path, 0, 0), 0);
	assert_int_equal(ki_lan_keys_load(path, &k, why, sizeof why), 0);
	assert_int_equal(k.n, 1);
	unlink(path);
}

static void test_refused(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		mode_t mode;
		int want;
		const char *why;
	} cases[] = {
		{K1 "\n", 0644, -EACCES, "mode 0644"},
		{K1 "\n", 0640, -EACCES, "group or others"},
		{K1 "\n", 0602, -EACCES, "group or others"},
		{"", 0600, -EINVAL, "64 hex digits"},
		{"\n", 0600, -EINVAL, "64 hex digits"},
		{K1 "0\n", 0600, -EINVAL, "64 hex digits"},             /* too long */
		{"0" K1 "\n", 0600, -EINVAL, "64 hex digits"},
		{"000102030405060708090a0b0c0d0e0f\n", 0600, -EINVAL, "64 hex digits"},
		{K1 "\n" K2 "\n" K1 "\n", 0600, -EINVAL, "64 hex digits"}, /* three */
		{K1 "\n\n", 0600, -EINVAL, "64 hex digits"},
		{K1 " \n", 0600, -EINVAL, "64 hex digits"},
		{"g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 0600, -EINVAL,
		 "64 hex digits"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct lan_keys k;
		char why[300] = "";
		write_key(cases[i].text, cases[i].mode);
		int rc = ki_lan_keys_load(path, &k, why, sizeof why);
		unlink(path);
		if (rc != cases[i].want || !strstr(why, cases[i].why) || k.n != 0)
			fail_msg("case %zu: got %d '%s'", i, rc, why);
	}
	struct lan_keys k;
	char why[300] = "";
	assert_int_equal(ki_lan_keys_load("/nonexistent/kite.key", &k, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/kite.key"));
	assert_int_equal(ki_lan_keys_load("/tmp", &k, why, sizeof why), -EINVAL);
}

/* A FIFO named as the key file (a careless or hostile key= path) is
 * refused as not a regular file at once: opening it for reading must not
 * wait for a writer (it did, and kite_open hung for good). The alarm's
 * default action ends the test if it waits. */
static void test_fifo_refused_at_once(void **state)
{
	(void)state;
	snprintf(path, sizeof path, "/tmp/kite-lan-key-test.%d", (int)getpid());
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	struct lan_keys k;
	char why[300] = "";
	alarm(10);
	int rc = ki_lan_keys_load(path, &k, why, sizeof why);
	alarm(0);
	unlink(path);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(why, "not a regular file"));
	assert_int_equal(k.n, 0);
	/* A device is refused the same way. */
	assert_int_equal(ki_lan_keys_load("/dev/zero", &k, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "not a regular file"));
}

static void test_spec_key_option(void **state)
{
	(void)state;
	struct lan_spec s;
	char why[200] = "";
	assert_int_equal(ki_lan_spec_parse("kte0", &s, why, sizeof why), 0);
	assert_string_equal(s.key_path, "");
	assert_int_equal(ki_lan_spec_parse("kte0,key=/etc/kite/lan.key,repair=1", &s, why, sizeof why), 0);
	assert_string_equal(s.key_path, "/etc/kite/lan.key");
	assert_true(s.repair);
	assert_int_equal(ki_lan_spec_parse("kte0,key=", &s, why, sizeof why), -EINVAL);
	char long_path[400] = "kte0,key=/";
	memset(long_path + 10, 'x', 300);
	assert_int_equal(ki_lan_spec_parse(long_path, &s, why, sizeof why), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_and_two_keys),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_other_owner_refused),
		cmocka_unit_test(test_fifo_refused_at_once),
		cmocka_unit_test(test_spec_key_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
