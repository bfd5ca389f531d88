/* A host without libsodium (src/lan_sodium.c): a keyed handle is refused
 * with KITE_ENOSODIUM and a reason naming the package; the key file
 * loader says the same; no tag checks out. ldconfig finds the real
 * library whatever LD_LIBRARY_PATH says, so the test points the loader
 * at a soname no host has, before anything loads it. One process, so
 * the whole file runs in order with that override. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "kite.h"
#include "lan_key.h"
#include "lan_sodium.h"

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

static char path[64];

static int setup(void **state)
{
	(void)state;
	ki_sodium_soname_for_test("libsodium-absent-for-kite-tests.so.0");
	snprintf(path, sizeof path, "/tmp/kite-nosodium-test.%d", (int)getpid());
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, K1, strlen(K1)) != (ssize_t)strlen(K1))
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_key_file_refused(void **state)
{
	(void)state;
	struct lan_keys k;
	char why[300] = "";
	assert_int_equal(ki_lan_keys_load(path, &k, why, sizeof why), KITE_ENOSODIUM);
	assert_non_null(strstr(why, "need libsodium at run time (apt install libsodium23)"));
	assert_non_null(strstr(why, "libsodium-absent-for-kite-tests.so.0"));
	/* Nothing of the key stays behind. */
	assert_int_equal(k.n, 0);
	static const uint8_t zero[LAN_KEY_LEN];
	assert_memory_equal(k.key[0], zero, LAN_KEY_LEN);
}

/* kite_open refuses before it touches the network: the key file comes
 * first. */
static void test_keyed_open_refused(void **state)
{
	(void)state;
	char lan[128];
	snprintf(lan, sizeof lan, "lo,key=%s", path);
	kite_options o = {.bus = test_bus("nosodium"), .lan = lan};
	kite *k = (kite *)&o; /* not touched on failure: set to NULL */
	int rc = kite_open(&k, &o);
	assert_int_equal(rc, KITE_ENOSODIUM);
	assert_null(k);
	assert_string_equal(kite_strerror(rc),
			    "keyed LAN channels need libsodium at run time: apt install libsodium23");
}

/* Keys made by hand (no loader): no tag is accepted, not even zeros. */
static void test_no_tag_accepted(void **state)
{
	(void)state;
	struct lan_keys k = {.n = 1};
	uint8_t data[64] = {1, 2, 3}, tag[LAN_TAG_LEN];
	ki_lan_tag(&k, 0, data, sizeof data, tag);
	static const uint8_t zero[LAN_TAG_LEN];
	assert_memory_equal(tag, zero, LAN_TAG_LEN);
	assert_false(ki_lan_tag_ok(&k, data, sizeof data, tag));
	char why[300] = "";
	assert_null(ki_sodium(why, sizeof why));
	assert_non_null(strstr(why, "apt install libsodium23"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_file_refused),
		cmocka_unit_test(test_keyed_open_refused),
		cmocka_unit_test(test_no_tag_accepted),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
