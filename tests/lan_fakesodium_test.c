/* A wrong library under libsodium's soname (tests/helpers/fake_sodium.c,
 * one build per way of being wrong): src/lan_sodium.c must refuse it with
 * a reason, so that a key file is refused (KITE_ENOSODIUM) and no tag, not
 * even one of zeros, is accepted; never crash, never trust it. The loader
 * loads once per process: each case runs in a child of its own. The
 * real library failing after it loaded (tests/helpers/flaky_sodium.c)
 * must fail closed too. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kite.h"
#include "lan_key.h"
#include "lan_sodium.h"

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

/* A helper library's path: build/tests/helpers/FILE beside us. */
static void helper_path(const char *file, char *out, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(n > 0);
	self[n] = 0;
	snprintf(out, cap, "%s/helpers/%s", dirname(self), file);
	assert_int_equal(access(out, R_OK), 0);
}

/* The fake's path: build/tests/helpers/fake_sodium_NAME.so beside us. */
static void fake_path(const char *name, char *out, size_t cap)
{
	char file[64];
	snprintf(file, sizeof file, "fake_sodium_%s.so", name);
	helper_path(file, out, cap);
}

/* In the child: 0 if the library is refused for `reason` everywhere. */
static int refused(const char *lib, const char *reason)
{
	ki_sodium_soname_for_test(lib);
	char why[400] = "";
	if (ki_sodium(why, sizeof why) || !strstr(why, reason) ||
	    !strstr(why, "apt install libsodium23")) {
		fprintf(stderr, "# %s: loaded, or why = '%s'\n", lib, why);
		return 1;
	}
	/* No tag is accepted: not zeros (what a failed digest leaves), not
	 * anything else. */
	struct lan_keys k = {.n = 1};
	memset(k.key[0], 0x5a, LAN_KEY_LEN);
	uint8_t data[100] = {1, 2, 3}, zero[LAN_TAG_LEN] = {0}, junk[LAN_TAG_LEN];
	memset(junk, 0xa5, sizeof junk);
	if (ki_lan_tag_ok(&k, data, sizeof data, zero) || ki_lan_tag_ok(&k, data, sizeof data, junk)) {
		fprintf(stderr, "# %s: a made-up tag was accepted\n", lib);
		return 1;
	}
	char path[64];
	snprintf(path, sizeof path, "/tmp/kite-fakesodium-test.%d", (int)getpid());
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, K1, strlen(K1)) != (ssize_t)strlen(K1))
		return 1;
	close(fd);
	int rc = ki_lan_keys_load(path, &k, why, sizeof why);
	unlink(path);
	if (rc != KITE_ENOSODIUM || k.n != 0 || !strstr(why, reason)) {
		fprintf(stderr, "# %s: key file: %d '%s'\n", lib, rc, why);
		return 1;
	}
	return 0;
}

static void check_refused(const char *name, const char *reason)
{
	char lib[PATH_MAX + 64];
	fake_path(name, lib, sizeof lib);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(refused(lib, reason));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s: not refused as '%s' (status %d)", name, reason, status);
}

/* All of these have every function and say sodium_init succeeded (the
 * old loader took them): a digest that always fails (its tags were zeros,
 * which the check then compared and accepted), and one of zeros with a
 * crypto_verify_16 that says yes to anything. */
static void test_wrong_digests_refused(void **state)
{
	(void)state;
	check_refused("hashfails", "fails a known-answer test");
	check_refused("acceptall", "fails a known-answer test");
}

static void test_missing_or_failing_refused(void **state)
{
	(void)state;
	check_refused("noverify", "has no crypto_verify_16");
	check_refused("initfails", "sodium_init failed");
	check_refused("bigstate", "crypto_generichash_state of 4096 bytes");
}

/* In the child: 0 if, once the library fails to make a digest, no tag is
 * accepted, not even the one it made before it failed (nor the bytes it
 * still wrote while saying it failed). */
static int fails_closed(const char *lib)
{
	ki_sodium_soname_for_test(lib);
	char why[400] = "";
	if (!ki_sodium(why, sizeof why)) {
		fprintf(stderr, "# %s refused: %s\n", lib, why);
		return 1;
	}
	struct lan_keys k = {.n = 2};
	memset(k.key[0], 0x5a, LAN_KEY_LEN);
	memset(k.key[1], 0x33, LAN_KEY_LEN);
	uint8_t data[100] = {1, 2, 3}, good[LAN_TAG_LEN], zero[LAN_TAG_LEN] = {0};
	uint8_t after[LAN_TAG_LEN];
	ki_lan_tag(&k, 1, data, sizeof data, good);
	if (!ki_lan_tag_ok(&k, data, sizeof data, good)) {
		fprintf(stderr, "# a good tag was refused while the library worked\n");
		return 1;
	}
	void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
	int *failing = h ? dlsym(h, "flaky_sodium_failing") : NULL;
	if (!failing)
		return 1;
	*failing = 1;
	ki_lan_tag(&k, 1, data, sizeof data, after);
	if (memcmp(after, zero, sizeof zero)) {
		fprintf(stderr, "# a tag the library failed to make was not zeros\n");
		return 1;
	}
	if (ki_lan_tag_ok(&k, data, sizeof data, good) ||
	    ki_lan_tag_ok(&k, data, sizeof data, zero)) {
		fprintf(stderr, "# a tag was accepted while the library failed\n");
		return 1;
	}
	dlclose(h);
	return 0;
}

/* The real libsodium, failing after it loaded (a digest it reports as
 * failed, its bytes right): the branch of ki_lan_tag_ok that no wrong
 * library reaches, since each is refused at load. */
static void test_failing_after_load_accepts_nothing(void **state)
{
	(void)state;
	char lib[PATH_MAX + 64];
	helper_path("flaky_sodium.so", lib, sizeof lib);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fails_closed(lib));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("a failing digest did not fail closed (status %d)", status);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrong_digests_refused),
		cmocka_unit_test(test_missing_or_failing_refused),
		cmocka_unit_test(test_failing_after_load_accepts_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
